/**
 * @file fam_sf_video.c
 * @brief Family "sf_video": SiliconFlow video generation
 *        (provider-api-reference.md sections 7.1, 7.2).  Default provider
 *        "sf-video"; base URL http://127.0.0.1:PORT/sf-video/v1.
 *
 * ROUTES
 *
 *   POST /v1/video/submit   {model, prompt, image_size, image?,
 *                            negative_prompt?, seed?} -> {"requestId"}
 *   POST /v1/video/status   {"requestId"}   (POST, not GET: a GET gets the
 *                            404 below)
 *
 * Errors are SiliconFlow's {"code": int, "message": str, "data": null}
 * with the HTTP status; every answer carries x-siliconcloud-trace-id
 * "fake-trace-<n>" (n = the provider's request number).
 *
 * submit CHECKS, in order
 *
 *   key                          401 {"code":20005,"message":"Invalid token"}
 *   body a JSON object           400 code 20015
 *   model a string               400 code 20015
 *   model known                  400 code 20012 "Model does not exist.
 *                                Please check it carefully."  Known:
 *                                Wan-AI/Wan2.2-T2V-A14B, Wan-AI/Wan2.2-I2V-
 *                                A14B, Wan-AI/Wan2.1-T2V-14B(-Turbo),
 *                                Wan-AI/Wan2.1-I2V-14B-720P(-Turbo),
 *                                tencent/HunyuanVideo
 *   prompt a non-empty string    400 code 20015
 *   image_size REQUIRED, one of 1280x720 720x1280 960x960
 *                                400 code 20015
 *   image: required for I2V models (an http(s) URL or data:image/...),
 *   refused for the others       400 code 20015
 *   negative_prompt a string, seed an integer, when present
 *                                400 code 20015
 *
 * TASKS (fptask.h markers anywhere in the submit body, or X-Fake-Task).
 * Poll k (1-based) before the end: "InQueue" with position = N - 1 - k
 * while that is > 0, then "InProgress" (position 0); poll N (default 3)
 * ends: {"status":"Succeed","reason":"","position":0,"results":{"videos":
 * [{"url":"http://<Host>/_fake/media/video-<requestId>.mp4"}],"timings":
 * {"inference":188.4},"seed":<the submitted seed, else 42>}} or
 * {"status":"Failed","reason":"<MSG of [fail:CODE:MSG], else Internal
 * server error>","position":0,"results":null}.  Default N = 3: InQueue 1,
 * InProgress, end.  Unknown requestId: 404 {"code":20404,"message":"The
 * video task does not exist.","data":null}; missing requestId: 400 20015.
 *
 * NAMED ERRORS
 *
 *   invalid_key 401 20005 "Invalid token"; model_not_found 400 20012;
 *   bad_request 400 20015; insufficient_balance 403 30011 (verbatim
 *   "paid balance is insufficient" sample); real_name 403 30003 (real-name
 *   verification); rate_limit 429 50603 "Request was rejected due to rate
 *   limiting. Details: IPM limit reached."; server_error 500 50500;
 *   overloaded 503 50505; timeout 504 50506.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "fptask.h"
#include "xmem.h"

#define DEFAULT_SEED 42
#define INFERENCE_S 188.4

/* ---- envelope --------------------------------------------------------- */

static void trace_id(const struct fp_call *call, struct fp_resp *resp)
{
        char id[48];

        snprintf(id, sizeof(id), "fake-trace-%llu",
                 (unsigned long long)call->seq);
        fpresp_header(resp, "x-siliconcloud-trace-id", id);
}

static void sf_error(const struct fp_call *call, struct fp_resp *resp,
                     unsigned status, int code, const char *msg)
{
        json_t *j = json_pack("{s:i, s:s, s:n}", "code", code, "message",
                              msg, "data");

        if (!j)
                fatal("fam_sf_video: json_pack error");
        fpresp_json(resp, status, j, JSON_COMPACT);
        trace_id(call, resp);
}

