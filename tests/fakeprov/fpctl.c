/* The /_fake/ control plane; see fpctl.h. */
#include "fpctl.h"
#include "fpcb.h"
#include "fptask.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpprov.h"
#include "xmem.h"

/* Media failures steered by tests; see ctl_media_config(). */
static pthread_mutex_t media_lock = PTHREAD_MUTEX_INITIALIZER;
static int media_fail_status, media_fail_count;

typedef void(ctl_fn)(const struct fpctl_env *env, fpprov_t *p,
                     const struct fp_call *call, struct fp_resp *resp);

static void ctl_error(struct fp_resp *resp, unsigned status,
                      const char *msg)
{
        fpresp_json(resp, status, json_pack("{s:s}", "error", msg),
                    JSON_COMPACT);
}

static void ctl_ok(struct fp_resp *resp)
{
        fpresp_json(resp, 200, json_pack("{s:b}", "ok", 1), JSON_COMPACT);
}

static void ctl_ping(const struct fpctl_env *env, fpprov_t *p,
                     const struct fp_call *call, struct fp_resp *resp)
{
        ctl_ok(resp);
}

static void ctl_reset_all(const struct fpctl_env *env, fpprov_t *p,
                          const struct fp_call *call, struct fp_resp *resp)
{
        size_t i;

        for (i = 0; i < env->nprovs; i++)
                fpprov_reset(env->provs[i]);
        fptask_reset();
        fpcb_reset(NULL);
        pthread_mutex_lock(&media_lock);
        media_fail_count = 0;
        pthread_mutex_unlock(&media_lock);
        ctl_ok(resp);
}

/* Media failures steered by tests (POST /_fake/media/config
 * {"fail_status": 404, "count": N}): the next N media requests answer
 * that status, as an expired result URL would. */
static int media_should_fail(void)
{
        int st = 0;

        pthread_mutex_lock(&media_lock);
        if (media_fail_count > 0) {
                media_fail_count--;
                st = media_fail_status;
        }
        pthread_mutex_unlock(&media_lock);
        return st;
}

static void ctl_media_config(const struct fp_call *call, struct fp_resp *resp)
{
        json_t *st = json_object_get(call->json, "fail_status");
        json_t *n = json_object_get(call->json, "count");

        pthread_mutex_lock(&media_lock);
        media_fail_status = json_is_integer(st) ? (int)json_integer_value(st)
                                                : 404;
        media_fail_count = json_is_integer(n) ? (int)json_integer_value(n)
                                              : 0;
        pthread_mutex_unlock(&media_lock);
        ctl_ok(resp);
}

/* Any other media name: deterministic bytes, typed by extension, the
 * size fixed by the name (a result a worker downloads and hashes). */
static void media_blob(const char *name, struct fp_resp *resp)
{
        static const struct {
                const char *ext, *ctype, *magic;
                size_t magic_len, size;
        } types[] = {
                {".mp4", "video/mp4", "\0\0\0\x18" "ftypmp42", 12, 65536},
                {".png", "image/png", "\x89PNG\r\n\x1a\n", 8, 4096},
                {".webp", "image/webp", "RIFF\0\0\0\0WEBP", 12, 4096},
                {".jpg", "image/jpeg", "\xff\xd8\xff\xe0", 4, 4096},
        };
        size_t t, len;
        unsigned char *b;
        uint32_t h = 2166136261u;

        for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
                if (strlen(name) > strlen(types[t].ext) &&
                    !strcmp(name + strlen(name) - strlen(types[t].ext),
                            types[t].ext))
                        break;
        if (t == sizeof(types) / sizeof(types[0])) {
                ctl_error(resp, 404, "no such media");
                return;
        }
        len = types[t].size;
        b = xmalloc(len);
        for (const char *c = name; *c; c++)
                h = (h ^ (unsigned char)*c) * 16777619u;
        for (size_t i = 0; i < len; i++) {
                h = h * 1103515245u + 12345u;
                b[i] = (unsigned char)(h >> 16);
        }
        memcpy(b, types[t].magic, types[t].magic_len);
        fpresp_set_owned(resp, 200, (char *)b, len);
        fpresp_content_type(resp, types[t].ctype);
}

/* GET /_fake/media/tone-<N>s.wav: N seconds of 8 kHz 16-bit mono
 * silence-with-a-tone WAV, deterministic, for stt inputs (duration is
 * what transcription fakes report).  Other names: media_blob(). */
static void ctl_media(const struct fpctl_env *env, fpprov_t *p,
                      const struct fp_call *call, struct fp_resp *resp)
{
        const char *name = strrchr(call->path, '/'); /* "media/<name>" */
        int secs = 0, fail = media_should_fail();
        uint32_t n, rate = 8000;
        unsigned char *b;

        if (fail) {
                ctl_error(resp, (unsigned)fail, "media expired");
                return;
        }
        if (!name || sscanf(name, "/tone-%ds.wav", &secs) != 1 || secs < 1 ||
            secs > 600) {
                media_blob(name ? name + 1 : "", resp);
                return;
        }
        n = (uint32_t)secs * rate * 2;
        b = xcalloc(44 + n, 1);
        memcpy(b, "RIFF", 4);
        for (int i = 0; i < 4; i++) {
                b[4 + i] = (unsigned char)((36 + n) >> (8 * i));
                b[40 + i] = (unsigned char)(n >> (8 * i));
                b[24 + i] = (unsigned char)(rate >> (8 * i));
                b[28 + i] = (unsigned char)((rate * 2) >> (8 * i));
        }
        memcpy(b + 8, "WAVEfmt ", 8);
        b[16] = 16;   /* fmt chunk size */
        b[20] = 1;    /* PCM */
        b[22] = 1;    /* mono */
        b[32] = 2;    /* block align */
        b[34] = 16;   /* bits */
        memcpy(b + 36, "data", 4);
        for (uint32_t i = 0; i < n / 2; i++)  /* a 500 Hz square-ish tone */
                b[44 + 2 * i + 1] = (i / 8) % 2 ? 0x10 : 0xf0;
        fpresp_set_owned(resp, 200, (char *)b, 44 + n);
        fpresp_content_type(resp, "audio/wav");
}

