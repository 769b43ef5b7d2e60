#!/usr/bin/env bash
# Cancelling a job whose task runs at a provider with a cancel call
# (Replicate: POST /v1/predictions/{id}/cancel) cancels the task there
# too, once, before the job ends 'cancelled'; the job's error and billing
# note say so.  Polling stops.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
start_worker a -X providers.replicate.poll_ms=100 -X providers.replicate.poll_max_ms=100
echo '{"job_id":"pc-1","tenant_id":"t","providers":["replicate"],"image":{"prompt":"a slow fox [steps:1000]"}}' |
        "$BIN/genq" submit -f - >/dev/null
wait_for "pc-1 polling" 30 sql_is "SELECT count(*) FROM tasks WHERE job_id = 'pc-1'" 1
sleep 0.5
"$BIN/genq" cancel pc-1 | grep -q "cancel requested" || fail "cancel"
wait_for "pc-1 cancelled" 10 sql_is "SELECT state FROM jobs WHERE job_id = 'pc-1'" cancelled
fake GET /_fake/replicate/tasks >"$E2E_OUT/tasks.json"
python3 - "$E2E_OUT/tasks.json" <<'PY' || fail "task not cancelled at the provider once"
import json, sys
t = json.load(open(sys.argv[1]))
assert len(t) == 1 and t[0]["canceled"] and t[0]["cancels"] == 1, t
PY
sql "SELECT error FROM jobs WHERE job_id = 'pc-1'" | grep -q "cancelled at replicate" ||
        fail "error does not say the task was cancelled at the provider: $(sql "SELECT error FROM jobs WHERE job_id = 'pc-1'")"
sql "SELECT billing_note FROM jobs WHERE job_id = 'pc-1'" | grep -q "cancelled at the provider" ||
        fail "billing note: $(sql "SELECT billing_note FROM jobs WHERE job_id = 'pc-1'")"
polls=$(fake GET /_fake/replicate/tasks | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["polls"])')
sleep 1
assert_eq "polling stopped" "$polls" \
        "$(fake GET /_fake/replicate/tasks | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["polls"])')"
assert_eq "not charged" 0 "$(sql "SELECT coalesce(sum(credits), 0) FROM credit_ledger WHERE job_id = 'pc-1'")"
