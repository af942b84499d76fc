# distq — see README.md. `make run` and `make test` are the two commands.
GO        ?= go
TEST_REDIS_ADDR ?= 127.0.0.1:6379
export TEST_REDIS_ADDR

.PHONY: run test vet lint build bench check-deployments container-check fmt

## run: the whole stack (simulator + api + worker) on an embedded Redis.
## Built, then exec'd rather than `go run`, which exits 1 on Ctrl-C whatever
## the program's status: Ctrl-C ends devstack cleanly with status 0.
run:
	@mkdir -p bin
	$(GO) build -o bin/devstack ./cmd/devstack
	exec bin/devstack

## test: go vet, then every test with the race detector against a real Redis.
test: vet
	@scripts/with-redis.sh $(GO) test -race -count=1 -timeout 15m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

## lint: gofmt, go vet, staticcheck, and go.mod/go.sum exactly as `go mod tidy` leaves them.
lint: vet
	$(GO) run $(STATICCHECK) ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum differ from 'go mod tidy' (diff above): run it and commit"; exit 1; }

build:
	mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/...

## bench: quota and ingest figures against the simulator with real processes.
## BENCH_ARGS passes distqbench's flags, e.g. the fair share between teams
## (docs/QUOTA.md): make bench BENCH_ARGS='-fair -fair-weights 3:1 -runs 3'
bench: build
	@scripts/with-redis.sh $(GO) run ./cmd/distqbench $(BENCH_ARGS)

check-deployments:
	bash scripts/check-deployments.sh

## container-check: build the image with the real Dockerfile, run docker-compose.yml
## on a local Docker daemon and drive it (see docs/DEPLOYMENT.md; root, ~10 min cold).
container-check:
	bash scripts/container-check.sh

fmt:
	gofmt -w $$(git ls-files '*.go')
