/*
 * Unit tests for worker/policy.c: the circuit breaker (min samples, the
 * threshold, the sliding window, cooldown and a single probe), the
 * latency estimate, route ordering by each strategy, and key pools.
 * The clock is moved by hand and the random state is seeded, so every
 * case is repeatable.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define T0 1000000 /* an arbitrary monotonic start, in ms */
#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Record \p n outcomes of one kind at \p now; none may change the state. */
static void record_n(struct policy_breaker *b, int64_t now, int n, int ok)
{
        for (int i = 0; i < n; i++)
                ck_assert_int_eq(policy_breaker_record(b, now, ok), -1);
}

/* A default breaker that opened at \p now (20 errors in a row). */
static void open_at(struct policy_breaker *b, int64_t now)
{
        policy_breaker_init(b, NULL);
        record_n(b, now, POLICY_BREAKER_MIN_SAMPLES - 1, 0);
        ck_assert_int_eq(policy_breaker_record(b, now, 0), POLICY_OPEN);
        ck_assert_int_eq(policy_breaker_state(b), POLICY_OPEN);
}

static void assert_counts(const struct policy_breaker *b, int64_t now,
                          int64_t calls, int64_t errors)
{
        int64_t c, e;

        policy_breaker_counts(b, now, &c, &e);
        ck_assert_int_eq(c, calls);
        ck_assert_int_eq(e, errors);
}

START_TEST(test_breaker_defaults)
{
        const struct policy_breaker_cfg zero = {0};
        const struct policy_breaker_cfg own = {0.5, 4, 1000, 500, 2000};
        struct policy_breaker b;

        policy_breaker_init(&b, NULL);
        ck_assert_double_eq(b.cfg.threshold, 0.10);
        ck_assert_int_eq(b.cfg.min_samples, 20);
        ck_assert_int_eq(b.cfg.window_ms, 60000);
        ck_assert_int_eq(b.cfg.cooldown_ms, 30000);
        ck_assert_int_eq(b.bucket_ms, 6000);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_CLOSED);
        assert_counts(&b, T0, 0, 0);
        policy_breaker_init(&b, &zero);
        ck_assert_int_eq(b.cfg.min_samples, 20);
        ck_assert_int_eq(b.cfg.probe_timeout_ms, 300000);
        /* Own values are kept: 2 of 4 is not above 0.5, 3 of 5 is. */
        policy_breaker_init(&b, &own);
        ck_assert_int_eq(b.bucket_ms, 100);
        record_n(&b, T0, 2, 1);
        record_n(&b, T0, 2, 0);
        ck_assert_int_eq(policy_breaker_record(&b, T0, 0), POLICY_OPEN);
}
END_TEST

START_TEST(test_breaker_one_error)
{
        struct policy_breaker b;

        policy_breaker_init(&b, NULL);
        ck_assert_int_eq(policy_breaker_record(&b, T0, 0), -1);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_CLOSED);
        ck_assert_int_eq(policy_breaker_allow(&b, T0), POLICY_ALLOW);
        assert_counts(&b, T0, 1, 1);
}
END_TEST

START_TEST(test_breaker_below_min_samples)
{
        struct policy_breaker b;

        policy_breaker_init(&b, NULL);
        /* 19 calls, every one failed: too few to judge. */
        for (int i = 0; i < 19; i++) {
                ck_assert_int_eq(policy_breaker_record(&b, T0 + i * 100, 0),
                                 -1);
                ck_assert_int_eq(policy_breaker_allow(&b, T0 + i * 100),
                                 POLICY_ALLOW);
        }
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_CLOSED);
        /* The 20th makes enough samples. */
        ck_assert_int_eq(policy_breaker_record(&b, T0 + 2000, 0),
                         POLICY_OPEN);
}
END_TEST

START_TEST(test_breaker_opens_over_threshold)
{
        struct policy_breaker b;
        int64_t t = T0;

        policy_breaker_init(&b, NULL);
        /* Spread over several buckets of the window: 18 ok, 2 errors. */
        for (int i = 0; i < 18; i++, t += 2500)
                ck_assert_int_eq(policy_breaker_record(&b, t, 1), -1);
        record_n(&b, t, 2, 0);
        /* Exactly 10% is not above 10%. */
        assert_counts(&b, t, 20, 2);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_CLOSED);
        /* 3 of 21 is. */
        ck_assert_int_eq(policy_breaker_record(&b, t, 0), POLICY_OPEN);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_OPEN);
        ck_assert_str_eq(policy_breaker_state_name(policy_breaker_state(&b)),
                         "open");
}
END_TEST

