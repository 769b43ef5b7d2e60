/*
 * Unit tests for worker/adapt.c, the helpers the provider adapters share:
 * URL and header building, configured JSON merged as defaults, rule
 * tables, the OpenAI-style error envelope, errstr texts (keys redacted,
 * cut at a UTF-8 boundary) and the small codecs.  The adapters' own tests
 * (test_provider_*.c) check the same code through every adapter; these
 * pin the helpers' contracts one by one.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "adapt.h"

/*
 * Fixtures.
 */

static struct provider_cfg tcfg(const char *base)
{
        struct provider_cfg p = {
                .name = "prov",
                .adapter = "test",
                .base_url = base,
                .model = "default-model",
                .max_body_bytes = 1 << 20,
        };
        return p;
}

static struct provider_resp tresp(long status, const char *ctype,
                                  const char *body)
{
        struct provider_resp r = {
                .status = status,
                .content_type = ctype,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .retry_after_ms = -1,
        };
        return r;
}

/** A key-shaped token starts a word and ends long: "sk-…". */
static const char *const sk_prefixes[] = {"sk-", "nvapi-", NULL};
static const struct adapt_redact sk_keys = {
        .prefixes = sk_prefixes,
        .chars = "-_*",
        .token_start = 1,
        .high_bytes = 1,
        .min_len = 6,
};

/** A prefix anywhere, three characters after it are enough. */
static const char *const google_prefixes[] = {"key=", "AIza", NULL};
static const struct adapt_redact google_keys = {
        .prefixes = google_prefixes,
        .chars = "-_%",
        .min_len = 3,
};

#define ELL "\xe2\x80\xa6" /* U+2026 */

/*
 * Building requests.
 */

START_TEST(test_url)
{
        struct provider_cfg p = tcfg("https://api.x.com/v1///");
        struct provider_req req;
        char errstr[128];

        memset(&req, 0, sizeof(req));
        ck_assert_int_eq(adapt_url(&req, &p, "base_url", errstr,
                                   sizeof(errstr), "/models/", "a/b",
                                   "/predictions", NULL),
                         0);
        ck_assert_str_eq(req.url,
                         "https://api.x.com/v1/models/a/b/predictions");
        ck_assert_int_eq(adapt_url(&req, &p, "URL", errstr, sizeof(errstr),
                                   NULL),
                         0);
        ck_assert_str_eq(req.url, "https://api.x.com/v1");
}
END_TEST

START_TEST(test_url_errors)
{
        struct provider_cfg p = tcfg(NULL);
        struct provider_req req;
        char errstr[128], path[2100];

        memset(&req, 0, sizeof(req));
        ck_assert_int_eq(adapt_url(&req, &p, "URL", errstr, sizeof(errstr),
                                   "/x", NULL),
                         -1);
        ck_assert_str_eq(errstr, "provider prov has no base_url");
        p.base_url = "";
        ck_assert_int_eq(adapt_url(&req, &p, "URL", errstr, sizeof(errstr),
                                   "/x", NULL),
                         -1);
        ck_assert_str_eq(errstr, "provider prov has no base_url");
        /* exactly full: 2047 characters fit, 2048 do not */
        p.base_url = "http://h";
        memset(path, 'a', sizeof(path));
        path[sizeof(req.url) - 1 - strlen(p.base_url)] = '\0';
        ck_assert_int_eq(adapt_url(&req, &p, "URL", errstr, sizeof(errstr),
                                   path, NULL),
                         0);
        ck_assert_uint_eq(strlen(req.url), sizeof(req.url) - 1);
        ck_assert_int_eq(adapt_url(&req, &p, "base_url", errstr,
                                   sizeof(errstr), path, "b", NULL),
                         -1);
        ck_assert_str_eq(errstr, "provider prov: base_url too long");
        ck_assert_uint_eq(strlen(req.url), sizeof(req.url) - 1);
        ck_assert_int_eq(adapt_url(&req, &p, "URL", errstr, sizeof(errstr),
                                   path, "b", NULL),
                         -1);
        ck_assert_str_eq(errstr, "provider prov: URL too long");
}
END_TEST

