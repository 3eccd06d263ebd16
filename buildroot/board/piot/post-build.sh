#!/usr/bin/env bash
# Buildroot post-build script. $1: the target directory; $2: the board
# flavour from BR2_ROOTFS_POST_SCRIPT_ARGS (unused here).
set -euo pipefail
target=${1:?usage: post-build.sh TARGET_DIR [flavour]}
board_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# piot is init. The boot loaders pass init=/usr/bin/piot; /sbin/init covers
# a command line without it (the kernel's default).
mkdir -p "$target/sbin"
ln -sfn /usr/bin/piot "$target/sbin/init"

# The data partition's mount point: the root file system is mounted
# read-only, so piot cannot create it at boot.
mkdir -p "$target/data"

# PID 1 runs these by absolute path to format and repair /data.
for tool in /usr/sbin/mke2fs /usr/sbin/e2fsck; do
	if [ ! -x "$target$tool" ]; then
		echo "post-build: $tool missing from the target (BR2_PACKAGE_E2FSPROGS, BR2_ROOTFS_MERGED_USR)" >&2
		exit 1
	fi
done

# Left over from init systems the appliance does not have: piot mounts
# what it needs itself (an fstab entry would even name the wrong boot
# partition on the A/B Pi), and there is no shell to read profiles.
rm -rf "$target/etc/init.d" "$target/etc/inittab" "$target/etc/fstab" \
	"$target/etc/profile" "$target/etc/profile.d" "$target/etc/issue" \
	"$target/etc/network" "$target/usr/share/udhcpc" "$target/linuxrc"

mkdir -p "$target/etc/piot"
bash "$board_dir/version.sh" >"$target/etc/piot/version"
