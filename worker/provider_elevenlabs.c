/*
 * provider_elevenlabs: ElevenLabs text-to-speech ("elevenlabs", reference
 * 10.2).
 *
 *   POST <base>/v1/text-to-speech/{voice_id}?output_format=mp3_44100_128
 *   xi-api-key: <key>
 *   Accept: audio/mpeg
 *   {"text": <text>, "model_id": <model>?} + extra_body as defaults
 *   (voice_settings, ...)
 *
 * base_url is the host without /v1 (https://api.elevenlabs.io).  The voice
 * id is the job's voice, else the configured voice; without either the
 * job cannot be expressed here (build fails, the worker moves on).
 * model_id is the job's hint when it is an ElevenLabs model ("eleven_*";
 * hints for other providers, "tts-1", are not forwarded), else the
 * configured model, else left out (ElevenLabs' default).  Only mp3 is
 * offered (the one output_format the reference documents): a job asking
 * for another format cannot be expressed here.  The job's speed is not
 * sent (no documented field).
 *
 * Success is binary MP3; the Content-Type decides (audio/ types or
 * application/octet-stream are the result, JSON is an error body).
 * units = characters of the text (UTF-8 code points).
 *
 * Errors: {"detail": {"status": "<code>", "message": "..."}} (422: a
 * FastAPI list).  THE TRAP: 401 with detail.status "quota_exceeded" is
 * quota_exhausted, not a bad key; other 401s are key_disabled.  429
 * (too_many_concurrent_requests, system_busy) and 409 are retry_later;
 * 400 and 422 fatal_job.  Everything else: provider_classify_generic().
 */
#include "provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xmem.h"

#define TTS_PATH "/v1/text-to-speech/"
#define OUTPUT_FORMAT "mp3_44100_128"

/*
 * Building the request.
 */

/** \p s percent-encoded for a path segment into \p out. @returns length
 *  or -1 if it does not fit. */
static int escape_segment(const char *s, char *out, size_t outsz)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = 0;

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (n + 4 > outsz)
                        return -1;
                if (isalnum(c) || c == '-' || c == '_' || c == '.' ||
                    c == '~') {
                        out[n++] = (char)c;
                        continue;
                }
                out[n++] = '%';
                out[n++] = hex[c >> 4];
                out[n++] = hex[c & 15];
        }
        out[n] = '\0';
        return (int)n;
}

static int build_url(const struct provider_cfg *p, const char *voice,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
{
        char seg[512];
        size_t n;
        int r;

        if (!p->base_url || !*p->base_url) {
                snprintf(errstr, errstr_size, "provider %s has no base_url",
                         p->name);
                return -1;
        }
        if (escape_segment(voice, seg, sizeof(seg)) == -1) {
                snprintf(errstr, errstr_size, "voice id too long");
                return -1;
        }
        n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
                n--;
        r = snprintf(req->url, sizeof(req->url),
                     "%.*s" TTS_PATH "%s?output_format=" OUTPUT_FORMAT,
                     (int)n, p->base_url, seg);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: base_url too long",
                         p->name);
                return -1;
        }
        return 0;
}

static int build_headers(const char *key, struct provider_req *req,
                         char *errstr, size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (key && *key)
                provider_req_header(req, "xi-api-key: %s", key);
        provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: audio/mpeg");
        return 0;
}

static void jset(json_t *obj, const char *k, json_t *v)
{
        if (!v || json_object_set_new(obj, k, v) == -1)
                fatal("out of memory building JSON");
}

static int jset_str(json_t *obj, const char *k, const char *s)
{
        json_t *v = json_string(s);

        if (!v)
                return -1;
        jset(obj, k, v);
        return 0;
}

static int merge_extra(const struct provider_cfg *p, json_t *body,
                       char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        json_t *extra;

        if (!p->extra_body || !*p->extra_body)
                return 0;
        extra = json_loads(p->extra_body, 0, &jerr);
        if (!json_is_object(extra)) {
                snprintf(errstr, errstr_size,
                         "provider %s: extra_body is not a JSON object: %s",
                         p->name, extra ? "wrong type" : jerr.text);
                json_decref(extra);
                return -1;
        }
        if (json_object_update_missing(body, extra) == -1)
                fatal("out of memory building JSON");
        json_decref(extra);
        return 0;
}

