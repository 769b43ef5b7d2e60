/**
 * @file fam_replicate.c
 * @brief Family "replicate": Replicate predictions
 *        (provider-api-reference.md 5.4).  Default provider: replicate.
 *
 *   POST <prefix>/v1/predictions                     {"version","input"}
 *   POST <prefix>/v1/models/{owner}/{name}/predictions         {"input"}
 *   GET  <prefix>/v1/predictions/{id}
 *   POST <prefix>/v1/predictions/{id}/cancel
 *
 * Checks, in order: Authorization "Bearer <key>" (or the older "Token
 * <key>"), else 401; the body is a JSON object (400); the model is one of
 * black-forest-labs/flux-schnell, black-forest-labs/flux-dev,
 * black-forest-labs/flux-1.1-pro, stability-ai/sdxl,
 * bytedance/sdxl-lightning-4step (else 404), or "version" is 64 lower-case
 * hex digits, optionally after "owner/name:" (else 422 "Invalid version
 * or not permitted"); "input" an object with a non-empty string "prompt",
 * "num_outputs" an integer 1..4 and "output_format" webp|jpg|png when
 * present (else 422 "Input validation failed" with invalid_fields).
 *
 * LIFECYCLE (fptask; markers in input.prompt or header X-Fake-Task)
 *
 *   create           201, status "starting"
 *   poll 1..N-1      "processing"           (N = [steps:N], default 3)
 *   poll N           "succeeded", or "failed" with [fail] / [fail:C:MSG]
 *                    (error = MSG, default "Internal server error")
 *   [never]          "processing" forever
 *   [after:MS]       "succeeded"/"failed" from MS ms after create, polled
 *                    or not ("processing" before)
 *   cancel           200, the prediction: "canceled" from then on (a
 *                    finished prediction is returned as it is); cancel
 *                    and get of an unknown id: 404 {"title":"Not found",
 *                    "detail":"Not found.","status":404}
 *
 * WEBHOOK  "webhook" (an http(s) URL, else 422; http://127.0.0.1 or
 *   localhost only, others refused with a log line), unless
 *   "webhook_events_filter" is an array without "completed": at the end
 *   (succeeded, failed or canceled, whichever is seen first by a poll, a
 *   cancel or the [after:MS] clock) the prediction object is POSTed once
 *   (fpcb.h).
 *
 * DETERMINISTIC ANSWERS
 *
 *   id      the fptask id (16 hex digits)
 *   output  an array of num_outputs (default 1) URLs
 *           https://replicate.delivery/fake/<id>/out-<i>.<fmt>, i from 0,
 *           fmt = input.output_format or "webp"; a prompt containing
 *           "[string]" gets one URL as a plain string instead
 *   metrics {"predict_time": 1.5, "total_time": 1.75} once succeeded
 *   model   the owner/name used, or "fake-owner/fake-model" for versions;
 *           version the id given, or "hidden" for official models
 *   urls    get/cancel at http://<Host>/<provider>/v1/predictions/<id>
 *
 * Named errors (script {"error": NAME}); problem JSON
 * {"title","detail","status"}:
 *
 *   invalid_token        401 Unauthenticated
 *   insufficient_credit  402 Insufficient credit
 *   model_not_found      404 Not found
 *   invalid_input        422 Input validation failed
 *   rate_limit           429 verbatim reference body (retry_after 5) and
 *                        header retry-after: 5
 *   server_error         500 Internal Server Error
 *   unavailable          503 HTML page (a proxy's answer)
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fakeprov.h"
#include "fpprov.h"
#include "fptask.h"
#include "xmem.h"

#define VERSION_LEN 64
#define PRED_PREFIX "/v1/predictions/"
#define MODELS_PREFIX "/v1/models/"

/* ---- problem JSON ---------------------------------------------------- */

static void problem(struct fp_resp *resp, unsigned status, const char *title,
                    const char *detail)
{
        fpresp_json(resp, status,
                    json_pack("{s:s?, s:s, s:i}", "title", title, "detail",
                              detail, "status", (int)status),
                    JSON_COMPACT);
}

static void err_invalid_token(const struct fp_call *call,
                              struct fp_resp *resp)
{
        problem(resp, 401, "Unauthenticated",
                "You did not pass a valid authentication token");
}

static void err_credit(const struct fp_call *call, struct fp_resp *resp)
{
        problem(resp, 402, "Insufficient credit",
                "You have insufficient credit to run this model. Go to "
                "https://replicate.com/account/billing#billing to purchase "
                "credit. Once you purchase credit, please wait a few "
                "minutes before trying the run again.");
}

static void err_model_not_found(const struct fp_call *call,
                                struct fp_resp *resp)
{
        problem(resp, 404, "Not found",
                "The requested model does not exist (or you do not have "
                "access to it).");
}

