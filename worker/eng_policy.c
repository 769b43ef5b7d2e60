/*
 * eng_policy: which provider a job calls, and what an attempt's outcome
 * does next.
 *
 * A job's provider chain comes from its pinned providers or its route,
 * ordered by the route's strategy.  eng_start_attempt() walks it, moving
 * past providers that cannot be called now (operator, circuit, parked,
 * keys, price, limits), and asks the shared limits in Postgres (schema
 * 0007), or takes from the worker's free quota chunk, before each call.
 * A call's completion is classified by outcome, which decides: a retry,
 * another key, the next provider or the job's failure.
 *
 * Part of the engine (DESIGN: engine.c); runs on the engine's thread.
 */
#include "eng_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policy.h"
#include "xmem.h"

/* ---- provider chain ----------------------------------------------------- */

static int provider_usable(const struct wprovider *p, Genq__V1__Kind kind)
{
        return p->enabled && !p->retired && p->ops->kind == kind;
}

/* Tokens a chat job needs of a context window: its prompt (4 bytes a
 * token, as billing estimates) and its max_tokens. */
static int64_t context_needed(const Genq__V1__Job *pb)
{
        if (pb->payload_case != GENQ__V1__JOB__PAYLOAD_CHAT)
                return 0;
        return eng_prompt_bytes_tokens(pb) +
               (pb->chat->max_tokens > 0 ? pb->chat->max_tokens : 0);
}

/* @returns 1 added, 0 skipped (disabled, another kind, too small a
 * context window), -1 no such provider or the chain is full. */
static int add_to_chain(engine_t *e, struct job *j, const char *name,
                        int64_t min_context)
{
        struct wprovider *p = wconf_provider(e->w, name);

        if (!p || j->n_chain == MAX_CHAIN)
                return -1;
        if (!provider_usable(p, j->pb->kind))
                return 0;
        /* Conditions: the route's minimum window (unknown windows do not
         * qualify), and the prompt itself must fit where it is known. */
        if (min_context > 0 && p->context_window < min_context)
                return 0;
        if (p->context_window > 0 && j->need_tokens > p->context_window)
                return 0;
        j->chain[j->n_chain++] = (size_t)(p - e->w->providers);
        return 1;
}

/* Order the chain by the route's strategy.  Priority routes follow the
 * operators' priorities (provider_overrides) where set: a provider's
 * rank is its override, else its position in the route. */
static void order_chain(engine_t *e, struct job *j, int strategy)
{
        struct policy_cand c[MAX_CHAIN];
        size_t old[MAX_CHAIN], out[MAX_CHAIN], n = j->n_chain, m;
        int64_t rank[MAX_CHAIN], ow[MAX_CHAIN];

        memcpy(old, j->chain, n * sizeof(*old));
        memcpy(ow, j->weights, n * sizeof(*ow));
        if (strategy == POLICY_PRIORITY) {
                for (size_t i = 0; i < n; i++) {
                        int32_t pr = pstate_priority(e->pol, old[i]);

                        rank[i] = pr == INT32_MIN ? (int64_t)i : pr;
                }
                /* stable insertion sort: ties keep the route's order */
                for (size_t i = 1; i < n; i++)
                        for (size_t k = i; k > 0 && rank[k - 1] > rank[k]; k--) {
                                int64_t t = rank[k];
                                size_t u = j->chain[k];

                                rank[k] = rank[k - 1];
                                rank[k - 1] = t;
                                j->chain[k] = j->chain[k - 1];
                                j->chain[k - 1] = u;
                        }
                return;
        }
        for (size_t i = 0; i < n; i++)
                c[i] = (struct policy_cand){
                        .weight = ow[i],
                        .latency_ms = pstate_latency_ms(e->pol, old[i]),
                        .usable = 1,
                };
        m = policy_order(strategy, c, n, e->w->latency_explore, &e->rng, out);
        for (size_t i = 0; i < m; i++) {
                j->chain[i] = old[out[i]];
                j->weights[i] = ow[out[i]];
        }
        j->n_chain = m;
}

