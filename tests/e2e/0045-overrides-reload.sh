#!/usr/bin/env bash
# Operators steer running workers, and every worker of the group obeys:
#   1. `genq provider disable` / `enable`: two workers skip a disabled
#      provider within a policy poll (policy.state_interval_ms, 2 s), each
#      job's skip explained in its attempts, and the fake never called;
#   2. `genq provider priority` reorders a priority route on both workers;
#      `--clear` restores the configured order; pinned lists keep theirs;
#   3. a key disabled after a 401 on one worker (provider_key_state) is
#      skipped by the other one too; `genq provider enable --key` brings
#      it back everywhere;
#   4. SIGHUP re-reads the configuration files: a route change applies to
#      new jobs while 300 jobs run on (none lost); a broken file or one
#      that adds a provider is refused and the old configuration serves on.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
G="$BIN/genq"

# Route "ops" for every process (workers and the genq CLI).
cat >"$E2E_OUT/extra.yaml" <<'EOF'
routes:
  chat:
    ops: [openai, mistral]
EOF
BASE_CONFIG="$GENQ_CONFIG:$E2E_OUT/extra.yaml"
export GENQ_CONFIG="$BASE_CONFIG"

# A two-key pool on groq: key A is the fake's default groq key, key B one
# the fake learns below.
export FAKE_KEY_T45_A=fake-key-groq FAKE_KEY_T45_B=fake-key-groq-b-only
KA=env:FAKE_KEY_T45_A KB=env:FAKE_KEY_T45_B
fake POST /_fake/groq/config '{"keys":["fake-key-groq","fake-key-groq-b-only"]}' >/dev/null ||
        fail "fake groq config"

# submit_jobs ID_PREFIX N JSON_MEMBER: N chat jobs ID_PREFIX-000.. with
# JSON_MEMBER ('"route":"ops"' or '"providers":[...]'), 20 tenants.
submit_jobs() {
        local idp=$1 n=$2 member=$3 i f="$E2E_OUT/$1.jsonl"
        for ((i = 0; i < n; i++)); do
                printf '{"job_id":"%s-%03d","tenant_id":"t%d",%s,"chat":{"messages":[{"role":"user","content":"question %d for %s"}]}}\n' \
                        "$idp" "$i" $((i % 20)) "$member" "$i" "$idp"
        done >"$f"
        "$G" submit -f "$f" --ids-out "$E2E_OUT/$idp.ids" >/dev/null 2>"$E2E_OUT/$idp.err" ||
                fail "submit $idp: $(cat "$E2E_OUT/$idp.err")"
}
finished() { # finished ID_PREFIX: jobs of the batch in a final state
        sql "SELECT count(*) FROM jobs WHERE job_id LIKE '$1-%'
             AND state IN ('succeeded', 'failed', 'rejected', 'cancelled')"
}
wait_batch() { # wait_batch ID_PREFIX N [TIMEOUT_S]
        local i
        for ((i = 0; i < ${3:-30} * 10; i++)); do
                [ "$(finished "$1")" == "$2" ] && return 0
                sleep 0.1
        done
        fail "timed out waiting for $2 jobs $1-* to finish: $(states "$1")"
}
# The distinct attempt trails of a batch with their counts:
# "N x provider:status:outcome[:error],... | ..."
trails() {
        sql "SELECT coalesce(string_agg(n || 'x ' || trail, ' | ' ORDER BY trail), 'no attempts')
             FROM (SELECT trail, count(*) n FROM (
                     SELECT job_id, string_agg(provider || ':' ||
                              coalesce(http_status::text, '-') || ':' || outcome ||
                              coalesce(':' || error, ''), ',' ORDER BY attempt_id) trail
                     FROM attempts WHERE job_id LIKE '$1-%' GROUP BY job_id) t
                   GROUP BY trail) u"
}
states() { # "N x state/provider | ..." of a batch
        sql "SELECT coalesce(string_agg(n || 'x ' || s, ' | ' ORDER BY s), 'no jobs')
             FROM (SELECT state || '/' || coalesce(provider, '-') s, count(*) n
                   FROM jobs WHERE job_id LIKE '$1-%' GROUP BY 1) t"
}
workers_of() { # the workers that made the batch's attempts
        sql "SELECT coalesce(string_agg(DISTINCT worker, ',' ORDER BY worker), 'none')
             FROM attempts WHERE job_id LIKE '$1-%'"
}
keys_by_worker() { # "worker:key+key,..." of the batch's attempts
        sql "SELECT coalesce(string_agg(w, ' ' ORDER BY w), 'none') FROM (
               SELECT worker || '=' || string_agg(DISTINCT coalesce(key_id, '-'), '+'
                                                  ORDER BY coalesce(key_id, '-')) w
               FROM attempts WHERE job_id LIKE '$1-%' GROUP BY worker) t"
}
fake_requests() { # fake_requests PROVIDER: requests it has seen
        fake GET "/_fake/$1/stats" | grep -o '"requests":[0-9]*' | cut -d: -f2
}
# run_batch ID_PREFIX N JSON_MEMBER: submit and wait for the batch.
run_batch() {
        submit_jobs "$1" "$2" "$3"
        wait_batch "$1" "$2"
}
# both_workers ID_PREFIX: the batch was served by both workers.
both_workers() {
        assert_eq "$1: both workers took part" "t45-a,t45-b" "$(workers_of "$1")"
}
POLL_WAIT=3 # > policy.state_interval_ms (2 s) + a query

