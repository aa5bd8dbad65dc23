-- Per-tenant statistics and rate limits (payymo.tenant_stats), as a client
-- sees them, on the preloaded cluster of test/run.sh.  Connected as
-- payymo_client; payymo_test.admin*() run the administrator's steps.
--
-- Statements are counted for the tenant whose context is in force when the
-- statement ends, top level only.  Each check below reads the view while no
-- context is set, so the checks themselves count for nobody.  Shared memory
-- is not transactional: what is counted here survives the final ROLLBACK.
\set QUIET 1
SET client_min_messages = warning;
BEGIN;
SELECT plan(37);

-- --- who may read and reset
SELECT throws_ok('SELECT * FROM payymo.tenant_stats', '42501', NULL,
                 'a client cannot read the view');
SELECT throws_ok('SELECT * FROM payymo.tenant_stats()', '42501', NULL,
                 'a client cannot call the function behind it');
SELECT throws_ok('SELECT payymo.tenant_stats_reset()', '42501', NULL,
                 'a client cannot reset the statistics');
SELECT ok(has_table_privilege('pg_monitor', 'payymo.tenant_stats', 'SELECT')
          AND has_function_privilege('pg_monitor', 'payymo.tenant_stats()', 'EXECUTE'),
          'pg_monitor may read the statistics');
SELECT ok(NOT has_table_privilege('public', 'payymo.tenant_stats', 'SELECT')
          AND NOT has_function_privilege('public', 'payymo.tenant_stats_reset(bigint)', 'EXECUTE'),
          'PUBLIC may neither read nor reset them');

-- A helper to read one counter as the administrator.
\set stat 'payymo_test.admin_value(format(''SELECT %s FROM payymo.tenant_stats WHERE tenant_id = %s'', '
SELECT payymo_test.admin('SELECT payymo.tenant_stats_reset()');
SELECT is(payymo_test.admin_value(
              'SELECT count(*) FROM payymo.tenant_stats
                WHERE statements + rows + denied + rate_limited > 0 OR total_exec_time > 0'),
          '0', 'tenant_stats_reset() zeroes every counter');

-- --- known work for alpha: 3 top-level statements, 1 + 7 + 1 rows
SELECT ok(payymo.set_tenant(payymo_test.key('alpha')) = payymo_test.tenant('alpha'),
          'alpha sets its context (counts: the context is set when it ends)');
\o /dev/null
SELECT g FROM pg_catalog.generate_series(1, 7) g;
-- Utility statements and what they run are not counted.
DO $$ BEGIN PERFORM pg_catalog.count(*) FROM pg_catalog.generate_series(1, 100); END $$;
\o
-- Queries inside a function (here three under admin_value) count once.
SELECT is(payymo_test.admin_value('SELECT (SELECT 1) + (SELECT 1)'), '2',
          'a nested query under alpha');
\o /dev/null
SELECT payymo.clear_tenant();
-- No context: counted for nobody.
SELECT g FROM pg_catalog.generate_series(1, 50) g;
\o

-- --- known work for bravo: 3 top-level statements, 1 + 3 + 3 rows
SELECT ok(payymo.set_tenant(payymo_test.key('bravo')) = payymo_test.tenant('bravo'),
          'bravo sets its context');
\o /dev/null
SELECT g FROM pg_catalog.generate_series(1, 3) g;
PREPARE stats_p AS SELECT g FROM pg_catalog.generate_series(1, 3) g;
EXECUTE stats_p;
DEALLOCATE stats_p;
SELECT payymo.clear_tenant();
\o

SELECT is(:stat 'statements', payymo_test.tenant('alpha'))), '3',
          'alpha: three top-level statements (set_tenant, the select, the function call)');
SELECT is(:stat 'rows', payymo_test.tenant('alpha'))), '9',
          'alpha: rows processed 1 + 7 + 1');
SELECT is(:stat 'statements', payymo_test.tenant('bravo'))), '3',
          'bravo: three top-level statements, its prepared statement included');
SELECT is(:stat 'rows', payymo_test.tenant('bravo'))), '7',
          'bravo: rows processed 1 + 3 + 3');
SELECT ok(payymo_test.admin_value(format(
              'SELECT total_exec_time > 0 AND last_activity <= clock_timestamp()
                      AND last_activity > clock_timestamp() - interval ''1 minute''
                 FROM payymo.tenant_stats WHERE tenant_id = %s', payymo_test.tenant('alpha')))::boolean,
          'alpha: execution time and last activity are recorded');
SELECT is(payymo_test.admin_value(format(
              'SELECT slug FROM payymo.tenant_stats WHERE tenant_id = %s', payymo_test.tenant('bravo'))),
          'bravo', 'the view names the tenant');
SELECT is(:stat 'denied + rate_limited', payymo_test.tenant('alpha'))), '0',
          'alpha: nothing denied or rate-limited yet');

-- --- resources, as pg_stat_statements counts them: alpha writes 500 rows
-- and sorts on disk, bravo only reads
SELECT payymo_test.admin('SELECT payymo.tenant_stats_reset()');
\o /dev/null
SELECT payymo.set_tenant(payymo_test.key('alpha'));
INSERT INTO app.transactions (bank_connection_id, amount)
SELECT (SELECT min(id) FROM app.bank_connections), g FROM pg_catalog.generate_series(1, 500) g;
SET LOCAL work_mem = '64kB';
SELECT g FROM pg_catalog.generate_series(1, 20000) g ORDER BY g DESC OFFSET 19999;
RESET work_mem;
SELECT payymo.set_tenant(payymo_test.key('bravo'));
SELECT count(*) FROM app.bank_connections;
SELECT payymo.clear_tenant();
\o
SELECT ok((:stat 'wal_records >= 500 AND wal_bytes > 0', payymo_test.tenant('alpha'))))::boolean,
          'alpha: the WAL of its 500 rows');
