-- Batch payments: one row per submitted batch; its payments are ordinary
-- transfers carrying the batch id and their line number.
CREATE TABLE batches (
    -- UUIDv5 of (owner, Idempotency-Key) in the batch namespace.
    id              uuid        PRIMARY KEY,
    owner_id        uuid        NOT NULL REFERENCES users (id),
    idempotency_key text        NOT NULL,
    -- SHA-256 over the mode and every payment's fingerprint, in order.
    fingerprint     bytea       NOT NULL CHECK (length(fingerprint) = 32),
    mode            text        NOT NULL CHECK (mode IN ('independent', 'atomic')),
    count           integer     NOT NULL CHECK (count > 0),
    -- The payments' line numbers (a file may skip blank lines), so pending
    -- payments can be listed before they are applied.
    lines           integer[]   NOT NULL CHECK (cardinality(lines) = count),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER batches_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON batches
    FOR EACH STATEMENT EXECUTE FUNCTION reject_modification();

ALTER TABLE transfers
    ADD COLUMN batch_id   uuid,
    ADD COLUMN batch_line integer,
    ADD CONSTRAINT batch_line_with_batch CHECK ((batch_id IS NULL) = (batch_line IS NULL));
CREATE INDEX transfers_batch ON transfers (batch_id, batch_line) WHERE batch_id IS NOT NULL;
