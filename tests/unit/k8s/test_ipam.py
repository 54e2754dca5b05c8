import ipaddress

import pytest

from kemu.k8s.ipam import SubnetLeaseStore
from kemu.scenario.addressing import underlay_addresses

NET = ipaddress.IPv4Network("10.244.0.0/16")
IP = ipaddress.IPv4Address("172.18.0.2")


def test_leases_are_distinct_24s_in_order():
    store = SubnetLeaseStore(NET)
    subnets = [store.acquire(f"n{i}", IP).subnet for i in range(3)]
    assert [str(s) for s in subnets] == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]


def test_acquire_is_idempotent_and_release_frees_the_subnet():
    store = SubnetLeaseStore(NET)
    first = store.acquire("a", IP)
    assert store.acquire("a", IP) is first
    store.acquire("b", IP)
    store.release("a")
    assert store.acquire("c", IP).subnet == first.subnet


def test_exhaustion_is_a_clear_error():
    store = SubnetLeaseStore(ipaddress.IPv4Network("10.0.0.0/23"))
    store.acquire("a", IP)
    store.acquire("b", IP)
    with pytest.raises(ValueError, match="no free /24"):
        store.acquire("c", IP)


def test_subnet_larger_than_network_is_refused():
    with pytest.raises(ValueError):
        SubnetLeaseStore(ipaddress.IPv4Network("10.0.0.0/25"), 24)


def test_underlay_addresses_start_at_2_like_kind():
    addrs = underlay_addresses(ipaddress.IPv4Network("172.18.0.0/16"), 3)
    assert [str(a) for a in addrs] == ["172.18.0.2/16", "172.18.0.3/16", "172.18.0.4/16"]


def test_underlay_too_small():
    with pytest.raises(ValueError, match="too small"):
        underlay_addresses(ipaddress.IPv4Network("192.168.0.0/30"), 3)
