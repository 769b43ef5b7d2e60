/*
 * provider_kie: the KIE jobs API (kie.ai), two async adapters sharing one
 * envelope, one submit and one poll: "kie_image" (nano-banana family) and
 * "kie_video" (Sora 2 family).  Reference section 6.
 *
 *   submit  POST <base>/api/v1/jobs/createTask {"model", "input"}
 *           -> {"code":200,"msg":"success","data":{"taskId":"..."}}
 *   poll    GET  <base>/api/v1/jobs/recordInfo?taskId=<id>
 *           -> data.state waiting|queuing|generating  -> PENDING
 *              data.state success -> data.resultJson, a JSON *string*
 *                                    holding {"resultUrls":[...]}
 *              data.state fail    -> failCode / failMsg
 *
 * THE ENVELOPE DECIDES, NOT THE STATUS LINE
 *
 * KIE answers {"code", "msg" (or "message"), "data"} and may put an error
 * inside an HTTP 200 (or mirror it in the status line: unconfirmed), so
 * whenever the body is a JSON object with a numeric "code", that code is
 * classified (code_rules[], section 12 KIE rows) and the status line is
 * ignored.  Only a body without one (a proxy page, a truncated answer, a
 * transport failure) falls back to the status: provider_classify_generic()
 * plus the shared status-only rows (adapt_nonjson_rule()).
 *
 * MODELS
 *
 * The job's model hint is used when it names a model of this adapter's
 * family (a table below); any other hint (meant for another provider of
 * the route) is ignored in favour of the configured model.  The request
 * then picks the variant the job needs:
 *
 *   image: google/nano-banana      {prompt, output_format, aspect_ratio}
 *          google/nano-banana-edit {prompt, image_urls, output_format,
 *                                   image_size}  (when the job has input
 *                                   images; and back without them)
 *          nano-banana-pro         {prompt, image_input, aspect_ratio,
 *                                   resolution, output_format}
 *   video: sora-2[-pro]-text-to-video  {prompt, aspect_ratio, n_frames,
 *                                       remove_watermark[, size]}
 *          sora-2[-pro]-image-to-video  the same + image_urls (first frame)
 *          sora-2-pro-storyboard   {n_frames, shots:[{Scene, duration}],
 *                                   aspect_ratio[, image_urls]} (scenes)
 *
 * n_frames is a *string* of seconds ("10", "15"; storyboard "25" too);
 * aspect ratios become landscape/portrait.  A job the model cannot express
 * (1:1 Sora, 7 seconds, several images) fails build(), so the worker moves
 * on to the next provider.  extra_body is merged into "input" as defaults
 * (e.g. {"upload_method":"oss"}).  callBackUrl is not sent: we poll.
 *
 * Units: images = result URLs; video = seconds requested (input.n_frames of
 * the task's param, else the job's).  consumeCredits -> provider_cost.
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "adapt.h"
#include "xmem.h"

#define CREATE_PATH "/api/v1/jobs/createTask"
#define RECORD_PATH "/api/v1/jobs/recordInfo?taskId="
/** Scene durations such as 7.5 print as 7.5, 0.1 as 0.1. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
#define KIE_OK 200

#define RETRY OUTCOME_RETRY_LATER
#define FALLBACK OUTCOME_FALLBACK_NEXT
#define FATAL OUTCOME_FATAL_JOB
#define KEYDIS OUTCOME_KEY_DISABLED
#define QUOTA OUTCOME_QUOTA_EXHAUSTED

/*
 * Request plumbing.
 */

/** A JSON array of the \p n strings \p v, or NULL if one is not UTF-8. */
static json_t *str_array(char *const *v, size_t n)
{
        json_t *arr = json_array(), *s;

        if (!arr)
                fatal("out of memory building JSON");
        for (size_t i = 0; i < n; i++) {
                s = json_string(v[i]);
                if (!s) {
                        json_decref(arr);
                        return NULL;
                }
                if (json_array_append_new(arr, s) == -1)
                        fatal("out of memory building JSON");
        }
        return arr;
}

/**
 * Finish a createTask request: {"model", "input"} to the create URL.
 * @remark takes \p input in every case.
 */
