#!/usr/bin/env bash
# Tenant data lifecycle: export_tenant / restore_tenant round trips (into a
# second database, and over a mistake in the same one), tampered archives,
# archives of another key set, manifests that do not fit, atomicity when
# the backend dies mid-restore, export_my_data, and create_tenant with an
# explicit id.  Every refused restore must leave every tenant's rows as
# they were: the checks compare per-table checksums before and after.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

keyed_cluster_start "1 2" "shared_preload_libraries = 'payymo'" || exit 1
work=$(mktemp -d /tmp/payymo-lifecycle.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop; rm -rf "$KEYDIR" "$work"' EXIT

# err DB SQL...: the statements' output, errors as "ERROR:  <SQLSTATE>: ..."
err() {
    local db=$1
    shift
    psql -X -q -A -t -v VERBOSITY=verbose -d "$db" "$@" 2>&1 | grep -v '^LOCATION:'
}

# The Payymo design's tables, owned by a non-superuser, under tenancy.
schema() {
    q -d "$1" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS payymo;
CREATE SCHEMA app AUTHORIZATION app_owner;
SET ROLE app_owner;
CREATE TABLE app.bank_connections (
    id SERIAL PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    bank_id VARCHAR(100) NOT NULL,
    account_id VARCHAR(100) NOT NULL,
    account_name VARCHAR(255),
    access_token BYTEA,
    token_expires_at TIMESTAMP,
    status VARCHAR(20) DEFAULT 'active',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (tenant_id, bank_id, account_id)
);
SELECT payymo.enable_tenancy('app.bank_connections');
CREATE TABLE app.transactions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bank_connection_id integer NOT NULL,
    amount numeric(12, 2) NOT NULL,
    rate double precision,
    period interval,
    description text,
    booked_on date NOT NULL DEFAULT CURRENT_DATE
);
SELECT payymo.enable_tenancy('app.transactions');
SELECT payymo.add_tenant_reference('app.transactions', 'bank_connection_id', 'app.bank_connections');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.bank_connections, app.transactions TO app_client;
GRANT USAGE ON SCHEMA app TO app_client;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA app TO app_client;
RESET ROLE;
SQL
}

# fill DB SLUG MARKER N: a tenant with N connections (encrypted tokens), two
# transactions each, a setting, a flag and a domain.
fill() {
    q -d "$1" <<SQL >/dev/null
SET client_min_messages = warning;
BEGIN;
SELECT payymo.assume_tenant(id) FROM payymo.tenants WHERE slug = '$2';
INSERT INTO app.bank_connections (bank_id, account_id, account_name, access_token, token_expires_at)
SELECT 'bank-' || i, 'acc-' || i, '$3 account ' || i || E' with "quotes", commas, \\\\ and\ttabs',
       payymo.encrypt_token('$3 token ' || i, 'bank_connections.access_token'),
       '2027-01-01 12:00:00'::timestamp + i * interval '1 hour'
  FROM generate_series(1, $4) i;
INSERT INTO app.transactions (bank_connection_id, amount, rate, period, description, booked_on)
SELECT b.id, g * 10.25, 1.0 / 3 + g, g * interval '1 day 02:03:04.5', '$3 payment ' || g, ('2026-06-0' || g)::date
  FROM app.bank_connections b, generate_series(1, 2) g
 WHERE b.tenant_id = payymo.current_tenant();
UPDATE app.bank_connections SET account_name = CASE bank_id WHEN 'bank-1' THEN '' ELSE NULL END
 WHERE bank_id IN ('bank-1', 'bank-2');
SELECT payymo.set_setting('brand.color', '$3-blue');
SELECT payymo.set_feature('beta', true);
COMMIT;
SELECT payymo.add_tenant_domain(id, '$2.example.com') FROM payymo.tenants WHERE slug = '$2';
SQL
}

