/*
 * Unit tests for common/codec.c: encode/decode, the size limit, every
 * validation rule with the words it answers in, topic names and UUIDs.
 * Jobs are built on the stack from a valid fixture, then one field is
 * broken per case.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define N_URLS 17 /* one more than codec.c allows */

static char errstr[512];

/** A valid job of any kind, all on the stack. */
struct fx {
        Genq__V1__Job job;
        Genq__V1__Job__MetadataEntry meta, *metap[1];
        char *providers[2];
        Genq__V1__ChatRequest chat;
        Genq__V1__ChatMessage msg[2], *msgp[2];
        Genq__V1__ImageRequest image;
        char *urls[N_URLS];
        Genq__V1__VideoRequest video;
        Genq__V1__VideoScene scene, *scenep[1];
        Genq__V1__SttRequest stt;
        Genq__V1__TtsRequest tts;
};

static void fx_payloads(struct fx *f)
{
        genq__v1__chat_request__init(&f->chat);
        for (int i = 0; i < 2; i++) {
                genq__v1__chat_message__init(&f->msg[i]);
                f->msgp[i] = &f->msg[i];
        }
        f->msg[0].role = "system";
        f->msg[0].content = "Be brief.";
        f->msg[1].role = "user";
        f->msg[1].content = "Hi";
        f->chat.messages = f->msgp;
        f->chat.n_messages = 2;
        genq__v1__image_request__init(&f->image);
        f->image.prompt = "a red fox";
        for (int i = 0; i < N_URLS; i++)
                f->urls[i] = "https://x.test/a.png";
        f->image.input_image_urls = f->urls;
        f->image.n_input_image_urls = 1;
        genq__v1__video_request__init(&f->video);
        genq__v1__video_scene__init(&f->scene);
        f->video.prompt = "waves";
        f->scene.prompt = "dawn";
        f->scene.duration_s = 2.5;
        f->scenep[0] = &f->scene;
        genq__v1__stt_request__init(&f->stt);
        f->stt.audio_url = "https://x.test/a.mp3";
        genq__v1__tts_request__init(&f->tts);
        f->tts.text = "hello";
}

static void fx_init(struct fx *f, Genq__V1__Kind kind)
{
        genq__v1__job__init(&f->job);
        genq__v1__job__metadata_entry__init(&f->meta);
        fx_payloads(f);
        f->job.job_id = "job-1:a.b_c";
        f->job.tenant_id = "acme";
        f->job.kind = kind;
        f->meta.key = "batch";
        f->meta.value = "b7";
        f->metap[0] = &f->meta;
        switch (kind) {
        case GENQ__V1__KIND__KIND_IMAGE:
                f->job.payload_case = GENQ__V1__JOB__PAYLOAD_IMAGE;
                f->job.image = &f->image;
                break;
        case GENQ__V1__KIND__KIND_VIDEO:
                f->job.payload_case = GENQ__V1__JOB__PAYLOAD_VIDEO;
                f->job.video = &f->video;
                break;
        case GENQ__V1__KIND__KIND_STT:
                f->job.payload_case = GENQ__V1__JOB__PAYLOAD_STT;
                f->job.stt = &f->stt;
                break;
        case GENQ__V1__KIND__KIND_TTS:
                f->job.payload_case = GENQ__V1__JOB__PAYLOAD_TTS;
                f->job.tts = &f->tts;
                break;
        default:
                f->job.payload_case = GENQ__V1__JOB__PAYLOAD_CHAT;
                f->job.chat = &f->chat;
        }
}

static enum codec_err validate(const struct fx *f, Genq__V1__Kind topic)
{
        errstr[0] = '\0';
        return codec_job_validate(&f->job, topic, errstr, sizeof(errstr));
}

/* ---- encode / decode ---------------------------------------------------- */

