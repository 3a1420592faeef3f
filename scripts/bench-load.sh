#!/usr/bin/env bash
# Benchmarks flow's load generator against wrk and oha on one local nginx (127.0.0.1 only),
# alternating the tools, several repetitions, and prints medians and ratios:
#   1. keep-alive maximum throughput (64 connections);
#   2. a new connection per request, maximum rate;
#   3. fixed 2,500 req/s, keep-alive and new connection: achieved rate, generator CPU, RSS;
#   4. RSS after a longer run at 2,500 req/s (SOAK seconds) against a short one;
#   5. a 1 s server stall (nginx's worker paused with SIGSTOP) in a 10 s run at 2,500 req/s:
#      corrected latency (flow) against uncorrected (wrk);
#   6. the floor under the CPU figures: what a program that does nothing but sleep and wake
#      2,500 and 5,000 times a second costs this machine (an open-model request at a modest
#      rate wakes the generator twice: at its send time, and for its answer).
# Installs what is missing: wrk and nginx (Debian), oha (crates.io, into target/bench-tools).
# Settings: REPS (default 3), DUR seconds (default 10), SOAK seconds (default 60; 600 for the
# issue's ten minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
DUR=${DUR:-10}
SOAK=${SOAK:-60}
TOOLS=$PWD/target/bench-tools

need_apt() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; }; }
need_apt wrk wrk
[ -x "$TOOLS/bin/oha" ] || cargo install oha --locked --root "$TOOLS"
cargo build --release --quiet
FLOW=$PWD/target/release/flow
OHA=$TOOLS/bin/oha

source scripts/lib/nginx.sh
start_nginx
trap stop_nginx EXIT

# CPU cores a command used (user+system over wall time), then its output.
cores() { python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True).stdout
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.3f" % ((r.ru_utime + r.ru_stime) / (time.time() - t)))
print(out)
PY
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
median() { python3 -c "import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print('%.3f' % statistics.median(v))" "$@"; }

declare -A R
add() { R[$1]="${R[$1]:-} $2"; }

for rep in $(seq 1 "$REPS"); do
  echo "repetition $rep/$REPS" >&2
  # 1. keep-alive maximum, 2. a new connection per request
  for mode in keep close; do
    if [ $mode = keep ]; then fa=(); oa=(); wa=(); else fa=(--no-keepalive); oa=(--disable-keepalive); wa=(-H "Connection: close"); fi
    add "flow_$mode" "$("$FLOW" loadtest "$URL" --duration "${DUR}s" --connections 64 "${fa[@]}" --json | json 'd["achieved_rate"]')"
    add "oha_$mode" "$("$OHA" -z "${DUR}s" -c 64 --no-tui --output-format json "${oa[@]}" "$URL" | json 'd["summary"]["requestsPerSec"]')"
    add "wrk_$mode" "$(wrk -t2 -c64 -d"${DUR}s" "${wa[@]}" "$URL" | awk '/Requests\/sec/ {print $2}')"
  done
  # 3. fixed 2,500 req/s
  for mode in keep close; do
    if [ $mode = keep ]; then fa=(); oa=(); else fa=(--no-keepalive); oa=(--disable-keepalive); fi
    out=$("$FLOW" loadtest "$URL" --rate 2500 --duration "${DUR}s" "${fa[@]}" --json)
    add "flow_fixed_${mode}_rate" "$(echo "$out" | json 'd["achieved_rate"]')"
    add "flow_fixed_${mode}_cpu" "$(echo "$out" | json 'd["generator"]["cpu_cores"]')"
    add "flow_fixed_${mode}_rss" "$(echo "$out" | json 'd["generator"]["peak_rss_mib"]')"
    add "flow_fixed_${mode}_valid" "$(echo "$out" | json '1 if d["valid"] else 0')"
    o=$(cores "$OHA" -z "${DUR}s" -q 2500 -c 64 --no-tui --output-format json "${oa[@]}" "$URL")
    add "oha_fixed_${mode}_cpu" "$(echo "$o" | head -1)"
    add "oha_fixed_${mode}_rate" "$(echo "$o" | tail -n +2 | json 'd["summary"]["requestsPerSec"]')"
  done
