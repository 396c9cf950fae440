-- The system log: sign-ins, failed sign-ins, denied requests, staff changes, projector
-- failures. Not rebuilt with the read models (much of it is not in any event stream).
-- Entries derived from events carry the event's key as id, so re-projecting adds nothing.
CREATE TABLE system_log
(
    id             TEXT PRIMARY KEY,
    occurred_at    TEXT NOT NULL,
    level          TEXT NOT NULL,
    category       TEXT NOT NULL,
    actor_id       TEXT,
    actor_role     TEXT,
    message        TEXT NOT NULL,
    details        TEXT,
    correlation_id TEXT
);
CREATE INDEX system_log_by_time ON system_log (occurred_at, id);
CREATE INDEX system_log_by_actor ON system_log (actor_id, occurred_at);