# ---- two workers, one group -------------------------------------------
POOL="providers.groq.api_key_env=FAKE_KEY_T45_A,FAKE_KEY_T45_B"
# Only the chat topic (worker.kinds), so its 6 partitions are shared out
# 3 and 3 (with every kind's topic, one worker could get all of chat).
start_worker a -X worker.id=t45-a -X worker.kinds=chat -X "$POOL"
start_worker b -X worker.id=t45-b -X worker.kinds=chat -X "$POOL"
# Warm up until both have partitions and serve jobs (a rebalance of the
# cooperative assignor takes a moment).
both_assigned() {
        grep -q "assigned [1-9]" "$E2E_OUT/worker-a.log" &&
                grep -q "assigned [1-9]" "$E2E_OUT/worker-b.log"
}
wait_for "both workers assigned partitions" 30 both_assigned
for w in 1 2 3 4 5 6; do
        run_batch "warm$w" 20 '"route":"ops"'
        [ "$(workers_of "warm$w")" != "t45-a,t45-b" ] || break
        sleep 1
done
both_workers "warm$w"
assert_eq "route ops before any override" "20x openai:200:success" "$(trails "warm$w")"

# ---- 1. operator disable ----------------------------------------------
gp_out=$("$G" provider disable openai --reason maintenance 2>&1) ||
        fail "genq provider disable: $gp_out"
sleep "$POLL_WAIT"
n_openai=$(fake_requests openai)
n_mistral=$(fake_requests mistral)
run_batch dis 20 '"route":"ops"'
assert_eq "disabled openai: states" "20x succeeded/mistral" "$(states dis)"
assert_eq "disabled openai: every skip explained" \
        "20x openai:-:fallback_next:disabled by an operator: maintenance,mistral:200:success" \
        "$(trails dis)"
both_workers dis
assert_eq "disabled openai: fake saw no openai request" "$n_openai" "$(fake_requests openai)"
assert_eq "disabled openai: fake saw 20 more mistral requests" \
        $((n_mistral + 20)) "$(fake_requests mistral)"
gp_out=$("$G" provider enable openai 2>&1) || fail "genq provider enable: $gp_out"
sleep "$POLL_WAIT"
run_batch ena 20 '"route":"ops"'
assert_eq "enabled openai: served by openai again" "20x openai:200:success" "$(trails ena)"
both_workers ena

