/**
 * @file fam_zhipu_video.c
 * @brief Family "zhipu_video": Zhipu / BigModel CogVideoX
 *        (provider-api-reference.md section 11; errors as section 1.2
 *        Zhipu).  Default provider "zhipu-video"; base URL
 *        http://127.0.0.1:PORT/zhipu-video/api/paas/v4 (the real one is
 *        https://open.bigmodel.cn/api/paas/v4).
 *
 * ROUTES
 *
 *   POST /api/paas/v4/videos/generations   -> {"id","model",
 *                                             "task_status":"PROCESSING",
 *                                             "request_id"}
 *   GET  /api/paas/v4/async-result/<id>
 *
 * Errors are {"error":{"code":"<digits>","message":"..."},
 * "request_id":"fake-<n>"} (code a STRING, n = the provider's request
 * number).
 *
 * generations CHECKS, in order
 *
 *   key: none 401 "1001", wrong 401 "1000"
 *   body a JSON object                     400 "1210"
 *   model a string                         400 "1214"
 *   model known (cogvideox-3, cogvideox-2, cogvideox-flash, cogvideox)
 *                                          400 "1211"
 *   prompt and/or image_url (strings), at least one
 *                                          400 "1213"
 *   quality speed|quality, with_audio a boolean, duration the integer 5
 *   or 10, fps 30|60, size one of 720x480 1024x1024 1280x960 960x1280
 *   1920x1080 1080x1920 2048x1080 3840x2160, request_id and user_id
 *   strings -- when present                400 "1214"
 *
 * request_id defaults to the task id.  TASKS (fptask.h markers anywhere
 * in the body, or X-Fake-Task): polls before the end answer
 * {"model","request_id","task_status":"PROCESSING"}; poll N (default 3)
 * answers task_status "SUCCESS" with "video_result":[{"url":
 * "http://<Host>/_fake/media/video-<id>.mp4","cover_image_url":
 * "http://<Host>/_fake/media/cover-<id>.png"}], or "FAIL" (no reason
 * field, as the real API).  An unknown id: 404 "1214" "task does not
 * exist".
 *
 * NAMED ERRORS (one per section-12 Zhipu row)
 *
 *   invalid_key 401 "1000"; token_expired 401 "1003"; account_locked 403
 *   "1112"; insufficient_balance 429 "1113" (verbatim English sample);
 *   rate_limit 429 "1302" (verbatim concurrency sample); frequency_limit
 *   429 "1303"; daily_limit 429 "1304"; overloaded 429 "1305"; usage_cap
 *   429 "1308"; model_busy 429 "1312"; unsafe_content 400 "1301";
 *   model_not_found 400 "1211"; api_offline 400 "1221"; bad_request 400
 *   "1214"; prompt_too_long 400 "1261"; server_error 500 "500";
 *   call_failed 500 "1200".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "fptask.h"
#include "xmem.h"

#define RESULT_PREFIX "/api/paas/v4/async-result/"

/* ---- envelope --------------------------------------------------------- */

static void zp_error(const struct fp_call *call, struct fp_resp *resp,
                     unsigned status, const char *code, const char *msg)
{
        char rid[40];
        json_t *j;

        snprintf(rid, sizeof(rid), "fake-%llu",
                 (unsigned long long)call->seq);
        j = json_pack("{s:{s:s, s:s}, s:s}", "error", "code", code,
                      "message", msg, "request_id", rid);
        if (!j)
                fatal("fam_zhipu_video: json_pack error");
        fpresp_json(resp, status, j, JSON_COMPACT);
}

/** 400 "1214" naming \p what. @returns -1. */
static int bad_param(const struct fp_call *call, struct fp_resp *resp,
                     const char *what)
{
        char msg[200];

        snprintf(msg, sizeof(msg), "%s 参数非法，请检查文档。", what);
        zp_error(call, resp, 400, "1214", msg);
        return -1;
}

/* ---- named errors (bodies of section 1.2) ------------------------------ */

/** Indexes of the named errors below. */
enum {
        Z_INVALID_KEY,
        Z_EXPIRED,
        Z_LOCKED,
        Z_BALANCE,
        Z_RATE,
        Z_FREQUENCY,
        Z_DAILY,
        Z_OVERLOADED,
        Z_CAP,
        Z_BUSY,
        Z_UNSAFE,
        Z_MODEL,
        Z_OFFLINE,
        Z_BAD,
        Z_LONG,
        Z_SERVER,
        Z_CALL,
};

