/**
 * @file fam_openai.c
 * @brief Family "openai": POST <prefix>/v1/chat/completions as in section
 *        1.1 of provider-api-reference.md (OpenAI, Groq, Together, ...).
 *
 * DETERMINISTIC ANSWERS (tests compute these independently; keep in step
 * with README.md)
 *
 *   text(content)  = content if it is a string; if it is an array of parts,
 *                    the string "text" members of its parts joined by "\n"
 *                    (other parts contribute nothing); "" if null/absent.
 *   words(s)       = number of maximal runs of non-whitespace bytes in s
 *                    (whitespace = space \t \n \v \f \r).
 *   content        = "fake reply: " + text(last message whose role is
 *                    "user"), cut to its first 40 bytes (backing off to a
 *                    UTF-8 character boundary); "fake reply: " if no user
 *                    message.  max_tokens never shortens the content.
 *   prompt_tokens  = sum over all messages of (words(text(content)) + 4)
 *   completion_tokens = words(content); with limit = max_completion_tokens
 *                    if it is an integer > 0, else max_tokens if it is an
 *                    integer > 0: if completion_tokens > limit then
 *                    completion_tokens = limit and finish_reason = "length",
 *                    else finish_reason = "stop".
 *   total_tokens   = prompt_tokens + completion_tokens
 *   id             = "chatcmpl-<n>", n = the provider's 1-based request
 *                    number since start or /_fake/reset (every request to
 *                    /<provider>/... counts, failed ones too).
 *
 * Example: [{"role":"system","content":"You are terse."},
 *           {"role":"user","content":"Say hello"}]
 *   content "fake reply: Say hello", prompt_tokens (3+4)+(2+4) = 13,
 *   completion_tokens 4, total_tokens 17, finish_reason "stop".
 *
 * With "stream": true the same content is sent as SSE chat.completion.chunk
 * events: a role chunk, one chunk per word (each piece keeps the whitespace
 * after its word, so the pieces concatenate to the content), a chunk with
 * the finish_reason, a usage chunk (choices []) only if
 * stream_options.include_usage is true, then "data: [DONE]".
 *
 * Checks, in the order the real API makes them: the key (401
 * invalid_api_key), the JSON body, "model", "messages" and each message
 * (400 invalid_request_error with "param" naming the member).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fakeprov.h"
#include "xmem.h"

#define REPLY_PREFIX "fake reply: "
#define REPLY_MAX_TEXT 40
#define RL_LIMIT_REQUESTS 5000
#define RL_LIMIT_TOKENS 160000

/* One chat completion being answered. */
struct chat {
        const char *model;              /**< borrowed from the request */
        uint64_t seq;                   /**< provider request number */
        json_int_t created;             /**< unix seconds */
        char reply[sizeof(REPLY_PREFIX) + REPLY_MAX_TEXT]; /**< content */
        json_int_t prompt_tokens;
        json_int_t completion_tokens;
        const char *finish;             /**< "stop" | "length" */
        int include_usage;              /**< stream_options.include_usage */
};

/* ---- error envelope --------------------------------------------------- */

static void request_id(const struct fp_call *call, struct fp_resp *resp)
{
        char id[48];

        snprintf(id, sizeof(id), "req_fake%024llx",
                 (unsigned long long)call->seq);
        fpresp_header(resp, "x-request-id", id);
}

/* {"error":{"message","type","param","code"}}; NULL param/code -> null. */
static void oai_error(const struct fp_call *call, struct fp_resp *resp,
                      unsigned status, const char *msg, const char *type,
                      const char *param, const char *code)
{
        json_t *j = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error",
                              "message", msg, "type", type, "param", param,
                              "code", code);

        if (!j)
                fatal("fam_openai: json_pack error");
        fpresp_json(resp, status, j, JSON_INDENT(2));
        request_id(call, resp);
}

