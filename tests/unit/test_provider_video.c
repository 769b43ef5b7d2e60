/*
 * Unit tests for the async video/jobs adapters: worker/provider_kie.c
 * ("kie_image", "kie_video"), worker/provider_sf_video.c
 * ("siliconflow_video") and worker/provider_zhipu_video.c
 * ("zhipu_video").  Every build() checked field by field, submit and poll
 * parsing of the reference's samples (verbatim where it gives them), each
 * lifecycle state, and one case per section-12 row of KIE, SiliconFlow
 * (video) and Zhipu.  No network.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider.h"

#define NO_HINT (-2) /* a row that does not check retry_after_ms */

/*
 * Fixtures.
 */

/** An image or video job on the stack. */
struct tjob {
        Genq__V1__Job job;
        Genq__V1__ImageRequest image;
        Genq__V1__VideoRequest video;
        Genq__V1__VideoScene scene[3];
        Genq__V1__VideoScene *scenep[3];
        char *urls[2];
};

static void timage(struct tjob *t, const char *prompt)
{
        memset(t, 0, sizeof(*t));
        genq__v1__job__init(&t->job);
        genq__v1__image_request__init(&t->image);
        t->image.prompt = (char *)prompt;
        t->job.job_id = "job-1";
        t->job.kind = GENQ__V1__KIND__KIND_IMAGE;
        t->job.payload_case = GENQ__V1__JOB__PAYLOAD_IMAGE;
        t->job.image = &t->image;
}

static void timage_inputs(struct tjob *t, size_t n)
{
        t->urls[0] = "https://example.com/a.png";
        t->urls[1] = "https://example.com/b.png";
        t->image.input_image_urls = t->urls;
        t->image.n_input_image_urls = n;
}

static void tvideo(struct tjob *t, const char *prompt)
{
        memset(t, 0, sizeof(*t));
        genq__v1__job__init(&t->job);
        genq__v1__video_request__init(&t->video);
        for (int i = 0; i < 3; i++) {
                genq__v1__video_scene__init(&t->scene[i]);
                t->scenep[i] = &t->scene[i];
        }
        t->video.prompt = (char *)prompt;
        t->job.job_id = "job-1";
        t->job.kind = GENQ__V1__KIND__KIND_VIDEO;
        t->job.payload_case = GENQ__V1__JOB__PAYLOAD_VIDEO;
        t->job.video = &t->video;
}

static void tscenes(struct tjob *t, double d0, double d1)
{
        t->scene[0].prompt = "A kitten with orange headphones at a cozy "
                             "table, cinematic close-up.";
        t->scene[0].duration_s = d0;
        t->scene[1].prompt = "The same kitten licks its lips, satisfied, "
                             "warm lighting.";
        t->scene[1].duration_s = d1;
        t->video.scenes = t->scenep;
        t->video.n_scenes = 2;
}

static struct provider_cfg tcfg(const char *adapter, const char *base,
                                const char *model, const char *extra)
{
        struct provider_cfg p = {
                .name = "p",
                .adapter = adapter,
                .base_url = base,
                .model = model,
                .extra_body = extra,
                .max_body_bytes = 1 << 20,
        };
        return p;
}

static struct provider_resp tresp(long status, const char *body)
{
        struct provider_resp r = {
                .status = status,
                .content_type = "application/json",
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .retry_after_ms = -1,
        };
        return r;
}

/** Build with key "kie-key"; @returns the body parsed (NULL if none). */
static json_t *build_ok(const struct provider_ops *ops,
                        const struct provider_cfg *p, const struct tjob *t,
                        struct provider_req *req)
{
        char errstr[256];
        json_t *body;
        int r;

        r = ops->build(p, "kie-key", &t->job, NULL, req, errstr,
                       sizeof(errstr));
        ck_assert_msg(r == 0, "build failed: %s", errstr);
        ck_assert_ptr_nonnull(req->body);
        ck_assert_uint_eq(req->body_len, strlen(req->body));
        body = json_loads(req->body, 0, NULL);
        ck_assert_ptr_nonnull(body);
        return body;
}

/** A build that must fail, with \p want in the error text. */
static void build_fails(const struct provider_ops *ops,
                        const struct provider_cfg *p, const char *key,
                        const struct tjob *t, const char *want)
{
        struct provider_req req;
        char errstr[256] = "";

        memset(&req, 0x5a, sizeof(req));
        ck_assert_int_eq(ops->build(p, key, &t->job, NULL, &req, errstr,
                                    sizeof(errstr)),
                         -1);
        ck_assert_msg(strstr(errstr, want), "errstr \"%s\" lacks \"%s\"",
                      errstr, want);
        ck_assert_ptr_null(req.headers);
        ck_assert_ptr_null(req.body);
}

/** Build a poll request for \p id with key "kie-key". */
static void poll_ok(const struct provider_ops *ops,
                    const struct provider_cfg *p, const char *id,
                    struct provider_req *req)
{
        char errstr[256];

        ck_assert_msg(ops->build_poll(p, "kie-key", id, req, errstr,
                                      sizeof(errstr)) == 0,
                      "build_poll failed: %s", errstr);
}

static const char *jget(const json_t *o, const char *path)
{
        char k[64];
        const char *dot;

        while ((dot = strchr(path, '.'))) {
                snprintf(k, sizeof(k), "%.*s", (int)(dot - path), path);
                o = json_object_get(o, k);
                path = dot + 1;
        }
        return json_string_value(json_object_get(o, path));
}

/** parse (\p poll 0) or parse_poll (1) of \p resp. */
static enum outcome run(const struct provider_ops *ops, int poll,
                        const struct tjob *t,
                        const struct provider_resp *resp,
                        struct provider_result *res,
                        struct provider_err *err)
{
        struct provider_cfg p = tcfg(ops->name, "https://x", "m", NULL);
        const Genq__V1__Job *job = t ? &t->job : NULL;
        enum outcome o;

        memset(res, 0, sizeof(*res));
        res->units = -1;
        memset(err, 0, sizeof(*err));
        o = poll ? ops->parse_poll(&p, job, resp, res, err)
                 : ops->parse(&p, job, resp, res, err);
        ck_assert_int_eq(err->outcome, o);
        ck_assert_int_eq(err->http_status, resp->status);
        return o;
}

/*
 * Registry.
 */

START_TEST(test_registry)
{
        static const struct {
                const char *name;
                Genq__V1__Kind kind;
        } want[] = {
                {"kie_image", GENQ__V1__KIND__KIND_IMAGE},
                {"kie_video", GENQ__V1__KIND__KIND_VIDEO},
                {"siliconflow_video", GENQ__V1__KIND__KIND_VIDEO},
                {"zhipu_video", GENQ__V1__KIND__KIND_VIDEO},
        };

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const struct provider_ops *ops =
                        provider_ops_find(want[i].name);

                ck_assert_ptr_nonnull(ops);
                ck_assert_int_eq(ops->kind, want[i].kind);
                ck_assert_uint_eq(ops->flags, PROVIDER_F_ASYNC);
                ck_assert_ptr_nonnull(ops->build);
                ck_assert_ptr_nonnull(ops->parse);
                ck_assert_ptr_nonnull(ops->build_poll);
                ck_assert_ptr_nonnull(ops->parse_poll);
        }
}
END_TEST

/*
 * KIE build: image.
 */

START_TEST(test_kie_image_build)
{
        struct provider_cfg p = tcfg("kie_image", "https://api.kie.ai/",
                                     "google/nano-banana", NULL);
        struct provider_req req;
        json_t *body, *input;
        struct tjob t;

        timage(&t, "a banana in space");
        t.image.output_format = "png";
        t.image.aspect_ratio = "1:1";
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://api.kie.ai/api/v1/jobs/createTask");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer kie-key");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        ck_assert_ptr_null(req.headers[3]);
        ck_assert_uint_eq(json_object_size(body), 2); /* no callBackUrl */
        ck_assert_str_eq(jget(body, "model"), "google/nano-banana");
        input = json_object_get(body, "input");
        ck_assert_uint_eq(json_object_size(input), 3);
        ck_assert_str_eq(jget(input, "prompt"), "a banana in space");
        ck_assert_str_eq(jget(input, "output_format"), "png");
        ck_assert_str_eq(jget(input, "aspect_ratio"), "1:1");
        /* the reference's order: model, then input */
        ck_assert_ptr_nonnull(strstr(req.body, "{\"model\":"));
        json_decref(body);
        provider_req_clear(&req);
        ck_assert_ptr_null(req.headers);
}
END_TEST

