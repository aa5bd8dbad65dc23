#!/usr/bin/env bash
# Alerts on abnormal tenants: a cluster of its own with the alerts worker
# (payymo.alerts_database = 'postgres', every second).  Database "manual"
# runs check_alerts() by hand, step by step, with one scripted abnormal
# tenant per metric; database postgres is left to the worker: its WARNING
# line in the server log and its NOTIFY payymo_alert.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

keydir=$(mktemp -d /tmp/payymo-keys.XXXXXX)
cluster_start "shared_preload_libraries = 'payymo'" \
    "payymo.key_file = '$(make_key_file "$keydir")'" \
    "payymo.alerts_database = 'postgres'" "payymo.alerts_interval = 1" >/dev/null \
    || { echo "1..0 # cluster did not start"; exit 1; }
trap 'cluster_stop; rm -rf "$keydir"' EXIT

# setup DB: payymo, tenants acme (1), globex (2), initech (3), a client role
# and an administrator (payymo_admin, not superuser).
setup() {
    { [ "$1" = postgres ] || q -c "CREATE DATABASE $1"; } && q -d "$1" >/dev/null <<'SQL'
CREATE EXTENSION payymo;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alert_client') THEN
        CREATE ROLE alert_client LOGIN;
        CREATE ROLE alert_admin LOGIN IN ROLE payymo_admin;
    END IF;
END $$;
SELECT payymo.create_tenant(s, s || ' Ltd') FROM unnest(ARRAY['acme', 'globex', 'initech']) s;
CREATE TABLE public.notes (id bigserial PRIMARY KEY, tenant_id bigint NOT NULL, body text);
SELECT payymo.enable_tenancy('public.notes');
GRANT SELECT, INSERT ON public.notes TO alert_client;
GRANT USAGE ON SEQUENCE public.notes_id_seq TO alert_client;
SQL
}
setup manual || { echo "Bail out! set-up failed"; exit 1; }
m() { q -d manual "$@"; }
madmin() { psql -X -q -A -t -v ON_ERROR_STOP=1 -U alert_admin -d manual "$@" 2>&1; }
checked() { madmin -c "SET client_min_messages = error" -c "SELECT tenant_id || ' ' || metric FROM payymo.check_alerts() ORDER BY 1"; }
# as TENANT: a client session acting for that tenant runs the statements
as_tenant() {
    local t=$1
    shift
    { echo "SELECT payymo.assume_tenant($t, false);"; printf '%s\n' "$@"; } |
        q -d manual -v ON_ERROR_STOP=0 >/dev/null 2>&1
}

# --- who may do what
out=$(psql -X -A -t -U alert_client -d manual -c "SELECT payymo.set_alert('denied', 1)" 2>&1)
like "$out" "permission denied for function set_alert" "a client cannot set alert rules"
for what in "SELECT * FROM payymo.alerts" "SELECT * FROM payymo.alert_log" \
            "SELECT * FROM payymo.alert_samples" "SELECT payymo.check_alerts()" \
            "SELECT payymo.acknowledge_alert(1)" "SELECT payymo._alert_warning('fake alert')"; do
    out=$(psql -X -A -t -U alert_client -d manual -c "$what" 2>&1)
    like "$out" "permission denied" "a client is refused: $what"
done
out=$(madmin -c "SELECT payymo.set_alert('denied', 5, '1 hour')")
like "$out" 'NOTICE:  no background worker evaluates alerts in database "manual"' \
    "set_alert says when no worker evaluates the database"
out=$(madmin -v VERBOSITY=verbose -c "SELECT payymo.set_alert('cpu', 5)")
like "$out" "22023: unknown alert metric \"cpu\"" "an unknown metric is refused"
out=$(madmin -v VERBOSITY=verbose -c "SELECT payymo.set_alert('exec_time_share', 1.5)")
like "$out" "23514" "a share threshold is below 1"
out=$(madmin -v VERBOSITY=verbose -c "SELECT payymo.set_alert('denied', 0)")
like "$out" "23514" "a threshold is positive"
out=$(madmin -v VERBOSITY=verbose -c "SELECT payymo.set_alert('denied', 5, '1 hour', 99)")
like "$out" "P0002: tenant 99 does not exist" "a rule for a tenant that does not exist is refused"

