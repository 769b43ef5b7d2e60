/*
 * `genq tail --topic T`: print a topic's messages as JSON lines, from the
 * beginning, without joining any consumer group or committing anything.
 * For operators reading the DLQ ("what was refused, and why") and for the
 * end-to-end tests.  Each line: topic, partition, offset, key, headers,
 * value size, and the job as JSON when the value decodes.
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmds.h"
#include "codec.h"
#include "gconf.h"
#include "jobjson.h"
#include "pgutil.h"
#include "xmem.h"

struct tail_opts {
        const char *topic;
        long max;        /**< messages to print, then exit */
        long timeout_s;  /**< give up after this long without max reached */
};

static void usage(void)
{
        fprintf(stderr, "usage: genq tail --topic TOPIC [--max N] "
                        "[--timeout SECONDS] [-c FILE] [-X key=value]\n"
                        "Prints the topic's messages from the beginning as "
                        "JSON lines (no group, no commits).\n");
}

static int parse(int argc, char **argv, struct tail_opts *o)
{
        o->max = 100;
        o->timeout_s = 10;
        for (int i = 1; i < argc; i++) {
                char *end;

                if (i + 1 >= argc)
                        return -1;
                if (!strcmp(argv[i], "--topic")) {
                        o->topic = argv[++i];
                        continue;
                }
                if (strcmp(argv[i], "--max") && strcmp(argv[i], "--timeout"))
                        return -1;
                *(!strcmp(argv[i], "--max") ? &o->max : &o->timeout_s) =
                        strtol(argv[i + 1], &end, 10);
                if (*end || end == argv[i + 1])
                        return -1;
                i++;
        }
        return o->topic && o->max > 0 && o->timeout_s > 0 ? 0 : -1;
}

static rd_kafka_t *make_consumer(conf_t *c, const struct gconf *g,
                                 char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        rd_kafka_t *rk;

        if (rd_kafka_conf_set(rkc, "bootstrap.servers", g->brokers, errstr,
                              errstr_size) ||
            rd_kafka_conf_set(rkc, "group.id", "genq-tail", errstr,
                              errstr_size) ||
            rd_kafka_conf_set(rkc, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            gconf_kafka_passthrough(c, rkc, errstr, errstr_size)) {
                rd_kafka_conf_destroy(rkc);
                return NULL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkc, errstr, errstr_size);
        if (!rk)
                rd_kafka_conf_destroy(rkc);
        return rk;
}

/* Assign every partition of the topic at its beginning. */
static int assign_all(rd_kafka_t *rk, const char *topic, char *errstr,
                      size_t errstr_size)
{
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err;
        int rc = -1;

        err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        rd_kafka_topic_destroy(rkt);
        if (err) {
                snprintf(errstr, errstr_size, "metadata: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        if (md->topic_cnt != 1 || md->topics[0].err) {
                snprintf(errstr, errstr_size, "topic %s: %s", topic,
                         md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
                                       : "not found");
                goto out_free_md;
        }
        l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                        RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        rc = 0;
out_free_md:
        rd_kafka_metadata_destroy(md);
        return rc;
}

static json_t *headers_json(const rd_kafka_message_t *m)
{
        rd_kafka_headers_t *h = NULL;
        json_t *o = json_object();
        const char *name;
        const void *val;
        size_t size;

        if (rd_kafka_message_headers(m, &h))
                return o;
        for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &val, &size);
             i++)
                json_object_set_new(o, name,
                                    val ? json_stringn(val, size)
                                        : json_null());
        return o;
}

