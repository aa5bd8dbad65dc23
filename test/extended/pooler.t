#!/usr/bin/env bash
# Tenant isolation through a real pooler: PgBouncer in transaction pooling
# mode, many clients on few server connections.
#   1. 16 clients (PAYYMO_POOL_CLIENTS) alternate tenants alpha and bravo over
#      2 server connections (PAYYMO_POOL_SIZE); every transaction is checked
#      (test/extended/pool_clients.py): no inherited context, set_tenant and
#      current_tenant give the tenant, every visible row is the tenant's and
#      none of its rows is missing, inserts are stamped with it, and a
#      transaction that skips set_tenant fails with 42501.
#   2. The hazard the README warns about is real: with set_tenant(key, false)
#      (session scope), the next client on the same server connection
#      inherits the tenant, because PgBouncer does not run server_reset_query
#      in transaction mode; transaction scope on the same connection does not
#      leak; and session pooling's DISCARD ALL does clear it.  The checker
#      of step 1 reports it too when one of 8 clients uses session scope.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh
. test/extended/common.sh
trap ext_cleanup EXIT

clients=${PAYYMO_POOL_CLIENTS:-16}
txns=${PAYYMO_POOL_TXNS:-150}
size=${PAYYMO_POOL_SIZE:-2}

ext_cluster_start >/dev/null || { echo "Bail out! cluster did not start"; exit 1; }
bouncer_start "$size" || { echo "Bail out! pgbouncer did not start"; exit 1; }
ok 0 "pgbouncer $(pgbouncer --version | head -1 | cut -d' ' -f2) runs in transaction mode, pool size $size"

# --- 1. many clients, two tenants, few server connections
out=$(timeout 300 "$EXT_PY" test/extended/pool_clients.py --host "$BOUNCER_DIR" \
        --port "$BOUNCER_PORT" --clients "$clients" --txns "$txns")
rc=$?
printf '%s\n' "$out" | sed 's/^\([^#]\)/# \1/'
summary=$(printf '%s\n' "$out" | grep '^clients=')
is "$rc" 0 "pooled clients finished without a violation or an error"
is "$(field violations "$summary")" 0 "violations = 0"
is "$(field transactions "$summary")" "$((clients * txns + clients * ((txns + 4) / 5)))" \
    "every transaction ran ($clients clients x $txns, plus the no-context ones)"
backends=$(field server_backends "$summary")
ok $(( !(backends >= 1 && backends <= size) )) \
    "$clients clients shared $backends server connection(s) (pool size $size)"
checked=$(field rows_checked "$summary")
ok $(( !(checked > clients * txns) )) "rows checked: $checked"

# The same with users' credentials: session tokens and JWTs.
q >/dev/null <<SQL
SELECT payymo.create_user($ALPHA_ID, 'pool@alpha.example', 'pool password a', subject => 'pool-alpha');
SELECT payymo.create_user($BRAVO_ID, 'pool@bravo.example', 'pool password b', subject => 'pool-bravo');
SQL
ALPHA_SESSION=$(q -c "SELECT payymo.login('alpha', 'pool@alpha.example', 'pool password a')")
BRAVO_SESSION=$(q -c "SELECT payymo.login('bravo', 'pool@bravo.example', 'pool password b')")
jwt=$(/usr/bin/python3 - "$ALPHA_ID" "$BRAVO_ID" <<'PY'
import base64, json, sys, time
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
k = ed25519.Ed25519PrivateKey.generate()
print(json.dumps({"kty": "OKP", "crv": "Ed25519", "kid": "pool", "x": b(k.public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw))}))
for tid, sub in ((int(sys.argv[1]), "pool-alpha"), (int(sys.argv[2]), "pool-bravo")):
    h = b(json.dumps({"alg": "EdDSA", "kid": "pool"}).encode())
    p = b(json.dumps({"iss": "https://idp.example/pool", "aud": "pool", "exp": int(time.time()) + 3600,
                      "tenant_id": tid, "sub": sub}).encode())
    print(h + "." + p + "." + b(k.sign((h + "." + p).encode())))
PY
)
q -v jwk="$(sed -n 1p <<<"$jwt")" >/dev/null \
    <<<"SELECT payymo.add_jwt_issuer('https://idp.example/pool', 'pool', 'EdDSA', :'jwk'::jsonb)"
