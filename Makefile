# Amana: make help lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
GO ?= go
BIN := bin
PORT ?= 8080
DATA ?= demo-data

WEBJS := relay/web/js
.PHONY: help build run demo test bench fuzz fuzz-short lint vectors clean web web-deps web-check crash powercut soak vuln release

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

build: ## build amana and amana-relay into ./bin
	$(GO) build -trimpath -o $(BIN)/ ./cmd/amana ./cmd/amana-relay

run: build ## start a relay on 127.0.0.1:$(PORT) with a demo desk in ./$(DATA)
	@BIN=$(BIN) DATA=$(DATA) PORT=$(PORT) scripts/demo/run.sh

demo: build ## run the whole flow once: keys, desk, submit, pull, show, export
	$(GO) build -o $(BIN)/ filippo.io/age/cmd/age
	@BIN=$(BIN) scripts/demo/demo.sh

STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

test: web-deps ## vet, staticcheck, every test with the race detector (TestPull150k, too slow under it, runs again without), short fuzzing and a short soak; the short power-cut run is TestShort in ./test/powercut (tests needing tor, a browser, or root with FUSE and e2fsprogs fail if CI is set and they are missing)
	$(GO) vet ./...
	GOFLAGS= $(STATICCHECK) ./...
	cd $(WEBJS) && npm test
	$(MAKE) --no-print-directory web-check
	$(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -count=1 -timeout 20m -run '^TestPull150k$$' ./relay/
	$(MAKE) --no-print-directory fuzz-short
	$(GO) run ./test/soak -quick

web-deps: $(WEBJS)/node_modules/.package-lock.json ## install the browser client's npm packages from the lockfile

$(WEBJS)/node_modules/.package-lock.json: $(WEBJS)/package-lock.json
	cd $(WEBJS) && npm ci --no-audit --no-fund
	@touch $@

web: web-deps ## rebuild the browser client bundle relay/web/static/amana.js
	cd $(WEBJS) && npm run build

web-check: web-deps ## check that rebuilding the committed bundle gives the same bytes
	@cp relay/web/static/amana.js $(WEBJS)/.amana.js.committed
	@cd $(WEBJS) && npm run --silent build >/dev/null
	@if cmp -s relay/web/static/amana.js $(WEBJS)/.amana.js.committed; then rm $(WEBJS)/.amana.js.committed; echo "web-check: relay/web/static/amana.js rebuilds byte-identical"; \
	else echo "web-check: relay/web/static/amana.js differs from a rebuild from the lockfile: run make web and commit it"; mv $(WEBJS)/.amana.js.committed relay/web/static/amana.js; exit 1; fi

bench: ## print speed figures as ratios against baselines measured in the same run
	$(GO) run ./test/bench

FUZZTIME ?= 60s
FUZZPKGS := ./crypto ./relay ./relay/client ./onion ./handler/cases ./handler/evidence ./handler/journal ./handler/packs ./handler/report ./handler/sla ./cmd/internal/cli ./cmd/internal/relaycli
# Go 1.26's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded", and no failing input, when -fuzztime runs out
# (go.dev/issue/75804, fixed in Go 1.27). The fuzzer therefore runs on
# Go 1.27.3, which the go command fetches from the module proxy once.
FUZZ_GO ?= GOTOOLCHAIN=go1.27.3 $(GO)
fuzz: ## run every fuzz target for FUZZTIME each (default 60s)
	@for p in $(FUZZPKGS); do for t in $$($(FUZZ_GO) test $$p -list '^Fuzz' | grep '^Fuzz'); do \
		echo "== $$p $$t"; $(FUZZ_GO) test $$p -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done; done

fuzz-short: FUZZTIME = 3s
fuzz-short: fuzz ## run every fuzz target briefly

crash: ## the long crash-safety run: 200 rounds of SIGKILL during submissions, and killed pulls
	AMANA_CRASH_ROUNDS=200 $(GO) test ./test/crash -count=1 -v -timeout 60m

powercut: ## the long power-cut run: 180 cuts of the relay's spool and the case store on a disk with a volatile write cache, with the nobarrier control
	AMANA_POWERCUT_LONG=1 $(GO) test ./test/powercut -run '^TestLong$$' -count=1 -v -timeout 60m

soak: ## the long load and soak run: 300 submitters, a tenth of them hostile, for 5 minutes
	$(GO) run ./test/soak

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
RELEASE_ARCHES ?= amd64 arm64
RELEASE_LDFLAGS := -s -w -buildid= -X github.com/amana-relay/amana/cmd/internal/ui.version=$(VERSION)
release: ## build the Linux release archives (amd64, arm64) into ./dist with SHA256SUMS: binaries, systemd unit, install.sh, docs
	@rm -rf dist && mkdir -p dist
	@set -e; for arch in $(RELEASE_ARCHES); do \
		d=amana-$(VERSION)-linux-$$arch; mkdir -p dist/$$d/bin dist/$$d/deploy dist/$$d/docs; \
		GOFLAGS= CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -buildvcs=true -ldflags '$(RELEASE_LDFLAGS)' -o dist/$$d/bin/ ./cmd/amana ./cmd/amana-relay; \
		cp cmd/amana-relay/deploy/*.service cmd/amana-relay/deploy/*.timer cmd/amana-relay/deploy/install.sh dist/$$d/deploy/; \
		cp docs/*.md dist/$$d/docs/; cp LICENSE README.md dist/$$d/; \
		tar --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner -C dist -cf - $$d | gzip -n > dist/$$d.tar.gz; \
		rm -rf dist/$$d; \
	done
	@cd dist && sha256sum *.tar.gz > SHA256SUMS && cat SHA256SUMS

vuln: ## check dependencies for known vulnerabilities (needs the internet; not run in CI)
	GOFLAGS= $(GO) run golang.org/x/vuln/cmd/govulncheck@latest ./...

lint: ## check formatting and vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'run gofmt -w'; exit 1; }
	$(GO) vet ./...

vectors: ## rewrite the deterministic test vectors in crypto/testdata/vectors
	$(GO) test ./crypto -run TestVectors -update

clean: ## remove ./bin, ./dist and the demo data
	rm -rf $(BIN) dist $(DATA)
