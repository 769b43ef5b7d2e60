/*
 * Unit tests for common/jobjson.c (and the codec rules it feeds):
 * JSON -> Job -> protobuf -> Job -> JSON, and every way a line is refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jobjson.h"

static char errstr[512];

static Genq__V1__Job *parse(const char *json, int flags)
{
        errstr[0] = '\0';
        return jobjson_parse(json, strlen(json), flags, errstr,
                             sizeof(errstr));
}

/* Parsing \p json must fail with a message containing \p want. */
static void expect_error(const char *json, const char *want)
{
        Genq__V1__Job *job = parse(json, 0);

        ck_assert_msg(job == NULL, "accepted: %s", json);
        ck_assert_msg(strstr(errstr, want), "error \"%s\" lacks \"%s\"",
                      errstr, want);
}

/* ---- every kind round-trips ------------------------------------------- */

static const char *kind_samples[] = {
        "{\"job_id\":\"j-chat\",\"tenant_id\":\"acme\",\"kind\":\"chat\","
        "\"created_at_ms\":1700000000000,\"priority\":5,"
        "\"deadline_ms\":1800000000000,\"route\":\"bulk\","
        "\"providers\":[\"groq\",\"zhipu\"],\"budget_credits\":0,"
        "\"metadata\":{\"batch\":\"b7\",\"x\":\"\"},"
        "\"chat\":{\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"content\":\"Hi \\u00e9\"}],"
        "\"model\":\"gpt-4o-mini\",\"max_tokens\":256,\"temperature\":0.0,"
        "\"thinking\":true}}",

        "{\"job_id\":\"j-image\",\"tenant_id\":\"acme\",\"kind\":\"image\","
        "\"image\":{\"prompt\":\"a red fox\",\"size\":\"1024x1024\","
        "\"aspect_ratio\":\"1:1\",\"count\":2,\"output_format\":\"png\","
        "\"input_image_urls\":[\"https://x.test/a.png\"],"
        "\"model\":\"flux\",\"negative_prompt\":\"blur\"}}",

        "{\"job_id\":\"j-video\",\"tenant_id\":\"acme\",\"kind\":\"video\","
        "\"video\":{\"prompt\":\"waves\",\"duration_s\":10,"
        "\"aspect_ratio\":\"16:9\","
        "\"first_frame_url\":\"https://x.test/f.png\","
        "\"remove_watermark\":true,\"scenes\":[{\"prompt\":\"dawn\","
        "\"duration_s\":2.5},{\"prompt\":\"dusk\",\"duration_s\":7.5}],"
        "\"model\":\"sora-2\",\"quality\":\"720p\"}}",

        "{\"job_id\":\"j-stt\",\"tenant_id\":\"acme\",\"kind\":\"stt\","
        "\"stt\":{\"audio_url\":\"https://x.test/a.mp3\","
        "\"language\":\"en\",\"model\":\"whisper-1\"}}",

        "{\"job_id\":\"j-tts\",\"tenant_id\":\"acme\",\"kind\":\"tts\","
        "\"tts\":{\"text\":\"hello\",\"voice\":\"alloy\",\"format\":\"mp3\","
        "\"speed\":1.25,\"model\":\"tts-1\"}}",
};

START_TEST(test_every_kind_round_trips)
{
        const char *src = kind_samples[_i];
        Genq__V1__Job *job, *back, *again;
        enum codec_err err;
        char *j1, *j2, *j3;
        uint8_t *buf;
        size_t len;

        job = parse(src, 0);
        ck_assert_msg(job, "%s: %s", src, errstr);
        ck_assert_int_eq(codec_job_validate(job, job->kind, errstr,
                                            sizeof(errstr)),
                         CODEC_OK);
        ck_assert_int_eq(job->kind, (Genq__V1__Kind)(_i + 1));

        buf = codec_job_encode(job, &len);
        back = codec_job_decode(buf, len, &err, errstr, sizeof(errstr));
        free(buf);
        ck_assert_ptr_nonnull(back);

        j1 = jobjson_to_json(job);
        j2 = jobjson_to_json(back);
        ck_assert_str_eq(j1, j2);

        /* JSON -> job -> JSON is stable too. */
        again = parse(j1, 0);
        ck_assert_msg(again, "%s: %s", j1, errstr);
        j3 = jobjson_to_json(again);
        ck_assert_str_eq(j1, j3);

        free(j1);
        free(j2);
        free(j3);
        codec_job_free(job);
        codec_job_free(back);
        codec_job_free(again);
}
END_TEST

