-- Provisioning, settings, feature flags and white-label domains, as the
-- client payymo_client (administration through payymo_test.admin*).
\set QUIET 1
SET client_min_messages = warning;
BEGIN;
SELECT plan(68);

-- create_tenant: defaults copied, first key works.
SELECT payymo_test.admin($$INSERT INTO payymo.default_settings VALUES ('locale', 'en-GB')$$);
SELECT payymo_test.admin($$INSERT INTO payymo.default_features VALUES ('beta', true), ('off', false)$$);
SELECT payymo_test.admin($$CREATE TABLE payymo_test.created AS
                           SELECT * FROM payymo.create_tenant('charlie-co', 'Charlie Co')$$);
SELECT payymo_test.admin('GRANT SELECT ON payymo_test.created TO payymo_client');
SELECT is(payymo.set_tenant((SELECT api_key FROM payymo_test.created)),
          (SELECT tenant_id FROM payymo_test.created), 'the first key of a new tenant works');
SELECT is(payymo.setting('locale'), 'en-GB', 'default settings are copied');
SELECT ok(payymo.feature_enabled('beta'), 'default feature flags are copied (on)');
SELECT ok(NOT payymo.feature_enabled('off'), 'default feature flags are copied (off)');
SELECT ok(NOT payymo.feature_enabled('never-defined'), 'an absent flag is off');
SELECT is(payymo.setting('never-defined'), NULL, 'an absent setting is NULL');
SELECT is(payymo.setting('never-defined', 'fallback'), 'fallback', 'or the given default');

-- Bad input to create_tenant.
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.create_tenant(''ab'', ''x'')')$$,
                 '22023', 'invalid tenant slug "ab"', 'a 2-character slug is refused');
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.create_tenant(''Acme'', ''x'')')$$,
                 '22023', NULL, 'an uppercase slug is refused');
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.create_tenant(''-acme'', ''x'')')$$,
                 '22023', NULL, 'a slug starting with "-" is refused');
SELECT throws_ok(format('SELECT payymo_test.admin(%L)',
                        format('SELECT payymo.create_tenant(%L, %L)', repeat('a', 64), 'x')),
                 '22023', NULL, 'a 64-character slug is refused');
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.create_tenant(''alpha'', ''x'')')$$,
                 '23505', 'tenant slug "alpha" is already taken', 'a duplicate slug is refused');
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.create_tenant(NULL, ''x'')')$$,
                 '22004', NULL, 'a NULL slug is refused');
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.create_tenant(''blank-name'', ''  '')')$$,
                 '22023', 'invalid tenant name', 'a blank name is refused');
SELECT throws_ok(format('SELECT payymo_test.admin(%L)',
                        format('SELECT payymo.create_tenant(%L, %L)', 'long-name', repeat('n', 201))),
                 '22023', NULL, 'an overlong name is refused');
SELECT throws_ok($$SELECT payymo.create_tenant('by-client', 'x')$$, '42501', NULL,
                 'clients cannot create tenants');

-- Suspend and resume.
SELECT payymo_test.admin(format('SELECT payymo.suspend_tenant(%s)', payymo_test.tenant('bravo')));
SELECT throws_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('bravo')), '28000',
                 'invalid API key', 'a suspended tenant''s key fails like any bad key');
SELECT payymo_test.admin(format('SELECT payymo.resume_tenant(%s)', payymo_test.tenant('bravo')));
SELECT is(payymo.set_tenant(payymo_test.key('bravo')), payymo_test.tenant('bravo'),
          'after resume_tenant the key works again');
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.suspend_tenant(999999)')$$,
                 '42704', NULL, 'suspending an unknown tenant is refused');
SELECT throws_ok(format('SELECT payymo.suspend_tenant(%s)', payymo_test.tenant('bravo')), '42501', NULL,
                 'clients cannot suspend tenants');

-- Settings and flags: writes need the DBA's grant; invisible across tenants.
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('alpha')), 'as alpha');
SELECT throws_ok($$SELECT payymo.set_setting('theme', 'dark')$$, '42501', NULL,
                 'without a grant a tenant cannot change its settings');
