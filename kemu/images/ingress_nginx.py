"""The `kemu/ingress-nginx` image: what the ingress-nginx controller pod does with nginx.

Runs the distribution's nginx on the configuration kemu renders from Ingress objects and
endpoints ($KEMU_RUN_DIR/ingress/nginx.conf), and reloads it (SIGHUP to the master, a graceful
reload) whenever that file changes. Stops nginx when it is stopped itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kemu.images.base import Image

if TYPE_CHECKING:
    from kemu.scenario.objects import Container


class IngressNginx(Image):
    name = "kemu/ingress-nginx"
    description = (
        "the ingress controller: nginx on the configuration kemu renders from Ingress objects")

    @staticmethod
    def entrypoint(container: Container) -> list[str]:
        return [sys.executable, "-m", "kemu.images.ingress_nginx"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=os.path.join(os.environ.get("KEMU_RUN_DIR", "."),
                                                         "ingress", "nginx.conf"))
    args = parser.parse_args()
    config = Path(args.config)
    while not config.exists():  # kemu writes it once the Services are programmed
        time.sleep(0.05)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (config.parent / "tmp" / kind).mkdir(parents=True, exist_ok=True)
    nginx = subprocess.Popen(["nginx", "-c", str(config), "-p", str(config.parent),
                              "-g", "daemon off;"])
    signal.signal(signal.SIGTERM, lambda *_: nginx.terminate())
    mtime = config.stat().st_mtime
    while nginx.poll() is None:
        time.sleep(0.1)
        try:
            current = config.stat().st_mtime
        except OSError:
            continue
        if current != mtime:
            mtime = current
            nginx.send_signal(signal.SIGHUP)
    sys.exit(nginx.returncode or 0)


if __name__ == "__main__":
    main()
