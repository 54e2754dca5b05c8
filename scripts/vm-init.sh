#!/bin/sh
# The full-kernel VM's init (scripts/vm-test.sh), run from this checkout by the image's stub
# (which has mounted /proc and the checkout): mount the rest, start Open vSwitch, run the
# tests, report, power off.
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
# (No tmpfs on /tmp: the checkout may live there, and the root disk is a throwaway snapshot.)
mkdir -p /run/netns /var/run/openvswitch /var/log/openvswitch
ip link set lo up
hostname kemu-vm
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    kemu.repo=*) repo=${arg#kemu.repo=} ;;
    kemu.tests=*) tests=$(echo "${arg#kemu.tests=}" | tr ',' ' ') ;;
    kemu.slowdown=*) export KEMU_SLOWDOWN=${arg#kemu.slowdown=} ;;
  esac
done
for module in sch_netem openvswitch ip_vs vxlan tun br_netfilter nfnetlink_queue; do
  modprobe "$module" 2>/dev/null
done
/usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1
cd "$repo"
export KEMU_VM=1
echo "kemu-vm: kernel $(uname -r); running: $tests"
.venv/bin/kemu doctor < /dev/null | cat
# shellcheck disable=SC2086
.venv/bin/pytest -q -p no:cacheprovider -m integration $tests < /dev/null
echo "KEMU-VM-RESULT rc=$?"
sync
echo o > /proc/sysrq-trigger  # power off (minbase has no poweroff); qemu then exits
sleep 10
