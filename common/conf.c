/*
 * conf: YAML flattened to dotted keys, then bound to structs by tables.
 *
 * DESIGN
 * Flattening first keeps the binders trivial and lets every error name the
 * exact file and line: each key/value pair carries where it came from.  A
 * key nobody binds is an error (a typo must not silently fall back to a
 * default), except under prefixes handed to conf_each_unused, which pass
 * straight through to librdkafka.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "xmem.h"

struct kv {
        char *key;
        char *val;
        char *where;  /**< "file:line", "env NAME" or "-X" */
        int bound;    /**< taken by conf_bind/conf_get */
        int used;     /**< bound, or handed to a passthrough */
};

struct conf_s {
        struct kv *kv;
        size_t n, cap;
        char **names;     /**< strings handed out by conf_children */
        size_t n_names;
};

#define MAX_DEPTH 16

conf_t *conf_new(void)
{
        return xcalloc(1, sizeof(conf_t));
}

void conf_destroy(conf_t *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++) {
                free(c->kv[i].key);
                free(c->kv[i].val);
                free(c->kv[i].where);
        }
        for (size_t i = 0; i < c->n_names; i++)
                free(c->names[i]);
        free(c->names);
        free(c->kv);
        free(c);
}

static struct kv *find(conf_t *c, const char *key)
{
        for (size_t i = 0; i < c->n; i++)
                if (!strcmp(c->kv[i].key, key))
                        return &c->kv[i];
        return NULL;
}

/* Set or replace; later sources override earlier ones. */
static void put(conf_t *c, const char *key, const char *val, const char *where)
{
        struct kv *kv = find(c, key);

        if (!kv) {
                if (c->n == c->cap) {
                        c->cap = c->cap ? c->cap * 2 : 32;
                        c->kv = xrealloc(c->kv, c->cap * sizeof(*c->kv));
                }
                kv = &c->kv[c->n++];
                kv->key = xstrdup(key);
                kv->val = NULL;
                kv->where = NULL;
                kv->used = 0;
                kv->bound = 0;
        }
        free(kv->val);
        free(kv->where);
        kv->val = xstrdup(val);
        kv->where = xstrdup(where);
}

/* ---- YAML -------------------------------------------------------------- */

struct yctx {
        conf_t *c;
        const char *path;
        char *stack[MAX_DEPTH];   /**< key at each mapping level */
        int depth;                /**< mapping nesting */
        int want_key;             /**< next scalar in this mapping is a key */
        char seqbuf[8192];        /**< scalars of the current sequence */
        int in_seq;
        int seq_line;
        char *errstr;
        size_t errstr_size;
};

static void full_key(struct yctx *y, char *out, size_t outsz)
{
        size_t o = 0;

        out[0] = '\0';
        for (int i = 0; i < y->depth && y->stack[i]; i++)
                o += (size_t)snprintf(out + o, o < outsz ? outsz - o : 0,
                                      "%s%s", i ? "." : "", y->stack[i]);
}

static int yerr(struct yctx *y, int line, const char *msg)
{
        snprintf(y->errstr, y->errstr_size, "%s:%d: %s", y->path, line, msg);
        return -1;
}

static int on_scalar(struct yctx *y, const char *s, int line)
{
        char key[1024], where[1100];

        if (y->in_seq) {
                size_t l = strlen(y->seqbuf);

                if (l + strlen(s) + 2 >= sizeof(y->seqbuf))
                        return yerr(y, line, "list is too long");
                snprintf(y->seqbuf + l, sizeof(y->seqbuf) - l, "%s%s",
                         l ? "," : "", s);
                return 0;
        }
        if (y->depth == 0)
                return yerr(y, line, "expected a mapping of keys");
        if (y->want_key) {
                char *seg;

                if (!*s)
                        return yerr(y, line, "keys must be non-empty");
                /* A '.' inside a key (a model name such as "gpt-4.1") must
                 * not split the dotted path: keep it as CONF_DOT. */
                seg = xstrdup(s);
                for (char *d = seg; *d; d++)
                        if (*d == '.')
                                *d = CONF_DOT;
                free(y->stack[y->depth - 1]);
                y->stack[y->depth - 1] = seg;
                y->want_key = 0;
                return 0;
        }
        full_key(y, key, sizeof(key));
        if (find(y->c, key))
                return yerr(y, line, "duplicate key");
        snprintf(where, sizeof(where), "%s:%d", y->path, line);
        put(y->c, key, s, where);
        y->want_key = 1;
        return 0;
}

