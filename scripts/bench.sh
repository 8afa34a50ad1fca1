#!/usr/bin/env bash
# Measures the calculator against the targets of BENCHMARKS.md, on loopback,
# with the embedded log and logging at info:
#
#   throughput  closed-loop POST/PUT throughput, accepted and applied, and its
#               ratio to bench/baseline (a chi handler with the same decoding
#               and no log) under the same load, in the same run
#   latency     accept latency at half the maximum throughput (fixed -rate)
#   restart     time from process start until /readyz is 200, with EVENTS
#               events in the log (written by bench/genlog)
#   memory      RSS per value with MEM_VALUES values
#   steady      RSS under a steady load of updates on a fixed set of values
#
# Usage: scripts/bench.sh [all|throughput|latency|restart|memory|steady]...
# Settings (environment): RUNS=3 DURATION=10s CONCURRENCY=64
# MIX=create=10,update=90 EVENTS=1000000 MEM_VALUES=1000000 STEADY=30s
# STEADY_RATE=5000 CALC_PORT=3130 BASE_PORT=3131 KEEP=1 (keep the temp dir).
# Each figure is the median of RUNS runs; every run prints its own line.
set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-64}
MIX=${MIX:-create=10,update=90}
EVENTS=${EVENTS:-1000000}
MEM_VALUES=${MEM_VALUES:-1000000}
STEADY=${STEADY:-30s}
STEADY_RATE=${STEADY_RATE:-5000}
CALC_PORT=${CALC_PORT:-3130}
BASE_PORT=${BASE_PORT:-3131}

cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/calc-bench.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
	[[ -n ${sampler:-} ]] && kill "$sampler" 2>/dev/null || true
	if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

say() { echo "== $*" >&2; }

# get KEY LINE: the value of KEY in a key=value summary line.
get() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# median: the median of the numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }

say "building into $work"
go build -o "$work/calculator" .
go build -o "$work/bench" ./bench
go build -o "$work/baseline" ./bench/baseline
go build -o "$work/genlog" ./bench/genlog

for port in "$CALC_PORT" "$BASE_PORT"; do
	if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
		echo "bench.sh: something already listens on 127.0.0.1:$port; set CALC_PORT/BASE_PORT" >&2
		exit 1
	fi
done

# start_calc DIR: starts the calculator on DIR at log level info; sets $calc.
start_calc() {
	"$work/calculator" -addr "127.0.0.1:$CALC_PORT" -data-dir "$1" -log-level info >>"$work/calculator.log" 2>&1 &
	calc=$!
	pids+=("$calc")
}

# wait_ready: waits until /readyz answers 200 (polling every 5 ms).
wait_ready() {
	until curl -fs -o /dev/null "http://127.0.0.1:$CALC_PORT/readyz"; do
		kill -0 "$calc" 2>/dev/null || { echo "bench.sh: the calculator died; see $work/calculator.log" >&2; exit 1; }
		sleep 0.005
	done
}

# stop PID: stops a process this script started.
stop() {
	kill "$1"
	wait "$1" 2>/dev/null || true
	local keep=() pid
	for pid in "${pids[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
	pids=("${keep[@]}")
}

start_baseline() {
	"$work/baseline" -addr "127.0.0.1:$BASE_PORT" >>"$work/baseline.log" 2>&1 &
	base=$!
	pids+=("$base")
	until curl -fs -o /dev/null "http://127.0.0.1:$BASE_PORT/healthz"; do sleep 0.01; done
}

load() { "$work/bench" -quiet -duration "$DURATION" -concurrency "$CONCURRENCY" -mix "$MIX" "$@"; }

max_rps=""

throughput() {
	say "throughput: $RUNS runs of $DURATION, concurrency $CONCURRENCY, mix $MIX"
	local ratios=() calc_applied=() calc_accepted=() base_rps=() c_p99=() b_p99=() ap_p99=()
	for run in $(seq "$RUNS"); do
		# Alternate the order, so that a drift in the machine's load does
		# not always favour the same side.
		local c b
		for side in $( ((run % 2)) && echo calc base || echo base calc); do
			if [[ $side == calc ]]; then
				start_calc "$work/tp-$run"
				wait_ready
				c=$(load -url "http://127.0.0.1:$CALC_PORT")
				stop "$calc"
			else
				start_baseline
				b=$(load -url "http://127.0.0.1:$BASE_PORT" -applied=false)
				stop "$base"
			fi
		done
		rm -rf "$work/tp-$run"
		local ratio
		ratio=$(awk -v c="$(get applied_rps "$c")" -v b="$(get accepted_rps "$b")" 'BEGIN {printf "%.3f", c/b}')
		echo "run $run calculator: $c"
		echo "run $run baseline:   $b"
		echo "run $run ratio=$ratio"
		ratios+=("$ratio")
		calc_applied+=("$(get applied_rps "$c")")
		calc_accepted+=("$(get accepted_rps "$c")")
		base_rps+=("$(get accepted_rps "$b")")
		c_p99+=("$(get accept_p99_ms "$c")")
		ap_p99+=("$(get applied_p99_ms "$c")")
		b_p99+=("$(get accept_p99_ms "$b")")
	done
	max_rps=$(printf '%s\n' "${calc_accepted[@]}" | median)
	echo "RESULT throughput runs=$RUNS calc_applied_rps=$(printf '%s\n' "${calc_applied[@]}" | median)" \
		"calc_accepted_rps=$max_rps baseline_rps=$(printf '%s\n' "${base_rps[@]}" | median)" \
		"ratio=$(printf '%s\n' "${ratios[@]}" | median) calc_accept_p99_ms=$(printf '%s\n' "${c_p99[@]}" | median)" \
		"calc_applied_p99_ms=$(printf '%s\n' "${ap_p99[@]}" | median) baseline_accept_p99_ms=$(printf '%s\n' "${b_p99[@]}" | median)"
}

