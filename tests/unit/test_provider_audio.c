/*
 * Unit tests for the audio adapters: worker/provider_openai_audio.c
 * (openai_transcriptions, openai_speech), provider_assemblyai.c,
 * provider_gladia.c and provider_elevenlabs.c.  Every build() field by
 * field, parse() of the reference's sample bodies (verbatim where it gives
 * them), one classification case per section-12 row of these providers,
 * each async lifecycle state and the binary-or-JSON branching.  No
 * network: responses are made by hand.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider.h"

/* Not in provider.h yet (see provider_openai_audio.c). */
double provider_openai_audio_wav_seconds(const void *data, size_t len);

#define NO_HINT (-2) /* a row that does not check retry_after_ms */

/*
 * Fixtures.
 */

struct tjob {
        Genq__V1__Job job;
        Genq__V1__SttRequest stt;
        Genq__V1__TtsRequest tts;
};

static void stt_init(struct tjob *t, const char *url, const char *lang,
                     const char *model)
{
        genq__v1__job__init(&t->job);
        genq__v1__stt_request__init(&t->stt);
        t->stt.audio_url = (char *)url;
        t->stt.language = (char *)lang;
        t->stt.model = (char *)model;
        t->job.kind = GENQ__V1__KIND__KIND_STT;
        t->job.payload_case = GENQ__V1__JOB__PAYLOAD_STT;
        t->job.stt = &t->stt;
}

static void tts_init(struct tjob *t, const char *text, const char *voice,
                     const char *model)
{
        genq__v1__job__init(&t->job);
        genq__v1__tts_request__init(&t->tts);
        t->tts.text = (char *)text;
        t->tts.voice = (char *)voice;
        t->tts.model = (char *)model;
        t->job.kind = GENQ__V1__KIND__KIND_TTS;
        t->job.payload_case = GENQ__V1__JOB__PAYLOAD_TTS;
        t->job.tts = &t->tts;
}

static struct provider_cfg tcfg(const char *adapter, const char *base,
                                const char *model, const char *voice,
                                const char *extra)
{
        struct provider_cfg p = {
                .name = "audio-test",
                .adapter = adapter,
                .base_url = base,
                .model = model,
                .voice = voice,
                .extra_body = extra,
                .max_body_bytes = 1 << 20,
        };
        return p;
}

static struct provider_resp tresp(long status, const char *ctype,
                                  const char *body)
{
        struct provider_resp r = {
                .status = status,
                .content_type = ctype,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .retry_after_ms = -1,
        };
        return r;
}

static void clear(struct provider_result *res, struct provider_err *err)
{
        memset(res, 0, sizeof(*res));
        provider_result_clear(res);
        memset(err, 0, sizeof(*err));
        err->retry_after_ms = -1;
}

/** A WAV header + \p secs seconds of 8 kHz 16-bit mono (like the fake's
 *  tone media); \p extra inserts a LIST chunk before the data. */
static unsigned char *make_wav(int secs, int extra, size_t *lenp)
{
        uint32_t n = (uint32_t)secs * 16000, rate = 8000, br = 16000;
        size_t off = 36, len = 44 + n + (extra ? 12 : 0);
        unsigned char *b = calloc(1, len);

        memcpy(b, "RIFF", 4);
        memcpy(b + 8, "WAVEfmt ", 8);
        b[16] = 16;
        b[20] = 1;
        b[22] = 1;
        memcpy(b + 24, &rate, 4); /* little-endian host assumed */
        memcpy(b + 28, &br, 4);
        b[32] = 2;
        b[34] = 16;
        if (extra) {
                memcpy(b + 36, "LIST", 4);
                b[40] = 4;
                off += 12;
        }
        memcpy(b + off, "data", 4);
        memcpy(b + off + 4, &n, 4);
        *lenp = len;
        return b;
}

static const struct provider_part *part(const struct provider_req *req,
                                        const char *name)
{
        for (size_t i = 0; i < req->n_parts; i++)
                if (!strcmp(req->parts[i].name, name))
                        return &req->parts[i];
        return NULL;
}

static const char *part_str(const struct provider_req *req, const char *name)
{
        const struct provider_part *pt = part(req, name);

        return pt ? pt->data : NULL;
}

static json_t *body_json(const struct provider_req *req)
{
        json_t *j;

        ck_assert_ptr_nonnull(req->body);
        ck_assert_uint_eq(req->body_len, strlen(req->body));
        j = json_loads(req->body, 0, NULL);
        ck_assert_ptr_nonnull(j);
        return j;
}

static const char *jget(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static size_t n_headers(const struct provider_req *req)
{
        size_t n = 0;

        while (req->headers && req->headers[n])
                n++;
        return n;
}

/*
 * openai_transcriptions: build()
 */

START_TEST(test_stt_build_whisper)
{
        struct provider_cfg p = tcfg("openai_transcriptions",
                                     "https://api.openai.com/v1/",
                                     "gpt-4o-transcribe", NULL, NULL);
        unsigned char *wav;
        struct provider_input in;
        struct provider_req req;
        char errstr[256];
        struct tjob t;
        size_t len;

        wav = make_wav(3, 0, &len);
        in = (struct provider_input){(const char *)wav, len, "audio/wav",
                                     "tone-3s.wav"};
        stt_init(&t, "http://x/tone-3s.wav", "en", "whisper-1");
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "sk-test-123",
                                                       &t.job, &in, &req,
                                                       errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url,
                         "https://api.openai.com/v1/audio/transcriptions");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 2);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-test-123");
        ck_assert_str_eq(req.headers[1], "Accept: application/json");
        ck_assert_ptr_null(req.body);
        ck_assert_uint_eq(req.n_parts, 4);
        ck_assert_str_eq(req.parts[0].name, "file");
        ck_assert_uint_eq(req.parts[0].len, len);
        ck_assert_mem_eq(req.parts[0].data, wav, len);
        ck_assert_str_eq(req.parts[0].filename, "tone-3s.wav");
        ck_assert_str_eq(req.parts[0].content_type, "audio/wav");
        ck_assert_str_eq(req.parts[1].name, "model");
        ck_assert_str_eq(req.parts[1].data, "whisper-1");
        ck_assert_ptr_null(req.parts[1].filename);
        ck_assert_str_eq(req.parts[2].name, "language");
        ck_assert_str_eq(req.parts[2].data, "en");
        ck_assert_str_eq(req.parts[3].name, "response_format");
        ck_assert_str_eq(req.parts[3].data, "verbose_json");
        provider_req_clear(&req);
        free(wav);
}
END_TEST

START_TEST(test_stt_build_default_model_json)
{
        struct provider_cfg p = tcfg("openai_transcriptions",
                                     "https://api.siliconflow.cn/v1",
                                     "FunAudioLLM/SenseVoiceSmall", NULL,
                                     NULL);
        struct provider_input in = {"ID3abc", 6, "audio/mpeg", "a.mp3"};
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        stt_init(&t, "http://x/a.mp3", "", "");
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k", &t.job, &in,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url,
                         "https://api.siliconflow.cn/v1/audio/transcriptions");
        ck_assert_uint_eq(req.n_parts, 3);
        ck_assert_str_eq(part_str(&req, "model"),
                         "FunAudioLLM/SenseVoiceSmall");
        ck_assert_ptr_null(part(&req, "language"));
        ck_assert_str_eq(part_str(&req, "response_format"), "json");
        provider_req_clear(&req);
}
END_TEST

