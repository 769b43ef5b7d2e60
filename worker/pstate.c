/*
 * pstate: per-provider run-time state of the fallback policy.  See
 * pstate.h.
 */
#include "pstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmem.h"

struct key_state {
        const char *id;        /**< borrowed key id ("env:GROQ_API_KEY") */
        int64_t inflight, uses;
        int local_off;         /**< disabled here (401) ... */
        int64_t local_off_ms;  /**< ... at this time */
        int shared_off;        /**< provider_key_state row or override */
        int64_t parked_until;  /**< ms: its balance or quota is gone */
};

struct prov {
        const char *name;      /**< borrowed from the wconf */
        struct policy_breaker brk;
        struct policy_latency lat;
        struct key_state *keys;
        size_t n_keys;
        struct policy_key *view; /**< scratch for policy_pick_key */
        size_t cursor;
        int key_choice;
        int64_t parked_until;  /**< ms */
        char park_why[160];
        int ov_enabled;        /**< -1 as configured, 0 off, 1 on */
        int32_t ov_priority;   /**< INT32_MIN = none */
        char ov_reason[160];
        double pool;           /**< free quota units taken ahead */
        int64_t pool_until;    /**< ms: give back what is left then */
        int pool_key;
        int refilling;         /**< a chunk is being asked for */
        double demand;         /**< units wanted meanwhile */
        int64_t exact_until;   /**< ms: chunks refused, ask exactly */
};

struct pstate_s {
        struct prov *p;
        size_t n;
};

static void breaker_init(struct prov *p, const struct wconf *w)
{
        struct policy_breaker_cfg c = {
                .threshold = w->brk_threshold,
                .min_samples = w->brk_min_samples,
                .window_ms = w->brk_window_s * 1000,
                .cooldown_ms = w->brk_cooldown_s * 1000,
        };

        policy_breaker_init(&p->brk, &c);
}

static void bind(struct prov *p, const struct wprovider *wp)
{
        p->name = wp->name;
        p->key_choice = policy_key_choice_parse(wp->key_choice);
        for (size_t k = 0; k < p->n_keys; k++)
                p->keys[k].id = wp->keys[k].id;
}

pstate_t *pstate_new(const struct wconf *w)
{
        pstate_t *ps = xcalloc(1, sizeof(*ps));

        ps->n = w->n_providers;
        ps->p = xcalloc(ps->n ? ps->n : 1, sizeof(*ps->p));
        for (size_t i = 0; i < ps->n; i++) {
                struct prov *p = &ps->p[i];

                p->n_keys = w->providers[i].n_keys;
                p->keys = xcalloc(p->n_keys + 1, sizeof(*p->keys));
                p->view = xcalloc(p->n_keys + 1, sizeof(*p->view));
                p->ov_enabled = -1;
                p->ov_priority = INT32_MIN;
                bind(p, &w->providers[i]);
                breaker_init(p, w);
                policy_latency_init(&p->lat, 0);
        }
        return ps;
}

void pstate_destroy(pstate_t *ps)
{
        if (!ps)
                return;
        for (size_t i = 0; i < ps->n; i++) {
                free(ps->p[i].keys);
                free(ps->p[i].view);
        }
        free(ps->p);
        free(ps);
}

void pstate_reconfigure(pstate_t *ps, const struct wconf *w)
{
        for (size_t i = 0; i < ps->n && i < w->n_providers; i++) {
                bind(&ps->p[i], &w->providers[i]);
                breaker_init(&ps->p[i], w);
        }
}

static struct prov *find(pstate_t *ps, const char *name)
{
        for (size_t i = 0; i < ps->n; i++)
                if (!strcmp(ps->p[i].name, name))
                        return &ps->p[i];
        return NULL;
}

/* Split "a|b|c|d|e|f" in place; the reason (last) may hold '|'. */
static int split_row(char *row, char *f[6])
{
        f[0] = row;
        for (int i = 1; i < 6; i++) {
                char *bar = strchr(f[i - 1], '|');

                if (!bar)
                        return -1;
                *bar = '\0';
                f[i] = bar + 1;
        }
        return 0;
}

static struct key_state *find_key(struct prov *p, const char *id)
{
        for (size_t k = 0; k < p->n_keys; k++)
                if (!strcmp(p->keys[k].id, id))
                        return &p->keys[k];
        return NULL;
}

static void clear_shared(pstate_t *ps)
{
        for (size_t i = 0; i < ps->n; i++) {
                struct prov *p = &ps->p[i];

                p->ov_enabled = -1;
                p->ov_priority = INT32_MIN;
                p->ov_reason[0] = '\0';
                for (size_t k = 0; k < p->n_keys; k++)
                        p->keys[k].shared_off = 0;
        }
}

