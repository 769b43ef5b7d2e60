/*
 * codec: the one place that touches protobuf-c's genq.v1.Job functions.
 *
 * Validation is here, not in the producer or the worker, so both refuse the
 * same things with the same words: a job the producer accepts is one the
 * worker will run, and a hand-made message that skips the producer is
 * judged by the same rules on the way in.
 */
#include "codec.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "xmem.h"

#define MAX_ID_LEN 128
#define MAX_TENANT_LEN 64
#define MAX_ROUTE_LEN 64
#define MAX_PROVIDERS 16
#define MAX_META 32
#define MAX_META_KEY 64
#define MAX_META_VAL 1024
#define MAX_MESSAGES 1024
#define MAX_TTS_CHARS 5000
#define MAX_URLS 16
#define MAX_SCENES 32

static const char *kind_names[] = {
        [GENQ__V1__KIND__KIND_CHAT] = "chat",
        [GENQ__V1__KIND__KIND_IMAGE] = "image",
        [GENQ__V1__KIND__KIND_VIDEO] = "video",
        [GENQ__V1__KIND__KIND_STT] = "stt",
        [GENQ__V1__KIND__KIND_TTS] = "tts",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *codec_err_name(enum codec_err e)
{
        switch (e) {
        case CODEC_OK:
                return "ok";
        case CODEC_EDECODE:
                return "decode";
        case CODEC_ETOOBIG:
                return "too_big";
        case CODEC_EINVALID:
                return "invalid";
        case CODEC_EMISMATCH:
                return "kind_mismatch";
        }
        return "unknown";
}

const char *codec_kind_name(Genq__V1__Kind kind)
{
        if ((unsigned)kind >= N_KINDS)
                return NULL;
        return kind_names[kind];
}

Genq__V1__Kind codec_kind_parse(const char *name)
{
        for (size_t i = 1; i < N_KINDS; i++)
                if (kind_names[i] && name && !strcmp(name, kind_names[i]))
                        return (Genq__V1__Kind)i;
        return GENQ__V1__KIND__KIND_UNSPECIFIED;
}

Genq__V1__Kind codec_kind_of_payload(Genq__V1__Job__PayloadCase pc)
{
        switch (pc) {
        case GENQ__V1__JOB__PAYLOAD_CHAT:
                return GENQ__V1__KIND__KIND_CHAT;
        case GENQ__V1__JOB__PAYLOAD_IMAGE:
                return GENQ__V1__KIND__KIND_IMAGE;
        case GENQ__V1__JOB__PAYLOAD_VIDEO:
                return GENQ__V1__KIND__KIND_VIDEO;
        case GENQ__V1__JOB__PAYLOAD_STT:
                return GENQ__V1__KIND__KIND_STT;
        case GENQ__V1__JOB__PAYLOAD_TTS:
                return GENQ__V1__KIND__KIND_TTS;
        default:
                return GENQ__V1__KIND__KIND_UNSPECIFIED;
        }
}

Genq__V1__Job *codec_job_decode(const void *buf, size_t len,
                                enum codec_err *err, char *errstr,
                                size_t errstr_size)
{
        Genq__V1__Job *job;

        if (len > CODEC_MAX_JOB_BYTES) {
                *err = CODEC_ETOOBIG;
                snprintf(errstr, errstr_size,
                         "message is %zu bytes, over the %d byte limit", len,
                         CODEC_MAX_JOB_BYTES);
                return NULL;
        }
        job = genq__v1__job__unpack(NULL, len, buf);
        if (!job) {
                *err = CODEC_EDECODE;
                snprintf(errstr, errstr_size,
                         "%zu bytes are not a valid genq.v1.Job protobuf",
                         len);
                return NULL;
        }
        *err = CODEC_OK;
        return job;
}

void codec_job_free(Genq__V1__Job *job)
{
        if (job)
                genq__v1__job__free_unpacked(job, NULL);
}

uint8_t *codec_job_encode(const Genq__V1__Job *job, size_t *lenp)
{
        size_t n = genq__v1__job__get_packed_size(job);
        uint8_t *buf = xmalloc(n);

        genq__v1__job__pack(job, buf);
        *lenp = n;
        return buf;
}

uint8_t *codec_event_encode(const Genq__V1__JobEvent *ev, size_t *lenp)
{
        size_t n = genq__v1__job_event__get_packed_size(ev);
        uint8_t *buf = xmalloc(n);

        genq__v1__job_event__pack(ev, buf);
        *lenp = n;
        return buf;
}

Genq__V1__JobEvent *codec_event_decode(const void *buf, size_t len)
{
        if (len > CODEC_MAX_JOB_BYTES)
                return NULL;
        return genq__v1__job_event__unpack(NULL, len, buf);
}

void codec_event_free(Genq__V1__JobEvent *ev)
{
        if (ev)
                genq__v1__job_event__free_unpacked(ev, NULL);
}

/* ---- validation --------------------------------------------------------- */

static enum codec_err bad(char *errstr, size_t errstr_size, const char *fmt,
                          ...) __attribute__((format(printf, 3, 4)));

static enum codec_err bad(char *errstr, size_t errstr_size, const char *fmt,
                          ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return CODEC_EINVALID;
}

/* Identifiers: non-empty, bounded, from a safe alphabet (they end up in
 * logs, Kafka keys and SQL parameters). */
static int id_ok(const char *s, size_t maxlen, const char *extra)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > maxlen)
                return 0;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
                        return 0;
        return 1;
}

