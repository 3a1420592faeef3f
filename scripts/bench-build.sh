#!/usr/bin/env bash
# Build and test times on this machine, on a clean clone of HEAD (with ../shared beside it, as
# CI has): `cold` times `cargo build --locked` (debug) from nothing; `ci` times `.ci/run` (the
# README's test command); HOGS=N runs N CPU hogs (`yes`) beside it, as people run the tests next
# to a build. Prints the wall times; removes the clone.
#   scripts/bench-build.sh cold|ci      HOGS=2 scripts/bench-build.sh ci
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-ci}
work=$(mktemp -d)
trap 'pkill -P $$ yes 2>/dev/null || true; rm -rf "$work"' EXIT
git clone -q . "$work/main"
[ -d ../shared ] && ln -s "$(cd ../shared && pwd)" "$work/shared"
for _ in $(seq 1 "${HOGS:-0}"); do yes > /dev/null & done
cd "$work/main"
start=$(date +%s)
case "$what" in
  cold) cargo build --locked -q ;;
  ci) .ci/run > "$work/ci.log" 2>&1 || { tail -40 "$work/ci.log"; echo "bench-build: .ci/run failed" >&2; exit 1; } ;;
  *) echo "usage: scripts/bench-build.sh cold|ci" >&2; exit 2 ;;
esac
secs=$(( $(date +%s) - start ))
printf '%s on a clean clone of %s, %s hog(s): %d min %d s\n' "$what" "$(git rev-parse --short HEAD)" "${HOGS:-0}" $((secs / 60)) $((secs % 60))
[ "$what" = ci ] && grep -E '^test result: ok\. [0-9]+ passed; 0 failed' "$work/ci.log" | grep -v ' 0 passed' || true
