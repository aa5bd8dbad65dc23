#!/usr/bin/env bash
# The ciphertext format is what the README says: an independent libsodium
# binding (python3-nacl), given only the root key from the key file, the
# tenant id and the context, derives the subkey itself (crypto_kdf =
# BLAKE2b keyed by the root key, salt = tenant id LE64, personal =
# "payymotk") and decrypts a payymo token; a token it writes the same way
# decrypts in payymo; and it reproduces key_status()'s fingerprints.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh
. test/shell/tap.sh

PY=/usr/bin/python3
keyed_cluster_start "1 2" || exit 1
keydir=$KEYDIR keyfile=$KEYFILE
q -c "SELECT payymo.create_tenant('interop-a', 'A')" -c "SELECT payymo.create_tenant('interop-b', 'B')" >/dev/null
tenant=$(q -c "SELECT id FROM payymo.tenants WHERE slug = 'interop-b'")
ok "$([ "$tenant" -gt 1 ]; echo $?)" "the tenant id is not 1 (so the subkey id matters)"

plain='interop ✓ ya29.token/äöü'
ctx='bank_connections.access_token'
as_tenant() { q -c "SELECT payymo.assume_tenant($tenant, false)" "$@" | tail -n1; }
token=$(as_tenant -c "SELECT encode(payymo.encrypt_token('$plain', '$ctx'), 'hex')")

# The independent implementation: everything from the README's format.
cat >"$keydir/interop.py" <<'PY'
import sys
import nacl.bindings as b
import nacl.hash
import nacl.encoding

keyfile, op, tenant, ctx = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
keys = {}
for line in open(keyfile):
    line = line.strip()
    if line and not line.startswith('#'):
        v, h = line.split(':')
        keys[int(v)] = bytes.fromhex(h)

def subkey(version):
    # libsodium crypto_kdf_derive_from_key(32, tenant, "payymotk", root)
    salt = tenant.to_bytes(8, 'little') + bytes(8)
    person = b'payymotk' + bytes(8)
    return nacl.hash.blake2b(b'', digest_size=32, key=keys[version], salt=salt,
                             person=person, encoder=nacl.encoding.RawEncoder)

def ad(version):
    return bytes([0xB1, version]) + tenant.to_bytes(8, 'little') + ctx

if op == 'decrypt':
    tok = bytes.fromhex(sys.stdin.read().strip())
    assert tok[0] == 0xB1
    version, nonce, body = tok[1], tok[2:26], tok[26:]
    m = b.crypto_aead_xchacha20poly1305_ietf_decrypt(body, ad(version), nonce, subkey(version))
    sys.stdout.write(m.decode('utf-8'))
elif op == 'encrypt':
    version = max(keys)
    nonce = b.randombytes(24)
    m = sys.stdin.read().encode('utf-8')
    c = b.crypto_aead_xchacha20poly1305_ietf_encrypt(m, ad(version), nonce, subkey(version))
    sys.stdout.write((bytes([0xB1, version]) + nonce + c).hex())
elif op == 'fingerprints':
    for v in sorted(keys, reverse=True):
        fp = nacl.hash.blake2b(b'payymo key fingerprint', digest_size=8, key=keys[v],
                               encoder=nacl.encoding.HexEncoder).decode()
        print('%d|%s' % (v, fp))
PY
py() { $PY "$keydir/interop.py" "$keyfile" "$@"; }

is "$(printf '%s' "$token" | py decrypt "$tenant" "$ctx")" "$plain" "python3-nacl decrypts a payymo token from the root key, tenant id and context"
is "${token:0:4}" "b102" "the token starts with format byte b1 and version 02"
ok "$(printf '%s' "$token" | py decrypt "$((tenant - 1))" "$ctx" >/dev/null 2>&1; [ $? -ne 0 ]; echo $?)" \
   "the same token does not open with another tenant's subkey (the tenant is really bound)"
ok "$(printf '%s' "$token" | py decrypt "$tenant" "other" >/dev/null 2>&1; [ $? -ne 0 ]; echo $?)" \
   "nor with another context (the associated data is really what the README says)"

empty=$(as_tenant -c "SELECT encode(payymo.encrypt_token('', ''), 'hex')")
is "$(printf '%s' "$empty" | py decrypt "$tenant" ""; echo "|rc=$?")" "|rc=0" "the empty plaintext with the empty context interoperates too"
is "${#empty}" "84" "the empty plaintext's token is 42 bytes"

theirs=$(printf '%s' "$plain" | py encrypt "$tenant" "$ctx")
is "$(as_tenant -c "SELECT payymo.decrypt_token(decode('$theirs', 'hex'), '$ctx')")" "$plain" \
   "payymo decrypts a token written by python3-nacl"

is "$(py fingerprints 0 "")" "$(q -c "SELECT version, fingerprint FROM payymo.key_status() ORDER BY version DESC")" \
   "key_status() fingerprints are BLAKE2b-64 keyed by the root key over 'payymo key fingerprint'"

done_testing
