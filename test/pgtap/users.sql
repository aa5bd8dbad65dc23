-- Users, logins, sessions and per-user policies, as a client sees them
-- (connected as payymo_client).  Runs outside a transaction block: sessions
-- end with transactions.  Users and the notes table are made through
-- payymo_test.admin() and dropped at the end.
\set QUIET 1
SET client_min_messages = warning;
SELECT plan(59);

SELECT payymo_test.admin($$
    SELECT payymo.add_tenant_domain(payymo_test.tenant('alpha'), 'app.alpha.example');
    CREATE TABLE payymo_test.users (email text PRIMARY KEY, id bigint NOT NULL);
    GRANT SELECT ON payymo_test.users TO payymo_client;
    INSERT INTO payymo_test.users
    VALUES ('boss@alpha.example',
            payymo.create_user(payymo_test.tenant('alpha'), 'Boss@Alpha.example', 'boss password', 'admin')),
           ('m1@alpha.example',
            payymo.create_user(payymo_test.tenant('alpha'), 'm1@alpha.example', 'member one pw')),
           ('m2@alpha.example',
            payymo.create_user(payymo_test.tenant('alpha'), 'm2@alpha.example', 'member two pw')),
           ('off@alpha.example',
            payymo.create_user(payymo_test.tenant('alpha'), 'off@alpha.example', 'disabled pw')),
           ('idp@alpha.example',
            payymo.create_user(payymo_test.tenant('alpha'), 'idp@alpha.example', NULL, subject => 'idp|1')),
           ('b@bravo.example',
            payymo.create_user(payymo_test.tenant('bravo'), 'b@bravo.example', 'bravo user pw'));
    SELECT payymo.set_user_status(id, 'disabled') FROM payymo_test.users WHERE email = 'off@alpha.example';
$$);
CREATE FUNCTION pg_temp.uid(email text) RETURNS bigint LANGUAGE sql
AS $$ SELECT id FROM payymo_test.users u WHERE u.email = uid.email $$;

-- What clients may not do.
SELECT throws_ok($$SELECT payymo.create_user(1, 'x@y.example', 'password1')$$, '42501', NULL,
                 'create_user is not executable by clients');
SELECT throws_ok($$SELECT payymo._hash_password('password1')$$, '42501', NULL,
                 '_hash_password is not executable by clients');
SELECT throws_ok($$SELECT * FROM payymo._login_lookup('alpha', 'boss@alpha.example')$$, '42501', NULL,
                 'clients cannot look up password hashes');
SELECT throws_ok($$SELECT * FROM payymo.session_store$$, '42501', NULL, 'clients cannot read sessions');
SELECT throws_ok($$SELECT payymo.revoke_sessions(1)$$, '42501', NULL, 'revoke_sessions is for administrators');
SELECT throws_ok($$SELECT payymo.set_user_status(1, 'active')$$, '42501', NULL,
                 'set_user_status is for administrators');
SELECT throws_ok($$SELECT payymo.current_user_id()$$, '42501', 'no user context set',
                 'current_user_id() without a context');
SELECT throws_ok($$SELECT payymo.current_user_role()$$, '42501', 'no user context set',
                 'current_user_role() without a context');

-- Every failed login looks the same.
SELECT is(payymo_test.err($$SELECT payymo.login('alpha', 'boss@alpha.example', 'wrong password')$$),
          '28000 invalid login', 'a wrong password');
SELECT is(payymo_test.err($$SELECT payymo.login('alpha', 'nobody@alpha.example', 'boss password')$$),
          '28000 invalid login', 'an unknown email');
SELECT is(payymo_test.err($$SELECT payymo.login('nosuch', 'boss@alpha.example', 'boss password')$$),
          '28000 invalid login', 'an unknown tenant');
SELECT is(payymo_test.err($$SELECT payymo.login('bravo', 'boss@alpha.example', 'boss password')$$),
          '28000 invalid login', 'a user of another tenant');
SELECT is(payymo_test.err($$SELECT payymo.login('alpha', 'off@alpha.example', 'disabled pw')$$),
          '28000 invalid login', 'a disabled user with the right password');
SELECT is(payymo_test.err($$SELECT payymo.login('alpha', 'idp@alpha.example', '')$$),
          '28000 invalid login', 'a user without a password, with an empty one');
