/**
 * @file fam_images.c
 * @brief Family "images": POST <prefix>/v1/images/generations in two
 *        dialects (provider-api-reference.md 5.1 and 5.2).  A provider
 *        whose name begins with "sf" speaks SiliconFlow; one whose name
 *        begins with "deepinfra" speaks OpenAI but takes any model name
 *        (DeepInfra's own models behind the OpenAI API); any other speaks
 *        OpenAI.  Defaults: openai-images (OpenAI), sf-images (SiliconFlow).
 *
 * OPENAI DIALECT (section 5.1, errors of 1.1)
 *
 * Checks, in order: Authorization Bearer key (401 invalid_api_key, key
 * masked as in fam_openai); body is a JSON object; "prompt" a non-empty
 * string; "model" (default "dall-e-2") one of dall-e-2, dall-e-3,
 * gpt-image-1, gpt-image-1-mini, gpt-image-1.5 (else 404
 * model_not_found); "n" an integer 1..10 (dall-e-3: 1); "size" one the
 * model takes (dall-e-2 256x256 512x512 1024x1024; dall-e-3 1024x1024
 * 1792x1024 1024x1792; gpt-image-* 1024x1024 1536x1024 1024x1536 auto);
 * "response_format" url|b64_json for dall-e-* only and "output_format"
 * png|jpeg|webp for gpt-image-* only (else 400 unknown_parameter).  All
 * 400s are invalid_request_error naming the member in "param".
 *
 * Answers:
 *   gpt-image-*  data = n x {"b64_json": IMG, "revised_prompt": null},
 *                output_format (default "png"), quality (default
 *                "medium"), size (default/auto "1024x1024"),
 *                background "opaque", usage {input_tokens = words(prompt),
 *                input_tokens_details {image_tokens 0, text_tokens =
 *                words(prompt)}, output_tokens = n x T(quality),
 *                total_tokens = the sum}; T = low 272, medium 1056,
 *                high 4160, anything else 1056.
 *   dall-e-*     data = n x {"url": URL(i)} (or {"b64_json": IMG} with
 *                response_format b64_json), each with "revised_prompt":
 *                "fake revised: <prompt>" for dall-e-3, null for dall-e-2.
 *   created      = the time in seconds.
 *
 * SILICONFLOW DIALECT (section 5.2, errors of 1.2 SiliconFlow)
 *
 * Checks: key (401 {"code":401,"message":"Invalid token","data":null});
 * JSON object; "model" a string in Kwai-Kolors/Kolors,
 * black-forest-labs/FLUX.1-schnell, black-forest-labs/FLUX.1-dev,
 * Qwen/Qwen-Image, Qwen/Qwen-Image-Edit (else 400 code 20012, verbatim
 * "Model does not exist. Please check it carefully."); "prompt" a
 * non-empty string; "image_size" "<W>x<H>" with W, H in 64..2048;
 * "batch_size" an integer 1..4; "num_inference_steps" 1..100; "seed"
 * 0..9999999999.  Other 400s: code 20015 naming the field.
 *
 * Answer: {"images": batch_size x {"url": URL(i)}, "timings":
 * {"inference": 1.25}, "seed": the request's seed, else
 * fnv1a32(prompt) mod 10^10}; header x-siliconcloud-trace-id.
 *
 * BOTH
 *
 *   IMG    = base64 of a 2x2 red PNG (73 bytes, IMG_B64 below), whatever
 *            output_format says (the format is only echoed).
 *   URL(i) = https://media.fakeprov.test/<provider>/img-<seq>-<i>.png,
 *            i from 0, seq the provider's request number.
 *   words  = maximal runs of non-whitespace bytes.
 *   A prompt containing "[unsafe]" is refused: OpenAI 400
 *   content_policy_violation (dall-e) / moderation_blocked (gpt-image)
 *   with the "safety system" message; SiliconFlow 400 code 20015
 *   "...sensitive content...".
 *
 * Named errors (script {"error": NAME}), each in the provider's dialect:
 *
 *   NAME                OpenAI                         SiliconFlow
 *   invalid_key         401 invalid_api_key            401 Invalid token
 *   rate_limit          429 rate_limit_exceeded,       429 code 50603 IPM
 *                       retry-after: 1                 limit, retry-after: 1
 *   insufficient_quota  429 insufficient_quota         403 code 30011
 *   billing_limit       400 billing_hard_limit_reached 403 code 30001
 *   content_policy      400 content_policy_violation   400 code 20015
 *   model_not_found     404 model_not_found            400 code 20012
 *   forbidden           403 unsupported_country_...    403 code 30003
 *                                                      (real-name)
 *   bad_request         400 invalid_value (size)       400 code 20015
 *   server_error        500 server_error               500 code 50001
 *   overloaded          503 server_is_overloaded       503 code 50505
 *   timeout             504 HTML gateway page          504 code 50506
 *
 * SiliconFlow codes other than 20012, 30011 and 30001 are invented.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fakeprov.h"
#include "fpprov.h"
#include "xmem.h"

static const char *media_host(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Host");

        return h ? h : "127.0.0.1";
}

/* A 2x2 red PNG. */
#define IMG_B64                                                              \
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR42mP4z8AA" \
        "RAwQCgAf7gP9Y167WwAAAABJRU5ErkJggg=="
