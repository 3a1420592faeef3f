#!/usr/bin/env bash
# At which rates do the load generator's figures stay valid evidence, on an idle machine and
# beside CPU hogs (one per core, as when tests run beside a build)? Runs `flow loadtest` in the
# open model against one local nginx (127.0.0.1 only) at rising rates, keep-alive and a new
# connection per request, with the launch spec's latency thresholds (avg < 250 ms, p99 < 1 s),
# and prints for each: valid or why not, the achieved rate, the scheduler's lag p99 and the
# generator's CPU. A run is invalid when it could not send what its schedule called for, or when
# a latency threshold failed by less than the generator's own lag (see the README).
# Settings: RATES (default "1000 2500 5000 10000 20000 40000"), DUR seconds (default 5),
# HOGS (default: the number of cores). Installs nginx (Debian) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${RATES:-"1000 2500 5000 10000 20000 40000"}
DUR=${DUR:-5}
HOGS=${HOGS:-$(nproc)}
cargo build --release --quiet
FLOW=$PWD/target/release/flow

source scripts/lib/nginx.sh
start_nginx
hogs=()
stop_hogs() { for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done; hogs=(); }
trap 'stop_hogs; stop_nginx' EXIT

run() { # load mode rate
  local extra=""
  [ "$2" = "new-connection" ] && extra="--no-keepalive"
  # A failed threshold or an invalid run exits non-zero; its JSON is still the figure.
  local out
  out=$("$FLOW" loadtest "http://127.0.0.1:$port/" --rate "$3" --duration "${DUR}s" $extra \
    --threshold 'avg<250ms' --threshold 'p99<1s' --json 2>"$work/stderr" || true)
  [ -n "$out" ] || { printf '%-10s %-15s %7s  no result: %s\n' "$1" "$2" "$3" "$(head -c 120 "$work/stderr")"; return; }
  printf '%s' "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
why = "valid" if r["valid"] else "INVALID: " + r["invalid_reason"][:60]
print("%-10s %-15s %7s  %-70s %10.1f %9.2f %6.3f" % (sys.argv[1], sys.argv[2], sys.argv[3], why, r["achieved_rate"],
      r["generator"]["scheduler_lag_p99_ms"], r["generator"]["cpu_cores"]))' "$1" "$2" "$3"
}

printf '%-10s %-15s %7s  %-70s %10s %9s %6s\n' machine mode rate verdict achieved "lag p99" cpu
for load in idle hogs; do
  if [ "$load" = hogs ]; then
    for _ in $(seq 1 "$HOGS"); do sh -c 'while :; do :; done' & hogs+=($!); done
    load="$HOGS-hogs"
  fi
  for mode in keep-alive new-connection; do
    for rate in $RATES; do
      run "$load" "$mode" "$rate"
    done
  done
  stop_hogs
done
