/*
 * jobjson: genq.v1.Job <-> JSON; see jobjson.h for the format.
 *
 * DESIGN
 * Both directions walk protobuf-c's message descriptors, so every field of
 * proto/genq.proto is handled by one generic path and a field added there
 * appears here with no code.  What the descriptors cannot say is in one
 * small table of special keys (kind as a name, "deadline", the chat
 * "prompt" shorthand) plus the kind/payload check at the end.
 *
 * Building: the job is assembled in a private arena whose strings are
 * borrowed from the jansson tree, then encoded and decoded once by codec.
 * The decoded copy owns all its memory the protobuf-c way, so callers free
 * it with codec_job_free() like any job read from Kafka, and the arena and
 * the borrowed strings go away together here.  The round trip costs a few
 * microseconds per job, well below the JSON parse itself.
 */
#include "jobjson.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "xmem.h"

#define PATH_MAX_LEN 256

/* ---- build context: arena + error ---------------------------------------- */

struct ablk {
        struct ablk *next;
        max_align_t mem[]; /**< the allocation itself */
};

struct build {
        struct ablk *blocks; /**< everything allocated for the job */
        int flags;           /**< JOBJSON_F_* */
        char *errstr;
        size_t errstr_size;
};

/* Zeroed memory that lives until arena_free(). */
static void *arena_alloc(struct build *b, size_t n)
{
        struct ablk *a = xcalloc(1, sizeof(*a) + n);

        a->next = b->blocks;
        b->blocks = a;
        return a->mem;
}

static void arena_free(struct build *b)
{
        while (b->blocks) {
                struct ablk *next = b->blocks->next;

                free(b->blocks);
                b->blocks = next;
        }
}

