/*
 * provider_openai: the OpenAI-compatible chat adapter ("openai_chat").
 *
 * One adapter serves every provider that speaks POST <base>/chat/completions
 * (OpenAI, Groq, Mistral, Together, DeepInfra, Fireworks, OpenRouter, Zhipu,
 * Hunyuan, NVIDIA, DashScope compatible-mode, SiliconFlow, KIE per-model
 * chat).  Requests are identical; what differs is the error body.
 *
 * CLASSIFYING ERRORS
 *
 * The reference's rule 1 is "never classify by HTTP status alone", and the
 * base URL is not a reliable way to tell vendors apart (proxies, regional
 * hosts, the fake servers).  So the body decides which table to use:
 *
 *   error.code is an integer          -> OpenRouter
 *   error.code is a digit string      -> Zhipu ("1113")
 *   code begins with a capital letter -> DashScope ("Arrearage")
 *   top-level integer code, no error  -> SiliconFlow ({"code":20012})
 *   anything else                     -> OpenAI (also Groq, Mistral's bare
 *                                        {"detail":...}, Together family,
 *                                        NVIDIA, Hunyuan, KIE chat)
 *
 * Each table is a list of {status, marker, outcome} rows walked top to
 * bottom, first match wins, as in section 12.  A marker tests the code,
 * the type or a message substring against '|'-separated alternatives.
 * When the family's table has no row, the OpenAI table is tried (so a
 * vendor-specific code we do not know still gets the shared 401/402/429
 * and billing-message rows), then provider_classify_generic() decides by
 * status.  A non-JSON error body (proxy, CDN or WAF page) has its own
 * short status-only table.  p->name appears only in build() errors; it
 * never picks a table.
 */
#include "provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xmem.h"

#define CHAT_PATH "/chat/completions"
/** Float temperatures print as 0.7, not 0.69999998807907104. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/*
 * Building the request.
 */

