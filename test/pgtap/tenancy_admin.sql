-- Tables under tenancy: enable_tenancy / disable_tenancy / add_tenant_reference
-- and the DDL guard.  DDL runs through payymo_test.admin() (superuser) or
-- through functions owned by payymo_owner; the client runs the rest.
BEGIN;
SELECT plan(57);

-- 1. enable_tenancy: what it builds (on the fixture table, by a non-superuser owner).
SELECT is((SELECT relrowsecurity AND relforcerowsecurity FROM pg_class
            WHERE oid = 'app.bank_connections'::regclass), true,
          'row level security is enabled and forced');
SELECT policies_are('app', 'bank_connections', ARRAY['payymo_tenant_isolation'],
                    'the single policy payymo_tenant_isolation');
SELECT is((SELECT pg_get_expr(polqual, polrelid) = pg_get_expr(polwithcheck, polrelid)
                  AND polpermissive AND polcmd = '*' AND polroles = '{0}'
             FROM pg_policy WHERE polrelid = 'app.bank_connections'::regclass), true,
          'the policy has the same USING and WITH CHECK, for all commands and roles');
SELECT triggers_are('app', 'transactions', ARRAY['payymo_stamp_tenant', 'payymo_refuse_truncate'],
                    'the row trigger and the TRUNCATE guard');
SELECT col_not_null('app', 'transactions', 'tenant_id', 'the added tenant column is NOT NULL');
SELECT col_type_is('app', 'transactions', 'tenant_id', 'bigint', 'the added tenant column is bigint');
SELECT col_default_is('app', 'bank_connections', 'tenant_id', 'payymo.current_tenant()',
                      'the tenant column defaults to current_tenant()');
SELECT is((SELECT count(*) FROM pg_constraint
            WHERE conrelid IN ('app.bank_connections'::regclass, 'app.transactions'::regclass)
              AND confrelid = 'payymo.tenants'::regclass), 0::bigint,
          'no foreign key to payymo.tenants (the row trigger checks the tenant once per transaction)');
SELECT fk_ok('app', 'transactions', ARRAY['tenant_id', 'bank_connection_id'],
             'app', 'bank_connections', ARRAY['tenant_id', 'id'],
             'add_tenant_reference made the composite foreign key');
SELECT col_is_unique('app', 'bank_connections', ARRAY['tenant_id', 'id'],
                     'add_tenant_reference added the unique key (tenant column, primary key) it points to');
SELECT is((SELECT count(*) FROM pg_constraint
            WHERE conrelid = 'app.transactions'::regclass AND contype = 'u'), 0::bigint,
          'a table nothing points to gets no unique key');
SELECT is((SELECT count(*) FROM pg_index WHERE indrelid = 'app.bank_connections'::regclass
              AND indkey[0] = (SELECT attnum FROM pg_attribute
                                WHERE attrelid = 'app.bank_connections'::regclass
                                  AND attname = 'tenant_id')), 3::bigint,
          'no extra index where one led by the tenant column existed');
SELECT set_eq($$SELECT relid::text FROM payymo.tenant_tables WHERE relid::text LIKE 'app.%'$$,
              ARRAY['app.bank_connections', 'app.transactions'], 'both tables are registered');

