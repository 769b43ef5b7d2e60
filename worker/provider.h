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
        OUTCOME_PENDING,         /**< async task still running: poll again
                                      (parse_poll only; retry_after_ms may
                                      hint when) */
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
        const char *thinking_body; /**< JSON object merged only when the
                                        job asks for thinking, or NULL */
        const char *voice;       /**< default voice (tts), or NULL */
        size_t max_body_bytes;   /**< response size cap */
};

/** One part of a multipart/form-data body (Stability, transcriptions).
 *  Everything owned by the request; provider_req_clear frees it. */
struct provider_part {
        char *name;              /**< form field name */
        char *data;              /**< value, or file content */
        size_t len;
        char *filename;          /**< set: a file part */
        char *content_type;      /**< file part's type, or NULL */
};

/** Input media fetched by the worker before build(), for adapters with
 *  PROVIDER_F_NEEDS_INPUT (uploads of the job's audio).  Borrowed. */
struct provider_input {
        const char *data;
        size_t len;
        const char *content_type; /**< as served, may be NULL */
        const char *filename;     /**< last path segment of the URL */
};

/** A request an adapter builds; the httploop sends it. */
struct provider_req {
        char url[2048];
        const char *method;      /**< "POST", "GET", "DELETE" (static) */
        char **headers;          /**< NULL-terminated "Name: value" lines,
                                      owned (provider_req_clear frees) */
        char *body;              /**< owned, may be NULL */
        size_t body_len;
        struct provider_part *parts; /**< n_parts > 0: the body is
                                          multipart/form-data of these */
        size_t n_parts;
        int sink_fd;             /**< > 0: stream the response body into
                                      this file (worker media downloads) */
        int media;               /**< a URL a job gave: connect only to
                                      allowed addresses; 1 = a result
                                      download (follows redirects), 2 = a
                                      completion hook (no redirects) */
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
        int sent;                 /**< the whole request went out (so a
                                       transport error after it leaves the
                                       outcome unknown) */
        char sha256[65];          /**< sink_fd requests: hex SHA-256 of
                                       the body written */
        char **headers;           /**< the final response's header lines,
                                       "name: value", NULL-terminated;
                                       see provider_resp_header() */
};

/** What a successful call produced. All owned; free with
 *  provider_result_clear(). */
struct provider_result {
        char *text;              /**< chat reply, transcript */
        char *finish_reason;
        char *model;             /**< model the provider reports */
        char *usage_json;        /**< provider's usage object, compact JSON */
        int64_t input_tokens;    /**< -1 if unknown */
        int64_t output_tokens;   /**< -1 if unknown */
        /* media */
        char **urls;             /**< result URLs as given (not fetched) */
        size_t n_urls;
        uint8_t *data;           /**< inline media: a binary body, or
                                      decoded base64 (first item) */
        size_t data_len;
        char *content_type;      /**< of data: "audio/mpeg", "image/png" */
        /* usage in the kind's natural unit, for billing */
        double units;            /**< images, seconds of video or audio,
                                      characters; -1 if unknown */
        const char *unit;        /**< static: "image", "second",
                                      "character"; NULL for chat (tokens) */
        /* async */
        char *task_id;           /**< an async submit succeeded: poll it */
        char *provider_cost;     /**< provider-reported cost, decimal
                                      string in its own unit (KIE credits),
                                      or NULL */
};

/** Adapter properties (provider_ops.flags). */
enum {
        PROVIDER_F_ASYNC = 1u << 0,       /**< submit returns a task id;
                                               build_poll/parse_poll finish
                                               it */
        PROVIDER_F_NEEDS_INPUT = 1u << 1, /**< the worker first fetches the
                                               job's input media (stt
                                               audio_url) for build() */
};

/** Why a call failed, and what to do about it. */
struct provider_err {
        enum outcome outcome;
        long http_status;
        int64_t retry_after_ms;  /**< hint from headers or body, -1 none */
        char errstr[256];        /**< reason; never contains a key */
};

