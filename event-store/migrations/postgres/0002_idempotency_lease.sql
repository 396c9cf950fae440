-- Idempotency claims hold a lease (milliseconds since the epoch): a claim whose holder died
-- is taken over after it, and the retry learns the outcome from the events.
ALTER TABLE idempotency ADD COLUMN lease_until BIGINT;