static int submit_req(const struct provider_cfg *p, const char *key,
                      const char *model, json_t *input,
                      struct provider_req *req, char *errstr,
                      size_t errstr_size)
{
        json_t *body = json_object();

        if (!body)
                fatal("out of memory building JSON");
        /* extra_body joins "input" as defaults; keys the adapter set win */
        if (adapt_merge_obj(p, "extra_body", p->extra_body, input,
                            ADAPT_MERGE_TOP, errstr, errstr_size) == -1 ||
            adapt_url(req, p, "URL", errstr, errstr_size, CREATE_PATH,
                      NULL) == -1 ||
            adapt_json_headers(req, "Authorization: Bearer ", key, 1, errstr,
                               errstr_size) == -1) {
                json_decref(input);
                goto err_free_body;
        }
        if (adapt_jset_str(body, "model", model) == -1) {
                snprintf(errstr, errstr_size, "model is not valid UTF-8");
                json_decref(input);
                goto err_free_body;
        }
        adapt_jset(body, "input", input);
        req->method = "POST";
        adapt_req_json(req, body, DUMP_FLAGS);
        json_decref(body);
        return 0;

err_free_body:
        json_decref(body);
        provider_req_clear(req);
        return -1;
}

static int build_poll(const struct provider_cfg *p, const char *key,
                      const char *task_id, struct provider_req *req,
                      char *errstr, size_t errstr_size)
{
        char id[1024];
        size_t n = 0;

        memset(req, 0, sizeof(*req));
        if (!task_id || !*task_id ||
            adapt_pct_encode(id, sizeof(id), &n, task_id, 0) == -1) {
                snprintf(errstr, errstr_size, "bad task id");
                return -1;
        }
        if (adapt_url(req, p, "URL", errstr, errstr_size, RECORD_PATH, id,
                      NULL) == -1 ||
            adapt_json_headers(req, "Authorization: Bearer ", key, 0, errstr,
                               errstr_size) == -1) {
                provider_req_clear(req);
                return -1;
        }
        req->method = "GET";
        return 0;
}

/** The job's hint when \p known accepts it, else the configured model. */
static const char *pick_model(const struct provider_cfg *p, const char *hint,
                              int (*known)(const char *name))
{
        if (hint && *hint && known(hint))
                return hint;
        return p->model;
}

/*
 * kie_image: the nano-banana family.
 */

enum ishape { IS_BANANA, IS_EDIT, IS_PRO };

/** Names a job or config may use, and the KIE model each stands for. */
static const struct imodel {
        const char *name;
        const char *wire;
        enum ishape shape;
} image_models[] = {
        {"google/nano-banana", "google/nano-banana", IS_BANANA},
        {"nano-banana", "google/nano-banana", IS_BANANA},
        {"google/nano-banana-edit", "google/nano-banana-edit", IS_EDIT},
        {"nano-banana-edit", "google/nano-banana-edit", IS_EDIT},
        {"nano-banana-pro", "nano-banana-pro", IS_PRO},
        {"google/nano-banana-pro", "nano-banana-pro", IS_PRO},
};
#define N_IMAGE_MODELS (sizeof(image_models) / sizeof(image_models[0]))

static const struct imodel *imodel_find(const char *name)
{
        for (size_t i = 0; name && i < N_IMAGE_MODELS; i++)
                if (!strcmp(image_models[i].name, name))
                        return &image_models[i];
        return NULL;
}

static int imodel_known(const char *name)
{
        return imodel_find(name) != NULL;
}

/** The job's output_format in each model's words; NULL: not offered
 *  (the provider's default, png, is used). */
static const struct {
        const char *job;
        const char *banana; /**< nano-banana, -edit */
        const char *pro;    /**< nano-banana-pro */
} formats[] = {
        {"png", "png", "png"},
        {"jpeg", "jpeg", "jpg"},
        {"jpg", "jpeg", "jpg"},
};

static const char *format_word(const char *job_fmt, int pro)
{
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
                if (!strcasecmp(formats[i].job, job_fmt))
                        return pro ? formats[i].pro : formats[i].banana;
        return NULL;
}

/** nano-banana-pro resolution from size: "1K"/"2K"/"4K" as given, or the
 *  longer side of "WxH" (<= 1024: 1K, <= 2048: 2K, else 4K). */
