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
 * status.  A non-JSON error body (proxy, CDN or WAF page) has only the
 * shared status-only rows (adapt_nonjson_rule()).  p->name appears only
 * in build() errors; it never picks a table.
 */
#include "provider.h"

#include <ctype.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define CHAT_PATH "/chat/completions"
/** Float temperatures print as 0.7, not 0.69999998807907104. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/*
 * Building the request.
 */

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
                if (adapt_jset_str(m, "role", *cm->role ? cm->role : "user") ||
                    adapt_jset_str(m, "content", cm->content)) {
                        snprintf(errstr, errstr_size,
                                 "message %zu is not valid UTF-8", i);
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

/**
 * Configured objects are defaults: a key the adapter already set (model,
 * messages, max_tokens, temperature, stream) is never overridden.
 * extra_body always; thinking_body only when the job asks for thinking
 * (the seeds' zhipu `thinking`, NVIDIA `chat_template_kwargs`).
 */
static int merge_extra(const struct provider_cfg *p,
                       const Genq__V1__ChatRequest *chat, json_t *body,
                       char *errstr, size_t errstr_size)
{
        if (chat->thinking &&
            adapt_merge_obj(p, "thinking_body", p->thinking_body, body,
                            ADAPT_MERGE_TOP, errstr, errstr_size))
                return -1;
        return adapt_merge_obj(p, "extra_body", p->extra_body, body,
                               ADAPT_MERGE_TOP, errstr, errstr_size);
}

static json_t *build_body(const struct provider_cfg *p,
                          const Genq__V1__ChatRequest *chat, char *errstr,
                          size_t errstr_size)
{
        const char *model = adapt_model(p, chat->model, errstr, errstr_size);
        json_t *body, *msgs;

        if (!model)
                return NULL;
        msgs = build_messages(chat, errstr, errstr_size);
        if (!msgs)
                return NULL;
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        if (adapt_jset_str(body, "model", model) == -1) {
                snprintf(errstr, errstr_size, "model is not valid UTF-8");
                goto err_free_body;
        }
        adapt_jset(body, "messages", msgs);
        msgs = NULL; /* owned by body */
        if (chat->max_tokens > 0)
                adapt_jset(body, "max_tokens", json_integer(chat->max_tokens));
        if (chat->temperature_opt_case ==
            GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE)
                adapt_jset(body, "temperature", json_real(chat->temperature));
        /* KIE chat streams unless told not to */
        adapt_jset(body, "stream", json_false());
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
        const Genq__V1__ChatRequest *chat;
        json_t *body;

        memset(req, 0, sizeof(*req));
        chat = adapt_chat_job(job, errstr, errstr_size);
        if (!chat)
                return -1;
        body = build_body(p, chat, errstr, errstr_size);
        if (!body)
                return -1;
        /* no Authorization line when there is no key (local servers) */
        if (adapt_url(req, p, "base_url", errstr, errstr_size, CHAT_PATH,
                      NULL) == -1 ||
            adapt_json_headers(req, "Authorization: Bearer ", key, 1, errstr,
                               errstr_size) == -1)
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

/*
 * Classifying error bodies (struct adapt_oaierr holds the fields the
 * tables look at, whatever the body's shape).
 */

enum marker {
        M_END = ADAPT_M_END,                   /**< table terminator */
        M_ANY = ADAPT_M_ANY,                   /**< status alone decides */
        M_CODE = ADAPT_OAI_CODE,               /**< code equals one of val */
        M_CODE_PREFIX = ADAPT_OAI_CODE_PREFIX, /**< code starts with one of
                                                    val */
        M_TYPE = ADAPT_OAI_TYPE,               /**< type equals one of val */
        M_MSG = ADAPT_OAI_MSG,                 /**< message contains one of
                                                    val (any case) */
        M_INFLIGHT = ADAPT_OAI_OWN,            /**< limit_source is val and
                                                    a Retry-After came */
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
static const struct adapt_rule openai_rules[] = {
        {400, M_CODE, "context_length_exceeded", FALLBACK},
        /* Not in the reference's table: a model this provider lacks is
         * the provider's limit, not the job's fault (Mistral
         * invalid_model, OpenRouter "is not a valid model ID"). */
        {400, M_TYPE, "invalid_model", FALLBACK},
        {400, M_MSG, "not a valid model", FALLBACK},
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
static const struct adapt_rule openrouter_rules[] = {
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
static const struct adapt_rule zhipu_rules[] = {
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
static const struct adapt_rule dashscope_rules[] = {
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

static int is_openrouter(const struct adapt_oaierr *eb)
{
        return eb->wrapped && eb->code_is_int;
}

static int is_zhipu(const struct adapt_oaierr *eb)
{
        return eb->wrapped && !eb->code_is_int && *eb->code &&
               strspn(eb->code, "0123456789") == strlen(eb->code);
}

static int is_dashscope(const struct adapt_oaierr *eb)
{
        return isupper((unsigned char)eb->code[0]) && !eb->code_is_int;
}

static int is_siliconflow(const struct adapt_oaierr *eb)
{
        return !eb->wrapped && eb->code_is_int;
}

static int is_any(const struct adapt_oaierr *eb)
{
        return 1;
}

/** Body shapes, tested in order; the last one always matches. */
static const struct family {
        const char *name;
        int (*is)(const struct adapt_oaierr *eb);
        const struct adapt_rule *rules;
} families[] = {
        {"openrouter", is_openrouter, openrouter_rules},
        {"zhipu", is_zhipu, zhipu_rules},
        {"dashscope", is_dashscope, dashscope_rules},
        {"siliconflow", is_siliconflow, adapt_siliconflow_rules},
        {"openai", is_any, openai_rules},
};

/** What a row looks at: the body's fields and the response's hint. */
struct errctx {
        const struct adapt_oaierr *eb;
        const struct provider_resp *resp;
};

static int marker_match(const struct adapt_rule *r, const void *ctx)
{
        const struct errctx *c = ctx;

        if (r->marker == M_INFLIGHT)
                return c->resp->retry_after_ms >= 0 &&
                       adapt_alt_eq(r->val, c->eb->limit_source);
        return adapt_oaierr_match(r, c->eb);
}

/** Walk \p rules. @returns the matching row, or NULL. */
static const struct adapt_rule *rules_match(const struct adapt_rule *rules,
                                            const struct adapt_oaierr *eb,
                                            const struct provider_resp *resp)
{
        struct errctx c = {eb, resp};

        return adapt_rules_match(rules, resp->status, marker_match, &c);
}

static const struct family *family_of(const struct adapt_oaierr *eb)
{
        size_t i = 0;

        while (!families[i].is(eb))
                i++;
        return &families[i];
}

/** Key-shaped tokens that never reach an errstr whole: "sk-…". */
static const char *const key_prefixes[] = {"sk-", "nvapi-", NULL};
static const struct adapt_redact keys = {
        .prefixes = key_prefixes,
        .chars = "-_*",
        .token_start = 1,
        .high_bytes = 1,
        .min_len = 6,
};

/** The row that classifies \p resp: its family's, else a shared one. */
static const struct adapt_rule *body_rule(const json_t *root,
                                          const struct adapt_oaierr *eb,
                                          const struct provider_resp *resp)
{
        const struct adapt_rule *r;

        if (!json_is_object(root))
                return adapt_nonjson_rule(resp->status);
        r = rules_match(family_of(eb)->rules, eb, resp);
        if (r)
                return r;
        return rules_match(openai_rules, eb, resp);
}

/** Classify a non-2xx response whose body may or may not be JSON. */
static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        struct adapt_oaierr eb;
        json_t *root;

        root = adapt_body_json(resp);
        adapt_oaierr_read(&eb, root, ADAPT_OAIERR_MSG);
        adapt_classify(resp, body_rule(root, &eb, resp), err);
        if (json_is_object(root))
                adapt_oaierr_errstr(&eb, resp->status, &keys, err);
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(eb.message);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

static const char *part_text(const json_t *part)
{
        return adapt_jstr(part, "text");
}

/** message.content as a new string: a string, text parts concatenated,
 *  or "" for null.  @returns NULL if it is something else. */
static char *content_text(const json_t *content)
{
        if (json_is_string(content))
                return xstrdup(json_string_value(content));
        if (!content || json_is_null(content))
                return xstrdup("");
        if (!json_is_array(content))
                return NULL;
        return adapt_join_text(content, part_text);
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
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "200: no choices in the response");
        text = content_text(
                json_object_get(json_object_get(choice, "message"), "content"));
        if (!text)
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "200: message.content is not text");
        usage = json_object_get(root, "usage");
        res->text = text;
        res->finish_reason = xstrdup(adapt_jstr(choice, "finish_reason"));
        res->model = xstrdup(adapt_jstr(root, "model"));
        res->input_tokens = adapt_jint(usage, "prompt_tokens");
        res->output_tokens = adapt_jint(usage, "completion_tokens");
        if (json_is_object(usage))
                res->usage_json = adapt_jdump(usage, JSON_COMPACT);
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

/** A 2xx response: a completion, or an error inside a 200 (OpenRouter). */
static enum outcome parse_ok(const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err, adapt_error_fn *error)
{
        struct adapt_oaierr eb;
        json_t *root = adapt_ok_json(resp);

        if (!root)
                return provider_classify_generic(resp, err);
        err->outcome = OUTCOME_SUCCESS;
        if (json_object_get(root, "error") &&
            !json_is_null(json_object_get(root, "error"))) {
                /* generation failed after it started */
                adapt_oaierr_read(&eb, root, ADAPT_OAIERR_MSG);
                adapt_oaierr_errstr(&eb, resp->status, &keys, err);
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
        return adapt_parse(job, resp, res, err, parse_ok, parse_error);
}

const struct provider_ops provider_openai_chat_ops = {
        .name = "openai_chat",
        .kind = GENQ__V1__KIND__KIND_CHAT,
        .flags = 0,
        .build = build,
        .parse = parse,
};
