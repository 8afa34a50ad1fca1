#!/usr/bin/env bash
# Start a real Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1 from plain jars
# fetched with Maven -- no Docker needed. With KAFKA_NODES=N (N > 1) it starts a cluster of
# N such nodes instead, each a broker and a voter of a static controller quorum.
#
# Idempotent: if our brokers are already running (pid files alive) this only waits until
# they serve requests and returns 0. If only some nodes of a cluster run (one was stopped or
# killed), it starts the missing ones again on their data, and they rejoin. If none runs, it
# formats fresh log dirs, starts every node in the background and returns once each one
# answers a metadata request (TopicCommand --list).
#
# Ports: one node listens on KAFKA_PORT (clients) and KAFKA_CONTROLLER_PORT (controller).
# Node i of a cluster (i = 1..N) listens on KAFKA_PORT+i-1 and KAFKA_CONTROLLER_PORT+i-1,
# where KAFKA_CONTROLLER_PORT defaults to KAFKA_PORT+100: KAFKA_NODES=3 KAFKA_PORT=19092
# gives brokers 127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094 and controllers on
# 19192-19194. Replication: one replica per node, at most 3, and with 3 replicas
# min.insync.replicas=2 (for topics created without explicit settings and for Kafka's
# internal topics), so that one broker of three may be down.
#
# Environment:
#   KAFKA_NODES            number of nodes                        (default 1)
#   KAFKA_PORT             client port of the (first) node        (default 9092)
#   KAFKA_CONTROLLER_PORT  controller port of the (first) node    (default 9093; KAFKA_PORT+100 when KAFKA_NODES > 1)
#   KAFKA_CACHE            jar cache                              (default ~/.cache/calculator-kafka)
#   KAFKA_RUN_DIR          data, pid file, logs                   (default /tmp/calculator-kafka;
#                          node i of a cluster uses its subdirectory node-i)
#   KAFKA_CLUSTER_ID       KRaft cluster id                       (default fixed)
#   KAFKA_HEAP_OPTS        heap of each broker                    (default -Xmx512m -Xms256m)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness          (default 90; 60 more per extra node)
#   JAVA                   java binary (17+)                      (default java)
#   MVN                    maven binary                           (default mvn)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/kafka/pom.xml"
TEMPLATE="$ROOT/kafka/server.properties.tmpl"
LOG4J_CONF="$ROOT/kafka/log4j2.yaml"

NODES="${KAFKA_NODES:-1}"
[[ "$NODES" =~ ^[1-9][0-9]?$ ]] || { echo "kafka-up: KAFKA_NODES=$NODES is not a number of nodes (1-99)" >&2; exit 1; }
PORT="${KAFKA_PORT:-9092}"
if ((NODES == 1)); then
	CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
else
	CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 100))}"
fi
CACHE="${KAFKA_CACHE:-$HOME/.cache/calculator-kafka}"
RUN_DIR="${KAFKA_RUN_DIR:-/tmp/calculator-kafka}"
CLUSTER_ID="${KAFKA_CLUSTER_ID:-Y2FsY3VsYXRvci1rYWZrYQ}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
TIMEOUT="${KAFKA_START_TIMEOUT:-$((90 + 60 * (NODES - 1)))}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"

LIB="$CACHE/lib"
REPLICATION=$((NODES < 3 ? NODES : 3))
MIN_ISR=$((REPLICATION == 3 ? 2 : 1))

log() { echo "kafka-up: $*" >&2; }
die() { log "$*"; exit 1; }

# Where node $1 keeps its data, logs, pid file and server.properties: the run dir itself
# for a single node (as it always was), a subdirectory per node of a cluster.
node_dir() { if ((NODES == 1)); then echo "$RUN_DIR"; else echo "$RUN_DIR/node-$1"; fi; }
node_port() { echo $((PORT + $1 - 1)); }
node_controller_port() { echo $((CONTROLLER_PORT + $1 - 1)); }

bootstrap_servers() {
	local i list=""
	for ((i = 1; i <= NODES; i++)); do list+="${list:+,}127.0.0.1:$(node_port "$i")"; done
	echo "$list"
}

