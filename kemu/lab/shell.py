"""`kemu shell`: an interactive prompt on a running cluster, like Mininet's CLI but aware of
pods. `web-0 curl -s 10.96.0.10` runs a command in a pod (or node) by name, through `sh -c` in
its namespace as Mininet runs it in a host's shell; pod and node names among the arguments
become their IPs (`a ping -c1 b`). `pods`, `nodes`, `services` list them, `routes X` and
`rules NODE` show a routing table and a node's iptables.

What a line means is decided by `interpret`, a pure function (tested without a cluster);
`LabShell` only reads lines and carries the result out. Commands also come from stdin, for
scripts and tests.
"""

from __future__ import annotations

import cmd
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import yaml
from rich.console import Console
from rich.table import Table

from kemu import registry
from kemu.errors import KemuError
from kemu.kernel.exec import HOST, interactive
from kemu.lab.view import LabView, UnknownTarget
from kemu.report import endpointslices_table, nodes_table, pods_table, services_table


def commands() -> dict[str, str]:
    """The shell's words and their help lines: its own, then each event kind's."""
    events = {kind.action: kind.help for kind in registry.events().values() if kind.help}
    return {
        "pods": "list the pods: namespace/name, node, IP, ready",
        "nodes": "list the nodes: name, underlay IP, pod subnet",
        "services": "list the services: type, cluster IP, ports, ready endpoints",
        "endpointslices": "list the EndpointSlices: every endpoint, with its conditions",
        "routes": "routes NODE_OR_POD — its routing table (ip route)",
        "rules": "rules NODE — the node's iptables (iptables-save): kube-proxy's and policies'",
        **events,
        "help": "this list",
        "exit": "leave the shell (also quit, Ctrl-D)",
    }


USAGE = ("POD_OR_NODE COMMAND... runs COMMAND there (e.g. web-0 curl -s 10.96.0.10; "
         "pod and node names in COMMAND become their IPs)")


@dataclass(frozen=True)
class Action:
    """What one line asks for: an argv to run (stdio passed through), a table or text to
    print, an error, or leaving."""

    argv: tuple[str, ...] = ()
    table: Table | None = None
    text: str = ""
    error: str = ""
    exit: bool = False
    events: tuple[dict[str, Any], ...] = ()  # changes for the lab's owner (lab_control.py)


def interpret(view: LabView, line: str) -> Action:
    """Decide what `line` means in this lab. Runs nothing."""
    line = line.strip()
    if not line or line.startswith("#"):
        return Action()
    word, _, rest = line.partition(" ")
    rest = rest.strip()
    if word in ("exit", "quit", "EOF"):
        return Action(exit=True)
    if word in ("help", "?"):
        return Action(text=help_text())
    listings = {"pods": (pods_table, view.pods), "nodes": (nodes_table, view.nodes),
                "services": (services_table, view.services),
                "endpointslices": (endpointslices_table, view.endpointslices)}
    if word in listings:
        table, rows = listings[word]
        return Action(table=table(rows))
    kinds = registry.events()
    if word in kinds:
        try:
            return Action(events=tuple(kinds[word].from_words(shlex.split(rest))))
        except (ValueError, OSError, yaml.YAMLError) as e:
            return Action(error=f"{word}: {e}")
    if word in ("routes", "rules"):
        try:
            args = shlex.split(rest)
        except ValueError as e:  # an unclosed quote
            return Action(error=f"{word}: {e}")
        if len(args) != 1:
            return Action(error=f"usage: {commands()[word].split(' — ')[0]}")
        try:
            target = view.resolve(args[0])
            if word == "rules" and target.kind == "pod":
                return Action(error=f"{args[0]} is a pod: its node {target.node} holds the "
                                    f"rules for it (rules {target.node})")
            return Action(argv=tuple(target.argv(["ip", "route"] if word == "routes"
                                                 else ["iptables-save"])))
        except KemuError as e:
            return Action(error=str(e))
    try:
        target = view.resolve(word)
    except UnknownTarget as e:
        if "ambiguous" in str(e):
            return Action(error=str(e))
        return Action(error=f"unknown command or target {word!r}: {view.known()}; "
                            f"commands: {', '.join(commands())}")
    if not rest:
        return Action(error=f"usage: {word} COMMAND... (runs COMMAND in {target.kind} "
                            f"{target.name})")
    try:
        return Action(argv=tuple(target.argv(["sh", "-c", substitute_ips(view, rest)])))
    except KemuError as e:
        return Action(error=str(e))


