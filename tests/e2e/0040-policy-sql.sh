#!/usr/bin/env bash
# Limits that hold across every worker (schema/0007_policy.sql), proven in
# Postgres alone: several psql sessions race genq_admit at once, each call
# its own transaction, the way separate worker processes would.
#   - a concurrency cap of 1 is never exceeded (3 sessions admit, hold,
#     release; no two holding intervals overlap), and a cap of 2 does let
#     two through (the overlap check can see an overlap);
#   - rpm N: exactly N granted across sessions within the minute, N more
#     once the (policy) clock moves a minute on; a sliding window, not a
#     token bucket (which would let 2 x N through in one minute);
#   - tpm, with the release correcting an estimate to the actual count;
#   - a free quota: exactly its limit granted across sessions, then
#     quota_exhausted with the wait until local midnight (Asia/Kolkata),
#     still exhausted 2 s before it, granted again 2 s after it; key and
#     provider-wide rows; DST-correct period functions;
#   - an expired slot (a dead worker's) is reclaimed;
#   - all or nothing: a denial takes no slot, no rpm and no quota;
#   - overrides and disabled keys in the view the workers poll.
# It runs in a database of its own (made, migrated with `genq migrate`,
# dropped), since it moves the policy clock, which would move every
# worker's clock in the shared database.  Its providers are t0040-*.
. "$(dirname "$0")/lib.sh"
db="genq_t0040_$RUN_ID"
admin_dsn="$GENQ_POSTGRES_DSN"
BG_PIDS=()
cleanup() {
        local p
        for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        BG_PIDS=()
        if [ "$GENQ_POSTGRES_DSN" != "$admin_dsn" ]; then
                # Our rows first (in case the drop is refused), then the
                # database itself.
                psql -X -q -t -A "$GENQ_POSTGRES_DSN" -c "
                        DELETE FROM provider_slots WHERE provider LIKE 't0040-%';
                        DELETE FROM provider_rate_log WHERE provider LIKE 't0040-%';
                        DELETE FROM provider_limits WHERE provider LIKE 't0040-%';
                        DELETE FROM provider_quota WHERE provider LIKE 't0040-%';
                        DELETE FROM provider_overrides WHERE provider LIKE 't0040-%';
                        DELETE FROM provider_key_state WHERE provider LIKE 't0040-%';
                        UPDATE policy_clock SET offset_s = 0;" >/dev/null 2>&1 || true
                export GENQ_POSTGRES_DSN="$admin_dsn"
        fi
        psql -X -q -t -A "$admin_dsn" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
                >/dev/null 2>&1 || true
}
trap 'rc=$?; cleanup; stop_workers; exit $rc' EXIT

sql "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
sql "CREATE DATABASE $db" >/dev/null
export GENQ_POSTGRES_DSN=$(printf '%s' "$admin_dsn" | sed -E "s/dbname=[^ ]+/dbname=$db/")
[ "$GENQ_POSTGRES_DSN" != "$admin_dsn" ] || fail "cannot make a DSN for $db from '$admin_dsn'"
"$BIN/genq" migrate >"$E2E_OUT/migrate.log" 2>&1 || fail "migrate: $(cat "$E2E_OUT/migrate.log")"
assert_eq "migration 0007 applied" 1 "$(sql "SELECT count(*) FROM schema_migrations WHERE version = 7")"

sqlf() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$GENQ_POSTGRES_DSN" -f -; }
admit() { # admit PROVIDER KEY HOLDER CAP RPM TPM TOKENS UNIT N LEASE -> ok|reason|wait_ms
        sql "SELECT ok, coalesce(reason, ''), coalesce(wait_ms::text, 'null')
             FROM genq_admit('$1', '$2', '$3', $4, $5, $6, $7, $8, $9, ${10})"
}
okflag() { admit "$@" | cut -d'|' -f1; }
set_clock() { sql "UPDATE policy_clock SET offset_s = $1" >/dev/null; }

# ---- the racing sessions ----------------------------------------------------
# t0040_hammer: ITERS attempts, each admit in its own transaction; a grant
# is held HOLD_S seconds and released.  Every attempt is recorded:
# t_start after the admit committed, t_end before the release began, so
# two recorded holding intervals overlap only if two calls really held the
# key at once; `live` = the key's live slots seen while holding.
sqlf <<'EOF' >/dev/null || fail "helper objects"
CREATE TABLE t0040_calls (
    id serial PRIMARY KEY, scenario text, sess int, holder text,
    ok boolean, reason text, wait_ms bigint,
    t_start timestamptz, t_end timestamptz, pat timestamptz, live int);
