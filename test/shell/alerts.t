#!/usr/bin/env bash
# Alerts on abnormal tenants, evaluated by hand: database "manual" runs
# check_alerts() step by step, with one scripted abnormal tenant per metric.
# The worker's own paths are in alerts_worker.t (same cluster set-up,
# alerts.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/shell/alerts.sh
trap 'cluster_stop; rm -rf "$keydir"' EXIT

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

# --- the period: what happened before it does not count, what happened in
# it does; samples are kept for the period, a counter reset starts afresh.
# Time passes by moving the samples and the baseline back.
deny() { local i; for ((i = 0; i < $1; i++)); do echo "SET payymo.tenant_id = '2';"; done; }
earlier() {
    m -c "UPDATE payymo.alert_samples SET sampled_at = sampled_at - interval '$1'" \
      -c "UPDATE payymo.alert_rules SET baseline_at = baseline_at - interval '$1'" >/dev/null
}
# acme's denials relative to the baseline, one per sample, oldest first
acme_samples() {
    m -c "SELECT string_agg((value - $v0)::text, ' ' ORDER BY sampled_at) FROM payymo.alert_samples
           WHERE tenant_id = 1 AND metric = 'denied'"
}
# period_window RULE_TENANT LABEL: a rule on denials over 1 hour, threshold 3
# (for every tenant, or acme's own), and acme's denials over time.
period_window() {
    madmin -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" \
           -c "SELECT payymo.set_alert('denied', 3, '1 hour', $1)" >/dev/null 2>&1
    m -c "DELETE FROM payymo.alert_samples" >/dev/null
    checked >/dev/null
    v0=$(m -c "SELECT denied FROM payymo.tenant_stats WHERE tenant_id = 1")
    as_tenant 1 "$(deny 2)"
    checked >/dev/null
    is "$(acme_samples)" "0" "$2: a change within a twentieth of the period is not sampled yet"
    earlier '4 minutes'
    checked >/dev/null
    is "$(acme_samples)" "0 2" "$2: then it is"
    earlier '2 hours'
    as_tenant 1 "$(deny 1)"
    is "$(checked)" "" "$2: two hours later, one denial in the last hour is under 3"
    is "$(acme_samples)" "2 3" "$2: samples older than the period are deleted, but for the last one before it"
    earlier '30 minutes'
    as_tenant 1 "$(deny 3)"
    is "$(checked)" "1 denied" "$2: half an hour later, 4 in the last hour (from the last sample before it)"
    is "$(acme_samples)" "2 3 6" "$2: the sample before the period is kept"
}
period_window NULL "a rule for every tenant"
madmin -c "SELECT payymo.drop_alert('denied')" >/dev/null
period_window 1 "acme's own rule"
madmin -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" >/dev/null
m -c "SELECT payymo.tenant_stats_reset(1)" >/dev/null
as_tenant 1 "$(deny 4)"
is "$(checked)" "1 denied" "after a reset of acme's counters, 4 new denials count from zero"
is "$(m -c "SELECT string_agg(value::text, ' ') FROM payymo.alert_samples WHERE tenant_id = 1 AND metric = 'denied'")" \
    "4" "and its samples from before the reset are gone"
madmin -c "SELECT payymo.acknowledge_alert(id) FROM payymo.alerts" -c "SELECT payymo.drop_alert('denied', 1)" >/dev/null

done_testing
