#!/usr/bin/env bash
# Upgrade from every released version: CREATE EXTENSION payymo VERSION
# '<released>' with tenants, keys, tables under tenancy with rows and tokens,
# then ALTER EXTENSION payymo UPDATE.  The upgraded catalogue must equal a
# fresh install's (test/catalog.sql and the attribute query of
# test/sql/attributes.sql), and everything made before the upgrade must
# still work: keys, tokens, isolation, a clean audit().
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

new=upgrade_new
current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" payymo.control)
work=$(mktemp -d /tmp/payymo-upgrade.XXXXXX)
trap 'rm -rf "$work"' EXIT

q -c "DROP DATABASE IF EXISTS $new" 2>/dev/null
q -c "CREATE DATABASE $new" && q -d $new -c "CREATE EXTENSION payymo"

# upgrade_from VERSION: a database made by that release, in use, updated to
# the current version and compared with the fresh install in $new.  (The
# body is not indented: it holds here-documents and multi-line strings.)
upgrade_from() {
local from=$1 old=upgrade_${1//./_}
q -c "DROP DATABASE IF EXISTS $old" -c "CREATE DATABASE $old"

q -d $old -c "CREATE EXTENSION payymo VERSION '$from'"
is "$(q -d $old -c "SELECT extversion FROM pg_extension WHERE extname = 'payymo'")" "$from" \
    "$from installs"
q -d $old >/dev/null <<'SQL' || { echo "Bail out! the $from set-up failed"; exit 1; }
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_owner') THEN
        CREATE ROLE upgrade_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_client') THEN
        CREATE ROLE upgrade_client LOGIN;
    END IF;
END $$;
ALTER ROLE upgrade_client SET track_activities = off;
CREATE SCHEMA shop AUTHORIZATION upgrade_owner;
GRANT USAGE ON SCHEMA shop TO upgrade_client;
INSERT INTO payymo.default_settings VALUES ('locale', 'en-GB');
INSERT INTO payymo.default_features VALUES ('open_banking', true);
SET ROLE upgrade_owner;
CREATE TABLE shop.bank_connections (
    id serial PRIMARY KEY,
    tenant_id integer NOT NULL,
    bank_id text NOT NULL,
    access_token bytea CHECK (payymo.is_token(access_token)),
    UNIQUE (tenant_id, bank_id)
);
CREATE TABLE shop.transactions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_connection_id integer NOT NULL,
    amount numeric(12, 2) NOT NULL
);
SELECT payymo.enable_tenancy('shop.bank_connections');
SELECT payymo.enable_tenancy('shop.transactions');
SELECT payymo.add_tenant_reference('shop.transactions', 'bank_connection_id', 'shop.bank_connections');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA shop TO upgrade_client;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA shop TO upgrade_client;
RESET ROLE;
SQL
keys=()
for slug in acme globex; do
    keys+=("$(q -d $old -c "SELECT api_key FROM payymo.create_tenant('$slug', '$slug Ltd')")")
done
client() { psql -X -q -A -t -v ON_ERROR_STOP=1 -U upgrade_client -d $old "$@" 2>&1; }
for i in 0 1; do
    client -c "BEGIN" -c "SELECT payymo.set_tenant('${keys[$i]}')" -c "
        INSERT INTO shop.bank_connections (bank_id, access_token)
        SELECT 'bank-' || g, payymo.encrypt_token('token-$i-' || g, 'bank_connections.access_token')
          FROM generate_series(1, 3) g;
        INSERT INTO shop.transactions (bank_connection_id, amount)
        SELECT id, 10 FROM shop.bank_connections;" -c "COMMIT" >/dev/null
done
revoked=$(q -d $old -c "SELECT payymo.issue_api_key(1, 'to revoke')")
q -d $old -c "SELECT payymo.revoke_api_key(split_part('$revoked', '_', 2))" >/dev/null

# --- upgrade it, and install the current version fresh
out=$(q -d $old -c "ALTER EXTENSION payymo UPDATE" 2>&1)
is "$out" "" "ALTER EXTENSION payymo UPDATE runs without errors or warnings"
is "$(q -d $old -c "SELECT extversion FROM pg_extension WHERE extname = 'payymo'")" "$current" \
    "the update reaches the default version $current"

# --- the catalogue of the upgraded install equals a fresh one's
for f in test/catalog.sql test/sql/attributes.sql; do
    name=$(basename "$f" .sql)
    psql -X -q -A -t -d $old -f "$f" >"$work/$name.old" 2>&1
    psql -X -q -A -t -d $new -f "$f" >"$work/$name.new" 2>&1
    diff -u "$work/$name.new" "$work/$name.old" >"$work/$name.diff"
    ok_log $? "$name: the upgraded catalogue equals a fresh $current install" "$work/$name.diff"
done
[ "$(wc -l <"$work/catalog.new")" -gt 100 ] 
ok $? "control: the catalogue description is not empty ($(wc -l <"$work/catalog.new") lines)"

# --- everything made before the upgrade still works
out=$(client -c "BEGIN" -c "SELECT payymo.set_tenant('${keys[0]}')" \
             -c "SELECT string_agg(payymo.decrypt_token(access_token, 'bank_connections.access_token'), ',' ORDER BY id)
                   FROM shop.bank_connections" \
             -c "SELECT count(*) FROM shop.transactions" -c "COMMIT")
is "$out" "1
token-0-1,token-0-2,token-0-3
3" "a key issued before the upgrade works; its tenant's tokens decrypt; it sees only its rows"
out=$(client -c "BEGIN" -c "SELECT payymo.set_tenant('${keys[1]}')" \
             -c "SELECT count(*) FROM shop.bank_connections WHERE access_token IS NOT NULL" \
             -c "INSERT INTO shop.bank_connections (tenant_id, bank_id) VALUES (1, 'x')")
like "$out" "^2"$'\n'"3"$'\n'".*cannot write another tenant's row" \
    "the second tenant sees its own 3 rows and cannot write the first tenant's id"
out=$(client -c "SELECT payymo.set_tenant('$revoked')")
like "$out" "invalid API key" "a key revoked before the upgrade stays revoked"
out=$(client -c "SELECT count(*) FROM shop.bank_connections")
like "$out" "no tenant context set" "without a context, tables still fail closed"
out=$(client -c "BEGIN" -c "SELECT payymo.set_tenant('${keys[0]}')" -c "SELECT payymo.setting('locale'), payymo.feature_enabled('open_banking')" -c "COMMIT")
is "$out" "1
en-GB|t" "settings and feature flags made by $from are still there"
is "$(q -d $old -c "SELECT severity || ' ' || object || ': ' || problem FROM payymo.audit()")" "" \
    "audit() is clean after the upgrade"
out=$(q -d $old -c "ALTER TABLE shop.transactions NO FORCE ROW LEVEL SECURITY" 2>&1)
like "$out" "under tenancy" "the DDL guard protects tables enabled under $from"
before=$(q -d $old -c "SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM shop.bank_connections x")
q -d $old -c "CREATE TABLE stage (n bigserial, line text)" \
          -c "INSERT INTO stage (line) SELECT * FROM payymo.export_tenant(1)" \
          -c "DELETE FROM shop.transactions WHERE tenant_id = 1" \
          -c "UPDATE shop.bank_connections SET bank_id = 'lost-' || id WHERE tenant_id = 1" >/dev/null
q -d $old -c "SELECT * FROM payymo.restore_tenant('stage', replace => true)" >/dev/null
is "$(q -d $old -c "SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM shop.bank_connections x")" "$before" \
    "a tenant made under $from exports and restores after the upgrade"

q -c "DROP DATABASE $old"
}

# Released versions, oldest first: each is updated along the whole chain.
for released in 0.1.0 0.2.0; do
    upgrade_from "$released"
done

q -c "DROP DATABASE $new"
done_testing