static int fail(struct build *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int fail(struct build *b, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(b->errstr, b->errstr_size, fmt, ap);
        va_end(ap);
        return -1;
}

/* A key path for messages, into PATH_MAX_LEN bytes (truncated to fit). */
static void path_fmt(char *out, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void path_fmt(char *out, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(out, PATH_MAX_LEN, fmt, ap);
        va_end(ap);
}

/* "chat" + "model" -> "chat.model"; "" + "kind" -> "kind". */
static void join(char *out, const char *path, const char *key)
{
        path_fmt(out, "%s%s%s", path, *path ? "." : "", key);
}

static void *new_message(struct build *b, const ProtobufCMessageDescriptor *d)
{
        void *m = arena_alloc(b, d->sizeof_message);

        protobuf_c_message_init(d, m);
        return m;
}

/* ---- special keys ----------------------------------------------------------
 * Keys the descriptors cannot describe.  Each handler gets the message being
 * filled, the JSON object it comes from (to check a conflicting key) and
 * the value (never JSON null). */

typedef int(special_fn)(struct build *b, void *msg, json_t *obj,
                        json_t *val, const char *path);

static int set_kind(struct build *b, void *msg, json_t *obj, json_t *val,
                    const char *path)
{
        Genq__V1__Job *job = msg;

        if (json_is_integer(val) && (b->flags & JOBJSON_F_LAX)) {
                json_int_t v = json_integer_value(val);

                if (v < 0 || v > INT32_MAX)
                        return fail(b, "kind %lld is out of range",
                                    (long long)v);
                job->kind = (Genq__V1__Kind)v;
                return 0;
        }
        if (!json_is_string(val))
                return fail(b, "kind must be a string");
        job->kind = codec_kind_parse(json_string_value(val));
        if (job->kind == GENQ__V1__KIND__KIND_UNSPECIFIED)
                return fail(b, "kind \"%s\" is not chat, image, video, stt "
                               "or tts", json_string_value(val));
        return 0;
}

static int set_deadline(struct build *b, void *msg, json_t *obj, json_t *val,
                        const char *path)
{
        Genq__V1__Job *job = msg;
        json_t *other = json_object_get(obj, "deadline_ms");

        if (other && !json_is_null(other))
                return fail(b, "deadline and deadline_ms cannot both be "
                               "given");
        if (!json_is_string(val))
                return fail(b, "deadline must be a string (RFC 3339)");
        if (jobjson_parse_rfc3339(json_string_value(val), &job->deadline_ms))
                return fail(b, "deadline \"%s\" is not an RFC 3339 "
                               "timestamp like 2025-06-01T12:00:00Z",
                            json_string_value(val));
        return 0;
}

static int set_prompt(struct build *b, void *msg, json_t *obj, json_t *val,
                      const char *path)
{
        Genq__V1__ChatRequest *c = msg;
        json_t *other = json_object_get(obj, "messages");
        Genq__V1__ChatMessage *m;

        if (other && !json_is_null(other))
                return fail(b, "%s.prompt and %s.messages cannot both be "
                               "given", path, path);
        if (!json_is_string(val))
                return fail(b, "%s.prompt must be a string", path);
        m = new_message(b, &genq__v1__chat_message__descriptor);
        m->role = (char *)"user";
        m->content = (char *)json_string_value(val);
        c->messages = arena_alloc(b, sizeof(*c->messages));
        c->messages[0] = m;
        c->n_messages = 1;
        return 0;
}

static const struct special {
        const ProtobufCMessageDescriptor *desc; /**< message it applies to */
        const char *key;                        /**< JSON key */
        special_fn *fn;                         /**< sets the value */
} specials[] = {
        {&genq__v1__job__descriptor, "kind", set_kind},
        {&genq__v1__job__descriptor, "deadline", set_deadline},
        {&genq__v1__chat_request__descriptor, "prompt", set_prompt},
};

#define N_SPECIALS (sizeof(specials) / sizeof(specials[0]))

static const struct special *special_find(const ProtobufCMessageDescriptor *d,
                                          const char *key)
{
        for (size_t i = 0; i < N_SPECIALS; i++)
                if (specials[i].desc == d && !strcmp(specials[i].key, key))
                        return &specials[i];
        return NULL;
}

/* ---- JSON -> message --------------------------------------------------- */

static int fill_message(struct build *b, const ProtobufCMessageDescriptor *d,
                        void *msg, json_t *obj, const char *path);

/* `unknown key "chat.modle" (chat takes: messages, model, ...)` */
static int unknown_key(struct build *b, const ProtobufCMessageDescriptor *d,
                       const char *path, const char *kpath)
{
        char names[512];
        size_t o = 0;

        names[0] = '\0';
        for (unsigned i = 0; i < d->n_fields && o < sizeof(names); i++)
                o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s",
                                      i ? ", " : "", d->fields[i].name);
        for (size_t i = 0; i < N_SPECIALS && o < sizeof(names); i++)
                if (specials[i].desc == d &&
                    !protobuf_c_message_descriptor_get_field_by_name(
                            d, specials[i].key))
                        o += (size_t)snprintf(names + o, sizeof(names) - o,
                                              ", %s", specials[i].key);
        return fail(b, "unknown key \"%s\" (%s takes: %s)", kpath,
                    *path ? path : "a job", names);
}

static int get_int(struct build *b, json_t *val, const char *kpath,
                   json_int_t min, json_int_t max, json_int_t *out)
{
        if (!json_is_integer(val))
                return fail(b, "%s must be an integer", kpath);
        *out = json_integer_value(val);
        if (*out < min || *out > max)
                return fail(b, "%s %lld is out of range", kpath,
                            (long long)*out);
        return 0;
}

static int get_number(struct build *b, json_t *val, const char *kpath,
                      double *out)
{
        if (!json_is_number(val))
                return fail(b, "%s must be a number", kpath);
        *out = json_number_value(val);
        return 0;
}

static int get_string(struct build *b, json_t *val, const char *kpath,
                      char **out)
{
        if (!json_is_string(val))
                return fail(b, "%s must be a string", kpath);
        if (strlen(json_string_value(val)) != json_string_length(val))
                return fail(b, "%s must not contain NUL characters", kpath);
        *out = (char *)json_string_value(val); /* borrowed from the tree */
        return 0;
}

static int set_enum(struct build *b, const ProtobufCFieldDescriptor *f,
                    int *dst, json_t *val, const char *kpath)
{
        const ProtobufCEnumValue *ev;
        json_int_t v;

        if (json_is_integer(val)) {
                if (get_int(b, val, kpath, INT32_MIN, INT32_MAX, &v))
                        return -1;
                *dst = (int)v;
                return 0;
        }
        if (!json_is_string(val))
                return fail(b, "%s must be a string", kpath);
        ev = protobuf_c_enum_descriptor_get_value_by_name(
                f->descriptor, json_string_value(val));
        if (!ev)
                return fail(b, "%s: unknown value \"%s\"", kpath,
                            json_string_value(val));
        *dst = ev->value;
        return 0;
}

static int set_submessage(struct build *b, const ProtobufCFieldDescriptor *f,
                          void **dst, json_t *val, const char *kpath)
{
        void *m;

        if (!json_is_object(val))
                return fail(b, "%s must be an object", kpath);
        m = new_message(b, f->descriptor);
        if (fill_message(b, f->descriptor, m, val, kpath))
                return -1;
        *dst = m;
        return 0;
}

static int set_float(struct build *b, const ProtobufCFieldDescriptor *f,
                     void *dst, json_t *val, const char *kpath)
{
        double d = 0;

        if (get_number(b, val, kpath, &d))
                return -1;
        if (f->type == PROTOBUF_C_TYPE_DOUBLE) {
                *(double *)dst = d;
                return 0;
        }
        if (fabs(d) > FLT_MAX)
                return fail(b, "%s is out of range", kpath);
        *(float *)dst = (float)d;
        return 0;
}

/* One value of field \p f into \p dst (the member, or an array slot). */
static int set_value(struct build *b, const ProtobufCFieldDescriptor *f,
                     void *dst, json_t *val, const char *kpath)
{
        json_int_t v;

        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                if (get_int(b, val, kpath, INT32_MIN, INT32_MAX, &v))
                        return -1;
                *(int32_t *)dst = (int32_t)v;
                return 0;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                if (get_int(b, val, kpath, 0, UINT32_MAX, &v))
                        return -1;
                *(uint32_t *)dst = (uint32_t)v;
                return 0;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                if (get_int(b, val, kpath, INT64_MIN, INT64_MAX, &v))
                        return -1;
                *(int64_t *)dst = (int64_t)v;
                return 0;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                if (get_int(b, val, kpath, 0, INT64_MAX, &v))
                        return -1;
                *(uint64_t *)dst = (uint64_t)v;
                return 0;
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
                return set_float(b, f, dst, val, kpath);
        case PROTOBUF_C_TYPE_BOOL:
                if (!json_is_boolean(val))
                        return fail(b, "%s must be true or false", kpath);
                *(protobuf_c_boolean *)dst = json_is_true(val);
                return 0;
        case PROTOBUF_C_TYPE_ENUM:
                return set_enum(b, f, dst, val, kpath);
        case PROTOBUF_C_TYPE_STRING:
                return get_string(b, val, kpath, dst);
        case PROTOBUF_C_TYPE_MESSAGE:
                return set_submessage(b, f, dst, val, kpath);
        default:
                return fail(b, "%s: bytes fields have no JSON form", kpath);
        }
}

