/**
 * @file fam_gemini.c
 * @brief Family "gemini": POST <prefix>/v1beta/models/{model}:generateContent
 *        (also /v1/...) as in section 3 of provider-api-reference.md
 *        (provider "gemini"; a worker uses base URL
 *        http://127.0.0.1:PORT/gemini/v1beta).
 *
 * The key is read from the x-goog-api-key header, else the ?key= query
 * parameter (the reference confirms ?key=; the fake takes both).
 *
 * DETERMINISTIC ANSWERS (the formulas of fam_openai.c, so one conversation
 * costs the same tokens on both families)
 *
 *   text(x)        = the "text" members of the parts of x joined by "\n".
 *   words(s)       = number of maximal runs of non-whitespace bytes.
 *   reply          = "fake reply: " + text(last content whose role is
 *                    "user" or absent), cut to its first 40 bytes (backing
 *                    off to a UTF-8 boundary).
 *   promptTokenCount     = sum over contents of (words(text) + 4), plus
 *                          words(text(systemInstruction)) + 4 if present.
 *   candidatesTokenCount = words(reply); if it exceeds
 *                          generationConfig.maxOutputTokens it is that and
 *                          finishReason is "MAX_TOKENS", else "STOP"
 *                          (the text itself is never shortened).
 *   thoughtsTokenCount   = 2, only with generationConfig.thinkingConfig.
 *                          includeThoughts true; the first part is then
 *                          {"text":"fake thought","thought":true}.
 *   totalTokenCount      = the sum of the three.
 *   modelVersion   = the model of the path; responseId = "fake<n>", n =
 *                    the provider's request number.
 *
 * Example: systemInstruction "You are terse." + user "Say hello" ->
 * "fake reply: Say hello", prompt 7 + 6 = 13, candidates 4, total 17.
 *
 * TRAP: a user text containing "[blocked]" is answered 200 with no
 * candidates and promptFeedback.blockReason "SAFETY" (also the named error
 * prompt_blocked).
 *
 * CHECKS, in order: no key -> 403 PERMISSION_DENIED; a wrong key -> 400
 * INVALID_ARGUMENT with reason API_KEY_INVALID (verbatim body); the body
 * must be a JSON object; a member the API does not know, at the top or in
 * generationConfig (camelCase or snake_case accepted, as Google's JSON
 * parser does) -> 400 'Invalid JSON payload received. Unknown name "x"';
 * contents present and non-empty, role "user" or "model" (or absent),
 * parts non-empty; temperature 0..2; maxOutputTokens an integer >= 1.
 *
 * NAMED ERRORS (section 3 / section 12 rows): invalid_key 400
 * API_KEY_INVALID, invalid_argument 400, location 400 FAILED_PRECONDITION
 * "User location is not supported", permission_denied 403, not_found 404,
 * rate_limit 429 (verbatim message, RetryInfo retryDelay "1s"),
 * quota_exhausted 429 ("exceeded your current quota", QuotaFailure
 * ...PerDay..., RetryInfo "37s"), internal 500, overloaded 503 (verbatim),
 * prompt_blocked 200.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakeprov.h"
#include "xmem.h"

#define REPLY_PREFIX "fake reply: "
#define REPLY_MAX_TEXT 40
#define THOUGHT_TEXT "fake thought"
#define THOUGHT_TOKENS 2
#define BLOCK_MARKER "[blocked]"
#define GENERATE_SUFFIX ":generateContent"

/* One generation being answered. */
struct gen {
        char model[128];
        char reply[sizeof(REPLY_PREFIX) + REPLY_MAX_TEXT];
        json_int_t prompt, cand, thoughts;
        const char *finish;
        int blocked;
};

/* ---- error envelope --------------------------------------------------- */

/* {"error":{"code","message","status"[,"details"]}}; takes \p details. */
static void rpc_error(struct fp_resp *resp, unsigned status,
                      const char *rpc_status, const char *msg,
                      json_t *details)
{
        json_t *j = json_pack("{s:{s:i, s:s, s:s}}", "error", "code",
                              (int)status, "message", msg, "status",
                              rpc_status);

        if (!j)
                fatal("fam_gemini: json_pack error");
        if (details)
                json_object_set_new(json_object_get(j, "error"), "details",
                                    details);
        fpresp_json(resp, status, j, JSON_INDENT(2));
}

static int bad_arg(struct fp_resp *resp, json_t *details, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));

