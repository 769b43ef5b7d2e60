/**
 * @file fam_hf.c
 * @brief Family "hf": Hugging Face Inference, text-to-image and Whisper
 *        speech recognition (provider-api-reference.md 9.4).  Default
 *        provider: hf.
 *
 *   POST <prefix>/models/{model}               (api-inference style)
 *   POST <prefix>/hf-inference/models/{model}  (router style)
 *
 * {model} is "owner/name" or "name".  Speech models: openai/whisper-large-v3,
 * openai/whisper-large-v3-turbo, openai/whisper-small,
 * distil-whisper/distil-large-v3.  Image models:
 * black-forest-labs/FLUX.1-schnell, black-forest-labs/FLUX.1-dev,
 * stabilityai/stable-diffusion-xl-base-1.0,
 * stabilityai/stable-diffusion-3.5-large.  Anything else: 404
 * {"error":"Model <model> does not exist"}.
 *
 * Checks: Authorization Bearer key (401 {"error":"Invalid credentials in
 * Authorization header"}), then per task:
 *
 * Text-to-image: a JSON object with a non-empty string "inputs" (else 400
 * {"error":["Error in `inputs`: ..."]}); "parameters", when present, an
 * object whose width/height are integers 64..2048 and num_inference_steps
 * 1..100.  Answer: 200 image/png, a 2x2 red PNG (73 bytes).
 *
 * Speech: either the raw audio (Content-Type audio/... or
 * application/octet-stream; else 400), or a JSON object {"inputs":
 * base64 audio, "parameters": {"return_timestamps": bool}}.  An empty
 * audio: 400.  A RIFF/WAVE input is measured from its header: seconds =
 * data bytes / byte rate (a broken header: 400 "Malformed soundfile").
 * Longer than 30 s without return_timestamps: the real 400 ("You have
 * passed more than 3000 mel input features ...").  Answer:
 *   WAV       {"text": "fake transcript of <seconds, %.1f> seconds"}
 *   other     {"text": "fake transcript of <N> bytes of audio"}
 *   with return_timestamps also "chunks": [{"timestamp": [0.0, seconds],
 *   "text": <the same text>}] (seconds = -1 is null for non-WAV input).
 *
 * Named errors (script {"error": NAME}), body {"error": "..."}:
 *
 *   invalid_token      401 Invalid credentials in Authorization header
 *   credits_exhausted  402 monthly included credits exceeded
 *   forbidden          403 token lacks the inference permission
 *   model_not_found    404 Model <model> does not exist
 *   rate_limit         429 Rate limit reached (no Retry-After)
 *   loading            503 {"error":"Model <model> is currently loading",
 *                      "estimated_time":20.0} (reference, verbatim shape)
 *   too_long           400 the "more than 3000 mel input features" error
 *   server_error       500 Internal Server Error
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "xmem.h"

#define MAX_RAW_SECONDS 30.0
#define TOO_LONG_MSG                                                         \
        "You have passed more than 3000 mel input features (> 30 seconds) " \
        "which automatically enables long-form generation which requires "  \
        "the model to predict timestamp tokens. Please either pass "        \
        "`return_timestamps=True` or make sure to pass no more than 3000 "  \
        "mel input features."

static const unsigned char png[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73,
        0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63,
        0xf8, 0xcf, 0xc0, 0x00, 0x44, 0x0c, 0x10, 0x0a, 0x00, 0x1f, 0xee,
        0x03, 0xfd, 0x63, 0x5e, 0xbb, 0x5b, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

enum task { TASK_NONE, TASK_ASR, TASK_IMAGE };

static const struct {
        const char *model;
        enum task task;
} models[] = {
        {"openai/whisper-large-v3", TASK_ASR},
        {"openai/whisper-large-v3-turbo", TASK_ASR},
        {"openai/whisper-small", TASK_ASR},
        {"distil-whisper/distil-large-v3", TASK_ASR},
        {"black-forest-labs/FLUX.1-schnell", TASK_IMAGE},
        {"black-forest-labs/FLUX.1-dev", TASK_IMAGE},
        {"stabilityai/stable-diffusion-xl-base-1.0", TASK_IMAGE},
        {"stabilityai/stable-diffusion-3.5-large", TASK_IMAGE},
};

/* The model named by the path (after "models/"), or "". */
static const char *model_of(const struct fp_call *call)
{
        const char *m = strstr(call->path, "models/");

        return m ? m + 7 : "";
}

static enum task task_of(const char *model)
{
        for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
                if (!strcmp(model, models[i].model))
                        return models[i].task;
        return TASK_NONE;
}

