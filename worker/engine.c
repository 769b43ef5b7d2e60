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
 */
#include "engine.h"

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

#define MAX_CHAIN 16
#define MAX_ATTEMPTS 32
#define LOOP_MAX_WAIT_MS 100
#define SWEEP_LIMIT 100
#define SHUTDOWN_PG_WAIT_US (15 * 1000000LL)

enum job_state {
        JOB_ACCEPTING,
        JOB_INFLIGHT,
        JOB_RETRY_WAIT,
        JOB_RESERVING,
        JOB_ADMITTING,
        JOB_LOOKUP,     /* CACHE_GET op in pgsink: the response cache */
        JOB_RECORDING,
        JOB_FINISHING,
        JOB_DLQ,
};

/** What an INFLIGHT job's HTTP request is, or what a waiting job does
 *  when due. */
enum job_step {
        STEP_CALL,   /**< call (or async submit) the current provider */
        STEP_FETCH,  /**< fetch the job's input media */
        STEP_POLL,   /**< poll the current provider's task */
        STEP_MEDIA,  /**< download result media to the artifact store */
        STEP_CANCEL, /**< ask the provider to cancel the task (cancel) */
};

#define FETCH_TRIES 3
#define POLL_ERRORS_MAX 10

struct attempt {
        const char *provider;  /**< borrowed from wconf */
        const char *key_id;    /**< borrowed from wconf */
        char *model;
        long http_status;
        enum outcome outcome;
        char *error;
        int64_t latency_ms;
        int64_t started_ms;    /**< wall clock, for the attempts row */
};

struct job {
        engine_t *eng;          /**< back pointer for callbacks */
        enum job_state state;
        Genq__V1__Job *pb;      /**< owned; NULL for undecodable DLQ msgs */
        const char *id;         /**< pb->job_id */
        int dup;                /**< another job object holds this id */
        int has_origin;         /**< came from Kafka, offset tracked */
        char *topic;
        int32_t partition;
        int64_t offset;
        uint8_t *raw;           /**< DLQ path: the message's value */
        size_t raw_len;
        char *key;              /**< DLQ path: the message's key */
        size_t key_len;
        char *dlq_code, *dlq_reason;

        size_t chain[MAX_CHAIN];/**< provider indexes, in order */
        int64_t weights[MAX_CHAIN]; /**< the route's weight of each */
        size_t n_chain, cur;
        int tries_here;         /**< retry_later tries on chain[cur] */
        struct attempt att[MAX_ATTEMPTS];
        size_t n_att;
        int64_t call_start_us;
        int64_t deadline_us;    /**< monotonic, 0 = none */
        int64_t due_us;         /**< RETRY_WAIT: when to try again */
        size_t heap_idx;
        enum job_step step;     /**< INFLIGHT: what; RETRY_WAIT: next */
        /* input media (stt uploads), fetched once per job */
        uint8_t *input;
        size_t input_len;
        char *input_ctype;
        int fetch_tries;
        /* the current provider's async task */
        char *task_id;
        int key_idx;            /**< key index the call used */
        int polls, poll_errors;
        int64_t poll_ms;        /**< next poll interval */
        int64_t task_deadline_us;
        int cancel;             /**< a cancel was requested: stop at the
                                     next step, finish 'cancelled' */
        /* the shared limits (schema 0007) and the breaker */
        int admitted;           /**< holds a grant: release it when done */
        int admit_key;          /**< key the grant is for */
        size_t admit_pidx;      /**< provider the grant is for */
        unsigned n_admits;      /**< makes each holder unique */
        char holder[200];       /**< "worker/job/n" */
        int64_t admit_tokens;   /**< tokens estimated at admission */
        double admit_units;     /**< free quota units taken */
        int64_t admit_waited_ms;/**< waited for this provider's limits */
        double refill;          /**< free quota units asked beyond this
                                     call's own (a chunk for the worker) */
        int exact_admit;        /**< the chunk was refused: ask for just
                                     this call's units */
        int pooled;             /**< this call's quota came from the
                                     worker's chunk */
        int is_refill;          /**< this admission asks for the chunk */
        int pool_waiting;       /**< its units are in the chunk's demand */
        int probe;              /**< this call is the circuit's probe */
        const struct wroute *route; /**< NULL: pinned providers */
        int free_wait;          /**< waiting for the current provider's
                                     free quota to reset */
        char cache_key[RCACHE_KEY_LEN + 1]; /**< "" = not cacheable */
        int cancel_sent;        /**< the provider's cancel call went out */
        int cancel_ok;          /**< ... and the provider accepted it */
        char cancel_note[200];  /**< what the provider said to it */
        char *cb_body;          /**< a provider callback waiting for the
                                     poll in flight (or the task record) */
        size_t cb_len;
        struct provider_result *res; /**< MEDIA: the result being kept */
        size_t dl_next;         /**< MEDIA: the URL being downloaded */
        int dl_tries, dl_fd;
        json_t *artifacts;      /**< MEDIA: files stored so far */
        char *resume;           /**< re-driven with an unfinished task:
                                     "provider|key_id|polls|task_id" */
        const struct wprice *price; /**< the current attempt's price, or
                                         NULL (billing.unpriced = flag) */
        char fail_class[24];
        char fail_reason[512];
        struct job *hnext;      /**< job table chain */
};

struct engine_s {
        struct wconf *w;
        kio_t *kio;
        httploop_t *hl;
        pgsink_t *ps;
        offtrack_t *ot;
        cbrecv_t *cr;           /**< provider callbacks in, or NULL */
        engine_reload_cb *reload;
        void *reload_opaque;
        struct wconf **old_w;   /**< replaced by reloads; jobs may still
                                     borrow from them */
        size_t n_old_w;
        int w_owned;            /**< e->w came from a reload */
        hooks_t *hooks;         /**< completion hooks out */
        int64_t next_callbacks_us;
        pstate_t *pol;          /**< breakers, latency, keys, overrides */
        uint64_t rng;           /**< route orders (policy_rand) */
        int64_t next_policy_us;
        struct backoff_cfg bo;

        struct job **tab;       /**< job table, by id */
        size_t tab_size, n_jobs;
        struct job **heap;      /**< RETRY_WAIT jobs by due_us */
        size_t heap_n, heap_cap;
        size_t n_dlq;           /**< jobs in the DLQ path */

        int64_t now_us;
        int64_t next_renew_us, next_sweep_us, next_stats_us;
        int64_t next_cancel_us, next_budgets_us;
        char **budgeted;        /**< sorted ids of tenants with a budget */
        size_t n_budgeted;
        int budgets_known;      /**< until the first refresh: reserve for
                                     everyone */
        int draining;
        int64_t drain_deadline_us;
        int released;
        uint32_t rnd;

        /* counters for the stats line */
        uint64_t n_in, n_ok, n_failed, n_dlq_total, n_skipped, n_redriven;
        uint64_t last_ok;
};