START_TEST(test_chat_fields)
{
        Genq__V1__Job *job = parse(kind_samples[0], 0);
        char *json;

        ck_assert_ptr_nonnull(job);
        ck_assert_str_eq(job->job_id, "j-chat");
        ck_assert_int_eq(job->created_at_ms, 1700000000000LL);
        ck_assert_int_eq(job->priority, 5);
        ck_assert_uint_eq(job->n_providers, 2);
        ck_assert_str_eq(job->providers[1], "zhipu");
        /* budget 0 and temperature 0 are present, not defaults */
        ck_assert_int_eq(job->budget_opt_case,
                         GENQ__V1__JOB__BUDGET_OPT_BUDGET_CREDITS);
        ck_assert_int_eq(job->chat->temperature_opt_case,
                         GENQ__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE);
        ck_assert_uint_eq(job->n_metadata, 2);
        ck_assert_str_eq(job->metadata[0]->key, "batch");
        ck_assert_str_eq(job->metadata[0]->value, "b7");
        ck_assert_str_eq(job->chat->messages[1]->content, "Hi \xc3\xa9");
        ck_assert(job->chat->thinking);
        json = jobjson_to_json(job);
        ck_assert_ptr_nonnull(strstr(json, "\"kind\":\"chat\""));
        ck_assert_ptr_nonnull(strstr(json, "\"budget_credits\":0.0"));
        free(json);
        codec_job_free(job);
}
END_TEST

START_TEST(test_float_prints_short)
{
        Genq__V1__Job *job = parse("{\"tenant_id\":\"t\",\"chat\":{\"prompt\":"
                                   "\"x\",\"temperature\":0.7}}",
                                   0);
        char *json;

        ck_assert_ptr_nonnull(job);
        json = jobjson_to_json(job);
        ck_assert_msg(strstr(json, "\"temperature\":0.7}"), "%s", json);
        free(json);
        codec_job_free(job);
}
END_TEST

/* ---- kind and payload -------------------------------------------------- */

START_TEST(test_kind_inferred)
{
        static const struct {
                const char *json;
                Genq__V1__Kind kind;
        } cases[] = {
                {"{\"tenant_id\":\"t\",\"chat\":{\"prompt\":\"x\"}}",
                 GENQ__V1__KIND__KIND_CHAT},
                {"{\"tenant_id\":\"t\",\"image\":{\"prompt\":\"x\"}}",
                 GENQ__V1__KIND__KIND_IMAGE},
                {"{\"tenant_id\":\"t\",\"video\":{\"prompt\":\"x\"}}",
                 GENQ__V1__KIND__KIND_VIDEO},
                {"{\"tenant_id\":\"t\",\"stt\":{\"audio_url\":\"http://a\"}}",
                 GENQ__V1__KIND__KIND_STT},
                {"{\"tenant_id\":\"t\",\"tts\":{\"text\":\"x\"}}",
                 GENQ__V1__KIND__KIND_TTS},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Genq__V1__Job *job = parse(cases[i].json, 0);

                ck_assert_msg(job, "%s: %s", cases[i].json, errstr);
                ck_assert_int_eq(job->kind, cases[i].kind);
                codec_job_free(job);
        }
}
END_TEST

