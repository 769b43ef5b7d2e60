#!/usr/bin/env bash
# Outcome handling a user relies on, through the real worker, Kafka,
# Postgres and the fake providers (provider-api-reference.md section 12):
#
#   1. 429 + Retry-After (groq) / RetryInfo retryDelay (Gemini): the same
#      provider again, after the hint.
#   2. 429 meaning "no credit" (OpenAI insufficient_quota,
#      credit_balance_exhausted): quota_exhausted, straight to the next
#      provider, no retry.
#   3. Balance exhausted in each family's own words (402s, Anthropic
#      "credit balance is too low" 400, SiliconFlow 403 30011, Zhipu 429
#      1113, DashScope 400 Arrearage, Gemini daily quota, KIE 402 on chat
#      and inside an HTTP 200 on createTask, ElevenLabs' 401
#      quota_exceeded, ...): quota_exhausted and fallback.
#   4. A two-key pool whose first key is refused: key_disabled on that
#      key, the same provider with the second key; later jobs skip it.
#   5. 529 / 503 overloaded x N: max_retries (2) retries, then fallback.
#   6. A hung and a slow provider: each call ends at timeout_ms, then
#      fallback; the job is not held for long.
#   7. Every provider failing: the job fails with the whole trail.
#
# Each job pins its providers.  A provider is scripted for one job at a
# time, and no provider is used again after it said its quota is gone
# (the worker parks such a key, policy.park_s).  Every provider this test
# exhausts or refuses uses a key variable of its own (key ids
# env:FAKE_KEY_T41_*, env:FAKE_KEY_GROQ_A/_B, same values as the fake's
# keys), so key states shared between workers (provider_key_state) cannot
# leak into other tests, nor theirs into this one.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config

# script PROVIDER JSON: install a fault script on the fake (fail if refused).
script() { fake POST "/_fake/$1/script" "$2" >/dev/null || fail "fake refused the script for $1: $2"; }
# trail JOB: provider:http_status:outcome of every attempt, in order.
trail() {
        sql "SELECT string_agg(provider || ':' || coalesce(http_status::text, '-') || ':' || outcome, ','
                               ORDER BY attempt_id) FROM attempts WHERE job_id = '$1'"
}
# ktrail JOB: provider:key_id:http_status:outcome of every attempt.
ktrail() {
        sql "SELECT string_agg(provider || ':' || coalesce(key_id, '-') || ':' || coalesce(http_status::text, '-') || ':' || outcome, ','
                               ORDER BY attempt_id) FROM attempts WHERE job_id = '$1'"
}
# job JOB: state/provider/error_class/error of the job.
job() { sql "SELECT state || '/' || coalesce(provider, '-') || '/' || coalesce(error_class, '-') || '/' || coalesce(error, '-') FROM jobs WHERE job_id = '$1'"; }
# gap_ms JOB: ms between the first and the last attempt's start.
gap_ms() { sql "SELECT (extract(epoch FROM max(started_at) - min(started_at)) * 1000)::int FROM attempts WHERE job_id = '$1'"; }
# finished PREFIX N [TIMEOUT]: N jobs whose id starts with PREFIX are final.
finished() {
        wait_for "$2 jobs $1* finished" "${3:-30}" sql_is \
                "SELECT count(*) FROM jobs WHERE job_id LIKE '$1%' AND state IN ('succeeded', 'failed')" "$2"
}
# reqs P / by_status P: what the fake saw for provider P.
reqs() { fake GET "/_fake/$1/stats" | jq -r .requests; }
by_status() { fake GET "/_fake/$1/stats" | jq -cS .by_status; }
providers_json() { printf '%s\n' "$@" | jq -R . | jq -cs .; }
chat() { # JOB PROVIDER... -> one JSON line
        local id=$1; shift
        printf '{"job_id":"%s","tenant_id":"acme","providers":%s,"chat":{"prompt":"outcome test %s"}}\n' \
                "$id" "$(providers_json "$@")" "$id"
}
image() {
        local id=$1; shift
        printf '{"job_id":"%s","tenant_id":"acme","providers":%s,"image":{"prompt":"a red fox in snow","count":1,"size":"1024x1024","aspect_ratio":"1:1"}}\n' \
                "$id" "$(providers_json "$@")"
}
tts() {
        local id=$1; shift
        printf '{"job_id":"%s","tenant_id":"acme","providers":%s,"tts":{"text":"Hello there from genq","format":"mp3"}}\n' \
                "$id" "$(providers_json "$@")"
}
stt() {
        local id=$1; shift
        printf '{"job_id":"%s","tenant_id":"acme","providers":%s,"stt":{"audio_url":"http://127.0.0.1:%s/_fake/media/tone-3s.wav","language":"en"}}\n' \
                "$id" "$(providers_json "$@")" "$FAKE_PORT"
}
submit() { "$BIN/genq" submit -f - >/dev/null || fail "submit failed"; }

