#!/usr/bin/env bash
# Every async provider's lifecycle to failure, through the real adapters
# and fakes: a task failed for its input ([fail:422:...]) fails the job
# with no fallback (fatal_job) or, where the provider gives no reason
# (Zhipu), falls back; a task that never finishes times out, the job
# falls back down its route, and a job whose every task times out fails
# with each task on record and its hold refunded once.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
fast=()
for p in kie-sora-2 kie-nano-banana sf-video zhipu-video replicate assemblyai gladia; do
        fast+=(-X "providers.$p.poll_ms=100" -X "providers.$p.poll_max_ms=200")
done
start_worker a "${fast[@]}" -X providers.kie-sora-2.task_timeout_s=2 \
        -X providers.sf-video.task_timeout_s=2 -X providers.zhipu-video.task_timeout_s=2
bad='[fail:422:content policy violation]'
# AssemblyAI's input errors are about the audio (reference 9.2).
audio="http://127.0.0.1:$FAKE_PORT/_fake/media/tone-3s.wav?x=[fail:400:Download error, unable to download]"
{
        printf '{"job_id":"f-kie-video","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"x %s","duration_s":10}}\n' "$bad"
        printf '{"job_id":"f-kie-image","tenant_id":"t","providers":["kie-nano-banana"],"image":{"prompt":"x %s"}}\n' "$bad"
        printf '{"job_id":"f-sf-video","tenant_id":"t","providers":["sf-video"],"video":{"prompt":"x %s","duration_s":10}}\n' "$bad"
        printf '{"job_id":"f-zhipu","tenant_id":"t","providers":["zhipu-video"],"video":{"prompt":"x %s","duration_s":10}}\n' "$bad"
        printf '{"job_id":"f-replicate","tenant_id":"t","providers":["replicate"],"image":{"prompt":"x %s"}}\n' "$bad"
        printf '{"job_id":"f-assemblyai","tenant_id":"t","providers":["assemblyai"],"stt":{"audio_url":"%s"}}\n' "$audio"
        printf '{"job_id":"f-gladia","tenant_id":"t","providers":["gladia"],"stt":{"audio_url":"%s"}}\n' "$audio"
        echo '{"job_id":"never","tenant_id":"t","video":{"prompt":"an endless take [never]","duration_s":10}}'
} | "$BIN/genq" submit -f - >/dev/null || fail "submit failed"
wait_for "8 finished" 90 sql_is "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL" 8
outcome() { sql "SELECT state || ':' || coalesce(error_class, '') FROM jobs WHERE job_id = '$1'"; }
for j in f-kie-video f-kie-image f-sf-video f-replicate f-assemblyai f-gladia; do
        assert_eq "$j" "failed:fatal_job" "$(outcome $j)"
        assert_eq "$j task failed" failed "$(sql "SELECT string_agg(state, ',') FROM tasks WHERE job_id = '$j'")"
done
# Zhipu's FAIL carries no reason: fallback_next (its only provider).
assert_eq f-zhipu "failed:fallback_next" "$(outcome f-zhipu)"
# The never-ending task: timed out at each video provider in turn.
assert_eq "never" "failed:fallback_next" "$(outcome never)"
assert_eq "never: each provider's task timed out" "kie-sora-2:timed_out,sf-video:timed_out,zhipu-video:timed_out" \
        "$(sql "SELECT string_agg(provider || ':' || state, ',' ORDER BY task_id) FROM tasks WHERE job_id = 'never'")"
assert_eq "never: hold refunded once" "charge,refund" \
        "$(sql "SELECT string_agg(entry_type, ',' ORDER BY entry_id) FROM credit_ledger WHERE job_id = 'never'")"
sql "SELECT error FROM jobs WHERE job_id = 'never'" | grep -q "did not finish within 2 s" ||
        fail "never: error does not say it timed out: $(sql "SELECT error FROM jobs WHERE job_id = 'never'")"
