/**
 * @file cmds.h
 * @brief The `genq` command line's subcommands.  Each takes the arguments
 *        after its own name (argv[0] is the subcommand) and returns the
 *        process exit code: 0 ok, 1 failure, 2 usage error.
 *
 * Shared options every subcommand accepts: -c FILE (config; default
 * $GENQ_CONFIG), -X key=value (override), -h/--help.
 */
#ifndef GENQ_CMDS_H
#define GENQ_CMDS_H

int cmd_submit(int argc, char **argv);      /**< submit.c */
int cmd_produce_raw(int argc, char **argv); /**< submit.c */
int cmd_topics(int argc, char **argv);      /**< admin.c */
int cmd_migrate(int argc, char **argv);     /**< migrate.c */
int cmd_report(int argc, char **argv);      /**< report.c */
int cmd_tail(int argc, char **argv);        /**< tools.c */
int cmd_encode(int argc, char **argv);      /**< tools.c */
int cmd_cancel(int argc, char **argv);      /**< tools.c */
int cmd_tenant(int argc, char **argv);      /**< tenant.c */
int cmd_retention(int argc, char **argv);   /**< retention.c */

struct pg_result; /* libpq's PGresult */

/**
 * @brief Output format by name: "table" 0, "csv" 1, "json" 2.
 * @returns the format or -1 for an unknown name.  (report.c)
 */
int report_fmt_parse(const char *name);

/**
 * @brief Print a query result to stdout as a table, CSV or JSON (every
 *        value a string, so decimals stay exact; NULL as null).
 * @param fmt from report_fmt_parse().  (report.c)
 */
void report_print(const struct pg_result *r, int fmt);

#endif
