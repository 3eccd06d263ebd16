#!/usr/bin/env bash
# Builds the appliance image into image/out/ (see image/README.md):
#   piot.img                  GPT disk: EFI system partition (systemd-boot,
#                             slots EFI/Linux/piot-a.efi and piot-b.efi) and
#                             the blank data partition (formatted at first boot)
#   piot-a.efi                the system slot: kernel + initramfs + command line
#   vmlinux, initramfs.cpio.zst, cmdline   for a direct-kernel boot (tests; PVH entry)
#   piot-<version>.bundle     the system slot as a signed update bundle
# The bundle is signed with PIOT_SIGNING_KEY (a PEM ed25519 private key),
# or with a development key generated into image/keys/; the image trusts
# the signing key's public half, or the keys in PIOT_TRUSTED_KEYS.
# Needs only Debian packages (installed when missing) and the Go toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH" CGO_ENABLED=0

# PIOT_IMAGE_OUT builds elsewhere (the update test builds a second
# version); the kernel package cache stays shared.
OUT=${PIOT_IMAGE_OUT:-image/out}
CACHE=image/out/cache
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
ESP_MIB=${PIOT_IMAGE_ESP_MIB:-160}
DATA_MIB=${PIOT_IMAGE_DATA_MIB:-1024}
CMDLINE="console=tty1 console=ttyS0,115200 quiet loglevel=3 panic=10"

need=()
for pkg in binutils dosfstools e2fsprogs fdisk mtools ovmf qemu-system-x86 systemd-boot-efi xz-utils; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

mkdir -p "$OUT" "$CACHE"

# The kernel: Debian's, as a package file, unpacked without installing.
# Package lists may be missing or stale on a new machine (a security
# update removes the old version from the mirror): refresh once and retry.
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
refresh() { if [ "$(id -u)" -ne 0 ]; then sudo apt-get update -qq; else apt-get update -qq; fi; }
pkg=$(kernel_pkg)
if [ -z "$pkg" ]; then
	refresh
	pkg=$(kernel_pkg)
fi
deb=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" | head -1)
if [ -z "$deb" ]; then
	if ! (cd "$CACHE" && apt-get download "$pkg"); then
		refresh
		pkg=$(kernel_pkg)
		(cd "$CACHE" && apt-get download "$pkg")
	fi
	deb=$(find "$CACHE" -maxdepth 1 -name "${pkg}_*.deb" | head -1)
fi
if [ -z "$deb" ]; then
	echo "build.sh: could not download the kernel package ($pkg)" >&2
	exit 1
fi
kroot=$CACHE/kernel-$pkg
if [ ! -d "$kroot" ]; then
	rm -rf "$kroot.tmp"
	dpkg-deb -x "$deb" "$kroot.tmp"
	mv "$kroot.tmp" "$kroot"
fi
cp "$kroot"/boot/vmlinuz-* "$OUT/vmlinuz"

# PIOT_GO_TAGS: the update test builds a bundle whose piot run fails
# (piot_failrun) to see it rolled back.
go build -trimpath -tags "${PIOT_GO_TAGS:-}" -ldflags "-s -w -X main.version=$VERSION" -o "$OUT/piot" ./appliance/cmd/piot
go build -o "$OUT/mkimage" ./image/mkimage

# The root file system: the overlay shared with buildroot/, plus what
# only a build knows.
stage=$OUT/rootfs
rm -rf "$stage"
cp -a image/rootfs "$stage"
date -u +%Y-%m-%dT%H:%M:%SZ >"$stage/etc/piot/build-time"
# The keys whose update bundles this image installs (appliance/update).
signing_key=$("$OUT/mkimage" keys -key "${PIOT_SIGNING_KEY:-}" -dir image/keys \
	-trusted "${PIOT_TRUSTED_KEYS:-}" -trusted-out "$stage/etc/piot/update-keys.pem")
cp /etc/mke2fs.conf "$stage/etc/mke2fs.conf"
"$OUT/mkimage" vmlinux "$OUT/vmlinuz" "$OUT/vmlinux"
"$OUT/mkimage" initramfs -kernel-root "$kroot" -piot "$OUT/piot" -overlay "$stage" \
	-modules image/modules.txt -programs /usr/sbin/mke2fs,/usr/sbin/e2fsck \
	-version "$VERSION" -o "$OUT/initramfs.cpio.zst"
echo "$CMDLINE" >"$OUT/cmdline"

# systemd-boot boots the slot whose IMAGE_VERSION sorts highest among
# those not marked bad (boot counting): the build time first makes a newly
# installed slot win over the running one, whatever the version's name (a
# commit hash does not sort). VERSION_ID is the version people read.
image_version=$(date -u -d "$(cat "$stage/etc/piot/build-time")" +%Y%m%d%H%M%S).$VERSION
cat >"$OUT/os-release" <<OSREL
NAME="PIOT"
PRETTY_NAME="PIOT appliance $VERSION"
ID=piot
VERSION_ID=$VERSION
IMAGE_ID=piot
IMAGE_VERSION=$image_version
OSREL
"$OUT/mkimage" uki -kernel "$OUT/vmlinuz" -initrd "$OUT/initramfs.cpio.zst" \
	-cmdline "$CMDLINE" -os-release "$OUT/os-release" -o "$OUT/piot-a.efi"

# The same slot as an update bundle for the appliances already running.
bundle=$OUT/piot-$VERSION.bundle
rm -f "$OUT"/piot-*.bundle
"$OUT/mkimage" bundle -slot "$OUT/piot-a.efi" -name piot.efi -key "$signing_key" -version "$VERSION" \
	-min-version "${PIOT_BUNDLE_MIN_VERSION:-}" -build-time "$stage/etc/piot/build-time" -o "$bundle"

# The EFI system partition: systemd-boot finds the slots in EFI/Linux
# (boot loader specification, type 2); an update writes piot-b.efi and
# boot counting in the file name decides which one is trusted.
esp=$OUT/esp.img
rm -f "$esp"
mkfs.vfat -F 32 -n PIOT-ESP -C "$esp" $((ESP_MIB * 1024)) >/dev/null
printf 'timeout 0\ndefault piot-*\nconsole-mode keep\neditor yes\n' >"$OUT/loader.conf"
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/EFI/Linux ::/loader
mcopy -i "$esp" /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/systemd/systemd-bootx64.efi
mcopy -i "$esp" "$OUT/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$OUT/piot-a.efi" ::/EFI/Linux/piot-a.efi

# The disk: GPT with the ESP and the data partition (left blank: the
# first boot formats it, which is also what a fresh disk looks like).
img=$OUT/piot.img
rm -f "$img"
truncate -s $(((1 + ESP_MIB + DATA_MIB + 1) * 1024 * 1024)) "$img"
sfdisk -q "$img" <<SFDISK
label: gpt
start=1MiB, size=${ESP_MIB}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="PIOT-ESP"
start=$((1 + ESP_MIB))MiB, size=${DATA_MIB}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="piot-data"
SFDISK
dd if="$esp" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$esp"

size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "image: $img (data partition ${DATA_MIB} MiB, sparse)"
echo "  kernel        $(mib "$(size "$OUT/vmlinuz")")"
echo "  initramfs     $(mib "$(size "$OUT/initramfs.cpio.zst")") (piot $(mib "$(size "$OUT/piot")") uncompressed)"
echo "  system slot   $(mib "$(size "$OUT/piot-a.efi")") (budget 40 MiB)"
echo "  bundle        $(mib "$(size "$bundle")") $bundle (signed with $signing_key)"
