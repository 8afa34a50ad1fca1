#!/usr/bin/env bash
# The test command of the README (`make test`), and what CI runs: go vet and
# staticcheck (scripts/lint.sh), every test with the race detector, and each
# benchmark briefly so that benchmarks keep compiling and working. Nothing
# here asserts a duration.
#
# The Kafka tests run against KAFKA_BROKERS when it is set. Otherwise this
# starts a local broker with scripts/kafka-up.sh (Java 17 + Maven; a broker
# that does not start fails the run) and stops it at the end, unless one was
# already listening on 127.0.0.1:${KAFKA_PORT:-9092}, which it then uses.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
	port="${KAFKA_PORT:-9092}"
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		trap 'bash scripts/kafka-down.sh' EXIT
		bash scripts/kafka-up.sh
	fi
	export KAFKA_BROKERS="127.0.0.1:$port"
fi

# The browser test of the subscriptions drives a real EventSource in Debian's
# chromium; install it when it is missing and we may (CI runs as root).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi

bash scripts/lint.sh
go test -race -count=1 ./...
go test -run '^$' -bench . -benchtime 20x ./...
