#!/usr/bin/env bash
# Stop the broker started by scripts/kafka-up.sh (SIGTERM, then SIGKILL after
# KAFKA_STOP_TIMEOUT seconds, default 20) and delete its data so the next
# kafka-up starts fresh. Logs stay in $KAFKA_RUN_DIR/logs until the next start.
# Exits 0 when nothing runs.
set -euo pipefail

RUN_DIR="${KAFKA_RUN_DIR:-/tmp/calculator-kafka}"
TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
PID_FILE="$RUN_DIR/kafka.pid"

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

pid=""
[[ -s "$PID_FILE" ]] && pid="$(cat "$PID_FILE")"
if [[ "$pid" =~ ^[0-9]+$ ]] && is_our_broker "$pid"; then
	log "stopping broker (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + TIMEOUT))
	while is_our_broker "$pid" && ((SECONDS < deadline)); do
		sleep 0.2
	done
	if is_our_broker "$pid"; then
		log "broker did not stop within ${TIMEOUT}s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		while is_our_broker "$pid"; do sleep 0.1; done
	fi
	log "broker stopped"
else
	log "no broker running"
fi

rm -rf "$RUN_DIR/data" "$PID_FILE" "$RUN_DIR/server.properties"