/* A completion event as JSON (credits stay an exact decimal string). */
static json_t *event_json(const Genq__V1__JobEvent *ev)
{
        json_t *urls = json_array(), *md = json_object();

        for (size_t i = 0; i < ev->n_result_urls; i++)
                json_array_append_new(urls, json_string(ev->result_urls[i]));
        for (size_t i = 0; i < ev->n_metadata; i++)
                json_object_set_new(md, ev->metadata[i]->key,
                                    json_string(ev->metadata[i]->value));
        return json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:o, s:s, s:s, "
                         "s:s, s:s, s:I, s:o}",
                         "job_id", ev->job_id, "tenant_id", ev->tenant_id,
                         "kind", codec_kind_name(ev->kind), "state",
                         ev->state, "provider", ev->provider, "model",
                         ev->model, "result_urls", urls, "result_ref",
                         ev->result_ref, "credits", ev->credits,
                         "error_class", ev->error_class, "error", ev->error,
                         "finished_at_ms", (json_int_t)ev->finished_at_ms,
                         "metadata", md);
}

static int is_events_topic(const char *topic)
{
        size_t n = strlen(topic);

        return n >= 6 && !strcmp(topic + n - 6, "events");
}

static void print_message(const rd_kafka_message_t *m)
{
        char errstr[256], *s;
        enum codec_err ce;
        Genq__V1__Job *pb = codec_job_decode(m->payload, m->len, &ce, errstr,
                                             sizeof(errstr));
        json_t *o = json_pack("{s:s, s:i, s:I, s:o, s:I}", "topic",
                              rd_kafka_topic_name(m->rkt), "partition",
                              (int)m->partition, "offset",
                              (json_int_t)m->offset, "headers",
                              headers_json(m), "value_bytes",
                              (json_int_t)m->len);

        json_object_set_new(o, "key", m->key ? json_stringn(m->key,
                                                            m->key_len)
                                             : json_null());
        if (is_events_topic(rd_kafka_topic_name(m->rkt))) {
                Genq__V1__JobEvent *ev = codec_event_decode(m->payload,
                                                            m->len);

                if (ev)
                        json_object_set_new(o, "event", event_json(ev));
                codec_event_free(ev);
        } else if (pb) {
                json_object_set_new(o, "job", jobjson_to_obj(pb));
        }
        codec_job_free(pb);
        s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(o);
}

static int consume(rd_kafka_t *rk, const struct tail_opts *o)
{
        time_t until = time(NULL) + o->timeout_s;
        long n = 0;

        while (n < o->max && time(NULL) < until) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

                if (!m)
                        continue;
                if (!m->err) {
                        print_message(m);
                        n++;
                }
                rd_kafka_message_destroy(m);
        }
        fflush(stdout);
        return 0;
}

int cmd_tail(int argc, char **argv)
{
        struct tail_opts o = {0};
        struct gconf g = {0};
        char errstr[512];
        rd_kafka_t *rk;
        int rc = 1;
        conf_t *c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));

        if (!c) {
                fprintf(stderr, "genq tail: %s\n", errstr);
                return 2;
        }
        if (parse(argc, argv, &o)) {
                usage();
                conf_destroy(c);
                return 2;
        }
        if (gconf_bind(c, &g, errstr, sizeof(errstr)))
                goto err_print;
        rk = make_consumer(c, &g, errstr, sizeof(errstr));
        if (!rk)
                goto err_print;
        if (assign_all(rk, o.topic, errstr, sizeof(errstr)) == 0)
                rc = consume(rk, &o);
        else
                fprintf(stderr, "genq tail: %s\n", errstr);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        goto out_free;
err_print:
        fprintf(stderr, "genq tail: %s\n", errstr);
out_free:
        gconf_clear(&g);
        conf_destroy(c);
        return rc;
}

/*
 * `genq encode`: one JSON job on stdin (or -f FILE) to its protobuf bytes
 * on stdout, validated unless --unchecked.  For shell pipelines that
 * produce with other tools, and for tests that need exact bytes.
 */
