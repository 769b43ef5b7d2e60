/**
 * @file fam_kie.c
 * @brief Family "kie": the KIE jobs API (provider-api-reference.md section
 *        6) and KIE's per-model chat endpoints (6.5).  Default providers
 *        "kie" and "kie-mirror"; base URL http://127.0.0.1:PORT/kie (jobs)
 *        or http://127.0.0.1:PORT/kie/gemini-3-flash/v1 (chat).
 *
 * ROUTES
 *
 *   POST /api/v1/jobs/createTask        {"model", "callBackUrl"?, "input"}
 *   GET  /api/v1/jobs/recordInfo?taskId=<id>
 *   GET  /api/v1/chat/credit
 *   POST /<model>/v1/chat/completions   model: gemini-2.5-flash,
 *                                       gemini-2.5-pro, gemini-3-flash,
 *                                       gemini-3-pro
 *
 * ENVELOPE AND STATUS LINE (jobs and credit)
 *
 *   Every answer is {"code": N, "msg": "...", "data": ...}.  By default the
 *   HTTP status is 200 whatever the code: errors arrive inside a 200.
 *   Mirror mode makes the HTTP status equal the code: on for a provider
 *   whose name ends in "-mirror" (the default "kie-mirror"), or for one
 *   request with header "X-Fake-Http-Status: mirror"; the header value
 *   "200" turns it off for one request on a mirror provider.  Named errors
 *   follow the same rule.  Answers of recordInfo that are errors spell the
 *   message member "message" (as KIE's get-task-detail page does); all
 *   other answers spell it "msg".  A path no route serves gets HTTP 404
 *   {"code":404,"msg":"Not Found","data":null}.
 *
 * createTask CHECKS, in order (each failure is code 422 unless noted)
 *
 *   key (code 401 "You do not have access permissions"); body a JSON
 *   object (code 400); "model" a known model (below); "input" an object;
 *   callBackUrl, when present, an http(s) URL; then the model's fields:
 *
 *   google/nano-banana       prompt (<= 5000, required), output_format
 *                            png|jpeg, aspect_ratio and the deprecated
 *                            image_size 1:1 9:16 16:9 3:4 4:3 3:2 2:3 5:4
 *                            4:5 21:9 auto
 *   google/nano-banana-edit  prompt, image_urls (1..10 http(s) URLs,
 *                            required), output_format, image_size
 *   nano-banana-pro          prompt, image_input (0..8 URLs), aspect_ratio
 *                            (as above), resolution 1K|2K|4K,
 *                            output_format png|jpg
 *   sora-2-text-to-video     prompt (<= 10000, required), aspect_ratio
 *                            landscape|portrait, n_frames a STRING "10"|
 *                            "15" (a number is refused), remove_watermark
 *                            boolean, upload_method s3|oss
 *   sora-2-image-to-video    the same + image_urls (required)
 *   sora-2-pro-text-to-video, sora-2-pro-image-to-video
 *                            the same + size standard|high
 *   sora-2-pro-storyboard    n_frames (required) "10"|"15"|"25", shots
 *                            (required): objects {"Scene": text,
 *                            "duration": number > 0} -- capital S, a
 *                            lower-case "scene" is refused -- whose
 *                            durations sum to n_frames; image_urls,
 *                            aspect_ratio optional
 *
 *   Success: {"code":200,"msg":"success","data":{"taskId":"<id>"}}, ids
 *   "task_google_<16 hex>" (google/...), "task_nanobanana_<16 hex>" (pro),
 *   "task_sora2_<16 hex>" (Sora).
 *
 * TASKS (fptask.h: markers "[fail]", "[fail:CODE:MSG]", "[never]",
 * "[steps:N]" anywhere in the createTask body, normally the prompt or a
 * Scene; or header X-Fake-Task)
 *
 *   poll k (1-based) before the end: k = 1 "waiting", k = 2 "queuing",
 *   k >= 3 "generating"; poll number N (default 3) is the end: "success"
 *   or "fail".  recordInfo answers code 200 with data {taskId, model,
 *   state, param, resultJson, failCode, failMsg, consumeCredits,
 *   remainedCredits, costTime, completeTime, createTime, updateTime}:
 *
 *   param        the createTask body as a JSON *string* (its first ~2000
 *                bytes: longer bodies are cut)
 *   resultJson   null while running and on failure; on success a JSON
 *                *string* {"resultUrls":["http://<Host>/_fake/media/
 *                <kind>-<taskId>.<ext>"]}, <Host> the request's Host
 *                header, kind image|video, ext png (default), jpeg or jpg
 *                (the output_format sent), mp4 for video
 *   failCode     "" on success, null while running; on failure the
 *                marker's CODE (string) or "500"; failMsg the marker's MSG
 *                or "Internal server error"
 *   consumeCredits at the end (absent while running): on success
 *                nano-banana and -edit 4; nano-banana-pro 18 (24 at 4K);
 *                Sora 2 3 per second of n_frames, pro 9 per second (15 at
 *                size high), storyboard 9 per second (n_frames default
 *                "10"); 0 on failure
 *   remainedCredits at the end: 100000, as GET /api/v1/chat/credit
 *                reports (the balance is not tracked)
 *
 *   recordInfo without taskId: code 422; an unknown id: code 404
 *   "Task not found" (both with "message").
 *
 * CALLBACKS (fpcb.h; README "Provider callbacks")
 *
 *   With "callBackUrl" (http://127.0.0.1 or localhost only; others are
 *   refused with a log line) the task's end is POSTed once: the record
 *   above with code 200 / msg "Playground task completed successfully."
 *   or code 501 / msg "Playground task failed.", result URLs naming the
 *   createTask's Host.  The end comes from the poll that reaches it, or
 *   from the clock with "[after:MS]".
 *
 * CHAT (/<model>/v1/chat/completions)
 *
 *   OpenAI envelope errors: 401 {"error":{"message","type":
 *   "authentication_error"}}; 400 invalid_request_error for a body that is
 *   not an object, messages missing/empty/malformed, stream not a
 *   boolean, reasoning_effort not low|high; 404 for an unknown model
 *   segment.  The reply and usage follow fam_openai.c's formulas exactly
 *   (content "fake reply: " + last user text cut to 40 bytes, token
 *   counts by words), "model" is the path's model, id "chatcmpl-<n>".  No
 *   "model" member is needed.  "stream" DEFAULTS TO TRUE: without
 *   "stream": false the answer is SSE (as fam_openai.c's stream).
 *
 * NAMED ERRORS (script steps {"error": NAME}); on a chat path the same
 * name answers in the OpenAI envelope with the status in brackets:
 *
 *   invalid_key 401 [401 authentication_error], insufficient_credits 402
 *   [402 insufficient_quota], bad_request 400 [400], not_found 404 [404],
 *   validation 422 [400], rate_limit 429 [429 rate_limit_error],
 *   subkey_limit 433 [429 insufficient_quota, "credit" in the message],
 *   maintenance 455 [503], server_error 500 [500 server_error],
 *   generation_failed 501 [500], feature_disabled 505 [503].
 */
