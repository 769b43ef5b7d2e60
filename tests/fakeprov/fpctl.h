/**
 * @file fpctl.h
 * @brief The control plane under /_fake/: tests script faults, change
 *        keys and latency, read counters and recorded requests, reset.
 *
 *   POST /_fake/reset                   every provider back to start-up
 *   GET  /_fake/stats                   {"<provider>": {requests, ...}}
 *   GET  /_fake/ping                    {"ok": true}
 *   POST /_fake/<provider>/script       {"steps":[...], "loop", "append"}
 *   POST /_fake/<provider>/config       {"latency_ms", "keys"}
 *   POST /_fake/<provider>/reset        one provider back to start-up
 *   GET  /_fake/<provider>/stats        that provider's stats object
 *   GET  /_fake/<provider>/requests?last=N   recorded requests
 *   GET  /_fake/<provider>/tasks        async tasks (fptask_dump)
 *   GET  /_fake/<provider>/callbacks    callback attempts (fpcb_dump)
 *
 * Answers are JSON; errors are {"error": "..."} with 400, 404 or 405.
 */
#ifndef GENQ_FPCTL_H
#define GENQ_FPCTL_H

#include <stddef.h>

#include "fakeprov.h"
#include "fpresp.h"

/** What the control plane acts on. */
struct fpctl_env {
        fpprov_t *const *provs;  /**< borrowed */
        size_t nprovs;
};

/** @brief Answer one control request; call->path is below "/_fake/". */
void fpctl_handle(const struct fpctl_env *env, const struct fp_call *call,
                  struct fp_resp *resp);

#endif
