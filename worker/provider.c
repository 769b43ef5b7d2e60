/*
 * provider: what every adapter shares.
 *
 * The adapter registry, the outcome names, the request/result cleanup, the
 * status-only rules of the reference's section 12 ("Any" rows and
 * "Statuses not listed") and the two retry-hint parsers (Retry-After
 * header, "try again in 5.289s" text).  All of it is pure: no I/O, no
 * clock reads (the caller passes "now"), no state.
 */
#include "provider.h"

#include <stdarg.h>
#include <strings.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

/** Longest wait a provider may ask for; beyond it the hint is clamped. */
#define MAX_HINT_MS (24LL * 3600 * 1000)
/** Fraction digits kept when parsing a decimal ("5.289"): six. */
#define MAX_FRAC_SCALE 1000000

static const char *const outcome_names[] = {
        [OUTCOME_SUCCESS] = "success",
        [OUTCOME_RETRY_LATER] = "retry_later",
        [OUTCOME_FALLBACK_NEXT] = "fallback_next",
        [OUTCOME_FATAL_JOB] = "fatal_job",
        [OUTCOME_KEY_DISABLED] = "key_disabled",
        [OUTCOME_QUOTA_EXHAUSTED] = "quota_exhausted",
        [OUTCOME_PENDING] = "pending",
};
#define N_OUTCOMES (sizeof(outcome_names) / sizeof(outcome_names[0]))

/* The registry.  Add an adapter to both tables (the unit test checks that
 * they agree). */
static const struct provider_ops *const adapters[] = {
        &provider_openai_chat_ops,   &provider_anthropic_ops,
        &provider_gemini_ops,        &provider_cohere_ops,
        &provider_openai_images_ops, &provider_sf_images_ops,
        &provider_stability_ops,     &provider_replicate_ops,
        &provider_hf_image_ops,      &provider_kie_image_ops,
        &provider_kie_video_ops,     &provider_sf_video_ops,
        &provider_zhipu_video_ops,   &provider_openai_stt_ops,
        &provider_assemblyai_ops,    &provider_gladia_ops,
        &provider_hf_whisper_ops,    &provider_openai_tts_ops,
        &provider_elevenlabs_ops,
};
#define N_ADAPTERS (sizeof(adapters) / sizeof(adapters[0]))

static const char *const adapter_names[] = {
        "openai_chat",         "anthropic_messages", "gemini_generate",
        "cohere_chat",         "openai_images",      "siliconflow_images",
        "stability_image",     "replicate",          "hf_image",
        "kie_image",           "kie_video",          "siliconflow_video",
        "zhipu_video",         "openai_transcriptions", "assemblyai",
        "gladia",              "hf_whisper",         "openai_speech",
        "elevenlabs",          NULL,
};
_Static_assert(sizeof(adapter_names) / sizeof(adapter_names[0]) ==
                       N_ADAPTERS + 1,
               "adapters[] and adapter_names[] disagree");

const char *outcome_name(enum outcome o)
{
        if ((unsigned)o >= N_OUTCOMES)
                return "unknown";
        return outcome_names[o];
}

const struct provider_ops *provider_ops_find(const char *name)
{
        for (size_t i = 0; i < N_ADAPTERS; i++)
                if (name && !strcmp(adapters[i]->name, name))
                        return adapters[i];
        return NULL;
}

const char *const *provider_ops_names(void)
{
        return adapter_names;
}

void provider_req_clear(struct provider_req *req)
{
        if (req->headers) {
                for (char **h = req->headers; *h; h++)
                        free(*h);
                free(req->headers);
        }
        free(req->body);
        for (size_t i = 0; i < req->n_parts; i++) {
                free(req->parts[i].name);
                free(req->parts[i].data);
                free(req->parts[i].filename);
                free(req->parts[i].content_type);
        }
        free(req->parts);
        memset(req, 0, sizeof(*req));
}

void provider_req_header(struct provider_req *req, const char *fmt, ...)
{
        size_t n = 0;
        char line[4096];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        while (req->headers && req->headers[n])
                n++;
        req->headers = xrealloc(req->headers, (n + 2) * sizeof(char *));
        req->headers[n] = xstrdup(line);
        req->headers[n + 1] = NULL;
        explicit_bzero(line, sizeof(line)); /* may have held a key */
}

void provider_req_part(struct provider_req *req, const char *name,
                       const void *data, size_t len, const char *filename,
                       const char *content_type)
{
        struct provider_part *pt;

        req->parts = xrealloc(req->parts,
                              (req->n_parts + 1) * sizeof(*req->parts));
        pt = &req->parts[req->n_parts++];
        pt->name = xstrdup(name);
        pt->data = xmalloc(len + 1);
        memcpy(pt->data, data, len);
        pt->data[len] = '\0';
        pt->len = len;
        pt->filename = xstrdup(filename);
        pt->content_type = xstrdup(content_type);
}

