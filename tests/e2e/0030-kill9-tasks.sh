#!/usr/bin/env bash
# kill -9 of the worker while 100 video tasks are mid-generation, then a
# new worker: every task finishes, each was submitted to the provider
# exactly once (the new worker resumes the recorded task, it never
# submits again), and each job is billed once.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
start_worker a -X worker.lease_s=10 -X worker.sweep_interval_s=1 \
        -X providers.kie-sora-2.poll_ms=1000 -X providers.kie-sora-2.poll_max_ms=1000
for i in $(seq 1 100); do
        printf '{"job_id":"k9v-%03d","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"a long take %d [steps:12]","duration_s":10}}\n' "$i" "$i"
done >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "100 tasks recorded" 60 sql_is "SELECT count(*) FROM tasks" 100
sleep 2 # a few polls in
assert_eq "none finished before the kill" 0 "$(sql "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL")"
kill -9 "$WORKER_a"; wait "$WORKER_a" 2>/dev/null || true
WORKER_PIDS=()
start_worker b -X worker.lease_s=10 -X worker.sweep_interval_s=1 \
        -X providers.kie-sora-2.poll_ms=200 -X providers.kie-sora-2.poll_max_ms=400
wait_for "all 100 finished" 90 sql_is "SELECT count(*) FROM jobs WHERE state = 'succeeded'" 100
assert_eq "tasks the provider received (submits)" 100 \
        "$(fake GET /_fake/kie/tasks | grep -o '"id":' | wc -l)"
assert_eq "tasks recorded, all succeeded" "100|100" \
        "$(sql "SELECT count(*) || '|' || count(*) FILTER (WHERE state = 'succeeded') FROM tasks")"
assert_eq "one charge per job, no refunds" "100|0" \
        "$(sql "SELECT count(*) FILTER (WHERE entry_type = 'charge') || '|' || count(*) FILTER (WHERE entry_type = 'refund') FROM credit_ledger")"
assert_eq "billed 40 credits each" "4000.000000" \
        "$(sql "SELECT sum(CASE entry_type WHEN 'refund' THEN -credits ELSE credits END) FROM credit_ledger")"
grep -q "resuming task" "$E2E_OUT/worker-b.log" || fail "worker b did not resume tasks"
