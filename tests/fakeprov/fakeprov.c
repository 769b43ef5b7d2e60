/**
 * @file fakeprov.c
 * @brief fakeprov: a fake AI provider server speaking the providers' real
 *        wire APIs on loopback, with faults scripted over HTTP.
 *
 * DESIGN
 * libmicrohttpd runs a pool of epoll threads (--threads).  Each HTTP
 * request gets a struct rq when its headers arrive: the URL picks the
 * provider (/<provider>/...) and the family route, and fpprov_begin()
 * counts it, marks it in flight, checks the key and takes the next
 * scripted step.  When the body is complete the answer is produced at
 * once (handler, named fault or raw scripted reply, see fpstep.h) and
 * the request is recorded.  A delayed or hung answer never holds a pool
 * thread: the connection is suspended and parked in fptimer, whose thread
 * resumes it when due (or when the client hangs up, or at shutdown); the
 * access handler then runs again and queues the answer it kept.
 *
 * A request stops being "in flight" just before its answer is queued, not
 * when MHD reports completion, so that a client that starts its next call
 * the moment it reads an answer never sees two in flight (peak_inflight
 * must prove a concurrency cap of 1).
 *
 * Shutdown (SIGTERM/SIGINT, taken with sigwait in main): stop the timer,
 * which resumes every parked connection to be closed, wait until none is
 * left suspended (MHD forbids stopping with suspended connections), stop
 * MHD, free.  A second signal kills the process.
 */
#include "fakeprov.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fpcb.h"
#include "fpctl.h"
#include "fpprov.h"
#include "fpstep.h"
#include "fptimer.h"
#include "log.h"
#include "xmem.h"

#define MAX_PROVIDERS 64
#define MAX_THREADS 64
#define CONN_LIMIT 20000u
#define STOP_WAIT_MS 5000
#define CTL_PREFIX "/_fake/"
#define FAC "fakeprov"

/* ---- family registry --------------------------------------------------- */

static const struct fp_family *const families[] = {
        &fam_openai,     &fam_chatvendors, &fam_anthropic, &fam_gemini,
        &fam_cohere,     &fam_images,      &fam_stability, &fam_replicate,
        &fam_hf,         &fam_kie,         &fam_sf_video,  &fam_zhipu_video,
        &fam_audio,      &fam_assemblyai,  &fam_gladia,    &fam_elevenlabs,
};

const struct fp_family *fakeprov_family_find(const char *name)
{
        size_t i;

        for (i = 0; i < sizeof(families) / sizeof(families[0]); i++)
                if (!strcmp(families[i]->name, name))
                        return families[i];
        return NULL;
}

const struct fp_errdef *fakeprov_errdef_find(const struct fp_family *fam,
                                             const char *name)
{
        const struct fp_errdef *e;

        for (e = fam->errors; e && e->name; e++)
                if (!strcmp(e->name, name))
                        return e;
        return NULL;
}

static const struct fp_route *route_find(const struct fp_family *fam,
                                         const char *method,
                                         const char *path)
{
        const struct fp_route *r;

        for (r = fam->routes; r && r->method; r++)
                if (!strcmp(r->method, method) &&
                    !fnmatch(r->path, path, FNM_PATHNAME))
                        return r;
        return NULL;
}

const char *fakeprov_header(const struct fp_call *call, const char *name)
{
        return MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND,
                                           name);
}

const char *fakeprov_query(const struct fp_call *call, const char *name)
{
        return MHD_lookup_connection_value(call->conn,
                                           MHD_GET_ARGUMENT_KIND, name);
}

int64_t fakeprov_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- server and request state ----------------------------------------- */

struct server {
        struct MHD_Daemon *mhd;
        fptimer_t *timer;
        fpprov_t *provs[MAX_PROVIDERS];  /**< owned */
        size_t nprovs;
        struct fpctl_env ctl;            /**< borrows provs */
        atomic_long suspended;           /**< connections parked now */
        atomic_int stopping;
};

enum rq_state {
        RQ_RECEIVING,  /**< headers and body arriving */
        RQ_PARKED,     /**< suspended, entry in the timer */
        RQ_ANSWERED,   /**< answer queued or connection dropped */
};

