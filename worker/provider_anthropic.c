/*
 * provider_anthropic: the Anthropic Messages adapter ("anthropic_messages",
 * reference section 2).
 *
 * REQUEST
 *
 *   POST <base>/messages            base https://api.anthropic.com/v1
 *   x-api-key: <key>
 *   anthropic-version: 2023-06-01
 *   {"model", "max_tokens", "system"?, "messages", "temperature"?}
 *
 * The job's system (and "developer") messages are joined with a blank
 * line into the top-level "system" string; user and assistant turns keep
 * their roles, a "tool" turn is sent as a user turn (its tool_use id is
 * not in the job).  max_tokens is required by the API: the job's, else
 * DEFAULT_MAX_TOKENS.  Anthropic's temperature range is 0..1, the job's
 * 0..2: values above 1 are clamped to 1.
 *
 * extra_body (e.g. {"thinking":{"type":"enabled","budget_tokens":2048}})
 * is merged as defaults, nested objects key by key; keys the adapter set
 * are never overridden.  With thinking enabled the API refuses any
 * temperature but 1 and a max_tokens not above the thinking budget, so
 * the adapter then drops temperature and, if needed, raises max_tokens to
 * budget + the answer budget.
 *
 * RESPONSE
 *
 * The text blocks of "content" are concatenated (thinking and tool_use
 * blocks are skipped); usage.input_tokens / usage.output_tokens.  Errors
 * are {"type":"error","error":{"type","message","details"?}} and go
 * through rules[] (section 2 and the Anthropic rows of section 12), first
 * matching row wins; a body that is not JSON uses nonjson_rules[]; then
 * provider_classify_generic() decides by status.  Retry hints come from
 * the retry-after header only (Anthropic sends no body hint).
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xmem.h"

#define MESSAGES_PATH "/messages"
#define API_VERSION "2023-06-01"
#define DEFAULT_MAX_TOKENS 1024
#define MAX_TEMPERATURE 1.0
/** Float temperatures print as 0.7, not 0.69999998807907104. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/*
 * Building the request.
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

static int build_url(const struct provider_cfg *p, struct provider_req *req,
                     char *errstr, size_t errstr_size)
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
                     p->base_url, MESSAGES_PATH);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: base_url too long",
                         p->name);
                return -1;
        }
        return 0;
}

/** Headers; no x-api-key line when there is no key (local proxies). */
static int build_headers(const char *key, struct provider_req *req,
                         char *errstr, size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (key && *key)
                provider_req_header(req, "x-api-key: %s", key);
        provider_req_header(req, "anthropic-version: %s", API_VERSION);
        provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
        return 0;
}

/** Where a job role goes: the system string, or a message role. */
static const struct {
        const char *job;     /**< role in the job ("" = unset) */
        const char *api;     /**< Anthropic role, NULL = system field */
} role_map[] = {
        {"system", NULL},     {"developer", NULL}, {"user", "user"},
        {"", "user"},         {"assistant", "assistant"},
        {"tool", "user"},
};

/** @returns 0 and the mapped role in \p *api, or -1 (unknown role). */
static int map_role(const char *role, const char **api)
{
        for (size_t i = 0; i < sizeof(role_map) / sizeof(role_map[0]); i++)
                if (!strcmp(role, role_map[i].job)) {
                        *api = role_map[i].api;
                        return 0;
                }
        return -1;
}

/** Append \p s to the growing system text, a blank line between parts. */
static void system_append(char **sys, const char *s)
{
        size_t old = *sys ? strlen(*sys) : 0, n = strlen(s);

        *sys = xrealloc(*sys, old + n + 3);
        if (old) {
                memcpy(*sys + old, "\n\n", 2);
                old += 2;
        }
        memcpy(*sys + old, s, n + 1);
}

/** Add one user/assistant turn to \p arr. @returns -1 on bad UTF-8. */
static int add_turn(json_t *arr, const char *role, const char *content)
{
        json_t *m = json_object();

        if (!m || json_array_append_new(arr, m) == -1)
                fatal("out of memory building JSON");
        jset(m, "role", json_string(role));
        return jset_str(m, "content", content);
}

