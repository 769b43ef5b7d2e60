/*
 * provider_openai_audio: OpenAI-compatible speech endpoints.
 *
 *   "openai_transcriptions" (stt, PROVIDER_F_NEEDS_INPUT): POST
 *       <base>/audio/transcriptions, multipart/form-data (reference 9.1;
 *       SiliconFlow 7.4 uses the same path).  Parts, in order: file (the
 *       fetched input, its file name and content type), model (job hint,
 *       else the configured model), language (if the job gives one),
 *       response_format ("verbose_json" for whisper-1, so the duration
 *       comes back; "json" otherwise, because the gpt-4o transcribe
 *       models accept nothing else), then the scalar members of
 *       extra_body as further fields (never overriding the above).
 *   "openai_speech" (tts): POST <base>/audio/speech, JSON {model, input,
 *       voice, response_format, speed?} plus extra_body as defaults
 *       (reference 10.1; SiliconFlow 7.3 takes gain, sample_rate there).
 *
 * UNITS
 *
 * stt: seconds of audio, from the response's "duration" (verbose_json),
 * else from usage {"type":"duration","seconds":N} when a model sends it,
 * else -1.  The reference also wants the duration read from a WAV input
 * when the provider reports none, but parse() is not given the input (an
 * interface gap): provider_openai_audio_wav_seconds() does the reading
 * for a caller that has the input.
 * tts: characters of the input text, counted as UTF-8 code points.
 *
 * BINARY OR JSON
 *
 * Speech success is a binary body: the Content-Type decides.  audio/ types or
 * application/octet-stream are the result; JSON is an error even with a
 * 2xx status (classified by its envelope, else retry_later); anything
 * else is retry_later.
 *
 * CLASSIFYING ERRORS
 *
 * As in provider_openai.c the body decides the table: a top-level
 * integer "code" without an "error" object is SiliconFlow
 * ({"code":20012,"message":...,"data":null}); anything else is the OpenAI
 * envelope.  Rows are {status, marker, outcome}, first match wins; no
 * row: provider_classify_generic().  A non-JSON error page has its own
 * status-only table.
 */
#include "provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xmem.h"

#define STT_PATH "/audio/transcriptions"
#define TTS_PATH "/audio/speech"
/** Float speeds print as 1.25, not 1.25000000000000. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))


/*
 * Building requests.
 */

static int build_url(const struct provider_cfg *p, const char *path,
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
        r = snprintf(req->url, sizeof(req->url), "%.*s%s", (int)n,
                     p->base_url, path);
        if (r < 0 || (size_t)r >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: base_url too long",
                         p->name);
                return -1;
        }
        return 0;
}

/** Authorization (when there is a key) and \p ctype headers. */
static int build_headers(const char *key, const char *ctype,
                         struct provider_req *req, char *errstr,
                         size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (key && *key)
                provider_req_header(req, "Authorization: Bearer %s", key);
        if (ctype)
                provider_req_header(req, "Content-Type: %s", ctype);
        provider_req_header(req, "Accept: %s",
                            ctype ? "audio/*, application/json"
                                  : "application/json");
        return 0;
}

/** The job's hint, else the configured default; NULL if neither. */
static const char *pick(const char *hint, const char *dflt)
{
        if (hint && *hint)
                return hint;
        return dflt && *dflt ? dflt : NULL;
}

/** Set \p k to \p v, taking \p v; fatal on allocation failure. */
static void jset(json_t *obj, const char *k, json_t *v)
{
        if (!v || json_object_set_new(obj, k, v) == -1)
                fatal("out of memory building JSON");
}

/** The configured extra_body as an object, NULL if none; -1 if broken. */
static int load_extra(const struct provider_cfg *p, json_t **out,
                      char *errstr, size_t errstr_size)
{
        json_error_t jerr;

        *out = NULL;
        if (!p->extra_body || !*p->extra_body)
                return 0;
        *out = json_loads(p->extra_body, 0, &jerr);
        if (json_is_object(*out))
                return 0;
        snprintf(errstr, errstr_size,
                 "provider %s: extra_body is not a JSON object: %s", p->name,
                 *out ? "wrong type" : jerr.text);
        json_decref(*out);
        *out = NULL;
        return -1;
}

