"""Link emulation on the node links: rate with tbf (kemu/node.py: ShapedIntf); delay, jitter,
loss and queue length with netem where the kernel has sch_netem, and otherwise with kemu's
delay line (kemu/delay_line.c): an iptables NFQUEUE rule in each node hands the packets it
sends on its underlay interface to a small C daemon that releases them late, or drops them.

Either way the impairment applies where a node sends onto its link, so between two nodes the
one-way delay is the configured delay, and a round trip twice that. The delay line's ceiling
is what one userspace process can hold and release: about 1 Gbit/s here (design notes).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from kemu.daemon import Daemon, find_binary
from kemu.errors import KemuError
from kemu.node import UNDERLAY_INTF, K8sNode
from kemu.scenario import LinkParams
from kemu.state import RunState

DELAY_LINE = "kemu-delay-line"
QUEUE = 0  # NFQUEUE numbers are per network namespace: each node has its own queue 0
CEILING = "about 1 Gbit/s through one delay line (one userspace process per node)"


def method(link: LinkParams, netem: bool) -> str:
    """How this link is emulated: "" (nothing but maybe rate), "netem" or "delay-line"."""
    if not (link.delay_ms or link.jitter_ms or link.loss_pct):
        return ""
    return "netem" if netem else "delay-line"


def netem_params(link: LinkParams) -> dict[str, Any]:
    """Mininet TCIntf parameters for the node's side of its link."""
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


class DelayLine:
    """The fallback on one node: the daemon, then the rule that feeds it."""

    def __init__(self, node: K8sNode, link: LinkParams, state: RunState, log_dir: Path):
        argv = [find_binary(DELAY_LINE, "kemu/delay_line.c"), str(QUEUE),
                str(round(link.delay_ms * 1000)), str(round(link.jitter_ms * 1000)),
                str(round(link.loss_pct * 10000)), str(link.queue or 1000)]
        self.node = node
        self.daemon = Daemon(node, "delay line", argv, state, log_dir / f"{node.name}.log")

    def start(self) -> None:
        proc = self.daemon.start(stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise KemuError(self.daemon.failure())
        # No --queue-bypass: if the daemon dies the link goes dark, visibly, rather than
        # silently losing its delay in the middle of a measurement.
        self.node.run("iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-o",
                      UNDERLAY_INTF, "-m", "comment", "--comment", "kemu link emulation",
                      "-j", "NFQUEUE", "--queue-num", str(QUEUE))

    def stop(self) -> None:
        self.daemon.stop()
