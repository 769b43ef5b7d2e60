/**
 * @file engine.h
 * @brief The worker's event loop and job state machine.
 *
 * One engine per process, on one thread: it owns the Kafka I/O, the curl
 * multi loop, the Postgres sink's queue end, the offset tracker and every
 * job in flight.
 */
#ifndef GENQ_ENGINE_H
#define GENQ_ENGINE_H

#include <stddef.h>

#include "conf.h"
#include "wconf.h"

typedef struct engine_s engine_t;

/**
 * @brief Connect everything (Postgres first: migrations are applied if
 *        missing), join the consumer group.
 * @param w borrowed; must outlive the engine.
 * @param c borrowed; kafka.* passthrough keys are taken from it.
 * @returns the engine or NULL with errstr.
 */
engine_t *engine_new(struct wconf *w, conf_t *c, char *errstr,
                     size_t errstr_size);

/**
 * @brief Run until SIGTERM/SIGINT (genq_g.sig_term) and a clean drain:
 *        stop taking jobs, let in-flight calls finish within
 *        worker.grace_s, hand back the leases of the rest, flush
 *        Postgres, store offsets.  A second signal cuts the grace short.
 * @returns the process exit code.
 */
int engine_run(engine_t *e);

/**
 * @brief Loads the configuration again (SIGHUP): a new wconf, heap
 *        allocated, or NULL with errstr (the running one stays).
 */
typedef struct wconf *(engine_reload_cb)(void *opaque, char *errstr,
                                         size_t errstr_size);

/**
 * @brief On SIGHUP, call \p cb and switch to what it loads, without
 *        dropping a job: jobs keep what they borrowed from the old
 *        configuration (kept until the engine is destroyed).  Providers
 *        and their key pools must stay the same (names, order, number of
 *        keys); otherwise the reload is refused with a log line and a
 *        restart is needed.  Settings read at start-up (brokers, DSN,
 *        lease, group) also need a restart.
 */
void engine_set_reload(engine_t *e, engine_reload_cb *cb, void *opaque);

/** @brief Leave the group and free everything.  NULL-safe. */
void engine_destroy(engine_t *e);

#endif
