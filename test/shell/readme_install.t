#!/usr/bin/env bash
# The README's install section, run as written on an existing Debian cluster
# (one this test creates with pg_createcluster, as a DBA's `15 main` would
# be), then its tutorial.  The only substitutions: the cluster's name, and
# the key file's directory (a temporary one instead of /etc/payymo).  The
# code blocks come from README.md itself (```sh install, ```sql install,
# ```sql tutorial), so the README and this test cannot drift apart.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

# The section is about Debian's PostgreSQL 15 packages.
if [ "$PG_CONFIG" != pg_config ]; then
    echo "1..0 # SKIP the install section is for Debian's PostgreSQL 15, not $PG_CONFIG"
    exit 0
fi

cluster=payymo_readme
port=$((54000 + RANDOM % 900))
keydir=$(mktemp -d /tmp/payymo-readme-keys.XXXXXX)
rmdir "$keydir"
work=$(mktemp -d /tmp/payymo-readme.XXXXXX)
cleanup() {
    pg_dropcluster --stop 15 "$cluster" >/dev/null 2>&1
    rm -rf "$keydir" "$work"
}
trap cleanup EXIT
pg_dropcluster --stop 15 "$cluster" >/dev/null 2>&1
pg_createcluster -p "$port" 15 "$cluster" >"$work/create.log" 2>&1 \
    || { cat "$work/create.log"; echo "Bail out! pg_createcluster failed"; exit 1; }
pg_ctlcluster 15 "$cluster" start || { echo "Bail out! the cluster did not start"; exit 1; }

# block KIND: the README's code blocks of that kind (e.g. "sh install"),
# with the test's cluster and key directory.
block() {
    awk -v kind="$1" '
        $0 == "```" kind { on = 1; next }
        on && /^```$/ { on = 0; next }
        on' README.md \
    | sed -e "s/15 main/15 $cluster/g" -e "s|/etc/payymo|$keydir|g"
}
psql_readme() {
    env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
        runuser -u postgres -- psql -X -h /var/run/postgresql -p "$port" -v ON_ERROR_STOP=1 "$@"
}

[ "$(block "sh install" | wc -l)" -ge 5 ]
ok $? "control: the README has the install commands"
block "sh install" >"$work/install.sh"
(cd "$(pwd)" && bash -ex "$work/install.sh") >"$work/install.log" 2>&1
ok_log $? "the install section's shell steps run" "$work/install.log"
is "$(stat -c '%U %a' "$keydir/keys")" "postgres 600" "the key file is the server user's, mode 0600"
is "$(psql_readme -A -t -c "SHOW shared_preload_libraries" -c "SHOW payymo.key_file")" "payymo
$keydir/keys" "after the restart the server preloads payymo and knows the key file"

block "sql install" | psql_readme -q >"$work/sql.log" 2>&1
ok_log $? "the install section's SQL runs as a superuser" "$work/sql.log"
is "$(psql_readme -A -t -c "SELECT count(*) FROM payymo.key_status()")" "1" "the key file loads"

block "sql tutorial" | psql_readme -A -t -v ON_ERROR_STOP=0 >"$work/tutorial.log" 2>&1
out=$(cat "$work/tutorial.log")
like "$out" "^0$" "another tenant sees none of Acme's rows"
like "$out" "ERROR:  cannot write another tenant's row into table \"bank_connections\"" \
    "a row for another tenant is refused"
like "$out" "Acme current account\|-42.50\|acme-oauth-token" "the tenant reads its rows and decrypts its token"
like "$out" "ERROR:  no tenant context set" "without a context the tables fail closed"
like "$out" "^1\|acme\|\{\}$" "the custom domain resolves to Acme"
like "$out" '^\{"row": \{"id": 1, "amount": -42.50, .*"table": "bank.transactions"\}$' \
    "the tenant exports its own rows as JSON lines"
is "$(psql_readme -A -t -c "SELECT count(*) FROM payymo.audit()")" "0" "audit() is clean after the tutorial"
is "$(grep -c ERROR "$work/tutorial.log")" "2" "exactly the two refusals the tutorial shows"

psql_readme -q -c "CREATE DATABASE migration" >/dev/null
block "sql migration" | psql_readme -d migration -A -t >"$work/migration.log" 2>&1
ok_log $? "the migration recipe runs" "$work/migration.log"
like "$(cat "$work/migration.log" | tr '\n' ' ')" "^.* 7 30 COMMIT RESET 43 \$" \
    "after the move a tenant sees its own rows, and new tenants come after the imported ids"

done_testing
