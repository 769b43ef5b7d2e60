/*
 * eng_tasks: async provider tasks (video, some images and speech).
 *
 * An accepted task is recorded in Postgres before its first poll, so a
 * crash never submits (and pays for) it twice; then it is polled with a
 * growing interval until it ends, fails or times out.  Providers that
 * call back are heard through cbrecv's rows: a callback is applied as a
 * poll answer.  A re-driven job resumes its unfinished task, and a job
 * cancelled while its task runs asks the provider to cancel it too.
 *
 * Part of the engine (DESIGN: engine.c); runs on the engine's thread.
 */
#include "eng_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmem.h"

#define POLL_ERRORS_MAX 10

/* ---- async tasks ------------------------------------------------------- */

static void submit_task_op(engine_t *e, struct job *j, enum pgop_type type,
                           const char *state, const char *error)
{
        struct wprovider *p = eng_cur_provider(e, j);
        struct pgop *op = pgop_new(type);

        op->opaque = j;
        op->job_id = xstrdup(j->id);
        op->provider = xstrdup(p->name);
        op->key_id = xstrdup(p->keys[j->key_idx].id);
        op->task_id = xstrdup(j->task_id);
        op->state = xstrdup(state);
        op->error = xstrdup(error);
        op->polls = j->polls;
        op->first_poll_s = (double)p->poll_ms / 1000.0;
        if (type == PGOP_TASK_START && j->price &&
            j->pb->payload_case == GENQ__V1__JOB__PAYLOAD_VIDEO) {
                /* A video provider bills from acceptance: hold the charge
                 * now (settled at finish, refunded if the task fails). */
                op->price_json = eng_price_json(p, j->price, 1);
                op->hold_units = eng_video_seconds(j->pb);
                op->model = xstrdup(j->att[j->n_att - 1].model);
                op->unit = p->price_unit;
        }
        pgsink_submit(e->ps, op);
}

/* The provider accepted the task: make it durable before polling, so a
 * crash from here on never submits (and pays for) it twice. */
void eng_on_task_accepted(engine_t *e, struct job *j,
                          struct provider_result *res)
{
        struct wprovider *p = eng_cur_provider(e, j);

        free(j->task_id);
        j->task_id = res->task_id;
        res->task_id = NULL; /* now owned by the job */
        j->polls = j->poll_errors = 0;
        j->poll_ms = p->poll_ms;
        j->task_deadline_us = e->now_us + p->task_timeout_s * 1000000;
        j->state = JOB_RECORDING;
        submit_task_op(e, j, PGOP_TASK_START, "polling", NULL);
}

static void apply_callback(engine_t *e, struct job *j);

void eng_on_task_recorded(engine_t *e, struct job *j)
{
        if (j->cancel) {
                eng_finish_cancelled(e, j);
                return;
        }
        j->step = STEP_POLL;
        if (j->cb_body) { /* the callback beat the task record */
                apply_callback(e, j);
                return;
        }
        eng_schedule_retry(e, j, j->poll_ms);
}

typedef int(task_build_fn)(const struct provider_cfg *p, const char *key,
                           const char *task_id, struct provider_req *req,
                           char *errstr, size_t errstr_size);

/* Send a request about the job's task (poll, cancel).  @returns 0 or -1
 * with errstr. */
static int task_request(engine_t *e, struct job *j, task_build_fn *build,
                        char *errstr, size_t errstr_size)
{
        struct wprovider *p = eng_cur_provider(e, j);
        struct provider_req req = {0};
        int rc;

        rc = build(&p->pcfg, p->keys[j->key_idx].secret, j->task_id, &req,
                   errstr, errstr_size) ||
             httploop_send(e->hl, &req, (long)p->timeout_ms,
                           p->pcfg.max_body_bytes, eng_on_http_done, j, errstr,
                           errstr_size);
        provider_req_clear(&req);
        return rc ? -1 : 0;
}

void eng_start_poll(engine_t *e, struct job *j)
{
        struct wprovider *p = eng_cur_provider(e, j);
        char errstr[256];

        if (task_request(e, j, p->ops->build_poll, errstr, sizeof(errstr))) {
                struct provider_err pe = {.outcome = OUTCOME_FALLBACK_NEXT,
                                          .retry_after_ms = -1};

                snprintf(pe.errstr, sizeof(pe.errstr), "poll: %.200s", errstr);
                submit_task_op(e, j, PGOP_TASK_END, "failed", pe.errstr);
                eng_on_failure(e, j, &pe);
                return;
        }
        j->state = JOB_INFLIGHT;
        j->step = STEP_POLL;
}

/* The task failed, timed out, or cannot be polled: record it, then let
 * the outcome class decide (fallback, key, fatal) as for a call. */