START_TEST(test_kie_image_defaults_and_formats)
{
        struct provider_cfg p = tcfg("kie_image", "https://api.kie.ai",
                                     "nano-banana", NULL);
        struct provider_req req;
        json_t *body, *input;
        struct tjob t;

        timage(&t, "p");
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "google/nano-banana");
        input = json_object_get(body, "input");
        ck_assert_uint_eq(json_object_size(input), 1);
        json_decref(body);
        provider_req_clear(&req);
        /* jpg -> jpeg; webp is not offered: the default (png) */
        t.image.output_format = "jpg";
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "input.output_format"), "jpeg");
        json_decref(body);
        provider_req_clear(&req);
        t.image.output_format = "webp";
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_ptr_null(json_object_get(json_object_get(body, "input"),
                                           "output_format"));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_kie_image_edit_variant)
{
        struct provider_cfg p = tcfg("kie_image", "https://api.kie.ai",
                                     "google/nano-banana", NULL);
        struct provider_req req;
        json_t *body, *urls;
        struct tjob t;

        timage(&t, "make it blue");
        timage_inputs(&t, 2);
        t.image.aspect_ratio = "16:9";
        t.image.output_format = "jpeg";
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "google/nano-banana-edit");
        urls = json_object_get(json_object_get(body, "input"), "image_urls");
        ck_assert_uint_eq(json_array_size(urls), 2);
        ck_assert_str_eq(json_string_value(json_array_get(urls, 0)),
                         "https://example.com/a.png");
        ck_assert_str_eq(json_string_value(json_array_get(urls, 1)),
                         "https://example.com/b.png");
        /* edit calls the ratio image_size */
        ck_assert_str_eq(jget(body, "input.image_size"), "16:9");
        ck_assert_ptr_null(json_object_get(json_object_get(body, "input"),
                                           "aspect_ratio"));
        ck_assert_str_eq(jget(body, "input.output_format"), "jpeg");
        json_decref(body);
        provider_req_clear(&req);
        /* -edit configured, no input images: plain nano-banana */
        p.model = "google/nano-banana-edit";
        timage(&t, "x");
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "google/nano-banana");
        ck_assert_ptr_null(json_object_get(json_object_get(body, "input"),
                                           "image_urls"));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_kie_image_pro)
{
        struct provider_cfg p = tcfg("kie_image", "https://api.kie.ai",
                                     "google/nano-banana", NULL);
        struct provider_req req;
        json_t *body, *input;
        struct tjob t;

        timage(&t, "poster");
        t.image.model = "nano-banana-pro";
        t.image.size = "2048x1152";
        t.image.aspect_ratio = "16:9";
        t.image.output_format = "jpeg";
        timage_inputs(&t, 1);
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "nano-banana-pro");
        input = json_object_get(body, "input");
        ck_assert_str_eq(jget(input, "prompt"), "poster");
        ck_assert_str_eq(jget(input, "resolution"), "2K");
        ck_assert_str_eq(jget(input, "aspect_ratio"), "16:9");
        ck_assert_str_eq(jget(input, "output_format"), "jpg");
        ck_assert_str_eq(json_string_value(json_array_get(
                                 json_object_get(input, "image_input"), 0)),
                         "https://example.com/a.png");
        ck_assert_ptr_null(json_object_get(input, "image_urls"));
        json_decref(body);
        provider_req_clear(&req);
        /* 1K / 4K from pixels, words as given, no size: no resolution */
        t.image.size = "1024x1024";
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "input.resolution"), "1K");
        json_decref(body);
        provider_req_clear(&req);
        t.image.size = "4096x2304";
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "input.resolution"), "4K");
        json_decref(body);
        provider_req_clear(&req);
        t.image.size = "2k";
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "input.resolution"), "2K");
        json_decref(body);
        provider_req_clear(&req);
        t.image.size = "";
        timage_inputs(&t, 0);
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_ptr_null(json_object_get(json_object_get(body, "input"),
                                           "resolution"));
        ck_assert_ptr_null(json_object_get(json_object_get(body, "input"),
                                           "image_input"));
        json_decref(body);
        provider_req_clear(&req);
        t.image.size = "big";
        build_fails(&provider_kie_image_ops, &p, "k", &t, "size");
}
END_TEST

START_TEST(test_kie_image_hints_and_refusals)
{
        struct provider_cfg p = tcfg("kie_image", "https://api.kie.ai",
                                     "google/nano-banana", NULL);
        struct provider_req req;
        json_t *body;
        struct tjob t;

        /* a hint for another provider is ignored */
        timage(&t, "x");
        t.image.model = "gpt-image-1";
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "google/nano-banana");
        json_decref(body);
        provider_req_clear(&req);
        p.model = "flux-kontext";
        build_fails(&provider_kie_image_ops, &p, "k", &t, "no input schema");
        p.model = "google/nano-banana";
        t.image.count = 2;
        build_fails(&provider_kie_image_ops, &p, "k", &t, "one image");
        t.image.count = 1;
        t.image.prompt = "";
        build_fails(&provider_kie_image_ops, &p, "k", &t, "prompt");
        tvideo(&t, "x");
        build_fails(&provider_kie_image_ops, &p, "k", &t, "not an image job");
}
END_TEST

START_TEST(test_kie_extra_body)
{
        struct provider_cfg p = tcfg("kie_image", "https://api.kie.ai",
                                     "google/nano-banana",
                                     "{\"image_size\":\"1:1\","
                                     "\"prompt\":\"evil\"}");
        struct provider_req req;
        json_t *body;
        struct tjob t;

        timage(&t, "mine");
        body = build_ok(&provider_kie_image_ops, &p, &t, &req);
        /* merged into input as defaults; adapter keys win */
        ck_assert_str_eq(jget(body, "input.image_size"), "1:1");
        ck_assert_str_eq(jget(body, "input.prompt"), "mine");
        json_decref(body);
        provider_req_clear(&req);
        p.extra_body = "[1]";
        build_fails(&provider_kie_image_ops, &p, "k", &t, "extra_body");
        p.extra_body = "{bad";
        build_fails(&provider_kie_image_ops, &p, "k", &t, "extra_body");
}
END_TEST

