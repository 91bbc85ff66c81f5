GOBIN        ?= $(shell go env GOPATH)/bin
PROTOC       ?= protoc
API_PROTOS   := $(sort $(shell find api -name "*.proto"))
CONF_PROTOS  := $(shell find internal/conf -name '*.proto')
VERSION      ?= $(shell git describe --tags --always 2>/dev/null || echo dev)

# Pinned code generators (installed into $(GOBIN) by `make init`).
PROTOC_GEN_GO       := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC  := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
PROTOC_GEN_OPENAPI  := github.com/google/gnostic/cmd/protoc-gen-openapi@v0.7.1
PROTOC_GEN_VALIDATE := github.com/envoyproxy/protoc-gen-validate@v1.3.3

.PHONY: help run test fuzz bench build static init generate api config ent wire clean

# show this help
help:
	@awk '/^# /{c=substr($$0,3);next} /^[a-z-]+:/{if(c)printf "  %-10s %s\n",substr($$1,1,length($$1)-1),c;c=""}' $(MAKEFILE_LIST)

# run the server on the embedded default (sqlite + sandbox platforms)
run:
	go run ./cmd/mpauth -conf configs/config.yaml

# run every test (the MySQL ones too when MPAUTH_TEST_MYSQL_DSN is set, as .ci/run does)
test:
	@if [ -z "$$MPAUTH_TEST_MYSQL_DSN" ]; then echo "note: MPAUTH_TEST_MYSQL_DSN is unset, storage tests run on SQLite only (.ci/run sets it)"; fi
	go vet ./...
	go test -count=1 ./...

FUZZTIME ?= 30s
# run every fuzz target for FUZZTIME each (CI: FUZZTIME=1s); crashes land in testdata/fuzz
fuzz:
	@set -e; for pkg in $$(go list ./...); do \
		for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			go test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg > /tmp/mpauth-fuzz.log 2>&1 || { cat /tmp/mpauth-fuzz.log; exit 1; }; \
		done; \
	done

# benchmark a real server against same-run ceilings (a few minutes; BENCH_FULL=1: full sweep, 1M identities)
bench:
	go run ./cmd/mpauth-bench -version $(VERSION) $(if $(filter-out 0,$(BENCH_FULL)),-full) $(BENCH_FLAGS)

# build bin/mpauth
build:
	mkdir -p bin && go build -ldflags "-X main.Version=$(VERSION)" -o bin/mpauth ./cmd/mpauth

# build bin/mpauth as a static binary (no cgo, no libc: what the Dockerfile ships)
static:
	mkdir -p bin && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=$(VERSION)" -o bin/mpauth ./cmd/mpauth

# install the pinned code generators (protoc itself: apt-get install protobuf-compiler)
init:
	go install $(PROTOC_GEN_GO)
	go install $(PROTOC_GEN_GO_GRPC)
	go install $(PROTOC_GEN_OPENAPI)
	go install $(PROTOC_GEN_VALIDATE)
	go install ./cmd/protoc-gen-go-errors

# regenerate every committed generated file (protos, openapi.yaml, ent, wire)
generate: init api config ent wire

# generate Go, validators, error helpers and openapi.yaml from api/
api:
	PATH=$(GOBIN):$$PATH $(PROTOC) --proto_path=./api --proto_path=./third_party \
		--go_out=paths=source_relative:./api \
		--go-grpc_out=paths=source_relative:./api \
		--validate_out=lang=go,paths=source_relative:./api \
		--go-errors_out=paths=source_relative:./api \
		--openapi_out=fq_schema_naming=true,default_response=false,naming=proto:. \
		$(API_PROTOS)

# generate the config structs from internal/conf
config:
	PATH=$(GOBIN):$$PATH $(PROTOC) --proto_path=./internal --proto_path=./third_party \
		--go_out=paths=source_relative:./internal $(CONF_PROTOS)

# generate the ent client from internal/data/ent/schema
ent:
	go generate ./internal/data/ent

# generate cmd/mpauth/wire_gen.go
wire:
	go generate ./cmd/mpauth

clean:
	rm -rf bin data
