/* One scripted fault step; see fpstep.h. */
#include "fpstep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

typedef int(member_fn)(struct fp_step *s, const json_t *v,
                       const struct fp_family *fam, char *errstr,
                       size_t errstr_size);

static int bad(char *errstr, size_t errstr_size, const char *member,
               const char *want)
{
        snprintf(errstr, errstr_size, "step member \"%s\" must be %s", member,
                 want);
        return -1;
}

static int m_status(struct fp_step *s, const json_t *v,
                    const struct fp_family *fam, char *errstr,
                    size_t errstr_size)
{
        json_int_t st = json_integer_value(v);

        if (!json_is_integer(v) || st < 100 || st > 599)
                return bad(errstr, errstr_size, "status", "an int 100..599");
        s->status = (unsigned)st;
        return 0;
}

static int m_body(struct fp_step *s, const json_t *v,
                  const struct fp_family *fam, char *errstr,
                  size_t errstr_size)
{
        if (!json_is_string(v))
                return bad(errstr, errstr_size, "body", "a string");
        s->body_len = json_string_length(v);
        s->body = xmalloc(s->body_len + 1);
        memcpy(s->body, json_string_value(v), s->body_len + 1);
        return 0;
}

static int m_content_type(struct fp_step *s, const json_t *v,
                          const struct fp_family *fam, char *errstr,
                          size_t errstr_size)
{
        if (!json_is_string(v))
                return bad(errstr, errstr_size, "content_type", "a string");
        s->content_type = xstrdup(json_string_value(v));
        return 0;
}

/* Header values may be given as strings or as integers ("retry-after":2). */
static int add_header(struct fp_step *s, const char *name, const json_t *v)
{
        char num[32];
        const char *val;

        if (json_is_string(v)) {
                val = json_string_value(v);
        } else if (json_is_integer(v)) {
                snprintf(num, sizeof(num), "%lld",
                         (long long)json_integer_value(v));
                val = num;
        } else {
                return -1;
        }
        if (!*name || strpbrk(name, ":\r\n ") || strpbrk(val, "\r\n"))
                return -1;
        s->hdrs[s->nhdrs].name = xstrdup(name);
        s->hdrs[s->nhdrs].value = xstrdup(val);
        s->nhdrs++;
        return 0;
}

static int m_headers(struct fp_step *s, const json_t *v,
                     const struct fp_family *fam, char *errstr,
                     size_t errstr_size)
{
        const char *name;
        json_t *hv;

        if (!json_is_object(v) || json_object_size(v) > FPSTEP_MAX_HDRS)
                return bad(errstr, errstr_size, "headers",
                           "an object of at most 8 headers");
        json_object_foreach ((json_t *)v, name, hv) {
                if (add_header(s, name, hv) == -1)
                        return bad(errstr, errstr_size, "headers",
                                   "{name: string or int} without CR/LF");
        }
        return 0;
}

static int m_latency(struct fp_step *s, const json_t *v,
                     const struct fp_family *fam, char *errstr,
                     size_t errstr_size)
{
        json_int_t ms = json_integer_value(v);

        if (!json_is_integer(v) || ms < 0 || ms > FPSTEP_MAX_LATENCY_MS)
                return bad(errstr, errstr_size, "latency_ms",
                           "an int 0..3600000");
        s->latency_ms = ms;
        return 0;
}

static int flag(int *dst, const json_t *v, const char *member, char *errstr,
                size_t errstr_size)
{
        if (!json_is_boolean(v))
                return bad(errstr, errstr_size, member, "a boolean");
        *dst = json_is_true(v);
        return 0;
}

static int m_hang(struct fp_step *s, const json_t *v,
                  const struct fp_family *fam, char *errstr,
                  size_t errstr_size)
{
        return flag(&s->hang, v, "hang", errstr, errstr_size);
}

static int m_malformed(struct fp_step *s, const json_t *v,
                       const struct fp_family *fam, char *errstr,
                       size_t errstr_size)
{
        return flag(&s->malformed, v, "malformed", errstr, errstr_size);
}

static int m_truncate(struct fp_step *s, const json_t *v,
                      const struct fp_family *fam, char *errstr,
                      size_t errstr_size)
{
        return flag(&s->truncate, v, "truncate", errstr, errstr_size);
}

static int m_error(struct fp_step *s, const json_t *v,
                   const struct fp_family *fam, char *errstr,
                   size_t errstr_size)
{
        const struct fp_errdef *e = NULL;

        if (json_is_string(v))
                e = fakeprov_errdef_find(fam, json_string_value(v));
        if (!e) {
                snprintf(errstr, errstr_size,
                         "step member \"error\" must name a fault of "
                         "family %s",
                         fam->name);
                return -1;
        }
        s->error = e;
        return 0;
}

static const struct {
        const char *name;
        member_fn *parse;
} members[] = {
        {"status", m_status},       {"body", m_body},
        {"content_type", m_content_type}, {"headers", m_headers},
        {"latency_ms", m_latency},  {"hang", m_hang},
        {"malformed", m_malformed}, {"truncate", m_truncate},
        {"error", m_error},
};

static int parse_member(struct fp_step *s, const char *name, const json_t *v,
                        const struct fp_family *fam, char *errstr,
                        size_t errstr_size)
{
        size_t i;

        for (i = 0; i < sizeof(members) / sizeof(members[0]); i++)
                if (!strcmp(name, members[i].name))
                        return members[i].parse(s, v, fam, errstr,
                                                errstr_size);
        snprintf(errstr, errstr_size, "unknown step member \"%s\"", name);
        return -1;
}

struct fp_step *fpstep_new(const json_t *j, const struct fp_family *fam,
                           char *errstr, size_t errstr_size)
{
        struct fp_step *s;
        const char *name;
        json_t *v;

        if (!json_is_object(j)) {
                snprintf(errstr, errstr_size, "a step must be an object");
                return NULL;
        }
        s = xcalloc(1, sizeof(*s));
        atomic_init(&s->refcnt, 1);
        s->latency_ms = -1;
        json_object_foreach ((json_t *)j, name, v) {
                if (parse_member(s, name, v, fam, errstr, errstr_size) == -1)
                        goto err_free_step;
        }
        if (s->body && !s->status) {
                snprintf(errstr, errstr_size, "step \"body\" needs \"status\"");
                goto err_free_step;
        }
        return s;

err_free_step:
        fpstep_unref(s);
        return NULL;
}

struct fp_step *fpstep_ref(struct fp_step *s)
{
        atomic_fetch_add(&s->refcnt, 1);
        return s;
}

void fpstep_unref(struct fp_step *s)
{
        size_t i;

        if (!s || atomic_fetch_sub(&s->refcnt, 1) != 1)
                return;
        for (i = 0; i < s->nhdrs; i++) {
                free(s->hdrs[i].name);
                free(s->hdrs[i].value);
        }
        free(s->content_type);
        free(s->body);
        free(s);
}
