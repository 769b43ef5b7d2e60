/*
 * kio: librdkafka consumer for the job topics and producer for the DLQ.
 *
 * The consumer queue is forwarded to rd_kafka_consumer_poll's queue, and
 * its IO event is enabled on a pipe, so the event loop can wait on one
 * descriptor for Kafka alongside curl's sockets.  Rebalances are
 * cooperative (incremental assign/unassign); on revoke the engine drops
 * the revoked partitions' offset tracking, since stores to partitions we
 * no longer own would be refused anyway (the new owner gets the unstored
 * messages again, finds the jobs in Postgres and skips them).
 */
#include "kio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "gconf.h"
#include "log.h"
#include "xmem.h"

struct kio_s {
        rd_kafka_t *consumer;
        rd_kafka_t *dlq;
        rd_kafka_queue_t *cq;
        int pipefd[2];
        int paused;
        int assigned_once;     /**< a rebalance has assigned us */
        kio_revoke_cb *revoke_cb;
        void *opaque;
        char *dlq_topic;
        char *events_topic;
        char *worker_id;
};

/* Per DLQ message, freed in the delivery report. */
struct dlq_ctx {
        kio_dlq_cb *cb;
        void *opaque;
};

static int set(rd_kafka_conf_t *c, const char *k, const char *v, char *e,
               size_t es)
{
        return rd_kafka_conf_set(c, k, v, e, es) == RD_KAFKA_CONF_OK ? 0 : -1;
}

/* ---- rebalance ---------------------------------------------------------- */

static void pause_list(kio_t *k, rd_kafka_topic_partition_list_t *parts)
{
        if (k->paused)
                rd_kafka_pause_partitions(k->consumer, parts);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        kio_t *k = opaque;
        rd_kafka_error_t *e = NULL;
        int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                k->assigned_once = 1;
                log_info("kafka", "assigned %d partition(s)", parts->cnt);
                if (coop)
                        e = rd_kafka_incremental_assign(rk, parts);
                else
                        rd_kafka_assign(rk, parts);
                pause_list(k, parts);
        } else {
                log_info("kafka", "revoked %d partition(s)%s", parts->cnt,
                         rd_kafka_assignment_lost(rk) ? " (lost)" : "");
                for (int i = 0; i < parts->cnt; i++)
                        k->revoke_cb(k->opaque, parts->elems[i].topic,
                                     parts->elems[i].partition);
                if (coop)
                        e = rd_kafka_incremental_unassign(rk, parts);
                else
                        rd_kafka_assign(rk, NULL);
        }
        if (e) {
                log_err("kafka", "rebalance: %s", rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
        }
}

/* ---- construction ------------------------------------------------------- */

static int consumer_conf(const struct wconf *w, conf_t *c,
                         rd_kafka_conf_t *rkc, kio_t *k, char *e, size_t es)
{
        if (set(rkc, "bootstrap.servers", w->g.brokers, e, es) ||
            set(rkc, "group.id", w->group_id, e, es) ||
            set(rkc, "client.id", w->worker_id, e, es) ||
            set(rkc, "partition.assignment.strategy", "cooperative-sticky", e,
                es) ||
            set(rkc, "auto.offset.reset", "earliest", e, es) ||
            set(rkc, "max.poll.interval.ms", "300000", e, es) ||
            gconf_kafka_passthrough(c, rkc, e, es))
                return -1;
        /* After passthrough: these are what at-least-once rests on. */
        if (set(rkc, "enable.auto.offset.store", "false", e, es) ||
            set(rkc, "enable.auto.commit", "true", e, es) ||
            set(rkc, "enable.partition.eof", "false", e, es))
                return -1;
        rd_kafka_conf_set_rebalance_cb(rkc, on_rebalance);
        rd_kafka_conf_set_opaque(rkc, k);
        return 0;
}

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                            void *opaque)
{
        struct dlq_ctx *ctx = m->_private;

        (void)rk;
        (void)opaque;
        if (!ctx) { /* an event: nobody waits for it */
                if (m->err)
                        log_warn("kafka", "event delivery failed: %s",
                                 rd_kafka_err2str(m->err));
                return;
        }
        if (m->err)
                log_err("kafka", "DLQ delivery failed: %s",
                        rd_kafka_err2str(m->err));
        ctx->cb(ctx->opaque, m->err == 0, rd_kafka_err2str(m->err));
        free(ctx);
}

