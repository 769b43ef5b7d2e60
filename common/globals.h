/**
 * @file globals.h
 * @brief The one place genq keeps process-wide mutable state.
 *
 * Everything else is passed by handle.  What lives here is what a signal
 * handler or the logger must reach without a handle: log settings, set once
 * at start-up (and on SIGHUP) by the main thread, and signal flags, written
 * only by signal handlers and read by the event loop.
 */
#ifndef GENQ_GLOBALS_H
#define GENQ_GLOBALS_H

#include <signal.h>

struct genq_globals {
        int log_level;            /**< LOG_LVL_*; lines above it are dropped */
        int log_json;             /**< 1 = one JSON object a line */
        unsigned log_debug;       /**< bit set of LOG_DBG_* contexts */
        const char *log_ident;    /**< program name in each line */
        volatile sig_atomic_t sig_term;   /**< SIGTERM/SIGINT count */
        volatile sig_atomic_t sig_hup;    /**< SIGHUP seen, reload config */
};

/** The process-wide state; see the file comment for who writes what. */
extern struct genq_globals genq_g;

#endif
