/*
 * genq-probe: run one job through one configured provider, no Kafka, no
 * Postgres: build -> HTTP -> parse, fetching input media first and polling
 * async tasks to the end.  For adapter development and for checking a
 * real provider's credentials by hand.  Prints one JSON object.
 *
 *   genq-probe -c CONFIG -p PROVIDER [-j JOB.json | < JOB.json]
 *              [--poll-ms N] [--max-polls N]
 *
 * Exit: 0 success, 1 the provider said no (outcome printed), 2 usage or
 * config error.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "conf.h"
#include "httploop.h"
#include "jobjson.h"
#include "provider.h"
#include "wconf.h"
#include "xmem.h"

struct probe {
        httploop_t *hl;
        int done;
        enum outcome o;
        struct provider_result res;
        struct provider_err err;
        const struct wprovider *p;
        const Genq__V1__Job *job;
        int polling;
        long status;
        struct provider_input in;
        char *in_buf;
};

static void on_done(void *opaque, const struct provider_resp *resp)
{
        struct probe *pr = opaque;
        const struct provider_ops *ops = pr->p->ops;

        provider_result_clear(&pr->res);
        memset(&pr->err, 0, sizeof(pr->err));
        pr->err.retry_after_ms = -1;
        pr->status = resp->status;
        pr->o = pr->polling ? ops->parse_poll(&pr->p->pcfg, pr->job, resp,
                                              &pr->res, &pr->err)
                            : ops->parse(&pr->p->pcfg, pr->job, resp,
                                         &pr->res, &pr->err);
        pr->done = 1;
}

static int send_wait(struct probe *pr, struct provider_req *req)
{
        char errstr[256];

        pr->done = 0;
        if (httploop_send(pr->hl, req, (long)pr->p->timeout_ms,
                          pr->p->pcfg.max_body_bytes, on_done, pr, errstr,
                          sizeof(errstr))) {
                fprintf(stderr, "genq-probe: %s\n", errstr);
                return -1;
        }
        while (!pr->done)
                httploop_run(pr->hl, 100, NULL, 0);
        return 0;
}

static size_t on_input(char *p, size_t sz, size_t n, void *ud)
{
        struct probe *pr = ud;

        pr->in_buf = xrealloc(pr->in_buf, pr->in.len + sz * n + 1);
        memcpy(pr->in_buf + pr->in.len, p, sz * n);
        pr->in.len += sz * n;
        return sz * n;
}

/* Blocking fetch of the stt input: a test tool may block. */
static int fetch_input(struct probe *pr)
{
        const char *url = pr->job->stt ? pr->job->stt->audio_url : NULL;
        CURL *c = curl_easy_init();
        char *ct = NULL;
        long code = 0;
        CURLcode rc;

        if (!url)
                return -1;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_input);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, pr);
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        pr->in.content_type = ct ? strdup(ct) : NULL;
        curl_easy_cleanup(c);
        pr->in.data = pr->in_buf;
        pr->in.filename = strrchr(url, '/') ? strrchr(url, '/') + 1 : "audio";
        return rc == CURLE_OK && code == 200 ? 0 : -1;
}

