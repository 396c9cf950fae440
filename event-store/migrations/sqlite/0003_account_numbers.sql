-- Account numbers (domain::AccountNumber): one per account, in allocation order. The
-- events record the number; this table only makes sure no two accounts get the same.
CREATE TABLE account_numbers (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL UNIQUE
);