static int on_event(struct yctx *y, const yaml_event_t *ev)
{
        int line = (int)ev->start_mark.line + 1;
        char key[1024], where[1100];

        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                return on_scalar(y, (const char *)ev->data.scalar.value, line);
        case YAML_MAPPING_START_EVENT:
                if (y->in_seq)
                        return yerr(y, line, "a list may only hold plain "
                                             "values; use a mapping keyed by "
                                             "name instead");
                if (y->depth > 0 && y->want_key)
                        return yerr(y, line, "a mapping cannot be a key");
                if (y->depth >= MAX_DEPTH)
                        return yerr(y, line, "nested too deeply");
                y->stack[y->depth++] = NULL;
                y->want_key = 1;
                return 0;
        case YAML_MAPPING_END_EVENT:
                free(y->stack[--y->depth]);
                y->stack[y->depth] = NULL;
                y->want_key = 1;
                return 0;
        case YAML_SEQUENCE_START_EVENT:
                if (y->in_seq || y->depth == 0 || y->want_key)
                        return yerr(y, line, "unexpected list");
                y->in_seq = 1;
                y->seq_line = line;
                y->seqbuf[0] = '\0';
                return 0;
        case YAML_SEQUENCE_END_EVENT:
                y->in_seq = 0;
                full_key(y, key, sizeof(key));
                if (find(y->c, key))
                        return yerr(y, y->seq_line, "duplicate key");
                snprintf(where, sizeof(where), "%s:%d", y->path, y->seq_line);
                put(y->c, key, y->seqbuf, where);
                y->want_key = 1;
                return 0;
        case YAML_ALIAS_EVENT:
                return yerr(y, line, "YAML aliases are not supported");
        default:
                return 0;
        }
}

static int parse_stream(yaml_parser_t *p, struct yctx *y)
{
        yaml_event_t ev;
        int done = 0, rc = 0;

        while (!done && rc == 0) {
                if (!yaml_parser_parse(p, &ev)) {
                        snprintf(y->errstr, y->errstr_size, "%s:%d: %s",
                                 y->path, (int)p->problem_mark.line + 1,
                                 p->problem ? p->problem : "YAML syntax error");
                        return -1;
                }
                done = ev.type == YAML_STREAM_END_EVENT;
                rc = on_event(y, &ev);
                yaml_event_delete(&ev);
        }
        return rc;
}

int conf_load_into(conf_t *c, const char *path, char *errstr,
                   size_t errstr_size)
{
        struct yctx y = {.path = path, .errstr = errstr,
                         .errstr_size = errstr_size};
        yaml_parser_t parser;
        FILE *fp = fopen(path, "r");
        int rc;

        if (!fp) {
                snprintf(errstr, errstr_size, "%s: cannot open: %s", path,
                         strerror(errno));
                return -1;
        }
        /* A later file overrides an earlier one: parse into a fresh conf
         * (duplicates are errors only within one file), then layer. */
        y.c = conf_new();
        yaml_parser_initialize(&parser);
        yaml_parser_set_input_file(&parser, fp);
        rc = parse_stream(&parser, &y);
        yaml_parser_delete(&parser);
        fclose(fp);
        for (int i = 0; i < MAX_DEPTH; i++)
                free(y.stack[i]);
        for (size_t i = 0; rc == 0 && i < y.c->n; i++)
                put(c, y.c->kv[i].key, y.c->kv[i].val, y.c->kv[i].where);
        conf_destroy(y.c);
        return rc;
}

conf_t *conf_load(const char *path, char *errstr, size_t errstr_size)
{
        conf_t *c = conf_new();

        if (conf_load_into(c, path, errstr, errstr_size)) {
                conf_destroy(c);
                return NULL;
        }
        return c;
}

int conf_set_arg(conf_t *c, const char *kv, char *errstr, size_t errstr_size)
{
        const char *eq = strchr(kv, '=');
        char *key;

        if (!eq || eq == kv) {
                snprintf(errstr, errstr_size,
                         "-X %s: expected key=value", kv);
                return -1;
        }
        key = xstrndup(kv, (size_t)(eq - kv));
        put(c, key, eq + 1, "-X");
        free(key);
        return 0;
}

