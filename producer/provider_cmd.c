/*
 * `genq provider`: steer every worker's providers at run time.
 *
 *   genq provider list [--format table|csv|json]
 *   genq provider disable NAME [--key KEY_ID] [--reason TEXT]
 *   genq provider enable NAME [--key KEY_ID]
 *   genq provider priority NAME N|--clear [--key KEY_ID]
 *   genq provider quota NAME --reset [--key KEY_ID] [--unit UNIT]
 *
 * Nothing here talks to a worker: each one re-reads provider_overrides and
 * provider_key_state (the policy_state view, schema 0007) every ~2 s, so a
 * row written here is obeyed by all of them within seconds.  key_id '' is
 * the whole provider, as everywhere in that schema.
 *
 * Overrides only ever say "differs from the configuration"; a row whose
 * enabled and priority are both NULL says nothing, so enable and
 * priority --clear delete it instead of leaving it behind.  Every change
 * is one statement (data-modifying CTEs where it takes more than one), so
 * a worker never polls half of it.  Values go to the server as
 * parameters; no user input is pasted into SQL text.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider_cmd.h"
#include "subcmd.h"

#define NAME_MAX_LEN 64     /**< provider names and quota units */
#define KEY_MAX_LEN 512     /**< "file:/path/to/keys#12" can be long */
#define REASON_MAX_LEN 200
#define PRIORITY_MIN -1000
#define PRIORITY_MAX 1000
#define CONF_PROVIDERS_MAX 512

/* Appended to every change: the effect is not immediate, and not local. */
#define OBEY "; workers obey within seconds"

struct provider_args {
        struct subcmd_words w;  /**< NAME, then N for priority: first */
        const char *key;        /**< --key, NULL: the whole provider */
        const char *reason;     /**< --reason */
        const char *unit;       /**< --unit */
        const char *format;     /**< --format */
        int clear;              /**< --clear */
        int reset;              /**< --reset */
        long priority;          /**< w.pos[1] parsed */
};

enum {
        F_KEY = 1 << 0,
        F_REASON = 1 << 1,
        F_UNIT = 1 << 2,
        F_FORMAT = 1 << 3,
        F_CLEAR = 1 << 4,
        F_RESET = 1 << 5,
};

_Static_assert(offsetof(struct provider_args, w) == 0,
               "subcmd_main fills the words at the start");

#define A(f) offsetof(struct provider_args, f)
static const struct subcmd_flag provider_flags[] = {
        {"--key", F_KEY, 1, A(key)},
        {"--reason", F_REASON, 1, A(reason)},
        {"--unit", F_UNIT, 1, A(unit)},
        {"--format", F_FORMAT, 1, A(format)},
        {"--clear", F_CLEAR, 0, A(clear)},
        {"--reset", F_RESET, 0, A(reset)},
};

static int provider_list(PGconn *conn, const void *args);
static int provider_disable(PGconn *conn, const void *args);
static int provider_enable(PGconn *conn, const void *args);
static int provider_priority(PGconn *conn, const void *args);
static int provider_quota(PGconn *conn, const void *args);

static const struct subcmd provider_cmds[] = {
        {"list", 0, 0, F_FORMAT, provider_list},
        {"disable", 1, 1, F_KEY | F_REASON, provider_disable},
        {"enable", 1, 1, F_KEY, provider_enable},
        {"priority", 1, 2, F_KEY | F_CLEAR, provider_priority},
        {"quota", 1, 1, F_KEY | F_UNIT | F_RESET, provider_quota},
};