CREATE TABLE t0040_ready (scenario text, sess int);
CREATE TABLE t0040_go (scenario text);
CREATE PROCEDURE t0040_hammer(scen text, prov text, sess int, iters int,
    cap int, rpm int, qunit text, qn numeric, hold_s float8, lease_s int)
LANGUAGE plpgsql AS $$
DECLARE
    r record; ts timestamptz; te timestamptz; pt timestamptz; lv int;
    h text;
BEGIN
    INSERT INTO t0040_ready VALUES (scen, sess);
    COMMIT;
    WHILE NOT EXISTS (SELECT 1 FROM t0040_go g WHERE g.scenario = scen) LOOP
        PERFORM pg_sleep(0.005);
    END LOOP;
    COMMIT;
    FOR i IN 1 .. iters LOOP
        h := format('%s-s%s-%s', scen, sess, i);
        SELECT * INTO r FROM genq_admit(prov, 'k1', h, cap, rpm, 0, 0,
                                        qunit, qn, lease_s);
        COMMIT;
        IF r.ok THEN
            ts := clock_timestamp();
            pt := genq_policy_clock();
            SELECT count(*) INTO lv FROM provider_slots s
             WHERE s.provider = prov AND s.expires_at > genq_policy_clock();
            PERFORM pg_sleep(hold_s);
            te := clock_timestamp();
            COMMIT;
            PERFORM genq_release(prov, 'k1', h, NULL);
            COMMIT;
        ELSE
            ts := NULL; te := NULL; pt := NULL; lv := NULL;
        END IF;
        INSERT INTO t0040_calls (scenario, sess, holder, ok, reason, wait_ms,
                                 t_start, t_end, pat, live)
        VALUES (scen, sess, h, r.ok, r.reason, r.wait_ms, ts, te, pt, lv);
        COMMIT;
        IF NOT r.ok THEN
            PERFORM pg_sleep(random() * 0.003);
            COMMIT;
        END IF;
    END LOOP;
END $$;
EOF

# race SCENARIO PROVIDER SESSIONS ITERS CAP RPM QUNIT QN HOLD_S LEASE_S
race() {
        local scen=$1 prov=$2 n=$3 s rc bad="" pids=()
        shift 3
        for ((s = 1; s <= n; s++)); do
                psql -X -q -v ON_ERROR_STOP=1 "$GENQ_POSTGRES_DSN" -c \
                        "CALL t0040_hammer('$scen', '$prov', $s, $1, $2, $3, $4, $5, $6, $7)" \
                        >"$E2E_OUT/race-$scen-$s.log" 2>&1 &
                pids+=($!)
                BG_PIDS+=($!)
        done
        for ((s = 0; ; s++)); do
                sql_is "SELECT count(*) FROM t0040_ready WHERE scenario = '$scen'" "$n" && break
                [ "$s" -lt 300 ] ||
                        fail "$scen: $n sessions not ready in 30 s: $(cat "$E2E_OUT"/race-"$scen"-*.log)"
                sleep 0.1
        done
        sql "INSERT INTO t0040_go VALUES ('$scen')" >/dev/null
        for s in "${pids[@]}"; do
                rc=0; wait "$s" || rc=$?
                [ "$rc" -eq 0 ] || bad="$bad session pid $s exited $rc;"
        done
        BG_PIDS=()
        [ -z "$bad" ] || fail "$scen:$bad $(cat "$E2E_OUT"/race-"$scen"-*.log)"
}
calls() { sql "SELECT count(*) FROM t0040_calls WHERE scenario = '$1' $2"; }
# Most calls holding the key at once, from the recorded intervals (an end
# sorts before a start at the same instant).
max_overlap() {
        sql "SELECT coalesce(max(c), 0) FROM (
                SELECT sum(d) OVER (ORDER BY t, d, id) AS c FROM (
                    SELECT t_start AS t, 1 AS d, id FROM t0040_calls
                     WHERE scenario = '$1' AND ok
                    UNION ALL
                    SELECT t_end, -1, id FROM t0040_calls
                     WHERE scenario = '$1' AND ok) e) x"
}

