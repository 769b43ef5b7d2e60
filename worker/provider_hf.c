/*
 * provider_hf: Hugging Face Inference (serverless "hf-inference", legacy
 * api-inference host or the router), two adapters:
 *
 *   "hf_image"    text-to-image: POST <base>/models/{model}
 *                 {"inputs": prompt, "parameters": {negative_prompt,
 *                 width, height}}; the answer is the image bytes.
 *   "hf_whisper"  speech-to-text (reference 9.4, PROVIDER_F_NEEDS_INPUT):
 *                 POST <base>/models/{model} with the raw audio bytes and
 *                 the input's Content-Type; answer {"text": "..."}.
 *
 * The base URL carries the host's own prefix:
 * https://router.huggingface.co/hf-inference or
 * https://api-inference.huggingface.co.  A job's model hint is used when it
 * is a repository id ("owner/name"), else the provider's default applies.
 *
 * Whisper refuses more than 30 s of audio sent raw (400 "more than 3000
 * mel input features"); the reference's JSON form with
 * return_timestamps lifts that limit, so a WAV input longer than 30 s
 * (its length read from the header) is sent as {"inputs": base64,
 * "parameters": {"return_timestamps": true}}.  Units (seconds) come from
 * the answer's chunk timestamps when there are any; parse() does not see
 * the input, so for a raw upload they stay unknown (-1).
 *
 * Errors are {"error": "..." (or a list), "estimated_time"?}; a 503 "is
 * currently loading" is retry_later after estimated_time seconds.
 */
#include "provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "xmem.h"

/** Longest audio Whisper takes as raw bytes (reference 9.4). */
#define RAW_MAX_SECONDS 30.0

/*
 * Shared request helpers.
 */

/** Length of a repository name segment ([A-Za-z0-9][A-Za-z0-9._-]*)
 *  at \p s. */
static size_t segment_len(const char *s)
{
        size_t n = 0;

        if (!isalnum((unsigned char)s[0]))
                return 0; /* never "." or "..": the name goes in a path */
        while (isalnum((unsigned char)s[n]) || s[n] == '.' || s[n] == '_' ||
               s[n] == '-')
                n++;
        return n;
}

/** 2: "owner/name", 1: "name", 0: not a repository id. */
static int repo_shape(const char *m)
{
        size_t a;

        if (!m || !*m)
                return 0;
        a = segment_len(m);
        if (!a)
                return 0;
        if (!m[a])
                return 1;
        if (m[a] != '/' || !segment_len(m + a + 1) ||
            m[a + 1 + segment_len(m + a + 1)])
                return 0;
        return 2;
}

/** The hint if it is "owner/name", else the configured model. */
static const char *model_of(const struct provider_cfg *p, const char *hint,
                            char *errstr, size_t errstr_size)
{
        if (repo_shape(hint) == 2)
                return hint;
        if (repo_shape(p->model))
                return p->model;
        snprintf(errstr, errstr_size,
                 "provider %s: model \"%s\" is not a repository id", p->name,
                 p->model ? p->model : "");
        return NULL;
}

static int build_url(const struct provider_cfg *p, const char *model,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
{
        size_t n;
        int r;

        if (!p->base_url || !*p->base_url) {
                snprintf(errstr, errstr_size, "provider %s has no base_url",
                         p->name);
                return -1;
        }
        n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
                n--;
        r = snprintf(req->url, sizeof(req->url), "%.*s/models/%s", (int)n,
                     p->base_url, model);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: URL too long",
                         p->name);
                return -1;
        }
        return 0;
}

/** URL, method and auth; the caller adds Content-Type and the body. */
static int build_common(const struct provider_cfg *p, const char *key,
                        const char *model, struct provider_req *req,
                        char *errstr, size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (build_url(p, model, req, errstr, errstr_size) == -1)
                return -1;
        req->method = "POST";
        if (key && *key)
                provider_req_header(req, "Authorization: Bearer %s", key);
        return 0;
}

static void jset(json_t *obj, const char *k, json_t *v)
{
        if (!v || json_object_set_new(obj, k, v) == -1)
                fatal("out of memory building JSON");
}

static void set_json_body(struct provider_req *req, json_t *body)
{
        req->body = json_dumps(body, JSON_COMPACT);
        if (!req->body)
                fatal("out of memory serialising JSON");
        req->body_len = strlen(req->body);
        provider_req_header(req, "Content-Type: application/json");
}

/*
 * hf_image request.
 */

