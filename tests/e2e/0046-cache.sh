#!/usr/bin/env bash
# The optional response cache (cache.enabled): a deterministic chat job
# (temperature 0) answered once is answered again from the cache with no
# provider call and no charge, the note says so; a non-deterministic job,
# another tenant, or another route still calls the provider; with the
# cache off (the default) every job calls the provider.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
reqs() { fake GET "/_fake/$1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }
job() { # ID TENANT TEMPERATURE
        printf '{"job_id":"%s","tenant_id":"%s","providers":["openai"],"chat":{"messages":[{"role":"user","content":"What is 2+2?"}],"temperature":%s}}\n' "$1" "$2" "$3" |
                "$BIN/genq" submit -f - >/dev/null
        wait_for "$1" 20 sql_is "SELECT state FROM jobs WHERE job_id = '$1'" succeeded
}
start_worker off
job off-1 t 0
job off-2 t 0
assert_eq "cache off by default: two calls" 2 "$(reqs openai)"
stop_workers
fake_reset
start_worker on -X cache.enabled=true
job c-1 t 0
job c-2 t 0
assert_eq "second identical job served from the cache" 1 "$(reqs openai)"
assert_eq "same answer" "$(sql "SELECT text FROM results WHERE job_id = 'c-1'")" \
        "$(sql "SELECT text FROM results WHERE job_id = 'c-2'")"
assert_eq "cached job not charged" 0 "$(sql "SELECT count(*) FROM credit_ledger WHERE job_id = 'c-2'")"
assert_eq "first job charged" 1 "$(sql "SELECT count(*) FROM credit_ledger WHERE job_id = 'c-1' AND entry_type = 'charge'")"
sql "SELECT billing_note FROM jobs WHERE job_id = 'c-2'" | grep -q "response cache" || fail "no cache note"
assert_eq "no attempts for the cached job" 0 "$(sql "SELECT count(*) FROM attempts WHERE job_id = 'c-2'")"
job c-3 t 0.7
assert_eq "temperature 0.7 is not cached" 2 "$(reqs openai)"
job c-4 other 0
assert_eq "another tenant does not get t's answer" 3 "$(reqs openai)"
assert_eq "hits counted" 1 "$(sql "SELECT sum(hits) FROM response_cache")"
