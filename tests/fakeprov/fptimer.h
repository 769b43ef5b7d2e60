/**
 * @file fptimer.h
 * @brief The thread that wakes delayed and hung requests.
 *
 * DESIGN
 * A delayed answer must not hold a server thread, so the server suspends
 * the connection and parks an entry here.  One thread keeps the entries in
 * a min-heap by due time and, when one is due, hands it to the fire
 * callback, which resumes the connection.  Hung requests are parked with
 * due time "never".  Because a suspended connection is not polled by the
 * HTTP library, this thread also polls every parked client socket for a
 * hang-up every FPTIMER_WATCH_MS, so a client that gives up frees its
 * request at once.  At stop, every parked entry is fired with
 * FPTIMER_STOP and later additions fire at once.
 *
 * The fire callback runs without the timer's lock, on the timer thread
 * (or on the thread calling fptimer_add/fptimer_stop when stopping).  The
 * entry is no longer known to the timer when it fires.
 */
#ifndef GENQ_FPTIMER_H
#define GENQ_FPTIMER_H

#include <stddef.h>
#include <stdint.h>

#define FPTIMER_NEVER INT64_MAX
#define FPTIMER_WATCH_MS 100

typedef struct fptimer_s fptimer_t;

enum fptimer_why {
        FPTIMER_DUE,   /**< the due time came */
        FPTIMER_GONE,  /**< the client hung up */
        FPTIMER_STOP,  /**< the server is stopping */
};

/** Embedded in the caller's request object. */
struct fptimer_ent {
        int64_t due_ms;  /**< fptimer_now_ms() time, or FPTIMER_NEVER */
        int fd;          /**< client socket to watch, or -1 */
        size_t idx;      /**< heap slot; private to fptimer */
};

typedef void(fptimer_fire_fn)(struct fptimer_ent *ent, enum fptimer_why why,
                              void *opaque);

/** @brief Start the timer thread. @returns NULL with errstr on failure. */
fptimer_t *fptimer_new(fptimer_fire_fn *fire, void *opaque, char *errstr,
                       size_t errstr_size);

/** @brief Park \p ent until its due time.  @locality any thread.
 *  @remark \p ent is borrowed until it fires. */
void fptimer_add(fptimer_t *t, struct fptimer_ent *ent);

/** @brief Fire every parked entry with FPTIMER_STOP; from now on
 *         fptimer_add() fires at once.  Idempotent. */
void fptimer_stop(fptimer_t *t);

/** @brief Stop, join the thread and free.  NULL-safe. */
void fptimer_destroy(fptimer_t *t);

/** @brief Monotonic clock in milliseconds. */
int64_t fptimer_now_ms(void);

#endif
