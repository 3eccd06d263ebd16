#!/usr/bin/env bash
# Boots the appliance image in QEMU with user-mode networking; the
# appliance's ports are forwarded on 127.0.0.1 only:
#   PIOT_QEMU_PORT_BASE (10000) + 22 -> SSH console, +80 -> HTTP,
#   +443 -> HTTPS, +1883 -> MQTT, +8883 -> MQTTS, +8083 -> MQTT over WebSocket
# Settings (environment):
#   PIOT_QEMU_MODE    uefi (default): OVMF firmware boots piot.img through
#                     systemd-boot; kernel: direct boot of vmlinuz + initramfs
#                     (faster, for tests), with piot.img as the disk
#   PIOT_QEMU_APPEND  extra kernel arguments, e.g. piot.admin_key=ssh-ed25519+AAAA...
#                     (uefi: written to the image's boot entry, as an admin
#                     would edit it in the boot menu; removed when empty)
#   PIOT_QEMU_DISK    the disk image (image/out/piot.img)
#   PIOT_QEMU_DATA    a separate data disk image (default: the data partition
#                     inside the disk); created blank (1 GiB, sparse) if missing
#   PIOT_QEMU_MEM     memory in MiB (1024)
#   PIOT_QEMU_ACCEL   tcg (default) or kvm: KVM guests hang on some hosts,
#                     so it is opt-in
#   PIOT_QEMU_REBOOT  1: a reboot of the guest (or its watchdog) restarts it,
#                     as a real machine would; by default QEMU exits
# The serial console is this terminal (Ctrl-A X quits QEMU); the VGA
# console is not shown.
# QEMU option values are comma-separated lists, not array separators.
# shellcheck disable=SC2054
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out
mode=${PIOT_QEMU_MODE:-uefi}
base=${PIOT_QEMU_PORT_BASE:-10000}
disk=${PIOT_QEMU_DISK:-$out/piot.img}
mem=${PIOT_QEMU_MEM:-1024}
accel=${PIOT_QEMU_ACCEL:-tcg}
append=${PIOT_QEMU_APPEND:-}

if [ ! -f "$disk" ]; then
	echo "run-qemu: $disk not found; build it with: make image" >&2
	exit 1
fi

fwd=""
for p in 22 80 443 1883 8883 8083; do
	fwd="$fwd,hostfwd=tcp:127.0.0.1:$((base + p))-:$p"
done
args=(
	-nodefaults -machine q35 -accel "$accel" -m "$mem" -smp 2
	-display none -vga std -serial mon:stdio
	-netdev "user,id=net0$fwd" -device virtio-net-pci,netdev=net0
	-drive "file=$disk,format=raw,if=none,id=disk0,cache=writeback" -device virtio-blk-pci,drive=disk0
	-device virtio-rng-pci
	# A hardware watchdog, as most boards have (appliance/initd/watchdog.go).
	-device i6300esb
)
[ "${PIOT_QEMU_REBOOT:-0}" = 1 ] || args+=(-no-reboot)
if [ -n "${PIOT_QEMU_DATA:-}" ]; then
	[ -f "$PIOT_QEMU_DATA" ] || truncate -s 1G "$PIOT_QEMU_DATA"
	# The serial number names it the data disk for piot init.
	args+=(-drive "file=$PIOT_QEMU_DATA,format=raw,if=none,id=data0,cache=writeback"
		-device virtio-blk-pci,drive=data0,serial=piot-data)
fi

case "$mode" in
uefi)
	vars=${disk%.img}.efivars
	[ -f "$vars" ] || cp /usr/share/OVMF/OVMF_VARS_4M.fd "$vars"
	# The ESP is the first partition; mtools addresses it by byte offset.
	esp="$disk@@$(($(partx -g -o START -n 1 "$disk") * 512))"
	entry=/loader/entries/piot-cmdline.conf
	if [ -n "$append" ]; then
		tmp=$(mktemp)
		printf 'title PIOT (kernel arguments of run-qemu.sh)\nefi /EFI/Linux/piot-a.efi\noptions %s %s\n' \
			"$(cat "$out/cmdline")" "$append" >"$tmp"
		mmd -i "$esp" ::/loader/entries 2>/dev/null || true
		mcopy -o -i "$esp" "$tmp" "::$entry"
		printf 'timeout 0\ndefault piot-cmdline.conf\nconsole-mode keep\neditor yes\n' >"$tmp"
		mcopy -o -i "$esp" "$tmp" ::/loader/loader.conf
		rm -f "$tmp"
	elif mdir -i "$esp" "::$entry" >/dev/null 2>&1; then
		mdel -i "$esp" "::$entry"
		mcopy -o -i "$esp" "$out/loader.conf" ::/loader/loader.conf
	fi
	args+=(
		-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
		-drive "if=pflash,format=raw,file=$vars"
	)
	;;
kernel)
	args+=(-kernel "$out/vmlinux" -initrd "$out/initramfs.cpio.zst" -append "$(cat "$out/cmdline") $append")
	;;
*)
	echo "run-qemu: PIOT_QEMU_MODE must be uefi or kernel" >&2
	exit 2
	;;
esac
exec qemu-system-x86_64 "${args[@]}"
