/* One served provider's state; see fpprov.h. */
#include "fpprov.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

#define MAX_STATUS 600
#define MAX_KEYS 64

struct keyset {
        char **v;  /**< owned strings */
        size_t n;
};

struct fpprov_s {
        char *name;                      /**< owned */
        const struct fp_family *fam;
        struct keyset start_keys;        /**< from the command line */
        pthread_mutex_t lock;            /**< guards everything below */
        struct keyset keys;              /**< accepted now */
        int64_t latency_ms;              /**< default latency */
        struct fp_step **steps;          /**< owned references */
        size_t nsteps;
        size_t cursor;                   /**< next step to hand out */
        int loop;                        /**< restart when exhausted */
        uint64_t requests;
        uint64_t by_status[MAX_STATUS];
        int64_t inflight;
        int64_t peak_inflight;
        char *ring[FPPROV_RING];         /**< owned JSON texts */
        size_t ring_next;                /**< slot of the next record */
        size_t ring_count;
};

static void keyset_copy(struct keyset *dst, char *const *keys, size_t n)
{
        size_t i;

        dst->v = xcalloc(n ? n : 1, sizeof(*dst->v));
        for (i = 0; i < n; i++)
                dst->v[i] = xstrdup(keys[i]);
        dst->n = n;
}

static void keyset_free(struct keyset *ks)
{
        size_t i;

        for (i = 0; i < ks->n; i++)
                free(ks->v[i]);
        free(ks->v);
        ks->v = NULL;
        ks->n = 0;
}

static int keyset_has(const struct keyset *ks, const char *key)
{
        size_t i;

        for (i = 0; key && i < ks->n; i++)
                if (!strcmp(ks->v[i], key))
                        return 1;
        return 0;
}

fpprov_t *fpprov_new(const char *name, const struct fp_family *fam,
                     char *const *keys, size_t nkeys)
{
        fpprov_t *p = xcalloc(1, sizeof(*p));

        p->name = xstrdup(name);
        p->fam = fam;
        keyset_copy(&p->start_keys, keys, nkeys);
        keyset_copy(&p->keys, keys, nkeys);
        pthread_mutex_init(&p->lock, NULL);
        return p;
}

/* Drop the script.  Caller holds the lock (or is the only user). */
static void script_clear(fpprov_t *p)
{
        size_t i;

        for (i = 0; i < p->nsteps; i++)
                fpstep_unref(p->steps[i]);
        free(p->steps);
        p->steps = NULL;
        p->nsteps = p->cursor = 0;
        p->loop = 0;
}

static void ring_clear(fpprov_t *p)
{
        size_t i;

        for (i = 0; i < FPPROV_RING; i++) {
                free(p->ring[i]);
                p->ring[i] = NULL;
        }
        p->ring_next = p->ring_count = 0;
}

void fpprov_destroy(fpprov_t *p)
{
        if (!p)
                return;
        script_clear(p);
        ring_clear(p);
        keyset_free(&p->keys);
        keyset_free(&p->start_keys);
        pthread_mutex_destroy(&p->lock);
        free(p->name);
        free(p);
}

const char *fpprov_name(const fpprov_t *p)
{
        return p->name;
}

const struct fp_family *fpprov_family(const fpprov_t *p)
{
        return p->fam;
}

fpprov_t *fpprov_find(fpprov_t *const *v, size_t n, const char *name,
                      size_t len)
{
        size_t i;

        for (i = 0; i < n; i++)
                if (strlen(v[i]->name) == len &&
                    !memcmp(v[i]->name, name, len))
                        return v[i];
        return NULL;
}

/* The next step, or NULL.  Caller holds the lock. */
static struct fp_step *script_next(fpprov_t *p)
{
        struct fp_step *s;

        if (p->cursor == p->nsteps && p->loop)
                p->cursor = 0;
        if (p->cursor == p->nsteps) {
                if (p->nsteps)
                        script_clear(p);
                return NULL;
        }
        s = fpstep_ref(p->steps[p->cursor++]);
        return s;
}