/* @returns 0, or -1 after failing the job. */
int eng_build_chain(engine_t *e, struct job *j)
{
        const char *kind = codec_kind_name(j->pb->kind);
        const struct wroute *r;

        j->need_tokens = context_needed(j->pb);
        if (j->pb->n_providers > 0) {
                for (size_t i = 0; i < j->pb->n_providers; i++)
                        if (add_to_chain(e, j, j->pb->providers[i], 0) < 0) {
                                eng_fail_job(e, j, "fatal_job",
                                             "pinned provider \"%s\" is not "
                                             "configured",
                                             j->pb->providers[i]);
                                return -1;
                        }
        } else {
                r = wconf_route(e->w, kind, j->pb->route);
                if (!r || (*j->pb->route && strcmp(r->name, j->pb->route))) {
                        eng_fail_job(e, j, "fatal_job",
                                     "no route \"%s\" for %s jobs",
                                     *j->pb->route ? j->pb->route : "default",
                                     kind);
                        return -1;
                }
                for (size_t i = 0; i < r->n_providers; i++)
                        if (add_to_chain(e, j, r->providers[i],
                                         r->min_context) == 1)
                                j->weights[j->n_chain - 1] =
                                        r->weights ? r->weights[i] : 1;
                j->route = r;
                /* wconf validated the name: parse cannot fail here */
                order_chain(e, j, policy_strategy_parse(r->strategy));
        }
        if (j->n_chain == 0) {
                eng_fail_job(e, j, "fatal_job",
                             "no enabled provider serves this %s job%s", kind,
                             j->need_tokens > 0
                                     ? " with a context window that fits it"
                                     : "");
                return -1;
        }
        return 0;
}

struct wprovider *eng_cur_provider(engine_t *e, struct job *j)
{
        return &e->w->providers[j->chain[j->cur]];
}

struct attempt *eng_add_attempt(struct job *j, const struct wprovider *p,
                                int key)
{
        struct attempt *a;

        if (j->n_att == MAX_ATTEMPTS) {
                /* Keep the first ones; the last slot is reused so the
                 * final outcome is always on record. */
                free(j->att[MAX_ATTEMPTS - 1].model);
                free(j->att[MAX_ATTEMPTS - 1].error);
                j->n_att--;
        }
        a = &j->att[j->n_att++];
        memset(a, 0, sizeof(*a));
        a->provider = p->name;
        a->key_id = key >= 0 ? p->keys[key].id : NULL;
        a->started_ms = eng_wall_ms();
        return a;
}

static void next_provider(struct job *j)
{
        j->cur++;
        j->tries_here = 0;
        j->admit_waited_ms = 0;
        j->exact_admit = 0;
        j->pool_waiting = 0;
        free(j->task_id);
        j->task_id = NULL;
}

/* Call the current provider, moving down the chain past any that cannot
 * be called at all.  May finish the job. */
/* The model hint the job gives for its kind, or NULL. */
const char *eng_job_model(const Genq__V1__Job *pb)
{
        const char *m = NULL;

        switch (pb->payload_case) {
        case GENQ__V1__JOB__PAYLOAD_CHAT:
                m = pb->chat->model;
                break;
        case GENQ__V1__JOB__PAYLOAD_IMAGE:
                m = pb->image->model;
                break;
        case GENQ__V1__JOB__PAYLOAD_VIDEO:
                m = pb->video->model;
                break;
        case GENQ__V1__JOB__PAYLOAD_STT:
                m = pb->stt->model;
                break;
        case GENQ__V1__JOB__PAYLOAD_TTS:
                m = pb->tts->model;
                break;
        default:
                break;
        }
        return m && *m ? m : NULL;
}

int eng_is_stt(const Genq__V1__Job *pb)
{
        return pb->payload_case == GENQ__V1__JOB__PAYLOAD_STT;
}

/* Seconds of video asked for: the storyboard's scenes, else duration_s,
 * else the common 10 s default. */
double eng_video_seconds(const Genq__V1__Job *pb)
{
        double s = 0;

        /* The payload is a union: test the case, never the pointer. */
        if (pb->payload_case != GENQ__V1__JOB__PAYLOAD_VIDEO)
                return 0;
        for (size_t i = 0; i < pb->video->n_scenes; i++)
                s += pb->video->scenes[i]->duration_s;
        if (s > 0)
                return s;
        return pb->video->duration_s > 0 ? pb->video->duration_s : 10;
}

/* Send the current provider's request; @returns 0 or -1 with errstr. */
/* Providers that call back when a task ends are given this job's
 * signed callback URL in the submit (when callbacks.public_url is set);
 * polling stays on as the safety net.  @returns 0, -1 with errstr. */