START_TEST(test_round_trip)
{
        struct fx f;
        Genq__V1__Job *back;
        enum codec_err err;
        uint8_t *buf;
        size_t len;

        fx_init(&f, GENQ__V1__KIND__KIND_CHAT);
        f.job.priority = -7;
        f.job.deadline_ms = 1800000000000LL;
        f.job.providers = f.providers;
        f.providers[0] = "groq";
        f.providers[1] = "openai";
        f.job.n_providers = 2;
        f.job.budget_opt_case = GENQ__V1__JOB__BUDGET_OPT_BUDGET_CREDITS;
        f.job.budget_credits = 0; /* present, and zero */
        f.job.metadata = f.metap;
        f.job.n_metadata = 1;
        f.chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        f.chat.temperature = 0.5f;

        buf = codec_job_encode(&f.job, &len);
        ck_assert_uint_gt(len, 0);
        back = codec_job_decode(buf, len, &err, errstr, sizeof(errstr));
        free(buf);
        ck_assert_ptr_nonnull(back);
        ck_assert_int_eq(err, CODEC_OK);
        ck_assert_str_eq(back->job_id, "job-1:a.b_c");
        ck_assert_int_eq(back->priority, -7);
        ck_assert_int_eq(back->deadline_ms, 1800000000000LL);
        ck_assert_uint_eq(back->n_providers, 2);
        ck_assert_str_eq(back->providers[1], "openai");
        ck_assert_int_eq(back->budget_opt_case,
                         GENQ__V1__JOB__BUDGET_OPT_BUDGET_CREDITS);
        ck_assert_str_eq(back->metadata[0]->value, "b7");
        ck_assert_int_eq(back->payload_case, GENQ__V1__JOB__PAYLOAD_CHAT);
        ck_assert_str_eq(back->chat->messages[1]->content, "Hi");
        ck_assert(back->chat->temperature == 0.5f);
        ck_assert_int_eq(validate(&f, GENQ__V1__KIND__KIND_CHAT), CODEC_OK);
        ck_assert_int_eq(codec_job_validate(back, GENQ__V1__KIND__KIND_CHAT,
                                            errstr, sizeof(errstr)),
                         CODEC_OK);
        codec_job_free(back);
        codec_job_free(NULL);
}
END_TEST

START_TEST(test_decode_garbage)
{
        static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
        struct fx f;
        enum codec_err err = CODEC_OK;
        uint8_t *buf;
        size_t len;

        ck_assert_ptr_null(codec_job_decode(junk, sizeof(junk), &err, errstr,
                                            sizeof(errstr)));
        ck_assert_int_eq(err, CODEC_EDECODE);
        ck_assert_ptr_nonnull(strstr(errstr, "5 bytes are not a valid"));
        ck_assert_str_eq(codec_err_name(err), "decode");

        /* A valid message cut short (the payload is the last field). */
        fx_init(&f, GENQ__V1__KIND__KIND_TTS);
        buf = codec_job_encode(&f.job, &len);
        err = CODEC_OK;
        ck_assert_ptr_null(codec_job_decode(buf, len - 1, &err, errstr,
                                            sizeof(errstr)));
        ck_assert_int_eq(err, CODEC_EDECODE);
        free(buf);
}
END_TEST

START_TEST(test_too_big)
{
        struct fx f;
        enum codec_err err = CODEC_OK;
        char *text = malloc(CODEC_MAX_JOB_BYTES + 1);
        uint8_t *buf;
        size_t len;

        memset(text, 'a', CODEC_MAX_JOB_BYTES);
        text[CODEC_MAX_JOB_BYTES] = '\0';
        fx_init(&f, GENQ__V1__KIND__KIND_CHAT);
        f.msg[1].content = text;
        buf = codec_job_encode(&f.job, &len);
        ck_assert_uint_gt(len, CODEC_MAX_JOB_BYTES);
        ck_assert_ptr_null(codec_job_decode(buf, len, &err, errstr,
                                            sizeof(errstr)));
        ck_assert_int_eq(err, CODEC_ETOOBIG);
        ck_assert_msg(strstr(errstr, "over the 1048576 byte limit"), "%s",
                      errstr);
        ck_assert_str_eq(codec_err_name(err), "too_big");
        free(buf);
        free(text);
}
END_TEST

/* ---- validation --------------------------------------------------------- */

