#!/usr/bin/env bash
# A mixed batch with known usages from the fakes: the credits in the ledger
# equal an independent computation from the price table of
# config/genq.yaml, to the exact decimal.  Every message is delivered
# twice and two workers race for the jobs: one charge each.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
audio="http://127.0.0.1:$FAKE_PORT/_fake/media/tone-3s.wav"
{
for i in $(seq 0 39); do
        printf '{"job_id":"x-chat-%d","tenant_id":"acme","providers":["groq"],"chat":{"messages":[{"role":"user","content":"question %d about the weather today"}]}}\n' "$i" "$i"
done
for i in $(seq 0 9); do
        printf '{"job_id":"x-img-%d","tenant_id":"acme","providers":["stability"],"image":{"prompt":"a fox %d"}}\n' "$i" "$i"
        printf '{"job_id":"x-tts-%d","tenant_id":"globex","providers":["elevenlabs"],"tts":{"text":"Message number %d is ready."}}\n' "$i" "$i"
        printf '{"job_id":"x-stt-%d","tenant_id":"globex","providers":["assemblyai"],"stt":{"audio_url":"%s"}}\n' "$i" "$audio"
done
for i in 0 1 2; do
        printf '{"job_id":"x-vid-%d","tenant_id":"acme","providers":["kie-sora-2"],"video":{"prompt":"a boat %d","duration_s":15}}\n' "$i" "$i"
done
} >"$E2E_OUT/jobs.jsonl"
opts=(-X providers.kie-sora-2.poll_ms=100 -X providers.assemblyai.poll_ms=100
      -X worker.stats_interval_s=1)
start_worker a "${opts[@]}"
start_worker b "${opts[@]}"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "submit failed"
"$BIN/genq" submit -f "$E2E_OUT/jobs.jsonl" >/dev/null || fail "second submit failed"
n=$(wc -l <"$E2E_OUT/jobs.jsonl")
wait_for "all $n done" 90 sql_is "SELECT count(*) FROM jobs WHERE state = 'succeeded'" "$n"
# Let every redelivered copy be consumed before counting.
consumed_all() { [ "$(workers_in)" -ge $((2 * n)) ]; }
wait_for "redeliveries consumed" 30 consumed_all
# Independent computation.  Prices from config/genq.yaml:
#   groq 0.01 / 0.016 per 1K tokens; stability 6 per image; elevenlabs
#   0.06 per character; assemblyai 0.0205 per second; kie-sora-2 4 per s.
# Usage from the fakes' documented formulas: chat prompt tokens = words +
# 4, completion = 2 + words of the first 40 bytes of the prompt; one image
# each; tts = characters of the text; stt = 3 s; video = 15 s.
expect=$(awk 'BEGIN {
        for (i = 0; i < 40; i++) {
                p = "question " i " about the weather today";
                tin += split(p, a, " ") + 4; tout += 2 + split(substr(p, 1, 40), b, " ");
        }
        acme = (tin * 0.01 + tout * 0.016) / 1000 + 10 * 6 + 3 * 15 * 4;
        for (i = 0; i < 10; i++) chars += length("Message number " i " is ready.");
        globex = chars * 0.06 + 10 * 3 * 0.0205;
        printf "%.6f %.6f", acme, globex;
}')
read -r exp_acme exp_globex <<<"$expect"
net="sum(CASE entry_type WHEN 'refund' THEN -credits ELSE credits END)"
assert_eq "acme credits" "$exp_acme" "$(sql "SELECT $net FROM credit_ledger WHERE tenant_id = 'acme'")"
assert_eq "globex credits" "$exp_globex" "$(sql "SELECT $net FROM credit_ledger WHERE tenant_id = 'globex'")"
assert_eq "one charge per job" "$n" "$(sql "SELECT count(*) FROM credit_ledger WHERE entry_type = 'charge'")"
assert_eq "no job charged twice" 0 "$(sql "SELECT count(*) FROM (SELECT job_id FROM credit_ledger WHERE entry_type = 'charge' GROUP BY 1 HAVING count(*) > 1) x")"
assert_eq "each provider called once per job" "$n" "$(sql "SELECT count(*) FROM attempts WHERE outcome = 'success'")"
assert_eq "every job ran once" 1 "$(sql "SELECT max(runs) FROM jobs")"
