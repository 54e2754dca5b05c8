"""Stage 3, the kernel: the only code that runs commands or changes kernel state — the runner
and namespaces (exec.py), processes (processes.py), the run's records (records.py), Mininet
nodes (node.py), CNI plugins (cni.py), iptables (iptables.py), link emulation (links.py),
certificates (certs.py), and what this machine can do (doctor.py)."""