/* One HTTP request, from its headers to MHD's completion callback. */
struct rq {
        struct server *srv;
        struct MHD_Connection *conn;
        enum rq_state state;
        char method[16];
        char *url;                       /**< owned copy, no query */
        const char *path;                /**< into url, below /<provider> */
        fpprov_t *prov;                  /**< NULL: control or unknown */
        const struct fp_route *route;    /**< NULL: no route matched */
        struct fpprov_ticket ticket;     /**< owns ticket.step */
        int in_flight;                   /**< fpprov_end() still due */
        char *body;                      /**< owned, NUL-terminated */
        size_t body_len, body_cap;
        int too_big;                     /**< body over FP_MAX_BODY */
        struct fp_resp resp;             /**< the answer, once produced */
        atomic_int abort;                /**< close instead of answering */
        struct fptimer_ent tent;         /**< while parked */
};

static void rq_call(const struct rq *rq, struct fp_call *call)
{
        memset(call, 0, sizeof(*call));
        call->prov = rq->prov;
        call->method = rq->method;
        call->path = rq->path;
        call->body = rq->body ? rq->body : "";
        call->body_len = rq->body_len;
        call->seq = rq->ticket.seq;
        call->conn = rq->conn;
}

/* Resolve /<provider>/<path> and open the provider-side accounting. */
static void rq_route(struct rq *rq)
{
        const char *name = rq->url + 1;
        size_t len = strcspn(name, "/");
        const struct fp_family *fam;
        struct fp_call call;

        rq->path = name + len;
        rq->prov = fpprov_find(rq->srv->provs, rq->srv->nprovs, name, len);
        if (!rq->prov) {
                rq->path = rq->url;
                return;
        }
        fam = fpprov_family(rq->prov);
        rq->route = route_find(fam, rq->method, rq->path);
        rq_call(rq, &call);
        fpprov_begin(rq->prov, fam->get_key(&call), rq->route != NULL,
                     &rq->ticket);
        rq->in_flight = 1;
}

static struct rq *rq_new(struct server *srv, struct MHD_Connection *conn,
                         const char *url, const char *method)
{
        struct rq *rq = xcalloc(1, sizeof(*rq));

        rq->srv = srv;
        rq->conn = conn;
        rq->state = RQ_RECEIVING;
        snprintf(rq->method, sizeof(rq->method), "%s", method);
        rq->url = xstrdup(url);
        rq->path = rq->url;
        fpresp_init(&rq->resp);
        atomic_init(&rq->abort, 0);
        rq->tent.fd = -1;
        if (strncmp(url, CTL_PREFIX, strlen(CTL_PREFIX)))
                rq_route(rq);
        return rq;
}

/* Leave the provider's in-flight count once, with the status answered. */
static void rq_end(struct rq *rq, unsigned status)
{
        if (!rq->in_flight)
                return;
        rq->in_flight = 0;
        fpprov_end(rq->prov, status);
}

static void rq_destroy(struct rq *rq)
{
        /* Resumed, but MHD found the client gone and never called us. */
        if (rq->state == RQ_PARKED)
                atomic_fetch_sub(&rq->srv->suspended, 1);
        rq_end(rq, 0);
        fpstep_unref(rq->ticket.step);
        fpresp_clear(&rq->resp);
        free(rq->body);
        free(rq->url);
        free(rq);
}

static void rq_append(struct rq *rq, const char *data, size_t len)
{
        size_t need = rq->body_len + len + 1;

        if (rq->too_big || need > FP_MAX_BODY + 1) {
                rq->too_big = 1;
                return;
        }
        if (need > rq->body_cap) {
                rq->body_cap = need > 2 * rq->body_cap ? need
                                                       : 2 * rq->body_cap;
                if (rq->body_cap > FP_MAX_BODY + 1)
                        rq->body_cap = FP_MAX_BODY + 1;
                rq->body = xrealloc(rq->body, rq->body_cap);
        }
        memcpy(rq->body + rq->body_len, data, len);
        rq->body_len += len;
        rq->body[rq->body_len] = '\0';
}

/* ---- recording ---------------------------------------------------------- */

