"""Every table kemu prints: a run's results (one line per measurement, as its kind describes
it), the benchmark's figures, what the machine can do (doctor), and a lab's pods, nodes and
Services. Tables are rich Tables; `text` renders one for a file or a test."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from kemu.kernel.doctor import Capability
from kemu.measure.base import headline, kind


def text(table: Table, width: int = 200) -> str:
    """A table as text (unit tests, and where no terminal is)."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, highlight=False).print(table)
    return buffer.getvalue()


# -- results ---------------------------------------------------------------------------------

def results_table(data: dict[str, Any]) -> Table:
    title = data["scenario"] + (f": {data['description']}" if data.get("description") else "")
    table = Table(title=title)
    matrix = any(run["params"] for run in data["runs"])
    columns = ("run", "measurement", "type", "from", "to", "result")
    for column in columns[0 if matrix else 1:]:
        table.add_column(column)
    for row in summary_rows(data):
        table.add_row(*(row if matrix else row[1:]))
    return table


def summary_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(run, name, type, from, to, result) per measurement, for the summary table."""
    rows = []
    for run in data["runs"]:
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in run["params"].items())
        for m in run["measurements"]:
            rows.append((label, m["name"], m["type"], m["from"], m["to"], describe(m)))
        if run["status"] == "failed":
            rows.append((label, "", "", "", "", f"failed: {run.get('error', '')[:120]}"))
    return rows


def describe(m: dict[str, Any]) -> str:
    """A recorded measurement's summary in one line, as its kind says it."""
    s = m["summary"]
    if s.get("warmup_repeats") and not s.get("repeats"):
        return "warm-up only so far"
    measurement = kind(m["type"])
    if not s or not s.get("repeats", 1):
        return measurement.describe_empty(s)
    return measurement.describe(s)


def compare_table(a: dict[str, Any], b: dict[str, Any], title: str) -> Table:
    """Each measurement's headline figure in two results, run by run, and the change."""
    table = Table(title=title)
    for column in ("run", "measurement", "figure", "before", "after", "change"):
        table.add_column(column)
    runs_b = {json.dumps(r["params"], sort_keys=True): r for r in b["runs"]}
    for run in a["runs"]:
        key = json.dumps(run["params"], sort_keys=True)
        other = {m["name"]: m for m in runs_b.get(key, {}).get("measurements", [])}
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in run["params"].items())
        for m in run["measurements"]:
            if m["name"] not in other:
                continue
            figure, x = headline(m)
            _, y = headline(other[m["name"]])
            change = f"{(y - x) / x * 100:+.1f} %" if x and y is not None else ""
            table.add_row(label, m["name"], figure, f"{x:g}" if x is not None else "-",
                          f"{y:g}" if y is not None else "-", change)
    return table


# -- the benchmark ---------------------------------------------------------------------------

def benchmark_table(results: dict[str, Any]) -> Table:
    table = Table(title=f"kemu bench ({results['duration_s']:.0f} s)")
    for column in ("figure", "value", "context"):
        table.add_column(column)
    dp = results["dataplane"]
    limit = dp["limit"]
    table.add_row("veth-pair limit, TCP 1 stream", f"{limit['tcp_1']['mbps_median']:.0f} Mbit/s",
                  f"4 streams {limit['tcp_4']['mbps_median']:.0f}; RTT p50 "
                  f"{limit['rtt_p50_us']:.0f} µs, p99 {limit['rtt_p99_us']:.0f} µs")
    for name, fig in dp.items():
        if isinstance(fig, dict) and "tcp_1_ratio" in fig:
            table.add_row(f"{name} / limit, TCP 1 stream", f"{fig['tcp_1_ratio']:.2f} ×",
                          f"{fig['tcp_1']['mbps_median']:.0f} Mbit/s; 4 streams "
                          f"{fig['tcp_4_ratio']:.2f} ×; RTT p50 +"
                          f"{fig['rtt_p50_overhead_us']:.0f} µs, p99 {fig['rtt_p99_us']:.0f} µs")
    if "udp_over_vxlan_tcp_1" in dp:
        table.add_row("flannel-udp / flannel-vxlan", f"{dp['udp_over_vxlan_tcp_1']:.2f} ×",
                      "published (k8s PR 17877): 0.60 ×")
    for row in results["bringup"]:
        table.add_row(f"{row['nodes']} nodes × {row['pods']} pods up / down",
                      f"{row['up_s']:.1f} s / {row['down_s']:.1f} s",
                      f"{row['up_vs_raw_mininet']:.1f} × raw Mininet "
                      f"({row['raw_mininet']['up_s']:.1f} s); {row['memory_mib']:.0f} MiB")
    for key, label in (("endpoint_removal_s", "killed pod out of every node's rules"),
                       ("endpoint_removal_third_s", "… the third of three, 0.2 s apart"),
                       ("node_failure_removal_s", "a dead node's pods out of the rules"),
                       ("endpoint_removal_fast_s", "killed pod out of the rules (fast timing)"),
                       ("endpoint_removal_third_fast_s", "… the third (fast timing)"),
                       ("node_failure_removal_fast_s", "a dead node's pods out (fast timing)"),
                       ("calico_join_convergence_s", "calico routes after a node rejoins"),
                       ("lb_detection_s", "load balancer drops a dead node")):
        value = results["control_plane"].get(key)
        if value is not None:
            table.add_row(label, f"{value:.2f} s", "")
    for fig in results["accuracy"].values():
        if not isinstance(fig, dict):
            continue
        if "configured_mbps" in fig:
            table.add_row(f"link {fig['configured_mbps']} Mbit/s", f"{fig['ratio']:.2f} ×",
                          f"{fig['measured_mbps']:.1f} Mbit/s goodput through VXLAN")
        elif "configured_rtt_ms" in fig:
            table.add_row(f"link delay {fig['configured_rtt_ms'] / 2:g} ms one way",
                          f"{fig['ratio']:.2f} ×", f"+{fig['added_rtt_ms']:.2f} ms RTT of "
                          f"{fig['configured_rtt_ms']:g} configured, stdev "
                          f"{fig['stdev_ms']:.2f} ms ({fig['method']})")
        elif "configured_pct" in fig:
            table.add_row(f"link loss {fig['configured_pct']} %", f"{fig['ratio']:.2f} ×",
                          f"{fig['measured_rtt_loss_pct']:.2f} % of round trips lost, "
                          f"{fig['expected_rtt_loss_pct']:.2f} % expected")
    return table


