-- genq schema, migration 0006: provider callbacks and completion hooks.
--
-- A provider that calls back (KIE callBackUrl, Replicate webhook,
-- AssemblyAI webhook_url) reaches any worker's callback receiver, not
-- necessarily the worker that holds the job.  The receiver verifies the
-- URL's token and stores the callback here, answering 200 only after the
-- commit (a provider retries otherwise).  The worker holding the job's
-- lease claims its callbacks every half second (DELETE ... RETURNING, so
-- each is applied at most once) and applies them with the same state
-- transition as a poll; polling remains the safety net.  A callback for a
-- job nobody holds waits for the worker that re-drives it.
CREATE TABLE task_callbacks (
    callback_id   bigserial PRIMARY KEY,
    job_id        text NOT NULL,
    provider      text NOT NULL,
    body          bytea NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_callbacks_job ON task_callbacks (job_id);

-- Completion hooks (Job.callback_url): one row per delivery attempt, so an
-- operator can see what a pipeline was sent and what it answered.
CREATE TABLE hook_deliveries (
    job_id        text NOT NULL,
    attempt       int NOT NULL,
    url           text NOT NULL,
    http_status   int,
    error         text,
    delivered     boolean NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt)
);
