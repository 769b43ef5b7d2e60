/*
 * `genq report`: billing and job outcome reports from the SQL views
 * (billing_daily, job_outcomes), printed as a table, CSV or JSON.
 *
 * The grouping columns are chosen from a fixed list and never pasted from
 * user input into SQL; dates and filters go in as parameters.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "gconf.h"
#include "pgutil.h"
#include "xmem.h"

enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON };

struct report_opts {
        const char *from, *to;   /**< inclusive days, YYYY-MM-DD or NULL */
        const char *tenant;      /**< filter, or NULL */
        const char *kind;        /**< filter, or NULL */
        const char *provider;    /**< filter, or NULL */
        char by[128];            /**< validated column list */
        const char *what;        /**< "billing" or "jobs" */
        enum fmt fmt;
};

static const char *group_cols[] = {"tenant_id", "day", "kind", "provider",
                                   "model"};

static void usage(void)
{
        fprintf(stderr,
                "usage: genq report [billing|jobs] [--from YYYY-MM-DD] "
                "[--to YYYY-MM-DD]\n"
                "         [--tenant T] [--kind K] [--provider P]\n"
                "         [--by tenant,day,kind,provider,model] "
                "[--format table|csv|json]\n"
                "         [-c FILE] [-X key=value]\n");
}

/* "tenant,kind" -> "tenant_id, kind"; every word must be a known column. */
static int parse_by(const char *s, char *out, size_t outsz)
{
        char buf[128], *save = NULL, *w;
        size_t o = 0;

        snprintf(buf, sizeof(buf), "%s", s);
        out[0] = '\0';
        for (w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                const char *col = NULL;

                if (!strcmp(w, "tenant"))
                        w = "tenant_id";
                for (size_t i = 0; i < 5; i++)
                        if (!strcmp(w, group_cols[i]))
                                col = group_cols[i];
                if (!col)
                        return -1;
                o += (size_t)snprintf(out + o, outsz - o, "%s%s",
                                      o ? ", " : "", col);
                if (o >= outsz)
                        return -1;
        }
        return o ? 0 : -1;
}

static void print_table(PGresult *r)
{
        int nf = PQnfields(r), nt = PQntuples(r);
        int *w = xcalloc((size_t)nf, sizeof(int));

        for (int f = 0; f < nf; f++) {
                w[f] = (int)strlen(PQfname(r, f));
                for (int t = 0; t < nt; t++)
                        if (PQgetlength(r, t, f) > w[f])
                                w[f] = PQgetlength(r, t, f);
        }
        for (int f = 0; f < nf; f++)
                printf("%-*s%s", w[f], PQfname(r, f), f + 1 < nf ? "  " : "\n");
        for (int f = 0; f < nf; f++)
                printf("%.*s%s", w[f],
                       "----------------------------------------"
                       "----------------------------------------",
                       f + 1 < nf ? "  " : "\n");
        for (int t = 0; t < nt; t++)
                for (int f = 0; f < nf; f++)
                        printf(PQftype(r, f) == 1700 || PQftype(r, f) == 20
                                       ? "%*s%s"
                                       : "%-*s%s",
                               w[f], PQgetvalue(r, t, f),
                               f + 1 < nf ? "  " : "\n");
        printf("(%d row%s)\n", nt, nt == 1 ? "" : "s");
        free(w);
}

static void print_csv_field(const char *s)
{
        if (!strpbrk(s, ",\"\n")) {
                fputs(s, stdout);
                return;
        }
        putchar('"');
        for (; *s; s++) {
                if (*s == '"')
                        putchar('"');
                putchar(*s);
        }
        putchar('"');
}

static void print_csv(PGresult *r)
{
        int nf = PQnfields(r), nt = PQntuples(r);

        for (int f = 0; f < nf; f++) {
                print_csv_field(PQfname(r, f));
                putchar(f + 1 < nf ? ',' : '\n');
        }
        for (int t = 0; t < nt; t++)
                for (int f = 0; f < nf; f++) {
                        print_csv_field(PQgetvalue(r, t, f));
                        putchar(f + 1 < nf ? ',' : '\n');
                }
}

/* Numbers stay strings in JSON: credits are exact decimals and must not
 * pass through a double. */
static void print_json(PGresult *r)
{
        json_t *arr = json_array();
        char *s;

        for (int t = 0; t < PQntuples(r); t++) {
                json_t *o = json_object();

                for (int f = 0; f < PQnfields(r); f++)
                        json_object_set_new(o, PQfname(r, f),
                                            PQgetisnull(r, t, f)
                                                    ? json_null()
                                                    : json_string(PQgetvalue(
                                                              r, t, f)));
                json_array_append_new(arr, o);
        }
        s = json_dumps(arr, JSON_INDENT(2));
        puts(s);
        free(s);
        json_decref(arr);
}

