/*
 * provider_replicate: Replicate predictions ("replicate", reference 5.4),
 * an async adapter.
 *
 *   submit  POST <base>/models/{owner}/{name}/predictions  {"input": {...}}
 *           when the model is "owner/name" (official models), or
 *           POST <base>/predictions {"version": <id>, "input": {...}}
 *           when it is a 64-hex version id (or "owner/name:<id>").
 *           201 -> the prediction; its id is the task id.
 *   poll    GET <base>/predictions/{id}
 *           starting | processing          -> pending
 *           succeeded                      -> output URLs (a string or an
 *                                             array), units = their number
 *           failed, input/NSFW error text  -> fatal_job
 *           failed, other                  -> fallback_next
 *           canceled                       -> fatal_job
 *
 * The input follows the common text-to-image schema (prompt,
 * negative_prompt, aspect_ratio, output_format with "jpeg" spelt "jpg",
 * num_outputs, image);
 * extra_body is merged into "input" as defaults, since that is where a
 * model's own parameters go.  A job's model hint is used when it has one
 * of the shapes above, else the provider's default applies.
 *
 * Errors are problem JSON {"title","detail","status"}; a 429 carries
 * "retry_after" (seconds) in the body, used when no Retry-After header
 * came.
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define VERSION_LEN 64

/*
 * Building the submit.
 */

enum model_shape {
        SHAPE_NONE = 0, /**< not a Replicate model reference */
        SHAPE_MODEL,    /**< "owner/name" */
        SHAPE_VERSION,  /**< 64 hex digits, or "owner/name:<hex>" */
};

static int is_hex_id(const char *s)
{
        return strlen(s) == VERSION_LEN &&
               strspn(s, "0123456789abcdef") == VERSION_LEN;
}

/** What \p m is; *version points at the hex id for SHAPE_VERSION. */
static enum model_shape shape_of(const char *m, const char **version)
{
        size_t a, b;

        if (!m || !*m)
                return SHAPE_NONE;
        if (is_hex_id(m)) {
                *version = m;
                return SHAPE_VERSION;
        }
        a = adapt_segment_len(m);
        if (!a || m[a] != '/')
                return SHAPE_NONE;
        b = adapt_segment_len(m + a + 1);
        if (!b)
                return SHAPE_NONE;
        if (!m[a + 1 + b])
                return SHAPE_MODEL;
        if (m[a + 1 + b] == ':' && is_hex_id(m + a + 2 + b)) {
                *version = m + a + 2 + b;
                return SHAPE_VERSION;
        }
        return SHAPE_NONE;
}

static const Genq__V1__ImageRequest *image_of(const Genq__V1__Job *job,
                                              char *errstr,
                                              size_t errstr_size)
{
        const Genq__V1__ImageRequest *im;

        im = adapt_image_job(job, errstr, errstr_size);
        if (im && im->n_input_image_urls > 1) {
                snprintf(errstr, errstr_size,
                         "Replicate models take one input image");
                return NULL;
        }
        return im;
}

/** Authorization, and Content-Type when there is a JSON body. */
static int build_headers(const char *key, int json, struct provider_req *req,
                         char *errstr, size_t errstr_size)
{
        if (adapt_auth(req, "Authorization: Bearer ", key, errstr,
                       errstr_size) == -1)
                return -1;
        if (json)
                provider_req_header(req, "Content-Type: application/json");
        return 0;
}

/** "1024x576" -> "16:9" (reduced), else "". */
static void ratio_of_size(const char *size, char *out, size_t outsz)
{
        unsigned long w, h, a, b, t;
        char tail;

        out[0] = '\0';
        if (sscanf(size, "%lux%lu%c", &w, &h, &tail) != 2 || !w || !h)
                return;
        for (a = w, b = h; b; t = a % b, a = b, b = t)
                ;
        if (w / a <= 32 && h / a <= 32)
                snprintf(out, outsz, "%lu:%lu", w / a, h / a);
}

/** Replicate's image models spell JPEG "jpg". */
static const char *replicate_format(const char *f)
{
        return strcmp(f, "jpeg") ? f : "jpg";
}