# ---- 1. concurrency cap 1, three sessions -------------------------------------
race cap1 t0040-cap1 3 40 1 0 NULL NULL 0.005 30
grants=$(calls cap1 "AND ok")
denied=$(calls cap1 "AND NOT ok")
log "cap 1: $grants grants, $denied denials over 3 sessions"
[ "$grants" -ge 20 ] || fail "cap 1: only $grants grants of 120 attempts"
[ "$denied" -ge 1 ] || fail "cap 1: no denial at all, so the sessions never contended"
overlaps=$(sql "SELECT a.holder || ' [' || a.t_start || ', ' || a.t_end || '] overlaps ' ||
                       b.holder || ' [' || b.t_start || ', ' || b.t_end || ']'
                FROM t0040_calls a JOIN t0040_calls b
                  ON a.id < b.id AND a.t_start < b.t_end AND b.t_start < a.t_end
                WHERE a.scenario = 'cap1' AND b.scenario = 'cap1' AND a.ok AND b.ok
                LIMIT 5")
[ -z "$overlaps" ] || fail "cap 1 exceeded: $overlaps"
log "ok: cap 1: no two of the $grants holding intervals overlap"
assert_eq "cap 1: most holding at once" 1 "$(max_overlap cap1)"
assert_eq "cap 1: most live slots seen while holding" 1 \
        "$(sql "SELECT max(live) FROM t0040_calls WHERE scenario = 'cap1'")"
assert_eq "cap 1: every denial is 'concurrency' with 50..1000 ms" "" \
        "$(sql "SELECT holder || ': ' || reason || ' ' || wait_ms FROM t0040_calls
                WHERE scenario = 'cap1' AND NOT ok
                  AND (reason <> 'concurrency' OR wait_ms NOT BETWEEN 50 AND 1000) LIMIT 5")"
assert_eq "cap 1: no slot left after the releases" 0 \
        "$(sql "SELECT count(*) FROM provider_slots WHERE provider = 't0040-cap1'")"

# The same with cap 2: two do hold at once (the overlap check sees
# overlaps when there are some), never three.
race cap2 t0040-cap2 3 40 2 0 NULL NULL 0.005 30
assert_eq "cap 2: most holding at once" 2 "$(max_overlap cap2)"
assert_eq "cap 2: most live slots seen while holding" 2 \
        "$(sql "SELECT max(live) FROM t0040_calls WHERE scenario = 'cap2'")"

# ---- 2. requests per minute across sessions -----------------------------------
race rpm1 t0040-rpm 3 8 0 10 NULL NULL 0 30
assert_eq "rpm 10: granted of 24 racing attempts" 10 "$(calls rpm1 "AND ok")"
assert_eq "rpm 10: denials that are not 'rpm' with 1..60000 ms" "" \
        "$(sql "SELECT holder || ': ' || reason || ' ' || wait_ms FROM t0040_calls
                WHERE scenario = 'rpm1' AND NOT ok
                  AND (reason <> 'rpm' OR wait_ms NOT BETWEEN 1 AND 60000) LIMIT 5")"
assert_eq "rpm 10: still denied a moment later" "f" \
        "$(okflag t0040-rpm k1 late 0 10 0 0 NULL NULL 30)"
set_clock 61
race rpm2 t0040-rpm 3 8 0 10 NULL NULL 0 30
assert_eq "rpm 10: granted again once the clock moved 61 s" 10 "$(calls rpm2 "AND ok")"
assert_eq "rpm 10: most grants in any 60 s window" 10 \
        "$(sql "SELECT max((SELECT count(*) FROM t0040_calls b
                            WHERE b.scenario IN ('rpm1', 'rpm2') AND b.ok
                              AND b.pat >= a.pat AND b.pat < a.pat + interval '60 s'))
                FROM t0040_calls a WHERE a.scenario IN ('rpm1', 'rpm2') AND a.ok")"
set_clock 0

# Sliding, not a bucket nor a fixed minute: rpm 4, 2 grants at T, 2 at
# T+30 s, then denied until T+60 s (a bucket refilled by T+30 s would
# grant 4 there), 2 more at T+61 s and denied again until T+90 s.  The
# waits are T+60 s and T+90 s less the time the steps took (slack 5 s for
# a loaded machine; a bucket would say 15 s).
got=""
for h in a b; do got="$got$(okflag t0040-slide k1 $h 0 4 0 0 NULL NULL 5)"; done
set_clock 30
for h in c d e; do got="$got$(okflag t0040-slide k1 $h 0 4 0 0 NULL NULL 5)"; done
w30=$(admit t0040-slide k1 e2 0 4 0 0 NULL NULL 5 | cut -d'|' -f3)
set_clock 61
for h in f g h; do got="$got$(okflag t0040-slide k1 $h 0 4 0 0 NULL NULL 5)"; done
w61=$(admit t0040-slide k1 h2 0 4 0 0 NULL NULL 5 | cut -d'|' -f3)
set_clock 0
assert_eq "sliding window: grants at T, T+30 s, T+61 s" "tt ttf ttf" \
        "${got:0:2} ${got:2:3} ${got:5:3}"
[ "$w30" -gt 25000 ] && [ "$w30" -le 30000 ] ||
        fail "sliding window: wait at T+30 s should be ~30000 ms, got $w30"
[ "$w61" -gt 24000 ] && [ "$w61" -le 29000 ] ||
        fail "sliding window: wait at T+61 s should be ~29000 ms, got $w61"
log "ok: sliding window waits $w30 ms at T+30 s, $w61 ms at T+61 s"

# ---- 3. tokens per minute, with the actual count on release -------------------
got=""
for h in a b c; do got="$got$(okflag t0040-tpm k1 $h 0 0 1000 400 NULL NULL 30)"; done
assert_eq "tpm 1000: 400 + 400 granted, a third 400 denied" "ttf" "$got"
assert_eq "tpm 1000: the denial" "f|tpm" "$(admit t0040-tpm k1 c 0 0 1000 400 NULL NULL 30 | cut -d'|' -f1,2)"
assert_eq "release a with its actual 100 tokens" "t" "$(sql "SELECT genq_release('t0040-tpm', 'k1', 'a', 100)")"
got=""
for h in c d e; do
        n=400; [ "$h" = d ] && n=100; [ "$h" = e ] && n=1
        got="$got$(okflag t0040-tpm k1 $h 0 0 1000 $n NULL NULL 30)"
done
assert_eq "tpm 1000 after the correction: 400 and 100 fit (1000), 1 more does not" "ttf" "$got"
assert_eq "one call above tpm alone: only into an empty window" "tf" \
        "$(okflag t0040-tpm k2 big 0 0 1000 5000 NULL NULL 30)$(okflag t0040-tpm k2 small 0 0 1000 1 NULL NULL 30)"

# ---- 4. free quota across sessions, reset at local midnight -------------------
tz=Asia/Kolkata
sql "INSERT INTO provider_quota (provider, key_id, unit, period, time_zone, quota_limit)
     VALUES ('t0040-quota', '', 'requests', 'day', '$tz', 7)" >/dev/null
race quota t0040-quota 3 5 0 0 "'requests'" 1 0 30
assert_eq "quota 7: granted of 15 racing attempts" 7 "$(calls quota "AND ok")"
assert_eq "quota 7: used" "7.000000" \
        "$(sql "SELECT used FROM provider_quota WHERE provider = 't0040-quota'")"
res=$(admit t0040-quota k1 more 0 0 0 0 "'requests'" 1 30)
want=$(sql "SELECT ceil(extract(epoch FROM
              ((date(genq_policy_clock() AT TIME ZONE '$tz') + 1)::timestamp AT TIME ZONE '$tz')
              - genq_policy_clock()) * 1000)::bigint")
