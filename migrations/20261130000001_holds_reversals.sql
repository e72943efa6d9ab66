-- Holds (two-phase transfers) and reversals (issue #17).
--
-- A hold reserves money on its source account: `accounts.held` is the sum of
-- the account's pending holds, and the available balance (balance - held)
-- never goes below -overdraft_limit. Capturing a hold moves money as an
-- ordinary transfer (with `hold_id`); voiding or expiring it moves nothing.
-- A reversal is an ordinary transfer back from the payee to the payer,
-- linked to the original by `reverses`.
--
-- All of it is written by ledger/src/apply under the account locks, so the
-- checks below are a safety net, not the rule's only home.

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('customer', 'batch', 'ops', 'system', 'reverser'));

ALTER TABLE accounts
    ADD COLUMN held numeric(24,4) NOT NULL DEFAULT 0 CHECK (held >= 0),
    ADD CONSTRAINT available_within_overdraft CHECK (balance - held >= -overdraft_limit);

CREATE TABLE holds (
    -- UUIDv5 of (owner, idempotency key) in the holds namespace.
    id                  uuid          PRIMARY KEY,
    owner_id            uuid          NOT NULL,
    idempotency_key     text          NOT NULL,
    fingerprint         bytea         NOT NULL CHECK (length(fingerprint) = 32),
    from_account        uuid          NOT NULL,
    to_account          uuid          NOT NULL,
    amount              numeric(24,4) NOT NULL CHECK (amount > 0 OR status = 'rejected'),
    captured_amount     numeric(24,4) CHECK (captured_amount > 0),
    currency            char(3)       NOT NULL,
    reference           text,
    status              text          NOT NULL
                        CHECK (status IN ('pending', 'captured', 'voided', 'expired', 'rejected')),
    reason              text,
    created_at          timestamptz   NOT NULL,
    expires_at          timestamptz   NOT NULL,
    processed_at        timestamptz   NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    capture_transfer_id uuid,
    CONSTRAINT hold_reason_iff_rejected CHECK ((status = 'rejected') = (reason IS NOT NULL)),
    CONSTRAINT hold_captured_fields CHECK (
        (status = 'captured') = (captured_amount IS NOT NULL AND capture_transfer_id IS NOT NULL)),
    CONSTRAINT hold_capture_within CHECK (captured_amount IS NULL OR captured_amount <= amount),
    CONSTRAINT hold_finished_iff_final CHECK ((status = 'pending') = (finished_at IS NULL))
);
CREATE INDEX holds_from_created ON holds (from_account, created_at DESC, id DESC);
CREATE INDEX holds_to_created ON holds (to_account, created_at DESC, id DESC);
-- The processor's expiry scan.
CREATE INDEX holds_pending_expiry ON holds (expires_at) WHERE status = 'pending';

-- A hold changes state once: pending -> captured | voided | expired. Nothing
-- else about it ever changes, and it is never deleted.
CREATE FUNCTION holds_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' OR NEW.status NOT IN ('captured', 'voided', 'expired')
       OR NEW.id <> OLD.id OR NEW.owner_id <> OLD.owner_id
       OR NEW.from_account <> OLD.from_account OR NEW.to_account <> OLD.to_account
       OR NEW.amount <> OLD.amount OR NEW.currency <> OLD.currency
       OR NEW.fingerprint <> OLD.fingerprint OR NEW.expires_at <> OLD.expires_at THEN
        RAISE EXCEPTION 'hold %: % -> % refused', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER holds_state_guard BEFORE UPDATE ON holds
    FOR EACH ROW EXECUTE FUNCTION holds_guard();
CREATE TRIGGER holds_kept BEFORE DELETE OR TRUNCATE ON holds
    FOR EACH STATEMENT EXECUTE FUNCTION reject_modification();

-- Captures and voids as asked (one row per Idempotency-Key), with their
-- outcome: a refused capture or void is kept here with its reason. A
-- committed capture's transfer has the same id. Expiries are not actions:
-- the hold's own row records them.
CREATE TABLE hold_actions (
    id              uuid          PRIMARY KEY,
    hold_id         uuid          NOT NULL,
    kind            text          NOT NULL CHECK (kind IN ('capture', 'void')),
    owner_id        uuid          NOT NULL,
    idempotency_key text          NOT NULL,
    fingerprint     bytea         NOT NULL CHECK (length(fingerprint) = 32),
    -- The capture amount asked for (NULL: the whole hold; always NULL for a void).
    amount          numeric(24,4),
    status          text          NOT NULL CHECK (status IN ('applied', 'rejected')),
    reason          text,
    created_at      timestamptz   NOT NULL,
    processed_at    timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT action_reason_iff_rejected CHECK ((status = 'rejected') = (reason IS NOT NULL))
);
CREATE INDEX hold_actions_hold ON hold_actions (hold_id, created_at);
CREATE TRIGGER hold_actions_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON hold_actions
    FOR EACH STATEMENT EXECUTE FUNCTION reject_modification();

ALTER TABLE transfers
    ADD COLUMN hold_id         uuid,
    ADD COLUMN reverses        uuid,
    ADD COLUMN reversal_reason text CHECK (char_length(reversal_reason) BETWEEN 1 AND 200),
    ADD CONSTRAINT reversal_has_reason CHECK ((reverses IS NULL) = (reversal_reason IS NULL));
CREATE INDEX transfers_reverses ON transfers (reverses) WHERE reverses IS NOT NULL;
-- "My transfers" for the payee of a reversed transfer (the reversal is not theirs).
CREATE INDEX transfers_reversal_from ON transfers (from_account, created_at DESC, id DESC)
    WHERE reverses IS NOT NULL;
CREATE INDEX transfers_hold ON transfers (hold_id) WHERE hold_id IS NOT NULL;
