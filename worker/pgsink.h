/**
 * @file pgsink.h
 * @brief Every Postgres write the worker makes, batched on its own thread.
 *
 * The event loop hands over ops (pgsink_submit) and gets them back, with
 * their results, through pgsink_take_done() when pgsink_fd() is readable.
 * Ops are batched (up to `batch` ops or `batch_ms`, whichever first) and
 * sent in libpq pipeline mode; a batch is one implicit transaction with
 * one commit (synchronous_commit stays on: Kafka offsets are stored only
 * after it).  If a batch fails, its ops are retried one by one so one bad
 * op cannot fail its neighbours.  If the connection drops, the batch is
 * retried after reconnecting: every op is idempotent.
 */
#ifndef GENQ_PGSINK_H
#define GENQ_PGSINK_H

#include <stddef.h>
#include <stdint.h>

typedef struct pgsink_s pgsink_t;

enum pgop_type {
        PGOP_ACCEPT,  /**< insert the job (idempotent) and take its lease */
        PGOP_REJECT,  /**< record a job refused by validation */
        PGOP_FINISH,  /**< attempts, result, final state, ledger: one stmt */
        PGOP_RENEW,   /**< extend every lease this worker holds */
        PGOP_RELEASE, /**< hand leases back (shutdown) */
        PGOP_SWEEP,   /**< take over jobs whose lease expired */
        PGOP_TASK_START, /**< record an accepted async task (before the
                              first poll: a crash never resubmits it) */
        PGOP_TASK_END,   /**< a task failed or timed out (success is
                              recorded by FINISH); refunds a hold */
        PGOP_RESERVE,    /**< reserve the job's estimated cost against its
                              tenant's budget, atomically */
        PGOP_TASK_UNKNOWN, /**< a submit whose outcome is unknown (sent, no
                                answer): recorded for review */
        PGOP_CANCELS,    /**< which of this worker's jobs are to be
                              cancelled (ids) */
        PGOP_BUDGETED,   /**< tenants that have a budget (ids) */
        PGOP_CALLBACKS,  /**< claim provider callbacks of this worker's
                              jobs: rows {job_id, payload = body, task =
                              provider} */
        PGOP_ADMIT,      /**< genq_admit: may this call go out under the
                              shared limits?  hit = 1 yes; else errstr =
                              reason, wait_ms */
        PGOP_UNADMIT,    /**< genq_release (+ genq_quota_adjust when
                              quota_n != 0): the call is over */
        PGOP_POLICY,     /**< read policy_state: ids = rows
                              "kind|provider|key|enabled|priority|reason" */
        PGOP_KEY_OFF,    /**< genq_key_disable(provider, key_id, error) */
        PGOP_CACHE_GET,  /**< response cache lookup by holder (the key):
                              hit = 1 with provider, model, text,
                              finish_reason, usage_json, in/out_tokens */
        PGOP_CACHE_PUT,  /**< store an answer under holder for lease_s */
        PGOP_HOOK,       /**< record a completion hook delivery: job_id,
                              polls = attempt, text = url, hit = HTTP
                              status, error, cancelled = delivered */
};

/** A job row taken over by PGOP_SWEEP. */
struct pgop_row {
        char *job_id;
        uint8_t *payload;
        size_t payload_len;
        char *task;   /**< its unfinished async task, or NULL:
                           "provider|key_id|polls|provider_task_id" */
};

/** One unit of work.  Strings and buffers are owned by the op and freed by
 *  pgop_destroy(); the caller fills what its type needs. */
struct pgop {
        enum pgop_type type;
        struct pgop *next;      /**< list link (done list) */
        void *opaque;           /**< the caller's (a job); not freed */

        /* ACCEPT / REJECT */
        char *job_id, *tenant_id, *kind, *route, *metadata_json;
        char *topic;            /**< origin, NULL when re-driven */
        int32_t partition;
        int64_t offset;
        int32_t priority;
        int64_t created_ms, deadline_ms;
        uint8_t *payload;
        size_t payload_len;

