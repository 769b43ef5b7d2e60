/*
 * `genq submit` and `genq produce-raw`: the command-line face of libgenq.
 *
 * submit runs in one of two modes.  With -f it streams a JSONL file (or
 * stdin): each line is parsed, checked and queued at once, delivery reports
 * are served between lines, and at most MAX_INFLIGHT jobs wait for a report
 * at any time, so memory stays flat however long the file is.  Without -f
 * it builds one job from flags, through the same JSON path (jobjson), so
 * both modes accept and refuse the same things.
 *
 * Options are declared in tables (struct flag_def) and parsed by one
 * getopt_long loop that stores each value at its offset.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "codec.h"
#include "conf.h"
#include "gconf.h"
#include "jobjson.h"
#include "libgenq.h"
#include "xmem.h"

#define MAX_INFLIGHT 20000        /**< jobs queued without a report yet */
#define PROGRESS_INTERVAL_US 100000
#define RAW_MAX_BYTES (64 * 1024 * 1024)
#define MAX_FLAGS 24

/* ---- option tables ------------------------------------------------------ */

enum arg_type {
        ARG_STR,  /**< const char *, borrowed from argv */
        ARG_INT,  /**< int64_t, a whole number within int32 */
        ARG_NUM,  /**< double */
        ARG_LIST, /**< json_t * array of strings (repeatable) */
        ARG_KV,   /**< json_t * object from k=v (repeatable) */
        ARG_FLAG, /**< int set to 1 */
};

struct flag_def {
        const char *name;   /**< long name, without "--" */
        char short_name;    /**< or 0 */
        enum arg_type type; /**< how the value is parsed and stored */
        size_t offset;      /**< offsetof() into the args struct */
};

struct submit_args {
        const char *file;      /**< -f: JSONL path, "-" = stdin */
        const char *ids_out;   /**< --ids-out: path or "-" */
        int unchecked;         /**< --unchecked (testing aid) */
        const char *tenant;    /**< --tenant */
        const char *kind;      /**< --kind */
        const char *prompt;    /**< --prompt */
        const char *audio_url; /**< --audio-url */
        const char *model;     /**< --model */
        const char *route;     /**< --route */
        const char *callback_url; /**< --callback-url */
        const char *job_id;    /**< --job-id */
        int64_t priority;      /**< --priority */
        int64_t max_tokens;    /**< --max-tokens */
        double budget;         /**< --budget; NAN = not given */
        json_t *providers;     /**< --provider, repeatable */
        json_t *meta;          /**< --meta k=v, repeatable */
};

#define S(f) offsetof(struct submit_args, f)
static const struct flag_def submit_flags[] = {
        {"file", 'f', ARG_STR, S(file)},
        {"ids-out", 0, ARG_STR, S(ids_out)},
        {"unchecked", 0, ARG_FLAG, S(unchecked)},
        {"tenant", 0, ARG_STR, S(tenant)},
        {"kind", 0, ARG_STR, S(kind)},
        {"prompt", 0, ARG_STR, S(prompt)},
        {"audio-url", 0, ARG_STR, S(audio_url)},
        {"model", 0, ARG_STR, S(model)},
        {"route", 0, ARG_STR, S(route)},
        {"callback-url", 0, ARG_STR, S(callback_url)},
        {"job-id", 0, ARG_STR, S(job_id)},
        {"priority", 0, ARG_INT, S(priority)},
        {"max-tokens", 0, ARG_INT, S(max_tokens)},
        {"budget", 0, ARG_NUM, S(budget)},
        {"provider", 0, ARG_LIST, S(providers)},
        {"meta", 0, ARG_KV, S(meta)},
        {NULL, 0, ARG_STR, 0},
};

struct raw_args {
        const char *topic; /**< --topic */
        const char *key;   /**< --key */
        const char *file;  /**< -f, default stdin */
};

#define R(f) offsetof(struct raw_args, f)
static const struct flag_def raw_flags[] = {
        {"topic", 't', ARG_STR, R(topic)},
        {"key", 'k', ARG_STR, R(key)},
        {"file", 'f', ARG_STR, R(file)},
        {NULL, 0, ARG_STR, 0},
};

