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

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

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

/** Set \p k to \p v, taking \p v; fatal on allocation failure. */
static void jset(json_t *obj, const char *k, json_t *v)
{
        if (!v || json_object_set_new(obj, k, v) == -1)
                fatal("out of memory building JSON");
}

/** Set \p k to string \p s. @returns -1 if \p s is not valid UTF-8. */
static int jset_str(json_t *obj, const char *k, const char *s)
{
        json_t *v = json_string(s);

        if (!v)
                return -1;
        jset(obj, k, v);
        return 0;
}

/** "<base without trailing slashes><path><arg>" into req->url. */
static int set_url(const struct provider_cfg *p, struct provider_req *req,
                   const char *path, const char *arg, char *errstr,
                   size_t errstr_size)
{
        size_t n;
        int r;

        if (!p->base_url || !*p->base_url) {
                snprintf(errstr, errstr_size, "provider %s has no base_url",
                         p->name);
                return -1;
        }
        n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
                n--;
        r = snprintf(req->url, sizeof(req->url), "%.*s%s%s", (int)n,
                     p->base_url, path, arg);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: URL too long",
                         p->name);
                return -1;
        }
        return 0;
}

static int set_headers(const char *key, int has_body,
                       struct provider_req *req, char *errstr,
                       size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (key && *key)
                provider_req_header(req, "Authorization: Bearer %s", key);
        if (has_body)
                provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
        return 0;
}

/** Merge extra_body into \p body; keys the adapter set win. */
static int merge_extra(const struct provider_cfg *p, json_t *body,
                       char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *extra;

        if (!p->extra_body || !*p->extra_body)
                return 0;
        extra = json_loads(p->extra_body, 0, &jerr);
        if (!json_is_object(extra)) {
                snprintf(errstr, errstr_size,
                         "provider %s: extra_body is not a JSON object: %s",
                         p->name, extra ? "wrong type" : jerr.text);
                json_decref(extra);
                return -1;
        }
        if (json_object_update_missing(body, extra) == -1)
                fatal("out of memory building JSON");
        json_decref(extra);
        return 0;
}

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
        return s && *s ? jset_str(body, k, s) : 0;
}

static int fill_body(const struct provider_cfg *p, const Genq__V1__Job *job,
                     const char *model, json_t *body, char *errstr,
                     size_t errstr_size)
{
        const Genq__V1__VideoRequest *v = job->video;

        if (jset_str(body, "model", model) == -1 ||
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
                jset(body, "duration", json_integer(v->duration_s));
        if (merge_extra(p, body, errstr, errstr_size) == -1)
                return -1;
        if (!json_object_get(body, "with_audio"))
                jset(body, "with_audio", json_false());
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
        if (set_url(p, req, path, arg, errstr, errstr_size) == -1 ||
            set_headers(key, body != NULL, req, errstr, errstr_size) == -1) {
                json_decref(body);
                provider_req_clear(req);
                return -1;
        }
        req->method = body ? "POST" : "GET";
        if (!body)
                return 0;
        req->body = json_dumps(body, JSON_COMPACT);
        if (!req->body)
                fatal("out of memory serialising JSON");
        req->body_len = strlen(req->body);
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

/** Task ids are digits in practice; anything that could leave the path
 *  segment is refused. */
static int id_ok(const char *id)
{
        return id && *id && strlen(id) < 256 &&
               strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvw"
                          "xyz0123456789-_.") == strlen(id);
}

static int build_poll(const struct provider_cfg *p, const char *key,
                      const char *task_id, struct provider_req *req,
                      char *errstr, size_t errstr_size)
{
        memset(req, 0, sizeof(*req));
        if (!id_ok(task_id)) {
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

/*
 * No envelope (a proxy, CDN or WAF page): only the status is left.  Never
 * disable a key on a 403 page (WAF and region blocks look like that); a
 * 404 page means the URL is wrong here, not that the job is bad.
 */
static const struct {
        long status;
        enum outcome outcome;
} nonjson_rules[] = {
        {401, KEYDIS}, {402, QUOTA}, {403, FALLBACK}, {404, FALLBACK},
};

/** provider_classify_generic(), then the status-only rows above. */
static enum outcome classify_bare(const struct provider_resp *resp,
                                  struct provider_err *err)
{
        provider_classify_generic(resp, err);
        for (size_t i = 0;
             i < sizeof(nonjson_rules) / sizeof(nonjson_rules[0]); i++)
                if (!resp->transport_err &&
                    nonjson_rules[i].status == resp->status)
                        err->outcome = nonjson_rules[i].outcome;
        return err->outcome;
}

/** Is \p code one of the '|'-separated \p alts? */
static int code_in(const char *alts, const char *code)
{
        size_t n, len = strlen(code);

        for (;;) {
                n = strcspn(alts, "|");
                if (n == len && !strncmp(alts, code, n))
                        return 1;
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

/** Copy \p src into \p dst, cut at a UTF-8 character boundary. */
static void copy_utf8(char *dst, size_t dstsz, const char *src)
{
        size_t n = strlen(src);

        if (n >= dstsz) {
                n = dstsz - 1;
                while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
                        n--;
        }
        memcpy(dst, src, n);
        dst[n] = '\0';
}

static void set_errstr(struct provider_err *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/** printf into err->errstr, cut on a UTF-8 boundary. */
static void set_errstr(struct provider_err *err, const char *fmt, ...)
{
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

/** An {"error":{"code","message"}} body: its code's class, by status
 *  when the code is unknown. */
static enum outcome classify_error(const struct provider_resp *resp,
                                   const json_t *e, struct provider_err *err)
{
        const char *code = jstr(e, "code"), *msg = jstr(e, "message");
        size_t i;

        classify_bare(resp, err);
        if (resp->status >= 200 && resp->status < 300)
                err->outcome = FALLBACK; /* an error with a 200 */
        for (i = 0; code && i < sizeof(code_rules) / sizeof(code_rules[0]);
             i++)
                if (code_in(code_rules[i].codes, code)) {
                        err->outcome = code_rules[i].outcome;
                        break;
                }
        set_errstr(err, "%ld %s: %s", resp->status, code ? code : "",
                   msg ? msg : "(no message)");
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(msg);
        return err->outcome;
}

static void err_init(const struct provider_resp *resp,
                     struct provider_err *err)
{
        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
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

        err_init(resp, err);
        if (!resp->transport_err && resp->status && !resp->truncated &&
            resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
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
        set_errstr(err, "zhipu_video: %s", why);
        err->outcome = RETRY;
        return err->outcome;
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
        id = jstr(root, "id");
        status = jstr(root, "task_status");
        if (status && !strcmp(status, "FAIL")) {
                set_errstr(err, "zhipu video task FAIL at submit");
                err->outcome = FALLBACK;
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
                        u = jstr(r, keys[k]);
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

        if (!jstr(first, "url") || !*jstr(first, "url")) {
                set_errstr(err, "zhipu video SUCCESS without a URL");
                err->outcome = FALLBACK;
                return err->outcome;
        }
        add_urls(results, res);
        res->model = xstrdup(jstr(root, "model"));
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
        status = jstr(root, "task_status");
        if (!status) {
                malformed(err, "async-result answered no task_status");
        } else if (!strcmp(status, "PROCESSING")) {
                set_errstr(err, "zhipu video PROCESSING");
                err->outcome = OUTCOME_PENDING;
        } else if (!strcmp(status, "SUCCESS")) {
                task_succeeded(root, job, res, err);
        } else {
                /* FAIL carries no reason: the provider failed */
                set_errstr(err, "zhipu video task %.20s", status);
                err->outcome = FALLBACK;
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
