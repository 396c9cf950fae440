-- The mail sent to each client (CommunicationSent): when, to whom, the subject, who sent
-- it, and the body's SHA-256 (the body itself is not kept in events). Rebuilt with the
-- other read models; the recipient is cleared when the client's personal data is erased.
CREATE TABLE client_communications
(
    client_id   TEXT   NOT NULL,
    sequence    BIGINT NOT NULL,
    sent_at     TEXT   NOT NULL,
    recipient   TEXT,
    subject     TEXT   NOT NULL,
    body_sha256 TEXT   NOT NULL,
    sent_by     TEXT   NOT NULL,
    PRIMARY KEY (client_id, sequence)
);
