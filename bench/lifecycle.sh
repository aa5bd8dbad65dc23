#!/usr/bin/env bash
# `make bench-lifecycle`: one tenant's export_tenant / restore_tenant against
# what a DBA would otherwise run on the schema as it was before payymo:
# COPY (SELECT ... WHERE tenant_id = ...) TO, and COPY ... FROM, table by
# table.  The tenant has LIFECYCLE_ROWS rows (default 100,000) over the
# Payymo design's bank_connections and transactions, half each, beside a
# second tenant of the same size.  Prints rows per second for both, their
# ratio, and the backend's peak private memory (RssAnon, sampled every
# 20 ms) while exporting a tenant of 10,000 and of LIFECYCLE_BIG_ROWS
# (default 200,000) rows: flat memory means the two peaks are close.
#
#   bench/lifecycle.sh                 (about a minute on 2 cores)
#   LIFECYCLE_ROWS=20000 LIFECYCLE_BIG_ROWS=100000 bench/lifecycle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

ROWS=${LIFECYCLE_ROWS:-100000}
BIG=${LIFECYCLE_BIG_ROWS:-200000}

work=$(mktemp -d /tmp/payymo-bench-lifecycle.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop; rm -rf "$work"' EXIT
if [ "${BENCH_BUILD:-1}" = 1 ]; then
    build_and_install "$work/build.log" || { cat "$work/build.log"; exit 1; }
fi
cluster_start "shared_preload_libraries = 'payymo'" "shared_buffers = '256MB'" \
    "payymo.key_file = '$(make_key_file "$work/keys")'" >/dev/null

# The same two tables twice: "plain" as before payymo (tenant_id column and
# index, no row level security, no triggers), "app" under tenancy.
q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION payymo;
CREATE SCHEMA plain;
CREATE SCHEMA app;
CREATE FUNCTION pg_temp.tables(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($f$
        CREATE TABLE %1$I.bank_connections (
            id SERIAL PRIMARY KEY, tenant_id INTEGER NOT NULL,
            bank_id VARCHAR(100) NOT NULL, bank_name VARCHAR(100),
            account_id VARCHAR(100) NOT NULL, account_name VARCHAR(255),
            access_token BYTEA, refresh_token BYTEA, token_expires_at TIMESTAMP,
            status VARCHAR(20) DEFAULT 'active',
            created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            UNIQUE (tenant_id, bank_id, account_id));
        CREATE INDEX ON %1$I.bank_connections (tenant_id);
        CREATE TABLE %1$I.transactions (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id INTEGER NOT NULL,
            bank_connection_id integer NOT NULL REFERENCES %1$I.bank_connections,
            amount numeric(12, 2) NOT NULL, description text,
            booked_on date NOT NULL DEFAULT CURRENT_DATE);
        CREATE INDEX ON %1$I.transactions (tenant_id);
        CREATE INDEX ON %1$I.transactions (bank_connection_id);$f$, s);
END $$;
SELECT pg_temp.tables('plain');
SELECT pg_temp.tables('app');
SELECT payymo.enable_tenancy('app.bank_connections');
SELECT payymo.enable_tenancy('app.transactions');
CREATE TABLE stage (n bigserial, line text);
SQL

# fill N: two tenants of N rows each, in both schemas.
fill() {
    local half=$(($1 / 2))
    q >/dev/null <<SQL
SET client_min_messages = error;
TRUNCATE plain.transactions, plain.bank_connections;
DELETE FROM app.transactions;
DELETE FROM app.bank_connections;
SELECT payymo.drop_tenant(id, true) FROM payymo.tenants;
SELECT payymo.create_tenant('tenant-' || g, 'Tenant ' || g) FROM generate_series(1, 2) g;
DO \$\$
DECLARE
    t bigint;
BEGIN
    FOR t IN SELECT id FROM payymo.tenants LOOP
        PERFORM payymo.assume_tenant(t);
        INSERT INTO plain.bank_connections (tenant_id, bank_id, bank_name, account_id, account_name,
                                            access_token, token_expires_at)
        SELECT t, 'bank-' || i, 'Bank ' || (i % 50), 'acc-' || i, 'Account ' || i,
               payymo.encrypt_token('token ' || i, 'bank_connections.access_token'),
               now() + i * interval '1 minute'
          FROM generate_series(1, $half) i;
        INSERT INTO plain.transactions (tenant_id, bank_connection_id, amount, description)
        SELECT b.tenant_id, b.id, (b.id % 1000) + 0.25, 'payment ' || b.id
          FROM plain.bank_connections b WHERE b.tenant_id = t;
        INSERT INTO app.bank_connections SELECT * FROM plain.bank_connections WHERE tenant_id = t;
        INSERT INTO app.transactions OVERRIDING SYSTEM VALUE
        SELECT * FROM plain.transactions WHERE tenant_id = t;
    END LOOP;
END
\$\$;
VACUUM ANALYZE;
SQL
}

# seconds COMMAND...: wall time of a psql run, in seconds.
seconds() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
rate() { printf '%.0f' "$(echo "$1 / $2" | bc -l)"; }

fill "$ROWS"
tenant=$(q -c "SELECT min(id) FROM payymo.tenants")

# Best of three runs each.
best() { local b=999999 t i; for i in 1 2 3; do t=$(seconds "$@"); b=$(echo "if ($t < $b) $t else $b" | bc -l); done; echo "$b"; }
copy_out() {
    q -c "\\copy (SELECT * FROM plain.bank_connections WHERE tenant_id = $tenant) TO '$work/bc.copy'" \
      -c "\\copy (SELECT * FROM plain.transactions WHERE tenant_id = $tenant) TO '$work/tx.copy'"
}
export_out() { q -c "\\copy (SELECT * FROM payymo.export_tenant($tenant)) TO '$work/t.payymo'"; }
copy_in() {
    q -c "BEGIN" -c "DELETE FROM plain.transactions WHERE tenant_id = $tenant" \
      -c "DELETE FROM plain.bank_connections WHERE tenant_id = $tenant" \
      -c "\\copy plain.bank_connections FROM '$work/bc.copy'" \
      -c "\\copy plain.transactions (id, tenant_id, bank_connection_id, amount, description, booked_on) FROM '$work/tx.copy'" \
      -c "COMMIT"
}
copy_in_tenancy() {
    q -c "BEGIN" -c "SELECT payymo.assume_tenant($tenant)" \
      -c "DELETE FROM app.transactions WHERE tenant_id = $tenant" \
      -c "DELETE FROM app.bank_connections WHERE tenant_id = $tenant" \
      -c "\\copy app.bank_connections FROM '$work/bc.copy'" \
      -c "\\copy app.transactions (id, tenant_id, bank_connection_id, amount, description, booked_on) FROM '$work/tx.copy'" \
      -c "COMMIT"
}
restore_in() {
    q -c "BEGIN" -c "TRUNCATE stage" -c "\\copy stage (line) FROM '$work/t.payymo'" \
      -c "SELECT count(*) FROM payymo.restore_tenant('stage', replace => true)" -c "COMMIT"
}
t_copy_out=$(best copy_out)
t_export=$(best export_out)
t_copy_in=$(best copy_in)
t_copy_in_tenancy=$(best copy_in_tenancy)
t_restore=$(best restore_in)

echo "one tenant of $ROWS rows (bank_connections and transactions, half each), best of 3:"
printf '  %-44s %8.2f s %9s rows/s\n' \
    "COPY (SELECT ... WHERE tenant_id) TO, x2" "$t_copy_out" "$(rate "$ROWS" "$t_copy_out")" \
    "payymo.export_tenant() to a file" "$t_export" "$(rate "$ROWS" "$t_export")" \
    "DELETE + COPY FROM, x2 (one transaction)" "$t_copy_in" "$(rate "$ROWS" "$t_copy_in")" \
    "the same into the tables under tenancy" "$t_copy_in_tenancy" "$(rate "$ROWS" "$t_copy_in_tenancy")" \
    "stage + payymo.restore_tenant(replace)" "$t_restore" "$(rate "$ROWS" "$t_restore")"
printf '  export: %.2fx COPY'"'"'s throughput; restore: %.2fx (%.2fx COPY into the tables under tenancy)\n' \
    "$(echo "$t_copy_out / $t_export" | bc -l)" "$(echo "$t_copy_in / $t_restore" | bc -l)" \
    "$(echo "$t_copy_in_tenancy / $t_restore" | bc -l)"

# peak_rss N: the exporting backend's peak RssAnon (kB) for a tenant of N rows.
peak_rss() {
    local peak=0 rss pid job
    fill "$1"
    tenant=$(q -c "SELECT min(id) FROM payymo.tenants")
    : >"$work/pid"
    psql -X -q -A -t -c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(0.3)" \
         -c "\\copy (SELECT * FROM payymo.export_tenant($tenant)) TO '$work/big.payymo'" >"$work/pid" &
    job=$!
    until [ -s "$work/pid" ]; do sleep 0.01; done
    pid=$(head -1 "$work/pid")
    while kill -0 "$job" 2>/dev/null; do
        rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [ "${rss:-0}" -gt "$peak" ] && peak=$rss
        sleep 0.02
    done
    echo "$peak"
}
small=$(peak_rss 10000)
big=$(peak_rss "$BIG")
echo "exporting backend's peak private memory (RssAnon):"
printf '  %9s rows: %7s kB\n  %9s rows: %7s kB\n' 10000 "$small" "$BIG" "$big"
