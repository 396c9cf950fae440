-- The event store, in the shape sqlite-es reads and writes. Rowid order is commit order
-- (SQLite has one writer), which the projections will follow.
CREATE TABLE events
(
  aggregate_type text                          NOT NULL,
  aggregate_id   text                          NOT NULL,
  sequence       integer CHECK (sequence >= 0) NOT NULL,
  event_type     text                          NOT NULL,
  event_version  text                          NOT NULL,
  payload        text                          NOT NULL,
  metadata       text                          NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE TABLE snapshots
(
  aggregate_type   text                                  NOT NULL,
  aggregate_id     text                                  NOT NULL,
  last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
  current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
  payload          text                                  NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- One row per (caller, Idempotency-Key): claimed before the command runs, completed with
-- the response it produced.
CREATE TABLE idempotency
(
  caller          text    NOT NULL,
  key             text    NOT NULL,
  request_hash    text    NOT NULL,
  status          integer,
  response_headers text,
  response_body   blob,
  created_at      text    NOT NULL,
  PRIMARY KEY (caller, key)
) STRICT;
