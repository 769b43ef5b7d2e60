#!/usr/bin/env bash
# Bad input is dead-lettered with its reason and origin, loses nothing,
# and the worker keeps going: undecodable bytes, a job whose payload does
# not match its kind, and a chat job on the image topic.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
start_worker a
printf 'not a protobuf \xff\xfe' |
        "$BIN/genq" produce-raw --topic "$PREFIX.chat" --key junk-1 ||
        fail "produce-raw failed"
echo '{"job_id":"mismatch-1","tenant_id":"acme","kind":"chat","image":{"prompt":"a cat"}}' |
        "$BIN/genq" submit --unchecked -f - >/dev/null || fail "unchecked submit failed"
# A valid chat job, produced by hand onto the image topic.
echo '{"job_id":"wrong-topic-1","tenant_id":"acme","chat":{"prompt":"hi"}}' |
        "$BIN/genq" encode | "$BIN/genq" produce-raw --topic "$PREFIX.image" \
        --key wrong-topic-1 || fail "wrong-topic produce failed"
"$BIN/genq" submit --job-id good-after-1 --tenant acme --prompt "still working?" >/dev/null ||
        fail "good submit failed"
wait_for "good job after the bad ones" 30 sql_is \
        "SELECT state FROM jobs WHERE job_id='good-after-1'" succeeded

wait_for "wrong-topic job recorded" 30 sql_is \
        "SELECT state FROM jobs WHERE job_id='wrong-topic-1'" rejected
tail_topic "$PREFIX.dlq" 3 20 >"$E2E_OUT/dlq.jsonl"
assert_eq "DLQ messages" 3 "$(wc -l <"$E2E_OUT/dlq.jsonl")"
grep -q '"genq.reason":"a chat job on the image topic"' "$E2E_OUT/dlq.jsonl" ||
        fail "wrong-topic reason missing"
grep -q '"genq.reason_code":"decode"' "$E2E_OUT/dlq.jsonl" || fail "no decode reason in DLQ"
grep -q '"key":"junk-1"' "$E2E_OUT/dlq.jsonl" || fail "original key not kept"
grep -q "\"genq.origin.topic\":\"$PREFIX.chat\"" "$E2E_OUT/dlq.jsonl" || fail "origin topic missing"
grep -q '"genq.reason_code":"kind_mismatch"' "$E2E_OUT/dlq.jsonl" || fail "no kind_mismatch in DLQ"
grep -q '"genq.reason":"kind is chat but the payload is image"' "$E2E_OUT/dlq.jsonl" ||
        fail "reason text missing"
grep -q '"genq.job_id":"mismatch-1"' "$E2E_OUT/dlq.jsonl" || fail "job id header missing"
# The row is written after the DLQ acknowledges the message: wait for it.
wait_for "mismatch-1 recorded" 30 sql_is \
        "SELECT state FROM jobs WHERE job_id='mismatch-1'" rejected
assert_eq "rejected row for the readable job" "rejected|kind_mismatch: kind is chat but the payload is image" \
        "$(sql "SELECT state || '|' || error FROM jobs WHERE job_id='mismatch-1'")"
assert_eq "worker still alive" 0 "$(kill -0 "$WORKER_a" 2>/dev/null; echo $?)"
