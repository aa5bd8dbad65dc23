#!/usr/bin/env bash
# `make deb`: builds postgresql-<version>-payymo for each PostgreSQL server
# development package installed (Debian's pg_buildext, debian/), from a
# copy of the working tree, and puts the packages into dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for p in debhelper postgresql-server-dev-all dpkg-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

version=$(dpkg-parsechangelog -S Version)
work=$(mktemp -d /tmp/payymo-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/payymo-$version"
tar --exclude=.git --exclude=dist --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
    --exclude=.build-pg-config -cf - . | tar -xf - -C "$work/payymo-$version"
(cd "$work/payymo-$version" && make -s clean >/dev/null 2>&1 || true)
(cd "$work/payymo-$version" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log"; exit 1; }
mkdir -p dist
cp "$work"/*.deb dist/
ls dist/*.deb
