-- genq schema, migration 0003: billing reports, tenant isolation,
-- reconciliation and ledger retention.
--
-- Ledger semantics every view and check here relies on (see the worker's
-- pgsink.c): credits, usd and units are stored positive for 'charge' and
-- 'refund'; a refund reverses its job's charge and copies it; an
-- 'adjustment' settles a hold (a charge made before the usage was known):
-- its credits and usd are signed, the real cost minus what the job's
-- charge and refund left, and its units are the real usage.  So, per
-- job, net credits = charges - refunds + adjustments, and the units
-- billed are the adjustment's when there is one, else charges - refunds.
--
-- Reporting roles: each tenant's reporting login role is a member of the
-- group role genq_reporting and is mapped to its tenant in
-- tenant_reporters (`genq tenant reporter`).  Row-level security limits
-- members of genq_reporting to their tenant's rows; the views run with
-- the caller's rights (security_invoker), so the same rows are what the
-- views see.  The tables' owner (the role that migrates and runs the
-- workers) bypasses row-level security, which is not forced.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles
                   WHERE rolname = 'genq_reporting') THEN
        CREATE ROLE genq_reporting NOLOGIN;
    END IF;
EXCEPTION
    -- Roles are shared by every database of the server: another
    -- database's migration may have made it a moment ago.
    WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

-- ---- billing views --------------------------------------------------------

-- Each ledger entry's signed contribution to its job's net: credits and
-- usd (+ charge, - refund, adjustment as stored); units (+ charge,
-- - refund, adjustment: its units minus what the charge and refund left);
-- jobs billed (+1 charge, -1 refund, an adjustment +1 only if its job's
-- charge was refunded: a hold refunded, then the job served elsewhere).
-- The lookup runs for adjustments only, by primary key.
CREATE VIEW credit_ledger_net WITH (security_invoker = true) AS
SELECT l.entry_id, l.job_id, l.tenant_id, l.entry_type, l.kind, l.provider,
       l.model, l.unit, l.job_accepted_at, l.created_at,
       CASE l.entry_type WHEN 'charge' THEN 1 WHEN 'refund' THEN -1
            ELSE 1 - a.held END AS jobs,
       CASE l.entry_type WHEN 'charge' THEN l.units
            WHEN 'refund' THEN -l.units
            ELSE l.units - a.held_units END AS units,
       CASE WHEN l.entry_type = 'refund' THEN -l.credits
            ELSE l.credits END AS credits,
       CASE WHEN l.entry_type = 'refund' THEN -l.usd
            ELSE l.usd END AS usd
FROM credit_ledger l
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE c.entry_type = 'charge')
           - count(*) FILTER (WHERE c.entry_type = 'refund') AS held,
           coalesce(sum(CASE WHEN c.entry_type = 'refund' THEN -c.units
                             ELSE c.units END), 0) AS held_units
    FROM credit_ledger c
    WHERE l.entry_type = 'adjustment' AND c.job_id = l.job_id
      AND c.job_accepted_at = l.job_accepted_at
      AND c.entry_type IN ('charge', 'refund')
) a ON true;

