#!/usr/bin/env bash
# The shared cache of verified API keys (src/keycache.c): every change
# that must refuse a key refuses it at once in every backend, a key cached
# by one backend serves the others, and never another database.  Each
# case: a client session verifies a fresh key twice (the second time from
# the cache), an administrator changes something in another session, and
# the client's next set_tenant must see it.  Runs
# against the cluster of test/run.sh (payymo preloaded) and database
# payymo_test with its fixtures.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

db=payymo_test
admin() { q -d "$db" "$@" 2>&1; }
client() { psql -X -q -A -t -d "$db" -U payymo_client "$@" 2>&1; }
tenant=$(admin -c "SELECT tenant_id FROM payymo.create_tenant('keycache-t', 'Keycache T')")

# cached_then KEY ADMIN_SQL [CALLS]: the client verifies KEY twice, the
# administrator runs ADMIN_SQL, then the client calls set_tenant CALLS
# times (default 1) in the same session; prints the client's output.
cached_then() {
    local out; out=$(mktemp)
    { echo "SELECT payymo.set_tenant('$1', false);"; echo "SELECT payymo.set_tenant('$1', false);"
      sleep 1.5
      for _ in $(seq "${3:-1}"); do echo "SELECT payymo.set_tenant('$1', false);"; done
    } | client -v ON_ERROR_STOP=0 >"$out" &
    sleep 0.7
    admin -c "$2" >/dev/null
    wait
    sed 's/^psql:<stdin>:[0-9]*: //' "$out"; rm -f "$out"
}
new_key() { admin -c "SELECT payymo.issue_api_key($tenant, 'keycache', ${1:-NULL})"; }
id_of() { cut -d_ -f2 <<<"$1"; }

# Control: a cached key does not read the key table, so it does not wait
# for a lock on it, and the cases below test the cache's invalidation.
key=$(new_key)
key2=$(new_key)
out=$(client -c "SELECT payymo.set_tenant('$key', false)" -c "SELECT pg_sleep(1.5)" \
             -c "SET statement_timeout = '1s'" -c "SELECT payymo.set_tenant('$key', false)" \
             -c "SELECT payymo.set_tenant('$key2', false)" &
      sleep 0.7
      admin -c "BEGIN" -c "LOCK TABLE payymo.api_key_store" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null
      wait)
is "$out" "$tenant

$tenant
ERROR:  canceling statement due to statement timeout" \
   "control: while the key table is locked, a cached key is verified and an uncached one waits"

# Shared: a key verified by a session that has ended is verified from the
# cache by a new session, which does not wait for the locked key table.
key=$(new_key)
client -c "SELECT payymo.set_tenant('$key', false)" >/dev/null
out=$(client -c "SELECT pg_sleep(1.5)" -c "SET statement_timeout = '1s'" \
             -c "SELECT payymo.set_tenant('$key', false)" &
      sleep 0.7
      admin -c "BEGIN" -c "LOCK TABLE payymo.api_key_store" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null
      wait)
is "$out" "
$tenant" "a key verified in one backend is verified from the cache in another"

refused() {   # refused LABEL ADMIN_SQL_WITH_@ID@ [KEY_EXPIRY]
    local key out
    key=$(new_key "${3:-NULL}")
    out=$(cached_then "$key" "${2//@ID@/$(id_of "$key")}")
    is "$out" "$tenant
$tenant
ERROR:  invalid API key" "a cached key is refused at once after $1"
}
refused "revoke_api_key" "SELECT payymo.revoke_api_key('@ID@')"
refused "an expiry set in the table" \
    "UPDATE payymo.api_key_store SET expires_at = now() WHERE key_id = '@ID@'"
refused "the key's row was deleted" "DELETE FROM payymo.api_key_store WHERE key_id = '@ID@'"
refused "a revocation written with session_replication_role = replica" \
    "SET session_replication_role = replica;
     UPDATE payymo.api_key_store SET revoked_at = now() WHERE key_id = '@ID@'"
refused "its tenant was suspended" "SELECT payymo.suspend_tenant($tenant)"
admin -c "SELECT payymo.resume_tenant($tenant)" >/dev/null