static rd_kafka_t *dlq_producer(const struct wconf *w, char *e, size_t es)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_t *rk;

        if (set(rkc, "bootstrap.servers", w->g.brokers, e, es) ||
            set(rkc, "enable.idempotence", "true", e, es) ||
            set(rkc, "acks", "all", e, es) ||
            set(rkc, "linger.ms", "5", e, es) ||
            set(rkc, "message.max.bytes", "2000000", e, es)) {
                rd_kafka_conf_destroy(rkc);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(rkc, on_dlq_delivery);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, e, es);
        if (!rk)
                rd_kafka_conf_destroy(rkc);
        return rk;
}

static int subscribe(kio_t *k, const struct wconf *w, char *e, size_t es)
{
        rd_kafka_topic_partition_list_t *topics;
        char buf[256], *save = NULL, *kind;
        char *kinds = xstrdup(w->kinds);
        rd_kafka_resp_err_t err;

        topics = rd_kafka_topic_partition_list_new(5);
        for (kind = strtok_r(kinds, ", ", &save); kind;
             kind = strtok_r(NULL, ", ", &save)) {
                Genq__V1__Kind kk = codec_kind_parse(kind);

                if (kk == GENQ__V1__KIND__KIND_UNSPECIFIED) {
                        snprintf(e, es, "worker.kinds: \"%s\" is not a kind",
                                 kind);
                        goto err_free;
                }
                codec_topic_name(w->g.topic_prefix, kk, buf, sizeof(buf));
                rd_kafka_topic_partition_list_add(topics, buf,
                                                  RD_KAFKA_PARTITION_UA);
        }
        err = rd_kafka_subscribe(k->consumer, topics);
        if (err) {
                snprintf(e, es, "subscribe: %s", rd_kafka_err2str(err));
                goto err_free;
        }
        rd_kafka_topic_partition_list_destroy(topics);
        free(kinds);
        return 0;
err_free:
        rd_kafka_topic_partition_list_destroy(topics);
        free(kinds);
        return -1;
}

kio_t *kio_new(const struct wconf *w, conf_t *c, kio_revoke_cb *revoke_cb,
               void *opaque, char *errstr, size_t errstr_size)
{
        kio_t *k = xcalloc(1, sizeof(*k));
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();

        k->pipefd[0] = k->pipefd[1] = -1;
        k->revoke_cb = revoke_cb;
        k->opaque = opaque;
        k->dlq_topic = xstrdup(w->g.dlq_topic);
        k->events_topic = xstrdup(w->g.events_topic);
        k->worker_id = xstrdup(w->worker_id);
        if (consumer_conf(w, c, rkc, k, errstr, errstr_size)) {
                rd_kafka_conf_destroy(rkc);
                goto err_free;
        }
        k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, errstr, errstr_size);
        if (!k->consumer) {
                rd_kafka_conf_destroy(rkc);
                goto err_free;
        }
        /* rkc is now owned by the consumer */
        rd_kafka_poll_set_consumer(k->consumer);
        k->dlq = dlq_producer(w, errstr, errstr_size);
        if (!k->dlq || pipe2(k->pipefd, O_NONBLOCK | O_CLOEXEC))
                goto err_free;
        k->cq = rd_kafka_queue_get_consumer(k->consumer);
        rd_kafka_queue_io_event_enable(k->cq, k->pipefd[1], "x", 1);
        if (subscribe(k, w, errstr, errstr_size))
                goto err_free;
        return k;
err_free:
        kio_destroy(k);
        return NULL;
}

#define JOIN_WAIT_MS 10000

/* librdkafka 2.0 (Debian 12) asserts in the cooperative-sticky assignor
 * when a consumer that never received an assignment is closed during a
 * rebalance (confluentinc/librdkafka#4312, fixed in later releases).  So
 * a consumer that has not been assigned yet first finishes joining,
 * paused, for a bounded time; anything it receives is left unconsumed
 * (not stored: it is delivered again). */
static void finish_joining(kio_t *k)
{
        k->paused = 1;
        for (int waited = 0; !k->assigned_once && waited < JOIN_WAIT_MS;
             waited += 100) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer,
                                                               100);

                if (m)
                        rd_kafka_message_destroy(m);
        }
}

void kio_destroy(kio_t *k)
{
        if (!k)
                return;
        if (k->consumer && !k->assigned_once)
                finish_joining(k);
        if (k->cq) {
                rd_kafka_queue_io_event_enable(k->cq, -1, NULL, 0);
                rd_kafka_queue_destroy(k->cq);
        }
        if (k->consumer) {
                rd_kafka_consumer_close(k->consumer);
                rd_kafka_destroy(k->consumer);
        }
        if (k->dlq) {
                rd_kafka_flush(k->dlq, 10000);
                rd_kafka_destroy(k->dlq);
        }
        if (k->pipefd[0] >= 0) {
                close(k->pipefd[0]);
                close(k->pipefd[1]);
        }
        free(k->dlq_topic);
        free(k->events_topic);
        free(k->worker_id);
        free(k);
}

