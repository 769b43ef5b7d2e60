#!/usr/bin/env bash
# Completion hooks: a job with a callback_url gets its completion event
# POSTed there as JSON, signed with the hook secret (X-Genq-Signature:
# t=..,v1=HMAC-SHA256(secret, "t.body")), retried with backoff while the
# receiver answers 500, each delivery recorded in hook_deliveries.  A URL
# at a private address outside worker.media_allow_private is refused and
# recorded, never reached; a job whose callback_url is not http(s) goes to
# the DLQ with its reason.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
export GENQ_HOOK_SECRET="e2e-hook-secret-$$"
python3 "$ROOT/tests/tools/hookrecv.py" --port-file "$E2E_OUT/port" \
        --out "$E2E_OUT/hooks.jsonl" --fail-first 2 &
RECV=$!
trap 'rc=$?; kill $RECV 2>/dev/null; stop_workers; exit $rc' EXIT
wait_for "receiver up" 10 test -s "$E2E_OUT/port"
PORT=$(cat "$E2E_OUT/port")
start_worker a -X hooks.max_tries=4
# --unchecked: h-bad reaches Kafka, so the worker's validation is tested.
cat <<JSON | "$BIN/genq" submit --unchecked -f - >/dev/null
{"job_id":"h-ok","tenant_id":"t","providers":["groq"],"callback_url":"http://127.0.0.1:$PORT/hooks/genq","metadata":{"batch":"b7"},"chat":{"messages":[{"role":"user","content":"Say hello"}]}}
{"job_id":"h-private","tenant_id":"t","providers":["groq"],"callback_url":"http://10.255.255.1:9/x","chat":{"messages":[{"role":"user","content":"Say hello"}]}}
{"job_id":"h-bad","tenant_id":"t","providers":["groq"],"callback_url":"ftp://example.com/x","chat":{"messages":[{"role":"user","content":"Say hello"}]}}
JSON
wait_for "h-ok delivered" 30 sql_is "SELECT count(*) FROM hook_deliveries WHERE job_id = 'h-ok' AND delivered" 1
assert_eq "h-ok deliveries (2 refused, 1 taken)" "1:500:false,2:500:false,3:200:true" \
        "$(sql "SELECT string_agg(attempt || ':' || coalesce(http_status, 0) || ':' || delivered, ',' ORDER BY attempt) FROM hook_deliveries WHERE job_id = 'h-ok'")"
assert_eq "receiver saw 3 POSTs" 3 "$(wc -l <"$E2E_OUT/hooks.jsonl")"
# The last POST: signature valid for the body, body = the job's outcome.
credits=$(sql "SELECT coalesce(sum(credits), 0) FROM credit_ledger WHERE job_id = 'h-ok'")
python3 - "$E2E_OUT/hooks.jsonl" "$GENQ_HOOK_SECRET" "$credits" <<'PY' || fail "hook body or signature"
import hashlib, hmac, json, sys
from decimal import Decimal
lines = [json.loads(l) for l in open(sys.argv[1])]
last = lines[-1]
h = {k.lower(): v for k, v in last["headers"].items()}
t, v1 = (p.split("=", 1)[1] for p in h["x-genq-signature"].split(","))
want = hmac.new(sys.argv[2].encode(), (t + "." + last["body"]).encode(), hashlib.sha256).hexdigest()
assert hmac.compare_digest(want, v1), "bad signature"
assert h["content-type"] == "application/json"
assert h["x-genq-job-id"] == "h-ok"
assert last["path"] == "/hooks/genq"
b = json.loads(last["body"])
assert b["job_id"] == "h-ok" and b["state"] == "succeeded", b
assert b["tenant_id"] == "t" and b["kind"] == "chat" and b["provider"] == "groq", b
assert b["metadata"] == {"batch": "b7"}, b
assert Decimal(b["credits"]) == Decimal(sys.argv[3]) and Decimal(b["credits"]) > 0, b
assert b["result_ref"] == "postgres:results/h-ok", b
# Every attempt carried the same event; each signature checks out.
for l in lines:
    hh = {k.lower(): v for k, v in l["headers"].items()}
    tt, vv = (p.split("=", 1)[1] for p in hh["x-genq-signature"].split(","))
    assert hmac.compare_digest(hmac.new(sys.argv[2].encode(), (tt + "." + l["body"]).encode(), hashlib.sha256).hexdigest(), vv)
    assert json.loads(l["body"])["job_id"] == "h-ok"
PY
# Attempts spaced by the backoff (1 s, then 2 s), not fired at once.
gap=$(sql "SELECT round(extract(epoch FROM max(at) - min(at))) FROM hook_deliveries WHERE job_id = 'h-ok'")
[ "$gap" -ge 2 ] || fail "deliveries not spaced by backoff (${gap}s)"
wait_for "h-private given up" 30 sql_is "SELECT count(*) FROM hook_deliveries WHERE job_id = 'h-private'" 4
assert_eq "h-private never delivered" 0 \
        "$(sql "SELECT count(*) FROM hook_deliveries WHERE job_id = 'h-private' AND delivered")"
assert_eq "h-private job itself succeeded" succeeded "$(sql "SELECT state FROM jobs WHERE job_id = 'h-private'")"
grep -q "private address" "$E2E_OUT/worker-a.log" || fail "private hook address not refused"
assert_eq "h-bad not run" 0 "$(sql "SELECT count(*) FROM jobs WHERE job_id = 'h-bad' AND state = 'succeeded'")"
tail_topic "$PREFIX.dlq" 1 >"$E2E_OUT/dlq.jsonl"
grep -q "callback_url must be an http(s) URL" "$E2E_OUT/dlq.jsonl" || fail "h-bad reason not in the DLQ"
assert_eq "receiver saw nothing else" 3 "$(wc -l <"$E2E_OUT/hooks.jsonl")"
