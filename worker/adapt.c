/*
 * adapt: the helpers the provider adapters share.
 *
 * Each adapter (provider_<family>.c) keeps what is its own: the request
 * schema, the rule tables of its reference section, the shape of its
 * answers.  What they all do the same way lives here, once: joining
 * base_url and a path, the API-key header, configured JSON objects
 * (extra_body) merged as defaults, walking a rule table, the shared
 * status-only rows for error pages that are not JSON, the OpenAI-style
 * error envelope, errstr texts with keys redacted and cut at a UTF-8
 * boundary, and small codecs (base64, media types, WAV length).
 */
#include "adapt.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

/*
 * Building requests.
 */

/** Put \p n bytes of \p s at \p at in \p buf, as much as fits (always
 *  NUL-terminated, like snprintf).  @returns at + n, the length the
 *  whole would have. */
static size_t put(char *buf, size_t size, size_t at, const char *s,
                  size_t n)
{
        size_t k;

        if (at < size - 1) {
                k = n < size - 1 - at ? n : size - 1 - at;
                memcpy(buf + at, s, k);
                buf[at + k] = '\0';
        }
        return at + n;
}

int adapt_url(struct provider_req *req, const struct provider_cfg *p,
              const char *what, char *errstr, size_t errstr_size, ...)
{
        size_t n, len;
        const char *seg;
        va_list ap;

        if (!p->base_url || !*p->base_url) {
                snprintf(errstr, errstr_size, "provider %s has no base_url",
                         p->name);
                return -1;
        }
        n = strlen(p->base_url);
        while (n > 0 && p->base_url[n - 1] == '/')
                n--;
        len = put(req->url, sizeof(req->url), 0, p->base_url, n);
        va_start(ap, errstr_size);
        while ((seg = va_arg(ap, const char *)))
                len = put(req->url, sizeof(req->url), len, seg, strlen(seg));
        va_end(ap);
        if (len >= sizeof(req->url)) {
                snprintf(errstr, errstr_size, "provider %s: %s too long",
                         p->name, what);
                return -1;
        }
        return 0;
}

int adapt_pct_encode(char *buf, size_t size, size_t *pos, const char *s,
                     int keep_slash)
{
        static const char hex[] = "0123456789ABCDEF";
        unsigned char c;

        for (; *s; s++) {
                c = (unsigned char)*s;
                if (*pos + 4 > size)
                        return -1;
                if (isalnum(c) || strchr("-._~", c) ||
                    (keep_slash && c == '/')) {
                        buf[(*pos)++] = (char)c;
                        continue;
                }
                buf[(*pos)++] = '%';
                buf[(*pos)++] = hex[c >> 4];
                buf[(*pos)++] = hex[c & 15];
        }
        buf[*pos] = '\0';
        return 0;
}

int adapt_auth(struct provider_req *req, const char *auth, const char *key,
               char *errstr, size_t errstr_size)
{
        if (key && strpbrk(key, "\r\n")) {
                snprintf(errstr, errstr_size, "API key contains a newline");
                return -1;
        }
        if (key && *key)
                provider_req_header(req, "%s%s", auth, key);
        return 0;
}

int adapt_json_headers(struct provider_req *req, const char *auth,
                       const char *key, int has_body, char *errstr,
                       size_t errstr_size)
{
        if (adapt_auth(req, auth, key, errstr, errstr_size) == -1)
                return -1;
        if (has_body)
                provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: application/json");
        return 0;
}

void adapt_req_json(struct provider_req *req, const json_t *body,
                    size_t flags)
{
        req->body = adapt_jdump(body, flags);
        req->body_len = strlen(req->body);
}

const char *adapt_model(const struct provider_cfg *p, const char *hint,
                        char *errstr, size_t errstr_size)
{
        if (hint && *hint)
                return hint;
        if (p->model && *p->model)
                return p->model;
        snprintf(errstr, errstr_size,
                 "no model: the job names none and provider %s has no "
                 "default",
                 p->name);
        return NULL;
}