done

# 4. memory over a longer run
soak=$("$FLOW" loadtest "$URL" --rate 2500 --duration "${SOAK}s" --json)
# 5. a 1 s stall in a 10 s run at 2,500 req/s
# Our nginx's worker (a system nginx may run too).
worker() { pgrep -P "$(cat "$work/nginx.pid")" | head -1; }
stall() { sleep 4; w=$(worker); kill -STOP "$w"; sleep 1; kill -CONT "$w"; }
stall & s1=$("$FLOW" loadtest "$URL" --rate 2500 --duration 10s --json); wait
stall & s2=$(wrk -t2 -c64 -d10s --latency "$URL"); wait

# 6. the cost of waking alone
cat > "$work/wake.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/resource.h>
int main(int argc, char **argv) {
  long hz = atol(argv[1]), secs = 5, gap = 1000000000L / hz;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  for (long i = 0; i < hz * secs; i++) {
    t.tv_nsec += gap;
    while (t.tv_nsec >= 1000000000L) { t.tv_nsec -= 1000000000L; t.tv_sec++; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
  }
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  printf("%.3f\n", (r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6) / secs);
  return 0;
}
C
cc -O2 -o "$work/wake" "$work/wake.c"
for rep in $(seq 1 "$REPS"); do add wake2500 "$("$work/wake" 2500)"; add wake5000 "$("$work/wake" 5000)"; done

m() { median ${R[$1]}; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "flow load generator benchmark: $REPS repetitions of ${DUR}s, nginx on 127.0.0.1, $(nproc) cores"
printf '%-44s %12s %12s %12s\n' "" flow oha wrk
printf '%-44s %12s %12s %12s\n' "keep-alive max req/s (64 connections)" "$(m flow_keep)" "$(m oha_keep)" "$(m wrk_keep)"
printf '%-44s %12s %12s %12s\n' "new connection per request max req/s" "$(m flow_close)" "$(m oha_close)" "$(m wrk_close)"
echo "ratios: keep-alive flow/wrk $(ratio "$(m flow_keep)" "$(m wrk_keep)"), flow/oha $(ratio "$(m flow_keep)" "$(m oha_keep)"); new connection flow/wrk $(ratio "$(m flow_close)" "$(m wrk_close)"), flow/oha $(ratio "$(m flow_close)" "$(m oha_close)")"
for mode in keep close; do
  echo "fixed 2500 req/s ($mode): flow achieved $(m flow_fixed_${mode}_rate) req/s ($(python3 -c "print('%+.2f' % (($(m flow_fixed_${mode}_rate) - 2500) / 25))") %), valid runs ${R[flow_fixed_${mode}_valid]}, CPU $(median ${R[flow_fixed_${mode}_cpu]}) cores, peak RSS $(m flow_fixed_${mode}_rss) MiB; oha achieved $(m oha_fixed_${mode}_rate) req/s at $(median ${R[oha_fixed_${mode}_cpu]}) cores"
done
echo "soak ${SOAK}s at 2500 req/s: peak RSS $(echo "$soak" | json 'd["generator"]["peak_rss_mib"]') MiB (against $(m flow_fixed_keep_rss) MiB after ${DUR}s), achieved $(echo "$soak" | json 'd["achieved_rate"]') req/s"
echo "sleeping and waking alone (no work): 2500/s $(m wake2500) cores, 5000/s $(m wake5000) cores"
echo "1 s stall in 10 s at 2500 req/s: flow corrected p99 $(echo "$s1" | json 'd["latency"]["p99_ms"]') ms, mean $(echo "$s1" | json 'd["latency"]["mean_ms"]') ms (service time p99 $(echo "$s1" | json 'd["uncorrected_latency"]["p99_ms"]') ms); wrk (uncorrected, as fast as it can) p99 $(echo "$s2" | awk '/ 99%/ {print $2}'), mean $(echo "$s2" | awk '/Latency/ {print $2; exit}')"
