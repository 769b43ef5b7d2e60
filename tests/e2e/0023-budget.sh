#!/usr/bin/env bash
# Budgets: a job's estimated cost (the costliest provider of its route) is
# reserved atomically before it runs; a job that does not fit is refused
# with a clear reason, never run; on finish the reservation settles to the
# real cost.  Two workers race for the same budget.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
# Image default route: the costliest price is openai-images, 8 credits; the
# job runs at stability, 6 credits.  A budget of 24 fits three
# reservations; after any three jobs, spent + reserved >= 18, so a fourth
# (8 more) never fits: exactly three run, whatever the timing.
"$BIN/genq" tenant add rich >/dev/null 2>&1 || sql "INSERT INTO tenants (tenant_id) VALUES ('rich') ON CONFLICT DO NOTHING" >/dev/null
sql "INSERT INTO tenants (tenant_id) VALUES ('broke') ON CONFLICT DO NOTHING" >/dev/null
sql "UPDATE tenants SET credit_budget = 24, budget_period = 'month' WHERE tenant_id = 'rich'" >/dev/null
sql "UPDATE tenants SET credit_budget = 0, budget_period = 'day' WHERE tenant_id = 'broke'" >/dev/null
start_worker a
start_worker b
for i in 1 2 3 4 5; do
        printf '{"job_id":"rich-%d","tenant_id":"rich","image":{"prompt":"a coin %d"}}\n' "$i" "$i"
        printf '{"job_id":"broke-%d","tenant_id":"broke","tts":{"text":"nothing left %d"}}\n' "$i" "$i"
done >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "10 finished" 60 sql_is "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL" 10
assert_eq "rich: jobs run" 3 "$(sql "SELECT count(*) FROM jobs WHERE tenant_id = 'rich' AND state = 'succeeded'")"
assert_eq "rich: jobs refused" 2 "$(sql "SELECT count(*) FROM jobs WHERE tenant_id = 'rich' AND state = 'failed' AND error_class = 'budget'")"
assert_eq "rich: charged" "18.000000" "$(sql "SELECT sum(credits) FROM credit_ledger WHERE tenant_id = 'rich'")"
assert_eq "rich: spend settled" "18.000000|0.000000" \
        "$(sql "SELECT spent || '|' || reserved FROM tenant_spend WHERE tenant_id = 'rich'")"
assert_eq "broke: every job refused" 5 "$(sql "SELECT count(*) FROM jobs WHERE tenant_id = 'broke' AND error_class = 'budget'")"
sql "SELECT error FROM jobs WHERE job_id = 'broke-1'" | grep -q "over the tenant's budget" ||
        fail "refusal does not say why: $(sql "SELECT error FROM jobs WHERE job_id = 'broke-1'")"
assert_eq "broke: nothing spent" 0 "$(sql "SELECT count(*) FROM credit_ledger WHERE tenant_id = 'broke'")"
assert_eq "refused jobs never called a provider" 0 \
        "$(sql "SELECT count(*) FROM attempts a JOIN jobs j USING (job_id) WHERE j.error_class = 'budget'")"
assert_eq "the fake saw only the three that fit" 3 \
        "$(fake GET /_fake/stability/stats | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')"
assert_eq "elevenlabs never called" 0 \
        "$(fake GET /_fake/elevenlabs/stats | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')"
# A job's own budget: refused before anything is reserved.
echo '{"job_id":"small-1","tenant_id":"rich","budget_credits":0.5,"image":{"prompt":"too dear"}}' |
        "$BIN/genq" submit -f - >/dev/null
wait_for "small-1 finished" 30 sql_is "SELECT state FROM jobs WHERE job_id = 'small-1'" failed
sql "SELECT error FROM jobs WHERE job_id = 'small-1'" | grep -q "over its budget of 0.5" ||
        fail "job budget refusal: $(sql "SELECT error FROM jobs WHERE job_id = 'small-1'")"