static int ask_callback(engine_t *e, const struct job *j,
                        const struct wprovider *p, struct provider_req *req,
                        char *errstr, size_t errstr_size)
{
        const struct provider_ops *ops = p->ops;
        char url[1024];
        json_t *o, *x;
        char *dump;

        if (!*e->w->cb_public_url || !ops->callback_member || !req->body)
                return 0;
        o = json_loadb(req->body, req->body_len, 0, NULL);
        if (!json_is_object(o) ||
            cbrecv_url(url, sizeof(url), e->w->cb_public_url,
                       e->w->cb_secret, p->name, j->id)) {
                json_decref(o);
                snprintf(errstr, errstr_size, "cannot add a callback URL");
                return -1;
        }
        json_object_set_new(o, ops->callback_member, json_string(url));
        x = ops->callback_extra ? json_loads(ops->callback_extra, 0, NULL)
                                : NULL;
        if (x)
                json_object_update(o, x);
        json_decref(x);
        dump = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        free(req->body);
        req->body = xstrdup(dump);
        req->body_len = strlen(dump);
        free(dump);
        return 0;
}

static int send_call(engine_t *e, struct job *j, struct wprovider *p,
                     int key, char *errstr, size_t errstr_size)
{
        struct provider_input in = {(const char *)j->input, j->input_len,
                                    j->input_ctype, NULL};
        struct provider_req req = {0};
        int rc;

        if (j->input) {
                const char *url = eng_is_stt(j->pb) ? j->pb->stt->audio_url
                                                    : "";

                in.filename = strrchr(url, '/') ? strrchr(url, '/') + 1
                                                : "input";
        }
        rc = p->ops->build(&p->pcfg, p->keys[key].secret, j->pb,
                           j->input ? &in : NULL, &req, errstr,
                           errstr_size) ||
             ask_callback(e, j, p, &req, errstr, errstr_size) ||
             httploop_send(e->hl, &req, (long)p->timeout_ms,
                           p->pcfg.max_body_bytes, eng_on_http_done, j, errstr,
                           errstr_size);
        provider_req_clear(&req);
        return rc ? -1 : 0;
}

/* ---- the shared limits (schema 0007) ----------------------------------- */

static int needs_admission(const struct wprovider *p)
{
        return p->limit_concurrency > 0 || p->limit_rpm > 0 ||
               p->limit_tpm > 0 || p->quota_unit;
}

/* The rows a call's limits are counted under: the whole provider (key
 * "", the default: its keys share one cap, window and quota), or each
 * key of its pool on its own (limits_scope: key). */
static const char *limits_key(const struct wprovider *p, int key)
{
        return strcmp(p->limits_scope, "key") ? "" : p->keys[key].id;
}

#define POOL_MIN_LIMIT 1000

/* Only a free quota, and a large one: its units can be taken a chunk at
 * a time.  A small quota is counted call by call, since chunks held by
 * other workers would send calls elsewhere while units are left. */
static int quota_only(const struct wprovider *p)
{
        return p->quota_unit && p->limit_concurrency == 0 &&
               p->limit_rpm == 0 && p->limit_tpm == 0 &&
               atof(p->quota_limit) >= POOL_MIN_LIMIT;
}

#define POOL_HOLD_MS 5000
#define POOL_RECHECK_MS 5

/* A chunk: 2% of the quota (at least this call's units), so N workers
 * hold at most N * 2% of it at once, for at most POOL_HOLD_MS (measured:
 * 0.5% chunks cost a fifth of the throughput on the default route). */
static double pool_chunk(const struct wprovider *p, double units)
{
        double c = atof(p->quota_limit) / 50;

        return c > units ? c : units;
}

/* Free quota units this call takes, in the quota's unit. */
static double quota_units(const engine_t *e, const struct job *j,
                          const struct wprovider *p, int64_t tokens)
{
        if (!p->quota_unit)
                return 0;
        if (!strcmp(p->quota_unit, "requests"))
                return 1;
        if (!strcmp(p->quota_unit, "tokens"))
                return (double)tokens;
        return eng_estimate_units(e, j->pb);
}

