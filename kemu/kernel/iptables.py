"""Keeping a set of iptables chains in a node in sync with rendered iptables-restore input.

Like kube-proxy: the input declares every chain it owns (which flushes them), `--noflush`
leaves everything else in the tables alone, and chains this owner declared last time but not
this time are flushed and deleted (`-X`) in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict

from kemu.kernel.node import K8sNode


def declared_chains(text: str) -> dict[str, set[str]]:
    """table → chains declared (`:NAME - [0:0]`) in iptables-restore input."""
    chains: dict[str, set[str]] = defaultdict(set)
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":") and table:
            chains[table].add(line[1:].split()[0])
    return chains


def with_stale_deleted(text: str, previous: dict[str, set[str]]) -> str:
    """`text` plus deletion of the chains `previous` declared that `text` no longer does."""
    current = declared_chains(text)
    out, table = [], ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        if line == "COMMIT":
            stale = sorted(previous.get(table, set()) - current.get(table, set()))
            out += [f":{c} - [0:0]" for c in stale] + [f"-X {c}" for c in stale]
        out.append(line)
    return "\n".join(out) + "\n"


class ChainSet:
    """One owner's chains in one node (kube-proxy's, the policy agent's)."""

    def __init__(self, node: K8sNode, jumps: list[tuple[str, str, str]]):
        self.node = node
        self.jumps = jumps  # (table, built-in chain, rule ending in `-j CHAIN`)
        self.applied = ""
        self.chains: dict[str, set[str]] = {}

    def install(self) -> None:
        """Hook the owner's chains into the built-in ones: its chains made, each jump
        prepended (`-I 1`) in order — one iptables-restore for all (the node is new, so none
        is there yet). Owners installed later come first."""
        tables: dict[str, list[str]] = {}
        for table, builtin, rule in self.jumps:
            target = rule.rsplit("-j ", 1)[1].split()[0]
            lines = tables.setdefault(table, [])
            if f":{target} - [0:0]" not in lines:
                lines.insert(0, f":{target} - [0:0]")
            lines.append(f"-I {builtin} 1 {rule}")
        self.node.run("iptables-restore", "--wait", "--noflush", input="".join(
            f"*{table}\n" + "\n".join(lines) + "\nCOMMIT\n" for table, lines in tables.items()))

    def sync(self, text: str) -> bool:
        """Apply `text` if it differs from what is applied. True if anything changed."""
        if text == self.applied:
            return False
        self.node.run("iptables-restore", "--wait", "--noflush",
                      input=with_stale_deleted(text, self.chains))
        self.applied = text
        self.chains = declared_chains(text)
        return True
