/**
 * @file fam_stability.c
 * @brief Family "stability": Stability AI v2beta Stable Image
 *        (provider-api-reference.md 5.3).  Default provider: stability.
 *
 *   POST <prefix>/v2beta/stable-image/generate/{core|ultra|sd3}
 *
 * Checks, in order: the mode (else 404 not_found); Authorization Bearer
 * key (else 401 unauthorized); Content-Type multipart/form-data (else 400:
 * the body is multipart even for text-to-image); Accept image/ANY or
 * application/json (ANY = the wildcard; else 400); the form: "prompt"
 * non-empty and at most 10000 bytes, "aspect_ratio" one of 16:9 1:1 21:9
 * 2:3 3:2 4:5 5:4 9:16 9:21, "output_format" png|jpeg|webp, "seed" an
 * integer 0..4294967294, and for sd3 "model" one of sd3.5-large,
 * sd3.5-large-turbo, sd3.5-medium, sd3.5-flash.  Every 400 is
 * {"id","name":"bad_request","errors":["<field>: <why>"]}.
 *
 * DETERMINISTIC ANSWERS
 *
 *   image  = a 2x2 red PNG (73 bytes) whatever output_format says; the
 *            Content-Type follows output_format (default image/png).
 *   seed   = the form's seed, else fnv1a32(prompt).
 *   id     = 32 hex digits of the provider's request number.
 *   Accept image/ANY        -> 200, the image bytes, headers
 *                              finish-reason: SUCCESS and seed: <seed>.
 *   Accept application/json -> 200 {"image": base64, "finish_reason":
 *                              "SUCCESS", "seed": <seed>}.
 *   prompt containing "[filtered]"   -> the same 200 answers with
 *                                       finish_reason CONTENT_FILTERED.
 *   prompt containing "[moderation]" -> 403 content_moderation.
 *
 * Named errors (script {"error": NAME}):
 *
 *   invalid_key        401 unauthorized
 *   payment_required   402 payment_required (lacks sufficient credits)
 *   content_moderation 403 content_moderation (reference sample, verbatim)
 *   bad_request        400 bad_request
 *   too_large          413 payload_too_large
 *   rejected           422 invalid_language
 *   rate_limit         429 rate_limit_exceeded (no Retry-After: none is
 *                      documented)
 *   server_error       500 internal_error
 *   content_filtered   200 with finish reason CONTENT_FILTERED (per Accept)
 *
 * Names other than content_moderation are unconfirmed in the reference.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "xmem.h"

#define MODE_PREFIX "/v2beta/stable-image/generate/"
#define MAX_FIELDS 32
#define MAX_PROMPT 10000

static const unsigned char png[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73,
        0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63,
        0xf8, 0xcf, 0xc0, 0x00, 0x44, 0x0c, 0x10, 0x0a, 0x00, 0x1f, 0xee,
        0x03, 0xfd, 0x63, 0x5e, 0xbb, 0x5b, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};
#define PNG_B64                                                              \
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR42mP4z8AA" \
        "RAwQCgAf7gP9Y167WwAAAABJRU5ErkJggg=="

/* ---- multipart/form-data --------------------------------------------- */

struct field {
        char name[64];
        const char *value;  /**< into the body; not NUL-terminated */
        size_t len;
        int is_file;
};

struct form {
        struct field f[MAX_FIELDS];
        size_t n;
};

/* The boundary parameter of \p ctype into \p out. @returns 0 or -1. */
static int boundary_of(const char *ctype, char *out, size_t outsz)
{
        const char *b;
        size_t n;

        if (!ctype || strncasecmp(ctype, "multipart/form-data", 19))
                return -1;
        b = strcasestr(ctype, "boundary=");
        if (!b)
                return -1;
        b += 9;
        if (*b == '"')
                b++;
        n = strcspn(b, "\";");
        if (!n || n + 3 > outsz)
                return -1;
        snprintf(out, outsz, "--%.*s", (int)n, b);
        return 0;
}