/* File names: query cut, extension from the content type, defaults. */
static const struct {
        const char *filename, *ctype, *want_name, *want_type;
} fname_rows[] = {
        {"x.wav?sig=1&e=2", "audio/wav", "x.wav", "audio/wav"},
        {"clip", "Audio/MPEG; charset=binary", "clip.mp3", "audio/mpeg"},
        {"", "audio/x-wav", "audio.wav", "audio/x-wav"},
        {NULL, NULL, "audio", "application/octet-stream"},
        {"talk.m4a", "application/octet-stream", "talk.m4a",
         "application/octet-stream"},
};

START_TEST(test_stt_build_filename)
{
        struct provider_cfg p = tcfg("openai_transcriptions", "https://x/v1",
                                     "whisper-1", NULL, NULL);
        struct provider_input in = {"abc", 3, fname_rows[_i].ctype,
                                    fname_rows[_i].filename};
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        stt_init(&t, "http://x/a", "", "");
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k", &t.job, &in,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.parts[0].filename, fname_rows[_i].want_name);
        ck_assert_str_eq(req.parts[0].content_type, fname_rows[_i].want_type);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_stt_build_extra_fields)
{
        struct provider_cfg p = tcfg(
                "openai_transcriptions", "https://x/v1", "whisper-1", NULL,
                "{\"temperature\":0,\"prompt\":\"names: Zoë\",\"model\":\"x\","
                "\"timestamp_granularities\":[\"word\"],\"skip\":null}");
        struct provider_input in = {"abc", 3, "audio/wav", "a.wav"};
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        stt_init(&t, "http://x/a.wav", "", "");
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k", &t.job, &in,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_uint_eq(req.n_parts, 6);
        ck_assert_str_eq(part_str(&req, "model"), "whisper-1");
        ck_assert_str_eq(part_str(&req, "temperature"), "0");
        ck_assert_str_eq(part_str(&req, "prompt"), "names: Zoë");
        ck_assert_str_eq(part_str(&req, "timestamp_granularities"),
                         "[\"word\"]");
        ck_assert_ptr_null(part(&req, "skip"));
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_stt_build_refusals)
{
        struct provider_cfg p = tcfg("openai_transcriptions", "https://x/v1",
                                     NULL, NULL, NULL);
        struct provider_input in = {"abc", 3, "audio/wav", "a.wav"};
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        stt_init(&t, "http://x/a.wav", "", "");
        /* no model anywhere */
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k", &t.job, &in,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_nonnull(strstr(errstr, "no model"));
        p.model = "whisper-1";
        /* no input */
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_nonnull(strstr(errstr, "input"));
        /* a tts job */
        tts_init(&t, "hi", "alloy", "");
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k", &t.job, &in,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        stt_init(&t, "http://x/a.wav", "", "");
        /* key with a newline; the request is left empty */
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k\r\nX: y",
                                                       &t.job, &in, &req,
                                                       errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_null(req.headers);
        ck_assert_uint_eq(req.n_parts, 0);
        /* broken extra_body */
        p.extra_body = "[1]";
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k", &t.job, &in,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_nonnull(strstr(errstr, "extra_body"));
        ck_assert_uint_eq(req.n_parts, 0);
        /* no base_url */
        p.extra_body = NULL;
        p.base_url = "";
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, "k", &t.job, &in,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
}
END_TEST

