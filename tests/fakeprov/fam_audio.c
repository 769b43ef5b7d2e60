/**
 * @file fam_audio.c
 * @brief Family "audio": OpenAI-compatible speech endpoints, reference
 *        9.1 and 10.1 (OpenAI) and 7.3 / 7.4 (SiliconFlow).
 *
 *   POST <prefix>/v1/audio/transcriptions   multipart/form-data
 *   POST <prefix>/v1/audio/speech           JSON in, binary audio out
 *
 * Default providers: "openai-audio" (OpenAI envelope
 * {"error":{"message","type","param","code"}}) and "sf-audio"
 * (SiliconFlow envelope {"code":<int>,"message","data":null}).  The
 * envelope follows the provider's name: a name that starts with "sf" or
 * contains "siliconflow" speaks SiliconFlow, any other OpenAI.
 * Auth: Authorization: Bearer <key>.
 *
 * TRANSCRIPTIONS (checks in this order; every failure is a 400 in the
 * provider's envelope unless noted)
 *
 *   key (401) -> Content-Type multipart/form-data with a boundary ->
 *   the body parses as multipart -> a "file" part with a filename ->
 *   a non-empty "model" part -> response_format (if given) in json, text,
 *   srt, verbose_json, vtt -> OpenAI only: models "gpt-4o*" take json or
 *   text only -> the file name's extension in flac, m4a, mp3, mp4, mpeg,
 *   mpga, oga, ogg, wav, webm ("Invalid file format...") -> a .wav file
 *   must have a readable RIFF/WAVE header.
 *
 *   duration  = data chunk bytes / fmt byte rate for a WAV file (the
 *               tone-<N>s.wav media gives exactly N); any other file:
 *               its size / 16000 (as if 128 kbit/s MP3).
 *   text      = "fake transcript of <duration %.1f> seconds", plus
 *               " (<language>)" when a language part was sent.
 *   SiliconFlow: {"text": text} whatever the response_format.
 *   OpenAI json: {"text": text, "usage": U}; U = {"type":"duration",
 *               "seconds": ceil(duration)} for whisper-1, else
 *               {"type":"tokens","input_tokens": ceil(duration) * 10,
 *               "output_tokens": words(text), "total_tokens": sum}.
 *   OpenAI verbose_json: {"task":"transcribe","language": <language or
 *               "english">,"duration": duration,"text": text,
 *               "segments":[one segment 0..duration],"usage": U}.
 *   text: text/plain "text\n"; srt and vtt: one cue 0..duration.
 *
 * SPEECH
 *
 *   key (401) -> JSON object -> "model" non-empty string -> "input"
 *   non-empty string of at most 4096 characters -> "voice" non-empty
 *   string (OpenAI: one of alloy ash ballad coral echo fable onyx nova
 *   sage shimmer verse) -> response_format (default mp3) in mp3 opus aac
 *   flac wav pcm (SiliconFlow: mp3 opus wav pcm) -> speed (if given) a
 *   number in 0.25..4.0.
 *
 *   body      = 32 + 64 * chars(input) bytes (chars = UTF-8 code points):
 *               the format's magic ("ID3", "OggS", 0xFF 0xF1, "fLaC",
 *               "RIFF", none for pcm), then byte i = (i * 31 + 7) & 0xff.
 *   type      = audio/mpeg, audio/opus, audio/aac, audio/flac, audio/wav,
 *               audio/pcm; SiliconFlow: audio/mpeg for mp3, else
 *               application/octet-stream.
 *
 * NAMED ERRORS (script {"error": name}; OpenAI body / SiliconFlow body)
 *
 *   rate_limit          429 requests/rate_limit_exceeded + retry-after: 1
 *                       / 429 code 50603 "...rate limiting... RPM..."
 *   insufficient_quota  429 insufficient_quota / 403 code 30011 (verbatim)
 *   invalid_key         401 invalid_api_key / 401 code 40001 "Invalid token"
 *   server_error        500 server_error / 500 code 50000
 *   overloaded          503 server_is_overloaded / 503 code 50505
 *   model_not_found     404 model_not_found / 400 code 20012 (verbatim)
 *   invalid_file        400 "Invalid file format..." / 400 code 20015
 *   file_too_large      413 "Maximum content size limit..." / 413 20015
 *   forbidden           403 unsupported_country_region_territory
 *                       / 403 code 30003 (real-name verification)
 *
 * (SiliconFlow codes other than 20012 and 30011 are the fake's choice.)
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "fpprov.h"
#include "xmem.h"

/* Reals as 12.096, not 12.096000000000000085. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))
#define MAX_PARTS 16
#define MAX_INPUT_CHARS 4096
#define NONWAV_BYTES_PER_SEC 16000.0

/* ---- envelopes -------------------------------------------------------- */

