/*
 * provider_openai_images: text-to-image through a JSON "images/generations"
 * endpoint, in two dialects:
 *
 *   "openai_images"       OpenAI (reference 5.1): {model, prompt, n, size,
 *                         output_format}; answer data[] of b64_json (first
 *                         image decoded into res->data) or url; usage
 *                         tokens for gpt-image-*; OpenAI error envelope.
 *   "siliconflow_images"  SiliconFlow (5.2): {model, prompt,
 *                         negative_prompt, image_size, batch_size, image};
 *                         answer images[].url; {"code","message","data"}
 *                         error envelope.
 *
 * Both are synchronous; units are the number of images returned.
 *
 * CLASSIFYING ERRORS
 *
 * As in provider_openai.c: one {status, marker, outcome} table per
 * dialect (section 12 rows plus the provider's own section), walked top to
 * bottom, first match wins; a body that is not JSON has a short status-only
 * table (never disable a key on a WAF page); then
 * provider_classify_generic() decides by status.
 */
#include "provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xmem.h"

#define GEN_PATH "/images/generations"
#define OAI_MAX_N 10
#define SF_MAX_BATCH 4

/*
 * Shared request helpers.
 */

static const Genq__V1__ImageRequest *image_of(const Genq__V1__Job *job,
                                              char *errstr,
                                              size_t errstr_size)
{
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_IMAGE || !job->image) {
                snprintf(errstr, errstr_size, "not an image job");
                return NULL;
        }
        if (!*job->image->prompt) {
                snprintf(errstr, errstr_size, "image job has no prompt");
                return NULL;
        }
        return job->image;
}

static const char *model_of(const struct provider_cfg *p,
                            const Genq__V1__ImageRequest *im, char *errstr,
                            size_t errstr_size)
{
        const char *m = *im->model ? im->model : p->model;

        if (!m || !*m)
                snprintf(errstr, errstr_size,
                         "no model: the job names none and provider %s "
                         "has no default",
                         p->name);
        return m && *m ? m : NULL;
}

static int build_url(const struct provider_cfg *p, struct provider_req *req,
                     char *errstr, size_t errstr_size)
{
        size_t n;
        int r;

        if (!p->base_url || !*p->base_url) {
                snprintf(errstr, errstr_size, "provider %s has no base_url",
                         p->name);
                return -1;
        }
        n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
                n--;
        r = snprintf(req->url, sizeof(req->url), "%.*s%s", (int)n,
                     p->base_url, GEN_PATH);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: base_url too long",
                         p->name);
                return -1;
        }
        return 0;
}

static int build_headers(const char *key, struct provider_req *req,
                         char *errstr, size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (key && *key)
                provider_req_header(req, "Authorization: Bearer %s", key);
        provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
        return 0;
}

static void jset(json_t *obj, const char *k, json_t *v)
{
        if (!v || json_object_set_new(obj, k, v) == -1)
                fatal("out of memory building JSON");
}

/** Set \p k to string \p s. @returns -1 if \p s is not valid UTF-8. */
static int jset_str(json_t *obj, const char *k, const char *s)
{
        json_t *v = json_string(s);

        if (!v)
                return -1;
        jset(obj, k, v);
        return 0;
}

/** extra_body keys are defaults: a key the adapter set is never replaced. */
static int merge_extra(const struct provider_cfg *p, json_t *body,
                       char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *extra;

        if (!p->extra_body || !*p->extra_body)
                return 0;
        extra = json_loads(p->extra_body, 0, &jerr);
        if (!json_is_object(extra)) {
                snprintf(errstr, errstr_size,
                         "provider %s: extra_body is not a JSON object: %s",
                         p->name, extra ? "wrong type" : jerr.text);
                json_decref(extra);
                return -1;
        }
        if (json_object_update_missing(body, extra) == -1)
                fatal("out of memory building JSON");
        json_decref(extra);
        return 0;
}

