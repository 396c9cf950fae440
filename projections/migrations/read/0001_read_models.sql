-- Read models, in the SQL that SQLite and PostgreSQL both accept (TEXT, BIGINT; times as
-- fixed-width RFC 3339 UTC text, which sorts chronologically). Everything here can be
-- rebuilt from the event store.

CREATE TABLE clients
(
    id                  TEXT PRIMARY KEY,
    agent_id            TEXT   NOT NULL,
    first_name          TEXT,
    last_name           TEXT,
    date_of_birth       TEXT,
    gender              TEXT,
    email               TEXT,
    phone               TEXT,
    address_line1       TEXT,
    address_city        TEXT,
    address_state       TEXT,
    address_country     TEXT,
    address_postal_code TEXT,
    status              TEXT   NOT NULL,
    verified            BIGINT NOT NULL,
    erased              BIGINT NOT NULL,
    search              TEXT   NOT NULL,
    version             BIGINT NOT NULL,
    created_at          TEXT   NOT NULL,
    updated_at          TEXT   NOT NULL
);
CREATE INDEX clients_by_agent ON clients (agent_id, id);

CREATE TABLE accounts
(
    id            TEXT PRIMARY KEY,
    client_id     TEXT   NOT NULL,
    agent_id      TEXT   NOT NULL,
    account_type  TEXT   NOT NULL,
    currency      TEXT   NOT NULL,
    balance_minor BIGINT NOT NULL,
    status        TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    opened_at     TEXT   NOT NULL,
    updated_at    TEXT   NOT NULL
);
CREATE INDEX accounts_by_client ON accounts (client_id, id);

CREATE TABLE transactions
(
    id                      TEXT PRIMARY KEY,
    account_id              TEXT   NOT NULL,
    sequence                BIGINT NOT NULL,
    kind                    TEXT   NOT NULL,
    amount_minor            BIGINT NOT NULL,
    currency                TEXT   NOT NULL,
    balance_after_minor     BIGINT NOT NULL,
    description             TEXT,
    transfer_id             TEXT,
    counterparty_account_id TEXT,
    external_id             TEXT,
    occurred_at             TEXT   NOT NULL
);
CREATE INDEX transactions_by_account ON transactions (account_id, occurred_at, id);

CREATE TABLE staff
(
    id         TEXT PRIMARY KEY,
    username   TEXT   NOT NULL,
    email      TEXT   NOT NULL,
    full_name  TEXT   NOT NULL,
    role       TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    created_at TEXT   NOT NULL,
    updated_at TEXT   NOT NULL
);
CREATE INDEX staff_by_username ON staff (username);

CREATE TABLE audit_log
(
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    sequence       BIGINT NOT NULL,
    position       BIGINT NOT NULL,
    event_type     TEXT   NOT NULL,
    actor_id       TEXT   NOT NULL,
    actor_role     TEXT   NOT NULL,
    correlation_id TEXT   NOT NULL,
    causation_id   TEXT   NOT NULL,
    occurred_at    TEXT   NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX audit_log_by_position ON audit_log (position);
CREATE INDEX audit_log_by_actor ON audit_log (actor_id, position);

-- The projector's own state: where it is in the store, how far each stream got, and the
-- events it could not apply.
CREATE TABLE projection_checkpoint
(
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);

CREATE TABLE stream_positions
(
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    last_sequence  BIGINT NOT NULL,
    poisoned       BIGINT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE TABLE dead_letters
(
    position       BIGINT PRIMARY KEY,
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    sequence       BIGINT NOT NULL,
    event_type     TEXT   NOT NULL,
    error          TEXT   NOT NULL,
    recorded_at    TEXT   NOT NULL
);