START_TEST(test_kie_build_plumbing)
{
        struct provider_cfg p = tcfg("kie_video", "http://127.0.0.1:1/kie",
                                     "sora-2", NULL);
        struct provider_cfg nobase = tcfg("kie_video", NULL, "sora-2", NULL);
        struct provider_req req;
        char errstr[256];
        struct tjob t;

        tvideo(&t, "x");
        ck_assert_int_eq(provider_kie_video_ops.build(&p, NULL, &t.job, NULL,
                                                      &req, errstr,
                                                      sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.headers[0], "Content-Type: application/json");
        ck_assert_ptr_null(req.headers[2]);
        provider_req_clear(&req);
        build_fails(&provider_kie_video_ops, &p, "k\r\nX-Evil: 1", &t,
                    "newline");
        build_fails(&provider_kie_video_ops, &nobase, "k", &t, "base_url");
}
END_TEST

/*
 * KIE build: video.
 */

START_TEST(test_kie_video_t2v)
{
        struct provider_cfg p = tcfg("kie_video", "https://api.kie.ai",
                                     "sora-2", NULL);
        struct provider_req req;
        json_t *body, *input;
        struct tjob t;

        tvideo(&t, "a paper boat");
        t.video.aspect_ratio = "16:9";
        t.video.remove_watermark = 1;
        body = build_ok(&provider_kie_video_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://api.kie.ai/api/v1/jobs/createTask");
        ck_assert_str_eq(jget(body, "model"), "sora-2-text-to-video");
        input = json_object_get(body, "input");
        ck_assert_uint_eq(json_object_size(input), 4);
        ck_assert_str_eq(jget(input, "prompt"), "a paper boat");
        ck_assert_str_eq(jget(input, "aspect_ratio"), "landscape");
        /* a STRING of seconds, default 10 */
        ck_assert(json_is_string(json_object_get(input, "n_frames")));
        ck_assert_str_eq(jget(input, "n_frames"), "10");
        ck_assert(json_is_true(json_object_get(input, "remove_watermark")));
        ck_assert_ptr_nonnull(strstr(req.body, "\"n_frames\":\"10\""));
        json_decref(body);
        provider_req_clear(&req);
        t.video.remove_watermark = 0;
        t.video.aspect_ratio = "";
        t.video.duration_s = 15;
        body = build_ok(&provider_kie_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "input.n_frames"), "15");
        ck_assert(json_is_false(json_object_get(json_object_get(body, "input"),
                                                "remove_watermark")));
        ck_assert_ptr_null(json_object_get(json_object_get(body, "input"),
                                           "aspect_ratio"));
        ck_assert_ptr_null(json_object_get(json_object_get(body, "input"),
                                           "size"));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_kie_video_i2v_and_pro)
{
        struct provider_cfg p = tcfg("kie_video", "https://api.kie.ai",
                                     "sora-2", NULL);
        struct provider_req req;
        json_t *body, *input;
        struct tjob t;

        tvideo(&t, "it moves");
        t.video.first_frame_url = "https://example.com/first.png";
        t.video.aspect_ratio = "portrait";
        body = build_ok(&provider_kie_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "sora-2-image-to-video");
        input = json_object_get(body, "input");
        ck_assert_uint_eq(json_array_size(json_object_get(input,
                                                          "image_urls")),
                          1);
        ck_assert_str_eq(json_string_value(json_array_get(
                                 json_object_get(input, "image_urls"), 0)),
                         "https://example.com/first.png");
        ck_assert_str_eq(jget(input, "aspect_ratio"), "portrait");
        json_decref(body);
        provider_req_clear(&req);
        /* the job's hint picks pro; quality -> size */
        t.video.model = "sora-2-pro";
        t.video.quality = "1080p";
        t.video.aspect_ratio = "9:16";
        body = build_ok(&provider_kie_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "sora-2-pro-image-to-video");
        ck_assert_str_eq(jget(body, "input.size"), "high");
        ck_assert_str_eq(jget(body, "input.aspect_ratio"), "portrait");
        json_decref(body);
        provider_req_clear(&req);
        t.video.first_frame_url = "";
        t.video.model = "sora-2-pro-image-to-video"; /* no frame: t2v */
        t.video.quality = "standard";
        body = build_ok(&provider_kie_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "sora-2-pro-text-to-video");
        ck_assert_str_eq(jget(body, "input.size"), "standard");
        json_decref(body);
        provider_req_clear(&req);
        /* a hint for another provider: the configured model */
        t.video.model = "cogvideox-3";
        body = build_ok(&provider_kie_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "sora-2-text-to-video");
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_kie_video_storyboard)
{
        struct provider_cfg p = tcfg("kie_video", "https://api.kie.ai",
                                     "sora-2", NULL);
        struct provider_req req;
        json_t *body, *input, *shots, *s0;
        struct tjob t;

        tvideo(&t, "");
        tscenes(&t, 7.5, 7.5);
        t.video.aspect_ratio = "16:9";
        body = build_ok(&provider_kie_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "sora-2-pro-storyboard");
        input = json_object_get(body, "input");
        ck_assert_str_eq(jget(input, "n_frames"), "15");
        ck_assert_str_eq(jget(input, "aspect_ratio"), "landscape");
        ck_assert_ptr_null(json_object_get(input, "prompt"));
        ck_assert_ptr_null(json_object_get(input, "remove_watermark"));
        ck_assert_ptr_null(json_object_get(input, "image_urls"));
        shots = json_object_get(input, "shots");
        ck_assert_uint_eq(json_array_size(shots), 2);
        s0 = json_array_get(shots, 0);
        ck_assert_uint_eq(json_object_size(s0), 2);
        ck_assert_str_eq(jget(s0, "Scene"),
                         "A kitten with orange headphones at a cozy table, "
                         "cinematic close-up.");
        ck_assert_ptr_null(json_object_get(s0, "scene"));
        ck_assert_double_eq(json_number_value(json_object_get(s0,
                                                              "duration")),
                            7.5);
        ck_assert_ptr_nonnull(strstr(req.body, "\"duration\":7.5"));
        json_decref(body);
        provider_req_clear(&req);
        /* 25 seconds, with a reference image */
        tscenes(&t, 10, 15);
        t.video.first_frame_url = "https://example.com/ref.png";
        body = build_ok(&provider_kie_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "input.n_frames"), "25");
        ck_assert_uint_eq(json_array_size(json_object_get(
                                  json_object_get(body, "input"),
                                  "image_urls")),
                          1);
        json_decref(body);
        provider_req_clear(&req);
        tscenes(&t, 5, 7);
        build_fails(&provider_kie_video_ops, &p, "k", &t, "12 seconds");
        tscenes(&t, 15, 0);
        build_fails(&provider_kie_video_ops, &p, "k", &t, "scene 1");
}
END_TEST

START_TEST(test_kie_video_refusals)
{
        struct provider_cfg p = tcfg("kie_video", "https://api.kie.ai",
                                     "sora-2", NULL);
        struct tjob t;

        tvideo(&t, "x");
        t.video.aspect_ratio = "1:1";
        build_fails(&provider_kie_video_ops, &p, "k", &t, "aspect ratio");
        t.video.aspect_ratio = "";
        t.video.duration_s = 7;
        build_fails(&provider_kie_video_ops, &p, "k", &t, "7 seconds");
        t.video.duration_s = 25; /* storyboard only */
        build_fails(&provider_kie_video_ops, &p, "k", &t, "25 seconds");
        t.video.duration_s = 0;
        t.video.prompt = "";
        build_fails(&provider_kie_video_ops, &p, "k", &t, "prompt");
        t.video.prompt = "x";
        p.model = "veo3";
        build_fails(&provider_kie_video_ops, &p, "k", &t, "no input schema");
        p.model = "sora-2";
        timage(&t, "x");
        build_fails(&provider_kie_video_ops, &p, "k", &t, "not a video job");
}
END_TEST

START_TEST(test_kie_build_poll)
{
        struct provider_cfg p = tcfg("kie_video", "https://api.kie.ai/",
                                     "sora-2", NULL);
        struct provider_req req;
        char errstr[256];

        poll_ok(&provider_kie_video_ops, &p, "task_google_1765178608584",
                &req);
        ck_assert_str_eq(req.url,
                         "https://api.kie.ai/api/v1/jobs/recordInfo?taskId="
                         "task_google_1765178608584");
        ck_assert_str_eq(req.method, "GET");
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer kie-key");
        ck_assert_str_eq(req.headers[1], "Accept: application/json");
        ck_assert_ptr_null(req.headers[2]);
        ck_assert_ptr_null(req.body);
        provider_req_clear(&req);
        poll_ok(&provider_kie_image_ops, &p, "a b/c&d", &req);
        ck_assert_str_eq(req.url,
                         "https://api.kie.ai/api/v1/jobs/recordInfo?taskId="
                         "a%20b%2Fc%26d");
        provider_req_clear(&req);
        ck_assert_int_eq(provider_kie_video_ops.build_poll(
                                 &p, "k", "", &req, errstr, sizeof(errstr)),
                         -1);
}
END_TEST

/*
 * KIE parse: submit.
 */

