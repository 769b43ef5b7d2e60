/**
 * @file hooks.h
 * @brief Completion hooks: a job that names a callback_url gets its
 *        completion event POSTed there as JSON, signed, and retried with
 *        backoff until it answers 2xx (or hooks.max_tries run out).
 *
 * Signature header, as Stripe-style receivers expect:
 *   X-Genq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
 *                     "<t>.<body>")>
 * so a receiver checks the MAC and rejects old timestamps (replays).
 * Every delivery attempt is recorded in `hook_deliveries`.
 *
 * Deliveries live in this worker's memory: a worker that dies with one
 * pending loses it (the event on `genq.events` and the job row remain).
 * Runs on the event-loop thread only; the httploop and pgsink are
 * borrowed.
 */
#ifndef GENQ_HOOKS_H
#define GENQ_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "httploop.h"
#include "pgsink.h"

typedef struct hooks_s hooks_t;

struct hooks_cfg {
        const char *secret;    /**< signing secret; NULL = hooks off */
        int max_tries;
        long timeout_ms;
};

/** @brief A hook sender.  @remark \p hl and \p ps must outlive it. */
hooks_t *hooks_new(const struct hooks_cfg *cfg, httploop_t *hl,
                   pgsink_t *ps);

/** @brief Free pending deliveries.  In-flight ones must have completed
 *         (hooks_busy() == 0).  NULL-safe. */
void hooks_destroy(hooks_t *h);

/**
 * @brief Queue \p body (a JSON object, compact) for \p url, first try now.
 *        Without a secret the hook is dropped with a warning.
 */
void hooks_add(hooks_t *h, const char *job_id, const char *url,
               const char *body, int64_t now_us);

/** @brief Send the deliveries that are due at \p now_us. */
void hooks_tick(hooks_t *h, int64_t now_us);

/** @brief Deliveries with a request in flight (shutdown waits for them). */
size_t hooks_busy(const hooks_t *h);

/** @brief Deliveries waiting for a retry. */
size_t hooks_waiting(const hooks_t *h);

/** @brief X-Genq-Signature value for \p body at \p t into \p out. */
void hooks_sign(const char *secret, int64_t t, const char *body,
                char *out, size_t out_size);

#endif