static int is_sf(const struct fp_call *call)
{
        const char *n = fpprov_name(call->prov);

        return !strncmp(n, "sf", 2) || strstr(n, "siliconflow") != NULL;
}

static void ids(const struct fp_call *call, struct fp_resp *resp)
{
        char id[48];

        snprintf(id, sizeof(id), "req_fake%024llx",
                 (unsigned long long)call->seq);
        fpresp_header(resp, is_sf(call) ? "x-siliconcloud-trace-id"
                                        : "x-request-id",
                      id);
}

/* {"error":{"message","type","param","code"}}; NULL -> null. */
static void oai_error(const struct fp_call *call, struct fp_resp *resp,
                      unsigned status, const char *msg, const char *type,
                      const char *param, const char *code)
{
        json_t *j = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error",
                              "message", msg, "type", type, "param", param,
                              "code", code);

        if (!j)
                fatal("fam_audio: json_pack error");
        fpresp_json(resp, status, j, JSON_INDENT(2));
        ids(call, resp);
}

/* {"code":<int>,"message":...,"data":null} */
static void sf_error(const struct fp_call *call, struct fp_resp *resp,
                     unsigned status, int code, const char *msg)
{
        json_t *j = json_pack("{s:i, s:s, s:n}", "code", code, "message",
                              msg, "data");

        if (!j)
                fatal("fam_audio: json_pack error");
        fpresp_json(resp, status, j, DUMP_FLAGS);
        ids(call, resp);
}

