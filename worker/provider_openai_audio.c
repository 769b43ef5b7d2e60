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
 * row: provider_classify_generic().  A non-JSON error page has only the
 * shared status-only rows (adapt_nonjson_rule()).
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define STT_PATH "/audio/transcriptions"
#define TTS_PATH "/audio/speech"
/** Float speeds print as 1.25, not 1.25000000000000. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(7))


/*
 * Building requests.
 */

/** Authorization (when there is a key) and \p ctype headers. */
static int build_headers(const char *key, const char *ctype,
                         struct provider_req *req, char *errstr,
                         size_t errstr_size)
{
        if (adapt_auth(req, "Authorization: Bearer ", key, errstr,
                       errstr_size) == -1)
                return -1;
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

/** extra_body members as form fields: strings as they are, other values
 *  as JSON text; never a field the adapter already set. */
static int add_extra_fields(const struct provider_cfg *p,
                            struct provider_req *req, char *errstr,
                            size_t errstr_size)
{
        const char *k;
        json_t *extra, *v;
        char *s;

        if (adapt_load_obj(p, "extra_body", p->extra_body, &extra, errstr,
                           errstr_size) == -1)
                return -1;
        json_object_foreach(extra, k, v) {
                if (provider_req_has_part(req, k) || json_is_null(v))
                        continue;
                if (json_is_string(v)) {
                        provider_req_field(req, k, json_string_value(v));
                        continue;
                }
                s = adapt_jdump(v, DUMP_FLAGS | JSON_ENCODE_ANY);
                provider_req_field(req, k, s);
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
        *model = adapt_model(p, job->stt->model, errstr, errstr_size);
        return *model ? 0 : -1;
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
        if (adapt_url(req, p, "base_url", errstr, errstr_size, STT_PATH,
                      NULL) == -1 ||
            build_headers(key, NULL, req, errstr, errstr_size) == -1)
                goto err_clear_req;
        adapt_media_type(in->content_type, mtype, sizeof(mtype));
        file_name(in, mtype, fname, sizeof(fname));
        provider_req_part(req, "file", in->data, in->len, fname,
                          *mtype ? mtype : "application/octet-stream");
        provider_req_field(req, "model", model);
        if (*job->stt->language)
                provider_req_field(req, "language", job->stt->language);
        provider_req_field(req, "response_format",
                           strcmp(model, "whisper-1") ? "json"
                                                      : "verbose_json");
        if (add_extra_fields(p, req, errstr, errstr_size) == -1)
                goto err_clear_req;
        req->method = "POST";
        return 0;

err_clear_req:
        provider_req_clear(req);
        return -1;
}

/**
 * @remark The reference wants stt units from the input when the
 *         provider reports no duration, but parse() never sees the input:
 *         callers that hold it (the worker's fetch) use this.
 */
double provider_openai_audio_wav_seconds(const void *data, size_t len)
{
        return adapt_wav_seconds(data, len);
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

static json_t *tts_body(const struct provider_cfg *p,
                        const Genq__V1__TtsRequest *tts, const char *model,
                        const char *voice, char *errstr, size_t errstr_size)
{
        json_t *body = json_object();

        if (!body)
                fatal("out of memory building JSON");
        if (adapt_jset_str(body, "model", model) == -1 ||
            adapt_jset_str(body, "input", tts->text) == -1 ||
            adapt_jset_str(body, "voice", voice) == -1 ||
            adapt_jset_str(body, "response_format",
                           *tts->format ? tts->format : "mp3") == -1) {
                snprintf(errstr, errstr_size,
                         "text, voice, model or format is not valid UTF-8");
                goto err_free_body;
        }
        if (tts->speed_opt_case == GENQ__V1__TTS_REQUEST__SPEED_OPT_SPEED)
                adapt_jset(body, "speed", json_real(tts->speed));
        if (adapt_merge_obj(p, "extra_body", p->extra_body, body,
                            ADAPT_MERGE_TOP, errstr, errstr_size) == -1)
                goto err_free_body;
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
        if (adapt_url(req, p, "base_url", errstr, errstr_size, TTS_PATH,
                      NULL) == -1 ||
            build_headers(key, "application/json", req, errstr,
                          errstr_size) == -1)
                goto err_free_body;
        req->method = "POST";
        adapt_req_json(req, body, DUMP_FLAGS);
        json_decref(body);
        return 0;

err_free_body:
        json_decref(body);
        provider_req_clear(req);
        return -1;
}

/*
 * Classifying error bodies (struct adapt_oaierr: both envelopes' fields).
 */

enum marker {
        M_END = ADAPT_M_END,     /**< table terminator */
        M_ANY = ADAPT_M_ANY,     /**< status alone decides */
        M_CODE = ADAPT_OAI_CODE, /**< code equals one of val */
        M_TYPE = ADAPT_OAI_TYPE, /**< type equals one of val */
        M_MSG = ADAPT_OAI_MSG,   /**< message contains one of val (any
                                      case) */
};

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/* OpenAI envelope (section 1.1 and 12; 9.1: bad file -> fatal_job). */
static const struct adapt_rule openai_rules[] = {
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

/** SiliconFlow's shape: a bare integer code, no "error" wrapper. */
static const struct adapt_rule *family_rules(const struct adapt_oaierr *eb)
{
        return !eb->wrapped && eb->code_is_int ? adapt_siliconflow_rules
                                               : openai_rules;
}

/** "sk-xxxxxx..." tokens shortened to "sk-…" (U+2026). */
static const char *const key_prefixes[] = {"sk-", NULL};
static const struct adapt_redact keys = {
        .prefixes = key_prefixes,
        .chars = "-_*",
        .token_start = 1,
        .high_bytes = 1,
        .min_len = 6,
};

/** The row for a JSON body: its family's, else the OpenAI table's. */
static const struct adapt_rule *body_rule(const struct adapt_oaierr *eb,
                                          long status)
{
        const struct adapt_rule *r;

        r = adapt_rules_match(family_rules(eb), status, adapt_oaierr_match,
                              eb);
        if (r)
                return r;
        return adapt_rules_match(openai_rules, status, adapt_oaierr_match,
                                 eb);
}

/** Classify an error answer (any status) from its status and body. */
static enum outcome parse_error(const struct provider_resp *resp,
                                struct provider_err *err)
{
        const struct adapt_rule *r;
        struct adapt_oaierr eb;
        json_t *root;

        root = adapt_body_json(resp);
        adapt_oaierr_read(&eb, root, 0);
        if (json_is_object(root))
                r = body_rule(&eb, resp->status);
        else
                r = adapt_nonjson_rule(resp->status);
        adapt_classify(resp, r, err);
        if (!r && resp->status >= 200 && resp->status < 300)
                err->outcome = OUTCOME_RETRY_LATER;
        if (json_is_object(root))
                adapt_oaierr_errstr(&eb, resp->status, &keys, err);
        if (err->retry_after_ms < 0)
                err->retry_after_ms = provider_parse_try_again(eb.message);
        json_decref(root);
        return err->outcome;
}

/*
 * Reading a success.
 */

/** Seconds of audio the response reports, or -1. */
static double stt_seconds(const json_t *root)
{
        const json_t *d = json_object_get(root, "duration");
        const json_t *usage = json_object_get(root, "usage");
        const char *type = adapt_jstr(usage, "type");

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

        res->text = xstrdup(adapt_jstr(root, "text"));
        res->units = stt_seconds(root);
        res->unit = "second";
        if (!json_is_object(usage))
                return;
        res->usage_json = adapt_jdump(usage, JSON_COMPACT);
        res->input_tokens = adapt_jint(usage, "input_tokens");
        res->output_tokens = adapt_jint(usage, "output_tokens");
}

static enum outcome stt_ok(const Genq__V1__Job *job,
                           const struct provider_resp *resp,
                           struct provider_result *res,
                           struct provider_err *err, adapt_error_fn *error)
{
        json_t *root = adapt_ok_json(resp);
        const json_t *e;
        int is_err;

        if (!root)
                return provider_classify_generic(resp, err);
        if (!json_is_string(json_object_get(root, "text"))) {
                e = json_object_get(root, "error");
                is_err = (e && !json_is_null(e)) ||
                         json_is_integer(json_object_get(root, "code"));
                json_decref(root);
                if (is_err)
                        return error(resp, err);
                return adapt_fail(err, OUTCOME_RETRY_LATER,
                                  "%ld: no text in the response",
                                  resp->status);
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
        return adapt_parse(job, resp, res, err, stt_ok, parse_error);
}

static enum outcome tts_parse(const struct provider_cfg *p,
                              const Genq__V1__Job *job,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err)
{
        return adapt_parse(job, resp, res, err, adapt_speech_ok, parse_error);
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
