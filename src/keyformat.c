/*-------------------------------------------------------------------------
 *
 * keyformat.c
 *	  The API key format (see keyformat.h and apikey.c): base32 encoding,
 *	  the checksum, the well-formedness check and the stored hash.
 *
 * Pure functions over buffers that need only libsodium: no I/O, no
 * allocation, no PostgreSQL headers (so "postgres.h" is intentionally not
 * included), which lets the fuzz harness link this file alone.
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "keyformat.h"

/* BLAKE2b personalisation strings: exactly 16 bytes each. */
static const unsigned char key_hash_personal[crypto_generichash_blake2b_PERSONALBYTES] = "payymo-apikey-v1";
static const unsigned char key_check_personal[crypto_generichash_blake2b_PERSONALBYTES] = "payymo-keycheck1";

static const char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

void
payymo_base32_encode(const unsigned char *in, size_t n, char *out)
{
	uint32_t	buffer = 0;
	int			bits = 0;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		buffer = (buffer << 8) | in[i];
		bits += 8;
		while (bits >= 5)
		{
			*out++ = base32_alphabet[(buffer >> (bits - 5)) & 0x1f];
			bits -= 5;
		}
	}
	if (bits > 0)
		*out++ = base32_alphabet[(buffer << (5 - bits)) & 0x1f];
	*out = '\0';
}

static bool
is_base32(const char *s, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7')))
			return false;
	return true;
}

void
payymo_apikey_checksum(const char *key, char *out)
{
	unsigned char digest[crypto_generichash_blake2b_BYTES_MIN];

	crypto_generichash_blake2b_salt_personal(digest, sizeof(digest),
											 (const unsigned char *) key, KEY_CHECKSUM_OFFSET,
											 NULL, 0, NULL, key_check_personal);
	payymo_base32_encode(digest, KEY_CHECKSUM_BYTES, out);
}

void
payymo_apikey_hash(const char *key, unsigned char *out)
{
	crypto_generichash_blake2b_salt_personal(out, KEY_HASH_BYTES,
											 (const unsigned char *) key + KEY_ID_OFFSET,
											 KEY_CHECKSUM_OFFSET - KEY_ID_OFFSET,
											 NULL, 0, NULL, key_hash_personal);
}

/*
 * The shape alone, no checksum: length, prefix, separator, alphabet.  The
 * length is checked first, so nothing past len is ever read.
 */
bool
payymo_token_shaped(const char *key, size_t len, const char *prefix)
{
	return len == KEY_LEN &&
		memcmp(key, prefix, KEY_PREFIX_LEN) == 0 &&
		key[KEY_SEP_OFFSET] == '_' &&
		is_base32(key + KEY_ID_OFFSET, KEY_ID_CHARS) &&
		is_base32(key + KEY_SECRET_OFFSET, KEY_SECRET_CHARS + KEY_CHECKSUM_CHARS);
}

/* The checksum of a shaped token. */
bool
payymo_token_checksum_ok(const char *key)
{
	char		checksum[KEY_CHECKSUM_CHARS + 1];

	payymo_apikey_checksum(key, checksum);
	return sodium_memcmp(checksum, key + KEY_CHECKSUM_OFFSET, KEY_CHECKSUM_CHARS) == 0;
}

/* Pure function of its input (also the entry point of the fuzz harness). */
bool
payymo_token_well_formed(const char *key, size_t len, const char *prefix)
{
	return payymo_token_shaped(key, len, prefix) && payymo_token_checksum_ok(key);
}

bool
payymo_apikey_well_formed(const char *key, size_t len)
{
	return payymo_token_well_formed(key, len, KEY_PREFIX);
}

void
payymo_token_generate(const char *prefix, char *key, unsigned char *hash)
{
	unsigned char random_bytes[KEY_SECRET_BYTES];

	memcpy(key, prefix, KEY_PREFIX_LEN);
	randombytes_buf(random_bytes, KEY_ID_BYTES);
	payymo_base32_encode(random_bytes, KEY_ID_BYTES, key + KEY_ID_OFFSET);
	key[KEY_SEP_OFFSET] = '_';
	randombytes_buf(random_bytes, KEY_SECRET_BYTES);
	payymo_base32_encode(random_bytes, KEY_SECRET_BYTES, key + KEY_SECRET_OFFSET);
	sodium_memzero(random_bytes, sizeof(random_bytes));
	payymo_apikey_checksum(key, key + KEY_CHECKSUM_OFFSET);
	payymo_apikey_hash(key, hash);
}
