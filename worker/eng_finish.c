/*
 * eng_finish: a job's end.
 *
 * The final row in one FINISH statement (result, state, attempts, usage
 * and the price it is billed at, or why it is not), the answer kept in
 * the response cache, and once the row is committed the completion event
 * on Kafka and the job's completion hook.
 *
 * Part of the engine (DESIGN: engine.c); runs on the engine's thread.
 */
#include "eng_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmem.h"

/* ---- finishing ---------------------------------------------------------- */

static char *attempts_json(const struct job *j)
{
        json_t *arr = json_array();
        char *s;

        for (size_t i = 0; i < j->n_att; i++) {
                const struct attempt *a = &j->att[i];
                json_t *o = json_pack(
                        "{s:I, s:s, s:s?, s:s?, s:o, s:s, s:s?, s:I, s:I}",
                        "no", (json_int_t)(i + 1), "provider", a->provider,
                        "key_id", a->key_id, "model", a->model, "status",
                        a->http_status ? json_integer(a->http_status)
                                       : json_null(),
                        "outcome", outcome_name(a->outcome), "error", a->error,
                        "latency_ms", (json_int_t)a->latency_ms, "started_ms",
                        (json_int_t)a->started_ms);

                json_array_append_new(arr, o);
        }
        s = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        return s;
}

/* The price used, stored with the charge.  Chat: per 1,000 tokens in
 * and out; other kinds: per natural unit.  The ledger statement computes
 * (in * input + out * output) / per + units * unit_price from it. */
