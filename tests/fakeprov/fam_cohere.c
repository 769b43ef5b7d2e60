/**
 * @file fam_cohere.c
 * @brief Family "cohere": POST <prefix>/v2/chat as in section 4 of
 *        provider-api-reference.md (provider "cohere"; a worker uses base
 *        URL http://127.0.0.1:PORT/cohere/v2).
 *
 * DETERMINISTIC ANSWERS (the formulas of fam_openai.c, so one conversation
 * costs the same tokens on both families)
 *
 *   text(content)  = content if it is a string; for an array, the "text"
 *                    members of its "text" blocks joined by "\n".
 *   words(s)       = number of maximal runs of non-whitespace bytes.
 *   reply          = "fake reply: " + text(last "user" message), cut to its
 *                    first 40 bytes (backing off to a UTF-8 boundary).
 *   usage.billed_units.input_tokens  = sum over messages of
 *                                      (words(text(content)) + 4)
 *   usage.billed_units.output_tokens = words(reply); if it exceeds
 *                    max_tokens it is max_tokens and finish_reason is
 *                    "MAX_TOKENS", else "COMPLETE" (the text itself is
 *                    never shortened).
 *   usage.tokens   = {input_tokens: billed input + 64 (the prompt
 *                    template), output_tokens: billed output}
 *   id             = "00000000-0000-4000-8000-<n as 12 hex digits>", n =
 *                    the provider's request number.
 *
 * Example: system "You are terse." + user "Say hello" -> "fake reply: Say
 * hello", billed input 13, output 4; tokens input 77.
 *
 * CHECKS, in order (errors {"id","message"}, the id as above): Bearer key
 * missing or wrong -> 401; body a JSON object; "model" a non-empty
 * string; "messages" a non-empty array; role system|user|assistant|tool;
 * a tool message needs tool_call_id (the trap for adapters that pass the
 * job's "tool" role through); content a string or an array of blocks
 * (absent only for assistant); "stream": true is refused (the fake does
 * not stream).  All -> 400 "invalid request: ...".
 *
 * NAMED ERRORS (section 4 / section 12): invalid_key 401, bad_request 400,
 * payment_required 402, not_found 404 (model), rate_limit 429 (trial key,
 * per minute), trial_monthly_limit 429 (trial key, 1000 calls / month),
 * server_error 500, unavailable 503.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "xmem.h"

#define REPLY_PREFIX "fake reply: "
#define REPLY_MAX_TEXT 40
#define TEMPLATE_TOKENS 64

struct chat {
        char reply[sizeof(REPLY_PREFIX) + REPLY_MAX_TEXT];
        json_int_t in, out;
        const char *finish;
};

/* ---- envelope --------------------------------------------------------- */

static void call_id(const struct fp_call *call, char *buf, size_t size)
{
        snprintf(buf, size, "00000000-0000-4000-8000-%012llx",
                 (unsigned long long)call->seq);
}

/* {"id","message"} */
static void co_error(const struct fp_call *call, struct fp_resp *resp,
                     unsigned status, const char *msg)
{
        char id[48];
        json_t *j;

        call_id(call, id, sizeof(id));
        j = json_pack("{s:s, s:s}", "id", id, "message", msg);
        if (!j)
                fatal("fam_cohere: json_pack error");
        fpresp_json(resp, status, j, JSON_COMPACT);
}

