/*
 * provider_sf_video: SiliconFlow video generation ("siliconflow_video"),
 * an async adapter.  Reference sections 7.1 and 7.2.
 *
 *   submit  POST <base>/video/submit {model, prompt, image_size[, image]}
 *           -> {"requestId": "..."}
 *   poll    POST <base>/video/status {"requestId": "..."}   (POST, not GET)
 *           -> status InQueue (position n) | InProgress  -> PENDING
 *              status Succeed (exact spelling) -> results.videos[].url
 *              any other status -> failed: reason about the content, the
 *              prompt or the image -> fatal_job, else fallback_next
 *
 * image_size is required and is one of three sizes, picked from the job's
 * aspect ratio (16:9 or none: 1280x720, 9:16: 720x1280, 1:1: 960x960);
 * other ratios and storyboards fail build(), so the worker moves on.  The
 * model is the job's hint when it is a SiliconFlow id ("org/name"), else
 * the configured one; a first frame turns a "-T2V-" model into its "-I2V-"
 * twin (and the image goes in "image"), its absence turns it back.
 * extra_body is merged at the top level as defaults (negative_prompt,
 * seed).
 *
 * Errors are {"code": int, "message": str, "data": null} with meaningful
 * HTTP statuses (section 1.2 SiliconFlow, section 12 rows).  Units: seconds
 * of video; the API does not report the clip length, so the job's
 * duration_s, or 5.
 */
#include "provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "xmem.h"

#define SUBMIT_PATH "/video/submit"
#define STATUS_PATH "/video/status"
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

/** "<base without trailing slashes><path>" into req->url. */
static int set_url(const struct provider_cfg *p, struct provider_req *req,
                   const char *path, char *errstr, size_t errstr_size)
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
        r = snprintf(req->url, sizeof(req->url), "%.*s%s", (int)n,
                     p->base_url, path);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: URL too long",
                         p->name);
                return -1;
        }
        return 0;
}

/**
 * POST \p body (JSON) to \p path with the usual headers.
 * @remark takes \p body in every case.
 */
static int post_json(const struct provider_cfg *p, const char *key,
                     const char *path, json_t *body,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                goto err_free_body;
        }
        if (set_url(p, req, path, errstr, errstr_size) == -1)
                goto err_free_body;
        if (key && *key)
                provider_req_header(req, "Authorization: Bearer %s", key);
        provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
        req->method = "POST";
        req->body = json_dumps(body, JSON_COMPACT);
        if (!req->body)
                fatal("out of memory serialising JSON");
        req->body_len = strlen(req->body);
        json_decref(body);
        return 0;

err_free_body:
        json_decref(body);
        provider_req_clear(req);
        return -1;
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

/** Job aspect ratios and the image_size each becomes ("" = none given). */
static const struct {
        const char *ratio;
        const char *size;
} sizes[] = {
        {"", "1280x720"},         {"16:9", "1280x720"},
        {"landscape", "1280x720"}, {"9:16", "720x1280"},
        {"portrait", "720x1280"}, {"1:1", "960x960"},
};

static const char *image_size(const char *ratio)
{
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
                if (!strcasecmp(sizes[i].ratio, ratio))
                        return sizes[i].size;
        return NULL;
}

/** Copy of \p model with its first \p from replaced by \p to. */
static char *swap_variant(const char *model, const char *from,
                          const char *to)
{
        const char *at = strstr(model, from);
        char *out;

        if (!at)
                return xstrdup(model);
        out = xmalloc(strlen(model) + 1);
        memcpy(out, model, (size_t)(at - model));
        strcpy(out + (at - model), to);
        strcat(out, at + strlen(from));
        return out;
}

/** The model to send (owned): the job's "org/name" hint or the
 *  configured one, T2V/I2V as the first frame requires. */
static char *video_model(const struct provider_cfg *p,
                         const Genq__V1__VideoRequest *v)
{
        const char *m = strchr(v->model, '/') ? v->model : p->model;

        if (!m || !*m)
                return NULL;
        if (*v->first_frame_url)
                return swap_variant(m, "-T2V-", "-I2V-");
        return swap_variant(m, "-I2V-", "-T2V-");
}

/** Job checks that build() cannot turn into a request. */
static const char *unsupported(const Genq__V1__VideoRequest *v)
{
        if (v->n_scenes)
                return "siliconflow_video has no storyboards";
        if (!*v->prompt)
                return "video prompt is empty";
        if (!image_size(v->aspect_ratio))
                return "aspect ratio not offered by SiliconFlow video";
        return NULL;
}

