#!/usr/bin/env bash
# Tenant isolation through real drivers, with bind parameters for keys,
# plaintexts and ciphertexts, as an application would: Python (psycopg2,
# Debian's python3-psycopg2) and Node.js (node-postgres from npm, pinned by
# test/drivers/node/package-lock.json, installed with npm ci).  Each runs the
# scenario of test/drivers/python/isolation.py directly against PostgreSQL
# and through PgBouncer in transaction pooling mode.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh
. test/extended/common.sh
trap ext_cleanup EXIT

clients=${PAYYMO_DRIVER_CLIENTS:-4}
txns=${PAYYMO_DRIVER_TXNS:-60}

ext_cluster_start >/dev/null || { echo "Bail out! cluster did not start"; exit 1; }
bouncer_start 2 || { echo "Bail out! pgbouncer did not start"; exit 1; }

(cd test/drivers/node && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$EXT_DIR/npm.log" 2>&1
rc=$?
[ "$rc" -eq 0 ] || sed 's/^/# /' "$EXT_DIR/npm.log"
is "$rc" 0 "npm ci installs node-postgres from package-lock.json"

# check_run NAME COMMAND...: run a driver, show its output, check its counts.
check_run() {
    local name=$1 out rc summary n
    shift
    out=$(timeout 300 "$@" --clients "$clients" --txns "$txns" 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed 's/^\([^#]\)/# \1/'
    summary=$(printf '%s\n' "$out" | grep '^driver=' | tail -1)
    is "$rc" 0 "$name: exit status 0"
    is "$(field violations "$summary")/$(field errors "$summary")" "0/0" \
        "$name: violations = 0, unexpected errors = 0"
    is "$(field committed "$summary")" "$((clients * txns))" "$name: all $((clients * txns)) transactions committed"
    # Every 5th transaction adds 3 that must fail (2 at first, when no
    # foreign ciphertext may exist yet).
    n=$(field refused "$summary")
    k=$((clients * ((txns + 4) / 5)))
    ok $(( !(n >= 3 * k - clients && n <= 3 * k) )) "$name: $n transactions refused as they must be"
    n=$(field tokens_checked "$summary")
    is "$n" "$((clients * txns * (txns + 2) / 4))" "$name: every token decrypted back ($n checks)"
}

direct=(--host "$EXT_DIR" --port "$PGPORT")
pooled=(--host "$BOUNCER_DIR" --port "$BOUNCER_PORT")
check_run "psycopg2, direct" "$EXT_PY" test/drivers/python/isolation.py "${direct[@]}"
check_run "psycopg2, via pgbouncer" "$EXT_PY" test/drivers/python/isolation.py "${pooled[@]}"
check_run "node-postgres, direct" node test/drivers/node/isolation.js "${direct[@]}"
check_run "node-postgres, via pgbouncer" node test/drivers/node/isolation.js "${pooled[@]}"

done_testing
