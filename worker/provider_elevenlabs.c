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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define TTS_PATH "/v1/text-to-speech/"
#define OUTPUT_FORMAT "mp3_44100_128"

/*
 * Building the request.
 */

/** <base>/v1/text-to-speech/<voice>?output_format=..., the voice id
 *  percent-encoded. */
static int build_url(const struct provider_cfg *p, const char *voice,
                     struct provider_req *req, char *errstr,
                     size_t errstr_size)
{
        char seg[512];
        size_t n = 0;

        /* a missing base_url is reported before a voice id too long
         * (adapt_url() checks it before it reads seg) */
        if (adapt_pct_encode(seg, sizeof(seg), &n, voice, 0) == -1 &&
            p->base_url && *p->base_url) {
                snprintf(errstr, errstr_size, "voice id too long");
                return -1;
        }
        return adapt_url(req, p, "base_url", errstr, errstr_size, TTS_PATH,
                         seg, "?output_format=" OUTPUT_FORMAT, NULL);
}

static int build_headers(const char *key, struct provider_req *req,
                         char *errstr, size_t errstr_size)
{
        if (adapt_auth(req, "xi-api-key: ", key, errstr, errstr_size) == -1)
                return -1;
        provider_req_header(req, "Content-Type: application/json");
        provider_req_header(req, "Accept: audio/mpeg");
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
        if (adapt_jset_str(body, "text", tts->text) == -1 ||
            (model && adapt_jset_str(body, "model_id", model) == -1)) {
                snprintf(errstr, errstr_size, "text or model is not UTF-8");
                goto err_free_body;
        }
        if (adapt_merge_obj(p, "extra_body", p->extra_body, body,
                            ADAPT_MERGE_TOP, errstr, errstr_size) == -1)
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
        adapt_req_json(req, body, JSON_COMPACT);
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
        M_END = ADAPT_M_END,    /**< table terminator */
        M_ANY = ADAPT_M_ANY,    /**< status alone decides */
        M_STATUS = ADAPT_M_OWN, /**< detail.status equals one of val */
};

#define RETRY OUTCOME_RETRY_LATER
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* Section 10.2 and the ElevenLabs rows of section 12.  A body that is not
 * JSON: adapt_nonjson_rule(). */
static const struct adapt_rule json_rules[] = {
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

/** The detail fields (borrowed from the parsed body). */
struct detail {
        const char *status;  /**< detail.status, "" if none */
        const char *message; /**< detail.message / msg / the string */
};

static int marker_match(const struct adapt_rule *r, const void *ctx)
{
        const struct detail *d = ctx;

        return adapt_alt_eq(r->val, d->status);
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
        if (adapt_jstr(det, "status"))
                d->status = adapt_jstr(det, "status");
        else if (adapt_jstr(det, "type"))
                d->status = adapt_jstr(det, "type");
        d->message = adapt_jstr(det, "message");
        if (!d->message)
                d->message = adapt_jstr(det, "msg");
}

static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct adapt_rule *r;
        struct detail d;
        json_t *root;

        root = adapt_body_json(resp);
        detail_read(&d, root);
        if (json_is_object(root))
                r = adapt_rules_match(json_rules, resp->status, marker_match,
                                      &d);
        else
                r = adapt_nonjson_rule(resp->status);
        adapt_classify(resp, r, err);
        if (!r && resp->status >= 200 && resp->status < 300)
                err->outcome = OUTCOME_RETRY_LATER;
        if (json_is_object(root))
                adapt_errstr(err, NULL, "%ld%s%s: %s", resp->status,
                             *d.status ? " " : "", d.status,
                             d.message ? d.message : "(no message)");
        json_decref(root);
        return err->outcome;
}

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        return adapt_parse(job, resp, res, err, adapt_speech_ok, parse_error);
}

const struct provider_ops provider_elevenlabs_ops = {
        .name = "elevenlabs",
        .kind = GENQ__V1__KIND__KIND_TTS,
        .flags = 0,
        .build = build,
        .parse = parse,
};