/* "sk-****wxyz"-style mask: never the whole key, printable ASCII only. */
static void mask_key(const char *key, char *out, size_t outsz)
{
        size_t i, len = strlen(key);
        char head[4], tail[5];

        if (len < 12) {
                snprintf(out, outsz, "****");
                return;
        }
        for (i = 0; i < 3; i++)
                head[i] = isprint((unsigned char)key[i]) ? key[i] : '?';
        for (i = 0; i < 4; i++)
                tail[i] = isprint((unsigned char)key[len - 4 + i])
                                  ? key[len - 4 + i]
                                  : '?';
        head[3] = tail[4] = '\0';
        snprintf(out, outsz, "%s****%s", head, tail);
}

static void err_invalid_key(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[256], masked[16];

        if (!call->key) {
                oai_error(call, resp, 401,
                          "You didn't provide an API key. You need to "
                          "provide your API key in an Authorization header "
                          "using Bearer auth (i.e. Authorization: Bearer "
                          "YOUR_KEY). You can obtain an API key from "
                          "https://platform.openai.com/account/api-keys.",
                          "invalid_request_error", NULL, "invalid_api_key");
                return;
        }
        mask_key(call->key, masked, sizeof(masked));
        snprintf(msg, sizeof(msg),
                 "Incorrect API key provided: %s. You can find your API key "
                 "at https://platform.openai.com/account/api-keys.",
                 masked);
        oai_error(call, resp, 401, msg, "invalid_request_error", NULL,
                  "invalid_api_key");
}

static void ratelimit_headers(struct fp_resp *resp, uint64_t seq,
                              json_int_t tokens)
{
        char v[32];

        fpresp_header(resp, "x-ratelimit-limit-requests", "5000");
        fpresp_header(resp, "x-ratelimit-limit-tokens", "160000");
        snprintf(v, sizeof(v), "%llu",
                 (unsigned long long)(RL_LIMIT_REQUESTS - 1 -
                                      (seq ? seq - 1 : 0) % RL_LIMIT_REQUESTS));
        fpresp_header(resp, "x-ratelimit-remaining-requests", v);
        snprintf(v, sizeof(v), "%lld",
                 (long long)(tokens < RL_LIMIT_TOKENS ? RL_LIMIT_TOKENS - tokens
                                                      : 0));
        fpresp_header(resp, "x-ratelimit-remaining-tokens", v);
        fpresp_header(resp, "x-ratelimit-reset-requests", "12ms");
        fpresp_header(resp, "x-ratelimit-reset-tokens", "9ms");
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        oai_error(call, resp, 429,
                  "Rate limit reached for gpt-4o-mini in organization "
                  "org-xxxxxxxx on requests per min (RPM): Limit 3, Used 3, "
                  "Requested 1. Please try again in 20s. Visit "
                  "https://platform.openai.com/account/rate-limits to learn "
                  "more.",
                  "requests", NULL, "rate_limit_exceeded");
        ratelimit_headers(resp, RL_LIMIT_REQUESTS, 0);
        fpresp_header(resp, "retry-after", "1");
}

static void err_quota(const struct fp_call *call, struct fp_resp *resp)
{
        oai_error(call, resp, 429,
                  "You exceeded your current quota, please check your plan "
                  "and billing details. For more information on this error, "
                  "read the docs: https://platform.openai.com/docs/guides/"
                  "error-codes/api-errors.",
                  "insufficient_quota", NULL, "insufficient_quota");
}

static void err_server(const struct fp_call *call, struct fp_resp *resp)
{
        oai_error(call, resp, 500,
                  "The server had an error while processing your request. "
                  "Sorry about that!",
                  "server_error", NULL, "server_error");
}

static void err_overloaded(const struct fp_call *call, struct fp_resp *resp)
{
        oai_error(call, resp, 503,
                  "The engine is currently overloaded, please try again "
                  "later.",
                  "service_unavailable_error", NULL, "server_is_overloaded");
}

