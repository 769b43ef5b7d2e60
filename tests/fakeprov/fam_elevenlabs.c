/**
 * @file fam_elevenlabs.c
 * @brief Family "elevenlabs": ElevenLabs text-to-speech, reference 10.2.
 *
 *   POST <prefix>/v1/text-to-speech/<voice_id>[?output_format=F]
 *   POST <prefix>/v1/text-to-speech/<voice_id>/stream[?output_format=F]
 *
 * Auth: "xi-api-key: <key>".  Errors: {"detail": {"status", "message"}};
 * body validation errors (422) in FastAPI's list form {"detail": [{"loc",
 * "msg", "type"}]}.  Default provider: "elevenlabs".
 *
 * Checks, in order: key (401 invalid_api_key) -> voice_id exactly 20
 * letters and digits, like "21m00Tcm4TlvDq8ikWAM" (400 voice_not_found) ->
 * output_format (default mp3_44100_128) one of mp3_22050_32, mp3_44100_32,
 * mp3_44100_64, mp3_44100_96, mp3_44100_128, mp3_44100_192, pcm_16000,
 * pcm_22050, pcm_24000, pcm_44100, ulaw_8000 (400 invalid_output_format)
 * -> the body is a JSON object (422) -> "text" a non-empty string (422
 * field required) -> "model_id", if present, one of eleven_multilingual_v2,
 * eleven_turbo_v2_5, eleven_flash_v2_5, eleven_v3, eleven_turbo_v2,
 * eleven_flash_v2, eleven_monolingual_v1, eleven_multilingual_v1 (400
 * model_not_found).
 *
 * Success: 200, body = 32 + 64 * chars(text) bytes (chars = UTF-8 code
 * points): "ID3" then byte i = (i * 31 + 7) & 0xff for mp3 formats
 * (Content-Type audio/mpeg), no magic and application/octet-stream for
 * the others; header request-id: req_fake<n>.
 *
 * NAMED ERRORS
 *
 *   quota_exceeded        401 quota_exceeded, the verbatim message (THE
 *                         TRAP: 401 that is not a bad key)
 *   invalid_key           401 invalid_api_key "Invalid API key"
 *   unusual_activity      401 detected_unusual_activity
 *   too_many_concurrent   429 too_many_concurrent_requests (the verbatim
 *                         concurrency message)
 *   system_busy           429 system_busy
 *   voice_not_found       400 voice_not_found
 *   validation            422 FastAPI list (body -> text: field required)
 *   conflict              409 (no detail.status)
 *   server_error          500 internal_server_error
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "xmem.h"

#define TTS_PREFIX "/v1/text-to-speech/"
#define VOICE_ID_LEN 20
#define DEFAULT_FORMAT "mp3_44100_128"

static const char *const output_formats[] = {
        "mp3_22050_32",  "mp3_44100_32", "mp3_44100_64", "mp3_44100_96",
        DEFAULT_FORMAT,  "mp3_44100_192", "pcm_16000",   "pcm_22050",
        "pcm_24000",     "pcm_44100",    "ulaw_8000",
};

static const char *const models[] = {
        "eleven_multilingual_v2", "eleven_turbo_v2_5", "eleven_flash_v2_5",
        "eleven_v3",              "eleven_turbo_v2",   "eleven_flash_v2",
        "eleven_monolingual_v1",  "eleven_multilingual_v1",
};

/* ---- errors ----------------------------------------------------------- */

static void el_error(struct fp_resp *resp, unsigned status,
                     const char *code, const char *msg)
{
        fpresp_json(resp, status,
                    json_pack("{s:{s:s, s:s}}", "detail", "status", code,
                              "message", msg),
                    JSON_COMPACT);
}

/* FastAPI's 422: {"detail": [{"loc": ["body", field], "msg", "type"}]} */
static void el_validation(struct fp_resp *resp, const char *field,
                          const char *msg, const char *type)
{
        fpresp_json(resp, 422,
                    json_pack("{s:[{s:[s, s], s:s, s:s}]}", "detail", "loc",
                              "body", field, "msg", msg, "type", type),
                    JSON_COMPACT);
}

static void err_quota(const struct fp_call *c, struct fp_resp *r)
{
        el_error(r, 401, "quota_exceeded",
                 "This request exceeds your quota of 10000. You have 0 "
                 "credits remaining, while 91 credits are required for this "
                 "request.");
}

static void err_invalid_key(const struct fp_call *c, struct fp_resp *r)
{
        el_error(r, 401, "invalid_api_key", "Invalid API key");
}

static void err_unusual(const struct fp_call *c, struct fp_resp *r)
{
        el_error(r, 401, "detected_unusual_activity",
                 "Unusual activity detected. Free Tier usage disabled.");
}

static void err_concurrent(const struct fp_call *c, struct fp_resp *r)
{
        el_error(r, 429, "too_many_concurrent_requests",
                 "Too many concurrent requests. Your current subscription is "
                 "associated with a maximum of 2 concurrent requests "
                 "(running in parallel).");
}