/* Ask Postgres whether this call may go out under the provider's shared
 * limits (every worker asks the same rows: see schema/0007_policy.sql).
 * The job waits in JOB_ADMITTING; eng_on_admitted() carries on. */
static void start_admission(engine_t *e, struct job *j, int key)
{
        struct wprovider *p = eng_cur_provider(e, j);
        struct pgop *op = pgop_new(PGOP_ADMIT);
        int64_t lease = (p->ops->flags & PROVIDER_F_ASYNC)
                                ? p->task_timeout_s + 60
                                : p->timeout_ms / 1000 + 30;

        snprintf(j->holder, sizeof(j->holder), "%s/%s/%u", e->w->worker_id,
                 j->id, ++j->n_admits);
        j->admit_key = key;
        j->admit_pidx = j->chain[j->cur];
        j->admit_tokens = j->need_tokens;
        j->admit_units = quota_units(e, j, p, j->admit_tokens);
        j->refill = 0;
        if (quota_only(p) && !j->exact_admit &&
            !pstate_pool_exact(e->pol, j->admit_pidx, e->now_us / 1000, 0)) {
                /* Ask for a chunk covering the calls that wait for it. */
                double want = pool_chunk(p, j->admit_units);
                double demand = pstate_pool_demand(e->pol, j->admit_pidx, 0,
                                                   1);

                j->refill = (want > demand ? want : demand + want / 2) -
                            j->admit_units;
                if (j->refill < 0)
                        j->refill = 0;
                j->is_refill = 1;
                pstate_pool_refilling(e->pol, j->admit_pidx, 1);
        }
        op->opaque = j;
        op->provider = xstrdup(p->name);
        op->key_id = xstrdup(limits_key(p, key));
        op->holder = xstrdup(j->holder);
        op->cap = (int32_t)p->limit_concurrency;
        op->rpm = (int32_t)p->limit_rpm;
        op->tpm = (int32_t)p->limit_tpm;
        op->tokens = j->admit_tokens;
        op->quota_unit = p->quota_unit;
        op->quota_n = j->admit_units + j->refill;
        op->lease_s = (int32_t)(lease > 86400 ? 86400 : lease);
        j->state = JOB_ADMITTING;
        pgsink_submit(e->ps, op);
}

/* Give the grant back (slot freed, tokens corrected to \p actual_tokens
 * when known, -1 if not).  Idempotent. */
void eng_release_admission(engine_t *e, struct job *j,
                           int64_t actual_tokens)
{
        struct wprovider *p;
        struct pgop *op;

        if (!j->admitted)
                return;
        j->admitted = 0;
        p = &e->w->providers[j->admit_pidx];
        op = pgop_new(PGOP_UNADMIT);
        op->provider = xstrdup(p->name);
        op->key_id = xstrdup(limits_key(p, j->admit_key));
        op->holder = xstrdup(j->holder);
        op->tokens = actual_tokens;
        if (p->quota_unit && !strcmp(p->quota_unit, "tokens") &&
            actual_tokens >= 0) {
                op->quota_unit = p->quota_unit;
                op->quota_n = (double)(actual_tokens - j->admit_tokens);
        }
        pgsink_submit(e->ps, op);
}

/* Record why the policy moved past the current provider without calling
 * it (each switch is explained in the attempts), and move on. */
static void skip_provider(engine_t *e, struct job *j, int key,
                          const char *why)
{
        struct wprovider *p = eng_cur_provider(e, j);
        struct attempt *a = eng_add_attempt(j, p, key);

        a->outcome = OUTCOME_FALLBACK_NEXT;
        a->error = xstrdup(why);
        snprintf(j->fail_reason, sizeof(j->fail_reason), "%s: %s", p->name,
                 why);
        eng_release_admission(e, j, -1);
        next_provider(j);
}

/* Call the current provider, moving down the chain past any that cannot
 * be called now (operator, circuit, parked, keys, price, limits): each
 * such switch is an attempt row saying why.  May finish the job. */