static void err_context_length(const struct fp_call *call,
                               struct fp_resp *resp)
{
        oai_error(call, resp, 400,
                  "This model's maximum context length is 128000 tokens. "
                  "However, your messages resulted in 130000 tokens. Please "
                  "reduce the length of the messages.",
                  "invalid_request_error", "messages",
                  "context_length_exceeded");
}

/* The requested model if the body has one, else a placeholder. */
static const char *req_model(const struct fp_call *call)
{
        const char *m = json_string_value(json_object_get(call->json,
                                                          "model"));

        return m && *m && strlen(m) < 200 ? m : "gpt-4o-mini";
}

static void err_model_not_found(const struct fp_call *call,
                                struct fp_resp *resp)
{
        char msg[300];

        snprintf(msg, sizeof(msg),
                 "The model `%s` does not exist or you do not have access "
                 "to it.",
                 req_model(call));
        oai_error(call, resp, 404, msg, "invalid_request_error", NULL,
                  "model_not_found");
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[300];

        snprintf(msg, sizeof(msg), "Invalid URL (%s %.200s)", call->method,
                 call->path);
        oai_error(call, resp, 404, msg, "invalid_request_error", NULL, NULL);
}

/* ---- request checks --------------------------------------------------- */

static const char *const roles[] = {"system", "user", "assistant", "tool",
                                    "developer"};