/* Fill \p fd from one part's headers+content [p, end). */
static int parse_part(const char *p, const char *end, struct field *fd)
{
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *nm, *q;
        size_t n;

        if (!hend)
                return -1;
        nm = memmem(p, (size_t)(hend - p), "name=\"", 6);
        if (!nm)
                return -1;
        nm += 6;
        q = memchr(nm, '"', (size_t)(hend - nm));
        n = q ? (size_t)(q - nm) : 0;
        if (!q || n >= sizeof(fd->name))
                return -1;
        memcpy(fd->name, nm, n);
        fd->name[n] = '\0';
        fd->is_file = memmem(p, (size_t)(hend - p), "filename=", 9) != NULL;
        fd->value = hend + 4;
        fd->len = (size_t)(end - fd->value);
        return 0;
}

/* Split \p body into fields. @returns 0, or -1 if it is not multipart. */
static int form_parse(const struct fp_call *call, struct form *fm)
{
        const char *body = call->body, *end = body + call->body_len;
        const char *p, *next;
        char delim[128];
        size_t dl;

        fm->n = 0;
        if (boundary_of(fakeprov_header(call, "Content-Type"), delim,
                        sizeof(delim)) == -1)
                return -1;
        dl = strlen(delim);
        p = memmem(body, call->body_len, delim, dl);
        while (p && p + dl + 2 <= end && strncmp(p + dl, "--", 2)) {
                p += dl + 2; /* past the delimiter's CRLF */
                next = memmem(p, (size_t)(end - p), delim, dl);
                if (!next || next - p < 2 || fm->n == MAX_FIELDS ||
                    parse_part(p, next - 2, &fm->f[fm->n]) == -1)
                        return -1;
                fm->n++;
                p = next;
        }
        return p ? 0 : -1;
}

static const struct field *form_get(const struct form *fm, const char *name)
{
        for (size_t i = 0; i < fm->n; i++)
                if (!strcmp(fm->f[i].name, name))
                        return &fm->f[i];
        return NULL;
}

/* A text field as a NUL-terminated copy in \p out, or "" if absent. */
static void form_str(const struct form *fm, const char *name, char *out,
                     size_t outsz)
{
        const struct field *fd = form_get(fm, name);
        size_t n = fd ? fd->len : 0;

        if (n >= outsz)
                n = outsz - 1;
        if (n)
                memcpy(out, fd->value, n);
        out[n] = '\0';
}

/* ---- errors ---------------------------------------------------------- */

static void stab_error(const struct fp_call *call, struct fp_resp *resp,
                       unsigned status, const char *name, const char *msg)
{
        char id[40];

        snprintf(id, sizeof(id), "%032llx", (unsigned long long)call->seq);
        fpresp_json(resp, status,
                    json_pack("{s:s, s:s, s:[s]}", "id", id, "name", name,
                              "errors", msg),
                    JSON_COMPACT);
}