/* A 400 INVALID_ARGUMENT. @returns -1. */
static int bad_arg(struct fp_resp *resp, json_t *details, const char *fmt,
                   ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        rpc_error(resp, 400, "INVALID_ARGUMENT", msg, details);
        return -1;
}

static json_t *retry_info(const char *delay)
{
        return json_pack("{s:s, s:s}", "@type",
                         "type.googleapis.com/google.rpc.RetryInfo",
                         "retryDelay", delay);
}

/* ---- named errors ----------------------------------------------------- */

static void err_invalid_key(const struct fp_call *call, struct fp_resp *resp)
{
        /* verbatim in the reference */
        static const char body[] =
                "{\n  \"error\": {\n    \"code\": 400,\n    \"message\": "
                "\"API key not valid. Please pass a valid API key.\",\n"
                "    \"status\": \"INVALID_ARGUMENT\",\n    \"details\": [\n"
                "      {\n        \"@type\": "
                "\"type.googleapis.com/google.rpc.ErrorInfo\",\n"
                "        \"reason\": \"API_KEY_INVALID\",\n"
                "        \"domain\": \"googleapis.com\",\n"
                "        \"metadata\": {\n          \"service\": "
                "\"generativelanguage.googleapis.com\"\n        }\n"
                "      },\n      {\n        \"@type\": "
                "\"type.googleapis.com/google.rpc.LocalizedMessage\",\n"
                "        \"locale\": \"en-US\",\n        \"message\": "
                "\"API key not valid. Please pass a valid API key.\"\n"
                "      }\n    ]\n  }\n}\n";

        fpresp_set(resp, 400, body, sizeof(body) - 1);
}

static void err_no_key(struct fp_resp *resp)
{
        rpc_error(resp, 403, "PERMISSION_DENIED",
                  "Method doesn't allow unregistered callers (callers "
                  "without established identity). Please use API Key or "
                  "other form of API consumer identity to call this API.",
                  NULL);
}

static void err_invalid_argument(const struct fp_call *call,
                                 struct fp_resp *resp)
{
        bad_arg(resp, NULL, "Request contains an invalid argument.");
}

static void err_location(const struct fp_call *call, struct fp_resp *resp)
{
        rpc_error(resp, 400, "FAILED_PRECONDITION",
                  "User location is not supported for the API use.", NULL);
}

static void err_permission(const struct fp_call *call, struct fp_resp *resp)
{
        rpc_error(resp, 403, "PERMISSION_DENIED",
                  "Permission denied: Consumer 'api_key:fake' has been "
                  "suspended.",
                  NULL);
}

/* The model segment of the path ("gemini-2.5-flash"), or "" if none. */
static void path_model(const struct fp_call *call, char *out, size_t size)
{
        const char *s = strstr(call->path, "/models/");
        const char *e;

        out[0] = '\0';
        if (!s)
                return;
        s += strlen("/models/");
        e = strstr(s, GENERATE_SUFFIX);
        snprintf(out, size, "%.*s", (int)(e ? e - s : (long)strlen(s)), s);
}

static void err_not_found(const struct fp_call *call, struct fp_resp *resp)
{
        char model[128], msg[400];

        path_model(call, model, sizeof(model));
        snprintf(msg, sizeof(msg),
                 "models/%s is not found for API version v1beta, or is not "
                 "supported for generateContent. Call ListModels to see the "
                 "list of available models and their supported methods.",
                 model);
        rpc_error(resp, 404, "NOT_FOUND", msg, NULL);
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        rpc_error(resp, 429, "RESOURCE_EXHAUSTED",
                  "Resource has been exhausted (e.g. check quota).",
                  json_pack("[o]", retry_info("1s")));
}

static void err_quota(const struct fp_call *call, struct fp_resp *resp)
{
        json_t *qf = json_pack(
                "{s:s, s:[{s:s, s:s, s:{s:s, s:s}, s:s}]}", "@type",
                "type.googleapis.com/google.rpc.QuotaFailure", "violations",
                "quotaMetric",
                "generativelanguage.googleapis.com/"
                "generate_content_free_tier_requests",
                "quotaId", "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                "quotaDimensions", "location", "global", "model",
                "gemini-2.5-flash", "quotaValue", "250");

        rpc_error(resp, 429, "RESOURCE_EXHAUSTED",
                  "You exceeded your current quota, please check your plan "
                  "and billing details. For more information on this error, "
                  "head to: https://ai.google.dev/gemini-api/docs/"
                  "rate-limits.",
                  json_pack("[o, o]", qf, retry_info("37s")));
}

