/* The worker's configuration; see wconf.h. */
#include "wconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"
#include "policy.h"
#include "xmem.h"

#define W(f) offsetof(struct wconf, f)
#define P(f) offsetof(struct wprovider, f)
#define MAX_CHILDREN 256
#define MAX_KEYS 64

static const struct conf_def worker_defs[] = {
        {"worker.id", CONF_STR, W(worker_id), 1, 0, NULL, 0,
         "worker identity in leases and attempts (default host:pid)"},
        {"worker.group_id", CONF_STR, W(group_id), 1, 0, "genq-workers", 0,
         "Kafka consumer group"},
        {"worker.kinds", CONF_STR, W(kinds), 1, 0, "chat,image,video,stt,tts",
         0, "job kinds (topics) this worker consumes"},
        {"billing.unpriced", CONF_STR, W(unpriced), 1, 0, "refuse", 1,
         "a job whose provider has no price for the model it would use: "
         "refuse (that provider is skipped) or flag (run it, record it "
         "unbilled with a note) -- never billed as zero"},
        {"billing.stt_estimate_s", CONF_INT, W(stt_estimate_s), 1, 86400,
         "600", 1, "seconds of audio assumed when reserving budget for an "
         "stt job (its length is unknown before it runs)"},
        {"worker.unknown_submit", CONF_STR, W(unknown_submit), 1, 0, "fail",
         1, "an async submit sent but never answered (the provider may be "
            "generating it): fail the job for review, or resubmit"},
        {"worker.require_keys", CONF_BOOL, W(require_keys), 1, 0, "false",
         0, "a provider without a usable key is an error (default: it is "
            "disabled with a warning)"},
        {"worker.max_inflight", CONF_INT, W(max_inflight), 1, 100000, "2000",
         0, "jobs in flight before partitions are paused"},
        {"worker.low_water", CONF_INT, W(low_water), 0, 100000, "1500", 0,
         "resume paused partitions below this many jobs in flight"},
        {"worker.lease_s", CONF_INT, W(lease_s), 10, 86400, "120", 0,
         "job lease; renewed while running, re-driven by others if it "
         "expires"},
        {"worker.grace_s", CONF_INT, W(grace_s), 0, 3600, "30", 0,
         "on SIGTERM, how long in-flight calls may finish"},
        {"worker.pg_batch", CONF_INT, W(pg_batch), 1, 10000, "128", 0,
         "Postgres writes per transaction, at most"},
        {"worker.pg_batch_ms", CONF_INT, W(pg_batch_ms), 0, 1000, "2", 0,
         "how long a write may wait for its batch to fill"},
        {"worker.backoff_base_ms", CONF_INT, W(backoff_base_ms), 1, 600000,
         "200", 1, "first retry delay ceiling (full jitter)"},
        {"worker.backoff_cap_ms", CONF_INT, W(backoff_cap_ms), 1, 3600000,
         "20000", 1, "largest retry delay ceiling"},
        {"worker.retry_hint_max_ms", CONF_INT, W(retry_hint_max_ms), 0,
         3600000, "30000", 1,
         "a longer Retry-After means fall back instead of waiting"},
        {"worker.http_max_conns", CONF_INT, W(http_max_conns), 1, 100000,
         "10000", 0, "open HTTP connections at most (all providers)"},
        {"worker.sweep_interval_s", CONF_INT, W(sweep_interval_s), 1, 3600,
         "10", 1, "how often expired job leases are looked for"},
        {"worker.stats_interval_s", CONF_INT, W(stats_interval_s), 0, 3600,
         "10", 1, "seconds between stats log lines (0 = off)"},
        {"worker.max_result_bytes", CONF_INT, W(max_result_bytes), 1024,
         1 << 30, "33554432", 0, "provider response size limit"},
        {"worker.max_inline_bytes", CONF_INT, W(max_inline_bytes), 0,
         1 << 30, "8388608", 0,
         "inline media (audio, images) stored in results.data up to this "
         "size; larger is recorded, not stored"},
        {"worker.max_input_bytes", CONF_INT, W(max_input_bytes), 1024,
         1 << 30, "26214400", 0,
         "input media fetched for upload (stt audio) at most"},
        {"worker.artifact_dir", CONF_STR, W(artifact_dir), 1, 0,
         "genq-artifacts", 0,
         "result media (image and video URLs) is downloaded here right "
         "after success; \"\" = keep the provider's URLs only"},
        {"worker.media_max_bytes", CONF_INT, W(media_max_bytes), 1024,
         1e12, "1073741824", 0, "one downloaded media file at most"},
        {"worker.media_max_files", CONF_INT, W(media_max_files), 1, 100,
         "8", 0, "media files downloaded per job at most"},
        {"worker.media_timeout_ms", CONF_INT, W(media_timeout_ms), 100,
         3600000, "300000", 1, "one media download at most"},
        {"worker.media_allow_private", CONF_STR, W(media_allow_private), 1, 0,
         "", 0, "private networks (CIDRs) media may come from; others "
                "are refused (no downloads from internal addresses)"},
        {"worker.input_timeout_ms", CONF_INT, W(input_timeout_ms), 100,
         600000, "60000", 1, "input media fetch timeout"},
        {"callbacks.listen", CONF_STR, W(cb_listen), 1, 0, "", 0,
         "HOST:PORT of the provider callback receiver (KIE callBackUrl, "
         "Replicate and AssemblyAI webhooks); \"\" = off, poll only"},
        {"callbacks.public_url", CONF_STR, W(cb_public_url), 1, 0, "", 0,
         "base URL providers reach the receiver at (e.g. "
         "https://genq.example.com); \"\" = do not ask for callbacks"},
        {"callbacks.secret_env", CONF_STR, W(cb_secret_env), 1, 0,
         "GENQ_CALLBACK_SECRET", 0,
         "environment variable with the secret that signs callback URLs"},
        {"callbacks.apply_body", CONF_BOOL, W(cb_apply_body), 1, 0, "true",
         1, "apply a verified callback's body as a poll answer (false: "
            "a callback only makes the task be polled at once)"},
        {"hooks.secret_env", CONF_STR, W(hook_secret_env), 1, 0,
         "GENQ_HOOK_SECRET", 0,
         "environment variable with the secret that signs completion "
         "hooks (Job.callback_url); unset = hooks are not sent"},
        {"hooks.max_tries", CONF_INT, W(hook_max_tries), 1, 100, "6", 1,
         "deliveries of one completion hook at most (backoff 1 s, 2 s, "
         "4 s ...)"},
        {"hooks.timeout_ms", CONF_INT, W(hook_timeout_ms), 100, 600000,
         "10000", 1, "one hook delivery at most"},
        {"policy.breaker_threshold", CONF_DOUBLE, W(brk_threshold), 0, 1,
         "0.10", 1, "a provider's circuit opens when its error rate over "
                    "the window passes this"},
        {"policy.breaker_min_samples", CONF_INT, W(brk_min_samples), 1,
         100000, "20", 1, "calls in the window before the circuit may open "
                          "(one transient error never opens it)"},
        {"policy.breaker_window_s", CONF_INT, W(brk_window_s), 1, 86400,
         "60", 1, "the circuit breaker's sliding window"},
        {"policy.breaker_cooldown_s", CONF_INT, W(brk_cooldown_s), 1, 86400,
         "30", 1, "an open circuit lets one probe call through after this"},
        {"policy.latency_explore", CONF_DOUBLE, W(latency_explore), 0, 1,
         "0.05", 1, "latency routes: share of jobs that try another "
                    "provider first, so every latency stays known"},
        {"policy.admit_wait_ms", CONF_INT, W(admit_wait_ms), 0, 3600000,
         "2000", 1, "a shared limit (concurrency, rpm, tpm) that frees up "
                    "within this is waited for; a longer wait moves on to "
                    "the next provider (the last one is waited for)"},
        {"policy.admit_wait_max_ms", CONF_INT, W(admit_wait_max_ms), 0,
         86400000, "120000", 1, "longest a job waits for one provider's "
                                "shared limits in all"},
        {"policy.park_s", CONF_INT, W(park_s), 1, 86400, "300", 1,
         "a key whose provider says its quota or balance is gone is left "
         "alone this long (free quotas: until their reset)"},
        {"cache.enabled", CONF_BOOL, W(cache_enabled), 1, 0, "false", 1,
         "answer deterministic requests (chat with temperature 0) that were "
         "answered before from the response cache: no provider call, not "
         "billed; per tenant"},
        {"cache.ttl_s", CONF_INT, W(cache_ttl_s), 1, 31536000, "86400", 1,
         "how long a cached answer is served"},
        {"policy.state_interval_ms", CONF_INT, W(state_interval_ms), 100,
         600000, "2000", 1, "how often operator overrides and shared key "
                            "states are read from Postgres"},
        {NULL, CONF_END, 0, 0, 0, NULL, 0, NULL},
};