latency() {
	if [[ -z $max_rps ]]; then
		say "latency: measuring the maximum throughput first (one closed-loop run)"
		start_calc "$work/max"
		wait_ready
		max_rps=$(get accepted_rps "$(load -url "http://127.0.0.1:$CALC_PORT")")
		stop "$calc"
		rm -rf "$work/max"
	fi
	local rate
	rate=$(awk -v m="$max_rps" 'BEGIN {printf "%d", m/2}')
	say "latency: $RUNS runs of $DURATION at $rate commands/s (half of $max_rps)"
	local p50=() p99=() ap99=()
	for run in $(seq "$RUNS"); do
		start_calc "$work/lat-$run"
		wait_ready
		local r
		r=$(load -url "http://127.0.0.1:$CALC_PORT" -rate "$rate")
		stop "$calc"
		rm -rf "$work/lat-$run"
		echo "run $run: $r"
		p50+=("$(get accept_p50_ms "$r")")
		p99+=("$(get accept_p99_ms "$r")")
		ap99+=("$(get applied_p99_ms "$r")")
	done
	echo "RESULT latency runs=$RUNS rate=$rate accept_p50_ms=$(printf '%s\n' "${p50[@]}" | median)" \
		"accept_p99_ms=$(printf '%s\n' "${p99[@]}" | median) applied_p99_ms=$(printf '%s\n' "${ap99[@]}" | median)"
}

# time_ready DIR: starts the calculator on DIR, sets ready_ms to the
# milliseconds until /readyz is 200 and ready_kb to the RSS then, and stops it.
time_ready() {
	local start end
	start=$(date +%s%N)
	start_calc "$1"
	wait_ready
	end=$(date +%s%N)
	ready_ms=$(((end - start) / 1000000))
	ready_kb=$(rss_kb "$calc")
	stop "$calc"
}

restart() {
	local values=$((EVENTS / 10))
	say "restart: writing $EVENTS commands and events ($values values) with genlog"
	"$work/genlog" -data-dir "$work/restart" -values "$values" -updates $((EVENTS - values)) 2>/dev/null
	local times=() rss=()
	for run in $(seq "$RUNS"); do
		time_ready "$work/restart"
		echo "run $run: ready_ms=$ready_ms rss_kb=$ready_kb"
		times+=("$ready_ms")
		rss+=("$ready_kb")
	done
	grep -E '"(view caught up|replayed events; processing commands)"' "$work/calculator.log" | tail -2 >&2 || true
	rm -rf "$work/restart"
	echo "RESULT restart events=$EVENTS runs=$RUNS ready_ms=$(printf '%s\n' "${times[@]}" | median)" \
		"rss_mb=$(printf '%s\n' "${rss[@]}" | median | awk '{printf "%.1f", $1/1024}')"
}

memory() {
	say "memory: an empty instance, then one with $MEM_VALUES values"
	mkdir -p "$work/empty"
	time_ready "$work/empty"
	local empty=$ready_kb
	"$work/genlog" -data-dir "$work/mem" -values "$MEM_VALUES" -updates 0 2>/dev/null
	start_calc "$work/mem"
	wait_ready
	local at_ready settled
	at_ready=$(rss_kb "$calc")
	sleep 5
	settled=$(rss_kb "$calc")
	stop "$calc"
	rm -rf "$work/mem" "$work/empty"
	echo "RESULT memory values=$MEM_VALUES empty_rss_kb=$empty rss_kb_at_ready=$at_ready rss_kb_after_5s=$settled" \
		"bytes_per_value=$(awk -v e="$empty" -v s="$settled" -v n="$MEM_VALUES" 'BEGIN {printf "%.0f", (s-e)*1024/n}')"
}

steady() {
	say "steady: $STEADY of updates at $STEADY_RATE/s on 1024 values, RSS every second"
	start_calc "$work/steady"
	wait_ready
	(while kill -0 "$calc" 2>/dev/null; do rss_kb "$calc" 2>/dev/null || true; sleep 1; done) >"$work/rss.txt" &
	sampler=$!
	local r
	r=$("$work/bench" -quiet -duration "$STEADY" -concurrency "$CONCURRENCY" -mix create=0,update=100 -values 1024 \
		-rate "$STEADY_RATE" -url "http://127.0.0.1:$CALC_PORT")
	stop "$calc"
	wait "$sampler" 2>/dev/null || true
	sampler=""
	rm -rf "$work/steady"
	echo "run: $r"
	echo "rss_kb per second: $(tr '\n' ' ' <"$work/rss.txt")"
	# Growth: from the end of the first quarter (warm) to the end.
	local n first last accepted
	n=$(wc -l <"$work/rss.txt")
	first=$(sed -n "$((n / 4 + 1))p" "$work/rss.txt")
	last=$(tail -1 "$work/rss.txt")
	accepted=$(get accepted "$r")
	echo "RESULT steady duration=$STEADY rate=$STEADY_RATE accepted=$accepted rss_kb_warm=$first rss_kb_end=$last" \
		"growth_kb=$((last - first)) growth_bytes_per_command=$(awk -v d="$((last - first))" -v a="$accepted" 'BEGIN {printf "%.1f", d*1024/(a*0.75)}')"
}

sections=("$@")
[[ ${#sections[@]} -eq 0 || ${sections[0]} == all ]] && sections=(throughput latency restart memory steady)
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(go version | cut -d' ' -f3-4), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for s in "${sections[@]}"; do
	case $s in
	throughput | latency | restart | memory | steady) "$s" ;;
	*) echo "bench.sh: unknown section $s" >&2; exit 2 ;;
	esac
done
