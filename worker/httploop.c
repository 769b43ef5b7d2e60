/*
 * httploop: libcurl multi, driven by curl_multi_poll().
 *
 * DESIGN
 * One thread, the worker's event loop, owns the multi handle and every
 * easy handle; no locks.  curl_multi_poll() waits on curl's sockets and on
 * the loop's other descriptors (Kafka's queue event fd, the Postgres
 * sink's completion fd) together, so the loop sleeps until any of them has
 * work and never spins.  Connections are kept alive in the multi's cache
 * (a new TLS connection costs ~40 loopback keep-alive requests); easy
 * handles are recycled through a free list so steady state allocates only
 * response buffers.  A response is kept up to max_body bytes: more ends
 * the transfer (CURLE_WRITE_ERROR) and is reported as truncated.
 */
#include "httploop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "xmem.h"

struct call {
        CURL *easy;
        struct curl_slist *hdrs;
        char *req_body;
        char *buf;            /**< response body, NUL-terminated */
        size_t len, cap, max;
        int truncated;
        int64_t retry_after_ms;
        curl_mime *mime;      /**< multipart body, or NULL */
        char **hdr_lines;     /**< response header lines, NULL-terminated */
        size_t n_hdr;
        httploop_done_cb *cb;
        void *opaque;
        char errbuf[CURL_ERROR_SIZE];
        struct call *next, *prev;  /**< active list, or free list (next) */
};

struct httploop_s {
        CURLM *multi;
        struct call *free_calls;
        struct call *active;       /**< calls added to the multi */
        size_t inflight;
};

httploop_t *httploop_new(long max_conns, char *errstr, size_t errstr_size)
{
        httploop_t *hl = xcalloc(1, sizeof(*hl));

        hl->multi = curl_multi_init();
        if (!hl->multi) {
                snprintf(errstr, errstr_size, "curl_multi_init failed");
                free(hl);
                return NULL;
        }
        curl_multi_setopt(hl->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_conns);
        curl_multi_setopt(hl->multi, CURLMOPT_MAXCONNECTS, max_conns);
        return hl;
}

#define MAX_RESP_HEADERS 64

static void free_headers(struct call *c)
{
        for (size_t i = 0; i < c->n_hdr; i++)
                free(c->hdr_lines[i]);
        free(c->hdr_lines);
        c->hdr_lines = NULL;
        c->n_hdr = 0;
}

static void call_free(struct call *c)
{
        free_headers(c);
        curl_mime_free(c->mime);
        curl_easy_cleanup(c->easy);
        curl_slist_free_all(c->hdrs);
        free(c->req_body);
        free(c->buf);
        free(c);
}

void httploop_destroy(httploop_t *hl)
{
        if (!hl)
                return;
        while (hl->active) {
                struct call *c = hl->active;

                hl->active = c->next;
                curl_multi_remove_handle(hl->multi, c->easy);
                call_free(c);
        }
        while (hl->free_calls) {
                struct call *c = hl->free_calls;

                hl->free_calls = c->next;
                call_free(c);
        }
        curl_multi_cleanup(hl->multi);
        free(hl);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
        struct call *c = ud;
        size_t n = size * nmemb;

        if (c->len + n > c->max) {
                c->truncated = 1;
                return 0; /* ends the transfer: CURLE_WRITE_ERROR */
        }
        if (c->len + n + 1 > c->cap) {
                size_t ncap = c->cap ? c->cap : 4096;

                while (ncap < c->len + n + 1)
                        ncap *= 2;
                c->buf = xrealloc(c->buf, ncap);
                c->cap = ncap;
        }
        memcpy(c->buf + c->len, ptr, n);
        c->len += n;
        c->buf[c->len] = '\0';
        return n;
}

/* Retry hints live in headers; read them as they arrive. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
        struct call *c = ud;
        size_t n = size * nmemb;
        char line[256];
        size_t l = n < sizeof(line) - 1 ? n : sizeof(line) - 1;

        memcpy(line, ptr, l);
        line[l] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (!strncasecmp(line, "retry-after-ms:", 15)) {
                long long ms = atoll(line + 15);

                if (ms >= 0)
                        c->retry_after_ms = ms;
        } else if (!strncasecmp(line, "retry-after:", 12) &&
                   c->retry_after_ms < 0) {
                const char *v = line + 12;

                while (*v == ' ')
                        v++;
                c->retry_after_ms =
                        provider_parse_retry_after(v, (int64_t)time(NULL));
        } else if (!strncasecmp(line, "HTTP/", 5)) {
                c->retry_after_ms = -1; /* new response (redirect, 100) */
                free_headers(c);
                return n;
        }
        if (strchr(line, ':') && c->n_hdr < MAX_RESP_HEADERS) {
                c->hdr_lines = xrealloc(c->hdr_lines,
                                        (c->n_hdr + 2) * sizeof(char *));
                c->hdr_lines[c->n_hdr++] = xstrdup(line);
                c->hdr_lines[c->n_hdr] = NULL;
        }
        return n;
}

static struct call *call_get(httploop_t *hl)
{
        struct call *c = hl->free_calls;

        if (c) {
                hl->free_calls = c->next;
                curl_easy_reset(c->easy);
                return c;
        }
        c = xcalloc(1, sizeof(*c));
        c->easy = curl_easy_init();
        if (!c->easy)
                fatal("curl_easy_init failed");
        return c;
}

