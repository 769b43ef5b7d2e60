/**
 * @file fam_chatvendors.c
 * @brief Family "chatvendors": the OpenAI-compatible chat completions of
 *        the vendors of section 1.2 whose error bodies are not OpenAI's:
 *        Mistral, OpenRouter, Zhipu, DashScope (compatible-mode) and
 *        SiliconFlow.  One provider per vendor; the provider's name picks
 *        the vendor (the vendor whose name begins the provider name, so
 *        "zhipu2" is Zhipu; unknown names are served as Mistral).
 *
 * PATHS (below /<provider>; base URL = the part before /chat/completions)
 *
 *   mistral      POST /v1/chat/completions
 *                (real base https://api.mistral.ai/v1)
 *   openrouter   POST /api/v1/chat/completions
 *                (real base https://openrouter.ai/api/v1)
 *   zhipu        POST /api/paas/v4/chat/completions
 *                (real base https://open.bigmodel.cn/api/paas/v4)
 *   dashscope    POST /compatible-mode/v1/chat/completions
 *                (real base https://dashscope.aliyuncs.com/compatible-mode/v1)
 *   siliconflow  POST /v1/chat/completions
 *                (real base https://api.siliconflow.cn/v1)
 *
 * Another vendor's path, any other path or method: that vendor's 404.
 *
 * DETERMINISTIC ANSWERS: exactly the formulas of fam_openai.c (see there
 * and README.md), so tests compute the same numbers:
 *   content = "fake reply: " + text(last "user" message) cut to 40 bytes;
 *   prompt_tokens = sum over messages of (words(text(content)) + 4);
 *   completion_tokens = words(content), capped at max_completion_tokens or
 *   max_tokens (finish_reason "length", else "stop"); total = the sum;
 *   id "chatcmpl-<n>", n = the provider's request number.
 * usage holds only prompt_tokens, completion_tokens and total_tokens (the
 * *_details objects are OpenAI's).  Vendor extras: Zhipu and DashScope add
 * a top-level "request_id" ("<n>"), OpenRouter a "provider" ("FakeProv"),
 * SiliconFlow the header x-siliconcloud-trace-id: fake-<n>.  No streaming:
 * "stream": true is refused with the vendor's 400.
 *
 * CHECKS: the Bearer key (missing -> "missing_key" body, wrong ->
 * "invalid_key" body, both below); the body a JSON object; "model" a
 * non-empty string (optional on OpenRouter, which then answers as
 * "openrouter/auto"); "messages" a non-empty array of objects with role
 * system|user|assistant|tool|developer and content a string or an array
 * (null allowed for assistant).  A failed check answers the vendor's own
 * validation error: Mistral 422 {"object":"error","message":{"detail":[
 * {"type","loc":["body",<field>],"msg","input"}]},"type":
 * "invalid_request_error",...} (message is an object); OpenRouter 400
 * {"error":{"code":400,"message"}}; Zhipu 400 code "1214"; DashScope 400
 * InvalidParameter; SiliconFlow 400 {"code":20015,"message","data":null}.
 *
 * NAMED ERRORS (script {"error":"<name>"}), each vendor's real body; the
 * class the openai_chat adapter gives it (section 12) in brackets.  Every
 * vendor has: invalid_key, missing_key, quota, rate_limit,
 * model_not_found, bad_request, server_error, overloaded.
 *
 *   mistral:     invalid_key 401 {"message":"Unauthorized","request_id"}
 *                [key_disabled]; missing_key, unauthorized_detail and
 *                quota 401 {"detail":"Unauthorized"} (quota: the trap, a
 *                spent plan looks like a bad key) [key_disabled];
 *                rate_limit 429 {"message":"Requests rate limit exceeded"},
 *                rate_limited 429 (newer body, type rate_limited, code
 *                "1300") [retry_later]; model_not_found 400 invalid_model
 *                [fatal_job: no section 12 row]; bad_request 400
 *                [fatal_job]; server_error 500, overloaded 503
 *                [retry_later].
 *   openrouter:  invalid_key / missing_key 401 [key_disabled]; quota 402
 *                (verbatim) [quota_exhausted]; in_flight_budget 402 with
 *                metadata.limit_source openrouter_in_flight_budget and
 *                retry-after: 1 [retry_later]; rate_limit 429 retry-after:
 *                1 [retry_later]; moderation 403 [fatal_job]; timeout 408
 *                [retry_later]; model_down 502, overloaded / no_provider
 *                503 [fallback_next]; model_not_found / bad_request 400
 *                [fatal_job]; server_error 500 [retry_later];
 *                mid_generation 200 with "error" in the body [retry_later].
 *   zhipu:       zhipu_<code> for 1000 1002 1112 (401) [key_disabled],
 *                1113 (429) [quota_exhausted], 1302 1303 1305 1312 (429)
 *                [retry_later], 1304 1308 (429) [quota_exhausted], 1301
 *                1214 1261 (400) [fatal_job], 1211 (400) [fallback_next],
 *                500 (500) [retry_later]; aliases invalid_key = 1000,
 *                missing_key = 1001, quota = 1113 (Chinese message +
 *                request_id), rate_limit = 1302, overloaded = 1305,
 *                model_not_found = 1211, bad_request = 1214, server_error
 *                = 500.
 *   dashscope:   invalid_key / missing_key 401 invalid_api_key
 *                [key_disabled]; quota / arrearage 400 Arrearage
 *                (verbatim) [quota_exhausted]; rate_limit / throttling 429
 *                Throttling.RateQuota [retry_later]; allocation_quota 429
 *                Throttling.AllocationQuota, free_quota 429
 *                insufficient_quota [quota_exhausted]; access_denied 403
 *                AccessDenied [fallback_next]; model_not_found 404
 *                ModelNotFound [fallback_next]; bad_request 400
 *                InvalidParameter, data_inspection 400
 *                DataInspectionFailed [fatal_job]; server_error 500,
 *                overloaded 503 [retry_later].
 *   siliconflow: invalid_key / missing_key 401 "Invalid token" (a JSON
 *                string, as observed) [key_disabled]; quota / balance 403
 *                30011 (verbatim) [quota_exhausted]; realname 403 (code
 *                unconfirmed) [key_disabled]; model_not_found 400 20012
 *                (verbatim) [fallback_next]; bad_request 400 20015
 *                [fatal_job]; rate_limit 429 (observed, no code)
 *                [retry_later]; server_error 500, overloaded 503, timeout
 *                504 [retry_later].
 *
 * A name the family knows but the vendor does not (zhipu_1113 on Mistral)
 * answers 501 text/plain saying so.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fakeprov.h"
#include "fpprov.h"
#include "xmem.h"

#define REPLY_PREFIX "fake reply: "
#define REPLY_MAX_TEXT 40

/* ---- vendors ---------------------------------------------------------- */

