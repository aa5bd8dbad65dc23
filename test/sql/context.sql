-- The tenant context, seen by the superuser: the setting is shown but cannot
-- be set by anyone, not even a superuser, except through payymo's functions.
SET client_min_messages = warning;

SHOW payymo.tenant_id;
SELECT payymo.current_tenant();

SET payymo.tenant_id = '1';
SET LOCAL payymo.tenant_id = '1';
SELECT set_config('payymo.tenant_id', '1', false);
ALTER ROLE CURRENT_USER SET payymo.tenant_id = '1';
ALTER DATABASE contrib_regression SET payymo.tenant_id = '1';
ALTER SYSTEM SET payymo.tenant_id = '1';
SET payymo.tenant_id = 'abc';
-- Clearing is harmless and allowed to those who may set the parameter.
SET payymo.tenant_id = '';

-- Names in the reserved prefix cannot be invented.
SET payymo.no_such_setting = 'x';

-- Tenants and keys.
SELECT tenant_id AS alpha, api_key AS alpha_key FROM payymo.create_tenant('alpha', 'Alpha Ltd') \gset
SELECT tenant_id AS bravo, api_key AS bravo_key FROM payymo.create_tenant('bravo', 'Bravo Ltd') \gset
SELECT :'alpha_key' ~ '^pyk_[a-z2-7]{16}_[a-z2-7]{60}$' AS key_format_ok,
       length(:'alpha_key') AS key_length,
       :'alpha_key' <> :'bravo_key' AS keys_differ;

-- The view never shows the hash; the hint is the public key id and the
-- last four checksum characters, nothing of the secret.
SELECT count(*) AS keys,
       bool_and(hint = left(:'alpha_key', 21) || '...' || right(:'alpha_key', 4))
           FILTER (WHERE tenant_id = :alpha) AS alpha_hint_ok
  FROM payymo.api_keys;
SELECT attname FROM pg_attribute
 WHERE attrelid = 'payymo.api_keys'::regclass AND attnum > 0 ORDER BY attnum;

BEGIN;
SELECT payymo.set_tenant(:'alpha_key') = :alpha AS set_alpha;
SELECT payymo.current_tenant() = :alpha AS current_is_alpha;
SELECT current_setting('payymo.tenant_id') = :'alpha' AS setting_shows_alpha;
COMMIT;
SELECT payymo.current_tenant();

-- is_local => false lasts for the session.
SELECT payymo.set_tenant(:'bravo_key', false) = :bravo AS set_bravo_session;
SELECT payymo.current_tenant() = :bravo AS still_bravo;
SELECT payymo.clear_tenant();
SELECT payymo.current_tenant();

-- Bad input: one message for all of them, SQLSTATE 28000.
\set VERBOSITY sqlstate
SELECT payymo.set_tenant(NULL);
SELECT payymo.set_tenant('');
SELECT payymo.set_tenant(repeat('x', 100000));
SELECT payymo.set_tenant(left(:'alpha_key', -1) || CASE WHEN right(:'alpha_key', 1) = 'a' THEN 'b' ELSE 'a' END);
\set VERBOSITY default
SELECT payymo.set_tenant('pyk_nope');
SELECT payymo.set_tenant(:'alpha_key', NULL);

-- assume_tenant: for trusted roles only; unknown tenants are refused.
SELECT payymo.assume_tenant(:alpha);
SELECT payymo.assume_tenant(999999);
BEGIN;
SELECT payymo.assume_tenant(:bravo);
SELECT payymo.current_tenant() = :bravo AS assumed_bravo;
ROLLBACK;

-- Admin functions: errors for unknown tenants and past expiry.
SELECT payymo.issue_api_key(999999);
SELECT payymo.issue_api_key(:alpha, 'old', now() - interval '1 day');
SELECT payymo.revoke_api_key('aaaaaaaaaaaaaaaa') AS revoked_unknown;
SELECT payymo.suspend_tenant(999999);