static void call_put(httploop_t *hl, struct call *c)
{
        free_headers(c);
        curl_mime_free(c->mime);
        c->mime = NULL;
        curl_slist_free_all(c->hdrs);
        c->hdrs = NULL;
        free(c->req_body);
        c->req_body = NULL;
        free(c->buf);
        c->buf = NULL;
        c->len = c->cap = 0;
        c->prev = NULL;
        c->next = hl->free_calls;
        hl->free_calls = c;
}

static void call_setopts(struct call *c, const struct provider_req *req,
                         long timeout_ms)
{
        CURL *e = c->easy;

        curl_easy_setopt(e, CURLOPT_URL, req->url);
        curl_easy_setopt(e, CURLOPT_PRIVATE, c);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         timeout_ms < 10000 ? timeout_ms : 10000L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        /* Providers never redirect API calls; a redirect is an error, and
         * it must not carry our Authorization header elsewhere. */
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        if (c->mime) {
                curl_easy_setopt(e, CURLOPT_MIMEPOST, c->mime);
        } else if (!strcmp(req->method, "POST")) {
                curl_easy_setopt(e, CURLOPT_POST, 1L);
                curl_easy_setopt(e, CURLOPT_POSTFIELDS,
                                 c->req_body ? c->req_body : "");
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)(c->req_body ? req->body_len : 0));
        } else if (strcmp(req->method, "GET")) {
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
        }
}

/* multipart/form-data from the adapter's parts (curl copies the data). */
static curl_mime *build_mime(CURL *easy, const struct provider_req *req)
{
        curl_mime *m = curl_mime_init(easy);

        for (size_t i = 0; i < req->n_parts; i++) {
                const struct provider_part *pt = &req->parts[i];
                curl_mimepart *mp = curl_mime_addpart(m);

                curl_mime_name(mp, pt->name);
                curl_mime_data(mp, pt->data, pt->len);
                if (pt->filename)
                        curl_mime_filename(mp, pt->filename);
                if (pt->content_type)
                        curl_mime_type(mp, pt->content_type);
        }
        return m;
}

int httploop_send(httploop_t *hl, const struct provider_req *req,
                  long timeout_ms, size_t max_body, httploop_done_cb *cb,
                  void *opaque, char *errstr, size_t errstr_size)
{
        struct call *c = call_get(hl);
        CURLMcode mc;

        for (size_t i = 0; req->headers && req->headers[i]; i++)
                c->hdrs = curl_slist_append(c->hdrs, req->headers[i]);
        /* curl adds "Expect: 100-continue" to large POSTs: a wasted round
         * trip with every provider. */
        c->hdrs = curl_slist_append(c->hdrs, "Expect:");
        if (req->n_parts)
                c->mime = build_mime(c->easy, req);
        if (req->body) {
                c->req_body = xmalloc(req->body_len + 1);
                memcpy(c->req_body, req->body, req->body_len);
                c->req_body[req->body_len] = '\0';
        }
        c->max = max_body;
        c->truncated = 0;
        c->retry_after_ms = -1;
        c->cb = cb;
        c->opaque = opaque;
        c->errbuf[0] = '\0';
        call_setopts(c, req, timeout_ms);
        mc = curl_multi_add_handle(hl->multi, c->easy);
        if (mc != CURLM_OK) {
                snprintf(errstr, errstr_size, "curl_multi_add_handle: %s",
                         curl_multi_strerror(mc));
                call_put(hl, c);
                return -1;
        }
        c->prev = NULL;
        c->next = hl->active;
        if (hl->active)
                hl->active->prev = c;
        hl->active = c;
        hl->inflight++;
        return 0;
}

static void finish(httploop_t *hl, CURL *easy, CURLcode res)
{
        struct call *c = NULL;
        struct provider_resp r = {0};
        char *ctype = NULL;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ctype);
        curl_multi_remove_handle(hl->multi, easy);
        if (c->prev)
                c->prev->next = c->next;
        else
                hl->active = c->next;
        if (c->next)
                c->next->prev = c->prev;
        hl->inflight--;
        r.truncated = c->truncated;
        r.transport_err = c->truncated ? 0 : (int)res;
        r.timed_out = res == CURLE_OPERATION_TIMEDOUT;
        r.transport_msg = c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
        if (r.transport_err)
                r.status = 0;
        r.content_type = ctype;
        r.body = c->buf ? c->buf : "";
        r.body_len = c->len;
        r.retry_after_ms = c->retry_after_ms;
        r.headers = c->hdr_lines;
        c->cb(c->opaque, &r);
        call_put(hl, c);
}

int httploop_run(httploop_t *hl, int timeout_ms, struct curl_waitfd *extra,
                 unsigned n_extra)
{
        CURLMcode mc;
        CURLMsg *m;
        int running, left;

        mc = curl_multi_poll(hl->multi, extra, n_extra, timeout_ms, NULL);
        if (mc == CURLM_OK)
                mc = curl_multi_perform(hl->multi, &running);
        if (mc != CURLM_OK) {
                log_err("http", "curl multi: %s", curl_multi_strerror(mc));
                return -1;
        }
        while ((m = curl_multi_info_read(hl->multi, &left)))
                if (m->msg == CURLMSG_DONE)
                        finish(hl, m->easy_handle, m->data.result);
        return 0;
}

size_t httploop_inflight(const httploop_t *hl)
{
        return hl->inflight;
}
