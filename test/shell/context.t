#!/usr/bin/env bash
# Tenant context paths that need whole sessions, the server log, other
# clusters or pg_dump.  Runs against the cluster of test/run.sh (PGHOST...,
# PAYYMO_LOG) and database payymo_test with its fixtures, and starts one
# cluster of its own without shared_preload_libraries.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh


db=payymo_test
client() { psql -X -q -A -t -d "$db" -U payymo_client "$@" 2>&1; }
admin() { q -d "$db" "$@"; }
ALPHA=$(admin -c "SELECT payymo_test.key('alpha')")
ALPHA_ID=$(admin -c "SELECT payymo_test.tenant('alpha')")

log_start=$(wc -l <"$PAYYMO_LOG")
# this test's own lines of the server log
own_log() { tail -n +"$((log_start + 1))" "$PAYYMO_LOG"; }

# --- every authentication failure is the same 28000, and clears the context.
# Revoked and expired keys belong to an active tenant, so that only the
# revocation or the expiry can refuse them; forged keys pass every format
# check (test/forge_key.py computes a valid checksum), so that only the
# stored hash can refuse them.
tenant=$(admin -c "SELECT tenant_id FROM payymo.create_tenant('context-t', 'Context T')")
revoked=$(admin -c "SELECT payymo.issue_api_key($tenant, 'revoked')")
admin -c "SELECT payymo.revoke_api_key(split_part('$revoked', '_', 2))" >/dev/null
expired=$(admin -c "SELECT payymo.issue_api_key($tenant, 'expired', now() + interval '1 hour')")
admin -c "UPDATE payymo.api_key_store SET expires_at = now() - interval '1 second'
          WHERE key_id = split_part('$expired', '_', 2)"
suspended_tenant=$(admin -c "SELECT tenant_id FROM payymo.create_tenant('context-s', 'Context S')")
suspended=$(admin -c "SELECT payymo.issue_api_key($suspended_tenant, 'suspended')")
admin -c "SELECT payymo.suspend_tenant($suspended_tenant)" >/dev/null
wrong_secret=$(test/forge_key.py "$(cut -d_ -f2 <<<"$ALPHA")")
unknown_id=$(test/forge_key.py "$(head -c10 /dev/urandom | base32 | tr 'A-Z' 'a-z' | cut -c1-16)")
badsum="pyk_aaaaaaaaaaaaaaaa_$(printf 'b%.0s' $(seq 60))"   # well-formed, bad checksum
mistyped="${ALPHA:0:40}$([ "${ALPHA:40:1}" = x ] && echo y || echo x)${ALPHA:41}"   # one secret character changed
last=${ALPHA: -1}
badcheck="${ALPHA:0:80}$([ "$last" = a ] && echo b || echo a)"   # alpha's id and secret, checksum off
overlong="$ALPHA$ALPHA"
is "$(psql -X -A -t -d "$db" -U payymo_client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" -c "COMMIT" 2>&1)" \
   "BEGIN
$ALPHA_ID
COMMIT" "control: alpha's real key works"

declare -A bad=(
    [wrong_secret]="'$wrong_secret'" [unknown_id]="'$unknown_id'" [badsum]="'$badsum'"
    [mistyped]="'$mistyped'" [badcheck]="'$badcheck'" [revoked]="'$revoked'" [expired]="'$expired'"
    [suspended]="'$suspended'" [null]="NULL" [empty]="''" [overlong]="'$overlong'"
)
for kind in wrong_secret unknown_id badsum mistyped badcheck revoked expired suspended null empty overlong; do
    out=$(client -v VERBOSITY=verbose -c "SELECT payymo.set_tenant(${bad[$kind]}, false)" \
          | grep -v '^LOCATION:')
    is "$out" "ERROR:  28000: invalid API key" "$kind key: 28000, the one generic message, nothing else"
done

# A top-level failure (not caught) drops a session context set before it.
out=$(client -c "SELECT payymo.set_tenant('$ALPHA', false)" \
             -c "SELECT payymo.set_tenant('$mistyped')" \
             -c "SELECT payymo.current_tenant()")
like "$out" "no tenant context set" \
    "a failed set_tenant clears the session context after the abort"