# sums DB TENANT: one checksum per table of the tenant's rows (as the
# superuser, so row level security hides nothing), keys included.
sums() {
    q -d "$1" -c "
SELECT string_agg(t || '=' || s, ' ' ORDER BY t) FROM (
  SELECT 'tenants' t, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) s FROM payymo.tenants x WHERE id = $2
  UNION ALL SELECT 'keys', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM payymo.api_key_store x WHERE tenant_id = $2
  UNION ALL SELECT 'users', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM payymo.users x WHERE tenant_id = $2
  UNION ALL SELECT 'settings', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM payymo.tenant_settings x WHERE tenant_id = $2
  UNION ALL SELECT 'features', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM payymo.tenant_features x WHERE tenant_id = $2
  UNION ALL SELECT 'domains', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM payymo.tenant_domains x WHERE tenant_id = $2
  UNION ALL SELECT 'connections', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM app.bank_connections x WHERE tenant_id = $2
  UNION ALL SELECT 'transactions', md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM app.transactions x WHERE tenant_id = $2
) c"
}
all_sums() { local t; for t in $(q -d "$1" -c "SELECT id FROM payymo.tenants ORDER BY id"); do echo "$t: $(sums "$1" "$t")"; done; }

# stage DB FILE [TABLE]: load an archive file into a fresh staging table.
stage() {
    local tbl=${3:-stage}
    q -d "$1" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS $tbl" -c "CREATE TABLE $tbl (n bigserial, line text)" \
      -c "\\copy $tbl (line) FROM '$2'"
}
restore() { err "$1" -c "SELECT table_name || '=' || rows FROM payymo.restore_tenant('${3:-stage}', replace => ${2:-false})"; }
export_tenant() { q -d "$1" -c "\\copy (SELECT * FROM payymo.export_tenant($2)) TO '$3'"; }

q -c "CREATE ROLE app_owner NOLOGIN" -c "CREATE ROLE app_client LOGIN" \
  -c "CREATE ROLE ops LOGIN IN ROLE payymo_admin" >/dev/null
schema postgres >/dev/null
acme=$(q -c "SELECT tenant_id FROM payymo.create_tenant('acme', 'Acme', admin_email => 'boss@acme.example', admin_password => 'acme boss pw')")
globex=$(q -c "SELECT tenant_id FROM payymo.create_tenant('globex', 'Globex')")
acme_key=$(q -c "SELECT payymo.issue_api_key($acme, 'app')")
fill postgres acme ACME 30
fill postgres globex GLOBEX 20
acme_sums=$(sums postgres "$acme")
globex_sums=$(sums postgres "$globex")

# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------
out=$(export_tenant postgres "$acme" "$work/acme.payymo" 2>&1)
is "$out" "" "export_tenant writes an archive with \\copy, without warnings"
lines=$(wc -l <"$work/acme.payymo")
like "$(tail -1 "$work/acme.payymo")" "^[0-9a-f]{32} E \{.*\"lines\": $lines[,}]" "the end line states the line count ($lines)"
like "$(head -1 "$work/acme.payymo")" "^[0-9a-f]{32} H \{.*\"tenant_id\": $acme.*\"key_fingerprint\"" \
     "the header names the tenant and the key"
unlike "$(cat "$work/acme.payymo")" "GLOBEX" "no row of another tenant is in the archive"
unlike "$(cat "$work/acme.payymo")" "ACME token" "tokens stay ciphertext"
like "$(grep -c ' T {' "$work/acme.payymo")" "^8$" "a manifest line per table: tenants, keys, users, settings, flags, domains, 2 app tables"
like "$(grep ' T {"name": "app.transactions"' "$work/acme.payymo")" '\["rate", "double precision"\]' \
     "the manifest lists column names and types"
export_tenant postgres "$globex" "$work/globex.payymo"