struct vendor;

/** A failed request check, in the vendor's validation envelope. */
typedef void(bad_fn)(const struct vendor *v, const struct fp_call *call,
                     struct fp_resp *resp, const char *field,
                     const char *msg);

struct vendor {
        const char *name;         /**< provider name (prefix) */
        const char *path;         /**< chat completions path */
        const char *default_model;/**< model if none is sent, or NULL */
        bad_fn *bad;              /**< validation error body */
        int request_id;           /**< add top-level "request_id" */
};

static bad_fn bad_mistral, bad_openrouter, bad_zhipu, bad_dashscope,
        bad_siliconflow;

static const struct vendor vendors[] = {
        {"mistral", "/v1/chat/completions", NULL, bad_mistral, 0},
        {"openrouter", "/api/v1/chat/completions", "openrouter/auto",
         bad_openrouter, 0},
        {"zhipu", "/api/paas/v4/chat/completions", NULL, bad_zhipu, 1},
        {"dashscope", "/compatible-mode/v1/chat/completions", NULL,
         bad_dashscope, 1},
        {"siliconflow", "/v1/chat/completions", NULL, bad_siliconflow, 0},
};

static const struct vendor *vendor_of(const struct fp_call *call)
{
        const char *name = fpprov_name(call->prov);

        for (size_t i = 0; i < sizeof(vendors) / sizeof(*vendors); i++)
                if (!strncmp(name, vendors[i].name, strlen(vendors[i].name)))
                        return &vendors[i];
        return &vendors[0];
}

/* ---- named errors: one table row per vendor and name ------------------ */

struct verr {
        const char *vendor;
        const char *name;
        unsigned status;
        const char *retry_after;  /**< retry-after header, or NULL */
        const char *ctype;        /**< NULL = application/json */
        const char *body;
};

#define MISTRAL_401 "{\"message\":\"Unauthorized\",\"request_id\":" \
                    "\"933f233947ff6d346065bb297e4a4d56\"}"
