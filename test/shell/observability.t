#!/usr/bin/env bash
# Log context and security events in the server log of the preloaded cluster
# of test/run.sh (database payymo_test, fixtures' tenants alpha and bravo).
# Each step's log lines are cut out between a line count taken before it and
# a marker written after it, so steps are checked one at a time.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

db=payymo_test
client() { psql -X -A -t -d "$db" -U payymo_client "$@" 2>&1; }
admin() { q -d "$db" "$@"; }
ALPHA=$(admin -c "SELECT payymo_test.key('alpha')")
ALPHA_ID=$(admin -c "SELECT payymo_test.tenant('alpha')")
BRAVO_ID=$(admin -c "SELECT payymo_test.tenant('bravo')")

mark=0
from=0
# begin_step: remember where the log ends.  end_step: write a marker and
# print the log lines since begin_step (the marker's own line excluded).
begin_step() { from=$(wc -l <"$PAYYMO_LOG"); }
end_step() {
    mark=$((mark + 1))
    admin -c "DO \$\$ BEGIN RAISE LOG 'observability-mark-$mark'; END \$\$"
    wait_for_log "observability-mark-$mark" || echo "marker $mark not in log" >&2
    tail -n +"$((from + 1))" "$PAYYMO_LOG" | grep -v "observability-mark-$mark"
}
count() { printf '%s\n' "$1" | grep -c -- "$2"; }

# --- log context: an error under alpha carries alpha's id and the request id
begin_step
out=$(client -v VERBOSITY=verbose -c "SET payymo.request_id = 'req-7f3a_9.b'" \
             -c "SELECT payymo.set_tenant('$ALPHA', false)" \
             -c "DO \$\$ BEGIN RAISE EXCEPTION 'observability-error-1' USING DETAIL = 'original detail'; END \$\$")
log=$(end_step)
like "$(printf '%s\n' "$log" | grep -A1 'ERROR:  observability-error-1')" \
    "DETAIL:  \[payymo tenant=$ALPHA_ID request=req-7f3a_9\.b\] original detail" \
    "the server log entry of an error under alpha carries its tenant, request id and original detail"
unlike "$out" "payymo tenant=" "the client's copy of the message is unchanged"
like "$out" "DETAIL:  original detail" "the client sees the original detail"

# Without a request id: the tenant only.  Without a context: nothing.
begin_step
client -c "SELECT payymo.set_tenant('$ALPHA', false)" \
       -c "DO \$\$ BEGIN RAISE WARNING 'observability-warning-2'; END \$\$" \
       -c "SELECT payymo.clear_tenant()" \
       -c "DO \$\$ BEGIN RAISE WARNING 'observability-warning-3'; END \$\$" >/dev/null
log=$(end_step)
is "$(printf '%s\n' "$log" | grep -A1 'observability-warning-2' | grep -c "DETAIL:  \[payymo tenant=$ALPHA_ID\]$")" "1" \
    "a warning under alpha without a request id carries the tenant only"
is "$(printf '%s\n' "$log" | grep -A1 'observability-warning-3' | grep -c 'payymo tenant=')" "0" \
    "without a context, log entries carry no tenant"

# payymo.log_context = off (superuser only) turns it off.
begin_step
admin -c "SET payymo.log_context = off" -c "SELECT payymo.assume_tenant($ALPHA_ID, false)" \
      -c "DO \$\$ BEGIN RAISE WARNING 'observability-warning-4'; END \$\$" >/dev/null 2>&1
log=$(end_step)
is "$(printf '%s\n' "$log" | grep -A1 'observability-warning-4' | grep -c 'payymo tenant=')" "0" \
    "payymo.log_context = off leaves log entries alone"
like "$(client -c "SET payymo.log_context = off")" "permission denied" "a client cannot turn it off"

