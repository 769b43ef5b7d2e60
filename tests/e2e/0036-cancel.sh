#!/usr/bin/env bash
# genq cancel: a job cancelled before any worker took it never runs (no
# provider call, no charge); one cancelled while its video task is being
# polled stops within seconds, ends 'cancelled', its hold refunded and the
# money outcome noted; cancelling an ended job says so and exits 1.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
echo '{"job_id":"c-early","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"never mind","duration_s":10}}' |
        "$BIN/genq" submit -f - >/dev/null
"$BIN/genq" cancel c-early | grep -q "cancel requested" || fail "cancel of a job still in Kafka"
start_worker a -X providers.kie-sora-2.poll_ms=100 -X providers.kie-sora-2.poll_max_ms=100
wait_for "c-early ended" 30 sql_is "SELECT state FROM jobs WHERE job_id = 'c-early'" cancelled
assert_eq "c-early never called a provider" 0 \
        "$(fake GET /_fake/kie/stats | grep -o '"requests":[0-9]*' | head -1 | cut -d: -f2)"
assert_eq "c-early not charged" 0 "$(sql "SELECT count(*) FROM credit_ledger WHERE job_id = 'c-early'")"
echo '{"job_id":"c-late","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"a very long take [steps:1000]","duration_s":10}}' |
        "$BIN/genq" submit -f - >/dev/null
wait_for "c-late polling" 30 sql_is "SELECT count(*) FROM tasks WHERE job_id = 'c-late'" 1
sleep 1
"$BIN/genq" cancel c-late --reason "changed my mind" | grep -q "cancel requested" || fail "cancel while polling"
wait_for "c-late cancelled" 10 sql_is "SELECT state FROM jobs WHERE job_id = 'c-late'" cancelled
assert_eq "c-late hold refunded" "charge,refund" \
        "$(sql "SELECT string_agg(entry_type, ',' ORDER BY entry_id) FROM credit_ledger WHERE job_id = 'c-late'")"
sql "SELECT billing_note FROM jobs WHERE job_id = 'c-late'" | grep -q "provider may still bill" ||
        fail "money outcome not noted"
polls=$(fake GET /_fake/kie/tasks | grep -o '"polls":[0-9]*' | cut -d: -f2)
sleep 1
assert_eq "polling stopped" "$polls" "$(fake GET /_fake/kie/tasks | grep -o '"polls":[0-9]*' | cut -d: -f2)"
rc=0; "$BIN/genq" cancel c-late >"$E2E_OUT/again.txt" || rc=$?
assert_eq "cancel of an ended job exit code" 1 "$rc"
grep -q "already ended: cancelled" "$E2E_OUT/again.txt" || fail "no 'already ended'"
rc=0; "$BIN/genq" cancel >/dev/null 2>&1 || rc=$?
assert_eq "cancel without an id" 2 "$rc"
