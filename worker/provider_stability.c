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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "adapt.h"
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
        const Genq__V1__ImageRequest *im;

        im = adapt_image_job(job, errstr, errstr_size);
        if (im && (im->count > 1 || im->n_input_image_urls)) {
                /* one image per call; image-to-image needs an upload */
                snprintf(errstr, errstr_size,
                         "Stability makes one image from a prompt only");
                return NULL;
        }
        return im;
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

static void add_job_fields(const Genq__V1__ImageRequest *im,
                           const char *model, struct provider_req *req)
{
        char ratio[32];

        provider_req_field(req, "prompt", im->prompt);
        if (*im->negative_prompt)
                provider_req_field(req, "negative_prompt",
                                   im->negative_prompt);
        if (*im->aspect_ratio)
                snprintf(ratio, sizeof(ratio), "%s", im->aspect_ratio);
        else
                ratio_of_size(im->size, ratio, sizeof(ratio));
        if (*ratio)
                provider_req_field(req, "aspect_ratio", ratio);
        if (*im->output_format)
                provider_req_field(req, "output_format", im->output_format);
        if (models[model_row(model)].model_field)
                provider_req_field(req, "model", model);
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
                else if (!provider_req_has_part(req, k))
                        provider_req_field(req, k, text);
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
        if (adapt_auth(req, "Authorization: Bearer ", key, errstr,
                       errstr_size) == -1)
                return -1;
        if (adapt_url(req, p, "base_url", errstr, errstr_size, "/",
                      models[model_row(model)].path, NULL) == -1)
                goto err_clear_req;
        req->method = "POST";
        provider_req_header(req, "Accept: image/*");
        add_job_fields(im, model, req);
        if (add_extra(p, req, errstr, errstr_size) == -1)
                goto err_clear_req;
        return 0;

err_clear_req:
        provider_req_clear(req);
        return -1;
}

/*
 * Classifying error bodies: {"id", "name", "errors": [...]}.
 */

struct errbody {
        const char *name;    /**< "content_moderation", or NULL */
        const char *message; /**< errors[0] (or message), or NULL */
};

enum marker {
        M_END = ADAPT_M_END,  /**< table terminator */
        M_ANY = ADAPT_M_ANY,  /**< status alone decides */
        M_NAME = ADAPT_M_OWN, /**< name equals val */
        M_MSG,                /**< message contains one of val (any case) */
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* Section 5.3 and 12; 404 (a mode or engine this account or base URL does
 * not serve) is the "unknown model" row every other provider has.  A body
 * that is not JSON: adapt_nonjson_rule(). */
static const struct adapt_rule rules[] = {
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

static int marker_match(const struct adapt_rule *r, const void *ctx)
{
        const struct errbody *eb = ctx;

        if (r->marker == M_NAME)
                return adapt_alt_eq(r->val, eb->name);
        return r->marker == M_MSG && adapt_alt_has(r->val, eb->message);
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

/** "sk-xxxxxx..." tokens (Stability keys) shortened to "sk-…". */
static const char *const key_prefixes[] = {"sk-", NULL};
static const struct adapt_redact keys = {
        .prefixes = key_prefixes,
        .chars = "-_",
        .token_start = 1,
        .high_bytes = 1,
        .min_len = 6,
};

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        struct errbody eb;
        json_t *root;

        root = adapt_body_json(resp);
        if (!json_is_object(root)) {
                adapt_classify(resp, adapt_nonjson_rule(resp->status), err);
                json_decref(root);
                return err->outcome;
        }
        errbody_read(&eb, root);
        adapt_classify(resp,
                       adapt_rules_match(rules, resp->status, marker_match,
                                         &eb),
                       err);
        /* "<status> <name>: <errors[0]>" */
        adapt_errstr(err, &keys, "%ld%s%s: %s", resp->status,
                     eb.name ? " " : "", eb.name ? eb.name : "",
                     eb.message ? eb.message : "(no message)");
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

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
        return adapt_fail(err, OUTCOME_FATAL_JOB,
                          "200: finish_reason " FILTERED " (image blurred "
                          "by the content filter)");
}

static enum outcome malformed(struct provider_err *err, const char *why)
{
        return adapt_fail(err, OUTCOME_RETRY_LATER, "%ld: %s",
                          err->http_status, why);
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
                res->data = adapt_b64_decode(json_string_value(img),
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

/** A 2xx answer: the image, or JSON holding it; Content-Type decides. */
static enum outcome parse_ok(const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err, adapt_error_fn *error)
{
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

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        return adapt_parse(job, resp, res, err, parse_ok, parse_error);
}

const struct provider_ops provider_stability_ops = {
        .name = "stability_image",
        .kind = GENQ__V1__KIND__KIND_IMAGE,
        .flags = 0,
        .build = build,
        .parse = parse,
};