# payymo.request_id cannot inject line breaks or be overlong.
out=$(client -v VERBOSITY=verbose -c "SET payymo.request_id = E'abc\\nERROR:  forged'")
like "$out" "ERROR:  22023: invalid value for parameter \"payymo.request_id\"" "a request id with a newline is refused"
out=$(client -c "SET payymo.request_id = '$(printf 'a%.0s' $(seq 129))'")
like "$out" "at most 128 characters" "a request id longer than 128 characters is refused"
is "$(client -q -c "SET payymo.request_id = 'x'" -c "SHOW payymo.request_id")" "x" \
    "any role may set a valid request id"

# --- security events: one line each, never the key
revoked=$(admin -c "SELECT payymo.issue_api_key($BRAVO_ID, 'observability revoked')")
admin -c "SELECT payymo.revoke_api_key(split_part('$revoked', '_', 2))" >/dev/null
denied_before=$(admin -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = $BRAVO_ID")
begin_step
client -c "SELECT payymo.set_tenant('$revoked')" >/dev/null
log=$(end_step)
is "$(count "$log" "LOG:  payymo security event: bad_api_key")" "1" "a bad key: exactly one event line"
like "$log" "DETAIL:  tenant=$BRAVO_ID key_id=$(cut -d_ -f2 <<<"$revoked") role=payymo_client client=local" \
    "the event names the key's tenant and id, the role and the client"
ok "$(grep -qF -- "${revoked:21:52}" "$PAYYMO_LOG"; [ $? -eq 1 ]; echo $?)" \
    "the key's secret is nowhere in the server log"
is "$(admin -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = $BRAVO_ID")" \
   "$((${denied_before:-0} + 1))" "the bad key counts as denied for its tenant"

# Forged settings: every client path, one event per attempt, detected where
# the setting refuses the value (its check hook), for clients and superusers.
declare -a forged=(
    "SET payymo.tenant_id = '$BRAVO_ID'"
    "BEGIN; SET LOCAL payymo.tenant_id = '$BRAVO_ID'; COMMIT"
    "SELECT set_config('payymo.tenant_id', '$BRAVO_ID', false)"
    "SELECT set_config('payymo.tenant_id', '$BRAVO_ID', true)"
    "BEGIN; SAVEPOINT s; SELECT set_config('payymo.tenant_id', '$BRAVO_ID', false); ROLLBACK"
    "ALTER ROLE CURRENT_USER SET payymo.tenant_id = '$BRAVO_ID'"
    "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql SET payymo.tenant_id = '$BRAVO_ID' AS 'SELECT 1'"
)
for sql in "${forged[@]}"; do
    begin_step
    out=$(client -c "$sql")
    log=$(end_step)
    like "$out" "ERROR:  parameter \"payymo.tenant_id\" cannot be set directly" "refused: $sql"
    is "$(count "$log" "LOG:  payymo security event: forged_setting")" "1" "one forged_setting event: $sql"
done

# Clearing is not forging: RESET and SET ... TO DEFAULT only clear.
for sql in "RESET payymo.tenant_id" "SET payymo.tenant_id TO DEFAULT"; do
    begin_step
    out=$(client -c "SELECT payymo.set_tenant('$ALPHA', false)" -c "$sql" -c "SELECT payymo.current_tenant()")
    log=$(end_step)
    like "$out" "no tenant context set" "$sql clears the context"
    is "$(count "$log" "forged_setting")" "0" "$sql is no forged_setting event"
done

# ... by a superuser too, and with a context.
begin_step
admin -c "SET payymo.tenant_id = '$BRAVO_ID'" >/dev/null 2>&1
log=$(end_step)
is "$(count "$log" "LOG:  payymo security event: forged_setting")" "1" "a superuser's SET: one event"
like "$log" "DETAIL:  tenant=none key_id=none role=postgres client=local" "which names the superuser"
denied_before=$(admin -c "SELECT coalesce(sum(denied), 0) FROM payymo.tenant_stats WHERE tenant_id = $ALPHA_ID")
begin_step
client -c "SELECT payymo.set_tenant('$ALPHA', false)" \
       -c "SELECT set_config('payymo.tenant_id', '$BRAVO_ID', false)" >/dev/null
