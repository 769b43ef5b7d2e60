#!/usr/bin/env bash
# Limits that hold across worker processes (schema/0007_policy.sql), with
# three workers in one group: zhipu's concurrency of 1 is never exceeded
# (the fake records its peak); an rpm limit lets exactly that many
# requests through per minute across all three (the policy clock is moved
# to slide the window, so the test needs no minute of waiting); a daily
# free quota used up sends jobs to the next provider, each switch
# explained, and the provider comes back after the quota's midnight
# without a restart; a circuit opens after an error burst (later jobs skip
# the provider without calling it) and closes after a successful probe.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
served() { sql "SELECT coalesce(string_agg(provider || '=' || n, ',' ORDER BY provider), '') FROM (SELECT provider, count(*) n FROM jobs WHERE job_id LIKE '$1%' AND state = 'succeeded' GROUP BY provider) x"; }
reqs() { fake GET "/_fake/$1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
jobs() { # jobs PREFIX N PROVIDERS_JSON
        local i
        for ((i = 0; i < $2; i++)); do
                printf '{"job_id":"%s-%03d","tenant_id":"t","providers":%s,"chat":{"messages":[{"role":"user","content":"limit me %d"}]}}\n' "$1" "$i" "$3" "$i"
        done | "$BIN/genq" submit -f - >/dev/null
}
# three NAME [-X ...]: three workers, each with partitions before we go on.
three() {
        local i
        for i in 1 2 3; do start_worker "$1$i" -X worker.kinds=chat "${@:2}"; done
        for i in 1 2 3; do
                wait_for "worker $1$i has partitions" 60 \
                        grep -q "assigned [1-9]" "$E2E_OUT/worker-$1$i.log"
        done
        sleep 1 # let the group settle: each owns some chat partitions
}

# ---- concurrency 1 across three workers --------------------------------
fake POST /_fake/zhipu/config '{"latency_ms": 150}' >/dev/null
three c -X worker.stats_interval_s=1
jobs cc 24 '["zhipu"]'
wait_for "24 zhipu jobs" 60 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'cc-%' AND state = 'succeeded'" 24
stats=$(fake GET /_fake/zhipu/stats)
assert_eq "zhipu peak concurrency (limit 1, three workers)" 1 \
        "$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["peak_inflight"])')"
assert_eq "zhipu calls" 24 "$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')"
w=$(sql "SELECT count(DISTINCT worker) FROM attempts WHERE job_id LIKE 'cc-%'")
[ "$w" -ge 2 ] || fail "only $w worker(s) ran the zhipu jobs: the limit was not shared"
log "ok: 24 calls from $w workers, never 2 at once"
stop_workers

# A two-key pool: the cap is the provider's (both keys share it) unless
# limits_scope is key (then each key has its own).
export FAKE_KEY_ZHIPU_2="$FAKE_KEY_ZHIPU"
for scope in provider key; do
        fake POST /_fake/zhipu/reset >/dev/null
        fake POST /_fake/zhipu/config '{"latency_ms": 150}' >/dev/null
        three "k$scope" -X providers.zhipu.api_key_env=FAKE_KEY_ZHIPU,FAKE_KEY_ZHIPU_2 \
                -X "providers.zhipu.limits_scope=$scope"
        jobs "k$scope" 16 '["zhipu"]'
        wait_for "16 zhipu jobs ($scope)" 60 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'k$scope-%' AND state = 'succeeded'" 16
        want=1; [ "$scope" = key ] && want=2
        assert_eq "zhipu peak with two keys, limits_scope=$scope" "$want" \
                "$(fake GET /_fake/zhipu/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["peak_inflight"])')"
        stop_workers
done

# ---- rpm across three workers --------------------------------------------
three r -X providers.groq.limits.rpm=10
n0=$(reqs groq)
jobs rr 25 '["groq"]'
sleep 5
assert_eq "groq calls in the first minute (rpm 10, three workers)" 10 $(( $(reqs groq) - n0 ))
assert_eq "the rest wait, none failed" 0 "$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'rr-%' AND state = 'failed'")"
sql "UPDATE policy_clock SET offset_s = offset_s + 61" >/dev/null
sleep 4
assert_eq "groq calls after the window slid once" 20 $(( $(reqs groq) - n0 ))
sql "UPDATE policy_clock SET offset_s = offset_s + 61" >/dev/null
wait_for "25 rpm jobs" 30 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'rr-%' AND state = 'succeeded'" 25
assert_eq "groq calls in all" 25 $(( $(reqs groq) - n0 ))
w=$(sql "SELECT count(DISTINCT worker) FROM attempts WHERE job_id LIKE 'rr-%' AND outcome = 'success'")
[ "$w" -ge 2 ] || fail "only $w worker(s) called groq"
stop_workers
sql "UPDATE policy_clock SET offset_s = 0" >/dev/null

