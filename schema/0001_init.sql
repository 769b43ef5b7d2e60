-- genq schema, migration 0001: the tables every later part builds on.
--
-- PostgreSQL holds the truth about jobs; Kafka only carries them in.
-- Applied by `genq migrate` (and by each worker at start) inside one
-- transaction under an advisory lock, so two workers starting at once
-- cannot both apply it.

CREATE TABLE tenants (
    tenant_id      text PRIMARY KEY,
    display_name   text,
    -- Credit budget per period; NULL = unlimited (billing issue).
    credit_budget  numeric(20, 6),
    budget_period  text CHECK (budget_period IN ('day', 'month')),
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
    job_id         text PRIMARY KEY,       -- the producer's idempotency key
    tenant_id      text NOT NULL REFERENCES tenants,
    kind           text NOT NULL
                   CHECK (kind IN ('chat', 'image', 'video', 'stt', 'tts')),
    -- queued: accepted, not yet leased; running: leased by lease_owner;
    -- polling: async provider task in flight (tasks row);
    -- succeeded / failed / rejected / cancelled: final.
    state          text NOT NULL DEFAULT 'queued'
                   CHECK (state IN ('queued', 'running', 'polling',
                                    'succeeded', 'failed', 'rejected',
                                    'cancelled')),
    priority       int NOT NULL DEFAULT 0,
    route          text,
    payload        bytea,                  -- the encoded genq.v1.Job
    metadata       jsonb,
    source_topic   text,
    source_partition int,
    source_offset  bigint,
    lease_owner    text,                   -- worker id holding the job
    lease_until    timestamptz,            -- lease expiry; then re-drivable
    attempts       int NOT NULL DEFAULT 0, -- provider calls made
    runs           int NOT NULL DEFAULT 0, -- times a worker took the lease
    provider       text,                   -- provider that served it
    model          text,
    error_class    text,                   -- outcome class of the failure
    error          text,                   -- reason, human readable
    created_at     timestamptz NOT NULL,   -- producer's created_at
    accepted_at    timestamptz NOT NULL DEFAULT now(),
    deadline       timestamptz,
    started_at     timestamptz,
    finished_at    timestamptz,
    billing_note   text,                   -- why a finished job has no
                                           -- charge (usage unknown, ...)
    CHECK ((state IN ('succeeded', 'failed', 'rejected', 'cancelled'))
           = (finished_at IS NOT NULL))
);
-- Recovery sweeps look for expired leases on unfinished jobs.
CREATE INDEX jobs_unfinished_lease ON jobs (lease_until)
    WHERE state IN ('queued', 'running', 'polling');
CREATE INDEX jobs_tenant_time ON jobs (tenant_id, accepted_at);

-- One row per provider call.
CREATE TABLE attempts (
    attempt_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id         text NOT NULL REFERENCES jobs ON DELETE CASCADE,
    attempt_no     int NOT NULL,           -- 1.. within the job's run
    provider       text NOT NULL,
    key_id         text,                   -- the key's name, never the key
    model          text,
    http_status    int,                    -- NULL: no response
    outcome        text NOT NULL
                   CHECK (outcome IN ('success', 'retry_later',
                                      'fallback_next', 'fatal_job',
                                      'key_disabled', 'quota_exhausted')),
    error          text,
    latency_ms     int NOT NULL,
    worker         text NOT NULL,
    started_at     timestamptz NOT NULL
);
CREATE INDEX attempts_job ON attempts (job_id);
CREATE INDEX attempts_provider_time ON attempts (provider, started_at);

-- Async provider tasks (video, and image/stt providers with task ids).
CREATE TABLE tasks (
    task_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id         text NOT NULL REFERENCES jobs ON DELETE CASCADE,
    provider       text NOT NULL,
    key_id         text,
    provider_task_id text,                 -- NULL while the submit is unknown
    state          text NOT NULL DEFAULT 'submitted'
                   CHECK (state IN ('submitted', 'polling', 'succeeded',
                                    'failed', 'timed_out', 'unknown',
                                    'cancelled')),
    submitted_at   timestamptz NOT NULL DEFAULT now(),
    next_poll_at   timestamptz NOT NULL DEFAULT now(),
    polls          int NOT NULL DEFAULT 0,
    lease_owner    text,
    lease_until    timestamptz,
    provider_state text,                   -- the provider's own status word
    error          text,
    finished_at    timestamptz,
    UNIQUE (provider, provider_task_id)
);
CREATE INDEX tasks_due ON tasks (next_poll_at)
    WHERE state IN ('submitted', 'polling', 'unknown');
CREATE INDEX tasks_job ON tasks (job_id);