START_TEST(test_every_kind_valid)
{
        struct fx f;
        Genq__V1__Kind k = (Genq__V1__Kind)(_i + 1);

        fx_init(&f, k);
        ck_assert_msg(validate(&f, 0) == CODEC_OK, "%s: %s",
                      codec_kind_name(k), errstr);
        ck_assert_msg(validate(&f, k) == CODEC_OK, "%s: %s",
                      codec_kind_name(k), errstr);
}
END_TEST

/* One broken field each.  Cases with err CODEC_OK are edges that pass. */
static void job_id_space(struct fx *f) { f->job.job_id = "job 1"; }
static void job_id_empty(struct fx *f) { f->job.job_id = ""; }
static void job_id_long(struct fx *f)
{
        static char id[130];

        memset(id, 'x', 129);
        f->job.job_id = id;
}
static void tenant_empty(struct fx *f) { f->job.tenant_id = ""; }
static void tenant_colon(struct fx *f) { f->job.tenant_id = "a:b"; }
static void prio_high(struct fx *f) { f->job.priority = 101; }
static void prio_low(struct fx *f) { f->job.priority = -101; }
static void prio_edge(struct fx *f) { f->job.priority = -100; }
static void created_neg(struct fx *f) { f->job.created_at_ms = -1; }
static void route_bad(struct fx *f) { f->job.route = "bulk/2"; }
static void provider_bad(struct fx *f)
{
        f->providers[0] = "groq";
        f->providers[1] = "open ai";
        f->job.providers = f->providers;
        f->job.n_providers = 2;
}
static void budget_neg(struct fx *f)
{
        f->job.budget_opt_case = GENQ__V1__JOB__BUDGET_OPT_BUDGET_CREDITS;
        f->job.budget_credits = -0.5;
}
static void meta_empty_key(struct fx *f)
{
        f->meta.key = "";
        f->job.metadata = f->metap;
        f->job.n_metadata = 1;
}
static void kind_unspec(struct fx *f) { f->job.kind = 0; }
static void kind_unknown(struct fx *f) { f->job.kind = 42; }
static void kind_vs_payload(struct fx *f)
{
        f->job.payload_case = GENQ__V1__JOB__PAYLOAD_IMAGE;
        f->job.chat = NULL;
        f->job.image = &f->image;
}
static void no_payload(struct fx *f)
{
        f->job.payload_case = GENQ__V1__JOB__PAYLOAD__NOT_SET;
        f->job.chat = NULL;
}
static void nothing(struct fx *f) { (void)f; }
static void chat_empty(struct fx *f) { f->chat.n_messages = 0; }
static void chat_role(struct fx *f) { f->msg[1].role = "robot"; }
static void chat_role_dev(struct fx *f) { f->msg[0].role = "developer"; }
static void chat_content(struct fx *f) { f->msg[1].content = ""; }
static void chat_max_tokens(struct fx *f) { f->chat.max_tokens = -1; }
static void chat_temp(struct fx *f, float t)
{
        f->chat.temperature_opt_case =
                GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        f->chat.temperature = t;
}
static void chat_temp_high(struct fx *f) { chat_temp(f, 2.5f); }
static void chat_temp_nan(struct fx *f) { chat_temp(f, NAN); }
static void chat_temp_edge(struct fx *f) { chat_temp(f, 2.0f); }
static void chat_temp_absent(struct fx *f) { f->chat.temperature = 9.0f; }
static void image_prompt(struct fx *f) { f->image.prompt = ""; }
static void image_count(struct fx *f) { f->image.count = 11; }
static void image_count_edge(struct fx *f) { f->image.count = 10; }
static void image_n_urls(struct fx *f) { f->image.n_input_image_urls = 17; }
static void image_url(struct fx *f)
{
        f->image.n_input_image_urls = 2;
        f->urls[1] = "ftp://x.test/a.png";
}
static void video_nothing(struct fx *f) { f->video.prompt = ""; }
static void video_scenes_only(struct fx *f)
{
        f->video.prompt = "";
        f->video.scenes = f->scenep;
        f->video.n_scenes = 1;
}
static void video_scene_len(struct fx *f)
{
        video_scenes_only(f);
        f->scene.duration_s = 0;
}
static void video_duration(struct fx *f) { f->video.duration_s = 601; }
static void video_frame(struct fx *f)
{
        f->video.first_frame_url = "file:///etc/passwd";
}
static void stt_url(struct fx *f) { f->stt.audio_url = ""; }
static void stt_ftp(struct fx *f) { f->stt.audio_url = "ftp://x/a.mp3"; }
static void tts_text(struct fx *f) { f->tts.text = ""; }
static void tts_format(struct fx *f) { f->tts.format = "ogg"; }
static void tts_format_ok(struct fx *f) { f->tts.format = "opus"; }
static void tts_speed(struct fx *f, float s)
{
        f->tts.speed_opt_case = GENQ__V1__TTS_REQUEST__SPEED_OPT_SPEED;
        f->tts.speed = s;
}
static void tts_speed_low(struct fx *f) { tts_speed(f, 0.2f); }
static void tts_speed_high(struct fx *f) { tts_speed(f, 4.5f); }
static void tts_speed_edge(struct fx *f) { tts_speed(f, 0.25f); }