static const char submit_usage[] =
        "usage: genq submit [options] [-f FILE|-]\n"
        "\n"
        "Put jobs on Kafka (topic <kafka.topic_prefix>.<kind>).\n"
        "\n"
        "One job from flags (prints its job id once delivered):\n"
        "  --tenant T        tenant id (default \"default\")\n"
        "  --kind K          chat, image, video, stt or tts (default chat)\n"
        "  --prompt TEXT     chat: one user message; image/video: prompt;\n"
        "                    tts: the text\n"
        "  --audio-url URL   stt: the audio to transcribe\n"
        "  --model M         model hint\n"
        "  --route R         named route\n"
        "  --callback-url U  POST the signed completion event to U\n"
        "  --provider P      pin a provider (repeatable, in order)\n"
        "  --job-id ID       idempotency key (default: a new UUID)\n"
        "  --priority N      -100..100\n"
        "  --max-tokens N    chat only\n"
        "  --budget X        most credits the job may cost\n"
        "  --meta k=v        metadata (repeatable)\n"
        "\n"
        "Many jobs from JSON Lines (one job object per line; blank lines and\n"
        "lines starting with # are skipped; see common/jobjson.h):\n"
        "  -f FILE|-         read FILE, or stdin for -\n"
        "  --ids-out PATH|-  write LINE<TAB>JOB_ID of each delivered job\n"
        "                    here, in delivery order (default FILE.ids;\n"
        "                    stdout when reading stdin)\n"
        "  --tenant T        tenant for lines that have no tenant_id\n"
        "\n"
        "  --unchecked       testing aid: skip validation, so deliberately\n"
        "                    wrong jobs (kind chat with an image payload)\n"
        "                    reach the topic of their kind; JSON keys and\n"
        "                    types are still checked\n"
        "  -c FILE           config file (default $GENQ_CONFIG)\n"
        "  -X key=value      override a setting (kafka.brokers=host:port,\n"
        "                    kafka.<librdkafka property>=...)\n"
        "\n"
        "Exit status: 0 if every job was delivered, 1 if any was invalid or\n"
        "failed, 2 on a usage error.\n";

static const char raw_usage[] =
        "usage: genq produce-raw --topic T [--key K] [-f FILE]\n"
        "\n"
        "Produce the bytes of FILE (default stdin) as one message, unchecked\n"
        "and without the genq.schema header: a testing tool for malformed\n"
        "messages and the dead-letter path.\n"
        "  -t, --topic T     topic (required)\n"
        "  -k, --key K       message key (default none)\n"
        "  -f, --file FILE   input (default stdin)\n"
        "  -c FILE, -X key=value   as for genq submit\n";

/* ---- option parsing ----------------------------------------------------- */

static int usage_error(const char *cmd, const char *usage, const char *msg,
                       const char *what)
{
        fprintf(stderr, "genq %s: %s%s\n\n%s", cmd, msg, what, usage);
        return 2;
}

static int bad_value(const char *cmd, const char *usage,
                     const struct flag_def *d, const char *val)
{
        static const char *want[] = {
                [ARG_INT] = "a whole number",
                [ARG_NUM] = "a number",
                [ARG_KV] = "key=value",
        };
        char msg[256];

        snprintf(msg, sizeof(msg), "--%s: \"%.100s\" is not %s", d->name,
                 val, want[d->type] ? want[d->type] : "valid");
        return usage_error(cmd, usage, msg, "");
}

static int parse_int(const char *s, int64_t *out)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || *end || v < INT32_MIN || v > INT32_MAX)
                return -1;
        *out = v;
        return 0;
}

static int parse_num(const char *s, double *out)
{
        char *end;

        errno = 0;
        *out = strtod(s, &end);
        return errno || end == s || *end || !isfinite(*out) ? -1 : 0;
}

