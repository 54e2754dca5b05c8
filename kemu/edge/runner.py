"""Launch the load-balancer app on os-ken, doing what the removed `osken-manager` did:
patch for eventlet, parse os-ken's configuration, run the app.

    KEMU_LB_CONFIG=lb.json KEMU_LB_STATE_PORT=8090 python -m kemu.edge.runner --port 6653

Runs as a process of its own, never inside kemu's (eventlet patches the standard library).
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="OpenFlow listen port")
    args = parser.parse_args()

    import logging

    from os_ken.lib import hub
    hub.patch(thread=False)
    from os_ken import cfg
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from os_ken.base.app_manager import AppManager
    cfg.CONF(args=["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(args.port)],
             project="os_ken")
    AppManager.run_apps(["kemu.edge.app"])


if __name__ == "__main__":
    main()
