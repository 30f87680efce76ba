# audit.plugin — build, test and install. `make help` lists the targets.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BINARY  := audit.plugin
GO_TEST := go test -race -count=1
FUZZTIME ?= 10s
SOAK_MINUTES ?= 10

.PHONY: help build test test-deps unit lint fuzz bench soak leadtime-long install uninstall clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build ./audit.plugin (static, version from git)
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) ./plugin

# Everything that can run here: unit, real-kernel, real-Netdata and install
# tests, lint, and bounded fuzzing. Packages run one at a time (-p 1): the
# kernel and Netdata tests share one kernel, and their timing must not
# compete with each other on two cores.
test: test-deps lint build ## install test dependencies and run every test
	$(GO_TEST) -p 1 -timeout 75m ./...
	$(MAKE) --no-print-directory fuzz

test-deps: ## install what the tests need (Debian packages), if missing
	@./.ci/deps.sh

unit: ## only the fast tests that need no root, kernel or Netdata
	$(GO_TEST) -short ./...

lint: ## gofmt, go vet, go mod tidy must leave nothing to change
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...
	go mod tidy -diff

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5x $$pkg; \
	  done; done

bench: ## benchmarks, one table with ratios against baselines measured in the same run (root)
	./bench/run.sh

soak: ## the plugin under a real Netdata, a real overflow every 30 s, for SOAK_MINUTES (10): takes that + ~15 s (root)
	AUDITPLUGIN_SOAK=$(SOAK_MINUTES)m go test -count=1 -run '^TestSoak' -timeout $$(( $(SOAK_MINUTES) + 10 ))m -v ./e2e/

leadtime-long: ## the lead-time tests plus a 10-minute fill (root): about 25 minutes
	AUDITPLUGIN_LEADTIME_LONG=1 go test -count=1 -run '^TestIntegrationLeadTime$$' -timeout 45m -v ./e2e/

install: build ## install into the Netdata on this machine (root)
	./install.sh --binary ./$(BINARY)

uninstall: ## remove what install put there (root)
	./install.sh --uninstall

clean:
	rm -f $(BINARY)
