"""Stage 5: one emulated cluster — underlay, pod network, kubelets, add-ons, controllers,
edge (cluster.py) — and `running(scenario)`, the lifecycle that always tears it down
(lifecycle.py)."""
