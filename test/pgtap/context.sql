-- The tenant context, as a client sees it (connected as payymo_client).
-- Runs outside a transaction block on purpose: scope rules need several
-- transactions.  It writes nothing but last_used_at.
\set QUIET 1
SET client_min_messages = warning;
SELECT plan(75);

-- No context: fail closed.
SELECT is(current_setting('payymo.tenant_id'), '', 'no context at connection start');
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', 'no tenant context set',
                 'current_tenant() without context raises 42501');
SELECT throws_ok('SELECT count(*) FROM payymo.tenants', '42501', NULL,
                 'a tenancy table without context raises instead of returning rows');

-- Every way a client could set the setting.
SELECT throws_ok($$SET payymo.tenant_id = '1'$$, '42501', NULL, 'SET is refused');
SELECT throws_ok($$SET LOCAL payymo.tenant_id = '1'$$, '42501', NULL, 'SET LOCAL is refused');
SELECT throws_ok($$SELECT set_config('payymo.tenant_id', '1', false)$$, '42501', NULL,
                 'set_config(..., false) is refused');
SELECT throws_ok($$SELECT set_config('payymo.tenant_id', '1', true)$$, '42501', NULL,
                 'set_config(..., true) is refused');
SELECT lives_ok($$RESET payymo.tenant_id$$, 'RESET of the setting is allowed: it can only clear');
SELECT throws_ok($$ALTER ROLE CURRENT_USER SET payymo.tenant_id = '1'$$, '42501', NULL,
                 'ALTER ROLE ... SET is refused');
SELECT throws_ok($$SET payymo.tenant_id_2 = '1'$$, '42602', NULL,
                 'no placeholder can be created under the payymo prefix');
SELECT throws_ok($$CREATE FUNCTION pg_temp.f() RETURNS bigint LANGUAGE sql
                   SET payymo.tenant_id = '1' AS 'SELECT payymo.current_tenant()'$$,
                 '42501', NULL, 'a function SET clause is refused');
SELECT throws_ok('SELECT payymo.assume_tenant(1)', '42501', NULL,
                 'assume_tenant is not executable by clients');
SELECT throws_ok($$SELECT payymo.issue_api_key(1)$$, '42501', NULL,
                 'issue_api_key is not executable by clients');
SELECT throws_ok($$SELECT * FROM payymo.api_keys$$, '42501', NULL, 'clients cannot read payymo.api_keys');
SELECT throws_ok($$SELECT * FROM payymo.api_key_store$$, '42501', NULL, 'clients cannot read key hashes');
SELECT is(current_setting('payymo.tenant_id'), '', 'still no context after all attempts');

-- Transaction scope (the default).
BEGIN;
SELECT is(payymo.set_tenant(payymo_test.key('alpha')), payymo_test.tenant('alpha'),
          'set_tenant returns the tenant id');
SELECT is(payymo.current_tenant(), payymo_test.tenant('alpha'), 'current_tenant() is alpha');
SELECT is(current_setting('payymo.tenant_id'), payymo_test.tenant('alpha')::text,
          'the setting shows alpha');
SELECT results_eq('SELECT slug FROM payymo.tenants', $$VALUES ('alpha')$$,
                  'a tenant sees only its own tenants row');
COMMIT;
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL, 'the context ended with COMMIT');

BEGIN;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('alpha')), 'set in a transaction');
ROLLBACK;
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL, 'the context ended with ROLLBACK');

-- Savepoints.
BEGIN;
SAVEPOINT before_set;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('alpha')), 'set after a savepoint');
ROLLBACK TO SAVEPOINT before_set;
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL,
                 'ROLLBACK TO a savepoint taken before set_tenant clears it');
COMMIT;

-- Session scope.
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('bravo')), 'session scope');
SELECT is(payymo.current_tenant(), payymo_test.tenant('bravo'), 'session context survives the transaction');
BEGIN;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('alpha')), 'local override');
SELECT is(payymo.current_tenant(), payymo_test.tenant('alpha'), 'the local context overrides the session one');
COMMIT;
SELECT is(payymo.current_tenant(), payymo_test.tenant('bravo'), 'the session context is back after COMMIT');
RESET ALL;
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL, 'RESET ALL clears it');

-- DISCARD ALL would drop pgTAP's own temporary tables: see test/shell/context.t.

SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('bravo')), 'session scope again');
SELECT lives_ok('SELECT payymo.clear_tenant()', 'clear_tenant()');
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL, 'clear_tenant() clears it');

-- A failed set_tenant clears a previous context, even when the error is caught.
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('bravo')), 'session scope again');
SELECT throws_ok($$SELECT payymo.set_tenant('pyk_wrong')$$, '28000', 'invalid API key',
                 'a bad key raises 28000');
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL,
                 'the failure (caught in a subtransaction) dropped the session context');

-- ... inside a transaction block too, where the statement's end does not
-- clear anything: the rest of the transaction runs without a context.
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('bravo')), 'session scope again');
BEGIN;
SELECT throws_ok($$SELECT payymo.set_tenant('pyk_wrong')$$, '28000', 'invalid API key',
                 'a bad key inside BEGIN raises 28000');
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL,
                 'inside BEGIN, the caught failure dropped the session context for the rest of the transaction');
COMMIT;
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL, 'and it stays dropped after COMMIT');

-- Any failure of set_tenant, not only a bad key: a NULL scope (22004).
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('bravo')), 'session scope again');
SELECT throws_ok(format('SELECT payymo.set_tenant(%L, NULL)', payymo_test.key('alpha')), '22004', NULL,
                 'set_tenant(key, NULL) raises 22004');
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL,
                 'a NULL argument clears the context like a bad key');