static int bad_request(const struct fp_call *call, struct fp_resp *resp,
                       const char *param, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* A 400 in the provider's envelope. @returns -1. */
static int bad_request(const struct fp_call *call, struct fp_resp *resp,
                       const char *param, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (is_sf(call))
                sf_error(call, resp, 400, 20015, msg);
        else
                oai_error(call, resp, 400, msg, "invalid_request_error",
                          param, NULL);
        return -1;
}

/* A missing part, as OpenAI's request validator words it. */
static int missing(const struct fp_call *call, struct fp_resp *resp,
                   const char *field)
{
        return bad_request(call, resp, NULL,
                           "1 validation error for Request\nbody -> %s\n  "
                           "field required (type=value_error.missing)",
                           field);
}

/* ---- named errors ----------------------------------------------------- */

/* One named error in both envelopes. */
struct errspec {
        unsigned oai_status;
        const char *oai_msg, *oai_type, *oai_code;
        const char *oai_retry_after;
        unsigned sf_status;
        int sf_code;
        const char *sf_msg;
};

static const struct errspec E_RATE_LIMIT = {
        429,
        "Rate limit reached for whisper-1 in organization org-xxxxxxxx on "
        "requests per min (RPM): Limit 3, Used 3, Requested 1. Please try "
        "again in 20s. Visit https://platform.openai.com/account/rate-limits "
        "to learn more.",
        "requests", "rate_limit_exceeded", "1",
        429, 50603,
        "Request was rejected due to rate limiting. Details: RPM limit "
        "reached.",
};

static const struct errspec E_QUOTA = {
        429,
        "You exceeded your current quota, please check your plan and billing "
        "details. For more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota", "insufficient_quota", NULL,
        403, 30011,
        "The selected model requires paid balance. Your paid balance is "
        "insufficient. Please top up and try again.",
};

static const struct errspec E_SERVER = {
        500,
        "The server had an error while processing your request. Sorry about "
        "that!",
        "server_error", "server_error", NULL,
        500, 50000, "Internal server error",
};

static const struct errspec E_OVERLOADED = {
        503, "The engine is currently overloaded, please try again later.",
        "service_unavailable_error", "server_is_overloaded", NULL,
        503, 50505, "Model service overloaded. Please try again later.",
};

static const struct errspec E_INVALID_FILE = {
        400,
        "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', "
        "'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']",
        "invalid_request_error", NULL, NULL,
        400, 20015, "Invalid audio file format.",
};

static const struct errspec E_TOO_LARGE = {
        413,
        "Maximum content size limit (26214400) exceeded (26228340 bytes "
        "read)",
        "invalid_request_error", NULL, NULL,
        413, 20015, "File too large.",
};

static const struct errspec E_FORBIDDEN = {
        403, "Country, region, or territory not supported",
        "request_forbidden", "unsupported_country_region_territory", NULL,
        403, 30003,
        "Sorry, you must complete real-name verification to use this model.",
};

static void emit(const struct fp_call *call, struct fp_resp *resp,
                 const struct errspec *e)
{
        if (is_sf(call)) {
                sf_error(call, resp, e->sf_status, e->sf_code, e->sf_msg);
                return;
        }
        oai_error(call, resp, e->oai_status, e->oai_msg, e->oai_type, NULL,
                  e->oai_code);
        if (e->oai_retry_after)
                fpresp_header(resp, "retry-after", e->oai_retry_after);
}

static void err_rate_limit(const struct fp_call *c, struct fp_resp *r)
{
        emit(c, r, &E_RATE_LIMIT);
}

static void err_quota(const struct fp_call *c, struct fp_resp *r)
{
        emit(c, r, &E_QUOTA);
}

static void err_server(const struct fp_call *c, struct fp_resp *r)
{
        emit(c, r, &E_SERVER);
}

static void err_overloaded(const struct fp_call *c, struct fp_resp *r)
{
        emit(c, r, &E_OVERLOADED);
}

static void err_invalid_file(const struct fp_call *c, struct fp_resp *r)
{
        emit(c, r, &E_INVALID_FILE);
}

static void err_too_large(const struct fp_call *c, struct fp_resp *r)
{
        emit(c, r, &E_TOO_LARGE);
}

static void err_forbidden(const struct fp_call *c, struct fp_resp *r)
{
        emit(c, r, &E_FORBIDDEN);
}

/* "sk-****wxyz": never the whole key. */
static void mask_key(const char *key, char *out, size_t outsz)
{
        size_t len = strlen(key);

        if (len < 12) {
                snprintf(out, outsz, "****");
                return;
        }
        snprintf(out, outsz, "%.3s****%s", key, key + len - 4);
        for (char *p = out; *p; p++)
                if (!isprint((unsigned char)*p))
                        *p = '?';
}

static void err_invalid_key(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[256], masked[16];

        if (is_sf(call)) {
                sf_error(call, resp, 401, 40001, "Invalid token");
                return;
        }
        mask_key(call->key ? call->key : "", masked, sizeof(masked));
        snprintf(msg, sizeof(msg),
                 "Incorrect API key provided: %s. You can find your API key "
                 "at https://platform.openai.com/account/api-keys.",
                 masked);
        oai_error(call, resp, 401, msg, "invalid_request_error", NULL,
                  "invalid_api_key");
}

static void err_model_not_found(const struct fp_call *call,
                                struct fp_resp *resp)
{
        const char *m = json_string_value(json_object_get(call->json,
                                                          "model"));
        char msg[300];

        if (is_sf(call)) {
                sf_error(call, resp, 400, 20012,
                         "Model does not exist. Please check it carefully.");
                return;
        }
        snprintf(msg, sizeof(msg),
                 "The model `%.200s` does not exist or you do not have "
                 "access to it.",
                 m && *m ? m : "whisper-1");
        oai_error(call, resp, 404, msg, "invalid_request_error", NULL,
                  "model_not_found");
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        char msg[300];

        if (call->prov && is_sf(call)) {
                sf_error(call, resp, 404, 20404, "Not Found");
                return;
        }
        snprintf(msg, sizeof(msg), "Invalid URL (%s %.200s)", call->method,
                 call->path);
        oai_error(call, resp, 404, msg, "invalid_request_error", NULL, NULL);
}

/* ---- multipart -------------------------------------------------------- */

/* One part of a multipart body; data points into the request body. */
struct mpart {
        char name[64];
        char filename[256];   /**< "" for a plain field */
        char ctype[128];
        const char *data;
        size_t len;
};

/* The boundary parameter of a multipart/form-data Content-Type. */
static int boundary_of(const char *ct, char *out, size_t outsz)
{
        const char *b;
        size_t n;

        if (!ct || strncasecmp(ct, "multipart/form-data", 19))
                return -1;
        b = strcasestr(ct, "boundary=");
        if (!b)
                return -1;
        b += 9;
        if (*b == '"') {
                b++;
                n = strcspn(b, "\"");
        } else {
                n = strcspn(b, "; \t");
        }
        if (!n || n + 3 > outsz)
                return -1;
        snprintf(out, outsz, "--%.*s", (int)n, b);
        return 0;
}

/* Value of parameter \p key (name, filename) in a header line. */
static void header_param(const char *line, size_t len, const char *key,
                         char *out, size_t outsz)
{
        const char *p = line, *end = line + len, *v, *q;
        char pat[32];
        size_t pl;

        out[0] = '\0';
        pl = (size_t)snprintf(pat, sizeof(pat), "%s=\"", key);
        while ((p = memmem(p, (size_t)(end - p), pat, pl))) {
                if (p == line || p[-1] == ' ' || p[-1] == ';') {
                        v = p + pl;
                        q = memchr(v, '"', (size_t)(end - v));
                        if (q)
                                snprintf(out, outsz, "%.*s", (int)(q - v), v);
                        return;
                }
                p++;
        }
}

/* Parse the part headers in [h, hend) into \p pt. */
static void part_headers(const char *h, const char *hend, struct mpart *pt)
{
        const char *eol;
        size_t n;

        while (h < hend) {
                eol = memmem(h, (size_t)(hend - h), "\r\n", 2);
                n = eol ? (size_t)(eol - h) : (size_t)(hend - h);
                if (n > 20 && !strncasecmp(h, "Content-Disposition:", 20)) {
                        header_param(h, n, "name", pt->name,
                                     sizeof(pt->name));
                        header_param(h, n, "filename", pt->filename,
                                     sizeof(pt->filename));
                } else if (n > 13 && !strncasecmp(h, "Content-Type:", 13)) {
                        const char *v = h + 13;

                        while (*v == ' ')
                                v++;
                        snprintf(pt->ctype, sizeof(pt->ctype), "%.*s",
                                 (int)(n - (size_t)(v - h)), v);
                }
                h += n + 2;
        }
}

/* Split \p body into parts. @returns the count, or -1 if malformed. */
static int mp_parse(const char *body, size_t len, const char *delim,
                    struct mpart *parts, int max)
{
        size_t dl = strlen(delim);
        const char *end = body + len, *p, *hend, *next;
        int n = 0;

        p = memmem(body, len, delim, dl);
        while (p && n < max) {
                p += dl;
                if (end - p >= 2 && !memcmp(p, "--", 2))
                        return n;
                if (end - p < 2 || memcmp(p, "\r\n", 2))
                        return -1;
                p += 2;
                hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
                if (!hend)
                        return -1;
                memset(&parts[n], 0, sizeof(parts[n]));
                part_headers(p, hend + 2, &parts[n]);
                p = hend + 4;
                next = memmem(p, (size_t)(end - p), delim, dl);
                if (!next || next - p < 2 || memcmp(next - 2, "\r\n", 2))
                        return -1;
                parts[n].data = p;
                parts[n].len = (size_t)(next - 2 - p);
                n++;
                p = next;
        }
        return -1;
}

static const struct mpart *mp_find(const struct mpart *parts, int n,
                                   const char *name)
{
        for (int i = 0; i < n; i++)
                if (!strcmp(parts[i].name, name))
                        return &parts[i];
        return NULL;
}

/* A plain field's value as a string (cut to \p outsz). */
static const char *mp_value(const struct mpart *parts, int n,
                            const char *name, char *out, size_t outsz)
{
        const struct mpart *pt = mp_find(parts, n, name);

        if (!pt)
                return NULL;
        snprintf(out, outsz, "%.*s", (int)pt->len, pt->data);
        return out;
}

/* ---- transcriptions --------------------------------------------------- */

static const char *const audio_exts[] = {"flac", "m4a",  "mp3", "mp4",
                                         "mpeg", "mpga", "oga", "ogg",
                                         "wav",  "webm"};
static const char *const stt_formats[] = {"json", "text", "srt",
                                          "verbose_json", "vtt"};

static int in_list(const char *s, const char *const *list, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!strcasecmp(s, list[i]))
                        return 1;
        return 0;
}

