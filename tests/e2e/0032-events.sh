#!/usr/bin/env bash
# When a job ends, a genq.v1.JobEvent goes to the events topic (after the
# final state is committed): job, tenant, kind, state, result reference
# and URLs, net credits equal to the ledger, the failure's class and
# reason, and the job's metadata.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
start_worker a -X providers.kie-sora-2.poll_ms=100
{
        echo '{"job_id":"ev-chat","tenant_id":"acme","metadata":{"order":"42"},"chat":{"prompt":"hello events"}}'
        echo '{"job_id":"ev-video","tenant_id":"acme","providers":["kie-sora-2"],"video":{"prompt":"a boat","duration_s":10}}'
        echo '{"job_id":"ev-bad","tenant_id":"acme","budget_credits":0.000001,"chat":{"prompt":"too dear"}}'
} >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "3 finished" 60 sql_is "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL" 3
tail_topic "$PREFIX.events" 3 20 >"$E2E_OUT/events.jsonl"
assert_eq "events" 3 "$(wc -l <"$E2E_OUT/events.jsonl")"
ev() { grep "\"key\":\"$1\"" "$E2E_OUT/events.jsonl"; }
ev ev-chat | grep -q '"state":"succeeded"' || fail "chat event: $(ev ev-chat)"
ev ev-chat | grep -q '"result_ref":"postgres:results/ev-chat"' || fail "chat result ref"
ev ev-chat | grep -q '"order":"42"' || fail "metadata not echoed"
ev ev-chat | grep -q "\"credits\":\"$(sql "SELECT credits FROM credit_ledger WHERE job_id = 'ev-chat'")\"" ||
        fail "chat credits differ from the ledger: $(ev ev-chat)"
ev ev-video | grep -q '"credits":"40.000000"' || fail "video credits: $(ev ev-video)"
ev ev-video | grep -q '"result_urls":\["http' || fail "video URLs missing: $(ev ev-video)"
ev ev-bad | grep -q '"state":"failed"' || fail "failed job event: $(ev ev-bad)"
ev ev-bad | grep -q '"error_class":"budget"' || fail "failure class missing: $(ev ev-bad)"
ev ev-bad | grep -q '"error":"the job may cost up to' || fail "failure reason missing: $(ev ev-bad)"
