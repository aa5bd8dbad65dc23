#!/usr/bin/env bash
# The Debian package: `make deb` builds postgresql-15-payymo with
# pg_buildext; apt-get installs it; the pgTAP suites and pg_regress pass
# against the installed files; apt-get removes it without leaving any.
# Restores the `make install` of the source tree afterwards.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

restore() { build_and_install "$(mktemp)" >/dev/null 2>&1; }
trap restore EXIT

rm -rf dist
out=$(test/deb.sh 2>&1)
ok $? "make deb builds the package"
deb=$(ls dist/postgresql-15-payymo_*_amd64.deb 2>/dev/null | head -1)
[ -n "$deb" ]
ok $? "dist/ holds postgresql-15-payymo ($deb)"
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
for f in lib/payymo.so extension/payymo.control extension/payymo--0.1.0.sql \
         extension/payymo--0.2.0.sql extension/payymo--0.1.0--0.2.0.sql \
         extension/payymo--0.3.0.sql extension/payymo--0.2.0--0.3.0.sql; do
    like "$contents" "postgresql/15/$f$" "the package holds $f"
done
like "$(dpkg-deb -f "$deb" Depends)" "libsodium23" "it depends on libsodium's runtime"

# Files of an earlier `make install` are not any package's: remove them, so
# that what is tested below is the package's.
make -s uninstall >/dev/null 2>&1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "./$deb" >/dev/null 2>&1
ok $? "apt-get install ./$deb"
is "$(dpkg-query -W -f='${Status}' postgresql-15-payymo)" "install ok installed" "dpkg knows it as installed"
is "$(dpkg -S "$(pg_config --pkglibdir)/payymo.so" | cut -d: -f1)" "postgresql-15-payymo" \
    "payymo.so belongs to the package"

log=$(mktemp)
PAYYMO_INSTALLED=1 test/run.sh regress test/pgtap/*.sql >"$log" 2>&1
rc=$?
grep -E '^\s*not ok|FAILED' "$log" | sed 's/^/# /'
ok $rc "pg_regress and the pgTAP suites pass against the installed package ($(tail -1 "$log"))"
rm -f "$log"

DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq postgresql-15-payymo >/dev/null 2>&1
ok $? "apt-get remove postgresql-15-payymo"
left=$(ls "$(pg_config --pkglibdir)"/payymo.so "$(pg_config --sharedir)"/extension/payymo* 2>/dev/null)
is "$left" "" "no file of payymo is left behind"

done_testing
