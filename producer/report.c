/*
 * `genq report`: billing, job outcome and provider quota reports from the
 * SQL views (billing_daily, job_outcomes, provider_quota_usage), and the
 * ledger check (genq_reconcile()), printed as a table, CSV or JSON.
 *
 * The grouping columns are chosen from a fixed list and never pasted from
 * user input into SQL; dates and filters go in as parameters.  Money stays
 * exact: numeric values are printed as PostgreSQL formats them, and JSON
 * carries every value as a string.
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
        char by[256];            /**< validated select list */
        char by_pos[64];         /**< "1, 2, 3": its ordinals */
        const char *what;        /**< "billing", "jobs" or "quota" */
        int reconcile;           /**< --reconcile */
        enum fmt fmt;
};

/* --by words and the billing_daily expression each selects. */
static const struct by_col {
        const char *word;
        const char *expr;
} by_cols[] = {
        {"tenant", "tenant_id"},
        {"tenant_id", "tenant_id"},
        {"day", "day"},
        {"month", "date_trunc('month', day)::date AS month"},
        {"kind", "kind"},
        {"provider", "provider"},
        {"model", "model"},
};

#define N_BY_COLS (sizeof(by_cols) / sizeof(by_cols[0]))

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: genq report [billing|jobs|quota] [--from YYYY-MM-DD] "
                "[--to YYYY-MM-DD]\n"
                "         [--tenant T] [--kind K] [--provider P]\n"
                "         [--by tenant,day,month,kind,provider,model] "
                "[--format table|csv|json]\n"
                "         [-c FILE] [-X key=value]\n"
                "       genq report --reconcile [--format table|csv|json]\n"
                "\n"
                "billing (default): jobs charged, charges, refunds, refunded "
                "credits, failed\n"
                "  jobs, net units, credits and usd, grouped --by (default "
                "tenant,kind,provider).\n"
                "jobs: jobs and provider calls by tenant, kind and state.\n"
                "quota: provider usage per quota period against free quotas, "
                "and spend\n"
                "  (--from/--to select periods; --provider filters).\n"
                "--reconcile: charges and adjustments that differ from "
                "their price snapshot\n"
                "  applied to their usage, refunds unlike their charge, jobs "
                "charged twice or\n"
                "  charged though they failed (genq_reconcile()); exits 1 if "
                "there is any.\n");
}

static const struct by_col *find_by_col(const char *w)
{
        for (size_t i = 0; i < N_BY_COLS; i++)
                if (!strcmp(w, by_cols[i].word))
                        return &by_cols[i];
        return NULL;
}

/* "tenant,month" -> select list "tenant_id, date_trunc(...) AS month" and
 * ordinals "1, 2"; every word must be a known column, each only once. */
static int parse_by(const char *s, struct report_opts *o)
{
        const struct by_col *seen[N_BY_COLS];
        char buf[128], *save = NULL, *w;
        size_t n = 0, bo = 0, po = 0;

        if (strlen(s) >= sizeof(buf))
                return -1;
        snprintf(buf, sizeof(buf), "%s", s);
        for (w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                const struct by_col *c = find_by_col(w);

                for (size_t i = 0; c && i < n; i++)
                        if (!strcmp(seen[i]->expr, c->expr))
                                c = NULL;
                if (!c || n == N_BY_COLS)
                        return -1;
                seen[n++] = c;
                bo += (size_t)snprintf(o->by + bo, sizeof(o->by) - bo, "%s%s",
                                       bo ? ", " : "", c->expr);
                po += (size_t)snprintf(o->by_pos + po, sizeof(o->by_pos) - po,
                                       "%s%zu", po ? ", " : "", n);
                if (bo >= sizeof(o->by) || po >= sizeof(o->by_pos))
                        return -1;
        }
        return n ? 0 : -1;
}

