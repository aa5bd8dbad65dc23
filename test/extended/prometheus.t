#!/usr/bin/env bash
# Metrics where operators look: the real prometheus-postgres-exporter with
# contrib/prometheus/queries.yaml against a throwaway cluster; the per-tenant
# counters and the key versions appear with the right labels and values.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh
. test/extended/common.sh

exporter_pid=
cleanup() { [ -n "$exporter_pid" ] && kill "$exporter_pid" 2>/dev/null; ext_cleanup; }
trap cleanup EXIT

ext_cluster_start >/dev/null || { echo "Bail out! cluster did not start"; exit 1; }
q -c "CREATE ROLE exporter LOGIN IN ROLE pg_monitor" >/dev/null
client() { psql -X -q -A -t -U payymo_client -d "$EXT_DB" "$@" 2>&1; }
# An alert on alpha's statements: the first evaluation takes the baseline,
# the second (after the statements below) raises it.
q -c "SELECT payymo.set_alert('statements', 1, '1 hour', $ALPHA_ID)" \
  -c "SELECT count(*) FROM payymo.check_alerts()" >/dev/null 2>&1
client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA_KEY')" \
       -c "SELECT count(*) FROM items" -c "SELECT 1" -c "COMMIT" >/dev/null
revoked=$(q -c "SELECT payymo.issue_api_key($BRAVO_ID, 'revoked')")
q -c "SELECT payymo.revoke_api_key(split_part('$revoked', '_', 2))" >/dev/null
client -c "SELECT payymo.set_tenant('$revoked')" >/dev/null
client -c "SELECT payymo.set_tenant('$revoked')" >/dev/null
q -c "SET client_min_messages = error" -c "SELECT count(*) FROM payymo.check_alerts()" >/dev/null

port=$((19000 + RANDOM % 1000))
DATA_SOURCE_NAME="host=$EXT_DIR port=$PGPORT user=exporter dbname=$EXT_DB sslmode=disable" \
    prometheus-postgres-exporter --extend.query-path=contrib/prometheus/queries.yaml \
        --disable-default-metrics --disable-settings-metrics \
        --web.listen-address="127.0.0.1:$port" >"$EXT_DIR/exporter.log" 2>&1 &
exporter_pid=$!
metrics=
for i in $(seq 1 50); do
    metrics=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null) && [ -n "$metrics" ] && break
    sleep 0.2
done
grep '^payymo_' <<<"$metrics" | sed 's/^/# /'

stats=$(q -F ' ' -c "SELECT tenant_id, statements, denied FROM payymo.tenant_stats ORDER BY 1")
alpha_statements=$(awk -v t="$ALPHA_ID" '$1 == t { print $2 }' <<<"$stats")
like "$metrics" "^payymo_tenant_statements\\{[^}]*tenant=\"alpha\",tenant_id=\"$ALPHA_ID\"\\} $alpha_statements$" \
    "alpha's statement count is exported with its slug and id ($alpha_statements)"
like "$metrics" "^payymo_tenant_denied\\{[^}]*tenant=\"bravo\",tenant_id=\"$BRAVO_ID\"\\} 2$" \
    "bravo's two refused revoked-key calls are exported as denied"
like "$metrics" "^payymo_tenant_rows\\{[^}]*tenant=\"alpha\"" "rows are exported"
like "$metrics" "^payymo_tenant_exec_seconds\\{[^}]*tenant=\"alpha\"" "execution time is exported"
like "$metrics" "^payymo_tenant_rate_limited\\{[^}]*tenant=\"alpha\"" "rate-limited calls are exported"
like "$metrics" "^payymo_tenant_shared_blks_hit\\{[^}]*tenant=\"alpha\"" "shared buffer hits are exported"
like "$metrics" "^payymo_tenant_wal_bytes\\{[^}]*tenant=\"alpha\"" "WAL bytes are exported"
like "$metrics" "# TYPE payymo_tenant_statements counter" "statements are a counter"
like "$metrics" "^payymo_alerts_open\\{[^}]*metric=\"statements\",[^}]*tenant=\"alpha\",tenant_id=\"$ALPHA_ID\"\\} 1$" \
    "alpha's open alert is exported with its metric"
unlike "$metrics" "^payymo_alerts_open\\{[^}]*tenant=\"bravo\"" "no alert for bravo, which has no rule"
fp2=$(q -c "SELECT fingerprint FROM payymo.key_status() WHERE version = 2")
like "$metrics" "^payymo_key_active\\{fingerprint=\"$fp2\",[^}]*version=\"2\"\\} 1$" "key version 2 encrypts, with its fingerprint"
like "$metrics" "^payymo_key_active\\{[^}]*version=\"1\"\\} 0$" "key version 1 only decrypts"
unlike "$(cat "$EXT_DIR/exporter.log")" "level=error" "the exporter logged no error"

done_testing