START_TEST(test_breaker_window_slides)
{
        struct policy_breaker b;
        const int64_t start = 600000; /* on a bucket boundary */

        /* 5 errors, then a minute later 19 ok and 1 error: the old
         * errors have slid out, 1 of 20 does not open it. */
        policy_breaker_init(&b, NULL);
        record_n(&b, start, 5, 0);
        assert_counts(&b, start + 59999, 5, 5);
        assert_counts(&b, start + 60000, 0, 0);
        record_n(&b, start + 60000, 19, 1);
        record_n(&b, start + 60000, 1, 0);
        assert_counts(&b, start + 60000, 20, 1);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_CLOSED);

        /* The same a millisecond sooner: 6 of 20 opens it. */
        policy_breaker_init(&b, NULL);
        record_n(&b, start, 5, 0);
        record_n(&b, start + 59999, 14, 1);
        ck_assert_int_eq(policy_breaker_record(&b, start + 59999, 0),
                         POLICY_OPEN);

        /* 5 errors and then 15 successes: the success that makes 20
         * samples finds 25% and opens it. */
        policy_breaker_init(&b, NULL);
        record_n(&b, start, 5, 0);
        record_n(&b, start + 1000, 14, 1);
        ck_assert_int_eq(policy_breaker_record(&b, start + 1000, 1),
                         POLICY_OPEN);
}
END_TEST

START_TEST(test_breaker_ring_reuse)
{
        struct policy_breaker b;

        /* Ten windows of traffic through the same ten slots: only the
         * last window is ever counted. */
        policy_breaker_init(&b, NULL);
        for (int64_t t = 0; t < 600000; t += 6000)
                record_n(&b, T0 + t, 1, 1);
        assert_counts(&b, T0 + 594000, 10, 0);
        assert_counts(&b, T0 + 594000 + 6000 * 9, 1, 0);
        assert_counts(&b, T0 + 594000 + 6000 * 10, 0, 0);
}
END_TEST

START_TEST(test_breaker_denies_while_open)
{
        struct policy_breaker b;

        open_at(&b, T0);
        ck_assert_int_eq(policy_breaker_allow(&b, T0), POLICY_DENY);
        ck_assert_int_eq(policy_breaker_allow(&b, T0 + 29999), POLICY_DENY);
        ck_assert_int_eq(policy_breaker_peek(&b, T0 + 29999), POLICY_DENY);
        /* Late outcomes of calls begun before it opened change nothing. */
        ck_assert_int_eq(policy_breaker_record(&b, T0 + 100, 1), -1);
        ck_assert_int_eq(policy_breaker_record(&b, T0 + 100, 0), -1);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_OPEN);
        ck_assert_int_eq(policy_breaker_allow(&b, T0 + 29999), POLICY_DENY);
}
END_TEST

START_TEST(test_breaker_one_probe)
{
        struct policy_breaker b;

        open_at(&b, T0);
        /* Peeking does not take the probe. */
        ck_assert_int_eq(policy_breaker_peek(&b, T0 + 30000), POLICY_PROBE);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_OPEN);
        ck_assert_int_eq(policy_breaker_allow(&b, T0 + 30000), POLICY_PROBE);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_HALF_OPEN);
        ck_assert_str_eq(policy_breaker_state_name(POLICY_HALF_OPEN),
                         "half_open");
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(policy_breaker_allow(&b, T0 + 30000 + i),
                                 POLICY_DENY);
        ck_assert_int_eq(policy_breaker_peek(&b, T0 + 90000), POLICY_DENY);
        ck_assert_int_eq(policy_breaker_allow(&b, T0 + 90000), POLICY_DENY);
}
END_TEST

START_TEST(test_breaker_probe_success_closes)
{
        struct policy_breaker b;
        const int64_t t = T0 + 30000;

        open_at(&b, T0);
        ck_assert_int_eq(policy_breaker_allow(&b, t), POLICY_PROBE);
        ck_assert_int_eq(policy_breaker_record(&b, t + 500, 1),
                         POLICY_CLOSED);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_CLOSED);
        ck_assert_int_eq(policy_breaker_allow(&b, t + 501), POLICY_ALLOW);
        /* The window was cleared: the old 20 errors are gone, and one new
         * error does not re-open it. */
        assert_counts(&b, t + 501, 0, 0);
        ck_assert_int_eq(policy_breaker_record(&b, t + 600, 0), -1);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_CLOSED);
}
END_TEST

