#!/usr/bin/env bash
# `genq provider`: the operator's switches every worker obeys.
#   - disable / enable / priority N / --clear / --key write exactly the
#     provider_overrides rows the workers poll (policy_state), enable
#     deletes a row that says nothing any more and forgets a key a worker
#     disabled (provider_key_state); quota --reset zeroes used;
#   - list shows overrides, disabled keys, live slots, requests in the
#     last 60 s and quotas (a period that ended shows 0 used; the reset
#     in the quota's time zone), as a table, CSV and JSON;
#   - bad arguments print the usage and exit 2, database errors exit 1.
# The database is shared with tests running at the same time: no
# reset_db, only providers named t0043-*, deleted before and after.
. "$(dirname "$0")/lib.sh"
G="$BIN/genq"
K1=env:T0043_K1 K2=env:T0043_K2

cleanup() {
        sql "DELETE FROM provider_overrides WHERE provider LIKE 't0043-%';
             DELETE FROM provider_key_state WHERE provider LIKE 't0043-%';
             DELETE FROM provider_slots WHERE provider LIKE 't0043-%';
             DELETE FROM provider_rate_log WHERE provider LIKE 't0043-%';
             DELETE FROM provider_quota WHERE provider LIKE 't0043-%'" \
                >/dev/null 2>&1 || true
}
trap 'rc=$?; cleanup; stop_workers; exit $rc' EXIT
"$G" migrate >/dev/null 2>&1 || fail "genq migrate"
cleanup

# gp ARGS...: run genq provider; stdout in $OUT, stderr in $ERR, exit in $RC.
gp() {
        RC=0
        OUT=$("$G" provider "$@" 2>"$E2E_OUT/err") || RC=$?
        ERR=$(cat "$E2E_OUT/err")
}

# The override row of (provider, key) as enabled|priority|reason.
override() {
        sql "SELECT coalesce(enabled::text, 'null') || '|' ||
                    coalesce(priority::text, 'null') || '|' ||
                    coalesce(reason, 'null')
             FROM provider_overrides
             WHERE provider = '$1' AND key_id = '${2:-}'"
}

expect_usage() { # expect_usage WHAT ARGS...
        local what=$1; shift
        gp "$@"
        [ "$RC" -eq 2 ] || fail "$what: exit $RC, expected 2 (out: $OUT)"
        grep -q "usage: genq provider" <<<"$ERR" || fail "$what: no usage: $ERR"
        [ -z "$OUT" ] || fail "$what: printed to stdout: $OUT"
        log "ok: $what -> usage, exit 2"
}

# ---- changes ----------------------------------------------------------
gp disable t0043-a --reason maintenance
assert_eq "disable: exit" 0 "$RC"
assert_eq "disable: message" \
        "provider t0043-a: disabled (reason: maintenance); workers obey within seconds" "$OUT"
grep -q 'warning: no provider "t0043-a" in the configuration' <<<"$ERR" ||
        fail "no warning for a provider the configuration lacks: $ERR"
assert_eq "disable: row" "false|null|maintenance" "$(override t0043-a)"
gp priority t0043-a -5
assert_eq "priority: message" \
        "provider t0043-a: priority -5 (lower is tried first); workers obey within seconds" "$OUT"
assert_eq "priority keeps the disable" "false|-5|maintenance" "$(override t0043-a)"
gp disable t0043-a --key "$K1"
assert_eq "disable --key: message" \
        "provider t0043-a key $K1: disabled; workers obey within seconds" "$OUT"
assert_eq "disable --key: row" "false|null|null" "$(override t0043-a "$K1")"
gp priority t0043-b +07
assert_eq "priority b: normalised" \
        "provider t0043-b: priority 7 (lower is tried first); workers obey within seconds" "$OUT"
assert_eq "priority b: row" "null|7|null" "$(override t0043-b)"
gp priority t0043-b -1000
assert_eq "priority at the lower bound" "null|-1000|null" "$(override t0043-b)"
gp priority t0043-b 1000
assert_eq "priority at the upper bound" "null|1000|null" "$(override t0043-b)"
gp disable t0043-c --reason first
gp disable t0043-c
assert_eq "disable again without --reason drops the old reason" \
        "false|null|null" "$(override t0043-c)"
