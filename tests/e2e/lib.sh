# Shared helpers for the end-to-end tests (sourced, bash).
#
# Every test runs against the real Kafka broker and PostgreSQL server that
# deploy/stack.sh started, the fake provider server (tests/fakeprov) and
# the real genq and genq-worker binaries.  Isolation: each test gets its
# own topic prefix and consumer group, and starts from empty tables.
#
# Inputs from tests/run-e2e.sh: BIN (build dir), FAKE_PORT, GENQ_KAFKA_BROKERS,
# GENQ_POSTGRES_DSN, E2E_OUT (scratch dir for this test).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TEST_NAME=$(basename "$0" .sh)
RUN_ID=${RUN_ID:-$$}
PREFIX="e2e${RUN_ID}.${TEST_NAME//[^a-zA-Z0-9]/_}"
# The shipped configuration with the fake overlay: what a user runs, with
# only base URLs and keys pointing at the fake provider server.
overlay="$ROOT/config/fake.yaml"
if [ "${FAKE_PORT:-18080}" != 18080 ]; then
        # The fake runs elsewhere: the same overlay on its port.
        overlay="$E2E_OUT/fake.yaml"
        sed "s/127.0.0.1:18080/127.0.0.1:$FAKE_PORT/" "$ROOT/config/fake.yaml" >"$overlay"
fi
export GENQ_CONFIG="$ROOT/config/genq.yaml:$overlay"
. "$ROOT/tests/fake-env.sh"
WORKER_PIDS=()

log() { printf '  %s\n' "$*" >&2; }

fail() {
        printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
        for f in "$E2E_OUT"/worker*.log; do
                [ -f "$f" ] || continue
                printf -- '--- last lines of %s\n' "$f" >&2
                tail -n 15 "$f" >&2
        done
        exit 1
}

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
        [ "$2" == "$3" ] || fail "$1: expected '$2', got '$3'"
        log "ok: $1 = $3"
}

sql() { psql -X -q -t -A "$GENQ_POSTGRES_DSN" -c "$1"; }

# Empty the job tables (the schema stays).
reset_db() {
        "$BIN/genq" migrate >/dev/null 2>&1 || fail "genq migrate"
        sql "TRUNCATE tenants, jobs, attempts, tasks, results, credit_ledger,
             provider_quota, task_callbacks, hook_deliveries, job_cancels,
             provider_key_state, provider_overrides, provider_slots,
             provider_rate_log, provider_limits, response_cache CASCADE" >/dev/null
        sql "UPDATE policy_clock SET offset_s = 0" >/dev/null
}

# Give this test its own topics and consumer group (environment overrides
# of the shipped config) and create the topics.
make_config() {
        GENQ_KAFKA_TOPIC_PREFIX="$PREFIX"
        GENQ_KAFKA_DLQ_TOPIC="$PREFIX.dlq"
        GENQ_KAFKA_EVENTS_TOPIC="$PREFIX.events"
        GENQ_WORKER_GROUP_ID="$PREFIX"
        export GENQ_KAFKA_TOPIC_PREFIX GENQ_KAFKA_DLQ_TOPIC \
               GENQ_KAFKA_EVENTS_TOPIC GENQ_WORKER_GROUP_ID
        "$BIN/genq" topics create --partitions "${PARTITIONS:-6}" >/dev/null ||
                fail "cannot create topics"
}

fake() { # fake METHOD PATH [JSON]
        curl -sf -X "$1" "http://127.0.0.1:$FAKE_PORT$2" \
             ${3:+-H 'Content-Type: application/json' --data "$3"}
}

fake_reset() { fake POST /_fake/reset >/dev/null; }

# start_worker NAME [-X k=v ...]: a worker in the background, log in
# $E2E_OUT/worker-NAME.log.
start_worker() {
        local name=$1; shift
        "$BIN/genq-worker" "$@" >"$E2E_OUT/worker-$name.log" 2>&1 &
        WORKER_PIDS+=($!)
        eval "WORKER_$name=$!"
}

# Stop every worker with SIGTERM.  A worker must drain and exit 0, and no
# log may hold a sanitizer report: either fails the test.
stop_workers() {
        local p rc bad=""
        for p in "${WORKER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        for p in "${WORKER_PIDS[@]}"; do
                rc=0; wait "$p" 2>/dev/null || rc=$?
                [ "$rc" -eq 0 ] || bad="$bad pid $p exited $rc;"
        done
        WORKER_PIDS=()
        if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" \
                "$E2E_OUT"/worker*.log 2>/dev/null; then
                bad="$bad sanitizer report in a worker log;"
        fi
        [ -z "$bad" ] || fail "workers:$bad"
}
trap 'rc=$?; stop_workers; exit $rc' EXIT

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: poll until COMMAND succeeds.
wait_for() {
        local what=$1 limit=$2 i; shift 2
        for ((i = 0; i < limit * 10; i++)); do
                if "$@" >/dev/null 2>&1; then return 0; fi
                sleep 0.1
        done
        fail "timed out after ${limit}s waiting for: $what"
}

# True when SQL returns EXPECTED.
sql_is() { [ "$(sql "$1")" == "$2" ]; }

# Chat jobs as JSON Lines: gen_chat N ID_PREFIX TENANT_COUNT
gen_chat() {
        local n=$1 idp=$2 tenants=${3:-1} i
        for ((i = 0; i < n; i++)); do
                printf '{"job_id":"%s-%05d","tenant_id":"t%d","chat":{"messages":[{"role":"user","content":"question %d about the weather today"}]}}\n' \
                        "$idp" "$i" $((i % tenants)) "$i"
        done
}

# Read up to N messages of TOPIC as JSON lines (key, headers, value info).
tail_topic() { "$BIN/genq" tail --topic "$1" --max "$2" --timeout "${3:-20}"; }

# Messages consumed so far by every worker of this test: the sum of each
# worker log's latest stats "in=" count (start workers with
# -X worker.stats_interval_s=1 to keep it fresh).
workers_in() {
        local f total=0 n
        for f in "$E2E_OUT"/worker-*.log; do
                n=$(grep -o 'in=[0-9]*' "$f" | tail -n 1 | cut -d= -f2)
                total=$((total + ${n:-0}))
        done
        echo "$total"
}
