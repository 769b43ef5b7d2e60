/**
 * @file provider.h
 * @brief Provider adapters: one static ops table per API family.
 *
 * An adapter is pure: it turns a job into an HTTP request, and an HTTP
 * response (or transport failure) into a result or one of the five outcome
 * classes of shared/provider-api-reference.md, reading status *and* body.
 * It does no I/O and keeps no state, so it is unit-tested without a network
 * and runs on the event-loop thread without locks.
 */
#ifndef GENQ_PROVIDER_H
#define GENQ_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "genq.pb-c.h"

/** What the policy does next (reference, "Outcome classes"). */
enum outcome {
        OUTCOME_SUCCESS = 0,
        OUTCOME_RETRY_LATER,     /**< same provider and key, after backoff */
        OUTCOME_FALLBACK_NEXT,   /**< next provider, no key penalty */
        OUTCOME_FATAL_JOB,       /**< the job itself is bad: fail it */
        OUTCOME_KEY_DISABLED,    /**< credential invalid: drop the key */
        OUTCOME_QUOTA_EXHAUSTED, /**< balance/quota gone: park key/provider */
};

/** @brief "success", "retry_later", ... (the attempts.outcome values). */
const char *outcome_name(enum outcome o);

/** Adapter-facing provider settings (filled from the worker config). */
struct provider_cfg {
        const char *name;        /**< "openai", "groq", ... */
        const char *adapter;     /**< ops name, "openai_chat" */
        const char *base_url;    /**< e.g. https://api.openai.com/v1 */
        const char *model;       /**< default model */
        const char *extra_body;  /**< JSON object merged into requests, or
                                      NULL (seeds: thinking, enable_...) */
        size_t max_body_bytes;   /**< response size cap */
};

/** A request an adapter builds; the httploop sends it. */
struct provider_req {
        char url[1024];
        const char *method;      /**< "POST" or "GET" (static string) */
        char **headers;          /**< NULL-terminated "Name: value" lines,
                                      owned (provider_req_clear frees) */
        char *body;              /**< owned, may be NULL */
        size_t body_len;
};

/** A response the httploop received, borrowed by the adapter. */
struct provider_resp {
        long status;              /**< HTTP status, 0 if none */
        int transport_err;        /**< CURLcode, 0 if a response came */
        const char *transport_msg;/**< curl's error text */
        int timed_out;            /**< transport failure was a timeout */
        const char *content_type; /**< may be NULL */
        const char *body;         /**< NUL-terminated copy of the body */
        size_t body_len;
        int truncated;            /**< body exceeded max_body_bytes */
        int64_t retry_after_ms;   /**< from retry-after-ms / retry-after
                                       headers, -1 if none */
};

/** What a successful call produced. All strings owned; free with
 *  provider_result_clear(). */
struct provider_result {
        char *text;              /**< chat reply, transcript */
        char *finish_reason;
        char *model;             /**< model the provider reports */
        char *usage_json;        /**< provider's usage object, compact JSON */
        int64_t input_tokens;    /**< -1 if unknown */
        int64_t output_tokens;   /**< -1 if unknown */
};

/** Why a call failed, and what to do about it. */
struct provider_err {
        enum outcome outcome;
        long http_status;
        int64_t retry_after_ms;  /**< hint from headers or body, -1 none */
        char errstr[256];        /**< reason; never contains a key */
};

/** One API family. */
struct provider_ops {
        const char *name;        /**< adapter name used in config */
        Genq__V1__Kind kind;     /**< the job kind it serves */
        /** Build the request for \p job with API key \p key. @returns 0,
         *  or -1 with errstr (the job cannot be expressed: fatal_job). */
        int (*build)(const struct provider_cfg *p, const char *key,
                     const Genq__V1__Job *job, struct provider_req *req,
                     char *errstr, size_t errstr_size);
        /** Classify \p resp; on OUTCOME_SUCCESS fill \p res. */
        enum outcome (*parse)(const struct provider_cfg *p,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err);
};

/** @brief The ops named \p name, or NULL. */
const struct provider_ops *provider_ops_find(const char *name);

/** @brief Names of every adapter, NULL-terminated (for config errors). */
const char *const *provider_ops_names(void);

/** @brief Free what an adapter put in \p req; leaves it zeroed. */
void provider_req_clear(struct provider_req *req);
/** @brief Free \p res's strings; leaves it zeroed (tokens -1). */
void provider_result_clear(struct provider_result *res);

/**
 * @brief Shared rules (reference section 12, last rows and "Statuses not
 *        listed"): transport errors and timeouts, 502/503/504 with a
 *        non-JSON body, any other 5xx -> retry_later; other 4xx ->
 *        fatal_job.  Adapters call this when their own table has no row.
 */
enum outcome provider_classify_generic(const struct provider_resp *resp,
                                       struct provider_err *err);

/**
 * @brief Parse a Retry-After value: delta seconds, or an HTTP date
 *        relative to \p now_unix.  @returns milliseconds or -1.
 */
int64_t provider_parse_retry_after(const char *v, int64_t now_unix);

/**
 * @brief Find "try again in 5.289s" / "in 20s" / "in 150ms" in a message.
 *        @returns milliseconds or -1.
 */
int64_t provider_parse_try_again(const char *msg);

extern const struct provider_ops provider_openai_chat_ops;

#endif