static const char provider_usage[] =
        "usage: genq provider list [--format table|csv|json]\n"
        "       genq provider disable NAME [--key KEY_ID] [--reason TEXT]\n"
        "       genq provider enable NAME [--key KEY_ID]\n"
        "       genq provider priority NAME N|--clear [--key KEY_ID]\n"
        "       genq provider quota NAME --reset [--key KEY_ID] "
        "[--unit UNIT]\n"
        "\n"
        "Changes reach every worker within seconds (they re-read the "
        "overrides\n"
        "every ~2 s).  Without --key a change is for the whole provider.\n"
        "\n"
        "list      each provider, and each key with state: its override "
        "(enabled,\n"
        "          priority, reason), the key a worker disabled (after a "
        "401/403)\n"
        "          and when, live concurrency slots, requests in the last "
        "60 s (on\n"
        "          a provider's row, key \"\", for all its keys), free "
        "quota used of\n"
        "          limit per period and its next reset in the quota's "
        "time zone\n"
        "disable   skip NAME (or one of its keys) on every worker\n"
        "enable    undo disable: as configured again; for a key (or a "
        "provider\n"
        "          without keys) also forget a worker's disable\n"
        "priority  order NAME among a route's providers (or a key among "
        "NAME's\n"
        "          keys): lower N is tried first; --clear: configured "
        "order\n"
        "quota     --reset: the free quota's used to 0 (e.g. after the "
        "provider\n"
        "          granted more), for every unit unless --unit\n"
        "\n"
        "NAME, UNIT: 1..64 of [A-Za-z0-9._-]; N: -1000..1000; KEY_ID as "
        "list shows\n"
        "it (env:GROQ_API_KEY); TEXT: 1..200 printable characters.\n"
        "  -c FILE, -X key=value   configuration (postgres.dsn)\n";

static int check_args(const struct subcmd *cmd, void *args);
static void warn_unknown(conf_t *c, const void *args);

static const struct subcmd_spec provider_spec = {
        .prefix = "genq provider",
        .app_name = "genq-provider",
        .usage = provider_usage,
        .cmds = provider_cmds,
        .ncmds = sizeof(provider_cmds) / sizeof(provider_cmds[0]),
        .flags = provider_flags,
        .nflags = sizeof(provider_flags) / sizeof(provider_flags[0]),
        .missing = "missing NAME for ",
        .negative_words = 1, /* priority -5 */
        .check = check_args,
        .bound = warn_unknown,
};

static int usage_error(const char *msg, const char *what)
{
        return subcmd_usage_error(&provider_spec, msg, what);
}

/* ---- validation ------------------------------------------------------ */

