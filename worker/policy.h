/**
 * @file policy.h
 * @brief The fallback policy's decisions (DESIGN section 4): a circuit
 *        breaker and a latency estimate per provider, the order in which
 *        a route's providers are tried, and which key of a pool to use.
 *
 * Pure: no I/O, no globals, no locking.  Time is passed in as monotonic
 * milliseconds and randomness as a caller-owned policy_rand() state, so
 * tests drive both by hand.  The value types are embedded in the caller's
 * per-provider state and owned by the engine thread.
 */
#ifndef GENQ_POLICY_H
#define GENQ_POLICY_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief The next pseudo-random value of \p state (splitmix64: any seed,
 *        zero included, is a good one).  Advances \p *state.
 */
uint64_t policy_rand(uint64_t *state);

/*
 * Circuit breaker.
 */

/* Defaults, used for config fields left at 0 (or set below it). */
#define POLICY_BREAKER_THRESHOLD 0.10
#define POLICY_BREAKER_MIN_SAMPLES 20
#define POLICY_BREAKER_WINDOW_MS 60000
#define POLICY_BREAKER_COOLDOWN_MS 30000
#define POLICY_BREAKER_PROBE_TIMEOUT_MS 300000

/** Time buckets of the sliding window: memory stays constant. */
#define POLICY_BREAKER_BUCKETS 10

struct policy_breaker_cfg {
        double threshold;     /**< opens above this error rate (0.10);
                                   1 or more never opens */
        int64_t min_samples;  /**< calls in the window before the rate
                                   counts (20): one error never opens */
        int64_t window_ms;    /**< sliding window (60000) */
        int64_t cooldown_ms;  /**< open this long before a probe (30000) */
        int64_t probe_timeout_ms; /**< a probe neither recorded nor
                                       released by then is taken as lost
                                       and another goes out (300000, the
                                       longest request timeout) */
};

enum policy_state {
        POLICY_CLOSED = 0,    /**< calls go through, outcomes counted */
        POLICY_OPEN,          /**< calls denied until the cooldown ends */
        POLICY_HALF_OPEN,     /**< one probe at a time; its outcome decides */
};

/** What policy_breaker_allow() says about one call. */
enum policy_verdict {
        POLICY_ALLOW = 0,     /**< closed: call */
        POLICY_PROBE,         /**< half-open: call; this is the probe */
        POLICY_DENY,          /**< skip this provider (circuit open) */
};

/** One time bucket of the window. */
struct policy_bucket {
        int64_t epoch;        /**< now_ms / bucket_ms it counts for */
        uint32_t ok;          /**< calls that went well */
        uint32_t err;         /**< calls that said the provider is unwell */
};

/**
 * Per-provider breaker.  The window is POLICY_BREAKER_BUCKETS buckets of
 * window_ms / POLICY_BREAKER_BUCKETS each, so an outcome is forgotten
 * between 9/10 and 10/10 of window_ms after it was recorded.
 */
struct policy_breaker {
        struct policy_breaker_cfg cfg; /**< defaults filled in */
        int64_t bucket_ms;    /**< width of one bucket, >= 1 */
        int state;            /**< enum policy_state */
        int probing;          /**< half-open: a probe is out */
        int64_t since_ms;     /**< open: when it opened; half-open: when
                                   the probe went out */
        struct policy_bucket ring[POLICY_BREAKER_BUCKETS]; /**< the window */
};

/**
 * @brief Start closed with an empty window.  Cannot fail.
 * @param cfg copied; NULL or fields <= 0 mean the defaults above.
 */
void policy_breaker_init(struct policy_breaker *b,
                         const struct policy_breaker_cfg *cfg);

/**
 * @brief What policy_breaker_allow() would answer, without taking the
 *        probe: for deciding whether a candidate is usable before the
 *        route is ordered.
 * @returns enum policy_verdict.
 */
int policy_breaker_peek(const struct policy_breaker *b, int64_t now_ms);

/**
 * @brief May a call go to this provider now?  Call it right before the
 *        call is made: POLICY_PROBE hands the one probe to the caller.
 *
 * Closed: POLICY_ALLOW.  Open: POLICY_DENY until cooldown_ms after it
 * opened, then it turns half-open and returns POLICY_PROBE (that is the
 * transition to log).  Half-open: POLICY_DENY while the probe is out.
 *
 * @returns enum policy_verdict.
 * @remark a POLICY_PROBE caller must report the probe with
 *         policy_breaker_record() or policy_breaker_release().
 */
int policy_breaker_allow(struct policy_breaker *b, int64_t now_ms);