#define CHAT GENQ__V1__KIND__KIND_CHAT
#define IMAGE GENQ__V1__KIND__KIND_IMAGE
#define VIDEO GENQ__V1__KIND__KIND_VIDEO
#define STT GENQ__V1__KIND__KIND_STT
#define TTS GENQ__V1__KIND__KIND_TTS

static const struct vcase {
        const char *name;
        Genq__V1__Kind kind;
        void (*mutate)(struct fx *f);
        Genq__V1__Kind topic;
        enum codec_err err;
        const char *want; /**< fragment of errstr, NULL when OK */
} vcases[] = {
        {"job_id_space", CHAT, job_id_space, 0, CODEC_EINVALID,
         "job_id must be 1..128 characters of [A-Za-z0-9._:-]"},
        {"job_id_empty", CHAT, job_id_empty, 0, CODEC_EINVALID,
         "job_id must be"},
        {"job_id_long", CHAT, job_id_long, 0, CODEC_EINVALID,
         "job_id must be"},
        {"tenant_empty", CHAT, tenant_empty, 0, CODEC_EINVALID,
         "tenant_id must be 1..64 characters"},
        {"tenant_colon", CHAT, tenant_colon, 0, CODEC_EINVALID,
         "tenant_id must be"},
        {"prio_high", CHAT, prio_high, 0, CODEC_EINVALID,
         "priority 101 is outside -100..100"},
        {"prio_low", CHAT, prio_low, 0, CODEC_EINVALID,
         "priority -101 is outside"},
        {"prio_edge", CHAT, prio_edge, 0, CODEC_OK, NULL},
        {"created_neg", CHAT, created_neg, 0, CODEC_EINVALID,
         "must not be negative"},
        {"route_bad", CHAT, route_bad, 0, CODEC_EINVALID,
         "route must be up to 64"},
        {"provider_bad", CHAT, provider_bad, 0, CODEC_EINVALID,
         "providers[1] is not a provider name"},
        {"budget_neg", CHAT, budget_neg, 0, CODEC_EINVALID,
         "budget_credits must be >= 0"},
        {"meta_key", CHAT, meta_empty_key, 0, CODEC_EINVALID,
         "metadata entry 0"},
        {"kind_unspec", CHAT, kind_unspec, 0, CODEC_EINVALID,
         "kind is unspecified or unknown (0)"},
        {"kind_unknown", CHAT, kind_unknown, 0, CODEC_EINVALID,
         "kind is unspecified or unknown (42)"},
        {"kind_payload", CHAT, kind_vs_payload, 0, CODEC_EMISMATCH,
         "kind is chat but the payload is image"},
        {"no_payload", CHAT, no_payload, 0, CODEC_EINVALID,
         "job has no payload"},
        {"topic", CHAT, nothing, IMAGE, CODEC_EMISMATCH,
         "a chat job on the image topic"},
        {"chat_empty", CHAT, chat_empty, 0, CODEC_EINVALID,
         "chat.messages must not be empty"},
        {"chat_role", CHAT, chat_role, 0, CODEC_EINVALID,
         "chat.messages[1].role \"robot\" is not"},
        {"chat_role_dev", CHAT, chat_role_dev, 0, CODEC_OK, NULL},
        {"chat_content", CHAT, chat_content, 0, CODEC_EINVALID,
         "chat.messages[1].content is empty"},
        {"chat_max_tokens", CHAT, chat_max_tokens, 0, CODEC_EINVALID,
         "chat.max_tokens must be >= 0"},
        {"chat_temp_high", CHAT, chat_temp_high, 0, CODEC_EINVALID,
         "chat.temperature must be within 0..2"},
        {"chat_temp_nan", CHAT, chat_temp_nan, 0, CODEC_EINVALID,
         "chat.temperature must be within 0..2"},
        {"chat_temp_edge", CHAT, chat_temp_edge, 0, CODEC_OK, NULL},
        {"chat_temp_absent", CHAT, chat_temp_absent, 0, CODEC_OK, NULL},
        {"image_prompt", IMAGE, image_prompt, 0, CODEC_EINVALID,
         "image.prompt is required"},
        {"image_count", IMAGE, image_count, 0, CODEC_EINVALID,
         "image.count must be within 0..10"},
        {"image_count_edge", IMAGE, image_count_edge, 0, CODEC_OK, NULL},
        {"image_n_urls", IMAGE, image_n_urls, 0, CODEC_EINVALID,
         "image.input_image_urls: at most 16"},
        {"image_url", IMAGE, image_url, 0, CODEC_EINVALID,
         "image.input_image_urls[1] is not an http(s) URL"},
        {"video_nothing", VIDEO, video_nothing, 0, CODEC_EINVALID,
         "video.prompt or video.scenes is required"},
        {"video_scenes_only", VIDEO, video_scenes_only, 0, CODEC_OK, NULL},
        {"video_scene_len", VIDEO, video_scene_len, 0, CODEC_EINVALID,
         "video.scenes[0] needs a prompt and a positive duration_s"},
        {"video_duration", VIDEO, video_duration, 0, CODEC_EINVALID,
         "video.duration_s must be within 0..600"},
        {"video_frame", VIDEO, video_frame, 0, CODEC_EINVALID,
         "video.first_frame_url is not an http(s) URL"},
        {"stt_url", STT, stt_url, 0, CODEC_EINVALID,
         "stt.audio_url must be an http(s) URL"},
        {"stt_ftp", STT, stt_ftp, 0, CODEC_EINVALID,
         "stt.audio_url must be an http(s) URL"},
        {"tts_text", TTS, tts_text, 0, CODEC_EINVALID,
         "tts.text is required"},
        {"tts_format", TTS, tts_format, 0, CODEC_EINVALID,
         "tts.format \"ogg\" is not mp3, opus, aac, flac, wav or pcm"},
        {"tts_format_ok", TTS, tts_format_ok, 0, CODEC_OK, NULL},
        {"tts_speed_low", TTS, tts_speed_low, 0, CODEC_EINVALID,
         "tts.speed must be within 0.25..4.0"},
        {"tts_speed_high", TTS, tts_speed_high, 0, CODEC_EINVALID,
         "tts.speed must be within 0.25..4.0"},
        {"tts_speed_edge", TTS, tts_speed_edge, 0, CODEC_OK, NULL},
};
#define N_VCASES ((int)(sizeof(vcases) / sizeof(vcases[0])))

