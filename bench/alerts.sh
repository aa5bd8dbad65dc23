#!/usr/bin/env bash
# `make bench-alerts`: what one evaluation of the alert rules costs with many
# tenants.  A throwaway cluster (payymo preloaded, statistics for 200,000
# tenants); TENANTS tenants (default 100,000) each run one statement, so each
# has a statistics entry; three rules (denied, statements, exec_time_share)
# for every tenant.  Then check_alerts() is timed: the first evaluation
# (baselines: one sample per tenant and quantity), an evaluation with nothing
# changed, and one after every tenant ran another statement.
#
#   bench/alerts.sh            (about two minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

TENANTS=${ALERTS_TENANTS:-100000}
work=$(mktemp -d /tmp/payymo-bench-alerts.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop; rm -rf "$work"' EXIT
if [ "${BENCH_BUILD:-1}" = 1 ]; then
    build_and_install "$work/build.log" || { cat "$work/build.log"; exit 1; }
fi
cluster_start "shared_preload_libraries = 'payymo'" "payymo.stats_max_tenants = 200000" \
    "shared_buffers = '512MB'" "fsync = off" >/dev/null

q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION payymo;
INSERT INTO payymo.tenants (id, slug, name) OVERRIDING SYSTEM VALUE
SELECT g, 'tenant-' || g, 'Tenant ' || g FROM generate_series(1, $TENANTS) g;
SQL
# One top-level statement per tenant, counted under its context.
activity() {
    seq 1 "$TENANTS" | sed 's/.*/SELECT payymo.assume_tenant(&, false);/' >"$work/activity.sql"
    q -f "$work/activity.sql" >/dev/null
}
activity
echo "tenants with statistics: $(q -c "SELECT count(*) FROM payymo.tenant_stats")"
q -c "SELECT payymo.set_alert(m, 1e9, '1 hour')
        FROM unnest(ARRAY['denied', 'statements']) m" \
  -c "SELECT payymo.set_alert('exec_time_share', 0.9, '1 hour')" >/dev/null 2>&1
timed() {
    q -c "SET client_min_messages = error" -c '\timing on' -c "SELECT count(*) FROM payymo.check_alerts()" |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
echo "first evaluation (baselines):          $(timed) ms, $(q -c "SELECT count(*) FROM payymo.alert_samples") samples"
echo "nothing changed:                       $(timed) ms"
activity
q -c "UPDATE payymo.alert_samples SET sampled_at = sampled_at - interval '10 minutes'" >/dev/null
echo "every tenant active since (samples due): $(timed) ms, $(q -c "SELECT count(*) FROM payymo.alert_samples") samples"
activity
echo "every tenant active since (not due):   $(timed) ms"
