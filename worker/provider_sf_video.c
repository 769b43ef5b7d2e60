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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "adapt.h"
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

/**
 * POST \p body (JSON) to \p path with the usual headers.
 * @remark takes \p body in every case.
 */
static int post_json(const struct provider_cfg *p, const char *key,
                     const char *path, json_t *body,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
{
        if (adapt_json_headers(req, "Authorization: Bearer ", key, 1, errstr,
                               errstr_size) == -1 ||
            adapt_url(req, p, "URL", errstr, errstr_size, path, NULL) == -1)
                goto err_free_body;
        req->method = "POST";
        adapt_req_json(req, body, JSON_COMPACT);
        json_decref(body);
        return 0;

err_free_body:
        json_decref(body);
        provider_req_clear(req);
        return -1;
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
        if (adapt_jset_str(body, "model", model) == -1 ||
            adapt_jset_str(body, "prompt", v->prompt) == -1 ||
            (*v->first_frame_url &&
             adapt_jset_str(body, "image", v->first_frame_url) == -1)) {
                snprintf(errstr, errstr_size,
                         "model, prompt or image is not valid UTF-8");
                return -1;
        }
        adapt_jset(body, "image_size",
                   json_string(image_size(v->aspect_ratio)));
        /* extra_body at the top level; keys the adapter set win */
        return adapt_merge_obj(p, "extra_body", p->extra_body, body,
                               ADAPT_MERGE_TOP, errstr, errstr_size);
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
            adapt_jset_str(body, "requestId", task_id) == -1) {
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
        M_END = ADAPT_M_END,  /**< table terminator */
        M_ANY = ADAPT_M_ANY,  /**< status alone decides */
        M_CODE = ADAPT_M_OWN, /**< code equals one of val */
        M_MSG,                /**< message contains one of val (any case) */
};

/* Section 1.2 SiliconFlow and the section 12 rows.  A body that is not
 * JSON: adapt_nonjson_rule(). */
static const struct adapt_rule rules[] = {
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

/** The fields of an error body the rules look at. */
struct errbody {
        const char *code;    /**< code as text, "" if none */
        const char *message; /**< message, or NULL */
};

static int marker_match(const struct adapt_rule *r, const void *ctx)
{
        const struct errbody *eb = ctx;

        if (r->marker == M_CODE)
                return adapt_alt_eq(r->val, eb->code);
        return r->marker == M_MSG && adapt_alt_has(r->val, eb->message);
}

/** A non-2xx answer: the table on {code, message}, else by status. */
static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        json_t *root = adapt_body_json(resp);
        const json_t *c = json_object_get(root, "code");
        struct errbody eb = {"", adapt_jstr(root, "message")};
        char code[24] = "";

        if (json_is_integer(c))
                snprintf(code, sizeof(code), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(c));
        else if (json_is_string(c))
                snprintf(code, sizeof(code), "%s", json_string_value(c));
        eb.code = code;
        adapt_classify(resp,
                       json_is_object(root)
                               ? adapt_rules_match(rules, resp->status,
                                                   marker_match, &eb)
                               : adapt_nonjson_rule(resp->status),
                       err);
        if (json_is_object(root))
                adapt_errstr(err, NULL, "%ld %s: %s", resp->status, code,
                             eb.message ? eb.message : "(no message)");
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(eb.message);
        json_decref(root);
        return err->outcome;
}

/**
 * The 2xx JSON object of \p resp, or NULL when there is an error to
 * classify (then err is filled).
 */
static json_t *load_ok(const struct provider_resp *resp,
                       struct provider_err *err)
{
        json_t *root;

        adapt_err_init(resp, err);
        if (resp->transport_err || resp->status == 0) {
                provider_classify_generic(resp, err);
                return NULL;
        }
        if (resp->status < 200 || resp->status >= 300) {
                parse_error(resp, err);
                return NULL;
        }
        root = adapt_ok_json(resp);
        if (!root)
                provider_classify_generic(resp, err);
        return root;
}

static enum outcome malformed(struct provider_err *err, const char *why)
{
        return adapt_fail(err, RETRY, "siliconflow_video: %s", why);
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
        id = adapt_jstr(root, "requestId");
        if (id && *id)
                res->task_id = xstrdup(id);
        else
                malformed(err, "submit answered no requestId");
        json_decref(root);
        return err->outcome;
}

/** Failure reasons that blame the job: its content, prompt or image. */
static const char *const job_fault_words =
        "content|prompt|image|policy|sensitive|nsfw|unsafe|moderat|violat|"
        "inappropriate";

static enum outcome task_failed(const char *status, const char *reason,
                                struct provider_err *err)
{
        return adapt_fail(err,
                          adapt_alt_has(job_fault_words, reason) ? FATAL
                                                                 : FALLBACK,
                          "siliconflow video %.20s: %s", status,
                          *reason ? reason : "(no reason)");
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
                if (adapt_jstr(v, "url") && *adapt_jstr(v, "url"))
                        provider_result_add_url(res, adapt_jstr(v, "url"));
        if (!res->n_urls)
                return adapt_fail(err, FALLBACK,
                                  "siliconflow video Succeed without a URL");
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
        status = adapt_jstr(root, "status");
        reason = adapt_jstr(root, "reason");
        if (!status || !*status) {
                malformed(err, "status answered no status");
        } else if (!strcmp(status, "InQueue") ||
                   !strcmp(status, "InProgress")) {
                adapt_errstr(err, NULL, "siliconflow video %s", status);
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
