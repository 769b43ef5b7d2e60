/* Provider callbacks of async tasks; see the DESIGN note in fpcb.h. */
#include "fpcb.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakeprov.h"
#include "fptimer.h"
#include "log.h"
#include "xmem.h"

#define FAC "fakeprov"
#define IDLE_WAIT_MS 1000

enum ev_kind { EV_CHECK, EV_SEND };

/** A pending CHECK or SEND, or a running SEND. */
struct ev {
        enum ev_kind kind;
        char provider[64];
        char id[80];
        int64_t due;            /**< fptimer_now_ms() time */
        struct fptask *snap;    /**< SEND: until the body is built */
        char *body;             /**< SEND: built on the thread */
        char url[512];
        char header[320];
        int attempt;            /**< attempts started so far */
        int64_t started_ms;     /**< wall clock, current attempt */
        CURL *easy;
        struct curl_slist *hdrs;
        int dropped;            /**< reset while running: forget it */
        struct ev *next;
};

/** One recorded attempt (or refusal). */
struct rec {
        char provider[64];
        char id[80];
        char url[512];
        long status;
        int attempt;
        int64_t at_ms;
        char error[128];
};

static struct {
        pthread_mutex_t lock;   /**< guards everything but multi */
        pthread_t thread;
        int started, stopping;
        CURLM *multi;           /**< used by the thread only (+ wakeup) */
        struct ev *pending;     /**< sorted by due */
        struct ev *running;     /**< linked while in the multi */
        size_t nrunning;
        struct rec *recs;
        size_t nrecs, caprecs;
} cb = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- URLs ----------------------------------------------------------- */

int fpcb_url_ok(const char *url)
{
        static const char *const hosts[] = {"127.0.0.1", "localhost"};
        const char *a;
        size_t n, i, hl, m;

        if (!url || strncasecmp(url, "http://", 7) ||
            strlen(url) >= sizeof(((struct fptask *)0)->cb_url))
                return 0;
        for (a = url; *a; a++)
                if ((unsigned char)*a <= 0x20 || *a == 0x7f)
                        return 0;
        a = url + 7;
        n = strcspn(a, "/?#");
        if (memchr(a, '@', n))
                return 0;
        for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
                hl = strlen(hosts[i]);
                if (n < hl || strncasecmp(a, hosts[i], hl))
                        continue;
                m = n - hl;
                if (!m)
                        return 1;
                if (a[hl] == ':' && m >= 2 && m <= 6 &&
                    strspn(a + hl + 1, "0123456789") >= m - 1)
                        return 1;
        }
        return 0;
}

/* ---- records ---------------------------------------------------------- */