const Genq__V1__ChatRequest *adapt_chat_job(const Genq__V1__Job *job,
                                            char *errstr,
                                            size_t errstr_size)
{
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_CHAT || !job->chat) {
                snprintf(errstr, errstr_size, "not a chat job");
                return NULL;
        }
        return job->chat;
}

const Genq__V1__ImageRequest *adapt_image_job(const Genq__V1__Job *job,
                                              char *errstr,
                                              size_t errstr_size)
{
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_IMAGE || !job->image) {
                snprintf(errstr, errstr_size, "not an image job");
                return NULL;
        }
        if (!*job->image->prompt) {
                snprintf(errstr, errstr_size, "image job has no prompt");
                return NULL;
        }
        return job->image;
}

size_t adapt_segment_len(const char *s)
{
        size_t n = 0;

        if (!isalnum((unsigned char)s[0]))
                return 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '.' || s[n] == '_' ||
               s[n] == '-')
                n++;
        return n;
}

int adapt_id_ok(const char *id, size_t max_len, const char *chars)
{
        if (!id || !*id || strlen(id) > max_len)
                return 0;
        for (; *id; id++)
                if (!isalnum((unsigned char)*id) && !strchr(chars, *id))
                        return 0;
        return 1;
}

/*
 * JSON.
 */

void adapt_jset(json_t *obj, const char *k, json_t *v)
{
        if (!v || json_object_set_new(obj, k, v) == -1)
                fatal("out of memory building JSON");
}

int adapt_jset_str(json_t *obj, const char *k, const char *s)
{
        json_t *v = json_string(s);

        if (!v)
                return -1;
        adapt_jset(obj, k, v);
        return 0;
}

const char *adapt_jstr(const json_t *obj, const char *k)
{
        return json_string_value(json_object_get(obj, k));
}

int64_t adapt_jint(const json_t *obj, const char *k)
{
        const json_t *v = json_object_get(obj, k);

        return json_is_number(v) ? (int64_t)json_number_value(v) : -1;
}

char *adapt_jdump(const json_t *v, size_t flags)
{
        char *s = json_dumps(v, flags);

        if (!s)
                fatal("out of memory serialising JSON");
        return s;
}

int adapt_load_obj(const struct provider_cfg *p, const char *what,
                   const char *text, json_t **out, char *errstr,
                   size_t errstr_size)
{
        json_error_t jerr;

        *out = NULL;
        if (!text || !*text)
                return 0;
        *out = json_loads(text, 0, &jerr);
        if (json_is_object(*out))
                return 0;
        snprintf(errstr, errstr_size,
                 "provider %s: %s is not a JSON object: %s", p->name, what,
                 *out ? "wrong type" : jerr.text);
        json_decref(*out);
        *out = NULL;
        return -1;
}

/** Like json_object_update_missing(), recursing into nested objects. */
static void merge_missing(json_t *dst, json_t *src)
{
        const char *k;
        json_t *v, *have;

        json_object_foreach(src, k, v) {
                have = json_object_get(dst, k);
                if (!have)
                        adapt_jset(dst, k, json_incref(v));
                else if (json_is_object(have) && json_is_object(v))
                        merge_missing(have, v);
        }
}

int adapt_merge_obj(const struct provider_cfg *p, const char *what,
                    const char *text, json_t *body, enum adapt_merge how,
                    char *errstr, size_t errstr_size)
{
        json_t *obj;

        if (adapt_load_obj(p, what, text, &obj, errstr, errstr_size) == -1)
                return -1;
        if (!obj)
                return 0;
        if (how == ADAPT_MERGE_DEEP)
                merge_missing(body, obj);
        else if (json_object_update_missing(body, obj) == -1)
                fatal("out of memory building JSON");
        json_decref(obj);
        return 0;
}