assert_eq "quota 7: then exhausted" "f|quota_exhausted" "$(cut -d'|' -f1,2 <<<"$res")"
w=$(cut -d'|' -f3 <<<"$res")
[ $((w - want)) -ge -5000 ] && [ $((w - want)) -le 5000 ] ||
        fail "quota: wait_ms $w, but the next midnight in $tz is $want ms away"
log "ok: quota: wait $w ms = until the next midnight in $tz"
# Just before the next local midnight: still exhausted; just after: reset.
midnight=$(sql "SELECT (date(genq_policy_now() AT TIME ZONE '$tz') + 1)::timestamp AT TIME ZONE '$tz'")
sql "UPDATE policy_clock SET offset_s =
        extract(epoch FROM '$midnight'::timestamptz - clock_timestamp()) - 2" >/dev/null
res=$(admit t0040-quota k1 more 0 0 0 0 "'requests'" 1 30)
assert_eq "quota: 2 s before local midnight, still exhausted" "f|quota_exhausted" "$(cut -d'|' -f1,2 <<<"$res")"
[ "$(cut -d'|' -f3 <<<"$res")" -le 2100 ] || fail "quota: 2 s before midnight the wait is $res"
sql "UPDATE policy_clock SET offset_s = offset_s + 4" >/dev/null
assert_eq "quota: 2 s after local midnight, granted again" "t" \
        "$(okflag t0040-quota k1 after 0 0 0 0 "'requests'" 1 30)"