# Keys of this test's own (see the top).
XARGS=()
own_key() { # PROVIDER VARIABLE_HOLDING_THE_FAKE_KEY
        local v="FAKE_KEY_T41_$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"
        export "$v=${!2}"
        XARGS+=(-X "providers.$1.api_key_env=$v")
}
for pv in openai:OPENAI deepinfra:DEEPINFRA together:TOGETHER openrouter:OPENROUTER \
          anthropic:ANTHROPIC siliconflow:SILICONFLOW zhipu:ZHIPU dashscope:DASHSCOPE \
          kie-gemini-3-flash:KIE kie-nano-banana:KIE cohere:COHERE gemini:GEMINI \
          stability:STABILITY replicate:REPLICATE hf-image:HF elevenlabs:ELEVENLABS \
          assemblyai:ASSEMBLYAI gladia:GLADIA ai21:AI21; do
        own_key "${pv%%:*}" "FAKE_KEY_${pv#*:}"
done
# groq: a two-key pool; the fake accepts only the second key.  A fresh
# worker's first groq call uses the pool's first key (round robin from 0,
# and least-used picks the lowest index on a tie).
export FAKE_KEY_GROQ_A=groq-key-aaaa-0001 FAKE_KEY_GROQ_B=groq-key-bbbb-0002
fake POST /_fake/groq/config "{\"keys\":[\"$FAKE_KEY_GROQ_B\"]}" >/dev/null || fail "groq keys"
# Disabled keys are shared by all workers in Postgres (provider_key_state),
# which reset_db does not empty: forget an earlier run's.
sql "DELETE FROM provider_key_state WHERE key_id LIKE 'env:FAKE_KEY\_T41\_%' OR key_id LIKE 'env:FAKE_KEY_GROQ\__'" \
        >/dev/null 2>&1 || true
start_worker a -X worker.backoff_base_ms=50 -X worker.backoff_cap_ms=200 \
        -X providers.groq.timeout_ms=1000 \
        -X providers.groq.api_key_env=FAKE_KEY_GROQ_A,FAKE_KEY_GROQ_B "${XARGS[@]}"

