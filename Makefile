# PIOT appliance. `make run` starts it with ./data; `make test` runs everything.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 0

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/piot

.PHONY: all build run test generate lint bench clean image bundle run-image

all: build

build:
	go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./appliance/cmd/piot

run: build
	./$(BIN) run --data-dir ./data

generate:
	go generate ./...

# Besides gofmt, vet and staticcheck: go.mod and go.sum are what go mod tidy
# makes of them, and imports stand standard library first, then a blank line,
# then the rest (internal/lint/importgroups; gofmt does not check that).
lint:
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	@tidy=$$(go mod tidy -diff) || { echo "go mod tidy needed:"; echo "$$tidy"; exit 1; }
	go run ./internal/lint/importgroups $$(git ls-files -co --exclude-standard '*.go')
	go vet ./...
	go tool staticcheck ./...

test: lint
	bash tests/deps.sh
	# The image the QEMU test boots (tests/image_test.go).
	bash image/build.sh
	PIOT_REQUIRE_MOSQUITTO=1 go test -count=1 -timeout 20m ./...
	# The device adapters, the relay, the spool and the broker's write
	# holds take concurrent packets, piot init runs its services,
	# consoles and clock side by side, and the core changes thing state in
	# place under its lock: again under the race detector.
	CGO_ENABLED=1 go test -race -count=1 -timeout 10m ./services/adapter/... ./services/edge/... ./services/broker/ ./services/core/ ./appliance/initd/...

bench:
	go test -run '^$$' -bench . -benchtime 2000x ./services/store/

# The bootable appliance image (image/out/piot.img) and the same system as
# a signed update bundle (image/out/piot-$(VERSION).bundle); see
# image/README.md. PIOT_SIGNING_KEY names the signing key (default: a
# development key in image/keys/).
PIOT_SIGNING_KEY ?=
image bundle:
	VERSION='$(VERSION)' PIOT_SIGNING_KEY='$(PIOT_SIGNING_KEY)' bash image/build.sh

# Boot it in QEMU (PIOT_QEMU_MODE=kernel for the direct-kernel boot).
run-image: image
	bash image/run-qemu.sh

clean:
	rm -rf bin image/out

# MQTT benchmark, plain mosquitto vs the appliance (not part of `make test`);
# see tests/bench/mqttbench/README.md. Flags: make bench-mqtt BENCH_MQTT_FLAGS='-repeats 3'
BENCH_MQTT_FLAGS ?=
# Device adapter benchmark (not part of `make test`): packets/s through
# POST /adapter into history, plain and encrypted, and into the edge
# adapter's spool.
.PHONY: bench-adapter
bench-adapter: build
	go build -o bin/adapterbench ./tests/bench/adapterbench
	./bin/adapterbench -piot $(BIN)

.PHONY: bench-mqtt
bench-mqtt: build
	bash tests/deps.sh
	go build -o bin/mqttbench ./tests/bench/mqttbench
	./bin/mqttbench -piot $(BIN) $(BENCH_MQTT_FLAGS)
