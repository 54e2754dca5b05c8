"""Calling real CNI plugins the way kubelet's runtime (libcni) does.

A network config list (as in /etc/cni/net.d/*.conflist) names plugins that run in order on
ADD, each getting the previous one's result as `prevResult`, and in reverse order on DEL.
Each plugin is the real binary from containernetworking-plugins, run inside the node's network
namespace with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH in its
environment and its config on stdin (CNI spec, "Execution protocol").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kemu.errors import CommandError, KemuError

if TYPE_CHECKING:
    from kemu.kernel.node import K8sNode

CNI_PATHS = ("/usr/lib/cni", "/opt/cni/bin")


def find_cni_path() -> str:
    for path in CNI_PATHS:
        if Path(path, "bridge").exists():
            return path
    raise KemuError(f"no CNI plugins found in {' or '.join(CNI_PATHS)} "
                    "(install containernetworking-plugins)")


class CNIError(KemuError):
    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = ""):
        self.code = code
        super().__init__(f"CNI {plugin} {command} failed (code {code}): {msg}"
                         + (f" ({details})" if details else ""))


@dataclass(frozen=True)
class Attachment:
    """One pod interface, keyed as the CNI spec keys it, with the runtime's capability
    arguments (CNI conventions: `portMappings`, from the pod's hostPorts)."""

    container_id: str
    netns: str  # path of the pod's network namespace
    ifname: str = "eth0"
    port_mappings: tuple[tuple[int, int, str, str], ...] = ()  # (host, container, proto, ip)


class NetworkConfigList:
    def __init__(self, conflist: dict[str, Any], cni_path: str):
        self.conflist = conflist
        self.cni_path = cni_path

    @property
    def name(self) -> str:
        return str(self.conflist["name"])

    def write(self, directory: Path, filename: str) -> Path:
        """Save as /etc/cni/net.d would hold it, for the user to inspect."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / filename
        path.write_text(json.dumps(self.conflist, indent=2) + "\n")
        return path

    def _plugin_config(self, plugin: dict[str, Any], att: Attachment,
                       prev: dict[str, Any] | None) -> str:
        config = {"cniVersion": self.conflist["cniVersion"], "name": self.name, **plugin}
        # As libcni: a capability the plugin declares gets the runtime's arguments for it.
        if plugin.get("capabilities", {}).get("portMappings") and att.port_mappings:
            config["runtimeConfig"] = {"portMappings": [
                {"hostPort": host, "containerPort": port, "protocol": proto.lower(),
                 **({"hostIP": ip} if ip else {})}
                for host, port, proto, ip in att.port_mappings]}
        if prev is not None:
            config["prevResult"] = prev
        return json.dumps(config)

    def _exec(self, node: K8sNode, command: str, plugin: dict[str, Any], att: Attachment,
              prev: dict[str, Any] | None) -> dict[str, Any]:
        env = {
            "CNI_COMMAND": command, "CNI_CONTAINERID": att.container_id,
            "CNI_NETNS": att.netns, "CNI_IFNAME": att.ifname, "CNI_PATH": self.cni_path,
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        binary = str(Path(self.cni_path) / plugin["type"])
        try:
            out = node.run(binary, input=self._plugin_config(plugin, att, prev), env=env)
        except CommandError as e:
            # Plugins report errors as JSON on stdout: {"code", "msg", "details"}.
            try:
                err = json.loads(e.stderr)
                raise CNIError(plugin["type"], command, err.get("code", e.returncode),
                               err.get("msg", ""), err.get("details", "")) from None
            except (ValueError, AttributeError):
                raise CNIError(plugin["type"], command, e.returncode, e.stderr) from None
        return json.loads(out) if out.strip() else {}

    def add(self, node: K8sNode, att: Attachment) -> dict[str, Any]:
        result: dict[str, Any] | None = None
        for plugin in self.conflist["plugins"]:
            result = self._exec(node, "ADD", plugin, att, result)
        return result or {}

    def delete(self, node: K8sNode, att: Attachment, result: dict[str, Any] | None) -> None:
        """DEL in reverse order. Per the spec it must succeed when things are already gone,
        and it is run even after a failed ADD; every plugin is tried, the first error raised."""
        first: CNIError | None = None
        for plugin in reversed(self.conflist["plugins"]):
            try:
                self._exec(node, "DEL", plugin, att, result)
            except CNIError as e:
                first = first or e
        if first:
            raise first


def pod_ips(result: dict[str, Any]) -> list[str]:
    """Addresses (without prefix) a CNI ADD result gave the pod."""
    return [ip["address"].split("/")[0] for ip in result.get("ips", [])]