void provider_req_field(struct provider_req *req, const char *name,
                        const char *value)
{
        provider_req_part(req, name, value, strlen(value), NULL, NULL);
}

int provider_req_has_part(const struct provider_req *req, const char *name)
{
        for (size_t i = 0; i < req->n_parts; i++)
                if (!strcmp(req->parts[i].name, name))
                        return 1;
        return 0;
}

const char *provider_resp_header(const struct provider_resp *resp,
                                 const char *name)
{
        size_t n = strlen(name);

        for (char **h = resp->headers; h && *h; h++)
                if (!strncasecmp(*h, name, n) && (*h)[n] == ':') {
                        const char *v = *h + n + 1;

                        while (*v == ' ' || *v == '\t')
                                v++;
                        return v;
                }
        return NULL;
}

void provider_result_add_url(struct provider_result *res, const char *s)
{
        res->urls = xrealloc(res->urls, (res->n_urls + 1) * sizeof(char *));
        res->urls[res->n_urls++] = xstrdup(s);
}

void provider_result_clear(struct provider_result *res)
{
        free(res->text);
        free(res->finish_reason);
        free(res->model);
        free(res->usage_json);
        for (size_t i = 0; i < res->n_urls; i++)
                free(res->urls[i]);
        free(res->urls);
        free(res->data);
        free(res->content_type);
        free(res->task_id);
        free(res->provider_cost);
        memset(res, 0, sizeof(*res));
        res->input_tokens = -1;
        res->output_tokens = -1;
        res->units = -1;
}

/** Does the body look like JSON (first non-blank byte opens a value)? */
static int body_is_json(const struct provider_resp *resp)
{
        const char *s = resp->body;
        size_t i = 0;

        if (!s)
                return 0;
        while (i < resp->body_len && isspace((unsigned char)s[i]))
                i++;
        return i < resp->body_len && (s[i] == '{' || s[i] == '[');
}

static enum outcome classify_transport(const struct provider_resp *resp,
                                       struct provider_err *err)
{
        const char *msg = resp->transport_msg && *resp->transport_msg
                                  ? resp->transport_msg
                                  : "no response";

        if (resp->timed_out)
                snprintf(err->errstr, sizeof(err->errstr), "timeout: %s", msg);
        else
                snprintf(err->errstr, sizeof(err->errstr),
                         "transport error %d: %s", resp->transport_err, msg);
        return OUTCOME_RETRY_LATER;
}

static enum outcome classify_5xx(const struct provider_resp *resp,
                                 struct provider_err *err)
{
        long st = resp->status;

        if ((st == 502 || st == 503 || st == 504) && !body_is_json(resp))
                snprintf(err->errstr, sizeof(err->errstr),
                         "HTTP %ld with a non-JSON body", st);
        else
                snprintf(err->errstr, sizeof(err->errstr),
                         "HTTP %ld server error", st);
        return OUTCOME_RETRY_LATER;
}

static enum outcome classify_4xx(const struct provider_resp *resp,
                                 struct provider_err *err)
{
        long st = resp->status;

        snprintf(err->errstr, sizeof(err->errstr), "HTTP %ld", st);
        if (st == 408 || st == 425 || st == 429)
                return OUTCOME_RETRY_LATER;
        return OUTCOME_FATAL_JOB;
}

static enum outcome classify_2xx(const struct provider_resp *resp,
                                 struct provider_err *err)
{
        snprintf(err->errstr, sizeof(err->errstr), "HTTP %ld with a %s body",
                 resp->status,
                 resp->truncated ? "truncated" : "malformed");
        return OUTCOME_RETRY_LATER;
}

/*
 * 1xx and 3xx: redirects are not followed, so the base URL points at the
 * wrong place.  Not the job's fault and not the key's: try elsewhere.
 */
static enum outcome classify_other(const struct provider_resp *resp,
                                   struct provider_err *err)
{
        snprintf(err->errstr, sizeof(err->errstr), "unexpected HTTP %ld",
                 resp->status);
        return OUTCOME_FALLBACK_NEXT;
}

enum outcome provider_classify_generic(const struct provider_resp *resp,
                                       struct provider_err *err)
{
        err->http_status = resp->status;
        err->retry_after_ms = resp->retry_after_ms;
        if (resp->transport_err || resp->status == 0)
                err->outcome = classify_transport(resp, err);
        else if (resp->status >= 500)
                err->outcome = classify_5xx(resp, err);
        else if (resp->status >= 400)
                err->outcome = classify_4xx(resp, err);
        else if (resp->status >= 200 && resp->status < 300)
                err->outcome = classify_2xx(resp, err);
        else
                err->outcome = classify_other(resp, err);
        return err->outcome;
}

