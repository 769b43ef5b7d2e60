/* Allocation wrappers; see xmem.h. */
#include "xmem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fatal(const char *fmt, ...)
{
        va_list ap;

        fputs("genq: fatal: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        abort();
}

void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);

        if (!p)
                fatal("out of memory allocating %zu bytes", n);
        return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
        void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

        if (!p)
                fatal("out of memory allocating %zu x %zu bytes", nmemb, size);
        return p;
}

void *xrealloc(void *p, size_t n)
{
        void *q = realloc(p, n ? n : 1);

        if (!q)
                fatal("out of memory reallocating to %zu bytes", n);
        return q;
}

char *xstrdup(const char *s)
{
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                fatal("out of memory duplicating a string");
        return d;
}

char *xstrndup(const char *s, size_t n)
{
        char *d = strndup(s, n);

        if (!d)
                fatal("out of memory duplicating a string");
        return d;
}
