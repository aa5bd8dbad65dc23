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

# --- every authentication failure is the same 28000, and clears the context
tenant=$(admin -c "SELECT tenant_id FROM payymo.create_tenant('context-t', 'Context T')")
revoked=$(admin -c "SELECT payymo.issue_api_key($tenant, 'revoked')")
admin -c "SELECT payymo.revoke_api_key(split_part('$revoked', '_', 2))" >/dev/null
expired=$(admin -c "SELECT payymo.issue_api_key($tenant, 'expired', now() + interval '1 hour')")
admin -c "UPDATE payymo.api_key_store SET expires_at = now() - interval '1 second'
          WHERE key_id = split_part('$expired', '_', 2)"
suspended=$(admin -c "SELECT payymo.issue_api_key($tenant, 'suspended')")
admin -c "SELECT payymo.suspend_tenant($tenant)" >/dev/null
unknown="pyk_aaaaaaaaaaaaaaaa_$(printf 'b%.0s' $(seq 60))"   # well-formed, bad checksum
mistyped="${ALPHA:0:40}x${ALPHA:41}"
overlong="$ALPHA$ALPHA"

declare -A bad=(
    [unknown]="'$unknown'" [mistyped]="'$mistyped'" [revoked]="'$revoked'"
    [expired]="'$expired'" [suspended]="'$suspended'" [null]="NULL"
    [empty]="''" [overlong]="'$overlong'"
)
for kind in unknown mistyped revoked expired suspended null empty overlong; do
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

# --- the server log never holds a key
wait_for_log "invalid API key"
ok $? "failed set_tenant calls are logged"
leaked=0
for kind in unknown mistyped revoked expired suspended overlong; do
    k=${bad[$kind]//\'/}
    grep -qF -- "${k:21:52}" "$PAYYMO_LOG" && leaked=1
done
ok $((leaked)) "no presented key (nor its secret part) appears in the server log"
# After each "invalid API key" entry, that backend's continuation lines
# (DETAIL, HINT, CONTEXT, STATEMENT) must not include the statement.
stmt=$(awk '
    /ERROR:  invalid API key/ { match($0, /\[[0-9]+\]/); pid = substr($0, RSTART, RLENGTH); watch = 1; next }
    watch && index($0, pid) {
        if ($0 ~ /STATEMENT:/) print
        if ($0 !~ /(DETAIL|HINT|CONTEXT|STATEMENT):/) watch = 0
    }' "$PAYYMO_LOG")
is "$stmt" "" "the statement of a failed set_tenant is hidden from the log"
# Positive control: an ordinary failing statement with a marker IS logged,
# so the grep above would have found a leaked key.
client -c "SELECT 'pyk_control_marker'::int" >/dev/null
wait_for_log "pyk_control_marker"
ok $? "control: an ordinary failed statement's text does reach the log"

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
out=$(psql -X -A -t -d dump_dst -U payymo_client -c "SELECT payymo.set_tenant('$key')" 2>&1)
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
