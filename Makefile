# careline: `make demo` starts a local system, `make test` runs every test.
GO       ?= go
TAGS     := goolm
BIN      := bin/careline
VERSION  ?= $(shell git describe --tags --always 2>/dev/null || echo unknown)
LDFLAGS  := -X main.Tag=$(VERSION) -X main.Commit=$(shell git rev-parse HEAD 2>/dev/null) -X 'main.BuildTime=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)'

.PHONY: build test demo lint bench fuzz example-config

build:
	CGO_ENABLED=1 $(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/careline

# Every test: unit tests, PostgreSQL and SQLite, the real Dendrite homeserver, the fake
# Twilio and the headless-Chromium portal test. Needs PostgreSQL on 127.0.0.1:5432 and chromium.
test:
	$(GO) vet -tags $(TAGS) ./...
	$(GO) test -tags $(TAGS) -count=1 -timeout 25m ./...
	$(MAKE) fuzz FUZZTIME=10s

# A local careline on embedded defaults: SQLite, Dendrite, and an SMS sink at http://127.0.0.1:29390/.
demo:
	$(GO) run -tags $(TAGS) ./internal/demo

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet -tags $(TAGS) ./...
	$(GO) tool staticcheck -tags $(TAGS) ./...

# Benchmarks whose numbers are in the README.
bench:
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchtime 2000x -count 1 ./internal/e2e/ ./portal/

example-config:
	$(GO) run -tags $(TAGS) ./cmd/careline -e -c - > example-config.yaml

# Every fuzz target, each for FUZZTIME. `make test` runs them for 10 s each; the README
# states the executions. Crashes found are kept in the package's testdata/fuzz.
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	./phone/:FuzzNormalize \
	./twilioapi/:FuzzValidSignature \
	./bridge/:FuzzWebhookForms \
	./config/:FuzzSecureNotice \
	./portal/form/:FuzzVerifyForm \
	./portal/form/:FuzzReplyForm \
	./portal/form/:FuzzUploadForm \
	./portal/:FuzzCSRFField \
	./portal/:FuzzThreadPaging \
	./portal/locale/:FuzzNegotiate \
	./audit/:FuzzCanonicalEncoding
fuzz:
	@for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; name=$${target##*:}; \
		out=$$($(GO) test -tags $(TAGS) -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$name: $$(echo "$$out" | grep -o 'elapsed: [0-9]*s, execs: [0-9]*' | tail -n 1)"; \
	done
