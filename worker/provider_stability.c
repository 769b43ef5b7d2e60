/*
 * provider_stability: Stability AI v2beta Stable Image ("stability_image",
 * reference 5.3).
 *
 *   POST <base>/{core|ultra|sd3}
 *        (base: https://api.stability.ai/v2beta/stable-image/generate)
 *   Authorization: Bearer <key>
 *   Accept: image/ANY      (ANY = the "*" wildcard; C comments cannot spell it)
 *   multipart/form-data: prompt, negative_prompt, aspect_ratio,
 *                        output_format, model (sd3.5-* only)
 *
 * The body is multipart even for text-to-image.  The model names the path
 * segment: "core", "ultra" and "sd3" are used as they are; an "sd3.5-large"
 * style model goes to /sd3 with a "model" field.  A job's model hint is
 * used when it is one of these, else the provider's default applies (the
 * hint names another provider's model).  extra_body keys with scalar
 * values become extra form fields (seed, style_preset, ...), never
 * replacing a field the adapter set.
 *
 * The answer is the image bytes (Accept: image/ANY), but a JSON body
 * {"image": base64, "finish_reason"} is read too, and errors are JSON on
 * the same endpoint: the adapter branches on Content-Type.  A
 * finish-reason of CONTENT_FILTERED (header or field) means a blurred
 * image came back: fatal_job.  Errors {"id","name","errors":[...]} are
 * classified by the table of section 5.3 / 12.
 */
#include "provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "xmem.h"

#define FILTERED "CONTENT_FILTERED"

/*
 * Building the request.
 */

/** A Stability model: its path segment and whether it is sent as the
 *  "model" field.  Rows are prefixes, tried in order. */
static const struct {
        const char *prefix;
        int exact;         /**< 1: the name must equal prefix */
        const char *path;
        int model_field;
} models[] = {
        {"core", 1, "core", 0},
        {"ultra", 1, "ultra", 0},
        {"sd3", 1, "sd3", 0},
        {"sd3", 0, "sd3", 1}, /* sd3.5-large, sd3.5-large-turbo, ... */
};
#define N_MODELS (sizeof(models) / sizeof(models[0]))

/** The row of \p name, or -1. */
static int model_row(const char *name)
{
        for (size_t i = 0; name && i < N_MODELS; i++)
                if (models[i].exact ? !strcmp(name, models[i].prefix)
                                    : !strncmp(name, models[i].prefix,
                                               strlen(models[i].prefix)))
                        return (int)i;
        return -1;
}

/** Aspect ratios the API accepts. */
static const char *const ratios[] = {"16:9", "1:1", "21:9", "2:3", "3:2",
                                     "4:5", "5:4", "9:16", "9:21"};

static int ratio_known(const char *r)
{
        for (size_t i = 0; i < sizeof(ratios) / sizeof(ratios[0]); i++)
                if (!strcmp(r, ratios[i]))
                        return 1;
        return 0;
}

/** "1024x576" -> "16:9" in \p out if that ratio is accepted, else "". */
static void ratio_of_size(const char *size, char *out, size_t outsz)
{
        unsigned long w, h, a, b, t;
        char tail;

        out[0] = '\0';
        if (sscanf(size, "%lux%lu%c", &w, &h, &tail) != 2 || !w || !h)
                return;
        for (a = w, b = h; b; t = a % b, a = b, b = t)
                ;
        snprintf(out, outsz, "%lu:%lu", w / a, h / a);
        if (!ratio_known(out))
                out[0] = '\0';
}

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
        if (job->image->count > 1 || job->image->n_input_image_urls) {
                /* one image per call; image-to-image needs an upload */
                snprintf(errstr, errstr_size,
                         "Stability makes one image from a prompt only");
                return NULL;
        }
        return job->image;
}

/** The model for the job: its hint if Stability knows it, else p->model. */
static const char *model_of(const struct provider_cfg *p,
                            const Genq__V1__ImageRequest *im, char *errstr,
                            size_t errstr_size)
{
        if (model_row(im->model) >= 0)
                return im->model;
        if (model_row(p->model) >= 0)
                return p->model;
        snprintf(errstr, errstr_size,
                 "provider %s: model \"%s\" is not core, ultra or sd3*",
                 p->name, p->model ? p->model : "");
        return NULL;
}

static int build_url(const struct provider_cfg *p, const char *path,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
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
        r = snprintf(req->url, sizeof(req->url), "%.*s/%s", (int)n,
                     p->base_url, path);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: base_url too long",
                         p->name);
                return -1;
        }
        return 0;
}

static void add_field(struct provider_req *req, const char *name,
                      const char *value)
{
        provider_req_part(req, name, value, strlen(value), NULL, NULL);
}

static int has_field(const struct provider_req *req, const char *name)
{
        for (size_t i = 0; i < req->n_parts; i++)
                if (!strcmp(req->parts[i].name, name))
                        return 1;
        return 0;
}

