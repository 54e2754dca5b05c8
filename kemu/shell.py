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
import io
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import yaml
from rich.console import Console
from rich.table import Table

from kemu.errors import KemuError
from kemu.lab import LabView, UnknownTarget

COMMANDS = {
    "pods": "list the pods: namespace/name, node, IP, ready",
    "nodes": "list the nodes: name, underlay IP, pod subnet",
    "services": "list the services: type, cluster IP, ports, endpoints",
    "routes": "routes NODE_OR_POD — its routing table (ip route)",
    "rules": "rules NODE — the node's iptables (iptables-save): kube-proxy's and policies'",
    "node-down": "node-down NODE — the node stops answering (node-up NODE: back)",
    "link-down": "link-down LINK — carrier lost on a node's link or `wan` (link-up LINK: back)",
    "link-set": "link-set LINK bw=10mbit delay=20ms jitter=2ms loss=1% — new parameters",
    "delete-pod": "delete-pod POD — kubectl delete pod (its Deployment replaces it)",
    "scale": "scale DEPLOYMENT REPLICAS — kubectl scale",
    "apply": "apply FILE — kubectl apply of the Services and NetworkPolicies in FILE",
    "delete": "delete service|networkpolicy NAME — kubectl delete",
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
    if word in ("pods", "nodes", "services"):
        return Action(table={"pods": pods_table, "nodes": nodes_table,
                             "services": services_table}[word](view))
    if word in EVENT_WORDS:
        try:
            return Action(events=tuple(event_docs(word, shlex.split(rest))))
        except (ValueError, OSError, yaml.YAMLError) as e:
            return Action(error=f"{word}: {e}")
    if word in ("routes", "rules"):
        try:
            args = shlex.split(rest)
        except ValueError as e:  # an unclosed quote
            return Action(error=f"{word}: {e}")
        if len(args) != 1:
            return Action(error=f"usage: {COMMANDS[word].split(' — ')[0]}")
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
                            f"commands: {', '.join(COMMANDS)}")
    if not rest:
        return Action(error=f"usage: {word} COMMAND... (runs COMMAND in {target.kind} "
                            f"{target.name})")
    try:
        return Action(argv=tuple(target.argv(["sh", "-c", substitute_ips(view, rest)])))
    except KemuError as e:
        return Action(error=str(e))


EVENT_WORDS = ("node-down", "node-up", "link-down", "link-up", "link-set", "delete-pod",
               "scale", "apply", "delete")
KINDS = {"service": "Service", "svc": "Service", "networkpolicy": "NetworkPolicy",
         "netpol": "NetworkPolicy"}


EVENT_ARGS = {"node-down": "NODE", "node-up": "NODE", "link-down": "LINK", "link-up": "LINK",
              "link-set": "LINK key=value…", "delete-pod": "POD",
              "scale": "DEPLOYMENT REPLICAS", "apply": "FILE",
              "delete": "service|networkpolicy NAME"}


def event_docs(word: str, args: list[str]) -> list[dict[str, Any]]:
    """A shell line as scenario events (`events:` entries without `at`); ValueError if it
    does not say enough."""
    def named(key: str, value: str) -> dict[str, Any]:
        namespace, _, name = value.rpartition("/")
        return {key: name, **({"namespace": namespace} if namespace else {})}

    wrong = ValueError(f"usage: {word} {EVENT_ARGS[word]}")
    if word == "apply":
        if len(args) != 1:
            raise wrong
        with open(args[0]) as f:
            return [{"action": "apply", "manifest": d} for d in yaml.safe_load_all(f) if d]
    if word == "link-set":
        if len(args) < 2 or not all("=" in a for a in args[1:]):
            raise wrong
        return [{"action": word, "link": args[0],
                 **dict(a.split("=", 1) for a in args[1:])}]
    if word == "scale":
        if len(args) != 2 or not args[1].isdigit():
            raise wrong
        return [{"action": word, **named("deployment", args[0]), "replicas": int(args[1])}]
    if word == "delete":
        if len(args) != 2 or args[0].lower() not in KINDS:
            raise wrong
        return [{"action": word, "kind": KINDS[args[0].lower()], **named("name", args[1])}]
    if len(args) != 1:
        raise wrong
    if word == "delete-pod":
        return [{"action": word, **named("pod", args[0])}]
    return [{"action": word, word.split("-")[0]: args[0]}]  # node-… or link-…


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
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {what}" for name, what in COMMANDS.items()]
    return "\n".join([USAGE, *lines])


# -- tables (the shell's and `kemu status`'s) ------------------------------------------------

def pods_table(view: LabView, title: str = "pods") -> Table:
    table = Table(title=title)
    for column in ("pod", "node", "ip", "ready"):
        table.add_column(column)
    for pod in view.pods:
        name = pod["name"] if pod["namespace"] == "default" else \
            f"{pod['namespace']}/{pod['name']}"
        table.add_row(name, pod["node"], pod["ip"], "yes" if pod.get("ready") else "no")
    return table


def nodes_table(view: LabView, title: str = "nodes") -> Table:
    table = Table(title=title)
    for column in ("node", "underlay ip", "pod subnet"):
        table.add_column(column)
    for node in view.nodes:
        table.add_row(node["name"], node.get("underlay_ip", ""), node.get("pod_subnet", ""))
    return table


def services_table(view: LabView, title: str = "services") -> Table:
    table = Table(title=title)
    for column in ("service", "type", "cluster ip", "ports", "endpoints"):
        table.add_column(column)
    for svc in view.services:
        name = svc["name"] if svc["namespace"] == "default" else \
            f"{svc['namespace']}/{svc['name']}"
        ports = ", ".join(f"{p['port']}/{p['protocol']}" +
                          (f" → :{p['nodePort']}" if p.get("nodePort") else "")
                          for p in svc.get("ports", []))
        endpoints = ", ".join(dict.fromkeys(e for p in svc.get("ports", [])
                                            for e in p.get("endpoints", [])))
        cluster_ip = svc.get("clusterIP") or ("None" if svc["type"] == "ClusterIP" else "")
        if svc.get("loadBalancerIP"):
            cluster_ip += f" (LB {svc['loadBalancerIP']})"
        if svc.get("externalName"):
            cluster_ip = svc["externalName"]
        table.add_row(name, svc["type"], cluster_ip, ports, endpoints)
    return table


def render(table: Table, width: int = 200) -> str:
    """A table as text (unit tests, and where no terminal is)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, highlight=False).print(table)
    return buffer.getvalue()


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
        if self.refresh and line.split()[:1] in (["pods"], ["nodes"], ["services"]):
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
            self.status = subprocess.run(list(action.argv)).returncode
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
        names = [*COMMANDS, *EVENT_WORDS,
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
