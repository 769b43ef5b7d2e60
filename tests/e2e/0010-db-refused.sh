#!/usr/bin/env bash
# When Postgres refuses a job's row, that message is dead-lettered with the
# database's reason (never dropped), and the other jobs of the same write
# batch still run: a failed batch is retried op by op.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
sql "CREATE OR REPLACE FUNCTION e2e_poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN IF NEW.job_id LIKE 'poison-%' THEN
         RAISE EXCEPTION 'poisoned row %', NEW.job_id; END IF;
       RETURN NEW; END \$\$;
     DROP TRIGGER IF EXISTS e2e_poison ON jobs;
     CREATE TRIGGER e2e_poison BEFORE INSERT ON jobs
         FOR EACH ROW EXECUTE FUNCTION e2e_poison();" >/dev/null
cleanup_trigger() { sql "DROP TRIGGER IF EXISTS e2e_poison ON jobs; DROP FUNCTION IF EXISTS e2e_poison()" >/dev/null; }
trap 'rc=$?; stop_workers; cleanup_trigger; exit $rc' EXIT
# Batch writes wait up to 50 ms so the jobs share a batch.
start_worker a -X worker.pg_batch_ms=50
{
        gen_chat 20 ok 1
        echo '{"job_id":"poison-1","tenant_id":"t0","chat":{"prompt":"bad row"}}'
        gen_chat 20 ok2 1
} >"$E2E_OUT/jobs.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
wait_for "40 good jobs done" 30 sql_is "SELECT count(*) FROM jobs WHERE state='succeeded'" 40
tail_topic "$PREFIX.dlq" 1 20 >"$E2E_OUT/dlq.jsonl"
grep -q '"genq.reason_code":"db_refused"' "$E2E_OUT/dlq.jsonl" || fail "no db_refused in the DLQ"
grep -q 'poisoned row poison-1' "$E2E_OUT/dlq.jsonl" || fail "the database's reason is missing"
grep -q '"key":"poison-1"' "$E2E_OUT/dlq.jsonl" || fail "key not kept"
assert_eq "poison row absent" 0 "$(sql "SELECT count(*) FROM jobs WHERE job_id='poison-1'")"
grep -q "DLQ (db_refused)" "$E2E_OUT/worker-a.log" || fail "not logged"
