-- The global Merkle log (domain::merkle): how many events it holds (the first N in
-- rowid order, which is commit order), and the hashes of its perfect subtrees by their
-- index in the array layout. Derived from the events, so rebuilt the same from them; a
-- signed digest of its root is what makes a rewrite of both detectable.
CREATE TABLE merkle_log
(
  id   integer PRIMARY KEY CHECK (id = 1),
  size integer NOT NULL CHECK (size >= 0)
) STRICT;
INSERT INTO merkle_log (id, size) VALUES (1, 0);

CREATE TABLE merkle_nodes
(
  idx  integer PRIMARY KEY CHECK (idx >= 0),
  hash blob    NOT NULL CHECK (length(hash) = 32)
) STRICT;
