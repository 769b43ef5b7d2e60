/* A response under construction; see fpresp.h. */
#include "fpresp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmem.h"

void fpresp_init(struct fp_resp *r)
{
        memset(r, 0, sizeof(*r));
}

void fpresp_clear(struct fp_resp *r)
{
        size_t i;

        for (i = 0; i < r->nhdrs; i++) {
                free(r->hdrs[i].name);
                free(r->hdrs[i].value);
        }
        free(r->content_type);
        free(r->body);
        fpresp_init(r);
}

void fpresp_set_owned(struct fp_resp *r, unsigned status, char *body,
                      size_t len)
{
        free(r->body);
        r->status = status;
        r->body = body;
        r->body_len = len;
        r->body_cap = body ? len + 1 : 0;
}

void fpresp_set(struct fp_resp *r, unsigned status, const char *body,
                size_t len)
{
        char *copy = xmalloc(len + 1);

        memcpy(copy, body, len);
        copy[len] = '\0';
        fpresp_set_owned(r, status, copy, len);
}

void fpresp_json(struct fp_resp *r, unsigned status, json_t *j,
                 size_t flags)
{
        char *s = json_dumps(j, flags);

        json_decref(j);
        if (!s)
                fatal("fpresp: json_dumps failed");
        fpresp_set_owned(r, status, s, strlen(s));
}

void fpresp_append(struct fp_resp *r, const char *s, size_t len)
{
        size_t need = r->body_len + len + 1;

        if (need > r->body_cap) {
                r->body_cap = need > 2 * r->body_cap ? need : 2 * r->body_cap;
                r->body = xrealloc(r->body, r->body_cap);
        }
        memcpy(r->body + r->body_len, s, len);
        r->body_len += len;
        r->body[r->body_len] = '\0';
}

void fpresp_content_type(struct fp_resp *r, const char *ctype)
{
        free(r->content_type);
        r->content_type = xstrdup(ctype);
}

void fpresp_header(struct fp_resp *r, const char *name, const char *value)
{
        size_t i;

        if (!strcasecmp(name, "content-type")) {
                fpresp_content_type(r, value);
                return;
        }
        for (i = 0; i < r->nhdrs; i++) {
                if (!strcasecmp(r->hdrs[i].name, name)) {
                        free(r->hdrs[i].value);
                        r->hdrs[i].value = xstrdup(value);
                        return;
                }
        }
        if (r->nhdrs == FPRESP_MAX_HDRS)
                return;
        r->hdrs[r->nhdrs].name = xstrdup(name);
        r->hdrs[r->nhdrs].value = xstrdup(value);
        r->nhdrs++;
}

void fpresp_truncate(struct fp_resp *r)
{
        r->body_len /= 2;
        if (r->body)
                r->body[r->body_len] = '\0';
}
