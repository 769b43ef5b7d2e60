/*
 * provider_gladia: Gladia v2 pre-recorded transcription ("gladia",
 * reference 9.3), asynchronous.
 *
 *   submit  POST <base>/v2/pre-recorded
 *           x-gladia-key: <key>
 *           {"audio_url": <job's audio_url>,
 *            "language_config": {"languages": [<language>] or [],
 *                                "code_switching": false}}
 *           + extra_body as defaults (diarization, ...)
 *   poll    GET <base>/v2/pre-recorded/{id}
 *
 * Gladia takes no model name here: the job's hint and the configured
 * model are not sent.  No upload: the job's audio_url is passed as it is.
 *
 * Submit: 2xx (201) with "id" (the task id) and "result_url".
 * Poll: "queued" and "processing" are PENDING; "done" is the result:
 * text = result.transcription.full_transcript, units = seconds from
 * file.audio_duration, else result.metadata.audio_duration, else -1;
 * "error" is a failed job: error_code 4xx is the input's fault
 * (fatal_job), 5xx or none is Gladia's (fallback_next).  An unknown
 * status word is fallback_next.
 *
 * HTTP errors (body shape unconfirmed: {"statusCode", "message", ...},
 * message a string or a list of validation strings): 401 key_disabled,
 * 402/403 quota_exhausted (as the reference gives them), 429 retry_later;
 * on a poll, 404 means the job is gone: fallback_next.  Everything else:
 * provider_classify_generic().
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define JOB_PATH "/v2/pre-recorded"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/*
 * Building requests.
 */

/** <base>/v2/pre-recorded[/<id>], x-gladia-key and JSON headers (a
 *  Content-Type on the submit, the request with a body). */
static int url_headers(const struct provider_cfg *p, const char *key,
                       const char *id, struct provider_req *req,
                       char *errstr, size_t errstr_size)
{
        if (adapt_url(req, p, "base_url", errstr, errstr_size, JOB_PATH,
                      id ? "/" : "", id ? id : "", NULL) == -1)
                return -1;
        return adapt_json_headers(req, "x-gladia-key: ", key, !id, errstr,
                                  errstr_size);
}

/** {"languages": [lang] or [], "code_switching": false}, or NULL if
 *  \p lang is not UTF-8. */
static json_t *language_config(const char *lang)
{
        json_t *langs = json_array(), *cfg = json_object(), *v;

        if (!langs || !cfg)
                fatal("out of memory building JSON");
        if (*lang) {
                v = json_string(lang);
                if (!v) {
                        json_decref(langs);
                        json_decref(cfg);
                        return NULL;
                }
                if (json_array_append_new(langs, v) == -1)
                        fatal("out of memory building JSON");
        }
        adapt_jset(cfg, "languages", langs);
        adapt_jset(cfg, "code_switching", json_false());
        return cfg;
}