/* ---- transcriptions --------------------------------------------------- */

/** File name extensions for inputs whose URL has none (OpenAI picks the
 *  decoder by the extension). */
static const struct {
        const char *ctype;
        const char *ext;
} audio_exts[] = {
        {"audio/wav", ".wav"},   {"audio/x-wav", ".wav"},
        {"audio/wave", ".wav"},  {"audio/mpeg", ".mp3"},
        {"audio/mp3", ".mp3"},   {"audio/mp4", ".m4a"},
        {"audio/x-m4a", ".m4a"}, {"audio/flac", ".flac"},
        {"audio/ogg", ".ogg"},   {"audio/webm", ".webm"},
        {"video/mp4", ".mp4"},   {"video/webm", ".webm"},
};

/** Media type without parameters, lower-cased, in \p buf ("" if none). */
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

static const char *ext_for(const char *mtype)
{
        for (size_t i = 0; i < sizeof(audio_exts) / sizeof(audio_exts[0]);
             i++)
                if (!strcmp(audio_exts[i].ctype, mtype))
                        return audio_exts[i].ext;
        return "";
}

/** The input's file name: query and fragment cut, an extension added
 *  from the content type when it has none. */
static void file_name(const struct provider_input *in, const char *mtype,
                      char *buf, size_t bufsz)
{
        const char *fn = in->filename && *in->filename ? in->filename : "";
        size_t n = strcspn(fn, "?#");

        if (!n)
                snprintf(buf, bufsz, "audio%s", ext_for(mtype));
        else if (!memchr(fn, '.', n))
                snprintf(buf, bufsz, "%.*s%s", (int)n, fn, ext_for(mtype));
        else
                snprintf(buf, bufsz, "%.*s", (int)n, fn);
}

static void add_field(struct provider_req *req, const char *name,
                      const char *value)
{
        provider_req_part(req, name, value, strlen(value), NULL, NULL);
}

static int has_part(const struct provider_req *req, const char *name)
{
        for (size_t i = 0; i < req->n_parts; i++)
                if (!strcmp(req->parts[i].name, name))
                        return 1;
        return 0;
}

/** extra_body members as form fields: strings as they are, other values
 *  as JSON text; never a field the adapter already set. */
static int add_extra_fields(const struct provider_cfg *p,
                            struct provider_req *req, char *errstr,
                            size_t errstr_size)
{
        const char *k;
        json_t *extra, *v;
        char *s;

        if (load_extra(p, &extra, errstr, errstr_size) == -1)
                return -1;
        json_object_foreach(extra, k, v) {
                if (has_part(req, k) || json_is_null(v))
                        continue;
                if (json_is_string(v)) {
                        add_field(req, k, json_string_value(v));
                        continue;
                }
                s = json_dumps(v, DUMP_FLAGS | JSON_ENCODE_ANY);
                if (!s)
                        fatal("out of memory serialising JSON");
                add_field(req, k, s);
                free(s);
        }
        json_decref(extra);
        return 0;
}

static int stt_check(const struct provider_cfg *p, const Genq__V1__Job *job,
                     const struct provider_input *in, const char **model,
                     char *errstr, size_t errstr_size)
{
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_STT || !job->stt) {
                snprintf(errstr, errstr_size, "not an stt job");
                return -1;
        }
        if (!in || !in->data || !in->len) {
                snprintf(errstr, errstr_size, "no input audio to upload");
                return -1;
        }
        *model = pick(job->stt->model, p->model);
        if (!*model) {
                snprintf(errstr, errstr_size,
                         "no model: the job names none and provider %s "
                         "has no default",
                         p->name);
                return -1;
        }
        return 0;
}