static void add_job_fields(const Genq__V1__ImageRequest *im,
                           const char *model, struct provider_req *req)
{
        char ratio[32];

        add_field(req, "prompt", im->prompt);
        if (*im->negative_prompt)
                add_field(req, "negative_prompt", im->negative_prompt);
        if (*im->aspect_ratio)
                snprintf(ratio, sizeof(ratio), "%s", im->aspect_ratio);
        else
                ratio_of_size(im->size, ratio, sizeof(ratio));
        if (*ratio)
                add_field(req, "aspect_ratio", ratio);
        if (*im->output_format)
                add_field(req, "output_format", im->output_format);
        if (models[model_row(model)].model_field)
                add_field(req, "model", model);
}

/** A scalar JSON value as form text, in \p out. @returns -1 if not one. */
static int scalar_text(const json_t *v, char *out, size_t outsz)
{
        if (json_is_string(v))
                snprintf(out, outsz, "%s", json_string_value(v));
        else if (json_is_integer(v))
                snprintf(out, outsz, "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        else if (json_is_real(v))
                snprintf(out, outsz, "%.17g", json_real_value(v));
        else if (json_is_boolean(v))
                snprintf(out, outsz, "%s", json_is_true(v) ? "true" : "false");
        else
                return -1;
        return 0;
}

/** extra_body's scalar members as form fields the job did not set. */
static int add_extra(const struct provider_cfg *p, struct provider_req *req,
                     char *errstr, size_t errstr_size)
{
        const char *k;
        char text[1024];
        json_t *extra, *v;
        int r = 0;

        if (!p->extra_body || !*p->extra_body)
                return 0;
        extra = json_loads(p->extra_body, 0, NULL);
        if (!json_is_object(extra))
                r = -1;
        json_object_foreach(extra, k, v) {
                if (scalar_text(v, text, sizeof(text)) == -1)
                        r = -1;
                else if (!has_field(req, k))
                        add_field(req, k, text);
        }
        json_decref(extra);
        if (r == -1)
                snprintf(errstr, errstr_size,
                         "provider %s: extra_body must be a JSON object of "
                         "scalars",
                         p->name);
        return r;
}

static int build(const struct provider_cfg *p, const char *key,
                 const Genq__V1__Job *job, const struct provider_input *in,
                 struct provider_req *req, char *errstr, size_t errstr_size)
{
        const Genq__V1__ImageRequest *im;
        const char *model;

        memset(req, 0, sizeof(*req));
        im = image_of(job, errstr, errstr_size);
        if (!im)
                return -1;
        model = model_of(p, im, errstr, errstr_size);
        if (!model)
                return -1;
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (build_url(p, models[model_row(model)].path, req, errstr,
                      errstr_size) == -1)
                return -1;
        req->method = "POST";
        if (key && *key)
                provider_req_header(req, "Authorization: Bearer %s", key);
        provider_req_header(req, "Accept: image/*");
        add_job_fields(im, model, req);
        if (add_extra(p, req, errstr, errstr_size) == -1) {
                provider_req_clear(req);
                return -1;
        }
        return 0;
}

/*
 * Classifying error bodies: {"id", "name", "errors": [...]}.
 */

struct errbody {
        const char *name;    /**< "content_moderation", or NULL */
        const char *message; /**< errors[0] (or message), or NULL */
};

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_NAME,    /**< name equals val */
        M_MSG,     /**< message contains one of val (any case) */
};

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

/* Section 5.3 and 12; 404 (a mode or engine this account or base URL does
 * not serve) is the "unknown model" row every other provider has. */
