/**
 * @file fpcb.h
 * @brief Provider callbacks (webhooks) of async tasks: KIE callBackUrl,
 *        Replicate webhook, AssemblyAI webhook_url.
 *
 * DESIGN
 * One thread owns a libcurl multi handle and a list of events sorted by
 * due time (monotonic ms):
 *
 *   CHECK  a task with [after:MS] and a callback ends by the clock: at
 *          created + MS the thread asks fptask_settle() to claim it (a
 *          poll may have claimed it first: then nothing happens).
 *   SEND   a claimed task: the body is built from the task snapshot by
 *          the family's fptask_cb_fn, then POSTed (Content-Type
 *          application/json, timeout FPCB_TIMEOUT_MS).  A non-2xx answer
 *          or a transport failure is retried FPCB_RETRIES times,
 *          FPCB_RETRY_MS after the failed attempt ended.
 *
 * Nothing is ever sent from an HTTP request handler: handlers (through
 * fptask) only queue.  Every attempt is recorded ({task_id, url, status,
 * attempt, at_ms}) for GET /_fake/<p>/callbacks.  Up to FPCB_ACTIVE
 * transfers run at once.  URLs must be http://127.0.0.1[:port]/... or
 * http://localhost[:port]/... (a test fake posts nowhere else); no
 * proxies, no redirects.
 *
 * Lock order: fpcb never calls fptask while holding its lock, and fptask
 * calls fpcb only after dropping its own.
 */
#ifndef GENQ_FPCB_H
#define GENQ_FPCB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "fptask.h"

#define FPCB_TIMEOUT_MS 3000  /**< whole transfer, per attempt */
#define FPCB_RETRIES 3        /**< after the first attempt */
#define FPCB_RETRY_MS 500
#define FPCB_ACTIVE 64        /**< concurrent transfers */
#define FPCB_MAX_RECORDS 100000

/** @brief Start the thread (call before serving).  @returns 0 or -1. */
int fpcb_start(char *errstr, size_t errstr_size);

/** @brief Drop everything pending, join the thread, free.  Idempotent;
 *         later calls of fpcb_send/fpcb_at are ignored. */
void fpcb_stop(void);

/** @brief Is \p url an http URL on 127.0.0.1 or localhost? */
int fpcb_url_ok(const char *url);

/** @brief Queue the callback of claimed task \p t (copied). */
void fpcb_send(const struct fptask *t);

/** @brief At \p due_mono (fptimer_now_ms() time), try to claim task \p id
 *         of \p provider and send its callback. */
void fpcb_at(const char *provider, const char *id, int64_t due_mono);

/** @brief Record that \p url was refused (attempt 0, status 0). */
void fpcb_refused(const char *provider, const char *id, const char *url);

/** @brief Drop the records and the queued or running sends of
 *         \p provider (NULL: of all, and every pending CHECK too). */
void fpcb_reset(const char *provider);

/** @brief The recorded attempts of \p provider, oldest first. */
json_t *fpcb_dump(const char *provider);

#endif