START_TEST(test_pct_encode)
{
        char buf[32];
        size_t pos = 0;

        ck_assert_int_eq(adapt_pct_encode(buf, sizeof(buf), &pos,
                                          "a/b c~-._+", 0),
                         0);
        ck_assert_str_eq(buf, "a%2Fb%20c~-._%2B");
        ck_assert_uint_eq(pos, strlen(buf));
        ck_assert_int_eq(adapt_pct_encode(buf, sizeof(buf), &pos, "/x", 1),
                         0);
        ck_assert_str_eq(buf, "a%2Fb%20c~-._%2B/x");
        /* room for an escape and the NUL is needed before each byte */
        pos = 0;
        ck_assert_int_eq(adapt_pct_encode(buf, 4, &pos, "ab", 0), -1);
        pos = 0;
        ck_assert_int_eq(adapt_pct_encode(buf, 4, &pos, "a", 0), 0);
        ck_assert_str_eq(buf, "a");
}
END_TEST

START_TEST(test_headers)
{
        struct provider_req req;
        char errstr[128];

        memset(&req, 0, sizeof(req));
        ck_assert_int_eq(adapt_json_headers(&req, "Authorization: Bearer ",
                                            "sk-1", 1, errstr,
                                            sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.headers[0], "Authorization: Bearer sk-1");
        ck_assert_str_eq(req.headers[1], "Content-Type: application/json");
        ck_assert_str_eq(req.headers[2], "Accept: application/json");
        ck_assert_ptr_null(req.headers[3]);
        provider_req_clear(&req);

        /* no key, no body: no Authorization, no Content-Type */
        ck_assert_int_eq(adapt_json_headers(&req, "x-api-key: ", "", 0,
                                            errstr, sizeof(errstr)),
                         0);
        ck_assert_str_eq(req.headers[0], "Accept: application/json");
        ck_assert_ptr_null(req.headers[1]);
        provider_req_clear(&req);

        ck_assert_int_eq(adapt_auth(&req, "x-api-key: ", NULL, errstr,
                                    sizeof(errstr)),
                         0);
        ck_assert_ptr_null(req.headers);
        ck_assert_int_eq(adapt_auth(&req, "x-api-key: ", "a\r\nX: y", errstr,
                                    sizeof(errstr)),
                         -1);
        ck_assert_str_eq(errstr, "API key contains a newline");
        ck_assert_ptr_null(req.headers);
}
END_TEST

START_TEST(test_req_json_and_fields)
{
        struct provider_req req;
        json_t *body = json_pack("{s:s, s:f}", "a", "b", "t", 0.7);

        memset(&req, 0, sizeof(req));
        adapt_req_json(&req, body, JSON_COMPACT | JSON_REAL_PRECISION(7));
        ck_assert_str_eq(req.body, "{\"a\":\"b\",\"t\":0.7}");
        ck_assert_uint_eq(req.body_len, strlen(req.body));
        json_decref(body);

        provider_req_field(&req, "model", "whisper-1");
        ck_assert_uint_eq(req.n_parts, 1);
        ck_assert_str_eq(req.parts[0].data, "whisper-1");
        ck_assert_ptr_null(req.parts[0].filename);
        ck_assert(provider_req_has_part(&req, "model"));
        ck_assert(!provider_req_has_part(&req, "language"));
        provider_req_clear(&req);
}
END_TEST

START_TEST(test_model_and_jobs)
{
        struct provider_cfg p = tcfg("https://x");
        Genq__V1__ChatRequest chat = GENQ__V1__CHAT_REQUEST__INIT;
        Genq__V1__ImageRequest im = GENQ__V1__IMAGE_REQUEST__INIT;
        Genq__V1__Job job = GENQ__V1__JOB__INIT;
        char errstr[128];

        ck_assert_str_eq(adapt_model(&p, "hint", errstr, sizeof(errstr)),
                         "hint");
        ck_assert_str_eq(adapt_model(&p, "", errstr, sizeof(errstr)),
                         "default-model");
        ck_assert_str_eq(adapt_model(&p, NULL, errstr, sizeof(errstr)),
                         "default-model");
        p.model = "";
        ck_assert_ptr_null(adapt_model(&p, "", errstr, sizeof(errstr)));
        ck_assert_str_eq(errstr, "no model: the job names none and provider "
                                 "prov has no default");

        ck_assert_ptr_null(adapt_chat_job(&job, errstr, sizeof(errstr)));
        ck_assert_str_eq(errstr, "not a chat job");
        job.payload_case = GENQ__V1__JOB__PAYLOAD_CHAT;
        job.chat = &chat;
        ck_assert_ptr_eq(adapt_chat_job(&job, errstr, sizeof(errstr)), &chat);
        ck_assert_ptr_null(adapt_image_job(&job, errstr, sizeof(errstr)));
        ck_assert_str_eq(errstr, "not an image job");
        job.payload_case = GENQ__V1__JOB__PAYLOAD_IMAGE;
        job.image = &im;
        ck_assert_ptr_null(adapt_image_job(&job, errstr, sizeof(errstr)));
        ck_assert_str_eq(errstr, "image job has no prompt");
        im.prompt = "a cat";
        ck_assert_ptr_eq(adapt_image_job(&job, errstr, sizeof(errstr)), &im);
}
END_TEST

START_TEST(test_path_names)
{
        ck_assert_uint_eq(adapt_segment_len("black-forest-labs/flux"), 17);
        ck_assert_uint_eq(adapt_segment_len("a.b_c-d"), 7);
        ck_assert_uint_eq(adapt_segment_len(".."), 0);
        ck_assert_uint_eq(adapt_segment_len("-x"), 0);
        ck_assert_uint_eq(adapt_segment_len(""), 0);

        ck_assert(adapt_id_ok("abc-123_x", 200, "-_"));
        ck_assert(!adapt_id_ok("a.b", 200, "-_"));
        ck_assert(adapt_id_ok("a.b", 200, "-_."));
        ck_assert(!adapt_id_ok("a/b", 200, "-_."));
        ck_assert(!adapt_id_ok("", 200, "-_"));
        ck_assert(!adapt_id_ok(NULL, 200, "-_"));
        ck_assert(adapt_id_ok("abc", 3, ""));
        ck_assert(!adapt_id_ok("abcd", 3, ""));
}
END_TEST

/*
 * JSON.
 */

START_TEST(test_json_helpers)
{
        json_t *o = json_object(), *usage;
        char *s;

        ck_assert_int_eq(adapt_jset_str(o, "a", "ok"), 0);
        ck_assert_int_eq(adapt_jset_str(o, "b", "bad\xff"), -1);
        ck_assert_ptr_null(json_object_get(o, "b"));
        adapt_jset(o, "n", json_integer(3));
        ck_assert_str_eq(adapt_jstr(o, "a"), "ok");
        ck_assert_ptr_null(adapt_jstr(o, "n"));
        ck_assert_ptr_null(adapt_jstr(NULL, "a"));
        s = adapt_jdump(o, JSON_COMPACT);
        ck_assert_str_eq(s, "{\"a\":\"ok\",\"n\":3}");
        free(s);
        json_decref(o);

        usage = json_loads("{\"i\":12,\"r\":7.9,\"s\":\"4\"}", 0, NULL);
        ck_assert_int_eq(adapt_jint(usage, "i"), 12);
        ck_assert_int_eq(adapt_jint(usage, "r"), 7);
        ck_assert_int_eq(adapt_jint(usage, "s"), -1);
        ck_assert_int_eq(adapt_jint(usage, "missing"), -1);
        ck_assert_int_eq(adapt_jint(NULL, "i"), -1);
        json_decref(usage);
}
END_TEST

/** Merge \p text into a fixed body; @returns the body as compact JSON. */
static char *merged(const char *text, enum adapt_merge how, int *rc,
                    char *errstr, size_t errstr_size)
{
        struct provider_cfg p = tcfg("https://x");
        json_t *body = json_loads("{\"model\":\"m\",\"gc\":{\"t\":1}}", 0,
                                  NULL);
        char *s;

        *rc = adapt_merge_obj(&p, "extra_body", text, body, how, errstr,
                              errstr_size);
        s = adapt_jdump(body, JSON_COMPACT);
        json_decref(body);
        return s;
}

START_TEST(test_merge_obj)
{
        const char *extra = "{\"model\":\"x\",\"gc\":{\"t\":9,\"k\":2},"
                            "\"seed\":4}";
        char errstr[256], *s;
        int rc;

        s = merged(extra, ADAPT_MERGE_TOP, &rc, errstr, sizeof(errstr));
        ck_assert_int_eq(rc, 0);
        ck_assert_str_eq(s, "{\"model\":\"m\",\"gc\":{\"t\":1},\"seed\":4}");
        free(s);
        s = merged(extra, ADAPT_MERGE_DEEP, &rc, errstr, sizeof(errstr));
        ck_assert_int_eq(rc, 0);
        ck_assert_str_eq(s, "{\"model\":\"m\",\"gc\":{\"t\":1,\"k\":2},"
                            "\"seed\":4}");
        free(s);
        s = merged(NULL, ADAPT_MERGE_TOP, &rc, errstr, sizeof(errstr));
        ck_assert_int_eq(rc, 0);
        free(s);
        s = merged("", ADAPT_MERGE_TOP, &rc, errstr, sizeof(errstr));
        ck_assert_int_eq(rc, 0);
        free(s);
        s = merged("[1]", ADAPT_MERGE_TOP, &rc, errstr, sizeof(errstr));
        ck_assert_int_eq(rc, -1);
        ck_assert_str_eq(errstr, "provider prov: extra_body is not a JSON "
                                 "object: wrong type");
        free(s);
        s = merged("{bad", ADAPT_MERGE_DEEP, &rc, errstr, sizeof(errstr));
        ck_assert_int_eq(rc, -1);
        ck_assert_ptr_nonnull(strstr(errstr, "extra_body is not a JSON "
                                             "object: "));
        ck_assert_ptr_null(strstr(errstr, "wrong type"));
        free(s);
}
END_TEST

static const char *text_member(const json_t *item)
{
        return adapt_jstr(item, "text");
}

START_TEST(test_join_text)
{
        json_t *arr = json_loads("[{\"text\":\"a\"},{\"x\":1},{\"text\":2},"
                                 "{\"text\":\"bc\"}]",
                                 0, NULL);
        char *s;

        s = adapt_join_text(arr, text_member);
        ck_assert_str_eq(s, "abc");
        free(s);
        s = adapt_join_text(json_object_get(arr, "no"), text_member);
        ck_assert_str_eq(s, "");
        free(s);
        json_decref(arr);
}
END_TEST

/*
 * Reading responses.
 */

START_TEST(test_body_json)
{
        struct provider_resp r = tresp(200, NULL, "{\"a\":1}");
        json_t *root;

        root = adapt_ok_json(&r);
        ck_assert(json_is_object(root));
        json_decref(root);
        r.truncated = 1;
        ck_assert_ptr_null(adapt_ok_json(&r));
        r = tresp(200, NULL, "[1]");
        ck_assert_ptr_null(adapt_ok_json(&r));
        root = adapt_body_json(&r);
        ck_assert(json_is_array(root));
        json_decref(root);
        r = tresp(502, NULL, NULL);
        ck_assert_ptr_null(adapt_ok_json(&r));
        ck_assert_ptr_null(adapt_body_json(&r));
}
END_TEST

static int ok_calls, error_calls;

static enum outcome t_error(const struct provider_resp *resp,
                            struct provider_err *err)
{
        error_calls++;
        err->outcome = OUTCOME_FATAL_JOB;
        return err->outcome;
}

static enum outcome t_ok(const Genq__V1__Job *job,
                         const struct provider_resp *resp,
                         struct provider_result *res, struct provider_err *err,
                         adapt_error_fn *error)
{
        ok_calls++;
        ck_assert_ptr_eq(error, t_error);
        return OUTCOME_SUCCESS;
}

START_TEST(test_parse_dispatch)
{
        struct provider_resp r = tresp(200, NULL, "{}");
        struct provider_result res;
        struct provider_err err;

        ok_calls = error_calls = 0;
        memset(&res, 0, sizeof(res));
        memset(&err, 0x5a, sizeof(err));
        r.retry_after_ms = 1500;
        ck_assert_int_eq(adapt_parse(NULL, &r, &res, &err, t_ok, t_error),
                         OUTCOME_SUCCESS);
        ck_assert_int_eq(ok_calls, 1);
        ck_assert_int_eq(err.http_status, 200);
        ck_assert_int_eq(err.retry_after_ms, 1500);
        ck_assert_str_eq(err.errstr, "");
        r.status = 404;
        ck_assert_int_eq(adapt_parse(NULL, &r, &res, &err, t_ok, t_error),
                         OUTCOME_FATAL_JOB);
        ck_assert_int_eq(error_calls, 1);
        r.transport_err = 28;
        r.timed_out = 1;
        r.status = 0;
        ck_assert_int_eq(adapt_parse(NULL, &r, &res, &err, t_ok, t_error),
                         OUTCOME_RETRY_LATER);
        ck_assert_int_eq(ok_calls + error_calls, 2);
        ck_assert_str_eq(err.errstr, "timeout: no response");
}
END_TEST

START_TEST(test_speech_ok)
{
        Genq__V1__TtsRequest tts = GENQ__V1__TTS_REQUEST__INIT;
        Genq__V1__Job job = GENQ__V1__JOB__INIT;
        struct provider_resp r = tresp(200, "Audio/MPEG; x=1", "ID3abc");
        struct provider_result res;
        struct provider_err err;

        tts.text = "H\xc3\xa9llo"; /* 5 characters, 6 bytes */
        job.payload_case = GENQ__V1__JOB__PAYLOAD_TTS;
        job.tts = &tts;
        memset(&res, 0, sizeof(res));
        provider_result_clear(&res);
        adapt_err_init(&r, &err);
        ck_assert_int_eq(adapt_speech_ok(&job, &r, &res, &err, t_error),
                         OUTCOME_SUCCESS);
        ck_assert_uint_eq(res.data_len, 6);
        ck_assert_str_eq(res.content_type, "audio/mpeg");
        ck_assert_double_eq(res.units, 5);
        ck_assert_str_eq(res.unit, "character");
        provider_result_clear(&res);

        error_calls = 0;
        r.content_type = "application/json";
        adapt_speech_ok(&job, &r, &res, &err, t_error);
        ck_assert_int_eq(error_calls, 1);
        r.content_type = "text/html";
        ck_assert_int_eq(adapt_speech_ok(&job, &r, &res, &err, t_error),
                         OUTCOME_RETRY_LATER);
        ck_assert_str_eq(err.errstr,
                         "200: unexpected content type \"text/html\"");
        r = tresp(200, "audio/wav", "");
        ck_assert_int_eq(adapt_speech_ok(&job, &r, &res, &err, t_error),
                         OUTCOME_RETRY_LATER);
        ck_assert_str_eq(err.errstr, "200: empty audio body");
        r = tresp(200, "audio/wav", "RIFF");
        r.truncated = 1;
        ck_assert_int_eq(adapt_speech_ok(&job, &r, &res, &err, t_error),
                         OUTCOME_RETRY_LATER);
        ck_assert_str_eq(err.errstr, "HTTP 200 with a truncated body");
        ck_assert_ptr_null(res.data);
}
END_TEST

/*
 * Rule tables.
 */

enum { M_ANY = ADAPT_M_ANY, M_END = ADAPT_M_END, M_MSG = ADAPT_M_OWN };

static const struct adapt_rule trules[] = {
        {400, M_MSG, "credit|quota", OUTCOME_QUOTA_EXHAUSTED},
        {400, M_ANY, NULL, OUTCOME_FATAL_JOB},
        {0, M_MSG, "try later", OUTCOME_RETRY_LATER},
        {429, M_ANY, NULL, OUTCOME_RETRY_LATER},
        {0, M_END, NULL, 0},
};

START_TEST(test_rules_match)
{
        const struct adapt_rule *r;

        r = adapt_rules_match(trules, 400, adapt_match_msg, "No CREDIT left");
        ck_assert_ptr_eq(r, &trules[0]);
        r = adapt_rules_match(trules, 400, adapt_match_msg, "bad field");
        ck_assert_ptr_eq(r, &trules[1]);
        r = adapt_rules_match(trules, 400, adapt_match_msg, NULL);
        ck_assert_ptr_eq(r, &trules[1]);
        /* status 0 rows match any status */
        r = adapt_rules_match(trules, 503, adapt_match_msg, "please try later");
        ck_assert_ptr_eq(r, &trules[2]);
        ck_assert_ptr_null(adapt_rules_match(trules, 503, adapt_match_msg,
                                             "down"));
        /* without a match function only ANY rows count */
        ck_assert_ptr_eq(adapt_rules_match(trules, 400, NULL, NULL),
                         &trules[1]);
}
END_TEST

START_TEST(test_alternatives)
{
        ck_assert(adapt_alt_eq("a|bc|d", "bc"));
        ck_assert(!adapt_alt_eq("a|bc|d", "b"));
        ck_assert(!adapt_alt_eq("a|bc|d", "BC"));
        ck_assert(!adapt_alt_eq("a|bc", NULL));
        ck_assert(adapt_alt_has("x|Balance", "your balance is low"));
        ck_assert(!adapt_alt_has("credit|quota", "your balance is low"));
        ck_assert(!adapt_alt_has("x", NULL));
}
END_TEST

START_TEST(test_nonjson_rows)
{
        static const struct {
                long status;
                int row;
                enum outcome outcome;
        } cases[] = {
                {401, 1, OUTCOME_KEY_DISABLED},
                {402, 1, OUTCOME_QUOTA_EXHAUSTED},
                {403, 1, OUTCOME_FALLBACK_NEXT},
                {404, 1, OUTCOME_FALLBACK_NEXT},
                {429, 1, OUTCOME_RETRY_LATER},
                {400, 0, OUTCOME_FATAL_JOB},
                {502, 0, OUTCOME_RETRY_LATER},
        };
        struct provider_resp r = tresp(0, "text/html", "<html>");
        struct provider_err err;
        const struct adapt_rule *row;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                r.status = cases[i].status;
                row = adapt_nonjson_rule(r.status);
                ck_assert_int_eq(row != NULL, cases[i].row);
                adapt_err_init(&r, &err);
                ck_assert_int_eq(adapt_classify(&r, row, &err),
                                 cases[i].outcome);
                ck_assert_int_eq(err.outcome, cases[i].outcome);
        }
        /* the generic rules' errstr stays */
        r.status = 403;
        adapt_classify(&r, adapt_nonjson_rule(403), &err);
        ck_assert_str_eq(err.errstr, "HTTP 403");
}
END_TEST