/* Served by the fake's own media endpoint (GET /_fake/media/<name>), so a
 * worker can download what it is given. */
#define URL_FMT "http://%s/_fake/media/img-%s-%llu-%d.png"
#define UNSAFE_MARK "[unsafe]"
#define SAFETY_MSG                                                          \
        "Your request was rejected as a result of our safety system. "     \
        "Your prompt may contain text that is not allowed by our safety "  \
        "system."

static int is_sf(const struct fp_call *call)
{
        return call->prov && !strncmp(fpprov_name(call->prov), "sf", 2);
}

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static json_int_t count_words(const char *s)
{
        json_int_t n = 0;
        int in_word = 0;

        for (; s && *s; s++) {
                if (!isspace((unsigned char)*s) && !in_word)
                        n++;
                in_word = !isspace((unsigned char)*s);
        }
        return n;
}

static const char *type_name(const json_t *v)
{
        static const char *const names[] = {
                [JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array",
                [JSON_STRING] = "a string",  [JSON_INTEGER] = "an integer",
                [JSON_REAL] = "a decimal",   [JSON_TRUE] = "a boolean",
                [JSON_FALSE] = "a boolean",  [JSON_NULL] = "null",
        };

        return names[json_typeof(v)];
}

/* ---- OpenAI envelope ------------------------------------------------- */

static void request_id(const struct fp_call *call, struct fp_resp *resp)
{
        char id[48];

        snprintf(id, sizeof(id), "req_fake%024llx",
                 (unsigned long long)call->seq);
        fpresp_header(resp, "x-request-id", id);
}

static void oai_error(const struct fp_call *call, struct fp_resp *resp,
                      unsigned status, const char *msg, const char *type,
                      const char *param, const char *code)
{
        json_t *j = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error",
                              "message", msg, "type", type, "param", param,
                              "code", code);

        if (!j)
                fatal("fam_images: json_pack error");
        fpresp_json(resp, status, j, JSON_INDENT(2));
        request_id(call, resp);
}