/**
 * @brief Count one call's outcome (\p ok nonzero: it went well).
 *
 * Record only outcomes that say something about the provider's health:
 * success, and the retry_later / fallback_next classes (timeouts, 5xx,
 * 429, connection errors).  A request's own fault (400/422), a disabled
 * key (401/403), an exhausted quota or a job cancelled mid-call are not
 * the provider's health: do not record them (release a probe instead).
 *
 * Closed: opens once the window holds min_samples calls and the error
 * rate is above threshold.  Half-open: any outcome is the probe's
 * verdict: success closes it with an empty window, failure re-opens it
 * for another cooldown.  Open: ignored (late calls begun before it
 * opened; the window is cleared when it closes anyway).
 *
 * @returns the new enum policy_state if this changed it, else -1.  Use
 *          policy_breaker_counts() to log why it opened.
 */
int policy_breaker_record(struct policy_breaker *b, int64_t now_ms, int ok);

/**
 * @brief The probe's call ended with an outcome that is not recorded (see
 *        policy_breaker_record()): let the next call be the probe.
 */
void policy_breaker_release(struct policy_breaker *b);

/** @brief enum policy_state as it stands (open is not turned half-open
 *         here: policy_breaker_allow() does that). */
int policy_breaker_state(const struct policy_breaker *b);

/** @brief "closed", "open", "half_open", or "?" for another value. */
const char *policy_breaker_state_name(int state);

/** @brief Calls and errors in the window at \p now_ms. */
void policy_breaker_counts(const struct policy_breaker *b, int64_t now_ms,
                           int64_t *calls, int64_t *errors);

/*
 * Latency.
 */

#define POLICY_LATENCY_ALPHA 0.2

/** Exponentially weighted moving average of call latency. */
struct policy_latency {
        double alpha;         /**< weight of the newest sample, (0, 1] */
        double ewma_ms;       /**< meaningless while samples == 0 */
        int64_t samples;      /**< samples seen */
};

/** @brief No samples yet.  \p alpha outside (0, 1]: POLICY_LATENCY_ALPHA. */
void policy_latency_init(struct policy_latency *l, double alpha);

/** @brief Add one call's latency; the first sample is taken as it is.
 *         Negative values count as 0. */
void policy_latency_add(struct policy_latency *l, double ms);

/** @brief The estimate in ms, or -1 while unknown (no sample yet). */
double policy_latency_ms(const struct policy_latency *l);

/*
 * Route ordering.
 */

enum policy_strategy {
        POLICY_PRIORITY = 0,  /**< in the route's order */
        POLICY_WEIGHTED,      /**< random by weight, then the rest */
        POLICY_LATENCY,       /**< fastest known first */
};

/** One provider of a route, as the engine sees it now. */
struct policy_cand {
        int64_t weight;       /**< weighted: share; <= 0 = only after the
                                   positive ones; capped at INT32_MAX */
        double latency_ms;    /**< latency: estimate, < 0 unknown */
        int usable;           /**< 0: never returned (disabled, retired,
                                   breaker denies, context too small...) */
};

/**
 * @brief The usable candidates in the order to try them.
 *
 * POLICY_PRIORITY: as given.  POLICY_WEIGHTED: a random permutation
 * without replacement, each pick proportional to weight among those left,
 * so fallback still has an order; weight <= 0 ones follow, as given.
 * POLICY_LATENCY: unknown latency first, as given (they need a sample),
 * then ascending (ties as given); then with probability \p explore one of
 * the others, chosen uniformly, is moved to the front, so estimates of
 * the slower ones stay fresh.  An unknown \p s orders as priority.
 *
 * @param explore latency only, in [0, 1], e.g. 0.05.
 * @param rng advanced; unused (may be NULL) for priority, and for latency
 *        with \p explore 0.
 * @param out room for \p n indexes into \p c.
 * @returns how many were written to \p out.
 */
size_t policy_order(enum policy_strategy s, const struct policy_cand *c,
                    size_t n, double explore, uint64_t *rng, size_t *out);

/** @brief "priority", "weighted", "latency" to enum policy_strategy.
 *  @returns it, or -1 for an unknown name or NULL. */
int policy_strategy_parse(const char *name);

/*
 * Key pools.
 */

enum policy_key_choice {
        POLICY_KEYS_ROUND_ROBIN = 0, /**< in turn, from a cursor */
        POLICY_KEYS_LEAST_USED,      /**< fewest in flight, then fewest uses */
};

/** One key of a provider's pool, as the engine counts it. */
struct policy_key {
        int disabled;         /**< rejected (401/403): never picked */
        int64_t inflight;     /**< calls using it now */
        int64_t uses;         /**< calls made with it */
};

/**
 * @brief The key to use for the next call.
 *
 * Round robin: the first enabled key from \p *cursor on (wrapping), and
 * \p *cursor moves past it.  Least used: fewest in flight, then fewest
 * uses, then the lowest index; \p cursor is not used (may be NULL).
 * Another \p how picks as least used.
 *
 * @returns its index, or \p n if every key is disabled (or \p n is 0).
 */
size_t policy_pick_key(const struct policy_key *k, size_t n,
                       enum policy_key_choice how, size_t *cursor);

/** @brief "round_robin", "least_used" to enum policy_key_choice.
 *  @returns it, or -1 for an unknown name or NULL. */
int policy_key_choice_parse(const char *name);

#endif
