/**
 * @file fpprov.h
 * @brief One served provider: its keys, default latency, fault script,
 *        counters and the ring of recorded requests.
 *
 * Every function may be called from any server thread; the state is
 * guarded by one mutex per provider, held only for short copies.
 */
#ifndef GENQ_FPPROV_H
#define GENQ_FPPROV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "fakeprov.h"
#include "fpstep.h"

#define FPPROV_RING 256  /**< recorded requests kept per provider */

/** What fpprov_begin() decides for one request. */
struct fpprov_ticket {
        uint64_t seq;          /**< 1-based request number since reset */
        int auth_ok;           /**< the key is accepted */
        struct fp_step *step;  /**< owned reference, or NULL */
        int64_t latency_ms;    /**< the configured default latency */
};

/**
 * @brief Create provider \p name of family \p fam accepting \p keys.
 * @remark copies \p name and \p keys; they are also the reset defaults.
 */
fpprov_t *fpprov_new(const char *name, const struct fp_family *fam,
                     char *const *keys, size_t nkeys);

/** @brief Free the provider and all it owns.  NULL-safe. */
void fpprov_destroy(fpprov_t *p);

/** @brief Borrowed name. */
const char *fpprov_name(const fpprov_t *p);

/** @brief The family served. */
const struct fp_family *fpprov_family(const fpprov_t *p);

/** @brief Find \p name (\p len bytes, not NUL-terminated) in \p v. */
fpprov_t *fpprov_find(fpprov_t *const *v, size_t n, const char *name,
                      size_t len);

/**
 * @brief A request arrives: count it, make it in flight, check \p key and,
 *        if \p routed, consume the next script step.
 * @remark the caller owns t->step and must call fpprov_end() once.
 */
void fpprov_begin(fpprov_t *p, const char *key, int routed,
                  struct fpprov_ticket *t);

/** @brief The request's answer is about to be sent (\p status), or it was
 *         abandoned (\p status 0): it is no longer in flight. */
void fpprov_end(fpprov_t *p, unsigned status);

/** @brief Keep \p rec (one serialised JSON object, malloc'ed) in the ring.
 *  @remark takes ownership of \p rec.  Records are kept as text so that
 *          no json_t is ever shared between threads. */
void fpprov_record(fpprov_t *p, char *rec);

/** @brief Apply a POST /_fake/<p>/script body. @returns 0 or -1+errstr. */
int fpprov_script(fpprov_t *p, const json_t *req, char *errstr,
                  size_t errstr_size);

/** @brief Apply a POST /_fake/<p>/config body. @returns 0 or -1+errstr. */
int fpprov_config(fpprov_t *p, const json_t *req, char *errstr,
                  size_t errstr_size);

/** @brief Back to start-up state: no script, default config, zero
 *         counters (peak = current in-flight), empty ring. */
void fpprov_reset(fpprov_t *p);

/** @brief New stats object {requests, by_status, inflight, ...}. */
json_t *fpprov_stats(fpprov_t *p);

/** @brief The last \p last recorded requests as a JSON array text,
 *         oldest first.  @remark the returned string is owned by the
 *         caller (free()); its length is stored in \p lenp. */
char *fpprov_requests(fpprov_t *p, size_t last, size_t *lenp);

#endif