static size_t value_size(ProtobufCType t)
{
        switch (t) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
        case PROTOBUF_C_TYPE_FLOAT:
                return 4;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
        case PROTOBUF_C_TYPE_DOUBLE:
                return 8;
        case PROTOBUF_C_TYPE_BOOL:
                return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_ENUM:
                return sizeof(int);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        default:
                return sizeof(void *); /* string, message */
        }
}

/* protobuf-c generates map<K,V> as a repeated message "XEntry {key; value}".*/
static int is_map_entry(const ProtobufCFieldDescriptor *f)
{
        const ProtobufCMessageDescriptor *d = f->descriptor;
        size_t l;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE || d->n_fields != 2)
                return 0;
        l = strlen(d->short_name);
        return l > 5 && !strcmp(d->short_name + l - 5, "Entry") &&
               !strcmp(d->fields[0].name, "key") &&
               !strcmp(d->fields[1].name, "value") &&
               d->fields[0].type == PROTOBUF_C_TYPE_STRING;
}

/* {"k": v, ...} -> repeated XEntry. */
static int set_map(struct build *b, const ProtobufCFieldDescriptor *f,
                   void *msg, json_t *val, const char *kpath)
{
        const ProtobufCMessageDescriptor *d = f->descriptor;
        size_t n = json_object_size(val), i = 0;
        char epath[PATH_MAX_LEN];
        const char *k;
        void **arr;
        json_t *v;

        if (!json_is_object(val))
                return fail(b, "%s must be an object", kpath);
        arr = arena_alloc(b, n * sizeof(void *));
        json_object_foreach(val, k, v) {
                arr[i] = new_message(b, d);
                *(const char **)((char *)arr[i] + d->fields[0].offset) = k;
                join(epath, kpath, k);
                if (set_value(b, &d->fields[1],
                              (char *)arr[i] + d->fields[1].offset, v, epath))
                        return -1;
                i++;
        }
        *(size_t *)((char *)msg + f->quantifier_offset) = n;
        *(void ***)((char *)msg + f->offset) = arr;
        return 0;
}

