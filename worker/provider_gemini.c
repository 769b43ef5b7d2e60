/*
 * provider_gemini: the Google Gemini generateContent adapter
 * ("gemini_generate", reference section 3).
 *
 * REQUEST
 *
 *   POST <base>/models/<model>:generateContent?key=<key>
 *        base https://generativelanguage.googleapis.com/v1beta
 *   {"contents":[{"role":"user"|"model","parts":[{"text"}]}],
 *    "systemInstruction"?:{"parts":[{"text"}, ...]},
 *    "generationConfig"?:{"temperature"?, "maxOutputTokens"?}}
 *
 * The key goes in the ?key= query parameter, the form the reference
 * confirms (the x-goog-api-key header is marked unconfirmed there).  It
 * is percent-encoded; the URL is never put in an errstr.  A model hint
 * already written "models/x" or "tunedModels/x" is used as that path.
 *
 * System (and "developer") messages become one systemInstruction part
 * each; "assistant" turns are sent as role "model", "user" and "tool"
 * turns as "user".  extra_body is merged as defaults, nested objects key
 * by key, so {"generationConfig":{"thinkingConfig":{...}}} joins the
 * generationConfig the adapter built.
 *
 * RESPONSE
 *
 * The text parts of candidates[0].content are concatenated, skipping
 * thought parts ("thought": true); finishReason, modelVersion,
 * usageMetadata.promptTokenCount / candidatesTokenCount.  A 200 with no
 * candidates and promptFeedback.blockReason is fatal_job (the prompt was
 * blocked); a candidate with no text that ended for a safety reason
 * (SAFETY, PROHIBITED_CONTENT, BLOCKLIST, SPII) is fatal_job too.
 *
 * Errors are Google RPC bodies {"error":{"code","message","status",
 * "details":[...]}} (also as the first element of an array) and go through
 * rules[], first matching row wins: details[].reason (ErrorInfo),
 * error.status, message substrings and QuotaFailure quota ids.  The retry
 * hint is the Retry-After header if any, else details[] RetryInfo
 * retryDelay ("37s").
 */
#include "provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define GENERATE_SUFFIX ":generateContent"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))
#define MAX_HINT_MS (24LL * 3600 * 1000)

/*
 * Building the request.
 */

static void jappend(json_t *arr, json_t *v)
{
        if (!v || json_array_append_new(arr, v) == -1)
                fatal("out of memory building JSON");
}

/** {"text": s}, or NULL if \p s is not valid UTF-8. */
static json_t *text_part(const char *s)
{
        json_t *t = json_string(s), *part;

        if (!t)
                return NULL;
        part = json_object();
        adapt_jset(part, "text", t);
        return part;
}

/** Append \p s as is at \p *pos. @returns -1 if it does not fit. */
static int url_raw(char *buf, size_t size, size_t *pos, const char *s)
{
        size_t n = strlen(s);

        if (*pos + n + 1 > size)
                return -1;
        memcpy(buf + *pos, s, n + 1);
        *pos += n;
        return 0;
}

/** The model's resource path: "models/x" unless already qualified. */
static const char *model_prefix(const char *model)
{
        if (!strncmp(model, "models/", 7) ||
            !strncmp(model, "tunedModels/", 12))
                return "";
        return "models/";
}

/** <base>/models/<model>:generateContent?key=<key>, the model and the key
 *  percent-encoded; a URL that does not fit is wiped (it may hold the
 *  key). */
static int build_url(const struct provider_cfg *p, const char *model,
                     const char *key, struct provider_req *req,
                     char *errstr, size_t errstr_size)
{
        char *url = req->url;
        size_t pos, size = sizeof(req->url);

        if (adapt_url(req, p, "URL", errstr, errstr_size, "/",
                      model_prefix(model), NULL) == -1)
                goto err_wipe;
        pos = strlen(url);
        if (adapt_pct_encode(url, size, &pos, model, 1) == -1 ||
            url_raw(url, size, &pos, GENERATE_SUFFIX) == -1 ||
            (key && *key &&
             (url_raw(url, size, &pos, "?key=") == -1 ||
              adapt_pct_encode(url, size, &pos, key, 0) == -1))) {
                snprintf(errstr, errstr_size, "provider %s: URL too long",
                         p->name);
                goto err_wipe;
        }
        return 0;

err_wipe:
        explicit_bzero(req->url, sizeof(req->url));
        return -1;
}

/** Where a job role goes: systemInstruction (NULL) or a content role. */
static const struct {
        const char *job;
        const char *api;
} role_map[] = {
        {"system", NULL}, {"developer", NULL}, {"user", "user"},
        {"", "user"},     {"assistant", "model"}, {"tool", "user"},
};