static void err_internal(const struct fp_call *call, struct fp_resp *resp)
{
        rpc_error(resp, 500, "INTERNAL",
                  "An internal error has occurred. Please retry or report "
                  "in https://developers.generativeai.google/guide/"
                  "troubleshooting",
                  NULL);
}

static void err_overloaded(const struct fp_call *call, struct fp_resp *resp)
{
        /* verbatim in the reference */
        static const char body[] =
                "{\"error\":{\"code\":503,\"message\":\"The model is "
                "overloaded. Please try again later.\",\"status\":"
                "\"UNAVAILABLE\"}}";

        fpresp_set(resp, 503, body, sizeof(body) - 1);
}

static void blocked_reply(const struct fp_call *call, struct fp_resp *resp,
                          json_int_t prompt, const char *model)
{
        char id[40];
        json_t *j;

        snprintf(id, sizeof(id), "fake%llu", (unsigned long long)call->seq);
        j = json_pack("{s:{s:s, s:[{s:s, s:s}]}, s:{s:I, s:I}, s:s, s:s}",
                      "promptFeedback", "blockReason", "SAFETY",
                      "safetyRatings", "category",
                      "HARM_CATEGORY_DANGEROUS_CONTENT", "probability",
                      "HIGH", "usageMetadata", "promptTokenCount", prompt,
                      "totalTokenCount", prompt, "modelVersion", model,
                      "responseId", id);
        if (!j)
                fatal("fam_gemini: json_pack blocked");
        fpresp_json(resp, 200, j, JSON_INDENT(2));
}

static void err_prompt_blocked(const struct fp_call *call,
                               struct fp_resp *resp)
{
        char model[128];

        path_model(call, model, sizeof(model));
        blocked_reply(call, resp, 8, model);
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[300];

        snprintf(msg, sizeof(msg), "Method not found: %s %.200s",
                 call->method, call->path);
        rpc_error(resp, 404, "NOT_FOUND", msg, NULL);
}

/* ---- request checks --------------------------------------------------- */

static const char *const top_fields[] = {
        "contents",      "systemInstruction", "generationConfig",
        "safetySettings", "tools",            "toolConfig",
        "cachedContent", "labels",
};

static const char *const config_fields[] = {
        "temperature",      "topP",           "topK",
        "candidateCount",   "maxOutputTokens", "stopSequences",
        "responseMimeType", "responseSchema", "responseJsonSchema",
        "presencePenalty",  "frequencyPenalty", "seed",
        "responseLogprobs", "logprobs",       "thinkingConfig",
        "responseModalities", "speechConfig", "mediaResolution",
};

/* snake_case -> lowerCamelCase, as proto3 JSON accepts both. */
static void camel(const char *in, char *out, size_t size)
{
        size_t o = 0;

        for (; *in && o + 1 < size; in++) {
                if (*in == '_' && in[1]) {
                        out[o++] = (char)toupper((unsigned char)*++in);
                        continue;
                }
                out[o++] = *in;
        }
        out[o] = '\0';
}

static int known(const char *k, const char *const *list, size_t n)
{
        char c[64];

        camel(k, c, sizeof(c));
        for (size_t i = 0; i < n; i++)
                if (!strcmp(c, list[i]))
                        return 1;
        return 0;
}

/* Unknown members of \p obj; \p where is "" or " at 'generation_config'". */
static int check_names(struct fp_resp *resp, const json_t *obj,
                       const char *const *list, size_t n, const char *where)
{
        char msg[300];
        const char *k;
        json_t *v;

        json_object_foreach ((json_t *)obj, k, v) {
                if (known(k, list, n))
                        continue;
                snprintf(msg, sizeof(msg),
                         "Invalid JSON payload received. Unknown name "
                         "\"%.80s\"%s: Cannot find field.",
                         k, where);
                return bad_arg(
                        resp,
                        json_pack("[{s:s, s:[{s:s}]}]", "@type",
                                  "type.googleapis.com/google.rpc.BadRequest",
                                  "fieldViolations", "description", msg),
                        "%s", msg);
        }
        return 0;
}

/* Look up \p camel_name or its snake_case spelling. */
static const json_t *member(const json_t *obj, const char *camel_name,
                            const char *snake_name)
{
        const json_t *v = json_object_get(obj, camel_name);

        return v ? v : json_object_get(obj, snake_name);
}