log=$(end_step)
like "$log" "payymo security event: forged_setting" "a forgery under alpha's context is logged"
like "$log" "DETAIL:  \[payymo tenant=$ALPHA_ID\] tenant=$ALPHA_ID key_id=none role=payymo_client" \
    "and names alpha"
is "$(admin -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = $ALPHA_ID")" \
   "$((denied_before + 1))" "and counts as denied for alpha"

# A refusal caught by an exception handler is reported all the same: the
# event comes from the setting itself, not from the error's report.
begin_step
client -c "DO \$\$ BEGIN PERFORM set_config('payymo.tenant_id', '1', false);
            EXCEPTION WHEN insufficient_privilege THEN NULL; END \$\$" >/dev/null
log=$(end_step)
is "$(count "$log" "forged_setting")" "1" "a refusal caught by an exception handler is reported"

# An error that only looks like a refusal is no event and counts nowhere: a
# client cannot forge events to inflate a tenant's denied.
denied_before=$(admin -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = $ALPHA_ID")
begin_step
client -c "SELECT payymo.set_tenant('$ALPHA', false)" \
       -c "DO \$\$ BEGIN RAISE EXCEPTION 'permission denied to set parameter \"payymo.tenant_id\"'
            USING ERRCODE = '42501'; END \$\$" >/dev/null
log=$(end_step)
is "$(count "$log" "forged_setting")" "0" "a RAISE that imitates the refusal is no event"
is "$(admin -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = $ALPHA_ID")" "$denied_before" \
   "and does not count as denied"

# Probes with a real key id and a wrong secret are logged, but charged to
# nobody: not the key's tenant (bravo), and no entry is created for them.
denied_before=$(admin -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = $BRAVO_ID")
entries_before=$(admin -c "SELECT count(*) FROM payymo.tenant_stats")
bravo_id=$(admin -c "SELECT key_id FROM payymo.api_keys WHERE tenant_id = $BRAVO_ID AND revoked_at IS NULL LIMIT 1")
begin_step
for i in 1 2 3; do client -c "SELECT payymo.set_tenant('$(test/forge_key.py "$bravo_id")')" >/dev/null; done
for i in 1 2 3; do
    client -c "SELECT payymo.set_tenant('$(test/forge_key.py "$(head -c10 /dev/urandom | base32 | tr A-Z a-z | cut -c1-16)")')" >/dev/null
done
log=$(end_step)
is "$(count "$log" "tenant=none key_id=$bravo_id ")" "3" "each probe of bravo's key id is logged with the key id"
is "$(admin -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = $BRAVO_ID")" "$denied_before" \
   "probes with a wrong secret do not count as bravo's denied"
is "$(admin -c "SELECT count(*) FROM payymo.tenant_stats")" "$entries_before" \
   "probes of unknown key ids create no statistics entry"

# Events raised in a parallel worker have no client connection of their own.
begin_step
client -c "SELECT payymo_test.force_parallel('on')" -c "SET parallel_setup_cost = 0" \
       -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA')" \
       -c "EXPLAIN (COSTS OFF) SELECT payymo.decrypt_token(decode('b101' || repeat('00', 60), 'hex')) FROM payymo.tenants" \
       -c "SELECT payymo.decrypt_token(decode('b101' || repeat('00', 60), 'hex')) FROM payymo.tenants" >"$PGDATA_DIR/../parallel.out" 2>&1
log=$(end_step)
grep -q "Gather" "$PGDATA_DIR/../parallel.out"
ok $? "control: the decrypt runs in a parallel worker"
like "$(grep -A1 'decrypt_failed' <<<"$log")" "client=unknown" \
    "an event raised in a parallel worker gives the client as unknown, not as a local connection"

# A legitimate set_tenant writes no event.
begin_step
client -c "SELECT payymo.set_tenant('$ALPHA')" >/dev/null
log=$(end_step)
is "$(count "$log" "payymo security event")" "0" "a valid key writes no event"

done_testing
