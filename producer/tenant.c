/*
 * `genq tenant`: tenants, their credit budgets and their reporting roles.
 *
 *   genq tenant add TENANT [--name NAME]
 *   genq tenant budget TENANT CREDITS|none [--period day|month]
 *   genq tenant reporter TENANT ROLE [--password-file FILE]
 *   genq tenant list [--format table|csv|json]
 *
 * Values go to the server as parameters.  The only identifier put into SQL
 * text is a reporter's role name (CREATE ROLE and GRANT take no
 * parameters): it is checked against [a-z0-9_]{1,48} first and quoted
 * with PQescapeIdentifier.  A password is read from a file, never from the
 * command line (where ps and shell history would show it), and sent only
 * as the SCRAM verifier libpq computes from it.
 */
#include <errno.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds.h"
#include "subcmd.h"

#define TENANT_MAX 64   /**< as tenant_id in jobs (common/codec.c) */
#define ROLE_MAX 48
#define PASSWORD_MAX 1024

struct tenant_args {
        struct subcmd_words w;  /**< TENANT, ROLE or CREDITS: first */
        const char *name;       /**< --name */
        const char *period;     /**< --period */
        const char *pwfile;     /**< --password-file */
        const char *format;     /**< --format */
};

enum {
        F_NAME = 1 << 0,
        F_PERIOD = 1 << 1,
        F_PWFILE = 1 << 2,
        F_FORMAT = 1 << 3,
};

_Static_assert(offsetof(struct tenant_args, w) == 0,
               "subcmd_main fills the words at the start");

#define A(f) offsetof(struct tenant_args, f)
static const struct subcmd_flag tenant_flags[] = {
        {"--name", F_NAME, 1, A(name)},
        {"--period", F_PERIOD, 1, A(period)},
        {"--password-file", F_PWFILE, 1, A(pwfile)},
        {"--format", F_FORMAT, 1, A(format)},
};

static int tenant_add(PGconn *conn, const void *args);
static int tenant_budget(PGconn *conn, const void *args);
static int tenant_reporter(PGconn *conn, const void *args);
static int tenant_list(PGconn *conn, const void *args);

/* Each takes exactly its words: npos_min == npos_max. */
static const struct subcmd tenant_cmds[] = {
        {"add", 1, 1, F_NAME, tenant_add},
        {"budget", 2, 2, F_PERIOD, tenant_budget},
        {"reporter", 2, 2, F_PWFILE, tenant_reporter},
        {"list", 0, 0, F_FORMAT, tenant_list},
};

static const char tenant_usage[] =
        "usage: genq tenant add TENANT [--name NAME]\n"
        "       genq tenant budget TENANT CREDITS|none "
        "[--period day|month]\n"
        "       genq tenant reporter TENANT ROLE [--password-file FILE]\n"
        "       genq tenant list [--format table|csv|json]\n"
        "\n"
        "add       create a tenant, or set the display name of one\n"
        "budget    credits the tenant may spend per period (UTC; default "
        "month,\n"
        "          or the period it had); `none` removes the budget\n"
        "reporter  make ROLE a login role (if it does not exist; password "
        "from\n"
        "          FILE's first line) that reads only TENANT's rows: a "
        "member of\n"
        "          genq_reporting, mapped in tenant_reporters\n"
        "list      tenants, budgets, spent and reserved this period, "
        "reporters\n"
        "\n"
        "TENANT: 1..64 of [A-Za-z0-9._-]; ROLE: 1..48 of [a-z0-9_].\n"
        "  -c FILE, -X key=value   configuration (postgres.dsn)\n";

static int check_args(const struct subcmd *cmd, void *args);

static const struct subcmd_spec tenant_spec = {
        .prefix = "genq tenant",
        .app_name = "genq-tenant",
        .usage = tenant_usage,
        .cmds = tenant_cmds,
        .ncmds = sizeof(tenant_cmds) / sizeof(tenant_cmds[0]),
        .flags = tenant_flags,
        .nflags = sizeof(tenant_flags) / sizeof(tenant_flags[0]),
        .missing = "missing arguments for ",
        .check = check_args,
};

static int usage_error(const char *msg, const char *what)
{
        return subcmd_usage_error(&tenant_spec, msg, what);
}

/* \p s matches the extended regular expression \p re (anchored there). */
static int matches(const char *s, const char *re)
{
        regex_t rx;
        int ok;

        if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB))
                return 0;
        ok = regexec(&rx, s, 0, NULL, 0) == 0;
        regfree(&rx);
        return ok;
}

