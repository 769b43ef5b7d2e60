/*
 * provider_zhipu_video: Zhipu / BigModel CogVideoX ("zhipu_video"), an
 * async adapter.  Reference section 11 (and 1.2 Zhipu for the errors).
 *
 *   submit  POST <base>/videos/generations
 *           {model, prompt, image_url, quality, with_audio, duration,
 *            size, request_id}
 *           -> {"id", "model", "task_status": "PROCESSING", "request_id"}
 *   poll    GET  <base>/async-result/{id}
 *           -> task_status PROCESSING -> PENDING
 *              SUCCESS -> video_result[].url (then every cover_image_url)
 *              FAIL    -> fallback_next (no reason field is documented)
 *
 * The request is built from the job: the model is its hint when that is a
 * CogVideoX model ("cogvideox..."), else the configured one; prompt and/or
 * image_url (the first frame), at least one; quality "quality" for the
 * job's "quality"/"high"/"1080p" and "speed" for "speed"/"standard"/
 * "720p"; duration 5 or 10 (0 sends none: the model's default, 5); size
 * from the aspect ratio (16:9 1920x1080, 9:16 1080x1920, 1:1 1024x1024);
 * request_id is the job id, so a resubmitted job is recognisable.
 * extra_body is merged at the top level as defaults; with_audio is false
 * unless extra_body says otherwise.  Storyboards, other durations and
 * ratios fail build(), so the worker moves on.
 *
 * Errors: {"error": {"code": "<digits>", "message"}} whose business code
 * decides whatever the status (section 12 Zhipu rows); an unknown code, or
 * no body, falls back to the status.  Units: seconds of video, the
 * requested duration (5 when none).
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define SUBMIT_PATH "/videos/generations"
#define RESULT_PATH "/async-result/"
#define MODEL_PREFIX "cogvideox"
#define DEFAULT_SECONDS 5

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/*
 * Building requests.
 */

/** Job words for quality, and CogVideoX's. */
static const struct {
        const char *job;
        const char *zhipu;
} qualities[] = {
        {"quality", "quality"}, {"high", "quality"},  {"1080p", "quality"},
        {"speed", "speed"},     {"standard", "speed"}, {"720p", "speed"},
};

/** Job aspect ratios and the size each becomes. */
static const struct {
        const char *ratio;
        const char *size;
} sizes[] = {
        {"16:9", "1920x1080"}, {"landscape", "1920x1080"},
        {"9:16", "1080x1920"}, {"portrait", "1080x1920"},
        {"1:1", "1024x1024"},
};

static const char *size_for(const char *ratio)
{
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                if (!strcasecmp(sizes[i].ratio, ratio))
                        return sizes[i].size;
        return NULL;
}

static const char *quality_for(const char *q)
{
        for (size_t i = 0; i < sizeof(qualities) / sizeof(qualities[0]); i++)
                if (!strcasecmp(qualities[i].job, q))
                        return qualities[i].zhipu;
        return NULL;
}

/** Job checks that build() cannot turn into a request. */
static const char *unsupported(const Genq__V1__VideoRequest *v)
{
        if (v->n_scenes)
                return "zhipu_video has no storyboards";
        if (!*v->prompt && !*v->first_frame_url)
                return "video job has neither prompt nor first frame";
        if (v->duration_s && v->duration_s != 5 && v->duration_s != 10)
                return "CogVideoX makes 5 or 10 second videos";
        if (*v->aspect_ratio && !size_for(v->aspect_ratio))
                return "aspect ratio not offered by CogVideoX";
        return NULL;
}

static const char *video_model(const struct provider_cfg *p,
                               const Genq__V1__VideoRequest *v)
{
        if (!strncasecmp(v->model, MODEL_PREFIX, strlen(MODEL_PREFIX)))
                return v->model;
        return p->model && *p->model ? p->model : NULL;
}

/** Optional string member: set only when \p s is non-empty. */
static int opt_str(json_t *body, const char *k, const char *s)
{
        return s && *s ? adapt_jset_str(body, k, s) : 0;
}

