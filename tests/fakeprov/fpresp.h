/**
 * @file fpresp.h
 * @brief A response under construction: status, content type, extra
 *        headers and body, independent of the HTTP library.
 *
 * Value type: embed it, fpresp_init() it, fpresp_clear() it.  Every string
 * in it is owned by it.  Setting a part again replaces (and frees) the old
 * one, so a script step can override what a handler produced.
 */
#ifndef GENQ_FPRESP_H
#define GENQ_FPRESP_H

#include <jansson.h>
#include <stddef.h>

#define FPRESP_MAX_HDRS 16

struct fp_hdr {
        char *name;   /**< owned */
        char *value;  /**< owned */
};

struct fp_resp {
        unsigned status;            /**< HTTP status, 0 = not set yet */
        char *content_type;         /**< owned; NULL = application/json */
        char *body;                 /**< owned (malloc), may be NULL */
        size_t body_len;            /**< bytes in body */
        size_t body_cap;            /**< allocated for body, for appends */
        struct fp_hdr hdrs[FPRESP_MAX_HDRS]; /**< extra headers */
        size_t nhdrs;               /**< used entries of hdrs */
};

/** @brief Make \p r empty.  Cannot fail. */
void fpresp_init(struct fp_resp *r);

/** @brief Free everything \p r owns and make it empty again. */
void fpresp_clear(struct fp_resp *r);

/** @brief Set status and a copy of \p body (\p len bytes). */
void fpresp_set(struct fp_resp *r, unsigned status, const char *body,
                size_t len);

/** @brief Set status and a body already malloc'ed.
 *  @remark takes ownership of \p body. */
void fpresp_set_owned(struct fp_resp *r, unsigned status, char *body,
                      size_t len);

/** @brief Set status and the serialisation of \p j (json_dumps \p flags).
 *  @remark takes ownership of (one reference to) \p j. */
void fpresp_json(struct fp_resp *r, unsigned status, json_t *j,
                 size_t flags);

/** @brief Append \p len bytes to the body (SSE streams); keeps the
 *         status.  The body stays NUL-terminated. */
void fpresp_append(struct fp_resp *r, const char *s, size_t len);

/** @brief Set the Content-Type (a copy of \p ctype). */
void fpresp_content_type(struct fp_resp *r, const char *ctype);

/** @brief Add or replace (case-insensitive) a header; Content-Type is
 *         routed to fpresp_content_type().  Extra headers beyond
 *         FPRESP_MAX_HDRS are dropped. */
void fpresp_header(struct fp_resp *r, const char *name, const char *value);

/** @brief Cut the body to its first half (a "truncated" fault). */
void fpresp_truncate(struct fp_resp *r);

#endif
