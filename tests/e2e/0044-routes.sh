#!/usr/bin/env bash
# Route strategies and context windows, chosen by the job's "route":
#  - latency: the provider with the lower recent average latency in this
#    worker goes first; exploration (policy.latency_explore) still sends a
#    few jobs to the slower one so its latency stays known;
#  - weighted: over 10,000 jobs the provider tried first (here: who served,
#    nothing fails) is split as the weights say, within 2 percentage points
#    (4 binomial standard deviations or more);
#  - min_context: providers with a smaller (or unknown) window are left
#    out of the route, the boundary included (window == min_context
#    qualifies);
#  - every chat job: a provider whose window is smaller than the prompt's
#    estimated tokens (bytes / 4) plus max_tokens is never called; if none
#    is left the job fails (fatal_job) and says so.
# The latency part runs first, on the fresh worker (no latency known yet).
. "$(dirname "$0")/lib.sh"

N_SPLIT=10000
TOL_PP=2

# Extra routes (an overlay, layered like config/fake.yaml).  openai,
# mistral, anthropic and perplexity have no free quota and no shared
# limit: nothing but the route decides who serves.
cat >"$E2E_OUT/routes.yaml" <<'EOF'
routes:
  chat:
    split:
      strategy: weighted
      providers: [openai, mistral, anthropic, perplexity]
      weights: [50, 20, 20, 10]
    fast:
      strategy: latency
      providers: [mistral, openai]
    # mistral 32768 and perplexity 127072 are below the minimum, openai's
    # 128000 is exactly it.
    wide:
      providers: [mistral, perplexity, openai]
      min_context: 128000
    narrow:
      providers: [mistral, perplexity]
      min_context: 128000
EOF
export GENQ_CONFIG="$GENQ_CONFIG:$E2E_OUT/routes.yaml"

reset_db
log "database: $(sql "SELECT current_database()")"
fake_reset
make_config
start_worker a -X policy.latency_explore=0.05

served_by() { sql "SELECT coalesce(provider, '-') FROM jobs WHERE job_id='$1'"; }
trail() {
        sql "SELECT coalesce(string_agg(provider||':'||outcome, ',' ORDER BY attempt_id), '')
             FROM attempts WHERE job_id='$1'"
}
fake_requests() { fake GET "/_fake/$1/stats" | grep -o '"requests":[0-9]*' | cut -d: -f2; }

# ---- 1. latency: the faster provider first --------------------------------
t0=$(date +%s)
fake POST /_fake/mistral/config '{"latency_ms":150}' >/dev/null
# Warm-up, one job at a time: the first goes to mistral (nothing known,
# the route's order), the second to openai (the only unknown left), then
# both latencies are known.
for ((i = 0; i < 20; i++)); do
        id=$(printf 'warm-%02d' "$i")
        "$BIN/genq" submit --job-id "$id" --tenant t0 --route fast \
                --prompt "warm up $i" >/dev/null || fail "submit $id"
        wait_for "$id succeeded" 20 sql_is "SELECT state FROM jobs WHERE job_id='$id'" succeeded
done
warm=$(sql "SELECT provider||'='||count(*) FROM attempts WHERE job_id LIKE 'warm-%'
            AND outcome='success' GROUP BY provider ORDER BY provider" | paste -sd' ')
log "warm-up attempts: $warm"
for p in mistral openai; do
        [ -n "$(sql "SELECT 1 FROM attempts WHERE job_id LIKE 'warm-%' AND provider='$p'
                     AND outcome='success' LIMIT 1")" ] ||
                fail "warm-up never measured $p (successes: $warm)"
done
awk 'BEGIN { for (i = 0; i < 300; i++)
        printf "{\"job_id\":\"fast-%03d\",\"tenant_id\":\"t%d\",\"route\":\"fast\",\"chat\":{\"messages\":[{\"role\":\"user\",\"content\":\"quick question %d\"}]}}\n", i, i % 3, i }' \
        >"$E2E_OUT/fast.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/fast.jsonl" || fail "submit fast.jsonl"
wait_for "300 fast jobs finished" 60 sql_is \
        "SELECT count(*) FROM jobs WHERE job_id LIKE 'fast-%' AND finished_at IS NOT NULL" 300
assert_eq "fast jobs succeeded" 300 \
        "$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'fast-%' AND state='succeeded'")"
