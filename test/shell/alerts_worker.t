#!/usr/bin/env bash
# The alerts worker (payymo.alerts_database = 'postgres', every second; see
# alerts.sh): it runs only the extension's check_alerts(), raises alerts by
# itself with a WARNING line in the server log and a NOTIFY payymo_alert, is
# restarted after a termination or a lock timeout, evaluates whatever the
# database's session defaults, and does not run on a standby.  alerts.t
# runs the evaluation by hand.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/shell/alerts.sh
standby=$(mktemp -d /tmp/payymo-standby.XXXXXX)
chmod 755 "$standby"
chown postgres: "$standby" 2>/dev/null || true
trap 'as_postgres "$PG_BINDIR/pg_ctl" -D "$standby/data" -m immediate stop >/dev/null 2>&1
      cluster_stop; rm -rf "$keydir" "$standby"' EXIT

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
q -c "SET client_min_messages = warning" -c "DROP SCHEMA payymo CASCADE" \
  -c "REVOKE CREATE ON DATABASE postgres FROM alert_planter" \
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

# With every alert acknowledged, tenant 3 forges its context four times;
# prints the worker's open alert for it.
# prints the alert the worker raised after that, or why there is none.
acknowledged_then_denied() {
    local last i
    last=$(aq -c "SELECT coalesce(max(id), 0) FROM payymo.alert_log")
    aq -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" >/dev/null
    [ "$(aq -c "SELECT count(*) FROM payymo.alerts")" = 0 ] || { echo "alerts still open"; return; }
    { echo "SELECT payymo.assume_tenant(3, false);"
      for i in 1 2 3 4; do echo "SET payymo.tenant_id = '1';"; done; } |
        q -d postgres -v ON_ERROR_STOP=0 >/dev/null 2>&1
    for i in $(seq 1 50); do
        [ "$(aq -c "SELECT count(*) FROM payymo.alerts WHERE id > $last AND tenant_id = 3")" = 1 ] && break
        sleep 0.2
    done
    aq -c "SELECT tenant_id || ' ' || metric FROM payymo.alerts WHERE id > $last AND tenant_id = 3"
}

worker_pid() { aq -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'payymo alerts'"; }
# Waits up to 20 s for a worker other than process $1.
restarted() {
    local i new
    for i in $(seq 1 80); do
        new=$(worker_pid)
        [ -n "$new" ] && [ "$new" != "$1" ] && return 0
        sleep 0.25
    done
    return 1
}

# Terminated, it is started again (ten seconds later), and goes on.
pid=$(worker_pid)
aq -c "SELECT pg_terminate_backend($pid)" >/dev/null
ok "$(restarted "$pid"; echo $?)" "a terminated worker is started again"
is "$(acknowledged_then_denied)" "3 denied" \
    "and evaluates again"

# A session holding a lock on the samples (a long manual evaluation, a
# careless DBA) does not stall the worker for good: its evaluation gives up
# after its lock_timeout of 10 s, the error is logged, and it is started again.
# The worker started again connects to a database whose sessions now default
# to serializable and read-only (this script's own sessions override that):
# it still evaluates at read committed and writes.
aq -c "ALTER DATABASE postgres SET default_transaction_isolation = 'serializable'" \
   -c "ALTER DATABASE postgres SET default_transaction_read_only = on" >/dev/null
export PGOPTIONS="-c default_transaction_isolation=read\\ committed -c default_transaction_read_only=off"
pid=$(worker_pid)
printf 'BEGIN;\nLOCK payymo.alert_samples IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(13);\nCOMMIT;\n' |
    q -d postgres >/dev/null &
holder=$!
for i in $(seq 1 120); do
    grep -qE "\[$pid\] .*ERROR:  canceling statement due to lock timeout" "$PAYYMO_LOG" && break
    sleep 0.25
done
like "$(grep "\[$pid\] .*ERROR:  canceling statement due to lock timeout" "$PAYYMO_LOG")" "lock timeout" \
    "a worker waiting behind a held lock gives up after its lock_timeout"
wait $holder
ok "$(restarted "$pid"; echo $?)" "and is started again"
is "$(acknowledged_then_denied)" "3 denied" \
    "and evaluates at read committed and writes where sessions default to serializable, read-only"
aq -c "ALTER DATABASE postgres RESET ALL" >/dev/null
unset PGOPTIONS

# A standby of this cluster, with the same settings, starts no alerts worker:
# evaluations write, and the primary's worker runs them.
as_postgres "$PG_BINDIR/pg_basebackup" -D "$standby/data" -R -X stream -c fast >/dev/null 2>&1
rm -rf "$standby/data/log"
echo "unix_socket_directories = '$standby'" >>"$standby/data/postgresql.conf"
as_postgres "$PG_BINDIR/pg_ctl" -D "$standby/data" -l "$standby/start.log" -w -t 60 start >/dev/null
is "$(PGHOST=$standby q -c "SELECT pg_is_in_recovery()" 2>&1)" "t" "a standby of the cluster runs"
workers=0
for i in $(seq 1 12); do
    workers=$((workers + $(PGHOST=$standby q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'payymo alerts'")))
    sleep 0.25
done
is "$workers" "0" "and starts no alerts worker (3 s, twelve looks)"
standby_log=$(cat "$standby/data/log/"* 2>/dev/null)
like "$standby_log" "ready to accept read-only connections" "its log is read"
unlike "$standby_log" "background worker \"payymo alerts\"|payymo\\.check_alerts" "and shows no attempt either"

done_testing
