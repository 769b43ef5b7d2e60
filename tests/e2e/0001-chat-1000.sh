#!/usr/bin/env bash
# 1,000 chat jobs through Kafka, the worker and the fake provider give
# exactly 1,000 results and 1,000 charges; tokens and credits match an
# independent computation from the fake's documented formula and groq's
# price in config/genq.yaml (0.01 / 0.016 credits per 1K tokens); every
# offset is committed.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
start_worker a
gen_chat 1000 c1k 3 >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" || fail "submit failed"
assert_eq "ids written beside the input" 1000 "$(wc -l <"$E2E_OUT/jobs.jsonl.ids")"
wait_for "1000 finished jobs" 60 sql_is \
        "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL" 1000

assert_eq "succeeded jobs" 1000 "$(sql "SELECT count(*) FROM jobs WHERE state='succeeded'")"
assert_eq "results" 1000 "$(sql "SELECT count(*) FROM results")"
assert_eq "charges" 1000 "$(sql "SELECT count(*) FROM credit_ledger WHERE entry_type='charge'")"
assert_eq "attempts" 1000 "$(sql "SELECT count(*) FROM attempts WHERE outcome='success'")"
assert_eq "served by the first provider of the route" groq \
        "$(sql "SELECT string_agg(DISTINCT provider, ',') FROM jobs")"

# The fake: prompt_tokens = words of every message + 4 per message;
# completion_tokens = words of "fake reply: " + first 40 bytes of the
# prompt.  Prompts here: "question N about the weather today".
expect=$(awk 'BEGIN {
        cin = 0.01; cout = 0.016; tin = 0; tout = 0;
        for (i = 0; i < 1000; i++) {
                p = "question " i " about the weather today";
                tin += split(p, a, " ") + 4;
                tout += 2 + split(substr(p, 1, 40), b, " ");
        }
        printf "%d %d %.6f", tin, tout, (tin * cin + tout * cout) / 1000;
}')
read -r exp_in exp_out exp_credits <<<"$expect"
assert_eq "input tokens" "$exp_in" "$(sql "SELECT sum(input_tokens) FROM results")"
assert_eq "output tokens" "$exp_out" "$(sql "SELECT sum(output_tokens) FROM results")"
# Per-job rounding to 6 places happens in the ledger; the prices here make
# every per-job amount exact, so the sums must agree to the last digit.
assert_eq "credits" "$exp_credits" "$(sql "SELECT sum(credits) FROM credit_ledger")"
assert_eq "tenants" 3 "$(sql "SELECT count(*) FROM tenants")"
assert_eq "fake saw" 1000 "$(fake GET /_fake/groq/stats | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')"

# Offsets: every message's offset was stored and committed, so a fresh
# worker in the same group is handed nothing.
stop_workers
start_worker b -X worker.stats_interval_s=1
wait_for "worker b stats" 30 grep -q "assigned" "$E2E_OUT/worker-b.log"
sleep 3
grep -q "in=0 " "$E2E_OUT/worker-b.log" || fail "worker b wrote no stats line"
if grep -qE "in=[1-9]" "$E2E_OUT/worker-b.log"; then
        fail "worker b was handed messages that were already committed"
fi
log "ok: nothing redelivered to a new worker"
assert_eq "no new attempts" 1000 "$(sql "SELECT count(*) FROM attempts")"