START_TEST(test_stt_build_no_key)
{
        struct provider_cfg p = tcfg("openai_transcriptions", "http://l/v1",
                                     "whisper-1", NULL, NULL);
        struct provider_input in = {"abc", 3, "audio/wav", "a.wav"};
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        stt_init(&t, "http://x/a.wav", "", "");
        ck_assert_int_eq(provider_openai_stt_ops.build(&p, NULL, &t.job, &in,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_uint_eq(n_headers(&req), 1);
        ck_assert_str_eq(req.headers[0], "Accept: application/json");
        provider_req_clear(&req);
}
END_TEST

/*
 * openai_transcriptions: parse() and the WAV reader
 */

static enum outcome stt_parse(const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err)
{
        struct provider_cfg p = tcfg("openai_transcriptions", "https://x/v1",
                                     "whisper-1", NULL, NULL);
        struct tjob t;

        stt_init(&t, "http://x/a.wav", "", "");
        clear(res, err);
        return provider_openai_stt_ops.parse(&p, &t.job, resp, res, err);
}

START_TEST(test_stt_parse_reference_json)
{
        struct provider_resp resp = tresp(200, "application/json",
                                          "{\"text\": \"Hello world.\"}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(stt_parse(&resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Hello world.");
        ck_assert_double_eq(res.units, -1);
        ck_assert_str_eq(res.unit, "second");
        ck_assert_ptr_null(res.usage_json);
        ck_assert_int_eq(res.input_tokens, -1);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_stt_parse_verbose_json)
{
        struct provider_resp resp = tresp(
                200, "application/json",
                "{\"task\":\"transcribe\",\"language\":\"english\","
                "\"duration\":3.0,\"text\":\"fake transcript of 3.0 "
                "seconds\",\"segments\":[{\"id\":0,\"start\":0.0,\"end\":3.0,"
                "\"text\":\"fake\"}],\"usage\":{\"type\":\"duration\","
                "\"seconds\":3}}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(stt_parse(&resp, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "fake transcript of 3.0 seconds");
        ck_assert_double_eq(res.units, 3.0);
        ck_assert_str_eq(res.usage_json,
                         "{\"type\":\"duration\",\"seconds\":3}");
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_stt_parse_usage)
{
        struct provider_resp d = tresp(
                200, "application/json",
                "{\"text\":\"a\",\"usage\":{\"type\":\"duration\","
                "\"seconds\":4}}");
        struct provider_resp tk = tresp(
                200, "application/json; charset=utf-8",
                "{\"text\":\"a b\",\"usage\":{\"type\":\"tokens\","
                "\"input_tokens\":30,\"output_tokens\":2,\"total_tokens\":32}"
                "}");
        struct provider_resp sf = tresp(
                200, "application/json",
                "{\"text\": \"\xe8\xbd\xac\xe5\x86\x99\xe6\x96\x87\xe6\x9c"
                "\xac\"}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(stt_parse(&d, &res, &err), OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, 4);
        provider_result_clear(&res);
        ck_assert_int_eq(stt_parse(&tk, &res, &err), OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, -1);
        ck_assert_int_eq(res.input_tokens, 30);
        ck_assert_int_eq(res.output_tokens, 2);
        provider_result_clear(&res);
        ck_assert_int_eq(stt_parse(&sf, &res, &err), OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "\xe8\xbd\xac\xe5\x86\x99\xe6\x96\x87"
                                   "\xe6\x9c\xac");
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_stt_parse_bad_2xx)
{
        struct provider_resp notjson = tresp(200, "text/plain", "hello\n");
        struct provider_resp notext = tresp(200, "application/json",
                                            "{\"duration\":3}");
        struct provider_resp trunc = tresp(200, "application/json",
                                           "{\"text\":\"Hel");
        struct provider_result res;
        struct provider_err err;

        trunc.truncated = 1;
        ck_assert_int_eq(stt_parse(&notjson, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_int_eq(stt_parse(&notext, &res, &err), OUTCOME_RETRY_LATER);
        ck_assert_ptr_nonnull(strstr(err.errstr, "no text"));
        ck_assert_int_eq(stt_parse(&trunc, &res, &err), OUTCOME_RETRY_LATER);
        ck_assert_ptr_nonnull(strstr(err.errstr, "truncated"));
        ck_assert_ptr_null(res.text);
}
END_TEST

START_TEST(test_wav_seconds)
{
        size_t len;
        unsigned char *w = make_wav(3, 0, &len);

        ck_assert_double_eq(provider_openai_audio_wav_seconds(w, len), 3.0);
        /* a streamed file whose data size is larger than what is there */
        ck_assert_double_eq(provider_openai_audio_wav_seconds(w, 44 + 8000),
                            0.5);
        ck_assert_double_eq(provider_openai_audio_wav_seconds(w, 20), -1);
        ck_assert_double_eq(provider_openai_audio_wav_seconds("ID3xxxxxxxxxx",
                                                              13),
                            -1);
        ck_assert_double_eq(provider_openai_audio_wav_seconds(NULL, 0), -1);
        free(w);
        w = make_wav(2, 1, &len);
        ck_assert_double_eq(provider_openai_audio_wav_seconds(w, len), 2.0);
        free(w);
}
END_TEST

/*
 * openai_speech
 */

START_TEST(test_tts_build_fields)
{
        struct provider_cfg p = tcfg("openai_speech",
                                     "https://api.openai.com/v1", "tts-1",
                                     "nova", NULL);
        struct provider_req req;
        char errstr[256];
        struct tjob t;
        json_t *b;

        tts_init(&t, "Hello there!", "alloy", "gpt-4o-mini-tts");
        t.tts.format = "opus";
        t.tts.speed_opt_case = GENQ__V1__TTS_REQUEST__SPEED_OPT_SPEED;
        t.tts.speed = 1.25f;
        ck_assert_int_eq(provider_openai_tts_ops.build(&p, "sk-test-123",
                                                       &t.job, NULL, &req,
                                                       errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url, "https://api.openai.com/v1/audio/speech");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 3);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-test-123");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: audio/*, application/json");
        ck_assert_uint_eq(req.n_parts, 0);
        b = body_json(&req);
        ck_assert_uint_eq(json_object_size(b), 5);
        ck_assert_str_eq(jget(b, "model"), "gpt-4o-mini-tts");
        ck_assert_str_eq(jget(b, "input"), "Hello there!");
        ck_assert_str_eq(jget(b, "voice"), "alloy");
        ck_assert_str_eq(jget(b, "response_format"), "opus");
        ck_assert_double_eq(json_real_value(json_object_get(b, "speed")),
                            1.25);
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_tts_build_defaults_and_extra)
{
        struct provider_cfg p = tcfg(
                "openai_speech", "https://api.siliconflow.cn/v1/",
                "FunAudioLLM/CosyVoice2-0.5B",
                "FunAudioLLM/CosyVoice2-0.5B:alex",
                "{\"gain\":0.0,\"sample_rate\":44100,\"voice\":\"x\"}");
        struct provider_req req;
        char errstr[256];
        struct tjob t;
        json_t *b;

        tts_init(&t, "\xe4\xbd\xa0\xe5\xa5\xbd", "", "");
        ck_assert_int_eq(provider_openai_tts_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url, "https://api.siliconflow.cn/v1/audio/speech");
        b = body_json(&req);
        ck_assert_str_eq(jget(b, "model"), "FunAudioLLM/CosyVoice2-0.5B");
        ck_assert_str_eq(jget(b, "voice"), "FunAudioLLM/CosyVoice2-0.5B:alex");
        ck_assert_str_eq(jget(b, "response_format"), "mp3");
        ck_assert_ptr_null(json_object_get(b, "speed"));
        ck_assert_int_eq(json_integer_value(json_object_get(b, "sample_rate")),
                         44100);
        ck_assert(json_is_real(json_object_get(b, "gain")));
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_tts_build_refusals)
{
        struct provider_cfg p = tcfg("openai_speech", "https://x/v1", "tts-1",
                                     NULL, NULL);
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        tts_init(&t, "hi", "", "");
        ck_assert_int_eq(provider_openai_tts_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_nonnull(strstr(errstr, "no voice"));
        tts_init(&t, "", "alloy", "");
        ck_assert_int_eq(provider_openai_tts_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        stt_init(&t, "http://x", "", "");
        ck_assert_int_eq(provider_openai_tts_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        tts_init(&t, "bad \xff utf-8", "alloy", "");
        ck_assert_int_eq(provider_openai_tts_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_null(req.body);
}
END_TEST

static enum outcome tts_parse(const struct provider_ops *ops,
                              const char *text,
                              const struct provider_resp *resp,
                              struct provider_result *res,
                              struct provider_err *err)
{
        struct provider_cfg p = tcfg(ops->name, "https://x", "m", "v", NULL);
        struct tjob t;

        tts_init(&t, text, "", "");
        clear(res, err);
        return ops->parse(&p, &t.job, resp, res, err);
}

/* Binary success, both adapters; units are UTF-8 code points. */
static const struct {
        const struct provider_ops *ops;
        const char *ctype, *want_type, *text;
        double chars;
} bin_rows[] = {
        {&provider_openai_tts_ops, "audio/mpeg", "audio/mpeg", "Hello there!",
         12},
        {&provider_openai_tts_ops, "application/octet-stream",
         "application/octet-stream",
         "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe6\xac\xa2\xe8\xbf\x8e\xe4"
         "\xbd\xbf\xe7\x94\xa8\xe3\x80\x82",
         8},
        {&provider_openai_tts_ops, "Audio/Opus; codecs=opus", "audio/opus",
         "h\xc3\xa9llo", 5},
        {&provider_elevenlabs_ops, "audio/mpeg", "audio/mpeg", "Hello there!",
         12},
        {&provider_elevenlabs_ops, "application/octet-stream",
         "application/octet-stream", "\xf0\x9f\x99\x82 ok", 4},
};

START_TEST(test_tts_parse_binary)
{
        static const char bytes[] = "ID3\x04\x00\x00\xff\xfb\x90\x00";
        struct provider_resp resp = tresp(200, bin_rows[_i].ctype, NULL);
        struct provider_result res;
        struct provider_err err;

        resp.body = bytes;
        resp.body_len = sizeof(bytes) - 1;
        ck_assert_int_eq(tts_parse(bin_rows[_i].ops, bin_rows[_i].text, &resp,
                                   &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.data_len, sizeof(bytes) - 1);
        ck_assert_mem_eq(res.data, bytes, sizeof(bytes) - 1);
        ck_assert_str_eq(res.content_type, bin_rows[_i].want_type);
        ck_assert_double_eq(res.units, bin_rows[_i].chars);
        ck_assert_str_eq(res.unit, "character");
        ck_assert_ptr_null(res.text);
        provider_result_clear(&res);
}
END_TEST

/* A 2xx that is not audio. */
static const struct {
        const struct provider_ops *ops;
        const char *ctype, *body;
        int truncated;
        enum outcome want;
        const char *want_err;
} notaudio_rows[] = {
        {&provider_openai_tts_ops, "application/json",
         "{\"error\":{\"message\":\"You exceeded your current quota\","
         "\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}",
         0, OUTCOME_QUOTA_EXHAUSTED, "200 insufficient_quota"},
        {&provider_openai_tts_ops, "application/json",
         "{\"error\":{\"message\":\"oops\",\"type\":\"server_error\"}}", 0,
         OUTCOME_RETRY_LATER, "oops"},
        {&provider_openai_tts_ops, "text/html", "<html>hi</html>", 0,
         OUTCOME_RETRY_LATER, "text/html"},
        {&provider_openai_tts_ops, NULL, "xx", 0, OUTCOME_RETRY_LATER,
         "content type"},
        {&provider_openai_tts_ops, "audio/mpeg", "", 0, OUTCOME_RETRY_LATER,
         "empty"},
        {&provider_openai_tts_ops, "audio/mpeg", "ID3", 1,
         OUTCOME_RETRY_LATER, "truncated"},
        {&provider_elevenlabs_ops, "application/json",
         "{\"detail\":{\"status\":\"quota_exceeded\",\"message\":\"no\"}}",
         0, OUTCOME_QUOTA_EXHAUSTED, "quota_exceeded"},
        {&provider_elevenlabs_ops, "text/plain", "ok", 0,
         OUTCOME_RETRY_LATER, "text/plain"},
        {&provider_elevenlabs_ops, "audio/mpeg", "", 0, OUTCOME_RETRY_LATER,
         "empty"},
};

START_TEST(test_tts_parse_not_audio)
{
        struct provider_resp resp = tresp(200, notaudio_rows[_i].ctype,
                                          notaudio_rows[_i].body);
        struct provider_result res;
        struct provider_err err;
        enum outcome o;

        resp.truncated = notaudio_rows[_i].truncated;
        o = tts_parse(notaudio_rows[_i].ops, "hi", &resp, &res, &err);
        ck_assert_msg(o == notaudio_rows[_i].want, "row %d: got %s (%s)",
                      _i, outcome_name(o), err.errstr);
        ck_assert_msg(strstr(err.errstr, notaudio_rows[_i].want_err),
                      "row %d: errstr \"%s\"", _i, err.errstr);
        ck_assert_ptr_null(res.data);
}
END_TEST

/*
 * assemblyai
 */

START_TEST(test_aai_build)
{
        struct provider_cfg p = tcfg("assemblyai",
                                     "https://api.assemblyai.com/", NULL,
                                     NULL, "{\"speaker_labels\":false}");
        struct provider_req req;
        char errstr[256];
        struct tjob t;
        json_t *b;

        stt_init(&t, "https://cdn.example.com/a.mp3", "en", "best");
        ck_assert_int_eq(provider_assemblyai_ops.build(&p, "aai-key-1",
                                                       &t.job, NULL, &req,
                                                       errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url, "https://api.assemblyai.com/v2/transcript");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 3);
        ck_assert_str_eq(req.headers[0], "Authorization: aai-key-1");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        b = body_json(&req);
        ck_assert_uint_eq(json_object_size(b), 4);
        ck_assert_str_eq(jget(b, "audio_url"), "https://cdn.example.com/a.mp3");
        ck_assert_str_eq(jget(b, "language_code"), "en");
        ck_assert_str_eq(jget(b, "speech_model"), "best");
        ck_assert(json_is_false(json_object_get(b, "speaker_labels")));
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_aai_build_model_mapping)
{
        struct provider_cfg p = tcfg("assemblyai", "https://a", NULL, NULL,
                                     NULL);
        struct provider_req req;
        char errstr[256];
        struct tjob t;
        json_t *b;

        /* a hint for another provider is not forwarded */
        stt_init(&t, "https://x/a.wav", "", "whisper-1");
        ck_assert_int_eq(provider_assemblyai_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        b = body_json(&req);
        ck_assert_uint_eq(json_object_size(b), 1);
        json_decref(b);
        provider_req_clear(&req);
        p.model = "nano";
        ck_assert_int_eq(provider_assemblyai_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        b = body_json(&req);
        ck_assert_str_eq(jget(b, "speech_model"), "nano");
        json_decref(b);
        provider_req_clear(&req);
        stt_init(&t, "", "", "");
        ck_assert_int_eq(provider_assemblyai_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
}
END_TEST

START_TEST(test_aai_build_poll)
{
        struct provider_cfg p = tcfg("assemblyai", "https://api.assemblyai.com",
                                     NULL, NULL, NULL);
        struct provider_req req;
        char errstr[256];

        ck_assert_int_eq(provider_assemblyai_ops.build_poll(
                                 &p, "aai-key-1",
                                 "5551722-f677-48a6-9287-39c0aafd9ac1", &req,
                                 errstr, sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url, "https://api.assemblyai.com/v2/transcript/"
                                  "5551722-f677-48a6-9287-39c0aafd9ac1");
        ck_assert_str_eq(req.method, "GET");
        ck_assert_uint_eq(n_headers(&req), 2);
        ck_assert_str_eq(req.headers[0], "Authorization: aai-key-1");
        ck_assert_str_eq(req.headers[1], "Accept: application/json");
        ck_assert_ptr_null(req.body);
        provider_req_clear(&req);
        ck_assert_int_eq(provider_assemblyai_ops.build_poll(
                                 &p, "k", "../admin", &req, errstr,
                                 sizeof(errstr)),
                         -1);
        ck_assert_int_eq(provider_assemblyai_ops.build_poll(
                                 &p, "k", "", &req, errstr, sizeof(errstr)),
                         -1);
}
END_TEST

/* The reference's transcript sample, verbatim, in a given status. */
#define AAI_COMPLETED                                                         \
        "{\n  \"id\": \"5551722-f677-48a6-9287-39c0aafd9ac1\",\n  "           \
        "\"status\": \"completed\",\n  \"audio_url\": "                       \
        "\"https://cdn.assemblyai.com/upload/7f3e0d2a-...\",\n  \"text\": "   \
        "\"You know demons on TV like that ...\",\n  \"words\": [{\"text\": " \
        "\"You\", \"start\": 250, \"end\": 650, \"confidence\": 0.97, "       \
        "\"speaker\": null}],\n  \"confidence\": 0.956,\n  "                  \
        "\"audio_duration\": 12.096,\n  \"language_code\": \"en_us\",\n  "    \
        "\"error\": null\n}"

static enum outcome run(const struct provider_ops *ops, int poll,
                        const struct provider_resp *resp,
                        struct provider_result *res,
                        struct provider_err *err)
{
        struct provider_cfg p = tcfg(ops->name, "https://x", NULL, NULL,
                                     NULL);
        struct tjob t;

        stt_init(&t, "https://x/a.wav", "", "");
        clear(res, err);
        return poll ? ops->parse_poll(&p, &t.job, resp, res, err)
                    : ops->parse(&p, &t.job, resp, res, err);
}

START_TEST(test_aai_submit)
{
        struct provider_resp ok = tresp(
                200, "application/json",
                "{\"id\":\"5551722-f677-48a6-9287-39c0aafd9ac1\",\"status\":"
                "\"queued\",\"audio_url\":\"https://x/a.wav\",\"text\":null,"
                "\"audio_duration\":null,\"error\":null}");
        struct provider_resp noid = tresp(200, "application/json",
                                          "{\"status\":\"queued\"}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_assemblyai_ops, 0, &ok, &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.task_id, "5551722-f677-48a6-9287-39c0aafd9ac1");
        ck_assert_ptr_null(res.text);
        provider_result_clear(&res);
        ck_assert_int_eq(run(&provider_assemblyai_ops, 0, &noid, &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.task_id);
}
END_TEST

START_TEST(test_aai_poll_completed)
{
        struct provider_resp resp = tresp(200, "application/json",
                                          AAI_COMPLETED);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_assemblyai_ops, 1, &resp, &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "You know demons on TV like that ...");
        ck_assert_double_eq_tol(res.units, 12.096, 1e-9);
        ck_assert_str_eq(res.unit, "second");
        ck_assert_ptr_null(res.task_id);
        provider_result_clear(&res);
}
END_TEST

/*
 * gladia
 */

START_TEST(test_gladia_build)
{
        struct provider_cfg p = tcfg("gladia", "https://api.gladia.io/",
                                     "ignored", NULL,
                                     "{\"diarization\":false,"
                                     "\"audio_url\":\"x\"}");
        struct provider_req req;
        char errstr[256];
        struct tjob t;
        json_t *b, *lc;

        stt_init(&t, "https://api.gladia.io/file/6c09400e", "fr", "whisper-1");
        ck_assert_int_eq(provider_gladia_ops.build(&p, "gl-key", &t.job, NULL,
                                                   &req, errstr,
                                                   sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url, "https://api.gladia.io/v2/pre-recorded");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 3);
        ck_assert_str_eq(req.headers[0], "x-gladia-key: gl-key");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        b = body_json(&req);
        ck_assert_uint_eq(json_object_size(b), 3);
        ck_assert_str_eq(jget(b, "audio_url"),
                         "https://api.gladia.io/file/6c09400e");
        lc = json_object_get(b, "language_config");
        ck_assert_uint_eq(json_array_size(json_object_get(lc, "languages")),
                          1);
        ck_assert_str_eq(json_string_value(json_array_get(
                                 json_object_get(lc, "languages"), 0)),
                         "fr");
        ck_assert(json_is_false(json_object_get(lc, "code_switching")));
        ck_assert(json_is_false(json_object_get(b, "diarization")));
        json_decref(b);
        provider_req_clear(&req);
        stt_init(&t, "https://x/a.wav", "", "");
        ck_assert_int_eq(provider_gladia_ops.build(&p, "gl-key", &t.job, NULL,
                                                   &req, errstr,
                                                   sizeof(errstr)),
                         0);
        b = body_json(&req);
        ck_assert_uint_eq(json_array_size(json_object_get(
                                  json_object_get(b, "language_config"),
                                  "languages")),
                          0);
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_gladia_build_poll)
{
        struct provider_cfg p = tcfg("gladia", "https://api.gladia.io", NULL,
                                     NULL, NULL);
        struct provider_req req;
        char errstr[256];

        ck_assert_int_eq(provider_gladia_ops.build_poll(
                                 &p, "gl-key",
                                 "45463597-20b7-4af7-b3b3-f5fb778203ab", &req,
                                 errstr, sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url, "https://api.gladia.io/v2/pre-recorded/"
                                  "45463597-20b7-4af7-b3b3-f5fb778203ab");
        ck_assert_str_eq(req.method, "GET");
        ck_assert_uint_eq(n_headers(&req), 2);
        ck_assert_str_eq(req.headers[0], "x-gladia-key: gl-key");
        provider_req_clear(&req);
        ck_assert_int_eq(provider_gladia_ops.build_poll(
                                 &p, "k", "a/b", &req, errstr,
                                 sizeof(errstr)),
                         -1);
}
END_TEST

#define GLADIA_DONE                                                           \
        "{\n  \"id\": \"45463597-20b7-4af7-b3b3-f5fb778203ab\",\n  "          \
        "\"request_id\": \"G-45463597\",\n  \"version\": 2,\n  \"status\": "  \
        "\"done\",\n  \"kind\": \"pre-recorded\",\n  \"created_at\": "        \
        "\"2023-12-28T09:04:17.210Z\",\n  \"completed_at\": "                 \
        "\"2023-12-28T09:04:37.210Z\",\n  \"custom_metadata\": {},\n  "       \
        "\"error_code\": null,\n  \"file\": {\"id\": \"6c09400e-...\", "      \
        "\"filename\": \"short.wav\", \"source\": null,\n           "         \
        "\"audio_duration\": 4.145782, \"number_of_channels\": 1},\n  "       \
        "\"request_params\": {\"audio_url\": "                                \
        "\"https://api.gladia.io/file/6c09400e-...\", \"diarization\": "      \
        "false},\n  \"result\": {\n    \"metadata\": {\"audio_duration\": "   \
        "4.145782, \"number_of_distinct_channels\": 1,\n                 "    \
        "\"billing_time\": 4.145782, \"transcription_time\": 3.2},\n    "     \
        "\"transcription\": {\"full_transcript\": \"Split infinity in a "     \
        "time when ...\", \"languages\": [\"en\"],\n                      "   \
        "\"utterances\": [{\"start\": 0.2, \"end\": 4.0, \"text\": \"Split "  \
        "infinity ...\",\n                                      "             \
        "\"language\": \"en\", \"channel\": 0, \"confidence\": 0.93, "        \
        "\"words\": []}]}\n  }\n}"

START_TEST(test_gladia_submit_and_done)
{
        struct provider_resp sub = tresp(
                201, "application/json",
                "{\"id\": \"45463597-20b7-4af7-b3b3-f5fb778203ab\",\n"
                "\"result_url\": \"https://api.gladia.io/v2/pre-recorded/"
                "45463597-20b7-4af7-b3b3-f5fb778203ab\"}");
        struct provider_resp done = tresp(200, "application/json",
                                          GLADIA_DONE);
        struct provider_resp meta = tresp(
                200, "application/json",
                "{\"status\":\"done\",\"file\":null,\"result\":{\"metadata\":"
                "{\"audio_duration\":7.5},\"transcription\":{"
                "\"full_transcript\":\"\"}}}");
        struct provider_resp none = tresp(
                200, "application/json",
                "{\"status\":\"done\",\"result\":{\"transcription\":{"
                "\"full_transcript\":\"x\"}}}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_gladia_ops, 0, &sub, &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.task_id, "45463597-20b7-4af7-b3b3-f5fb778203ab");
        provider_result_clear(&res);
        ck_assert_int_eq(run(&provider_gladia_ops, 1, &done, &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "Split infinity in a time when ...");
        ck_assert_double_eq_tol(res.units, 4.145782, 1e-9);
        ck_assert_str_eq(res.unit, "second");
        provider_result_clear(&res);
        ck_assert_int_eq(run(&provider_gladia_ops, 1, &meta, &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, "");
        ck_assert_double_eq(res.units, 7.5);
        provider_result_clear(&res);
        ck_assert_int_eq(run(&provider_gladia_ops, 1, &none, &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, -1);
        provider_result_clear(&res);
}
END_TEST

/*
 * elevenlabs
 */

START_TEST(test_el_build)
{
        struct provider_cfg p = tcfg(
                "elevenlabs", "https://api.elevenlabs.io/",
                "eleven_multilingual_v2", "21m00Tcm4TlvDq8ikWAM",
                "{\"voice_settings\":{\"stability\":0.5,"
                "\"similarity_boost\":0.75}}");
        struct provider_req req;
        char errstr[256];
        struct tjob t;
        json_t *b;

        tts_init(&t, "Hello there!", "", "");
        ck_assert_int_eq(provider_elevenlabs_ops.build(&p, "el-key", &t.job,
                                                       NULL, &req, errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url,
                         "https://api.elevenlabs.io/v1/text-to-speech/"
                         "21m00Tcm4TlvDq8ikWAM?output_format=mp3_44100_128");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 3);
        ck_assert_str_eq(req.headers[0], "xi-api-key: el-key");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: audio/mpeg");
        b = body_json(&req);
        ck_assert_uint_eq(json_object_size(b), 3);
        ck_assert_str_eq(jget(b, "text"), "Hello there!");
        ck_assert_str_eq(jget(b, "model_id"), "eleven_multilingual_v2");
        ck_assert_double_eq(json_real_value(json_object_get(
                                    json_object_get(b, "voice_settings"),
                                    "stability")),
                            0.5);
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_el_build_job_fields)
{
        struct provider_cfg p = tcfg("elevenlabs", "https://api.elevenlabs.io",
                                     "eleven_multilingual_v2", NULL, NULL);
        struct provider_req req;
        char errstr[256];
        struct tjob t;
        json_t *b;

        tts_init(&t, "hi", "my voice/1", "eleven_turbo_v2_5");
        t.tts.format = "mp3";
        ck_assert_int_eq(provider_elevenlabs_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url,
                         "https://api.elevenlabs.io/v1/text-to-speech/"
                         "my%20voice%2F1?output_format=mp3_44100_128");
        b = body_json(&req);
        ck_assert_str_eq(jget(b, "model_id"), "eleven_turbo_v2_5");
        json_decref(b);
        provider_req_clear(&req);
        /* another provider's hint falls back to the configured model */
        tts_init(&t, "hi", "v1", "tts-1");
        ck_assert_int_eq(provider_elevenlabs_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         0);
        b = body_json(&req);
        ck_assert_str_eq(jget(b, "model_id"), "eleven_multilingual_v2");
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_el_build_refusals)
{
        struct provider_cfg p = tcfg("elevenlabs", "https://api.elevenlabs.io",
                                     NULL, NULL, NULL);
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        tts_init(&t, "hi", "", "");
        ck_assert_int_eq(provider_elevenlabs_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_nonnull(strstr(errstr, "no voice"));
        tts_init(&t, "hi", "v", "");
        t.tts.format = "wav";
        ck_assert_int_eq(provider_elevenlabs_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_nonnull(strstr(errstr, "wav"));
        tts_init(&t, "", "v", "");
        ck_assert_int_eq(provider_elevenlabs_ops.build(&p, "k", &t.job, NULL,
                                                       &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        tts_init(&t, "hi", "v", "");
        ck_assert_int_eq(provider_elevenlabs_ops.build(&p, "k\n", &t.job,
                                                       NULL, &req, errstr,
                                                       sizeof(errstr)),
                         -1);
        ck_assert_ptr_null(req.body);
}
END_TEST

/*
 * Classification: one row per section-12 row of these providers, plus the
 * async lifecycle of the two pollers.
 */

struct row {
        const char *name;
        const struct provider_ops *ops;
        int poll;             /**< parse_poll instead of parse */
        long status;
        const char *ctype;
        const char *body;
        int64_t retry_after_ms;
        enum outcome want;
        int64_t want_hint;    /**< NO_HINT: not checked */
        const char *want_err; /**< substring of errstr, or NULL */
};

#define JSON "application/json"
#define STT (&provider_openai_stt_ops)
#define TTS (&provider_openai_tts_ops)
#define AAI (&provider_assemblyai_ops)
#define GL (&provider_gladia_ops)
#define EL (&provider_elevenlabs_ops)

static const struct row rows[] = {
        /* OpenAI envelope (9.1, 10.1, 1.1) */
        {"openai 400 invalid file format", STT, 0, 400, JSON,
         "{\"error\":{\"message\":\"Invalid file format. Supported formats: "
         "['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', "
         "'wav', 'webm']\",\"type\":\"invalid_request_error\",\"param\":"
         "null,\"code\":null}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT,
         "400 invalid_request_error: Invalid file format"},
        {"openai 413 file too large", STT, 0, 413, JSON,
         "{\"error\":{\"message\":\"Maximum content size limit (26214400) "
         "exceeded (26228340 bytes read)\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":null}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"openai 401 invalid_api_key", TTS, 0, 401, JSON,
         "{\"error\":{\"message\":\"Incorrect API key provided: "
         "sk-abcdefghijklmnop1234. You can find your API key at "
         "https://platform.openai.com/account/api-keys.\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":"
         "\"invalid_api_key\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, "provided: sk-\xe2\x80\xa6. You"},
        {"openai 401 IP not authorized", STT, 0, 401, JSON,
         "{\"error\":{\"message\":\"IP not authorized\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":null}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"openai 403 region", TTS, 0, 403, JSON,
         "{\"error\":{\"message\":\"Country, region, or territory not "
         "supported\",\"type\":\"request_forbidden\",\"param\":null,"
         "\"code\":\"unsupported_country_region_territory\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"openai 404 model_not_found", STT, 0, 404, JSON,
         "{\"error\":{\"message\":\"The model `x` does not exist or you do "
         "not have access to it.\",\"type\":\"invalid_request_error\","
         "\"param\":null,\"code\":\"model_not_found\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"openai 429 insufficient_quota", TTS, 0, 429, JSON,
         "{\n  \"error\": {\n    \"message\": \"You exceeded your current "
         "quota, please check your plan and billing details. For more "
         "information on this error, read the docs: "
         "https://platform.openai.com/docs/guides/error-codes/api-errors."
         "\",\n    \"type\": \"insufficient_quota\",\n    \"param\": null,\n"
         "    \"code\": \"insufficient_quota\"\n  }\n}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"openai 429 billing code", STT, 0, 429, JSON,
         "{\"error\":{\"message\":\"You have no credits remaining.\","
         "\"type\":\"billing\",\"code\":\"credit_balance_exhausted\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"openai 429 rate_limit_exceeded", STT, 0, 429, JSON,
         "{\n  \"error\": {\n    \"message\": \"Rate limit reached for "
         "gpt-4o-mini in organization org-xxxxxxxx on requests per min "
         "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. "
         "Visit https://platform.openai.com/account/rate-limits to learn "
         "more.\",\n    \"type\": \"requests\",\n    \"param\": null,\n"
         "    \"code\": \"rate_limit_exceeded\"\n  }\n}",
         -1, OUTCOME_RETRY_LATER, 20000, NULL},
        {"openai 429 with retry-after", TTS, 0, 429, JSON,
         "{\"error\":{\"message\":\"Rate limit reached\",\"type\":"
         "\"tokens\",\"code\":\"rate_limit_exceeded\"}}",
         1000, OUTCOME_RETRY_LATER, 1000, NULL},
        {"openai 500 server_error", STT, 0, 500, JSON,
         "{\"error\":{\"message\":\"The server had an error while processing "
         "your request. Sorry about that!\",\"type\":\"server_error\","
         "\"param\":null,\"code\":\"server_error\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, "500 server_error/server_error"},
        {"openai 503 overloaded", TTS, 0, 503, JSON,
         "{\"error\":{\"message\":\"The engine is currently overloaded, "
         "please try again later.\",\"type\":\"service_unavailable_error\","
         "\"param\":null,\"code\":\"server_is_overloaded\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"any 502 html", STT, 0, 502, "text/html",
         "<html><body>Bad Gateway</body></html>", -1, OUTCOME_RETRY_LATER,
         NO_HINT, "non-JSON"},
        {"any 403 html (WAF)", TTS, 0, 403, "text/html", "<html>no</html>",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"any 401 html", STT, 0, 401, "text/html", "Unauthorized", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},

        /* SiliconFlow envelope (7.3, 7.4, 1.2) */
        {"siliconflow 400 20012", STT, 0, 400, JSON,
         "{\"code\":20012,\"message\":\"Model does not exist. Please check it "
         "carefully.\",\"data\":null}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, "400 20012: Model does not"},
        {"siliconflow 400 other", TTS, 0, 400, JSON,
         "{\"code\":20015,\"message\":\"invalid voice\",\"data\":null}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"siliconflow 401", STT, 0, 401, JSON,
         "{\"code\":40001,\"message\":\"Invalid token\",\"data\":null}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"siliconflow 403 30011", TTS, 0, 403, JSON,
         "{\"code\":30011,\"message\":\"The selected model requires paid "
         "balance. Your paid balance is insufficient. Please top up and try "
         "again.\",\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"siliconflow 403 30001", STT, 0, 403, JSON,
         "{\"code\":30001,\"message\":\"account balance insufficient\","
         "\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"siliconflow 403 real-name", TTS, 0, 403, JSON,
         "{\"code\":30003,\"message\":\"real-name verification required\","
         "\"data\":null}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"siliconflow 429 TPM", STT, 0, 429, JSON,
         "{\"code\":50603,\"message\":\"Request was rejected due to rate "
         "limiting. Details: TPM limit reached.\",\"data\":null}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"siliconflow 503", TTS, 0, 503, JSON,
         "{\"code\":50505,\"message\":\"Model service overloaded.\","
         "\"data\":null}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"siliconflow 504", STT, 0, 504, JSON,
         "{\"code\":50504,\"message\":\"timeout\",\"data\":null}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* AssemblyAI (9.2): HTTP errors */
        {"assemblyai 400", AAI, 0, 400, JSON,
         "{\"error\": \"Invalid audio_url\"}", -1, OUTCOME_FATAL_JOB,
         NO_HINT, "400: Invalid audio_url"},
        {"assemblyai 401", AAI, 0, 401, JSON,
         "{\"error\": \"Authentication error, API token missing/invalid\"}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"assemblyai 401 balance", AAI, 0, 401, JSON,
         "{\"error\": \"Your account balance is insufficient. Please top up "
         "your account to continue.\"}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"assemblyai 402", AAI, 0, 402, JSON,
         "{\"error\": \"Payment required\"}", -1, OUTCOME_QUOTA_EXHAUSTED,
         NO_HINT, NULL},
        {"assemblyai 403 cross-project upload", AAI, 0, 403, JSON,
         "{\"error\": \"Cannot access uploaded file\"}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"assemblyai 429", AAI, 0, 429, JSON,
         "{\"error\": \"Too many concurrent requests\"}", 2000,
         OUTCOME_RETRY_LATER, 2000, NULL},
        {"assemblyai 500", AAI, 0, 500, JSON,
         "{\"error\": \"Internal server error\"}", -1, OUTCOME_RETRY_LATER,
         NO_HINT, NULL},
        {"assemblyai 404 on submit", AAI, 0, 404, JSON,
         "{\"error\": \"Not found\"}", -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        /* AssemblyAI: polls */
        {"assemblyai poll queued", AAI, 1, 200, JSON,
         "{\"id\":\"t1\",\"status\":\"queued\",\"text\":null,"
         "\"audio_duration\":null}",
         -1, OUTCOME_PENDING, -1, NULL},
        {"assemblyai poll processing", AAI, 1, 200, JSON,
         "{\"id\":\"t1\",\"status\":\"processing\"}", 1500, OUTCOME_PENDING,
         1500, NULL},
        {"assemblyai poll error download", AAI, 1, 200, JSON,
         "{\"id\":\"t1\",\"status\":\"error\",\"error\":\"Download error, "
         "unable to download https://x/a.wav\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "transcript error: Download error"},
        {"assemblyai poll error no audio", AAI, 1, 200, JSON,
         "{\"id\":\"t1\",\"status\":\"error\",\"error\":\"File does not "
         "appear to contain audio\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"assemblyai poll error format", AAI, 1, 200, JSON,
         "{\"id\":\"t1\",\"status\":\"error\",\"error\":\"Unsupported file "
         "format\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"assemblyai poll error server", AAI, 1, 200, JSON,
         "{\"id\":\"t1\",\"status\":\"error\",\"error\":\"Internal server "
         "error\"}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"assemblyai poll unknown status", AAI, 1, 200, JSON,
         "{\"id\":\"t1\",\"status\":\"paused\"}", -1, OUTCOME_FALLBACK_NEXT,
         NO_HINT, "paused"},
        {"assemblyai poll 404 lost task", AAI, 1, 404, JSON,
         "{\"error\": \"Transcript lookup error, transcript id not found\"}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"assemblyai poll 400 lookup error", AAI, 1, 400, JSON,
         "{\"error\": \"Transcript lookup error, transcript id not found\"}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"assemblyai poll 429", AAI, 1, 429, JSON,
         "{\"error\": \"Too many requests\"}", -1, OUTCOME_RETRY_LATER,
         NO_HINT, NULL},
        {"assemblyai poll 503 html", AAI, 1, 503, "text/html", "<html/>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"assemblyai poll malformed 200", AAI, 1, 200, JSON, "{\"status\":",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* Gladia (9.3): HTTP errors */
        {"gladia 401", GL, 0, 401, JSON,
         "{\"timestamp\":\"2024-01-01T00:00:00.000Z\",\"path\":"
         "\"/v2/pre-recorded\",\"request_id\":\"G-1\",\"statusCode\":401,"
         "\"message\":\"Invalid or missing x-gladia-key\"}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, "401: Invalid or missing"},
        {"gladia 402", GL, 0, 402, JSON,
         "{\"statusCode\":402,\"message\":\"usage limit\"}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"gladia 403", GL, 0, 403, JSON,
         "{\"statusCode\":403,\"message\":\"plan\"}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"gladia 429", GL, 0, 429, JSON,
         "{\"statusCode\":429,\"message\":\"Too many\"}", 1000,
         OUTCOME_RETRY_LATER, 1000, NULL},
        {"gladia 400 validation list", GL, 0, 400, JSON,
         "{\"statusCode\":400,\"message\":[\"audio_url must be a URL "
         "address\"]}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "400: audio_url must be"},
        {"gladia 422", GL, 0, 422, JSON,
         "{\"statusCode\":422,\"message\":\"Unprocessable\"}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"gladia 500", GL, 0, 500, JSON,
         "{\"statusCode\":500,\"message\":\"Internal\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"gladia submit without id", GL, 0, 201, JSON, "{}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "no job id"},
        /* Gladia: polls */
        {"gladia poll queued", GL, 1, 200, JSON,
         "{\"id\":\"j\",\"status\":\"queued\",\"result\":null}", -1,
         OUTCOME_PENDING, -1, NULL},
        {"gladia poll processing", GL, 1, 200, JSON,
         "{\"id\":\"j\",\"status\":\"processing\"}", -1, OUTCOME_PENDING, -1,
         NULL},
        {"gladia poll error 4xx", GL, 1, 200, JSON,
         "{\"id\":\"j\",\"status\":\"error\",\"error_code\":422,\"file\":"
         "null,\"result\":null}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "error_code 422"},
        {"gladia poll error 5xx", GL, 1, 200, JSON,
         "{\"id\":\"j\",\"status\":\"error\",\"error_code\":500}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"gladia poll error no code", GL, 1, 200, JSON,
         "{\"id\":\"j\",\"status\":\"error\",\"error_code\":null}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"gladia poll done without transcript", GL, 1, 200, JSON,
         "{\"id\":\"j\",\"status\":\"done\",\"result\":null}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"gladia poll unknown status", GL, 1, 200, JSON,
         "{\"id\":\"j\",\"status\":\"weird\"}", -1, OUTCOME_FALLBACK_NEXT,
         NO_HINT, NULL},
        {"gladia poll 404", GL, 1, 404, JSON,
         "{\"statusCode\":404,\"message\":\"Job not found\"}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"gladia poll 429", GL, 1, 429, JSON,
         "{\"statusCode\":429,\"message\":\"slow\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"gladia poll 502 html", GL, 1, 502, "text/html", "<html/>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* ElevenLabs (10.2) */
        {"elevenlabs 401 quota_exceeded (the trap)", EL, 0, 401, JSON,
         "{\"detail\": {\"status\": \"quota_exceeded\", \"message\": \"This "
         "request exceeds your quota of 10000. You have 0 credits remaining, "
         "while 91 credits are required for this request.\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT,
         "401 quota_exceeded: This request exceeds"},
        {"elevenlabs 401 quota_exceeded (older variant)", EL, 0, 401, JSON,
         "{\"detail\":{\"status\":\"quota_exceeded\",\"message\":\"over\","
         "\"character_used\":10059,\"character_limit\":10000}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"elevenlabs 401 invalid_api_key", EL, 0, 401, JSON,
         "{\"detail\":{\"status\":\"invalid_api_key\",\"message\":\"Invalid "
         "API key\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"elevenlabs 401 detected_unusual_activity", EL, 0, 401, JSON,
         "{\"detail\":{\"status\":\"detected_unusual_activity\",\"message\":"
         "\"Unusual activity detected.\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"elevenlabs 400 voice_not_found", EL, 0, 400, JSON,
         "{\"detail\":{\"status\":\"voice_not_found\",\"message\":\"A voice "
         "with the voice_id x was not found.\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"elevenlabs 409", EL, 0, 409, JSON,
         "{\"detail\":\"Another request is modifying this voice.\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "409: Another request"},
        {"elevenlabs 422 validation", EL, 0, 422, JSON,
         "{\"detail\":[{\"loc\":[\"body\",\"text\"],\"msg\":\"field "
         "required\",\"type\":\"value_error.missing\"}]}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "422 value_error.missing: field"},
        {"elevenlabs 429 too_many_concurrent_requests", EL, 0, 429, JSON,
         "{\"detail\":{\"status\":\"too_many_concurrent_requests\","
         "\"message\":\"Too many concurrent requests. Your current "
         "subscription is associated with a maximum of 2 concurrent requests "
         "(running in parallel).\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"elevenlabs 429 system_busy", EL, 0, 429, JSON,
         "{\"detail\":{\"status\":\"system_busy\",\"message\":\"busy\"}}",
         3000, OUTCOME_RETRY_LATER, 3000, NULL},
        {"elevenlabs 500", EL, 0, 500, JSON,
         "{\"detail\":{\"status\":\"internal_server_error\",\"message\":"
         "\"x\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"elevenlabs 503 html", EL, 0, 503, "text/html", "<html/>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"elevenlabs 401 html", EL, 0, 401, "text/html", "nope", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
};
#define N_ROWS ((int)(sizeof(rows) / sizeof(rows[0])))

START_TEST(test_classify_row)
{
        const struct row *r = &rows[_i];
        struct provider_resp resp = tresp(r->status, r->ctype, r->body);
        struct provider_result res;
        struct provider_err err;
        enum outcome got;

        resp.retry_after_ms = r->retry_after_ms;
        got = r->ops->kind == GENQ__V1__KIND__KIND_TTS
                      ? tts_parse(r->ops, "hi", &resp, &res, &err)
                      : run(r->ops, r->poll, &resp, &res, &err);
        ck_assert_msg(got == r->want, "%s: got %s, want %s (%s)", r->name,
                      outcome_name(got), outcome_name(r->want), err.errstr);
        ck_assert_int_eq(err.outcome, got);
        ck_assert_int_eq(err.http_status, r->status);
        if (got != OUTCOME_PENDING)
                ck_assert_msg(err.errstr[0], "%s: empty errstr", r->name);
        if (r->want_hint != NO_HINT)
                ck_assert_msg(err.retry_after_ms == r->want_hint,
                              "%s: hint %lld, want %lld", r->name,
                              (long long)err.retry_after_ms,
                              (long long)r->want_hint);
        if (r->want_err)
                ck_assert_msg(strstr(err.errstr, r->want_err),
                              "%s: errstr \"%s\" lacks \"%s\"", r->name,
                              err.errstr, r->want_err);
        ck_assert_ptr_null(res.text);
        ck_assert_ptr_null(res.data);
        ck_assert_ptr_null(res.task_id);
}
END_TEST

/* Transport failures are retry_later for every adapter and both calls. */
START_TEST(test_transport_timeout)
{
        static const struct provider_ops *const ops[] = {STT, TTS, AAI, GL,
                                                         EL};
        struct provider_resp resp = tresp(0, NULL, NULL);
        struct provider_result res;
        struct provider_err err;

        resp.transport_err = 28;
        resp.timed_out = 1;
        resp.transport_msg = "Operation timed out after 30000 milliseconds";
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
                ck_assert_int_eq(ops[i]->kind == GENQ__V1__KIND__KIND_TTS
                                         ? tts_parse(ops[i], "hi", &resp,
                                                     &res, &err)
                                         : run(ops[i], 0, &resp, &res, &err),
                                 OUTCOME_RETRY_LATER);
                ck_assert_ptr_nonnull(strstr(err.errstr, "timeout"));
                if (ops[i]->parse_poll)
                        ck_assert_int_eq(run(ops[i], 1, &resp, &res, &err),
                                         OUTCOME_RETRY_LATER);
        }
}
END_TEST

START_TEST(test_registry)
{
        static const struct {
                const char *name;
                const struct provider_ops *ops;
                Genq__V1__Kind kind;
                unsigned flags;
        } want[] = {
                {"openai_transcriptions", STT, GENQ__V1__KIND__KIND_STT,
                 PROVIDER_F_NEEDS_INPUT},
                {"openai_speech", TTS, GENQ__V1__KIND__KIND_TTS, 0},
                {"assemblyai", AAI, GENQ__V1__KIND__KIND_STT,
                 PROVIDER_F_ASYNC},
                {"gladia", GL, GENQ__V1__KIND__KIND_STT, PROVIDER_F_ASYNC},
                {"elevenlabs", EL, GENQ__V1__KIND__KIND_TTS, 0},
        };

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const struct provider_ops *o = provider_ops_find(want[i].name);

                ck_assert_ptr_eq(o, want[i].ops);
                ck_assert_int_eq(o->kind, want[i].kind);
                ck_assert_uint_eq(o->flags, want[i].flags);
                ck_assert_ptr_nonnull(o->build);
                ck_assert_ptr_nonnull(o->parse);
                ck_assert((o->flags & PROVIDER_F_ASYNC) ==
                          (o->build_poll && o->parse_poll ? PROVIDER_F_ASYNC
                                                          : 0));
        }
}
END_TEST

/*
 * Runner
 */

static Suite *audio_suite(void)
{
        Suite *s = suite_create("provider_audio");
        TCase *ts = tcase_create("stt");
        TCase *tt = tcase_create("tts");
        TCase *ta = tcase_create("async");
        TCase *tc = tcase_create("classify");

        tcase_add_test(ts, test_stt_build_whisper);
        tcase_add_test(ts, test_stt_build_default_model_json);
        tcase_add_loop_test(ts, test_stt_build_filename, 0,
                            (int)(sizeof(fname_rows) / sizeof(fname_rows[0])));
        tcase_add_test(ts, test_stt_build_extra_fields);
        tcase_add_test(ts, test_stt_build_refusals);
        tcase_add_test(ts, test_stt_build_no_key);
        tcase_add_test(ts, test_stt_parse_reference_json);
        tcase_add_test(ts, test_stt_parse_verbose_json);
        tcase_add_test(ts, test_stt_parse_usage);
        tcase_add_test(ts, test_stt_parse_bad_2xx);
        tcase_add_test(ts, test_wav_seconds);
        tcase_add_test(tt, test_tts_build_fields);
        tcase_add_test(tt, test_tts_build_defaults_and_extra);
        tcase_add_test(tt, test_tts_build_refusals);
        tcase_add_loop_test(tt, test_tts_parse_binary, 0,
                            (int)(sizeof(bin_rows) / sizeof(bin_rows[0])));
        tcase_add_loop_test(tt, test_tts_parse_not_audio, 0,
                            (int)(sizeof(notaudio_rows) /
                                  sizeof(notaudio_rows[0])));
        tcase_add_test(tt, test_el_build);
        tcase_add_test(tt, test_el_build_job_fields);
        tcase_add_test(tt, test_el_build_refusals);
        tcase_add_test(ta, test_aai_build);
        tcase_add_test(ta, test_aai_build_model_mapping);
        tcase_add_test(ta, test_aai_build_poll);
        tcase_add_test(ta, test_aai_submit);
        tcase_add_test(ta, test_aai_poll_completed);
        tcase_add_test(ta, test_gladia_build);
        tcase_add_test(ta, test_gladia_build_poll);
        tcase_add_test(ta, test_gladia_submit_and_done);
        tcase_add_loop_test(tc, test_classify_row, 0, N_ROWS);
        tcase_add_test(tc, test_transport_timeout);
        tcase_add_test(tc, test_registry);
        suite_add_tcase(s, ts);
        suite_add_tcase(s, tt);
        suite_add_tcase(s, ta);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(audio_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
