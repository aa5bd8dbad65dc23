#!/usr/bin/env bash
# The Flask example (examples/flask/app.py) behind PgBouncer in transaction
# pooling mode: two tenants' requests, concurrently, from Flask's test
# client in several threads (test/extended/flask_clients.py).  Each sees
# only its own rows and tokens; a request without a key gets 401 and no
# rows; a forged tenant header changes nothing; another tenant's domain is
# refused; the server log carries the tenant and the request id.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh
. test/extended/common.sh
trap ext_cleanup EXIT

threads=${PAYYMO_FLASK_THREADS:-4}
requests=${PAYYMO_FLASK_REQUESTS:-15}

ext_cluster_start >/dev/null || { echo "Bail out! cluster did not start"; exit 1; }
q -v app_role=payymo_client -f examples/flask/schema.sql >/dev/null || { echo "Bail out! schema"; exit 1; }
bravo_domain=$(q -c "SELECT payymo.add_tenant_domain($BRAVO_ID, 'banking.bravo.example')")
bouncer_start 2 || { echo "Bail out! pgbouncer did not start"; exit 1; }

out=$(timeout 300 "$EXT_PY" test/extended/flask_clients.py \
        "postgresql+psycopg2://payymo_client@/$EXT_DB?host=$BOUNCER_DIR&port=$BOUNCER_PORT" \
        "$ALPHA_KEY" "$BRAVO_KEY" "$bravo_domain" "$threads" "$requests" 2>&1)
printf '%s\n' "$out" | grep -E '^(#|[a-z_]+=)' | sed 's/^\([^#]\)/# \1/'
all=$(printf '%s\n' "$out" | grep -E '^[a-z_]+=' | tr '\n' ' ')

is "$(field requests "$all")" "$((threads * 2 * requests * 4))" "every request of $((threads * 2)) concurrent clients was served"
is "$(field violations "$all")" 0 "each tenant saw exactly its own rows and tokens"
is "$(field no_key "$all")" 401 "a request without a key gets 401"
is "$(field no_key_rows "$all")" 0 "... and no rows"
is "$(field bad_key "$all")" 401 "a bad key gets 401"
is "$(field forged_header "$all")|$(field forged_header_names "$all")" "200|alpha" \
    "forged tenant headers change nothing: alpha's key still reaches alpha's rows only"
is "$(field other_domain "$all")" 403 "alpha's key on bravo's white-label domain is refused"
like "$(field own_domain "$all")" "^200$" "bravo's key on its own domain works"
is "$(field cross_reference "$all")" 409 "a transaction pointing at bravo's connection is refused as a missing reference"
rid=$(field cross_request_id "$all")
is "$rid" "req-cross-7f3a" "the response carries the request id"
wait_for_log "payymo tenant=$ALPHA_ID request=$rid\\]" "$PAYYMO_LOG"
ok $? "the server log entry of that request's error carries the tenant and the request id"
is "$(q -c "SELECT count(*) FROM bank.bank_connections b JOIN payymo.tenants t ON t.id = b.tenant_id
             WHERE b.account_name <> t.slug")" 0 "every row in the database carries the tenant that wrote it"

done_testing
