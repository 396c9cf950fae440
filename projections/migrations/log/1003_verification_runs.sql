-- Whole-store hash-chain verifications asked for by auditors, run in steps by a worker
-- holding a lease (query_api::verifier). Each step's findings are written with the
-- cursor they reach, so a run cut off anywhere goes on without counting a stream twice.
CREATE TABLE verification_runs
(
    id              TEXT PRIMARY KEY,
    requested_by    TEXT NOT NULL,
    requested_at    TEXT NOT NULL,
    -- queued, running, done, or failed (it could not finish: see error).
    status          TEXT NOT NULL,
    -- 1 while queued or running, NULL once done: at most one run at a time.
    active          INTEGER UNIQUE,
    started_at      TEXT,
    finished_at     TEXT,
    lease_owner     TEXT,
    -- Milliseconds since the epoch.
    lease_until     BIGINT,
    -- Where the next step starts (event_store::VerifyCursor as JSON); NULL: the start.
    resume_at       TEXT,
    steps           BIGINT NOT NULL DEFAULT 0,
    streams_checked BIGINT NOT NULL DEFAULT 0,
    events_checked  BIGINT NOT NULL DEFAULT 0,
    failure_count   BIGINT NOT NULL DEFAULT 0,
    -- The first failures found (JSON array), up to a hundred.
    failures        TEXT NOT NULL DEFAULT '[]',
    -- Steps that failed in a row (a database error, an unreadable cursor); at three the
    -- run is failed, so that a fault that repeats cannot hold the one active run.
    attempts        BIGINT NOT NULL DEFAULT 0,
    error           TEXT
);
CREATE INDEX verification_runs_by_time ON verification_runs (requested_at, id);
