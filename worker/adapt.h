/**
 * @file adapt.h
 * @brief What the provider adapters share: URL and header building,
 *        configured JSON merged into requests, {status, marker, value,
 *        outcome} rule tables for error bodies, errstr texts with
 *        key-shaped tokens redacted, and a few small codecs.
 *
 * Pure like the adapters: no I/O, no state, no clock.  JSON helpers are
 * fatal on allocation failure (STYLE rule 12).  Strings handed back are
 * borrowed unless a comment says otherwise.
 */
#ifndef GENQ_ADAPT_H
#define GENQ_ADAPT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "provider.h"

struct adapt_redact;

/*
 * Building requests.
 */

/**
 * @brief req->url = base_url without trailing slashes, then each of the
 *        NULL-terminated string arguments as they are.
 * @returns 0, or -1 with errstr: "provider <name> has no base_url", or
 *          "provider <name>: <what> too long" (\p what: "base_url" or
 *          "URL", as the adapter words it).
 */
int adapt_url(struct provider_req *req, const struct provider_cfg *p,
              const char *what, char *errstr, size_t errstr_size, ...)
        __attribute__((sentinel));

/**
 * @brief Append \p s percent-encoded (RFC 3986 unreserved characters
 *        kept, and '/' if \p keep_slash) at \p *pos of \p buf, and
 *        NUL-terminate.  @returns 0, or -1 if it does not fit.
 */
int adapt_pct_encode(char *buf, size_t size, size_t *pos, const char *s,
                     int keep_slash);

/**
 * @brief Add the header line "<auth><key>" ("Authorization: Bearer ",
 *        "x-api-key: ") when there is a key (local servers take none).
 * @returns 0, or -1 with errstr if \p key holds a CR or LF (it would
 *          split the header).
 */
int adapt_auth(struct provider_req *req, const char *auth, const char *key,
               char *errstr, size_t errstr_size);

/**
 * @brief adapt_auth(), then "Content-Type: application/json" if
 *        \p has_body, then "Accept: application/json".
 */
int adapt_json_headers(struct provider_req *req, const char *auth,
                       const char *key, int has_body, char *errstr,
                       size_t errstr_size);

/** @brief req->body and body_len = \p body serialised with \p flags.
 *  @remark \p body stays the caller's. */
void adapt_req_json(struct provider_req *req, const json_t *body,
                    size_t flags);

/**
 * @brief The job's model \p hint if it names one, else p->model.
 * @returns it, or NULL with errstr ("no model: the job names none ...").
 */
const char *adapt_model(const struct provider_cfg *p, const char *hint,
                        char *errstr, size_t errstr_size);

/** @brief \p job's chat request if it is a chat job, else NULL with
 *         errstr. */
const Genq__V1__ChatRequest *adapt_chat_job(const Genq__V1__Job *job,
                                            char *errstr,
                                            size_t errstr_size);

/** @brief \p job's image request if it is an image job with a prompt,
 *         else NULL with errstr. */
const Genq__V1__ImageRequest *adapt_image_job(const Genq__V1__Job *job,
                                              char *errstr,
                                              size_t errstr_size);

/** @brief Length of a name segment ([A-Za-z0-9][A-Za-z0-9._-]*) at \p s:
 *         0 unless it starts with a letter or digit (never "." or ".."),
 *         so it is safe in a URL path. */
size_t adapt_segment_len(const char *s);

/** @brief Is \p id a non-empty task id of at most \p max_len letters,
 *         digits and \p chars (it goes into a URL path)? */
int adapt_id_ok(const char *id, size_t max_len, const char *chars);

/*
 * JSON.
 */

/** @brief Set \p k to \p v, taking \p v; fatal on allocation failure. */
void adapt_jset(json_t *obj, const char *k, json_t *v);

/** @brief Set \p k to string \p s.  @returns -1 if \p s is not valid
 *         UTF-8 (nothing set). */
int adapt_jset_str(json_t *obj, const char *k, const char *s);

/** @brief String member \p k of \p obj, or NULL (any \p obj). */
const char *adapt_jstr(const json_t *obj, const char *k);

/** @brief Number member \p k of \p obj as an integer, or -1 (usage
 *         token counts). */
int64_t adapt_jint(const json_t *obj, const char *k);

/** @brief \p v serialised with \p flags; fatal on allocation failure.
 *  @remark the returned string is owned by the caller. */
char *adapt_jdump(const json_t *v, size_t flags);

/** How a configured object joins a request body. */
enum adapt_merge {
        ADAPT_MERGE_TOP,  /**< json_object_update_missing(): top keys */
        ADAPT_MERGE_DEEP, /**< nested objects merged key by key too */
};

/**
 * @brief Parse configured JSON \p text (\p what names it in errors:
 *        "extra_body").  @returns 0 with \p *out a new object, or NULL
 *        if \p text is empty; -1 with errstr if it is not a JSON object.
 */