static int oai_bad(const struct fp_call *call, struct fp_resp *resp,
                   const char *param, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* 400 invalid_request_error naming \p param. @returns -1. */
static int oai_bad(const struct fp_call *call, struct fp_resp *resp,
                   const char *param, const char *code, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        oai_error(call, resp, 400, msg, "invalid_request_error", param, code);
        return -1;
}

/* ---- SiliconFlow envelope -------------------------------------------- */

static void sf_error(const struct fp_call *call, struct fp_resp *resp,
                     unsigned status, int code, const char *msg)
{
        char trace[48];

        fpresp_json(resp, status,
                    json_pack("{s:i, s:s, s:n}", "code", code, "message", msg,
                              "data"),
                    JSON_COMPACT);
        snprintf(trace, sizeof(trace), "fake-trace-%llu",
                 (unsigned long long)call->seq);
        fpresp_header(resp, "x-siliconcloud-trace-id", trace);
}

static int sf_bad(const struct fp_call *call, struct fp_resp *resp,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int sf_bad(const struct fp_call *call, struct fp_resp *resp,
                  const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        sf_error(call, resp, 400, 20015, msg);
        return -1;
}

/* ---- named errors ---------------------------------------------------- */

static void mask_key(const char *key, char *out, size_t outsz)
{
        size_t len = strlen(key);

        if (len < 12) {
                snprintf(out, outsz, "****");
                return;
        }
        snprintf(out, outsz, "%c%c%c****%s",
                 isprint((unsigned char)key[0]) ? key[0] : '?',
                 isprint((unsigned char)key[1]) ? key[1] : '?',
                 isprint((unsigned char)key[2]) ? key[2] : '?',
                 key + len - 4);
        for (char *c = out; *c; c++)
                if (!isprint((unsigned char)*c))
                        *c = '?';
}

static void err_invalid_key(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[256], masked[16];

        if (is_sf(call)) {
                sf_error(call, resp, 401, 401, "Invalid token");
                return;
        }
        if (!call->key) {
                oai_error(call, resp, 401,
                          "You didn't provide an API key. You need to "
                          "provide your API key in an Authorization header "
                          "using Bearer auth (i.e. Authorization: Bearer "
                          "YOUR_KEY). You can obtain an API key from "
                          "https://platform.openai.com/account/api-keys.",
                          "invalid_request_error", NULL, "invalid_api_key");
                return;
        }
        mask_key(call->key, masked, sizeof(masked));
        snprintf(msg, sizeof(msg),
                 "Incorrect API key provided: %s. You can find your API key "
                 "at https://platform.openai.com/account/api-keys.",
                 masked);
        oai_error(call, resp, 401, msg, "invalid_request_error", NULL,
                  "invalid_api_key");
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        if (is_sf(call)) {
                sf_error(call, resp, 429, 50603,
                         "Request was rejected due to rate limiting. "
                         "Details: IPM limit reached.");
        } else {
                oai_error(call, resp, 429,
                          "Rate limit reached for images per minute (IPM) "
                          "in organization org-xxxxxxxx: Limit 5, Used 5, "
                          "Requested 1. Please try again in 12s. Visit "
                          "https://platform.openai.com/account/rate-limits "
                          "to learn more.",
                          "requests", NULL, "rate_limit_exceeded");
                fpresp_header(resp, "x-ratelimit-remaining-requests", "0");
        }
        fpresp_header(resp, "retry-after", "1");
}

static void err_quota(const struct fp_call *call, struct fp_resp *resp)
{
        if (is_sf(call))
                sf_error(call, resp, 403, 30011,
                         "The selected model requires paid balance. Your "
                         "paid balance is insufficient. Please top up and "
                         "try again.");
        else
                oai_error(call, resp, 429,
                          "You exceeded your current quota, please check "
                          "your plan and billing details. For more "
                          "information on this error, read the docs: "
                          "https://platform.openai.com/docs/guides/"
                          "error-codes/api-errors.",
                          "insufficient_quota", NULL, "insufficient_quota");
}

static void err_billing(const struct fp_call *call, struct fp_resp *resp)
{
        if (is_sf(call))
                sf_error(call, resp, 403, 30001,
                         "Sorry, your account balance is insufficient");
        else
                oai_error(call, resp, 400,
                          "Billing hard limit has been reached",
                          "invalid_request_error", NULL,
                          "billing_hard_limit_reached");
}

static int is_gpt_image(const char *model)
{
        return model && !strncmp(model, "gpt-image", 9);
}

static void err_content(const struct fp_call *call, struct fp_resp *resp)
{
        const char *model = jstr(call->json, "model");

        if (is_sf(call))
                sf_error(call, resp, 400, 20015,
                         "The prompt contains sensitive content and was "
                         "rejected.");
        else
                oai_error(call, resp, 400, SAFETY_MSG,
                          is_gpt_image(model) ? "image_generation_user_error"
                                              : "invalid_request_error",
                          NULL,
                          is_gpt_image(model) ? "moderation_blocked"
                                              : "content_policy_violation");
}

static void err_model_not_found(const struct fp_call *call,
                                struct fp_resp *resp)
{
        const char *m = jstr(call->json, "model");
        char msg[300];

        if (is_sf(call)) {
                sf_error(call, resp, 400, 20012,
                         "Model does not exist. Please check it carefully.");
                return;
        }
        snprintf(msg, sizeof(msg),
                 "The model `%.200s` does not exist or you do not have "
                 "access to it.",
                 m ? m : "dall-e-2");
        oai_error(call, resp, 404, msg, "invalid_request_error", NULL,
                  "model_not_found");
}

static void err_forbidden(const struct fp_call *call, struct fp_resp *resp)
{
        if (is_sf(call))
                sf_error(call, resp, 403, 30003,
                         "This model requires real-name verification.");
        else
                oai_error(call, resp, 403,
                          "Country, region, or territory not supported",
                          "request_forbidden", NULL,
                          "unsupported_country_region_territory");
}

static void err_bad_request(const struct fp_call *call, struct fp_resp *resp)
{
        if (is_sf(call))
                sf_bad(call, resp, "Invalid image_size");
        else
                oai_bad(call, resp, "size", "invalid_value",
                        "Invalid value: '123x456'. Supported values are: "
                        "'1024x1024', '1024x1536', '1536x1024', and "
                        "'auto'.");
}

static void err_server(const struct fp_call *call, struct fp_resp *resp)
{
        if (is_sf(call))
                sf_error(call, resp, 500, 50001, "Unknown error");
        else
                oai_error(call, resp, 500,
                          "The server had an error while processing your "
                          "request. Sorry about that!",
                          "server_error", NULL, "server_error");
}

static void err_overloaded(const struct fp_call *call, struct fp_resp *resp)
{
        if (is_sf(call))
                sf_error(call, resp, 503, 50505,
                         "Model service overloaded. Please try again "
                         "later.");
        else
                oai_error(call, resp, 503,
                          "The engine is currently overloaded, please try "
                          "again later.",
                          "service_unavailable_error", NULL,
                          "server_is_overloaded");
}

static void err_timeout(const struct fp_call *call, struct fp_resp *resp)
{
        static const char page[] =
                "<html>\r\n<head><title>504 Gateway Time-out</title></head>"
                "\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1>"
                "</center>\r\n</body>\r\n</html>\r\n";

        if (is_sf(call)) {
                sf_error(call, resp, 504, 50506, "Gateway timeout");
                return;
        }
        fpresp_set(resp, 504, page, sizeof(page) - 1);
        fpresp_content_type(resp, "text/html");
}

/* ---- OpenAI images --------------------------------------------------- */

/* What each model accepts. */
static const struct oai_model {
        const char *name;
        const char *sizes;    /**< ' '-separated */
        int max_n;
        int gpt_image;        /**< b64 only, output_format, usage */
} oai_models[] = {
        {"dall-e-2", "256x256 512x512 1024x1024", 10, 0},
        {"dall-e-3", "1024x1024 1792x1024 1024x1792", 1, 0},
        {"gpt-image-1", "1024x1024 1536x1024 1024x1536 auto", 10, 1},
        {"gpt-image-1-mini", "1024x1024 1536x1024 1024x1536 auto", 10, 1},
        {"gpt-image-1.5", "1024x1024 1536x1024 1024x1536 auto", 10, 1},
};

static const struct oai_model *oai_model_find(const char *name)
{
        for (size_t i = 0; i < sizeof(oai_models) / sizeof(oai_models[0]);
             i++)
                if (!strcmp(name, oai_models[i].name))
                        return &oai_models[i];
        return NULL;
}

/* Is \p w one of the ' '-separated words of \p list? */
static int in_list(const char *list, const char *w)
{
        size_t n = strlen(w);

        for (const char *s = list; (s = strstr(s, w)); s += n)
                if ((s == list || s[-1] == ' ') && (!s[n] || s[n] == ' '))
                        return 1;
        return 0;
}

static int oai_check_prompt(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *v = json_object_get(call->json, "prompt");

        if (!v)
                return oai_bad(call, resp, "prompt",
                               "missing_required_parameter",
                               "Missing required parameter: 'prompt'.");
        if (!json_is_string(v))
                return oai_bad(call, resp, "prompt", "invalid_type",
                               "Invalid type for 'prompt': expected a "
                               "string, but got %s instead.",
                               type_name(v));
        if (!json_string_length(v))
                return oai_bad(call, resp, "prompt", "empty_string",
                               "Invalid 'prompt': empty string. Expected a "
                               "string with minimum length 1, but got an "
                               "empty string instead.");
        return 0;
}

static int oai_check_n(const struct fp_call *call, struct fp_resp *resp,
                       const struct oai_model *m)
{
        const json_t *v = json_object_get(call->json, "n");
        json_int_t n;

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v))
                return oai_bad(call, resp, "n", "invalid_type",
                               "Invalid type for 'n': expected an integer, "
                               "but got %s instead.",
                               type_name(v));
        n = json_integer_value(v);
        if (n < 1)
                return oai_bad(call, resp, "n", "integer_below_min_value",
                               "Invalid 'n': integer below minimum value. "
                               "Expected a value >= 1, but got %lld "
                               "instead.",
                               (long long)n);
        if (n > m->max_n)
                return oai_bad(call, resp, "n", "integer_above_max_value",
                               "Invalid 'n': integer above maximum value. "
                               "Expected a value <= %d, but got %lld "
                               "instead.",
                               m->max_n, (long long)n);
        return 0;
}