#define IN_LIST(s, l) in_list((s), (l), sizeof(l) / sizeof((l)[0]))

static uint32_t le32(const unsigned char *b)
{
        return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
               (uint32_t)b[3] << 24;
}

/* Seconds of a RIFF/WAVE file, or -1 if it is not one. */
static double wav_seconds(const unsigned char *b, size_t len)
{
        uint32_t rate = 0, cs;
        size_t off = 12;

        if (len < 12 || memcmp(b, "RIFF", 4) || memcmp(b + 8, "WAVE", 4))
                return -1;
        while (off + 8 <= len) {
                cs = le32(b + off + 4);
                if (!memcmp(b + off, "fmt ", 4) && cs >= 16 &&
                    off + 24 <= len)
                        rate = le32(b + off + 16);
                if (!memcmp(b + off, "data", 4) && rate) {
                        if (cs > len - off - 8)
                                cs = (uint32_t)(len - off - 8);
                        return (double)cs / rate;
                }
                off += 8 + (size_t)cs + (cs & 1);
        }
        return -1;
}

/* One transcription being answered. */
struct stt {
        char model[128];
        char format[32];
        char language[16];
        double duration;
        char text[96];
};

static int check_file(const struct fp_call *call, struct fp_resp *resp,
                      const struct mpart *file, struct stt *s)
{
        const char *ext = strrchr(file->filename, '.');

        if (!ext || !IN_LIST(ext + 1, audio_exts)) {
                err_invalid_file(call, resp);
                return -1;
        }
        s->duration = wav_seconds((const unsigned char *)file->data,
                                  file->len);
        if (s->duration < 0 && !strcasecmp(ext, ".wav"))
                return bad_request(call, resp, "file",
                                   "The audio file could not be decoded or "
                                   "its format is not supported.");
        if (s->duration < 0)
                s->duration = (double)file->len / NONWAV_BYTES_PER_SEC;
        return 0;
}

