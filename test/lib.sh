# Shell helpers shared by the test runner, the walkthrough, the benchmarks
# and the shell tests.  Source it; it defines functions and sets nothing else.
#
# Clusters are throwaway: created in a fresh temporary directory, owned by
# the OS user postgres (PostgreSQL refuses to run as root), listening only on
# a Unix socket inside that directory -- so they never collide with another
# cluster on this machine -- and removed by cluster_stop.

# PG_CONFIG selects the PostgreSQL installation (default: the pg_config on
# PATH, the Debian packages); its binaries go first on PATH, so that psql,
# pg_prove and pg_dump match the server.
PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)
export PG_CONFIG PATH="$PG_BINDIR:$PATH"

# Run a command as the OS user postgres (or as ourselves when not root).
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# cluster_start [extra postgresql.conf lines...]
# Sets PGDATA_DIR, PGHOST, PGPORT, PGUSER, PGDATABASE and PAYYMO_LOG.
cluster_start() {
    local dir
    dir=$(mktemp -d /tmp/payymo-pg.XXXXXX)
    chmod 755 "$dir"
    chown postgres: "$dir" 2>/dev/null || true
    as_postgres "$PG_BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust \
        --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = 5432"
        echo "fsync = off"
        echo "logging_collector = on"
        echo "log_directory = 'log'"
        echo "log_filename = 'postgresql.log'"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        local line
        for line in "$@"; do echo "$line"; done
    } >>"$dir/data/postgresql.conf"
    PGDATA_DIR="$dir/data"
    PAYYMO_LOG="$dir/data/log/postgresql.log"
    export PGHOST="$dir" PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
    cluster_ctl start || { cat "$dir/data/log/"* "$dir/start.log" >&2 2>/dev/null; return 1; }
}

cluster_ctl() {
    as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$(dirname "$PGDATA_DIR")/start.log" \
        -w -t 60 "$@" >/dev/null
}

cluster_stop() {
    [ -n "${PGDATA_DIR:-}" ] || return 0
    as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$(dirname "$PGDATA_DIR")"
    PGDATA_DIR=
}

# keyed_cluster_start VERSIONS [extra postgresql.conf lines...]: a throwaway
# cluster (library not preloaded) whose payymo.key_file is a fresh key file
# with those key versions ("1 2", "1"), with payymo installed in database
# postgres.  Sets KEYDIR and KEYFILE; stops the cluster and removes the keys
# on exit.
keyed_cluster_start() {
    local versions=$1
    shift
    KEYDIR=$(mktemp -d /tmp/payymo-keys.XXXXXX)
    trap 'cluster_stop; rm -rf "$KEYDIR"' EXIT
    # shellcheck disable=SC2086
    KEYFILE=$(make_key_file "$KEYDIR" $versions)
    cluster_start "payymo.key_file = '$KEYFILE'" "$@" && q -c "CREATE EXTENSION payymo"
}

# random_key_hex: 64 hex characters (32 random bytes), a token root key.
random_key_hex() { head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# make_key_file DIR [VERSION...]: write DIR/payymo.keys with one random key
# per version (default 1 2), owned by postgres, mode 0600, DIR mode 0700;
# prints the file's path.  DIR must be outside any data directory.
make_key_file() {
    local dir=$1 file=$1/payymo.keys v
    shift
    [ $# -gt 0 ] || set -- 1 2
    mkdir -p "$dir"
    : >"$file"
    chmod 600 "$file"
    for v in "$@"; do printf '%s:%s\n' "$v" "$(random_key_hex)" >>"$file"; done
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$dir"; fi
    chmod 700 "$dir"
    echo "$file"
}

# build_and_install LOG: build with warnings as errors and install into the
# PG_CONFIG installation, cleaning first when the last build was for
# another; the lock keeps concurrent runs on one machine from installing
# half a build.
build_and_install() {
    flock /tmp/payymo-build.lock sh -c '
        stamp=.build-pg-config
        [ "$(cat $stamp 2>/dev/null)" = "$PG_CONFIG" ] || { make -s clean; echo "$PG_CONFIG" >$stamp; }
        make -s WERROR=1 && make -s install' >"$1" 2>&1 \
        && ! grep -q 'warning:' "$1"
}

# The test runners count into $passed and $failed and end with one line
# "N passed, N failed".
passed=0
failed=0

# build_step DIR: build and install (log in DIR/build.log); on failure print
# the log and the summary line, and exit 1.  PAYYMO_INSTALLED=1 skips it and
# tests the files already installed (a package, say).
build_step() {
    echo "== build"
    [ "${PAYYMO_INSTALLED:-0}" = 1 ] && { echo "(skipped: testing the installed files)"; return 0; }
    build_and_install "$1/build.log" && return 0
    cat "$1/build.log"
    echo "0 passed, 1 failed"
    exit 1
}

# summary: the runners' last line; the exit status is 0 only if nothing failed.
summary() {
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# count_tap FILE EXIT_CODE: add a TAP stream's results to $passed/$failed;
# a runner that failed without any "not ok" (a crash, a bad plan) counts once.
count_tap() {
    local ok notok
    ok=$(grep -cE '^[[:space:]]*ok [0-9]+' "$1")
    notok=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$1")
    passed=$((passed + ok))
    failed=$((failed + notok))
    if [ "$2" -ne 0 ] && [ "$notok" -eq 0 ]; then
        failed=$((failed + 1))
    fi
}

# psql that stops at the first error and prints nothing but results.
q() { psql -X -v ON_ERROR_STOP=1 -q -A -t "$@"; }