START_TEST(test_validate_rules)
{
        const struct vcase *c = &vcases[_i];
        enum codec_err got;
        struct fx f;

        fx_init(&f, c->kind);
        c->mutate(&f);
        got = validate(&f, c->topic);
        ck_assert_msg(got == c->err, "%s: got %s (%s), want %s", c->name,
                      codec_err_name(got), errstr, codec_err_name(c->err));
        if (c->want)
                ck_assert_msg(strstr(errstr, c->want),
                              "%s: \"%s\" lacks \"%s\"", c->name, errstr,
                              c->want);
}
END_TEST

/* ---- names -------------------------------------------------------------- */

START_TEST(test_topic_names)
{
        char out[64], small[15];

        for (int k = CHAT; k <= TTS; k++) {
                ck_assert_int_eq(codec_topic_name("genq.jobs", k, out,
                                                  sizeof(out)),
                                 0);
                ck_assert_int_eq(codec_topic_kind("genq.jobs", out), k);
                ck_assert_int_eq(codec_kind_parse(codec_kind_name(k)), k);
        }
        ck_assert_int_eq(codec_topic_name("genq.jobs", CHAT, out,
                                          sizeof(out)),
                         0);
        ck_assert_str_eq(out, "genq.jobs.chat");
        /* "genq.jobs.chat" is 14 characters: 15 bytes fit, 14 do not. */
        ck_assert_int_eq(codec_topic_name("genq.jobs", CHAT, small, 15), 0);
        ck_assert_int_eq(codec_topic_name("genq.jobs", CHAT, small, 14), -1);
        ck_assert_int_eq(codec_topic_name("genq.jobs", 0, out, sizeof(out)),
                         -1);
        ck_assert_int_eq(codec_topic_name("genq.jobs", 99, out, sizeof(out)),
                         -1);

        ck_assert_int_eq(codec_topic_kind("genq.jobs", "genq.jobs.dlq"), 0);
        ck_assert_int_eq(codec_topic_kind("genq.jobs", "genq.jobsx.chat"), 0);
        ck_assert_int_eq(codec_topic_kind("genq.jobs", "genq.jobs_chat"), 0);
        ck_assert_int_eq(codec_topic_kind("genq.jobs", "genq.jobs.chat.x"),
                         0);
        ck_assert_int_eq(codec_topic_kind("genq.jobs", "genq.jobs"), 0);
        ck_assert_int_eq(codec_topic_kind("genq.jobs", "other.chat"), 0);
        ck_assert_int_eq(codec_topic_kind("t", "t.stt"), STT);
        ck_assert_int_eq(codec_kind_parse(NULL), 0);
        ck_assert_int_eq(codec_kind_parse("CHAT"), 0);
        ck_assert_ptr_null(codec_kind_name(0));
        ck_assert_ptr_null(codec_kind_name(-1));
        ck_assert_str_eq(codec_err_name(CODEC_EINVALID), "invalid");
        ck_assert_str_eq(codec_err_name(CODEC_EMISMATCH), "kind_mismatch");
}
END_TEST

