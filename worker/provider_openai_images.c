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
 *
 * As in provider_openai.c: one {status, marker, outcome} table per
 * dialect (section 12 rows plus the provider's own section), walked top to
 * bottom, first match wins; a body that is not JSON has only the shared
 * status-only rows (adapt_nonjson_rule(): never disable a key on a WAF
 * page); then provider_classify_generic() decides by status.
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define GEN_PATH "/images/generations"
#define OAI_MAX_N 10
#define SF_MAX_BATCH 4

/*
 * Shared request helpers.
 */

/** URL, headers and the serialised \p body (consumed) into \p req. */
static int finish_req(const struct provider_cfg *p, const char *key,
                      json_t *body, struct provider_req *req, char *errstr,
                      size_t errstr_size)
{
        if (adapt_url(req, p, "base_url", errstr, errstr_size, GEN_PATH,
                      NULL) == -1 ||
            adapt_json_headers(req, "Authorization: Bearer ", key, 1, errstr,
                               errstr_size) == -1) {
                json_decref(body);
                provider_req_clear(req);
                return -1;
        }
        req->method = "POST";
        adapt_req_json(req, body, JSON_COMPACT);
        json_decref(body);
        return 0;
}

/** extra_body keys are defaults: a key the adapter set is never replaced. */
static int merge_extra(const struct provider_cfg *p, json_t *body,
                       char *errstr, size_t errstr_size)
{
        return adapt_merge_obj(p, "extra_body", p->extra_body, body,
                               ADAPT_MERGE_TOP, errstr, errstr_size);
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
        const char *model = adapt_model(p, im->model, errstr, errstr_size);
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
        if (adapt_jset_str(body, "model", model) == -1 ||
            adapt_jset_str(body, "prompt", im->prompt) == -1 ||
            (size && *size && adapt_jset_str(body, "size", size) == -1) ||
            (*im->output_format && is_gpt_image(model) &&
             adapt_jset_str(body, "output_format", im->output_format) == -1)) {
                snprintf(errstr, errstr_size, "image job is not valid UTF-8");
                goto err_free_body;
        }
        adapt_jset(body, "n", json_integer(im->count > 0 ? im->count : 1));
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
        im = adapt_image_job(job, errstr, errstr_size);
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
        if (size && *size && adapt_jset_str(body, "image_size", size) == -1)
                return -1;
        if (*im->negative_prompt &&
            adapt_jset_str(body, "negative_prompt", im->negative_prompt) ==
                    -1)
                return -1;
        if (im->n_input_image_urls &&
            adapt_jset_str(body, "image", im->input_image_urls[0]) == -1)
                return -1;
        adapt_jset(body, "batch_size",
                   json_integer(im->count > 0 ? im->count : 1));
        return 0;
}

static json_t *sf_body(const struct provider_cfg *p,
                       const Genq__V1__ImageRequest *im, char *errstr,
                       size_t errstr_size)
{
        const char *model = adapt_model(p, im->model, errstr, errstr_size);
        json_t *body;

        if (!model)
                return NULL;
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        if (adapt_jset_str(body, "model", model) == -1 ||
            adapt_jset_str(body, "prompt", im->prompt) == -1 ||
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
        im = adapt_image_job(job, errstr, errstr_size);
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
 * Classifying error bodies (struct adapt_oaierr: both dialects' fields).
 */

enum marker {
        M_END = ADAPT_M_END,     /**< table terminator */
        M_ANY = ADAPT_M_ANY,     /**< status alone decides */
        M_CODE = ADAPT_OAI_CODE, /**< code equals one of val */
        M_TYPE = ADAPT_OAI_TYPE, /**< type equals one of val */
        M_MSG = ADAPT_OAI_MSG,   /**< message contains one of val (any
                                      case) */
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* OpenAI (1.1 and 5.1).  gpt-image-* says "moderation_blocked" where
 * dall-e says "content_policy_violation"; image billing caps come as 400
 * "billing_hard_limit_reached". */
static const struct adapt_rule oai_rules[] = {
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

/** "sk-xxxxxx..." tokens shortened to "sk-…" (OpenAI's 401 quotes the
 *  key, masked, but never trust that). */
static const char *const key_prefixes[] = {"sk-", NULL};
static const struct adapt_redact keys = {
        .prefixes = key_prefixes,
        .chars = "-_*",
        .token_start = 1,
        .high_bytes = 1,
        .min_len = 6,
};

/** Classify a non-2xx response by \p rules (JSON body) or the status. */
static enum outcome parse_error(const struct adapt_rule *rules,
                                const struct provider_resp *resp,
                                struct provider_err *err)
{
        struct adapt_oaierr eb;
        json_t *root;

        root = adapt_body_json(resp);
        adapt_oaierr_read(&eb, root, 0);
        adapt_classify(resp,
                       json_is_object(root)
                               ? adapt_rules_match(rules, resp->status,
                                                   adapt_oaierr_match, &eb)
                               : adapt_nonjson_rule(resp->status),
                       err);
        if (json_is_object(root))
                adapt_oaierr_errstr(&eb, resp->status, &keys, err);
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(eb.message);
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
        res->data = adapt_b64_decode(json_string_value(b64),
                                     json_string_length(b64), &res->data_len);
        if (!res->data || !res->data_len)
                return -1;
        res->content_type = xstrdup(format_ctype(format));
        return 0;
}

/** An integer usage count (gpt-image-*), or -1. */
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
        res->usage_json = adapt_jdump(usage, JSON_COMPACT);
}

/** data[]: b64_json (first decoded) or url per image. */
static enum outcome oai_images(const json_t *root, struct provider_result *res,
                               struct provider_err *err)
{
        const char *format = adapt_jstr(root, "output_format");
        const json_t *item, *b64;
        size_t i, n = 0;

        json_array_foreach(json_object_get(root, "data"), i, item) {
                b64 = json_object_get(item, "b64_json");
                if (json_is_string(b64)) {
                        if (oai_take_b64(b64, format, res) == -1)
                                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                                  "200: b64_json is not "
                                                  "base64");
                        n++;
                } else if (adapt_jstr(item, "url")) {
                        provider_result_add_url(res, adapt_jstr(item, "url"));
                        n++;
                }
        }
        if (!n)
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "200: no images in the response");
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
                if (adapt_jstr(item, "url"))
                        provider_result_add_url(res, adapt_jstr(item, "url"));
        if (!res->n_urls)
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "200: no images in the response");
        res->units = (double)res->n_urls;
        res->unit = "image";
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

typedef enum outcome(images_fn)(const json_t *root,
                                struct provider_result *res,
                                struct provider_err *err);

static enum outcome parse_with(const struct adapt_rule *rules,
                               images_fn *images,
                               const struct provider_resp *resp,
                               struct provider_result *res,
                               struct provider_err *err)
{
        json_t *root;
        enum outcome o;

        adapt_err_init(resp, err);
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status < 200 || resp->status >= 300)
                return parse_error(rules, resp, err);
        root = adapt_ok_json(resp);
        if (!root)
                return provider_classify_generic(resp, err);
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
        return parse_with(adapt_siliconflow_rules, sf_images, resp, res, err);
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
