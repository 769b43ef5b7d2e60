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

#include "xmem.h"

#define GENERATE_SUFFIX ":generateContent"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))
#define MAX_HINT_MS (24LL * 3600 * 1000)

/*
 * Building the request.
 */

static void jset(json_t *obj, const char *k, json_t *v)
{
        if (!v || json_object_set_new(obj, k, v) == -1)
                fatal("out of memory building JSON");
}

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
        jset(part, "text", t);
        return part;
}

/** Append \p s percent-encoded (RFC 3986 unreserved kept, and '/' if
 *  \p keep_slash) at \p *pos of \p buf. @returns -1 if it does not fit. */
static int url_put(char *buf, size_t size, size_t *pos, const char *s,
                   int keep_slash)
{
        static const char hex[] = "0123456789ABCDEF";
        unsigned char c;

        for (; *s; s++) {
                c = (unsigned char)*s;
                if (*pos + 4 > size)
                        return -1;
                if (isalnum(c) || strchr("-._~", c) ||
                    (keep_slash && c == '/')) {
                        buf[(*pos)++] = (char)c;
                        continue;
                }
                buf[(*pos)++] = '%';
                buf[(*pos)++] = hex[c >> 4];
                buf[(*pos)++] = hex[c & 15];
        }
        buf[*pos] = '\0';
        return 0;
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

static int build_url(const struct provider_cfg *p, const char *model,
                     const char *key, struct provider_req *req,
                     char *errstr, size_t errstr_size)
{
        size_t n, pos;
        int r;

        if (!p->base_url || !*p->base_url) {
                snprintf(errstr, errstr_size, "provider %s has no base_url",
                         p->name);
                return -1;
        }
        n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
                n--;
        r = snprintf(req->url, sizeof(req->url), "%.*s/%s", (int)n,
                     p->base_url, model_prefix(model));
        pos = r < 0 ? sizeof(req->url) : (size_t)r;
        if (pos >= sizeof(req->url) ||
            url_put(req->url, sizeof(req->url), &pos, model, 1) == -1 ||
            url_raw(req->url, sizeof(req->url), &pos, GENERATE_SUFFIX) ==
                    -1 ||
            (key && *key &&
             (url_raw(req->url, sizeof(req->url), &pos, "?key=") == -1 ||
              url_put(req->url, sizeof(req->url), &pos, key, 0) == -1))) {
                explicit_bzero(req->url, sizeof(req->url));
                snprintf(errstr, errstr_size, "provider %s: URL too long",
                         p->name);
                return -1;
        }
        return 0;
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
        jset(c, "role", json_string(api));
        jappend(parts, part);
        jset(c, "parts", parts);
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
        jset(body, "contents", contents);
        if (json_array_size(sys)) {
                si = json_object();
                jset(si, "parts", sys);
                jset(body, "systemInstruction", si);
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
                jset(gc, "temperature", json_real(chat->temperature));
        if (chat->max_tokens > 0)
                jset(gc, "maxOutputTokens", json_integer(chat->max_tokens));
        if (json_object_size(gc))
                jset(body, "generationConfig", gc);
        else
                json_decref(gc);
}

/** Like json_object_update_missing(), recursing into nested objects. */
static void merge_missing(json_t *dst, json_t *src)
{
        const char *k;
        json_t *v, *have;

        json_object_foreach(src, k, v) {
                have = json_object_get(dst, k);
                if (!have)
                        jset(dst, k, json_incref(v));
                else if (json_is_object(have) && json_is_object(v))
                        merge_missing(have, v);
        }
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
        merge_missing(body, extra);
        json_decref(extra);
        return 0;
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
        const char *model;
        json_t *body;

        memset(req, 0, sizeof(*req));
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_CHAT || !job->chat) {
                snprintf(errstr, errstr_size, "not a chat job");
                return -1;
        }
        model = *job->chat->model ? job->chat->model : p->model;
        if (!model || !*model) {
                snprintf(errstr, errstr_size,
                         "no model: the job names none and provider %s "
                         "has no default",
                         p->name);
                return -1;
        }
        body = build_body(p, job->chat, errstr, errstr_size);
        if (!body)
                return -1;
        if (build_url(p, model, key, req, errstr, errstr_size) == -1)
                goto err_free_body;
        provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
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
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_STATUS,  /**< error.status equals one of val */
        M_MSG,     /**< error.message contains one of val (any case) */
        M_REASON,  /**< a details[].reason equals one of val */
        M_QUOTA,   /**< a QuotaFailure violation's quotaId contains val */
};

struct rule {
        long status;          /**< HTTP status, 0 = any */
        enum marker marker;   /**< what to inspect */
        const char *val;      /**< '|'-separated alternatives */
        enum outcome outcome; /**< the class */
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
static const struct rule rules[] = {
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

/* No JSON body (Google front end or proxy page): status only. */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

static int alt_any(const char *alts, const char *s,
                   int (*test)(const char *alt, size_t n, const char *s))
{
        size_t n;

        if (!s)
                return 0;
        for (;;) {
                n = strcspn(alts, "|");
                if (test(alts, n, s))
                        return 1;
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static int t_equal(const char *alt, size_t n, const char *s)
{
        return strlen(s) == n && !strncmp(alt, s, n);
}

static int t_contains(const char *alt, size_t n, const char *s)
{
        char needle[64];

        if (n >= sizeof(needle))
                return 0;
        memcpy(needle, alt, n);
        needle[n] = '\0';
        return strcasestr(s, needle) != NULL;
}

/** The details[] entry whose "@type" ends in \p type, or NULL. */
static const json_t *detail_of(const json_t *details, const char *type)
{
        const json_t *d;
        const char *t;
        size_t i, n = strlen(type);

        json_array_foreach(details, i, d) {
                t = jstr(d, "@type");
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
                if (alt_any(val, jstr(d, "reason"), t_equal))
                        return 1;
        return 0;
}

static int quota_match(const char *val, const json_t *details)
{
        const json_t *qf = detail_of(details, "google.rpc.QuotaFailure");
        const json_t *v;
        size_t i;

        json_array_foreach(json_object_get(qf, "violations"), i, v)
                if (alt_any(val, jstr(v, "quotaId"), t_contains))
                        return 1;
        return 0;
}

static int marker_match(const struct rule *r, const struct errbody *eb)
{
        switch (r->marker) {
        case M_END:
                return 0;
        case M_ANY:
                return 1;
        case M_STATUS:
                return alt_any(r->val, eb->status, t_equal);
        case M_MSG:
                return alt_any(r->val, eb->message, t_contains);
        case M_REASON:
                return reason_match(r->val, eb->details);
        case M_QUOTA:
                return quota_match(r->val, eb->details);
        }
        return 0;
}

static const struct rule *rules_match(const struct rule *table,
                                      const struct errbody *eb, long status)
{
        for (const struct rule *r = table; r->marker != M_END; r++)
                if ((!r->status || r->status == status) &&
                    marker_match(r, eb))
                        return r;
        return NULL;
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
        eb->status = jstr(e, "status");
        eb->message = jstr(e, "message");
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

        return parse_duration(jstr(ri, "retryDelay"));
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

/** Where a key may show: a "key=" query echo, a Google key "AIza...". */
static const char *const key_prefixes[] = {"key=", "AIza"};

/** Replace the token after each key prefix in \p s with "…". */
static void redact_keys(char *s)
{
        static const char ell[] = "\xe2\x80\xa6"; /* U+2026 */
        static const char tok[] = "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_%";
        size_t n, k;
        char *p;

        for (k = 0; k < sizeof(key_prefixes) / sizeof(*key_prefixes); k++)
                for (p = s; (p = strstr(p, key_prefixes[k]));) {
                        p += strlen(key_prefixes[k]);
                        n = strspn(p, tok);
                        if (n < sizeof(ell) - 1)
                                continue;
                        memcpy(p, ell, sizeof(ell) - 1);
                        memmove(p + sizeof(ell) - 1, p + n,
                                strlen(p + n) + 1);
                }
}

/** "<status> <STATUS>: <message>", key-shaped tokens redacted (Gemini
 *  does not echo keys; a proxy in front of it might). */
static void errbody_errstr(const struct errbody *eb, long status,
                           struct provider_err *err)
{
        char buf[1024];

        snprintf(buf, sizeof(buf), "%ld%s%s: %s", status,
                 eb->status ? " " : "", eb->status ? eb->status : "",
                 eb->message ? eb->message : "(no message)");
        redact_keys(buf);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct rule *r;
        struct errbody eb;
        json_t *root;
        int is_json;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        errbody_read(&eb, root);
        is_json = json_is_object(root) || json_is_array(root);
        r = rules_match(is_json ? rules : nonjson_rules, &eb, resp->status);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        if (is_json)
                errbody_errstr(&eb, resp->status, err);
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
        return jstr(part, "text");
}

/** The non-thought text parts of \p parts joined, as a new string. */
static char *parts_text(const json_t *parts)
{
        size_t i, n, len = 0;
        const json_t *part;
        const char *t;
        char *out;

        json_array_foreach(parts, i, part) {
                t = part_text(part);
                len += t ? strlen(t) : 0;
        }
        out = xmalloc(len + 1);
        len = 0;
        json_array_foreach(parts, i, part) {
                t = part_text(part);
                if (!t)
                        continue;
                n = strlen(t);
                memcpy(out + len, t, n);
                len += n;
        }
        out[len] = '\0';
        return out;
}

static int64_t usage_tokens(const json_t *usage, const char *k)
{
        const json_t *v = json_object_get(usage, k);

        return json_is_number(v) ? (int64_t)json_number_value(v) : -1;
}

static char *usage_dump(const json_t *usage)
{
        char *s;

        if (!json_is_object(usage))
                return NULL;
        s = json_dumps(usage, JSON_COMPACT);
        if (!s)
                fatal("out of memory serialising JSON");
        return s;
}

static enum outcome fail_200(struct provider_err *err, enum outcome o,
                             const char *what, const char *why)
{
        snprintf(err->errstr, sizeof(err->errstr), "200: %s%s%.64s", what,
                 why ? ": " : "", why ? why : "");
        err->outcome = o;
        return o;
}

/** 200 without candidates: a blocked prompt, or a broken answer. */
static enum outcome parse_no_candidate(const json_t *root,
                                       struct provider_err *err)
{
        const char *block = jstr(json_object_get(root, "promptFeedback"),
                                 "blockReason");

        if (block)
                return fail_200(err, OUTCOME_FATAL_JOB, "prompt blocked",
                                block);
        return fail_200(err, OUTCOME_RETRY_LATER, "no candidates", NULL);
}

static enum outcome parse_candidate(const json_t *root, const json_t *cand,
                                    struct provider_result *res,
                                    struct provider_err *err)
{
        const json_t *usage = json_object_get(root, "usageMetadata");
        const char *finish = jstr(cand, "finishReason");
        char *text;

        text = parts_text(
                json_object_get(json_object_get(cand, "content"), "parts"));
        if (!*text && alt_any(blocked_finish, finish, t_equal)) {
                free(text);
                return fail_200(err, OUTCOME_FATAL_JOB, "answer blocked",
                                finish);
        }
        res->text = text;
        res->finish_reason = xstrdup(finish);
        res->model = xstrdup(jstr(root, "modelVersion"));
        res->input_tokens = usage_tokens(usage, "promptTokenCount");
        res->output_tokens = usage_tokens(usage, "candidatesTokenCount");
        res->usage_json = usage_dump(usage);
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

static enum outcome parse_ok(const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err)
{
        json_t *root = NULL;
        const json_t *cand;

        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
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
        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status >= 200 && resp->status < 300)
                return parse_ok(resp, res, err);
        return parse_error(resp, err);
}

const struct provider_ops provider_gemini_ops = {
        .name = "gemini_generate",
        .kind = GENQ__V1__KIND__KIND_CHAT,
        .flags = 0,
        .build = build,
        .parse = parse,
};