#define N_UUIDS 1000

static int cmp_str(const void *a, const void *b)
{
        return strcmp(a, b);
}

START_TEST(test_uuid4)
{
        static char ids[N_UUIDS][37];

        for (int i = 0; i < N_UUIDS; i++) {
                const char *u = ids[i];

                ck_assert_int_eq(codec_uuid4(ids[i]), 0);
                ck_assert_uint_eq(strlen(u), 36);
                for (int c = 0; c < 36; c++) {
                        if (c == 8 || c == 13 || c == 18 || c == 23)
                                ck_assert_msg(u[c] == '-', "%s", u);
                        else
                                ck_assert_msg(strchr("0123456789abcdef",
                                                     u[c]) && u[c],
                                              "%s", u);
                }
                ck_assert_msg(u[14] == '4', "version: %s", u);
                ck_assert_msg(strchr("89ab", u[19]), "variant: %s", u);
        }
        qsort(ids, N_UUIDS, sizeof(ids[0]), cmp_str);
        for (int i = 1; i < N_UUIDS; i++)
                ck_assert_str_ne(ids[i - 1], ids[i]);
}
END_TEST

static Suite *codec_suite(void)
{
        const struct {
                const char *name;
                const TTest *fn;
                int loop_end; /**< 0: run once */
        } tests[] = {
                {"round_trip", test_round_trip, 0},
                {"decode_garbage", test_decode_garbage, 0},
                {"too_big", test_too_big, 0},
                {"every_kind_valid", test_every_kind_valid, 5},
                {"validate_rules", test_validate_rules, N_VCASES},
                {"topic_names", test_topic_names, 0},
                {"uuid4", test_uuid4, 0},
        };
        Suite *s = suite_create("codec");

        for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
                TCase *tc = tcase_create(tests[i].name);

                if (tests[i].loop_end)
                        tcase_add_loop_test(tc, tests[i].fn, 0,
                                            tests[i].loop_end);
                else
                        tcase_add_test(tc, tests[i].fn);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(codec_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
