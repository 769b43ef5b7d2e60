/**
 * @file cbrecv.h
 * @brief The provider callback receiver: a small HTTP server (its own
 *        thread, libmicrohttpd) that verifies callbacks and stores them
 *        in Postgres for the worker holding the job.
 *
 * A callback URL is `<public_url>/cb/<provider>/<job_id>/<token>` where
 * token = the first 32 hex digits of HMAC-SHA256(secret,
 * "<provider>|<job_id>").  Only genq and the provider it gave the URL to
 * know it, so a verified callback is the provider's word.  Providers do
 * not sign callbacks in a documented way (reference, KIE: "details
 * unconfirmed"), hence the token in the URL.
 *
 * A verified callback is inserted into `task_callbacks` and answered 200
 * after the commit; a database failure answers 503 so the provider retries.
 * The worker holding the job's lease claims and applies it (engine.c): the
 * receiver never touches the job itself, so any worker's receiver serves
 * every job.
 */
#ifndef GENQ_CBRECV_H
#define GENQ_CBRECV_H

#include <stddef.h>

typedef struct cbrecv_s cbrecv_t;

#define CBRECV_TOKEN_LEN 32
#define CBRECV_MAX_BODY (1024 * 1024)

/**
 * @brief Listen on \p listen ("HOST:PORT", IPv4 or a name) and store
 *        verified callbacks through a connection to \p dsn.
 * @returns the receiver or NULL with errstr.
 */
cbrecv_t *cbrecv_new(const char *listen, const char *dsn,
                     const char *secret, char *errstr, size_t errstr_size);

/** @brief Stop the server thread and free everything.  NULL-safe. */
void cbrecv_destroy(cbrecv_t *cr);

/** @brief The port actually listened on (for "HOST:0"). */
unsigned cbrecv_port(const cbrecv_t *cr);

/** @brief \p out = the token of \p provider and \p job_id (NUL-ended). */
void cbrecv_token(const char *secret, const char *provider,
                  const char *job_id, char out[CBRECV_TOKEN_LEN + 1]);

/**
 * @brief Write the callback URL of \p provider and \p job_id under
 *        \p public_url into \p buf.  @returns 0, or -1 if it does not fit.
 */
int cbrecv_url(char *buf, size_t size, const char *public_url,
               const char *secret, const char *provider,
               const char *job_id);

#endif