static int pro_resolution(const char *size, const char **out)
{
        static const char *const words[] = {"1K", "2K", "4K"};
        unsigned w, h, side;
        char end;

        *out = NULL;
        if (!*size)
                return 0;
        for (size_t i = 0; i < 3; i++)
                if (!strcasecmp(size, words[i])) {
                        *out = words[i];
                        return 0;
                }
        if (sscanf(size, "%ux%u%c", &w, &h, &end) != 2 || !w || !h)
                return -1;
        side = w > h ? w : h;
        *out = side <= 1024 ? "1K" : side <= 2048 ? "2K" : "4K";
        return 0;
}

/** Optional string member: set only when \p v is non-empty. */
static int opt_str(json_t *input, const char *k, const char *v)
{
        return v && *v ? adapt_jset_str(input, k, v) : 0;
}

static int image_common(const Genq__V1__ImageRequest *im, json_t *input,
                        int pro, char *errstr, size_t errstr_size)
{
        if (adapt_jset_str(input, "prompt", im->prompt) == -1) {
                snprintf(errstr, errstr_size, "prompt is not valid UTF-8");
                return -1;
        }
        return opt_str(input, "output_format",
                       format_word(im->output_format, pro));
}

/** Input images under \p k (nano-banana-edit image_urls, pro
 *  image_input). */
static int image_urls(const Genq__V1__ImageRequest *im, json_t *input,
                      const char *k, char *errstr, size_t errstr_size)
{
        json_t *arr = str_array(im->input_image_urls,
                                im->n_input_image_urls);

        if (!arr) {
                snprintf(errstr, errstr_size,
                         "input image URL is not valid UTF-8");
                return -1;
        }
        adapt_jset(input, k, arr);
        return 0;
}

static int input_banana(const Genq__V1__ImageRequest *im, json_t *input,
                        char *errstr, size_t errstr_size)
{
        if (image_common(im, input, 0, errstr, errstr_size) == -1)
                return -1;
        return opt_str(input, "aspect_ratio", im->aspect_ratio);
}

/* nano-banana-edit calls the aspect ratio image_size */
static int input_edit(const Genq__V1__ImageRequest *im, json_t *input,
                      char *errstr, size_t errstr_size)
{
        if (image_common(im, input, 0, errstr, errstr_size) == -1 ||
            image_urls(im, input, "image_urls", errstr, errstr_size) == -1)
                return -1;
        return opt_str(input, "image_size", im->aspect_ratio);
}

static int input_pro(const Genq__V1__ImageRequest *im, json_t *input,
                     char *errstr, size_t errstr_size)
{
        const char *res;

        if (pro_resolution(im->size, &res) == -1) {
                snprintf(errstr, errstr_size,
                         "size \"%.40s\" is not WIDTHxHEIGHT or 1K/2K/4K",
                         im->size);
                return -1;
        }
        if (image_common(im, input, 1, errstr, errstr_size) == -1 ||
            (im->n_input_image_urls &&
             image_urls(im, input, "image_input", errstr, errstr_size)))
                return -1;
        if (opt_str(input, "aspect_ratio", im->aspect_ratio) == -1)
                return -1;
        return opt_str(input, "resolution", res);
}

/** One input builder per shape. */
static int (*const image_inputs[])(const Genq__V1__ImageRequest *im,
                                   json_t *input, char *errstr,
                                   size_t errstr_size) = {
        [IS_BANANA] = input_banana,
        [IS_EDIT] = input_edit,
        [IS_PRO] = input_pro,
};

/** The model to send: input images turn nano-banana into -edit, their
 *  absence turns -edit back. */
static const struct imodel *image_variant(const struct imodel *m,
                                          const Genq__V1__ImageRequest *im)
{
        if (m->shape == IS_BANANA && im->n_input_image_urls)
                return imodel_find("google/nano-banana-edit");
        if (m->shape == IS_EDIT && !im->n_input_image_urls)
                return imodel_find("google/nano-banana");
        return m;
}

