/*
 * pgsink: the worker's Postgres writer thread.
 *
 * DESIGN
 * The event loop must never wait on the database, and a commit costs about
 * 0.35 ms alone but about 55 us per job when ~100 jobs share it (DESIGN
 * section 6).  So all writes go through one thread that owns one
 * connection: ops queue under a mutex, the thread takes up to `batch` of
 * them (waiting up to `batch_ms` for a batch to fill), sends every
 * statement of the batch in pipeline mode and syncs once.  Between syncs
 * Postgres runs the statements as one implicit transaction, so a batch is
 * all-or-nothing; if it fails, each op is re-run alone to find and fail
 * only the bad one.  Finished ops go to a done list and an eventfd wakes
 * the loop.
 *
 * Results are small (a row or a count per statement), so writing the whole
 * pipeline before reading cannot fill the socket buffers at the default
 * batch of 128 ops; batches far larger would need non-blocking mode.
 */
#include "pgsink.h"

#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pgutil.h"
#include "xmem.h"

#define MAX_PARAMS 32
#define RECONNECT_MAX_MS 5000

/* Prepared statements, by index. */
enum stmt {
        S_TENANT,
        S_ACCEPT,
        S_REJECT,
        S_FINISH,
        S_RENEW,
        S_RELEASE,
        S_SWEEP,
        S_TASK_START,
        S_TASK_END,
        S_HOLD,
        S_REFUND,
        S_SPEND_ROW,
        S_RESERVE,
        S_TASK_UNKNOWN,
        S_CANCELS,
        S_BUDGETED,
        S_CALLBACKS,
        S_HOOK,
        S_ADMIT,
        S_UNADMIT,
        S_QUOTA_ADJ,
        S_POLICY,
        S_KEY_OFF,
        S_CACHE_GET,
        S_CACHE_PUT,
        N_STMTS,
};

