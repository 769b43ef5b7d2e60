/*
 * provider_cohere: the Cohere v2 chat adapter ("cohere_chat", reference
 * section 4).
 *
 * REQUEST
 *
 *   POST <base>/chat                base https://api.cohere.com/v2
 *   Authorization: Bearer <key>
 *   {"model", "messages":[{"role","content"}], "stream":false,
 *    "max_tokens"?, "temperature"?}
 *
 * Roles system, user and assistant pass through ("developer" is sent as
 * system); a "tool" turn is sent as a user turn, since v2's tool role
 * needs a tool_call_id the job does not carry.  extra_body is merged as
 * defaults, nested objects key by key.
 *
 * RESPONSE
 *
 * The text blocks of message.content are concatenated; finish_reason;
 * usage.billed_units.input_tokens / output_tokens (what Cohere bills; the
 * usage.tokens counts include its prompt template).  The v2 response names
 * no model.  Errors are {"id","message"} and go through rules[]: section
 * 4 and the Cohere row of section 12 by status, plus two message rows
 * (model not found, a trial key's monthly allowance), then
 * provider_classify_generic().
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xmem.h"

#define CHAT_PATH "/chat"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/*
 * Building the request.
 */

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
                     p->base_url, CHAT_PATH);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: base_url too long",
                         p->name);
                return -1;
        }
        return 0;
}

static int build_headers(const char *key, struct provider_req *req,
                         char *errstr, size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (key && *key)
                provider_req_header(req, "Authorization: Bearer %s", key);
        provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
        return 0;
}

/** Job role -> Cohere v2 role. */
static const struct {
        const char *job;
        const char *api;
} role_map[] = {
        {"system", "system"},       {"developer", "system"},
        {"user", "user"},           {"", "user"},
        {"assistant", "assistant"}, {"tool", "user"},
};

static const char *map_role(const char *role)
{
        for (size_t i = 0; i < sizeof(role_map) / sizeof(role_map[0]); i++)
                if (!strcmp(role, role_map[i].job))
                        return role_map[i].api;
        return NULL;
}

static json_t *build_messages(const Genq__V1__ChatRequest *chat, char *errstr,
                              size_t errstr_size)
{
        json_t *arr = json_array(), *m;
        const Genq__V1__ChatMessage *cm;
        const char *role;

        if (!arr)
                fatal("out of memory building JSON");
        for (size_t i = 0; i < chat->n_messages; i++) {
                cm = chat->messages[i];
                role = map_role(cm->role);
                if (!role) {
                        snprintf(errstr, errstr_size,
                                 "message %zu: role \"%.32s\" has no "
                                 "Cohere equivalent",
                                 i, cm->role);
                        goto err_free;
                }
                m = json_object();
                if (!m || json_array_append_new(arr, m) == -1)
                        fatal("out of memory building JSON");
                jset(m, "role", json_string(role));
                if (jset_str(m, "content", cm->content) == -1) {
                        snprintf(errstr, errstr_size,
                                 "message %zu is not valid UTF-8", i);
                        goto err_free;
                }
        }
        return arr;

err_free:
        json_decref(arr);
        return NULL;
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
        const char *model = *chat->model ? chat->model : p->model;
        json_t *body, *msgs;

        if (!model || !*model) {
                snprintf(errstr, errstr_size,
                         "no model: the job names none and provider %s "
                         "has no default",
                         p->name);
                return NULL;
        }
        msgs = build_messages(chat, errstr, errstr_size);
        if (!msgs)
                return NULL;
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        jset(body, "messages", msgs);
        if (jset_str(body, "model", model) == -1) {
                snprintf(errstr, errstr_size, "model is not valid UTF-8");
                goto err_free_body;
        }
        jset(body, "stream", json_false());
        if (chat->max_tokens > 0)
                jset(body, "max_tokens", json_integer(chat->max_tokens));
        if (chat->temperature_opt_case ==
            GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE)
                jset(body, "temperature", json_real(chat->temperature));
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

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_MSG,     /**< message contains one of val (any case) */
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
 * Section 4 and section 12 ("Cohere 401 / 402 / 429").  Two message rows
 * the reference does not list: a 404 naming the model is this provider's
 * model list, not the job (as for OpenAI); a 429 for a trial key's
 * monthly allowance ("limited to 1000 API calls / month") will not pass
 * with a backoff.
 */
static const struct rule rules[] = {
        {400, M_ANY, NULL, FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {404, M_MSG, "model", FALLBACK},
        {429, M_MSG, "/ month|per month", QUOTA},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* No JSON body: status only; a 403/404 page is the route, not the key. */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

static int msg_contains(const char *alts, const char *msg)
{
        char needle[64];
        size_t n;

        if (!msg)
                return 0;
        for (;;) {
                n = strcspn(alts, "|");
                if (n < sizeof(needle)) {
                        memcpy(needle, alts, n);
                        needle[n] = '\0';
                        if (strcasestr(msg, needle))
                                return 1;
                }
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static const struct rule *rules_match(const struct rule *table,
                                      const char *msg, long status)
{
        for (const struct rule *r = table; r->marker != M_END; r++)
                if ((!r->status || r->status == status) &&
                    (r->marker == M_ANY || msg_contains(r->val, msg)))
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

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct rule *r;
        const char *msg;
        char buf[1024];
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        msg = jstr(root, "message");
        r = rules_match(json_is_object(root) ? rules : nonjson_rules, msg,
                        resp->status);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        if (json_is_object(root)) {
                snprintf(buf, sizeof(buf), "%ld: %s", resp->status,
                         msg ? msg : "(no message)");
                copy_utf8(err->errstr, sizeof(err->errstr), buf);
        }
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(msg);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

static const char *block_text(const json_t *b)
{
        const char *type = jstr(b, "type");

        return type && !strcmp(type, "text") ? jstr(b, "text") : NULL;
}

/** message.content as a new string: a string, or its text blocks
 *  joined.  @returns NULL if it is neither. */
static char *content_text(const json_t *content)
{
        size_t i, n, len = 0;
        const json_t *b;
        const char *t;
        char *out;

        if (json_is_string(content))
                return xstrdup(json_string_value(content));
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

static int64_t usage_tokens(const json_t *units, const char *k)
{
        const json_t *v = json_object_get(units, k);

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

static enum outcome parse_reply(const json_t *root,
                                struct provider_result *res,
                                struct provider_err *err)
{
        const json_t *usage = json_object_get(root, "usage");
        const json_t *billed = json_object_get(usage, "billed_units");
        char *text;

        text = content_text(
                json_object_get(json_object_get(root, "message"), "content"));
        if (!text) {
                snprintf(err->errstr, sizeof(err->errstr),
                         "200: no message content in the response");
                err->outcome = OUTCOME_RETRY_LATER;
                return err->outcome;
        }
        res->text = text;
        res->finish_reason = xstrdup(jstr(root, "finish_reason"));
        res->input_tokens = usage_tokens(billed, "input_tokens");
        res->output_tokens = usage_tokens(billed, "output_tokens");
        res->usage_json = usage_dump(usage);
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

static enum outcome parse_ok(const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err)
{
        json_t *root = NULL;

        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
        parse_reply(root, res, err);
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

const struct provider_ops provider_cohere_ops = {
        .name = "cohere_chat",
        .kind = GENQ__V1__KIND__KIND_CHAT,
        .flags = 0,
        .build = build,
        .parse = parse,
};
