/**
 * @file wconf.h
 * @brief The worker's configuration: shared settings (gconf), worker
 *        tuning, providers and routes, bound from the YAML file by tables.
 *
 * Providers are a mapping keyed by name (`providers.openai.base_url`);
 * routes map kind and route name to a provider list
 * (`routes.chat.default: [groq, openai]`).  API keys are read here from
 * the environment variables (or files) the config names, and from then
 * on are only referred to by key id (the variable's name).
 */
#ifndef GENQ_WCONF_H
#define GENQ_WCONF_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "gconf.h"
#include "provider.h"

struct wkey {
        char *id;      /**< "env:OPENAI_API_KEY" or "file:/path#2": loggable */
        char *secret;  /**< the key itself: never logged or stored */
};

/** A price: per 1K tokens (chat) or per natural unit.  Exact decimals. */
struct wprice {
        char *model;           /**< model it prices */
        const char *unit;      /**< the provider's price.unit */
        char *in_credits, *out_credits, *in_usd, *out_usd; /**< 1k_tokens */
        char *credits, *usd;                               /**< per unit */
};

struct wprovider {
        char *name;            /**< the mapping key */
        char *adapter;         /**< provider_ops name */
        char *base_url;
        char *model;
        char *api_key_env;     /**< comma list of environment variables */
        char *api_key_file;    /**< file with one key per line */
        char *extra_body;      /**< JSON object merged into requests */
        char *retired;         /**< "YYYY-MM-DD: why"; skipped if set */
        int enabled;
        int64_t timeout_ms;
        int64_t max_retries;   /**< retry_later tries before falling back */
        int64_t max_body_bytes;
        char *voice;           /**< default voice (tts) */
        char *thinking_body;   /**< merged only for jobs asking thinking */
        int64_t context_window;/**< tokens, 0 = unknown */
        int64_t poll_ms;       /**< async: first poll after this */
        int64_t poll_max_ms;   /**< async: poll interval grows up to this */
        int64_t task_timeout_s;/**< async: give up on a task after this */
        /* Prices as exact decimal strings (never billed as zero: a
         * missing price is a config error, an explicit "0" is free). */
        char *price_unit;      /**< 1k_tokens | image | second | character */
        char *price_in_credits, *price_out_credits; /**< 1k_tokens */
        char *price_in_usd, *price_out_usd;         /**< 1k_tokens */
        char *price_credits, *price_usd;            /**< per unit */
        struct wprice price;   /**< for `model` (the provider's default) */
        struct wprice *model_prices; /**< model_prices.<model>: others */
        size_t n_model_prices;
        /* Declared for the fallback policy (enforced there; carried and
         * validated here so the shipped config is complete). */
        int64_t limit_concurrency; /**< 0 = none */
        int64_t limit_rpm;
        int64_t limit_tpm;
        char *quota_unit;      /**< requests|tokens|images|seconds|characters */
        char *quota_limit;     /**< decimal */
        char *quota_period;    /**< day | month */
        char *quota_tz;        /**< IANA zone of the reset, e.g. UTC */
        char *key_choice;      /**< round_robin | least_used */
        char *limits_scope;    /**< provider | key */

        struct wkey *keys;     /**< resolved pool */
        size_t n_keys;
        const struct provider_ops *ops;
        struct provider_cfg pcfg; /**< view handed to the adapter */
};

struct wroute {
        char *kind;            /**< "chat" ... */
        char *name;            /**< "default", "bulk" ... */
        char **providers;      /**< names, in priority order */
        size_t n_providers;
        char *strategy;        /**< priority | weighted | latency */
        int64_t *weights;      /**< weighted: one per provider */
        int64_t min_context;   /**< only providers whose context fits */
        int wait_for_free;     /**< low-priority jobs (priority < 0) wait
                                    for a used-up free quota's reset (up
                                    to their deadline) instead of moving
                                    on to a paid provider */
};

struct wconf {
        struct gconf g;
        char *worker_id;       /**< default host:pid */
        int require_keys;      /**< keyless provider: error, not disabled */
        char *unpriced;        /**< billing.unpriced: refuse | flag */
        char *unknown_submit;  /**< worker.unknown_submit: fail|resubmit */
        int64_t stt_estimate_s;/**< billing.stt_estimate_s */
        char *group_id;
        char *kinds;           /**< comma list of kinds to consume */
        int64_t max_inflight;
        int64_t low_water;
        int64_t lease_s;
        int64_t grace_s;
        int64_t pg_batch;
        int64_t pg_batch_ms;
        int64_t backoff_base_ms;
        int64_t backoff_cap_ms;
        int64_t retry_hint_max_ms;
        int64_t http_max_conns;
        int64_t sweep_interval_s;
        int64_t stats_interval_s;
        int64_t max_result_bytes;
        int64_t max_inline_bytes;
        int64_t max_input_bytes;
        char *artifact_dir;    /**< result media store; "" = no download */
        int64_t media_max_bytes;
        int64_t media_max_files;
        int64_t media_timeout_ms;
        char *media_allow_private; /**< CIDRs media may be fetched from */
        int64_t input_timeout_ms;
        char *cb_listen;       /**< callbacks.listen, "" = no receiver */
        char *cb_public_url;   /**< "" = providers are not asked to call */
        char *cb_secret_env;
        char *cb_secret;       /**< from cb_secret_env; never logged */
        int cb_apply_body;
        char *hook_secret_env;
        char *hook_secret;     /**< NULL = hooks disabled */
        int64_t hook_max_tries;
        int64_t hook_timeout_ms;
        double brk_threshold;  /**< policy.* (see wconf.c's table) */
        int64_t brk_min_samples, brk_window_s, brk_cooldown_s;
        double latency_explore;
        int64_t admit_wait_ms, admit_wait_max_ms, park_s;
        int64_t state_interval_ms;
        int cache_enabled;     /**< cache.enabled */
        int64_t cache_ttl_s;

        struct wprovider *providers;
        size_t n_providers;
        struct wroute *routes;
        size_t n_routes;
};

/**
 * @brief Load and validate everything from \p c (already holding the file
 *        and -X overrides).  @returns 0 or -1 with `file:line: key: ...`.
 * @remark on failure \p w is cleared; free with wconf_clear on success.
 */
int wconf_load(conf_t *c, struct wconf *w, char *errstr, size_t errstr_size);

/** @brief Free everything in \p w. */
void wconf_clear(struct wconf *w);

/** @brief The provider named \p name, or NULL (disabled ones too). */
struct wprovider *wconf_provider(struct wconf *w, const char *name);

/** @brief The price of \p model at \p p (NULL model: the provider's
 *         default), or NULL if it has none. */
const struct wprice *wconf_price(const struct wprovider *p, const char *model);

/** @brief Route \p name of \p kind, or the kind's "default", or NULL. */
const struct wroute *wconf_route(const struct wconf *w, const char *kind,
                                 const char *name);

/** @brief Markdown tables of every setting, for CONFIGURATION.md. */
void wconf_write_docs(void *fp);

#endif