def substitute_ips(view: LabView, command: str) -> str:
    """Pod and node names among a command's arguments become their IPs, as Mininet does for
    host names (`ping -c1 web-1`, `curl web-1:8080`). The program itself (the first word) is
    left alone."""
    parts = re.split(r"(\s+)", command)
    for i in range(2, len(parts), 2):
        name, colon, port = parts[i].rpartition(":")
        if not (colon and port.isdigit()):
            name, port = parts[i], ""
        ip = view.ip_of(name) if name else None
        if ip:
            parts[i] = f"{ip}:{port}" if port else ip
    return "".join(parts)


def help_text() -> str:
    words = commands()
    width = max(map(len, words))
    lines = [f"  {name:<{width}}  {what}" for name, what in words.items()]
    return "\n".join([USAGE, *lines])


# -- the prompt ------------------------------------------------------------------------------

class _Terminated(BaseException):
    """SIGTERM during the shell: unlike Ctrl-C, it ends the shell."""


def _terminated(signum: int, frame: Any) -> None:
    raise _Terminated


class LabShell(cmd.Cmd):
    def __init__(self, view: LabView, stdin: IO[str], stdout: IO[str], interactive: bool,
                 refresh: Callable[[], LabView] | None = None,
                 send: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        super().__init__(stdin=stdin, stdout=stdout)
        self.view = view
        self.refresh = refresh  # the lab as it is now, for the listings
        self.send = send  # hands an event to the lab's owner, returns its reply
        self.use_rawinput = interactive  # readline (history, completion) only on a terminal
        self.prompt = f"kemu:{view.name}> " if interactive else ""
        self.console = Console(file=stdout, highlight=False,
                               width=None if interactive else 200)
        self.status = 0  # the last command's exit code

    def emptyline(self) -> bool:
        return False  # cmd's default repeats the last command

    def onecmd(self, line: str) -> bool:
        if self.refresh and line.split()[:1] in (["pods"], ["nodes"], ["services"],
                                                 ["endpointslices"]):
            self.view = self.refresh()  # readiness and endpoints as they are now
        action = interpret(self.view, line)
        if action.exit:
            return True
        self.status = 0
        if action.error:
            self.console.print(f"[red]{action.error}[/red]", markup=True, soft_wrap=True)
            self.status = 2
        elif action.table is not None:
            self.console.print(action.table)
        elif action.text:
            self.console.print(action.text, markup=False)
        if action.argv:
            self.stdout.flush()
            self.status = interactive(HOST, action.argv)
        for event in action.events:
            reply = self.send(event) if self.send else {
                "error": "events change a lab: `kemu up` one, then `kemu shell`"}
            if "error" in reply:
                self.console.print(f"[red]{reply['error']}[/red]", markup=True, soft_wrap=True)
                self.status = 1
                break
            extra = ", ".join(f"{k}: {v}" for k, v in reply.items() if k != "ok")
            self.console.print(f"{reply['ok']}" + (f" ({extra})" if extra else ""),
                               markup=False, soft_wrap=True)
        return False

    def completenames(self, text: str, *ignored: Any) -> list[str]:
        names = [*commands(), *registry.events(),
                 *(t.short if t.kind == "pod" else t.name for t in self.view.targets)]
        return [n for n in dict.fromkeys(names) if n.startswith(text)]


@contextmanager
def _sigterm_ends_shell() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (and receives signals)
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_shell(view: LabView, stdin: IO[str] | None = None, stdout: IO[str] | None = None,
              refresh: Callable[[], LabView] | None = None,
              send: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> int:
    """The prompt until exit/EOF; Ctrl-C cancels the line (or the command), SIGTERM ends the
    shell as a KeyboardInterrupt. Returns the last command's exit code. `refresh` gives the
    lab as it is now, for pods/nodes/services."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty()
    shell = LabShell(view, stdin, stdout, interactive, refresh, send)
    intro = (f"lab {view.name} (run {view.run_id}): {len(view.nodes)} nodes, "
             f"{len(view.pods)} pods. Type help for commands.") if interactive else ""
    with _sigterm_ends_shell():
        while True:
            try:
                shell.cmdloop(intro)
                if interactive:
                    stdout.write("\n")
                return shell.status
            except KeyboardInterrupt:
                stdout.write("\nInterrupt\n")
                intro = ""
            except _Terminated:
                raise KeyboardInterrupt from None