static int tenant_id_ok(const char *s)
{
        return strlen(s) <= TENANT_MAX && matches(s, "^[A-Za-z0-9._-]+$");
}

/* Also not a name PostgreSQL reserves (pg_*, public) nor our group. */
static int role_name_ok(const char *s)
{
        return strlen(s) <= ROLE_MAX && matches(s, "^[a-z0-9_]+$") &&
               strncmp(s, "pg_", 3) && strcmp(s, "public") &&
               strcmp(s, "genq_reporting");
}

/* numeric(20, 6): up to 14 digits before the point, 6 after. */
static int credits_ok(const char *s)
{
        return matches(s, "^[0-9]{1,14}(\\.[0-9]{1,6})?$");
}

/* ---- checks ---------------------------------------------------------- */

/* The values' syntax, before anything connects. */
static int check_args(const struct subcmd *cmd, void *args)
{
        const struct tenant_args *a = args;

        if (a->w.npos > 0 && !tenant_id_ok(a->w.pos[0]))
                return usage_error("TENANT must be 1..64 characters of "
                                   "[A-Za-z0-9._-]: ", a->w.pos[0]);
        if (cmd->fn == tenant_reporter && !role_name_ok(a->w.pos[1]))
                return usage_error("ROLE must be 1..48 characters of "
                                   "[a-z0-9_], not pg_*, public or "
                                   "genq_reporting: ", a->w.pos[1]);
        if (cmd->fn == tenant_budget && strcmp(a->w.pos[1], "none") &&
            !credits_ok(a->w.pos[1]))
                return usage_error("CREDITS must be a decimal >= 0 with up "
                                   "to 6 places, or none: ", a->w.pos[1]);
        if (cmd->fn == tenant_budget && !strcmp(a->w.pos[1], "none") &&
            a->period)
                return usage_error("--period with budget none", "");
        if (a->period && strcmp(a->period, "day") &&
            strcmp(a->period, "month"))
                return usage_error("--period must be day or month: ",
                                   a->period);
        return subcmd_check_format(&tenant_spec, a->format);
}

/* ---- statements ------------------------------------------------------ */

/* subcmd_exec() as `genq tenant`.  @returns the result (caller PQclear)
 * or NULL (printed). */
static PGresult *run(PGconn *conn, const char *sql, int n,
                     const char *const *params)
{
        return subcmd_exec(&tenant_spec, conn, sql, n, params);
}

/* A statement without parameters whose result is not wanted.
 * @returns 1 if it succeeded, else 0 with the error printed. */
static int run_ok(PGconn *conn, const char *sql)
{
        PGresult *r = run(conn, sql, 0, NULL);

        PQclear(r);
        return r != NULL;
}

static int tenant_add(PGconn *conn, const void *args)
{
        const struct tenant_args *a = args;
        const char *params[2] = {a->w.pos[0], a->name};
        PGresult *r = run(conn,
                          "INSERT INTO tenants (tenant_id, display_name) "
                          "VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE "
                          "SET display_name = coalesce(EXCLUDED.display_name,"
                          " tenants.display_name) "
                          "RETURNING xmax = 0",
                          2, params);

        if (!r)
                return 1;
        printf("tenant %s %s\n", a->w.pos[0],
               !strcmp(PQgetvalue(r, 0, 0), "t") ? "added"
               : a->name                         ? "exists; name set"
                                                 : "exists");
        PQclear(r);
        return 0;
}

