-- genq schema, migration 0002: budgets.
--
-- A tenant may have a credit budget per period (tenants.credit_budget,
-- budget_period 'day' or 'month', in UTC).  Before a job runs, its
-- estimated cost is reserved in tenant_spend with one conditional UPDATE
-- (the row lock serializes every worker: no check-then-act race); on
-- finish the reservation is released and the real net cost added to
-- spent.  The reservation is recorded on the job row, so a job re-driven
-- by another worker never reserves twice, and a finish releases exactly
-- what was reserved.

CREATE TABLE tenant_spend (
    tenant_id     text NOT NULL REFERENCES tenants,
    period_start  timestamptz NOT NULL,   -- UTC midnight or 1st of month
    spent         numeric(20, 6) NOT NULL DEFAULT 0,  -- settled credits
    reserved      numeric(20, 6) NOT NULL DEFAULT 0,  -- held for running jobs
    PRIMARY KEY (tenant_id, period_start),
    CHECK (reserved >= 0)
);

ALTER TABLE jobs
    ADD COLUMN reserved_credits numeric(20, 6),  -- NULL: nothing reserved
    ADD COLUMN reserved_period  timestamptz;     -- tenant_spend row it is in

-- The start of the budget period containing \p at, in UTC.
CREATE FUNCTION genq_period_start(period text, at timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT date_trunc(CASE WHEN period = 'day' THEN 'day' ELSE 'month' END,
                      at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

-- What a usage costs at a price snapshot (the price_snapshot stored with
-- each ledger entry): tokens at the per-`per` token prices plus natural
-- units at the unit price, rounded to the ledger's scale.  The worker
-- charges with these and `genq report --reconcile` recomputes with them.
CREATE FUNCTION genq_price_credits(p jsonb, in_tokens bigint,
                                   out_tokens bigint, units numeric)
RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT round((coalesce(in_tokens, 0) *
                  coalesce((p->>'input_credits')::numeric, 0) +
                  coalesce(out_tokens, 0) *
                  coalesce((p->>'output_credits')::numeric, 0)) /
                 (p->>'per')::numeric +
                 coalesce(units, 0) *
                 coalesce((p->>'unit_credits')::numeric, 0), 6)
$$;

CREATE FUNCTION genq_price_usd(p jsonb, in_tokens bigint,
                               out_tokens bigint, units numeric)
RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT round((coalesce(in_tokens, 0) *
                  coalesce((p->>'input_usd')::numeric, 0) +
                  coalesce(out_tokens, 0) *
                  coalesce((p->>'output_usd')::numeric, 0)) /
                 (p->>'per')::numeric +
                 coalesce(units, 0) *
                 coalesce((p->>'unit_usd')::numeric, 0), 8)
$$;
