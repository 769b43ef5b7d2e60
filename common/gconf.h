/**
 * @file gconf.h
 * @brief Settings shared by every genq program: where Kafka and Postgres
 *        are, and the topic names.  Loaded from the config file named by
 *        -c or $GENQ_CONFIG (optional), the environment and -X overrides.
 */
#ifndef GENQ_GCONF_H
#define GENQ_GCONF_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct gconf {
        char *brokers;       /**< kafka.brokers */
        char *topic_prefix;  /**< kafka.topic_prefix ("genq.jobs") */
        char *dlq_topic;     /**< kafka.dlq_topic ("genq.jobs.dlq") */
        char *events_topic;  /**< kafka.events_topic ("genq.events") */
        int64_t partitions;  /**< kafka.partitions, for topic creation */
        char *pg_dsn;        /**< postgres.dsn (libpq conninfo or URI) */
        char *log_level;     /**< log.level */
        char *log_debug;     /**< log.debug contexts */
        int log_json;        /**< log.json */
};

/** The binding table for struct gconf (also used by `make docs`). */
extern const struct conf_def gconf_defs[];

/**
 * @brief Bind the shared settings from \p c into \p g and apply the log
 *        settings to genq_g.  @returns 0 or -1 with errstr.
 */
int gconf_bind(conf_t *c, struct gconf *g, char *errstr, size_t errstr_size);

/** @brief Free what gconf_bind allocated. */
void gconf_clear(struct gconf *g);

/**
 * @brief Parse the shared command-line options (-c FILE, repeatable:
 *        later files override earlier ones; -X k=v) out of argv, load the
 *        files (or $GENQ_CONFIG, ':'-separated, or nothing), and return
 *        the conf.  Unrecognised options are left for the caller: \p argv is
 *        compacted in place and \p *argcp updated.
 * @returns the conf or NULL with errstr.
 */
conf_t *gconf_load_args(int *argcp, char **argv, char *errstr,
                        size_t errstr_size);

/**
 * @brief Apply the `kafka.*` keys not bound by anyone to an rd_kafka_conf_t
 *        (librdkafka property passthrough, as kcat does).
 * @param rk_conf an rd_kafka_conf_t *.
 * @returns 0 or -1 with `where: kafka.X: librdkafka's message`.
 */
int gconf_kafka_passthrough(conf_t *c, void *rk_conf, char *errstr,
                            size_t errstr_size);

#endif
