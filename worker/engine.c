/*
 * engine: the worker's event loop and job state machine.
 *
 * DESIGN
 * One thread runs everything that decides: Kafka messages come in, jobs
 * are decoded and validated (bad ones go to the DLQ), accepted into
 * Postgres through the sink thread, run against providers on the curl
 * multi loop, retried or moved down their provider chain by the outcome
 * class of each attempt, and finished in one Postgres statement (result,
 * state, attempts, charge).  Nothing blocks this thread: Postgres is
 * behind pgsink's queue and HTTP behind curl's sockets, and the loop waits
 * on both and on Kafka's queue descriptor at once.
 *
 * A job's life, and the container it sits in at each state:
 *
 *   ACCEPTING   ACCEPT op in pgsink         (job table)
 *   INFLIGHT    HTTP in httploop: the input fetch, the call (submit for
 *               async providers) or a task poll, by `step` (job table)
 *   RETRY_WAIT  timer heap until due_us: a retry, a poll or a fetch
 *               retry, by `due` (job table)
 *   RESERVING   RESERVE op in pgsink: the estimated cost is reserved
 *               against the tenant's budget before anything runs
 *   (INFLIGHT with step MEDIA: the provider succeeded; its result media
 *   is being downloaded, one file at a time, before the job finishes)
 *   RECORDING   TASK_START op in pgsink: an accepted async task is made
 *               durable before its first poll (job table)
 *   FINISHING   FINISH op in pgsink          (job table)
 *   DLQ         DLQ produce, then REJECT op  (no table: may lack an id)
 *
 * Offsets: a message's offset is marked done once its job row is durable
 * (ACCEPT committed) or the message is safely in the DLQ and recorded;
 * offtrack turns that into the next offset to store per partition.  A job
 * whose worker dies is re-driven from its Postgres row (payload included)
 * by any worker's lease sweep, so committing the offset early loses
 * nothing.
 *
 * Backpressure: above worker.max_inflight jobs every partition is paused
 * (the consumer keeps polling, so the group never thinks we died), and
 * resumed below worker.low_water.
 *
 * The parts (eng_int.h holds what they share): this file is the loop and
 * a job's way through it; eng_policy.c chooses the provider of each
 * attempt and acts on its outcome; eng_tasks.c runs async provider tasks
 * (record, poll, callbacks, resume, cancel); eng_media.c fetches input
 * media and downloads result media; eng_finish.c writes the final row
 * (result, usage, price) and sends the completion event and hook.
 */
#include "eng_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backoff.h"
#include "cbrecv.h"
#include "codec.h"
#include "hooks.h"
#include "httploop.h"
#include "kio.h"
#include "log.h"
#include "offtrack.h"
#include "pgsink.h"
#include "pgutil.h"
#include "policy.h"
#include "pstate.h"
#include "rcache.h"
#include "schema.h"
#include "xmem.h"

#define LOOP_MAX_WAIT_MS 100
#define SWEEP_LIMIT 100
#define SHUTDOWN_PG_WAIT_US (15 * 1000000LL)

/* ---- time --------------------------------------------------------------- */

static int64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t eng_wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t eng_rnd32(engine_t *e)
{
        /* xorshift32: jitter needs spread, not secrecy. */
        e->rnd ^= e->rnd << 13;
        e->rnd ^= e->rnd >> 17;
        e->rnd ^= e->rnd << 5;
        return e->rnd;
}

/* ---- job table ---------------------------------------------------------- */

static size_t hash(const char *s, size_t size)
{
        uint64_t h = 1469598103934665603ULL;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return (size_t)(h & (size - 1));
}

struct job *eng_tab_find(engine_t *e, const char *id)
{
        for (struct job *j = e->tab[hash(id, e->tab_size)]; j; j = j->hnext)
                if (!strcmp(j->id, id))
                        return j;
        return NULL;
}

static void tab_grow(engine_t *e)
{
        size_t nsize = e->tab_size * 2;
        struct job **nt = xcalloc(nsize, sizeof(*nt));

        for (size_t i = 0; i < e->tab_size; i++) {
                struct job *j = e->tab[i], *next;

                for (; j; j = next) {
                        size_t h = hash(j->id, nsize);

                        next = j->hnext;
                        j->hnext = nt[h];
                        nt[h] = j;
                }
        }
        free(e->tab);
        e->tab = nt;
        e->tab_size = nsize;
}

static void tab_add(engine_t *e, struct job *j)
{
        size_t h;

        if (e->n_jobs * 2 >= e->tab_size)
                tab_grow(e);
        h = hash(j->id, e->tab_size);
        j->hnext = e->tab[h];
        e->tab[h] = j;
        e->n_jobs++;
}

static void tab_del(engine_t *e, struct job *j)
{
        struct job **pp = &e->tab[hash(j->id, e->tab_size)];

        for (; *pp; pp = &(*pp)->hnext)
                if (*pp == j) {
                        *pp = j->hnext;
                        e->n_jobs--;
                        return;
                }
}

/* ---- retry heap --------------------------------------------------------- */

static void heap_swap(engine_t *e, size_t a, size_t b)
{
        struct job *t = e->heap[a];

        e->heap[a] = e->heap[b];
        e->heap[b] = t;
        e->heap[a]->heap_idx = a;
        e->heap[b]->heap_idx = b;
}

static void heap_push(engine_t *e, struct job *j)
{
        size_t i;

        if (e->heap_n == e->heap_cap) {
                e->heap_cap = e->heap_cap ? e->heap_cap * 2 : 64;
                e->heap = xrealloc(e->heap, e->heap_cap * sizeof(*e->heap));
        }
        i = e->heap_n++;
        e->heap[i] = j;
        j->heap_idx = i;
        while (i > 0 && e->heap[(i - 1) / 2]->due_us > e->heap[i]->due_us) {
                heap_swap(e, i, (i - 1) / 2);
                i = (i - 1) / 2;
        }
}