static int bad_param(const struct fp_call *call, struct fp_resp *resp,
                     const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/** 400 code 20015 with the parameter named. @returns -1. */
static int bad_param(const struct fp_call *call, struct fp_resp *resp,
                     const char *fmt, ...)
{
        char detail[256], msg[400];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        snprintf(msg, sizeof(msg),
                 "The parameter is invalid. Please check again. (%s)",
                 detail);
        sf_error(call, resp, 400, 20015, msg);
        return -1;
}

/* ---- named errors ----------------------------------------------------- */

static void err_invalid_key(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 401, 20005, "Invalid token");
}

static void err_model_not_found(const struct fp_call *call,
                                struct fp_resp *resp)
{
        sf_error(call, resp, 400, 20012,
                 "Model does not exist. Please check it carefully.");
}

static void err_bad_request(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 400, 20015,
                 "The parameter is invalid. Please check again.");
}

static void err_balance(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 403, 30011,
                 "The selected model requires paid balance. Your paid "
                 "balance is insufficient. Please top up and try again.");
}

static void err_real_name(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 403, 30003,
                 "This model requires real-name verification. Please "
                 "complete it and try again.");
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 429, 50603,
                 "Request was rejected due to rate limiting. Details: IPM "
                 "limit reached.");
}

static void err_server(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 500, 50500, "Unknown error, please try again.");
}

static void err_overloaded(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 503, 50505,
                 "Model service overloaded. Please try again later.");
}

static void err_timeout(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 504, 50506,
                 "Gateway timeout. Please use streaming for long requests.");
}

/* ---- submit ------------------------------------------------------------ */

static const char *const models[] = {
        "Wan-AI/Wan2.2-T2V-A14B",          "Wan-AI/Wan2.2-I2V-A14B",
        "Wan-AI/Wan2.1-T2V-14B",           "Wan-AI/Wan2.1-T2V-14B-Turbo",
        "Wan-AI/Wan2.1-I2V-14B-720P",      "Wan-AI/Wan2.1-I2V-14B-720P-Turbo",
        "tencent/HunyuanVideo",            NULL,
};

static const char *const image_sizes[] = {"1280x720", "720x1280", "960x960",
                                          NULL};

static int in_list(const char *s, const char *const *list)
{
        for (; s && *list; list++)
                if (!strcmp(s, *list))
                        return 1;
        return 0;
}

static int is_image_ref(const char *s)
{
        return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) ||
               !strncmp(s, "data:image/", 11);
}

/** The I2V image: required for I2V models, refused for others. */
static int check_image(const struct fp_call *call, struct fp_resp *resp,
                       const char *model)
{
        const json_t *img = json_object_get(call->json, "image");
        int i2v = strstr(model, "I2V") != NULL;

        if (!img && i2v)
                return bad_param(call, resp, "image is required for %s",
                                 model);
        if (img && !i2v)
                return bad_param(call, resp, "image is not accepted by %s",
                                 model);
        if (img && (!json_is_string(img) ||
                    !is_image_ref(json_string_value(img))))
                return bad_param(call, resp,
                                 "image must be a URL or a data URI");
        return 0;
}

static int check_optional(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *neg = json_object_get(call->json, "negative_prompt");
        const json_t *seed = json_object_get(call->json, "seed");

        if (neg && !json_is_string(neg))
                return bad_param(call, resp,
                                 "negative_prompt must be a string");
        if (seed && !json_is_integer(seed))
                return bad_param(call, resp, "seed must be an integer");
        return 0;
}