/* A JSON string of \p s; bytes that are not valid UTF-8 become '?'. */
static json_t *json_str_lossy(const char *s, size_t len)
{
        json_t *j = json_stringn(s, len);
        char *copy;
        size_t i;

        if (j)
                return j;
        copy = xmalloc(len + 1);
        for (i = 0; i < len; i++)
                copy[i] = (unsigned char)s[i] < 0x80 && s[i] ? s[i] : '?';
        j = json_stringn(copy, len);
        free(copy);
        return j;
}

/* Never a whole key: its first 12 bytes, or half of it if it is short. */
static json_t *key_id(const char *key)
{
        size_t len, n, i;
        char buf[32];

        if (!key)
                return json_null();
        len = strlen(key);
        n = len > 12 ? 12 : len / 2;
        for (i = 0; i < n; i++)
                buf[i] = key[i] > ' ' && key[i] < 0x7f ? key[i] : '?';
        memcpy(buf + n, "\xe2\x80\xa6", 4); /* U+2026 ellipsis */
        return json_string(buf);
}

static const char *const secret_headers[] = {
        "authorization", "proxy-authorization", "x-api-key",
        "x-goog-api-key", "api-key",            "xi-api-key",
        "x-gladia-key",
};

static enum MHD_Result record_header(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value)
{
        char name[128];
        size_t i;

        for (i = 0; key[i] && i < sizeof(name) - 1; i++)
                name[i] = (char)(key[i] >= 'A' && key[i] <= 'Z'
                                         ? key[i] - 'A' + 'a'
                                         : key[i]);
        name[i] = '\0';
        for (i = 0; i < sizeof(secret_headers) / sizeof(secret_headers[0]);
             i++)
                if (!strcmp(name, secret_headers[i]))
                        return MHD_YES;
        json_object_set_new(cls, name,
                            json_str_lossy(value ? value : "",
                                           value ? strlen(value) : 0));
        return MHD_YES;
}

static void rq_record(const struct rq *rq, const struct fp_call *call)
{
        json_t *hdrs = json_object();
        json_t *rec;
        char *text;

        MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, record_header,
                                  hdrs);
        rec = json_pack("{s:s, s:o, s:b, s:o, s:o, s:o, s:I}", "method",
                        rq->method, "path",
                        json_str_lossy(rq->url, strlen(rq->url)),
                        "authorization_ok", call->auth_ok, "key_id",
                        key_id(call->key), "headers", hdrs, "body",
                        call->json ? json_incref(call->json)
                                   : json_str_lossy(call->body,
                                                    call->body_len),
                        "at_ms", (json_int_t)fakeprov_now_ms());
        if (!rec)
                fatal("fakeprov: json_pack record");
        text = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        if (!text)
                fatal("fakeprov: json_dumps record");
        fpprov_record(rq->prov, text); /* owned by the ring now */
}

/* ---- producing the answer ---------------------------------------------- */

static void answer_malformed(struct fp_resp *resp)
{
        static const char body[] =
                "{\"id\": \"chatcmpl-malformed\", \"object\": chat.completion,"
                " \"choices\": [{\"index\": 0,, ]} <not json>";

        fpresp_set(resp, 200, body, sizeof(body) - 1);
}

/* Content type, truncation and extra headers of a step, on any answer. */
static void step_extras(const struct fp_step *st, struct fp_resp *resp)
{
        size_t i;

        if (st->content_type)
                fpresp_content_type(resp, st->content_type);
        if (st->truncate)
                fpresp_truncate(resp);
        for (i = 0; i < st->nhdrs; i++)
                fpresp_header(resp, st->hdrs[i].name, st->hdrs[i].value);
}

/* Fill rq->resp for a provider request; precedence as in fpstep.h. */
static void produce(struct rq *rq, const struct fp_call *call)
{
        const struct fp_step *st = rq->ticket.step;
        const struct fp_family *fam = fpprov_family(rq->prov);

        if (st && st->error)
                st->error->build(call, &rq->resp);
        else if (st && st->status)
                fpresp_set(&rq->resp, st->status, st->body ? st->body : "",
                           st->body_len);
        else if (st && st->malformed)
                answer_malformed(&rq->resp);
        else if (rq->route)
                rq->route->handle(call, &rq->resp);
        else
                fam->not_found(call, &rq->resp);
        if (st)
                step_extras(st, &rq->resp);
}

