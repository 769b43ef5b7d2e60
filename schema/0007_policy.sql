-- genq schema, migration 0007: limits that hold across every worker.
--
-- Concurrency caps, requests- and tokens-per-minute limits and free quotas
-- must hold for all worker processes on all hosts together (DESIGN.md
-- section 4): N processes must not send N times the limit.  So the state
-- lives here and a worker asks before each provider call, in one round
-- trip (autocommit):
--
--   SELECT ok, reason, wait_ms
--   FROM genq_admit(provider, key_id, holder, cap, rpm, tpm, tokens,
--                   quota_unit, quota_n, lease_s);
--   ... the provider call ...
--   SELECT genq_release(provider, key_id, holder, actual_tokens);
--   SELECT genq_quota_adjust(provider, key_id, unit, delta);  -- if needed
--
-- The limits themselves (cap, rpm, tpm, lease) come from the caller's
-- configuration on every call; only the state is shared.  A value <= 0 or
-- NULL means "no limit" for cap, rpm and tpm.
--
-- Why this is correct under concurrency
-- -------------------------------------
-- * One lock per (provider, key).  genq_admit first locks the key's row in
--   provider_limits (SELECT ... FOR UPDATE; the row is created on first use
--   with INSERT ... ON CONFLICT DO NOTHING, so two first callers cannot
--   both create it, and the loser waits for the winner's commit).  Every
--   admission and release for that key, from any process on any host,
--   runs one at a time, and the decision (count slots, count the window,
--   check the quota) and the recording (slot, log entry, quota use) happen
--   in the same transaction before the lock is released at commit: there
--   is no check-then-act race.
-- * Fresh reads after the lock.  Under READ COMMITTED every statement of
--   a (volatile) PL/pgSQL function takes a new snapshot, so once the lock
--   is ours we see everything the previous holders committed.  Under
--   REPEATABLE READ or SERIALIZABLE the snapshot would predate the lock and
--   we could miss a grant, so genq_admit refuses to run there.
-- * One time, read after the lock.  t = genq_policy_clock() (the server's
--   clock_timestamp() plus the policy clock's offset) is read once, after
--   the lock is held.  Grants of one key are therefore stamped with
--   non-decreasing times in the order they were serialised, which is what
--   makes the sliding window below exact.  (genq_policy_now() is the same
--   clock at the transaction's start, now(); it would stamp a caller that
--   waited for the lock with a time before its predecessor's.)  Leases,
--   the rate window and quota periods all use t: one clock, one offset.
-- * Concurrency cap.  A slot is a row in provider_slots with a lease;
--   rows whose lease passed (a dead or hung worker's) are deleted by the
--   next admission.  Grant iff live slots of other holders < cap.  A holder
--   has at most one slot per key: admitting again while holding one (a
--   retry of the same call) replaces it instead of taking a second.
--   Choose lease_s >= the call's timeout: a live call outliving its lease
--   loses its slot.
-- * Requests and tokens per minute: an exact sliding window.  Each grant
--   is logged in provider_rate_log with its time and token estimate;
--   grant iff the entries in (t - 60 s, oo) number < rpm and their tokens
--   plus this call's are <= tpm.  For any 60 s window W, take the entry of
--   W that was logged last: when it was admitted every other entry of W
--   was already there with a time > its own time - 60 s and was counted,
--   so W holds at most rpm entries (the count is not bounded above, so
--   this holds even if stamps were somewhat out of order).  A token bucket of size
--   rpm refilled at rpm per minute is NOT this: a full bucket can be
--   emptied at once and refilled within the same minute, letting 2 x rpm
--   requests through in one 60 s window, which providers that count a
--   trailing minute reject.  Entries older than 60 s are deleted as we go
--   (and entries more than 60 s in the future, which only exist if the
--   policy clock was moved back).  A single call estimated above tpm
--   alone is admitted only into a window holding no tokens (else it would
--   wait forever): the bound is then max(tpm, that call's tokens).
-- * Free quota (provider_quota).  The key's own row and the provider-wide
--   row (key_id '') are each charged with one conditional
--   UPDATE ... SET used = used + n WHERE used + n <= quota_limit, which
--   also resets used to 0 when the row's period is not the current one
--   (its time zone's day or month at t; DST-correct, see
--   genq_quota_period_start).  Rows are locked key row first, provider
--   row second, the same order everywhere (genq_quota_adjust too), and
--   the provider row's own row lock serialises the keys sharing it.
-- * All or nothing.  The cap and the window are checked before anything
--   is taken; the quota UPDATEs are the only steps that can fail after
--   something was taken, and if the provider row refuses after the key
--   row was charged, the key row's charge is taken back in the same
--   transaction while we still hold its lock, so nobody ever sees it.
--   A denial takes no slot, no log entry and no quota (it may still
--   delete expired slots and old log entries: housekeeping).
-- * No deadlocks: every function locks in the order provider_limits(p, k)
--   -> provider_slots / provider_rate_log rows of (p, k) ->
--   provider_quota(p, k, unit) -> provider_quota(p, '', unit).
--
-- Overrides all workers obey: provider_overrides (operator: disable or
-- reorder providers and keys) and provider_key_state (a key disabled by
-- one worker after a 401/403 is skipped by all; delete the row to enable
-- it again).  Workers read both every few seconds with the one cheap
-- query
--   SELECT kind, provider, key_id, enabled, priority, reason, updated_at
--   FROM policy_state;
-- (two small tables, a handful of rows).

-- ---- the policy clock ---------------------------------------------------

-- One row: an offset added to the server's clock for every policy
-- decision, so tests (and an operator) can move time, e.g. past a quota's
-- local midnight.  0 in production.
CREATE TABLE policy_clock (
    one_row     boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    offset_s    double precision NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO policy_clock DEFAULT VALUES;

CREATE FUNCTION genq_policy_offset()
RETURNS interval LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT make_interval(secs => c.offset_s)
                     FROM policy_clock c), interval '0')
$$;

-- The policy time at the start of the transaction.
CREATE FUNCTION genq_policy_now()
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT now() + genq_policy_offset()
$$;

-- The policy time at this instant (what genq_admit stamps grants with).
CREATE FUNCTION genq_policy_clock()
RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
    SELECT clock_timestamp() + genq_policy_offset()
$$;

-- Milliseconds in an interval, rounded up.
CREATE FUNCTION genq_ms(i interval)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT ceil(extract(epoch FROM i) * 1000)::bigint
$$;

-- ---- quota periods ------------------------------------------------------

-- The start of the quota period ('day', 'month' or 'none') containing
-- \p at, in time zone \p tz: local midnight (of the 1st for 'month') as an
-- instant.  Truncating the local wall time and converting back is
-- DST-correct: a 23 or 25 hour day starts at its own local midnight, and
-- where midnight does not exist (DST starting at 00:00) at the first
-- instant of the day.  'none' never resets: -infinity.
CREATE FUNCTION genq_quota_period_start(period text, tz text, at timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE $1
        WHEN 'day'   THEN date_trunc('day', $3 AT TIME ZONE $2) AT TIME ZONE $2
        WHEN 'month' THEN date_trunc('month', $3 AT TIME ZONE $2) AT TIME ZONE $2
        WHEN 'none'  THEN '-infinity'::timestamptz
    END
$$;

-- The next reset after \p at: the start of the following period (local
-- date arithmetic, then back to an instant).  'none': infinity.
CREATE FUNCTION genq_quota_next_reset(period text, tz text, at timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE $1
        WHEN 'day'   THEN (date_trunc('day', $3 AT TIME ZONE $2)
                           + interval '1 day') AT TIME ZONE $2
        WHEN 'month' THEN (date_trunc('month', $3 AT TIME ZONE $2)
                           + interval '1 month') AT TIME ZONE $2
        WHEN 'none'  THEN 'infinity'::timestamptz
    END
$$;

-- ---- shared limit state -------------------------------------------------

-- One row per (provider, key) ever admitted: the lock that serialises
-- that key's admissions and releases.  key_id '' = a provider without a
-- key pool.
CREATE TABLE provider_limits (
    provider    text NOT NULL,
    key_id      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, key_id)
);

-- Calls in flight: one slot per holder (a worker's call, e.g.
-- "worker-id/job-id/attempt"), until released or its lease expires.
CREATE TABLE provider_slots (
    provider    text NOT NULL,
    key_id      text NOT NULL,
    holder      text NOT NULL,
    granted_at  timestamptz NOT NULL,      -- policy time
    expires_at  timestamptz NOT NULL,      -- policy time
    log_id      bigint,                    -- its provider_rate_log entry
    PRIMARY KEY (provider, key_id, holder)
);

-- Grants of the last minute, for the requests and tokens per minute
-- windows (older entries are deleted by the next admission of the key).
CREATE TABLE provider_rate_log (
    log_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text NOT NULL,
    key_id      text NOT NULL,
    holder      text NOT NULL,
    at          timestamptz NOT NULL,      -- policy time of the grant
    tokens      int NOT NULL DEFAULT 0     -- estimate; actual on release
);
CREATE INDEX provider_rate_log_window ON provider_rate_log (provider, key_id, at);

-- ---- admission ----------------------------------------------------------

-- Admit one provider call, or say why not and how long to wait.
--   cap         concurrent calls on this key (0: no cap)
--   rpm, tpm    requests / tokens per sliding minute (0: no limit)
--   tokens      this call's token estimate (for tpm)
--   quota_unit  provider_quota unit to charge (NULL: none)
--   quota_n     how much of it this call uses (NULL: none)
--   lease_s     how long the slot lives if never released (the call's
--               timeout plus a margin; NULL or <= 0: 300)
-- Returns one row:
--   ok true, reason NULL, wait_ms 0                       granted
--   ok false, 'concurrency', wait_ms 50..1000             cap reached
--   ok false, 'rpm' | 'tpm', wait_ms until the window has room
--   ok false, 'quota_exhausted', wait_ms until the quota's next reset
--                                 (NULL: period 'none', never)
-- wait_ms is bigint: a monthly reset can be more than 2^31 ms away.
CREATE FUNCTION genq_admit(provider text, key_id text, holder text,
                           cap int, rpm int, tpm int, tokens int,
                           quota_unit text, quota_n numeric, lease_s int)
RETURNS TABLE (ok boolean, reason text, wait_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
    -- Parameters copied under names no column has.
    v_p      text := genq_admit.provider;
    v_k      text := coalesce(genq_admit.key_id, '');
    v_h      text := genq_admit.holder;
    v_cap    int := coalesce(genq_admit.cap, 0);
    v_rpm    int := coalesce(genq_admit.rpm, 0);
    v_tpm    int := coalesce(genq_admit.tpm, 0);
    v_tok    int := greatest(coalesce(genq_admit.tokens, 0), 0);
    v_unit   text := genq_admit.quota_unit;
    v_n      numeric := greatest(round(genq_admit.quota_n, 6), 0);
    v_lease  int := CASE WHEN coalesce(genq_admit.lease_s, 0) > 0
                         THEN genq_admit.lease_s ELSE 300 END;
    t        timestamptz;
    v_live   int;
    v_first  timestamptz;
    v_cnt    int;
    v_sum    bigint;
    v_room   bigint;
    v_edge   timestamptz;
    v_keys   text[];
    v_kk     text;
    v_done   text[] := '{}';
    q        record;
    v_ps     timestamptz;
    v_next   timestamptz;
    v_log    bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'genq_admit must run under READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    IF v_p IS NULL OR v_h IS NULL THEN
        RAISE EXCEPTION 'genq_admit: provider and holder are required';
    END IF;

    -- The key's lock (made on first use).
    PERFORM 1 FROM provider_limits l
     WHERE l.provider = v_p AND l.key_id = v_k FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO provider_limits AS l (provider, key_id)
        VALUES (v_p, v_k)
        ON CONFLICT ON CONSTRAINT provider_limits_pkey DO NOTHING;
        PERFORM 1 FROM provider_limits l
         WHERE l.provider = v_p AND l.key_id = v_k FOR UPDATE;
    END IF;
    t := genq_policy_clock();

    -- Concurrency: reclaim expired slots, count the live ones.
    DELETE FROM provider_slots s
     WHERE s.provider = v_p AND s.key_id = v_k AND s.expires_at <= t;
    IF v_cap > 0 THEN
        SELECT count(*), min(s.expires_at) INTO v_live, v_first
          FROM provider_slots s
         WHERE s.provider = v_p AND s.key_id = v_k AND s.holder <> v_h;
        IF v_live >= v_cap THEN
            ok := false; reason := 'concurrency';
            wait_ms := least(greatest(genq_ms(v_first - t), 50), 1000);
            RETURN NEXT; RETURN;
        END IF;
    END IF;

    -- The sliding minute.
    DELETE FROM provider_rate_log r
     WHERE r.provider = v_p AND r.key_id = v_k
       AND (r.at <= t - interval '60 s' OR r.at > t + interval '60 s');
    IF v_rpm > 0 OR v_tpm > 0 THEN
        SELECT count(*), coalesce(sum(r.tokens), 0) INTO v_cnt, v_sum
          FROM provider_rate_log r
         WHERE r.provider = v_p AND r.key_id = v_k
           AND r.at > t - interval '60 s';
        IF v_rpm > 0 AND v_cnt >= v_rpm THEN
            -- Room when the (cnt - rpm + 1)-th oldest entry leaves.
            SELECT r.at INTO v_edge FROM provider_rate_log r
             WHERE r.provider = v_p AND r.key_id = v_k
               AND r.at > t - interval '60 s'
             ORDER BY r.at, r.log_id OFFSET v_cnt - v_rpm LIMIT 1;
            ok := false; reason := 'rpm';
            wait_ms := greatest(genq_ms(v_edge + interval '60 s' - t), 1);
            RETURN NEXT; RETURN;
        END IF;
        v_room := greatest(v_tpm - v_tok, 0);
        IF v_tpm > 0 AND v_sum > v_room THEN
            -- Room when enough of the oldest entries have left.
            SELECT w.at INTO v_edge FROM (
                SELECT r.at, r.log_id,
                       v_sum - sum(r.tokens) OVER (ORDER BY r.at, r.log_id)
                           AS rest
                  FROM provider_rate_log r
                 WHERE r.provider = v_p AND r.key_id = v_k
                   AND r.at > t - interval '60 s') w
             WHERE w.rest <= v_room
             ORDER BY w.at, w.log_id LIMIT 1;
            ok := false; reason := 'tpm';
            wait_ms := greatest(genq_ms(v_edge + interval '60 s' - t), 1);
            RETURN NEXT; RETURN;
        END IF;
    END IF;

    -- Free quota: the key's row, then the provider-wide row.
    IF v_unit IS NOT NULL AND v_n IS NOT NULL THEN
        v_keys := CASE WHEN v_k = '' THEN ARRAY['']
                       ELSE ARRAY[v_k, ''] END;
        FOREACH v_kk IN ARRAY v_keys LOOP
            SELECT qq.period, qq.time_zone INTO q FROM provider_quota qq
             WHERE qq.provider = v_p AND qq.key_id = v_kk
               AND qq.unit = v_unit
               FOR UPDATE;
            CONTINUE WHEN NOT FOUND;
            v_ps := genq_quota_period_start(q.period, q.time_zone, t);
            UPDATE provider_quota qq
               SET used = CASE WHEN genq_quota_period_start(
                                        qq.period, qq.time_zone,
                                        qq.period_start) = v_ps
                               THEN qq.used ELSE 0 END + v_n,
                   period_start = v_ps, updated_at = now()
             WHERE qq.provider = v_p AND qq.key_id = v_kk
               AND qq.unit = v_unit
               AND CASE WHEN genq_quota_period_start(
                                 qq.period, qq.time_zone,
                                 qq.period_start) = v_ps
                        THEN qq.used ELSE 0 END + v_n <= qq.quota_limit;
            IF NOT FOUND THEN
                -- Take back what this call charged (still ours, unseen).
                UPDATE provider_quota qq SET used = qq.used - v_n
                 WHERE qq.provider = v_p AND qq.key_id = ANY (v_done)
                   AND qq.unit = v_unit;
                v_next := genq_quota_next_reset(q.period, q.time_zone, t);
                ok := false; reason := 'quota_exhausted';
                wait_ms := CASE WHEN isfinite(v_next)
                                THEN greatest(genq_ms(v_next - t), 1) END;
                RETURN NEXT; RETURN;
            END IF;
            v_done := v_done || v_kk;
        END LOOP;
    END IF;

    -- Granted: log it and take the slot.
    INSERT INTO provider_rate_log (provider, key_id, holder, at, tokens)
    VALUES (v_p, v_k, v_h, t, v_tok)
    RETURNING log_id INTO v_log;
    INSERT INTO provider_slots AS s
           (provider, key_id, holder, granted_at, expires_at, log_id)
    VALUES (v_p, v_k, v_h, t, t + make_interval(secs => v_lease), v_log)
    ON CONFLICT ON CONSTRAINT provider_slots_pkey DO UPDATE
       SET granted_at = EXCLUDED.granted_at,
           expires_at = EXCLUDED.expires_at, log_id = EXCLUDED.log_id;
    ok := true; reason := NULL; wait_ms := 0;
    RETURN NEXT;
END $$;

-- After the call: free the holder's slot, and set its log entry's tokens
-- to the actual count (NULL: leave the estimate).  True when the holder
-- still had its slot (false: never admitted, released twice, or the lease
-- had expired and the slot was reclaimed).  Takes the key's lock first,
-- like genq_admit, so the two never deadlock.
CREATE FUNCTION genq_release(provider text, key_id text, holder text,
                             actual_tokens int)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_p    text := genq_release.provider;
    v_k    text := coalesce(genq_release.key_id, '');
    v_h    text := genq_release.holder;
    v_act  int := genq_release.actual_tokens;
    v_log  bigint;
    v_had  boolean;
BEGIN
    PERFORM 1 FROM provider_limits l
     WHERE l.provider = v_p AND l.key_id = v_k FOR UPDATE;
    DELETE FROM provider_slots s
     WHERE s.provider = v_p AND s.key_id = v_k AND s.holder = v_h
    RETURNING s.log_id INTO v_log;
    v_had := FOUND;
    IF v_act IS NOT NULL THEN
        IF v_log IS NULL THEN
            -- Slot reclaimed already: the holder's latest grant.
            SELECT r.log_id INTO v_log FROM provider_rate_log r
             WHERE r.provider = v_p AND r.key_id = v_k AND r.holder = v_h
             ORDER BY r.at DESC, r.log_id DESC LIMIT 1;
        END IF;
        UPDATE provider_rate_log r SET tokens = greatest(v_act, 0)
         WHERE r.log_id = v_log;
    END IF;
    RETURN v_had;
END $$;

-- Correct quota use after the fact (e.g. actual tokens instead of the
-- estimate): add \p delta (may be negative) to the rows genq_admit charges
-- (the key's own row and the provider-wide row, those that exist), never
-- below 0.  A row whose period has ended is reset first: the correction
-- lands in the current period.  Returns the number of rows changed.
CREATE FUNCTION genq_quota_adjust(provider text, key_id text, unit text,
                                  delta numeric)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_p    text := genq_quota_adjust.provider;
    v_k    text := coalesce(genq_quota_adjust.key_id, '');
    v_u    text := genq_quota_adjust.unit;
    v_d    numeric := round(coalesce(genq_quota_adjust.delta, 0), 6);
    t      timestamptz := genq_policy_clock();
    v_kk   text;
    v_rows int := 0;
BEGIN
    FOREACH v_kk IN ARRAY CASE WHEN v_k = '' THEN ARRAY['']
                               ELSE ARRAY[v_k, ''] END LOOP
        UPDATE provider_quota qq
           SET used = greatest(
                   CASE WHEN genq_quota_period_start(qq.period, qq.time_zone,
                                                     qq.period_start)
                             = genq_quota_period_start(qq.period,
                                                       qq.time_zone, t)
                        THEN qq.used ELSE 0 END + v_d, 0),
               period_start = genq_quota_period_start(qq.period,
                                                      qq.time_zone, t),
               updated_at = now()
         WHERE qq.provider = v_p AND qq.key_id = v_kk AND qq.unit = v_u;
        IF FOUND THEN
            v_rows := v_rows + 1;
        END IF;
    END LOOP;
    RETURN v_rows;
END $$;

-- ---- overrides every worker obeys ---------------------------------------

-- Set by an operator.  key_id '' = the whole provider, else one key.
--   enabled   false: skip it; true: use it even if the config disables
--             it; NULL: as configured
--   priority  NULL: keep the configured order; else lower goes first
--             (among providers of a route, or among a provider's keys)
CREATE TABLE provider_overrides (
    provider    text NOT NULL,
    key_id      text NOT NULL DEFAULT '',
    enabled     boolean,
    priority    int,
    reason      text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, key_id)
);

-- Keys disabled by a worker (401/403: the key is bad): every worker skips
-- them.  An operator enables a key again by deleting its row.
CREATE TABLE provider_key_state (
    provider         text NOT NULL,
    key_id           text NOT NULL,
    disabled_reason  text NOT NULL,
    disabled_at      timestamptz NOT NULL DEFAULT now(),
    disabled_by      text,                 -- worker id
    PRIMARY KEY (provider, key_id)
);

-- Disable a key for every worker; true if this call disabled it (false:
-- it already was; the first reason is kept).
CREATE FUNCTION genq_key_disable(provider text, key_id text, reason text,
                                 disabled_by text)
RETURNS boolean LANGUAGE sql AS $$
    WITH ins AS (
        INSERT INTO provider_key_state
               (provider, key_id, disabled_reason, disabled_by)
        VALUES ($1, coalesce($2, ''), coalesce($3, 'disabled'), $4)
        ON CONFLICT DO NOTHING
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM ins)
$$;

-- What the workers poll every few seconds (the whole view: a few rows):
--   kind 'override'      a provider_overrides row as is
--   kind 'key_disabled'  a provider_key_state row: enabled false,
--                        reason = disabled_reason, updated_at = disabled_at
-- A row that disappears (key re-enabled, override deleted) means "as
-- configured" again, so compare whole results, not only updated_at.
CREATE VIEW policy_state AS
SELECT 'override'::text AS kind, o.provider, o.key_id, o.enabled,
       o.priority, o.reason, o.updated_at
FROM provider_overrides o
UNION ALL
SELECT 'key_disabled', k.provider, k.key_id, false, NULL::int,
       k.disabled_reason, k.disabled_at
FROM provider_key_state k;