static int bad(const struct fp_call *call, struct fp_resp *resp,
               const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(const struct fp_call *call, struct fp_resp *resp,
               const char *fmt, ...)
{
        char msg[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        stab_error(call, resp, 400, "bad_request", msg);
        return -1;
}

static void err_invalid_key(const struct fp_call *call, struct fp_resp *resp)
{
        stab_error(call, resp, 401, "unauthorized",
                   call->key ? "authorization: invalid API key"
                             : "authorization: missing authorization header");
}

static void err_payment(const struct fp_call *call, struct fp_resp *resp)
{
        stab_error(call, resp, 402, "payment_required",
                   "You lack sufficient credits to make this request. "
                   "Please purchase more credits at "
                   "https://platform.stability.ai/account/credits and try "
                   "again.");
}

static void err_moderation(const struct fp_call *call, struct fp_resp *resp)
{
        fpresp_json(resp, 403,
                    json_pack("{s:s, s:s, s:[s]}", "id", "a1b2c3d4e5f6",
                              "name", "content_moderation", "errors",
                              "Your request was flagged by our content "
                              "moderation system"),
                    JSON_COMPACT);
}

static void err_bad_request(const struct fp_call *call, struct fp_resp *resp)
{
        bad(call, resp, "aspect_ratio: must be one of 16:9, 1:1, 21:9, 2:3, "
                        "3:2, 4:5, 5:4, 9:16, 9:21");
}

static void err_too_large(const struct fp_call *call, struct fp_resp *resp)
{
        stab_error(call, resp, 413, "payload_too_large",
                   "body: payloads cannot be larger than 10MiB in size");
}

static void err_rejected(const struct fp_call *call, struct fp_resp *resp)
{
        stab_error(call, resp, 422, "invalid_language",
                   "English is the only supported language for this "
                   "service.");
}

static void err_rate_limit(const struct fp_call *call, struct fp_resp *resp)
{
        stab_error(call, resp, 429, "rate_limit_exceeded",
                   "You have exceeded the rate limit of 150 requests within "
                   "a 10 second period, and have been timed out for 60 "
                   "seconds.");
}

static void err_server(const struct fp_call *call, struct fp_resp *resp)
{
        stab_error(call, resp, 500, "internal_error",
                   "An unexpected server error has occurred, please try "
                   "again later.");
}

/* ---- checks ---------------------------------------------------------- */

static int in_list(const char *list, const char *w)
{
        size_t n = strlen(w);

        if (!n)
                return 0;
        for (const char *s = list; (s = strstr(s, w)); s += n)
                if ((s == list || s[-1] == ' ') && (!s[n] || s[n] == ' '))
                        return 1;
        return 0;
}

/* An optional field that must be one of \p list. */
static int check_enum(const struct fp_call *call, struct fp_resp *resp,
                      const struct form *fm, const char *name,
                      const char *list)
{
        char v[64];

        if (!form_get(fm, name))
                return 0;
        form_str(fm, name, v, sizeof(v));
        if (!in_list(list, v))
                return bad(call, resp, "%s: must be one of %s", name, list);
        return 0;
}

static int check_seed(const struct fp_call *call, struct fp_resp *resp,
                      const struct form *fm, uint64_t *seed)
{
        char v[32], *end;
        unsigned long long s;

        if (!form_get(fm, "seed"))
                return 0;
        form_str(fm, "seed", v, sizeof(v));
        s = strtoull(v, &end, 10);
        if (!*v || *end || v[0] == '-' || s > 4294967294ULL)
                return bad(call, resp,
                           "seed: must be an integer in 0..4294967294");
        *seed = s;
        return 0;
}

static int check_prompt(const struct fp_call *call, struct fp_resp *resp,
                        const struct form *fm)
{
        const struct field *fd = form_get(fm, "prompt");

        if (!fd || !fd->len)
                return bad(call, resp, "prompt: cannot be empty");
        if (fd->len > MAX_PROMPT)
                return bad(call, resp,
                           "prompt: must be at most %d characters",
                           MAX_PROMPT);
        return 0;
}

static int check_accept(const struct fp_call *call, struct fp_resp *resp,
                        int *json)
{
        const char *a = fakeprov_header(call, "Accept");

        *json = a && !strncasecmp(a, "application/json", 16);
        if (*json || (a && (!strncasecmp(a, "image/*", 7) ||
                            !strncasecmp(a, "image/png", 9))))
                return 0;
        return bad(call, resp,
                   "accept: must be image/* or application/json");
}

static int check_form(const struct fp_call *call, struct fp_resp *resp,
                      const char *mode, const struct form *fm,
                      uint64_t *seed)
{
        if (check_prompt(call, resp, fm) ||
            check_enum(call, resp, fm, "aspect_ratio",
                       "16:9 1:1 21:9 2:3 3:2 4:5 5:4 9:16 9:21") ||
            check_enum(call, resp, fm, "output_format", "png jpeg webp") ||
            check_seed(call, resp, fm, seed))
                return -1;
        if (!strcmp(mode, "sd3") &&
            check_enum(call, resp, fm, "model",
                       "sd3.5-large sd3.5-large-turbo sd3.5-medium "
                       "sd3.5-flash"))
                return -1;
        return 0;
}

/* ---- answers --------------------------------------------------------- */

static uint64_t fnv1a32(const char *s, size_t n)
{
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char)s[i]) * 16777619u;
        return h;
}