SELECT payymo_test.admin('GRANT INSERT, UPDATE, DELETE ON payymo.tenant_settings, payymo.tenant_features TO payymo_client');
SELECT lives_ok($$SELECT payymo.set_setting('theme', 'dark')$$, 'with the grant it can');
SELECT lives_ok($$SELECT payymo.set_setting('theme', 'light')$$, 'and overwrite it');
SELECT is(payymo.setting('theme'), 'light', 'the new value is read back');
SELECT lives_ok($$SELECT payymo.set_feature('new-ui', true)$$, 'set a flag');
SELECT ok(payymo.feature_enabled('new-ui'), 'the flag is on');
SELECT throws_ok($$SELECT payymo.set_setting('Bad Key', 'x')$$, '22023', NULL, 'invalid keys are refused');
SELECT throws_ok($$SELECT payymo.setting(NULL)$$, '22004', NULL, 'a NULL key is refused');
SELECT throws_ok(format('SELECT payymo.set_setting(%L, %L)', repeat('k', 101), 'x'), '22023', NULL,
                 'an overlong key is refused');
SELECT throws_ok(format('SELECT payymo.set_setting(%L, %L)', 'big', repeat('v', 10001)), '22001', NULL,
                 'an overlong value is refused');
SELECT throws_ok($$SELECT payymo.set_feature('x', NULL)$$, '22004', NULL, 'a NULL flag value is refused');
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('bravo')), 'as bravo');
SELECT is(payymo.setting('theme'), NULL, 'another tenant does not see the setting');
SELECT ok(NOT payymo.feature_enabled('new-ui'), 'nor the flag');
SELECT is((SELECT count(*) FROM payymo.tenant_settings WHERE setting_key = 'theme'), 0::bigint,
          'nor the row');
SELECT throws_ok(format($$INSERT INTO payymo.tenant_settings (tenant_id, setting_key, setting_value)
                          VALUES (%s, 'theme', 'pwned')$$, payymo_test.tenant('alpha')),
                 '42501', NULL, 'nor can it write into the other tenant''s settings');
SELECT lives_ok(format('SELECT payymo.set_tenant(%L)', payymo_test.key('alpha')), 'as alpha again');
SELECT lives_ok($$SELECT payymo.set_setting('theme', NULL)$$, 'a NULL value removes the setting');
SELECT is(payymo.setting('theme', 'default'), 'default', 'it is gone');
SELECT lives_ok('SELECT payymo.clear_tenant()', 'no context');
SELECT throws_ok($$SELECT payymo.setting('theme')$$, '42501', NULL, 'settings need a context');

-- White-label domains.
SELECT is(payymo_test.admin_value(format($$SELECT payymo.add_tenant_domain(%s, 'Pay.Alpha.Example.:8443')$$,
                                         payymo_test.tenant('alpha'))),
          'pay.alpha.example', 'domains are stored lowercase, without trailing dot and port');
SELECT throws_ok(format($$SELECT payymo_test.admin('SELECT payymo.add_tenant_domain(%s, ''PAY.alpha.example'')')$$,
                        payymo_test.tenant('bravo')), '23505', NULL,
                 'a domain is unique, case-insensitively');
SELECT throws_ok(format($$SELECT payymo_test.admin('SELECT payymo.add_tenant_domain(%s, ''not a domain'')')$$,
                        payymo_test.tenant('bravo')), '22023', 'invalid domain name', 'an invalid domain is refused');
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.add_tenant_domain(999999, ''x.example'')')$$,
                 '42704', NULL, 'a domain for an unknown tenant is refused');
SELECT throws_ok(format($$SELECT payymo.add_tenant_domain(%s, 'mine.example')$$, payymo_test.tenant('alpha')),
                 '42501', NULL, 'clients cannot add domains');
SELECT payymo_test.admin(format($$INSERT INTO payymo.tenant_settings (tenant_id, setting_key, setting_value)
                                  VALUES (%s, 'brand.color', 'teal')$$, payymo_test.tenant('alpha')));
SELECT results_eq($$SELECT tenant_id, slug, branding FROM payymo.tenant_for_domain('PAY.ALPHA.EXAMPLE')$$,
                  format($$VALUES (%s::bigint, 'alpha'::text, '{"color": "teal"}'::jsonb)$$,
                         payymo_test.tenant('alpha')),
                  'tenant_for_domain resolves any spelling of the host to id, slug and branding');
SELECT is_empty($$SELECT * FROM payymo.tenant_for_domain('unknown.example')$$, 'an unknown host resolves to nothing');
SELECT is(current_setting('payymo.tenant_id'), '', 'the lookup sets no context');
SELECT throws_ok($$SELECT count(*) FROM payymo.tenant_settings$$, '42501', NULL,
                 'and gives no access to the tenant''s rows');

-- drop_tenant: children first, nothing of other tenants touched.
SELECT payymo_test.admin($$CREATE TABLE payymo_test.counts AS
    SELECT t.relid::text AS rel, k.slug,
           payymo_test.count_rows(t.relid, t.tenant_column, k.tenant_id) AS n
      FROM payymo.tenant_tables t, payymo_test.keys k WHERE t.root IS NULL$$);
