#!/usr/bin/env bash
# Bad input gets a clear error and never a crash: a bad config line names
# file, line and key; a bad CLI argument prints usage; bad JSONL lines are
# named file:line while the good ones are still delivered.
. "$(dirname "$0")/lib.sh"
make_config
cfg="$E2E_OUT/bad.yaml"
printf 'kafka:\n  brokers: 127.0.0.1:19092\nworker:\n  max_inflight: lots\n' >"$cfg"
out=$("$BIN/genq-worker" -c "$cfg" --check-config 2>&1) && fail "bad config accepted"
assert_eq "config error" "genq-worker: $cfg:4: worker.max_inflight: \"lots\" is not a whole number within 1..100000" "$out"
printf 'worker:\n  max_infligt: 5\n' >"$cfg"
out=$("$BIN/genq-worker" -c "$cfg" --check-config 2>&1) && fail "typo accepted"
assert_eq "unknown key" "genq-worker: $cfg:2: unknown key \"worker.max_infligt\"" "$out"
printf 'worker: [\n' >"$cfg"
out=$("$BIN/genq-worker" -c "$cfg" --check-config 2>&1) && fail "broken YAML accepted"
case "$out" in "genq-worker: $cfg:2: "*) log "ok: $out" ;;
*) fail "YAML syntax error without file:line: $out" ;; esac
rc=0; "$BIN/genq-worker" --frobnicate >/dev/null 2>"$E2E_OUT/usage.txt" || rc=$?
assert_eq "bad worker argument exit code" 2 "$rc"
grep -q "^usage: genq-worker" "$E2E_OUT/usage.txt" || fail "no usage printed"
rc=0; "$BIN/genq" submit --frobnicate >/dev/null 2>"$E2E_OUT/usage2.txt" || rc=$?
assert_eq "bad submit argument exit code" 2 "$rc"
grep -qi "usage" "$E2E_OUT/usage2.txt" || fail "no submit usage printed"

reset_db
start_worker a
{
        echo '{"job_id":"ok-1","tenant_id":"acme","chat":{"prompt":"one"}}'
        echo '{"job_id":"bad-2","tenant_id":"acme","chat":{"messages":[]}}'
        echo 'this is not json'
        echo '{"job_id":"bad-4","tenant_id":"acme","chat":{"prompt":"x"},"colour":"red"}'
        echo '{"job_id":"ok-5","tenant_id":"acme","chat":{"prompt":"five"}}'
} >"$E2E_OUT/mixed.jsonl"
rc=0; "$BIN/genq" submit -f "$E2E_OUT/mixed.jsonl" 2>"$E2E_OUT/submit.err" >/dev/null || rc=$?
assert_eq "submit exit code with bad lines" 1 "$rc"
grep -q "^$E2E_OUT/mixed.jsonl:2: " "$E2E_OUT/submit.err" || fail "line 2 not named"
grep -q "^$E2E_OUT/mixed.jsonl:3: " "$E2E_OUT/submit.err" || fail "line 3 not named"
grep -q "^$E2E_OUT/mixed.jsonl:4: .*colour" "$E2E_OUT/submit.err" || fail "line 4 not named with its key"
wait_for "good lines delivered and run" 30 sql_is \
        "SELECT count(*) FROM jobs WHERE state='succeeded' AND job_id IN ('ok-1','ok-5')" 2
assert_eq "bad lines never produced" 0 "$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'bad-%'")"