static const char *stmt_sql[N_STMTS] = {
        [S_TENANT] = "INSERT INTO tenants (tenant_id) VALUES ($1) "
                     "ON CONFLICT DO NOTHING",
        /* Insert the job already leased to us; if it exists, take the
         * lease only when nobody holds a live one (or we do: a redelivery
         * to this same worker, deduplicated by the engine).  No row back
         * means: final already, or leased by another live worker.  One
         * statement and, for a new job, one row version. */
        [S_ACCEPT] =
                "INSERT INTO jobs AS j (job_id, tenant_id, kind, priority, "
                "route, payload, metadata, source_topic, source_partition, "
                "source_offset, created_at, deadline, state, lease_owner, "
                "lease_until, runs, started_at) "
                "VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7::jsonb, $8, "
                "$9, $10, CASE WHEN $11::bigint > 0 THEN "
                "to_timestamp($11::bigint / 1000.0) ELSE now() END, "
                "CASE WHEN $12::bigint > 0 THEN "
                "to_timestamp($12::bigint / 1000.0) END, 'running', $13, "
                "now() + make_interval(secs => $14::int), 1, now()) "
                "ON CONFLICT (job_id) DO UPDATE SET state = 'running', "
                "lease_owner = EXCLUDED.lease_owner, "
                "lease_until = EXCLUDED.lease_until, runs = j.runs + "
                "CASE WHEN j.lease_owner = EXCLUDED.lease_owner THEN 0 "
                "ELSE 1 END, "
                "started_at = coalesce(j.started_at, now()) "
                "WHERE j.state IN ('queued', 'running') "
                "AND (j.lease_owner IS NULL OR j.lease_owner = "
                "EXCLUDED.lease_owner OR j.lease_until < now()) "
                "RETURNING j.runs, EXISTS (SELECT 1 FROM job_cancels c "
                "WHERE c.job_id = j.job_id)",
        [S_REJECT] =
                "INSERT INTO jobs (job_id, tenant_id, kind, state, payload, "
                "source_topic, source_partition, source_offset, created_at, "
                "finished_at, error_class, error) "
                "VALUES ($1, $2, $3, 'rejected', $4, $5, $6, $7, now(), "
                "now(), 'invalid', $8) ON CONFLICT (job_id) DO NOTHING",
        /* One statement: the final state only if we still hold the lease;
         * result and charge only then; attempts always (they happened). */
        /* One statement: the final state only if we still hold the lease;
         * result, task and charge only then; attempts always (they
         * happened).  The charge: tokens at the per-`per` token prices
         * plus natural units at the unit price, exact decimals, from the
         * price snapshot that is stored with it. */
        [S_FINISH] =
                "WITH j AS (UPDATE jobs SET state = $3::text, "
                "finished_at = now(), provider = $4::text, model = $5::text, "
                "attempts = attempts + $6::int, error_class = $7::text, "
                "error = $8::text, billing_note = $26::text, "
                "lease_owner = NULL, lease_until = NULL "
                "WHERE job_id = $1::text AND lease_owner = $2::text "
                "AND state = 'running' "
                "RETURNING job_id, tenant_id, kind, accepted_at, "
                "reserved_credits AS res_c, reserved_period AS res_p), "
                "a AS (INSERT INTO attempts (job_id, attempt_no, provider, "
                "key_id, model, http_status, outcome, error, latency_ms, "
                "worker, started_at) SELECT $1::text, x.no, x.provider, "
                "x.key_id, x.model, x.status, x.outcome, x.error, "
                "x.latency_ms, $2::text, to_timestamp(x.started_ms / 1000.0) "
                "FROM jsonb_to_recordset($9::jsonb) AS x(no int, "
                "provider text, key_id text, model text, status int, "
                "outcome text, error text, latency_ms int, started_ms bigint)),"
                " t AS (UPDATE tasks SET state = CASE WHEN $3::text = "
                "'succeeded' THEN 'succeeded' ELSE 'failed' END, "
                "finished_at = now(), polls = $25::int "
                "WHERE job_id = $1::text AND provider_task_id = $24::text "
                "AND finished_at IS NULL AND EXISTS (SELECT 1 FROM j)), "
                "r AS (INSERT INTO results (job_id, provider, model, "
                "content_type, text_content, finish_reason, input_tokens, "
                "output_tokens, units, unit, usage, data, data_bytes, urls, "
                "provider_cost, note) SELECT job_id, $4::text, "
                "$5::text, $18::text, $10::text, $11::text, $12::bigint, "
                "$13::bigint, CASE WHEN $17::text IS NULL THEN "
                "$12::bigint + $13::bigint ELSE $16::numeric END, "
                "coalesce($17::text, 'tokens'), $14::jsonb, $19::bytea, "
                "$20::bigint, ARRAY(SELECT jsonb_array_elements_text("
                "coalesce($21::jsonb, '[]'))), $22::text, $23::text "
                "FROM j WHERE $3::text = 'succeeded' "
                "ON CONFLICT (job_id) DO NOTHING), "
                /* The ledger: a charge, or, when a hold was charged at
                 * task acceptance, an adjustment settling it to the real
                 * cost (none if equal).  Then the tenant's spend: the
                 * reservation released, the job's net cost added. */
                "prev AS (SELECT coalesce(sum(CASE entry_type WHEN "
                "'refund' THEN -credits ELSE credits END), 0) AS c, "
                "coalesce(sum(CASE entry_type WHEN 'refund' THEN -usd "
                "ELSE usd END), 0) AS u, coalesce(bool_or(entry_type = "
                "'charge'), false) AS charged FROM credit_ledger "
                "WHERE job_id = $1::text), "
                "cost AS (SELECT p, genq_price_credits(p, $12::bigint, "
                "$13::bigint, $16::numeric) AS c, genq_price_usd(p, "
                "$12::bigint, $13::bigint, $16::numeric) AS u "
                "FROM (SELECT $15::jsonb AS p) s "
                "WHERE $3::text = 'succeeded' AND p IS NOT NULL), "
                "l AS (INSERT INTO credit_ledger (job_id, tenant_id, "
                "entry_type, credits, usd, kind, provider, model, unit, "
                "units, price_snapshot, provider_cost, job_accepted_at) "
                "SELECT j.job_id, j.tenant_id, CASE WHEN prev.charged "
                "THEN 'adjustment' ELSE 'charge' END, CASE WHEN "
                "prev.charged THEN cost.c - prev.c ELSE cost.c END, "
                "CASE WHEN prev.charged THEN cost.u - prev.u ELSE cost.u "
                "END, j.kind, $4::text, $5::text, "
                "coalesce($17::text, 'tokens'), "
                "CASE WHEN $17::text IS NULL THEN $12::bigint + $13::bigint "
                "ELSE $16::numeric END, cost.p, "
                "CASE WHEN $22::text ~ '^[0-9]+(\\.[0-9]+)?$' "
                "THEN $22::numeric END, j.accepted_at "
                "FROM j, cost, prev WHERE NOT prev.charged "
                "OR cost.c <> prev.c OR cost.u <> prev.u "
                "ON CONFLICT DO NOTHING RETURNING credits), "
                /* A failed job keeps nothing it was charged: a hold (its
                 * video's media expired, say) is refunded, once. */
                "rf AS (INSERT INTO credit_ledger (job_id, tenant_id, "
                "entry_type, credits, usd, kind, provider, model, unit, "
                "units, price_snapshot, provider_cost, job_accepted_at) "
                "SELECT c.job_id, c.tenant_id, 'refund', c.credits, c.usd, "
                "c.kind, c.provider, c.model, c.unit, c.units, "
                "c.price_snapshot, c.provider_cost, c.job_accepted_at "
                "FROM credit_ledger c, j WHERE c.job_id = j.job_id AND "
                "c.entry_type = 'charge' AND $3::text <> 'succeeded' "
                "ON CONFLICT DO NOTHING RETURNING credits), "
                "ar AS (INSERT INTO artifacts (job_id, n, url, path, bytes, "
                "sha256, content_type) SELECT j.job_id, x.n, x.url, x.path, "
                "x.bytes, x.sha256, x.content_type FROM j, "
                "jsonb_to_recordset(coalesce($27::jsonb, '[]')) AS x(n int, "
                "url text, path text, bytes bigint, sha256 text, "
                "content_type text) WHERE $3::text = 'succeeded' "
                "ON CONFLICT DO NOTHING), "
                "sp AS (UPDATE tenant_spend s SET reserved = "
                "greatest(s.reserved - j.res_c, 0), spent = s.spent + "
                "prev.c + coalesce((SELECT sum(credits) FROM l), 0) - "
                "coalesce((SELECT sum(credits) FROM rf), 0) "
                "FROM j, prev WHERE j.res_c IS NOT NULL "
                "AND s.tenant_id = j.tenant_id AND s.period_start = j.res_p) "
                "SELECT count(*), (SELECT c FROM prev) + coalesce((SELECT "
                "sum(credits) FROM l), 0) - coalesce((SELECT sum(credits) "
                "FROM rf), 0) FROM j",
        [S_RENEW] = "UPDATE jobs SET lease_until = now() + "
                    "make_interval(secs => $2::int) "
                    "WHERE lease_owner = $1 AND state = 'running'",
        [S_RELEASE] = "UPDATE jobs SET lease_owner = NULL, lease_until = NULL,"
                      " state = 'queued' WHERE lease_owner = $1 "
                      "AND state = 'running' AND job_id IN "
                      "(SELECT jsonb_array_elements_text($2::jsonb))",
        /* Jobs whose worker died: take them over, oldest first, skipping
         * rows another sweeper holds.  The 5 s guard leaves alone a job
         * whose first lease is being taken right now. */
        [S_SWEEP] = "UPDATE jobs SET lease_owner = $1, lease_until = now() + "
                    "make_interval(secs => $2::int), runs = runs + 1, "
                    "state = 'running' WHERE job_id IN (SELECT job_id FROM "
                    "jobs WHERE state IN ('queued', 'running') AND "
                    "(lease_until IS NULL OR lease_until < now()) AND "
                    "accepted_at < now() - interval '5 seconds' "
                    "AND payload IS NOT NULL "
                    "ORDER BY accepted_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
                    /* An async task the dead worker had accepted is
                     * resumed, never resubmitted: it comes back too. */
                    "RETURNING job_id, payload, (SELECT t.provider || '|' || "
                    "coalesce(t.key_id, '') || '|' || t.polls || '|' || "
                    "t.provider_task_id FROM tasks t WHERE t.job_id = "
                    "jobs.job_id AND t.finished_at IS NULL AND "
                    "t.provider_task_id IS NOT NULL ORDER BY t.task_id DESC "
                    "LIMIT 1)",
        [S_TASK_START] =
                "INSERT INTO tasks (job_id, provider, key_id, "
                "provider_task_id, state, next_poll_at, lease_owner) "
                "VALUES ($1, $2, $3, $4, 'polling', now() + "
                "make_interval(secs => $5::double precision), $6) "
                "ON CONFLICT (provider, provider_task_id) DO NOTHING",
        [S_TASK_END] =
                "UPDATE tasks SET state = $3, error = $4, polls = $5::int, "
                "finished_at = now(), lease_owner = NULL "
                "WHERE provider = $1 AND provider_task_id = $2 "
                "AND finished_at IS NULL",
        /* A video provider starts spending when it accepts the task: the
         * tenant is charged then (a hold), settled at finish, and
         * refunded once if the task fails. */
        [S_HOLD] =
                "INSERT INTO credit_ledger (job_id, tenant_id, entry_type, "
                "credits, usd, kind, provider, model, unit, units, "
                "price_snapshot, job_accepted_at) SELECT job_id, tenant_id, "
                "'charge', genq_price_credits($3::jsonb, NULL, NULL, "
                "$4::numeric), genq_price_usd($3::jsonb, NULL, NULL, "
                "$4::numeric), kind, $2, $5, $6, $4::numeric, $3::jsonb, "
                "accepted_at FROM jobs WHERE job_id = $1 AND kind = 'video' "
                "ON CONFLICT DO NOTHING",
        [S_REFUND] =
                "INSERT INTO credit_ledger (job_id, tenant_id, entry_type, "
                "credits, usd, kind, provider, model, unit, units, "
                "price_snapshot, provider_cost, job_accepted_at) "
                "SELECT job_id, tenant_id, 'refund', credits, usd, kind, "
                "provider, model, unit, units, price_snapshot, provider_cost, "
                "job_accepted_at FROM credit_ledger WHERE job_id = $1 "
                "AND entry_type = 'charge' ON CONFLICT DO NOTHING",
        [S_TASK_UNKNOWN] =
                "INSERT INTO tasks (job_id, provider, key_id, state, error, "
                "finished_at) VALUES ($1, $2, $3, 'unknown', $4, now())",
        [S_CANCELS] =
                "SELECT c.job_id FROM job_cancels c JOIN jobs j USING "
                "(job_id) WHERE j.lease_owner = $1 AND j.state = 'running'",
        /* Claim the callbacks of the jobs this worker runs (each row is
         * deleted, so applied once), and drop those of finished jobs. */
        [S_CALLBACKS] =
                "WITH gc AS (DELETE FROM task_callbacks g USING jobs f "
                "WHERE g.job_id = f.job_id AND f.state NOT IN ('queued', "
                "'running')) DELETE FROM task_callbacks c USING jobs j "
                "WHERE c.job_id = j.job_id AND j.lease_owner = $1 AND "
                "j.state = 'running' RETURNING c.job_id, c.body, c.provider",
        /* Shared limits (schema 0007): one round trip per call. */
        [S_ADMIT] = "SELECT ok, coalesce(reason, ''), coalesce(wait_ms, -1) "
                    "FROM genq_admit($1, $2, $3, $4::int, $5::int, $6::int, "
                    "$7::int, $8, $9::numeric, $10::int)",
        [S_UNADMIT] = "SELECT genq_release($1, $2, $3, $4::int)",
        [S_QUOTA_ADJ] = "SELECT genq_quota_adjust($1, $2, $3, $4::numeric)",
        [S_POLICY] = "SELECT kind || '|' || provider || '|' || key_id || '|' "
                     "|| coalesce(enabled::text, '') || '|' || "
                     "coalesce(priority::text, '') || '|' || "
                     "coalesce(reason, '') FROM policy_state "
                     "WHERE $1::text IS NOT NULL",
        [S_KEY_OFF] = "SELECT genq_key_disable($1, $2, $3, $4)",
        [S_CACHE_GET] = "UPDATE response_cache SET hits = hits + 1 "
                        "WHERE cache_key = $1 AND expires_at > now() "
                        "RETURNING provider, coalesce(model, ''), text, "
                        "coalesce(finish_reason, ''), usage::text, "
                        "coalesce(in_tokens, -1), coalesce(out_tokens, -1)",
        /* An expired entry is replaced; a live one is kept (the first
         * answer stays the answer until it expires). */
        [S_CACHE_PUT] = "INSERT INTO response_cache AS c (cache_key, "
                        "provider, model, text, finish_reason, usage, "
                        "in_tokens, out_tokens, expires_at) VALUES ($1, $2, "
                        "$3, $4, $5, $6::jsonb, $7::bigint, $8::bigint, "
                        "now() + make_interval(secs => $9::int)) "
                        "ON CONFLICT (cache_key) DO UPDATE SET "
                        "provider = EXCLUDED.provider, model = EXCLUDED.model, "
                        "text = EXCLUDED.text, finish_reason = "
                        "EXCLUDED.finish_reason, usage = EXCLUDED.usage, "
                        "in_tokens = EXCLUDED.in_tokens, out_tokens = "
                        "EXCLUDED.out_tokens, hits = 0, created_at = now(), "
                        "expires_at = EXCLUDED.expires_at "
                        "WHERE c.expires_at <= now()",
        [S_HOOK] =
                "INSERT INTO hook_deliveries (job_id, attempt, url, "
                "http_status, error, delivered) VALUES ($1, $2::int, $3, "
                "nullif($4::int, 0), $5, $6::boolean) ON CONFLICT DO NOTHING",
        [S_BUDGETED] = "SELECT tenant_id FROM tenants "
                       "WHERE credit_budget IS NOT NULL AND $1::text IS NOT NULL",
        [S_SPEND_ROW] =
                "INSERT INTO tenant_spend (tenant_id, period_start) "
                "SELECT tenant_id, genq_period_start(budget_period, now()) "
                "FROM tenants WHERE tenant_id = $1 AND credit_budget IS NOT "
                "NULL ON CONFLICT DO NOTHING",
        /* Reserve only if it fits: the UPDATE's row lock serializes every
         * worker, and its WHERE is re-checked on the locked row.  A job
         * that already holds a reservation (re-driven) keeps it. */
        [S_RESERVE] =
                "WITH t AS (SELECT credit_budget AS b, genq_period_start("
                "budget_period, now()) AS ps FROM tenants WHERE tenant_id = "
                "$2 AND credit_budget IS NOT NULL), "
                "fresh AS (SELECT 1 FROM jobs WHERE job_id = $1 AND "
                "reserved_credits IS NULL), "
                "upd AS (UPDATE tenant_spend s SET reserved = s.reserved + "
                "$3::numeric FROM t WHERE EXISTS (SELECT 1 FROM fresh) AND "
                "s.tenant_id = $2 AND s.period_start = t.ps AND s.spent + "
                "s.reserved + $3::numeric <= t.b RETURNING s.period_start), "
                "mark AS (UPDATE jobs SET reserved_credits = $3::numeric, "
                "reserved_period = upd.period_start FROM upd "
                "WHERE job_id = $1 RETURNING 1) "
                "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM "
                "fresh), (SELECT count(*) FROM upd), (SELECT b FROM t), "
                "(SELECT s.spent || '|' || s.reserved FROM tenant_spend s, t "
                "WHERE s.tenant_id = $2 AND s.period_start = t.ps), "
                "(SELECT count(*) FROM job_cancels WHERE job_id = $1)",
};

