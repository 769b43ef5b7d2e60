/*
 * fptask: the fake's async task store; see fptask.h.  A hash table of
 * tasks under one mutex (polls are short; contention is not the point of
 * a fake), plus each task's poll times for the schedule tests.
 */
#include "fptask.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fpcb.h"
#include "fpprov.h"
#include "fptimer.h"
#include "log.h"
#include "xmem.h"

#define NBUCKETS 4096
#define MAX_POLL_TIMES 64

struct entry {
        struct fptask t;
        int64_t poll_ms[MAX_POLL_TIMES];
        int64_t end_mono;  /**< [after:MS]: fptimer_now_ms() of the end */
        int cb_claimed;    /**< the callback was handed to fpcb */
        struct entry *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *buckets[NBUCKETS];
static uint64_t next_id = 1;

static size_t bucket(const char *provider, const char *id)
{
        uint64_t h = 1469598103934665603ULL;

        for (const char *s = provider; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        for (const char *s = id; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return (size_t)(h % NBUCKETS);
}

/* "MS]" or "MS" (header) at \p s: MS >= 0, else -1. */
static int64_t parse_after(const char *s, int bracket)
{
        char *end = NULL;
        long long v = strtoll(s, &end, 10);

        if (end == s || v < 0 || *end != (bracket ? ']' : '\0'))
                return -1;
        return (int64_t)v;
}

/* Fate from "[fail]", "[fail:CODE:MSG]", "[never]", "[steps:N]",
 * "[after:MS]". */
static void fate_from_text(const char *s, struct fptask *t)
{
        const char *m;

        if (!s)
                return;
        if ((m = strstr(s, "[steps:")))
                t->steps = atoi(m + 7) > 0 ? atoi(m + 7) : t->steps;
        if ((m = strstr(s, "[after:")) && parse_after(m + 7, 1) >= 0)
                t->after_ms = parse_after(m + 7, 1);
        if (strstr(s, "[never]"))
                t->fate = FPTASK_NEVER;
        if ((m = strstr(s, "[fail"))) {
                const char *end = strchr(m, ']');

                t->fate = FPTASK_FAIL;
                if (m[5] == ':' && end) {
                        const char *c2 = memchr(m + 6, ':', (size_t)(end - m - 6));
                        size_t cl = c2 ? (size_t)(c2 - m - 6)
                                       : (size_t)(end - m - 6);

                        snprintf(t->fail_code, sizeof(t->fail_code), "%.*s",
                                 (int)cl, m + 6);
                        if (c2)
                                snprintf(t->fail_msg, sizeof(t->fail_msg),
                                         "%.*s", (int)(end - c2 - 1), c2 + 1);
                }
        }
}

static void fate_from_header(const char *h, struct fptask *t)
{
        if (!h)
                return;
        if (!strcasecmp(h, "fail"))
                t->fate = FPTASK_FAIL;
        else if (!strcasecmp(h, "never"))
                t->fate = FPTASK_NEVER;
        else if (!strncasecmp(h, "steps=", 6) && atoi(h + 6) > 0)
                t->steps = atoi(h + 6);
        else if (!strncasecmp(h, "after=", 6) && parse_after(h + 6, 0) >= 0)
                t->after_ms = parse_after(h + 6, 0);
}

/* Has the task reached its end (not counting a cancel)? */
static int ended(const struct entry *e, int64_t now_mono)
{
        if (e->t.fate == FPTASK_NEVER)
                return 0;
        if (e->t.after_ms >= 0)
                return now_mono >= e->end_mono;
        return e->t.polls >= e->t.steps;
}

/* Refresh done; claim the callback if the task is terminal now and it has
 * one not claimed yet.  @returns 1 if claimed.  Caller holds the lock. */
static int refresh(struct entry *e, int64_t now_mono)
{
        e->t.done = ended(e, now_mono);
        if (!e->t.cb_url[0] || e->cb_claimed ||
            !(e->t.done || e->t.canceled))
                return 0;
        e->cb_claimed = 1;
        return 1;
}

static void set_callback(struct fptask *t, const struct fptask_cb *cb)
{
        if (!cb || !cb->url || !*cb->url || !cb->body)
                return;
        snprintf(t->cb_url, sizeof(t->cb_url), "%s", cb->url);
        snprintf(t->cb_header, sizeof(t->cb_header), "%s",
                 cb->header ? cb->header : "");
        t->cb_body = cb->body;
}

void fptask_create(const struct fp_call *call, const char *id_prefix,
                   const char *prompt, struct fptask *out)
{
        fptask_create_cb(call, id_prefix, prompt, NULL, out);
}

void fptask_create_cb(const struct fp_call *call, const char *id_prefix,
                      const char *prompt, const struct fptask_cb *cb,
                      struct fptask *out)
{
        struct entry *e = xcalloc(1, sizeof(*e));
        struct fptask *t = &e->t;
        const char *host = fakeprov_header(call, "Host");
        int refused = 0;
        size_t b;

        t->fate = FPTASK_SUCCEED;
        t->steps = 3;
        t->after_ms = -1;
        snprintf(t->fail_code, sizeof(t->fail_code), "500");
        snprintf(t->fail_msg, sizeof(t->fail_msg), "Internal server error");
        fate_from_text(prompt, t);
        fate_from_header(fakeprov_header(call, "X-Fake-Task"), t);
        snprintf(t->provider, sizeof(t->provider), "%s",
                 fpprov_name(call->prov));
        snprintf(t->input, sizeof(t->input), "%.*s",
                 (int)(call->body_len < sizeof(t->input) - 1
                               ? call->body_len
                               : sizeof(t->input) - 1),
                 call->body ? call->body : "");
        snprintf(t->host, sizeof(t->host), "%s",
                 host && *host && strlen(host) < sizeof(t->host) ? host
                                                                 : "127.0.0.1");
        if (cb && cb->url && *cb->url && !fpcb_url_ok(cb->url))
                refused = 1;
        else
                set_callback(t, cb);
        t->created_ms = fakeprov_now_ms();
        e->end_mono = fptimer_now_ms() + (t->after_ms > 0 ? t->after_ms : 0);
        pthread_mutex_lock(&lock);
        snprintf(t->id, sizeof(t->id), "%s%08llx%08llx", id_prefix,
                 (unsigned long long)t->created_ms & 0xffffffffULL,
                 (unsigned long long)next_id++);
        b = bucket(t->provider, t->id);
        e->next = buckets[b];
        buckets[b] = e;
        *out = *t;
        pthread_mutex_unlock(&lock);
        if (refused) {
                log_warn("fakeprov", "%s task %s: callback URL refused (only "
                         "http://127.0.0.1 or http://localhost): %s",
                         out->provider, out->id, cb->url);
                fpcb_refused(out->provider, out->id, cb->url);
        }
        /* The end comes by the clock: fpcb asks at that time. */
        if (out->cb_url[0] && out->after_ms >= 0 &&
            out->fate != FPTASK_NEVER)
                fpcb_at(out->provider, out->id, e->end_mono);
}

static struct entry *find(const char *provider, const char *id)
{
        for (struct entry *e = buckets[bucket(provider, id)]; e; e = e->next)
                if (!strcmp(e->t.id, id) && !strcmp(e->t.provider, provider))
                        return e;
        return NULL;
}

static int lookup(const struct fp_call *call, const char *id, int count,
                  struct fptask *out)
{
        struct entry *e;
        int claimed = 0;

        pthread_mutex_lock(&lock);
        e = id ? find(fpprov_name(call->prov), id) : NULL;
        if (e && count) {
                if (e->t.polls < MAX_POLL_TIMES)
                        e->poll_ms[e->t.polls] = fakeprov_now_ms();
                e->t.polls++;
        }
        if (e) {
                claimed = refresh(e, fptimer_now_ms());
                *out = e->t;
        }
        pthread_mutex_unlock(&lock);
        if (claimed)
                fpcb_send(out);
        return e ? 0 : -1;
}

int fptask_poll(const struct fp_call *call, const char *id,
                struct fptask *out)
{
        return lookup(call, id, 1, out);
}

int fptask_peek(const struct fp_call *call, const char *id,
                struct fptask *out)
{
        return lookup(call, id, 0, out);
}

int fptask_cancel(const struct fp_call *call, const char *id)
{
        struct entry *e;
        struct fptask snap;
        int claimed = 0;

        pthread_mutex_lock(&lock);
        e = find(fpprov_name(call->prov), id);
        if (e) {
                e->t.cancels++;
                e->t.done = ended(e, fptimer_now_ms());
                if (!e->t.done)
                        e->t.canceled = 1;
                claimed = refresh(e, fptimer_now_ms());
                snap = e->t;
        }
        pthread_mutex_unlock(&lock);
        if (claimed)
                fpcb_send(&snap);
        return e ? 0 : -1;
}

int fptask_settle(const char *provider, const char *id, struct fptask *out)
{
        struct entry *e;
        int rc = -1;

        pthread_mutex_lock(&lock);
        e = find(provider, id);
        if (e && e->t.cb_url[0] && !e->cb_claimed) {
                rc = refresh(e, fptimer_now_ms());
                if (rc)
                        *out = e->t;
        }
        pthread_mutex_unlock(&lock);
        return rc;
}

void fptask_note_callback(const char *provider, const char *id)
{
        struct entry *e;

        pthread_mutex_lock(&lock);
        e = find(provider, id);
        if (e)
                e->t.callbacks++;
        pthread_mutex_unlock(&lock);
}

void fptask_reset(void)
{
        pthread_mutex_lock(&lock);
        for (size_t b = 0; b < NBUCKETS; b++) {
                while (buckets[b]) {
                        struct entry *e = buckets[b];

                        buckets[b] = e->next;
                        free(e);
                }
        }
        pthread_mutex_unlock(&lock);
}

size_t fptask_count(const char *provider)
{
        size_t n = 0;

        pthread_mutex_lock(&lock);
        for (size_t b = 0; b < NBUCKETS; b++)
                for (struct entry *e = buckets[b]; e; e = e->next)
                        n += !strcmp(e->t.provider, provider);
        pthread_mutex_unlock(&lock);
        return n;
}

json_t *fptask_dump(const char *provider)
{
        json_t *arr = json_array();

        pthread_mutex_lock(&lock);
        for (size_t b = 0; b < NBUCKETS; b++)
                for (struct entry *e = buckets[b]; e; e = e->next) {
                        json_t *polls;

                        if (strcmp(e->t.provider, provider))
                                continue;
                        polls = json_array();
                        for (int i = 0; i < e->t.polls && i < MAX_POLL_TIMES;
                             i++)
                                json_array_append_new(
                                        polls, json_integer(e->poll_ms[i]));
                        json_array_append_new(
                                arr,
                                json_pack("{s:s, s:i, s:b, s:b, s:i, s:I, "
                                          "s:o, s:s?, s:i}",
                                          "id", e->t.id, "polls", e->t.polls,
                                          "done", ended(e, fptimer_now_ms()),
                                          "canceled", e->t.canceled,
                                          "cancels", e->t.cancels,
                                          "created_ms",
                                          (json_int_t)e->t.created_ms,
                                          "poll_ms", polls, "callback_url",
                                          e->t.cb_url[0] ? e->t.cb_url : NULL,
                                          "callbacks", e->t.callbacks));
                }
        pthread_mutex_unlock(&lock);
        return arr;
}
