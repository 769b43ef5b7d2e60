/*
 * provider_hf: Hugging Face Inference (serverless "hf-inference", legacy
 * api-inference host or the router), two adapters:
 *
 *   "hf_image"    text-to-image: POST <base>/models/{model}
 *                 {"inputs": prompt, "parameters": {negative_prompt,
 *                 width, height}}; the answer is the image bytes.
 *   "hf_whisper"  speech-to-text (reference 9.4, PROVIDER_F_NEEDS_INPUT):
 *                 POST <base>/models/{model} with the raw audio bytes and
 *                 the input's Content-Type; answer {"text": "..."}.
 *
 * The base URL carries the host's own prefix:
 * https://router.huggingface.co/hf-inference or
 * https://api-inference.huggingface.co.  A job's model hint is used when it
 * is a repository id ("owner/name"), else the provider's default applies.
 *
 * Whisper refuses more than 30 s of audio sent raw (400 "more than 3000
 * mel input features"); the reference's JSON form with
 * return_timestamps lifts that limit, so a WAV input longer than 30 s
 * (its length read from the header) is sent as {"inputs": base64,
 * "parameters": {"return_timestamps": true}}.  Units (seconds) come from
 * the answer's chunk timestamps when there are any; parse() does not see
 * the input, so for a raw upload they stay unknown (-1).
 *
 * Errors are {"error": "..." (or a list), "estimated_time"?}; a 503 "is
 * currently loading" is retry_later after estimated_time seconds.
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

/** Longest audio Whisper takes as raw bytes (reference 9.4). */
#define RAW_MAX_SECONDS 30.0

/*
 * Shared request helpers.
 */

/** 2: "owner/name", 1: "name", 0: not a repository id. */
static int repo_shape(const char *m)
{
        size_t a;

        if (!m || !*m)
                return 0;
        a = adapt_segment_len(m);
        if (!a)
                return 0;
        if (!m[a])
                return 1;
        if (m[a] != '/' || !adapt_segment_len(m + a + 1) ||
            m[a + 1 + adapt_segment_len(m + a + 1)])
                return 0;
        return 2;
}

/** The hint if it is "owner/name", else the configured model. */
static const char *model_of(const struct provider_cfg *p, const char *hint,
                            char *errstr, size_t errstr_size)
{
        if (repo_shape(hint) == 2)
                return hint;
        if (repo_shape(p->model))
                return p->model;
        snprintf(errstr, errstr_size,
                 "provider %s: model \"%s\" is not a repository id", p->name,
                 p->model ? p->model : "");
        return NULL;
}

/** URL, method and auth; the caller adds Content-Type and the body. */
static int build_common(const struct provider_cfg *p, const char *key,
                        const char *model, struct provider_req *req,
                        char *errstr, size_t errstr_size)
{
        if (adapt_auth(req, "Authorization: Bearer ", key, errstr,
                       errstr_size) == -1 ||
            adapt_url(req, p, "URL", errstr, errstr_size, "/models/", model,
                      NULL) == -1)
                return -1;
        req->method = "POST";
        return 0;
}

static void set_json_body(struct provider_req *req, json_t *body)
{
        adapt_req_json(req, body, JSON_COMPACT);
        provider_req_header(req, "Content-Type: application/json");
}

/*
 * hf_image request.
 */

/** "parameters": negative_prompt, width and height from "WxH". */
static json_t *image_params(const Genq__V1__ImageRequest *im)
{
        json_t *params = json_object();
        unsigned w, h;
        char tail;

        if (!params)
                fatal("out of memory building JSON");
        if (*im->negative_prompt)
                adapt_jset(params, "negative_prompt",
                           json_string(im->negative_prompt));
        if (sscanf(im->size, "%ux%u%c", &w, &h, &tail) == 2 && w && h) {
                adapt_jset(params, "width", json_integer(w));
                adapt_jset(params, "height", json_integer(h));
        }
        return params;
}

/**
 * extra_body's keys are defaults for the top level, and one level down
 * for "parameters" (so {"parameters": {"num_inference_steps": 4}} adds to
 * the job's parameters).
 */
static int merge_extra(const struct provider_cfg *p, json_t *body,
                       char *errstr, size_t errstr_size)
{
        json_t *extra, *ours, *theirs;

        if (!p->extra_body || !*p->extra_body)
                return 0;
        extra = json_loads(p->extra_body, 0, NULL);
        if (!json_is_object(extra)) {
                snprintf(errstr, errstr_size,
                         "provider %s: extra_body is not a JSON object",
                         p->name);
                json_decref(extra);
                return -1;
        }
        ours = json_object_get(body, "parameters");
        theirs = json_object_get(extra, "parameters");
        if (json_is_object(ours) && json_is_object(theirs) &&
            json_object_update_missing(ours, theirs) == -1)
                fatal("out of memory building JSON");
        if (json_object_update_missing(body, extra) == -1)
                fatal("out of memory building JSON");
        json_decref(extra);
        return 0;
}

