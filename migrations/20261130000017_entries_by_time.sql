-- Balance as-of and statements read an account's entries by time
-- (`created_at`), not by id. Without this index both scan every entry of
-- the account through entries_account and sort; with it the balance is an
-- index-only scan (amount is included) and a statement's rows come out in
-- order, so the running-balance window needs no sort either.
CREATE INDEX entries_account_created ON entries (account_id, created_at, id) INCLUDE (amount);
