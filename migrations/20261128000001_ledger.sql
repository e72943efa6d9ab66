-- The ledger: users, accounts, transfers and double-entry entries.
--
-- Invariants the schema enforces on its own (tests prove the rest):
--   * a balance never goes below -overdraft_limit           (CHECK)
--   * entries are append-only                               (trigger)
--   * amounts are positive, entries non-zero                (CHECK)
--   * a transfer id is applied once                         (PRIMARY KEY)

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    username      text        NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_.-]{1,64}$'),
    -- argon2id PHC string; never selected outside login.
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('customer', 'batch', 'ops', 'system')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id              uuid          PRIMARY KEY,
    owner_id        uuid          NOT NULL REFERENCES users (id),
    currency        char(3)       NOT NULL,
    -- NUMERIC(24,4): 20 integer digits, 4 decimals (the largest ISO minor unit).
    balance         numeric(24,4) NOT NULL DEFAULT 0,
    overdraft_limit numeric(24,4) NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
    -- Bumped on every balance change; orders account.updated events.
    version         bigint        NOT NULL DEFAULT 0,
    -- 'funding' accounts are where money enters the ledger (their balance is
    -- minus everything ever issued); 'customer' accounts hold it.
    kind            text          NOT NULL DEFAULT 'customer' CHECK (kind IN ('customer', 'funding')),
    created_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT balance_within_overdraft CHECK (balance >= -overdraft_limit)
);
CREATE INDEX accounts_owner ON accounts (owner_id);

-- Only final states are stored: a pending transfer lives in the queue.
CREATE TABLE transfers (
    -- UUIDv5 of (owner, idempotency key): a retry maps to the same row.
    id              uuid          PRIMARY KEY,
    owner_id        uuid          NOT NULL,
    idempotency_key text          NOT NULL,
    -- SHA-256 of the canonical request: same key + different body is detected.
    fingerprint     bytea         NOT NULL CHECK (length(fingerprint) = 32),
    from_account    uuid          NOT NULL,
    to_account      uuid          NOT NULL,
    amount          numeric(24,4) NOT NULL  -- a rejected request is stored as sent
                    CHECK (amount > 0 OR status = 'rejected'),
    currency        char(3)       NOT NULL,
    reference       text,
    status          text          NOT NULL CHECK (status IN ('committed', 'rejected')),
    reason          text,
    created_at      timestamptz   NOT NULL,
    processed_at    timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT reason_iff_rejected CHECK ((status = 'rejected') = (reason IS NOT NULL))
);
-- "My transfers", sent and received, newest first.
CREATE INDEX transfers_owner_created ON transfers (owner_id, created_at DESC, id DESC);
CREATE INDEX transfers_to_created ON transfers (to_account, created_at DESC, id DESC);

CREATE TABLE entries (
    id            bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id   uuid          NOT NULL,
    account_id    uuid          NOT NULL REFERENCES accounts (id),
    -- Negative: debit; positive: credit. The two entries of a transfer sum to zero.
    amount        numeric(24,4) NOT NULL CHECK (amount <> 0),
    balance_after numeric(24,4) NOT NULL,
    created_at    timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX entries_account ON entries (account_id, id DESC);
CREATE INDEX entries_transfer ON entries (transfer_id);

CREATE FUNCTION reject_modification() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Statement-level triggers cost nothing on INSERT and refuse every rewrite of history.
CREATE TRIGGER entries_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION reject_modification();
CREATE TRIGGER transfers_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION reject_modification();
