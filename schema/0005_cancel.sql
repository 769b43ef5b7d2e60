-- genq schema, migration 0005: cancellation.
--
-- `genq cancel JOB_ID` records a request here; the job may still be in
-- Kafka (not yet accepted), queued, or running on some worker.  A worker
-- that accepts a job checks for a request before running it; a worker
-- running one checks every second and stops it: the job ends 'cancelled',
-- a hold is refunded, and the money outcome is noted on the job.
CREATE TABLE job_cancels (
    job_id        text PRIMARY KEY,
    reason        text,
    requested_at  timestamptz NOT NULL DEFAULT now()
);
