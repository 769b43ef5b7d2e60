/*
 * `genq topics create|list`: make the job, dead-letter and event topics
 * through librdkafka's admin API, so users on their own Kafka need no
 * broker-side tools.  Creating an existing topic is not an error: the
 * command is safe to run on every deploy.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "codec.h"
#include "gconf.h"
#include "log.h"
#include "xmem.h"

#define N_TOPICS 7
#define ADMIN_TIMEOUT_MS 30000

static void usage(void)
{
        fprintf(stderr,
                "usage: genq topics create [--partitions N] "
                "[--replication N] [-c FILE] [-X key=value]\n"
                "       genq topics list [-c FILE] [-X key=value]\n"
                "Creates %s.{chat,image,video,stt,tts}, the DLQ and the "
                "events topic (settings kafka.*).\n",
                "<kafka.topic_prefix>");
}

static rd_kafka_t *admin_client(conf_t *c, const struct gconf *g,
                                char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_t *rk;

        if (rd_kafka_conf_set(rkc, "bootstrap.servers", g->brokers, errstr,
                              errstr_size) != RD_KAFKA_CONF_OK ||
            gconf_kafka_passthrough(c, rkc, errstr, errstr_size)) {
                rd_kafka_conf_destroy(rkc);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkc, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(rkc);
        /* rkc is now owned by rk */
        return rk;
}

static size_t topic_names(const struct gconf *g, char names[N_TOPICS][256])
{
        size_t n = 0;

        for (int k = GENQ__V1__KIND__KIND_CHAT; k <= GENQ__V1__KIND__KIND_TTS;
             k++)
                codec_topic_name(g->topic_prefix, (Genq__V1__Kind)k,
                                 names[n++], 256);
        snprintf(names[n++], 256, "%s", g->dlq_topic);
        snprintf(names[n++], 256, "%s", g->events_topic);
        return n;
}

/* Report each topic's outcome; @returns the number of real failures. */
static int check_results(rd_kafka_event_t *ev)
{
        const rd_kafka_CreateTopics_result_t *res;
        const rd_kafka_topic_result_t **tr;
        size_t n;
        int failed = 0;

        res = rd_kafka_event_CreateTopics_result(ev);
        tr = rd_kafka_CreateTopics_result_topics(res, &n);
        for (size_t i = 0; i < n; i++) {
                rd_kafka_resp_err_t err = rd_kafka_topic_result_error(tr[i]);
                const char *name = rd_kafka_topic_result_name(tr[i]);

                if (!err)
                        printf("created %s\n", name);
                else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                        printf("exists  %s\n", name);
                else {
                        fprintf(stderr, "genq topics: %s: %s\n", name,
                                rd_kafka_topic_result_error_string(tr[i]));
                        failed++;
                }
        }
        return failed;
}

static int create_topics(rd_kafka_t *rk, const struct gconf *g, int parts,
                         int repl)
{
        char names[N_TOPICS][256], errstr[256];
        rd_kafka_NewTopic_t *nt[N_TOPICS];
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_event_t *ev;
        size_t n = topic_names(g, names);
        int failed;

        for (size_t i = 0; i < n; i++) {
                nt[i] = rd_kafka_NewTopic_new(names[i], parts, repl, errstr,
                                              sizeof(errstr));
                /* Room for a job at CODEC_MAX_JOB_BYTES plus headers: the
                 * broker's default (~1 MB) is just below it. */
                rd_kafka_NewTopic_set_config(nt[i], "max.message.bytes",
                                             "1200000");
        }
        rd_kafka_CreateTopics(rk, nt, n, NULL, q);
        ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS);
        rd_kafka_NewTopic_destroy_array(nt, n);
        if (!ev) {
                fprintf(stderr, "genq topics: no answer from %s within %d s\n",
                        g->brokers, ADMIN_TIMEOUT_MS / 1000);
                failed = 1;
        } else if (rd_kafka_event_error(ev)) {
                fprintf(stderr, "genq topics: %s\n",
                        rd_kafka_event_error_string(ev));
                failed = 1;
        } else {
                failed = check_results(ev);
        }
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        return failed ? 1 : 0;
}

static int list_topics(rd_kafka_t *rk, const struct gconf *g)
{
        const struct rd_kafka_metadata *md;
        char names[N_TOPICS][256];
        size_t n = topic_names(g, names);
        rd_kafka_resp_err_t err;
        int missing = 0;

        err = rd_kafka_metadata(rk, 1, NULL, &md, ADMIN_TIMEOUT_MS);
        if (err) {
                fprintf(stderr, "genq topics: metadata: %s\n",
                        rd_kafka_err2str(err));
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                int parts = -1;

                for (int t = 0; t < md->topic_cnt; t++)
                        if (!strcmp(md->topics[t].topic, names[i]) &&
                            !md->topics[t].err)
                                parts = md->topics[t].partition_cnt;
                if (parts < 0)
                        missing++;
                printf("%-24s %s\n", names[i],
                       parts < 0 ? "missing" : "present");
                if (parts >= 0)
                        printf("%-24s partitions=%d\n", "", parts);
        }
        rd_kafka_metadata_destroy(md);
        return missing ? 1 : 0;
}

static int parse_int_arg(const char *s, int lo, int hi, int *out)
{
        char *end;
        long v = strtol(s, &end, 10);

        if (end == s || *end || v < lo || v > hi)
                return -1;
        *out = (int)v;
        return 0;
}

int cmd_topics(int argc, char **argv)
{
        struct gconf g = {0};
        char errstr[512];
        int parts = -1, repl = 1, rc = 2;
        const char *verb;
        rd_kafka_t *rk = NULL;
        conf_t *c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));

        if (!c) {
                fprintf(stderr, "genq topics: %s\n", errstr);
                return 2;
        }
        if (gconf_bind(c, &g, errstr, sizeof(errstr))) {
                fprintf(stderr, "genq topics: %s\n", errstr);
                goto out_free_conf;
        }
        verb = argc > 1 ? argv[1] : "";
        for (int i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "--partitions") && i + 1 < argc &&
                    !parse_int_arg(argv[i + 1], 1, 10000, &parts)) {
                        i++;
                } else if (!strcmp(argv[i], "--replication") &&
                           i + 1 < argc &&
                           !parse_int_arg(argv[i + 1], 1, 32, &repl)) {
                        i++;
                } else {
                        fprintf(stderr, "genq topics: bad argument \"%s\"\n",
                                argv[i]);
                        usage();
                        goto out_free_conf;
                }
        }
        if (strcmp(verb, "create") && strcmp(verb, "list")) {
                usage();
                goto out_free_conf;
        }
        if (parts < 0)
                parts = (int)g.partitions;
        rk = admin_client(c, &g, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "genq topics: %s\n", errstr);
                rc = 1;
                goto out_free_conf;
        }
        rc = !strcmp(verb, "create") ? create_topics(rk, &g, parts, repl)
                                     : list_topics(rk, &g);
        rd_kafka_destroy(rk);
out_free_conf:
        gconf_clear(&g);
        conf_destroy(c);
        return rc;
}