#include <fnmatch.h>
#include <math.h>
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

#define BALANCE 100000
#define CHAT_ROUTE "/*/v1/chat/completions"
#define RECORD_ROUTE "/api/v1/jobs/recordInfo"
#define MIRROR_SUFFIX "-mirror"
#define REPLY_PREFIX "fake reply: "
#define REPLY_MAX_TEXT 40

/* ---- the envelope ----------------------------------------------------- */

/** HTTP status = code for this request? */
static int mirror(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "X-Fake-Http-Status");
        const char *name = fpprov_name(call->prov);
        size_t n = strlen(name), m = strlen(MIRROR_SUFFIX);

        if (h && !strcasecmp(h, "mirror"))
                return 1;
        if (h && !strcmp(h, "200"))
                return 0;
        return n > m && !strcmp(name + n - m, MIRROR_SUFFIX);
}

static int is_record_path(const struct fp_call *call)
{
        return !strcmp(call->path, RECORD_ROUTE);
}

/** {"code", "msg"|"message", "data"}; takes \p data (NULL: null). */
static void kie_answer(const struct fp_call *call, struct fp_resp *resp,
                       int code, const char *msg, json_t *data)
{
        const char *field =
                code != 200 && is_record_path(call) ? "message" : "msg";
        json_t *j = json_pack("{s:i, s:s, s:o}", "code", code, field, msg,
                              "data", data ? data : json_null());

        if (!j)
                fatal("fam_kie: json_pack envelope");
        fpresp_json(resp, mirror(call) ? (unsigned)code : 200, j,
                    JSON_COMPACT);
}

static int kie_fail(const struct fp_call *call, struct fp_resp *resp,
                    int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/** An error envelope with a formatted message. @returns -1. */
static int kie_fail(const struct fp_call *call, struct fp_resp *resp,
                    int code, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kie_answer(call, resp, code, msg, NULL);
        return -1;
}

/* ---- OpenAI envelope (chat) -------------------------------------------- */

static void oai_error(struct fp_resp *resp, unsigned status,
                      const char *msg, const char *type)
{
        json_t *j = json_pack("{s:{s:s, s:s}}", "error", "message", msg,
                              "type", type);

        if (!j)
                fatal("fam_kie: json_pack chat error");
        fpresp_json(resp, status, j, JSON_COMPACT);
}

static int is_chat_path(const struct fp_call *call)
{
        return !fnmatch(CHAT_ROUTE, call->path, FNM_PATHNAME);
}

/* ---- named errors ---------------------------------------------------- */

/** Indexes of the named errors below. */
enum {
        E_INVALID_KEY,
        E_CREDITS,
        E_BAD_REQUEST,
        E_NOT_FOUND,
        E_VALIDATION,
        E_RATE_LIMIT,
        E_SUBKEY,
        E_MAINTENANCE,
        E_SERVER,
        E_GENERATION,
        E_DISABLED,
};

static const struct kerr {
        int code;
        const char *msg;
        unsigned chat_status;
        const char *chat_type;
        const char *chat_msg;
} kerrs[] = {
        [E_INVALID_KEY] = {401, "You do not have access permissions", 401,
         "authentication_error", "Invalid API key"},
        [E_CREDITS] = {402, "The current credits are insufficient. Please top up.", 402,
         "insufficient_quota", "Insufficient credits. Please top up."},
        [E_BAD_REQUEST] = {400, "Invalid request parameters", 400, "invalid_request_error",
         "Invalid request parameters"},
        [E_NOT_FOUND] = {404, "The requested resource does not exist", 404,
         "invalid_request_error", "The requested resource does not exist"},
        [E_VALIDATION] = {422, "Validation error: parameters failed validation", 400,
         "invalid_request_error", "Parameters failed validation"},
        [E_RATE_LIMIT] = {429, "Rate limited: request limit for this resource exceeded", 429,
         "rate_limit_error", "Rate limit exceeded, please slow down"},
        [E_SUBKEY] = {433, "Sub-key usage limit exceeded", 429, "insufficient_quota",
         "Sub-key credit limit exceeded"},
        [E_MAINTENANCE] = {455, "Service unavailable: system maintenance", 503,
         "service_unavailable", "Service unavailable: system maintenance"},
        [E_SERVER] = {500, "Server error", 500, "server_error", "Internal server error"},
        [E_GENERATION] = {501, "Generation failed", 500, "server_error", "Generation failed"},
        [E_DISABLED] = {505, "Feature disabled", 503, "service_unavailable",
         "Feature disabled"},
};

static void named(const struct fp_call *call, struct fp_resp *resp, int i)
{
        const struct kerr *e = &kerrs[i];

        if (is_chat_path(call))
                oai_error(resp, e->chat_status, e->chat_msg, e->chat_type);
        else
                kie_answer(call, resp, e->code, e->msg, NULL);
}

static void err_invalid_key(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_INVALID_KEY);
}