quorum_line() {
	if ((NODES == 1)); then
		echo "controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT"
		return
	fi
	local i voters=""
	for ((i = 1; i <= NODES; i++)); do voters+="${voters:+,}$i@127.0.0.1:$(node_controller_port "$i")"; done
	echo "controller.quorum.voters=$voters"
}

# pid of our running broker whose pid file is $1, or nothing
pid_in() {
	local pid
	[[ -s "$1" ]] || return 1
	pid="$(cat "$1")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# guard against pid reuse: it must be our kafka.Kafka
	grep -qa 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

broker_pid() { pid_in "$(node_dir "$1")/kafka.pid"; }

# A broker in the run dir that belongs to a cluster of another size.
foreign_layout_running() {
	local f
	if ((NODES == 1)); then
		for f in "$RUN_DIR"/node-*/kafka.pid; do pid_in "$f" >/dev/null && return 0; done
		return 1
	fi
	pid_in "$RUN_DIR/kafka.pid" >/dev/null && return 0
	for f in "$RUN_DIR"/node-*/kafka.pid; do
		[[ "$f" =~ /node-([0-9]+)/ ]] && ((BASH_REMATCH[1] > NODES)) && pid_in "$f" >/dev/null && return 0
	done
	return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Short-lived JVMs for the tools: fast start, small heap, log to tools.log of node $1.
run_tool() {
	local dir
	dir="$(node_dir "$1")"
	shift
	"$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$dir/logs" -Dkafka.log.file=tools.log \
		-cp "$LIB/*" "$@"
}

# Definitive readiness of node $1: a metadata request through the admin client.
serves_requests() {
	run_tool "$1" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$(node_port "$1")" --list \
		--command-config "$RUN_DIR/admin.properties" >/dev/null 2>&1
}

broker_log_tail() {
	local dir
	dir="$(node_dir "$1")"
	log "broker log tail ($dir/logs/server.log):"
	tail -n 60 "$dir/logs/server.log" >&2 2>/dev/null || true
	if [[ -s "$dir/logs/kafka.out" ]]; then
		log "broker stdout/stderr ($dir/logs/kafka.out):"
		tail -n 30 "$dir/logs/kafka.out" >&2 || true
	fi
}

# wait_ready NODE PID DEADLINE (in $SECONDS)
wait_ready() {
	local node="$1" pid="$2" deadline="$3" dir
	dir="$(node_dir "$node")"
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "broker $node (pid $pid) exited during startup"
			broker_log_tail "$node"
			rm -f "$dir/kafka.pid"
			return 1
		fi
		# cheap checks first (port open, startup logged), then the real metadata request
		if port_open "$(node_port "$node")" && grep -q 'Kafka Server started' "$dir/logs/server.log" 2>/dev/null &&
			serves_requests "$node"; then
			return 0
		fi
		sleep 0.5
	done
	log "broker $node did not serve requests on 127.0.0.1:$(node_port "$node") within ${TIMEOUT}s"
	broker_log_tail "$node"
	return 1
}

ensure_jars() {
	local stamp
	stamp="$(sha256sum "$POM" | cut -d' ' -f1)"
	if [[ -f "$LIB/.stamp" && "$(cat "$LIB/.stamp")" == "$stamp" ]]; then
		return 0
	fi
	command -v "$MVN" >/dev/null || die "maven ($MVN) not found; it is needed once to fetch the Kafka jars"
	log "fetching Kafka jars into $LIB (one-time)"
	mkdir -p "$CACHE"
	rm -rf "$LIB.tmp"
	if ! "$MVN" -q -B -f "$POM" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$LIB.tmp" >"$CACHE/mvn.log" 2>&1; then
		tail -n 50 "$CACHE/mvn.log" >&2
		die "mvn dependency:copy-dependencies failed (full output: $CACHE/mvn.log)"
	fi
	echo "$stamp" >"$LIB.tmp/.stamp"
	rm -rf "$LIB"
	mv "$LIB.tmp" "$LIB"
}

# Render node $1's server.properties and format its fresh log dir.
prepare_node() {
	local node="$1" dir
	dir="$(node_dir "$node")"
	# fresh state every start; the previous run's logs are kept in logs.prev
	rm -rf "$dir/data" "$dir/logs.prev"
	[[ -d "$dir/logs" ]] && mv "$dir/logs" "$dir/logs.prev"
	mkdir -p "$dir/data" "$dir/logs"
	sed -e "s|@NODE_ID@|$node|g" -e "s|@PORT@|$(node_port "$node")|g" \
		-e "s|@CONTROLLER_PORT@|$(node_controller_port "$node")|g" -e "s|@QUORUM@|$(quorum_line)|g" \
		-e "s|@DATA_DIR@|$dir/data|g" -e "s|@REPLICATION@|$REPLICATION|g" -e "s|@MIN_ISR@|$MIN_ISR|g" \
		"$TEMPLATE" >"$dir/server.properties"
	local standalone=()
	((NODES == 1)) && standalone=(--standalone) # a dynamic quorum of one; a cluster's quorum is static
	run_tool "$node" kafka.tools.StorageTool format "${standalone[@]}" -t "$CLUSTER_ID" \
		-c "$dir/server.properties" --ignore-formatted >"$dir/logs/format.log" 2>&1 || {
		log "formatting $dir/data failed:"
		cat "$dir/logs/format.log" >&2
		exit 1
	}
}

# Start node $1 in the background on its formatted log dir; prints its pid.
start_node() {
	local node="$1" dir pid
	dir="$(node_dir "$node")"
	# shellcheck disable=SC2086 # HEAP_OPTS is a list of flags
	nohup setsid "$JAVA" $HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$dir/logs" \
		-cp "$LIB/*" kafka.Kafka "$dir/server.properties" \
		>>"$dir/logs/kafka.out" 2>&1 </dev/null 9>&- &
	pid=$!
	echo "$pid" >"$dir/kafka.pid"
	log "starting broker $node (pid $pid) on 127.0.0.1:$(node_port "$node"), controller 127.0.0.1:$(node_controller_port "$node"), run dir $dir"
	echo "$pid"
}

main() {
	command -v "$JAVA" >/dev/null || die "java not found (Kafka 4 needs Java 17+)"
	mkdir -p "$RUN_DIR"

	# serialize concurrent `make kafka-up` calls
	exec 9>"$RUN_DIR/.lock"
	flock 9
	printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=8000\n' >"$RUN_DIR/admin.properties"

	foreign_layout_running &&
		die "brokers of a cluster of another size run in $RUN_DIR: stop them with kafka-down.sh first"

	local i pid running=() missing=()
	for ((i = 1; i <= NODES; i++)); do
		if broker_pid "$i" >/dev/null; then running+=("$i"); else missing+=("$i"); fi
	done
	if ((${#running[@]} > 0)) && [[ ! -f "$LIB/.stamp" ]]; then
		die "brokers run but the jar cache $LIB is missing"
	fi

	local fresh=0 deadline=$((SECONDS + TIMEOUT))
	((${#running[@]} > 0)) || fresh=1
	for i in "${missing[@]}"; do
		rm -f "$(node_dir "$i")/kafka.pid"
		port_open "$(node_port "$i")" &&
			die "127.0.0.1:$(node_port "$i") is in use by a process not started by this script"
		port_open "$(node_controller_port "$i")" &&
			die "127.0.0.1:$(node_controller_port "$i") is in use by a process not started by this script"
	done
	if ((fresh)); then
		ensure_jars
		for i in "${missing[@]}"; do prepare_node "$i"; done
	else
		for i in "${missing[@]}"; do
			[[ -f "$(node_dir "$i")/data/meta.properties" ]] ||
				die "broker $i is not running and has no formatted log dir in $(node_dir "$i"): run kafka-down.sh, then kafka-up.sh"
			log "broker $i is not running: starting it again on its data"
		done
	fi

	local started=()
	for i in "${missing[@]}"; do
		started+=("$(start_node "$i")")
	done

	for ((i = 1; i <= NODES; i++)); do
		pid="$(cat "$(node_dir "$i")/kafka.pid")"
		if ! wait_ready "$i" "$pid" "$deadline"; then
			for pid in "${started[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
			for i in "${missing[@]}"; do rm -f "$(node_dir "$i")/kafka.pid"; done
			exit 1
		fi
	done
	if ((${#missing[@]} == 0)); then
		log "already running (${NODES} node(s)) on $(bootstrap_servers)"
	else
		log "ready: KAFKA_BROKERS=$(bootstrap_servers)"
	fi
}

main "$@"
