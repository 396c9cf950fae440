-- The event store, in the shape postgres-es reads and writes.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- One row per (caller, Idempotency-Key): claimed before the command runs, completed with
-- the response it produced.
CREATE TABLE idempotency
(
    caller           text        NOT NULL,
    key              text        NOT NULL,
    request_hash     text        NOT NULL,
    status           integer,
    response_headers text,
    response_body    bytea,
    created_at       text        NOT NULL,
    PRIMARY KEY (caller, key)
);
