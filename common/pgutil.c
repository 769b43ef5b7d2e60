/* Small libpq helpers; see pgutil.h. */
#include "pgutil.h"

#include <stdio.h>
#include <string.h>

static void notice_quiet(void *arg, const char *msg)
{
        (void)arg;
        (void)msg; /* "relation already exists, skipping" and friends */
}

PGconn *pgutil_connect(const char *dsn, const char *app, char *errstr,
                       size_t errstr_size)
{
        const char *keys[] = {"dbname", "application_name", "connect_timeout",
                              NULL};
        const char *vals[] = {dsn, app, "10", NULL};
        char msg[512];
        PGconn *conn;

        /* expand_dbname=1: dsn may be a full conninfo string or URI. */
        conn = PQconnectdbParams(keys, vals, 1);
        if (PQstatus(conn) == CONNECTION_OK) {
                PQsetNoticeProcessor(conn, notice_quiet, NULL);
                return conn;
        }
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        snprintf(errstr, errstr_size, "cannot connect to PostgreSQL: %s",
                 pgutil_chomp(msg));
        PQfinish(conn);
        return NULL;
}

int pgutil_exec(PGconn *conn, const char *sql, char *errstr,
                size_t errstr_size)
{
        PGresult *r = PQexec(conn, sql);
        ExecStatusType st = PQresultStatus(r);

        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                PQclear(r);
                return 0;
        }
        if (errstr) {
                snprintf(errstr, errstr_size, "%s", PQresultErrorMessage(r));
                pgutil_chomp(errstr);
        }
        PQclear(r);
        return -1;
}

char *pgutil_chomp(char *msg)
{
        size_t n = strlen(msg);

        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                msg[--n] = '\0';
        return msg;
}
