#!/usr/bin/env bash
# Concurrency soak: PAYYMO_SOAK_CLIENTS (8) clients for PAYYMO_SOAK_SECONDS
# (60) seconds on 4 tenants with 3 keys each: random reads, inserts,
# updates, deletes, token encrypt/decrypt, cross-tenant attempts and key
# revocations (test/extended/soak.py describes each).  Afterwards every row's
# tenant_id and version match the client-side log, no client ever saw a
# foreign row, every token decrypts for its own tenant only, and each revoked
# key was refused (28000) by the very next set_tenant.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh
. test/extended/common.sh
trap ext_cleanup EXIT

clients=${PAYYMO_SOAK_CLIENTS:-8}
seconds=${PAYYMO_SOAK_SECONDS:-60}

ext_cluster_start >/dev/null || { echo "Bail out! cluster did not start"; exit 1; }

out=$(timeout $((seconds + 300)) "$EXT_PY" test/extended/soak.py --host "$EXT_DIR" \
        --port "$PGPORT" --clients "$clients" --seconds "$seconds")
rc=$?
printf '%s\n' "$out" | sed 's/^\([^#]\)/# \1/'
s=$(printf '%s\n' "$out" | grep '^clients=' | tail -1)

is "$rc" 0 "soak finished: exit status 0"
is "$(field violations "$s")" 0 "violations = 0 (foreign or unknown rows, lost rows, wrong tokens, accepted revoked keys)"
is "$(field errors "$s")" 0 "no unexpected errors"
n=$(field transactions "$s")
ok $(( !(n >= clients * 10) )) "$n transactions by $clients clients in $(field seconds "$s") s"
for what in inserts updates deletes tokens_checked attacks_refused revocations; do
    n=$(field "$what" "$s")
    ok $(( !(${n:-0} > 0) )) "the mix exercised $what: ${n:-none}"
done
is "$(field revoked_refused "$s")" "$(( $(field revocations "$s") + $(field replays "$s") ))" \
    "every revocation was refused at once, and every replayed revoked key too ($(field revoked_refused "$s"))"
n=$(field final_rows_checked "$s")
ok $(( !(n > 0) )) "afterwards $n logged rows match tenant and version; $(field final_tokens_checked "$s") tokens decrypt"

# No leftovers of a stuck revocation: the server agrees with the client log.
revoked=$(q -c "SELECT count(*) FROM payymo.api_keys WHERE revoked_at IS NOT NULL")
is "$revoked" "$(field revocations "$s")" "the server shows exactly the $revoked revocations the clients made"
is "$(q -c "SELECT severity || ' ' || object || ': ' || problem FROM payymo.audit()")" "" "payymo.audit() is clean after the soak"

done_testing