static const struct conf_def provider_defs[] = {
        {"adapter", CONF_STR, P(adapter), 1, 0, NULL, 0,
         "API family (openai_chat, ...)"},
        {"base_url", CONF_STR, P(base_url), 1, 0, NULL, 0,
         "base URL, e.g. https://api.openai.com/v1"},
        {"model", CONF_STR, P(model), 1, 0, NULL, 0,
         "default model when the job gives none"},
        {"api_key_env", CONF_STR, P(api_key_env), 1, 0, NULL, 0,
         "environment variables holding keys (comma list = key pool)"},
        {"api_key_file", CONF_STR, P(api_key_file), 1, 0, NULL, 0,
         "file with one key per line (alternative to api_key_env)"},
        {"extra_body", CONF_STR, P(extra_body), 1, 0, NULL, 0,
         "JSON object merged into every request body"},
        {"retired", CONF_STR, P(retired), 1, 0, NULL, 0,
         "\"YYYY-MM-DD: reason\": the service is gone; never called"},
        {"enabled", CONF_BOOL, P(enabled), 1, 0, "true", 1,
         "false = skip this provider"},
        {"timeout_ms", CONF_INT, P(timeout_ms), 100, 3600000, "60000", 1,
         "whole-request timeout"},
        {"max_retries", CONF_INT, P(max_retries), 0, 100, "2", 1,
         "retry_later tries on this provider before falling back"},
        {"thinking_body", CONF_STR, P(thinking_body), 1, 0, NULL, 0,
         "JSON object merged into the request only when the job asks for "
         "thinking (seeds: zhipu thinking, NVIDIA chat_template_kwargs)"},
        {"context_window", CONF_INT, P(context_window), 0, 100000000, "0",
         0, "largest prompt in tokens (0 = unknown); routes with "
            "min_context use it"},
        {"voice", CONF_STR, P(voice), 1, 0, NULL, 0,
         "default voice (tts) when the job names none"},
        {"poll_ms", CONF_INT, P(poll_ms), 10, 600000, "2000", 1,
         "async tasks: first poll after this"},
        {"poll_max_ms", CONF_INT, P(poll_max_ms), 10, 3600000, "15000", 1,
         "async tasks: the poll interval grows up to this"},
        {"task_timeout_s", CONF_INT, P(task_timeout_s), 1, 86400, "900", 1,
         "async tasks: give up (and fall back) after this"},
        {"price.unit", CONF_STR, P(price_unit), 1, 0, NULL, 0,
         "1k_tokens (chat), image, second (video, stt) or character "
         "(tts); default by kind"},
        {"price.input_credits", CONF_STR, P(price_in_credits), 1, 0, NULL, 0,
         "1k_tokens: tenant credits per 1K input tokens"},
        {"price.output_credits", CONF_STR, P(price_out_credits), 1, 0, NULL,
         0, "1k_tokens: tenant credits per 1K output tokens"},
        {"price.input_usd", CONF_STR, P(price_in_usd), 1, 0, NULL, 0,
         "1k_tokens: provider USD per 1K input tokens"},
        {"price.output_usd", CONF_STR, P(price_out_usd), 1, 0, NULL, 0,
         "1k_tokens: provider USD per 1K output tokens"},
        {"price.credits", CONF_STR, P(price_credits), 1, 0, NULL, 0,
         "other units: tenant credits per unit"},
        {"price.usd", CONF_STR, P(price_usd), 1, 0, NULL, 0,
         "other units: provider USD per unit"},
        {"limits.concurrency", CONF_INT, P(limit_concurrency), 0, 100000,
         "0", 1, "calls in flight at most, all workers together (0 = none)"},
        {"limits.rpm", CONF_INT, P(limit_rpm), 0, 10000000, "0", 1,
         "requests per minute, all workers together (0 = none)"},
        {"limits.tpm", CONF_INT, P(limit_tpm), 0, 1000000000, "0", 1,
         "tokens per minute, all workers together (0 = none)"},
        {"free_quota.unit", CONF_STR, P(quota_unit), 1, 0, NULL, 0,
         "requests, tokens, images, seconds or characters"},
        {"free_quota.limit", CONF_STR, P(quota_limit), 1, 0, NULL, 0,
         "free units per period"},
        {"free_quota.period", CONF_STR, P(quota_period), 1, 0, NULL, 0,
         "day or month"},
        {"free_quota.time_zone", CONF_STR, P(quota_tz), 1, 0, "UTC", 0,
         "zone whose midnight resets the quota"},
        {"limits_scope", CONF_STR, P(limits_scope), 1, 0, "provider", 1,
         "limits and free quota count for the whole provider (all its "
         "keys together) or for each key on its own: provider or key"},
        {"key_choice", CONF_STR, P(key_choice), 1, 0, "round_robin", 1,
         "how a key of the pool is chosen: round_robin or least_used "
         "(fewest calls in flight, then fewest calls)"},
        {NULL, CONF_END, 0, 0, 0, NULL, 0, NULL},
};

