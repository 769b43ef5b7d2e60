/*
 * Unit tests for worker/provider.c and worker/provider_openai.c: request
 * building, success parsing, one case per OpenAI-compatible row of the
 * reference's section 12, the generic rules and the retry-hint parsers.
 * No network: responses are made by hand, bodies are the reference's
 * verbatim samples where it gives them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider.h"

#define NO_HINT (-2) /* a row that does not check retry_after_ms */

/*
 * Fixtures.
 */

/** A chat job on the stack, with up to two messages. */
struct tjob {
        Genq__V1__Job job;
        Genq__V1__ChatRequest chat;
        Genq__V1__ChatMessage msg[2];
        Genq__V1__ChatMessage *msgp[2];
};

static void tjob_init(struct tjob *t, const char *model)
{
        genq__v1__job__init(&t->job);
        genq__v1__chat_request__init(&t->chat);
        for (int i = 0; i < 2; i++) {
                genq__v1__chat_message__init(&t->msg[i]);
                t->msgp[i] = &t->msg[i];
        }
        t->msg[0].role = "system";
        t->msg[0].content = "You are terse.";
        t->msg[1].role = "user";
        t->msg[1].content = "Say hello";
        t->chat.messages = t->msgp;
        t->chat.n_messages = 2;
        t->chat.model = (char *)model;
        t->job.kind = GENQ__V1__KIND__KIND_CHAT;
        t->job.payload_case = GENQ__V1__JOB__PAYLOAD_CHAT;
        t->job.chat = &t->chat;
}

static struct provider_cfg tcfg(const char *base, const char *extra)
{
        struct provider_cfg p = {
                .name = "openai",
                .adapter = "openai_chat",
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

/** Build with the default config and key; parse the body as JSON. */
static json_t *build_ok(const struct provider_cfg *p, const struct tjob *t,
                        struct provider_req *req)
{
        char errstr[256];
        json_t *body;
        int r;

        r = provider_openai_chat_ops.build(p, "sk-test-123", &t->job, NULL, req,
                                           errstr, sizeof(errstr));
        ck_assert_msg(r == 0, "build failed: %s", errstr);
        ck_assert_uint_eq(req->body_len, strlen(req->body));
        body = json_loads(req->body, 0, NULL);
        ck_assert_ptr_nonnull(body);
        return body;
}

static enum outcome run_parse(const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err)
{
        struct provider_cfg p = tcfg("https://x/v1", NULL);

