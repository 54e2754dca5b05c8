"""calico-bgp's pure parts: the BIRD config (golden file, and checked by bird -p when BIRD is
installed), the CNI config, the options."""

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest

from kemu.backend import Lease, PodNetwork
from kemu_plugins.calico_bgp import CalicoBGP, render_bird_config

GOLDEN = Path(__file__).parents[2] / "golden" / "render"
TIMERS = {"connect_delay": 0, "connect_retry": 1, "error_wait": 1}
NETWORK = PodNetwork(ipaddress.IPv4Network("10.244.0.0/16"), 1500, Path("/run/kemu/x"), None)


def test_config_matches_golden(golden):
    text = render_bird_config("node2", "172.18.0.3", "10.244.0.64/26", 64512,
                              ["172.18.0.4", "172.18.0.2"], TIMERS)
    golden(GOLDEN / "bird-mesh-node2.conf", text)


def test_of_each_pair_the_higher_address_dials():
    text = render_bird_config("node2", "172.18.0.3", "10.244.0.64/26", 64512,
                              ["172.18.0.2", "172.18.0.10"], TIMERS)
    assert "neighbor 172.18.0.2 as 64512; }" in text  # we dial the lower peer
    assert "neighbor 172.18.0.10 as 64512; passive on; }" in text  # numeric, not text, order


def test_route_reflector_sessions():
    text = render_bird_config("node1", "172.18.0.2", "10.244.0.0/26", 64512,
                              ["172.18.0.3", "172.18.0.4"], TIMERS,
                              rr_clients=frozenset({"172.18.0.3", "172.18.0.4"}))
    assert "protocol bgp Client_172_18_0_3 from mesh { neighbor 172.18.0.3 as 64512; " \
           "passive on; rr client; }" in text
    client = render_bird_config("node2", "172.18.0.3", "10.244.0.64/26", 64512,
                                ["172.18.0.2"], TIMERS, reflectors=frozenset({"172.18.0.2"}))
    assert "protocol bgp Reflector_172_18_0_2 from mesh" in client
    assert "Mesh_" not in client and "rr client" not in client
    assert "next hop self;" not in client  # reflected routes keep their originator's next hop


def test_alone_in_the_mesh_says_so():
    assert "# No peers yet" in render_bird_config("n", "172.18.0.2", "10.244.0.0/26", 64512,
                                                   [], TIMERS)


@pytest.mark.skipif(not shutil.which("bird"), reason="bird2 not installed")
def test_bird_accepts_the_config(tmp_path):
    path = tmp_path / "bird.conf"
    path.write_text((GOLDEN / "bird-mesh-node2.conf").read_text())
    check = subprocess.run(["bird", "-p", "-c", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_pods_attach_with_ptp_over_the_nodes_block():
    lease = Lease("node2", ipaddress.IPv4Network("10.244.0.64/26"),
                  ipaddress.IPv4Address("172.18.0.3"))
    conf = CalicoBGP(NETWORK, {}).cni_config(type("N", (), {"name": "node2"})(), lease)
    (ptp,) = conf["plugins"]
    assert ptp["type"] == "ptp" and ptp["mtu"] == 1500 and not ptp["ipMasq"]
    assert ptp["ipam"]["ranges"] == [[{"subnet": "10.244.0.64/26"}]]
    assert ptp["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]


def test_options():
    assert CalicoBGP.check_options({"asNumber": 65001, "connectRetry": 3}) == []
    assert CalicoBGP.check_options({"asNumber": 0}) == ["asNumber must be 1..4294967295, got 0"]
    assert CalicoBGP.check_options({"errorWait": -1}) == [
        "errorWait must be whole seconds >= 0, got -1"]
    assert "unknown option 'ipip'" in CalicoBGP.check_options({"ipip": True})[0]
    assert CalicoBGP.check_options({"routeReflectors": ["n9"]}, ("n1", "n2")) == [
        "routeReflectors: no node named 'n9'"]
    assert CalicoBGP.check_options({"routeReflectors": "n1"})[0].startswith(
        "routeReflectors must be a list")