assert_eq "the workers' view shows the overrides" 4 \
        "$(sql "SELECT count(*) FROM policy_state WHERE provider LIKE 't0043-%' AND kind = 'override'")"

# ---- state the workers write, for list --------------------------------
# A key a worker disabled after a 401; slots (one live on K1, one expired
# on K2); grants (two on K1 and one on K2 in the last minute, one older);
# quotas: provider-wide per Kolkata day, K1's per UTC month, and one of a
# day that has ended (shows 0 used until the next admission resets it).
sql "SELECT genq_key_disable('t0043-a', '$K2', '401 unauthorized', 'w-0043')" >/dev/null
sql "INSERT INTO provider_slots (provider, key_id, holder, granted_at, expires_at)
     VALUES ('t0043-a', '$K1', 'h1', genq_policy_now(), genq_policy_now() + interval '5 min'),
            ('t0043-a', '$K2', 'h2', genq_policy_now() - interval '10 min',
             genq_policy_now() - interval '1 min');
     INSERT INTO provider_rate_log (provider, key_id, holder, at)
     VALUES ('t0043-a', '$K1', 'h1', genq_policy_now() - interval '5 s'),
            ('t0043-a', '$K1', 'h3', genq_policy_now() - interval '30 s'),
            ('t0043-a', '$K2', 'h2', genq_policy_now() - interval '50 s'),
            ('t0043-a', '$K2', 'h4', genq_policy_now() - interval '90 s')" >/dev/null
add_quotas() {
        sql "DELETE FROM provider_quota WHERE provider LIKE 't0043-%';
             INSERT INTO provider_quota (provider, key_id, unit, period, time_zone,
                                         quota_limit, used, period_start)
             VALUES ('t0043-a', '', 'requests', 'day', 'Asia/Kolkata', 100, 42,
                     genq_quota_period_start('day', 'Asia/Kolkata', genq_policy_now())),
                    ('t0043-a', '$K1', 'tokens', 'month', 'UTC', 5000, 1234.5,
                     genq_quota_period_start('month', 'UTC', genq_policy_now())),
                    ('t0043-d', '', 'images', 'day', 'UTC', 25, 7,
                     genq_quota_period_start('day', 'UTC', genq_policy_now()) - interval '1 day')" >/dev/null
}
add_quotas
kolkata_reset="$(sql "SELECT (genq_policy_now() AT TIME ZONE 'Asia/Kolkata')::date + 1") 00:00 Asia/Kolkata"

# ---- list -------------------------------------------------------------
gp list --format json
assert_eq "list json: exit" 0 "$RC"
printf '%s\n' "$OUT" >"$E2E_OUT/list.json"
# Other tests' TRUNCATE may take our quotas between insert and list: then
# the check names it, and a re-run passes.
python3 - "$E2E_OUT/list.json" "$K1" "$K2" "$kolkata_reset" <<'EOF' || fail "list json (see above)"
import json, sys
rows = json.load(open(sys.argv[1]))
k1, k2, reset = sys.argv[2], sys.argv[3], sys.argv[4]
mine = {(r["provider"], r["key"]): r for r in rows if r["provider"].startswith("t0043-")}
want = {
    ("t0043-a", ""): dict(enabled="false", priority="-5", reason="maintenance",
                          key_disabled=None, slots="1", req_60s="3",
                          quota_unit="requests", quota_used="42", quota_limit="100",
                          quota_period="day", quota_resets=reset),
    ("t0043-a", k1): dict(enabled="false", priority=None, slots="1", req_60s="2",
                          quota_unit="tokens", quota_used="1234.5",
                          quota_limit="5000", quota_period="month"),
    ("t0043-a", k2): dict(enabled=None, key_disabled="401 unauthorized",
                          disabled_by="w-0043", slots="0", req_60s="1",
                          quota_unit=None, quota_used=None),
    ("t0043-b", ""): dict(enabled=None, priority="1000", slots="0", req_60s="0"),
    ("t0043-c", ""): dict(enabled="false", reason=None),
    ("t0043-d", ""): dict(enabled=None, quota_unit="images", quota_used="0",
                          quota_limit="25"),
}
bad = []
if sorted(mine) != sorted(want):
    bad.append("rows %s, expected %s" % (sorted(mine), sorted(want)))