assert_eq "quota: used restarted, period starts at the local midnight" "1.000000|true" \
        "$(sql "SELECT used || '|' || (period_start = '$midnight') FROM provider_quota WHERE provider = 't0040-quota'")"
set_clock 0

# A key's own row and the provider-wide row: both must have room.
sql "INSERT INTO provider_quota (provider, key_id, unit, period, time_zone, quota_limit) VALUES
     ('t0040-qkeys', '', 'tokens', 'month', 'America/New_York', 3000),
     ('t0040-qkeys', 'k1', 'tokens', 'month', 'America/New_York', 5000)" >/dev/null
got=""
for h in a b c d; do got="$got$(okflag t0040-qkeys k1 $h 0 0 0 0 "'tokens'" 1000 30)"; done
assert_eq "quota: key row 5000, provider row 3000: 1000-token calls" "tttf" "$got"
assert_eq "quota: the refused call took nothing from the key row" "k1 3000.000000, * 3000.000000" \
        "$(sql "SELECT string_agg(coalesce(nullif(key_id, ''), '*') || ' ' || used, ', ' ORDER BY key_id DESC) FROM provider_quota WHERE provider = 't0040-qkeys'")"
assert_eq "quota: another key is held by the provider row" "f|quota_exhausted" \
        "$(admit t0040-qkeys k2 x 0 0 0 0 "'tokens'" 1 30 | cut -d'|' -f1,2)"
assert_eq "genq_quota_adjust: rows corrected" 2 "$(sql "SELECT genq_quota_adjust('t0040-qkeys', 'k1', 'tokens', -2500)")"
assert_eq "genq_quota_adjust: never below 0" "k1 500.000000, * 500.000000" \
        "$(sql "SELECT string_agg(coalesce(nullif(key_id, ''), '*') || ' ' || used, ', ' ORDER BY key_id DESC) FROM provider_quota WHERE provider = 't0040-qkeys'")"
sql "SELECT genq_quota_adjust('t0040-qkeys', 'k1', 'tokens', -2500)" >/dev/null
assert_eq "genq_quota_adjust: clamped at 0" "k1 0.000000, * 0.000000" \
        "$(sql "SELECT string_agg(coalesce(nullif(key_id, ''), '*') || ' ' || used, ', ' ORDER BY key_id DESC) FROM provider_quota WHERE provider = 't0040-qkeys'")"
assert_eq "quota: room again for the other key" "t" "$(okflag t0040-qkeys k2 y 0 0 0 0 "'tokens'" 1 30)"

# Period functions at fixed instants: DST days, a midnight that does not
# exist, a half-hour zone, 'none'.
assert_eq "period functions" \
        "23|25|2024-09-08 04:00:00+00|2024-02-29 18:30:00+00|2024-03-31 18:30:00+00|-infinity|infinity" \
        "$(sql "SET TimeZone = 'UTC';
                SELECT extract(epoch FROM
                           genq_quota_next_reset('day', 'America/New_York', '2024-03-10 12:00Z')
                           - genq_quota_period_start('day', 'America/New_York', '2024-03-10 12:00Z'))::int / 3600
                    || '|' ||
                       extract(epoch FROM
                           genq_quota_next_reset('day', 'America/New_York', '2024-11-03 12:00Z')
                           - genq_quota_period_start('day', 'America/New_York', '2024-11-03 12:00Z'))::int / 3600
                    || '|' || genq_quota_period_start('day', 'America/Santiago', '2024-09-08 15:00Z')
                    || '|' || genq_quota_period_start('month', 'Asia/Kolkata', '2024-03-15 00:00Z')
                    || '|' || genq_quota_next_reset('month', 'Asia/Kolkata', '2024-03-15 00:00Z')
                    || '|' || genq_quota_period_start('none', 'UTC', now())
                    || '|' || genq_quota_next_reset('none', 'UTC', now())")"

# ---- 5. an expired slot (a dead worker's) is reclaimed -------------------------
assert_eq "lease: the dead worker's grant" "t" "$(okflag t0040-lease k1 dead 1 0 0 0 NULL NULL 1)"
res=$(admit t0040-lease k1 alive 1 0 0 0 NULL NULL 30)
assert_eq "lease: while it lives, the cap holds" "f|concurrency" "$(cut -d'|' -f1,2 <<<"$res")"
w=$(cut -d'|' -f3 <<<"$res")
[ "$w" -ge 50 ] && [ "$w" -le 1000 ] || fail "lease: concurrency wait_ms $w not in 50..1000"
sleep 1.2
assert_eq "lease: after it expired, granted" "t" "$(okflag t0040-lease k1 alive 1 0 0 0 NULL NULL 30)"
assert_eq "lease: slots now" "alive" \
        "$(sql "SELECT string_agg(holder, ',') FROM provider_slots WHERE provider = 't0040-lease'")"