static enum MHD_Result queue_answer(struct rq *rq)
{
        struct fp_resp *r = &rq->resp;
        struct MHD_Response *mr;
        enum MHD_Result ret;
        size_t i;

        rq_end(rq, r->status);
        rq->state = RQ_ANSWERED;
        mr = MHD_create_response_from_buffer_with_free_callback(
                r->body_len, r->body, free);
        if (!mr)
                return MHD_NO;
        r->body = NULL; /* owned by mr now */
        r->body_len = r->body_cap = 0;
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type
                                                : "application/json");
        for (i = 0; i < r->nhdrs; i++)
                MHD_add_response_header(mr, r->hdrs[i].name,
                                        r->hdrs[i].value);
        ret = MHD_queue_response(rq->conn, r->status, mr);
        MHD_destroy_response(mr);
        return ret;
}

/* Suspend the connection until \p due_ms (monotonic) or FPTIMER_NEVER. */
static enum MHD_Result park(struct rq *rq, int64_t due_ms)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
                rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        /* Count first, then look at the flag: server_stop() sets the flag
         * and then reads the count, so one of us sees the other. */
        atomic_fetch_add(&rq->srv->suspended, 1);
        if (atomic_load(&rq->srv->stopping)) {
                atomic_fetch_sub(&rq->srv->suspended, 1);
                rq->state = RQ_ANSWERED;
                return MHD_NO;
        }
        rq->state = RQ_PARKED;
        rq->tent.due_ms = due_ms;
        rq->tent.fd = ci ? ci->connect_fd : -1;
        MHD_suspend_connection(rq->conn);
        fptimer_add(rq->srv->timer, &rq->tent);
        return MHD_YES;
}

static void on_timer(struct fptimer_ent *ent, enum fptimer_why why,
                     void *opaque)
{
        struct rq *rq = (struct rq *)((char *)ent - offsetof(struct rq, tent));

        if (why != FPTIMER_DUE)
                atomic_store(&rq->abort, 1);
        MHD_resume_connection(rq->conn);
}

static enum MHD_Result resumed(struct rq *rq)
{
        atomic_fetch_sub(&rq->srv->suspended, 1);
        rq->state = RQ_ANSWERED;
        if (atomic_load(&rq->abort))
                return MHD_NO;
        return queue_answer(rq);
}

static enum MHD_Result dispatch_provider(struct rq *rq, struct fp_call *call)
{
        const struct fp_step *st = rq->ticket.step;
        int64_t latency = rq->ticket.latency_ms;

        call->key = fpprov_family(rq->prov)->get_key(call);
        call->auth_ok = rq->ticket.auth_ok;
        rq_record(rq, call);
        if (st && st->hang)
                return park(rq, FPTIMER_NEVER);
        produce(rq, call);
        if (st && st->latency_ms >= 0)
                latency = st->latency_ms;
        if (latency > 0 && !atomic_load(&rq->srv->stopping))
                return park(rq, fptimer_now_ms() + latency);
        return queue_answer(rq);
}

static void answer_too_big(struct fp_resp *resp)
{
        fpresp_json(resp, 413,
                    json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message",
                              "Request body too large (limit 8 MiB).", "type",
                              "invalid_request_error", "param", "code"),
                    JSON_INDENT(2));
}

/* The whole request is in: answer it now or park it. */
static enum MHD_Result dispatch(struct rq *rq)
{
        struct fp_call call;
        enum MHD_Result ret;

        rq_call(rq, &call);
        if (rq->too_big) {
                answer_too_big(&rq->resp);
                return queue_answer(rq);
        }
        call.json = rq->body_len ? json_loadb(rq->body, rq->body_len,
                                               JSON_DECODE_ANY, NULL)
                                 : NULL;
        if (rq->prov) {
                ret = dispatch_provider(rq, &call);
        } else {
                if (!strncmp(rq->url, CTL_PREFIX, strlen(CTL_PREFIX))) {
                        call.path = rq->url + strlen(CTL_PREFIX);
                        fpctl_handle(&rq->srv->ctl, &call, &rq->resp);
                } else {
                        fam_openai.not_found(&call, &rq->resp);
                }
                ret = queue_answer(rq);
        }
        json_decref(call.json);
        return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
        struct rq *rq = *con_cls;