/* A string member \p k that must be one of \p list when present. */
static int oai_check_enum(const struct fp_call *call, struct fp_resp *resp,
                          const char *k, const char *list)
{
        const json_t *v = json_object_get(call->json, k);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return oai_bad(call, resp, k, "invalid_type",
                               "Invalid type for '%s': expected a string, "
                               "but got %s instead.",
                               k, type_name(v));
        if (!in_list(list, json_string_value(v)))
                return oai_bad(call, resp, k, "invalid_value",
                               "Invalid value: '%.100s'. Supported values "
                               "are: %s.",
                               json_string_value(v), list);
        return 0;
}

/* A member this model does not take at all. */
static int oai_unknown(const struct fp_call *call, struct fp_resp *resp,
                       const char *k)
{
        if (!json_object_get(call->json, k))
                return 0;
        return oai_bad(call, resp, k, "unknown_parameter",
                       "Unknown parameter: '%s'.", k);
}

/* DeepInfra serves its own models (stabilityai/..., black-forest-labs/...)
 * through the OpenAI images API; its fake takes any model name. */
static const struct oai_model any_model = {
        "(any)",
        "256x256 512x512 768x768 1024x1024 1024x1792 1792x1024 1536x1024 "
        "1024x1536 auto",
        4, 1};

static int is_deepinfra(const struct fp_call *call)
{
        return call->prov &&
               !strncmp(fpprov_name(call->prov), "deepinfra", 9);
}