static int check_fields(const struct fp_call *call, struct fp_resp *resp,
                        const struct mpart *parts, int n, struct stt *s)
{
        const struct mpart *file = mp_find(parts, n, "file");

        if (!file || !file->filename[0])
                return missing(call, resp, "file");
        if (!mp_value(parts, n, "model", s->model, sizeof(s->model)) ||
            !s->model[0])
                return missing(call, resp, "model");
        if (!mp_value(parts, n, "response_format", s->format,
                      sizeof(s->format)))
                snprintf(s->format, sizeof(s->format), "json");
        if (!IN_LIST(s->format, stt_formats))
                return bad_request(call, resp, "response_format",
                                   "Invalid value for 'response_format': "
                                   "'%s'.",
                                   s->format);
        if (!is_sf(call) && !strncmp(s->model, "gpt-4o", 6) &&
            strcmp(s->format, "json") && strcmp(s->format, "text"))
                return bad_request(call, resp, "response_format",
                                   "response_format '%s' is not compatible "
                                   "with model '%s'. Use 'json' or 'text' "
                                   "instead.",
                                   s->format, s->model);
        if (!mp_value(parts, n, "language", s->language,
                      sizeof(s->language)))
                s->language[0] = '\0';
        return check_file(call, resp, file, s);
}

static int parse_stt(const struct fp_call *call, struct fp_resp *resp,
                     struct stt *s)
{
        struct mpart parts[MAX_PARTS];
        char delim[200];
        int n;

        if (boundary_of(fakeprov_header(call, "Content-Type"), delim,
                        sizeof(delim)) == -1)
                return bad_request(call, resp, NULL,
                                   "Invalid Content-Type header (%.60s), "
                                   "expected multipart/form-data.",
                                   fakeprov_header(call, "Content-Type")
                                           ? fakeprov_header(call,
                                                             "Content-Type")
                                           : "none");
        n = mp_parse(call->body, call->body_len, delim, parts, MAX_PARTS);
        if (n < 0)
                return bad_request(call, resp, NULL,
                                   "Could not parse multipart form");
        return check_fields(call, resp, parts, n, s);
}

static size_t words(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += !isspace((unsigned char)*s) &&
                     (s[1] == '\0' || isspace((unsigned char)s[1]));
        return n;
}