struct pgsink_s {
        char *dsn;
        char *worker_id;
        char lease_s[16];
        int batch, batch_ms;
        PGconn *conn;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct pgop *q_head, *q_tail;   /**< submitted, not yet run */
        size_t queued;
        struct pgop *d_head, *d_tail;   /**< finished, not yet taken */
        size_t pending;                 /**< submitted - taken */
        int stop;
        int efd;
        uint64_t n_batches, n_ops;
        char **tenants;                 /**< ids known committed (set) */
        size_t tenants_cap, n_tenants;
};

/* Parameters of one statement. */
struct params {
        const char *v[MAX_PARAMS];
        int len[MAX_PARAMS];
        int fmt[MAX_PARAMS];
        char num[MAX_PARAMS][24];
        int n;
};

/* ---- ops ---------------------------------------------------------------- */

struct pgop *pgop_new(enum pgop_type type)
{
        struct pgop *op = xcalloc(1, sizeof(*op));

        op->type = type;
        op->partition = -1;
        op->offset = -1;
        op->in_tokens = op->out_tokens = -1;
        op->units = -1;
        op->hold_units = -1;
        op->data_bytes = -1;
        return op;
}

void pgop_destroy(struct pgop *op)
{
        if (!op)
                return;
        free(op->job_id);
        free(op->tenant_id);
        free(op->kind);
        free(op->route);
        free(op->metadata_json);
        free(op->topic);
        free(op->payload);
        free(op->state);
        free(op->provider);
        free(op->model);
        free(op->error_class);
        free(op->error);
        free(op->attempts_json);
        free(op->billing_note);
        free(op->content_type);
        free(op->data);
        free(op->urls_json);
        free(op->provider_cost);
        free(op->note);
        free(op->artifacts_json);
        free(op->key_id);
        free(op->task_id);
        free(op->amount);
        free(op->text);
        free(op->finish_reason);
        free(op->usage_json);
        free(op->price_json);
        free(op->holder);
        for (size_t i = 0; i < op->n_ids; i++)
                free(op->ids[i]);
        free(op->ids);
        for (size_t i = 0; i < op->n_rows; i++) {
                free(op->rows[i].job_id);
                free(op->rows[i].payload);
                free(op->rows[i].task);
        }
        free(op->rows);
        free(op);
}