#define MISTRAL_DETAIL_401 "{\"detail\":\"Unauthorized\"}"
#define OR_402 "{\"error\": {\"code\": 402, \"message\": \"Insufficient " \
               "credits. Add more using https://openrouter.ai/settings/" \
               "credits\", \"metadata\": {\"limit_source\": " \
               "\"openrouter_credits\"}}}"
#define OR_400 "{\"error\":{\"code\":400,\"message\":\"Input required: " \
               "specify \\\"prompt\\\" or \\\"messages\\\"\"}}"
#define OR_503 "{\"error\":{\"code\":503,\"message\":\"No endpoints found " \
               "that can handle the requested parameters.\"}}"
#define ZP(code, msg) "{\"error\":{\"code\":\"" code "\",\"message\":\"" \
                      msg "\"}}"
#define ZP_1000 ZP("1000", "身份验证失败。")
#define ZP_1113 ZP("1113", "Insufficient balance or no resource package. " \
                           "Please recharge.")
#define ZP_1302 ZP("1302", "您的账户已达到速率限制，请您控制请求频率")
#define ZP_1305 ZP("1305", "该模型当前访问量过大，请您稍后再试")
#define ZP_1211 ZP("1211", "模型不存在，请检查模型代码。")
#define ZP_1214 ZP("1214", "messages 参数非法。请检查文档。")
#define ZP_500 ZP("500", "内部错误")
#define DS(code, msg) "{\"error\":{\"code\":\"" code "\",\"param\":null," \
                      "\"message\":\"" msg "\",\"type\":\"" code "\"}," \
                      "\"id\":\"chatcmpl-fake\",\"request_id\":" \
                      "\"fake-request-id\"}"
#define DS_401 "{\"error\":{\"message\":\"Incorrect API key provided. \"," \
               "\"type\":\"invalid_request_error\",\"param\":null," \
               "\"code\":\"invalid_api_key\"},\"request_id\":" \
               "\"fake-request-id\"}"
#define DS_ARREARAGE "{\"error\":{\"code\":\"Arrearage\",\"param\":null," \
                     "\"message\":\"Access denied, please make sure your " \
                     "account is in good standing.\",\"type\":" \
                     "\"Arrearage\"},\"id\":\"chatcmpl-f9fdb027-830c-9e05-" \
                     "8366-ce479a878825\",\"request_id\":\"f9fdb027-830c-" \
                     "9e05-8366-ce479a878825\"}"
#define DS_THROTTLING DS("Throttling.RateQuota", "Requests rate limit " \
                         "exceeded, please try again later.")
#define DS_INVALID DS("InvalidParameter", "Range of input length should be " \
                      "[1, 30720]")
#define SF(code, msg) "{\"code\":" #code ",\"message\":\"" msg "\"," \
                      "\"data\":null}"
#define SF_401 "\"Invalid token\""
#define SF_30011 SF(30011, "The selected model requires paid balance. " \
                    "Your paid balance is insufficient. Please top up and " \
                    "try again.")
#define SF_20012 SF(20012, "Model does not exist. Please check it " \
                    "carefully.")
#define SF_429 "{\"message\":\"Request was rejected due to rate limiting. " \
               "Details: TPM limit reached.\",\"data\":null}"

