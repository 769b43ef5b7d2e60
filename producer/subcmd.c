/*
 * The plumbing of the `genq` commands that work on the database (see
 * subcmd.h).  Everything a command prints here starts with its prefix,
 * so a message says which command it came from whichever file wrote it.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "gconf.h"
#include "pgutil.h"
#include "subcmd.h"

int subcmd_is_help(const char *arg)
{
        return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int subcmd_usage_error(const struct subcmd_spec *s, const char *msg,
                       const char *what)
{
        if (msg)
                fprintf(stderr, "%s: %s%s\n\n", s->prefix, msg, what);
        fputs(s->usage, stderr);
        return 2;
}

conf_t *subcmd_conf_load(const struct subcmd_spec *s, int *argcp,
                         char **argv)
{
        char errstr[1024];
        conf_t *c = gconf_load_args(argcp, argv, errstr, sizeof(errstr));

        if (!c)
                fprintf(stderr, "%s: %s\n", s->prefix, errstr);
        return c;
}

/* ---- parsing --------------------------------------------------------- */

static const struct subcmd *find_cmd(const struct subcmd_spec *s,
                                     const char *name)
{
        for (size_t i = 0; i < s->ncmds; i++)
                if (!strcmp(s->cmds[i].name, name))
                        return &s->cmds[i];
        return NULL;
}

static const struct subcmd_flag *find_flag(const struct subcmd_spec *s,
                                           const char *name)
{
        for (size_t i = 0; i < s->nflags; i++)
                if (!strcmp(s->flags[i].name, name))
                        return &s->flags[i];
        return NULL;
}

/* A lone "-" is a word; so is "-5" where words may be negative numbers
 * (a priority), rather than an unknown option. */
static int looks_like_option(const struct subcmd_spec *s, const char *arg)
{
        return arg[0] == '-' && arg[1] &&
               !(s->negative_words && isdigit((unsigned char)arg[1]));
}

/* \p arg is not a flag: the next positional word.
 * @returns 0 or 2 (usage printed). */
static int take_word(const struct subcmd_spec *s, const struct subcmd *cmd,
                     const char *arg, struct subcmd_words *w)
{
        if (looks_like_option(s, arg))
                return subcmd_usage_error(s, "unknown option ", arg);
        if (w->npos == cmd->npos_max)
                return subcmd_usage_error(s, "unexpected argument ", arg);
        w->pos[w->npos++] = arg;
        return 0;
}

/* The flag \p f, with \p value the word after it (NULL at the end), into
 * \p args.  f->name is the word as given: find_flag matched it exactly.
 * @returns 0 or 2 (usage printed). */
static int take_flag(const struct subcmd_spec *s, int allowed,
                     const struct subcmd_flag *f, const char *value,
                     void *args)
{
        char *slot = (char *)args + f->offset;

        if (!(allowed & f->bit))
                return subcmd_usage_error(s, "option does not apply here: ",
                                          f->name);
        if (!f->takes_value)
                *(int *)slot = 1;
        else if (value)
                *(const char **)slot = value;
        else
                return subcmd_usage_error(s, "missing value for ", f->name);
        return 0;
}

/* argv[2..] into \p args for \p cmd.  @returns 0 or 2 (usage printed). */
static int parse_args(const struct subcmd_spec *s, const struct subcmd *cmd,
                      int argc, char **argv, void *args)
{
        struct subcmd_words *w = args; /* args starts with its words */
        int rc = 0;

        for (int i = 2; i < argc && !rc; i++) {
                const struct subcmd_flag *f = find_flag(s, argv[i]);

                if (!f) {
                        rc = take_word(s, cmd, argv[i], w);
                        continue;
                }
                rc = take_flag(s, cmd->flags, f,
                               i + 1 < argc ? argv[i + 1] : NULL, args);
                i += f->takes_value;
        }
        if (!rc && w->npos < cmd->npos_min)
                rc = subcmd_usage_error(s, s->missing, cmd->name);
        return rc;
}

/* ---- running --------------------------------------------------------- */

int subcmd_run(const struct subcmd_spec *s, conf_t *c,
               int (*fn)(PGconn *conn, const void *args), const void *args)
{
        struct gconf g = {0};
        char errstr[1024];
        PGconn *conn;
        int rc = 1;

        if (gconf_bind(c, &g, errstr, sizeof(errstr))) {
                fprintf(stderr, "%s: %s\n", s->prefix, errstr);
                goto out_clear_gconf;
        }
        if (s->bound)
                s->bound(c, args);
        conn = pgutil_connect(g.pg_dsn, s->app_name, errstr, sizeof(errstr));
        if (!conn) {
                fprintf(stderr, "%s: %s\n", s->prefix, errstr);
                goto out_clear_gconf;
        }
        rc = fn(conn, args);
        PQfinish(conn);
out_clear_gconf:
        gconf_clear(&g);
        return rc;
}

/* The sub-subcommand, its words and flags, and their checks.
 * @returns the exit code. */
static int dispatch(const struct subcmd_spec *s, conf_t *c, int argc,
                    char **argv, void *args)
{
        const struct subcmd *cmd;
        int rc;

        if (argc > 1 && subcmd_is_help(argv[1])) {
                fputs(s->usage, stdout);
                return 0;
        }
        cmd = argc > 1 ? find_cmd(s, argv[1]) : NULL;
        if (!cmd)
                return subcmd_usage_error(
                        s, argc > 1 ? "unknown subcommand " : NULL,
                        argc > 1 ? argv[1] : "");
        rc = parse_args(s, cmd, argc, argv, args);
        if (!rc)
                rc = s->check(cmd, args);
        if (!rc)
                rc = subcmd_run(s, c, cmd->fn, args);
        return rc;
}

int subcmd_main(const struct subcmd_spec *s, int argc, char **argv,
                void *args)
{
        conf_t *c = subcmd_conf_load(s, &argc, argv);
        int rc;

        if (!c)
                return 2;
        rc = dispatch(s, c, argc, argv, args);
        conf_destroy(c);
        return rc;
}

/* ---- statements ------------------------------------------------------ */

PGresult *subcmd_exec(const struct subcmd_spec *s, PGconn *conn,
                      const char *sql, int n, const char *const *params)
{
        PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(r);

        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                return r;
        fprintf(stderr, "%s: %s", s->prefix, PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
}

int subcmd_print_rows(const struct subcmd_spec *s, PGconn *conn,
                      const char *sql, const char *format)
{
        PGresult *r = subcmd_exec(s, conn, sql, 0, NULL);

        if (!r)
                return 1;
        report_print(r, format ? report_fmt_parse(format) : 0);
        PQclear(r);
        return 0;
}

int subcmd_check_format(const struct subcmd_spec *s, const char *format)
{
        if (format && report_fmt_parse(format) < 0)
                return subcmd_usage_error(s, "--format must be table, csv "
                                             "or json: ", format);
        return 0;
}