static int map_role(const char *role, const char **api)
{
        for (size_t i = 0; i < sizeof(role_map) / sizeof(role_map[0]); i++)
                if (!strcmp(role, role_map[i].job)) {
                        *api = role_map[i].api;
                        return 0;
                }
        return -1;
}

/** Append one message to contents or to the system parts. */
static int add_message(json_t *contents, json_t *sys, const char *api,
                       const char *text)
{
        json_t *part = text_part(text), *c, *parts;

        if (!part)
                return -1;
        if (!api) {
                jappend(sys, part);
                return 0;
        }
        c = json_object();
        parts = json_array();
        if (!c || !parts)
                fatal("out of memory building JSON");
        adapt_jset(c, "role", json_string(api));
        jappend(parts, part);
        adapt_jset(c, "parts", parts);
        jappend(contents, c);
        return 0;
}

/** Set "contents" and "systemInstruction" of \p body. */
static int add_messages(json_t *body, const Genq__V1__ChatRequest *chat,
                        char *errstr, size_t errstr_size)
{
        json_t *contents = json_array(), *sys = json_array(), *si;
        const Genq__V1__ChatMessage *cm;
        const char *api;

        if (!contents || !sys)
                fatal("out of memory building JSON");
        for (size_t i = 0; i < chat->n_messages; i++) {
                cm = chat->messages[i];
                if (map_role(cm->role, &api) == -1) {
                        snprintf(errstr, errstr_size,
                                 "message %zu: role \"%.32s\" has no "
                                 "Gemini equivalent",
                                 i, cm->role);
                        goto err_free;
                }
                if (add_message(contents, sys, api, cm->content) == -1) {
                        snprintf(errstr, errstr_size,
                                 "message %zu is not valid UTF-8", i);
                        goto err_free;
                }
        }
        if (!json_array_size(contents)) {
                snprintf(errstr, errstr_size,
                         "no user or assistant message to send");
                goto err_free;
        }
        adapt_jset(body, "contents", contents);
        if (json_array_size(sys)) {
                si = json_object();
                adapt_jset(si, "parts", sys);
                adapt_jset(body, "systemInstruction", si);
        } else {
                json_decref(sys);
        }
        return 0;

err_free:
        json_decref(contents);
        json_decref(sys);
        return -1;
}

/** generationConfig from the job, or nothing if the job sets nothing. */
static void add_generation_config(json_t *body,
                                  const Genq__V1__ChatRequest *chat)
{
        json_t *gc = json_object();

        if (!gc)
                fatal("out of memory building JSON");
        if (chat->temperature_opt_case ==
            GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE)
                adapt_jset(gc, "temperature", json_real(chat->temperature));
        if (chat->max_tokens > 0)
                adapt_jset(gc, "maxOutputTokens",
                           json_integer(chat->max_tokens));
        if (json_object_size(gc))
                adapt_jset(body, "generationConfig", gc);
        else
                json_decref(gc);
}

static json_t *build_body(const struct provider_cfg *p,
                          const Genq__V1__ChatRequest *chat, char *errstr,
                          size_t errstr_size)
{
        json_t *body = json_object();

        if (!body)
                fatal("out of memory building JSON");
        if (add_messages(body, chat, errstr, errstr_size) == -1)
                goto err_free_body;
        add_generation_config(body, chat);
        if (adapt_merge_obj(p, "extra_body", p->extra_body, body,
                            ADAPT_MERGE_DEEP, errstr, errstr_size) == -1)
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
        const Genq__V1__ChatRequest *chat;
        const char *model;
        json_t *body;

        memset(req, 0, sizeof(*req));
        chat = adapt_chat_job(job, errstr, errstr_size);
        model = chat ? adapt_model(p, chat->model, errstr, errstr_size) : NULL;
        if (!model)
                return -1;
        body = build_body(p, chat, errstr, errstr_size);
        if (!body)
                return -1;
        if (build_url(p, model, key, req, errstr, errstr_size) == -1)
                goto err_free_body;
        provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
        req->method = "POST";
        adapt_req_json(req, body, DUMP_FLAGS);
        json_decref(body);
        return 0;

err_free_body:
        json_decref(body);
        provider_req_clear(req);
        return -1;
}

/*
 * Classifying error bodies.
 */

/** The fields of a Google RPC error the rules look at (borrowed). */
struct errbody {
        const char *status;  /**< error.status, "RESOURCE_EXHAUSTED" */
        const char *message; /**< error.message */
        const json_t *details; /**< error.details, or NULL */
};