static const struct imodel *image_model(const struct provider_cfg *p,
                                        const Genq__V1__ImageRequest *im,
                                        char *errstr, size_t errstr_size)
{
        const char *name = pick_model(p, im->model, imodel_known);
        const struct imodel *m = imodel_find(name);

        if (!m) {
                snprintf(errstr, errstr_size,
                         "kie_image: no input schema for model \"%.60s\"",
                         name ? name : "");
                return NULL;
        }
        return image_variant(m, im);
}

static int image_build(const struct provider_cfg *p, const char *key,
                       const Genq__V1__Job *job,
                       const struct provider_input *in,
                       struct provider_req *req, char *errstr,
                       size_t errstr_size)
{
        const Genq__V1__ImageRequest *im = job->image;
        const struct imodel *m;
        json_t *input;

        memset(req, 0, sizeof(*req));
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_IMAGE || !im) {
                snprintf(errstr, errstr_size, "not an image job");
                return -1;
        }
        if (!*im->prompt || im->count > 1) {
                snprintf(errstr, errstr_size, "%s",
                         *im->prompt ? "kie_image makes one image per task"
                                     : "image prompt is empty");
                return -1;
        }
        m = image_model(p, im, errstr, errstr_size);
        if (!m)
                return -1;
        input = json_object();
        if (!input)
                fatal("out of memory building JSON");
        if (image_inputs[m->shape](im, input, errstr, errstr_size) == -1) {
                json_decref(input);
                return -1;
        }
        return submit_req(p, key, m->wire, input, req, errstr, errstr_size);
}

/*
 * kie_video: the Sora 2 family.
 */

#define SORA_PREFIX "sora-2"
#define SORA_PRO_PREFIX "sora-2-pro"
#define STORYBOARD "sora-2-pro-storyboard"
#define DEFAULT_SECONDS 10

static int vmodel_known(const char *name)
{
        return !strncmp(name, SORA_PREFIX, strlen(SORA_PREFIX));
}

/** [pro][image-to-video] */
static const char *const sora_models[2][2] = {
        {"sora-2-text-to-video", "sora-2-image-to-video"},
        {"sora-2-pro-text-to-video", "sora-2-pro-image-to-video"},
};

/** Job aspect ratios Sora takes, in its words. */
static const struct {
        const char *job;
        const char *kie;
} orientations[] = {
        {"16:9", "landscape"},
        {"landscape", "landscape"},
        {"9:16", "portrait"},
        {"portrait", "portrait"},
};

/** Job quality hints as the pro models' size. */
static const struct {
        const char *job;
        const char *size;
} pro_sizes[] = {
        {"standard", "standard"},
        {"720p", "standard"},
        {"high", "high"},
        {"1080p", "high"},
};

/** n_frames values (seconds) each model accepts. */
static const int clip_seconds[] = {10, 15};
static const int storyboard_seconds[] = {10, 15, 25};

static int seconds_allowed(int s, const int *allowed, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (allowed[i] == s)
                        return 1;
        return 0;
}

/** Total of the storyboard's scenes, rounded to whole seconds. */
static int scenes_seconds(const Genq__V1__VideoRequest *v)
{
        double sum = 0;

        for (size_t i = 0; i < v->n_scenes; i++)
                sum += v->scenes[i]->duration_s;
        return (int)(sum + 0.5);
}

/** Seconds the job asks for: scenes' total, duration_s, or 10. */
static int video_seconds(const Genq__V1__VideoRequest *v)
{
        if (v->n_scenes)
                return scenes_seconds(v);
        return v->duration_s ? v->duration_s : DEFAULT_SECONDS;
}

static int set_orientation(const Genq__V1__VideoRequest *v, json_t *input,
                           char *errstr, size_t errstr_size)
{
        if (!*v->aspect_ratio)
                return 0;
        for (size_t i = 0; i < sizeof(orientations) / sizeof(orientations[0]);
             i++)
                if (!strcasecmp(orientations[i].job, v->aspect_ratio))
                        return adapt_jset_str(input, "aspect_ratio",
                                        orientations[i].kie);
        snprintf(errstr, errstr_size,
                 "aspect ratio \"%.20s\" not offered by Sora 2",
                 v->aspect_ratio);
        return -1;
}

