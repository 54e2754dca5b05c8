"""What every backend declares, and the flannel-udp / host-gw pure parts."""

import ipaddress
from pathlib import Path

import pytest

from kemu.backend import Backend, Lease, PodNetwork, available_backends
from kemu_plugins.flannel_udp import FlannelUDP
from kemu_plugins.host_gw import FlannelHostGW

NETWORK = PodNetwork(ipaddress.IPv4Network("10.244.0.0/16"), 1500, Path("/run/kemu/x"), None)
LEASE = Lease("n1", ipaddress.IPv4Network("10.244.1.0/24"), ipaddress.IPv4Address("172.18.0.2"))


class Named:
    name = "n1"


def test_shipped_backends_are_registered():
    assert {"flannel-udp", "flannel-vxlan", "calico-bgp", "host-gw"} <= set(available_backends())


@pytest.mark.parametrize("name", sorted(available_backends()))
def test_every_backend_declares_itself(name):
    cls = available_backends()[name]
    assert issubclass(cls, Backend) and cls.name == name and cls.description
    assert cls.check_options({}) == []
    assert cls.check_options({"no-such-option": 1})  # unknown options are refused


@pytest.mark.parametrize("name, mtu", [("flannel-udp", 1472), ("flannel-vxlan", 1450),
                                       ("calico-bgp", 1500), ("host-gw", 1500)])
def test_mtu_is_underlay_less_encapsulation(name, mtu):
    assert available_backends()[name](NETWORK, {}).mtu == mtu


def test_flannel_backends_share_the_bridge_delegate():
    udp = FlannelUDP(NETWORK, {}).cni_config(Named(), LEASE)["plugins"][0]
    gw = FlannelHostGW(NETWORK, {}).cni_config(Named(), LEASE)["plugins"][0]
    assert udp["type"] == gw["type"] == "bridge" and udp["bridge"] == "cni0"
    assert (udp["mtu"], gw["mtu"]) == (1472, 1500)


def test_flannel_udp_port_option():
    assert FlannelUDP.check_options({"port": 8285}) == []
    assert FlannelUDP.check_options({"port": 70000}) == ["port must be 1..65535, got 70000"]