void fpprov_begin(fpprov_t *p, const char *key, int routed,
                  struct fpprov_ticket *t)
{
        pthread_mutex_lock(&p->lock);
        t->seq = ++p->requests;
        if (++p->inflight > p->peak_inflight)
                p->peak_inflight = p->inflight;
        t->auth_ok = keyset_has(&p->keys, key);
        t->step = routed ? script_next(p) : NULL;
        t->latency_ms = p->latency_ms;
        pthread_mutex_unlock(&p->lock);
}

void fpprov_end(fpprov_t *p, unsigned status)
{
        pthread_mutex_lock(&p->lock);
        p->inflight--;
        if (status && status < MAX_STATUS)
                p->by_status[status]++;
        pthread_mutex_unlock(&p->lock);
}

void fpprov_record(fpprov_t *p, char *rec)
{
        char *old;

        pthread_mutex_lock(&p->lock);
        old = p->ring[p->ring_next];
        p->ring[p->ring_next] = rec;
        p->ring_next = (p->ring_next + 1) % FPPROV_RING;
        if (p->ring_count < FPPROV_RING)
                p->ring_count++;
        pthread_mutex_unlock(&p->lock);
        free(old);
}

/* Parse every step of \p arr; all or nothing. */
static struct fp_step **parse_steps(const struct fp_family *fam,
                                    const json_t *arr, size_t *np,
                                    char *errstr, size_t errstr_size)
{
        size_t i, n = json_array_size(arr);
        struct fp_step **v = xcalloc(n ? n : 1, sizeof(*v));
        char err[256];

        for (i = 0; i < n; i++) {
                v[i] = fpstep_new(json_array_get(arr, i), fam, err,
                                  sizeof(err));
                if (!v[i]) {
                        snprintf(errstr, errstr_size, "steps[%zu]: %s", i,
                                 err);
                        goto err_free_steps;
                }
        }
        *np = n;
        return v;

err_free_steps:
        while (i-- > 0)
                fpstep_unref(v[i]);
        free(v);
        return NULL;
}

/* Append \p add (n steps, references taken over) to the script. */
static void script_append(fpprov_t *p, struct fp_step **add, size_t n)
{
        size_t left = p->nsteps - p->cursor;
        struct fp_step **v = xcalloc(left + n ? left + n : 1, sizeof(*v));

        if (left)
                memcpy(v, p->steps + p->cursor, left * sizeof(*v));
        if (n)
                memcpy(v + left, add, n * sizeof(*v));
        free(p->steps);
        p->steps = v;
        p->nsteps = left + n;
        p->cursor = 0;
}

int fpprov_script(fpprov_t *p, const json_t *req, char *errstr,
                  size_t errstr_size)
{
        const json_t *arr = json_object_get(req, "steps");
        struct fp_step **steps;
        size_t n = 0;

        if (!json_is_object(req) || !json_is_array(arr)) {
                snprintf(errstr, errstr_size, "body must be {\"steps\":[...]}");
                return -1;
        }
        steps = parse_steps(p->fam, arr, &n, errstr, errstr_size);
        if (!steps)
                return -1;
        pthread_mutex_lock(&p->lock);
        if (!json_is_true(json_object_get(req, "append")))
                script_clear(p);
        script_append(p, steps, n);
        p->loop = json_is_true(json_object_get(req, "loop"));
        pthread_mutex_unlock(&p->lock);
        free(steps);
        return 0;
}

/* Validate a "keys" array: 0..MAX_KEYS non-empty strings. */
static int keys_valid(const json_t *keys)
{
        size_t i;
        json_t *k;

        if (!json_is_array(keys) || json_array_size(keys) > MAX_KEYS)
                return 0;
        json_array_foreach (keys, i, k)
                if (!json_is_string(k) || !json_string_length(k))
                        return 0;
        return 1;
}

