/*
 * Unit tests for the chat adapters other than OpenAI's:
 * worker/provider_anthropic.c ("anthropic_messages"), provider_gemini.c
 * ("gemini_generate") and provider_cohere.c ("cohere_chat").  Requests are
 * checked field by field; responses are the reference's samples (verbatim
 * where it gives them); one classification case per section-12 row of
 * these providers, plus the non-JSON and transport rules.  No network.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider.h"

#define NO_HINT (-2) /* a row that does not check retry_after_ms */

#define ANT (&provider_anthropic_ops)
#define GEM (&provider_gemini_ops)
#define COH (&provider_cohere_ops)

/*
 * Fixtures.
 */

#define TJOB_MAX 6

/** A chat job on the stack. */
struct tjob {
        Genq__V1__Job job;
        Genq__V1__ChatRequest chat;
        Genq__V1__ChatMessage msg[TJOB_MAX];
        Genq__V1__ChatMessage *msgp[TJOB_MAX];
};

/** Reset \p t to \p model and no messages. */
static void tjob_init(struct tjob *t, const char *model)
{
        genq__v1__job__init(&t->job);
        genq__v1__chat_request__init(&t->chat);
        for (int i = 0; i < TJOB_MAX; i++) {
                genq__v1__chat_message__init(&t->msg[i]);
                t->msgp[i] = &t->msg[i];
        }
        t->chat.messages = t->msgp;
        t->chat.n_messages = 0;
        t->chat.model = (char *)model;
        t->job.kind = GENQ__V1__KIND__KIND_CHAT;
        t->job.payload_case = GENQ__V1__JOB__PAYLOAD_CHAT;
        t->job.chat = &t->chat;
}

static void tjob_add(struct tjob *t, const char *role, const char *content)
{
        ck_assert_int_lt(t->chat.n_messages, TJOB_MAX);
        t->msg[t->chat.n_messages].role = (char *)role;
        t->msg[t->chat.n_messages].content = (char *)content;
        t->chat.n_messages++;
}

/** The reference's conversation: system "You are terse." + "Say hello". */
static void tjob_terse(struct tjob *t, const char *model)
{
        tjob_init(t, model);
        tjob_add(t, "system", "You are terse.");
        tjob_add(t, "user", "Say hello");
}

static struct provider_cfg tcfg(const char *name, const char *adapter,
                                const char *base, const char *extra)
{
        struct provider_cfg p = {
                .name = name,
                .adapter = adapter,
                .base_url = base,
                .model = "default-model",
                .extra_body = extra,
                .max_body_bytes = 1 << 20,
        };
        return p;
}

static struct provider_resp tresp(long status, const char *body)
{
        struct provider_resp r = {
                .status = status,
                .content_type = "application/json",
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .retry_after_ms = -1,
        };
        return r;
}

/** Build with \p key; the body parsed as JSON. */
static json_t *build_ok(const struct provider_ops *ops,
                        const struct provider_cfg *p, const char *key,
                        const struct tjob *t, struct provider_req *req)
{
        char errstr[256];
        json_t *body;
        int r;

        r = ops->build(p, key, &t->job, NULL, req, errstr, sizeof(errstr));
        ck_assert_msg(r == 0, "build failed: %s", errstr);
        ck_assert_str_eq(req->method, "POST");
        ck_assert_uint_eq(req->body_len, strlen(req->body));
        ck_assert_uint_eq(req->n_parts, 0);
        body = json_loads(req->body, 0, NULL);
        ck_assert_ptr_nonnull(body);
        return body;
}

/** A build that must fail, with \p want in the error text. */
static void build_fails(const struct provider_ops *ops,
                        const struct provider_cfg *p, const char *key,
                        const Genq__V1__Job *job, const char *want)
{
        struct provider_req req;
        char errstr[256] = "";

        memset(&req, 0x5a, sizeof(req));
        ck_assert_int_eq(ops->build(p, key, job, NULL, &req, errstr,
                                    sizeof(errstr)),
                         -1);
        ck_assert_msg(strstr(errstr, want), "errstr \"%s\" lacks \"%s\"",
                      errstr, want);
        ck_assert_ptr_null(req.headers);
        ck_assert_ptr_null(req.body);
}

static enum outcome run_parse(const struct provider_ops *ops,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err)
{
        struct provider_cfg p = tcfg("x", ops->name, "https://x/v1", NULL);

        memset(res, 0, sizeof(*res));
        memset(err, 0, sizeof(*err));
        return ops->parse(&p, NULL, resp, res, err);
}

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static json_int_t jint(const json_t *o, const char *k)
{
        return json_integer_value(json_object_get(o, k));
}

/** The \p i-th message/content of \p arr: its role and \p text_key. */
static void assert_turn(const json_t *arr, size_t i, const char *role,
                        const char *text)
{
        const json_t *m = json_array_get(arr, i);
        const json_t *c = json_object_get(m, "content");

        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(jstr(m, "role"), role);
        if (!c) /* gemini: parts */
                c = json_object_get(json_array_get(json_object_get(m,
                                                                   "parts"),
                                                   0),
                                    "text");
        ck_assert_str_eq(json_string_value(c), text);
}

/*
 * Anthropic build()
 */

START_TEST(test_ant_build_url_headers)
{
        struct provider_cfg p = tcfg("anthropic", "anthropic_messages",
                                     "https://api.anthropic.com/v1/", NULL);
        struct provider_req req;
        struct tjob t;

        tjob_terse(&t, "claude-sonnet-4-5");
        json_decref(build_ok(ANT, &p, "sk-ant-test", &t, &req));
        ck_assert_str_eq(req.url, "https://api.anthropic.com/v1/messages");
        ck_assert_str_eq(req.headers[0], "x-api-key: sk-ant-test");
        ck_assert_str_eq(req.headers[1], "anthropic-version: 2023-06-01");
        ck_assert_str_eq(req.headers[2], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[3], "Accept: application/json");
        ck_assert_ptr_null(req.headers[4]);
        provider_req_clear(&req);
        ck_assert_ptr_null(req.headers);
}
END_TEST