static int stt_build(const struct provider_cfg *p, const char *key,
                     const Genq__V1__Job *job,
                     const struct provider_input *in,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
{
        char mtype[128], fname[256];
        const char *model;

        memset(req, 0, sizeof(*req));
        if (stt_check(p, job, in, &model, errstr, errstr_size) == -1)
                return -1;
        if (build_url(p, STT_PATH, req, errstr, errstr_size) == -1 ||
            build_headers(key, NULL, req, errstr, errstr_size) == -1)
                goto err_clear_req;
        media_type(in->content_type, mtype, sizeof(mtype));
        file_name(in, mtype, fname, sizeof(fname));
        provider_req_part(req, "file", in->data, in->len, fname,
                          *mtype ? mtype : "application/octet-stream");
        add_field(req, "model", model);
        if (*job->stt->language)
                add_field(req, "language", job->stt->language);
        add_field(req, "response_format",
                  strcmp(model, "whisper-1") ? "json" : "verbose_json");
        if (add_extra_fields(p, req, errstr, errstr_size) == -1)
                goto err_clear_req;
        req->method = "POST";
        return 0;

err_clear_req:
        provider_req_clear(req);
        return -1;
}

/** Little-endian reads from a byte buffer. */
static uint32_t le32(const unsigned char *b)
{
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
               (uint32_t)b[3] << 24;
}

/**
 * @brief Seconds of audio in a RIFF/WAVE file: data chunk bytes / the fmt
 *        chunk's byte rate (a data size past the end of \p data, as
 *        streamed files write it, counts the bytes present).
 * @returns seconds, or -1 if \p data is not a WAV file this can read.
 * @remark The reference wants stt units from the input when the
 *         provider reports no duration, but parse() never sees the input:
 *         callers that hold it (the worker's fetch) use this.
 */
double provider_openai_audio_wav_seconds(const void *data, size_t len)
{
        const unsigned char *b = data;
        uint32_t byte_rate = 0, csize;
        size_t off = 12;

        if (!b || len < 12 || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4))
                return -1;
        while (off + 8 <= len) {
                csize = le32(b + off + 4);
                if (!memcmp(b + off, "fmt ", 4) && csize >= 16 &&
                    off + 8 + 16 <= len)
                        byte_rate = le32(b + off + 8 + 8);
                if (!memcmp(b + off, "data", 4)) {
                        if (!byte_rate)
                                return -1;
                        if (csize > len - off - 8)
                                csize = (uint32_t)(len - off - 8);
                        return (double)csize / byte_rate;
                }
                off += 8 + (size_t)csize + (csize & 1);
        }
        return -1;
}

/* ---- speech ----------------------------------------------------------- */

static int tts_check(const struct provider_cfg *p, const Genq__V1__Job *job,
                     const char **model, const char **voice, char *errstr,
                     size_t errstr_size)
{
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_TTS || !job->tts) {
                snprintf(errstr, errstr_size, "not a tts job");
                return -1;
        }
        if (!*job->tts->text) {
                snprintf(errstr, errstr_size, "no text to speak");
                return -1;
        }
        *model = pick(job->tts->model, p->model);
        *voice = pick(job->tts->voice, p->voice);
        if (!*model || !*voice) {
                snprintf(errstr, errstr_size,
                         "no %s: the job names none and provider %s has no "
                         "default",
                         *model ? "voice" : "model", p->name);
                return -1;
        }
        return 0;
}

/** Set \p k to string \p s. @returns -1 if \p s is not valid UTF-8. */
static int jset_str(json_t *obj, const char *k, const char *s)
{
        json_t *v = json_string(s);

        if (!v)
                return -1;
        jset(obj, k, v);
        return 0;
}

static json_t *tts_body(const struct provider_cfg *p,
                        const Genq__V1__TtsRequest *tts, const char *model,
                        const char *voice, char *errstr, size_t errstr_size)
{
        json_t *body = json_object(), *extra;

        if (!body)
                fatal("out of memory building JSON");
        if (jset_str(body, "model", model) == -1 ||
            jset_str(body, "input", tts->text) == -1 ||
            jset_str(body, "voice", voice) == -1 ||
            jset_str(body, "response_format",
                     *tts->format ? tts->format : "mp3") == -1) {
                snprintf(errstr, errstr_size,
                         "text, voice, model or format is not valid UTF-8");
                goto err_free_body;
        }
        if (tts->speed_opt_case == GENQ__V1__TTS_REQUEST__SPEED_OPT_SPEED)
                jset(body, "speed", json_real(tts->speed));
        if (load_extra(p, &extra, errstr, errstr_size) == -1)
                goto err_free_body;
        if (extra && json_object_update_missing(body, extra) == -1)
                fatal("out of memory building JSON");
        json_decref(extra);
        return body;

err_free_body:
        json_decref(body);
        return NULL;
}

