-- Snapshots of aggregate state (event_store::snapshots): a cache derived from the events,
-- remade from them whenever it is missing, stale or under another schema. Deleting every
-- row loses nothing but time. (The older `snapshots` table is cqrs-es's shape, unused.)
CREATE TABLE stream_snapshots
(
    aggregate_type text    NOT NULL,
    aggregate_id   text    NOT NULL,
    -- The sequence of the last event folded in, its chain hash and its time.
    version        integer NOT NULL,
    last_hash      text    NOT NULL,
    occurred_at    text    NOT NULL,
    -- domain::snapshot::schema: a snapshot is read only under the schema it was written with.
    schema         text    NOT NULL,
    state          text    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, version)
) STRICT;
