#!/usr/bin/env bash
# The Flask example (examples/flask/app.py) behind PgBouncer in transaction
# pooling mode: two tenants' requests, concurrently, from Flask's test
# client in several threads (test/extended/flask_clients.py).  Each sees
# only its own rows and tokens; a request without a key gets 401 and no
# rows; a forged tenant header changes nothing; another tenant's domain is
# refused; the server log carries the tenant and the request id.  Then a
# user's login, session token and logout, and an identity provider's JWT.
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
q >/dev/null <<SQL
SELECT payymo.create_user($ALPHA_ID, 'ann@alpha.example', 'ann''s password');
SELECT payymo.create_user($BRAVO_ID, 'bob@bravo.example', NULL, 'admin', subject => 'idp|bob');
SQL
jwt=$(/usr/bin/python3 - "$BRAVO_ID" <<'PY'
import base64, json, sys, time
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
k = ec.generate_private_key(ec.SECP256R1())
n = k.public_key().public_numbers()
print(json.dumps({"kty": "EC", "crv": "P-256", "kid": "flask", "x": b(n.x.to_bytes(32, "big")),
                  "y": b(n.y.to_bytes(32, "big"))}))
h = b(json.dumps({"alg": "ES256", "kid": "flask", "typ": "JWT"}).encode())
p = b(json.dumps({"iss": "https://login.bravo.example/", "aud": "payymo-flask", "exp": int(time.time()) + 3600,
                  "tenant_id": "bravo", "sub": "idp|bob"}).encode())
r, s = decode_dss_signature(k.sign((h + "." + p).encode(), ec.ECDSA(hashes.SHA256())))
print(h + "." + p + "." + b(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
PY
)
q -v jwk="$(sed -n 1p <<<"$jwt")" >/dev/null \
    <<<"SELECT payymo.add_jwt_issuer('https://login.bravo.example/', 'payymo-flask', 'ES256', :'jwk'::jsonb)"
export BRAVO_JWT=$(sed -n 2p <<<"$jwt")
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
is "$(field login_wrong_password "$all")" 401 "POST /login with a wrong password gets 401"
is "$(field login "$all")" 200 "POST /login with the right one returns a session token"
is "$(field session_me "$all")" "ann@alpha.example/member/$ALPHA_ID" "the session token makes the database set tenant and user"
is "$(field session_rows_of "$all")" "alpha" "... and reaches alpha's rows only"
is "$(field api_key_me "$all")" 403 "an API key has no user: /me is refused by the database (42501)"
is "$(field logout "$all")|$(field after_logout "$all")" "200|401" "after POST /logout the token gets 401"
is "$(field jwt_me "$all")" "bob@bravo.example/admin/$BRAVO_ID" "an identity provider's ES256 JWT sets bravo and its admin user"
is "$(field jwt_rows_of "$all")" "bravo" "... and reaches bravo's rows only"
is "$(field bad_jwt "$all")" 401 "a JWT with a broken signature gets 401"
is "$(q -c "SELECT count(*) FROM bank.bank_connections b JOIN payymo.tenants t ON t.id = b.tenant_id
             WHERE b.account_name <> t.slug")" 0 "every row in the database carries the tenant that wrote it"

done_testing
