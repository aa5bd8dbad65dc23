#!/usr/bin/env bash
# `make bench-identity`: what a user's credential costs next to an API key.
#
# 1. Per call, inside one backend (plpgsql loops of IDENTITY_CALLS calls,
#    IDENTITY_ROUNDS interleaved rounds, medians): set_config() of a plain
#    setting (what hand-written RLS does), set_tenant(), set_session(), and
#    set_tenant_jwt() with EdDSA, RS256 and ES256 tokens, next to the
#    signature libraries' own verify cost (`openssl speed` for RS256 and
#    ES256; libsodium's Ed25519 through PyNaCl, which adds a little).
# 2. login() with the default Argon2id parameters: a wrong password, an
#    unknown email and a disabled user must take the same time (each
#    failure from its own client, so that the throttle stays out of it).
#
#   bench/identity.sh                      (about a minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib.sh

CALLS=${IDENTITY_CALLS:-5000}
ROUNDS=${IDENTITY_ROUNDS:-5}
LOGINS=${IDENTITY_LOGINS:-15}

work=$(mktemp -d /tmp/payymo-bench-identity.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop; rm -rf "$work"' EXIT
if [ "${BENCH_BUILD:-1}" = 1 ]; then
    build_and_install "$work/build.log" || { cat "$work/build.log"; exit 1; }
fi
cluster_start "shared_preload_libraries = 'payymo'" >/dev/null

q >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION payymo;
SELECT payymo.create_tenant('bench', 'Bench', tenant_id => 1, admin_email => 'boss@bench.example',
                            admin_password => 'bench password');
SELECT payymo.set_user_status(payymo.create_user(1, 'off@bench.example', 'bench password'), 'disabled');
UPDATE payymo.users SET subject = 'idp|boss' WHERE email = 'boss@bench.example';
CREATE TABLE creds (kind text PRIMARY KEY, cred text);
INSERT INTO creds VALUES ('set_tenant', payymo.issue_api_key(1)),
                         ('set_session', payymo.login('bench', 'boss@bench.example', 'bench password'));
SQL
/usr/bin/python3 - >"$work/jwt.tsv" <<'PY'
import base64, json, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
u = lambda i, n=None: b(i.to_bytes(n or (i.bit_length() + 7) // 8, "big"))
ed = ed25519.Ed25519PrivateKey.generate()
rk = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ek = ec.generate_private_key(ec.SECP256R1())
def es(m):
    r, s = decode_dss_signature(ek.sign(m, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
keys = {
    "EdDSA": ({"kty": "OKP", "crv": "Ed25519", "x": b(ed.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw))}, ed.sign),
    "RS256": ({"kty": "RSA", "n": u(rk.public_key().public_numbers().n), "e": u(65537)},
              lambda m: rk.sign(m, padding.PKCS1v15(), hashes.SHA256())),
    "ES256": ({"kty": "EC", "crv": "P-256", "x": u(ek.public_key().public_numbers().x, 32),
               "y": u(ek.public_key().public_numbers().y, 32)}, es),
}
for alg, (jwk, sign) in keys.items():
    iss = "https://idp.example/" + alg
    jwk["kid"] = "k1"
    h = b(json.dumps({"alg": alg, "kid": "k1"}).encode())
    p = b(json.dumps({"iss": iss, "aud": "bench", "exp": int(time.time()) + 3600, "tenant_id": 1,
                      "sub": "idp|boss"}).encode())
    print("\t".join([alg, iss, json.dumps(jwk), h + "." + p + "." + b(sign((h + "." + p).encode()))]))
PY
while IFS=$'\t' read -r alg iss jwk token; do
    q -v alg="$alg" -v iss="$iss" -v jwk="$jwk" -v tok="$token" >/dev/null <<'SQL'
SELECT payymo.add_jwt_issuer(:'iss', 'bench', :'alg', :'jwk'::jsonb);
INSERT INTO creds VALUES ('set_tenant_jwt ' || :'alg', :'tok');
SQL
done <"$work/jwt.tsv"

# --- per-call cost: interleaved rounds, median of the rounds per kind
q >/dev/null <<'SQL'
CREATE TABLE samples (kind text, us double precision);
CREATE FUNCTION loop_us(kind text, cred text, n int) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1..n LOOP
        CASE kind
            WHEN 'set_config' THEN PERFORM set_config('app.tenant_id', '1', true);
            WHEN 'set_tenant' THEN PERFORM payymo.set_tenant(cred);
            WHEN 'set_session' THEN PERFORM payymo.set_session(cred);
            ELSE PERFORM payymo.set_tenant_jwt(cred);
        END CASE;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END $$;
SQL
for r in $(seq "$ROUNDS"); do
    # In a transaction block, as applications call them (outside one, each
    # transaction-scoped call would also warn).
    q -c "BEGIN" -c "INSERT INTO samples SELECT kind, loop_us(kind, cred, $CALLS)
            FROM (SELECT 'set_config' AS kind, NULL AS cred UNION ALL SELECT * FROM creds) c
           ORDER BY random()" -c "COMMIT" >/dev/null
done
speed=$(openssl speed -seconds 1 ed25519 rsa2048 ecdsap256 2>/dev/null)
lib_us() { awk -v what="$1" -v col="$2" '$0 ~ what { print 1e6 / $col; exit }' <<<"$speed"; }
# Ed25519 is verified by libsodium, not OpenSSL: its cost through PyNaCl.
ed_lib=$(/usr/bin/python3 -c '
import nacl.signing, timeit
k = nacl.signing.SigningKey.generate()
m = k.sign(b"x" * 300)
print(min(timeit.repeat(lambda: k.verify_key.verify(m), number=2000, repeat=5)) / 2000 * 1e6)')
rsa_lib=$(lib_us "^rsa 2048 bits" 7)
ec_lib=$(lib_us "^ 256 bits ecdsa" 8)
echo "per call, inside one backend (µs, median of $ROUNDS rounds of $CALLS calls):"
q -F $'\t' -c "SELECT kind, percentile_cont(0.5) WITHIN GROUP (ORDER BY us) FROM samples GROUP BY kind ORDER BY 2" |
while IFS=$'\t' read -r kind us; do
    case "$kind" in
        "set_tenant_jwt EdDSA") lib=$ed_lib ;;
        "set_tenant_jwt RS256") lib=$rsa_lib ;;
        "set_tenant_jwt ES256") lib=$ec_lib ;;
        *) lib= ;;
    esac
    if [ -n "$lib" ]; then
        printf '  %-22s %8.1f   (the library verifies in %.1f µs: %.2fx)\n' "$kind" "$us" "$lib" "$(echo "$us / $lib" | bc -l)"
    else
        printf '  %-22s %8.1f\n' "$kind" "$us"
    fi
done
q -A -t -c "SELECT format('  set_session / set_tenant: %sx', round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY us) FROM samples WHERE kind = 'set_session')::numeric
                                                       / (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY us) FROM samples WHERE kind = 'set_tenant')::numeric, 2))"