static int oai_check_model(const struct fp_call *call, struct fp_resp *resp,
                           const struct oai_model **mp)
{
        const json_t *v = json_object_get(call->json, "model");

        if (v && !json_is_string(v))
                return oai_bad(call, resp, "model", "invalid_type",
                               "Invalid type for 'model': expected a "
                               "string, but got %s instead.",
                               type_name(v));
        *mp = oai_model_find(v ? json_string_value(v) : "dall-e-2");
        if (!*mp && is_deepinfra(call) && v)
                *mp = &any_model;
        if (!*mp) {
                err_model_not_found(call, resp);
                return -1;
        }
        return 0;
}

static int oai_check(const struct fp_call *call, struct fp_resp *resp,
                     const struct oai_model **mp)
{
        const struct oai_model *m;

        if (!json_is_object(call->json))
                return oai_bad(call, resp, NULL, NULL,
                               "We could not parse the JSON body of your "
                               "request. (HINT: This likely means you "
                               "aren't using your HTTP library correctly. "
                               "The OpenAI API expects a JSON payload, but "
                               "what was sent was not valid JSON.)");
        if (oai_check_prompt(call, resp) || oai_check_model(call, resp, mp))
                return -1;
        m = *mp;
        if (oai_check_n(call, resp, m) ||
            oai_check_enum(call, resp, "size", m->sizes))
                return -1;
        if (m->gpt_image) {
                if (oai_unknown(call, resp, "response_format") ||
                    oai_check_enum(call, resp, "output_format",
                                   "png jpeg webp") ||
                    oai_check_enum(call, resp, "quality",
                                   "low medium high auto"))
                        return -1;
        } else if (oai_unknown(call, resp, "output_format") ||
                   oai_check_enum(call, resp, "response_format",
                                  "url b64_json") ||
                   oai_check_enum(call, resp, "quality", "standard hd")) {
                return -1;
        }
        return 0;
}

static json_int_t tokens_per_image(const char *quality)
{
        static const struct {
                const char *q;
                json_int_t t;
        } tab[] = {{"low", 272}, {"medium", 1056}, {"high", 4160}};

        for (size_t i = 0; quality && i < sizeof(tab) / sizeof(tab[0]); i++)
                if (!strcmp(quality, tab[i].q))
                        return tab[i].t;
        return 1056;
}