static int tts_build(const struct provider_cfg *p, const char *key,
                     const Genq__V1__Job *job,
                     const struct provider_input *in,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
{
        const char *model, *voice;
        json_t *body;

        memset(req, 0, sizeof(*req));
        if (tts_check(p, job, &model, &voice, errstr, errstr_size) == -1)
                return -1;
        body = tts_body(p, job->tts, model, voice, errstr, errstr_size);
        if (!body)
                return -1;
        if (build_url(p, TTS_PATH, req, errstr, errstr_size) == -1 ||
            build_headers(key, "application/json", req, errstr,
                          errstr_size) == -1)
                goto err_free_body;
        req->method = "POST";
        req->body = json_dumps(body, DUMP_FLAGS);
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
 * Classifying error bodies.
 */

/** The fields of an error body the tables look at (borrowed). */
struct errbody {
        int wrapped;       /**< fields came from an "error" object */
        int code_is_int;   /**< code was a JSON integer */
        const char *code;  /**< code as text, "" if none */
        char codebuf[24];  /**< an integer code's text */
        const char *type;  /**< error.type, or NULL */
        const char *message;
};

enum marker {
        M_END = 0, /**< table terminator */
        M_ANY,     /**< status alone decides */
        M_CODE,    /**< code equals one of val */
        M_TYPE,    /**< type equals one of val */
        M_MSG,     /**< message contains one of val (any case) */
};

struct rule {
        long status;          /**< HTTP status, 0 = any */
        enum marker marker;
        const char *val;      /**< '|'-separated alternatives */
        enum outcome outcome;
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* OpenAI envelope (section 1.1 and 12; 9.1: bad file -> fatal_job). */
static const struct rule openai_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {403, M_CODE, "unsupported_country_region_territory", FALLBACK},
        {403, M_MSG, "country, region, or territory", FALLBACK},
        {403, M_ANY, NULL, KEYDIS},
        {404, M_CODE, "model_not_found", FALLBACK},
        {404, M_MSG, "model", FALLBACK},
        {429, M_TYPE, "insufficient_quota", QUOTA},
        {429, M_CODE,
         "insufficient_quota|credit_balance_exhausted|"
         "organization_spend_limit_exceeded|project_spend_limit_exceeded|"
         "organization_usage_limit_exceeded",
         QUOTA},
        {429, M_CODE, "rate_limit_exceeded", RETRY},
        {429, M_TYPE, "requests|tokens", RETRY},
        {402, M_ANY, NULL, QUOTA},
        {500, M_ANY, NULL, RETRY},
        {503, M_ANY, NULL, RETRY},
        {0, M_MSG, "balance|credit|quota", QUOTA},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* SiliconFlow: {"code":int,"message":...,"data":null} (1.2, 12). */
static const struct rule siliconflow_rules[] = {
        {400, M_CODE, "20012", FALLBACK},
        {400, M_ANY, NULL, FATAL},
        {401, M_ANY, NULL, KEYDIS},
        {403, M_CODE, "30011|30001", QUOTA},
        {403, M_MSG, "balance is insufficient", QUOTA},
        {403, M_ANY, NULL, KEYDIS},
        {429, M_ANY, NULL, RETRY},
        {503, M_ANY, NULL, RETRY},
        {504, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/* No JSON body (proxy, CDN, WAF): the status only; never drop a key on
 * a 403 page, and a 404 page means the URL is wrong for this provider. */
static const struct rule nonjson_rules[] = {
        {401, M_ANY, NULL, KEYDIS},
        {402, M_ANY, NULL, QUOTA},
        {403, M_ANY, NULL, FALLBACK},
        {404, M_ANY, NULL, FALLBACK},
        {429, M_ANY, NULL, RETRY},
        {0, M_END, NULL, 0},
};

/** Does one of the '|'-separated \p alts equal (or, \p sub, occur in)
 *  \p s? */
static int alt_any(const char *alts, const char *s, int sub)
{
        char needle[64];
        size_t n;

        if (!s)
                return 0;
        for (;;) {
                n = strcspn(alts, "|");
                if (n < sizeof(needle)) {
                        memcpy(needle, alts, n);
                        needle[n] = '\0';
                        if (sub ? strcasestr(s, needle) != NULL
                                : !strcmp(s, needle))
                                return 1;
                }
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static int marker_match(const struct rule *r, const struct errbody *eb)
{
        switch (r->marker) {
        case M_END:
                return 0;
        case M_ANY:
                return 1;
        case M_CODE:
                return alt_any(r->val, eb->code, 0);
        case M_TYPE:
                return alt_any(r->val, eb->type, 0);
        case M_MSG:
                return alt_any(r->val, eb->message, 1);
        }
        return 0;
}

static const struct rule *rules_match(const struct rule *rules,
                                      const struct errbody *eb, long status)
{
        for (const struct rule *r = rules; r->marker != M_END; r++)
                if ((!r->status || r->status == status) &&
                    marker_match(r, eb))
                        return r;
        return NULL;
}

static const char *jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

static void errbody_fields(struct errbody *eb, const json_t *obj)
{
        const json_t *code = json_object_get(obj, "code");

        if (json_is_integer(code)) {
                eb->code_is_int = 1;
                snprintf(eb->codebuf, sizeof(eb->codebuf),
                         "%" JSON_INTEGER_FORMAT, json_integer_value(code));
                eb->code = eb->codebuf;
        } else if (json_is_string(code)) {
                eb->code = json_string_value(code);
        }
        eb->type = jstr(obj, "type");
        eb->message = jstr(obj, "message");
        if (!eb->message)
                eb->message = jstr(obj, "detail");
}

static void errbody_read(struct errbody *eb, const json_t *root)
{
        const json_t *e = json_object_get(root, "error");

        memset(eb, 0, sizeof(*eb));
        eb->code = "";
        if (json_is_object(e)) {
                eb->wrapped = 1;
                errbody_fields(eb, e);
        } else if (json_is_string(e)) {
                eb->message = json_string_value(e);
        } else if (json_is_object(root)) {
                errbody_fields(eb, root);
        }
}

/** SiliconFlow's shape: a bare integer code, no "error" wrapper. */
static const struct rule *family_rules(const struct errbody *eb)
{
        return !eb->wrapped && eb->code_is_int ? siliconflow_rules
                                               : openai_rules;
}

static int token_char(unsigned char c)
{
        return isalnum(c) || c == '-' || c == '_' || c == '*' || c >= 0x80;
}

/** Shorten every "sk-xxxxxx..." token in \p s to "sk-…" (U+2026). */
static void redact_keys(char *s)
{
        static const char ell[] = "\xe2\x80\xa6";
        char *p = s;
        size_t n;

        while ((p = strstr(p, "sk-"))) {
                if (p > s && token_char((unsigned char)p[-1])) {
                        p += 3;
                        continue;
                }
                for (n = 3; token_char((unsigned char)p[n]); n++)
                        ;
                if (n > 8) {
                        memcpy(p + 3, ell, 3);
                        memmove(p + 6, p + n, strlen(p + n) + 1);
                }
                p += 3;
        }
}

/** Copy, cut at a UTF-8 character boundary. */
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

/** "<status> <type>/<code>: <message>", key-shaped tokens redacted. */
static void errbody_errstr(const struct errbody *eb, long status,
                           struct provider_err *err)
{
        const char *type = eb->type ? eb->type : "";
        const char *sep = *type && *eb->code ? "/" : "";
        const char *sp = *type || *eb->code ? " " : "";
        char buf[1024];

        snprintf(buf, sizeof(buf), "%ld%s%s%s%s: %s", status, sp, type, sep,
                 eb->code, eb->message ? eb->message : "(no message)");
        redact_keys(buf);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

/** Classify an error answer (any status) from its status and body. */
static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct rule *r;
        struct errbody eb;
        json_t *root;

        root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
        errbody_read(&eb, root);
        if (json_is_object(root)) {
                r = rules_match(family_rules(&eb), &eb, resp->status);
                if (!r)
                        r = rules_match(openai_rules, &eb, resp->status);
        } else {
                r = rules_match(nonjson_rules, &eb, resp->status);
        }
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        else if (resp->status >= 200 && resp->status < 300)
                err->outcome = OUTCOME_RETRY_LATER;
        if (json_is_object(root))
                errbody_errstr(&eb, resp->status, err);
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(eb.message);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

static void begin(const struct provider_resp *resp, struct provider_err *err)
{
        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
}

static int is_2xx(const struct provider_resp *resp)
{
        return resp->status >= 200 && resp->status < 300;
}

static enum outcome retry_2xx(const struct provider_resp *resp,
                              struct provider_err *err, const char *why)
{
        snprintf(err->errstr, sizeof(err->errstr), "%ld: %s", resp->status,
                 why);
        err->outcome = OUTCOME_RETRY_LATER;
        return err->outcome;
}

static int64_t usage_int(const json_t *usage, const char *k)
{
        const json_t *v = json_object_get(usage, k);

        return json_is_number(v) ? (int64_t)json_number_value(v) : -1;
}

/** Seconds of audio the response reports, or -1. */
static double stt_seconds(const json_t *root)
{
        const json_t *d = json_object_get(root, "duration");
        const json_t *usage = json_object_get(root, "usage");
        const char *type = jstr(usage, "type");

        if (json_is_number(d) && json_number_value(d) >= 0)
                return json_number_value(d);
        d = json_object_get(usage, "seconds");
        if (type && !strcmp(type, "duration") && json_is_number(d) &&
            json_number_value(d) >= 0)
                return json_number_value(d);
        return -1;
}

static void stt_fill(const json_t *root, struct provider_result *res)
{
        const json_t *usage = json_object_get(root, "usage");

        res->text = xstrdup(jstr(root, "text"));
        res->units = stt_seconds(root);
        res->unit = "second";
        if (!json_is_object(usage))
                return;
        res->usage_json = json_dumps(usage, JSON_COMPACT);
        if (!res->usage_json)
                fatal("out of memory serialising JSON");
        res->input_tokens = usage_int(usage, "input_tokens");
        res->output_tokens = usage_int(usage, "output_tokens");
}

static enum outcome stt_ok(const struct provider_resp *resp,
                           struct provider_result *res,
                           struct provider_err *err)
{
        json_t *root = NULL;
        const json_t *e;
        int is_err;

        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return provider_classify_generic(resp, err);
        }
        if (!json_is_string(json_object_get(root, "text"))) {
                e = json_object_get(root, "error");
                is_err = (e && !json_is_null(e)) ||
                         json_is_integer(json_object_get(root, "code"));
                json_decref(root);
                if (is_err)
                        return parse_error(resp, err);
                return retry_2xx(resp, err, "no text in the response");
        }
        stt_fill(root, res);
        json_decref(root);
        return OUTCOME_SUCCESS;
}

static enum outcome stt_parse(const struct provider_cfg *p,
                              const Genq__V1__Job *job,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err)
{
        begin(resp, err);
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (is_2xx(resp))
                return stt_ok(resp, res, err);
        return parse_error(resp, err);
}

/** UTF-8 code points of \p s (continuation bytes do not count). */
static double utf8_chars(const char *s)
{
        double n = 0;

        for (; s && *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

static int is_audio_type(const char *mtype)
{
        return !strncmp(mtype, "audio/", 6) ||
               !strcmp(mtype, "application/octet-stream");
}

static enum outcome tts_ok(const Genq__V1__Job *job,
                           const struct provider_resp *resp,
                           struct provider_result *res,
                           struct provider_err *err)
{
        char mtype[128], why[200];

        media_type(resp->content_type, mtype, sizeof(mtype));
        if (!is_audio_type(mtype)) {
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

static enum outcome tts_parse(const struct provider_cfg *p,
                              const Genq__V1__Job *job,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err)
{
        begin(resp, err);
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (is_2xx(resp))
                return tts_ok(job, resp, res, err);
        return parse_error(resp, err);
}

const struct provider_ops provider_openai_stt_ops = {
        .name = "openai_transcriptions",
        .kind = GENQ__V1__KIND__KIND_STT,
        .flags = PROVIDER_F_NEEDS_INPUT,
        .build = stt_build,
        .parse = stt_parse,
};

const struct provider_ops provider_openai_tts_ops = {
        .name = "openai_speech",
        .kind = GENQ__V1__KIND__KIND_TTS,
        .flags = 0,
        .build = tts_build,
        .parse = tts_parse,
};