/** "parameters": negative_prompt, width and height from "WxH". */
static json_t *image_params(const Genq__V1__ImageRequest *im)
{
        json_t *params = json_object();
        unsigned w, h;
        char tail;

        if (!params)
                fatal("out of memory building JSON");
        if (*im->negative_prompt)
                jset(params, "negative_prompt",
                     json_string(im->negative_prompt));
        if (sscanf(im->size, "%ux%u%c", &w, &h, &tail) == 2 && w && h) {
                jset(params, "width", json_integer(w));
                jset(params, "height", json_integer(h));
        }
        return params;
}

/**
 * extra_body's keys are defaults for the top level, and one level down
 * for "parameters" (so {"parameters": {"num_inference_steps": 4}} adds to
 * the job's parameters).
 */
static int merge_extra(const struct provider_cfg *p, json_t *body,
                       char *errstr, size_t errstr_size)
{
        json_t *extra, *ours, *theirs;

        if (!p->extra_body || !*p->extra_body)
                return 0;
        extra = json_loads(p->extra_body, 0, NULL);
        if (!json_is_object(extra)) {
                snprintf(errstr, errstr_size,
                         "provider %s: extra_body is not a JSON object",
                         p->name);
                json_decref(extra);
                return -1;
        }
        ours = json_object_get(body, "parameters");
        theirs = json_object_get(extra, "parameters");
        if (json_is_object(ours) && json_is_object(theirs) &&
            json_object_update_missing(ours, theirs) == -1)
                fatal("out of memory building JSON");
        if (json_object_update_missing(body, extra) == -1)
                fatal("out of memory building JSON");
        json_decref(extra);
        return 0;
}

static const Genq__V1__ImageRequest *image_of(const Genq__V1__Job *job,
                                              char *errstr,
                                              size_t errstr_size)
{
        const Genq__V1__ImageRequest *im = job->image;

        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_IMAGE || !im) {
                snprintf(errstr, errstr_size, "not an image job");
                return NULL;
        }
        if (!*im->prompt || im->count > 1 || im->n_input_image_urls) {
                snprintf(errstr, errstr_size,
                         "hf_image makes one image from a prompt only");
                return NULL;
        }
        return im;
}

static int image_build(const struct provider_cfg *p, const char *key,
                       const Genq__V1__Job *job,
                       const struct provider_input *in,
                       struct provider_req *req, char *errstr,
                       size_t errstr_size)
{
        const Genq__V1__ImageRequest *im;
        const char *model;
        json_t *body, *params, *prompt;

        memset(req, 0, sizeof(*req));
        im = image_of(job, errstr, errstr_size);
        model = im ? model_of(p, im->model, errstr, errstr_size) : NULL;
        if (!model)
                return -1;
        prompt = json_string(im->prompt);
        if (!prompt) {
                snprintf(errstr, errstr_size, "prompt is not valid UTF-8");
                return -1;
        }
        body = json_object();
        if (!body)
                fatal("out of memory building JSON");
        jset(body, "inputs", prompt);
        params = image_params(im);
        if (json_object_size(params))
                jset(body, "parameters", params);
        else
                json_decref(params);
        if (merge_extra(p, body, errstr, errstr_size) == -1 ||
            build_common(p, key, model, req, errstr, errstr_size) == -1) {
                json_decref(body);
                provider_req_clear(req);
                return -1;
        }
        set_json_body(req, body);
        json_decref(body);
        return 0;
}

/*
 * hf_whisper request.
 */

static uint32_t le32(const uint8_t *b)
{
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
               (uint32_t)b[3] << 24;
}

/** Seconds of audio in a RIFF/WAVE buffer (data bytes / byte rate), or -1
 *  if it is not one. */
static double wav_seconds(const uint8_t *b, size_t len)
{
        uint32_t byte_rate = 0, sz;
        size_t off = 12;

        if (len < 12 || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4))
                return -1;
        while (off + 8 <= len) {
                sz = le32(b + off + 4);
                if (!memcmp(b + off, "fmt ", 4) && sz >= 16 &&
                    off + 8 + 16 <= len)
                        byte_rate = le32(b + off + 8 + 8);
                if (!memcmp(b + off, "data", 4)) {
                        if (!byte_rate)
                                return -1;
                        if (sz > len - off - 8) /* streamed or cut */
                                sz = (uint32_t)(len - off - 8);
                        return (double)sz / byte_rate;
                }
                if (sz > len - off - 8)
                        return -1;
                off += 8 + (size_t)sz + (sz & 1);
        }
        return -1;
}

/** Audio types by their first bytes, for inputs served as octet-stream. */
static const struct {
        const char *magic;
        size_t off;
        const char *ctype;
} magics[] = {
        {"WAVE", 8, "audio/wav"}, {"fLaC", 0, "audio/flac"},
        {"OggS", 0, "audio/ogg"}, {"ID3", 0, "audio/mpeg"},
        {"ftyp", 4, "audio/mp4"}, {"\x1a\x45\xdf\xa3", 0, "audio/webm"},
};

