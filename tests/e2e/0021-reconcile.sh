#!/usr/bin/env bash
# `genq report --reconcile`: a ledger written as the worker writes it (a
# charge per job at its price snapshot; video holds settled by an
# adjustment or refunded; a hold refunded and the job served elsewhere)
# reconciles, exit 0.  Each kind of damage is then made, found (exit 1,
# the job named, stored and recomputed amounts exact) and undone: a
# charge's credits, a refund that differs from its charge, a price
# snapshot, an adjustment, a refund without its charge, a second charge,
# and a failed job left charged.
. "$(dirname "$0")/lib.sh"
reset_db

# Prices as the worker snapshots them (config/genq.yaml style), and the
# amounts worked out by hand:
#   rc-chat   1200 in, 345 out at 0.01 / 0.016 credits and 0.00005 /
#             0.00008 usd per 1K: 0.017520 credits, 0.00008760 usd
#   rc-round  7 in, 3 out at 0.0123457 / 0.0098765 and 0.0000617 /
#             0.0000494: 0.0001160494 -> 0.000116, 0.0000005801 -> 0.00000058
#   rc-img    2 images at 6 / 0.03: 12, 0.06
#   rc-tts    26 characters at 0.06 / 0.0003: 1.56, 0.0078
#   rc-stt    3.5 seconds at 0.2 / 0.001: 0.7, 0.0035
#   rc-vok    video: hold 10 s at 4 / 0.02 = 40, 0.2; made 8 s: -8, -0.04
#   rc-vfail  video: hold 40, 0.2, refunded
#   rc-vfb    video: hold at kie refunded, then 5 s at sf-video 3 / 0.015:
#             adjustment 15, 0.075
sql "
INSERT INTO tenants (tenant_id) VALUES ('rc');
INSERT INTO jobs (job_id, tenant_id, kind, state, provider, created_at,
                  finished_at) VALUES
 ('rc-chat', 'rc', 'chat', 'succeeded', 'groq', now(), now()),
 ('rc-round', 'rc', 'chat', 'succeeded', 'mistral', now(), now()),
 ('rc-img', 'rc', 'image', 'succeeded', 'stability', now(), now()),
 ('rc-tts', 'rc', 'tts', 'succeeded', 'elevenlabs', now(), now()),
 ('rc-stt', 'rc', 'stt', 'succeeded', 'groq-whisper', now(), now()),
 ('rc-vok', 'rc', 'video', 'succeeded', 'kie', now(), now()),
 ('rc-vfail', 'rc', 'video', 'failed', 'kie', now(), now()),
 ('rc-vfb', 'rc', 'video', 'succeeded', 'sf-video', now(), now());
INSERT INTO results (job_id, provider, input_tokens, output_tokens, units,
                     unit) VALUES
 ('rc-chat', 'groq', 1200, 345, 1545, 'tokens'),
 ('rc-round', 'mistral', 7, 3, 10, 'tokens'),
 ('rc-img', 'stability', NULL, NULL, 2, 'image'),
 ('rc-tts', 'elevenlabs', NULL, NULL, 26, 'character'),
 ('rc-stt', 'groq-whisper', NULL, NULL, 3.5, 'second'),
 ('rc-vok', 'kie', NULL, NULL, 8, 'second'),
 ('rc-vfb', 'sf-video', NULL, NULL, 5, 'second');
