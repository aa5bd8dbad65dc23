#!/usr/bin/python3
"""Keys and tokens for test/shell/jwt.t, made with an implementation that is
not payymo's: Python's `cryptography` (Debian's python3-cryptography) for
Ed25519, RSA and P-256, and the standard library's hmac for HS256.

    make_tokens.py TENANT SLUG SUSPENDED SUBJECT_ADMIN SUBJECT_MEMBER SUBJECT_DISABLED

prints one JSON object: "issuers" (to register: issuer, algorithm, JWK set,
user claim) and "cases" (name, token, and the expected result: "ok:<the
context's setting>" or the refusal's detail)."""
import base64, hashlib, hmac, json, sys, time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

tenant, slug, suspended = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sub_admin, sub_member, sub_disabled = sys.argv[4:7]
now = int(time.time())
AUD = "payymo-tests"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Issuer:
    def __init__(self, alg, name, user_claim="sub"):
        self.alg, self.iss, self.user_claim, self.kid = alg, name, user_claim, alg.lower() + "-1"
        if alg == "EdDSA":
            self.key = ed25519.Ed25519PrivateKey.generate()
            raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        elif alg == "HS256":
            self.key = bytes(range(40))
            self.jwk = {"kty": "oct", "k": b64(self.key)}
        elif alg == "RS256":
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pn = self.key.public_key().public_numbers()
            self.jwk = {"kty": "RSA", "n": uint(pn.n), "e": uint(pn.e)}
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            pn = self.key.public_key().public_numbers()
            self.jwk = {"kty": "EC", "crv": "P-256", "x": b64(pn.x.to_bytes(32, "big")),
                        "y": b64(pn.y.to_bytes(32, "big"))}
        self.jwk.update({"kid": self.kid, "use": "sig", "alg": alg})

    def sign(self, msg):
        if self.alg == "EdDSA":
            return self.key.sign(msg)
        if self.alg == "HS256":
            return hmac.new(self.key, msg, hashlib.sha256).digest()
        if self.alg == "RS256":
            return self.key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.key.sign(msg, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def claims(self, **over):
        c = {"iss": self.iss, "aud": AUD, "exp": now + 600, "iat": now, "tenant_id": tenant, "sub": sub_member}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, header=None, payload=None, raw_payload=None, sign_with=None, **claims):
        h = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        h.update(header or {})
        signing = b64(json.dumps(h).encode()) + "." + b64(
            raw_payload if raw_payload is not None else json.dumps(payload or self.claims(**claims)).encode())
        sig = (sign_with or self.sign)(signing.encode())
        return signing + "." + b64(sig)


issuers = {alg: Issuer(alg, "https://idp.example/" + alg.lower()) for alg in ("EdDSA", "HS256", "RS256", "ES256")}
service = Issuer("EdDSA", "https://idp.example/service", user_claim=None)
ed, rs = issuers["EdDSA"], issuers["RS256"]
member_ok = "ok:%d/{member}/member" % tenant
cases = []
add = lambda name, token, expect: cases.append({"name": name, "token": token, "expect": expect})

