#!/usr/bin/env bash
# An async submit sent but never answered (the provider may be generating
# it) is never blindly resubmitted: the unknown task is recorded and the
# job follows worker.unknown_submit -- fail for review (default), or
# resubmit.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
opts=(-X providers.kie-sora-2.timeout_ms=1000 -X providers.kie-sora-2.poll_ms=100
      -X providers.kie-sora-2.max_retries=2)
start_worker a "${opts[@]}"
fake POST /_fake/kie/script '{"steps":[{"hang":true}]}' >/dev/null
echo '{"job_id":"u-fail","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"lost answer","duration_s":10}}' |
        "$BIN/genq" submit -f - >/dev/null
wait_for "u-fail done" 30 sql_is "SELECT state FROM jobs WHERE job_id = 'u-fail'" failed
assert_eq "u-fail class" unknown_submit "$(sql "SELECT error_class FROM jobs WHERE job_id = 'u-fail'")"
assert_eq "u-fail task marked unknown" unknown "$(sql "SELECT string_agg(state, ',') FROM tasks WHERE job_id = 'u-fail'")"
assert_eq "u-fail submitted once (no blind resubmit)" 1 \
        "$(fake GET /_fake/kie/stats | grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2)"
assert_eq "u-fail not charged" 0 "$(sql "SELECT count(*) FROM credit_ledger WHERE job_id = 'u-fail'")"
stop_workers
fake_reset
start_worker b "${opts[@]}" -X worker.unknown_submit=resubmit
fake POST /_fake/kie/script '{"steps":[{"hang":true}]}' >/dev/null
echo '{"job_id":"u-again","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"try again","duration_s":10}}' |
        "$BIN/genq" submit -f - >/dev/null
wait_for "u-again done" 30 sql_is "SELECT state FROM jobs WHERE job_id = 'u-again'" succeeded
assert_eq "u-again tasks" "unknown,succeeded" \
        "$(sql "SELECT string_agg(state, ',' ORDER BY task_id) FROM tasks WHERE job_id = 'u-again'")"
grep -q "worker.unknown_submit = resubmit" "$E2E_OUT/worker-b.log" || fail "rule not logged"
