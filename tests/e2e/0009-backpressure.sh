#!/usr/bin/env bash
# At worker.max_inflight jobs the worker pauses its partitions and keeps
# polling (it stays in the group); below low_water it resumes.  The cap
# holds at the provider and every job still completes.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
fake POST /_fake/groq/config '{"latency_ms":200}' >/dev/null
start_worker a -X worker.max_inflight=20 -X worker.low_water=10 -X log.debug=kafka
gen_chat 300 bp 1 >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "300 done" 90 sql_is "SELECT count(*) FROM jobs WHERE state='succeeded'" 300
peak=$(fake GET /_fake/groq/stats | sed -n 's/.*"peak_inflight":\([0-9]*\).*/\1/p')
[ "$peak" -le 20 ] || fail "provider saw $peak concurrent calls, cap is 20"
[ "$peak" -ge 10 ] || fail "provider saw only $peak concurrent calls; the cap was never reached"
log "ok: peak in flight at the provider $peak <= 20"
grep -q "paused" "$E2E_OUT/worker-a.log" || fail "partitions were never paused"
grep -q "resumed" "$E2E_OUT/worker-a.log" || fail "partitions were never resumed"
assert_eq "charges" 300 "$(sql "SELECT count(*) FROM credit_ledger")"
if grep -q "revoked" "$E2E_OUT/worker-a.log"; then fail "the worker lost its partitions while paused"; fi