enum marker {
        M_END = ADAPT_M_END,    /**< table terminator */
        M_ANY = ADAPT_M_ANY,    /**< status alone decides */
        M_STATUS = ADAPT_M_OWN, /**< error.status equals one of val */
        M_MSG,     /**< error.message contains one of val (any case) */
        M_REASON,  /**< a details[].reason equals one of val */
        M_QUOTA,   /**< a QuotaFailure violation's quotaId contains val */
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/*
 * Section 3 and the Gemini rows of section 12.  "User location is not
 * supported" (FAILED_PRECONDITION) is this provider's route, not the
 * job: fallback_next.  The status-0 rows classify by error.status when the
 * HTTP status is one the table does not list.
 */
static const struct adapt_rule rules[] = {
        {400, M_REASON, "API_KEY_INVALID", KEYDIS},
        {400, M_MSG, "API key not valid|API Key not found", KEYDIS},
        {400, M_MSG, "location is not supported", FALLBACK},
        {400, M_ANY, NULL, FATAL},
        {403, M_ANY, NULL, KEYDIS},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_MSG, "exceeded your current quota", QUOTA},
        {429, M_QUOTA, "PerDay", QUOTA},
        {429, M_ANY, NULL, RETRY},
        {500, M_ANY, NULL, RETRY},
        {503, M_ANY, NULL, RETRY},
        {0, M_STATUS, "UNAUTHENTICATED|PERMISSION_DENIED", KEYDIS},
        {0, M_STATUS, "NOT_FOUND", FALLBACK},
        {0, M_STATUS, "INVALID_ARGUMENT|FAILED_PRECONDITION", FATAL},
        {0, M_STATUS,
         "RESOURCE_EXHAUSTED|UNAVAILABLE|INTERNAL|DEADLINE_EXCEEDED", RETRY},
        {0, M_END, NULL, 0},
};

/* No JSON body (Google front end or proxy page): status only.  Unlike
 * adapt_nonjson_rule(), a 402 page is left to the status (fatal_job). */
static const struct adapt_rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/** The details[] entry whose "@type" ends in \p type, or NULL. */
static const json_t *detail_of(const json_t *details, const char *type)
{
        const json_t *d;
        const char *t;
        size_t i, n = strlen(type);

        json_array_foreach(details, i, d) {
                t = adapt_jstr(d, "@type");
                if (t && strlen(t) >= n && !strcmp(t + strlen(t) - n, type))
                        return d;
        }
        return NULL;
}

static int reason_match(const char *val, const json_t *details)
{
        const json_t *d;
        size_t i;

        json_array_foreach(details, i, d)
                if (adapt_alt_eq(val, adapt_jstr(d, "reason")))
                        return 1;
        return 0;
}

static int quota_match(const char *val, const json_t *details)
{
        const json_t *qf = detail_of(details, "google.rpc.QuotaFailure");
        const json_t *v;
        size_t i;

        json_array_foreach(json_object_get(qf, "violations"), i, v)
                if (adapt_alt_has(val, adapt_jstr(v, "quotaId")))
                        return 1;
        return 0;
}

static int marker_match(const struct adapt_rule *r, const void *ctx)
{
        const struct errbody *eb = ctx;

        switch (r->marker) {
        case M_STATUS:
                return adapt_alt_eq(r->val, eb->status);
        case M_MSG:
                return adapt_alt_has(r->val, eb->message);
        case M_REASON:
                return reason_match(r->val, eb->details);
        case M_QUOTA:
                return quota_match(r->val, eb->details);
        }
        return 0;
}

/** Fill \p eb from a parsed body: an object, or an array holding one. */
static void errbody_read(struct errbody *eb, const json_t *root)
{
        const json_t *e;

        if (json_is_array(root))
                root = json_array_get(root, 0);
        e = json_object_get(root, "error");
        memset(eb, 0, sizeof(*eb));
        if (!json_is_object(e))
                return;
        eb->status = adapt_jstr(e, "status");
        eb->message = adapt_jstr(e, "message");
        eb->details = json_object_get(e, "details");
}

/**
 * A protobuf Duration in JSON: "37s", "0.5s", "1.250s".
 * @returns milliseconds rounded up, or -1.
 */
