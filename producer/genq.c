/*
 * genq: the command line.  main() only finds the subcommand in a table and
 * runs it; each subcommand parses its own options (see cmds.h).
 */
#include <librdkafka/rdkafka.h>
#include <protobuf-c/protobuf-c.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "globals.h"
#include "libgenq.h"
#include "provider_cmd.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command {
        const char *name;                /**< argv[1] */
        int (*fn)(int argc, char **argv); /**< gets argv from the name on */
        const char *help;                /**< one line for `genq help` */
} commands[] = {
        {"submit", cmd_submit, "put jobs on Kafka, from flags or JSON Lines"},
        {"produce-raw", cmd_produce_raw,
         "produce raw bytes as one message (testing)"},
        {"topics", cmd_topics, "create or list the genq topics"},
        {"migrate", cmd_migrate, "apply the PostgreSQL schema migrations"},
        {"report", cmd_report, "print billing and usage reports"},
        {"tenant", cmd_tenant,
         "add tenants, set budgets, make reporting roles"},
        {"retention", cmd_retention, "drop old credit ledger partitions"},
        {"provider", cmd_provider,
         "list providers; disable, reorder them on every worker"},
        {"tail", cmd_tail, "print a topic's messages (e.g. the DLQ) as JSON"},
        {"encode", cmd_encode, "JSON job on stdin to protobuf bytes"},
        {"cancel", cmd_cancel, "cancel a job (before it runs, or while it "
                               "runs)"},
        {"version", cmd_version, "print versions"},
        {"help", cmd_help, "list commands, or `genq help CMD` for one"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
        for (size_t i = 0; i < N_COMMANDS; i++)
                if (!strcmp(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static void usage(FILE *fp)
{
        fprintf(fp, "usage: genq COMMAND [options]\n\ncommands:\n");
        for (size_t i = 0; i < N_COMMANDS; i++)
                fprintf(fp, "  %-12s %s\n", commands[i].name,
                        commands[i].help);
        fprintf(fp, "\n`genq COMMAND -h` shows a command's options.\n"
                    "Every command takes -c FILE (config, default "
                    "$GENQ_CONFIG) and -X key=value.\n");
}

static int cmd_version(int argc, char **argv)
{
        printf("genq %s (librdkafka %s, protobuf-c %s)\n", genq_version(),
               rd_kafka_version_str(), protobuf_c_version());
        return 0;
}

/* `genq help` lists commands; `genq help CMD` is `genq CMD -h`. */
static int cmd_help(int argc, char **argv)
{
        const struct command *cmd;
        char *hargv[] = {NULL, (char *)"-h", NULL};

        if (argc < 2) {
                usage(stdout);
                return 0;
        }
        cmd = find_command(argv[1]);
        if (!cmd || cmd->fn == cmd_help || cmd->fn == cmd_version) {
                if (!cmd)
                        fprintf(stderr, "genq: unknown command \"%s\"\n\n",
                                argv[1]);
                usage(cmd ? stdout : stderr);
                return cmd ? 0 : 2;
        }
        hargv[0] = argv[1];
        return cmd->fn(2, hargv);
}

int main(int argc, char **argv)
{
        const struct command *cmd;
        sigset_t set;

        /* Before librdkafka starts threads, so they inherit it: a closed
         * pipe is an EPIPE write error, not a silent death. */
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        sigprocmask(SIG_BLOCK, &set, NULL);
        genq_g.log_ident = "genq";

        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "--version"))
                return cmd_version(argc - 1, argv + 1);
        cmd = find_command(argv[1]);
        if (!cmd) {
                fprintf(stderr, "genq: unknown command \"%s\"\n\n", argv[1]);
                usage(stderr);
                return 2;
        }
        return cmd->fn(argc - 1, argv + 1);
}
