#!/usr/bin/env bash
# Prints the appliance version: git describe of the repository, as the
# top-level Makefile bakes into `make build`. Used by piot.mk (-X
# main.version) and post-build.sh (/etc/piot/version) so both agree.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
git -C "$repo" describe --always --dirty 2>/dev/null || echo dev