# ---- 2. priority ------------------------------------------------------
gp_out=$("$G" provider priority mistral -1 2>&1) || fail "genq provider priority: $gp_out"
sleep "$POLL_WAIT"
run_batch pri 20 '"route":"ops"'
run_batch pin 20 '"providers":["openai","mistral"]'
assert_eq "priority mistral -1: route ops served by mistral first" \
        "20x mistral:200:success" "$(trails pri)"
both_workers pri
assert_eq "priority mistral -1: a pinned list keeps its order" \
        "20x openai:200:success" "$(trails pin)"
both_workers pin
gp_out=$("$G" provider priority mistral --clear 2>&1) || fail "genq provider priority --clear: $gp_out"
sleep "$POLL_WAIT"
run_batch clr 20 '"route":"ops"'
assert_eq "priority cleared: route ops served by openai again" \
        "20x openai:200:success" "$(trails clr)"
both_workers clr
assert_eq "no overrides left" 0 "$(sql "SELECT count(*) FROM provider_overrides")"

# ---- 3. a key disabled by one worker, skipped by all ------------------
# Both keys work: each worker uses both (round robin).
run_batch kok 20 '"providers":["groq"]'
assert_eq "groq pool: all served" "20x groq:200:success" "$(trails kok)"
assert_eq "groq pool: each worker uses both keys" \
        "t45-a=$KA+$KB t45-b=$KA+$KB" "$(keys_by_worker kok)"
# Now the fake only takes key B: the next call with key A gets a 401.
fake POST /_fake/groq/config '{"keys":["fake-key-groq-b-only"]}' >/dev/null ||
        fail "fake groq config (B only)"
# One job at a time until a worker has met the 401 (round robin may pick
# B first), so exactly one worker learns it first hand.
for i in 0 1 2 3 4 5; do
        submit_jobs "ktr$i" 1 '"providers":["groq"]'
        wait_batch "ktr$i" 1
        [ "$(sql "SELECT count(*) FROM attempts WHERE job_id LIKE 'ktr$i-%' AND http_status = 401")" == 0 ] || break
done
assert_eq "trigger job: 401 on key A, then key B" \
        "groq:$KA:401:key_disabled,groq:$KB:200:success" \
        "$(sql "SELECT string_agg(provider || ':' || coalesce(key_id, '-') || ':' ||
                                  coalesce(http_status::text, '-') || ':' || outcome, ','
                                  ORDER BY attempt_id)
                FROM attempts WHERE job_id LIKE 'ktr$i-%'")"
first=$(sql "SELECT worker FROM attempts WHERE job_id LIKE 'ktr$i-%' AND http_status = 401")
wait_for "provider_key_state row for key A" 10 \
        sql_is "SELECT count(*) FROM provider_key_state WHERE provider = 'groq' AND key_id = '$KA'" 1
assert_eq "provider_key_state: key A, disabled by the worker that met the 401" \
        "groq|$KA|$first" \
        "$(sql "SELECT provider || '|' || key_id || '|' || coalesce(disabled_by, '-') FROM provider_key_state")"
log "key A first disabled by $first"
sleep "$POLL_WAIT"
run_batch koff 20 '"providers":["groq"]'
assert_eq "key A disabled: every job served by groq on the first try" \
        "20x groq:200:success" "$(trails koff)"
assert_eq "key A disabled: both workers use only key B" \
        "t45-a=$KB t45-b=$KB" "$(keys_by_worker koff)"
assert_eq "only the trigger job ever met a 401" 1 \
        "$(sql "SELECT count(*) FROM attempts WHERE http_status = 401")"
# The operator re-enables key A (and the fake takes it again).
fake POST /_fake/groq/config '{"keys":["fake-key-groq","fake-key-groq-b-only"]}' >/dev/null ||
        fail "fake groq config (both)"
gp_out=$("$G" provider enable groq --key "$KA" 2>&1) || fail "genq provider enable --key: $gp_out"
grep -q "cleared a worker's disable" <<<"$gp_out" || fail "enable --key: $gp_out"
assert_eq "enable --key: provider_key_state emptied" 0 \
        "$(sql "SELECT count(*) FROM provider_key_state")"