/* ---- parameters ----------------------------------------------------------*/

static void p_str(struct params *p, const char *s)
{
        p->v[p->n] = s;
        p->len[p->n] = 0;
        p->fmt[p->n] = 0;
        p->n++;
}

static void p_int(struct params *p, int64_t x)
{
        snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)x);
        p_str(p, p->num[p->n]);
}

/* NULL for an unknown (negative) count. */
static void p_count(struct params *p, int64_t x)
{
        if (x < 0)
                p_str(p, NULL);
        else
                p_int(p, x);
}

static void p_bin(struct params *p, const uint8_t *b, size_t n)
{
        p->v[p->n] = (const char *)b;
        p->len[p->n] = (int)n;
        p->fmt[p->n] = 1;
        p->n++;
}

/* ---- tenant cache -------------------------------------------------------- */

/* The jobs table refers to tenants, so each new tenant's row is inserted
 * before its first job.  Tenants that a committed batch has seen need no
 * insert again: an open-addressing set of their ids, sink thread only. */
#define TENANTS_MAX 65536

static size_t tenant_slot(const pgsink_t *ps, const char *id)
{
        uint64_t h = 1469598103934665603ULL;
        size_t i;

        for (const char *p = id; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        for (i = (size_t)h & (ps->tenants_cap - 1); ps->tenants[i];
             i = (i + 1) & (ps->tenants_cap - 1))
                if (!strcmp(ps->tenants[i], id))
                        break;
        return i;
}

static int tenant_known(const pgsink_t *ps, const char *id)
{
        return ps->tenants[tenant_slot(ps, id)] != NULL;
}

static void tenants_clear(pgsink_t *ps)
{
        for (size_t i = 0; i < ps->tenants_cap; i++) {
                free(ps->tenants[i]);
                ps->tenants[i] = NULL;
        }
        ps->n_tenants = 0;
}

/* After a batch committed: remember the tenants its ACCEPT ops made. */
static void tenants_learn(pgsink_t *ps, struct pgop **ops, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                size_t slot;

                if (ops[i]->type != PGOP_ACCEPT || ops[i]->rc)
                        continue;
                if (ps->n_tenants * 2 >= ps->tenants_cap)
                        tenants_clear(ps); /* bounded: start over */
                slot = tenant_slot(ps, ops[i]->tenant_id);
                if (!ps->tenants[slot]) {
                        ps->tenants[slot] = xstrdup(ops[i]->tenant_id);
                        ps->n_tenants++;
                }
        }
}

/* ---- statements per op -------------------------------------------------- */

static int send(pgsink_t *ps, enum stmt s, const struct params *p)
{
        char name[16];

        snprintf(name, sizeof(name), "s%d", (int)s);
        return PQsendQueryPrepared(ps->conn, name, p->n, p->v, p->len, p->fmt,
                                   0)
                       ? 1
                       : -1;
}

