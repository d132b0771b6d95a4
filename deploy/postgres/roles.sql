-- Rempart's PostgreSQL roles and grants (docs/deployment.md, "PostgreSQL roles").
--
-- Run as a superuser, connected to Rempart's database, once at installation and again after an upgrade that
-- changes this file (it is idempotent):
--
--     psql -v ON_ERROR_STOP=1 -h PRIMARY -U postgres -d rempart -f deploy/postgres/roles.sql
--
-- Three roles:
--   rempart_owner     owns the schema: runs `rempart migrate` and `rempart ledger partitions` (release step only).
--   rempart_app       what the web, worker and scheduler processes log in as: reads and writes the ordinary
--                     tables, but only SELECT and INSERT on the append-only ones (the disclosure ledger and its
--                     partitions, the ledger's anchors, the money ledger's transactions and postings). It owns
--                     nothing, so it cannot alter, disable or drop their triggers either.
--   rempart_readonly  SELECT only (reporting, the read replica's readers); its sessions are read-only.
--
-- No password is set here: set each one afterwards (`\password rempart_app` in psql) and put it in the
-- DATABASE_URL of /etc/rempart/rempart.env (app) or /etc/rempart/owner.env (owner, root-readable only).
--
-- Why an event trigger: migrations and the monthly partitions create tables after this file has run. Default
-- privileges would give the app UPDATE and DELETE on a new ledger partition too; the event trigger below
-- applies the same rule as this file to every table the moment it is created or altered, so no release step
-- can forget it.

\set ON_ERROR_STOP on

-- 1. Roles (cluster-wide: also present on every streaming replica).
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rempart_owner') THEN
    CREATE ROLE rempart_owner LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rempart_app') THEN
    CREATE ROLE rempart_app LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rempart_readonly') THEN
    CREATE ROLE rempart_readonly LOGIN;
  END IF;
END
$$;
ALTER ROLE rempart_owner NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE rempart_app NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
ALTER ROLE rempart_readonly NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
-- A transaction left open by a crashed request holds its locks (a chain head!) until this ends it.
ALTER ROLE rempart_app SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE rempart_readonly SET default_transaction_read_only = on;

-- 2. The database and its schema: nobody else connects or creates anything.
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO rempart_owner, rempart_app', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO rempart_readonly', current_database());
END
$$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO rempart_owner;
GRANT USAGE ON SCHEMA public TO rempart_app, rempart_readonly;

-- 3. A database migrated before these roles existed: its tables, sequences and functions go to the owner.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND c.relowner <> 'rempart_owner'::regrole
  LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO rempart_owner', r.rel);
  END LOOP;
  FOR r IN  -- sequences not owned by a table column (those moved with their table)
    SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind = 'S' AND c.relowner <> 'rempart_owner'::regrole
  LOOP
    EXECUTE format('ALTER SEQUENCE %s OWNER TO rempart_owner', r.rel);
  END LOOP;
  FOR r IN  -- the trigger functions of the append-only tables: later migrations replace them
    SELECT p.oid::regprocedure AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proowner <> 'rempart_owner'::regrole
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
      AND p.proname NOT LIKE 'rempart\_grant%'
  LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO rempart_owner', r.fn);
  END LOOP;
END
$$;

-- 4. The rule, one relation at a time. Append-only: the tables whose rows are never changed or removed, guarded
-- by triggers too (rempart/ledger/migrations/0001, rempart/accounting/migrations/0002). Their partitions are read
-- through the parent; the app gets SELECT on them (the archive reads a closed month), nothing else.
CREATE OR REPLACE FUNCTION rempart_append_only_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT ARRAY['ledger_disclosure', 'ledger_ledgeranchor', 'accounting_transaction', 'accounting_posting']
$$;

CREATE OR REPLACE FUNCTION rempart_grant_on(rel regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  info record;
  child record;
  parent text;
BEGIN
  SELECT c.relname, c.relkind, c.relispartition, n.nspname INTO info
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
  IF info IS NULL OR info.nspname <> 'public' OR info.relkind NOT IN ('r', 'p', 'v', 'm', 'f', 'S') THEN
    RETURN;  -- temporary tables, indexes, other schemas
  END IF;
  IF info.relkind = 'S' THEN
    EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO rempart_app', rel);  -- nextval, never setval
    EXECUTE format('REVOKE UPDATE ON SEQUENCE %s FROM rempart_app', rel);
    EXECUTE format('GRANT SELECT ON SEQUENCE %s TO rempart_readonly', rel);
    RETURN;
  END IF;
  EXECUTE format('REVOKE ALL ON TABLE %s FROM rempart_app, rempart_readonly', rel);
  EXECUTE format('GRANT SELECT ON TABLE %s TO rempart_readonly', rel);
  IF info.relispartition THEN
    SELECT p.relname INTO parent FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
    WHERE i.inhrelid = rel;
    IF parent = ANY (rempart_append_only_tables()) THEN
      EXECUTE format('GRANT SELECT ON TABLE %s TO rempart_app', rel);
      RETURN;
    END IF;
  END IF;
  IF info.relname = ANY (rempart_append_only_tables()) THEN
    EXECUTE format('GRANT SELECT, INSERT ON TABLE %s TO rempart_app', rel);
  ELSE
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO rempart_app', rel);
  END IF;
  IF info.relkind = 'p' THEN  -- a table renamed into the ledger (migration 0002) brings partitions with it
    FOR child IN SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = rel LOOP
      PERFORM rempart_grant_on(child.inhrelid::regclass);
    END LOOP;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION rempart_grants() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  LOOP
    PERFORM rempart_grant_on(r.oid::regclass);
  END LOOP;
END
$$;

-- Runs as the role that ran the DDL (the owner, during migrate), which may grant on what it owns.
CREATE OR REPLACE FUNCTION rempart_grants_after_ddl() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    IF cmd.schema_name = 'public'
       AND cmd.object_type IN ('table', 'view', 'materialized view', 'foreign table', 'sequence') THEN
      PERFORM rempart_grant_on(cmd.objid::regclass);
    END IF;
  END LOOP;
END
$$;
ALTER FUNCTION rempart_append_only_tables() OWNER TO rempart_owner;
ALTER FUNCTION rempart_grant_on(regclass) OWNER TO rempart_owner;
ALTER FUNCTION rempart_grants() OWNER TO rempart_owner;
REVOKE ALL ON FUNCTION rempart_grant_on(regclass), rempart_grants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rempart_grant_on(regclass), rempart_grants() TO rempart_owner;

DROP EVENT TRIGGER IF EXISTS rempart_grants_after_ddl;
CREATE EVENT TRIGGER rempart_grants_after_ddl ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE VIEW',
               'CREATE MATERIALIZED VIEW', 'CREATE SEQUENCE', 'ALTER SEQUENCE', 'CREATE FOREIGN TABLE')
  EXECUTE FUNCTION rempart_grants_after_ddl();

-- 5. What exists now.
SELECT rempart_grants();