static int set_n_frames(json_t *input, int secs, const int *allowed,
                        size_t n, char *errstr, size_t errstr_size)
{
        char s[16];

        if (!seconds_allowed(secs, allowed, n)) {
                snprintf(errstr, errstr_size,
                         "%d seconds not offered by this Sora 2 model", secs);
                return -1;
        }
        snprintf(s, sizeof(s), "%d", secs);
        return adapt_jset_str(input, "n_frames", s);
}

static void set_pro_size(const Genq__V1__VideoRequest *v, json_t *input)
{
        for (size_t i = 0; i < sizeof(pro_sizes) / sizeof(pro_sizes[0]); i++)
                if (!strcasecmp(pro_sizes[i].job, v->quality))
                        adapt_jset_str(input, "size", pro_sizes[i].size);
}

static int set_first_frame(const Genq__V1__VideoRequest *v, json_t *input,
                           char *errstr, size_t errstr_size)
{
        char *url = v->first_frame_url;
        json_t *arr;

        if (!*url)
                return 0;
        arr = str_array(&url, 1);
        if (!arr) {
                snprintf(errstr, errstr_size,
                         "first_frame_url is not valid UTF-8");
                return -1;
        }
        adapt_jset(input, "image_urls", arr);
        return 0;
}

/** shots: [{"Scene": ..., "duration": ...}] (capital S). */
static int set_shots(const Genq__V1__VideoRequest *v, json_t *input,
                     char *errstr, size_t errstr_size)
{
        json_t *shots = json_array(), *shot;

        adapt_jset(input, "shots", shots);
        for (size_t i = 0; i < v->n_scenes; i++) {
                shot = json_object();
                if (!shot || json_array_append_new(shots, shot) == -1)
                        fatal("out of memory building JSON");
                if (v->scenes[i]->duration_s <= 0 ||
                    adapt_jset_str(shot, "Scene", v->scenes[i]->prompt) ==
                            -1 ||
                    !*v->scenes[i]->prompt) {
                        snprintf(errstr, errstr_size,
                                 "scene %zu needs text and a duration", i);
                        return -1;
                }
                adapt_jset(shot, "duration",
                           json_real(v->scenes[i]->duration_s));
        }
        return 0;
}

static int input_storyboard(const Genq__V1__VideoRequest *v, json_t *input,
                            char *errstr, size_t errstr_size)
{
        if (set_n_frames(input, scenes_seconds(v), storyboard_seconds,
                         sizeof(storyboard_seconds) / sizeof(int), errstr,
                         errstr_size) == -1 ||
            set_shots(v, input, errstr, errstr_size) == -1 ||
            set_orientation(v, input, errstr, errstr_size) == -1)
                return -1;
        return set_first_frame(v, input, errstr, errstr_size);
}

static int input_clip(const Genq__V1__VideoRequest *v, int pro,
                      json_t *input, char *errstr, size_t errstr_size)
{
        if (!*v->prompt || adapt_jset_str(input, "prompt", v->prompt) == -1) {
                snprintf(errstr, errstr_size,
                         "video prompt is empty or not UTF-8");
                return -1;
        }
        if (set_orientation(v, input, errstr, errstr_size) == -1 ||
            set_n_frames(input, video_seconds(v), clip_seconds,
                         sizeof(clip_seconds) / sizeof(int), errstr,
                         errstr_size) == -1 ||
            set_first_frame(v, input, errstr, errstr_size) == -1)
                return -1;
        adapt_jset(input, "remove_watermark",
                   json_boolean(v->remove_watermark));
        if (pro)
                set_pro_size(v, input);
        return 0;
}

/** The KIE model for the job: storyboard for scenes, else the text- or
 *  image-to-video variant of the (pro or not) model chosen. */
static const char *video_model(const struct provider_cfg *p,
                               const Genq__V1__VideoRequest *v, int *pro,
                               char *errstr, size_t errstr_size)
{
        const char *name = pick_model(p, v->model, vmodel_known);

        if (!name || !vmodel_known(name)) {
                snprintf(errstr, errstr_size,
                         "kie_video: no input schema for model \"%.60s\"",
                         name ? name : "");
                return NULL;
        }
        *pro = !strncmp(name, SORA_PRO_PREFIX, strlen(SORA_PRO_PREFIX));
        if (v->n_scenes)
                return STORYBOARD;
        return sora_models[*pro][*v->first_frame_url != '\0'];
}