/** URL, headers and the serialised \p body (consumed) into \p req. */
static int finish_req(const struct provider_cfg *p, const char *key,
                      json_t *body, struct provider_req *req, char *errstr,
                      size_t errstr_size)
{
        if (build_url(p, req, errstr, errstr_size) == -1 ||
            build_headers(key, req, errstr, errstr_size) == -1) {
                json_decref(body);
                provider_req_clear(req);
                return -1;
        }
        req->method = "POST";
        req->body = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!req->body)
                fatal("out of memory serialising JSON");
        req->body_len = strlen(req->body);
        return 0;
}

/** A size for an aspect ratio, per model family. */
struct ratio_size {
        const char *model_prefix;
        const char *ratio;
        const char *size;
};

static const char *size_for_ratio(const struct ratio_size *tab, size_t n,
                                  const char *model, const char *ratio)
{
        for (size_t i = 0; i < n; i++)
                if (!strncmp(model, tab[i].model_prefix,
                             strlen(tab[i].model_prefix)) &&
                    !strcmp(ratio, tab[i].ratio))
                        return tab[i].size;
        return NULL;
}

/*
 * OpenAI request.
 */

/* Sizes each model accepts, for jobs that give only an aspect ratio;
 * a ratio not listed leaves the size to the provider's default. */
static const struct ratio_size oai_sizes[] = {
        {"gpt-image", "1:1", "1024x1024"}, {"gpt-image", "3:2", "1536x1024"},
        {"gpt-image", "2:3", "1024x1536"}, {"dall-e-3", "1:1", "1024x1024"},
        {"dall-e-3", "16:9", "1792x1024"}, {"dall-e-3", "9:16", "1024x1792"},
        {"dall-e-2", "1:1", "1024x1024"},
};

/** n per request: dall-e-3 makes one image, the others up to 10. */
static int max_n(const char *model)
{
        return strncmp(model, "dall-e-3", 8) ? OAI_MAX_N : 1;
}

static int is_gpt_image(const char *model)
{
        return !strncmp(model, "gpt-image", 9);
}

static json_t *oai_body(const struct provider_cfg *p,
                        const Genq__V1__ImageRequest *im, char *errstr,
                        size_t errstr_size)
{
        const char *model = model_of(p, im, errstr, errstr_size);
        const char *size = im->size;
        json_t *body;

        if (!model)
                return NULL;
        if (im->count > max_n(model)) {
                snprintf(errstr, errstr_size,
                         "count %d is over %s's limit of %d per request",
                         im->count, model, max_n(model));
                return NULL;
        }
        if (!*size && *im->aspect_ratio)
                size = size_for_ratio(oai_sizes,
                                      sizeof(oai_sizes) / sizeof(oai_sizes[0]),
                                      model, im->aspect_ratio);
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        if (jset_str(body, "model", model) == -1 ||
            jset_str(body, "prompt", im->prompt) == -1 ||
            (size && *size && jset_str(body, "size", size) == -1) ||
            (*im->output_format && is_gpt_image(model) &&
             jset_str(body, "output_format", im->output_format) == -1)) {
                snprintf(errstr, errstr_size, "image job is not valid UTF-8");
                goto err_free_body;
        }
        jset(body, "n", json_integer(im->count > 0 ? im->count : 1));
        if (merge_extra(p, body, errstr, errstr_size) == -1)
                goto err_free_body;
        return body;

err_free_body:
        json_decref(body);
        return NULL;
}

