#!/usr/bin/env bash
# Row-level security: `genq tenant reporter` makes a login role per tenant
# (password from a file).  Connected as tenant A's role, every table and
# view shows A's rows and none of B's, with A's exact totals; the role can
# write nothing and cannot read around the policies (ledger partitions,
# the operators' quota view).  A member of genq_reporting mapped to no
# tenant sees nothing; the owner (the worker's role) still sees all.
. "$(dirname "$0")/lib.sh"
reset_db
ROLE_A=e2e_rls_a ROLE_B=e2e_rls_b ROLE_C=e2e_rls_c
drop_roles() {
        sql "DROP ROLE IF EXISTS $ROLE_A; DROP ROLE IF EXISTS $ROLE_B;
             DROP ROLE IF EXISTS $ROLE_C" >/dev/null 2>&1 || true
}
trap 'rc=$?; drop_roles; stop_workers; exit $rc' EXIT
drop_roles

"$BIN/genq" tenant add rls-a --name "Tenant A" >/dev/null || fail "tenant add a"
"$BIN/genq" tenant add rls-b >/dev/null || fail "tenant add b"

# Two tenants with rows in every table: A has 3 jobs (a video failed and
# refunded), B has 3 (one video through a task).  Distinct counts, so a
# leak in either direction changes a number.
sql "
INSERT INTO jobs (job_id, tenant_id, kind, state, provider, model, attempts,
                  created_at, finished_at) VALUES
 ('rls-a-1', 'rls-a', 'chat',  'succeeded', 'groq', 'llama', 1, now(), now()),
 ('rls-a-2', 'rls-a', 'video', 'failed',    'kie',  'sora',  2, now(), now()),
 ('rls-a-3', 'rls-a', 'image', 'succeeded', 'sf',   'flux',  1, now(), now()),
 ('rls-b-1', 'rls-b', 'chat',  'succeeded', 'groq', 'llama', 1, now(), now()),
 ('rls-b-2', 'rls-b', 'tts',   'succeeded', 'el',   'v2',    1, now(), now()),
 ('rls-b-3', 'rls-b', 'video', 'succeeded', 'kie',  'sora',  1, now(), now());
INSERT INTO attempts (job_id, attempt_no, provider, outcome, latency_ms,
                      worker, started_at)
SELECT job_id, n, provider, 'success', 10, 'w', now()
FROM jobs, generate_series(1, attempts) n;
INSERT INTO tasks (job_id, provider, provider_task_id, state) VALUES
 ('rls-a-2', 'kie', 'task-a-2', 'failed'),
 ('rls-b-3', 'kie', 'task-b-3', 'succeeded');
INSERT INTO results (job_id, provider, model, input_tokens, output_tokens,
                     units, unit) VALUES
 ('rls-a-1', 'groq', 'llama', 100, 50, 150, 'tokens'),
 ('rls-a-3', 'sf', 'flux', NULL, NULL, 2, 'image'),
 ('rls-b-1', 'groq', 'llama', 10, 5, 15, 'tokens'),
 ('rls-b-2', 'el', 'v2', NULL, NULL, 20, 'character'),
 ('rls-b-3', 'kie', 'sora', NULL, NULL, 6, 'second');
INSERT INTO credit_ledger (job_id, tenant_id, entry_type, credits, usd, kind,
                           provider, model, unit, units, price_snapshot,
                           job_accepted_at)
SELECT j.job_id, j.tenant_id, e.t, e.c, e.u, j.kind, j.provider, j.model,
       e.unit, e.n, '{\"per\": 1}', j.accepted_at
FROM jobs j JOIN (VALUES
 ('rls-a-1', 'charge', 1.5, 0.0075, 'tokens', 150),
 ('rls-a-2', 'charge', 50, 0.25, 'second', 10),
 ('rls-a-2', 'refund', 50, 0.25, 'second', 10),
 ('rls-a-3', 'charge', 8, 0.04, 'image', 2),
 ('rls-b-1', 'charge', 0.25, 0.00125, 'tokens', 15),
 ('rls-b-2', 'charge', 2, 0.01, 'character', 20),
 ('rls-b-3', 'charge', 30, 0.15, 'second', 6)) e(job, t, c, u, unit, n)
ON e.job = j.job_id;
INSERT INTO tenant_spend (tenant_id, period_start, spent, reserved)
SELECT tenant_id, genq_period_start('month', now()), 9.5, 1 FROM tenants;
" >/dev/null || fail "cannot insert the test rows"

