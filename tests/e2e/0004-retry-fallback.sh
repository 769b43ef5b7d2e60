#!/usr/bin/env bash
# Jobs here pin their providers (groq, then openai), a job's own
# provider list.  The tracer bullet's policy: retry_later on the same provider with
# backoff (honouring Retry-After), then fall back to the next provider of
# the route; a 401 disables the key; a 400 fails the job with no fallback;
# every attempt is on record with its outcome class.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
# groq: three 500s (max_retries 2 -> 3 tries) then the job moves to openai.
fake POST /_fake/groq/script '{"steps":[{"error":"server_error"},{"error":"server_error"},{"error":"server_error"}]}' >/dev/null
start_worker a -X policy.park_s=3
"$BIN/genq" submit --job-id fb-1 --tenant acme --provider groq --provider openai --prompt "fall back please" >/dev/null
wait_for "fb-1 finished" 30 sql_is "SELECT state FROM jobs WHERE job_id='fb-1'" succeeded
assert_eq "fb-1 attempts" "groq:500:retry_later,groq:500:retry_later,groq:500:retry_later,openai:200:success" \
        "$(sql "SELECT string_agg(provider||':'||http_status||':'||outcome, ',' ORDER BY attempt_id) FROM attempts WHERE job_id='fb-1'")"
assert_eq "fb-1 served by" openai "$(sql "SELECT provider FROM jobs WHERE job_id='fb-1'")"
assert_eq "fb-1 charged at openai's price" openai \
        "$(sql "SELECT price_snapshot->>'provider' FROM credit_ledger WHERE job_id='fb-1'")"

# 429 with Retry-After: 1 -> retried on groq after about a second.
fake POST /_fake/groq/script '{"steps":[{"error":"rate_limit"}]}' >/dev/null
"$BIN/genq" submit --job-id rl-1 --tenant acme --provider groq --provider openai --prompt "slow down" >/dev/null
wait_for "rl-1 finished" 30 sql_is "SELECT state FROM jobs WHERE job_id='rl-1'" succeeded
assert_eq "rl-1 attempts" "groq:429:retry_later,groq:200:success" \
        "$(sql "SELECT string_agg(provider||':'||http_status||':'||outcome, ',' ORDER BY attempt_id) FROM attempts WHERE job_id='rl-1'")"
gap=$(sql "SELECT (extract(epoch FROM max(started_at) - min(started_at)) * 1000)::int FROM attempts WHERE job_id='rl-1'")
[ "$gap" -ge 900 ] || fail "retry came after ${gap} ms, before the 1 s Retry-After"
log "ok: retry waited ${gap} ms for Retry-After: 1"

# 429 insufficient_quota: no retry on groq, straight to openai.
fake POST /_fake/groq/script '{"steps":[{"error":"insufficient_quota"}]}' >/dev/null
"$BIN/genq" submit --job-id q-1 --tenant acme --provider groq --provider openai --prompt "no credit" >/dev/null
wait_for "q-1 finished" 30 sql_is "SELECT state FROM jobs WHERE job_id='q-1'" succeeded
assert_eq "q-1 attempts" "groq:429:quota_exhausted,openai:200:success" \
        "$(sql "SELECT string_agg(provider||':'||http_status||':'||outcome, ',' ORDER BY attempt_id) FROM attempts WHERE job_id='q-1'")"
# The key is parked (policy.park_s = 3 here): the next job does not call
# groq at all, and its attempts say why.
n_groq=$(fake GET /_fake/groq/stats | grep -o '"requests":[0-9]*' | cut -d: -f2)
"$BIN/genq" submit --job-id q-2 --tenant acme --provider groq --provider openai --prompt "still no credit" >/dev/null
wait_for "q-2 finished" 30 sql_is "SELECT state FROM jobs WHERE job_id='q-2'" succeeded
assert_eq "q-2 skips the parked key" "groq:-:fallback_next:every key is disabled or parked,openai:200:success:" \
        "$(sql "SELECT string_agg(provider||':'||coalesce(http_status::text, '-')||':'||outcome||':'||coalesce(error, ''), ',' ORDER BY attempt_id) FROM attempts WHERE job_id='q-2'")"