static int empty(const char *s)
{
        return !s || !*s;
}

static int http_url_ok(const char *s)
{
        return s && (!strncmp(s, "http://", 7) || !strncmp(s, "https://", 8)) &&
               strlen(s) < 4096;
}

static enum codec_err validate_envelope(const Genq__V1__Job *j, char *e,
                                        size_t es)
{
        if (!id_ok(j->job_id, MAX_ID_LEN, "._:-"))
                return bad(e, es, "job_id must be 1..%d characters of "
                                  "[A-Za-z0-9._:-]", MAX_ID_LEN);
        if (!id_ok(j->tenant_id, MAX_TENANT_LEN, "._-"))
                return bad(e, es, "tenant_id must be 1..%d characters of "
                                  "[A-Za-z0-9._-]", MAX_TENANT_LEN);
        if (j->priority < -100 || j->priority > 100)
                return bad(e, es, "priority %d is outside -100..100",
                           j->priority);
        if (j->created_at_ms < 0 || j->deadline_ms < 0)
                return bad(e, es, "created_at_ms and deadline_ms must not be "
                                  "negative");
        if (!empty(j->route) && !id_ok(j->route, MAX_ROUTE_LEN, "._-"))
                return bad(e, es, "route must be up to %d characters of "
                                  "[A-Za-z0-9._-]", MAX_ROUTE_LEN);
        if (j->n_providers > MAX_PROVIDERS)
                return bad(e, es, "at most %d pinned providers",
                           MAX_PROVIDERS);
        for (size_t i = 0; i < j->n_providers; i++)
                if (!id_ok(j->providers[i], 64, "._-"))
                        return bad(e, es, "providers[%zu] is not a provider "
                                          "name", i);
        if (j->budget_opt_case == GENQ__V1__JOB__BUDGET_OPT_BUDGET_CREDITS &&
            !(j->budget_credits >= 0))
                return bad(e, es, "budget_credits must be >= 0");
        if (!empty(j->callback_url) && !http_url_ok(j->callback_url))
                return bad(e, es, "callback_url must be an http(s) URL");
        if (j->n_metadata > MAX_META)
                return bad(e, es, "at most %d metadata entries", MAX_META);
        for (size_t i = 0; i < j->n_metadata; i++)
                if (empty(j->metadata[i]->key) ||
                    strlen(j->metadata[i]->key) > MAX_META_KEY ||
                    strlen(j->metadata[i]->value) > MAX_META_VAL)
                        return bad(e, es, "metadata entry %zu: key must be "
                                          "1..%d bytes, value up to %d",
                                   i, MAX_META_KEY, MAX_META_VAL);
        return CODEC_OK;
}