/* Store \p val for \p d into \p base.  @returns 0 or -1 (bad value). */
static int store_flag(const struct flag_def *d, void *base, const char *val)
{
        void *p = (char *)base + d->offset;
        json_t **j = p;
        const char *eq;

        switch (d->type) {
        case ARG_STR:
                *(const char **)p = val;
                return 0;
        case ARG_INT:
                return parse_int(val, p);
        case ARG_NUM:
                return parse_num(val, p);
        case ARG_FLAG:
                *(int *)p = 1;
                return 0;
        case ARG_LIST:
                if (!*j)
                        *j = json_array();
                return json_array_append_new(*j, json_string(val));
        case ARG_KV:
                eq = strchr(val, '=');
                if (!eq || eq == val)
                        return -1;
                if (!*j)
                        *j = json_object();
                return json_object_setn_new(*j, val, (size_t)(eq - val),
                                            json_string(eq + 1));
        }
        return -1;
}

/* getopt_long tables from \p defs: long option i has val 256 + i. */
static void build_getopt(const struct flag_def *defs, struct option *lo,
                         char *shortopts)
{
        size_t n = 0, s = 0;

        shortopts[s++] = ':'; /* report a missing value as ':' */
        shortopts[s++] = 'h';
        for (; defs[n].name; n++) {
                if (n == MAX_FLAGS)
                        fatal("submit: more than %d flags", MAX_FLAGS);
                lo[n] = (struct option){defs[n].name,
                                        defs[n].type == ARG_FLAG
                                                ? no_argument
                                                : required_argument,
                                        NULL, 256 + (int)n};
                if (defs[n].short_name)
                        shortopts[s++] = defs[n].short_name;
                if (defs[n].short_name && defs[n].type != ARG_FLAG)
                        shortopts[s++] = ':';
        }
        lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
        lo[n] = (struct option){NULL, 0, NULL, 0};
        shortopts[s] = '\0';
}

static const struct flag_def *short_def(const struct flag_def *defs, int c)
{
        for (; defs->name; defs++)
                if (defs->short_name && defs->short_name == c)
                        return defs;
        return NULL;
}

/**
 * Parse argv by \p defs into \p base.
 * @returns 0 to go on, 1 if help was printed, 2 on a usage error (printed).
 */
static int parse_flags(int argc, char **argv, const char *cmd,
                       const char *usage, const struct flag_def *defs,
                       void *base)
{
        struct option lo[MAX_FLAGS + 2];
        char shortopts[2 * MAX_FLAGS + 3];
        const struct flag_def *d;
        int c;

        build_getopt(defs, lo, shortopts);
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
                if (c == 'h') {
                        fputs(usage, stdout);
                        return 1;
                }
                if (c == ':')
                        return usage_error(cmd, usage, "missing value for ",
                                           argv[optind - 1]);
                if (c == '?')
                        return usage_error(cmd, usage, "unknown option ",
                                           argv[optind - 1]);
                d = c >= 256 ? &defs[c - 256] : short_def(defs, c);
                if (store_flag(d, base, optarg))
                        return bad_value(cmd, usage, d, optarg);
        }
        if (optind < argc)
                return usage_error(cmd, usage, "unexpected argument ",
                                   argv[optind]);
        return 0;
}

/* ---- config and client ------------------------------------------------ */

/* A -X key nobody bound is a typo.  kafka.* keys went to librdkafka,
 * which judged them; file keys may be other programs' settings. */
static int reject_unused_x(void *opaque, const char *key, const char *val,
                           const char *where, char *errstr,
                           size_t errstr_size)
{
        if (strcmp(where, "-X") || !strncmp(key, "kafka.", 6))
                return 0;
        snprintf(errstr, errstr_size, "-X %s: unknown setting", key);
        return -1;
}

/* The shared settings from \p c, then a client with their kafka.* keys. */
static genq_client_t *open_client(conf_t *c, genq_delivery_cb *cb,
                                  void *opaque, char *errstr,
                                  size_t errstr_size)
{
        struct gconf g = {0};
        struct genq_client_opts o = {.conf = c, .on_delivery = cb,
                                     .opaque = opaque};
        genq_client_t *gc = NULL;

        if (gconf_bind(c, &g, errstr, errstr_size))
                goto out_clear;
        o.brokers = g.brokers;
        o.topic_prefix = g.topic_prefix;
        gc = genq_client_new(&o, errstr, errstr_size);
        if (gc && conf_each_unused(c, "", reject_unused_x, NULL, errstr,
                                   errstr_size)) {
                genq_client_destroy(gc);
                gc = NULL;
        }
out_clear:
        gconf_clear(&g);
        return gc;
}