START_TEST(test_breaker_probe_failure_reopens)
{
        struct policy_breaker b;
        const int64_t t = T0 + 30000;

        open_at(&b, T0);
        ck_assert_int_eq(policy_breaker_allow(&b, t), POLICY_PROBE);
        ck_assert_int_eq(policy_breaker_record(&b, t + 500, 0), POLICY_OPEN);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_OPEN);
        /* A full cooldown from the failed probe, not from the first
         * opening. */
        ck_assert_int_eq(policy_breaker_allow(&b, t + 500), POLICY_DENY);
        ck_assert_int_eq(policy_breaker_allow(&b, t + 30499), POLICY_DENY);
        ck_assert_int_eq(policy_breaker_allow(&b, t + 30500), POLICY_PROBE);
        ck_assert_int_eq(policy_breaker_allow(&b, t + 30500), POLICY_DENY);
}
END_TEST

START_TEST(test_breaker_probe_release_and_loss)
{
        struct policy_breaker b;
        const int64_t t = T0 + 30000;

        open_at(&b, T0);
        ck_assert_int_eq(policy_breaker_allow(&b, t), POLICY_PROBE);
        /* Its outcome said nothing about health: the next call probes. */
        policy_breaker_release(&b);
        ck_assert_int_eq(policy_breaker_state(&b), POLICY_HALF_OPEN);
        ck_assert_int_eq(policy_breaker_allow(&b, t + 1), POLICY_PROBE);
        ck_assert_int_eq(policy_breaker_allow(&b, t + 2), POLICY_DENY);
        /* A probe never reported is lost after probe_timeout_ms. */
        ck_assert_int_eq(policy_breaker_allow(&b, t + 1 + 299999),
                         POLICY_DENY);
        ck_assert_int_eq(policy_breaker_allow(&b, t + 1 + 300000),
                         POLICY_PROBE);
        /* Release does nothing when closed. */
        policy_breaker_init(&b, NULL);
        policy_breaker_release(&b);
        ck_assert_int_eq(policy_breaker_allow(&b, T0), POLICY_ALLOW);
}
END_TEST

START_TEST(test_breaker_state_names)
{
        ck_assert_str_eq(policy_breaker_state_name(POLICY_CLOSED), "closed");
        ck_assert_str_eq(policy_breaker_state_name(POLICY_OPEN), "open");
        ck_assert_str_eq(policy_breaker_state_name(-1), "?");
        ck_assert_str_eq(policy_breaker_state_name(3), "?");
}
END_TEST

START_TEST(test_latency)
{
        struct policy_latency l;

        policy_latency_init(&l, 0.5);
        ck_assert_double_eq(policy_latency_ms(&l), -1);
        policy_latency_add(&l, 100);
        ck_assert_double_eq(policy_latency_ms(&l), 100);
        policy_latency_add(&l, 200);
        ck_assert_double_eq(policy_latency_ms(&l), 150);
        policy_latency_add(&l, 50);
        ck_assert_double_eq(policy_latency_ms(&l), 100);
        ck_assert_int_eq(l.samples, 3);
        /* Out-of-range alpha takes the default; bad samples count as 0. */
        policy_latency_init(&l, 0);
        ck_assert_double_eq(l.alpha, 0.2);
        policy_latency_init(&l, 1.5);
        ck_assert_double_eq(l.alpha, 0.2);
        policy_latency_add(&l, -5);
        ck_assert_double_eq(policy_latency_ms(&l), 0);
        policy_latency_add(&l, 1000);
        ck_assert_double_eq_tol(policy_latency_ms(&l), 200, 1e-9);
        policy_latency_add(&l, NAN);
        ck_assert_double_eq_tol(policy_latency_ms(&l), 160, 1e-9);
}
END_TEST

START_TEST(test_rand)
{
        uint64_t a = 0, b = 0, prev;

        /* Same seed, same sequence; a zero seed does not get stuck. */
        prev = policy_rand(&a);
        ck_assert_uint_eq(prev, policy_rand(&b));
        for (int i = 0; i < 100; i++) {
                uint64_t v = policy_rand(&a);

                ck_assert_uint_eq(v, policy_rand(&b));
                ck_assert_uint_ne(v, prev);
                prev = v;
        }
}
END_TEST

