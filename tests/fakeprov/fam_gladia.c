/**
 * @file fam_gladia.c
 * @brief Family "gladia": Gladia v2 pre-recorded transcription, reference
 *        9.3.
 *
 *   POST <prefix>/v2/pre-recorded       {"audio_url", "language_config"?,
 *                                        ...} -> 201 {"id", "result_url"}
 *   GET  <prefix>/v2/pre-recorded/<id>  the job, one state per poll
 *
 * Auth: "x-gladia-key: <key>".  Errors (shape unconfirmed in the
 * reference): {"timestamp", "path", "request_id": "G-<n>", "statusCode",
 * "message"} (+ "validation_errors" on 400).  Default provider: "gladia".
 *
 * Submit checks, in order: key (401) -> JSON object -> audio_url a string
 * starting with http:// or https:// -> language_config, if present, an
 * object whose "languages" (if present) is an array of strings and whose
 * "code_switching" (if present) is a boolean.  Failures: 400.
 *
 * result_url = "http://<Host header>/<provider>/v2/pre-recorded/<id>".
 *
 * LIFECYCLE (fptask; fate from markers in the audio_url, e.g.
 * ".../tone-3s.wav?x=[fail:422:bad audio]", or the X-Fake-Task header)
 *
 *   poll k before the end: "queued" for k = 1, then "processing"
 *             ([never]: forever); error_code null, result null.
 *   end (poll number = steps, default 3):
 *     success: "done"; duration = N for an audio_url containing
 *              /_fake/media/tone-<N>s.wav, else 12.096 (nothing is
 *              fetched); file.audio_duration and
 *              result.metadata.audio_duration = duration;
 *              result.transcription.full_transcript = "fake transcript of
 *              <duration %.1f> seconds", languages = the first
 *              language_config language, else ["en"]; one utterance.
 *     failure: "error", error_code = the [fail:CODE] code as an integer
 *              (default 500), file null, result null.
 *   unknown id -> 404.
 *
 * NAMED ERRORS
 *
 *   invalid_key   401 "Invalid or missing x-gladia-key"
 *   quota         402 "You have reached your usage limit"
 *   forbidden     403 "Your plan does not allow this usage"
 *   bad_request   400 "audio_url must be a URL address" (+ validation_errors)
 *   unprocessable 422 "Unprocessable audio file"
 *   not_found     404 "Job not found"
 *   rate_limit    429 "Too many concurrent requests" (retry-after: 1)
 *   server_error  500 "Internal server error"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fakeprov.h"
#include "fpprov.h"
#include "fptask.h"
#include "xmem.h"

/* Reals as 12.096, not 12.096000000000000085. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))
#define DEFAULT_DURATION 12.096
#define TONE_PREFIX "/_fake/media/tone-"
#define JOB_PATH "/v2/pre-recorded"

/* ---- errors ----------------------------------------------------------- */

/* The error body Gladia's API gateway sends. */
static json_t *gl_body(const struct fp_call *call, unsigned status,
                       const char *msg)
{
        char ts[32], rid[32];
        time_t now = (time_t)(fakeprov_now_ms() / 1000);
        struct tm tm;

        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
        snprintf(rid, sizeof(rid), "G-%08llx",
                 (unsigned long long)call->seq);
        return json_pack("{s:s, s:s, s:s, s:i, s:s}", "timestamp", ts, "path",
                         call->path ? call->path : "", "request_id", rid,
                         "statusCode", (int)status, "message", msg);
}

static void gl_error(const struct fp_call *call, struct fp_resp *resp,
                     unsigned status, const char *msg)
{
        fpresp_json(resp, status, gl_body(call, status, msg), DUMP_FLAGS);
}

static void err_invalid_key(const struct fp_call *c, struct fp_resp *r)
{
        gl_error(c, r, 401, "Invalid or missing x-gladia-key");
}

static void err_quota(const struct fp_call *c, struct fp_resp *r)
{
        gl_error(c, r, 402, "You have reached your usage limit");
}

static void err_forbidden(const struct fp_call *c, struct fp_resp *r)
{
        gl_error(c, r, 403, "Your plan does not allow this usage");
}

/* 400 with the validator's detail list. */
static void bad_request(const struct fp_call *c, struct fp_resp *r,
                        const char *msg)
{
        json_t *j = gl_body(c, 400, msg);

        json_object_set_new(j, "validation_errors", json_pack("[s]", msg));
        fpresp_json(r, 400, j, DUMP_FLAGS);
}

static void err_bad_request(const struct fp_call *c, struct fp_resp *r)
{
        bad_request(c, r, "audio_url must be a URL address");
}

static void err_unprocessable(const struct fp_call *c, struct fp_resp *r)
{
        gl_error(c, r, 422, "Unprocessable audio file");
}

static void err_not_found(const struct fp_call *c, struct fp_resp *r)
{
        gl_error(c, r, 404, "Job not found");
}

static void err_rate_limit(const struct fp_call *c, struct fp_resp *r)
{
        gl_error(c, r, 429, "Too many concurrent requests");
        fpresp_header(r, "retry-after", "1");
}

static void err_server(const struct fp_call *c, struct fp_resp *r)
{
        gl_error(c, r, 500, "Internal server error");
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        gl_error(call, resp, 404, "Cannot find the requested resource");
}

/* ---- jobs ------------------------------------------------------------- */