        if (!rq) {
                *con_cls = rq_new(cls, conn, url, method);
                return MHD_YES;
        }
        if (*upload_data_size) {
                rq_append(rq, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (rq->state == RQ_PARKED)
                return resumed(rq);
        if (rq->state == RQ_ANSWERED)
                return MHD_NO;
        return dispatch(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
        struct rq *rq = *con_cls;

        if (!rq)
                return;
        rq_destroy(rq);
        *con_cls = NULL;
}

/* ---- command line ------------------------------------------------------ */

struct opts {
        unsigned port;
        int port_set;
        struct sockaddr_in bind;
        char bind_str[INET_ADDRSTRLEN];
        unsigned threads;
};

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: fakeprov --port N [--bind 127.0.0.1] [--threads N]\n"
                "                [--provider NAME=FAMILY[:KEY1,KEY2...]]...\n"
                "\n"
                "  --port N       TCP port on loopback (0 = any free port)\n"
                "  --bind ADDR    loopback IPv4 address (127.0.0.0/8)\n"
                "  --threads N    server threads, 1..64 (default 2)\n"
                "  --provider     serve family FAMILY under /NAME; keys "
                "default to\n"
                "                 fake-key-NAME (repeatable; default: "
                "openai, groq,\n"
                "                 together, deepinfra, all family openai)\n"
                "families:");
        for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
                fprintf(fp, " %s", families[i]->name);
        fprintf(fp, "\ncontrol plane: see tests/fakeprov/README.md\n");
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
        char *end = NULL;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (!*s || *end || errno || v < lo || v > hi || *s == '-')
                return -1;
        *out = (unsigned)v;
        return 0;
}

static int parse_bind(struct opts *o, const char *s, char *errstr,
                      size_t errstr_size)
{
        if (!strcmp(s, "localhost"))
                s = "127.0.0.1";
        if (inet_pton(AF_INET, s, &o->bind.sin_addr) != 1 ||
            (ntohl(o->bind.sin_addr.s_addr) >> 24) != 127) {
                snprintf(errstr, errstr_size,
                         "--bind %s: not a loopback IPv4 address", s);
                return -1;
        }
        snprintf(o->bind_str, sizeof(o->bind_str), "%s", s);
        return 0;
}

static int valid_name(const char *s, size_t len)
{
        size_t i;

        if (!len || (len == 5 && !memcmp(s, "_fake", 5)))
                return 0;
        for (i = 0; i < len; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyz"
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                            s[i]) ||
                    !s[i])
                        return 0;
        return 1;
}

/* Split "K1,K2" into at most \p max keys; empty keys are skipped. */
static size_t split_keys(char *list, char **keys, size_t max)
{
        size_t n = 0;
        char *save = NULL, *k;

        for (k = strtok_r(list, ",", &save); k && n < max;
             k = strtok_r(NULL, ",", &save))
                keys[n++] = k;
        return n;
}

static int add_provider(struct server *srv, const char *name, size_t nlen,
                        const struct fp_family *fam, char **keys,
                        size_t nkeys, char *errstr, size_t errstr_size)
{
        char defkey[160], *dk = defkey, pname[128];

        if (!valid_name(name, nlen) || nlen >= sizeof(pname)) {
                snprintf(errstr, errstr_size, "bad provider name \"%.*s\"",
                         (int)nlen, name);
                return -1;
        }
        if (fpprov_find(srv->provs, srv->nprovs, name, nlen) ||
            srv->nprovs == MAX_PROVIDERS) {
                snprintf(errstr, errstr_size,
                         "provider \"%.*s\" repeated or too many providers",
                         (int)nlen, name);
                return -1;
        }
        memcpy(pname, name, nlen);
        pname[nlen] = '\0';
        if (!nkeys) {
                snprintf(defkey, sizeof(defkey), "fake-key-%s", pname);
                keys = &dk;
                nkeys = 1;
        }
        srv->provs[srv->nprovs++] = fpprov_new(pname, fam, keys, nkeys);
        return 0;
}

