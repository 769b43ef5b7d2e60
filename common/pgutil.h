/**
 * @file pgutil.h
 * @brief Small libpq helpers shared by the CLI and the worker.
 */
#ifndef GENQ_PGUTIL_H
#define GENQ_PGUTIL_H

#include <libpq-fe.h>
#include <stddef.h>

/**
 * @brief Connect to \p dsn (libpq conninfo or URI) with a short connect
 *        timeout and application_name \p app.
 * @returns the connection (caller owns; PQfinish) or NULL with errstr.
 *          The DSN is never echoed into errstr (it may hold a password).
 */
PGconn *pgutil_connect(const char *dsn, const char *app, char *errstr,
                       size_t errstr_size);

/** @brief Run a statement without parameters; any result but OK/TUPLES is
 *         an error.  errstr may be NULL.  @returns 0 or -1. */
int pgutil_exec(PGconn *conn, const char *sql, char *errstr,
                size_t errstr_size);

/** @brief Trim libpq's trailing newline from a message, in place. */
char *pgutil_chomp(char *msg);

#endif
