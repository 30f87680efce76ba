# audit.plugin — build, test and install. `make help` lists the targets.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

# Expanded only by build (=, not :=): install and uninstall run as root, and
# must not run git in a checkout that may be someone else's (install.sh).
VERSION = $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS = -s -w -X main.version=$(VERSION)
BINARY  := audit.plugin
# Tests build with the tag replay: it adds the -replay option (recorded
# statuses instead of the kernel) to test builds; `make build` has no tags,
# so the shipped binary, which holds cap_audit_control, has no -replay.
TEST_TAGS := replay
GO_TEST := go test -race -count=1 -tags $(TEST_TAGS)
FUZZTIME ?= 10s
SOAK_MINUTES ?= 10

.PHONY: help build test test-deps unit lint fuzz bench soak leadtime-long restore install uninstall deb rpm clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build ./audit.plugin (static, version from git)
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) ./plugin

# Everything that can run here: unit, real-kernel, real-Netdata and install
# tests, lint, and bounded fuzzing. Packages run one at a time (-p 1): the
# kernel and Netdata tests share one kernel, and their timing must not
# compete with each other on two cores.
test: test-deps lint build ## install test dependencies and run every test
	$(GO_TEST) -p 1 -timeout 75m ./...
	$(MAKE) --no-print-directory fuzz

test-deps: ## install what the tests need (Debian packages, Netdata 2.11 from ../shared), if missing
	@./.ci/deps.sh

unit: ## only the fast tests that need no root, kernel or Netdata
	$(GO_TEST) -short ./...

lint: ## gofmt, go vet, go mod tidy must leave nothing to change
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...
	go vet -tags $(TEST_TAGS) ./...
	go mod tidy -diff

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$(go list ./...); do \
	  for f in $$(go test -tags $(TEST_TAGS) -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    go test -tags $(TEST_TAGS) -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5x $$pkg; \
	  done; done

bench: ## benchmarks, one table with ratios against baselines measured in the same run (root)
	./bench/run.sh

soak: ## the plugin under a real Netdata, a real overflow every 30 s, for SOAK_MINUTES (10): takes that + ~15 s (root)
	AUDITPLUGIN_SOAK=$(SOAK_MINUTES)m go test -count=1 -run '^TestSoak' -timeout $$(( $(SOAK_MINUTES) + 10 ))m -v ./e2e/

leadtime-long: ## the lead-time tests plus a 10-minute fill (root): about 25 minutes
	AUDITPLUGIN_LEADTIME_LONG=1 go test -count=1 -run '^TestIntegrationLeadTime$$' -timeout 45m -v ./e2e/

restore: ## put back the audit settings a killed kernel test left changed (root; cmd/audit-restore)
	go run ./cmd/audit-restore

# Packages (packaging/nfpm.yaml). nfpm runs at a pinned version through
# `go run pkg@version`: it stays out of go.mod, so the plugin's module graph
# (and `go mod tidy`) is only what the plugin and its tests use, and the
# version and the module checksums (go.sum of nfpm's own module, checked
# against sum.golang.org) fix the packager exactly. File times are the
# commit's time, so one commit always gives byte-identical packages.
NFPM        := go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
PKG_VERSION  = $(shell ./packaging/version.sh)
PKG_ARCH     = $(shell go env GOARCH 2>/dev/null || echo amd64)
PKG_EPOCH    = $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
PKG_ENV      = PKG_VERSION=$(PKG_VERSION) PKG_ARCH=$(PKG_ARCH) SOURCE_DATE_EPOCH=$(PKG_EPOCH)

build/$(BINARY): FORCE
	@mkdir -p build
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./plugin

deb: build/$(BINARY) ## build build/audit-plugin_VERSION-1_ARCH.deb (then: sudo apt install ./build/audit-plugin_*.deb)
	@rm -f build/*.deb
	$(PKG_ENV) $(NFPM) package -f packaging/nfpm.yaml -p deb -t build/

rpm: build/$(BINARY) ## build build/audit-plugin-VERSION-1.ARCH.rpm
	@rm -f build/*.rpm
	$(PKG_ENV) $(NFPM) package -f packaging/nfpm.yaml -p rpm -t build/

.PHONY: FORCE
FORCE:

install: ## build as install.sh does (no git, no repository configuration run as root) and install (root)
	./install.sh

uninstall: ## remove what install put there (root)
	./install.sh --uninstall

clean: ## remove ./audit.plugin and build/
	rm -f $(BINARY)
	rm -rf build
