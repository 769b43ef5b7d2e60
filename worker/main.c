/*
 * genq-worker: consume job topics, call providers, write Postgres.
 *
 *   genq-worker [-c FILE] [-X key=value]... [--check-config]
 *               [--dump-config-docs] [-h] [--version]
 */
#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "engine.h"
#include "gconf.h"
#include "log.h"
#include "wconf.h"
#include "xmem.h"

#define GENQ_VERSION "0.1.0"

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: genq-worker [-c FILE] [-X key=value]... "
                "[--check-config]\n"
                "       genq-worker --dump-config-docs | --version | -h\n"
                "\n"
                "  -c FILE            configuration file (default "
                "$GENQ_CONFIG)\n"
                "  -X key=value       override a setting (repeatable; "
                "kafka.* go to librdkafka)\n"
                "  --check-config     load and validate the configuration, "
                "then exit\n"
                "  --dump-config-docs print every setting as Markdown\n"
                "Environment: GENQ_<KEY> overrides a key (e.g. "
                "GENQ_KAFKA_BROKERS, GENQ_POSTGRES_DSN).\n");
}

static void on_term(int sig)
{
        (void)sig;
        genq_g.sig_term++;
}

static void on_hup(int sig)
{
        (void)sig;
        genq_g.sig_hup = 1;
}

static void install_signals(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sa.sa_handler = on_hup;
        sigaction(SIGHUP, &sa, NULL);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
}

/* Apply kafka.* passthrough to a scratch conf now, so a bad librdkafka
 * property is a config error at start, and so the keys count as used. */
static int check_kafka_keys(conf_t *c, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *rkc = rd_kafka_conf_new();
        int rc = gconf_kafka_passthrough(c, rkc, errstr, errstr_size);

        rd_kafka_conf_destroy(rkc);
        return rc;
}

/* @returns 0 to run, 1 for a config error, 2 for usage, -1 to exit 0. */
static int parse_args(int *argcp, char **argv, conf_t **cp, int *check_only)
{
        char errstr[1024];
        conf_t *c = gconf_load_args(argcp, argv, errstr, sizeof(errstr));

        if (!c) {
                fprintf(stderr, "genq-worker: %s\n", errstr);
                return 1;
        }
        *cp = c;
        for (int i = 1; i < *argcp; i++) {
                if (!strcmp(argv[i], "--check-config")) {
                        *check_only = 1;
                } else if (!strcmp(argv[i], "--dump-config-docs")) {
                        wconf_write_docs(stdout);
                        return -1;
                } else if (!strcmp(argv[i], "--version")) {
                        printf("genq-worker %s (librdkafka %s, %s)\n",
                               GENQ_VERSION, rd_kafka_version_str(),
                               curl_version());
                        return -1;
                } else if (!strcmp(argv[i], "-h") ||
                           !strcmp(argv[i], "--help")) {
                        usage(stdout);
                        return -1;
                } else {
                        fprintf(stderr, "genq-worker: unknown argument "
                                        "\"%s\"\n",
                                argv[i]);
                        usage(stderr);
                        return 2;
                }
        }
        return 0;
}

/* The command line as given, for reloads (parsing consumes -c and -X). */
struct args_copy {
        int argc;
        char **argv;
};

/* SIGHUP: the same files and -X overrides, read again. */
static struct wconf *reload(void *opaque, char *errstr, size_t errstr_size)
{
        struct args_copy *a = opaque;
        char **argv = xcalloc((size_t)a->argc + 1, sizeof(char *));
        int argc = a->argc;
        struct wconf *w = NULL;
        conf_t *c;

        memcpy(argv, a->argv, (size_t)a->argc * sizeof(char *));
        c = gconf_load_args(&argc, argv, errstr, errstr_size);
        if (c) {
                w = xcalloc(1, sizeof(*w));
                if (wconf_load(c, w, errstr, errstr_size) ||
                    conf_check_unused(c, errstr, errstr_size)) {
                        if (w->worker_id)
                                wconf_clear(w);
                        free(w);
                        w = NULL;
                }
        }
        conf_destroy(c);
        free(argv);
        return w;
}

int main(int argc, char **argv)
{
        struct args_copy args = {argc, NULL};
        struct wconf w;
        char errstr[1024];
        int check_only = 0, rc;
        conf_t *c = NULL;
        engine_t *e;

        genq_g.log_ident = "genq-worker";
        args.argv = xcalloc((size_t)argc + 1, sizeof(char *));
        memcpy(args.argv, argv, (size_t)argc * sizeof(char *));
        rc = parse_args(&argc, argv, &c, &check_only);
        if (rc) {
                conf_destroy(c);
                free(args.argv);
                return rc < 0 ? 0 : rc;
        }
        if (wconf_load(c, &w, errstr, sizeof(errstr)) ||
            check_kafka_keys(c, errstr, sizeof(errstr)) ||
            conf_check_unused(c, errstr, sizeof(errstr))) {
                fprintf(stderr, "genq-worker: %s\n", errstr);
                if (w.worker_id)
                        wconf_clear(&w);
                conf_destroy(c);
                free(args.argv);
                return 1;
        }
        if (check_only) {
                printf("configuration ok: %zu provider(s), %zu route(s)\n",
                       w.n_providers, w.n_routes);
                rc = 0;
                goto out_clear;
        }
        install_signals();
        curl_global_init(CURL_GLOBAL_DEFAULT);
        e = engine_new(&w, c, errstr, sizeof(errstr));
        if (!e) {
                log_err("worker", "%s", errstr);
                rc = 1;
        } else {
                engine_set_reload(e, reload, &args);
                rc = engine_run(e);
                engine_destroy(e);
        }
        curl_global_cleanup();
out_clear:
        wconf_clear(&w);
        conf_destroy(c);
        free(args.argv);
        return rc;
}