/*
 * The OpenAI-style error envelope.
 */

/** Read \p body into \p eb; the parsed root goes to \p *root. */
static void oai_read(const char *body, unsigned flags,
                     struct adapt_oaierr *eb, json_t **root)
{
        *root = json_loads(body, JSON_DECODE_ANY, NULL);
        adapt_oaierr_read(eb, *root, flags);
}

START_TEST(test_oaierr_shapes)
{
        struct adapt_oaierr eb;
        json_t *root;

        oai_read("{\"error\":{\"code\":\"rate_limit_exceeded\",\"type\":"
                 "\"tokens\",\"message\":\"slow down\",\"metadata\":"
                 "{\"limit_source\":\"budget\"}}}",
                 0, &eb, &root);
        ck_assert(eb.wrapped);
        ck_assert(!eb.code_is_int);
        ck_assert_str_eq(eb.code, "rate_limit_exceeded");
        ck_assert_str_eq(eb.type, "tokens");
        ck_assert_str_eq(eb.message, "slow down");
        ck_assert_str_eq(eb.limit_source, "budget");
        json_decref(root);

        oai_read("{\"code\":20012,\"message\":\"no model\",\"data\":null}", 0,
                 &eb, &root);
        ck_assert(!eb.wrapped);
        ck_assert(eb.code_is_int);
        ck_assert_str_eq(eb.code, "20012");
        json_decref(root);

        oai_read("{\"error\":\"plain\"}", 0, &eb, &root);
        ck_assert_str_eq(eb.code, "");
        ck_assert_str_eq(eb.message, "plain");
        json_decref(root);

        oai_read("{\"detail\":\"d\"}", 0, &eb, &root);
        ck_assert_str_eq(eb.message, "d");
        json_decref(root);

        /* "msg" only when asked for */
        oai_read("{\"code\":1,\"msg\":\"m\"}", 0, &eb, &root);
        ck_assert_ptr_null(eb.message);
        json_decref(root);
        oai_read("{\"code\":1,\"msg\":\"m\"}", ADAPT_OAIERR_MSG, &eb, &root);
        ck_assert_str_eq(eb.message, "m");
        json_decref(root);

        oai_read("[1,2]", 0, &eb, &root);
        ck_assert_str_eq(eb.code, "");
        ck_assert_ptr_null(eb.message);
        json_decref(root);
}
END_TEST