# ---- phase A ------------------------------------------------------------
# 1: Gemini's RetryInfo (retryDelay "1s").
script gemini '{"steps":[{"error":"rate_limit"}]}'
# 2: 429 meaning "no credit".
script openai '{"steps":[{"error":"insufficient_quota"}]}'
script deepinfra '{"steps":[{"status":429,"body":"{\"error\":{\"message\":\"You have no credits remaining.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"credit_balance_exhausted\"}}"}]}'
# 3: balance exhausted, each family's own error.
script together '{"steps":[{"status":402,"body":"{\"error\":{\"message\":\"Credit limit exceeded. Please add credit to continue.\",\"type\":\"credit_limit\",\"param\":null,\"code\":null}}"}]}'
script openrouter '{"steps":[{"error":"quota"}]}'
script siliconflow '{"steps":[{"error":"quota"}]}'
script zhipu '{"steps":[{"error":"quota"}]}'
script dashscope '{"steps":[{"error":"quota"}]}'
# KIE: one step per job; the chat path answers HTTP 402, createTask HTTP
# 200 with code 402.
script kie '{"steps":[{"error":"insufficient_credits"},{"error":"insufficient_credits"}]}'
script stability '{"steps":[{"error":"payment_required"}]}'
script replicate '{"steps":[{"error":"insufficient_credit"}]}'
script hf '{"steps":[{"error":"credits_exhausted"}]}'
script elevenlabs '{"steps":[{"error":"quota_exceeded"}]}'
script assemblyai '{"steps":[{"error":"payment_required"}]}'
script gladia '{"steps":[{"error":"quota"}]}'
# 5: overloaded, three times each.
script anthropic '{"steps":[{"error":"overloaded"},{"error":"overloaded"},{"error":"overloaded"}]}'
script cohere '{"steps":[{"error":"unavailable"},{"error":"unavailable"},{"error":"unavailable"}]}'
# 7: every provider fails, each its own way.
script hunyuan '{"steps":[{"error":"server_error"}],"loop":true}'
script ai21 '{"steps":[{"status":402,"body":"{\"error\":{\"message\":\"Insufficient balance\",\"type\":\"billing_error\",\"param\":null,\"code\":null}}"}]}'
script nvidia '{"steps":[{"error":"context_length"}]}'
{
        chat k-1 groq fireworks
        chat r-gemini gemini fireworks
        chat q-openai openai perplexity
        chat q-deepinfra deepinfra perplexity
        for p in together openrouter siliconflow zhipu dashscope kie-gemini-3-flash; do
                chat "b-$p" "$p" mistral
        done
        image b-kie-nano-banana kie-nano-banana openai-images
        image b-stability stability openai-images
        image b-replicate replicate openai-images
        image b-hf-image hf-image openai-images
        tts b-elevenlabs elevenlabs openai-tts
        stt b-assemblyai assemblyai openai-stt
        stt b-gladia gladia openai-stt
        chat o-anthropic anthropic llamaapi
        chat o-cohere cohere llamaapi
        chat z-all hunyuan ai21 nvidia1
} | submit
wait_for "k-1 finished" 40 sql_is "SELECT state FROM jobs WHERE job_id = 'k-1'" succeeded
# 4, second job: the disabled key is not tried again.
chat k-2 groq fireworks | submit
wait_for "k-2 finished" 20 sql_is "SELECT state FROM jobs WHERE job_id = 'k-2'" succeeded
finished r- 1
finished o- 2
finished b- 13

# ---- phase B: the same families' balance errors (after their retries),
# and groq's Retry-After ----------------------------------------------------
script anthropic '{"steps":[{"error":"credit_balance"}]}'
script cohere '{"steps":[{"error":"payment_required"}]}'
script gemini '{"steps":[{"error":"quota_exhausted"}]}'
script groq '{"steps":[{"status":429,"body":"{\"error\":{\"message\":\"Rate limit reached for model `llama-3.1-8b-instant` on requests per minute (RPM): Limit 30, Used 30, Requested 1. Please try again in 2s.\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}","headers":{"retry-after":"2"}}]}'
{
        for p in anthropic cohere gemini; do chat "c-$p" "$p" mistral; done
        chat r-groq groq fireworks
} | submit
finished c- 3
finished r- 2

# ---- phase C: groq hangs, then answers too late ---------------------------
script groq '{"steps":[{"hang":true},{"latency_ms":5000},{"hang":true}]}'
groq_before=$(reqs groq)
chat t-groq groq fireworks | submit
finished t- 1 20
finished z- 1

# ---- case 1: 429 with a retry hint ----------------------------------------
log "case 1: 429 with a retry hint"
assert_eq "r-groq attempts" "groq:429:retry_later,groq:200:success" "$(trail r-groq)"
assert_eq "r-groq served by groq" succeeded/groq/-/- "$(job r-groq)"
gap=$(gap_ms r-groq)
[ "$gap" -ge 2000 ] || fail "r-groq: retried ${gap} ms after the first call, before Retry-After: 2"
[ "$gap" -lt 4000 ] || fail "r-groq: retried ${gap} ms after the first call, long after Retry-After: 2"
log "ok: r-groq retried ${gap} ms after its first call (Retry-After: 2)"
assert_eq "r-gemini attempts" "gemini:429:retry_later,gemini:200:success" "$(trail r-gemini)"
assert_eq "r-gemini served by gemini" succeeded/gemini/-/- "$(job r-gemini)"
gap=$(gap_ms r-gemini)
[ "$gap" -ge 1000 ] || fail "r-gemini: retried ${gap} ms after the first call, before retryDelay 1s"
[ "$gap" -lt 3000 ] || fail "r-gemini: retried ${gap} ms after the first call, long after retryDelay 1s"
log "ok: r-gemini retried ${gap} ms after its first call (retryDelay 1s)"

