/*
 * offtrack: per partition, a ring of the offsets taken, oldest first, with
 * a done flag each.  Done pops from the front while the front is done; the
 * store position is then one past the last popped offset.  Offsets are
 * increasing in the ring, so finding one is a binary search.
 */
#include "offtrack.h"

#include <stdlib.h>
#include <string.h>

#include "xmem.h"

struct slot {
        int64_t offset;
        int done;
};

struct part {
        char *topic;
        int32_t partition;
        struct slot *ring;   /**< capacity cap, power of two */
        size_t cap, head, n; /**< n live slots from head */
        int64_t last_added;  /**< -1 before the first */
};

struct offtrack_s {
        struct part *parts;
        size_t n, cap;
        size_t pending;
};

offtrack_t *offtrack_new(void)
{
        return xcalloc(1, sizeof(offtrack_t));
}

void offtrack_destroy(offtrack_t *ot)
{
        if (!ot)
                return;
        for (size_t i = 0; i < ot->n; i++) {
                free(ot->parts[i].topic);
                free(ot->parts[i].ring);
        }
        free(ot->parts);
        free(ot);
}

static struct part *find(const offtrack_t *ot, const char *topic,
                         int32_t partition)
{
        for (size_t i = 0; i < ot->n; i++)
                if (ot->parts[i].partition == partition &&
                    !strcmp(ot->parts[i].topic, topic))
                        return &ot->parts[i];
        return NULL;
}

static struct part *get(offtrack_t *ot, const char *topic, int32_t partition)
{
        struct part *p = find(ot, topic, partition);

        if (p)
                return p;
        if (ot->n == ot->cap) {
                ot->cap = ot->cap ? ot->cap * 2 : 16;
                ot->parts = xrealloc(ot->parts, ot->cap * sizeof(*ot->parts));
        }
        p = &ot->parts[ot->n++];
        memset(p, 0, sizeof(*p));
        p->topic = xstrdup(topic);
        p->partition = partition;
        p->last_added = -1;
        return p;
}

static struct slot *at(struct part *p, size_t i)
{
        return &p->ring[(p->head + i) & (p->cap - 1)];
}

static void grow(struct part *p)
{
        size_t ncap = p->cap ? p->cap * 2 : 64;
        struct slot *nr = xmalloc(ncap * sizeof(*nr));

        for (size_t i = 0; i < p->n; i++)
                nr[i] = *at(p, i);
        free(p->ring);
        p->ring = nr;
        p->cap = ncap;
        p->head = 0;
}

int offtrack_add(offtrack_t *ot, const char *topic, int32_t partition,
                 int64_t offset)
{
        struct part *p = get(ot, topic, partition);
        int rc = 0;

        if (offset <= p->last_added) {
                /* Rewind (seek, or a reset after an error): what was
                 * pending will be delivered again. */
                ot->pending -= p->n;
                p->n = 0;
                rc = -1;
        }
        if (p->n == p->cap)
                grow(p);
        *at(p, p->n) = (struct slot){offset, 0};
        p->n++;
        p->last_added = offset;
        ot->pending++;
        return rc;
}

static struct slot *search(struct part *p, int64_t offset)
{
        size_t lo = 0, hi = p->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                struct slot *s = at(p, mid);

                if (s->offset == offset)
                        return s;
                if (s->offset < offset)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

int64_t offtrack_done(offtrack_t *ot, const char *topic, int32_t partition,
                      int64_t offset)
{
        struct part *p = find(ot, topic, partition);
        struct slot *s = p ? search(p, offset) : NULL;
        int64_t store = -1;

        if (!s || s->done)
                return -2;
        s->done = 1;
        while (p->n > 0 && at(p, 0)->done) {
                store = at(p, 0)->offset + 1;
                p->head = (p->head + 1) & (p->cap - 1);
                p->n--;
                ot->pending--;
        }
        return store;
}

size_t offtrack_pending(const offtrack_t *ot)
{
        return ot->pending;
}

size_t offtrack_pending_in(const offtrack_t *ot, const char *topic,
                           int32_t partition)
{
        struct part *p = find(ot, topic, partition);

        return p ? p->n : 0;
}

void offtrack_drop(offtrack_t *ot, const char *topic, int32_t partition)
{
        struct part *p = find(ot, topic, partition);

        if (!p)
                return;
        ot->pending -= p->n;
        free(p->topic);
        free(p->ring);
        *p = ot->parts[--ot->n];
}