char *adapt_join_text(const json_t *arr,
                      const char *(*text_of)(const json_t *item))
{
        size_t i, n, len = 0;
        const json_t *item;
        const char *t;
        char *out;

        json_array_foreach(arr, i, item) {
                t = text_of(item);
                len += t ? strlen(t) : 0;
        }
        out = xmalloc(len + 1);
        len = 0;
        json_array_foreach(arr, i, item) {
                t = text_of(item);
                if (!t)
                        continue;
                n = strlen(t);
                memcpy(out + len, t, n);
                len += n;
        }
        out[len] = '\0';
        return out;
}

/*
 * Reading responses.
 */

void adapt_err_init(const struct provider_resp *resp,
                    struct provider_err *err)
{
        err->outcome = OUTCOME_SUCCESS;
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        err->errstr[0] = '\0';
}

json_t *adapt_body_json(const struct provider_resp *resp)
{
        return json_loadb(resp->body ? resp->body : "", resp->body_len, 0,
                          NULL);
}

json_t *adapt_ok_json(const struct provider_resp *resp)
{
        json_t *root = NULL;

        if (!resp->truncated && resp->body)
                root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return NULL;
        }
        return root;
}

enum outcome adapt_parse(const Genq__V1__Job *job,
                         const struct provider_resp *resp,
                         struct provider_result *res, struct provider_err *err,
                         adapt_ok_fn *ok, adapt_error_fn *error)
{
        adapt_err_init(resp, err);
        if (resp->transport_err || resp->status == 0)
                return provider_classify_generic(resp, err);
        if (resp->status >= 200 && resp->status < 300)
                return ok(job, resp, res, err, error);
        return error(resp, err);
}

static int is_audio_type(const char *mtype)
{
        return !strncmp(mtype, "audio/", 6) ||
               !strcmp(mtype, "application/octet-stream");
}

enum outcome adapt_speech_ok(const Genq__V1__Job *job,
                             const struct provider_resp *resp,
                             struct provider_result *res,
                             struct provider_err *err, adapt_error_fn *error)
{
        char mtype[128];

        adapt_media_type(resp->content_type, mtype, sizeof(mtype));
        if (!is_audio_type(mtype)) {
                if (strstr(mtype, "json"))
                        return error(resp, err);
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "%ld: unexpected content type \"%s\"",
                                  resp->status, mtype);
        }
        if (resp->truncated)
                return provider_classify_generic(resp, err);
        if (!resp->body || !resp->body_len)
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "%ld: empty audio body", resp->status);
        res->data = xmalloc(resp->body_len);
        memcpy(res->data, resp->body, resp->body_len);
        res->data_len = resp->body_len;
        res->content_type = xstrdup(mtype);
        res->units =
                adapt_utf8_chars(job && job->tts ? job->tts->text : NULL);
        res->unit = "character";
        return OUTCOME_SUCCESS;
}

/*
 * Rule tables.
 */

/* See adapt_nonjson_rule(). */
static const struct adapt_rule nonjson_rules[] = {
        {401, ADAPT_M_ANY, NULL, OUTCOME_KEY_DISABLED},
        {402, ADAPT_M_ANY, NULL, OUTCOME_QUOTA_EXHAUSTED},
        {403, ADAPT_M_ANY, NULL, OUTCOME_FALLBACK_NEXT},
        {404, ADAPT_M_ANY, NULL, OUTCOME_FALLBACK_NEXT},
        {429, ADAPT_M_ANY, NULL, OUTCOME_RETRY_LATER},
        {0, ADAPT_M_END, NULL, 0},
};

const struct adapt_rule *adapt_rules_match(const struct adapt_rule *table,
                                           long status,
                                           adapt_match_fn *match,
                                           const void *ctx)
{
        for (const struct adapt_rule *r = table; r->marker != ADAPT_M_END;
             r++)
                if ((!r->status || r->status == status) &&
                    (r->marker == ADAPT_M_ANY || (match && match(r, ctx))))
                        return r;
        return NULL;
}

int adapt_match_msg(const struct adapt_rule *r, const void *msg)
{
        return adapt_alt_has(r->val, msg);
}

const struct adapt_rule *adapt_nonjson_rule(long status)
{
        return adapt_rules_match(nonjson_rules, status, NULL, NULL);
}