# A revocation written by a superuser with the key cache's trigger disabled
# in the same transaction fires no trigger; its relcache invalidation makes
# the cache stale at its commit, even when the session never verified a key
# and no other session is connected to see the invalidation, and even when
# another session verified (and cached) the key again just before the
# commit, while the revocation was not visible yet (without writing
# last_used_at, which would wait for the transaction and then see its
# invalidation).
key=$(new_key)
client -c "SELECT payymo.set_tenant('$key', false)" -c "SELECT payymo.set_tenant('$key', false)" >/dev/null
admin -c "BEGIN" -c "ALTER TABLE payymo.api_key_store DISABLE TRIGGER payymo_key_cache" \
      -c "UPDATE payymo.api_key_store SET revoked_at = now() WHERE key_id = '$(id_of "$key")'" \
      -c "ALTER TABLE payymo.api_key_store ENABLE ALWAYS TRIGGER payymo_key_cache" -c "COMMIT" >/dev/null
is "$(client -c "SELECT payymo.set_tenant('$key', false)")" "ERROR:  invalid API key" \
   "a cached key is refused after a revocation written with the cache's trigger disabled"
key=$(new_key)
out=$({ sleep 0.7
        admin -c "SET payymo.key_use_interval = 0" -c "SELECT payymo.set_tenant('$key', false)"
        sleep 1.8
        client -c "SELECT payymo.set_tenant('$key', false)"; } &
      admin -c "BEGIN" -c "ALTER TABLE payymo.api_key_store DISABLE TRIGGER payymo_key_cache" \
            -c "UPDATE payymo.api_key_store SET revoked_at = now() WHERE key_id = '$(id_of "$key")'" \
            -c "ALTER TABLE payymo.api_key_store ENABLE ALWAYS TRIGGER payymo_key_cache" \
            -c "SELECT pg_sleep(1.5)" -c "COMMIT" >/dev/null
      wait)
is "$out" "$tenant
ERROR:  invalid API key" \
   "and when a session that has ended cached the key again before that revocation committed"

# An expiry that just arrives: no change to invalidate on.
key=$(new_key "now() + interval '1 second'")
out=$(cached_then "$key" "SELECT pg_sleep(0.5)")
is "$out" "$tenant
$tenant
ERROR:  invalid API key" "a cached key is refused once its expiry passes"

# A new rate limit applies at once.
key=$(new_key)
out=$(cached_then "$key" "UPDATE payymo.tenants SET rate_limit_per_second = 1 WHERE id = $tenant" 3)
like "$out" "rate limit exceeded for tenant" "a rate limit set while the key is cached applies at once"
admin -c "UPDATE payymo.tenants SET rate_limit_per_second = NULL WHERE id = $tenant" >/dev/null

# The cache answers only the right secret: a forged key with the cached
# key's id and a valid checksum is refused, in the session that cached it.
key=$(new_key)
forged=$(test/forge_key.py "$(id_of "$key")")
is "$(client -c "SELECT payymo.set_tenant('$key', false)" -c "SELECT payymo.set_tenant('$forged', false)")" \
   "$tenant
ERROR:  invalid API key" "a forged secret for a cached key id is refused"