static enum codec_err validate_chat(const Genq__V1__ChatRequest *c, char *e,
                                    size_t es)
{
        static const char *roles[] = {"system", "user", "assistant", "tool",
                                      "developer"};

        if (c->n_messages == 0)
                return bad(e, es, "chat.messages must not be empty");
        if (c->n_messages > MAX_MESSAGES)
                return bad(e, es, "chat.messages: at most %d", MAX_MESSAGES);
        for (size_t i = 0; i < c->n_messages; i++) {
                const Genq__V1__ChatMessage *m = c->messages[i];
                size_t r;

                for (r = 0; r < sizeof(roles) / sizeof(roles[0]); r++)
                        if (m->role && !strcmp(m->role, roles[r]))
                                break;
                if (r == sizeof(roles) / sizeof(roles[0]))
                        return bad(e, es, "chat.messages[%zu].role \"%s\" is "
                                          "not system, user, assistant, tool "
                                          "or developer",
                                   i, m->role ? m->role : "");
                if (empty(m->content))
                        return bad(e, es, "chat.messages[%zu].content is "
                                          "empty", i);
        }
        if (c->max_tokens < 0)
                return bad(e, es, "chat.max_tokens must be >= 0");
        if (c->temperature_opt_case ==
                    GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE &&
            !(c->temperature >= 0 && c->temperature <= 2))
                return bad(e, es, "chat.temperature must be within 0..2");
        return CODEC_OK;
}

static enum codec_err validate_image(const Genq__V1__ImageRequest *im,
                                     char *e, size_t es)
{
        if (empty(im->prompt))
                return bad(e, es, "image.prompt is required");
        if (im->count < 0 || im->count > 10)
                return bad(e, es, "image.count must be within 0..10");
        if (im->n_input_image_urls > MAX_URLS)
                return bad(e, es, "image.input_image_urls: at most %d",
                           MAX_URLS);
        for (size_t i = 0; i < im->n_input_image_urls; i++)
                if (!http_url_ok(im->input_image_urls[i]))
                        return bad(e, es, "image.input_image_urls[%zu] is not "
                                          "an http(s) URL", i);
        return CODEC_OK;
}

static enum codec_err validate_video(const Genq__V1__VideoRequest *v,
                                     char *e, size_t es)
{
        if (empty(v->prompt) && v->n_scenes == 0)
                return bad(e, es, "video.prompt or video.scenes is required");
        if (v->duration_s < 0 || v->duration_s > 600)
                return bad(e, es, "video.duration_s must be within 0..600");
        if (!empty(v->first_frame_url) && !http_url_ok(v->first_frame_url))
                return bad(e, es, "video.first_frame_url is not an http(s) "
                                  "URL");
        if (v->n_scenes > MAX_SCENES)
                return bad(e, es, "video.scenes: at most %d", MAX_SCENES);
        for (size_t i = 0; i < v->n_scenes; i++)
                if (empty(v->scenes[i]->prompt) ||
                    !(v->scenes[i]->duration_s > 0))
                        return bad(e, es, "video.scenes[%zu] needs a prompt "
                                          "and a positive duration_s", i);
        return CODEC_OK;
}

static enum codec_err validate_stt(const Genq__V1__SttRequest *s, char *e,
                                   size_t es)
{
        if (!http_url_ok(s->audio_url))
                return bad(e, es, "stt.audio_url must be an http(s) URL");
        return CODEC_OK;
}

