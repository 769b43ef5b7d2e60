/**
 * @file libgenq.h
 * @brief libgenq: put genq jobs on Kafka from C.
 *
 * A client wraps one idempotent librdkafka producer (acks=all,
 * enable.idempotence=true, linger.ms=5, compression.type=lz4).  Jobs go to
 * <topic_prefix>.<kind>, keyed by job_id, with the header genq.schema=1.
 *
 *     struct genq_client_opts o = {.brokers = "127.0.0.1:19092",
 *                                  .on_delivery = my_dr};
 *     genq_client_t *gc = genq_client_new(&o, errstr, sizeof(errstr));
 *     genq_submit(gc, job, my_ctx, errstr, sizeof(errstr));
 *     genq_flush(gc, 30000);         (delivery reports arrive in here)
 *     genq_client_destroy(gc);
 *
 * A submit that returns 0 only means the job is queued: the outcome comes
 * later through on_delivery, from inside genq_submit(), genq_poll() or
 * genq_flush().  Nothing here calls exit().
 *
 * @locality Calls on one client may come from any thread, but delivery
 *           callbacks run on whichever thread is inside genq_submit(),
 *           genq_poll() or genq_flush() at the time; most programs use one
 *           thread.
 */
#ifndef GENQ_LIBGENQ_H
#define GENQ_LIBGENQ_H

#include <stddef.h>

#include "conf.h"
#include "genq.pb-c.h"

typedef struct genq_client_s genq_client_t;

/** Results of genq_submit() and genq_produce_raw(). */
enum genq_rc {
        GENQ_OK = 0,
        GENQ_EINVALID = -1, /**< the job failed codec_job_validate */
        GENQ_ETOOBIG = -2,  /**< encoded job over CODEC_MAX_JOB_BYTES */
        GENQ_EKAFKA = -3,   /**< librdkafka refused the message */
        GENQ_ESYS = -4,     /**< no randomness for a job id */
};

/** genq_submit_ex() flags. */
enum {
        /** Testing aid: skip codec_job_validate, so tests can put
         *  deliberately wrong jobs on a topic (the topic still comes from
         *  job->kind, which must be a known kind). */
        GENQ_SUBMIT_F_UNCHECKED = 1 << 0,
};

/** Longest job_id genq_submit_ex() can hand back, plus its NUL. */
#define GENQ_JOB_ID_SIZE 129

/**
 * @brief Delivery report: called once per message that genq_submit() or
 *        genq_produce_raw() accepted.
 * @param opaque     genq_client_opts.opaque.
 * @param msg_opaque the opaque given with that message.
 * @param job_id     the message key (the job id); "" if it had none.
 *                   Borrowed, valid during the call.
 * @param ok         1 if the broker acknowledged it (acks=all), else 0.
 * @param errstr     why it failed (NULL when ok).
 */
typedef void(genq_delivery_cb)(void *opaque, void *msg_opaque,
                               const char *job_id, int ok,
                               const char *errstr);

/** Options for genq_client_new(); zero-initialise and set what you need. */
struct genq_client_opts {
        const char *brokers;          /**< bootstrap servers; required */
        const char *topic_prefix;     /**< NULL = "genq.jobs" */
        /** NULL, or a config whose unused `kafka.*` keys are passed to
         *  librdkafka with the prefix removed (`kafka.socket.timeout.ms`).
         *  Call gconf_bind() on it first so genq's own kafka.* keys
         *  (brokers, topic_prefix, ...) are marked used.  Borrowed. */
        conf_t *conf;
        /** NULL, or a NULL-terminated array of librdkafka property name,
         *  value, name, value...; applied last.  Borrowed. */
        const char *const *kafka_props;
        genq_delivery_cb *on_delivery; /**< NULL = no reports */
        void *opaque;                  /**< passed to on_delivery */
};

/**
 * @brief Create a client and its producer (it connects in the background).
 * @returns the client, or NULL with the reason in \p errstr (a bad
 *          property names itself).
 * @remark \p opts and everything it points to is borrowed.
 */
genq_client_t *genq_client_new(const struct genq_client_opts *opts,
                               char *errstr, size_t errstr_size);

/**
 * @brief Wait up to 10 s for outstanding deliveries (reporting them), then
 *        free the client.  Messages still undelivered are dropped; call
 *        genq_flush() first to decide how long to wait.  NULL-safe.
 */
void genq_client_destroy(genq_client_t *gc);

/** @brief genq_submit_ex(gc, job, 0, NULL, msg_opaque, ...). */
int genq_submit(genq_client_t *gc, const Genq__V1__Job *job,
                void *msg_opaque, char *errstr, size_t errstr_size);

/**
 * @brief Queue \p job for delivery to <topic_prefix>.<kind>.
 *
 * An empty job_id gets a UUID v4 and a zero created_at_ms gets the current
 * time; these go into the encoded message only: \p job itself is not
 * modified.  The job is validated (unless GENQ_SUBMIT_F_UNCHECKED),
 * encoded and handed to librdkafka; if its queue is full this serves
 * delivery reports until there is room.
 *
 * @param job        borrowed; may be freed as soon as this returns.
 * @param flags      0 or GENQ_SUBMIT_F_UNCHECKED.
 * @param job_id_out NULL, or GENQ_JOB_ID_SIZE bytes that receive the job id
 *                   used (the caller's or the generated one).
 * @param msg_opaque handed back in the delivery report.
 * @returns GENQ_OK (a delivery report will follow), or GENQ_EINVALID,
 *          GENQ_ETOOBIG, GENQ_EKAFKA, GENQ_ESYS with the reason in
 *          \p errstr (no report follows).
 */
int genq_submit_ex(genq_client_t *gc, const Genq__V1__Job *job, int flags,
                   char *job_id_out, void *msg_opaque, char *errstr,
                   size_t errstr_size);

/**
 * @brief Queue \p len raw bytes to \p topic, unchecked: a testing tool for
 *        malformed messages.  No genq.schema header is added.
 * @param key NULL for no key; else a NUL-terminated key.
 * @remark \p bytes is copied; the delivery report carries \p key as job_id.
 * @returns GENQ_OK or GENQ_EKAFKA with errstr.
 */
int genq_produce_raw(genq_client_t *gc, const char *topic, const char *key,
                     const void *bytes, size_t len, void *msg_opaque,
                     char *errstr, size_t errstr_size);

/**
 * @brief Serve delivery reports for up to \p timeout_ms (0 = only those
 *        ready now).  @returns the number of reports served.
 */
int genq_poll(genq_client_t *gc, int timeout_ms);

/**
 * @brief Wait up to \p timeout_ms for every outstanding delivery report.
 * @returns the number of messages still outstanding (0 = all reported), or
 *          -1 if the producer hit a fatal error (reason in genq_fatal()).
 */
long genq_flush(genq_client_t *gc, int timeout_ms);

/** @brief Messages queued whose delivery report has not arrived yet. */
long genq_outstanding(genq_client_t *gc);

/**
 * @brief The producer's fatal error (e.g. an idempotence sequence it cannot
 *        recover), or NULL.  After one every submit fails; make a new
 *        client.  Borrowed, valid until genq_client_destroy().
 */
const char *genq_fatal(genq_client_t *gc);

/** @brief libgenq's version, "X.Y.Z".  Static. */
const char *genq_version(void);

#endif
