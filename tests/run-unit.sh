#!/usr/bin/env bash
# Run every unit test binary in BUILD/tests and add up Check's counts.
#   tests/run-unit.sh [BUILD]
set -uo pipefail
BUILD=${1:-build}
passed=0 failed=0 bad=""
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        out=$("$t" 2>&1); rc=$?
        line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
        checks=$(printf '%s' "$line" | sed -n 's/.*Checks: \([0-9]*\).*/\1/p')
        fails=$(printf '%s' "$line" | sed -n 's/.*Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2/p')
        f=$(( ${fails% *} + ${fails#* } )) 2>/dev/null || f=1
        if [ -z "$line" ] || [ $rc -ne 0 ]; then
                [ "$f" -eq 0 ] && f=1
                bad="$bad $(basename "$t")"
                printf '%s\n' "$out" | tail -n 30
        fi
        passed=$((passed + ${checks:-0} - f))
        failed=$((failed + f))
        printf '%-28s %s\n' "$(basename "$t")" "${line:-crashed (exit $rc)}"
done
[ -n "$bad" ] && echo "failing:$bad"
echo "unit: $passed passed, $failed failed"
mkdir -p tests/out && echo "$passed $failed" >>tests/out/summary
[ "$failed" -eq 0 ]