static int send_accept(pgsink_t *ps, const struct pgop *op)
{
        struct params t = {0}, j = {0};
        int n = 0;

        p_str(&t, op->tenant_id);
        p_str(&j, op->job_id);
        p_str(&j, op->tenant_id);
        p_str(&j, op->kind);
        p_int(&j, op->priority);
        p_str(&j, op->route ? op->route : "");
        p_bin(&j, op->payload, op->payload_len);
        p_str(&j, op->metadata_json);
        p_str(&j, op->topic);
        if (op->topic) {
                p_int(&j, op->partition);
                p_int(&j, op->offset);
        } else {
                p_str(&j, NULL);
                p_str(&j, NULL);
        }
        p_int(&j, op->created_ms);
        p_int(&j, op->deadline_ms);
        p_str(&j, ps->worker_id);
        p_str(&j, ps->lease_s);
        if (!tenant_known(ps, op->tenant_id)) {
                if (send(ps, S_TENANT, &t) < 0)
                        return -1;
                n++;
        }
        if (send(ps, S_ACCEPT, &j) < 0)
                return -1;
        return n + 1;
}

static int send_reject(pgsink_t *ps, const struct pgop *op)
{
        struct params t = {0}, r = {0};

        p_str(&t, op->tenant_id);
        p_str(&r, op->job_id);
        p_str(&r, op->tenant_id);
        p_str(&r, op->kind);
        p_bin(&r, op->payload, op->payload_len);
        p_str(&r, op->topic);
        p_int(&r, op->partition);
        p_int(&r, op->offset);
        p_str(&r, op->error);
        if (send(ps, S_TENANT, &t) < 0 || send(ps, S_REJECT, &r) < 0)
                return -1;
        return 2;
}

static void p_double(struct params *p, double x)
{
        if (x < 0) {
                p_str(p, NULL);
                return;
        }
        snprintf(p->num[p->n], sizeof(p->num[0]), "%.6f", x);
        p_str(p, p->num[p->n]);
}

static int send_task(pgsink_t *ps, const struct pgop *op)
{
        struct params t = {0}, h = {0};

        p_str(&t, op->type == PGOP_TASK_START ? op->job_id : op->provider);
        if (op->type == PGOP_TASK_START) {
                p_str(&t, op->provider);
                p_str(&t, op->key_id);
                p_str(&t, op->task_id);
                p_double(&t, op->first_poll_s);
                p_str(&t, ps->worker_id);
                if (send(ps, S_TASK_START, &t) < 0)
                        return -1;
                if (!op->price_json || op->hold_units < 0)
                        return 1;
                p_str(&h, op->job_id);
                p_str(&h, op->provider);
                p_str(&h, op->price_json);
                p_double(&h, op->hold_units);
                p_str(&h, op->model);
                p_str(&h, op->unit);
                return send(ps, S_HOLD, &h) < 0 ? -1 : 2;
        }
        p_str(&t, op->task_id);
        p_str(&t, op->state);
        p_str(&t, op->error);
        p_int(&t, op->polls);
        p_str(&h, op->job_id);
        if (send(ps, S_TASK_END, &t) < 0 || send(ps, S_REFUND, &h) < 0)
                return -1;
        return 2;
}

static int send_reserve(pgsink_t *ps, const struct pgop *op)
{
        struct params r = {0}, s = {0};

        p_str(&s, op->tenant_id);
        p_str(&r, op->job_id);
        p_str(&r, op->tenant_id);
        p_str(&r, op->amount);
        if (send(ps, S_SPEND_ROW, &s) < 0 || send(ps, S_RESERVE, &r) < 0)
                return -1;
        return 2;
}

static int send_finish(pgsink_t *ps, const struct pgop *op)
{
        struct params f = {0};

        p_str(&f, op->job_id);
        p_str(&f, ps->worker_id);
        p_str(&f, op->state);
        p_str(&f, op->provider);
        p_str(&f, op->model);
        p_int(&f, op->n_attempts);
        p_str(&f, op->error_class);
        p_str(&f, op->error);
        p_str(&f, op->attempts_json ? op->attempts_json : "[]");
        p_str(&f, op->text);
        p_str(&f, op->finish_reason);
        p_count(&f, op->in_tokens);
        p_count(&f, op->out_tokens);
        p_str(&f, op->usage_json);
        p_str(&f, op->price_json);
        p_double(&f, op->units);
        p_str(&f, op->unit);
        p_str(&f, op->content_type);
        if (op->data)
                p_bin(&f, op->data, op->data_len);
        else
                p_str(&f, NULL);
        p_count(&f, op->data_bytes);
        p_str(&f, op->urls_json);
        p_str(&f, op->provider_cost);
        p_str(&f, op->note);
        p_str(&f, op->task_id);
        p_int(&f, op->polls);
        p_str(&f, op->billing_note);
        p_str(&f, op->artifacts_json);
        return send(ps, S_FINISH, &f);
}

static void p_num(struct params *p, double x)
{
        snprintf(p->num[p->n], sizeof(p->num[0]), "%.6f", x);
        p_str(p, p->num[p->n]);
}

/* ADMIT: one statement.  UNADMIT: the release, plus the quota correction
 * when the call used more or fewer units than it was admitted for. */
static int send_admit(pgsink_t *ps, const struct pgop *op)
{
        struct params a = {0}, q = {0};

        p_str(&a, op->provider);
        p_str(&a, op->key_id);
        p_str(&a, op->holder);
        if (op->type == PGOP_UNADMIT) {
                int n = 0;

                /* No holder: only a quota correction (a chunk given back). */
                p_count(&a, op->tokens);
                if (op->holder && send(ps, S_UNADMIT, &a) < 0)
                        return -1;
                n += op->holder != NULL;
                if (!op->quota_unit || op->quota_n == 0)
                        return n;
                p_str(&q, op->provider);
                p_str(&q, op->key_id);
                p_str(&q, op->quota_unit);
                p_num(&q, op->quota_n);
                return send(ps, S_QUOTA_ADJ, &q) < 0 ? -1 : n + 1;
        }
        p_int(&a, op->cap);
        p_int(&a, op->rpm);
        p_int(&a, op->tpm);
        p_int(&a, op->tokens);
        p_str(&a, op->quota_unit);
        if (op->quota_unit)
                p_num(&a, op->quota_n);
        else
                p_str(&a, NULL);
        p_int(&a, op->lease_s);
        return send(ps, S_ADMIT, &a);
}