static int fill_body(const struct provider_cfg *p,
                     const Genq__V1__VideoRequest *v, const char *model,
                     json_t *body, char *errstr, size_t errstr_size)
{
        if (jset_str(body, "model", model) == -1 ||
            jset_str(body, "prompt", v->prompt) == -1 ||
            (*v->first_frame_url &&
             jset_str(body, "image", v->first_frame_url) == -1)) {
                snprintf(errstr, errstr_size,
                         "model, prompt or image is not valid UTF-8");
                return -1;
        }
        jset(body, "image_size", json_string(image_size(v->aspect_ratio)));
        return merge_extra(p, body, errstr, errstr_size);
}

static int build(const struct provider_cfg *p, const char *key,
                 const Genq__V1__Job *job, const struct provider_input *in,
                 struct provider_req *req, char *errstr, size_t errstr_size)
{
        const Genq__V1__VideoRequest *v = job->video;
        const char *why;
        char *model;
        json_t *body;
        int r;

        memset(req, 0, sizeof(*req));
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_VIDEO || !v) {
                snprintf(errstr, errstr_size, "not a video job");
                return -1;
        }
        why = unsupported(v);
        model = why ? NULL : video_model(p, v);
        if (!model) {
                snprintf(errstr, errstr_size, "%s",
                         why ? why : "no model: none hinted or configured");
                return -1;
        }
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        r = fill_body(p, v, model, body, errstr, errstr_size);
        free(model);
        if (r == -1) {
                json_decref(body);
                return -1;
        }
        return post_json(p, key, SUBMIT_PATH, body, req, errstr,
                         errstr_size);
}

static int build_poll(const struct provider_cfg *p, const char *key,
                      const char *task_id, struct provider_req *req,
                      char *errstr, size_t errstr_size)
{
        json_t *body;

        memset(req, 0, sizeof(*req));
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        if (!task_id || !*task_id ||
            jset_str(body, "requestId", task_id) == -1) {
                snprintf(errstr, errstr_size, "bad task id");
                json_decref(body);
                return -1;
        }
        return post_json(p, key, STATUS_PATH, body, req, errstr,
                         errstr_size);
}

/*
 * Classifying errors.
 */

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_CODE,    /**< code equals one of val */
        M_MSG,     /**< message contains one of val (any case) */
};

/** One row of section 12: first row whose status and marker match wins. */
struct rule {
        long status;          /**< HTTP status, 0 = any */
        enum marker marker;
        const char *val;      /**< '|'-separated alternatives */
        enum outcome outcome;
};

