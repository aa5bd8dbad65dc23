-- Token encryption, as a client sees it (connected as payymo_client).  The
-- cluster's key file (test/lib.sh make_key_file) holds versions 1 and 2,
-- so version 2 encrypts.  Everything runs in one transaction, rolled back.
\set QUIET 1
SET client_min_messages = warning;
BEGIN;
SELECT plan(68);

-- Outcome of decrypting c with context ctx: the SQLSTATE, or 'ok:<text>'.
CREATE FUNCTION pg_temp.try_decrypt(c bytea, ctx text DEFAULT '') RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN 'ok:' || payymo.decrypt_token(c, ctx);
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

-- c with byte i (0-based) XORed with mask.
CREATE FUNCTION pg_temp.flip(c bytea, i integer, mask integer DEFAULT 1) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT set_byte(c, i, get_byte(c, i) # mask) $$;

-- No context: fail closed.
SELECT throws_ok($$SELECT payymo.encrypt_token('x')$$, '42501', 'no tenant context set',
                 'encrypt_token without a tenant context raises 42501');
SELECT throws_ok($$SELECT payymo.decrypt_token('\xb1'::bytea)$$, '42501', 'no tenant context set',
                 'decrypt_token without a tenant context raises 42501');
SELECT throws_ok($$SELECT payymo.reencrypt_token('\xb1'::bytea)$$, '42501', 'no tenant context set',
                 'reencrypt_token without a tenant context raises 42501');

-- Tenant alpha.
SELECT is(payymo.set_tenant(payymo_test.key('alpha')), payymo_test.tenant('alpha'), 'alpha context set');

CREATE TEMP TABLE plain (name text PRIMARY KEY, p text NOT NULL);
INSERT INTO plain VALUES
    ('empty', ''), ('one', 'x'), ('4k', repeat('k', 4096)),
    ('utf8', 'Grüße, 日本語, emoji 🔑, ä' || chr(8364)),
    ('token', 'ya29.a0AfH6SMBx-access-token');
CREATE TEMP TABLE ct AS
SELECT name, p, payymo.encrypt_token(p, 'bank_connections.access_token') AS c FROM plain;

SELECT is((SELECT count(*)::int FROM ct
            WHERE payymo.decrypt_token(c, 'bank_connections.access_token') = p), 5,
          'empty, 1-byte, 4 KiB, non-ASCII and ordinary plaintexts all round-trip');
SELECT is(payymo.decrypt_token(c, 'bank_connections.access_token'), '', 'the empty plaintext round-trips as the empty string')
  FROM ct WHERE name = 'empty';
SELECT is(payymo.decrypt_token(payymo.encrypt_token('no context given')), 'no context given',
          'the default context round-trips');
SELECT is(payymo.decrypt_token(payymo.encrypt_token('s', ''), ''), 's', 'an explicit empty context equals the default');
SELECT is((SELECT count(*)::int FROM ct WHERE octet_length(c) = octet_length(p) + 42), 5,
          'a token is the plaintext plus 42 bytes (format, version, nonce, tag)');
SELECT is((SELECT count(*)::int FROM ct WHERE get_byte(c, 0) = 177), 5, 'byte 0 is the format byte 0xB1');
SELECT is((SELECT count(*)::int FROM ct WHERE get_byte(c, 1) = 2), 5, 'byte 1 is the newest key version, 2');
SELECT is((SELECT count(*)::int FROM ct WHERE position(convert_to(p, 'UTF8') IN c) = 0 AND octet_length(p) >= 8), 3,
          'no ciphertext contains its plaintext (plaintexts of 8 bytes or more)');

-- Format helpers.
SELECT is(payymo.token_key_version(c), 2, 'token_key_version reads the version') FROM ct WHERE name = 'one';
SELECT is(payymo.token_key_version(NULL), NULL, 'token_key_version(NULL) is NULL');
SELECT throws_ok($$SELECT payymo.token_key_version('\x0102'::bytea)$$, '22P03', 'value is not a payymo token',
                 'token_key_version of a non-token raises 22P03');
SELECT ok(bool_and(payymo.is_token(c)), 'is_token is true for tokens') FROM ct;
SELECT ok(NOT payymo.is_token(convert_to('ya29.a0AfH6SMBx-access-token-that-is-long-enough-to-pass', 'UTF8')),
          'is_token is false for a plaintext token stored as bytea');
SELECT ok(NOT payymo.is_token(substring(c FROM 1 FOR 41)), 'is_token is false for 41 bytes') FROM ct WHERE name = 'one';
SELECT ok(NOT payymo.is_token(''::bytea), 'is_token is false for the empty bytea');
SELECT ok(NOT payymo.is_token(set_byte(c, 1, 0)), 'is_token is false for version 0') FROM ct WHERE name = 'one';
SELECT is(payymo.is_token(NULL), NULL, 'is_token(NULL) is NULL (a CHECK constraint lets NULL through)');

-- Random nonces: the same plaintext never gives the same ciphertext.
SELECT is(count(DISTINCT c)::int, 10000, '10,000 encryptions of one plaintext give 10,000 distinct ciphertexts')
  FROM (SELECT payymo.encrypt_token('same plaintext', 'ctx') AS c FROM generate_series(1, 10000)) s;
SELECT is(count(DISTINCT substring(c FROM 3 FOR 24))::int, 10000, '... and 10,000 distinct nonces')
  FROM (SELECT payymo.encrypt_token('same plaintext', 'ctx') AS c FROM generate_series(1, 10000)) s;

-- NULL is an error, not a silent NULL.
SELECT throws_ok($$SELECT payymo.encrypt_token(NULL)$$, '22004', 'plaintext must not be null', 'encrypt_token(NULL) raises 22004');
SELECT throws_ok($$SELECT payymo.encrypt_token('x', NULL)$$, '22004', 'context must not be null', 'a NULL context raises 22004');
SELECT throws_ok($$SELECT payymo.decrypt_token(NULL)$$, '22004', 'ciphertext must not be null', 'decrypt_token(NULL) raises 22004');
SELECT throws_ok($$SELECT payymo.reencrypt_token(NULL)$$, '22004', 'ciphertext must not be null', 'reencrypt_token(NULL) raises 22004');

-- Another context (another column) fails.
SELECT is(pg_temp.try_decrypt(c, 'bank_connections.refresh_token'), '22P03', 'another context: 22P03')
  FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(c, ''), '22P03', 'the default context instead of the real one: 22P03')
  FROM ct WHERE name = 'token';
