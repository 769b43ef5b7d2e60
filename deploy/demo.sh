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
# The local stack, unless the caller points at other services.
dsn=${GENQ_POSTGRES_DSN:-} brokers=${GENQ_KAFKA_BROKERS:-}
. .stack/env
GENQ_POSTGRES_DSN=${dsn:-$GENQ_POSTGRES_DSN}
GENQ_KAFKA_BROKERS=${brokers:-$GENQ_KAFKA_BROKERS}
export GENQ_POSTGRES_DSN GENQ_KAFKA_BROKERS
OUT="$ROOT/.stack/demo"
mkdir -p "$OUT"
CONFIG=${GENQ_DEMO_CONFIG:-$ROOT/config/genq.yaml:$ROOT/config/fake.yaml}
export GENQ_CONFIG="$CONFIG"
N=${GENQ_DEMO_JOBS:-200}  # chat jobs; plus images, videos, stt, tts
PIDS=()
cleanup() {
        local p
        for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

if [ -z "${GENQ_DEMO_CONFIG:-}" ]; then
        . "$ROOT/tests/fake-env.sh"
        if curl -sf http://127.0.0.1:18080/_fake/ping >/dev/null 2>&1; then
                echo "demo: reusing the fake providers already on 127.0.0.1:18080"
        else
                "$BIN/fakeprov" --port 18080 >"$OUT/fakeprov.log" 2>&1 &
                PIDS+=($!)
                for _ in $(seq 50); do grep -q listening "$OUT/fakeprov.log" && break; sleep 0.1; done
        fi
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

# A mixed batch across three tenants and all five kinds, fresh ids each
# run: chat (some on the "realtime" route), images, videos (async tasks,
# polled to the end), transcriptions of a 3-second clip, speech.
run=$(date +%s)
tenant() { echo acme globex initech | cut -d' ' -f$(($1 % 3 + 1)); }
audio="http://127.0.0.1:18080/_fake/media/tone-3s.wav"
{
for ((i = 0; i < N; i++)); do
        route=""
        [ $((i % 10)) -eq 0 ] && route=',"route":"realtime"'
        printf '{"job_id":"demo-%s-chat-%04d","tenant_id":"%s"%s,"chat":{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Summarise item %d of the demo batch in one line."}],"max_tokens":64}}\n' \
                "$run" "$i" "$(tenant $i)" "$route" "$i"
done
for ((i = 0; i < 12; i++)); do
        printf '{"job_id":"demo-%s-image-%02d","tenant_id":"%s","image":{"prompt":"a lighthouse at dusk, variation %d","size":"1024x1024","aspect_ratio":"1:1"}}\n' "$run" "$i" "$(tenant $i)" "$i"
        printf '{"job_id":"demo-%s-tts-%02d","tenant_id":"%s","tts":{"text":"Demo announcement number %d.","format":"mp3"}}\n' "$run" "$i" "$(tenant $i)" "$i"
done
for ((i = 0; i < 6; i++)); do
        printf '{"job_id":"demo-%s-video-%02d","tenant_id":"%s","video":{"prompt":"a paper boat drifting down a rainy street, shot %d","duration_s":10,"aspect_ratio":"16:9"}}\n' "$run" "$i" "$(tenant $i)" "$i"
        printf '{"job_id":"demo-%s-stt-%02d","tenant_id":"%s","stt":{"audio_url":"%s","language":"en"}}\n' "$run" "$i" "$(tenant $i)" "$audio"
done
printf '{"job_id":"demo-%s-video-board","tenant_id":"acme","route":"storyboard","video":{"scenes":[{"prompt":"a kitten with orange headphones","duration_s":7.5},{"prompt":"the kitten licks its lips","duration_s":7.5}],"aspect_ratio":"16:9"}}\n' "$run"
} >"$OUT/batch.jsonl"
total=$(wc -l <"$OUT/batch.jsonl")
"$BIN/genq" submit -f "$OUT/batch.jsonl"

echo "demo: waiting for $total jobs (videos are polled until their tasks finish)..."
q="SELECT count(*) FROM jobs WHERE job_id LIKE 'demo-$run-%' AND finished_at IS NOT NULL"
for _ in $(seq 1200); do
        [ "$(psql -X -qtA "$GENQ_POSTGRES_DSN" -c "$q")" -ge "$total" ] && break
        sleep 0.1
done

sqlq() { psql -X -q "$GENQ_POSTGRES_DSN" -c "$1"; }
echo
echo "== jobs of this run, by kind =="
sqlq "SELECT kind, state, provider, count(*) AS jobs, sum(attempts) AS attempts
      FROM jobs WHERE job_id LIKE 'demo-$run-%' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
echo "== one result of each kind (usage in its natural unit) =="
sqlq "SELECT DISTINCT ON (j.kind) j.kind, r.provider,
             coalesce(left(r.text_content, 40), r.urls[1],
                      r.content_type || ', ' || r.data_bytes || ' bytes') AS result,
             r.units, r.unit
      FROM results r JOIN jobs j USING (job_id)
      WHERE j.job_id LIKE 'demo-$run-%' ORDER BY j.kind, j.job_id"
echo "== video tasks: submitted once, polled to the end =="
sqlq "SELECT t.job_id, t.provider, t.provider_task_id, t.state, t.polls,
             round(extract(epoch FROM t.finished_at - t.submitted_at)::numeric, 1) AS seconds
      FROM tasks t WHERE t.job_id LIKE 'demo-$run-video%' ORDER BY t.job_id LIMIT 7"
echo "== result media stored (downloaded right after success; URLs expire) =="
sqlq "SELECT a.job_id, a.n, a.bytes, a.content_type, left(a.sha256, 16) AS sha256,
             a.path
      FROM artifacts a WHERE a.job_id LIKE 'demo-$run-video%'
      ORDER BY a.job_id, a.n LIMIT 4"
echo "== a job's attempts (retries and fallbacks are recorded) =="
sqlq "SELECT job_id, attempt_no, provider, http_status, outcome, latency_ms
      FROM attempts WHERE job_id IN (
          SELECT job_id FROM attempts WHERE job_id LIKE 'demo-$run-%'
          GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 1)
      ORDER BY attempt_id"
echo "== credit report: genq report --by tenant,kind,provider =="
"$BIN/genq" report --by tenant,kind,provider --from "$(date -u +%F)"
echo
echo "demo: done.  Stop the stack with: make down"
