#!/usr/bin/env bash
# payymo.stats_max_tenants bounds the statistics table: a cluster of its own
# with the minimum, 10, and 15 tenants; the least recently active go first.
# The same cluster runs without the key cache (payymo.key_cache_size = 0).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

cluster_start "shared_preload_libraries = 'payymo'" "payymo.stats_max_tenants = 10" \
    "payymo.key_cache_size = 0" >/dev/null \
    || { echo "1..0 # cluster did not start"; exit 1; }
trap cluster_stop EXIT

is "$(q -c "SHOW payymo.stats_max_tenants")" "10" "the setting took effect"
out=$(q -v VERBOSITY=terse -c "ALTER SYSTEM SET payymo.stats_max_tenants = 9" 2>&1)
like "$out" "22023|outside the valid range" "10 is the minimum"

q -c "CREATE EXTENSION payymo" >/dev/null
for i in $(seq 1 15); do
    q -c "SELECT payymo.create_tenant('ten-$i', 'Tenant $i')" >/dev/null
done

# Tenants 1..10 act in order (each a moment apart), filling the table.
for i in $(seq 1 10); do
    q -c "SELECT payymo.assume_tenant(id, false) FROM payymo.tenants WHERE slug = 'ten-$i'" -c "SELECT 1" >/dev/null
done
is "$(q -c "SELECT count(*) FROM payymo.tenant_stats")" "10" "ten active tenants, ten entries"

# Tenant 1 acts again, then 11 arrives: the least recently active (2) goes.
q -c "SELECT payymo.assume_tenant(id, false) FROM payymo.tenants WHERE slug = 'ten-1'" -c "SELECT 1" >/dev/null
q -c "SELECT payymo.assume_tenant(id, false) FROM payymo.tenants WHERE slug = 'ten-11'" -c "SELECT 1" >/dev/null
is "$(q -c "SELECT count(*) FROM payymo.tenant_stats")" "10" "the table stays at ten"
is "$(q -c "SELECT string_agg(slug, ',' ORDER BY tenant_id) FROM payymo.tenant_stats")" \
    "ten-1,ten-3,ten-4,ten-5,ten-6,ten-7,ten-8,ten-9,ten-10,ten-11" "the least recently active tenant was evicted"
is "$(q -c "SELECT statements FROM payymo.tenant_stats WHERE slug = 'ten-1'")" "4" \
    "a surviving entry keeps its counts (two assume_tenant calls, two selects)"

for i in $(seq 12 15); do
    q -c "SELECT payymo.assume_tenant(id, false) FROM payymo.tenants WHERE slug = 'ten-$i'" -c "SELECT 1" >/dev/null
done
is "$(q -c "SELECT count(*) FROM payymo.tenant_stats")" "10" "fifteen tenants, still ten entries"
is "$(q -c "SELECT count(*) FROM payymo.tenant_stats WHERE slug IN ('ten-12','ten-13','ten-14','ten-15')")" "4" \
    "the newest tenants are all there"

# A session remembers its tenant's entry between statements; when the entry
# is evicted meanwhile (and its memory given to another tenant), its next
# statements go to a new entry of its own, not into the other tenant's.
act() { q -c "SELECT payymo.assume_tenant(id, false) FROM payymo.tenants WHERE slug = 'ten-$1'" -c "SELECT 1" >/dev/null; }
{ echo "SELECT payymo.assume_tenant(id, false) FROM payymo.tenants WHERE slug = 'ten-12';"
  echo "SELECT 1;"; sleep 3; echo "SELECT 1;"; echo "SELECT 1;"; echo "SELECT 1;"; } | q >/dev/null &
sleep 1
for i in $(seq 1 10); do act "$i"; done
is "$(q -c "SELECT count(*) FROM payymo.tenant_stats WHERE slug = 'ten-12'")" "0" \
    "control: ten other tenants acting evicted the waiting session's entry"
wait
is "$(q -c "SELECT statements FROM payymo.tenant_stats WHERE slug = 'ten-12'")" "3" \
    "the session's later statements are counted in a new entry of its tenant"
is "$(q -c "SELECT count(*) FROM payymo.tenant_stats WHERE slug <> 'ten-12' AND statements NOT IN (2, 4)")" "0" \
    "and none in another tenant's entry"

# payymo.key_cache_size = 0 (this cluster): keys work, and every call reads
# the key table (it waits while the table is locked).
key=$(q -c "SELECT payymo.issue_api_key(id) FROM payymo.tenants WHERE slug = 'ten-1'")
out=$(q -c "SELECT payymo.set_tenant('$key', false) > 0" -c "SELECT pg_sleep(1.5)" \
        -c "SET statement_timeout = '1s'" -c "SELECT payymo.set_tenant('$key', false)" 2>&1 &
      sleep 0.7
      q -c "BEGIN" -c "LOCK TABLE payymo.api_key_store" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null
      wait)
is "$out" "t

ERROR:  canceling statement due to statement timeout" \
   "with payymo.key_cache_size = 0 keys are verified, and nothing is cached"

# Statistics do not survive a restart (documented).
cluster_ctl restart
is "$(q -c "SELECT count(*) FROM payymo.tenant_stats")" "0" "a restart empties the table"

done_testing
