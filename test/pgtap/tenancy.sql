-- Tables under tenancy: what the client (payymo_client, tenant alpha's key)
-- can and cannot do to tenant bravo's rows of app.bank_connections and
-- app.transactions (test/fixtures.sql).  Every test fails if the guarantee
-- it names breaks.
BEGIN;
SELECT plan(52);

-- Bravo's ids and row counts, read by the superuser before anything runs.
CREATE TEMP TABLE bravo AS
SELECT payymo_test.tenant('bravo') AS tenant,
       payymo_test.admin_value(format(
           'SELECT min(id) FROM app.bank_connections WHERE tenant_id = %s',
           payymo_test.tenant('bravo')))::int AS conn_id,
       payymo_test.admin_value(format(
           'SELECT min(id) FROM app.transactions WHERE tenant_id = %s',
           payymo_test.tenant('bravo')))::bigint AS tx_id;

-- SQLSTATE, message, detail and hint of the error a statement raises.
CREATE FUNCTION pg_temp.err(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text; hin text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
    RETURN concat_ws(' | ', st, msg, nullif(det, ''), nullif(hin, ''));
END $$;

-- Rows a statement affected, and the value a RETURNING statement returned.
CREATE FUNCTION pg_temp.nrows(sql text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE sql;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
CREATE FUNCTION pg_temp.returning(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE v text;
BEGIN
    EXECUTE sql INTO v;
    RETURN v;
END $$;

-- Bravo's rows as the superuser sees them, to prove they were not changed.
CREATE FUNCTION pg_temp.bravo_digest() RETURNS text
LANGUAGE sql AS $$
    SELECT payymo_test.admin_value(format(
        'SELECT md5(string_agg(b::text, '','' ORDER BY id)) FROM app.bank_connections b WHERE tenant_id = %s',
        payymo_test.tenant('bravo')))
     || payymo_test.admin_value(format(
        'SELECT md5(string_agg(t::text, '','' ORDER BY id)) FROM app.transactions t WHERE tenant_id = %s',
        payymo_test.tenant('bravo')))
$$;
CREATE TEMP TABLE before AS SELECT pg_temp.bravo_digest() AS digest;

-- 1. No context: fail closed.
SELECT throws_ok('SELECT count(*) FROM app.bank_connections', '42501',
                 'no tenant context set', 'no context: reading a tenancy table fails');
SELECT throws_ok($$INSERT INTO app.bank_connections (bank_id, account_id) VALUES ('b', 'a')$$,
                 '42501', 'no tenant context set', 'no context: inserting fails');
SELECT throws_ok($$INSERT INTO app.bank_connections (tenant_id, bank_id, account_id)
                   VALUES (payymo_test.tenant('alpha'), 'b', 'a')$$,
                 '42501', NULL, 'no context: inserting with an explicit tenant id fails');

SELECT payymo.set_tenant(payymo_test.key('alpha'));

-- 2. Reads.
SELECT is((SELECT count(*) FROM app.bank_connections), 3::bigint,
          'alpha sees its 3 connections and none of bravo''s 200');
SELECT is((SELECT count(*) FROM app.transactions), 6::bigint,
          'alpha sees its 6 transactions only');
SELECT is((SELECT count(*) FROM app.bank_connections
            WHERE tenant_id = (SELECT tenant FROM bravo)), 0::bigint,
          'reading by bravo''s tenant_id returns nothing');
SELECT is((SELECT count(*) FROM app.bank_connections
            WHERE id = (SELECT conn_id FROM bravo)), 0::bigint,
          'reading bravo''s row by id returns nothing');
SELECT is((SELECT count(*) FROM app.transactions t
             JOIN app.bank_connections b ON b.id = t.bank_connection_id
            WHERE t.description LIKE 'BRAVO%' OR b.account_name LIKE 'BRAVO%'), 0::bigint,
          'no join shows bravo''s rows');
SELECT is((SELECT count(*) FROM app.bank_connections b
            WHERE row_to_json(b)::text LIKE '%BRAVO-SECRET%'), 0::bigint,
          'no visible value comes from bravo');

-- 3. Writes to bravo's rows.
SELECT is(pg_temp.nrows($q$UPDATE app.bank_connections SET account_name = 'pwned'
                       WHERE id = (SELECT conn_id FROM bravo)$q$), 0::bigint,
          'UPDATE of bravo''s row by id changes nothing');
SELECT is(pg_temp.nrows($q$UPDATE app.bank_connections SET account_name = 'pwned'
                       WHERE tenant_id = (SELECT tenant FROM bravo)$q$), 0::bigint,
          'UPDATE by bravo''s tenant_id changes nothing');
SELECT is(pg_temp.nrows($q$DELETE FROM app.transactions
                       WHERE id = (SELECT tx_id FROM bravo)$q$), 0::bigint,
          'DELETE of bravo''s row by id removes nothing');
SELECT is(pg_temp.nrows($q$DELETE FROM app.transactions
                       WHERE tenant_id = (SELECT tenant FROM bravo)$q$), 0::bigint,
          'DELETE by bravo''s tenant_id removes nothing');
SELECT throws_ok(format($$INSERT INTO app.bank_connections (id, bank_id, account_id)
                          VALUES (%s, 'x', 'y')
                          ON CONFLICT (id) DO UPDATE SET account_name = 'pwned'$$,
                        (SELECT conn_id FROM bravo)),
                 '42501', NULL, 'UPSERT on bravo''s primary key cannot update bravo''s row');
SELECT throws_ok(format($$INSERT INTO app.bank_connections (tenant_id, bank_id, account_id)
                          VALUES (%s, 'x', 'y')$$, (SELECT tenant FROM bravo)),
                 '42501', 'cannot write another tenant''s row into table "bank_connections"',
                 'INSERT with bravo''s tenant_id is refused');
SELECT is(pg_temp.err(format($$INSERT INTO app.bank_connections (tenant_id, bank_id, account_id)
                               VALUES (%s, 'x', 'y')$$, (SELECT tenant FROM bravo))),
          '42501 | cannot write another tenant''s row into table "bank_connections" | Column "tenant_id" must be NULL or the current tenant.',
          'the refusal names table and column and no value or tenant id');
SELECT throws_ok(format($$UPDATE app.bank_connections SET tenant_id = %s$$, (SELECT tenant FROM bravo)),
                 '42501', 'cannot change column "tenant_id" of table "bank_connections"',
                 'moving alpha''s rows to bravo is refused');
SELECT throws_ok($$UPDATE app.transactions SET tenant_id = tenant_id + 1$$,
                 '42501', 'cannot change column "tenant_id" of table "transactions"',
                 'changing the bigint tenant column is refused too');
SELECT throws_ok(format($$INSERT INTO app.transactions (tenant_id, bank_connection_id, amount)
                          SELECT %s, min(id), 1 FROM app.bank_connections$$, (SELECT tenant FROM bravo)),
                 '42501', 'cannot write another tenant''s row into table "transactions"',
                 'INSERT ... SELECT with bravo''s tenant_id is refused');
-- The trigger exists for roles that row level security does not stop: a
-- superuser acting under alpha's context is refused by it alone.
SELECT throws_ok(format($$SELECT payymo_test.admin('UPDATE app.bank_connections SET tenant_id = %s
                                                    WHERE tenant_id = %s')$$,
                        (SELECT tenant FROM bravo), payymo_test.tenant('alpha')),
                 '42501', 'cannot change column "tenant_id" of table "bank_connections"',
                 'a role that bypasses RLS cannot move rows to another tenant either');
SELECT throws_ok(format($$SELECT payymo_test.admin('INSERT INTO app.transactions (tenant_id, bank_connection_id, amount)
                                                    SELECT %s, min(id), 1 FROM app.bank_connections
                                                     WHERE tenant_id = %s')$$,
                        (SELECT tenant FROM bravo), (SELECT tenant FROM bravo)),
                 '42501', 'cannot write another tenant''s row into table "transactions"',
                 'nor write a row for another tenant than the context''s');
SELECT is((SELECT digest FROM before), pg_temp.bravo_digest(),
          'bravo''s rows are unchanged after all attempts');

-- 4. Stamping.
SELECT is(pg_temp.returning($q$INSERT INTO app.bank_connections (bank_id, account_id)
                       VALUES ('stamp', 'omitted') RETURNING tenant_id$q$)::bigint, payymo_test.tenant('alpha'),
          'an omitted tenant column gets the current tenant');
SELECT is(pg_temp.returning($q$INSERT INTO app.bank_connections (tenant_id, bank_id, account_id)
                       VALUES (NULL, 'stamp', 'null') RETURNING tenant_id$q$)::bigint, payymo_test.tenant('alpha'),
          'an explicit NULL tenant column is stamped by the trigger');
SELECT lives_ok($$UPDATE app.bank_connections SET account_name = 'renamed', tenant_id = tenant_id
                   WHERE bank_id = 'stamp'$$,
                'an UPDATE that keeps the tenant column works');

-- 5. References and unique keys: no existence oracle.
SELECT is(split_part(pg_temp.err(format(
              $$INSERT INTO app.transactions (bank_connection_id, amount) VALUES (%s, 1)$$,
              (SELECT conn_id FROM bravo))), ' | ', 2),
          split_part(pg_temp.err(
              $$INSERT INTO app.transactions (bank_connection_id, amount) VALUES (2147483647, 1)$$), ' | ', 2),
          'referencing bravo''s connection fails exactly like referencing none');
SELECT throws_ok(format($$INSERT INTO app.transactions (bank_connection_id, amount) VALUES (%s, 1)$$,
                        (SELECT conn_id FROM bravo)),
                 '23503', NULL, 'a transaction cannot point at bravo''s connection');
SELECT throws_ok(format($$UPDATE app.transactions SET bank_connection_id = %s$$,
                        (SELECT conn_id FROM bravo)),
                 '23503', NULL, 'a transaction cannot be moved to bravo''s connection');
SELECT lives_ok($$INSERT INTO app.bank_connections (bank_id, account_id)
                  VALUES ('bank-secret-1', 'acc-secret-1')$$,
                'bravo''s natural key can be inserted by alpha: the unique key is per tenant');
SELECT throws_ok($$INSERT INTO app.bank_connections (bank_id, account_id)
                   VALUES ('bank-secret-1', 'acc-secret-1')$$,
                 '23505', NULL, 'and is unique within alpha');
SELECT lives_ok($$INSERT INTO app.bank_connections (bank_id, account_id)
                  VALUES ('bank-secret-2', 'acc-secret-2')
                  ON CONFLICT (tenant_id, bank_id, account_id) DO UPDATE SET account_name = 'x'$$,
                'an UPSERT on bravo''s natural key inserts alpha''s own row');
SELECT is(pg_temp.bravo_digest(), (SELECT digest FROM before),
          'bravo''s rows are still unchanged');

-- 6. TRUNCATE ignores RLS: refused even when granted, even for a superuser.
SELECT payymo_test.admin('GRANT TRUNCATE ON app.transactions TO payymo_client');
SELECT throws_ok('TRUNCATE app.transactions', '42501',
                 'cannot truncate table "transactions" because it is under tenancy',
                 'TRUNCATE granted to the client is refused');
SELECT throws_ok($$SELECT payymo_test.admin('TRUNCATE app.transactions')$$, '42501', NULL,
                 'TRUNCATE by a superuser is refused');

-- 7. Leaky functions in WHERE see only alpha's rows.
CREATE TEMP TABLE seen (v text);
CREATE FUNCTION pg_temp.leak(v text) RETURNS boolean
LANGUAGE plpgsql COST 0.0001 AS $$
BEGIN
    INSERT INTO seen VALUES (v);
    RAISE NOTICE 'leak: %', v;
    RETURN true;
END $$;
SET LOCAL client_min_messages = warning;
SELECT is((SELECT count(*) FROM app.bank_connections WHERE pg_temp.leak(account_name || bank_name)
           OR pg_temp.leak(account_name)), 7::bigint, 'the leaky function ran');
SELECT is((SELECT count(*) FROM seen WHERE v LIKE '%BRAVO%'), 0::bigint,
          'a cheap leaky function in WHERE never receives bravo''s values');
SELECT cmp_ok((SELECT count(*) FROM seen), '>', 0::bigint, 'and it was called');

-- 8. Statistics views.
SELECT is((SELECT count(*) FROM pg_stats WHERE schemaname = 'app'), 0::bigint,
          'pg_stats shows no column statistics of tenancy tables');
SELECT throws_ok('SELECT count(*) FROM pg_statistic', '42501', NULL, 'pg_statistic is not readable');

-- 9. Prepared statements follow the context, even with a generic plan.
SET LOCAL plan_cache_mode = force_generic_plan;
PREPARE conns AS SELECT count(*) FROM app.bank_connections WHERE account_name IS NOT NULL OR true;
SELECT results_eq('EXECUTE conns', ARRAY[7::bigint], 'prepared statement as alpha');
SELECT payymo.set_tenant(payymo_test.key('bravo'));
SELECT results_eq('EXECUTE conns', ARRAY[200::bigint], 'the same plan as bravo sees bravo''s rows');
SELECT payymo.clear_tenant();
SELECT throws_ok('EXECUTE conns', '42501', 'no tenant context set',
                 'the same plan without a context fails closed');
DEALLOCATE conns;
SELECT payymo.set_tenant(payymo_test.key('alpha'));

-- 10. Parallel query: workers get the leader's tenant.
SELECT payymo_test.force_parallel('on', true);
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE FUNCTION pg_temp.plan(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE l text; r text := '';
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP r := r || l || E'\n'; END LOOP;
    RETURN r;
END $$;
SELECT matches(pg_temp.plan('SELECT count(*) FROM app.transactions'), 'Gather',
               'the count runs in parallel');
SELECT is((SELECT count(*) FROM app.transactions), 6::bigint,
          'a parallel count sees alpha''s rows only');
SELECT payymo_test.force_parallel('off');

-- 11. The policy is index-friendly and evaluates current_tenant() once.
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.plan('SELECT * FROM app.bank_connections'),
               'Index Cond: \(tenant_id = (\$0|\(InitPlan 1\)\.col1)\)',
               'the tenant condition is an index condition');
SELECT matches(pg_temp.plan('SELECT * FROM app.bank_connections'),
               'InitPlan 1( \(returns \$0\))?\n',
               'current_tenant() is an InitPlan, evaluated once per query');
RESET enable_seqscan;
SELECT payymo_test.admin($$SET track_functions = 'all'$$);
CREATE TEMP TABLE calls AS
SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions
                  WHERE schemaname = 'payymo' AND funcname = 'current_tenant'), 0) AS n;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM app.bank_connections WHERE account_id IS NOT NULL), 7::bigint,
          'a sequential scan over all 200+ rows');
SELECT is((SELECT calls FROM pg_stat_xact_user_functions
            WHERE schemaname = 'payymo' AND funcname = 'current_tenant') - (SELECT n FROM calls),
          1::bigint, 'current_tenant() ran once for the whole scan, not once per row');
RESET enable_indexscan;
RESET enable_bitmapscan;

-- 12. Views and functions of the owner: FORCE applies to the owner too.
SELECT payymo_test.admin($$
    CREATE VIEW app.connection_names AS SELECT id, account_name FROM app.bank_connections;
    ALTER VIEW app.connection_names OWNER TO payymo_owner;
    GRANT SELECT ON app.connection_names TO payymo_client;
    CREATE FUNCTION payymo_test.owner_count() RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'SELECT count(*) FROM app.bank_connections';
    ALTER FUNCTION payymo_test.owner_count() OWNER TO payymo_owner;
    CREATE FUNCTION payymo_test.owner_insert(t bigint) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'INSERT INTO app.bank_connections (tenant_id, bank_id, account_id) VALUES (t, ''o'', ''o'')';
    ALTER FUNCTION payymo_test.owner_insert(bigint) OWNER TO payymo_owner;
    GRANT EXECUTE ON FUNCTION payymo_test.owner_count(), payymo_test.owner_insert(bigint) TO payymo_client$$);
SELECT is((SELECT count(*) FROM app.connection_names WHERE account_name LIKE 'BRAVO%'), 0::bigint,
          'a view owned by the table owner shows no bravo rows');
SELECT is(payymo_test.owner_count(), 7::bigint,
          'the table owner, under FORCE, sees alpha''s rows only');
SELECT throws_ok(format('SELECT payymo_test.owner_insert(%s)', (SELECT tenant FROM bravo)), '42501', NULL,
                 'the table owner cannot write bravo''s rows');

-- 13. COPY FROM by a superuser still goes through the trigger.
SELECT throws_ok(format($$SELECT payymo_test.admin('COPY app.bank_connections (tenant_id, bank_id, account_id) FROM PROGRAM ''echo %s,c,c'' WITH (FORMAT csv)')$$,
                        (SELECT tenant FROM bravo)),
                 '42501', 'cannot write another tenant''s row into table "bank_connections"',
                 'COPY FROM with bravo''s tenant id is refused, for a superuser too');

SELECT * FROM finish();
ROLLBACK;
