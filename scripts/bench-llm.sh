#!/usr/bin/env bash
# flow's model path against a real local model: for each model and spec, `flow plan --planner
# openai` (valid at first answer / after repair / refused, repair rounds, wall time, tokens in
# and out) and `flow spec --extract llm` (what grounding kept, found as flow read it, rejected
# and disagreed with, and any wrong target: a kept reading that the spec's expectations do not
# hold; must be 0).
#
#   scripts/local-model install all      # once, about 20 minutes
#   scripts/bench-llm.sh                 # MODELS="0.5b 1.5b" by default; SPECS to choose
#
# The server runs with one slot and every core (scripts/local-model start); each run uses a
# fresh state folder and --no-cache, so every figure is a real call.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-"1.5b 0.5b"}
SPECS=${SPECS:-"specs/launch.md tests/corpus-real/03-kiro-aitas-load-testing.md tests/corpus-real/28-dr-core-banking.md"}
cargo build --release --quiet
FLOW=$PWD/target/release/flow
# Every run's files (plan, exchanges with the model's answers, extraction) stay here to read.
work=${OUT:-$PWD/target/bench-llm}
rm -rf "$work" && mkdir -p "$work"
trap 'scripts/local-model stop >/dev/null 2>&1 || true' EXIT
scripts/local-model stop >/dev/null 2>&1 || true

for m in $MODELS; do
  line=$(scripts/local-model start "$m")
  base=$(echo "$line" | sed -n 's/.*OPENAI_BASE_URL=\([^ ]*\).*/\1/p')
  served=$(echo "$line" | sed -n 's/.*# model: //p')
  for spec in $SPECS; do
    name=$(basename "$spec" .md)
    d=$work/$m-$name
    mkdir -p "$d"
    cp "$spec" "$d/spec.md"
    exp="${spec%.md}.expect"
    # Plan (flow's own reading of the requirements; the model writes the plan).
    start=$(date +%s.%N)
    set +e
    (cd "$d" && OPENAI_BASE_URL=$base OPENAI_API_KEY=local FLOW_STATE=$d/state \
      "$FLOW" plan spec.md --planner openai --model "$served" --no-extract --no-cache --json >plan.json 2>plan.err)
    rc=$?
    set -e
    end=$(date +%s.%N)
    (cd "$d" && FLOW_STATE=$d/state "$FLOW" log --llm --json -r spec >log.json 2>/dev/null || echo '{}' >log.json)
    # Extraction (the model as a second reader, held to the text by grounding).
    xstart=$(date +%s.%N)
    set +e
    (cd "$d" && OPENAI_BASE_URL=$base OPENAI_API_KEY=local FLOW_STATE=$d/xstate \
      "$FLOW" spec spec.md --extract llm --planner openai --model "$served" --no-cache --json >spec.json 2>spec.err)
    xrc=$?
    xend=$(date +%s.%N)
    (cd "$d" && "$FLOW" spec spec.md --json >builtin.json 2>/dev/null)
    set -e
    python3 - "$m" "$name" "$rc" "$start" "$end" "$d" "$xrc" "$exp" "$xstart" "$xend" >>"$work/rows" <<'PY'
import json, os, sys
m, name, rc, start, end, d, xrc, exp, xstart, xend = sys.argv[1:]
log = json.load(open(f"{d}/log.json")) if os.path.getsize(f"{d}/log.json") else {}
ex = [e for e in log.get("exchanges", []) if e.get("question") == "plan"]
tin = sum(e.get("tokens_in") or 0 for e in ex)
tout = sum(e.get("tokens_out") or 0 for e in ex)
outcome = {"0": "first" if len(ex) == 1 else "repaired", "4": "refused"}.get(rc, f"error {rc}")
violations = ex[-1]["violations"] if ex and rc != "0" else []
# Expected targets: the .expect file's `req` lines, or (no file: the launch spec) flow's own reading.
expected = []
if os.path.exists(exp):
    for raw in open(exp, encoding="utf-8"):
        w = raw.split(" #", 1)[0].split()
        if w and w[0] == "req":
            expected.append((w[1], w[2], float(w[3]), w[4], int(w[5])))
else:
    for r in json.load(open(f"{d}/builtin.json"))["requirements"]:
        expected.append((r["kind"], r["op"], float(r["value"]), r["unit"], r["line"]))
def matches(r):
    return any(k == r["kind"] and o == r["op"] and abs(v - float(r["value"])) <= abs(v) * 1e-3 + 1e-9
               and u == r["unit"] and l == r["line"] for k, o, v, u, l in expected)
x = {}
if xrc == "0":
    s = json.load(open(f"{d}/spec.json"))
    llm = s.get("llm") or {}
    kept = [r for r in s["requirements"] if r.get("source") == "llm"]
    x = {"proposed": llm.get("proposed", 0), "kept": len(llm.get("kept", [])), "agreed": len(llm.get("agreed", [])),
         "rejected": len(llm.get("rejected", [])), "disagreed": len(llm.get("disagreements", [])),
         "wrong": sum(1 for r in kept if not matches(r)), "kept_right": sum(1 for r in kept if matches(r)),
         "secs": float(xend) - float(xstart)}
print(json.dumps({"model": m, "spec": name, "outcome": outcome, "rounds": len(ex), "secs": float(end) - float(start),
                  "tokens_in": tin, "tokens_out": tout, "violations": violations[:6], "extract": x, "xrc": xrc}))
PY
    tail -1 "$work/rows" | python3 -c '
import json, sys
r = json.load(sys.stdin)
x = r["extract"]
line = "{:5} {:38} plan {:8} rounds {} {:6.0f} s in {:6} out {:5} | extract ".format(
    r["model"], r["spec"][:38], r["outcome"], r["rounds"], r["secs"], r["tokens_in"], r["tokens_out"])
if x:
    line += "{:4.0f} s proposed {} kept {} (right {}) agreed {} rejected {} disagreed {} wrong {}".format(
        x["secs"], x["proposed"], x["kept"], x["kept_right"], x["agreed"], x["rejected"], x["disagreed"], x["wrong"])
else:
    line += "exit " + r["xrc"]
print(line)' >&2
  done
  scripts/local-model stop >/dev/null
done

python3 - "$work/rows" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| model | spec | plan | repair rounds | wall time | tokens in / out | extraction: wall time: proposed, kept (right), as flow read, rejected, disagreed, wrong |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    x = r["extract"]
    xs = f'{x["secs"]:.0f} s: {x["proposed"]}, {x["kept"]} ({x["kept_right"]}), {x["agreed"]}, {x["rejected"]}, {x["disagreed"]}, **{x["wrong"]}**' if x else f'exit {r["xrc"]}'
    print(f'| {r["model"]} | {r["spec"]} | {r["outcome"]} | {max(r["rounds"] - 1, 0)} | {r["secs"]:.0f} s | {r["tokens_in"]} / {r["tokens_out"]} | {xs} |')
for m in sorted({r["model"] for r in rows}):
    rs = [r for r in rows if r["model"] == m]
    count = lambda o: sum(1 for r in rs if r["outcome"] == o)
    wrong = sum(r["extract"].get("wrong", 0) for r in rs)
    print(f'\n{m}: {len(rs)} specs: valid at first answer {count("first")}, after repair {count("repaired")}, refused {count("refused")}; '
          f'{sum(r["secs"] for r in rs) / 60:.1f} min in all; extraction wrong targets {wrong}')
    for r in rs:
        if r["violations"]:
            print(f'  {r["spec"]}: ' + "; ".join(r["violations"]))
PY
