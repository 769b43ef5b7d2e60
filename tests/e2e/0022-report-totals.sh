#!/usr/bin/env bash
# `genq report` totals equal direct sums over credit_ledger (net: charges
# - refunds + adjustments) to the last decimal: per tenant, kind and
# provider, per day and month, with --from/--to, --tenant, --kind and
# --provider filters; jobs, refunds, failures and units agree with jobs,
# the refunds and results; JSON parses and carries money as strings.
# Then `genq retention` drops the old ledger partitions, listing them
# first under --dry-run, never the default partition, and the report
# still equals the ledger.
. "$(dirname "$0")/lib.sh"
reset_db

# 360 jobs over 3 tenants, 6 providers and 4 acceptance times: the 6th of
# last month, the 2nd of this month, the last millisecond of the 3rd and
# the first instant of the 4th (UTC: the day boundary).  Video jobs hold a
# charge; every 5th fails and is refunded, the rest settle with an
# adjustment (either sign) to the real usage (none when the hold was
# right: its units were the usage); every 7th chat job fails
# before any charge.  Amounts are awkward decimals at the ledger's scale.
sql "
CREATE TEMP TABLE t0 AS SELECT date_trunc('month', now() AT TIME ZONE 'UTC')
    AT TIME ZONE 'UTC' AS m;
INSERT INTO tenants (tenant_id) VALUES ('t-a'), ('t-b'), ('t-c');
CREATE TEMP TABLE spec AS
SELECT i, 't-' || chr(97 + i % 3) AS tenant,
       (ARRAY['chat', 'chat', 'image', 'tts', 'video', 'stt'])[1 + (i / 3) % 6]
           AS kind,
       (ARRAY['groq', 'mistral', 'stability', 'elevenlabs', 'kie',
              'groq-whisper'])[1 + (i / 3) % 6] AS provider,
       (ARRAY['m-groq', 'm-mistral', 'core', 'v2', 'sora', 'whisper'])
           [1 + (i / 3) % 6] AS model,
       (SELECT m FROM t0) + (ARRAY[interval '-1 month' + interval '5 days 10 hours',
                                   interval '1 day 12 hours',
                                   interval '2 days 23:59:59.999',
                                   interval '3 days'])[1 + i % 4] AS at,
       round((i * 7919 % 1000003) / 1000000.0 * 3.7, 6) AS credits,
       round((i * 104729 % 1000003) / 100000000.0, 8) AS usd,
       1 + i * 13 % 5000 AS units
FROM generate_series(1, 360) i;
ALTER TABLE spec ADD state text;
UPDATE spec SET state = CASE
    WHEN kind = 'video' AND i % 5 = 0 THEN 'failed'
    WHEN kind = 'chat' AND i % 7 = 0 THEN 'failed'
    ELSE 'succeeded' END;
INSERT INTO jobs (job_id, tenant_id, kind, state, provider, model,
                  created_at, accepted_at, finished_at)
SELECT 'rt-' || i, tenant, kind, state, provider, model, at, at, at
FROM spec;
INSERT INTO results (job_id, provider, model, units, unit)
SELECT 'rt-' || i, provider, model,
       CASE WHEN kind <> 'video' THEN units WHEN i % 3 = 1 THEN 10
            ELSE units % 17 + 1 END, kind
FROM spec WHERE state = 'succeeded';
INSERT INTO credit_ledger (job_id, tenant_id, entry_type, credits, usd, kind,
                           provider, model, unit, units, price_snapshot,
                           job_accepted_at)
SELECT 'rt-' || i, tenant, e.t, e.c, e.u, kind, provider, model, kind, e.n,
       '{\"per\": 1}', at
FROM spec
CROSS JOIN LATERAL (VALUES
    ('charge', credits, usd, CASE WHEN kind = 'video' THEN 10
                                  ELSE units END),
    ('refund', credits, usd, 10),
    ('adjustment', round(credits * ((i % 3) - 1) / 3, 6),
     round(usd * ((i % 3) - 1) / 3, 8), units % 17 + 1)) e(t, c, u, n)
WHERE (state = 'succeeded' OR kind = 'video')
  AND (e.t = 'charge'
       OR (e.t = 'refund' AND kind = 'video' AND state = 'failed')
       OR (e.t = 'adjustment' AND kind = 'video' AND state = 'succeeded'
           AND i % 3 <> 1));
" >/dev/null || fail "cannot insert the test rows"
n_entries=$(sql "SELECT count(*) FROM credit_ledger")
[ "$n_entries" -gt 300 ] || fail "only $n_entries ledger entries"
log "$n_entries ledger entries"

NET_C="sum(CASE WHEN entry_type = 'refund' THEN -credits ELSE credits END)"
NET_U="sum(CASE WHEN entry_type = 'refund' THEN -usd ELSE usd END)"
DAY="(job_accepted_at AT TIME ZONE 'UTC')::date"
csv_sql() { psql -X -q --csv "$GENQ_POSTGRES_DSN" -c "$1"; }
# pick COLUMN... : those columns of a CSV on stdin, by header name.
pick() {
        python3 -c '
import csv, sys
rows = list(csv.DictReader(sys.stdin))
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(sys.argv[1:])
for r in rows:
    w.writerow([r[c] for c in sys.argv[1:]])' "$@"
}
report() { "$BIN/genq" report --format csv "$@" || fail "genq report $* failed"; }

