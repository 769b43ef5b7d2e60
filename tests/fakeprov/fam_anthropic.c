/**
 * @file fam_anthropic.c
 * @brief Family "anthropic": POST <prefix>/v1/messages as in section 2 of
 *        provider-api-reference.md (provider "anthropic"; a worker uses
 *        base URL http://127.0.0.1:PORT/anthropic/v1).
 *
 * DETERMINISTIC ANSWERS (the formulas of fam_openai.c, so one conversation
 * costs the same tokens on both families)
 *
 *   text(content)  = content if it is a string; if it is an array of
 *                    blocks, the "text" members of its "text" blocks joined
 *                    by "\n"; "" otherwise.  The same for "system".
 *   words(s)       = number of maximal runs of non-whitespace bytes.
 *   reply          = "fake reply: " + text(last "user" message), cut to its
 *                    first 40 bytes (backing off to a UTF-8 boundary).
 *   input_tokens   = sum over messages of (words(text(content)) + 4),
 *                    plus words(text(system)) + 4 if "system" is present.
 *   output_tokens  = words(reply), plus 2 with thinking enabled (the
 *                    thinking block "fake thinking"); if it exceeds
 *                    max_tokens it is max_tokens and stop_reason is
 *                    "max_tokens", else "end_turn" (the text itself is
 *                    never shortened).
 *   id             = "msg_fake<n>", n = the provider's request number.
 *   content        = [{"type":"text","text":reply}], preceded with
 *                    thinking enabled by {"type":"thinking","thinking":
 *                    "fake thinking","signature":"fakesig<n>"}.
 *   usage          = {input_tokens, output_tokens,
 *                     cache_creation_input_tokens: 0,
 *                     cache_read_input_tokens: 0}
 *
 * Example: system "You are terse." + user "Say hello" -> "fake reply: Say
 * hello", input 7 + 6 = 13, output 4, stop_reason "end_turn".
 *
 * Every answer carries request-id: req_fake<n> and the anthropic-ratelimit-*
 * headers: requests limit 1000, remaining 1000 - 1 - (n-1) mod 1000; tokens
 * limit 96000, input-tokens 80000, output-tokens 16000, remaining = limit -
 * this call's tokens; resets one minute ahead (RFC 3339, UTC).
 *
 * CHECKS, in order (all errors {"type":"error","error":{"type","message"},
 * "request_id"}):
 *   x-api-key missing or wrong -> 401 authentication_error;
 *   anthropic-version header missing -> 400;
 *   body not a JSON object; a top-level member the API does not know
 *   ("<name>: Extra inputs are not permitted"); model, max_tokens (integer
 *   >= 1), messages (non-empty array; role "user" or "assistant", and the
 *   trap: role "system" -> 400 'Unexpected role "system"...'; content a
 *   non-empty string or an array of blocks); system (string or array);
 *   temperature (0..1); thinking (type enabled|disabled; budget_tokens >=
 *   1024 and < max_tokens; temperature other than 1 refused).  All -> 400
 *   invalid_request_error.
 *
 * NAMED ERRORS (section 2 / section 12 rows): invalid_key 401,
 * invalid_request 400, prompt_too_long 400, credit_balance 400 (verbatim
 * low-credit body), usage_limit 400 (workspace limit), billing 402,
 * permission 403, not_found 404, request_too_large 413, rate_limit 429
 * (retry-after: 1, rate-limit headers at 0), spend_limit 429
 * (details.error_code enforced_spend_limit_reached, no retry-after),
 * api_error 500, overloaded 529 (verbatim).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fakeprov.h"
#include "xmem.h"

#define REPLY_PREFIX "fake reply: "
#define REPLY_MAX_TEXT 40
#define THINKING_TEXT "fake thinking"
#define THINKING_TOKENS 2
#define MIN_THINKING_BUDGET 1024
#define RL_REQUESTS 1000
#define RL_TOKENS 96000
#define RL_INPUT 80000
#define RL_OUTPUT 16000

/* One message being answered. */
struct msg {
        const char *model;
        char reply[sizeof(REPLY_PREFIX) + REPLY_MAX_TEXT];
        json_int_t in, out;
        const char *stop;
        int thinking;
};