static const char *type_name(const json_t *v)
{
        static const char *const names[] = {
                [JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array",
                [JSON_STRING] = "a string",  [JSON_INTEGER] = "an integer",
                [JSON_REAL] = "a decimal",   [JSON_TRUE] = "a boolean",
                [JSON_FALSE] = "a boolean",  [JSON_NULL] = "null",
        };

        return names[json_typeof(v)];
}

static int bad_param(const struct fp_call *call, struct fp_resp *resp,
                     const char *param, const char *code, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

/* A 400 invalid_request_error naming \p param. @returns -1. */
static int bad_param(const struct fp_call *call, struct fp_resp *resp,
                     const char *param, const char *code, const char *fmt,
                     ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        oai_error(call, resp, 400, msg, "invalid_request_error", param,
                  code);
        return -1;
}

static int check_role(const struct fp_call *call, struct fp_resp *resp,
                      const json_t *role, const char *param)
{
        size_t i;

        if (!role)
                return bad_param(call, resp, param,
                                 "missing_required_parameter",
                                 "Missing required parameter: '%s'.", param);
        if (!json_is_string(role))
                return bad_param(call, resp, param, "invalid_type",
                                 "Invalid type for '%s': expected a string, "
                                 "but got %s instead.",
                                 param, type_name(role));
        for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
                if (!strcmp(json_string_value(role), roles[i]))
                        return 0;
        return bad_param(call, resp, param, "invalid_value",
                         "Invalid value: '%.100s'. Supported values are: "
                         "'system', 'assistant', 'user', 'tool', and "
                         "'developer'.",
                         json_string_value(role));
}

/* Content: a string, an array of part objects, or (assistant) null. */
static int check_content(const struct fp_call *call, struct fp_resp *resp,
                         const json_t *content, int is_assistant,
                         const char *param)
{
        size_t i;
        json_t *part;

        if ((!content || json_is_null(content)) && is_assistant)
                return 0;
        if (!content)
                return bad_param(call, resp, param,
                                 "missing_required_parameter",
                                 "Missing required parameter: '%s'.", param);
        if (json_is_string(content))
                return 0;
        if (json_is_array(content)) {
                json_array_foreach (content, i, part)
                        if (!json_is_object(part))
                                break;
                if (i == json_array_size(content))
                        return 0;
        }
        return bad_param(call, resp, param, "invalid_type",
                         "Invalid type for '%s': expected one of a string or "
                         "array of objects, but got %s instead.",
                         param, type_name(content));
}

static int check_message(const struct fp_call *call, struct fp_resp *resp,
                         const json_t *m, size_t idx)
{
        char param[64];
        const json_t *role = json_object_get(m, "role");

        snprintf(param, sizeof(param), "messages[%zu]", idx);
        if (!json_is_object(m))
                return bad_param(call, resp, param, "invalid_type",
                                 "Invalid type for '%s': expected an object, "
                                 "but got %s instead.",
                                 param, type_name(m));
        snprintf(param, sizeof(param), "messages[%zu].role", idx);
        if (check_role(call, resp, role, param) == -1)
                return -1;
        snprintf(param, sizeof(param), "messages[%zu].content", idx);
        return check_content(call, resp, json_object_get(m, "content"),
                             !strcmp(json_string_value(role), "assistant"),
                             param);
}

static int check_messages(const struct fp_call *call, struct fp_resp *resp,
                          const json_t *msgs)
{
        size_t i;
        json_t *m;

        if (!msgs)
                return bad_param(call, resp, "messages",
                                 "missing_required_parameter",
                                 "Missing required parameter: 'messages'.");
        if (!json_is_array(msgs))
                return bad_param(call, resp, "messages", "invalid_type",
                                 "Invalid type for '%s': expected an array, "
                                 "but got %s instead.",
                                 "messages", type_name(msgs));
        if (!json_array_size(msgs))
                return bad_param(call, resp, "messages", "empty_array",
                                 "Invalid '%s': empty array. Expected an "
                                 "array with minimum length 1, but got an "
                                 "empty array instead.",
                                 "messages");
        json_array_foreach (msgs, i, m)
                if (check_message(call, resp, m, i) == -1)
                        return -1;
        return 0;
}

static int check_request(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *model = json_object_get(call->json, "model");

        if (!json_is_object(call->json))
                return bad_param(call, resp, NULL, NULL,
                                 "We could not parse the JSON body of your "
                                 "request. (HINT: This likely means you "
                                 "aren't using your HTTP library correctly. "
                                 "The OpenAI API expects a JSON payload, but "
                                 "what was sent was not valid JSON.)");
        if (!model)
                return bad_param(call, resp, "model",
                                 "missing_required_parameter",
                                 "you must provide a model parameter");
        if (!json_is_string(model))
                return bad_param(call, resp, "model", "invalid_type",
                                 "Invalid type for 'model': expected a "
                                 "string, but got %s instead.",
                                 type_name(model));
        if (!json_string_length(model))
                return bad_param(call, resp, "model", "empty_string",
                                 "Invalid 'model': empty string. Expected a "
                                 "string with minimum length 1, but got an "
                                 "empty string instead.");
        return check_messages(call, resp, json_object_get(call->json,
                                                          "messages"));
}

/* ---- deterministic answer --------------------------------------------- */

static int is_ws(char c)
{
        return c == ' ' || (c >= '\t' && c <= '\r');
}

static json_int_t count_words(const char *s, size_t len)
{
        json_int_t n = 0;
        int in_word = 0;
        size_t i;

        for (i = 0; i < len; i++) {
                if (!is_ws(s[i]) && !in_word)
                        n++;
                in_word = !is_ws(s[i]);
        }
        return n;
}

static json_int_t content_words(const json_t *content)
{
        json_int_t n = 0;
        json_t *part, *text;
        size_t i;

        if (json_is_string(content))
                return count_words(json_string_value(content),
                                   json_string_length(content));
        json_array_foreach (content, i, part) {
                text = json_object_get(part, "text");
                if (json_is_string(text))
                        n += count_words(json_string_value(text),
                                         json_string_length(text));
        }
        return n;
}

/* Append up to (outsz - 1 - strlen(out)) bytes of text(content) to out. */
static void content_text(const json_t *content, char *out, size_t outsz)
{
        size_t i, used = strlen(out);
        const char *sep = "";
        json_t *part, *text;

        if (json_is_string(content)) {
                snprintf(out + used, outsz - used, "%s",
                         json_string_value(content));
                return;
        }
        json_array_foreach (content, i, part) {
                text = json_object_get(part, "text");
                if (!json_is_string(text))
                        continue;
                used = strlen(out);
                snprintf(out + used, outsz - used, "%s%s", sep,
                         json_string_value(text));
                sep = "\n";
        }
}

/* reply = prefix + first 40 bytes (UTF-8 safe) of the last user text. */
static void make_reply(struct chat *c, const json_t *msgs)
{
        const json_t *last = NULL, *m;
        char text[REPLY_MAX_TEXT * 2 + 8] = "";
        size_t i, n;

        json_array_foreach (msgs, i, m)
                if (!strcmp(json_string_value(json_object_get(m, "role")),
                            "user"))
                        last = m;
        if (last)
                content_text(json_object_get(last, "content"), text,
                             sizeof(text));
        n = strlen(text);
        if (n > REPLY_MAX_TEXT) {
                n = REPLY_MAX_TEXT;
                while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
                        n--;
        }
        snprintf(c->reply, sizeof(c->reply), "%s%.*s", REPLY_PREFIX, (int)n,
                 text);
}

static json_int_t token_limit(const json_t *req)
{
        const json_t *v = json_object_get(req, "max_completion_tokens");

        if (!json_is_integer(v) || json_integer_value(v) <= 0)
                v = json_object_get(req, "max_tokens");
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
                return 0;
        return json_integer_value(v);
}

static void chat_compute(struct chat *c, const struct fp_call *call)
{
        const json_t *msgs = json_object_get(call->json, "messages");
        json_int_t limit = token_limit(call->json);
        const json_t *m;
        size_t i;

        c->model = json_string_value(json_object_get(call->json, "model"));
        c->seq = call->seq;
        c->created = (json_int_t)time(NULL);
        make_reply(c, msgs);
        c->prompt_tokens = 0;
        json_array_foreach (msgs, i, m)
                c->prompt_tokens +=
                        content_words(json_object_get(m, "content")) + 4;
        c->completion_tokens = count_words(c->reply, strlen(c->reply));
        c->finish = "stop";
        if (limit && c->completion_tokens > limit) {
                c->completion_tokens = limit;
                c->finish = "length";
        }
        c->include_usage = json_is_true(json_object_get(
                json_object_get(call->json, "stream_options"),
                "include_usage"));
}

static json_t *usage_json(const struct chat *c)
{
        return json_pack("{s:I, s:I, s:I, s:{s:i, s:i}, s:{s:i, s:i, s:i, "
                         "s:i}}",
                         "prompt_tokens", c->prompt_tokens,
                         "completion_tokens", c->completion_tokens,
                         "total_tokens",
                         c->prompt_tokens + c->completion_tokens,
                         "prompt_tokens_details", "cached_tokens", 0,
                         "audio_tokens", 0, "completion_tokens_details",
                         "reasoning_tokens", 0, "audio_tokens", 0,
                         "accepted_prediction_tokens", 0,
                         "rejected_prediction_tokens", 0);
}

static void chat_reply(const struct chat *c, struct fp_resp *resp)
{
        char id[40];
        json_t *j;

        snprintf(id, sizeof(id), "chatcmpl-%llu", (unsigned long long)c->seq);
        j = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s, s:n}, "
                      "s:n, s:s}], s:o, s:s, s:s}",
                      "id", id, "object", "chat.completion", "created",
                      c->created, "model", c->model, "choices", "index", 0,
                      "message", "role", "assistant", "content", c->reply,
                      "refusal", "logprobs", "finish_reason", c->finish,
                      "usage", usage_json(c), "service_tier", "default",
                      "system_fingerprint", "fp_fakeprov");
        if (!j)
                fatal("fam_openai: json_pack reply");
        fpresp_json(resp, 200, j, JSON_COMPACT);
}

