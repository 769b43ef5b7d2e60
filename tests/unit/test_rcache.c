/*
 * Unit tests for worker/rcache.c: which jobs are cacheable, and that the
 * key changes with everything that can change the answer or its owner.
 */
#include <check.h>
#include <string.h>

#include "codec.h"
#include "jobjson.h"
#include "rcache.h"

/* A job from JSON (the same path genq submit takes). */
static Genq__V1__Job *job(const char *json)
{
        char errstr[256];
        Genq__V1__Job *j = jobjson_parse(json, strlen(json), 0, errstr,
                                         sizeof(errstr));

        ck_assert_msg(j != NULL, "%s: %s", json, errstr);
        return j;
}

static int key_of(const char *json, char out[RCACHE_KEY_LEN + 1])
{
        Genq__V1__Job *j = job(json);
        int rc = rcache_key(j, out);

        codec_job_free(j);
        return rc;
}

#define BASE "\"job_id\":\"a\",\"kind\":\"chat\","
#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}]"

START_TEST(test_cacheable)
{
        char k[RCACHE_KEY_LEN + 1], k2[RCACHE_KEY_LEN + 1];

        ck_assert_int_eq(key_of("{" BASE "\"tenant_id\":\"t\",\"chat\":{" MSG
                                ",\"temperature\":0}}", k), 0);
        ck_assert_int_eq(strlen(k), RCACHE_KEY_LEN);
        /* the job id is not part of the request */
        ck_assert_int_eq(key_of("{\"job_id\":\"b\",\"kind\":\"chat\","
                                "\"tenant_id\":\"t\",\"chat\":{" MSG
                                ",\"temperature\":0}}", k2), 0);
        ck_assert_str_eq(k, k2);
}
END_TEST

START_TEST(test_not_cacheable)
{
        char k[RCACHE_KEY_LEN + 1];

        /* no temperature: the provider's default is not deterministic */
        ck_assert_int_eq(key_of("{" BASE "\"tenant_id\":\"t\",\"chat\":{" MSG
                                "}}", k), -1);
        ck_assert_int_eq(key_of("{" BASE "\"tenant_id\":\"t\",\"chat\":{" MSG
                                ",\"temperature\":0.2}}", k), -1);
        ck_assert_int_eq(key_of("{\"job_id\":\"a\",\"tenant_id\":\"t\","
                                "\"image\":{\"prompt\":\"x\"}}", k), -1);
}
END_TEST

START_TEST(test_key_changes)
{
        static const char *const variants[] = {
                "{" BASE "\"tenant_id\":\"u\",\"chat\":{" MSG
                ",\"temperature\":0}}",
                "{" BASE "\"tenant_id\":\"t\",\"route\":\"bulk\",\"chat\":{" MSG
                ",\"temperature\":0}}",
                "{" BASE "\"tenant_id\":\"t\",\"providers\":[\"groq\"],"
                "\"chat\":{" MSG ",\"temperature\":0}}",
                "{" BASE "\"tenant_id\":\"t\",\"chat\":{" MSG
                ",\"temperature\":0,\"max_tokens\":5}}",
                "{" BASE "\"tenant_id\":\"t\",\"chat\":{" MSG
                ",\"temperature\":0,\"model\":\"m\"}}",
                "{" BASE "\"tenant_id\":\"t\",\"chat\":{\"messages\":[{\"role\""
                ":\"user\",\"content\":\"2+3?\"}],\"temperature\":0}}",
        };
        char base[RCACHE_KEY_LEN + 1], k[RCACHE_KEY_LEN + 1];

        ck_assert_int_eq(key_of("{" BASE "\"tenant_id\":\"t\",\"chat\":{" MSG
                                ",\"temperature\":0}}", base), 0);
        for (size_t i = 0; i < sizeof(variants) / sizeof(*variants); i++) {
                ck_assert_int_eq(key_of(variants[i], k), 0);
                ck_assert_msg(strcmp(k, base) != 0, "variant %zu: same key",
                              i);
        }
}
END_TEST

int main(void)
{
        Suite *s = suite_create("rcache");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_cacheable);
        tcase_add_test(tc, test_not_cacheable);
        tcase_add_test(tc, test_key_changes);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