/* Caller holds the lock. */
static void record_locked(const char *provider, const char *id,
                          const char *url, long status, int attempt,
                          int64_t at_ms, const char *error)
{
        struct rec *r;

        if (cb.nrecs == FPCB_MAX_RECORDS) {
                size_t drop = FPCB_MAX_RECORDS / 10;

                memmove(cb.recs, cb.recs + drop,
                        (cb.nrecs - drop) * sizeof(*cb.recs));
                cb.nrecs -= drop;
        }
        if (cb.nrecs == cb.caprecs) {
                cb.caprecs = cb.caprecs ? cb.caprecs * 2 : 64;
                cb.recs = xrealloc(cb.recs, cb.caprecs * sizeof(*cb.recs));
        }
        r = &cb.recs[cb.nrecs++];
        snprintf(r->provider, sizeof(r->provider), "%s", provider);
        snprintf(r->id, sizeof(r->id), "%s", id);
        snprintf(r->url, sizeof(r->url), "%s", url);
        r->status = status;
        r->attempt = attempt;
        r->at_ms = at_ms;
        snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

void fpcb_refused(const char *provider, const char *id, const char *url)
{
        pthread_mutex_lock(&cb.lock);
        record_locked(provider, id, url, 0, 0, fakeprov_now_ms(),
                      "refused: not an http URL on 127.0.0.1 or localhost");
        pthread_mutex_unlock(&cb.lock);
}

json_t *fpcb_dump(const char *provider)
{
        json_t *arr = json_array(), *o;
        size_t i;

        pthread_mutex_lock(&cb.lock);
        for (i = 0; i < cb.nrecs; i++) {
                const struct rec *r = &cb.recs[i];

                if (strcmp(r->provider, provider))
                        continue;
                o = json_pack("{s:s, s:s, s:i, s:i, s:I}", "task_id", r->id,
                              "url", r->url, "status", (int)r->status,
                              "attempt", r->attempt, "at_ms",
                              (json_int_t)r->at_ms);
                if (!o) /* a URL or id that is not UTF-8 */
                        o = json_pack("{s:s, s:s, s:i, s:i, s:I}", "task_id",
                                      "?", "url", "?", "status",
                                      (int)r->status, "attempt", r->attempt,
                                      "at_ms", (json_int_t)r->at_ms);
                if (!o)
                        fatal("fpcb: json_pack record");
                if (r->error[0])
                        json_object_set_new(o, "error",
                                            json_string(r->error));
                json_array_append_new(arr, o);
        }
        pthread_mutex_unlock(&cb.lock);
        return arr;
}

/* ---- events ----------------------------------------------------------- */

static void ev_free(struct ev *e)
{
        if (!e)
                return;
        free(e->snap);
        free(e->body);
        curl_slist_free_all(e->hdrs);
        free(e);
}

/* Insert by due time (after equals, so order is kept).  Lock held. */
static void insert_locked(struct ev *e)
{
        struct ev **pp = &cb.pending;

        while (*pp && (*pp)->due <= e->due)
                pp = &(*pp)->next;
        e->next = *pp;
        *pp = e;
}

/* Queue \p e, or free it if not running.  Wakes the thread. */
static void queue(struct ev *e)
{
        pthread_mutex_lock(&cb.lock);
        if (!cb.started || cb.stopping) {
                pthread_mutex_unlock(&cb.lock);
                ev_free(e);
                return;
        }
        insert_locked(e);
        curl_multi_wakeup(cb.multi);
        pthread_mutex_unlock(&cb.lock);
}

void fpcb_send(const struct fptask *t)
{
        struct ev *e = xcalloc(1, sizeof(*e));

        e->kind = EV_SEND;
        snprintf(e->provider, sizeof(e->provider), "%s", t->provider);
        snprintf(e->id, sizeof(e->id), "%s", t->id);
        snprintf(e->url, sizeof(e->url), "%s", t->cb_url);
        snprintf(e->header, sizeof(e->header), "%s", t->cb_header);
        e->snap = xmalloc(sizeof(*e->snap));
        *e->snap = *t;
        e->due = fptimer_now_ms();
        queue(e);
}

void fpcb_at(const char *provider, const char *id, int64_t due_mono)
{
        struct ev *e = xcalloc(1, sizeof(*e));

        e->kind = EV_CHECK;
        snprintf(e->provider, sizeof(e->provider), "%s", provider);
        snprintf(e->id, sizeof(e->id), "%s", id);
        e->due = due_mono;
        queue(e);
}

void fpcb_reset(const char *provider)
{
        struct ev **pp, *e, *gone = NULL;
        size_t i, n = 0;

        pthread_mutex_lock(&cb.lock);
        for (pp = &cb.pending; (e = *pp);) {
                if ((provider && (e->kind != EV_SEND ||
                                  strcmp(e->provider, provider)))) {
                        pp = &e->next;
                        continue;
                }
                *pp = e->next;
                e->next = gone;
                gone = e;
        }
        for (e = cb.running; e; e = e->next)
                if (!provider || !strcmp(e->provider, provider))
                        e->dropped = 1;
        for (i = 0; i < cb.nrecs; i++)
                if (provider && strcmp(cb.recs[i].provider, provider))
                        cb.recs[n++] = cb.recs[i];
        cb.nrecs = n;
        pthread_mutex_unlock(&cb.lock);
        while ((e = gone)) {
                gone = e->next;
                ev_free(e);
        }
}

/* ---- the thread ------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
        return size * n;
}

static int build_body(struct ev *e)
{
        if (e->body)
                return 0;
        if (!e->snap || !e->snap->cb_body)
                return -1;
        e->body = e->snap->cb_body(e->snap);
        free(e->snap);
        e->snap = NULL;
        return e->body ? 0 : -1;
}

/* Start one attempt of \p e (not linked anywhere). */
static void start(struct ev *e)
{
        CURL *h = curl_easy_init();

        if (!h)
                fatal("fpcb: curl_easy_init");
        if (!e->hdrs) {
                e->hdrs = curl_slist_append(NULL,
                                            "Content-Type: application/json");
                e->hdrs = curl_slist_append(e->hdrs, "Expect:");
                if (e->header[0])
                        e->hdrs = curl_slist_append(e->hdrs, e->header);
                if (!e->hdrs)
                        fatal("fpcb: curl_slist_append");
        }
        curl_easy_setopt(h, CURLOPT_URL, e->url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, e->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(e->body));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->hdrs);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "fakeprov-callback/1");
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)FPCB_TIMEOUT_MS);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)FPCB_TIMEOUT_MS);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_PRIVATE, e);
        e->easy = h;
        e->attempt++;
        e->started_ms = fakeprov_now_ms();
        pthread_mutex_lock(&cb.lock);
        e->next = cb.running;
        cb.running = e;
        cb.nrunning++;
        pthread_mutex_unlock(&cb.lock);
        curl_multi_add_handle(cb.multi, h);
}

