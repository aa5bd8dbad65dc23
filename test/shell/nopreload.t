#!/usr/bin/env bash
# payymo without shared_preload_libraries: the observability objects raise
# 55000 with a hint, the core (set_tenant, current_tenant) keeps working,
# and rate limits are not enforced -- with one WARNING per backend saying so.
# Starts a cluster of its own.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

cluster_start >/dev/null || { echo "1..0 # cluster did not start"; exit 1; }
trap cluster_stop EXIT

q -c "CREATE ROLE payymo_client LOGIN" -c "CREATE EXTENSION payymo" \
  -c "GRANT pg_monitor TO payymo_client" >/dev/null
key=$(q -c "SELECT api_key FROM payymo.create_tenant('no-preload', 'No Preload')")
id=$(q -c "SELECT id FROM payymo.tenants WHERE slug = 'no-preload'")
client() { psql -X -A -t -U payymo_client -v VERBOSITY=verbose "$@" 2>&1 | grep -v '^LOCATION:'; }

is "$(q -c "SHOW shared_preload_libraries")" "" "this cluster does not preload payymo"

out=$(client -c "SELECT * FROM payymo.tenant_stats")
like "$out" "^ERROR:  55000: payymo must be loaded via \"shared_preload_libraries\"" \
    "tenant_stats raises 55000"
like "$out" "HINT:  Add payymo to shared_preload_libraries in postgresql.conf and restart the server." \
    "with a hint saying how to enable it"
out=$(q -v VERBOSITY=verbose -c "SELECT payymo.tenant_stats_reset()" 2>&1)
like "$out" "ERROR:  55000: payymo must be loaded via" "tenant_stats_reset raises 55000"
like "$out" "HINT:  Add payymo to shared_preload_libraries" "with the same hint"

out=$(client -c "SELECT payymo.set_tenant('$key', false)" -c "SELECT payymo.current_tenant()")
is "$out" "$id
$id" "set_tenant and current_tenant work without preload"

# A tenant with a limit: not enforced, and said so once per backend.
q -c "UPDATE payymo.tenants SET rate_limit_per_second = 1 WHERE id = $id"
out=$(client -c "SELECT payymo.set_tenant('$key')" -c "SELECT payymo.set_tenant('$key')" \
             -c "SELECT payymo.set_tenant('$key')")
is "$(printf '%s\n' "$out" | grep -c "^$id$")" "3" \
    "three set_tenant calls in a row pass a limit of 1/s: limits are not enforced"
is "$(printf '%s\n' "$out" | grep -c "WARNING:  55000: payymo rate limits are not enforced")" "1" \
    "one WARNING per backend says the limit is not enforced"

# Log context and the request id need no shared memory.
client -c "SET payymo.request_id = 'np-req-7'" -c "SELECT payymo.set_tenant('$key', false)" \
       -c "SELECT 1/0" >/dev/null
wait_for_log "division by zero"
like "$(grep -A1 'division by zero' "$PAYYMO_LOG")" "DETAIL:  \[payymo tenant=$id request=np-req-7\]" \
    "the log context works without preload too"

done_testing