static const struct verr verrs[] = {
        /* Mistral (section 1.2) */
        {"mistral", "invalid_key", 401, NULL, NULL, MISTRAL_401},
        {"mistral", "missing_key", 401, NULL, NULL, MISTRAL_DETAIL_401},
        {"mistral", "unauthorized_detail", 401, NULL, NULL,
         MISTRAL_DETAIL_401},
        {"mistral", "quota", 401, NULL, NULL, MISTRAL_DETAIL_401},
        {"mistral", "rate_limit", 429, NULL, NULL,
         "{\"message\":\"Requests rate limit exceeded\"}"},
        {"mistral", "rate_limited", 429, NULL, NULL,
         "{\"object\":\"error\",\"message\":\"Rate limit exceeded\","
         "\"type\":\"rate_limited\",\"param\":null,\"code\":\"1300\","
         "\"raw_status_code\":429}"},
        {"mistral", "model_not_found", 400, NULL, NULL,
         "{\"object\":\"error\",\"message\":\"Invalid model: "
         "mistral-nonexistent\",\"type\":\"invalid_model\",\"param\":null,"
         "\"code\":\"1500\"}"},
        {"mistral", "bad_request", 400, NULL, NULL,
         "{\"object\":\"error\",\"message\":\"Prompt contains 40000 tokens, "
         "too large for model with 32768 maximum context length\","
         "\"type\":\"invalid_request_message_error\",\"param\":null,"
         "\"code\":null}"},
        {"mistral", "server_error", 500, NULL, NULL,
         "{\"object\":\"error\",\"message\":\"Internal server error\","
         "\"type\":\"internal_server_error\",\"param\":null,\"code\":null}"},
        {"mistral", "overloaded", 503, NULL, NULL,
         "{\"object\":\"error\",\"message\":\"Service unavailable\","
         "\"type\":\"service_unavailable\",\"param\":null,\"code\":null}"},
        /* OpenRouter: integer error.code, metadata */
        {"openrouter", "invalid_key", 401, NULL, NULL,
         "{\"error\":{\"message\":\"User not found.\",\"code\":401}}"},
        {"openrouter", "missing_key", 401, NULL, NULL,
         "{\"error\":{\"message\":\"No auth credentials found\","
         "\"code\":401}}"},
        {"openrouter", "quota", 402, NULL, NULL, OR_402},
        {"openrouter", "in_flight_budget", 402, "1", NULL,
         "{\"error\":{\"code\":402,\"message\":\"Request would exceed your "
         "in-flight budget; retry when earlier requests finish.\","
         "\"metadata\":{\"limit_source\":\"openrouter_in_flight_budget\"}}}"},
        {"openrouter", "rate_limit", 429, "1", NULL,
         "{\"error\":{\"code\":429,\"message\":\"Rate limit exceeded: "
         "free-models-per-min.\",\"metadata\":{\"headers\":{"
         "\"X-RateLimit-Limit\":\"20\",\"X-RateLimit-Remaining\":\"0\"}}}}"},
        {"openrouter", "moderation", 403, NULL, NULL,
         "{\"error\":{\"code\":403,\"message\":\"fake/model requires "
         "moderation on FakeProv. Your input was flagged for "
         "\\\"harassment\\\". No credits were charged.\",\"metadata\":{"
         "\"reasons\":[\"harassment\"],\"flagged_input\":\"...\","
         "\"provider_name\":\"FakeProv\",\"model_slug\":\"fake/model\"}}}"},
        {"openrouter", "timeout", 408, NULL, NULL,
         "{\"error\":{\"code\":408,\"message\":\"Request timed out\"}}"},
        {"openrouter", "model_down", 502, NULL, NULL,
         "{\"error\":{\"code\":502,\"message\":\"Provider returned error\","
         "\"metadata\":{\"provider_name\":\"FakeProv\",\"raw\":"
         "\"upstream error\"}}}"},
        {"openrouter", "no_provider", 503, NULL, NULL, OR_503},
        {"openrouter", "overloaded", 503, NULL, NULL, OR_503},
        {"openrouter", "model_not_found", 400, NULL, NULL,
         "{\"error\":{\"code\":400,\"message\":\"nonexistent/model is not "
         "a valid model ID\"}}"},
        {"openrouter", "bad_request", 400, NULL, NULL, OR_400},
        {"openrouter", "server_error", 500, NULL, NULL,
         "{\"error\":{\"code\":500,\"message\":\"Internal Server Error\"}}"},
        {"openrouter", "mid_generation", 200, NULL, NULL,
         "{\"id\":\"gen-fake\",\"object\":\"chat.completion\","
         "\"created\":1741569952,\"model\":\"fake/model\",\"choices\":[{"
         "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
         "\"finish_reason\":\"error\"}],\"error\":{\"code\":502,"
         "\"message\":\"Provider disconnected\"}}"},
        /* Zhipu: string business codes */
        {"zhipu", "zhipu_1000", 401, NULL, NULL, ZP_1000},
        {"zhipu", "invalid_key", 401, NULL, NULL, ZP_1000},
        {"zhipu", "missing_key", 401, NULL, NULL,
         ZP("1001", "Header中未收到Authorization参数，无法进行身份验证。")},
        {"zhipu", "zhipu_1002", 401, NULL, NULL,
         ZP("1002", "Authorization Token非法，请确认Authorization Token"
                    "正确传递。")},
        {"zhipu", "zhipu_1112", 401, NULL, NULL,
         ZP("1112", "你的账户已被锁定，请联系客服解锁。")},
        {"zhipu", "zhipu_1113", 429, NULL, NULL, ZP_1113},
        {"zhipu", "quota", 429, NULL, NULL,
         "{\"error\":{\"code\":\"1113\",\"message\":\"余额不足或无可用资源包,"
         "请充值。\"},\"request_id\":\"202603142338501da90b7ebe1d473d\"}"},
        {"zhipu", "zhipu_1302", 429, NULL, NULL, ZP_1302},
        {"zhipu", "rate_limit", 429, NULL, NULL, ZP_1302},
        {"zhipu", "zhipu_1303", 429, NULL, NULL,
         ZP("1303", "您当前使用该API的频率过高，"
                    "请降低频率，或联系客服增加限额。")},
        {"zhipu", "zhipu_1304", 429, NULL, NULL,
         ZP("1304", "该API已达今日调用次数限额，"
                    "如有更多需求，请联系客服购买。")},
        {"zhipu", "zhipu_1305", 429, NULL, NULL, ZP_1305},
        {"zhipu", "overloaded", 429, NULL, NULL, ZP_1305},
        {"zhipu", "zhipu_1308", 429, NULL, NULL,
         ZP("1308", "已达到 5 小时的使用上限。您的限额将在 2030-01-01 "
                    "00:00:00 重置。")},
        {"zhipu", "zhipu_1312", 429, NULL, NULL,
         ZP("1312", "该模型当前访问量过大，请您切换其他模型。")},
        {"zhipu", "zhipu_1301", 400, NULL, NULL,
         ZP("1301", "系统检测到输入或生成内容可能包含不安全或敏感内容，"
                    "请您避免输入易产生敏感内容的提示语，"
                    "感谢您的配合。")},
        {"zhipu", "zhipu_1211", 400, NULL, NULL, ZP_1211},
        {"zhipu", "model_not_found", 400, NULL, NULL, ZP_1211},
        {"zhipu", "zhipu_1214", 400, NULL, NULL, ZP_1214},
        {"zhipu", "bad_request", 400, NULL, NULL, ZP_1214},
        {"zhipu", "zhipu_1261", 400, NULL, NULL, ZP("1261", "Prompt 超长")},
        {"zhipu", "zhipu_500", 500, NULL, NULL, ZP_500},
        {"zhipu", "server_error", 500, NULL, NULL, ZP_500},
        /* DashScope compatible-mode: CamelCase codes, arrears as 400 */
        {"dashscope", "invalid_key", 401, NULL, NULL, DS_401},
        {"dashscope", "missing_key", 401, NULL, NULL, DS_401},
        {"dashscope", "quota", 400, NULL, NULL, DS_ARREARAGE},
        {"dashscope", "arrearage", 400, NULL, NULL, DS_ARREARAGE},
        {"dashscope", "rate_limit", 429, NULL, NULL, DS_THROTTLING},
        {"dashscope", "throttling", 429, NULL, NULL, DS_THROTTLING},
        {"dashscope", "allocation_quota", 429, NULL, NULL,
         DS("Throttling.AllocationQuota", "Allocated quota exceeded, "
            "please increase your quota limit.")},
        {"dashscope", "free_quota", 429, NULL, NULL,
         DS("insufficient_quota", "You exceeded your current quota, "
            "please check your plan and billing details.")},
        {"dashscope", "access_denied", 403, NULL, NULL,
         DS("AccessDenied", "Access denied.")},
        {"dashscope", "model_not_found", 404, NULL, NULL,
         DS("ModelNotFound", "The model `qwen-nonexistent` does not exist "
            "or you do not have access to it.")},
        {"dashscope", "bad_request", 400, NULL, NULL, DS_INVALID},
        {"dashscope", "data_inspection", 400, NULL, NULL,
         DS("DataInspectionFailed", "Input data may contain inappropriate "
            "content.")},
        {"dashscope", "server_error", 500, NULL, NULL,
         DS("InternalError", "An internal error has occured, please try "
            "again later.")},
        {"dashscope", "overloaded", 503, NULL, NULL,
         DS("ServiceUnavailable", "The service is temporarily unavailable, "
            "please try again later.")},
        /* SiliconFlow: {"code":int,"message","data":null} */
        {"siliconflow", "invalid_key", 401, NULL, NULL, SF_401},
        {"siliconflow", "missing_key", 401, NULL, NULL, SF_401},
        {"siliconflow", "quota", 403, NULL, NULL, SF_30011},
        {"siliconflow", "balance", 403, NULL, NULL, SF_30011},
        {"siliconflow", "realname", 403, NULL, NULL,
         SF(30003, "Sorry, you don't have permission to access this model. "
                   "Please complete real-name verification first.")},
        {"siliconflow", "model_not_found", 400, NULL, NULL, SF_20012},
        {"siliconflow", "bad_request", 400, NULL, NULL,
         SF(20015, "The parameter is invalid. Please check again.")},
        {"siliconflow", "rate_limit", 429, NULL, NULL, SF_429},
        {"siliconflow", "server_error", 500, NULL, NULL,
         SF(50500, "Unknown error.")},
        {"siliconflow", "overloaded", 503, NULL, NULL,
         SF(50503, "Model service overloaded. Please try again later.")},
        {"siliconflow", "timeout", 504, NULL, NULL,
         SF(50504, "Request timed out. Please try again later, or use "
                   "streaming.")},
        /* Unknown paths (not a named error) */
        {"mistral", "_not_found", 404, NULL, NULL,
         "{\"detail\":\"Not Found\"}"},
        {"openrouter", "_not_found", 404, NULL, NULL,
         "{\"error\":{\"code\":404,\"message\":\"Not Found\"}}"},
        {"zhipu", "_not_found", 404, NULL, NULL,
         ZP("1222", "API 不存在")},
        {"dashscope", "_not_found", 404, NULL, NULL,
         DS("NotFound", "Not Found")},
        {"siliconflow", "_not_found", 404, NULL, "text/plain",
         "404 page not found"},
};