START_TEST(test_oaierr_match_and_errstr)
{
        static const struct adapt_rule rows[] = {
                {429, ADAPT_OAI_TYPE, "insufficient_quota",
                 OUTCOME_QUOTA_EXHAUSTED},
                {429, ADAPT_OAI_CODE_PREFIX, "Throttling",
                 OUTCOME_RETRY_LATER},
                {0, ADAPT_OAI_MSG, "balance", OUTCOME_QUOTA_EXHAUSTED},
                {0, ADAPT_M_END, NULL, 0},
        };
        struct provider_err err = {0};
        struct adapt_oaierr eb;
        json_t *root;

        oai_read("{\"error\":{\"code\":\"Throttling.User\",\"type\":\"x\","
                 "\"message\":\"key sk-abcdefghijkl rejected\"}}",
                 0, &eb, &root);
        ck_assert_ptr_eq(adapt_rules_match(rows, 429, adapt_oaierr_match,
                                           &eb),
                         &rows[1]);
        ck_assert_ptr_null(adapt_rules_match(rows, 400, adapt_oaierr_match,
                                             &eb));
        adapt_oaierr_errstr(&eb, 429, &sk_keys, &err);
        ck_assert_str_eq(err.errstr,
                         "429 x/Throttling.User: key sk-" ELL " rejected");
        json_decref(root);

        oai_read("{\"error\":{\"message\":\"Low balance\"}}", 0, &eb, &root);
        ck_assert_ptr_eq(adapt_rules_match(rows, 402, adapt_oaierr_match,
                                           &eb),
                         &rows[2]);
        adapt_oaierr_errstr(&eb, 402, NULL, &err);
        ck_assert_str_eq(err.errstr, "402: Low balance");
        json_decref(root);

        oai_read("{\"code\":30011}", 0, &eb, &root);
        ck_assert_int_eq(adapt_rules_match(adapt_siliconflow_rules, 403,
                                           adapt_oaierr_match, &eb)
                                 ->outcome,
                         OUTCOME_QUOTA_EXHAUSTED);
        adapt_oaierr_errstr(&eb, 403, NULL, &err);
        ck_assert_str_eq(err.errstr, "403 30011: (no message)");
        json_decref(root);
}
END_TEST

