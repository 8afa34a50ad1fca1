#!/usr/bin/env bash
# Start a real single-node Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1
# from plain jars fetched with Maven -- no Docker needed.
#
# Idempotent: if our broker is already running (pid file alive) this only waits until it
# serves requests and returns 0. Otherwise it formats a fresh log dir, starts the broker in
# the background and returns once a metadata request (TopicCommand --list) succeeds.
#
# Environment:
#   KAFKA_PORT             client listener port on 127.0.0.1      (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1     (default 9093)
#   KAFKA_CACHE            jar cache                              (default ~/.cache/calculator-kafka)
#   KAFKA_RUN_DIR          data, pid file, logs                   (default /tmp/calculator-kafka)
#   KAFKA_CLUSTER_ID       KRaft cluster id                       (default fixed)
#   KAFKA_HEAP_OPTS        broker heap                            (default -Xmx512m -Xms256m)
#   KAFKA_START_TIMEOUT    seconds to wait for readiness          (default 90)
#   JAVA                   java binary (17+)                      (default java)
#   MVN                    maven binary                           (default mvn)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/kafka/pom.xml"
TEMPLATE="$ROOT/kafka/server.properties.tmpl"
LOG4J_CONF="$ROOT/kafka/log4j2.yaml"

PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
CACHE="${KAFKA_CACHE:-$HOME/.cache/calculator-kafka}"
RUN_DIR="${KAFKA_RUN_DIR:-/tmp/calculator-kafka}"
CLUSTER_ID="${KAFKA_CLUSTER_ID:-Y2FsY3VsYXRvci1rYWZrYQ}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"

LIB="$CACHE/lib"
DATA_DIR="$RUN_DIR/data"
LOG_DIR="$RUN_DIR/logs"
PID_FILE="$RUN_DIR/kafka.pid"
PROPS="$RUN_DIR/server.properties"
BOOTSTRAP="127.0.0.1:$PORT"

log() { echo "kafka-up: $*" >&2; }
die() { log "$*"; exit 1; }

# pid of our running broker, or nothing
broker_pid() {
	local pid
	[[ -s "$PID_FILE" ]] || return 1
	pid="$(cat "$PID_FILE")"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# guard against pid reuse: it must be our kafka.Kafka
	grep -qa 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null || return 1
	echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Short-lived JVMs for the tools: fast start, small heap, log to tools.log.
run_tool() {
	"$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOG_DIR" -Dkafka.log.file=tools.log \
		-cp "$LIB/*" "$@"
}

# Definitive readiness: a metadata request through the admin client.
serves_requests() {
	run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --list \
		--command-config "$RUN_DIR/admin.properties" >/dev/null 2>&1
}

broker_log_tail() {
	log "broker log tail ($LOG_DIR/server.log):"
	tail -n 60 "$LOG_DIR/server.log" >&2 2>/dev/null || true
	if [[ -s "$LOG_DIR/kafka.out" ]]; then
		log "broker stdout/stderr ($LOG_DIR/kafka.out):"
		tail -n 30 "$LOG_DIR/kafka.out" >&2 || true
	fi
}

wait_ready() {
	local pid="$1" deadline=$((SECONDS + TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "broker (pid $pid) exited during startup"
			broker_log_tail
			rm -f "$PID_FILE"
			return 1
		fi
		# cheap checks first (port open, startup logged), then the real metadata request
		if port_open "$PORT" && grep -q 'Kafka Server started' "$LOG_DIR/server.log" 2>/dev/null &&
			serves_requests; then
			return 0
		fi
		sleep 0.5
	done
	log "broker did not serve requests on $BOOTSTRAP within ${TIMEOUT}s"
	broker_log_tail
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

main() {
	command -v "$JAVA" >/dev/null || die "java not found (Kafka 4 needs Java 17+)"
	mkdir -p "$RUN_DIR"

	# serialize concurrent `make kafka-up` calls
	exec 9>"$RUN_DIR/.lock"
	flock 9
	printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=8000\n' >"$RUN_DIR/admin.properties"

	local pid
	if pid="$(broker_pid)"; then
		[[ -f "$LIB/.stamp" ]] || die "broker pid $pid runs but jar cache $LIB is missing"
		wait_ready "$pid" || exit 1
		log "broker already running (pid $pid) on $BOOTSTRAP"
		return 0
	fi
	rm -f "$PID_FILE"

	port_open "$PORT" && die "127.0.0.1:$PORT is in use by a process not started by this script"
	port_open "$CONTROLLER_PORT" &&
		die "127.0.0.1:$CONTROLLER_PORT is in use by a process not started by this script"

	ensure_jars

	# fresh state every start; the previous run's logs are kept in logs.prev
	rm -rf "$DATA_DIR" "$LOG_DIR.prev"
	[[ -d "$LOG_DIR" ]] && mv "$LOG_DIR" "$LOG_DIR.prev"
	mkdir -p "$DATA_DIR" "$LOG_DIR"
	sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
		-e "s|@DATA_DIR@|$DATA_DIR|g" "$TEMPLATE" >"$PROPS"

	run_tool kafka.tools.StorageTool format --standalone -t "$CLUSTER_ID" -c "$PROPS" \
		>"$LOG_DIR/format.log" 2>&1 || {
		log "formatting $DATA_DIR failed:"
		cat "$LOG_DIR/format.log" >&2
		exit 1
	}

	# shellcheck disable=SC2086 # HEAP_OPTS is a list of flags
	nohup setsid "$JAVA" $HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOG_DIR" \
		-cp "$LIB/*" kafka.Kafka "$PROPS" \
		>"$LOG_DIR/kafka.out" 2>&1 </dev/null 9>&- &
	pid=$!
	echo "$pid" >"$PID_FILE"
	log "starting broker (pid $pid) on $BOOTSTRAP, controller 127.0.0.1:$CONTROLLER_PORT, run dir $RUN_DIR"

	if ! wait_ready "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$PID_FILE"
		exit 1
	fi
	log "broker ready on $BOOTSTRAP"
}

main "$@"
