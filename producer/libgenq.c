/*
 * libgenq: the producer side of genq; see libgenq.h.
 *
 * One librdkafka producer per client.  Delivery reports come back through
 * rd_kafka_poll()/rd_kafka_flush() on the caller's thread, keyed by the
 * per-message opaque; the client counts what is still outstanding itself
 * (rd_kafka_outq_len() also counts internal requests), so genq_flush() can
 * say exactly how many jobs have no report yet.
 *
 * The five job topics get their rd_kafka_topic_t handles as soon as the
 * producer exists, so their metadata is asked for with the first request
 * on connect.  A topic first named at produce time can miss that request
 * and then waits for librdkafka's one-second scan of unknown topics
 * (confluentinc/librdkafka#3202): a 1 s stall on a one-job submit.
 */
#include "libgenq.h"

#include <librdkafka/rdkafka.h>
#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "gconf.h"
#include "log.h"
#include "xmem.h"

#ifndef GENQ_VERSION
#define GENQ_VERSION "0.1.0"
#endif

#define SCHEMA_HEADER "genq.schema"
#define SCHEMA_VERSION "1"
#define QUEUE_FULL_POLL_MS 50
#define DESTROY_FLUSH_MS 10000

struct genq_client_s {
        rd_kafka_t *rk;               /**< the idempotent producer */
        char *topic_prefix;           /**< "genq.jobs" */
        rd_kafka_topic_t *topics[GENQ__V1__KIND__KIND_TTS + 1]; /**< by kind */
        genq_delivery_cb *on_delivery; /**< or NULL */
        void *opaque;                 /**< for on_delivery */
        atomic_long outstanding;      /**< queued, no report yet */
        atomic_int has_fatal;         /**< fatal[] is set */
        char fatal[512];              /**< rd_kafka_fatal_error() text */
};

/* Properties every client starts from (opts can override them). */
static const char *const producer_defaults[] = {
        "enable.idempotence", "true",
        "acks", "all",
        "linger.ms", "5",
        "compression.type", "lz4",
        "client.id", "genq-producer",
        NULL,
};

/* ---- librdkafka callbacks --------------------------------------------- */

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        genq_client_t *gc = opaque;
        char idbuf[GENQ_JOB_ID_SIZE], *id = idbuf;

        if (m->key_len >= sizeof(idbuf))
                id = xstrndup(m->key, m->key_len);
        else {
                memcpy(idbuf, m->key ? m->key : "", m->key_len);
                idbuf[m->key_len] = '\0';
        }
        if (gc->on_delivery)
                gc->on_delivery(gc->opaque, m->_private, id, !m->err,
                                m->err ? rd_kafka_err2str(m->err) : NULL);
        if (id != idbuf)
                free(id);
        atomic_fetch_sub(&gc->outstanding, 1); /* after: flush == done */
}