SELECT is(payymo_test.err($$SELECT payymo.login('alpha', 'boss@alpha.example', NULL)$$),
          '28000 invalid login', 'a NULL password');
SELECT is(payymo_test.err($$SELECT payymo.login(NULL, NULL, 'boss password')$$),
          '28000 invalid login', 'NULL tenant and email');
SELECT is(payymo_test.err(format('SELECT payymo.login(%L, %L, %L)', 'alpha', 'boss@alpha.example',
                                 repeat('x', 1025))),
          '28000 invalid login', 'an oversized password is refused without hashing it');

-- Logins that work: email in any case, tenant by slug or domain.
SELECT ok(payymo.login('alpha', 'BOSS@alpha.EXAMPLE', 'boss password') ~ '^pys_[a-z2-7]{16}_[a-z2-7]{60}$',
          'login returns a session token; the email is case-insensitive');
SELECT ok(payymo.login('App.Alpha.Example.', 'm1@alpha.example', 'member one pw') IS NOT NULL,
          'the tenant can be named by its custom domain');

CREATE TEMP TABLE tok (who text PRIMARY KEY, token text);
INSERT INTO tok VALUES
    ('boss', payymo.login('alpha', 'boss@alpha.example', 'boss password')),
    ('m1', payymo.login('alpha', 'm1@alpha.example', 'member one pw')),
    ('m2', payymo.login('alpha', 'm2@alpha.example', 'member two pw')),
    ('b', payymo.login('bravo', 'b@bravo.example', 'bravo user pw'));
CREATE FUNCTION pg_temp.tok(who text) RETURNS text LANGUAGE sql
AS $$ SELECT token FROM tok t WHERE t.who = tok.who $$;

-- set_session: tenant and user for the transaction.
BEGIN;
SELECT is(payymo.set_session(pg_temp.tok('m1')), payymo_test.tenant('alpha'),
          'set_session returns the tenant');
SELECT is(payymo.current_user_id(), pg_temp.uid('m1@alpha.example'), 'current_user_id() is the user');
SELECT is(payymo.current_user_role(), 'member', 'current_user_role() is member');
SELECT is(payymo.current_tenant(), payymo_test.tenant('alpha'), 'current_tenant() is the user''s tenant');
SELECT results_eq($$SELECT count(*) FROM payymo.users$$, $$VALUES (5::bigint)$$,
                  'a user sees the users of its own tenant only');
SELECT throws_ok($$SELECT password_hash FROM payymo.users$$, '42501', NULL,
                 'password hashes are not readable');
COMMIT;
SELECT throws_ok($$SELECT payymo.current_user_id()$$, '42501', NULL, 'the user context ended with COMMIT');

BEGIN;
SELECT payymo.set_session(pg_temp.tok('boss'));
SELECT is(payymo.current_user_role(), 'admin', 'an admin''s role');
COMMIT;

BEGIN;
SELECT payymo.set_tenant(payymo_test.key('alpha'));
SELECT throws_ok($$SELECT payymo.current_user_id()$$, '42501', NULL,
                 'an API key sets no user');
COMMIT;