void eng_start_attempt(engine_t *e, struct job *j)
{
        char errstr[256];
        int64_t now_ms = e->now_us / 1000;

        while (j->cur < j->n_chain) {
                size_t pidx = j->chain[j->cur];
                struct wprovider *p = eng_cur_provider(e, j);
                struct attempt *a;
                int key, v;

                if (!j->admitted &&
                    pstate_skip(e->pol, pidx, now_ms, j->free_wait, errstr,
                                sizeof(errstr))) {
                        skip_provider(e, j, -1, errstr);
                        continue;
                }
                key = j->admitted ? j->admit_key
                                  : pstate_pick_key(e->pol, pidx, now_ms);
                if (key < 0) {
                        skip_provider(e, j, -1,
                                      "every key is disabled or parked");
                        continue;
                }
                j->price = wconf_price(p, eng_job_model(j->pb));
                if (!j->price && !strcmp(e->w->unpriced, "refuse")) {
                        snprintf(errstr, sizeof(errstr),
                                 "no price for model %s (billing.unpriced = "
                                 "refuse)",
                                 eng_job_model(j->pb));
                        skip_provider(e, j, key, errstr);
                        continue;
                }
                if ((p->ops->flags & PROVIDER_F_NEEDS_INPUT) && !j->input) {
                        eng_start_fetch(e, j); /* comes back here when done */
                        return;
                }
                j->pooled = 0;
                if (!j->admitted && needs_admission(p) && j->pool_waiting &&
                    !pstate_pool_refilling(e->pol, pidx, -1))
                        j->pool_waiting = 0; /* the chunk came (or not) */
                if (!j->admitted && needs_admission(p)) {
                        double u = quota_units(e, j, p, j->need_tokens);

                        if (quota_only(p) &&
                            pstate_pool_take(e->pol, pidx, u, now_ms)) {
                                j->pooled = 1;
                                j->admit_tokens = j->need_tokens;
                        } else if (quota_only(p) && !j->exact_admit &&
                                   pstate_pool_refilling(e->pol, pidx, -1)) {
                                /* A chunk is on its way: wait for it (its
                                 * size counts this call once). */
                                if (!j->pool_waiting)
                                        pstate_pool_demand(e->pol, pidx, u, 0);
                                j->pool_waiting = 1;
                                j->step = STEP_CALL;
                                eng_schedule_retry(e, j, POOL_RECHECK_MS);
                                return;
                        } else {
                                start_admission(e, j, key); /* comes back */
                                return;
                        }
                }
                v = pstate_call_begin(e->pol, pidx, key, now_ms);
                if (v == POLICY_DENY) {
                        skip_provider(e, j, key, "circuit half-open: another "
                                                 "call is its probe");
                        continue;
                }
                if (send_call(e, j, p, key, errstr, sizeof(errstr)) == 0) {
                        a = eng_add_attempt(j, p, key);
                        a->model = xstrdup(eng_job_model(j->pb)
                                                   ? eng_job_model(j->pb)
                                                   : p->model);
                        j->state = JOB_INFLIGHT;
                        j->step = STEP_CALL;
                        j->key_idx = key;
                        j->probe = v == POLICY_PROBE;
                        j->call_start_us = e->now_us;
                        return;
                }
                /* not a health signal: only gives the probe back */
                pstate_call_end(e->pol, pidx, key, OUTCOME_FATAL_JOB, 0,
                                v == POLICY_PROBE, now_ms);
                skip_provider(e, j, key, errstr);
        }
        eng_fail_job(e, j, "fallback_next", "every provider failed; last: %s",
                     j->fail_reason[0] ? j->fail_reason : "none");
}

/* A route with wait_for_free lets background jobs (priority < 0) wait
 * for a free tier's reset rather than pay the next provider, if the
 * reset comes before their deadline.  @returns 1 if the job waits. */
static int wait_for_free(engine_t *e, struct job *j, int64_t wait_ms)
{
        int64_t step = wait_ms > 5000 ? 5000 : wait_ms + 50;

        if (!j->route || !j->route->wait_for_free || j->pb->priority >= 0 ||
            wait_ms < 0 ||
            (j->deadline_us && e->now_us + wait_ms * 1000 >= j->deadline_us))
                return 0;
        if (!j->free_wait)
                log_info("policy", "job %s: waiting %lld s for %s's free "
                                   "quota to reset (route %s, priority %d)",
                         j->id, (long long)(wait_ms / 1000),
                         eng_cur_provider(e, j)->name, j->route->name,
                         j->pb->priority);
        j->free_wait = 1;
        /* Ask Postgres again every few seconds: an operator's reset or a
         * moved policy clock counts too. */
        j->step = STEP_CALL;
        eng_schedule_retry(e, j, step);
        return 1;
}

