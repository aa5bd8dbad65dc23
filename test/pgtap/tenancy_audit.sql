-- payymo.audit(): each mistake produces a finding whose fix, run as the
-- administrator, makes the finding go away.  (payymo_test.keys, a harness
-- table with a tenant_id column, is left out of "clean".)
BEGIN;
SELECT plan(33);

CREATE FUNCTION pg_temp.findings() RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT object || ': ' || problem FROM payymo.audit()
     WHERE object <> 'payymo_test.keys' ORDER BY 1
$$;
-- Creates a mistake, checks that a finding matches, applies its fix,
-- checks that the database is clean again.
CREATE FUNCTION pg_temp.mistake(setup text, pattern text, label text)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE f text;
BEGIN
    PERFORM payymo_test.admin(setup);
    SELECT a.fix INTO f FROM payymo.audit() a
     WHERE a.object || ': ' || a.problem ~ pattern LIMIT 1;
    RETURN NEXT ok(f IS NOT NULL, label || ': found');
    IF f IS NOT NULL THEN
        PERFORM payymo_test.admin(f);
    END IF;
    RETURN NEXT ok(NOT EXISTS (SELECT FROM pg_temp.findings()),
                   label || ': gone after its fix');
END $$;

SELECT is_empty('SELECT * FROM pg_temp.findings()', 'the fixture database is clean');

-- Weakened tenancy tables.  (The guard refuses this DDL, so the mistake is
-- made with the event triggers disabled, as a superuser could.)
SELECT * FROM pg_temp.mistake($$ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
    ALTER TABLE app.transactions NO FORCE ROW LEVEL SECURITY;
    ALTER EVENT TRIGGER payymo_ddl_guard ENABLE$$,
    '^app.transactions: row level security is not forced', 'missing FORCE');
SELECT * FROM pg_temp.mistake($$ALTER EVENT TRIGGER payymo_drop_guard DISABLE;
    DROP POLICY payymo_tenant_isolation ON app.transactions;
    ALTER EVENT TRIGGER payymo_drop_guard ENABLE$$,
    '^app.transactions: policy payymo_tenant_isolation is missing', 'missing policy');
SELECT * FROM pg_temp.mistake($$ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
    ALTER TABLE app.transactions DISABLE TRIGGER payymo_stamp_tenant;
    ALTER EVENT TRIGGER payymo_ddl_guard ENABLE$$,
    '^app.transactions: trigger payymo_stamp_tenant is missing or disabled', 'disabled trigger');
SELECT * FROM pg_temp.mistake($$
    CREATE TABLE app.ledger (id int PRIMARY KEY);
    ALTER TABLE app.ledger OWNER TO payymo_owner;
    SELECT payymo.enable_tenancy('app.ledger');
    ALTER TABLE app.ledger DROP CONSTRAINT ledger_tenant_id_tenant_key$$,
    '^app.ledger: no index is led by tenant column', 'missing index');

-- Policies that widen access.
SELECT * FROM pg_temp.mistake('CREATE POLICY everyone ON app.bank_connections USING (true)',
    '^policy everyone on app.bank_connections: always-true permissive policy', 'always-true policy');
SELECT * FROM pg_temp.mistake($$CREATE POLICY mine ON app.transactions USING (description = current_user)$$,
    '^policy mine on app.transactions: permissive policy OR-ed', 'permissive policy');

-- A table with a tenant column that is not under tenancy.
SELECT * FROM pg_temp.mistake($$CREATE TABLE app.invoices (id int PRIMARY KEY, tenant_id bigint)$$,
    '^app.invoices: has tenant column tenant_id but is not under tenancy', 'unprotected tenant table');

-- Existence oracles.
SELECT * FROM pg_temp.mistake('ALTER TABLE app.bank_connections ADD CONSTRAINT acct_unique UNIQUE (account_id)',
    '^index app.acct_unique on app.bank_connections: unique index without the tenant column', 'global unique key');
SELECT * FROM pg_temp.mistake($$ALTER TABLE app.transactions ADD CONSTRAINT tx_conn_fkey
    FOREIGN KEY (bank_connection_id) REFERENCES app.bank_connections (id)$$,
    '^constraint tx_conn_fkey on app.transactions: foreign key to tenancy table', 'single-column foreign key');

-- Views running with a role that bypasses RLS.
SELECT * FROM pg_temp.mistake('CREATE VIEW app.all_connections AS SELECT * FROM app.bank_connections',
    '^app.all_connections: view over tenancy table app.bank_connections is owned by', 'superuser-owned view');

-- Roles.
SELECT * FROM pg_temp.mistake('CREATE ROLE payymo_audit_su LOGIN SUPERUSER',
    '^role payymo_audit_su: superuser that can log in', 'login superuser');
SELECT * FROM pg_temp.mistake('CREATE ROLE payymo_audit_by LOGIN BYPASSRLS',
    '^role payymo_audit_by: role with BYPASSRLS', 'login BYPASSRLS role');
SELECT * FROM pg_temp.mistake('ALTER ROLE payymo_owner LOGIN',
    '^role payymo_owner: owner of tenancy tables that can log in', 'login table owner');

-- Grants.
SELECT * FROM pg_temp.mistake('GRANT TRUNCATE ON app.transactions TO payymo_client',
    '^app.transactions: TRUNCATE is granted to payymo_client', 'TRUNCATE grant');
SELECT * FROM pg_temp.mistake('GRANT SET ON PARAMETER payymo.tenant_id TO payymo_client',
    '^parameter payymo.tenant_id: SET ON PARAMETER is granted to payymo_client', 'GRANT SET ON PARAMETER');

-- SECURITY DEFINER without a pinned search_path.
SELECT * FROM pg_temp.mistake('CREATE FUNCTION app.sd() RETURNS int LANGUAGE sql SECURITY DEFINER AS ''SELECT 1''',
    '^function app.sd\(\): SECURITY DEFINER function without a pinned search_path', 'unpinned SECURITY DEFINER');

SELECT * FROM finish();
ROLLBACK;
