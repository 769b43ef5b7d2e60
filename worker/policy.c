/* The fallback policy's decisions; see policy.h. */
#include <string.h>

#include "policy.h"

struct name_val {
        const char *name;
        int val;
};

static const struct name_val strategy_names[] = {
        {"priority", POLICY_PRIORITY},
        {"weighted", POLICY_WEIGHTED},
        {"latency", POLICY_LATENCY},
};

static const struct name_val key_choice_names[] = {
        {"round_robin", POLICY_KEYS_ROUND_ROBIN},
        {"least_used", POLICY_KEYS_LEAST_USED},
};

static const char *const state_names[] = {
        [POLICY_CLOSED] = "closed",
        [POLICY_OPEN] = "open",
        [POLICY_HALF_OPEN] = "half_open",
};

static int lookup(const struct name_val *t, size_t n, const char *name)
{
        if (!name)
                return -1;
        for (size_t i = 0; i < n; i++)
                if (!strcmp(t[i].name, name))
                        return t[i].val;
        return -1;
}

/* splitmix64 rather than xorshift: a zero state is fine, so callers may
 * seed with anything (a pid, a time, 0 in tests). */
uint64_t policy_rand(uint64_t *state)
{
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* Uniform in [0, bound), bound > 0.  The modulo bias is below
 * bound / 2^64: nothing next to the weights we see. */
static uint64_t rand_below(uint64_t *rng, uint64_t bound)
{
        return policy_rand(rng) % bound;
}

/* Uniform in [0, 1), from the top 53 bits. */
static double rand_unit(uint64_t *rng)
{
        return (double)(policy_rand(rng) >> 11) * 0x1p-53;
}

/*
 * Circuit breaker.
 */

static int64_t or_default(int64_t v, int64_t dflt)
{
        return v > 0 ? v : dflt;
}

/* Floored, so a clock that starts below zero still buckets evenly. */
static int64_t epoch_of(const struct policy_breaker *b, int64_t now_ms)
{
        int64_t e = now_ms / b->bucket_ms;

        return now_ms % b->bucket_ms < 0 ? e - 1 : e;
}

static int in_window(int64_t epoch, int64_t cur)
{
        return epoch <= cur && epoch > cur - POLICY_BREAKER_BUCKETS;
}

static void clear_window(struct policy_breaker *b)
{
        for (size_t i = 0; i < POLICY_BREAKER_BUCKETS; i++) {
                /* INT64_MIN is in no window: never counted. */
                b->ring[i].epoch = INT64_MIN;
                b->ring[i].ok = 0;
                b->ring[i].err = 0;
        }
}

void policy_breaker_init(struct policy_breaker *b,
                         const struct policy_breaker_cfg *cfg)
{
        static const struct policy_breaker_cfg none;
        const struct policy_breaker_cfg *c = cfg ? cfg : &none;

        /* `> 0` is also false for NaN, which then takes the default. */
        b->cfg.threshold = c->threshold > 0 ? c->threshold
                                            : POLICY_BREAKER_THRESHOLD;
        b->cfg.min_samples =
                or_default(c->min_samples, POLICY_BREAKER_MIN_SAMPLES);
        b->cfg.window_ms = or_default(c->window_ms, POLICY_BREAKER_WINDOW_MS);
        b->cfg.cooldown_ms =
                or_default(c->cooldown_ms, POLICY_BREAKER_COOLDOWN_MS);
        b->cfg.probe_timeout_ms = or_default(c->probe_timeout_ms,
                                             POLICY_BREAKER_PROBE_TIMEOUT_MS);
        b->bucket_ms = or_default(b->cfg.window_ms / POLICY_BREAKER_BUCKETS,
                                  1);
        b->state = POLICY_CLOSED;
        b->probing = 0;
        b->since_ms = 0;
        clear_window(b);
}

int policy_breaker_peek(const struct policy_breaker *b, int64_t now_ms)
{
        switch (b->state) {
        case POLICY_OPEN:
                return now_ms - b->since_ms >= b->cfg.cooldown_ms
                               ? POLICY_PROBE
                               : POLICY_DENY;
        case POLICY_HALF_OPEN:
                /* A probe that never reported must not shut the provider
                 * out for good: after probe_timeout_ms it counts as lost. */
                if (!b->probing ||
                    now_ms - b->since_ms >= b->cfg.probe_timeout_ms)
                        return POLICY_PROBE;
                return POLICY_DENY;
        default:
                return POLICY_ALLOW;
        }
}

int policy_breaker_allow(struct policy_breaker *b, int64_t now_ms)
{
        int v = policy_breaker_peek(b, now_ms);

        if (v == POLICY_PROBE) {
                b->state = POLICY_HALF_OPEN;
                b->probing = 1;
                b->since_ms = now_ms;
        }
        return v;
}

static int set_state(struct policy_breaker *b, int state, int64_t now_ms)
{
        b->state = state;
        b->probing = 0;
        b->since_ms = now_ms;
        return state;
}

static void count(struct policy_breaker *b, int64_t now_ms, int ok)
{
        int64_t cur = epoch_of(b, now_ms);
        struct policy_bucket *p =
                &b->ring[(cur % POLICY_BREAKER_BUCKETS +
                          POLICY_BREAKER_BUCKETS) % POLICY_BREAKER_BUCKETS];

        /* The slot last held a bucket that has slid out: reuse it. */
        if (p->epoch != cur) {
                p->epoch = cur;
                p->ok = 0;
                p->err = 0;
        }
        if (ok)
                p->ok++;
        else
                p->err++;
}

static int over_threshold(const struct policy_breaker *b, int64_t now_ms)
{
        int64_t calls, errors;

        policy_breaker_counts(b, now_ms, &calls, &errors);
        return calls >= b->cfg.min_samples &&
               (double)errors > b->cfg.threshold * (double)calls;
}

int policy_breaker_record(struct policy_breaker *b, int64_t now_ms, int ok)
{
        switch (b->state) {
        case POLICY_OPEN:
                return -1;
        case POLICY_HALF_OPEN:
                if (!ok)
                        return set_state(b, POLICY_OPEN, now_ms);
                /* Errors from before the outage must not re-open it at
                 * the first failure after recovery. */
                clear_window(b);
                return set_state(b, POLICY_CLOSED, now_ms);
        default:
                count(b, now_ms, ok);
                /* A success can open it too: the one that brings the
                 * window up to min_samples. */
                if (over_threshold(b, now_ms))
                        return set_state(b, POLICY_OPEN, now_ms);
                return -1;
        }
}

void policy_breaker_release(struct policy_breaker *b)
{
        if (b->state == POLICY_HALF_OPEN)
                b->probing = 0;
}

int policy_breaker_state(const struct policy_breaker *b)
{
        return b->state;
}

const char *policy_breaker_state_name(int state)
{
        if (state < 0 || state > POLICY_HALF_OPEN)
                return "?";
        return state_names[state];
}

void policy_breaker_counts(const struct policy_breaker *b, int64_t now_ms,
                           int64_t *calls, int64_t *errors)
{
        int64_t cur = epoch_of(b, now_ms);

        *calls = 0;
        *errors = 0;
        for (size_t i = 0; i < POLICY_BREAKER_BUCKETS; i++) {
                if (!in_window(b->ring[i].epoch, cur))
                        continue;
                *calls += (int64_t)b->ring[i].ok + b->ring[i].err;
                *errors += b->ring[i].err;
        }
}

/*
 * Latency.
 */

void policy_latency_init(struct policy_latency *l, double alpha)
{
        l->alpha = alpha > 0 && alpha <= 1 ? alpha : POLICY_LATENCY_ALPHA;
        l->ewma_ms = 0;
        l->samples = 0;
}

void policy_latency_add(struct policy_latency *l, double ms)
{
        if (!(ms >= 0)) /* NaN too */
                ms = 0;
        if (l->samples == 0)
                l->ewma_ms = ms;
        else
                l->ewma_ms += l->alpha * (ms - l->ewma_ms);
        l->samples++;
}

double policy_latency_ms(const struct policy_latency *l)
{
        return l->samples ? l->ewma_ms : -1;
}

/*
 * Route ordering.
 */

static size_t collect_usable(const struct policy_cand *c, size_t n,
                             size_t *out)
{
        size_t m = 0;

        for (size_t i = 0; i < n; i++)
                if (c[i].usable)
                        out[m++] = i;
        return m;
}

/* Capped so that a route's total cannot overflow. */
static int64_t weight_of(const struct policy_cand *c)
{
        if (c->weight <= 0)
                return 0;
        return c->weight < INT32_MAX ? c->weight : INT32_MAX;
}

/* Move out[j] to out[0], keeping the order of out[0..j-1]: what is not
 * picked keeps its relative order (weight-0 ones stay as given). */
static void move_to_front(size_t *out, size_t j)
{
        size_t v = out[j];

        memmove(out + 1, out, j * sizeof(*out));
        out[0] = v;
}

/* Index into out[0..m) of a pick proportional to weight, or m if no
 * candidate left has a positive weight. */
static size_t pick_weighted(const struct policy_cand *c, const size_t *out,
                            size_t m, uint64_t *rng)
{
        int64_t total = 0, r;
        size_t j = 0;

        for (size_t k = 0; k < m; k++)
                total += weight_of(&c[out[k]]);
        if (total == 0)
                return m;
        r = (int64_t)rand_below(rng, (uint64_t)total);
        while (r >= weight_of(&c[out[j]]))
                r -= weight_of(&c[out[j++]]);
        return j;
}

static void order_weighted(const struct policy_cand *c, size_t *out,
                           size_t m, uint64_t *rng)
{
        for (size_t i = 0; i < m; i++) {
                size_t j = pick_weighted(c, out + i, m - i, rng);

                if (j == m - i)
                        break; /* only weight 0 left: as given */
                move_to_front(out + i, j);
        }
}

/* Unknown (negative or NaN) latency sorts before any known one. */
static int faster(const struct policy_cand *a, const struct policy_cand *b)
{
        int a_known = a->latency_ms >= 0, b_known = b->latency_ms >= 0;

        if (a_known != b_known)
                return !a_known;
        return a_known && a->latency_ms < b->latency_ms;
}

static void order_latency(const struct policy_cand *c, size_t *out,
                          size_t m, double explore, uint64_t *rng)
{
        /* Insertion sort: stable, and routes hold a handful of
         * providers. */
        for (size_t i = 1; i < m; i++) {
                size_t v = out[i], j = i;

                for (; j > 0 && faster(&c[v], &c[out[j - 1]]); j--)
                        out[j] = out[j - 1];
                out[j] = v;
        }
        /* Pick among the others only, so explore is the real rate at
         * which the front changes. */
        if (explore > 0 && m >= 2 && rand_unit(rng) < explore)
                move_to_front(out, 1 + (size_t)rand_below(rng, m - 1));
}

size_t policy_order(enum policy_strategy s, const struct policy_cand *c,
                    size_t n, double explore, uint64_t *rng, size_t *out)
{
        size_t m = collect_usable(c, n, out);

        switch (s) {
        case POLICY_WEIGHTED:
                order_weighted(c, out, m, rng);
                break;
        case POLICY_LATENCY:
                order_latency(c, out, m, explore, rng);
                break;
        default:
                break; /* priority: as given */
        }
        return m;
}

int policy_strategy_parse(const char *name)
{
        return lookup(strategy_names,
                      sizeof(strategy_names) / sizeof(strategy_names[0]),
                      name);
}

/*
 * Key pools.
 */

static size_t pick_round_robin(const struct policy_key *k, size_t n,
                               size_t *cursor)
{
        size_t start = *cursor % n;

        for (size_t i = 0; i < n; i++) {
                size_t j = (start + i) % n;

                if (!k[j].disabled) {
                        *cursor = j + 1;
                        return j;
                }
        }
        return n;
}

static int less_used(const struct policy_key *a, const struct policy_key *b)
{
        if (a->inflight != b->inflight)
                return a->inflight < b->inflight;
        return a->uses < b->uses;
}

static size_t pick_least_used(const struct policy_key *k, size_t n)
{
        size_t best = n;

        for (size_t i = 0; i < n; i++) {
                if (k[i].disabled)
                        continue;
                /* Strictly less: ties go to the lowest index. */
                if (best == n || less_used(&k[i], &k[best]))
                        best = i;
        }
        return best;
}

size_t policy_pick_key(const struct policy_key *k, size_t n,
                       enum policy_key_choice how, size_t *cursor)
{
        if (n == 0)
                return 0;
        if (how == POLICY_KEYS_ROUND_ROBIN)
                return pick_round_robin(k, n, cursor);
        return pick_least_used(k, n);
}

int policy_key_choice_parse(const char *name)
{
        return lookup(key_choice_names,
                      sizeof(key_choice_names) / sizeof(key_choice_names[0]),
                      name);
}