static json_t *stt_usage(const struct stt *s)
{
        json_int_t secs = (json_int_t)ceil(s->duration);
        json_int_t out = (json_int_t)words(s->text);

        if (!strcmp(s->model, "whisper-1"))
                return json_pack("{s:s, s:I}", "type", "duration", "seconds",
                                 secs);
        return json_pack("{s:s, s:I, s:I, s:I}", "type", "tokens",
                         "input_tokens", secs * 10, "output_tokens", out,
                         "total_tokens", secs * 10 + out);
}

static void stt_verbose(const struct stt *s, struct fp_resp *resp)
{
        json_t *seg = json_pack(
                "{s:i, s:i, s:f, s:f, s:s, s:[], s:f, s:f, s:f, s:f}", "id",
                0, "seek", 0, "start", 0.0, "end", s->duration, "text",
                s->text, "tokens", "temperature", 0.0, "avg_logprob", -0.2,
                "compression_ratio", 1.0, "no_speech_prob", 0.01);

        fpresp_json(resp, 200,
                    json_pack("{s:s, s:s, s:f, s:s, s:[o], s:o}", "task",
                              "transcribe", "language",
                              s->language[0] ? s->language : "english",
                              "duration", s->duration, "text", s->text,
                              "segments", seg, "usage", stt_usage(s)),
                    DUMP_FLAGS);
}

/* srt / vtt: one cue from 0 to the end. */
static void stt_cues(const struct stt *s, struct fp_resp *resp)
{
        char buf[256];
        int ms = (int)(s->duration * 1000 + 0.5);
        int vtt = !strcmp(s->format, "vtt");

        snprintf(buf, sizeof(buf),
                 "%s1\n00:00:00%c000 --> %02d:%02d:%02d%c%03d\n%s\n\n",
                 vtt ? "WEBVTT\n\n" : "", vtt ? '.' : ',', ms / 3600000,
                 ms / 60000 % 60, ms / 1000 % 60, vtt ? '.' : ',', ms % 1000,
                 s->text);
        fpresp_set(resp, 200, buf, strlen(buf));
        fpresp_content_type(resp, "text/plain; charset=utf-8");
}

static void stt_answer(const struct fp_call *call, const struct stt *s,
                       struct fp_resp *resp)
{
        char buf[128];

        if (is_sf(call)) {
                fpresp_json(resp, 200, json_pack("{s:s}", "text", s->text),
                            DUMP_FLAGS);
        } else if (!strcmp(s->format, "verbose_json")) {
                stt_verbose(s, resp);
        } else if (!strcmp(s->format, "json")) {
                fpresp_json(resp, 200,
                            json_pack("{s:s, s:o}", "text", s->text, "usage",
                                      stt_usage(s)),
                            DUMP_FLAGS);
        } else if (!strcmp(s->format, "text")) {
                snprintf(buf, sizeof(buf), "%s\n", s->text);
                fpresp_set(resp, 200, buf, strlen(buf));
                fpresp_content_type(resp, "text/plain; charset=utf-8");
        } else {
                stt_cues(s, resp);
        }
        ids(call, resp);
}

static void transcriptions(const struct fp_call *call, struct fp_resp *resp)
{
        struct stt s;

        memset(&s, 0, sizeof(s));
        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (parse_stt(call, resp, &s) == -1)
                return;
        if (s.language[0])
                snprintf(s.text, sizeof(s.text),
                         "fake transcript of %.1f seconds (%.8s)", s.duration,
                         s.language);
        else
                snprintf(s.text, sizeof(s.text),
                         "fake transcript of %.1f seconds", s.duration);
        stt_answer(call, &s, resp);
}

/* ---- speech ----------------------------------------------------------- */

static const char *const oai_voices[] = {"alloy", "ash",   "ballad", "coral",
                                         "echo",  "fable", "onyx",   "nova",
                                         "sage",  "shimmer", "verse"};

/* Output formats: name, content type, magic, SiliconFlow accepts. */
static const struct format {
        const char *name;
        const char *ctype;
        const char *magic;
        size_t magic_len;
        int sf;
} formats[] = {
        {"mp3", "audio/mpeg", "ID3", 3, 1},
        {"opus", "audio/opus", "OggS", 4, 1},
        {"aac", "audio/aac", "\xff\xf1", 2, 0},
        {"flac", "audio/flac", "fLaC", 4, 0},
        {"wav", "audio/wav", "RIFF", 4, 1},
        {"pcm", "audio/pcm", "", 0, 1},
};

