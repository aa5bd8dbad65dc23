#!/usr/bin/env bash
# JWTs from identity providers: set_tenant_jwt() against tokens made by an
# independent implementation (test/jwt/make_tokens.py, Python's
# cryptography: fresh keys on every run) for EdDSA, HS256, RS256 and ES256
# -- valid ones, and every hostile form: alg none, algorithm confusion, bad
# signatures, unknown kid or issuer, time claims, audiences, tenants and
# users that do not qualify, malformed base64 and JSON, duplicate names,
# oversized tokens.  Also key registration, rotation, who may read keys,
# failing closed, and what reaches the server log.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

db=payymo_jwt
work=$(mktemp -d /tmp/payymo-jwt.XXXXXX)
trap 'q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; rm -rf "$work"' EXIT
q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
q -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION payymo;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jwt_client') THEN CREATE ROLE jwt_client LOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jwt_ops') THEN CREATE ROLE jwt_ops LOGIN IN ROLE payymo_admin; END IF;
END $$;
SELECT payymo.create_tenant('jwt-alpha', 'Alpha', tenant_id => 7001);
SELECT payymo.create_tenant('jwt-susp', 'Suspended', tenant_id => 7002);
SELECT payymo.suspend_tenant(7002);
SELECT payymo.create_user(7001, 'adm@alpha.example', NULL, 'admin', subject => 'idp|adm');
SELECT payymo.create_user(7001, 'mem@alpha.example', NULL, 'member', subject => 'idp|mem');
SELECT payymo.set_user_status(payymo.create_user(7001, 'dis@alpha.example', NULL, 'member', subject => 'idp|dis'),
                              'disabled');
SQL
admin_id=$(q -d "$db" -c "SELECT id FROM payymo.users WHERE subject = 'idp|adm'")
member_id=$(q -d "$db" -c "SELECT id FROM payymo.users WHERE subject = 'idp|mem'")
key=$(q -d "$db" -c "SELECT payymo.issue_api_key(7001)")

/usr/bin/python3 test/jwt/make_tokens.py 7001 jwt-alpha 7002 'idp|adm' 'idp|mem' 'idp|dis' >"$work/tokens.json"
ok $? "the independent implementation made keys and tokens"

# as ROLE SQL [VAR=VALUE...]: run SQL from stdin-free psql with variables.
as() {
    local role=$1 sql=$2
    shift 2
    local vars=()
    for v in "$@"; do vars+=(-v "$v"); done
    psql -X -q -A -t -v VERBOSITY=verbose -U "$role" -d "$db" "${vars[@]}" <<<"$sql" 2>&1 | grep -v '^LOCATION:'
}

# --- registration, as a member of payymo_admin
while IFS=$'\t' read -r issuer alg jwks user_claim; do
    out=$(as jwt_ops "SELECT payymo.add_jwt_issuer(:'iss', :'aud', :'alg', :'jwks'::jsonb, user_claim => NULLIF(:'uc', ''))" \
          "iss=$issuer" "aud=payymo-tests" "alg=$alg" "jwks=$jwks" "uc=$user_claim")
    is "$out" "" "payymo_admin registers the $alg issuer $issuer"