        memset(res, 0, sizeof(*res));
        memset(err, 0, sizeof(*err));
        return provider_openai_chat_ops.parse(&p, NULL, resp, res, err);
}

/*
 * build()
 */

START_TEST(test_build_url_and_headers)
{
        struct provider_cfg p = tcfg("https://api.openai.com/v1/", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *body;

        tjob_init(&t, "gpt-4o-mini");
        body = build_ok(&p, &t, &req);
        ck_assert_str_eq(req.url,
                         "https://api.openai.com/v1/chat/completions");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-test-123");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        ck_assert_ptr_null(req.headers[3]);
        json_decref(body);
        provider_req_clear(&req);
        ck_assert_ptr_null(req.headers);
        ck_assert_ptr_null(req.body);
}
END_TEST

START_TEST(test_build_url_no_trailing_slash)
{
        struct provider_cfg p = tcfg("https://api.groq.com/openai/v1", NULL);
        struct provider_req req;
        struct tjob t;

        tjob_init(&t, "");
        json_decref(build_ok(&p, &t, &req));
        ck_assert_str_eq(req.url,
                         "https://api.groq.com/openai/v1/chat/completions");
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_build_body_fields)
{
        struct provider_cfg p = tcfg("https://x/v1", NULL);
        struct provider_req req;
        json_t *body, *msgs;
        struct tjob t;

        tjob_init(&t, "gpt-4o-mini");
        t.chat.max_tokens = 256;
        t.chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        t.chat.temperature = 0.7f;
        body = build_ok(&p, &t, &req);
        ck_assert_str_eq(json_string_value(json_object_get(body, "model")),
                         "gpt-4o-mini");
        msgs = json_object_get(body, "messages");
        ck_assert_uint_eq(json_array_size(msgs), 2);
        ck_assert_str_eq(json_string_value(json_object_get(
                                 json_array_get(msgs, 0), "role")),
                         "system");
        ck_assert_str_eq(json_string_value(json_object_get(
                                 json_array_get(msgs, 1), "content")),
                         "Say hello");
        ck_assert_int_eq(
                json_integer_value(json_object_get(body, "max_tokens")), 256);
        ck_assert_double_eq_tol(
                json_real_value(json_object_get(body, "temperature")), 0.7,
                1e-6);
        ck_assert_ptr_nonnull(strstr(req.body, "\"temperature\":0.7,"));
        ck_assert(json_is_false(json_object_get(body, "stream")));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_build_defaults)
{
        struct provider_cfg p = tcfg("https://x/v1", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *body;

        tjob_init(&t, "");
        body = build_ok(&p, &t, &req);
        ck_assert_str_eq(json_string_value(json_object_get(body, "model")),
                         "default-model");
        ck_assert_ptr_null(json_object_get(body, "max_tokens"));
        ck_assert_ptr_null(json_object_get(body, "temperature"));
        ck_assert(json_is_false(json_object_get(body, "stream")));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_build_temperature_zero_present)
{
        struct provider_cfg p = tcfg("https://x/v1", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *body;

        tjob_init(&t, "m");
        t.chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        t.chat.temperature = 0.0f;
        body = build_ok(&p, &t, &req);
        ck_assert(json_is_number(json_object_get(body, "temperature")));
        ck_assert_double_eq(
                json_number_value(json_object_get(body, "temperature")), 0.0);
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_build_extra_body_merged)
{
        struct provider_cfg p = tcfg(
                "https://x/v1",
                "{\"enable_enhancement\":true,"
                "\"thinking\":{\"type\":\"enabled\"},"
                "\"stream\":true,\"model\":\"evil\",\"max_tokens\":5}");
        struct provider_req req;
        struct tjob t;
        json_t *body;

        tjob_init(&t, "hunyuan-turbos-latest");
        t.chat.max_tokens = 100;
        body = build_ok(&p, &t, &req);
        ck_assert(json_is_true(json_object_get(body, "enable_enhancement")));
        ck_assert_str_eq(json_string_value(json_object_get(
                                 json_object_get(body, "thinking"), "type")),
                         "enabled");
        /* adapter-owned keys are never overridden */
        ck_assert(json_is_false(json_object_get(body, "stream")));
        ck_assert_str_eq(json_string_value(json_object_get(body, "model")),
                         "hunyuan-turbos-latest");
        ck_assert_int_eq(
                json_integer_value(json_object_get(body, "max_tokens")), 100);
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_build_extra_body_is_default)
{
        struct provider_cfg p = tcfg("https://x/v1", "{\"max_tokens\":5}");
        struct provider_req req;
        struct tjob t;
        json_t *body;

        tjob_init(&t, "m");
        body = build_ok(&p, &t, &req);
        ck_assert_int_eq(
                json_integer_value(json_object_get(body, "max_tokens")), 5);
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

/** A build that must fail, with \p want in the error text. */
static void build_fails(const struct provider_cfg *p, const char *key,
                        const Genq__V1__Job *job, const char *want)
{
        struct provider_req req;
        char errstr[256] = "";

        memset(&req, 0x5a, sizeof(req));
        ck_assert_int_eq(provider_openai_chat_ops.build(p, key, job, NULL, &req,
                                                        errstr,
                                                        sizeof(errstr)),
                         -1);
        ck_assert_msg(strstr(errstr, want), "errstr \"%s\" lacks \"%s\"",
                      errstr, want);
        ck_assert_ptr_null(req.headers);
        ck_assert_ptr_null(req.body);
}

START_TEST(test_build_extra_body_invalid)
{
        struct provider_cfg bad = tcfg("https://x/v1", "{not json");
        struct provider_cfg arr = tcfg("https://x/v1", "[1,2]");
        struct tjob t;

        tjob_init(&t, "m");
        build_fails(&bad, "k", &t.job, "extra_body");
        build_fails(&arr, "k", &t.job, "extra_body");
}
END_TEST

START_TEST(test_build_missing_model)
{
        struct provider_cfg p = tcfg("https://x/v1", NULL);
        struct tjob t;

        p.model = NULL;
        tjob_init(&t, "");
        build_fails(&p, "k", &t.job, "no model");
        p.model = "";
        build_fails(&p, "k", &t.job, "no model");
}
END_TEST

START_TEST(test_build_bad_inputs)
{
        struct provider_cfg p = tcfg("https://x/v1", NULL);
        struct provider_cfg nobase = tcfg(NULL, NULL);
        static char longbase[2100];
        struct provider_cfg lng;
        struct tjob t;

        memset(longbase, 'a', sizeof(longbase) - 1);
        lng = tcfg(longbase, NULL);
        tjob_init(&t, "m");
        build_fails(&p, "sk-x\r\nX-Evil: 1", &t.job, "newline");
        build_fails(&nobase, "k", &t.job, "base_url");
        build_fails(&lng, "k", &t.job, "too long");
        t.job.payload_case = GENQ__V1__JOB__PAYLOAD_IMAGE;
        build_fails(&p, "k", &t.job, "not a chat job");
}
END_TEST

START_TEST(test_build_no_key_no_auth_header)
{
        struct provider_cfg p = tcfg("http://127.0.0.1:8080/v1", NULL);
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        tjob_init(&t, "m");
        ck_assert_int_eq(provider_openai_chat_ops.build(
                                 &p, NULL, &t.job, NULL, &req, errstr,
                                 sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.headers[0], "Content-Type: application/json");
        ck_assert_ptr_null(req.headers[2]);
        provider_req_clear(&req);
}
END_TEST

/*
 * parse(): success
 */

static const char ok_sample[] =
        "{\n"
        "  \"id\": \"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\n"
        "  \"object\": \"chat.completion\",\n"
        "  \"created\": 1741569952,\n"
        "  \"model\": \"gpt-4o-mini-2024-07-18\",\n"
        "  \"choices\": [\n"
        "    {\n"
        "      \"index\": 0,\n"
        "      \"message\": {\"role\": \"assistant\", \"content\": "
        "\"Hello!\", \"refusal\": null},\n"
        "      \"logprobs\": null,\n"
        "      \"finish_reason\": \"stop\"\n"
        "    }\n"
        "  ],\n"
        "  \"usage\": {\n"
        "    \"prompt_tokens\": 19,\n"
        "    \"completion_tokens\": 10,\n"
        "    \"total_tokens\": 29,\n"
        "    \"prompt_tokens_details\": {\"cached_tokens\": 0, "
        "\"audio_tokens\": 0},\n"
        "    \"completion_tokens_details\": {\"reasoning_tokens\": 0, "
        "\"audio_tokens\": 0,\n"
        "      \"accepted_prediction_tokens\": 0, "
        "\"rejected_prediction_tokens\": 0}\n"
        "  },\n"
        "  \"system_fingerprint\": \"fp_06737a9306\"\n"
        "}\n";

START_TEST(test_parse_reference_success)
{
        struct provider_resp resp = tresp(200, ok_sample);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(&resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_int_eq(err.outcome, OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hello!");
        ck_assert_str_eq(res.finish_reason, "stop");
        ck_assert_str_eq(res.model, "gpt-4o-mini-2024-07-18");
        ck_assert_int_eq(res.input_tokens, 19);
        ck_assert_int_eq(res.output_tokens, 10);
        ck_assert_str_eq(
                res.usage_json,
                "{\"prompt_tokens\":19,\"completion_tokens\":10,"
                "\"total_tokens\":29,\"prompt_tokens_details\":"
                "{\"cached_tokens\":0,\"audio_tokens\":0},"
                "\"completion_tokens_details\":{\"reasoning_tokens\":0,"
                "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
                "\"rejected_prediction_tokens\":0}}");
        provider_result_clear(&res);
        ck_assert_ptr_null(res.text);
        ck_assert_int_eq(res.input_tokens, -1);
        ck_assert_int_eq(res.output_tokens, -1);
}
END_TEST

START_TEST(test_parse_content_parts)
{
        struct provider_resp resp = tresp(
                200,
                "{\"choices\":[{\"message\":{\"role\":\"assistant\","
                "\"content\":[{\"type\":\"text\",\"text\":\"Hel\"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}},"
                "{\"type\":\"text\",\"text\":\"lo!\"}]},"
                "\"finish_reason\":\"length\"}],"
                "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
                "\"total_tokens\":5}}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(&resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hello!");
        ck_assert_str_eq(res.finish_reason, "length");
        ck_assert_ptr_null(res.model);
        ck_assert_int_eq(res.input_tokens, 3);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_parse_no_usage)
{
        struct provider_resp resp = tresp(
                200, "{\"model\":\"m\",\"choices\":[{\"message\":"
                     "{\"content\":null},\"finish_reason\":\"stop\"}]}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(&resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "");
        ck_assert_int_eq(res.input_tokens, -1);
        ck_assert_int_eq(res.output_tokens, -1);
        ck_assert_ptr_null(res.usage_json);
        provider_result_clear(&res);
}
END_TEST

/*
 * parse(): one case per section 12 row for OpenAI-compatible chat, plus
 * the "Any" rows.  Bodies are verbatim from the reference where it has
 * them.
 */

static const struct row {
        const char *name;
        long status;
        const char *body;
        int64_t retry_after_ms; /**< what the httploop read from headers */
        enum outcome want;
        int64_t want_hint;      /**< NO_HINT = do not check */
        const char *want_err;   /**< substring of errstr, or NULL */
} rows[] = {
        /* OpenAI */
        {"openai 400 context_length_exceeded", 400,
         "{\"error\":{\"message\":\"This model's maximum context length is "
         "8192 tokens.\",\"type\":\"invalid_request_error\",\"param\":"
         "\"messages\",\"code\":\"context_length_exceeded\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT,
         "400 invalid_request_error/context_length_exceeded: This model"},
        {"openai 400 content_policy_violation", 400,
         "{\"error\":{\"message\":\"Your request was rejected.\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":"
         "\"content_policy_violation\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"openai 400 safety system", 400,
         "{\"error\":{\"message\":\"Your request was rejected as a result of "
         "our safety system.\",\"type\":\"invalid_request_error\",\"param\":"
         "null,\"code\":null}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"openai 400 other invalid_request_error", 400,
         "{\"error\":{\"message\":\"Invalid value for 'temperature'.\","
         "\"type\":\"invalid_request_error\",\"param\":\"temperature\","
         "\"code\":null}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT,
         "400 invalid_request_error: Invalid value"},
        {"openai 401 invalid_api_key", 401,
         "{\"error\":{\"message\":\"Incorrect API key provided: "
         "sk-****\xe2\x80\xa6****. You can find your API key at "
         "https://platform.openai.com/account/api-keys.\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":"
         "\"invalid_api_key\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, "invalid_api_key"},
        {"openai 401 IP not authorized", 401,
         "{\"error\":{\"message\":\"IP not authorized\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":null}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"openai 401 member of an organization", 401,
         "{\"error\":{\"message\":\"You must be a member of an organization "
         "to use the API\",\"type\":\"invalid_request_error\",\"param\":"
         "null,\"code\":\"no_organization\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"openai 403 region", 403,
         "{\"error\":{\"message\":\"Country, region, or territory not "
         "supported\",\"type\":\"request_forbidden\",\"param\":null,"
         "\"code\":\"unsupported_country_region_territory\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"openai 404 model_not_found", 404,
         "{\"error\":{\"message\":\"The model `x` does not exist or you do "
         "not have access to it.\",\"type\":\"invalid_request_error\","
         "\"param\":null,\"code\":\"model_not_found\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"openai 429 insufficient_quota", 429,
         "{\n  \"error\": {\n    \"message\": \"You exceeded your current "
         "quota, please check your plan and billing details. For more "
         "information on this error, read the docs: "
         "https://platform.openai.com/docs/guides/error-codes/api-errors."
         "\",\n    \"type\": \"insufficient_quota\",\n    \"param\": null,\n"
         "    \"code\": \"insufficient_quota\"\n  }\n}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT,
         "429 insufficient_quota/insufficient_quota: You exceeded"},
        {"openai 429 credit_balance_exhausted", 429,
         "{\"error\":{\"message\":\"You have no credits remaining.\","
         "\"type\":\"billing\",\"param\":null,\"code\":"
         "\"credit_balance_exhausted\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"openai 429 organization_spend_limit_exceeded", 429,
         "{\"error\":{\"message\":\"Spend limit reached.\",\"type\":"
         "\"billing\",\"code\":\"organization_spend_limit_exceeded\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"openai 429 project_spend_limit_exceeded", 429,
         "{\"error\":{\"message\":\"Spend limit reached.\",\"type\":"
         "\"billing\",\"code\":\"project_spend_limit_exceeded\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"openai 429 organization_usage_limit_exceeded", 429,
         "{\"error\":{\"message\":\"Usage limit reached.\",\"type\":"
         "\"billing\",\"code\":\"organization_usage_limit_exceeded\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"openai 429 rate_limit_exceeded (try again in 20s)", 429,
         "{\n  \"error\": {\n    \"message\": \"Rate limit reached for "
         "gpt-4o-mini in organization org-xxxxxxxx on requests per min "
         "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. "
         "Visit https://platform.openai.com/account/rate-limits to learn "
         "more.\",\n    \"type\": \"requests\",\n    \"param\": null,\n"
         "    \"code\": \"rate_limit_exceeded\"\n  }\n}",
         -1, OUTCOME_RETRY_LATER, 20000,
         "429 requests/rate_limit_exceeded: Rate limit reached"},
        {"openai 429 type tokens, no code", 429,
         "{\"error\":{\"message\":\"Rate limit reached on tokens per min.\","
         "\"type\":\"tokens\",\"param\":null,\"code\":null}}",
         -1, OUTCOME_RETRY_LATER, -1, NULL},
        {"openai 500 server_error", 500,
         "{\"error\":{\"message\":\"The server had an error while processing "
         "your request. Sorry about that!\",\"type\":\"server_error\","
         "\"param\":null,\"code\":\"server_error\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, "500 server_error/server_error"},
        {"openai 503 overloaded", 503,
         "{\"error\":{\"message\":\"The engine is currently overloaded, "
         "please try again later.\",\"type\":\"service_unavailable_error\","
         "\"param\":null,\"code\":\"server_is_overloaded\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"openai 503 slow_down", 503,
         "{\"error\":{\"message\":\"Slow down.\",\"type\":"
         "\"service_unavailable_error\",\"code\":\"slow_down\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* Groq */
        {"groq 429 rate_limit_exceeded (body hint)", 429,
         "{\"error\":{\"message\":\"Rate limit reached for model "
         "`gemma2-9b-it` in organization org_xxx service tier `on_demand` "
         "on tokens per minute (TPM): Limit 15000, Used 11972, Requested "
         "4351. Please try again in 5.289s. Visit "
         "https://console.groq.com/docs/rate-limits for more information."
         "\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}",
         -1, OUTCOME_RETRY_LATER, 5289, NULL},
        {"groq 429 rate_limit_exceeded (retry-after header wins)", 429,
         "{\"error\":{\"message\":\"Rate limit reached for model "
         "`gemma2-9b-it` in organization org_xxx service tier `on_demand` "
         "on tokens per minute (TPM): Limit 15000, Used 11972, Requested "
         "4351. Please try again in 5.289s. Visit "
         "https://console.groq.com/docs/rate-limits for more information."
         "\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}",
         6000, OUTCOME_RETRY_LATER, 6000, NULL},
        {"groq 401 invalid key", 401,
         "{\"error\":{\"message\":\"Invalid API Key\",\"type\":"
         "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},

        /* Model missing at this provider: fall back, do not fail. */
        {"mistral 400 invalid_model", 400,
         "{\"object\":\"error\",\"message\":\"Invalid model: "
         "mistral-nonexistent\",\"type\":\"invalid_model\",\"param\":null,"
         "\"code\":\"1500\"}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"openrouter 400 not a valid model", 400,
         "{\"error\":{\"code\":400,\"message\":\"openai/gpt-9 is not a "
         "valid model ID\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        /* Mistral */
        {"mistral 401 message Unauthorized", 401,
         "{\"message\":\"Unauthorized\",\"request_id\":"
         "\"933f233947ff6d346065bb297e4a4d56\"}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, "401: Unauthorized"},
        {"mistral 401 detail Unauthorized", 401,
         "{\"detail\":\"Unauthorized\"}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, "Unauthorized"},
        {"mistral 429 requests rate limit", 429,
         "{\"message\":\"Requests rate limit exceeded\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"mistral 429 rate_limited", 429,
         "{\"object\":\"error\",\"message\":\"Rate limit exceeded\",\"type\":"
         "\"rate_limited\",\"param\":null,\"code\":\"1300\","
         "\"raw_status_code\":429}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* Together / DeepInfra / Fireworks / NVIDIA / Hunyuan (bodies
         * unconfirmed: OpenAI envelope assumed) */
        {"together 401 auth", 401,
         "{\"error\":{\"message\":\"Invalid API key provided.\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":"
         "\"invalid_api_key\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"nvidia 403 auth", 403,
         "{\"status\":403,\"title\":\"Forbidden\",\"detail\":"
         "\"Authorization failed\"}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"deepinfra 402 billing", 402,
         "{\"error\":{\"message\":\"Payment required\"}}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"fireworks 400 message mentions balance", 400,
         "{\"error\":{\"object\":\"error\",\"type\":\"invalid_request_error\","
         "\"message\":\"Your account has insufficient balance\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"hunyuan 400 message mentions quota", 400,
         "{\"error\":{\"message\":\"free quota used up\",\"type\":"
         "\"invalid_request_error\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"digit code unknown to zhipu falls to shared rows", 401,
         "{\"error\":{\"code\":\"40001\",\"message\":\"bad key\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, "401 40001: bad key"},
        {"together 429", 429,
         "{\"error\":{\"message\":\"You have been rate limited.\",\"type\":"
         "\"invalid_request_error\",\"code\":null}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* KIE per-model chat (OpenAI envelope) */
        {"kie chat 401 authentication_error", 401,
         "{\"error\":{\"message\":\"bad key\",\"type\":"
         "\"authentication_error\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"kie chat 429 rate_limit_error", 429,
         "{\"error\":{\"message\":\"slow down\",\"type\":"
         "\"rate_limit_error\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"kie chat 500 empty", 500, "", -1, OUTCOME_RETRY_LATER, NO_HINT,
         NULL},

        /* OpenRouter: error.code is a number */
        {"openrouter 402 credits", 402,
         "{\"error\": {\"code\": 402, \"message\": \"Insufficient credits. "
         "Add more using https://openrouter.ai/settings/credits\", "
         "\"metadata\": {\"limit_source\": \"openrouter_credits\"}}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, "402 402: Insufficient"},
        {"openrouter 402 in-flight budget with Retry-After", 402,
         "{\"error\":{\"code\":402,\"message\":\"In-flight budget "
         "exceeded\",\"metadata\":{\"limit_source\":"
         "\"openrouter_in_flight_budget\"}}}",
         3000, OUTCOME_RETRY_LATER, 3000, NULL},
        {"openrouter 402 in-flight budget without Retry-After", 402,
         "{\"error\":{\"code\":402,\"message\":\"In-flight budget "
         "exceeded\",\"metadata\":{\"limit_source\":"
         "\"openrouter_in_flight_budget\"}}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"openrouter 401", 401,
         "{\"error\":{\"code\":401,\"message\":\"No auth credentials "
         "found\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"openrouter 403 moderation", 403,
         "{\"error\":{\"code\":403,\"message\":\"Input was flagged\","
         "\"metadata\":{\"reasons\":[\"violence\"]}}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"openrouter 408", 408,
         "{\"error\":{\"code\":408,\"message\":\"Request timed out\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"openrouter 429", 429,
         "{\"error\":{\"code\":429,\"message\":\"Rate limit exceeded: "
         "free-models-per-min\"}}",
         2000, OUTCOME_RETRY_LATER, 2000, NULL},
        {"openrouter 502 model down", 502,
         "{\"error\":{\"code\":502,\"message\":\"Provider returned "
         "error\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"openrouter 503 no provider", 503,
         "{\"error\":{\"code\":503,\"message\":\"No endpoints found "
         "matching your data policy\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"openrouter 200 mid-generation error", 200,
         "{\"id\":\"gen-1\",\"error\":{\"code\":502,\"message\":\"Upstream "
         "error\"},\"choices\":[]}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, "200 502: Upstream error"},

        /* Zhipu: error.code is a digit string */
        {"zhipu 429 1113 (zh)", 429,
         "{\"error\":{\"code\":\"1113\",\"message\":\"\xe4\xbd\x99\xe9\xa2"
         "\x9d\xe4\xb8\x8d\xe8\xb6\xb3\xe6\x88\x96\xe6\x97\xa0\xe5\x8f\xaf"
         "\xe7\x94\xa8\xe8\xb5\x84\xe6\xba\x90\xe5\x8c\x85,\xe8\xaf\xb7\xe5"
         "\x85\x85\xe5\x80\xbc\xe3\x80\x82\"},\"request_id\":"
         "\"202603142338501da90b7ebe1d473d\"}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, "429 1113: "},
        {"zhipu 429 1113 (en)", 429,
         "{\"error\":{\"code\":\"1113\",\"message\":\"Insufficient balance "
         "or no resource package. Please recharge.\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"zhipu 429 1302", 429,
         "{\"error\":{\"code\":\"1302\",\"message\":\"\xe6\x82\xa8\xe7\x9a"
         "\x84\xe8\xb4\xa6\xe6\x88\xb7\xe5\xb7\xb2\xe8\xbe\xbe\xe5\x88\xb0"
         "\xe9\x80\x9f\xe7\x8e\x87\xe9\x99\x90\xe5\x88\xb6\xef\xbc\x8c\xe8"
         "\xaf\xb7\xe6\x82\xa8\xe6\x8e\xa7\xe5\x88\xb6\xe8\xaf\xb7\xe6\xb1"
         "\x82\xe9\xa2\x91\xe7\x8e\x87\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"zhipu 429 1302 (en concurrency)", 429,
         "{\"error\":{\"code\":\"1302\",\"message\":\"High concurrency usage "
         "of this API, please reduce concurrency or contact customer "
         "service to increase limits\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"zhipu 429 1303", 429,
         "{\"error\":{\"code\":\"1303\",\"message\":\"rate\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"zhipu 429 1305", 429,
         "{\"error\":{\"code\":\"1305\",\"message\":\"overloaded\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"zhipu 429 1312", 429,
         "{\"error\":{\"code\":\"1312\",\"message\":\"busy\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"zhipu 429 1304", 429,
         "{\"error\":{\"code\":\"1304\",\"message\":\"daily\"}}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"zhipu 429 1308", 429,
         "{\"error\":{\"code\":\"1308\",\"message\":\"cap\"}}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"zhipu 429 1309", 429,
         "{\"error\":{\"code\":\"1309\",\"message\":\"expired\"}}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"zhipu 429 1310", 429,
         "{\"error\":{\"code\":\"1310\",\"message\":\"cap\"}}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"zhipu 401 1000", 401,
         "{\"error\":{\"code\":\"1000\",\"message\":\"auth\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 401 1001", 401,
         "{\"error\":{\"code\":\"1001\",\"message\":\"auth\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 401 1002", 401,
         "{\"error\":{\"code\":\"1002\",\"message\":\"auth\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 401 1003", 401,
         "{\"error\":{\"code\":\"1003\",\"message\":\"expired\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 401 1004", 401,
         "{\"error\":{\"code\":\"1004\",\"message\":\"auth\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 400 1110", 400,
         "{\"error\":{\"code\":\"1110\",\"message\":\"inactive\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 403 1111", 403,
         "{\"error\":{\"code\":\"1111\",\"message\":\"no account\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 403 1112", 403,
         "{\"error\":{\"code\":\"1112\",\"message\":\"locked\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 403 1121", 403,
         "{\"error\":{\"code\":\"1121\",\"message\":\"violations\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"zhipu 400 1301", 400,
         "{\"error\":{\"code\":\"1301\",\"message\":\"unsafe\"}}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"zhipu 400 1211", 400,
         "{\"error\":{\"code\":\"1211\",\"message\":\"no model\"}}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"zhipu 400 1220", 400,
         "{\"error\":{\"code\":\"1220\",\"message\":\"no permission\"}}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"zhipu 400 1221", 400,
         "{\"error\":{\"code\":\"1221\",\"message\":\"offline\"}}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"zhipu 400 1222", 400,
         "{\"error\":{\"code\":\"1222\",\"message\":\"no such api\"}}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"zhipu 400 1210", 400,
         "{\"error\":{\"code\":\"1210\",\"message\":\"bad param\"}}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"zhipu 400 1213", 400,
         "{\"error\":{\"code\":\"1213\",\"message\":\"missing\"}}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"zhipu 400 1214", 400,
         "{\"error\":{\"code\":\"1214\",\"message\":\"illegal\"}}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"zhipu 400 1215", 400,
         "{\"error\":{\"code\":\"1215\",\"message\":\"conflict\"}}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"zhipu 400 1261", 400,
         "{\"error\":{\"code\":\"1261\",\"message\":\"prompt too long\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"zhipu 500 500", 500,
         "{\"error\":{\"code\":\"500\",\"message\":\"internal\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"zhipu 500 1200", 500,
         "{\"error\":{\"code\":\"1200\",\"message\":\"call failed\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"zhipu 500 1234", 500,
         "{\"error\":{\"code\":\"1234\",\"message\":\"network\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* DashScope compatible-mode */
        {"dashscope 400 Arrearage", 400,
         "{\"error\":{\"code\":\"Arrearage\",\"param\":null,\"message\":"
         "\"Access denied, please make sure your account is in good "
         "standing.\",\"type\":\"Arrearage\"},\"id\":"
         "\"chatcmpl-f9fdb027-830c-9e05-8366-ce479a878825\",\"request_id\":"
         "\"f9fdb027-830c-9e05-8366-ce479a878825\"}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, "400 Arrearage/Arrearage"},
        {"dashscope 400 InvalidParameter", 400,
         "{\"error\":{\"code\":\"InvalidParameter\",\"message\":\"bad\","
         "\"type\":\"InvalidParameter\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"dashscope 400 DataInspectionFailed", 400,
         "{\"error\":{\"code\":\"DataInspectionFailed\",\"message\":"
         "\"Input data may contain inappropriate content.\",\"type\":"
         "\"DataInspectionFailed\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"dashscope 401 InvalidApiKey", 401,
         "{\"error\":{\"code\":\"InvalidApiKey\",\"message\":\"Invalid API-key "
         "provided.\",\"type\":\"InvalidApiKey\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"dashscope 401 invalid_api_key", 401,
         "{\"error\":{\"message\":\"Incorrect API key provided.\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":"
         "\"invalid_api_key\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"dashscope 403 AccessDenied", 403,
         "{\"error\":{\"code\":\"AccessDenied\",\"message\":\"Access "
         "denied.\",\"type\":\"AccessDenied\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"dashscope 404 ModelNotFound", 404,
         "{\"error\":{\"code\":\"ModelNotFound\",\"message\":\"Model not "
         "exist.\",\"type\":\"ModelNotFound\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"dashscope 429 Throttling.AllocationQuota", 429,
         "{\"error\":{\"code\":\"Throttling.AllocationQuota\",\"message\":"
         "\"Free allocated quota exceeded.\",\"type\":"
         "\"Throttling.AllocationQuota\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"dashscope 429 insufficient_quota", 429,
         "{\"error\":{\"code\":\"insufficient_quota\",\"message\":\"You "
         "exceeded your current quota.\",\"type\":\"insufficient_quota\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"dashscope 429 Throttling.RateQuota", 429,
         "{\"error\":{\"code\":\"Throttling.RateQuota\",\"message\":"
         "\"Requests rate limit exceeded, please try again later.\","
         "\"type\":\"Throttling.RateQuota\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"dashscope 429 other Throttling", 429,
         "{\"error\":{\"code\":\"Throttling\",\"message\":\"Too many "
         "requests.\",\"type\":\"Throttling\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* SiliconFlow: {"code":int,"message":...,"data":null} */
        {"siliconflow 400 20012", 400,
         "{\"code\":20012,\"message\":\"Model does not exist. Please check "
         "it carefully.\",\"data\":null}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, "400 20012: Model does not"},
        {"siliconflow 400 other", 400,
         "{\"code\":20015,\"message\":\"max_tokens is too large\","
         "\"data\":null}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"siliconflow 401", 401,
         "{\"code\":20005,\"message\":\"Invalid token\",\"data\":null}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"siliconflow 403 30011", 403,
         "{\"code\":30011,\"message\":\"The selected model requires paid "
         "balance. Your paid balance is insufficient. Please top up and "
         "try again.\",\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"siliconflow 403 30001", 403,
         "{\"code\":30001,\"message\":\"Sorry, your account balance is "
         "insufficient\",\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"siliconflow 403 balance message", 403,
         "{\"code\":30099,\"message\":\"account balance is insufficient\","
         "\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"siliconflow 403 real-name", 403,
         "{\"code\":30003,\"message\":\"This model requires real-name "
         "verification.\",\"data\":null}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"siliconflow 429 TPM", 429,
         "{\"code\":50603,\"message\":\"Rate limit reached for TPM, please "
         "try again in 1m30s\",\"data\":null}",
         -1, OUTCOME_RETRY_LATER, 90000, NULL},
        {"siliconflow 503 overload", 503,
         "{\"code\":50505,\"message\":\"Model service overloaded.\","
         "\"data\":null}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"siliconflow 504 timeout", 504,
         "{\"code\":50506,\"message\":\"Gateway timeout\",\"data\":null}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* Any provider */
        {"any 502 HTML", 502,
         "<html><body><h1>502 Bad Gateway</h1></body></html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "HTTP 502 with a non-JSON body"},
        {"any 503 HTML", 503, "<html>Service Unavailable</html>", 1000,
         OUTCOME_RETRY_LATER, 1000, "non-JSON"},
        {"any 504 HTML", 504, "<html>Gateway Timeout</html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "non-JSON"},
        {"any 200 malformed", 200, "{\"choices\":[{\"message\":", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "malformed"},
        {"any 200 not an object", 200, "[]", -1, OUTCOME_RETRY_LATER,
         NO_HINT, NULL},
        {"any 200 no choices", 200, "{\"id\":\"x\",\"choices\":[]}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "no choices"},
        {"any 418 unlisted 4xx", 418, "{\"error\":{\"message\":\"teapot\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "418: teapot"},
        {"any 422 plain text", 422, "Unprocessable", -1, OUTCOME_FATAL_JOB,
         NO_HINT, "HTTP 422"},
        {"any 401 plain text", 401, "Unauthorized", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, "HTTP 401"},
        {"any 402 plain text", 402, "Payment Required", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"any 403 WAF page", 403, "<html>Access denied | Cloudflare</html>",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"any 404 HTML", 404, "<html>Not Found</html>", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"any 429 plain text", 429, "Too Many Requests", 4000,
         OUTCOME_RETRY_LATER, 4000, NULL},
        {"any 425 too early", 425, "", -1, OUTCOME_RETRY_LATER, NO_HINT,
         NULL},
        {"any 507 JSON", 507, "{\"error\":{\"message\":\"x\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"any 301 redirect", 301, "", -1, OUTCOME_FALLBACK_NEXT, NO_HINT,
         NULL},
};
#define N_ROWS ((int)(sizeof(rows) / sizeof(rows[0])))

START_TEST(test_classify_row)
{
        const struct row *r = &rows[_i];
        struct provider_resp resp = tresp(r->status, r->body);
        struct provider_result res;
        struct provider_err err;
        enum outcome got;

        resp.retry_after_ms = r->retry_after_ms;
        got = run_parse(&resp, &res, &err);
        ck_assert_msg(got == r->want, "%s: got %s, want %s (%s)", r->name,
                      outcome_name(got), outcome_name(r->want), err.errstr);
        ck_assert_int_eq(err.outcome, got);
        ck_assert_int_eq(err.http_status, r->status);
        ck_assert_msg(err.errstr[0], "%s: empty errstr", r->name);
        if (r->want_hint != NO_HINT)
                ck_assert_msg(err.retry_after_ms == r->want_hint,
                              "%s: hint %lld, want %lld", r->name,
                              (long long)err.retry_after_ms,
                              (long long)r->want_hint);
        if (r->want_err)
                ck_assert_msg(strstr(err.errstr, r->want_err),
                              "%s: errstr \"%s\" lacks \"%s\"", r->name,
                              err.errstr, r->want_err);
        ck_assert_ptr_null(res.text);
}
END_TEST

START_TEST(test_parse_timeout)
{
        struct provider_resp resp = tresp(0, NULL);
        struct provider_result res;
        struct provider_err err;

        resp.transport_err = 28;
        resp.timed_out = 1;
        resp.transport_msg = "Operation timed out after 30000 milliseconds";
        ck_assert_int_eq(run_parse(&resp, &res, &err), OUTCOME_RETRY_LATER);
        ck_assert_str_eq(err.errstr,
                         "timeout: Operation timed out after 30000 "
                         "milliseconds");
        ck_assert_int_eq(err.http_status, 0);
}
END_TEST

START_TEST(test_parse_truncated_200)
{
        struct provider_resp resp = tresp(200, ok_sample);
        struct provider_result res;
        struct provider_err err;

        resp.truncated = 1;
        ck_assert_int_eq(run_parse(&resp, &res, &err), OUTCOME_RETRY_LATER);
        ck_assert_ptr_nonnull(strstr(err.errstr, "truncated"));
        ck_assert_ptr_null(res.text);
}
END_TEST

START_TEST(test_errstr_redacts_keys)
{
        struct provider_resp resp = tresp(
                401, "{\"error\":{\"message\":\"Incorrect API key provided: "
                     "sk-proj-abcdefghijklmnopqrstuvwxyz0123. Also "
                     "nvapi-ABCDEFGHIJKLMNOP and sk-short.\",\"type\":"
                     "\"invalid_request_error\",\"code\":"
                     "\"invalid_api_key\"}}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run_parse(&resp, &res, &err), OUTCOME_KEY_DISABLED);
        ck_assert_ptr_null(strstr(err.errstr, "abcdefgh"));
        ck_assert_ptr_null(strstr(err.errstr, "ABCDEFGH"));
        ck_assert_ptr_nonnull(
                strstr(err.errstr, "provided: sk-\xe2\x80\xa6. Also "
                                   "nvapi-\xe2\x80\xa6 and sk-short."));
}
END_TEST

START_TEST(test_errstr_truncated_on_utf8_boundary)
{
        char body[2048], *p = body;
        struct provider_resp resp;
        struct provider_result res;
        struct provider_err err;
        size_t n;

        p += sprintf(p, "{\"error\":{\"code\":\"1113\",\"message\":\"");
        for (int i = 0; i < 200; i++)
                p += sprintf(p, "\xe4\xbd\x99");
        sprintf(p, "\"}}");
        resp = tresp(429, body);
        ck_assert_int_eq(run_parse(&resp, &res, &err),
                         OUTCOME_QUOTA_EXHAUSTED);
        n = strlen(err.errstr);
        ck_assert_uint_lt(n, sizeof(err.errstr));
        /* "429 1113: " is 10 bytes, then whole 3-byte characters */
        ck_assert_uint_eq((n - 10) % 3, 0);
}
END_TEST

/*
 * provider.c: registry, generic rules, hint parsers
 */

START_TEST(test_registry)
{
        const char *const *names = provider_ops_names();
        int n = 0;

        ck_assert_ptr_eq(provider_ops_find("openai_chat"),
                         &provider_openai_chat_ops);
        ck_assert_ptr_null(provider_ops_find("nope"));
        ck_assert_ptr_null(provider_ops_find(NULL));
        for (; names[n]; n++)
                ck_assert_str_eq(provider_ops_find(names[n])->name, names[n]);
        ck_assert_int_eq(n, 19);
        ck_assert_int_eq(provider_openai_chat_ops.kind,
                         GENQ__V1__KIND__KIND_CHAT);
}
END_TEST

START_TEST(test_outcome_names)
{
        ck_assert_str_eq(outcome_name(OUTCOME_SUCCESS), "success");
        ck_assert_str_eq(outcome_name(OUTCOME_RETRY_LATER), "retry_later");
        ck_assert_str_eq(outcome_name(OUTCOME_FALLBACK_NEXT),
                         "fallback_next");
        ck_assert_str_eq(outcome_name(OUTCOME_FATAL_JOB), "fatal_job");
        ck_assert_str_eq(outcome_name(OUTCOME_KEY_DISABLED), "key_disabled");
        ck_assert_str_eq(outcome_name(OUTCOME_QUOTA_EXHAUSTED),
                         "quota_exhausted");
        ck_assert_str_eq(outcome_name((enum outcome)99), "unknown");
}
END_TEST

START_TEST(test_generic_rules)
{
        static const struct {
                long status;
                const char *body;
                enum outcome want;
                const char *errstr;
        } cases[] = {
                {503, "<html>busy</html>", OUTCOME_RETRY_LATER,
                 "HTTP 503 with a non-JSON body"},
                {502, "{\"error\":{}}", OUTCOME_RETRY_LATER,
                 "HTTP 502 server error"},
                {500, "", OUTCOME_RETRY_LATER, "HTTP 500 server error"},
                {408, "", OUTCOME_RETRY_LATER, "HTTP 408"},
                {425, "", OUTCOME_RETRY_LATER, "HTTP 425"},
                {429, "", OUTCOME_RETRY_LATER, "HTTP 429"},
                {404, "", OUTCOME_FATAL_JOB, "HTTP 404"},
                {200, "{", OUTCOME_RETRY_LATER,
                 "HTTP 200 with a malformed body"},
        };
        struct provider_err err;
        struct provider_resp resp;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                resp = tresp(cases[i].status, cases[i].body);
                resp.retry_after_ms = 1234;
                ck_assert_int_eq(provider_classify_generic(&resp, &err),
                                 cases[i].want);
                ck_assert_int_eq(err.outcome, cases[i].want);
                ck_assert_int_eq(err.http_status, cases[i].status);
                ck_assert_int_eq(err.retry_after_ms, 1234);
                ck_assert_str_eq(err.errstr, cases[i].errstr);
        }
        resp = tresp(0, NULL);
        resp.transport_err = 7;
        resp.transport_msg = "Failed to connect";
        ck_assert_int_eq(provider_classify_generic(&resp, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_str_eq(err.errstr, "transport error 7: Failed to connect");
}
END_TEST

START_TEST(test_clear_functions)
{
        struct provider_result res = {0};
        struct provider_req req = {0};

        res.text = strdup("x");
        res.usage_json = strdup("{}");
        provider_result_clear(&res);
        ck_assert_ptr_null(res.text);
        ck_assert_ptr_null(res.usage_json);
        ck_assert_int_eq(res.input_tokens, -1);
        provider_req_clear(&req); /* empty is fine */
        ck_assert_ptr_null(req.headers);
}
END_TEST

/* 2015-10-21 07:28:00 UTC */
#define T_2015 1445412480LL

START_TEST(test_retry_after)
{
        static const struct {
                const char *v;
                int64_t want;
        } cases[] = {
                {"120", 120000},
                {"0", 0},
                {" 7 ", 7000},
                {"1.5", 1500},
                {"0.0011", 2}, /* rounded up */
                {"Wed, 21 Oct 2015 07:28:30 GMT", 30000},
                {"Wed, 21 Oct 2015 07:27:00 GMT", 0}, /* past */
                {"Thu, 01 Jan 2099 00:00:00 GMT", 86400000}, /* capped */
                {"99999999999999999999", 86400000},
                {"", -1},
                {"soon", -1},
                {"12abc", -1},
                {"-5", -1},
                {"1.2.3", -1},
                {"Wed, 21 Oct 2015 07:28:30 PST", -1},
                {"Wed, 21 Foo 2015 07:28:30 GMT", -1},
                {"Wed, 21 Oct 2015 07:28:30 GMT trailing", -1},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                ck_assert_msg(provider_parse_retry_after(cases[i].v,
                                                         T_2015) ==
                                      cases[i].want,
                              "\"%s\": got %lld, want %lld", cases[i].v,
                              (long long)provider_parse_retry_after(
                                      cases[i].v, T_2015),
                              (long long)cases[i].want);
        ck_assert_int_eq(provider_parse_retry_after(NULL, T_2015), -1);
}
END_TEST

START_TEST(test_try_again)
{
        static const struct {
                const char *msg;
                int64_t want;
        } cases[] = {
                {"Please try again in 5.289s.", 5289},
                {"Please try again in 20s. Visit", 20000},
                {"try again in 150ms", 150},
                {"Please Try Again In 1m30s", 90000},
                {"try again in 2h", 7200000},
                {"try again in 6m0.5s", 360500},
                {"Rate limit exceeded", -1},
                {"please try again later", -1},
                {"try again in 5 minutes", -1},
                {"try again in 99999999h", 86400000},
                {"", -1},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                ck_assert_msg(provider_parse_try_again(cases[i].msg) ==
                                      cases[i].want,
                              "\"%s\": got %lld, want %lld", cases[i].msg,
                              (long long)provider_parse_try_again(
                                      cases[i].msg),
                              (long long)cases[i].want);
        ck_assert_int_eq(provider_parse_try_again(NULL), -1);
}
END_TEST

/*
 * Runner
 */

static Suite *provider_suite(void)
{
        Suite *s = suite_create("provider_openai");
        TCase *tb = tcase_create("build");
        TCase *tp = tcase_create("parse");
        TCase *tt = tcase_create("classify");
        TCase *tg = tcase_create("common");

        tcase_add_test(tb, test_build_url_and_headers);
        tcase_add_test(tb, test_build_url_no_trailing_slash);
        tcase_add_test(tb, test_build_body_fields);
        tcase_add_test(tb, test_build_defaults);
        tcase_add_test(tb, test_build_temperature_zero_present);
        tcase_add_test(tb, test_build_extra_body_merged);
        tcase_add_test(tb, test_build_extra_body_is_default);
        tcase_add_test(tb, test_build_extra_body_invalid);
        tcase_add_test(tb, test_build_missing_model);
        tcase_add_test(tb, test_build_bad_inputs);
        tcase_add_test(tb, test_build_no_key_no_auth_header);
        tcase_add_test(tp, test_parse_reference_success);
        tcase_add_test(tp, test_parse_content_parts);
        tcase_add_test(tp, test_parse_no_usage);
        tcase_add_test(tp, test_parse_timeout);
        tcase_add_test(tp, test_parse_truncated_200);
        tcase_add_test(tp, test_errstr_redacts_keys);
        tcase_add_test(tp, test_errstr_truncated_on_utf8_boundary);
        /* one iteration per row of rows[] */
        tcase_add_loop_test(tt, test_classify_row, 0, N_ROWS);
        tcase_add_test(tg, test_registry);
        tcase_add_test(tg, test_outcome_names);
        tcase_add_test(tg, test_generic_rules);
        tcase_add_test(tg, test_clear_functions);
        tcase_add_test(tg, test_retry_after);
        tcase_add_test(tg, test_try_again);
        suite_add_tcase(s, tb);
        suite_add_tcase(s, tp);
        suite_add_tcase(s, tt);
        suite_add_tcase(s, tg);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(provider_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