/* Unlink \p e from the running list.  Lock held. */
static void unlink_running_locked(struct ev *e)
{
        struct ev **pp;

        for (pp = &cb.running; *pp; pp = &(*pp)->next)
                if (*pp == e) {
                        *pp = e->next;
                        cb.nrunning--;
                        break;
                }
        e->next = NULL;
}

/* A CHECK came due: claim the task, or ask again shortly. */
static void check(struct ev *e)
{
        struct fptask snap;
        int rc = fptask_settle(e->provider, e->id, &snap);

        if (rc == 0) {
                e->due = fptimer_now_ms() + 5;
                queue(e);
                return;
        }
        ev_free(e);
        if (rc == 1)
                fpcb_send(&snap);
}

/* Take the due events, as many SENDs as there is room for. */
static struct ev *take_due(int64_t now)
{
        struct ev *list = NULL, **tail = &list, *e;
        size_t room;

        pthread_mutex_lock(&cb.lock);
        room = FPCB_ACTIVE > cb.nrunning ? FPCB_ACTIVE - cb.nrunning : 0;
        while ((e = cb.pending) && e->due <= now &&
               (e->kind == EV_CHECK || room)) {
                cb.pending = e->next;
                e->next = NULL;
                *tail = e;
                tail = &e->next;
                if (e->kind == EV_SEND)
                        room--;
        }
        pthread_mutex_unlock(&cb.lock);
        return list;
}

static void run_due(void)
{
        struct ev *e = take_due(fptimer_now_ms()), *next;

        for (; e; e = next) {
                next = e->next;
                e->next = NULL;
                if (e->kind == EV_CHECK) {
                        check(e);
                } else if (build_body(e) == -1) {
                        log_warn(FAC, "%s task %s: no callback body",
                                 e->provider, e->id);
                        ev_free(e);
                } else {
                        start(e);
                }
        }
}

/* One attempt ended with \p res: record it, then retry or forget. */
static void finished(struct ev *e, CURLcode res)
{
        long status = 0;
        int ok, retry, dropped;

        curl_easy_getinfo(e->easy, CURLINFO_RESPONSE_CODE, &status);
        if (res != CURLE_OK)
                status = 0;
        curl_multi_remove_handle(cb.multi, e->easy);
        curl_easy_cleanup(e->easy);
        e->easy = NULL;
        ok = status >= 200 && status < 300;
        pthread_mutex_lock(&cb.lock);
        unlink_running_locked(e);
        dropped = e->dropped;
        if (!dropped)
                record_locked(e->provider, e->id, e->url, status, e->attempt,
                              e->started_ms,
                              res != CURLE_OK ? curl_easy_strerror(res)
                                              : NULL);
        pthread_mutex_unlock(&cb.lock);
        if (dropped) {
                ev_free(e);
                return;
        }
        fptask_note_callback(e->provider, e->id);
        if (!ok && res != CURLE_OK)
                log_info(FAC, "%s task %s: callback attempt %d to %s: %s",
                         e->provider, e->id, e->attempt, e->url,
                         curl_easy_strerror(res));
        else if (!ok)
                log_info(FAC, "%s task %s: callback attempt %d to %s: "
                         "HTTP %ld",
                         e->provider, e->id, e->attempt, e->url, status);
        /* e is ours until queued again (a reset may free it then). */
        pthread_mutex_lock(&cb.lock);
        retry = !ok && !cb.stopping && e->attempt <= FPCB_RETRIES;
        if (retry) {
                e->due = fptimer_now_ms() + FPCB_RETRY_MS;
                insert_locked(e);
        }
        pthread_mutex_unlock(&cb.lock);
        if (!retry)
                ev_free(e);
}