#define MP(f) offsetof(struct wprice, f)

static const struct conf_def model_price_defs[] = {
        {"input_credits", CONF_STR, MP(in_credits), 1, 0, NULL, 0,
         "1k_tokens: credits per 1K input tokens"},
        {"output_credits", CONF_STR, MP(out_credits), 1, 0, NULL, 0,
         "1k_tokens: credits per 1K output tokens"},
        {"input_usd", CONF_STR, MP(in_usd), 1, 0, NULL, 0,
         "1k_tokens: USD per 1K input tokens"},
        {"output_usd", CONF_STR, MP(out_usd), 1, 0, NULL, 0,
         "1k_tokens: USD per 1K output tokens"},
        {"credits", CONF_STR, MP(credits), 1, 0, NULL, 0,
         "other units: credits per unit"},
        {"usd", CONF_STR, MP(usd), 1, 0, NULL, 0,
         "other units: USD per unit"},
        {NULL, CONF_END, 0, 0, 0, NULL, 0, NULL},
};

/* ---- helpers ------------------------------------------------------------ */

/* Split "a, b,c" into a malloc'd NULL-terminated array of trimmed words. */
static char **split_list(const char *s, size_t *np)
{
        char **v = NULL;
        size_t n = 0;

        while (s && *s) {
                size_t len;

                while (*s == ',' || isspace((unsigned char)*s))
                        s++;
                len = strcspn(s, ",");
                while (len > 0 && isspace((unsigned char)s[len - 1]))
                        len--;
                if (len > 0) {
                        v = xrealloc(v, (n + 2) * sizeof(*v));
                        v[n++] = xstrndup(s, len);
                        v[n] = NULL;
                }
                s += strcspn(s, ",");
        }
        *np = n;
        return v;
}

