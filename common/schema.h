/**
 * @file schema.h
 * @brief Schema migrations, embedded in every binary from schema/NNNN_name.sql.
 */
#ifndef GENQ_SCHEMA_H
#define GENQ_SCHEMA_H

#include <libpq-fe.h>
#include <stddef.h>

struct schema_file {
        int version;        /**< NNNN from the file name */
        const char *name;   /**< file name */
        const char *sql;    /**< the whole file */
};

extern const struct schema_file schema_files[];
extern const size_t schema_n_files;

/**
 * @brief Apply every migration not yet recorded in schema_migrations, in
 *        version order, each in its own transaction, under an advisory
 *        lock so concurrent callers (two workers starting at once) apply
 *        each exactly once: the second waits, then finds nothing to do.
 * @param applied out: how many were applied now.
 * @returns 0 or -1 with errstr naming the file and Postgres's message.
 */
int schema_migrate(PGconn *conn, int *applied, char *errstr,
                   size_t errstr_size);

/** @brief Highest applied version, 0 if none, -1 on error. */
int schema_version(PGconn *conn, char *errstr, size_t errstr_size);

#endif