sleep "$POLL_WAIT"
run_batch kon 20 '"providers":["groq"]'
assert_eq "key A enabled: all served" "20x groq:200:success" "$(trails kon)"
assert_eq "key A enabled: both workers use both keys again" \
        "t45-a=$KA+$KB t45-b=$KA+$KB" "$(keys_by_worker kon)"

# ---- 4. SIGHUP --------------------------------------------------------
stop_workers
HUP="$E2E_OUT/hup.yaml"
LOGC="$E2E_OUT/worker-c.log"
printf 'routes:\n  chat:\n    hup: [openai]\n' >"$HUP"
GENQ_CONFIG="$BASE_CONFIG:$HUP" # worker c only; the CLI keeps BASE_CONFIG
# Four HTTP connections: the 300 jobs are all taken at once but their
# calls (20 ms each at the fake) queue for a second or two, so the SIGHUP
# finds many jobs in flight.
start_worker c -X worker.id=t45-c -X worker.kinds=chat -X worker.http_max_conns=4
GENQ_CONFIG="$BASE_CONFIG"
wait_for "worker c assigned partitions" 30 grep -q "assigned [1-9]" "$LOGC"
run_batch hwarm 5 '"route":"hup"'
assert_eq "route hup before the reload" "5x openai:200:success" "$(trails hwarm)"
reloaded() { grep -c "SIGHUP: configuration reloaded" "$LOGC" || true; }
refused() { grep -c "SIGHUP: configuration not reloaded" "$LOGC" || true; }
# wait_log WHAT COUNTER N: until COUNTER says N, while worker c lives.
wait_log() {
        local i rc=0
        for ((i = 0; i < 100; i++)); do
                [ "$("$2")" == "$3" ] && return 0
                if ! kill -0 "$WORKER_c" 2>/dev/null; then
                        wait "$WORKER_c" || rc=$?
                        WORKER_PIDS=()
                        fail "worker c died (exit status $rc) after the SIGHUP, waiting for: $1"
                fi
                sleep 0.1
        done
        fail "timed out after 10s waiting for: $1 (log: $(grep SIGHUP "$LOGC" | tail -n 1))"
}

