-- Tables under tenancy: the SECURITY DEFINER workers behind enable_tenancy,
-- disable_tenancy and add_tenant_reference never run the caller's code
-- (triggers, CHECK constraints, casts) with the rights of payymo's owner.
-- The client owns the tables here, as any role with CREATE on a schema can.
BEGIN;
SELECT plan(22);

-- 1. The reported attack: a temporary table with a statement trigger.  A
-- sequence (not rolled back with the failed call) counts superuser runs.
CREATE TEMP SEQUENCE super_runs;
CREATE TEMP TABLE x (id int PRIMARY KEY);
CREATE FUNCTION pg_temp.f() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        PERFORM nextval('pg_temp.super_runs');
    END IF;
    RETURN NULL;
END $f$;
CREATE TRIGGER t BEFORE UPDATE ON x FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.f();
SELECT is(payymo_test.err($$SELECT payymo.enable_tenancy('pg_temp.x')$$),
          '0A000 x is a temporary table', 'enable_tenancy refuses a temporary table');
SELECT is((SELECT is_called FROM pg_temp.super_runs), false,
          'the temporary table''s trigger never ran as a superuser');

-- 2. A table of the client's with a statement trigger, a row trigger and a
-- CHECK constraint, each recording who runs it.
SELECT payymo_test.admin('CREATE SCHEMA priv; GRANT USAGE, CREATE ON SCHEMA priv TO payymo_client');
CREATE TABLE priv.seen (what text, cur name, ses name, super boolean);
CREATE FUNCTION priv.note(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO priv.seen
    VALUES (what, current_user, session_user,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
    RETURN true;
END $$;
CREATE FUNCTION priv.note_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM priv.note(TG_NAME); RETURN NEW; END $$;
CREATE TABLE priv.victim (id int PRIMARY KEY, body text, CHECK (priv.note('check')));
CREATE TRIGGER stmt BEFORE UPDATE ON priv.victim
    FOR EACH STATEMENT EXECUTE FUNCTION priv.note_trigger();
CREATE TRIGGER row_trg BEFORE INSERT OR UPDATE ON priv.victim
    FOR EACH ROW EXECUTE FUNCTION priv.note_trigger();
INSERT INTO priv.victim VALUES (1, 'a'), (2, 'b');
DELETE FROM priv.seen;

SELECT payymo.set_tenant(payymo_test.key('alpha'));
SELECT lives_ok($$SELECT payymo.enable_tenancy('priv.victim')$$,
                'enable_tenancy succeeds on a table with its owner''s triggers and CHECK');
SELECT set_eq('SELECT DISTINCT what FROM priv.seen', ARRAY['stmt', 'row_trg', 'check'],
              'the back-fill ran the statement trigger, the row trigger and the CHECK');
SELECT is((SELECT count(*) FROM priv.seen
            WHERE super OR cur <> 'payymo_client' OR ses <> 'payymo_client'), 0::bigint,
          'all of them ran as the table''s owner, none as a superuser');
SELECT is((SELECT array_agg(tenant_id ORDER BY id) FROM priv.victim),
          ARRAY[payymo_test.tenant('alpha'), payymo_test.tenant('alpha')],
          'existing rows were back-filled with the current tenant');
SELECT is_empty($$SELECT * FROM payymo._tenancy_problems('priv.victim')$$, 'the table is fully under tenancy');

-- 3. disable_tenancy: an event trigger records who runs each statement.
DELETE FROM priv.seen;
SELECT payymo_test.admin($$
    CREATE FUNCTION payymo_test.note_ddl() RETURNS event_trigger LANGUAGE plpgsql
    AS 'BEGIN PERFORM priv.note(''ddl '' || tg_tag); END';
    CREATE EVENT TRIGGER payymo_test_note_ddl ON ddl_command_end
        EXECUTE FUNCTION payymo_test.note_ddl()$$);
-- (Taking a table out of tenancy needs payymo_admin, not only ownership.)
SELECT payymo_test.admin('GRANT payymo_admin TO payymo_client');
SELECT lives_ok($$SELECT payymo.disable_tenancy('priv.victim')$$, 'the owner, an administrator, disables tenancy');
SELECT payymo_test.admin('REVOKE payymo_admin FROM payymo_client');
SELECT payymo_test.admin('DROP EVENT TRIGGER payymo_test_note_ddl');
SELECT cmp_ok((SELECT count(*) FROM priv.seen WHERE what LIKE 'ddl %'), '>=', 4::bigint,
              'disable_tenancy ran its statements on the table');
SELECT is((SELECT count(*) FROM priv.seen
            WHERE super OR cur <> 'payymo_client'), 0::bigint,
          'disable_tenancy ran them as the table''s owner, none as a superuser');

-- 4. add_tenant_reference.
DELETE FROM priv.seen;
CREATE TABLE priv.parent (id int PRIMARY KEY);
CREATE TABLE priv.child (id int PRIMARY KEY, parent_id int, CHECK (priv.note('check')));
CREATE TRIGGER row_trg BEFORE INSERT OR UPDATE ON priv.child
    FOR EACH ROW EXECUTE FUNCTION priv.note_trigger();
SELECT payymo.enable_tenancy('priv.parent');
SELECT payymo.enable_tenancy('priv.child');
INSERT INTO priv.parent VALUES (1);
INSERT INTO priv.child VALUES (1, 1);
SELECT lives_ok($$SELECT payymo.add_tenant_reference('priv.child', 'parent_id', 'priv.parent')$$,
                'add_tenant_reference accepts built-in key types');
SELECT is((SELECT count(*) FROM priv.seen WHERE super), 0::bigint,
          'add_tenant_reference ran nothing of the owner''s as a superuser');

-- A user type with an implicit cast to the key's type: validation would
-- call the cast.
CREATE TYPE priv.ref AS (v int);
CREATE FUNCTION priv.ref_to_int(priv.ref) RETURNS int LANGUAGE plpgsql AS $$
BEGIN PERFORM priv.note('cast'); RETURN $1.v; END $$;
CREATE CAST (priv.ref AS int) WITH FUNCTION priv.ref_to_int(priv.ref) AS IMPLICIT;
CREATE TABLE priv.child_cast (id int PRIMARY KEY, parent_ref priv.ref);
SELECT payymo.enable_tenancy('priv.child_cast');
INSERT INTO priv.child_cast VALUES (1, ROW(1));
DELETE FROM priv.seen;
SELECT is(payymo_test.err($$SELECT payymo.add_tenant_reference('priv.child_cast', 'parent_ref', 'priv.parent')$$),
          '0A000 tenant reference from priv.child_cast.parent_ref to priv.parent must compare built-in types',
          'a child column of a user-defined type is refused');
SELECT is((SELECT count(*) FROM priv.seen WHERE super), 0::bigint,
          'the user-defined cast never ran as a superuser');

-- A parent key of a user-defined type.
CREATE TYPE priv.color AS ENUM ('red', 'green');
CREATE TABLE priv.eparent (id priv.color PRIMARY KEY);
CREATE TABLE priv.echild (id int PRIMARY KEY, color priv.color);
SELECT payymo.enable_tenancy('priv.eparent');
SELECT payymo.enable_tenancy('priv.echild');
SELECT is(left(payymo_test.err($$SELECT payymo.add_tenant_reference('priv.echild', 'color', 'priv.eparent')$$), 5),
          '0A000', 'a parent key of a user-defined type is refused');

-- A unique index on the parent's key with an operator class outside pg_catalog.
SELECT payymo_test.admin($$
    CREATE OPERATOR CLASS priv.int4_alt_ops FOR TYPE int4 USING btree AS
        OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
        FUNCTION 1 btint4cmp(int4, int4)$$);
CREATE TABLE priv.oparent (id int PRIMARY KEY);
CREATE TABLE priv.ochild (id int PRIMARY KEY, oparent_id int);
SELECT payymo.enable_tenancy('priv.oparent');
SELECT payymo.enable_tenancy('priv.ochild');
CREATE UNIQUE INDEX ON priv.oparent (tenant_id, id priv.int4_alt_ops);
SELECT is(left(payymo_test.err($$SELECT payymo.add_tenant_reference('priv.ochild', 'oparent_id', 'priv.oparent')$$), 5),
          '0A000', 'a parent key with a unique index of a non-pg_catalog operator class is refused');

-- 5. Partitions created later are covered, as their owner, by the DDL guard.
CREATE TABLE priv.parted (id int, k int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
SELECT payymo.enable_tenancy('priv.parted');
CREATE TABLE priv.parted_1 PARTITION OF priv.parted FOR VALUES IN (1);
SELECT ok(EXISTS (SELECT FROM payymo.tenant_tables WHERE relid = 'priv.parted_1'::regclass)
          AND NOT EXISTS (SELECT FROM payymo._tenancy_problems('priv.parted_1')),
          'a partition the owner creates is put under tenancy');

-- 6. The helper that runs statements as a table's owner is not public.
SELECT throws_ok($$SELECT payymo._as_table_owner('priv.victim', 'SELECT 1')$$, '42501', NULL,
                 'the client cannot call payymo._as_table_owner()');

-- 7. drop_tenant and key rotation, run by an administrator, write the
-- client's table as its owner: its triggers never run as a superuser.
CREATE TABLE priv.tokens (id int PRIMARY KEY, tok bytea);
SELECT payymo.enable_tenancy('priv.tokens');
CREATE FUNCTION priv.note_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM priv.note(TG_NAME); RETURN OLD; END $$;
CREATE TRIGGER upd_trg BEFORE UPDATE ON priv.tokens
    FOR EACH ROW EXECUTE FUNCTION priv.note_trigger();
CREATE TRIGGER del_trg BEFORE DELETE ON priv.tokens
    FOR EACH ROW EXECUTE FUNCTION priv.note_delete();
SELECT payymo_test.admin($$SELECT payymo.create_tenant('priv-victim', 'Victim')$$);
SELECT payymo_test.admin($$SELECT payymo.assume_tenant(
    (SELECT id FROM payymo.tenants WHERE slug = 'priv-victim'));
    INSERT INTO priv.tokens VALUES (1, payymo.encrypt_token('t', 'c')), (2, payymo.encrypt_token('u', 'c'))$$);
DELETE FROM priv.seen;
SELECT is(payymo_test.admin_value($$SELECT payymo.reencrypt_token_batch('priv.tokens', 'tok', 'c')$$),
          '0', 'rotation with nothing to do (the tokens use the newest key) updates nothing');
SELECT is(payymo_test.admin_value(
    $$SELECT payymo.drop_tenant((SELECT id FROM payymo.tenants WHERE slug = 'priv-victim'), force => true)$$),
    '4', 'drop_tenant deletes the two rows, the key and the tenant');
SELECT is((SELECT count(*) FROM priv.seen WHERE what = 'del_trg'), 2::bigint,
          'the table''s delete trigger ran for each row');
SELECT is((SELECT count(*) FROM priv.seen WHERE super), 0::bigint,
          'drop_tenant ran none of the table''s triggers as a superuser');

SELECT * FROM finish();
ROLLBACK;
