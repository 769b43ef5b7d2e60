#!/usr/bin/env bash
# Run the end-to-end tests: tests/e2e/NNNN-*.sh, in order, against the
# local stack (deploy/stack.sh up must have run) and the binaries in
# BUILD (default build/).  One fake provider server serves all tests.
#
#   tests/run-e2e.sh [BUILD] [PATTERN]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/${1:-build}"
PATTERN=${2:-}
cd "$ROOT" || exit 1
# The local stack's addresses, unless the caller points elsewhere (a
# separate database, say, so that two runs never share tables).
if [ -f .stack/env ]; then
        dsn=${GENQ_POSTGRES_DSN:-} brokers=${GENQ_KAFKA_BROKERS:-}
        . .stack/env
        GENQ_POSTGRES_DSN=${dsn:-$GENQ_POSTGRES_DSN}
        GENQ_KAFKA_BROKERS=${brokers:-$GENQ_KAFKA_BROKERS}
fi
: "${GENQ_KAFKA_BROKERS:?start the stack first: deploy/stack.sh up}"
: "${GENQ_POSTGRES_DSN:?start the stack first: deploy/stack.sh up}"
export BIN GENQ_KAFKA_BROKERS GENQ_POSTGRES_DSN
export FAKE_PORT=${FAKE_PORT:-18080}
export RUN_ID=$$
OUT="$ROOT/tests/out/${E2E_OUT_NAME:-e2e}"
rm -rf "$OUT" && mkdir -p "$OUT"
# ASan: leaks are errors; UBSan: every report is fatal (built so).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}

"$BIN/fakeprov" --port "$FAKE_PORT" >"$OUT/fakeprov.log" 2>&1 &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null; wait $FAKE_PID 2>/dev/null' EXIT
for _ in $(seq 50); do
        grep -q listening "$OUT/fakeprov.log" && break
        sleep 0.1
done
grep -q listening "$OUT/fakeprov.log" || { cat "$OUT/fakeprov.log"; exit 1; }

passed=0 failed=0 failures=""
for t in tests/e2e/[0-9]*.sh; do
        case "$t" in *"$PATTERN"*) ;; *) continue ;; esac
        name=$(basename "$t" .sh)
        export E2E_OUT="$OUT/$name"
        mkdir -p "$E2E_OUT"
        start=$(date +%s)
        if bash "$t" >"$E2E_OUT/test.log" 2>&1; then
                passed=$((passed + 1))
                echo "PASS $name ($(( $(date +%s) - start ))s)"
        else
                failed=$((failed + 1))
                failures="$failures $name"
                echo "FAIL $name ($(( $(date +%s) - start ))s)"
                sed 's/^/    /' "$E2E_OUT/test.log" | tail -n 40
        fi
done
kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$OUT/fakeprov.log"; then
        failed=$((failed + 1)); failures="$failures fakeprov(sanitizer)"
        tail -n 40 "$OUT/fakeprov.log"
fi
[ -n "$failures" ] && echo "failed:$failures"
echo "e2e: $passed passed, $failed failed"
echo "$passed $failed" >>"$ROOT/tests/out/summary"
[ "$failed" -eq 0 ]