enum outcome adapt_classify(const struct provider_resp *resp,
                            const struct adapt_rule *r,
                            struct provider_err *err)
{
        provider_classify_generic(resp, err);
        if (r)
                err->outcome = r->outcome;
        return err->outcome;
}

/** Does one of the '|'-separated \p alts pass \p test against \p s? */
static int alt_any(const char *alts, const char *s,
                   int (*test)(const char *alt, size_t n, const char *s))
{
        size_t n;

        if (!s)
                return 0;
        for (;;) {
                n = strcspn(alts, "|");
                if (test(alts, n, s))
                        return 1;
                if (!alts[n])
                        return 0;
                alts += n + 1;
        }
}

static int t_equal(const char *alt, size_t n, const char *s)
{
        return strlen(s) == n && !strncmp(alt, s, n);
}

static int t_prefix(const char *alt, size_t n, const char *s)
{
        return !strncmp(alt, s, n);
}

static int t_contains(const char *alt, size_t n, const char *s)
{
        char needle[64];

        if (n >= sizeof(needle))
                return 0;
        memcpy(needle, alt, n);
        needle[n] = '\0';
        return strcasestr(s, needle) != NULL;
}

int adapt_alt_eq(const char *alts, const char *s)
{
        return alt_any(alts, s, t_equal);
}

int adapt_alt_has(const char *alts, const char *s)
{
        return alt_any(alts, s, t_contains);
}

/*
 * The OpenAI-style error envelope.
 */

/** Read code, type, message and OpenRouter metadata from \p obj. */
static void oaierr_fields(struct adapt_oaierr *eb, const json_t *obj,
                          unsigned flags)
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
        eb->type = adapt_jstr(obj, "type");
        eb->message = adapt_jstr(obj, "message");
        if (!eb->message)
                eb->message = adapt_jstr(obj, "detail");
        if (!eb->message && (flags & ADAPT_OAIERR_MSG))
                eb->message = adapt_jstr(obj, "msg");
        eb->limit_source =
                adapt_jstr(json_object_get(obj, "metadata"), "limit_source");
}

void adapt_oaierr_read(struct adapt_oaierr *eb, const json_t *root,
                       unsigned flags)
{
        const json_t *e = json_object_get(root, "error");

        memset(eb, 0, sizeof(*eb));
        eb->code = "";
        if (json_is_object(e)) {
                eb->wrapped = 1;
                oaierr_fields(eb, e, flags);
        } else if (json_is_string(e)) {
                eb->message = json_string_value(e);
        } else if (json_is_object(root)) {
                oaierr_fields(eb, root, flags);
        }
}

int adapt_oaierr_match(const struct adapt_rule *r, const void *ctx)
{
        const struct adapt_oaierr *eb = ctx;

        switch (r->marker) {
        case ADAPT_OAI_CODE:
                return adapt_alt_eq(r->val, eb->code);
        case ADAPT_OAI_CODE_PREFIX:
                return alt_any(r->val, eb->code, t_prefix);
        case ADAPT_OAI_TYPE:
                return adapt_alt_eq(r->val, eb->type);
        case ADAPT_OAI_MSG:
                return adapt_alt_has(r->val, eb->message);
        }
        return 0;
}

const struct adapt_rule adapt_siliconflow_rules[] = {
        {400, ADAPT_OAI_CODE, "20012", OUTCOME_FALLBACK_NEXT},
        {400, ADAPT_M_ANY, NULL, OUTCOME_FATAL_JOB},
        {401, ADAPT_M_ANY, NULL, OUTCOME_KEY_DISABLED},
        {403, ADAPT_OAI_CODE, "30011|30001", OUTCOME_QUOTA_EXHAUSTED},
        {403, ADAPT_OAI_MSG, "balance is insufficient",
         OUTCOME_QUOTA_EXHAUSTED},
        {403, ADAPT_M_ANY, NULL, OUTCOME_KEY_DISABLED},
        {429, ADAPT_M_ANY, NULL, OUTCOME_RETRY_LATER},
        {503, ADAPT_M_ANY, NULL, OUTCOME_RETRY_LATER},
        {504, ADAPT_M_ANY, NULL, OUTCOME_RETRY_LATER},
        {0, ADAPT_M_END, NULL, 0},
};