static json_t *submit_body(const struct provider_cfg *p,
                           const Genq__V1__SttRequest *stt, char *errstr,
                           size_t errstr_size)
{
        json_t *body = json_object(), *url, *lc;

        if (!body)
                fatal("out of memory building JSON");
        url = json_string(stt->audio_url);
        lc = language_config(stt->language);
        if (!url || !lc) {
                json_decref(url);
                json_decref(lc);
                snprintf(errstr, errstr_size, "stt fields are not UTF-8");
                goto err_free_body;
        }
        adapt_jset(body, "audio_url", url);
        adapt_jset(body, "language_config", lc);
        if (adapt_merge_obj(p, "extra_body", p->extra_body, body,
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
        json_t *body;

        memset(req, 0, sizeof(*req));
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_STT || !job->stt ||
            !*job->stt->audio_url) {
                snprintf(errstr, errstr_size,
                         "not an stt job with an audio_url");
                return -1;
        }
        body = submit_body(p, job->stt, errstr, errstr_size);
        if (!body)
                return -1;
        if (url_headers(p, key, NULL, req, errstr, errstr_size) == -1)
                goto err_free_body;
        req->method = "POST";
        adapt_req_json(req, body, DUMP_FLAGS);
        json_decref(body);
        return 0;

err_free_body:
        json_decref(body);
        provider_req_clear(req);
        return -1;
}

/** Job ids go into a URL path: letters, digits, '-' and '_' only. */
static int id_ok(const char *id)
{
        return adapt_id_ok(id, 200, "-_");
}

static int build_poll(const struct provider_cfg *p, const char *key,
                      const char *task_id, struct provider_req *req,
                      char *errstr, size_t errstr_size)
{
        memset(req, 0, sizeof(*req));
        if (!id_ok(task_id)) {
                snprintf(errstr, errstr_size, "bad job id");
                return -1;
        }
        if (url_headers(p, key, task_id, req, errstr, errstr_size) == -1) {
                provider_req_clear(req);
                return -1;
        }
        req->method = "GET";
        return 0;
}

/*
 * Classifying.
 */

enum marker {
        M_END = ADAPT_M_END,  /**< table terminator */
        M_ANY = ADAPT_M_ANY,  /**< status alone decides */
        M_POLL = ADAPT_M_OWN, /**< the status, on a poll only */
};

/* Section 9.3 and the Gladia rows of section 12.  A body that is not
 * JSON: adapt_nonjson_rule(). */
static const struct adapt_rule http_rules[] = {
        {401, M_ANY, NULL, OUTCOME_KEY_DISABLED},
        {402, M_ANY, NULL, OUTCOME_QUOTA_EXHAUSTED},
        {403, M_ANY, NULL, OUTCOME_QUOTA_EXHAUSTED},
        {404, M_POLL, NULL, OUTCOME_FALLBACK_NEXT},
        {429, M_ANY, NULL, OUTCOME_RETRY_LATER},
        {0, M_END, NULL, 0},
};

static int is_poll(const struct adapt_rule *r, const void *poll)
{
        return *(const int *)poll;
}

/** "message" as a string, or the first string of a message list. */
static const char *err_message(const json_t *root)
{
        const json_t *m = json_object_get(root, "message");

        if (json_is_array(m))
                m = json_array_get(m, 0);
        if (json_is_string(m))
                return json_string_value(m);
        return adapt_jstr(root, "error");
}

static enum outcome parse_error(const struct provider_resp *resp, int poll,
                                struct provider_err *err)
{
        const char *msg;
        json_t *root;

        root = adapt_body_json(resp);
        adapt_classify(resp,
                       json_is_object(root)
                               ? adapt_rules_match(http_rules, resp->status,
                                                   is_poll, &poll)
                               : adapt_nonjson_rule(resp->status),
                       err);
        msg = err_message(root);
        if (json_is_object(root))
                adapt_errstr(err, NULL, "%ld: %s", resp->status,
                             msg ? msg : "(no message)");
        json_decref(root);
        return err->outcome;
}

static enum outcome finish(struct provider_err *err, enum outcome o)
{
        err->outcome = o;
        return o;
}

/** status "error": error_code 4xx -> fatal_job, else fallback_next. */
static enum outcome job_failed(const json_t *root, struct provider_err *err)
{
        const json_t *code = json_object_get(root, "error_code");
        json_int_t c = json_is_integer(code) ? json_integer_value(code) : 0;

        return adapt_fail(err,
                          c >= 400 && c < 500 ? OUTCOME_FATAL_JOB
                                              : OUTCOME_FALLBACK_NEXT,
                          "job error, error_code %" JSON_INTEGER_FORMAT, c);
}

static double duration(const json_t *root)
{
        const json_t *d = json_object_get(json_object_get(root, "file"),
                                          "audio_duration");

        if (!json_is_number(d))
                d = json_object_get(
                        json_object_get(json_object_get(root, "result"),
                                        "metadata"),
                        "audio_duration");
        return json_is_number(d) ? json_number_value(d) : -1;
}

static enum outcome job_done(const json_t *root, struct provider_result *res,
                             struct provider_err *err)
{
        const json_t *tr = json_object_get(json_object_get(root, "result"),
                                           "transcription");
        const char *text = adapt_jstr(tr, "full_transcript");

        if (!text)
                return adapt_fail(err, OUTCOME_FALLBACK_NEXT,
                                  "job done without a transcript");
        res->text = xstrdup(text);
        res->units = duration(root);
        res->unit = "second";
        return OUTCOME_SUCCESS;
}

static enum outcome read_job(const json_t *root, struct provider_result *res,
                             struct provider_err *err)
{
        const char *status = adapt_jstr(root, "status");

        if (!status)
                status = "(none)";
        if (!strcmp(status, "queued") || !strcmp(status, "processing"))
                return finish(err, OUTCOME_PENDING);
        if (!strcmp(status, "done"))
                return job_done(root, res, err);
        if (!strcmp(status, "error"))
                return job_failed(root, err);
        return adapt_fail(err, OUTCOME_FALLBACK_NEXT,
                          "unknown job status \"%s\"", status);
}

static enum outcome parse_any(const struct provider_resp *resp, int poll,
                              struct provider_result *res,
                              struct provider_err *err)
{
        enum outcome o = OUTCOME_SUCCESS;
        json_t *root;

        adapt_err_init(resp, err);
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status < 200 || resp->status >= 300)
                return parse_error(resp, poll, err);
        root = adapt_ok_json(resp);
        if (!root)
                return provider_classify_generic(resp, err);
        if (poll) {
                o = read_job(root, res, err);
        } else if (id_ok(adapt_jstr(root, "id"))) {
                res->task_id = xstrdup(adapt_jstr(root, "id"));
        } else {
                o = adapt_fail(err, OUTCOME_RETRY_LATER, "%ld: no job id",
                               resp->status);
        }
        json_decref(root);
        return o;
}

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        return parse_any(resp, 0, res, err);
}

static enum outcome parse_poll(const struct provider_cfg *p,
                               const Genq__V1__Job *job,
                               const struct provider_resp *resp,
                               struct provider_result *res,
                               struct provider_err *err)
{
        return parse_any(resp, 1, res, err);
}

const struct provider_ops provider_gladia_ops = {
        .name = "gladia",
        .kind = GENQ__V1__KIND__KIND_STT,
        .flags = PROVIDER_F_ASYNC,
        .build = build,
        .parse = parse,
        .build_poll = build_poll,
        .parse_poll = parse_poll,
};
