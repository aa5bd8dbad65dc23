#!/usr/bin/env bash
# `make test-extended`: the reliability suite.  Builds and installs like
# test/run.sh, then runs test/extended/*.t with prove; each script starts
# its own throwaway cluster (and PgBouncer), so they need nothing else:
#   pooler.t   isolation through PgBouncer in transaction pooling mode, and
#              the session-scope hazard the README warns about
#   drivers.t  the same from psycopg2 and node-postgres, direct and pooled
#   soak.t     concurrent mixed load with revocations (PAYYMO_SOAK_SECONDS, 60)
#   crash.t    SIGKILL of the postmaster during writes, then recovery checks
#   fuzz.t     libFuzzer on the key, key-file and token parsers (PAYYMO_FUZZ_SECONDS, 30 each)
#   sanitize.t the pgTAP suites against a server under valgrind memcheck
#   keyprobe.t set_tenant takes as long for unknown key ids as for known ones
# Ends with one line "N passed, N failed"; exit status 0 only if nothing
# failed.  With arguments, runs only those scripts.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

files=(test/extended/*.t)
[ $# -gt 0 ] && files=("$@")

out=$(mktemp -d /tmp/payymo-ext.XXXXXX)
trap 'rm -rf "$out"' EXIT
build_step "$out"

echo "== extended tests"
prove -v "${files[@]}" 2>&1 | tee "$out/prove.log"
rc=${PIPESTATUS[0]}

count_tap "$out/prove.log" "$rc"

summary
