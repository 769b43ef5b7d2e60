/*
 * eng_media: a job's media transfers.
 *
 * In: the input media of stt jobs, fetched once per job before the first
 * provider that needs it.  Out: the result media of a successful job,
 * downloaded into the artifact store (its URLs expire) one file at a
 * time before the job finishes.
 *
 * Part of the engine (DESIGN: engine.c); runs on the engine's thread.
 */
#include "eng_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xmem.h"

/* ---- input media (stt uploads) ------------------------------------------ */

#define FETCH_TRIES 3

void eng_start_fetch(engine_t *e, struct job *j)
{
        /* The URL comes from the job: same address policy as media. */
        struct provider_req req = {.method = "GET", .media = 1};
        char errstr[256];

        snprintf(req.url, sizeof(req.url), "%s", j->pb->stt->audio_url);
        if (httploop_send(e->hl, &req, (long)e->w->input_timeout_ms,
                          (size_t)e->w->max_input_bytes, eng_on_http_done, j,
                          errstr, sizeof(errstr))) {
                eng_fail_job(e, j, "fatal_job", "input: %s", errstr);
                return;
        }
        j->state = JOB_INFLIGHT;
        j->step = STEP_FETCH;
}

/* 2xx: keep the bytes for every provider of the chain.  4xx and an
 * oversized body: the job's input is bad (fatal_job, per the reference's
 * "unreachable input URL").  Transport errors and 5xx: a few tries. */
void eng_on_fetch_done(engine_t *e, struct job *j,
                       const struct provider_resp *resp)
{
        int64_t delay;

        if (resp->status >= 200 && resp->status < 300 && !resp->truncated) {
                j->input = xmalloc(resp->body_len ? resp->body_len : 1);
                memcpy(j->input, resp->body, resp->body_len);
                j->input_len = resp->body_len;
                j->input_ctype = xstrdup(resp->content_type);
                eng_start_attempt(e, j);
                return;
        }
        if (resp->truncated || (resp->status >= 400 && resp->status < 500)) {
                eng_fail_job(e, j, "fatal_job", "input %s: %s",
                             j->pb->stt->audio_url,
                             resp->truncated
                                     ? "larger than worker.max_input_bytes"
                                     : "refused by its server");
                return;
        }
        delay = backoff_delay_ms(&e->bo, ++j->fetch_tries, -1, eng_rnd32(e));
        if (j->fetch_tries >= FETCH_TRIES ||
            backoff_fit_deadline(delay, e->now_us, j->deadline_us) < 0) {
                eng_fail_job(e, j, "fatal_job", "input %s unreachable: %s",
                             j->pb->stt->audio_url,
                             resp->transport_err ? resp->transport_msg
                                                 : "server error");
                return;
        }
        j->step = STEP_FETCH;
        eng_schedule_retry(e, j, delay);
}

/* ---- result media ------------------------------------------------------- */

#define MEDIA_TRIES 3

/* The provider delivered.  Its result URLs expire, so their media is
 * downloaded into the artifact store before the job is finished. */
void eng_on_provider_success(engine_t *e, struct job *j,
                             struct provider_result *res)
{
        if (!*e->w->artifact_dir || res->n_urls == 0) {
                eng_finish_job(e, j, 1, res);
                return;
        }
        j->res = xmalloc(sizeof(*j->res));
        *j->res = *res;
        memset(res, 0, sizeof(*res)); /* now owned by the job */
        provider_result_clear(res);
        j->dl_next = 0;
        j->dl_tries = 0;
        j->artifacts = json_array();
        eng_start_media(e, j);
}

void eng_media_path(const engine_t *e, const struct job *j, int part,
                    const char *ext, char *out, size_t outsz)
{
        snprintf(out, outsz, "%s/%s-%zu%s%s", e->w->artifact_dir, j->id,
                 j->dl_next, ext, part ? ".part" : "");
}