static const struct zerr {
        const char *name;
        unsigned status;
        const char *code;
        const char *msg;
} zerrs[] = {
        [Z_INVALID_KEY] = {"invalid_key", 401, "1000", "身份验证失败。"},
        [Z_EXPIRED] = {"token_expired", 401, "1003",
         "Authentication Token已过期，请重新生成/获取。"},
        [Z_LOCKED] = {"account_locked", 403, "1112", "你的账户已被锁定，请联系客服解锁。"},
        [Z_BALANCE] = {"insufficient_balance", 429, "1113",
         "Insufficient balance or no resource package. Please recharge."},
        [Z_RATE] = {"rate_limit", 429, "1302",
         "High concurrency usage of this API, please reduce concurrency or "
         "contact customer service to increase limits"},
        [Z_FREQUENCY] = {"frequency_limit", 429, "1303",
         "您当前使用该API的频率过高，请降低频率，或联系客服增加限额。"},
        [Z_DAILY] = {"daily_limit", 429, "1304",
         "该API已达今日调用次数限额，如有更多需求，请联系客服购买。"},
        [Z_OVERLOADED] = {"overloaded", 429, "1305",
         "当前API请求过多，请稍后重试。"},
        [Z_CAP] = {"usage_cap", 429, "1308",
         "已达到 5 小时的使用上限。您的限额将在 2026-01-01 00:00:00 重置。"},
        [Z_BUSY] = {"model_busy", 429, "1312", "该模型当前访问量过大，请您稍后再试"},
        [Z_UNSAFE] = {"unsafe_content", 400, "1301",
         "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生"
         "敏感内容的提示语，感谢您的配合。"},
        [Z_MODEL] = {"model_not_found", 400, "1211", "模型不存在，请检查模型代码。"},
        [Z_OFFLINE] = {"api_offline", 400, "1221", "API 已下线。"},
        [Z_BAD] = {"bad_request", 400, "1214", "参数非法，请检查文档。"},
        [Z_LONG] = {"prompt_too_long", 400, "1261", "Prompt 超长。"},
        [Z_SERVER] = {"server_error", 500, "500", "服务内部错误。"},
        [Z_CALL] = {"call_failed", 500, "1200", "API 调用失败，请稍后重试。"},
};

static void zerr(const struct fp_call *c, struct fp_resp *r, int i)
{
        zp_error(c, r, zerrs[i].status, zerrs[i].code, zerrs[i].msg);
}

static void e_invalid_key(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_INVALID_KEY);
}
static void e_expired(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_EXPIRED);
}
static void e_locked(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_LOCKED);
}
static void e_balance(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_BALANCE);
}
static void e_rate(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_RATE);
}
static void e_frequency(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_FREQUENCY);
}
static void e_daily(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_DAILY);
}
static void e_overloaded(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_OVERLOADED);
}
static void e_cap(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_CAP);
}
static void e_busy(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_BUSY);
}
static void e_unsafe(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_UNSAFE);
}
static void e_model(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_MODEL);
}
static void e_offline(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_OFFLINE);
}
static void e_bad(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_BAD);
}
static void e_long(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_LONG);
}
static void e_server(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_SERVER);
}
static void e_call(const struct fp_call *c, struct fp_resp *r)
{
        zerr(c, r, Z_CALL);
}

/* ---- generations ------------------------------------------------------ */

static const char *const models[] = {"cogvideox-3", "cogvideox-2",
                                     "cogvideox-flash", "cogvideox", NULL};
static const char *const qualities[] = {"speed", "quality", NULL};
static const char *const sizes[] = {"720x480",   "1024x1024", "1280x960",
                                    "960x1280",  "1920x1080", "1080x1920",
                                    "2048x1080", "3840x2160", NULL};

static int in_list(const char *s, const char *const *list)
{
        for (; s && *list; list++)
                if (!strcmp(s, *list))
                        return 1;
        return 0;
}

/** Present members must be well-formed. */
static int check_options(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *b = call->json, *v;

        v = json_object_get(b, "quality");
        if (v && !in_list(json_string_value(v), qualities))
                return bad_param(call, resp, "quality");
        v = json_object_get(b, "with_audio");
        if (v && !json_is_boolean(v))
                return bad_param(call, resp, "with_audio");
        v = json_object_get(b, "duration");
        if (v && (!json_is_integer(v) || (json_integer_value(v) != 5 &&
                                          json_integer_value(v) != 10)))
                return bad_param(call, resp, "duration");
        v = json_object_get(b, "fps");
        if (v && (!json_is_integer(v) || (json_integer_value(v) != 30 &&
                                          json_integer_value(v) != 60)))
                return bad_param(call, resp, "fps");
        v = json_object_get(b, "size");
        if (v && !in_list(json_string_value(v), sizes))
                return bad_param(call, resp, "size");
        if ((v = json_object_get(b, "request_id")) && !json_is_string(v))
                return bad_param(call, resp, "request_id");
        if ((v = json_object_get(b, "user_id")) && !json_is_string(v))
                return bad_param(call, resp, "user_id");
        return 0;
}