/** The input's own type if it names one, else a sniffed one. */
static const char *audio_ctype(const struct provider_input *in)
{
        const char *ct = in->content_type;
        size_t n;

        if (ct && *ct && strncasecmp(ct, "application/octet-stream", 24) &&
            !strpbrk(ct, "\r\n"))
                return ct;
        for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
                n = strlen(magics[i].magic);
                if (in->len >= magics[i].off + n &&
                    !memcmp(in->data + magics[i].off, magics[i].magic, n))
                        return magics[i].ctype;
        }
        if (in->len >= 2 && (uint8_t)in->data[0] == 0xff &&
            ((uint8_t)in->data[1] & 0xe0) == 0xe0)
                return "audio/mpeg"; /* MPEG frame sync */
        return "application/octet-stream";
}

static char *b64_encode(const uint8_t *b, size_t len)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
        uint32_t v;

        for (size_t i = 0; i < len; i += 3) {
                v = (uint32_t)b[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)b[i + 1] << 8;
                if (i + 2 < len)
                        v |= b[i + 2];
                *o++ = tab[v >> 18 & 63];
                *o++ = tab[v >> 12 & 63];
                *o++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? tab[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

/** {"inputs": base64, "parameters": {"return_timestamps": true}}. */
static void long_audio_body(const struct provider_input *in,
                            struct provider_req *req)
{
        char *b64 = b64_encode((const uint8_t *)in->data, in->len);
        json_t *body = json_pack("{s:s, s:{s:b}}", "inputs", b64,
                                 "parameters", "return_timestamps", 1);

        if (!body)
                fatal("out of memory building JSON");
        free(b64);
        set_json_body(req, body);
        json_decref(body);
}

static void raw_audio_body(const struct provider_input *in,
                           struct provider_req *req)
{
        req->body = xmalloc(in->len + 1);
        memcpy(req->body, in->data, in->len);
        req->body[in->len] = '\0';
        req->body_len = in->len;
        provider_req_header(req, "Content-Type: %s", audio_ctype(in));
}

static int whisper_build(const struct provider_cfg *p, const char *key,
                         const Genq__V1__Job *job,
                         const struct provider_input *in,
                         struct provider_req *req, char *errstr,
                         size_t errstr_size)
{
        const char *model;

        memset(req, 0, sizeof(*req));
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_STT || !job->stt) {
                snprintf(errstr, errstr_size, "not an stt job");
                return -1;
        }
        if (!in || !in->data || !in->len) {
                snprintf(errstr, errstr_size, "no input audio");
                return -1;
        }
        model = model_of(p, job->stt->model, errstr, errstr_size);
        if (!model || build_common(p, key, model, req, errstr,
                                   errstr_size) == -1) {
                provider_req_clear(req);
                return -1;
        }
        if (wav_seconds((const uint8_t *)in->data, in->len) >
            RAW_MAX_SECONDS)
                long_audio_body(in, req);
        else
                raw_audio_body(in, req);
        return 0;
}

/*
 * Classifying errors: {"error": "..." | [...], "estimated_time"?}.
 */

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_MSG,     /**< error text contains one of val (any case) */
};

