#!/usr/bin/env bash
# `make demo`'s script runs to the end: every job of every kind succeeds
# and the credit report lists all five kinds.  (Here on this test's own
# topics, with a smaller chat batch.)
. "$(dirname "$0")/lib.sh"
make_config
fake_reset
GENQ_DEMO_JOBS=30 bash "$ROOT/deploy/demo.sh" "${BIN#$ROOT/}" >"$E2E_OUT/demo.out" 2>&1 ||
        fail "demo exited non-zero: $(tail -n 20 "$E2E_OUT/demo.out")"
run=$(sed -n 's/.*"job_id":"demo-\([0-9]*\)-.*/\1/p' "$ROOT/.stack/demo/batch.jsonl" | head -1)
total=$(wc -l <"$ROOT/.stack/demo/batch.jsonl")
assert_eq "demo jobs succeeded" "$total" \
        "$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'demo-$run-%' AND state = 'succeeded'")"
assert_eq "kinds in the demo" "chat image stt tts video" \
        "$(sql "SELECT string_agg(DISTINCT kind, ' ' ORDER BY kind) FROM jobs WHERE job_id LIKE 'demo-$run-%'")"
for k in chat image stt tts video; do
        grep -qE "^[a-z]+ +$k " "$E2E_OUT/demo.out" || fail "the credit report has no $k line"
done
grep -q "polled to the end" "$E2E_OUT/demo.out" || fail "no task section"