static int send_other(pgsink_t *ps, struct pgop *op)
{
        struct params p = {0};
        char *ids = NULL;
        int rc;

        p_str(&p, ps->worker_id);
        switch (op->type) {
        case PGOP_RENEW:
                p_str(&p, ps->lease_s);
                return send(ps, S_RENEW, &p);
        case PGOP_SWEEP:
                p_str(&p, ps->lease_s);
                p_int(&p, op->limit);
                return send(ps, S_SWEEP, &p);
        case PGOP_CALLBACKS:
                return send(ps, S_CALLBACKS, &p);
        case PGOP_POLICY:
                return send(ps, S_POLICY, &p);
        case PGOP_ADMIT:
        case PGOP_UNADMIT:
                return send_admit(ps, op);
        case PGOP_CACHE_GET: {
                struct params g = {0};

                p_str(&g, op->holder);
                return send(ps, S_CACHE_GET, &g);
        }
        case PGOP_CACHE_PUT: {
                struct params c = {0};

                p_str(&c, op->holder);
                p_str(&c, op->provider);
                p_str(&c, op->model);
                p_str(&c, op->text);
                p_str(&c, op->finish_reason);
                p_str(&c, op->usage_json);
                p_count(&c, op->in_tokens);
                p_count(&c, op->out_tokens);
                p_int(&c, op->lease_s);
                return send(ps, S_CACHE_PUT, &c);
        }
        case PGOP_KEY_OFF: {
                struct params k = {0};

                p_str(&k, op->provider);
                p_str(&k, op->key_id);
                p_str(&k, op->error);
                p_str(&k, ps->worker_id);
                return send(ps, S_KEY_OFF, &k);
        }
        case PGOP_HOOK: {
                struct params h = {0};

                p_str(&h, op->job_id);
                p_int(&h, op->polls);
                p_str(&h, op->text);
                p_int(&h, (int32_t)op->hit);
                p_str(&h, op->error);
                p_str(&h, op->cancelled ? "true" : "false");
                return send(ps, S_HOOK, &h);
        }
        case PGOP_RELEASE: {
                json_t *a = json_array();

                for (size_t i = 0; i < op->n_ids; i++)
                        json_array_append_new(a, json_string(op->ids[i]));
                ids = json_dumps(a, JSON_COMPACT);
                json_decref(a);
                p_str(&p, ids);
                rc = send(ps, S_RELEASE, &p);
                free(ids);
                return rc;
        }
        default:
                return -1;
        }
}

/* @returns statements sent for \p op, or -1. */
static int send_op(pgsink_t *ps, struct pgop *op)
{
        switch (op->type) {
        case PGOP_ACCEPT:
                return send_accept(ps, op);
        case PGOP_REJECT:
                return send_reject(ps, op);
        case PGOP_FINISH:
                return send_finish(ps, op);
        case PGOP_TASK_START:
        case PGOP_TASK_END:
                return send_task(ps, op);
        case PGOP_RESERVE:
                return send_reserve(ps, op);
        case PGOP_CANCELS:
        case PGOP_BUDGETED: {
                struct params c = {0};

                p_str(&c, ps->worker_id);
                return send(ps, op->type == PGOP_CANCELS ? S_CANCELS
                                                         : S_BUDGETED,
                            &c);
        }
        case PGOP_TASK_UNKNOWN: {
                struct params u = {0};

                p_str(&u, op->job_id);
                p_str(&u, op->provider);
                p_str(&u, op->key_id);
                p_str(&u, op->error);
                return send(ps, S_TASK_UNKNOWN, &u);
        }
        default:
                return send_other(ps, op);
        }
}

/* ---- results ------------------------------------------------------------ */

/* Results of an op run again (its batch failed, so ops are retried one
 * by one) replace those of the first run. */
static void drop_results(struct pgop *op)
{
        for (size_t i = 0; i < op->n_ids; i++)
                free(op->ids[i]);
        free(op->ids);
        op->ids = NULL;
        op->n_ids = 0;
        for (size_t i = 0; i < op->n_rows; i++) {
                free(op->rows[i].job_id);
                free(op->rows[i].payload);
                free(op->rows[i].task);
        }
        free(op->rows);
        op->rows = NULL;
        op->n_rows = 0;
}

static void take_sweep_rows(struct pgop *op, PGresult *r)
{
        int n = PQntuples(r);

        drop_results(op);
        op->rows = xcalloc((size_t)n, sizeof(*op->rows));
        for (int i = 0; i < n; i++) {
                size_t len = 0;
                unsigned char *raw = PQunescapeBytea(
                        (const unsigned char *)PQgetvalue(r, i, 1), &len);

                op->rows[i].job_id = xstrdup(PQgetvalue(r, i, 0));
                op->rows[i].payload = xmalloc(len ? len : 1);
                if (raw)
                        memcpy(op->rows[i].payload, raw, len);
                op->rows[i].payload_len = raw ? len : 0;
                PQfreemem(raw);
                if (!PQgetisnull(r, i, 2))
                        op->rows[i].task = xstrdup(PQgetvalue(r, i, 2));
        }
        op->n_rows = (size_t)n;
}

/* A cache hit's answer, into the op's FINISH-shaped fields. */
static void take_cached(struct pgop *op, PGresult *r)
{
        op->hit = PQntuples(r) > 0;
        if (!op->hit)
                return;
        free(op->provider);
        free(op->model);
        free(op->text);
        free(op->finish_reason);
        free(op->usage_json);
        op->provider = xstrdup(PQgetvalue(r, 0, 0));
        op->model = *PQgetvalue(r, 0, 1) ? xstrdup(PQgetvalue(r, 0, 1)) : NULL;
        op->text = PQgetisnull(r, 0, 2) ? NULL : xstrdup(PQgetvalue(r, 0, 2));
        op->finish_reason = *PQgetvalue(r, 0, 3)
                                    ? xstrdup(PQgetvalue(r, 0, 3))
                                    : NULL;
        op->usage_json = PQgetisnull(r, 0, 4) ? NULL
                                               : xstrdup(PQgetvalue(r, 0, 4));
        op->in_tokens = atoll(PQgetvalue(r, 0, 5));
        op->out_tokens = atoll(PQgetvalue(r, 0, 6));
}

static void take_ids(struct pgop *op, PGresult *r)
{
        drop_results(op);
        op->n_ids = (size_t)PQntuples(r);
        op->ids = xcalloc(op->n_ids ? op->n_ids : 1, sizeof(char *));
        for (size_t i = 0; i < op->n_ids; i++)
                op->ids[i] = xstrdup(PQgetvalue(r, (int)i, 0));
}

/* hit = 1 if the job may run: its tenant has no budget, it already holds
 * a reservation, or this one fitted; else 0 with the numbers in errstr. */