/* ---- binding ----------------------------------------------------------- */

static void env_name(const char *key, char *out, size_t outsz)
{
        size_t o = (size_t)snprintf(out, outsz, "GENQ_");

        for (; *key && o + 1 < outsz; key++)
                out[o++] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
        out[o] = '\0';
}

static int parse_bool(const char *s, int *out)
{
        static const char *t[] = {"true", "yes", "on", "1"};
        static const char *f[] = {"false", "no", "off", "0"};

        for (size_t i = 0; i < 4; i++) {
                if (!strcasecmp(s, t[i])) {
                        *out = 1;
                        return 0;
                }
                if (!strcasecmp(s, f[i])) {
                        *out = 0;
                        return 0;
                }
        }
        return -1;
}

static int range_err(const struct conf_def *d, const char *where,
                     const char *key, const char *val, char *e, size_t es)
{
        if (d->min <= d->max)
                snprintf(e, es, "%s: %s: \"%s\" is not a %s within %g..%g",
                         where, key, val,
                         d->type == CONF_INT ? "whole number" : "number",
                         d->min, d->max);
        else
                snprintf(e, es, "%s: %s: \"%s\" is not a %s", where, key, val,
                         d->type == CONF_INT ? "whole number" : "number");
        return -1;
}

static int store(const struct conf_def *d, void *base, const char *key,
                 const char *val, const char *where, char *e, size_t es)
{
        char *end;
        double dv;

        switch (d->type) {
        case CONF_STR:
                free(*(char **)((char *)base + d->offset));
                *(char **)((char *)base + d->offset) = xstrdup(val);
                return 0;
        case CONF_BOOL:
                if (parse_bool(val, (int *)((char *)base + d->offset))) {
                        snprintf(e, es, "%s: %s: \"%s\" is not true or false",
                                 where, key, val);
                        return -1;
                }
                return 0;
        case CONF_INT:
        case CONF_DOUBLE:
                errno = 0;
                dv = strtod(val, &end);
                /* INT64 bounds always apply: the cast below is undefined
                 * outside them, whatever the table's range says. */
                if (errno || end == val || *end || !isfinite(dv) ||
                    (d->type == CONF_INT &&
                     (dv != floor(dv) || dv < -9.2e18 || dv > 9.2e18)) ||
                    (d->min <= d->max && (dv < d->min || dv > d->max)))
                        return range_err(d, where, key, val, e, es);
                if (d->type == CONF_INT)
                        *(int64_t *)((char *)base + d->offset) = (int64_t)dv;
                else
                        *(double *)((char *)base + d->offset) = dv;
                return 0;
        default:
                return -1;
        }
}

static int bind_one(conf_t *c, const char *prefix, const struct conf_def *d,
                    void *base, char *e, size_t es)
{
        char key[512], env[600], where[700];
        const char *ev;
        struct kv *kv;

        snprintf(key, sizeof(key), "%s%s", prefix, d->name);
        if (d->defval && store(d, base, key, d->defval, "default", e, es))
                return -1;
        kv = find(c, key);
        env_name(key, env, sizeof(env));
        ev = getenv(env);
        /* -X beats the environment, which beats the file. */
        if (kv)
                kv->bound = 1;
        if (kv && !strcmp(kv->where, "-X")) {
                kv->used = 1;
                return store(d, base, key, kv->val, kv->where, e, es);
        }
        if (ev) {
                if (kv)
                        kv->used = 1;
                snprintf(where, sizeof(where), "environment %s", env);
                return store(d, base, key, ev, where, e, es);
        }
        if (kv) {
                kv->used = 1;
                return store(d, base, key, kv->val, kv->where, e, es);
        }
        return 0;
}

int conf_bind(conf_t *c, const char *prefix, const struct conf_def *defs,
              void *base, char *errstr, size_t errstr_size)
{
        for (const struct conf_def *d = defs; d->type != CONF_END; d++)
                if (bind_one(c, prefix, d, base, errstr, errstr_size))
                        return -1;
        return 0;
}

