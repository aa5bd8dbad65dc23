#!/usr/bin/env bash
# Installs the Debian packages payymo needs, if missing; safe to run again.
#   test/deps.sh            build, `make demo`, `make test`
#   test/deps.sh extended   also `make test-extended` (poolers, drivers,
#                           fuzzing, sanitizers) and `make bench`
set -euo pipefail

packages=(postgresql-15 postgresql-server-dev-15 libsodium-dev
          postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
          libssl-dev make gcc python3-nacl python3-cryptography)
if [ "${1:-}" = extended ]; then
    packages+=(postgresql-contrib pgbouncer python3-psycopg2 python3-flask python3-sqlalchemy
               clang-14 libclang-rt-14-dev valgrind
               debhelper postgresql-server-dev-all prometheus-postgres-exporter curl)
    # Node.js and npm may come from outside Debian; only install if absent.
    command -v node >/dev/null 2>&1 || packages+=(nodejs)
    command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

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