static int input_fields(const Genq__V1__ImageRequest *im, json_t *in)
{
        char ratio[32];

        if (*im->aspect_ratio)
                snprintf(ratio, sizeof(ratio), "%s", im->aspect_ratio);
        else
                ratio_of_size(im->size, ratio, sizeof(ratio));
        if (adapt_jset_str(in, "prompt", im->prompt) == -1 ||
            (*im->negative_prompt &&
             adapt_jset_str(in, "negative_prompt", im->negative_prompt) ==
                     -1) ||
            (*ratio && adapt_jset_str(in, "aspect_ratio", ratio) == -1) ||
            (*im->output_format &&
             adapt_jset_str(in, "output_format",
                            replicate_format(im->output_format)) == -1) ||
            (im->n_input_image_urls &&
             adapt_jset_str(in, "image", im->input_image_urls[0]) == -1))
                return -1;
        if (im->count > 1)
                adapt_jset(in, "num_outputs", json_integer(im->count));
        return 0;
}

/** {"version"?, "input": {...}}; NULL with errstr on failure. */
static json_t *build_body(const struct provider_cfg *p,
                          const Genq__V1__ImageRequest *im,
                          const char *version, char *errstr,
                          size_t errstr_size)
{
        json_t *body = json_object(), *in = json_object();

        if (!body || !in)
                fatal("out of memory building JSON");
        adapt_jset(body, "input", in);
        if (version)
                adapt_jset(body, "version", json_string(version));
        if (input_fields(im, in) == -1) {
                snprintf(errstr, errstr_size, "image job is not valid UTF-8");
                goto err_free_body;
        }
        /* extra_body into "input", where a model's parameters go */
        if (adapt_merge_obj(p, "extra_body", p->extra_body, in,
                            ADAPT_MERGE_TOP, errstr, errstr_size) == -1)
                goto err_free_body;
        return body;

err_free_body:
        json_decref(body);
        return NULL;
}

static int build(const struct provider_cfg *p, const char *key,
                 const Genq__V1__Job *job, const struct provider_input *in,
                 struct provider_req *req, char *errstr, size_t errstr_size)
{
        const Genq__V1__ImageRequest *im;
        const char *model, *version = NULL;
        enum model_shape shape;
        json_t *body;

        memset(req, 0, sizeof(*req));
        im = image_of(job, errstr, errstr_size);
        if (!im)
                return -1;
        model = shape_of(im->model, &version) ? im->model : p->model;
        version = NULL;
        shape = shape_of(model, &version);
        if (!shape) {
                snprintf(errstr, errstr_size,
                         "provider %s: model \"%s\" is neither owner/name "
                         "nor a version id",
                         p->name, model ? model : "");
                return -1;
        }
        body = build_body(p, im, version, errstr, errstr_size);
        if (!body)
                return -1;
        if ((shape == SHAPE_MODEL
                     ? adapt_url(req, p, "URL", errstr, errstr_size,
                                 "/models/", model, "/predictions", NULL)
                     : adapt_url(req, p, "URL", errstr, errstr_size,
                                 "/predictions", NULL)) == -1 ||
            build_headers(key, 1, req, errstr, errstr_size) == -1) {
                json_decref(body);
                provider_req_clear(req);
                return -1;
        }
        req->method = "POST";
        adapt_req_json(req, body, JSON_COMPACT);
        json_decref(body);
        return 0;
}

static int build_poll(const struct provider_cfg *p, const char *key,
                      const char *task_id, struct provider_req *req,
                      char *errstr, size_t errstr_size)
{
        memset(req, 0, sizeof(*req));
        if (!task_id || !*task_id ||
            adapt_segment_len(task_id) != strlen(task_id)) {
                snprintf(errstr, errstr_size, "bad prediction id");
                return -1;
        }
        if (adapt_url(req, p, "URL", errstr, errstr_size, "/predictions/",
                      task_id, NULL) == -1 ||
            build_headers(key, 0, req, errstr, errstr_size) == -1) {
                provider_req_clear(req);
                return -1;
        }
        req->method = "GET";
        return 0;
}

/* POST /predictions/{id}/cancel answers the prediction, now "canceled"
 * (or unchanged if it had already ended). */
static int build_cancel(const struct provider_cfg *p, const char *key,
                        const char *task_id, struct provider_req *req,
                        char *errstr, size_t errstr_size)
{
        if (build_poll(p, key, task_id, req, errstr, errstr_size))
                return -1;
        if (strlen(req->url) + sizeof("/cancel") > sizeof(req->url)) {
                provider_req_clear(req);
                snprintf(errstr, errstr_size, "URL too long");
                return -1;
        }
        strcat(req->url, "/cancel");
        req->method = "POST";
        return 0;
}

