#!/usr/bin/env bash
# make bench: end-to-end throughput of one worker process on this box.
# Prints figures; asserts nothing (timing belongs here, not in tests).
#
#   tests/bench/run.sh [BUILD]     env: BENCH_JOBS (default 20000)
#
# Everything shares the machine: broker, Postgres, the fake provider, the
# producer and the worker.  Reported: wall time from the first message
# consumed to the last job committed, jobs/s, the worker's CPU per job
# (user+sys from /proc), its peak RSS, and the fake's request count.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/${1:-build}"
N=${BENCH_JOBS:-20000}
cd "$ROOT"
. .stack/env
OUT="$ROOT/tests/out/bench"
mkdir -p "$OUT"
. "$ROOT/tests/fake-env.sh"
PREFIX="bench$$"
export GENQ_KAFKA_TOPIC_PREFIX=$PREFIX GENQ_KAFKA_DLQ_TOPIC=$PREFIX.dlq \
       GENQ_WORKER_GROUP_ID=$PREFIX GENQ_KAFKA_EVENTS_TOPIC=$PREFIX.events
PORT=18090
"$BIN/fakeprov" --port $PORT >"$OUT/fakeprov.log" 2>&1 &
FAKE=$!
trap 'kill $FAKE $WORKER 2>/dev/null; wait 2>/dev/null' EXIT
WORKER=
# The shipped config, with the fake overlay moved to this bench's port.
sed "s/127.0.0.1:18080/127.0.0.1:$PORT/" "$ROOT/config/fake.yaml" >"$OUT/fake.yaml"
export GENQ_CONFIG="$ROOT/config/genq.yaml:$OUT/fake.yaml"
"$BIN/genq" topics create >/dev/null
psql -X -qtA "$GENQ_POSTGRES_DSN" -c "TRUNCATE tenants, jobs, attempts, tasks, results, credit_ledger, provider_quota, provider_slots, provider_rate_log, provider_limits, provider_key_state CASCADE" 2>/dev/null >/dev/null

# Jobs first, so the worker's run is pure consumption.
for ((i = 0; i < N; i++)); do
        printf '{"job_id":"b%s-%06d","tenant_id":"t%d","chat":{"messages":[{"role":"user","content":"benchmark prompt number %d"}]}}\n' \
                "$$" "$i" $((i % 8)) "$i"
done >"$OUT/jobs.jsonl"
t0=$(date +%s.%N)
"$BIN/genq" submit -f "$OUT/jobs.jsonl" 2>"$OUT/submit.err" >/dev/null
t1=$(date +%s.%N)

"$BIN/genq-worker" -X log.level=warn \
        -X worker.max_inflight=4000 -X worker.low_water=3000 \
        >"$OUT/worker.log" 2>&1 &
WORKER=$!
start=""
peak_rss=0
while :; do
        done_n=$(psql -X -qtA "$GENQ_POSTGRES_DSN" -c "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL")
        [ -z "$start" ] && [ "$done_n" -gt 0 ] && start=$(date +%s.%N)
        rss=$(awk '/VmHWM/ {print $2}' /proc/$WORKER/status 2>/dev/null || echo 0)
        [ "${rss:-0}" -gt "$peak_rss" ] && peak_rss=$rss
        [ "$done_n" -ge "$N" ] && break
        sleep 0.05
done
end=$(date +%s.%N)
read -r ut st < <(awk '{print $14, $15}' /proc/$WORKER/stat)
tck=$(getconf CLK_TCK)
kill -TERM $WORKER; wait $WORKER || true; WORKER=
reqs=$(curl -sf http://127.0.0.1:$PORT/_fake/stats | grep -o '"requests":[0-9]*' | awk -F: '{s += $2} END {print s + 0}')
awk -v n="$N" -v s0="$t0" -v s1="$t1" -v a="$start" -v b="$end" \
    -v ut="$ut" -v st="$st" -v tck="$tck" -v rss="$peak_rss" -v reqs="$reqs" 'BEGIN {
        printf "bench: %d chat jobs, one worker, everything on this box\n", n
        printf "  submit (genq submit, acks=all): %.2f s, %.0f jobs/s\n", s1 - s0, n / (s1 - s0)
        printf "  end to end (consume, call, commit): %.2f s, %.0f jobs/s\n", b - a, n / (b - a)
        printf "  worker CPU: %.1f us/job (user+sys, incl. start-up)\n", (ut + st) / tck * 1e6 / n
        printf "  worker peak RSS: %.1f MiB\n", rss / 1024
        printf "  fake provider requests: %s\n", reqs
}'