/* The shared limits said no.  A free quota used up parks the provider
 * (asking Postgres again every few seconds, so a reset, a moved policy
 * clock or an operator's reset brings it back) and moves on.  A busy
 * limit (concurrency, rpm, tpm) is waited for when it frees up soon, or
 * when this is the last provider; otherwise the job moves on. */
static void on_denied(engine_t *e, struct job *j, const char *reason,
                      int64_t wait_ms)
{
        struct wprovider *p = eng_cur_provider(e, j);
        int64_t now_ms = e->now_us / 1000, step;
        char why[256];
        int last = j->cur + 1 == j->n_chain;

        if (!strcmp(reason, "quota_exhausted") && j->refill > 0) {
                /* Not a chunk left, maybe this call's units still are:
                 * ask exactly, for a while, everyone. */
                j->refill = 0;
                j->exact_admit = 1;
                pstate_pool_exact(e->pol, j->chain[j->cur], now_ms,
                                  now_ms + 1000);
                pstate_pool_demand(e->pol, j->chain[j->cur], 0, 1);
                eng_start_attempt(e, j);
                return;
        }
        if (!strcmp(reason, "quota_exhausted") && wait_for_free(e, j, wait_ms))
                return;
        j->free_wait = 0;
        if (!strcmp(reason, "quota_exhausted")) {
                snprintf(why, sizeof(why), "free quota used up (%s %s a %s)",
                         p->quota_limit, p->quota_unit, p->quota_period);
                pstate_park(e->pol, j->chain[j->cur], now_ms,
                            now_ms + (wait_ms < 0 || wait_ms > 5000 ? 5000
                                                                    : wait_ms),
                            why);
                snprintf(why + strlen(why), sizeof(why) - strlen(why),
                         "; resets in %lld s",
                         (long long)(wait_ms < 0 ? -1 : wait_ms / 1000));
                skip_provider(e, j, j->admit_key, why);
                eng_start_attempt(e, j);
                return;
        }
        step = wait_ms < 0 || wait_ms > 1000 ? 1000 : wait_ms;
        step += step / 10 * eng_rnd32(e) / UINT32_MAX;
        if ((wait_ms <= e->w->admit_wait_ms || last) &&
            j->admit_waited_ms + step <= e->w->admit_wait_max_ms &&
            backoff_fit_deadline(step, e->now_us, j->deadline_us) >= 0) {
                /* Ask again soon (at most a second away), so a freed slot
                 * or a moved window is noticed quickly. */
                j->admit_waited_ms += step;
                j->step = STEP_CALL;
                eng_schedule_retry(e, j, step);
                return;
        }
        snprintf(why, sizeof(why), "%.16s limit of %.64s reached for all "
                                   "workers (frees in %lld ms; waited %lld "
                                   "ms)",
                 reason, p->name, (long long)wait_ms,
                 (long long)j->admit_waited_ms);
        skip_provider(e, j, j->admit_key, why);
        eng_start_attempt(e, j);
}

void eng_on_admitted(engine_t *e, struct pgop *op)
{
        struct job *j = op->opaque;

        j->admitted = op->rc == 0 && op->hit;
        if (j->admitted)
                j->free_wait = 0;
        if (j->is_refill)
                pstate_pool_refilling(e->pol, j->admit_pidx, 0);
        j->is_refill = 0;
        if (j->cancel) {
                eng_finish_cancelled(e, j);
                return;
        }
        if (op->rc) {
                /* Postgres trouble: the limits cannot be checked, so the
                 * call waits (never sent unchecked). */
                log_warn("policy", "job %s: admission at %s failed: %s", j->id,
                         op->provider, op->errstr);
                j->step = STEP_CALL;
                eng_schedule_retry(e, j, 1000);
                return;
        }
        if (!j->admitted) {
                on_denied(e, j, op->errstr, op->wait_ms);
                return;
        }
        if (j->refill > 0)
                pstate_pool_add(e->pol, j->admit_pidx, j->admit_key, j->refill,
                                e->now_us / 1000 + POOL_HOLD_MS);
        j->refill = 0;
        eng_start_attempt(e, j);
}

/* Unused free quota taken ahead goes back to Postgres after a few
 * seconds (and when draining), so other workers can use it. */