assert_eq "groq not called while parked" "$n_groq" "$(fake GET /_fake/groq/stats | grep -o '"requests":[0-9]*' | cut -d: -f2)"
sleep 3.2 # the park ends

# 400 context_length_exceeded is fallback; a plain 400 is the job's fault.
fake POST /_fake/groq/script '{"steps":[{"status":400,"body":"{\"error\":{\"message\":\"bad temperature\",\"type\":\"invalid_request_error\",\"param\":\"temperature\",\"code\":null}}"}]}' >/dev/null
"$BIN/genq" submit --job-id bad-1 --tenant acme --provider groq --provider openai --prompt "bad request" >/dev/null
wait_for "bad-1 finished" 30 sql_is "SELECT state FROM jobs WHERE job_id='bad-1'" failed
assert_eq "bad-1 no fallback" "groq:400:fatal_job" \
        "$(sql "SELECT string_agg(provider||':'||http_status||':'||outcome, ',' ORDER BY attempt_id) FROM attempts WHERE job_id='bad-1'")"
assert_eq "bad-1 error class" fatal_job "$(sql "SELECT error_class FROM jobs WHERE job_id='bad-1'")"
assert_eq "bad-1 not charged" 0 "$(sql "SELECT count(*) FROM credit_ledger WHERE job_id='bad-1'")"

# A wrong key on groq: 401 -> key disabled (logged by id, never the key).
fake POST /_fake/groq/config '{"keys":["some-other-key"]}' >/dev/null
"$BIN/genq" submit --job-id key-1 --tenant acme --provider groq --provider openai --prompt "who am I" >/dev/null
wait_for "key-1 finished" 30 sql_is "SELECT state FROM jobs WHERE job_id='key-1'" succeeded
assert_eq "key-1 attempts" "groq:401:key_disabled,openai:200:success" \
        "$(sql "SELECT string_agg(provider||':'||http_status||':'||outcome, ',' ORDER BY attempt_id) FROM attempts WHERE job_id='key-1'")"
grep -q "key env:FAKE_KEY_GROQ disabled" "$E2E_OUT/worker-a.log" || fail "key disable not logged by id"
if grep -q "fake-key-groq" "$E2E_OUT/worker-a.log"; then fail "a key appeared in the log"; fi
if [ -n "$(sql "SELECT 1 FROM attempts WHERE error LIKE '%fake-key%' OR key_id LIKE '%fake-key%'")" ]; then
        fail "a key reached the database"
fi
# The disabled key is not tried again.
"$BIN/genq" submit --job-id key-2 --tenant acme --provider groq --provider openai --prompt "again" >/dev/null
wait_for "key-2 finished" 30 sql_is "SELECT state FROM jobs WHERE job_id='key-2'" succeeded
assert_eq "key-2 skips groq" "openai:200:success" \
        "$(sql "SELECT string_agg(provider||':'||http_status||':'||outcome, ',' ORDER BY attempt_id) FROM attempts WHERE job_id='key-2'")"

# Every provider failing: the job fails with the whole trail on record.
fake POST /_fake/openai/script '{"steps":[{"error":"overloaded"}],"loop":true}' >/dev/null
"$BIN/genq" submit --job-id all-1 --tenant acme --provider groq --provider openai --prompt "nobody home" >/dev/null
wait_for "all-1 finished" 60 sql_is "SELECT state FROM jobs WHERE job_id='all-1'" failed
assert_eq "all-1 trail" "openai:503:retry_later,openai:503:retry_later,openai:503:retry_later" \
        "$(sql "SELECT string_agg(provider||':'||http_status||':'||outcome, ',' ORDER BY attempt_id) FROM attempts WHERE job_id='all-1'")"
sql "SELECT error FROM jobs WHERE job_id='all-1'" | grep -q "every provider failed" ||
        fail "all-1 error does not say every provider failed"