done < <(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for i in d["issuers"]:
    print("\t".join([i["issuer"], i["algorithm"], json.dumps(i["jwks"]), i["user_claim"] or ""]))' "$work/tokens.json")

# --- every case, as a client
from=$(wc -l <"$PAYYMO_LOG")
while IFS=$'\t' read -r name token expect; do
    expect=${expect//\{member\}/$member_id}
    expect=${expect//\{admin\}/$admin_id}
    out=$(as jwt_client "SELECT payymo.set_tenant(:'key', false) \\g /dev/null
SELECT payymo.set_tenant_jwt(:'tok', false) \\g /dev/null
SELECT 'context=' || current_setting('payymo.tenant_id')" "tok=$token" "key=$key")
    if [ "${expect#ok:}" != "$expect" ]; then
        is "$out" "context=${expect#ok:}" "$name"
    else
        is "$(grep -E '^(ERROR|DETAIL)' <<<"$out" | head -2 | tr '\n' '|')" \
           "ERROR:  28000: invalid token|DETAIL:  $expect|" "refused: $name"
        is "$(grep '^context=' <<<"$out")" "context=" "... and the API key's context set before it is gone"
    fi
done < <(/usr/bin/python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["cases"]:
    print("\t".join([c["name"], c["token"], c["expect"]]))' "$work/tokens.json")

log=$(tail -n +"$((from + 1))" "$PAYYMO_LOG")
like "$log" "payymo security event: bad_jwt" "refusals are security events"
leaked=0
while read -r token; do
    sig=${token##*.}
    [ ${#sig} -ge 16 ] && grep -qF -- "$sig" <<<"$log" && leaked=1
done < <(/usr/bin/python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["cases"]: print(c["token"][:8000])' "$work/tokens.json")
is "$leaked" "0" "no token's signature reaches the server log"

# --- scope: the transaction by default
valid=$(/usr/bin/python3 -c '
import json, sys
print(json.load(open(sys.argv[1]))["cases"][0]["token"])' "$work/tokens.json")
is "$(as jwt_client "BEGIN;
SELECT payymo.set_tenant_jwt(:'tok') \\g /dev/null
SELECT payymo.current_user_role();
COMMIT;
SELECT payymo.current_tenant();" "tok=$valid" | head -2 | tr '\n' '|')" \
   "member|ERROR:  42501: no tenant context set|" "a token's context ends with the transaction"

# --- who may do what
like "$(as jwt_client "SELECT count(*) FROM payymo.jwt_keys")" "ERROR:  42501" "clients cannot read keys"
like "$(as jwt_client "SELECT payymo.add_jwt_issuer('x', 'y', 'EdDSA', '{}')")" "ERROR:  42501" \
     "clients cannot register issuers"
like "$(as jwt_ops "SELECT key FROM payymo.jwt_keys")" "ERROR:  42501" \
     "administrators see key ids, not key material (an HS256 secret)"
is "$(as jwt_ops "SELECT count(*) FROM payymo.jwt_keys WHERE jwk ? 'k'" 2>&1 | head -1)" \
   "ERROR:  42501: permission denied for table jwt_keys" "... nor the registered JWKs"
is "$(q -d "$db" -c "SELECT count(*) FROM payymo.jwt_keys WHERE jwk ? 'k'")" "0" \
   "an HS256 secret is not kept in the stored JWK"

# --- keys that are refused at registration
reg() { as jwt_ops "SELECT payymo.add_jwt_issuer('https://weak.example/', 'a', :'alg', :'jwk'::jsonb)" "alg=$1" "jwk=$2" | head -2 | tr '\n' '|'; }
b64() { /usr/bin/python3 -c 'import base64, sys; print(base64.urlsafe_b64encode(bytes.fromhex(sys.argv[1])).rstrip(b"=").decode())' "$1"; }
like "$(reg HS256 "{\"kty\": \"oct\", \"kid\": \"s\", \"k\": \"$(b64 "$(printf '%062d' 7)")\"}")" \
     "ERROR:  22023: invalid JWK\|DETAIL:  An HS256 secret is at least 32 bytes" "an HS256 secret under 32 bytes"
rsa1024=$(/usr/bin/python3 -c '
from cryptography.hazmat.primitives.asymmetric import rsa
import base64, json
n = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
b = lambda i: base64.urlsafe_b64encode(i.to_bytes((i.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
print(json.dumps({"kty": "RSA", "kid": "r", "n": b(n.n), "e": b(n.e)}))')
like "$(reg RS256 "$rsa1024")" "DETAIL:  An RSA modulus has at least 2048 bits" "an RSA key under 2048 bits"
like "$(reg ES256 "{\"kty\": \"EC\", \"crv\": \"P-256\", \"kid\": \"e\", \"x\": \"$(b64 "$(printf '%064d' 1)")\", \"y\": \"$(b64 "$(printf '%064d' 2)")\"}")" \
     "DETAIL:  The key is not a valid public key" "a point that is not on P-256"
like "$(reg EdDSA "{\"kty\": \"RSA\", \"kid\": \"x\", \"n\": \"AQAB\", \"e\": \"AQAB\"}")" \
     "DETAIL:  Key \"x\" is not a EdDSA signing key" "a key of another type than the algorithm"
like "$(reg EdDSA "{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"$(b64 "$(printf '%064d' 3)")\"}")" \
     "DETAIL:  Every key needs a \"kid\"" "a key without a kid"
like "$(reg none "{}")" "ERROR:  22023: unsupported JWT algorithm" "algorithm none cannot be registered"
is "$(q -d "$db" -c "SELECT count(*) FROM payymo.jwt_issuers WHERE issuer = 'https://weak.example/'")" "0" \
   "no refused registration left an issuer behind"

# --- rotation: add a kid, then remove the old one
ed_iss=https://idp.example/eddsa
new_keys=$(/usr/bin/python3 -c '
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization
import base64, json, time
k = ed25519.Ed25519PrivateKey.generate()
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
raw = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
h = b(json.dumps({"alg": "EdDSA", "kid": "eddsa-2"}).encode())
p = b(json.dumps({"iss": "https://idp.example/eddsa", "aud": "payymo-tests", "exp": int(time.time()) + 600,
                  "tenant_id": 7001, "sub": "idp|mem"}).encode())
print(json.dumps({"kty": "OKP", "crv": "Ed25519", "kid": "eddsa-2", "x": b(raw)}))
print(h + "." + p + "." + b(k.sign((h + "." + p).encode())))')
jwk2=$(head -1 <<<"$new_keys")
tok2=$(tail -1 <<<"$new_keys")
like "$(as jwt_client "SELECT payymo.set_tenant_jwt(:'tok', false)" "tok=$tok2")" "DETAIL:  The issuer or its key id is not registered" \
     "a token of a key not yet registered is refused"
is "$(as jwt_ops "SELECT payymo.add_jwt_key(:'iss', :'jwk'::jsonb)" "iss=$ed_iss" "jwk=$jwk2")" "" "a second key is added"
is "$(as jwt_client "SELECT payymo.set_tenant_jwt(:'tok', false)" "tok=$tok2")" "7001" "tokens of the new key verify"
is "$(as jwt_client "SELECT payymo.set_tenant_jwt(:'tok', false)" "tok=$valid")" "7001" "... and those of the old one still do"
like "$(as jwt_ops "SELECT payymo.add_jwt_key(:'iss', :'jwk'::jsonb)" "iss=$ed_iss" "jwk=$jwk2")" "ERROR:  23505" \
     "a kid cannot be registered twice"
is "$(as jwt_ops "SELECT payymo.remove_jwt_key(:'iss', 'eddsa-1')" "iss=$ed_iss")" "t" "the old key is removed"
like "$(as jwt_client "SELECT payymo.set_tenant_jwt(:'tok', false)" "tok=$valid")" "DETAIL:  The issuer or its key id is not registered" \
     "tokens of a removed key are refused"
is "$(as jwt_ops "SELECT payymo.drop_jwt_issuer(:'iss')" "iss=$ed_iss")" "t" "an issuer is dropped"
like "$(as jwt_client "SELECT payymo.set_tenant_jwt(:'tok', false)" "tok=$tok2")" "DETAIL:  The issuer or its key id is not registered" \
     "... and its tokens are refused"

done_testing