static void err_credits(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_CREDITS);
}

static void err_bad_request(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_BAD_REQUEST);
}

static void err_not_found(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_NOT_FOUND);
}

static void err_validation(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_VALIDATION);
}

static void err_rate_limit(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_RATE_LIMIT);
}

static void err_subkey(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_SUBKEY);
}

static void err_maintenance(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_MAINTENANCE);
}

static void err_server(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_SERVER);
}

static void err_generation(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_GENERATION);
}

static void err_disabled(const struct fp_call *c, struct fp_resp *r)
{
        named(c, r, E_DISABLED);
}

/* ---- models and their input fields ----------------------------------- */

enum ftype {
        F_TEXT,    /**< string, at most max bytes */
        F_ENUM,    /**< string, one of allowed */
        F_URLS,    /**< array of http(s) URLs, at most max */
        F_BOOL,    /**< true/false */
        F_NFRAMES, /**< a STRING, one of allowed */
        F_SHOTS,   /**< storyboard shots (Scene, duration) */
};

struct fspec {
        const char *name;
        enum ftype type;
        int required;
        const char *const *allowed; /**< NULL-terminated */
        size_t max;
};

static const char *const ar_banana[] = {"1:1", "9:16", "16:9", "3:4",
                                        "4:3", "3:2",  "2:3",  "5:4",
                                        "4:5", "21:9", "auto", NULL};
static const char *const fmt_banana[] = {"png", "jpeg", NULL};
static const char *const fmt_pro[] = {"png", "jpg", NULL};
static const char *const resolutions[] = {"1K", "2K", "4K", NULL};
static const char *const orientations[] = {"landscape", "portrait", NULL};
static const char *const frames_clip[] = {"10", "15", NULL};
static const char *const frames_board[] = {"10", "15", "25", NULL};
static const char *const uploads[] = {"s3", "oss", NULL};
static const char *const pro_sizes[] = {"standard", "high", NULL};

static const struct fspec f_banana[] = {
        {"prompt", F_TEXT, 1, NULL, 5000},
        {"output_format", F_ENUM, 0, fmt_banana, 0},
        {"aspect_ratio", F_ENUM, 0, ar_banana, 0},
        {"image_size", F_ENUM, 0, ar_banana, 0},
        {NULL, 0, 0, NULL, 0},
};

static const struct fspec f_edit[] = {
        {"prompt", F_TEXT, 1, NULL, 5000},
        {"image_urls", F_URLS, 1, NULL, 10},
        {"output_format", F_ENUM, 0, fmt_banana, 0},
        {"image_size", F_ENUM, 0, ar_banana, 0},
        {NULL, 0, 0, NULL, 0},
};

static const struct fspec f_pro[] = {
        {"prompt", F_TEXT, 1, NULL, 5000},
        {"image_input", F_URLS, 0, NULL, 8},
        {"aspect_ratio", F_ENUM, 0, ar_banana, 0},
        {"resolution", F_ENUM, 0, resolutions, 0},
        {"output_format", F_ENUM, 0, fmt_pro, 0},
        {NULL, 0, 0, NULL, 0},
};

#define SORA_COMMON                                                     \
        {"prompt", F_TEXT, 1, NULL, 10000},                             \
        {"aspect_ratio", F_ENUM, 0, orientations, 0},                   \
        {"n_frames", F_NFRAMES, 0, frames_clip, 0},                     \
        {"remove_watermark", F_BOOL, 0, NULL, 0},                       \
        {"upload_method", F_ENUM, 0, uploads, 0}

static const struct fspec f_t2v[] = {
        SORA_COMMON,
        {NULL, 0, 0, NULL, 0},
};

static const struct fspec f_i2v[] = {
        SORA_COMMON,
        {"image_urls", F_URLS, 1, NULL, 10},
        {NULL, 0, 0, NULL, 0},
};

static const struct fspec f_pro_t2v[] = {
        SORA_COMMON,
        {"size", F_ENUM, 0, pro_sizes, 0},
        {NULL, 0, 0, NULL, 0},
};