/* out[0..m) holds each of \p want (m of them) once, in any order. */
static void assert_same_set(const size_t *out, size_t m, const size_t *want,
                            size_t nwant)
{
        ck_assert_uint_eq(m, nwant);
        for (size_t i = 0; i < nwant; i++) {
                int seen = 0;

                for (size_t j = 0; j < m; j++)
                        seen += out[j] == want[i];
                ck_assert_msg(seen == 1, "index %zu seen %d times", want[i],
                              seen);
        }
}

START_TEST(test_order_priority)
{
        const struct policy_cand c[] = {
                {10, 5, 1}, {10, 1, 0}, {0, -1, 1}, {90, 2, 1}};
        size_t out[4];
        uint64_t rng = 1;

        ck_assert_uint_eq(policy_order(POLICY_PRIORITY, c, 4, 1.0, &rng,
                                       out),
                          3);
        ck_assert_uint_eq(out[0], 0);
        ck_assert_uint_eq(out[1], 2);
        ck_assert_uint_eq(out[2], 3);
        ck_assert_uint_eq(rng, 1); /* no randomness used */
        ck_assert_uint_eq(policy_order(POLICY_PRIORITY, c, 0, 0, NULL, out),
                          0);
}
END_TEST

START_TEST(test_order_weighted_split)
{
        /* DESIGN's example: hunyuan 50, nvidia 20 + 20, zhipu 10. */
        const struct policy_cand c[] = {
                {50, -1, 1}, {20, -1, 1}, {20, -1, 1}, {10, -1, 1}};
        const double want[] = {50, 20, 20, 10};
        const size_t all[] = {0, 1, 2, 3};
        const int runs = 10000;
        int first[4] = {0}, second0 = 0;
        uint64_t rng = 42;
        size_t out[4];

        for (int r = 0; r < runs; r++) {
                size_t m = policy_order(POLICY_WEIGHTED, c, 4, 0, &rng, out);

                assert_same_set(out, m, all, 4);
                first[out[0]]++;
                second0 += out[1] == 0;
        }
        for (int i = 0; i < 4; i++)
                ck_assert_msg(fabs(100.0 * first[i] / runs - want[i]) <= 2,
                              "candidate %d first in %d of %d", i, first[i],
                              runs);
        /* Without replacement: hunyuan is second in
         * .2*50/80 + .2*50/80 + .1*50/90 = 30.6% of orders. */
        ck_assert_msg(fabs(100.0 * second0 / runs - 30.56) <= 2,
                      "hunyuan second in %d of %d", second0, runs);
}
END_TEST

START_TEST(test_order_weight_zero)
{
        const struct policy_cand c[] = {
                {0, -1, 1}, {5, -1, 1}, {-3, -1, 1}, {3, -1, 1}, {0, -1, 1}};
        const struct policy_cand zeros[] = {{0, -1, 1}, {0, -1, 1}};
        int first1 = 0;
        uint64_t rng = 7;
        size_t out[5];

        for (int r = 0; r < 1000; r++) {
                ck_assert_uint_eq(policy_order(POLICY_WEIGHTED, c, 5, 0,
                                               &rng, out),
                                  5);
                /* Positive weights first, then the rest as given. */
                ck_assert((out[0] == 1 && out[1] == 3) ||
                          (out[0] == 3 && out[1] == 1));
                ck_assert_uint_eq(out[2], 0);
                ck_assert_uint_eq(out[3], 2);
                ck_assert_uint_eq(out[4], 4);
                first1 += out[0] == 1;
        }
        /* 5 : 3 between the two that have a weight. */
        ck_assert_msg(first1 > 560 && first1 < 690, "first1 %d", first1);
        ck_assert_uint_eq(policy_order(POLICY_WEIGHTED, zeros, 2, 0, &rng,
                                       out),
                          2);
        ck_assert_uint_eq(out[0], 0);
        ck_assert_uint_eq(out[1], 1);
}
END_TEST