int adapt_load_obj(const struct provider_cfg *p, const char *what,
                   const char *text, json_t **out, char *errstr,
                   size_t errstr_size);

/**
 * @brief Merge configured JSON object \p text into \p body as defaults:
 *        a key the adapter already set is never overridden.
 * @returns 0, or -1 with errstr as adapt_load_obj().
 */
int adapt_merge_obj(const struct provider_cfg *p, const char *what,
                    const char *text, json_t *body, enum adapt_merge how,
                    char *errstr, size_t errstr_size);

/**
 * @brief The texts \p text_of finds in the items of array \p arr (NULL:
 *        skip the item), joined; "" if \p arr is not an array.
 * @remark the returned string is owned by the caller.
 */
char *adapt_join_text(const json_t *arr,
                      const char *(*text_of)(const json_t *item));

/*
 * Reading responses.
 */

/** @brief Start a parse: success, \p resp's status and retry hint, no
 *         errstr. */
void adapt_err_init(const struct provider_resp *resp,
                    struct provider_err *err);

/** @brief \p resp's body parsed (any JSON value), or NULL.
 *  @remark a new reference. */
json_t *adapt_body_json(const struct provider_resp *resp);

/** @brief The JSON object of a complete (not truncated) body, or NULL.
 *  @remark a new reference. */
json_t *adapt_ok_json(const struct provider_resp *resp);

/** An adapter's classifier for an error answer (any status). */
typedef enum outcome(adapt_error_fn)(const struct provider_resp *resp,
                                     struct provider_err *err);

/** An adapter's reader for a 2xx answer; \p error classifies one that
 *  turns out to be an error body.  \p job may be NULL. */
typedef enum outcome(adapt_ok_fn)(const Genq__V1__Job *job,
                                  const struct provider_resp *resp,
                                  struct provider_result *res,
                                  struct provider_err *err,
                                  adapt_error_fn *error);

/**
 * @brief The usual parse(): adapt_err_init(), then a transport failure
 *        goes to provider_classify_generic(), a 2xx answer to \p ok, any
 *        other status to \p error.  @returns the outcome.
 */
enum outcome adapt_parse(const Genq__V1__Job *job,
                         const struct provider_resp *resp,
                         struct provider_result *res, struct provider_err *err,
                         adapt_ok_fn *ok, adapt_error_fn *error);

/**
 * @brief adapt_ok_fn for text-to-speech: the Content-Type decides.
 *        audio/ types and application/octet-stream are the result (the
 *        body, units = characters of the job's text); JSON is an error
 *        body for \p error even with a 2xx status; anything else, or an
 *        empty body, is retry_later; a truncated one goes to
 *        provider_classify_generic().
 */
enum outcome adapt_speech_ok(const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err, adapt_error_fn *error);

/*
 * Rule tables: one row of the reference's section 12 per line, walked
 * top to bottom, first match wins.
 */

/** Markers every table uses; an adapter numbers its own from
 *  ADAPT_M_OWN. */
enum {
        ADAPT_M_END = 0, /**< table terminator */
        ADAPT_M_ANY,     /**< status alone decides */
        ADAPT_M_OWN,     /**< the adapter's first marker */
};

struct adapt_rule {
        long status;          /**< HTTP status (or envelope code), 0 =
                                   any */
        int marker;           /**< what to inspect: ADAPT_M_* or the
                                   adapter's own */
        const char *val;      /**< '|'-separated alternatives */
        enum outcome outcome; /**< the class */
};

/** Does row \p r's marker (never END or ANY) match the body in \p ctx? */
typedef int(adapt_match_fn)(const struct adapt_rule *r, const void *ctx);

/**
 * @brief The first row of \p table whose status matches \p status and
 *        whose marker is ADAPT_M_ANY or passes \p match (may be NULL).
 * @returns it, or NULL.
 */
const struct adapt_rule *adapt_rules_match(const struct adapt_rule *table,
                                           long status,
                                           adapt_match_fn *match,
                                           const void *ctx);

/** @brief adapt_match_fn for tables whose only own marker is "the
 *         message (\p msg, a const char *) contains one of val, any
 *         case". */
int adapt_match_msg(const struct adapt_rule *r, const void *msg);

/**
 * @brief The shared status-only row for an error body that is not JSON
 *        (a proxy, CDN or WAF page, or plain text), or NULL: 401
 *        key_disabled, 402 quota_exhausted, 403 and 404 fallback_next
 *        (never disable a key on a WAF or region page; a 404 page means
 *        this URL cannot serve the call, not that the job is bad), 429
 *        retry_later.
 */
const struct adapt_rule *adapt_nonjson_rule(long status);

/** @brief provider_classify_generic() (status and errstr), then \p r's
 *         outcome if there is a row.  @returns err->outcome. */
enum outcome adapt_classify(const struct provider_resp *resp,
                            const struct adapt_rule *r,
                            struct provider_err *err);

