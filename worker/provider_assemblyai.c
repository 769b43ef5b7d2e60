/*
 * provider_assemblyai: AssemblyAI async transcription ("assemblyai",
 * reference 9.2).
 *
 *   submit  POST <base>/v2/transcript
 *           Authorization: <key>            (the raw key, no "Bearer")
 *           {"audio_url": <job's audio_url>, "language_code": <language>?,
 *            "speech_model": <model>?} + extra_body as defaults
 *   poll    GET <base>/v2/transcript/{id}
 *
 * The job's audio_url is passed as it is: no upload (the worker does not
 * fetch the input for this adapter).  speech_model is the job's hint when
 * it is an AssemblyAI model name (best, nano, universal, slam-1: hints
 * meant for other providers, "whisper-1", are not forwarded), else the
 * configured model, else left out (AssemblyAI's default).
 *
 * Submit: 200 with a transcript object whose "id" is the task id.
 * Poll: "queued" and "processing" are PENDING; "completed" is the result:
 * text, units = audio_duration seconds (-1 if absent); "error" is a
 * failed task, read from its "error" text: download, format or no-audio
 * problems are the input's fault (fatal_job); anything else is a server
 * side failure.  The reference says "resubmit once (retry_later), then
 * fallback_next"; an adapter keeps no state to count resubmits, and a
 * retry_later on a poll means "poll again", which would never end, so
 * the adapter answers fallback_next for it directly.  An unknown status
 * word is fallback_next too.
 *
 * HTTP errors: body {"error": "..."}; 401 is key_disabled unless the text
 * talks about balance or payment (quota_exhausted; the reference leaves
 * the shape unconfirmed), 402 quota_exhausted, 403 "Cannot access
 * uploaded file" fatal_job, 429 retry_later; on a poll a 404 (or the
 * "transcript id not found" 400) means the task is gone: fallback_next.
 * Everything else: provider_classify_generic().
 */
#include "provider.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xmem.h"

#define SUBMIT_PATH "/v2/transcript"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/** Speech models AssemblyAI knows; other hints are not ours. */
static const char *const speech_models[] = {"best", "nano", "universal",
                                            "slam-1"};

/*
 * Building requests.
 */

static int build_url(const struct provider_cfg *p, const char *path,
                     const char *id, struct provider_req *req, char *errstr,
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
                     p->base_url, path, id ? "/" : "", id ? id : "");
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
                provider_req_header(req, "Authorization: %s", key);
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

static int jset_str(json_t *obj, const char *k, const char *s)
{
        json_t *v = json_string(s);

        if (!v)
                return -1;
        jset(obj, k, v);
        return 0;
}