SELECT payymo_test.admin('GRANT SELECT ON payymo_test.counts TO payymo_client');
SELECT throws_ok(format($$SELECT payymo_test.admin('SELECT payymo.drop_tenant(%s)')$$, payymo_test.tenant('bravo')),
                 '55006', NULL, 'an active tenant is not dropped without force');
SELECT is(payymo_test.admin_value(format('SELECT payymo.drop_tenant(%s, force => true)', payymo_test.tenant('bravo'))),
          (SELECT (sum(n) + 2)::text FROM payymo_test.counts WHERE slug = 'bravo'),
          'drop_tenant returns every row it deleted (tenancy rows, the key and the tenant)');
SELECT is(payymo_test.admin_value($$SELECT string_agg(t.relid::text, ',') FROM payymo.tenant_tables t
    WHERE t.root IS NULL
      AND payymo_test.count_rows(t.relid, t.tenant_column,
                                 (SELECT tenant_id FROM payymo_test.keys WHERE slug = 'bravo')) > 0$$), NULL, 'no row of the dropped tenant is left in any tenancy table');
SELECT is(payymo_test.admin_value($$SELECT count(*) FROM payymo_test.counts c
    WHERE c.slug = 'alpha' AND c.n <> payymo_test.count_rows(c.rel::regclass,
          (SELECT tenant_column FROM payymo.tenant_tables WHERE relid::text = c.rel),
          (SELECT tenant_id FROM payymo_test.keys WHERE slug = 'alpha'))$$),
          '0', 'no row of another tenant was touched');
SELECT throws_ok($$SELECT payymo_test.admin('SELECT payymo.drop_tenant(999999)')$$, '42704', NULL,
                 'dropping an unknown tenant is refused');

-- payymo_admin: a member administers; the client, not a member, cannot.
SELECT payymo_test.admin($$
    CREATE ROLE payymo_test_ops NOLOGIN IN ROLE payymo_admin;
    CREATE FUNCTION payymo_test.as_ops(sql text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'DECLARE r text; BEGIN EXECUTE sql INTO r; RETURN coalesce(r, ''ok''); END';
    ALTER FUNCTION payymo_test.as_ops(text) OWNER TO payymo_test_ops;
    GRANT EXECUTE ON FUNCTION payymo_test.as_ops(text) TO payymo_client$$);
SELECT lives_ok($$SELECT payymo_test.as_ops('SELECT tenant_id::text FROM payymo.create_tenant(''ops-made'', ''Ops'')')$$,
                'a payymo_admin member creates a tenant');
SELECT lives_ok($$SELECT payymo_test.as_ops('SELECT payymo.issue_api_key((SELECT tenant_id FROM payymo.api_keys
                                                                           WHERE label = ''initial key'' ORDER BY created_at DESC LIMIT 1))')$$,
                'reads api_keys and issues a key');
SELECT lives_ok($$SELECT payymo_test.as_ops('SELECT payymo.revoke_api_key((SELECT key_id FROM payymo.api_keys ORDER BY created_at DESC LIMIT 1))::text')$$,
                'revokes a key');
SELECT lives_ok($$SELECT payymo_test.as_ops('INSERT INTO payymo.default_settings VALUES (''ops.key'', ''v'') RETURNING setting_key')$$,
                'edits the defaults');
SELECT lives_ok($$SELECT payymo_test.as_ops('SELECT count(*)::text FROM payymo.tenant_stats')$$,
                'reads the statistics');
SELECT lives_ok($$SELECT payymo_test.as_ops('SELECT count(*)::text FROM payymo.audit_accepted')$$,
                'reads accepted audit warnings');
SELECT throws_ok($$SELECT payymo.create_tenant('client-made', 'Client')$$, '42501', NULL,
                 'the client cannot create tenants');
SELECT throws_ok($$SELECT payymo.issue_api_key(1)$$, '42501', NULL, 'nor issue keys');
SELECT throws_ok($$SELECT * FROM payymo.api_keys$$, '42501', NULL, 'nor read the key list');
SELECT throws_ok($$INSERT INTO payymo.default_settings VALUES ('client.key', 'v')$$, '42501', NULL,
                 'nor edit the defaults');
SELECT throws_ok($$SELECT * FROM payymo.tenant_stats$$, '42501', NULL, 'nor read the statistics');
SELECT throws_ok($$INSERT INTO payymo.audit_accepted (object, problem, reason) VALUES ('x', 'y', 'z')$$, '42501', NULL,
                 'nor accept audit warnings');

SELECT * FROM finish();
ROLLBACK;