/* ---- envelope and headers --------------------------------------------- */

static void request_id(const struct fp_call *call, char *buf, size_t size)
{
        snprintf(buf, size, "req_fake%llu", (unsigned long long)call->seq);
}

/* "2025-08-21T12:40:59Z", one minute from now. */
static void reset_time(char *buf, size_t size)
{
        time_t t = (time_t)(fakeprov_now_ms() / 1000) + 60;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void rl_pair(struct fp_resp *resp, const char *what, long limit,
                    long used, const char *reset)
{
        char name[64], v[32];

        snprintf(name, sizeof(name), "anthropic-ratelimit-%s-limit", what);
        snprintf(v, sizeof(v), "%ld", limit);
        fpresp_header(resp, name, v);
        snprintf(name, sizeof(name), "anthropic-ratelimit-%s-remaining",
                 what);
        snprintf(v, sizeof(v), "%ld", used < limit ? limit - used : 0);
        fpresp_header(resp, name, v);
        snprintf(name, sizeof(name), "anthropic-ratelimit-%s-reset", what);
        fpresp_header(resp, name, reset);
}

/* The rate-limit headers; \p exhausted shows every budget at 0. */
static void rl_headers(const struct fp_call *call, struct fp_resp *resp,
                       json_int_t in, json_int_t out, int exhausted)
{
        long reqs = (long)((call->seq ? call->seq - 1 : 0) % RL_REQUESTS) + 1;
        char reset[32];

        reset_time(reset, sizeof(reset));
        rl_pair(resp, "requests", RL_REQUESTS, exhausted ? RL_REQUESTS : reqs,
                reset);
        rl_pair(resp, "tokens", RL_TOKENS,
                exhausted ? RL_TOKENS : (long)(in + out), reset);
        rl_pair(resp, "input-tokens", RL_INPUT, exhausted ? RL_INPUT : (long)in,
                reset);
        rl_pair(resp, "output-tokens", RL_OUTPUT,
                exhausted ? RL_OUTPUT : (long)out, reset);
}

/* {"type":"error","error":{"type","message"},"request_id"}. */
static void ant_error(const struct fp_call *call, struct fp_resp *resp,
                      unsigned status, const char *type, const char *msg)
{
        char rid[40];
        json_t *j;

        request_id(call, rid, sizeof(rid));
        j = json_pack("{s:s, s:{s:s, s:s}, s:s}", "type", "error", "error",
                      "type", type, "message", msg, "request_id", rid);
        if (!j)
                fatal("fam_anthropic: json_pack error");
        fpresp_json(resp, status, j, JSON_COMPACT);
        fpresp_header(resp, "request-id", rid);
}

static int bad_request(const struct fp_call *call, struct fp_resp *resp,
                       const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A 400 invalid_request_error. @returns -1. */
static int bad_request(const struct fp_call *call, struct fp_resp *resp,
                       const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        ant_error(call, resp, 400, "invalid_request_error", msg);
        return -1;
}

/* ---- named errors ----------------------------------------------------- */

static void err_invalid_key(const struct fp_call *call, struct fp_resp *resp)
{
        ant_error(call, resp, 401, "authentication_error",
                  call->key ? "invalid x-api-key"
                            : "x-api-key header is required");
}

static void err_invalid_request(const struct fp_call *call,
                                struct fp_resp *resp)
{
        bad_request(call, resp, "messages.0.content: Input should be a "
                                "valid list");
}

static void err_prompt_too_long(const struct fp_call *call,
                                struct fp_resp *resp)
{
        bad_request(call, resp,
                    "prompt is too long: 210000 tokens > 200000 maximum");
}

static void err_credit_balance(const struct fp_call *call,
                               struct fp_resp *resp)
{
        /* verbatim in the reference (RooCodeInc/Roo-Code#2419) */
        static const char body[] =
                "{\"type\":\"error\",\"error\":{\"type\":"
                "\"invalid_request_error\",\"message\":\"Your credit balance "
                "is too low to access the Anthropic API. Please go to Plans "
                "& Billing to upgrade or purchase credits.\"}}";

        fpresp_set(resp, 400, body, sizeof(body) - 1);
}

static void err_usage_limit(const struct fp_call *call, struct fp_resp *resp)
{
        bad_request(call, resp,
                    "You have reached your specified API usage limits. You "
                    "will regain access on 2030-01-01 at 00:00 UTC.");
}

static void err_billing(const struct fp_call *call, struct fp_resp *resp)
{
        ant_error(call, resp, 402, "billing_error",
                  "There is an issue with your account's billing. Please "
                  "go to Plans & Billing.");
}

static void err_permission(const struct fp_call *call, struct fp_resp *resp)
{
        ant_error(call, resp, 403, "permission_error",
                  "Your API key does not have permission to use the "
                  "specified resource.");
}

static void err_not_found(const struct fp_call *call, struct fp_resp *resp)
{
        const char *m = json_string_value(json_object_get(call->json,
                                                          "model"));
        char msg[300];

        snprintf(msg, sizeof(msg), "model: %.200s",
                 m ? m : "claude-nonexistent");
        ant_error(call, resp, 404, "not_found_error", msg);
}

static void err_too_large(const struct fp_call *call, struct fp_resp *resp)
{
        ant_error(call, resp, 413, "request_too_large",
                  "Request exceeds the maximum allowed number of bytes.");
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        ant_error(call, resp, 429, "rate_limit_error",
                  "This request would exceed the rate limit for your "
                  "organization of 50 requests per minute. For details, "
                  "refer to: https://docs.claude.com/en/api/rate-limits. "
                  "You can see the response headers for current usage. "
                  "Please reduce the prompt length or the maximum tokens "
                  "requested, or try again later.");
        rl_headers(call, resp, 0, 0, 1);
        fpresp_header(resp, "retry-after", "1");
}

static void err_spend_limit(const struct fp_call *call, struct fp_resp *resp)
{
        char rid[40];
        json_t *j;

        request_id(call, rid, sizeof(rid));
        j = json_pack("{s:s, s:{s:s, s:s, s:{s:s}}, s:s}", "type", "error",
                      "error", "type", "rate_limit_error", "message",
                      "You have reached your monthly spend limit for your "
                      "usage tier. Please go to Plans & Billing to increase "
                      "your limit.",
                      "details", "error_code", "enforced_spend_limit_reached",
                      "request_id", rid);
        if (!j)
                fatal("fam_anthropic: json_pack spend limit");
        fpresp_json(resp, 429, j, JSON_COMPACT);
        fpresp_header(resp, "request-id", rid);
}

static void err_api_error(const struct fp_call *call, struct fp_resp *resp)
{
        ant_error(call, resp, 500, "api_error", "Internal server error");
}

static void err_overloaded(const struct fp_call *call, struct fp_resp *resp)
{
        /* verbatim in the reference */
        static const char body[] =
                "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                "\"message\":\"Overloaded\"},\"request_id\":"
                "\"req_011CSLsW7mFqvHHnzrKdKjAE\"}";

        fpresp_set(resp, 529, body, sizeof(body) - 1);
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        ant_error(call, resp, 404, "not_found_error", "Not Found");
}

/* ---- request checks --------------------------------------------------- */

static const char *const known_fields[] = {
        "model",          "messages",    "max_tokens", "system",
        "temperature",    "top_p",       "top_k",      "stop_sequences",
        "stream",         "metadata",    "tools",      "tool_choice",
        "thinking",       "service_tier", "container", "mcp_servers",
        "context_management",
};

static int check_fields(const struct fp_call *call, struct fp_resp *resp)
{
        const char *k;
        json_t *v;
        size_t i;

        json_object_foreach (call->json, k, v) {
                for (i = 0; i < sizeof(known_fields) / sizeof(*known_fields);
                     i++)
                        if (!strcmp(k, known_fields[i]))
                                break;
                if (i == sizeof(known_fields) / sizeof(*known_fields))
                        return bad_request(call, resp,
                                           "%.100s: Extra inputs are not "
                                           "permitted",
                                           k);
        }
        return 0;
}

/* A string, or an array of objects each with a string "type". */
static int content_ok(const json_t *c)
{
        const json_t *b;
        size_t i;

        if (json_is_string(c))
                return 1;
        if (!json_is_array(c))
                return 0;
        json_array_foreach (c, i, b)
                if (!json_is_string(json_object_get(b, "type")))
                        return 0;
        return 1;
}

static int check_message(const struct fp_call *call, struct fp_resp *resp,
                         const json_t *m, size_t i, size_t n)
{
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *c = json_object_get(m, "content");

        if (!json_is_object(m))
                return bad_request(call, resp,
                                   "messages.%zu: Input should be a valid "
                                   "dictionary",
                                   i);
        if (role && !strcmp(role, "system"))
                return bad_request(call, resp,
                                   "messages: Unexpected role \"system\". "
                                   "The Messages API accepts a top-level "
                                   "`system` parameter, not \"system\" as "
                                   "an input message role.");
        if (!role || (strcmp(role, "user") && strcmp(role, "assistant")))
                return bad_request(call, resp,
                                   "messages.%zu.role: Input should be "
                                   "'user' or 'assistant'",
                                   i);
        if (!c)
                return bad_request(call, resp,
                                   "messages.%zu.content: Field required", i);
        if (!content_ok(c))
                return bad_request(call, resp,
                                   "messages.%zu.content: Input should be a "
                                   "valid list",
                                   i);
        if ((json_is_string(c) ? !json_string_length(c)
                               : !json_array_size(c)) &&
            !(i == n - 1 && !strcmp(role, "assistant")))
                return bad_request(call, resp,
                                   "messages.%zu: all messages must have "
                                   "non-empty content except for the "
                                   "optional final assistant message",
                                   i);
        return 0;
}

static int check_messages(const struct fp_call *call, struct fp_resp *resp,
                          const json_t *msgs)
{
        size_t i, n = json_array_size(msgs);
        json_t *m;

        if (!msgs)
                return bad_request(call, resp, "messages: Field required");
        if (!json_is_array(msgs))
                return bad_request(call, resp,
                                   "messages: Input should be a valid list");
        if (!n)
                return bad_request(call, resp,
                                   "messages: at least one message is "
                                   "required");
        json_array_foreach (msgs, i, m)
                if (check_message(call, resp, m, i, n) == -1)
                        return -1;
        return 0;
}

static int check_thinking(const struct fp_call *call, struct fp_resp *resp,
                          const json_t *th, json_int_t max)
{
        const char *type = json_string_value(json_object_get(th, "type"));
        const json_t *budget = json_object_get(th, "budget_tokens");
        const json_t *temp = json_object_get(call->json, "temperature");

        if (!th || (type && !strcmp(type, "disabled")))
                return 0;
        if (!type || strcmp(type, "enabled"))
                return bad_request(call, resp,
                                   "thinking: Input tag '%.40s' found using "
                                   "'type' does not match any of the "
                                   "expected tags: 'disabled', 'enabled'",
                                   type ? type : "");
        if (!json_is_integer(budget) ||
            json_integer_value(budget) < MIN_THINKING_BUDGET)
                return bad_request(call, resp,
                                   "thinking.enabled.budget_tokens: Input "
                                   "should be greater than or equal to "
                                   "1024");
        if (max <= json_integer_value(budget))
                return bad_request(call, resp,
                                   "`max_tokens` must be greater than "
                                   "`thinking.budget_tokens`.");
        if (temp && json_number_value(temp) != 1.0)
                return bad_request(call, resp,
                                   "`temperature` may only be set to 1 when "
                                   "thinking is enabled or in extended "
                                   "thinking mode.");
        return 0;
}

static int check_scalars(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *model = json_object_get(call->json, "model");
        const json_t *max = json_object_get(call->json, "max_tokens");
        const json_t *temp = json_object_get(call->json, "temperature");
        const json_t *sys = json_object_get(call->json, "system");

        if (!model)
                return bad_request(call, resp, "model: Field required");
        if (!json_is_string(model) || !json_string_length(model))
                return bad_request(call, resp,
                                   "model: Input should be a valid string");
        if (!max)
                return bad_request(call, resp, "max_tokens: Field required");
        if (!json_is_integer(max) || json_integer_value(max) < 1)
                return bad_request(call, resp,
                                   "max_tokens: Input should be greater "
                                   "than or equal to 1");
        if (sys && !json_is_string(sys) && !content_ok(sys))
                return bad_request(call, resp,
                                   "system: Input should be a valid list");
        if (temp && (!json_is_number(temp) || json_number_value(temp) < 0 ||
                     json_number_value(temp) > 1))
                return bad_request(call, resp,
                                   "temperature: Input should be less than "
                                   "or equal to 1");
        return 0;
}

static int check_request(const struct fp_call *call, struct fp_resp *resp)
{
        if (!fakeprov_header(call, "anthropic-version"))
                return bad_request(call, resp,
                                   "anthropic-version: header is required");
        if (!json_is_object(call->json))
                return bad_request(call, resp,
                                   "There was an error parsing the body of "
                                   "your request. Please send a valid JSON "
                                   "object.");
        if (check_fields(call, resp) == -1 ||
            check_scalars(call, resp) == -1 ||
            check_messages(call, resp,
                           json_object_get(call->json, "messages")) == -1)
                return -1;
        return check_thinking(
                call, resp, json_object_get(call->json, "thinking"),
                json_integer_value(json_object_get(call->json,
                                                   "max_tokens")));
}

/* ---- deterministic answer --------------------------------------------- */

static int is_ws(char c)
{
        return c == ' ' || (c >= '\t' && c <= '\r');
}

static json_int_t count_words(const char *s)
{
        json_int_t n = 0;
        int in_word = 0;

        for (; *s; s++) {
                if (!is_ws(*s) && !in_word)
                        n++;
                in_word = !is_ws(*s);
        }
        return n;
}

/* text(content) appended to \p out (bounded). */
static void content_text(const json_t *c, char *out, size_t outsz)
{
        const char *sep = "";
        const json_t *b;
        const char *t;
        size_t i, used;

        if (json_is_string(c)) {
                used = strlen(out);
                snprintf(out + used, outsz - used, "%s",
                         json_string_value(c));
                return;
        }
        json_array_foreach (c, i, b) {
                t = json_string_value(json_object_get(b, "type"));
                if (!t || strcmp(t, "text") ||
                    !json_is_string(json_object_get(b, "text")))
                        continue;
                used = strlen(out);
                snprintf(out + used, outsz - used, "%s%s", sep,
                         json_string_value(json_object_get(b, "text")));
                sep = "\n";
        }
}

/* words(text(c)) without a length limit. */
static json_int_t content_words(const json_t *c)
{
        const char *t, *s;
        json_int_t n = 0;
        const json_t *b;
        size_t i;

        if (json_is_string(c))
                return count_words(json_string_value(c));
        json_array_foreach (c, i, b) {
                t = json_string_value(json_object_get(b, "type"));
                s = json_string_value(json_object_get(b, "text"));
                if (t && s && !strcmp(t, "text"))
                        n += count_words(s);
        }
        return n;
}

static void make_reply(struct msg *m, const json_t *msgs)
{
        char text[REPLY_MAX_TEXT * 2 + 8] = "";
        const json_t *last = NULL, *x;
        size_t i, n;

        json_array_foreach (msgs, i, x)
                if (!strcmp(json_string_value(json_object_get(x, "role")),
                            "user"))
                        last = x;
        if (last)
                content_text(json_object_get(last, "content"), text,
                             sizeof(text));
        n = strlen(text);
        if (n > REPLY_MAX_TEXT) {
                n = REPLY_MAX_TEXT;
                while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
                        n--;
        }
        snprintf(m->reply, sizeof(m->reply), "%s%.*s", REPLY_PREFIX, (int)n,
                 text);
}

static void msg_compute(struct msg *m, const struct fp_call *call)
{
        const json_t *msgs = json_object_get(call->json, "messages");
        const json_t *sys = json_object_get(call->json, "system");
        const char *th = json_string_value(json_object_get(
                json_object_get(call->json, "thinking"), "type"));
        json_int_t max = json_integer_value(
                json_object_get(call->json, "max_tokens"));
        const json_t *x;
        size_t i;

        m->model = json_string_value(json_object_get(call->json, "model"));
        make_reply(m, msgs);
        m->in = sys ? content_words(sys) + 4 : 0;
        json_array_foreach (msgs, i, x)
                m->in += content_words(json_object_get(x, "content")) + 4;
        m->thinking = th && !strcmp(th, "enabled");
        m->out = count_words(m->reply) + (m->thinking ? THINKING_TOKENS : 0);
        m->stop = "end_turn";
        if (m->out > max) {
                m->out = max;
                m->stop = "max_tokens";
        }
}

static json_t *msg_content(const struct msg *m, const struct fp_call *call)
{
        json_t *arr = json_array();
        char sig[40];

        if (m->thinking) {
                snprintf(sig, sizeof(sig), "fakesig%llu",
                         (unsigned long long)call->seq);
                json_array_append_new(arr,
                                      json_pack("{s:s, s:s, s:s}", "type",
                                                "thinking", "thinking",
                                                THINKING_TEXT, "signature",
                                                sig));
        }
        json_array_append_new(arr, json_pack("{s:s, s:s}", "type", "text",
                                             "text", m->reply));
        return arr;
}

static void msg_reply(const struct msg *m, const struct fp_call *call,
                      struct fp_resp *resp)
{
        char id[40], rid[40];
        json_t *j;

        snprintf(id, sizeof(id), "msg_fake%llu",
                 (unsigned long long)call->seq);
        request_id(call, rid, sizeof(rid));
        j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:n, "
                      "s:{s:I, s:I, s:i, s:i}}",
                      "id", id, "type", "message", "role", "assistant",
                      "model", m->model, "content", msg_content(m, call),
                      "stop_reason", m->stop, "stop_sequence", "usage",
                      "input_tokens", m->in, "output_tokens", m->out,
                      "cache_creation_input_tokens", 0,
                      "cache_read_input_tokens", 0);
        if (!j)
                fatal("fam_anthropic: json_pack reply");
        fpresp_json(resp, 200, j, JSON_COMPACT);
        fpresp_header(resp, "request-id", rid);
}

/* ---- routes ----------------------------------------------------------- */

static void messages(const struct fp_call *call, struct fp_resp *resp)
{
        struct msg m;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (check_request(call, resp) == -1)
                return;
        msg_compute(&m, call);
        msg_reply(&m, call, resp);
        rl_headers(call, resp, m.in, m.out, 0);
}

/* x-api-key: <key> */
static const char *get_key(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "x-api-key");

        return h && *h ? h : NULL;
}

static const struct fp_route routes[] = {
        {"POST", "/v1/messages", messages},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"invalid_request", err_invalid_request},
        {"prompt_too_long", err_prompt_too_long},
        {"credit_balance", err_credit_balance},
        {"usage_limit", err_usage_limit},
        {"billing", err_billing},
        {"permission", err_permission},
        {"not_found", err_not_found},
        {"request_too_large", err_too_large},
        {"rate_limit", err_rate_limit},
        {"spend_limit", err_spend_limit},
        {"api_error", err_api_error},
        {"overloaded", err_overloaded},
        {NULL, NULL},
};

static const char *const defaults[] = {"anthropic", NULL};

const struct fp_family fam_anthropic = {
        .name = "anthropic",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