/* ---- time --------------------------------------------------------------- */

static int64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t rnd32(engine_t *e)
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

static struct job *tab_find(engine_t *e, const char *id)
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
static void heap_remove(engine_t *e, struct job *j)
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
        left_ms = j->pb->deadline_ms - wall_ms();
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
        if (tab_find(e, j->id))
                j->dup = 1;
        else
                tab_add(e, j);
        submit_accept(e, j, m->payload, m->len);
        rd_kafka_message_destroy(m);
}

/* ---- provider chain ----------------------------------------------------- */

static void fail_job(engine_t *e, struct job *j, const char *cls,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void finish_job(engine_t *e, struct job *j, int ok,
                       const struct provider_result *res);

static int provider_usable(const struct wprovider *p, Genq__V1__Kind kind)
{
        return p->enabled && !p->retired && p->ops->kind == kind;
}

static int64_t prompt_bytes_tokens(const Genq__V1__Job *pb);

/* Tokens a chat job needs of a context window: its prompt (4 bytes a
 * token, as billing estimates) and its max_tokens. */
static int64_t context_needed(const Genq__V1__Job *pb)
{
        if (pb->payload_case != GENQ__V1__JOB__PAYLOAD_CHAT)
                return 0;
        return prompt_bytes_tokens(pb) +
               (pb->chat->max_tokens > 0 ? pb->chat->max_tokens : 0);
}

/* @returns 1 added, 0 skipped (disabled, another kind, too small a
 * context window), -1 no such provider or the chain is full. */
static int add_to_chain(engine_t *e, struct job *j, const char *name,
                        int64_t min_context)
{
        struct wprovider *p = wconf_provider(e->w, name);
        int64_t need = context_needed(j->pb);

        if (!p || j->n_chain == MAX_CHAIN)
                return -1;
        if (!provider_usable(p, j->pb->kind))
                return 0;
        /* Conditions: the route's minimum window (unknown windows do not
         * qualify), and the prompt itself must fit where it is known. */
        if (min_context > 0 && p->context_window < min_context)
                return 0;
        if (p->context_window > 0 && need > p->context_window)
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
static int build_chain(engine_t *e, struct job *j)
{
        const char *kind = codec_kind_name(j->pb->kind);
        const struct wroute *r;

        if (j->pb->n_providers > 0) {
                for (size_t i = 0; i < j->pb->n_providers; i++)
                        if (add_to_chain(e, j, j->pb->providers[i], 0) < 0) {
                                fail_job(e, j, "fatal_job",
                                         "pinned provider \"%s\" is not "
                                         "configured",
                                         j->pb->providers[i]);
                                return -1;
                        }
        } else {
                r = wconf_route(e->w, kind, j->pb->route);
                if (!r || (*j->pb->route && strcmp(r->name, j->pb->route))) {
                        fail_job(e, j, "fatal_job",
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
                order_chain(e, j, policy_strategy_parse(r->strategy) < 0
                                          ? POLICY_PRIORITY
                                          : policy_strategy_parse(r->strategy));
        }
        if (j->n_chain == 0) {
                fail_job(e, j, "fatal_job",
                         "no enabled provider serves this %s job%s", kind,
                         context_needed(j->pb) > 0
                                 ? " with a context window that fits it"
                                 : "");
                return -1;
        }
        return 0;
}

static struct wprovider *cur_provider(engine_t *e, struct job *j)
{
        return &e->w->providers[j->chain[j->cur]];
}

static struct attempt *add_attempt(struct job *j, const struct wprovider *p,
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
        a->started_ms = wall_ms();
        return a;
}

static void on_http_done(void *opaque, const struct provider_resp *resp);

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
static const char *job_model(const Genq__V1__Job *pb)
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

static int is_stt(const Genq__V1__Job *pb)
{
        return pb->payload_case == GENQ__V1__JOB__PAYLOAD_STT;
}

/* Seconds of video asked for: the storyboard's scenes, else duration_s,
 * else the common 10 s default. */
static double video_seconds(const Genq__V1__Job *pb)
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

static size_t utf8_chars(const char *s)
{
        size_t n = 0;

        for (; s && *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

static void start_fetch(engine_t *e, struct job *j);
static void schedule_retry(engine_t *e, struct job *j, int64_t delay_ms);
static void on_provider_success(engine_t *e, struct job *j,
                                struct provider_result *res);
static void finish_cancelled(engine_t *e, struct job *j);
static char *price_json(const struct wprovider *p, const struct wprice *w,
                        int estimated);

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
                const char *url = is_stt(j->pb) ? j->pb->stt->audio_url : "";

                in.filename = strrchr(url, '/') ? strrchr(url, '/') + 1
                                                : "input";
        }
        rc = p->ops->build(&p->pcfg, p->keys[key].secret, j->pb,
                           j->input ? &in : NULL, &req, errstr,
                           errstr_size) ||
             ask_callback(e, j, p, &req, errstr, errstr_size) ||
             httploop_send(e->hl, &req, (long)p->timeout_ms,
                           p->pcfg.max_body_bytes, on_http_done, j, errstr,
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

static double estimate_units(const engine_t *e, const Genq__V1__Job *pb);

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
        return estimate_units(e, j->pb);
}

/* Ask Postgres whether this call may go out under the provider's shared
 * limits (every worker asks the same rows: see schema/0007_policy.sql).
 * The job waits in JOB_ADMITTING; on_admitted() carries on. */
static void start_admission(engine_t *e, struct job *j, int key)
{
        struct wprovider *p = cur_provider(e, j);
        struct pgop *op = pgop_new(PGOP_ADMIT);
        int64_t lease = (p->ops->flags & PROVIDER_F_ASYNC)
                                ? p->task_timeout_s + 60
                                : p->timeout_ms / 1000 + 30;

        snprintf(j->holder, sizeof(j->holder), "%s/%s/%u", e->w->worker_id,
                 j->id, ++j->n_admits);
        j->admit_key = key;
        j->admit_pidx = j->chain[j->cur];
        j->admit_tokens = context_needed(j->pb);
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
static void release_admission(engine_t *e, struct job *j,
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
        struct wprovider *p = cur_provider(e, j);
        struct attempt *a = add_attempt(j, p, key);

        a->outcome = OUTCOME_FALLBACK_NEXT;
        a->error = xstrdup(why);
        snprintf(j->fail_reason, sizeof(j->fail_reason), "%s: %s", p->name,
                 why);
        release_admission(e, j, -1);
        next_provider(j);
}

/* Call the current provider, moving down the chain past any that cannot
 * be called now (operator, circuit, parked, keys, price, limits): each
 * such switch is an attempt row saying why.  May finish the job. */
static void start_attempt(engine_t *e, struct job *j)
{
        char errstr[256];
        int64_t now_ms = e->now_us / 1000;

        while (j->cur < j->n_chain) {
                size_t pidx = j->chain[j->cur];
                struct wprovider *p = cur_provider(e, j);
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
                j->price = wconf_price(p, job_model(j->pb));
                if (!j->price && !strcmp(e->w->unpriced, "refuse")) {
                        snprintf(errstr, sizeof(errstr),
                                 "no price for model %s (billing.unpriced = "
                                 "refuse)",
                                 job_model(j->pb));
                        skip_provider(e, j, key, errstr);
                        continue;
                }
                if ((p->ops->flags & PROVIDER_F_NEEDS_INPUT) && !j->input) {
                        start_fetch(e, j); /* comes back here when done */
                        return;
                }
                j->pooled = 0;
                if (!j->admitted && needs_admission(p) && j->pool_waiting &&
                    !pstate_pool_refilling(e->pol, pidx, -1))
                        j->pool_waiting = 0; /* the chunk came (or not) */
                if (!j->admitted && needs_admission(p)) {
                        double u = quota_units(e, j, p, context_needed(j->pb));

                        if (quota_only(p) &&
                            pstate_pool_take(e->pol, pidx, u, now_ms)) {
                                j->pooled = 1;
                                j->admit_tokens = context_needed(j->pb);
                        } else if (quota_only(p) && !j->exact_admit &&
                                   pstate_pool_refilling(e->pol, pidx, -1)) {
                                /* A chunk is on its way: wait for it (its
                                 * size counts this call once). */
                                if (!j->pool_waiting)
                                        pstate_pool_demand(e->pol, pidx, u, 0);
                                j->pool_waiting = 1;
                                j->step = STEP_CALL;
                                schedule_retry(e, j, POOL_RECHECK_MS);
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
                        a = add_attempt(j, p, key);
                        a->model = xstrdup(job_model(j->pb) ? job_model(j->pb)
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
        fail_job(e, j, "fallback_next", "every provider failed; last: %s",
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
                         cur_provider(e, j)->name, j->route->name,
                         j->pb->priority);
        j->free_wait = 1;
        /* Ask Postgres again every few seconds: an operator's reset or a
         * moved policy clock counts too. */
        j->step = STEP_CALL;
        schedule_retry(e, j, step);
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
        struct wprovider *p = cur_provider(e, j);
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
                start_attempt(e, j);
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
                start_attempt(e, j);
                return;
        }
        step = wait_ms < 0 || wait_ms > 1000 ? 1000 : wait_ms;
        step += step / 10 * rnd32(e) / UINT32_MAX;
        if ((wait_ms <= e->w->admit_wait_ms || last) &&
            j->admit_waited_ms + step <= e->w->admit_wait_max_ms &&
            backoff_fit_deadline(step, e->now_us, j->deadline_us) >= 0) {
                /* Ask again soon (at most a second away), so a freed slot
                 * or a moved window is noticed quickly. */
                j->admit_waited_ms += step;
                j->step = STEP_CALL;
                schedule_retry(e, j, step);
                return;
        }
        snprintf(why, sizeof(why), "%.16s limit of %.64s reached for all "
                                   "workers (frees in %lld ms; waited %lld "
                                   "ms)",
                 reason, p->name, (long long)wait_ms,
                 (long long)j->admit_waited_ms);
        skip_provider(e, j, j->admit_key, why);
        start_attempt(e, j);
}

static void finish_cancelled(engine_t *e, struct job *j);

static void on_admitted(engine_t *e, struct pgop *op)
{
        struct job *j = op->opaque;

        j->admitted = op->rc == 0 && op->hit;
        if (j->admitted)
                j->free_wait = 0;
        if (j->is_refill)
                pstate_pool_refilling(e->pol, j->admit_pidx, 0);
        j->is_refill = 0;
        if (j->cancel) {
                finish_cancelled(e, j);
                return;
        }
        if (op->rc) {
                /* Postgres trouble: the limits cannot be checked, so the
                 * call waits (never sent unchecked). */
                log_warn("policy", "job %s: admission at %s failed: %s", j->id,
                         op->provider, op->errstr);
                j->step = STEP_CALL;
                schedule_retry(e, j, 1000);
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
        start_attempt(e, j);
}

/* ---- input media (stt uploads) ------------------------------------------ */

static void on_fetch_done(engine_t *e, struct job *j,
                          const struct provider_resp *resp);

static void start_fetch(engine_t *e, struct job *j)
{
        /* The URL comes from the job: same address policy as media. */
        struct provider_req req = {.method = "GET", .media = 1};
        char errstr[256];

        snprintf(req.url, sizeof(req.url), "%s", j->pb->stt->audio_url);
        if (httploop_send(e->hl, &req, (long)e->w->input_timeout_ms,
                          (size_t)e->w->max_input_bytes, on_http_done, j,
                          errstr, sizeof(errstr))) {
                fail_job(e, j, "fatal_job", "input: %s", errstr);
                return;
        }
        j->state = JOB_INFLIGHT;
        j->step = STEP_FETCH;
}

/* 2xx: keep the bytes for every provider of the chain.  4xx and an
 * oversized body: the job's input is bad (fatal_job, per the reference's
 * "unreachable input URL").  Transport errors and 5xx: a few tries. */
static void on_fetch_done(engine_t *e, struct job *j,
                          const struct provider_resp *resp)
{
        int64_t delay;

        if (resp->status >= 200 && resp->status < 300 && !resp->truncated) {
                j->input = xmalloc(resp->body_len ? resp->body_len : 1);
                memcpy(j->input, resp->body, resp->body_len);
                j->input_len = resp->body_len;
                j->input_ctype = xstrdup(resp->content_type);
                start_attempt(e, j);
                return;
        }
        if (resp->truncated || (resp->status >= 400 && resp->status < 500)) {
                fail_job(e, j, "fatal_job", "input %s: %s",
                         j->pb->stt->audio_url,
                         resp->truncated ? "larger than worker.max_input_bytes"
                                         : "refused by its server");
                return;
        }
        delay = backoff_delay_ms(&e->bo, ++j->fetch_tries, -1, rnd32(e));
        if (j->fetch_tries >= FETCH_TRIES ||
            backoff_fit_deadline(delay, e->now_us, j->deadline_us) < 0) {
                fail_job(e, j, "fatal_job", "input %s unreachable: %s",
                         j->pb->stt->audio_url,
                         resp->transport_err ? resp->transport_msg
                                             : "server error");
                return;
        }
        j->step = STEP_FETCH;
        schedule_retry(e, j, delay);
}

/* Wait \p delay_ms, then do j->step (a call, a fetch or a poll). */
static void schedule_retry(engine_t *e, struct job *j, int64_t delay_ms)
{
        j->state = JOB_RETRY_WAIT;
        j->due_us = e->now_us + delay_ms * 1000;
        heap_push(e, j);
}

/* retry_later: same provider after backoff, if tries and deadline allow.
 * @returns 1 if a retry was scheduled. */
static int try_retry(engine_t *e, struct job *j, const struct provider_err *pe)
{
        struct wprovider *p = cur_provider(e, j);
        int64_t hint = pe->retry_after_ms;
        int64_t delay;

        if (j->tries_here >= p->max_retries)
                return 0;
        delay = backoff_delay_ms(&e->bo, j->tries_here + 1, hint, rnd32(e));
        if (delay < 0)
                return 0; /* a long wait means: go elsewhere now */
        delay = backoff_fit_deadline(delay, e->now_us, j->deadline_us);
        if (delay < 0)
                return 0;
        j->tries_here++;
        j->step = STEP_CALL;
        schedule_retry(e, j, delay);
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

static void on_failure(engine_t *e, struct job *j, const struct provider_err *pe)
{
        struct wprovider *p = cur_provider(e, j);

        snprintf(j->fail_reason, sizeof(j->fail_reason), "%s: %s", p->name,
                 pe->errstr);
        switch (pe->outcome) {
        case OUTCOME_FATAL_JOB:
                fail_job(e, j, "fatal_job", "%s", j->fail_reason);
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
        start_attempt(e, j);
}

/* ---- async tasks ------------------------------------------------------- */

static void submit_task_op(engine_t *e, struct job *j, enum pgop_type type,
                           const char *state, const char *error)
{
        struct wprovider *p = cur_provider(e, j);
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
                op->price_json = price_json(p, j->price, 1);
                op->hold_units = video_seconds(j->pb);
                op->model = xstrdup(j->att[j->n_att - 1].model);
                op->unit = p->price_unit;
        }
        pgsink_submit(e->ps, op);
}

/* The provider accepted the task: make it durable before polling, so a
 * crash from here on never submits (and pays for) it twice. */
static void on_task_accepted(engine_t *e, struct job *j,
                             struct provider_result *res)
{
        struct wprovider *p = cur_provider(e, j);

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

static void on_task_recorded(engine_t *e, struct job *j)
{
        if (j->cancel) {
                finish_cancelled(e, j);
                return;
        }
        j->step = STEP_POLL;
        if (j->cb_body) { /* the callback beat the task record */
                apply_callback(e, j);
                return;
        }
        schedule_retry(e, j, j->poll_ms);
}

typedef int(task_build_fn)(const struct provider_cfg *p, const char *key,
                           const char *task_id, struct provider_req *req,
                           char *errstr, size_t errstr_size);

/* Send a request about the job's task (poll, cancel).  @returns 0 or -1
 * with errstr. */
static int task_request(engine_t *e, struct job *j, task_build_fn *build,
                        char *errstr, size_t errstr_size)
{
        struct wprovider *p = cur_provider(e, j);
        struct provider_req req = {0};
        int rc;

        rc = build(&p->pcfg, p->keys[j->key_idx].secret, j->task_id, &req,
                   errstr, errstr_size) ||
             httploop_send(e->hl, &req, (long)p->timeout_ms,
                           p->pcfg.max_body_bytes, on_http_done, j, errstr,
                           errstr_size);
        provider_req_clear(&req);
        return rc ? -1 : 0;
}

static void start_poll(engine_t *e, struct job *j)
{
        struct wprovider *p = cur_provider(e, j);
        char errstr[256];

        if (task_request(e, j, p->ops->build_poll, errstr, sizeof(errstr))) {
                struct provider_err pe = {.outcome = OUTCOME_FALLBACK_NEXT,
                                          .retry_after_ms = -1};

                snprintf(pe.errstr, sizeof(pe.errstr), "poll: %.200s", errstr);
                submit_task_op(e, j, PGOP_TASK_END, "failed", pe.errstr);
                on_failure(e, j, &pe);
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

        release_admission(e, j, -1);
        a->outcome = pe->outcome;
        free(a->error);
        a->error = xstrdup(pe->errstr);
        submit_task_op(e, j, PGOP_TASK_END, state, pe->errstr);
        on_failure(e, j, pe);
}

static void schedule_poll(engine_t *e, struct job *j, int64_t hint_ms)
{
        struct wprovider *p = cur_provider(e, j);
        int64_t next = hint_ms >= 0 ? hint_ms : j->poll_ms;

        /* Grow the interval by half each time, with up to 10% jitter so
         * tasks submitted together spread out. */
        j->poll_ms = j->poll_ms * 3 / 2;
        if (j->poll_ms > p->poll_max_ms)
                j->poll_ms = p->poll_max_ms;
        next += next / 10 * rnd32(e) / UINT32_MAX;
        j->step = STEP_POLL;
        schedule_retry(e, j, next);
}

static void on_poll_done(engine_t *e, struct job *j,
                         const struct provider_resp *resp)
{
        struct wprovider *p = cur_provider(e, j);
        struct provider_result res = {.input_tokens = -1, .output_tokens = -1,
                                      .units = -1};
        struct provider_err pe = {.retry_after_ms = -1};
        enum outcome o = p->ops->parse_poll(&p->pcfg, j->pb, resp, &res, &pe);

        j->polls++;
        pe.outcome = o;
        if (o == OUTCOME_SUCCESS) {
                release_admission(e, j, -1);
                on_provider_success(e, j, &res);
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
        struct wprovider *p = cur_provider(e, j);
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
                on_poll_done(e, j, &resp);
        else
                start_poll(e, j);
        free(body);
}

/* Is \p body about the task \p j is polling now?  The URL token proved
 * the job and provider; the task id (quoted, as every provider's JSON
 * carries it) rules out a late callback of an earlier task. */
static int callback_matches(engine_t *e, struct job *j,
                            const struct pgop_row *r, const char *body)
{
        char quoted[300];

        if (!j->task_id || !r->task || strcmp(cur_provider(e, j)->name,
                                               r->task))
                return 0;
        snprintf(quoted, sizeof(quoted), "\"%s\"", j->task_id);
        return strstr(body, quoted) != NULL;
}

static void take_callback(engine_t *e, struct pgop_row *r)
{
        struct job *j = tab_find(e, r->job_id);
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
                heap_remove(e, j);
                apply_callback(e, j);
        }
        /* else: applied when the poll in flight or the record is done */
}

static void on_callbacks(engine_t *e, struct pgop *op)
{
        if (op->rc) {
                log_warn("job", "claiming callbacks: %s", op->errstr);
                return;
        }
        for (size_t i = 0; i < op->n_rows; i++)
                take_callback(e, &op->rows[i]);
}

/* ---- result media ------------------------------------------------------- */

#define MEDIA_TRIES 3

static void start_media(engine_t *e, struct job *j);

/* The provider delivered.  Its result URLs expire, so their media is
 * downloaded into the artifact store before the job is finished. */
static void on_provider_success(engine_t *e, struct job *j,
                                struct provider_result *res)
{
        if (!*e->w->artifact_dir || res->n_urls == 0) {
                finish_job(e, j, 1, res);
                return;
        }
        j->res = xmalloc(sizeof(*j->res));
        *j->res = *res;
        memset(res, 0, sizeof(*res)); /* now owned by the job */
        provider_result_clear(res);
        j->dl_next = 0;
        j->dl_tries = 0;
        j->artifacts = json_array();
        start_media(e, j);
}

static void media_path(const engine_t *e, const struct job *j, int part,
                       const char *ext, char *out, size_t outsz)
{
        snprintf(out, outsz, "%s/%s-%zu%s%s", e->w->artifact_dir, j->id,
                 j->dl_next, ext, part ? ".part" : "");
}

/* ".mp4" from the URL's last path segment, if it is a plain extension. */
static void url_ext(const char *url, char out[12])
{
        const char *q = url + strcspn(url, "?#");
        const char *dot = NULL;

        for (const char *c = url; c < q; c++)
                if (*c == '/')
                        dot = NULL;
                else if (*c == '.')
                        dot = c;
        out[0] = '\0';
        if (!dot || q - dot > 8)
                return;
        for (const char *c = dot + 1; c < q; c++)
                if (!isalnum((unsigned char)*c))
                        return;
        snprintf(out, 12, "%.*s", (int)(q - dot), dot);
}

static void finish_media(engine_t *e, struct job *j)
{
        struct provider_result *res = j->res;

        j->res = NULL;
        finish_job(e, j, 1, res);
        provider_result_clear(res);
        free(res);
}

static void start_media(engine_t *e, struct job *j)
{
        struct provider_req req = {.method = "GET", .media = 1};
        char path[1200], errstr[256];

        if (j->dl_next >= j->res->n_urls ||
            j->dl_next >= (size_t)e->w->media_max_files) {
                finish_media(e, j);
                return;
        }
        media_path(e, j, 1, "", path, sizeof(path));
        j->dl_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        snprintf(req.url, sizeof(req.url), "%s", j->res->urls[j->dl_next]);
        req.sink_fd = j->dl_fd;
        if (j->dl_fd < 0 ||
            httploop_send(e->hl, &req, (long)e->w->media_timeout_ms,
                          (size_t)e->w->media_max_bytes, on_http_done, j,
                          errstr, sizeof(errstr))) {
                fail_job(e, j, "media", "result media: cannot store %s: %s",
                         path, j->dl_fd < 0 ? strerror(errno) : errstr);
                return;
        }
        j->state = JOB_INFLIGHT;
        j->step = STEP_MEDIA;
}

static void keep_artifact(engine_t *e, struct job *j,
                          const struct provider_resp *resp)
{
        char part[1200], path[1200], ext[12];

        url_ext(j->res->urls[j->dl_next], ext);
        media_path(e, j, 1, "", part, sizeof(part));
        media_path(e, j, 0, ext, path, sizeof(path));
        if (rename(part, path))
                log_warn("job", "job %s: rename %s: %s", j->id, part,
                         strerror(errno));
        json_array_append_new(
                j->artifacts,
                json_pack("{s:I, s:s, s:s, s:I, s:s, s:s?}", "n",
                          (json_int_t)j->dl_next, "url",
                          j->res->urls[j->dl_next], "path", path, "bytes",
                          (json_int_t)resp->body_len, "sha256", resp->sha256,
                          "content_type", resp->content_type));
}

/* 2xx: keep it and go on.  4xx or too big: the media is gone (an expired
 * URL) and the job fails -- a hold charged for it is refunded.  5xx and
 * transport errors: a few tries. */
static void on_media_done(engine_t *e, struct job *j,
                          const struct provider_resp *resp)
{
        char part[1200];
        int64_t delay;

        close(j->dl_fd);
        j->dl_fd = 0;
        if (resp->status >= 200 && resp->status < 300 && !resp->truncated &&
            !resp->transport_err) {
                keep_artifact(e, j, resp);
                j->dl_next++;
                j->dl_tries = 0;
                start_media(e, j);
                return;
        }
        media_path(e, j, 1, "", part, sizeof(part));
        unlink(part);
        if (resp->truncated || (resp->status >= 400 && resp->status < 500)) {
                fail_job(e, j, "media", "result media %s: %s",
                         j->res->urls[j->dl_next],
                         resp->truncated ? "larger than worker.media_max_bytes"
                                         : "refused or expired (4xx)");
                return;
        }
        delay = backoff_delay_ms(&e->bo, ++j->dl_tries, -1, rnd32(e));
        if (j->dl_tries >= MEDIA_TRIES) {
                fail_job(e, j, "media", "result media %s unreachable: %s",
                         j->res->urls[j->dl_next],
                         resp->transport_err ? resp->transport_msg
                                             : "server error");
                return;
        }
        j->step = STEP_MEDIA;
        schedule_retry(e, j, delay);
}

/* ---- HTTP completions --------------------------------------------------- */

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
        struct wprovider *p = cur_provider(e, j);
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
        fail_job(e, j, "unknown_submit", "%s: %s; failed for review (the "
                                         "provider may be generating it)",
                 p->name, why);
        return 1;
}

static void on_call_done(engine_t *e, struct job *j,
                         const struct provider_resp *resp)
{
        struct wprovider *p = cur_provider(e, j);
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
                release_admission(e, j,
                                  res.input_tokens >= 0 &&
                                                  res.output_tokens >= 0
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
                        on_task_accepted(e, j, &res);
                else
                        on_provider_success(e, j, &res);
                provider_result_clear(&res);
                return;
        }
        provider_result_clear(&res);
        pe.outcome = o;
        a->error = xstrdup(pe.errstr);
        log_dbg(LOG_DBG_JOB, "job", "job %s: %s -> %s: %s", j->id, p->name,
                outcome_name(o), pe.errstr);
        on_failure(e, j, &pe);
}

static int cancel_at_provider(engine_t *e, struct job *j);
static void note_cancel(engine_t *e, struct job *j,
                        const struct provider_resp *resp);

static void on_http_done(void *opaque, const struct provider_resp *resp)
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
                        note_cancel(e, j, resp);
                else if (j->step == STEP_POLL && cancel_at_provider(e, j))
                        return;
                if (j->step == STEP_MEDIA) {
                        char part[1200];

                        media_path(e, j, 1, "", part, sizeof(part));
                        unlink(part);
                }
                finish_cancelled(e, j);
                return;
        }
        switch (j->step) {
        case STEP_FETCH:
                on_fetch_done(e, j, resp);
                break;
        case STEP_POLL:
                on_poll_done(e, j, resp);
                break;
        case STEP_MEDIA:
                on_media_done(e, j, resp);
                break;
        default:
                on_call_done(e, j, resp);
                break;
        }
}

/* ---- finishing ---------------------------------------------------------- */

static char *attempts_json(const struct job *j)
{
        json_t *arr = json_array();
        char *s;

        for (size_t i = 0; i < j->n_att; i++) {
                const struct attempt *a = &j->att[i];
                json_t *o = json_pack(
                        "{s:I, s:s, s:s?, s:s?, s:o, s:s, s:s?, s:I, s:I}",
                        "no", (json_int_t)(i + 1), "provider", a->provider,
                        "key_id", a->key_id, "model", a->model, "status",
                        a->http_status ? json_integer(a->http_status)
                                       : json_null(),
                        "outcome", outcome_name(a->outcome), "error", a->error,
                        "latency_ms", (json_int_t)a->latency_ms, "started_ms",
                        (json_int_t)a->started_ms);

                json_array_append_new(arr, o);
        }
        s = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        return s;
}

/* The price used, stored with the charge.  Chat: per 1,000 tokens in
 * and out; other kinds: per natural unit.  The ledger statement computes
 * (in * input + out * output) / per + units * unit_price from it. */
static char *price_json(const struct wprovider *p, const struct wprice *w,
                        int estimated)
{
        int tokens = !strcmp(w->unit, "1k_tokens");
        json_t *o = json_pack("{s:s, s:s?, s:s, s:I, s:b}", "provider",
                              p->name, "model", w->model, "unit", w->unit,
                              "per", (json_int_t)(tokens ? 1000 : 1),
                              "estimated_usage", estimated);
        char *s;

        if (tokens) {
                json_object_set_new(o, "input_credits",
                                    json_string(w->in_credits));
                json_object_set_new(o, "output_credits",
                                    json_string(w->out_credits));
                json_object_set_new(o, "input_usd", json_string(w->in_usd));
                json_object_set_new(o, "output_usd",
                                    json_string(w->out_usd));
        } else {
                json_object_set_new(o, "unit_credits",
                                    json_string(w->credits));
                json_object_set_new(o, "unit_usd", json_string(w->usd));
        }
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

/* Tokens a provider did not report, estimated at 4 bytes a token, so a
 * chat job is never billed as zero for want of a usage object. */
static int64_t estimate_tokens(const char *s)
{
        return s ? (int64_t)((strlen(s) + 3) / 4) : 0;
}

static int64_t prompt_bytes_tokens(const Genq__V1__Job *pb)
{
        int64_t n = 0;

        if (pb->payload_case != GENQ__V1__JOB__PAYLOAD_CHAT)
                return 0;
        for (size_t i = 0; i < pb->chat->n_messages; i++)
                n += estimate_tokens(pb->chat->messages[i]->content);
        return n;
}

static char *urls_json(const struct provider_result *res)
{
        json_t *a = json_array();
        char *s;

        for (size_t i = 0; i < res->n_urls; i++)
                json_array_append_new(a, json_string(res->urls[i]));
        s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        return s;
}

/* Inline media is stored up to worker.max_inline_bytes; beyond, its size
 * is recorded with a note and the bytes are dropped (the job succeeded:
 * the provider made it, and was paid). */
static void fill_media(engine_t *e, struct pgop *op,
                       const struct provider_result *res)
{
        char note[160];

        op->content_type = xstrdup(res->content_type
                                           ? res->content_type
                                           : res->text ? "text/plain" : NULL);
        if (res->n_urls)
                op->urls_json = urls_json(res);
        op->provider_cost = xstrdup(res->provider_cost);
        if (!res->data)
                return;
        op->data_bytes = (int64_t)res->data_len;
        if (res->data_len > (size_t)e->w->max_inline_bytes) {
                snprintf(note, sizeof(note),
                         "inline media of %zu bytes not stored (limit "
                         "worker.max_inline_bytes = %lld)",
                         res->data_len, (long long)e->w->max_inline_bytes);
                op->note = xstrdup(note);
                return;
        }
        op->data = xmalloc(res->data_len ? res->data_len : 1);
        memcpy(op->data, res->data, res->data_len);
        op->data_len = res->data_len;
}

/* Chat bills tokens (estimated if unreported); other kinds bill their
 * natural units, and a job whose units are unknown is not billed at all
 * but marked, never billed as zero. */
static void fill_usage(struct job *j, struct pgop *op,
                       const struct wprovider *p,
                       const struct provider_result *res)
{
        int estimated = res->input_tokens < 0 || res->output_tokens < 0;

        if (!j->price) {
                /* billing.unpriced = flag: ran, recorded, never billed. */
                op->in_tokens = res->input_tokens;
                op->out_tokens = res->output_tokens;
                op->units = res->units;
                op->unit = strcmp(p->price_unit, "1k_tokens") ? p->price_unit
                                                              : NULL;
                op->billing_note = xstrdup("no price for the model used "
                                           "(billing.unpriced = flag); not "
                                           "billed");
                return;
        }
        if (!strcmp(p->price_unit, "1k_tokens")) {
                op->in_tokens = res->input_tokens >= 0
                                        ? res->input_tokens
                                        : prompt_bytes_tokens(j->pb);
                op->out_tokens = res->output_tokens >= 0
                                         ? res->output_tokens
                                         : estimate_tokens(res->text);
                op->price_json = price_json(p, j->price, estimated);
                return;
        }
        op->in_tokens = res->input_tokens;
        op->out_tokens = res->output_tokens;
        op->unit = p->price_unit;
        op->units = res->units;
        /* An stt provider that reports no duration: the seconds of the
         * audio we uploaded, when it is a WAV file we can read. */
        if (op->units < 0 && j->input && is_stt(j->pb))
                op->units = provider_openai_audio_wav_seconds(j->input,
                                                              j->input_len);
        if (op->units >= 0)
                op->price_json = price_json(p, j->price, 0);
        else
                op->billing_note = xstrdup("usage unknown: the provider "
                                           "reported no units; not billed");
}

static void fill_success(engine_t *e, struct job *j, struct pgop *op,
                         const struct wprovider *p,
                         const struct provider_result *res)
{
        op->provider = xstrdup(p->name);
        op->model = xstrdup(res->model ? res->model
                                       : j->att[j->n_att - 1].model);
        op->text = xstrdup(res->text);
        op->finish_reason = xstrdup(res->finish_reason);
        op->usage_json = xstrdup(res->usage_json);
        op->task_id = xstrdup(j->task_id);
        op->polls = j->polls;
        if (j->artifacts)
                op->artifacts_json = json_dumps(j->artifacts, JSON_COMPACT);
        fill_media(e, op, res);
        fill_usage(j, op, p, res);
}

static void cache_put(engine_t *e, const struct job *j,
                      const struct pgop *fin);

static void finish_job(engine_t *e, struct job *j, int ok,
                       const struct provider_result *res)
{
        struct pgop *op = pgop_new(PGOP_FINISH);

        release_admission(e, j, -1); /* whatever path ended it */
        op->opaque = j;
        op->job_id = xstrdup(j->id);
        op->state = xstrdup(ok ? "succeeded" : j->cancel ? "cancelled"
                                                         : "failed");
        op->n_attempts = (int32_t)j->n_att;
        op->attempts_json = attempts_json(j);
        if (ok) {
                fill_success(e, j, op, cur_provider(e, j), res);
                cache_put(e, j, op);
        } else {
                op->error_class = xstrdup(j->fail_class);
                op->error = xstrdup(j->fail_reason);
                if (j->cancel && j->task_id)
                        op->billing_note = xstrdup(
                                j->cancel_ok
                                        ? "cancelled while its provider task "
                                          "ran: any hold is refunded to the "
                                          "tenant; the task was cancelled at "
                                          "the provider, which bills at most "
                                          "what it ran"
                                        : "cancelled while its provider task "
                                          "ran: any hold is refunded to the "
                                          "tenant; the provider may still "
                                          "bill the task to us");
        }
        j->state = JOB_FINISHING;
        pgsink_submit(e->ps, op);
}

static void fail_job(engine_t *e, struct job *j, const char *cls,
                     const char *fmt, ...)
{
        char why[sizeof(j->fail_reason)];
        va_list ap;

        /* Format aside first: callers pass j->fail_reason as an argument. */
        snprintf(j->fail_class, sizeof(j->fail_class), "%s", cls);
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        memcpy(j->fail_reason, why, sizeof(why));
        log_dbg(LOG_DBG_JOB, "job", "job %s failed: %s", j->id,
                j->fail_reason);
        finish_job(e, j, 0, NULL);
}

/* ---- budgets ------------------------------------------------------------ */

/* Natural units a job will use, as far as can be known before it runs:
 * the most a budget must cover. */
static double estimate_units(const engine_t *e, const Genq__V1__Job *pb)
{
        switch (pb->payload_case) {
        case GENQ__V1__JOB__PAYLOAD_IMAGE:
                return pb->image->count > 0 ? pb->image->count : 1;
        case GENQ__V1__JOB__PAYLOAD_VIDEO:
                return video_seconds(pb);
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
                return estimate_units(e, pb) * atof(w->credits);
        in = (double)prompt_bytes_tokens(pb) + 4.0 * pb->chat->n_messages;
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
                const struct wprice *w = wconf_price(p, job_model(j->pb));

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
                fail_job(e, j, "budget", "the job may cost up to %.6f "
                                         "credits, over its budget of %.6f",
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

/* A re-driven job whose worker died after its provider accepted a task:
 * poll that task again, never submit a new one (the provider is already
 * generating it, and charging for it).  @returns 0, or -1 if the task's
 * provider is no longer on the job's chain (then it is submitted anew). */
static int resume_task(engine_t *e, struct job *j)
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
        p = cur_provider(e, j);
        j->key_idx = 0;
        for (size_t k = 0; key_id && k < p->n_keys; k++)
                if (!strcmp(p->keys[k].id, key_id))
                        j->key_idx = (int)k;
        j->task_id = xstrdup(task);
        j->polls = polls ? atoi(polls) : 0;
        j->poll_ms = p->poll_ms;
        j->task_deadline_us = e->now_us + p->task_timeout_s * 1000000;
        j->price = wconf_price(p, job_model(j->pb));
        a = add_attempt(j, p, j->key_idx);
        a->model = xstrdup(job_model(j->pb) ? job_model(j->pb) : p->model);
        a->outcome = OUTCOME_SUCCESS;
        a->error = xstrdup("task accepted by a worker that stopped; resumed");
        log_info("job", "job %s: resuming task %s at %s", j->id, j->task_id,
                 p->name);
        j->step = STEP_POLL;
        schedule_retry(e, j, 0);
        return 0;
}

static void on_reserved(engine_t *e, struct pgop *op)
{
        struct job *j = op->opaque;

        if (op->rc) {
                fail_job(e, j, "budget", "budget not checked: %s",
                         op->errstr);
                return;
        }
        if (op->cancelled || j->cancel) {
                finish_cancelled(e, j); /* before anything ran */
                return;
        }
        if (!op->hit) {
                fail_job(e, j, "budget", "refused, over the tenant's budget: "
                                         "%s",
                         op->errstr);
                return;
        }
        after_reserve(e, j);
}

static void after_reserve(engine_t *e, struct job *j)
{
        if (j->cancel) {
                finish_cancelled(e, j); /* before anything ran */
                return;
        }
        if (j->resume && resume_task(e, j) == 0)
                return;
        if (e->w->cache_enabled && rcache_key(j->pb, j->cache_key) == 0) {
                struct pgop *op = pgop_new(PGOP_CACHE_GET);

                op->opaque = j;
                op->holder = xstrdup(j->cache_key);
                j->state = JOB_LOOKUP;
                pgsink_submit(e->ps, op);
                return;
        }
        start_attempt(e, j);
}

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
                finish_cancelled(e, j);
                return;
        }
        if (op->rc)
                log_warn("job", "job %s: response cache lookup: %s", j->id,
                         op->errstr);
        if (op->rc == 0 && op->hit) {
                finish_cached(e, j, op);
                return;
        }
        start_attempt(e, j);
}

/* A cacheable job succeeded: keep its answer for the next identical one. */
static void cache_put(engine_t *e, const struct job *j,
                      const struct pgop *fin)
{
        struct pgop *op;

        if (!j->cache_key[0] || !fin->provider)
                return;
        op = pgop_new(PGOP_CACHE_PUT);
        op->holder = xstrdup(j->cache_key);
        op->provider = xstrdup(fin->provider);
        op->model = xstrdup(fin->model);
        op->text = xstrdup(fin->text);
        op->finish_reason = xstrdup(fin->finish_reason);
        op->usage_json = xstrdup(fin->usage_json);
        op->in_tokens = fin->in_tokens;
        op->out_tokens = fin->out_tokens;
        op->lease_s = (int32_t)e->w->cache_ttl_s;
        pgsink_submit(e->ps, op);
}

/* ---- cancellation ------------------------------------------------------- */

static void finish_cancelled(engine_t *e, struct job *j)
{
        if (j->dl_fd > 0) {
                close(j->dl_fd);
                j->dl_fd = 0;
        }
        j->cancel = 1;
        fail_job(e, j, "cancelled", "cancelled on request (genq cancel)%s",
                 j->cancel_note);
}

/* A job cancelled while its task runs: ask the provider to stop the task
 * too, where its API can (it stops generating and billing), before the
 * job ends.  @returns 1 if the call is out (on_http_done finishes). */
static int cancel_at_provider(engine_t *e, struct job *j)
{
        char errstr[256];

        if (j->step != STEP_POLL || !j->task_id || j->cancel_sent ||
            !cur_provider(e, j)->ops->build_cancel)
                return 0;
        j->cancel_sent = 1;
        if (task_request(e, j, cur_provider(e, j)->ops->build_cancel, errstr,
                         sizeof(errstr))) {
                snprintf(j->cancel_note, sizeof(j->cancel_note),
                         "; provider cancel not sent: %.150s", errstr);
                return 0;
        }
        j->state = JOB_INFLIGHT;
        j->step = STEP_CANCEL;
        return 1;
}

static void note_cancel(engine_t *e, struct job *j,
                        const struct provider_resp *resp)
{
        const char *who = cur_provider(e, j)->name;

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

/* Stop \p j now if it is waiting; otherwise at its next step (its HTTP
 * call or database write completes first). */
static void cancel_job(engine_t *e, struct job *j)
{
        if (j->cancel || j->dup)
                return;
        j->cancel = 1;
        log_info("job", "job %s: cancel requested", j->id);
        if (j->state == JOB_RETRY_WAIT) {
                heap_remove(e, j);
                if (!cancel_at_provider(e, j))
                        finish_cancelled(e, j);
        }
}

static void on_cancels(engine_t *e, struct pgop *op)
{
        for (size_t i = 0; i < op->n_ids; i++) {
                struct job *j = tab_find(e, op->ids[i]);

                if (j)
                        cancel_job(e, j);
        }
}

/* ---- running ------------------------------------------------------------ */

static void run_job(engine_t *e, struct job *j)
{
        if (j->deadline_us && e->now_us >= j->deadline_us) {
                fail_job(e, j, "deadline", "deadline passed before the job "
                                           "could run");
                return;
        }
        if (build_chain(e, j))
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

/* The job's metadata as event entries (strings borrowed from the job). */
static Genq__V1__JobEvent__MetadataEntry **
meta_entries(const Genq__V1__Job *pb, Genq__V1__JobEvent__MetadataEntry **mdp)
{
        size_t n = pb->n_metadata;
        Genq__V1__JobEvent__MetadataEntry *md = xcalloc(n ? n : 1,
                                                        sizeof(*md));
        Genq__V1__JobEvent__MetadataEntry **v = xcalloc(n ? n : 1,
                                                         sizeof(*v));

        for (size_t i = 0; i < n; i++) {
                genq__v1__job_event__metadata_entry__init(&md[i]);
                md[i].key = pb->metadata[i]->key;
                md[i].value = pb->metadata[i]->value;
                v[i] = &md[i];
        }
        *mdp = md;
        return v;
}

/* The job's completion event, after its final state is committed. */
static void publish_event(engine_t *e, const struct job *j,
                          const struct pgop *op)
{
        Genq__V1__JobEvent ev = GENQ__V1__JOB_EVENT__INIT;
        json_t *urls = op->urls_json ? json_loads(op->urls_json, 0, NULL)
                                     : NULL;
        Genq__V1__JobEvent__MetadataEntry *md;
        char ref[200], *sv[64];
        uint8_t *buf;
        size_t len, n = 0;

        snprintf(ref, sizeof(ref), "postgres:results/%s", j->id);
        ev.job_id = (char *)j->id;
        ev.tenant_id = j->pb->tenant_id;
        ev.kind = j->pb->kind;
        ev.state = op->state;
        ev.provider = op->provider ? op->provider : (char *)"";
        ev.model = op->model ? op->model : (char *)"";
        for (; urls && n < json_array_size(urls) && n < 64; n++)
                sv[n] = (char *)json_string_value(json_array_get(urls, n));
        ev.n_result_urls = n;
        ev.result_urls = sv;
        ev.result_ref = strcmp(op->state, "succeeded") ? (char *)"" : ref;
        ev.credits = op->amount ? op->amount : (char *)"0";
        ev.error_class = op->error_class ? op->error_class : (char *)"";
        ev.error = op->error ? op->error : (char *)"";
        ev.finished_at_ms = wall_ms();
        ev.n_metadata = j->pb->n_metadata;
        ev.metadata = meta_entries(j->pb, &md);
        buf = codec_event_encode(&ev, &len);
        kio_event(e->kio, j->id, buf, len);
        free(buf);
        free(md);
        free(ev.metadata);
        json_decref(urls);
}

/* The completion event as JSON, for the job's callback_url: the same
 * fields as the JobEvent on genq.events. */
static void send_hook(engine_t *e, const struct job *j, const struct pgop *op)
{
        json_t *o = json_object(), *md = json_object();
        json_t *urls = op->urls_json ? json_loads(op->urls_json, 0, NULL)
                                     : NULL;
        char ref[200], *body;

        snprintf(ref, sizeof(ref), "postgres:results/%s", j->id);
        json_object_set_new(o, "job_id", json_string(j->id));
        json_object_set_new(o, "tenant_id", json_string(j->pb->tenant_id));
        json_object_set_new(o, "kind",
                            json_string(codec_kind_name(j->pb->kind)));
        json_object_set_new(o, "state", json_string(op->state));
        json_object_set_new(o, "provider",
                            json_string(op->provider ? op->provider : ""));
        json_object_set_new(o, "model",
                            json_string(op->model ? op->model : ""));
        json_object_set_new(o, "result_urls",
                            json_is_array(urls) ? json_incref(urls)
                                                : json_array());
        json_object_set_new(o, "result_ref",
                            json_string(strcmp(op->state, "succeeded")
                                                ? ""
                                                : ref));
        json_object_set_new(o, "credits",
                            json_string(op->amount ? op->amount : "0"));
        json_object_set_new(o, "error_class",
                            json_string(op->error_class ? op->error_class
                                                        : ""));
        json_object_set_new(o, "error",
                            json_string(op->error ? op->error : ""));
        json_object_set_new(o, "finished_at_ms", json_integer(wall_ms()));
        for (size_t i = 0; i < j->pb->n_metadata; i++)
                json_object_set_new(md, j->pb->metadata[i]->key,
                                    json_string(j->pb->metadata[i]->value));
        json_object_set_new(o, "metadata", md);
        body = json_dumps(o, JSON_COMPACT);
        hooks_add(e->hooks, j->id, j->pb->callback_url, body, e->now_us);
        free(body);
        json_decref(o);
        json_decref(urls);
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
                publish_event(e, j, op);
                if (j->pb->callback_url && *j->pb->callback_url)
                        send_hook(e, j, op);
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

                if (tab_find(e, r->job_id))
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
                on_callbacks(e, op);
                break;
        case PGOP_ADMIT:
                on_admitted(e, op);
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
                on_task_recorded(e, op->opaque);
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
                        start_poll(e, j);
                else if (j->step == STEP_MEDIA)
                        start_media(e, j);
                else if (j->step == STEP_FETCH)
                        start_fetch(e, j);
                else
                        start_attempt(e, j);
        }
}

/* Unused free quota taken ahead goes back to Postgres after a few
 * seconds (and when draining), so other workers can use it. */
static void give_back_pools(engine_t *e, int all)
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
        give_back_pools(e, e->draining);
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