static void vendor_error(const struct fp_call *call, struct fp_resp *resp,
                         const char *name)
{
        const struct vendor *v = vendor_of(call);
        const struct verr *e;
        char msg[200];

        for (size_t i = 0; i < sizeof(verrs) / sizeof(*verrs); i++) {
                e = &verrs[i];
                if (strcmp(e->vendor, v->name) || strcmp(e->name, name))
                        continue;
                fpresp_set(resp, e->status, e->body, strlen(e->body));
                if (e->ctype)
                        fpresp_content_type(resp, e->ctype);
                if (e->retry_after)
                        fpresp_header(resp, "retry-after", e->retry_after);
                return;
        }
        snprintf(msg, sizeof(msg),
                 "fakeprov: error \"%s\" is not defined for vendor %s\n",
                 name, v->name);
        fpresp_set(resp, 501, msg, strlen(msg));
        fpresp_content_type(resp, "text/plain");
}

/* One errdef function per name: each asks the table for its vendor. */
#define VENDOR_ERRORS(X)                                                     \
        X(invalid_key) X(missing_key) X(quota) X(rate_limit)                 \
        X(model_not_found) X(bad_request) X(server_error) X(overloaded)      \
        X(unauthorized_detail) X(rate_limited) X(in_flight_budget)           \
        X(moderation) X(timeout) X(model_down) X(no_provider)                \
        X(mid_generation) X(zhipu_1000) X(zhipu_1002) X(zhipu_1112)          \
        X(zhipu_1113) X(zhipu_1302) X(zhipu_1303) X(zhipu_1304)              \
        X(zhipu_1305) X(zhipu_1308) X(zhipu_1312) X(zhipu_1301)              \
        X(zhipu_1211) X(zhipu_1214) X(zhipu_1261) X(zhipu_500)               \
        X(arrearage) X(throttling) X(allocation_quota) X(free_quota)         \
        X(access_denied) X(data_inspection) X(balance) X(realname)

