-- genq schema, migration 0008: the optional response cache
-- (cache.enabled, off by default).
--
-- Only deterministic requests are cached: chat jobs that ask for
-- temperature 0.  The key is a SHA-256 of the tenant, the kind, the
-- route or pinned providers and the request itself (worker/rcache.c), so
-- a tenant never sees another tenant's answers.  A hit finishes the job
-- with the stored answer and no provider call, unbilled, with a note.
CREATE TABLE response_cache (
    cache_key      text PRIMARY KEY,
    provider       text NOT NULL,
    model          text,
    text           text,
    finish_reason  text,
    usage          jsonb,
    in_tokens      bigint,
    out_tokens     bigint,
    hits           bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX response_cache_expiry ON response_cache (expires_at);
