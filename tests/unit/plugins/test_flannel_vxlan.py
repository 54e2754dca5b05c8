import ipaddress
from pathlib import Path

from kemu.backend import Lease, PodNetwork, get_backend
from kemu_plugins.flannel_vxlan import FlannelVXLAN, vtep_mac

NETWORK = PodNetwork(ipaddress.IPv4Network("10.244.0.0/16"), 1500, Path("/run/kemu/x"),
                     state=None)


class FakeNode:  # only its name is read by cni_config
    name = "node1"


def test_registered_by_name_case_insensitively():
    assert get_backend("Flannel-VXLAN") is FlannelVXLAN


def test_mtu_leaves_room_for_vxlan():
    assert FlannelVXLAN(NETWORK, {}).mtu == 1450


def test_cni_config_is_flannels_bridge_delegate():
    lease = Lease("node1", ipaddress.IPv4Network("10.244.3.0/24"),
                  ipaddress.IPv4Address("172.18.0.2"))
    conf = FlannelVXLAN(NETWORK, {}).cni_config(FakeNode(), lease)
    (bridge,) = conf["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "cni0"
    assert bridge["mtu"] == 1450 and bridge["isDefaultGateway"] and bridge["hairpinMode"]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24"}]]
    assert bridge["ipam"]["routes"] == [{"dst": "10.244.0.0/16"}]
    assert bridge["ipam"]["dataDir"].startswith("/run/kemu/x/")  # never the host's /var/lib/cni


def test_vtep_mac_is_stable_unicast_and_locally_administered():
    mac = vtep_mac("node1")
    assert mac == vtep_mac("node1") != vtep_mac("node2")
    first = int(mac.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01


def test_options():
    assert FlannelVXLAN.check_options({"vni": 4096, "port": 4789}) == []
    assert FlannelVXLAN.check_options({"vni": 0}) == ["vni must be 1..16777215, got 0"]
    assert "unknown option 'mode'" in FlannelVXLAN.check_options({"mode": "x"})[0]
