-- Isolation tests for the seed's schema (examples/flask/schema.sql), as an
-- application would keep them in its own CI: run with pg_prove as a
-- superuser, in a database with pgTAP, payymo and payymo_tap installed, the
-- tables filled for at least two tenants, and the application's role app.
--
--   pg_prove -d app examples/pgtap/bank_isolation.sql
--
-- Every check runs as the role the application logs in as, because
-- superusers bypass row level security.
BEGIN;
SELECT plan(9);

SELECT id AS acme FROM payymo.tenants WHERE slug = 'acme' \gset
SELECT id AS globex FROM payymo.tenants WHERE slug = 'globex' \gset

SELECT payymo_tap.tenancy_ok('bank.bank_connections');
SELECT payymo_tap.tenancy_ok('bank.transactions');
SELECT payymo_tap.no_oracle_ok('bank.bank_connections');
SELECT payymo_tap.no_oracle_ok('bank.transactions');
SELECT payymo_tap.isolation_ok('bank.bank_connections', :acme, :globex, 'app');
SELECT payymo_tap.isolation_ok('bank.bank_connections', :globex, :acme, 'app');
SELECT payymo_tap.isolation_ok('bank.transactions', :acme, :globex, 'app');
SELECT payymo_tap.fails_closed_ok('bank.bank_connections', 'app');
SELECT payymo_tap.fails_closed_ok('bank.transactions', 'app');

SELECT * FROM finish();
ROLLBACK;
