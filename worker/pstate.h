/**
 * @file pstate.h
 * @brief What the fallback policy knows about each provider at run time,
 *        in one worker: circuit breaker, recent latency, key pool (calls in
 *        flight, uses, disabled, parked), parked-until for quotas, and the
 *        operator's overrides read from Postgres.
 *
 * Limits that must hold across workers (concurrency, rpm, tpm, free
 * quotas) are not here: they are admitted in Postgres (genq_admit).  What
 * is here is either per-worker by nature (latency, a breaker fed by this
 * worker's calls) or a cache of shared state refreshed every few seconds
 * (overrides, disabled keys).  Event-loop thread only; time passed in.
 */
#ifndef GENQ_PSTATE_H
#define GENQ_PSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "provider.h"
#include "wconf.h"

typedef struct pstate_s pstate_t;

/** @brief State for every provider of \p w (same order).  Names and
 *         key ids are borrowed from \p w (or the one reconfigured to). */
pstate_t *pstate_new(const struct wconf *w);

/** @brief Free it.  NULL-safe. */
void pstate_destroy(pstate_t *ps);

/** @brief A reloaded \p w (same providers and key pools): new breaker
 *         settings (breakers start closed again) and key choices; keys,
 *         parks and overrides are kept. */
void pstate_reconfigure(pstate_t *ps, const struct wconf *w);

/**
 * @brief Replace the shared state with Postgres rows of policy_state, each
 *        "kind|provider|key_id|enabled|priority|reason" (enabled "true",
 *        "false" or ""; priority an integer or ""), read by a query sent
 *        at \p asked_ms: keys this worker disabled after that stay
 *        disabled (their row was not written yet).
 */
void pstate_apply_shared(pstate_t *ps, char *const *rows, size_t n,
                         int64_t asked_ms);

/**
 * @brief Must provider \p p be skipped now?  @returns 1 with the reason
 *        in \p why (operator disabled it, circuit open, parked unless
 *        \p ignore_park: a job waiting for the park's end), else 0.
 */
int pstate_skip(pstate_t *ps, size_t p, int64_t now_ms, int ignore_park,
                char *why, size_t why_size);

/** @brief A usable key of \p p by its key_choice, or -1 (all disabled or
 *         parked). */
int pstate_pick_key(pstate_t *ps, size_t p, int64_t now_ms);

/**
 * @brief A call to \p p with \p key starts.  @returns POLICY_ALLOW,
 *        POLICY_PROBE (this call is the half-open circuit's probe) or
 *        POLICY_DENY (another call is the probe: do not call).
 */
int pstate_call_begin(pstate_t *ps, size_t p, int key, int64_t now_ms);

/**
 * @brief The call ended with outcome \p o after \p latency_ms.  Feeds the
 *        breaker (success, retry_later and fallback_next say something
 *        about the provider's health; the request's own faults do not) and
 *        the latency average; logs circuit transitions with their reason.
 */
void pstate_call_end(pstate_t *ps, size_t p, int key, enum outcome o,
                     int64_t latency_ms, int probe, int64_t now_ms);

/** @brief Take \p key of \p p out of the pool (401/403) until the
 *         shared state says otherwise (an operator re-enables it). */
void pstate_disable_key(pstate_t *ps, size_t p, int key, int64_t now_ms);

/** @brief Leave \p key of \p p alone until \p until_ms (balance gone). */
void pstate_park_key(pstate_t *ps, size_t p, int key, int64_t until_ms);

/** @brief Leave \p p alone until \p until_ms: \p why is logged and
 *         given by pstate_skip (free quota used up). */
void pstate_park(pstate_t *ps, size_t p, int64_t now_ms, int64_t until_ms,
                 const char *why);

/**
 * @name Free quota taken ahead (providers whose only shared limit is a
 *       free quota).  Asking Postgres for every call would put a round
 *       trip and a row lock on the hottest path (the default chat route
 *       starts with such providers), so a worker takes a small chunk of
 *       the quota at once (atomically, like any admission) and spends it
 *       locally for a few seconds; what is left is given back.  A unit
 *       is never spent twice; a worker holds at most a chunk (2% of the
 *       quota) plus what the calls waiting for it asked for.
 * @{
 */
/** @brief Take \p units from \p p's chunk.  @returns 1, or 0 if the
 *         chunk is short (or expired): ask Postgres. */
int pstate_pool_take(pstate_t *ps, size_t p, double units, int64_t now_ms);
/** @brief Add \p units granted with \p key, usable until \p until_ms. */
void pstate_pool_add(pstate_t *ps, size_t p, int key, double units,
                     int64_t until_ms);
/** @brief Is a chunk being asked for (1), and set that (\p on >= 0). */
int pstate_pool_refilling(pstate_t *ps, size_t p, int on);
/** @brief Calls waiting for the chunk in flight add their units here;
 *         the next chunk asked for covers them.  \p take: read and zero. */
double pstate_pool_demand(pstate_t *ps, size_t p, double units, int take);
/** @brief Postgres refused a chunk: until \p until_ms calls ask for just
 *         their own units (set with until_ms > 0; query with 0). */
int pstate_pool_exact(pstate_t *ps, size_t p, int64_t now_ms,
                      int64_t until_ms);
/** @brief Charge (or credit, if negative) \p delta units: a call used
 *         more (or fewer) tokens than estimated. */
void pstate_pool_charge(pstate_t *ps, size_t p, double delta);
/** @brief If \p p's chunk expired at \p now_ms (or \p all), empty it.
 *  @returns the units to give back to Postgres (> 0), or 0; \p key is
 *  the key it was granted with. */
double pstate_pool_expire(pstate_t *ps, size_t p, int64_t now_ms, int all,
                          int *key);
/** @} */

/** @brief Recent average latency of \p p in ms, or -1 if unknown. */
double pstate_latency_ms(const pstate_t *ps, size_t p);

/** @brief The operator's priority for \p p, or INT32_MIN if none. */
int32_t pstate_priority(const pstate_t *ps, size_t p);

/** @brief Providers whose circuit is open now (for the stats line). */
size_t pstate_open_circuits(const pstate_t *ps, int64_t now_ms);

#endif
