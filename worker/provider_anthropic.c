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
 * matching row wins; a body that is not JSON has the shared status-only
 * rows (adapt_nonjson_rule(); 529 is retry_later by status); then
 * provider_classify_generic() decides by status.  Retry hints come from
 * the retry-after header only (Anthropic sends no body hint).
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
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

/** Headers; no x-api-key line when there is no key (local proxies). */
static int build_headers(const char *key, struct provider_req *req,
                         char *errstr, size_t errstr_size)
{
        if (adapt_auth(req, "x-api-key: ", key, errstr, errstr_size) == -1)
                return -1;
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
        adapt_jset(m, "role", json_string(role));
        return adapt_jset_str(m, "content", content);
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
        if (sys && adapt_jset_str(body, "system", sys) == -1) {
                snprintf(errstr, errstr_size,
                         "system message is not valid UTF-8");
                goto out_free;
        }
        adapt_jset(body, "messages", arr);
        arr = NULL; /* owned by body */
        r = 0;

out_free:
        free(sys);
        json_decref(arr);
        return r;
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
                adapt_jset(body, "max_tokens", json_integer(budget + max));
}

static json_t *build_body(const struct provider_cfg *p,
                          const Genq__V1__ChatRequest *chat, char *errstr,
                          size_t errstr_size)
{
        const char *model = adapt_model(p, chat->model, errstr, errstr_size);
        double temp;
        json_t *body;

        if (!model)
                return NULL;
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        if (adapt_jset_str(body, "model", model) == -1) {
                snprintf(errstr, errstr_size, "model is not valid UTF-8");
                goto err_free_body;
        }
        adapt_jset(body, "max_tokens",
                   json_integer(chat->max_tokens > 0 ? chat->max_tokens
                                                     : DEFAULT_MAX_TOKENS));
        if (add_messages(body, chat, errstr, errstr_size) == -1)
                goto err_free_body;
        if (chat->temperature_opt_case ==
            GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE) {
                temp = chat->temperature;
                adapt_jset(body, "temperature",
                           json_real(temp > MAX_TEMPERATURE ? MAX_TEMPERATURE
                                                            : temp));
        }
        /* extra_body as defaults, nested objects key by key */
        if (adapt_merge_obj(p, "extra_body", p->extra_body, body,
                            ADAPT_MERGE_DEEP, errstr, errstr_size) == -1)
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
        const Genq__V1__ChatRequest *chat;
        json_t *body;

        memset(req, 0, sizeof(*req));
        chat = adapt_chat_job(job, errstr, errstr_size);
        if (!chat)
                return -1;
        body = build_body(p, chat, errstr, errstr_size);
        if (!body)
                return -1;
        if (adapt_url(req, p, "base_url", errstr, errstr_size, MESSAGES_PATH,
                      NULL) == -1 ||
            build_headers(key, req, errstr, errstr_size) == -1)
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
 * Classifying error bodies.
 */

/** The fields of an error body the rules look at (borrowed). */
struct errbody {
        const char *type;       /**< error.type */
        const char *message;    /**< error.message */
        const char *error_code; /**< error.details.error_code */
};

enum marker {
        M_END = ADAPT_M_END, /**< table terminator */
        M_ANY = ADAPT_M_ANY, /**< status alone decides */
        M_TYPE = ADAPT_M_OWN, /**< error.type equals one of val */
        M_MSG,     /**< error.message contains one of val (any case) */
        M_DETAIL,  /**< error.details.error_code equals one of val */
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
static const struct adapt_rule rules[] = {
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

static int marker_match(const struct adapt_rule *r, const void *ctx)
{
        const struct errbody *eb = ctx;

        switch (r->marker) {
        case M_TYPE:
                return adapt_alt_eq(r->val, eb->type);
        case M_MSG:
                return adapt_alt_has(r->val, eb->message);
        case M_DETAIL:
                return adapt_alt_eq(r->val, eb->error_code);
        }
        return 0;
}

/** Fill \p eb from a parsed body (any JSON value, or NULL). */
static void errbody_read(struct errbody *eb, const json_t *root)
{
        const json_t *e = json_object_get(root, "error");

        memset(eb, 0, sizeof(*eb));
        if (!json_is_object(e)) {
                eb->message = adapt_jstr(root, "message");
                return;
        }
        eb->type = adapt_jstr(e, "type");
        eb->message = adapt_jstr(e, "message");
        eb->error_code =
                adapt_jstr(json_object_get(e, "details"), "error_code");
}

/** Anthropic keys, "sk-ant-...", shortened to "sk-ant-…". */
static const char *const key_prefixes[] = {"sk-ant-", NULL};
static const struct adapt_redact keys = {
        .prefixes = key_prefixes,
        .chars = "-_",
        .min_len = 3,
};

/**
 * Classify an error body (a non-2xx answer, or an error event in a 200).
 * @returns the outcome, also in err->outcome.
 */
static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct adapt_rule *r;
        struct errbody eb;
        json_t *root;

        root = adapt_body_json(resp);
        errbody_read(&eb, root);
        if (json_is_object(root))
                r = adapt_rules_match(rules, resp->status, marker_match, &eb);
        else
                r = adapt_nonjson_rule(resp->status);
        adapt_classify(resp, r, err);
        if (!r && resp->status >= 200 && resp->status < 300)
                err->outcome = OUTCOME_RETRY_LATER;
        if (json_is_object(root))
                /* "<status> <type>: <message>" */
                adapt_errstr(err, &keys, "%ld%s%s: %s", resp->status,
                             eb.type ? " " : "", eb.type ? eb.type : "",
                             eb.message ? eb.message : "(no message)");
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

/** The text of \p b if it is a "text" block, else NULL (borrowed). */
static const char *block_text(const json_t *b)
{
        const char *type = adapt_jstr(b, "type");

        return type && !strcmp(type, "text") ? adapt_jstr(b, "text") : NULL;
}

/** Fill \p res from a parsed message object. */
static enum outcome parse_message(const json_t *root,
                                  struct provider_result *res,
                                  struct provider_err *err)
{
        const json_t *usage = json_object_get(root, "usage");
        const json_t *content = json_object_get(root, "content");

        /* the text blocks joined; thinking and tool_use blocks skipped */
        if (!json_is_array(content))
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "200: no content array in the response");
        res->text = adapt_join_text(content, block_text);
        res->finish_reason = xstrdup(adapt_jstr(root, "stop_reason"));
        res->model = xstrdup(adapt_jstr(root, "model"));
        res->input_tokens = adapt_jint(usage, "input_tokens");
        res->output_tokens = adapt_jint(usage, "output_tokens");
        if (json_is_object(usage))
                res->usage_json = adapt_jdump(usage, JSON_COMPACT);
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

/** A 2xx answer: a message, or an error event (type "error"). */
static enum outcome parse_ok(const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err, adapt_error_fn *error)
{
        json_t *root = adapt_ok_json(resp);
        const char *type;

        if (!root)
                return provider_classify_generic(resp, err);
        type = adapt_jstr(root, "type");
        if (type && !strcmp(type, "error"))
                error(resp, err);
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
        return adapt_parse(job, resp, res, err, parse_ok, parse_error);
}

const struct provider_ops provider_anthropic_ops = {
        .name = "anthropic_messages",
        .kind = GENQ__V1__KIND__KIND_CHAT,
        .flags = 0,
        .build = build,
        .parse = parse,
};
