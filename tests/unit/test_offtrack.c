/*
 * Unit tests for worker/offtrack.c: the store position only moves over a
 * contiguous run of done offsets, per partition, whatever order jobs
 * finish in; rewinds, drops and ring growth with wraparound.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "offtrack.h"

#define T "genq.jobs.chat"

/* A fixed-seed generator, so a failure replays the same order. */
static uint32_t rnd_state = 0x9e3779b9u;

static uint32_t rnd(void)
{
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 17;
        rnd_state ^= rnd_state << 5;
        return rnd_state;
}

START_TEST(test_in_order)
{
        offtrack_t *ot = offtrack_new();

        for (int64_t o = 0; o < 5; o++)
                ck_assert_int_eq(offtrack_add(ot, T, 0, o), 0);
        ck_assert_uint_eq(offtrack_pending(ot), 5);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 0), 1);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 1), 2);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 0), 3);
        ck_assert_uint_eq(offtrack_pending(ot), 3);
        offtrack_destroy(ot);
        offtrack_destroy(NULL);
}
END_TEST

START_TEST(test_out_of_order)
{
        offtrack_t *ot = offtrack_new();

        for (int64_t o = 10; o < 15; o++)
                offtrack_add(ot, T, 3, o);
        ck_assert_int_eq(offtrack_done(ot, T, 3, 12), -1);
        ck_assert_int_eq(offtrack_done(ot, T, 3, 11), -1);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 3), 5);
        ck_assert_int_eq(offtrack_done(ot, T, 3, 10), 13);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 3), 2);
        ck_assert_int_eq(offtrack_done(ot, T, 3, 14), -1);
        ck_assert_int_eq(offtrack_done(ot, T, 3, 13), 15);
        ck_assert_uint_eq(offtrack_pending(ot), 0);
        offtrack_destroy(ot);
}
END_TEST

/* Gaps in offsets (compaction, transaction markers) are fine. */
START_TEST(test_gaps_and_unknown)
{
        offtrack_t *ot = offtrack_new();

        offtrack_add(ot, T, 0, 5);
        offtrack_add(ot, T, 0, 7);
        offtrack_add(ot, T, 0, 9);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 6), -2);  /* never added */
        ck_assert_int_eq(offtrack_done(ot, T, 1, 5), -2);  /* other partition */
        ck_assert_int_eq(offtrack_done(ot, "x", 0, 5), -2); /* other topic */
        ck_assert_int_eq(offtrack_done(ot, T, 0, 7), -1);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 7), -2);  /* twice */
        ck_assert_int_eq(offtrack_done(ot, T, 0, 5), 8);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 5), -2);  /* already stored */
        ck_assert_int_eq(offtrack_done(ot, T, 0, 9), 10);
        ck_assert_uint_eq(offtrack_pending(ot), 0);
        ck_assert_uint_eq(offtrack_pending_in(ot, "never", 9), 0);
        offtrack_destroy(ot);
}
END_TEST

START_TEST(test_rewind)
{
        offtrack_t *ot = offtrack_new();

        offtrack_add(ot, T, 0, 10);
        offtrack_add(ot, T, 0, 11);
        offtrack_add(ot, T, 0, 12);
        offtrack_add(ot, T, 1, 100);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 11), -1);
        /* A seek back: what was pending will be delivered again. */
        ck_assert_int_eq(offtrack_add(ot, T, 0, 5), -1);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 0), 1);
        ck_assert_uint_eq(offtrack_pending(ot), 2);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 12), -2);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 10), -2);
        ck_assert_int_eq(offtrack_add(ot, T, 0, 6), 0);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 5), 6);
        /* The same offset again is a rewind too. */
        ck_assert_int_eq(offtrack_add(ot, T, 0, 6), -1);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 0), 1);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 6), 7);
        /* The other partition was not touched. */
        ck_assert_int_eq(offtrack_done(ot, T, 1, 100), 101);
        ck_assert_uint_eq(offtrack_pending(ot), 0);
        offtrack_destroy(ot);
}
END_TEST

START_TEST(test_drop)
{
        offtrack_t *ot = offtrack_new();

        for (int32_t p = 0; p < 3; p++)
                for (int64_t o = 0; o < 4; o++)
                        offtrack_add(ot, T, p, 100 * p + o);
        ck_assert_int_eq(offtrack_done(ot, T, 2, 201), -1);
        /* Drop the first: the others must keep their state. */
        offtrack_drop(ot, T, 0);
        offtrack_drop(ot, T, 7); /* unknown: no-op */
        ck_assert_uint_eq(offtrack_pending(ot), 8);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 0), 0);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 0), -2);
        ck_assert_int_eq(offtrack_done(ot, T, 2, 200), 202);
        ck_assert_int_eq(offtrack_done(ot, T, 1, 100), 101);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 1), 3);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 2), 2);
        /* Reassigned later: starts fresh, any offset. */
        ck_assert_int_eq(offtrack_add(ot, T, 0, 2), 0);
        ck_assert_int_eq(offtrack_done(ot, T, 0, 2), 3);
        ck_assert_uint_eq(offtrack_pending(ot), 5);
        offtrack_destroy(ot);
}
END_TEST