for alg, i in issuers.items():
    add(alg + ": a valid token sets tenant and user", i.token(), member_ok)
    good = i.token().split(".")
    sig = bytearray(base64.urlsafe_b64decode(good[2] + "=="))
    sig[len(sig) // 2] ^= 1
    add(alg + ": one bit of the signature flipped", ".".join(good[:2] + [b64(bytes(sig))]),
        "The signature does not verify.")
    add(alg + ": a claim changed after signing",
        good[0] + "." + b64(json.dumps(i.claims(tenant_id=suspended + 1000)).encode()) + "." + good[2],
        "The signature does not verify.")

add("an admin user gets the admin role", ed.token(sub=sub_admin), "ok:%d/{admin}/admin" % tenant)
add("the tenant named by its slug", ed.token(tenant_id=slug), member_ok)
add("aud as an array that holds the audience", ed.token(aud=["other", AUD]), member_ok)
add("expired, but within the leeway", ed.token(exp=now - 10), member_ok)
add("a service token (issuer without a user claim) sets the tenant only", service.token(sub=None),
    "ok:%d" % tenant)

none_header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": ed.kid}).encode())
add('alg "none" with an empty signature', none_header + "." + b64(json.dumps(ed.claims()).encode()) + ".",
    "A part of the token is not strict base64url.")
add('alg "none" with a signature', ed.token(header={"alg": "none"}),
    'The algorithm is missing, "none" or not supported.')
rsa_pem = rs.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
rsa_der = rs.key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
for what, secret in (("PEM", rsa_pem), ("DER", rsa_der)):
    add("HS256 signed with the RS256 issuer's public key (%s) as the secret" % what,
        rs.token(header={"alg": "HS256"}, sign_with=lambda m, s=secret: hmac.new(s, m, hashlib.sha256).digest()),
        "The algorithm is not the issuer's.")
add("an algorithm payymo does not support (PS256)", rs.token(header={"alg": "PS256"}),
    'The algorithm is missing, "none" or not supported.')
add("an unknown kid", ed.token(header={"kid": "nope"}), "The issuer or its key id is not registered.")
add("another issuer's kid", ed.token(header={"kid": rs.kid}), "The issuer or its key id is not registered.")
add("an unregistered issuer", ed.token(iss="https://evil.example/"), "The issuer or its key id is not registered.")
add("no iss", ed.token(iss=None), 'The token has no "iss".')
add("no kid", ed.token(header={"kid": None}), 'The header has no "kid".')
add("a crit header", ed.token(header={"crit": ["exp"]}), 'The header has "crit" extensions, which payymo does not support.')
add("expired beyond the leeway", ed.token(exp=now - 120), "The token has expired.")
add("no exp", ed.token(exp=None), 'The token has no numeric "exp".')
add("exp as a string", ed.token(exp=str(now + 600)), 'The token has no numeric "exp".')
add("not valid yet", ed.token(nbf=now + 3600), "The token is not valid yet.")
add("nbf as a string", ed.token(nbf="0"), 'The "nbf" claim is not a number.')
add("another audience", ed.token(aud="someone-else"), "The audience is not the issuer's registered audience.")
add("an array of other audiences", ed.token(aud=["a", "b"]), "The audience is not the issuer's registered audience.")
add("no aud", ed.token(aud=None), "The audience is not the issuer's registered audience.")
add("a suspended tenant", ed.token(tenant_id=suspended), "The tenant claim names no active tenant.")
add("an unknown tenant id", ed.token(tenant_id=999999), "The tenant claim names no active tenant.")
add("an unknown tenant slug", ed.token(tenant_id="no-such-tenant"), "The tenant claim names no active tenant.")
add("a fractional tenant id", ed.token(tenant_id=tenant + 0.5), "The tenant claim names no active tenant.")
add("no tenant claim", ed.token(tenant_id=None), "The tenant claim names no active tenant.")
add("an unknown subject", ed.token(sub="nobody"), "The user claim names no active user of the tenant.")
add("a disabled user", ed.token(sub=sub_disabled), "The user claim names no active user of the tenant.")
add("no subject", ed.token(sub=None), "The user claim names no active user of the tenant.")
dup = ('{"iss": "%s", "aud": "%s", "exp": %d, "sub": "%s", "tenant_id": %d, "tenant_id": %d}'
       % (ed.iss, AUD, now + 600, sub_member, suspended, tenant))
add("a duplicate claim name (the last one is the good tenant)", ed.token(raw_payload=dup.encode()),
    "The payload is not a JSON object with unique names.")
add("a duplicate header name", ".".join([b64(('{"alg": "none", "alg": "%s", "kid": "%s"}' % (ed.alg, ed.kid)).encode())]
                                        + ed.token().split(".")[1:]),
    "The header is not a JSON object with unique names.")
add("a payload that is not JSON", ed.token(raw_payload=b"{not json"), "The payload is not a JSON object with unique names.")
add("a payload that is a JSON array", ed.token(raw_payload=b"[1, 2]"), "The payload is not a JSON object with unique names.")
add("a NUL byte in the payload", ed.token(raw_payload=json.dumps(ed.claims(sub="a\u0000b")).encode().replace(b"\\u0000", b"\x00")),
    "The payload is not a JSON object with unique names.")
add("invalid UTF-8 in the payload", ed.token(raw_payload=b'{"sub": "\xff"}'), "The payload is not a JSON object with unique names.")
t = ed.token().split(".")
add("base64 padding", ".".join([t[0], t[1] + "=", t[2]]), "A part of the token is not strict base64url.")
add("standard base64 characters", ".".join([t[0], t[1], t[2].replace("-", "+").replace("_", "/") + ("" if ("-" in t[2] or "_" in t[2]) else "+")]),
    "A part of the token is not strict base64url.")
add("two parts", t[0] + "." + t[1], "The token is not a compact JWS (three base64url parts).")
add("four parts", ".".join(t + [t[2]]), "The token is not a compact JWS (three base64url parts).")
add("an ES256 signature in DER form", issuers["ES256"].token(sign_with=lambda m: issuers["ES256"].key.sign(m, ec.ECDSA(hashes.SHA256()))),
    "The signature does not verify.")
add("an oversized token", ed.token(padding="x" * 9000), "The token is longer than 8192 bytes.")

print(json.dumps({
    "issuers": [{"issuer": i.iss, "algorithm": i.alg, "jwks": {"keys": [i.jwk]}, "user_claim": i.user_claim}
                for i in list(issuers.values()) + [service]],
    "audience": AUD,
    "cases": cases,
}))
