#!/usr/bin/env python3
"""Score flow's spec reading against a corpus of documents with hand-written expectations.

    scripts/score-corpus.py tests/corpus-real [--flow target/debug/flow] [--verbose]

Each DOC.md has DOC.expect beside it (`req KIND OP VALUE UNIT LINE`, `not LINE FIGURE # why`,
`ask LINE # readings`). For each document, `flow spec --json` is compared with the expectations:

- right: an expected target read with its kind, comparison, value (within 0.1 %) and unit, on
  its line;
- missed: an expected target not read so;
- wrong: a target read that is not expected (on a line with a `not`, or on no expected line);
- guessed: a target read on an `ask` line (where a careful reader would ask, not read);
- asked: an `ask` line that flow turned into a question (or listed as not read), as it should;
- over-asked: a question on a line that holds no target and no `ask` (noise for the reviewer);
- silent: a `not` figure with a unit flow measures (a time, a percentage, a request rate) on a
  line with neither a requirement nor an unread entry (dropped without a word); counts of things
  ("5000 users", "3 replicas") and sizes are not figures flow reads;
- planned: `flow plan` on the document exits 0 (questions allowed); "nothing" when it refuses
  because no line states a target and none is expected (exit 3, "nothing to plan").
"""
import json, os, re, subprocess, sys, tempfile

# A time, a percentage or a request rate, in the languages of the corpus.
MEASURE = re.compile(
    r"%|‰|\d\s*(?:µs|us|ms|s|sec|secs|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?|weeks?)\b"
    r"|/\s*(?:s|sec|second|min|minute)\b|per\s+(?:second|minute|hour)|\b(?:rps|qps|tps|req/s)\b"
    r"|\d\s*(?:мс|сек|с\b|мин|час|ч\b|дн|дней|밀리초|초|분|시간|일|毫秒|秒|分|小时|小時|天)", re.I)

def expectations(path):
    reqs, nots, asks = [], {}, set()
    for raw in open(path, encoding="utf-8"):
        line = raw.split("#", 1)[0].strip() if not raw.startswith("req") else raw.split(" #", 1)[0].strip()
        if not line:
            continue
        w = line.split()
        if w[0] == "req":
            reqs.append({"kind": w[1], "op": w[2], "value": float(w[3]), "unit": w[4], "line": int(w[5])})
        elif w[0] == "not":
            figure = " ".join(w[2:])
            # Only a figure with a unit (a letter or a sign after the number) must be accounted
            # for: a bare status code or count is not a figure flow reads.
            if MEASURE.search(figure):
                nots.setdefault(int(w[1]), []).append(figure)
        elif w[0] == "ask":
            asks.add(int(w[1]))
    return reqs, nots, asks

def same_value(a, b):
    return abs(a - b) <= max(1e-6, 1e-3 * max(abs(a), abs(b)))