/** model_id: an "eleven_" hint, else the configured model, else NULL. */
static const char *model_id(const struct provider_cfg *p, const char *hint)
{
        if (!strncmp(hint, "eleven_", 7))
                return hint;
        return p->model && *p->model ? p->model : NULL;
}

static int check_job(const struct provider_cfg *p, const Genq__V1__Job *job,
                     const char **voice, char *errstr, size_t errstr_size)
{
        const Genq__V1__TtsRequest *tts = job->tts;

        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_TTS || !tts) {
                snprintf(errstr, errstr_size, "not a tts job");
                return -1;
        }
        if (!*tts->text) {
                snprintf(errstr, errstr_size, "no text to speak");
                return -1;
        }
        if (*tts->format && strcmp(tts->format, "mp3")) {
                snprintf(errstr, errstr_size,
                         "format \"%.32s\" not offered (mp3 only)",
                         tts->format);
                return -1;
        }
        *voice = *tts->voice ? tts->voice : p->voice;
        if (!*voice || !**voice) {
                snprintf(errstr, errstr_size,
                         "no voice: the job names none and provider %s has "
                         "no default",
                         p->name);
                return -1;
        }
        return 0;
}

static json_t *build_body(const struct provider_cfg *p,
                          const Genq__V1__TtsRequest *tts, char *errstr,
                          size_t errstr_size)
{
        const char *model = model_id(p, tts->model);
        json_t *body = json_object();

        if (!body)
                fatal("out of memory building JSON");
        if (jset_str(body, "text", tts->text) == -1 ||
            (model && jset_str(body, "model_id", model) == -1)) {
                snprintf(errstr, errstr_size, "text or model is not UTF-8");
                goto err_free_body;
        }
        if (merge_extra(p, body, errstr, errstr_size) == -1)
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
        const char *voice;
        json_t *body;

        memset(req, 0, sizeof(*req));
        if (check_job(p, job, &voice, errstr, errstr_size) == -1)
                return -1;
        body = build_body(p, job->tts, errstr, errstr_size);
        if (!body)
                return -1;
        if (build_url(p, voice, req, errstr, errstr_size) == -1 ||
            build_headers(key, req, errstr, errstr_size) == -1)
                goto err_free_body;
        req->method = "POST";
        req->body = json_dumps(body, JSON_COMPACT);
        if (!req->body)
                fatal("out of memory serialising JSON");
        req->body_len = strlen(req->body);
        json_decref(body);
        return 0;

err_free_body:
        json_decref(body);
        provider_req_clear(req);
        return -1;
}

/*
 * Classifying.
 */

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_STATUS,  /**< detail.status equals one of val */
};

struct rule {
        long status;          /**< HTTP status, 0 = any */
        enum marker marker;
        const char *val;      /**< '|'-separated alternatives */
        enum outcome outcome;
};

#define RETRY OUTCOME_RETRY_LATER
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* Section 10.2 and the ElevenLabs rows of section 12. */
static const struct rule json_rules[] = {
        {0, M_STATUS, "quota_exceeded", QUOTA},
        {401, M_STATUS, "invalid_api_key|detected_unusual_activity", KEYDIS},
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {409, M_ANY, NULL, RETRY},
        {429, M_STATUS, "too_many_concurrent_requests|system_busy", RETRY},
        {429, M_ANY, NULL, RETRY},
        {400, M_ANY, NULL, FATAL},
        {422, M_ANY, NULL, FATAL},
        {0, M_END, NULL, 0},
};

/* No JSON body (proxy, CDN, WAF): see provider_openai.c. */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, OUTCOME_FALLBACK_NEXT},
        {404, M_ANY, NULL, OUTCOME_FALLBACK_NEXT},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/** The detail fields (borrowed from the parsed body). */
struct detail {
        const char *status;  /**< detail.status, "" if none */
        const char *message; /**< detail.message / msg / the string */
};