/*
 * errstr texts.
 */

START_TEST(test_redact_token_start)
{
        char s[256];

        strcpy(s, "key sk-abcdef1234 and nvapi-XYZ12345, end");
        adapt_redact(s, &sk_keys);
        ck_assert_str_eq(s, "key sk-" ELL " and nvapi-" ELL ", end");
        /* short tokens, tokens inside words: left alone */
        strcpy(s, "sk-abcde xsk-abcdefghi -sk-abcdefghi");
        adapt_redact(s, &sk_keys);
        ck_assert_str_eq(s, "sk-abcde xsk-abcdefghi -sk-abcdefghi");
        /* the masked key OpenAI quotes is one token, '*' included */
        strcpy(s, "provided: sk-ab**********yz.");
        adapt_redact(s, &sk_keys);
        ck_assert_str_eq(s, "provided: sk-" ELL ".");
}
END_TEST

START_TEST(test_redact_anywhere)
{
        char s[256];

        strcpy(s, "GET /x?key=AIzaSyAbc%2B12 and AIzaOther9, key=ab");
        adapt_redact(s, &google_keys);
        ck_assert_str_eq(s, "GET /x?key=" ELL " and AIza" ELL ", key=ab");
}
END_TEST

START_TEST(test_errstr_utf8_cut)
{
        struct provider_err err;
        char long_msg[600];

        /* 3-byte characters: 255 bytes would end mid-character */
        for (size_t i = 0; i < 200; i++)
                memcpy(long_msg + 3 * i, "\xe4\xbd\xa0", 3);
        long_msg[600 - 1] = '\0';
        adapt_errstr(&err, NULL, "4%s", long_msg);
        ck_assert_uint_eq(strlen(err.errstr), 253); /* "4" + 84 chars */
        ck_assert_int_eq(((unsigned char)err.errstr[252] & 0xc0), 0x80);
        ck_assert_int_eq(((unsigned char)err.errstr[250] & 0xc0), 0xc0);

        /* redaction happens before the cut, so more text fits */
        adapt_errstr(&err, &sk_keys, "%ld: %s", 401L, "sk-abcdefghijklmnop");
        ck_assert_str_eq(err.errstr, "401: sk-" ELL);

        err.outcome = OUTCOME_SUCCESS;
        ck_assert_int_eq(adapt_fail(&err, OUTCOME_FALLBACK_NEXT, "kie: %s",
                                    "no taskId"),
                         OUTCOME_FALLBACK_NEXT);
        ck_assert_int_eq(err.outcome, OUTCOME_FALLBACK_NEXT);
        ck_assert_str_eq(err.errstr, "kie: no taskId");
}
END_TEST

