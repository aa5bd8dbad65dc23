/*-------------------------------------------------------------------------
 *
 * keyformat.h
 *	  The API key format: pure functions over buffers (base32, checksum,
 *	  well-formedness, stored hash).
 *
 * Deliberately free of PostgreSQL headers, so that keyformat.c can be
 * compiled into a fuzz harness on its own (test/fuzz/fuzz_apikey.c).
 *
 * Format (81 characters, all lowercase RFC 4648 base32 after the prefix):
 *
 *	  pyk_<key id: 16>_<secret: 52><checksum: 8>
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYYMO_KEYFORMAT_H
#define PAYYMO_KEYFORMAT_H

#include <stdbool.h>
#include <stddef.h>

#define KEY_PREFIX			"pyk_"
#define SESSION_PREFIX		"pys_"	/* session tokens (users.c): same shape */
#define KEY_PREFIX_LEN		4
#define KEY_ID_BYTES		10
#define KEY_ID_CHARS		16
#define KEY_SECRET_BYTES	32
#define KEY_SECRET_CHARS	52
#define KEY_CHECKSUM_BYTES	5
#define KEY_CHECKSUM_CHARS	8
#define KEY_ID_OFFSET		KEY_PREFIX_LEN
#define KEY_SEP_OFFSET		(KEY_ID_OFFSET + KEY_ID_CHARS)
#define KEY_SECRET_OFFSET	(KEY_SEP_OFFSET + 1)
#define KEY_CHECKSUM_OFFSET (KEY_SECRET_OFFSET + KEY_SECRET_CHARS)
#define KEY_LEN				(KEY_CHECKSUM_OFFSET + KEY_CHECKSUM_CHARS)
#define KEY_HASH_BYTES		32

/* Encode n bytes as unpadded base32; out needs ceil(8n/5) + 1 bytes. */
extern void payymo_base32_encode(const unsigned char *in, size_t n, char *out);

/*
 * The KEY_CHECKSUM_CHARS checksum characters (plus a terminating NUL, so
 * out needs KEY_CHECKSUM_CHARS + 1 bytes) for the first KEY_CHECKSUM_OFFSET
 * characters of key.
 */
extern void payymo_apikey_checksum(const char *key, char *out);

/* The stored hash of a key: BLAKE2b-256 over key id and secret. */
extern void payymo_apikey_hash(const char *key, unsigned char *out);

/* Is this text shaped like a payymo key with a valid checksum? */
extern bool payymo_apikey_well_formed(const char *key, size_t len);

/* The same for a token with another prefix of KEY_PREFIX_LEN characters. */
extern bool payymo_token_well_formed(const char *key, size_t len, const char *prefix);

/* The two halves of payymo_token_well_formed: the shape, then the checksum. */
extern bool payymo_token_shaped(const char *key, size_t len, const char *prefix);
extern bool payymo_token_checksum_ok(const char *key);

/*
 * A new random token with this prefix into key (KEY_LEN + 1 bytes) and its
 * stored hash into hash (KEY_HASH_BYTES).
 */
extern void payymo_token_generate(const char *prefix, char *key, unsigned char *hash);

#endif							/* PAYYMO_KEYFORMAT_H */