# --- the first check records a baseline: what happened before the rule
# does not alert
as_tenant 1 "SET payymo.tenant_id = '2';" "SET payymo.tenant_id = '2';" \
    "SET payymo.tenant_id = '2';" "SET payymo.tenant_id = '2';" \
    "SET payymo.tenant_id = '2';" "SET payymo.tenant_id = '2';"
is "$(m -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = 1")" "6" \
    "acme tried to forge the context six times"
is "$(checked)" "" "the first check only records a baseline"
is "$(m -c "SELECT baseline_at IS NOT NULL FROM payymo.alert_rules WHERE metric = 'denied'")" "t" \
    "the rule has its baseline"

# --- denied: a tenant probing the context
as_tenant 2 "SET payymo.tenant_id = '1';" "SET payymo.tenant_id = '1';" \
    "SET payymo.tenant_id = '1';"
as_tenant 1 "SET payymo.tenant_id = '3';" "SET payymo.tenant_id = '3';" \
    "SET payymo.tenant_id = '3';" "SET payymo.tenant_id = '3';" \
    "SET payymo.tenant_id = '3';" "SET payymo.tenant_id = '3';"
out=$(madmin -c "LISTEN payymo_alert" -c "SELECT tenant_id || ' ' || metric || ' ' || value FROM payymo.check_alerts()")
like "$out" "Asynchronous notification \"payymo_alert\" with payload \"[0-9]+\" received" \
    "NOTIFY payymo_alert with the alert's id"
like "$out" "WARNING:  payymo alert [0-9]+: tenant 1 \(acme\) denied = 6 over 01:00:00, threshold 5" \
    "acme's six new denials cross 5: one WARNING with the tenant"
like "$out" "^1 denied 6$" "check_alerts() returns the alert, with the change over the period (not the total 12)"
unlike "$out" "tenant 2" "globex's three denials do not"
is "$(m -c "SELECT tenant_id || ' ' || slug || ' ' || metric || ' ' || value || ' ' || threshold FROM payymo.alerts")" \
    "1 acme denied 6 5" "payymo.alerts shows the open alert"
as_tenant 1 "SET payymo.tenant_id = '3';" "SET payymo.tenant_id = '3';" \
    "SET payymo.tenant_id = '3';" "SET payymo.tenant_id = '3';" \
    "SET payymo.tenant_id = '3';" "SET payymo.tenant_id = '3';"
is "$(checked)" "" "an open alert is not raised again"
is "$(m -c "SELECT count(*) FROM payymo.alert_log")" "1" "one row in the log"
id=$(m -c "SELECT id FROM payymo.alerts")
is "$(madmin -c "SELECT payymo.acknowledge_alert($id)")" "t" "acknowledge_alert closes it"
is "$(madmin -c "SELECT payymo.acknowledge_alert($id)")" "f" "once"
is "$(m -c "SELECT count(*) FROM payymo.alerts")" "0" "the view no longer shows it"
is "$(m -c "SELECT acknowledged_by FROM payymo.alert_log WHERE id = $id")" "alert_admin" \
    "the log keeps who acknowledged it"
is "$(checked)" "1 denied" "still above the threshold after acknowledgement: a new alert"

# --- a tenant's own rule replaces the general one
madmin -c "SELECT payymo.set_alert('denied', 100, '1 hour', 2)" >/dev/null 2>&1
madmin -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" >/dev/null
as_tenant 2 "SET payymo.tenant_id = '1';" "SET payymo.tenant_id = '1';" \
    "SET payymo.tenant_id = '1';" "SET payymo.tenant_id = '1';" \
    "SET payymo.tenant_id = '1';" "SET payymo.tenant_id = '1';"
