#!/usr/bin/env bash
# Installs the Debian packages payymo needs to build and test, if missing.
# Used by `make demo` and `make test`; safe to run again.
set -euo pipefail

packages=(postgresql-15 postgresql-server-dev-15 libsodium-dev
          postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
          make gcc python3-nacl
          pgbouncer python3-psycopg2 nodejs
          clang-14 libclang-rt-14-dev valgrind)
# npm ships inside some nodejs builds (NodeSource); Debian packages it apart.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "payymo: missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
fi
echo "payymo: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