# One snapshot for all tables: a transaction committed while the export
# reads bank_connections (held up by a restrictive policy that sleeps once)
# must not show up in the transactions read after it.
q <<'SQL' >/dev/null
CREATE TABLE app.nap (pending boolean);
INSERT INTO app.nap VALUES (true);
ALTER TABLE app.nap OWNER TO app_owner;
SET ROLE app_owner;
CREATE FUNCTION app.nap_once() RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN IF (SELECT pending FROM app.nap) THEN PERFORM pg_sleep(2); UPDATE app.nap SET pending = false; END IF; RETURN true; END $$;
CREATE POLICY nap ON app.bank_connections AS RESTRICTIVE USING (app.nap_once());
SQL
export_tenant postgres "$acme" "$work/snapshot.payymo" &
sleep 1
q -c "BEGIN" -c "SELECT payymo.assume_tenant($acme)" \
  -c "INSERT INTO app.transactions (bank_connection_id, amount) SELECT min(id), 1 FROM app.bank_connections WHERE tenant_id = $acme" \
  -c "COMMIT" >/dev/null
wait
is "$(grep -c ' R 8 ' "$work/snapshot.payymo")" "60" "every table of an archive is read with one snapshot"
q -c "DROP POLICY nap ON app.bank_connections" -c "DROP FUNCTION app.nap_once()" -c "DROP TABLE app.nap" \
  -c "DELETE FROM app.transactions WHERE amount = 1" >/dev/null
is "$(err postgres -c "SELECT count(*) FROM payymo.export_tenant(999999)" | head -1)" \
   "ERROR:  42704: tenant 999999 does not exist" "export of a tenant that does not exist: 42704"

# ---------------------------------------------------------------------------
# Round trip into a second database
# ---------------------------------------------------------------------------
q -c "CREATE DATABASE staging" >/dev/null
schema staging >/dev/null
# Restored rows keep their ids: the second database's own rows take theirs
# from a disjoint range, as a database that takes tenants from another must.
q -d staging -c "SELECT setval(s::regclass, 100000) FROM unnest(ARRAY[
    'app.bank_connections_id_seq', 'app.transactions_id_seq',
    'payymo.tenant_settings_id_seq', 'payymo.tenant_features_id_seq']) s" >/dev/null
# A tenant of staging's own, with an explicit id, must come through untouched.
other=$(q -d staging -c "SELECT tenant_id FROM payymo.create_tenant('other', 'Other', tenant_id => 500)")
is "$other" "500" "create_tenant takes an explicit id"
fill staging other OTHER 5
other_sums=$(sums staging 500)
stage staging "$work/acme.payymo"
is "$(restore staging)" "payymo.tenants=1
payymo.api_key_store=2
payymo.users=1
payymo.tenant_settings=1
payymo.tenant_features=1
payymo.tenant_domains=1
app.bank_connections=30
app.transactions=60" "restore_tenant reports the rows it restored per table"
is "$(sums staging "$acme")" "$acme_sums" "every table's rows are identical in the second database"
is "$(sums staging 500)" "$other_sums" "the second database's own tenant is untouched"
is "$(q -d staging -c "BEGIN" -c "SELECT payymo.assume_tenant($acme)" \
        -c "SELECT count(*) FILTER (WHERE payymo.decrypt_token(access_token, 'bank_connections.access_token') = 'ACME token ' || bank_id_n)
              FROM (SELECT access_token, substr(bank_id, 6) AS bank_id_n FROM app.bank_connections WHERE tenant_id = $acme) b" -c "COMMIT" | tail -1)" \
   "30" "tokens decrypt in the second database with the same key file"
is "$(q -d staging -c "SELECT payymo.set_tenant('$acme_key', false)")" "$acme" "the tenant's API key works there"
is "$(q -d staging -c "SELECT payymo.set_session(payymo.login('acme', 'boss@acme.example', 'acme boss pw'), false)")" "$acme" \
   "the tenant's users log in there with their passwords"
is "$(q -d staging -c "BEGIN" -c "SELECT payymo.assume_tenant($acme)" \
        -c "INSERT INTO app.bank_connections (bank_id, account_id) VALUES ('new', 'new') RETURNING id > 30" \
        -c "INSERT INTO app.transactions (bank_connection_id, amount) SELECT max(id), 1 FROM app.bank_connections RETURNING id > 60" \
        -c "ROLLBACK" | grep . | tr '\n' ' ')" "t t " "sequences and identities moved past the restored ids"