static void task_failed(engine_t *e, struct job *j, const char *state,
                        struct provider_err *pe)
{
        struct attempt *a = &j->att[j->n_att - 1];

        eng_release_admission(e, j, -1);
        a->outcome = pe->outcome;
        free(a->error);
        a->error = xstrdup(pe->errstr);
        submit_task_op(e, j, PGOP_TASK_END, state, pe->errstr);
        eng_on_failure(e, j, pe);
}

static void schedule_poll(engine_t *e, struct job *j, int64_t hint_ms)
{
        struct wprovider *p = eng_cur_provider(e, j);
        int64_t next = hint_ms >= 0 ? hint_ms : j->poll_ms;

        /* Grow the interval by half each time, with up to 10% jitter so
         * tasks submitted together spread out. */
        j->poll_ms = j->poll_ms * 3 / 2;
        if (j->poll_ms > p->poll_max_ms)
                j->poll_ms = p->poll_max_ms;
        next += next / 10 * eng_rnd32(e) / UINT32_MAX;
        j->step = STEP_POLL;
        eng_schedule_retry(e, j, next);
}

void eng_on_poll_done(engine_t *e, struct job *j,
                      const struct provider_resp *resp)
{
        struct wprovider *p = eng_cur_provider(e, j);
        struct provider_result res = {.input_tokens = -1, .output_tokens = -1,
                                      .units = -1};
        struct provider_err pe = {.retry_after_ms = -1};
        enum outcome o = p->ops->parse_poll(&p->pcfg, j->pb, resp, &res, &pe);

        j->polls++;
        pe.outcome = o;
        if (o == OUTCOME_SUCCESS) {
                eng_release_admission(e, j, -1);
                eng_on_provider_success(e, j, &res);
        } else if (o != OUTCOME_PENDING && o != OUTCOME_RETRY_LATER) {
                task_failed(e, j, "failed", &pe);
        } else if (e->now_us >= j->task_deadline_us) {
                pe.outcome = OUTCOME_FALLBACK_NEXT;
                snprintf(pe.errstr, sizeof(pe.errstr),
                         "task %s did not finish within %lld s", j->task_id,
                         (long long)p->task_timeout_s);
                task_failed(e, j, "timed_out", &pe);
        } else if (o == OUTCOME_RETRY_LATER &&
                   ++j->poll_errors >= POLL_ERRORS_MAX) {
                pe.outcome = OUTCOME_FALLBACK_NEXT;
                task_failed(e, j, "failed", &pe);
        } else if (j->cb_body) {
                /* A callback came while this poll was out: it is newer. */
                provider_result_clear(&res);
                apply_callback(e, j);
                return;
        } else {
                schedule_poll(e, j, pe.retry_after_ms);
        }
        provider_result_clear(&res);
        /* Settled (or moved on): a callback that raced this poll is
         * stale now.  One transition per task, whichever came first. */
        free(j->cb_body);
        j->cb_body = NULL;
}

/* Apply the stashed callback with the same transition as a poll answer
 * (KIE, Replicate: the body is one), or poll at once when the body only
 * says the task ended (AssemblyAI) or callbacks.apply_body is off. */
static void apply_callback(engine_t *e, struct job *j)
{
        struct wprovider *p = eng_cur_provider(e, j);
        char *body = j->cb_body;
        struct provider_resp resp = {.status = 200,
                                     .body = body,
                                     .body_len = j->cb_len,
                                     .content_type = "application/json",
                                     .retry_after_ms = -1};

        j->cb_body = NULL;
        log_info("job", "job %s: callback from %s for task %s applied",
                 j->id, p->name, j->task_id);
        if (p->ops->callback_is_poll && e->w->cb_apply_body)
                eng_on_poll_done(e, j, &resp);
        else
                eng_start_poll(e, j);
        free(body);
}

/* Is \p body about the task \p j is polling now?  The URL token proved
 * the job and provider; the task id (quoted, as every provider's JSON
 * carries it) rules out a late callback of an earlier task. */
static int callback_matches(engine_t *e, struct job *j,
                            const struct pgop_row *r, const char *body)
{
        char quoted[300];

        if (!j->task_id || !r->task || strcmp(eng_cur_provider(e, j)->name,
                                               r->task))
                return 0;
        snprintf(quoted, sizeof(quoted), "\"%s\"", j->task_id);
        return strstr(body, quoted) != NULL;
}