# ---- case 2: 429 meaning "no credit" --------------------------------------
log "case 2: 429 insufficient_quota / credit_balance_exhausted"
assert_eq "q-openai attempts" "openai:429:quota_exhausted,perplexity:200:success" "$(trail q-openai)"
assert_eq "q-openai served by perplexity" succeeded/perplexity/-/- "$(job q-openai)"
qerr=$(sql "SELECT error FROM attempts WHERE job_id = 'q-openai' AND provider = 'openai'")
case "$qerr" in
*insufficient_quota*"exceeded your current quota"*) log "ok: q-openai's attempt error: $qerr" ;;
*) fail "q-openai: the quota attempt's error does not carry OpenAI's code and message: '$qerr'" ;;
esac
assert_eq "q-deepinfra attempts" "deepinfra:429:quota_exhausted,perplexity:200:success" "$(trail q-deepinfra)"
assert_eq "q-deepinfra served by perplexity" succeeded/perplexity/-/- "$(job q-deepinfra)"
assert_eq "no retry at a provider out of credit (fake: openai, deepinfra)" '1 {"429":1} 1 {"429":1}' \
        "$(reqs openai) $(by_status openai) $(reqs deepinfra) $(by_status deepinfra)"

# ---- case 3: balance exhausted, every family -------------------------------
log "case 3: balance exhausted in each family's words"
for ps in b-together:together:402 b-openrouter:openrouter:402 b-siliconflow:siliconflow:403 \
          b-zhipu:zhipu:429 b-dashscope:dashscope:400 b-kie-gemini-3-flash:kie-gemini-3-flash:402 \
          c-anthropic:anthropic:400 c-cohere:cohere:402 c-gemini:gemini:429; do
        IFS=: read -r j p s <<<"$ps"
        assert_eq "$j attempts" "$p:$s:quota_exhausted,mistral:200:success" "$(trail "$j")"
        assert_eq "$j job" succeeded/mistral/-/- "$(job "$j")"
done
for ps in kie-nano-banana:200 stability:402 replicate:402 hf-image:402; do
        p=${ps%%:*} s=${ps#*:}
        assert_eq "b-$p attempts" "$p:$s:quota_exhausted,openai-images:200:success" "$(trail "b-$p")"
        assert_eq "b-$p job" succeeded/openai-images/-/- "$(job "b-$p")"
done
assert_eq "b-elevenlabs attempts (a 401 quota_exceeded is not a bad key)" \
        "elevenlabs:401:quota_exhausted,openai-tts:200:success" "$(trail b-elevenlabs)"
if grep -q "key env:FAKE_KEY_T41_ELEVENLABS disabled" "$E2E_OUT/worker-a.log"; then
        fail "ElevenLabs' quota_exceeded 401 disabled the key"
fi
assert_eq "b-assemblyai attempts" "assemblyai:402:quota_exhausted,openai-stt:200:success" "$(trail b-assemblyai)"
assert_eq "b-gladia attempts" "gladia:402:quota_exhausted,openai-stt:200:success" "$(trail b-gladia)"
assert_eq "fake: one call per exhausted provider, no retry" \
        "together=1 openrouter=1 siliconflow=1 zhipu=1 dashscope=1 kie=2 stability=1 replicate=1 hf=1 elevenlabs=1 assemblyai=1 gladia=1" \
        "$(for p in together openrouter siliconflow zhipu dashscope kie stability replicate hf elevenlabs assemblyai gladia; do
                   printf '%s=%s ' "$p" "$(reqs "$p")"; done | sed 's/ $//')"
assert_eq "fake: kie answered the chat with HTTP 402 and createTask with HTTP 200 (code 402)" \
        '{"200":1,"402":1}' "$(by_status kie)"