static int tenant_budget(PGconn *conn, const void *args)
{
        const struct tenant_args *a = args;
        const char *credits =
                strcmp(a->w.pos[1], "none") ? a->w.pos[1] : NULL;
        const char *params[3] = {a->w.pos[0], credits, a->period};
        PGresult *r = run(conn,
                          "UPDATE tenants SET credit_budget = $2::numeric, "
                          "budget_period = CASE WHEN $2 IS NOT NULL THEN "
                          "coalesce($3, budget_period, 'month') END "
                          "WHERE tenant_id = $1 "
                          "RETURNING credit_budget, budget_period",
                          3, params);
        int rc = 0;

        if (!r)
                return 1;
        if (PQntuples(r) == 0) {
                fprintf(stderr, "genq tenant: no tenant \"%s\" (genq tenant "
                                "add %s)\n", a->w.pos[0], a->w.pos[0]);
                rc = 1;
        } else if (PQgetisnull(r, 0, 0)) {
                printf("tenant %s: no budget\n", a->w.pos[0]);
        } else {
                printf("tenant %s: budget %s credits per %s\n", a->w.pos[0],
                       PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
        }
        PQclear(r);
        return rc;
}

static int tenant_list(PGconn *conn, const void *args)
{
        const struct tenant_args *a = args;

        return subcmd_print_rows(
                &tenant_spec, conn,
                "SELECT t.tenant_id, t.display_name AS name, "
                "t.credit_budget AS budget, t.budget_period AS period, "
                "(p.ps AT TIME ZONE 'UTC')::date AS period_start, "
                "coalesce(s.spent, 0) AS spent, "
                "coalesce(s.reserved, 0) AS reserved, "
                "t.credit_budget - coalesce(s.spent, 0) "
                "- coalesce(s.reserved, 0) AS available, "
                "(SELECT string_agg(r.role_name, ',' ORDER BY r.role_name) "
                "FROM tenant_reporters r WHERE r.tenant_id = t.tenant_id) "
                "AS reporters "
                "FROM tenants t "
                "CROSS JOIN LATERAL (SELECT genq_period_start("
                "coalesce(t.budget_period, 'month'), now()) AS ps) p "
                "LEFT JOIN tenant_spend s ON s.tenant_id = t.tenant_id "
                "AND s.period_start = p.ps "
                "ORDER BY t.tenant_id",
                a->format);
}

/* ---- reporter -------------------------------------------------------- */

/* The first line of \p path, without its line end, into \p buf.
 * @returns 0 or -1 with errstr. */
static int read_password(const char *path, char *buf, size_t size,
                         char *errstr, size_t errstr_size)
{
        FILE *fp = fopen(path, "r");
        struct stat st;
        size_t n;

        if (!fp) {
                snprintf(errstr, errstr_size, "%s: %s", path,
                         strerror(errno));
                return -1;
        }
        if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077))
                fprintf(stderr, "genq tenant: warning: %s is readable by "
                                "other users (chmod 600 it)\n", path);
        if (!fgets(buf, (int)size, fp))
                buf[0] = '\0';
        fclose(fp);
        n = strcspn(buf, "\r\n");
        if (n == size - 1) {
                snprintf(errstr, errstr_size, "%s: password longer than "
                         "%zu bytes", path, size - 2);
                return -1;
        }
        buf[n] = '\0';
        if (n == 0) {
                snprintf(errstr, errstr_size, "%s: empty password", path);
                return -1;
        }
        return 0;
}

/* A role that would not be held to one tenant by row-level security.
 * @returns 1 (refused, printed), 0 (fine), -1 (error printed). */
static int role_refused(PGconn *conn, const char *role, int *exists)
{
        const char *params[1] = {role};
        PGresult *r = run(
                conn,
                "SELECT CASE WHEN rolsuper THEN 'is a superuser' "
                "WHEN rolbypassrls THEN 'bypasses row-level security' "
                "WHEN pg_has_role(oid, 'pg_read_all_data', 'USAGE') "
                "THEN 'reads every table (pg_read_all_data)' "
                "WHEN rolname = current_user THEN 'is the role running this'"
                " WHEN pg_has_role(oid, (SELECT relowner FROM pg_class "
                "WHERE oid = 'credit_ledger'::regclass), 'USAGE') "
                "THEN 'owns the genq tables' END "
                "FROM pg_roles WHERE rolname = $1",
                1, params);
        int rc = 0;

        if (!r)
                return -1;
        *exists = PQntuples(r) > 0;
        if (*exists && !PQgetisnull(r, 0, 0)) {
                fprintf(stderr, "genq tenant: role %s %s: row-level security "
                                "would not limit it to one tenant\n",
                        role, PQgetvalue(r, 0, 0));
                rc = 1;
        }
        PQclear(r);
        return rc;
}

/* CREATE ROLE (or, for an existing role, ALTER ROLE when a password is
 * given) and GRANT genq_reporting; \p ident is the quoted role name. */
