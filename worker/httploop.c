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

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xmem.h"

struct call {
        CURL *easy;
        struct curl_slist *hdrs;
        char *req_body;
        size_t req_len;
        char *buf;            /**< response body, NUL-terminated */
        size_t len, cap, max;
        int truncated;
        int64_t retry_after_ms;
        curl_mime *mime;      /**< multipart body, or NULL */
        int sink_fd;          /**< > 0: body streamed there */
        int sink_err;         /**< errno of a failed write */
        EVP_MD_CTX *sha;      /**< SHA-256 of a streamed body */
        char **hdr_lines;     /**< response header lines, NULL-terminated */
        size_t n_hdr;
        httploop_done_cb *cb;
        void *opaque;
        char errbuf[CURL_ERROR_SIZE];
        struct call *next, *prev;  /**< active list, or free list (next) */
};

/** An allowed private network for media downloads. */
struct cidr {
        int family;            /**< AF_INET or AF_INET6 */
        unsigned char addr[16];
        int bits;
};

struct httploop_s {
        CURLM *multi;
        struct cidr *allow;    /**< private networks media may reach */
        size_t n_allow;
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
        EVP_MD_CTX_free(c->sha);
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
        free(hl->allow);
        free(hl);
}

/* Media: straight to the file, hashed on the way, counted in len. */
static size_t sink(struct call *c, const char *ptr, size_t n)
{
        size_t off = 0;

        while (off < n) {
                ssize_t w = write(c->sink_fd, ptr + off, n - off);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0) {
                        c->sink_err = w < 0 ? errno : EIO;
                        return 0;
                }
                off += (size_t)w;
        }
        EVP_DigestUpdate(c->sha, ptr, n);
        c->len += n;
        return n;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
        struct call *c = ud;
        size_t n = size * nmemb;

        if (c->len + n > c->max) {
                c->truncated = 1;
                return 0; /* ends the transfer: CURLE_WRITE_ERROR */
        }
        if (c->sink_fd > 0)
                return sink(c, ptr, n);
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

/* ---- media address policy ---------------------------------------------- */

static int in_cidr(const struct cidr *c, int family, const unsigned char *a)
{
        int full = c->bits / 8, rest = c->bits % 8;

        if (c->family != family || memcmp(c->addr, a, (size_t)full))
                return 0;
        return !rest || ((c->addr[full] ^ a[full]) >> (8 - rest)) == 0;
}

/* Loopback, RFC 1918, CGNAT, link-local, "this" network; IPv6 loopback,
 * ULA, link-local, and IPv4-mapped forms of the above. */
static int is_private4(const unsigned char *a)
{
        return a[0] == 10 || a[0] == 127 || a[0] == 0 ||
               (a[0] == 172 && (a[1] & 0xf0) == 16) ||
               (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
               (a[0] == 100 && (a[1] & 0xc0) == 64);
}

static int is_private(int family, const unsigned char *a)
{
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0,
                                                 0, 0, 0, 0, 0xff, 0xff};
        static const unsigned char loop6[16] = {[15] = 1};

        if (family == AF_INET)
                return is_private4(a);
        if (!memcmp(a, mapped, 12))
                return is_private4(a + 12);
        return !memcmp(a, loop6, 16) || (a[0] & 0xfe) == 0xfc ||
               (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);
}

static int allowed(const httploop_t *hl, int family, const unsigned char *a)
{
        if (!is_private(family, a))
                return 1;
        for (size_t i = 0; i < hl->n_allow; i++)
                if (in_cidr(&hl->allow[i], family, a))
                        return 1;
        return 0;
}

static curl_socket_t open_checked(void *ud, curlsocktype purpose,
                                  struct curl_sockaddr *sa)
{
        const httploop_t *hl = ud;
        const unsigned char *a = NULL;

