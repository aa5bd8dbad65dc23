#!/usr/bin/env bash
# `make test-matrix`: the `make test` suite (pg_regress, pgTAP, shell TAP)
# against each PostgreSQL major version in PAYYMO_MATRIX (default "15 17
# 18").  15 is Debian's package; 17 and 18 are built once from the Debian
# source packages into $PAYYMO_CACHE by test/pgbuild.sh (8 minutes each the
# first time).  Prints one summary line per version, then the total
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
for v in ${PAYYMO_MATRIX:-15 17 18}; do
    if [ "$v" = 15 ]; then
        cfg=pg_config
    elif ! cfg=$(test/pgbuild.sh "$v"); then
        echo "PostgreSQL $v: could not be built"
        failed=$((failed + 1))
        continue
    fi
    log=$(mktemp /tmp/payymo-matrix.XXXXXX)
    PG_CONFIG=$cfg test/run.sh >"$log" 2>&1
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -z "$line" ] || ! grep -q ' 0 failed$' <<<"$line"; then
        grep -E '^\s*not ok|FAILED|Parse errors|Bail out' "$log" | head -40
    fi
    echo "PostgreSQL $v ($("$cfg" --version)): ${line:-the run did not finish}"
    set -- $line
    passed=$((passed + ${1:-0}))
    failed=$((failed + ${3:-1}))
    rm -f "$log"
done
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