static void print_result(const struct probe *pr, int polls)
{
        json_t *o = json_pack("{s:s, s:i, s:i}", "outcome",
                              outcome_name(pr->o), "http_status",
                              (int)pr->status, "polls", polls);
        const struct provider_result *r = &pr->res;
        json_t *urls = json_array();
        char *s;

        if (pr->o != OUTCOME_SUCCESS)
                json_object_set_new(o, "error", json_string(pr->err.errstr));
        for (size_t i = 0; i < r->n_urls; i++)
                json_array_append_new(urls, json_string(r->urls[i]));
        json_object_set_new(o, "urls", urls);
        if (r->text)
                json_object_set_new(o, "text", json_string(r->text));
        if (r->model)
                json_object_set_new(o, "model", json_string(r->model));
        if (r->finish_reason)
                json_object_set_new(o, "finish_reason",
                                    json_string(r->finish_reason));
        json_object_set_new(o, "input_tokens", json_integer(r->input_tokens));
        json_object_set_new(o, "output_tokens",
                            json_integer(r->output_tokens));
        json_object_set_new(o, "units", json_real(r->units));
        json_object_set_new(o, "unit", r->unit ? json_string(r->unit)
                                               : json_null());
        json_object_set_new(o, "data_bytes", json_integer((json_int_t)r->data_len));
        if (r->content_type)
                json_object_set_new(o, "content_type",
                                    json_string(r->content_type));
        if (r->task_id)
                json_object_set_new(o, "task_id", json_string(r->task_id));
        if (r->provider_cost)
                json_object_set_new(o, "provider_cost",
                                    json_string(r->provider_cost));
        if (r->usage_json)
                json_object_set_new(o, "usage", json_loads(r->usage_json, 0,
                                                           NULL));
        s = json_dumps(o, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(o);
}

static int run(struct probe *pr, int poll_ms, int max_polls)
{
        struct provider_req req = {0};
        const struct provider_ops *ops = pr->p->ops;
        const char *key = pr->p->keys[0].secret;
        char errstr[256];
        int polls = 0;

        if ((ops->flags & PROVIDER_F_NEEDS_INPUT) && fetch_input(pr)) {
                fprintf(stderr, "genq-probe: cannot fetch the input media\n");
                return 1;
        }
        if (ops->build(&pr->p->pcfg, key, pr->job,
                       pr->in.data ? &pr->in : NULL, &req, errstr,
                       sizeof(errstr))) {
                fprintf(stderr, "genq-probe: build: %s\n", errstr);
                return 1;
        }
        if (send_wait(pr, &req))
                return 1;
        provider_req_clear(&req);
        while ((ops->flags & PROVIDER_F_ASYNC) && pr->o == OUTCOME_SUCCESS &&
               pr->res.task_id && polls < max_polls) {
                char *task = xstrdup(pr->res.task_id);

                pr->polling = 1;
                do {
                        struct timespec ts = {poll_ms / 1000,
                                              (poll_ms % 1000) * 1000000L};

                        nanosleep(&ts, NULL);
                        if (ops->build_poll(&pr->p->pcfg, key, task, &req,
                                            errstr, sizeof(errstr)) ||
                            send_wait(pr, &req)) {
                                fprintf(stderr, "genq-probe: poll: %s\n",
                                        errstr);
                                free(task);
                                provider_req_clear(&req);
                                return 1;
                        }
                        provider_req_clear(&req);
                        polls++;
                } while (pr->o == OUTCOME_PENDING && polls < max_polls);
                free(task);
                break;
        }
        print_result(pr, polls);
        return pr->o == OUTCOME_SUCCESS ? 0 : 1;
}

static char *read_all(FILE *fp)
{
        size_t n = 0, cap = 4096;
        char *b = xmalloc(cap);
        size_t r;

        while ((r = fread(b + n, 1, cap - n - 1, fp)) > 0) {
                n += r;
                if (n + 1 >= cap)
                        b = xrealloc(b, cap *= 2);
        }
        b[n] = '\0';
        return b;
}

int main(int argc, char **argv)
{
        const char *pname = NULL, *jpath = NULL;
        int poll_ms = 200, max_polls = 100, rc = 2;
        struct probe pr = {0};
        struct wconf w;
        char errstr[1024], *text;
        FILE *fp;
        conf_t *c = gconf_load_args(&argc, argv, errstr, sizeof(errstr));
        Genq__V1__Job *job;

        for (int i = 1; c && i + 1 < argc; i += 2) {
                if (!strcmp(argv[i], "-p"))
                        pname = argv[i + 1];
                else if (!strcmp(argv[i], "-j"))
                        jpath = argv[i + 1];
                else if (!strcmp(argv[i], "--poll-ms"))
                        poll_ms = atoi(argv[i + 1]);
                else if (!strcmp(argv[i], "--max-polls"))
                        max_polls = atoi(argv[i + 1]);
        }
        if (!c || !pname || wconf_load(c, &w, errstr, sizeof(errstr))) {
                fprintf(stderr, "usage: genq-probe -c CONFIG -p PROVIDER "
                                "[-j JOB.json] [--poll-ms N] [--max-polls N]"
                                "\n%s\n",
                        c ? errstr : errstr);
                conf_destroy(c);
                return 2;
        }
        pr.p = wconf_provider(&w, pname);
        fp = jpath ? fopen(jpath, "r") : stdin;
        text = fp ? read_all(fp) : NULL;
        if (fp && fp != stdin)
                fclose(fp);
        job = text ? jobjson_parse(text, strlen(text), 0, errstr,
                                   sizeof(errstr))
                   : NULL;
        if (!pr.p || !pr.p->n_keys || !job) {
                fprintf(stderr, "genq-probe: %s\n",
                        !pr.p ? "no such provider"
                              : !pr.p->n_keys ? "provider has no key"
                                              : errstr);
                goto out;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        pr.hl = httploop_new(16, errstr, sizeof(errstr));
        pr.job = job;
        provider_result_clear(&pr.res);
        rc = run(&pr, poll_ms, max_polls);
        provider_result_clear(&pr.res);
        httploop_destroy(pr.hl);
        free(pr.in_buf);
        free((char *)pr.in.content_type);
        curl_global_cleanup();
out:
        codec_job_free(job);
        free(text);
        wconf_clear(&w);
        conf_destroy(c);
        return rc;
}
