/* Schema migrations; see schema.h. */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "pgutil.h"

/* Any constant shared by every genq process; the value is arbitrary. */
#define MIGRATE_LOCK_KEY 7411201

static const char *create_table_sql =
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version int PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())";

static int applied_already(PGconn *conn, int version, int *yes,
                           char *errstr, size_t errstr_size)
{
        char v[16];
        const char *params[1] = {v};
        PGresult *r;

        snprintf(v, sizeof(v), "%d", version);
        r = PQexecParams(conn,
                         "SELECT 1 FROM schema_migrations WHERE version = $1",
                         1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                snprintf(errstr, errstr_size, "schema_migrations: %s",
                         PQerrorMessage(conn));
                PQclear(r);
                return -1;
        }
        *yes = PQntuples(r) > 0;
        PQclear(r);
        return 0;
}

static int apply_one(PGconn *conn, const struct schema_file *f, char *errstr,
                     size_t errstr_size)
{
        char v[16];
        const char *params[2] = {v, f->name};
        PGresult *r;

        if (pgutil_exec(conn, "BEGIN", errstr, errstr_size))
                return -1;
        r = PQexec(conn, f->sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK &&
            PQresultStatus(r) != PGRES_TUPLES_OK) {
                snprintf(errstr, errstr_size, "schema/%s: %s", f->name,
                         PQresultErrorMessage(r));
                PQclear(r);
                pgutil_exec(conn, "ROLLBACK", NULL, 0);
                return -1;
        }
        PQclear(r);
        snprintf(v, sizeof(v), "%d", f->version);
        r = PQexecParams(conn,
                         "INSERT INTO schema_migrations (version, name) "
                         "VALUES ($1, $2)",
                         2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                snprintf(errstr, errstr_size, "schema/%s: recording: %s",
                         f->name, PQresultErrorMessage(r));
                PQclear(r);
                pgutil_exec(conn, "ROLLBACK", NULL, 0);
                return -1;
        }
        PQclear(r);
        return pgutil_exec(conn, "COMMIT", errstr, errstr_size);
}

static int migrate_locked(PGconn *conn, int *applied, char *errstr,
                          size_t errstr_size)
{
        if (pgutil_exec(conn, create_table_sql, errstr, errstr_size))
                return -1;
        for (size_t i = 0; i < schema_n_files; i++) {
                const struct schema_file *f = &schema_files[i];
                int yes;

                if (applied_already(conn, f->version, &yes, errstr,
                                    errstr_size))
                        return -1;
                if (yes)
                        continue;
                if (apply_one(conn, f, errstr, errstr_size))
                        return -1;
                log_info("pg", "applied migration %s", f->name);
                (*applied)++;
        }
        return 0;
}

int schema_migrate(PGconn *conn, int *applied, char *errstr,
                   size_t errstr_size)
{
        char lock[80];
        int rc;

        *applied = 0;
        snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%d)",
                 MIGRATE_LOCK_KEY);
        if (pgutil_exec(conn, lock, errstr, errstr_size))
                return -1;
        rc = migrate_locked(conn, applied, errstr, errstr_size);
        snprintf(lock, sizeof(lock), "SELECT pg_advisory_unlock(%d)",
                 MIGRATE_LOCK_KEY);
        pgutil_exec(conn, lock, NULL, 0);
        /* Keep next months' ledger partitions made ahead of time. */
        if (rc == 0)
                pgutil_exec(conn, "SELECT genq_ensure_partitions(now(), 3)",
                            NULL, 0);
        return rc;
}

int schema_version(PGconn *conn, char *errstr, size_t errstr_size)
{
        PGresult *r = PQexec(conn, "SELECT coalesce(max(version), 0) "
                                   "FROM schema_migrations");
        int v;

        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                snprintf(errstr, errstr_size, "%s", PQresultErrorMessage(r));
                PQclear(r);
                return -1;
        }
        v = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        return v;
}
