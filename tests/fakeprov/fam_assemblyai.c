/**
 * @file fam_assemblyai.c
 * @brief Family "assemblyai": AssemblyAI async transcription, reference 9.2.
 *
 *   POST <prefix>/v2/upload          raw bytes -> {"upload_url": ...}
 *   POST <prefix>/v2/transcript      {"audio_url", "language_code"?,
 *                                     "speech_model"?} -> transcript, queued
 *   GET  <prefix>/v2/transcript/<id> the transcript, one state per poll
 *
 * Auth: "Authorization: <key>", the RAW key; "Bearer <key>" is a wrong key
 * (401).  Errors are {"error": "..."}.  Default provider: "assemblyai".
 *
 * Submit checks, in order: key (401 "Authentication error, API token
 * missing/invalid") -> JSON object -> audio_url a string starting with
 * http:// or https:// -> language_code, if present, a string ->
 * speech_model, if present, one of best, nano, universal, slam-1.  Each
 * failure is a 400 with {"error": "..."}.
 *
 * LIFECYCLE (fptask; fate from markers in the audio_url, e.g.
 * ".../tone-3s.wav?x=[fail]", or the X-Fake-Task header)
 *
 *   submit -> 200 {"id", "status": "queued", "audio_url", "text": null,
 *             "words": null, "audio_duration": null, "error": null, ...}
 *   poll k (1-based) before the end: "queued" for k = 1, then
 *             "processing" ([never]: forever).
 *   end (poll number = steps, default 3):
 *     success: "completed", audio_duration = N for an audio_url
 *              containing /_fake/media/tone-<N>s.wav, else 12.096 (the
 *              fake fetches nothing); text = "fake transcript of
 *              <audio_duration %.1f> seconds"; words: one entry per word
 *              of the text, start = 500 * i ms, end = start + 400;
 *              language_code as submitted, else "en_us".
 *     failure: "error", "error" = the [fail:CODE:MSG] message, else
 *              "Internal server error".  E.g. "[fail:400:Download error,
 *              unable to download the file]" is a download error.
 *   unknown id -> 404 {"error": "Transcript lookup error, transcript id
 *              not found"}.
 *   [after:MS] in the audio_url: the end comes MS ms after submit, polled
 *              or not.
 *
 * WEBHOOK  "webhook_url" (an http(s) URL, else 400 "webhook_url must be a
 *   valid URL"; http://127.0.0.1 or localhost only, others refused with a
 *   log line): at the end, POST {"transcript_id": "<id>", "status":
 *   "completed"|"error"} once, with header <webhook_auth_header_name>:
 *   <webhook_auth_header_value> when both are given (fpcb.h).
 *
 * NAMED ERRORS
 *
 *   invalid_key           401 "Authentication error, API token missing/invalid"
 *   insufficient_balance  401 "Your account balance is insufficient. Please
 *                         top up your account to continue." (quota trap)
 *   payment_required      402 "Payment required: add funds to continue"
 *   cannot_access_upload  403 "Cannot access uploaded file"
 *   bad_request           400 "Invalid audio_url"
 *   not_found             404 transcript lookup error (as above)
 *   rate_limit            429 "Too many concurrent requests" (retry-after: 1)
 *   server_error          500 "Internal server error"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "fptask.h"
#include "xmem.h"

/* Reals as 12.096, not 12.096000000000000085. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))
#define DEFAULT_DURATION 12.096
#define TONE_PREFIX "/_fake/media/tone-"

static const char *const speech_models[] = {"best", "nano", "universal",
                                            "slam-1"};

/* ---- errors ----------------------------------------------------------- */

static void aai_error(struct fp_resp *resp, unsigned status, const char *msg)
{
        fpresp_json(resp, status, json_pack("{s:s}", "error", msg),
                    DUMP_FLAGS);
}

static void err_invalid_key(const struct fp_call *c, struct fp_resp *r)
{
        aai_error(r, 401, "Authentication error, API token missing/invalid");
}

static void err_balance(const struct fp_call *c, struct fp_resp *r)
{
        aai_error(r, 401,
                  "Your account balance is insufficient. Please top up your "
                  "account to continue.");
}

static void err_payment(const struct fp_call *c, struct fp_resp *r)
{
        aai_error(r, 402, "Payment required: add funds to continue");
}

