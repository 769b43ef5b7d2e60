/*
 * cbrecv: provider callbacks in, rows of task_callbacks out.  See cbrecv.h.
 *
 * One libmicrohttpd polling thread serves every request, so the one
 * Postgres connection it owns needs no lock; a callback is small and rare
 * next to polls, so one synchronous INSERT per callback is plenty.
 */
#include "cbrecv.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pgutil.h"
#include "xmem.h"

struct cbrecv_s {
        struct MHD_Daemon *mhd;
        char *dsn;
        char *secret;
        PGconn *conn;           /**< owned by the MHD thread once started */
        unsigned port;
};

/* One request's body, gathered across the access handler's calls. */
struct upload {
        char *buf;
        size_t len;
        int too_big;
};

static const char INSERT_SQL[] =
        "INSERT INTO task_callbacks (job_id, provider, body) "
        "SELECT $1, $2, $3::bytea WHERE EXISTS "
        "(SELECT 1 FROM jobs WHERE job_id = $1)";

void cbrecv_token(const char *secret, const char *provider,
                  const char *job_id, char out[CBRECV_TOKEN_LEN + 1])
{
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        char msg[512];
        int n = snprintf(msg, sizeof(msg), "%s|%s", provider, job_id);

        HMAC(EVP_sha256(), secret, (int)strlen(secret),
             (const unsigned char *)msg,
             (size_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1), mac,
             &mac_len);
        for (int i = 0; i < CBRECV_TOKEN_LEN / 2; i++)
                snprintf(out + 2 * i, 3, "%02x", mac[i]);
        out[CBRECV_TOKEN_LEN] = '\0';
}

int cbrecv_url(char *buf, size_t size, const char *public_url,
               const char *secret, const char *provider, const char *job_id)
{
        char tok[CBRECV_TOKEN_LEN + 1];
        size_t plen = strlen(public_url);
        int n;

        while (plen > 0 && public_url[plen - 1] == '/')
                plen--;
        cbrecv_token(secret, provider, job_id, tok);
        n = snprintf(buf, size, "%.*s/cb/%s/%s/%s", (int)plen, public_url,
                     provider, job_id, tok);
        return n < 0 || (size_t)n >= size ? -1 : 0;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status,
                              const char *json)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(
                strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result rc;

        MHD_add_response_header(r, "Content-Type", "application/json");
        rc = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return rc;
}

/* Split "/cb/<provider>/<job>/<token>" into its three parts (in \p tmp).
 * @returns 0, or -1 if the path is not a callback path. */
static int split_path(const char *url, char *tmp, size_t tmp_size,
                      char **prov, char **job, char **tok)
{
        char *save = NULL;

        if (strncmp(url, "/cb/", 4) || strlen(url) >= tmp_size)
                return -1;
        snprintf(tmp, tmp_size, "%s", url + 4);
        *prov = strtok_r(tmp, "/", &save);
        *job = strtok_r(NULL, "/", &save);
        *tok = strtok_r(NULL, "/", &save);
        return *prov && *job && *tok && !strtok_r(NULL, "/", &save) ? 0 : -1;
}

static int db_ready(cbrecv_t *cr)
{
        if (cr->conn && PQstatus(cr->conn) == CONNECTION_OK)
                return 0;
        PQfinish(cr->conn);
        cr->conn = PQconnectdb(cr->dsn);
        if (PQstatus(cr->conn) == CONNECTION_OK)
                return 0;
        log_warn("callbacks", "database: %s",
                 pgutil_chomp(PQerrorMessage(cr->conn)));
        return -1;
}

/* @returns 1 stored, 0 no such job, -1 database failure. */
static int store(cbrecv_t *cr, const char *prov, const char *job,
                 const struct upload *up)
{
        const char *vals[3] = {job, prov, up->buf ? up->buf : ""};
        int lens[3] = {0, 0, (int)up->len};
        int fmts[3] = {0, 0, 1};
        PGresult *r;
        int rc;

        if (db_ready(cr))
                return -1;
        r = PQexecParams(cr->conn, INSERT_SQL, 3, NULL, vals, lens, fmts, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                log_warn("callbacks", "storing a callback for job %s: %s",
                         job, pgutil_chomp(PQresultErrorMessage(r)));
                rc = -1;
        } else {
                rc = atoi(PQcmdTuples(r)) > 0;
        }
        PQclear(r);
        return rc;
}

