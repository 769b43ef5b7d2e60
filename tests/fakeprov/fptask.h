/**
 * @file fptask.h
 * @brief Fake async provider tasks (video, async image and stt): a shared
 *        store every async family uses, so lifecycles behave alike.
 *
 * A task is created by a family's submit handler and advances one step
 * per poll: a family maps fptask.polls to its own state words (KIE
 * waiting -> queuing -> generating -> success|fail; SiliconFlow InQueue
 * -> InProgress -> Succeed|Failed; ...).  Its fate is fixed at creation,
 * steered by the test through the job's prompt text or a header:
 *
 *   prompt contains "[fail]"            -> ends in failure (provider 5xx-ish)
 *   prompt contains "[fail:CODE:MSG]"   -> failure with that code/message
 *                                          (e.g. "[fail:422:content policy]")
 *   prompt contains "[never]"           -> never finishes
 *   prompt contains "[steps:N]"         -> N polls before the end (default 3)
 *   prompt contains "[after:MS]"        -> the end comes MS ms after submit,
 *                                          polled or not (polls before that
 *                                          see the running states; [steps]
 *                                          no longer ends it; [never] wins)
 *   header X-Fake-Task: fail|never|steps=N|after=MS  overrides the prompt
 *                                          markers
 *
 * A task may carry a callback (webhook) URL: when it reaches its terminal
 * state (the end, or a cancel) the first time anybody looks -- a poll, a
 * peek, a cancel, or fpcb's timer at created + MS for [after:MS] -- it is
 * "claimed" once and handed to fpcb (fpcb.h), which builds the body with
 * the family's fptask_cb_fn and POSTs it from its own thread.
 *
 * Thread-safe (server threads share it); ids are unique per server run.
 * Every poll time is recorded (issue: poll schedule checks).
 */
#ifndef GENQ_FPTASK_H
#define GENQ_FPTASK_H

#include <stddef.h>
#include <stdint.h>

#include "fakeprov.h"

enum fptask_fate { FPTASK_SUCCEED, FPTASK_FAIL, FPTASK_NEVER };

struct fptask;

/** Builds the callback body of a terminal task (a snapshot): malloc'ed
 *  JSON text.  Runs on fpcb's thread: it must not touch the request. */
typedef char *(fptask_cb_fn)(const struct fptask *t);

/** What a submit asks to be called back with (fptask_create_cb). */
struct fptask_cb {
        const char *url;     /**< NULL or "": no callback */
        fptask_cb_fn *body;  /**< required with a url */
        const char *header;  /**< extra "Name: value" header, or NULL */
};

/** A snapshot of a task (copied out; no pointers into the store). */
struct fptask {
        char id[80];
        char provider[64];
        enum fptask_fate fate;
        int steps;            /**< polls before the terminal state */
        int polls;            /**< polls so far, this one included */
        int done;             /**< reached its end: fate != NEVER and
                                   polls >= steps, or with [after:MS] the
                                   clock passed created + MS */
        char fail_code[16];   /**< "500" unless the prompt said otherwise */
        char fail_msg[160];
        char input[2048];     /**< the submit body (truncated), for
                                   building results (prompt, duration) */
        int64_t created_ms;
        int canceled;         /**< canceled before its end */
        int cancels;          /**< cancel requests answered for it */
        int64_t after_ms;     /**< [after:MS], or -1 */
        char host[128];       /**< Host header of the submit */
        char cb_url[512];     /**< callback URL (accepted), or "" */
        char cb_header[320];  /**< extra callback header, or "" */
        fptask_cb_fn *cb_body;
        int callbacks;        /**< callback attempts made so far */
};

/**
 * @brief Create a task for the calling provider.
 * @param id_prefix e.g. "task_google_" (KIE) or "" (uuid-like).
 * @param prompt the text whose markers decide the fate (may be NULL).
 * @param out filled with the new task.
 */
void fptask_create(const struct fp_call *call, const char *id_prefix,
                   const char *prompt, struct fptask *out);

/** @brief fptask_create() with a callback (\p cb may be NULL).  A URL
 *         that is not http://127.0.0.1 or http://localhost is refused
 *         (logged, recorded by fpcb as attempt 0) and the task gets none. */
void fptask_create_cb(const struct fp_call *call, const char *id_prefix,
                      const char *prompt, const struct fptask_cb *cb,
                      struct fptask *out);

/**
 * @brief Count one poll of task \p id of the calling provider and copy it
 *        out.  @returns 0, or -1 if no such task (unknown or other
 *        provider's).
 */
int fptask_poll(const struct fp_call *call, const char *id,
                struct fptask *out);

/** @brief Look without counting a poll.  @returns 0 or -1. */
int fptask_peek(const struct fp_call *call, const char *id,
                struct fptask *out);

/** @brief Cancel: marks the task canceled unless it already reached its
 *         end (then it stays as it is), and counts the request.
 *         @returns 0 or -1 if unknown. */
int fptask_cancel(const struct fp_call *call, const char *id);

/** @brief For fpcb's timer: claim the callback of task \p id if it is
 *         terminal now.  @returns 1 (claimed, \p out filled), 0 (not
 *         terminal yet: ask again later) or -1 (gone, no callback, or
 *         already claimed). */
int fptask_settle(const char *provider, const char *id, struct fptask *out);

/** @brief Count one callback attempt of task \p id (if it still exists). */
void fptask_note_callback(const char *provider, const char *id);

/** @brief Forget every task (POST /_fake/reset). */
void fptask_reset(void);

/** @brief Tasks created for \p provider so far (submits), for tests. */
size_t fptask_count(const char *provider);

/** @brief JSON array of the poll times (ms) of task \p id, for
 *         GET /_fake/<p>/tasks; caller frees (json_decref). */
json_t *fptask_dump(const char *provider);

#endif
