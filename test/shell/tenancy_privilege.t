#!/usr/bin/env bash
# A table owner's index expressions are planned -- and IMMUTABLE functions in
# them constant-folded -- when a foreign key is validated or a query plans a
# scan of the table.  payymo's SECURITY DEFINER functions must do that as the
# table's owner, never as a superuser.  Each step runs in a new session, so
# the index expressions are not already cached in the backend.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

db=payymo_test
mallory() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -U payymo_mallory "$@" 2>&1; }
q -d "$db" -c "CREATE ROLE payymo_mallory LOGIN" -c "CREATE SCHEMA m AUTHORIZATION payymo_mallory" \
  -c "GRANT USAGE ON SCHEMA payymo_test TO payymo_mallory" >/dev/null

mallory <<'SQL'
CREATE TABLE m.seen (what text, who name, super boolean);
CREATE FUNCTION m.note(what text) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO m.seen SELECT what, current_user, rolsuper FROM pg_roles WHERE rolname = current_user;
    RETURN 0;
END $$;
CREATE FUNCTION m.evil() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN m.note('index'); END $$;
CREATE TABLE m.t2 (id int PRIMARY KEY, tenant_id int);
CREATE INDEX t2_evil ON m.t2 ((id + m.evil()));
CREATE TABLE m.p (id int PRIMARY KEY);
CREATE TABLE m.c (id int PRIMARY KEY, p_id int NOT NULL);
CREATE TABLE m.tok (id int PRIMARY KEY, tenant_id bigint, tok bytea);
CREATE INDEX tok_evil ON m.tok ((id + m.evil())) WHERE false;
SQL
supers() { q -d "$db" -c "SELECT count(*) FROM m.seen WHERE super"; }

out=$(mallory -c "SELECT payymo.enable_tenancy('m.t2')")
is "$out" "" "enable_tenancy succeeds on a table with an index expression"
is "$(supers)" "0" "enable_tenancy ran none of the owner's code as a superuser"
is "$(q -d "$db" -c "SELECT count(*) > 0 FROM m.seen WHERE NOT super")" "t" "the index expression did run during it, as the owner"

mallory -c "SELECT payymo.enable_tenancy('m.p')" -c "SELECT payymo.enable_tenancy('m.c')" >/dev/null
mallory -c "CREATE INDEX c_evil ON m.c ((p_id + m.evil())) WHERE false" >/dev/null
out=$(mallory -c "SELECT payymo.add_tenant_reference('m.c', 'p_id', 'm.p')")
is "$out" "" "add_tenant_reference succeeds on a table with an index expression"
is "$(supers)" "0" "validating the tenant reference ran none of the owner's code as a superuser"

out=$(q -d "$db" -c "SELECT payymo.reencrypt_token_batch('m.tok', 'tok')" 2>&1)
like "$out" "^0" "key rotation on the owner's table runs (nothing to do)"
is "$(supers)" "0" "key rotation ran none of the owner's code as a superuser"
is "$(q -d "$db" -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'payymo_mallory'")" "f" \
    "the table owner is still not a superuser"
out=$(q -d "$db" -c "SELECT payymo.reencrypt_token_batch('m.seen', 'what')" 2>&1)
like "$out" "42809|is not a table with a bytea column" "rotation refuses a column that is not bytea"

# tenant_storage() plans a query on every table under tenancy, as the
# administrator calling it (a SECURITY DEFINER function of the superuser).
q -d "$db" -c "DELETE FROM m.seen" >/dev/null
out=$(q -d "$db" -c "SELECT count(*) >= 0 FROM payymo.tenant_storage()" 2>&1)
is "$out" "t" "tenant_storage() runs on a table with an index expression"
is "$(supers)" "0" "tenant_storage() ran none of the owner's code as a superuser"
is "$(q -d "$db" -c "SELECT count(*) > 0 FROM m.seen WHERE NOT super")" "t" \
   "the index expression did run during it, as the owner"

q -d "$db" -c "DROP SCHEMA m CASCADE" -c "DROP OWNED BY payymo_mallory" -c "DROP ROLE payymo_mallory" >/dev/null 2>&1
done_testing