-- Billing by tenant, day (UTC, of the job's acceptance, which every
-- ledger entry of the job carries), kind, provider and model.  The first
-- ten columns are those of migration 0001, with their types.
--   charges, refunds, adjustments   entries of each type
--   units, credits, usd             net (credit_ledger_net)
--   jobs                            jobs billed, net of refunds
--   refund_credits, refund_usd      what the refunds gave back (positive)
--   adjustment_credits              the adjustments' signed sum
--   failures                        jobs that ended 'failed' (from jobs)
CREATE OR REPLACE VIEW billing_daily WITH (security_invoker = true) AS
WITH ledger AS (
    SELECT tenant_id, (job_accepted_at AT TIME ZONE 'UTC')::date AS day,
           kind, provider, model,
           count(*) FILTER (WHERE entry_type = 'charge') AS charges,
           count(*) FILTER (WHERE entry_type = 'refund') AS refunds,
           sum(units) AS units, sum(credits) AS credits, sum(usd) AS usd,
           sum(jobs) AS jobs,
           coalesce(-sum(credits) FILTER (WHERE entry_type = 'refund'), 0)
               AS refund_credits,
           coalesce(-sum(usd) FILTER (WHERE entry_type = 'refund'), 0)
               AS refund_usd,
           count(*) FILTER (WHERE entry_type = 'adjustment') AS adjustments,
           coalesce(sum(credits) FILTER (WHERE entry_type = 'adjustment'),
                    0) AS adjustment_credits,
           0::bigint AS failures
    FROM credit_ledger_net
    GROUP BY 1, 2, 3, 4, 5
), failed AS (
    SELECT tenant_id, (accepted_at AT TIME ZONE 'UTC')::date AS day,
           kind, provider, model, 0::bigint, 0::bigint, NULL::numeric,
           0::numeric, 0::numeric, 0::bigint, 0::numeric, 0::numeric,
           0::bigint, 0::numeric, count(*) AS failures
    FROM jobs
    WHERE state = 'failed'
    GROUP BY 1, 2, 3, 4, 5
)
SELECT tenant_id, day, kind, provider, model,
       sum(charges)::bigint AS charges,
       sum(refunds)::bigint AS refunds,
       sum(units) AS units,
       sum(credits) AS credits,
       sum(usd) AS usd,
       sum(jobs)::bigint AS jobs,
       sum(refund_credits) AS refund_credits,
       sum(refund_usd) AS refund_usd,
       sum(adjustments)::bigint AS adjustments,
       sum(adjustment_credits) AS adjustment_credits,
       sum(failures)::bigint AS failures
FROM (SELECT * FROM ledger UNION ALL SELECT * FROM failed) x
GROUP BY 1, 2, 3, 4, 5;

-- The same by calendar month (UTC).  A job's entries all fall on one day,
-- so summing days counts each job once.
CREATE OR REPLACE VIEW billing_monthly WITH (security_invoker = true) AS
SELECT tenant_id, date_trunc('month', day)::date AS month, kind, provider,
       model, sum(charges) AS charges, sum(refunds) AS refunds,
       sum(units) AS units, sum(credits) AS credits, sum(usd) AS usd,
       sum(jobs)::bigint AS jobs,
       sum(refund_credits) AS refund_credits,
       sum(refund_usd) AS refund_usd,
       sum(adjustments)::bigint AS adjustments,
       sum(adjustment_credits) AS adjustment_credits,
       sum(failures)::bigint AS failures
FROM billing_daily
GROUP BY 1, 2, 3, 4, 5;

ALTER VIEW job_outcomes SET (security_invoker = true);

-- What each job cost, net, with its state (jobs with ledger entries).
CREATE VIEW job_costs WITH (security_invoker = true) AS
SELECT l.job_id, l.tenant_id, l.kind, j.state, j.provider, j.model,
       l.accepted_at, l.charges, l.refunds, l.adjustments,
       l.charged_credits, l.refunded_credits, l.adjusted_credits,
       l.units, l.credits, l.usd
FROM (SELECT job_id, min(tenant_id) AS tenant_id, min(kind) AS kind,
             min(job_accepted_at) AS accepted_at,
             count(*) FILTER (WHERE entry_type = 'charge') AS charges,
             count(*) FILTER (WHERE entry_type = 'refund') AS refunds,
             count(*) FILTER (WHERE entry_type = 'adjustment')
                 AS adjustments,
             coalesce(sum(credits) FILTER (WHERE entry_type = 'charge'), 0)
                 AS charged_credits,
             coalesce(-sum(credits) FILTER (WHERE entry_type = 'refund'), 0)
                 AS refunded_credits,
             coalesce(sum(credits) FILTER (WHERE entry_type = 'adjustment'),
                      0) AS adjusted_credits,
             sum(units) AS units, sum(credits) AS credits, sum(usd) AS usd
      FROM credit_ledger_net
      GROUP BY job_id) l
LEFT JOIN jobs j ON j.job_id = l.job_id;

