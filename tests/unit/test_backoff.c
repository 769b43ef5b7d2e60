/*
 * Unit tests for worker/backoff.c: full-jitter bounds, the cap, provider
 * hints, and fitting a delay before a deadline.  Randomness and time are
 * passed in, so every case is exact.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "backoff.h"

#define RND_MID (UINT32_MAX / 2)

static const struct backoff_cfg cfg = {
        .base_ms = 200, .cap_ms = 20000, .hint_max_ms = 30000};

/* The ceiling for retry \p attempt, computed independently. */
static int64_t ceiling(const struct backoff_cfg *c, int attempt)
{
        int64_t v = c->base_ms;

        for (int i = 1; i < attempt; i++)
                v = v >= c->cap_ms ? c->cap_ms : v * 2;
        return v < c->cap_ms ? v : c->cap_ms;
}

START_TEST(test_jitter_bounds)
{
        static const int64_t want[] = {200,  400,   800,   1600,  3200,
                                       6400, 12800, 20000, 20000, 20000};

        for (int a = 1; a <= 10; a++) {
                int64_t c = ceiling(&cfg, a);
                int64_t mid = backoff_delay_ms(&cfg, a, -1, RND_MID);

                ck_assert_int_eq(c, want[a - 1]);
                ck_assert_int_eq(backoff_delay_ms(&cfg, a, -1, 0), 0);
                ck_assert_int_eq(backoff_delay_ms(&cfg, a, -1, UINT32_MAX),
                                 c);
                ck_assert_msg(mid >= c / 2 - 1 && mid <= c / 2,
                              "attempt %d: mid %lld, ceiling %lld", a,
                              (long long)mid, (long long)c);
        }
}
END_TEST

START_TEST(test_cap)
{
        const struct backoff_cfg small = {1000, 3000, 30000};
        const struct backoff_cfg inverted = {500, 100, 30000};

        ck_assert_int_eq(backoff_delay_ms(&small, 2, -1, UINT32_MAX), 2000);
        ck_assert_int_eq(backoff_delay_ms(&small, 3, -1, UINT32_MAX), 3000);
        /* Large attempt numbers must not overflow past the cap. */
        ck_assert_int_eq(backoff_delay_ms(&small, 200, -1, UINT32_MAX), 3000);
        ck_assert_int_eq(backoff_delay_ms(&cfg, 1000000, -1, UINT32_MAX),
                         20000);
        ck_assert_int_eq(backoff_delay_ms(&inverted, 1, -1, UINT32_MAX), 100);
        /* Attempt 0 or below is treated as the first. */
        ck_assert_int_eq(backoff_delay_ms(&cfg, 0, -1, UINT32_MAX), 200);
}
END_TEST

START_TEST(test_hint)
{
        int64_t mid = backoff_delay_ms(&cfg, 1, 1000, RND_MID);

        ck_assert_int_eq(backoff_delay_ms(&cfg, 1, 1000, 0), 1000);
        ck_assert_int_eq(backoff_delay_ms(&cfg, 1, 1000, UINT32_MAX), 1100);
        ck_assert_msg(mid >= 1049 && mid <= 1050, "mid %lld",
                      (long long)mid);
        /* The hint wins over the attempt's ceiling and over the cap. */
        ck_assert_int_eq(backoff_delay_ms(&cfg, 9, 25000, 0), 25000);
        ck_assert_int_eq(backoff_delay_ms(&cfg, 1, 0, UINT32_MAX), 0);
        /* Exactly hint_max is still waited for; above it is "not now". */
        ck_assert_int_eq(backoff_delay_ms(&cfg, 1, 30000, UINT32_MAX), 33000);
        ck_assert_int_eq(backoff_delay_ms(&cfg, 1, 30001, 0), -1);
        ck_assert_int_eq(backoff_delay_ms(&cfg, 1, INT64_MAX / 2, 0), -1);
}
END_TEST

START_TEST(test_fit_deadline)
{
        const int64_t now = 1000000000; /* 1000 s, in us */

        /* No deadline: unchanged. */
        ck_assert_int_eq(backoff_fit_deadline(5000, now, 0), 5000);
        ck_assert_int_eq(backoff_fit_deadline(99999999, now, 0), 99999999);
        /* Fits: 5 s left. */
        ck_assert_int_eq(backoff_fit_deadline(1000, now, now + 5000000),
                         1000);
        ck_assert_int_eq(backoff_fit_deadline(4999, now, now + 5000000),
                         4999);
        /* Would land on or after the deadline: no retry. */
        ck_assert_int_eq(backoff_fit_deadline(5000, now, now + 5000000), -1);
        ck_assert_int_eq(backoff_fit_deadline(6000, now, now + 5000000), -1);
        /* Deadline now or past: no time left, even for no delay. */
        ck_assert_int_eq(backoff_fit_deadline(0, now, now), -1);
        ck_assert_int_eq(backoff_fit_deadline(0, now, now - 1), -1);
        ck_assert_int_eq(backoff_fit_deadline(100, now, 1), -1);
}
END_TEST

static Suite *backoff_suite(void)
{
        const struct {
                const char *name;
                const TTest *fn;
        } tests[] = {
                {"jitter_bounds", test_jitter_bounds},
                {"cap", test_cap},
                {"hint", test_hint},
                {"fit_deadline", test_fit_deadline},
        };
        Suite *s = suite_create("backoff");

        for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
                TCase *tc = tcase_create(tests[i].name);

                tcase_add_test(tc, tests[i].fn);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(backoff_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