/* ---- progress and delivery reports --------------------------------------- */

struct run {
        const char *name;  /**< input name for messages: FILE or <stdin> */
        FILE *ids;         /**< LINE<TAB>JOB_ID of delivered jobs, or NULL */
        int tty;           /**< stderr is a terminal: show progress */
        int64_t last_us;   /**< when progress was last drawn */
        long total;        /**< job lines in the input, or -1 if unknown */
        long submitted;    /**< queued */
        long delivered;    /**< acknowledged by the broker */
        long failed;       /**< delivery or produce failed */
        long invalid;      /**< refused before producing */
        int ids_errno;     /**< first write error on ids */
};

static int64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void progress_clear(struct run *r)
{
        if (r->tty && r->last_us)
                fputs("\r\033[K", stderr);
}

static void progress(struct run *r, int force)
{
        int64_t now;

        if (!r->tty)
                return;
        now = mono_us();
        if (!force && now - r->last_us < PROGRESS_INTERVAL_US)
                return;
        r->last_us = now;
        if (r->total >= 0)
                fprintf(stderr, "\r submitted %ld/%ld, delivered %ld, "
                                "failed %ld",
                        r->submitted, r->total, r->delivered, r->failed);
        else
                fprintf(stderr, "\r submitted %ld, delivered %ld, failed %ld",
                        r->submitted, r->delivered, r->failed);
}

/* A message about one input line, not garbled by the progress line. */
static void line_msg(struct run *r, long line, const char *what,
                     const char *reason)
{
        progress_clear(r);
        if (line > 0)
                fprintf(stderr, "%s:%ld: %s%s\n", r->name, line, what,
                        reason);
        else
                fprintf(stderr, "%s: %s%s\n", r->name, what, reason);
        if (r->tty)
                r->last_us = 0; /* redraw soon */
}

static void on_delivery(void *opaque, void *msg_opaque, const char *job_id,
                        int ok, const char *errstr)
{
        struct run *r = opaque;
        long line = (long)(intptr_t)msg_opaque;

        if (!ok) {
                r->failed++;
                line_msg(r, line, "delivery failed: ", errstr);
                return;
        }
        r->delivered++;
        if (r->ids && fprintf(r->ids, "%ld\t%s\n", line, job_id) < 0 &&
            !r->ids_errno)
                r->ids_errno = errno;
}

/* Serve reports until none is outstanding (bounded by librdkafka's
 * message.timeout.ms: every message gets a report). */
static void drain(genq_client_t *gc, struct run *r)
{
        while (genq_outstanding(gc) > 0) {
                genq_flush(gc, 100);
                progress(r, 0);
        }
}

/* ---- submit -f: JSON Lines ----------------------------------------------- */

struct file_ctx {
        genq_client_t *gc;
        struct run run;
        const char *tenant; /**< for lines without tenant_id, or NULL */
        int unchecked;
};

/* Skipped: blank, or a comment ('#' after optional blanks). */
static int skip_line(const char *s)
{
        s += strspn(s, " \t\r\n");
        return !*s || *s == '#';
}

static long count_job_lines(FILE *fp)
{
        char *line = NULL;
        size_t cap = 0;
        long n = 0;

        while (getline(&line, &cap, fp) != -1)
                n += !skip_line(line);
        free(line);
        rewind(fp);
        return n;
}

static void submit_line(struct file_ctx *fc, const char *text, size_t len,
                        long lineno)
{
        char errstr[512];
        Genq__V1__Job *job, with_tenant;
        const Genq__V1__Job *j;
        int rc;

        job = jobjson_parse(text, len, fc->unchecked ? JOBJSON_F_LAX : 0,
                            errstr, sizeof(errstr));
        if (!job) {
                fc->run.invalid++;
                line_msg(&fc->run, lineno, "", errstr);
                return;
        }
        j = job;
        if (fc->tenant && !*job->tenant_id) {
                with_tenant = *job; /* shallow: only tenant_id differs */
                with_tenant.tenant_id = (char *)fc->tenant;
                j = &with_tenant;
        }
        rc = genq_submit_ex(fc->gc, j,
                            fc->unchecked ? GENQ_SUBMIT_F_UNCHECKED : 0, NULL,
                            (void *)(intptr_t)lineno, errstr, sizeof(errstr));
        codec_job_free(job);
        if (rc == GENQ_OK) {
                fc->run.submitted++;
                return;
        }
        if (rc == GENQ_EINVALID || rc == GENQ_ETOOBIG)
                fc->run.invalid++;
        else
                fc->run.failed++;
        line_msg(&fc->run, lineno, "", errstr);
}