# Reporter roles, passwords from files (never on the command line).
umask 077
printf 'pw-a-%s\n' "$RUN_ID" >"$E2E_OUT/pw-a"
printf 'pw-b-%s\n' "$RUN_ID" >"$E2E_OUT/pw-b"
"$BIN/genq" tenant reporter rls-a "$ROLE_A" --password-file "$E2E_OUT/pw-a" \
        >"$E2E_OUT/reporter-a.out" || fail "tenant reporter a"
"$BIN/genq" tenant reporter rls-b "$ROLE_B" --password-file "$E2E_OUT/pw-b" \
        >"$E2E_OUT/reporter-b.out" || fail "tenant reporter b"
grep -q "created" "$E2E_OUT/reporter-a.out" || fail "role a not created: $(cat "$E2E_OUT/reporter-a.out")"
assert_eq "role is a login role with a SCRAM password" "t|SCRAM-SHA-256" \
        "$(sql "SELECT rolcanlogin, split_part(rolpassword, '\$', 1) FROM pg_authid WHERE rolname = '$ROLE_A'")"
assert_eq "role is in genq_reporting" t \
        "$(sql "SELECT pg_has_role('$ROLE_A', 'genq_reporting', 'MEMBER')")"
assert_eq "reporters mapped" "$ROLE_A|rls-a,$ROLE_B|rls-b" \
        "$(sql "SELECT string_agg(role_name || '|' || tenant_id, ',' ORDER BY role_name) FROM tenant_reporters")"
"$BIN/genq" tenant reporter rls-a "$ROLE_A" >/dev/null ||
        fail "tenant reporter is not idempotent"
code=0; "$BIN/genq" tenant reporter rls-a "genq" 2>/dev/null || code=$?
assert_eq "a superuser cannot be made a reporter" 1 "$code"
code=0; "$BIN/genq" tenant reporter rls-a "Bad-Role" 2>/dev/null || code=$?
assert_eq "a bad role name is a usage error" 2 "$code"
assert_eq "tenant list shows the reporters" "rls-a|$ROLE_A" \
        "$("$BIN/genq" tenant list --format csv | awk -F, '$1 == "rls-a" {print $1 "|" $NF}')"

# as ROLE PASSWORD_FILE SQL: psql as that role (loopback is trust on the
# local stack, so the password is not checked there; it is still given).
dsn_as() { printf '%s user=%s' "$(sed 's/user=[^ ]*//' <<<"$GENQ_POSTGRES_DSN")" "$1"; }
as() {
        PGPASSWORD=$(head -n 1 "$2") psql -X -q -t -A -v ON_ERROR_STOP=1 \
                "$(dsn_as "$1")" -c "$3"
}
assert_eq "connected as the role" "$ROLE_A" "$(as "$ROLE_A" "$E2E_OUT/pw-a" "SELECT current_user")"

# check_tenant ROLE PWFILE ME OTHER "jobs attempts tasks results ledger
# spend" NET_CREDITS NET_USD
check_tenant() {
        local role=$1 pw=$2 me=$3 other=$4 counts=$5 net=$6 usd=$7 t got
        read -r n_jobs n_att n_tasks n_res n_led n_spend <<<"$counts"
        for t in "jobs $n_jobs" "attempts $n_att" "tasks $n_tasks" \
                 "results $n_res" "credit_ledger $n_led" \
                 "tenant_spend $n_spend" "tenants 1" "tenant_reporters 1" \
                 "credit_ledger_net $n_led" "job_costs $n_jobs"; do
                set -- $t
                assert_eq "$role sees its $1" "$2" "$(as "$role" "$pw" "SELECT count(*) FROM $1")"
        done
        # Nothing of the other tenant, by tenant column or by job id.
        for t in jobs credit_ledger tenant_spend tenants tenant_reporters \
                 credit_ledger_net job_costs billing_daily billing_monthly \
                 job_outcomes; do
                assert_eq "$role sees no $other row in $t" 0 \
                        "$(as "$role" "$pw" "SELECT count(*) FROM $t WHERE tenant_id <> '$me'")"
        done
        for t in attempts tasks results; do
                assert_eq "$role sees no $other row in $t" 0 \
                        "$(as "$role" "$pw" "SELECT count(*) FROM $t WHERE job_id NOT LIKE '$me-%'")"
        done
        assert_eq "$role: billing_daily net" "$net|$usd" \
                "$(as "$role" "$pw" "SELECT sum(credits) || '|' || sum(usd) FROM billing_daily")"
        assert_eq "$role: billing_monthly net" "$net|$usd" \
                "$(as "$role" "$pw" "SELECT sum(credits) || '|' || sum(usd) FROM billing_monthly")"
        assert_eq "$role: job_costs net" "$net" \
                "$(as "$role" "$pw" "SELECT sum(credits) FROM job_costs")"
        assert_eq "$role: job_outcomes jobs" "$n_jobs" \
                "$(as "$role" "$pw" "SELECT sum(jobs) FROM job_outcomes")"
        # The snapshots here hold no prices: every charge is reported.
        assert_eq "$role: reconcile sees its charges only" "3|0" \
                "$(as "$role" "$pw" "SELECT count(*) FILTER (WHERE job_id LIKE '$me-%') || '|' || count(*) FILTER (WHERE job_id NOT LIKE '$me-%') FROM genq_reconcile()")"
}
#             jobs att tasks res ledger spend
check_tenant "$ROLE_A" "$E2E_OUT/pw-a" rls-a rls-b "3 4 1 2 4 1" 9.500000 0.04750000
check_tenant "$ROLE_B" "$E2E_OUT/pw-b" rls-b rls-a "3 3 1 3 3 1" 32.250000 0.16125000