/*
 * Small codecs.
 */

START_TEST(test_b64_decode)
{
        static const char std[] = "aGVs bG8+/w==";
        static const char url[] = "aGVsbG8-_w";
        uint8_t *d;
        size_t n;

        d = adapt_b64_decode(std, strlen(std), &n);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(n, 7);
        ck_assert(!memcmp(d, "hello>\xff", 7));
        free(d);
        d = adapt_b64_decode(url, strlen(url), &n);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(n, 7);
        ck_assert(!memcmp(d, "hello>\xff", 7));
        free(d);
        ck_assert_ptr_null(adapt_b64_decode("ab!c", 4, &n));
}
END_TEST

START_TEST(test_media_type_and_chars)
{
        char buf[16];

        ck_assert_str_eq(adapt_media_type("  Audio/MPEG; q=1", buf,
                                          sizeof(buf)),
                         "audio/mpeg");
        ck_assert_str_eq(adapt_media_type(NULL, buf, sizeof(buf)), "");
        ck_assert_str_eq(adapt_media_type("application/octet-stream", buf,
                                          sizeof(buf)),
                         "application/oct"); /* cut to fit */
        ck_assert_double_eq(adapt_utf8_chars("H\xc3\xa9llo \xe4\xbd\xa0"),
                            7);
        ck_assert_double_eq(adapt_utf8_chars(""), 0);
        ck_assert_double_eq(adapt_utf8_chars(NULL), 0);
}
END_TEST