static void err_cannot_access(const struct fp_call *c, struct fp_resp *r)
{
        aai_error(r, 403, "Cannot access uploaded file");
}

static void err_bad_request(const struct fp_call *c, struct fp_resp *r)
{
        aai_error(r, 400, "Invalid audio_url");
}

static void err_not_found(const struct fp_call *c, struct fp_resp *r)
{
        aai_error(r, 404, "Transcript lookup error, transcript id not found");
}

static void err_rate_limit(const struct fp_call *c, struct fp_resp *r)
{
        aai_error(r, 429,
                  "Too many concurrent requests. Please try again later.");
        fpresp_header(r, "retry-after", "1");
}

static void err_server(const struct fp_call *c, struct fp_resp *r)
{
        aai_error(r, 500, "Internal server error");
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        aai_error(resp, 404, "Not found");
}

/* ---- transcripts ------------------------------------------------------ */

static int has_scheme(const char *url)
{
        return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

static int in_list(const char *s, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!strcmp(s, list[i]))
                        return 1;
        return 0;
}

static int webhook_ok(const json_t *w)
{
        return !w || json_is_null(w) ||
               (json_is_string(w) && has_scheme(json_string_value(w)));
}

/* @returns the audio_url, or NULL after answering 400. */
static const char *check_submit(const struct fp_call *call,
                                struct fp_resp *resp)
{
        const json_t *url = json_object_get(call->json, "audio_url");
        const json_t *lang = json_object_get(call->json, "language_code");
        const json_t *sm = json_object_get(call->json, "speech_model");

        if (!json_is_object(call->json))
                aai_error(resp, 400, "Invalid JSON in request body");
        else if (!json_is_string(url) || !has_scheme(json_string_value(url)))
                aai_error(resp, 400,
                          "audio_url is required and must be a valid URL");
        else if (!webhook_ok(json_object_get(call->json, "webhook_url")))
                aai_error(resp, 400, "webhook_url must be a valid URL");
        else if (lang && !json_is_null(lang) && !json_is_string(lang))
                aai_error(resp, 400, "language_code must be a string");
        else if (sm && !json_is_null(sm) &&
                 (!json_is_string(sm) ||
                  !in_list(json_string_value(sm), speech_models,
                           sizeof(speech_models) / sizeof(speech_models[0]))))
                aai_error(resp, 400,
                          "speech_model must be one of best, nano, "
                          "universal, slam-1");
        else
                return json_string_value(url);
        return NULL;
}

/* N for .../_fake/media/tone-<N>s.wav, else the fixed default. */
static double url_duration(const char *url)
{
        const char *t = url ? strstr(url, TONE_PREFIX) : NULL;
        int n = 0;

        if (t && sscanf(t + strlen(TONE_PREFIX), "%ds.wav", &n) == 1 && n > 0)
                return n;
        return DEFAULT_DURATION;
}

/* \p v (a new reference) if it is a string, else \p dflt. */
static json_t *str_or(const json_t *v, const char *dflt)
{
        return json_is_string(v) ? json_incref((json_t *)v)
                                 : json_string(dflt);
}

/* The transcript object in state \p status; \p sub is the submit body. */
static json_t *transcript(const struct fptask *t, const json_t *sub,
                          const char *status)
{
        json_t *tr = json_pack(
                "{s:s, s:s, s:o, s:n, s:n, s:n, s:n, s:o, s:o, s:b, s:n}",
                "id", t->id, "status", status, "audio_url",
                str_or(json_object_get(sub, "audio_url"), ""), "text",
                "words", "confidence", "audio_duration", "language_code",
                str_or(json_object_get(sub, "language_code"), "en_us"),
                "speech_model",
                str_or(json_object_get(sub, "speech_model"), "best"),
                "punctuate", 1, "error");

        if (!tr)
                fatal("fam_assemblyai: json_pack transcript");
        return tr;
}

static json_t *words_of(const char *text)
{
        json_t *arr = json_array();
        char word[64];
        int i = 0, n;

        while (sscanf(text, "%63s%n", word, &n) == 1) {
                json_array_append_new(
                        arr, json_pack("{s:s, s:i, s:i, s:f, s:n}", "text",
                                       word, "start", 500 * i, "end",
                                       500 * i + 400, "confidence", 0.9,
                                       "speaker"));
                text += n;
                i++;
        }
        return arr;
}