static int set_repeated(struct build *b, const ProtobufCFieldDescriptor *f,
                        void *msg, json_t *val, const char *kpath)
{
        size_t n, es = value_size(f->type);
        char epath[PATH_MAX_LEN];
        char *arr;

        if (is_map_entry(f))
                return set_map(b, f, msg, val, kpath);
        if (!json_is_array(val))
                return fail(b, "%s must be an array", kpath);
        n = json_array_size(val);
        arr = arena_alloc(b, n * es);
        for (size_t i = 0; i < n; i++) {
                path_fmt(epath, "%s[%zu]", kpath, i);
                if (set_value(b, f, arr + i * es, json_array_get(val, i),
                              epath))
                        return -1;
        }
        *(size_t *)((char *)msg + f->quantifier_offset) = n;
        *(void **)((char *)msg + f->offset) = arr;
        return 0;
}

/* A oneof member: refuse a second member of the same oneof. */
static int set_oneof_case(struct build *b, const ProtobufCMessageDescriptor *d,
                          const ProtobufCFieldDescriptor *f, void *msg,
                          const char *path, const char *kpath)
{
        uint32_t *c = (uint32_t *)((char *)msg + f->quantifier_offset);
        const ProtobufCFieldDescriptor *other;
        char opath[PATH_MAX_LEN];

        if (*c && *c != f->id) {
                other = protobuf_c_message_descriptor_get_field(d, *c);
                join(opath, path, other ? other->name : "?");
                return fail(b, "%s and %s cannot both be given", opath,
                            kpath);
        }
        *c = f->id;
        return 0;
}

static int set_field(struct build *b, const ProtobufCMessageDescriptor *d,
                     const ProtobufCFieldDescriptor *f, void *msg,
                     json_t *val, const char *path, const char *kpath)
{
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
                return set_repeated(b, f, msg, val, kpath);
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            set_oneof_case(b, d, f, msg, path, kpath))
                return -1;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
            !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            f->type != PROTOBUF_C_TYPE_STRING &&
            f->type != PROTOBUF_C_TYPE_MESSAGE)
                *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) =
                        1; /* proto2 has_ flag */
        return set_value(b, f, (char *)msg + f->offset, val, kpath);
}

static int fill_message(struct build *b, const ProtobufCMessageDescriptor *d,
                        void *msg, json_t *obj, const char *path)
{
        char kpath[PATH_MAX_LEN];
        const ProtobufCFieldDescriptor *f;
        const struct special *sp;
        const char *key;
        json_t *val;

        json_object_foreach(obj, key, val) {
                join(kpath, path, key);
                if (json_is_null(val))
                        continue;
                sp = special_find(d, key);
                if (sp) {
                        if (sp->fn(b, msg, obj, val, path))
                                return -1;
                        continue;
                }
                f = protobuf_c_message_descriptor_get_field_by_name(d, key);
                if (!f)
                        return unknown_key(b, d, path, kpath);
                if (set_field(b, d, f, msg, val, path, kpath))
                        return -1;
        }
        return 0;
}

/* Kind and payload: infer one from the other, refuse disagreement. */
static int finish_job(struct build *b, Genq__V1__Job *job)
{
        Genq__V1__Kind pk = codec_kind_of_payload(job->payload_case);

        if (job->kind == GENQ__V1__KIND__KIND_UNSPECIFIED)
                job->kind = pk;
        if (b->flags & JOBJSON_F_LAX)
                return 0;
        if (pk == GENQ__V1__KIND__KIND_UNSPECIFIED && job->kind)
                return fail(b, "a %s job needs a \"%s\" object",
                            codec_kind_name(job->kind),
                            codec_kind_name(job->kind));
        if (pk == GENQ__V1__KIND__KIND_UNSPECIFIED)
                return fail(b, "one of chat, image, video, stt or tts is "
                               "required");
        if (job->kind != pk)
                return fail(b, "kind is %s but the payload is %s",
                            codec_kind_name(job->kind), codec_kind_name(pk));
        return 0;
}

/* The arena-built \p tmp as a job that owns its memory (see DESIGN). */
static Genq__V1__Job *seal(const Genq__V1__Job *tmp, char *errstr,
                           size_t errstr_size)
{
        enum codec_err err;
        Genq__V1__Job *job;
        uint8_t *buf;
        size_t len;

        buf = codec_job_encode(tmp, &len);
        job = codec_job_decode(buf, len, &err, errstr, errstr_size);
        free(buf);
        return job;
}