/* ---- errors ---------------------------------------------------------- */

static void hf_error(struct fp_resp *resp, unsigned status, const char *msg)
{
        fpresp_json(resp, status, json_pack("{s:s}", "error", msg),
                    JSON_COMPACT);
}

static void err_invalid_token(const struct fp_call *call,
                              struct fp_resp *resp)
{
        hf_error(resp, 401, "Invalid credentials in Authorization header");
}

static void err_credits(const struct fp_call *call, struct fp_resp *resp)
{
        hf_error(resp, 402,
                 "You have exceeded your monthly included credits for "
                 "Inference Providers. Subscribe to PRO to get 20x more "
                 "monthly included credits.");
}

static void err_forbidden(const struct fp_call *call, struct fp_resp *resp)
{
        hf_error(resp, 403,
                 "This authentication method does not have sufficient "
                 "permissions to call Inference Providers on behalf of "
                 "user fake-user");
}

static void err_model_not_found(const struct fp_call *call,
                                struct fp_resp *resp)
{
        char msg[300];

        snprintf(msg, sizeof(msg), "Model %.200s does not exist",
                 model_of(call));
        hf_error(resp, 404, msg);
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        hf_error(resp, 429,
                 "Rate limit reached. You reached free usage limit (reset "
                 "hourly). Please subscribe to a plan at "
                 "https://huggingface.co/pricing to use the API at this "
                 "rate");
}

static void err_loading(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[300];

        snprintf(msg, sizeof(msg), "Model %.200s is currently loading",
                 model_of(call));
        fpresp_json(resp, 503,
                    json_pack("{s:s, s:f}", "error", msg, "estimated_time",
                              20.0),
                    JSON_COMPACT);
}

static void err_too_long(const struct fp_call *call, struct fp_resp *resp)
{
        hf_error(resp, 400, TOO_LONG_MSG);
}

static void err_server(const struct fp_call *call, struct fp_resp *resp)
{
        hf_error(resp, 500, "Internal Server Error");
}

/* 400 {"error": ["Error in `<field>`: <why>"]}. @returns -1. */
static int invalid(struct fp_resp *resp, const char *field, const char *why)
{
        char msg[256];

        snprintf(msg, sizeof(msg), "Error in `%s`: %s", field, why);
        fpresp_json(resp, 400, json_pack("{s:[s]}", "error", msg),
                    JSON_COMPACT);
        return -1;
}

/* ---- text-to-image --------------------------------------------------- */

static int check_int(struct fp_resp *resp, const json_t *params,
                     const char *k, json_int_t lo, json_int_t hi)
{
        const json_t *v = json_object_get(params, k);
        char field[64];

        if (!v || json_is_null(v))
                return 0;
        if (json_is_integer(v) && json_integer_value(v) >= lo &&
            json_integer_value(v) <= hi)
                return 0;
        snprintf(field, sizeof(field), "parameters.%s", k);
        return invalid(resp, field, "value is out of range");
}

static void text_to_image(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *params = json_object_get(call->json, "parameters");

        if (!json_is_object(call->json) ||
            !json_string_length(json_object_get(call->json, "inputs"))) {
                invalid(resp, "inputs",
                        "field required (a non-empty string)");
                return;
        }
        if (params && !json_is_object(params)) {
                invalid(resp, "parameters", "must be an object");
                return;
        }
        if (check_int(resp, params, "width", 64, 2048) ||
            check_int(resp, params, "height", 64, 2048) ||
            check_int(resp, params, "num_inference_steps", 1, 100))
                return;
        fpresp_set(resp, 200, (const char *)png, sizeof(png));
        fpresp_content_type(resp, "image/png");
}

/* ---- speech ---------------------------------------------------------- */

static uint32_t le32(const unsigned char *b)
{
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
               (uint32_t)b[3] << 24;
}

/* Seconds of a WAV; -1 not a WAV; -2 a broken one. */
static double wav_seconds(const unsigned char *b, size_t len)
{
        uint32_t rate = 0, sz;
        size_t off = 12;

        if (len < 12 || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4))
                return -1;
        while (off + 8 <= len) {
                sz = le32(b + off + 4);
                if (!memcmp(b + off, "fmt ", 4) && sz >= 16 &&
                    off + 24 <= len)
                        rate = le32(b + off + 16);
                if (!memcmp(b + off, "data", 4))
                        return rate ? (double)(sz < len - off - 8
                                                       ? sz
                                                       : len - off - 8) /
                                              rate
                                    : -2;
                if (sz > len - off - 8)
                        break;
                off += 8 + (size_t)sz + (sz & 1);
        }
        return -2;
}

