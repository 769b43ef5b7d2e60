#!/usr/bin/env bash
# The demo: a batch of jobs through Kafka, a worker and the providers, then
# a report from Postgres.  `make demo` starts the stack and runs this.
#
#   deploy/demo.sh [BUILD]
#
# By default every provider of the shipped config/genq.yaml is the fake
# provider server (tests/fakeprov), through the overlay config/fake.yaml.
# To call real providers instead, set GENQ_DEMO_CONFIG to your config
# (e.g. config/genq.yaml) and export the API keys it names.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/${1:-build}"
cd "$ROOT"
. .stack/env
OUT="$ROOT/.stack/demo"
mkdir -p "$OUT"
CONFIG=${GENQ_DEMO_CONFIG:-$ROOT/config/genq.yaml:$ROOT/config/fake.yaml}
export GENQ_CONFIG="$CONFIG"
N=${GENQ_DEMO_JOBS:-300}
PIDS=()
cleanup() {
        local p
        for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

if [ -z "${GENQ_DEMO_CONFIG:-}" ]; then
        . "$ROOT/tests/fake-env.sh"
        "$BIN/fakeprov" --port 18080 >"$OUT/fakeprov.log" 2>&1 &
        PIDS+=($!)
        for _ in $(seq 50); do grep -q listening "$OUT/fakeprov.log" && break; sleep 0.1; done
        echo "demo: fake providers on 127.0.0.1:18080 (no real provider is called)"
        # A little weather: groq rate-limits twice, so some jobs show a
        # retry and one falls back to openai.
        curl -sf -X POST http://127.0.0.1:18080/_fake/groq/script \
             -H 'Content-Type: application/json' \
             --data '{"steps":[{"error":"rate_limit"},{"error":"server_error"},{"error":"server_error"},{"error":"server_error"}]}' >/dev/null
fi

"$BIN/genq-worker" -X worker.stats_interval_s=2 >"$OUT/worker.log" 2>&1 &
PIDS+=($!)
echo "demo: worker started (log: $OUT/worker.log)"

# A batch across three tenants and two routes, with fresh ids each run.
run=$(date +%s)
for ((i = 0; i < N; i++)); do
        route=""
        [ $((i % 10)) -eq 0 ] && route=',"route":"realtime"'
        printf '{"job_id":"demo-%s-%04d","tenant_id":"%s"%s,"chat":{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Summarise item %d of the demo batch in one line."}],"max_tokens":64}}\n' \
                "$run" "$i" "$(echo acme globex initech | cut -d' ' -f$((i % 3 + 1)))" "$route" "$i"
done >"$OUT/batch.jsonl"
"$BIN/genq" submit -f "$OUT/batch.jsonl"

echo "demo: waiting for $N jobs..."
q="SELECT count(*) FROM jobs WHERE job_id LIKE 'demo-$run-%' AND finished_at IS NOT NULL"
for _ in $(seq 600); do
        [ "$(psql -X -qtA "$GENQ_POSTGRES_DSN" -c "$q")" -ge "$N" ] && break
        sleep 0.1
done

echo
echo "== jobs of this run =="
psql -X -q "$GENQ_POSTGRES_DSN" -c "
SELECT state, provider, count(*) AS jobs, sum(attempts) AS attempts
FROM jobs WHERE job_id LIKE 'demo-$run-%' GROUP BY 1, 2 ORDER BY 1, 2"
echo "== a few results =="
psql -X -q "$GENQ_POSTGRES_DSN" -c "
SELECT r.job_id, r.provider, r.input_tokens AS in_tok, r.output_tokens AS out_tok,
       left(r.text_content, 50) AS reply
FROM results r WHERE r.job_id LIKE 'demo-$run-%' ORDER BY r.job_id LIMIT 5"
echo "== one job's attempts (retries and fallbacks are recorded) =="
psql -X -q "$GENQ_POSTGRES_DSN" -c "
SELECT job_id, attempt_no, provider, http_status, outcome, latency_ms
FROM attempts WHERE job_id IN (
    SELECT job_id FROM attempts WHERE job_id LIKE 'demo-$run-%'
    GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 1)
ORDER BY attempt_id"
echo "== billing report (all runs): genq report --by tenant,kind,provider =="
"$BIN/genq" report --by tenant,kind,provider
echo
echo "demo: done.  Stop the stack with: make down"
