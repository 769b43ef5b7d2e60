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
 *   header X-Fake-Task: fail|never|steps=N  overrides the prompt markers
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

/** A snapshot of a task (copied out; no pointers into the store). */
struct fptask {
        char id[80];
        char provider[64];
        enum fptask_fate fate;
        int steps;            /**< polls before the terminal state */
        int polls;            /**< polls so far, this one included */
        int done;             /**< polls >= steps and fate != NEVER */
        char fail_code[16];   /**< "500" unless the prompt said otherwise */
        char fail_msg[160];
        char input[2048];     /**< the submit body (truncated), for
                                   building results (prompt, duration) */
        int64_t created_ms;
        int canceled;
};

/**
 * @brief Create a task for the calling provider.
 * @param id_prefix e.g. "task_google_" (KIE) or "" (uuid-like).
 * @param prompt the text whose markers decide the fate (may be NULL).
 * @param out filled with the new task.
 */
void fptask_create(const struct fp_call *call, const char *id_prefix,
                   const char *prompt, struct fptask *out);

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

/** @brief Mark canceled.  @returns 0 or -1 if unknown. */
int fptask_cancel(const struct fp_call *call, const char *id);

/** @brief Forget every task (POST /_fake/reset). */
void fptask_reset(void);

/** @brief Tasks created for \p provider so far (submits), for tests. */
size_t fptask_count(const char *provider);

/** @brief JSON array of the poll times (ms) of task \p id, for
 *         GET /_fake/<p>/tasks; caller frees (json_decref). */
json_t *fptask_dump(const char *provider);

#endif