static void print_table(const PGresult *r)
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
        if (!strpbrk(s, ",\"\r\n")) {
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

static void print_csv(const PGresult *r)
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
static void print_json(const PGresult *r)
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

void report_print(const PGresult *r, int fmt)
{
        if (fmt == FMT_CSV)
                print_csv(r);
        else if (fmt == FMT_JSON)
                print_json(r);
        else
                print_table(r);
}

int report_fmt_parse(const char *s)
{
        static const char *names[] = {"table", "csv", "json"};

        for (int i = 0; i < 3; i++)
                if (!strcmp(s, names[i]))
                        return i;
        return -1;
}

/* Run \p sql with parameters $1..$n.
 * @returns the result (caller PQclear) or NULL, with the error printed. */
static PGresult *query(PGconn *conn, const char *sql, int n,
                       const char *const *params)
{
        PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(r) == PGRES_TUPLES_OK)
                return r;
        fprintf(stderr, "genq report: %s", PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
}

/* \p sql with the five filters as $1..$5 (from, to, tenant, kind,
 * provider), printed in the chosen format. */
static int print_query(PGconn *conn, const char *sql,
                       const struct report_opts *o)
{
        const char *params[5] = {o->from, o->to, o->tenant, o->kind,
                                 o->provider};
        PGresult *r = query(conn, sql, 5, params);

        if (!r)
                return 1;
        report_print(r, (int)o->fmt);
        PQclear(r);
        return 0;
}

static int report_billing(PGconn *conn, const struct report_opts *o)
{
        char sql[2048];

        snprintf(sql, sizeof(sql),
                 "SELECT %s, sum(jobs)::bigint AS jobs, "
                 "sum(charges)::bigint AS charges, "
                 "sum(refunds)::bigint AS refunds, "
                 "sum(refund_credits) AS refund_credits, "
                 "sum(failures)::bigint AS failures, sum(units) AS units, "
                 "sum(credits) AS credits, sum(usd) AS usd "
                 "FROM billing_daily "
                 "WHERE ($1::date IS NULL OR day >= $1::date)"
                 " AND ($2::date IS NULL OR day <= $2::date)"
                 " AND ($3::text IS NULL OR tenant_id = $3)"
                 " AND ($4::text IS NULL OR kind = $4)"
                 " AND ($5::text IS NULL OR provider = $5)"
                 " GROUP BY %s ORDER BY %s",
                 o->by, o->by_pos, o->by_pos);
        return print_query(conn, sql, o);
}

static int report_jobs(PGconn *conn, const struct report_opts *o)
{
        return print_query(
                conn,
                "SELECT tenant_id, kind, state, count(*) AS jobs, "
                "sum(attempts) AS attempts FROM jobs "
                "WHERE ($1::date IS NULL OR accepted_at >= $1::date)"
                " AND ($2::date IS NULL OR accepted_at < $2::date + 1)"
                " AND ($3::text IS NULL OR tenant_id = $3)"
                " AND ($4::text IS NULL OR kind = $4)"
                " AND ($5::text IS NULL OR provider = $5)"
                " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
                o);
}

/* Periods overlapping --from..--to ('none' periods always do); --tenant
 * and --kind do not apply (check_opts). */
static int report_quota(PGconn *conn, const struct report_opts *o)
{
        const char *params[3] = {o->from, o->to, o->provider};
        PGresult *r = query(
                conn,
                "SELECT * FROM provider_quota_usage "
                "WHERE ($1::date IS NULL OR period_start IS NULL OR "
                "period_start + CASE WHEN period = 'day' THEN interval "
                "'1 day' ELSE interval '1 month' END > $1::date)"
                " AND ($2::date IS NULL OR period_start IS NULL OR "
                "period_start <= $2::date)"
                " AND ($3::text IS NULL OR provider = $3)"
                " ORDER BY provider, unit, period_start",
                3, params);

        if (!r)
                return 1;
        report_print(r, (int)o->fmt);
        PQclear(r);
        return 0;
}

/* Mismatches are the report, and exit 1; none: a count of what was
 * checked (to stderr for csv and json, whose stdout stays parseable).
 * One snapshot for both (the caller's transaction). */
static int reconcile_tx(PGconn *conn, const struct report_opts *o)
{
        PGresult *r = query(conn, "SELECT * FROM genq_reconcile()", 0, NULL);
        int n;

        if (!r)
                return 1;
        n = PQntuples(r);
        if (n || o->fmt != FMT_TABLE)
                report_print(r, (int)o->fmt);
        PQclear(r);
        if (n) {
                fprintf(stderr, "genq report: %d ledger entr%s do not "
                                "reconcile\n", n, n == 1 ? "y" : "ies");
                return 1;
        }
        r = query(conn, "SELECT count(*) FROM credit_ledger", 0, NULL);
        if (!r)
                return 1;
        fprintf(o->fmt == FMT_TABLE ? stdout : stderr,
                "ledger reconciles: %s entries checked\n",
                PQgetvalue(r, 0, 0));
        PQclear(r);
        return 0;
}

static int report_reconcile(PGconn *conn, const struct report_opts *o)
{
        char errstr[512];
        int rc;

        if (pgutil_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ "
                              "READ ONLY", errstr, sizeof(errstr))) {
                fprintf(stderr, "genq report: %s\n", errstr);
                return 1;
        }
        rc = reconcile_tx(conn, o);
        pgutil_exec(conn, "COMMIT", NULL, 0);
        return rc;
}