-- Free-quota units (provider_quota) and results name the same units
-- differently: 'tokens' / '1k_tokens', 'images' / 'image', ...
CREATE FUNCTION genq_unit_norm(u text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN u IN ('token', 'tokens', '1k_tokens') THEN 'tokens'
        WHEN u IN ('image', 'images') THEN 'image'
        WHEN u IN ('second', 'seconds') THEN 'second'
        WHEN u IN ('character', 'characters', 'chars') THEN 'character'
        WHEN u IN ('request', 'requests') THEN 'request'
        ELSE u END
$$;

-- Provider usage per quota period against the free quota, and spend.
-- One row per provider, quota (unit, period, time zone) and period: the
-- quota's own periods where provider_quota has one (period_start is the
-- local date in its time zone; NULL for period 'none'), else calendar
-- months in UTC in the provider's result units.
--   used          results' units of the quota's unit (tokens: in + out),
--                 or provider calls (attempts) for unit 'requests'
--   quota_limit   summed over the provider's keys, or the provider-wide
--                 row (key_id '') when there is one; NULL: no quota
--   remaining     quota_limit - used
--   counter_used  provider_quota.used, the workers' live counter, on the
--                 current period's row only
--   requests      provider calls;  credits, usd  net ledger spend
-- Times: a result's and an entry's created_at, an attempt's started_at.
CREATE VIEW provider_quota_usage WITH (security_invoker = true) AS
WITH ev AS (
    SELECT provider, created_at AS at, genq_unit_norm(unit) AS unit,
           units AS amount, 0::numeric AS credits, 0::numeric AS usd
    FROM results
    UNION ALL
    SELECT provider, started_at, 'request', 1, 0, 0
    FROM attempts
    UNION ALL
    SELECT provider, created_at, genq_unit_norm(unit), 0, credits, usd
    FROM credit_ledger_net
    WHERE provider IS NOT NULL
), q AS (
    SELECT provider, unit, period, time_zone,
           CASE WHEN bool_or(key_id = '')
                THEN sum(quota_limit) FILTER (WHERE key_id = '')
                ELSE sum(quota_limit) END AS quota_limit,
           CASE WHEN bool_or(key_id = '')
                THEN sum(used) FILTER (WHERE key_id = '')
                ELSE sum(used) END AS counter_used
    FROM provider_quota
    GROUP BY provider, unit, period, time_zone
), m AS (
    SELECT provider, unit, genq_unit_norm(unit) AS nunit, period,
           time_zone, quota_limit, counter_used
    FROM q
    UNION ALL
    SELECT DISTINCT e.provider, e.unit, e.unit, 'month', 'UTC',
           NULL::numeric, NULL::numeric
    FROM ev e
    WHERE e.unit <> 'request'
      AND NOT EXISTS (SELECT 1 FROM q WHERE q.provider = e.provider)
), b AS (
    SELECT m.*, e.unit AS eunit, e.amount, e.credits, e.usd,
           CASE WHEN m.period IN ('day', 'month') THEN
                date_trunc(m.period, coalesce(e.at, now())
                           AT TIME ZONE m.time_zone)::date END
               AS period_start,
           CASE WHEN m.period IN ('day', 'month') THEN
                date_trunc(m.period, now() AT TIME ZONE m.time_zone)::date
           END AS current_start
    FROM m
    LEFT JOIN ev e ON e.provider = m.provider
)
SELECT provider, unit, period, time_zone, period_start,
       coalesce(sum(amount) FILTER (WHERE eunit = nunit), 0) AS used,
       quota_limit,
       quota_limit - coalesce(sum(amount) FILTER (WHERE eunit = nunit), 0)
           AS remaining,
       CASE WHEN period_start IS NOT DISTINCT FROM current_start
            THEN counter_used END AS counter_used,
       count(*) FILTER (WHERE eunit = 'request') AS requests,
       coalesce(sum(credits), 0) AS credits,
       coalesce(sum(usd), 0) AS usd
FROM b
GROUP BY provider, unit, period, time_zone, period_start, current_start,
         quota_limit, counter_used;

-- ---- row-level security ---------------------------------------------------