is "$(q -d staging -c "SELECT tenant_id FROM payymo.create_tenant('later', 'Later')")" "501" \
   "the tenant id sequence moved past the explicit and restored ids"

before=$(all_sums staging)
like "$(restore staging)" "ERROR:  55000: tenant $acme already has rows in table" \
     "restoring over the tenant's rows is refused without replace"
is "$(all_sums staging)" "$before" "... and nothing changed"

# ---------------------------------------------------------------------------
# Restore after a mistake, in the same database, with replace
# ---------------------------------------------------------------------------
q -c "BEGIN" -c "SELECT payymo.assume_tenant($acme)" \
  -c "DELETE FROM app.transactions WHERE tenant_id = $acme AND amount > 15" \
  -c "UPDATE app.bank_connections SET status = 'broken' WHERE tenant_id = $acme" \
  -c "SELECT payymo.set_setting('brand.color', 'oops')" -c "COMMIT" >/dev/null
q -c "SELECT payymo.revoke_api_key(key_id) FROM payymo.api_keys WHERE tenant_id = $acme AND label = 'app'" >/dev/null
stage postgres "$work/acme.payymo"
like "$(restore postgres true)" "app.transactions=60" "restore with replace puts the archived rows back"
is "$(sums postgres "$globex")" "$globex_sums" "another tenant's rows are untouched by the restore"
is "$(q -c "SELECT count(*) FROM app.bank_connections WHERE tenant_id = $acme AND status = 'broken'")" "0" \
   "the mistaken rows are gone"
is "$(err postgres -c "SELECT payymo.set_tenant('$acme_key')" | head -1)" "ERROR:  28000: invalid API key" \
   "a key revoked after the export stays revoked"

# ---------------------------------------------------------------------------
# Tampered archives: each refused with 22P03 and nothing written
# ---------------------------------------------------------------------------
q -c "CREATE DATABASE empty" >/dev/null
schema empty >/dev/null
before_pg=$(all_sums postgres)
before_staging=$(all_sums staging)
tamper() { # NAME FILE PATTERN
    stage staging "$2"
    like "$(restore staging true)" "ERROR:  22P03: $3" "tampered archive refused: $1"
    stage empty "$2"
    like "$(restore empty)" "ERROR:  22P03: $3" "... also in a database without the tenant"
}
row_line=$(grep -n ' R 7 ' "$work/acme.payymo" | sed -n 3p | cut -d: -f1)
sed "${row_line}s/ACME account/ACME accounT/" "$work/acme.payymo" >"$work/t1"
tamper "one byte of a row changed" "$work/t1" "archive line $row_line fails its integrity check"
sed "${row_line}p" "$work/acme.payymo" >"$work/t2"
tamper "a row added (a line repeated)" "$work/t2" "archive line $((row_line + 1)) fails its integrity check"
sed "${row_line}d" "$work/acme.payymo" >"$work/t3"
tamper "a row removed" "$work/t3" "archive line $row_line fails its integrity check"
g_line=$(grep ' R 7 ' "$work/globex.payymo" | head -1)
G_LINE=$g_line awk -v n="$row_line" '{print} NR == n {print ENVIRON["G_LINE"]}' "$work/acme.payymo" >"$work/t4"
tamper "a row of another tenant spliced in" "$work/t4" "archive line $((row_line + 1)) fails its integrity check"
head -n -1 "$work/acme.payymo" >"$work/t5"
tamper "the end cut off" "$work/t5" "archive is incomplete"
sed "1s/\"tenant_id\": $acme/\"tenant_id\": $globex/" "$work/acme.payymo" >"$work/t6"
tamper "the header's tenant changed" "$work/t6" "archive line 1 fails its integrity check"
printf 'hello\n' >"$work/t7"
tamper "not an archive" "$work/t7" "archive is empty or incomplete"
is "$(all_sums postgres)" "$before_pg" "no tampered archive changed the first database"
is "$(all_sums staging)" "$before_staging" "no tampered archive changed the second database"
is "$(q -d empty -c "SELECT count(*) FROM payymo.tenants")" "0" "nor created a tenant in the third"