int cmd_encode(int argc, char **argv)
{
        char errstr[512], buf[1 << 16];
        int unchecked = 0;
        size_t n;
        uint8_t *out;
        Genq__V1__Job *job;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--unchecked")) {
                        fprintf(stderr, "usage: genq encode [--unchecked] "
                                        "< job.json > job.pb\n");
                        return 2;
                }
                unchecked = 1;
        }
        n = fread(buf, 1, sizeof(buf) - 1, stdin);
        buf[n] = '\0';
        job = jobjson_parse(buf, n, unchecked ? JOBJSON_F_LAX : 0, errstr,
                            sizeof(errstr));
        if (!job) {
                fprintf(stderr, "genq encode: %s\n", errstr);
                return 1;
        }
        if (!*job->job_id) {
                /* Like submit: a job without an id gets a fresh UUID. */
                char id[37];

                if (codec_uuid4(id)) {
                        fprintf(stderr, "genq encode: no randomness\n");
                        codec_job_free(job);
                        return 1;
                }
                /* An absent string is protobuf-c's static default: replace,
                 * never free it; free_unpacked frees the new one. */
                job->job_id = xstrdup(id);
        }
        if (!unchecked &&
            codec_job_validate(job, GENQ__V1__KIND__KIND_UNSPECIFIED, errstr,
                               sizeof(errstr)) != CODEC_OK) {
                fprintf(stderr, "genq encode: %s\n", errstr);
                codec_job_free(job);
                return 1;
        }
        out = codec_job_encode(job, &n);
        fwrite(out, 1, n, stdout);
        free(out);
        codec_job_free(job);
        return 0;
}

/*
 * `genq cancel JOB_ID [--reason TEXT]`: record a cancel request.  A job
 * not yet started (still in Kafka, or queued) never runs; a running one
 * is stopped by its worker within about a second, ends 'cancelled', and
 * any hold is refunded.  Prints what happened; exit 1 if the job already
 * ended.
 */
int cmd_cancel(int argc, char **argv)
{
        static const char *req_sql =
                "INSERT INTO job_cancels (job_id, reason) VALUES ($1, $2) "
                "ON CONFLICT (job_id) DO NOTHING";
        static const char *state_sql =
                "SELECT state FROM jobs WHERE job_id = $1";
        const char *reason = "cancelled on request", *id = NULL;
        struct gconf g = {0};
        char errstr[512];
        PGconn *conn = NULL;
        PGresult *r;
        int rc = 1;
        conf_t *c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));

        for (int i = 1; c && i < argc; i++) {
                if (!strcmp(argv[i], "--reason") && i + 1 < argc)
                        reason = argv[++i];
                else if (!id && argv[i][0] != '-')
                        id = argv[i];
                else
                        id = NULL, argc = 0;
        }
        if (!c || !id) {
                fprintf(stderr, "usage: genq cancel JOB_ID [--reason TEXT] "
                                "[-c FILE] [-X key=value]\n");
                conf_destroy(c);
                return 2;
        }
        if (gconf_bind(c, &g, errstr, sizeof(errstr)) ||
            !(conn = pgutil_connect(g.pg_dsn, "genq-cancel", errstr,
                                    sizeof(errstr)))) {
                fprintf(stderr, "genq cancel: %s\n", errstr);
                goto out_free;
        }
        r = PQexecParams(conn, state_sql, 1, NULL, &id, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) &&
            strcmp(PQgetvalue(r, 0, 0), "running") &&
            strcmp(PQgetvalue(r, 0, 0), "queued")) {
                printf("job %s already ended: %s\n", id, PQgetvalue(r, 0, 0));
                PQclear(r);
                goto out_free;
        }
        PQclear(r);
        {
                const char *p[2] = {id, reason};

                r = PQexecParams(conn, req_sql, 2, NULL, p, NULL, NULL, 0);
        }
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                fprintf(stderr, "genq cancel: %s", PQresultErrorMessage(r));
        } else {
                printf("cancel requested for job %s: it will not start, or "
                       "its worker stops it\n", id);
                rc = 0;
        }
        PQclear(r);
out_free:
        PQfinish(conn);
        gconf_clear(&g);
        conf_destroy(c);
        return rc;
}
