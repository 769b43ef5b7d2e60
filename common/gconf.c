/* Settings shared by every genq program; see gconf.h. */
#include "gconf.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmem.h"

#define G(f) offsetof(struct gconf, f)

const struct conf_def gconf_defs[] = {
        {"kafka.brokers", CONF_STR, G(brokers), 1, 0, "127.0.0.1:19092", 0,
         "Kafka bootstrap servers (host:port,...)"},
        {"kafka.topic_prefix", CONF_STR, G(topic_prefix), 1, 0, "genq.jobs", 0,
         "job topics are <prefix>.chat, .image, .video, .stt, .tts"},
        {"kafka.dlq_topic", CONF_STR, G(dlq_topic), 1, 0, "genq.jobs.dlq", 0,
         "dead-letter topic for undecodable or invalid messages"},
        {"kafka.events_topic", CONF_STR, G(events_topic), 1, 0, "genq.events",
         0, "completion events topic"},
        {"kafka.partitions", CONF_INT, G(partitions), 1, 1024, "6", 0,
         "partitions per topic when `genq topics create` makes them"},
        {"postgres.dsn", CONF_STR, G(pg_dsn), 1, 0,
         "host=127.0.0.1 port=15432 dbname=genq user=genq", 0,
         "libpq connection string or URI (put the password in PGPASSFILE "
         "or PGPASSWORD, not here)"},
        {"log.level", CONF_STR, G(log_level), 1, 0, "info", 1,
         "error, warn, info or debug"},
        {"log.debug", CONF_STR, G(log_debug), 1, 0, "", 1,
         "debug contexts: http,kafka,pg,job,conf or all"},
        {"log.json", CONF_BOOL, G(log_json), 1, 0, "false", 1,
         "one JSON object per log line"},
        {NULL, CONF_END, 0, 0, 0, NULL, 0, NULL},
};

int gconf_bind(conf_t *c, struct gconf *g, char *errstr, size_t errstr_size)
{
        int lvl;

        if (conf_bind(c, "", gconf_defs, g, errstr, errstr_size))
                return -1;
        lvl = log_parse_level(g->log_level);
        if (lvl < 0) {
                snprintf(errstr, errstr_size,
                         "log.level: \"%s\" is not error, warn, info or debug",
                         g->log_level);
                return -1;
        }
        if (log_parse_debug(g->log_debug, &genq_g.log_debug, errstr,
                            errstr_size))
                return -1;
        genq_g.log_level = genq_g.log_debug ? LOG_LVL_DEBUG : lvl;
        genq_g.log_json = g->log_json;
        return 0;
}

void gconf_clear(struct gconf *g)
{
        conf_free_struct(gconf_defs, g);
}

/* $GENQ_CONFIG: one file, or several separated by ':' (later override
 * earlier). */
static int load_env_files(conf_t *c, char *errstr, size_t errstr_size)
{
        const char *env = getenv("GENQ_CONFIG");
        char *list, *save = NULL, *f;
        int rc = 0;

        if (!env || !*env)
                return 0;
        list = xstrdup(env);
        for (f = strtok_r(list, ":", &save); f && rc == 0;
             f = strtok_r(NULL, ":", &save))
                rc = conf_load_into(c, f, errstr, errstr_size);
        free(list);
        return rc;
}

conf_t *gconf_load_args(int *argcp, char **argv, char *errstr,
                        size_t errstr_size)
{
        int argc = *argcp, o = 1, files = 0, rc = 0;
        conf_t *c = conf_new();

        /* First pass: the files, in order, so -X can override them; -c
         * given at all replaces $GENQ_CONFIG. */
        for (int i = 1; i < argc && rc == 0; i++)
                if (!strcmp(argv[i], "-c") && i + 1 < argc) {
                        rc = conf_load_into(c, argv[++i], errstr,
                                            errstr_size);
                        files++;
                }
        if (rc == 0 && files == 0)
                rc = load_env_files(c, errstr, errstr_size);
        if (rc) {
                conf_destroy(c);
                return NULL;
        }
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "-X")) {
                        if (i + 1 >= argc) {
                                snprintf(errstr, errstr_size,
                                         "%s needs an argument", argv[i]);
                                conf_destroy(c);
                                return NULL;
                        }
                        if (!strcmp(argv[i], "-X") &&
                            conf_set_arg(c, argv[i + 1], errstr, errstr_size)) {
                                conf_destroy(c);
                                return NULL;
                        }
                        i++;
                        continue;
                }
                argv[o++] = argv[i];
        }
        argv[o] = NULL;
        *argcp = o;
        return c;
}

static int set_rk(void *opaque, const char *key, const char *val,
                  const char *where, char *errstr, size_t errstr_size)
{
        char rkerr[256];

        if (rd_kafka_conf_set(opaque, key, val, rkerr, sizeof(rkerr)) ==
            RD_KAFKA_CONF_OK)
                return 0;
        snprintf(errstr, errstr_size, "%s: kafka.%s: %s", where, key, rkerr);
        return -1;
}

int gconf_kafka_passthrough(conf_t *c, void *rk_conf, char *errstr,
                            size_t errstr_size)
{
        return conf_each_unused(c, "kafka.", set_rk, rk_conf, errstr,
                                errstr_size);
}