static int read_lines(struct file_ctx *fc, FILE *fp)
{
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        long lineno = 0;

        while ((n = getline(&line, &cap, fp)) != -1) {
                lineno++;
                if (skip_line(line))
                        continue;
                while (genq_outstanding(fc->gc) >= MAX_INFLIGHT) {
                        genq_poll(fc->gc, 10);
                        progress(&fc->run, 0);
                }
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        n--; /* so JSON errors give the column on the line */
                submit_line(fc, line, (size_t)n, lineno);
                genq_poll(fc->gc, 0);
                progress(&fc->run, 0);
        }
        free(line);
        if (!ferror(fp))
                return 0;
        progress_clear(&fc->run);
        fprintf(stderr, "genq submit: %s: read error: %s\n", fc->run.name,
                strerror(errno));
        return -1;
}

/* Where ids go: --ids-out, else FILE.ids, else stdout for stdin. */
static FILE *open_ids(const struct submit_args *a, int is_stdin)
{
        char path[4096];
        FILE *fp;

        if (a->ids_out && !strcmp(a->ids_out, "-"))
                return stdout;
        if (!a->ids_out && is_stdin)
                return stdout;
        snprintf(path, sizeof(path), "%s%s", a->ids_out ? a->ids_out : a->file,
                 a->ids_out ? "" : ".ids");
        fp = fopen(path, "w");
        if (!fp)
                fprintf(stderr, "genq submit: %s: %s\n", path,
                        strerror(errno));
        return fp;
}

static int close_ids(struct run *r)
{
        int err = r->ids_errno;

        if (r->ids == stdout) {
                if (fflush(stdout) && !err)
                        err = errno;
        } else if (fclose(r->ids) && !err) {
                err = errno;
        }
        r->ids = NULL;
        if (!err)
                return 0;
        fprintf(stderr, "genq submit: writing job ids: %s\n", strerror(err));
        return -1;
}

static int run_file(struct file_ctx *fc, const struct submit_args *a,
                    FILE *in)
{
        struct run *r = &fc->run;
        int rc = 0;

        r->ids = open_ids(a, in == stdin);
        if (!r->ids)
                return 1;
        r->tty = isatty(STDERR_FILENO);
        r->total = r->tty && in != stdin ? count_job_lines(in) : -1;
        if (read_lines(fc, in))
                rc = 1;
        drain(fc->gc, r);
        progress(r, 1);
        progress_clear(r);
        if (close_ids(r))
                rc = 1;
        fprintf(stderr,
                "genq submit: %ld submitted, %ld delivered, %ld failed "
                "(invalid %ld)\n",
                r->submitted, r->delivered, r->failed, r->invalid);
        if (r->invalid || r->failed || r->delivered != r->submitted)
                rc = 1;
        return rc;
}

static int submit_file(conf_t *c, const struct submit_args *a)
{
        struct file_ctx fc = {.tenant = a->tenant, .unchecked = a->unchecked};
        char errstr[512];
        int is_stdin = !strcmp(a->file, "-");
        FILE *in = is_stdin ? stdin : fopen(a->file, "r");
        int rc;

        if (!in) {
                fprintf(stderr, "genq submit: %s: %s\n", a->file,
                        strerror(errno));
                return 1;
        }
        fc.run.name = is_stdin ? "<stdin>" : a->file;
        fc.gc = open_client(c, on_delivery, &fc.run, errstr, sizeof(errstr));
        if (!fc.gc) {
                fprintf(stderr, "genq submit: %s\n", errstr);
                rc = 1;
                goto out_close_in;
        }
        rc = run_file(&fc, a, in);
        genq_client_destroy(fc.gc);
out_close_in:
        if (!is_stdin)
                fclose(in);
        return rc;
}

