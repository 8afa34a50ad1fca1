#!/usr/bin/env bash
# Measures the calculator against the targets of BENCHMARKS.md, on loopback,
# with the embedded log and logging at info:
#
#   throughput  closed-loop POST/PUT throughput, accepted and applied, and its
#               ratio to bench/baseline (a chi handler with the same decoding
#               and no log) under the same load, in the same run
#   latency     accept latency at half the maximum throughput (fixed -rate)
#   restart     time from process start until /readyz is 200, with EVENTS
#               events in the log (written by bench/genlog), replayed from
#               offset 0 (the snapshot a start writes is deleted before the next)
#   snapshot    the same with a snapshot taken at the end of the log (the
#               first start replays the log and writes it; the runs load it),
#               and the snapshot's size
#   memory      RSS per value with MEM_VALUES values
#   steady      RSS under a steady load of updates on a fixed set of values
#   heap        the live heap (go_gc_heap_live_bytes in /metrics) every 10 s
#               under HEAP_RATE updates a second on HEAP_VALUES values for
#               HEAP_DURATION, after a log of HEAP_PREFILL events that fills
#               the windows (decided ids, statuses): the slope over the
#               second half, per second and per command (not in "all")
#
# Usage: scripts/bench.sh [all|throughput|latency|restart|snapshot|memory|steady|heap]...
#
# Settings (environment): RUNS=3 DURATION=10s CONCURRENCY=64
# MIX=create=10,update=90 NUMBERS=integers (or decimals: the load generator's
# -numbers) SAMPLE=0.01 EVENTS=1000000 MEM_VALUES=1000000
# STEADY=30s STEADY_RATE=5000 CALC_PORT=3130 BASE_PORT=3131 KEEP=1 (keep the
# temp dir). BEFORE=<git revision> also builds the calculator at that
# revision and measures it in the same runs, alternating with the working
# tree's ("after", or AFTER=<git revision>), for before/after figures of an
# optimisation. BROKERS=host:port runs the calculator on Kafka (fresh topics
# for every start) in the throughput, latency and steady sections; restart and
# memory fill an embedded log with genlog, so they need the embedded log.
#
# Each figure is the median of RUNS runs; every run prints its own line, and
# each section ends with a "RESULT <section> key=value..." line per variant.
set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-64}
MIX=${MIX:-create=10,update=90}
NUMBERS=${NUMBERS:-integers}
SAMPLE=${SAMPLE:-0.01}
EVENTS=${EVENTS:-1000000}
MEM_VALUES=${MEM_VALUES:-1000000}
STEADY=${STEADY:-30s}
STEADY_RATE=${STEADY_RATE:-5000}
HEAP_VALUES=${HEAP_VALUES:-10000}
HEAP_PREFILL=${HEAP_PREFILL:-5200000}
HEAP_DURATION=${HEAP_DURATION:-10m}
HEAP_RATE=${HEAP_RATE:-2000}
CALC_PORT=${CALC_PORT:-3130}
BASE_PORT=${BASE_PORT:-3131}
BEFORE=${BEFORE:-}
BROKERS=${BROKERS:-}

cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/calc-bench.XXXXXX")
pids=()
sampler=""
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
	[[ -n $sampler ]] && kill "$sampler" 2>/dev/null || true
	if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

say() { echo "== $*" >&2; }

# get KEY LINE: the value of KEY in a key=value summary line.
get() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# median: the median of the numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# med VAR: the median of the words in $VAR.
med() { tr ' ' '\n' <<<"$1" | grep -v '^$' | median; }

rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }

# cpu_ms PID: the CPU time (user + system) the process has used, in ms; on
# a shared machine it varies less than the wall time.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }

say "building into $work"
if [[ -n ${AFTER:-} ]]; then
	say "building the calculator at $AFTER as \"after\""
	mkdir -p "$work/src-after"
	git archive "$AFTER" | tar -x -C "$work/src-after"
	(cd "$work/src-after" && go build -o "$work/after" .)
