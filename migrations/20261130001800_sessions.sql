-- Revocable sessions (README Security, "Sessions").
--
-- A disabled user cannot log in or refresh, and bankadmin revokes every
-- session it had (the deny-list in Redis ends its access tokens). The
-- password change time is kept for the audit trail's readers and support.
ALTER TABLE users
    ADD COLUMN disabled_at         timestamptz,
    ADD COLUMN password_changed_at timestamptz;
-- Revoking every refresh token of a user (password change, disable).
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
