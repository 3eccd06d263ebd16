#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, only those missing.
set -euo pipefail
need=()
# gcc and libc6-dev: the race detector (go test -race) needs cgo.
# python3-kconfiglib and shellcheck: the static check of the Buildroot tree (buildroot/).
# postgresql: the external store test runs FerretDB on a throwaway cluster (tests/extstore_test.go).
# chromium: the web manager's browser tests drive it headless (tests/web_test.go).
for pkg in chromium curl gcc jq libc6-dev mosquitto-clients mosquitto openssh-client postgresql prometheus python3-aiosmtpd python3-kconfiglib shellcheck tmux; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
