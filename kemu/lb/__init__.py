"""The emulated cloud load balancer: a Ryu/os-ken app (app.py), its launcher (runner.py) and
what kemu drives it with (controller.py)."""