START_TEST(test_ant_build_reference_request)
{
        struct provider_cfg p = tcfg("anthropic", "anthropic_messages",
                                     "https://api.anthropic.com/v1", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *body, *msgs;

        /* the reference's minimal request, field by field */
        tjob_terse(&t, "claude-sonnet-4-5");
        t.chat.max_tokens = 1024;
        body = build_ok(ANT, &p, "k", &t, &req);
        ck_assert_str_eq(jstr(body, "model"), "claude-sonnet-4-5");
        ck_assert_int_eq(jint(body, "max_tokens"), 1024);
        ck_assert_str_eq(jstr(body, "system"), "You are terse.");
        msgs = json_object_get(body, "messages");
        ck_assert_uint_eq(json_array_size(msgs), 1);
        assert_turn(msgs, 0, "user", "Say hello");
        ck_assert_ptr_null(json_object_get(body, "temperature"));
        ck_assert_ptr_null(json_object_get(body, "stream"));
        ck_assert_uint_eq(json_object_size(body), 4);
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_ant_build_roles_and_defaults)
{
        struct provider_cfg p = tcfg("anthropic", "anthropic_messages",
                                     "https://x/v1", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *body, *msgs;

        tjob_init(&t, "");
        tjob_add(&t, "system", "One.");
        tjob_add(&t, "user", "Hi");
        tjob_add(&t, "assistant", "Hello");
        tjob_add(&t, "developer", "Two.");
        tjob_add(&t, "tool", "42");
        tjob_add(&t, "", "unset role");
        body = build_ok(ANT, &p, "k", &t, &req);
        ck_assert_str_eq(jstr(body, "model"), "default-model");
        ck_assert_int_eq(jint(body, "max_tokens"), 1024);
        ck_assert_str_eq(jstr(body, "system"), "One.\n\nTwo.");
        msgs = json_object_get(body, "messages");
        ck_assert_uint_eq(json_array_size(msgs), 4);
        assert_turn(msgs, 0, "user", "Hi");
        assert_turn(msgs, 1, "assistant", "Hello");
        assert_turn(msgs, 2, "user", "42");
        assert_turn(msgs, 3, "user", "unset role");
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_ant_build_temperature)
{
        struct provider_cfg p = tcfg("anthropic", "anthropic_messages",
                                     "https://x/v1", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *body;

        tjob_terse(&t, "m");
        t.chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        t.chat.temperature = 0.7f;
        body = build_ok(ANT, &p, "k", &t, &req);
        ck_assert_ptr_nonnull(strstr(req.body, "\"temperature\":0.7"));
        json_decref(body);
        provider_req_clear(&req);
        /* the job's 0..2 range, Anthropic's 0..1: clamped */
        t.chat.temperature = 1.5f;
        body = build_ok(ANT, &p, "k", &t, &req);
        ck_assert_double_eq(
                json_number_value(json_object_get(body, "temperature")), 1.0);
        json_decref(body);
        provider_req_clear(&req);
        t.chat.temperature = 0.0f;
        body = build_ok(ANT, &p, "k", &t, &req);
        ck_assert(json_is_number(json_object_get(body, "temperature")));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_ant_build_extra_thinking)
{
        struct provider_cfg p = tcfg(
                "anthropic", "anthropic_messages", "https://x/v1",
                "{\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},"
                "\"model\":\"evil\",\"metadata\":{\"user_id\":\"u1\"}}");
        struct provider_req req;
        struct tjob t;
        json_t *body;

        tjob_terse(&t, "claude-x");
        t.chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        t.chat.temperature = 0.5f;
        body = build_ok(ANT, &p, "k", &t, &req);
        ck_assert_str_eq(jstr(json_object_get(body, "thinking"), "type"),
                         "enabled");
        ck_assert_int_eq(jint(json_object_get(body, "thinking"),
                              "budget_tokens"),
                         2048);
        ck_assert_str_eq(jstr(json_object_get(body, "metadata"), "user_id"),
                         "u1");
        ck_assert_str_eq(jstr(body, "model"), "claude-x");
        /* thinking takes no temperature; answer budget kept on top */
        ck_assert_ptr_null(json_object_get(body, "temperature"));
        ck_assert_int_eq(jint(body, "max_tokens"), 2048 + 1024);
        json_decref(body);
        provider_req_clear(&req);
        /* a max_tokens above the budget is left alone */
        t.chat.max_tokens = 4096;
        body = build_ok(ANT, &p, "k", &t, &req);
        ck_assert_int_eq(jint(body, "max_tokens"), 4096);
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_ant_build_extra_disabled_thinking)
{
        struct provider_cfg p = tcfg("anthropic", "anthropic_messages",
                                     "https://x/v1",
                                     "{\"thinking\":{\"type\":\"disabled\"},"
                                     "\"max_tokens\":5}");
        struct provider_req req;
        struct tjob t;
        json_t *body;

        tjob_terse(&t, "m");
        t.chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        t.chat.temperature = 0.25f;
        body = build_ok(ANT, &p, "k", &t, &req);
        ck_assert(json_is_number(json_object_get(body, "temperature")));
        ck_assert_int_eq(jint(body, "max_tokens"), 1024);
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_ant_build_no_key)
{
        struct provider_cfg p = tcfg("anthropic", "anthropic_messages",
                                     "http://127.0.0.1:1/v1", NULL);
        struct provider_req req;
        struct tjob t;

        tjob_terse(&t, "m");
        json_decref(build_ok(ANT, &p, NULL, &t, &req));
        ck_assert_str_eq(req.headers[0], "anthropic-version: 2023-06-01");
        ck_assert_ptr_null(req.headers[3]);
        provider_req_clear(&req);
}
END_TEST

/** Failures shared by the three adapters. */
static void common_build_failures(const struct provider_ops *ops)
{
        struct provider_cfg p = tcfg("x", ops->name, "https://x/v1", NULL);
        struct provider_cfg nobase = tcfg("x", ops->name, NULL, NULL);
        struct provider_cfg bad = tcfg("x", ops->name, "https://x/v1",
                                       "{not json");
        struct provider_cfg arr = tcfg("x", ops->name, "https://x/v1",
                                       "[1]");
        static char longbase[2100];
        struct provider_cfg lng;
        struct tjob t;

        memset(longbase, 'a', sizeof(longbase) - 1);
        lng = tcfg("x", ops->name, longbase, NULL);
        tjob_terse(&t, "m");
        build_fails(ops, &bad, "k", &t.job, "extra_body");
        build_fails(ops, &arr, "k", &t.job, "extra_body");
        build_fails(ops, &nobase, "k", &t.job, "base_url");
        build_fails(ops, &lng, "k", &t.job, "too long");
        if (ops != GEM) /* gemini: the key is percent-encoded in the URL */
                build_fails(ops, &p, "k\r\nX-Evil: 1", &t.job, "newline");
        t.msg[1].role = "narrator";
        build_fails(ops, &p, "k", &t.job, "narrator");
        t.msg[1].role = "user";
        t.msg[1].content = "\xff\xfe";
        build_fails(ops, &p, "k", &t.job, "UTF-8");
        t.msg[1].content = "Say hello";
        t.chat.model = "";
        p.model = NULL;
        build_fails(ops, &p, "k", &t.job, "no model");
        p.model = "m";
        t.job.payload_case = GENQ__V1__JOB__PAYLOAD_IMAGE;
        build_fails(ops, &p, "k", &t.job, "not a chat job");
}

START_TEST(test_build_failures)
{
        static const struct provider_ops *const all[] = {ANT, GEM, COH};

        common_build_failures(all[_i]);
}
END_TEST

START_TEST(test_build_only_system_messages)
{
        struct provider_cfg a = tcfg("x", "anthropic_messages",
                                     "https://x/v1", NULL);
        struct provider_cfg g = tcfg("x", "gemini_generate", "https://x/v1",
                                     NULL);
        struct tjob t;

        tjob_init(&t, "m");
        tjob_add(&t, "system", "Only a system prompt.");
        build_fails(ANT, &a, "k", &t.job, "no user or assistant message");
        build_fails(GEM, &g, "k", &t.job, "no user or assistant message");
}
END_TEST

/*
 * Gemini build()
 */

START_TEST(test_gem_build_url_headers)
{
        struct provider_cfg p = tcfg(
                "gemini", "gemini_generate",
                "https://generativelanguage.googleapis.com/v1beta/", NULL);
        struct provider_req req;
        struct tjob t;

        tjob_terse(&t, "gemini-2.5-flash");
        json_decref(build_ok(GEM, &p, "AIzaFAKE-key_1", &t, &req));
        ck_assert_str_eq(req.url,
                         "https://generativelanguage.googleapis.com/v1beta/"
                         "models/gemini-2.5-flash:generateContent"
                         "?key=AIzaFAKE-key_1");
        ck_assert_str_eq(req.headers[0], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[1], "Accept: application/json");
        ck_assert_ptr_null(req.headers[2]);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_gem_build_url_encoding)
{
        struct provider_cfg p = tcfg("gemini", "gemini_generate",
                                     "http://127.0.0.1:9/gemini/v1beta",
                                     NULL);
        struct provider_req req;
        struct tjob t;

        /* key characters outside the unreserved set are escaped */
        tjob_terse(&t, "gemini 2?x");
        json_decref(build_ok(GEM, &p, "a+b/c&d=e\r\n", &t, &req));
        ck_assert_str_eq(req.url,
                         "http://127.0.0.1:9/gemini/v1beta/models/"
                         "gemini%202%3Fx:generateContent"
                         "?key=a%2Bb%2Fc%26d%3De%0D%0A");
        provider_req_clear(&req);
        /* already qualified model names keep their collection */
        tjob_terse(&t, "models/gemini-2.0-flash");
        json_decref(build_ok(GEM, &p, NULL, &t, &req));
        ck_assert_str_eq(req.url, "http://127.0.0.1:9/gemini/v1beta/models/"
                                  "gemini-2.0-flash:generateContent");
        provider_req_clear(&req);
        tjob_terse(&t, "tunedModels/my-model-7");
        json_decref(build_ok(GEM, &p, "", &t, &req));
        ck_assert_str_eq(req.url, "http://127.0.0.1:9/gemini/v1beta/"
                                  "tunedModels/my-model-7:generateContent");
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_gem_build_reference_request)
{
        struct provider_cfg p = tcfg("gemini", "gemini_generate",
                                     "https://x/v1beta", NULL);
        struct provider_req req;
        const json_t *gc, *si;
        json_t *body, *contents;
        struct tjob t;

        /* the reference's minimal request, field by field */
        tjob_terse(&t, "gemini-2.5-flash");
        t.chat.max_tokens = 256;
        t.chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        t.chat.temperature = 0.7f;
        body = build_ok(GEM, &p, "k", &t, &req);
        contents = json_object_get(body, "contents");
        ck_assert_uint_eq(json_array_size(contents), 1);
        assert_turn(contents, 0, "user", "Say hello");
        si = json_object_get(body, "systemInstruction");
        ck_assert_uint_eq(json_array_size(json_object_get(si, "parts")), 1);
        ck_assert_str_eq(jstr(json_array_get(json_object_get(si, "parts"), 0),
                              "text"),
                         "You are terse.");
        gc = json_object_get(body, "generationConfig");
        ck_assert_double_eq_tol(
                json_number_value(json_object_get(gc, "temperature")), 0.7,
                1e-6);
        ck_assert_ptr_nonnull(strstr(req.body, "\"temperature\":0.7"));
        ck_assert_int_eq(jint(gc, "maxOutputTokens"), 256);
        ck_assert_uint_eq(json_object_size(body), 3);
        ck_assert_ptr_null(json_object_get(body, "model"));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_gem_build_roles_and_defaults)
{
        struct provider_cfg p = tcfg("gemini", "gemini_generate",
                                     "https://x/v1beta", NULL);
        struct provider_req req;
        json_t *body, *contents, *parts;
        struct tjob t;

        tjob_init(&t, "");
        tjob_add(&t, "system", "One.");
        tjob_add(&t, "user", "Hi");
        tjob_add(&t, "assistant", "Hello");
        tjob_add(&t, "developer", "Two.");
        tjob_add(&t, "tool", "42");
        body = build_ok(GEM, &p, "k", &t, &req);
        ck_assert_ptr_nonnull(strstr(req.url, "/models/default-model:"));
        contents = json_object_get(body, "contents");
        ck_assert_uint_eq(json_array_size(contents), 3);
        assert_turn(contents, 0, "user", "Hi");
        assert_turn(contents, 1, "model", "Hello");
        assert_turn(contents, 2, "user", "42");
        parts = json_object_get(json_object_get(body, "systemInstruction"),
                                "parts");
        ck_assert_uint_eq(json_array_size(parts), 2);
        ck_assert_str_eq(jstr(json_array_get(parts, 1), "text"), "Two.");
        ck_assert_ptr_null(json_object_get(body, "generationConfig"));
        json_decref(body);
        provider_req_clear(&req);
        /* no system message: no systemInstruction */
        tjob_init(&t, "m");
        tjob_add(&t, "user", "Hi");
        body = build_ok(GEM, &p, "k", &t, &req);
        ck_assert_ptr_null(json_object_get(body, "systemInstruction"));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_gem_build_extra_nested)
{
        struct provider_cfg p = tcfg(
                "gemini", "gemini_generate", "https://x/v1beta",
                "{\"generationConfig\":{\"thinkingConfig\":{"
                "\"thinkingBudget\":0},\"maxOutputTokens\":1},"
                "\"safetySettings\":[{\"category\":"
                "\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"BLOCK_NONE\"}]}");
        struct provider_req req;
        const json_t *gc;
        struct tjob t;
        json_t *body;

        tjob_terse(&t, "m");
        t.chat.max_tokens = 300;
        body = build_ok(GEM, &p, "k", &t, &req);
        gc = json_object_get(body, "generationConfig");
        ck_assert_int_eq(jint(gc, "maxOutputTokens"), 300);
        ck_assert_int_eq(jint(json_object_get(gc, "thinkingConfig"),
                              "thinkingBudget"),
                         0);
        ck_assert_uint_eq(
                json_array_size(json_object_get(body, "safetySettings")), 1);
        json_decref(body);
        provider_req_clear(&req);
        /* the job sets nothing: the configured generationConfig as is */
        t.chat.max_tokens = 0;
        body = build_ok(GEM, &p, "k", &t, &req);
        ck_assert_int_eq(jint(json_object_get(body, "generationConfig"),
                              "maxOutputTokens"),
                         1);
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

/*
 * Cohere build()
 */

START_TEST(test_coh_build_reference_request)
{
        struct provider_cfg p = tcfg("cohere", "cohere_chat",
                                     "https://api.cohere.com/v2/", NULL);
        struct provider_req req;
        json_t *body, *msgs;
        struct tjob t;

        tjob_init(&t, "command-a-03-2025");
        tjob_add(&t, "user", "Say hello");
        body = build_ok(COH, &p, "co-key", &t, &req);
        ck_assert_str_eq(req.url, "https://api.cohere.com/v2/chat");
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer co-key");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        ck_assert_ptr_null(req.headers[3]);
        ck_assert_str_eq(jstr(body, "model"), "command-a-03-2025");
        msgs = json_object_get(body, "messages");
        ck_assert_uint_eq(json_array_size(msgs), 1);
        assert_turn(msgs, 0, "user", "Say hello");
        ck_assert(json_is_false(json_object_get(body, "stream")));
        ck_assert_uint_eq(json_object_size(body), 3);
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_coh_build_fields)
{
        struct provider_cfg p = tcfg("cohere", "cohere_chat", "https://x/v2",
                                     "{\"safety_mode\":\"OFF\","
                                     "\"stream\":true,\"max_tokens\":1}");
        struct provider_req req;
        json_t *body, *msgs;
        struct tjob t;

        tjob_init(&t, "");
        tjob_add(&t, "system", "One.");
        tjob_add(&t, "developer", "Two.");
        tjob_add(&t, "user", "Hi");
        tjob_add(&t, "assistant", "Hello");
        tjob_add(&t, "tool", "42");
        t.chat.max_tokens = 64;
        t.chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        t.chat.temperature = 0.3f;
        body = build_ok(COH, &p, NULL, &t, &req);
        ck_assert_str_eq(req.headers[0], "Content-Type: application/json");
        ck_assert_str_eq(jstr(body, "model"), "default-model");
        msgs = json_object_get(body, "messages");
        ck_assert_uint_eq(json_array_size(msgs), 5);
        assert_turn(msgs, 0, "system", "One.");
        assert_turn(msgs, 1, "system", "Two.");
        assert_turn(msgs, 2, "user", "Hi");
        assert_turn(msgs, 3, "assistant", "Hello");
        assert_turn(msgs, 4, "user", "42");
        ck_assert_int_eq(jint(body, "max_tokens"), 64);
        ck_assert_ptr_nonnull(strstr(req.body, "\"temperature\":0.3"));
        ck_assert(json_is_false(json_object_get(body, "stream")));
        ck_assert_str_eq(jstr(body, "safety_mode"), "OFF");
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

/*
 * parse(): success
 */

/* Section 2 success sample, verbatim. */
static const char ant_ok[] =
        "{\n"
        "  \"id\": \"msg_01XFDUDYJgAACzvnptvVoYEL\",\n"
        "  \"type\": \"message\",\n"
        "  \"role\": \"assistant\",\n"
        "  \"model\": \"claude-sonnet-4-5-20250929\",\n"
        "  \"content\": [{\"type\": \"text\", \"text\": \"Hello!\"}],\n"
        "  \"stop_reason\": \"end_turn\",\n"
        "  \"stop_sequence\": null,\n"
        "  \"usage\": {\"input_tokens\": 12, \"output_tokens\": 6,\n"
        "            \"cache_creation_input_tokens\": 0, "
        "\"cache_read_input_tokens\": 0}\n"
        "}\n";

START_TEST(test_ant_parse_reference)
{
        struct provider_resp resp = tresp(200, ant_ok);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(ANT, &resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_int_eq(err.outcome, OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hello!");
        ck_assert_str_eq(res.finish_reason, "end_turn");
        ck_assert_str_eq(res.model, "claude-sonnet-4-5-20250929");
        ck_assert_int_eq(res.input_tokens, 12);
        ck_assert_int_eq(res.output_tokens, 6);
        ck_assert_str_eq(res.usage_json,
                         "{\"input_tokens\":12,\"output_tokens\":6,"
                         "\"cache_creation_input_tokens\":0,"
                         "\"cache_read_input_tokens\":0}");
        ck_assert_ptr_null(res.unit);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_ant_parse_blocks)
{
        struct provider_resp resp = tresp(
                200,
                "{\"type\":\"message\",\"content\":["
                "{\"type\":\"thinking\",\"thinking\":\"hmm\","
                "\"signature\":\"s\"},{\"type\":\"text\",\"text\":\"Hel\"},"
                "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
                "\"input\":{}},{\"type\":\"text\",\"text\":\"lo!\"}],"
                "\"stop_reason\":\"max_tokens\"}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(ANT, &resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hello!");
        ck_assert_str_eq(res.finish_reason, "max_tokens");
        ck_assert_ptr_null(res.model);
        ck_assert_int_eq(res.input_tokens, -1);
        ck_assert_int_eq(res.output_tokens, -1);
        ck_assert_ptr_null(res.usage_json);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_ant_parse_bad_200)
{
        struct provider_resp resp = tresp(200, "{\"type\":\"message\"}");
        struct provider_resp ev = tresp(
                200, "{\"type\":\"error\",\"error\":{\"type\":"
                     "\"overloaded_error\",\"message\":\"Overloaded\"}}");
        struct provider_resp junk = tresp(200, "<html>");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(ANT, &resp, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.text);
        ck_assert_ptr_nonnull(strstr(err.errstr, "no content"));
        ck_assert_int_eq(run_parse(ANT, &ev, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_str_eq(err.errstr, "200 overloaded_error: Overloaded");
        ck_assert_int_eq(run_parse(ANT, &junk, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.text);
}
END_TEST

/* Section 3 success sample, verbatim. */
static const char gem_ok[] =
        "{\n"
        "  \"candidates\": [\n"
        "    {\n"
        "      \"content\": {\"role\": \"model\", \"parts\": "
        "[{\"text\": \"Hello!\"}]},\n"
        "      \"finishReason\": \"STOP\",\n"
        "      \"index\": 0\n"
        "    }\n"
        "  ],\n"
        "  \"usageMetadata\": {\n"
        "    \"promptTokenCount\": 8,\n"
        "    \"candidatesTokenCount\": 3,\n"
        "    \"totalTokenCount\": 11\n"
        "  },\n"
        "  \"modelVersion\": \"gemini-2.5-flash\",\n"
        "  \"responseId\": \"mZFiaP2ZF7i0xN8Pg5qN8AQ\"\n"
        "}\n";

START_TEST(test_gem_parse_reference)
{
        struct provider_resp resp = tresp(200, gem_ok);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(GEM, &resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hello!");
        ck_assert_str_eq(res.finish_reason, "STOP");
        ck_assert_str_eq(res.model, "gemini-2.5-flash");
        ck_assert_int_eq(res.input_tokens, 8);
        ck_assert_int_eq(res.output_tokens, 3);
        ck_assert_str_eq(res.usage_json,
                         "{\"promptTokenCount\":8,\"candidatesTokenCount\":3,"
                         "\"totalTokenCount\":11}");
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_gem_parse_thoughts_and_parts)
{
        struct provider_resp resp = tresp(
                200,
                "{\"candidates\":[{\"content\":{\"role\":\"model\","
                "\"parts\":[{\"text\":\"thinking...\",\"thought\":true},"
                "{\"text\":\"Hel\"},{\"inlineData\":{\"mimeType\":\"x\","
                "\"data\":\"\"}},{\"text\":\"lo!\"}]},"
                "\"finishReason\":\"MAX_TOKENS\"}],"
                "\"usageMetadata\":{\"promptTokenCount\":8,"
                "\"candidatesTokenCount\":3,\"thoughtsTokenCount\":20,"
                "\"totalTokenCount\":31}}");
        struct provider_resp empty = tresp(
                200, "{\"candidates\":[{\"content\":{\"role\":\"model\"},"
                     "\"finishReason\":\"MAX_TOKENS\"}],"
                     "\"usageMetadata\":{\"promptTokenCount\":8,"
                     "\"totalTokenCount\":8}}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(GEM, &resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hello!");
        ck_assert_str_eq(res.finish_reason, "MAX_TOKENS");
        ck_assert_int_eq(res.output_tokens, 3);
        ck_assert_ptr_null(res.model);
        provider_result_clear(&res);
        /* only thoughts fit: an empty answer, still a success */
        ck_assert_int_eq(run_parse(GEM, &empty, &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "");
        ck_assert_int_eq(res.input_tokens, 8);
        ck_assert_int_eq(res.output_tokens, -1);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_gem_parse_blocked)
{
        struct provider_resp prompt = tresp(
                200, "{\"promptFeedback\":{\"blockReason\":\"SAFETY\","
                     "\"safetyRatings\":[]},\"usageMetadata\":{"
                     "\"promptTokenCount\":8,\"totalTokenCount\":8}}");
        struct provider_resp answer = tresp(
                200, "{\"candidates\":[{\"finishReason\":\"SAFETY\","
                     "\"index\":0,\"safetyRatings\":[]}]}");
        struct provider_resp nothing = tresp(200, "{\"candidates\":[]}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(GEM, &prompt, &res, &err),
                         OUTCOME_FATAL_JOB);
        ck_assert_str_eq(err.errstr, "200: prompt blocked: SAFETY");
        ck_assert_ptr_null(res.text);
        ck_assert_int_eq(run_parse(GEM, &answer, &res, &err),
                         OUTCOME_FATAL_JOB);
        ck_assert_str_eq(err.errstr, "200: answer blocked: SAFETY");
        ck_assert_ptr_null(res.text);
        ck_assert_int_eq(run_parse(GEM, &nothing, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_str_eq(err.errstr, "200: no candidates");
}
END_TEST

/* Section 4 success sample, verbatim. */
static const char coh_ok[] =
        "{\n"
        "  \"id\": \"c14c80c3-18eb-4519-9460-6c92edd8cfb4\",\n"
        "  \"finish_reason\": \"COMPLETE\",\n"
        "  \"message\": {\"role\": \"assistant\", \"content\": "
        "[{\"type\": \"text\", \"text\": \"Hello!\"}]},\n"
        "  \"usage\": {\n"
        "    \"billed_units\": {\"input_tokens\": 5, \"output_tokens\": 3},\n"
        "    \"tokens\": {\"input_tokens\": 71, \"output_tokens\": 3}\n"
        "  }\n"
        "}\n";

START_TEST(test_coh_parse_reference)
{
        struct provider_resp resp = tresp(200, coh_ok);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(COH, &resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hello!");
        ck_assert_str_eq(res.finish_reason, "COMPLETE");
        ck_assert_ptr_null(res.model);
        ck_assert_int_eq(res.input_tokens, 5);
        ck_assert_int_eq(res.output_tokens, 3);
        ck_assert_str_eq(res.usage_json,
                         "{\"billed_units\":{\"input_tokens\":5,"
                         "\"output_tokens\":3},\"tokens\":{"
                         "\"input_tokens\":71,\"output_tokens\":3}}");
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_coh_parse_variants)
{
        struct provider_resp floats = tresp(
                200, "{\"finish_reason\":\"MAX_TOKENS\",\"message\":{"
                     "\"role\":\"assistant\",\"content\":["
                     "{\"type\":\"thinking\",\"thinking\":\"x\"},"
                     "{\"type\":\"text\",\"text\":\"Hi\"}]},\"usage\":{"
                     "\"billed_units\":{\"input_tokens\":5.0,"
                     "\"output_tokens\":2.0}}}");
        struct provider_resp none = tresp(200, "{\"id\":\"x\"}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(COH, &floats, &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hi");
        ck_assert_int_eq(res.input_tokens, 5);
        ck_assert_int_eq(res.output_tokens, 2);
        provider_result_clear(&res);
        ck_assert_int_eq(run_parse(COH, &none, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.text);
}
END_TEST

/*
 * Classification: one row per section-12 row of these providers.
 */

static const struct row {
        const struct provider_ops *ops;
        long status;
        const char *body;
        int64_t retry_after_ms; /**< from the headers, -1 none */
        enum outcome want;
        int64_t want_hint;      /**< NO_HINT: not checked */
} rows[] = {
        /* Anthropic (section 2 and section 12) */
        {ANT, 400,
         "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
         "\"message\":\"Your credit balance is too low to access the "
         "Anthropic API. Please go to Plans & Billing to upgrade or "
         "purchase credits.\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, -1},
        {ANT, 400,
         "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
         "\"message\":\"You have reached your specified API usage limits. "
         "You will regain access on 2030-01-01 at 00:00 UTC.\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT},
        {ANT, 400,
         "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
         "\"message\":\"max_tokens: Field required\"},"
         "\"request_id\":\"req_1\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT},
        {ANT, 401,
         "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
         "\"message\":\"invalid x-api-key\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT},
        {ANT, 402,
         "{\"type\":\"error\",\"error\":{\"type\":\"billing_error\","
         "\"message\":\"billing\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT},
        {ANT, 403,
         "{\"type\":\"error\",\"error\":{\"type\":\"permission_error\","
         "\"message\":\"Your API key does not have permission to use the "
         "specified resource.\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT},
        {ANT, 404,
         "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
         "\"message\":\"model: claude-x\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT},
        {ANT, 413,
         "{\"type\":\"error\",\"error\":{\"type\":\"request_too_large\","
         "\"message\":\"Request exceeds the maximum allowed number of "
         "bytes.\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT},
        {ANT, 429,
         "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
         "\"message\":\"monthly spend limit\",\"details\":{\"error_code\":"
         "\"enforced_spend_limit_reached\"}}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, -1},
        {ANT, 429,
         "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
         "\"message\":\"This request would exceed the rate limit\"}}",
         12000, OUTCOME_RETRY_LATER, 12000},
        {ANT, 500,
         "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
         "\"message\":\"Internal server error\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT},
        /* verbatim 529 sample */
        {ANT, 529,
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
         "\"message\":\"Overloaded\"},\"request_id\":"
         "\"req_011CSLsW7mFqvHHnzrKdKjAE\"}",
         -1, OUTCOME_RETRY_LATER, -1},
        /* a status the table lacks: error.type decides */
        {ANT, 503,
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
         "\"message\":\"Overloaded\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT},
        {ANT, 418,
         "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
         "\"message\":\"x\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT},
        {ANT, 422, "{\"type\":\"error\",\"error\":{\"type\":\"new_error\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT},
        /* no JSON: status only; a 403 page is not the key */
        {ANT, 401, "Unauthorized", -1, OUTCOME_KEY_DISABLED, NO_HINT},
        {ANT, 403, "<html>Forbidden</html>", -1, OUTCOME_FALLBACK_NEXT,
         NO_HINT},
        {ANT, 502, "<html>Bad Gateway</html>", -1, OUTCOME_RETRY_LATER,
         NO_HINT},
        {ANT, 529, "", 2000, OUTCOME_RETRY_LATER, 2000},

        /* Gemini (section 3 and section 12): verbatim API_KEY_INVALID */
        {GEM, 400,
         "{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"API key "
         "not valid. Please pass a valid API key.\",\n    \"status\": "
         "\"INVALID_ARGUMENT\",\n    \"details\": [\n      {\"@type\": "
         "\"type.googleapis.com/google.rpc.ErrorInfo\", \"reason\": "
         "\"API_KEY_INVALID\",\n       \"domain\": \"googleapis.com\", "
         "\"metadata\": {\"service\": "
         "\"generativelanguage.googleapis.com\"}},\n      {\"@type\": "
         "\"type.googleapis.com/google.rpc.LocalizedMessage\", \"locale\": "
         "\"en-US\",\n       \"message\": \"API key not valid. Please pass "
         "a valid API key.\"}\n    ]\n  }\n}",
         -1, OUTCOME_KEY_DISABLED, -1},
        {GEM, 400,
         "{\"error\":{\"code\":400,\"message\":\"API Key not found. Please "
         "pass a valid API key.\",\"status\":\"INVALID_ARGUMENT\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT},
        {GEM, 400,
         "{\"error\":{\"code\":400,\"message\":\"* GenerateContentRequest."
         "contents: contents is not specified\\n\",\"status\":"
         "\"INVALID_ARGUMENT\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT},
        {GEM, 400,
         "{\"error\":{\"code\":400,\"message\":\"Precondition check "
         "failed.\",\"status\":\"FAILED_PRECONDITION\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT},
        {GEM, 400,
         "{\"error\":{\"code\":400,\"message\":\"User location is not "
         "supported for the API use.\",\"status\":\"FAILED_PRECONDITION\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT},
        {GEM, 403,
         "{\"error\":{\"code\":403,\"message\":\"Permission denied\","
         "\"status\":\"PERMISSION_DENIED\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT},
        {GEM, 404,
         "{\"error\":{\"code\":404,\"message\":\"models/x is not found for "
         "API version v1beta\",\"status\":\"NOT_FOUND\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT},
        /* verbatim 429 sample */
        {GEM, 429,
         "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted "
         "(e.g. check quota).\",\"status\":\"RESOURCE_EXHAUSTED\"}}",
         -1, OUTCOME_RETRY_LATER, -1},
        {GEM, 429,
         "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted "
         "(e.g. check quota).\",\"status\":\"RESOURCE_EXHAUSTED\","
         "\"details\":[{\"@type\":\"type.googleapis.com/google.rpc."
         "RetryInfo\",\"retryDelay\":\"37s\"}]}}",
         -1, OUTCOME_RETRY_LATER, 37000},
        /* a Retry-After header wins over the body */
        {GEM, 429,
         "{\"error\":{\"code\":429,\"message\":\"x\",\"status\":"
         "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis."
         "com/google.rpc.RetryInfo\",\"retryDelay\":\"37s\"}]}}",
         5000, OUTCOME_RETRY_LATER, 5000},
        {GEM, 429,
         "{\"error\":{\"code\":429,\"message\":\"x\",\"status\":"
         "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis."
         "com/google.rpc.RetryInfo\",\"retryDelay\":\"1.250s\"}]}}",
         -1, OUTCOME_RETRY_LATER, 1250},
        {GEM, 429,
         "{\"error\":{\"code\":429,\"message\":\"You exceeded your current "
         "quota, please check your plan and billing details.\",\"status\":"
         "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis."
         "com/google.rpc.RetryInfo\",\"retryDelay\":\"0.5s\"}]}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, 500},
        {GEM, 429,
         "{\"error\":{\"code\":429,\"message\":\"Quota exceeded for "
         "metric\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{"
         "\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
         "\"violations\":[{\"quotaId\":\"GenerateRequestsPerMinute\"},"
         "{\"quotaId\":\"GenerateRequestsPerDayPerProjectPerModel-"
         "FreeTier\"}]}]}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT},
        {GEM, 429,
         "{\"error\":{\"code\":429,\"message\":\"Quota exceeded for "
         "metric\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{"
         "\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
         "\"violations\":[{\"quotaId\":\"GenerateRequestsPerMinute\"}]}]}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT},
        {GEM, 500,
         "{\"error\":{\"code\":500,\"message\":\"An internal error has "
         "occurred.\",\"status\":\"INTERNAL\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT},
        /* verbatim 503 sample */
        {GEM, 503,
         "{\"error\":{\"code\":503,\"message\":\"The model is overloaded. "
         "Please try again later.\",\"status\":\"UNAVAILABLE\"}}",
         -1, OUTCOME_RETRY_LATER, -1},
        /* statuses the table lacks: error.status decides */
        {GEM, 401,
         "{\"error\":{\"code\":401,\"message\":\"Request had invalid "
         "authentication credentials.\",\"status\":\"UNAUTHENTICATED\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT},
        {GEM, 504,
         "{\"error\":{\"code\":504,\"message\":\"Deadline\",\"status\":"
         "\"DEADLINE_EXCEEDED\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT},
        /* streaming-style array body */
        {GEM, 404,
         "[{\"error\":{\"code\":404,\"message\":\"not found\",\"status\":"
         "\"NOT_FOUND\"}}]",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT},
        {GEM, 403, "<html>Forbidden</html>", -1, OUTCOME_FALLBACK_NEXT,
         NO_HINT},
        {GEM, 503, "<html>unavailable</html>", -1, OUTCOME_RETRY_LATER,
         NO_HINT},

        /* Cohere (section 4 and section 12) */
        {COH, 400, "{\"id\":\"x\",\"message\":\"invalid request: model "
                   "must be specified\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT},
        {COH, 401, "{\"id\":\"x\",\"message\":\"invalid api token\"}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT},
        {COH, 402, "{\"id\":\"x\",\"message\":\"Please add or update your "
                   "payment method\"}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT},
        {COH, 404, "{\"id\":\"x\",\"message\":\"model 'command-x' not "
                   "found, make sure the correct model ID was used\"}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT},
        {COH, 404, "{\"id\":\"x\",\"message\":\"not found\"}", -1,
         OUTCOME_FATAL_JOB, NO_HINT},
        {COH, 429, "{\"id\":\"x\",\"message\":\"You are using a Trial key, "
                   "which is limited to 10 API calls / minute.\"}",
         -1, OUTCOME_RETRY_LATER, -1},
        {COH, 429, "{\"id\":\"x\",\"message\":\"Too many requests, try "
                   "again in 2s\"}",
         -1, OUTCOME_RETRY_LATER, 2000},
        {COH, 429, "{\"id\":\"x\",\"message\":\"You are using a Trial key, "
                   "which is limited to 1000 API calls / month.\"}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT},
        {COH, 500, "{\"id\":\"x\",\"message\":\"internal server error\"}",
         -1, OUTCOME_RETRY_LATER, NO_HINT},
        {COH, 503, "{\"id\":\"x\",\"message\":\"service unavailable\"}", 3000,
         OUTCOME_RETRY_LATER, 3000},
        {COH, 401, "Unauthorized", -1, OUTCOME_KEY_DISABLED, NO_HINT},
        {COH, 404, "<html>404</html>", -1, OUTCOME_FALLBACK_NEXT, NO_HINT},
        {COH, 422, "{\"message\":\"bad\"}", -1, OUTCOME_FATAL_JOB, NO_HINT},
};
#define N_ROWS ((int)(sizeof(rows) / sizeof(rows[0])))

START_TEST(test_classify_row)
{
        const struct row *r = &rows[_i];
        struct provider_resp resp = tresp(r->status, r->body);
        struct provider_result res;
        struct provider_err err;
        enum outcome o;

        resp.retry_after_ms = r->retry_after_ms;
        o = run_parse(r->ops, &resp, &res, &err);
        ck_assert_msg(o == r->want, "row %d (%s %ld): got %s, want %s (%s)",
                      _i, r->ops->name, r->status, outcome_name(o),
                      outcome_name(r->want), err.errstr);
        ck_assert_int_eq(err.outcome, o);
        ck_assert_int_eq(err.http_status, r->status);
        ck_assert_ptr_null(res.text);
        ck_assert(*err.errstr);
        if (r->want_hint != NO_HINT)
                ck_assert_msg(err.retry_after_ms == r->want_hint,
                              "row %d: hint %lld, want %lld", _i,
                              (long long)err.retry_after_ms,
                              (long long)r->want_hint);
}
END_TEST

START_TEST(test_errstr_shapes)
{
        struct provider_resp a = tresp(
                401, "{\"type\":\"error\",\"error\":{\"type\":"
                     "\"authentication_error\",\"message\":\"invalid key "
                     "sk-ant-api03-AbCdEf123456789\"}}");
        struct provider_resp g = tresp(
                400, "{\"error\":{\"code\":400,\"message\":\"bad request "
                     "GET /v1beta/models/x?key=AIzaSyAbc123def456 and "
                     "AIzaOther987654\",\"status\":\"INVALID_ARGUMENT\"}}");
        struct provider_resp c = tresp(401, "{\"message\":\"invalid api "
                                            "token\"}");
        struct provider_result res;
        struct provider_err err;

        run_parse(ANT, &a, &res, &err);
        ck_assert_str_eq(err.errstr, "401 authentication_error: invalid key "
                                     "sk-ant-\xe2\x80\xa6");
        run_parse(GEM, &g, &res, &err);
        ck_assert_str_eq(err.errstr,
                         "400 INVALID_ARGUMENT: bad request GET "
                         "/v1beta/models/x?key=\xe2\x80\xa6 and "
                         "AIza\xe2\x80\xa6");
        run_parse(COH, &c, &res, &err);
        ck_assert_str_eq(err.errstr, "401: invalid api token");
}
END_TEST

START_TEST(test_errstr_long_utf8)
{
        static char body[2048];
        struct provider_resp resp;
        struct provider_result res;
        struct provider_err err;
        json_t *valid;
        size_t n;

        n = (size_t)snprintf(body, sizeof(body),
                             "{\"error\":{\"code\":500,\"status\":"
                             "\"INTERNAL\",\"message\":\"");
        while (n < 1500) {
                memcpy(body + n, "\xe4\xbd\x99", 3); /* U+4F59 */
                n += 3;
        }
        memcpy(body + n, "\"}}", 4);
        resp = tresp(500, body);
        ck_assert_int_eq(run_parse(GEM, &resp, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_uint_lt(strlen(err.errstr), sizeof(err.errstr));
        valid = json_string(err.errstr); /* NULL unless valid UTF-8 */
        ck_assert_ptr_nonnull(valid);
        json_decref(valid);
}
END_TEST

START_TEST(test_transport_errors)
{
        static const struct provider_ops *const all[] = {ANT, GEM, COH};
        struct provider_resp resp = tresp(0, NULL);
        struct provider_result res;
        struct provider_err err;

        resp.transport_err = 28;
        resp.timed_out = 1;
        resp.transport_msg = "Operation timed out";
        ck_assert_int_eq(run_parse(all[_i], &resp, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_nonnull(strstr(err.errstr, "timeout"));
        resp = tresp(200, "{\"ok\":");
        resp.truncated = 1;
        ck_assert_int_eq(run_parse(all[_i], &resp, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.text);
        resp = tresp(302, "");
        ck_assert_int_eq(run_parse(all[_i], &resp, &res, &err),
                         OUTCOME_FALLBACK_NEXT);
}
END_TEST

START_TEST(test_registry)
{
        static const struct {
                const char *name;
                const struct provider_ops *ops;
        } want[] = {
                {"anthropic_messages", ANT},
                {"gemini_generate", GEM},
                {"cohere_chat", COH},
        };

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const struct provider_ops *o = provider_ops_find(want[i].name);

                ck_assert_ptr_eq(o, want[i].ops);
                ck_assert_int_eq(o->kind, GENQ__V1__KIND__KIND_CHAT);
                ck_assert_uint_eq(o->flags, 0);
                ck_assert_ptr_nonnull(o->build);
                ck_assert_ptr_nonnull(o->parse);
                ck_assert_ptr_null(o->build_poll);
                ck_assert_ptr_null(o->parse_poll);
        }
}
END_TEST

/*
 * Runner
 */

static Suite *chat_suite(void)
{
        Suite *s = suite_create("provider_chat");
        TCase *tb = tcase_create("build");
        TCase *tp = tcase_create("parse");
        TCase *tt = tcase_create("classify");

        tcase_add_test(tb, test_ant_build_url_headers);
        tcase_add_test(tb, test_ant_build_reference_request);
        tcase_add_test(tb, test_ant_build_roles_and_defaults);
        tcase_add_test(tb, test_ant_build_temperature);
        tcase_add_test(tb, test_ant_build_extra_thinking);
        tcase_add_test(tb, test_ant_build_extra_disabled_thinking);
        tcase_add_test(tb, test_ant_build_no_key);
        tcase_add_test(tb, test_gem_build_url_headers);
        tcase_add_test(tb, test_gem_build_url_encoding);
        tcase_add_test(tb, test_gem_build_reference_request);
        tcase_add_test(tb, test_gem_build_roles_and_defaults);
        tcase_add_test(tb, test_gem_build_extra_nested);
        tcase_add_test(tb, test_coh_build_reference_request);
        tcase_add_test(tb, test_coh_build_fields);
        tcase_add_loop_test(tb, test_build_failures, 0, 3);
        tcase_add_test(tb, test_build_only_system_messages);
        tcase_add_test(tp, test_ant_parse_reference);
        tcase_add_test(tp, test_ant_parse_blocks);
        tcase_add_test(tp, test_ant_parse_bad_200);
        tcase_add_test(tp, test_gem_parse_reference);
        tcase_add_test(tp, test_gem_parse_thoughts_and_parts);
        tcase_add_test(tp, test_gem_parse_blocked);
        tcase_add_test(tp, test_coh_parse_reference);
        tcase_add_test(tp, test_coh_parse_variants);
        tcase_add_test(tp, test_errstr_shapes);
        tcase_add_test(tp, test_errstr_long_utf8);
        tcase_add_loop_test(tp, test_transport_errors, 0, 3);
        tcase_add_test(tp, test_registry);
        /* one iteration per row of rows[] */
        tcase_add_loop_test(tt, test_classify_row, 0, N_ROWS);
        suite_add_tcase(s, tb);
        suite_add_tcase(s, tp);
        suite_add_tcase(s, tt);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(chat_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
