#!/usr/bin/env bash
# Provider callbacks: with callbacks.public_url set, KIE gets a callBackUrl,
# Replicate a webhook and AssemblyAI a webhook_url carrying a per-job
# token.  The worker's receiver verifies the token, stores the callback,
# and the worker holding the job applies it with the same transition as a
# poll (AssemblyAI's id+status callback makes it poll at once), so a task
# finishes long before its first poll is due.  Forged tokens get 401 and
# change nothing.  A callback racing polls for the same task settles it
# once: one task end, one charge, one event.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
export GENQ_CALLBACK_SECRET="e2e-cb-secret-$$"
CBPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cb=(-X "callbacks.listen=127.0.0.1:$CBPORT" -X "callbacks.public_url=http://127.0.0.1:$CBPORT")
slow=()
for p in kie-sora-2 replicate assemblyai; do
        slow+=(-X "providers.$p.poll_ms=60000" -X "providers.$p.poll_max_ms=60000")
done
start_worker a "${cb[@]}" "${slow[@]}"
wait_for "receiver up" 20 curl -sf "http://127.0.0.1:$CBPORT/healthz"
audio="http://127.0.0.1:$FAKE_PORT/_fake/media/tone-2s.wav?x=[after:400]"
{
        echo '{"job_id":"cb-kie","tenant_id":"t","providers":["kie-sora-2"],"video":{"prompt":"a fox [after:400]","duration_s":10}}'
        echo '{"job_id":"cb-rep","tenant_id":"t","providers":["replicate"],"image":{"prompt":"a fox [after:400]"}}'
        printf '{"job_id":"cb-aai","tenant_id":"t","providers":["assemblyai"],"stt":{"audio_url":"%s"}}\n' "$audio"
} | "$BIN/genq" submit -f - >/dev/null
# The first poll is 60 s away: only the callbacks can finish these now.
wait_for "3 finished by callback" 20 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'cb-%' AND state = 'succeeded'" 3
for p in kie replicate assemblyai; do
        fake GET "/_fake/$p/callbacks" >"$E2E_OUT/cb-$p.json"
        python3 - "$E2E_OUT/cb-$p.json" "$CBPORT" <<'PY' || fail "$p callback record"
import json, sys
cbs = json.load(open(sys.argv[1]))
assert len(cbs) == 1, cbs
assert cbs[0]["status"] == 200, cbs
assert cbs[0]["url"].startswith("http://127.0.0.1:%s/cb/" % sys.argv[2]), cbs
PY
done
polls() { fake GET "/_fake/$1/tasks" | python3 -c 'import json,sys; print(sum(t["polls"] for t in json.load(sys.stdin)))'; }
assert_eq "kie: no poll needed" 0 "$(polls kie)"
assert_eq "replicate: no poll needed" 0 "$(polls replicate)"
assert_eq "assemblyai: one poll, made at the callback" 1 "$(polls assemblyai)"
assert_eq "tasks ended succeeded" "succeeded,succeeded,succeeded" \
        "$(sql "SELECT string_agg(state, ',') FROM tasks WHERE job_id LIKE 'cb-%'")"
assert_eq "kie media stored" 1 "$(sql "SELECT count(*) FROM artifacts WHERE job_id = 'cb-kie'")"
assert_eq "callbacks consumed" 0 "$(sql "SELECT count(*) FROM task_callbacks")"
grep -q "callback from kie-sora-2 for task .* applied" "$E2E_OUT/worker-a.log" || fail "no 'callback applied' line"
# Forged and unknown: 401 for a wrong token, 404 for a job that is not there.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "http://127.0.0.1:$CBPORT/cb/kie-sora-2/cb-kie/00000000000000000000000000000000")
assert_eq "forged token" 401 "$code"
tok=$(python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), b"kie-sora-2|nope", hashlib.sha256).hexdigest()[:32])' "$GENQ_CALLBACK_SECRET")
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "http://127.0.0.1:$CBPORT/cb/kie-sora-2/nope/$tok")
assert_eq "valid token, no such job" 404 "$code"
assert_eq "nothing stored" 0 "$(sql "SELECT count(*) FROM task_callbacks")"
stop_workers
fake_reset

# The race: polls every 100 ms while each task ends (and calls back) at
# 600 ms; 30 jobs so polls and callbacks land together many times.
start_worker b "${cb[@]}" -X providers.kie-sora-2.poll_ms=100 -X providers.kie-sora-2.poll_max_ms=100
wait_for "receiver up again" 20 curl -sf "http://127.0.0.1:$CBPORT/healthz"
for i in $(seq -w 1 30); do
        echo "{\"job_id\":\"race-$i\",\"tenant_id\":\"t\",\"providers\":[\"kie-sora-2\"],\"video\":{\"prompt\":\"take $i [after:600]\",\"duration_s\":10}}"
done | "$BIN/genq" submit -f - >/dev/null
wait_for "30 raced jobs finished" 60 sql_is "SELECT count(*) FROM jobs WHERE job_id LIKE 'race-%' AND state = 'succeeded'" 30
sleep 1 # let late callbacks arrive and be ignored
assert_eq "one task per job, each succeeded once" "30:30" \
        "$(sql "SELECT count(DISTINCT job_id) || ':' || count(*) FROM tasks WHERE job_id LIKE 'race-%' AND state = 'succeeded'")"
assert_eq "no refunds" 0 "$(sql "SELECT count(*) FROM credit_ledger WHERE job_id LIKE 'race-%' AND entry_type = 'refund'")"
assert_eq "one charge per job" 30 "$(sql "SELECT count(*) FROM credit_ledger WHERE job_id LIKE 'race-%' AND entry_type = 'charge'")"
assert_eq "one success attempt per job" 30 "$(sql "SELECT count(*) FROM attempts WHERE job_id LIKE 'race-%' AND outcome = 'success'")"
tail_topic "$PREFIX.events" 100 5 >"$E2E_OUT/events.jsonl" || true
assert_eq "one event per raced job" 30 "$(grep -c '"race-' "$E2E_OUT/events.jsonl")"
assert_eq "every task called back" 30 "$(fake GET /_fake/kie/callbacks | python3 -c 'import json,sys; print(len({c["task_id"] for c in json.load(sys.stdin) if c["status"] == 200}))')"