static void keys_set(fpprov_t *p, const json_t *keys)
{
        struct keyset ks;
        size_t i, n = json_array_size(keys);

        ks.v = xcalloc(n ? n : 1, sizeof(*ks.v));
        ks.n = n;
        for (i = 0; i < n; i++)
                ks.v[i] = xstrdup(json_string_value(json_array_get(keys, i)));
        pthread_mutex_lock(&p->lock);
        keyset_free(&p->keys);
        p->keys = ks;
        pthread_mutex_unlock(&p->lock);
}

int fpprov_config(fpprov_t *p, const json_t *req, char *errstr,
                  size_t errstr_size)
{
        const json_t *lat = json_object_get(req, "latency_ms");
        const json_t *keys = json_object_get(req, "keys");

        if (!json_is_object(req) ||
            (lat && (!json_is_integer(lat) || json_integer_value(lat) < 0 ||
                     json_integer_value(lat) > FPSTEP_MAX_LATENCY_MS)) ||
            (keys && !keys_valid(keys))) {
                snprintf(errstr, errstr_size,
                         "body must be {\"latency_ms\": 0..3600000, "
                         "\"keys\": [non-empty strings]}");
                return -1;
        }
        if (keys)
                keys_set(p, keys);
        if (lat) {
                pthread_mutex_lock(&p->lock);
                p->latency_ms = json_integer_value(lat);
                pthread_mutex_unlock(&p->lock);
        }
        return 0;
}

void fpprov_reset(fpprov_t *p)
{
        pthread_mutex_lock(&p->lock);
        script_clear(p);
        ring_clear(p);
        keyset_free(&p->keys);
        keyset_copy(&p->keys, p->start_keys.v, p->start_keys.n);
        p->latency_ms = 0;
        p->requests = 0;
        memset(p->by_status, 0, sizeof(p->by_status));
        p->peak_inflight = p->inflight;
        pthread_mutex_unlock(&p->lock);
}

static json_t *status_counts(const uint64_t *by_status)
{
        json_t *o = json_object();
        char code[8];
        unsigned st;

        for (st = 0; st < MAX_STATUS; st++) {
                if (!by_status[st])
                        continue;
                snprintf(code, sizeof(code), "%u", st);
                json_object_set_new(o, code,
                                    json_integer((json_int_t)by_status[st]));
        }
        return o;
}

json_t *fpprov_stats(fpprov_t *p)
{
        json_t *o;

        pthread_mutex_lock(&p->lock);
        o = json_pack("{s:I, s:o, s:I, s:I, s:I, s:b, s:I}", "requests",
                      (json_int_t)p->requests, "by_status",
                      status_counts(p->by_status), "inflight",
                      (json_int_t)p->inflight, "peak_inflight",
                      (json_int_t)p->peak_inflight, "script_remaining",
                      (json_int_t)(p->nsteps - p->cursor), "script_loop",
                      p->loop, "latency_ms", (json_int_t)p->latency_ms);
        pthread_mutex_unlock(&p->lock);
        if (!o)
                fatal("fpprov: json_pack stats failed");
        return o;
}

char *fpprov_requests(fpprov_t *p, size_t last, size_t *lenp)
{
        size_t i, n, first, len = 2;
        char *out, *o;

        pthread_mutex_lock(&p->lock);
        n = last < p->ring_count ? last : p->ring_count;
        first = (p->ring_next + FPPROV_RING - n) % FPPROV_RING;
        for (i = 0; i < n; i++)
                len += strlen(p->ring[(first + i) % FPPROV_RING]) + 1;
        out = o = xmalloc(len + 1);
        *o++ = '[';
        for (i = 0; i < n; i++) {
                if (i)
                        *o++ = ',';
                o = stpcpy(o, p->ring[(first + i) % FPPROV_RING]);
        }
        pthread_mutex_unlock(&p->lock);
        *o++ = ']';
        *o = '\0';
        *lenp = (size_t)(o - out);
        return out;
}