Genq__V1__Job *jobjson_from_json(const json_t *obj, int flags, char *errstr,
                                 size_t errstr_size)
{
        struct build b = {.flags = flags, .errstr = errstr,
                          .errstr_size = errstr_size};
        Genq__V1__Job tmp = GENQ__V1__JOB__INIT;
        Genq__V1__Job *job = NULL;
        json_t *o = (json_t *)obj; /* jansson's iterators are not const */

        if (!json_is_object(o))
                fail(&b, "a job must be a JSON object");
        else if (!fill_message(&b, &genq__v1__job__descriptor, &tmp, o, "") &&
                 !finish_job(&b, &tmp))
                job = seal(&tmp, errstr, errstr_size);
        arena_free(&b);
        return job;
}

Genq__V1__Job *jobjson_parse(const char *text, size_t len, int flags,
                             char *errstr, size_t errstr_size)
{
        json_error_t jerr;
        Genq__V1__Job *job;
        json_t *obj;

        obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj) {
                snprintf(errstr, errstr_size, "invalid JSON at column %d: %s",
                         jerr.column, jerr.text);
                return NULL;
        }
        job = jobjson_from_json(obj, flags, errstr, errstr_size);
        json_decref(obj);
        return job;
}

/* ---- message -> JSON --------------------------------------------------- */

static json_t *message_to_obj(const ProtobufCMessageDescriptor *d,
                              const void *msg);

/* Shortest decimal that reads back as \p f, so 0.7f prints as 0.7. */
static double float_to_double(float f)
{
        char s[32];

        for (int prec = 6; prec < 9; prec++) {
                snprintf(s, sizeof(s), "%.*g", prec, (double)f);
                if ((float)strtod(s, NULL) == f)
                        return strtod(s, NULL);
        }
        return (double)f;
}

/* Strings decoded from the wire are not checked for UTF-8 by protobuf-c;
 * show invalid ones with '?' rather than produce invalid JSON. */
static json_t *string_to_json(const char *s)
{
        json_t *j = json_string(s);
        char *copy;

        if (j)
                return j;
        copy = xstrdup(s);
        for (char *p = copy; *p; p++)
                if ((unsigned char)*p >= 0x80)
                        *p = '?';
        j = json_string(copy);
        free(copy);
        return j;
}

static json_t *enum_to_json(const ProtobufCFieldDescriptor *f, int v)
{
        const ProtobufCEnumValue *ev;

        if (f->descriptor == &genq__v1__kind__descriptor &&
            codec_kind_name((Genq__V1__Kind)v))
                return json_string(codec_kind_name((Genq__V1__Kind)v));
        ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev && f->descriptor != &genq__v1__kind__descriptor)
                return json_string(ev->name);
        return json_integer(v);
}

/* One value at \p p; NULL when it is the zero value and \p keep_zero is 0. */
static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *p,
                             int keep_zero)
{
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                return *(const int32_t *)p || keep_zero
                               ? json_integer(*(const int32_t *)p)
                               : NULL;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return *(const uint32_t *)p || keep_zero
                               ? json_integer(*(const uint32_t *)p)
                               : NULL;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return *(const int64_t *)p || keep_zero
                               ? json_integer(*(const int64_t *)p)
                               : NULL;
        case PROTOBUF_C_TYPE_FLOAT:
                return *(const float *)p != 0 || keep_zero
                               ? json_real(float_to_double(*(const float *)p))
                               : NULL;
        case PROTOBUF_C_TYPE_DOUBLE:
                return *(const double *)p != 0 || keep_zero
                               ? json_real(*(const double *)p)
                               : NULL;
        case PROTOBUF_C_TYPE_BOOL:
                return *(const protobuf_c_boolean *)p || keep_zero
                               ? json_boolean(*(const protobuf_c_boolean *)p)
                               : NULL;
        case PROTOBUF_C_TYPE_ENUM:
                return *(const int *)p || keep_zero
                               ? enum_to_json(f, *(const int *)p)
                               : NULL;
        case PROTOBUF_C_TYPE_STRING:
                return *(char *const *)p && (**(char *const *)p || keep_zero)
                               ? string_to_json(*(char *const *)p)
                               : NULL;
        case PROTOBUF_C_TYPE_MESSAGE:
                return *(void *const *)p
                               ? message_to_obj(f->descriptor,
                                                *(void *const *)p)
                               : NULL;
        default:
                return NULL; /* bytes: no JSON form */
        }
}