assert_eq "lease: a release of the reclaimed slot says so" "f" \
        "$(sql "SELECT genq_release('t0040-lease', 'k1', 'dead', NULL)")"
# The holder of a slot admitted again (a retry of its call) keeps its one
# slot; another holder still waits.
assert_eq "lease: the holder again" "t" "$(okflag t0040-lease k1 alive 1 0 0 0 NULL NULL 30)"
assert_eq "lease: another holder" "f|concurrency" \
        "$(admit t0040-lease k1 other 1 0 0 0 NULL NULL 30 | cut -d'|' -f1,2)"
assert_eq "lease: slots of the key" 1 "$(sql "SELECT count(*) FROM provider_slots WHERE provider = 't0040-lease'")"

# ---- 6. all or nothing ---------------------------------------------------------
sql "INSERT INTO provider_quota (provider, key_id, unit, period, time_zone, quota_limit, used, period_start)
     VALUES ('t0040-aon', '', 'requests', 'none', 'UTC', 1, 1, now()),
            ('t0040-aon2', '', 'requests', 'day', 'UTC', 5, 0, now())" >/dev/null
assert_eq "aon: quota denial (period 'none': wait NULL = never)" "f|quota_exhausted|null" \
        "$(admit t0040-aon k1 h1 1 1 0 0 "'requests'" 1 30)"
assert_eq "aon: the quota denial took no slot and no rpm" "0|0" \
        "$(sql "SELECT (SELECT count(*) FROM provider_slots WHERE provider = 't0040-aon') || '|' ||
                       (SELECT count(*) FROM provider_rate_log WHERE provider = 't0040-aon')")"
assert_eq "aon: so cap 1 / rpm 1 still admit another call" "t" \
        "$(okflag t0040-aon k1 h2 1 1 0 0 NULL NULL 30)"
assert_eq "aon2: a grant (quota 1 of 5)" "t" "$(okflag t0040-aon2 k1 a 1 0 0 0 "'requests'" 1 30)"
assert_eq "aon2: a concurrency denial" "f|concurrency" \
        "$(admit t0040-aon2 k1 b 1 0 0 0 "'requests'" 1 30 | cut -d'|' -f1,2)"
sql "SELECT genq_release('t0040-aon2', 'k1', 'a', NULL)" >/dev/null
assert_eq "aon2: an rpm denial" "f|rpm" \
        "$(admit t0040-aon2 k1 c 1 1 0 0 "'requests'" 1 30 | cut -d'|' -f1,2)"
assert_eq "aon2: the denials took no quota, slot or log entry" "1.000000|0|1" \
        "$(sql "SELECT (SELECT used FROM provider_quota WHERE provider = 't0040-aon2') || '|' ||
                       (SELECT count(*) FROM provider_slots WHERE provider = 't0040-aon2') || '|' ||
                       (SELECT count(*) FROM provider_rate_log WHERE provider = 't0040-aon2')")"

# ---- 7. overrides and disabled keys, as the workers read them -----------------
sql "INSERT INTO provider_overrides (provider, enabled, priority, reason)
     VALUES ('t0040-ovr', false, NULL, 'maintenance')" >/dev/null
assert_eq "key disabled by a worker" "t" "$(sql "SELECT genq_key_disable('t0040-ovr', 'k1', '401 invalid key', 'worker-a')")"
assert_eq "disabled twice: the first stands" "f" "$(sql "SELECT genq_key_disable('t0040-ovr', 'k1', 'again', 'worker-b')")"
assert_eq "policy_state" "key_disabled|k1|false||401 invalid key;override||false||maintenance" \
        "$(sql "SELECT string_agg(kind || '|' || key_id || '|' || enabled || '|' || coalesce(priority::text, '') || '|' || reason, ';' ORDER BY kind)
                FROM policy_state WHERE provider = 't0040-ovr'")"
sql "DELETE FROM provider_key_state WHERE provider = 't0040-ovr' AND key_id = 'k1'" >/dev/null
assert_eq "policy_state after the operator re-enabled the key" "override" \
        "$(sql "SELECT string_agg(kind, ',') FROM policy_state WHERE provider = 't0040-ovr'")"