/* ---- submit from flags --------------------------------------------------- */

/* The payload object for --kind from --prompt, --audio-url, --model,
 * --max-tokens.  @returns it, or NULL with a usage message in errstr. */
static json_t *flag_payload(const struct submit_args *a, const char *kind,
                            char *errstr, size_t errstr_size)
{
        static const char *prompt_key[] = {
                [GENQ__V1__KIND__KIND_CHAT] = "prompt",
                [GENQ__V1__KIND__KIND_IMAGE] = "prompt",
                [GENQ__V1__KIND__KIND_VIDEO] = "prompt",
                [GENQ__V1__KIND__KIND_TTS] = "text",
        };
        Genq__V1__Kind k = codec_kind_parse(kind);
        json_t *p = json_object();

        if (a->prompt && !prompt_key[k])
                snprintf(errstr, errstr_size, "--prompt does not apply to "
                                              "%s jobs", kind);
        else if (a->audio_url && k != GENQ__V1__KIND__KIND_STT)
                snprintf(errstr, errstr_size, "--audio-url is for stt jobs");
        else if (a->max_tokens && k != GENQ__V1__KIND__KIND_CHAT)
                snprintf(errstr, errstr_size, "--max-tokens is for chat jobs");
        else
                errstr[0] = '\0';
        if (errstr[0]) {
                json_decref(p);
                return NULL;
        }
        if (a->prompt)
                json_object_set_new(p, prompt_key[k], json_string(a->prompt));
        if (a->audio_url)
                json_object_set_new(p, "audio_url", json_string(a->audio_url));
        if (a->model)
                json_object_set_new(p, "model", json_string(a->model));
        if (a->max_tokens)
                json_object_set_new(p, "max_tokens",
                                    json_integer(a->max_tokens));
        return p;
}

static void set_str(json_t *o, const char *key, const char *val)
{
        if (val)
                json_object_set_new(o, key, json_string(val));
}

/* The job object for the flags, in the jobjson format. */
static json_t *flag_job(const struct submit_args *a, char *errstr,
                        size_t errstr_size)
{
        const char *kind = a->kind ? a->kind : "chat";
        json_t *o, *payload;

        if (codec_kind_parse(kind) == GENQ__V1__KIND__KIND_UNSPECIFIED) {
                snprintf(errstr, errstr_size, "--kind %s is not chat, image, "
                                              "video, stt or tts", kind);
                return NULL;
        }
        payload = flag_payload(a, kind, errstr, errstr_size);
        if (!payload)
                return NULL;
        o = json_object();
        set_str(o, "tenant_id", a->tenant ? a->tenant : "default");
        set_str(o, "kind", kind);
        set_str(o, "job_id", a->job_id);
        set_str(o, "route", a->route);
        set_str(o, "callback_url", a->callback_url);
        if (a->priority)
                json_object_set_new(o, "priority", json_integer(a->priority));
        if (!isnan(a->budget))
                json_object_set_new(o, "budget_credits", json_real(a->budget));
        if (a->providers)
                json_object_set(o, "providers", a->providers);
        if (a->meta)
                json_object_set(o, "metadata", a->meta);
        json_object_set_new(o, kind, payload);
        return o;
}

static int submit_one(conf_t *c, const struct submit_args *a)
{
        struct run r = {.name = "genq submit", .total = -1};
        char errstr[512], id[GENQ_JOB_ID_SIZE];
        genq_client_t *gc;
        Genq__V1__Job *job;
        json_t *o;
        int rc;

        o = flag_job(a, errstr, sizeof(errstr));
        if (!o)
                return usage_error("submit", submit_usage, errstr, "");
        job = jobjson_from_json(o, a->unchecked ? JOBJSON_F_LAX : 0, errstr,
                                sizeof(errstr));
        json_decref(o);
        if (!job) {
                fprintf(stderr, "genq submit: %s\n", errstr);
                return 1;
        }
        gc = open_client(c, on_delivery, &r, errstr, sizeof(errstr));
        rc = gc ? genq_submit_ex(gc, job,
                                 a->unchecked ? GENQ_SUBMIT_F_UNCHECKED : 0,
                                 id, NULL, errstr, sizeof(errstr))
                : GENQ_EKAFKA;
        codec_job_free(job);
        if (rc == GENQ_OK)
                drain(gc, &r);
        genq_client_destroy(gc);
        if (rc != GENQ_OK) {
                fprintf(stderr, "genq submit: %s\n", errstr);
                return 1;
        }
        if (r.delivered != 1)
                return 1; /* on_delivery said why */
        printf("%s\n", id);
        return fflush(stdout) ? 1 : 0;
}