static enum MHD_Result on_post(cbrecv_t *cr, struct MHD_Connection *c,
                               const char *url, const struct upload *up)
{
        char tmp[1024], want[CBRECV_TOKEN_LEN + 1];
        char *prov, *job, *tok;
        int rc;

        if (split_path(url, tmp, sizeof(tmp), &prov, &job, &tok))
                return answer(c, MHD_HTTP_NOT_FOUND,
                              "{\"error\":\"not a callback path\"}");
        cbrecv_token(cr->secret, prov, job, want);
        if (strlen(tok) != CBRECV_TOKEN_LEN ||
            CRYPTO_memcmp(tok, want, CBRECV_TOKEN_LEN)) {
                log_warn("callbacks", "refused a callback for job %.128s at "
                                      "%.64s: bad token",
                         job, prov);
                return answer(c, MHD_HTTP_UNAUTHORIZED,
                              "{\"error\":\"bad token\"}");
        }
        if (up->too_big)
                return answer(c, 413,
                              "{\"error\":\"body too large\"}");
        rc = store(cr, prov, job, up);
        if (rc < 0)
                return answer(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "{\"error\":\"try again\"}");
        if (rc == 0)
                return answer(c, MHD_HTTP_NOT_FOUND,
                              "{\"error\":\"no such job\"}");
        log_dbg(LOG_DBG_JOB, "callbacks", "job %s: callback from %s stored",
                job, prov);
        return answer(c, MHD_HTTP_OK, "{\"ok\":true}");
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c,
                                 const char *url, const char *method,
                                 const char *version, const char *data,
                                 size_t *data_size, void **con_cls)
{
        cbrecv_t *cr = cls;
        struct upload *up = *con_cls;

        if (!up) {
                *con_cls = xcalloc(1, sizeof(*up));
                return MHD_YES;
        }
        if (*data_size) {
                if (up->len + *data_size > CBRECV_MAX_BODY) {
                        up->too_big = 1;
                } else {
                        up->buf = xrealloc(up->buf, up->len + *data_size + 1);
                        memcpy(up->buf + up->len, data, *data_size);
                        up->len += *data_size;
                        up->buf[up->len] = '\0';
                }
                *data_size = 0;
                return MHD_YES;
        }
        if (!strcmp(method, "GET") && !strcmp(url, "/healthz"))
                return answer(c, MHD_HTTP_OK, "{\"ok\":true}");
        if (strcmp(method, "POST"))
                return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                              "{\"error\":\"POST only\"}");
        return on_post(cr, c, url, up);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct upload *up = *con_cls;

        if (up) {
                free(up->buf);
                free(up);
        }
        *con_cls = NULL;
}

static int parse_listen(const char *listen, struct sockaddr_in *sa,
                        char *errstr, size_t errstr_size)
{
        const char *colon = strrchr(listen, ':');
        struct addrinfo hints = {.ai_family = AF_INET}, *ai = NULL;
        char host[256];
        char *end;
        long port;

        if (!colon || colon == listen ||
            (size_t)(colon - listen) >= sizeof(host))
                goto bad;
        port = strtol(colon + 1, &end, 10);
        if (*end || end == colon + 1 || port < 0 || port > 65535)
                goto bad;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
        if (getaddrinfo(host, NULL, &hints, &ai) || !ai)
                goto bad;
        memcpy(sa, ai->ai_addr, sizeof(*sa));
        sa->sin_port = htons((uint16_t)port);
        freeaddrinfo(ai);
        return 0;
bad:
        snprintf(errstr, errstr_size, "callbacks.listen: \"%s\" is not "
                                      "HOST:PORT",
                 listen);
        return -1;
}

cbrecv_t *cbrecv_new(const char *listen, const char *dsn, const char *secret,
                     char *errstr, size_t errstr_size)
{
        struct sockaddr_in sa = {0};
        const union MHD_DaemonInfo *info;
        cbrecv_t *cr;

        if (parse_listen(listen, &sa, errstr, errstr_size))
                return NULL;
        cr = xcalloc(1, sizeof(*cr));
        cr->dsn = xstrdup(dsn);
        cr->secret = xstrdup(secret);
        cr->mhd = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                on_access, cr, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, cr,
                MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
        if (!cr->mhd) {
                snprintf(errstr, errstr_size, "callbacks.listen: cannot "
                                              "listen on %s (in use?)",
                         listen);
                cbrecv_destroy(cr);
                return NULL;
        }
        info = MHD_get_daemon_info(cr->mhd, MHD_DAEMON_INFO_BIND_PORT);
        cr->port = info ? info->port : ntohs(sa.sin_port);
        log_info("callbacks", "receiving provider callbacks on %s (port %u)",
                 listen, cr->port);
        return cr;
}

void cbrecv_destroy(cbrecv_t *cr)
{
        if (!cr)
                return;
        if (cr->mhd)
                MHD_stop_daemon(cr->mhd);
        PQfinish(cr->conn);
        if (cr->secret) {
                OPENSSL_cleanse(cr->secret, strlen(cr->secret));
                free(cr->secret);
        }
        free(cr->dsn);
        free(cr);
}

unsigned cbrecv_port(const cbrecv_t *cr)
{
        return cr->port;
}
