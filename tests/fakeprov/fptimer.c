/* Delayed and hung request wake-ups; see the DESIGN note in fptimer.h. */
#include "fptimer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmem.h"

struct fptimer_s {
        fptimer_fire_fn *fire;
        void *opaque;
        pthread_t thread;
        pthread_mutex_t lock;      /**< guards everything below */
        pthread_cond_t cond;       /**< new earliest entry, or stop */
        int stopping;
        struct fptimer_ent **heap; /**< min-heap by due_ms, borrowed */
        size_t n, cap;
        struct pollfd *pfds;       /**< scratch for the hang-up watch */
        struct fptimer_ent **gone; /**< scratch: entries whose client left */
        int64_t next_watch_ms;
};

int64_t fptimer_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- heap (caller holds the lock) ---------------------------------- */

static void heap_put(fptimer_t *t, size_t i, struct fptimer_ent *e)
{
        t->heap[i] = e;
        e->idx = i;
}

static void sift_up(fptimer_t *t, size_t i)
{
        struct fptimer_ent *e = t->heap[i];

        while (i > 0 && t->heap[(i - 1) / 2]->due_ms > e->due_ms) {
                heap_put(t, i, t->heap[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        heap_put(t, i, e);
}

static void sift_down(fptimer_t *t, size_t i)
{
        struct fptimer_ent *e = t->heap[i];
        size_t c;

        while ((c = 2 * i + 1) < t->n) {
                if (c + 1 < t->n && t->heap[c + 1]->due_ms < t->heap[c]->due_ms)
                        c++;
                if (t->heap[c]->due_ms >= e->due_ms)
                        break;
                heap_put(t, i, t->heap[c]);
                i = c;
        }
        heap_put(t, i, e);
}

static void heap_grow(fptimer_t *t)
{
        t->cap = t->cap ? t->cap * 2 : 64;
        t->heap = xrealloc(t->heap, t->cap * sizeof(*t->heap));
        t->pfds = xrealloc(t->pfds, t->cap * sizeof(*t->pfds));
        t->gone = xrealloc(t->gone, t->cap * sizeof(*t->gone));
}

static void heap_remove(fptimer_t *t, struct fptimer_ent *e)
{
        struct fptimer_ent *moved;
        size_t i = e->idx;

        t->n--;
        if (i == t->n)
                return;
        moved = t->heap[t->n];
        heap_put(t, i, moved);
        sift_down(t, i);
        sift_up(t, moved->idx);
}

/* ---- the thread ---------------------------------------------------- */

/* Fire \p e outside the lock. */
static void fire_unlocked(fptimer_t *t, struct fptimer_ent *e,
                          enum fptimer_why why)
{
        pthread_mutex_unlock(&t->lock);
        t->fire(e, why, t->opaque);
        pthread_mutex_lock(&t->lock);
}

static void fire_due(fptimer_t *t, int64_t now)
{
        struct fptimer_ent *e;

        while (t->n && t->heap[0]->due_ms <= now && !t->stopping) {
                e = t->heap[0];
                heap_remove(t, e);
                fire_unlocked(t, e, FPTIMER_DUE);
        }
}

/* Poll every parked client socket once; fire those that hung up.  The
 * list of leavers is copied out because firing drops the lock, and an
 * fptimer_add() meanwhile may grow the scratch arrays. */
static void watch_gone(fptimer_t *t)
{
        struct fptimer_ent **gone;
        size_t i, ngone = 0;

        for (i = 0; i < t->n; i++) {
                t->pfds[i].fd = t->heap[i]->fd;
                t->pfds[i].events = POLLIN | POLLRDHUP;
                t->pfds[i].revents = 0;
        }
        if (poll(t->pfds, (nfds_t)t->n, 0) <= 0)
                return;
        for (i = 0; i < t->n; i++)
                if (t->pfds[i].revents &
                    (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
                        t->gone[ngone++] = t->heap[i];
        if (!ngone)
                return;
        gone = xmalloc(ngone * sizeof(*gone));
        memcpy(gone, t->gone, ngone * sizeof(*gone));
        for (i = 0; i < ngone; i++)
                heap_remove(t, gone[i]);
        for (i = 0; i < ngone; i++)
                fire_unlocked(t, gone[i], FPTIMER_GONE);
        free(gone);
}

static void wait_next(fptimer_t *t, int64_t now)
{
        int64_t until = t->next_watch_ms;
        struct timespec ts;

        if (!t->n) {
                pthread_cond_wait(&t->cond, &t->lock);
                return;
        }
        if (t->heap[0]->due_ms < until)
                until = t->heap[0]->due_ms;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (until - now) / 1000;
        ts.tv_nsec += ((until - now) % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
}

static void *timer_main(void *arg)
{
        fptimer_t *t = arg;
        int64_t now;

        pthread_mutex_lock(&t->lock);
        while (!t->stopping) {
                now = fptimer_now_ms();
                fire_due(t, now);
                if (now >= t->next_watch_ms) {
                        watch_gone(t);
                        t->next_watch_ms = now + FPTIMER_WATCH_MS;
                }
                if (!t->stopping)
                        wait_next(t, fptimer_now_ms());
        }
        pthread_mutex_unlock(&t->lock);
        return NULL;
}

/* ---- API ----------------------------------------------------------- */

fptimer_t *fptimer_new(fptimer_fire_fn *fire, void *opaque, char *errstr,
                       size_t errstr_size)
{
        fptimer_t *t = xcalloc(1, sizeof(*t));
        pthread_condattr_t ca;
        int err;

        t->fire = fire;
        t->opaque = opaque;
        pthread_mutex_init(&t->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&t->cond, &ca);
        pthread_condattr_destroy(&ca);
        err = pthread_create(&t->thread, NULL, timer_main, t);
        if (err) {
                snprintf(errstr, errstr_size, "timer thread: %s",
                         strerror(err));
                goto err_free_timer;
        }
        return t;

err_free_timer:
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
}

void fptimer_add(fptimer_t *t, struct fptimer_ent *ent)
{
        pthread_mutex_lock(&t->lock);
        if (t->stopping) {
                pthread_mutex_unlock(&t->lock);
                t->fire(ent, FPTIMER_STOP, t->opaque);
                return;
        }
        if (t->n == t->cap)
                heap_grow(t);
        heap_put(t, t->n++, ent);
        sift_up(t, t->n - 1);
        if (ent->idx == 0)
                pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->lock);
}

void fptimer_stop(fptimer_t *t)
{
        struct fptimer_ent *e;

        pthread_mutex_lock(&t->lock);
        t->stopping = 1;
        pthread_cond_signal(&t->cond);
        while (t->n) {
                e = t->heap[0];
                heap_remove(t, e);
                fire_unlocked(t, e, FPTIMER_STOP);
        }
        pthread_mutex_unlock(&t->lock);
}

void fptimer_destroy(fptimer_t *t)
{
        if (!t)
                return;
        fptimer_stop(t);
        pthread_join(t->thread, NULL);
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        free(t->heap);
        free(t->pfds);
        free(t->gone);
        free(t);
}