CREATE TABLE tenant_reporters (
    role_name   name PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_reporters_tenant ON tenant_reporters (tenant_id);

-- A reporter sees its own mapping only (the policies below read it with
-- the reporter's rights).
ALTER TABLE tenant_reporters ENABLE ROW LEVEL SECURITY;
CREATE POLICY reporter_self ON tenant_reporters FOR SELECT
    TO genq_reporting USING (role_name = current_user);

-- Each policy below lets a member of genq_reporting read its tenant's
-- rows, and nothing else; it has no other policy, so it can write
-- nothing (it has no write grant either).  The subquery is uncorrelated:
-- evaluated once per query.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reporter ON tenants FOR SELECT TO genq_reporting
    USING (tenant_id = (SELECT r.tenant_id FROM tenant_reporters r
                        WHERE r.role_name = current_user));

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reporter ON jobs FOR SELECT TO genq_reporting
    USING (tenant_id = (SELECT r.tenant_id FROM tenant_reporters r
                        WHERE r.role_name = current_user));

ALTER TABLE credit_ledger ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reporter ON credit_ledger FOR SELECT
    TO genq_reporting
    USING (tenant_id = (SELECT r.tenant_id FROM tenant_reporters r
                        WHERE r.role_name = current_user));

ALTER TABLE tenant_spend ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reporter ON tenant_spend FOR SELECT
    TO genq_reporting
    USING (tenant_id = (SELECT r.tenant_id FROM tenant_reporters r
                        WHERE r.role_name = current_user));

-- Tables without a tenant column: through their job's tenant.
ALTER TABLE attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reporter ON attempts FOR SELECT TO genq_reporting
    USING (job_id IN (SELECT j.job_id FROM jobs j WHERE j.tenant_id =
                      (SELECT r.tenant_id FROM tenant_reporters r
                       WHERE r.role_name = current_user)));

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reporter ON tasks FOR SELECT TO genq_reporting
    USING (job_id IN (SELECT j.job_id FROM jobs j WHERE j.tenant_id =
                      (SELECT r.tenant_id FROM tenant_reporters r
                       WHERE r.role_name = current_user)));

ALTER TABLE results ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reporter ON results FOR SELECT TO genq_reporting
    USING (job_id IN (SELECT j.job_id FROM jobs j WHERE j.tenant_id =
                      (SELECT r.tenant_id FROM tenant_reporters r
                       WHERE r.role_name = current_user)));

-- Read access for reporters.  Not provider_quota nor
-- provider_quota_usage: free quotas are shared by every tenant (operator
-- data).  Ledger partitions get no grant: reporters read credit_ledger,
-- whose policy applies; a partition read directly would bypass it.
DO $$
BEGIN
    -- The schema the tables are in (name lookup needs USAGE; a public
    -- schema re-created by hand grants it to nobody).
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO genq_reporting',
                   current_schema());
END $$;
GRANT SELECT ON tenants, jobs, attempts, tasks, results, credit_ledger,
    tenant_spend, tenant_reporters, credit_ledger_net, billing_daily,
    billing_monthly, job_outcomes, job_costs TO genq_reporting;

-- ---- reconciliation -------------------------------------------------------

-- A price snapshot field is usable: absent or JSON null (the price
-- functions read it as 0), or a plain decimal number.
CREATE FUNCTION genq_snapshot_num_ok(s text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT s IS NULL
           OR s ~ ('^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)'
                   '([eE][+-]?[0-9]{1,3})?\s*$')
$$;

-- A snapshot genq_price_credits/genq_price_usd (migration 0002) can
-- compute with: an object with a non-zero `per` and numeric prices.  A
-- snapshot that is not cannot be recomputed, and is reported rather than
-- stopping the check with an error.
CREATE FUNCTION genq_snapshot_ok(p jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN jsonb_typeof(p) IS DISTINCT FROM 'object'
             OR p->>'per' IS NULL OR NOT genq_snapshot_num_ok(p->>'per')
            THEN false
        ELSE (p->>'per')::numeric <> 0
             AND genq_snapshot_num_ok(p->>'input_credits')
             AND genq_snapshot_num_ok(p->>'output_credits')
             AND genq_snapshot_num_ok(p->>'unit_credits')
             AND genq_snapshot_num_ok(p->>'input_usd')
             AND genq_snapshot_num_ok(p->>'output_usd')
             AND genq_snapshot_num_ok(p->>'unit_usd')
        END
$$;

-- Ledger entries that do not reconcile, one row each, with a problem:
--   charge_mismatch        a charge's credits or usd differ from its price
--                          snapshot applied to its usage: tokens from the
--                          job's results row, natural units from the
--                          entry's units
--   adjustment_mismatch    an adjustment differs from the same
--                          recomputation minus what the job's charge and
--                          refund left (computed_* are that difference)
--   usage_unknown          cannot be recomputed: a snapshot that is not
--                          usable, or a token charge without a results
--                          row whose input and output prices differ
--   refund_mismatch        a refund whose credits or usd differ from its
--                          charge's (computed_* are the charge's)
--   refund_without_charge  a refund with no charge of the same job
--   duplicate_charge       more than one charge not refunded (stored_* are
--                          the charges net of refunds, computed_* one)
--   failed_job_charged     a failed, rejected or cancelled job whose net
--                          is not zero (stored_* the net, computed_* 0)
CREATE FUNCTION genq_reconcile()
RETURNS TABLE (job_id text, entry_type text, stored_credits numeric,
               computed_credits numeric, stored_usd numeric,
               computed_usd numeric, problem text)
LANGUAGE sql STABLE AS $$
    WITH priced AS (
        SELECT l.job_id, l.entry_type, l.credits, l.usd, l.job_accepted_at,
               CASE WHEN u.ok THEN genq_price_credits(l.price_snapshot,
                                                      u.tin, u.tout, u.nat)
               END AS c_credits,
               CASE WHEN u.ok THEN genq_price_usd(l.price_snapshot, u.tin,
                                                  u.tout, u.nat)
               END AS c_usd
        FROM credit_ledger l
        LEFT JOIN results r ON r.job_id = l.job_id
        CROSS JOIN LATERAL (SELECT
            genq_snapshot_ok(l.price_snapshot) AS snap_ok,
            l.unit IS NOT DISTINCT FROM 'tokens' AS tok,
            r.job_id IS NOT NULL AS has_r) f
        -- A token entry without results: its units can be priced only
        -- if input and output cost the same.
        CROSS JOIN LATERAL (SELECT CASE
            WHEN f.snap_ok AND f.tok AND NOT f.has_r THEN
                coalesce((l.price_snapshot->>'input_credits')::numeric, 0)
                = coalesce((l.price_snapshot->>'output_credits')::numeric, 0)
                AND coalesce((l.price_snapshot->>'input_usd')::numeric, 0)
                    = coalesce((l.price_snapshot->>'output_usd')::numeric, 0)
            END AS flat) g
        CROSS JOIN LATERAL (SELECT
            CASE WHEN f.has_r THEN r.input_tokens
                 WHEN f.tok THEN l.units::bigint END AS tin,
            CASE WHEN f.has_r THEN r.output_tokens END AS tout,
            CASE WHEN NOT f.tok THEN l.units END AS nat,
            f.snap_ok AND (NOT f.tok OR f.has_r OR g.flat) AS ok) u
        WHERE l.entry_type IN ('charge', 'adjustment')
    ), held AS (
        SELECT c.job_id, c.job_accepted_at,
               sum(CASE WHEN c.entry_type = 'refund' THEN -c.credits
                        ELSE c.credits END) AS credits,
               sum(CASE WHEN c.entry_type = 'refund' THEN -c.usd
                        ELSE c.usd END) AS usd
        FROM credit_ledger c
        WHERE c.entry_type IN ('charge', 'refund')
        GROUP BY 1, 2
    ), expect AS (
        SELECT p.job_id, p.entry_type, p.credits, p.usd,
               CASE WHEN p.entry_type = 'charge' THEN p.c_credits
                    ELSE p.c_credits - coalesce(h.credits, 0) END
                   AS c_credits,
               CASE WHEN p.entry_type = 'charge' THEN p.c_usd
                    ELSE p.c_usd - coalesce(h.usd, 0) END AS c_usd
        FROM priced p
        LEFT JOIN held h ON h.job_id = p.job_id
                        AND h.job_accepted_at = p.job_accepted_at
                        AND p.entry_type = 'adjustment'
    ), refund AS (
        SELECT l.job_id, l.credits, l.usd, c.credits AS c_credits,
               c.usd AS c_usd, c.job_id IS NOT NULL AS has_charge
        FROM credit_ledger l
        LEFT JOIN credit_ledger c
               ON c.job_id = l.job_id AND c.entry_type = 'charge'
              AND c.job_accepted_at = l.job_accepted_at
        WHERE l.entry_type = 'refund'
    ), per_job AS (
        SELECT l.job_id,
               count(*) FILTER (WHERE l.entry_type = 'charge')
               - count(*) FILTER (WHERE l.entry_type = 'refund') AS held,
               sum(CASE WHEN l.entry_type = 'refund' THEN -l.credits
                        ELSE l.credits END)
                   FILTER (WHERE l.entry_type <> 'adjustment')
                   AS held_credits,
               sum(CASE WHEN l.entry_type = 'refund' THEN -l.usd
                        ELSE l.usd END)
                   FILTER (WHERE l.entry_type <> 'adjustment') AS held_usd,
               max(l.credits) FILTER (WHERE l.entry_type = 'charge')
                   AS one_credits,
               max(l.usd) FILTER (WHERE l.entry_type = 'charge') AS one_usd,
               sum(CASE WHEN l.entry_type = 'refund' THEN -l.credits
                        ELSE l.credits END) AS net_credits,
               sum(CASE WHEN l.entry_type = 'refund' THEN -l.usd
                        ELSE l.usd END) AS net_usd
        FROM credit_ledger l
        GROUP BY l.job_id
    )
    SELECT job_id, entry_type, credits, c_credits, usd, c_usd,
           CASE WHEN c_credits IS NULL OR c_usd IS NULL
                THEN 'usage_unknown'
                ELSE entry_type || '_mismatch' END
    FROM expect
    WHERE credits IS DISTINCT FROM c_credits OR usd IS DISTINCT FROM c_usd
    UNION ALL
    SELECT job_id, 'refund', credits, c_credits, usd, c_usd,
           CASE WHEN has_charge THEN 'refund_mismatch'
                ELSE 'refund_without_charge' END
    FROM refund
    WHERE NOT has_charge OR credits IS DISTINCT FROM c_credits
          OR usd IS DISTINCT FROM c_usd
    UNION ALL
    SELECT job_id, 'charge', held_credits, one_credits, held_usd, one_usd,
           'duplicate_charge'
    FROM per_job
    WHERE held > 1
    UNION ALL
    SELECT p.job_id, 'charge', p.net_credits, 0, p.net_usd, 0,
           'failed_job_charged'
    FROM per_job p
    JOIN jobs j ON j.job_id = p.job_id
    WHERE j.state IN ('failed', 'rejected', 'cancelled')
      AND (p.net_credits <> 0 OR p.net_usd <> 0)
    ORDER BY 1, 2, 7
$$;

-- ---- retention ------------------------------------------------------------

-- Monthly ledger partitions that end on or before \p cutoff (00:00 UTC of
-- that date), oldest first, with their ranges and entries.  Never the
-- default partition.
CREATE FUNCTION genq_ledger_partitions_before(cutoff date)
RETURNS TABLE (partition regclass, range_from timestamptz,
               range_to timestamptz, entries bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT c.oid::regclass AS rel,
               substring(b.bound FROM 'FROM \(''([^'']*)''\)')::timestamptz
                   AS lo,
               substring(b.bound FROM 'TO \(''([^'']*)''\)')::timestamptz
                   AS hi
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid)
                                AS bound) b
        WHERE i.inhparent = 'credit_ledger'::regclass
          AND b.bound <> 'DEFAULT'
        ORDER BY 3, 1
    LOOP
        CONTINUE WHEN p.hi IS NULL
                      OR p.hi > (cutoff::timestamp AT TIME ZONE 'UTC');
        partition := p.rel;
        range_from := p.lo;
        range_to := p.hi;
        EXECUTE format('SELECT count(*) FROM %s', p.rel) INTO entries;
        RETURN NEXT;
    END LOOP;
END $$;

-- Detach and drop the ledger partitions entirely before \p cutoff;
-- returns the names dropped.  The month being written is never dropped:
-- a cutoff after the start of the current month (UTC) is refused.
CREATE FUNCTION genq_drop_ledger_before(cutoff date)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    p     record;
    name  text;
BEGIN
    IF cutoff IS NULL OR cutoff > date_trunc('month', now() AT TIME ZONE
                                                      'UTC')::date THEN
        RAISE EXCEPTION 'genq_drop_ledger_before: cutoff % is after the '
                        'start of the current month', cutoff;
    END IF;
    FOR p IN SELECT * FROM genq_ledger_partitions_before(cutoff) LOOP
        name := p.partition::text;
        EXECUTE format('ALTER TABLE credit_ledger DETACH PARTITION %s',
                       name);
        EXECUTE format('DROP TABLE %s', name);
        RETURN NEXT name;
    END LOOP;
END $$;

REVOKE EXECUTE ON FUNCTION genq_drop_ledger_before(date) FROM PUBLIC;
