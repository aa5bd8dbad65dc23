#!/usr/bin/env bash
# payymo.key_file: every kind of bad key file raises 55000 with a hint at
# use, no key bytes ever reach the server log, and a reload (SIGHUP) makes
# a running session pick up a new key version and drop a removed one.
# Starts its own cluster (library not preloaded: the keys load lazily).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh


keyed_cluster_start 1 || exit 1
keydir=$KEYDIR keyfile=$KEYFILE
tenant=$(q -c "SELECT tenant_id FROM payymo.create_tenant('keyfile-t', 'Key File T')")

# Every key written to any key file in this test, to grep the log for.
allhex=$keydir/all-hex
: >"$allhex"
key() { local h; h=$(random_key_hex); echo "$h" >>"$allhex"; printf '%s' "$h"; }

# write_keys MODE TEXT: replace the key file's content, keeping its owner.
write_keys() {
    printf '%b' "$2" >"$keyfile"
    chmod "$1" "$keyfile"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$keyfile"
    return 0
}

set_key_file() { q -c "ALTER SYSTEM SET payymo.key_file = '$1'" -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3; }

status() { psql -X -q -A -t -v VERBOSITY=verbose -c "SELECT version FROM payymo.key_status()" 2>&1 | grep -v '^LOCATION:'; }
encrypt() {
    psql -X -q -A -t -v VERBOSITY=verbose \
        -c "SELECT payymo.assume_tenant($tenant, false)" \
        -c "SELECT payymo.encrypt_token('marker')" 2>&1 | grep -v '^LOCATION:'
}

# check NAME REGEX: key_status() and encrypt_token() both fail with 55000,
# the expected message and a hint.
check() {
    local out
    out=$(status)
    like "$out" "^ERROR:  55000: $2" "$1: key_status() raises 55000 ($2)"
    like "$out" "HINT:  .*payymo.key_file" "$1: with a hint"
    out=$(encrypt)
    like "$out" "ERROR:  55000: $2" "$1: encrypt_token() raises 55000"
}

# The good file first.
write_keys 600 "1:$(key)\n"
set_key_file "$keyfile"
is "$(status)" "1" "a valid key file loads"

rm -f "$keyfile"
check "missing file" "token key file does not exist"

write_keys 640 "1:$(key)\n"
check "group-readable file (0640)" "token key file is accessible by group or others"
write_keys 604 "1:$(key)\n"
check "other-readable file (0604)" "token key file is accessible by group or others"

write_keys 600 ""
check "empty file" "token key file is empty"
write_keys 600 "# only a comment\n\n"
check "comments only" "token key file is empty"

write_keys 600 "1:$(key)\nthis is not a key line\n"
check "malformed line" "token key file has an invalid line"
write_keys 600 "0:$(key)\n"
check "version 0" "token key file has an invalid line"
write_keys 600 "256:$(key)\n"
check "version 256" "token key file has an invalid line"
write_keys 600 "1:$(key)\n1:$(key)\n"
check "duplicate version" "token key file has a duplicate key version"
h=$(key)
write_keys 600 "1:${h:0:63}\n"
check "63 hex characters" "token key file has an invalid line"
write_keys 600 "1:${h}00\n"
check "66 hex characters" "token key file has an invalid line"
write_keys 600 "1:${h:0:62}zz\n"
check "non-hex characters" "token key file has an invalid line"

out=$(status)
like "$out" "DETAIL:  Line 1: A key must be exactly 64 hexadecimal characters" "the detail names the line and the rule"

set_key_file ""
check "setting empty" "payymo.key_file is not set"
set_key_file "relative/payymo.keys"
check "relative path" "token key file must be an absolute path outside the data directory"
write_keys 600 "1:$(key)\n"
cp -p "$keyfile" "$PGDATA_DIR/payymo.keys"
set_key_file "$PGDATA_DIR/payymo.keys"
check "file inside the data directory" "token key file must be an absolute path outside the data directory"

