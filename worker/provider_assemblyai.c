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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define SUBMIT_PATH "/v2/transcript"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/** Speech models AssemblyAI knows; other hints are not ours. */
static const char *const speech_models[] = {"best", "nano", "universal",
                                            "slam-1"};

/*
 * Building requests.
 */

/** Authorization is the raw key, no "Bearer". */
static int build_headers(const char *key, int json_body,
                         struct provider_req *req, char *errstr,
                         size_t errstr_size)
{
        return adapt_json_headers(req, "Authorization: ", key, json_body,
                                  errstr, errstr_size);
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

static json_t *submit_body(const struct provider_cfg *p,
                           const Genq__V1__SttRequest *stt, char *errstr,
                           size_t errstr_size)
{
        const char *model = speech_model(p, stt->model);
        json_t *body = json_object();

        if (!body)
                fatal("out of memory building JSON");
        if (adapt_jset_str(body, "audio_url", stt->audio_url) == -1 ||
            (*stt->language &&
             adapt_jset_str(body, "language_code", stt->language) == -1) ||
            (model && adapt_jset_str(body, "speech_model", model) == -1)) {
                snprintf(errstr, errstr_size, "stt fields are not UTF-8");
                goto err_free_body;
        }
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
                snprintf(errstr, errstr_size, "not an stt job with an "
                                              "audio_url");
                return -1;
        }
        body = submit_body(p, job->stt, errstr, errstr_size);
        if (!body)
                return -1;
        if (adapt_url(req, p, "base_url", errstr, errstr_size, SUBMIT_PATH,
                      NULL) == -1 ||
            build_headers(key, 1, req, errstr, errstr_size) == -1)
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

/** Task ids go into a URL path: letters, digits, '-' and '_' only. */
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
                snprintf(errstr, errstr_size, "bad transcript id");
                return -1;
        }
        if (adapt_url(req, p, "base_url", errstr, errstr_size, SUBMIT_PATH,
                      "/", task_id, NULL) == -1 ||
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
        M_END = ADAPT_M_END, /**< table terminator */
        M_ANY = ADAPT_M_ANY, /**< status alone decides */
        M_MSG = ADAPT_M_OWN, /**< the error text contains one of val (any
                                  case) */
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

#define BILLING_WORDS "balance|credit|top up|payment|billing|insufficient funds"

/* Section 9.2 and the AssemblyAI rows of section 12.  A body that is not
 * JSON: adapt_nonjson_rule(). */
static const struct adapt_rule http_rules[] = {
        {401, M_MSG, BILLING_WORDS, QUOTA},
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_MSG, "cannot access uploaded file", FATAL},
        {403, M_MSG, BILLING_WORDS, QUOTA},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* Polls only, before http_rules: the transcript is gone. */
static const struct adapt_rule poll_rules[] = {
        {404, M_ANY, NULL, FALLBACK},
        {400, M_MSG, "transcript id not found|lookup error", FALLBACK},
        {0, M_END, NULL, 0},
};

/* A transcript with status "error": the input's fault, or not. */
static const struct adapt_rule task_rules[] = {
        {0, M_MSG,
         "download|format|no audio|contain audio|does not appear|"
         "unsupported|transcod|too short|audio duration|empty|invalid audio"
         "|unreachable|not accessible",
         FATAL},
        {0, M_ANY, NULL, FALLBACK},
        {0, M_END, NULL, 0},
};

/** The first row of \p rules for \p status whose message row, if any,
 *  matches \p msg. */
static const struct adapt_rule *rules_match(const struct adapt_rule *rules,
                                            long status, const char *msg)
{
        return adapt_rules_match(rules, status, adapt_match_msg, msg);
}

/** Classify a non-2xx answer; \p poll adds the lost-task rows. */
static enum outcome parse_error(const struct provider_resp *resp, int poll,
                                struct provider_err *err)
{
        const struct adapt_rule *r = NULL;
        const char *msg;
        json_t *root;

        root = adapt_body_json(resp);
        msg = adapt_jstr(root, "error");
        if (!msg)
                msg = adapt_jstr(root, "message");
        if (!json_is_object(root))
                r = adapt_nonjson_rule(resp->status);
        else if (poll)
                r = rules_match(poll_rules, resp->status, msg);
        if (!r && json_is_object(root))
                r = rules_match(http_rules, resp->status, msg);
        adapt_classify(resp, r, err);
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

/** status "error": classify the transcript's error text. */
static enum outcome task_failed(const json_t *root, struct provider_err *err)
{
        const char *msg = adapt_jstr(root, "error");

        return adapt_fail(err, rules_match(task_rules, 0, msg)->outcome,
                          "transcript error: %s",
                          msg ? msg : "(no message)");
}

static void fill_result(const json_t *root, struct provider_result *res)
{
        const json_t *d = json_object_get(root, "audio_duration");
        const char *text = adapt_jstr(root, "text");

        res->text = xstrdup(text ? text : "");
        res->model = xstrdup(adapt_jstr(root, "speech_model"));
        res->units = json_is_number(d) ? json_number_value(d) : -1;
        res->unit = "second";
}

/** One transcript object (submit answer or poll). */
static enum outcome read_transcript(const json_t *root, int poll,
                                    struct provider_result *res,
                                    struct provider_err *err)
{
        const char *status = adapt_jstr(root, "status");

        if (status && !strcmp(status, "error"))
                return task_failed(root, err);
        if (!poll) {
                if (!id_ok(adapt_jstr(root, "id")))
                        return adapt_fail(err, OUTCOME_RETRY_LATER,
                                          "%ld: no transcript id",
                                          err->http_status);
                res->task_id = xstrdup(adapt_jstr(root, "id"));
                return OUTCOME_SUCCESS;
        }
        if (status && (!strcmp(status, "queued") ||
                       !strcmp(status, "processing")))
                return finish(err, OUTCOME_PENDING);
        if (status && !strcmp(status, "completed")) {
                fill_result(root, res);
                return OUTCOME_SUCCESS;
        }
        return adapt_fail(err, OUTCOME_FALLBACK_NEXT,
                          "unknown transcript status \"%s\"",
                          status ? status : "(none)");
}

static enum outcome parse_any(const struct provider_resp *resp, int poll,
                              struct provider_result *res,
                              struct provider_err *err)
{
        enum outcome o;
        json_t *root;

        adapt_err_init(resp, err);
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status < 200 || resp->status >= 300)
                return parse_error(resp, poll, err);
        root = adapt_ok_json(resp);
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
        /* The webhook says {transcript_id, status}: poll for the rest. */
        .callback_member = "webhook_url",
        .callback_is_poll = 0,
};