static int video_build(const struct provider_cfg *p, const char *key,
                       const Genq__V1__Job *job,
                       const struct provider_input *in,
                       struct provider_req *req, char *errstr,
                       size_t errstr_size)
{
        const Genq__V1__VideoRequest *v = job->video;
        const char *model;
        json_t *input;
        int pro, r;

        memset(req, 0, sizeof(*req));
        if (job->payload_case != GENQ__V1__JOB__PAYLOAD_VIDEO || !v) {
                snprintf(errstr, errstr_size, "not a video job");
                return -1;
        }
        model = video_model(p, v, &pro, errstr, errstr_size);
        if (!model)
                return -1;
        input = json_object();
        if (!input)
                fatal("out of memory building JSON");
        r = v->n_scenes ? input_storyboard(v, input, errstr, errstr_size)
                        : input_clip(v, pro, input, errstr, errstr_size);
        if (r == -1) {
                json_decref(input);
                return -1;
        }
        return submit_req(p, key, model, input, req, errstr, errstr_size);
}

/*
 * Reading the envelope.
 */

/** {"code", "msg"|"message", "data"}; borrowed from the parsed body. */
struct kenv {
        long code;           /**< -1: the body has no numeric code */
        const char *msg;     /**< msg, else message, else "" */
        const json_t *data;
};

/** An integer, or a string of digits (failCode "500"). @returns -1 if
 *  neither. */
static long json_code(const json_t *v)
{
        const char *s = json_string_value(v);

        if (json_is_integer(v))
                return (long)json_integer_value(v);
        if (s && *s && strspn(s, "0123456789") == strlen(s) &&
            strlen(s) < 10)
                return atol(s);
        return -1;
}

static void kenv_read(const json_t *root, struct kenv *env)
{
        env->code = json_code(json_object_get(root, "code"));
        env->msg = adapt_jstr(root, "msg");
        if (!env->msg)
                env->msg = adapt_jstr(root, "message");
        if (!env->msg)
                env->msg = "";
        env->data = json_object_get(root, "data");
}

/** KIE codes (section 6.1 and the KIE rows of section 12). */
static const struct {
        long code;
        enum outcome outcome;
} code_rules[] = {
        {401, KEYDIS},   /* unauthorized */
        {402, QUOTA},    /* insufficient credits */
        {433, QUOTA},    /* sub-key usage limit */
        {400, FATAL},    /* invalid parameters */
        {422, FATAL},    /* validation error */
        {404, FATAL},    /* wrong model/endpoint; unknown taskId */
        {429, RETRY},    /* rate limited */
        {455, RETRY},    /* maintenance: retries, then the next provider */
        {500, RETRY},    /* server error */
        {501, FALLBACK}, /* generation failed, without a task to read */
        {505, FALLBACK}, /* feature disabled */
};

/**
 * No envelope (a proxy, CDN or WAF page): only the status is left,
 * provider_classify_generic() and the shared status-only rows
 * (adapt_nonjson_rule(): never disable a key on a 403 page).
 */
static enum outcome classify_bare(const struct provider_resp *resp,
                                  struct provider_err *err)
{
        return adapt_classify(resp,
                              resp->transport_err
                                      ? NULL
                                      : adapt_nonjson_rule(resp->status),
                              err);
}

/** A code no row names: by its range, as an HTTP status would be. */
static enum outcome code_generic(long code)
{
        if (code == 408 || code == 425 || code == 429 || code >= 500)
                return RETRY;
        if (code >= 400)
                return FATAL;
        return FALLBACK;
}

/** Classify a non-200 envelope code. */
static enum outcome env_error(const struct kenv *env,
                              const struct provider_resp *resp,
                              struct provider_err *err)
{
        size_t i;

        err->outcome = code_generic(env->code);
        for (i = 0; i < sizeof(code_rules) / sizeof(code_rules[0]); i++)
                if (code_rules[i].code == env->code)
                        err->outcome = code_rules[i].outcome;
        adapt_errstr(err, NULL, "kie %ld: %s", env->code,
                     *env->msg ? env->msg : "(no message)");
        return err->outcome;
}

/** Parse \p resp's body; @returns the root object, or NULL (the status
 *  line then decides, classify_bare()). */
