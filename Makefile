# Berth: berthd (the daemon), berth (the CLI), berth-desktop (the GUI).
#
#   make run     set up Docker if needed, build, and run berthd standalone with its web UI
#   make test    set up what the tests need, then vet, check formatting and run every test with -race
#   make bench   the benchmarks; results in docs/benchmarks.md
#   make desktop berth-desktop, the GUI (needs cgo, libgtk-3-dev and libwebkit2gtk-4.1-dev)
#   make deb     the Debian packages berth and berth-desktop in build/deb (see docs/operations.md)

GO      ?= go
BIN     := build/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

# make run keeps its state in the usual system places when run as root, and
# next to the checkout otherwise.
ifeq ($(shell id -u),0)
RUN_ARGS ?=
else
RUN_ARGS ?= --state-dir $(CURDIR)/.run/state --socket $(CURDIR)/.run/berthd.sock
endif

.PHONY: all build desktop run test test-deps vet fmt-check bench docker deb clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/berthd ./daemon/cmd/berthd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/berth ./daemon/cmd/berth

# The Wails app; the same as `wails build` run in gui/ (wails.json).
desktop:
	CGO_ENABLED=1 $(GO) build -trimpath -tags desktop,production,webkit2_41 -ldflags '$(LDFLAGS)' -o $(BIN)/berth-desktop ./gui

docker:
	./build/scripts/ensure-docker.sh

run: docker build
	$(BIN)/berthd $(RUN_ARGS)

test-deps:
	./build/scripts/ensure-test-deps.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: test-deps vet fmt-check
	$(GO) test -race -timeout 30m ./...

bench: docker
	$(GO) test -run '^$$' -bench . -benchtime 25x -timeout 30m ./daemon/... ./gui/... | tee build/bench.txt

# berth_<version>_<arch>.deb and berth-desktop_<version>_<arch>.deb, version
# from git describe (0.0.0+git<N>.<hash> before the first tag).
# `make deb DEB_GOARCH=arm64` cross-builds berth only (berth-desktop needs
# cgo and GTK for its architecture: build it on such a machine).
deb:
	$(GO) run ./installer/cmd/mkdeb -out build/deb $(if $(DEB_GOARCH),-arch $(DEB_GOARCH))

clean:
	rm -rf $(BIN) .run build/deb