static int role_make(PGconn *conn, const char *role, const char *ident,
                     const char *password, int exists)
{
        char *verifier = NULL, *lit = NULL, sql[1024];
        int rc = -1;

        if (password) {
                verifier = PQencryptPasswordConn(conn, password, role, NULL);
                if (!verifier) {
                        fprintf(stderr, "genq tenant: %s",
                                PQerrorMessage(conn));
                        return -1;
                }
                lit = PQescapeLiteral(conn, verifier, strlen(verifier));
                if (!lit)
                        goto out_free_verifier;
        }
        if (!exists || lit) {
                snprintf(sql, sizeof(sql), "%s ROLE %s%s%s%s",
                         exists ? "ALTER" : "CREATE", ident,
                         exists ? "" : " LOGIN", lit ? " PASSWORD " : "",
                         lit ? lit : "");
                if (!run_ok(conn, sql))
                        goto out_free_lit;
        }
        snprintf(sql, sizeof(sql), "GRANT genq_reporting TO %s", ident);
        rc = run_ok(conn, sql) ? 0 : -1;
out_free_lit:
        PQfreemem(lit);
out_free_verifier:
        PQfreemem(verifier);
        return rc;
}

/* Map \p role to \p tenant (or move it there); prints what changed.
 * @returns 0 or -1 (error printed). */
static int map_reporter(PGconn *conn, const char *role, const char *tenant)
{
        const char *params[2] = {role, tenant};
        PGresult *r = run(conn,
                          "WITH old AS (SELECT tenant_id FROM tenant_reporters"
                          " WHERE role_name = $1) "
                          "INSERT INTO tenant_reporters (role_name, tenant_id)"
                          " VALUES ($1, $2) ON CONFLICT (role_name) DO UPDATE "
                          "SET tenant_id = EXCLUDED.tenant_id "
                          "RETURNING (SELECT tenant_id FROM old)",
                          2, params);

        if (!r)
                return -1;
        if (PQgetisnull(r, 0, 0))
                printf("role %s now reports on tenant %s\n", role, tenant);
        else if (strcmp(PQgetvalue(r, 0, 0), tenant))
                printf("role %s moved from tenant %s to tenant %s\n", role,
                       PQgetvalue(r, 0, 0), tenant);
        else
                printf("role %s already reports on tenant %s\n", role,
                       tenant);
        PQclear(r);
        return 0;
}

static int tenant_exists(PGconn *conn, const char *tenant)
{
        const char *params[1] = {tenant};
        PGresult *r = run(conn,
                          "SELECT 1 FROM tenants WHERE tenant_id = $1 "
                          "FOR SHARE",
                          1, params);
        int n = r ? PQntuples(r) : -1;

        PQclear(r);
        if (n == 0)
                fprintf(stderr, "genq tenant: no tenant \"%s\" (genq tenant "
                                "add %s)\n", tenant, tenant);
        return n > 0;
}

/* Inside a transaction: the checks, the role, the mapping.
 * @returns 0 or -1 (printed). */
static int reporter_tx(PGconn *conn, const struct tenant_args *a,
                       const char *ident, const char *password)
{
        const char *tenant = a->w.pos[0], *role = a->w.pos[1];
        int exists;

        if (!tenant_exists(conn, tenant))
                return -1;
        if (role_refused(conn, role, &exists))
                return -1;
        if (role_make(conn, role, ident, password, exists))
                return -1;
        if (!exists)
                printf("role %s created (LOGIN%s)\n", role,
                       password ? ", password set" : ", no password");
        else if (password)
                printf("role %s exists; password set\n", role);
        return map_reporter(conn, role, tenant);
}

static int tenant_reporter(PGconn *conn, const void *args)
{
        const struct tenant_args *a = args;
        char password[PASSWORD_MAX + 2], errstr[512];
        const char *role = a->w.pos[1];
        char *ident;
        int rc = 1;

        if (a->pwfile && read_password(a->pwfile, password, sizeof(password),
                                       errstr, sizeof(errstr))) {
                fprintf(stderr, "genq tenant: %s\n", errstr);
                return 1;
        }
        ident = PQescapeIdentifier(conn, role, strlen(role));
        if (!ident) {
                fprintf(stderr, "genq tenant: %s", PQerrorMessage(conn));
                goto out_clear_password;
        }
        if (!run_ok(conn, "BEGIN"))
                goto out_free_ident;
        if (reporter_tx(conn, a, ident, a->pwfile ? password : NULL)) {
                run_ok(conn, "ROLLBACK");
                goto out_free_ident;
        }
        rc = run_ok(conn, "COMMIT") ? 0 : 1;
out_free_ident:
        PQfreemem(ident);
out_clear_password:
        explicit_bzero(password, sizeof(password));
        return rc;
}

/* ---- command --------------------------------------------------------- */

int cmd_tenant(int argc, char **argv)
{
        struct tenant_args a = {0};

        return subcmd_main(&tenant_spec, argc, argv, &a);
}