static const Genq__V1__ImageRequest *image_of(const Genq__V1__Job *job,
                                              char *errstr,
                                              size_t errstr_size)
{
        const Genq__V1__ImageRequest *im = job->image;

        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_IMAGE || !im) {
                snprintf(errstr, errstr_size, "not an image job");
                return NULL;
        }
        if (!*im->prompt || im->count > 1 || im->n_input_image_urls) {
                snprintf(errstr, errstr_size,
                         "hf_image makes one image from a prompt only");
                return NULL;
        }
        return im;
}

static int image_build(const struct provider_cfg *p, const char *key,
                       const Genq__V1__Job *job,
                       const struct provider_input *in,
                       struct provider_req *req, char *errstr,
                       size_t errstr_size)
{
        const Genq__V1__ImageRequest *im;
        const char *model;
        json_t *body, *params, *prompt;

        memset(req, 0, sizeof(*req));
        im = image_of(job, errstr, errstr_size);
        model = im ? model_of(p, im->model, errstr, errstr_size) : NULL;
        if (!model)
                return -1;
        prompt = json_string(im->prompt);
        if (!prompt) {
                snprintf(errstr, errstr_size, "prompt is not valid UTF-8");
                return -1;
        }
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        adapt_jset(body, "inputs", prompt);
        params = image_params(im);
        if (json_object_size(params))
                adapt_jset(body, "parameters", params);
        else
                json_decref(params);
        if (merge_extra(p, body, errstr, errstr_size) == -1 ||
            build_common(p, key, model, req, errstr, errstr_size) == -1) {
                json_decref(body);
                provider_req_clear(req);
                return -1;
        }
        set_json_body(req, body);
        json_decref(body);
        return 0;
}

/*
 * hf_whisper request.
 */

/** Audio types by their first bytes, for inputs served as octet-stream. */
static const struct {
        const char *magic;
        size_t off;
        const char *ctype;
} magics[] = {
        {"WAVE", 8, "audio/wav"}, {"fLaC", 0, "audio/flac"},
        {"OggS", 0, "audio/ogg"}, {"ID3", 0, "audio/mpeg"},
        {"ftyp", 4, "audio/mp4"}, {"\x1a\x45\xdf\xa3", 0, "audio/webm"},
};

/** The input's own type if it names one, else a sniffed one. */
static const char *audio_ctype(const struct provider_input *in)
{
        const char *ct = in->content_type;
        size_t n;

        if (ct && *ct && strncasecmp(ct, "application/octet-stream", 24) &&
            !strpbrk(ct, "\r\n"))
                return ct;
        for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
                n = strlen(magics[i].magic);
                if (in->len >= magics[i].off + n &&
                    !memcmp(in->data + magics[i].off, magics[i].magic, n))
                        return magics[i].ctype;
        }
        if (in->len >= 2 && (uint8_t)in->data[0] == 0xff &&
            ((uint8_t)in->data[1] & 0xe0) == 0xe0)
                return "audio/mpeg"; /* MPEG frame sync */
        return "application/octet-stream";
}