/** @brief Does one of the '|'-separated \p alts equal \p s?  (NULL \p s:
 *         no.) */
int adapt_alt_eq(const char *alts, const char *s);

/** @brief Does one of the '|'-separated \p alts occur in \p s, any case?
 *         (NULL \p s: no.) */
int adapt_alt_has(const char *alts, const char *s);

/*
 * The OpenAI-style error envelope: {"error":{"code","type","message"}},
 * {"error":"text"}, or the fields bare ({"code":20012,"message":...}).
 */

/** Markers for adapt_oaierr_match(). */
enum {
        ADAPT_OAI_CODE = ADAPT_M_OWN, /**< code equals one of val */
        ADAPT_OAI_CODE_PREFIX,        /**< code starts with one of val */
        ADAPT_OAI_TYPE,               /**< type equals one of val */
        ADAPT_OAI_MSG,                /**< message contains one of val
                                           (any case) */
        ADAPT_OAI_OWN,                /**< the adapter's first marker */
};

/** The fields of such a body that the tables look at (borrowed from the
 *  parsed JSON, or from codebuf: do not copy the struct). */
struct adapt_oaierr {
        int wrapped;              /**< fields came from an "error" object */
        int code_is_int;          /**< code was a JSON integer */
        const char *code;         /**< code as text: "1113", "402", "" */
        char codebuf[24];         /**< holds an integer code's text */
        const char *type;         /**< type, or NULL */
        const char *message;      /**< message, else detail, or NULL */
        const char *limit_source; /**< OpenRouter metadata.limit_source */
};

/** adapt_oaierr_read() flag: a "msg" member stands in for the message. */
#define ADAPT_OAIERR_MSG 0x1

/** @brief Fill \p eb from a parsed body (any JSON value, or NULL). */
void adapt_oaierr_read(struct adapt_oaierr *eb, const json_t *root,
                       unsigned flags);

/** @brief adapt_match_fn for the ADAPT_OAI_* markers (\p eb: a struct
 *         adapt_oaierr). */
int adapt_oaierr_match(const struct adapt_rule *r, const void *eb);

/** SiliconFlow's rows (reference 1.2 and 12) for its bare
 *  {"code":int,"message":...,"data":null} bodies, the same on every
 *  OpenAI-compatible endpoint it serves.  ADAPT_OAI_* markers. */
extern const struct adapt_rule adapt_siliconflow_rules[];

/** @brief errstr "<status> <type>/<code>: <message>" with \p keys
 *         redacted. */
void adapt_oaierr_errstr(const struct adapt_oaierr *eb, long status,
                         const struct adapt_redact *keys,
                         struct provider_err *err);

/*
 * errstr texts.
 */

/** What a provider's keys look like, for adapt_redact(). */
struct adapt_redact {
        const char *const *prefixes; /**< NULL-terminated: "sk-", "r8_" */
        const char *chars;           /**< token characters besides letters
                                          and digits: "-_" */
        int token_start;             /**< a prefix counts only where a
                                          token starts */
        int high_bytes;              /**< bytes >= 0x80 are token
                                          characters */
        size_t min_len;              /**< shorten when at least this many
                                          token characters (>= 3) follow
                                          the prefix */
};

/** @brief Shorten every key-shaped token of \p s to its prefix and "…"
 *         (U+2026), in place, one prefix after the other. */
void adapt_redact(char *s, const struct adapt_redact *keys);

/**
 * @brief err->errstr = the printf of \p fmt, \p keys redacted (if not
 *        NULL), cut at a UTF-8 character boundary (errstr ends up in a
 *        UTF-8 database column).
 */
void adapt_errstr(struct provider_err *err, const struct adapt_redact *keys,
                  const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/** @brief adapt_errstr() without redaction, and err->outcome = \p o.
 *  @returns \p o. */
enum outcome adapt_fail(struct provider_err *err, enum outcome o,
                        const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * Small codecs.
 */

/**
 * @brief Decode base64 (standard or URL alphabet; padding and whitespace
 *        ignored).  @returns a new buffer of \p *outlen bytes, or NULL if
 *        \p s is not base64.
 * @remark the returned buffer is owned by the caller.
 */
uint8_t *adapt_b64_decode(const char *s, size_t len, size_t *outlen);

/** @brief The media type of Content-Type \p ct without parameters,
 *         lower-cased, in \p buf ("" if none).  @returns \p buf. */
const char *adapt_media_type(const char *ct, char *buf, size_t bufsz);

/** @brief UTF-8 code points of \p s (NULL: 0), for per-character units. */
double adapt_utf8_chars(const char *s);

/**
 * @brief Seconds of audio in a RIFF/WAVE file: data chunk bytes / the fmt
 *        chunk's byte rate (a data size past the end of \p data, as
 *        streamed files write it, counts the bytes present).
 * @returns seconds, or -1 if \p data is not a WAV file this can read.
 */
double adapt_wav_seconds(const void *data, size_t len);

#endif
