/**
 * @file log.h
 * @brief Levelled logging to stderr: plain text or one JSON object a line.
 *
 * The level is checked before anything is formatted.  Each line carries a
 * facility ("kafka", "http", "pg", ...).  Nothing logged may contain an API
 * key: callers log key *ids* (the environment variable's name), never keys.
 */
#ifndef GENQ_LOG_H
#define GENQ_LOG_H

#include "globals.h"

enum {
        LOG_LVL_ERR = 3,
        LOG_LVL_WARN = 4,
        LOG_LVL_INFO = 6,
        LOG_LVL_DEBUG = 7,
};

/** Debug contexts, enabled by `log.debug: http,kafka,pg` in config. */
enum {
        LOG_DBG_HTTP = 1u << 0,
        LOG_DBG_KAFKA = 1u << 1,
        LOG_DBG_PG = 1u << 2,
        LOG_DBG_JOB = 1u << 3,
        LOG_DBG_CONF = 1u << 4,
};

/** @brief Write one line at \p lvl; use the macros below instead. */
void log_write(int lvl, const char *fac, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/** @brief Parse "http,kafka" into LOG_DBG_* bits. @returns -1 on an unknown
 *         word, naming it in errstr. */
int log_parse_debug(const char *s, unsigned *bits, char *errstr,
                    size_t errstr_size);

/** @brief Parse "error|warn|info|debug". @returns level or -1. */
int log_parse_level(const char *s);

#define log_err(fac, ...) log_write(LOG_LVL_ERR, fac, __VA_ARGS__)
#define log_warn(fac, ...)                                                     \
        do {                                                                   \
                if (genq_g.log_level >= LOG_LVL_WARN)                          \
                        log_write(LOG_LVL_WARN, fac, __VA_ARGS__);             \
        } while (0)
#define log_info(fac, ...)                                                     \
        do {                                                                   \
                if (genq_g.log_level >= LOG_LVL_INFO)                          \
                        log_write(LOG_LVL_INFO, fac, __VA_ARGS__);             \
        } while (0)
/** Debug line, only when context bit \p ctx is enabled. */
#define log_dbg(ctx, fac, ...)                                                 \
        do {                                                                   \
                if (genq_g.log_debug & (ctx))                                  \
                        log_write(LOG_LVL_DEBUG, fac, __VA_ARGS__);            \
        } while (0)

#endif
