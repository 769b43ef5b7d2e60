#!/usr/bin/env bash
# Migrations are safe when several processes start at once: on a fresh
# database, four `genq migrate` and two workers racing each other apply
# every migration exactly once and all succeed.
. "$(dirname "$0")/lib.sh"
make_config
db="genq_mig_$RUN_ID"
admin_dsn="$GENQ_POSTGRES_DSN"
sql "DROP DATABASE IF EXISTS $db" >/dev/null
sql "CREATE DATABASE $db" >/dev/null
export GENQ_POSTGRES_DSN=$(printf '%s' "$admin_dsn" | sed -E "s/dbname=[^ ]+/dbname=$db/")
pids=()
for i in 1 2 3 4; do
        "$BIN/genq" migrate >"$E2E_OUT/migrate-$i.log" 2>&1 &
        pids+=($!)
done
start_worker a
start_worker b
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent migrate failed: $(cat "$E2E_OUT"/migrate-*.log)"; done
wait_for "workers running" 30 grep -q "running:" "$E2E_OUT/worker-a.log"
wait_for "workers running" 30 grep -q "running:" "$E2E_OUT/worker-b.log"
expected=$(ls "$ROOT"/schema/[0-9]*.sql | wc -l)
assert_eq "migrations recorded once each" "$expected" "$(sql "SELECT count(*) FROM schema_migrations")"
assert_eq "applied by exactly one process in total" "$expected" \
        "$(cat "$E2E_OUT"/migrate-*.log "$E2E_OUT"/worker-*.log | grep -c "applied migration")"
assert_eq "ledger partitions made ahead" 1 \
        "$(sql "SELECT (count(*) >= 4)::int FROM pg_inherits WHERE inhparent = 'credit_ledger'::regclass")"
stop_workers
export GENQ_POSTGRES_DSN="$admin_dsn"
sql "DROP DATABASE $db" >/dev/null
