/*
 * `genq retention --keep-months N [--dry-run]`: drop the credit ledger's
 * monthly partitions older than the current month and the N months before
 * it (UTC), through genq_drop_ledger_before() (schema 0003), which
 * detaches and drops them and never touches the default partition.
 * --dry-run lists them, with their ranges and entry counts, instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "subcmd.h"

#define KEEP_MAX 1200

static const char retention_usage[] =
        "usage: genq retention --keep-months N [--dry-run] [-c FILE] "
        "[-X key=value]\n"
        "\n"
        "Drops the credit ledger's monthly partitions that end before the\n"
        "current month and the N months before it (UTC; N 1..1200).  The\n"
        "entries in them are gone for good: export them first if needed.\n"
        "  --dry-run   list the partitions that would be dropped\n";

/* No sub-subcommands: only the prefix, the connection and the usage. */
static const struct subcmd_spec retention_spec = {
        .prefix = "genq retention",
        .app_name = "genq-retention",
        .usage = retention_usage,
};

struct retention_args {
        long keep;     /**< --keep-months, -1 if not given */
        int dry_run;   /**< --dry-run */
};

static int parse_keep(const char *s, long *out)
{
        char *end;

        errno = 0;
        *out = strtol(s, &end, 10);
        return errno || end == s || *end || *out < 1 || *out > KEEP_MAX
                       ? -1
                       : 0;
}

/* Options in any order, -h anywhere.
 * @returns 0, -1 for -h, or 2 on a usage error (printed). */
static int parse_args(int argc, char **argv, struct retention_args *a)
{
        a->keep = -1;
        for (int i = 1; i < argc; i++) {
                if (subcmd_is_help(argv[i]))
                        return -1;
                if (!strcmp(argv[i], "--dry-run")) {
                        a->dry_run = 1;
                        continue;
                }
                if (strcmp(argv[i], "--keep-months") || i + 1 >= argc ||
                    parse_keep(argv[++i], &a->keep)) {
                        fprintf(stderr, "genq retention: bad or unknown "
                                        "argument \"%s\"\n\n", argv[i]);
                        fputs(retention_usage, stderr);
                        return 2;
                }
        }
        if (a->keep < 0)
                return subcmd_usage_error(&retention_spec, NULL, "");
        return 0;
}

/* \p sql, a SELECT, with one text parameter.
 * @returns rows or NULL (printed). */
static PGresult *run(PGconn *conn, const char *sql, const char *param)
{
        const char *params[1] = {param};

        return subcmd_exec(&retention_spec, conn, sql, 1, params);
}

static int list_partitions(PGconn *conn, const char *cutoff)
{
        PGresult *r = run(conn,
                          "SELECT partition::text AS partition, range_from, "
                          "range_to, entries "
                          "FROM genq_ledger_partitions_before($1::date)",
                          cutoff);

        if (!r)
                return 1;
        report_print(r, 0);
        printf("%d partition%s before %s would be dropped\n", PQntuples(r),
               PQntuples(r) == 1 ? "" : "s", cutoff);
        PQclear(r);
        return 0;
}

static int drop_partitions(PGconn *conn, const char *cutoff)
{
        PGresult *r = run(conn, "SELECT genq_drop_ledger_before($1::date)",
                          cutoff);
        int n;

        if (!r)
                return 1;
        n = PQntuples(r);
        for (int i = 0; i < n; i++)
                printf("dropped %s\n", PQgetvalue(r, i, 0));
        printf("%d partition%s before %s dropped\n", n, n == 1 ? "" : "s",
               cutoff);
        PQclear(r);
        return 0;
}

/* The first day kept, the 1st of the month \p keep months before this
 * one (UTC), into \p out as YYYY-MM-DD.  @returns 0 or -1 (printed). */
static int cutoff_date(PGconn *conn, long keep, char *out, size_t size)
{
        char k[24];
        PGresult *r;

        snprintf(k, sizeof(k), "%ld", keep);
        r = run(conn,
                "SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') "
                "- make_interval(months => $1::int))::date",
                k);
        if (!r)
                return -1;
        snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        return 0;
}

static int run_retention(PGconn *conn, const void *args)
{
        const struct retention_args *a = args;
        char cutoff[32];

        if (cutoff_date(conn, a->keep, cutoff, sizeof(cutoff)))
                return 1;
        return a->dry_run ? list_partitions(conn, cutoff)
                          : drop_partitions(conn, cutoff);
}

int cmd_retention(int argc, char **argv)
{
        struct retention_args a = {0};
        int rc;
        conf_t *c = subcmd_conf_load(&retention_spec, &argc, argv);

        if (!c)
                return 2;
        rc = parse_args(argc, argv, &a);
        if (rc < 0)
                fputs(retention_usage, stdout);
        else if (rc == 0)
                rc = subcmd_run(&retention_spec, c, run_retention, &a);
        conf_destroy(c);
        return rc < 0 ? 0 : rc;
}
