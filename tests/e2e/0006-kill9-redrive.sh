#!/usr/bin/env bash
# kill -9 while calls hang: the dead worker's offsets were committed once
# the jobs were in Postgres, so no message comes back; the jobs are
# re-driven from their rows when the leases expire.  Each finishes once and
# is charged once.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
fake POST /_fake/groq/script '{"steps":[{"hang":true}],"loop":true}' >/dev/null
start_worker a -X worker.lease_s=10 -X worker.sweep_interval_s=1
gen_chat 50 k9 1 >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "50 jobs running" 30 sql_is "SELECT count(*) FROM jobs WHERE state='running'" 50
kill -9 "$WORKER_a"; wait "$WORKER_a" 2>/dev/null || true
WORKER_PIDS=()
fake POST /_fake/groq/script '{"steps":[]}' >/dev/null
start_worker b -X worker.lease_s=10 -X worker.sweep_interval_s=1
wait_for "all 50 re-driven and done" 60 sql_is \
        "SELECT count(*) FROM jobs WHERE state='succeeded'" 50
assert_eq "charged once each" 50 "$(sql "SELECT count(*) FROM credit_ledger")"
assert_eq "each job leased twice (dead worker, then re-drive)" 2 \
        "$(sql "SELECT min(runs) FROM jobs")"
grep -q "re-driving job" "$E2E_OUT/worker-b.log" || fail "worker b did not log the re-drive"
