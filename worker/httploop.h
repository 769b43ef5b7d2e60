/**
 * @file httploop.h
 * @brief The owner of the curl multi handle and every easy handle.
 *
 * Used only from the worker's event-loop thread (STYLE rule 6): the loop
 * calls httploop_run(), which waits on curl's sockets *and* the caller's
 * extra descriptors (Kafka queue, Postgres completions), drives transfers
 * and invokes each finished request's callback.  Other threads never touch
 * it; they wake the loop through their own descriptors.
 */
#ifndef GENQ_HTTPLOOP_H
#define GENQ_HTTPLOOP_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "provider.h"

typedef struct httploop_s httploop_t;

/** Called on the loop thread when a request ends, successfully or not.
 *  \p resp is borrowed for the duration of the call. */
typedef void(httploop_done_cb)(void *opaque, const struct provider_resp *resp);

/** @brief @returns the loop or NULL with errstr. */
httploop_t *httploop_new(long max_conns, char *errstr, size_t errstr_size);

/** @brief Abort every transfer (no callbacks) and free.  NULL-safe. */
void httploop_destroy(httploop_t *hl);

/**
 * @brief Start \p req.  Copies what it needs: \p req may be cleared after.
 * @param max_body response bytes kept; more ends the call as truncated.
 * @returns 0, or -1 with errstr (the callback is then never called).
 */
int httploop_send(httploop_t *hl, const struct provider_req *req,
                  long timeout_ms, size_t max_body, httploop_done_cb *cb,
                  void *opaque, char *errstr, size_t errstr_size);

/**
 * @brief Wait up to \p timeout_ms for curl or \p extra descriptors, then
 *        perform and dispatch completions.  @returns 0 or -1 (fatal).
 */
int httploop_run(httploop_t *hl, int timeout_ms, struct curl_waitfd *extra,
                 unsigned n_extra);

/**
 * @brief Where media downloads may connect: public addresses always;
 *        private ones (loopback, RFC 1918, link-local, ULA) only when in
 *        \p cidrs, a comma list such as "127.0.0.0/8,10.2.0.0/16".
 * @returns 0, or -1 with errstr for a bad CIDR.
 */
int httploop_set_media_allow(httploop_t *hl, const char *cidrs, char *errstr,
                             size_t errstr_size);

/** @brief Requests in flight. */
size_t httploop_inflight(const httploop_t *hl);

#endif
