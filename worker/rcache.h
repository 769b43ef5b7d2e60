/**
 * @file rcache.h
 * @brief The response cache's key: which jobs may be answered from the
 *        cache, and under what key.  Pure (the lookups and stores are
 *        pgsink ops; see schema/0008_response_cache.sql).
 */
#ifndef GENQ_RCACHE_H
#define GENQ_RCACHE_H

#include "genq.pb-c.h"

#define RCACHE_KEY_LEN 64

/**
 * @brief The cache key of \p job into \p out (64 hex digits), if the job
 *        is deterministic: a chat job with temperature 0.  The key covers
 *        the tenant, the kind, the route or pinned providers and the whole
 *        request (messages, model hint, max_tokens, thinking).
 * @returns 0, or -1 if the job must not be cached.
 */
int rcache_key(const Genq__V1__Job *job, char out[RCACHE_KEY_LEN + 1]);

#endif
