#!/usr/bin/env bash
# flow loadtest --workers on this machine: for 1, 2 and 4 local workers, the highest fixed rate
# (keep-alive) that gives a valid run against one local nginx (127.0.0.1 only), stepping the rate
# up by RATES, and at that rate the merged achieved rate, the total generator CPU and the CPU per
# worker. One nginx worker process shares the machine's cores with the generators, so the figure
# is what this machine holds, not what flow can send.
# Installs nginx (Debian) when missing. Settings: DUR seconds (default 10), RATES (default
# "20000 40000 60000 80000 100000 120000 150000 200000").
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10}
RATES=${RATES:-"20000 40000 60000 80000 100000 120000 150000 200000"}
source scripts/lib/nginx.sh
cargo build --release --quiet
FLOW=$PWD/target/release/flow
start_nginx
trap stop_nginx EXIT

echo "flow loadtest --workers: highest valid fixed rate (keep-alive, ${DUR}s runs), nginx on 127.0.0.1, $(nproc) cores"
printf '%-8s %12s %14s %12s %18s %s\n' workers "rate (req/s)" "achieved" "CPU total" "CPU per worker" "valid"
for w in 1 2 4; do
  best=""
  for rate in $RATES; do
    out=$("$FLOW" loadtest "$URL" --rate "$rate" --duration "${DUR}s" --workers "$w" --json || true)
    line=$(echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
ws = d.get("workers") or [{"cpu_cores": d["generator"]["cpu_cores"]}]
per = " ".join("%.2f" % x["cpu_cores"] for x in ws)
print("%s|%.1f|%.2f|%s" % ("yes" if d["valid"] else "no", d["achieved_rate"], sum(x["cpu_cores"] for x in ws), per))')
    IFS='|' read -r valid achieved cpu per <<< "$line"
    printf '  tried %-3s %10s %14s %12s %18s %s\n' "$w" "$rate" "$achieved" "$cpu" "$per" "$valid" >&2
    [ "$valid" = yes ] || break
    best="$rate|$achieved|$cpu|$per"
  done
  IFS='|' read -r rate achieved cpu per <<< "${best:-none|-|-|-}"
  printf '%-8s %12s %14s %12s %18s\n' "$w" "$rate" "$achieved" "$cpu" "$per"
done
