#!/usr/bin/env bash
# Encrypted tokens are unreadable at rest: a plaintext marker written
# through encrypt_token() appears neither in the table's heap file nor in
# the WAL (raw segments and pg_waldump output).  A positive control stores
# another marker unencrypted and proves the same greps find it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

keyed_cluster_start "1 2" "full_page_writes = on" || exit 1
tenant=$(q -c "SELECT tenant_id FROM payymo.create_tenant('storage-t', 'Storage T')")

secret="SECRETMARKER$(random_key_hex | head -c 16)"
control="PLAINMARKER$(random_key_hex | head -c 16)"

q -c "CREATE TABLE tokens (id int PRIMARY KEY, token bytea NOT NULL CHECK (payymo.is_token(token)))" \
  -c "CREATE TABLE control (id int PRIMARY KEY, token bytea NOT NULL)" \
  -c "CHECKPOINT"
start_lsn=$(q -c "SELECT pg_current_wal_insert_lsn()")
q -c "SELECT payymo.assume_tenant($tenant, false)" \
  -c "INSERT INTO tokens SELECT g, payymo.encrypt_token('$secret', 'tokens.token') FROM generate_series(1, 20) g" \
  -c "INSERT INTO control SELECT g, convert_to('$control', 'UTF8') FROM generate_series(1, 20) g" \
  -c "CHECKPOINT"

end_lsn=$(q -c "SELECT pg_current_wal_insert_lsn()")

got=$(q -c "SELECT payymo.assume_tenant($tenant, false)" -c "SELECT DISTINCT payymo.decrypt_token(token, 'tokens.token') FROM tokens" | tail -n1)
is "$got" "$secret" "the encrypted rows decrypt to the marker (the test wrote what it means to)"

heap=$PGDATA_DIR/$(q -c "SELECT pg_relation_filepath('tokens')")
cheap=$PGDATA_DIR/$(q -c "SELECT pg_relation_filepath('control')")
ok "$([ -s "$heap" ] && [ -s "$cheap" ]; echo $?)" "both heap files exist and are not empty after CHECKPOINT"
ok "$(grep -qaF "$control" "$cheap"; echo $?)" "positive control: the unencrypted marker is found in its heap file"
is "$(grep -caF "$secret" "$heap")" "0" "the encrypted marker is not in the heap file"
is "$(cat "$PGDATA_DIR"/base/*/* 2>/dev/null | grep -caF "$secret")" "0" "... nor in any relation file of the cluster"

wal=$(cat "$PGDATA_DIR"/pg_wal/0000* | grep -caF "$control")
ok "$([ "$wal" -gt 0 ]; echo $?)" "positive control: the unencrypted marker is found in the raw WAL segments"
is "$(cat "$PGDATA_DIR"/pg_wal/0000* | grep -caF "$secret")" "0" "the encrypted marker is not in the raw WAL segments"

# pg_waldump describes records; it must cover the inserts into our table.
waldump=$(as_postgres "$PG_BINDIR/pg_waldump" -p "$PGDATA_DIR/pg_wal" -s "$start_lsn" -e "$end_lsn" 2>/dev/null)
filenode=$(q -c "SELECT pg_relation_filenode('tokens')")
like "$waldump" "rel [0-9]+/[0-9]+/$filenode .*|INSERT.*rel [0-9]+/[0-9]+/$filenode" "pg_waldump output covers the encrypted table's inserts"
is "$(printf '%s' "$waldump" | grep -cF "$secret")" "0" "the marker is not in pg_waldump output"
hex=$(printf '%s' "$secret" | od -An -tx1 | tr -d ' \n')
is "$(printf '%s' "$waldump" | grep -ciF "$hex")" "0" "... nor in hex"

done_testing