/* 422 with one invalid field. @returns -1. */
static int invalid_input(struct fp_resp *resp, const char *field,
                         const char *type, const char *desc)
{
        char detail[256];

        snprintf(detail, sizeof(detail), "- %s: %s", field, desc);
        fpresp_json(resp, 422,
                    json_pack("{s:s, s:s, s:i, s:[{s:s, s:s, s:s}]}", "title",
                              "Input validation failed", "detail", detail,
                              "status", 422, "invalid_fields", "type", type,
                              "field", field, "description", desc),
                    JSON_COMPACT);
        return -1;
}

static void err_invalid_input(const struct fp_call *call,
                              struct fp_resp *resp)
{
        invalid_input(resp, "input", "required", "prompt is required");
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        static const char body[] =
                "{\"detail\":\"Request was throttled. Your rate limit for "
                "creating predictions is reduced to 6 requests per minute "
                "with a burst of 1 requests while you have less than $5.0 "
                "in credit. Your rate limit resets in ~5s.\",\"status\":429,"
                "\"retry_after\":5}";

        fpresp_set(resp, 429, body, sizeof(body) - 1);
        fpresp_header(resp, "retry-after", "5");
}

static void err_server(const struct fp_call *call, struct fp_resp *resp)
{
        problem(resp, 500, "Internal Server Error",
                "An unexpected error occurred. Please try again.");
}

static void err_unavailable(const struct fp_call *call, struct fp_resp *resp)
{
        static const char page[] =
                "<html><head><title>503 Service Temporarily Unavailable"
                "</title></head><body><h1>503 Service Temporarily "
                "Unavailable</h1></body></html>";

        fpresp_set(resp, 503, page, sizeof(page) - 1);
        fpresp_content_type(resp, "text/html");
}

/* ---- request checks -------------------------------------------------- */

static const char *const models[] = {
        "black-forest-labs/flux-schnell", "black-forest-labs/flux-dev",
        "black-forest-labs/flux-1.1-pro", "stability-ai/sdxl",
        "bytedance/sdxl-lightning-4step",
};

static int model_known(const char *m, size_t n)
{
        for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
                if (strlen(models[i]) == n && !strncmp(m, models[i], n))
                        return 1;
        return 0;
}

static int is_hex_id(const char *s)
{
        return strlen(s) == VERSION_LEN &&
               strspn(s, "0123456789abcdef") == VERSION_LEN;
}

/* "hex" or "owner/name:hex": the hex part, or NULL. */
static const char *version_id(const char *v)
{
        const char *c = v ? strchr(v, ':') : NULL;

        if (v && is_hex_id(v))
                return v;
        return c && is_hex_id(c + 1) && strchr(v, '/') < c ? c + 1 : NULL;
}

static int check_input(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *in = json_object_get(call->json, "input");
        const json_t *n = json_object_get(in, "num_outputs");
        const char *fmt;

        if (!json_is_object(in))
                return invalid_input(resp, "input", "required",
                                     "input is required");
        if (!json_string_length(json_object_get(in, "prompt")))
                return invalid_input(resp, "prompt", "required",
                                     "prompt is required");
        if (n && (!json_is_integer(n) || json_integer_value(n) < 1 ||
                  json_integer_value(n) > 4))
                return invalid_input(resp, "num_outputs", "number.max",
                                     "Must be between 1 and 4");
        fmt = json_string_value(json_object_get(in, "output_format"));
        if (json_object_get(in, "output_format") &&
            (!fmt || (strcmp(fmt, "webp") && strcmp(fmt, "jpg") &&
                      strcmp(fmt, "png"))))
                return invalid_input(resp, "output_format", "enum",
                                     "output_format must be one of the "
                                     "following: \"webp\", \"jpg\", "
                                     "\"png\"");
        return 0;
}

/* ---- the prediction object ------------------------------------------- */

