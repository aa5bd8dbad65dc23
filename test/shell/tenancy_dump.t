#!/usr/bin/env bash
# pg_dump and restore of a database with tables under tenancy: the DDL
# guard must let the restore rebuild them, and the restored tables must be
# as isolated as the originals (plain-SQL dumps and pg_restore of a custom
# archive).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

ALPHA=$(q -d payymo_test -c "SELECT payymo_test.key('alpha')")
BRAVO_ID=$(q -d payymo_test -c "SELECT payymo_test.tenant('bravo')")
dump=$(mktemp /tmp/payymo-dump.XXXXXX)
trap 'rm -f "$dump"' EXIT

check_restored() {
    local db=$1 how=$2 out
    is "$(q -d "$db" -c "SELECT string_agg(relid::text, ',' ORDER BY relid::text) FROM payymo.tenant_tables
                         WHERE relid::text LIKE 'app.%'")" \
        "app.bank_connections,app.transactions" "$how: registrations restored"
    is "$(q -d "$db" -c "SELECT severity || ' ' || object || ': ' || problem FROM payymo.audit()
                         WHERE object !~ 'payymo_test\.'")" "" "$how: audit() finds nothing missing"
    out=$(psql -X -A -t -d "$db" -U payymo_client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" \
            -c "SELECT count(*), count(*) FILTER (WHERE account_name LIKE 'BRAVO%') FROM app.bank_connections" \
            -c "COMMIT" 2>&1)
    like "$out" "^BEGIN"$'\n'"[0-9]+"$'\n'"3\|0"$'\n'"COMMIT$" "$how: alpha sees its 3 rows and none of bravo's"
    out=$(psql -X -A -t -d "$db" -U payymo_client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" \
            -c "INSERT INTO app.bank_connections (tenant_id, bank_id, account_id) VALUES ($BRAVO_ID, 'x', 'y')" 2>&1)
    like "$out" "cannot write another tenant's row" "$how: the trigger still refuses cross-tenant writes"
    out=$(psql -X -A -t -d "$db" -U payymo_client -c "SELECT count(*) FROM app.transactions" 2>&1)
    like "$out" "no tenant context set" "$how: no context still fails closed"
}

pg_dump -d payymo_test >"$dump"
q -c "DROP DATABASE IF EXISTS restored_sql" -c "CREATE DATABASE restored_sql" 2>/dev/null
errors=$(psql -X -q -d restored_sql -f "$dump" 2>&1 | grep -E 'ERROR|WARNING')
is "$errors" "" "a plain pg_dump script restores without errors"
check_restored restored_sql "plain dump"

pg_dump -Fc -d payymo_test -f "$dump"
q -c "DROP DATABASE IF EXISTS restored_fc" -c "CREATE DATABASE restored_fc" 2>/dev/null
errors=$(pg_restore -d restored_fc "$dump" 2>&1 | grep -E 'ERROR|WARNING')
is "$errors" "" "pg_restore of a custom archive restores without errors"
check_restored restored_fc "pg_restore"

# Outside a restore the guard is still on, for superusers too.
out=$(q -d restored_sql -c "ALTER TABLE app.bank_connections NO FORCE ROW LEVEL SECURITY" 2>&1)
like "$out" "under tenancy" "after the restore the DDL guard is active again"

done_testing