static int64_t parse_duration(const char *s)
{
        int64_t ms = 0, frac = 0, scale = 1;
        int digits = 0;

        if (!s)
                return -1;
        for (; isdigit((unsigned char)*s); s++, digits++)
                ms = ms > MAX_HINT_MS ? ms : ms * 10 + (*s - '0') * 1000;
        if (*s == '.')
                for (s++; isdigit((unsigned char)*s); s++, digits++)
                        if (scale < 1000000) {
                                frac = frac * 10 + (*s - '0');
                                scale *= 10;
                        }
        if (!digits || strcmp(s, "s"))
                return -1;
        ms += (frac * 1000 + scale - 1) / scale;
        return ms > MAX_HINT_MS ? MAX_HINT_MS : ms;
}

/** RetryInfo.retryDelay of \p eb in ms, or -1. */
static int64_t retry_delay(const struct errbody *eb)
{
        const json_t *ri = detail_of(eb->details, "google.rpc.RetryInfo");

        return parse_duration(adapt_jstr(ri, "retryDelay"));
}

/** Where a key may show: a "key=" query echo, a Google key "AIza...".
 *  Gemini does not echo keys; a proxy in front of it might. */
static const char *const key_prefixes[] = {"key=", "AIza", NULL};
static const struct adapt_redact keys = {
        .prefixes = key_prefixes,
        .chars = "-_%",
        .min_len = 3,
};

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        struct errbody eb;
        json_t *root;
        int is_json;

        root = adapt_body_json(resp);
        errbody_read(&eb, root);
        is_json = json_is_object(root) || json_is_array(root);
        adapt_classify(resp,
                       adapt_rules_match(is_json ? rules : nonjson_rules,
                                         resp->status, marker_match, &eb),
                       err);
        if (is_json)
                /* "<status> <STATUS>: <message>" */
                adapt_errstr(err, &keys, "%ld%s%s: %s", resp->status,
                             eb.status ? " " : "", eb.status ? eb.status : "",
                             eb.message ? eb.message : "(no message)");
        if (err->retry_after_ms < 0)
                err->retry_after_ms = retry_delay(&eb);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

/** finishReasons that mean the output was withheld for safety. */
static const char *const blocked_finish = "SAFETY|PROHIBITED_CONTENT|"
                                          "BLOCKLIST|SPII";

/** Text of \p part unless it is a thought (borrowed), else NULL. */
static const char *part_text(const json_t *part)
{
        if (json_is_true(json_object_get(part, "thought")))
                return NULL;
        return adapt_jstr(part, "text");
}

/** 200 without candidates: a blocked prompt, or a broken answer. */
static enum outcome parse_no_candidate(const json_t *root,
                                       struct provider_err *err)
{
        const char *block = adapt_jstr(json_object_get(root, "promptFeedback"),
                                       "blockReason");

        if (block)
                return adapt_fail(err, OUTCOME_FATAL_JOB,
                                  "200: prompt blocked: %.64s", block);
        return adapt_fail(err, OUTCOME_RETRY_LATER, "200: no candidates");
}

static enum outcome parse_candidate(const json_t *root, const json_t *cand,
                                    struct provider_result *res,
                                    struct provider_err *err)
{
        const json_t *usage = json_object_get(root, "usageMetadata");
        const char *finish = adapt_jstr(cand, "finishReason");
        char *text;

        text = adapt_join_text(
                json_object_get(json_object_get(cand, "content"), "parts"),
                part_text);
        if (!*text && adapt_alt_eq(blocked_finish, finish)) {
                free(text);
                return adapt_fail(err, OUTCOME_FATAL_JOB,
                                  "200: answer blocked: %.64s", finish);
        }
        res->text = text;
        res->finish_reason = xstrdup(finish);
        res->model = xstrdup(adapt_jstr(root, "modelVersion"));
        res->input_tokens = adapt_jint(usage, "promptTokenCount");
        res->output_tokens = adapt_jint(usage, "candidatesTokenCount");
        if (json_is_object(usage))
                res->usage_json = adapt_jdump(usage, JSON_COMPACT);
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

static enum outcome parse_ok(const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err, adapt_error_fn *error)
{
        json_t *root = adapt_ok_json(resp);
        const json_t *cand;

        if (!root)
                return provider_classify_generic(resp, err);
        cand = json_array_get(json_object_get(root, "candidates"), 0);
        if (json_is_object(cand))
                parse_candidate(root, cand, res, err);
        else
                parse_no_candidate(root, err);
        json_decref(root);
        return err->outcome;
}

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        return adapt_parse(job, resp, res, err, parse_ok, parse_error);
}

const struct provider_ops provider_gemini_ops = {
        .name = "gemini_generate",
        .kind = GENQ__V1__KIND__KIND_CHAT,
        .flags = 0,
        .build = build,
        .parse = parse,
};