static void take_callback(engine_t *e, struct pgop_row *r)
{
        struct job *j = eng_tab_find(e, r->job_id);
        char *body = xmalloc(r->payload_len + 1);

        memcpy(body, r->payload, r->payload_len);
        body[r->payload_len] = '\0';
        if (!j || j->dup || j->cancel || !callback_matches(e, j, r, body) ||
            !(((j->state == JOB_RETRY_WAIT || j->state == JOB_INFLIGHT) &&
               j->step == STEP_POLL) ||
              j->state == JOB_RECORDING)) {
                log_dbg(LOG_DBG_JOB, "job", "job %s: callback from %s "
                                            "ignored (task settled or not "
                                            "this one)",
                        r->job_id, r->task ? r->task : "?");
                free(body);
                return;
        }
        free(j->cb_body);
        j->cb_body = body;
        j->cb_len = r->payload_len;
        if (j->state == JOB_RETRY_WAIT) {
                eng_heap_remove(e, j);
                apply_callback(e, j);
        }
        /* else: applied when the poll in flight or the record is done */
}

void eng_on_callbacks(engine_t *e, struct pgop *op)
{
        if (op->rc) {
                log_warn("job", "claiming callbacks: %s", op->errstr);
                return;
        }
        for (size_t i = 0; i < op->n_rows; i++)
                take_callback(e, &op->rows[i]);
}

/* ---- resuming ----------------------------------------------------------- */

/* A re-driven job whose worker died after its provider accepted a task:
 * poll that task again, never submit a new one (the provider is already
 * generating it, and charging for it).  @returns 0, or -1 if the task's
 * provider is no longer on the job's chain (then it is submitted anew). */
int eng_resume_task(engine_t *e, struct job *j)
{
        char *save = NULL, *prov, *key_id, *polls, *task;
        struct wprovider *p;
        struct attempt *a;
        size_t c;

        prov = strtok_r(j->resume, "|", &save);
        key_id = strtok_r(NULL, "|", &save);
        polls = strtok_r(NULL, "|", &save);
        task = save; /* the rest: a task id may hold '|' */
        for (c = 0; prov && task && c < j->n_chain; c++)
                if (!strcmp(e->w->providers[j->chain[c]].name, prov))
                        break;
        if (!prov || !task || !*task || c == j->n_chain) {
                log_warn("job", "job %s: its task's provider %s is not on "
                                "its route now; submitting again",
                         j->id, prov ? prov : "?");
                return -1;
        }
        j->cur = c;
        p = eng_cur_provider(e, j);
        j->key_idx = 0;
        for (size_t k = 0; key_id && k < p->n_keys; k++)
                if (!strcmp(p->keys[k].id, key_id))
                        j->key_idx = (int)k;
        j->task_id = xstrdup(task);
        j->polls = polls ? atoi(polls) : 0;
        j->poll_ms = p->poll_ms;
        j->task_deadline_us = e->now_us + p->task_timeout_s * 1000000;
        j->price = wconf_price(p, eng_job_model(j->pb));
        a = eng_add_attempt(j, p, j->key_idx);
        a->model = xstrdup(eng_job_model(j->pb) ? eng_job_model(j->pb)
                                                : p->model);
        a->outcome = OUTCOME_SUCCESS;
        a->error = xstrdup("task accepted by a worker that stopped; resumed");
        log_info("job", "job %s: resuming task %s at %s", j->id, j->task_id,
                 p->name);
        j->step = STEP_POLL;
        eng_schedule_retry(e, j, 0);
        return 0;
}

/* ---- cancel at the provider --------------------------------------------- */

/* A job cancelled while its task runs: ask the provider to stop the task
 * too, where its API can (it stops generating and billing), before the
 * job ends.  @returns 1 if the call is out (eng_on_http_done finishes). */
int eng_cancel_at_provider(engine_t *e, struct job *j)
{
        char errstr[256];

        if (j->step != STEP_POLL || !j->task_id || j->cancel_sent ||
            !eng_cur_provider(e, j)->ops->build_cancel)
                return 0;
        j->cancel_sent = 1;
        if (task_request(e, j, eng_cur_provider(e, j)->ops->build_cancel,
                         errstr, sizeof(errstr))) {
                snprintf(j->cancel_note, sizeof(j->cancel_note),
                         "; provider cancel not sent: %.150s", errstr);
                return 0;
        }
        j->state = JOB_INFLIGHT;
        j->step = STEP_CANCEL;
        return 1;
}

void eng_note_cancel(engine_t *e, struct job *j,
                     const struct provider_resp *resp)
{
        const char *who = eng_cur_provider(e, j)->name;

        j->cancel_ok = !resp->transport_err && resp->status >= 200 &&
                       resp->status < 300;
        if (j->cancel_ok)
                snprintf(j->cancel_note, sizeof(j->cancel_note),
                         "; task %.80s cancelled at %s", j->task_id, who);
        else
                snprintf(j->cancel_note, sizeof(j->cancel_note),
                         "; %s did not cancel task %.80s (HTTP %ld%s%.60s)",
                         who, j->task_id, resp->status,
                         resp->transport_err ? ": " : "",
                         resp->transport_err ? resp->transport_msg : "");
}