n_openai=$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'fast-%' AND provider='openai'")
n_mistral=$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'fast-%' AND provider='mistral'")
lat=$(sql "SELECT provider||' avg '||round(avg(latency_ms))||' ms' FROM attempts
           WHERE job_id LIKE 'fast-%' GROUP BY provider ORDER BY provider" | paste -sd',')
log "fast route: openai $n_openai, mistral $n_mistral of 300 ($lat)"
[ "$n_openai" -ge 255 ] ||
        fail "latency route: openai (fast) served $n_openai of 300, expected >= 255 (85%); mistral $n_mistral; $lat"
log "ok: openai served $n_openai >= 255 of 300"
[ "$n_mistral" -ge 1 ] ||
        fail "latency route: mistral (slow) served $n_mistral of 300: no exploration at latency_explore=0.05"
log "ok: mistral still explored ($n_mistral of 300)"
assert_eq "fast jobs: one attempt each" 300 \
        "$(sql "SELECT count(*) FROM attempts WHERE job_id LIKE 'fast-%'")"
log "latency part: $(( $(date +%s) - t0 )) s"
fake POST /_fake/mistral/config '{"latency_ms":0}' >/dev/null

# ---- 2. weighted: the split over 10,000 jobs -------------------------------
t0=$(date +%s)
awk -v n="$N_SPLIT" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"job_id\":\"split-%05d\",\"tenant_id\":\"t%d\",\"route\":\"split\",\"chat\":{\"messages\":[{\"role\":\"user\",\"content\":\"question %d about the weather today\"}]}}\n", i, i % 3, i }' \
        >"$E2E_OUT/split.jsonl"
"$BIN/genq" submit -f "$E2E_OUT/split.jsonl" || fail "submit split.jsonl"
wait_for "$N_SPLIT split jobs finished" 120 sql_is \
        "SELECT count(*) FROM jobs WHERE job_id LIKE 'split-%' AND finished_at IS NOT NULL" "$N_SPLIT"
assert_eq "split jobs succeeded" "$N_SPLIT" \
        "$(sql "SELECT count(*) FROM jobs WHERE job_id LIKE 'split-%' AND state='succeeded'")"
assert_eq "split jobs: one attempt each (the first provider tried served)" "$N_SPLIT" \
        "$(sql "SELECT count(*) FROM attempts WHERE job_id LIKE 'split-%'")"
counts=$(sql "SELECT provider||' '||count(*) FROM jobs WHERE job_id LIKE 'split-%' GROUP BY provider")
log "split counts: $(echo "$counts" | paste -sd',')"
verdict=$(awk -v n="$N_SPLIT" -v tol="$TOL_PP" -v counts="$counts" 'BEGIN {
        w["openai"] = 50; w["mistral"] = 20; w["anthropic"] = 20; w["perplexity"] = 10;
        m = split(counts, lines, "\n");
        for (i = 1; i <= m; i++) { split(lines[i], f, " "); c[f[1]] = f[2];
                if (!(f[1] in w)) bad = bad " " f[1] " is not on the route (" f[2] " jobs);" }
        for (p in w) {
                share = 100.0 * c[p] / n; d = share - w[p];
                printf "%s %.2f%% (weight %d%%, %+.2f pp)\n", p, share, w[p], d;
                if (d > tol || d < -tol) bad = bad " " p " off by " sprintf("%+.2f", d) " pp;";
        }
        if (bad != "") print "BAD" bad; }')
echo "$verdict" | grep -v '^BAD' | while read -r line; do log "share: $line"; done
if echo "$verdict" | grep -q '^BAD'; then
        fail "weighted split outside +-$TOL_PP pp:$(echo "$verdict" | sed -n 's/^BAD//p')"
fi
log "ok: every share within +-$TOL_PP pp of its weight"
log "weighted part: $(( $(date +%s) - t0 )) s for $N_SPLIT jobs"