static void take_reserve(struct pgop *op, PGresult *r)
{
        int budgeted = atoi(PQgetvalue(r, 0, 0));
        int fresh = atoi(PQgetvalue(r, 0, 1));
        int fitted = atoi(PQgetvalue(r, 0, 2));

        op->hit = !budgeted || !fresh || fitted;
        op->cancelled = atoi(PQgetvalue(r, 0, 5)) > 0;
        if (!op->hit)
                snprintf(op->errstr, sizeof(op->errstr),
                         "budget of %s credits this period, spent|reserved "
                         "%s; this job needs up to %s",
                         PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4),
                         op->amount);
}

/* Record the result of statement \p idx (0-based within the op).  The last
 * statement of each op carries what the caller wants to know. */
static void on_result(struct pgop *op, int last, PGresult *r)
{
        ExecStatusType st = PQresultStatus(r);

        if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
                if (op->rc == 0) {
                        snprintf(op->errstr, sizeof(op->errstr), "%s",
                                 st == PGRES_PIPELINE_ABORTED
                                         ? "batch aborted by another op"
                                         : PQresultErrorMessage(r));
                        pgutil_chomp(op->errstr);
                }
                op->rc = -1;
                return;
        }
        if (!last)
                return;
        if (op->type == PGOP_RESERVE)
                take_reserve(op, r);
        else if (op->type == PGOP_CANCELS || op->type == PGOP_BUDGETED ||
                 op->type == PGOP_POLICY)
                take_ids(op, r);
        else if (op->type == PGOP_CACHE_GET)
                take_cached(op, r);
        else if (op->type == PGOP_ADMIT) {
                op->hit = PQntuples(r) && !strcmp(PQgetvalue(r, 0, 0), "t");
                op->wait_ms = PQntuples(r) ? atoll(PQgetvalue(r, 0, 2)) : 0;
                if (PQntuples(r) && !op->hit)
                        snprintf(op->errstr, sizeof(op->errstr), "%s",
                                 PQgetvalue(r, 0, 1));
        }
        else if (op->type == PGOP_SWEEP || op->type == PGOP_CALLBACKS)
                take_sweep_rows(op, r);
        else if (op->type == PGOP_FINISH) {
                op->hit = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
                free(op->amount); /* the job's net credits, for its event */
                op->amount = op->hit ? xstrdup(PQgetvalue(r, 0, 1)) : NULL;
        }
        else if (op->type == PGOP_ACCEPT) {
                op->hit = PQntuples(r);
                op->cancelled = op->hit && !strcmp(PQgetvalue(r, 0, 1), "t");
        }
        else
                op->hit = atoll(PQcmdTuples(r));
}

/* Read the results of \p n statements of \p op. @returns 0, or -1 if the
 * connection failed. */
static int read_op(pgsink_t *ps, struct pgop *op, int n)
{
        for (int i = 0; i < n; i++) {
                PGresult *r = PQgetResult(ps->conn);

                if (!r)
                        return -1;
                on_result(op, i == n - 1, r);
                PQclear(r);
                /* Each statement's results end with a NULL. */
                r = PQgetResult(ps->conn);
                if (r) {
                        PQclear(r);
                        return -1;
                }
        }
        return 0;
}

/* Run \p n ops as one pipeline (one implicit transaction).
 * @returns 0 if it ran (ops' rc tell success), -1 if the connection broke. */
static int run_pipeline(pgsink_t *ps, struct pgop **ops, size_t n)
{
        int counts[n ? n : 1];
        PGresult *r;
        int broken = 0;

        if (!PQenterPipelineMode(ps->conn))
                return -1;
        for (size_t i = 0; i < n; i++) {
                ops[i]->rc = 0;
                ops[i]->errstr[0] = '\0';
                counts[i] = send_op(ps, ops[i]);
                if (counts[i] < 0) {
                        broken = 1;
                        break;
                }
        }
        if (broken || !PQpipelineSync(ps->conn))
                return -1;
        for (size_t i = 0; i < n; i++)
                if (read_op(ps, ops[i], counts[i]))
                        return -1;
        r = PQgetResult(ps->conn);
        if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
                PQclear(r);
                return -1;
        }
        PQclear(r);
        return PQexitPipelineMode(ps->conn) ? 0 : -1;
}

static int any_failed(struct pgop **ops, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (ops[i]->rc)
                        return 1;
        return 0;
}

/* ---- connection --------------------------------------------------------- */

static int prepare_all(pgsink_t *ps, char *errstr, size_t errstr_size)
{
        for (int s = 0; s < N_STMTS; s++) {
                char name[16];
                PGresult *r;

                snprintf(name, sizeof(name), "s%d", s);
                r = PQprepare(ps->conn, name, stmt_sql[s], 0, NULL);
                if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                        snprintf(errstr, errstr_size, "preparing s%d: %s", s,
                                 PQresultErrorMessage(r));
                        pgutil_chomp(errstr);
                        PQclear(r);
                        return -1;
                }
                PQclear(r);
        }
        return 0;
}

static int connect_db(pgsink_t *ps, char *errstr, size_t errstr_size)
{
        PQfinish(ps->conn);
        ps->conn = pgutil_connect(ps->dsn, "genq-worker", errstr, errstr_size);
        if (!ps->conn)
                return -1;
        if (prepare_all(ps, errstr, errstr_size)) {
                PQfinish(ps->conn);
                ps->conn = NULL;
                return -1;
        }
        return 0;
}

static void sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

/* Keep trying: ops are never dropped for a lost connection. */
static void reconnect(pgsink_t *ps)
{
        char errstr[512];
        int delay = 100;

        while (connect_db(ps, errstr, sizeof(errstr))) {
                log_err("pg", "%s; retrying in %d ms", errstr, delay);
                sleep_ms(delay);
                delay = delay * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS
                                                     : delay * 2;
        }
        log_info("pg", "reconnected");
}

/* ---- thread ------------------------------------------------------------- */