static int b64_value(int c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode standard base64 into a new buffer; NULL if it is not base64. */
static unsigned char *b64_decode(const char *s, size_t len, size_t *outlen)
{
        unsigned char *out = xmalloc(len / 4 * 3 + 3);
        uint32_t acc = 0;
        size_t n = 0;
        int bits = 0, v;

        for (size_t i = 0; i < len && s[i] != '='; i++) {
                v = b64_value((unsigned char)s[i]);
                if (v < 0) {
                        free(out);
                        return NULL;
                }
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (unsigned char)(acc >> bits);
                }
        }
        *outlen = n;
        return out;
}

/* The audio of the request: raw body or decoded JSON "inputs".
 * @returns 0, or -1 with \p resp filled.  *owned is freed by the caller. */
static int audio_of(const struct fp_call *call, struct fp_resp *resp,
                    const unsigned char **a, size_t *len,
                    unsigned char **owned, int *timestamps)
{
        const char *ct = fakeprov_header(call, "Content-Type");
        const json_t *in = json_object_get(call->json, "inputs");

        *owned = NULL;
        *timestamps = 0;
        if (ct && !strncasecmp(ct, "application/json", 16)) {
                if (!json_is_string(in))
                        return invalid(resp, "inputs",
                                       "expected base64-encoded audio");
                *owned = b64_decode(json_string_value(in),
                                    json_string_length(in), len);
                if (!*owned)
                        return invalid(resp, "inputs", "invalid base64");
                *a = *owned;
                *timestamps = json_is_true(json_object_get(
                        json_object_get(call->json, "parameters"),
                        "return_timestamps"));
                return 0;
        }
        if (!ct || (strncasecmp(ct, "audio/", 6) &&
                    strncasecmp(ct, "application/octet-stream", 24))) {
                hf_error(resp, 400, "Content type not supported: expected "
                                    "audio bytes");
                return -1;
        }
        *a = (const unsigned char *)call->body;
        *len = call->body_len;
        return 0;
}

static void transcript(struct fp_resp *resp, double secs, size_t len,
                       int timestamps)
{
        char text[96];
        json_t *j;

        if (secs >= 0)
                snprintf(text, sizeof(text), "fake transcript of %.1f seconds",
                         secs);
        else
                snprintf(text, sizeof(text),
                         "fake transcript of %zu bytes of audio", len);
        j = json_pack("{s:s}", "text", text);
        if (timestamps)
                json_object_set_new(
                        j, "chunks",
                        json_pack("[{s:[f, o], s:s}]", "timestamp", 0.0,
                                  secs >= 0 ? json_real(secs) : json_null(),
                                  "text", text));
        fpresp_json(resp, 200, j, JSON_COMPACT);
}

static void speech(const struct fp_call *call, struct fp_resp *resp)
{
        const unsigned char *a = NULL;
        unsigned char *owned;
        size_t len = 0;
        int ts;
        double secs;

        if (audio_of(call, resp, &a, &len, &owned, &ts) == -1)
                return;
        secs = len ? wav_seconds(a, len) : -1;
        if (!len)
                hf_error(resp, 400, "No audio was sent");
        else if (secs == -2)
                hf_error(resp, 400, "Malformed soundfile");
        else if (secs > MAX_RAW_SECONDS && !ts)
                hf_error(resp, 400, TOO_LONG_MSG);
        else
                transcript(resp, secs, len, ts);
        free(owned);
}

/* ---- routes ---------------------------------------------------------- */

static void infer(const struct fp_call *call, struct fp_resp *resp)
{
        if (!call->auth_ok) {
                err_invalid_token(call, resp);
                return;
        }
        switch (task_of(model_of(call))) {
        case TASK_ASR:
                speech(call, resp);
                break;
        case TASK_IMAGE:
                text_to_image(call, resp);
                break;
        case TASK_NONE:
                err_model_not_found(call, resp);
                break;
        }
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        hf_error(resp, 404, "Not Found");
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
        {"POST", "/models/*/*", infer},
        {"POST", "/models/*", infer},
        {"POST", "/hf-inference/models/*/*", infer},
        {"POST", "/hf-inference/models/*", infer},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_token", err_invalid_token},
        {"credits_exhausted", err_credits},
        {"forbidden", err_forbidden},
        {"model_not_found", err_model_not_found},
        {"rate_limit", err_rate_limit},
        {"loading", err_loading},
        {"too_long", err_too_long},
        {"server_error", err_server},
        {NULL, NULL},
};

static const char *const defaults[] = {"hf", NULL};

const struct fp_family fam_hf = {
        .name = "hf",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