/** One API family.  Adapters are pure: no I/O, no state, no clock. */
struct provider_ops {
        const char *name;        /**< adapter name used in config */
        Genq__V1__Kind kind;     /**< the job kind it serves */
        unsigned flags;          /**< PROVIDER_F_* */
        /** Build the request for \p job with API key \p key; \p in is the
         *  fetched input for NEEDS_INPUT adapters, else NULL. @returns 0,
         *  or -1 with errstr (this provider cannot express the job: the
         *  worker moves on to the next provider). */
        int (*build)(const struct provider_cfg *p, const char *key,
                     const Genq__V1__Job *job,
                     const struct provider_input *in,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size);
        /** Classify \p resp to the submit/call; on OUTCOME_SUCCESS fill
         *  \p res (\p res arrives cleared; for ASYNC adapters success
         *  means "accepted": set res->task_id).  \p job is the job
         *  (units such as characters or images may come from it). */
        enum outcome (*parse)(const struct provider_cfg *p,
                              const Genq__V1__Job *job,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err);
        /** ASYNC only: the request that polls \p task_id. */
        int (*build_poll)(const struct provider_cfg *p, const char *key,
                          const char *task_id, struct provider_req *req,
                          char *errstr, size_t errstr_size);
        /** ASYNC only: OUTCOME_PENDING while the task runs; SUCCESS with
         *  \p res filled when it is done; a failure class when it failed
         *  (failed task per the reference) or the poll itself failed
         *  (429/5xx on the poll: retry_later — the poll, not the job). */
        enum outcome (*parse_poll)(const struct provider_cfg *p,
                                   const Genq__V1__Job *job,
                                   const struct provider_resp *resp,
                                   struct provider_result *res,
                                   struct provider_err *err);
        /** ASYNC, optional: the request that cancels \p task_id at the
         *  provider (Replicate), or NULL if the API has none. */
        int (*build_cancel)(const struct provider_cfg *p, const char *key,
                            const char *task_id, struct provider_req *req,
                            char *errstr, size_t errstr_size);
        /** ASYNC, optional: the submit body's member that takes a
         *  callback URL ("callBackUrl", "webhook", "webhook_url"), or
         *  NULL if the provider cannot call back. */
        const char *callback_member;
        /** JSON object merged into the submit with the callback URL
         *  (Replicate's events filter), or NULL. */
        const char *callback_extra;
        /** 1: the callback body is a poll answer (parse_poll reads it:
         *  KIE, Replicate); 0: it only says the task ended (AssemblyAI
         *  sends an id and a status), so the task is polled at once. */
        int callback_is_poll;
};

/** @brief The ops named \p name, or NULL. */
const struct provider_ops *provider_ops_find(const char *name);

/** @brief Names of every adapter, NULL-terminated (for config errors). */
const char *const *provider_ops_names(void);

/** @brief Free what an adapter put in \p req; leaves it zeroed. */
void provider_req_clear(struct provider_req *req);

/** @brief Add a "Name: value" header line to \p req (copied). */
void provider_req_header(struct provider_req *req, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/** @brief Add a multipart part (copies everything; \p filename NULL for a
 *         plain field). */
void provider_req_part(struct provider_req *req, const char *name,
                       const void *data, size_t len, const char *filename,
                       const char *content_type);

/** @brief Add a plain multipart field \p name = string \p value. */
void provider_req_field(struct provider_req *req, const char *name,
                        const char *value);

/** @brief Does \p req have a multipart part named \p name? */
int provider_req_has_part(const struct provider_req *req, const char *name);

/** @brief Value of response header \p name (case-insensitive), or NULL.
 *  @remark borrowed from \p resp. */
const char *provider_resp_header(const struct provider_resp *resp,
                                 const char *name);

/**
 * @brief Seconds of audio in a PCM WAV file (from its header), or -1 if
 *        \p data is not one.  The worker uses it for stt inputs whose
 *        provider reports no duration.  (provider_openai_audio.c)
 */
double provider_openai_audio_wav_seconds(const void *data, size_t len);

/** @brief Take ownership of a copy of \p s as a result URL. */
void provider_result_add_url(struct provider_result *res, const char *s);
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

/* The registry (provider.c): one ops table per API family. */
extern const struct provider_ops provider_openai_chat_ops;      /* chat */
extern const struct provider_ops provider_anthropic_ops;        /* chat */
extern const struct provider_ops provider_gemini_ops;           /* chat */
extern const struct provider_ops provider_cohere_ops;           /* chat */
extern const struct provider_ops provider_openai_images_ops;    /* image */
extern const struct provider_ops provider_sf_images_ops;        /* image */
extern const struct provider_ops provider_stability_ops;        /* image */
extern const struct provider_ops provider_replicate_ops;        /* image */
extern const struct provider_ops provider_hf_image_ops;         /* image */
extern const struct provider_ops provider_kie_image_ops;        /* image */
extern const struct provider_ops provider_kie_video_ops;        /* video */
extern const struct provider_ops provider_sf_video_ops;         /* video */
extern const struct provider_ops provider_zhipu_video_ops;      /* video */
extern const struct provider_ops provider_openai_stt_ops;       /* stt */
extern const struct provider_ops provider_assemblyai_ops;       /* stt */
extern const struct provider_ops provider_gladia_ops;           /* stt */
extern const struct provider_ops provider_hf_whisper_ops;       /* stt */
extern const struct provider_ops provider_openai_tts_ops;       /* tts */
extern const struct provider_ops provider_elevenlabs_ops;       /* tts */

#endif
