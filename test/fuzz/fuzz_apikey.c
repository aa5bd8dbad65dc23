/*
 * fuzz_apikey.c -- libFuzzer harness for the API key format (src/keyformat.c).
 *
 * Beyond "no crash, no out-of-bounds read" (ASan/UBSan), every input checks:
 *   1. payymo_apikey_well_formed() agrees with an independent reference
 *      built here from the documented format (own base32 check, own
 *      bit-by-bit base32 encoder, BLAKE2b called directly) -- on the input
 *      as it is and, for 81-byte inputs, with its last 8 characters
 *      replaced by the reference checksum, so that the prefix, separator
 *      and alphabet checks are exercised behind a valid checksum too;
 *   2. a key built from the input's bytes the way issue_api_key() builds
 *      one is accepted, and changing any single character of it to any
 *      other character is rejected -- unless the reference says the new
 *      text still carries a valid checksum; one input-chosen change with
 *      the checksum recomputed is accepted exactly when the changed
 *      character is allowed at that position;
 *   3. payymo_base32_encode() output has the right length and alphabet and
 *      decodes back to its input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "keyformat.h"

#define CHECK(cond) \
	do { if (!(cond)) { fprintf(stderr, "property failed: %s (%s:%d)\n", \
								#cond, __FILE__, __LINE__); abort(); } } while (0)

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

static int
b32val(char c)
{
	const char *p = (c != '\0') ? strchr(alphabet, c) : NULL;

	return p ? (int) (p - alphabet) : -1;
}

/* Bit-by-bit reference encoder (independent of the shift-buffer one). */
static void
ref_base32(const unsigned char *in, size_t n, char *out)
{
	size_t		nbits = 8 * n;
	size_t		bit;
	size_t		o = 0;

	for (bit = 0; bit < nbits; bit += 5)
	{
		int			v = 0;
		int			k;

		for (k = 0; k < 5; k++)
		{
			size_t		b = bit + k;
			int			set = b < nbits && ((in[b / 8] >> (7 - b % 8)) & 1);

			v = (v << 1) | set;
		}
		out[o++] = alphabet[v];
	}
	out[o] = '\0';
}

static void
ref_checksum(const char *key, char *out)
{
	static const unsigned char personal[crypto_generichash_blake2b_PERSONALBYTES] = "payymo-keycheck1";
	unsigned char digest[crypto_generichash_blake2b_BYTES_MIN];

	crypto_generichash_blake2b_salt_personal(digest, sizeof(digest),
											 (const unsigned char *) key, KEY_CHECKSUM_OFFSET,
											 NULL, 0, NULL, personal);
	ref_base32(digest, KEY_CHECKSUM_BYTES, out);
}

/* The documented format, written independently of keyformat.c. */
static int
ref_well_formed(const char *key, size_t len)
{
	char		sum[KEY_CHECKSUM_CHARS + 1];
	size_t		i;

	if (len != 81)
		return 0;
	if (memcmp(key, "pyk_", 4) != 0 || key[20] != '_')
		return 0;
	for (i = 4; i < 81; i++)
		if (i != 20 && b32val(key[i]) < 0)
			return 0;
	ref_checksum(key, sum);
	return memcmp(sum, key + 73, 8) == 0;
}

static void
check_base32(const unsigned char *in, size_t n)
{
	char		out[64 * 8 / 5 + 2];
	char		ref[sizeof(out)];
	unsigned char back[64];
	size_t		len;
	size_t		i;
	size_t		bit = 0;

	if (n > 64)
		n = 64;
	payymo_base32_encode(in, n, out);
	ref_base32(in, n, ref);
	len = strlen(out);
	CHECK(len == (8 * n + 4) / 5);
	CHECK(strcmp(out, ref) == 0);
	memset(back, 0, sizeof(back));
	for (i = 0; i < len; i++)
	{
		int			v = b32val(out[i]);
		int			k;

		CHECK(v >= 0);
		for (k = 4; k >= 0; k--, bit++)
			if (bit < 8 * n && ((v >> k) & 1))
				back[bit / 8] |= (unsigned char) (1 << (7 - bit % 8));
	}
	CHECK(memcmp(back, in, n) == 0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	if (sodium_init() < 0)
		abort();
	CHECK(KEY_LEN == 81 && KEY_CHECKSUM_OFFSET == 73 && KEY_SEP_OFFSET == 20);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char raw[KEY_ID_BYTES + KEY_SECRET_BYTES];
	char		key[KEY_LEN + 1];
	char		mutated[KEY_LEN];
	char		sum[KEY_CHECKSUM_CHARS + 1];
	size_t		i;

	/* 1. Arbitrary text (libFuzzer's buffer is exactly size bytes). */
	CHECK(payymo_apikey_well_formed((const char *) data, size) ==
		  ref_well_formed((const char *) data, size));
	if (size == KEY_LEN)
	{
		memcpy(mutated, data, KEY_LEN);
		ref_checksum(mutated, sum);
		memcpy(mutated + KEY_CHECKSUM_OFFSET, sum, KEY_CHECKSUM_CHARS);
		CHECK(payymo_apikey_well_formed(mutated, KEY_LEN) ==
			  ref_well_formed(mutated, KEY_LEN));
	}

	/* 3. The encoder. */
	check_base32(data, size);

	/* 2. A key made from the input bytes, then every single-char change. */
	memset(raw, 0, sizeof(raw));
	memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));
	memcpy(key, KEY_PREFIX, KEY_PREFIX_LEN);
	payymo_base32_encode(raw, KEY_ID_BYTES, key + KEY_ID_OFFSET);
	key[KEY_SEP_OFFSET] = '_';
	payymo_base32_encode(raw + KEY_ID_BYTES, KEY_SECRET_BYTES, key + KEY_SECRET_OFFSET);
	payymo_apikey_checksum(key, key + KEY_CHECKSUM_OFFSET);
	CHECK(strlen(key) == KEY_LEN);
	CHECK(payymo_apikey_well_formed(key, KEY_LEN));
	CHECK(ref_well_formed(key, KEY_LEN));
	CHECK(!payymo_apikey_well_formed(key, KEY_LEN - 1));

	for (i = 0; i < KEY_LEN; i++)
	{
		/* The replacement character comes from the input, never the same. */
		unsigned char c = size > 0 ? data[i % size] : 0;
		int			accepted;

		if (c == (unsigned char) key[i])
			c ^= 0x01;
		memcpy(mutated, key, KEY_LEN);
		mutated[i] = (char) c;
		accepted = payymo_apikey_well_formed(mutated, KEY_LEN);
		CHECK(accepted == ref_well_formed(mutated, KEY_LEN));
		/* A checksum character change can never keep the checksum valid. */
		if (i >= KEY_CHECKSUM_OFFSET)
			CHECK(!accepted);
	}
	if (size >= 2)
	{
		i = data[size - 2] % KEY_CHECKSUM_OFFSET;
		memcpy(mutated, key, KEY_LEN);
		mutated[i] = (char) data[size - 1];
		ref_checksum(mutated, sum);
		memcpy(mutated + KEY_CHECKSUM_OFFSET, sum, KEY_CHECKSUM_CHARS);
		CHECK(payymo_apikey_well_formed(mutated, KEY_LEN) ==
			  (mutated[i] == key[i] ||
			   (i >= KEY_ID_OFFSET && i != KEY_SEP_OFFSET && b32val(mutated[i]) >= 0)));
	}
	return 0;
}