static void apply_row(pstate_t *ps, char *f[6])
{
        struct prov *p = find(ps, f[1]);
        struct key_state *k;

        if (!p)
                return;
        if (*f[2]) {
                /* A key: disabled by a worker (401), or by an operator
                 * override with enabled = false. */
                k = find_key(p, f[2]);
                if (k && (strcmp(f[0], "override") || !strcmp(f[3], "false")))
                        k->shared_off = 1;
                return;
        }
        if (strcmp(f[0], "override"))
                return;
        p->ov_enabled = !strcmp(f[3], "false") ? 0
                        : !strcmp(f[3], "true") ? 1
                                                : -1;
        p->ov_priority = *f[4] ? (int32_t)atoi(f[4]) : INT32_MIN;
        snprintf(p->ov_reason, sizeof(p->ov_reason), "%s", f[5]);
}

void pstate_apply_shared(pstate_t *ps, char *const *rows, size_t n,
                         int64_t asked_ms)
{
        clear_shared(ps);
        for (size_t i = 0; i < n; i++) {
                char *row = xstrdup(rows[i]), *f[6];

                if (!split_row(row, f))
                        apply_row(ps, f);
                free(row);
        }
        /* The shared rows are the truth for keys: a key an operator
         * re-enabled (row deleted) comes back on every worker.  Ours
         * disabled after the query was sent wait for the next one. */
        for (size_t i = 0; i < ps->n; i++)
                for (size_t k = 0; k < ps->p[i].n_keys; k++)
                        if (ps->p[i].keys[k].local_off_ms < asked_ms)
                                ps->p[i].keys[k].local_off = 0;
}

int pstate_skip(pstate_t *ps, size_t i, int64_t now_ms, int ignore_park,
                char *why, size_t why_size)
{
        struct prov *p = &ps->p[i];
        int64_t calls, errors;

        if (p->ov_enabled == 0) {
                snprintf(why, why_size, "disabled by an operator%s%.140s",
                         *p->ov_reason ? ": " : "", p->ov_reason);
                return 1;
        }
        if (policy_breaker_peek(&p->brk, now_ms) == POLICY_DENY) {
                policy_breaker_counts(&p->brk, now_ms, &calls, &errors);
                snprintf(why, why_size, "circuit %s (%lld of %lld calls "
                                        "failed in the window); skipped",
                         policy_breaker_state_name(
                                 policy_breaker_state(&p->brk)),
                         (long long)errors, (long long)calls);
                return 1;
        }
        if (p->parked_until > now_ms && !ignore_park) {
                snprintf(why, why_size, "%s; parked for %lld s more",
                         p->park_why,
                         (long long)((p->parked_until - now_ms + 999) / 1000));
                return 1;
        }
        return 0;
}

int pstate_pick_key(pstate_t *ps, size_t i, int64_t now_ms)
{
        struct prov *p = &ps->p[i];
        size_t k;

        for (k = 0; k < p->n_keys; k++) {
                struct key_state *ks = &p->keys[k];

                p->view[k] = (struct policy_key){
                        .disabled = ks->local_off || ks->shared_off ||
                                    ks->parked_until > now_ms,
                        .inflight = ks->inflight,
                        .uses = ks->uses,
                };
        }
        k = policy_pick_key(p->view, p->n_keys, p->key_choice, &p->cursor);
        return k < p->n_keys ? (int)k : -1;
}

int pstate_call_begin(pstate_t *ps, size_t i, int key, int64_t now_ms)
{
        struct prov *p = &ps->p[i];
        int v = policy_breaker_allow(&p->brk, now_ms);

        if (v == POLICY_DENY)
                return v;
        if (v == POLICY_PROBE)
                log_info("policy", "provider %s: circuit half-open: one "
                                   "probe call",
                         p->name);
        if (key >= 0 && (size_t)key < p->n_keys) {
                p->keys[key].inflight++;
                p->keys[key].uses++;
        }
        return v;
}

/* Outcomes that say something about the provider's health. */
static int health_signal(enum outcome o)
{
        return o == OUTCOME_SUCCESS || o == OUTCOME_RETRY_LATER ||
               o == OUTCOME_FALLBACK_NEXT;
}