-- A context cleared by a failure cannot come back by rolling back a later
-- success: session bravo; fail; set alpha in a savepoint; roll it back; roll
-- the transaction back.
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('bravo')), 'session scope again');
BEGIN;
SELECT throws_ok($$SELECT payymo.set_tenant('pyk_wrong')$$, '28000', NULL, 'a failure in the transaction');
SAVEPOINT later;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('alpha')), 'then a success in a savepoint');
SELECT is(payymo.current_tenant(), payymo_test.tenant('alpha'), 'which sets alpha');
ROLLBACK TO SAVEPOINT later;
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL,
                 'rolling the success back leaves no context, not the one the failure cleared');
ROLLBACK;
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL,
                 'nor does rolling back the whole transaction bring back the session context');

-- A success after a failure stays in force.
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('bravo')), 'session scope again');
BEGIN;
SELECT throws_ok($$SELECT payymo.set_tenant('pyk_wrong')$$, '28000', NULL, 'a failure');
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('alpha')), 'then a session-scope success');
COMMIT;
SELECT is(payymo.current_tenant(), payymo_test.tenant('alpha'), 'the later success stays after COMMIT');
SELECT payymo.clear_tenant();

-- Cursors declared WITH HOLD keep their rows after the transaction, so they
-- must not outlive the context they read under.
BEGIN;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('alpha')), 'transaction scope');
SELECT throws_ok('DECLARE held CURSOR WITH HOLD FOR SELECT slug FROM payymo.tenants', '0A000',
                 'cannot declare a WITH HOLD cursor under a transaction-scoped tenant context',
                 'no WITH HOLD cursor under a transaction-scoped context');
SELECT lives_ok('DECLARE plain CURSOR FOR SELECT slug FROM payymo.tenants', 'a cursor without hold is fine');
COMMIT;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('alpha')), 'session scope');
SELECT lives_ok('DECLARE held CURSOR WITH HOLD FOR SELECT slug FROM payymo.tenants',
                'a WITH HOLD cursor under a session-scoped context');
SELECT throws_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('bravo')), '24000',
                 'cursor "held" was declared WITH HOLD under another tenant context',
                 'switching to another tenant while it is open is refused');
SELECT throws_ok('SELECT payymo.current_tenant()', '42501', NULL, 'and, as any failure, clears the context');
SELECT lives_ok(format('SELECT payymo.set_tenant(%L, false)', payymo_test.key('alpha')),
                'its own tenant can be set again');
SELECT results_eq('FETCH ALL FROM held', $$VALUES ('alpha')$$, 'the cursor holds alpha''s row only');
CLOSE held;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('bravo')),
                'once it is closed, another tenant can be set');
BEGIN;
DECLARE early CURSOR WITH HOLD FOR SELECT slug FROM payymo.tenants;
SELECT throws_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('bravo')), '24000', NULL,
                 'a WITH HOLD cursor declared without a context blocks a context set later in its transaction');
ROLLBACK;
SELECT payymo.clear_tenant();

-- last_used_at: written at most once per payymo.key_use_interval, never in a read-only
-- transaction; with a key this backend has not verified yet (one it has is
-- not read again, and its last use is remembered: src/keycache.c).
SELECT payymo_test.admin(format($$UPDATE payymo.api_key_store SET last_used_at = NULL
                                 WHERE tenant_id = %s$$, payymo_test.tenant('alpha')));
SELECT payymo_test.admin_value(format('SELECT payymo.issue_api_key(%s, ''last used'')',
                                      payymo_test.tenant('alpha'))) AS lu_key \gset
BEGIN READ ONLY;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', :'lu_key'),
                'set_tenant works in a read-only transaction');
COMMIT;
SELECT is(payymo_test.admin_value(format($$SELECT count(last_used_at) FROM payymo.api_keys
                                          WHERE tenant_id = %s$$, payymo_test.tenant('alpha'))),
          '0', 'a read-only transaction does not write last_used_at');
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', :'lu_key'), 'set_tenant again');
SELECT is(payymo_test.admin_value(format($$SELECT count(last_used_at) FROM payymo.api_keys
                                          WHERE tenant_id = %s$$, payymo_test.tenant('alpha'))),
          '1', 'a read-write transaction writes it (the key came from the cache: its last use is still due)');
SELECT payymo_test.admin(format($$UPDATE payymo.api_key_store SET last_used_at = now() - interval '10 seconds'
                                 WHERE tenant_id = %s AND last_used_at IS NOT NULL$$, payymo_test.tenant('alpha')));
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', :'lu_key'), 'and again');
SELECT is(payymo_test.admin_value(format($$SELECT bool_and(last_used_at < now() - interval '5 seconds')
                                          FROM payymo.api_keys WHERE tenant_id = %s$$, payymo_test.tenant('alpha'))),
          'true', 'seconds after the last write, last_used_at is not written again');
SELECT payymo.clear_tenant();

-- Parallel workers see the leader's tenant.
SELECT payymo_test.force_parallel('on');
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
BEGIN;
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('alpha')), 'set for parallel');
SELECT ok((SELECT string_agg(l, ' ') FROM (SELECT * FROM payymo_test.explain(
               'SELECT slug FROM payymo.tenants')) e(l)) ~ 'Gather',
          'the query runs in a parallel worker');
SELECT results_eq('SELECT slug FROM payymo.tenants', $$VALUES ('alpha')$$,
                  'the worker evaluates the policy with the leader''s tenant');
SELECT is((SELECT payymo.current_tenant()), payymo_test.tenant('alpha'),
          'current_tenant() in a parallel plan is the leader''s');
COMMIT;
SELECT payymo_test.force_parallel('off');

SELECT * FROM finish();