static json_int_t req_n(const struct fp_call *call)
{
        const json_t *v = json_object_get(call->json, "n");

        return json_is_integer(v) ? json_integer_value(v) : 1;
}

static json_t *oai_item(const struct fp_call *call,
                        const struct oai_model *m, json_int_t i)
{
        const char *prompt = jstr(call->json, "prompt");
        const char *rf = jstr(call->json, "response_format");
        char url[256], revised[600];
        json_t *item;

        if (m->gpt_image || (rf && !strcmp(rf, "b64_json")))
                item = json_pack("{s:s}", "b64_json", IMG_B64);
        else {
                snprintf(url, sizeof(url), URL_FMT, media_host(call),
                         fpprov_name(call->prov),
                         (unsigned long long)call->seq, (int)i);
                item = json_pack("{s:s}", "url", url);
        }
        snprintf(revised, sizeof(revised), "fake revised: %.500s", prompt);
        json_object_set_new(item, "revised_prompt",
                            strcmp(m->name, "dall-e-3") ? json_null()
                                                        : json_string(revised));
        return item;
}

static void oai_usage(const struct fp_call *call, json_t *j, json_int_t n)
{
        json_int_t in = count_words(jstr(call->json, "prompt"));
        json_int_t out = n * tokens_per_image(jstr(call->json, "quality"));
        const char *size = jstr(call->json, "size");
        const char *fmt = jstr(call->json, "output_format");
        const char *q = jstr(call->json, "quality");

        json_object_set_new(j, "background", json_string("opaque"));
        json_object_set_new(j, "output_format", json_string(fmt ? fmt : "png"));
        json_object_set_new(j, "quality",
                            json_string(q && strcmp(q, "auto") ? q
                                                               : "medium"));
        json_object_set_new(j, "size",
                            json_string(size && strcmp(size, "auto")
                                                ? size
                                                : "1024x1024"));
        json_object_set_new(j, "usage",
                            json_pack("{s:I, s:{s:i, s:I}, s:I, s:I}",
                                      "input_tokens", in,
                                      "input_tokens_details", "image_tokens",
                                      0, "text_tokens", in, "output_tokens",
                                      out, "total_tokens", in + out));
}

static void oai_generate(const struct fp_call *call, struct fp_resp *resp)
{
        const struct oai_model *m = NULL;
        json_int_t n;
        json_t *j, *data;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (oai_check(call, resp, &m) == -1)
                return;
        if (strstr(jstr(call->json, "prompt"), UNSAFE_MARK)) {
                err_content(call, resp);
                return;
        }
        n = req_n(call);
        data = json_array();
        for (json_int_t i = 0; i < n; i++)
                json_array_append_new(data, oai_item(call, m, i));
        j = json_pack("{s:I, s:o}", "created", (json_int_t)time(NULL), "data",
                      data);
        if (m->gpt_image)
                oai_usage(call, j, n);
        fpresp_json(resp, 200, j, JSON_COMPACT);
        request_id(call, resp);
}

/* ---- SiliconFlow images ---------------------------------------------- */

static const char *const sf_models[] = {
        "Kwai-Kolors/Kolors",
        "black-forest-labs/FLUX.1-schnell",
        "black-forest-labs/FLUX.1-dev",
        "Qwen/Qwen-Image",
        "Qwen/Qwen-Image-Edit",
};

static int sf_model_known(const char *m)
{
        for (size_t i = 0; i < sizeof(sf_models) / sizeof(sf_models[0]); i++)
                if (!strcmp(m, sf_models[i]))
                        return 1;
        return 0;
}

/* An optional integer member \p k in lo..hi. */
static int sf_check_int(const struct fp_call *call, struct fp_resp *resp,
                        const char *k, json_int_t lo, json_int_t hi)
{
        const json_t *v = json_object_get(call->json, k);

        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < lo ||
            json_integer_value(v) > hi)
                return sf_bad(call, resp,
                              "Invalid %s: must be an integer between %lld "
                              "and %lld",
                              k, (long long)lo, (long long)hi);
        return 0;
}

static int sf_check_size(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *v = json_object_get(call->json, "image_size");
        unsigned w, h;
        char tail;

        if (!v)
                return 0;
        if (!json_is_string(v) ||
            sscanf(json_string_value(v), "%ux%u%c", &w, &h, &tail) != 2 ||
            w < 64 || h < 64 || w > 2048 || h > 2048)
                return sf_bad(call, resp,
                              "Invalid image_size: expected \"<width>x"
                              "<height>\"");
        return 0;
}