int cmd_submit(int argc, char **argv)
{
        struct submit_args a = {.budget = NAN};
        char errstr[512];
        conf_t *c;
        int rc;

        c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));
        if (!c) {
                fprintf(stderr, "genq submit: %s\n", errstr);
                return 2;
        }
        rc = parse_flags(argc, argv, "submit", submit_usage, submit_flags,
                         &a);
        if (rc == 0)
                rc = a.file ? submit_file(c, &a) : submit_one(c, &a);
        else if (rc == 1)
                rc = 0; /* help */
        json_decref(a.providers);
        json_decref(a.meta);
        conf_destroy(c);
        return rc;
}

/* ---- produce-raw ------------------------------------------------------ */

/* All of \p fp, up to RAW_MAX_BYTES.  @returns malloc'd bytes or NULL. */
static char *slurp(FILE *fp, size_t *lenp)
{
        size_t len = 0, cap = 65536;
        char *buf = xmalloc(cap);
        size_t n;

        while ((n = fread(buf + len, 1, cap - len, fp)) > 0) {
                len += n;
                if (len == cap && cap < RAW_MAX_BYTES) {
                        cap *= 2;
                        buf = xrealloc(buf, cap);
                } else if (len == cap) {
                        free(buf);
                        errno = EFBIG;
                        return NULL;
                }
        }
        if (ferror(fp)) {
                free(buf);
                return NULL;
        }
        *lenp = len;
        return buf;
}

static int produce_raw(conf_t *c, const struct raw_args *a, const char *buf,
                       size_t len)
{
        struct run r = {.name = "genq produce-raw", .total = -1};
        char errstr[512];
        genq_client_t *gc;
        int rc;

        gc = open_client(c, on_delivery, &r, errstr, sizeof(errstr));
        rc = gc ? genq_produce_raw(gc, a->topic, a->key, buf, len, NULL,
                                   errstr, sizeof(errstr))
                : GENQ_EKAFKA;
        if (rc == GENQ_OK)
                drain(gc, &r);
        genq_client_destroy(gc);
        if (rc != GENQ_OK)
                fprintf(stderr, "genq produce-raw: %s\n", errstr);
        return rc == GENQ_OK && r.delivered == 1 ? 0 : 1;
}

int cmd_produce_raw(int argc, char **argv)
{
        struct raw_args a = {0};
        char errstr[512], *buf = NULL;
        FILE *in = stdin;
        size_t len = 0;
        conf_t *c;
        int rc;

        c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));
        if (!c) {
                fprintf(stderr, "genq produce-raw: %s\n", errstr);
                return 2;
        }
        rc = parse_flags(argc, argv, "produce-raw", raw_usage, raw_flags, &a);
        if (rc == 0 && !a.topic)
                rc = usage_error("produce-raw", raw_usage, "--topic is "
                                                           "required", "");
        if (rc) {
                rc = rc == 1 ? 0 : rc; /* 1: help was printed */
                goto out_destroy_conf;
        }
        if (a.file && strcmp(a.file, "-"))
                in = fopen(a.file, "rb");
        if (in)
                buf = slurp(in, &len);
        if (!buf) {
                fprintf(stderr, "genq produce-raw: %s: %s\n",
                        a.file ? a.file : "<stdin>", strerror(errno));
                rc = 1;
        } else {
                rc = produce_raw(c, &a, buf, len);
        }
        free(buf);
        if (in && in != stdin)
                fclose(in);
out_destroy_conf:
        conf_destroy(c);
        return rc;
}