# ---- many calls in flight: memory per call ------------------------------
# DESIGN's target: 10,000 provider calls in flight per process at 32 KiB
# each or less.  The fake holds every call for 3 s; the worker may have
# 10,000 jobs in flight.  RSS at the peak minus RSS when idle, per call.
M=${BENCH_INFLIGHT:-10000}
psql -X -qtA "$GENQ_POSTGRES_DSN" -c "TRUNCATE tenants, jobs, attempts, tasks, results, credit_ledger, provider_quota, provider_slots, provider_rate_log, provider_limits, provider_key_state CASCADE" >/dev/null 2>&1
curl -sf -X POST http://127.0.0.1:$PORT/_fake/reset >/dev/null
curl -sf -X POST http://127.0.0.1:$PORT/_fake/groq/config -H 'Content-Type: application/json' \
        --data '{"latency_ms":3000}' >/dev/null
# Fresh topics: the first part's messages must not count as idle memory.
export GENQ_KAFKA_TOPIC_PREFIX=$PREFIX-f GENQ_KAFKA_DLQ_TOPIC=$PREFIX-f.dlq \
       GENQ_WORKER_GROUP_ID=$PREFIX-f GENQ_KAFKA_EVENTS_TOPIC=$PREFIX-f.events
"$BIN/genq" topics create >/dev/null
"$BIN/genq-worker" -X log.level=warn \
        -X worker.max_inflight=$M -X worker.low_water=$((M / 2)) \
        -X worker.lease_s=120 >"$OUT/worker-inflight.log" 2>&1 &
WORKER=$!
sleep 3
idle_rss=$(awk '/VmRSS/ {print $2}' /proc/$WORKER/status)
ulimit -n 65536 2>/dev/null || true
for ((i = 0; i < M; i++)); do
        printf '{"job_id":"f%s-%06d","tenant_id":"t%d","chat":{"prompt":"hold %d"}}\n' "$$" "$i" $((i % 8)) "$i"
done >"$OUT/inflight.jsonl"
"$BIN/genq" submit -f "$OUT/inflight.jsonl" 2>/dev/null >/dev/null
peak=0 peak_rss=0
for _ in $(seq 100); do
        cur=$(curl -sf http://127.0.0.1:$PORT/_fake/groq/stats | sed -n 's/.*"inflight":\([0-9]*\).*/\1/p')
        rss=$(awk '/VmRSS/ {print $2}' /proc/$WORKER/status)
        [ "${cur:-0}" -gt "$peak" ] && peak=$cur
        [ "${rss:-0}" -gt "$peak_rss" ] && peak_rss=$rss
        done_n=$(psql -X -qtA "$GENQ_POSTGRES_DSN" -c "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL")
        [ "$done_n" -ge "$M" ] && break
        sleep 0.1
done
kill -TERM $WORKER; wait $WORKER || true; WORKER=
awk -v m="$M" -v peak="$peak" -v idle="$idle_rss" -v top="$peak_rss" 'BEGIN {
        printf "bench: %d calls held 3 s by the provider, one worker\n", m
        printf "  peak calls in flight at the provider: %d\n", peak
        printf "  worker RSS idle %.1f MiB, at peak %.1f MiB\n", idle / 1024, top / 1024
        if (peak > 0) printf "  memory per call in flight: %.1f KiB (all job state included)\n", (top - idle) / peak
}'
