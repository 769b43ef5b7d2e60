-- genq schema, migration 0004: result media kept by genq.
--
-- Provider result URLs expire (SiliconFlow video: 10 min to 1 h; KIE: 14
-- days), so a worker downloads result media right after success into its
-- artifact store and records each file here: where it is, its size,
-- SHA-256 and content type.  results.urls keep the provider's URLs.

CREATE TABLE artifacts (
    job_id        text NOT NULL REFERENCES jobs ON DELETE CASCADE,
    n             int NOT NULL,                -- 0.. in the provider's order
    url           text NOT NULL,               -- as the provider gave it
    path          text NOT NULL,               -- in the artifact store
    bytes         bigint NOT NULL,
    sha256        text NOT NULL,
    content_type  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, n)
);

-- Reporting roles see their own tenant's artifacts, like results.
ALTER TABLE artifacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reporter ON artifacts FOR SELECT TO genq_reporting
    USING (job_id IN (SELECT j.job_id FROM jobs j WHERE j.tenant_id =
                      (SELECT r.tenant_id FROM tenant_reporters r
                       WHERE r.role_name = current_user)));
GRANT SELECT ON artifacts TO genq_reporting;