        (void)purpose;
        if (sa->family == AF_INET)
                a = (const unsigned char *)&((struct sockaddr_in *)&sa->addr)
                            ->sin_addr;
        else if (sa->family == AF_INET6)
                a = (const unsigned char *)&((struct sockaddr_in6 *)&sa->addr)
                            ->sin6_addr;
        if (!a || !allowed(hl, sa->family, a)) {
                log_warn("http", "connection to a private address refused "
                                 "(a job's URL; not in worker.media_allow_private)");
                return CURL_SOCKET_BAD;
        }
        return socket(sa->family, sa->socktype, sa->protocol);
}

static int parse_cidr(const char *s, size_t len, struct cidr *c)
{
        char buf[64], *slash;

        if (len >= sizeof(buf))
                return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        slash = strchr(buf, '/');
        if (slash)
                *slash++ = '\0';
        c->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(c->family, buf, c->addr) != 1)
                return -1;
        c->bits = slash ? atoi(slash) : (c->family == AF_INET ? 32 : 128);
        return c->bits < 0 || c->bits > (c->family == AF_INET ? 32 : 128)
                       ? -1
                       : 0;
}

int httploop_set_media_allow(httploop_t *hl, const char *cidrs, char *errstr,
                             size_t errstr_size)
{
        free(hl->allow);
        hl->allow = NULL;
        hl->n_allow = 0;
        while (cidrs && *cidrs) {
                size_t n = strcspn(cidrs, ", ");

                if (n) {
                        hl->allow = xrealloc(hl->allow, (hl->n_allow + 1) *
                                                                sizeof(*hl->allow));
                        if (parse_cidr(cidrs, n, &hl->allow[hl->n_allow])) {
                                snprintf(errstr, errstr_size,
                                         "worker.media_allow_private: \"%.*s\" "
                                         "is not an address or CIDR",
                                         (int)n, cidrs);
                                return -1;
                        }
                        hl->n_allow++;
                }
                cidrs += n + (cidrs[n] != '\0');
        }
        return 0;
}

static void call_setopts(httploop_t *hl, struct call *c,
                         const struct provider_req *req, long timeout_ms)
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
        if (req->media == 1) {
                /* Result media: CDNs redirect; every connection, the
                 * redirected ones included, passes the address check. */
                curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
                curl_easy_setopt(e, CURLOPT_MAXREDIRS, 3L);
                curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        }
        if (req->media) {
                curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_checked);
                curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, hl);
                /* A pooled connection (to a provider's host, say) would
                 * skip the check: media always opens its own. */
                curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
                curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
        }
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
                c->req_len = req->body_len;
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
        c->sink_fd = req->sink_fd;
        c->sink_err = 0;
        if (c->sink_fd > 0) {
                if (!c->sha)
                        c->sha = EVP_MD_CTX_new();
                if (!c->sha || !EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL))
                        fatal("SHA-256 unavailable");
        }
        call_setopts(hl, c, req, timeout_ms);
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

/* Was the whole request written?  A transport error after that leaves
 * the provider's side unknown: it may be acting on it. */
static int request_sent(CURL *easy, const struct call *c)
{
        curl_off_t up = 0;
        long hdr = 0;

        curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &hdr);
        curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &up);
        if (hdr <= 0)
                return 0;
        return c->mime || !c->req_body || up >= (curl_off_t)c->req_len;
}

static void hex_digest(struct call *c, char out[65])
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;

        EVP_DigestFinal_ex(c->sha, md, &n);
        for (unsigned int i = 0; i < n && i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void finish(httploop_t *hl, CURL *easy, CURLcode res)
{
        struct call *c = NULL;
        struct provider_resp r = {0};
        char *ctype = NULL;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ctype);
        r.sent = request_sent(easy, c);
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
        if (c->sink_fd > 0)
                hex_digest(c, r.sha256);
        if (c->sink_err) {
                r.transport_err = CURLE_WRITE_ERROR;
                r.status = 0;
                r.transport_msg = strerror(c->sink_err);
        }
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