/** Set "system" and "messages" of \p body from the job's turns. */
static int add_messages(json_t *body, const Genq__V1__ChatRequest *chat,
                        char *errstr, size_t errstr_size)
{
        json_t *arr = json_array();
        const Genq__V1__ChatMessage *cm;
        const char *api;
        char *sys = NULL;
        int r = -1;

        if (!arr)
                fatal("out of memory building JSON");
        for (size_t i = 0; i < chat->n_messages; i++) {
                cm = chat->messages[i];
                if (map_role(cm->role, &api) == -1) {
                        snprintf(errstr, errstr_size,
                                 "message %zu: role \"%.32s\" has no "
                                 "Anthropic equivalent",
                                 i, cm->role);
                        goto out_free;
                }
                if (!api)
                        system_append(&sys, cm->content);
                else if (add_turn(arr, api, cm->content) == -1) {
                        snprintf(errstr, errstr_size,
                                 "message %zu is not valid UTF-8", i);
                        goto out_free;
                }
        }
        if (!json_array_size(arr)) {
                snprintf(errstr, errstr_size,
                         "no user or assistant message to send");
                goto out_free;
        }
        if (sys && jset_str(body, "system", sys) == -1) {
                snprintf(errstr, errstr_size,
                         "system message is not valid UTF-8");
                goto out_free;
        }
        jset(body, "messages", arr);
        arr = NULL; /* owned by body */
        r = 0;

out_free:
        free(sys);
        json_decref(arr);
        return r;
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

/** Merge the configured extra_body as defaults. */
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

/**
 * Extended thinking takes only temperature 1 and needs max_tokens above
 * the thinking budget: drop temperature, make room for the answer.
 */
static void fit_thinking(json_t *body)
{
        const json_t *th = json_object_get(body, "thinking");
        json_int_t budget, max;

        if (!json_is_object(th) ||
            !json_is_string(json_object_get(th, "type")) ||
            strcmp(json_string_value(json_object_get(th, "type")),
                   "enabled"))
                return;
        json_object_del(body, "temperature");
        budget = json_integer_value(json_object_get(th, "budget_tokens"));
        max = json_integer_value(json_object_get(body, "max_tokens"));
        if (budget > 0 && max <= budget)
                jset(body, "max_tokens", json_integer(budget + max));
}

static json_t *build_body(const struct provider_cfg *p,
                          const Genq__V1__ChatRequest *chat, char *errstr,
                          size_t errstr_size)
{
        const char *model = *chat->model ? chat->model : p->model;
        double temp;
        json_t *body;

        if (!model || !*model) {
                snprintf(errstr, errstr_size,
                         "no model: the job names none and provider %s "
                         "has no default",
                         p->name);
                return NULL;
        }
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        if (jset_str(body, "model", model) == -1) {
                snprintf(errstr, errstr_size, "model is not valid UTF-8");
                goto err_free_body;
        }
        jset(body, "max_tokens",
             json_integer(chat->max_tokens > 0 ? chat->max_tokens
                                               : DEFAULT_MAX_TOKENS));
        if (add_messages(body, chat, errstr, errstr_size) == -1)
                goto err_free_body;
        if (chat->temperature_opt_case ==
            GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE) {
                temp = chat->temperature;
                jset(body, "temperature",
                     json_real(temp > MAX_TEMPERATURE ? MAX_TEMPERATURE
                                                      : temp));
        }
        if (merge_extra(p, body, errstr, errstr_size) == -1)
                goto err_free_body;
        fit_thinking(body);
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
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_CHAT || !job->chat) {
                snprintf(errstr, errstr_size, "not a chat job");
                return -1;
        }
        body = build_body(p, job->chat, errstr, errstr_size);
        if (!body)
                return -1;
        if (build_url(p, req, errstr, errstr_size) == -1 ||
            build_headers(key, req, errstr, errstr_size) == -1)
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

/*
 * Classifying error bodies.
 */

/** The fields of an error body the rules look at (borrowed). */
struct errbody {
        const char *type;       /**< error.type */
        const char *message;    /**< error.message */
        const char *error_code; /**< error.details.error_code */
};

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_TYPE,    /**< error.type equals one of val */
        M_MSG,     /**< error.message contains one of val (any case) */
        M_DETAIL,  /**< error.details.error_code equals one of val */
};