void eng_give_back_pools(engine_t *e, int all)
{
        for (size_t i = 0; i < e->w->n_providers; i++) {
                struct wprovider *p = &e->w->providers[i];
                int key = 0;
                double left = pstate_pool_expire(e->pol, i, e->now_us / 1000,
                                                 all, &key);
                struct pgop *op;

                if (left == 0 || !p->quota_unit || (size_t)key >= p->n_keys)
                        continue;
                op = pgop_new(PGOP_UNADMIT);
                op->provider = xstrdup(p->name);
                op->key_id = xstrdup(limits_key(p, key));
                op->tokens = -1;
                op->quota_unit = p->quota_unit;
                op->quota_n = -left;
                pgsink_submit(e->ps, op);
        }
}

/* ---- outcomes ----------------------------------------------------------- */

/* retry_later: same provider after backoff, if tries and deadline allow.
 * @returns 1 if a retry was scheduled. */
static int try_retry(engine_t *e, struct job *j, const struct provider_err *pe)
{
        struct wprovider *p = eng_cur_provider(e, j);
        int64_t hint = pe->retry_after_ms;
        int64_t delay;

        if (j->tries_here >= p->max_retries)
                return 0;
        delay = backoff_delay_ms(&e->bo, j->tries_here + 1, hint, eng_rnd32(e));
        if (delay < 0)
                return 0; /* a long wait means: go elsewhere now */
        delay = backoff_fit_deadline(delay, e->now_us, j->deadline_us);
        if (delay < 0)
                return 0;
        j->tries_here++;
        j->step = STEP_CALL;
        eng_schedule_retry(e, j, delay);
        return 1;
}

/* A 401/403: the key is taken out of the pool here at once and, through
 * provider_key_state, on every worker (until an operator re-enables it:
 * genq provider enable NAME --key ID). */
static void disable_key(engine_t *e, struct job *j, const char *why)
{
        size_t pidx = j->chain[j->cur];
        struct wprovider *p = &e->w->providers[pidx];
        struct pgop *op = pgop_new(PGOP_KEY_OFF);

        pstate_disable_key(e->pol, pidx, j->key_idx, e->now_us / 1000);
        log_warn("policy", "provider %s: key %s disabled: %s", p->name,
                 p->keys[j->key_idx].id, why);
        op->provider = xstrdup(p->name);
        op->key_id = xstrdup(p->keys[j->key_idx].id);
        op->error = xstrdup(why);
        pgsink_submit(e->ps, op);
}

/* The provider says the key's balance or quota is gone: leave the key
 * alone for policy.park_s (another key of the pool may still work). */
static void park_key(engine_t *e, struct job *j, const char *why)
{
        size_t pidx = j->chain[j->cur];
        struct wprovider *p = &e->w->providers[pidx];

        pstate_park_key(e->pol, pidx, j->key_idx,
                        e->now_us / 1000 + e->w->park_s * 1000);
        log_warn("policy", "provider %s: key %s parked for %lld s: %s",
                 p->name, p->keys[j->key_idx].id, (long long)e->w->park_s,
                 why);
}

void eng_on_failure(engine_t *e, struct job *j, const struct provider_err *pe)
{
        struct wprovider *p = eng_cur_provider(e, j);

        snprintf(j->fail_reason, sizeof(j->fail_reason), "%s: %s", p->name,
                 pe->errstr);
        switch (pe->outcome) {
        case OUTCOME_FATAL_JOB:
                eng_fail_job(e, j, "fatal_job", "%s", j->fail_reason);
                return;
        case OUTCOME_RETRY_LATER:
                if (try_retry(e, j, pe))
                        return;
                next_provider(j);
                break;
        case OUTCOME_KEY_DISABLED:
                /* Same provider, another key, if one is left. */
                disable_key(e, j, pe->errstr);
                break;
        case OUTCOME_QUOTA_EXHAUSTED:
                /* Same provider with another key if one is usable (pools
                 * may span accounts), else the next provider. */
                park_key(e, j, pe->errstr);
                if (pstate_pick_key(e->pol, j->chain[j->cur],
                                    e->now_us / 1000) < 0)
                        next_provider(j);
                break;
        default: /* fallback_next */
                next_provider(j);
                break;
        }
        eng_start_attempt(e, j);
}

/* ---- call completions --------------------------------------------------- */