static json_t *map_to_obj(const ProtobufCFieldDescriptor *f, void *const *arr,
                          size_t n)
{
        const ProtobufCMessageDescriptor *d = f->descriptor;
        json_t *o = json_object();

        for (size_t i = 0; i < n; i++) {
                const char *k =
                        *(char *const *)((const char *)arr[i] +
                                         d->fields[0].offset);
                json_t *v = value_to_json(&d->fields[1],
                                          (const char *)arr[i] +
                                                  d->fields[1].offset,
                                          1);

                if (k && v)
                        json_object_set_new(o, k, v);
                else
                        json_decref(v);
        }
        return o;
}

static json_t *repeated_to_json(const ProtobufCFieldDescriptor *f,
                                const void *msg)
{
        size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
        const char *arr = *(char *const *)((const char *)msg + f->offset);
        size_t es = value_size(f->type);
        json_t *a;

        if (!n)
                return NULL;
        if (is_map_entry(f))
                return map_to_obj(f, (void *const *)arr, n);
        a = json_array();
        for (size_t i = 0; i < n; i++) {
                json_t *v = value_to_json(f, arr + i * es, 1);

                if (v)
                        json_array_append_new(a, v);
        }
        return a;
}

static json_t *message_to_obj(const ProtobufCMessageDescriptor *d,
                              const void *msg)
{
        json_t *o = json_object();

        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                int oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
                json_t *v;

                if (oneof && *(const uint32_t *)((const char *)msg +
                                                 f->quantifier_offset) != f->id)
                        continue;
                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                        v = repeated_to_json(f, msg);
                else
                        v = value_to_json(f, (const char *)msg + f->offset,
                                          oneof);
                if (v)
                        json_object_set_new(o, f->name, v);
        }
        return o;
}

json_t *jobjson_to_obj(const Genq__V1__Job *job)
{
        return message_to_obj(&genq__v1__job__descriptor, job);
}

char *jobjson_to_json(const Genq__V1__Job *job)
{
        json_t *o = jobjson_to_obj(job);
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));

        json_decref(o);
        if (!s)
                fatal("jobjson: out of memory");
        return s;
}

/* ---- RFC 3339 ---------------------------------------------------------- */

/* \p n decimal digits at \p p, or -1. */
static int digits(const char *p, int n)
{
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char)p[i]))
                        return -1;
                v = v * 10 + (p[i] - '0');
        }
        return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

static int days_in_month(int y, int m)
{
        static const int dim[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        return m == 2 && leap ? 29 : dim[m - 1];
}

/* ".123456" -> milliseconds; advances *pp. */
static int parse_fraction(const char **pp)
{
        const char *p = *pp;
        int ms = 0, n = 0;

        if (*p != '.')
                return 0;
        for (p++; isdigit((unsigned char)*p); p++, n++)
                if (n < 3)
                        ms = ms * 10 + (*p - '0');
        if (n == 0)
                return -1;
        for (; n < 3; n++)
                ms *= 10;
        *pp = p;
        return ms;
}

/* "Z" or "+hh:mm" / "-hh:mm" -> offset in minutes east of UTC. */
static int parse_offset(const char *p, int *min_out)
{
        int h, m;

        if ((*p == 'Z' || *p == 'z') && !p[1]) {
                *min_out = 0;
                return 0;
        }
        if ((*p != '+' && *p != '-') || strlen(p) != 6 || p[3] != ':')
                return -1;
        h = digits(p + 1, 2);
        m = digits(p + 4, 2);
        if (h < 0 || h > 23 || m < 0 || m > 59)
                return -1;
        *min_out = (*p == '-' ? -1 : 1) * (h * 60 + m);
        return 0;
}

int jobjson_parse_rfc3339(const char *s, int64_t *ms_out)
{
        int y = digits(s, 4), mo, d, h, mi, sec, frac, off;
        const char *p;

        if (strlen(s) < 19 || y < 0 || s[4] != '-' || s[7] != '-' ||
            !strchr("Tt ", s[10]) || s[13] != ':' || s[16] != ':')
                return -1;
        mo = digits(s + 5, 2);
        d = digits(s + 8, 2);
        h = digits(s + 11, 2);
        mi = digits(s + 14, 2);
        sec = digits(s + 17, 2);
        if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
            h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
                return -1;
        p = s + 19;
        frac = parse_fraction(&p);
        if (frac < 0 || parse_offset(p, &off))
                return -1;
        *ms_out = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
                    h * 3600 + mi * 60 + sec) -
                   (int64_t)off * 60) * 1000 + frac;
        return 0;
}
