#!/usr/bin/env bash
# Builds PostgreSQL from the Debian source package into a cache directory
# outside the checkout, once, and prints the pg_config of the build.
#
#   test/pgbuild.sh 15 cassert   15 with --enable-cassert --enable-debug
#   test/pgbuild.sh 17           17 (the trixie source package)
#   test/pgbuild.sh 18           18 (the sid source package)
#
# The cache is $PAYYMO_CACHE (default /var/cache/payymo); a finished build
# is reused until its directory is removed.  pgTAP's SQL files are copied in
# from the system's PostgreSQL 15 (they are plain SQL), so the pgTAP suites
# run against every build.  Needs root on a machine without the build
# dependencies (it installs them with apt-get); takes 6-12 minutes on 2 cores.
set -euo pipefail

version=${1:?usage: test/pgbuild.sh VERSION [cassert]}
flavour=${2:-}
cache=${PAYYMO_CACHE:-/var/cache/payymo}
name=pg$version${flavour:+-$flavour}
prefix=$cache/$name

if [ -x "$prefix/bin/pg_config" ] && [ -f "$prefix/.complete" ]; then
    echo "$prefix/bin/pg_config"
    exit 0
fi

case $version in
    15) suite=bookworm ;;
    17) suite=trixie ;;
    18) suite=sid ;;
    *) echo "unsupported version: $version" >&2; exit 2 ;;
esac

log() { echo "pgbuild: $*" >&2; }

# The deb-src entries point at the archive this machine already uses.
src_list=/etc/apt/sources.list.d/payymo-src.sources
archive=$(grep -hoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources \
              /etc/apt/sources.list 2>/dev/null | grep -v payymo | head -1 || true)
archive=${archive%/}
archive=${archive:-http://deb.debian.org/debian}
if [ ! -f "$src_list" ]; then
    cat >"$src_list" <<EOF
Types: deb-src
URIs: $archive
Suites: bookworm trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    log "added $src_list"
    apt-get update -qq
fi

needed=(dpkg-dev build-essential bison flex zlib1g-dev libreadline-dev
        pkg-config libicu-dev libssl-dev perl)
missing=()
for p in "${needed[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

work=$cache/src/$name
rm -rf "$work" "$prefix"
mkdir -p "$work"
# The upstream tarball from the source package.  A mirror may lag behind
# its index by a point release, so when apt-get cannot fetch the version
# the index names, take the newest earlier point release the pool still has
# (its .dsc, then the tarball the .dsc lists, checked against the .dsc).
fetch_orig() {
    local newest upstream minor m rev file sum
    (cd "$work" && apt-get source -qq --download-only "postgresql-$version/$suite" >/dev/null 2>&1) \
        && return 0
    newest=$(apt-cache showsrc "postgresql-$version" | awk '/^Version:/ { print $2 }' | sort -V | tail -1)
    upstream=${newest%%-*}
    minor=${upstream#*.}
    for m in $(seq "$minor" -1 0); do
        for rev in "0+deb13u1" "0+deb13u2" "1" "2" "3"; do
            file="postgresql-${version}_${version}.$m-$rev.dsc"
            curl -fsS -o "$work/$file" "$archive/pool/main/p/postgresql-$version/${file//+/%2b}" 2>/dev/null || continue
            read -r sum file < <(awk '/^Checksums-Sha256:/ { on = 1; next } on && /orig\.tar/ { print $1, $3; exit }' "$work/$file")
            curl -fsS -o "$work/$file" "$archive/pool/main/p/postgresql-$version/$file" || continue
            [ "$(sha256sum "$work/$file" | cut -d' ' -f1)" = "$sum" ] && { log "using $file"; return 0; }
        done
    done
    return 1
}
log "fetching the source of postgresql-$version ($suite)"
fetch_orig || { echo "pgbuild: no source of postgresql-$version could be fetched" >&2; exit 1; }
orig=$(ls "$work"/postgresql-"$version"_*.orig.tar.* | head -1)
tar -xf "$orig" -C "$work"
srcdir=$(find "$work" -maxdepth 1 -type d -name "postgresql-$version*" | head -1)

opts=(--prefix="$prefix" --with-icu --with-openssl --disable-tap-tests)
[ "$flavour" = cassert ] && opts+=(--enable-cassert --enable-debug CFLAGS="-O1 -g")
log "configuring ${opts[*]}"
(cd "$srcdir" && ./configure "${opts[@]}" >"$work/configure.log" 2>&1) \
    || { tail -30 "$work/configure.log" >&2; exit 1; }
log "building (make -j$(nproc)); log in $work/build.log"
# Called from `make test-matrix` or `make test-cassert`, make would inherit
# MAKELEVEL=1 and skip PostgreSQL's generated headers (they are made only
# at level 0), and a parallel build would fail: a make of its own.
unset MAKELEVEL MAKEFLAGS MFLAGS MAKEOVERRIDES
(cd "$srcdir" && make -s -j"$(nproc)" >"$work/build.log" 2>&1 \
    && make -s -C contrib/pgcrypto >>"$work/build.log" 2>&1 \
    && make -s install >>"$work/build.log" 2>&1 \
    && make -s -C contrib/pgcrypto install >>"$work/build.log" 2>&1) \
    || { tail -40 "$work/build.log" >&2; exit 1; }

# pgTAP is plain SQL: reuse the system's files.
cp /usr/share/postgresql/15/extension/pgtap* "$("$prefix/bin/pg_config" --sharedir)/extension/"
rm -rf "$work"
touch "$prefix/.complete"
chmod -R a+rX "$cache"
log "installed into $prefix"
echo "$prefix/bin/pg_config"
