-- The audit trail: who did what, from where, and with what outcome, for
-- logins (failed ones too), lockouts, transfer and batch submissions and the
-- administrators' actions. Append-only, and hash-chained so that a row
-- changed or removed behind the triggers' back (by a superuser) is detected
-- by `bankadmin audit verify`.
--
-- Each row's hash = sha256(prev_hash || canonical content of the row), where
-- prev_hash is the previous row's hash (32 zero bytes for the first row).
-- The canonical encoding and the chaining live in ledger/src/audit.rs, the
-- only writer: it locks audit_head FOR UPDATE in the inserting transaction,
-- so concurrent writers (several gateways, bankadmin) extend the chain one
-- after the other, and ids are gap-free.

CREATE TABLE audit_log (
    -- Assigned by the writer from audit_head (OVERRIDING SYSTEM VALUE): the
    -- chain's order. An INSERT that bypasses the writer collides on the key.
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    -- A user id, or the username a failed login tried, or the operator of bankadmin.
    actor      text,
    role       text,
    action     text        NOT NULL,
    -- What the action was about: a transfer, batch, account or user.
    target     text,
    outcome    text        NOT NULL,
    ip         text,
    request_id text,
    -- Small facts (strings and integers): amounts, statuses, counts. Never a secret.
    detail     jsonb       NOT NULL DEFAULT '{}',
    prev_hash  bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash       bytea       NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_action ON audit_log (action, id DESC);

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION reject_modification();

-- The chain's head: the last id and hash. One row, locked by every append;
-- also lets the verifier notice rows cut off the end of the chain.
CREATE TABLE audit_head (
    id      integer PRIMARY KEY CHECK (id = 1),
    last_id bigint  NOT NULL,
    hash    bytea   NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_head (id, last_id, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- The head moves forward (UPDATE); it is never removed.
CREATE TRIGGER audit_head_kept
    BEFORE DELETE OR TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION reject_modification();
