/*
 * Unit tests for the image adapters and Hugging Face Whisper:
 * worker/provider_openai_images.c (openai_images, siliconflow_images),
 * worker/provider_stability.c (stability_image), worker/provider_replicate.c
 * (replicate, async) and worker/provider_hf.c (hf_image, hf_whisper).
 *
 * Every build() is checked field by field (URL, method, headers, JSON body
 * or multipart parts), parse() reads the reference's sample bodies
 * (verbatim where the reference gives them whole), the async lifecycle
 * is walked state by state, and one row per section-12 line of these
 * providers checks the classification.  No network.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "provider.h"

#define NO_HINT (-2) /* a row that does not check retry_after_ms */

/* A 2x2 red PNG and its base64. */
static const unsigned char png[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73,
        0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63,
        0xf8, 0xcf, 0xc0, 0x00, 0x44, 0x0c, 0x10, 0x0a, 0x00, 0x1f, 0xee,
        0x03, 0xfd, 0x63, 0x5e, 0xbb, 0x5b, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};
#define PNG_B64                                                              \
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR42mP4z8AA" \
        "RAwQCgAf7gP9Y167WwAAAABJRU5ErkJggg=="

#define VERSION_ID                                                           \
        "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"

/*
 * Fixtures.
 */

/** An image job on the stack. */
struct tjob {
        Genq__V1__Job job;
        Genq__V1__ImageRequest image;
        Genq__V1__SttRequest stt;
        char *urls[2];
};

static void tjob_image(struct tjob *t, const char *prompt, const char *model)
{
        genq__v1__job__init(&t->job);
        genq__v1__image_request__init(&t->image);
        t->image.prompt = (char *)prompt;
        t->image.model = (char *)model;
        t->job.kind = GENQ__V1__KIND__KIND_IMAGE;
        t->job.payload_case = GENQ__V1__JOB__PAYLOAD_IMAGE;
        t->job.image = &t->image;
}

static void tjob_inputs(struct tjob *t, size_t n)
{
        t->urls[0] = "https://example.com/in-0.png";
        t->urls[1] = "https://example.com/in-1.png";
        t->image.input_image_urls = t->urls;
        t->image.n_input_image_urls = n;
}

static void tjob_stt(struct tjob *t, const char *model)
{
        genq__v1__job__init(&t->job);
        genq__v1__stt_request__init(&t->stt);
        t->stt.audio_url = "https://example.com/a.wav";
        t->stt.model = (char *)model;
        t->job.kind = GENQ__V1__KIND__KIND_STT;
        t->job.payload_case = GENQ__V1__JOB__PAYLOAD_STT;
        t->job.stt = &t->stt;
}

static struct provider_cfg tcfg(const char *adapter, const char *base,
                                const char *model, const char *extra)
{
        struct provider_cfg p = {
                .name = "prov",
                .adapter = adapter,
                .base_url = base,
                .model = model,
                .extra_body = extra,
                .max_body_bytes = 1 << 20,
        };
        return p;
}

static struct provider_resp tresp(long status, const char *ctype,
                                  const char *body, size_t len)
{
        struct provider_resp r = {
                .status = status,
                .content_type = ctype,
                .body = body,
                .body_len = len,
                .retry_after_ms = -1,
        };
        return r;
}

static struct provider_resp jresp(long status, const char *body)
{
        return tresp(status, "application/json", body, strlen(body));
}

static void zero_out(struct provider_result *res, struct provider_err *err)
{
        memset(res, 0, sizeof(*res));
        provider_result_clear(res);
        memset(err, 0, sizeof(*err));
        err->retry_after_ms = -1;
}

static enum outcome run(const struct provider_ops *ops, int poll,
                        const struct provider_cfg *p, const struct tjob *t,
                        const struct provider_resp *resp,
                        struct provider_result *res, struct provider_err *err)
{
        zero_out(res, err);
        return (poll ? ops->parse_poll : ops->parse)(p, t ? &t->job : NULL,
                                                     resp, res, err);
}

static int build_with(const struct provider_ops *ops,
                      const struct provider_cfg *p, const char *key,
                      const struct tjob *t, const struct provider_input *in,
                      struct provider_req *req)
{
        char errstr[256] = "";
        int r = ops->build(p, key, &t->job, in, req, errstr, sizeof(errstr));

        if (r)
                ck_assert_msg(errstr[0], "build failed without errstr");
        else
                ck_assert_msg(!errstr[0], "errstr set on success: %s",
                              errstr);
        return r;
}

/** Build (must succeed) and parse the JSON body. */
static json_t *build_json(const struct provider_ops *ops,
                          const struct provider_cfg *p, const struct tjob *t,
                          struct provider_req *req)
{
        json_t *body;

        ck_assert_int_eq(build_with(ops, p, "sk-test-123", t, NULL, req), 0);
        ck_assert_ptr_nonnull(req->body);
        ck_assert_uint_eq(req->body_len, strlen(req->body));
        body = json_loads(req->body, 0, NULL);
        ck_assert_ptr_nonnull(body);
        return body;
}

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

static size_t n_headers(const struct provider_req *req)
{
        size_t n = 0;

        while (req->headers && req->headers[n])
                n++;
        return n;
}

static void assert_refused(const struct provider_ops *ops,
                           const struct provider_cfg *p, const struct tjob *t,
                           const struct provider_input *in)
{
        struct provider_req req;

        ck_assert_int_eq(build_with(ops, p, "k", t, in, &req), -1);
        ck_assert_ptr_null(req.headers);
        ck_assert_ptr_null(req.body);
        ck_assert_uint_eq(req.n_parts, 0);
}

/*
 * openai_images: build()
 */