static int check_content(struct fp_resp *resp, const json_t *c, size_t i)
{
        const json_t *role = json_object_get(c, "role");
        const json_t *parts = json_object_get(c, "parts");

        if (!json_is_object(c))
                return bad_arg(resp, NULL,
                               "Invalid value at 'contents[%zu]', must be an "
                               "object",
                               i);
        if (role && (!json_is_string(role) ||
                     (strcmp(json_string_value(role), "user") &&
                      strcmp(json_string_value(role), "model"))))
                return bad_arg(resp, NULL,
                               "Please use a valid role: user, model.");
        if (!json_is_array(parts) || !json_array_size(parts))
                return bad_arg(resp, NULL,
                               "* GenerateContentRequest.contents[%zu].parts:"
                               " contents.parts must not be empty.\n",
                               i);
        return 0;
}

static int check_config(struct fp_resp *resp, const json_t *gc)
{
        const json_t *t = json_object_get(gc, "temperature");
        const json_t *m = member(gc, "maxOutputTokens", "max_output_tokens");

        if (!gc)
                return 0;
        if (!json_is_object(gc))
                return bad_arg(resp, NULL,
                               "Invalid value at 'generation_config', must "
                               "be an object");
        if (check_names(resp, gc, config_fields,
                        sizeof(config_fields) / sizeof(*config_fields),
                        " at 'generation_config'") == -1)
                return -1;
        if (t && (!json_is_number(t) || json_number_value(t) < 0 ||
                  json_number_value(t) > 2))
                return bad_arg(resp, NULL,
                               "* GenerateContentRequest.generation_config."
                               "temperature: must be in [0.0, 2.0]\n");
        if (m && (!json_is_integer(m) || json_integer_value(m) < 1))
                return bad_arg(resp, NULL,
                               "* GenerateContentRequest.generation_config."
                               "max_output_tokens: must be positive\n");
        return 0;
}

