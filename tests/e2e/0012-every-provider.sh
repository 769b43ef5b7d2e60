#!/usr/bin/env bash
# Every enabled provider of the shipped config, once, end to end: a job of
# its kind pinned to it goes through Kafka, the worker, the real adapter
# and the fake provider, and finishes with its result and usage stored and
# one charge at the provider's price (units x unit price, or tokens).
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
start_worker a
audio="http://127.0.0.1:$FAKE_PORT/_fake/media/tone-3s.wav"
payload() { # kind provider
        case "$1" in
        chat) echo '"chat":{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello from the matrix"}],"max_tokens":64}' ;;
        image) case "$2" in
               *edit*) echo '"image":{"prompt":"make it blue","input_image_urls":["https://example.com/in.png"]}' ;;
               *) echo '"image":{"prompt":"a red fox in snow","count":1,"size":"1024x1024","aspect_ratio":"1:1"}' ;;
               esac ;;
        video) case "$2" in
               *storyboard*) echo '"video":{"scenes":[{"prompt":"a kitten","duration_s":5},{"prompt":"it sleeps","duration_s":5}],"aspect_ratio":"16:9"}' ;;
               *) echo '"video":{"prompt":"a paper boat on a rainy street","duration_s":10,"aspect_ratio":"16:9"}' ;;
               esac ;;
        stt) echo "\"stt\":{\"audio_url\":\"$audio\",\"language\":\"en\"}" ;;
        tts) echo '"tts":{"text":"Hello there from genq","format":"mp3"}' ;;
        esac
}
# provider<TAB>kind for every enabled, non-retired provider.
"$BIN/genq-worker" --check-config >/dev/null 2>&1 || fail "config does not load"
list=$(awk '
        /^providers:/ {in_p = 1; next}
        /^routes:/ {in_p = 0}
        in_p && /^  [a-z0-9-]+:$/ {name = $1; sub(":", "", name)}
        in_p && /^    adapter:/ {print name "\t" $2}' "$ROOT/config/genq.yaml")
n=0
: >"$E2E_OUT/jobs.jsonl"
while IFS=$'\t' read -r prov adapter; do
        case "$adapter" in
        openai_chat|anthropic_messages|gemini_generate|cohere_chat) kind=chat ;;
        openai_images|siliconflow_images|stability_image|replicate|hf_image|kie_image) kind=image ;;
        kie_video|siliconflow_video|zhipu_video) kind=video ;;
        openai_transcriptions|assemblyai|gladia|hf_whisper) kind=stt ;;
        openai_speech|elevenlabs) kind=tts ;;
        *) fail "adapter $adapter of $prov has no kind in this test" ;;
        esac
        printf '{"job_id":"m-%s","tenant_id":"matrix","providers":["%s"],%s}\n' \
                "$prov" "$prov" "$(payload "$kind" "$prov")" >>"$E2E_OUT/jobs.jsonl"
        n=$((n + 1))
done <<<"$list"
log "submitting $n jobs, one per provider"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "all $n finished" 120 sql_is "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL" "$n"
bad=$(sql "SELECT string_agg(job_id || ' ' || coalesce(error, ''), E'\n') FROM jobs WHERE state <> 'succeeded'")
[ -z "$bad" ] || fail "jobs that did not succeed:
$bad"
assert_eq "one result each" "$n" "$(sql "SELECT count(*) FROM results")"
assert_eq "served by the pinned provider" 0 \
        "$(sql "SELECT count(*) FROM jobs WHERE 'm-' || provider <> job_id")"
# Usage in each kind's natural unit.
assert_eq "chat results carry tokens" 0 \
        "$(sql "SELECT count(*) FROM results r JOIN jobs j USING (job_id) WHERE j.kind = 'chat' AND (r.input_tokens IS NULL OR r.input_tokens <= 0 OR r.output_tokens IS NULL OR r.text_content IS NULL)")"
for kind_unit in image:image video:second tts:character; do
        k=${kind_unit%%:*} u=${kind_unit#*:}
        assert_eq "$k results in ${u}s" 0 \
                "$(sql "SELECT count(*) FROM results r JOIN jobs j USING (job_id) WHERE j.kind = '$k' AND (r.unit <> '$u' OR r.units IS NULL OR r.units <= 0)")"
done
assert_eq "stt results: 3 seconds of audio, a transcript" 0 \
        "$(sql "SELECT count(*) FROM results r JOIN jobs j USING (job_id) WHERE j.kind = 'stt' AND (r.unit <> 'second' OR r.units <> 3 OR coalesce(r.text_content, '') = '')")"
assert_eq "images and videos have media" 0 \
        "$(sql "SELECT count(*) FROM results r JOIN jobs j USING (job_id) WHERE j.kind IN ('image', 'video') AND cardinality(r.urls) = 0 AND r.data IS NULL")"
assert_eq "tts results hold audio" 0 \
        "$(sql "SELECT count(*) FROM results r JOIN jobs j USING (job_id) WHERE j.kind = 'tts' AND (r.data IS NULL OR r.content_type NOT LIKE 'audio/%')")"
assert_eq "tts billed per character of the text" "21" \
        "$(sql "SELECT DISTINCT units::int FROM results r JOIN jobs j USING (job_id) WHERE j.kind = 'tts'")"
# Charges: one per job, at units x the snapshot's unit price (tokens for chat).
assert_eq "one charge per job" "$n" "$(sql "SELECT count(*) FROM credit_ledger WHERE entry_type = 'charge'")"
assert_eq "unit charges equal units x price" 0 \
        "$(sql "SELECT count(*) FROM credit_ledger WHERE unit <> 'tokens' AND credits <> round(units * (price_snapshot->>'unit_credits')::numeric, 6)")"
# Async providers: the task was recorded and polled to the end.
assert_eq "async tasks recorded and finished" 0 \
        "$(sql "SELECT count(*) FROM tasks WHERE state <> 'succeeded' OR polls < 1")"
[ "$(sql "SELECT count(*) FROM tasks")" -ge 8 ] || fail "fewer async tasks than async providers"
