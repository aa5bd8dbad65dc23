/*-------------------------------------------------------------------------
 *
 * keyfile.c
 *	  Parse the token key file named by payymo.key_file.
 *
 * A pure function over a buffer: no I/O, no allocation, no PostgreSQL
 * headers (so "postgres.h" is intentionally not included), which lets a
 * fuzz harness link this file with libsodium alone.  The hex digits are
 * decoded in constant time (sodium_hex2bin) into the caller's keyring, so
 * no copy of a key is made outside it, and no branch depends on key bits.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include <sodium.h>

#include "keyfile.h"

/* Longest version field: "255". */
#define VERSION_MAX_DIGITS 3

/*
 * Parse one line (without its '\n') into ring.
 */
static PayymoKeyfileError
parse_line(const char *p, size_t n, PayymoKeyring *ring)
{
	const char *colon;
	const char *end;
	size_t		vlen;
	size_t		i;
	size_t		decoded;
	int			version = 0;
	unsigned char *scratch = ring->key[0];	/* version 0 is never used */

	colon = memchr(p, ':', n);
	if (colon == NULL)
		return PAYYMO_KEYFILE_MALFORMED;

	vlen = (size_t) (colon - p);
	if (vlen == 0 || vlen > VERSION_MAX_DIGITS)
		return PAYYMO_KEYFILE_BAD_VERSION;
	for (i = 0; i < vlen; i++)
	{
		if (p[i] < '0' || p[i] > '9')
			return PAYYMO_KEYFILE_BAD_VERSION;
		version = version * 10 + (p[i] - '0');
	}
	if (version < PAYYMO_KEY_VERSION_MIN || version > PAYYMO_KEY_VERSION_MAX)
		return PAYYMO_KEYFILE_BAD_VERSION;

	p = colon + 1;
	n -= vlen + 1;
	if (n != PAYYMO_KEY_HEX_CHARS ||
		sodium_hex2bin(scratch, PAYYMO_KEY_BYTES, p, n, NULL, &decoded, &end) != 0 ||
		decoded != PAYYMO_KEY_BYTES || end != p + n)
	{
		sodium_memzero(scratch, PAYYMO_KEY_BYTES);
		return PAYYMO_KEYFILE_BAD_KEY;
	}
	if (ring->present[version])
	{
		sodium_memzero(scratch, PAYYMO_KEY_BYTES);
		return PAYYMO_KEYFILE_DUPLICATE;
	}
	memcpy(ring->key[version], scratch, PAYYMO_KEY_BYTES);
	sodium_memzero(scratch, PAYYMO_KEY_BYTES);
	ring->present[version] = true;
	ring->nkeys++;
	if (version > ring->newest)
		ring->newest = version;
	return PAYYMO_KEYFILE_OK;
}

PayymoKeyfileError
payymo_keyfile_parse(const char *text, size_t len, PayymoKeyring *ring,
					 unsigned int *line)
{
	size_t		pos = 0;

	memset(ring, 0, sizeof(*ring));
	*line = 0;

	while (pos < len)
	{
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t		n = nl ? (size_t) (nl - start) : len - pos;
		PayymoKeyfileError err;

		pos += n + (nl ? 1 : 0);
		(*line)++;

		if (n > 0 && start[n - 1] == '\r')
			n--;
		if (n == 0 || start[0] == '#')
			continue;
		if (memchr(start, '\0', n) != NULL)
			return PAYYMO_KEYFILE_MALFORMED;

		err = parse_line(start, n, ring);
		if (err != PAYYMO_KEYFILE_OK)
			return err;
	}

	if (ring->nkeys == 0)
	{
		*line = 0;
		return PAYYMO_KEYFILE_EMPTY;
	}
	return PAYYMO_KEYFILE_OK;
}

const char *
payymo_keyfile_error_detail(PayymoKeyfileError err)
{
	switch (err)
	{
		case PAYYMO_KEYFILE_OK:
			return "The key file is valid.";
		case PAYYMO_KEYFILE_EMPTY:
			return "The key file holds no key lines.";
		case PAYYMO_KEYFILE_MALFORMED:
			return "A key line must have the form <version>:<64 hexadecimal characters>.";
		case PAYYMO_KEYFILE_BAD_VERSION:
			return "A key version must be an integer from 1 to 255.";
		case PAYYMO_KEYFILE_BAD_KEY:
			return "A key must be exactly 64 hexadecimal characters (32 bytes).";
		case PAYYMO_KEYFILE_DUPLICATE:
			return "Each key version may appear only once.";
	}
	return "The key file is invalid.";
}
