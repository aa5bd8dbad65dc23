-- The payymo walkthrough (`make demo`): the Payymo story end to end on the
-- seed's schema.  Runs as the superuser, and as the application role
-- payymo_app where an application would act.  Every refusal it shows is
-- checked: demo.refused() fails the walkthrough if the statement succeeds.
\set ON_ERROR_STOP 1
\set VERBOSITY terse
SET client_min_messages = notice;
\pset footer off

\echo
\echo '== 1. A DBA installs payymo and provisions two tenants'
CREATE EXTENSION IF NOT EXISTS payymo;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payymo_app') THEN
        CREATE ROLE payymo_app LOGIN;   -- the application: no superuser, no BYPASSRLS
    END IF;
END $$;

CREATE SCHEMA demo;
-- All tenants share this role: its sessions must not see each other's query
-- text in pg_stat_activity.
ALTER ROLE payymo_app SET track_activities = off;
GRANT USAGE ON SCHEMA demo TO payymo_app;

-- demo.refused(sql): runs a statement that must fail and prints why.
CREATE FUNCTION demo.refused(command text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE command;
    RAISE EXCEPTION 'walkthrough failed: this statement should have been refused: %', command;
EXCEPTION WHEN OTHERS THEN
    IF SQLERRM LIKE 'walkthrough failed:%' THEN RAISE; END IF;
    RETURN format('refused, SQLSTATE %s: %s', SQLSTATE, SQLERRM);
END $$;
GRANT EXECUTE ON FUNCTION demo.refused(text) TO payymo_app;

INSERT INTO payymo.default_settings VALUES ('locale', 'en-GB'), ('currency', 'GBP');
INSERT INTO payymo.default_features VALUES ('open_banking', true), ('stripe_payouts', false);

CREATE TABLE demo.keys (tenant text PRIMARY KEY, id bigint, api_key text);
GRANT SELECT ON demo.keys TO payymo_app;   -- stands in for the app's secret store
INSERT INTO demo.keys SELECT 'acme', tenant_id, api_key FROM payymo.create_tenant('acme', 'Acme Ltd');
INSERT INTO demo.keys SELECT 'globex', tenant_id, api_key FROM payymo.create_tenant('globex', 'Globex plc');
SELECT k.tenant, k.id, t.name, a.hint AS "API key (hint; the key is shown once)"
  FROM demo.keys k JOIN payymo.tenants t ON t.id = k.id JOIN payymo.api_keys a ON a.tenant_id = k.id
 ORDER BY k.id;

\echo '== 2. Branding, a feature flag and a custom domain for Acme'
GRANT INSERT, UPDATE, DELETE ON payymo.tenant_settings, payymo.tenant_features TO payymo_app;
SELECT payymo.add_tenant_domain((SELECT id FROM demo.keys WHERE tenant = 'acme'), 'Banking.Acme.Example.');

\echo
\echo '== 3. The seed schema, each table under tenancy in one call'
CREATE TABLE demo.bank_connections (
    id serial PRIMARY KEY,
    tenant_id integer NOT NULL REFERENCES payymo.tenants (id),
    bank_id varchar(100) NOT NULL,
    bank_name varchar(100),
    account_id varchar(100) NOT NULL,
    account_name varchar(255),
    access_token bytea CHECK (payymo.is_token(access_token)),
    refresh_token bytea CHECK (payymo.is_token(refresh_token)),
    token_expires_at timestamp,
    status varchar(20) DEFAULT 'active',
    created_at timestamp DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (tenant_id, bank_id, account_id)
);
CREATE TABLE demo.transactions (
    id bigserial PRIMARY KEY,
    bank_connection_id integer NOT NULL,
    amount numeric(12, 2) NOT NULL,
    description text,
    booked_at timestamptz NOT NULL DEFAULT now()
);
SELECT payymo.enable_tenancy('demo.bank_connections') \gset
SELECT payymo.enable_tenancy('demo.transactions') \gset
SELECT payymo.add_tenant_reference('demo.transactions', 'bank_connection_id', 'demo.bank_connections') \gset
SELECT c.relname AS "table", c.relrowsecurity AS rls, c.relforcerowsecurity AS "force",
       (SELECT string_agg(polname, ', ') FROM pg_policy WHERE polrelid = c.oid) AS policy,
       (SELECT string_agg(tgname, ', ' ORDER BY tgname) FROM pg_trigger
         WHERE tgrelid = c.oid AND NOT tgisinternal) AS triggers
  FROM pg_class c WHERE c.oid IN ('demo.bank_connections'::regclass, 'demo.transactions'::regclass)
 ORDER BY 1;
GRANT SELECT, INSERT, UPDATE, DELETE ON demo.bank_connections, demo.transactions TO payymo_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA demo TO payymo_app;
\echo 'payymo.audit() on the finished schema (no rows = nothing missed):'
SELECT * FROM payymo.audit();

\echo
\echo '== 4. The application connects as payymo_app and works as Acme'
\c - payymo_app
\set VERBOSITY terse
BEGIN;
SELECT payymo.set_tenant((SELECT api_key FROM demo.keys WHERE tenant = 'acme')) AS "set_tenant(acme key)";
SELECT payymo.set_setting('brand.primary_color', '#0a66c2') \gset
SELECT payymo.set_setting('brand.logo_url', 'https://banking.acme.example/logo.svg') \gset
SELECT payymo.set_feature('stripe_payouts', true) \gset
\echo '   branding (brand.*) and the stripe_payouts flag set by Acme itself'
INSERT INTO demo.bank_connections (bank_id, bank_name, account_id, account_name, access_token, refresh_token)
VALUES ('hsbc', 'HSBC', 'GB29-0001', 'Acme current account',
        payymo.encrypt_token('acme-oauth-access-token', 'bank_connections.access_token'),
        payymo.encrypt_token('acme-oauth-refresh-token', 'bank_connections.refresh_token'));
INSERT INTO demo.transactions (bank_connection_id, amount, description)
SELECT id, x.amount, x.description FROM demo.bank_connections,
       (VALUES (-42.50, 'Office supplies'), (1200.00, 'Invoice 1001')) AS x(amount, description);
COMMIT;

\echo '   ... and as Globex, with the same natural key (unique per tenant):'
BEGIN;
SELECT payymo.set_tenant((SELECT api_key FROM demo.keys WHERE tenant = 'globex')) AS "set_tenant(globex key)";
INSERT INTO demo.bank_connections (bank_id, bank_name, account_id, account_name, access_token)
VALUES ('hsbc', 'HSBC', 'GB29-0001', 'Globex payroll',
        payymo.encrypt_token('globex-oauth-access-token', 'bank_connections.access_token'));
INSERT INTO demo.transactions (bank_connection_id, amount, description)
SELECT id, -9999.99, 'Payroll' FROM demo.bank_connections;
COMMIT;

\echo
\echo '== 5. What each tenant sees'
BEGIN;
SELECT payymo.set_tenant((SELECT api_key FROM demo.keys WHERE tenant = 'acme')) AS "as acme";
SELECT b.account_name, t.amount, t.description,
       payymo.decrypt_token(b.access_token, 'bank_connections.access_token') AS access_token
  FROM demo.transactions t JOIN demo.bank_connections b ON b.id = t.bank_connection_id
 ORDER BY t.id;
SELECT payymo.setting('currency') AS currency, payymo.feature_enabled('stripe_payouts') AS stripe_payouts;
COMMIT;
BEGIN;
SELECT payymo.set_tenant((SELECT api_key FROM demo.keys WHERE tenant = 'globex')) AS "as globex";
SELECT b.account_name, t.amount, t.description
  FROM demo.transactions t JOIN demo.bank_connections b ON b.id = t.bank_connection_id ORDER BY t.id;
SELECT payymo.feature_enabled('stripe_payouts') AS stripe_payouts;
COMMIT;
\echo 'Without a context, tenancy tables fail closed:'
SELECT demo.refused('SELECT count(*) FROM demo.transactions');

\echo
\echo '== 6. What a client cannot do (each is refused)'
BEGIN;
SELECT payymo.set_tenant((SELECT api_key FROM demo.keys WHERE tenant = 'acme')) AS "as acme";
SELECT demo.refused($$SET payymo.tenant_id = '2'$$) AS "forge the context with SET";
SELECT demo.refused($$SELECT set_config('payymo.tenant_id', '2', true)$$) AS "forge it with set_config";
SELECT demo.refused(format(
    $$INSERT INTO demo.bank_connections (tenant_id, bank_id, account_id) VALUES (%s, 'x', 'y')$$,
    (SELECT id FROM demo.keys WHERE tenant = 'globex'))) AS "insert a row for Globex";
WITH u AS (UPDATE demo.bank_connections SET account_name = 'pwned'
            WHERE account_name = 'Globex payroll' RETURNING 1)
SELECT count(*) AS "Globex rows an Acme UPDATE touched" FROM u;
COMMIT;
-- Globex's ciphertext, copied out by someone with table access ...
\c - postgres
CREATE TABLE demo.stolen AS
SELECT access_token FROM demo.bank_connections WHERE account_name = 'Globex payroll';
GRANT SELECT ON demo.stolen TO payymo_app;
\c - payymo_app
\set VERBOSITY terse
BEGIN;
SELECT payymo.set_tenant((SELECT api_key FROM demo.keys WHERE tenant = 'acme')) AS "as acme";
SELECT demo.refused($$SELECT payymo.decrypt_token((SELECT access_token FROM demo.stolen),
                                                   'bank_connections.access_token')$$)
       AS "decrypt Globex's token as Acme";
COMMIT;
SELECT demo.refused($$SELECT payymo.set_tenant('pyk_not_a_real_key')$$) AS "a made-up key";

\echo
\echo '== 7. White-label: a router resolves the Host header (no context is set)'
SELECT * FROM payymo.tenant_for_domain('BANKING.acme.example:443');
SELECT current_setting('payymo.tenant_id') = '' AS "still no tenant context";

\echo
\echo '== 8. Offboarding Globex'
\c - postgres
SELECT payymo.suspend_tenant((SELECT id FROM demo.keys WHERE tenant = 'globex')) \gset
\echo '   Globex suspended'
\c - payymo_app
\set VERBOSITY terse
SELECT demo.refused(format('SELECT payymo.set_tenant(%L)', (SELECT api_key FROM demo.keys WHERE tenant = 'globex')))
       AS "a suspended tenant's key";
\c - postgres
SELECT payymo.drop_tenant((SELECT id FROM demo.keys WHERE tenant = 'globex')) AS "rows deleted";
SELECT t.slug, (SELECT count(*) FROM demo.bank_connections b WHERE b.tenant_id = t.id) AS connections,
       (SELECT count(*) FROM demo.transactions x WHERE x.tenant_id = t.id) AS transactions
  FROM payymo.tenants t ORDER BY t.id;

\echo
\echo '== 9. Per-tenant statistics (shared memory, needs shared_preload_libraries)'
SELECT t.slug, s.statements > 0 AS active, s.denied
  FROM payymo.tenant_stats s JOIN payymo.tenants t ON t.id = s.tenant_id ORDER BY t.id;

\echo
\echo 'Walkthrough complete.'