-- Tokens that are refused, each clearing an earlier context.
CREATE FUNCTION pg_temp.refused(token text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM payymo.set_tenant(payymo_test.key('alpha'), false);
    RETURN payymo_test.err(format('SELECT payymo.set_session(%L)', token)) || ' / ' ||
           payymo_test.err('SELECT payymo.current_tenant()');
END $$;
SELECT is(pg_temp.refused('garbage'), '28000 invalid session token / 42501 no tenant context set',
          'garbage is refused and clears the context');
SELECT is(pg_temp.refused(NULL), '28000 invalid session token / 42501 no tenant context set',
          'NULL is refused and clears the context');
SELECT is(pg_temp.refused(payymo_test.key('alpha')), '28000 invalid session token / 42501 no tenant context set',
          'an API key is not a session token');
SELECT is(pg_temp.refused(overlay(pg_temp.tok('m1') PLACING
                                  CASE WHEN substr(pg_temp.tok('m1'), 30, 1) = 'a' THEN 'b' ELSE 'a' END
                                  FROM 30 FOR 1)),
          '28000 invalid session token / 42501 no tenant context set', 'a token with one character changed');
SELECT is(pg_temp.refused(overlay(pg_temp.tok('m1') PLACING 'aaaaaaaaaaaaaaaa' FROM 5 FOR 16)),
          '28000 invalid session token / 42501 no tenant context set', 'a token with another session id');
SELECT is(payymo_test.err($$SELECT payymo.set_session(payymo_test.key('alpha'), NULL)$$),
          '22004 is_local must not be null', 'is_local must not be null');

-- Logout, disable, revoke, expiry, suspension.
SELECT ok(payymo.logout(pg_temp.tok('m2')), 'logout revokes the session');
SELECT ok(NOT payymo.logout(pg_temp.tok('m2')), 'a second logout finds nothing');
SELECT ok(NOT payymo.logout('garbage'), 'logout of garbage finds nothing');
SELECT is(payymo_test.err($$SELECT payymo.set_session(pg_temp.tok('m2'))$$), '28000 invalid session token',
          'a logged-out token is refused');

SELECT payymo_test.admin(format($$UPDATE payymo.session_store SET expires_at = now() - interval '1 second'
                                   WHERE session_id = %L$$, substr(pg_temp.tok('b'), 5, 16)));
SELECT is(payymo_test.err($$SELECT payymo.set_session(pg_temp.tok('b'))$$), '28000 invalid session token',
          'an expired session is refused');
UPDATE tok SET token = payymo.login('bravo', 'b@bravo.example', 'bravo user pw') WHERE who = 'b';
SELECT payymo_test.admin(format($$UPDATE payymo.session_store
                                     SET last_seen_at = now() - make_interval(secs => idle_timeout_secs + 1)
                                   WHERE session_id = %L$$, substr(pg_temp.tok('b'), 5, 16)));
SELECT is(payymo_test.err($$SELECT payymo.set_session(pg_temp.tok('b'))$$), '28000 invalid session token',
          'a session idle too long is refused');
UPDATE tok SET token = payymo.login('bravo', 'b@bravo.example', 'bravo user pw') WHERE who = 'b';

SELECT payymo_test.admin(format('SELECT payymo.suspend_tenant(%s)', payymo_test.tenant('bravo')));
SELECT is(payymo_test.err($$SELECT payymo.set_session(pg_temp.tok('b'))$$), '28000 invalid session token',
          'a session of a suspended tenant is refused');
SELECT is(payymo_test.err($$SELECT payymo.login('bravo', 'b@bravo.example', 'bravo user pw')$$),
          '28000 invalid login', 'users of a suspended tenant cannot log in');
SELECT payymo_test.admin(format('SELECT payymo.resume_tenant(%s)', payymo_test.tenant('bravo')));
SELECT lives_ok($$SELECT payymo.set_session(pg_temp.tok('b'))$$, 'it works again once resumed');

SELECT payymo_test.admin(format($$SELECT payymo.set_user_status(%s, 'disabled')$$, pg_temp.uid('m1@alpha.example')));
SELECT is(payymo_test.err($$SELECT payymo.set_session(pg_temp.tok('m1'))$$), '28000 invalid session token',
          'disabling a user ends its sessions');
SELECT payymo_test.admin(format($$SELECT payymo.set_user_status(%s, 'active')$$, pg_temp.uid('m1@alpha.example')));
SELECT is(payymo_test.err($$SELECT payymo.set_session(pg_temp.tok('m1'))$$), '28000 invalid session token',
          'enabling it again does not bring old sessions back');
UPDATE tok SET token = payymo.login('alpha', 'm1@alpha.example', 'member one pw') WHERE who = 'm1';
SELECT is(payymo_test.admin_value(format('SELECT payymo.revoke_sessions(%s)', pg_temp.uid('m1@alpha.example'))),
          '1', 'revoke_sessions revokes the sessions in force');
UPDATE tok SET token = payymo.login('alpha', 'm1@alpha.example', 'member one pw') WHERE who = 'm1';

-- Passwords hashed with other parameters are rehashed at the next login.
SELECT payymo_test.admin(format($$SELECT set_config('payymo.password_opslimit', '2', true);
                                  UPDATE payymo.users SET password_hash = payymo._hash_password('member two pw')
                                   WHERE id = %s$$, pg_temp.uid('m2@alpha.example')));
SELECT is(payymo_test.admin_value(format($$SELECT password_hash ~ ',t=2,' FROM payymo.users WHERE id = %s$$,
                                         pg_temp.uid('m2@alpha.example'))), 'true', 'a hash with t=2');
UPDATE tok SET token = payymo.login('alpha', 'm2@alpha.example', 'member two pw') WHERE who = 'm2';
SELECT is(payymo_test.admin_value(format($$SELECT password_hash ~ ',t=1,' FROM payymo.users WHERE id = %s$$,
                                         pg_temp.uid('m2@alpha.example'))), 'true',
          'is rehashed with the current parameters (t=1) at login');

-- Throttling: five failures for an account from one client, then even the
-- right password is refused from there -- but not from another client.
SELECT is(payymo_test.err($$SELECT payymo.login('alpha', 'm2@alpha.example', 'wrong pw ' || g, client => '192.0.2.1')
                           FROM generate_series(1, 1) g$$), '28000 invalid login', 'failure 1');
SELECT count(payymo_test.err($$SELECT payymo.login('alpha', 'm2@alpha.example', 'wrong pw', client => '192.0.2.1')$$))
  FROM generate_series(2, 5) \g /dev/null
SELECT is(payymo_test.err($$SELECT payymo.login('alpha', 'm2@alpha.example', 'member two pw', client => '192.0.2.1')$$),
          '53400 too many failed logins', 'the sixth attempt from that client is throttled, right password or not');
SELECT ok(payymo.login('alpha', 'm2@alpha.example', 'member two pw', client => '198.51.100.7') IS NOT NULL,
          'the user logs in from another client');
SELECT is(payymo_test.err($$SELECT payymo.login('alpha', 'M2@alpha.example', 'member two pw', client => '192.0.2.1')$$),
          '53400 too many failed logins', 'the email''s case does not reset the throttle');

-- Per-user rows: members see and write their own, admins and API keys all.
SELECT payymo_test.admin($$
    CREATE TABLE app.notes (id bigserial PRIMARY KEY, tenant_id bigint NOT NULL,
                            user_id bigint NOT NULL, body text);
    ALTER TABLE app.notes OWNER TO payymo_owner;
    SELECT payymo.enable_tenancy('app.notes');
    SELECT payymo.enable_owner_policy('app.notes');
    GRANT SELECT, INSERT, UPDATE, DELETE ON app.notes TO payymo_client;
    GRANT USAGE ON SEQUENCE app.notes_id_seq TO payymo_client;
$$);
BEGIN;
SELECT payymo.set_session(pg_temp.tok('m1'));
INSERT INTO app.notes (user_id, body) VALUES (payymo.current_user_id(), 'm1 note');
SELECT throws_ok($$INSERT INTO app.notes (user_id, body) VALUES (1, 'for someone else')$$, '42501', NULL,
                 'a member cannot write a row owned by someone else');
COMMIT;
BEGIN;
SELECT payymo.set_session(pg_temp.tok('m2'));
INSERT INTO app.notes (user_id, body) VALUES (payymo.current_user_id(), 'm2 note');
SELECT results_eq($$SELECT body FROM app.notes$$, $$VALUES ('m2 note')$$, 'a member sees only its own rows');
UPDATE app.notes SET body = 'changed';
SELECT results_eq($$SELECT body FROM app.notes$$, $$VALUES ('changed')$$,
                  'and updates only its own rows (the admin below sees m1''s unchanged)');
COMMIT;
BEGIN;
SELECT payymo.set_session(pg_temp.tok('boss'));
SELECT results_eq($$SELECT body FROM app.notes ORDER BY body$$, $$VALUES ('changed'), ('m1 note')$$,
                  'an admin sees the tenant''s rows');
COMMIT;
BEGIN;
SELECT payymo.set_tenant(payymo_test.key('alpha'));
SELECT is((SELECT count(*) FROM app.notes), 2::bigint, 'a tenant-wide API key sees the tenant''s rows');
COMMIT;
BEGIN;
SELECT payymo.set_session(pg_temp.tok('b'));
SELECT is((SELECT count(*) FROM app.notes), 0::bigint, 'another tenant''s user sees none');
COMMIT;
SELECT is(payymo_test.admin_value($$SELECT count(*) FROM payymo.audit() WHERE object LIKE 'app.notes%'$$), '0',
          'audit() is clean with the owner policy');

SELECT payymo_test.admin($$
    DROP TABLE app.notes;
    DELETE FROM payymo.users WHERE id IN (SELECT id FROM payymo_test.users);
    DROP TABLE payymo_test.users;
    SELECT payymo.remove_tenant_domain('app.alpha.example');
$$);
SELECT * FROM finish();