SELECT throws_ok($$SELECT payymo.decrypt_token(c, 'other') FROM ct WHERE name = 'token'$$,
                 '22P03', 'payymo token could not be decrypted', 'the error names no plaintext or key');

-- Any single changed byte fails: header, nonce, body, tag.
SELECT is(pg_temp.try_decrypt(pg_temp.flip(c, 0), 'bank_connections.access_token'), '22P03',
          'format byte changed: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(set_byte(c, 1, 1), 'bank_connections.access_token'), '22P03',
          'version byte changed to another loaded version (1): 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(pg_temp.flip(c, 1), 'bank_connections.access_token'), '22023',
          'version byte changed to a version not loaded (3): 22023') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(set_byte(c, 1, 0), 'bank_connections.access_token'), '22P03',
          'version byte changed to 0: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(pg_temp.flip(c, 2), 'bank_connections.access_token'), '22P03',
          'first nonce byte changed: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(pg_temp.flip(c, 25, 128), 'bank_connections.access_token'), '22P03',
          'last nonce byte changed: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(pg_temp.flip(c, 26), 'bank_connections.access_token'), '22P03',
          'first body byte changed: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(pg_temp.flip(c, octet_length(c) - 17), 'bank_connections.access_token'), '22P03',
          'last body byte changed: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(pg_temp.flip(c, octet_length(c) - 16), 'bank_connections.access_token'), '22P03',
          'first tag byte changed: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(pg_temp.flip(c, octet_length(c) - 1, 64), 'bank_connections.access_token'), '22P03',
          'last tag byte changed: 22P03') FROM ct WHERE name = 'token';
SELECT is(
    (SELECT count(*)::int
       FROM ct, generate_series(0, octet_length(c) - 1) AS i, (VALUES (1), (128)) AS m(mask)
      WHERE pg_temp.try_decrypt(pg_temp.flip(c, i, mask), 'bank_connections.access_token')
            = CASE WHEN i = 1 THEN '22023' ELSE '22P03' END),
    (SELECT 2 * sum(octet_length(c))::int FROM ct),
    'every bit 0 and bit 7 of every byte of every token, flipped, fails with its SQLSTATE');
SELECT throws_ok($$SELECT payymo.decrypt_token(set_byte(c, 1, 9), 'bank_connections.access_token') FROM ct WHERE name = 'token'$$,
                 '22023', 'token key version 9 is not loaded', 'a key version not loaded: 22023 naming the version');

-- Truncated or extended input fails.
SELECT is(pg_temp.try_decrypt(substring(c FROM 1 FOR octet_length(c) - 1), 'bank_connections.access_token'), '22P03',
          'last byte cut off: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(substring(c FROM 1 FOR 41), 'bank_connections.access_token'), '22P03',
          'cut to 41 bytes (shorter than any token): 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(substring(c FROM 1 FOR 26), 'bank_connections.access_token'), '22P03',
          'header and nonce only: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(c || '\x00'::bytea, 'bank_connections.access_token'), '22P03',
          'one byte appended: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(c || c, 'bank_connections.access_token'), '22P03',
          'token appended to itself: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(substring(c FROM 1 FOR 42), 'bank_connections.access_token'), '22P03',
          'the empty token''s length with another token''s bytes: 22P03') FROM ct WHERE name = 'token';
SELECT is(pg_temp.try_decrypt(''::bytea), '22P03', 'the empty bytea: 22P03');