static void sift_down(engine_t *e, size_t i)
{
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;

                if (l < e->heap_n && e->heap[l]->due_us < e->heap[m]->due_us)
                        m = l;
                if (r < e->heap_n && e->heap[r]->due_us < e->heap[m]->due_us)
                        m = r;
                if (m == i)
                        break;
                heap_swap(e, i, m);
                i = m;
        }
}

static struct job *heap_pop(engine_t *e)
{
        struct job *top = e->heap[0];

        e->heap[0] = e->heap[--e->heap_n];
        e->heap[0]->heap_idx = 0;
        sift_down(e, 0);
        return top;
}

/* Take \p j out of the heap wherever it is (a cancelled job). */
void eng_heap_remove(engine_t *e, struct job *j)
{
        size_t i = j->heap_idx;

        if (--e->heap_n == i)
                return;
        e->heap[i] = e->heap[e->heap_n];
        e->heap[i]->heap_idx = i;
        while (i > 0 && e->heap[(i - 1) / 2]->due_us > e->heap[i]->due_us) {
                heap_swap(e, i, (i - 1) / 2);
                i = (i - 1) / 2;
        }
        sift_down(e, i);
}

/* Wait \p delay_ms, then do j->step (a call, a fetch or a poll). */
void eng_schedule_retry(engine_t *e, struct job *j, int64_t delay_ms)
{
        j->state = JOB_RETRY_WAIT;
        j->due_us = e->now_us + delay_ms * 1000;
        heap_push(e, j);
}

/* ---- job lifetime ------------------------------------------------------- */

static struct job *job_new(engine_t *e)
{
        struct job *j = xcalloc(1, sizeof(*j));

        j->eng = e;
        j->partition = -1;
        j->offset = -1;
        return j;
}

static void job_destroy(struct job *j)
{
        for (size_t i = 0; i < j->n_att; i++) {
                free(j->att[i].model);
                free(j->att[i].error);
        }
        codec_job_free(j->pb);
        free(j->raw);
        free(j->key);
        free(j->input);
        free(j->input_ctype);
        free(j->task_id);
        free(j->cb_body);
        free(j->resume);
        if (j->res) {
                provider_result_clear(j->res);
                free(j->res);
        }
        if (j->dl_fd > 0)
                close(j->dl_fd);
        json_decref(j->artifacts);
        free(j->topic);
        free(j->dlq_code);
        free(j->dlq_reason);
        free(j);
}

/* The message behind \p j is safely recorded: its offset may be stored. */
static void origin_done(engine_t *e, struct job *j)
{
        int64_t next;

        if (!j->has_origin)
                return;
        j->has_origin = 0;
        next = offtrack_done(e->ot, j->topic, j->partition, j->offset);
        if (next >= 0)
                kio_store(e->kio, j->topic, j->partition, next);
}

static void job_forget(engine_t *e, struct job *j)
{
        if (!j->dup && j->id && j->state != JOB_DLQ)
                tab_del(e, j);
        job_destroy(j);
}

/* ---- the DLQ path ------------------------------------------------------- */

static void on_reject_recorded(engine_t *e, struct job *j)
{
        e->n_dlq--;
        origin_done(e, j);
        job_destroy(j);
}

/* Record the refused job in Postgres when it has a usable id. */
static void submit_reject(engine_t *e, struct job *j)
{
        char why[256];
        struct pgop *op;
        Genq__V1__Kind k = codec_topic_kind(e->w->g.topic_prefix, j->topic);

        if (!j->pb || codec_job_validate(j->pb, GENQ__V1__KIND__KIND_UNSPECIFIED,
                                         why, sizeof(why)) == CODEC_EINVALID ||
            k == GENQ__V1__KIND__KIND_UNSPECIFIED) {
                on_reject_recorded(e, j); /* nothing we can key a row on */
                return;
        }
        op = pgop_new(PGOP_REJECT);
        op->opaque = j;
        op->job_id = xstrdup(j->pb->job_id);
        op->tenant_id = xstrdup(j->pb->tenant_id);
        op->kind = xstrdup(codec_kind_name(k));
        op->topic = xstrdup(j->topic);
        op->partition = j->partition;
        op->offset = j->offset;
        op->payload = j->raw;
        op->payload_len = j->raw_len;
        j->raw = NULL; /* now owned by op */
        snprintf(why, sizeof(why), "%s: %s", j->dlq_code, j->dlq_reason);
        op->error = xstrdup(why);
        pgsink_submit(e->ps, op);
}

static void on_dlq_delivered(void *opaque, int ok, const char *errstr)
{
        struct job *j = opaque;
        engine_t *e = j->eng;

        if (!ok) {
                /* Not in the DLQ: do not store the offset; the message
                 * comes back after a restart or rebalance. */
                log_err("kafka", "%s[%d]@%lld not dead-lettered: %s",
                        j->topic, (int)j->partition, (long long)j->offset,
                        errstr);
                j->has_origin = 0;
                e->n_dlq--;
                job_destroy(j);
                return;
        }
        submit_reject(e, j);
}

static void send_to_dlq(engine_t *e, struct job *j, const char *code,
                        const char *reason)
{
        char errstr[256];
        const char *id = j->pb && j->pb->job_id && *j->pb->job_id
                                 ? j->pb->job_id
                                 : NULL;

        log_warn("job", "%s[%d]@%lld -> DLQ (%s): %s", j->topic,
                 (int)j->partition, (long long)j->offset, code, reason);
        j->state = JOB_DLQ;
        j->dlq_code = xstrdup(code);
        j->dlq_reason = xstrdup(reason);
        e->n_dlq++;
        e->n_dlq_total++;
        struct kio_origin o = {j->topic, j->partition, j->offset, j->key,
                               j->key_len, j->raw, j->raw_len};

        if (kio_dlq(e->kio, &o, j->dlq_code, reason, id, on_dlq_delivered, j,
                    errstr, sizeof(errstr))) {
                log_err("kafka", "%s", errstr);
                j->has_origin = 0; /* redelivered later */
                e->n_dlq--;
                job_destroy(j);
        }
}