START_TEST(test_kie_submit_sample)
{
        struct provider_resp resp = tresp(
                200, "{\"code\": 200, \"msg\": \"success\", \"data\": "
                     "{\"taskId\": \"task_google_1765178608584\"}}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_kie_image_ops, 0, NULL, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.task_id, "task_google_1765178608584");
        ck_assert_uint_eq(res.n_urls, 0);
        provider_result_clear(&res);
}
END_TEST

/** A classification case: status + body -> class (+ hint, + errstr). */
struct row {
        const char *name;
        long status;
        const char *body;
        int64_t retry_after_ms;
        enum outcome want;
        int64_t want_hint;
        const char *want_err;
};

static void check_row(const struct provider_ops *ops, int poll,
                      const struct row *r)
{
        struct provider_resp resp = tresp(r->status, r->body);
        struct provider_result res;
        struct provider_err err;
        enum outcome got;

        resp.retry_after_ms = r->retry_after_ms;
        got = run(ops, poll, NULL, &resp, &res, &err);
        ck_assert_msg(got == r->want, "%s: got %s, want %s (%s)", r->name,
                      outcome_name(got), outcome_name(r->want), err.errstr);
        ck_assert_msg(err.errstr[0], "%s: empty errstr", r->name);
        if (r->want_hint != NO_HINT)
                ck_assert_msg(err.retry_after_ms == r->want_hint,
                              "%s: hint %lld, want %lld", r->name,
                              (long long)err.retry_after_ms,
                              (long long)r->want_hint);
        if (r->want_err)
                ck_assert_msg(strstr(err.errstr, r->want_err),
                              "%s: errstr \"%s\" lacks \"%s\"", r->name,
                              err.errstr, r->want_err);
        ck_assert_ptr_null(res.task_id);
        ck_assert_uint_eq(res.n_urls, 0);
        provider_result_clear(&res);
}

/* KIE section 12 rows, on createTask; the error inside an HTTP 200 unless
 * the status says otherwise (mirror mode). */
static const struct row kie_submit_rows[] = {
        {"401 in 200", 200,
         "{\"code\":401,\"msg\":\"You do not have access permissions\"}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT,
         "kie 401: You do not have access permissions"},
        {"401 mirrored", 401,
         "{\"code\":401,\"msg\":\"You do not have access permissions\"}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"402 in 200", 200,
         "{\"code\":402,\"msg\":\"insufficient credits\",\"data\":null}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"402 mirrored, message spelling", 402,
         "{\"code\":402,\"message\":\"Credits insufficient\"}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, "Credits insufficient"},
        {"433 sub-key cap", 200, "{\"code\":433,\"msg\":\"sub-key limit\"}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"400", 200, "{\"code\":400,\"msg\":\"invalid parameters\"}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"422", 200, "{\"code\":422,\"msg\":\"n_frames must be a string\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "n_frames"},
        {"404 on createTask", 200, "{\"code\":404,\"msg\":\"not found\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"429", 200, "{\"code\":429,\"msg\":\"rate limited\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"429 mirrored with Retry-After", 429,
         "{\"code\":429,\"msg\":\"rate limited\"}", 3000,
         OUTCOME_RETRY_LATER, 3000, NULL},
        {"455 maintenance", 200, "{\"code\":455,\"msg\":\"maintenance\"}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"500", 200, "{\"code\":500,\"msg\":\"server error\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"501 without a task", 200,
         "{\"code\":501,\"msg\":\"generation failed\"}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"505 feature disabled", 200,
         "{\"code\":505,\"msg\":\"feature disabled\"}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"code as a string", 200, "{\"code\":\"402\",\"msg\":\"credits\"}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"unlisted 4xx code", 200, "{\"code\":418,\"msg\":\"teapot\"}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, "kie 418: teapot"},
        {"unlisted 5xx code", 200, "{\"code\":502,\"msg\":\"bad gateway\"}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"code overrides a 500 status line", 500,
         "{\"code\":422,\"msg\":\"bad input\"}", -1, OUTCOME_FATAL_JOB,
         NO_HINT, NULL},
        {"no message", 200, "{\"code\":402}", -1, OUTCOME_QUOTA_EXHAUSTED,
         NO_HINT, "no message"},
        {"200 without taskId", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "taskId"},
        {"502 HTML", 502, "<html>Bad Gateway</html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "non-JSON"},
        {"200 malformed", 200, "{\"code\":200,", -1, OUTCOME_RETRY_LATER,
         NO_HINT, "malformed"},
        {"429 plain text", 429, "Too Many Requests", 2000,
         OUTCOME_RETRY_LATER, 2000, NULL},
};
#define N_KIE_SUBMIT ((int)(sizeof(kie_submit_rows) / sizeof(struct row)))

START_TEST(test_kie_submit_row)
{
        check_row(&provider_kie_video_ops, 0, &kie_submit_rows[_i]);
}
END_TEST

START_TEST(test_kie_transport)
{
        struct provider_resp resp = tresp(0, NULL);
        struct provider_result res;
        struct provider_err err;

        resp.transport_err = 28;
        resp.timed_out = 1;
        resp.transport_msg = "Operation timed out";
        ck_assert_int_eq(run(&provider_kie_video_ops, 0, NULL, &resp, &res,
                             &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_str_eq(err.errstr, "timeout: Operation timed out");
        ck_assert_int_eq(run(&provider_kie_video_ops, 1, NULL, &resp, &res,
                             &err),
                         OUTCOME_RETRY_LATER);
        resp = tresp(200, "{\"code\":200,\"data\":{\"taskId\":\"t1\"}}");
        resp.truncated = 1;
        ck_assert_int_eq(run(&provider_kie_video_ops, 0, NULL, &resp, &res,
                             &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_nonnull(strstr(err.errstr, "truncated"));
        ck_assert_ptr_null(res.task_id);
}
END_TEST

/*
 * KIE parse_poll.
 */

/* Section 6.3, verbatim. */
static const char kie_success_sample[] =
        "{\n"
        "  \"code\": 200,\n"
        "  \"msg\": \"success\",\n"
        "  \"data\": {\n"
        "    \"taskId\": \"task_google_1765178608584\",\n"
        "    \"model\": \"google/nano-banana\",\n"
        "    \"state\": \"success\",\n"
        "    \"param\": \"{\\\"model\\\":\\\"google/nano-banana\\\","
        "\\\"callBackUrl\\\":\\\"https://your-domain.example/api/"
        "kie-callback\\\",\\\"input\\\":{\\\"prompt\\\":\\\"a banana in "
        "space\\\",\\\"output_format\\\":\\\"png\\\",\\\"aspect_ratio\\\":"
        "\\\"1:1\\\"}}\",\n"
        "    \"resultJson\": \"{\\\"resultUrls\\\":[\\\"https://tempfile."
        "aiquickdraw.com/workers/nano/image_1765178623_abc.png\\\"]}\",\n"
        "    \"failCode\": \"\",\n"
        "    \"failMsg\": \"\",\n"
        "    \"costTime\": 15230,\n"
        "    \"completeTime\": 1765178623814,\n"
        "    \"createTime\": 1765178608584,\n"
        "    \"updateTime\": 1765178623814\n"
        "  }\n"
        "}\n";

/* Section 6.3 failed task, verbatim but for "param" (elided there). */
static const char kie_fail_sample[] =
        "{\n"
        "  \"code\": 501,\n"
        "  \"msg\": \"Playground task failed.\",\n"
        "  \"data\": {\n"
        "    \"taskId\": \"bd3a37c523149e4adf45a3ddb5faf1a8\",\n"
        "    \"model\": \"sora-2-pro-storyboard\",\n"
        "    \"state\": \"fail\",\n"
        "    \"param\": \"{}\",\n"
        "    \"resultJson\": null,\n"
        "    \"failCode\": \"500\",\n"
        "    \"failMsg\": \"Internal server error\",\n"
        "    \"consumeCredits\": 0,\n"
        "    \"remainedCredits\": 2510430,\n"
        "    \"costTime\": 0,\n"
        "    \"createTime\": 1755596341000,\n"
        "    \"completeTime\": 1755597081000,\n"
        "    \"updateTime\": 1755597097000\n"
        "  }\n"
        "}\n";

START_TEST(test_kie_poll_success_sample)
{
        struct provider_resp resp = tresp(200, kie_success_sample);
        struct provider_result res;
        struct provider_err err;
        struct tjob t;

        timage(&t, "a banana in space");
        ck_assert_int_eq(run(&provider_kie_image_ops, 1, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 1);
        ck_assert_str_eq(res.urls[0], "https://tempfile.aiquickdraw.com/"
                                      "workers/nano/image_1765178623_abc.png");
        ck_assert_str_eq(res.model, "google/nano-banana");
        ck_assert_double_eq(res.units, 1);
        ck_assert_str_eq(res.unit, "image");
        ck_assert_ptr_null(res.provider_cost); /* no consumeCredits */
        ck_assert_ptr_null(res.task_id);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_kie_poll_running_states)
{
        static const char *const states[] = {"waiting", "queuing",
                                             "generating"};
        struct provider_result res;
        struct provider_err err;
        char body[256];

        for (size_t i = 0; i < 3; i++) {
                struct provider_resp resp;

                snprintf(body, sizeof(body),
                         "{\"code\":200,\"msg\":\"success\",\"data\":{"
                         "\"taskId\":\"t\",\"state\":\"%s\",\"resultJson\":"
                         "null,\"failCode\":null}}",
                         states[i]);
                resp = tresp(200, body);
                ck_assert_int_eq(run(&provider_kie_video_ops, 1, NULL, &resp,
                                     &res, &err),
                                 OUTCOME_PENDING);
                ck_assert_ptr_nonnull(strstr(err.errstr, states[i]));
                ck_assert_uint_eq(res.n_urls, 0);
        }
}
END_TEST

/** A recordInfo success of a video task; \p param and \p credits are the
 *  raw JSON members (or NULL to leave out). */
static void video_success(const char *param, const char *credits,
                          char *out, size_t outsz)
{
        snprintf(out, outsz,
                 "{\"code\":200,\"msg\":\"success\",\"data\":{\"taskId\":"
                 "\"task_sora2_1\",\"model\":\"sora-2-text-to-video\","
                 "\"state\":\"success\"%s%s%s%s,\"resultJson\":"
                 "\"{\\\"resultUrls\\\":[\\\"https://x/v.mp4\\\"]}\"}}",
                 param ? ",\"param\":" : "", param ? param : "",
                 credits ? ",\"consumeCredits\":" : "",
                 credits ? credits : "");
}

START_TEST(test_kie_poll_video_units_and_cost)
{
        struct provider_result res;
        struct provider_resp resp;
        struct provider_err err;
        char body[1024];
        struct tjob t;

        tvideo(&t, "x");
        t.video.duration_s = 10;
        /* param (what KIE recorded) wins over the job */
        video_success("\"{\\\"model\\\":\\\"sora-2-text-to-video\\\","
                      "\\\"input\\\":{\\\"n_frames\\\":\\\"15\\\"}}\"",
                      "45", body, sizeof(body));
        resp = tresp(200, body);
        ck_assert_int_eq(run(&provider_kie_video_ops, 1, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.urls[0], "https://x/v.mp4");
        ck_assert_double_eq(res.units, 15);
        ck_assert_str_eq(res.unit, "second");
        ck_assert_str_eq(res.provider_cost, "45");
        provider_result_clear(&res);
        /* no param: the job's request; fractional credits */
        video_success(NULL, "1.5", body, sizeof(body));
        resp = tresp(200, body);
        ck_assert_int_eq(run(&provider_kie_video_ops, 1, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, 10);
        ck_assert_str_eq(res.provider_cost, "1.5");
        provider_result_clear(&res);
        /* storyboard job: the scenes' total */
        tscenes(&t, 10, 15);
        video_success("\"not json\"", NULL, body, sizeof(body));
        resp = tresp(200, body);
        ck_assert_int_eq(run(&provider_kie_video_ops, 1, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, 25);
        ck_assert_ptr_null(res.provider_cost);
        provider_result_clear(&res);
        /* no job, no param: unknown */
        video_success(NULL, "\"30\"", body, sizeof(body));
        resp = tresp(200, body);
        ck_assert_int_eq(run(&provider_kie_video_ops, 1, NULL, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, -1);
        ck_assert_str_eq(res.provider_cost, "30");
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_kie_poll_result_as_object)
{
        struct provider_resp resp = tresp(
                200, "{\"code\":200,\"message\":\"success\",\"data\":{"
                     "\"state\":\"success\",\"resultJson\":{\"resultUrls\":"
                     "[\"https://x/1.png\",\"https://x/2.png\"]}}}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_kie_image_ops, 1, NULL, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 2);
        ck_assert_double_eq(res.units, 2);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_kie_poll_fail_sample)
{
        struct provider_resp resp = tresp(200, kie_fail_sample);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_kie_video_ops, 1, NULL, &resp, &res,
                             &err),
                         OUTCOME_FALLBACK_NEXT);
        ck_assert_str_eq(err.errstr,
                         "kie task failed 500: Internal server error");
        ck_assert_uint_eq(res.n_urls, 0);
}
END_TEST

/* recordInfo answers: failed tasks (KIE recordInfo rows) and poll-time
 * codes (section 6.3). */
static const struct row kie_poll_rows[] = {
        {"fail failCode 422", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{\"state\":\"fail\","
         "\"failCode\":\"422\",\"failMsg\":\"bad\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "kie task failed 422: bad"},
        {"fail failCode 400 as a number", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{\"state\":\"fail\","
         "\"failCode\":400,\"failMsg\":\"\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "(no failMsg)"},
        {"fail 500 but content policy", 200,
         "{\"code\":501,\"msg\":\"Playground task failed.\",\"data\":{"
         "\"state\":\"fail\",\"failCode\":\"500\",\"failMsg\":\"The content "
         "violates our content policy\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"fail invalid image", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{\"state\":\"fail\","
         "\"failCode\":null,\"failMsg\":\"Invalid image URL\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"fail prompt rejected", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{\"state\":\"fail\","
         "\"failCode\":\"\",\"failMsg\":\"Your prompt was rejected\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"fail timeout", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{\"state\":\"fail\","
         "\"failCode\":\"504\",\"failMsg\":\"Generation timed out\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"fail no code", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{\"state\":\"fail\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"success without urls", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{\"state\":\"success\","
         "\"resultJson\":\"\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, "resultUrls"},
        {"unknown state", 200,
         "{\"code\":200,\"msg\":\"success\",\"data\":{\"state\":\"paused\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, "paused"},
        {"no data", 200, "{\"code\":200,\"msg\":\"success\",\"data\":null}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"404 unknown task (message)", 200,
         "{\"code\":404,\"message\":\"Task not found\",\"data\":null}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, "kie 404: Task not found"},
        {"422 validation", 200,
         "{\"code\":422,\"msg\":\"validation error\"}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"401", 200, "{\"code\":401,\"msg\":\"unauthorized\"}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"500 poll again", 200, "{\"code\":500,\"msg\":\"server error\"}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"429 poll mirrored", 429, "{\"code\":429,\"msg\":\"slow down\"}",
         1500, OUTCOME_RETRY_LATER, 1500, NULL},
        {"501 without a task", 200,
         "{\"code\":501,\"msg\":\"generation failed\",\"data\":null}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"503 HTML on poll", 503, "<html>busy</html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
};
#define N_KIE_POLL ((int)(sizeof(kie_poll_rows) / sizeof(struct row)))

START_TEST(test_kie_poll_row)
{
        check_row(&provider_kie_video_ops, 1, &kie_poll_rows[_i]);
}
END_TEST

/*
 * SiliconFlow video.
 */

START_TEST(test_sf_build)
{
        struct provider_cfg p = tcfg("siliconflow_video",
                                     "https://api.siliconflow.cn/v1/",
                                     "Wan-AI/Wan2.2-T2V-A14B", NULL);
        struct provider_req req;
        json_t *body;
        struct tjob t;

        tvideo(&t, "a paper boat drifting down a rainy street, cinematic");
        body = build_ok(&provider_sf_video_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://api.siliconflow.cn/v1/video/submit");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer kie-key");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        ck_assert_ptr_null(req.headers[3]);
        ck_assert_uint_eq(json_object_size(body), 3);
        ck_assert_str_eq(jget(body, "model"), "Wan-AI/Wan2.2-T2V-A14B");
        ck_assert_str_eq(jget(body, "prompt"),
                         "a paper boat drifting down a rainy street, "
                         "cinematic");
        ck_assert_str_eq(jget(body, "image_size"), "1280x720");
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_sf_build_sizes_and_i2v)
{
        static const struct {
                const char *ratio;
                const char *size;
        } cases[] = {
                {"16:9", "1280x720"}, {"landscape", "1280x720"},
                {"9:16", "720x1280"}, {"portrait", "720x1280"},
                {"1:1", "960x960"},
        };
        struct provider_cfg p = tcfg("siliconflow_video", "https://x/v1",
                                     "Wan-AI/Wan2.2-T2V-A14B", NULL);
        struct provider_req req;
        json_t *body;
        struct tjob t;

        tvideo(&t, "x");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                t.video.aspect_ratio = (char *)cases[i].ratio;
                body = build_ok(&provider_sf_video_ops, &p, &t, &req);
                ck_assert_str_eq(jget(body, "image_size"), cases[i].size);
                json_decref(body);
                provider_req_clear(&req);
        }
        t.video.aspect_ratio = "";
        t.video.first_frame_url = "https://example.com/f.png";
        body = build_ok(&provider_sf_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "Wan-AI/Wan2.2-I2V-A14B");
        ck_assert_str_eq(jget(body, "image"), "https://example.com/f.png");
        json_decref(body);
        provider_req_clear(&req);
        /* an I2V hint without a frame goes back to T2V */
        t.video.first_frame_url = "";
        t.video.model = "Wan-AI/Wan2.1-I2V-14B-720P";
        body = build_ok(&provider_sf_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "Wan-AI/Wan2.1-T2V-14B-720P");
        ck_assert_ptr_null(json_object_get(body, "image"));
        json_decref(body);
        provider_req_clear(&req);
        /* a hint for another provider is ignored */
        t.video.model = "sora-2";
        body = build_ok(&provider_sf_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "Wan-AI/Wan2.2-T2V-A14B");
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_sf_build_extra_and_refusals)
{
        struct provider_cfg p = tcfg("siliconflow_video", "https://x/v1",
                                     "Wan-AI/Wan2.2-T2V-A14B",
                                     "{\"negative_prompt\":\"blurry, low "
                                     "quality\",\"seed\":42,\"model\":"
                                     "\"evil\"}");
        struct provider_req req;
        json_t *body;
        struct tjob t;

        tvideo(&t, "x");
        body = build_ok(&provider_sf_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "negative_prompt"), "blurry, low quality");
        ck_assert_int_eq(json_integer_value(json_object_get(body, "seed")),
                         42);
        ck_assert_str_eq(jget(body, "model"), "Wan-AI/Wan2.2-T2V-A14B");
        json_decref(body);
        provider_req_clear(&req);
        t.video.aspect_ratio = "4:3";
        build_fails(&provider_sf_video_ops, &p, "k", &t, "aspect ratio");
        t.video.aspect_ratio = "";
        t.video.prompt = "";
        build_fails(&provider_sf_video_ops, &p, "k", &t, "prompt");
        tscenes(&t, 5, 5);
        build_fails(&provider_sf_video_ops, &p, "k", &t, "storyboard");
        tvideo(&t, "x");
        p.model = NULL;
        build_fails(&provider_sf_video_ops, &p, "k", &t, "no model");
        p.model = "Wan-AI/Wan2.2-T2V-A14B";
        p.extra_body = "3";
        build_fails(&provider_sf_video_ops, &p, "k", &t, "extra_body");
        p.extra_body = NULL;
        build_fails(&provider_sf_video_ops, &p, "k\nx", &t, "newline");
        timage(&t, "x");
        build_fails(&provider_sf_video_ops, &p, "k", &t, "not a video job");
}
END_TEST

START_TEST(test_sf_build_poll)
{
        struct provider_cfg p = tcfg("siliconflow_video", "https://x/v1",
                                     "m", NULL);
        struct provider_req req;
        char errstr[64];
        json_t *body;

        poll_ok(&provider_sf_video_ops, &p,
                "0e5b2c1a-7d0e-4f4c-9b7b-2f5d6a1c3e9f", &req);
        ck_assert_str_eq(req.url, "https://x/v1/video/status");
        ck_assert_str_eq(req.method, "POST"); /* POST, not GET */
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        body = json_loads(req.body, 0, NULL);
        ck_assert_uint_eq(json_object_size(body), 1);
        ck_assert_str_eq(jget(body, "requestId"),
                         "0e5b2c1a-7d0e-4f4c-9b7b-2f5d6a1c3e9f");
        json_decref(body);
        provider_req_clear(&req);
        ck_assert_int_eq(provider_sf_video_ops.build_poll(
                                 &p, "k", NULL, &req, errstr, sizeof(errstr)),
                         -1);
}
END_TEST

START_TEST(test_sf_submit_sample)
{
        struct provider_resp resp = tresp(
                200, "{\"requestId\": \"0e5b2c1a-7d0e-4f4c-9b7b-2f5d6a1c3e9f\"}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_sf_video_ops, 0, NULL, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.task_id, "0e5b2c1a-7d0e-4f4c-9b7b-2f5d6a1c3e9f");
        provider_result_clear(&res);
}
END_TEST

/* SiliconFlow section 12 rows, on submit. */
static const struct row sf_submit_rows[] = {
        {"400 20012", 400,
         "{\"code\":20012,\"message\":\"Model does not exist. Please check "
         "it carefully.\",\"data\":null}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, "400 20012: Model does not"},
        {"400 other", 400,
         "{\"code\":20015,\"message\":\"image_size is required\","
         "\"data\":null}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"401", 401, "{\"code\":20005,\"message\":\"Invalid token\","
                     "\"data\":null}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"401 plain", 401, "Invalid token", -1, OUTCOME_KEY_DISABLED, NO_HINT,
         "HTTP 401"},
        {"403 30011", 403,
         "{\"code\":30011,\"message\":\"The selected model requires paid "
         "balance. Your paid balance is insufficient. Please top up and "
         "try again.\",\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"403 30001", 403,
         "{\"code\":30001,\"message\":\"account balance insufficient\","
         "\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"403 balance message", 403,
         "{\"code\":30099,\"message\":\"Your balance is insufficient\","
         "\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"403 real-name", 403,
         "{\"code\":30003,\"message\":\"real-name verification required\","
         "\"data\":null}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"429 IPM", 429,
         "{\"code\":50603,\"message\":\"Request was rejected due to rate "
         "limiting. Details: IPM limit reached, try again in 2s\","
         "\"data\":null}",
         -1, OUTCOME_RETRY_LATER, 2000, NULL},
        {"429 Retry-After", 429, "{\"code\":50603,\"message\":\"RPM\"}",
         5000, OUTCOME_RETRY_LATER, 5000, NULL},
        {"503 overload", 503,
         "{\"code\":50505,\"message\":\"Model service overloaded.\","
         "\"data\":null}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"504", 504, "{\"code\":50506,\"message\":\"timeout\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"502 HTML", 502, "<html>Bad Gateway</html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "non-JSON"},
        {"200 without requestId", 200, "{\"status\":\"ok\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "requestId"},
        {"200 not JSON", 200, "ok", -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
};
#define N_SF_SUBMIT ((int)(sizeof(sf_submit_rows) / sizeof(struct row)))

START_TEST(test_sf_submit_row)
{
        check_row(&provider_sf_video_ops, 0, &sf_submit_rows[_i]);
}
END_TEST

/* Section 7.2, verbatim. */
static const char sf_succeed_sample[] =
        "{\n"
        "  \"status\": \"Succeed\",\n"
        "  \"reason\": \"\",\n"
        "  \"position\": 0,\n"
        "  \"results\": {\n"
        "    \"videos\": [{\"url\": \"https://sc-maas.oss-cn-shanghai."
        "aliyuncs.com/outputs/xyz.mp4\"}],\n"
        "    \"timings\": {\"inference\": 188.4},\n"
        "    \"seed\": 42\n"
        "  }\n"
        "}\n";

START_TEST(test_sf_poll_lifecycle)
{
        static const char *const running[] = {
                "{\"status\": \"InQueue\", \"reason\": \"\", \"position\": 3, "
                "\"results\": null}",
                "{\"status\": \"InProgress\", \"reason\": \"\", \"position\": "
                "0, \"results\": null}",
        };
        struct provider_result res;
        struct provider_resp resp;
        struct provider_err err;
        struct tjob t;

        for (size_t i = 0; i < 2; i++) {
                resp = tresp(200, running[i]);
                ck_assert_int_eq(run(&provider_sf_video_ops, 1, NULL, &resp,
                                     &res, &err),
                                 OUTCOME_PENDING);
        }
        resp = tresp(200, sf_succeed_sample);
        ck_assert_int_eq(run(&provider_sf_video_ops, 1, NULL, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 1);
        ck_assert_str_eq(res.urls[0], "https://sc-maas.oss-cn-shanghai."
                                      "aliyuncs.com/outputs/xyz.mp4");
        ck_assert_double_eq(res.units, 5); /* no job: the default */
        ck_assert_str_eq(res.unit, "second");
        provider_result_clear(&res);
        tvideo(&t, "x");
        t.video.duration_s = 8;
        ck_assert_int_eq(run(&provider_sf_video_ops, 1, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, 8);
        provider_result_clear(&res);
}
END_TEST

/* Terminal failures and poll-time errors. */
static const struct row sf_poll_rows[] = {
        {"Failed content policy", 200,
         "{\"status\": \"Failed\", \"reason\": \"content policy "
         "violation\", \"position\": 0, \"results\": null}",
         -1, OUTCOME_FATAL_JOB, NO_HINT,
         "siliconflow video Failed: content policy violation"},
        {"Failed bad image", 200,
         "{\"status\":\"Failed\",\"reason\":\"image download failed\"}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"Failed sensitive prompt", 200,
         "{\"status\":\"Failed\",\"reason\":\"Prompt contains sensitive "
         "words\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"Failed internal", 200,
         "{\"status\":\"Failed\",\"reason\":\"Internal server error\"}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"Failed no reason", 200, "{\"status\":\"Failed\"}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, "(no reason)"},
        {"Succeeded is not Succeed", 200,
         "{\"status\":\"Succeeded\",\"reason\":\"\",\"results\":{\"videos\":"
         "[{\"url\":\"https://x/v.mp4\"}]}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, "Succeeded"},
        {"Succeed without videos", 200,
         "{\"status\":\"Succeed\",\"results\":{}}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"no status", 200, "{\"reason\":\"\"}", -1, OUTCOME_RETRY_LATER,
         NO_HINT, NULL},
        {"429 on poll", 429, "{\"code\":50603,\"message\":\"RPM limit\"}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"500 on poll", 500, "{\"code\":50500,\"message\":\"unknown\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"404 unknown requestId", 404,
         "{\"code\":20404,\"message\":\"not found\",\"data\":null}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
};
#define N_SF_POLL ((int)(sizeof(sf_poll_rows) / sizeof(struct row)))

START_TEST(test_sf_poll_row)
{
        check_row(&provider_sf_video_ops, 1, &sf_poll_rows[_i]);
}
END_TEST

/*
 * Zhipu CogVideoX.
 */

START_TEST(test_zhipu_build)
{
        struct provider_cfg p = tcfg("zhipu_video",
                                     "https://open.bigmodel.cn/api/paas/v4",
                                     "cogvideox-3", NULL);
        struct provider_req req;
        json_t *body;
        struct tjob t;

        tvideo(&t, "A cat playing the piano, warm light");
        t.job.job_id = "job-20250101-0001";
        t.video.quality = "standard";
        t.video.aspect_ratio = "16:9";
        t.video.duration_s = 5;
        body = build_ok(&provider_zhipu_video_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://open.bigmodel.cn/api/paas/v4/"
                                  "videos/generations");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer kie-key");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        ck_assert_ptr_null(req.headers[3]);
        ck_assert_uint_eq(json_object_size(body), 7);
        ck_assert_str_eq(jget(body, "model"), "cogvideox-3");
        ck_assert_str_eq(jget(body, "prompt"),
                         "A cat playing the piano, warm light");
        ck_assert_str_eq(jget(body, "quality"), "speed");
        ck_assert(json_is_false(json_object_get(body, "with_audio")));
        ck_assert_str_eq(jget(body, "size"), "1920x1080");
        ck_assert_int_eq(json_integer_value(json_object_get(body, "duration")),
                         5);
        ck_assert_str_eq(jget(body, "request_id"), "job-20250101-0001");
        ck_assert_ptr_null(json_object_get(body, "image_url"));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_zhipu_build_variants)
{
        struct provider_cfg p = tcfg("zhipu_video", "https://x/v4",
                                     "cogvideox-flash",
                                     "{\"with_audio\":true,\"fps\":60,"
                                     "\"model\":\"evil\"}");
        struct provider_req req;
        json_t *body;
        struct tjob t;

        /* image only; hint used; extra_body: with_audio and fps */
        tvideo(&t, "");
        t.video.first_frame_url = "https://example.com/f.png";
        t.video.model = "cogvideox-3";
        t.video.quality = "1080p";
        t.video.aspect_ratio = "9:16";
        t.video.duration_s = 10;
        body = build_ok(&provider_zhipu_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "cogvideox-3");
        ck_assert_str_eq(jget(body, "image_url"), "https://example.com/f.png");
        ck_assert_ptr_null(json_object_get(body, "prompt"));
        ck_assert_str_eq(jget(body, "quality"), "quality");
        ck_assert_str_eq(jget(body, "size"), "1080x1920");
        ck_assert_int_eq(json_integer_value(json_object_get(body, "duration")),
                         10);
        ck_assert(json_is_true(json_object_get(body, "with_audio")));
        ck_assert_int_eq(json_integer_value(json_object_get(body, "fps")), 60);
        json_decref(body);
        provider_req_clear(&req);
        /* defaults: no duration/size/quality; foreign hint ignored */
        tvideo(&t, "x");
        t.video.model = "sora-2";
        t.video.quality = "ultra";
        p.extra_body = NULL;
        body = build_ok(&provider_zhipu_video_ops, &p, &t, &req);
        ck_assert_str_eq(jget(body, "model"), "cogvideox-flash");
        ck_assert_ptr_null(json_object_get(body, "duration"));
        ck_assert_ptr_null(json_object_get(body, "size"));
        ck_assert_ptr_null(json_object_get(body, "quality"));
        ck_assert(json_is_false(json_object_get(body, "with_audio")));
        json_decref(body);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_zhipu_build_refusals)
{
        struct provider_cfg p = tcfg("zhipu_video", "https://x/v4",
                                     "cogvideox-3", NULL);
        struct tjob t;

        tvideo(&t, "");
        build_fails(&provider_zhipu_video_ops, &p, "k", &t, "neither");
        t.video.prompt = "x";
        t.video.duration_s = 7;
        build_fails(&provider_zhipu_video_ops, &p, "k", &t, "5 or 10");
        t.video.duration_s = 0;
        t.video.aspect_ratio = "4:3";
        build_fails(&provider_zhipu_video_ops, &p, "k", &t, "aspect ratio");
        t.video.aspect_ratio = "";
        tscenes(&t, 5, 5);
        build_fails(&provider_zhipu_video_ops, &p, "k", &t, "storyboard");
        tvideo(&t, "x");
        p.model = "";
        build_fails(&provider_zhipu_video_ops, &p, "k", &t, "no model");
        p.model = "cogvideox-3";
        p.extra_body = "{";
        build_fails(&provider_zhipu_video_ops, &p, "k", &t, "extra_body");
        timage(&t, "x");
        build_fails(&provider_zhipu_video_ops, &p, "k", &t, "not a video job");
}
END_TEST

START_TEST(test_zhipu_build_poll)
{
        struct provider_cfg p = tcfg("zhipu_video",
                                     "https://open.bigmodel.cn/api/paas/v4/",
                                     "m", NULL);
        struct provider_req req;
        char errstr[64];

        poll_ok(&provider_zhipu_video_ops, &p, "8875817957674828620", &req);
        ck_assert_str_eq(req.url, "https://open.bigmodel.cn/api/paas/v4/"
                                  "async-result/8875817957674828620");
        ck_assert_str_eq(req.method, "GET");
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer kie-key");
        ck_assert_str_eq(req.headers[1], "Accept: application/json");
        ck_assert_ptr_null(req.headers[2]);
        ck_assert_ptr_null(req.body);
        provider_req_clear(&req);
        ck_assert_int_eq(provider_zhipu_video_ops.build_poll(
                                 &p, "k", "../x", &req, errstr,
                                 sizeof(errstr)),
                         -1);
}
END_TEST

START_TEST(test_zhipu_submit_sample)
{
        struct provider_resp resp = tresp(
                200, "{\"id\": \"8875817957674828620\", \"model\": "
                     "\"cogvideox-3\", \"task_status\": \"PROCESSING\", "
                     "\"request_id\": \"job-20250101-0001\"}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_zhipu_video_ops, 0, NULL, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.task_id, "8875817957674828620");
        provider_result_clear(&res);
}
END_TEST

/* Zhipu section 12 rows, on submit (one per business code group). */
static const struct row zhipu_rows[] = {
        {"429 1113 verbatim", 429,
         "{\"error\":{\"code\":\"1113\",\"message\":\"Insufficient balance "
         "or no resource package. Please recharge.\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, "429 1113: Insufficient"},
        {"429 1302 verbatim", 429,
         "{\"error\":{\"code\":\"1302\",\"message\":\"High concurrency usage "
         "of this API, please reduce concurrency or contact customer "
         "service to increase limits\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"429 1303", 429, "{\"error\":{\"code\":\"1303\",\"message\":\"f\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"429 1305", 429, "{\"error\":{\"code\":\"1305\",\"message\":\"o\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"429 1312", 429, "{\"error\":{\"code\":\"1312\",\"message\":\"b\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"429 1304", 429, "{\"error\":{\"code\":\"1304\",\"message\":\"d\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"429 1308", 429, "{\"error\":{\"code\":\"1308\",\"message\":\"c\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"429 1309", 429, "{\"error\":{\"code\":\"1309\",\"message\":\"e\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"429 1310", 429, "{\"error\":{\"code\":\"1310\",\"message\":\"c\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"401 1000", 401, "{\"error\":{\"code\":\"1000\",\"message\":\"a\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"401 1001", 401, "{\"error\":{\"code\":\"1001\",\"message\":\"a\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"401 1002", 401, "{\"error\":{\"code\":\"1002\",\"message\":\"a\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"401 1003", 401, "{\"error\":{\"code\":\"1003\",\"message\":\"a\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"401 1004", 401, "{\"error\":{\"code\":\"1004\",\"message\":\"a\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"400 1110", 400, "{\"error\":{\"code\":\"1110\",\"message\":\"i\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"403 1111", 403, "{\"error\":{\"code\":\"1111\",\"message\":\"n\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"403 1112", 403, "{\"error\":{\"code\":\"1112\",\"message\":\"l\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"403 1121", 403, "{\"error\":{\"code\":\"1121\",\"message\":\"v\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"400 1301 unsafe", 400,
         "{\"error\":{\"code\":\"1301\",\"message\":\"unsafe\"}}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"400 1211", 400, "{\"error\":{\"code\":\"1211\",\"message\":\"m\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"400 1220", 400, "{\"error\":{\"code\":\"1220\",\"message\":\"p\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"400 1221", 400, "{\"error\":{\"code\":\"1221\",\"message\":\"o\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"400 1222", 400, "{\"error\":{\"code\":\"1222\",\"message\":\"o\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"400 1210", 400, "{\"error\":{\"code\":\"1210\",\"message\":\"b\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"400 1213", 400, "{\"error\":{\"code\":\"1213\",\"message\":\"b\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"400 1214", 400, "{\"error\":{\"code\":\"1214\",\"message\":\"b\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"400 1215", 400, "{\"error\":{\"code\":\"1215\",\"message\":\"b\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"400 1261", 400, "{\"error\":{\"code\":\"1261\",\"message\":\"l\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"500 500", 500, "{\"error\":{\"code\":\"500\",\"message\":\"i\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"500 1200", 500, "{\"error\":{\"code\":\"1200\",\"message\":\"c\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"500 1234", 500, "{\"error\":{\"code\":\"1234\",\"message\":\"n\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"unknown code, 400", 400,
         "{\"error\":{\"code\":\"9999\",\"message\":\"new\"}}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, "400 9999: new"},
        {"unknown code, 503", 503,
         "{\"error\":{\"code\":\"9999\",\"message\":\"new\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"429 with Retry-After", 429,
         "{\"error\":{\"code\":\"1302\",\"message\":\"x\"}}", 4000,
         OUTCOME_RETRY_LATER, 4000, NULL},
        {"error inside a 200", 200,
         "{\"error\":{\"code\":\"1113\",\"message\":\"arrears\"}}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"502 HTML", 502, "<html>bad gateway</html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "non-JSON"},
        {"200 without id", 200, "{\"model\":\"cogvideox-3\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "no id"},
        {"200 FAIL at submit", 200,
         "{\"id\":\"1\",\"task_status\":\"FAIL\"}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
};
#define N_ZHIPU ((int)(sizeof(zhipu_rows) / sizeof(struct row)))

START_TEST(test_zhipu_row)
{
        check_row(&provider_zhipu_video_ops, 0, &zhipu_rows[_i]);
}
END_TEST

/* Section 11, verbatim. */
static const char zhipu_success_sample[] =
        "{\n"
        "  \"model\": \"cogvideox-3\",\n"
        "  \"request_id\": \"job-20250101-0001\",\n"
        "  \"task_status\": \"SUCCESS\",\n"
        "  \"video_result\": [\n"
        "    {\"url\": \"https://sfile.chatglm.cn/testpath/video/"
        "0e89d8bf-ded0-5b77-b673-fd264fad9c9d_0.mp4\",\n"
        "     \"cover_image_url\": \"https://sfile.chatglm.cn/testpath/"
        "video_cover/0e89d8bf-ded0-5b77-b673-fd264fad9c9d_cover_0.png\"}\n"
        "  ]\n"
        "}\n";

START_TEST(test_zhipu_poll_lifecycle)
{
        struct provider_result res;
        struct provider_resp resp;
        struct provider_err err;
        struct tjob t;

        resp = tresp(200, "{\"model\":\"cogvideox-3\",\"request_id\":\"r\","
                          "\"task_status\":\"PROCESSING\"}");
        ck_assert_int_eq(run(&provider_zhipu_video_ops, 1, NULL, &resp, &res,
                             &err),
                         OUTCOME_PENDING);
        tvideo(&t, "x");
        t.video.duration_s = 10;
        resp = tresp(200, zhipu_success_sample);
        ck_assert_int_eq(run(&provider_zhipu_video_ops, 1, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 2);
        ck_assert_str_eq(res.urls[0], "https://sfile.chatglm.cn/testpath/"
                                      "video/0e89d8bf-ded0-5b77-b673-"
                                      "fd264fad9c9d_0.mp4");
        ck_assert_str_eq(res.urls[1],
                         "https://sfile.chatglm.cn/testpath/video_cover/"
                         "0e89d8bf-ded0-5b77-b673-fd264fad9c9d_cover_0.png");
        ck_assert_str_eq(res.model, "cogvideox-3");
        ck_assert_double_eq(res.units, 10);
        ck_assert_str_eq(res.unit, "second");
        provider_result_clear(&res);
        ck_assert_int_eq(run(&provider_zhipu_video_ops, 1, NULL, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, 5);
        provider_result_clear(&res);
}
END_TEST

static const struct row zhipu_poll_rows[] = {
        {"FAIL", 200,
         "{\"model\":\"cogvideox-3\",\"request_id\":\"r\",\"task_status\":"
         "\"FAIL\"}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, "FAIL"},
        {"SUCCESS without video_result", 200,
         "{\"task_status\":\"SUCCESS\",\"video_result\":[]}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"no task_status", 200, "{\"model\":\"m\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"429 1302 on poll", 429,
         "{\"error\":{\"code\":\"1302\",\"message\":\"busy\"}}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"500 on poll", 500, "{\"error\":{\"code\":\"500\",\"message\":\"i\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"404 unknown id", 404,
         "{\"error\":{\"code\":\"1214\",\"message\":\"task does not "
         "exist\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"401 on poll", 401,
         "{\"error\":{\"code\":\"1000\",\"message\":\"auth\"}}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
};
#define N_ZHIPU_POLL ((int)(sizeof(zhipu_poll_rows) / sizeof(struct row)))

START_TEST(test_zhipu_poll_row)
{
        check_row(&provider_zhipu_video_ops, 1, &zhipu_poll_rows[_i]);
}
END_TEST

/*
 * Runner.
 */

static Suite *video_suite(void)
{
        Suite *s = suite_create("provider_video");
        TCase *tk = tcase_create("kie");
        TCase *ts = tcase_create("siliconflow_video");
        TCase *tz = tcase_create("zhipu_video");

        tcase_add_test(tk, test_registry);
        tcase_add_test(tk, test_kie_image_build);
        tcase_add_test(tk, test_kie_image_defaults_and_formats);
        tcase_add_test(tk, test_kie_image_edit_variant);
        tcase_add_test(tk, test_kie_image_pro);
        tcase_add_test(tk, test_kie_image_hints_and_refusals);
        tcase_add_test(tk, test_kie_extra_body);
        tcase_add_test(tk, test_kie_build_plumbing);
        tcase_add_test(tk, test_kie_video_t2v);
        tcase_add_test(tk, test_kie_video_i2v_and_pro);
        tcase_add_test(tk, test_kie_video_storyboard);
        tcase_add_test(tk, test_kie_video_refusals);
        tcase_add_test(tk, test_kie_build_poll);
        tcase_add_test(tk, test_kie_submit_sample);
        tcase_add_loop_test(tk, test_kie_submit_row, 0, N_KIE_SUBMIT);
        tcase_add_test(tk, test_kie_transport);
        tcase_add_test(tk, test_kie_poll_success_sample);
        tcase_add_test(tk, test_kie_poll_running_states);
        tcase_add_test(tk, test_kie_poll_video_units_and_cost);
        tcase_add_test(tk, test_kie_poll_result_as_object);
        tcase_add_test(tk, test_kie_poll_fail_sample);
        tcase_add_loop_test(tk, test_kie_poll_row, 0, N_KIE_POLL);
        tcase_add_test(ts, test_sf_build);
        tcase_add_test(ts, test_sf_build_sizes_and_i2v);
        tcase_add_test(ts, test_sf_build_extra_and_refusals);
        tcase_add_test(ts, test_sf_build_poll);
        tcase_add_test(ts, test_sf_submit_sample);
        tcase_add_loop_test(ts, test_sf_submit_row, 0, N_SF_SUBMIT);
        tcase_add_test(ts, test_sf_poll_lifecycle);
        tcase_add_loop_test(ts, test_sf_poll_row, 0, N_SF_POLL);
        tcase_add_test(tz, test_zhipu_build);
        tcase_add_test(tz, test_zhipu_build_variants);
        tcase_add_test(tz, test_zhipu_build_refusals);
        tcase_add_test(tz, test_zhipu_build_poll);
        tcase_add_test(tz, test_zhipu_submit_sample);
        tcase_add_loop_test(tz, test_zhipu_row, 0, N_ZHIPU);
        tcase_add_test(tz, test_zhipu_poll_lifecycle);
        tcase_add_loop_test(tz, test_zhipu_poll_row, 0, N_ZHIPU_POLL);
        suite_add_tcase(s, tk);
        suite_add_tcase(s, ts);
        suite_add_tcase(s, tz);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(video_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