-- reencrypt_token: same plaintext, fresh ciphertext, newest version.
SELECT is(payymo.decrypt_token(payymo.reencrypt_token(c, 'bank_connections.access_token'), 'bank_connections.access_token'), p,
          'reencrypt_token keeps the plaintext') FROM ct WHERE name = 'utf8';
SELECT isnt(payymo.reencrypt_token(c, 'bank_connections.access_token'), c, 'reencrypt_token gives a new ciphertext')
  FROM ct WHERE name = 'utf8';
SELECT is(pg_temp.try_decrypt(payymo.reencrypt_token(c, 'bank_connections.access_token'), 'x'), '22P03',
          'the re-encrypted token is still bound to its context') FROM ct WHERE name = 'utf8';

-- Parallel workers (PARALLEL SAFE): they get the tenant and the key file setting.
SELECT encode(c, 'hex') AS alpha_token FROM ct WHERE name = 'token' \gset
SELECT payymo_test.force_parallel('on', true);
SET LOCAL parallel_setup_cost = 0;
SELECT ok(EXISTS (SELECT 1 FROM payymo_test.explain(
              $$SELECT payymo.decrypt_token(decode('$$ || :'alpha_token' || $$', 'hex'), 'bank_connections.access_token')$$)
              AS l WHERE l LIKE '%Gather%'),
          'decrypt_token can run in a parallel worker');
-- Bare queries (pgTAP's own functions would keep the plan serial).
SELECT payymo.decrypt_token(decode(:'alpha_token', 'hex'), 'bank_connections.access_token') AS par_plain,
       payymo.token_key_version(payymo.encrypt_token('w')) AS par_version \gset
SELECT payymo_test.force_parallel('off');
SELECT is(:'par_plain'::text, 'ya29.a0AfH6SMBx-access-token', 'a parallel worker decrypts with the leader''s tenant and keys');
SELECT is(:'par_version'::int, 2, 'a parallel worker encrypts with the newest key');
RESET parallel_setup_cost;

-- Tenant bravo cannot use alpha's tokens.
CREATE TEMP TABLE ct_bravo (c bytea);
SELECT is(payymo.set_tenant(payymo_test.key('bravo')), payymo_test.tenant('bravo'), 'bravo context set');
SELECT is((SELECT count(*)::int FROM ct
            WHERE pg_temp.try_decrypt(c, 'bank_connections.access_token') = '22P03'), 5,
          'every alpha token fails for bravo with 22P03');
SELECT throws_ok($$SELECT payymo.reencrypt_token(c, 'bank_connections.access_token') FROM ct WHERE name = 'token'$$,
                 '22P03', NULL, 'bravo cannot re-encrypt alpha''s token');
INSERT INTO ct_bravo SELECT payymo.encrypt_token(p, 'bank_connections.access_token') FROM plain WHERE name = 'token';
SELECT is(payymo.decrypt_token(c, 'bank_connections.access_token'), 'ya29.a0AfH6SMBx-access-token',
          'bravo decrypts its own token') FROM ct_bravo;
SELECT ok(payymo.set_tenant(payymo_test.key('alpha')) IS NOT NULL, 'back to alpha');
SELECT is(pg_temp.try_decrypt(c, 'bank_connections.access_token'), '22P03', 'alpha cannot decrypt bravo''s token')
  FROM ct_bravo;
SELECT is(pg_temp.try_decrypt(c, 'bank_connections.access_token'), 'ok:ya29.a0AfH6SMBx-access-token',
          'alpha still decrypts its own token') FROM ct WHERE name = 'token';

-- key_status: versions and fingerprints, never keys.
SELECT results_eq($$SELECT version, active FROM payymo.key_status() ORDER BY version$$,
                  $$VALUES (1, false), (2, true)$$, 'key_status lists versions 1 and 2; 2 is active');
SELECT is((SELECT count(*)::int FROM payymo.key_status() WHERE fingerprint ~ '^[0-9a-f]{16}$'), 2,
          'each fingerprint is 16 hex characters');
SELECT is((SELECT count(*)::int FROM payymo.key_status() s,
                  regexp_split_to_table(payymo_test.admin_value(
                      $$SELECT pg_read_file(current_setting('payymo.key_file'))$$), E'\n') AS line
            WHERE line <> '' AND position(s.fingerprint IN lower(line)) > 0), 0,
          'no fingerprint is a piece of a key''s hex');

-- What clients may not do.
SELECT throws_ok($$SHOW payymo.key_file$$, '42501', NULL, 'clients cannot see the key file''s path');
SELECT throws_ok($$SELECT payymo.reencrypt_token_batch('pg_class', 'relname')$$, '42501', NULL,
                 'reencrypt_token_batch is not executable by clients');
SELECT throws_ok($$CALL payymo.rotate_token_column('pg_class', 'relname')$$, '42501', NULL,
                 'rotate_token_column is not executable by clients');

SELECT * FROM finish();
ROLLBACK;