# A row of another tenant under a valid tag (as only a stolen key could
# make): refused by the restore itself, before the table's own trigger.
q -c "CREATE TABLE forged (n bigserial, line text)" >/dev/null
q -c "\\copy forged (line) FROM '$work/acme.payymo'" >/dev/null
q <<SQL >/dev/null
WITH h AS (SELECT substr(line, 36)::jsonb AS j FROM forged WHERE n = 1)
UPDATE forged f SET line = payymo._archive_line((h.j->>'key_version')::int, $acme, h.j->>'archive_id', f.n,
                                                regexp_replace(substr(f.line, 34), '^R 7 \(([0-9]+),$acme,', 'R 7 (\1,$globex,'))
  FROM h WHERE f.n = $row_line;
SQL
like "$(restore postgres true forged)" "ERROR:  42501: archive line $row_line holds a row of another tenant" \
     "a validly tagged row of another tenant is refused"
is "$(all_sums postgres)" "$before_pg" "... and nothing changed"

# ---------------------------------------------------------------------------
# Manifests against the tables here
# ---------------------------------------------------------------------------
stage empty "$work/acme.payymo"
q -d empty -c "ALTER TABLE app.transactions RENAME COLUMN rate TO fx_rate" >/dev/null
like "$(restore empty)" 'ERROR:  42703: column "rate" of table app.transactions in the archive does not exist here' \
     "a missing column is named"
q -d empty -c "ALTER TABLE app.transactions RENAME COLUMN fx_rate TO rate" \
  -c "ALTER TABLE app.transactions ALTER COLUMN rate TYPE numeric" >/dev/null
like "$(restore empty)" 'ERROR:  42804: column "rate" of table app.transactions has type numeric here and double precision in the archive' \
     "a retyped column is named"
q -d empty -c "ALTER TABLE app.transactions ALTER COLUMN rate TYPE double precision" \
  -c "ALTER TABLE app.transactions ADD COLUMN category text NOT NULL" >/dev/null
like "$(restore empty)" 'ERROR:  23502: column "category" of table app.transactions is not in the archive and has no default' \
     "a new NOT NULL column without a default is named"
is "$(q -d empty -c "SELECT count(*) FROM payymo.tenants")" "0" "... and nothing was written"
q -d empty -c "ALTER TABLE app.transactions ALTER COLUMN category SET DEFAULT 'uncategorised'" >/dev/null
like "$(restore empty)" "app.transactions=60" "a new column with a default does not stop a restore"
is "$(q -d empty -c "SELECT count(*) FROM app.transactions WHERE category = 'uncategorised'")" "60" \
   "... and takes its default"

# ---------------------------------------------------------------------------
# Atomicity: the backend dies in the middle of a replacing restore
# ---------------------------------------------------------------------------
q -c "CREATE TABLE app.sleep_log (at timestamptz)" \
  -c "ALTER TABLE app.sleep_log OWNER TO app_owner" >/dev/null
q <<'SQL' >/dev/null
SET ROLE app_owner;
CREATE FUNCTION app.slow() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO app.sleep_log VALUES (now()); PERFORM pg_sleep(60); RETURN NULL; END $$;
CREATE TRIGGER slow AFTER INSERT ON app.transactions FOR EACH STATEMENT EXECUTE FUNCTION app.slow();
SQL
q -c "BEGIN" -c "SELECT payymo.assume_tenant($acme)" -c "UPDATE app.bank_connections SET status = 'before' WHERE tenant_id = $acme" -c "COMMIT" >/dev/null
mid_sums=$(all_sums postgres)
stage postgres "$work/acme.payymo"
restore postgres true >"$work/killed.out" 2>&1 &
for _ in $(seq 1 100); do
    [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")" = 1 ] && break
    sleep 0.1