START_TEST(test_kind_payload_disagree)
{
        const char *bad = "{\"job_id\":\"j\",\"tenant_id\":\"t\","
                          "\"kind\":\"chat\",\"image\":{\"prompt\":\"x\"}}";
        Genq__V1__Job *job;

        expect_error(bad, "kind is chat but the payload is image");
        expect_error("{\"tenant_id\":\"t\",\"chat\":{\"prompt\":\"x\"},"
                     "\"image\":{\"prompt\":\"y\"}}",
                     "chat and image cannot both be given");
        expect_error("{\"tenant_id\":\"t\",\"kind\":\"tts\"}",
                     "a tts job needs a \"tts\" object");
        expect_error("{\"tenant_id\":\"t\"}", "one of chat, image, video");
        expect_error("{\"tenant_id\":\"t\",\"kind\":\"music\","
                     "\"chat\":{\"prompt\":\"x\"}}",
                     "kind \"music\" is not chat");

        /* The testing aid lets it through; validation still says no. */
        job = parse(bad, JOBJSON_F_LAX);
        ck_assert_msg(job, "%s", errstr);
        ck_assert_int_eq(job->kind, GENQ__V1__KIND__KIND_CHAT);
        ck_assert_int_eq(job->payload_case, GENQ__V1__JOB__PAYLOAD_IMAGE);
        ck_assert_int_eq(codec_job_validate(job, 0, errstr, sizeof(errstr)),
                         CODEC_EMISMATCH);
        codec_job_free(job);
}
END_TEST

/* ---- refusals ---------------------------------------------------------- */

START_TEST(test_unknown_key_named)
{
        expect_error("{\"tenant_id\":\"t\",\"tenantid\":\"t\","
                     "\"chat\":{\"prompt\":\"x\"}}",
                     "unknown key \"tenantid\"");
        expect_error("{\"tenant_id\":\"t\",\"chat\":{\"prompt\":\"x\","
                     "\"modle\":\"m\"}}",
                     "unknown key \"chat.modle\" (chat takes: messages, "
                     "model,");
        expect_error("{\"tenant_id\":\"t\",\"chat\":{\"messages\":"
                     "[{\"role\":\"user\",\"contents\":\"x\"}]}}",
                     "unknown key \"chat.messages[0].contents\"");
        expect_error("{\"tenant_id\":\"t\",\"video\":{\"scenes\":[{}, "
                     "{\"prompt\":\"x\",\"length\":3}]}}",
                     "unknown key \"video.scenes[1].length\"");
}
END_TEST

