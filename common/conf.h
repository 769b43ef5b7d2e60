/**
 * @file conf.h
 * @brief Configuration: a YAML file flattened to dotted keys, bound to
 *        structs through tables (STYLE rule 9).
 *
 * The file is YAML.  Nested mappings become dotted keys
 * (`kafka: {brokers: x}` -> `kafka.brokers`); a sequence of scalars becomes
 * one comma-separated value.  Each value remembers its file and line, so
 * every error reads `file:line: key: message`.
 *
 * Precedence, lowest first: table default, file, environment
 * (`GENQ_` + key upper-cased with '.' -> '_', e.g. GENQ_KAFKA_BROKERS),
 * then `-X key=value` on the command line.
 *
 * Secrets never live here: a key's *name* may (e.g. `api_key_env:
 * OPENAI_API_KEY`), its value comes from that environment variable or file.
 */
#ifndef GENQ_CONF_H
#define GENQ_CONF_H

#include <stddef.h>
#include <stdint.h>

typedef struct conf_s conf_t;

/** A '.' inside a YAML key (not a path separator) is kept as this byte in
 *  flattened keys and names from conf_children(); conf_unescape() turns
 *  it back for display. */
#define CONF_DOT '\x1f'

/** @brief Turn CONF_DOT back into '.', in place. @returns \p s. */
char *conf_unescape(char *s);

enum conf_type {
        CONF_STR,     /**< char * (owned by the struct, freed by conf_free_struct) */
        CONF_INT,     /**< int64_t */
        CONF_DOUBLE,  /**< double */
        CONF_BOOL,    /**< int: true/false/yes/no/on/off/1/0 */
        CONF_END,     /**< table terminator */
};

/** One row of a binding table. */
struct conf_def {
        const char *name;     /**< key relative to the bound prefix */
        enum conf_type type;  /**< how to parse and store it */
        size_t offset;        /**< offsetof() into the target struct */
        double min, max;      /**< range for INT/DOUBLE (min > max: none) */
        const char *defval;   /**< default as text, NULL = none (STR: NULL) */
        int reloadable;       /**< 1 = applied again on SIGHUP */
        const char *desc;     /**< one line for CONFIGURATION.md */
};

/** @brief An empty configuration (used when no file is given). */
conf_t *conf_new(void);

/**
 * @brief Parse a YAML file.
 * @returns the configuration or NULL with `file:line: message` in errstr.
 */
conf_t *conf_load(const char *path, char *errstr, size_t errstr_size);

/**
 * @brief Parse a YAML file into \p c, its keys overriding those already
 *        there (configuration layers: a base file, then an overlay).
 * @returns 0 or -1 with `file:line: message` in errstr.
 */
int conf_load_into(conf_t *c, const char *path, char *errstr,
                   size_t errstr_size);

/** @brief Free. NULL-safe. */
void conf_destroy(conf_t *c);

/**
 * @brief Set \p key from a `-X key=value` argument (overrides file and env).
 * @returns 0, or -1 if \p kv has no '='.
 */
int conf_set_arg(conf_t *c, const char *kv, char *errstr, size_t errstr_size);

/**
 * @brief Fill \p base from the keys under \p prefix ("" or "kafka." or
 *        "providers.openai.") by table \p defs.  Marks the keys it used.
 * @returns 0, or -1 with `file:line: key: message` in errstr.
 */
int conf_bind(conf_t *c, const char *prefix, const struct conf_def *defs,
              void *base, char *errstr, size_t errstr_size);

/** @brief Free the CONF_STR fields that conf_bind set in \p base. */
void conf_free_struct(const struct conf_def *defs, void *base);

/**
 * @brief Names directly below \p prefix ("providers." -> "openai", "groq"),
 *        in file order, without duplicates.
 * @returns count; \p names[i] are borrowed, valid until conf_destroy.
 */
size_t conf_children(conf_t *c, const char *prefix, const char **names,
                     size_t max);

/** @brief Raw value of \p key (marks it used), or NULL. Borrowed. */
const char *conf_get(conf_t *c, const char *key);

/**
 * @brief Call \p cb for every key under \p prefix that no conf_bind or
 *        conf_get took (e.g. "kafka." passthrough to rd_kafka_conf_set),
 *        marking them used.  May be called again: same keys, same order.
 * @returns the first non-zero \p cb return, with errstr filled by it.
 */
int conf_each_unused(conf_t *c, const char *prefix,
                     int (*cb)(void *opaque, const char *key_rest,
                               const char *val, const char *where,
                               char *errstr, size_t errstr_size),
                     void *opaque, char *errstr, size_t errstr_size);

/**
 * @brief After all binds: any key never used is an error, `file:line: unknown
 *        key "x"`.  @returns 0 or -1.
 */
int conf_check_unused(conf_t *c, char *errstr, size_t errstr_size);

/** @brief Where \p key was set ("genq.yaml:12", "env GENQ_X", "-X"); for
 *         a key that is not set, where its nearest enclosing section is;
 *         NULL if neither.  Borrowed. */
const char *conf_origin(conf_t *c, const char *key);

/**
 * @brief Write \p defs as a Markdown table (for `make docs`).
 */
void conf_write_docs(const char *section, const struct conf_def *defs,
                     void *fp /* FILE * */);

#endif