static int check_submit(const struct fp_call *call, struct fp_resp *resp)
{
        const char *model = json_string_value(json_object_get(call->json,
                                                              "model"));
        const json_t *prompt = json_object_get(call->json, "prompt");
        const char *size = json_string_value(json_object_get(call->json,
                                                             "image_size"));

        if (!json_is_object(call->json))
                return bad_param(call, resp, "the body must be JSON");
        if (!model)
                return bad_param(call, resp, "model is required");
        if (!in_list(model, models)) {
                err_model_not_found(call, resp);
                return -1;
        }
        if (!json_is_string(prompt) || !json_string_length(prompt))
                return bad_param(call, resp, "prompt is required");
        if (!in_list(size, image_sizes))
                return bad_param(call, resp,
                                 "image_size is required: 1280x720, "
                                 "720x1280 or 960x960");
        if (check_image(call, resp, model) == -1)
                return -1;
        return check_optional(call, resp);
}

static void submit(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *seed;
        struct fp_call rec;
        struct fptask t;
        char text[32];

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (check_submit(call, resp) == -1)
                return;
        /* the task keeps only the seed: "<seed>" */
        seed = json_object_get(call->json, "seed");
        rec = *call;
        rec.body_len = (size_t)snprintf(
                text, sizeof(text), "%" JSON_INTEGER_FORMAT,
                json_is_integer(seed) ? json_integer_value(seed)
                                      : DEFAULT_SEED);
        rec.body = text;
        fptask_create(&rec, "", call->body, &t);
        fpresp_json(resp, 200, json_pack("{s:s}", "requestId", t.id),
                    JSON_COMPACT);
        trace_id(call, resp);
}

/* ---- status ----------------------------------------------------------- */

static const char *host_of(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Host");

        return h && *h && strlen(h) < 200 ? h : "127.0.0.1";
}

static json_t *succeed_json(const struct fp_call *call,
                            const struct fptask *t)
{
        char url[512];

        snprintf(url, sizeof(url), "http://%s/_fake/media/video-%s.mp4",
                 host_of(call), t->id);
        return json_pack("{s:s, s:s, s:i, s:{s:[{s:s}], s:{s:f}, s:I}}",
                         "status", "Succeed", "reason", "", "position", 0,
                         "results", "videos", "url", url, "timings",
                         "inference", INFERENCE_S, "seed",
                         (json_int_t)atoll(t->input));
}

static json_t *status_json(const struct fp_call *call, const struct fptask *t)
{
        int pos = t->steps - 1 - t->polls;

        if (t->done && t->fate == FPTASK_SUCCEED)
                return succeed_json(call, t);
        if (t->done)
                return json_pack("{s:s, s:s, s:i, s:n}", "status", "Failed",
                                 "reason", t->fail_msg, "position", 0,
                                 "results");
        return json_pack("{s:s, s:s, s:i, s:n}", "status",
                         pos > 0 ? "InQueue" : "InProgress", "reason", "",
                         "position", pos > 0 ? pos : 0, "results");
}

static void status(const struct fp_call *call, struct fp_resp *resp)
{
        const char *id = json_string_value(json_object_get(call->json,
                                                           "requestId"));
        struct fptask t;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (!id || !*id) {
                bad_param(call, resp, "requestId is required");
                return;
        }
        if (fptask_poll(call, id, &t) == -1) {
                sf_error(call, resp, 404, 20404,
                         "The video task does not exist.");
                return;
        }
        fpresp_json(resp, 200, status_json(call, &t), JSON_COMPACT);
        trace_id(call, resp);
}

/* ---- family ----------------------------------------------------------- */

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

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        sf_error(call, resp, 404, 20404, "Not Found");
}

static const struct fp_route routes[] = {
        {"POST", "/v1/video/submit", submit},
        {"POST", "/v1/video/status", status},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"model_not_found", err_model_not_found},
        {"bad_request", err_bad_request},
        {"insufficient_balance", err_balance},
        {"real_name", err_real_name},
        {"rate_limit", err_rate_limit},
        {"server_error", err_server},
        {"overloaded", err_overloaded},
        {"timeout", err_timeout},
        {NULL, NULL},
};

static const char *const defaults[] = {"sf-video", NULL};

const struct fp_family fam_sf_video = {
        .name = "sf_video",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