/* NAME=FAMILY[:KEY1,KEY2...] */
static int parse_provider(struct server *srv, const char *spec, char *errstr,
                          size_t errstr_size)
{
        char *copy = xstrdup(spec), *eq = strchr(copy, '='), *colon;
        char *keys[64];
        const struct fp_family *fam;
        size_t nkeys = 0;
        int ret = -1;

        if (!eq) {
                snprintf(errstr, errstr_size,
                         "--provider %s: want NAME=FAMILY[:KEYS]", spec);
                goto out_free_copy;
        }
        *eq = '\0';
        colon = strchr(eq + 1, ':');
        if (colon) {
                *colon = '\0';
                nkeys = split_keys(colon + 1, keys, 64);
        }
        fam = fakeprov_family_find(eq + 1);
        if (!fam) {
                snprintf(errstr, errstr_size, "--provider %s: no family %s",
                         spec, eq + 1);
                goto out_free_copy;
        }
        ret = add_provider(srv, copy, strlen(copy), fam, keys, nkeys, errstr,
                           errstr_size);
out_free_copy:
        free(copy);
        return ret;
}

/* Every family's default providers, each with key fake-key-<name>. */
static void default_providers(struct server *srv)
{
        char errstr[256];

        for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
                const char *const *n = families[f]->default_providers;

                for (; n && *n; n++)
                        if (add_provider(srv, *n, strlen(*n), families[f],
                                         NULL, 0, errstr,
                                         sizeof(errstr)) == -1)
                                fatal("%s", errstr);
        }
}

static int parse_opt(struct server *srv, struct opts *o, int c,
                     const char *arg, char *errstr, size_t errstr_size)
{
        switch (c) {
        case 'p':
                o->port_set = 1;
                if (parse_uint(arg, 0, 65535, &o->port) == 0)
                        return 0;
                snprintf(errstr, errstr_size, "--port %s: want 0..65535", arg);
                return -1;
        case 'b':
                return parse_bind(o, arg, errstr, errstr_size);
        case 't':
                if (parse_uint(arg, 1, MAX_THREADS, &o->threads) == 0)
                        return 0;
                snprintf(errstr, errstr_size, "--threads %s: want 1..64", arg);
                return -1;
        case 'P':
                return parse_provider(srv, arg, errstr, errstr_size);
        default:
                snprintf(errstr, errstr_size, "bad arguments");
                return -1;
        }
}

/* @returns 0, 1 for --help, or -1 with errstr. */
static int parse_args(struct server *srv, struct opts *o, int argc,
                      char **argv, char *errstr, size_t errstr_size)
{
        static const struct option longopts[] = {
                {"port", required_argument, NULL, 'p'},
                {"bind", required_argument, NULL, 'b'},
                {"threads", required_argument, NULL, 't'},
                {"provider", required_argument, NULL, 'P'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        int c;

        memset(o, 0, sizeof(*o));
        o->threads = 2;
        o->bind.sin_family = AF_INET;
        parse_bind(o, "127.0.0.1", errstr, errstr_size);
        opterr = 0;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
                if (c == 'h')
                        return 1;
                if (parse_opt(srv, o, c, optarg, errstr, errstr_size) == -1)
                        return -1;
        }
        if (optind < argc || !o->port_set) {
                snprintf(errstr, errstr_size, "%s",
                         optind < argc ? "unexpected argument"
                                       : "--port is required");
                return -1;
        }
        if (!srv->nprovs)
                default_providers(srv);
        return 0;
}

/* ---- start, run, stop --------------------------------------------------- */

static void raise_fd_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* MHD's own messages, minus the one every deliberately dropped (hung,
 * aborted) connection produces. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        size_t n;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (strstr(msg, "Application reported internal error"))
                return;
        n = strlen(msg);
        if (n && msg[n - 1] == '\n')
                msg[n - 1] = '\0';
        log_warn("mhd", "%s", msg);
}

