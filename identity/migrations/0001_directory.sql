-- The embedded staff directory: who may sign in, with which password and role.
CREATE TABLE users
(
  id            text    NOT NULL PRIMARY KEY,
  username      text    NOT NULL UNIQUE,
  role          text    NOT NULL,
  password_hash text    NOT NULL,
  enabled       integer NOT NULL DEFAULT 1,
  created_at    text    NOT NULL
) STRICT;

-- OAuth clients: the UI and scripts (public, PKCE) and integration workers
-- (confidential, client credentials).
CREATE TABLE clients
(
  client_id     text NOT NULL PRIMARY KEY,
  name          text NOT NULL,
  secret_hash   text,
  redirect_uris text NOT NULL DEFAULT '[]',
  enabled       integer NOT NULL DEFAULT 1,
  created_at    text NOT NULL
) STRICT;

-- Refresh tokens and authorization codes are kept only as SHA-256 hashes.
CREATE TABLE refresh_tokens
(
  token_hash text    NOT NULL PRIMARY KEY,
  user_id    text    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  client_id  text    NOT NULL,
  expires_at integer NOT NULL
) STRICT;

CREATE TABLE authorization_codes
(
  code_hash      text    NOT NULL PRIMARY KEY,
  user_id        text    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  client_id      text    NOT NULL,
  redirect_uri   text    NOT NULL,
  code_challenge text    NOT NULL,
  nonce          text,
  expires_at     integer NOT NULL
) STRICT;