assert_eq "fake: anthropic 3 x 529 then 1 x 400; cohere 3 x 503 then 1 x 402; gemini 429, 200, 429" \
        '{"400":1,"529":3} {"402":1,"503":3} {"200":1,"429":2}' \
        "$(by_status anthropic) $(by_status cohere) $(by_status gemini)"
assert_eq "fake: mistral served the 9 chat fallbacks" '9 {"200":9}' "$(reqs mistral) $(by_status mistral)"
assert_eq "the exhausted attempts' errors carry each provider's reason" "" \
        "$(sql "SELECT string_agg(job_id || ': ' || coalesce(error, 'NULL'), '; ') FROM attempts
                WHERE outcome = 'quota_exhausted' AND job_id !~ '^z-'
                  AND NOT coalesce(error, '') ~* '(credit|balance|quota|payment|funds|usage limit|insufficient|arrear|余额)'")"
assert_eq "one charge per job, at the provider that served it" "" \
        "$(sql "SELECT string_agg(j.job_id || ' ' || coalesce(l.price_snapshot->>'provider', 'none'), '; ')
                FROM jobs j LEFT JOIN credit_ledger l ON l.job_id = j.job_id AND l.entry_type = 'charge'
                WHERE j.job_id ~ '^[bcq]-' AND coalesce(l.price_snapshot->>'provider', 'none') IS DISTINCT FROM j.provider")"

# ---- case 4: a refused key in a two-key pool -------------------------------
log "case 4: 401 on the first key of a pool"
assert_eq "k-1 attempts (provider:key:status:outcome)" \
        "groq:env:FAKE_KEY_GROQ_A:401:key_disabled,groq:env:FAKE_KEY_GROQ_B:200:success" "$(ktrail k-1)"
assert_eq "k-1 served by groq" succeeded/groq/-/- "$(job k-1)"
assert_eq "k-1's refused attempt says why" 1 \
        "$(sql "SELECT count(*) FROM attempts WHERE job_id = 'k-1' AND outcome = 'key_disabled' AND error ILIKE '%invalid_api_key%'")"
assert_eq "k-2 goes straight to the good key" "groq:env:FAKE_KEY_GROQ_B:200:success" "$(ktrail k-2)"
assert_eq "groq's later jobs used key B only" "env:FAKE_KEY_GROQ_B" \
        "$(sql "SELECT string_agg(DISTINCT key_id, ',') FROM attempts WHERE provider = 'groq' AND job_id <> 'k-1'")"
assert_eq "the fake saw key A refused once, then only key B (8 groq calls)" \
        "groq-key-aaa…:false$(printf ',groq-key-bbb…:true%.0s' 1 2 3 4 5 6 7)" \
        "$(fake GET '/_fake/groq/requests?last=256' | jq -r '[.[] | "\(.key_id):\(.authorization_ok)"] | join(",")')"
grep -q "provider groq: key env:FAKE_KEY_GROQ_A disabled" "$E2E_OUT/worker-a.log" ||
        fail "the disabled key is not logged by its id"
if grep -q "key env:FAKE_KEY_GROQ_B disabled" "$E2E_OUT/worker-a.log"; then fail "key B was disabled"; fi
if grep -q "groq-key-" "$E2E_OUT/worker-a.log"; then fail "a key's value appeared in the worker log"; fi
assert_eq "no key value in the attempts" 0 \
        "$(sql "SELECT count(*) FROM attempts WHERE error LIKE '%groq-key-%' OR key_id LIKE '%groq-key-%'")"

# ---- case 5: overloaded x N --------------------------------------------------
log "case 5: overloaded, retried max_retries (2) times, then fallback"
assert_eq "o-anthropic attempts" \
        "anthropic:529:retry_later,anthropic:529:retry_later,anthropic:529:retry_later,llamaapi:200:success" \
        "$(trail o-anthropic)"
assert_eq "o-anthropic served by llamaapi" succeeded/llamaapi/-/- "$(job o-anthropic)"
assert_eq "o-cohere attempts" \
        "cohere:503:retry_later,cohere:503:retry_later,cohere:503:retry_later,llamaapi:200:success" \
        "$(trail o-cohere)"