#define DEFINE_ERR(n)                                                        \
        static void err_##n(const struct fp_call *call,                      \
                            struct fp_resp *resp)                            \
        {                                                                    \
                vendor_error(call, resp, #n);                                \
        }
VENDOR_ERRORS(DEFINE_ERR)
#undef DEFINE_ERR

#define ERRDEF_ROW(n) {#n, err_##n},
static const struct fp_errdef errors[] = {
        VENDOR_ERRORS(ERRDEF_ROW) {NULL, NULL},
};
#undef ERRDEF_ROW

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        vendor_error(call, resp, "_not_found");
}

/* ---- validation envelopes --------------------------------------------- */

static void bad_mistral(const struct vendor *v, const struct fp_call *call,
                        struct fp_resp *resp, const char *field,
                        const char *msg)
{
        json_t *j = json_pack("{s:s, s:{s:[{s:s, s:[s, s], s:s, s:n}]}, "
                              "s:s, s:n, s:n}",
                              "object", "error", "message", "detail", "type",
                              "missing", "loc", "body", field, "msg", msg,
                              "input", "type", "invalid_request_error",
                              "param", "code");

        if (!j)
                fatal("fam_chatvendors: json_pack mistral");
        fpresp_json(resp, 422, j, JSON_COMPACT);
}

