"""Stage 2, the control plane: the store of live objects (store.py), the controllers that
reconcile from it (controllers.py), and the pure renderers they use: endpoints, kube-proxy's
rules, NetworkPolicy chains, DNS records, the ingress controller's nginx configuration. What
renders is handed to sinks the cluster provides (kernel/iptables.py, files)."""