else
	go build -o "$work/after" .
fi
go build -o "$work/bench" ./bench
go build -o "$work/baseline" ./bench/baseline
go build -o "$work/genlog" ./bench/genlog
variants=(after)
if [[ -n $BEFORE ]]; then
	say "building the calculator at $BEFORE as \"before\""
	mkdir -p "$work/src-before"
	git archive "$BEFORE" | tar -x -C "$work/src-before"
	(cd "$work/src-before" && go build -o "$work/before" .)
	variants=(before after)
fi

for port in "$CALC_PORT" "$BASE_PORT"; do
	if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
		echo "bench.sh: something already listens on 127.0.0.1:$port; set CALC_PORT/BASE_PORT" >&2
		exit 1
	fi
done

# start_calc VARIANT DIR: starts that calculator on DIR at log level info;
# sets $calc to its pid.
start_calc() {
	local kafka=()
	if [[ -n $BROKERS ]]; then
		# Fresh topics for every start, as the data directory is fresh.
		starts=$((${starts:-0} + 1))
		kafka=(-brokers "$BROKERS" -commands-topic "bench-$$-$starts-commands" -events-topic "bench-$$-$starts-events")
	fi
	"$work/$1" -addr "127.0.0.1:$CALC_PORT" -data-dir "$2" -log-level info "${kafka[@]}" >>"$work/calculator.log" 2>&1 &
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

load() { "$work/bench" -quiet -duration "$DURATION" -concurrency "$CONCURRENCY" -mix "$MIX" -sample "$SAMPLE" -numbers "$NUMBERS" "$@"; }

# rotate N WORD...: the words rotated left by N, so that the order of the
# variants changes from run to run and a drift in the machine's load does not
# always favour the same one.
rotate() {
	local n=$1
	shift
	local words=("$@") i
	for ((i = 0; i < ${#words[@]}; i++)); do echo "${words[$(((i + n) % ${#words[@]}))]}"; done
}

declare -A max_rps=()

throughput() {
	say "throughput: $RUNS runs of $DURATION, concurrency $CONCURRENCY, mix $MIX, variants: baseline ${variants[*]}"
	declare -A applied=() accepted=() ratio=() p99=() ap99=()
	local base_rps="" base_p99=""
	for run in $(seq "$RUNS"); do
		local b="" side
		declare -A out=()
		for side in $(rotate "$run" baseline "${variants[@]}"); do
			if [[ $side == baseline ]]; then
				start_baseline
				b=$(load -url "http://127.0.0.1:$BASE_PORT" -applied=false)
				stop "$base"
				echo "run $run baseline: $b"
			else
				start_calc "$side" "$work/tp"
				wait_ready
				out[$side]=$(load -url "http://127.0.0.1:$CALC_PORT")
				stop "$calc"
				rm -rf "$work/tp"
				echo "run $run $side: ${out[$side]}"
			fi
		done
		base_rps+=" $(get accepted_rps "$b")"
		base_p99+=" $(get accept_p99_ms "$b")"
		for side in "${variants[@]}"; do
			local r
			r=$(awk -v c="$(get applied_rps "${out[$side]}")" -v b="$(get accepted_rps "$b")" 'BEGIN {printf "%.3f", c/b}')
			echo "run $run $side ratio=$r"
			ratio[$side]+=" $r"
			applied[$side]+=" $(get applied_rps "${out[$side]}")"
			accepted[$side]+=" $(get accepted_rps "${out[$side]}")"
			p99[$side]+=" $(get accept_p99_ms "${out[$side]}")"
			ap99[$side]+=" $(get applied_p99_ms "${out[$side]}")"
		done
	done
	echo "RESULT throughput baseline runs=$RUNS accepted_rps=$(med "$base_rps") accept_p99_ms=$(med "$base_p99")"
	for side in "${variants[@]}"; do
		max_rps[$side]=$(med "${accepted[$side]}")
		echo "RESULT throughput $side runs=$RUNS applied_rps=$(med "${applied[$side]}") accepted_rps=${max_rps[$side]}" \
			"ratio=$(med "${ratio[$side]}") accept_p99_ms=$(med "${p99[$side]}") applied_p99_ms=$(med "${ap99[$side]}")"
	done
}

latency() {
	local top=${variants[-1]} # "after": the rate is half of its maximum
	if [[ -z ${max_rps[$top]:-} ]]; then
		say "latency: measuring the maximum throughput of $top first (one closed-loop run)"
		start_calc "$top" "$work/max"
		wait_ready
		max_rps[$top]=$(get accepted_rps "$(load -url "http://127.0.0.1:$CALC_PORT")")
		stop "$calc"
		rm -rf "$work/max"
	fi
	local rate
	rate=$(awk -v m="${max_rps[$top]}" 'BEGIN {printf "%d", m/2}')
	say "latency: $RUNS runs of $DURATION at $rate commands/s (half of $top's ${max_rps[$top]}), variants: baseline ${variants[*]}"
	declare -A p50=() p99=() ap99=()
	for run in $(seq "$RUNS"); do
		for side in $(rotate "$run" baseline "${variants[@]}"); do
			if [[ $side == baseline ]]; then
				# The floor: what the machine and the load generator
				# add at this rate without any log.
				start_baseline
				local r
				r=$(load -url "http://127.0.0.1:$BASE_PORT" -rate "$rate" -applied=false)
				stop "$base"
				echo "run $run baseline: $r"
				p50[$side]+=" $(get accept_p50_ms "$r")"
				p99[$side]+=" $(get accept_p99_ms "$r")"
				continue
			fi
			start_calc "$side" "$work/lat"
			wait_ready
			local r
			r=$(load -url "http://127.0.0.1:$CALC_PORT" -rate "$rate")
			stop "$calc"
			rm -rf "$work/lat"
			echo "run $run $side: $r"
			p50[$side]+=" $(get accept_p50_ms "$r")"
			p99[$side]+=" $(get accept_p99_ms "$r")"
			ap99[$side]+=" $(get applied_p99_ms "$r")"
		done
	done
	echo "RESULT latency baseline runs=$RUNS rate=$rate accept_p50_ms=$(med "${p50[baseline]}") accept_p99_ms=$(med "${p99[baseline]}")"
	for side in "${variants[@]}"; do
		echo "RESULT latency $side runs=$RUNS rate=$rate accept_p50_ms=$(med "${p50[$side]}")" \
			"accept_p99_ms=$(med "${p99[$side]}") applied_p99_ms=$(med "${ap99[$side]}")"
	done
}

# time_ready VARIANT DIR: starts the calculator on DIR, sets ready_ms to the
# milliseconds until /readyz is 200 and ready_kb to the RSS then, and stops it.
time_ready() {
	local start end
	start=$(date +%s%N)
	start_calc "$1" "$2"
	wait_ready
	end=$(date +%s%N)
	ready_ms=$(((end - start) / 1000000))
	ready_kb=$(rss_kb "$calc")
	ready_cpu=$(cpu_ms "$calc")
	stop "$calc"
}

restart() {
	if [[ -n $BROKERS ]]; then
		echo "RESULT restart skipped: genlog writes an embedded log (unset BROKERS)"
		return
	fi
	local values=$((EVENTS / 10))
	say "restart: writing $EVENTS commands and events ($values values) with genlog"
	"$work/genlog" -data-dir "$work/restart" -values "$values" -updates $((EVENTS - values)) 2>/dev/null
	# One start to warm the page cache; it is not counted. Every start
	# replays from offset 0: the snapshot it writes is deleted.
	time_ready "${variants[-1]}" "$work/restart"
	declare -A times=() rss=() cpu=()
	for run in $(seq "$RUNS"); do
		for side in $(rotate "$run" "${variants[@]}"); do
			rm -rf "$work/restart/snapshots"
			time_ready "$side" "$work/restart"
			echo "run $run $side: ready_ms=$ready_ms cpu_ms=$ready_cpu rss_kb=$ready_kb load=$(cut -d' ' -f1 /proc/loadavg)"
			times[$side]+=" $ready_ms"
			rss[$side]+=" $ready_kb"
			cpu[$side]+=" $ready_cpu"
		done
	done
	rm -rf "$work/restart"
	for side in "${variants[@]}"; do
		echo "RESULT restart $side events=$EVENTS runs=$RUNS ready_ms=$(med "${times[$side]}") min_ready_ms=$(tr ' ' '\n' <<<"${times[$side]}" | grep -v '^$' | sort -n | head -1)" \
			"cpu_ms=$(med "${cpu[$side]}") rss_mb=$(med "${rss[$side]}" | awk '{printf "%.1f", $1/1024}')"
	done
}

snapshot() {
	if [[ -n $BROKERS ]]; then
		echo "RESULT snapshot skipped: genlog writes an embedded log (unset BROKERS)"
		return
	fi
	local values=$((EVENTS / 10)) ready=() cpu=() rss=() size
	say "snapshot: writing $EVENTS commands and events ($values values) with genlog"
	"$work/genlog" -data-dir "$work/snap" -values "$values" -updates $((EVENTS - values)) 2>/dev/null
	# The first start replays the whole log; the first snapshot is due at its
	# end (more than -snapshot-every events were folded).
	start_calc after "$work/snap"
	wait_ready
	until compgen -G "$work/snap/snapshots/*.snap" >/dev/null; do sleep 0.05; done
	stop "$calc"
	size=$(du -b "$work"/snap/snapshots/*.snap | awk '{print $1}' | tail -1)
	for run in $(seq "$RUNS"); do
		time_ready after "$work/snap"
		echo "run $run: ready_ms=$ready_ms cpu_ms=$ready_cpu rss_kb=$ready_kb load=$(cut -d' ' -f1 /proc/loadavg)"
		ready+=" $ready_ms"
		cpu+=" $ready_cpu"
		rss+=" $ready_kb"
	done
	rm -rf "$work/snap"
	echo "RESULT snapshot after events=$EVENTS values=$values runs=$RUNS ready_ms=$(med "${ready[*]}") cpu_ms=$(med "${cpu[*]}")" \
		"rss_mb=$(med "${rss[*]}" | awk '{printf "%.1f", $1/1024}') snapshot_mb=$(awk -v b="$size" 'BEGIN {printf "%.1f", b/1048576}')"
}

memory() {
	if [[ -n $BROKERS ]]; then
		echo "RESULT memory skipped: genlog writes an embedded log (unset BROKERS)"
		return
	fi
	say "memory: an empty instance, then one with $MEM_VALUES values, variants: ${variants[*]}"
	"$work/genlog" -data-dir "$work/mem" -values "$MEM_VALUES" -updates 0 2>/dev/null
	for side in "${variants[@]}"; do
		mkdir -p "$work/empty"
		time_ready "$side" "$work/empty"
		local empty=$ready_kb at_ready settled
		rm -rf "$work/empty"
		start_calc "$side" "$work/mem"
		wait_ready
		at_ready=$(rss_kb "$calc")
		sleep 5
		settled=$(rss_kb "$calc")
		stop "$calc"
		echo "RESULT memory $side values=$MEM_VALUES empty_rss_kb=$empty rss_kb_at_ready=$at_ready rss_kb_after_5s=$settled" \
			"bytes_per_value=$(awk -v e="$empty" -v s="$settled" -v n="$MEM_VALUES" 'BEGIN {printf "%.0f", (s-e)*1024/n}')"
	done
	rm -rf "$work/mem"
}

steady() {
	for side in "${variants[@]}"; do
		say "steady ($side): $STEADY of updates at $STEADY_RATE/s on 1024 values, RSS every second"
		start_calc "$side" "$work/steady"
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
		echo "run $side: $r"
		echo "rss_kb per second ($side): $(tr '\n' ' ' <"$work/rss.txt")"
		# Growth from the end of the first quarter (warm) to the end.
		local n first last accepted
		n=$(wc -l <"$work/rss.txt")
		first=$(sed -n "$((n / 4 + 1))p" "$work/rss.txt")
		last=$(tail -1 "$work/rss.txt")
		accepted=$(get accepted "$r")
		echo "RESULT steady $side duration=$STEADY rate=$STEADY_RATE accepted=$accepted rss_kb_warm=$first rss_kb_end=$last" \
			"growth_kb=$((last - first)) growth_bytes_per_command=$(awk -v d="$((last - first))" -v a="$accepted" 'BEGIN {printf "%.1f", d*1024/(a*0.75)}')"
	done
}

heap() {
	say "heap: $HEAP_PREFILL events first, then $HEAP_DURATION of updates at $HEAP_RATE/s on $HEAP_VALUES values, live heap every 10 s"
	"$work/genlog" -data-dir "$work/heap" -values "$HEAP_VALUES" -updates $((HEAP_PREFILL - HEAP_VALUES)) 2>/dev/null
	start_calc after "$work/heap"
	wait_ready
	(while kill -0 "$calc" 2>/dev/null; do
		echo "$SECONDS $(curl -s "http://127.0.0.1:$CALC_PORT/metrics" | awk '/^go_gc_heap_live_bytes /{printf "%d", $2}')"
		sleep 10
	done) >"$work/heap.txt" &
	sampler=$!
	local r
	r=$("$work/bench" -quiet -duration "$HEAP_DURATION" -concurrency 16 -mix create=0,update=100 -values "$HEAP_VALUES" \
		-rate "$HEAP_RATE" -url "http://127.0.0.1:$CALC_PORT")
	curl -s "http://127.0.0.1:$CALC_PORT/readyz" >"$work/heap-readyz.json"
	stop "$calc"
	wait "$sampler" 2>/dev/null || true
	sampler=""
	rm -rf "$work/heap"
	echo "run: $r"
	echo "readyz at the end: $(cat "$work/heap-readyz.json")"
	echo "live heap (seconds bytes): $(tr '\n' ' ' <"$work/heap.txt")"
	# Least-squares slope over the second half of the samples, of the
	# lowest sample of the last 70 s at each: a snapshot's buffer is live
	# heap for the 30-40 s its encoding and write take, and is no growth.
	local accepted
	accepted=$(get accepted "$r")
	awk -v a="$accepted" -v d="$HEAP_DURATION" 'BEGIN {n = 0}
		$2 != "" {t[n] = $1; h[n] = $2; lo[n] = $2; for (j = n - 6; j < n; j++) if (j >= 0 && h[j] < lo[n]) lo[n] = h[j]; n++}
		END {
			for (i = int(n/2); i < n; i++) {k++; st += t[i]; sh += lo[i]; stt += t[i]*t[i]; sth += t[i]*lo[i]}
			slope = (k*sth - st*sh) / (k*stt - st*st)
			secs = t[n-1] - t[0]
			printf "RESULT heap duration=%s accepted=%d heap_mb_first=%.1f heap_mb_last=%.1f slope_bytes_per_s=%.0f slope_bytes_per_command=%.2f\n",
				d, a, lo[0]/1048576, lo[n-1]/1048576, slope, slope * secs / a
		}' "$work/heap.txt"
}

sections=("$@")
[[ ${#sections[@]} -eq 0 || ${sections[0]} == all ]] && sections=(throughput latency restart snapshot memory steady)
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(go version | cut -d' ' -f3-4)," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg), log ${BROKERS:+kafka at }${BROKERS:-embedded}, commit $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes)${BEFORE:+, before=$BEFORE}${AFTER:+, after=$AFTER}"
for s in "${sections[@]}"; do
	case $s in
	throughput | latency | restart | snapshot | memory | steady | heap) "$s" ;;
	*)
		echo "bench.sh: unknown section $s" >&2
		exit 2
		;;
	esac
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