/* ".mp4" from the URL's last path segment, if it is a plain extension. */
static void url_ext(const char *url, char out[12])
{
        const char *q = url + strcspn(url, "?#");
        const char *dot = NULL;

        for (const char *c = url; c < q; c++)
                if (*c == '/')
                        dot = NULL;
                else if (*c == '.')
                        dot = c;
        out[0] = '\0';
        if (!dot || q - dot > 8)
                return;
        for (const char *c = dot + 1; c < q; c++)
                if (!isalnum((unsigned char)*c))
                        return;
        snprintf(out, 12, "%.*s", (int)(q - dot), dot);
}

static void finish_media(engine_t *e, struct job *j)
{
        struct provider_result *res = j->res;

        j->res = NULL;
        eng_finish_job(e, j, 1, res);
        provider_result_clear(res);
        free(res);
}

void eng_start_media(engine_t *e, struct job *j)
{
        struct provider_req req = {.method = "GET", .media = 1};
        char path[1200], errstr[256];

        if (j->dl_next >= j->res->n_urls ||
            j->dl_next >= (size_t)e->w->media_max_files) {
                finish_media(e, j);
                return;
        }
        eng_media_path(e, j, 1, "", path, sizeof(path));
        j->dl_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        snprintf(req.url, sizeof(req.url), "%s", j->res->urls[j->dl_next]);
        req.sink_fd = j->dl_fd;
        if (j->dl_fd < 0 ||
            httploop_send(e->hl, &req, (long)e->w->media_timeout_ms,
                          (size_t)e->w->media_max_bytes, eng_on_http_done, j,
                          errstr, sizeof(errstr))) {
                eng_fail_job(e, j, "media", "result media: cannot store %s: %s",
                             path, j->dl_fd < 0 ? strerror(errno) : errstr);
                return;
        }
        j->state = JOB_INFLIGHT;
        j->step = STEP_MEDIA;
}

static void keep_artifact(engine_t *e, struct job *j,
                          const struct provider_resp *resp)
{
        char part[1200], path[1200], ext[12];

        url_ext(j->res->urls[j->dl_next], ext);
        eng_media_path(e, j, 1, "", part, sizeof(part));
        eng_media_path(e, j, 0, ext, path, sizeof(path));
        if (rename(part, path))
                log_warn("job", "job %s: rename %s: %s", j->id, part,
                         strerror(errno));
        json_array_append_new(
                j->artifacts,
                json_pack("{s:I, s:s, s:s, s:I, s:s, s:s?}", "n",
                          (json_int_t)j->dl_next, "url",
                          j->res->urls[j->dl_next], "path", path, "bytes",
                          (json_int_t)resp->body_len, "sha256", resp->sha256,
                          "content_type", resp->content_type));
}

/* 2xx: keep it and go on.  4xx or too big: the media is gone (an expired
 * URL) and the job fails -- a hold charged for it is refunded.  5xx and
 * transport errors: a few tries. */
void eng_on_media_done(engine_t *e, struct job *j,
                       const struct provider_resp *resp)
{
        char part[1200];
        int64_t delay;

        close(j->dl_fd);
        j->dl_fd = 0;
        if (resp->status >= 200 && resp->status < 300 && !resp->truncated &&
            !resp->transport_err) {
                keep_artifact(e, j, resp);
                j->dl_next++;
                j->dl_tries = 0;
                eng_start_media(e, j);
                return;
        }
        eng_media_path(e, j, 1, "", part, sizeof(part));
        unlink(part);
        if (resp->truncated || (resp->status >= 400 && resp->status < 500)) {
                eng_fail_job(e, j, "media", "result media %s: %s",
                             j->res->urls[j->dl_next],
                             resp->truncated
                                     ? "larger than worker.media_max_bytes"
                                     : "refused or expired (4xx)");
                return;
        }
        delay = backoff_delay_ms(&e->bo, ++j->dl_tries, -1, eng_rnd32(e));
        if (j->dl_tries >= MEDIA_TRIES) {
                eng_fail_job(e, j, "media", "result media %s unreachable: %s",
                             j->res->urls[j->dl_next],
                             resp->transport_err ? resp->transport_msg
                                                 : "server error");
                return;
        }
        j->step = STEP_MEDIA;
        eng_schedule_retry(e, j, delay);
}