ALPHA_JWT=$(sed -n 2p <<<"$jwt")
BRAVO_JWT=$(sed -n 3p <<<"$jwt")
export ALPHA_SESSION BRAVO_SESSION ALPHA_JWT BRAVO_JWT
for credential in session jwt; do
    out=$(timeout 300 "$EXT_PY" test/extended/pool_clients.py --host "$BOUNCER_DIR" \
            --port "$BOUNCER_PORT" --clients 8 --txns 60 --seed-rows 2 --credential "$credential")
    rc=$?
    printf '%s\n' "$out" | sed 's/^\([^#]\)/# \1/'
    summary=$(printf '%s\n' "$out" | grep '^clients=')
    is "$rc|$(field violations "$summary")|$(field transactions "$summary")" "0|0|$((8 * 60 + 8 * 12))" \
        "pooled clients presenting users' ${credential} credentials: no violation, every transaction ran"
done

# The same checker catches a leak: one client of 8 using session scope.
out=$(timeout 120 "$EXT_PY" test/extended/pool_clients.py --host "$BOUNCER_DIR" \
        --port "$BOUNCER_PORT" --clients 8 --txns 40 --seed-rows 2 --session-clients 1)
printf '%s\n' "$out" | grep '^clients=' | sed 's/^/# /'
hazard=$(printf '%s\n' "$out" | grep '^clients=')
inherited=$(field inherited "$hazard")
ok $(( !(inherited > 0) )) \
    "HAZARD under load: with 1 of 8 clients on session scope, the others inherited its context $inherited times"
is "$(field errors "$hazard")" 0 "... and that run had no unexpected errors"

# --- 2. session scope through a transaction pooler: the documented hazard
one() { through_bouncer payymo_one "$@"; }
alpha_rows=$(q -c "SELECT count(*) FROM items WHERE tenant_id = $ALPHA_ID")
pid_s=$(one -c "SELECT payymo.set_tenant('$ALPHA_KEY', false)" -c "SELECT pg_backend_pid()" | tail -1)
got=$(one -c "SELECT current_setting('payymo.tenant_id')" -c "SELECT count(*) FROM items" \
          -c "SELECT pg_backend_pid()")
is "$got" "$ALPHA_ID
$alpha_rows
$pid_s" "HAZARD: after set_tenant(key, false), another client on the same server connection inherits tenant alpha and reads its $alpha_rows rows"
got=$(one -c "BEGIN" -c "SELECT payymo.set_tenant('$BRAVO_KEY')" -c "COMMIT" -c "SELECT payymo.current_tenant()")
is "$got" "$BRAVO_ID
$ALPHA_ID" "HAZARD: the inherited session context comes back after that client's own transaction"
one -c "SELECT payymo.clear_tenant()" >/dev/null
got=$(one -c "SELECT payymo.current_tenant()")
like "$got" "no tenant context set" "clear_tenant() removes the inherited context"

got=$(one -c "BEGIN" -c "SELECT payymo.set_tenant('$ALPHA_KEY')" -c "COMMIT")
got=$(one -c "SELECT current_setting('payymo.tenant_id')" -c "SELECT pg_backend_pid()")
is "$got" "
$pid_s" "transaction scope on the same server connection: the next client sees no context"
got=$(one -c "SELECT count(*) FROM items")
like "$got" "ERROR: .*no tenant context set" "... and its queries on items fail closed (42501)"

# --- 3. cursors declared WITH HOLD keep their rows after COMMIT, so behind a
# transaction pooler the next client could FETCH them: refused under a
# transaction-scoped context, and a context switch is refused while one of
# another context is open.
got=$(one -c "BEGIN" -c "SELECT payymo.set_tenant('$BRAVO_KEY')" \
          -c "DECLARE bravo_rows CURSOR WITH HOLD FOR SELECT payload FROM items" -c "COMMIT")
like "$got" "cannot declare a WITH HOLD cursor under a transaction-scoped tenant context" \
    "through the pooler, DECLARE ... WITH HOLD under a transaction-scoped context is refused"
got=$(one -c "FETCH ALL FROM bravo_rows")
like "$got" "cursor \"bravo_rows\" does not exist" "so the next client on the server connection finds no cursor"
got=$(one -c "BEGIN" -c "DECLARE early CURSOR WITH HOLD FOR SELECT payload FROM items" \
          -c "SELECT payymo.set_tenant('$BRAVO_KEY')" -c "COMMIT")
like "$got" "cursor \"early\" was declared WITH HOLD under another tenant context" \
    "a held cursor declared before set_tenant in the same transaction blocks the context"
got=$(one -c "FETCH ALL FROM early")
like "$got" "cursor \"early\" does not exist" "and the rolled-back transaction took it with it"

sess() { through_bouncer payymo_session "$@"; }
pid_a=$(sess -c "SELECT payymo.set_tenant('$ALPHA_KEY', false)" -c "SELECT pg_backend_pid()" | tail -1)
got=$(sess -c "SELECT current_setting('payymo.tenant_id')" -c "SELECT pg_backend_pid()")
is "$got" "
$pid_a" "session pooling: DISCARD ALL (server_reset_query) clears a session context before the next client"

done_testing