/** An unsigned decimal as read, before it is given a unit. */
struct decimal {
        int64_t ip;     /**< integer part, saturated above MAX_HINT_MS */
        int64_t frac;   /**< fraction digits kept, as an integer */
        int64_t scale;  /**< 10^(fraction digits kept) */
};

/**
 * Read "20", "5.289" or ".5" at *sp and advance past it.
 * @returns 0, or -1 (and *sp untouched) if there is no digit.
 */
static int decimal_parse(const char **sp, struct decimal *d)
{
        const char *s = *sp;
        int digits = 0;

        d->ip = d->frac = 0;
        d->scale = 1;
        for (; isdigit((unsigned char)*s); s++, digits++)
                d->ip = d->ip > MAX_HINT_MS ? d->ip
                                            : d->ip * 10 + (*s - '0');
        if (*s == '.')
                for (s++; isdigit((unsigned char)*s); s++, digits++) {
                        if (d->scale >= MAX_FRAC_SCALE)
                                continue;
                        d->frac = d->frac * 10 + (*s - '0');
                        d->scale *= 10;
                }
        if (!digits)
                return -1;
        *sp = s;
        return 0;
}

/** \p d in units of \p unit_ms, rounded up to whole ms, capped. */
static int64_t decimal_ms(const struct decimal *d, int64_t unit_ms)
{
        if (d->ip > MAX_HINT_MS / unit_ms)
                return MAX_HINT_MS;
        return d->ip * unit_ms + (d->frac * unit_ms + d->scale - 1) / d->scale;
}

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr",
                                          "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec"};

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/** IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" to Unix seconds, or -1. */
static int64_t parse_http_date(const char *v)
{
        char wday[4], mon[4], zone[4];
        int d, y, hh, mm, ss, n = 0, m;

        if (sscanf(v, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3s%n",
                   wday, &d, mon, &y, &hh, &mm, &ss, zone, &n) != 8 ||
            strcmp(zone, "GMT"))
                return -1;
        for (; v[n]; n++)
                if (!isspace((unsigned char)v[n]))
                        return -1;
        for (m = 0; m < 12 && strcmp(mon, month_names[m]); m++)
                ;
        if (m == 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
                return -1;
        return days_from_civil(y, m + 1, d) * 86400 + hh * 3600 + mm * 60 +
               ss;
}

int64_t provider_parse_retry_after(const char *v, int64_t now_unix)
{
        const char *s = v;
        struct decimal d;
        int64_t when;

        if (!v)
                return -1;
        while (isspace((unsigned char)*s))
                s++;
        if (isdigit((unsigned char)*s) || *s == '.') {
                if (decimal_parse(&s, &d) == -1)
                        return -1;
                while (isspace((unsigned char)*s))
                        s++;
                return *s ? -1 : decimal_ms(&d, 1000);
        }
        when = parse_http_date(s);
        if (when == -1)
                return -1;
        if (when <= now_unix)
                return 0;
        if (when - now_unix > MAX_HINT_MS / 1000)
                return MAX_HINT_MS;
        return (when - now_unix) * 1000;
}

/** Go-style duration units, longest suffix first so "ms" beats "m". */
static const struct {
        const char *suffix;
        int64_t ms;
} duration_units[] = {
        {"ms", 1},
        {"h", 3600 * 1000},
        {"m", 60 * 1000},
        {"s", 1000},
};

/** Consume one unit suffix at *sp. @returns its length in ms, or -1. */
static int64_t parse_unit(const char **sp)
{
        for (size_t i = 0;
             i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
                size_t n = strlen(duration_units[i].suffix);

                if (strncmp(*sp, duration_units[i].suffix, n))
                        continue;
                /* "5 min" or "5 seconds" are words, not Go units */
                if (isalpha((unsigned char)(*sp)[n]))
                        continue;
                *sp += n;
                return duration_units[i].ms;
        }
        return -1;
}

/** Parse "1m30s", "5.289s", "150ms" at \p s. @returns ms or -1. */
static int64_t parse_go_duration(const char *s)
{
        struct decimal d;
        int64_t total = 0, unit;
        int n = 0;

        while (decimal_parse(&s, &d) == 0) {
                unit = parse_unit(&s);
                if (unit == -1)
                        return -1;
                total += decimal_ms(&d, unit);
                if (total > MAX_HINT_MS)
                        total = MAX_HINT_MS;
                n++;
        }
        return n ? total : -1;
}

int64_t provider_parse_try_again(const char *msg)
{
        static const char needle[] = "try again in ";
        const char *s;

        if (!msg)
                return -1;
        s = strcasestr(msg, needle);
        if (!s)
                return -1;
        s += sizeof(needle) - 1;
        while (*s == ' ')
                s++;
        return parse_go_duration(s);
}
