#!/usr/bin/env bash
# Key rotation, as the README describes it: add a version to the key file,
# reload, re-encrypt a tenancy table's token column in batches (each row
# under its own tenant, skipping rows locked by other sessions, resumable),
# then remove the old version.  Starts its own cluster.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

keyed_cluster_start 1 || exit 1
keyfile=$KEYFILE
q -c "CREATE ROLE app LOGIN NOSUPERUSER NOBYPASSRLS" \
  -c "CREATE ROLE rotator LOGIN NOSUPERUSER NOBYPASSRLS" \
  -c "GRANT EXECUTE ON FUNCTION payymo.reencrypt_token_batch(regclass, name, text, name, integer) TO rotator" \
  -c "GRANT EXECUTE ON PROCEDURE payymo.rotate_token_column(regclass, name, text, name, integer) TO rotator" \
  -c "GRANT EXECUTE ON FUNCTION payymo.assume_tenant(bigint, boolean) TO app" >/dev/null
a=$(q -c "SELECT tenant_id FROM payymo.create_tenant('rot-a', 'A')")
b=$(q -c "SELECT tenant_id FROM payymo.create_tenant('rot-b', 'B')")

# A tenancy table set up by hand: FORCE RLS, one policy on the tenant column.
q <<SQL || exit 1
CREATE TABLE conn (
    id int PRIMARY KEY,
    org integer NOT NULL DEFAULT payymo.current_tenant(),
    access_token bytea CHECK (payymo.is_token(access_token))
);
ALTER TABLE conn ENABLE ROW LEVEL SECURITY;
ALTER TABLE conn FORCE ROW LEVEL SECURITY;
CREATE POLICY payymo_tenant_isolation ON conn
    USING (org = payymo.current_tenant()) WITH CHECK (org = payymo.current_tenant());
GRANT SELECT, INSERT, UPDATE ON conn TO app;
SQL
for t in "$a" "$b"; do
    psql -X -q -U app -v ON_ERROR_STOP=1 -c "SELECT payymo.assume_tenant($t, false)" \
        -c "INSERT INTO conn (id, access_token)
            SELECT g, payymo.encrypt_token('tok-' || g, 'conn.access_token')
              FROM generate_series($t * 1000, $t * 1000 + 24) g" >/dev/null || exit 1
done
q -c "INSERT INTO conn VALUES (1, $a, NULL)"   # NULL tokens are left alone

versions() { q -c "SELECT string_agg(v::text || ':' || n, ',' ORDER BY v) FROM (SELECT payymo.token_key_version(access_token) v, count(*) n FROM conn WHERE access_token IS NOT NULL GROUP BY 1) s"; }
is "$(versions)" "1:50" "50 tokens of two tenants under version 1"

# Step 1: add version 2 and reload.
printf '2:%s\n' "$(random_key_hex)" >>"$keyfile"
q -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3
is "$(q -c "SELECT version FROM payymo.key_status() WHERE active")" "2" "after the reload version 2 encrypts"

# Step 2: batches, with one row locked by a concurrent writer.
psql -X -q -c "BEGIN" -c "SELECT 1 FROM conn WHERE id = $((a * 1000)) FOR UPDATE" -c "SELECT pg_sleep(4)" -c "COMMIT" >/dev/null &
locker=$!
sleep 1
n1=$(psql -X -q -A -t -U rotator -c "SELECT payymo.reencrypt_token_batch('conn', 'access_token', 'conn.access_token', 'org', 20)")
is "$n1" "20" "a batch re-encrypts batch_size rows"
out=$(psql -X -q -A -t -U rotator 2>&1 <<'SQL'
SELECT payymo.reencrypt_token_batch('conn', 'access_token', 'conn.access_token', 'org', 20);
SELECT payymo.reencrypt_token_batch('conn', 'access_token', 'conn.access_token', 'org', 20);
SELECT payymo.reencrypt_token_batch('conn', 'access_token', 'conn.access_token', 'org', 20);
SQL
)
like "$(printf '%s' "$out" | grep -E '^[0-9]+$' | tr '\n' ' ')" "^20 9 0 $" "the next batches do the rest except the locked row (20, 9, then 0)"
like "$out" "WARNING:  payymo: 1 rows of (public\.)?conn.access_token are locked by other transactions" "the last batch warns that a locked row remains"
is "$(versions)" "1:1,2:49" "the locked row was skipped, not waited for"
wait "$locker"

# Resumable: the procedure commits per batch and finishes the job.
out=$(psql -X -q -A -t -U rotator -c "CALL payymo.rotate_token_column('conn', 'access_token', 'conn.access_token', 'org', 7)" 2>&1)
like "$out" "NOTICE:  payymo: re-encrypted 1 rows of (public\.)?conn.access_token" "rotate_token_column finishes the remaining row"
is "$(versions)" "2:50" "every token now uses the newest version"
is "$(q -c "SELECT count(*) FROM conn WHERE access_token IS NULL")" "1" "the NULL token stayed NULL"

# A wrong context writes nothing: the batch fails as a whole.
printf '3:%s\n' "$(random_key_hex)" >>"$keyfile"
q -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3
out=$(psql -X -q -A -t -U rotator -v VERBOSITY=verbose -c "SELECT payymo.reencrypt_token_batch('conn', 'access_token', 'wrong', 'org')" 2>&1)
like "$out" "ERROR:  22P03" "a batch with the wrong context fails with 22P03"
is "$(versions)" "2:50" "and changes nothing"
out=$(psql -X -q -A -t -U rotator -c "CALL payymo.rotate_token_column('conn', 'access_token', 'conn.access_token', 'org')" 2>&1)
is "$(versions)" "3:50" "rotating again to version 3 works"

# Step 3: remove the old versions; every row still decrypts under its tenant.
grep '^3:' "$keyfile" >"$keyfile.new" && cat "$keyfile.new" >"$keyfile" && rm -f "$keyfile.new"
q -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3
is "$(q -c "SELECT string_agg(version::text, ',') FROM payymo.key_status()")" "3" "versions 1 and 2 removed from the key file"
for t in "$a" "$b"; do
    got=$(psql -X -q -A -t -U app -c "SELECT payymo.assume_tenant($t, false)" \
        -c "SELECT count(*) FROM conn WHERE access_token IS NOT NULL AND payymo.decrypt_token(access_token, 'conn.access_token') = 'tok-' || id" | tail -n1)
    is "$got" "25" "tenant $t: all 25 tokens decrypt to their original plaintext after rotation"
done

done_testing