# No writes, and no way around the policies.
deny() { # WHAT SQL: must fail with "permission denied"
        local out
        if out=$(as "$ROLE_A" "$E2E_OUT/pw-a" "$2" 2>&1); then
                fail "$1 succeeded as $ROLE_A"
        fi
        grep -q "permission denied" <<<"$out" || fail "$1: unexpected error: $out"
        log "ok: $1 refused"
}
deny "INSERT into jobs" "INSERT INTO jobs (job_id, tenant_id, kind, created_at) VALUES ('rls-a-9', 'rls-a', 'chat', now())"
deny "INSERT into credit_ledger" "INSERT INTO credit_ledger (job_id, tenant_id, entry_type, credits, usd, kind, price_snapshot, job_accepted_at) VALUES ('rls-a-1', 'rls-a', 'adjustment', -1, 0, 'chat', '{}', now())"
deny "UPDATE credit_ledger" "UPDATE credit_ledger SET credits = 0"
deny "UPDATE jobs" "UPDATE jobs SET state = 'cancelled' WHERE job_id = 'rls-a-1'"
deny "DELETE from results" "DELETE FROM results"
deny "INSERT into tenant_reporters" "INSERT INTO tenant_reporters VALUES ('$ROLE_A', 'rls-b')"
deny "UPDATE tenant_reporters" "UPDATE tenant_reporters SET tenant_id = 'rls-b'"
part=$(sql "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'credit_ledger'::regclass AND c.relname <> 'credit_ledger_default' LIMIT 1")
deny "reading a ledger partition directly" "SELECT count(*) FROM $part"
deny "reading provider_quota_usage" "SELECT count(*) FROM provider_quota_usage"
deny "dropping ledger partitions" "SELECT genq_drop_ledger_before('2000-01-01')"
assert_eq "ledger unchanged" "7|141.750000" "$(sql "SELECT count(*) || '|' || sum(credits) FROM credit_ledger WHERE entry_type = 'charge' OR entry_type = 'refund'")"

# A member of genq_reporting that no tenant is mapped to sees nothing.
sql "CREATE ROLE $ROLE_C LOGIN; GRANT genq_reporting TO $ROLE_C" >/dev/null
for t in jobs attempts tasks results credit_ledger tenant_spend tenants \
         billing_daily job_costs; do
        assert_eq "unmapped reporter sees no $t" 0 \
                "$(psql -X -q -t -A -v ON_ERROR_STOP=1 "$(dsn_as "$ROLE_C")" -c "SELECT count(*) FROM $t")"
done

# The owner is unaffected (row-level security is not forced).
assert_eq "owner sees every job" 6 "$(sql "SELECT count(*) FROM jobs")"
assert_eq "owner sees every result" 5 "$(sql "SELECT count(*) FROM results")"
assert_eq "owner sees all of billing_daily" "41.750000" "$(sql "SELECT sum(credits) FROM billing_daily")"
assert_eq "owner's genq report sees both tenants" "rls-a,rls-b" \
        "$("$BIN/genq" report --by tenant --format csv | awk -F, 'NR > 1 {print $1}' | paste -sd,)"
