/**
 * @file codec.h
 * @brief The only door to protobuf-c for genq.v1.Job: encode, decode,
 *        validate, free.  genq__v1__job__unpack/free_unpacked appear nowhere
 *        else (STYLE rule 5).
 */
#ifndef GENQ_CODEC_H
#define GENQ_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "genq.pb-c.h"

/** Largest encoded job we accept (also the producer's message.max.bytes
 *  guard): big prompts belong in object storage, not in Kafka. */
#define CODEC_MAX_JOB_BYTES (1024 * 1024)

/** Why a message was refused; written to the DLQ header genq.reason_code. */
enum codec_err {
        CODEC_OK = 0,
        CODEC_EDECODE,    /**< bytes are not a genq.v1.Job */
        CODEC_ETOOBIG,    /**< over CODEC_MAX_JOB_BYTES */
        CODEC_EINVALID,   /**< decoded but a field is missing/out of range */
        CODEC_EMISMATCH,  /**< kind, payload and topic disagree */
};

/** @brief Short stable name of \p e ("decode", "invalid", ...). */
const char *codec_err_name(enum codec_err e);

/** @brief "chat", "image", "video", "stt", "tts"; NULL for unspecified. */
const char *codec_kind_name(Genq__V1__Kind kind);
/** @brief Inverse of codec_kind_name. @returns KIND_UNSPECIFIED if unknown. */
Genq__V1__Kind codec_kind_parse(const char *name);
/** @brief The kind that payload case \p pc carries (UNSPECIFIED if none). */
Genq__V1__Kind codec_kind_of_payload(Genq__V1__Job__PayloadCase pc);

/**
 * @brief Decode \p len bytes into a job.
 * @returns the job (free with codec_job_free) or NULL with \p *err and
 *          errstr set.
 * @remark the returned job is owned by the caller.
 */
Genq__V1__Job *codec_job_decode(const void *buf, size_t len,
                                enum codec_err *err, char *errstr,
                                size_t errstr_size);

/** @brief Free a job returned by codec_job_decode.  NULL-safe. */
void codec_job_free(Genq__V1__Job *job);

/**
 * @brief Encode \p job.
 * @returns a malloc'd buffer owned by the caller, length in \p *lenp.
 */
uint8_t *codec_job_encode(const Genq__V1__Job *job, size_t *lenp);

/**
 * @brief Check every field against the rules in proto/genq.proto.
 * @param topic_kind the kind of the topic the message came from, or
 *        KIND_UNSPECIFIED when there is no topic (producer side).
 * @returns CODEC_OK, or CODEC_EINVALID / CODEC_EMISMATCH with a one-line
 *          reason in errstr naming the field.
 */
enum codec_err codec_job_validate(const Genq__V1__Job *job,
                                  Genq__V1__Kind topic_kind, char *errstr,
                                  size_t errstr_size);

/** @brief Topic name for \p kind under \p prefix ("genq.jobs" -> 
 *         "genq.jobs.chat") into \p out.  @returns 0, or -1 if too long. */
int codec_topic_name(const char *prefix, Genq__V1__Kind kind, char *out,
                     size_t outsz);

/** @brief The kind a topic named prefix.<kind> carries, or UNSPECIFIED. */
Genq__V1__Kind codec_topic_kind(const char *prefix, const char *topic);

/**
 * @brief Encode a completion event.
 * @returns a malloc'd buffer owned by the caller, length in \p *lenp.
 */
uint8_t *codec_event_encode(const Genq__V1__JobEvent *ev, size_t *lenp);

/** @brief Decode an event, or NULL.  Free with codec_event_free. */
Genq__V1__JobEvent *codec_event_decode(const void *buf, size_t len);

/** @brief Free a decoded event.  NULL-safe. */
void codec_event_free(Genq__V1__JobEvent *ev);

/** @brief Write a random (v4) UUID string, 36 chars + NUL, into \p out.
 *  @returns 0, or -1 if no randomness could be read. */
int codec_uuid4(char out[37]);

#endif
