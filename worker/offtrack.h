/**
 * @file offtrack.h
 * @brief Per-partition offset tracking for at-least-once consumption.
 *
 * A message's offset may be stored (and so committed) only when its job
 * row is durable in Postgres *and* every lower offset of its partition is
 * too; jobs finish out of order, so this tracks, per partition, the
 * offsets taken and not yet done (STYLE rule 8).
 *
 * Offsets of one partition are added in increasing order (Kafka delivers
 * them so); done may come in any order.  Owned by the event-loop thread.
 */
#ifndef GENQ_OFFTRACK_H
#define GENQ_OFFTRACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct offtrack_s offtrack_t;

offtrack_t *offtrack_new(void);
void offtrack_destroy(offtrack_t *ot); /* NULL-safe */

/**
 * @brief Record that \p offset of (topic, partition) was taken.
 * @returns 0, or -1 if it is not above the last offset added (a rewind:
 *          the partition's state is reset to start at \p offset).
 */
int offtrack_add(offtrack_t *ot, const char *topic, int32_t partition,
                 int64_t offset);

/**
 * @brief Mark \p offset done.
 * @returns the offset to store (one past the highest contiguous done
 *          offset) if it advanced, else -1.  -2 if \p offset is unknown
 *          (partition dropped, or never added).
 */
int64_t offtrack_done(offtrack_t *ot, const char *topic, int32_t partition,
                      int64_t offset);

/** @brief Offsets taken and not yet done, over all partitions. */
size_t offtrack_pending(const offtrack_t *ot);

/** @brief Offsets taken and not yet done in one partition. */
size_t offtrack_pending_in(const offtrack_t *ot, const char *topic,
                           int32_t partition);

/** @brief Forget a partition (revoked): its pending offsets are dropped. */
void offtrack_drop(offtrack_t *ot, const char *topic, int32_t partition);

#endif