# ---- a daily free quota, used up, then reset at midnight ----------------
sql "TRUNCATE provider_rate_log, provider_slots" >/dev/null
"$BIN/genq" provider quota groq --reset >/dev/null || fail "genq provider quota --reset"
three q -X providers.groq.free_quota.limit=5
jobs qa 8 '["groq","openai"]'
wait_for "8 quota jobs" 30 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'qa-%' AND state = 'succeeded'" 8
assert_eq "5 free at groq, then openai" "groq=5,openai=3" "$(served qa-)"
why=$(sql "SELECT error FROM attempts WHERE job_id LIKE 'qa-%' AND provider = 'groq' AND outcome = 'fallback_next' LIMIT 1")
case "$why" in "free quota used up (5 requests a day); resets in "*) ;; *) fail "switch not explained: '$why'" ;; esac
assert_eq "quota use recorded" "5.000000" "$(sql "SELECT used FROM provider_quota WHERE provider = 'groq'")"
# Move the policy clock past the next UTC midnight: groq is free again.
sql "UPDATE policy_clock SET offset_s = extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day' - (now() AT TIME ZONE 'UTC')) + 5" >/dev/null
sleep 6 # parks are re-checked in Postgres every 5 s
jobs qb 3 '["groq","openai"]'
wait_for "3 after the reset" 30 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'qb-%' AND state = 'succeeded'" 3
assert_eq "groq back after its reset, no restart" "groq=3" "$(served qb-)"
stop_workers
sql "UPDATE policy_clock SET offset_s = 0" >/dev/null

# ---- a large quota is taken in chunks: never overspent, fully counted ---
"$BIN/genq" provider quota groq --reset >/dev/null
three h -X providers.groq.free_quota.limit=1000
jobs hq 1300 '["groq","openai"]'
wait_for "1300 chunked-quota jobs" 90 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'hq-%' AND state = 'succeeded'" 1300
n=$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'hq-%' AND provider = 'groq'")
[ "$n" -le 1000 ] || fail "groq served $n jobs on a free quota of 1000"
[ "$n" -ge 900 ] || fail "groq served only $n of its 1000 free requests"
sleep 7 # unused chunks go back after 5 s
assert_eq "quota used = groq calls, once the chunks are back" "$n.000000" \
        "$(sql "SELECT used FROM provider_quota WHERE provider = 'groq'")"
log "ok: $n of 1000 free requests used by three workers taking chunks"
stop_workers

# ---- background jobs wait for a free tier's reset (wait_for_free) -------
cat >"$E2E_OUT/free.yaml" <<'YAML'
routes:
  chat:
    thrifty: {providers: [groq, openai], wait_for_free: true}