-- 2. Idempotent, and only for the owner.
SELECT payymo_test.admin($$
    CREATE FUNCTION payymo_test.as_owner(sql text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'BEGIN EXECUTE sql; RETURN ''ok''; END';
    ALTER FUNCTION payymo_test.as_owner(text) OWNER TO payymo_owner;
    GRANT EXECUTE ON FUNCTION payymo_test.as_owner(text) TO payymo_client$$);
SELECT payymo_test.admin($$SELECT payymo.enable_tenancy('app.bank_connections');
                           SELECT payymo.enable_tenancy('app.bank_connections');
                           SELECT payymo.add_tenant_reference('app.transactions', 'bank_connection_id', 'app.bank_connections')$$);
SELECT is((SELECT count(*) FROM pg_policy WHERE polrelid = 'app.bank_connections'::regclass)
          + (SELECT count(*) FROM pg_constraint WHERE conrelid IN ('app.bank_connections'::regclass, 'app.transactions'::regclass)
                AND contype <> 'n')   -- NOT NULL constraints are rows from PostgreSQL 18 on
          + (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.bank_connections'::regclass AND NOT tgisinternal)
          + (SELECT count(*) FROM pg_index WHERE indrelid = 'app.bank_connections'::regclass),
          (1 + 6 + 2 + 3)::bigint,
          'calling enable_tenancy and add_tenant_reference again adds nothing');
SELECT throws_ok($$SELECT payymo.enable_tenancy('app.bank_connections')$$, '42501',
                 'must be owner of table bank_connections', 'the client cannot enable tenancy');
SELECT throws_ok($$SELECT payymo.disable_tenancy('app.bank_connections')$$, '42501',
                 'permission denied to take a table out of tenancy', 'the client cannot disable tenancy');
SELECT throws_ok($$SELECT payymo.add_tenant_reference('app.transactions', 'bank_connection_id', 'app.bank_connections')$$,
                 '42501', NULL, 'the client cannot add tenant references');
SELECT throws_ok($$SELECT payymo._disable_tenancy('app.bank_connections')$$, '42501',
                 'payymo''s internal tenancy functions cannot be called directly',
                 'the SECURITY DEFINER worker refuses a call without a ticket');

-- 3. Clear errors.
SELECT payymo_test.admin($$
    CREATE TABLE app.nopk (tenant_id bigint);
    CREATE TABLE app.wrongtype (id int PRIMARY KEY, tenant_id text);
    CREATE VIEW app.v AS SELECT 1 AS id;
    CREATE TABLE app.parted (id int, tenant_id int, k int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
    CREATE TABLE app.parted_1 PARTITION OF app.parted FOR VALUES IN (1);
    GRANT SELECT, INSERT ON app.parted TO payymo_client;
    CREATE TABLE app.loose (id int PRIMARY KEY, tenant_id bigint)$$);
SELECT is(payymo_test.err($$SELECT payymo_test.admin('SELECT payymo.enable_tenancy(''app.nopk'')')$$),
          '42P16 table app.nopk has no primary key', 'a table without a primary key is refused');
SELECT is(payymo_test.err($$SELECT payymo_test.admin('SELECT payymo.enable_tenancy(''app.wrongtype'')')$$),
          '42804 column tenant_id of table app.wrongtype must be integer or bigint', 'a text tenant column is refused');
SELECT is(payymo_test.err($$SELECT payymo_test.admin('SELECT payymo.enable_tenancy(''app.v'')')$$),
          '42809 app.v is not a table', 'a view is refused');
SELECT is(payymo_test.err($$SELECT payymo_test.admin('SELECT payymo.enable_tenancy(''app.parted_1'')')$$),
          '42809 app.parted_1 is a partition', 'a partition is refused');
SELECT is(payymo_test.err($$SELECT payymo.add_tenant_reference('app.loose', 'id', 'app.bank_connections')$$),
          '42501 must be owner of table loose', 'add_tenant_reference checks ownership first');
SELECT is(payymo_test.err($$SELECT payymo_test.admin('SELECT payymo.add_tenant_reference(''app.loose'', ''id'', ''app.bank_connections'')')$$),
          '55000 table app.loose is not under tenancy', 'add_tenant_reference needs both tables under tenancy');

-- 4. Partitioned tables: the parent covers existing and new partitions.
SELECT payymo_test.admin($$SELECT payymo.enable_tenancy('app.parted');
                           CREATE TABLE app.parted_2 PARTITION OF app.parted FOR VALUES IN (2);
                           CREATE TABLE app.parted_3 (id int NOT NULL, tenant_id int NOT NULL, k int NOT NULL);
                           ALTER TABLE app.parted ATTACH PARTITION app.parted_3 FOR VALUES IN (3);
                           GRANT SELECT, INSERT ON app.parted_1, app.parted_2, app.parted_3 TO payymo_client$$);
SELECT is((SELECT count(*) FROM payymo.tenant_tables t JOIN pg_class c ON c.oid = t.relid
            WHERE t.root = 'app.parted'::regclass AND c.relforcerowsecurity
              AND NOT EXISTS (SELECT FROM payymo._tenancy_problems(t.relid))), 3::bigint,
          'existing, created and attached partitions are all under tenancy');
SELECT payymo_test.admin($$
    SELECT payymo.assume_tenant(payymo_test.tenant('bravo'));
    INSERT INTO app.parted (id, k) VALUES (1, 1), (2, 2), (3, 3);
    SELECT payymo.clear_tenant()$$);
SELECT payymo.set_tenant(payymo_test.key('alpha'));
SELECT is((SELECT count(*) FROM app.parted_1) + (SELECT count(*) FROM app.parted_2)
          + (SELECT count(*) FROM app.parted_3) + (SELECT count(*) FROM app.parted), 0::bigint,
          'bravo''s rows are hidden through the parent and through each partition');
SELECT throws_ok(format('INSERT INTO app.parted_2 (id, k, tenant_id) VALUES (9, 2, %s)', payymo_test.tenant('bravo')),
                 '42501', NULL, 'a partition refuses bravo''s tenant id');
SELECT throws_ok($$SELECT payymo_test.admin('TRUNCATE app.parted_3')$$, '42501', NULL,
                 'a partition refuses TRUNCATE');

-- 5. The DDL guard: each weakening statement is refused.
SELECT is(payymo_test.err($$SELECT payymo_test.admin('DROP POLICY payymo_tenant_isolation ON app.bank_connections')$$),
          '42501 table app.bank_connections is under tenancy: this statement would weaken it',
          'DROP POLICY payymo_tenant_isolation is refused, for a superuser too');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('ALTER TABLE app.bank_connections DISABLE ROW LEVEL SECURITY')$$), 5),
          '42501', 'DISABLE ROW LEVEL SECURITY by the owner is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('ALTER TABLE app.bank_connections NO FORCE ROW LEVEL SECURITY')$$), 5),
          '42501', 'NO FORCE ROW LEVEL SECURITY is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('DROP TRIGGER payymo_stamp_tenant ON app.bank_connections')$$), 5),
          '42501', 'dropping the row trigger is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('DROP TRIGGER payymo_refuse_truncate ON app.transactions')$$), 5),
          '42501', 'dropping the TRUNCATE guard is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('ALTER TABLE app.bank_connections DISABLE TRIGGER payymo_stamp_tenant')$$), 5),
          '42501', 'disabling the row trigger is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('ALTER TABLE app.transactions DROP COLUMN tenant_id CASCADE')$$), 5),
          '42501', 'dropping the tenant column is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('ALTER POLICY payymo_tenant_isolation ON app.bank_connections USING (true)')$$), 5),
          '42501', 'rewriting the policy is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('ALTER TABLE app.parted_2 NO FORCE ROW LEVEL SECURITY')$$), 5),
          '42501', 'weakening a partition is refused');

SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('CREATE POLICY everyone ON app.bank_connections USING (true)')$$), 5),
          '42501', 'adding a permissive policy, which OR-s with payymo''s, is refused');
SELECT lives_ok($$SELECT payymo_test.as_owner('CREATE POLICY only_small ON app.transactions AS RESTRICTIVE USING (amount < 1000)')$$,
                'a restrictive policy, which narrows access, is allowed');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner('ALTER TABLE app.transactions ALTER COLUMN tenant_id DROP NOT NULL')$$), 5),
          '42501', 'letting the tenant column take NULL is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner(
              'CREATE OR REPLACE TRIGGER payymo_stamp_tenant AFTER INSERT OR UPDATE ON app.transactions
               FOR EACH ROW EXECUTE FUNCTION payymo.stamp_tenant(''tenant_id'')')$$), 5),
          '42501', 'replacing the row trigger with an AFTER trigger is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner(
              'CREATE OR REPLACE TRIGGER payymo_stamp_tenant BEFORE INSERT OR UPDATE OF amount ON app.transactions
               FOR EACH ROW EXECUTE FUNCTION payymo.stamp_tenant(''tenant_id'')')$$), 5),
          '42501', 'narrowing the row trigger to some columns is refused');
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner(
              'CREATE OR REPLACE TRIGGER payymo_stamp_tenant BEFORE INSERT OR UPDATE ON app.transactions
               FOR EACH ROW EXECUTE FUNCTION payymo.stamp_tenant(''bank_connection_id'')')$$), 5),
          '42501', 'pointing the row trigger at another column is refused');
-- A restore runs as a superuser with row_security = off; an owner who sets
-- it off is not restoring.
SELECT is(left(payymo_test.err($$SELECT payymo_test.as_owner(
              'SET LOCAL row_security = off; ALTER TABLE app.transactions NO FORCE ROW LEVEL SECURITY')$$), 5),
          '42501', 'a non-superuser owner with row_security = off is still refused');