static int bad_request(const struct fp_call *call, struct fp_resp *resp,
                       const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* A 400 "invalid request: ...". @returns -1. */
static int bad_request(const struct fp_call *call, struct fp_resp *resp,
                       const char *fmt, ...)
{
        char msg[400], full[450];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(full, sizeof(full), "invalid request: %s", msg);
        co_error(call, resp, 400, full);
        return -1;
}

/* ---- named errors ----------------------------------------------------- */

static void err_invalid_key(const struct fp_call *call, struct fp_resp *resp)
{
        co_error(call, resp, 401,
                 call->key ? "invalid api token" : "no api key supplied");
}

static void err_bad_request(const struct fp_call *call, struct fp_resp *resp)
{
        bad_request(call, resp, "message must be at least 1 token long or "
                                "tool results must be specified.");
}

static void err_payment(const struct fp_call *call, struct fp_resp *resp)
{
        co_error(call, resp, 402,
                 "Please add or update your payment method at "
                 "https://dashboard.cohere.com/billing?tab=payment to "
                 "continue");
}

static void err_not_found(const struct fp_call *call, struct fp_resp *resp)
{
        const char *m = json_string_value(json_object_get(call->json,
                                                          "model"));
        char msg[300];

        snprintf(msg, sizeof(msg),
                 "model '%.100s' not found, make sure the correct model ID "
                 "was used and that you have access to the model.",
                 m ? m : "command-x");
        co_error(call, resp, 404, msg);
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        co_error(call, resp, 429,
                 "You are using a Trial key, which is limited to 10 API "
                 "calls / minute. You can continue to use the Trial key for "
                 "free or upgrade to a Production key with higher rate "
                 "limits at 'https://dashboard.cohere.com/api-keys'.");
}

static void err_monthly(const struct fp_call *call, struct fp_resp *resp)
{
        co_error(call, resp, 429,
                 "You are using a Trial key, which is limited to 1000 API "
                 "calls / month. You can continue to use the Trial key for "
                 "free or upgrade to a Production key with higher rate "
                 "limits at 'https://dashboard.cohere.com/api-keys'.");
}

static void err_server(const struct fp_call *call, struct fp_resp *resp)
{
        co_error(call, resp, 500,
                 "internal server error, this has been reported to our "
                 "developers");
}

static void err_unavailable(const struct fp_call *call, struct fp_resp *resp)
{
        co_error(call, resp, 503, "service unavailable");
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[300];

        snprintf(msg, sizeof(msg), "no route for %s %.200s", call->method,
                 call->path);
        co_error(call, resp, 404, msg);
}

/* ---- request checks --------------------------------------------------- */

static const char *const roles[] = {"system", "user", "assistant", "tool"};

static int role_ok(const char *r)
{
        for (size_t i = 0; r && i < sizeof(roles) / sizeof(*roles); i++)
                if (!strcmp(r, roles[i]))
                        return 1;
        return 0;
}

static int check_message(const struct fp_call *call, struct fp_resp *resp,
                         const json_t *m, size_t i)
{
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *c = json_object_get(m, "content");

        if (!json_is_object(m))
                return bad_request(call, resp,
                                   "messages[%zu] must be an object", i);
        if (!role_ok(role))
                return bad_request(call, resp,
                                   "messages[%zu].role must be one of "
                                   "system, user, assistant, tool",
                                   i);
        if (!strcmp(role, "tool") &&
            !json_is_string(json_object_get(m, "tool_call_id")))
                return bad_request(call, resp,
                                   "messages[%zu].tool_call_id is required "
                                   "for tool messages",
                                   i);
        if (!c && !strcmp(role, "assistant"))
                return 0;
        if (!json_is_string(c) && !json_is_array(c))
                return bad_request(call, resp,
                                   "messages[%zu].content must be a string "
                                   "or an array of content blocks",
                                   i);
        return 0;
}

static int check_request(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *model = json_object_get(call->json, "model");
        const json_t *msgs = json_object_get(call->json, "messages");
        const json_t *m;
        size_t i;

        if (!json_is_object(call->json))
                return bad_request(call, resp,
                                   "request body is not valid JSON");
        if (!json_is_string(model) || !json_string_length(model))
                return bad_request(call, resp, "model must be specified");
        if (!json_is_array(msgs) || !json_array_size(msgs))
                return bad_request(call, resp,
                                   "messages must be a non-empty array");
        json_array_foreach (msgs, i, m)
                if (check_message(call, resp, m, i) == -1)
                        return -1;
        if (json_is_true(json_object_get(call->json, "stream")))
                return bad_request(call, resp,
                                   "stream: true is not supported by "
                                   "fakeprov");
        return 0;
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

/* The text of block \p b if it is a "text" block, else NULL. */
static const char *block_text(const json_t *b)
{
        const char *t = json_string_value(json_object_get(b, "type"));

        return t && !strcmp(t, "text")
                       ? json_string_value(json_object_get(b, "text"))
                       : NULL;
}

static json_int_t content_words(const json_t *c)
{
        json_int_t n = 0;
        const json_t *b;
        const char *t;
        size_t i;

        if (json_is_string(c))
                return count_words(json_string_value(c));
        json_array_foreach (c, i, b) {
                t = block_text(b);
                n += t ? count_words(t) : 0;
        }
        return n;
}

static void content_text(const json_t *c, char *out, size_t size)
{
        const char *sep = "", *t;
        const json_t *b;
        size_t i, used;

        if (json_is_string(c)) {
                snprintf(out, size, "%s", json_string_value(c));
                return;
        }
        json_array_foreach (c, i, b) {
                t = block_text(b);
                if (!t)
                        continue;
                used = strlen(out);
                snprintf(out + used, size - used, "%s%s", sep, t);
                sep = "\n";
        }
}

static void chat_compute(struct chat *ch, const struct fp_call *call)
{
        const json_t *msgs = json_object_get(call->json, "messages");
        const json_t *max = json_object_get(call->json, "max_tokens");
        char text[REPLY_MAX_TEXT * 2 + 8] = "";
        const json_t *last = NULL, *m;
        size_t i, n;

        ch->in = 0;
        json_array_foreach (msgs, i, m) {
                ch->in += content_words(json_object_get(m, "content")) + 4;
                if (!strcmp(json_string_value(json_object_get(m, "role")),
                            "user"))
                        last = m;
        }
        if (last)
                content_text(json_object_get(last, "content"), text,
                             sizeof(text));
        n = strlen(text);
        if (n > REPLY_MAX_TEXT) {
                n = REPLY_MAX_TEXT;
                while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
                        n--;
        }
        snprintf(ch->reply, sizeof(ch->reply), "%s%.*s", REPLY_PREFIX,
                 (int)n, text);
        ch->out = count_words(ch->reply);
        ch->finish = "COMPLETE";
        if (json_is_integer(max) && json_integer_value(max) > 0 &&
            ch->out > json_integer_value(max)) {
                ch->out = json_integer_value(max);
                ch->finish = "MAX_TOKENS";
        }
}

static void chat_reply(const struct chat *ch, const struct fp_call *call,
                       struct fp_resp *resp)
{
        char id[48];
        json_t *j;

        call_id(call, id, sizeof(id));
        j = json_pack("{s:s, s:s, s:{s:s, s:[{s:s, s:s}]}, "
                      "s:{s:{s:I, s:I}, s:{s:I, s:I}}}",
                      "id", id, "finish_reason", ch->finish, "message",
                      "role", "assistant", "content", "type", "text", "text",
                      ch->reply, "usage", "billed_units", "input_tokens",
                      ch->in, "output_tokens", ch->out, "tokens",
                      "input_tokens", ch->in + TEMPLATE_TOKENS,
                      "output_tokens", ch->out);
        if (!j)
                fatal("fam_cohere: json_pack reply");
        fpresp_json(resp, 200, j, JSON_COMPACT);
}

/* ---- routes ----------------------------------------------------------- */

static void chat(const struct fp_call *call, struct fp_resp *resp)
{
        struct chat ch;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (check_request(call, resp) == -1)
                return;
        chat_compute(&ch, call);
        chat_reply(&ch, call, resp);
}

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
        {"POST", "/v2/chat", chat},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"bad_request", err_bad_request},
        {"payment_required", err_payment},
        {"not_found", err_not_found},
        {"rate_limit", err_rate_limit},
        {"trial_monthly_limit", err_monthly},
        {"server_error", err_server},
        {"unavailable", err_unavailable},
        {NULL, NULL},
};

static const char *const defaults[] = {"cohere", NULL};

const struct fp_family fam_cohere = {
        .name = "cohere",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