int kio_fd(const kio_t *k)
{
        return k->pipefd[0];
}

rd_kafka_message_t *kio_poll(kio_t *k)
{
        char drain[64];
        rd_kafka_message_t *m;

        while (read(k->pipefd[0], drain, sizeof(drain)) > 0)
                ;
        m = rd_kafka_consumer_poll(k->consumer, 0);
        if (m && m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        log_warn("kafka", "consumer: %s",
                                 rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                return NULL;
        }
        return m;
}

void kio_store(kio_t *k, const char *topic, int32_t partition,
               int64_t next_offset)
{
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_resp_err_t err;

        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset =
                next_offset;
        err = rd_kafka_offsets_store(k->consumer, l);
        if (err)
                log_dbg(LOG_DBG_KAFKA, "kafka",
                        "store %s[%d]@%lld: %s", topic, (int)partition,
                        (long long)next_offset, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(l);
}

int kio_dlq(kio_t *k, const struct kio_origin *o, const char *code,
            const char *reason, const char *job_id, kio_dlq_cb *cb,
            void *opaque, char *errstr, size_t errstr_size)
{
        rd_kafka_headers_t *h = rd_kafka_headers_new(8);
        struct dlq_ctx *ctx = xmalloc(sizeof(*ctx));
        char part[16], off[24];
        rd_kafka_resp_err_t err;

        snprintf(part, sizeof(part), "%d", (int)o->partition);
        snprintf(off, sizeof(off), "%lld", (long long)o->offset);
        rd_kafka_header_add(h, "genq.reason", -1, reason, -1);
        rd_kafka_header_add(h, "genq.reason_code", -1, code, -1);
        rd_kafka_header_add(h, "genq.origin.topic", -1, o->topic, -1);
        rd_kafka_header_add(h, "genq.origin.partition", -1, part, -1);
        rd_kafka_header_add(h, "genq.origin.offset", -1, off, -1);
        rd_kafka_header_add(h, "genq.worker", -1, k->worker_id, -1);
        if (job_id)
                rd_kafka_header_add(h, "genq.job_id", -1, job_id, -1);
        ctx->cb = cb;
        ctx->opaque = opaque;
        err = rd_kafka_producev(
                k->dlq, RD_KAFKA_V_TOPIC(k->dlq_topic),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(o->key, o->key_len),
                /* F_COPY: librdkafka copies, never writes, the value. */
                RD_KAFKA_V_VALUE((void *)o->value, o->len),
                RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(ctx), RD_KAFKA_V_END);
        if (err) {
                /* Headers are freed only on success. */
                rd_kafka_headers_destroy(h);
                free(ctx);
                snprintf(errstr, errstr_size, "DLQ produce: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

void kio_event(kio_t *k, const char *job_id, const void *buf, size_t len)
{
        rd_kafka_resp_err_t err;

        err = rd_kafka_producev(
                k->dlq, RD_KAFKA_V_TOPIC(k->events_topic),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(job_id, strlen(job_id)),
                RD_KAFKA_V_VALUE((void *)buf, len), RD_KAFKA_V_END);
        if (err)
                log_warn("kafka", "event for job %s not produced: %s", job_id,
                         rd_kafka_err2str(err));
}

void kio_serve(kio_t *k)
{
        rd_kafka_poll(k->dlq, 0);
}

void kio_set_paused(kio_t *k, int paused)
{
        rd_kafka_topic_partition_list_t *parts = NULL;

        if (k->paused == paused)
                return;
        k->paused = paused;
        if (rd_kafka_assignment(k->consumer, &parts) || !parts)
                return;
        if (paused)
                rd_kafka_pause_partitions(k->consumer, parts);
        else
                rd_kafka_resume_partitions(k->consumer, parts);
        log_dbg(LOG_DBG_KAFKA, "kafka", "%s %d partition(s)",
                paused ? "paused" : "resumed", parts->cnt);
        rd_kafka_topic_partition_list_destroy(parts);
}

int kio_paused(const kio_t *k)
{
        return k->paused;
}

void kio_flush(kio_t *k, int timeout_ms)
{
        rd_kafka_flush(k->dlq, timeout_ms);
}

int kio_dlq_outstanding(kio_t *k)
{
        return rd_kafka_outq_len(k->dlq);
}
