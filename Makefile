# careline: `make demo` starts a local system, `make test` runs every test.
GO       ?= go
TAGS     := goolm
BIN      := bin/careline
VERSION  ?= $(shell git describe --tags --always 2>/dev/null || echo unknown)
LDFLAGS  := -X main.Tag=$(VERSION) -X main.Commit=$(shell git rev-parse HEAD 2>/dev/null) -X 'main.BuildTime=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)'

.PHONY: build test demo lint bench fuzz example-config load load-memory

build:
	CGO_ENABLED=1 $(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/careline

# Every test: unit tests, PostgreSQL and SQLite, the real Dendrite homeserver, the fake
# Twilio and the headless-Chromium portal test. Needs PostgreSQL on 127.0.0.1:5432 and chromium.
test:
	$(GO) vet -tags $(TAGS) ./...
	$(GO) test -tags $(TAGS) -count=1 -timeout 25m ./...
	$(MAKE) fuzz

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

# Inbound load on a stub homeserver (BENCHMARKS.md): SQLite and PostgreSQL, 1/8/32 concurrent
# webhooks, then the outbox drain. PEER=path/to/mautrix-twilio measures that bridge the same way.
PEER      ?=
LOADFLAGS ?= -db sqlite,postgres -concurrency 1,8,32 -messages 4000 -patients 50
load: build
	$(GO) run -tags $(TAGS) ./cmd/careline-load -bin $(BIN) $(if $(PEER),-peer $(PEER)) $(LOADFLAGS)
	$(GO) test -tags $(TAGS) -run '^$$' -bench BenchmarkOutboxDrain -benchtime 4000x -count 1 ./bridge/

# careline's memory with 100,000 patients in the database and 1,000 of them active.
load-memory: build
	$(GO) run -tags $(TAGS) ./cmd/careline-load -bin $(BIN) -db sqlite,postgres -memory-patients 100000 -memory-active 1000

example-config:
	$(GO) run -tags $(TAGS) ./cmd/careline -e -c - > example-config.yaml
	CARELINE_UPDATE_COMPOSE=1 $(GO) test -tags $(TAGS) -count=1 -run '^TestComposeConfigIsCurrent$$' ./cmd/careline/

# Every fuzz target, each for a fixed number of executions (about 5 s each on two cores), so a
# run fails only on a real finding: a -fuzztime given in seconds races Go's fuzz coordinator at
# the deadline on a loaded machine (golang/go#75804). `make fuzz FUZZSCALE=10` runs ten times
# as many. Crashes found are kept in the package's testdata/fuzz.
FUZZSCALE ?= 1
FUZZ_TARGETS := \
	./phone/:FuzzNormalize:30000 \
	./twilioapi/:FuzzValidSignature:30000 \
	./bridge/:FuzzWebhookForms:15000 \
	./config/:FuzzSecureNotice:80000 \
	./portal/form/:FuzzVerifyForm:2500 \
	./portal/form/:FuzzReplyForm:12000 \
	./portal/form/:FuzzUploadForm:300 \
	./portal/:FuzzCSRFField:15000 \
	./portal/:FuzzThreadPaging:4000 \
	./portal/locale/:FuzzNegotiate:150000 \
	./audit/:FuzzCanonicalEncoding:80000 \
	./fhir/:FuzzParseAppointment:60000
fuzz:
	@for target in $(FUZZ_TARGETS); do \
		rest=$${target#*:}; pkg=$${target%%:*}; name=$${rest%%:*}; execs=$$(( $${rest##*:} * $(FUZZSCALE) )); \
		out=$$($(GO) test -tags $(TAGS) -run '^$$' -fuzz "^$$name\$$" -fuzztime $${execs}x $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$name: $$(echo "$$out" | grep -o 'elapsed: [0-9]*s, execs: [0-9]*' | tail -n 1)"; \
	done
