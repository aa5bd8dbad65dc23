-- The payymo_tap assertions themselves: each passes on an intact table and
-- fails, with a diagnostic, on a table broken in the way it checks.  Run
-- as a superuser by test/shell/payymo_tap.t in a database with the seed's
-- schema filled for tenants acme and globex and the client role app.
-- check_test() runs an assertion without counting its result, and checks
-- whether it passed.
BEGIN;
SELECT plan(16);

SELECT id AS acme FROM payymo.tenants WHERE slug = 'acme' \gset
SELECT id AS globex FROM payymo.tenants WHERE slug = 'globex' \gset

-- Intact: every assertion passes.
SELECT * FROM check_test(payymo_tap.tenancy_ok('bank.bank_connections'), true, 'tenancy_ok on an intact table');
SELECT * FROM check_test(payymo_tap.no_oracle_ok('bank.bank_connections'), true, 'no_oracle_ok on an intact table');
SELECT * FROM check_test(payymo_tap.isolation_ok('bank.bank_connections', :acme, :globex, 'app'), true,
                         'isolation_ok on an intact table');
SELECT * FROM check_test(payymo_tap.fails_closed_ok('bank.bank_connections', 'app'), true,
                         'fails_closed_ok on an intact table');

-- A table that is not under tenancy fails tenancy_ok and isolation_ok.
CREATE TABLE bank.loose (id int PRIMARY KEY, tenant_id bigint NOT NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON bank.loose TO app;
INSERT INTO bank.loose VALUES (1, :acme), (2, :globex);
SELECT * FROM check_test(payymo_tap.tenancy_ok('bank.loose'), false, 'tenancy_ok on a table not under tenancy',
                         'bank.loose is under tenancy, intact, and audit() finds nothing on it',
                         'bank.loose is not under tenancy (payymo.enable_tenancy)');
SELECT * FROM check_test(payymo_tap.isolation_ok('bank.loose', :acme, :globex, 'app'), false,
                         'isolation_ok on a table not under tenancy');
SELECT * FROM check_test(payymo_tap.fails_closed_ok('bank.loose', 'app'), false,
                         'fails_closed_ok on a table not under tenancy');

-- A widening policy (made with the DDL guard off, as a superuser could):
-- every row visible.
ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
CREATE POLICY everyone ON bank.bank_connections USING (true);
ALTER EVENT TRIGGER payymo_ddl_guard ENABLE;
SELECT * FROM check_test(payymo_tap.tenancy_ok('bank.bank_connections'), false, 'tenancy_ok with a widening policy');
SELECT * FROM check_test(payymo_tap.isolation_ok('bank.bank_connections', :acme, :globex, 'app'), false,
                         'isolation_ok with a widening policy');
SELECT * FROM check_test(payymo_tap.fails_closed_ok('bank.bank_connections', 'app'), false,
                         'fails_closed_ok with a widening policy');
ALTER EVENT TRIGGER payymo_drop_guard DISABLE;
DROP POLICY everyone ON bank.bank_connections;
ALTER EVENT TRIGGER payymo_drop_guard ENABLE;

-- Without the stamp trigger a role that bypasses nothing is still stopped
-- by the policy; the assertion sees the broken table through the audit.
ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
ALTER TABLE bank.transactions DISABLE TRIGGER payymo_stamp_tenant;
ALTER EVENT TRIGGER payymo_ddl_guard ENABLE;
SELECT * FROM check_test(payymo_tap.tenancy_ok('bank.transactions'), false, 'tenancy_ok without the stamp trigger');
ALTER EVENT TRIGGER payymo_ddl_guard DISABLE;
ALTER TABLE bank.transactions ENABLE TRIGGER payymo_stamp_tenant;
ALTER EVENT TRIGGER payymo_ddl_guard ENABLE;

-- An existence oracle: a unique key without the tenant column.
CREATE UNIQUE INDEX acct_oracle ON bank.bank_connections (id) INCLUDE (tenant_id);
SELECT * FROM check_test(payymo_tap.no_oracle_ok('bank.bank_connections'), false, 'no_oracle_ok with a global unique key');
DROP INDEX bank.acct_oracle;
SELECT * FROM check_test(payymo_tap.no_oracle_ok('bank.bank_connections'), true, 'no_oracle_ok once it is gone');

-- A tenant without rows gives the probes nothing to prove.
SELECT * FROM check_test(payymo_tap.isolation_ok('bank.bank_connections', :acme, 999999, 'app'), false,
                         'isolation_ok when the other tenant has no rows');

SELECT * FROM finish();
ROLLBACK;