void conf_free_struct(const struct conf_def *defs, void *base)
{
        for (const struct conf_def *d = defs; d->type != CONF_END; d++) {
                if (d->type != CONF_STR)
                        continue;
                free(*(char **)((char *)base + d->offset));
                *(char **)((char *)base + d->offset) = NULL;
        }
}

size_t conf_children(conf_t *c, const char *prefix, const char **names,
                     size_t max)
{
        size_t pl = strlen(prefix), n = 0;

        for (size_t i = 0; i < c->n; i++) {
                const char *k = c->kv[i].key;
                size_t seg, j;

                if (strncmp(k, prefix, pl))
                        continue;
                seg = strcspn(k + pl, ".");
                for (j = 0; j < n; j++)
                        if (strlen(names[j]) == seg &&
                            !strncmp(names[j], k + pl, seg))
                                break;
                if (j < n || n == max)
                        continue;
                /* Keys are not cut at the dot, so hand out copies that the
                 * conf owns until conf_destroy. */
                c->names = xrealloc(c->names,
                                    (c->n_names + 1) * sizeof(*c->names));
                c->names[c->n_names] = xstrndup(k + pl, seg);
                names[n++] = c->names[c->n_names++];
        }
        return n;
}

const char *conf_get(conf_t *c, const char *key)
{
        struct kv *kv = find(c, key);

        if (!kv)
                return NULL;
        kv->used = kv->bound = 1;
        return kv->val;
}

const char *conf_origin(conf_t *c, const char *key)
{
        struct kv *kv = find(c, key);
        char prefix[512];
        char *dot;

        if (kv)
                return kv->where;
        /* A missing key: the place of its nearest enclosing section, so
         * "providers.x.price.input_usd: required" still names a line. */
        snprintf(prefix, sizeof(prefix), "%s", key);
        while ((dot = strrchr(prefix, '.'))) {
                size_t n;

                dot[1] = '\0';
                n = strlen(prefix);
                for (size_t i = 0; i < c->n; i++)
                        if (!strncmp(c->kv[i].key, prefix, n))
                                return c->kv[i].where;
                dot[0] = '\0';
        }
        return NULL;
}

int conf_each_unused(conf_t *c, const char *prefix,
                     int (*cb)(void *opaque, const char *key_rest,
                               const char *val, const char *where,
                               char *errstr, size_t errstr_size),
                     void *opaque, char *errstr, size_t errstr_size)
{
        size_t pl = strlen(prefix);

        for (size_t i = 0; i < c->n; i++) {
                struct kv *kv = &c->kv[i];
                int rc;

                if (kv->bound || strncmp(kv->key, prefix, pl))
                        continue;
                kv->used = 1;
                rc = cb(opaque, kv->key + pl, kv->val, kv->where, errstr,
                        errstr_size);
                if (rc)
                        return rc;
        }
        return 0;
}

int conf_check_unused(conf_t *c, char *errstr, size_t errstr_size)
{
        for (size_t i = 0; i < c->n; i++) {
                char key[512];

                if (c->kv[i].used)
                        continue;
                snprintf(key, sizeof(key), "%s", c->kv[i].key);
                conf_unescape(key);
                snprintf(errstr, errstr_size, "%s: unknown key \"%s\"",
                         c->kv[i].where, key);
                return -1;
        }
        return 0;
}

char *conf_unescape(char *s)
{
        for (char *d = s; *d; d++)
                if (*d == CONF_DOT)
                        *d = '.';
        return s;
}

void conf_write_docs(const char *section, const struct conf_def *defs,
                     void *fpv)
{
        static const char *tn[] = {"string", "integer", "number", "boolean"};
        FILE *fp = fpv;

        fprintf(fp, "\n## %s\n\n| key | type | default | range | "
                    "reloadable | description |\n|---|---|---|---|---|---|\n",
                section);
        for (const struct conf_def *d = defs; d->type != CONF_END; d++) {
                fprintf(fp, "| `%s` | %s | %s | ", d->name, tn[d->type],
                        d->defval ? d->defval : "");
                if (d->min <= d->max)
                        fprintf(fp, "%g..%g", d->min, d->max);
                fprintf(fp, " | %s | %s |\n", d->reloadable ? "yes" : "no",
                        d->desc);
        }
}