static void bad_openrouter(const struct vendor *v,
                           const struct fp_call *call, struct fp_resp *resp,
                           const char *field, const char *msg)
{
        fpresp_json(resp, 400,
                    json_pack("{s:{s:i, s:s}}", "error", "code", 400,
                              "message", msg),
                    JSON_COMPACT);
}

static void bad_zhipu(const struct vendor *v, const struct fp_call *call,
                      struct fp_resp *resp, const char *field,
                      const char *msg)
{
        fpresp_json(resp, 400,
                    json_pack("{s:{s:s, s:s}}", "error", "code", "1214",
                              "message", msg),
                    JSON_COMPACT);
}

static void bad_dashscope(const struct vendor *v, const struct fp_call *call,
                          struct fp_resp *resp, const char *field,
                          const char *msg)
{
        char id[40];

        snprintf(id, sizeof(id), "%llu", (unsigned long long)call->seq);
        fpresp_json(resp, 400,
                    json_pack("{s:{s:s, s:n, s:s, s:s}, s:s}", "error",
                              "code", "InvalidParameter", "param", "message",
                              msg, "type", "InvalidParameter", "request_id",
                              id),
                    JSON_COMPACT);
}

static void bad_siliconflow(const struct vendor *v,
                            const struct fp_call *call, struct fp_resp *resp,
                            const char *field, const char *msg)
{
        fpresp_json(resp, 400,
                    json_pack("{s:i, s:s, s:n}", "code", 20015, "message",
                              msg, "data"),
                    JSON_COMPACT);
}

/* ---- request checks --------------------------------------------------- */

static const char *const roles[] = {"system", "user", "assistant", "tool",
                                    "developer"};