for k, fields in want.items():
    for f, v in fields.items():
        got = mine.get(k, {}).get(f, "(missing)")
        if got != v:
            bad.append("%s %s: %r, expected %r" % (k, f, got, v))
if not mine.get(("t0043-a", k2), {}).get("disabled_at"):
    bad.append("no disabled_at for the worker-disabled key")
for b in bad:
    print("  list json: " + b)
sys.exit(1 if bad else 0)
EOF
log "ok: list json has every row and field"
gp list --format csv
head -n 1 <<<"$OUT" | grep -qx "provider,key,enabled,priority,reason,key_disabled,disabled_at,disabled_by,slots,req_60s,quota_unit,quota_used,quota_limit,quota_period,quota_resets" ||
        fail "list csv header: $(head -n 1 <<<"$OUT")"
assert_eq "list csv: provider row" \
        "t0043-a,,false,-5,maintenance,,,,1,3,requests,42,100,day,$kolkata_reset" \
        "$(grep '^t0043-a,,' <<<"$OUT")"
assert_eq "list csv: key row" "t0043-a,$K1,false,,,,,,1,2,tokens,1234.5,5000,month,$(sql "SELECT to_char(date_trunc('month', genq_policy_now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY-MM-DD')") 00:00 UTC" \
        "$(grep "^t0043-a,$K1," <<<"$OUT")"
gp list
assert_eq "list table: exit" 0 "$RC"
head -n 1 <<<"$OUT" | grep -qE '^provider +key +enabled +priority +reason +key_disabled .* quota_resets' ||
        fail "list table header: $(head -n 1 <<<"$OUT")"
grep -qE "^t0043-a +false +-5 +maintenance +1 +3 +requests +42 +100 +day +$kolkata_reset" <<<"$OUT" ||
        fail "list table: provider row: $(grep t0043-a <<<"$OUT")"
grep -qE "^t0043-a +$K2 +401 unauthorized +[0-9-]+ [0-9:+]+ +w-0043 +0 +1 " <<<"$OUT" ||
        fail "list table: disabled key row: $(grep "$K2" <<<"$OUT")"
grep -qE '^\([0-9]+ rows\)$' <<<"$OUT" || fail "list table: no row count"
log "ok: list table and csv"

# ---- undoing ----------------------------------------------------------
gp enable t0043-a
assert_eq "enable: message" \
        "provider t0043-a: enabled (as configured); workers obey within seconds" \
        "$(head -n 1 <<<"$OUT")"
assert_eq "enable: names the keys a worker disabled" \
        "note: keys still disabled by a worker: $K2 (genq provider enable t0043-a --key KEY_ID)" \
        "$(sed -n 2p <<<"$OUT")"
assert_eq "enable keeps the priority" "null|-5|null" "$(override t0043-a)"
gp priority t0043-a --clear
assert_eq "clear: message" \
        "provider t0043-a: priority cleared (configured order); workers obey within seconds" "$OUT"
assert_eq "clear deletes the empty row" "" "$(override t0043-a)"
gp priority t0043-a --clear
assert_eq "clear again: nothing" "provider t0043-a: had no priority; nothing changed" "$OUT"
assert_eq "clear again: exit" 0 "$RC"
gp priority t0043-c 3
gp priority t0043-c --clear
assert_eq "clear keeps a disable" "false|null|null" "$(override t0043-c)"
gp enable t0043-a --key "$K1"
assert_eq "enable --key: override gone" "" "$(override t0043-a "$K1")"
gp enable t0043-a --key "$K2"
assert_eq "enable --key: clears the worker's disable" \
        "provider t0043-a key $K2: enabled (as configured; cleared a worker's disable: 401 unauthorized); workers obey within seconds" "$OUT"
assert_eq "enable --key: key state gone" 0 \
        "$(sql "SELECT count(*) FROM provider_key_state WHERE provider = 't0043-a'")"
gp enable t0043-a --key "$K2"
assert_eq "enable again: nothing" "provider t0043-a key $K2: was not disabled; nothing changed" "$OUT"
# A provider without a key pool, disabled by a worker (key_id '').
sql "SELECT genq_key_disable('t0043-e', NULL, '403 forbidden', 'w-0043')" >/dev/null
gp enable t0043-e
assert_eq "enable: a keyless provider's worker disable" 0 \
        "$(sql "SELECT count(*) FROM provider_key_state WHERE provider = 't0043-e'")"

# ---- quota ------------------------------------------------------------
add_quotas
gp quota t0043-a --key "$K1" --reset
assert_eq "quota --key: message" \
        "provider t0043-a key $K1: quota reset to 0 of 5000 tokens (per month); workers obey within seconds" "$OUT"
assert_eq "quota --key: only that row" "|requests|42.000000 $K1|tokens|0.000000" \
        "$(sql "SELECT key_id || '|' || unit || '|' || used FROM provider_quota WHERE provider = 't0043-a' ORDER BY key_id" | tr '\n' ' ' | sed 's/ $//')"
gp quota t0043-a --reset --unit requests
assert_eq "quota --unit: exit" 0 "$RC"
assert_eq "quota --unit: used" "0.000000" \
        "$(sql "SELECT used FROM provider_quota WHERE provider = 't0043-a' AND key_id = ''")"
gp quota t0043-a --reset --unit images
assert_eq "quota: no such row exits 1" 1 "$RC"
grep -q "has no free quota in images" <<<"$ERR" || fail "quota: no row: $ERR"

# ---- errors -----------------------------------------------------------
RC=0
"$G" provider list -X postgres.dsn="host=127.0.0.1 port=1 dbname=none connect_timeout=2" \
        >/dev/null 2>"$E2E_OUT/err" || RC=$?
assert_eq "database unreachable: exit" 1 "$RC"
grep -q "genq provider: cannot connect to PostgreSQL" "$E2E_OUT/err" ||
        fail "database error not printed: $(cat "$E2E_OUT/err")"
expect_usage "no subcommand"
expect_usage "unknown subcommand" frob t0043-a
expect_usage "missing NAME" disable
expect_usage "bad NAME" disable 't0043 a!'
expect_usage "NAME too long" disable "t0043-$(printf 'x%.0s' {1..59})"
expect_usage "N too large" priority t0043-a 1001
expect_usage "N too small" priority t0043-a -1001
expect_usage "N not a number" priority t0043-a 5x
expect_usage "N and --clear" priority t0043-a 5 --clear
expect_usage "neither N nor --clear" priority t0043-a
expect_usage "quota without --reset" quota t0043-a
expect_usage "unknown format" list --format xml
expect_usage "option that does not apply" enable t0043-a --reason x
expect_usage "unknown option" disable t0043-a --bogus
expect_usage "extra argument" disable t0043-a t0043-b
expect_usage "missing option value" disable t0043-a --key
expect_usage "empty reason" disable t0043-a --reason ""
expect_usage "control character in reason" disable t0043-a --reason "$(printf 'a\033[2Jb')"
expect_usage "bad UNIT" quota t0043-a --reset --unit 'a b'
assert_eq "bad arguments changed nothing" "" "$(override t0043-a)"
RC=0
"$G" frobnicate >/dev/null 2>"$E2E_OUT/err" || RC=$?
assert_eq "unknown genq command: exit" 2 "$RC"
grep -q "usage: genq COMMAND" "$E2E_OUT/err" || fail "unknown command: no usage"
"$G" help | grep -qE '^  provider +' || fail "genq help does not list provider"
"$G" help provider | grep -q "usage: genq provider list" || fail "genq help provider"
log "ok: usage errors"
