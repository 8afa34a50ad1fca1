#!/usr/bin/env bash
# Stop the broker, or every node of the cluster, started by scripts/kafka-up.sh in
# KAFKA_RUN_DIR (SIGTERM to all, then SIGKILL to those still running after
# KAFKA_STOP_TIMEOUT seconds, default 20) and delete their data so the next kafka-up starts
# fresh. Logs stay in the run dir (logs/, or node-i/logs/) until the next start. Exits 0
# when nothing runs.
set -euo pipefail

RUN_DIR="${KAFKA_RUN_DIR:-/tmp/calculator-kafka}"
TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"

log() { echo "kafka-down: $*" >&2; }

is_our_broker() {
	kill -0 "$1" 2>/dev/null &&
		grep -qa 'kafka\.Kafka' "/proc/$1/cmdline" 2>/dev/null
}

if [[ ! -d "$RUN_DIR" ]]; then
	log "nothing to stop ($RUN_DIR does not exist)"
	exit 0
fi

# wait for a kafka-up in progress
exec 9>"$RUN_DIR/.lock"
flock 9

# A single broker keeps its pid file in the run dir, node i of a cluster in node-i/.
dirs=()
[[ -e "$RUN_DIR/kafka.pid" || -d "$RUN_DIR/data" ]] && dirs+=("$RUN_DIR")
for d in "$RUN_DIR"/node-*/; do
	[[ -d "$d" ]] && dirs+=("${d%/}")
done

pids=()
for d in "${dirs[@]}"; do
	pid=""
	[[ -s "$d/kafka.pid" ]] && pid="$(cat "$d/kafka.pid")"
	if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_broker "$pid"; then
		log "stopping broker (pid $pid, $d)"
		kill -TERM "$pid" 2>/dev/null || true
		pids+=("$pid")
	fi
done
((${#pids[@]} > 0)) || log "no broker running"

deadline=$((SECONDS + TIMEOUT))
for pid in "${pids[@]}"; do
	while is_our_broker "$pid" && ((SECONDS < deadline)); do
		sleep 0.2
	done
	if is_our_broker "$pid"; then
		log "broker pid $pid did not stop within ${TIMEOUT}s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		while is_our_broker "$pid"; do sleep 0.1; done
	fi
done
((${#pids[@]} == 0)) || log "stopped ${#pids[@]} broker(s)"

for d in "${dirs[@]}"; do
	rm -rf "$d/data" "$d/kafka.pid" "$d/server.properties"
done