static json_t *load_envelope(const struct provider_resp *resp,
                             struct kenv *env)
{
        json_t *root = NULL;

        if (!resp->transport_err && resp->status)
                root = adapt_ok_json(resp);
        if (root) {
                kenv_read(root, env);
                if (env->code >= 0)
                        return root;
        }
        json_decref(root);
        return NULL;
}

static enum outcome malformed(struct provider_err *err, const char *why)
{
        return adapt_fail(err, RETRY, "kie: %s", why);
}

/*
 * Submit.
 */

static enum outcome parse(const struct provider_cfg *p,
                          const Genq__V1__Job *job,
                          const struct provider_resp *resp,
                          struct provider_result *res,
                          struct provider_err *err)
{
        const char *task;
        struct kenv env;
        json_t *root;

        adapt_err_init(resp, err);
        root = load_envelope(resp, &env);
        if (!root)
                return classify_bare(resp, err);
        if (env.code != KIE_OK) {
                env_error(&env, resp, err);
        } else {
                task = adapt_jstr(env.data, "taskId");
                if (task && *task)
                        res->task_id = xstrdup(task);
                else
                        malformed(err, "createTask answered no taskId");
        }
        json_decref(root);
        return err->outcome;
}

/*
 * Poll.
 */

/** Task states that mean "keep polling". */
static const char *const running_states[] = {"waiting", "queuing",
                                             "generating"};

/** failMsg wording that blames the job (content policy, bad input). */
static const char *const job_fault_words =
        "policy|violat|sensitive|nsfw|moderat|prohibit|inappropriate|unsafe|"
        "safety|invalid|rejected|not allowed";

/** state = fail: failCode 4xx or job-blaming failMsg -> fatal_job, else
 *  (5xx, "Internal server error", timeouts) fallback_next. */
static enum outcome task_failed(const json_t *data, struct provider_err *err)
{
        const json_t *fc = json_object_get(data, "failCode");
        const char *msg = adapt_jstr(data, "failMsg");
        long code = json_code(fc);
        char cbuf[24] = "";
        int blamed;

        if (!msg)
                msg = "";
        if (code >= 0)
                snprintf(cbuf, sizeof(cbuf), " %ld", code);
        blamed = (code >= 400 && code < 500) ||
                 adapt_alt_has(job_fault_words, msg);
        return adapt_fail(err, blamed ? FATAL : FALLBACK,
                          "kie task failed%s: %s", cbuf,
                          *msg ? msg : "(no failMsg)");
}

/** A JSON string holding JSON (param, resultJson), decoded; an object
 *  given as such is accepted too.  @returns a new reference or NULL. */
static json_t *json_in_string(const json_t *v)
{
        const char *s = json_string_value(v);

        if (json_is_object(v))
                return json_incref((json_t *)v);
        if (!s || !*s)
                return NULL;
        return json_loads(s, 0, NULL);
}

static int add_result_urls(const json_t *data, struct provider_result *res)
{
        json_t *result = json_in_string(json_object_get(data, "resultJson"));
        const json_t *u;
        size_t i;

        json_array_foreach(json_object_get(result, "resultUrls"), i, u)
                if (json_string_value(u) && *json_string_value(u))
                        provider_result_add_url(res, json_string_value(u));
        json_decref(result);
        return res->n_urls ? 0 : -1;
}

/** consumeCredits as a decimal string, or NULL if absent. */
static char *credits_str(const json_t *v)
{
        char buf[64];

        if (json_is_integer(v))
                snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
        else if (json_is_real(v))
                snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
        else if (json_code(v) >= 0)
                snprintf(buf, sizeof(buf), "%s", json_string_value(v));
        else
                return NULL;
        return xstrdup(buf);
}

static enum outcome task_succeeded(const json_t *data,
                                   struct provider_result *res,
                                   struct provider_err *err)
{
        if (add_result_urls(data, res) == -1)
                return adapt_fail(err, FALLBACK,
                                  "kie task succeeded without resultUrls");
        res->model = xstrdup(adapt_jstr(data, "model"));
        res->provider_cost =
                credits_str(json_object_get(data, "consumeCredits"));
        err->outcome = OUTCOME_SUCCESS;
        return err->outcome;
}