static void iso_time(int64_t ms, char *out, size_t outsz)
{
        time_t s = (time_t)(ms / 1000);
        struct tm tm;

        gmtime_r(&s, &tm);
        snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* The task's state word. */
static const char *state_of(const struct fptask *t)
{
        if (t->canceled)
                return "canceled";
        if (!t->done)
                return t->polls ? "processing" : "starting";
        return t->fate == FPTASK_FAIL ? "failed" : "succeeded";
}

static json_t *output_of(const struct fptask *t, const json_t *in,
                         const char *host)
{
        const char *fmt = json_string_value(json_object_get(in,
                                                            "output_format"));
        const json_t *nv = json_object_get(in, "num_outputs");
        const char *prompt = json_string_value(json_object_get(in, "prompt"));
        json_int_t n = json_is_integer(nv) ? json_integer_value(nv) : 1;
        json_t *out = json_array();
        char url[256];

        for (json_int_t i = 0; i < n; i++) {
                /* The fake's own media endpoint serves it. */
                snprintf(url, sizeof(url),
                         "http://%s/_fake/media/replicate-%s-%d.%s",
                         host ? host : "127.0.0.1", t->id, (int)i,
                         fmt ? fmt : "webp");
                json_array_append_new(out, json_string(url));
        }
        if (prompt && strstr(prompt, "[string]")) {
                json_t *one = json_incref(json_array_get(out, 0));

                json_decref(out);
                return one;
        }
        return out;
}

/* model/version recorded in the submit body by create (see there). */
static void put_model(json_t *pred, const json_t *sub)
{
        const char *model = json_string_value(json_object_get(sub,
                                                              "_model"));
        const char *version = version_id(
                json_string_value(json_object_get(sub, "version")));

        json_object_set_new(pred, "model",
                            json_string(model ? model
                                              : "fake-owner/fake-model"));
        json_object_set_new(pred, "version",
                            json_string(version ? version : "hidden"));
}

static void put_result(json_t *pred, const struct fptask *t,
                       const json_t *in, const char *state, int64_t now,
                       const char *host)
{
        char ts[64];

        if (!strcmp(state, "succeeded")) {
                json_object_set_new(pred, "output",
                                    output_of(t, in, host));
                json_object_set_new(pred, "metrics",
                                    json_pack("{s:f, s:f}", "predict_time",
                                              1.5, "total_time", 1.75));
        } else if (!strcmp(state, "failed")) {
                json_object_set_new(pred, "error", json_string(t->fail_msg));
                json_object_set_new(pred, "logs",
                                    json_string("Prediction failed.\n"));
        }
        if (t->polls || t->done) {
                iso_time(t->created_ms, ts, sizeof(ts));
                json_object_set_new(pred, "started_at", json_string(ts));
        }
        if (strcmp(state, "starting") && strcmp(state, "processing")) {
                iso_time(now, ts, sizeof(ts));
                json_object_set_new(pred, "completed_at", json_string(ts));
        }
}

/* The prediction object; URLs name \p host. */
static json_t *prediction_at(const char *host, const struct fptask *t)
{
        json_t *sub = json_loads(t->input, 0, NULL);
        const json_t *in = json_object_get(sub, "input");
        const char *state = state_of(t);
        char created[64], get[512], cancel[600];
        json_t *pred;

        iso_time(t->created_ms, created, sizeof(created));
        snprintf(get, sizeof(get), "http://%s/%s" PRED_PREFIX "%s",
                 host ? host : "127.0.0.1", t->provider, t->id);
        snprintf(cancel, sizeof(cancel), "%s/cancel", get);
        pred = json_pack("{s:s, s:s, s:o, s:n, s:n, s:s, s:{}, s:s, s:b, "
                         "s:{s:s, s:s}}",
                         "id", t->id, "status", state, "input",
                         in ? json_incref((json_t *)in) : json_object(),
                         "output", "error", "logs",
                         "", "metrics", "created_at", created, "data_removed",
                         0, "urls", "get", get, "cancel", cancel);
        if (!pred)
                fatal("fam_replicate: json_pack prediction");
        put_model(pred, sub);
        put_result(pred, t, in, state, fakeprov_now_ms(), host);
        json_decref(sub);
        return pred;
}

static json_t *prediction(const struct fp_call *call, const struct fptask *t)
{
        const char *host = fakeprov_header(call, "Host");

        return prediction_at(host && strlen(host) < 256 ? host : NULL, t);
}

/* The webhook body: the prediction object (reference 5.4). */
static char *webhook_body(const struct fptask *t)
{
        json_t *pred = prediction_at(t->host, t);
        char *s = json_dumps(pred, JSON_COMPACT);

        json_decref(pred);
        return s;
}

/* The "completed" event is wanted: no filter, or a filter naming it. */
static int wants_completed(const json_t *req)
{
        const json_t *f = json_object_get(req, "webhook_events_filter");
        const json_t *ev;
        size_t i;

        if (!json_is_array(f))
                return 1;
        json_array_foreach (f, i, ev)
                if (json_is_string(ev) &&
                    !strcmp(json_string_value(ev), "completed"))
                        return 1;
        return 0;
}

/* ---- routes ---------------------------------------------------------- */

/* Create the task; the submit body gets "_model" so polls can name it. */
static void create(const struct fp_call *call, struct fp_resp *resp,
                   const char *model, size_t model_len)
{
        const char *prompt = json_string_value(json_object_get(
                json_object_get(call->json, "input"), "prompt"));
        struct fp_call c2 = *call;
        json_t *sub = json_object();
        struct fptask_cb cb = {.body = webhook_body};
        struct fptask t;
        char *body;

        /* first, so that fptask's 2 KiB cut of the body keeps it */
        if (model)
                json_object_set_new(sub, "_model",
                                    json_stringn(model, model_len));
        json_object_update(sub, call->json);
        body = json_dumps(sub, JSON_COMPACT);
        json_decref(sub);
        if (!body)
                fatal("fam_replicate: json_dumps");
        c2.body = body;
        c2.body_len = strlen(body);
        if (wants_completed(call->json))
                cb.url = json_string_value(json_object_get(call->json,
                                                           "webhook"));
        fptask_create_cb(&c2, "", prompt, &cb, &t);
        free(body);
        fpresp_json(resp, 201, prediction(call, &t), JSON_COMPACT);
}

/* Absent, null, or an http(s) URL. */
static int webhook_ok(const json_t *w)
{
        const char *s = json_string_value(w);

        if (!w || json_is_null(w))
                return 1;
        return s && (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8));
}

