#!/usr/bin/env bash
# Submitting the same 1,000 jobs (same ids) a second time changes nothing:
# no new results, charges or attempts, and no job runs twice.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
start_worker a
gen_chat 1000 idem 2 >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" || fail "first submit failed"
wait_for "first round finished" 60 sql_is \
        "SELECT count(*) FROM jobs WHERE state='succeeded'" 1000
before=$(sql "SELECT count(*), sum(credits), max(created_at) FROM credit_ledger")
finished=$(sql "SELECT max(finished_at) FROM jobs")

"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" || fail "second submit failed"
# The second thousand are consumed and skipped: wait for the worker to say so.
wait_for "second round consumed" 60 grep -q "skipped=1000" "$E2E_OUT/worker-a.log"
assert_eq "ledger unchanged" "$before" \
        "$(sql "SELECT count(*), sum(credits), max(created_at) FROM credit_ledger")"
assert_eq "jobs unchanged" 1000 "$(sql "SELECT count(*) FROM jobs")"
assert_eq "results unchanged" 1000 "$(sql "SELECT count(*) FROM results")"
assert_eq "attempts unchanged" 1000 "$(sql "SELECT count(*) FROM attempts")"
assert_eq "no job finished again" "$finished" "$(sql "SELECT max(finished_at) FROM jobs")"
assert_eq "every job ran once" 1 "$(sql "SELECT max(runs) FROM jobs")"
assert_eq "provider called once per job" 1000 \
        "$(fake GET /_fake/groq/stats | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')"
