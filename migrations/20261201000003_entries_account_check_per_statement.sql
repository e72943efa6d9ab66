-- Every entry names an existing account, checked once per INSERT statement
-- instead of once per row.
--
-- The foreign key entries.account_id -> accounts(id) ran, for every entry
-- row, an SPI query that looked the account up and took a KEY SHARE lock on
-- it: two per transfer, on rows the apply already holds FOR UPDATE. In the
-- raw ceiling (make bench, 4 connections x batches of 500) those checks
-- were ~18 % of PostgreSQL's time (perf). With this migration the raw
-- ceiling went from a median of ~12,200 to ~13,900 transfers/s (8
-- alternating runs of each build on one machine, 11,265-14,198 before,
-- 12,398-15,430 after; bench --raw-only). The same guarantee now comes
-- from two statement triggers:
--
--   * entries_account_exists: after each INSERT into entries, one
--     set-based anti-join of the statement's new rows (a transition table)
--     against accounts; any orphan fails the statement, like the FK did
--     (SQLSTATE 23503, foreign_key_violation).
--   * accounts_kept: accounts are never deleted or truncated (the FK's
--     other half: no entry can lose its account). A closed account is a
--     state, not a missing row; nothing in the services deletes one.
--
-- Also: accounts are updated on every transfer (balance, version). At the
-- default fillfactor of 100 a seeded page has no room for the new row
-- version, so each update moves the row to another page and inserts into
-- both of the table's indexes. With room left on the page the update is
-- HOT: no index insert, and pruning reuses the space. Applies to pages
-- written from now on (existing ones after VACUUM FULL).
ALTER TABLE entries DROP CONSTRAINT entries_account_id_fkey;

CREATE FUNCTION entries_accounts_exist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_entries n
                WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = n.account_id)) THEN
        RAISE EXCEPTION 'entries: an entry names an account that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER entries_account_exists AFTER INSERT ON entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION entries_accounts_exist();

CREATE TRIGGER accounts_kept BEFORE DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION reject_modification();

ALTER TABLE accounts SET (fillfactor = 70);