static void on_error(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque)
{
        genq_client_t *gc = opaque;

        if (err != RD_KAFKA_RESP_ERR__FATAL) {
                log_warn("kafka", "%s: %s",
                         rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
                return;
        }
        rd_kafka_fatal_error(rk, gc->fatal, sizeof(gc->fatal));
        atomic_store(&gc->has_fatal, 1);
        log_err("kafka", "producer fatal error: %s", gc->fatal);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        int lvl = level <= 3 ? LOG_LVL_ERR
                  : level == 4 ? LOG_LVL_WARN
                  : level <= 6 ? LOG_LVL_INFO
                               : LOG_LVL_DEBUG;

        if (lvl <= genq_g.log_level)
                log_write(lvl, "kafka", "%s: %s", fac, buf);
}

/* ---- construction ------------------------------------------------------ */

static int set_prop(rd_kafka_conf_t *conf, const char *k, const char *v,
                    char *errstr, size_t errstr_size)
{
        char rkerr[256];

        if (rd_kafka_conf_set(conf, k, v, rkerr, sizeof(rkerr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        snprintf(errstr, errstr_size, "kafka property %s=%s: %s", k, v,
                 rkerr);
        return -1;
}

static int set_props(rd_kafka_conf_t *conf, const char *const *kv,
                     char *errstr, size_t errstr_size)
{
        for (; kv[0]; kv += 2) {
                if (!kv[1]) {
                        snprintf(errstr, errstr_size,
                                 "kafka property %s has no value", kv[0]);
                        return -1;
                }
                if (set_prop(conf, kv[0], kv[1], errstr, errstr_size))
                        return -1;
        }
        return 0;
}

/* Defaults, brokers, then the caller's conf and properties. */
static int build_conf(rd_kafka_conf_t *conf,
                      const struct genq_client_opts *o, char *errstr,
                      size_t errstr_size)
{
        char maxbytes[32];

        /* Room for the largest job plus key, headers and batch framing. */
        snprintf(maxbytes, sizeof(maxbytes), "%d",
                 CODEC_MAX_JOB_BYTES + 64 * 1024);
        if (set_props(conf, producer_defaults, errstr, errstr_size) ||
            set_prop(conf, "message.max.bytes", maxbytes, errstr,
                     errstr_size) ||
            set_prop(conf, "bootstrap.servers", o->brokers, errstr,
                     errstr_size))
                return -1;
        if (o->conf &&
            gconf_kafka_passthrough(o->conf, conf, errstr, errstr_size))
                return -1;
        if (o->kafka_props &&
            set_props(conf, o->kafka_props, errstr, errstr_size))
                return -1;
        return 0;
}

/* Handles for <prefix>.<kind> (see the file comment); a name that does
 * not fit is left NULL and reported by genq_submit_ex. */
static void open_topics(genq_client_t *gc)
{
        char name[256];

        for (int k = 1; k <= GENQ__V1__KIND__KIND_TTS; k++)
                if (!codec_topic_name(gc->topic_prefix, (Genq__V1__Kind)k,
                                      name, sizeof(name)))
                        gc->topics[k] = rd_kafka_topic_new(gc->rk, name,
                                                           NULL);
}

genq_client_t *genq_client_new(const struct genq_client_opts *opts,
                               char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf;
        genq_client_t *gc;

        if (!opts->brokers || !*opts->brokers) {
                snprintf(errstr, errstr_size, "no Kafka brokers given");
                return NULL;
        }
        conf = rd_kafka_conf_new();
        if (build_conf(conf, opts, errstr, errstr_size))
                goto err_destroy_conf;
        gc = xcalloc(1, sizeof(*gc));
        gc->topic_prefix = xstrdup(opts->topic_prefix ? opts->topic_prefix
                                                      : "genq.jobs");
        gc->on_delivery = opts->on_delivery;
        gc->opaque = opts->opaque;
        atomic_init(&gc->outstanding, 0);
        atomic_init(&gc->has_fatal, 0);
        rd_kafka_conf_set_opaque(conf, gc);
        rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
        rd_kafka_conf_set_error_cb(conf, on_error);
        rd_kafka_conf_set_log_cb(conf, on_log);
        gc->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
        if (!gc->rk)
                goto err_free_client;
        conf = NULL; /* now owned by gc->rk */
        open_topics(gc);
        return gc;

err_free_client:
        free(gc->topic_prefix);
        free(gc);
err_destroy_conf:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

void genq_client_destroy(genq_client_t *gc)
{
        if (!gc)
                return;
        rd_kafka_flush(gc->rk, DESTROY_FLUSH_MS);
        for (size_t k = 0; k < sizeof(gc->topics) / sizeof(gc->topics[0]);
             k++)
                if (gc->topics[k])
                        rd_kafka_topic_destroy(gc->topics[k]);
        rd_kafka_destroy(gc->rk);
        free(gc->topic_prefix);
        free(gc);
}

/* ---- producing --------------------------------------------------------- */

/* One message to librdkafka, waiting out a full queue.  With
 * RD_KAFKA_MSG_F_FREE in \p msgflags librdkafka owns \p val on success
 * only; on failure it stays the caller's. */
static int produce(genq_client_t *gc, const char *topic, const char *key,
                   void *val, size_t len, int msgflags, int with_schema,
                   void *msg_opaque, char *errstr, size_t errstr_size)
{
        rd_kafka_vu_t vu[6];
        rd_kafka_error_t *error;
        size_t n = 0;

        vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
        vu[n++].u.cstr = topic;
        vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
        vu[n].u.mem.ptr = val;
        vu[n++].u.mem.size = len;
        vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
        vu[n++].u.i = msgflags;
        vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
        vu[n++].u.ptr = msg_opaque;
        if (key) {
                vu[n].vtype = RD_KAFKA_VTYPE_KEY;
                vu[n].u.mem.ptr = (void *)key;
                vu[n++].u.mem.size = strlen(key);
        }
        if (with_schema) {
                vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
                vu[n].u.header.name = SCHEMA_HEADER;
                vu[n].u.header.val = SCHEMA_VERSION;
                vu[n++].u.header.size = sizeof(SCHEMA_VERSION) - 1;
        }
        atomic_fetch_add(&gc->outstanding, 1);
        while ((error = rd_kafka_produceva(gc->rk, vu, n)) &&
               rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_error_destroy(error);
                rd_kafka_poll(gc->rk, QUEUE_FULL_POLL_MS);
        }
        if (!error)
                return GENQ_OK;
        atomic_fetch_sub(&gc->outstanding, 1);
        snprintf(errstr, errstr_size, "%s: %s", topic,
                 rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return GENQ_EKAFKA;
}

static int check_fatal(genq_client_t *gc, char *errstr, size_t errstr_size)
{
        if (!atomic_load(&gc->has_fatal))
                return 0;
        snprintf(errstr, errstr_size, "producer fatal error: %s", gc->fatal);
        return -1;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int genq_submit(genq_client_t *gc, const Genq__V1__Job *job,
                void *msg_opaque, char *errstr, size_t errstr_size)
{
        return genq_submit_ex(gc, job, 0, NULL, msg_opaque, errstr,
                              errstr_size);
}

/* The job as sent: \p job with job_id and created_at_ms filled in.  A
 * shallow copy, so the caller's job is untouched and nothing is freed. */
static int complete_job(const Genq__V1__Job *job, Genq__V1__Job *out,
                        char uuid[37], char *errstr, size_t errstr_size)
{
        *out = *job;
        if (!job->job_id || !*job->job_id) {
                if (codec_uuid4(uuid)) {
                        snprintf(errstr, errstr_size,
                                 "cannot make a job id: no randomness");
                        return GENQ_ESYS;
                }
                out->job_id = uuid;
        }
        if (!out->created_at_ms)
                out->created_at_ms = now_ms();
        return GENQ_OK;
}

int genq_submit_ex(genq_client_t *gc, const Genq__V1__Job *job, int flags,
                   char *job_id_out, void *msg_opaque, char *errstr,
                   size_t errstr_size)
{
        char uuid[37], topic[256];
        Genq__V1__Job sent;
        uint8_t *buf;
        size_t len;
        int rc;

        if (check_fatal(gc, errstr, errstr_size))
                return GENQ_EKAFKA;
        rc = complete_job(job, &sent, uuid, errstr, errstr_size);
        if (rc != GENQ_OK)
                return rc;
        if (!(flags & GENQ_SUBMIT_F_UNCHECKED) &&
            codec_job_validate(&sent, GENQ__V1__KIND__KIND_UNSPECIFIED,
                               errstr, errstr_size) != CODEC_OK)
                return GENQ_EINVALID;
        if (codec_topic_name(gc->topic_prefix, sent.kind, topic,
                             sizeof(topic))) {
                snprintf(errstr, errstr_size, "kind %d has no topic",
                         (int)sent.kind);
                return GENQ_EINVALID;
        }
        buf = codec_job_encode(&sent, &len);
        if (len > CODEC_MAX_JOB_BYTES) {
                free(buf);
                snprintf(errstr, errstr_size,
                         "job is %zu bytes encoded, over the %d byte limit",
                         len, CODEC_MAX_JOB_BYTES);
                return GENQ_ETOOBIG;
        }
        if (job_id_out)
                snprintf(job_id_out, GENQ_JOB_ID_SIZE, "%s", sent.job_id);
        rc = produce(gc, topic, sent.job_id, buf, len, RD_KAFKA_MSG_F_FREE, 1,
                     msg_opaque, errstr, errstr_size);
        if (rc != GENQ_OK)
                free(buf); /* F_FREE hands it over only on success */
        return rc;
}

int genq_produce_raw(genq_client_t *gc, const char *topic, const char *key,
                     const void *bytes, size_t len, void *msg_opaque,
                     char *errstr, size_t errstr_size)
{
        if (check_fatal(gc, errstr, errstr_size))
                return GENQ_EKAFKA;
        return produce(gc, topic, key, (void *)bytes, len,
                       RD_KAFKA_MSG_F_COPY, 0, msg_opaque, errstr,
                       errstr_size);
}

int genq_poll(genq_client_t *gc, int timeout_ms)
{
        return rd_kafka_poll(gc->rk, timeout_ms);
}

long genq_flush(genq_client_t *gc, int timeout_ms)
{
        rd_kafka_flush(gc->rk, timeout_ms);
        if (atomic_load(&gc->has_fatal))
                return -1;
        return atomic_load(&gc->outstanding);
}

long genq_outstanding(genq_client_t *gc)
{
        return atomic_load(&gc->outstanding);
}

const char *genq_fatal(genq_client_t *gc)
{
        return atomic_load(&gc->has_fatal) ? gc->fatal : NULL;
}

const char *genq_version(void)
{
        return GENQ_VERSION;
}
