#!/usr/bin/env bash
# Video is charged when the provider accepts the task (a hold: providers
# bill from then on).  A task that fails is refunded exactly once; a job
# that then succeeds elsewhere is settled with one adjustment; a job whose
# every task fails nets to zero.  Never a failed video billed.
. "$(dirname "$0")/lib.sh"
reset_db
fake_reset
make_config
start_worker a -X providers.kie-sora-2.poll_ms=100 \
        -X providers.sf-video.poll_ms=100 -X providers.zhipu-video.poll_ms=100
ledger() { sql "SELECT string_agg(entry_type || ':' || provider || ':' || credits, ',' ORDER BY entry_id) FROM credit_ledger WHERE job_id = '$1'"; }
# 1. Success at the first provider: the hold is the whole charge.
echo '{"job_id":"v-ok","tenant_id":"t","video":{"prompt":"a calm sea","duration_s":10}}' | "$BIN/genq" submit -f - >/dev/null
wait_for "v-ok done" 60 sql_is "SELECT state FROM jobs WHERE job_id = 'v-ok'" succeeded
assert_eq "v-ok ledger" "charge:kie-sora-2:40.000000" "$(ledger v-ok)"
# 2. Every provider's task fails: one hold, one refund, net zero.
echo '{"job_id":"v-fail","tenant_id":"t","video":{"prompt":"a storm [fail]","duration_s":10}}' | "$BIN/genq" submit -f - >/dev/null
wait_for "v-fail done" 60 sql_is "SELECT state FROM jobs WHERE job_id = 'v-fail'" failed
assert_eq "v-fail ledger" "charge:kie-sora-2:40.000000,refund:kie-sora-2:40.000000" "$(ledger v-fail)"
assert_eq "v-fail net" "0.000000" "$(sql "SELECT sum(CASE entry_type WHEN 'refund' THEN -credits ELSE credits END) FROM credit_ledger WHERE job_id = 'v-fail'")"
assert_eq "v-fail tasks failed at every provider" "failed,failed,failed" \
        "$(sql "SELECT string_agg(state, ',' ORDER BY task_id) FROM tasks WHERE job_id = 'v-fail'")"
# 3. KIE's task fails (its first poll says so), SiliconFlow succeeds: the
#    hold is refunded and the job settled at SiliconFlow's price.
fake POST /_fake/kie/script '{"steps":[{},{"status":200,"body":"{\"code\":200,\"msg\":\"success\",\"data\":{\"taskId\":\"x\",\"state\":\"fail\",\"failCode\":\"500\",\"failMsg\":\"Internal server error\",\"resultJson\":null}}"}]}' >/dev/null
echo '{"job_id":"v-fb","tenant_id":"t","video":{"prompt":"a harbour","duration_s":10}}' | "$BIN/genq" submit -f - >/dev/null
wait_for "v-fb done" 60 sql_is "SELECT state FROM jobs WHERE job_id = 'v-fb'" succeeded
assert_eq "v-fb served by" sf-video "$(sql "SELECT provider FROM jobs WHERE job_id = 'v-fb'")"
assert_eq "v-fb ledger" "charge:kie-sora-2:40.000000,refund:kie-sora-2:40.000000,adjustment:sf-video:40.000000" "$(ledger v-fb)"
assert_eq "one refund per job at most" 0 "$(sql "SELECT count(*) FROM (SELECT job_id FROM credit_ledger WHERE entry_type = 'refund' GROUP BY 1 HAVING count(*) > 1) x")"
# The storyboard: 15 s at 10 credits a second.
echo '{"job_id":"v-board","tenant_id":"t","route":"storyboard","video":{"scenes":[{"prompt":"one","duration_s":7.5},{"prompt":"two","duration_s":7.5}]}}' | "$BIN/genq" submit -f - >/dev/null
wait_for "v-board done" 60 sql_is "SELECT state FROM jobs WHERE job_id = 'v-board'" succeeded
assert_eq "v-board ledger" "charge:kie-sora-2-storyboard:150.000000" "$(ledger v-board)"