CREATE TEMP TABLE price (provider text, p jsonb);
INSERT INTO price VALUES
 ('groq', '{\"unit\": \"1k_tokens\", \"per\": 1000, \"provider\": \"groq\",
   \"input_credits\": \"0.01\", \"output_credits\": \"0.016\",
   \"input_usd\": \"0.00005\", \"output_usd\": \"0.00008\",
   \"estimated_usage\": false}'),
 ('mistral', '{\"unit\": \"1k_tokens\", \"per\": 1000,
   \"input_credits\": \"0.0123457\", \"output_credits\": \"0.0098765\",
   \"input_usd\": \"0.0000617\", \"output_usd\": \"0.0000494\"}'),
 ('stability', '{\"unit\": \"image\", \"per\": 1, \"unit_credits\": \"6\",
   \"unit_usd\": \"0.03\"}'),
 ('elevenlabs', '{\"unit\": \"character\", \"per\": 1,
   \"unit_credits\": \"0.06\", \"unit_usd\": \"0.0003\"}'),
 ('groq-whisper', '{\"unit\": \"second\", \"per\": 1,
   \"unit_credits\": \"0.2\", \"unit_usd\": \"0.001\"}'),
 ('kie', '{\"unit\": \"second\", \"per\": 1, \"unit_credits\": \"4\",
   \"unit_usd\": \"0.02\", \"estimated_usage\": true}'),
 ('sf-video', '{\"unit\": \"second\", \"per\": 1, \"unit_credits\": \"3\",
   \"unit_usd\": \"0.015\"}');
INSERT INTO credit_ledger (job_id, tenant_id, entry_type, credits, usd, kind,
                           provider, unit, units, price_snapshot,
                           job_accepted_at)
SELECT e.job, 'rc', e.t, e.c, e.u, j.kind, e.prov, e.unit, e.n, p.p,
       j.accepted_at
FROM (VALUES
 ('rc-chat', 'charge', 0.017520, 0.00008760, 'groq', 'tokens', 1545),
 ('rc-round', 'charge', 0.000116, 0.00000058, 'mistral', 'tokens', 10),
 ('rc-img', 'charge', 12, 0.06, 'stability', 'image', 2),
 ('rc-tts', 'charge', 1.56, 0.0078, 'elevenlabs', 'character', 26),
 ('rc-stt', 'charge', 0.7, 0.0035, 'groq-whisper', 'second', 3.5),
 ('rc-vok', 'charge', 40, 0.2, 'kie', 'second', 10),
 ('rc-vok', 'adjustment', -8, -0.04, 'kie', 'second', 8),
 ('rc-vfail', 'charge', 40, 0.2, 'kie', 'second', 10),
 ('rc-vfail', 'refund', 40, 0.2, 'kie', 'second', 10),
 ('rc-vfb', 'charge', 40, 0.2, 'kie', 'second', 10),
 ('rc-vfb', 'refund', 40, 0.2, 'kie', 'second', 10),
 ('rc-vfb', 'adjustment', 15, 0.075, 'sf-video', 'second', 5))
 e(job, t, c, u, prov, unit, n)
JOIN jobs j ON j.job_id = e.job
JOIN price p ON p.provider = e.prov;
" >/dev/null || fail "cannot insert the ledger"
assert_eq "entries written" 12 "$(sql "SELECT count(*) FROM credit_ledger")"

# reconcile [ARGS]: run it; its stdout in $OUT, its exit code in $RC.
reconcile() {
        RC=0
        OUT=$("$BIN/genq" report --reconcile "$@" 2>"$E2E_OUT/reconcile.err") || RC=$?
}
reconciles() { # DESCRIPTION
        reconcile
        assert_eq "$1: exit code" 0 "$RC"
        assert_eq "$1: message" "ledger reconciles: 12 entries checked" "$OUT"
}
# finds DESCRIPTION EXPECTED_CSV_ROWS: exit 1 and exactly these rows.
finds() {
        reconcile --format csv
        assert_eq "$1: exit code" 1 "$RC"
        assert_eq "$1: header" \
                "job_id,entry_type,stored_credits,computed_credits,stored_usd,computed_usd,problem" \
                "$(head -n 1 <<<"$OUT")"
        assert_eq "$1: rows" "$2" "$(tail -n +2 <<<"$OUT")"
        grep -q "do not reconcile" "$E2E_OUT/reconcile.err" ||
                fail "$1: no summary on stderr"
}

reconciles "correct ledger"

# A charge's credits off by one millionth.
sql "UPDATE credit_ledger SET credits = 0.017521 WHERE job_id = 'rc-chat'" >/dev/null
finds "tampered charge" \
        "rc-chat,charge,0.017521,0.017520,0.00008760,0.00008760,charge_mismatch"
reconcile
assert_eq "table output: exit code" 1 "$RC"
grep -q "rc-chat .*charge_mismatch" <<<"$OUT" || fail "table output does not name rc-chat: $OUT"
reconcile --format json
assert_eq "json output: exit code" 1 "$RC"
assert_eq "json output: strings, exact" "rc-chat 0.017521 0.017520 charge_mismatch" \
        "$(python3 -c '
import json, sys
rows = json.load(sys.stdin)
assert all(isinstance(v, str) for r in rows for v in r.values())
print(" ".join(rows[0][k] for k in ("job_id", "stored_credits", "computed_credits", "problem")))' <<<"$OUT")"
sql "UPDATE credit_ledger SET credits = 0.017520 WHERE job_id = 'rc-chat'" >/dev/null
reconciles "charge restored"

# Rounding: one unit in the last place of usd.
sql "UPDATE credit_ledger SET usd = 0.00000059 WHERE job_id = 'rc-round'" >/dev/null
finds "usd off in the 8th place" \
        "rc-round,charge,0.000116,0.000116,0.00000059,0.00000058,charge_mismatch"
sql "UPDATE credit_ledger SET usd = 0.00000058 WHERE job_id = 'rc-round'" >/dev/null

# A refund that gives back less than its charge.
sql "UPDATE credit_ledger SET credits = 39.999999 WHERE job_id = 'rc-vfail' AND entry_type = 'refund'" >/dev/null
finds "refund differs from its charge" \
        "rc-vfail,charge,0.000001,0,0.00000000,0,failed_job_charged
rc-vfail,refund,39.999999,40.000000,0.20000000,0.20000000,refund_mismatch"
sql "UPDATE credit_ledger SET credits = 40 WHERE job_id = 'rc-vfail' AND entry_type = 'refund'" >/dev/null

# A price snapshot changed after the fact, then one that cannot be read.
sql "UPDATE credit_ledger SET price_snapshot = jsonb_set(price_snapshot, '{unit_credits}', '\"7\"') WHERE job_id = 'rc-img'" >/dev/null
finds "tampered price snapshot" \
        "rc-img,charge,12.000000,14.000000,0.06000000,0.06000000,charge_mismatch"
sql "UPDATE credit_ledger SET price_snapshot = jsonb_set(price_snapshot, '{unit_credits}', '\"6\"') WHERE job_id = 'rc-img'" >/dev/null
sql "UPDATE credit_ledger SET price_snapshot = jsonb_set(price_snapshot, '{per}', '\"zero\"') WHERE job_id = 'rc-tts'" >/dev/null
finds "unreadable price snapshot" \
        "rc-tts,charge,1.560000,,0.00780000,,usage_unknown"
sql "UPDATE credit_ledger SET price_snapshot = jsonb_set(price_snapshot, '{per}', '1') WHERE job_id = 'rc-tts'" >/dev/null
# Usage changed under a charge: the results row says more tokens.
sql "UPDATE results SET output_tokens = 346 WHERE job_id = 'rc-chat'" >/dev/null
finds "usage differs from the charge" \
        "rc-chat,charge,0.017520,0.017536,0.00008760,0.00008768,charge_mismatch"
sql "UPDATE results SET output_tokens = 345 WHERE job_id = 'rc-chat'" >/dev/null
reconciles "snapshots and usage restored"

# An adjustment that does not settle the hold to the real cost.
sql "UPDATE credit_ledger SET credits = -7 WHERE job_id = 'rc-vok' AND entry_type = 'adjustment'" >/dev/null
finds "adjustment off" \
        "rc-vok,adjustment,-7.000000,-8.000000,-0.04000000,-0.04000000,adjustment_mismatch"
sql "UPDATE credit_ledger SET credits = -8 WHERE job_id = 'rc-vok' AND entry_type = 'adjustment'" >/dev/null

# A refund whose charge is gone (so the failed job is in credit).
sql "DELETE FROM credit_ledger WHERE job_id = 'rc-vfail' AND entry_type = 'charge'" >/dev/null
finds "refund without a charge" \
        "rc-vfail,charge,-40.000000,0,-0.20000000,0,failed_job_charged
rc-vfail,refund,40.000000,,0.20000000,,refund_without_charge"
# A failed job charged and never refunded.
sql "UPDATE credit_ledger SET entry_type = 'charge' WHERE job_id = 'rc-vfail'" >/dev/null
finds "failed job not refunded" \
        "rc-vfail,charge,40.000000,0,0.20000000,0,failed_job_charged"
sql "INSERT INTO credit_ledger (job_id, tenant_id, entry_type, credits, usd,
        kind, provider, unit, units, price_snapshot, job_accepted_at)
     SELECT job_id, tenant_id, 'refund', credits, usd, kind, provider, unit,
        units, price_snapshot, job_accepted_at
     FROM credit_ledger WHERE job_id = 'rc-vfail'" >/dev/null
reconciles "refund restored"

# A second charge (another acceptance time gets past the unique key).
sql "INSERT INTO credit_ledger (job_id, tenant_id, entry_type, credits, usd,
        kind, provider, unit, units, price_snapshot, job_accepted_at)
     SELECT job_id, tenant_id, 'charge', credits, usd, kind, provider, unit,
        units, price_snapshot, job_accepted_at + interval '1 second'
     FROM credit_ledger WHERE job_id = 'rc-img'" >/dev/null
finds "charged twice" \
        "rc-img,charge,24.000000,12.000000,0.12000000,0.06000000,duplicate_charge"
sql "DELETE FROM credit_ledger WHERE job_id = 'rc-img' AND job_accepted_at <> (SELECT accepted_at FROM jobs WHERE job_id = 'rc-img')" >/dev/null

reconciles "all damage undone"
reconcile --format csv
assert_eq "csv when it reconciles: the header only, exit 0" "0|1" "$RC|$(wc -l <<<"$OUT")"
code=0; "$BIN/genq" report --reconcile --tenant rc >/dev/null 2>&1 || code=$?
assert_eq "--reconcile with a filter is a usage error" 2 "$code"
