#!/usr/bin/env bash
# SIGTERM drains: the worker stops taking jobs, lets in-flight calls
# finish, writes them, commits offsets and exits 0; nothing is lost or
# run twice, and a second worker picks up what was never started.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
fake POST /_fake/groq/config '{"latency_ms":1500}' >/dev/null
start_worker a
gen_chat 200 drain 1 >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "calls in flight" 30 sh -c \
        "curl -sf http://127.0.0.1:$FAKE_PORT/_fake/groq/stats | grep -Eq '\"inflight\":[1-9]'"
kill -TERM "$WORKER_a"
rc=0; wait "$WORKER_a" || rc=$?
WORKER_PIDS=()
assert_eq "worker exit code" 0 "$rc"
grep -q "draining" "$E2E_OUT/worker-a.log" || fail "no drain logged"
assert_eq "nothing left running" 0 "$(sql "SELECT count(*) FROM jobs WHERE state='running'")"
done1=$(sql "SELECT count(*) FROM jobs WHERE state='succeeded'")
[ "$done1" -gt 0 ] || fail "no job finished during the drain"
log "ok: $done1 job(s) finished during the drain"
fake POST /_fake/groq/config '{"latency_ms":0}' >/dev/null
start_worker b
wait_for "all 200 done" 60 sql_is "SELECT count(*) FROM jobs WHERE state='succeeded'" 200
assert_eq "charges" 200 "$(sql "SELECT count(*) FROM credit_ledger")"
assert_eq "no job ran twice" 1 "$(sql "SELECT max(runs) FROM jobs")"
assert_eq "one success attempt per job" 200 "$(sql "SELECT count(*) FROM attempts WHERE outcome='success'")"