# -- the machine -----------------------------------------------------------------------------

def doctor_table(caps: list[Capability]) -> Table:
    table = Table(title="kemu doctor")
    for column in ("capability", "", "detail", "without it"):
        table.add_column(column)
    for cap in caps:
        mark = "[green]yes[/green]" if cap.ok else ("[red]MISSING[/red]" if cap.required
                                                    else "[yellow]no[/yellow]")
        table.add_row(cap.name, mark, cap.detail, "" if cap.ok else cap.if_missing)
    return table


def plugins_table(backends: dict[str, Any]) -> Table:
    table = Table(title="CNI backends")
    for column in ("name", "description", "module"):
        table.add_column(column)
    for name, cls in sorted(backends.items()):
        table.add_row(name, cls.description, cls.__module__)
    return table


# -- labs ------------------------------------------------------------------------------------

def pods_table(pods: list[dict[str, Any]], title: str = "pods") -> Table:
    """Pods; with a `stand-in for` column when kemu runs stand-ins for some images."""
    table = Table(title=title)
    stand_ins = any(pod.get("stand_in_for") for pod in pods)
    for column in ("pod", "node", "ip", "ready", *(["stand-in for"] if stand_ins else [])):
        table.add_column(column)
    for pod in pods:
        name = pod["name"] if pod["namespace"] == "default" else \
            f"{pod['namespace']}/{pod['name']}"
        row = [name, pod["node"], pod["ip"], "yes" if pod.get("ready") else "no"]
        table.add_row(*row, *([", ".join(pod.get("stand_in_for", []))] if stand_ins else []))
    return table


def endpointslices_table(slices: list[dict[str, Any]], title: str = "endpointslices") -> Table:
    """EndpointSlices: each endpoint with the conditions it is not plain ready in."""
    table = Table(title=title)
    for column in ("endpointslice", "service", "ports", "endpoints"):
        table.add_column(column)
    for s in slices:
        prefix = "" if s["namespace"] == "default" else f"{s['namespace']}/"
        ports = ", ".join(f"{p['port']}/{p['protocol']}" for p in s["ports"])
        endpoints = ", ".join(_with_conditions(e) for e in s["endpoints"])
        table.add_row(prefix + s["name"], prefix + s["service"], ports, endpoints)
    return table


def _with_conditions(endpoint: dict[str, Any]) -> str:
    """"10.244.1.2", or "10.244.1.3 (serving, terminating)", "10.244.1.4 (not ready)"."""
    if endpoint["ready"]:
        return str(endpoint["ip"])
    flags = [c for c in ("serving", "terminating") if endpoint[c]] or ["not ready"]
    return f"{endpoint['ip']} ({', '.join(flags)})"


def nodes_table(nodes: list[dict[str, Any]], title: str = "nodes") -> Table:
    table = Table(title=title)
    for column in ("node", "underlay ip", "pod subnet"):
        table.add_column(column)
    for node in nodes:
        table.add_row(node["name"], node.get("underlay_ip", ""), node.get("pod_subnet", ""))
    return table


def services_table(services: list[dict[str, Any]], title: str = "services") -> Table:
    table = Table(title=title)
    for column in ("service", "type", "cluster ip", "ports", "endpoints"):
        table.add_column(column)
    for svc in services:
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
