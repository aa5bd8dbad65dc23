#!/usr/bin/env bash
# Crash restart: while 4 clients write (inserts with encrypted tokens and
# updates, test/extended/crash_load.py), the postmaster is killed with
# SIGKILL; after crash recovery no row a client saw committed is lost, no
# row appears that no client attempted, row level security, the policy and
# the trigger are intact, payymo.audit() is clean, isolation still holds and
# every token still decrypts.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh
. test/extended/common.sh
trap 'kill "${load_pid:-}" 2>/dev/null; ext_cleanup' EXIT

min_commits=${PAYYMO_CRASH_COMMITS:-400}

ext_cluster_start >/dev/null || { echo "Bail out! cluster did not start"; exit 1; }
wlog=$EXT_DIR/writes.log
: >"$wlog"
conn=(--host "$EXT_DIR" --port "$PGPORT" --log "$wlog")

"$EXT_PY" test/extended/crash_load.py load "${conn[@]}" --writers 4 --seconds 120 \
    >"$EXT_DIR/load.out" 2>&1 &
load_pid=$!
for i in $(seq 1 600); do                       # at most 60 s
    [ "$(grep -c '^ok ' "$wlog")" -ge "$min_commits" ] && break
    kill -0 "$load_pid" 2>/dev/null || break
    sleep 0.1
done
before=$(grep -c '^ok ' "$wlog")
ok $(( !(before >= min_commits) )) "the write load is running ($before commits acknowledged)"

pm=$(head -1 "$PGDATA_DIR/postmaster.pid")
kill -9 "$pm"
ok $? "SIGKILL to the postmaster (pid $pm) during the load"
for i in $(seq 1 300); do kill -0 "$load_pid" 2>/dev/null || break; sleep 0.1; done
wait "$load_pid"
rc=$?
load_pid=
sed 's/^/# /' "$EXT_DIR/load.out"
is "$rc" 0 "every writer lost its connection to the killed server"
acked=$(grep -c '^ok ' "$wlog")
tried=$(grep -c '^try ' "$wlog")

# The backends notice the postmaster's death and exit; until then their
# shared memory blocks a restart, so retry (bounded).
started=1
for i in $(seq 1 30); do
    if cluster_ctl start 2>/dev/null; then started=0; break; fi
    sleep 1
done
ok "$started" "the cluster restarts after the crash"
wait_for_log "database system was interrupted|not properly shut down; automatic recovery in progress"
ok $? "the server log shows crash recovery"

out=$("$EXT_PY" test/extended/crash_load.py verify "${conn[@]}")
rc=$?
printf '%s\n' "$out" | sed 's/^\([^#]\)/# \1/'
s=$(printf '%s\n' "$out" | grep '^acknowledged_rows=')
is "$rc" 0 "after restart: no acknowledged row lost, none unexplained, tokens decrypt, isolation holds"
is "$(field violations "$s")" 0 "violations = 0"
acked_rows=$(field acknowledged_rows "$s")
ok $(( !(${acked_rows:-0} > 0) )) \
    "$(field acknowledged_rows "$s") acknowledged rows (of $acked acknowledged and $tried attempted writes) all there; $(field in_doubt "$s") in doubt"
is "$(field tokens_decrypted "$s")" "$(field rows_after_restart "$s")" \
    "every token after restart decrypts for its own tenant ($(field tokens_decrypted "$s"))"

is "$(q -c "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'items'::regclass")" \
   "t|t" "row level security is still enabled and forced on items"
is "$(q -c "SELECT count(*) FROM pg_policies WHERE tablename = 'items' AND policyname = 'payymo_tenant_isolation'")" \
   1 "the isolation policy is still there"
is "$(q -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal AND tgenabled = 'O'")" \
   "$(q -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal")" \
   "all of items' triggers are still enabled"
is "$(q -c "SELECT severity || ' ' || object || ': ' || problem FROM payymo.audit()")" "" "payymo.audit() is clean after the crash"

client() { psql -X -q -A -t -U payymo_client "$@" 2>&1; }
got=$(client -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA_KEY')" \
      -c "INSERT INTO items (marker, writer, payload) VALUES (gen_random_uuid(), 'after', 'x') RETURNING tenant_id" \
      -c "COMMIT" | tail -1)
is "$got" "$ALPHA_ID" "after restart the trigger still stamps tenant_id"
got=$(client -v VERBOSITY=verbose -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA_KEY')" \
      -c "INSERT INTO items (marker, writer, payload, tenant_id) VALUES (gen_random_uuid(), 'after', 'x', $BRAVO_ID)")
like "$got" "ERROR:  42501" "after restart a write for another tenant is refused (42501)"
got=$(client -c "SELECT count(*) FROM items")
like "$got" "no tenant context set" "after restart a client without context fails closed"

done_testing