done
is "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%restore_tenant%'")" "1" \
   "the restore is stopped in the table's trigger, after its deletes and inserts"
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'" >/dev/null
wait
is "$(all_sums postgres)" "$mid_sums" "after the backend was killed every tenant has its old rows, none of the new"
q -c "DROP TRIGGER slow ON app.transactions" -c "DROP FUNCTION app.slow()" -c "DROP TABLE app.sleep_log" >/dev/null

# ---------------------------------------------------------------------------
# Who may export and restore; whose rights the table's code runs with
# ---------------------------------------------------------------------------
like "$(err postgres -U app_client -c "SELECT count(*) FROM payymo.export_tenant($acme)")" \
     "ERROR:  42501: permission denied for function export_tenant" "a client may not export a tenant"
like "$(err postgres -U app_client -c "SELECT * FROM payymo.restore_tenant('stage')")" \
     "ERROR:  42501: permission denied for function restore_tenant" "a client may not restore one"
like "$(err postgres -U app_client -c "SELECT payymo._archive_line(1, 1, 'x', 1, 'x')")" \
     "ERROR:  42501: permission denied for function _archive_line" "nor compute an integrity tag"
like "$(err postgres -U ops -c "SELECT payymo._archive_line(1, 1, 'x', 1, 'x')")" \
     "ERROR:  42501: permission denied for function _archive_line" "nor may payymo_admin"
is "$(err postgres -U ops -c "SELECT count(*) > 0 FROM payymo.export_tenant($acme)")" "t" "payymo_admin may export"
q -c "REVOKE ALL ON stage FROM PUBLIC" >/dev/null
like "$(err postgres -U ops -c "SELECT * FROM payymo.restore_tenant('stage', true)")" \
     "ERROR:  42501: permission denied for table stage" "restore reads the archive table with the caller's rights"
q -c "GRANT SELECT ON stage TO ops" >/dev/null
q <<'SQL' >/dev/null
CREATE TABLE app.who (role name);
ALTER TABLE app.who OWNER TO app_owner;
SET ROLE app_owner;
CREATE FUNCTION app.note_role() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO app.who VALUES (current_user); RETURN NULL; END $$;
CREATE TRIGGER note_role AFTER INSERT ON app.transactions FOR EACH STATEMENT EXECUTE FUNCTION app.note_role();
SQL
like "$(err postgres -U ops -c "SELECT table_name || '=' || rows FROM payymo.restore_tenant('stage', true)")" \
     "app.transactions=60" "payymo_admin may restore"
is "$(q -c "SELECT string_agg(DISTINCT role, ',') FROM app.who")" "app_owner" \
   "the table's trigger ran as the table's owner, not as a superuser"
q -c "DROP TRIGGER note_role ON app.transactions" -c "DROP TABLE app.who" >/dev/null

# ---------------------------------------------------------------------------
# An archive from another key set
# ---------------------------------------------------------------------------
stage empty "$work/globex.payymo"
q -d empty -c "SELECT payymo.create_tenant('squatter', 'Squatter', tenant_id => $globex)" >/dev/null
like "$(restore empty)" "ERROR:  23505: tenant $globex is \"squatter\" here, not \"globex\"" \
     "a restore refuses a tenant id that belongs to another tenant here"
q -d empty -c "SELECT payymo.drop_tenant($globex, force => true)" \
  -c "SELECT payymo.create_tenant('squatter', 'Squatter', tenant_id => 777)" \
  -c "BEGIN" -c "SELECT payymo.assume_tenant(777)" \
  -c "INSERT INTO app.bank_connections (id, bank_id, account_id)
      VALUES ($(q -c "SELECT min(id) FROM app.bank_connections WHERE tenant_id = $globex"), 'x', 'x')" -c "COMMIT" >/dev/null
like "$(restore empty)" "ERROR:  23505: a row of the archive has the same key as a row of another tenant in table app.bank_connections" \
     "rows whose ids another tenant holds here are refused, with the table named"