YAML
GENQ_CONFIG="$GENQ_CONFIG:$E2E_OUT/free.yaml"
"$BIN/genq" provider quota groq --reset >/dev/null
start_worker f -X worker.kinds=chat -X providers.groq.free_quota.limit=1
route_job() { # ID PRIORITY [DEADLINE_MS]
        printf '{"job_id":"%s","tenant_id":"t","route":"thrifty","priority":%d,"deadline_ms":%s,"chat":{"messages":[{"role":"user","content":"thrifty"}]}}\n' \
                "$1" "$2" "${3:-0}" | "$BIN/genq" submit -f - >/dev/null
}
route_job fw-use 0
wait_for "fw-use" 20 sql_is "SELECT provider FROM jobs WHERE job_id = 'fw-use' AND state = 'succeeded'" groq
route_job fw-bg -5                                   # waits for groq
route_job fw-now 0                                   # normal: pays openai
route_job fw-dl -5 $(( $(date +%s%3N) + 20000 ))     # reset after its deadline
wait_for "fw-now" 20 sql_is "SELECT provider FROM jobs WHERE job_id = 'fw-now' AND state = 'succeeded'" openai
wait_for "fw-dl" 20 sql_is "SELECT provider FROM jobs WHERE job_id = 'fw-dl' AND state = 'succeeded'" openai
sleep 3
assert_eq "fw-bg still waiting, never sent to openai" "running:0" \
        "$(sql "SELECT state || ':' || (SELECT count(*) FROM attempts WHERE job_id = 'fw-bg' AND provider = 'openai') FROM jobs WHERE job_id = 'fw-bg'")"
grep -q "job fw-bg: waiting .* for groq's free quota to reset" "$E2E_OUT/worker-f.log" || fail "no waiting line"
sql "UPDATE policy_clock SET offset_s = extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day' - (now() AT TIME ZONE 'UTC')) + 5" >/dev/null
wait_for "fw-bg served after the reset" 20 sql_is "SELECT provider FROM jobs WHERE job_id = 'fw-bg' AND state = 'succeeded'" groq
stop_workers
sql "UPDATE policy_clock SET offset_s = 0" >/dev/null

# ---- a circuit breaker opens on an error burst and closes on recovery ---
fake POST /_fake/groq/script '{"steps":[{"error":"server_error"}],"loop":true}' >/dev/null
start_worker b -X providers.groq.max_retries=0 -X policy.breaker_min_samples=5 \
        -X policy.breaker_cooldown_s=2 -X providers.groq.free_quota.limit=100000
for i in 1 2 3 4 5 6; do
        jobs "ba$i" 1 '["groq","openai"]'
        wait_for "ba$i" 20 sql_is "SELECT state FROM jobs WHERE job_id = 'ba$i-000'" succeeded
done
grep -q "provider groq: circuit open" "$E2E_OUT/worker-b.log" || fail "circuit did not open"
n1=$(reqs groq)
jobs bb 10 '["groq","openai"]'
wait_for "10 while open" 20 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'bb-%' AND state = 'succeeded'" 10
assert_eq "no groq call while open" "$n1" "$(reqs groq)"
assert_eq "served by openai while open" "openai=10" "$(served bb-)"
why=$(sql "SELECT error FROM attempts WHERE job_id = 'bb-000' AND provider = 'groq'")
case "$why" in "circuit open ("*) ;; *) fail "skip not explained: '$why'" ;; esac
fake POST /_fake/groq/script '{"steps":[]}' >/dev/null # groq recovers
sleep 2.5
jobs bc 1 '["groq","openai"]'
wait_for "probe job" 20 sql_is "SELECT state FROM jobs WHERE job_id = 'bc-000'" succeeded
assert_eq "the probe went to groq" "groq=1" "$(served bc-)"
grep -q "provider groq: circuit closed" "$E2E_OUT/worker-b.log" || fail "circuit did not close"
jobs bd 5 '["groq","openai"]'
wait_for "5 after closing" 20 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'bd-%' AND state = 'succeeded'" 5
assert_eq "groq serves again" "groq=5" "$(served bd-)"
