"""Link emulation on the underlay's links: rate with tbf (node.py: ShapedIntf); delay, jitter,
loss and queue length with netem where the kernel has sch_netem, and otherwise with kemu's
delay line (delay_line.c): an iptables NFQUEUE rule hands the packets leaving one end of the
link to a small C daemon that releases them late, or drops them.

The impairment applies where a node sends onto its link, so between two nodes the one-way
delay is the configured delay, and a round trip twice that. A link between two switches (the
zones topology's WAN) is impaired at both ends, each direction once; there the delay line
sits in the switch's namespace and takes the bridged frames leaving its WAN port.

An `EmulatedLink` is one named link as a scenario's events see it: carrier down and up, and
new parameters in the middle of a run. The delay line's ceiling is what one userspace process
can hold and release: about 1 Gbit/s here (design notes).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from kemu.errors import KemuError
from kemu.kernel.exec import run
from kemu.kernel.node import UnderlaySwitch, tbf_args
from kemu.kernel.processes import PIPE, Daemon, find_binary
from kemu.kernel.records import RunState
from kemu.scenario.model import LinkParams

DELAY_LINE = "kemu-delay-line"
QUEUE = 0  # NFQUEUE numbers are per network namespace: each end has its own queue 0
CEILING = "about 1 Gbit/s through one delay line (one userspace process per link end)"


def method(link: LinkParams, netem: bool) -> str:
    """How this link is emulated: "" (nothing but maybe rate), "netem" or "delay-line"."""
    if not (link.delay_ms or link.jitter_ms or link.loss_pct):
        return ""
    return "netem" if netem else "delay-line"


def netem_params(link: LinkParams) -> dict[str, Any]:
    """Mininet TCIntf parameters for the impaired end of a link."""
    params: dict[str, Any] = {}
    if link.delay_ms:
        params["delay"] = f"{link.delay_ms}ms"
    if link.jitter_ms:
        params["jitter"] = f"{link.jitter_ms}ms"
    if link.loss_pct:
        params["loss"] = link.loss_pct
    if link.queue:
        params["max_queue_size"] = link.queue
    return params


def _netem_args(link: LinkParams) -> str:
    args = f"netem delay {link.delay_ms}ms"
    if link.jitter_ms:
        args += f" {link.jitter_ms}ms"
    if link.loss_pct:
        args += f" loss {link.loss_pct}%"
    return args + f" limit {link.queue or 1000}"


def _run(node: Any, *argv: str, input: str | None = None) -> None:
    """argv in the namespace of a Mininet node (host or switch); raise on failure."""
    run(node.netns, argv, input=input)


class DelayLine:
    """The fallback at one end of a link: the daemon in that end's namespace, then the rule
    that feeds it the packets leaving through that interface."""

    def __init__(self, intf: Any, link: LinkParams, state: RunState, log_dir: Path):
        node = intf.node
        self.intf, self.node = intf, node
        argv = [find_binary(DELAY_LINE, "kemu/kernel/delay_line.c"), str(QUEUE), *_line_args(link),
                str(link.queue or 1000)]
        self.daemon = Daemon(node, "delay line", argv, state, log_dir / f"{intf.name}.log")

    def start(self) -> None:
        bridged = isinstance(self.node, UnderlaySwitch)
        if bridged:  # frames crossing the bridge must pass its netfilter hooks to be queued
            sysctl = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
            if not sysctl.exists():
                raise KemuError("delay on a link between switches needs br_netfilter "
                                "(modprobe br_netfilter), or sch_netem")
            _run(self.node, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
        self.daemon.start(stdin=PIPE, stdout=PIPE)
        self.daemon.ready()
        # No --queue-bypass: if the daemon dies the link goes dark, visibly, rather than
        # silently losing its delay in the middle of a measurement.
        match = ["-m", "physdev", "--physdev-out"] if bridged else ["-o"]
        _run(self.node, "iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", *match,
             self.intf.name, "-m", "comment", "--comment", "kemu link emulation",
             "-j", "NFQUEUE", "--queue-num", str(QUEUE))

    def set(self, link: LinkParams) -> None:
        """New delay, jitter and loss for the packets queued from now on."""
        self.daemon.send([" ".join(_line_args(link))])

    def stop(self) -> None:
        self.daemon.stop()


def _line_args(link: LinkParams) -> list[str]:
    return [str(round(link.delay_ms * 1000)), str(round(link.jitter_ms * 1000)),
            str(round(link.loss_pct * 10000))]


class EmulatedLink:
    """A named link of the underlay (a node's, or the WAN between zones) at run time."""

    def __init__(self, name: str, link: Any, impaired: list[Any], params: LinkParams,
                 netem: bool, state: RunState, log_dir: Path):
        self.name, self.link, self.params = name, link, params
        self.impaired = impaired  # the interfaces whose outgoing packets are delayed
        self.netem, self.state, self.log_dir = netem, state, log_dir
        self.delay_lines: list[DelayLine] = []
        self.up = True

    @property
    def method(self) -> str:
        if self.delay_lines:  # once started they stay in the path, even at zero delay
            return "delay-line"
        return method(self.params, self.netem)

    def start(self) -> None:
        """The parameters the link was built with: rate and netem are already in place
        (Mininet's TCLink); the delay line, where there is no netem, starts here."""
        if self.method == "delay-line":
            self._start_delay_lines()

    def _start_delay_lines(self) -> None:
        for intf in self.impaired:
            line = DelayLine(intf, self.params, self.state, self.log_dir)
            self.delay_lines.append(line)
            line.start()

    def set_carrier(self, up: bool) -> None:
        """Carrier lost or back, as when a cable is pulled: the far end of the link (the
        switch port) goes down, the near end keeps its addresses and routes."""
        far = self.link.intf2
        _run(far.node, "ip", "link", "set", "dev", far.name, "up" if up else "down")
        self.up = up

    def change(self, changes: dict[str, Any]) -> None:
        """New parameters (LinkParams fields): rate on both ends, delay/jitter/loss where
        the link is impaired — through netem, or the delay line."""
        before, self.params = self.params, replace(self.params, **changes)
        if self.params.bw_mbit != before.bw_mbit:  # the qdisc tree changes shape
            for intf in (self.link.intf1, self.link.intf2):
                self._rebuild_qdiscs(intf, netem=self.netem and intf in self.impaired)
        elif self.netem:  # the same tree, new netem parameters: packets in it stay
            for intf in self.impaired:
                self._set_netem(intf, had=bool(method(before, True)))
        if self.netem:
            return
        if self.delay_lines:
            for line in self.delay_lines:
                line.set(self.params)
        elif self.method == "delay-line":
            self._start_delay_lines()

    def _set_netem(self, intf: Any, had: bool) -> None:
        """netem (handle 10:) added, changed or removed in place under the rate (or root)."""
        parent = "parent 5:1" if self.params.bw_mbit else "root"
        if not method(self.params, True):
            _run(intf.node, "tc", "qdisc", "del", "dev", intf.name, *parent.split(), "handle",
                 "10:")
            return
        verb = "change" if had else "add"
        _run(intf.node, "tc", "qdisc", verb, "dev", intf.name, *parent.split(), "handle", "10:",
             *_netem_args(self.params).split())

    def _rebuild_qdiscs(self, intf: Any, netem: bool) -> None:
        """The interface's qdiscs as ShapedIntf builds them: tbf at the root (handle 5:),
        netem under it (handle 10:), or netem alone at the root."""
        run(intf.node.netns, ["tc", "qdisc", "del", "dev", intf.name, "root"],
            check=False)  # none is fine too
        commands, parent = [], "root"
        if self.params.bw_mbit:
            commands.append(f"qdisc add dev {intf.name} root handle 5: "
                            f"{tbf_args(self.params.bw_mbit)}")
            parent = "parent 5:1"
        if netem and method(self.params, True):
            commands.append(f"qdisc add dev {intf.name} {parent} handle 10: "
                            f"{_netem_args(self.params)}")
        if commands:
            _run(intf.node, "tc", "-batch", "-", input="\n".join(commands) + "\n")

    def stop(self) -> None:
        for line in self.delay_lines:
            line.stop()
        self.delay_lines.clear()

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"bw_mbit": p.bw_mbit, "delay_ms": p.delay_ms, "jitter_ms": p.jitter_ms,
                "loss_pct": p.loss_pct, "method": self.method or None, "up": self.up}