START_TEST(test_oai_build_fields)
{
        struct provider_cfg p = tcfg("openai_images",
                                     "https://api.openai.com/v1/",
                                     "gpt-image-1", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *b;

        tjob_image(&t, "a red fox in snow", "");
        t.image.count = 3;
        t.image.size = "1536x1024";
        t.image.output_format = "webp";
        t.image.negative_prompt = "blurry"; /* not an OpenAI field */
        b = build_json(&provider_openai_images_ops, &p, &t, &req);
        ck_assert_str_eq(req.url,
                         "https://api.openai.com/v1/images/generations");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 3);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-test-123");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        ck_assert_uint_eq(req.n_parts, 0);
        ck_assert_str_eq(jstr(b, "model"), "gpt-image-1");
        ck_assert_str_eq(jstr(b, "prompt"), "a red fox in snow");
        ck_assert_int_eq(json_integer_value(json_object_get(b, "n")), 3);
        ck_assert_str_eq(jstr(b, "size"), "1536x1024");
        ck_assert_str_eq(jstr(b, "output_format"), "webp");
        ck_assert_uint_eq(json_object_size(b), 5);
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_oai_build_defaults)
{
        struct provider_cfg p = tcfg("openai_images", "https://x/v1",
                                     "gpt-image-1", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *b;

        tjob_image(&t, "p", "");
        b = build_json(&provider_openai_images_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://x/v1/images/generations");
        ck_assert_str_eq(jstr(b, "model"), "gpt-image-1");
        ck_assert_int_eq(json_integer_value(json_object_get(b, "n")), 1);
        ck_assert_ptr_null(json_object_get(b, "size"));
        ck_assert_ptr_null(json_object_get(b, "output_format"));
        ck_assert_ptr_null(json_object_get(b, "response_format"));
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_oai_build_model_hint_and_ratio)
{
        static const struct {
                const char *model, *ratio, *size;
        } cases[] = {
                {"dall-e-3", "16:9", "1792x1024"},
                {"dall-e-3", "9:16", "1024x1792"},
                {"gpt-image-1", "2:3", "1024x1536"},
                {"gpt-image-1", "3:2", "1536x1024"},
                {"dall-e-2", "1:1", "1024x1024"},
                {"gpt-image-1", "21:9", NULL}, /* no such size: default */
        };
        struct provider_cfg p = tcfg("openai_images", "https://x/v1",
                                     "gpt-image-1", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *b;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                tjob_image(&t, "p", cases[i].model);
                t.image.aspect_ratio = (char *)cases[i].ratio;
                t.image.output_format = "png";
                b = build_json(&provider_openai_images_ops, &p, &t, &req);
                ck_assert_str_eq(jstr(b, "model"), cases[i].model);
                if (cases[i].size)
                        ck_assert_str_eq(jstr(b, "size"), cases[i].size);
                else
                        ck_assert_ptr_null(json_object_get(b, "size"));
                /* output_format is a gpt-image-* field only */
                ck_assert_int_eq(json_object_get(b, "output_format") != NULL,
                                 !strncmp(cases[i].model, "gpt-image", 9));
                json_decref(b);
                provider_req_clear(&req);
        }
}
END_TEST

START_TEST(test_oai_build_extra_body)
{
        struct provider_cfg p = tcfg(
                "openai_images", "https://x/v1", "gpt-image-1",
                "{\"quality\":\"high\",\"model\":\"evil\",\"n\":7,"
                "\"background\":\"transparent\"}");
        struct provider_req req;
        struct tjob t;
        json_t *b;

        tjob_image(&t, "p", "");
        t.image.count = 2;
        b = build_json(&provider_openai_images_ops, &p, &t, &req);
        ck_assert_str_eq(jstr(b, "quality"), "high");
        ck_assert_str_eq(jstr(b, "background"), "transparent");
        ck_assert_str_eq(jstr(b, "model"), "gpt-image-1");
        ck_assert_int_eq(json_integer_value(json_object_get(b, "n")), 2);
        json_decref(b);
        provider_req_clear(&req);
        p.extra_body = "[1]";
        assert_refused(&provider_openai_images_ops, &p, &t, NULL);
}
END_TEST

START_TEST(test_oai_build_refusals)
{
        struct provider_cfg p = tcfg("openai_images", "https://x/v1",
                                     "gpt-image-1", NULL);
        struct provider_req req;
        struct tjob t;

        tjob_image(&t, "", "");
        assert_refused(&provider_openai_images_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        tjob_inputs(&t, 1); /* edits need uploads, not URLs */
        assert_refused(&provider_openai_images_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        t.image.count = 11;
        assert_refused(&provider_openai_images_ops, &p, &t, NULL);
        tjob_image(&t, "p", "dall-e-3"); /* one image per request */
        t.image.count = 2;
        assert_refused(&provider_openai_images_ops, &p, &t, NULL);
        tjob_stt(&t, "");
        assert_refused(&provider_openai_images_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        p.model = NULL;
        assert_refused(&provider_openai_images_ops, &p, &t, NULL);
        p = tcfg("openai_images", "", "m", NULL);
        assert_refused(&provider_openai_images_ops, &p, &t, NULL);
        p = tcfg("openai_images", "https://x/v1", "m", NULL);
        ck_assert_int_eq(build_with(&provider_openai_images_ops, &p,
                                    "bad\nkey", &t, NULL, &req),
                         -1);
        /* no key: no Authorization header (a local server) */
        ck_assert_int_eq(build_with(&provider_openai_images_ops, &p, NULL, &t,
                                    NULL, &req),
                         0);
        ck_assert_str_eq(req.headers[0], "Content-Type: application/json");
        provider_req_clear(&req);
}
END_TEST

/*
 * openai_images: parse()
 */

/* Reference 5.1 success sample; its elided b64_json completed. */
static const char oai_sample[] =
        "{\n"
        "  \"created\": 1741569952,\n"
        "  \"data\": [{\"b64_json\": \"" PNG_B64 "\", \"revised_prompt\": "
        "null}],\n"
        "  \"background\": \"opaque\",\n"
        "  \"output_format\": \"png\",\n"
        "  \"quality\": \"medium\",\n"
        "  \"size\": \"1024x1024\",\n"
        "  \"usage\": {\"input_tokens\": 12, \"input_tokens_details\": "
        "{\"image_tokens\": 0, \"text_tokens\": 12},\n"
        "            \"output_tokens\": 1056, \"total_tokens\": 1068}\n"
        "}";

START_TEST(test_oai_parse_reference)
{
        struct provider_cfg p = tcfg("openai_images", "https://x/v1", "m",
                                     NULL);
        struct provider_resp resp = jresp(200, oai_sample);
        struct provider_result res;
        struct provider_err err;
        json_t *u;

        ck_assert_int_eq(run(&provider_openai_images_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.data_len, sizeof(png));
        ck_assert_mem_eq(res.data, png, sizeof(png));
        ck_assert_str_eq(res.content_type, "image/png");
        ck_assert_uint_eq(res.n_urls, 0);
        ck_assert_double_eq(res.units, 1);
        ck_assert_str_eq(res.unit, "image");
        ck_assert_int_eq(res.input_tokens, 12);
        ck_assert_int_eq(res.output_tokens, 1056);
        u = json_loads(res.usage_json, 0, NULL);
        ck_assert_int_eq(json_integer_value(json_object_get(u,
                                                            "total_tokens")),
                         1068);
        json_decref(u);
        ck_assert_ptr_null(res.task_id);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_oai_parse_elided_sample_is_malformed)
{
        /* the reference's sample verbatim: "..." is not base64 */
        static const char body[] =
                "{\"created\": 1741569952, \"data\": [{\"b64_json\": "
                "\"iVBORw0KGgoAAAANSUhEUgAA...\", \"revised_prompt\": "
                "null}], \"output_format\": \"png\"}";
        struct provider_cfg p = tcfg("openai_images", "https://x/v1", "m",
                                     NULL);
        struct provider_resp resp = jresp(200, body);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_openai_images_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_nonnull(strstr(err.errstr, "base64"));
        ck_assert_ptr_null(res.data);
        ck_assert_double_eq(res.units, -1);
}
END_TEST

START_TEST(test_oai_parse_formats_and_many)
{
        static const struct {
                const char *fmt, *ctype;
        } cases[] = {
                {"\"jpeg\"", "image/jpeg"},
                {"\"webp\"", "image/webp"},
                {"null", "image/png"},
        };
        struct provider_cfg p = tcfg("openai_images", "https://x/v1", "m",
                                     NULL);
        struct provider_result res;
        struct provider_err err;
        struct provider_resp resp;
        char body[1024];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                snprintf(body, sizeof(body),
                         "{\"created\":1,\"data\":[{\"b64_json\":\"%s\"},"
                         "{\"b64_json\":\"AAAA\"}],\"output_format\":%s}",
                         PNG_B64, cases[i].fmt);
                resp = jresp(200, body);
                ck_assert_int_eq(run(&provider_openai_images_ops, 0, &p, NULL,
                                     &resp, &res, &err),
                                 OUTCOME_SUCCESS);
                ck_assert_str_eq(res.content_type, cases[i].ctype);
                /* the first image is kept, both are counted */
                ck_assert_uint_eq(res.data_len, sizeof(png));
                ck_assert_double_eq(res.units, 2);
                ck_assert_int_eq(res.input_tokens, -1);
                ck_assert_ptr_null(res.usage_json);
                provider_result_clear(&res);
        }
}
END_TEST

START_TEST(test_oai_parse_urls)
{
        static const char body[] =
                "{\"created\":1741569952,\"data\":["
                "{\"url\":\"https://oaidalleapiprodscus.blob.core.windows.net/"
                "a.png\",\"revised_prompt\":\"A red fox standing in snow\"},"
                "{\"url\":\"https://oaidalleapiprodscus.blob.core.windows.net/"
                "b.png\",\"revised_prompt\":null}]}";
        struct provider_cfg p = tcfg("openai_images", "https://x/v1", "m",
                                     NULL);
        struct provider_resp resp = jresp(200, body);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_openai_images_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 2);
        ck_assert_str_eq(res.urls[0], "https://oaidalleapiprodscus.blob.core."
                                      "windows.net/a.png");
        ck_assert_str_eq(res.urls[1], "https://oaidalleapiprodscus.blob.core."
                                      "windows.net/b.png");
        ck_assert_ptr_null(res.data);
        ck_assert_double_eq(res.units, 2);
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_oai_parse_bad_200s)
{
        static const char *const bodies[] = {
                "{\"created\":1,\"data\":[]}",
                "{\"created\":1}",
                "{\"created\":1,\"data\":[{\"revised_prompt\":null}]}",
                "{\"data\":[{\"b64_json\":\"",
                "[]",
        };
        struct provider_cfg p = tcfg("openai_images", "https://x/v1", "m",
                                     NULL);
        struct provider_result res;
        struct provider_err err;
        struct provider_resp resp;

        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
                resp = jresp(200, bodies[i]);
                ck_assert_int_eq(run(&provider_openai_images_ops, 0, &p, NULL,
                                     &resp, &res, &err),
                                 OUTCOME_RETRY_LATER);
                ck_assert_msg(err.errstr[0], "empty errstr for %s",
                              bodies[i]);
                ck_assert_uint_eq(res.n_urls, 0);
        }
        resp = jresp(200, oai_sample);
        resp.truncated = 1;
        ck_assert_int_eq(run(&provider_openai_images_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.data);
}
END_TEST

/*
 * siliconflow_images
 */

START_TEST(test_sf_build_fields)
{
        struct provider_cfg p = tcfg("siliconflow_images",
                                     "https://api.siliconflow.cn/v1",
                                     "Kwai-Kolors/Kolors", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *b;

        tjob_image(&t, "an island near sea, with seagulls, moon shining "
                       "over the sea",
                   "");
        t.image.negative_prompt = "blurry";
        t.image.size = "1024x1024";
        t.image.count = 4;
        t.image.output_format = "png"; /* not a SiliconFlow field */
        b = build_json(&provider_sf_images_ops, &p, &t, &req);
        ck_assert_str_eq(req.url,
                         "https://api.siliconflow.cn/v1/images/generations");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 3);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-test-123");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(jstr(b, "model"), "Kwai-Kolors/Kolors");
        ck_assert_str_eq(jstr(b, "prompt"),
                         "an island near sea, with seagulls, moon shining "
                         "over the sea");
        ck_assert_str_eq(jstr(b, "negative_prompt"), "blurry");
        ck_assert_str_eq(jstr(b, "image_size"), "1024x1024");
        ck_assert_int_eq(json_integer_value(json_object_get(b, "batch_size")),
                         4);
        ck_assert_uint_eq(json_object_size(b), 5);
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_sf_build_ratio_edit_extra)
{
        struct provider_cfg p = tcfg(
                "siliconflow_images", "https://x/v1", "Qwen/Qwen-Image-Edit",
                "{\"num_inference_steps\":20,\"guidance_scale\":7.5,"
                "\"batch_size\":3}");
        struct provider_req req;
        struct tjob t;
        json_t *b;

        tjob_image(&t, "p", "black-forest-labs/FLUX.1-schnell");
        t.image.aspect_ratio = "9:16";
        tjob_inputs(&t, 1);
        b = build_json(&provider_sf_images_ops, &p, &t, &req);
        ck_assert_str_eq(jstr(b, "model"), "black-forest-labs/FLUX.1-schnell");
        ck_assert_str_eq(jstr(b, "image_size"), "720x1280");
        ck_assert_str_eq(jstr(b, "image"), "https://example.com/in-0.png");
        ck_assert_int_eq(json_integer_value(json_object_get(b, "batch_size")),
                         1);
        ck_assert_int_eq(json_integer_value(json_object_get(
                                 b, "num_inference_steps")),
                         20);
        ck_assert_ptr_null(json_object_get(b, "negative_prompt"));
        json_decref(b);
        provider_req_clear(&req);
        t.image.aspect_ratio = "7:5"; /* no listed size: default */
        b = build_json(&provider_sf_images_ops, &p, &t, &req);
        ck_assert_ptr_null(json_object_get(b, "image_size"));
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_sf_build_refusals)
{
        struct provider_cfg p = tcfg("siliconflow_images", "https://x/v1",
                                     "Kwai-Kolors/Kolors", NULL);
        struct tjob t;

        tjob_image(&t, "p", "");
        t.image.count = 5; /* batch_size is 1..4 */
        assert_refused(&provider_sf_images_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        tjob_inputs(&t, 2);
        assert_refused(&provider_sf_images_ops, &p, &t, NULL);
        tjob_image(&t, "", "");
        assert_refused(&provider_sf_images_ops, &p, &t, NULL);
}
END_TEST

START_TEST(test_sf_parse_reference)
{
        /* reference 5.2 success, verbatim */
        static const char body[] =
                "{\n"
                "  \"images\": [{\"url\": \"https://sc-maas.oss-cn-shanghai."
                "aliyuncs.com/outputs/abc.png\"}],\n"
                "  \"timings\": {\"inference\": 2.314},\n"
                "  \"seed\": 1234567\n"
                "}";
        struct provider_cfg p = tcfg("siliconflow_images", "https://x/v1",
                                     "m", NULL);
        struct provider_resp resp = jresp(200, body);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_sf_images_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 1);
        ck_assert_str_eq(res.urls[0], "https://sc-maas.oss-cn-shanghai."
                                      "aliyuncs.com/outputs/abc.png");
        ck_assert_double_eq(res.units, 1);
        ck_assert_str_eq(res.unit, "image");
        ck_assert_ptr_null(res.data);
        provider_result_clear(&res);
        resp = jresp(200, "{\"images\":[{\"url\":\"https://a/1.png\"},"
                          "{\"url\":\"https://a/2.png\"},{}],\"seed\":1}");
        ck_assert_int_eq(run(&provider_sf_images_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, 2);
        provider_result_clear(&res);
        resp = jresp(200, "{\"images\":[],\"seed\":1}");
        ck_assert_int_eq(run(&provider_sf_images_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
}
END_TEST

/*
 * stability_image
 */

static void assert_part(const struct provider_req *req, size_t i,
                        const char *name, const char *value)
{
        ck_assert_uint_lt(i, req->n_parts);
        ck_assert_str_eq(req->parts[i].name, name);
        ck_assert_uint_eq(req->parts[i].len, strlen(value));
        ck_assert_str_eq(req->parts[i].data, value);
        ck_assert_ptr_null(req->parts[i].filename);
        ck_assert_ptr_null(req->parts[i].content_type);
}

START_TEST(test_stab_build_core)
{
        struct provider_cfg p = tcfg(
                "stability_image",
                "https://api.stability.ai/v2beta/stable-image/generate/",
                "core", NULL);
        struct provider_req req;
        struct tjob t;

        tjob_image(&t, "a red fox in snow", "");
        t.image.negative_prompt = "blurry";
        t.image.aspect_ratio = "16:9";
        t.image.output_format = "webp";
        ck_assert_int_eq(build_with(&provider_stability_ops, &p, "sk-stab-1",
                                    &t, NULL, &req),
                         0);
        ck_assert_str_eq(req.url, "https://api.stability.ai/v2beta/"
                                  "stable-image/generate/core");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 2);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-stab-1");
        ck_assert_str_eq(req.headers[1], "Accept: image/*");
        /* multipart even for text-to-image; curl sets the Content-Type */
        ck_assert_ptr_null(req.body);
        ck_assert_uint_eq(req.n_parts, 4);
        assert_part(&req, 0, "prompt", "a red fox in snow");
        assert_part(&req, 1, "negative_prompt", "blurry");
        assert_part(&req, 2, "aspect_ratio", "16:9");
        assert_part(&req, 3, "output_format", "webp");
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_stab_build_models)
{
        static const struct {
                const char *cfg_model, *hint, *path, *model_part;
        } cases[] = {
                {"ultra", "", "ultra", NULL},
                {"sd3", "", "sd3", NULL},
                {"sd3.5-large", "", "sd3", "sd3.5-large"},
                {"core", "sd3.5-large-turbo", "sd3", "sd3.5-large-turbo"},
                {"core", "ultra", "ultra", NULL},
                {"core", "gpt-image-1", "core", NULL}, /* not ours */
                {"core", "ultra-x", "core", NULL},
        };
        struct provider_cfg p;
        struct provider_req req;
        struct tjob t;
        char want[256];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                p = tcfg("stability_image", "https://s/gen",
                         cases[i].cfg_model, NULL);
                tjob_image(&t, "p", cases[i].hint);
                ck_assert_int_eq(build_with(&provider_stability_ops, &p, "k",
                                            &t, NULL, &req),
                                 0);
                snprintf(want, sizeof(want), "https://s/gen/%s",
                         cases[i].path);
                ck_assert_str_eq(req.url, want);
                ck_assert_uint_eq(req.n_parts, cases[i].model_part ? 2 : 1);
                assert_part(&req, 0, "prompt", "p");
                if (cases[i].model_part)
                        assert_part(&req, 1, "model", cases[i].model_part);
                provider_req_clear(&req);
        }
}
END_TEST

START_TEST(test_stab_build_ratio_from_size_and_extra)
{
        struct provider_cfg p = tcfg(
                "stability_image", "https://s/gen", "core",
                "{\"seed\":42,\"style_preset\":\"photographic\","
                "\"prompt\":\"evil\",\"cfg\":1.5,\"flag\":true}");
        struct provider_req req;
        struct tjob t;

        tjob_image(&t, "p", "");
        t.image.size = "1024x576";
        ck_assert_int_eq(build_with(&provider_stability_ops, &p, "k", &t,
                                    NULL, &req),
                         0);
        ck_assert_uint_eq(req.n_parts, 6);
        assert_part(&req, 0, "prompt", "p");
        assert_part(&req, 1, "aspect_ratio", "16:9");
        assert_part(&req, 2, "seed", "42");
        assert_part(&req, 3, "style_preset", "photographic");
        assert_part(&req, 4, "cfg", "1.5");
        assert_part(&req, 5, "flag", "true");
        provider_req_clear(&req);
        /* a size whose ratio the API does not take: none sent */
        p.extra_body = NULL;
        t.image.size = "1000x333";
        ck_assert_int_eq(build_with(&provider_stability_ops, &p, "k", &t,
                                    NULL, &req),
                         0);
        ck_assert_uint_eq(req.n_parts, 1);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_stab_build_refusals)
{
        struct provider_cfg p = tcfg("stability_image", "https://s/gen",
                                     "core", "{\"x\":{\"nested\":1}}");
        struct tjob t;

        tjob_image(&t, "p", "");
        assert_refused(&provider_stability_ops, &p, &t, NULL);
        p.extra_body = NULL;
        t.image.count = 2;
        assert_refused(&provider_stability_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        tjob_inputs(&t, 1);
        assert_refused(&provider_stability_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        p.model = "stable-diffusion-xl-1024-v1-0"; /* a v1 engine */
        assert_refused(&provider_stability_ops, &p, &t, NULL);
        p.model = NULL;
        assert_refused(&provider_stability_ops, &p, &t, NULL);
}
END_TEST

START_TEST(test_stab_parse_binary)
{
        static const char *const hdrs[] = {"finish-reason: SUCCESS",
                                           "seed: 343940597", NULL};
        struct provider_cfg p = tcfg("stability_image", "https://s", "core",
                                     NULL);
        struct provider_resp resp = tresp(200, "image/png", (const char *)png,
                                          sizeof(png));
        struct provider_result res;
        struct provider_err err;
        struct tjob t;

        tjob_image(&t, "p", "");
        resp.headers = (char **)hdrs;
        ck_assert_int_eq(run(&provider_stability_ops, 0, &p, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.data_len, sizeof(png));
        ck_assert_mem_eq(res.data, png, sizeof(png));
        ck_assert_str_eq(res.content_type, "image/png");
        ck_assert_double_eq(res.units, 1);
        ck_assert_str_eq(res.unit, "image");
        provider_result_clear(&res);
        resp.content_type = "image/webp; charset=binary";
        resp.headers = NULL;
        ck_assert_int_eq(run(&provider_stability_ops, 0, &p, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.content_type, "image/webp");
        provider_result_clear(&res);
}
END_TEST

START_TEST(test_stab_parse_filtered_header)
{
        static const char *const hdrs[] = {"Finish-Reason: CONTENT_FILTERED",
                                           NULL};
        struct provider_cfg p = tcfg("stability_image", "https://s", "core",
                                     NULL);
        struct provider_resp resp = tresp(200, "image/png", (const char *)png,
                                          sizeof(png));
        struct provider_result res;
        struct provider_err err;

        resp.headers = (char **)hdrs;
        ck_assert_int_eq(run(&provider_stability_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_FATAL_JOB);
        ck_assert_int_eq(err.outcome, OUTCOME_FATAL_JOB);
        ck_assert_ptr_nonnull(strstr(err.errstr, "CONTENT_FILTERED"));
        ck_assert_ptr_null(res.data);
        ck_assert_double_eq(res.units, -1);
}
END_TEST

START_TEST(test_stab_parse_json)
{
        /* reference 5.3 JSON success, its elided image completed */
        static const char ok[] = "{\"image\": \"" PNG_B64 "\", "
                                 "\"finish_reason\": \"SUCCESS\", \"seed\": "
                                 "343940597}";
        static const char filtered[] =
                "{\"image\": \"" PNG_B64 "\", \"finish_reason\": "
                "\"CONTENT_FILTERED\", \"seed\": 1}";
        struct provider_cfg p = tcfg("stability_image", "https://s", "core",
                                     NULL);
        struct provider_resp resp = jresp(200, ok);
        struct provider_result res;
        struct provider_err err;
        struct tjob t;

        tjob_image(&t, "p", "");
        t.image.output_format = "jpeg";
        ck_assert_int_eq(run(&provider_stability_ops, 0, &p, &t, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_mem_eq(res.data, png, sizeof(png));
        ck_assert_str_eq(res.content_type, "image/jpeg");
        ck_assert_double_eq(res.units, 1);
        provider_result_clear(&res);
        resp = jresp(200, filtered);
        ck_assert_int_eq(run(&provider_stability_ops, 0, &p, &t, &resp, &res,
                             &err),
                         OUTCOME_FATAL_JOB);
        ck_assert_ptr_null(res.data);
        resp = jresp(200, "{\"finish_reason\":\"SUCCESS\"}");
        ck_assert_int_eq(run(&provider_stability_ops, 0, &p, &t, &resp, &res,
                             &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.data);
        resp = tresp(200, "text/html", "<html></html>", 13);
        ck_assert_int_eq(run(&provider_stability_ops, 0, &p, &t, &resp, &res,
                             &err),
                         OUTCOME_RETRY_LATER);
        resp = tresp(200, "image/png", "", 0);
        ck_assert_int_eq(run(&provider_stability_ops, 0, &p, &t, &resp, &res,
                             &err),
                         OUTCOME_RETRY_LATER);
}
END_TEST

/*
 * replicate: build() and build_poll()
 */

START_TEST(test_rep_build_official_model)
{
        struct provider_cfg p = tcfg("replicate",
                                     "https://api.replicate.com/v1/",
                                     "black-forest-labs/flux-schnell", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *b, *in;

        tjob_image(&t, "a red fox in snow", "");
        t.image.negative_prompt = "blurry";
        t.image.size = "1024x576";
        t.image.output_format = "jpeg";
        t.image.count = 2;
        tjob_inputs(&t, 1);
        b = build_json(&provider_replicate_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://api.replicate.com/v1/models/"
                                  "black-forest-labs/flux-schnell/"
                                  "predictions");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 2);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-test-123");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_uint_eq(json_object_size(b), 1); /* no version */
        in = json_object_get(b, "input");
        ck_assert_str_eq(jstr(in, "prompt"), "a red fox in snow");
        ck_assert_str_eq(jstr(in, "negative_prompt"), "blurry");
        ck_assert_str_eq(jstr(in, "aspect_ratio"), "16:9");
        ck_assert_str_eq(jstr(in, "output_format"), "jpg");
        ck_assert_int_eq(json_integer_value(json_object_get(in,
                                                            "num_outputs")),
                         2);
        ck_assert_str_eq(jstr(in, "image"), "https://example.com/in-0.png");
        ck_assert_uint_eq(json_object_size(in), 6);
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_rep_build_versions_and_hints)
{
        static const struct {
                const char *cfg_model, *hint, *url, *version;
        } cases[] = {
                {VERSION_ID, "", "https://r/v1/predictions", VERSION_ID},
                {"stability-ai/sdxl:" VERSION_ID, "",
                 "https://r/v1/predictions", VERSION_ID},
                {"a/b", "bytedance/sdxl-lightning-4step",
                 "https://r/v1/models/bytedance/sdxl-lightning-4step/"
                 "predictions",
                 NULL},
                {"a/b", VERSION_ID, "https://r/v1/predictions", VERSION_ID},
                {"a/b", "gpt-image-1", "https://r/v1/models/a/b/predictions",
                 NULL},
                {"a/b", "x/y/z", "https://r/v1/models/a/b/predictions", NULL},
        };
        struct provider_cfg p;
        struct provider_req req;
        struct tjob t;
        json_t *b, *in;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                p = tcfg("replicate", "https://r/v1", cases[i].cfg_model,
                         "{\"num_inference_steps\":4,\"prompt\":\"evil\"}");
                tjob_image(&t, "p", cases[i].hint);
                b = build_json(&provider_replicate_ops, &p, &t, &req);
                ck_assert_str_eq(req.url, cases[i].url);
                if (cases[i].version)
                        ck_assert_str_eq(jstr(b, "version"),
                                         cases[i].version);
                else
                        ck_assert_ptr_null(json_object_get(b, "version"));
                in = json_object_get(b, "input");
                /* extra_body goes into input, as defaults */
                ck_assert_str_eq(jstr(in, "prompt"), "p");
                ck_assert_int_eq(json_integer_value(json_object_get(
                                         in, "num_inference_steps")),
                                 4);
                ck_assert_ptr_null(json_object_get(in, "num_outputs"));
                json_decref(b);
                provider_req_clear(&req);
        }
}
END_TEST

START_TEST(test_rep_build_refusals)
{
        struct provider_cfg p = tcfg("replicate", "https://r/v1",
                                     "flux-schnell", NULL);
        struct tjob t;

        tjob_image(&t, "p", "");
        assert_refused(&provider_replicate_ops, &p, &t, NULL); /* no owner */
        p.model = "a/b:1234";
        assert_refused(&provider_replicate_ops, &p, &t, NULL);
        p.model = "../b"; /* it goes into the URL path */
        assert_refused(&provider_replicate_ops, &p, &t, NULL);
        p.model = "a/b";
        tjob_inputs(&t, 2);
        assert_refused(&provider_replicate_ops, &p, &t, NULL);
        tjob_image(&t, "", "");
        assert_refused(&provider_replicate_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        p.extra_body = "\"x\"";
        assert_refused(&provider_replicate_ops, &p, &t, NULL);
}
END_TEST

START_TEST(test_rep_build_poll)
{
        struct provider_cfg p = tcfg("replicate",
                                     "https://api.replicate.com/v1/", "a/b",
                                     NULL);
        struct provider_req req;
        char errstr[128];

        ck_assert_int_eq(provider_replicate_ops.build_poll(
                                 &p, "r8_key", "gm3qorzdhgbfurvjtvhg6dckhu",
                                 &req, errstr, sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.url, "https://api.replicate.com/v1/predictions/"
                                  "gm3qorzdhgbfurvjtvhg6dckhu");
        ck_assert_str_eq(req.method, "GET");
        ck_assert_uint_eq(n_headers(&req), 1);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer r8_key");
        ck_assert_ptr_null(req.body);
        provider_req_clear(&req);
        ck_assert_int_eq(provider_replicate_ops.build_poll(
                                 &p, "k", "../account", &req, errstr,
                                 sizeof(errstr)),
                         -1);
        ck_assert_int_eq(provider_replicate_ops.build_poll(
                                 &p, "k", "", &req, errstr, sizeof(errstr)),
                         -1);
        ck_assert_int_eq(provider_replicate_ops.build_poll(
                                 &p, "k", "..", &req, errstr, sizeof(errstr)),
                         -1);
        ck_assert_ptr_null(req.headers);
}
END_TEST

/*
 * replicate: parse() and parse_poll()
 */

/* Reference 5.4 prediction object, verbatim but for status/output. */
#define PRED_FMT                                                             \
        "{\n"                                                                \
        "  \"id\": \"gm3qorzdhgbfurvjtvhg6dckhu\",\n"                        \
        "  \"model\": \"black-forest-labs/flux-schnell\",\n"                 \
        "  \"version\": \"5c7d5dc6...\",\n"                                  \
        "  \"status\": \"%s\",\n"                                            \
        "  \"input\": {\"prompt\": \"a red fox in snow\"},\n"                \
        "  \"output\": %s,\n"                                                \
        "  \"error\": %s,\n"                                                 \
        "  \"logs\": \"...\",\n"                                             \
        "  \"metrics\": {\"predict_time\": 1.92, \"total_time\": 2.10},\n"   \
        "  \"created_at\": \"2025-01-01T10:00:00.000Z\",\n"                  \
        "  \"started_at\": \"2025-01-01T10:00:00.150Z\",\n"                  \
        "  \"completed_at\": \"2025-01-01T10:00:02.100Z\",\n"                \
        "  \"urls\": {\n"                                                    \
        "    \"get\": \"https://api.replicate.com/v1/predictions/"           \
        "gm3qorzdhgbfurvjtvhg6dckhu\",\n"                                    \
        "    \"cancel\": \"https://api.replicate.com/v1/predictions/"        \
        "gm3qorzdhgbfurvjtvhg6dckhu/cancel\",\n"                             \
        "    \"stream\": \"https://stream.replicate.com/v1/files/...\"\n"    \
        "  }\n"                                                              \
        "}"

static enum outcome rep_poll(const char *status, const char *output,
                             const char *error, struct provider_result *res,
                             struct provider_err *err)
{
        struct provider_cfg p = tcfg("replicate", "https://r/v1", "a/b",
                                     NULL);
        struct provider_resp resp;
        char body[4096];

        snprintf(body, sizeof(body), PRED_FMT, status, output, error);
        resp = jresp(200, body);
        return run(&provider_replicate_ops, 1, &p, NULL, &resp, res, err);
}

START_TEST(test_rep_parse_submit)
{
        struct provider_cfg p = tcfg("replicate", "https://r/v1", "a/b",
                                     NULL);
        struct provider_result res;
        struct provider_err err;
        struct provider_resp resp;
        char body[4096];

        snprintf(body, sizeof(body), PRED_FMT, "starting", "null", "null");
        resp = jresp(201, body);
        ck_assert_int_eq(run(&provider_replicate_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.task_id, "gm3qorzdhgbfurvjtvhg6dckhu");
        ck_assert_uint_eq(res.n_urls, 0);
        provider_result_clear(&res);
        resp = jresp(201, "{\"status\":\"starting\"}");
        ck_assert_int_eq(run(&provider_replicate_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.task_id);
        resp = jresp(201, "{\"id\":");
        ck_assert_int_eq(run(&provider_replicate_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
}
END_TEST

START_TEST(test_rep_poll_running)
{
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(rep_poll("starting", "null", "null", &res, &err),
                         OUTCOME_PENDING);
        ck_assert_int_eq(err.outcome, OUTCOME_PENDING);
        ck_assert_uint_eq(res.n_urls, 0);
        ck_assert_int_eq(rep_poll("processing", "null", "null", &res, &err),
                         OUTCOME_PENDING);
        ck_assert_int_eq(err.retry_after_ms, -1);
}
END_TEST

START_TEST(test_rep_poll_succeeded)
{
        struct provider_result res;
        struct provider_err err;
        json_t *u;

        /* the reference's sample: an array with one URL */
        ck_assert_int_eq(
                rep_poll("succeeded",
                         "[\"https://replicate.delivery/xezq/abc/"
                         "out-0.webp\"]",
                         "null", &res, &err),
                OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 1);
        ck_assert_str_eq(res.urls[0],
                         "https://replicate.delivery/xezq/abc/out-0.webp");
        ck_assert_double_eq(res.units, 1);
        ck_assert_str_eq(res.unit, "image");
        ck_assert_str_eq(res.model, "black-forest-labs/flux-schnell");
        u = json_loads(res.usage_json, 0, NULL);
        ck_assert_double_eq_tol(json_real_value(json_object_get(
                                        u, "predict_time")),
                                1.92, 1e-9);
        json_decref(u);
        provider_result_clear(&res);
        /* a plain string */
        ck_assert_int_eq(rep_poll("succeeded", "\"https://r.d/one.png\"",
                                  "null", &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 1);
        ck_assert_str_eq(res.urls[0], "https://r.d/one.png");
        provider_result_clear(&res);
        /* four, with a non-string in between */
        ck_assert_int_eq(rep_poll("succeeded",
                                  "[\"https://a/0\",\"https://a/1\",7,"
                                  "\"https://a/2\",\"https://a/3\"]",
                                  "null", &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, 4);
        ck_assert_str_eq(res.urls[3], "https://a/3");
        provider_result_clear(&res);
        /* an object output: its URL members */
        ck_assert_int_eq(rep_poll("succeeded",
                                  "{\"image\":\"https://a/x.png\","
                                  "\"seed\":\"12\"}",
                                  "null", &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.n_urls, 1);
        provider_result_clear(&res);
        /* succeeded with nothing to show */
        ck_assert_int_eq(rep_poll("succeeded", "null", "null", &res, &err),
                         OUTCOME_FALLBACK_NEXT);
        ck_assert_uint_eq(res.n_urls, 0);
        ck_assert_ptr_null(res.model);
        ck_assert_double_eq(res.units, -1);
}
END_TEST

START_TEST(test_rep_poll_failed)
{
        static const struct {
                const char *status, *error;
                enum outcome want;
        } cases[] = {
                {"failed", "\"NSFW content detected. Try running it again, "
                           "or try a different prompt.\"",
                 OUTCOME_FATAL_JOB},
                {"failed", "\"Invalid input: image could not be decoded\"",
                 OUTCOME_FATAL_JOB},
                {"failed", "\"CUDA out of memory. Tried to allocate 2.00 "
                           "GiB\"",
                 OUTCOME_FALLBACK_NEXT},
                {"failed", "\"Internal server error\"", OUTCOME_FALLBACK_NEXT},
                {"failed", "null", OUTCOME_FALLBACK_NEXT},
                {"canceled", "null", OUTCOME_FATAL_JOB},
                {"aborted", "null", OUTCOME_FALLBACK_NEXT},
                {"exploded", "null", OUTCOME_FALLBACK_NEXT},
        };
        struct provider_result res;
        struct provider_err err;
        enum outcome got;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                got = rep_poll(cases[i].status, "null", cases[i].error, &res,
                               &err);
                ck_assert_msg(got == cases[i].want, "%s %s: got %s",
                              cases[i].status, cases[i].error,
                              outcome_name(got));
                ck_assert_int_eq(err.outcome, got);
                ck_assert_msg(err.errstr[0], "empty errstr");
                ck_assert_uint_eq(res.n_urls, 0);
        }
        rep_poll("failed", "null", "\"NSFW content detected.\"", &res, &err);
        ck_assert_str_eq(err.errstr,
                         "prediction failed: NSFW content detected.");
}
END_TEST

START_TEST(test_rep_poll_http_failures)
{
        static const char throttled[] =
                "{\"detail\":\"Request was throttled. Your rate limit for "
                "creating predictions is reduced to 6 requests per minute "
                "with a burst of 1 requests while you have less than $5.0 "
                "in credit. Your rate limit resets in ~5s.\",\"status\":429,"
                "\"retry_after\":5}";
        struct provider_cfg p = tcfg("replicate", "https://r/v1", "a/b",
                                     NULL);
        struct provider_result res;
        struct provider_err err;
        struct provider_resp resp;

        resp = jresp(429, throttled);
        ck_assert_int_eq(run(&provider_replicate_ops, 1, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_int_eq(err.retry_after_ms, 5000);
        resp = jresp(503, "{\"title\":\"Service Unavailable\","
                          "\"detail\":\"try later\",\"status\":503}");
        ck_assert_int_eq(run(&provider_replicate_ops, 1, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        resp = tresp(502, "text/html", "<html>bad gateway</html>", 24);
        ck_assert_int_eq(run(&provider_replicate_ops, 1, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        resp = tresp(0, NULL, NULL, 0);
        resp.transport_err = 28;
        resp.timed_out = 1;
        resp.transport_msg = "Operation timed out";
        ck_assert_int_eq(run(&provider_replicate_ops, 1, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        resp = jresp(404, "{\"detail\":\"Not found.\",\"status\":404}");
        ck_assert_int_eq(run(&provider_replicate_ops, 1, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_FALLBACK_NEXT);
        resp = jresp(200, "{\"id\":\"x\"}"); /* no status */
        ck_assert_int_eq(run(&provider_replicate_ops, 1, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
}
END_TEST

/*
 * hf_image
 */

START_TEST(test_hf_image_build)
{
        struct provider_cfg p = tcfg(
                "hf_image", "https://router.huggingface.co/hf-inference/",
                "black-forest-labs/FLUX.1-schnell", NULL);
        struct provider_req req;
        struct tjob t;
        json_t *b;

        tjob_image(&t, "a red fox in snow", "");
        b = build_json(&provider_hf_image_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://router.huggingface.co/"
                                  "hf-inference/models/black-forest-labs/"
                                  "FLUX.1-schnell");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 2);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-test-123");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(jstr(b, "inputs"), "a red fox in snow");
        ck_assert_uint_eq(json_object_size(b), 1);
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_hf_image_build_params)
{
        struct provider_cfg p = tcfg(
                "hf_image", "https://api-inference.huggingface.co", "sdxl",
                "{\"parameters\":{\"num_inference_steps\":4,"
                "\"width\":1},\"options\":{\"wait_for_model\":true}}");
        struct provider_req req;
        struct tjob t;
        json_t *b, *params;

        tjob_image(&t, "p", "stabilityai/stable-diffusion-xl-base-1.0");
        t.image.negative_prompt = "blurry";
        t.image.size = "768x512";
        b = build_json(&provider_hf_image_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://api-inference.huggingface.co/"
                                  "models/stabilityai/"
                                  "stable-diffusion-xl-base-1.0");
        params = json_object_get(b, "parameters");
        ck_assert_str_eq(jstr(params, "negative_prompt"), "blurry");
        ck_assert_int_eq(json_integer_value(json_object_get(params, "width")),
                         768);
        ck_assert_int_eq(json_integer_value(json_object_get(params,
                                                            "height")),
                         512);
        ck_assert_int_eq(json_integer_value(json_object_get(
                                 params, "num_inference_steps")),
                         4);
        ck_assert(json_is_true(json_object_get(
                json_object_get(b, "options"), "wait_for_model")));
        json_decref(b);
        provider_req_clear(&req);
        /* a hint that is not a repository id: the default model */
        tjob_image(&t, "p", "dall-e-3");
        b = build_json(&provider_hf_image_ops, &p, &t, &req);
        ck_assert_str_eq(req.url, "https://api-inference.huggingface.co/"
                                  "models/sdxl");
        /* extra parameters apply with no job parameters too */
        ck_assert_int_eq(json_integer_value(json_object_get(
                                 json_object_get(b, "parameters"), "width")),
                         1);
        json_decref(b);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_hf_image_refusals)
{
        struct provider_cfg p = tcfg("hf_image", "https://h", "a/b", NULL);
        struct tjob t;

        tjob_image(&t, "p", "");
        t.image.count = 2;
        assert_refused(&provider_hf_image_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        tjob_inputs(&t, 1);
        assert_refused(&provider_hf_image_ops, &p, &t, NULL);
        tjob_image(&t, "p", "");
        p.model = "a/b/c";
        assert_refused(&provider_hf_image_ops, &p, &t, NULL);
        p.model = "../x";
        assert_refused(&provider_hf_image_ops, &p, &t, NULL);
}
END_TEST

START_TEST(test_hf_image_parse)
{
        struct provider_cfg p = tcfg("hf_image", "https://h", "a/b", NULL);
        struct provider_resp resp = tresp(200, "image/jpeg", (const char *)png,
                                          sizeof(png));
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_hf_image_ops, 0, &p, NULL, &resp, &res,
                             &err),
                         OUTCOME_SUCCESS);
        ck_assert_mem_eq(res.data, png, sizeof(png));
        ck_assert_str_eq(res.content_type, "image/jpeg");
        ck_assert_double_eq(res.units, 1);
        ck_assert_str_eq(res.unit, "image");
        provider_result_clear(&res);
        resp = jresp(200, "{\"generated_text\":\"x\"}");
        ck_assert_int_eq(run(&provider_hf_image_ops, 0, &p, NULL, &resp, &res,
                             &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.data);
        resp = tresp(200, "image/png", (const char *)png, sizeof(png));
        resp.truncated = 1;
        ck_assert_int_eq(run(&provider_hf_image_ops, 0, &p, NULL, &resp, &res,
                             &err),
                         OUTCOME_RETRY_LATER);
}
END_TEST

/*
 * hf_whisper
 */

/** A PCM WAV of \p secs seconds at 8 kHz 16-bit mono; \p list adds a
 *  LIST chunk before "data".  Caller frees. */
static char *make_wav(int secs, int list, size_t *len)
{
        uint32_t n = (uint32_t)secs * 16000, extra = list ? 12 : 0;
        unsigned char *b = calloc(1, 44 + extra + n);
        uint32_t rate = 8000, brate = 16000, riff = 36 + extra + n;

        memcpy(b, "RIFF", 4);
        memcpy(b + 4, &riff, 4); /* little-endian host */
        memcpy(b + 8, "WAVEfmt ", 8);
        b[16] = 16;
        b[20] = 1;
        b[22] = 1;
        memcpy(b + 24, &rate, 4);
        memcpy(b + 28, &brate, 4);
        b[32] = 2;
        b[34] = 16;
        if (list) {
                memcpy(b + 36, "LIST", 4);
                b[40] = 4;
                memcpy(b + 44, "INFO", 4);
        }
        memcpy(b + 36 + extra, "data", 4);
        memcpy(b + 40 + extra, &n, 4);
        *len = 44 + extra + n;
        return (char *)b;
}

static int b64v(char c)
{
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789+/";

        return (int)(strchr(tab, c) - tab);
}

START_TEST(test_hf_whisper_build_raw)
{
        struct provider_cfg p = tcfg(
                "hf_whisper", "https://router.huggingface.co/hf-inference",
                "openai/whisper-large-v3", NULL);
        struct provider_input in = {0};
        struct provider_req req;
        struct tjob t;
        size_t len;
        char *wav = make_wav(3, 0, &len);

        in.data = wav;
        in.len = len;
        in.content_type = "audio/wav";
        in.filename = "tone-3s.wav";
        tjob_stt(&t, "");
        ck_assert_int_eq(build_with(&provider_hf_whisper_ops, &p, "hf_abc",
                                    &t, &in, &req),
                         0);
        ck_assert_str_eq(req.url, "https://router.huggingface.co/"
                                  "hf-inference/models/openai/"
                                  "whisper-large-v3");
        ck_assert_str_eq(req.method, "POST");
        ck_assert_uint_eq(n_headers(&req), 2);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer hf_abc");
        ck_assert_str_eq(req.headers[1], "Content-Type: audio/wav");
        ck_assert_uint_eq(req.body_len, len);
        ck_assert_mem_eq(req.body, wav, len);
        ck_assert_uint_eq(req.n_parts, 0);
        provider_req_clear(&req);
        /* exactly 30 s still goes raw */
        free(wav);
        wav = make_wav(30, 1, &len);
        in.data = wav;
        in.len = len;
        ck_assert_int_eq(build_with(&provider_hf_whisper_ops, &p, "k", &t,
                                    &in, &req),
                         0);
        ck_assert_uint_eq(req.body_len, len);
        provider_req_clear(&req);
        free(wav);
}
END_TEST

START_TEST(test_hf_whisper_build_ctype)
{
        static const struct {
                const char *bytes;
                size_t n;
                const char *ctype, *want;
        } cases[] = {
                {"fLaC\0\0\0\x22", 8, NULL, "audio/flac"},
                {"OggS\0\x02", 6, "application/octet-stream", "audio/ogg"},
                {"ID3\x04\0\0", 6, "", "audio/mpeg"},
                {"\xff\xfb\x90\x64", 4, NULL, "audio/mpeg"},
                {"\0\0\0\x20" "ftypM4A ", 12, NULL, "audio/mp4"},
                {"RIFF\x24\0\0\0WAVE", 12, "binary/octet-stream",
                 "binary/octet-stream"},
                {"??????", 6, NULL, "application/octet-stream"},
                {"??????", 6, "audio/x-m4a", "audio/x-m4a"},
        };
        struct provider_cfg p = tcfg("hf_whisper", "https://h",
                                     "openai/whisper-large-v3", NULL);
        struct provider_input in = {0};
        struct provider_req req;
        struct tjob t;
        char want[128];

        tjob_stt(&t, "");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                in.data = cases[i].bytes;
                in.len = cases[i].n;
                in.content_type = cases[i].ctype;
                ck_assert_int_eq(build_with(&provider_hf_whisper_ops, &p, "k",
                                            &t, &in, &req),
                                 0);
                snprintf(want, sizeof(want), "Content-Type: %s",
                         cases[i].want);
                ck_assert_str_eq(req.headers[1], want);
                provider_req_clear(&req);
        }
}
END_TEST

START_TEST(test_hf_whisper_build_long_wav)
{
        struct provider_cfg p = tcfg("hf_whisper", "https://h",
                                     "openai/whisper-large-v3", NULL);
        struct provider_input in = {0};
        struct provider_req req;
        struct tjob t;
        const char *s;
        size_t len, i, n = 0;
        char *wav = make_wav(45, 1, &len);
        unsigned char *dec = malloc(len + 3);
        uint32_t acc = 0;
        int bits = 0;
        json_t *b;

        in.data = wav;
        in.len = len;
        in.content_type = "audio/wav";
        tjob_stt(&t, "distil-whisper/distil-large-v3"); /* hint used */
        ck_assert_int_eq(build_with(&provider_hf_whisper_ops, &p, "k", &t,
                                    &in, &req),
                         0);
        ck_assert_str_eq(req.url,
                         "https://h/models/distil-whisper/distil-large-v3");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        b = json_loads(req.body, 0, NULL);
        ck_assert(json_is_true(json_object_get(
                json_object_get(b, "parameters"), "return_timestamps")));
        s = jstr(b, "inputs");
        for (i = 0; s[i] && s[i] != '='; i++) {
                acc = acc << 6 | (uint32_t)b64v(s[i]);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        dec[n++] = (unsigned char)(acc >> bits);
                }
        }
        ck_assert_uint_eq(n, len);
        ck_assert_mem_eq(dec, wav, len);
        json_decref(b);
        free(dec);
        free(wav);
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_hf_whisper_build_refusals)
{
        struct provider_cfg p = tcfg("hf_whisper", "https://h",
                                     "openai/whisper-large-v3", NULL);
        struct provider_input in = {"x", 1, "audio/wav", "a.wav"};
        struct provider_input empty = {"", 0, "audio/wav", "a.wav"};
        struct provider_req req;
        struct tjob t;

        tjob_stt(&t, "");
        assert_refused(&provider_hf_whisper_ops, &p, &t, NULL);
        assert_refused(&provider_hf_whisper_ops, &p, &t, &empty);
        tjob_image(&t, "p", "");
        assert_refused(&provider_hf_whisper_ops, &p, &t, &in);
        /* "whisper-1" is OpenAI's name, not a repository: the default */
        tjob_stt(&t, "whisper-1");
        ck_assert_int_eq(build_with(&provider_hf_whisper_ops, &p, "k", &t,
                                    &in, &req),
                         0);
        ck_assert_str_eq(req.url, "https://h/models/openai/whisper-large-v3");
        provider_req_clear(&req);
        ck_assert_int_eq(provider_hf_whisper_ops.flags,
                         PROVIDER_F_NEEDS_INPUT);
}
END_TEST

START_TEST(test_hf_whisper_parse)
{
        struct provider_cfg p = tcfg("hf_whisper", "https://h", "a/b", NULL);
        struct provider_resp resp = jresp(
                200, "{\"text\": \" fake transcript of 3.0 seconds\"}");
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_hf_whisper_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_str_eq(res.text, " fake transcript of 3.0 seconds");
        ck_assert_double_eq(res.units, -1); /* parse() has no input */
        ck_assert_str_eq(res.unit, "second");
        provider_result_clear(&res);
        resp = jresp(200, "{\"text\":\"a b\",\"chunks\":["
                          "{\"timestamp\":[0.0,12.5],\"text\":\"a\"},"
                          "{\"timestamp\":[12.5,44.75],\"text\":\"b\"}]}");
        ck_assert_int_eq(run(&provider_hf_whisper_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_SUCCESS);
        ck_assert_double_eq(res.units, 44.75);
        provider_result_clear(&res);
        resp = jresp(200, "{\"generated_text\":\"x\"}");
        ck_assert_int_eq(run(&provider_hf_whisper_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_ptr_null(res.text);
}
END_TEST

START_TEST(test_hf_loading_hint)
{
        /* reference 9.4 / transformers#23793 body, verbatim */
        static const char body[] =
                "{\"error\":\"Model openai/whisper-large-v3 is currently "
                "loading\",\"estimated_time\":20.0}";
        struct provider_cfg p = tcfg("hf_whisper", "https://h", "a/b", NULL);
        struct provider_resp resp = jresp(503, body);
        struct provider_result res;
        struct provider_err err;

        ck_assert_int_eq(run(&provider_hf_whisper_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_int_eq(err.retry_after_ms, 20000);
        ck_assert_str_eq(err.errstr, "503: Model openai/whisper-large-v3 is "
                                     "currently loading");
        /* the body's estimate wins over a generic Retry-After */
        resp.retry_after_ms = 1000;
        ck_assert_int_eq(run(&provider_hf_image_ops, 0, &p, NULL, &resp,
                             &res, &err),
                         OUTCOME_RETRY_LATER);
        ck_assert_int_eq(err.retry_after_ms, 20000);
}
END_TEST

/*
 * Classification: one row per section-12 line of these providers.
 */

enum which { OAI, SF, STAB, REP, REP_POLL, HFI, HFW };

static const struct provider_ops *ops_of(enum which w)
{
        static const struct provider_ops *const tab[] = {
                [OAI] = &provider_openai_images_ops,
                [SF] = &provider_sf_images_ops,
                [STAB] = &provider_stability_ops,
                [REP] = &provider_replicate_ops,
                [REP_POLL] = &provider_replicate_ops,
                [HFI] = &provider_hf_image_ops,
                [HFW] = &provider_hf_whisper_ops,
        };
        return tab[w];
}

static const struct row {
        const char *name;
        enum which w;
        long status;
        const char *body;
        int64_t retry_after_ms; /* from headers */
        enum outcome want;
        int64_t want_hint;
        const char *want_err;
} rows[] = {
        /* OpenAI images (1.1 rows, 5.1) */
        {"oai 400 content_policy_violation", OAI, 400,
         "{\"error\":{\"message\":\"Your request was rejected as a result of "
         "our safety system.\",\"type\":\"invalid_request_error\","
         "\"param\":null,\"code\":\"content_policy_violation\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "content_policy_violation"},
        {"oai 400 moderation_blocked", OAI, 400,
         "{\"error\":{\"message\":\"Your request was rejected by the safety "
         "system.\",\"type\":\"image_generation_user_error\",\"param\":null,"
         "\"code\":\"moderation_blocked\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"oai 400 safety message only", OAI, 400,
         "{\"error\":{\"message\":\"rejected by our safety system\","
         "\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"oai 400 invalid size", OAI, 400,
         "{\"error\":{\"message\":\"Invalid value: '5x5'.\",\"type\":"
         "\"invalid_request_error\",\"param\":\"size\",\"code\":"
         "\"invalid_value\"}}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "400 invalid_request_error/"
                                         "invalid_value: Invalid value"},
        {"oai 400 billing hard limit", OAI, 400,
         "{\"error\":{\"message\":\"Billing hard limit has been reached\","
         "\"type\":\"invalid_request_error\",\"param\":null,\"code\":"
         "\"billing_hard_limit_reached\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"oai 401 invalid_api_key", OAI, 401,
         "{\"error\":{\"message\":\"Incorrect API key provided: "
         "sk-proj-abcdefghijklmnopqrstuvwxyz. You can find your API key at "
         "https://platform.openai.com/account/api-keys.\",\"type\":"
         "\"invalid_request_error\",\"param\":null,\"code\":"
         "\"invalid_api_key\"}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, "provided: sk-\xe2\x80\xa6."},
        {"oai 401 IP not authorized", OAI, 401,
         "{\"error\":{\"message\":\"IP not authorized\",\"type\":null,"
         "\"param\":null,\"code\":null}}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"oai 403 region", OAI, 403,
         "{\"error\":{\"message\":\"Country, region, or territory not "
         "supported\",\"type\":\"request_forbidden\",\"param\":null,"
         "\"code\":\"unsupported_country_region_territory\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"oai 404 model_not_found", OAI, 404,
         "{\"error\":{\"message\":\"The model `dall-e-9` does not exist or "
         "you do not have access to it.\",\"type\":\"invalid_request_error\","
         "\"param\":null,\"code\":\"model_not_found\"}}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"oai 429 insufficient_quota", OAI, 429,
         "{\"error\":{\"message\":\"You exceeded your current quota, please "
         "check your plan and billing details. For more information on this "
         "error, read the docs: https://platform.openai.com/docs/guides/"
         "error-codes/api-errors.\",\"type\":\"insufficient_quota\","
         "\"param\":null,\"code\":\"insufficient_quota\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"oai 429 spend limit code", OAI, 429,
         "{\"error\":{\"message\":\"x\",\"type\":\"requests\",\"param\":"
         "null,\"code\":\"organization_spend_limit_exceeded\"}}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"oai 429 rate limit, text hint", OAI, 429,
         "{\"error\":{\"message\":\"Rate limit reached for images per min "
         "(IPM): Limit 5, Used 5, Requested 1. Please try again in 12s. "
         "Visit https://platform.openai.com/account/rate-limits to learn "
         "more.\",\"type\":\"requests\",\"param\":null,\"code\":"
         "\"rate_limit_exceeded\"}}",
         -1, OUTCOME_RETRY_LATER, 12000, NULL},
        {"oai 429 rate limit, header wins", OAI, 429,
         "{\"error\":{\"message\":\"Please try again in 12s.\",\"type\":"
         "\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}",
         1000, OUTCOME_RETRY_LATER, 1000, NULL},
        {"oai 500 server_error", OAI, 500,
         "{\"error\":{\"message\":\"The server had an error while processing "
         "your request. Sorry about that!\",\"type\":\"server_error\","
         "\"param\":null,\"code\":\"server_error\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"oai 503 overloaded", OAI, 503,
         "{\"error\":{\"message\":\"The engine is currently overloaded, "
         "please try again later.\",\"type\":\"service_unavailable_error\","
         "\"param\":null,\"code\":\"server_is_overloaded\"}}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* SiliconFlow images (1.2 SiliconFlow, 5.2) */
        {"sf 400 20012 model", SF, 400,
         "{\"code\":20012,\"message\":\"Model does not exist. Please check "
         "it carefully.\",\"data\":null}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT,
         "400 20012: Model does not exist"},
        {"sf 400 other", SF, 400,
         "{\"code\":20015,\"message\":\"Invalid image_size\",\"data\":null}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"sf 401", SF, 401,
         "{\"code\":401,\"message\":\"Invalid token\",\"data\":null}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"sf 401 plain text", SF, 401, "Invalid token", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"sf 403 30011", SF, 403,
         "{\"code\":30011,\"message\":\"The selected model requires paid "
         "balance. Your paid balance is insufficient. Please top up and try "
         "again.\",\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"sf 403 30001", SF, 403,
         "{\"code\":30001,\"message\":\"x\",\"data\":null}", -1,
         OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"sf 403 balance message", SF, 403,
         "{\"code\":30099,\"message\":\"account balance is insufficient\","
         "\"data\":null}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"sf 403 real-name", SF, 403,
         "{\"code\":30003,\"message\":\"This model requires real-name "
         "verification.\",\"data\":null}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"sf 429 IPM", SF, 429,
         "{\"code\":50603,\"message\":\"Rate limit reached for IPM, please "
         "try again in 1m30s\",\"data\":null}",
         -1, OUTCOME_RETRY_LATER, 90000, NULL},
        {"sf 503", SF, 503,
         "{\"code\":50505,\"message\":\"Model service overloaded.\","
         "\"data\":null}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"sf 504", SF, 504,
         "{\"code\":50506,\"message\":\"Gateway timeout\",\"data\":null}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* Stability (5.3) */
        {"stab 400", STAB, 400,
         "{\"id\":\"x\",\"name\":\"bad_request\",\"errors\":[\"prompt: "
         "cannot be empty\"]}",
         -1, OUTCOME_FATAL_JOB, NO_HINT,
         "400 bad_request: prompt: cannot be empty"},
        {"stab 401", STAB, 401,
         "{\"id\":\"x\",\"name\":\"unauthorized\",\"errors\":[\"invalid "
         "key sk-abcdefghijklmnop\"]}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, "invalid key sk-\xe2\x80\xa6"},
        {"stab 402", STAB, 402,
         "{\"id\":\"x\",\"name\":\"payment_required\",\"errors\":[\"You "
         "lack sufficient credits\"]}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"stab 403 content_moderation (verbatim)", STAB, 403,
         "{\"id\": \"a1b2c3d4e5f6\", \"name\": \"content_moderation\", "
         "\"errors\": [\"Your request was flagged by our content moderation "
         "system\"]}",
         -1, OUTCOME_FATAL_JOB, NO_HINT,
         "403 content_moderation: Your request was flagged"},
        {"stab 404 mode", STAB, 404,
         "{\"id\":\"x\",\"name\":\"not_found\",\"errors\":[\"nope\"]}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"stab 413", STAB, 413,
         "{\"id\":\"x\",\"name\":\"payload_too_large\",\"errors\":[\"too "
         "big\"]}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"stab 422", STAB, 422,
         "{\"id\":\"x\",\"name\":\"invalid_language\",\"errors\":[\"English "
         "only\"]}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"stab 429", STAB, 429,
         "{\"id\":\"x\",\"name\":\"rate_limit_exceeded\",\"errors\":[\"150 "
         "requests within a 10 second period\"]}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"stab 500", STAB, 500,
         "{\"id\":\"x\",\"name\":\"internal_error\",\"errors\":[\"x\"]}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},

        /* Replicate submit (5.4) */
        {"rep 401", REP, 401,
         "{\"title\":\"Unauthenticated\",\"detail\":\"You did not pass a "
         "valid authentication token\",\"status\":401}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT,
         "401: You did not pass a valid authentication token"},
        {"rep 402", REP, 402,
         "{\"title\":\"Insufficient credit\",\"detail\":\"You have "
         "insufficient credit to run this model.\",\"status\":402}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"rep 404", REP, 404,
         "{\"title\":\"Not found\",\"detail\":\"The requested model does not "
         "exist\",\"status\":404}",
         -1, OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"rep 422", REP, 422,
         "{\"title\":\"Input validation failed\",\"detail\":\"- input: "
         "prompt is required\",\"status\":422,\"invalid_fields\":[]}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"rep 429 throttled (verbatim)", REP, 429,
         "{\"detail\":\"Request was throttled. Your rate limit for creating "
         "predictions is reduced to 6 requests per minute with a burst of 1 "
         "requests while you have less than $5.0 in credit. Your rate limit "
         "resets in ~5s.\",\"status\":429,\"retry_after\":5}",
         -1, OUTCOME_RETRY_LATER, 5000, "429: Request was throttled"},
        {"rep 429 header first", REP, 429,
         "{\"detail\":\"Request was throttled.\",\"status\":429,"
         "\"retry_after\":5}",
         2000, OUTCOME_RETRY_LATER, 2000, NULL},
        {"rep 500", REP, 500,
         "{\"title\":\"Internal Server Error\",\"detail\":\"x\","
         "\"status\":500}",
         -1, OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"rep 401 token redacted", REP, 401,
         "{\"detail\":\"bad token r8_ABCDEFGHIJKLMNOPQRST\",\"status\":401}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, "bad token r8_\xe2\x80\xa6"},
        {"rep poll 401", REP_POLL, 401,
         "{\"detail\":\"Invalid token.\",\"status\":401}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"rep poll 429", REP_POLL, 429,
         "{\"detail\":\"Request was throttled.\",\"status\":429,"
         "\"retry_after\":3}",
         -1, OUTCOME_RETRY_LATER, 3000, NULL},

        /* Hugging Face (9.4) */
        {"hf 503 loading", HFW, 503,
         "{\"error\":\"Model openai/whisper-large-v3 is currently loading\","
         "\"estimated_time\":20.0}",
         -1, OUTCOME_RETRY_LATER, 20000, NULL},
        {"hf 503 other", HFI, 503, "{\"error\":\"Service Unavailable\"}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"hf 400 mel features", HFW, 400,
         "{\"error\":\"You have passed more than 3000 mel input features "
         "(> 30 seconds) which automatically enables long-form generation "
         "which requires the model to predict timestamp tokens.\"}",
         -1, OUTCOME_FATAL_JOB, NO_HINT, "400: You have passed more than"},
        {"hf 400 validation list", HFI, 400,
         "{\"error\":[\"Error in `inputs`: field required\"]}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, "400: Error in `inputs`: field"},
        {"hf 401", HFW, 401,
         "{\"error\":\"Invalid credentials in Authorization header\"}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"hf 401 token redacted", HFI, 401,
         "{\"error\":\"Invalid token hf_abcdefghijklmnopqrstuv\"}", -1,
         OUTCOME_KEY_DISABLED, NO_HINT, "Invalid token hf_\xe2\x80\xa6"},
        {"hf 402", HFI, 402,
         "{\"error\":\"You have exceeded your monthly included credits for "
         "Inference Providers.\"}",
         -1, OUTCOME_QUOTA_EXHAUSTED, NO_HINT, NULL},
        {"hf 403 permission", HFI, 403,
         "{\"error\":\"This authentication method does not have sufficient "
         "permissions\"}",
         -1, OUTCOME_KEY_DISABLED, NO_HINT, NULL},
        {"hf 404 model", HFW, 404,
         "{\"error\":\"Model x/y does not exist\"}", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"hf 429", HFW, 429, "{\"error\":\"Rate limit reached.\"}", 7000,
         OUTCOME_RETRY_LATER, 7000, NULL},

        /* Any provider (12, last rows; "Statuses not listed") */
        {"any 502 HTML (oai)", OAI, 502,
         "<html><body><h1>502 Bad Gateway</h1></body></html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "HTTP 502 with a non-JSON body"},
        {"any 503 HTML (stab)", STAB, 503, "<html>Service Unavailable</html>",
         3000, OUTCOME_RETRY_LATER, 3000, "non-JSON"},
        {"any 504 HTML (rep)", REP, 504, "<html>Gateway Timeout</html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, "non-JSON"},
        {"any 504 HTML (hf)", HFW, 504, "<html>Gateway Timeout</html>", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"any 403 WAF (sf)", SF, 403, "<html>Access denied</html>", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"any 403 WAF (stab)", STAB, 403, "<html>Access denied</html>", -1,
         OUTCOME_FALLBACK_NEXT, NO_HINT, NULL},
        {"any 418 unlisted (rep)", REP, 418,
         "{\"detail\":\"teapot\",\"status\":418}", -1, OUTCOME_FATAL_JOB,
         NO_HINT, "418: teapot"},
        {"any 409 unlisted (hf)", HFI, 409, "{\"error\":\"conflict\"}", -1,
         OUTCOME_FATAL_JOB, NO_HINT, NULL},
        {"any 507 JSON (stab)", STAB, 507,
         "{\"id\":\"x\",\"name\":\"x\",\"errors\":[]}", -1,
         OUTCOME_RETRY_LATER, NO_HINT, NULL},
        {"any 301 (sf)", SF, 301, "", -1, OUTCOME_FALLBACK_NEXT, NO_HINT,
         NULL},
};
#define N_ROWS ((int)(sizeof(rows) / sizeof(rows[0])))

START_TEST(test_classify_row)
{
        const struct row *r = &rows[_i];
        struct provider_cfg p = tcfg("x", "https://x", "a/b", NULL);
        struct provider_resp resp = tresp(
                r->status,
                r->body[0] == '{' ? "application/json" : "text/html",
                r->body, strlen(r->body));
        struct provider_result res;
        struct provider_err err;
        enum outcome got;

        resp.retry_after_ms = r->retry_after_ms;
        got = run(ops_of(r->w), r->w == REP_POLL, &p, NULL, &resp, &res,
                  &err);
        ck_assert_msg(got == r->want, "%s: got %s, want %s (%s)", r->name,
                      outcome_name(got), outcome_name(r->want), err.errstr);
        ck_assert_int_eq(err.outcome, got);
        ck_assert_int_eq(err.http_status, r->status);
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
        ck_assert_ptr_null(res.data);
        ck_assert_uint_eq(res.n_urls, 0);
        ck_assert_ptr_null(res.task_id);
}
END_TEST

/* Transport failures: retry_later for every adapter, submit and poll. */
START_TEST(test_transport_all)
{
        static const enum which all[] = {OAI, SF,       STAB, REP,
                                         REP_POLL, HFI, HFW};
        struct provider_cfg p = tcfg("x", "https://x", "a/b", NULL);
        struct provider_resp resp = tresp(0, NULL, NULL, 0);
        struct provider_result res;
        struct provider_err err;

        resp.transport_err = 7;
        resp.transport_msg = "Failed to connect";
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                ck_assert_int_eq(run(ops_of(all[i]), all[i] == REP_POLL, &p,
                                     NULL, &resp, &res, &err),
                                 OUTCOME_RETRY_LATER);
                ck_assert_str_eq(err.errstr,
                                 "transport error 7: Failed to connect");
                ck_assert_int_eq(err.http_status, 0);
        }
}
END_TEST

START_TEST(test_registry)
{
        static const struct {
                const char *name;
                const struct provider_ops *ops;
                Genq__V1__Kind kind;
                unsigned flags;
        } cases[] = {
                {"openai_images", &provider_openai_images_ops,
                 GENQ__V1__KIND__KIND_IMAGE, 0},
                {"siliconflow_images", &provider_sf_images_ops,
                 GENQ__V1__KIND__KIND_IMAGE, 0},
                {"stability_image", &provider_stability_ops,
                 GENQ__V1__KIND__KIND_IMAGE, 0},
                {"replicate", &provider_replicate_ops,
                 GENQ__V1__KIND__KIND_IMAGE, PROVIDER_F_ASYNC},
                {"hf_image", &provider_hf_image_ops,
                 GENQ__V1__KIND__KIND_IMAGE, 0},
                {"hf_whisper", &provider_hf_whisper_ops,
                 GENQ__V1__KIND__KIND_STT, PROVIDER_F_NEEDS_INPUT},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const struct provider_ops *o = cases[i].ops;

                ck_assert_ptr_eq(provider_ops_find(cases[i].name), o);
                ck_assert_str_eq(o->name, cases[i].name);
                ck_assert_int_eq(o->kind, cases[i].kind);
                ck_assert_uint_eq(o->flags, cases[i].flags);
                ck_assert_ptr_nonnull(o->build);
                ck_assert_ptr_nonnull(o->parse);
                ck_assert_int_eq(o->build_poll != NULL,
                                 !!(cases[i].flags & PROVIDER_F_ASYNC));
                ck_assert_int_eq(o->parse_poll != NULL,
                                 !!(cases[i].flags & PROVIDER_F_ASYNC));
        }
}
END_TEST

/*
 * Runner
 */

static Suite *image_suite(void)
{
        Suite *s = suite_create("provider_image");
        TCase *to = tcase_create("openai_images");
        TCase *tsf = tcase_create("siliconflow_images");
        TCase *tst = tcase_create("stability");
        TCase *tr = tcase_create("replicate");
        TCase *th = tcase_create("hf");
        TCase *tc = tcase_create("classify");

        tcase_add_test(to, test_oai_build_fields);
        tcase_add_test(to, test_oai_build_defaults);
        tcase_add_test(to, test_oai_build_model_hint_and_ratio);
        tcase_add_test(to, test_oai_build_extra_body);
        tcase_add_test(to, test_oai_build_refusals);
        tcase_add_test(to, test_oai_parse_reference);
        tcase_add_test(to, test_oai_parse_elided_sample_is_malformed);
        tcase_add_test(to, test_oai_parse_formats_and_many);
        tcase_add_test(to, test_oai_parse_urls);
        tcase_add_test(to, test_oai_parse_bad_200s);
        tcase_add_test(tsf, test_sf_build_fields);
        tcase_add_test(tsf, test_sf_build_ratio_edit_extra);
        tcase_add_test(tsf, test_sf_build_refusals);
        tcase_add_test(tsf, test_sf_parse_reference);
        tcase_add_test(tst, test_stab_build_core);
        tcase_add_test(tst, test_stab_build_models);
        tcase_add_test(tst, test_stab_build_ratio_from_size_and_extra);
        tcase_add_test(tst, test_stab_build_refusals);
        tcase_add_test(tst, test_stab_parse_binary);
        tcase_add_test(tst, test_stab_parse_filtered_header);
        tcase_add_test(tst, test_stab_parse_json);
        tcase_add_test(tr, test_rep_build_official_model);
        tcase_add_test(tr, test_rep_build_versions_and_hints);
        tcase_add_test(tr, test_rep_build_refusals);
        tcase_add_test(tr, test_rep_build_poll);
        tcase_add_test(tr, test_rep_parse_submit);
        tcase_add_test(tr, test_rep_poll_running);
        tcase_add_test(tr, test_rep_poll_succeeded);
        tcase_add_test(tr, test_rep_poll_failed);
        tcase_add_test(tr, test_rep_poll_http_failures);
        tcase_add_test(th, test_hf_image_build);
        tcase_add_test(th, test_hf_image_build_params);
        tcase_add_test(th, test_hf_image_refusals);
        tcase_add_test(th, test_hf_image_parse);
        tcase_add_test(th, test_hf_whisper_build_raw);
        tcase_add_test(th, test_hf_whisper_build_ctype);
        tcase_add_test(th, test_hf_whisper_build_long_wav);
        tcase_add_test(th, test_hf_whisper_build_refusals);
        tcase_add_test(th, test_hf_whisper_parse);
        tcase_add_test(th, test_hf_loading_hint);
        /* one iteration per row of rows[] */
        tcase_add_loop_test(tc, test_classify_row, 0, N_ROWS);
        tcase_add_test(tc, test_transport_all);
        tcase_add_test(tc, test_registry);
        suite_add_tcase(s, to);
        suite_add_tcase(s, tsf);
        suite_add_tcase(s, tst);
        suite_add_tcase(s, tr);
        suite_add_tcase(s, th);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(image_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