static char *b64_encode(const uint8_t *b, size_t len)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
        uint32_t v;

        for (size_t i = 0; i < len; i += 3) {
                v = (uint32_t)b[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)b[i + 1] << 8;
                if (i + 2 < len)
                        v |= b[i + 2];
                *o++ = tab[v >> 18 & 63];
                *o++ = tab[v >> 12 & 63];
                *o++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? tab[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

/** {"inputs": base64, "parameters": {"return_timestamps": true}}. */
static void long_audio_body(const struct provider_input *in,
                            struct provider_req *req)
{
        char *b64 = b64_encode((const uint8_t *)in->data, in->len);
        json_t *body = json_pack("{s:s, s:{s:b}}", "inputs", b64,
                                 "parameters", "return_timestamps", 1);

        if (!body)
                fatal("out of memory building JSON");
        free(b64);
        set_json_body(req, body);
        json_decref(body);
}

static void raw_audio_body(const struct provider_input *in,
                           struct provider_req *req)
{
        req->body = xmalloc(in->len + 1);
        memcpy(req->body, in->data, in->len);
        req->body[in->len] = '\0';
        req->body_len = in->len;
        provider_req_header(req, "Content-Type: %s", audio_ctype(in));
}

static int whisper_build(const struct provider_cfg *p, const char *key,
                         const Genq__V1__Job *job,
                         const struct provider_input *in,
                         struct provider_req *req, char *errstr,
                         size_t errstr_size)
{
        const char *model;

        memset(req, 0, sizeof(*req));
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_STT || !job->stt) {
                snprintf(errstr, errstr_size, "not an stt job");
                return -1;
        }
        if (!in || !in->data || !in->len) {
                snprintf(errstr, errstr_size, "no input audio");
                return -1;
        }
        model = model_of(p, job->stt->model, errstr, errstr_size);
        if (!model || build_common(p, key, model, req, errstr,
                                   errstr_size) == -1) {
                provider_req_clear(req);
                return -1;
        }
        if (adapt_wav_seconds(in->data, in->len) > RAW_MAX_SECONDS)
                long_audio_body(in, req);
        else
                raw_audio_body(in, req);
        return 0;
}

/*
 * Classifying errors: {"error": "..." | [...], "estimated_time"?}.
 */

enum marker {
        M_END = ADAPT_M_END, /**< table terminator */
        M_ANY = ADAPT_M_ANY, /**< status alone decides */
        M_MSG = ADAPT_M_OWN, /**< error text contains one of val (any case) */
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* Section 9.4 and 12.  403 (a token without the inference permission) and
 * 404 (a model this host does not serve) are not in the reference: they
 * follow the other providers' "bad credential" and "unknown model" rows.
 * A body that is not JSON: adapt_nonjson_rule(). */
static const struct adapt_rule rules[] = {
        {503, M_MSG, "is currently loading", RETRY},
        {503, M_ANY, NULL, RETRY},
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {0, M_MSG, "exceeded your monthly included credits", QUOTA},
        {403, M_ANY, NULL, KEYDIS},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {400, M_ANY, NULL, FATAL},
        {0, M_END, NULL, 0},
};

/** "error" as text: the string, or the first string of a list. */
static const char *error_text(const json_t *root)
{
        const json_t *e = json_object_get(root, "error");

        if (json_is_array(e))
                e = json_array_get(e, 0);
        return json_string_value(e);
}

/** "hf_xxxxxx..." tokens shortened to "hf_…". */
static const char *const key_prefixes[] = {"hf_", NULL};
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
        const json_t *est;
        const char *msg;
        json_t *root;

        root = adapt_body_json(resp);
        msg = error_text(root);
        adapt_classify(resp,
                       json_is_object(root)
                               ? adapt_rules_match(rules, resp->status,
                                                   adapt_match_msg, msg)
                               : adapt_nonjson_rule(resp->status),
                       err);
        if (json_is_object(root))
                adapt_errstr(err, &keys, "%ld: %s", resp->status,
                             msg ? msg : "(no message)");
        /* the loading body's own estimate is the better hint */
        est = json_object_get(root, "estimated_time");
        if (json_is_number(est) && json_number_value(est) >= 0 &&
            json_number_value(est) < 86400)
                err->retry_after_ms =
                        (int64_t)(json_number_value(est) * 1000.0 + 0.5);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

/** hf_image's 2xx answer: the image bytes. */
static enum outcome image_ok(const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err, adapt_error_fn *error)
{
        const char *ct = resp->content_type;

        if (resp->truncated || !resp->body_len || !ct ||
            strncasecmp(ct, "image/", 6))
                return provider_classify_generic(resp, err);
        res->data = xmalloc(resp->body_len);
        memcpy(res->data, resp->body, resp->body_len);
        res->data_len = resp->body_len;
        res->content_type = xstrndup(ct, strcspn(ct, "; "));
        res->units = 1;
        res->unit = "image";
        return OUTCOME_SUCCESS;
}

static enum outcome image_parse(const struct provider_cfg *p,
                                const Genq__V1__Job *job,
                                const struct provider_resp *resp,
                                struct provider_result *res,
                                struct provider_err *err)
{
        return adapt_parse(job, resp, res, err, image_ok, parse_error);
}

/** The latest chunk end timestamp (seconds), or -1. */
static double chunks_end(const json_t *root)
{
        const json_t *chunk, *ts;
        double end = -1;
        size_t i;

        json_array_foreach(json_object_get(root, "chunks"), i, chunk) {
                ts = json_array_get(json_object_get(chunk, "timestamp"), 1);
                if (json_is_number(ts) && json_number_value(ts) > end)
                        end = json_number_value(ts);
        }
        return end;
}

/** hf_whisper's 2xx answer: {"text", "chunks"?}. */
static enum outcome whisper_ok(const Genq__V1__Job *job,
                               const struct provider_resp *resp,
                               struct provider_result *res,
                               struct provider_err *err, adapt_error_fn *error)
{
        const char *text;
        json_t *root;

        root = adapt_ok_json(resp);
        text = adapt_jstr(root, "text");
        if (!text) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
        res->text = xstrdup(text);
        res->units = chunks_end(root);
        res->unit = "second";
        json_decref(root);
        return OUTCOME_SUCCESS;
}

static enum outcome whisper_parse(const struct provider_cfg *p,
                                  const Genq__V1__Job *job,
                                  const struct provider_resp *resp,
                                  struct provider_result *res,
                                  struct provider_err *err)
{
        return adapt_parse(job, resp, res, err, whisper_ok, parse_error);
}

const struct provider_ops provider_hf_image_ops = {
        .name = "hf_image",
        .kind = GENQ__V1__KIND__KIND_IMAGE,
        .flags = 0,
        .build = image_build,
        .parse = image_parse,
};

const struct provider_ops provider_hf_whisper_ops = {
        .name = "hf_whisper",
        .kind = GENQ__V1__KIND__KIND_STT,
        .flags = PROVIDER_F_NEEDS_INPUT,
        .build = whisper_build,
        .parse = whisper_parse,
};