static void deliver(pgsink_t *ps, struct pgop **ops, size_t n)
{
        uint64_t one = 1;

        pthread_mutex_lock(&ps->lock);
        ps->n_batches++;
        ps->n_ops += n;
        for (size_t i = 0; i < n; i++) {
                ops[i]->next = NULL;
                if (ps->d_tail)
                        ps->d_tail->next = ops[i];
                else
                        ps->d_head = ops[i];
                ps->d_tail = ops[i];
        }
        pthread_mutex_unlock(&ps->lock);
        if (write(ps->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_err("pg", "eventfd write: %s", strerror(errno));
}

static void run_batch(pgsink_t *ps, struct pgop **ops, size_t n)
{
        while (run_pipeline(ps, ops, n)) {
                log_err("pg", "connection lost: %s",
                        PQerrorMessage(ps->conn));
                reconnect(ps);
        }
        if (any_failed(ops, n))
                tenants_clear(ps); /* a tenant may have gone: re-learn */
        if (n > 1 && any_failed(ops, n)) {
                /* Find the culprit: each op alone, in its own transaction. */
                for (size_t i = 0; i < n; i++)
                        while (run_pipeline(ps, &ops[i], 1))
                                reconnect(ps);
        }
        tenants_learn(ps, ops, n);
        for (size_t i = 0; i < n; i++)
                if (ops[i]->rc)
                        log_err("pg", "op %d for job %s failed: %s",
                                (int)ops[i]->type,
                                ops[i]->job_id ? ops[i]->job_id : "-",
                                ops[i]->errstr);
        deliver(ps, ops, n);
}

/* Take up to `batch` ops, waiting briefly for a batch to fill.
 * Called with the lock held. */
static size_t take_batch(pgsink_t *ps, struct pgop **ops)
{
        struct timespec until;
        size_t n = 0;

        if (ps->queued < (size_t)ps->batch && ps->batch_ms > 0 && !ps->stop) {
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += (long)ps->batch_ms * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&ps->cond, &ps->lock, &until);
        }
        while (ps->q_head && n < (size_t)ps->batch) {
                ops[n++] = ps->q_head;
                ps->q_head = ps->q_head->next;
                ps->queued--;
        }
        if (!ps->q_head)
                ps->q_tail = NULL;
        return n;
}

static void *sink_main(void *arg)
{
        pgsink_t *ps = arg;
        struct pgop **ops = xcalloc((size_t)ps->batch, sizeof(*ops));

        pthread_mutex_lock(&ps->lock);
        for (;;) {
                size_t n;

                while (!ps->q_head && !ps->stop)
                        pthread_cond_wait(&ps->cond, &ps->lock);
                if (!ps->q_head && ps->stop)
                        break;
                n = take_batch(ps, ops);
                pthread_mutex_unlock(&ps->lock);
                if (n)
                        run_batch(ps, ops, n);
                pthread_mutex_lock(&ps->lock);
        }
        pthread_mutex_unlock(&ps->lock);
        free(ops);
        return NULL;
}

/* ---- API ---------------------------------------------------------------- */

pgsink_t *pgsink_new(const char *dsn, const char *worker_id, int lease_s,
                     int batch, int batch_ms, char *errstr,
                     size_t errstr_size)
{
        pgsink_t *ps = xcalloc(1, sizeof(*ps));

        ps->dsn = xstrdup(dsn);
        ps->worker_id = xstrdup(worker_id);
        snprintf(ps->lease_s, sizeof(ps->lease_s), "%d", lease_s);
        ps->batch = batch;
        ps->batch_ms = batch_ms;
        ps->tenants_cap = TENANTS_MAX;
        ps->tenants = xcalloc(ps->tenants_cap, sizeof(*ps->tenants));
        ps->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        pthread_mutex_init(&ps->lock, NULL);
        pthread_cond_init(&ps->cond, NULL);
        if (ps->efd < 0) {
                snprintf(errstr, errstr_size, "eventfd: %s", strerror(errno));
                goto err_free;
        }
        if (connect_db(ps, errstr, errstr_size))
                goto err_free;
        if (pthread_create(&ps->thread, NULL, sink_main, ps)) {
                snprintf(errstr, errstr_size, "cannot start the pg thread");
                goto err_free;
        }
        return ps;
err_free:
        PQfinish(ps->conn);
        free(ps->tenants);
        if (ps->efd >= 0)
                close(ps->efd);
        pthread_mutex_destroy(&ps->lock);
        pthread_cond_destroy(&ps->cond);
        free(ps->dsn);
        free(ps->worker_id);
        free(ps);
        return NULL;
}

void pgsink_destroy(pgsink_t *ps)
{
        struct pgop *op;

        if (!ps)
                return;
        pthread_mutex_lock(&ps->lock);
        ps->stop = 1;
        pthread_cond_signal(&ps->cond);
        pthread_mutex_unlock(&ps->lock);
        pthread_join(ps->thread, NULL);
        while ((op = ps->d_head)) {
                ps->d_head = op->next;
                pgop_destroy(op);
        }
        PQfinish(ps->conn);
        close(ps->efd);
        tenants_clear(ps);
        free(ps->tenants);
        pthread_mutex_destroy(&ps->lock);
        pthread_cond_destroy(&ps->cond);
        free(ps->dsn);
        free(ps->worker_id);
        free(ps);
}

void pgsink_submit(pgsink_t *ps, struct pgop *op)
{
        op->next = NULL;
        pthread_mutex_lock(&ps->lock);
        if (ps->q_tail)
                ps->q_tail->next = op;
        else
                ps->q_head = op;
        ps->q_tail = op;
        ps->queued++;
        ps->pending++;
        if (ps->queued == 1 || ps->queued >= (size_t)ps->batch)
                pthread_cond_signal(&ps->cond);
        pthread_mutex_unlock(&ps->lock);
}

int pgsink_fd(const pgsink_t *ps)
{
        return ps->efd;
}

struct pgop *pgsink_take_done(pgsink_t *ps)
{
        struct pgop *list;
        uint64_t v;
        size_t n = 0;

        if (read(ps->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_err("pg", "eventfd read: %s", strerror(errno));
        pthread_mutex_lock(&ps->lock);
        list = ps->d_head;
        ps->d_head = ps->d_tail = NULL;
        for (struct pgop *op = list; op; op = op->next)
                n++;
        ps->pending -= n;
        pthread_mutex_unlock(&ps->lock);
        return list;
}

size_t pgsink_pending(pgsink_t *ps)
{
        size_t n;

        pthread_mutex_lock(&ps->lock);
        n = ps->pending;
        pthread_mutex_unlock(&ps->lock);
        return n;
}

void pgsink_counters(pgsink_t *ps, uint64_t *batches, uint64_t *ops)
{
        pthread_mutex_lock(&ps->lock);
        *batches = ps->n_batches;
        *ops = ps->n_ops;
        pthread_mutex_unlock(&ps->lock);
}