static const struct fspec f_pro_i2v[] = {
        SORA_COMMON,
        {"image_urls", F_URLS, 1, NULL, 10},
        {"size", F_ENUM, 0, pro_sizes, 0},
        {NULL, 0, 0, NULL, 0},
};

static const struct fspec f_board[] = {
        {"n_frames", F_NFRAMES, 1, frames_board, 0},
        {"shots", F_SHOTS, 1, NULL, 0},
        {"image_urls", F_URLS, 0, NULL, 10},
        {"aspect_ratio", F_ENUM, 0, orientations, 0},
        {NULL, 0, 0, NULL, 0},
};

/** A model of the jobs API: its checks, task ids, result and price. */
static const struct kmodel {
        const char *name;
        const struct fspec *fields;
        const char *id_prefix;
        int video;        /**< result is an mp4; credits per second */
        double credits;   /**< per image, or per second of video */
        double credits_hi;/**< at resolution 4K / size high */
} kmodels[] = {
        {"google/nano-banana", f_banana, "task_google_", 0, 4, 4},
        {"google/nano-banana-edit", f_edit, "task_google_", 0, 4, 4},
        {"nano-banana-pro", f_pro, "task_nanobanana_", 0, 18, 24},
        {"sora-2-text-to-video", f_t2v, "task_sora2_", 1, 3, 3},
        {"sora-2-image-to-video", f_i2v, "task_sora2_", 1, 3, 3},
        {"sora-2-pro-text-to-video", f_pro_t2v, "task_sora2_", 1, 9, 15},
        {"sora-2-pro-image-to-video", f_pro_i2v, "task_sora2_", 1, 9, 15},
        {"sora-2-pro-storyboard", f_board, "task_sora2_", 1, 9, 9},
};
#define N_KMODELS (sizeof(kmodels) / sizeof(kmodels[0]))

static const struct kmodel *kmodel_find(const char *name)
{
        for (size_t i = 0; name && i < N_KMODELS; i++)
                if (!strcmp(kmodels[i].name, name))
                        return &kmodels[i];
        return NULL;
}

/* ---- field checks (each failure answers code 422, returns -1) --------- */

static int in_list(const char *s, const char *const *allowed)
{
        for (; *allowed; allowed++)
                if (!strcmp(s, *allowed))
                        return 1;
        return 0;
}

/** "a, b, c" of \p allowed into \p out. */
static void list_text(const char *const *allowed, char *out, size_t outsz)
{
        size_t used = 0;

        out[0] = '\0';
        for (; *allowed && used < outsz; allowed++)
                used += (size_t)snprintf(out + used, outsz - used, "%s%s",
                                         used ? ", " : "", *allowed);
}

static int check_enum(const struct fp_call *call, struct fp_resp *resp,
                      const struct fspec *f, const json_t *v)
{
        char list[256];

        if (json_is_string(v) && in_list(json_string_value(v), f->allowed))
                return 0;
        list_text(f->allowed, list, sizeof(list));
        return kie_fail(call, resp, 422, "%s must be one of: %s", f->name,
                        list);
}

static int check_text(const struct fp_call *call, struct fp_resp *resp,
                      const struct fspec *f, const json_t *v)
{
        if (!json_is_string(v) || !json_string_length(v))
                return kie_fail(call, resp, 422,
                                "%s must be a non-empty string", f->name);
        if (json_string_length(v) > f->max)
                return kie_fail(call, resp, 422,
                                "%s exceeds the maximum length of %zu",
                                f->name, f->max);
        return 0;
}

static int is_url(const json_t *v)
{
        const char *s = json_string_value(v);

        return s && (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8));
}

static int check_urls(const struct fp_call *call, struct fp_resp *resp,
                      const struct fspec *f, const json_t *v)
{
        const json_t *u;
        size_t i;

        if (!json_is_array(v) || (f->required && !json_array_size(v)))
                return kie_fail(call, resp, 422,
                                "%s must be an array of image URLs",
                                f->name);
        if (json_array_size(v) > f->max)
                return kie_fail(call, resp, 422,
                                "%s accepts at most %zu images", f->name,
                                f->max);
        json_array_foreach (v, i, u)
                if (!is_url(u))
                        return kie_fail(call, resp, 422,
                                        "%s[%zu] is not a valid URL",
                                        f->name, i);
        return 0;
}

static int check_nframes(const struct fp_call *call, struct fp_resp *resp,
                         const struct fspec *f, const json_t *v)
{
        if (json_is_number(v))
                return kie_fail(call, resp, 422,
                                "n_frames must be a string, e.g. \"10\"");
        return check_enum(call, resp, f, v);
}

/** One shot {"Scene": text, "duration": number > 0}; adds to *sum. */
static int check_shot(const struct fp_call *call, struct fp_resp *resp,
                      const json_t *shot, size_t i, double *sum)
{
        const json_t *scene = json_object_get(shot, "Scene");
        const json_t *d = json_object_get(shot, "duration");

        if (!json_is_object(shot))
                return kie_fail(call, resp, 422,
                                "shots[%zu] must be an object", i);
        if (!scene && json_object_get(shot, "scene"))
                return kie_fail(call, resp, 422,
                                "shots[%zu].Scene is required (field names "
                                "are case-sensitive: \"Scene\")",
                                i);
        if (!json_is_string(scene) || !json_string_length(scene))
                return kie_fail(call, resp, 422,
                                "shots[%zu].Scene is required", i);
        if (!json_is_number(d) || json_number_value(d) <= 0)
                return kie_fail(call, resp, 422,
                                "shots[%zu].duration must be a positive "
                                "number",
                                i);
        *sum += json_number_value(d);
        return 0;
}

