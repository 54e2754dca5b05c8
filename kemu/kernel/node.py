"""Mininet's vocabulary, fitted to a Kubernetes cluster: a node is a Mininet Host, the underlay is
Mininet switches and links, the whole network is a Mininet.

Three departures from stock Mininet, each so that kemu touches nothing it did not create:
- `KemuNet.init` skips Mininet's fixLimits(), which raises host-wide sysctls and rlimits;
- `UnderlaySwitch` is a Linux bridge inside a namespace of its own, so the root namespace gets
  no new device and frames never cross the host's iptables (br_netfilter) on the way;
- commands go through kemu's checked runner (kernel/exec.py) in the node's namespace, which
  fails loudly (Mininet's `cmd` drops exit codes).
"""

from __future__ import annotations

from collections.abc import Sequence

from mininet.link import TCIntf, TCLink
from mininet.moduledeps import pathCheck
from mininet.net import Mininet
from mininet.node import Host
from mininet.nodelib import LinuxBridge

from kemu.kernel.exec import Netns, run

UNDERLAY_INTF = "eth0"  # each node's underlay interface, named as on a real machine


class KemuNet(Mininet):
    @classmethod
    def init(cls) -> None:
        # Mininet.init() would call fixLimits(): host-wide sysctls kemu must not change.
        cls.inited = True


class KemuHost(Host):
    """A Mininet host whose commands fail loudly."""

    kind = "host"  # how errors name it: "node node1", "host client"

    @property
    def netns(self) -> Netns:
        """Its network namespace (held by its Mininet shell)."""
        return Netns.of_process(self.pid, f"{self.kind} {self.name}")

    @property
    def netns_path(self) -> str:
        return self.netns.path

    def run(self, *argv: str, input: str | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> str:
        """Run argv inside this node's network namespace and return its output; raise
        CommandError on failure (unless not `check`)."""
        return run(self.netns, argv, input=input, env=env, check=check).stdout

    def ip_batch(self, commands: Sequence[str], force: bool = False) -> None:
        """Many `ip` commands in one process (one fork instead of one per command)."""
        if commands:
            self.run("ip", *(["-force"] if force else []), "-batch", "-",
                     input="\n".join(commands) + "\n")


class K8sNode(KemuHost):
    """A Kubernetes node: a Mininet host (its own network namespace) on the underlay."""

    kind = "node"

    def config(self, **params):  # noqa: ANN001, ANN201 (Mininet's signature)
        result = super().config(**params)
        # Nodes route between their pods and the underlay (per-namespace sysctl).
        self.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        return result


class ExternalHost(KemuHost):
    """A host of the world outside the cluster (a client, a server on "the internet")."""


class UnderlaySwitch(LinuxBridge):
    """A Linux bridge in a network namespace of its own (see the module docstring)."""

    def __init__(self, name: str, **params):  # noqa: ANN003
        # Forced, not defaulted: Mininet.addSwitch passes its own inNamespace=False.
        params["inNamespace"] = True
        super().__init__(name, **params)

    @property
    def netns(self) -> Netns:
        return Netns.of_process(self.pid, f"switch {self.name}")

    @classmethod
    def setup(cls) -> None:
        # LinuxBridge.setup warns about the root namespace's bridge-nf sysctls, which do not
        # apply to a bridge in its own namespace.
        pathCheck("brctl", moduleName="bridge-utils")


class ShapedIntf(TCIntf):
    """TCIntf with a token bucket sized for the rate. Mininet's 15 kB bucket cannot pass the
    64 kB GSO packets veths carry: at 1 Gbit/s it gave 470 Mbit/s and 80k retransmits."""

    def bwCmds(self, bw=None, **params):  # noqa: ANN001, ANN003, ANN201, N802 (Mininet's)
        if bw is None:
            return [], " root "
        return ["%s qdisc add dev %s root handle 5: " + tbf_args(bw)], " parent 5:1 "


def tbf_args(bw_mbit: float) -> str:
    """tc's words for a token bucket at this rate (the qdisc ShapedIntf puts on a link)."""
    burst = max(65536 + 1514, int(bw_mbit * 1e6 / 8 * 0.002))  # one GSO packet, or 2 ms
    return f"tbf rate {bw_mbit}mbit burst {burst} latency 50ms"


class ShapedLink(TCLink):
    def __init__(self, *args, **kwargs):  # noqa: ANN002, ANN003
        kwargs.setdefault("cls1", ShapedIntf)
        kwargs.setdefault("cls2", ShapedIntf)
        super().__init__(*args, **kwargs)