static int sf_check(const struct fp_call *call, struct fp_resp *resp)
{
        const char *model = jstr(call->json, "model");
        const char *prompt = jstr(call->json, "prompt");

        if (!json_is_object(call->json))
                return sf_bad(call, resp, "Invalid JSON body");
        if (!model)
                return sf_bad(call, resp, "model is required");
        if (!sf_model_known(model)) {
                err_model_not_found(call, resp);
                return -1;
        }
        if (!prompt || !*prompt)
                return sf_bad(call, resp, "prompt is required");
        if (json_object_get(call->json, "negative_prompt") &&
            !jstr(call->json, "negative_prompt"))
                return sf_bad(call, resp, "negative_prompt must be a string");
        if (sf_check_size(call, resp) ||
            sf_check_int(call, resp, "batch_size", 1, 4) ||
            sf_check_int(call, resp, "num_inference_steps", 1, 100) ||
            sf_check_int(call, resp, "seed", 0, 9999999999LL))
                return -1;
        return 0;
}

static json_int_t fnv1a32(const char *s)
{
        uint32_t h = 2166136261u;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 16777619u;
        return (json_int_t)h;
}

static void sf_generate(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *seed;
        json_int_t batch;
        json_t *imgs, *j;
        char url[256], trace[48];

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (sf_check(call, resp) == -1)
                return;
        if (strstr(jstr(call->json, "prompt"), UNSAFE_MARK)) {
                err_content(call, resp);
                return;
        }
        batch = json_is_integer(json_object_get(call->json, "batch_size"))
                        ? json_integer_value(
                                  json_object_get(call->json, "batch_size"))
                        : 1;
        imgs = json_array();
        for (json_int_t i = 0; i < batch; i++) {
                snprintf(url, sizeof(url), URL_FMT, media_host(call),
                         fpprov_name(call->prov),
                         (unsigned long long)call->seq, (int)i);
                json_array_append_new(imgs, json_pack("{s:s}", "url", url));
        }
        seed = json_object_get(call->json, "seed");
        j = json_pack("{s:o, s:{s:f}, s:I}", "images", imgs, "timings",
                      "inference", 1.25, "seed",
                      json_is_integer(seed)
                              ? json_integer_value(seed)
                              : fnv1a32(jstr(call->json, "prompt")) %
                                        10000000000LL);
        fpresp_json(resp, 200, j, JSON_COMPACT);
        snprintf(trace, sizeof(trace), "fake-trace-%llu",
                 (unsigned long long)call->seq);
        fpresp_header(resp, "x-siliconcloud-trace-id", trace);
}

/* ---- routes ---------------------------------------------------------- */

static void generate(const struct fp_call *call, struct fp_resp *resp)
{
        if (is_sf(call))
                sf_generate(call, resp);
        else
                oai_generate(call, resp);
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[300];

        if (is_sf(call)) {
                fpresp_set(resp, 404, "404 page not found", 18);
                fpresp_content_type(resp, "text/plain; charset=utf-8");
                return;
        }
        snprintf(msg, sizeof(msg), "Invalid URL (%s %.200s)", call->method,
                 call->path);
        oai_error(call, resp, 404, msg, "invalid_request_error", NULL, NULL);
}

static const char *get_key(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Authorization");

        if (!h || strncasecmp(h, "Bearer ", 7))
                return NULL;
        h += 7;
        while (*h == ' ')
                h++;
        return *h ? h : NULL;
}

static const struct fp_route routes[] = {
        {"POST", "/v1/images/generations", generate},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"rate_limit", err_rate_limit},
        {"insufficient_quota", err_quota},
        {"billing_limit", err_billing},
        {"content_policy", err_content},
        {"model_not_found", err_model_not_found},
        {"forbidden", err_forbidden},
        {"bad_request", err_bad_request},
        {"server_error", err_server},
        {"overloaded", err_overloaded},
        {"timeout", err_timeout},
        {NULL, NULL},
};

static const char *const defaults[] = {"openai-images", "sf-images",
                                       "deepinfra-images", NULL};

const struct fp_family fam_images = {
        .name = "images",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