fake POST /_fake/openai/config '{"latency_ms":20}' >/dev/null || fail "fake openai latency"
n_openai=$(fake_requests openai)
submit_jobs hup 300 '"route":"hup"'
openai_above() { [ "$(fake_requests openai)" -gt "$1" ]; }
wait_for "the first hup jobs at openai" 20 openai_above $((n_openai + 10))
printf 'routes:\n  chat:\n    hup: [mistral]\n' >"$HUP"
# Jobs the worker holds (running) and jobs finished, as the signal goes.
at_hup=$(sql "SELECT count(*) FILTER (WHERE state = 'running') || ' ' ||
                     count(*) FILTER (WHERE state = 'succeeded')
              FROM jobs WHERE job_id LIKE 'hup-%'")
kill -HUP "$WORKER_c"
read -r running_at_hup done_at_hup <<<"$at_hup"
log "SIGHUP sent with $running_at_hup hup job(s) running, $done_at_hup of 300 finished"
wait_log "reloaded in the log" reloaded 1
[ "$running_at_hup" -gt 0 ] && [ "$done_at_hup" -lt 300 ] ||
        fail "no hup job was in flight at the SIGHUP ($running_at_hup running, $done_at_hup finished)"
wait_batch hup 300 60
hup_states=$(states hup)
n_hup_openai=$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'hup-%' AND state = 'succeeded' AND provider = 'openai'")
n_hup_mistral=$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'hup-%' AND state = 'succeeded' AND provider = 'mistral'")
log "hup jobs across the reload: $hup_states"
assert_eq "hup jobs: all 300 succeeded at openai or mistral" 300 $((n_hup_openai + n_hup_mistral))
[ "$n_hup_openai" -ge "$done_at_hup" ] ||
        fail "only $n_hup_openai hup jobs at openai, but $done_at_hup had finished before the SIGHUP: $hup_states"
log "ok: jobs in flight at the reload finished at openai ($n_hup_openai), any taken after it at mistral ($n_hup_mistral)"
assert_eq "hup jobs: one successful call each, nothing failed or repeated" \
        "300|300|300" \
        "$(sql "SELECT count(DISTINCT job_id) || '|' ||
                       count(*) FILTER (WHERE outcome = 'success') || '|' || count(*)
                FROM attempts WHERE job_id LIKE 'hup-%'")"
assert_eq "hup jobs: 300 results" 300 "$(sql "SELECT count(*) FROM results WHERE job_id LIKE 'hup-%'")"
grep -q "SIGHUP: configuration reloaded (" "$LOGC" || fail "no reload line"
run_batch hafter 20 '"route":"hup"'
assert_eq "after the reload route hup is served by mistral" \
        "20x mistral:200:success" "$(trails hafter)"

# A broken file (bad YAML; it would send hup back to openai): refused
# with the file and line, the old configuration serves on.
printf 'routes:\n  chat:\n    hup: [openai\n' >"$HUP"
kill -HUP "$WORKER_c"
wait_log "refusal of bad YAML in the log" refused 1
line=$(grep "SIGHUP: configuration not reloaded" "$LOGC" | tail -n 1)
grep -qF "SIGHUP: configuration not reloaded: $HUP:4: " <<<"$line" ||
        fail "bad YAML refusal does not name $HUP:4: $line"
log "ok: $line"
run_batch hbad 10 '"route":"hup"'
assert_eq "bad YAML: still served by mistral" "10x mistral:200:success" "$(trails hbad)"

# An unknown key (the rest of the file valid and different).
printf 'routes:\n  chat:\n    hup:\n      providers: [openai]\n      bogus: 1\n' >"$HUP"
kill -HUP "$WORKER_c"
wait_log "refusal of an unknown key in the log" refused 2
line=$(grep "SIGHUP: configuration not reloaded" "$LOGC" | tail -n 1)
grep -qF "SIGHUP: configuration not reloaded: $HUP:5: unknown key \"routes.chat.hup.bogus\"" <<<"$line" ||
        fail "unknown key refusal does not name $HUP:5: $line"
log "ok: $line"
run_batch hkey 10 '"route":"hup"'
assert_eq "unknown key: still served by mistral" "10x mistral:200:success" "$(trails hkey)"

# A valid file that adds a provider: a restart is needed.
cat >"$HUP" <<EOF
routes:
  chat:
    hup: [t45-extra]
providers:
  t45-extra:
    adapter: openai_chat
    base_url: http://127.0.0.1:$FAKE_PORT/openai/v1
    model: gpt-4o-mini
    api_key_env: FAKE_KEY_OPENAI
    price: {input_credits: "0.03", output_credits: "0.12",
            input_usd: "0.00015", output_usd: "0.0006"}
EOF
GENQ_CONFIG="$BASE_CONFIG:$HUP" "$BIN/genq-worker" --check-config >"$E2E_OUT/check.out" 2>&1 ||
        fail "the added-provider file is not valid on its own: $(tail -n 3 "$E2E_OUT/check.out")"
kill -HUP "$WORKER_c"
wait_log "refusal of an added provider in the log" refused 3
line=$(grep "SIGHUP: configuration not reloaded" "$LOGC" | tail -n 1)
grep -q "providers added or removed (restart the worker for that)" <<<"$line" ||
        fail "added provider refusal does not ask for a restart: $line"
log "ok: $line"
run_batch hadd 10 '"route":"hup"'
assert_eq "added provider: still served by mistral" "10x mistral:200:success" "$(trails hadd)"
assert_eq "one reload in all" 1 "$(reloaded)"
assert_eq "nothing failed in this test" 0 \
        "$(sql "SELECT count(*) FROM jobs WHERE state <> 'succeeded'")"