static const struct rule rules[] = {
        {400, M_CODE, "20012", FALLBACK}, /* model does not exist */
        {400, M_ANY, NULL, FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {403, M_CODE, "30011|30001", QUOTA},
        {403, M_MSG, "balance is insufficient|insufficient balance", QUOTA},
        {403, M_ANY, NULL, KEYDIS}, /* real-name verification, permission */
        {429, M_ANY, NULL, RETRY},
        {503, M_ANY, NULL, RETRY},
        {504, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/*
 * No JSON body: a proxy, CDN or WAF answered.  Only the status is left;
 * never disable a key on a 403 page (WAF and region blocks look like
 * that), and a 404 page means the URL is wrong here, not the job.
 */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/** Does one of the '|'-separated \p alts equal (or, \p contains, occur
 *  in, any case) \p s? */
static int alt_match(const char *alts, const char *s, int contains)
{
        char needle[64];
        size_t n;

        if (!s)
                return 0;
        for (;;) {
                n = strcspn(alts, "|");
                if (n < sizeof(needle)) {
                        memcpy(needle, alts, n);
                        needle[n] = '\0';
                        if (contains ? strcasestr(s, needle) != NULL
                                     : !strcmp(s, needle))
                                return 1;
                }
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static const struct rule *rule_find(const struct rule *table, long status,
                                    const char *code, const char *msg)
{
        for (const struct rule *r = table; r->marker != M_END; r++) {
                if (r->status && r->status != status)
                        continue;
                if (r->marker == M_ANY ||
                    (r->marker == M_CODE && alt_match(r->val, code, 0)) ||
                    (r->marker == M_MSG && alt_match(r->val, msg, 1)))
                        return r;
        }
        return NULL;
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

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

/** A non-2xx answer: the table on {code, message}, else by status. */
static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        json_t *root = json_loadb(resp->body ? resp->body : "",
                                  resp->body_len, 0, NULL);
        const json_t *c = json_object_get(root, "code");
        const char *msg = jstr(root, "message");
        const struct rule *r;
        char code[24] = "";

        if (json_is_integer(c))
                snprintf(code, sizeof(code), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(c));
        else if (json_is_string(c))
                snprintf(code, sizeof(code), "%s", json_string_value(c));
        r = rule_find(json_is_object(root) ? rules : nonjson_rules,
                      resp->status, code, msg);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        if (json_is_object(root))
                set_errstr(err, "%ld %s: %s", resp->status, code,
                           msg ? msg : "(no message)");
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(msg);
        json_decref(root);
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
 * The 2xx JSON object of \p resp, or NULL when there is an error to
 * classify (then err is filled).
 */
static json_t *load_ok(const struct provider_resp *resp,
                       struct provider_err *err)
{
        json_t *root = NULL;

        err_init(resp, err);
        if (resp->transport_err || resp->status == 0) {
                provider_classify_generic(resp, err);
                return NULL;
        }
        if (resp->status < 200 || resp->status >= 300) {
                parse_error(resp, err);
                return NULL;
        }
        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                provider_classify_generic(resp, err);
                return NULL;
        }
        return root;
}

static enum outcome malformed(struct provider_err *err, const char *why)
{
        set_errstr(err, "siliconflow_video: %s", why);
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
        const char *id;

        if (!root)
                return err->outcome;
        id = jstr(root, "requestId");
        if (id && *id)
                res->task_id = xstrdup(id);
        else
                malformed(err, "submit answered no requestId");
        json_decref(root);
        return err->outcome;
}

/** Failure reasons that blame the job: its content, prompt or image. */
static const char *const job_fault_words[] = {
        "content", "prompt", "image", "policy", "sensitive",
        "nsfw",    "unsafe", "moderat", "violat", "inappropriate",
};

static enum outcome task_failed(const char *status, const char *reason,
                                struct provider_err *err)
{
        err->outcome = FALLBACK;
        for (size_t i = 0;
             i < sizeof(job_fault_words) / sizeof(job_fault_words[0]); i++)
                if (strcasestr(reason, job_fault_words[i]))
                        err->outcome = FATAL;
        set_errstr(err, "siliconflow video %.20s: %s", status,
                   *reason ? reason : "(no reason)");
        return err->outcome;
}

static double job_seconds(const Genq__V1__Job *job)
{
        if (job && job->payload_case == GENQ__V1__JOB__PAYLOAD_VIDEO &&
            job->video && job->video->duration_s > 0)
                return job->video->duration_s;
        return DEFAULT_SECONDS;
}

static enum outcome task_succeeded(const json_t *root,
                                   const Genq__V1__Job *job,
                                   struct provider_result *res,
                                   struct provider_err *err)
{
        const json_t *v;
        size_t i;

        json_array_foreach(json_object_get(json_object_get(root, "results"),
                                           "videos"),
                           i, v)
                if (jstr(v, "url") && *jstr(v, "url"))
                        provider_result_add_url(res, jstr(v, "url"));
        if (!res->n_urls) {
                set_errstr(err, "siliconflow video Succeed without a URL");
                err->outcome = FALLBACK;
                return err->outcome;
        }
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
        const char *status, *reason;

        if (!root)
                return err->outcome;
        status = jstr(root, "status");
        reason = jstr(root, "reason");
        if (!status || !*status) {
                malformed(err, "status answered no status");
        } else if (!strcmp(status, "InQueue") ||
                   !strcmp(status, "InProgress")) {
                set_errstr(err, "siliconflow video %s", status);
                err->outcome = OUTCOME_PENDING;
        } else if (!strcmp(status, "Succeed")) {
                task_succeeded(root, job, res, err);
        } else {
                task_failed(status, reason ? reason : "", err);
        }
        json_decref(root);
        return err->outcome;
}

const struct provider_ops provider_sf_video_ops = {
        .name = "siliconflow_video",
        .kind = GENQ__V1__KIND__KIND_VIDEO,
        .flags = PROVIDER_F_ASYNC,
        .build = build,
        .parse = parse,
        .build_poll = build_poll,
        .parse_poll = parse_poll,
};