# ---- 3. context windows ------------------------------------------------------
# A ~200 KB prompt: ceil(200000 / 4) = 50000 estimated tokens, over
# mistral's 32768 and under openai's 128000.  It goes through the
# producer (Kafka's default message limit is 1 MB).
big=$(head -c 200000 /dev/zero | tr '\0' 'a' | sed 's/aaaaaaaaa./aaaaaaaaa /g')
# 120000 bytes = 30000 tokens: with max_tokens 2768 exactly mistral's
# 32768 (fits), with 2769 one over.
mid=${big:0:120000}
job() { # job ID PROVIDERS_JSON_OR_ROUTE CONTENT [MAX_TOKENS]
        local sel
        case "$2" in \[*) sel="\"providers\":$2" ;; *) sel="\"route\":\"$2\"" ;; esac
        printf '{"job_id":"%s","tenant_id":"t0",%s,"chat":{"messages":[{"role":"user","content":"%s"}]%s}}\n' \
                "$1" "$sel" "$3" "${4:+,\"max_tokens\":$4}"
}
{
        job long-small long "a question for a long route"
        job long-big long "$big"
        job wide-1 wide "a question for a wide route"
        job narrow-1 narrow "a question for a narrow route"
        job big-mo '["mistral","openai"]' "$big"
        job big-m '["mistral"]' "$big"
        job mid-fit '["mistral","openai"]' "$mid" 2768
        job mid-over '["mistral","openai"]' "$mid" 2769
} >"$E2E_OUT/ctx.jsonl"
log "ctx.jsonl: $(wc -c <"$E2E_OUT/ctx.jsonl") bytes, big prompt ${#big} bytes"
n_mistral0=$(fake_requests mistral)
"$BIN/genq" submit -f "$E2E_OUT/ctx.jsonl" ||
        fail "the producer refused a job of the ~200 KB prompt file (see above)"
assert_eq "context jobs delivered" 8 "$(wc -l <"$E2E_OUT/ctx.jsonl.ids")"
wait_for "8 context jobs finished" 30 sql_is \
        "SELECT count(*) FROM jobs WHERE job_id IN ('long-small','long-big','wide-1','narrow-1',
         'big-mo','big-m','mid-fit','mid-over') AND finished_at IS NOT NULL" 8

# min_context 128000 on route long: only its four providers, all >= 128000.
for id in long-small long-big; do
        assert_eq "$id succeeded" succeeded "$(sql "SELECT state FROM jobs WHERE job_id='$id'")"
        p=$(served_by "$id")
        case "$p" in
        hunyuan | zhipu | gemini | kie-gemini-3-pro) log "ok: $id served by $p" ;;
        *) fail "$id (route long, min_context 128000) served by '$p'; trail $(trail "$id")" ;;
        esac
        other=$(sql "SELECT string_agg(provider, ',') FROM attempts WHERE job_id='$id'
                     AND provider NOT IN ('hunyuan','zhipu','gemini','kie-gemini-3-pro')")
        [ -z "$other" ] || fail "$id tried providers outside route long: $other"
done
# min_context drops mistral (32768) and perplexity (127072) though they
# come first; openai (exactly 128000) qualifies.
assert_eq "wide-1 trail (min_context 128000)" "openai:success" "$(trail wide-1)"
assert_eq "narrow-1 (nobody has 128000)" "failed fatal_job" \
        "$(sql "SELECT state||' '||coalesce(error_class, '-') FROM jobs WHERE job_id='narrow-1'")"
assert_eq "narrow-1 error" "no enabled provider serves this chat job with a context window that fits it" \
        "$(sql "SELECT error FROM jobs WHERE job_id='narrow-1'")"
# The big prompt never reaches mistral.
assert_eq "big-mo trail (50000 tokens > mistral's 32768)" "openai:success" "$(trail big-mo)"
assert_eq "big-mo served by" openai "$(served_by big-mo)"
assert_eq "big-m (mistral only)" "failed fatal_job" \
        "$(sql "SELECT state||' '||coalesce(error_class, '-') FROM jobs WHERE job_id='big-m'")"
assert_eq "big-m error" "no enabled provider serves this chat job with a context window that fits it" \
        "$(sql "SELECT error FROM jobs WHERE job_id='big-m'")"
assert_eq "big-m attempts" 0 "$(sql "SELECT count(*) FROM attempts WHERE job_id='big-m'")"
# max_tokens counts: 30000 + 2768 = 32768 fits mistral, 30000 + 2769 not.
assert_eq "mid-fit trail (30000 + 2768 = 32768 fits)" "mistral:success" "$(trail mid-fit)"
assert_eq "mid-over trail (30000 + 2769 > 32768)" "openai:success" "$(trail mid-over)"
# mistral was called by mid-fit only (wide-1 and narrow-1 never called it).
assert_eq "mistral requests in the context part" 1 $(( $(fake_requests mistral) - n_mistral0 ))
