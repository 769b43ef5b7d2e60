/**
 * @file jobjson.h
 * @brief genq.v1.Job <-> JSON, for `genq submit -f jobs.jsonl`, tools and
 *        tests.
 *
 * The JSON form is one object per job; its keys are the proto field names
 * (proto/genq.proto), nested the same way:
 *
 *     {"job_id": "j-1", "tenant_id": "acme", "kind": "chat",
 *      "priority": 5, "route": "bulk", "providers": ["groq"],
 *      "budget_credits": 20, "metadata": {"batch": "b7"},
 *      "chat": {"messages": [{"role": "user", "content": "Hi"}],
 *               "model": "gpt-4o-mini", "max_tokens": 256,
 *               "temperature": 0.7, "thinking": false}}
 *
 * Beyond the proto names:
 *  - "kind" is a name: "chat", "image", "video", "stt" or "tts".  It may be
 *    left out when the object has exactly one payload key ("chat", "image",
 *    "video", "stt", "tts"); when both are given they must agree.
 *  - "deadline": an RFC 3339 timestamp ("2025-06-01T12:00:00Z",
 *    "2025-06-01T14:00:00.250+02:00") instead of "deadline_ms".
 *  - "chat": {"prompt": "..."} is shorthand for one user message.
 *  - "metadata" is an object of string values.
 *  - null means "not given".
 *
 * Unknown keys, duplicate keys and values of the wrong JSON type are errors
 * naming the key ("chat.max_tokens must be an integer"), so a typo never
 * falls back silently to a default.  Whether the values make a runnable job
 * (a tenant_id is present, priority within range, ...) is
 * codec_job_validate's business, not this module's.
 *
 * Ownership: a job returned here was built in a private arena, encoded and
 * decoded again by codec_job_decode, so it is an ordinary decoded job:
 * free it with codec_job_free(), like every other Genq__V1__Job * in genq.
 */
#ifndef GENQ_JOBJSON_H
#define GENQ_JOBJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "genq.pb-c.h"

/** Flags for jobjson_from_json() and jobjson_parse(). */
enum {
        /** Testing aid: accept a kind that disagrees with the payload, a
         *  missing payload, and a number as "kind" (the raw enum value), to
         *  build the deliberately wrong jobs that worker tests need.  Keys
         *  and JSON types are still checked. */
        JOBJSON_F_LAX = 1 << 0,
};

/**
 * @brief Build a job from the JSON object \p obj.
 * @param flags 0 or JOBJSON_F_LAX.
 * @returns the job, or NULL with a one-line reason in \p errstr.
 * @remark \p obj is borrowed.  The returned job is owned by the caller;
 *         free it with codec_job_free().
 */
Genq__V1__Job *jobjson_from_json(const json_t *obj, int flags, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Parse \p len bytes of JSON text (one JSONL line, no need for a NUL)
 *        and build a job from it, as jobjson_from_json().  Duplicate keys
 *        are refused.
 * @returns the job (free with codec_job_free()), or NULL with errstr.
 */
Genq__V1__Job *jobjson_parse(const char *text, size_t len, int flags,
                             char *errstr, size_t errstr_size);

/**
 * @brief The JSON object for \p job in the format above: fields at their
 *        zero value and unset oneofs are left out, kind is a name (a
 *        number if it is not a known kind), deadline is "deadline_ms".
 * @returns a new reference, owned by the caller (json_decref).
 */
json_t *jobjson_to_obj(const Genq__V1__Job *job);

/**
 * @brief jobjson_to_obj() as compact JSON text, one line.  Real numbers
 *        are printed with 15 significant digits.
 * @returns a malloc'd NUL-terminated string owned by the caller (free()).
 */
char *jobjson_to_json(const Genq__V1__Job *job);

/**
 * @brief Parse an RFC 3339 timestamp into Unix epoch milliseconds.
 *        Accepts 'T', 't' or ' ' between date and time, an optional
 *        fraction (truncated to milliseconds) and 'Z' or +hh:mm / -hh:mm.
 * @returns 0, or -1 if \p s is not such a timestamp.
 */
int jobjson_parse_rfc3339(const char *s, int64_t *ms_out);

#endif
