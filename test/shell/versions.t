#!/usr/bin/env bash
# One version everywhere: payymo.control, the Makefile, META.json, the
# Debian changelog and CHANGELOG.md name the same release, and every
# released version has its install script and an upgrade path to it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/shell/tap.sh

control=$(sed -n "s/^default_version = '\(.*\)'/\1/p" payymo.control)
is "$(sed -n 's/^EXTVERSION = //p' Makefile)" "$control" "the Makefile builds the control file's default version"
is "$(python3 -c "import json; print(json.load(open('META.json'))['version'])")" "$control" "META.json"
is "$(python3 -c "import json; print(json.load(open('META.json'))['provides']['payymo']['version'])")" "$control" \
    "META.json's provides"
is "$(sed -n '1s/^payymo (\([^)]*\)).*/\1/p' debian/changelog)" "$control" "debian/changelog"
is "$(grep -m1 '^## ' CHANGELOG.md | sed 's/^## \([^ ]*\).*/\1/')" "$control" "CHANGELOG.md's newest entry"
for script in sql/payymo--*--*.sql; do
    to=${script##*--}
    to=${to%.sql}
    [ -f "sql/payymo--$to.sql" ] || grep -q "sql/payymo--\$(EXTVERSION).sql" Makefile
    ok $? "$(basename "$script"): the version it leads to is installable"
done

done_testing
