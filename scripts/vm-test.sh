#!/usr/bin/env bash
# `make vm-test`: the full-kernel lane. The features this project's own machines lack — sch_netem,
# the openvswitch kernel module, IPVS — exist in a stock distribution kernel, so their code
# paths are tested in a Debian bookworm VM:
#   1. image, built once into .vm/ (ignored by git) from Debian packages with debootstrap: the
#      same scripts/debian-packages.txt as scripts/setup.sh and the Vagrantfile, plus the stock
#      kernel; rebuilt when that list or the VM's init changes;
#   2. boot with qemu: KVM where the host has kvm_intel/kvm_amd, software emulation (TCG)
#      otherwise (much slower, and here the only choice: this machine's /dev/kvm runs PVM
#      guests only); always under a hard timeout;
#   3. inside, scripts/vm-init.sh mounts this checkout (9p, at the same path, so .venv works)
#      and runs the tests that need those kernel features; the VM's verdict is its exit code.
# Run scripts/setup.sh first (make vm-test does): the VM reuses the host's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
vm=.vm
mirror=${KEMU_VM_MIRROR:-http://deb.debian.org/debian}
timeout_s=${KEMU_VM_TIMEOUT:-2400}
tests=${KEMU_VM_TESTS:-tests/integration/test_full_kernel.py tests/integration/test_link_emulation.py tests/integration/test_services.py::test_ipvs_mode_falls_back_to_iptables_with_a_message}

# The lane's own tools (not in the image, so not in debian-packages.txt).
missing=()
for pair in debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 mkfs.ext4:e2fsprogs; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

mkdir -p "$vm"
if [ ! -f "$vm/disk.img" ] || [ scripts/debian-packages.txt -nt "$vm/disk.img" ]; then
  echo "vm-test: building the image (debootstrap, a few minutes)"
  rm -rf "$vm/rootfs" "$vm/disk.img"
  packages=$(grep -v -E '^\s*(#|$)' scripts/debian-packages.txt | tr '\n' ',')
  debootstrap --variant=minbase --include="${packages}linux-image-amd64,kmod,ipvsadm,e2fsprogs" \
    bookworm "$vm/rootfs" "$mirror" > "$vm/debootstrap.log" 2>&1 \
    || { tail -20 "$vm/debootstrap.log"; exit 1; }
  # PID 1 is a stub: it mounts this checkout and runs scripts/vm-init.sh from it, so the
  # lane's steps can change without rebuilding the image.
  cat > "$vm/rootfs/kemu-init" <<'STUB'
#!/bin/sh
mount -t proc proc /proc
for arg in $(cat /proc/cmdline); do case "$arg" in kemu.repo=*) repo=${arg#kemu.repo=} ;; esac; done
modprobe 9pnet_virtio
mkdir -p "$repo"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 kemu "$repo"
exec /bin/sh "$repo/scripts/vm-init.sh"
STUB
  chmod +x "$vm/rootfs/kemu-init"
  cp "$vm"/rootfs/boot/vmlinuz-* "$vm/vmlinuz"
  cp "$vm"/rootfs/boot/initrd.img-* "$vm/initrd.img"
  truncate -s 6G "$vm/disk.img"
  mkfs.ext4 -q -F -d "$vm/rootfs" "$vm/disk.img"
  rm -rf "$vm/rootfs"
fi

accel=tcg slowdown=20  # software emulation: kemu's deadlines stretch (kemu/clock.py)
if [ -e /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
  accel=kvm slowdown=1
fi
echo "vm-test: booting (accel=$accel, timeout ${timeout_s}s); tests: $tests"
# -cpu max: the emulated CPU has the x86-64-v2+ instructions NumPy's wheels (plots) need.
# panic=-1: a guest that panics (its init died) reboots at once, which -no-reboot turns into
# qemu exiting, instead of spinning until the timeout.
log="$vm/console.log"
set +e
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -machine "accel=$accel" -cpu max -m 3072 -smp 2 \
  -kernel "$vm/vmlinuz" -initrd "$vm/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 init=/kemu-init quiet panic=-1 kemu.repo=$repo kemu.tests=${tests// /,} kemu.slowdown=$slowdown" \
  -drive "file=$vm/disk.img,if=virtio,format=raw,snapshot=on" \
  -virtfs "local,path=$repo,mount_tag=kemu,security_model=none" \
  -nographic -no-reboot -nic none < /dev/null 2>&1 | tee "$log"
qemu_rc=${PIPESTATUS[0]}
set -e
result=$(grep -a -o 'KEMU-VM-RESULT rc=[0-9]*' "$log" | tail -1 | cut -d= -f2)
if [ -z "$result" ]; then
  echo "vm-test: the VM gave no result (qemu exit $qemu_rc; see $log)" >&2
  exit 1
fi
echo "vm-test: tests in the VM exited $result"
exit "$result"