START_TEST(test_order_latency)
{
        const struct policy_cand c[] = {
                {0, 300, 1}, {0, -1, 1}, {0, 100, 1}, {0, 200, 0},
                {0, 100, 1}, {0, NAN, 1}, {0, 0, 1}};
        const size_t want[] = {1, 5, 6, 2, 4, 0};
        size_t out[7];
        uint64_t rng = 3;

        ck_assert_uint_eq(policy_order(POLICY_LATENCY, c, 7, 0, &rng, out),
                          6);
        for (size_t i = 0; i < 6; i++)
                ck_assert_uint_eq(out[i], want[i]);
        ck_assert_uint_eq(rng, 3); /* explore 0 draws nothing */
        ck_assert_uint_eq(policy_order(POLICY_LATENCY, c, 7, 0, NULL, out),
                          6);
}
END_TEST

START_TEST(test_order_latency_explore)
{
        const struct policy_cand c[] = {
                {0, 250, 1}, {0, 80, 1}, {0, 400, 1}};
        const size_t all[] = {0, 1, 2};
        const int runs = 10000;
        int front[3] = {0};
        uint64_t rng = 99;
        size_t out[3];

        for (int r = 0; r < runs; r++) {
                size_t m = policy_order(POLICY_LATENCY, c, 3, 0.05, &rng,
                                        out);

                assert_same_set(out, m, all, 3);
                front[out[0]]++;
        }
        /* 5% of orders start elsewhere, split evenly between the two. */
        ck_assert_msg(fabs(100.0 * (runs - front[1]) / runs - 5) <= 1,
                      "fastest first in %d of %d", front[1], runs);
        ck_assert_msg(front[0] > 150 && front[0] < 350, "front0 %d",
                      front[0]);
        ck_assert_msg(front[2] > 150 && front[2] < 350, "front2 %d",
                      front[2]);
        /* Always exploring: the fastest is never first. */
        for (int r = 0; r < 100; r++) {
                policy_order(POLICY_LATENCY, c, 3, 1.0, &rng, out);
                ck_assert_uint_ne(out[0], 1);
        }
}
END_TEST

START_TEST(test_order_unusable_never)
{
        enum policy_strategy ss[] = {POLICY_PRIORITY, POLICY_WEIGHTED,
                                     POLICY_LATENCY};
        struct policy_cand c[8];
        size_t out[8], want[8];
        uint64_t rng = 2024;

        for (int r = 0; r < 3000; r++) {
                uint64_t bits = policy_rand(&rng);
                size_t nwant = 0;

                for (size_t i = 0; i < 8; i++) {
                        c[i].weight = (int64_t)(bits >> (8 + 4 * i) & 7);
                        c[i].latency_ms = (double)(bits >> (40 + i) & 1
                                                           ? -1
                                                           : (int)i * 10);
                        c[i].usable = (int)(bits >> i & 1);
                        if (c[i].usable)
                                want[nwant++] = i;
                }
                assert_same_set(out,
                                policy_order(ss[r % 3], c, 8, 0.5, &rng, out),
                                want, nwant);
        }
}
END_TEST

START_TEST(test_strategy_parse)
{
        ck_assert_int_eq(policy_strategy_parse("priority"), POLICY_PRIORITY);
        ck_assert_int_eq(policy_strategy_parse("weighted"), POLICY_WEIGHTED);
        ck_assert_int_eq(policy_strategy_parse("latency"), POLICY_LATENCY);
        ck_assert_int_eq(policy_strategy_parse("fastest"), -1);
        ck_assert_int_eq(policy_strategy_parse(""), -1);
        ck_assert_int_eq(policy_strategy_parse(NULL), -1);
        ck_assert_int_eq(policy_key_choice_parse("round_robin"),
                         POLICY_KEYS_ROUND_ROBIN);
        ck_assert_int_eq(policy_key_choice_parse("least_used"),
                         POLICY_KEYS_LEAST_USED);
        ck_assert_int_eq(policy_key_choice_parse("random"), -1);
        ck_assert_int_eq(policy_key_choice_parse(NULL), -1);
}
END_TEST