static int check_shots(const struct fp_call *call, struct fp_resp *resp,
                       const struct fspec *f, const json_t *v,
                       const json_t *input)
{
        const char *nf = json_string_value(json_object_get(input,
                                                           "n_frames"));
        const json_t *shot;
        double sum = 0;
        size_t i;

        if (!json_is_array(v) || !json_array_size(v))
                return kie_fail(call, resp, 422,
                                "shots must be a non-empty array");
        json_array_foreach (v, i, shot)
                if (check_shot(call, resp, shot, i, &sum) == -1)
                        return -1;
        if (nf && fabs(sum - atof(nf)) > 0.01)
                return kie_fail(call, resp, 422,
                                "the durations of shots (%g) must add up "
                                "to n_frames (%s)",
                                sum, nf);
        return 0;
}

static int check_field(const struct fp_call *call, struct fp_resp *resp,
                       const struct fspec *f, const json_t *input)
{
        const json_t *v = json_object_get(input, f->name);

        if (!v || json_is_null(v))
                return f->required ? kie_fail(call, resp, 422,
                                              "%s is required", f->name)
                                   : 0;
        switch (f->type) {
        case F_TEXT:
                return check_text(call, resp, f, v);
        case F_ENUM:
                return check_enum(call, resp, f, v);
        case F_URLS:
                return check_urls(call, resp, f, v);
        case F_BOOL:
                return json_is_boolean(v)
                               ? 0
                               : kie_fail(call, resp, 422,
                                          "%s must be a boolean", f->name);
        case F_NFRAMES:
                return check_nframes(call, resp, f, v);
        case F_SHOTS:
                return check_shots(call, resp, f, v, input);
        }
        return 0;
}

/** The envelope checks, then the model's fields.  @returns 0 with *out
 *  set, or -1 if an error was answered. */
static int check_create(const struct fp_call *call, struct fp_resp *resp,
                        const struct kmodel **out)
{
        const json_t *input = json_object_get(call->json, "input");
        const json_t *cb = json_object_get(call->json, "callBackUrl");
        const char *name = json_string_value(json_object_get(call->json,
                                                             "model"));
        const struct fspec *f;

        if (!json_is_object(call->json))
                return kie_fail(call, resp, 400,
                                "Invalid request parameters: the body must "
                                "be a JSON object");
        if (!name || !*name)
                return kie_fail(call, resp, 422, "model is required");
        *out = kmodel_find(name);
        if (!*out)
                return kie_fail(call, resp, 422,
                                "model %.100s is not supported", name);
        if (!json_is_object(input))
                return kie_fail(call, resp, 422,
                                "input is required and must be an object");
        if (cb && !is_url(cb))
                return kie_fail(call, resp, 422,
                                "callBackUrl must be an http(s) URL");
        for (f = (*out)->fields; f->name; f++)
                if (check_field(call, resp, f, input) == -1)
                        return -1;
        return 0;
}

/* ---- createTask -------------------------------------------------------- */

/** Result file extension of an image task: the output_format sent. */
static const char *image_ext(const json_t *input)
{
        const char *f = json_string_value(json_object_get(input,
                                                          "output_format"));

        return f ? f : "png";
}

/** Credits the task will cost (see the header comment). */
static double task_credits(const struct kmodel *m, const json_t *input)
{
        const char *res = json_string_value(json_object_get(input,
                                                            "resolution"));
        const char *size = json_string_value(json_object_get(input, "size"));
        const char *nf = json_string_value(json_object_get(input,
                                                           "n_frames"));
        int hi = (res && !strcmp(res, "4K")) || (size && !strcmp(size, "high"));
        double per = hi ? m->credits_hi : m->credits;

        return m->video ? per * (nf ? atof(nf) : 10) : per;
}

/*
 * The task keeps what its polls need as its "input" text (fptask.h):
 *   "<model index>\n<ext>\n<credits>\n<createTask body>"
 * so the body (the param) may be cut by the store's size limit, the rest
 * never is.
 */
static char *callback_body(const struct fptask *t);

static void create_task(const struct fp_call *call, const struct kmodel *m,
                        struct fptask *t)
{
        const json_t *input = json_object_get(call->json, "input");
        struct fptask_cb cb = {
                .url = json_string_value(json_object_get(call->json,
                                                         "callBackUrl")),
                .body = callback_body,
        };
        struct fp_call rec = *call;
        size_t n = call->body_len + 64;
        char *text = xmalloc(n);

        rec.body_len = (size_t)snprintf(
                text, n, "%d\n%s\n%.15g\n%s", (int)(m - kmodels),
                m->video ? "mp4" : image_ext(input), task_credits(m, input),
                call->body);
        rec.body = text;
        fptask_create_cb(&rec, m->id_prefix, call->body, &cb, t);
        free(text);
}