static const struct format *format_find(const char *name, int sf)
{
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
                if (!strcmp(formats[i].name, name) && (!sf || formats[i].sf))
                        return &formats[i];
        return NULL;
}

static size_t utf8_chars(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

static int check_str(const struct fp_call *call, struct fp_resp *resp,
                     const char *name, const char **out)
{
        const json_t *v = json_object_get(call->json, name);

        if (!v)
                return bad_request(call, resp, name,
                                   "Missing required parameter: '%s'.", name);
        if (!json_is_string(v) || !json_string_length(v))
                return bad_request(call, resp, name,
                                   "Invalid value for '%s': expected a "
                                   "non-empty string.",
                                   name);
        *out = json_string_value(v);
        return 0;
}

static int check_voice_speed(const struct fp_call *call, struct fp_resp *resp,
                             const char *voice)
{
        const json_t *sp = json_object_get(call->json, "speed");

        if (!is_sf(call) && !IN_LIST(voice, oai_voices))
                return bad_request(call, resp, "voice",
                                   "Invalid value: '%.60s'. Supported values "
                                   "are: 'alloy', 'ash', 'ballad', 'coral', "
                                   "'echo', 'fable', 'onyx', 'nova', 'sage', "
                                   "'shimmer', and 'verse'.",
                                   voice);
        if (sp && (!json_is_number(sp) || json_number_value(sp) < 0.25 ||
                   json_number_value(sp) > 4.0))
                return bad_request(call, resp, "speed",
                                   "Invalid 'speed': expected a number "
                                   "between 0.25 and 4.0.");
        return 0;
}

static const struct format *check_speech(const struct fp_call *call,
                                         struct fp_resp *resp,
                                         const char **input)
{
        const char *model, *voice, *fmt = "mp3";
        const json_t *rf;
        const struct format *f;

        if (!json_is_object(call->json)) {
                bad_request(call, resp, NULL,
                            "We could not parse the JSON body of your "
                            "request.");
                return NULL;
        }
        if (check_str(call, resp, "model", &model) == -1 ||
            check_str(call, resp, "input", input) == -1)
                return NULL;
        if (utf8_chars(*input) > MAX_INPUT_CHARS) {
                bad_request(call, resp, "input",
                            "String should have at most 4096 characters");
                return NULL;
        }
        if (check_str(call, resp, "voice", &voice) == -1 ||
            check_voice_speed(call, resp, voice) == -1)
                return NULL;
        rf = json_object_get(call->json, "response_format");
        if (json_is_string(rf))
                fmt = json_string_value(rf);
        f = rf && !json_is_string(rf) ? NULL : format_find(fmt, is_sf(call));
        if (!f)
                bad_request(call, resp, "response_format",
                            "Invalid value for 'response_format'.");
        return f;
}

static void speech(const struct fp_call *call, struct fp_resp *resp)
{
        const struct format *f;
        const char *input;
        size_t n, i;
        char *b;

        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        f = check_speech(call, resp, &input);
        if (!f)
                return;
        n = 32 + 64 * utf8_chars(input);
        b = xmalloc(n + 1);
        for (i = 0; i < n; i++)
                b[i] = (char)((i * 31 + 7) & 0xff);
        memcpy(b, f->magic, f->magic_len);
        b[n] = '\0';
        fpresp_set_owned(resp, 200, b, n);
        fpresp_content_type(resp, is_sf(call) && strcmp(f->name, "mp3")
                                          ? "application/octet-stream"
                                          : f->ctype);
        ids(call, resp);
}

/* ---- family ----------------------------------------------------------- */

/* Authorization: Bearer <key> */
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
        {"POST", "/v1/audio/transcriptions", transcriptions},
        {"POST", "/v1/audio/speech", speech},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"rate_limit", err_rate_limit},
        {"insufficient_quota", err_quota},
        {"invalid_key", err_invalid_key},
        {"server_error", err_server},
        {"overloaded", err_overloaded},
        {"model_not_found", err_model_not_found},
        {"invalid_file", err_invalid_file},
        {"file_too_large", err_too_large},
        {"forbidden", err_forbidden},
        {NULL, NULL},
};

static const char *const defaults[] = {"openai-audio", "sf-audio", NULL};

const struct fp_family fam_audio = {
        .name = "audio",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
