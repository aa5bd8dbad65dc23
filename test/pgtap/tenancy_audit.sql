-- payymo.audit(): each mistake produces a finding whose fix, run as the
-- administrator, makes the finding go away.  (The harness schema
-- payymo_test -- a table with a tenant_id column, SECURITY DEFINER helpers
-- the client may call -- is left out of "clean".)
BEGIN;
SELECT plan(74);

CREATE FUNCTION pg_temp.findings() RETURNS SETOF text
LANGUAGE sql AS $$
    SELECT object || ': ' || problem FROM payymo.audit()
     WHERE object !~ 'payymo_test\.' ORDER BY 1
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
    '^app.transactions: trigger payymo_stamp_tenant is missing, disabled or was changed', 'disabled trigger');
SELECT * FROM pg_temp.mistake($$
    CREATE TABLE app.ledger (id int PRIMARY KEY);
    ALTER TABLE app.ledger OWNER TO payymo_owner;
    SELECT payymo.enable_tenancy('app.ledger');
    DROP INDEX app.ledger_tenant_id_idx$$,
    '^app.ledger: no index is led by tenant column', 'missing index');

-- Policies that widen access (refused by the guard too).
SELECT * FROM pg_temp.mistake($$ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
    CREATE POLICY everyone ON app.bank_connections USING (true);
    ALTER EVENT TRIGGER payymo_ddl_guard ENABLE$$,
    '^policy everyone on app.bank_connections: always-true permissive policy', 'always-true policy');