q -d empty -c "SELECT payymo.drop_tenant(777, force => true)" >/dev/null
cp "$KEYFILE" "$work/keys.saved"
make_key_file "$KEYDIR" 1 2 >/dev/null
q -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
out=$(restore empty)
like "$out" "ERROR:  22P03: archive was written with a key this server does not have" \
     "an archive from another key set is refused"
like "$out" "DETAIL:  It names root key version 2 with fingerprint [0-9a-f]{16}" "... naming the key it needs"
cp "$work/keys.saved" "$KEYFILE"
q -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
like "$(restore empty)" "app.bank_connections=20" "... and restores once the key file holds it"

# ---------------------------------------------------------------------------
# A tenant's own export
# ---------------------------------------------------------------------------
mine() { err postgres -U app_client -c "SELECT payymo.set_tenant('$1', false)" -c "SELECT * FROM payymo.export_my_data(${2:-})"; }
globex_key=$(q -c "SELECT payymo.issue_api_key($globex)")
globex_user=$(q -c "SELECT payymo.create_user($globex, 'gu@globex.example', 'globex user pw')")
out=$(mine "$globex_key" | tail -n +2)
q -c "DELETE FROM payymo.users WHERE id = $globex_user" >/dev/null
like "$out" '"email": "gu@globex.example"' "export_my_data includes the tenant's users"
unlike "$out" 'password_hash|argon2' "... without their password hashes"
is "$(grep -c . <<<"$out")" "$(q -c "SELECT 1 + 1 + 1 + 1 + 1 + (SELECT count(*) FROM app.bank_connections WHERE tenant_id = $globex)
                                          + (SELECT count(*) FROM app.transactions WHERE tenant_id = $globex)")" \
   "export_my_data returns exactly the tenant's rows (tenant, user, setting, flag, domain, connections, transactions)"
unlike "$out" "ACME|OTHER" "... none of another tenant's"
unlike "$out" '"access_token"' "... and no token ciphertext"
like "$(head -1 <<<"$out")" '^\{"row": \{"id": '"$globex"', "name": "Globex"' "... one JSON object per line, naming its table"
like "$(grep -c '"access_token": "\\\\xb1' <<<"$(mine "$globex_key" true)")" "^20$" "with_secrets => true includes the ciphertexts"
like "$(err postgres -U app_client -c "SELECT count(*) FROM payymo.export_my_data()")" \
     "ERROR:  42501: no tenant context set" "export_my_data is refused without a context"
wait_for_log "payymo security event: data_export"
like "$(grep 'security event: data_export' -A1 "$PAYYMO_LOG" | tail -1)" "tenant=$globex key_id=none role=app_client" \
     "every export is logged as a security event"
q -c "UPDATE payymo.tenants SET rate_limit_per_second = 2 WHERE id = $globex" >/dev/null
out=$(err postgres -U app_client -c "SELECT payymo.set_tenant('$globex_key', false)" \
        -c "SELECT count(*) > 0 FROM payymo.export_my_data()" -c "SELECT count(*) FROM payymo.export_my_data()")
like "$out" "ERROR:  53400" "exports count against the tenant's rate limit"

# ---------------------------------------------------------------------------
# create_tenant with an explicit id
# ---------------------------------------------------------------------------
like "$(err postgres -c "SELECT payymo.create_tenant('again', 'Again', tenant_id => $acme)")" \
     "ERROR:  23505: tenant $acme already exists" "an id that is taken is refused"
like "$(err postgres -c "SELECT payymo.create_tenant('zero', 'Zero', tenant_id => 0)")" \
     "ERROR:  22023: invalid tenant id 0" "a non-positive id is refused"
q -c "SELECT payymo.create_tenant('big', 'Big', tenant_id => 9000)" >/dev/null
is "$(q -c "SELECT tenant_id FROM payymo.create_tenant('next', 'Next')")" "9001" "the next tenant comes after an explicit id"
like "$(err staging -c "SELECT payymo.create_tenant('acme', 'Acme again')")" 'ERROR:  23505: tenant slug "acme" is already taken' \
     "slugs stay unique"

done_testing