static void create_task_route(const struct fp_call *call,
                              struct fp_resp *resp)
{
        const struct kmodel *m = NULL;
        struct fptask t;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (check_create(call, resp, &m) == -1)
                return;
        create_task(call, m, &t);
        kie_answer(call, resp, 200, "success",
                   json_pack("{s:s}", "taskId", t.id));
}

/* ---- recordInfo ------------------------------------------------------- */

/** What create_task() stored. */
struct taskrec {
        const struct kmodel *m;
        char ext[16];
        double credits;
        const char *param;  /**< points into the task snapshot */
};

static void taskrec_read(const struct fptask *t, struct taskrec *r)
{
        int idx = 0, used = 0;

        r->credits = 0;
        snprintf(r->ext, sizeof(r->ext), "png");
        if (sscanf(t->input, "%d\n%15[^\n]\n%lf\n%n", &idx, r->ext,
                   &r->credits, &used) != 3 || !used)
                used = (int)strlen(t->input);
        r->m = idx >= 0 && (size_t)idx < N_KMODELS ? &kmodels[idx]
                                                   : &kmodels[0];
        r->param = t->input + used;
}

static const char *host_of(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Host");

        return h && *h && strlen(h) < 200 ? h : "127.0.0.1";
}

/** {"resultUrls":["http://<host>/_fake/media/<kind>-<id>.<ext>"]} as
 *  text. */
static json_t *result_json(const char *host, const struct fptask *t,
                           const struct taskrec *r)
{
        char url[512];
        json_t *res;
        char *s;

        snprintf(url, sizeof(url), "http://%s/_fake/media/%s-%s.%s",
                 host, r->m->video ? "video" : "image", t->id,
                 r->ext);
        res = json_pack("{s:[s]}", "resultUrls", url);
        s = json_dumps(res, JSON_COMPACT);
        json_decref(res);
        if (!s)
                fatal("fam_kie: json_dumps resultJson");
        res = json_string(s);
        free(s);
        return res;
}

static json_t *credits_json(double c)
{
        if (c == floor(c) && fabs(c) < 1e15)
                return json_integer((json_int_t)c);
        return json_real(c);
}

static const char *running_state(const struct fptask *t)
{
        if (t->polls <= 1)
                return "waiting";
        return t->polls == 2 ? "queuing" : "generating";
}

/** The state-dependent members of a record. */
static void record_state(const char *host, const struct fptask *t,
                         const struct taskrec *r, json_t *d)
{
        int64_t now = fakeprov_now_ms();
        int ok = t->fate == FPTASK_SUCCEED;

        if (!t->done) {
                json_object_set_new(d, "state",
                                    json_string(running_state(t)));
                json_object_set_new(d, "resultJson", json_null());
                json_object_set_new(d, "failCode", json_null());
                json_object_set_new(d, "failMsg", json_null());
                json_object_set_new(d, "costTime", json_integer(0));
                json_object_set_new(d, "completeTime", json_null());
                return;
        }
        json_object_set_new(d, "state", json_string(ok ? "success" : "fail"));
        json_object_set_new(d, "resultJson",
                            ok ? result_json(host, t, r) : json_null());
        json_object_set_new(d, "failCode", json_string(ok ? "" : t->fail_code));
        json_object_set_new(d, "failMsg", json_string(ok ? "" : t->fail_msg));
        json_object_set_new(d, "consumeCredits",
                            credits_json(ok ? r->credits : 0));
        json_object_set_new(d, "remainedCredits", json_integer(BALANCE));
        json_object_set_new(d, "costTime",
                            json_integer((json_int_t)(now - t->created_ms)));
        json_object_set_new(d, "completeTime", json_integer((json_int_t)now));
}

/* The record's data; result URLs name \p host. */
static json_t *record_json(const char *host, const struct fptask *t)
{
        struct taskrec r;
        json_t *d;

        taskrec_read(t, &r);
        d = json_pack("{s:s, s:s, s:s%}", "taskId", t->id, "model",
                      r.m->name, "param", r.param, strlen(r.param));
        if (!d) /* a cut param may end inside a UTF-8 character */
                d = json_pack("{s:s, s:s, s:s}", "taskId", t->id, "model",
                              r.m->name, "param", "");
        if (!d)
                fatal("fam_kie: json_pack record");
        record_state(host, t, &r, d);
        json_object_set_new(d, "createTime",
                            json_integer((json_int_t)t->created_ms));
        json_object_set_new(d, "updateTime",
                            json_integer((json_int_t)fakeprov_now_ms()));
        return d;
}

static void record_info(const struct fp_call *call, struct fp_resp *resp)
{
        const char *id = fakeprov_query(call, "taskId");
        struct fptask t;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (!id || !*id) {
                kie_fail(call, resp, 422, "taskId is required");
                return;
        }
        if (fptask_poll(call, id, &t) == -1) {
                kie_fail(call, resp, 404, "Task not found");
                return;
        }
        kie_answer(call, resp, 200, "success",
                   record_json(host_of(call), &t));
}

/* The callback: the poll answer's structure with the callback's own code
 * and msg (reference 6.3); result URLs name the submit's Host. */
static char *callback_body(const struct fptask *t)
{
        int ok = t->fate == FPTASK_SUCCEED;
        json_t *j = json_pack("{s:i, s:s, s:o}", "code", ok ? 200 : 501,
                              "msg",
                              ok ? "Playground task completed successfully."
                                 : "Playground task failed.",
                              "data", record_json(t->host, t));
        char *s;

        if (!j)
                fatal("fam_kie: json_pack callback");
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
}

