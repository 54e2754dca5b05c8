"""What this machine can do, and what kemu does about each thing it cannot.

Kernel features are probed for real, inside a throwaway network namespace (`unshare --net`),
so the probe changes nothing on the host and answers for this kernel, not for its config file.
Who needs a capability is not kept here: backends and measurement kinds declare it
(`requires`), and a missing capability says which of them cannot run.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from kemu import registry
from kemu.errors import TimedOut
from kemu.kernel.cni import CNI_PATHS
from kemu.kernel.exec import HOST, run

CNI_PLUGINS_NEEDED = ("bridge", "host-local", "loopback", "portmap", "ptp")


@dataclass(frozen=True)
class Capability:
    name: str
    ok: bool
    detail: str
    if_missing: str  # what kemu does without it
    required: bool = False  # kemu cannot run at all without it


def _in_scratch_netns(script: str) -> bool:
    try:
        return run(HOST, ["unshare", "--net", "sh", "-c", script], check=False,
                   timeout=10).ok
    except TimedOut:
        return False


def module_available(name: str) -> bool:
    if Path(f"/sys/module/{name}").exists():
        return True
    modprobe = shutil.which("modprobe")
    if modprobe is None:
        return False
    return run(HOST, [modprobe, "-n", "-q", name], check=False).ok


def netem_available() -> bool:
    return _in_scratch_netns("tc qdisc add dev lo root netem delay 1ms")


def needed_by(capability: str) -> str:
    """What cannot run without `capability`, by the kinds that declare it ('' for none)."""
    backends = [name for name, cls in sorted(registry.backends().items())
                if capability in cls.requires]
    kinds = [name for name, cls in registry.measurements().items()
             if capability in cls.requires]
    parts = [f"{', '.join(backends)} cannot run"] if backends else []
    if kinds:
        parts.append(f"{', '.join(kinds)} measurements are refused")
    return "; ".join(parts)


def _program(name: str, package: str, if_missing: str = "",
             required: bool = False) -> Capability:
    path = shutil.which(name)
    return Capability(name, bool(path), path or f"not found (Debian package {package})",
                      if_missing or needed_by(name), required)


def _feature(name: str, ok: bool, detail: str) -> Capability:
    return Capability(name, ok, detail, needed_by(name))


def check() -> list[Capability]:
    caps = [
        Capability("root", os.geteuid() == 0, "running as root" if os.geteuid() == 0
                   else "not root", "kemu needs root to create namespaces", required=True),
        _program("mnexec", "mininet", "cannot build nodes", required=True),
        _program("nsenter", "util-linux", "cannot enter nodes", required=True),
        _program("brctl", "bridge-utils", "cannot build the underlay", required=True),
        _program("tc", "iproute2", "no link shaping", required=True),
        _program("conntrack", "conntrack", "kube-proxy cannot clear stale UDP flows",
                 required=True),
    ]
    cni_dir = next((p for p in CNI_PATHS if Path(p, "bridge").exists()), None)
    missing = [p for p in CNI_PLUGINS_NEEDED if not cni_dir or not Path(cni_dir, p).exists()]
    caps.append(Capability(
        "cni-plugins", not missing,
        f"{cni_dir}: {', '.join(CNI_PLUGINS_NEEDED)}" if not missing
        else f"missing {', '.join(missing)} (Debian package containernetworking-plugins)",
        "pods cannot be attached", required=True))
    caps += [
        _feature("vxlan", _in_scratch_netns("ip link add vx0 type vxlan id 1 dstport 8472"),
                 "kernel VXLAN devices"),
        _feature("tun", _in_scratch_netns("ip tuntap add tun0 mode tun"), "TUN devices"),
        Capability("br_netfilter", _in_scratch_netns(
            "test -e /proc/sys/net/bridge/bridge-nf-call-iptables"),
            "iptables sees bridged traffic inside a namespace (as on Kubernetes nodes)",
            "same-node Service replies and NetworkPolicy between pods on one bridge fail "
            "(load it: modprobe br_netfilter)"),
        Capability("tbf", _in_scratch_netns(
            "tc qdisc add dev lo root tbf rate 1mbit burst 10k latency 10ms"),
            "token-bucket rate limiting (link bandwidth)", "link bandwidth is not limited"),
        Capability("sch_netem", netem_available(), "tc netem (link delay, jitter, loss)",
                   "kemu's delay line emulates delay, jitter and loss instead (NFQUEUE + a C "
                   "daemon per node; about 1 Gbit/s ceiling)"),
        Capability("nfqueue", _in_scratch_netns(
            "iptables -t mangle -A POSTROUTING -o lo -j NFQUEUE --queue-num 0") and
            bool(shutil.which("kemu-delay-line") or
                 (Path(sys.executable).parent / "kemu-delay-line").exists()),
            "NFQUEUE and kemu-delay-line (the delay fallback)",
            "no delay/loss without sch_netem (build it: scripts/setup.sh)"),
        Capability("openvswitch-module", module_available("openvswitch"),
                   "Open vSwitch kernel datapath",
                   "OVS switches use the userspace datapath (slower)"),
        Capability("ipvs", module_available("ip_vs"), "IPVS (kube-proxy ipvs mode)",
                   "kube-proxy runs in iptables mode"),
        _program("iperf3", "iperf3"),
        _program("ping", "iputils-ping"),
        _program("sockperf", "sockperf"),
        _program("wrk", "wrk"),
        _program("tcpdump", "tcpdump", "no packet captures"),
        _program("bird", "bird2"),
        _ovs_running(),
    ]
    return caps


def _ovs_running() -> Capability:
    if not shutil.which("ovs-vsctl"):
        return Capability("ovs", False, "not installed (openvswitch-switch)",
                          "no OpenFlow edge switch")
    ok = run(HOST, ["ovs-vsctl", "--timeout=3", "show"], check=False).ok
    return Capability("ovs", ok, "ovs-vswitchd answers" if ok else "installed, not running "
                      "(start: /usr/share/openvswitch/scripts/ovs-ctl start)",
                      "no OpenFlow edge switch")


def as_dict(caps: list[Capability]) -> dict[str, dict[str, object]]:
    return {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in caps}
