-- The client list sorted by name (clients::ClientSort::Name) reads these in order instead
-- of sorting every client: one for auditors (all clients), one per agent. The expressions
-- are the ORDER BY's, character for character, so both SQLite and PostgreSQL use them.
CREATE INDEX clients_by_name ON clients (LOWER(COALESCE(last_name, '')), LOWER(COALESCE(first_name, '')), id);
CREATE INDEX clients_by_agent_and_name ON clients (agent_id, LOWER(COALESCE(last_name, '')), LOWER(COALESCE(first_name, '')), id);