/** "Name: <prefix><value>" in a new string. */
static char *header_new(const char *name, const char *prefix,
                        const char *value)
{
        size_t n = strlen(name) + strlen(prefix) + strlen(value) + 3;
        char *h = xmalloc(n);

        snprintf(h, n, "%s: %s%s", name, prefix, value);
        return h;
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

/** Headers; no Authorization line when there is no key (local servers). */
static int build_headers(const char *key, struct provider_req *req,
                         char *errstr, size_t errstr_size)
{
        char **h;
        int i = 0;

        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        h = xcalloc(4, sizeof(*h));
        if (key && *key)
                h[i++] = header_new("Authorization", "Bearer ", key);
        h[i++] = xstrdup("Content-Type: application/json");
        h[i++] = xstrdup("Accept: application/json");
        req->headers = h;
        return 0;
}

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

static json_t *build_messages(const Genq__V1__ChatRequest *chat, char *errstr,
                              size_t errstr_size)
{
        json_t *arr = json_array(), *m;
        const Genq__V1__ChatMessage *cm;

        for (size_t i = 0; i < chat->n_messages; i++) {
                cm = chat->messages[i];
                m = json_object();
                if (!m || json_array_append_new(arr, m) == -1)
                        fatal("out of memory building JSON");
                if (jset_str(m, "role", *cm->role ? cm->role : "user") ||
                    jset_str(m, "content", cm->content)) {
                        snprintf(errstr, errstr_size,
                                 "message %zu is not valid UTF-8", i);
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

/**
 * Merge a configured JSON object (\p what names it in errors): its keys are
 * defaults, so a key the adapter already set (model, messages, max_tokens,
 * temperature, stream) is never overridden.
 */
static int merge_obj(const struct provider_cfg *p, const char *what,
                     const char *text, json_t *body, char *errstr,
                     size_t errstr_size)
{
        json_error_t jerr;
        json_t *extra;

        if (!text || !*text)
                return 0;
        extra = json_loads(text, 0, &jerr);
        if (!json_is_object(extra)) {
                snprintf(errstr, errstr_size,
                         "provider %s: %s is not a JSON object: %s", p->name,
                         what, extra ? "wrong type" : jerr.text);
                json_decref(extra);
                return -1;
        }
        if (json_object_update_missing(body, extra) == -1)
                fatal("out of memory building JSON");
        json_decref(extra);
        return 0;
}

/**
 * extra_body always; thinking_body only when the job asks for thinking
 * (the seeds' zhipu `thinking`, NVIDIA `chat_template_kwargs`).
 */
static int merge_extra(const struct provider_cfg *p,
                       const Genq__V1__ChatRequest *chat, json_t *body,
                       char *errstr, size_t errstr_size)
{
        if (chat->thinking &&
            merge_obj(p, "thinking_body", p->thinking_body, body, errstr,
                      errstr_size))
                return -1;
        return merge_obj(p, "extra_body", p->extra_body, body, errstr,
                         errstr_size);
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
        if (jset_str(body, "model", model) == -1) {
                snprintf(errstr, errstr_size, "model is not valid UTF-8");
                goto err_free_body;
        }
        jset(body, "messages", msgs);
        msgs = NULL; /* owned by body */
        if (chat->max_tokens > 0)
                jset(body, "max_tokens", json_integer(chat->max_tokens));
        if (chat->temperature_opt_case ==
            GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE)
                jset(body, "temperature", json_real(chat->temperature));
        /* KIE chat streams unless told not to */
        jset(body, "stream", json_false());
        if (merge_extra(p, chat, body, errstr, errstr_size) == -1)
                goto err_free_body;
        return body;

err_free_body:
        json_decref(msgs);
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

/** The fields of an error body that the tables look at, whatever its
 *  shape.  Strings are borrowed from the parsed JSON. */
struct errbody {
        int wrapped;              /**< fields came from an "error" object */
        int code_is_int;          /**< code was a JSON integer */
        const char *code;         /**< code as text: "1113", "402", "" */
        char codebuf[24];         /**< holds an integer code's text */
        const char *type;         /**< error.type, or NULL */
        const char *message;      /**< message / detail / msg, or NULL */
        const char *limit_source; /**< OpenRouter metadata.limit_source */
};

enum marker {
        M_END = 0,     /**< table terminator */
        M_ANY,         /**< status alone decides */
        M_CODE,        /**< code equals one of val */
        M_CODE_PREFIX, /**< code starts with one of val */
        M_TYPE,        /**< type equals one of val */
        M_MSG,         /**< message contains one of val (any case) */
        M_INFLIGHT,    /**< limit_source is val and a Retry-After came */
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
 * OpenAI envelope: OpenAI, Groq, Mistral, Together, DeepInfra, Fireworks,
 * NVIDIA, Hunyuan, KIE chat, DashScope's lower-case codes.  403 is
 * key_disabled (Together family "auth") unless it names a region.
 */
static const struct rule openai_rules[] = {
        {400, M_CODE, "context_length_exceeded", FALLBACK},
        {400, M_CODE, "content_policy_violation", FATAL},
        {400, M_MSG, "safety system", FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {403, M_CODE, "unsupported_country_region_territory", FALLBACK},
        {403, M_MSG, "country, region, or territory", FALLBACK},
        {403, M_ANY, NULL, KEYDIS},
        {404, M_CODE, "model_not_found", FALLBACK},
        {404, M_MSG, "model", FALLBACK},
        {429, M_TYPE, "insufficient_quota", QUOTA},
        {429, M_CODE,
         "insufficient_quota|credit_balance_exhausted|"
         "organization_spend_limit_exceeded|project_spend_limit_exceeded|"
         "organization_usage_limit_exceeded",
         QUOTA},
        {429, M_CODE, "rate_limit_exceeded", RETRY},
        {429, M_TYPE, "requests|tokens|rate_limit_error|rate_limited", RETRY},
        {402, M_ANY, NULL, QUOTA},
        {500, M_ANY, NULL, RETRY},
        {503, M_ANY, NULL, RETRY},
        {0, M_MSG, "balance|credit|quota", QUOTA},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* OpenRouter: error.code is the HTTP status as a number. */
static const struct rule openrouter_rules[] = {
        {402, M_INFLIGHT, "openrouter_in_flight_budget", RETRY},
        {402, M_ANY, NULL, QUOTA},
        {401, M_ANY, NULL, KEYDIS},
        {403, M_ANY, NULL, FATAL},
        {408, M_ANY, NULL, RETRY},
        {429, M_ANY, NULL, RETRY},
        {502, M_ANY, NULL, FALLBACK},
        {503, M_ANY, NULL, FALLBACK},
        {0, M_END, NULL, 0},
};

/*
 * Zhipu: the business code decides, whatever the status (several of the
 * documented statuses are unconfirmed).
 */
static const struct rule zhipu_rules[] = {
        {0, M_CODE, "1113", QUOTA},
        {0, M_CODE, "1302|1303", RETRY},
        {0, M_CODE, "1305|1312", RETRY},
        {0, M_CODE, "1304|1308|1309|1310", QUOTA},
        {0, M_CODE, "1000|1001|1002|1003|1004", KEYDIS},
        {0, M_CODE, "1110|1111|1112|1121", KEYDIS},
        {0, M_CODE, "1301", FATAL},
        {0, M_CODE, "1211|1220|1221|1222", FALLBACK},
        {0, M_CODE, "1210|1213|1214|1215|1261", FATAL},
        {0, M_CODE, "500|1200|1234|1120|1231", RETRY},
        {0, M_END, NULL, 0},
};

/* DashScope compatible-mode: CamelCase codes; arrears come as 400. */
static const struct rule dashscope_rules[] = {
        {0, M_CODE, "Arrearage", QUOTA},
        {400, M_CODE, "InvalidParameter|DataInspectionFailed", FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {403, M_MSG, "arrear|good standing", QUOTA},
        {403, M_CODE_PREFIX, "AccessDenied", FALLBACK},
        {404, M_CODE, "ModelNotFound", FALLBACK},
        {429, M_CODE, "Throttling.AllocationQuota", QUOTA},
        {429, M_CODE_PREFIX, "Throttling", RETRY},
        {0, M_END, NULL, 0},
};

/* SiliconFlow: {"code":int,"message":...,"data":null}, no wrapper. */
static const struct rule siliconflow_rules[] = {
        {400, M_CODE, "20012", FALLBACK},
        {400, M_ANY, NULL, FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {403, M_CODE, "30011|30001", QUOTA},
        {403, M_MSG, "balance is insufficient", QUOTA},
        {403, M_ANY, NULL, KEYDIS},
        {429, M_ANY, NULL, RETRY},
        {503, M_ANY, NULL, RETRY},
        {504, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/*
 * No JSON body: a proxy, CDN or WAF answered, or the vendor sent plain
 * text.  Only the status is left; never disable a key on a 403 page (WAF
 * and region blocks look like that), and a 404 page means this provider's
 * URL cannot serve the request, not that the job is bad.
 */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

static int is_openrouter(const struct errbody *eb)
{
        return eb->wrapped && eb->code_is_int;
}

static int is_zhipu(const struct errbody *eb)
{
        return eb->wrapped && !eb->code_is_int && *eb->code &&
               strspn(eb->code, "0123456789") == strlen(eb->code);
}

static int is_dashscope(const struct errbody *eb)
{
        return isupper((unsigned char)eb->code[0]) && !eb->code_is_int;
}

static int is_siliconflow(const struct errbody *eb)
{
        return !eb->wrapped && eb->code_is_int;
}

static int is_any(const struct errbody *eb)
{
        return 1;
}

/** Body shapes, tested in order; the last one always matches. */
static const struct family {
        const char *name;
        int (*is)(const struct errbody *eb);
        const struct rule *rules;
} families[] = {
        {"openrouter", is_openrouter, openrouter_rules},
        {"zhipu", is_zhipu, zhipu_rules},
        {"dashscope", is_dashscope, dashscope_rules},
        {"siliconflow", is_siliconflow, siliconflow_rules},
        {"openai", is_any, openai_rules},
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

static int t_prefix(const char *alt, size_t n, const char *s)
{
        return !strncmp(alt, s, n);
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

static int marker_match(const struct rule *r, const struct errbody *eb,
                        const struct provider_resp *resp)
{
        switch (r->marker) {
        case M_END:
                return 0;
        case M_ANY:
                return 1;
        case M_CODE:
                return alt_any(r->val, eb->code, t_equal);
        case M_CODE_PREFIX:
                return alt_any(r->val, eb->code, t_prefix);
        case M_TYPE:
                return alt_any(r->val, eb->type, t_equal);
        case M_MSG:
                return alt_any(r->val, eb->message, t_contains);
        case M_INFLIGHT:
                return resp->retry_after_ms >= 0 &&
                       alt_any(r->val, eb->limit_source, t_equal);
        }
        return 0;
}

/** Walk \p rules. @returns the matching row, or NULL. */
static const struct rule *rules_match(const struct rule *rules,
                                      const struct errbody *eb,
                                      const struct provider_resp *resp)
{
        for (const struct rule *r = rules; r->marker != M_END; r++)
                if ((!r->status || r->status == resp->status) &&
                    marker_match(r, eb, resp))
                        return r;
        return NULL;
}

static const struct family *family_of(const struct errbody *eb)
{
        size_t i = 0;

        while (!families[i].is(eb))
                i++;
        return &families[i];
}

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

/** Read the code, type, message and OpenRouter metadata of \p obj. */
static void errbody_fields(struct errbody *eb, const json_t *obj)
{
        const json_t *code = json_object_get(obj, "code");

        if (json_is_integer(code)) {
                eb->code_is_int = 1;
                snprintf(eb->codebuf, sizeof(eb->codebuf),
                         "%" JSON_INTEGER_FORMAT, json_integer_value(code));
                eb->code = eb->codebuf;
        } else if (json_is_string(code)) {
                eb->code = json_string_value(code);
        }
        eb->type = jstr(obj, "type");
        eb->message = jstr(obj, "message");
        if (!eb->message)
                eb->message = jstr(obj, "detail");
        if (!eb->message)
                eb->message = jstr(obj, "msg");
        eb->limit_source =
                jstr(json_object_get(obj, "metadata"), "limit_source");
}

/** Fill \p eb from a parsed body (any JSON value, or NULL). */
static void errbody_read(struct errbody *eb, const json_t *root)
{
        const json_t *e = json_object_get(root, "error");

        memset(eb, 0, sizeof(*eb));
        eb->code = "";
        if (json_is_object(e)) {
                eb->wrapped = 1;
                errbody_fields(eb, e);
        } else if (json_is_string(e)) {
                eb->message = json_string_value(e);
        } else if (json_is_object(root)) {
                errbody_fields(eb, root);
        }
}

/** Key-shaped token prefixes that never reach an errstr whole. */
static const char *const key_prefixes[] = {"sk-", "nvapi-"};

static int token_char(unsigned char c)
{
        return isalnum(c) || c == '-' || c == '_' || c == '*' || c >= 0x80;
}

/** Replace a key-shaped token at \p s (len \p n) with "<prefix>…". */
static size_t redact_one(char *s, size_t plen, size_t n)
{
        static const char ell[] = "\xe2\x80\xa6"; /* U+2026 */

        memcpy(s + plen, ell, sizeof(ell) - 1);
        memmove(s + plen + sizeof(ell) - 1, s + n, strlen(s + n) + 1);
        return plen + sizeof(ell) - 1;
}

/** Shorten every "sk-xxxxxxxx..." style token in \p s to "sk-…". */
static void redact_keys(char *s)
{
        size_t i = 0, n, plen;

        while (s[i]) {
                n = 0;
                for (size_t k = 0; k < sizeof(key_prefixes) /
                                               sizeof(key_prefixes[0]);
                     k++) {
                        plen = strlen(key_prefixes[k]);
                        if ((i && token_char((unsigned char)s[i - 1])) ||
                            strncmp(s + i, key_prefixes[k], plen))
                                continue;
                        while (token_char((unsigned char)s[i + n]))
                                n++;
                        n = n > plen + 5 ? redact_one(s + i, plen, n) : n;
                        break;
                }
                i += n ? n : 1;
        }
}

/** Copy \p src into \p dst, cut at a UTF-8 character boundary (errstr
 *  ends up in a UTF-8 database column). */
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

/** "<status> <type>/<code>: <message>", key-shaped tokens redacted. */
static void errbody_errstr(const struct errbody *eb, long status,
                           struct provider_err *err)
{
        const char *type = eb->type ? eb->type : "";
        const char *sep = *type && *eb->code ? "/" : "";
        const char *sp = *type || *eb->code ? " " : "";
        char buf[1024];

        snprintf(buf, sizeof(buf), "%ld%s%s%s%s: %s", status, sp, type, sep,
                 eb->code, eb->message ? eb->message : "(no message)");
        redact_keys(buf);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

/** The row that classifies \p resp: its family's, else a shared one. */
static const struct rule *body_rule(const json_t *root,
                                   const struct errbody *eb,
                                   const struct provider_resp *resp)
{
        const struct rule *r;

        if (!json_is_object(root))
                return rules_match(nonjson_rules, eb, resp);
        r = rules_match(family_of(eb)->rules, eb, resp);
        if (r)
                return r;
        return rules_match(openai_rules, eb, resp);
}

/** Classify a non-2xx response whose body may or may not be JSON. */
static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct rule *r;
        struct errbody eb;
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        errbody_read(&eb, root);
        r = body_rule(root, &eb, resp);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        if (json_is_object(root))
                errbody_errstr(&eb, resp->status, err);
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(eb.message);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

/** message.content as a new string: a string, text parts concatenated,
 *  or "" for null.  @returns NULL if it is something else. */
static char *content_text(const json_t *content)
{
        size_t i, len = 0;
        const json_t *part;
        const char *t;
        char *out;

        if (json_is_string(content))
                return xstrdup(json_string_value(content));
        if (!content || json_is_null(content))
                return xstrdup("");
        if (!json_is_array(content))
                return NULL;
        json_array_foreach(content, i, part)
                len += json_string_length(json_object_get(part, "text"));
        out = xmalloc(len + 1);
        len = 0;
        json_array_foreach(content, i, part) {
                t = jstr(part, "text");
                if (!t)
                        continue;
                memcpy(out + len, t, strlen(t));
                len += strlen(t);
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

static enum outcome retry_200(struct provider_err *err, const char *why)
{
        snprintf(err->errstr, sizeof(err->errstr), "200: %s", why);
        err->outcome = OUTCOME_RETRY_LATER;
        return err->outcome;
}

/** Fill \p res from a parsed 2xx body. */
static enum outcome parse_choice(const json_t *root,
                                 struct provider_result *res,
                                 struct provider_err *err)
{
        const json_t *choice, *usage;
        char *text;

        choice = json_array_get(json_object_get(root, "choices"), 0);
        if (!json_is_object(choice))
                return retry_200(err, "no choices in the response");
        text = content_text(
                json_object_get(json_object_get(choice, "message"), "content"));
        if (!text)
                return retry_200(err, "message.content is not text");
        usage = json_object_get(root, "usage");
        res->text = text;
        res->finish_reason = xstrdup(jstr(choice, "finish_reason"));
        res->model = xstrdup(jstr(root, "model"));
        res->input_tokens = usage_tokens(usage, "prompt_tokens");
        res->output_tokens = usage_tokens(usage, "completion_tokens");
        res->usage_json = usage_dump(usage);
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

/** A 2xx response: a completion, or an error inside a 200 (OpenRouter). */
static enum outcome parse_ok(const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err)
{
        struct errbody eb;
        json_t *root = NULL;

        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
        err->outcome = OUTCOME_SUCCESS;
        if (json_object_get(root, "error") &&
            !json_is_null(json_object_get(root, "error"))) {
                /* generation failed after it started */
                errbody_read(&eb, root);
                errbody_errstr(&eb, resp->status, err);
                err->outcome = OUTCOME_RETRY_LATER;
                if (err->retry_after_ms < 0)
                        err->retry_after_ms =
                                provider_parse_try_again(eb.message);
        } else {
                parse_choice(root, res, err);
        }
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

const struct provider_ops provider_openai_chat_ops = {
        .name = "openai_chat",
        .kind = GENQ__V1__KIND__KIND_CHAT,
        .flags = 0,
        .build = build,
        .parse = parse,
};
