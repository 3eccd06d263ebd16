#!/usr/bin/env bash
# Buildroot post-image script. $1: BINARIES_DIR; $2: the board flavour from
# BR2_ROOTFS_POST_SCRIPT_ARGS, which picks genimage-<flavour>.cfg.
#
# Both flavours have two system slots, a and b, on a GPT disk whose last
# partition is piot-data (left blank: piot formats it on first boot). At
# the factory both slots hold the same system; slot a boots.
set -euo pipefail
binaries=${1:?usage: post-image.sh BINARIES_DIR x86_64-efi|raspberrypi4}
flavour=${2:?usage: post-image.sh BINARIES_DIR x86_64-efi|raspberrypi4}
board_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
genimage_cfg="$board_dir/genimage-$flavour.cfg"

# One directory per FAT file system; genimage fills each from its
# mountpoint under this root.
stage="$binaries/piot-boot"
rm -rf "$stage"
mkdir -p "$stage"

# grub-editenv's format: a 1024-byte block padded with '#'.
write_grubenv() {
	local block=$'# GRUB Environment Block\npiot_slot=a\n'
	{
		printf '%s' "$block"
		printf '%*s' $((1024 - ${#block})) '' | tr ' ' '#'
	} >"$1"
}

stage_x86_64_efi() {
	local esp="$stage/esp"
	mkdir -p "$esp/EFI/BOOT" "$esp/EFI/Linux"
	cp "$binaries/efi-part/EFI/BOOT/bootx64.efi" "$esp/EFI/BOOT/"
	cp "$board_dir/x86_64/grub.cfg" "$esp/EFI/BOOT/grub.cfg"
	write_grubenv "$esp/EFI/BOOT/grubenv"
	# The kernel has the EFI stub, so each slot's kernel is an EFI binary.
	local slot
	for slot in a b; do
		cp "$binaries/bzImage" "$esp/EFI/Linux/piot-$slot.efi"
	done
}

stage_raspberrypi4() {
	mkdir -p "$stage/autoboot"
	cp "$board_dir/rpi4/autoboot.txt" "$stage/autoboot/"
	local slot dir
	for slot in a b; do
		dir="$stage/boot-$slot"
		mkdir -p "$dir"
		cp "$binaries/rpi-firmware/start4.elf" "$binaries/rpi-firmware/fixup4.dat" \
			"$binaries/rpi-firmware/config.txt" "$binaries/Image" "$dir/"
		cp "$binaries"/*.dtb "$dir/"
		cp -r "$binaries/rpi-firmware/overlays" "$dir/"
		# Each boot partition mounts its own slot's root file system.
		sed "s/@SLOT@/$slot/g" "$binaries/rpi-firmware/cmdline.txt" >"$dir/cmdline.txt"
	done
}

case $flavour in
x86_64-efi) stage_x86_64_efi ;;
raspberrypi4) stage_raspberrypi4 ;;
*)
	echo "post-image: unknown flavour $flavour" >&2
	exit 1
	;;
esac

tmp="${BUILD_DIR:?Buildroot sets BUILD_DIR}/genimage.tmp"
rm -rf "$tmp"
genimage \
	--rootpath "$stage" \
	--tmppath "$tmp" \
	--inputpath "$binaries" \
	--outputpath "$binaries" \
	--config "$genimage_cfg"
