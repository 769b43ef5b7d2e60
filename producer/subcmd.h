/**
 * @file subcmd.h
 * @brief The plumbing shared by the `genq` commands that work on
 *        PostgreSQL (`genq tenant`, `genq provider`, `genq retention`):
 *        the configuration, a table of sub-subcommands with their options,
 *        the usage text after a mistake, one connection per run, and the
 *        command's prefix ("genq tenant: ") on every message.
 *
 * A command describes itself once, in a static const struct subcmd_spec,
 * and keeps only what is its own: the table, the flags, the checks, the
 * SQL and the output.  Exit codes are those of cmds.h: 0 ok, 1 failure,
 * 2 usage error.
 */
#ifndef GENQ_SUBCMD_H
#define GENQ_SUBCMD_H

#include <libpq-fe.h>
#include <stddef.h>

#include "conf.h"

#define SUBCMD_POS_MAX 2 /**< positional words a sub-subcommand may take */

/**
 * The words after the sub-subcommand that are not options.  A command's
 * args struct starts with one (checked with _Static_assert there), so the
 * parser fills it in without knowing the rest of the struct.
 */
struct subcmd_words {
        const char *pos[SUBCMD_POS_MAX]; /**< in the order given */
        int npos;                        /**< how many were given */
};

/** An option such as --key: where it goes in the command's args struct. */
struct subcmd_flag {
        const char *name;  /**< "--key" */
        int bit;           /**< the command's own bit for it */
        int takes_value;   /**< else a switch: an int set to 1 */
        size_t offset;     /**< of its slot: const char * (or int) */
};

/** A row of a command's table of sub-subcommands. */
struct subcmd {
        const char *name;        /**< argv[1], e.g. "add" */
        int npos_min, npos_max;  /**< positional words it takes */
        int flags;               /**< bits of the flags it accepts */
        /** The work, on a connection it does not own.  \p args is the
         *  command's args struct.  @returns 0 or 1 (error printed). */
        int (*fn)(PGconn *conn, const void *args);
};

/**
 * One `genq` command that works on the database.  A command without
 * sub-subcommands (retention) fills in only the first three fields and
 * does not call subcmd_main(); the rest is for subcmd_main(), which
 * needs all but negative_words and bound.
 */
struct subcmd_spec {
        const char *prefix;    /**< "genq tenant": starts every message */
        const char *app_name;  /**< "genq-tenant": its application_name */
        const char *usage;     /**< -h prints it; so does every mistake */
        const struct subcmd *cmds;        /**< the sub-subcommands */
        size_t ncmds;
        const struct subcmd_flag *flags;  /**< every option of any of them */
        size_t nflags;
        const char *missing;   /**< "missing NAME for ": too few words */
        int negative_words;    /**< "-5" is a word (a number), no option */
        /** The values' syntax, before anything connects; may store what
         *  it parsed into \p args.  @returns 0 or 2 (usage printed). */
        int (*check)(const struct subcmd *cmd, void *args);
        /** NULL, or called once the configuration is bound and before
         *  connecting: for warnings about the configuration. */
        void (*bound)(conf_t *c, const void *args);
};

/**
 * @brief A whole command with sub-subcommands: -c/-X, -h or --help as
 *        the first word, the sub-subcommand from \p s->cmds, its words
 *        and flags, \p s->check, then subcmd_run() with its fn.
 * @param args the command's args struct, zeroed, which starts with a
 *        struct subcmd_words.
 * @returns the exit code.
 */
int subcmd_main(const struct subcmd_spec *s, int argc, char **argv,
                void *args);

/**
 * @brief Load the configuration (gconf_load_args); on failure print
 *        "<prefix>: <why>".  @returns the conf (caller conf_destroy) or
 *        NULL, for which the exit code is 2.
 */
conf_t *subcmd_conf_load(const struct subcmd_spec *s, int *argcp,
                         char **argv);

/** @returns whether \p arg asks for help: -h or --help. */
int subcmd_is_help(const char *arg);

/**
 * @brief Print "<prefix>: <msg><what>" and a blank line (unless \p msg is
 *        NULL), then the usage, to stderr.  @returns 2, the exit code.
 */
int subcmd_usage_error(const struct subcmd_spec *s, const char *msg,
                       const char *what);

/**
 * @brief Bind the configuration \p c, call \p s->bound, connect, run
 *        \p fn on the connection and close it.
 * @returns fn's result, or 1 (printed) if there was no connection.
 */
int subcmd_run(const struct subcmd_spec *s, conf_t *c,
               int (*fn)(PGconn *conn, const void *args), const void *args);

/**
 * @brief Run \p sql with \p n text parameters; a result other than rows
 *        or OK prints "<prefix>: <server's error>".
 * @returns the result (caller PQclear) or NULL.
 */
PGresult *subcmd_exec(const struct subcmd_spec *s, PGconn *conn,
                      const char *sql, int n, const char *const *params);

/**
 * @brief Run \p sql (no parameters) and print its rows as report_print
 *        does, in \p format: "table" (also for NULL), "csv" or "json".
 * @returns 0 or 1 (printed).
 */
int subcmd_print_rows(const struct subcmd_spec *s, PGconn *conn,
                      const char *sql, const char *format);

/**
 * @brief Check a --format value before anything connects.
 * @returns 0 (NULL or a known format) or 2 (usage printed).
 */
int subcmd_check_format(const struct subcmd_spec *s, const char *format);

#endif