static enum codec_err validate_tts(const Genq__V1__TtsRequest *t, char *e,
                                   size_t es)
{
        static const char *formats[] = {"mp3", "opus", "aac",
                                        "flac", "wav", "pcm"};
        size_t f;

        if (empty(t->text))
                return bad(e, es, "tts.text is required");
        if (strlen(t->text) > MAX_TTS_CHARS * 4)
                return bad(e, es, "tts.text: at most %d characters",
                           MAX_TTS_CHARS);
        if (!empty(t->format)) {
                for (f = 0; f < sizeof(formats) / sizeof(formats[0]); f++)
                        if (!strcmp(t->format, formats[f]))
                                break;
                if (f == sizeof(formats) / sizeof(formats[0]))
                        return bad(e, es, "tts.format \"%s\" is not mp3, "
                                          "opus, aac, flac, wav or pcm",
                                   t->format);
        }
        if (t->speed_opt_case == GENQ__V1__TTS_REQUEST__SPEED_OPT_SPEED &&
            !(t->speed >= 0.25f && t->speed <= 4.0f))
                return bad(e, es, "tts.speed must be within 0.25..4.0");
        return CODEC_OK;
}

static enum codec_err validate_payload(const Genq__V1__Job *j, char *e,
                                       size_t es)
{
        switch (j->payload_case) {
        case GENQ__V1__JOB__PAYLOAD_CHAT:
                return validate_chat(j->chat, e, es);
        case GENQ__V1__JOB__PAYLOAD_IMAGE:
                return validate_image(j->image, e, es);
        case GENQ__V1__JOB__PAYLOAD_VIDEO:
                return validate_video(j->video, e, es);
        case GENQ__V1__JOB__PAYLOAD_STT:
                return validate_stt(j->stt, e, es);
        case GENQ__V1__JOB__PAYLOAD_TTS:
                return validate_tts(j->tts, e, es);
        default:
                return bad(e, es, "job has no payload");
        }
}

enum codec_err codec_job_validate(const Genq__V1__Job *job,
                                  Genq__V1__Kind topic_kind, char *errstr,
                                  size_t errstr_size)
{
        Genq__V1__Kind pk = codec_kind_of_payload(job->payload_case);
        enum codec_err rc;

        if (!codec_kind_name(job->kind))
                return bad(errstr, errstr_size, "kind is unspecified or "
                                                "unknown (%d)", (int)job->kind);
        rc = validate_envelope(job, errstr, errstr_size);
        if (rc != CODEC_OK)
                return rc;
        if (pk == GENQ__V1__KIND__KIND_UNSPECIFIED)
                return bad(errstr, errstr_size, "job has no payload");
        if (pk != job->kind) {
                snprintf(errstr, errstr_size,
                         "kind is %s but the payload is %s",
                         codec_kind_name(job->kind), codec_kind_name(pk));
                return CODEC_EMISMATCH;
        }
        if (topic_kind != GENQ__V1__KIND__KIND_UNSPECIFIED &&
            topic_kind != job->kind) {
                snprintf(errstr, errstr_size,
                         "a %s job on the %s topic",
                         codec_kind_name(job->kind),
                         codec_kind_name(topic_kind));
                return CODEC_EMISMATCH;
        }
        return validate_payload(job, errstr, errstr_size);
}

int codec_topic_name(const char *prefix, Genq__V1__Kind kind, char *out,
                     size_t outsz)
{
        const char *k = codec_kind_name(kind);
        int n;

        if (!k)
                return -1;
        n = snprintf(out, outsz, "%s.%s", prefix, k);
        return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

Genq__V1__Kind codec_topic_kind(const char *prefix, const char *topic)
{
        size_t pl = strlen(prefix);

        if (strncmp(topic, prefix, pl) || topic[pl] != '.')
                return GENQ__V1__KIND__KIND_UNSPECIFIED;
        return codec_kind_parse(topic + pl + 1);
}

int codec_uuid4(char out[37])
{
        unsigned char b[16];
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        ssize_t r;

        if (fd < 0)
                return -1;
        r = read(fd, b, sizeof(b));
        close(fd);
        if (r != (ssize_t)sizeof(b))
                return -1;
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        snprintf(out, 37,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
        return 0;
}