static int fill_body(const struct provider_cfg *p, const Genq__V1__Job *job,
                     const char *model, json_t *body, char *errstr,
                     size_t errstr_size)
{
        const Genq__V1__VideoRequest *v = job->video;

        if (adapt_jset_str(body, "model", model) == -1 ||
            opt_str(body, "prompt", v->prompt) == -1 ||
            opt_str(body, "image_url", v->first_frame_url) == -1 ||
            opt_str(body, "request_id", job->job_id) == -1) {
                snprintf(errstr, errstr_size,
                         "model, prompt, image or job id is not UTF-8");
                return -1;
        }
        opt_str(body, "quality", quality_for(v->quality));
        opt_str(body, "size", size_for(v->aspect_ratio));
        if (v->duration_s)
                adapt_jset(body, "duration", json_integer(v->duration_s));
        /* extra_body at the top level; keys the adapter set win */
        if (adapt_merge_obj(p, "extra_body", p->extra_body, body,
                            ADAPT_MERGE_TOP, errstr, errstr_size) == -1)
                return -1;
        if (!json_object_get(body, "with_audio"))
                adapt_jset(body, "with_audio", json_false());
        return 0;
}

/**
 * Finish a request: URL, headers and (when \p body) the JSON body.
 * @remark takes \p body in every case.
 */
static int finish_req(const struct provider_cfg *p, const char *key,
                      const char *path, const char *arg, json_t *body,
                      struct provider_req *req, char *errstr,
                      size_t errstr_size)
{
        if (adapt_url(req, p, "URL", errstr, errstr_size, path, arg, NULL) ==
                    -1 ||
            adapt_json_headers(req, "Authorization: Bearer ", key,
                               body != NULL, errstr, errstr_size) == -1) {
                json_decref(body);
                provider_req_clear(req);
                return -1;
        }
        req->method = body ? "POST" : "GET";
        if (!body)
                return 0;
        adapt_req_json(req, body, JSON_COMPACT);
        json_decref(body);
        return 0;
}

static int build(const struct provider_cfg *p, const char *key,
                 const Genq__V1__Job *job, const struct provider_input *in,
                 struct provider_req *req, char *errstr, size_t errstr_size)
{
        const char *why, *model;
        json_t *body;

        memset(req, 0, sizeof(*req));
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_VIDEO || !job->video) {
                snprintf(errstr, errstr_size, "not a video job");
                return -1;
        }
        why = unsupported(job->video);
        model = why ? NULL : video_model(p, job->video);
        if (!model) {
                snprintf(errstr, errstr_size, "%s",
                         why ? why : "no model: none hinted or configured");
                return -1;
        }
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        if (fill_body(p, job, model, body, errstr, errstr_size) == -1) {
                json_decref(body);
                return -1;
        }
        return finish_req(p, key, SUBMIT_PATH, "", body, req, errstr,
                          errstr_size);
}

static int build_poll(const struct provider_cfg *p, const char *key,
                      const char *task_id, struct provider_req *req,
                      char *errstr, size_t errstr_size)
{
        memset(req, 0, sizeof(*req));
        /* ids are digits in practice; nothing that could leave the path
         * segment */
        if (!adapt_id_ok(task_id, 255, "-_.")) {
                snprintf(errstr, errstr_size, "bad task id");
                return -1;
        }
        return finish_req(p, key, RESULT_PATH, task_id, NULL, req, errstr,
                          errstr_size);
}

/*
 * Classifying errors: the business code decides (section 12 Zhipu rows).
 */

static const struct {
        const char *codes;    /**< '|'-separated */
        enum outcome outcome;
} code_rules[] = {
        {"1113", QUOTA},                     /* arrears */
        {"1302|1303", RETRY},                /* concurrency, frequency */
        {"1305|1312", RETRY},                /* overloaded: then next */
        {"1304|1308|1309|1310", QUOTA},      /* period caps */
        {"1000|1001|1002|1003|1004", KEYDIS},
        {"1110|1111|1112|1121", KEYDIS},
        {"1301", FATAL},                     /* unsafe content */
        {"1211|1220|1221|1222", FALLBACK},   /* model/API unavailable */
        {"1210|1213|1214|1215|1261", FATAL}, /* bad parameters */
        {"500|1200|1234|1120|1231", RETRY},
};

/**
 * No envelope (a proxy, CDN or WAF page): only the status is left,
 * provider_classify_generic() and the shared status-only rows
 * (adapt_nonjson_rule(): never disable a key on a 403 page).
 */
static enum outcome classify_bare(const struct provider_resp *resp,
                                  struct provider_err *err)
{
        return adapt_classify(resp,
                              resp->transport_err
                                      ? NULL
                                      : adapt_nonjson_rule(resp->status),
                              err);
}

/** An {"error":{"code","message"}} body: its code's class, by status
 *  when the code is unknown. */
