/**
 * @file fpstep.h
 * @brief One scripted fault step: what to do with one provider request.
 *
 * A step is parsed and validated once, when a test posts a script, and is
 * immutable afterwards.  The provider's script holds one reference; each
 * request that consumes the step takes another, so a reset while the
 * request is being delayed frees nothing the request still reads.
 *
 * JSON form (every member optional, unknown members are an error):
 *   status int 100..599    answer this status with "body" (default "")
 *   body string            the exact body for "status"
 *   content_type string    default application/json
 *   headers {name: value}  added to whatever answer is sent
 *   latency_ms int         delay before answering (replaces the default)
 *   hang true              never answer (until the client or server quits)
 *   malformed true         200 with a body that is not JSON
 *   truncate true          the normal answer with its body cut in half
 *   error string           a named fault of the family ("rate_limit", ...)
 * Precedence: hang, error, status, malformed, normal; then truncate and
 * headers apply to the answer chosen.
 */
#ifndef GENQ_FPSTEP_H
#define GENQ_FPSTEP_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fakeprov.h"

#define FPSTEP_MAX_HDRS 8
#define FPSTEP_MAX_LATENCY_MS (3600 * 1000)

struct fp_step {
        atomic_int refcnt;                   /**< see file comment */
        unsigned status;                     /**< 0 = not given */
        char *body;                          /**< owned, with status */
        size_t body_len;                     /**< bytes in body */
        char *content_type;                  /**< owned or NULL */
        struct fp_hdr hdrs[FPSTEP_MAX_HDRS]; /**< owned strings */
        size_t nhdrs;                        /**< used entries of hdrs */
        int64_t latency_ms;                  /**< -1 = not given */
        int hang;                            /**< never answer */
        int malformed;                       /**< 200 + invalid JSON */
        int truncate;                        /**< cut the body in half */
        const struct fp_errdef *error;       /**< named fault or NULL */
};

/**
 * @brief Parse and validate one step object for a provider of \p fam.
 * @returns a step with one reference, or NULL with errstr filled.
 */
struct fp_step *fpstep_new(const json_t *j, const struct fp_family *fam,
                           char *errstr, size_t errstr_size);

/** @brief Take one more reference. @returns \p s. */
struct fp_step *fpstep_ref(struct fp_step *s);

/** @brief Drop one reference; the last frees.  NULL-safe. */
void fpstep_unref(struct fp_step *s);

#endif
