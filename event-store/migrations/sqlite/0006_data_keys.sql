-- Each client's data key, wrapped (AES-256-GCM) under a master key the store's operators
-- do not hold: the personal data in the client's events is encrypted under it
-- (event_store::personal). Erasing the client destroys it: `wrapped` becomes NULL and
-- the row stays, so that no new key is ever made for that client.
CREATE TABLE data_keys
(
  owner        text PRIMARY KEY,
  wrapped      blob CHECK (wrapped IS NULL OR length(wrapped) = 60),
  destroyed_at text
) STRICT;

-- The erasures, found without reading every event: an erasure whose key outlived a
-- crash is completed from them at the next start.
CREATE INDEX events_erasures ON events (aggregate_id) WHERE event_type = 'ClientErased';