/** The speech model to ask for, or NULL for AssemblyAI's default. */
static const char *speech_model(const struct provider_cfg *p,
                                const char *hint)
{
        for (size_t i = 0;
             i < sizeof(speech_models) / sizeof(speech_models[0]); i++)
                if (!strcmp(hint, speech_models[i]))
                        return hint;
        return p->model && *p->model ? p->model : NULL;
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

static json_t *submit_body(const struct provider_cfg *p,
                           const Genq__V1__SttRequest *stt, char *errstr,
                           size_t errstr_size)
{
        const char *model = speech_model(p, stt->model);
        json_t *body = json_object();

        if (!body)
                fatal("out of memory building JSON");
        if (jset_str(body, "audio_url", stt->audio_url) == -1 ||
            (*stt->language &&
             jset_str(body, "language_code", stt->language) == -1) ||
            (model && jset_str(body, "speech_model", model) == -1)) {
                snprintf(errstr, errstr_size, "stt fields are not UTF-8");
                goto err_free_body;
        }
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
                snprintf(errstr, errstr_size, "not an stt job with an "
                                              "audio_url");
                return -1;
        }
        body = submit_body(p, job->stt, errstr, errstr_size);
        if (!body)
                return -1;
        if (build_url(p, SUBMIT_PATH, NULL, req, errstr, errstr_size) == -1 ||
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

/** Task ids go into a URL path: letters, digits, '-' and '_' only. */
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
                snprintf(errstr, errstr_size, "bad transcript id");
                return -1;
        }
        if (build_url(p, SUBMIT_PATH, task_id, req, errstr, errstr_size) ==
                    -1 ||
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

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_MSG,     /**< the error text contains one of val (any case) */
};

struct rule {
        long status;          /**< HTTP status, 0 = any */
        enum marker marker;
        const char *val;      /**< '|'-separated alternatives */
        enum outcome outcome;
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

#define BILLING_WORDS "balance|credit|top up|payment|billing|insufficient funds"

/* Section 9.2 and the AssemblyAI rows of section 12. */
static const struct rule http_rules[] = {
        {401, M_MSG, BILLING_WORDS, QUOTA},
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_MSG, "cannot access uploaded file", FATAL},
        {403, M_MSG, BILLING_WORDS, QUOTA},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* Polls only, before http_rules: the transcript is gone. */
static const struct rule poll_rules[] = {
        {404, M_ANY, NULL, FALLBACK},
        {400, M_MSG, "transcript id not found|lookup error", FALLBACK},
        {0, M_END, NULL, 0},
};

/* No JSON body: status only (see provider_openai.c). */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* A transcript with status "error": the input's fault, or not. */
static const struct rule task_rules[] = {
        {0, M_MSG,
         "download|format|no audio|contain audio|does not appear|"
         "unsupported|transcod|too short|audio duration|empty|invalid audio"
         "|unreachable|not accessible",
         FATAL},
        {0, M_ANY, NULL, FALLBACK},
        {0, M_END, NULL, 0},
};

static int msg_has(const char *alts, const char *s)
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
                        if (strcasestr(s, needle))
                                return 1;
                }
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static const struct rule *rules_match(const struct rule *rules, long status,
                                      const char *msg)
{
        for (const struct rule *r = rules; r->marker != M_END; r++)
                if ((!r->status || r->status == status) &&
                    (r->marker == M_ANY || msg_has(r->val, msg)))
                        return r;
        return NULL;
}

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

/** Copy, cut at a UTF-8 character boundary. */
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

/** Format into err->errstr, cut at a UTF-8 character boundary. */
static void set_errstr(struct provider_err *err, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

/** Classify a non-2xx answer; \p poll adds the lost-task rows. */
static enum outcome parse_error(const struct provider_resp *resp, int poll,
                                struct provider_err *err)
{
        const struct rule *r = NULL;
        const char *msg;
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        msg = jstr(root, "error");
        if (!msg)
                msg = jstr(root, "message");
        if (!json_is_object(root))
                r = rules_match(nonjson_rules, resp->status, NULL);
        else if (poll)
                r = rules_match(poll_rules, resp->status, msg);
        if (!r && json_is_object(root))
                r = rules_match(http_rules, resp->status, msg);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
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

/** The 2xx body as an object, or NULL (truncated, not JSON). */
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

/** status "error": classify the transcript's error text. */
static enum outcome task_failed(const json_t *root, struct provider_err *err)
{
        const char *msg = jstr(root, "error");

        err->outcome = rules_match(task_rules, 0, msg)->outcome;
        set_errstr(err, "transcript error: %s", msg ? msg : "(no message)");
        return err->outcome;
}

static void fill_result(const json_t *root, struct provider_result *res)
{
        const json_t *d = json_object_get(root, "audio_duration");
        const char *text = jstr(root, "text");

        res->text = xstrdup(text ? text : "");
        res->model = xstrdup(jstr(root, "speech_model"));
        res->units = json_is_number(d) ? json_number_value(d) : -1;
        res->unit = "second";
}

/** One transcript object (submit answer or poll). */
static enum outcome read_transcript(const json_t *root, int poll,
                                    struct provider_result *res,
                                    struct provider_err *err)
{
        const char *status = jstr(root, "status");

        if (status && !strcmp(status, "error"))
                return task_failed(root, err);
        if (!poll) {
                if (!id_ok(jstr(root, "id"))) {
                        set_errstr(err, "%ld: no transcript id",
                                   err->http_status);
                        return finish(err, OUTCOME_RETRY_LATER);
                }
                res->task_id = xstrdup(jstr(root, "id"));
                return OUTCOME_SUCCESS;
        }
        if (status && (!strcmp(status, "queued") ||
                       !strcmp(status, "processing")))
                return finish(err, OUTCOME_PENDING);
        if (status && !strcmp(status, "completed")) {
                fill_result(root, res);
                return OUTCOME_SUCCESS;
        }
        set_errstr(err, "unknown transcript status \"%s\"",
                   status ? status : "(none)");
        return finish(err, OUTCOME_FALLBACK_NEXT);
}

static enum outcome parse_any(const struct provider_resp *resp, int poll,
                              struct provider_result *res,
                              struct provider_err *err)
{
        enum outcome o;
        json_t *root;

        begin(resp, err);
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status < 200 || resp->status >= 300)
                return parse_error(resp, poll, err);
        root = load_ok(resp);
        if (!root)
                return provider_classify_generic(resp, err);
        o = read_transcript(root, poll, res, err);
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

const struct provider_ops provider_assemblyai_ops = {
        .name = "assemblyai",
        .kind = GENQ__V1__KIND__KIND_STT,
        .flags = PROVIDER_F_ASYNC,
        .build = build,
        .parse = parse,
        .build_poll = build_poll,
        .parse_poll = parse_poll,
};