CREATE TABLE results (
    job_id         text PRIMARY KEY REFERENCES jobs ON DELETE CASCADE,
    provider       text NOT NULL,
    model          text,
    content_type   text,                   -- text/plain, image/png, ...
    text_content   text,                   -- chat reply, transcript
    data           bytea,                  -- inline binary, size-limited
    data_bytes     bigint,                 -- size of the inline media made,
                                           -- stored or not
    urls           text[],                 -- media URLs as given
    finish_reason  text,
    -- Usage in the kind's natural unit (tokens, images, seconds, chars).
    input_tokens   bigint,
    output_tokens  bigint,
    units          numeric(20, 6),
    unit           text,
    usage          jsonb,                  -- the provider's own usage object
    provider_cost  text,                   -- provider-reported cost (e.g.
                                           -- KIE credits), as reported
    note           text,                   -- e.g. media over the size limit
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Append-only money.  Partitioned by month of the job's acceptance: the
-- partition key is job_accepted_at, copied from jobs.accepted_at, which
-- never changes for a job, so the primary key (job_id, entry_type,
-- job_accepted_at) is in effect unique per (job, entry type): a job is
-- charged once and refunded at most once, whatever is redelivered.
CREATE TABLE credit_ledger (
    entry_id        bigint GENERATED ALWAYS AS IDENTITY,
    job_id          text NOT NULL,
    tenant_id       text NOT NULL,
    entry_type      text NOT NULL
                    CHECK (entry_type IN ('charge', 'refund', 'adjustment')),
    credits         numeric(20, 6) NOT NULL,  -- tenant price (1 = 0.005 USD)
    usd             numeric(20, 8) NOT NULL,  -- our provider cost
    kind            text NOT NULL,
    provider        text,
    model           text,
    unit            text,
    units           numeric(20, 6),
    -- The price used, so reports can be recomputed and later price changes
    -- never rewrite history.
    price_snapshot  jsonb NOT NULL,
    provider_cost   numeric(20, 8),           -- provider-reported, if any
    job_accepted_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, entry_type, job_accepted_at)
) PARTITION BY RANGE (job_accepted_at);
CREATE INDEX credit_ledger_tenant_time
    ON credit_ledger (tenant_id, job_accepted_at);

-- Inserts never fail for want of a partition; genq_ensure_partitions()
-- makes the monthly ones ahead of time so the default stays empty.
CREATE TABLE credit_ledger_default PARTITION OF credit_ledger DEFAULT;

CREATE FUNCTION genq_ensure_partitions(around timestamptz, months int)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    m     int;
    lo    timestamptz;
    hi    timestamptz;
    name  text;
    made  int := 0;
BEGIN
    FOR m IN -1 .. months LOOP
        lo := date_trunc('month', around AT TIME ZONE 'UTC')
              AT TIME ZONE 'UTC' + make_interval(months => m);
        hi := lo + interval '1 month';
        name := format('credit_ledger_%s',
                       to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF credit_ledger '
                           'FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END $$;

SELECT genq_ensure_partitions(now(), 3);

-- Free quotas and their use, counted here so every worker shares them.
CREATE TABLE provider_quota (
    provider       text NOT NULL,
    key_id         text NOT NULL DEFAULT '',   -- '' = the whole provider
    unit           text NOT NULL,              -- requests, tokens, images...
    period         text NOT NULL CHECK (period IN ('day', 'month', 'none')),
    time_zone      text NOT NULL DEFAULT 'UTC',
    quota_limit    numeric(20, 6) NOT NULL,
    used           numeric(20, 6) NOT NULL DEFAULT 0,
    period_start   timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, key_id, unit),
    CHECK (used >= 0)
);

-- First billing views: credits by tenant, day, kind, provider and model.
CREATE VIEW billing_daily AS
SELECT l.tenant_id,
       (l.job_accepted_at AT TIME ZONE 'UTC')::date AS day,
       l.kind, l.provider, l.model,
       count(*) FILTER (WHERE l.entry_type = 'charge')  AS charges,
       count(*) FILTER (WHERE l.entry_type = 'refund')  AS refunds,
       sum(l.units) FILTER (WHERE l.entry_type = 'charge') AS units,
       sum(CASE WHEN l.entry_type = 'refund' THEN -abs(l.credits)
                ELSE l.credits END)                     AS credits,
       sum(CASE WHEN l.entry_type = 'refund' THEN -abs(l.usd)
                ELSE l.usd END)                         AS usd
FROM credit_ledger l
GROUP BY 1, 2, 3, 4, 5;

CREATE VIEW billing_monthly AS
SELECT tenant_id, date_trunc('month', day)::date AS month, kind, provider,
       model, sum(charges) AS charges, sum(refunds) AS refunds,
       sum(units) AS units, sum(credits) AS credits, sum(usd) AS usd
FROM billing_daily
GROUP BY 1, 2, 3, 4, 5;

-- Job outcomes per tenant and kind, for the failure side of reports.
CREATE VIEW job_outcomes AS
SELECT tenant_id, kind, state, count(*) AS jobs,
       min(accepted_at) AS first_at, max(finished_at) AS last_at
FROM jobs
GROUP BY 1, 2, 3;