SELECT ok((:stat 'shared_blks_dirtied > 0 AND shared_blks_hit + shared_blks_read > 0', payymo_test.tenant('alpha'))))::boolean,
          'alpha: the shared blocks it read and dirtied');
SELECT ok((:stat 'temp_blks_written > 0 AND temp_blks_read > 0', payymo_test.tenant('alpha'))))::boolean,
          'alpha: the temporary blocks of its sort');
SELECT ok((:stat 'shared_blks_hit + shared_blks_read > 0', payymo_test.tenant('bravo'))))::boolean,
          'bravo: the blocks of its read');
SELECT ok((:stat 'wal_records < 50 AND temp_blks_written = 0', payymo_test.tenant('bravo'))))::boolean,
          'bravo: none of alpha''s WAL or temporary blocks');

-- --- denied: a refused key whose key id belongs to alpha counts for alpha
SELECT payymo_test.admin(format(
    'CREATE TEMP TABLE stats_revoked AS SELECT payymo.issue_api_key(%s, ''revoked'') AS k',
    payymo_test.tenant('alpha')));
SELECT payymo_test.admin('SELECT payymo.revoke_api_key(split_part(k, ''_'', 2)) FROM stats_revoked');
SELECT throws_ok(format('SELECT payymo.set_tenant(%L)',
                        payymo_test.admin_value('SELECT k FROM stats_revoked')),
                 '28000', 'invalid API key', 'a revoked key of alpha is refused');
SELECT throws_ok($$SELECT payymo.set_tenant('pyk_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb')$$,
                 '28000', 'invalid API key', 'a key with a bad checksum is refused');
SELECT is(:stat 'denied', payymo_test.tenant('alpha'))), '1',
          'alpha: one denied attempt (the bad checksum names no tenant)');
SELECT is(:stat 'denied', payymo_test.tenant('bravo'))), '0',
          'bravo: no denied attempt');

-- --- rate limit: bravo gets 2 per second
SELECT payymo_test.admin(format(
    'UPDATE payymo.tenants SET rate_limit_per_second = 2 WHERE id = %s', payymo_test.tenant('bravo')));
-- Ten calls in a tight loop (well under a millisecond each): the full
-- bucket admits two, the refill in that time is far below one token.
SELECT throws_ok($$
    DO $do$
    DECLARE
        admitted int := 0;
        limited int := 0;
        hint text;
    BEGIN
        FOR i IN 1..10 LOOP
            BEGIN
                PERFORM payymo.set_tenant(payymo_test.key('bravo'));
                admitted := admitted + 1;
            EXCEPTION WHEN configuration_limit_exceeded THEN
                limited := limited + 1;
                GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
            END;
        END LOOP;
        RAISE EXCEPTION 'admitted % limited % hint %', admitted, limited,
            hint LIKE '%at most 2 times per second%';
    END
    $do$ $$, 'P0001', 'admitted 2 limited 8 hint t',
    'a burst of ten set_tenant calls: two admitted, eight refused with 53400 and a hint naming the limit');
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL,
                 'a rate-limited set_tenant leaves no context');
SELECT is(:stat 'rate_limited', payymo_test.tenant('bravo'))), '8',
          'bravo: eight rate-limited attempts');
SELECT is(:stat 'rate_limited', payymo_test.tenant('alpha'))), '0',
          'alpha: none (limits are per tenant)');
SELECT throws_ok($$SELECT payymo.set_tenant(payymo_test.key('bravo'))$$, '53400', NULL,
                 'the next call is still refused');
SELECT lives_ok($$SELECT payymo.set_tenant(payymo_test.key('alpha'))$$,
                'alpha, without a limit, is not affected');
\o /dev/null
SELECT payymo.clear_tenant();
\o
SELECT lives_ok($$SELECT pg_catalog.pg_sleep(0.6); SELECT payymo.set_tenant(payymo_test.key('bravo'))$$,
                'the bucket refills: after 0.6 s one call is admitted again');
\o /dev/null
SELECT payymo.clear_tenant();
\o

-- assume_tenant is limited only when payymo.rate_limit_assume is on.
SELECT lives_ok(format('SELECT payymo_test.admin(''SELECT payymo.assume_tenant(%s)'') FROM generate_series(1, 5)',
                       payymo_test.tenant('bravo')),
                'assume_tenant ignores the limit by default');
SELECT payymo_test.admin('SET payymo.rate_limit_assume = on');
SELECT throws_ok(format('SELECT payymo_test.admin(''SELECT payymo.assume_tenant(%s)'') FROM generate_series(1, 5)',
                        payymo_test.tenant('bravo')),
                 '53400', NULL, 'with payymo.rate_limit_assume on, assume_tenant is limited too');
SELECT payymo_test.admin('RESET payymo.rate_limit_assume');

-- --- reset of one tenant
SELECT payymo_test.admin(format('SELECT payymo.tenant_stats_reset(%s)', payymo_test.tenant('alpha')));
SELECT is(:stat 'statements + rows + denied', payymo_test.tenant('alpha'))), '0',
          'tenant_stats_reset(alpha) zeroes alpha');
SELECT is(:stat 'rate_limited', payymo_test.tenant('bravo'))), '10',
          'and leaves bravo alone (8 + 1 + the refused assume_tenant)');
SELECT throws_ok($$SET payymo.track_stats = off$$, '42501', NULL,
                 'a client cannot turn counting off');

SELECT * FROM finish();
ROLLBACK;