-- 6. Who may take a table out of tenancy: superusers and payymo_admin members,
-- not the owner, nor the logins that are members of the owning role.
SELECT payymo_test.admin($$
    CREATE ROLE payymo_test_member LOGIN IN ROLE payymo_owner;
    CREATE ROLE payymo_test_dba NOLOGIN IN ROLE payymo_admin;
    GRANT USAGE ON SCHEMA app TO payymo_test_dba;
    CREATE FUNCTION payymo_test.as_member(sql text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'BEGIN EXECUTE sql; RETURN ''ok''; END';
    ALTER FUNCTION payymo_test.as_member(text) OWNER TO payymo_test_member;
    CREATE FUNCTION payymo_test.as_dba(sql text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'BEGIN EXECUTE sql; RETURN ''ok''; END';
    ALTER FUNCTION payymo_test.as_dba(text) OWNER TO payymo_test_dba;
    GRANT EXECUTE ON FUNCTION payymo_test.as_member(text), payymo_test.as_dba(text) TO payymo_client$$);
SELECT is(payymo_test.err($$SELECT payymo_test.as_owner('SELECT payymo.disable_tenancy(''app.bank_connections'')')$$),
          '42501 permission denied to take a table out of tenancy', 'the owner cannot disable tenancy');
SELECT is(payymo_test.err($$SELECT payymo_test.as_member('SELECT payymo.disable_tenancy(''app.bank_connections'')')$$),
          '42501 permission denied to take a table out of tenancy',
          'a login role that is a member of the owning role cannot either');
SELECT lives_ok($$SELECT payymo_test.as_member('SELECT payymo.enable_tenancy(''app.bank_connections'')')$$,
                'but it may (re)enable tenancy, which only strengthens the table');
SELECT is(payymo_test.err($$SELECT payymo_test.as_owner('SELECT payymo._issue_ticket(''app.bank_connections'', NULL, false);
                                                          SELECT payymo._disable_tenancy(''app.bank_connections'')')$$),
          '42501 payymo''s internal tenancy functions cannot be called directly',
          'a ticket for enabling does not buy a call of the disabling worker');
SELECT lives_ok($$SELECT payymo_test.as_dba('SELECT payymo.disable_tenancy(''app.bank_connections'')')$$,
                'a member of payymo_admin can disable tenancy on a table it does not own');
SELECT is((SELECT relrowsecurity OR relforcerowsecurity FROM pg_class WHERE oid = 'app.bank_connections'::regclass)
          OR EXISTS (SELECT FROM pg_policy WHERE polrelid = 'app.bank_connections'::regclass)
          OR EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'app.bank_connections'::regclass AND NOT tgisinternal)
          OR EXISTS (SELECT FROM payymo.tenant_tables WHERE relid = 'app.bank_connections'::regclass),
          false, 'disable_tenancy removed RLS, policy, triggers and the registration');
SELECT lives_ok($$SELECT payymo_test.as_owner('SELECT payymo.enable_tenancy(''app.bank_connections'')')$$,
                'the owner can enable it again');
SELECT is_empty($$SELECT * FROM payymo._tenancy_problems('app.bank_connections')$$, 'the table is intact again');

-- 7. enable_tenancy refuses what would leave the table open.
SELECT payymo_test.admin($$
    CREATE TABLE app.prefilled (id int PRIMARY KEY, note text);
    INSERT INTO app.prefilled VALUES (1, 'existing row');
    CREATE TABLE app.widened (id int PRIMARY KEY, tenant_id bigint);
    ALTER TABLE app.widened ENABLE ROW LEVEL SECURITY;
    CREATE POLICY open_all ON app.widened USING (true)$$);
SELECT is(payymo_test.err($$SELECT payymo_test.admin('SELECT payymo.enable_tenancy(''app.widened'')')$$),
          '55000 table app.widened has the permissive policy open_all',
          'a table with another permissive policy is refused');
SELECT payymo.clear_tenant();
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.enable_tenancy(''app.prefilled'')')$$, '55000',
                 'table app.prefilled has rows, and no tenant context is set to give them',
                 'adding the tenant column to a table with rows needs a context for them');
SELECT is(payymo_test.admin_value($$SELECT e FROM (SELECT payymo_test.err_hint('SELECT payymo.enable_tenancy(''app.prefilled'')') e) x$$)
          ~ 'payymo.assume_tenant', true, 'and the hint says to call assume_tenant first');
SELECT lives_ok($$SELECT payymo_test.admin(format('SELECT payymo.assume_tenant(%s); SELECT payymo.enable_tenancy(''app.prefilled'')',
                                                  payymo_test.tenant('bravo')))$$,
                'with assume_tenant the rows get the tenant');
SELECT is(payymo_test.admin_value('SELECT tenant_id FROM app.prefilled')::bigint, payymo_test.tenant('bravo'),
          'the existing row belongs to that tenant');

SELECT * FROM finish();
ROLLBACK;