static void reap(void)
{
        CURLMsg *m;
        int left;

        while ((m = curl_multi_info_read(cb.multi, &left))) {
                struct ev *e = NULL;

                if (m->msg != CURLMSG_DONE)
                        continue;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
                                  (char **)&e);
                finished(e, m->data.result);
        }
}

static int wait_ms(void)
{
        int64_t now = fptimer_now_ms(), w = IDLE_WAIT_MS;

        pthread_mutex_lock(&cb.lock);
        if (cb.pending && (cb.pending->kind == EV_CHECK ||
                           cb.nrunning < FPCB_ACTIVE))
                w = cb.pending->due - now;
        pthread_mutex_unlock(&cb.lock);
        return w < 0 ? 0 : w > IDLE_WAIT_MS ? IDLE_WAIT_MS : (int)w;
}

static int stopping(void)
{
        int s;

        pthread_mutex_lock(&cb.lock);
        s = cb.stopping;
        pthread_mutex_unlock(&cb.lock);
        return s;
}

static void *cb_main(void *arg)
{
        int still;

        while (!stopping()) {
                run_due();
                curl_multi_perform(cb.multi, &still);
                reap();
                curl_multi_poll(cb.multi, NULL, 0, wait_ms(), NULL);
                curl_multi_perform(cb.multi, &still);
                reap();
        }
        /* Abandon what is running. */
        pthread_mutex_lock(&cb.lock);
        while (cb.running) {
                struct ev *e = cb.running;

                cb.running = e->next;
                curl_multi_remove_handle(cb.multi, e->easy);
                curl_easy_cleanup(e->easy);
                ev_free(e);
        }
        cb.nrunning = 0;
        pthread_mutex_unlock(&cb.lock);
        return NULL;
}

/* ---- start / stop ----------------------------------------------------- */

int fpcb_start(char *errstr, size_t errstr_size)
{
        int err;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                snprintf(errstr, errstr_size, "curl_global_init failed");
                return -1;
        }
        cb.multi = curl_multi_init();
        if (!cb.multi) {
                snprintf(errstr, errstr_size, "curl_multi_init failed");
                goto err_global;
        }
        cb.started = 1;
        err = pthread_create(&cb.thread, NULL, cb_main, NULL);
        if (err) {
                snprintf(errstr, errstr_size, "callback thread: %s",
                         strerror(err));
                cb.started = 0;
                goto err_multi;
        }
        return 0;

err_multi:
        curl_multi_cleanup(cb.multi);
        cb.multi = NULL;
err_global:
        curl_global_cleanup();
        return -1;
}

void fpcb_stop(void)
{
        struct ev *e;

        pthread_mutex_lock(&cb.lock);
        if (!cb.started || cb.stopping) {
                pthread_mutex_unlock(&cb.lock);
                return;
        }
        cb.stopping = 1;
        pthread_mutex_unlock(&cb.lock);
        curl_multi_wakeup(cb.multi);
        pthread_join(cb.thread, NULL);
        pthread_mutex_lock(&cb.lock);
        while ((e = cb.pending)) {
                cb.pending = e->next;
                ev_free(e);
        }
        free(cb.recs);
        cb.recs = NULL;
        cb.nrecs = cb.caprecs = 0;
        pthread_mutex_unlock(&cb.lock);
        curl_multi_cleanup(cb.multi);
        cb.multi = NULL;
        curl_global_cleanup();
}
