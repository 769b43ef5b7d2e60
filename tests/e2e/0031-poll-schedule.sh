#!/usr/bin/env bash
# 1,000 concurrent video tasks in one worker, every one polled on
# schedule: the fake records each task's poll times; no task waits more
# than its interval plus a small slack (no thread per task, no sleep per
# task: one event loop and a timer heap).
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
interval=1000
start_worker a -X providers.kie-sora-2.poll_ms=$interval \
        -X providers.kie-sora-2.poll_max_ms=$interval -X worker.max_inflight=2000
for i in $(seq 1 1000); do
        printf '{"job_id":"ps-%04d","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"shot %d [steps:5]","duration_s":10}}\n' "$i" "$i"
done >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "1000 finished" 120 sql_is "SELECT count(*) FROM jobs WHERE state = 'succeeded'" 1000
fake GET /_fake/kie/tasks >"$E2E_OUT/tasks.json"
# Each poll's gap from the one before (the first: from the submit).  The
# worker adds up to 10% jitter; slack 500 ms for a busy 2-core box.
python3 - "$E2E_OUT/tasks.json" $interval <<'PY' || fail "poll schedule not kept"
import json, sys
tasks = json.load(open(sys.argv[1])); interval = int(sys.argv[2])
limit = interval * 1.1 + 500
worst = 0; n = 0
for t in tasks:
    times = [t["created_ms"]] + t["poll_ms"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    worst = max(worst, max(gaps)); n += len(gaps)
    if len(t["poll_ms"]) != 5:
        print("task %s polled %d times" % (t["id"], len(t["poll_ms"]))); sys.exit(1)
print("  %d tasks, %d polls, worst gap %d ms (limit %d)" % (len(tasks), n, worst, limit))
sys.exit(0 if len(tasks) == 1000 and worst <= limit else 1)
PY