static void complete(json_t *tr, const json_t *sub)
{
        double d = url_duration(
                json_string_value(json_object_get(sub, "audio_url")));
        char text[96];

        snprintf(text, sizeof(text), "fake transcript of %.1f seconds", d);
        json_object_set_new(tr, "text", json_string(text));
        json_object_set_new(tr, "words", words_of(text));
        json_object_set_new(tr, "confidence", json_real(0.956));
        json_object_set_new(tr, "audio_duration", json_real(d));
}

static const char *state_of(const struct fptask *t)
{
        if (!t->done)
                return t->polls <= 1 ? "queued" : "processing";
        return t->fate == FPTASK_FAIL ? "error" : "completed";
}

static void answer(const struct fptask *t, struct fp_resp *resp)
{
        json_t *sub = json_loads(t->input, 0, NULL);
        const char *state = state_of(t);
        json_t *tr = transcript(t, sub, state);

        if (!strcmp(state, "error"))
                json_object_set_new(tr, "error", json_string(t->fail_msg));
        else if (!strcmp(state, "completed"))
                complete(tr, sub);
        json_decref(sub);
        fpresp_json(resp, 200, tr, DUMP_FLAGS);
}

/* The webhook body AssemblyAI POSTs (reference 9.2). */
static char *webhook_body(const struct fptask *t)
{
        json_t *j = json_pack("{s:s, s:s}", "transcript_id", t->id, "status",
                              state_of(t));
        char *s;

        if (!j)
                fatal("fam_assemblyai: json_pack webhook");
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
}

/* webhook_auth_header_name/_value as one "Name: value" header, or NULL. */
static const char *auth_header(const json_t *req, char *buf, size_t n)
{
        const char *name = json_string_value(
                json_object_get(req, "webhook_auth_header_name"));
        const char *value = json_string_value(
                json_object_get(req, "webhook_auth_header_value"));

        if (!name || !*name || !value || strpbrk(name, ":\r\n") ||
            strpbrk(value, "\r\n"))
                return NULL;
        snprintf(buf, n, "%s: %s", name, value);
        return buf;
}

static void submit(const struct fp_call *call, struct fp_resp *resp)
{
        struct fptask_cb cb = {.body = webhook_body};
        char hdr[320];
        struct fptask t;
        const char *url;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        url = check_submit(call, resp);
        if (!url)
                return;
        cb.url = json_string_value(json_object_get(call->json,
                                                   "webhook_url"));
        cb.header = auth_header(call->json, hdr, sizeof(hdr));
        fptask_create_cb(call, "", url, &cb, &t);
        fpresp_json(resp, 200, transcript(&t, call->json, "queued"),
                    DUMP_FLAGS);
}

static void poll(const struct fp_call *call, struct fp_resp *resp)
{
        const char *id = strrchr(call->path, '/') + 1;
        struct fptask t;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (fptask_poll(call, id, &t) == -1) {
                err_not_found(call, resp);
                return;
        }
        answer(&t, resp);
}

static void upload(const struct fp_call *call, struct fp_resp *resp)
{
        char url[96];

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (!call->body_len) {
                aai_error(resp, 400, "Upload body is empty");
                return;
        }
        snprintf(url, sizeof(url),
                 "https://cdn.assemblyai.com/upload/fake-%llu",
                 (unsigned long long)call->seq);
        fpresp_json(resp, 200, json_pack("{s:s}", "upload_url", url),
                    DUMP_FLAGS);
}

/* ---- family ----------------------------------------------------------- */

/* Authorization: <key>, the raw key. */
static const char *get_key(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Authorization");

        return h && *h ? h : NULL;
}

static const struct fp_route routes[] = {
        {"POST", "/v2/upload", upload},
        {"POST", "/v2/transcript", submit},
        {"GET", "/v2/transcript/*", poll},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"insufficient_balance", err_balance},
        {"payment_required", err_payment},
        {"cannot_access_upload", err_cannot_access},
        {"bad_request", err_bad_request},
        {"not_found", err_not_found},
        {"rate_limit", err_rate_limit},
        {"server_error", err_server},
        {NULL, NULL},
};

static const char *const defaults[] = {"assemblyai", NULL};

const struct fp_family fam_assemblyai = {
        .name = "assemblyai",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