static int check_request(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *contents = json_object_get(call->json, "contents");
        const json_t *c;
        size_t i;

        if (!json_is_object(call->json))
                return bad_arg(resp, NULL,
                               "Invalid JSON payload received. Expected an "
                               "object.");
        if (check_names(resp, call->json, top_fields,
                        sizeof(top_fields) / sizeof(*top_fields), "") == -1)
                return -1;
        if (!json_is_array(contents) || !json_array_size(contents))
                return bad_arg(resp, NULL,
                               "* GenerateContentRequest.contents: contents "
                               "is not specified\n");
        json_array_foreach (contents, i, c)
                if (check_content(resp, c, i) == -1)
                        return -1;
        return check_config(resp, member(call->json, "generationConfig",
                                         "generation_config"));
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

/* words(text(x)) of a content or systemInstruction object. */
static json_int_t parts_words(const json_t *x)
{
        const json_t *p;
        const char *t;
        json_int_t n = 0;
        size_t i;

        json_array_foreach (json_object_get(x, "parts"), i, p) {
                t = json_string_value(json_object_get(p, "text"));
                n += t ? count_words(t) : 0;
        }
        return n;
}

/* text(x) appended to \p out (bounded). */
static void parts_text(const json_t *x, char *out, size_t size)
{
        const char *sep = "", *t;
        const json_t *p;
        size_t i, used;

        json_array_foreach (json_object_get(x, "parts"), i, p) {
                t = json_string_value(json_object_get(p, "text"));
                if (!t)
                        continue;
                used = strlen(out);
                snprintf(out + used, size - used, "%s%s", sep, t);
                sep = "\n";
        }
}

static int is_user(const json_t *c)
{
        const char *r = json_string_value(json_object_get(c, "role"));

        return !r || !strcmp(r, "user");
}

/* Does any part of a user content contain the block marker? */
static int has_block_marker(const json_t *contents)
{
        const json_t *c, *p;
        const char *t;
        size_t i, j;

        json_array_foreach (contents, i, c) {
                if (!is_user(c))
                        continue;
                json_array_foreach (json_object_get(c, "parts"), j, p) {
                        t = json_string_value(json_object_get(p, "text"));
                        if (t && strstr(t, BLOCK_MARKER))
                                return 1;
                }
        }
        return 0;
}

static void make_reply(struct gen *g, const json_t *contents)
{
        char text[REPLY_MAX_TEXT * 2 + 8] = "";
        const json_t *last = NULL, *c;
        size_t i, n;

        json_array_foreach (contents, i, c)
                if (is_user(c))
                        last = c;
        if (last)
                parts_text(last, text, sizeof(text));
        n = strlen(text);
        if (n > REPLY_MAX_TEXT) {
                n = REPLY_MAX_TEXT;
                while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
                        n--;
        }
        snprintf(g->reply, sizeof(g->reply), "%s%.*s", REPLY_PREFIX, (int)n,
                 text);
}

static void gen_compute(struct gen *g, const struct fp_call *call)
{
        const json_t *contents = json_object_get(call->json, "contents");
        const json_t *sys = member(call->json, "systemInstruction",
                                   "system_instruction");
        const json_t *gc = member(call->json, "generationConfig",
                                  "generation_config");
        const json_t *tc = member(gc, "thinkingConfig", "thinking_config");
        json_int_t max = json_integer_value(
                member(gc, "maxOutputTokens", "max_output_tokens"));
        const json_t *c;
        size_t i;

        path_model(call, g->model, sizeof(g->model));
        make_reply(g, contents);
        g->prompt = sys ? parts_words(sys) + 4 : 0;
        json_array_foreach (contents, i, c)
                g->prompt += parts_words(c) + 4;
        g->cand = count_words(g->reply);
        g->finish = "STOP";
        if (max > 0 && g->cand > max) {
                g->cand = max;
                g->finish = "MAX_TOKENS";
        }
        g->thoughts = json_is_true(member(tc, "includeThoughts",
                                          "include_thoughts"))
                              ? THOUGHT_TOKENS
                              : 0;
        g->blocked = has_block_marker(contents);
}

static void gen_reply(const struct gen *g, const struct fp_call *call,
                      struct fp_resp *resp)
{
        json_t *parts = json_array(), *usage, *j;
        char id[40];

        if (g->thoughts)
                json_array_append_new(parts,
                                      json_pack("{s:s, s:b}", "text",
                                                THOUGHT_TEXT, "thought", 1));
        json_array_append_new(parts, json_pack("{s:s}", "text", g->reply));
        usage = json_pack("{s:I, s:I, s:I}", "promptTokenCount", g->prompt,
                          "candidatesTokenCount", g->cand, "totalTokenCount",
                          g->prompt + g->cand + g->thoughts);
        if (g->thoughts)
                json_object_set_new(usage, "thoughtsTokenCount",
                                    json_integer(g->thoughts));
        snprintf(id, sizeof(id), "fake%llu", (unsigned long long)call->seq);
        j = json_pack("{s:[{s:{s:s, s:o}, s:s, s:i}], s:o, s:s, s:s}",
                      "candidates", "content", "role", "model", "parts",
                      parts, "finishReason", g->finish, "index", 0,
                      "usageMetadata", usage, "modelVersion", g->model,
                      "responseId", id);
        if (!j)
                fatal("fam_gemini: json_pack reply");
        fpresp_json(resp, 200, j, JSON_INDENT(2));
}

/* ---- routes ----------------------------------------------------------- */

static void generate(const struct fp_call *call, struct fp_resp *resp)
{
        struct gen g;

        if (!call->key) {
                err_no_key(resp);
                return;
        }
        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (check_request(call, resp) == -1)
                return;
        gen_compute(&g, call);
        if (g.blocked)
                blocked_reply(call, resp, g.prompt, g.model);
        else
                gen_reply(&g, call, resp);
}

/* x-goog-api-key: <key>, else ?key=<key> */
static const char *get_key(const struct fp_call *call)
{
        const char *k = fakeprov_header(call, "x-goog-api-key");

        if (!k || !*k)
                k = fakeprov_query(call, "key");
        return k && *k ? k : NULL;
}

static const struct fp_route routes[] = {
        {"POST", "/v1beta/models/*:generateContent", generate},
        {"POST", "/v1/models/*:generateContent", generate},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"invalid_argument", err_invalid_argument},
        {"location", err_location},
        {"permission_denied", err_permission},
        {"not_found", err_not_found},
        {"rate_limit", err_rate_limit},
        {"quota_exhausted", err_quota},
        {"internal", err_internal},
        {"overloaded", err_overloaded},
        {"prompt_blocked", err_prompt_blocked},
        {NULL, NULL},
};

static const char *const defaults[] = {"gemini", NULL};

const struct fp_family fam_gemini = {
        .name = "gemini",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
