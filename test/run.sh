#!/usr/bin/env bash
# `make test`: build with warnings as errors, install, start a throwaway
# cluster with payymo preloaded, then run
#   1. pg_regress  (sql/*.sql against expected/*.out, as the superuser),
#   2. pgTAP suites (test/pgtap/*.sql, connected as the client role),
#   3. shell TAP tests (test/shell/*.t: logs, dumps, restarts, other clusters),
# and print one summary line "N passed, N failed".  Exit status 0 only if
# nothing failed.
#
# With arguments, runs only those: "regress" and/or test files, e.g.
#   test/run.sh test/pgtap/context.sql test/shell/logs.t
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

want_regress=1
pgtap_files=(test/pgtap/*.sql)
shell_files=(test/shell/*.t)
if [ $# -gt 0 ]; then
    want_regress=0 pgtap_files=() shell_files=()
    for a in "$@"; do
        case "$a" in
            regress) want_regress=1 ;;
            *.sql) pgtap_files+=("$a") ;;
            *.t) shell_files+=("$a") ;;
            *) echo "unknown test: $a" >&2; exit 2 ;;
        esac
    done
fi

out=$(mktemp -d /tmp/payymo-test.XXXXXX)
keydir=$(mktemp -d /tmp/payymo-keys.XXXXXX)
trap 'cluster_stop; rm -rf "$out" "$keydir"' EXIT

build_step "$out"

echo "== cluster"
cluster_start "shared_preload_libraries = 'payymo'" \
    "payymo.key_file = '$(make_key_file "$keydir")'" || { echo "0 passed, 1 failed"; exit 1; }

if [ "$want_regress" -eq 1 ]; then
    echo "== pg_regress"
    make -s installcheck >"$out/regress.log" 2>&1
    regress_rc=$?
    cat "$out/regress.log"
    r_ok=$(grep -cE '^test .* \.\.\. ok' "$out/regress.log")
    r_bad=$(grep -cE '^test .* \.\.\. FAILED' "$out/regress.log")
    passed=$((passed + r_ok))
    failed=$((failed + r_bad))
    if [ "$regress_rc" -ne 0 ]; then
        [ -f test/regression.diffs ] && head -100 test/regression.diffs
        [ "$r_bad" -eq 0 ] && failed=$((failed + 1))
    fi
fi

# The fixture database serves the pgTAP suites and the shell tests.
if ! { q -c "CREATE DATABASE payymo_test" && q -d payymo_test -f test/fixtures.sql >/dev/null; }; then
    echo "the test fixtures could not be loaded"
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
fi

if [ ${#pgtap_files[@]} -gt 0 ]; then
    echo "== pgTAP"
    pg_prove -v -U payymo_client -d payymo_test "${pgtap_files[@]}" >"$out/pgtap.log" 2>&1
    rc=$?
    cat "$out/pgtap.log"
    count_tap "$out/pgtap.log" "$rc"
fi

if [ ${#shell_files[@]} -gt 0 ]; then
    echo "== shell tests"
    export PAYYMO_LOG PGDATA_DIR
    prove -v "${shell_files[@]}" >"$out/shell.log" 2>&1
    rc=$?
    cat "$out/shell.log"
    count_tap "$out/shell.log" "$rc"
fi

summary
