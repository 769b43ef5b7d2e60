/**
 * @file kio.h
 * @brief The worker's Kafka side: the job consumer and the dead-letter
 *        producer.  Used from the event-loop thread only.
 *
 * Consumer settings that at-least-once depends on are fixed here, not left
 * to config: enable.auto.offset.store=false (offsets are stored only for
 * jobs durable in Postgres, by kio_store), auto commit of stored offsets on,
 * cooperative-sticky assignment.
 */
#ifndef GENQ_KIO_H
#define GENQ_KIO_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "conf.h"
#include "wconf.h"

typedef struct kio_s kio_t;

/** Called from inside kio_poll when partitions are revoked or lost, before
 *  they go: the engine forgets their offsets. */
typedef void(kio_revoke_cb)(void *opaque, const char *topic,
                            int32_t partition);

/** Delivery report of a DLQ message: \p ok or not with \p errstr. */
typedef void(kio_dlq_cb)(void *opaque, int ok, const char *errstr);

/** @returns the kio or NULL with errstr. \p c supplies kafka.* passthrough
 *  properties (unused keys under "kafka."). */
kio_t *kio_new(const struct wconf *w, conf_t *c, kio_revoke_cb *revoke_cb,
               void *opaque, char *errstr, size_t errstr_size);

/** @brief Leave the group cleanly (commits stored offsets), then free.
 *         NULL-safe. */
void kio_destroy(kio_t *k);

/** @brief Descriptor readable when the consumer queue has something. */
int kio_fd(const kio_t *k);

/** @brief Next message without blocking, or NULL.  Errors and EOFs are
 *  handled inside.  @remark the caller owns the message
 *  (rd_kafka_message_destroy). */
rd_kafka_message_t *kio_poll(kio_t *k);

/** @brief Store \p next_offset for (topic, partition) for the next commit. */
void kio_store(kio_t *k, const char *topic, int32_t partition,
               int64_t next_offset);

/** Where a dead-lettered message came from, and its bytes (borrowed). */
struct kio_origin {
        const char *topic;
        int32_t partition;
        int64_t offset;
        const void *key;
        size_t key_len;
        const void *value;
        size_t len;
};

/**
 * @brief Produce \p o's key and value to the DLQ with headers
 *        genq.reason, genq.reason_code, genq.origin.topic,
 *        genq.origin.partition, genq.origin.offset, genq.job_id (if known),
 *        genq.worker.  \p cb runs from a later kio_serve().
 * @returns 0, or -1 with errstr (cb is then not called).
 */
int kio_dlq(kio_t *k, const struct kio_origin *o, const char *code,
            const char *reason, const char *job_id, kio_dlq_cb *cb,
            void *opaque, char *errstr, size_t errstr_size);

/**
 * @brief Publish a job's completion event (encoded genq.v1.JobEvent) to
 *        the events topic, keyed by job id.  Fire and forget: a failed
 *        delivery is logged (the job's truth is in Postgres).
 */
void kio_event(kio_t *k, const char *job_id, const void *buf, size_t len);

/** @brief Serve the DLQ producer's delivery reports. */
void kio_serve(kio_t *k);

/** @brief Pause (1) or resume (0) every assigned partition; newly assigned
 *         partitions follow the current setting. */
void kio_set_paused(kio_t *k, int paused);

/** @brief 1 while paused. */
int kio_paused(const kio_t *k);

/** @brief Flush the DLQ producer (shutdown). */
void kio_flush(kio_t *k, int timeout_ms);

/** @brief DLQ messages not yet acknowledged. */
int kio_dlq_outstanding(kio_t *k);

#endif