static void answer_image(const struct fp_call *call, struct fp_resp *resp,
                         int json, const char *fmt, uint64_t seed,
                         const char *finish)
{
        char ctype[32], sv[24];

        if (json) {
                fpresp_json(resp, 200,
                            json_pack("{s:s, s:s, s:I}", "image", PNG_B64,
                                      "finish_reason", finish, "seed",
                                      (json_int_t)seed),
                            JSON_COMPACT);
                return;
        }
        snprintf(ctype, sizeof(ctype), "image/%s", *fmt ? fmt : "png");
        snprintf(sv, sizeof(sv), "%llu", (unsigned long long)seed);
        fpresp_set(resp, 200, (const char *)png, sizeof(png));
        fpresp_content_type(resp, ctype);
        fpresp_header(resp, "finish-reason", finish);
        fpresp_header(resp, "seed", sv);
}

static void err_filtered(const struct fp_call *call, struct fp_resp *resp)
{
        int json;

        json = fakeprov_header(call, "Accept") &&
               !strncasecmp(fakeprov_header(call, "Accept"),
                            "application/json", 16);
        answer_image(call, resp, json, "", 0, "CONTENT_FILTERED");
}

static void generate(const struct fp_call *call, struct fp_resp *resp)
{
        const char *mode = call->path + strlen(MODE_PREFIX);
        const struct field *pr;
        char fmt[16];
        struct form fm;
        uint64_t seed = 0;
        int json;

        if (!in_list("core ultra sd3", mode)) {
                stab_error(call, resp, 404, "not_found",
                           "The requested resource was not found");
                return;
        }
        if (!call->auth_ok) {
                err_invalid_key(call, resp);
                return;
        }
        if (form_parse(call, &fm) == -1) {
                bad(call, resp, "content-type: must be multipart/form-data");
                return;
        }
        if (check_accept(call, resp, &json) ||
            check_form(call, resp, mode, &fm, &seed))
                return;
        pr = form_get(&fm, "prompt");
        if (memmem(pr->value, pr->len, "[moderation]", 12)) {
                err_moderation(call, resp);
                return;
        }
        if (!form_get(&fm, "seed"))
                seed = fnv1a32(pr->value, pr->len);
        form_str(&fm, "output_format", fmt, sizeof(fmt));
        answer_image(call, resp, json, fmt, seed,
                     memmem(pr->value, pr->len, "[filtered]", 10)
                             ? "CONTENT_FILTERED"
                             : "SUCCESS");
}

static void not_found(const struct fp_call *call, struct fp_resp *resp)
{
        stab_error(call, resp, 404, "not_found",
                   "The requested resource was not found");
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
        {"POST", MODE_PREFIX "*", generate},
        {NULL, NULL, NULL},
};

static const struct fp_errdef errors[] = {
        {"invalid_key", err_invalid_key},
        {"payment_required", err_payment},
        {"content_moderation", err_moderation},
        {"bad_request", err_bad_request},
        {"too_large", err_too_large},
        {"rejected", err_rejected},
        {"rate_limit", err_rate_limit},
        {"server_error", err_server},
        {"content_filtered", err_filtered},
        {NULL, NULL},
};

static const char *const defaults[] = {"stability", NULL};

const struct fp_family fam_stability = {
        .name = "stability",
        .routes = routes,
        .errors = errors,
        .get_key = get_key,
        .not_found = not_found,
        .default_providers = defaults,
};
