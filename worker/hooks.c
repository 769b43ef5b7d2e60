/*
 * hooks: signed completion POSTs with retries.  See hooks.h.
 */
#include "hooks.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "provider.h"
#include "xmem.h"

#define FIRST_DELAY_US 1000000LL
#define MAX_DELAY_US (5 * 60 * 1000000LL)

struct hook {
        struct hook *next;
        hooks_t *owner;
        char *job_id, *url, *body;
        int tries;              /**< deliveries started */
        int64_t due_us;
        int64_t delay_us;       /**< next backoff */
        int busy;               /**< a request is in flight */
};

struct hooks_s {
        struct hooks_cfg cfg;
        char *secret;
        httploop_t *hl;
        pgsink_t *ps;
        struct hook *list;      /**< waiting and in flight */
        size_t n_busy;
        int64_t now_us;
};

void hooks_sign(const char *secret, int64_t t, const char *body, char *out,
                size_t out_size)
{
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        char ts[24], hex[2 * EVP_MAX_MD_SIZE + 1];
        size_t tl, bl = strlen(body);
        unsigned char *msg;

        snprintf(ts, sizeof(ts), "%lld", (long long)t);
        tl = strlen(ts);
        msg = xmalloc(tl + 1 + bl);
        memcpy(msg, ts, tl);
        msg[tl] = '.';
        memcpy(msg + tl + 1, body, bl);
        HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tl + 1 + bl, mac,
             &mac_len);
        free(msg);
        for (unsigned i = 0; i < mac_len; i++)
                snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        hex[2 * mac_len] = '\0';
        snprintf(out, out_size, "t=%s,v1=%s", ts, hex);
}

hooks_t *hooks_new(const struct hooks_cfg *cfg, httploop_t *hl, pgsink_t *ps)
{
        hooks_t *h = xcalloc(1, sizeof(*h));

        h->cfg = *cfg;
        h->secret = cfg->secret ? xstrdup(cfg->secret) : NULL;
        h->cfg.secret = NULL;
        h->hl = hl;
        h->ps = ps;
        return h;
}

static void hook_free(struct hook *k)
{
        free(k->job_id);
        free(k->url);
        free(k->body);
        free(k);
}

void hooks_destroy(hooks_t *h)
{
        if (!h)
                return;
        while (h->list) {
                struct hook *k = h->list;

                h->list = k->next;
                hook_free(k);
        }
        if (h->secret) {
                explicit_bzero(h->secret, strlen(h->secret));
                free(h->secret);
        }
        free(h);
}

void hooks_add(hooks_t *h, const char *job_id, const char *url,
               const char *body, int64_t now_us)
{
        struct hook *k;

        if (!h->secret) {
                log_warn("hooks", "job %s names a callback_url but "
                                  "hooks.secret_env is not set: not sent",
                         job_id);
                return;
        }
        k = xcalloc(1, sizeof(*k));
        k->owner = h;
        k->job_id = xstrdup(job_id);
        k->url = xstrdup(url);
        k->body = xstrdup(body);
        k->due_us = now_us;
        k->delay_us = FIRST_DELAY_US;
        k->next = h->list;
        h->list = k;
        hooks_tick(h, now_us);
}

static void unlink_hook(hooks_t *h, struct hook *k)
{
        struct hook **pp = &h->list;

        while (*pp && *pp != k)
                pp = &(*pp)->next;
        if (*pp)
                *pp = k->next;
}

static void record(hooks_t *h, const struct hook *k, long status,
                   const char *error, int ok)
{
        struct pgop *op = pgop_new(PGOP_HOOK);

        op->job_id = xstrdup(k->job_id);
        op->polls = k->tries;
        op->text = xstrdup(k->url);
        op->hit = status;
        op->error = error ? xstrdup(error) : NULL;
        op->cancelled = ok;
        pgsink_submit(h->ps, op);
}

static void on_done(void *opaque, const struct provider_resp *resp)
{
        struct hook *k = opaque;
        hooks_t *h = k->owner;
        int ok = !resp->transport_err && resp->status >= 200 &&
                 resp->status < 300;
        char why[200] = "";

        k->busy = 0;
        h->n_busy--;
        if (!ok)
                snprintf(why, sizeof(why), "%s",
                         resp->transport_err ? resp->transport_msg
                                             : "not a 2xx answer");
        record(h, k, resp->status, ok ? NULL : why, ok);
        if (ok || k->tries >= h->cfg.max_tries) {
                if (!ok)
                        log_warn("hooks", "job %s: callback_url gave up after "
                                          "%d tries (last: HTTP %ld, %s)",
                                 k->job_id, k->tries, resp->status, why);
                unlink_hook(h, k);
                hook_free(k);
                return;
        }
        /* Doubling waits: a receiver that is down for minutes still gets
         * the event when it is back, without being hammered meanwhile. */
        k->due_us = h->now_us + k->delay_us;
        k->delay_us = k->delay_us * 2 > MAX_DELAY_US ? MAX_DELAY_US
                                                     : k->delay_us * 2;
}

static void send_hook(hooks_t *h, struct hook *k)
{
        struct provider_req req = {0};
        char sig[200], errstr[256];

        hooks_sign(h->secret, (int64_t)time(NULL), k->body, sig, sizeof(sig));
        snprintf(req.url, sizeof(req.url), "%s", k->url);
        req.method = "POST";
        req.body = xstrdup(k->body);
        req.body_len = strlen(k->body);
        req.media = 2; /* the job's URL: checked address, no redirects */
        provider_req_header(&req, "Content-Type: application/json");
        provider_req_header(&req, "X-Genq-Signature: %s", sig);
        provider_req_header(&req, "X-Genq-Job-Id: %s", k->job_id);
        k->tries++;
        if (httploop_send(h->hl, &req, h->cfg.timeout_ms, 64 * 1024, on_done,
                          k, errstr, sizeof(errstr))) {
                struct provider_resp fake = {.transport_err = 1,
                                             .transport_msg = errstr};

                k->busy = 1;
                h->n_busy++;
                on_done(k, &fake); /* counts as a failed try */
        } else {
                k->busy = 1;
                h->n_busy++;
        }
        provider_req_clear(&req);
}

void hooks_tick(hooks_t *h, int64_t now_us)
{
        struct hook *k = h->list, *next;

        h->now_us = now_us;
        for (; k; k = next) {
                next = k->next; /* send_hook may free k */
                if (!k->busy && k->due_us <= now_us)
                        send_hook(h, k);
        }
}

size_t hooks_busy(const hooks_t *h)
{
        return h->n_busy;
}

size_t hooks_waiting(const hooks_t *h)
{
        size_t n = 0;

        for (const struct hook *k = h->list; k; k = k->next)
                n += !k->busy;
        return n;
}