# Symbolic links: the file itself may not be one, and a path through a
# linked directory that resolves into the data directory is refused too.
write_keys 600 "1:$(key)\n"
ln -sfn "$keyfile" "$keydir/link.keys"
set_key_file "$keydir/link.keys"
check "symbolic link to the key file" "token key file is a symbolic link"
ln -sfn "$PGDATA_DIR" "$keydir/datadir-link"
set_key_file "$keydir/datadir-link/payymo.keys"
check "path through a directory link into the data directory" \
    "token key file must be an absolute path outside the data directory"
mkdir -p "$keydir/sub"
set_key_file "$keydir/sub/../$(basename "$keyfile")"
is "$(status)" "1" "control: a path with .. that resolves outside the data directory works"
rm -f "$keydir/link.keys" "$keydir/datadir-link"

# A reload with a broken file fails closed in every backend, running or new
# (README: keys are loaded per backend, so there is no last good key ring
# that every backend shares).
write_keys 600 "1:$(key)\nbroken line\n"
set_key_file "$keyfile"
check "a broken file after a reload" "token key file has an invalid line"

# Back to a good file, for the reload test.
v1=$(key)
write_keys 600 "1:$v1\n"
set_key_file "$keyfile"
is "$(status)" "1" "the key file is usable again after fixing it and reloading"

# SIGHUP: one session, the file changes between its statements.
v2=$(key)
cat >"$keydir/add-v2.sh" <<SH
printf '2:%s\n' '$v2' >>'$keyfile'
SH
cat >"$keydir/drop-v1.sh" <<SH
printf '2:%s\n' '$v2' >'$keyfile'
SH
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 2>&1 <<SQL
SELECT payymo.assume_tenant($tenant, false);
CREATE TABLE t (c bytea);
INSERT INTO t SELECT payymo.encrypt_token('old key token');
SELECT 'before:' || string_agg(version::text, ',' ORDER BY version) FROM payymo.key_status();
\! sh '$keydir/add-v2.sh'
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT 'after:' || string_agg(version::text, ',' ORDER BY version) FROM payymo.key_status();
SELECT 'new token version:' || payymo.token_key_version(payymo.encrypt_token('x'));
SELECT 'old token:' || payymo.decrypt_token(c) FROM t;
\! sh '$keydir/drop-v1.sh'
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT 'dropped:' || string_agg(version::text, ',' ORDER BY version) FROM payymo.key_status();
\set ON_ERROR_STOP 0
\set VERBOSITY verbose
SELECT payymo.decrypt_token(c) FROM t;
SQL
)
like "$out" "before:1" "before the reload the session has version 1"
like "$out" "after:1,2" "pg_reload_conf() makes the running session load version 2"
like "$out" "new token version:2" "the new version encrypts"
like "$out" "old token:old key token" "the old version still decrypts"
like "$out" "dropped:2" "a version removed from the file is gone after the next reload"
like "$out" "ERROR:  22023: token key version 1 is not loaded" "its tokens then fail with 22023"
ok "$(wait_for_log 'payymo security event: decrypt_failed'; echo $?)" "a failed decrypt logs a decrypt_failed security event"

# The log: reasons and the path, never key bytes.
sleep 0.3
like "$(cat "$PAYYMO_LOG")" "Key file \"$keyfile\": group or other permissions" "the server log names the file and the reason"
leaked=0
while read -r h; do
    [ -z "$h" ] && continue
    grep -qiF -- "${h:0:16}" "$PAYYMO_LOG" && leaked=$((leaked + 1))
done <"$allhex"
is "$leaked" "0" "no key (not even its first 8 bytes in hex) appears in the server log"
is "$(wc -l <"$allhex" | tr -d ' ')" "$(sort -u "$allhex" | wc -l | tr -d ' ')" "every key written was distinct (the grep had $(wc -l <"$allhex" | tr -d ' ') keys to look for)"

done_testing
