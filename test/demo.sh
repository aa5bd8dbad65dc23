#!/usr/bin/env bash
# `make demo`: build, install, start a throwaway cluster with payymo
# preloaded and a key file, run the walkthrough (test/demo.sql), stop.
# With PGHOST etc. already set and PAYYMO_DEMO_REUSE=1, runs against that
# cluster instead (used by test/shell/demo.t).
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

if [ "${PAYYMO_DEMO_REUSE:-0}" != 1 ]; then
    log=$(mktemp)
    build_and_install "$log" || { cat "$log"; exit 1; }
    rm -f "$log"
    keydir=$(mktemp -d /tmp/payymo-keys.XXXXXX)
    trap 'cluster_stop; rm -rf "$keydir"' EXIT
    cluster_start "shared_preload_libraries = 'payymo'" \
        "payymo.key_file = '$(make_key_file "$keydir")'" >/dev/null
fi
q -c "DROP DATABASE IF EXISTS payymo_demo" -c "CREATE DATABASE payymo_demo" 2>/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d payymo_demo -f test/demo.sql