/** A PCM WAV header: \p rate bytes per second, \p data_len data bytes. */
static size_t wav(uint8_t *b, uint32_t rate, uint32_t data_len)
{
        memset(b, 0, 44);
        memcpy(b, "RIFF", 4);
        memcpy(b + 8, "WAVEfmt ", 8);
        b[16] = 16;
        memcpy(b + 28, &rate, 4); /* little-endian hosts */
        memcpy(b + 36, "data", 4);
        memcpy(b + 40, &data_len, 4);
        return 44;
}

START_TEST(test_wav_seconds)
{
        uint8_t b[44 + 16000];

        wav(b, 8000, 16000);
        ck_assert_double_eq(adapt_wav_seconds(b, sizeof(b)), 2.0);
        /* a data size past the end counts the bytes present */
        wav(b, 8000, 0xffffffffu);
        ck_assert_double_eq(adapt_wav_seconds(b, 44 + 4000), 0.5);
        ck_assert_double_eq(adapt_wav_seconds(b, 20), -1);
        ck_assert_double_eq(adapt_wav_seconds("ID3xxxxxxxxxxxxx", 16), -1);
        ck_assert_double_eq(adapt_wav_seconds(NULL, 0), -1);
        wav(b, 0, 16000);
        ck_assert_double_eq(adapt_wav_seconds(b, sizeof(b)), -1);
}
END_TEST