/* ---- SSE -------------------------------------------------------------- */

/* One "data: {chunk}\n\n" event; choices holds \p choice if not NULL. */
static void sse_chunk(const struct chat *c, struct fp_resp *resp,
                      json_t *choice, json_t *usage)
{
        char id[40];
        json_t *j;
        char *s;

        snprintf(id, sizeof(id), "chatcmpl-%llu", (unsigned long long)c->seq);
        j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:[]}", "id", id,
                      "object", "chat.completion.chunk", "created",
                      c->created, "model", c->model, "service_tier",
                      "default", "system_fingerprint", "fp_fakeprov",
                      "choices");
        if (!j)
                fatal("fam_openai: json_pack chunk");
        if (choice)
                json_array_append_new(json_object_get(j, "choices"), choice);
        if (c->include_usage)
                json_object_set_new(j, "usage", usage ? usage : json_null());
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!s)
                fatal("fam_openai: json_dumps chunk");
        fpresp_append(resp, "data: ", 6);
        fpresp_append(resp, s, strlen(s));
        fpresp_append(resp, "\n\n", 2);
        free(s);
}

static json_t *delta_choice(json_t *delta, const char *finish)
{
        return json_pack("{s:i, s:o, s:n, s:s?}", "index", 0, "delta", delta,
                         "logprobs", "finish_reason", finish);
}