static int bad(const struct vendor *v, const struct fp_call *call,
               struct fp_resp *resp, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* The vendor's validation error. @returns -1. */
static int bad(const struct vendor *v, const struct fp_call *call,
               struct fp_resp *resp, const char *field, const char *fmt, ...)
{
        char msg[300];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        v->bad(v, call, resp, field, msg);
        return -1;
}

static int role_ok(const char *r)
{
        for (size_t i = 0; r && i < sizeof(roles) / sizeof(*roles); i++)
                if (!strcmp(r, roles[i]))
                        return 1;
        return 0;
}

static int check_message(const struct vendor *v, const struct fp_call *call,
                         struct fp_resp *resp, const json_t *m, size_t i)
{
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *c = json_object_get(m, "content");

        if (!json_is_object(m) || !role_ok(role))
                return bad(v, call, resp, "messages",
                           "messages[%zu]: invalid role", i);
        if ((!c || json_is_null(c)) && !strcmp(role, "assistant"))
                return 0;
        if (!json_is_string(c) && !json_is_array(c))
                return bad(v, call, resp, "messages",
                           "messages[%zu].content: must be a string or an "
                           "array",
                           i);
        return 0;
}

static int check_request(const struct vendor *v, const struct fp_call *call,
                         struct fp_resp *resp)
{
        const json_t *model = json_object_get(call->json, "model");
        const json_t *msgs = json_object_get(call->json, "messages");
        const json_t *m;
        size_t i;

        if (!json_is_object(call->json))
                return bad(v, call, resp, "body",
                           "the request body is not a JSON object");
        if (!(v->default_model && !model) &&
            (!json_is_string(model) || !json_string_length(model)))
                return bad(v, call, resp, "model", "Field required: model");
        if (!json_is_array(msgs) || !json_array_size(msgs))
                return bad(v, call, resp, "messages",
                           "Field required: messages (a non-empty array)");
        json_array_foreach (msgs, i, m)
                if (check_message(v, call, resp, m, i) == -1)
                        return -1;
        if (json_is_true(json_object_get(call->json, "stream")))
                return bad(v, call, resp, "stream",
                           "stream: true is not supported by fakeprov");
        return 0;
}

/* ---- deterministic answer (fam_openai.c's formulas) ------------------- */

struct chat {
        const char *model;
        char reply[sizeof(REPLY_PREFIX) + REPLY_MAX_TEXT];
        json_int_t prompt, completion;
        const char *finish;
};

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

/* text(content): the string, or the "text" members of parts. */
static json_int_t content_words(const json_t *c)
{
        const json_t *part;
        const char *t;
        json_int_t n = 0;
        size_t i;

        if (json_is_string(c))
                return count_words(json_string_value(c));
        json_array_foreach (c, i, part) {
                t = json_string_value(json_object_get(part, "text"));
                n += t ? count_words(t) : 0;
        }
        return n;
}

static void content_text(const json_t *c, char *out, size_t size)
{
        const char *sep = "", *t;
        const json_t *part;
        size_t i, used;

        if (json_is_string(c)) {
                snprintf(out, size, "%s", json_string_value(c));
                return;
        }
        json_array_foreach (c, i, part) {
                t = json_string_value(json_object_get(part, "text"));
                if (!t)
                        continue;
                used = strlen(out);
                snprintf(out + used, size - used, "%s%s", sep, t);
                sep = "\n";
        }
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

static void chat_compute(struct chat *c, const struct vendor *v,
                         const struct fp_call *call)
{
        const json_t *msgs = json_object_get(call->json, "messages");
        char text[REPLY_MAX_TEXT * 2 + 8] = "";
        json_int_t limit = token_limit(call->json);
        const json_t *last = NULL, *m;
        size_t i, n;

        c->model = json_string_value(json_object_get(call->json, "model"));
        if (!c->model)
                c->model = v->default_model;
        c->prompt = 0;
        json_array_foreach (msgs, i, m) {
                c->prompt += content_words(json_object_get(m, "content")) + 4;
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
        snprintf(c->reply, sizeof(c->reply), "%s%.*s", REPLY_PREFIX, (int)n,
                 text);
        c->completion = count_words(c->reply);
        c->finish = "stop";
        if (limit && c->completion > limit) {
                c->completion = limit;
                c->finish = "length";
        }
}

static void chat_reply(const struct chat *c, const struct vendor *v,
                       const struct fp_call *call, struct fp_resp *resp)
{
        char id[40], seq[24];
        json_t *j;

        snprintf(id, sizeof(id), "chatcmpl-%llu",
                 (unsigned long long)call->seq);
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)call->seq);
        j = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], "
                      "s:{s:I, s:I, s:I}}",
                      "id", id, "object", "chat.completion", "created",
                      (json_int_t)time(NULL), "model", c->model, "choices",
                      "index", 0, "message", "role", "assistant", "content",
                      c->reply, "finish_reason", c->finish, "usage",
                      "prompt_tokens", c->prompt, "completion_tokens",
                      c->completion, "total_tokens",
                      c->prompt + c->completion);
        if (!j)
                fatal("fam_chatvendors: json_pack reply");
        if (v->request_id)
                json_object_set_new(j, "request_id", json_string(seq));
        if (!strcmp(v->name, "openrouter"))
                json_object_set_new(j, "provider", json_string("FakeProv"));
        fpresp_json(resp, 200, j, JSON_COMPACT);
        if (!strcmp(v->name, "siliconflow")) {
                snprintf(id, sizeof(id), "fake-%s", seq);
                fpresp_header(resp, "x-siliconcloud-trace-id", id);
        }
}

/* ---- routes ----------------------------------------------------------- */

static void chat_completions(const struct fp_call *call,
                             struct fp_resp *resp)
{
        const struct vendor *v = vendor_of(call);
        struct chat c;

        if (strcmp(call->path, v->path)) {
                not_found(call, resp);
                return;
        }
        if (!call->auth_ok) {
                vendor_error(call, resp,
                             call->key ? "invalid_key" : "missing_key");
                return;
        }
        if (check_request(v, call, resp) == -1)
                return;
        chat_compute(&c, v, call);
        chat_reply(&c, v, call, resp);
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
        {"POST", "/v1/chat/completions", chat_completions},
        {"POST", "/api/v1/chat/completions", chat_completions},
        {"POST", "/api/paas/v4/chat/completions", chat_completions},
        {"POST", "/compatible-mode/v1/chat/completions", chat_completions},
        {NULL, NULL, NULL},
};

static const char *const defaults[] = {"mistral", "openrouter", "zhipu",
                                       "dashscope", "siliconflow", NULL};

const struct fp_family fam_chatvendors = {
        .name = "chatvendors",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