struct rule {
        long status;        /**< HTTP status, 0 = any */
        enum marker marker;
        const char *val;    /**< '|'-separated alternatives */
        enum outcome outcome;
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* Section 9.4 and 12.  403 (a token without the inference permission) and
 * 404 (a model this host does not serve) are not in the reference: they
 * follow the other providers' "bad credential" and "unknown model" rows. */
static const struct rule rules[] = {
        {503, M_MSG, "is currently loading", RETRY},
        {503, M_ANY, NULL, RETRY},
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {0, M_MSG, "exceeded your monthly included credits", QUOTA},
        {403, M_ANY, NULL, KEYDIS},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {400, M_ANY, NULL, FATAL},
        {0, M_END, NULL, 0},
};

static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

static int alt_any(const char *alts, const char *s)
{
        char needle[80];
        size_t n;

        if (!s)
                return 0;
        for (;;) {
                n = strcspn(alts, "|");
                if (n < sizeof(needle)) {
                        memcpy(needle, alts, n);
                        needle[n] = '\0';
                        if (strcasestr(s, needle))
                                return 1;
                }
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static const struct rule *rules_match(const struct rule *tab,
                                      const char *msg, long status)
{
        for (const struct rule *r = tab; r->marker != M_END; r++)
                if ((!r->status || r->status == status) &&
                    (r->marker == M_ANY || alt_any(r->val, msg)))
                        return r;
        return NULL;
}

/** "error" as text: the string, or the first string of a list. */
static const char *error_text(const json_t *root)
{
        const json_t *e = json_object_get(root, "error");

        if (json_is_array(e))
                e = json_array_get(e, 0);
        return json_string_value(e);
}

static int token_char(unsigned char c)
{
        return isalnum(c) || c == '-' || c == '_' || c >= 0x80;
}

/** Shorten "hf_xxxxxx..." tokens to "hf_…". */
static void redact_keys(char *s)
{
        static const char ell[] = "\xe2\x80\xa6";
        size_t i = 0, n;

        while (s[i]) {
                if ((i && token_char((unsigned char)s[i - 1])) ||
                    strncmp(s + i, "hf_", 3)) {
                        i++;
                        continue;
                }
                for (n = 3; token_char((unsigned char)s[i + n]); n++)
                        ;
                if (n > 8) {
                        memcpy(s + i + 3, ell, sizeof(ell) - 1);
                        memmove(s + i + 3 + sizeof(ell) - 1, s + i + n,
                                strlen(s + i + n) + 1);
                        n = 3 + sizeof(ell) - 1;
                }
                i += n;
        }
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
        const json_t *est;
        const struct rule *r;
        const char *msg;
        char buf[1024];
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        msg = error_text(root);
        r = rules_match(json_is_object(root) ? rules : nonjson_rules, msg,
                        resp->status);
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        if (json_is_object(root)) {
                snprintf(buf, sizeof(buf), "%ld: %s", resp->status,
                         msg ? msg : "(no message)");
                redact_keys(buf);
                copy_utf8(err->errstr, sizeof(err->errstr), buf);
        }
        /* the loading body's own estimate is the better hint */
        est = json_object_get(root, "estimated_time");
        if (json_is_number(est) && json_number_value(est) >= 0 &&
            json_number_value(est) < 86400)
                err->retry_after_ms =
                        (int64_t)(json_number_value(est) * 1000.0 + 0.5);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

static void parse_begin(const struct provider_resp *resp,
                        struct provider_err *err)
{
        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
}

static int is_2xx(const struct provider_resp *resp)
{
        return !resp->transport_err && resp->status >= 200 &&
               resp->status < 300;
}

static enum outcome classify_fail(const struct provider_resp *resp,
                                  struct provider_err *err)
{
        if (resp->transport_err || resp->status == 0 || is_2xx(resp))
                return provider_classify_generic(resp, err);
        return parse_error(resp, err);
}

static enum outcome image_parse(const struct provider_cfg *p,
                                const Genq__V1__Job *job,
                                const struct provider_resp *resp,
                                struct provider_result *res,
                                struct provider_err *err)
{
        const char *ct = resp->content_type;

        parse_begin(resp, err);
        if (!is_2xx(resp) || resp->truncated || !resp->body_len || !ct ||
            strncasecmp(ct, "image/", 6))
                return classify_fail(resp, err);
        res->data = xmalloc(resp->body_len);
        memcpy(res->data, resp->body, resp->body_len);
        res->data_len = resp->body_len;
        res->content_type = xstrndup(ct, strcspn(ct, "; "));
        res->units = 1;
        res->unit = "image";
        return OUTCOME_SUCCESS;
}

/** The latest chunk end timestamp (seconds), or -1. */
static double chunks_end(const json_t *root)
{
        const json_t *chunk, *ts;
        double end = -1;
        size_t i;

        json_array_foreach(json_object_get(root, "chunks"), i, chunk) {
                ts = json_array_get(json_object_get(chunk, "timestamp"), 1);
                if (json_is_number(ts) && json_number_value(ts) > end)
                        end = json_number_value(ts);
        }
        return end;
}

static enum outcome whisper_parse(const struct provider_cfg *p,
                                  const Genq__V1__Job *job,
                                  const struct provider_resp *resp,
                                  struct provider_result *res,
                                  struct provider_err *err)
{
        json_t *root = NULL;
        const char *text;

        parse_begin(resp, err);
        if (!is_2xx(resp))
                return classify_fail(resp, err);
        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        text = json_string_value(json_object_get(root, "text"));
        if (!text) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
        res->text = xstrdup(text);
        res->units = chunks_end(root);
        res->unit = "second";
        json_decref(root);
        return OUTCOME_SUCCESS;
}

const struct provider_ops provider_hf_image_ops = {
        .name = "hf_image",
        .kind = GENQ__V1__KIND__KIND_IMAGE,
        .flags = 0,
        .build = image_build,
        .parse = image_parse,
};

const struct provider_ops provider_hf_whisper_ops = {
        .name = "hf_whisper",
        .kind = GENQ__V1__KIND__KIND_STT,
        .flags = PROVIDER_F_NEEDS_INPUT,
        .build = whisper_build,
        .parse = whisper_parse,
};