static void chat_stream(const struct chat *c, struct fp_resp *resp)
{
        const char *p = c->reply;
        size_t n;

        fpresp_set_owned(resp, 200, NULL, 0);
        fpresp_content_type(resp, "text/event-stream; charset=utf-8");
        sse_chunk(c, resp,
                  delta_choice(json_pack("{s:s, s:s, s:n}", "role",
                                         "assistant", "content", "",
                                         "refusal"),
                               NULL),
                  NULL);
        while (*p) {
                n = strcspn(p, " \t\n\v\f\r");
                n += strspn(p + n, " \t\n\v\f\r");
                sse_chunk(c, resp,
                          delta_choice(json_pack("{s:s%}", "content", p, n),
                                       NULL),
                          NULL);
                p += n;
        }
        sse_chunk(c, resp, delta_choice(json_object(), c->finish), NULL);
        if (c->include_usage)
                sse_chunk(c, resp, NULL, usage_json(c));
        fpresp_append(resp, "data: [DONE]\n\n", 14);
}

/* ---- routes ----------------------------------------------------------- */

static void chat_completions(const struct fp_call *call, struct fp_resp *resp)
{
        struct chat c;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (check_request(call, resp) == -1)
                return;
        chat_compute(&c, call);
        if (json_is_true(json_object_get(call->json, "stream")))
                chat_stream(&c, resp);
        else
                chat_reply(&c, resp);
        ratelimit_headers(resp, call->seq,
                          c.prompt_tokens + c.completion_tokens);
        request_id(call, resp);
}

/* Authorization: Bearer <key> */
static const char *get_key(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Authorization");

        if (!h || strncasecmp(h, "Bearer ", 7))
                return NULL;
        h += 7;
        while (*h == ' ')
                h++;
        return *h ? h : NULL;
}

static const struct fp_route routes[] = {
        {"POST", "/v1/chat/completions", chat_completions},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"rate_limit", err_rate_limit},
        {"insufficient_quota", err_quota},
        {"server_error", err_server},
        {"overloaded", err_overloaded},
        {"invalid_key", err_invalid_key},
        {"context_length", err_context_length},
        {"model_not_found", err_model_not_found},
        {NULL, NULL},
};

static const char *const defaults[] = {
        "openai", "groq", "together", "deepinfra", "fireworks", "nvidia",
        "hunyuan", "perplexity", "ai21", "llamaapi", NULL,
};

const struct fp_family fam_openai = {
        .name = "openai",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
