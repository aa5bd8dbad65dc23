#!/usr/bin/env bash
# Run the pgTAP suites against a server whose every backend runs under
# valgrind memcheck, and fail if valgrind reports an error in payymo's code
# (or any backend crashes).  Prints TAP; exits non-zero on any failure.
#
# Why valgrind and not AddressSanitizer: Debian's PostgreSQL binaries are not
# built with ASan, so an ASan payymo.so needs libasan preloaded into the
# server, and on this platform (Debian 12, gcc 12 and clang 14 runtimes)
# every PostgreSQL binary then hangs at startup on a glibc locale lock
# (so does any program linked with gnutls, which PostgreSQL pulls in via
# libldap; gdb shows p11-kit on the stack).  Valgrind needs no build.
#
# How: the normal build of this tree is built and installed under
# /tmp/payymo-build.lock (the lock `make test` takes), and the lock is held
# until the run ends, so the library under test is this tree's.  A cluster
# is created as test/run.sh does (payymo preloaded, a key file), the
# fixtures are loaded, then the postmaster is restarted under
#   valgrind --error-limit=no --num-callers=40 --log-file=<dir>/vg.%p
# (backends are forked, so each runs under memcheck with its own log).  An
# error counts as payymo's when a payymo frame (a payymo_* function, a
# src/*.c line or payymo.so) appears in its stack above the first
# PostgreSQL frame -- errors inside PostgreSQL that merely have payymo
# further down (e.g. PostgreSQL's own regex memcpy overlap when payymo runs
# a query through SPI) are counted and shown, not failed.
#
# Limits (say them when quoting the result):
#  - PostgreSQL is not built with USE_VALGRIND, so palloc'd chunks are not
#    individually tracked: an overrun that stays inside a memory context's
#    malloc'd block, or a use of a pfree'd chunk, is NOT seen.  What is seen:
#    reads of never-written memory (including palloc'd memory), accesses
#    outside malloc'd blocks (libsodium buffers, large allocations), invalid
#    frees, and uninitialised bytes passed to system calls or branches.
#  - Only the code paths the pgTAP suites run are checked; the shell suites
#    (which start their own clusters) do not run under valgrind here.
#  - Leaks are not checked (backends exit without freeing their contexts).
#
#   PAYYMO_SANITIZE_TIMEOUT  seconds allowed for the pgTAP run (default 300)
#   PAYYMO_SANITIZE_KEEP=1   keep the valgrind logs (path printed at the end)
#   PAYYMO_VALGRIND_OPTS     extra valgrind options, e.g. --track-origins=yes
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

. test/shell/tap.sh
finish() { done_testing; exit $?; }

command -v valgrind >/dev/null || test/deps.sh extended >&2
command -v valgrind >/dev/null
ok_log $? "valgrind is installed (test/deps.sh extended)"
[ "$_tap_failed" -eq 0 ] || finish

