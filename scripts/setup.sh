#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 / Ubuntu 22.04+ machine for kemu, as root: installs the
# missing distribution packages, starts Open vSwitch if it is installed but not running, and
# makes .venv (from the system python3, so that the distribution's mininet imports) with kemu
# installed in it. Run again at any time: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "kemu set-up needs root (it installs packages; kemu itself creates namespaces)" >&2
  exit 1
fi

mapfile -t wanted < <(grep -v -E '^\s*(#|$)' scripts/debian-packages.txt)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Packages like nginx start a host-wide service on install; kemu only runs them inside its
  # namespaces. Where nothing forbids it already, forbid service starts for this install.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}" || { [ -n "$guard" ] && rm -f "$guard"; exit 1; }
  [ -n "$guard" ] && rm -f "$guard"
fi

# Open vSwitch: kemu's edge switch needs ovs-vswitchd (the userspace datapath works without
# the kernel module). Start it only if it is not answering.
if command -v ovs-vsctl >/dev/null && ! ovs-vsctl --timeout=3 show >/dev/null 2>&1; then
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 \
    || echo "setup: could not start Open vSwitch (kemu doctor will say what that disables)" >&2
fi

if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
# flannel-udp's data path is a small C proxy, as flannel's own is: build it into the venv.
proxy=.venv/bin/kemu-flannel-udp-proxy
if [ ! -x "$proxy" ] || [ plugins/flannel_udp_proxy.c -nt "$proxy" ]; then
  gcc -O2 -Wall -Wextra -o "$proxy" plugins/flannel_udp_proxy.c
fi

# The link-delay fallback for kernels without sch_netem (NFQUEUE + a small C daemon).
line=.venv/bin/kemu-delay-line
if [ ! -x "$line" ] || [ kemu/kernel/delay_line.c -nt "$line" ]; then
  gcc -O2 -Wall -Wextra -o "$line" kemu/kernel/delay_line.c -lnetfilter_queue -lnfnetlink
fi

stamp=.venv/.kemu-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  # --ignore-installed: every Python dependency inside .venv, even where the distribution
  # has one (a system python3-yaml would otherwise satisfy it here and be missing elsewhere,
  # e.g. in the full-kernel VM). Only Mininet comes from the distribution, on purpose.
  .venv/bin/pip install --quiet --disable-pip-version-check --ignore-installed -e '.[test]'
  touch "$stamp"
fi