static void err_busy(const struct fp_call *c, struct fp_resp *r)
{
        el_error(r, 429, "system_busy",
                 "We are experiencing heavy traffic, please try again "
                 "later.");
}

static void err_voice(const struct fp_call *c, struct fp_resp *r)
{
        el_error(r, 400, "voice_not_found",
                 "A voice with the voice_id was not found.");
}

static void err_validation(const struct fp_call *c, struct fp_resp *r)
{
        el_validation(r, "text", "field required", "value_error.missing");
}

static void err_conflict(const struct fp_call *c, struct fp_resp *r)
{
        fpresp_json(r, 409,
                    json_pack("{s:s}", "detail",
                              "Another request is modifying this voice."),
                    JSON_COMPACT);
}

static void err_server(const struct fp_call *c, struct fp_resp *r)
{
        el_error(r, 500, "internal_server_error",
                 "An internal server error occurred.");
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        fpresp_json(resp, 404, json_pack("{s:s}", "detail", "Not Found"),
                    JSON_COMPACT);
}

/* ---- text-to-speech --------------------------------------------------- */

static int in_list(const char *s, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!strcmp(s, list[i]))
                        return 1;
        return 0;
}

#define IN_LIST(s, l) in_list((s), (l), sizeof(l) / sizeof((l)[0]))

/* The voice id segment of the path into \p out. @returns 0 or -1. */
static int voice_id(const char *path, char *out, size_t outsz)
{
        const char *v = path + strlen(TTS_PREFIX);
        size_t n = strcspn(v, "/");

        snprintf(out, outsz, "%.*s", (int)(n < outsz ? n : outsz - 1), v);
        if (n != VOICE_ID_LEN)
                return -1;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)v[i]))
                        return -1;
        return 0;
}

static int check_url(const struct fp_call *call, struct fp_resp *resp,
                     const char **fmt)
{
        char voice[80], msg[200];

        if (voice_id(call->path, voice, sizeof(voice)) == -1) {
                snprintf(msg, sizeof(msg),
                         "A voice with the voice_id %.64s was not found.",
                         voice);
                el_error(resp, 400, "voice_not_found", msg);
                return -1;
        }
        *fmt = fakeprov_query(call, "output_format");
        if (!*fmt)
                *fmt = DEFAULT_FORMAT;
        if (!IN_LIST(*fmt, output_formats)) {
                el_error(resp, 400, "invalid_output_format",
                         "Invalid output format.");
                return -1;
        }
        return 0;
}

static int check_body(const struct fp_call *call, struct fp_resp *resp,
                      const char **text)
{
        const json_t *t = json_object_get(call->json, "text");
        const json_t *m = json_object_get(call->json, "model_id");

        if (!json_is_object(call->json)) {
                el_validation(resp, "body", "value is not a valid dict",
                              "type_error.dict");
                return -1;
        }
        if (!json_is_string(t) || !json_string_length(t)) {
                el_validation(resp, "text", "field required",
                              "value_error.missing");
                return -1;
        }
        if (m && (!json_is_string(m) ||
                  !IN_LIST(json_string_value(m), models))) {
                el_error(resp, 400, "model_not_found",
                         "A model with the requested model_id does not "
                         "exist.");
                return -1;
        }
        *text = json_string_value(t);
        return 0;
}

static size_t utf8_chars(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

static void tts(const struct fp_call *call, struct fp_resp *resp)
{
        const char *fmt, *text;
        char rid[48];
        size_t n, i;
        int mp3;
        char *b;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (check_url(call, resp, &fmt) == -1 ||
            check_body(call, resp, &text) == -1)
                return;
        mp3 = !strncmp(fmt, "mp3_", 4);
        n = 32 + 64 * utf8_chars(text);
        b = xmalloc(n + 1);
        for (i = 0; i < n; i++)
                b[i] = (char)((i * 31 + 7) & 0xff);
        if (mp3)
                memcpy(b, "ID3", 3);
        b[n] = '\0';
        fpresp_set_owned(resp, 200, b, n);
        fpresp_content_type(resp,
                            mp3 ? "audio/mpeg" : "application/octet-stream");
        snprintf(rid, sizeof(rid), "req_fake%llu",
                 (unsigned long long)call->seq);
        fpresp_header(resp, "request-id", rid);
}

/* ---- family ----------------------------------------------------------- */

static const char *get_key(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "xi-api-key");

        return h && *h ? h : NULL;
}

static const struct fp_route routes[] = {
        {"POST", TTS_PREFIX "*", tts},
        {"POST", TTS_PREFIX "*/stream", tts},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"quota_exceeded", err_quota},
        {"invalid_key", err_invalid_key},
        {"unusual_activity", err_unusual},
        {"too_many_concurrent", err_concurrent},
        {"system_busy", err_busy},
        {"voice_not_found", err_voice},
        {"validation", err_validation},
        {"conflict", err_conflict},
        {"server_error", err_server},
        {NULL, NULL},
};

static const char *const defaults[] = {"elevenlabs", NULL};

const struct fp_family fam_elevenlabs = {
        .name = "elevenlabs",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