static int oai_build(const struct provider_cfg *p, const char *key,
                     const Genq__V1__Job *job, const struct provider_input *in,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
{
        const Genq__V1__ImageRequest *im;
        json_t *body;

        memset(req, 0, sizeof(*req));
        im = image_of(job, errstr, errstr_size);
        if (!im)
                return -1;
        if (im->n_input_image_urls) {
                /* images/edits takes uploaded files, not URLs */
                snprintf(errstr, errstr_size,
                         "image edits from URLs are not supported by %s",
                         p->name);
                return -1;
        }
        body = oai_body(p, im, errstr, errstr_size);
        if (!body)
                return -1;
        return finish_req(p, key, body, req, errstr, errstr_size);
}

/*
 * SiliconFlow request.
 */

/* image_size values SiliconFlow lists, for jobs with only a ratio. */
static const struct ratio_size sf_sizes[] = {
        {"", "1:1", "1024x1024"}, {"", "3:4", "768x1024"},
        {"", "9:16", "720x1280"}, {"", "1:2", "720x1440"},
};

static int sf_image_fields(const Genq__V1__ImageRequest *im, json_t *body)
{
        const char *size = im->size;

        if (!*size && *im->aspect_ratio)
                size = size_for_ratio(sf_sizes,
                                      sizeof(sf_sizes) / sizeof(sf_sizes[0]),
                                      "", im->aspect_ratio);
        if (size && *size && jset_str(body, "image_size", size) == -1)
                return -1;
        if (*im->negative_prompt &&
            jset_str(body, "negative_prompt", im->negative_prompt) == -1)
                return -1;
        if (im->n_input_image_urls &&
            jset_str(body, "image", im->input_image_urls[0]) == -1)
                return -1;
        jset(body, "batch_size", json_integer(im->count > 0 ? im->count : 1));
        return 0;
}

static json_t *sf_body(const struct provider_cfg *p,
                       const Genq__V1__ImageRequest *im, char *errstr,
                       size_t errstr_size)
{
        const char *model = model_of(p, im, errstr, errstr_size);
        json_t *body;

        if (!model)
                return NULL;
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        if (jset_str(body, "model", model) == -1 ||
            jset_str(body, "prompt", im->prompt) == -1 ||
            sf_image_fields(im, body) == -1) {
                snprintf(errstr, errstr_size, "image job is not valid UTF-8");
                json_decref(body);
                return NULL;
        }
        if (merge_extra(p, body, errstr, errstr_size) == -1) {
                json_decref(body);
                return NULL;
        }
        return body;
}

static int sf_build(const struct provider_cfg *p, const char *key,
                    const Genq__V1__Job *job, const struct provider_input *in,
                    struct provider_req *req, char *errstr,
                    size_t errstr_size)
{
        const Genq__V1__ImageRequest *im;
        json_t *body;

        memset(req, 0, sizeof(*req));
        im = image_of(job, errstr, errstr_size);
        if (!im)
                return -1;
        if (im->count > SF_MAX_BATCH || im->n_input_image_urls > 1) {
                snprintf(errstr, errstr_size,
                         "%s takes at most %d images and one input image",
                         p->name, SF_MAX_BATCH);
                return -1;
        }
        body = sf_body(p, im, errstr, errstr_size);
        if (!body)
                return -1;
        return finish_req(p, key, body, req, errstr, errstr_size);
}

/*
 * Classifying error bodies.
 */

/** The fields of an error body the tables look at; borrowed strings. */
struct errbody {
        const char *code;  /**< code as text, "" if none */
        char codebuf[24];  /**< holds an integer code's text */
        const char *type;  /**< error.type, or NULL */
        const char *message;
};

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_CODE,    /**< code equals one of val */
        M_TYPE,    /**< type equals one of val */
        M_MSG,     /**< message contains one of val (any case) */
};