static int has_scheme(const char *url)
{
        return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

static int check_langcfg(const json_t *lc)
{
        const json_t *langs = json_object_get(lc, "languages");
        const json_t *cs = json_object_get(lc, "code_switching");
        const json_t *l;
        size_t i;

        if (!json_is_object(lc))
                return -1;
        if (cs && !json_is_boolean(cs))
                return -1;
        if (!langs)
                return 0;
        if (!json_is_array(langs))
                return -1;
        json_array_foreach(langs, i, l)
                if (!json_is_string(l))
                        return -1;
        return 0;
}

/* @returns the audio_url, or NULL after answering 400. */
static const char *check_submit(const struct fp_call *call,
                                struct fp_resp *resp)
{
        const json_t *url = json_object_get(call->json, "audio_url");
        const json_t *lc = json_object_get(call->json, "language_config");

        if (!json_is_object(call->json))
                bad_request(call, resp, "Body must be a JSON object");
        else if (!json_is_string(url) || !has_scheme(json_string_value(url)))
                bad_request(call, resp, "audio_url must be a URL address");
        else if (lc && check_langcfg(lc) == -1)
                bad_request(call, resp,
                            "language_config must be an object with "
                            "languages (string[]) and code_switching "
                            "(boolean)");
        else
                return json_string_value(url);
        return NULL;
}

static double url_duration(const char *url)
{
        const char *t = url ? strstr(url, TONE_PREFIX) : NULL;
        int n = 0;

        if (t && sscanf(t + strlen(TONE_PREFIX), "%ds.wav", &n) == 1 && n > 0)
                return n;
        return DEFAULT_DURATION;
}

static const char *state_of(const struct fptask *t)
{
        if (!t->done)
                return t->polls <= 1 ? "queued" : "processing";
        return t->fate == FPTASK_FAIL ? "error" : "done";
}

static json_t *language_of(const json_t *sub)
{
        const json_t *l = json_array_get(
                json_object_get(json_object_get(sub, "language_config"),
                                "languages"),
                0);

        return json_pack("[s]", json_is_string(l) ? json_string_value(l)
                                                  : "en");
}

static json_t *file_of(const struct fptask *t, double d)
{
        return json_pack("{s:s, s:s, s:n, s:f, s:i}", "id", t->id,
                         "filename", "audio", "source", "audio_duration", d,
                         "number_of_channels", 1);
}

static json_t *result_of(const json_t *sub, double d)
{
        char text[96];
        json_t *langs = language_of(sub), *r;

        snprintf(text, sizeof(text), "fake transcript of %.1f seconds", d);
        r = json_pack(
                "{s:{s:f, s:i, s:f, s:f}, s:{s:s, s:O, s:[{s:f, s:f, s:s, "
                "s:s, s:i, s:f, s:[]}]}}",
                "metadata", "audio_duration", d,
                "number_of_distinct_channels", 1, "billing_time", d,
                "transcription_time", 0.1, "transcription",
                "full_transcript", text, "languages", langs, "utterances",
                "start", 0.0, "end", d, "text", text, "language",
                json_string_value(json_array_get(langs, 0)), "channel", 0,
                "confidence", 0.93, "words");
        json_decref(langs);
        return r;
}

static void answer(const struct fptask *t, struct fp_resp *resp)
{
        json_t *sub = json_loads(t->input, 0, NULL);
        const char *state = state_of(t);
        double d = url_duration(
                json_string_value(json_object_get(sub, "audio_url")));
        int done = !strcmp(state, "done"), err = !strcmp(state, "error");
        json_t *job = json_pack(
                "{s:s, s:s, s:i, s:s, s:s, s:s, s:{}, s:n, s:n, s:n, s:n}",
                "id", t->id, "request_id", "G-fake", "version", 2, "status",
                state, "kind", "pre-recorded", "created_at",
                "2023-12-28T09:04:17.210Z", "custom_metadata", "completed_at",
                "error_code", "file", "result");

        if (err)
                json_object_set_new(job, "error_code",
                                    json_integer(atoi(t->fail_code)));
        if (done) {
                json_object_set_new(job, "completed_at",
                                    json_string("2023-12-28T09:04:37.210Z"));
                json_object_set_new(job, "file", file_of(t, d));
                json_object_set_new(job, "result", result_of(sub, d));
        }
        json_decref(sub);
        fpresp_json(resp, 200, job, DUMP_FLAGS);
}

static void submit(const struct fp_call *call, struct fp_resp *resp)
{
        const char *url, *host = fakeprov_header(call, "Host");
        char result_url[512];
        struct fptask t;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        url = check_submit(call, resp);
        if (!url)
                return;
        fptask_create(call, "", url, &t);
        snprintf(result_url, sizeof(result_url), "http://%.200s/%.64s%s/%s",
                 host ? host : "127.0.0.1", fpprov_name(call->prov),
                 JOB_PATH, t.id);
        fpresp_json(resp, 201,
                    json_pack("{s:s, s:s}", "id", t.id, "result_url",
                              result_url),
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

/* ---- family ----------------------------------------------------------- */

static const char *get_key(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "x-gladia-key");

        return h && *h ? h : NULL;
}

static const struct fp_route routes[] = {
        {"POST", JOB_PATH, submit},
        {"GET", JOB_PATH "/*", poll},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"quota", err_quota},
        {"forbidden", err_forbidden},
        {"bad_request", err_bad_request},
        {"unprocessable", err_unprocessable},
        {"not_found", err_not_found},
        {"rate_limit", err_rate_limit},
        {"server_error", err_server},
        {NULL, NULL},
};

static const char *const defaults[] = {"gladia", NULL};

const struct fp_family fam_gladia = {
        .name = "gladia",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