static int alt_eq(const char *alts, const char *s)
{
        size_t n, len = strlen(s);

        for (;;) {
                n = strcspn(alts, "|");
                if (n == len && !strncmp(alts, s, n))
                        return 1;
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static const struct rule *rules_match(const struct rule *rules, long status,
                                      const struct detail *d)
{
        for (const struct rule *r = rules; r->marker != M_END; r++)
                if ((!r->status || r->status == status) &&
                    (r->marker == M_ANY || alt_eq(r->val, d->status)))
                        return r;
        return NULL;
}

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

/** detail as an object, a FastAPI list (first item) or a string. */
static void detail_read(struct detail *d, const json_t *root)
{
        const json_t *det = json_object_get(root, "detail");

        d->status = "";
        d->message = NULL;
        if (json_is_array(det))
                det = json_array_get(det, 0);
        if (json_is_string(det)) {
                d->message = json_string_value(det);
                return;
        }
        if (jstr(det, "status"))
                d->status = jstr(det, "status");
        else if (jstr(det, "type"))
                d->status = jstr(det, "type");
        d->message = jstr(det, "message");
        if (!d->message)
                d->message = jstr(det, "msg");
}

static void copy_utf8(char *dst, size_t dstsz, const char *src)
{
        size_t n = strlen(src);

        if (n >= dstsz) {
                n = dstsz - 1;
                while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
                        n--;
        }
        memcpy(dst, src, n);
        dst[n] = '\0';
}

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct rule *r;
        struct detail d;
        char buf[1024];
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        detail_read(&d, root);
        r = rules_match(json_is_object(root) ? json_rules : nonjson_rules,
                        resp->status, &d);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        else if (resp->status >= 200 && resp->status < 300)
                err->outcome = OUTCOME_RETRY_LATER;
        if (json_is_object(root)) {
                snprintf(buf, sizeof(buf), "%ld%s%s: %s", resp->status,
                         *d.status ? " " : "", d.status,
                         d.message ? d.message : "(no message)");
                copy_utf8(err->errstr, sizeof(err->errstr), buf);
        }
        json_decref(root);
        return err->outcome;
}

static double utf8_chars(const char *s)
{
        double n = 0;

        for (; s && *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

/** Media type without parameters, lower-cased. */
static const char *media_type(const char *ct, char *buf, size_t bufsz)
{
        size_t n = 0;

        while (ct && isspace((unsigned char)*ct))
                ct++;
        while (ct && ct[n] && ct[n] != ';' && !isspace((unsigned char)ct[n]) &&
               n + 1 < bufsz) {
                buf[n] = (char)tolower((unsigned char)ct[n]);
                n++;
        }
        buf[n] = '\0';
        return buf;
}

static enum outcome retry_2xx(const struct provider_resp *resp,
                              struct provider_err *err, const char *why)
{
        snprintf(err->errstr, sizeof(err->errstr), "%ld: %s", resp->status,
                 why);
        err->outcome = OUTCOME_RETRY_LATER;
        return err->outcome;
}

static enum outcome parse_ok(const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err)
{
        char mtype[128], why[200];

        media_type(resp->content_type, mtype, sizeof(mtype));
        if (strncmp(mtype, "audio/", 6) &&
            strcmp(mtype, "application/octet-stream")) {
                if (strstr(mtype, "json"))
                        return parse_error(resp, err);
                snprintf(why, sizeof(why), "unexpected content type \"%s\"",
                         mtype);
                return retry_2xx(resp, err, why);
        }
        if (resp->truncated)
                return provider_classify_generic(resp, err);
        if (!resp->body || !resp->body_len)
                return retry_2xx(resp, err, "empty audio body");
        res->data = xmalloc(resp->body_len);
        memcpy(res->data, resp->body, resp->body_len);
        res->data_len = resp->body_len;
        res->content_type = xstrdup(mtype);
        res->units = utf8_chars(job && job->tts ? job->tts->text : NULL);
        res->unit = "character";
        return OUTCOME_SUCCESS;
}

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status >= 200 && resp->status < 300)
                return parse_ok(job, resp, res, err);
        return parse_error(resp, err);
}

const struct provider_ops provider_elevenlabs_ops = {
        .name = "elevenlabs",
        .kind = GENQ__V1__KIND__KIND_TTS,
        .flags = 0,
        .build = build,
        .parse = parse,
};