        /* FINISH (and REJECT's reason in error) */
        char *state;            /**< succeeded | failed */
        char *provider, *model, *error_class, *error;
        int32_t n_attempts;
        char *attempts_json;    /**< [{no,provider,key_id,model,status,
                                      outcome,error,latency_ms,started_ms}] */
        char *text, *finish_reason, *usage_json;
        int64_t in_tokens, out_tokens;
        char *price_json;       /**< snapshot; NULL = do not bill */
        char *billing_note;     /**< why not billed, or NULL */
        double units;           /**< natural units (images, seconds,
                                     characters); < 0 = tokens/unknown */
        const char *unit;       /**< static string, or NULL (tokens) */
        char *content_type;     /**< of the result */
        uint8_t *data;          /**< inline media to store, or NULL */
        size_t data_len;
        int64_t data_bytes;     /**< media size made (stored or not), -1 */
        char *urls_json;        /**< JSON array of result URLs, or NULL */
        char *provider_cost;
        char *note;             /**< result note, or NULL */
        char *artifacts_json;   /**< [{n,url,path,bytes,sha256,
                                      content_type}] stored media, or NULL */

        /* TASK_START / TASK_END (and FINISH of an async job) */
        char *key_id;
        char *task_id;          /**< the provider's task id */
        int32_t polls;
        double first_poll_s;    /**< TASK_START: when the first poll is due */
        double hold_units;      /**< TASK_START: units to hold (video), < 0
                                     none; with price_json */

        /* RESERVE: amount in credits; results in hit (1 = may run) and
         * errstr (why not), and cancelled (a cancel was requested).
         * FINISH: out, the job's net credits. */
        char *amount;
        int cancelled;

        /* RELEASE: job ids to hand back; CANCELS: out, ids to cancel */
        char **ids;
        size_t n_ids;

        /* SWEEP */
        int32_t limit;
        /* ADMIT / UNADMIT (provider, key_id) */
        char *holder;           /**< one call of one job, unique */
        int32_t cap, rpm, tpm, lease_s;
        int64_t tokens;         /**< ADMIT: estimate; UNADMIT: actual or
                                     -1 */
        const char *quota_unit; /**< borrowed from the wconf; NULL none */
        double quota_n;         /**< ADMIT: units taken; UNADMIT: the
                                     correction (actual - estimate) */
        int64_t wait_ms;        /**< ADMIT out: when to ask again, -1 =
                                     never (a quota that does not reset) */

        /* results */
        int rc;                 /**< 0 done, -1 failed (errstr) */
        int64_t hit;            /**< ACCEPT: 1 if leased; FINISH: 1 if the
                                     job was ours to finish; RENEW: rows */
        struct pgop_row *rows;  /**< SWEEP */
        size_t n_rows;
        char errstr[256];
};

/** @brief A zeroed op of \p type. */
struct pgop *pgop_new(enum pgop_type type);
/** @brief Free an op and everything it owns.  NULL-safe. */
void pgop_destroy(struct pgop *op);

/**
 * @brief Connect, prepare, start the thread.
 * @returns the sink or NULL with errstr (first connection failed).
 */
pgsink_t *pgsink_new(const char *dsn, const char *worker_id, int lease_s,
                     int batch, int batch_ms, char *errstr,
                     size_t errstr_size);

/** @brief Finish queued ops, stop the thread, free undelivered results.
 *         NULL-safe. */
void pgsink_destroy(pgsink_t *ps);

/** @brief Queue \p op.  @locality any thread.
 *  @remark takes ownership of \p op until it comes back from take_done. */
void pgsink_submit(pgsink_t *ps, struct pgop *op);

/** @brief Descriptor that is readable when finished ops are waiting. */
int pgsink_fd(const pgsink_t *ps);

/** @brief Take every finished op (a list linked by next, oldest first).
 *  @remark the caller owns the returned ops. */
struct pgop *pgsink_take_done(pgsink_t *ps);

/** @brief Ops submitted and not yet taken back. */
size_t pgsink_pending(pgsink_t *ps);

/** @brief Batches and ops committed so far (for stats). */
void pgsink_counters(pgsink_t *ps, uint64_t *batches, uint64_t *ops);

#endif