/* ---- credit ----------------------------------------------------------- */

static void credit(const struct fp_call *call, struct fp_resp *resp)
{
        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        kie_answer(call, resp, 200, "success", json_integer(BALANCE));
}

/* ---- chat: fam_openai.c's formulas ------------------------------------ */

static const char *const chat_models[] = {"gemini-2.5-flash",
                                          "gemini-2.5-pro", "gemini-3-flash",
                                          "gemini-3-pro", NULL};

struct chat {
        char model[64];
        uint64_t seq;
        json_int_t created;
        char reply[sizeof(REPLY_PREFIX) + REPLY_MAX_TEXT];
        json_int_t prompt_tokens;
        json_int_t completion_tokens;
        int include_usage;
};

static int is_ws(char c)
{
        return c == ' ' || (c >= '\t' && c <= '\r');
}

static json_int_t count_words(const char *s)
{
        json_int_t n = 0;
        int in_word = 0;

        for (; *s; s++) {
                if (!is_ws(*s) && !in_word)
                        n++;
                in_word = !is_ws(*s);
        }
        return n;
}

/** text(content) into \p out (cut to \p outsz): a string, or the "text"
 *  members of the parts joined by "\n". */
static void content_text(const json_t *content, char *out, size_t outsz)
{
        const char *sep = "";
        const json_t *part, *text;
        size_t i, used;

        out[0] = '\0';
        if (json_is_string(content)) {
                snprintf(out, outsz, "%s", json_string_value(content));
                return;
        }
        json_array_foreach (content, i, part) {
                text = json_object_get(part, "text");
                if (!json_is_string(text))
                        continue;
                used = strlen(out);
                snprintf(out + used, outsz - used, "%s%s", sep,
                         json_string_value(text));
                sep = "\n";
        }
}

static json_int_t content_words(const json_t *content)
{
        const json_t *part;
        json_int_t n = 0;
        size_t i;

        if (json_is_string(content))
                return count_words(json_string_value(content));
        json_array_foreach (content, i, part)
                if (json_is_string(json_object_get(part, "text")))
                        n += count_words(json_string_value(
                                json_object_get(part, "text")));
        return n;
}

static void make_reply(struct chat *c, const json_t *msgs)
{
        char text[REPLY_MAX_TEXT * 2 + 8];
        const json_t *last = NULL, *m;
        size_t i, n;

        json_array_foreach (msgs, i, m)
                if (!strcmp(json_string_value(json_object_get(m, "role")),
                            "user"))
                        last = m;
        text[0] = '\0';
        if (last)
                content_text(json_object_get(last, "content"), text,
                             sizeof(text));
        n = strlen(text);
        if (n > REPLY_MAX_TEXT) {
                n = REPLY_MAX_TEXT;
                while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
                        n--;
        }
        snprintf(c->reply, sizeof(c->reply), "%s%.*s", REPLY_PREFIX, (int)n,
                 text);
}

static json_int_t token_limit(const json_t *req)
{
        const json_t *v = json_object_get(req, "max_completion_tokens");

        if (!json_is_integer(v) || json_integer_value(v) <= 0)
                v = json_object_get(req, "max_tokens");
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
                return 0;
        return json_integer_value(v);
}

static const char *chat_compute(struct chat *c, const struct fp_call *call,
                                const char *model)
{
        const json_t *msgs = json_object_get(call->json, "messages");
        json_int_t limit = token_limit(call->json);
        const json_t *m;
        size_t i;

        snprintf(c->model, sizeof(c->model), "%s", model);
        c->seq = call->seq;
        c->created = (json_int_t)time(NULL);
        make_reply(c, msgs);
        c->prompt_tokens = 0;
        json_array_foreach (msgs, i, m)
                c->prompt_tokens +=
                        content_words(json_object_get(m, "content")) + 4;
        c->completion_tokens = count_words(c->reply);
        c->include_usage = json_is_true(json_object_get(
                json_object_get(call->json, "stream_options"),
                "include_usage"));
        if (limit && c->completion_tokens > limit) {
                c->completion_tokens = limit;
                return "length";
        }
        return "stop";
}

static json_t *usage_json(const struct chat *c)
{
        return json_pack("{s:I, s:I, s:I}", "prompt_tokens", c->prompt_tokens,
                         "completion_tokens", c->completion_tokens,
                         "total_tokens",
                         c->prompt_tokens + c->completion_tokens);
}

static void chat_reply(const struct chat *c, const char *finish,
                       struct fp_resp *resp)
{
        char id[40];
        json_t *j;

        snprintf(id, sizeof(id), "chatcmpl-%llu", (unsigned long long)c->seq);
        j = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], "
                      "s:o}",
                      "id", id, "object", "chat.completion", "created",
                      c->created, "model", c->model, "choices", "index", 0,
                      "message", "role", "assistant", "content", c->reply,
                      "finish_reason", finish, "usage", usage_json(c));
        if (!j)
                fatal("fam_kie: json_pack chat reply");
        fpresp_json(resp, 200, j, JSON_COMPACT);
}

