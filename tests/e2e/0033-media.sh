#!/usr/bin/env bash
# Result media is downloaded right after success (provider URLs expire)
# into the artifact store, with size, SHA-256 and content type recorded;
# an expired result URL fails the job and refunds its hold once; media
# from a private address outside the allowlist is refused.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
store="$E2E_OUT/artifacts"
start_worker a -X worker.artifact_dir="$store" \
        -X providers.kie-sora-2.poll_ms=100 -X providers.kie-sora-2.poll_max_ms=200
{
        echo '{"job_id":"m-video","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"waves","duration_s":10}}'
        echo '{"job_id":"m-image","tenant_id":"t","providers":["sf-images"],"image":{"prompt":"a fox","count":2}}'
} | "$BIN/genq" submit -f - >/dev/null || fail "submit failed"
wait_for "both done" 60 sql_is "SELECT count(*) FROM jobs WHERE state = 'succeeded'" 2
assert_eq "artifacts" "m-image:0:4096:image/png,m-image:1:4096:image/png,m-video:0:65536:video/mp4" \
        "$(sql "SELECT string_agg(job_id || ':' || n || ':' || bytes || ':' || content_type, ',' ORDER BY job_id, n) FROM artifacts")"
while IFS='|' read -r url path sha; do
        [ -f "$path" ] || fail "artifact file $path missing"
        assert_eq "stored file equals the provider's media" "$(curl -sf "$url" | sha256sum | cut -d' ' -f1)" "$sha"
        assert_eq "recorded sha256 is the file's" "$(sha256sum <"$path" | cut -d' ' -f1)" "$sha"
done < <(sql "SELECT url || '|' || path || '|' || sha256 FROM artifacts")
# An expired result URL: the video was made and held, then its media is
# gone: the job fails and its hold is refunded, once.
fake POST /_fake/media/config '{"fail_status":404,"count":1000}' >/dev/null
echo '{"job_id":"m-expired","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"gone","duration_s":10}}' |
        "$BIN/genq" submit -f - >/dev/null
wait_for "m-expired done" 60 sql_is "SELECT state FROM jobs WHERE job_id = 'm-expired'" failed
assert_eq "m-expired class" media "$(sql "SELECT error_class FROM jobs WHERE job_id = 'm-expired'")"
assert_eq "m-expired ledger" "charge:40.000000,refund:40.000000" \
        "$(sql "SELECT string_agg(entry_type || ':' || credits, ',' ORDER BY entry_id) FROM credit_ledger WHERE job_id = 'm-expired'")"
assert_eq "no partial files left" "" "$(ls "$store" | grep '\.part$' || true)"
fake POST /_fake/media/config '{"count":0}' >/dev/null
stop_workers
# Without the allowlist, loopback media is refused (no downloads from
# internal addresses): the job fails, its hold refunded.
start_worker b -X worker.artifact_dir="$store" -X worker.media_allow_private= \
        -X providers.kie-sora-2.poll_ms=100
echo '{"job_id":"m-private","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"inside","duration_s":10}}' |
        "$BIN/genq" submit -f - >/dev/null
wait_for "m-private done" 60 sql_is "SELECT state FROM jobs WHERE job_id = 'm-private'" failed
grep -q "private address refused" "$E2E_OUT/worker-b.log" || fail "refusal not logged"
assert_eq "m-private net" "0.000000" "$(sql "SELECT sum(CASE entry_type WHEN 'refund' THEN -credits ELSE credits END) FROM credit_ledger WHERE job_id = 'm-private'")"