void adapt_oaierr_errstr(const struct adapt_oaierr *eb, long status,
                         const struct adapt_redact *keys,
                         struct provider_err *err)
{
        const char *type = eb->type ? eb->type : "";
        const char *sep = *type && *eb->code ? "/" : "";
        const char *sp = *type || *eb->code ? " " : "";

        adapt_errstr(err, keys, "%ld%s%s%s%s: %s", status, sp, type, sep,
                     eb->code, eb->message ? eb->message : "(no message)");
}

/*
 * errstr texts.
 */

static int token_char(const struct adapt_redact *keys, unsigned char c)
{
        return isalnum(c) || (c && strchr(keys->chars, c)) ||
               (keys->high_bytes && c >= 0x80);
}

/** Shorten the tokens that follow \p prefix in \p s. */
static void redact_prefix(char *s, const char *prefix,
                          const struct adapt_redact *keys)
{
        static const char ell[] = "\xe2\x80\xa6"; /* U+2026 */
        size_t plen = strlen(prefix), n;
        char *p = s;

        while ((p = strstr(p, prefix))) {
                if (keys->token_start && p > s &&
                    token_char(keys, (unsigned char)p[-1])) {
                        p++;
                        continue;
                }
                p += plen;
                for (n = 0; token_char(keys, (unsigned char)p[n]); n++)
                        ;
                if (n < keys->min_len)
                        continue;
                memcpy(p, ell, sizeof(ell) - 1);
                memmove(p + sizeof(ell) - 1, p + n, strlen(p + n) + 1);
        }
}

void adapt_redact(char *s, const struct adapt_redact *keys)
{
        for (const char *const *pre = keys->prefixes; *pre; pre++)
                redact_prefix(s, *pre, keys);
}

/** Copy \p src into \p dst, cut at a UTF-8 character boundary. */
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

static void verrstr(struct provider_err *err, const struct adapt_redact *keys,
                    const char *fmt, va_list ap)
{
        char buf[1024];

        vsnprintf(buf, sizeof(buf), fmt, ap);
        if (keys)
                adapt_redact(buf, keys);
        copy_utf8(err->errstr, sizeof(err->errstr), buf);
}

void adapt_errstr(struct provider_err *err, const struct adapt_redact *keys,
                  const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        verrstr(err, keys, fmt, ap);
        va_end(ap);
}

enum outcome adapt_fail(struct provider_err *err, enum outcome o,
                        const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        verrstr(err, NULL, fmt, ap);
        va_end(ap);
        err->outcome = o;
        return o;
}

/*
 * Small codecs.
 */

static int b64_value(int c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

uint8_t *adapt_b64_decode(const char *s, size_t len, size_t *outlen)
{
        uint8_t *out = xmalloc(len / 4 * 3 + 3);
        uint32_t acc = 0;
        size_t n = 0;
        int bits = 0, v;

        for (size_t i = 0; i < len; i++) {
                if (s[i] == '=' || isspace((unsigned char)s[i]))
                        continue;
                v = b64_value((unsigned char)s[i]);
                if (v < 0) {
                        free(out);
                        return NULL;
                }
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (uint8_t)(acc >> bits);
                }
        }
        *outlen = n;
        return out;
}

const char *adapt_media_type(const char *ct, char *buf, size_t bufsz)
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

double adapt_utf8_chars(const char *s)
{
        double n = 0;

        for (; s && *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

/** Little-endian 32-bit read. */
static uint32_t le32(const unsigned char *b)
{
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
               (uint32_t)b[3] << 24;
}

double adapt_wav_seconds(const void *data, size_t len)
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
                        if (csize > len - off - 8) /* streamed or cut */
                                csize = (uint32_t)(len - off - 8);
                        return (double)csize / byte_rate;
                }
                off += 8 + (size_t)csize + (csize & 1);
        }
        return -1;
}