/** One row of section 12: first row whose status and marker match wins. */
struct rule {
        long status;        /**< HTTP status, 0 = any */
        enum marker marker;
        const char *val;    /**< '|'-separated alternatives */
        enum outcome outcome;
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* OpenAI (1.1 and 5.1).  gpt-image-* says "moderation_blocked" where
 * dall-e says "content_policy_violation"; image billing caps come as 400
 * "billing_hard_limit_reached". */
static const struct rule oai_rules[] = {
        {400, M_CODE, "content_policy_violation|moderation_blocked", FATAL},
        {400, M_MSG, "safety system", FATAL},
        {400, M_CODE, "billing_hard_limit_reached", QUOTA},
        {401, M_ANY, NULL, KEYDIS},
        {403, M_CODE, "unsupported_country_region_territory", FALLBACK},
        {403, M_MSG, "country, region, or territory", FALLBACK},
        {403, M_ANY, NULL, KEYDIS},
        {404, M_CODE, "model_not_found", FALLBACK},
        {404, M_MSG, "model", FALLBACK},
        {429, M_TYPE, "insufficient_quota", QUOTA},
        {429, M_CODE,
         "insufficient_quota|credit_balance_exhausted|"
         "organization_spend_limit_exceeded|project_spend_limit_exceeded|"
         "organization_usage_limit_exceeded",
         QUOTA},
        {429, M_ANY, NULL, RETRY},
        {402, M_ANY, NULL, QUOTA},
        {500, M_ANY, NULL, RETRY},
        {503, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* SiliconFlow (1.2 SiliconFlow and 5.2). */
static const struct rule sf_rules[] = {
        {400, M_CODE, "20012", FALLBACK},
        {400, M_ANY, NULL, FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {403, M_CODE, "30011|30001", QUOTA},
        {403, M_MSG, "balance is insufficient", QUOTA},
        {403, M_ANY, NULL, KEYDIS},
        {429, M_ANY, NULL, RETRY},
        {503, M_ANY, NULL, RETRY},
        {504, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* No JSON body: a proxy, CDN or WAF answered (or SiliconFlow's plain-text
 * 401).  Only the status is left. */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/** Does one of the '|'-separated \p alts equal (or occur in) \p s? */
static int alt_any(const char *alts, const char *s, int contains)
{
        char needle[80];
        size_t n;

        if (!s)
                return 0;
        for (;;) {
                n = strcspn(alts, "|");
                if (n < sizeof(needle)) {
                        memcpy(needle, alts, n);
                        needle[n] = '\0';
                        if (contains ? strcasestr(s, needle) != NULL
                                     : !strcmp(s, needle))
                                return 1;
                }
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static int marker_match(const struct rule *r, const struct errbody *eb)
{
        switch (r->marker) {
        case M_END:
                return 0;
        case M_ANY:
                return 1;
        case M_CODE:
                return alt_any(r->val, eb->code, 0);
        case M_TYPE:
                return alt_any(r->val, eb->type, 0);
        case M_MSG:
                return alt_any(r->val, eb->message, 1);
        }
        return 0;
}

static const struct rule *rules_match(const struct rule *rules,
                                      const struct errbody *eb, long status)
{
        for (const struct rule *r = rules; r->marker != M_END; r++)
                if ((!r->status || r->status == status) &&
                    marker_match(r, eb))
                        return r;
        return NULL;
}

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

/** code, type and message of \p obj (an "error" object or a bare body). */
static void errbody_fields(struct errbody *eb, const json_t *obj)
{
        const json_t *code = json_object_get(obj, "code");

        if (json_is_integer(code)) {
                snprintf(eb->codebuf, sizeof(eb->codebuf),
                         "%" JSON_INTEGER_FORMAT, json_integer_value(code));
                eb->code = eb->codebuf;
        } else if (json_is_string(code)) {
                eb->code = json_string_value(code);
        }
        eb->type = jstr(obj, "type");
        eb->message = jstr(obj, "message");
        if (!eb->message)
                eb->message = jstr(obj, "detail");
}

static void errbody_read(struct errbody *eb, const json_t *root)
{
        const json_t *e = json_object_get(root, "error");

        memset(eb, 0, sizeof(*eb));
        eb->code = "";
        if (json_is_object(e))
                errbody_fields(eb, e);
        else if (json_is_string(e))
                eb->message = json_string_value(e);
        else
                errbody_fields(eb, root);
}

static int token_char(unsigned char c)
{
        return isalnum(c) || c == '-' || c == '_' || c == '*' || c >= 0x80;
}

/** Shorten every "sk-xxxxxx..." token in \p s to "sk-…" (OpenAI's 401
 *  quotes the key, masked, but never trust that). */
static void redact_keys(char *s)
{
        static const char ell[] = "\xe2\x80\xa6"; /* U+2026 */
        size_t i = 0, n;

        while (s[i]) {
                if ((i && token_char((unsigned char)s[i - 1])) ||
                    strncmp(s + i, "sk-", 3)) {
                        i++;
                        continue;
                }
                for (n = 3; token_char((unsigned char)s[i + n]); n++)
                        ;
                if (n > 8) {
                        memcpy(s + i + 3, ell, sizeof(ell) - 1);
                        memmove(s + i + 3 + sizeof(ell) - 1, s + i + n,
                                strlen(s + i + n) + 1);
                        n = 3 + sizeof(ell) - 1;
                }
                i += n;
        }
}

/** Copy \p src into \p dst, cut at a UTF-8 character boundary. */
static void copy_utf8(char *dst, size_t dstsz, const char *src)
{
        size_t n = strlen(src);

        if (n >= dstsz) {
                n = dstsz - 1;
                while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
                        n--;
        }
        memcpy(dst, src, n);
        dst[n] = '\0';
}

/** "<status> <type>/<code>: <message>", key-shaped tokens redacted. */
static void errbody_errstr(const struct errbody *eb, long status,
                           struct provider_err *err)
{
        const char *type = eb->type ? eb->type : "";
        const char *sep = *type && *eb->code ? "/" : "";
        const char *sp = *type || *eb->code ? " " : "";
        char buf[1024];

        snprintf(buf, sizeof(buf), "%ld%s%s%s%s: %s", status, sp, type, sep,
                 eb->code, eb->message ? eb->message : "(no message)");
        redact_keys(buf);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

/** Classify a non-2xx response by \p rules (JSON body) or the status. */
static enum outcome parse_error(const struct rule *rules,
                                const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct rule *r;
        struct errbody eb;
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        errbody_read(&eb, root);
        r = rules_match(json_is_object(root) ? rules : nonjson_rules, &eb,
                        resp->status);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        if (json_is_object(root))
                errbody_errstr(&eb, resp->status, err);
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(eb.message);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

static enum outcome retry_200(struct provider_err *err, const char *why)
{
        snprintf(err->errstr, sizeof(err->errstr), "200: %s", why);
        err->outcome = OUTCOME_RETRY_LATER;
        return err->outcome;
}

static int b64_value(int c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

/**
 * Decode base64 (standard or URL alphabet, padding and whitespace
 * ignored) into a new buffer.  @returns it, or NULL if \p s is not base64.
 */
static uint8_t *b64_decode(const char *s, size_t len, size_t *outlen)
{
        uint8_t *out = xmalloc(len / 4 * 3 + 3);
        uint32_t acc = 0;
        size_t n = 0;
        int bits = 0, v;

        for (size_t i = 0; i < len; i++) {
                if (s[i] == '=' || isspace((unsigned char)s[i]))
                        continue;
                v = b64_value((unsigned char)s[i]);
                if (v < 0) {
                        free(out);
                        return NULL;
                }
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (uint8_t)(acc >> bits);
                }
        }
        *outlen = n;
        return out;
}

static const struct {
        const char *format;
        const char *content_type;
} formats[] = {
        {"png", "image/png"},
        {"jpeg", "image/jpeg"},
        {"jpg", "image/jpeg"},
        {"webp", "image/webp"},
};

/** The content type of \p format; PNG (OpenAI's default) if unknown. */
static const char *format_ctype(const char *format)
{
        for (size_t i = 0; format && i < sizeof(formats) / sizeof(formats[0]);
             i++)
                if (!strcmp(format, formats[i].format))
                        return formats[i].content_type;
        return "image/png";
}

/** Decode the first b64_json image into res->data. @returns 0 or -1. */
static int oai_take_b64(const json_t *b64, const char *format,
                        struct provider_result *res)
{
        if (res->data)
                return 0; /* first image only */
        res->data = b64_decode(json_string_value(b64), json_string_length(b64),
                               &res->data_len);
        if (!res->data || !res->data_len)
                return -1;
        res->content_type = xstrdup(format_ctype(format));
        return 0;
}

static int64_t usage_tokens(const json_t *usage, const char *k)
{
        const json_t *v = json_object_get(usage, k);

        return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static void oai_usage(const json_t *root, struct provider_result *res)
{
        const json_t *usage = json_object_get(root, "usage");

        if (!json_is_object(usage))
                return;
        res->input_tokens = usage_tokens(usage, "input_tokens");
        res->output_tokens = usage_tokens(usage, "output_tokens");
        res->usage_json = json_dumps(usage, JSON_COMPACT);
        if (!res->usage_json)
                fatal("out of memory serialising JSON");
}

/** data[]: b64_json (first decoded) or url per image. */
static enum outcome oai_images(const json_t *root, struct provider_result *res,
                               struct provider_err *err)
{
        const char *format = jstr(root, "output_format");
        const json_t *item, *b64;
        size_t i, n = 0;

        json_array_foreach(json_object_get(root, "data"), i, item) {
                b64 = json_object_get(item, "b64_json");
                if (json_is_string(b64)) {
                        if (oai_take_b64(b64, format, res) == -1)
                                return retry_200(err, "b64_json is not "
                                                      "base64");
                        n++;
                } else if (jstr(item, "url")) {
                        provider_result_add_url(res, jstr(item, "url"));
                        n++;
                }
        }
        if (!n)
                return retry_200(err, "no images in the response");
        res->units = (double)n;
        res->unit = "image";
        oai_usage(root, res);
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

/** images[].url (SiliconFlow). */
static enum outcome sf_images(const json_t *root, struct provider_result *res,
                              struct provider_err *err)
{
        const json_t *item;
        size_t i;

        json_array_foreach(json_object_get(root, "images"), i, item)
                if (jstr(item, "url"))
                        provider_result_add_url(res, jstr(item, "url"));
        if (!res->n_urls)
                return retry_200(err, "no images in the response");
        res->units = (double)res->n_urls;
        res->unit = "image";
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

typedef enum outcome(images_fn)(const json_t *root,
                                struct provider_result *res,
                                struct provider_err *err);

static enum outcome parse_with(const struct rule *rules, images_fn *images,
                               const struct provider_resp *resp,
                               struct provider_result *res,
                               struct provider_err *err)
{
        json_t *root = NULL;
        enum outcome o;

        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status < 200 || resp->status >= 300)
                return parse_error(rules, resp, err);
        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
        o = images(root, res, err);
        json_decref(root);
        if (o != OUTCOME_SUCCESS)
                provider_result_clear(res);
        return o;
}

static enum outcome oai_parse(const struct provider_cfg *p,
                              const Genq__V1__Job *job,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err)
{
        return parse_with(oai_rules, oai_images, resp, res, err);
}

static enum outcome sf_parse(const struct provider_cfg *p,
                             const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err)
{
        return parse_with(sf_rules, sf_images, resp, res, err);
}

const struct provider_ops provider_openai_images_ops = {
        .name = "openai_images",
        .kind = GENQ__V1__KIND__KIND_IMAGE,
        .flags = 0,
        .build = oai_build,
        .parse = oai_parse,
};

const struct provider_ops provider_sf_images_ops = {
        .name = "siliconflow_images",
        .kind = GENQ__V1__KIND__KIND_IMAGE,
        .flags = 0,
        .build = sf_build,
        .parse = sf_parse,
};