# --- login failures: the same time whatever failed
q >/dev/null <<'SQL'
CREATE TABLE logins (kind text, ms double precision);
CREATE FUNCTION try_login(email text, password text, client text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    BEGIN
        PERFORM payymo.login('bench', email, password, client => client);
    EXCEPTION WHEN invalid_authorization_specification THEN NULL;
    END;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e3;
END $$;
SQL
q -c "SELECT try_login('boss@bench.example', 'wrong password', 'warm-up')" >/dev/null
q -c "INSERT INTO logins SELECT kind, try_login(email, 'not the password', 'bench-' || kind || g)
        FROM generate_series(1, $LOGINS) g,
             (VALUES ('wrong password', 'boss@bench.example'), ('unknown email', 'nobody@bench.example'),
                     ('disabled user', 'off@bench.example')) k(kind, email)
       ORDER BY random()" >/dev/null
echo "login() failures with the default Argon2id parameters (ms, $LOGINS each, interleaved):"
q -F $'\t' -c "SELECT kind, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), min(ms), max(ms)
                 FROM logins GROUP BY kind ORDER BY kind" |
    while IFS=$'\t' read -r kind med lo hi; do
        printf '  %-16s median %6.1f   min %6.1f   max %6.1f\n' "$kind" "$med" "$lo" "$hi"
    done