out=$(checked)
unlike "$out" "^2 denied" "globex's six denials stay under its own threshold of 100"
is "$(madmin -c "SELECT payymo.drop_alert('denied', 2)")" "t" "drop_alert removes the tenant's rule"
madmin -c "SELECT payymo.drop_alert('denied')" >/dev/null
madmin -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" >/dev/null

# --- rate_limited: a tenant hammering set_tenant
m -c "UPDATE payymo.tenants SET rate_limit_per_second = 2 WHERE id = 3"
key3=$(m -c "SELECT payymo.issue_api_key(3, 'burst')")
madmin -c "SELECT payymo.set_alert('rate_limited', 10, '10 minutes')" >/dev/null 2>&1
is "$(checked)" "" "rate_limited: baseline"
for i in $(seq 1 30); do echo "SELECT payymo.set_tenant('$key3');"; done |
    psql -X -A -t -U alert_client -d manual >/dev/null 2>&1
limited=$(m -c "SELECT rate_limited FROM payymo.tenant_stats WHERE tenant_id = 3")
ok "$([ "$limited" -gt 10 ]; echo $?)" "initech was rate limited $limited times"
out=$(m -c "SET client_min_messages = error" -c "SET payymo.alerts_notify = off" -c "LISTEN payymo_alert" \
              -c "SELECT tenant_id || ' ' || metric FROM payymo.check_alerts()")
is "$out" "3 rate_limited" "rate_limited alerts for initech alone; with payymo.alerts_notify off, no NOTIFY"
out=$(psql -X -A -t -U alert_client -d manual -c "SET payymo.alerts_notify = off" 2>&1)
like "$out" "permission denied" "clients cannot turn notifications off"
madmin -c "SELECT payymo.drop_alert('rate_limited')" >/dev/null

# --- a dropped tenant's statistics outlive it: it is not alerted on
madmin -c "SELECT payymo.set_alert('denied', 2, '1 hour')" >/dev/null 2>&1
madmin -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" >/dev/null
doomed=$(m -c "SELECT tenant_id FROM payymo.create_tenant('doomed', 'Doomed')")
checked >/dev/null
as_tenant "$doomed" "SET payymo.tenant_id = '1';" "SET payymo.tenant_id = '1';" \
    "SET payymo.tenant_id = '1';" "SET payymo.tenant_id = '1';"
m -c "SELECT payymo.drop_tenant($doomed, force => true)" >/dev/null
is "$(m -c "SELECT count(*) FROM payymo.tenants WHERE id = $doomed")" "0" "the tenant is dropped"
is "$(m -c "SELECT denied FROM payymo.tenant_stats() WHERE tenant_id = $doomed")" "4" \
    "the dropped tenant's four denials are still counted"
unlike "$(checked)" "^$doomed " "but a tenant that no longer exists raises no alert"

# --- a new period starts from a new baseline; evaluations need READ COMMITTED
madmin -c "SELECT payymo.set_alert('denied', 2, '2 hours')" >/dev/null 2>&1
is "$(m -c "SELECT baseline_at IS NULL FROM payymo.alert_rules WHERE metric = 'denied' AND tenant_id IS NULL")" "t" \
    "changing a rule's period drops its baseline (the samples kept may not reach back that far)"
madmin -c "SELECT payymo.set_alert('denied', 3, '2 hours')" >/dev/null 2>&1
checked >/dev/null
madmin -c "SELECT payymo.set_alert('denied', 4, '2 hours')" >/dev/null 2>&1
is "$(m -c "SELECT baseline_at IS NOT NULL FROM payymo.alert_rules WHERE metric = 'denied' AND tenant_id IS NULL")" "t" \
    "changing only the threshold keeps it"
