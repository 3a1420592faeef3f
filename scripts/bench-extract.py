#!/usr/bin/env python3
"""The model as a second reader of the real corpus: `flow spec DOC --extract llm` on every
document of tests/corpus-real (and its held-back quarter) against a real local model, scored
against the hand-written expectations.

    scripts/local-model install 1.5b     # once
    scripts/bench-extract.py             # MODEL=1.5b by default; DOCS=path... to choose

For each document: what the model proposed, what grounding kept (and whether each kept target is
expected: right, or wrong, or guessed on a line a careful reader would ask about), how many it
proposed as flow had already read them, how many it rejected (quote not on its line, number not
in the quote, unknown kind ...), and where flow read the line otherwise. "Added" counts expected
targets that flow's own reading missed and the kept proposals supplied. Grounding must keep the
wrong count at 0. Each run uses --no-cache and a fresh state folder, so every figure is a real
call; the server has one slot and every core.
"""
import glob, json, os, re, subprocess, sys, tempfile, time

root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
os.chdir(root)
model = os.environ.get("MODEL", "1.5b")
docs = os.environ.get("DOCS", "").split() or sorted(glob.glob("tests/corpus-real/*.md") + glob.glob("tests/corpus-real/holdout/*.md"))
docs = [d for d in docs if not d.endswith("README.md")]
subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
flow = os.path.join(root, "target/release/flow")


def expectations(path):
    reqs, asks = [], set()
    for raw in open(path, encoding="utf-8"):
        w = raw.split(" #", 1)[0].split()
        if w and w[0] == "req":
            reqs.append((w[1], w[2], float(w[3]), w[4], int(w[5])))
        elif w and w[0] == "ask":
            asks.add(int(w[1]))
    return reqs, asks


def same(e, r):
    k, o, v, u, l = e
    lines = set(r.get("lines") or []) | {r["line"]}
    return (k == r["kind"] and o == r["op"] and u == r["unit"] and l in lines
            and abs(v - float(r["value"])) <= abs(v) * 1e-3 + 1e-9)


subprocess.run(["scripts/local-model", "stop"], capture_output=True)
started = subprocess.run(["scripts/local-model", "start", model], capture_output=True, text=True, check=True).stdout
base = started.split("OPENAI_BASE_URL=")[1].split()[0]
served = started.split("# model: ")[1].strip()
rows = []
try:
    for doc in docs:
        reqs, asks = expectations(doc[:-3] + ".expect")
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, OPENAI_BASE_URL=base, OPENAI_API_KEY="local", FLOW_STATE=os.path.join(d, "state"))
            t0 = time.monotonic()
            x = subprocess.run([flow, "spec", os.path.abspath(doc), "--extract", "llm", "--planner", "openai", "--model", served,
                                "--no-cache", "--json"], capture_output=True, text=True, env=env, cwd=d)
            secs = time.monotonic() - t0
            own = json.loads(subprocess.run([flow, "spec", os.path.abspath(doc), "--json"], capture_output=True, text=True,
                                            cwd=d).stdout or "{}")
        row = {"doc": os.path.basename(doc), "held": "/holdout/" in doc, "secs": secs, "rc": x.returncode}
        if x.returncode == 0:
            s = json.loads(x.stdout)
            llm = s.get("llm") or {}
            kept = [r for r in s["requirements"] if r.get("source") == "llm"]
            right = [r for r in kept if any(same(e, r) for e in reqs)]
            guessed = [r for r in kept if r not in right and r["line"] in asks]
            wrong = [r for r in kept if r not in right and r not in guessed]
            missed_by_flow = [e for e in reqs if not any(same(e, r) for r in own.get("requirements", []))]
            added = [e for e in missed_by_flow if any(same(e, r) for r in right)]
            row.update(proposed=llm.get("proposed", 0), kept=len(kept), right=len(right), guessed=len(guessed),
                       wrong=len(wrong), added=len(added), agreed=len(llm.get("agreed", [])),
                       rejected=len(llm.get("rejected", [])), disagreed=len(llm.get("disagreements", [])),
                       wrong_items=[f'{r["kind"]} {r["op"]} {r["value"]} {r["unit"]} line {r["line"]}' for r in wrong],
                       reasons=[r.get("why", "") for r in llm.get("rejected", [])])
        else:
            row["error"] = (x.stderr.strip().splitlines() or [""])[0][:160]
        rows.append(row)
        if "proposed" in row:
            print("{:48} {:5.0f} s proposed {:2} kept {} (right {}, guessed {}, wrong {}) added {} as-flow {} rejected {} disagreed {}".format(
                row["doc"][:48], secs, row["proposed"], row["kept"], row["right"], row["guessed"], row["wrong"], row["added"],
                row["agreed"], row["rejected"], row["disagreed"]), file=sys.stderr, flush=True)
        else:
            print("{:48} {:5.0f} s exit {}: {}".format(row["doc"][:48], secs, row["rc"], row.get("error", "")), file=sys.stderr,
                  flush=True)
finally:
    subprocess.run(["scripts/local-model", "stop"], capture_output=True)

ok = [r for r in rows if "proposed" in r]
tot = {k: sum(r[k] for r in ok) for k in ["proposed", "kept", "right", "guessed", "wrong", "added", "agreed", "rejected", "disagreed"]}
why = {}
for r in ok:
    for w in r["reasons"]:
        key = re.sub(r"\d+(?:\.\d+)?", "N", w.split(":")[0])[:70]
        why[key] = why.get(key, 0) + 1
print(json.dumps({"model": served, "documents": len(rows), "answered": len(ok), "minutes": round(sum(r["secs"] for r in rows) / 60, 1),
                  **tot, "errors": [f'{r["doc"]}: {r.get("error")}' for r in rows if "proposed" not in r],
                  "wrong_items": [f'{r["doc"]}: {w}' for r in ok for w in r["wrong_items"]],
                  "rejected_why": dict(sorted(why.items(), key=lambda kv: -kv[1]))}, indent=1, ensure_ascii=False))