START_TEST(test_wrong_type_named)
{
        static const struct {
                const char *json;
                const char *want;
        } cases[] = {
                {"{\"tenant_id\":\"t\",\"chat\":{\"prompt\":\"x\","
                 "\"max_tokens\":\"256\"}}",
                 "chat.max_tokens must be an integer"},
                {"{\"tenant_id\":\"t\",\"chat\":{\"prompt\":\"x\","
                 "\"max_tokens\":2.5}}",
                 "chat.max_tokens must be an integer"},
                {"{\"tenant_id\":\"t\",\"chat\":{\"prompt\":\"x\","
                 "\"max_tokens\":9999999999}}",
                 "chat.max_tokens 9999999999 is out of range"},
                {"{\"tenant_id\":7,\"chat\":{\"prompt\":\"x\"}}",
                 "tenant_id must be a string"},
                {"{\"tenant_id\":\"t\",\"providers\":\"groq\","
                 "\"chat\":{\"prompt\":\"x\"}}",
                 "providers must be an array"},
                {"{\"tenant_id\":\"t\",\"providers\":[\"a\",1],"
                 "\"chat\":{\"prompt\":\"x\"}}",
                 "providers[1] must be a string"},
                {"{\"tenant_id\":\"t\",\"metadata\":{\"a\":1},"
                 "\"chat\":{\"prompt\":\"x\"}}",
                 "metadata.a must be a string"},
                {"{\"tenant_id\":\"t\",\"chat\":{\"prompt\":\"x\","
                 "\"thinking\":\"yes\"}}",
                 "chat.thinking must be true or false"},
                {"{\"tenant_id\":\"t\",\"tts\":{\"text\":\"x\","
                 "\"speed\":\"fast\"}}",
                 "tts.speed must be a number"},
                {"{\"tenant_id\":\"t\",\"chat\":\"hello\"}",
                 "chat must be an object"},
                {"{\"tenant_id\":\"t\",\"chat\":{\"messages\":[\"hi\"]}}",
                 "chat.messages[0] must be an object"},
                {"[1,2]", "a job must be a JSON object"},
                {"{\"tenant_id\":\"t\",", "invalid JSON"},
                {"{\"tenant_id\":\"t\",\"tenant_id\":\"u\","
                 "\"chat\":{\"prompt\":\"x\"}}",
                 "duplicate object key"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                expect_error(cases[i].json, cases[i].want);
}
END_TEST

START_TEST(test_null_is_absent)
{
        Genq__V1__Job *job = parse("{\"tenant_id\":\"t\",\"route\":null,"
                                   "\"image\":null,"
                                   "\"chat\":{\"prompt\":\"x\"}}",
                                   0);

        ck_assert_msg(job, "%s", errstr);
        ck_assert_str_eq(job->route, "");
        ck_assert_int_eq(job->kind, GENQ__V1__KIND__KIND_CHAT);
        codec_job_free(job);
}
END_TEST

START_TEST(test_chat_prompt_shorthand)
{
        Genq__V1__Job *job = parse("{\"tenant_id\":\"t\",\"chat\":{"
                                   "\"prompt\":\"Write a haiku\","
                                   "\"model\":\"m\"}}",
                                   0);

        ck_assert_msg(job, "%s", errstr);
        ck_assert_uint_eq(job->chat->n_messages, 1);
        ck_assert_str_eq(job->chat->messages[0]->role, "user");
        ck_assert_str_eq(job->chat->messages[0]->content, "Write a haiku");
        ck_assert_str_eq(job->chat->model, "m");
        codec_job_free(job);

        expect_error("{\"tenant_id\":\"t\",\"chat\":{\"prompt\":\"x\","
                     "\"messages\":[{\"role\":\"user\",\"content\":\"y\"}]}}",
                     "chat.prompt and chat.messages cannot both be given");
        expect_error("{\"tenant_id\":\"t\",\"chat\":{\"prompt\":3}}",
                     "chat.prompt must be a string");
}
END_TEST

START_TEST(test_invalid_job_fails_validation)
{
        static const struct {
                const char *json;
                const char *want;
                enum codec_err err;
        } cases[] = {
                {"{\"job_id\":\"j\",\"tenant_id\":\"t\",\"priority\":500,"
                 "\"chat\":{\"prompt\":\"x\"}}",
                 "priority 500 is outside -100..100", CODEC_EINVALID},
                {"{\"job_id\":\"j\",\"chat\":{\"prompt\":\"x\"}}",
                 "tenant_id must be 1..64 characters", CODEC_EINVALID},
                {"{\"job_id\":\"j k\",\"tenant_id\":\"t\","
                 "\"chat\":{\"prompt\":\"x\"}}",
                 "job_id must be 1..128 characters", CODEC_EINVALID},
                {"{\"job_id\":\"j\",\"tenant_id\":\"t\",\"chat\":{"
                 "\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}}",
                 "chat.messages[0].role \"robot\" is not", CODEC_EINVALID},
                {"{\"job_id\":\"j\",\"tenant_id\":\"t\",\"chat\":{}}",
                 "chat.messages must not be empty", CODEC_EINVALID},
                {"{\"job_id\":\"j\",\"tenant_id\":\"t\","
                 "\"stt\":{\"audio_url\":\"ftp://x\"}}",
                 "stt.audio_url must be an http(s) URL", CODEC_EINVALID},
                {"{\"job_id\":\"j\",\"tenant_id\":\"t\","
                 "\"tts\":{\"text\":\"x\",\"format\":\"ogg\"}}",
                 "tts.format \"ogg\" is not", CODEC_EINVALID},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Genq__V1__Job *job = parse(cases[i].json, 0);

                ck_assert_msg(job, "%s: %s", cases[i].json, errstr);
                ck_assert_int_eq(codec_job_validate(job, 0, errstr,
                                                    sizeof(errstr)),
                                 cases[i].err);
                ck_assert_msg(strstr(errstr, cases[i].want),
                              "\"%s\" lacks \"%s\"", errstr, cases[i].want);
                codec_job_free(job);
        }
}
END_TEST

/* ---- deadlines --------------------------------------------------------- */

START_TEST(test_deadline_rfc3339)
{
        static const struct {
                const char *s;
                int64_t ms;
        } good[] = {
                {"2025-06-01T12:00:00Z", 1748779200000LL},
                {"2025-06-01t12:00:00z", 1748779200000LL},
                {"2025-06-01 12:00:00Z", 1748779200000LL},
                {"2025-06-01T12:00:00.250+02:00", 1748772000250LL},
                {"2025-06-01T12:00:00.2509999+02:00", 1748772000250LL},
                {"2024-02-29T23:59:59-05:30", 1709270999000LL},
                {"1969-12-31T23:59:59Z", -1000LL},
        };
        static const char *bad[] = {
                "2025-06-01",           "2025-06-01T12:00:00",
                "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                "2025-06-01T24:00:00Z", "2025-06-01T12:00:00+2:00",
                "2025-06-01T12:00:00.Z", "2025-06-01T12:00:00Zjunk",
                "2025-6-01T12:00:00Z",  "",
                "tomorrow",             "2025-06-01T12:00:00+02:00x",
        };
        Genq__V1__Job *job;
        int64_t ms;

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                ck_assert_msg(jobjson_parse_rfc3339(good[i].s, &ms) == 0,
                              "refused %s", good[i].s);
                ck_assert_int_eq(ms, good[i].ms);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_msg(jobjson_parse_rfc3339(bad[i], &ms) == -1,
                              "accepted %s", bad[i]);

        job = parse("{\"tenant_id\":\"t\",\"deadline\":"
                    "\"2025-06-01T12:00:00Z\",\"chat\":{\"prompt\":\"x\"}}",
                    0);
        ck_assert_msg(job, "%s", errstr);
        ck_assert_int_eq(job->deadline_ms, 1748779200000LL);
        codec_job_free(job);

        expect_error("{\"tenant_id\":\"t\",\"deadline\":\"soon\","
                     "\"chat\":{\"prompt\":\"x\"}}",
                     "deadline \"soon\" is not an RFC 3339 timestamp");
        expect_error("{\"tenant_id\":\"t\",\"deadline\":"
                     "\"2025-06-01T12:00:00Z\",\"deadline_ms\":5,"
                     "\"chat\":{\"prompt\":\"x\"}}",
                     "deadline and deadline_ms cannot both be given");
}
END_TEST

/* ---- runner ------------------------------------------------------------ */

static Suite *jobjson_suite(void)
{
        /* Not static: Check's test names are pointer variables. */
        const struct {
                const char *name;
                const TTest *fn;
                int loop_end; /**< 0: run once */
        } tests[] = {
                {"round_trip", test_every_kind_round_trips, 5},
                {"chat_fields", test_chat_fields, 0},
                {"float_short", test_float_prints_short, 0},
                {"kind_inferred", test_kind_inferred, 0},
                {"kind_disagree", test_kind_payload_disagree, 0},
                {"unknown_key", test_unknown_key_named, 0},
                {"wrong_type", test_wrong_type_named, 0},
                {"null_absent", test_null_is_absent, 0},
                {"prompt_shorthand", test_chat_prompt_shorthand, 0},
                {"invalid_job", test_invalid_job_fails_validation, 0},
                {"deadline", test_deadline_rfc3339, 0},
        };
        Suite *s = suite_create("jobjson");

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
        SRunner *sr = srunner_create(jobjson_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
