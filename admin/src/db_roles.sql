-- The services' PostgreSQL roles and their grants (least privilege).
-- Run by `bankadmin migrate --roles` after the migrations, every deploy:
-- idempotent, and it starts each role from nothing, so this file is the
-- whole list of what a service may do. Roles are cluster-wide, which is
-- why this is not a migration (tests migrate many databases in parallel).
-- The migrations' owner (the deployment's admin user) keeps every right
-- and is the only one that runs DDL.
--
-- Inputs (set_config in the same transaction): bank.gateway_role,
-- bank.processor_role and their passwords bank.gateway_password,
-- bank.processor_password.
DO $roles$
DECLARE
  gw text := current_setting('bank.gateway_role');
  pr text := current_setting('bank.processor_role');
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY[gw, pr] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN', r);
    END IF;
    EXECUTE format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                   'NOINHERIT NOREPLICATION NOBYPASSRLS', r);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', r);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', r);
    EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', r);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', r);
  END LOOP;
  EXECUTE format('ALTER ROLE %I PASSWORD %L', gw, current_setting('bank.gateway_password'));
  EXECUTE format('ALTER ROLE %I PASSWORD %L', pr, current_setting('bank.processor_password'));

  -- Nobody else: no connecting, no temporary tables, no objects in public
  -- (PostgreSQL 15+ already refuses CREATE there; older ones did not).
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  REVOKE CREATE ON SCHEMA public FROM PUBLIC;

  -- Gateway: reads everything it serves (all tables, so a new read needs
  -- no new grant); writes only its own records: the audit trail, batch
  -- headers and refresh tokens. Never accounts, entries or transfers.
  EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA public TO %I', gw);
  EXECUTE format('GRANT INSERT ON audit_log, batches, refresh_tokens TO %I', gw);
  EXECUTE format('GRANT UPDATE ON audit_head, refresh_tokens TO %I', gw);
  EXECUTE format('GRANT DELETE ON refresh_tokens TO %I', gw);
  -- Its own password change (POST /v1/auth/password); nothing else of users.
  EXECUTE format('GRANT UPDATE (password_hash, password_changed_at) ON users TO %I', gw);

  -- Processor: what ledger::apply reads and writes (accounts locked and
  -- updated, transfers and entries inserted) and the batch tables its
  -- progress reports read. No users, refresh tokens or audit trail.
  EXECUTE format('GRANT SELECT ON accounts, transfers, entries, batches TO %I', pr);
  EXECUTE format('GRANT INSERT ON transfers, entries TO %I', pr);
  EXECUTE format('GRANT UPDATE ON accounts TO %I', pr);
  -- Holds: created, moved to a final state once (a trigger guards the
  -- transition), and the capture/void requests recorded append-only.
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON holds TO %I', pr);
  EXECUTE format('GRANT SELECT, INSERT ON hold_actions TO %I', pr);
END
$roles$;
