################################################################################
#
# piot
#
################################################################################

# The source is the repository around this BR2_EXTERNAL tree: Buildroot
# rsyncs the working copy (without .git) instead of downloading a release.
PIOT_SITE = $(BR2_EXTERNAL_PIOT_PATH)/..
PIOT_SITE_METHOD = local
PIOT_LICENSE = Proprietary

PIOT_GOMOD = github.com/piot-appliance/piot
PIOT_BUILD_TARGETS = appliance/cmd/piot
# One build target: installed as $(TARGET_DIR)/usr/bin/$(PIOT_BIN_NAME).
PIOT_BIN_NAME = piot

# The local site method makes Buildroot's own version "custom"; bake in
# the same git describe string as `make build` and /etc/piot/version.
PIOT_APP_VERSION := $(shell bash $(BR2_EXTERNAL_PIOT_PATH)/board/piot/version.sh)
PIOT_LDFLAGS = -s -w -X main.version=$(PIOT_APP_VERSION)
# pkg-golang passes -trimpath too; repeated so the flags match `make build`
# whatever the Buildroot version.
PIOT_BUILD_OPTS = -trimpath

# The same pure-Go static binary as the QEMU image, whatever the target's C
# library. GOTOOLCHAIN=auto: Buildroot's Go (1.23 in 2025.02) is older than
# the go line of go.mod, so the go command switches to that release (fetched
# into the module cache by PIOT_GO_VENDOR below; Buildroot pins
# GOTOOLCHAIN=local, which would refuse).
PIOT_GO_ENV = CGO_ENABLED=0 GOTOOLCHAIN=auto

# Buildroot vendors Go modules in its download step, which the local site
# method skips, and builds with -mod=vendor and GOPROXY=off. So vendor in
# the build directory first; this is the one step that needs the network
# (GOPROXY, GONOSUMDB and the like come from the caller's environment).
# -modcacherw keeps the module cache deletable by `make clean`.
define PIOT_GO_VENDOR
	cd $(@D) && $(HOST_GO_COMMON_ENV) GOFLAGS=-modcacherw GOPROXY="$(GOPROXY)" \
		GOTOOLCHAIN=auto $(GO_BIN) mod vendor
endef
PIOT_PRE_BUILD_HOOKS += PIOT_GO_VENDOR

$(eval $(golang-package))
