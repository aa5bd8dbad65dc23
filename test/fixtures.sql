-- Fixtures for the pgTAP suites, run once by the superuser in payymo_test.
--
-- The suites connect as payymo_client: a LOGIN role that is not superuser,
-- owns nothing, has no BYPASSRLS and holds only ordinary grants -- the
-- "client" of the threat model.  Steps that need an administrator go through
-- payymo_test.admin(), so every other statement runs with client privileges.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION pgtap;
CREATE EXTENSION payymo;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payymo_client') THEN
        CREATE ROLE payymo_client LOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payymo_job') THEN
        CREATE ROLE payymo_job LOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;
GRANT EXECUTE ON FUNCTION payymo.assume_tenant(bigint, boolean) TO payymo_job;
-- All tenants share these roles: their sessions must not see each other's
-- query text in pg_stat_activity (payymo.audit() reports it otherwise).
ALTER ROLE payymo_client SET track_activities = off;
ALTER ROLE payymo_job SET track_activities = off;

-- Cheap password hashes: the suites log in hundreds of times.
ALTER DATABASE payymo_test SET payymo.password_opslimit = 1;
ALTER DATABASE payymo_test SET payymo.password_memlimit = '8MB';

CREATE SCHEMA payymo_test;
GRANT USAGE ON SCHEMA payymo_test TO payymo_client, payymo_job;

-- Tenants alpha and bravo, with their keys, known to the tests.
CREATE TABLE payymo_test.keys (
    slug text PRIMARY KEY,
    tenant_id bigint NOT NULL,
    api_key text NOT NULL
);
INSERT INTO payymo_test.keys
SELECT s, t.tenant_id, t.api_key
  FROM unnest(ARRAY['alpha', 'bravo']) AS s,
       LATERAL payymo.create_tenant(s, initcap(s) || ' Ltd') AS t;
GRANT SELECT ON payymo_test.keys TO payymo_client, payymo_job;

CREATE FUNCTION payymo_test.key(slug text) RETURNS text
LANGUAGE sql STABLE STRICT
AS $$ SELECT api_key FROM payymo_test.keys k WHERE k.slug = key.slug $$;

CREATE FUNCTION payymo_test.tenant(slug text) RETURNS bigint
LANGUAGE sql STABLE STRICT
AS $$ SELECT tenant_id FROM payymo_test.keys k WHERE k.slug = tenant.slug $$;

-- Runs one administrative statement as the superuser (test harness only).
CREATE FUNCTION payymo_test.admin(command text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$ BEGIN EXECUTE command; END $$;

-- Same, returning a single value.
CREATE FUNCTION payymo_test.admin_value(query text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$ DECLARE v text; BEGIN EXECUTE query INTO v; RETURN v; END $$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA payymo_test TO payymo_client, payymo_job;

-- "SQLSTATE message" of the error a statement raises, or 'no error'.
CREATE FUNCTION payymo_test.err(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE st text; msg text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ' ' || msg;
END $$;
GRANT EXECUTE ON FUNCTION payymo_test.err(text) TO payymo_client, payymo_job;

-- The HINT of the error a statement raises, or 'no error'.
CREATE FUNCTION payymo_test.err_hint(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN h;
END $$;
GRANT EXECUTE ON FUNCTION payymo_test.err_hint(text) TO payymo_client, payymo_job;

-- Rows of a tenant in a table, counted by whoever calls it (the
-- administrator through payymo_test.admin_value, bypassing RLS).
CREATE FUNCTION payymo_test.count_rows(tbl regclass, col name, tenant bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s WHERE %I = %s', tbl, col, tenant) INTO n;
    RETURN n;
END $$;

-- Forces parallel plans: debug_parallel_query, called force_parallel_mode
-- before PostgreSQL 16.
CREATE FUNCTION payymo_test.force_parallel(mode text, is_local boolean DEFAULT false) RETURNS void
LANGUAGE sql AS $$
    SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                           THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, mode, is_local)
$$;

-- EXPLAIN output as rows, for plan-shape assertions.
CREATE FUNCTION payymo_test.explain(query text) RETURNS SETOF text
LANGUAGE plpgsql
AS $$ DECLARE l text; BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP RETURN NEXT l; END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION payymo_test.explain(text) TO payymo_client, payymo_job;

-- -------------------------------------------------------------------------
-- Tables under tenancy (test/pgtap/tenancy*.sql, test/shell/tenancy.t).
-- The Payymo schema (token columns bytea, for encrypt_token), created and
-- put under tenancy by payymo_owner, a
-- non-superuser NOLOGIN owner (so payymo.audit() stays clean); the client
-- gets ordinary DML grants.  Both tenants have rows; bravo's carry the
-- marker 'BRAVO-SECRET' so that tests can look for leaks.
-- -------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payymo_owner') THEN
        CREATE ROLE payymo_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;
CREATE SCHEMA app AUTHORIZATION payymo_owner;
GRANT USAGE ON SCHEMA app TO payymo_client, payymo_job;

SET ROLE payymo_owner;
CREATE TABLE app.bank_connections (
    id SERIAL PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    bank_id VARCHAR(100) NOT NULL,
    bank_name VARCHAR(100),
    account_id VARCHAR(100) NOT NULL,
    account_name VARCHAR(255),
    access_token BYTEA,                 -- encrypt_token() output
    refresh_token BYTEA,
    token_expires_at TIMESTAMP,
    status VARCHAR(20) DEFAULT 'active',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (tenant_id, bank_id, account_id)
);
CREATE INDEX idx_bank_connections_tenant ON app.bank_connections (tenant_id);
SELECT payymo.enable_tenancy('app.bank_connections');

CREATE TABLE app.transactions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_connection_id integer NOT NULL,
    amount numeric(12, 2) NOT NULL,
    description text,
    booked_on date NOT NULL DEFAULT CURRENT_DATE
);
SELECT payymo.enable_tenancy('app.transactions');
SELECT payymo.add_tenant_reference('app.transactions', 'bank_connection_id', 'app.bank_connections');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.bank_connections, app.transactions
    TO payymo_client, payymo_job;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA app TO payymo_client, payymo_job;
RESET ROLE;

BEGIN;
SELECT payymo.assume_tenant(payymo_test.tenant('alpha'));
INSERT INTO app.bank_connections (bank_id, bank_name, account_id, account_name)
SELECT 'bank-' || i, 'Alpha Bank ' || i, 'acc-' || i, 'alpha account ' || i
  FROM generate_series(1, 3) i;
INSERT INTO app.transactions (bank_connection_id, amount, description)
SELECT b.id, 10 * g, 'alpha payment ' || g
  FROM app.bank_connections b, generate_series(1, 2) g
 WHERE b.tenant_id = payymo_test.tenant('alpha');
COMMIT;
BEGIN;
SELECT payymo.assume_tenant(payymo_test.tenant('bravo'));
INSERT INTO app.bank_connections (bank_id, bank_name, account_id, account_name, access_token)
SELECT 'bank-secret-' || i, 'BRAVO-SECRET bank', 'acc-secret-' || i, 'BRAVO-SECRET ' || i,
       payymo.encrypt_token('BRAVO-SECRET token', 'bank_connections.access_token')
  FROM generate_series(1, 200) i;
INSERT INTO app.transactions (bank_connection_id, amount, description)
SELECT b.id, 999, 'BRAVO-SECRET payment'
  FROM app.bank_connections b
 WHERE b.tenant_id = payymo_test.tenant('bravo');
COMMIT;
ANALYZE app.bank_connections, app.transactions;
