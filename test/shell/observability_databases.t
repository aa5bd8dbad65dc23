#!/usr/bin/env bash
# Statistics and rate limits are per database: tenant ids start at 1 in
# every database, so shared memory keys everything by (database, tenant), as
# pg_stat_statements keys by dbid.  Runs against the preloaded cluster of
# test/run.sh, with two databases of its own.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

for db in stats_a stats_b; do
    q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
    q -d $db -c "CREATE EXTENSION payymo"
done
key_a=$(q -d stats_a -c "SELECT api_key FROM payymo.create_tenant('one', 'One in A')")
key_b=$(q -d stats_b -c "SELECT api_key FROM payymo.create_tenant('one', 'One in B')")
is "$(q -d stats_a -c "SELECT id FROM payymo.tenants")|$(q -d stats_b -c "SELECT id FROM payymo.tenants")" "1|1" \
    "control: both databases have a tenant 1"
for db in stats_a stats_b; do
    q -d $db -c "UPDATE payymo.tenants SET rate_limit_per_second = 2"
done
client() { psql -X -A -t -v VERBOSITY=verbose -U payymo_client -d "$@" 2>&1 | grep -v '^LOCATION:'; }

# Tenant 1 of stats_a spends its bucket ...
out=$(client stats_a -c "BEGIN" -c "SELECT payymo.set_tenant('$key_a')" -c "COMMIT" \
                     -c "BEGIN" -c "SELECT payymo.set_tenant('$key_a')" -c "COMMIT" \
                     -c "BEGIN" -c "SELECT payymo.set_tenant('$key_a')" -c "COMMIT")
like "$out" "ERROR:  53400: rate limit exceeded for tenant 1" "control: stats_a's tenant 1 exhausts its bucket of 2"
# ... which is not stats_b's tenant 1's bucket.
out=$(client stats_b -c "BEGIN" -c "SELECT payymo.set_tenant('$key_b')" -c "COMMIT")
is "$out" "BEGIN
1
COMMIT" "tenant 1 of another database is not rate limited by it"

# Statements counted in stats_a show in stats_a only.
client stats_a -c "SELECT pg_sleep(1.1)" -c "BEGIN" -c "SELECT payymo.set_tenant('$key_a')" \
       -c "SELECT 1" -c "SELECT 2" -c "SELECT 3" -c "COMMIT" >/dev/null
is "$(q -d stats_b -c "SELECT coalesce(sum(statements), 0) FROM payymo.tenant_stats WHERE tenant_id = 1")" "1" \
    "stats_b's view counts only stats_b's statements for tenant 1"
ok "$([ "$(q -d stats_a -c "SELECT statements FROM payymo.tenant_stats WHERE tenant_id = 1")" -ge 4 ]; echo $?)" \
    "stats_a's view counts stats_a's"
is "$(q -d stats_a -c "SELECT count(DISTINCT datid) FROM payymo.tenant_stats() WHERE tenant_id = 1
                        AND datid IN (SELECT oid FROM pg_database WHERE datname IN ('stats_a', 'stats_b'))")" "2" \
    "the function shows every database's entries, each with its datid"
q -d stats_b -c "SELECT payymo.tenant_stats_reset()" >/dev/null
ok "$([ "$(q -d stats_a -c "SELECT statements FROM payymo.tenant_stats WHERE tenant_id = 1")" -ge 4 ]; echo $?)" \
    "a reset in stats_b leaves stats_a's counters alone"

for db in stats_a stats_b; do q -c "DROP DATABASE $db"; done
done_testing