/** One "data: {chunk}\n\n" event. */
static void sse_chunk(const struct chat *c, struct fp_resp *resp,
                      json_t *choice, json_t *usage)
{
        char id[40];
        json_t *j;
        char *s;

        snprintf(id, sizeof(id), "chatcmpl-%llu", (unsigned long long)c->seq);
        j = json_pack("{s:s, s:s, s:I, s:s, s:[]}", "id", id, "object",
                      "chat.completion.chunk", "created", c->created,
                      "model", c->model, "choices");
        if (!j)
                fatal("fam_kie: json_pack chunk");
        if (choice)
                json_array_append_new(json_object_get(j, "choices"), choice);
        if (c->include_usage)
                json_object_set_new(j, "usage", usage ? usage : json_null());
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!s)
                fatal("fam_kie: json_dumps chunk");
        fpresp_append(resp, "data: ", 6);
        fpresp_append(resp, s, strlen(s));
        fpresp_append(resp, "\n\n", 2);
        free(s);
}

static json_t *delta_choice(json_t *delta, const char *finish)
{
        return json_pack("{s:i, s:o, s:s?}", "index", 0, "delta", delta,
                         "finish_reason", finish);
}

static void chat_stream(const struct chat *c, const char *finish,
                        struct fp_resp *resp)
{
        const char *p = c->reply;
        size_t n;

        fpresp_set_owned(resp, 200, NULL, 0);
        fpresp_content_type(resp, "text/event-stream; charset=utf-8");
        sse_chunk(c, resp,
                  delta_choice(json_pack("{s:s, s:s}", "role", "assistant",
                                         "content", ""),
                               NULL),
                  NULL);
        while (*p) {
                n = strcspn(p, " \t\n\v\f\r");
                n += strspn(p + n, " \t\n\v\f\r");
                sse_chunk(c, resp,
                          delta_choice(json_pack("{s:s%}", "content", p, n),
                                       NULL),
                          NULL);
                p += n;
        }
        sse_chunk(c, resp, delta_choice(json_object(), finish), NULL);
        if (c->include_usage)
                sse_chunk(c, resp, NULL, usage_json(c));
        fpresp_append(resp, "data: [DONE]\n\n", 14);
}

static int chat_bad(struct fp_resp *resp, const char *msg)
{
        oai_error(resp, 400, msg, "invalid_request_error");
        return -1;
}

static int check_chat_message(struct fp_resp *resp, const json_t *m)
{
        const json_t *content = json_object_get(m, "content");

        if (!json_is_object(m) ||
            !json_is_string(json_object_get(m, "role")))
                return chat_bad(resp, "each message needs a string role");
        if (!json_is_string(content) && !json_is_array(content))
                return chat_bad(resp, "message content must be a string or "
                                      "an array of parts");
        return 0;
}

static int check_chat(struct fp_resp *resp, const json_t *body)
{
        const json_t *msgs = json_object_get(body, "messages");
        const json_t *stream = json_object_get(body, "stream");
        const json_t *effort = json_object_get(body, "reasoning_effort");
        const json_t *m;
        size_t i;

        if (!json_is_object(body))
                return chat_bad(resp, "the body must be a JSON object");
        if (!json_is_array(msgs) || !json_array_size(msgs))
                return chat_bad(resp, "messages is required and must be a "
                                      "non-empty array");
        if (stream && !json_is_boolean(stream))
                return chat_bad(resp, "stream must be a boolean");
        if (effort && (!json_is_string(effort) ||
                       (strcmp(json_string_value(effort), "low") &&
                        strcmp(json_string_value(effort), "high"))))
                return chat_bad(resp, "reasoning_effort must be low or high");
        json_array_foreach (msgs, i, m)
                if (check_chat_message(resp, m) == -1)
                        return -1;
        return 0;
}

static void chat_completions(const struct fp_call *call, struct fp_resp *resp)
{
        char model[64];
        const char *finish;
        struct chat c;
        size_t n = strcspn(call->path + 1, "/");

        snprintf(model, sizeof(model), "%.*s", (int)n, call->path + 1);
        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (!in_list(model, chat_models)) {
                oai_error(resp, 404, "model not found",
                          "invalid_request_error");
                return;
        }
        if (check_chat(resp, call->json) == -1)
                return;
        finish = chat_compute(&c, call, model);
        if (json_is_false(json_object_get(call->json, "stream")))
                chat_reply(&c, finish, resp);
        else
                chat_stream(&c, finish, resp);
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
        json_t *j = json_pack("{s:i, s:s, s:n}", "code", 404, "msg",
                              "Not Found", "data");

        fpresp_json(resp, 404, j, JSON_COMPACT);
}

static const struct fp_route routes[] = {
        {"POST", "/api/v1/jobs/createTask", create_task_route},
        {"GET", RECORD_ROUTE, record_info},
        {"GET", "/api/v1/chat/credit", credit},
        {"POST", CHAT_ROUTE, chat_completions},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"insufficient_credits", err_credits},
        {"bad_request", err_bad_request},
        {"not_found", err_not_found},
        {"validation", err_validation},
        {"rate_limit", err_rate_limit},
        {"subkey_limit", err_subkey},
        {"maintenance", err_maintenance},
        {"server_error", err_server},
        {"generation_failed", err_generation},
        {"feature_disabled", err_disabled},
        {NULL, NULL},
};

static const char *const defaults[] = {"kie", "kie-mirror", NULL};

const struct fp_family fam_kie = {
        .name = "kie",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
