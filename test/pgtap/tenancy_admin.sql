-- Tables under tenancy: enable_tenancy / disable_tenancy / add_tenant_reference
-- and the DDL guard.  DDL runs through payymo_test.admin() (superuser) or
-- through functions owned by payymo_owner; the client runs the rest.
BEGIN;
SELECT plan(40);

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
SELECT fk_ok('app', 'bank_connections', 'tenant_id', 'payymo', 'tenants', 'id',
             'a non-superuser owner got the foreign key to payymo.tenants');
SELECT fk_ok('app', 'transactions', ARRAY['tenant_id', 'bank_connection_id'],
             'app', 'bank_connections', ARRAY['tenant_id', 'id'],
             'add_tenant_reference made the composite foreign key');
SELECT col_is_unique('app', 'bank_connections', ARRAY['tenant_id', 'id'],
                     'unique key (tenant column, primary key)');
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
          + (SELECT count(*) FROM pg_constraint WHERE conrelid IN ('app.bank_connections'::regclass, 'app.transactions'::regclass))
          + (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.bank_connections'::regclass AND NOT tgisinternal)
          + (SELECT count(*) FROM pg_index WHERE indrelid = 'app.bank_connections'::regclass),
          (1 + 9 + 2 + 3)::bigint,
          'calling enable_tenancy and add_tenant_reference again adds nothing');
SELECT throws_ok($$SELECT payymo.enable_tenancy('app.bank_connections')$$, '42501',
                 'must be owner of table bank_connections', 'the client cannot enable tenancy');
SELECT throws_ok($$SELECT payymo.disable_tenancy('app.bank_connections')$$, '42501',
                 'must be owner of table bank_connections', 'the client cannot disable tenancy');
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
              AND payymo._tenancy_problem(t.relid) IS NULL), 3::bigint,
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
          '42501 table app.bank_connections is under tenancy: policy payymo_tenant_isolation would be missing by this statement',
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

-- 6. disable_tenancy still works, and enable_tenancy restores everything.
SELECT lives_ok($$SELECT payymo_test.as_owner('SELECT payymo.disable_tenancy(''app.bank_connections'')')$$,
                'the owner can disable tenancy');
SELECT is((SELECT relrowsecurity OR relforcerowsecurity FROM pg_class WHERE oid = 'app.bank_connections'::regclass)
          OR EXISTS (SELECT FROM pg_policy WHERE polrelid = 'app.bank_connections'::regclass)
          OR EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'app.bank_connections'::regclass AND NOT tgisinternal)
          OR EXISTS (SELECT FROM payymo.tenant_tables WHERE relid = 'app.bank_connections'::regclass),
          false, 'disable_tenancy removed RLS, policy, triggers and the registration');
SELECT lives_ok($$SELECT payymo_test.as_owner('SELECT payymo.enable_tenancy(''app.bank_connections'')')$$,
                'and can enable it again');
SELECT is(payymo._tenancy_problem('app.bank_connections'), NULL, 'the table is intact again');

SELECT * FROM finish();
ROLLBACK;
