#!/usr/bin/env bash
# The engine at scale: a workflow of CHAINS x LEN ungated pure steps (capacity models, each
# needing the one before it in its chain and sizing from that one's output), run to the end by
# one `flow run`, then read back by `flow status`. Prints durable transitions (journal events)
# per second, total run time, `flow status` time at that size, and the run's peak RSS. The run
# prints its events as a person sees them (to /dev/null here); `--json` would also keep them all
# in memory for its report.
#
#   scripts/bench-engine.sh                    # 100 chains of 100 = 10,000 steps, --jobs 4
#   CHAINS=10 LEN=100 JOBS=16 scripts/bench-engine.sh
#   LIMIT=300 scripts/bench-engine.sh          # stop the run after 300 s (for a slow build)
#   CHAINS=1 LEN=20000 scripts/bench-engine.sh # one chain: each step references the one before
#   SHAPE=fanin LEN=20000 scripts/bench-engine.sh  # LEN independent steps and one that needs them all
set -euo pipefail
cd "$(dirname "$0")/.."

SHAPE=${SHAPE:-chains}
CHAINS=${CHAINS:-100}
LEN=${LEN:-100}
JOBS=${JOBS:-4}
LIMIT=${LIMIT:-0}

cargo build --release -q --bin flow
export FLOW_BIN=$PWD/target/release/flow
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FLOW_STATE=$work/state FLOW_WORKFLOWS=$work/workflows
printf '# Bench\n\n- The team shall keep this runbook in git.\n' > "$work/bench.md"
"$FLOW_BIN" plan "$work/bench.md" > /dev/null

python3 - "$work" "$CHAINS" "$LEN" "$JOBS" "$LIMIT" "$SHAPE" <<'PY'
import json, os, resource, subprocess, sys, time

work, chains, length, jobs, limit, shape = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
if shape == "fanin":
    chains = 1
flow = os.environ["FLOW_BIN"]
wf = os.path.join(work, "workflows", "bench.toml")
head = open(wf).read().split("[[steps]]")[0]
steps = []
for c in range(chains):
    for i in range(length):
        sid = f"c{c}-s{i}"
        if i == 0:
            needs, target = "[]", "2500"
        else:
            needs, target = f'["c{c}-s{i-1}"]', f'"${{c{c}-s{i-1}.instances_total}}"'
        steps.append(
            f'[[steps]]\nid = "{sid}"\nkind = "capacity_model"\nneeds = {needs}\n'
            f'[steps.params]\ntarget_rps = {target}\nper_instance_rps = 400\nazs = 3\nheadroom_pct = 25\nvcpus_per_instance = 2\n'
        )
if shape == "fanin":
    steps = []
    for i in range(length):
        steps.append(
            f'[[steps]]\nid = "s{i}"\nkind = "capacity_model"\nneeds = []\n'
            f'[steps.params]\ntarget_rps = 2500\nper_instance_rps = 400\nazs = 3\nheadroom_pct = 25\nvcpus_per_instance = 2\n'
        )
    needs = ", ".join(f'"s{i}"' for i in range(length))
    steps.append(
        f'[[steps]]\nid = "all"\nkind = "capacity_model"\nneeds = [{needs}]\n'
        f'[steps.params]\ntarget_rps = "${{s{length - 1}.instances_total}}"\nper_instance_rps = 400\nazs = 3\nheadroom_pct = 25\nvcpus_per_instance = 2\n'
    )
open(wf, "w").write(head + "\n".join(steps))
total = len(steps)

def events():
    out = subprocess.run([flow, "log", "--json"], capture_output=True, text=True, check=True).stdout
    return len(json.loads(out)["events"])

before = events()
start = time.monotonic()
run = subprocess.Popen([flow, "run", "--jobs", jobs], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
timed_out = False
try:
    run.wait(timeout=limit if limit > 0 else None)
except subprocess.TimeoutExpired:
    run.kill()
    run.wait()
    timed_out = True
elapsed = time.monotonic() - start
peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

t = time.monotonic()
status = json.loads(subprocess.run([flow, "status", "--json"], capture_output=True, text=True, check=True).stdout)
status_s = time.monotonic() - t
done = sum(1 for s in status["steps"] if s["state"] == "succeeded")
appended = events() - before

shown = f"{length} independent and one that needs them all" if shape == "fanin" else f"{chains} chains of {length}"
print(f"steps                {total:,} ({shown}), --jobs {jobs}")
print(f"finished             {done:,} steps{' (stopped after %d s)' % limit if timed_out else ''}, exit {run.returncode}")
print(f"run time             {elapsed:.2f} s")
print(f"journal events       {appended:,}")
print(f"durable transitions  {appended / elapsed:,.0f} per second")
print(f"flow status          {status_s:.3f} s at {len(status['steps']):,} steps")
print(f"peak RSS of the run  {peak_mib:.1f} MiB")
PY
