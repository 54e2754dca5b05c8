"""The certificates the ingress controller serves: from a kubernetes.io/tls Secret, or, when
an Ingress names none that exists, generated (self-signed, like ingress-nginx's fake
certificate) with openssl."""

from __future__ import annotations

from pathlib import Path

from kemu.errors import CommandError, KemuError
from kemu.kernel.exec import HOST, run
from kemu.scenario.objects import Ingress, Secret


def write_certificates(ingresses: list[Ingress], secrets: list[Secret],
                       directory: Path) -> dict[str, tuple[Path, Path]]:
    """Certificates per TLS host: from the named kubernetes.io/tls Secret, or one kemu
    generates (self-signed, like ingress-nginx's fake certificate) when it is missing; plus
    the default server's."""
    directory.mkdir(parents=True, exist_ok=True)
    by_key = {s.key: s for s in secrets}
    certs = {"": _generate(directory, "default", "ingress.local")}
    for ing in ingresses:
        for hosts, secret_name in ing.tls:
            secret = by_key.get(f"{ing.namespace}/{secret_name}")
            for host in hosts:
                if secret:
                    crt, key = directory / f"{host}.crt", directory / f"{host}.key"
                    crt.write_text(secret.cert)
                    key.write_text(secret.key_pem)
                    key.chmod(0o600)
                    certs[host] = (crt, key)
                else:
                    certs[host] = _generate(directory, host, host)
    return certs


def _generate(directory: Path, name: str, host: str) -> tuple[Path, Path]:
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    try:
        run(HOST, ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7", "-subj", f"/CN={host}",
                   "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key),
                   "-out", str(crt)])
    except CommandError as e:
        raise KemuError(f"cannot generate a certificate for {host}: {e.stderr}") from None
    return crt, key
