#!/usr/bin/env bash
# What CREATE EXTENSION refuses, and configurations of the server that
# audit() reports: a schema named payymo made beforehand by another role, a
# pre-existing payymo_admin that can log in, prepared transactions.  Uses
# the cluster of test/run.sh, and one of its own for max_prepared_transactions.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

# --- a schema payymo created by a non-superuser before the DBA installs
q -c "DROP DATABASE IF EXISTS hijack" -c "CREATE DATABASE hijack" 2>/dev/null
q -c "DROP ROLE IF EXISTS hijacker" -c "CREATE ROLE hijacker LOGIN" -c "GRANT CREATE ON DATABASE hijack TO hijacker" >/dev/null
psql -X -q -d hijack -U hijacker -c "CREATE SCHEMA payymo" 2>&1
out=$(q -d hijack -v VERBOSITY=verbose -c "CREATE EXTENSION payymo" 2>&1 | grep -v '^LOCATION:')
like "$out" "ERROR:  42501: schema payymo is not owned by the installing role postgres" \
    "CREATE EXTENSION refuses a schema payymo that another role owns"
is "$(q -d hijack -c "SELECT count(*) FROM pg_extension WHERE extname = 'payymo'")" "0" "nothing was installed"
q -d hijack -c "ALTER SCHEMA payymo OWNER TO postgres" -c "CREATE EXTENSION payymo" >/dev/null
is "$(q -d hijack -c "SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'payymo'")" "t" \
    "after the schema is handed to the superuser, it installs"
out=$(psql -X -q -d hijack -U hijacker -c "DROP SCHEMA payymo CASCADE" 2>&1)
like "$out" "must be owner of schema payymo" "and the role that made the schema can no longer drop it"

# --- a payymo_admin that can log in is refused; a NOLOGIN one is taken over
q -c "DROP DATABASE IF EXISTS admin_role" -c "CREATE DATABASE admin_role" 2>/dev/null
q -c "ALTER ROLE payymo_admin LOGIN" >/dev/null
out=$(q -d admin_role -c "CREATE EXTENSION payymo" 2>&1)
like "$out" "role payymo_admin can log in or bypasses row level security" \
    "CREATE EXTENSION refuses a payymo_admin that can log in"
q -c "ALTER ROLE payymo_admin NOLOGIN" >/dev/null
q -d admin_role -c "CREATE EXTENSION payymo" >/dev/null
ok $? "with payymo_admin NOLOGIN again, it installs"
is "$(q -d admin_role -c "SELECT has_function_privilege('payymo_admin', 'payymo.create_tenant(text, text, bigint, text, text)', 'EXECUTE')")" \
   "t" "payymo_admin may create tenants"

for db in hijack admin_role; do q -c "DROP DATABASE $db"; done
q -c "DROP ROLE hijacker" >/dev/null

# --- prepared transactions: one tenant could finish another's
(
    cluster_start "max_prepared_transactions = 2" >/dev/null || exit 1
    trap cluster_stop EXIT
    q -c "CREATE EXTENSION payymo" -c "CREATE ROLE app LOGIN" \
      -c "CREATE TABLE t (id int PRIMARY KEY)" -c "SELECT payymo.enable_tenancy('t')" \
      -c "GRANT SELECT ON t TO app" -c "ALTER ROLE app SET track_activities = off" >/dev/null
    q -c "SELECT severity || ' ' || object || ': ' || problem FROM payymo.audit()"
) >"$PGDATA_DIR/../prepared.out" 2>&1
like "$(cat "$PGDATA_DIR/../prepared.out")" \
    "^warning parameter max_prepared_transactions: is 2: a client can COMMIT or ROLLBACK PREPARED another tenant's" \
    "audit() reports max_prepared_transactions > 0 when client roles exist"

done_testing
