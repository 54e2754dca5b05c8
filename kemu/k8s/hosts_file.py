"""A pod's /etc/hosts as kubelet manages it (kubernetes pkg/kubelet/kubelet_pods.go:
managedHostsFileContent), and the name-service order its image brings. Pure.

/etc/hosts: localhost and the IPv6 names, then the pod's own address under its hostname
(`hostname.subdomain.<ns>.svc.<domain>` first when the pod has a subdomain), then hostAliases.
kemu's pods share the machine's UTS namespace, so the name their programs get from
gethostname() is the machine's: it is added to the pod's line too, so that a program resolving
its own name (Python's HTTP servers do as they bind) finds it in files, as in a pod.
/etc/nsswitch.conf: a container image's own (`hosts: files dns`): a pod's lookups never go
through the host's name-service modules (mDNS for `*.local`, systemd-resolved, …).
"""

from __future__ import annotations

from kemu.scenario.objects import PodSpec

NSSWITCH = """\
# The pod's name-service order, as container images ship it: /etc/hosts, then DNS
passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
"""


def hosts_file(pod: PodSpec, ip: str, domain: str, uts_name: str = "") -> str:
    hostname = (pod.hostname or pod.name)[:63]
    names = [hostname] + ([uts_name] if uts_name and uts_name != hostname else [])
    if pod.subdomain:
        names.insert(0, f"{hostname}.{pod.subdomain}.{pod.namespace}.svc.{domain}")
    lines = ["# Kubernetes-managed hosts file.",
             "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix",
             "fe00::1\tip6-allnodes",
             "fe00::2\tip6-allrouters",
             f"{ip}\t" + "\t".join(names)]
    if pod.host_aliases:
        lines.append("\n# Entries added by HostAliases.")
        lines += [f"{alias_ip}\t" + "\t".join(alias_names)
                  for alias_ip, alias_names in pod.host_aliases]
    return "\n".join(lines) + "\n"