/* Async tasks of one provider: ids, poll counts and poll times. */
static void ctl_tasks(const struct fpctl_env *env, fpprov_t *p,
                      const struct fp_call *call, struct fp_resp *resp)
{
        fpresp_json(resp, 200, fptask_dump(fpprov_name(p)), JSON_COMPACT);
}

/* Callback attempts of one provider's tasks (fpcb.h). */
static void ctl_callbacks(const struct fpctl_env *env, fpprov_t *p,
                          const struct fp_call *call, struct fp_resp *resp)
{
        fpresp_json(resp, 200, fpcb_dump(fpprov_name(p)), JSON_COMPACT);
}

static void ctl_stats_all(const struct fpctl_env *env, fpprov_t *p,
                          const struct fp_call *call, struct fp_resp *resp)
{
        json_t *o = json_object();
        size_t i;

        for (i = 0; i < env->nprovs; i++)
                json_object_set_new(o, fpprov_name(env->provs[i]),
                                    fpprov_stats(env->provs[i]));
        fpresp_json(resp, 200, o, JSON_COMPACT);
}

static void ctl_reset(const struct fpctl_env *env, fpprov_t *p,
                      const struct fp_call *call, struct fp_resp *resp)
{
        fpprov_reset(p);
        fpcb_reset(fpprov_name(p));
        ctl_ok(resp);
}

static void ctl_stats(const struct fpctl_env *env, fpprov_t *p,
                      const struct fp_call *call, struct fp_resp *resp)
{
        fpresp_json(resp, 200, fpprov_stats(p), JSON_COMPACT);
}

static void ctl_script(const struct fpctl_env *env, fpprov_t *p,
                       const struct fp_call *call, struct fp_resp *resp)
{
        char errstr[512];

        if (fpprov_script(p, call->json, errstr, sizeof(errstr)) == -1)
                ctl_error(resp, 400, errstr);
        else
                ctl_ok(resp);
}

static void ctl_config(const struct fpctl_env *env, fpprov_t *p,
                       const struct fp_call *call, struct fp_resp *resp)
{
        char errstr[512];

        if (fpprov_config(p, call->json, errstr, sizeof(errstr)) == -1)
                ctl_error(resp, 400, errstr);
        else
                ctl_ok(resp);
}

static void ctl_requests(const struct fpctl_env *env, fpprov_t *p,
                         const struct fp_call *call, struct fp_resp *resp)
{
        const char *s = fakeprov_query(call, "last");
        char *end = NULL, *arr;
        long last = FPPROV_RING;
        size_t len;

        if (s) {
                last = strtol(s, &end, 10);
                if (!*s || *end || last < 0) {
                        ctl_error(resp, 400, "last must be an integer >= 0");
                        return;
                }
        }
        arr = fpprov_requests(p, (size_t)last, &len);
        fpresp_set_owned(resp, 200, arr, len); /* arr owned by resp now */
}

static const struct {
        const char *method;
        const char *action;
        int per_provider;  /**< path is <provider>/<action> */
        ctl_fn *fn;
} cmds[] = {
        {"GET", "ping", 0, ctl_ping},
        {"POST", "reset", 0, ctl_reset_all},
        {"GET", "stats", 0, ctl_stats_all},
        {"POST", "reset", 1, ctl_reset},
        {"GET", "stats", 1, ctl_stats},
        {"POST", "script", 1, ctl_script},
        {"POST", "config", 1, ctl_config},
        {"GET", "requests", 1, ctl_requests},
        {"GET", "tasks", 1, ctl_tasks},
        {"GET", "callbacks", 1, ctl_callbacks},
};

void fpctl_handle(const struct fpctl_env *env, const struct fp_call *call,
                  struct fp_resp *resp)
{
        const char *slash = strchr(call->path, '/');
        const char *action = slash ? slash + 1 : call->path;
        fpprov_t *p = NULL;
        int method_seen = 0;
        size_t i;

        if (!strcmp(call->path, "media/config") &&
            !strcmp(call->method, "POST")) {
                ctl_media_config(call, resp);
                return;
        }
        if (!strncmp(call->path, "media/", 6) &&
            !strcmp(call->method, "GET")) {
                ctl_media(env, NULL, call, resp);
                return;
        }
        if (slash) {
                p = fpprov_find(env->provs, env->nprovs, call->path,
                                (size_t)(slash - call->path));
                if (!p) {
                        ctl_error(resp, 404, "no such provider");
                        return;
                }
        }
        for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
                if (cmds[i].per_provider != !!p ||
                    strcmp(cmds[i].action, action))
                        continue;
                method_seen = 1;
                if (!strcmp(cmds[i].method, call->method)) {
                        cmds[i].fn(env, p, call, resp);
                        return;
                }
        }
        if (method_seen)
                ctl_error(resp, 405, "method not allowed");
        else
                ctl_error(resp, 404, "unknown control path");
}