/* ---- accepting ---------------------------------------------------------- */

static char *metadata_json(const Genq__V1__Job *pb)
{
        json_t *o;
        char *s;

        if (pb->n_metadata == 0)
                return NULL;
        o = json_object();
        for (size_t i = 0; i < pb->n_metadata; i++)
                json_object_set_new(o, pb->metadata[i]->key,
                                    json_string(pb->metadata[i]->value));
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

static void submit_accept(engine_t *e, struct job *j, const void *raw,
                          size_t len)
{
        struct pgop *op = pgop_new(PGOP_ACCEPT);

        op->opaque = j;
        op->job_id = xstrdup(j->pb->job_id);
        op->tenant_id = xstrdup(j->pb->tenant_id);
        op->kind = xstrdup(codec_kind_name(j->pb->kind));
        op->route = xstrdup(j->pb->route);
        op->priority = j->pb->priority;
        op->metadata_json = metadata_json(j->pb);
        op->topic = j->has_origin ? xstrdup(j->topic) : NULL;
        op->partition = j->partition;
        op->offset = j->offset;
        op->created_ms = j->pb->created_at_ms;
        op->deadline_ms = j->pb->deadline_ms;
        op->payload = xmalloc(len ? len : 1);
        memcpy(op->payload, raw, len);
        op->payload_len = len;
        pgsink_submit(e->ps, op);
}

static void set_deadline(engine_t *e, struct job *j)
{
        int64_t left_ms;

        if (j->pb->deadline_ms <= 0)
                return;
        left_ms = j->pb->deadline_ms - eng_wall_ms();
        j->deadline_us = e->now_us + (left_ms > 0 ? left_ms : 0) * 1000;
        if (j->deadline_us == 0)
                j->deadline_us = 1;
}

static void on_message(engine_t *e, rd_kafka_message_t *m)
{
        struct job *j = job_new(e);
        char errstr[256];
        enum codec_err ce;
        Genq__V1__Kind tk;

        e->n_in++;
        j->topic = xstrdup(rd_kafka_topic_name(m->rkt));
        j->partition = m->partition;
        j->offset = m->offset;
        j->has_origin = 1;
        offtrack_add(e->ot, j->topic, j->partition, j->offset);
        tk = codec_topic_kind(e->w->g.topic_prefix, j->topic);
        j->pb = codec_job_decode(m->payload, m->len, &ce, errstr,
                                 sizeof(errstr));
        if (j->pb)
                ce = codec_job_validate(j->pb, tk, errstr, sizeof(errstr));
        if (ce != CODEC_OK) {
                j->raw = xmalloc(m->len ? m->len : 1);
                memcpy(j->raw, m->payload, m->len);
                j->raw_len = m->len;
                if (m->key) {
                        j->key = xmalloc(m->key_len ? m->key_len : 1);
                        memcpy(j->key, m->key, m->key_len);
                        j->key_len = m->key_len;
                }
                rd_kafka_message_destroy(m);
                send_to_dlq(e, j, codec_err_name(ce), errstr);
                return;
        }
        j->id = j->pb->job_id;
        j->state = JOB_ACCEPTING;
        set_deadline(e, j);
        if (eng_tab_find(e, j->id))
                j->dup = 1;
        else
                tab_add(e, j);
        submit_accept(e, j, m->payload, m->len);
        rd_kafka_message_destroy(m);
}

/* ---- HTTP completions --------------------------------------------------- */

void eng_on_http_done(void *opaque, const struct provider_resp *resp)
{
        struct job *j = opaque;
        engine_t *e = j->eng;

        e->now_us = mono_us();
        if (j->cancel) {
                if (j->step == STEP_CALL)
                        pstate_call_end(e->pol, j->chain[j->cur], j->key_idx,
                                        OUTCOME_FATAL_JOB, 0, j->probe,
                                        e->now_us / 1000);
                if (j->step == STEP_CANCEL)
                        eng_note_cancel(e, j, resp);
                else if (j->step == STEP_POLL && eng_cancel_at_provider(e, j))
                        return;
                if (j->step == STEP_MEDIA) {
                        char part[1200];

                        eng_media_path(e, j, 1, "", part, sizeof(part));
                        unlink(part);
                }
                eng_finish_cancelled(e, j);
                return;
        }
        switch (j->step) {
        case STEP_FETCH:
                eng_on_fetch_done(e, j, resp);
                break;
        case STEP_POLL:
                eng_on_poll_done(e, j, resp);
                break;
        case STEP_MEDIA:
                eng_on_media_done(e, j, resp);
                break;
        default:
                eng_on_call_done(e, j, resp);
                break;
        }
}

/* ---- budgets ------------------------------------------------------------ */

static size_t utf8_chars(const char *s)
{
        size_t n = 0;

        for (; s && *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

/* Natural units a job will use, as far as can be known before it runs:
 * the most a budget must cover. */
double eng_estimate_units(const engine_t *e, const Genq__V1__Job *pb)
{
        switch (pb->payload_case) {
        case GENQ__V1__JOB__PAYLOAD_IMAGE:
                return pb->image->count > 0 ? pb->image->count : 1;
        case GENQ__V1__JOB__PAYLOAD_VIDEO:
                return eng_video_seconds(pb);
        case GENQ__V1__JOB__PAYLOAD_STT:
                return (double)e->w->stt_estimate_s;
        case GENQ__V1__JOB__PAYLOAD_TTS:
                return (double)utf8_chars(pb->tts->text);
        default:
                return 0;
        }
}

/* The most this job can cost at price \p w: chat counts the prompt (4
 * bytes a token, as billing estimates) and the whole max_tokens. */
static double estimate_cost(const engine_t *e, const Genq__V1__Job *pb,
                            const struct wprice *w)
{
        double in, out;

        if (strcmp(w->unit, "1k_tokens"))
                return eng_estimate_units(e, pb) * atof(w->credits);
        in = (double)eng_prompt_bytes_tokens(pb) + 4.0 * pb->chat->n_messages;
        out = pb->chat->max_tokens > 0 ? pb->chat->max_tokens : 1024;
        return (in * atof(w->in_credits) + out * atof(w->out_credits)) /
               1000.0;
}

/* The costliest provider of the chain, so any fallback fits. */
static double estimate_job(const engine_t *e, const struct job *j)
{
        double most = 0;

        for (size_t i = 0; i < j->n_chain; i++) {
                const struct wprovider *p = &e->w->providers[j->chain[i]];
                const struct wprice *w = wconf_price(p, eng_job_model(j->pb));

                if (w && estimate_cost(e, j->pb, w) > most)
                        most = estimate_cost(e, j->pb, w);
        }
        return most;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Only tenants with a budget pay the reservation's round trip; the set is
 * refreshed every 5 s, so a new budget binds within seconds. */
static int tenant_budgeted(const engine_t *e, const char *tenant)
{
        return !e->budgets_known ||
               bsearch(&tenant, e->budgeted, e->n_budgeted, sizeof(char *),
                       cmp_str);
}

static void on_budgeted(engine_t *e, struct pgop *op)
{
        for (size_t i = 0; i < e->n_budgeted; i++)
                free(e->budgeted[i]);
        free(e->budgeted);
        e->budgeted = op->ids;
        e->n_budgeted = op->n_ids;
        op->ids = NULL; /* now owned by the engine */
        op->n_ids = 0;
        qsort(e->budgeted, e->n_budgeted, sizeof(char *), cmp_str);
        e->budgets_known = 1;
}

static void after_reserve(engine_t *e, struct job *j);

static void reserve_budget(engine_t *e, struct job *j)
{
        double est = estimate_job(e, j);
        struct pgop *op;
        char amount[32];

        if (j->pb->budget_opt_case == GENQ__V1__JOB__BUDGET_OPT_BUDGET_CREDITS &&
            est > j->pb->budget_credits) {
                eng_fail_job(e, j, "budget",
                             "the job may cost up to %.6f credits, over "
                             "its budget of %.6f",
                             est, j->pb->budget_credits);
                return;
        }
        if (!tenant_budgeted(e, j->pb->tenant_id)) {
                after_reserve(e, j);
                return;
        }
        snprintf(amount, sizeof(amount), "%.6f", est);
        op = pgop_new(PGOP_RESERVE);
        op->opaque = j;
        op->job_id = xstrdup(j->id);
        op->tenant_id = xstrdup(j->pb->tenant_id);
        op->amount = xstrdup(amount);
        j->state = JOB_RESERVING;
        pgsink_submit(e->ps, op);
}

static void on_reserved(engine_t *e, struct pgop *op)
{
        struct job *j = op->opaque;

        if (op->rc) {
                eng_fail_job(e, j, "budget", "budget not checked: %s",
                             op->errstr);
                return;
        }
        if (op->cancelled || j->cancel) {
                eng_finish_cancelled(e, j); /* before anything ran */
                return;
        }
        if (!op->hit) {
                eng_fail_job(e, j, "budget",
                             "refused, over the tenant's budget: %s",
                             op->errstr);
                return;
        }
        after_reserve(e, j);
}

static void after_reserve(engine_t *e, struct job *j)
{
        if (j->cancel) {
                eng_finish_cancelled(e, j); /* before anything ran */
                return;
        }
        if (j->resume && eng_resume_task(e, j) == 0)
                return;
        if (e->w->cache_enabled && rcache_key(j->pb, j->cache_key) == 0) {
                struct pgop *op = pgop_new(PGOP_CACHE_GET);

                op->opaque = j;
                op->holder = xstrdup(j->cache_key);
                j->state = JOB_LOOKUP;
                pgsink_submit(e->ps, op);
                return;
        }
        eng_start_attempt(e, j);
}

/* ---- the response cache ------------------------------------------------- */

/* A deterministic request answered before: finish with that answer, no
 * provider call, unbilled (the note says why). */
static void finish_cached(engine_t *e, struct job *j, struct pgop *hit)
{
        struct pgop *op = pgop_new(PGOP_FINISH);

        op->opaque = j;
        op->job_id = xstrdup(j->id);
        op->state = xstrdup("succeeded");
        op->attempts_json = xstrdup("[]");
        op->provider = hit->provider;
        op->model = hit->model;
        op->text = hit->text;
        op->finish_reason = hit->finish_reason;
        op->usage_json = hit->usage_json;
        hit->provider = hit->model = hit->text = NULL;
        hit->finish_reason = hit->usage_json = NULL;
        op->in_tokens = hit->in_tokens;
        op->out_tokens = hit->out_tokens;
        op->units = -1;
        op->data_bytes = -1;
        op->billing_note = xstrdup("served from the response cache (no "
                                   "provider call): not billed");
        j->cache_key[0] = '\0'; /* nothing to store back */
        j->state = JOB_FINISHING;
        log_dbg(LOG_DBG_JOB, "job", "job %s: answered from the cache", j->id);
        pgsink_submit(e->ps, op);
}

static void on_cache_get(engine_t *e, struct pgop *op)
{
        struct job *j = op->opaque;

        if (j->cancel) {
                eng_finish_cancelled(e, j);
                return;
        }
        if (op->rc)
                log_warn("job", "job %s: response cache lookup: %s", j->id,
                         op->errstr);
        if (op->rc == 0 && op->hit) {
                finish_cached(e, j, op);
                return;
        }
        eng_start_attempt(e, j);
}

/* ---- cancellation ------------------------------------------------------- */

void eng_finish_cancelled(engine_t *e, struct job *j)
{
        if (j->dl_fd > 0) {
                close(j->dl_fd);
                j->dl_fd = 0;
        }
        j->cancel = 1;
        eng_fail_job(e, j, "cancelled", "cancelled on request (genq cancel)%s",
                     j->cancel_note);
}

/* Stop \p j now if it is waiting; otherwise at its next step (its HTTP
 * call or database write completes first). */
static void cancel_job(engine_t *e, struct job *j)
{
        if (j->cancel || j->dup)
                return;
        j->cancel = 1;
        log_info("job", "job %s: cancel requested", j->id);
        if (j->state == JOB_RETRY_WAIT) {
                eng_heap_remove(e, j);
                if (!eng_cancel_at_provider(e, j))
                        eng_finish_cancelled(e, j);
        }
}

static void on_cancels(engine_t *e, struct pgop *op)
{
        for (size_t i = 0; i < op->n_ids; i++) {
                struct job *j = eng_tab_find(e, op->ids[i]);

                if (j)
                        cancel_job(e, j);
        }
}

/* ---- running ------------------------------------------------------------ */

static void run_job(engine_t *e, struct job *j)
{
        if (j->deadline_us && e->now_us >= j->deadline_us) {
                eng_fail_job(e, j, "deadline", "deadline passed before the job "
                                               "could run");
                return;
        }
        if (eng_build_chain(e, j))
                return;
        reserve_budget(e, j);
}

/* ---- Postgres completions ----------------------------------------------- */

static void on_accepted(engine_t *e, struct pgop *op)
{
        struct job *j = op->opaque;

        if (op->rc) {
                /* The database refused the row itself (a constraint): the
                 * message cannot be run, so it is dead-lettered, never
                 * dropped.  Connection failures never get here: pgsink
                 * retries those. */
                if (!j->dup)
                        tab_del(e, j);
                j->raw = op->payload;
                j->raw_len = op->payload_len;
                op->payload = NULL; /* now owned by the job */
                j->key = xstrdup(op->job_id);
                j->key_len = strlen(op->job_id);
                j->state = JOB_DLQ;
                send_to_dlq(e, j, "db_refused", op->errstr);
                return;
        }
        origin_done(e, j);
        if (!j->dup && op->hit && op->cancelled)
                j->cancel = 1; /* finished 'cancelled' before it runs */
        if (j->dup || !op->hit) {
                /* Final already, or another live worker holds it. */
                e->n_skipped++;
                job_forget(e, j);
                return;
        }
        run_job(e, j);
}

static void on_finished(engine_t *e, struct pgop *op)
{
        struct job *j = op->opaque;

        if (op->rc)
                log_err("job", "job %s: final state not written: %s (its "
                               "lease will expire and it will be re-driven)",
                        j->id, op->errstr);
        else if (!op->hit)
                log_warn("job", "job %s: lease lost before finishing; "
                                "another worker owns it now",
                         j->id);
        else if (!strcmp(op->state, "succeeded"))
                e->n_ok++;
        else
                e->n_failed++;
        if (op->rc == 0 && op->hit) {
                eng_publish_event(e, j, op);
                if (j->pb->callback_url && *j->pb->callback_url)
                        eng_send_hook(e, j, op);
        }
        job_forget(e, j);
}

/* Jobs whose worker died: run them here. */
static void on_swept(engine_t *e, struct pgop *op)
{
        for (size_t i = 0; i < op->n_rows; i++) {
                struct pgop_row *r = &op->rows[i];
                char errstr[256];
                enum codec_err ce;
                struct job *j;

                if (eng_tab_find(e, r->job_id))
                        continue;
                j = job_new(e);
                j->pb = codec_job_decode(r->payload, r->payload_len, &ce,
                                         errstr, sizeof(errstr));
                if (!j->pb) {
                        log_err("job", "re-drive %s: %s", r->job_id, errstr);
                        job_destroy(j);
                        continue;
                }
                j->id = j->pb->job_id;
                j->resume = xstrdup(r->task);
                tab_add(e, j);
                set_deadline(e, j);
                e->n_redriven++;
                log_info("job", "re-driving job %s (lease expired)%s", j->id,
                         j->resume ? ": resuming its task" : "");
                run_job(e, j);
        }
}

static void on_pg_done(engine_t *e, struct pgop *op)
{
        switch (op->type) {
        case PGOP_ACCEPT:
                on_accepted(e, op);
                break;
        case PGOP_FINISH:
                on_finished(e, op);
                break;
        case PGOP_REJECT:
                if (op->rc)
                        log_err("job", "rejected job %s not recorded: %s",
                                op->job_id, op->errstr);
                on_reject_recorded(e, op->opaque);
                break;
        case PGOP_SWEEP:
                on_swept(e, op);
                break;
        case PGOP_CALLBACKS:
                eng_on_callbacks(e, op);
                break;
        case PGOP_ADMIT:
                eng_on_admitted(e, op);
                break;
        case PGOP_CACHE_GET:
                on_cache_get(e, op);
                break;
        case PGOP_CACHE_PUT:
                if (op->rc)
                        log_warn("job", "storing a cached answer: %s",
                                 op->errstr);
                break;
        case PGOP_POLICY:
                if (op->rc)
                        log_warn("policy", "reading overrides: %s",
                                 op->errstr);
                else
                        pstate_apply_shared(e->pol, op->ids, op->n_ids,
                                            op->tokens);
                break;
        case PGOP_UNADMIT:
        case PGOP_KEY_OFF:
                if (op->rc)
                        log_warn("policy", "%s at %s: %s",
                                 op->type == PGOP_KEY_OFF ? "sharing a "
                                                            "disabled key"
                                                          : "releasing a "
                                                            "limit grant",
                                 op->provider, op->errstr);
                break;
        case PGOP_HOOK:
                if (op->rc)
                        log_warn("hooks", "job %s: delivery not recorded: %s",
                                 op->job_id, op->errstr);
                break;
        case PGOP_RESERVE:
                on_reserved(e, op);
                break;
        case PGOP_CANCELS:
                on_cancels(e, op);
                break;
        case PGOP_BUDGETED:
                on_budgeted(e, op);
                break;
        case PGOP_TASK_START:
                if (op->rc)
                        log_err("job", "job %s: task %s not recorded: %s",
                                op->job_id, op->task_id, op->errstr);
                eng_on_task_recorded(e, op->opaque);
                break;
        default:
                break;
        }
        pgop_destroy(op);
}

static void drain_pg(engine_t *e)
{
        struct pgop *op = pgsink_take_done(e->ps), *next;

        for (; op; op = next) {
                next = op->next;
                on_pg_done(e, op);
        }
}

/* ---- periodic work ------------------------------------------------------ */

static void fire_retries(engine_t *e)
{
        while (e->heap_n > 0 && e->heap[0]->due_us <= e->now_us) {
                struct job *j = heap_pop(e);

                if (j->step == STEP_POLL)
                        eng_start_poll(e, j);
                else if (j->step == STEP_MEDIA)
                        eng_start_media(e, j);
                else if (j->step == STEP_FETCH)
                        eng_start_fetch(e, j);
                else
                        eng_start_attempt(e, j);
        }
}

static void periodic(engine_t *e)
{
        struct wconf *w = e->w;

        if (e->now_us >= e->next_renew_us) {
                pgsink_submit(e->ps, pgop_new(PGOP_RENEW));
                e->next_renew_us = e->now_us + w->lease_s * 1000000 / 3;
        }
        if (e->now_us >= e->next_budgets_us) {
                pgsink_submit(e->ps, pgop_new(PGOP_BUDGETED));
                e->next_budgets_us = e->now_us + 5000000;
        }
        hooks_tick(e->hooks, e->now_us);
        if (e->draining || e->now_us >= e->next_pools_us) {
                /* not per loop turn: chunks are held for seconds */
                eng_give_back_pools(e, e->draining);
                e->next_pools_us = e->now_us + 250000;
        }
        if (e->now_us >= e->next_policy_us) {
                struct pgop *op = pgop_new(PGOP_POLICY);

                op->tokens = e->now_us / 1000; /* when it was asked */
                pgsink_submit(e->ps, op);
                e->next_policy_us = e->now_us + w->state_interval_ms * 1000;
        }
        if ((*w->cb_listen || *w->cb_public_url) && e->n_jobs > 0 &&
            e->now_us >= e->next_callbacks_us) {
                pgsink_submit(e->ps, pgop_new(PGOP_CALLBACKS));
                e->next_callbacks_us = e->now_us + 500000;
        }
        if (e->n_jobs > 0 && e->now_us >= e->next_cancel_us) {
                pgsink_submit(e->ps, pgop_new(PGOP_CANCELS));
                e->next_cancel_us = e->now_us + 1000000;
        }
        if (!e->draining && e->now_us >= e->next_sweep_us) {
                struct pgop *op = pgop_new(PGOP_SWEEP);

                op->limit = SWEEP_LIMIT;
                pgsink_submit(e->ps, op);
                e->next_sweep_us = e->now_us + w->sweep_interval_s * 1000000;
        }
        if (w->stats_interval_s > 0 && e->now_us >= e->next_stats_us) {
                uint64_t batches, ops;

                pgsink_counters(e->ps, &batches, &ops);
                log_info("stats",
                         "in=%llu ok=%llu (%.0f/s) failed=%llu dlq=%llu "
                         "skipped=%llu redriven=%llu jobs=%zu http=%zu "
                         "retry_wait=%zu pg_pending=%zu pg_batches=%llu "
                         "offsets_pending=%zu paused=%d",
                         (unsigned long long)e->n_in,
                         (unsigned long long)e->n_ok,
                         (double)(e->n_ok - e->last_ok) /
                                 (double)w->stats_interval_s,
                         (unsigned long long)e->n_failed,
                         (unsigned long long)e->n_dlq_total,
                         (unsigned long long)e->n_skipped,
                         (unsigned long long)e->n_redriven, e->n_jobs,
                         httploop_inflight(e->hl), e->heap_n,
                         pgsink_pending(e->ps), (unsigned long long)batches,
                         offtrack_pending(e->ot), kio_paused(e->kio));
                e->last_ok = e->n_ok;
                e->next_stats_us = e->now_us + w->stats_interval_s * 1000000;
        }
}

static size_t load(const engine_t *e)
{
        return e->n_jobs + e->n_dlq;
}

static void consume(engine_t *e)
{
        rd_kafka_message_t *m;

        if (e->draining)
                return;
        while (load(e) < (size_t)e->w->max_inflight && (m = kio_poll(e->kio)))
                on_message(e, m);
        if (load(e) >= (size_t)e->w->max_inflight)
                kio_set_paused(e->kio, 1);
        else if (load(e) <= (size_t)e->w->low_water)
                kio_set_paused(e->kio, 0);
}

static int wait_ms(const engine_t *e)
{
        int64_t ms = LOOP_MAX_WAIT_MS;

        if (e->heap_n > 0) {
                int64_t due = (e->heap[0]->due_us - e->now_us + 999) / 1000;

                if (due < ms)
                        ms = due < 0 ? 0 : due;
        }
        return (int)ms;
}

/* ---- rebalance ---------------------------------------------------------- */

static void on_revoke(void *opaque, const char *topic, int32_t partition)
{
        engine_t *e = opaque;

        /* Stores for a partition we no longer own would fail; the jobs
         * themselves run on (their rows are durable). */
        for (size_t i = 0; i < e->tab_size; i++)
                for (struct job *j = e->tab[i]; j; j = j->hnext)
                        if (j->has_origin && j->partition == partition &&
                            !strcmp(j->topic, topic))
                                j->has_origin = 0;
        offtrack_drop(e->ot, topic, partition);
}

/* ---- shutdown ----------------------------------------------------------- */

/* Past the grace period: abandon the calls still running and hand their
 * leases back so another worker takes them at once (not after expiry). */
static void release_leases(engine_t *e)
{
        struct pgop *op = pgop_new(PGOP_RELEASE);

        op->ids = xcalloc(e->n_jobs ? e->n_jobs : 1, sizeof(char *));
        for (size_t i = 0; i < e->tab_size; i++)
                for (struct job *j = e->tab[i]; j; j = j->hnext)
                        if (j->state == JOB_INFLIGHT ||
                            j->state == JOB_RETRY_WAIT)
                                op->ids[op->n_ids++] = xstrdup(j->id);
        log_warn("worker", "grace period over: handing back %zu job(s)",
                 op->n_ids);
        pgsink_submit(e->ps, op);
        e->released = 1;
}

/* Same providers in the same order with the same key pools: jobs index
 * providers and keys by position, so only then can they carry on. */
static int reload_compatible(const struct wconf *a, const struct wconf *b,
                             char *errstr, size_t errstr_size)
{
        if (a->n_providers != b->n_providers) {
                snprintf(errstr, errstr_size, "providers added or removed");
                return 0;
        }
        for (size_t i = 0; i < a->n_providers; i++) {
                const struct wprovider *p = &a->providers[i];
                const struct wprovider *q = &b->providers[i];

                if (strcmp(p->name, q->name) ||
                    strcmp(p->adapter ? p->adapter : "",
                           q->adapter ? q->adapter : "")) {
                        snprintf(errstr, errstr_size, "provider %s changed "
                                                      "name, order or adapter",
                                 p->name);
                        return 0;
                }
                if (p->n_keys != q->n_keys) {
                        snprintf(errstr, errstr_size, "provider %s: key pool "
                                                      "size changed",
                                 p->name);
                        return 0;
                }
        }
        return 1;
}

static int migrate(const struct wconf *w, char *errstr, size_t errstr_size);

/* What the policy keeps outside the configuration follows a reload: free
 * quota limits in Postgres (a short blocking connection; reloads are
 * rare and operator-driven). */
static void policy_reloaded(engine_t *e)
{
        char errstr[512];

        if (migrate(e->w, errstr, sizeof(errstr)))
                log_warn("worker", "SIGHUP: quotas not synced: %s", errstr);
}

static void reload_config(engine_t *e)
{
        char errstr[1024];
        struct wconf *nw;

        genq_g.sig_hup = 0;
        if (!e->reload)
                return;
        nw = e->reload(e->reload_opaque, errstr, sizeof(errstr));
        if (nw && !reload_compatible(e->w, nw, errstr, sizeof(errstr))) {
                wconf_clear(nw);
                free(nw);
                nw = NULL;
                log_err("worker", "SIGHUP: configuration not reloaded: %s "
                                  "(restart the worker for that)",
                        errstr);
                return;
        }
        if (!nw) {
                log_err("worker", "SIGHUP: configuration not reloaded: %s",
                        errstr);
                return;
        }
        if (httploop_set_media_allow(e->hl, nw->media_allow_private, errstr,
                                     sizeof(errstr))) {
                log_err("worker", "SIGHUP: %s", errstr);
                wconf_clear(nw);
                free(nw);
                return;
        }
        /* Jobs in flight keep pointers into the old one (names, prices,
         * key ids): it lives on until the engine goes. */
        e->old_w = xrealloc(e->old_w, (e->n_old_w + 1) * sizeof(*e->old_w));
        e->old_w[e->n_old_w++] = e->w_owned ? e->w : NULL;
        e->w = nw;
        e->w_owned = 1;
        e->bo = (struct backoff_cfg){nw->backoff_base_ms, nw->backoff_cap_ms,
                                     nw->retry_hint_max_ms};
        policy_reloaded(e);
        pstate_reconfigure(e->pol, nw);
        log_info("worker", "SIGHUP: configuration reloaded (%zu provider(s), "
                           "%zu route(s)); start-up settings (brokers, DSN, "
                           "lease, group, callbacks) keep their values",
                 nw->n_providers, nw->n_routes);
}

void engine_set_reload(engine_t *e, engine_reload_cb *cb, void *opaque)
{
        e->reload = cb;
        e->reload_opaque = opaque;
}

static void check_signals(engine_t *e)
{
        if (genq_g.sig_hup)
                reload_config(e);
        if (genq_g.sig_term == 0 || (e->draining && genq_g.sig_term < 2))
                return;
        if (!e->draining) {
                e->draining = 1;
                e->drain_deadline_us = e->now_us + e->w->grace_s * 1000000;
                kio_set_paused(e->kio, 1);
                log_info("worker", "draining: %zu job(s) in flight, up to "
                                   "%lld s",
                         e->n_jobs, (long long)e->w->grace_s);
        } else {
                log_warn("worker", "second signal: stopping now");
                e->drain_deadline_us = e->now_us;
        }
}

/* @returns 1 when the drain is complete. */
static int drained(engine_t *e)
{
        if (!e->draining)
                return 0;
        if (e->n_jobs == 0 && e->n_dlq == 0 && hooks_busy(e->hooks) == 0 &&
            pgsink_pending(e->ps) == 0) {
                if (hooks_waiting(e->hooks))
                        log_warn("hooks", "%zu completion hook(s) waiting for "
                                          "a retry are dropped",
                                 hooks_waiting(e->hooks));
                return 1;
        }
        if (e->now_us < e->drain_deadline_us)
                return 0;
        if (!e->released)
                release_leases(e);
        /* Only Postgres writes are still awaited, and not forever. */
        return e->now_us >= e->drain_deadline_us + SHUTDOWN_PG_WAIT_US ||
               pgsink_pending(e->ps) == 0;
}

int engine_run(engine_t *e)
{
        struct curl_waitfd fds[2] = {
                {.fd = kio_fd(e->kio), .events = CURL_WAIT_POLLIN},
                {.fd = pgsink_fd(e->ps), .events = CURL_WAIT_POLLIN},
        };

        log_info("worker", "%s running: %zu provider(s), %zu route(s), "
                           "max %lld jobs in flight",
                 e->w->worker_id, e->w->n_providers, e->w->n_routes,
                 (long long)e->w->max_inflight);
        for (;;) {
                e->now_us = mono_us();
                check_signals(e);
                if (drained(e))
                        break;
                consume(e);
                drain_pg(e);
                fire_retries(e);
                periodic(e);
                kio_serve(e->kio);
                if (httploop_run(e->hl, wait_ms(e), fds, 2))
                        return 1;
        }
        log_info("worker", "stopped: ok=%llu failed=%llu dlq=%llu",
                 (unsigned long long)e->n_ok, (unsigned long long)e->n_failed,
                 (unsigned long long)e->n_dlq_total);
        return 0;
}

/* ---- construction ------------------------------------------------------- */

/* The configured free quotas, so reports can set use against them (the
 * policy counts the use).  Limits follow the configuration; use is kept. */
static int sync_quotas(PGconn *conn, const struct wconf *w, char *errstr,
                       size_t errstr_size)
{
        static const char *sql =
                "INSERT INTO provider_quota (provider, unit, period, "
                "time_zone, quota_limit) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (provider, key_id, unit) DO UPDATE SET "
                "period = EXCLUDED.period, time_zone = EXCLUDED.time_zone, "
                "quota_limit = EXCLUDED.quota_limit, updated_at = now()";

        for (size_t i = 0; i < w->n_providers; i++) {
                const struct wprovider *p = &w->providers[i];
                const char *v[5] = {p->name, p->quota_unit, p->quota_period,
                                    p->quota_tz, p->quota_limit};
                PGresult *r;

                if (!p->quota_unit || p->retired)
                        continue;
                r = PQexecParams(conn, sql, 5, NULL, v, NULL, NULL, 0);
                if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                        snprintf(errstr, errstr_size, "provider_quota: %s",
                                 PQresultErrorMessage(r));
                        PQclear(r);
                        return -1;
                }
                PQclear(r);
        }
        return 0;
}

static int migrate(const struct wconf *w, char *errstr, size_t errstr_size)
{
        PGconn *conn = pgutil_connect(w->g.pg_dsn, "genq-worker-migrate",
                                      errstr, errstr_size);
        int applied = 0, rc;

        if (!conn)
                return -1;
        rc = schema_migrate(conn, &applied, errstr, errstr_size);
        if (rc == 0)
                rc = sync_quotas(conn, w, errstr, errstr_size);
        PQfinish(conn);
        return rc;
}

engine_t *engine_new(struct wconf *w, conf_t *c, char *errstr,
                     size_t errstr_size)
{
        engine_t *e = xcalloc(1, sizeof(*e));

        e->w = w;
        e->tab_size = 1024;
        e->tab = xcalloc(e->tab_size, sizeof(*e->tab));
        e->rnd = (uint32_t)mono_us() | 1u;
        e->bo = (struct backoff_cfg){w->backoff_base_ms, w->backoff_cap_ms,
                                     w->retry_hint_max_ms};
        e->pol = pstate_new(w);
        e->rng = (uint64_t)mono_us() ^ (uint64_t)getpid() << 32;
        e->ot = offtrack_new();
        if (migrate(w, errstr, errstr_size))
                goto err_destroy;
        e->ps = pgsink_new(w->g.pg_dsn, w->worker_id, (int)w->lease_s,
                           (int)w->pg_batch, (int)w->pg_batch_ms, errstr,
                           errstr_size);
        if (!e->ps)
                goto err_destroy;
        e->hl = httploop_new((long)w->http_max_conns, errstr, errstr_size);
        if (!e->hl || httploop_set_media_allow(e->hl, w->media_allow_private,
                                               errstr, errstr_size))
                goto err_destroy;
        e->hooks = hooks_new(&(struct hooks_cfg){w->hook_secret,
                                                 (int)w->hook_max_tries,
                                                 (long)w->hook_timeout_ms},
                             e->hl, e->ps);
        if (*w->cb_listen) {
                e->cr = cbrecv_new(w->cb_listen, w->g.pg_dsn, w->cb_secret,
                                   errstr, errstr_size);
                if (!e->cr)
                        goto err_destroy;
        }
        if (*w->artifact_dir && mkdir(w->artifact_dir, 0755) &&
            errno != EEXIST) {
                snprintf(errstr, errstr_size, "worker.artifact_dir %s: %s",
                         w->artifact_dir, strerror(errno));
                goto err_destroy;
        }
        e->kio = kio_new(w, c, on_revoke, e, errstr, errstr_size);
        if (!e->kio)
                goto err_destroy;
        return e;
err_destroy:
        engine_destroy(e);
        return NULL;
}

static void destroy_jobs(engine_t *e)
{
        for (size_t i = 0; i < e->tab_size; i++) {
                struct job *j = e->tab[i], *next;

                for (; j; j = next) {
                        next = j->hnext;
                        job_destroy(j);
                }
        }
        free(e->tab);
        free(e->heap);
}

void engine_destroy(engine_t *e)
{
        if (!e)
                return;
        /* Order matters: the consumer's close may call on_revoke (needs the
         * table); pgsink flushes queued writes before the jobs go; curl
         * transfers die before the jobs they point to. */
        cbrecv_destroy(e->cr);
        kio_destroy(e->kio);
        httploop_destroy(e->hl);
        hooks_destroy(e->hooks);
        pgsink_destroy(e->ps);
        destroy_jobs(e);
        offtrack_destroy(e->ot);
        for (size_t i = 0; i < e->n_budgeted; i++)
                free(e->budgeted[i]);
        free(e->budgeted);
        pstate_destroy(e->pol);
        for (size_t i = 0; i < e->n_old_w; i++)
                if (e->old_w[i]) {
                        wconf_clear(e->old_w[i]);
                        free(e->old_w[i]);
                }
        free(e->old_w);
        if (e->w_owned) {
                wconf_clear(e->w);
                free(e->w);
        }
        free(e);
}