/* More partitions than the first table holds; topics that share a
 * prefix and partition numbers are distinct. */
START_TEST(test_many_partitions)
{
        static const char *topics[] = {"a", "ab", "a.b"};
        offtrack_t *ot = offtrack_new();

        for (size_t t = 0; t < 3; t++)
                for (int32_t p = 0; p < 40; p++)
                        for (int64_t o = 0; o <= (int64_t)t; o++)
                                offtrack_add(ot, topics[t], p, 1000 * p + o);
        ck_assert_uint_eq(offtrack_pending(ot), 40 * (1 + 2 + 3));
        for (size_t t = 0; t < 3; t++)
                ck_assert_uint_eq(offtrack_pending_in(ot, topics[t], 39),
                                  t + 1);
        for (size_t t = 0; t < 3; t++)
                for (int32_t p = 39; p >= 0; p--)
                        for (int64_t o = (int64_t)t; o >= 0; o--)
                                ck_assert_int_eq(
                                        offtrack_done(ot, topics[t], p,
                                                      1000 * p + o),
                                        o == 0 ? 1000 * p + (int64_t)t + 1
                                               : -1);
        ck_assert_uint_eq(offtrack_pending(ot), 0);
        offtrack_destroy(ot);
}
END_TEST

#define N_OFF 1000
#define BASE 5000

/* The reference model: done flags and the longest completed prefix. */
struct model {
        char done[N_OFF];
        size_t added, prefix;
};

/* Mark offset index \p i done in both; the tracker must agree. */
static void complete(offtrack_t *ot, struct model *m, size_t i)
{
        size_t before = m->prefix;
        int64_t got = offtrack_done(ot, T, 0, BASE + (int64_t)i);

        m->done[i] = 1;
        while (m->prefix < m->added && m->done[m->prefix])
                m->prefix++;
        ck_assert_int_eq(got,
                         m->prefix > before ? BASE + (int64_t)m->prefix : -1);
        ck_assert_uint_eq(offtrack_pending_in(ot, T, 0),
                          m->added - m->prefix);
}

static void shuffle(size_t *v, size_t n)
{
        for (size_t i = n - 1; i > 0; i--) {
                size_t j = rnd() % (i + 1), t = v[i];

                v[i] = v[j];
                v[j] = t;
        }
}

START_TEST(test_random_completion)
{
        static struct model m;
        static size_t order[N_OFF];
        offtrack_t *ot = offtrack_new();

        for (size_t i = 0; i < N_OFF; i++) {
                ck_assert_int_eq(offtrack_add(ot, T, 0, BASE + (int64_t)i), 0);
                order[i] = i;
                m.added++;
        }
        shuffle(order, N_OFF);
        for (size_t i = 0; i < N_OFF; i++)
                complete(ot, &m, order[i]);
        ck_assert_uint_eq(m.prefix, N_OFF);
        ck_assert_uint_eq(offtrack_pending(ot), 0);
        offtrack_destroy(ot);
}
END_TEST

/* A sliding window: adds and completions interleave, so the ring wraps
 * many times and grows while wrapped. */
START_TEST(test_window_wraps)
{
        static struct model m;
        static size_t open[N_OFF];
        size_t n_open = 0;
        offtrack_t *ot = offtrack_new();

        while (m.added < N_OFF || n_open > 0) {
                /* Window of ~40 at first, then ~150 (past 64 and 128). */
                size_t want = m.added < N_OFF / 2 ? 40 : 150;

                while (m.added < N_OFF && n_open < want) {
                        offtrack_add(ot, T, 0, BASE + (int64_t)m.added);
                        open[n_open++] = m.added++;
                }
                for (int k = 0; k < 3 && n_open > 0; k++) {
                        size_t j = rnd() % n_open, i = open[j];

                        open[j] = open[--n_open];
                        complete(ot, &m, i);
                }
        }
        ck_assert_uint_eq(m.prefix, N_OFF);
        ck_assert_uint_eq(offtrack_pending(ot), 0);
        offtrack_destroy(ot);
}
END_TEST

static Suite *offtrack_suite(void)
{
        const struct {
                const char *name;
                const TTest *fn;
        } tests[] = {
                {"in_order", test_in_order},
                {"out_of_order", test_out_of_order},
                {"gaps_unknown", test_gaps_and_unknown},
                {"rewind", test_rewind},
                {"drop", test_drop},
                {"many_partitions", test_many_partitions},
                {"random_completion", test_random_completion},
                {"window_wraps", test_window_wraps},
        };
        Suite *s = suite_create("offtrack");

        for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
                TCase *tc = tcase_create(tests[i].name);

                tcase_add_test(tc, tests[i].fn);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(offtrack_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