/* An async submit went out and no answer came: the provider may be
 * generating (and billing) it.  It is never resubmitted blindly: the
 * unknown task is recorded, then worker.unknown_submit decides --
 * "fail" (for review, the default) or "resubmit".  None of the providers'
 * APIs can look a task up by our request id, so there is nothing to ask.
 * @returns 1 if the job was failed here. */
static int unknown_submit(engine_t *e, struct job *j,
                          const struct provider_resp *resp,
                          struct provider_err *pe)
{
        struct wprovider *p = eng_cur_provider(e, j);
        struct pgop *op = pgop_new(PGOP_TASK_UNKNOWN);
        char why[256];

        snprintf(why, sizeof(why), "submit sent, no answer (%.150s): "
                                   "outcome unknown",
                 resp->transport_msg);
        op->job_id = xstrdup(j->id);
        op->provider = xstrdup(p->name);
        op->key_id = xstrdup(p->keys[j->key_idx].id);
        op->error = xstrdup(why);
        pgsink_submit(e->ps, op);
        log_warn("job", "job %s: %s at %s (worker.unknown_submit = %s)",
                 j->id, why, p->name, e->w->unknown_submit);
        snprintf(pe->errstr, sizeof(pe->errstr), "%s", why);
        if (strcmp(e->w->unknown_submit, "fail"))
                return 0;
        j->att[j->n_att - 1].error = xstrdup(why);
        eng_fail_job(e, j, "unknown_submit", "%s: %s; failed for review (the "
                                             "provider may be generating it)",
                     p->name, why);
        return 1;
}

void eng_on_call_done(engine_t *e, struct job *j,
                      const struct provider_resp *resp)
{
        struct wprovider *p = eng_cur_provider(e, j);
        struct attempt *a = &j->att[j->n_att - 1];
        struct provider_result res = {.input_tokens = -1, .output_tokens = -1,
                                      .units = -1};
        struct provider_err pe = {.retry_after_ms = -1};
        enum outcome o = p->ops->parse(&p->pcfg, j->pb, resp, &res, &pe);

        a->http_status = resp->status;
        a->latency_ms = (e->now_us - j->call_start_us) / 1000;
        if (o == OUTCOME_SUCCESS && (p->ops->flags & PROVIDER_F_ASYNC) &&
            !res.task_id) {
                o = OUTCOME_FALLBACK_NEXT;
                snprintf(pe.errstr, sizeof(pe.errstr),
                         "accepted without a task id");
        }
        a->outcome = o;
        pstate_call_end(e->pol, j->chain[j->cur], j->key_idx, o,
                        a->latency_ms, j->probe, e->now_us / 1000);
        j->probe = 0;
        /* An async provider's concurrency is its running tasks: the slot
         * is kept until the task ends.  Anything else gives it back now,
         * with the tokens the call really used. */
        if (j->pooled && !strcmp(p->quota_unit, "tokens") &&
            res.input_tokens >= 0 && res.output_tokens >= 0)
                pstate_pool_charge(e->pol, j->chain[j->cur],
                                   (double)(res.input_tokens +
                                            res.output_tokens -
                                            j->admit_tokens));
        j->pooled = 0;
        if (!(o == OUTCOME_SUCCESS && (p->ops->flags & PROVIDER_F_ASYNC) &&
              p->limit_concurrency > 0))
                eng_release_admission(
                        e, j,
                        res.input_tokens >= 0 && res.output_tokens >= 0
                                ? res.input_tokens + res.output_tokens
                                : -1);
        if (o != OUTCOME_SUCCESS && (p->ops->flags & PROVIDER_F_ASYNC) &&
            resp->transport_err && resp->sent &&
            unknown_submit(e, j, resp, &pe)) {
                provider_result_clear(&res);
                return;
        }
        if (o == OUTCOME_SUCCESS) {
                if (p->ops->flags & PROVIDER_F_ASYNC)
                        eng_on_task_accepted(e, j, &res);
                else
                        eng_on_provider_success(e, j, &res);
                provider_result_clear(&res);
                return;
        }
        provider_result_clear(&res);
        pe.outcome = o;
        a->error = xstrdup(pe.errstr);
        log_dbg(LOG_DBG_JOB, "job", "job %s: %s -> %s: %s", j->id, p->name,
                outcome_name(o), pe.errstr);
        eng_on_failure(e, j, &pe);
}