static int check_generation(const struct fp_call *call, struct fp_resp *resp)
{
        const json_t *model = json_object_get(call->json, "model");
        const json_t *prompt = json_object_get(call->json, "prompt");
        const json_t *image = json_object_get(call->json, "image_url");

        if (!json_is_object(call->json)) {
                zp_error(call, resp, 400, "1210",
                         "API 调用参数有误，请检查文档。");
                return -1;
        }
        if (!json_is_string(model))
                return bad_param(call, resp, "model");
        if (!in_list(json_string_value(model), models)) {
                zerr(call, resp, Z_MODEL);
                return -1;
        }
        if ((prompt && !json_is_string(prompt)) ||
            (image && !json_is_string(image)))
                return bad_param(call, resp, "prompt/image_url");
        if (!json_string_length(prompt) && !json_string_length(image)) {
                zp_error(call, resp, 400, "1213",
                         "未正常接收到prompt参数。");
                return -1;
        }
        return check_options(call, resp);
}

static void generations(const struct fp_call *call, struct fp_resp *resp)
{
        const char *model, *rid;
        struct fp_call rec;
        struct fptask t;
        char text[512];

        if (!call->auth_ok) {
                if (call->key)
                        zerr(call, resp, Z_INVALID_KEY);
                else
                        zp_error(call, resp, 401, "1001",
                                 "Header中未收到Authentication参数，无法进行"
                                 "身份验证。");
                return;
        }
        if (check_generation(call, resp) == -1)
                return;
        model = json_string_value(json_object_get(call->json, "model"));
        rid = json_string_value(json_object_get(call->json, "request_id"));
        /* the task keeps "<model>\n<request_id>" for its polls */
        rec = *call;
        rec.body_len = (size_t)snprintf(text, sizeof(text), "%s\n%.200s",
                                        model, rid ? rid : "");
        rec.body = text;
        fptask_create(&rec, "", call->body, &t);
        fpresp_json(resp, 200,
                    json_pack("{s:s, s:s, s:s, s:s}", "id", t.id, "model",
                              model, "task_status", "PROCESSING",
                              "request_id", rid && *rid ? rid : t.id),
                    JSON_COMPACT);
}

/* ---- async-result ----------------------------------------------------- */

static const char *host_of(const struct fp_call *call)
{
        const char *h = fakeprov_header(call, "Host");

        return h && *h && strlen(h) < 200 ? h : "127.0.0.1";
}

static json_t *video_result(const struct fp_call *call,
                            const struct fptask *t)
{
        char url[512], cover[512];

        snprintf(url, sizeof(url), "http://%s/_fake/media/video-%s.mp4",
                 host_of(call), t->id);
        snprintf(cover, sizeof(cover), "http://%s/_fake/media/cover-%s.png",
                 host_of(call), t->id);
        return json_pack("[{s:s, s:s}]", "url", url, "cover_image_url",
                         cover);
}

static json_t *result_json(const struct fp_call *call, const struct fptask *t)
{
        char model[64] = "", rid[256] = "";
        const char *status = "PROCESSING";
        json_t *j;

        sscanf(t->input, "%63[^\n]\n%255[^\n]", model, rid);
        if (t->done)
                status = t->fate == FPTASK_SUCCEED ? "SUCCESS" : "FAIL";
        j = json_pack("{s:s, s:s, s:s}", "model", model, "request_id",
                      *rid ? rid : t->id, "task_status", status);
        if (!j)
                fatal("fam_zhipu_video: json_pack result");
        if (t->done && t->fate == FPTASK_SUCCEED)
                json_object_set_new(j, "video_result", video_result(call, t));
        return j;
}

static void async_result(const struct fp_call *call, struct fp_resp *resp)
{
        const char *id = call->path + strlen(RESULT_PREFIX);
        struct fptask t;

        if (!call->auth_ok) {
                zerr(call, resp, Z_INVALID_KEY);
                return;
        }
        if (fptask_poll(call, id, &t) == -1) {
                zp_error(call, resp, 404, "1214", "task does not exist");
                return;
        }
        fpresp_json(resp, 200, result_json(call, &t), JSON_COMPACT);
}

/* ---- family ----------------------------------------------------------- */

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

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        zp_error(call, resp, 404, "1222", "API 不存在。");
}

static const struct fp_route routes[] = {
        {"POST", "/api/paas/v4/videos/generations", generations},
        {"GET", RESULT_PREFIX "*", async_result},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", e_invalid_key},
        {"token_expired", e_expired},
        {"account_locked", e_locked},
        {"insufficient_balance", e_balance},
        {"rate_limit", e_rate},
        {"frequency_limit", e_frequency},
        {"daily_limit", e_daily},
        {"overloaded", e_overloaded},
        {"usage_cap", e_cap},
        {"model_busy", e_busy},
        {"unsafe_content", e_unsafe},
        {"model_not_found", e_model},
        {"api_offline", e_offline},
        {"bad_request", e_bad},
        {"prompt_too_long", e_long},
        {"server_error", e_server},
        {"call_failed", e_call},
        {NULL, NULL},
};

static const char *const defaults[] = {"zhipu-video", NULL};

const struct fp_family fam_zhipu_video = {
        .name = "zhipu_video",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
