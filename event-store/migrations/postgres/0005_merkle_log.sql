-- The global Merkle log (domain::merkle). PostgreSQL has no commit order of its own
-- (sequences from concurrent transactions commit out of order), so the log gives each
-- event its place as it takes it in, after the event committed: `position` is the
-- event's leaf, NULL until then. The log's size and the hashes of its perfect subtrees,
-- by their index in the array layout, are kept beside. Derived from the events; a
-- signed digest of its root is what makes a rewrite of both detectable.
ALTER TABLE events ADD COLUMN position bigint CHECK (position >= 0);
CREATE UNIQUE INDEX events_by_position ON events (position) WHERE position IS NOT NULL;
CREATE INDEX events_unlogged ON events (aggregate_type, aggregate_id, sequence) WHERE position IS NULL;

CREATE TABLE merkle_log
(
    id   integer PRIMARY KEY CHECK (id = 1),
    size bigint  NOT NULL CHECK (size >= 0)
);
INSERT INTO merkle_log (id, size) VALUES (1, 0);

CREATE TABLE merkle_nodes
(
    idx  bigint PRIMARY KEY CHECK (idx >= 0),
    hash bytea  NOT NULL CHECK (length(hash) = 32)
);
