#!/usr/bin/env bash
# Tables under tenancy: the paths pgTAP cannot drive -- COPY to and from the
# client, the server log of a refused cross-tenant write, a table owner that
# logs in through SET ROLE, and audit() on a fresh database.  Runs against
# the cluster of test/run.sh and database payymo_test with its fixtures.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh


db=payymo_test
admin() { q -d "$db" "$@"; }
client() { psql -X -q -A -t -d "$db" -U payymo_client "$@" 2>&1; }
ALPHA=$(admin -c "SELECT payymo_test.key('alpha')")
BRAVO_ID=$(admin -c "SELECT payymo_test.tenant('bravo')")

# --- COPY TO returns only the current tenant's rows
out=$(client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" \
             -c "COPY app.bank_connections TO STDOUT" -c "COMMIT")
rows=$(printf '%s\n' "$out" | grep -c 'alpha account')
is "$rows" 3 "COPY table TO STDOUT returns alpha's 3 rows"
unlike "$out" 'BRAVO-SECRET' "COPY table TO STDOUT returns none of bravo's"
out=$(client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" \
             -c "COPY (SELECT * FROM app.bank_connections b JOIN app.transactions t ON t.bank_connection_id = b.id) TO STDOUT" -c "COMMIT")
unlike "$out" 'BRAVO-SECRET' "COPY (query) TO STDOUT returns none of bravo's rows"
out=$(client -c "COPY app.bank_connections TO STDOUT")
like "$out" 'no tenant context set' "COPY TO without a context fails closed"

# --- COPY FROM: refused for the client (RLS), and for bravo's id in any case
out=$(printf '%s\tb\ta\n' "$BRAVO_ID" | client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" \
             -c "COPY app.bank_connections (tenant_id, bank_id, account_id) FROM STDIN" -c "ROLLBACK")
like "$out" 'ERROR' "COPY FROM STDIN by the client is refused"
before=$(admin -c "SELECT count(*) FROM app.bank_connections")
out=$(printf '%s\tb\ta\n' "$BRAVO_ID" | psql -X -q -d "$db" -c "BEGIN" \
             -c "SELECT payymo.assume_tenant(payymo_test.tenant('alpha'))" \
             -c "COPY app.bank_connections (tenant_id, bank_id, account_id) FROM STDIN" -c "COMMIT" 2>&1)
like "$out" 'cannot write another tenant.s row into table "bank_connections"' \
     "COPY FROM with bravo's id is refused for a superuser acting as alpha"
is "$(admin -c "SELECT count(*) FROM app.bank_connections")" "$before" "and wrote nothing"

# --- the refusal is a security event in the log, without the other tenant's id
client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" \
       -c "INSERT INTO app.transactions (tenant_id, bank_connection_id, amount) VALUES ($BRAVO_ID, 1, 1)" >/dev/null
wait_for_log 'security event: cross_tenant_write'
ok $? "a cross-tenant write logs a security event"

# --- the owner, through SET ROLE, cannot disable tenancy; an administrator
# can, and the owner can enable it again
out=$(admin -c "BEGIN" -c "SET ROLE payymo_owner" \
            -c "SELECT payymo.disable_tenancy('app.transactions')" -c "ROLLBACK" 2>&1)
like "$out" "permission denied to take a table out of tenancy" "the owner cannot disable tenancy"
out=$(admin -c "BEGIN" -c "SELECT payymo.disable_tenancy('app.transactions')" -c "SET ROLE payymo_owner" \
            -c "SELECT payymo.enable_tenancy('app.transactions')" \
            -c "SELECT payymo.add_tenant_reference('app.transactions', 'bank_connection_id', 'app.bank_connections')" \
            -c "SELECT coalesce((SELECT string_agg(problem, '; ') FROM payymo._tenancy_problems('app.transactions')), 'intact')" -c "ROLLBACK" 2>&1)
like "$out" 'intact' "after a superuser disabled it, the non-superuser owner can enable tenancy again"

# --- audit() on a fresh database with a table under tenancy is empty
q -c "DROP DATABASE IF EXISTS payymo_tenancy_audit" >/dev/null 2>&1
q -c "CREATE DATABASE payymo_tenancy_audit"
out=$(q -d payymo_tenancy_audit -c "SET client_min_messages = warning" -c "CREATE EXTENSION payymo" \
        -c "CREATE SCHEMA shop AUTHORIZATION payymo_owner" -c "SET ROLE payymo_owner" \
        -c "CREATE TABLE shop.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric)" \
        -c "SELECT payymo.enable_tenancy('shop.orders')" -c "RESET ROLE" \
        -c "SELECT count(*) FROM payymo.audit()" 2>&1)
is "$(printf '%s' "$out" | tail -1)" 0 "audit() is empty on a clean database"
out=$(q -d payymo_tenancy_audit -c "ALTER TABLE shop.orders OWNER TO postgres" 2>&1; \
      q -d payymo_tenancy_audit -c "SELECT count(*) FROM payymo.audit()")
is "$(printf '%s' "$out" | tail -1)" 0 "a table owned by the extension's owner is not a finding"
q -c "DROP DATABASE payymo_tenancy_audit" >/dev/null

done_testing
