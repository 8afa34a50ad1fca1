#!/usr/bin/env bash
# A local cluster of the calculator: three instances of the binary on ports 3030-3032, in
# one consumer group on the same Kafka topics (SPEC §6), each serving the whole API and
# deciding the commands partitions the group gives it.
#
#   scripts/cluster.sh up          build the binary, start the three instances, wait until
#                                  each is ready, show who owns which partitions
#   scripts/cluster.sh status      who runs and which partitions each owns
#   scripts/cluster.sh kill N      kill -9 instance N (1-3): the others take its partitions
#                                  over once its session times out (about 10 s)
#   scripts/cluster.sh start N     start instance N again
#   scripts/cluster.sh down        stop every instance (SIGTERM)
#
# It needs a broker (make kafka-up). Environment:
#   KAFKA_BROKERS        brokers                     (default 127.0.0.1:9092)
#   CALC_PARTITIONS      partitions of the topics    (default 6)
#   CALC_COMMANDS_TOPIC  commands topic              (default cluster-commands)
#   CALC_EVENTS_TOPIC    events topic                (default cluster-events)
#   CALC_GROUP           consumer group              (default calculator)
#   CLUSTER_DIR          binary, pid files, logs, each instance's data directory (snapshots)  (default /tmp/calculator-cluster)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${CLUSTER_DIR:-/tmp/calculator-cluster}"
BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
PARTITIONS="${CALC_PARTITIONS:-6}"
COMMANDS="${CALC_COMMANDS_TOPIC:-cluster-commands}"
EVENTS="${CALC_EVENTS_TOPIC:-cluster-events}"
GROUP="${CALC_GROUP:-calculator}"
INSTANCES=3
BASE_PORT=3030
BINARY="$DIR/calculator"

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

port_of() { echo $((BASE_PORT + $1 - 1)); }

# pid of running instance $1, or nothing
pid_of() {
	local f="$DIR/instance-$1.pid" pid
	[[ -s "$f" ]] || return 1
	pid="$(cat "$f")"
	kill -0 "$pid" 2>/dev/null || return 1
	grep -qa "$BINARY" "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

readyz() { curl -s --max-time 2 "http://127.0.0.1:$(port_of "$1")/readyz"; }

start_instance() {
	local i="$1" pid
	if pid="$(pid_of "$i")"; then
		log "instance $i already runs (pid $pid) on 127.0.0.1:$(port_of "$i")"
		return 0
	fi
	[[ -x "$BINARY" ]] || die "no binary in $DIR: run '$0 up' first"
	CALC_LOG_LEVEL=info nohup "$BINARY" -addr "127.0.0.1:$(port_of "$i")" -brokers "$BROKERS" \
		-partitions "$PARTITIONS" -commands-topic "$COMMANDS" -events-topic "$EVENTS" -group "$GROUP" \
		-data-dir "$DIR/data-$i" >>"$DIR/instance-$i.log" 2>&1 </dev/null &
	echo $! >"$DIR/instance-$i.pid"
	log "instance $i (pid $!) on http://127.0.0.1:$(port_of "$i"), log $DIR/instance-$i.log"
}

wait_ready() {
	local i="$1" deadline=$((SECONDS + 60))
	until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$(port_of "$i")/readyz")" == 200 ]]; do
		if ! pid_of "$i" >/dev/null; then
			tail -n 20 "$DIR/instance-$i.log" >&2
			die "instance $i exited"
		fi
		((SECONDS < deadline)) || die "instance $i is not ready after 60 s: $(readyz "$i")"
		sleep 0.2
	done
}

# owned_by $1: the partitions instance $1 owns, one per line
owned_by() {
	readyz "$1" | grep -o '"partitions":\[[0-9,]*\]' | grep -o '[0-9][0-9]*' || true
}

# Wait until the running instances own every partition between them, each at least one: the
# group moves partitions to a new member in two cooperative rebalances.
wait_shared() {
	local deadline=$((SECONDS + 60)) i all mine
	while ((SECONDS < deadline)); do
		all="" mine=1
		for ((i = 1; i <= INSTANCES; i++)); do
			pid_of "$i" >/dev/null || continue
			[[ -n "$(owned_by "$i")" ]] || mine=0
			all+="$(owned_by "$i")"$'\n'
		done
		if ((mine)) && (($(grep -c . <<<"$all") == PARTITIONS)) && (($(sort -u <<<"$all" | grep -c .) == PARTITIONS)); then
			return 0
		fi
		sleep 0.2
	done
	log "the partitions are not shared out after 60 s"
}

status() {
	local i pid owned
	for ((i = 1; i <= INSTANCES; i++)); do
		if pid="$(pid_of "$i")"; then
			owned="$(readyz "$i" | grep -o '"partitions":\[[0-9,]*\]' || true)"
			echo "instance $i  pid $pid  http://127.0.0.1:$(port_of "$i")  ${owned:-(not ready)}"
		else
			echo "instance $i  not running"
		fi
	done
}

stop_instance() {
	local i="$1" signal="$2" pid
	pid="$(pid_of "$i")" || { log "instance $i does not run"; return 0; }
	kill "-$signal" "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	log "instance $i (pid $pid) stopped with SIG$signal"
}

instance_arg() {
	[[ "${1:-}" =~ ^[1-3]$ ]] || die "which instance? 1, 2 or 3"
	echo "$1"
}

main() {
	mkdir -p "$DIR"
	case "${1:-}" in
	up)
		(cd "$ROOT" && go build -o "$BINARY" .)
		local i
		for ((i = 1; i <= INSTANCES; i++)); do start_instance "$i"; done
		for ((i = 1; i <= INSTANCES; i++)); do wait_ready "$i"; done
		wait_shared
		status
		;;
	status) status ;;
	kill) stop_instance "$(instance_arg "${2:-}")" KILL ;;
	start)
		local i
		i="$(instance_arg "${2:-}")"
		start_instance "$i"
		wait_ready "$i"
		wait_shared
		status
		;;
	down)
		local i
		for ((i = 1; i <= INSTANCES; i++)); do stop_instance "$i" TERM; done
		;;
	*) die "usage: $0 up|status|kill N|start N|down" ;;
	esac
}

main "$@"