void pstate_call_end(pstate_t *ps, size_t i, int key, enum outcome o,
                     int64_t latency_ms, int probe, int64_t now_ms)
{
        struct prov *p = &ps->p[i];
        int64_t calls, errors;
        int st;

        if (key >= 0 && (size_t)key < p->n_keys && p->keys[key].inflight > 0)
                p->keys[key].inflight--;
        if (!health_signal(o)) {
                if (probe)
                        policy_breaker_release(&p->brk);
                return;
        }
        if (o == OUTCOME_SUCCESS)
                policy_latency_add(&p->lat, (double)latency_ms);
        policy_breaker_counts(&p->brk, now_ms, &calls, &errors);
        st = policy_breaker_record(&p->brk, now_ms, o == OUTCOME_SUCCESS);
        if (st == POLICY_OPEN)
                log_warn("policy", "provider %s: circuit open (%lld of %lld "
                                   "calls failed in the window, last: %s); "
                                   "skipped for %lld s",
                         p->name, (long long)errors + 1, (long long)calls + 1,
                         outcome_name(o),
                         (long long)p->brk.cfg.cooldown_ms / 1000);
        else if (st == POLICY_CLOSED)
                log_info("policy", "provider %s: circuit closed (probe "
                                   "succeeded)",
                         p->name);
}

void pstate_disable_key(pstate_t *ps, size_t i, int key, int64_t now_ms)
{
        struct prov *p = &ps->p[i];

        if (key < 0 || (size_t)key >= p->n_keys)
                return;
        p->keys[key].local_off = 1;
        p->keys[key].local_off_ms = now_ms;
}

void pstate_park_key(pstate_t *ps, size_t i, int key, int64_t until_ms)
{
        struct prov *p = &ps->p[i];

        if (key >= 0 && (size_t)key < p->n_keys)
                p->keys[key].parked_until = until_ms;
}

void pstate_park(pstate_t *ps, size_t i, int64_t now_ms, int64_t until_ms,
                 const char *why)
{
        struct prov *p = &ps->p[i];

        /* Logged once per park, not for every job that finds it so. */
        if (p->parked_until <= now_ms)
                log_info("policy", "provider %s parked: %s", p->name, why);
        p->parked_until = until_ms;
        snprintf(p->park_why, sizeof(p->park_why), "%s", why);
}

double pstate_latency_ms(const pstate_t *ps, size_t i)
{
        return policy_latency_ms(&ps->p[i].lat);
}

int32_t pstate_priority(const pstate_t *ps, size_t i)
{
        return ps->p[i].ov_priority;
}

size_t pstate_open_circuits(const pstate_t *ps, int64_t now_ms)
{
        size_t n = 0;

        for (size_t i = 0; i < ps->n; i++)
                n += policy_breaker_peek(&ps->p[i].brk, now_ms) == POLICY_DENY;
        return n;
}

int pstate_pool_take(pstate_t *ps, size_t i, double units, int64_t now_ms)
{
        struct prov *p = &ps->p[i];

        if (p->pool_until <= now_ms || p->pool < units)
                return 0;
        p->pool -= units;
        return 1;
}

void pstate_pool_add(pstate_t *ps, size_t i, int key, double units,
                     int64_t until_ms)
{
        struct prov *p = &ps->p[i];

        p->pool += units;
        p->pool_key = key;
        if (p->pool_until < until_ms)
                p->pool_until = until_ms;
}

void pstate_pool_charge(pstate_t *ps, size_t i, double delta)
{
        ps->p[i].pool -= delta;
}

double pstate_pool_expire(pstate_t *ps, size_t i, int64_t now_ms, int all,
                          int *key)
{
        struct prov *p = &ps->p[i];
        double left = p->pool;

        if (p->pool_until == 0 || (!all && p->pool_until > now_ms))
                return 0;
        /* An overdraft (tokens beyond the estimate) is given back as a
         * negative amount: Postgres is charged for it. */
        p->pool = 0;
        p->pool_until = 0;
        *key = p->pool_key;
        return left;
}

int pstate_pool_refilling(pstate_t *ps, size_t i, int on)
{
        if (on >= 0)
                ps->p[i].refilling = on;
        return ps->p[i].refilling;
}

double pstate_pool_demand(pstate_t *ps, size_t i, double units, int take)
{
        struct prov *p = &ps->p[i];
        double d;

        p->demand += units;
        d = p->demand;
        if (take)
                p->demand = 0;
        return d;
}

int pstate_pool_exact(pstate_t *ps, size_t i, int64_t now_ms,
                      int64_t until_ms)
{
        if (until_ms > 0)
                ps->p[i].exact_until = until_ms;
        return ps->p[i].exact_until > now_ms;
}
