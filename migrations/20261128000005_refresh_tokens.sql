-- Refresh tokens: the long-lived half of a login session.
--
-- The token itself (256 random bits) is shown to the client once and never
-- stored: only its SHA-256, so a copy of this table lets nobody refresh.
-- Tokens rotate: each refresh marks the presented token used and issues a
-- new one in the same family (one family per login). A used token presented
-- again means two parties hold it (one of them stole it), so the whole
-- family is revoked and both must log in again (ledger/src/refresh.rs).
-- Logout revokes the family too.

CREATE TABLE refresh_tokens (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id),
    hash       bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    -- The id of the login that started the chain of rotations.
    family     uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Inherited by every rotation: a login lasts at most the refresh
    -- lifetime, however often it is refreshed.
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
-- For purging expired rows.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