madmin -c "SELECT payymo.drop_alert('denied')" >/dev/null
out=$(madmin -v VERBOSITY=verbose -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT payymo.check_alerts()")
like "$out" "0A000: check_alerts\(\) must run at READ COMMITTED" "check_alerts() refuses a transaction snapshot"

# --- exec_time_share: one tenant takes most of the execution time
madmin -c "SELECT payymo.set_alert('exec_time_share', 0.5, '10 minutes')" >/dev/null 2>&1
is "$(checked)" "" "exec_time_share: baseline"
as_tenant 2 "SELECT count(*) FROM public.notes;" "SELECT count(*) FROM public.notes;"
as_tenant 1 "SELECT pg_sleep(1.2);"
out=$(madmin -c "SET client_min_messages = error" -c "SELECT tenant_id || ' ' || metric || ' ' || (value > 0.9) FROM payymo.check_alerts()")
is "$out" "1 exec_time_share true" "acme's 1.2 s are more than half of all tenants' time (and more than 90 %)"
as_tenant 2 "SELECT pg_sleep(0.3);"
is "$(checked)" "" "globex's 0.3 s of 1.5 s is under half"
madmin -c "SELECT payymo.drop_alert('exec_time_share')" >/dev/null

# --- storage_growth: a tenant writing a lot
madmin -c "SELECT payymo.set_alert('storage_growth', 200000, '1 hour')" >/dev/null 2>&1
is "$(checked)" "" "storage_growth: baseline"
as_tenant 3 "INSERT INTO public.notes (body) SELECT repeat('x', 200) FROM generate_series(1, 5000);"
as_tenant 2 "INSERT INTO public.notes (body) VALUES ('a note');"
is "$(checked)" "" "storage is measured at most every sixth of the period"
m -c "UPDATE payymo.alert_rules SET sampled_at = sampled_at - interval '11 minutes' WHERE metric = 'storage_growth'"
is "$(checked)" "3 storage_growth" "initech's megabyte alerts, globex's note does not"
is "$(m -c "SELECT value > 1000000 FROM payymo.alerts WHERE metric = 'storage_growth'")" "t" \
    "the value is the growth in bytes"
madmin -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" >/dev/null
# Two hours later (moved back in time), initech deletes half of its rows:
# its storage an hour ago was larger, so no growth.
m -c "UPDATE payymo.alert_samples SET sampled_at = sampled_at - interval '2 hours' WHERE metric = 'storage_bytes'" \
  -c "UPDATE payymo.alert_rules SET baseline_at = baseline_at - interval '2 hours',
                                    sampled_at = sampled_at - interval '2 hours' WHERE metric = 'storage_growth'" >/dev/null
as_tenant 3 "DELETE FROM public.notes WHERE tenant_id = 3 AND id % 2 = 0;"
is "$(checked)" "" "storage that shrinks is no growth (storage is a level, not a counter)"
m -c "UPDATE payymo.alert_rules SET sampled_at = sampled_at - interval '11 minutes' WHERE metric = 'storage_growth'"
is "$(checked)" "" "and stays none the next time"

# --- samples: only changes are stored, and only for the longest period
n=$(m -c "SELECT count(*) FROM payymo.alert_samples")
is "$(checked)" "" "nothing changed, nothing raised"
is "$(m -c "SELECT count(*) FROM payymo.alert_samples")" "$n" "an idle check stores no sample"
madmin -c "SELECT payymo.drop_alert('storage_growth')" >/dev/null
checked >/dev/null
is "$(m -c "SELECT count(*) FROM payymo.alert_samples")" "0" "samples of metrics without a rule are deleted"

# --- the worker: database postgres, every second.  Before payymo is
# installed there, a role that may create schemas plants a check_alerts() of
# its own: the superuser worker must not run it.
q >/dev/null <<'SQL'
CREATE ROLE alert_planter LOGIN;
GRANT CREATE ON DATABASE postgres TO alert_planter;
SET ROLE alert_planter;
CREATE SCHEMA payymo;
CREATE TABLE payymo.ran (who name);
CREATE FUNCTION payymo.check_alerts() RETURNS SETOF int LANGUAGE sql
    AS 'INSERT INTO payymo.ran VALUES (current_user) RETURNING 1';
SQL
sleep 2.5
is "$(q -c "SELECT count(*) FROM payymo.ran")" "0" \
    "the worker does not run a payymo.check_alerts() that is not the extension's"
q -c "DROP SCHEMA payymo CASCADE" -c "REVOKE CREATE ON DATABASE postgres FROM alert_planter" \
  -c "DROP ROLE alert_planter" >/dev/null
setup postgres || { echo "Bail out! set-up failed"; exit 1; }
aq() { q -d postgres "$@"; }
is "$(aq -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'payymo alerts' AND datname = 'postgres'")" "1" \
    "one alerts worker, connected to payymo.alerts_database"