# Per tenant, kind and provider (the default grouping).
assert_eq "credits and usd by tenant, kind, provider" \
        "$(csv_sql "SELECT tenant_id, kind, provider, $NET_C AS credits, $NET_U AS usd FROM credit_ledger GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")" \
        "$(report | pick tenant_id kind provider credits usd)"
# Jobs billed are the jobs that succeeded (a refunded hold bills nothing);
# failures are the failed jobs; refunds, from the ledger.
assert_eq "jobs, failures, refunds by tenant" \
        "$(csv_sql "SELECT j.tenant_id, count(*) FILTER (WHERE state = 'succeeded') AS jobs, count(*) FILTER (WHERE state = 'failed') AS failures, (SELECT count(*) FROM credit_ledger l WHERE l.tenant_id = j.tenant_id AND entry_type = 'refund') AS refunds, (SELECT sum(credits) FROM credit_ledger l WHERE l.tenant_id = j.tenant_id AND entry_type = 'refund') AS refund_credits FROM jobs j GROUP BY 1 ORDER BY 1")" \
        "$(report --by tenant | pick tenant_id jobs failures refunds refund_credits)"
# Units billed are the usage delivered: the results' units.
assert_eq "units by tenant and kind = results" \
        "$(csv_sql "SELECT j.tenant_id, j.kind, sum(r.units) AS units FROM results r JOIN jobs j USING (job_id) GROUP BY 1, 2 ORDER BY 1, 2")" \
        "$(report --by tenant,kind | pick tenant_id kind units)"

# By day and by month, UTC, with the 23:59:59.999 / 00:00 boundary.
assert_eq "by day and model" \
        "$(csv_sql "SELECT $DAY AS day, model, $NET_C AS credits, $NET_U AS usd FROM credit_ledger GROUP BY 1, 2 ORDER BY 1, 2")" \
        "$(report --by day,model | pick day model credits usd)"
assert_eq "by month" \
        "$(csv_sql "SELECT date_trunc('month', $DAY)::date AS month, tenant_id, $NET_C AS credits FROM credit_ledger GROUP BY 1, 2 ORDER BY 1, 2")" \
        "$(report --by month,tenant | pick month tenant_id credits)"
[ "$(report --by month | wc -l)" -eq 3 ] || fail "expected two months"

# --from/--to are inclusive days.
d3=$(sql "SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 days')::date")
d4=$(sql "SELECT '$d3'::date + 1")
assert_eq "--from/--to one day" \
        "$(csv_sql "SELECT $DAY AS day, tenant_id, $NET_C AS credits, $NET_U AS usd FROM credit_ledger WHERE $DAY = '$d3' GROUP BY 1, 2 ORDER BY 1, 2")" \
        "$(report --from "$d3" --to "$d3" --by day,tenant | pick day tenant_id credits usd)"
assert_eq "--from the 4th" \
        "$(csv_sql "SELECT tenant_id, $NET_C AS credits FROM credit_ledger WHERE $DAY >= '$d4' GROUP BY 1 ORDER BY 1")" \
        "$(report --from "$d4" --by tenant | pick tenant_id credits)"
assert_eq "--to the 3rd" \
        "$(csv_sql "SELECT kind, $NET_C AS credits FROM credit_ledger WHERE $DAY <= '$d3' GROUP BY 1 ORDER BY 1")" \
        "$(report --to "$d3" --by kind | pick kind credits)"
assert_eq "a range with no entries" 1 "$(report --from 2001-01-01 --to 2001-12-31 | wc -l)"

# --tenant, --kind, --provider.
assert_eq "--tenant t-b" \
        "$(csv_sql "SELECT tenant_id, kind, provider, $NET_C AS credits, $NET_U AS usd FROM credit_ledger WHERE tenant_id = 't-b' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")" \
        "$(report --tenant t-b | pick tenant_id kind provider credits usd)"
assert_eq "--kind video --provider kie" \
        "$(csv_sql "SELECT tenant_id, $NET_C AS credits, $NET_U AS usd FROM credit_ledger WHERE kind = 'video' AND provider = 'kie' GROUP BY 1 ORDER BY 1")" \
        "$(report --kind video --provider kie --by tenant | pick tenant_id credits usd)"

# JSON: parses, money as strings, the exact total.
"$BIN/genq" report --format json --by tenant,day >"$E2E_OUT/report.json" || fail "json report"
python3 -m json.tool "$E2E_OUT/report.json" >/dev/null || fail "report json does not parse"
assert_eq "json: strings, exact total" \
        "$(sql "SELECT $NET_C || ' ' || $NET_U FROM credit_ledger")" \
        "$(python3 -c '
import json, sys
from decimal import Decimal
rows = json.load(open(sys.argv[1]))
for r in rows:
    for k in ("credits", "usd", "units", "refund_credits", "jobs"):
        assert isinstance(r[k], str), (k, r[k])