assert_eq "o-cohere served by llamaapi" succeeded/llamaapi/-/- "$(job o-cohere)"
assert_eq "o-anthropic's attempts say overloaded" 3 \
        "$(sql "SELECT count(*) FROM attempts WHERE job_id = 'o-anthropic' AND error ILIKE '%overloaded%'")"

# ---- case 6: hang / latency beyond timeout_ms -------------------------------
log "case 6: hang / latency beyond timeout_ms=1000"
assert_eq "t-groq attempts" "groq:-:retry_later,groq:-:retry_later,groq:-:retry_later,fireworks:200:success" "$(trail t-groq)"
assert_eq "t-groq served by fireworks" succeeded/fireworks/-/- "$(job t-groq)"
assert_eq "each groq call ended at the 1 s timeout (latency_ms outside 950..1500)" "" \
        "$(sql "SELECT string_agg(latency_ms::text, ',') FROM attempts WHERE job_id = 't-groq' AND provider = 'groq' AND latency_ms NOT BETWEEN 950 AND 1500")"
assert_eq "the groq attempts say they timed out" "" \
        "$(sql "SELECT string_agg(coalesce(error, 'NULL'), '; ') FROM attempts WHERE job_id = 't-groq' AND provider = 'groq' AND coalesce(error, '') !~* 'time'")"
took=$(gap_ms t-groq)
[ "$took" -lt 6000 ] || fail "t-groq: fireworks was called ${took} ms after the first groq call (3 timeouts of 1 s: ~3.5 s)"
log "ok: t-groq reached fireworks ${took} ms after its first call"
took=$(sql "SELECT (extract(epoch FROM finished_at - started_at) * 1000)::int FROM jobs WHERE job_id = 't-groq'")
[ "$took" -lt 6000 ] || fail "t-groq: the job ran ${took} ms (started_at to finished_at)"
log "ok: t-groq ran ${took} ms in all"
assert_eq "fake: 3 more groq calls, none answered (dropped when the worker gave up)" \
        '3 {"200":3,"401":1,"429":1}' "$(( $(reqs groq) - groq_before )) $(by_status groq)"

# ---- case 7: every provider failing -----------------------------------------
log "case 7: every provider fails"
assert_eq "z-all trail, in order (attempt_no:provider:status:outcome)" \
        "1:hunyuan:500:retry_later,2:hunyuan:500:retry_later,3:hunyuan:500:retry_later,4:ai21:402:quota_exhausted,5:nvidia1:400:fallback_next" \
        "$(sql "SELECT string_agg(attempt_no || ':' || provider || ':' || coalesce(http_status::text, '-') || ':' || outcome, ',' ORDER BY attempt_id) FROM attempts WHERE job_id = 'z-all'")"
assert_eq "z-all attempts started in order" t \
        "$(sql "SELECT bool_and(ok) FROM (SELECT started_at >= lag(started_at, 1, started_at) OVER (ORDER BY attempt_id) AS ok FROM attempts WHERE job_id = 'z-all') s")"
assert_eq "z-all state and error class" failed/fallback_next \
        "$(sql "SELECT state || '/' || coalesce(error_class, '-') FROM jobs WHERE job_id = 'z-all'")"
zerr=$(sql "SELECT error FROM jobs WHERE job_id = 'z-all'")
case "$zerr" in
"every provider failed; last: nvidia1: "*context_length_exceeded*) log "ok: z-all error: $zerr" ;;
*) fail "z-all error does not name the last provider and its reason: '$zerr'" ;;
esac
assert_eq "z-all counted 5 calls" 5 "$(sql "SELECT attempts FROM jobs WHERE job_id = 'z-all'")"
assert_eq "z-all not charged" 0 "$(sql "SELECT count(*) FROM credit_ledger WHERE job_id = 'z-all'")"
assert_eq "fake: hunyuan 3 x 500, ai21 1 x 402, nvidia 1 x 400" '{"500":3} {"402":1} {"400":1}' \
        "$(by_status hunyuan) $(by_status ai21) $(by_status nvidia)"

# Leave no key state of this test behind in provider_key_state.
sql "DELETE FROM provider_key_state WHERE key_id LIKE 'env:FAKE_KEY\_T41\_%' OR key_id LIKE 'env:FAKE_KEY_GROQ\__'" \
        >/dev/null 2>&1 || true