out=$(aq -c "SELECT payymo.set_alert('denied', 3, '1 minute')" 2>&1)
is "$out" "" "no notice where the worker runs"
sleep 2.5
is "$(aq -c "SELECT baseline_at IS NOT NULL FROM payymo.alert_rules")" "t" "the worker took the baseline"
listener=$(mktemp)
psql -X -A -t -d postgres -c "LISTEN payymo_alert" -c "SELECT pg_sleep(6)" >"$listener" 2>&1 &
lpid=$!
sleep 0.5
{ echo "SELECT payymo.assume_tenant(2, false);"
  for i in 1 2 3 4 5; do echo "SET payymo.tenant_id = '1';"; done; } |
    q -d postgres -v ON_ERROR_STOP=0 >/dev/null 2>&1
for i in $(seq 1 50); do
    [ "$(aq -c "SELECT count(*) FROM payymo.alerts")" = 1 ] && break
    sleep 0.2
done
is "$(aq -c "SELECT tenant_id || ' ' || metric || ' ' || value FROM payymo.alerts")" "2 denied 5" \
    "the worker raised globex's alert by itself"
id=$(aq -c "SELECT id FROM payymo.alerts")
wait $lpid
like "$(cat "$listener")" "Asynchronous notification \"payymo_alert\" with payload \"$id\" received" \
    "a listener got NOTIFY payymo_alert with the alert's id, nothing else"
rm -f "$listener"
wait_for_log "payymo alert $id: tenant 2 \\(globex\\) denied = 5 over 00:01:00, threshold 3"
line=$(grep -n "payymo alert $id: tenant 2 (globex)" "$PAYYMO_LOG")
like "$line" "\\] WARNING:  payymo alert $id: tenant 2 \(globex\) denied = 5 over 00:01:00, threshold 3$" \
    "one WARNING line in the server log, with the tenant"
n=${line%%:*}
unlike "$(sed -n "$((n + 1))p" "$PAYYMO_LOG")" "^(CONTEXT|STATEMENT|DETAIL)" "no context or statement lines follow it"
sleep 1.5
is "$(aq -c "SELECT count(*) FROM payymo.alert_log")" "1" "the worker does not raise it again while it is open"

# Terminated, it is started again (ten seconds later), and goes on.
pid=$(aq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'payymo alerts'")
aq -c "SELECT pg_terminate_backend($pid)" >/dev/null
for i in $(seq 1 80); do
    new=$(aq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'payymo alerts'")
    [ -n "$new" ] && [ "$new" != "$pid" ] && break
    sleep 0.25
done
ok "$([ -n "$new" ] && [ "$new" != "$pid" ]; echo $?)" "a terminated worker is started again"
aq -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" >/dev/null
{ echo "SELECT payymo.assume_tenant(3, false);"
  for i in 1 2 3 4; do echo "SET payymo.tenant_id = '1';"; done; } |
    q -d postgres -v ON_ERROR_STOP=0 >/dev/null 2>&1
for i in $(seq 1 50); do
    [ "$(aq -c "SELECT count(*) FROM payymo.alerts WHERE tenant_id = 3")" = 1 ] && break
    sleep 0.2
done
is "$(aq -c "SELECT tenant_id || ' ' || metric FROM payymo.alerts WHERE tenant_id = 3")" "3 denied" \
    "and evaluates again"

done_testing
