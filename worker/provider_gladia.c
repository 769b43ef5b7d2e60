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

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xmem.h"

#define JOB_PATH "/v2/pre-recorded"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/*
 * Building requests.
 */

static int build_url(const struct provider_cfg *p, const char *id,
                     struct provider_req *req, char *errstr,
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
        r = snprintf(req->url, sizeof(req->url), "%.*s%s%s%s", (int)n,
                     p->base_url, JOB_PATH, id ? "/" : "", id ? id : "");
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: base_url too long",
                         p->name);
                return -1;
        }
        return 0;
}

static int build_headers(const char *key, int json_body,
                         struct provider_req *req, char *errstr,
                         size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (key && *key)
                provider_req_header(req, "x-gladia-key: %s", key);
        if (json_body)
                provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
        return 0;
}

static void jset(json_t *obj, const char *k, json_t *v)
{
        if (!v || json_object_set_new(obj, k, v) == -1)
                fatal("out of memory building JSON");
}

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
        jset(cfg, "languages", langs);
        jset(cfg, "code_switching", json_false());
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
        jset(body, "audio_url", url);
        jset(body, "language_config", lc);
        if (merge_extra(p, body, errstr, errstr_size) == -1)
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
        if (build_url(p, NULL, req, errstr, errstr_size) == -1 ||
            build_headers(key, 1, req, errstr, errstr_size) == -1)
                goto err_free_body;
        req->method = "POST";
        req->body = json_dumps(body, DUMP_FLAGS);
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

/** Job ids go into a URL path: letters, digits, '-' and '_' only. */
static int id_ok(const char *id)
{
        if (!id || !*id || strlen(id) > 200)
                return 0;
        for (; *id; id++)
                if (!isalnum((unsigned char)*id) && *id != '-' && *id != '_')
                        return 0;
        return 1;
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
        if (build_url(p, task_id, req, errstr, errstr_size) == -1 ||
            build_headers(key, 0, req, errstr, errstr_size) == -1) {
                provider_req_clear(req);
                return -1;
        }
        req->method = "GET";
        return 0;
}

/*
 * Classifying.
 */

/** One row: {status, outcome}; \p poll_only rows apply to polls. */
struct rule {
        long status;
        int poll_only;
        enum outcome outcome;
};

/* Section 9.3 and the Gladia rows of section 12. */
static const struct rule http_rules[] = {
        {401, 0, OUTCOME_KEY_DISABLED},
        {402, 0, OUTCOME_QUOTA_EXHAUSTED},
        {403, 0, OUTCOME_QUOTA_EXHAUSTED},
        {404, 1, OUTCOME_FALLBACK_NEXT},
        {429, 0, OUTCOME_RETRY_LATER},
        {0, 0, 0},
};

/* No JSON body (proxy, CDN, WAF): see provider_openai.c. */
static const struct rule nonjson_rules[] = {
        {401, 0, OUTCOME_KEY_DISABLED},
        {402, 0, OUTCOME_QUOTA_EXHAUSTED},
        {403, 0, OUTCOME_FALLBACK_NEXT},
        {404, 0, OUTCOME_FALLBACK_NEXT},
        {429, 0, OUTCOME_RETRY_LATER},
        {0, 0, 0},
};

static const struct rule *rules_match(const struct rule *rules, long status,
                                      int poll)
{
        for (const struct rule *r = rules; r->status; r++)
                if (r->status == status && (poll || !r->poll_only))
                        return r;
        return NULL;
}

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

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

static void set_errstr(struct provider_err *err, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

/** "message" as a string, or the first string of a message list. */
static const char *err_message(const json_t *root)
{
        const json_t *m = json_object_get(root, "message");

        if (json_is_array(m))
                m = json_array_get(m, 0);
        if (json_is_string(m))
                return json_string_value(m);
        return jstr(root, "error");
}

static enum outcome parse_error(const struct provider_resp *resp, int poll,
                                struct provider_err *err)
{
        const struct rule *r;
        const char *msg;
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        r = rules_match(json_is_object(root) ? http_rules : nonjson_rules,
                        resp->status, poll);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        msg = err_message(root);
        if (json_is_object(root))
                set_errstr(err, "%ld: %s", resp->status,
                           msg ? msg : "(no message)");
        json_decref(root);
        return err->outcome;
}

static void begin(const struct provider_resp *resp, struct provider_err *err)
{
        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
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

        set_errstr(err, "job error, error_code %" JSON_INTEGER_FORMAT, c);
        return finish(err, c >= 400 && c < 500 ? OUTCOME_FATAL_JOB
                                                : OUTCOME_FALLBACK_NEXT);
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
        const char *text = jstr(tr, "full_transcript");

        if (!text) {
                set_errstr(err, "job done without a transcript");
                return finish(err, OUTCOME_FALLBACK_NEXT);
        }
        res->text = xstrdup(text);
        res->units = duration(root);
        res->unit = "second";
        return OUTCOME_SUCCESS;
}

static enum outcome read_job(const json_t *root, struct provider_result *res,
                             struct provider_err *err)
{
        const char *status = jstr(root, "status");

        if (!status)
                status = "(none)";
        if (!strcmp(status, "queued") || !strcmp(status, "processing"))
                return finish(err, OUTCOME_PENDING);
        if (!strcmp(status, "done"))
                return job_done(root, res, err);
        if (!strcmp(status, "error"))
                return job_failed(root, err);
        set_errstr(err, "unknown job status \"%s\"", status);
        return finish(err, OUTCOME_FALLBACK_NEXT);
}

static json_t *load_ok(const struct provider_resp *resp)
{
        json_t *root = NULL;

        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return NULL;
        }
        return root;
}

static enum outcome parse_any(const struct provider_resp *resp, int poll,
                              struct provider_result *res,
                              struct provider_err *err)
{
        enum outcome o = OUTCOME_SUCCESS;
        json_t *root;

        begin(resp, err);
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status < 200 || resp->status >= 300)
                return parse_error(resp, poll, err);
        root = load_ok(resp);
        if (!root)
                return provider_classify_generic(resp, err);
        if (poll) {
                o = read_job(root, res, err);
        } else if (id_ok(jstr(root, "id"))) {
                res->task_id = xstrdup(jstr(root, "id"));
        } else {
                set_errstr(err, "%ld: no job id", resp->status);
                o = finish(err, OUTCOME_RETRY_LATER);
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