static const struct report_kind {
        const char *name;
        int (*fn)(PGconn *conn, const struct report_opts *o);
} report_kinds[] = {
        {"billing", report_billing},
        {"jobs", report_jobs},
        {"quota", report_quota},
};

#define N_REPORT_KINDS (sizeof(report_kinds) / sizeof(report_kinds[0]))

static const struct report_kind *find_kind(const char *name)
{
        for (size_t i = 0; i < N_REPORT_KINDS; i++)
                if (!strcmp(report_kinds[i].name, name))
                        return &report_kinds[i];
        return NULL;
}

/* One option with its value.  @returns 0 or -1 (unknown or bad value). */
static int parse_opt(const char *a, const char *v, struct report_opts *o)
{
        int f;

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
        else if (!strcmp(a, "--by"))
                return parse_by(v, o);
        else if (!strcmp(a, "--format")) {
                f = report_fmt_parse(v);
                if (f < 0)
                        return -1;
                o->fmt = (enum fmt)f;
        } else
                return -1;
        return 0;
}

/* Options that do not apply to the report asked for are usage errors,
 * never silently ignored.  @returns 0 or -1 (reason printed). */
static int check_opts(const struct report_opts *o, int by_given)
{
        int filters = o->from || o->to || o->tenant || o->kind || o->provider;
        const char *why = NULL;

        if (o->reconcile && (filters || by_given))
                why = "--reconcile checks the whole ledger: no filters or "
                      "--by";
        else if (o->reconcile && strcmp(o->what, "billing"))
                why = "--reconcile is not a jobs or quota report";
        else if (by_given && strcmp(o->what, "billing"))
                why = "--by applies to the billing report only";
        else if (!strcmp(o->what, "quota") && (o->tenant || o->kind))
                why = "quota is per provider: no --tenant or --kind";
        if (!why)
                return 0;
        fprintf(stderr, "genq report: %s\n\n", why);
        return -1;
}

/* @returns 0, 1 for -h, or -1 on a usage error. */
static int parse_opts(int argc, char **argv, struct report_opts *o)
{
        int i = 1, by_given = 0;

        o->what = "billing";
        parse_by("tenant,kind,provider", o);
        if (i < argc && argv[i][0] != '-')
                o->what = argv[i++];
        if (!find_kind(o->what))
                return -1;
        for (; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

                if (!strcmp(a, "-h") || !strcmp(a, "--help"))
                        return 1;
                if (!strcmp(a, "--reconcile")) {
                        o->reconcile = 1;
                        continue;
                }
                if (!v || parse_opt(a, v, o))
                        return -1;
                by_given |= !strcmp(a, "--by");
                i++;
        }
        return check_opts(o, by_given);
}

int cmd_report(int argc, char **argv)
{
        struct report_opts o = {0};
        struct gconf g = {0};
        char errstr[1024];
        PGconn *conn;
        int rc = 1, prc;
        conf_t *c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));

        if (!c) {
                fprintf(stderr, "genq report: %s\n", errstr);
                return 2;
        }
        prc = parse_opts(argc, argv, &o);
        if (prc) {
                usage(prc > 0 ? stdout : stderr);
                conf_destroy(c);
                return prc > 0 ? 0 : 2;
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
        rc = o.reconcile ? report_reconcile(conn, &o)
                         : find_kind(o.what)->fn(conn, &o);
        PQfinish(conn);
out_free_conf:
        gconf_clear(&g);
        conf_destroy(c);
        return rc;
}