/*
 * Runner
 */

static Suite *adapt_suite(void)
{
        Suite *s = suite_create("adapt");
        TCase *tb = tcase_create("build");
        TCase *tj = tcase_create("json");
        TCase *tr = tcase_create("responses");
        TCase *tt = tcase_create("rules");
        TCase *te = tcase_create("errstr");
        TCase *tc = tcase_create("codecs");

        tcase_add_test(tb, test_url);
        tcase_add_test(tb, test_url_errors);
        tcase_add_test(tb, test_pct_encode);
        tcase_add_test(tb, test_headers);
        tcase_add_test(tb, test_req_json_and_fields);
        tcase_add_test(tb, test_model_and_jobs);
        tcase_add_test(tb, test_path_names);
        tcase_add_test(tj, test_json_helpers);
        tcase_add_test(tj, test_merge_obj);
        tcase_add_test(tj, test_join_text);
        tcase_add_test(tr, test_body_json);
        tcase_add_test(tr, test_parse_dispatch);
        tcase_add_test(tr, test_speech_ok);
        tcase_add_test(tt, test_rules_match);
        tcase_add_test(tt, test_alternatives);
        tcase_add_test(tt, test_nonjson_rows);
        tcase_add_test(tt, test_oaierr_shapes);
        tcase_add_test(tt, test_oaierr_match_and_errstr);
        tcase_add_test(te, test_redact_token_start);
        tcase_add_test(te, test_redact_anywhere);
        tcase_add_test(te, test_errstr_utf8_cut);
        tcase_add_test(tc, test_b64_decode);
        tcase_add_test(tc, test_media_type_and_chars);
        tcase_add_test(tc, test_wav_seconds);
        suite_add_tcase(s, tb);
        suite_add_tcase(s, tj);
        suite_add_tcase(s, tr);
        suite_add_tcase(s, tt);
        suite_add_tcase(s, te);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(adapt_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