static int run_query(PGconn *conn, const struct report_opts *o)
{
        const char *params[5] = {o->from, o->to, o->tenant, o->kind,
                                 o->provider};
        char sql[2048];
        PGresult *r;

        if (!strcmp(o->what, "jobs"))
                snprintf(sql, sizeof(sql),
                         "SELECT tenant_id, kind, state, count(*) AS jobs, "
                         "sum(attempts) AS attempts FROM jobs "
                         "WHERE ($1::date IS NULL OR accepted_at >= $1::date)"
                         " AND ($2::date IS NULL OR accepted_at < $2::date + 1)"
                         " AND ($3::text IS NULL OR tenant_id = $3)"
                         " AND ($4::text IS NULL OR kind = $4)"
                         " AND ($5::text IS NULL OR provider = $5)"
                         " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
        else
                snprintf(sql, sizeof(sql),
                         "SELECT %s, sum(charges) AS charges, "
                         "sum(refunds) AS refunds, sum(units) AS units, "
                         "sum(credits) AS credits, sum(usd) AS usd "
                         "FROM billing_daily "
                         "WHERE ($1::date IS NULL OR day >= $1::date)"
                         " AND ($2::date IS NULL OR day <= $2::date)"
                         " AND ($3::text IS NULL OR tenant_id = $3)"
                         " AND ($4::text IS NULL OR kind = $4)"
                         " AND ($5::text IS NULL OR provider = $5)"
                         " GROUP BY %s ORDER BY %s",
                         o->by, o->by, o->by);
        r = PQexecParams(conn, sql, 5, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                fprintf(stderr, "genq report: %s", PQresultErrorMessage(r));
                PQclear(r);
                return 1;
        }
        if (o->fmt == FMT_CSV)
                print_csv(r);
        else if (o->fmt == FMT_JSON)
                print_json(r);
        else
                print_table(r);
        PQclear(r);
        return 0;
}

static int parse_fmt(const char *s, enum fmt *f)
{
        static const char *names[] = {"table", "csv", "json"};

        for (int i = 0; i < 3; i++)
                if (!strcmp(s, names[i])) {
                        *f = (enum fmt)i;
                        return 0;
                }
        return -1;
}

static int parse_opts(int argc, char **argv, struct report_opts *o)
{
        int i = 1;

        o->what = "billing";
        parse_by("tenant,kind,provider", o->by, sizeof(o->by));
        if (i < argc && argv[i][0] != '-')
                o->what = argv[i++];
        if (strcmp(o->what, "billing") && strcmp(o->what, "jobs"))
                return -1;
        for (; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (!v)
                        return -1;
                if (!strcmp(a, "--from"))
                        o->from = v;
                else if (!strcmp(a, "--to"))
                        o->to = v;
                else if (!strcmp(a, "--tenant"))
                        o->tenant = v;
                else if (!strcmp(a, "--kind"))
                        o->kind = v;
                else if (!strcmp(a, "--provider"))
                        o->provider = v;
                else if (!strcmp(a, "--by")) {
                        if (parse_by(v, o->by, sizeof(o->by)))
                                return -1;
                } else if (!strcmp(a, "--format")) {
                        if (parse_fmt(v, &o->fmt))
                                return -1;
                } else
                        return -1;
                i++;
        }
        return 0;
}

int cmd_report(int argc, char **argv)
{
        struct report_opts o = {0};
        struct gconf g = {0};
        char errstr[1024];
        PGconn *conn;
        int rc = 1;
        conf_t *c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));

        if (!c) {
                fprintf(stderr, "genq report: %s\n", errstr);
                return 2;
        }
        if (parse_opts(argc, argv, &o)) {
                usage();
                conf_destroy(c);
                return 2;
        }
        if (gconf_bind(c, &g, errstr, sizeof(errstr))) {
                fprintf(stderr, "genq report: %s\n", errstr);
                goto out_free_conf;
        }
        conn = pgutil_connect(g.pg_dsn, "genq-report", errstr, sizeof(errstr));
        if (!conn) {
                fprintf(stderr, "genq report: %s\n", errstr);
                goto out_free_conf;
        }
        rc = run_query(conn, &o);
        PQfinish(conn);
out_free_conf:
        gconf_clear(&g);
        conf_destroy(c);
        return rc;
}