static int is_running(const char *state)
{
        for (size_t i = 0;
             i < sizeof(running_states) / sizeof(running_states[0]); i++)
                if (!strcmp(state, running_states[i]))
                        return 1;
        return 0;
}

/** data.state of a recordInfo answer (code 200, or 501 with the task). */
static enum outcome task_state(const json_t *data,
                               struct provider_result *res,
                               struct provider_err *err)
{
        const char *state = adapt_jstr(data, "state");

        if (!state)
                return malformed(err, "recordInfo answered no state");
        if (is_running(state)) {
                snprintf(err->errstr, sizeof(err->errstr), "kie task %s",
                         state);
                err->outcome = OUTCOME_PENDING;
                return err->outcome;
        }
        if (!strcmp(state, "success"))
                return task_succeeded(data, res, err);
        if (!strcmp(state, "fail"))
                return task_failed(data, err);
        return adapt_fail(err, RETRY, "kie: unknown task state \"%.40s\"",
                          state);
}

static enum outcome poll_common(const struct provider_resp *resp,
                                struct provider_result *res,
                                struct provider_err *err)
{
        struct kenv env;
        json_t *root;

        adapt_err_init(resp, err);
        root = load_envelope(resp, &env);
        if (!root)
                return classify_bare(resp, err);
        if (json_is_object(env.data) && adapt_jstr(env.data, "state") &&
            (env.code == KIE_OK || env.code == 501))
                task_state(env.data, res, err);
        else if (env.code == KIE_OK)
                malformed(err, "recordInfo answered no task");
        else
                env_error(&env, resp, err);
        json_decref(root);
        return err->outcome;
}

static enum outcome image_parse_poll(const struct provider_cfg *p,
                                     const Genq__V1__Job *job,
                                     const struct provider_resp *resp,
                                     struct provider_result *res,
                                     struct provider_err *err)
{
        if (poll_common(resp, res, err) != OUTCOME_SUCCESS)
                return err->outcome;
        res->units = (double)res->n_urls;
        res->unit = "image";
        return err->outcome;
}

/** Seconds the task was asked for: the param's input.n_frames (what KIE
 *  recorded), else the job's; -1 if neither is known. */
static double requested_seconds(const struct provider_resp *resp,
                                const Genq__V1__Job *job)
{
        json_t *root = json_loadb(resp->body, resp->body_len, 0, NULL);
        json_t *param = json_in_string(json_object_get(
                json_object_get(root, "data"), "param"));
        long n = json_code(json_object_get(json_object_get(param, "input"),
                                           "n_frames"));

        json_decref(param);
        json_decref(root);
        if (n > 0)
                return (double)n;
        if (job && job->payload_case == GENQ__V1__JOB__PAYLOAD_VIDEO &&
            job->video)
                return video_seconds(job->video);
        return -1;
}

static enum outcome video_parse_poll(const struct provider_cfg *p,
                                     const Genq__V1__Job *job,
                                     const struct provider_resp *resp,
                                     struct provider_result *res,
                                     struct provider_err *err)
{
        if (poll_common(resp, res, err) != OUTCOME_SUCCESS)
                return err->outcome;
        res->units = requested_seconds(resp, job);
        res->unit = "second";
        return err->outcome;
}

const struct provider_ops provider_kie_image_ops = {
        .name = "kie_image",
        .kind = GENQ__V1__KIND__KIND_IMAGE,
        .flags = PROVIDER_F_ASYNC,
        .build = image_build,
        .parse = parse,
        .build_poll = build_poll,
        .parse_poll = image_parse_poll,
        /* KIE POSTs the recordInfo answer itself when the task ends. */
        .callback_member = "callBackUrl",
        .callback_is_poll = 1,
};

const struct provider_ops provider_kie_video_ops = {
        .name = "kie_video",
        .kind = GENQ__V1__KIND__KIND_VIDEO,
        .flags = PROVIDER_F_ASYNC,
        .build = video_build,
        .parse = parse,
        .build_poll = build_poll,
        .parse_poll = video_parse_poll,
        /* KIE POSTs the recordInfo answer itself when the task ends. */
        .callback_member = "callBackUrl",
        .callback_is_poll = 1,
};
