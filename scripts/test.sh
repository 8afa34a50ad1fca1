#!/usr/bin/env bash
# The test command of the README (`make test`), and what CI runs: vet, every
# test with the race detector, and each benchmark briefly so that benchmarks
# keep compiling and working. Nothing here asserts a duration.
set -euo pipefail
cd "$(dirname "$0")/.."

go vet ./...
go test -race -count=1 ./...
go test -run '^$' -bench . -benchtime 20x ./...