print(sum(Decimal(r["credits"]) for r in rows), sum(Decimal(r["usd"]) for r in rows))' "$E2E_OUT/report.json")"

# ---- retention ---------------------------------------------------------
# Two old monthly partitions with one entry each, and an entry as old in
# the default partition (no monthly partition for it).
sql "SELECT genq_ensure_partitions('2001-01-15 UTC', 0)" >/dev/null
sql "
INSERT INTO tenants (tenant_id) VALUES ('t-old');
INSERT INTO jobs (job_id, tenant_id, kind, state, created_at, accepted_at,
                  finished_at) VALUES
 ('old-1', 't-old', 'image', 'succeeded', '2001-01-10', '2001-01-10', '2001-01-10'),
 ('old-2', 't-old', 'image', 'succeeded', '2000-12-20', '2000-12-20', '2000-12-20'),
 ('old-3', 't-old', 'image', 'succeeded', '1999-06-01', '1999-06-01', '1999-06-01');
INSERT INTO credit_ledger (job_id, tenant_id, entry_type, credits, usd, kind,
                           unit, units, price_snapshot, job_accepted_at)
SELECT job_id, tenant_id, 'charge', c, 0, kind, 'image', 1, '{}', accepted_at
FROM jobs JOIN (VALUES ('old-1', 5), ('old-2', 7), ('old-3', 11)) v(j, c)
  ON v.j = job_id;
" >/dev/null || fail "cannot insert old entries"
assert_eq "the 1999 entry is in the default partition" credit_ledger_default \
        "$(sql "SELECT tableoid::regclass FROM credit_ledger WHERE job_id = 'old-3'")"
parts_before=$(sql "SELECT count(*) FROM pg_inherits WHERE inhparent = 'credit_ledger'::regclass")
# Keep everything from February 2001: only the two old months go.
keep=$(sql "SELECT (extract(year FROM now() AT TIME ZONE 'UTC') * 12 + extract(month FROM now() AT TIME ZONE 'UTC'))::int - (2001 * 12 + 2)")
"$BIN/genq" retention --keep-months "$keep" --dry-run >"$E2E_OUT/dry.out" ||
        fail "retention --dry-run failed"
assert_eq "dry run lists the old partitions" \
        "credit_ledger_2000_12 1|credit_ledger_2001_01 1" \
        "$(awk '/^credit_ledger_/ {print $1, $NF}' "$E2E_OUT/dry.out" | paste -sd'|')"
grep -q "^2 partitions before 2001-02-01 would be dropped" "$E2E_OUT/dry.out" ||
        fail "dry run summary: $(cat "$E2E_OUT/dry.out")"
assert_eq "dry run dropped nothing" "$parts_before|3" \
        "$(sql "SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = 'credit_ledger'::regclass) || '|' || count(*) FROM credit_ledger WHERE tenant_id = 't-old'")"
total_before=$(sql "SELECT $NET_C FROM credit_ledger")

"$BIN/genq" retention --keep-months "$keep" >"$E2E_OUT/drop.out" || fail "retention failed"
assert_eq "dropped" "dropped credit_ledger_2000_12|dropped credit_ledger_2001_01|2 partitions before 2001-02-01 dropped" \
        "$(paste -sd'|' "$E2E_OUT/drop.out")"
assert_eq "partitions left" "$((parts_before - 2))|0" \
        "$(sql "SELECT count(*) || '|' || count(*) FILTER (WHERE inhrelid::regclass::text IN ('credit_ledger_2000_12', 'credit_ledger_2001_01')) FROM pg_inherits WHERE inhparent = 'credit_ledger'::regclass")"
assert_eq "only their entries are gone; the default partition kept" "old-3" \
        "$(sql "SELECT string_agg(job_id, ',') FROM credit_ledger WHERE tenant_id = 't-old'")"
assert_eq "ledger total less the dropped 12" \
        "$(sql "SELECT $total_before - 12")" "$(sql "SELECT $NET_C FROM credit_ledger")"
assert_eq "report still equals the ledger" \
        "$(csv_sql "SELECT tenant_id, $NET_C AS credits, $NET_U AS usd FROM credit_ledger GROUP BY 1 ORDER BY 1")" \
        "$(report --by tenant | pick tenant_id credits usd)"
"$BIN/genq" retention --keep-months "$keep" | grep -q "^0 partitions" ||
        fail "a second run should drop nothing"
code=0; "$BIN/genq" retention --keep-months 0 2>/dev/null || code=$?
assert_eq "--keep-months 0 is a usage error" 2 "$code"
code=0; "$BIN/genq" retention 2>/dev/null || code=$?
assert_eq "--keep-months is required" 2 "$code"
if sql "SELECT genq_drop_ledger_before((now() + interval '2 months')::date)" >/dev/null 2>&1; then
        fail "a cutoff after this month was accepted"
fi
log "ok: a cutoff after this month's start is refused"
# Leave the default partition empty, as genq_ensure_partitions expects.
sql "DELETE FROM credit_ledger WHERE job_id = 'old-3'" >/dev/null