/*
 * Classifying errors: problem JSON {"title", "detail", "status"}.
 */

enum marker {
        M_END = ADAPT_M_END, /**< table terminator */
        M_ANY = ADAPT_M_ANY, /**< status alone decides */
        M_MSG = ADAPT_M_OWN, /**< title or detail contains one of val (any
                                  case) */
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* Section 5.4 and 12.  5xx and other statuses: provider_classify_generic.
 * A body that is not JSON: adapt_nonjson_rule(). */
static const struct adapt_rule rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {0, M_MSG, "insufficient credit", QUOTA},
        {404, M_ANY, NULL, FALLBACK},
        {422, M_ANY, NULL, FATAL},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/*
 * A failed prediction's error text that blames the input: fatal_job
 * (section 5.4 "input/NSFW errors"); anything else is the model's or the
 * hardware's problem: fallback_next.
 */
static const char *const input_markers =
        "nsfw|sensitive|safety|flagged|content policy|moderation|input|"
        "prompt";

/** The two texts of a problem body. */
struct problem {
        const char *title;
        const char *detail;
};

static int marker_match(const struct adapt_rule *r, const void *ctx)
{
        const struct problem *pb = ctx;

        return adapt_alt_has(r->val, pb->title) ||
               adapt_alt_has(r->val, pb->detail);
}

/** "r8_xxxxxx..." tokens (Replicate keys) shortened to "r8_…". */
static const char *const key_prefixes[] = {"r8_", NULL};
static const struct adapt_redact keys = {
        .prefixes = key_prefixes,
        .chars = "-_",
        .token_start = 1,
        .high_bytes = 1,
        .min_len = 6,
};

/** Body "retry_after" (seconds) as ms, or -1. */
static int64_t body_retry_after(const json_t *root)
{
        const json_t *v = json_object_get(root, "retry_after");

        if (!json_is_number(v) || json_number_value(v) < 0)
                return -1;
        return (int64_t)(json_number_value(v) * 1000.0 + 0.5);
}

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        struct problem pb;
        json_t *root;

        root = adapt_body_json(resp);
        pb.title = adapt_jstr(root, "title");
        pb.detail = adapt_jstr(root, "detail");
        adapt_classify(resp,
                       json_is_object(root)
                               ? adapt_rules_match(rules, resp->status,
                                                   marker_match, &pb)
                               : adapt_nonjson_rule(resp->status),
                       err);
        if (json_is_object(root))
                adapt_errstr(err, &keys, "%ld: %s", resp->status,
                             pb.detail  ? pb.detail
                             : pb.title ? pb.title
                                        : "(no detail)");
        if (err->retry_after_ms < 0)
                err->retry_after_ms = body_retry_after(root);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading predictions.
 */

/** The prediction object of a 2xx answer, or NULL. */
static json_t *prediction(const struct provider_resp *resp)
{
        json_t *root = adapt_ok_json(resp);

        if (json_is_string(json_object_get(root, "status")))
                return root;
        json_decref(root);
        return NULL;
}

/** The submit's 2xx answer: the prediction, whose id is the task id. */
static enum outcome submit_ok(const Genq__V1__Job *job,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err, adapt_error_fn *error)
{
        json_t *root = prediction(resp);
        const char *id;

        id = json_string_value(json_object_get(root, "id"));
        if (!id || !*id) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
        res->task_id = xstrdup(id);
        json_decref(root);
        return OUTCOME_SUCCESS;
}

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        return adapt_parse(job, resp, res, err, submit_ok, parse_error);
}

/** Add \p v's URLs: a string, an array of strings, or an object's string
 *  members. */
static void add_output(const json_t *v, struct provider_result *res)
{
        const json_t *item;
        const char *k;
        size_t i;

        if (json_is_string(v))
                provider_result_add_url(res, json_string_value(v));
        else if (json_is_array(v))
                json_array_foreach(v, i, item)
                        if (json_is_string(item))
                                provider_result_add_url(
                                        res, json_string_value(item));
        if (json_is_object(v))
                json_object_foreach((json_t *)v, k, item)
                        if (json_is_string(item) &&
                            !strncmp(json_string_value(item), "http", 4))
                                provider_result_add_url(
                                        res, json_string_value(item));
}