static void free_list(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* Exact decimal: digits with an optional fraction, nothing else. */
static int decimal_ok(const char *s)
{
        int digits = 0, dot = 0;

        for (; s && *s; s++) {
                if (isdigit((unsigned char)*s))
                        digits++;
                else if (*s == '.' && !dot)
                        dot = 1;
                else
                        return 0;
        }
        return digits > 0;
}

static int where_err(conf_t *c, const char *key, char *e, size_t es,
                     const char *msg)
{
        const char *where = conf_origin(c, key);

        snprintf(e, es, "%s: %s: %s", where ? where : "config", key, msg);
        return -1;
}

/* ---- keys --------------------------------------------------------------- */

static void add_key(struct wprovider *p, const char *id, const char *secret)
{
        p->keys = xrealloc(p->keys, (p->n_keys + 1) * sizeof(*p->keys));
        p->keys[p->n_keys].id = xstrdup(id);
        p->keys[p->n_keys].secret = xstrdup(secret);
        p->n_keys++;
}

/* Keys from the named variables.  An unset variable: with
 * worker.require_keys an error, else that key is left out (a provider
 * left with no key is disabled by the caller, with a warning). */
static int keys_from_env(conf_t *c, const struct wconf *w,
                         struct wprovider *p, char *e, size_t es)
{
        char key[300], id[300], msg[300];
        size_t n;
        char **names = split_list(p->api_key_env, &n);
        int rc = 0;

        snprintf(key, sizeof(key), "providers.%s.api_key_env", p->name);
        for (size_t i = 0; i < n && rc == 0; i++) {
                const char *v = getenv(names[i]);

                if (v && *v) {
                        snprintf(id, sizeof(id), "env:%s", names[i]);
                        add_key(p, id, v);
                        continue;
                }
                snprintf(msg, sizeof(msg),
                         "environment variable %s is not set", names[i]);
                if (w->require_keys)
                        rc = where_err(c, key, e, es, msg);
                else
                        log_warn("conf", "provider %s: %s", p->name, msg);
        }
        free_list(names, n);
        return rc;
}

static int keys_from_file(conf_t *c, struct wprovider *p, char *e, size_t es)
{
        char key[300], id[600], line[4096];
        FILE *fp = fopen(p->api_key_file, "r");
        int lineno = 0;

        snprintf(key, sizeof(key), "providers.%s.api_key_file", p->name);
        if (!fp)
                return where_err(c, key, e, es, "cannot open the key file");
        while (fgets(line, sizeof(line), fp) && p->n_keys < MAX_KEYS) {
                line[strcspn(line, "\r\n")] = '\0';
                lineno++;
                if (!line[0] || line[0] == '#')
                        continue;
                snprintf(id, sizeof(id), "file:%s#%d", p->api_key_file,
                         lineno);
                add_key(p, id, line);
        }
        fclose(fp);
        explicit_bzero(line, sizeof(line));
        return 0;
}

/* ---- providers ---------------------------------------------------------- */

static const char *default_unit(Genq__V1__Kind kind)
{
        switch (kind) {
        case GENQ__V1__KIND__KIND_CHAT:
                return "1k_tokens";
        case GENQ__V1__KIND__KIND_IMAGE:
                return "image";
        case GENQ__V1__KIND__KIND_TTS:
                return "character";
        default:
                return "second";
        }
}

static int check_decimal(conf_t *c, const char *prefix, const char *name,
                         const char *val, char *e, size_t es)
{
        char key[400];

        snprintf(key, sizeof(key), "%s%s", prefix, name);
        if (!val)
                return where_err(c, key, e, es,
                                 "required: a job is never billed as zero "
                                 "by omission (write \"0\" for a free "
                                 "provider)");
        if (!decimal_ok(val))
                return where_err(c, key, e, es,
                                 "must be a plain decimal like 0.15");
        return 0;
}

/* A complete price for its unit: four token prices, or two unit prices. */
static int check_price(conf_t *c, const char *prefix, const struct wprice *w,
                       char *e, size_t es)
{
        if (!strcmp(w->unit, "1k_tokens"))
                return check_decimal(c, prefix, "input_credits",
                                     w->in_credits, e, es) ||
                       check_decimal(c, prefix, "output_credits",
                                     w->out_credits, e, es) ||
                       check_decimal(c, prefix, "input_usd", w->in_usd, e,
                                     es) ||
                       check_decimal(c, prefix, "output_usd", w->out_usd, e,
                                     es);
        return check_decimal(c, prefix, "credits", w->credits, e, es) ||
               check_decimal(c, prefix, "usd", w->usd, e, es);
}

/* Chat is priced per 1K input and output tokens; every other kind per
 * natural unit.  The unit must suit the adapter's kind. */
static int check_prices(conf_t *c, struct wprovider *p, char *e, size_t es)
{
        static const char *units[] = {"1k_tokens", "image", "second",
                                      "character"};
        char key[300], msg[200];
        size_t u;

        if (!p->price_unit)
                p->price_unit = xstrdup(default_unit(p->ops->kind));
        snprintf(key, sizeof(key), "providers.%s.price.unit", p->name);
        for (u = 0; u < 4 && strcmp(p->price_unit, units[u]); u++)
                ;
        if (u == 4 || (u == 0) != (p->ops->kind == GENQ__V1__KIND__KIND_CHAT)) {
                snprintf(msg, sizeof(msg), "\"%s\" does not price %s jobs "
                                           "(expected %s)",
                         p->price_unit, codec_kind_name(p->ops->kind),
                         default_unit(p->ops->kind));
                return where_err(c, key, e, es, msg);
        }
        p->price = (struct wprice){p->model, p->price_unit,
                                   p->price_in_credits, p->price_out_credits,
                                   p->price_in_usd, p->price_out_usd,
                                   p->price_credits, p->price_usd};
        snprintf(key, sizeof(key), "providers.%s.price.", p->name);
        return check_price(c, key, &p->price, e, es);
}

/* model_prices.<model>: prices of the other models a job may name. */
static int load_model_prices(conf_t *c, struct wprovider *p, char *e,
                             size_t es)
{
        const char *names[MAX_CHILDREN];
        char prefix[400];
        size_t n;

        snprintf(prefix, sizeof(prefix), "providers.%s.model_prices.",
                 p->name);
        n = conf_children(c, prefix, names, MAX_CHILDREN);
        p->model_prices = xcalloc(n ? n : 1, sizeof(*p->model_prices));
        for (size_t i = 0; i < n; i++) {
                struct wprice *w = &p->model_prices[p->n_model_prices++];

                snprintf(prefix, sizeof(prefix),
                         "providers.%s.model_prices.%s.", p->name, names[i]);
                w->model = conf_unescape(xstrdup(names[i]));
                w->unit = p->price_unit;
                if (conf_bind(c, prefix, model_price_defs, w, e, es) ||
                    check_price(c, prefix, w, e, es))
                        return -1;
        }
        return 0;
}

const struct wprice *wconf_price(const struct wprovider *p, const char *model)
{
        if (!model || (p->model && !strcmp(model, p->model)))
                return &p->price;
        for (size_t i = 0; i < p->n_model_prices; i++)
                if (!strcmp(p->model_prices[i].model, model))
                        return &p->model_prices[i];
        return NULL;
}

static int check_quota(conf_t *c, struct wprovider *p, char *e, size_t es)
{
        static const char *units[] = {"requests", "tokens", "images",
                                      "seconds", "characters", NULL};
        char key[300];
        const char *const *u = units;

        snprintf(key, sizeof(key), "providers.%s.key_choice", p->name);
        if (policy_key_choice_parse(p->key_choice) < 0)
                return where_err(c, key, e, es,
                                 "must be round_robin or least_used");
        snprintf(key, sizeof(key), "providers.%s.limits_scope", p->name);
        if (strcmp(p->limits_scope, "provider") &&
            strcmp(p->limits_scope, "key"))
                return where_err(c, key, e, es, "must be provider or key");
        if (!p->quota_unit && !p->quota_limit && !p->quota_period)
                return 0;
        snprintf(key, sizeof(key), "providers.%s.free_quota", p->name);
        while (*u && (!p->quota_unit || strcmp(*u, p->quota_unit)))
                u++;
        if (!*u)
                return where_err(c, key, e, es,
                                 "unit must be requests, tokens, images, "
                                 "seconds or characters");
        if (!p->quota_limit || !decimal_ok(p->quota_limit))
                return where_err(c, key, e, es,
                                 "limit must be a plain decimal");
        if (!p->quota_period || (strcmp(p->quota_period, "day") &&
                                 strcmp(p->quota_period, "month")))
                return where_err(c, key, e, es, "period must be day or month");
        return 0;
}

static int check_provider(conf_t *c, const struct wconf *w,
                          struct wprovider *p, char *e, size_t es)
{
        char key[300], msg[300];

        if (p->retired) {
                /* The service is gone: nothing to call, price or key. */
                log_info("conf", "provider %s is retired (%s): skipped",
                         p->name, p->retired);
                p->enabled = 0;
                p->ops = p->adapter ? provider_ops_find(p->adapter) : NULL;
                return 0;
        }
        snprintf(key, sizeof(key), "providers.%s.adapter", p->name);
        if (!p->adapter)
                return where_err(c, key, e, es, "required");
        p->ops = provider_ops_find(p->adapter);
        if (!p->ops) {
                snprintf(msg, sizeof(msg), "unknown adapter \"%s\"",
                         p->adapter);
                return where_err(c, key, e, es, msg);
        }
        snprintf(key, sizeof(key), "providers.%s.base_url", p->name);
        if (!p->base_url || (strncmp(p->base_url, "http://", 7) &&
                             strncmp(p->base_url, "https://", 8)))
                return where_err(c, key, e, es,
                                 "required, an http:// or https:// URL");
        if (check_prices(c, p, e, es) || load_model_prices(c, p, e, es) ||
            check_quota(c, p, e, es))
                return -1;
        if (!p->enabled)
                return 0; /* never called: no keys needed */
        snprintf(key, sizeof(key), "providers.%s", p->name);
        if (!p->api_key_env && !p->api_key_file)
                return where_err(c, key, e, es,
                                 "needs api_key_env or api_key_file");
        if (p->api_key_env && keys_from_env(c, w, p, e, es))
                return -1;
        if (p->api_key_file && keys_from_file(c, p, e, es))
                return -1;
        if (p->n_keys == 0) {
                if (w->require_keys)
                        return where_err(c, key, e, es, "no usable key");
                log_warn("conf", "provider %s has no key: disabled",
                         p->name);
                p->enabled = 0;
        }
        return 0;
}

static int load_provider(conf_t *c, struct wconf *w, struct wprovider *p,
                         const char *name, char *e, size_t es)
{
        char prefix[300];

        p->name = xstrdup(name);
        snprintf(prefix, sizeof(prefix), "providers.%s.", name);
        if (conf_bind(c, prefix, provider_defs, p, e, es) ||
            check_provider(c, w, p, e, es))
                return -1;
        p->pcfg = (struct provider_cfg){
                .name = p->name,
                .adapter = p->adapter,
                .base_url = p->base_url,
                .model = p->model,
                .extra_body = p->extra_body,
                .thinking_body = p->thinking_body,
                .voice = p->voice,
                .max_body_bytes = (size_t)w->max_result_bytes,
        };
        return 0;
}

static void clear_provider(struct wprovider *p)
{
        for (size_t i = 0; i < p->n_model_prices; i++) {
                free(p->model_prices[i].model);
                conf_free_struct(model_price_defs, &p->model_prices[i]);
        }
        free(p->model_prices);
        for (size_t i = 0; i < p->n_keys; i++) {
                explicit_bzero(p->keys[i].secret, strlen(p->keys[i].secret));
                free(p->keys[i].secret);
                free(p->keys[i].id);
        }
        free(p->keys);
        conf_free_struct(provider_defs, p);
        free(p->name);
}

static int load_providers(conf_t *c, struct wconf *w, char *e, size_t es)
{
        const char *names[MAX_CHILDREN];
        size_t n = conf_children(c, "providers.", names, MAX_CHILDREN);

        w->providers = xcalloc(n, sizeof(*w->providers));
        for (size_t i = 0; i < n; i++) {
                w->n_providers++;
                if (load_provider(c, w, &w->providers[i], names[i], e, es))
                        return -1;
        }
        return 0;
}

/* ---- routes ------------------------------------------------------------- */

/* weights: one whole number per provider, at least one above zero. */
static int load_weights(conf_t *c, struct wroute *r, const char *key,
                        const char *val, char *e, size_t es)
{
        size_t n;
        char **w = split_list(val, &n);
        int64_t sum = 0;
        int rc = 0;

        if (n != r->n_providers)
                rc = where_err(c, key, e, es,
                               "needs one weight per provider");
        r->weights = xcalloc(n ? n : 1, sizeof(*r->weights));
        for (size_t i = 0; i < n && rc == 0; i++) {
                char *end;
                long long v = strtoll(w[i], &end, 10);

                if (*end || end == w[i] || v < 0 || v > 1000000)
                        rc = where_err(c, key, e, es,
                                       "weights are whole numbers 0..1000000");
                r->weights[i] = v;
                sum += v;
        }
        if (rc == 0 && sum == 0)
                rc = where_err(c, key, e, es, "every weight is zero");
        free_list(w, n);
        return rc;
}

static int route_strategy(conf_t *c, struct wroute *r, const char *base,
                          char *e, size_t es)
{
        static const char *strategies[] = {"priority", "weighted", "latency",
                                           NULL};
        char key[400];
        const char *v;
        const char *const *st = strategies;

        snprintf(key, sizeof(key), "%s.strategy", base);
        v = conf_get(c, key);
        r->strategy = xstrdup(v ? v : "priority");
        while (*st && strcmp(*st, r->strategy))
                st++;
        if (!*st)
                return where_err(c, key, e, es,
                                 "priority, weighted or latency");
        snprintf(key, sizeof(key), "%s.weights", base);
        v = conf_get(c, key);
        if (!strcmp(r->strategy, "weighted") && !v)
                return where_err(c, key, e, es,
                                 "a weighted route needs weights");
        if (v && load_weights(c, r, key, v, e, es))
                return -1;
        snprintf(key, sizeof(key), "%s.min_context", base);
        v = conf_get(c, key);
        if (v && (!isdigit((unsigned char)*v) || atoll(v) < 0 ||
                  strspn(v, "0123456789") != strlen(v)))
                return where_err(c, key, e, es, "a number of tokens");
        r->min_context = v ? atoll(v) : 0;
        snprintf(key, sizeof(key), "%s.wait_for_free", base);
        v = conf_get(c, key);
        if (v && strcmp(v, "true") && strcmp(v, "false"))
                return where_err(c, key, e, es, "true or false");
        r->wait_for_free = v && !strcmp(v, "true");
        return 0;
}

/* A route is a provider list (priority order), or a mapping with
 * providers, strategy, weights and min_context. */
static int load_route(conf_t *c, struct wconf *w, const char *kind,
                      const char *name, char *e, size_t es)
{
        char key[300], lkey[320], msg[300];
        struct wroute *r;
        const char *val;

        snprintf(key, sizeof(key), "routes.%s.%s", kind, name);
        snprintf(lkey, sizeof(lkey), "%s.providers", key);
        val = conf_get(c, key);
        if (!val)
                val = conf_get(c, lkey);
        if (!val)
                return where_err(c, key, e, es, "expected a provider list");
        w->routes = xrealloc(w->routes, (w->n_routes + 1) * sizeof(*w->routes));
        r = &w->routes[w->n_routes++];
        memset(r, 0, sizeof(*r));
        r->kind = xstrdup(kind);
        r->name = xstrdup(name);
        r->providers = split_list(val, &r->n_providers);
        if (r->n_providers == 0)
                return where_err(c, key, e, es, "empty provider list");
        for (size_t i = 0; i < r->n_providers; i++) {
                struct wprovider *p = wconf_provider(w, r->providers[i]);

                if (!p) {
                        snprintf(msg, sizeof(msg), "unknown provider \"%s\"",
                                 r->providers[i]);
                        return where_err(c, key, e, es, msg);
                }
                if (p->retired) {
                        snprintf(msg, sizeof(msg),
                                 "provider \"%s\" is retired (%s)", p->name,
                                 p->retired);
                        return where_err(c, key, e, es, msg);
                }
                if (p->ops->kind != codec_kind_parse(kind)) {
                        snprintf(msg, sizeof(msg),
                                 "provider \"%s\" (adapter %s) does not serve "
                                 "%s jobs",
                                 p->name, p->adapter, kind);
                        return where_err(c, key, e, es, msg);
                }
        }
        return route_strategy(c, r, key, e, es);
}

static int load_routes(conf_t *c, struct wconf *w, char *e, size_t es)
{
        const char *kinds[16], *names[MAX_CHILDREN];
        size_t nk = conf_children(c, "routes.", kinds, 16);
        char prefix[64], key[200];

        for (size_t k = 0; k < nk; k++) {
                size_t nn;

                snprintf(prefix, sizeof(prefix), "routes.%s.", kinds[k]);
                nn = conf_children(c, prefix, names, MAX_CHILDREN);
                if (codec_kind_parse(kinds[k]) ==
                    GENQ__V1__KIND__KIND_UNSPECIFIED) {
                        /* The kind holds no value of its own: name the
                         * line of its first route. */
                        const char *where;

                        snprintf(key, sizeof(key), "routes.%s.%s", kinds[k],
                                 nn ? names[0] : "");
                        where = conf_origin(c, key);
                        snprintf(e, es, "%s: routes.%s: not a job kind "
                                        "(chat, image, video, stt, tts)",
                                 where ? where : "config", kinds[k]);
                        return -1;
                }
                for (size_t i = 0; i < nn; i++)
                        if (load_route(c, w, kinds[k], names[i], e, es))
                                return -1;
        }
        return 0;
}

/* ---- top level ---------------------------------------------------------- */

static char *secret_from(const char *env)
{
        const char *v = env && *env ? getenv(env) : NULL;

        return v && *v ? xstrdup(v) : NULL;
}

static void wipe(char *s)
{
        if (s)
                explicit_bzero(s, strlen(s));
        free(s);
}

/* Callback and hook secrets come from the environment only, like API
 * keys.  A callback receiver or public URL without its secret is a
 * configuration error: unsigned callback URLs could be forged. */
static int load_secrets(conf_t *c, struct wconf *w, char *errstr,
                        size_t errstr_size)
{
        w->cb_secret = secret_from(w->cb_secret_env);
        w->hook_secret = secret_from(w->hook_secret_env);
        if ((*w->cb_listen || *w->cb_public_url) && !w->cb_secret) {
                const char *o = conf_origin(c, *w->cb_listen
                                                       ? "callbacks.listen"
                                                       : "callbacks.public_url");

                snprintf(errstr, errstr_size,
                         "%s: callbacks: the environment variable %s (callbacks."
                         "secret_env) is not set; callbacks need a secret",
                         o ? o : "config", w->cb_secret_env);
                return -1;
        }
        return 0;
}

static void default_worker_id(struct wconf *w)
{
        char host[128], id[200];

        if (w->worker_id)
                return;
        if (gethostname(host, sizeof(host)))
                snprintf(host, sizeof(host), "host");
        host[sizeof(host) - 1] = '\0';
        snprintf(id, sizeof(id), "%s:%d", host, (int)getpid());
        w->worker_id = xstrdup(id);
}

int wconf_load(conf_t *c, struct wconf *w, char *errstr, size_t errstr_size)
{
        memset(w, 0, sizeof(*w));
        if (gconf_bind(c, &w->g, errstr, errstr_size) ||
            conf_bind(c, "", worker_defs, w, errstr, errstr_size) ||
            load_providers(c, w, errstr, errstr_size) ||
            load_routes(c, w, errstr, errstr_size))
                goto err_clear;
        if (w->low_water >= w->max_inflight)
                w->low_water = w->max_inflight * 3 / 4;
        if (strcmp(w->unknown_submit, "fail") &&
            strcmp(w->unknown_submit, "resubmit")) {
                snprintf(errstr, errstr_size, "%s: worker.unknown_submit: "
                                              "\"%s\" is not fail or resubmit",
                         conf_origin(c, "worker.unknown_submit")
                                 ? conf_origin(c, "worker.unknown_submit")
                                 : "config",
                         w->unknown_submit);
                goto err_clear;
        }
        if (strcmp(w->unpriced, "refuse") && strcmp(w->unpriced, "flag")) {
                snprintf(errstr, errstr_size, "%s: billing.unpriced: \"%s\" "
                                              "is not refuse or flag",
                         conf_origin(c, "billing.unpriced")
                                 ? conf_origin(c, "billing.unpriced")
                                 : "config",
                         w->unpriced);
                goto err_clear;
        }
        if (load_secrets(c, w, errstr, errstr_size))
                goto err_clear;
        default_worker_id(w);
        return 0;
err_clear:
        wconf_clear(w);
        return -1;
}

void wconf_clear(struct wconf *w)
{
        for (size_t i = 0; i < w->n_providers; i++)
                clear_provider(&w->providers[i]);
        free(w->providers);
        for (size_t i = 0; i < w->n_routes; i++) {
                free(w->routes[i].kind);
                free(w->routes[i].name);
                free(w->routes[i].strategy);
                free(w->routes[i].weights);
                free_list(w->routes[i].providers, w->routes[i].n_providers);
        }
        free(w->routes);
        wipe(w->cb_secret);
        wipe(w->hook_secret);
        conf_free_struct(worker_defs, w);
        gconf_clear(&w->g);
        memset(w, 0, sizeof(*w));
}

struct wprovider *wconf_provider(struct wconf *w, const char *name)
{
        for (size_t i = 0; i < w->n_providers; i++)
                if (!strcmp(w->providers[i].name, name))
                        return &w->providers[i];
        return NULL;
}

const struct wroute *wconf_route(const struct wconf *w, const char *kind,
                                 const char *name)
{
        const struct wroute *dflt = NULL;

        for (size_t i = 0; i < w->n_routes; i++) {
                const struct wroute *r = &w->routes[i];

                if (strcmp(r->kind, kind))
                        continue;
                if (name && *name && !strcmp(r->name, name))
                        return r;
                if (!strcmp(r->name, "default"))
                        dflt = r;
        }
        return dflt;
}

void wconf_write_docs(void *fp)
{
        fputs("# genq configuration\n\nGenerated by `make docs` from the "
              "tables in common/gconf.c and worker/wconf.c.  Every key can "
              "also be set in the environment as GENQ_<KEY> (dots become "
              "underscores, upper case) or with `-X key=value`.  Keys under "
              "`kafka.` that are not listed pass straight to librdkafka.  "
              "\"reloadable\" marks what a configuration reload may change "
              "without a restart (the reload itself arrives with the "
              "fallback-policy work; today every change needs a restart)."
              "\n",
              fp);
        conf_write_docs("Shared settings", gconf_defs, fp);
        conf_write_docs("Worker", worker_defs, fp);
        conf_write_docs("Providers (`providers.<name>.<key>`)",
                        provider_defs, fp);
        conf_write_docs("Model prices (`providers.<name>.model_prices."
                        "<model>.<key>`)",
                        model_price_defs, fp);
        fputs("\n## Routes\n\n`routes.<kind>.<name>: [provider, ...]` — "
              "providers tried in order; `default` is used when a job names "
              "no route.\n",
              fp);
}