static int name_ok(const char *s)
{
        size_t n = strlen(s);

        return n >= 1 && n <= NAME_MAX_LEN &&
               strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* 1..max printable ASCII characters: what reaches a terminal through
 * `list` must not carry escape sequences. */
static int printable_ok(const char *s, size_t max)
{
        size_t n = strlen(s);

        for (size_t i = 0; i < n; i++)
                if (!isprint((unsigned char)s[i]))
                        return 0;
        return n >= 1 && n <= max;
}

static int priority_parse(const char *s, long *out)
{
        char *end;

        errno = 0;
        *out = strtol(s, &end, 10);
        return errno || end == s || *end || *out < PRIORITY_MIN ||
                               *out > PRIORITY_MAX
                       ? -1
                       : 0;
}

/* ---- checks ---------------------------------------------------------- */

/* priority takes N or --clear, exactly one; quota's only action is
 * --reset, required so that a bare `quota NAME` changes nothing. */
static int check_action(const struct subcmd *cmd, struct provider_args *a)
{
        if (cmd->fn == provider_priority && (a->w.npos == 2) == a->clear)
                return usage_error("priority takes N or --clear", "");
        if (cmd->fn == provider_priority && a->w.npos == 2 &&
            priority_parse(a->w.pos[1], &a->priority))
                return usage_error("N must be an integer -1000..1000: ",
                                   a->w.pos[1]);
        if (cmd->fn == provider_quota && !a->reset)
                return usage_error("quota needs --reset", "");
        return 0;
}

/* The values' syntax, before anything connects. */
static int check_args(const struct subcmd *cmd, void *args)
{
        struct provider_args *a = args;

        if (a->w.npos > 0 && !name_ok(a->w.pos[0]))
                return usage_error("NAME must be 1..64 characters of "
                                   "[A-Za-z0-9._-]: ", a->w.pos[0]);
        if (a->key && !printable_ok(a->key, KEY_MAX_LEN))
                return usage_error("KEY_ID must be 1..512 printable "
                                   "characters: ", a->key);
        if (a->reason && !printable_ok(a->reason, REASON_MAX_LEN))
                return usage_error("TEXT must be 1..200 printable "
                                   "characters", "");
        if (a->unit && !name_ok(a->unit))
                return usage_error("UNIT must be 1..64 characters of "
                                   "[A-Za-z0-9._-]: ", a->unit);
        if (subcmd_check_format(&provider_spec, a->format))
                return 2;
        return check_action(cmd, a);
}

/* ---- statements ------------------------------------------------------ */

/* subcmd_exec() as `genq provider`.  @returns the result (caller
 * PQclear) or NULL (printed). */
static PGresult *run(PGconn *conn, const char *sql, int n,
                     const char *const *params)
{
        return subcmd_exec(&provider_spec, conn, sql, n, params);
}

/* A statement on (NAME, key) and maybe one more value; its rows are not
 * wanted.  @returns 0 or 1 (printed). */
static int run_simple(PGconn *conn, const char *sql,
                      const struct provider_args *a, const char *third)
{
        const char *params[3] = {a->w.pos[0], a->key ? a->key : "", third};
        PGresult *r = run(conn, sql, 3, params);

        PQclear(r);
        return r ? 0 : 1;
}

/* "provider groq" or "provider groq key env:GROQ_API_KEY". */
static const char *target(const struct provider_args *a, char *buf,
                          size_t size)
{
        snprintf(buf, size, "provider %s%s%s", a->w.pos[0],
                 a->key ? " key " : "", a->key ? a->key : "");
        return buf;
}

/* One row per provider and per key seen in any of the tables; the
 * provider's own row (key '') counts slots and requests of all its keys,
 * and a quota row of a period that has ended shows 0 used, as genq_admit
 * would reset it.  Times are the policy clock's, as the rows were
 * stamped. */
static const char list_sql[] =
        "WITH t AS (SELECT genq_policy_now() AS now), "
        "seen AS ("
        "SELECT provider, key_id FROM provider_overrides "
        "UNION SELECT provider, key_id FROM provider_key_state "
        "UNION SELECT provider, key_id FROM provider_quota "
        "UNION SELECT s.provider, s.key_id FROM provider_slots s, t "
        "WHERE s.expires_at > t.now "
        "UNION SELECT r.provider, r.key_id FROM provider_rate_log r, t "
        "WHERE r.at > t.now - interval '60 s'), "
        "k AS (SELECT provider, key_id FROM seen "
        "UNION SELECT provider, '' FROM seen) "
        "SELECT k.provider, k.key_id AS key, o.enabled::text AS enabled, "
        "o.priority, o.reason, ks.disabled_reason AS key_disabled, "
        "date_trunc('second', ks.disabled_at) AS disabled_at, "
        "ks.disabled_by, "
        "(SELECT count(*) FROM provider_slots s WHERE s.provider = "
        "k.provider AND (k.key_id = '' OR s.key_id = k.key_id) "
        "AND s.expires_at > t.now) AS slots, "
        "(SELECT count(*) FROM provider_rate_log r WHERE r.provider = "
        "k.provider AND (k.key_id = '' OR r.key_id = k.key_id) "
        "AND r.at > t.now - interval '60 s') AS req_60s, "
        "q.unit AS quota_unit, "
        "trim_scale(CASE WHEN q.unit IS NULL THEN NULL "
        "WHEN genq_quota_period_start(q.period, "
        "q.time_zone, q.period_start) = genq_quota_period_start(q.period, "
        "q.time_zone, t.now) THEN q.used ELSE 0 END) AS quota_used, "
        "trim_scale(q.quota_limit) AS quota_limit, "
        "q.period AS quota_period, "
        "CASE WHEN q.period = 'none' THEN 'never' "
        "ELSE to_char(genq_quota_next_reset(q.period, q.time_zone, t.now) "
        "AT TIME ZONE q.time_zone, 'YYYY-MM-DD HH24:MI') || ' ' || "
        "q.time_zone END AS quota_resets "
        "FROM k CROSS JOIN t "
        "LEFT JOIN provider_overrides o ON o.provider = k.provider "
        "AND o.key_id = k.key_id "
        "LEFT JOIN provider_key_state ks ON ks.provider = k.provider "
        "AND ks.key_id = k.key_id "
        "LEFT JOIN provider_quota q ON q.provider = k.provider "
        "AND q.key_id = k.key_id "
        "ORDER BY k.provider, k.key_id, q.unit";

static int provider_list(PGconn *conn, const void *args)
{
        const struct provider_args *a = args;

        return subcmd_print_rows(&provider_spec, conn, list_sql, a->format);
}

static int provider_disable(PGconn *conn, const void *args)
{
        const struct provider_args *a = args;
        char who[700];

        if (run_simple(conn,
                       "INSERT INTO provider_overrides (provider, key_id, "
                       "enabled, reason) VALUES ($1, $2, false, $3) "
                       "ON CONFLICT (provider, key_id) DO UPDATE "
                       "SET enabled = false, reason = EXCLUDED.reason, "
                       "updated_at = now()",
                       a, a->reason))
                return 1;
        printf("%s: disabled%s%s%s" OBEY "\n",
               target(a, who, sizeof(who)), a->reason ? " (reason: " : "",
               a->reason ? a->reason : "", a->reason ? ")" : "");
        return 0;
}

/* enabled back to NULL (as configured), the row deleted if that leaves
 * it empty, and the key's provider_key_state row deleted.  Columns:
 * overrides changed, the worker's disable reason it cleared (or NULL),
 * the provider's keys still disabled by a worker (without --key). */
static const char enable_sql[] =
        "WITH u AS (UPDATE provider_overrides SET enabled = NULL, "
        "reason = NULL, updated_at = now() WHERE provider = $1 "
        "AND key_id = $2 AND enabled IS NOT NULL AND priority IS NOT NULL "
        "RETURNING 1), "
        "d AS (DELETE FROM provider_overrides WHERE provider = $1 "
        "AND key_id = $2 AND priority IS NULL RETURNING enabled), "
        "ks AS (DELETE FROM provider_key_state WHERE provider = $1 "
        "AND key_id = $2 RETURNING disabled_reason) "
        "SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM d "
        "WHERE enabled IS NOT NULL), (SELECT disabled_reason FROM ks), "
        "(SELECT string_agg(key_id, ', ' ORDER BY key_id) "
        "FROM provider_key_state WHERE provider = $1 AND $2 = '' "
        "AND key_id <> '')";

static int provider_enable(PGconn *conn, const void *args)
{
        const struct provider_args *a = args;
        const char *params[2] = {a->w.pos[0], a->key ? a->key : ""};
        PGresult *r = run(conn, enable_sql, 2, params);
        char who[700];
        int changed, cleared;

        if (!r)
                return 1;
        changed = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
        cleared = !PQgetisnull(r, 0, 1);
        target(a, who, sizeof(who));
        if (!changed && !cleared)
                printf("%s: was not disabled; nothing changed\n", who);
        else
                printf("%s: enabled (as configured%s%s)" OBEY "\n", who,
                       cleared ? "; cleared a worker's disable: " : "",
                       cleared ? PQgetvalue(r, 0, 1) : "");
        if (!PQgetisnull(r, 0, 2))
                printf("note: keys still disabled by a worker: %s (genq "
                       "provider enable %s --key KEY_ID)\n",
                       PQgetvalue(r, 0, 2), a->w.pos[0]);
        PQclear(r);
        return 0;
}

/* Clearing: priority back to NULL, the row deleted if that leaves it
 * empty.  One column: how many rows had a priority. */
static const char priority_clear_sql[] =
        "WITH u AS (UPDATE provider_overrides SET priority = NULL, "
        "updated_at = now() WHERE provider = $1 AND key_id = $2 "
        "AND priority IS NOT NULL AND enabled IS NOT NULL RETURNING 1), "
        "d AS (DELETE FROM provider_overrides WHERE provider = $1 "
        "AND key_id = $2 AND enabled IS NULL RETURNING priority) "
        "SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM d "
        "WHERE priority IS NOT NULL)";

static int priority_clear(PGconn *conn, const struct provider_args *a)
{
        const char *params[2] = {a->w.pos[0], a->key ? a->key : ""};
        PGresult *r = run(conn, priority_clear_sql, 2, params);
        char who[700];

        if (!r)
                return 1;
        target(a, who, sizeof(who));
        if (strcmp(PQgetvalue(r, 0, 0), "0"))
                printf("%s: priority cleared (configured order)" OBEY "\n",
                       who);
        else
                printf("%s: had no priority; nothing changed\n", who);
        PQclear(r);
        return 0;
}

static int provider_priority(PGconn *conn, const void *args)
{
        const struct provider_args *a = args;
        char n[24], who[700];

        if (a->clear)
                return priority_clear(conn, a);
        /* The parsed value, so "+05" is stored and shown as 5. */
        snprintf(n, sizeof(n), "%ld", a->priority);
        if (run_simple(conn,
                       "INSERT INTO provider_overrides (provider, key_id, "
                       "priority) VALUES ($1, $2, $3::int) "
                       "ON CONFLICT (provider, key_id) DO UPDATE "
                       "SET priority = EXCLUDED.priority, "
                       "updated_at = now()",
                       a, n))
                return 1;
        printf("%s: priority %s (lower is tried first)" OBEY "\n",
               target(a, who, sizeof(who)), n);
        return 0;
}

/* used = 0 only: genq_admit compares period_start with the current
 * period itself, so the row stays consistent whatever its period. */
static int provider_quota(PGconn *conn, const void *args)
{
        const struct provider_args *a = args;
        const char *params[3] = {a->w.pos[0], a->key ? a->key : "", a->unit};
        PGresult *r = run(conn,
                          "UPDATE provider_quota SET used = 0, "
                          "updated_at = now() WHERE provider = $1 "
                          "AND key_id = $2 AND ($3::text IS NULL OR "
                          "unit = $3) RETURNING unit, "
                          "trim_scale(quota_limit), period",
                          3, params);
        char who[700];
        int n;

        if (!r)
                return 1;
        target(a, who, sizeof(who));
        n = PQntuples(r);
        if (n == 0)
                fprintf(stderr, "genq provider: %s has no free quota%s%s "
                                "(see genq provider list)\n",
                        who, a->unit ? " in " : "", a->unit ? a->unit : "");
        for (int i = 0; i < n; i++)
                printf("%s: quota reset to 0 of %s %s (per %s)" OBEY "\n",
                       who, PQgetvalue(r, i, 1), PQgetvalue(r, i, 0),
                       PQgetvalue(r, i, 2));
        PQclear(r);
        return n ? 0 : 1;
}

/* ---- command --------------------------------------------------------- */

/* A typo would steer nothing, silently: say so when the configuration
 * lists providers and NAME is not one of them.  Only a warning: the
 * database may serve workers with other configurations. */
static void warn_unknown(conf_t *c, const void *args)
{
        const struct provider_args *a = args;
        const char *names[CONF_PROVIDERS_MAX];
        size_t n;

        if (a->w.npos == 0)
                return; /* list: no NAME */
        n = conf_children(c, "providers.", names, CONF_PROVIDERS_MAX);
        for (size_t i = 0; i < n; i++)
                if (!strcmp(names[i], a->w.pos[0]))
                        return;
        if (n > 0)
                fprintf(stderr, "genq provider: warning: no provider \"%s\" "
                                "in the configuration\n", a->w.pos[0]);
}

int cmd_provider(int argc, char **argv)
{
        struct provider_args a = {0};

        return subcmd_main(&provider_spec, argc, argv, &a);
}
