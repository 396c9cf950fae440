-- How far the Cognito pool's sign-in history has been read into the system log
-- (projections::sign_in_failures): each run reads from a little before this time, and
-- moves it on only when everything it read is recorded.
CREATE TABLE sign_in_audit
(
    user_pool_id    TEXT PRIMARY KEY,
    checked_through TEXT NOT NULL
);
