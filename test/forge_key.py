#!/usr/bin/python3
"""Print a well-formed payymo API key -- right prefix, alphabet, lengths and
checksum -- for a given key id, with a random (or given) secret.  Tests use
it for keys that pass every format check, so that only the stored hash can
refuse them: a real key id with a wrong secret, or an unknown key id.

    test/forge_key.py KEY_ID [SECRET]
    test/forge_key.py < key-ids          one key per key id read, one per line
    FORGE_PREFIX=pys_ test/forge_key.py KEY_ID     a session token instead

The checksum is computed from the format's description alone (BLAKE2b with
digest size 16 and personalisation "payymo-keycheck1" over everything
before it, first 5 bytes, lowercase base32 without padding), with PyNaCl.
"""
import base64
import os
import secrets
import sys

from nacl.hashlib import blake2b

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def forge(key_id: str, secret: str = "") -> str:
    secret = secret or b32(secrets.token_bytes(32))
    assert len(key_id) == 16 and len(secret) == 52
    assert all(c in ALPHABET for c in key_id + secret)
    body = f"{os.environ.get('FORGE_PREFIX', 'pyk_')}{key_id}_{secret}"
    check = blake2b(body.encode(), digest_size=16, person=b"payymo-keycheck1").digest()[:5]
    return body + b32(check)


def main() -> None:
    if len(sys.argv) > 1:
        print(forge(*sys.argv[1:3]))
    else:
        for line in sys.stdin:
            print(forge(line.strip()))


if __name__ == "__main__":
    main()