static int check_common(const struct fp_call *call, struct fp_resp *resp)
{
        if (!call->auth_ok) {
                err_invalid_token(call, resp);
                return -1;
        }
        if (!json_is_object(call->json)) {
                problem(resp, 400, "Invalid JSON",
                        "The request body is not valid JSON.");
                return -1;
        }
        if (!webhook_ok(json_object_get(call->json, "webhook"))) {
                problem(resp, 422, "Unprocessable Entity",
                        "- webhook: Enter a valid URL.");
                return -1;
        }
        return 0;
}

static void create_version(const struct fp_call *call, struct fp_resp *resp)
{
        const char *v;

        if (check_common(call, resp))
                return;
        v = json_string_value(json_object_get(call->json, "version"));
        if (!version_id(v)) {
                problem(resp, 422, "Invalid version or not permitted",
                        "The specified version does not exist (or perhaps "
                        "you don't have permission to use it?)");
                return;
        }
        if (check_input(call, resp))
                return;
        create(call, resp, v && strchr(v, ':') ? v : NULL,
               v && strchr(v, ':') ? (size_t)(strchr(v, ':') - v) : 0);
}

static void create_model(const struct fp_call *call, struct fp_resp *resp)
{
        const char *m = call->path + strlen(MODELS_PREFIX);
        size_t n = strlen(m) - strlen("/predictions");

        if (check_common(call, resp))
                return;
        if (!model_known(m, n)) {
                err_model_not_found(call, resp);
                return;
        }
        if (check_input(call, resp))
                return;
        create(call, resp, m, n);
}

static void not_found_pred(struct fp_resp *resp)
{
        problem(resp, 404, "Not found", "Not found.");
}

static void get(const struct fp_call *call, struct fp_resp *resp)
{
        struct fptask t;

        if (!call->auth_ok) {
                err_invalid_token(call, resp);
                return;
        }
        if (fptask_poll(call, call->path + strlen(PRED_PREFIX), &t) == -1) {
                not_found_pred(resp);
                return;
        }
        fpresp_json(resp, 200, prediction(call, &t), JSON_COMPACT);
}

static void cancel(const struct fp_call *call, struct fp_resp *resp)
{
        const char *id = call->path + strlen(PRED_PREFIX);
        char buf[96];
        struct fptask t;

        if (!call->auth_ok) {
                err_invalid_token(call, resp);
                return;
        }
        snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(id, "/"), id);
        if (fptask_cancel(call, buf) == -1) {
                not_found_pred(resp);
                return;
        }
        fptask_peek(call, buf, &t);
        fpresp_json(resp, 200, prediction(call, &t), JSON_COMPACT);
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        problem(resp, 404, "Not found", "Not found.");
}

/* Authorization: Bearer <key> (or the older Token <key>). */
static const char *get_key(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Authorization");

        if (h && !strncasecmp(h, "Bearer ", 7))
                h += 7;
        else if (h && !strncasecmp(h, "Token ", 6))
                h += 6;
        else
                return NULL;
        while (*h == ' ')
                h++;
        return *h ? h : NULL;
}

static const struct fp_route routes[] = {
        {"POST", "/v1/predictions", create_version},
        {"POST", MODELS_PREFIX "*/*/predictions", create_model},
        {"GET", PRED_PREFIX "*", get},
        {"POST", PRED_PREFIX "*/cancel", cancel},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_token", err_invalid_token},
        {"insufficient_credit", err_credit},
        {"model_not_found", err_model_not_found},
        {"invalid_input", err_invalid_input},
        {"rate_limit", err_rate_limit},
        {"server_error", err_server},
        {"unavailable", err_unavailable},
        {NULL, NULL},
};

static const char *const defaults[] = {"replicate", NULL};

const struct fp_family fam_replicate = {
        .name = "replicate",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