# Nor does knowing a cached key's id and checksum characters help: another
# secret between them (so the checksum no longer matches) is refused, even
# in the session that cached the key.
key=$(new_key)
n=$((${#key} - 21 - 8))
other_secret=${key:0:21}$(printf 'a%.0s' $(seq "$n"))${key: -8}
is "$(client -c "SELECT payymo.set_tenant('$key', false)" -c "SELECT payymo.set_tenant('$other_secret', false)")" \
   "$tenant
ERROR:  invalid API key" "a cached key's id and checksum with another secret are refused"

# The cache skips computing the checksum only for the very key it verified:
# the cached key with other checksum characters (the same id and secret) is
# refused, as it is uncached.
key=$(new_key)
last=${key: -1}
if [ "$last" = a ]; then other=b; else other=a; fi
typo=${key%?}$other
is "$(client -c "SELECT payymo.set_tenant('$typo', false)")" "ERROR:  invalid API key" \
   "a key with a wrong checksum is refused"
is "$(client -c "SELECT payymo.set_tenant('$key', false)" -c "SELECT payymo.set_tenant('$typo', false)")" \
   "$tenant
ERROR:  invalid API key" "and refused just the same once the right key is cached"

# A transaction sees its own revocation before it commits.
key=$(new_key)
is "$(admin -c "SELECT payymo.set_tenant('$key', false)" -c "BEGIN" \
            -c "SELECT payymo.revoke_api_key('$(id_of "$key")')" \
            -c "SELECT payymo.set_tenant('$key', false)" -c "ROLLBACK" | tr '\n' ' ')" \
   "$tenant t ERROR:  invalid API key " \
   "a session that cached a key and revokes it refuses it in the same transaction"

# COMMIT PREPARED would run in another backend, without the invalidation.
key=$(new_key)
like "$(admin -c "BEGIN" -c "SELECT payymo.revoke_api_key('$(id_of "$key")')" -c "PREPARE TRANSACTION 'keycache'")" \
     "cannot PREPARE a transaction that changed payymo's API keys or tenants" \
     "a transaction that revokes a key cannot be prepared"

# Dropping the tenant: its keys go with it.
key=$(new_key)
out=$(cached_then "$key" "SELECT payymo.drop_tenant($tenant, true)")
is "$out" "$tenant
$tenant
ERROR:  invalid API key" "a cached key is refused at once after drop_tenant"

# The extension dropped and created again fires no trigger, and its new
# tenant 1 is another tenant: the relcache invalidation of the dropped
# tables empties the cache.
q -c "DROP DATABASE IF EXISTS payymo_keycache" -c "CREATE DATABASE payymo_keycache" >/dev/null 2>&1
kc() { q -d payymo_keycache "$@" 2>&1; }
kc -c "CREATE EXTENSION payymo" >/dev/null
key=$(kc -c "SELECT api_key FROM payymo.create_tenant('first-one', 'First')")
out=$({ echo "SELECT payymo.set_tenant('$key', false);"; echo "SELECT payymo.set_tenant('$key', false);"
        sleep 2; echo "SELECT payymo.set_tenant('$key', false);"; } |
      psql -X -q -A -t -d payymo_keycache -U payymo_client 2>&1 | sed 's/^psql:<stdin>:[0-9]*: //' &
      sleep 0.7
      kc -c "DROP EXTENSION payymo CASCADE" -c "CREATE EXTENSION payymo" \
         -c "SELECT tenant_id FROM payymo.create_tenant('second-one', 'Second')" >/dev/null
      wait)
is "$out" "1
1
ERROR:  invalid API key" "a key cached before DROP and CREATE EXTENSION does not open the new tenant 1"
q -c "DROP DATABASE payymo_keycache" >/dev/null

# Never another database's key: databases cloned from one template have the
# same key table (same oid) and tenant ids.  A key issued in one after the
# clone, and cached there, does not exist in the other.
q -c "DROP DATABASE IF EXISTS payymo_kc_a" -c "DROP DATABASE IF EXISTS payymo_kc_b" \
  -c "CREATE DATABASE payymo_kc_a" >/dev/null 2>&1
q -d payymo_kc_a -c "CREATE EXTENSION payymo" -c "SELECT payymo.create_tenant('only-here', 'Only Here')" >/dev/null
q -c "CREATE DATABASE payymo_kc_b TEMPLATE payymo_kc_a" >/dev/null
key=$(q -d payymo_kc_a -c "SELECT payymo.issue_api_key(1, 'after the clone')")
is "$(q -d payymo_kc_a -c "SELECT payymo.set_tenant('$key', false)" -c "SELECT payymo.set_tenant('$key', false)" 2>&1)" \
   "1
1" "a key is verified, and cached, in its database"
is "$(q -d payymo_kc_b -c "SELECT payymo.set_tenant('$key', false)" 2>&1)" "ERROR:  invalid API key" \
   "and refused in a database cloned from the same template, where it does not exist"
q -c "DROP DATABASE payymo_kc_a" -c "DROP DATABASE payymo_kc_b" >/dev/null

done_testing