char *eng_price_json(const struct wprovider *p, const struct wprice *w,
                     int estimated)
{
        int tokens = !strcmp(w->unit, "1k_tokens");
        json_t *o = json_pack("{s:s, s:s?, s:s, s:I, s:b}", "provider",
                              p->name, "model", w->model, "unit", w->unit,
                              "per", (json_int_t)(tokens ? 1000 : 1),
                              "estimated_usage", estimated);
        char *s;

        if (tokens) {
                json_object_set_new(o, "input_credits",
                                    json_string(w->in_credits));
                json_object_set_new(o, "output_credits",
                                    json_string(w->out_credits));
                json_object_set_new(o, "input_usd", json_string(w->in_usd));
                json_object_set_new(o, "output_usd",
                                    json_string(w->out_usd));
        } else {
                json_object_set_new(o, "unit_credits",
                                    json_string(w->credits));
                json_object_set_new(o, "unit_usd", json_string(w->usd));
        }
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

/* Tokens a provider did not report, estimated at 4 bytes a token, so a
 * chat job is never billed as zero for want of a usage object. */
static int64_t estimate_tokens(const char *s)
{
        return s ? (int64_t)((strlen(s) + 3) / 4) : 0;
}

int64_t eng_prompt_bytes_tokens(const Genq__V1__Job *pb)
{
        int64_t n = 0;

        if (pb->payload_case != GENQ__V1__JOB__PAYLOAD_CHAT)
                return 0;
        for (size_t i = 0; i < pb->chat->n_messages; i++)
                n += estimate_tokens(pb->chat->messages[i]->content);
        return n;
}

static char *urls_json(const struct provider_result *res)
{
        json_t *a = json_array();
        char *s;

        for (size_t i = 0; i < res->n_urls; i++)
                json_array_append_new(a, json_string(res->urls[i]));
        s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        return s;
}

/* Inline media is stored up to worker.max_inline_bytes; beyond, its size
 * is recorded with a note and the bytes are dropped (the job succeeded:
 * the provider made it, and was paid). */
static void fill_media(engine_t *e, struct pgop *op,
                       const struct provider_result *res)
{
        char note[160];

        op->content_type = xstrdup(res->content_type
                                           ? res->content_type
                                           : res->text ? "text/plain" : NULL);
        if (res->n_urls)
                op->urls_json = urls_json(res);
        op->provider_cost = xstrdup(res->provider_cost);
        if (!res->data)
                return;
        op->data_bytes = (int64_t)res->data_len;
        if (res->data_len > (size_t)e->w->max_inline_bytes) {
                snprintf(note, sizeof(note),
                         "inline media of %zu bytes not stored (limit "
                         "worker.max_inline_bytes = %lld)",
                         res->data_len, (long long)e->w->max_inline_bytes);
                op->note = xstrdup(note);
                return;
        }
        op->data = xmalloc(res->data_len ? res->data_len : 1);
        memcpy(op->data, res->data, res->data_len);
        op->data_len = res->data_len;
}

/* Chat bills tokens (estimated if unreported); other kinds bill their
 * natural units, and a job whose units are unknown is not billed at all
 * but marked, never billed as zero. */
static void fill_usage(struct job *j, struct pgop *op,
                       const struct wprovider *p,
                       const struct provider_result *res)
{
        int estimated = res->input_tokens < 0 || res->output_tokens < 0;

        if (!j->price) {
                /* billing.unpriced = flag: ran, recorded, never billed. */
                op->in_tokens = res->input_tokens;
                op->out_tokens = res->output_tokens;
                op->units = res->units;
                op->unit = strcmp(p->price_unit, "1k_tokens") ? p->price_unit
                                                              : NULL;
                op->billing_note = xstrdup("no price for the model used "
                                           "(billing.unpriced = flag); not "
                                           "billed");
                return;
        }
        if (!strcmp(p->price_unit, "1k_tokens")) {
                op->in_tokens = res->input_tokens >= 0
                                        ? res->input_tokens
                                        : eng_prompt_bytes_tokens(j->pb);
                op->out_tokens = res->output_tokens >= 0
                                         ? res->output_tokens
                                         : estimate_tokens(res->text);
                op->price_json = eng_price_json(p, j->price, estimated);
                return;
        }
        op->in_tokens = res->input_tokens;
        op->out_tokens = res->output_tokens;
        op->unit = p->price_unit;
        op->units = res->units;
        /* An stt provider that reports no duration: the seconds of the
         * audio we uploaded, when it is a WAV file we can read. */
        if (op->units < 0 && j->input && eng_is_stt(j->pb))
                op->units = provider_openai_audio_wav_seconds(j->input,
                                                              j->input_len);
        if (op->units >= 0)
                op->price_json = eng_price_json(p, j->price, 0);
        else
                op->billing_note = xstrdup("usage unknown: the provider "
                                           "reported no units; not billed");
}

static void fill_success(engine_t *e, struct job *j, struct pgop *op,
                         const struct wprovider *p,
                         const struct provider_result *res)
{
        op->provider = xstrdup(p->name);
        op->model = xstrdup(res->model ? res->model
                                       : j->att[j->n_att - 1].model);
        op->text = xstrdup(res->text);
        op->finish_reason = xstrdup(res->finish_reason);
        op->usage_json = xstrdup(res->usage_json);
        op->task_id = xstrdup(j->task_id);
        op->polls = j->polls;
        if (j->artifacts)
                op->artifacts_json = json_dumps(j->artifacts, JSON_COMPACT);
        fill_media(e, op, res);
        fill_usage(j, op, p, res);
}

static void cache_put(engine_t *e, const struct job *j,
                      const struct pgop *fin);

void eng_finish_job(engine_t *e, struct job *j, int ok,
                    const struct provider_result *res)
{
        struct pgop *op = pgop_new(PGOP_FINISH);

        eng_release_admission(e, j, -1); /* whatever path ended it */
        op->opaque = j;
        op->job_id = xstrdup(j->id);
        op->state = xstrdup(ok ? "succeeded" : j->cancel ? "cancelled"
                                                         : "failed");
        op->n_attempts = (int32_t)j->n_att;
        op->attempts_json = attempts_json(j);
        if (ok) {
                fill_success(e, j, op, eng_cur_provider(e, j), res);
                cache_put(e, j, op);
        } else {
                op->error_class = xstrdup(j->fail_class);
                op->error = xstrdup(j->fail_reason);
                if (j->cancel && j->task_id)
                        op->billing_note = xstrdup(
                                j->cancel_ok
                                        ? "cancelled while its provider task "
                                          "ran: any hold is refunded to the "
                                          "tenant; the task was cancelled at "
                                          "the provider, which bills at most "
                                          "what it ran"
                                        : "cancelled while its provider task "
                                          "ran: any hold is refunded to the "
                                          "tenant; the provider may still "
                                          "bill the task to us");
        }
        j->state = JOB_FINISHING;
        pgsink_submit(e->ps, op);
}

void eng_fail_job(engine_t *e, struct job *j, const char *cls,
                  const char *fmt, ...)
{
        char why[sizeof(j->fail_reason)];
        va_list ap;

        /* Format aside first: callers pass j->fail_reason as an argument. */
        snprintf(j->fail_class, sizeof(j->fail_class), "%s", cls);
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        memcpy(j->fail_reason, why, sizeof(why));
        log_dbg(LOG_DBG_JOB, "job", "job %s failed: %s", j->id,
                j->fail_reason);
        eng_finish_job(e, j, 0, NULL);
}

/* A cacheable job succeeded: keep its answer for the next identical one. */
static void cache_put(engine_t *e, const struct job *j,
                      const struct pgop *fin)
{
        struct pgop *op;

        if (!j->cache_key[0] || !fin->provider)
                return;
        op = pgop_new(PGOP_CACHE_PUT);
        op->holder = xstrdup(j->cache_key);
        op->provider = xstrdup(fin->provider);
        op->model = xstrdup(fin->model);
        op->text = xstrdup(fin->text);
        op->finish_reason = xstrdup(fin->finish_reason);
        op->usage_json = xstrdup(fin->usage_json);
        op->in_tokens = fin->in_tokens;
        op->out_tokens = fin->out_tokens;
        op->lease_s = (int32_t)e->w->cache_ttl_s;
        pgsink_submit(e->ps, op);
}

/* ---- the completion event ----------------------------------------------- */

/* The job's metadata as event entries (strings borrowed from the job). */
static Genq__V1__JobEvent__MetadataEntry **
meta_entries(const Genq__V1__Job *pb, Genq__V1__JobEvent__MetadataEntry **mdp)
{
        size_t n = pb->n_metadata;
        Genq__V1__JobEvent__MetadataEntry *md = xcalloc(n ? n : 1,
                                                        sizeof(*md));
        Genq__V1__JobEvent__MetadataEntry **v = xcalloc(n ? n : 1,
                                                         sizeof(*v));

        for (size_t i = 0; i < n; i++) {
                genq__v1__job_event__metadata_entry__init(&md[i]);
                md[i].key = pb->metadata[i]->key;
                md[i].value = pb->metadata[i]->value;
                v[i] = &md[i];
        }
        *mdp = md;
        return v;
}

/* The job's completion event, after its final state is committed. */
void eng_publish_event(engine_t *e, const struct job *j,
                       const struct pgop *op)
{
        Genq__V1__JobEvent ev = GENQ__V1__JOB_EVENT__INIT;
        json_t *urls = op->urls_json ? json_loads(op->urls_json, 0, NULL)
                                     : NULL;
        Genq__V1__JobEvent__MetadataEntry *md;
        char ref[200], *sv[64];
        uint8_t *buf;
        size_t len, n = 0;

        snprintf(ref, sizeof(ref), "postgres:results/%s", j->id);
        ev.job_id = (char *)j->id;
        ev.tenant_id = j->pb->tenant_id;
        ev.kind = j->pb->kind;
        ev.state = op->state;
        ev.provider = op->provider ? op->provider : (char *)"";
        ev.model = op->model ? op->model : (char *)"";
        for (; urls && n < json_array_size(urls) && n < 64; n++)
                sv[n] = (char *)json_string_value(json_array_get(urls, n));
        ev.n_result_urls = n;
        ev.result_urls = sv;
        ev.result_ref = strcmp(op->state, "succeeded") ? (char *)"" : ref;
        ev.credits = op->amount ? op->amount : (char *)"0";
        ev.error_class = op->error_class ? op->error_class : (char *)"";
        ev.error = op->error ? op->error : (char *)"";
        ev.finished_at_ms = eng_wall_ms();
        ev.n_metadata = j->pb->n_metadata;
        ev.metadata = meta_entries(j->pb, &md);
        buf = codec_event_encode(&ev, &len);
        kio_event(e->kio, j->id, buf, len);
        free(buf);
        free(md);
        free(ev.metadata);
        json_decref(urls);
}

/* The completion event as JSON, for the job's callback_url: the same
 * fields as the JobEvent on genq.events. */
void eng_send_hook(engine_t *e, const struct job *j, const struct pgop *op)
{
        json_t *o = json_object(), *md = json_object();
        json_t *urls = op->urls_json ? json_loads(op->urls_json, 0, NULL)
                                     : NULL;
        char ref[200], *body;

        snprintf(ref, sizeof(ref), "postgres:results/%s", j->id);
        json_object_set_new(o, "job_id", json_string(j->id));
        json_object_set_new(o, "tenant_id", json_string(j->pb->tenant_id));
        json_object_set_new(o, "kind",
                            json_string(codec_kind_name(j->pb->kind)));
        json_object_set_new(o, "state", json_string(op->state));
        json_object_set_new(o, "provider",
                            json_string(op->provider ? op->provider : ""));
        json_object_set_new(o, "model",
                            json_string(op->model ? op->model : ""));
        json_object_set_new(o, "result_urls",
                            json_is_array(urls) ? json_incref(urls)
                                                : json_array());
        json_object_set_new(o, "result_ref",
                            json_string(strcmp(op->state, "succeeded")
                                                ? ""
                                                : ref));
        json_object_set_new(o, "credits",
                            json_string(op->amount ? op->amount : "0"));
        json_object_set_new(o, "error_class",
                            json_string(op->error_class ? op->error_class
                                                        : ""));
        json_object_set_new(o, "error",
                            json_string(op->error ? op->error : ""));
        json_object_set_new(o, "finished_at_ms", json_integer(eng_wall_ms()));
        for (size_t i = 0; i < j->pb->n_metadata; i++)
                json_object_set_new(md, j->pb->metadata[i]->key,
                                    json_string(j->pb->metadata[i]->value));
        json_object_set_new(o, "metadata", md);
        body = json_dumps(o, JSON_COMPACT);
        hooks_add(e->hooks, j->id, j->pb->callback_url, body, e->now_us);
        free(body);
        json_decref(o);
        json_decref(urls);
}