START_TEST(test_keys_round_robin)
{
        const struct policy_key k[] = {{0, 0, 0}, {1, 0, 0}, {0, 0, 0},
                                       {1, 0, 0}, {0, 0, 0}};
        const size_t want[] = {0, 2, 4, 0, 2, 4, 0};
        size_t cursor = 0;

        for (size_t i = 0; i < NELEMS(want); i++)
                ck_assert_uint_eq(policy_pick_key(k, 5, POLICY_KEYS_ROUND_ROBIN,
                                                  &cursor),
                                  want[i]);
        /* A cursor on a disabled key, or out of range, still works. */
        cursor = 3;
        ck_assert_uint_eq(
                policy_pick_key(k, 5, POLICY_KEYS_ROUND_ROBIN, &cursor), 4);
        cursor = 12; /* 12 % 5 = 2 */
        ck_assert_uint_eq(
                policy_pick_key(k, 5, POLICY_KEYS_ROUND_ROBIN, &cursor), 2);
        ck_assert_uint_eq(cursor, 3);
        /* No overflow at the top of the range (SIZE_MAX % 5 == 0). */
        cursor = SIZE_MAX;
        ck_assert_uint_eq(
                policy_pick_key(k, 5, POLICY_KEYS_ROUND_ROBIN, &cursor), 0);
}
END_TEST

START_TEST(test_keys_least_used)
{
        const struct policy_key k[] = {
                {0, 2, 0}, {0, 1, 9}, {1, 0, 0}, {0, 1, 4}, {0, 1, 4}};
        const struct policy_key tie[] = {{1, 0, 0}, {0, 3, 3}, {0, 3, 3}};

        /* Disabled 2 is idle but skipped; 3 and 4 tie: the lower wins. */
        ck_assert_uint_eq(policy_pick_key(k, 5, POLICY_KEYS_LEAST_USED, NULL),
                          3);
        ck_assert_uint_eq(
                policy_pick_key(tie, 3, POLICY_KEYS_LEAST_USED, NULL), 1);
        ck_assert_uint_eq(policy_pick_key(k, 1, POLICY_KEYS_LEAST_USED, NULL),
                          0);
}
END_TEST

START_TEST(test_keys_all_disabled)
{
        const struct policy_key k[] = {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}};
        size_t cursor = 1;

        ck_assert_uint_eq(
                policy_pick_key(k, 3, POLICY_KEYS_ROUND_ROBIN, &cursor), 3);
        ck_assert_uint_eq(cursor, 1);
        ck_assert_uint_eq(policy_pick_key(k, 3, POLICY_KEYS_LEAST_USED, NULL),
                          3);
        ck_assert_uint_eq(
                policy_pick_key(k, 0, POLICY_KEYS_ROUND_ROBIN, &cursor), 0);
        ck_assert_uint_eq(policy_pick_key(NULL, 0, POLICY_KEYS_LEAST_USED,
                                          NULL),
                          0);
}
END_TEST

static Suite *policy_suite(void)
{
        const struct {
                const char *name;
                const TTest *fn;
        } tests[] = {
                {"breaker_defaults", test_breaker_defaults},
                {"breaker_one_error", test_breaker_one_error},
                {"breaker_below_min_samples", test_breaker_below_min_samples},
                {"breaker_opens_over_threshold",
                 test_breaker_opens_over_threshold},
                {"breaker_window_slides", test_breaker_window_slides},
                {"breaker_ring_reuse", test_breaker_ring_reuse},
                {"breaker_denies_while_open", test_breaker_denies_while_open},
                {"breaker_one_probe", test_breaker_one_probe},
                {"breaker_probe_success_closes",
                 test_breaker_probe_success_closes},
                {"breaker_probe_failure_reopens",
                 test_breaker_probe_failure_reopens},
                {"breaker_probe_release_and_loss",
                 test_breaker_probe_release_and_loss},
                {"breaker_state_names", test_breaker_state_names},
                {"latency", test_latency},
                {"rand", test_rand},
                {"order_priority", test_order_priority},
                {"order_weighted_split", test_order_weighted_split},
                {"order_weight_zero", test_order_weight_zero},
                {"order_latency", test_order_latency},
                {"order_latency_explore", test_order_latency_explore},
                {"order_unusable_never", test_order_unusable_never},
                {"strategy_parse", test_strategy_parse},
                {"keys_round_robin", test_keys_round_robin},
                {"keys_least_used", test_keys_least_used},
                {"keys_all_disabled", test_keys_all_disabled},
        };
        Suite *s = suite_create("policy");

        for (size_t i = 0; i < NELEMS(tests); i++) {
                TCase *tc = tcase_create(tests[i].name);

                tcase_add_test(tc, tests[i].fn);
                suite_add_tcase(s, tc);
        }
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(policy_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