out=$(client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" \
             -c "SELECT payymo.set_tenant('$mistyped')" -c "ROLLBACK" \
             -c "SELECT payymo.current_tenant()")
like "$out" "no tenant context set" "a failure inside a transaction leaves no context"

# A revocation takes effect for the next set_tenant, even in a REPEATABLE
# READ transaction whose snapshot was taken before it.
rr_key=$(admin -c "SELECT payymo.issue_api_key($ALPHA_ID, 'repeatable read')")
rr_out=$(mktemp)
{ echo "BEGIN ISOLATION LEVEL REPEATABLE READ;"; echo "SELECT 'snapshot taken';"; sleep 1
  echo "SELECT payymo.set_tenant('$rr_key');"; echo "COMMIT;"; } | client >"$rr_out" &
sleep 0.5
admin -c "SELECT payymo.revoke_api_key(split_part('$rr_key', '_', 2))" >/dev/null
wait
like "$(cat "$rr_out")" "snapshot taken.*invalid API key|invalid API key" \
    "a key revoked after a REPEATABLE READ snapshot is refused in that transaction"
rm -f "$rr_out"

# Bookkeeping never fails a valid key: under REPEATABLE READ, a key whose
# row another session changed after the snapshot (its label here) and whose
# last_used_at is due would make the last_used_at write a serialization
# failure (40001); set_tenant skips that write under snapshot isolation.
admin -c "UPDATE payymo.api_key_store SET last_used_at = NULL WHERE key_id = split_part('$ALPHA', '_', 2)"
rr_out=$(mktemp)
{ echo "BEGIN ISOLATION LEVEL REPEATABLE READ;"; echo "SELECT 'snapshot taken';"; sleep 1
  echo "SELECT payymo.set_tenant('$ALPHA');"; echo "COMMIT;"; } | client >"$rr_out" &
sleep 0.5
admin -c "UPDATE payymo.api_key_store SET label = 'relabelled' WHERE key_id = split_part('$ALPHA', '_', 2)"
wait
is "$(cat "$rr_out")" "snapshot taken
$ALPHA_ID" "a valid key works in a REPEATABLE READ transaction whose snapshot predates a change of its row"
rm -f "$rr_out"
is "$(admin -c "SELECT count(last_used_at) FROM payymo.api_key_store WHERE key_id = split_part('$ALPHA', '_', 2)")" "0" \
   "under REPEATABLE READ, last_used_at is not written"

# payymo.key_use_interval: 0 writes nothing; otherwise at most once per
# interval (an hour by default).
is "$(admin -c "SHOW payymo.key_use_interval")" "1h" "last_used_at is written at most once an hour by default"
admin -c "SET payymo.key_use_interval = 0" -c "SELECT payymo.set_tenant('$ALPHA')" >/dev/null
is "$(admin -c "SELECT count(last_used_at) FROM payymo.api_key_store WHERE key_id = split_part('$ALPHA', '_', 2)")" "0" \
   "with payymo.key_use_interval = 0, last_used_at is not written"
out=$(client -c "SET payymo.key_use_interval = 0" 2>&1)
like "$out" "permission denied to set parameter" "clients cannot change it"
admin -c "SELECT payymo.set_tenant('$ALPHA')" >/dev/null
# (Time passes by moving the write back; expires_at is written as well, so
# that the key cache, which remembers the last write, reads it again.)
admin -c "UPDATE payymo.api_key_store SET last_used_at = now() - interval '2 minutes', expires_at = expires_at WHERE key_id = split_part('$ALPHA', '_', 2)"
admin -c "SET payymo.key_use_interval = '1min'" -c "SELECT payymo.set_tenant('$ALPHA')" >/dev/null
is "$(admin -c "SELECT last_used_at > now() - interval '1 minute' FROM payymo.api_key_store WHERE key_id = split_part('$ALPHA', '_', 2)")" "t" \
   "with an interval of a minute, a use two minutes after the last write writes it"

# Any failure clears the context, not only a bad key: a statement timeout
# and a cancel while set_tenant waits for a lock on the key table.  The
# timed-out call spells the key in capitals, a shape the log hook's
# redaction does not recognise: set_tenant itself must keep the statement
# out of the log, whatever error ends it.  The waiting calls present a
# second key of alpha, which this backend has not verified yet: a key it
# has is not read again (src/keycache.c), and would not wait.
ALPHA2=$(admin -c "SELECT payymo.issue_api_key($ALPHA_ID, 'second')")
lock_keys() { admin -c "BEGIN" -c "LOCK TABLE payymo.api_key_store" -c "SELECT pg_sleep($1)" -c "COMMIT" >/dev/null; }
out=$(client -c "SELECT payymo.set_tenant('$ALPHA', false)" -c "SELECT pg_sleep(2)" \
             -c "SET statement_timeout = '300ms'" -c "SELECT payymo.set_tenant(lower('${ALPHA2^^}'))" \
             -c "RESET statement_timeout" -c "SELECT payymo.current_tenant()" 2>&1 &
      sleep 1; lock_keys 4; wait)
like "$out" "canceling statement due to statement timeout" "control: set_tenant waited for the lock and timed out"
like "$out" "no tenant context set" "a statement timeout inside set_tenant clears the session context set before"
out=$(client -c "SELECT payymo.set_tenant('$ALPHA', false)" -c "SELECT pg_sleep(2)" \
             -c "SELECT payymo.set_tenant('$ALPHA2')" -c "SELECT payymo.current_tenant()" 2>&1 &
      sleep 1; lock_keys 4 &
      sleep 2.5
      admin -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
                 WHERE usename = 'payymo_client' AND wait_event_type = 'Lock'" >/dev/null
      wait)
like "$out" "canceling statement due to user request" "control: set_tenant waited for the lock and was cancelled"
like "$out" "no tenant context set" "a cancel inside set_tenant clears the session context set before"
sleep 0.5
own_log | grep -q "canceling statement due to statement timeout"
ok $? "control: the timeout is in the server log"
own_log | grep -qiF -- "${ALPHA2:21:52}"
ok $(( ! $? )) "the statement of a set_tenant cancelled or timed out, key included, is not in the log"

# ... and the same for assume_tenant: an unknown tenant, a NULL argument.
out=$(psql -X -A -t -d "$db" -U payymo_job -c "SELECT payymo.assume_tenant($ALPHA_ID, false)" \
        -c "SELECT payymo.assume_tenant(999999)" -c "SELECT payymo.current_tenant()" 2>&1)
like "$out" "tenant 999999 does not exist" "assume_tenant of an unknown tenant fails"
like "$out" "no tenant context set" "and clears the context the job had"
out=$(psql -X -A -t -d "$db" -U payymo_job -c "SELECT payymo.assume_tenant($ALPHA_ID, false)" \
        -c "SELECT payymo.assume_tenant(NULL)" -c "SELECT payymo.current_tenant()" 2>&1)
like "$out" "tenant_id must not be null" "assume_tenant(NULL) fails"
like "$out" "no tenant context set" "and clears the context too"

# A transaction-scoped context outside a transaction block ends with the
# statement: a warning, as SET LOCAL gives.
out=$(client -v VERBOSITY=verbose -c "SELECT payymo.set_tenant('$ALPHA')" | grep -v '^LOCATION:')
like "$out" "WARNING:  25P01: payymo.set_tenant\(\) outside a transaction block sets the tenant for this statement only" \
    "set_tenant in autocommit warns that the context ends with the statement"
out=$(client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" -c "COMMIT")
unlike "$out" "WARNING" "inside BEGIN there is no warning"

# --- the server log never holds a key (this test's lines only)
wait_for_log "invalid API key"
ok $? "failed set_tenant calls are logged"
leaked=0
for kind in wrong_secret unknown_id badsum mistyped badcheck revoked expired suspended overlong; do
    k=${bad[$kind]//\'/}
    own_log | grep -qF -- "${k:21:52}" && leaked=1
done
ok $((leaked)) "no presented key (nor its secret part) appears in the server log"
# After each "invalid API key" entry, that backend's continuation lines
# (DETAIL, HINT, CONTEXT, STATEMENT) must not include the statement.
stmt=$(own_log | awk '
    /ERROR:  invalid API key/ { match($0, /\[[0-9]+\]/); pid = substr($0, RSTART, RLENGTH); watch = 1; next }
    watch && index($0, pid) {
        if ($0 ~ /STATEMENT:/) print
        if ($0 !~ /(DETAIL|HINT|CONTEXT|STATEMENT):/) watch = 0
    }')
is "$stmt" "" "the statement of a failed set_tenant is hidden from the log"
# Positive control: an ordinary failing statement with a marker IS logged,
# so the grep above would have found a leaked key.
client -c "SELECT 'pyk_control_marker'::int" >/dev/null
wait_for_log "pyk_control_marker"
own_log | grep -q "pyk_control_marker"
ok $? "control: an ordinary failed statement's text does reach the log"

# --- who an event is charged to: a key's tenant only once its secret matched
events=$(own_log | grep -A1 'payymo security event: bad_api_key' | grep 'DETAIL:')
wrong_id=$(cut -d_ -f2 <<<"$wrong_secret")
like "$events" "tenant=none key_id=$wrong_id role=payymo_client" \
    "a real key id with a wrong secret is logged with the key id, not charged to its tenant"
unlike "$(grep -F "key_id=$wrong_id" <<<"$events")" "tenant=[0-9]" "the probe of alpha's key id names no tenant"
like "$events" "tenant=$tenant key_id=$(cut -d_ -f2 <<<"$revoked") " \
    "a revoked key (secret matched) is charged to its tenant"
like "$events" "tenant=$suspended_tenant key_id=$(cut -d_ -f2 <<<"$suspended") " \
    "a key of a suspended tenant is charged to it"
like "$events" "tenant=none key_id=none role=payymo_client client=local" \
    "a malformed key has no key id"

# --- DISCARD ALL, and the context is per-session
out=$(client -c "SELECT payymo.set_tenant('$ALPHA', false)" -c "DISCARD ALL" \
             -c "SELECT payymo.current_tenant()")
like "$out" "no tenant context set" "DISCARD ALL clears a session context"
out=$(client -c "SELECT payymo.current_tenant()")
like "$out" "no tenant context set" "a new session starts without context"

# --- startup options
out=$(PGOPTIONS="-c payymo.tenant_id=$ALPHA_ID" client -c "SELECT payymo.current_tenant()")
like "$out" "permission denied|cannot be set" "PGOPTIONS -c payymo.tenant_id is refused for a client"
out=$(PGOPTIONS="-c payymo.tenant_id=$ALPHA_ID" psql -X -A -t -d "$db" -U postgres \
        -c "SELECT payymo.current_tenant()" 2>&1)
like "$out" "cannot be set directly" "PGOPTIONS -c payymo.tenant_id is refused even for a superuser"

# --- assume_tenant: for job roles, logged
out=$(psql -X -A -t -d "$db" -U payymo_job \
        -c "SELECT payymo.assume_tenant($ALPHA_ID, false)" -c "SELECT payymo.current_tenant()" 2>&1)
like "$out" "^$ALPHA_ID$" "a job role granted assume_tenant gets the context without a key"
wait_for_log "role \"payymo_job\" assumed tenant $ALPHA_ID"
ok $? "assume_tenant is logged with the role"

# --- pg_dump keeps tenants and keys working
admin -c "DROP DATABASE IF EXISTS dump_src" -c "DROP DATABASE IF EXISTS dump_dst" >/dev/null 2>&1
admin -c "CREATE DATABASE dump_src" && admin -c "CREATE DATABASE dump_dst"
q -d dump_src -c "CREATE EXTENSION payymo" >/dev/null
key=$(q -d dump_src -c "SELECT api_key FROM payymo.create_tenant('dumped', 'Dumped Ltd')")
pg_dump -d dump_src | q -d dump_dst >/dev/null 2>&1
out=$(psql -X -A -t -d dump_dst -U payymo_client -c "SELECT payymo.set_tenant('$key', false)" 2>&1)
is "$out" "1" "a key issued before pg_dump works in the restored database"
out=$(q -d dump_dst -c "SELECT tenant_id FROM payymo.create_tenant('after-restore', 'After')")
is "$out" "2" "the tenant id sequence continues after restore"
out=$(q -d dump_dst -c "SELECT count(*) FROM payymo.api_keys")
is "$out" "2" "api keys are restored"

# --- a cluster without shared_preload_libraries: placeholders are ignored
(
    cluster_start >/dev/null || exit 1
    trap cluster_stop EXIT
    q -c "CREATE ROLE payymo_client LOGIN" -c "CREATE EXTENSION payymo" >/dev/null
    key=$(q -c "SELECT api_key FROM payymo.create_tenant('no-preload', 'No Preload')")
    q -c "ALTER ROLE payymo_client SET payymo.tenant_id = '1'" >/dev/null 2>&1
    echo "alter_role=$?"
    psql -X -A -t -U payymo_client -c "SELECT payymo.current_tenant()" -c "SHOW payymo.tenant_id" 2>&1 \
        | sed 's/^/role_setting: /'
    q -c "ALTER ROLE payymo_client RESET ALL"
    psql -X -A -t -U payymo_client -c "SET payymo.tenant_id = '1'" \
        -c "SELECT payymo.current_tenant()" -c "SHOW payymo.tenant_id" 2>&1 | sed 's/^/placeholder: /'
    psql -X -A -t -U payymo_client -c "SELECT payymo.set_tenant('$key')" 2>&1 | sed 's/^/set_tenant: /'
) >"$PGDATA_DIR/../nopreload.out" 2>&1
np=$(cat "$PGDATA_DIR/../nopreload.out")
like "$np" "alter_role=0" "without preload, ALTER ROLE ... SET stores a placeholder"
like "$np" "role_setting: .*no tenant context set" "that stored placeholder gives no context once the library loads"
unlike "$np" "role_setting: 1$" "the stored placeholder is not shown as the tenant"
like "$np" "placeholder: .*no tenant context set" "a SET before the library loads gives no context"
unlike "$np" "placeholder: 1$" "the placeholder value is discarded"
like "$np" "set_tenant: 1$" "set_tenant works without preload"

# --- the walkthrough of the parallel-worker guarantee lives in pgtap/context.sql

done_testing
