#!/usr/bin/env bash
# Reading specs at size: how long `flow spec` (release build) takes on inputs that used to cost
# time cubic in a sentence's length. Prints seconds and peak RSS for each shape:
#
#   doc-1mb      a 1 MB document of headings, bullets, tables and prose (many requirements)
#   line-100k    one 100,000-character line with no full stop, full of figures and labels
#   heading-32k  a 32 KB heading
#   cell-50k     a 50 KB table cell
#   line-1mb     one 1 MB line
#   random       FUZZ random documents of ~20 KB each: the slowest and the median
#
#   scripts/bench-spec.sh
#   FUZZ=2000 scripts/bench-spec.sh
#   FLOW_BIN=target/debug/flow scripts/bench-spec.sh   # another build, not rebuilt
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ=${FUZZ:-300}
if [ -z "${FLOW_BIN:-}" ]; then
  cargo build --release -q --bin flow
  FLOW_BIN=$PWD/target/release/flow
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$FUZZ" <<'EOF'
import os, random, sys
work, fuzz = sys.argv[1], int(sys.argv[2])
random.seed(7)
words = ["the", "service", "must", "handle", "requests", "per", "second", "latency", "p99", "p95",
         "average", "under", "below", "at", "most", "least", "300", "ms", "2,500", "99.9", "%",
         "availability", "RTO", "RPO", "4", "hours", "15", "minutes", "checkout", "API", "current",
         "today", "error", "rate", "budget", "alert", "when", "e.g.", "(", ")", ",", ";", ":", "-"]

def prose(n):
    out, size = [], 0
    while size < n:
        w = random.choice(words)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)

def write(name, text):
    with open(os.path.join(work, name), "w") as f:
        f.write(text)

parts, size, i = [], 0, 0
while size < 1_000_000:
    i += 1
    b = (f"## Service {i}\n\n- p99 latency under {100 + i % 400} ms for checkout-{i}.\n"
         f"- The API must handle {1000 + i} requests per second.\n\n"
         f"| Metric | Target | Current |\n|---|---|---|\n| Availability | 99.9 % | 99.5 % |\n"
         f"| RTO | {1 + i % 5} h | unknown |\n\n"
         f"The current average is {i % 300} ms, measured last week; alerts fire at 80 %.\n\n")
    parts.append(b)
    size += len(b)
write("doc-1mb.md", "# Big spec\n\n" + "".join(parts))
write("line-100k.md", "# Spec\n\n" + prose(100_000) + "\n")
write("heading-32k.md", "# " + prose(32_000) + "\n\nThe API must handle 100 requests per second.\n")
write("cell-50k.md", "| Metric | Target |\n|---|---|\n| p99 latency | " + prose(50_000) + " |\n")
write("line-1mb.md", prose(1_000_000) + "\n")
blocks = [lambda: "## " + prose(40) + "\n\n", lambda: "- " + prose(120) + "\n",
          lambda: prose(400) + "\n\n", lambda: "| Metric | Target | Current |\n|---|---|---|\n| " + prose(30) + " | " + prose(20) + " | " + prose(10) + " |\n\n",
          lambda: "```\n" + prose(100) + "\n```\n\n", lambda: "WHEN " + prose(30) + " THE SYSTEM SHALL " + prose(60) + "\n\n"]
os.makedirs(os.path.join(work, "random"))
for k in range(fuzz):
    doc, size = [], 0
    while size < 20_000:
        b = random.choice(blocks)()
        doc.append(b)
        size += len(b)
    with open(os.path.join(work, "random", f"{k}.md"), "w") as f:
        f.write("".join(doc))
EOF

run() { # file -> "seconds peak-KB"
  /usr/bin/time -f "%e %M" "$FLOW_BIN" spec "$1" > /dev/null 2> "$work/time" || true
  tail -1 "$work/time"
}
for shape in doc-1mb line-100k heading-32k cell-50k line-1mb; do
  read -r secs kb < <(run "$work/$shape.md")
  printf '%-12s %6.2f s  %6d MiB\n' "$shape" "$secs" "$((kb / 1024))"
done
times=()
for f in "$work"/random/*.md; do
  read -r secs _ < <(run "$f")
  times+=("$secs")
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$FUZZ" '{a[NR]=$1} END {printf "random       %d documents of ~20 KB: median %.2f s, slowest %.2f s\n", n, a[int((NR+1)/2)], a[NR]}'
