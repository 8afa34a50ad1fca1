#!/usr/bin/env bash
# The static checks of `make test` (and `make lint` alone): go vet and
# staticcheck. staticcheck is pinned here and fetched through the Go module
# proxy by `go run` on a machine that does not have it yet (then cached).
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2 # supports Go 1.26

go vet ./...
go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" ./...