static enum outcome classify_error(const struct provider_resp *resp,
                                   const json_t *e, struct provider_err *err)
{
        const char *code = adapt_jstr(e, "code");
        const char *msg = adapt_jstr(e, "message");
        size_t i;

        classify_bare(resp, err);
        if (resp->status >= 200 && resp->status < 300)
                err->outcome = FALLBACK; /* an error with a 200 */
        for (i = 0; code && i < sizeof(code_rules) / sizeof(code_rules[0]);
             i++)
                if (adapt_alt_eq(code_rules[i].codes, code)) {
                        err->outcome = code_rules[i].outcome;
                        break;
                }
        adapt_errstr(err, NULL, "%ld %s: %s", resp->status, code ? code : "",
                     msg ? msg : "(no message)");
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(msg);
        return err->outcome;
}

/**
 * The JSON object of a 2xx answer, or NULL when there is an error (then
 * err is filled): a Zhipu error body (any status), a non-2xx status, a
 * non-JSON or truncated body, a transport failure.
 */
static json_t *load_ok(const struct provider_resp *resp,
                       struct provider_err *err)
{
        json_t *root = NULL;
        const json_t *e;

        adapt_err_init(resp, err);
        if (!resp->transport_err && resp->status)
                root = adapt_ok_json(resp);
        e = json_object_get(root, "error");
        if (json_is_object(e)) {
                classify_error(resp, e, err);
        } else if (json_is_object(root) && resp->status >= 200 &&
                   resp->status < 300) {
                return root;
        } else {
                classify_bare(resp, err);
        }
        json_decref(root);
        return NULL;
}

static enum outcome malformed(struct provider_err *err, const char *why)
{
        return adapt_fail(err, RETRY, "zhipu_video: %s", why);
}

/*
 * Parsing answers.
 */

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        json_t *root = load_ok(resp, err);
        const char *id, *status;

        if (!root)
                return err->outcome;
        id = adapt_jstr(root, "id");
        status = adapt_jstr(root, "task_status");
        if (status && !strcmp(status, "FAIL")) {
                adapt_fail(err, FALLBACK, "zhipu video task FAIL at submit");
        } else if (id && *id) {
                res->task_id = xstrdup(id);
        } else {
                malformed(err, "submit answered no id");
        }
        json_decref(root);
        return err->outcome;
}

static double job_seconds(const Genq__V1__Job *job)
{
        if (job && job->payload_case == GENQ__V1__JOB__PAYLOAD_VIDEO &&
            job->video && job->video->duration_s > 0)
                return job->video->duration_s;
        return DEFAULT_SECONDS;
}

/** Every video URL, then every cover image URL. */
static void add_urls(const json_t *results, struct provider_result *res)
{
        static const char *const keys[] = {"url", "cover_image_url"};
        const json_t *r;
        const char *u;
        size_t i;

        for (size_t k = 0; k < 2; k++)
                json_array_foreach(results, i, r) {
                        u = adapt_jstr(r, keys[k]);
                        if (u && *u)
                                provider_result_add_url(res, u);
                }
}

static enum outcome task_succeeded(const json_t *root,
                                   const Genq__V1__Job *job,
                                   struct provider_result *res,
                                   struct provider_err *err)
{
        const json_t *results = json_object_get(root, "video_result");
        const json_t *first = json_array_get(results, 0);

        if (!adapt_jstr(first, "url") || !*adapt_jstr(first, "url"))
                return adapt_fail(err, FALLBACK,
                                  "zhipu video SUCCESS without a URL");
        add_urls(results, res);
        res->model = xstrdup(adapt_jstr(root, "model"));
        res->units = job_seconds(job);
        res->unit = "second";
        return err->outcome;
}

static enum outcome parse_poll(const struct provider_cfg *p,
                               const Genq__V1__Job *job,
                               const struct provider_resp *resp,
                               struct provider_result *res,
                               struct provider_err *err)
{
        json_t *root = load_ok(resp, err);
        const char *status;

        if (!root)
                return err->outcome;
        status = adapt_jstr(root, "task_status");
        if (!status) {
                malformed(err, "async-result answered no task_status");
        } else if (!strcmp(status, "PROCESSING")) {
                adapt_errstr(err, NULL, "zhipu video PROCESSING");
                err->outcome = OUTCOME_PENDING;
        } else if (!strcmp(status, "SUCCESS")) {
                task_succeeded(root, job, res, err);
        } else {
                /* FAIL carries no reason: the provider failed */
                adapt_fail(err, FALLBACK, "zhipu video task %.20s", status);
        }
        json_decref(root);
        return err->outcome;
}

const struct provider_ops provider_zhipu_video_ops = {
        .name = "zhipu_video",
        .kind = GENQ__V1__KIND__KIND_VIDEO,
        .flags = PROVIDER_F_ASYNC,
        .build = build,
        .parse = parse,
        .build_poll = build_poll,
        .parse_poll = parse_poll,
};
