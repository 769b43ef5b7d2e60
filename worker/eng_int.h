/**
 * @file eng_int.h
 * @brief The engine's insides, shared by its parts (not public: engine.h
 *        is the API).
 *
 * engine.c       the loop, the job table and retry heap, Kafka intake and
 *                the DLQ, accept, budget reservation, the response cache
 *                lookup, cancellation, Postgres completions, periodic
 *                work, rebalance, drain, reload, construction
 * eng_policy.c   the provider chain and its order, attempts, the shared
 *                limits and free quota chunks, outcome handling
 * eng_tasks.c    async provider tasks: record, poll, callbacks, resume,
 *                cancel at the provider
 * eng_media.c    input media fetch and result media download
 * eng_finish.c   the final row (result, usage, price, attempts), the
 *                cached answer and the completion event and hook
 *
 * Everything here runs on the engine's one thread.
 */
#ifndef GENQ_ENG_INT_H
#define GENQ_ENG_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "backoff.h"
#include "cbrecv.h"
#include "codec.h"
#include "engine.h"
#include "hooks.h"
#include "httploop.h"
#include "kio.h"
#include "offtrack.h"
#include "pgsink.h"
#include "provider.h"
#include "pstate.h"
#include "rcache.h"
#include "wconf.h"

#define MAX_CHAIN 16
#define MAX_ATTEMPTS 32

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
        int64_t need_tokens;    /**< chat: prompt (bytes/4) + max_tokens,
                                     computed once per job (build_chain) */
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
        int64_t next_pools_us;  /**< unused quota chunks looked at */
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

/* ---- engine.c ----------------------------------------------------------- */

/** @returns the wall clock in ms (attempt rows, events). */
int64_t eng_wall_ms(void);
/** @returns a jitter value (xorshift32 on e->rnd). */
uint32_t eng_rnd32(engine_t *e);
/** @returns the job with id \p id in the job table, or NULL. */
struct job *eng_tab_find(engine_t *e, const char *id);
/** Take \p j out of the retry heap wherever it is. */
void eng_heap_remove(engine_t *e, struct job *j);
/** Wait \p delay_ms in RETRY_WAIT, then do j->step. */
void eng_schedule_retry(engine_t *e, struct job *j, int64_t delay_ms);
/** httploop completion callback of every request a job sends. */
void eng_on_http_done(void *opaque, const struct provider_resp *resp);
/** Finish \p j as 'cancelled'. */
void eng_finish_cancelled(engine_t *e, struct job *j);
/** @returns the natural units \p pb will use, as far as known. */
double eng_estimate_units(const engine_t *e, const Genq__V1__Job *pb);

/* ---- eng_policy.c ------------------------------------------------------- */

/** Build and order \p j's provider chain.  @returns 0, or -1 after
 *  failing the job. */
int eng_build_chain(engine_t *e, struct job *j);
/** @returns the provider at j->cur of the chain (borrowed). */
struct wprovider *eng_cur_provider(engine_t *e, struct job *j);
/** @returns a new attempt row of \p j (owned by the job). */
struct attempt *eng_add_attempt(struct job *j, const struct wprovider *p,
                                int key);
/** @returns the job's model hint for its kind, or NULL (borrowed). */
const char *eng_job_model(const Genq__V1__Job *pb);
/** @returns 1 for a speech-to-text job. */
int eng_is_stt(const Genq__V1__Job *pb);
/** @returns the seconds of video \p pb asks for (0: not a video job). */
double eng_video_seconds(const Genq__V1__Job *pb);
/** Call the current provider, or the next that can be called.  May
 *  finish the job. */
void eng_start_attempt(engine_t *e, struct job *j);
/** Give the job's limits grant back.  Idempotent. */
void eng_release_admission(engine_t *e, struct job *j,
                           int64_t actual_tokens);
/** PGOP_ADMIT completion. */
void eng_on_admitted(engine_t *e, struct pgop *op);
/** Give unused free quota chunks back (\p all: every one). */
void eng_give_back_pools(engine_t *e, int all);
/** A call or task failed: retry, move on, or fail the job by outcome. */
void eng_on_failure(engine_t *e, struct job *j,
                    const struct provider_err *pe);
/** STEP_CALL completion. */
void eng_on_call_done(engine_t *e, struct job *j,
                      const struct provider_resp *resp);

/* ---- eng_tasks.c -------------------------------------------------------- */

/** The provider accepted a task: record it, then poll.
 *  @remark takes res->task_id. */
void eng_on_task_accepted(engine_t *e, struct job *j,
                          struct provider_result *res);
/** PGOP_TASK_START completion. */
void eng_on_task_recorded(engine_t *e, struct job *j);
/** Poll the job's task now. */
void eng_start_poll(engine_t *e, struct job *j);
/** STEP_POLL completion. */
void eng_on_poll_done(engine_t *e, struct job *j,
                      const struct provider_resp *resp);
/** PGOP_CALLBACKS completion: provider callbacks for our jobs. */
void eng_on_callbacks(engine_t *e, struct pgop *op);
/** Poll a re-driven job's unfinished task.  @returns 0, or -1 to submit
 *  anew. */
int eng_resume_task(engine_t *e, struct job *j);
/** Ask the provider to cancel the job's task.  @returns 1 if the call is
 *  out. */
int eng_cancel_at_provider(engine_t *e, struct job *j);
/** STEP_CANCEL completion: note what the provider said. */
void eng_note_cancel(engine_t *e, struct job *j,
                     const struct provider_resp *resp);

/* ---- eng_media.c -------------------------------------------------------- */

/** Fetch the job's input media. */
void eng_start_fetch(engine_t *e, struct job *j);
/** STEP_FETCH completion. */
void eng_on_fetch_done(engine_t *e, struct job *j,
                       const struct provider_resp *resp);
/** The provider delivered: download result media, then finish.
 *  @remark takes the contents of \p res. */
void eng_on_provider_success(engine_t *e, struct job *j,
                             struct provider_result *res);
/** Download the next result media file (or finish). */
void eng_start_media(engine_t *e, struct job *j);
/** STEP_MEDIA completion. */
void eng_on_media_done(engine_t *e, struct job *j,
                       const struct provider_resp *resp);
/** The artifact path of the file being downloaded (\p part: .part). */
void eng_media_path(const engine_t *e, const struct job *j, int part,
                    const char *ext, char *out, size_t outsz);

/* ---- eng_finish.c ------------------------------------------------------- */

/** Write the job's final state (FINISH op).  \p res borrowed. */
void eng_finish_job(engine_t *e, struct job *j, int ok,
                    const struct provider_result *res);
/** Fail the job with class \p cls and a formatted reason. */
void eng_fail_job(engine_t *e, struct job *j, const char *cls,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/** @returns the price snapshot JSON (owned by the caller). */
char *eng_price_json(const struct wprovider *p, const struct wprice *w,
                     int estimated);
/** @returns a chat job's prompt tokens, at 4 bytes a token. */
int64_t eng_prompt_bytes_tokens(const Genq__V1__Job *pb);
/** Publish the job's completion event on Kafka. */
void eng_publish_event(engine_t *e, const struct job *j,
                       const struct pgop *op);
/** Queue the job's completion hook (callback_url). */
void eng_send_hook(engine_t *e, const struct job *j, const struct pgop *op);

#endif