typedef enum outcome(state_fn)(const json_t *pred,
                               struct provider_result *res,
                               struct provider_err *err);

static enum outcome st_pending(const json_t *pred, struct provider_result *res,
                               struct provider_err *err)
{
        return OUTCOME_PENDING;
}

static enum outcome st_succeeded(const json_t *pred,
                                 struct provider_result *res,
                                 struct provider_err *err)
{
        const json_t *metrics = json_object_get(pred, "metrics");

        add_output(json_object_get(pred, "output"), res);
        if (!res->n_urls) {
                snprintf(err->errstr, sizeof(err->errstr),
                         "prediction succeeded without output URLs");
                return OUTCOME_FALLBACK_NEXT;
        }
        res->units = (double)res->n_urls;
        res->unit = "image";
        res->model = xstrdup(json_string_value(json_object_get(pred,
                                                               "model")));
        if (json_is_object(metrics))
                res->usage_json = adapt_jdump(metrics, JSON_COMPACT);
        return OUTCOME_SUCCESS;
}

static enum outcome st_failed(const json_t *pred, struct provider_result *res,
                              struct provider_err *err)
{
        const char *e = json_string_value(json_object_get(pred, "error"));

        adapt_errstr(err, &keys, "prediction failed: %s",
                     e ? e : "(no error text)");
        return adapt_alt_has(input_markers, e) ? OUTCOME_FATAL_JOB
                                               : OUTCOME_FALLBACK_NEXT;
}

static enum outcome st_canceled(const json_t *pred,
                                struct provider_result *res,
                                struct provider_err *err)
{
        snprintf(err->errstr, sizeof(err->errstr), "prediction canceled");
        return OUTCOME_FATAL_JOB;
}

/* "aborted": terminated before it started (deadline); not the job's fault. */
static enum outcome st_aborted(const json_t *pred, struct provider_result *res,
                               struct provider_err *err)
{
        snprintf(err->errstr, sizeof(err->errstr), "prediction aborted");
        return OUTCOME_FALLBACK_NEXT;
}

static const struct {
        const char *status;
        state_fn *fn;
} states[] = {
        {"starting", st_pending},   {"processing", st_pending},
        {"succeeded", st_succeeded}, {"failed", st_failed},
        {"canceled", st_canceled},  {"aborted", st_aborted},
};

/** A poll's 2xx answer: the prediction's status decides (states[]). */
static enum outcome poll_ok(const Genq__V1__Job *job,
                            const struct provider_resp *resp,
                            struct provider_result *res,
                            struct provider_err *err, adapt_error_fn *error)
{
        const char *status;
        json_t *pred;
        size_t i;

        pred = prediction(resp);
        if (!pred)
                return provider_classify_generic(resp, err);
        status = json_string_value(json_object_get(pred, "status"));
        err->outcome = OUTCOME_FALLBACK_NEXT;
        snprintf(err->errstr, sizeof(err->errstr),
                 "unknown prediction status \"%.64s\"", status);
        for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
                if (!strcmp(status, states[i].status)) {
                        err->errstr[0] = '\0';
                        err->outcome = states[i].fn(pred, res, err);
                        break;
                }
        json_decref(pred);
        if (err->outcome != OUTCOME_SUCCESS)
                provider_result_clear(res);
        return err->outcome;
}

static enum outcome parse_poll(const struct provider_cfg *p,
                               const Genq__V1__Job *job,
                               const struct provider_resp *resp,
                               struct provider_result *res,
                               struct provider_err *err)
{
        return adapt_parse(job, resp, res, err, poll_ok, parse_error);
}

const struct provider_ops provider_replicate_ops = {
        .name = "replicate",
        .kind = GENQ__V1__KIND__KIND_IMAGE,
        .flags = PROVIDER_F_ASYNC,
        .build = build,
        .parse = parse,
        .build_poll = build_poll,
        .parse_poll = parse_poll,
        .build_cancel = build_cancel,
        /* The webhook body is the prediction object, as a poll returns. */
        .callback_member = "webhook",
        .callback_extra = "{\"webhook_events_filter\":[\"completed\"]}",
        .callback_is_poll = 1,
};
