"""The edge: external hosts, the OVS edge switch, and the os-ken LoadBalancer app that stands
for the cloud's load balancer (app.py, started by runner.py from switch.py's controller)."""
