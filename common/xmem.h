/**
 * @file xmem.h
 * @brief Allocation wrappers: out of memory is fatal (STYLE rule 12), so no
 *        caller carries an untested NULL path.
 */
#ifndef GENQ_XMEM_H
#define GENQ_XMEM_H

#include <stddef.h>

/** @brief malloc that aborts with a message on failure. */
void *xmalloc(size_t n);
/** @brief calloc that aborts with a message on failure. */
void *xcalloc(size_t nmemb, size_t size);
/** @brief realloc that aborts with a message on failure. */
void *xrealloc(void *p, size_t n);
/** @brief strdup that aborts on failure; NULL in, NULL out. */
char *xstrdup(const char *s);
/** @brief strndup that aborts on failure. */
char *xstrndup(const char *s, size_t n);
/** @brief Print "genq: fatal: ..." to stderr and abort(). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