SELECT * FROM pg_temp.mistake($$ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
    CREATE POLICY mine ON app.transactions USING (description = current_user);
    ALTER EVENT TRIGGER payymo_ddl_guard ENABLE$$,
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
SELECT * FROM pg_temp.mistake($$CREATE FUNCTION app.sd() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
    REVOKE EXECUTE ON FUNCTION app.sd() FROM PUBLIC$$,
    '^function app.sd\(\): SECURITY DEFINER function without a pinned search_path', 'unpinned SECURITY DEFINER');

-- Blind spots of 0.1.0.  Unique keys with the tenant column only INCLUDEd.
SELECT * FROM pg_temp.mistake('CREATE UNIQUE INDEX acct_incl ON app.bank_connections (account_id) INCLUDE (tenant_id)',
    '^index app.acct_incl on app.bank_connections: unique index without the tenant column among its keys',
    'unique index with the tenant column only included');
-- Exclusion constraints whose conflicts cross tenants.
SELECT * FROM pg_temp.mistake($$ALTER TABLE app.transactions ADD COLUMN during tsrange;
    ALTER TABLE app.transactions ADD CONSTRAINT tx_no_overlap EXCLUDE USING gist (during WITH &&)$$,
    '^constraint tx_no_overlap on app.transactions: exclusion constraint without the tenant column',
    'exclusion constraint without the tenant column');
-- Unique indexes and foreign keys declared on a partition.
SELECT payymo_test.admin($$
    CREATE TABLE app.pt (id int, tenant_id int, k int, code text, PRIMARY KEY (tenant_id, id, k)) PARTITION BY LIST (k);
    CREATE TABLE app.pt_1 PARTITION OF app.pt FOR VALUES IN (1);
    ALTER TABLE app.pt OWNER TO payymo_owner;
    ALTER TABLE app.pt_1 OWNER TO payymo_owner;
    SELECT payymo.enable_tenancy('app.pt')$$);
SELECT is_empty('SELECT * FROM pg_temp.findings()', 'a partitioned table under tenancy is clean');
SELECT * FROM pg_temp.mistake('CREATE UNIQUE INDEX pt_1_code ON app.pt_1 (code)',
    '^index app.pt_1_code on app.pt_1: unique index without the tenant column', 'unique index on a partition');
SELECT * FROM pg_temp.mistake($$ALTER TABLE app.pt_1 ADD CONSTRAINT pt_1_conn FOREIGN KEY (id) REFERENCES app.bank_connections (id)$$,
    '^constraint pt_1_conn on app.pt_1: foreign key to tenancy table app.bank_connections without the tenant column',
    'foreign key declared on a partition');
-- A composite reference that pairs the parent's tenant column with another column.
SELECT * FROM pg_temp.mistake($$ALTER TABLE app.transactions ADD COLUMN other_tenant integer;
    ALTER TABLE app.transactions ADD CONSTRAINT tx_cross FOREIGN KEY (other_tenant, bank_connection_id)
        REFERENCES app.bank_connections (tenant_id, id)$$,
    '^constraint tx_cross on app.transactions: foreign key pairs tenant column tenant_id of app.bank_connections with column other_tenant',
    'foreign key pairing the tenant column with another column');
-- SECURITY DEFINER functions that read tenancy tables with rights that bypass RLS.
SELECT * FROM pg_temp.mistake($$CREATE FUNCTION app.count_all() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp BEGIN ATOMIC SELECT count(*) FROM app.transactions; END$$,
    '^function app.count_all\(\): SECURITY DEFINER function owned by postgres reads tenancy table app.transactions bypassing',
    'SECURITY DEFINER function of a superuser reading a tenancy table');
SELECT * FROM pg_temp.mistake($$CREATE FUNCTION app.opaque() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS 'BEGIN RETURN 1; END'$$,
    '^function app.opaque\(\): SECURITY DEFINER function owned by postgres, which bypasses row level security, can be called by clients',
    'SECURITY DEFINER function of a superuser that clients can call');
-- Materialized views, whoever owns them.
SELECT * FROM pg_temp.mistake($$CREATE MATERIALIZED VIEW app.mv AS SELECT id FROM app.transactions WITH NO DATA;
    ALTER MATERIALIZED VIEW app.mv OWNER TO payymo_owner$$,
    '^app.mv: materialized view over tenancy table app.transactions', 'materialized view owned by the tables'' owner');
-- Rules and other triggers on tenancy tables.
SELECT * FROM pg_temp.mistake('CREATE RULE tx_copy AS ON INSERT TO app.transactions DO ALSO NOTIFY payymo_test',
    '^rule tx_copy on app.transactions: rule runs with the table owner', 'a rule on a tenancy table');
SELECT * FROM pg_temp.mistake($$CREATE FUNCTION app.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
    CREATE TRIGGER tx_noop BEFORE INSERT ON app.transactions FOR EACH ROW EXECUTE FUNCTION app.noop()$$,
    '^trigger tx_noop on app.transactions: trigger runs app.noop\(\) on every write', 'another trigger on a tenancy table');
-- A reviewed warning can be accepted; a critical finding cannot.
SELECT payymo_test.admin($$CREATE TRIGGER tx_noop BEFORE INSERT ON app.transactions FOR EACH ROW EXECUTE FUNCTION app.noop();
    INSERT INTO payymo.audit_accepted (object, problem, reason)
    SELECT object, problem, 'sets updated_at only' FROM payymo.audit() WHERE object ~ '^trigger tx_noop'$$);
SELECT is_empty('SELECT * FROM pg_temp.findings()', 'an accepted warning is left out');
SELECT payymo_test.admin($$GRANT TRUNCATE ON app.transactions TO payymo_client;
    INSERT INTO payymo.audit_accepted (object, problem, reason)
    SELECT object, problem, 'trying to silence it' FROM payymo.audit() WHERE problem ~ '^TRUNCATE'$$);
SELECT ok(EXISTS (SELECT FROM pg_temp.findings() f WHERE f ~ 'TRUNCATE is granted'),
          'an accepted critical finding is still reported');
SELECT payymo_test.admin('REVOKE TRUNCATE ON app.transactions FROM payymo_client');
-- Login roles that can act as the owner of tenancy tables.
SELECT * FROM pg_temp.mistake('CREATE ROLE payymo_audit_member LOGIN IN ROLE payymo_owner',
    '^role payymo_audit_member: can log in and act as payymo_owner', 'login member of the owning role');
-- The extension's own schema and objects.
SELECT * FROM pg_temp.mistake('ALTER SCHEMA payymo OWNER TO payymo_owner',
    '^schema payymo: owned by payymo_owner, which is not a superuser', 'schema payymo given away');
SELECT * FROM pg_temp.mistake('GRANT CREATE ON SCHEMA payymo TO payymo_client',
    '^schema payymo: CREATE is granted to payymo_client', 'CREATE on schema payymo');
SELECT * FROM pg_temp.mistake('ALTER FUNCTION payymo.setting(text, text) OWNER TO payymo_owner',
    '^function payymo.setting\(text,text\): object of the extension owned by payymo_owner', 'extension function given away');
SELECT * FROM pg_temp.mistake('ALTER ROLE payymo_admin LOGIN',
    '^role payymo_admin: can log in', 'payymo_admin can log in');
-- The structure the DDL guard protects, as audit() sees it (one definition).
SELECT * FROM pg_temp.mistake($$ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
    ALTER TABLE app.transactions ALTER COLUMN tenant_id DROP NOT NULL;
    ALTER EVENT TRIGGER payymo_ddl_guard ENABLE$$,
    '^app.transactions: tenant column tenant_id allows NULL', 'a tenant column that allows NULL');
SELECT * FROM pg_temp.mistake($$ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
    CREATE OR REPLACE TRIGGER payymo_stamp_tenant BEFORE INSERT OR UPDATE ON app.transactions
        FOR EACH ROW EXECUTE FUNCTION payymo.stamp_tenant('bank_connection_id');
    ALTER EVENT TRIGGER payymo_ddl_guard ENABLE$$,
    '^app.transactions: trigger payymo_stamp_tenant is missing, disabled or was changed', 'a row trigger on the wrong column');
-- Channels between sessions of the shared client role.
SELECT * FROM pg_temp.mistake('ALTER ROLE payymo_client RESET track_activities',
    '^role payymo_client: sessions of this role see each other''s query text', 'query text visible between tenants');
-- Token columns of type text.
SELECT * FROM pg_temp.mistake('ALTER TABLE app.transactions ADD COLUMN card_token text',
    '^column card_token of app.transactions: token column of type text', 'a token column of type text');

SELECT * FROM finish();
ROLLBACK;
