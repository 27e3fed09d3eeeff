# prosody-pfe: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/entrypoint
# staticcheck, pinned; `go run` fetches it from the module proxy once and caches it.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# make run: a development server on 127.0.0.1 with embedded SQLite storage.
RUN_DIR ?= $(CURDIR)/.run
RUN_ENV := PROSODY_PROFILE=development PROSODY_ENVIRONMENT=development \
	PROSODY_DOMAIN=localhost PROSODY_ADMINS=admin@localhost \
	PROSODY_ADMIN_PASSWORD=$${PROSODY_ADMIN_PASSWORD:-admin-password} \
	PROSODY_STORAGE=sqlite PROSODY_INTERFACES=127.0.0.1 \
	PROSODY_HEALTH_LISTEN=127.0.0.1:5282 \
	PROSODY_CONFIG_DIR=$(CURDIR)/config PROSODY_CUSTOM_DIR=$(RUN_DIR)/custom \
	PROSODY_DATA_DIR=$(RUN_DIR)/data PROSODY_RUNTIME_DIR=$(RUN_DIR)/runtime \
	PROSODY_CERTS_DIR=$(RUN_DIR)/certs PROSODY_HOOKS_DIR=$(RUN_DIR)/hooks \
	PROSODY_LOG_FORMAT=console

.PHONY: all build static static-host run deps deps-run test test-unit test-docker bench bench-quick soak soak-quick lint docs fmt clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/entrypoint

# The image's binary: static, no cgo; for the host (dist/entrypoint) and for each architecture
# the Dockerfile picks by TARGETARCH (dist/entrypoint-amd64, dist/entrypoint-arm64).
static: static-host
	CGO_ENABLED=0 GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/entrypoint-amd64 ./cmd/entrypoint
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/entrypoint-arm64 ./cmd/entrypoint

# The host's static binary alone: what the image ships, for the benchmarks.
static-host:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/entrypoint ./cmd/entrypoint

deps-run:
	scripts/install-deps run

deps:
	scripts/install-deps test

run: deps-run build
	@mkdir -p $(RUN_DIR)/data $(RUN_DIR)/runtime $(RUN_DIR)/certs $(RUN_DIR)/custom $(RUN_DIR)/hooks
	@echo "make run: XMPP on 127.0.0.1:5222 (localhost), health on http://127.0.0.1:5282/status"
	@echo "make run: log in as admin@localhost with password $${PROSODY_ADMIN_PASSWORD:-admin-password}"
	$(RUN_ENV) exec $(BIN) prosody

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...  # the pure parts build off Linux too
	cd test/k8s && $(GO) vet ./... && $(GO) vet -tags docker ./...
	$(GO) run $(STATICCHECK) ./...
	scripts/lint-policy

# make test: everything CI runs. It installs what the tests need first.
test: deps lint test-unit test-docker bench-quick soak-quick

test-unit: build
	$(GO) test -count=1 -timeout 30m ./...
	# test/k8s is its own module (the k8s.io API types stay out of the product's go.mod).
	cd test/k8s && $(GO) test -count=1 -timeout 10m ./...

test-docker: static
	scripts/test-docker

bench: deps build
	bench/run

# make soak: the full reliability soak (under 45 minutes, as root); writes RELIABILITY.md.
soak: deps build
	soak/run

# A short run of every soak scenario: bounded in count and time.
soak-quick: build
	soak/run --quick

# A short run of every benchmark: fails when a measurement breaks, not on noise.
bench-quick: build
	bench/run --quick

docs: build
	$(BIN) env --markdown > docs/variables.md

clean:
	rm -rf bin dist .run