static const struct rule rules[] = {
        {402, M_ANY, NULL, QUOTA},
        {403, M_NAME, "content_moderation", FATAL},
        {0, M_MSG, "insufficient credits|insufficient balance", QUOTA},
        {400, M_ANY, NULL, FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {404, M_ANY, NULL, FALLBACK},
        {413, M_ANY, NULL, FATAL},
        {422, M_ANY, NULL, FATAL},
        {429, M_ANY, NULL, RETRY},
        {500, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

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

static const struct rule *rules_match(const struct rule *tab,
                                      const struct errbody *eb, long status)
{
        for (const struct rule *r = tab; r->marker != M_END; r++) {
                if (r->status && r->status != status)
                        continue;
                if (r->marker == M_ANY ||
                    (r->marker == M_NAME && alt_any(r->val, eb->name, 0)) ||
                    (r->marker == M_MSG && alt_any(r->val, eb->message, 1)))
                        return r;
        }
        return NULL;
}

static void errbody_read(struct errbody *eb, const json_t *root)
{
        eb->name = json_string_value(json_object_get(root, "name"));
        eb->message = json_string_value(
                json_array_get(json_object_get(root, "errors"), 0));
        if (!eb->message)
                eb->message =
                        json_string_value(json_object_get(root, "message"));
}

static int token_char(unsigned char c)
{
        return isalnum(c) || c == '-' || c == '_' || c >= 0x80;
}

/** Shorten "sk-xxxxxx..." tokens (Stability keys) to "sk-…". */
static void redact_keys(char *s)
{
        static const char ell[] = "\xe2\x80\xa6";
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

/** "<status> <name>: <errors[0]>", key-shaped tokens redacted. */
static void errbody_errstr(const struct errbody *eb, long status,
                           struct provider_err *err)
{
        char buf[1024];

        snprintf(buf, sizeof(buf), "%ld%s%s: %s", status, eb->name ? " " : "",
                 eb->name ? eb->name : "",
                 eb->message ? eb->message : "(no message)");
        redact_keys(buf);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        struct errbody eb = {NULL, NULL};
        const struct rule *r;
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        if (json_is_object(root))
                errbody_read(&eb, root);
        r = rules_match(json_is_object(root) ? rules : nonjson_rules, &eb,
                        resp->status);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        if (json_is_object(root))
                errbody_errstr(&eb, resp->status, err);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

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

/** Decode base64 into a new buffer, or NULL if \p s is not base64. */
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
        {"webp", "image/webp"},
};

static const char *format_ctype(const char *format)
{
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
                if (!strcmp(format, formats[i].format))
                        return formats[i].content_type;
        return "image/png"; /* the API's default */
}

/** Does \p ctype (maybe with parameters) start with \p prefix? */
static int ctype_is(const char *ctype, const char *prefix)
{
        return ctype && !strncasecmp(ctype, prefix, strlen(prefix));
}

static enum outcome filtered(struct provider_err *err)
{
        snprintf(err->errstr, sizeof(err->errstr),
                 "200: finish_reason " FILTERED " (image blurred by the "
                 "content filter)");
        err->outcome = OUTCOME_FATAL_JOB;
        return err->outcome;
}

static enum outcome malformed(struct provider_err *err, const char *why)
{
        snprintf(err->errstr, sizeof(err->errstr), "%ld: %s",
                 err->http_status, why);
        err->outcome = OUTCOME_RETRY_LATER;
        return err->outcome;
}

/** Accept: image/ANY answer: the body is the image. */
static enum outcome parse_binary(const struct provider_resp *resp,
                                 struct provider_result *res,
                                 struct provider_err *err)
{
        const char *fr = provider_resp_header(resp, "finish-reason");
        size_t n;

        if (fr && !strncasecmp(fr, FILTERED, strlen(FILTERED)))
                return filtered(err);
        if (resp->truncated || !resp->body_len)
                return malformed(err, "empty or truncated image");
        res->data = xmalloc(resp->body_len);
        memcpy(res->data, resp->body, resp->body_len);
        res->data_len = resp->body_len;
        n = strcspn(resp->content_type, "; ");
        res->content_type = xstrndup(resp->content_type, n);
        return OUTCOME_SUCCESS;
}

/** Accept: application/json answer: {"image": base64, "finish_reason"}. */
static enum outcome parse_json(const Genq__V1__Job *job,
                               const struct provider_resp *resp,
                               struct provider_result *res,
                               struct provider_err *err)
{
        json_t *root = NULL, *img;
        const char *fr;

        if (!resp->truncated)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        img = json_object_get(root, "image");
        fr = json_string_value(json_object_get(root, "finish_reason"));
        if (fr && !strcmp(fr, FILTERED)) {
                json_decref(root);
                return filtered(err);
        }
        if (json_is_string(img))
                res->data = b64_decode(json_string_value(img),
                                       json_string_length(img),
                                       &res->data_len);
        json_decref(root);
        if (!res->data || !res->data_len) {
                free(res->data);
                res->data = NULL;
                return malformed(err, "no image in the JSON answer");
        }
        res->content_type = xstrdup(format_ctype(
                job && job->image ? job->image->output_format : ""));
        return OUTCOME_SUCCESS;
}

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status < 200 || resp->status >= 300)
                return parse_error(resp, err);
        if (ctype_is(resp->content_type, "image/"))
                err->outcome = parse_binary(resp, res, err);
        else if (ctype_is(resp->content_type, "application/json"))
                err->outcome = parse_json(job, resp, res, err);
        else
                err->outcome = malformed(err, "answer is neither an image "
                                              "nor JSON");
        if (err->outcome != OUTCOME_SUCCESS) {
                provider_result_clear(res);
                return err->outcome;
        }
        res->units = 1;
        res->unit = "image";
        return err->outcome;
}

const struct provider_ops provider_stability_ops = {
        .name = "stability_image",
        .kind = GENQ__V1__KIND__KIND_IMAGE,
        .flags = 0,
        .build = build,
        .parse = parse,
};