static int server_start(struct server *srv, struct opts *o, char *errstr,
                        size_t errstr_size)
{
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO |
                         MHD_USE_ERROR_LOG;
        /* One thread = no pool; MHD warns if told a pool size of 1. */
        struct MHD_OptionItem pool[] = {
                {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)o->threads, NULL},
                {MHD_OPTION_END, 0, NULL},
        };

        srv->timer = fptimer_new(on_timer, srv, errstr, errstr_size);
        if (!srv->timer)
                return -1;
        if (fpcb_start(errstr, errstr_size) == -1)
                return -1;
        o->bind.sin_port = htons((uint16_t)o->port);
        srv->mhd = MHD_start_daemon(
                flags, (uint16_t)o->port, NULL, NULL, on_access, srv,
                MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&o->bind,
                MHD_OPTION_ARRAY, o->threads > 1 ? pool : pool + 1,
                MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT,
                MHD_OPTION_CONNECTION_TIMEOUT, 0u,
                MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
                MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                MHD_OPTION_END);
        if (!srv->mhd) {
                snprintf(errstr, errstr_size,
                         "cannot listen on %s:%u (in use?)", o->bind_str,
                         o->port);
                return -1;
        }
        return 0;
}

static unsigned server_port(const struct server *srv)
{
        const union MHD_DaemonInfo *di =
                MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);

        return di ? di->port : 0;
}

/* Resume every parked connection to close it, then stop MHD. */
static void server_stop(struct server *srv)
{
        int64_t deadline = fptimer_now_ms() + STOP_WAIT_MS;
        struct timespec ms = {0, 1000000};

        atomic_store(&srv->stopping, 1);
        if (srv->timer)
                fptimer_stop(srv->timer);
        while (atomic_load(&srv->suspended) > 0 &&
               fptimer_now_ms() < deadline)
                nanosleep(&ms, NULL);
        if (atomic_load(&srv->suspended) > 0)
                log_warn(FAC, "%ld connections still suspended at stop",
                         atomic_load(&srv->suspended));
        if (srv->mhd)
                MHD_stop_daemon(srv->mhd);
        fpcb_stop();
        fptimer_destroy(srv->timer);
}

static void server_free(struct server *srv)
{
        size_t i;

        for (i = 0; i < srv->nprovs; i++)
                fpprov_destroy(srv->provs[i]);
}

/* Block the stop signals in every thread; main takes them by sigwait. */
static void block_signals(sigset_t *set)
{
        sigemptyset(set);
        sigaddset(set, SIGINT);
        sigaddset(set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, set, NULL);
        signal(SIGPIPE, SIG_IGN);
}

static int wait_for_stop(sigset_t *set)
{
        int sig = 0;

        sigwait(set, &sig);
        /* A second signal now kills the process: the default action. */
        pthread_sigmask(SIG_UNBLOCK, set, NULL);
        return sig;
}

static void log_providers(const struct server *srv)
{
        size_t i;

        for (i = 0; i < srv->nprovs; i++)
                log_info(FAC, "provider %s family %s at /%s/",
                         fpprov_name(srv->provs[i]),
                         fpprov_family(srv->provs[i])->name,
                         fpprov_name(srv->provs[i]));
}

int main(int argc, char **argv)
{
        static struct server srv;
        char errstr[512];
        struct opts o;
        sigset_t set;
        int rc;

        genq_g.log_ident = "fakeprov";
        rc = parse_args(&srv, &o, argc, argv, errstr, sizeof(errstr));
        if (rc != 0) {
                if (rc == -1)
                        fprintf(stderr, "fakeprov: %s\n", errstr);
                usage(rc == 1 ? stdout : stderr);
                server_free(&srv);
                return rc == 1 ? 0 : 2;
        }
        srv.ctl.provs = srv.provs;
        srv.ctl.nprovs = srv.nprovs;
        raise_fd_limit();
        block_signals(&set);
        if (server_start(&srv, &o, errstr, sizeof(errstr)) == -1) {
                log_err(FAC, "%s", errstr);
                server_stop(&srv);
                server_free(&srv);
                return 1;
        }
        log_providers(&srv);
        printf("fakeprov listening on %s:%u\n", o.bind_str, server_port(&srv));
        fflush(stdout);
        log_info(FAC, "stopping on signal %d", wait_for_stop(&set));
        server_stop(&srv);
        server_free(&srv);
        return 0;
}
