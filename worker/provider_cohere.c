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

#include "adapt.h"
#include "xmem.h"

#define CHAT_PATH "/chat"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))

/*
 * Building the request.
 */

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
                adapt_jset(m, "role", json_string(role));
                if (adapt_jset_str(m, "content", cm->content) == -1) {
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
        adapt_jset(body, "messages", msgs);
        if (adapt_jset_str(body, "model", model) == -1) {
                snprintf(errstr, errstr_size, "model is not valid UTF-8");
                goto err_free_body;
        }
        adapt_jset(body, "stream", json_false());
        if (chat->max_tokens > 0)
                adapt_jset(body, "max_tokens", json_integer(chat->max_tokens));
        if (chat->temperature_opt_case ==
            GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE)
                adapt_jset(body, "temperature", json_real(chat->temperature));
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
        json_t *body;

        memset(req, 0, sizeof(*req));
        chat = adapt_chat_job(job, errstr, errstr_size);
        if (!chat)
                return -1;
        body = build_body(p, chat, errstr, errstr_size);
        if (!body)
                return -1;
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
 * Classifying error bodies.
 */

enum marker {
        M_END = ADAPT_M_END, /**< table terminator */
        M_ANY = ADAPT_M_ANY, /**< status alone decides */
        M_MSG = ADAPT_M_OWN, /**< message contains one of val (any case) */
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
 * with a backoff.  A body that is not JSON: adapt_nonjson_rule().
 */
static const struct adapt_rule rules[] = {
        {400, M_ANY, NULL, FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {404, M_MSG, "model", FALLBACK},
        {429, M_MSG, "/ month|per month", QUOTA},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct adapt_rule *r;
        const char *msg;
        json_t *root;

        root = adapt_body_json(resp);
        msg = adapt_jstr(root, "message");
        if (json_is_object(root))
                r = adapt_rules_match(rules, resp->status, adapt_match_msg,
                                      msg);
        else
                r = adapt_nonjson_rule(resp->status);
        adapt_classify(resp, r, err);
        if (json_is_object(root))
                adapt_errstr(err, NULL, "%ld: %s", resp->status,
                             msg ? msg : "(no message)");
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
        const char *type = adapt_jstr(b, "type");

        return type && !strcmp(type, "text") ? adapt_jstr(b, "text") : NULL;
}

/** message.content as a new string: a string, or its text blocks
 *  joined.  @returns NULL if it is neither. */
static char *content_text(const json_t *content)
{
        if (json_is_string(content))
                return xstrdup(json_string_value(content));
        if (!json_is_array(content))
                return NULL;
        return adapt_join_text(content, block_text);
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
        if (!text)
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "200: no message content in the response");
        res->text = text;
        res->finish_reason = xstrdup(adapt_jstr(root, "finish_reason"));
        res->input_tokens = adapt_jint(billed, "input_tokens");
        res->output_tokens = adapt_jint(billed, "output_tokens");
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

        if (!root)
                return provider_classify_generic(resp, err);
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
        return adapt_parse(job, resp, res, err, parse_ok, parse_error);
}

const struct provider_ops provider_cohere_ops = {
        .name = "cohere_chat",
        .kind = GENQ__V1__KIND__KIND_CHAT,
        .flags = 0,
        .build = build,
        .parse = parse,
};
