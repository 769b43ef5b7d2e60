/**
 * @file fakeprov.h
 * @brief Shared types of the fake AI provider server: what a provider
 *        family implements and what the server hands it.
 *
 * A *family* (openai, anthropic, gemini, ...) is one static const
 * struct fp_family in one file, fam_<name>.c, listed in the registry
 * table in fakeprov.c.  A *provider* (openai, groq, together, ...) is a
 * name under which one family is served at the path prefix /<name>, with
 * its own keys, script, counters and recorded requests (fpprov.h).
 *
 * The server parses the URL, picks the provider and the route, reads the
 * body, parses it as JSON once, checks the key the family extracted, and
 * then calls the route's handler with a struct fp_call.  The handler only
 * fills a struct fp_resp; latency, hangs, scripted faults and recording
 * are done around it by the server, the same way for every family.
 */
#ifndef GENQ_FAKEPROV_H
#define GENQ_FAKEPROV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "fpresp.h"

struct MHD_Connection;
typedef struct fpprov_s fpprov_t;

/** Largest request body accepted; more is answered 413. */
#define FP_MAX_BODY (8u * 1024 * 1024)

/**
 * One request as a family handler sees it.  Everything is borrowed and
 * valid for the duration of the handler call only.
 */
struct fp_call {
        fpprov_t *prov;              /**< the provider, or NULL (control) */
        const char *method;          /**< "POST", "GET", ... */
        const char *path;            /**< path below /<provider>, or the
                                      *   path below /_fake/ for control */
        const char *body;            /**< raw body, NUL-terminated */
        size_t body_len;             /**< bytes in body */
        json_t *json;                /**< body parsed as JSON, or NULL */
        const char *key;             /**< key the family found, or NULL */
        int auth_ok;                 /**< key is one of the provider's */
        uint64_t seq;                /**< 1-based request number of this
                                      *   provider since start or reset */
        struct MHD_Connection *conn; /**< for fakeprov_header/_query */
};

/** Request handler of one route: fills \p resp, never fails. */
typedef void(fp_handler_fn)(const struct fp_call *call, struct fp_resp *resp);

/** One endpoint of a family: method + path below /<provider>.  The path
 *  is an fnmatch(3) pattern with FNM_PATHNAME: "*" stands for part of one
 *  segment: "/v1/predictions/<star>" or "/v1beta/models/<star>:generateContent". */
struct fp_route {
        const char *method;   /**< "POST" */
        const char *path;     /**< "/v1/chat/completions" */
        fp_handler_fn *handle;
};

/** A named fault ("rate_limit", ...) producing the family's real body. */
struct fp_errdef {
        const char *name;
        fp_handler_fn *build;
};

/** A provider family: one static const instance per fam_<name>.c. */
struct fp_family {
        const char *name;                /**< "openai" */
        const struct fp_route *routes;   /**< ends with a NULL method */
        const struct fp_errdef *errors;  /**< ends with a NULL name */
        /** The key the request presents (borrowed from a header or the
         *  query), or NULL if it presents none. */
        const char *(*get_key)(const struct fp_call *call);
        /** Answer for a path or method no route matches. */
        fp_handler_fn *not_found;
        /** Providers served by default (no --provider given), each at
         *  /<name> with key fake-key-<name>; NULL-terminated, may be NULL. */
        const char *const *default_providers;
};

/* The registry (fakeprov.c).  One family per API area, one file each. */
extern const struct fp_family fam_openai;      /* chat (tests 0001-) */
extern const struct fp_family fam_chatvendors; /* mistral, openrouter,
                                                  zhipu, dashscope, sf chat */
extern const struct fp_family fam_anthropic;
extern const struct fp_family fam_gemini;
extern const struct fp_family fam_cohere;
extern const struct fp_family fam_images;      /* openai + sf images */
extern const struct fp_family fam_stability;
extern const struct fp_family fam_replicate;
extern const struct fp_family fam_hf;          /* image + whisper */
extern const struct fp_family fam_kie;         /* jobs API + chat */
extern const struct fp_family fam_sf_video;
extern const struct fp_family fam_zhipu_video;
extern const struct fp_family fam_audio;       /* openai + sf stt/tts */
extern const struct fp_family fam_assemblyai;
extern const struct fp_family fam_gladia;
extern const struct fp_family fam_elevenlabs;

/** @brief Find a family by name in the registry. @returns NULL if none. */
const struct fp_family *fakeprov_family_find(const char *name);

/** @brief Find a named fault of \p fam. @returns NULL if none. */
const struct fp_errdef *fakeprov_errdef_find(const struct fp_family *fam,
                                             const char *name);

/** @brief Value of request header \p name (case-insensitive), or NULL.
 *  @remark borrowed; valid during the handler call. */
const char *fakeprov_header(const struct fp_call *call, const char *name);

/** @brief Value of query argument \p name, or NULL.
 *  @remark borrowed; valid during the handler call. */
const char *fakeprov_query(const struct fp_call *call, const char *name);

/** @brief Wall clock in milliseconds since the epoch. */
int64_t fakeprov_now_ms(void);

#endif
