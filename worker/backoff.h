/**
 * @file backoff.h
 * @brief Retry delays: exponential backoff with full jitter, bounded, and
 *        provider hints (Retry-After) honoured.  Pure: randomness and time
 *        are passed in, so tests need no sleeps.
 */
#ifndef GENQ_BACKOFF_H
#define GENQ_BACKOFF_H

#include <stdint.h>

struct backoff_cfg {
        int64_t base_ms;   /**< first ceiling, e.g. 200 */
        int64_t cap_ms;    /**< largest ceiling, e.g. 20000 */
        int64_t hint_max_ms; /**< longer provider hints mean "not now":
                                  the caller falls back instead */
};

/**
 * @brief Delay before retry number \p attempt (1 = first retry).
 *
 * Without a hint: uniform in [0, min(cap, base * 2^(attempt-1))] (full
 * jitter, so many workers that failed together do not retry together).
 * With a hint (\p hint_ms >= 0): the hint plus up to 10% jitter.
 *
 * @param rnd a uniformly random 32-bit value.
 * @returns the delay in ms, or -1 if the hint exceeds hint_max_ms.
 */
int64_t backoff_delay_ms(const struct backoff_cfg *cfg, int attempt,
                         int64_t hint_ms, uint32_t rnd);

/**
 * @brief Check that a retry after \p delay_ms still lands before
 *        \p deadline_us (0 = no deadline).  A retry that would not is no
 *        retry at all: the caller moves on to the next provider now.
 * @returns \p delay_ms, or -1 if it does not fit.
 */
int64_t backoff_fit_deadline(int64_t delay_ms, int64_t now_us,
                             int64_t deadline_us);

#endif
