#!/usr/bin/env bash
# payymo_tap, the pgTAP assertions for users' own tables: the example test
# file for the seed's schema passes on it, and each assertion fails on a
# table broken in the way it checks (test/payymo_tap/helpers.sql).  Uses
# the cluster of test/run.sh, with a database of its own.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

db=payymo_tap_test
q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
q -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app LOGIN; END IF; END \$\$" >/dev/null
q -d $db -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION payymo_tap CASCADE" >/dev/null 2>&1
is "$(q -d $db -c "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension WHERE extname LIKE 'payymo%'")" \
    "payymo,payymo_tap" "CREATE EXTENSION payymo_tap installs payymo with it"
q -d $db -v app_role=app -f examples/flask/schema.sql >/dev/null
q -d $db >/dev/null <<'SQL'
SELECT payymo.create_tenant('acme', 'Acme Ltd');
SELECT payymo.create_tenant('globex', 'Globex plc');
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT id, slug FROM payymo.tenants LOOP
        PERFORM payymo.assume_tenant(t.id);
        INSERT INTO bank.bank_connections (bank_id, account_id, account_name)
        SELECT 'bank-' || g, 'acc-' || g, t.slug FROM generate_series(1, 3) g;
        INSERT INTO bank.transactions (bank_connection_id, amount)
        SELECT id, 10 FROM bank.bank_connections WHERE tenant_id = t.id;
        PERFORM payymo.clear_tenant();
    END LOOP;
END $$;
SQL

out=$(pg_prove -v -d $db examples/pgtap/bank_isolation.sql 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^\s*(not ok|#)' | sed 's/^/# /'
ok $rc "the example isolation tests pass on the seed's schema"
like "$out" "ok 9 " "all nine assertions ran"

out=$(pg_prove -v -d $db test/payymo_tap/helpers.sql 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^\s*(not ok|#)' | sed 's/^/# /'
ok $rc "each assertion passes on an intact table and fails on a broken one"

q -c "DROP DATABASE $db" >/dev/null
done_testing
