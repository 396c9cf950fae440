-- Account numbers (domain::AccountNumber), compact ("LL740000000000042"), for display
-- and lookup. Rows of accounts projected before this column existed are filled in by
-- accounts::backfill_numbers when the read models open.
ALTER TABLE accounts ADD COLUMN account_number TEXT;
CREATE INDEX accounts_by_number ON accounts (account_number);