def score(doc, flow, verbose):
    reqs, nots, asks = expectations(doc[:-3] + ".expect")
    out = subprocess.run([flow, "spec", doc, "--json"], capture_output=True, text=True)
    r = {"doc": os.path.basename(doc), "expected": len(reqs), "right": 0, "missed": 0, "wrong": 0, "guessed": 0,
         "asked": 0, "ask_lines": len(asks), "overasked": 0, "silent": 0, "not_lines": len(nots), "planned": False, "notes": []}
    if out.returncode != 0:
        r["missed"] = len(reqs)
        r["notes"].append("spec refused: " + out.stderr.strip()[:200])
        return r
    s = json.loads(out.stdout)
    read = [q for q in s["requirements"] if q["kind"] != "other"]
    lines_of = lambda q: q.get("lines") or [q["line"]]
    used = set()
    for e in reqs:
        hit = next((i for i, q in enumerate(read) if q["kind"] == e["kind"] and q["op"] == e["op"] and q["unit"] == e["unit"]
                    and same_value(q["value"], e["value"]) and e["line"] in lines_of(q)), None)
        if hit is None:
            r["missed"] += 1
            r["notes"].append("missed %s %s %s %s line %d" % (e["kind"], e["op"], e["value"], e["unit"], e["line"]))
        else:
            r["right"] += 1
            used.add(hit)
    for i, q in enumerate(read):
        if i in used:
            continue
        ls = lines_of(q)
        if any(l in asks for l in ls) and not any(any(e["line"] == l for e in reqs) for l in ls):
            r["guessed"] += 1
            r["notes"].append("guessed %s %s %s %s line %s" % (q["kind"], q["op"], q["value"], q["unit"], ls))
        elif any(any(e["line"] == l for e in reqs) for l in ls) and not any(l in nots for l in ls):
            # A second reading on a line that does hold a target: counted wrong unless it matches one.
            r["wrong"] += 1
            r["notes"].append("wrong %s %s %s %s line %s (%s)" % (q["kind"], q["op"], q["value"], q["unit"], ls, q["text"][:60]))
        else:
            r["wrong"] += 1
            r["notes"].append("wrong %s %s %s %s line %s (%s)" % (q["kind"], q["op"], q["value"], q["unit"], ls, q["text"][:60]))
    unread = {u["line"] for u in s.get("unread", [])}
    questions = {q["line"] for q in s.get("questions", [])} | {d["line"] for d in s.get("diagnostics", []) if d.get("line")}
    read_lines = {l for q in s["requirements"] for l in lines_of(q)}
    others = {q["other_line"] for q in s.get("questions", []) if q.get("other_line")}
    for l in asks:
        if l in questions or l in unread:
            r["asked"] += 1
    target_lines = {e["line"] for e in reqs}
    for q in s.get("questions", []):
        ls = {q["line"]} | ({q["other_line"]} if q.get("other_line") else set())
        if not ls & (asks | target_lines):
            r["overasked"] += 1
            r["notes"].append("over-asked line %d: %s" % (q["line"], q["why"][:80]))
    for l in nots:
        # A figure that a question shows as one of its readings ("other_line") is not dropped.
        if l not in unread and l not in read_lines and l not in questions and l not in others:
            r["silent"] += 1
            r["notes"].append("silent line %d: %s" % (l, "; ".join(nots[l])))
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([flow, "plan", os.path.abspath(doc)], capture_output=True, text=True, cwd=d,
                           env=dict(os.environ, FLOW_STATE=os.path.join(d, "state"), FLOW_WORKFLOWS=os.path.join(d, "wf")))
        r["planned"] = p.returncode == 0
        r["nothing"] = p.returncode == 3 and "nothing to plan" in p.stderr and not reqs
        if not r["planned"] and not r["nothing"]:
            r["notes"].append("plan refused (exit %d): %s" % (p.returncode, p.stderr.strip().splitlines()[0][:200] if p.stderr.strip() else ""))
    return r

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    flow = "target/debug/flow"
    if "--flow" in sys.argv:
        flow = sys.argv[sys.argv.index("--flow") + 1]
        args = [a for a in args if a != flow]
    flow = os.path.abspath(flow)
    verbose = "--verbose" in sys.argv
    as_json = "--json" in sys.argv
    docs = []
    for d in args:
        docs += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".md") and f != "README.md")
    keys = ["expected", "right", "missed", "wrong", "guessed", "asked", "ask_lines", "overasked", "silent", "not_lines"]
    tot = {k: 0 for k in keys}
    planned = nothing = 0
    if not as_json:
        print("%-52s %4s %5s %6s %5s %7s %5s %4s %6s %s" % ("document", "req", "right", "missed", "wrong", "guessed", "asked",
              "over", "silent", "planned"))
    for doc in docs:
        r = score(doc, flow, verbose)
        for k in tot:
            tot[k] += r[k]
        planned += r["planned"]
        nothing += r.get("nothing", False)
        if as_json:
            continue
        print("%-52s %4d %5d %6d %5d %7d %5s %4d %6d %s" % (r["doc"][:52], r["expected"], r["right"], r["missed"], r["wrong"],
              r["guessed"], "%d/%d" % (r["asked"], r["ask_lines"]), r["overasked"], r["silent"], "yes" if r["planned"] else "nothing" if r.get("nothing") else "NO"))
        if verbose:
            for n in r["notes"]:
                print("    " + n)
    tot["documents"], tot["planned"], tot["nothing_to_plan"] = len(docs), planned, nothing
    if as_json:
        print(json.dumps(tot))
        return
    pct = 100.0 * tot["right"] / max(1, tot["expected"])
    print("total: %d documents; %d of %d targets right (%.1f %%), %d missed, %d wrong, %d guessed where a reader would ask; "
          "%d of %d uncertain lines asked, %d questions on lines with no target; %d of %d non-target lines dropped silently; "
          "%d of %d documents planned, %d with nothing to plan"
          % (len(docs), tot["right"], tot["expected"], pct, tot["missed"], tot["wrong"], tot["guessed"], tot["asked"], tot["ask_lines"],
             tot["overasked"], tot["silent"], tot["not_lines"], planned, len(docs), nothing))

main()
