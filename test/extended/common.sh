# Helpers for the reliability suite (test/extended/*.t).  Source after
# test/lib.sh and test/shell/tap.sh.  Each script starts its own throwaway
# cluster with ext_cluster_start and stops it (and its pgbouncer) by a trap.
#
# The database payymo_ext holds:
#   - tenants alpha and bravo, their keys in ALPHA_KEY / BRAVO_KEY and ids in
#     ALPHA_ID / BRAVO_ID (exported, for the Python and Node clients);
#   - the client role payymo_client (LOGIN, not superuser, owns nothing, no
#     BYPASSRLS, ordinary DML grants);
#   - public.items, owned by the NOLOGIN role payymo_owner and put under
#     tenancy with payymo.enable_tenancy:
#       id (identity PK), marker uuid (client-generated), writer text,
#       payload text, version integer, token bytea, tenant_id (stamped).

EXT_DB=payymo_ext
EXT_PY=/usr/bin/python3     # Debian's python3, where python3-psycopg2 lives

# ext_cluster_start: cluster with payymo preloaded and a token key file,
# then the schema above.  Sets EXT_DIR (the cluster's temporary directory).
ext_cluster_start() {
    local keydir
    keydir=$(mktemp -d /tmp/payymo-ext-keys.XXXXXX)
    EXT_KEYDIR=$keydir
    cluster_start "shared_preload_libraries = 'payymo'" \
        "payymo.key_file = '$(make_key_file "$keydir")'" \
        "max_connections = 60" || return 1
    EXT_DIR=$(dirname "$PGDATA_DIR")
    export PGDATABASE=$EXT_DB EXT_DB
    q -d postgres -c "CREATE DATABASE $EXT_DB" || return 1
    q -f test/extended/schema.sql >"$EXT_DIR/schema.log" 2>&1 \
        || { cat "$EXT_DIR/schema.log" >&2; return 1; }
    local row
    row=$(q -c "SELECT tenant_id || ' ' || api_key FROM payymo.create_tenant('alpha', 'Alpha Ltd')") || return 1
    ALPHA_ID=${row% *} ALPHA_KEY=${row#* }
    row=$(q -c "SELECT tenant_id || ' ' || api_key FROM payymo.create_tenant('bravo', 'Bravo Ltd')") || return 1
    BRAVO_ID=${row% *} BRAVO_KEY=${row#* }
    export ALPHA_KEY BRAVO_KEY ALPHA_ID BRAVO_ID
}

# ext_cleanup: stop pgbouncer (if started) and the cluster; for traps.
ext_cleanup() {
    if [ -n "${BOUNCER_DIR:-}" ] && [ -f "$BOUNCER_DIR/pgbouncer.pid" ]; then
        kill "$(cat "$BOUNCER_DIR/pgbouncer.pid")" 2>/dev/null || true
    fi
    cluster_stop
    [ -n "${EXT_KEYDIR:-}" ] && rm -rf "$EXT_KEYDIR"
    return 0
}

# bouncer_start POOL_SIZE: pgbouncer as the OS user postgres, pool_mode =
# transaction, listening only on a Unix socket (port 6432) in its own
# directory inside the cluster's.  Databases:
#   payymo_ext  -> payymo_ext, default_pool_size = POOL_SIZE
#   payymo_one  -> payymo_ext, pool_size = 1 (for the session-scope hazard)
#   payymo_session -> payymo_ext, pool_size = 1, pool_mode = session
# server_reset_query keeps its default (DISCARD ALL), which PgBouncer does
# not apply in transaction mode.  Sets BOUNCER_DIR, BOUNCER_PORT.
bouncer_start() {
    local size=${1:-2} i
    BOUNCER_DIR=$EXT_DIR/bouncer
    BOUNCER_PORT=6432
    mkdir -p "$BOUNCER_DIR"
    printf '"payymo_client" ""\n"postgres" ""\n' >"$BOUNCER_DIR/users.txt"
    cat >"$BOUNCER_DIR/pgbouncer.ini" <<INI
[databases]
$EXT_DB = host=$EXT_DIR port=$PGPORT dbname=$EXT_DB
payymo_one = host=$EXT_DIR port=$PGPORT dbname=$EXT_DB pool_size=1
payymo_session = host=$EXT_DIR port=$PGPORT dbname=$EXT_DB pool_size=1 pool_mode=session

[pgbouncer]
listen_addr =
listen_port = $BOUNCER_PORT
unix_socket_dir = $BOUNCER_DIR
auth_type = trust
auth_file = $BOUNCER_DIR/users.txt
pool_mode = transaction
default_pool_size = $size
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
logfile = $BOUNCER_DIR/pgbouncer.log
pidfile = $BOUNCER_DIR/pgbouncer.pid
ignore_startup_parameters = extra_float_digits,options
INI
    chown -R postgres: "$BOUNCER_DIR" 2>/dev/null || true
    as_postgres pgbouncer -d "$BOUNCER_DIR/pgbouncer.ini" >"$BOUNCER_DIR/start.out" 2>&1 \
        || { cat "$BOUNCER_DIR/start.out" "$BOUNCER_DIR/pgbouncer.log" >&2; return 1; }
    for i in $(seq 1 50); do
        [ -S "$BOUNCER_DIR/.s.PGSQL.$BOUNCER_PORT" ] && return 0
        sleep 0.1
    done
    cat "$BOUNCER_DIR/pgbouncer.log" >&2
    return 1
}

# through_bouncer DB ARGS...: psql as the client role via pgbouncer.
through_bouncer() {
    local db=$1
    shift
    psql -X -q -A -t -h "$BOUNCER_DIR" -p "$BOUNCER_PORT" -U payymo_client -d "$db" "$@" 2>&1
}

# field NAME TEXT: the value of "NAME=value" in a result line.
field() { printf '%s\n' "$2" | grep -oE "(^| )$1=[^ ]*" | tail -1 | cut -d= -f2; }