/** One row of section 12: first row whose status and marker match wins. */
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
 * Section 2 and the Anthropic rows of section 12.  The 400 billing
 * messages: "Your credit balance is too low ..." (verbatim in the
 * reference) and the workspace/organisation spend-limit message ("You
 * have reached your specified API usage limits", observed wording).  The
 * status-0 rows classify by error.type when the status is one the table
 * does not list (and an error event inside a 200).
 */
static const struct rule rules[] = {
        {400, M_MSG,
         "credit balance is too low|usage limits|spend limit", QUOTA},
        {400, M_ANY, NULL, FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_MSG, "model", FALLBACK},
        {403, M_ANY, NULL, KEYDIS},
        {404, M_ANY, NULL, FALLBACK},
        {413, M_ANY, NULL, FATAL},
        {429, M_DETAIL, "enforced_spend_limit_reached", QUOTA},
        {429, M_ANY, NULL, RETRY},
        {500, M_ANY, NULL, RETRY},
        {529, M_ANY, NULL, RETRY},
        {0, M_TYPE, "authentication_error", KEYDIS},
        {0, M_TYPE, "billing_error", QUOTA},
        {0, M_TYPE, "permission_error", KEYDIS},
        {0, M_TYPE, "not_found_error", FALLBACK},
        {0, M_TYPE, "request_too_large|invalid_request_error", FATAL},
        {0, M_TYPE, "rate_limit_error|api_error|overloaded_error", RETRY},
        {0, M_END, NULL, 0},
};

/*
 * No JSON body: a proxy, CDN or WAF answered.  Never disable a key on a
 * 403 page, and a 404 page means this base URL cannot serve the call.
 */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {529, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/** Does one of the '|'-separated \p alts pass \p test against \p s? */
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

static int marker_match(const struct rule *r, const struct errbody *eb)
{
        switch (r->marker) {
        case M_END:
                return 0;
        case M_ANY:
                return 1;
        case M_TYPE:
                return alt_any(r->val, eb->type, t_equal);
        case M_MSG:
                return alt_any(r->val, eb->message, t_contains);
        case M_DETAIL:
                return alt_any(r->val, eb->error_code, t_equal);
        }
        return 0;
}

/** Walk \p table. @returns the matching row, or NULL. */
static const struct rule *rules_match(const struct rule *table,
                                      const struct errbody *eb, long status)
{
        for (const struct rule *r = table; r->marker != M_END; r++)
                if ((!r->status || r->status == status) &&
                    marker_match(r, eb))
                        return r;
        return NULL;
}

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

/** Fill \p eb from a parsed body (any JSON value, or NULL). */
static void errbody_read(struct errbody *eb, const json_t *root)
{
        const json_t *e = json_object_get(root, "error");

        memset(eb, 0, sizeof(*eb));
        if (!json_is_object(e)) {
                eb->message = jstr(root, "message");
                return;
        }
        eb->type = jstr(e, "type");
        eb->message = jstr(e, "message");
        eb->error_code = jstr(json_object_get(e, "details"), "error_code");
}

/** Shorten every "sk-ant-..." token in \p s to "sk-ant-…". */
static void redact_keys(char *s)
{
        static const char prefix[] = "sk-ant-";
        static const char ell[] = "\xe2\x80\xa6"; /* U+2026 */
        char *p = s;
        size_t n;

        while ((p = strstr(p, prefix))) {
                p += sizeof(prefix) - 1;
                n = strspn(p, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
                if (n < sizeof(ell) - 1)
                        continue;
                memcpy(p, ell, sizeof(ell) - 1);
                memmove(p + sizeof(ell) - 1, p + n, strlen(p + n) + 1);
        }
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

/** "<status> <type>: <message>", key-shaped tokens redacted. */
static void errbody_errstr(const struct errbody *eb, long status,
                           struct provider_err *err)
{
        char buf[1024];

        snprintf(buf, sizeof(buf), "%ld%s%s: %s", status,
                 eb->type ? " " : "", eb->type ? eb->type : "",
                 eb->message ? eb->message : "(no message)");
        redact_keys(buf);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

/**
 * Classify an error body (a non-2xx answer, or an error event in a 200).
 * @returns the outcome, also in err->outcome.
 */
static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct rule *r;
        struct errbody eb;
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        errbody_read(&eb, root);
        if (json_is_object(root))
                r = rules_match(rules, &eb, resp->status);
        else
                r = rules_match(nonjson_rules, &eb, resp->status);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        else if (resp->status >= 200 && resp->status < 300)
                err->outcome = OUTCOME_RETRY_LATER;
        if (json_is_object(root))
                errbody_errstr(&eb, resp->status, err);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

/** The text of \p b if it is a "text" block, else NULL (borrowed). */
static const char *block_text(const json_t *b)
{
        const char *type = jstr(b, "type");

        return type && !strcmp(type, "text") ? jstr(b, "text") : NULL;
}

/** The "text" blocks of \p content joined, as a new string, or NULL if
 *  \p content is not an array. */
static char *content_text(const json_t *content)
{
        size_t i, n, len = 0;
        const json_t *b;
        const char *t;
        char *out;

        if (!json_is_array(content))
                return NULL;
        json_array_foreach(content, i, b) {
                t = block_text(b);
                len += t ? strlen(t) : 0;
        }
        out = xmalloc(len + 1);
        len = 0;
        json_array_foreach(content, i, b) {
                t = block_text(b);
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

/** Fill \p res from a parsed message object. */
static enum outcome parse_message(const json_t *root,
                                  struct provider_result *res,
                                  struct provider_err *err)
{
        const json_t *usage = json_object_get(root, "usage");
        char *text = content_text(json_object_get(root, "content"));

        if (!text) {
                snprintf(err->errstr, sizeof(err->errstr),
                         "200: no content array in the response");
                err->outcome = OUTCOME_RETRY_LATER;
                return err->outcome;
        }
        res->text = text;
        res->finish_reason = xstrdup(jstr(root, "stop_reason"));
        res->model = xstrdup(jstr(root, "model"));
        res->input_tokens = usage_tokens(usage, "input_tokens");
        res->output_tokens = usage_tokens(usage, "output_tokens");
        res->usage_json = usage_dump(usage);
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

/** A 2xx answer: a message, or an error event (type "error"). */
static enum outcome parse_ok(const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err)
{
        json_t *root = NULL;
        const char *type;

        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
        type = jstr(root, "type");
        if (type && !strcmp(type, "error"))
                parse_error(resp, err);
        else
                parse_message(root, res, err);
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

const struct provider_ops provider_anthropic_ops = {
        .name = "anthropic_messages",
        .kind = GENQ__V1__KIND__KIND_CHAT,
        .flags = 0,
        .build = build,
        .parse = parse,
};