work=$(mktemp -d /tmp/payymo-valgrind.XXXXXX)
chmod 755 "$work"
vg=$work/vg
mkdir -p "$vg"
chown postgres: "$vg" 2>/dev/null || true
keydir=$(mktemp -d /tmp/payymo-keys.XXXXXX)
cleanup() {
    cluster_stop
    rm -rf "$keydir"
    if [ "${PAYYMO_SANITIZE_KEEP:-0}" = 1 ]; then
        echo "# valgrind logs kept in $vg"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# classify DIR: print "<payymo errors> <other errors>"; payymo's error
# reports go to DIR/payymo.txt, a summary of the others to DIR/other.txt.
classify() {
    python3 - "$1" $(ls src/*.c | xargs -n1 basename) <<'PY'
import glob, os, re, sys
d, srcs = sys.argv[1], sys.argv[2:]
ours = re.compile(r'payymo|\((%s):\d+\)' % '|'.join(re.escape(s) for s in srcs))
pg = re.compile(r'\(in /usr/lib/postgresql/[^)]*/bin/postgres\)|plpgsql\.so')
mine, other = [], {}
for f in sorted(glob.glob(os.path.join(d, 'vg.*'))):
    blocks, cur = [], []
    for line in open(f, errors='replace'):
        body = re.sub(r'^==\d+== ?', '', line.rstrip('\n'))
        if body == '':
            if cur: blocks.append(cur)
            cur = []
        else:
            cur.append(body)
    if cur: blocks.append(cur)
    for b in blocks:
        frames = [l for l in b if re.match(r'\s+(at|by) 0x', l)]
        if not frames:
            continue
        hit = False
        for fr in frames:
            if ours.search(fr): hit = True; break
            if pg.search(fr): break
        if hit:
            mine.append('\n'.join([os.path.basename(f)] + b))
        else:
            key = b[0] + ' | ' + (frames[1].strip() if len(frames) > 1 else '')
            other[key] = other.get(key, 0) + 1
open(os.path.join(d, 'payymo.txt'), 'w').write('\n\n'.join(mine) + '\n')
open(os.path.join(d, 'other.txt'), 'w').write(
    ''.join('%5d  %s\n' % (c, k) for k, c in sorted(other.items(), key=lambda x: -x[1])))
print(len(mine), sum(other.values()))
PY
}

# Canary: a payymo-named overflow under the same valgrind options must be
# found and attributed to payymo, so "0 errors" below means something.
printf '%s\n' '#include <stdlib.h>' \
    'int payymo_canary(int i) { char *p = malloc(8); int r = p[8 + i]; free(p); return r; }' \
    'int main(int argc, char **argv) { return payymo_canary(argc - 1) != 0; }' >"$work/canary.c"
mkdir -p "$work/canary"
gcc -g -O0 -o "$work/canary/prog" "$work/canary.c" \
    && valgrind -q --log-file="$work/canary/vg.%p" "$work/canary/prog" >/dev/null 2>&1
read -r c_mine c_other < <(classify "$work/canary")
[ "$c_mine" = 1 ]
ok_log $? "canary: valgrind finds a heap overflow and attributes it to payymo (found $c_mine)"

exec 9>/tmp/payymo-build.lock
flock 9
make -s WERROR=1 >"$work/build.log" 2>&1 && make -s install >>"$work/build.log" 2>&1 \
    && ! grep -q 'warning:' "$work/build.log"
ok_log $? "the normal build of this tree is built and installed (lock held until the end)" "$work/build.log"
[ "$_tap_failed" -eq 0 ] || finish

cluster_start "shared_preload_libraries = 'payymo'" \
    "payymo.key_file = '$(make_key_file "$keydir")'" >"$work/start.log" 2>&1 \
    && q -c "CREATE DATABASE payymo_test" >>"$work/start.log" 2>&1 \
    && q -d payymo_test -f test/fixtures.sql >>"$work/start.log" 2>&1 \
    && cluster_ctl stop >>"$work/start.log" 2>&1
ok_log $? "cluster and fixtures ready" "$work/start.log"
[ "$_tap_failed" -eq 0 ] || finish

# shellcheck disable=SC2086
as_postgres valgrind -q --error-limit=no --num-callers=40 --log-file="$vg/vg.%p" \
    ${PAYYMO_VALGRIND_OPTS:-} \
    "$PG_BINDIR/postgres" -D "$PGDATA_DIR" >"$work/postmaster.out" 2>&1 &
up=1
for _ in $(seq 1 120); do
    pg_isready -q && { up=0; break; }
    sleep 1
done
pm=$(head -1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null)
[ "$up" -eq 0 ] && readlink "/proc/$pm/exe" | grep -q memcheck \
    && grep -q "payymo.so" "/proc/$pm/maps"
ok_log $? "the postmaster runs under memcheck with payymo.so loaded" "$work/postmaster.out"

# One file at a time: stats.sql counts the denied attempts other files make.
timeout "${PAYYMO_SANITIZE_TIMEOUT:-300}" pg_prove \
    -U payymo_client -d payymo_test test/pgtap/*.sql >"$work/pgtap.log" 2>&1
rc=$?
ok_log $rc "pgTAP suites pass with every backend under valgrind ($(grep -oE 'Tests=[0-9]+' "$work/pgtap.log"))" "$work/pgtap.log"

as_postgres "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -m fast -t 120 stop >/dev/null 2>&1
cp "$PAYYMO_LOG" "$work/server.log" 2>/dev/null
flock -u 9

read -r mine other < <(classify "$vg")
[ "$mine" -eq 0 ]
ok_log $? "no valgrind error in payymo's code ($(ls "$vg" | wc -l) processes; $other errors inside PostgreSQL itself, not payymo's)" "$vg/payymo.txt"
[ "$other" -eq 0 ] || sed 's/^/# /' "$vg/other.txt" | head -10
grep -E 'terminated by signal|was terminated by exception' "$work/server.log" >"$work/crashes.txt" 2>/dev/null
[ ! -s "$work/crashes.txt" ]
ok_log $? "no backend crashed" "$work/crashes.txt"
finish
