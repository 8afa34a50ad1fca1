#!/usr/bin/env bash
# Throughput of 1, 2, 3 instances of the calculator sharing one pair of Kafka topics (SPEC §6),
# on this machine. For each instance count N: fresh topics with PARTITIONS partitions and a
# group of their own, N instances on 127.0.0.1:3040.., one load generator per instance
# (go run ./bench), CONCURRENCY connections in all, split between them, for DURATION. Prints
# one RESULT line per N with the summed accepted and applied rates.
#
#   BROKERS=127.0.0.1:9092 RUNS=3 DURATION=15s scripts/bench-scale.sh
#
# Environment: BROKERS (default 127.0.0.1:9092), INSTANCES (default "1 2 3"), PARTITIONS (6),
# CONCURRENCY (64), DURATION (15s), RUNS (1), OUT (default /tmp/calculator-bench-scale).
set -euo pipefail
cd "$(dirname "$0")/.."

BROKERS="${BROKERS:-127.0.0.1:9092}"
INSTANCES="${INSTANCES:-1 2 3}"
PARTITIONS="${PARTITIONS:-6}"
CONCURRENCY="${CONCURRENCY:-64}"
DURATION="${DURATION:-15s}"
RUNS="${RUNS:-1}"
OUT="${OUT:-/tmp/calculator-bench-scale}"
mkdir -p "$OUT"
go build -o "$OUT/calculator" .
go build -o "$OUT/bench" ./bench

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

ready() { [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/readyz")" == 200 ]]; }
owned() { curl -s --max-time 2 "http://127.0.0.1:$1/readyz" | grep -o '"partitions":\[[0-9,]*\]' | grep -o '[0-9][0-9]*' || true; }

for run in $(seq "$RUNS"); do
	for n in $INSTANCES; do
		tag="scale-$n-$run-$$-$RANDOM"
		pids=()
		for ((i = 0; i < n; i++)); do
			"$OUT/calculator" -addr "127.0.0.1:$((3040 + i))" -brokers "$BROKERS" -partitions "$PARTITIONS" \
				-commands-topic "$tag-commands" -events-topic "$tag-events" -group "$tag" \
				>"$OUT/instance-$n-$i.log" 2>&1 &
			pids+=($!)
		done
		deadline=$((SECONDS + 120))
		for ((i = 0; i < n; i++)); do
			until ready $((3040 + i)); do
				((SECONDS < deadline)) || { echo "instance $i not ready" >&2; exit 1; }
				sleep 0.2
			done
		done
		# every partition owned, once, before the load starts
		until (( $(for ((i = 0; i < n; i++)); do owned $((3040 + i)); done | sort -u | grep -c .) == PARTITIONS )); do
			((SECONDS < deadline)) || { echo "partitions not shared out" >&2; exit 1; }
			sleep 0.2
		done
		sleep 2 # the second cooperative rebalance
		benches=()
		for ((i = 0; i < n; i++)); do
			"$OUT/bench" -quiet -url "http://127.0.0.1:$((3040 + i))" -duration "$DURATION" \
				-concurrency $((CONCURRENCY / n)) -values $((1024 / n)) -mix create=10,update=90 \
				>"$OUT/bench-$n-$i.out" 2>"$OUT/bench-$n-$i.err" &
			benches+=($!)
		done
		for b in "${benches[@]}"; do wait "$b"; done
		awk -v n="$n" -v run="$run" '
			{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2] } }
			END { printf "RESULT scale instances=%d run=%d accepted_rps=%.0f applied_rps=%.0f\n", n, run, v["accepted_rps"], v["applied_rps"] }
		' < <(for ((i = 0; i < n; i++)); do tail -n 1 "$OUT/bench-$n-$i.out"; done)
		cleanup
		pids=()
	done
done
