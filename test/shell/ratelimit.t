#!/usr/bin/env bash
# Rate limits under concurrency: 8 psql clients burst set_tenant for one
# tenant with rate_limit_per_second = N.  The bucket starts full (N tokens)
# and refills at N per second, so the total admitted must lie between N and
# N + elapsed * N (+1 for rounding) -- no lost updates between backends.
# Runs against the preloaded cluster of test/run.sh, database payymo_test.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

db=payymo_test
admin() { q -d "$db" "$@"; }
RATE=20
CLIENTS=8
CALLS=40

read -r id key < <(admin -F ' ' -c "SELECT tenant_id, api_key FROM payymo.create_tenant('burst', 'Burst Ltd')")
admin -c "UPDATE payymo.tenants SET rate_limit_per_second = $RATE WHERE id = $id"

work=$(mktemp -d /tmp/payymo-burst.XXXXXX)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$CALLS"); do echo "SELECT payymo.set_tenant('$key');"; done >"$work/burst.sql"

start=$(date +%s.%N)
for c in $(seq 1 "$CLIENTS"); do
    psql -X -A -t -d "$db" -U payymo_client -v VERBOSITY=verbose -f "$work/burst.sql" \
        >"$work/out.$c" 2>&1 &
done
wait
end=$(date +%s.%N)

admitted=$(cat "$work"/out.* | grep -c "^$id$")
refused=$(cat "$work"/out.* | grep -c "ERROR:  53400: rate limit exceeded for tenant $id$")
total=$((CLIENTS * CALLS))
limit=$(awk -v s="$start" -v e="$end" -v r="$RATE" 'BEGIN { printf "%d", r + (e - s) * r + 1 }')

is "$((admitted + refused))" "$total" "every call was either admitted or refused with 53400"
ok "$([ "$admitted" -ge "$RATE" ]; echo $?)" "the full bucket admits at least $RATE calls (got $admitted)"
ok "$([ "$admitted" -le "$limit" ]; echo $?)" \
    "no more than the bucket allows: $admitted <= $limit ($RATE + refill over the burst)"
is "$(admin -c "SELECT rate_limited FROM payymo.tenant_stats WHERE tenant_id = $id")" "$refused" \
    "tenant_stats counts every refused call"

out=$(psql -X -A -t -d "$db" -U payymo_client -f "$work/burst.sql" 2>&1)
like "$out" "HINT:  The tenant may set a context at most $RATE times per second" \
    "the error's hint names the limit"

# After a second the bucket is full again -- and no fuller after a long
# idle time: a burst gets at most the bucket's capacity plus its refill.
sleep 3
start=$(date +%s.%N)
out=$(psql -X -A -t -d "$db" -U payymo_client -f "$work/burst.sql" 2>&1)
end=$(date +%s.%N)
burst=$(printf '%s\n' "$out" | grep -c "^$id$")
limit=$(awk -v s="$start" -v e="$end" -v r="$RATE" 'BEGIN { printf "%d", r + (e - s) * r + 1 }')
ok "$([ "$burst" -ge "$RATE" ]; echo $?)" "after a pause the tenant gets a full bucket again ($burst >= $RATE)"
ok "$([ "$burst" -le "$limit" ]; echo $?)" \
    "after 3 idle seconds a burst still gets no more than the capacity: $burst <= $limit"

# NULL means unlimited.
admin -c "UPDATE payymo.tenants SET rate_limit_per_second = NULL WHERE id = $id"
out=$(psql -X -A -t -d "$db" -U payymo_client -f "$work/burst.sql" 2>&1)
is "$(printf '%s\n' "$out" | grep -c "^$id$")" "$CALLS" "without a limit every call is admitted"

done_testing
