#!/usr/bin/env bash
# Durable transitions per second on the two state backends: the same workflow of CHAINS x LEN
# ungated pure steps (capacity models in chains, as in bench-engine.sh) run to the end by one
# `flow run`, once on a local sled store and once on S3 (moto on 127.0.0.1, started here from
# the test venv; or MOTO_URL=http://... to use a running one). On S3 every transition is a
# conditional PUT of one object (If-None-Match: *), so the figure is the round trip to the
# bucket: against real S3 from inside its region expect tens of milliseconds per append, not
# moto's loopback sub-millisecond.
#
#   scripts/bench-state.sh                    # 10 chains of 20 = 200 steps
#   CHAINS=4 LEN=50 scripts/bench-state.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CHAINS=${CHAINS:-10}
LEN=${LEN:-20}

cargo build --release -q --bin flow
export FLOW_BIN=$PWD/target/release/flow
work=$(mktemp -d)
moto_pid=""
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ -z "${MOTO_URL:-}" ]; then
  [ -x .venv/bin/moto_server ] || { echo "bench-state: run scripts/test once (it installs moto into .venv), or set MOTO_URL" >&2; exit 1; }
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
  moto_pid=$!
  MOTO_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    .venv/bin/python -c "import urllib.request; urllib.request.urlopen('$MOTO_URL/moto-api/', timeout=1)" 2>/dev/null && break
    sleep 0.1
  done
fi
export AWS_ENDPOINT_URL=$MOTO_URL AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-1
export AWS_EC2_METADATA_DISABLED=true
python3 - "$MOTO_URL" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/flow-bench", method="PUT",
    data=b'<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>')
urllib.request.urlopen(req)
PY

python3 - "$work" "$CHAINS" "$LEN" <<'PY'
import json, os, subprocess, sys, time

work, chains, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
flow = os.environ["FLOW_BIN"]
spec = os.path.join(work, "bench.md")
open(spec, "w").write("# Bench\n\n- The team shall keep this runbook in git.\n")

def bench(state, name):
    env = dict(os.environ, FLOW_STATE=state, FLOW_WORKFLOWS=os.path.join(work, name))
    run = lambda *a, **k: subprocess.run([flow, *a], env=env, capture_output=True, text=True, check=True, **k)
    run("plan", spec)
    wf = os.path.join(work, name, "bench.toml")
    head = open(wf).read().split("[[steps]]")[0]
    steps = []
    for c in range(chains):
        for i in range(length):
            needs = "[]" if i == 0 else f'["c{c}-s{i-1}"]'
            target = "2500" if i == 0 else f'"${{c{c}-s{i-1}.instances_total}}"'
            steps.append(f'[[steps]]\nid = "c{c}-s{i}"\nkind = "capacity_model"\nneeds = {needs}\n'
                         f'[steps.params]\ntarget_rps = {target}\nper_instance_rps = 400\nazs = 3\nheadroom_pct = 25\nvcpus_per_instance = 2\n')
    open(wf, "w").write(head + "\n".join(steps))
    before = len(json.loads(run("log", "--json").stdout)["events"])
    start = time.monotonic()
    run("run")
    elapsed = time.monotonic() - start
    t = time.monotonic()
    status = json.loads(run("status", "--json").stdout)
    status_s = time.monotonic() - t
    done = sum(1 for s in status["steps"] if s["state"] == "succeeded")
    events = len(json.loads(run("log", "--json").stdout)["events"]) - before
    print(f"{name:<6} {done:>5} steps  {events:>6} events in {elapsed:6.2f} s  = {events / elapsed:7.0f} durable transitions/s   flow status {status_s:.3f} s")

print(f"{chains * length} steps ({chains} chains of {length}), one `flow run` each")
bench(os.path.join(work, "state"), "sled")
bench("s3://flow-bench/team", "s3")
PY
