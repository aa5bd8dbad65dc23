/*-------------------------------------------------------------------------
 *
 * keyfile.h
 *	  The token key file parser: a pure function over a buffer.
 *
 * Deliberately free of PostgreSQL headers, so that it can be compiled into
 * a fuzz harness on its own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYYMO_KEYFILE_H
#define PAYYMO_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#define PAYYMO_KEY_BYTES		32	/* a root key: crypto_kdf_KEYBYTES */
#define PAYYMO_KEY_HEX_CHARS	(2 * PAYYMO_KEY_BYTES)
#define PAYYMO_KEY_VERSION_MIN	1
#define PAYYMO_KEY_VERSION_MAX	255

/* Longest key file accepted: 255 keys plus generous room for comments. */
#define PAYYMO_KEYFILE_MAX_BYTES (64 * 1024)

/*
 * The loaded root keys, indexed by version (slot 0, which no version uses,
 * is the parser's scratch space and always zero afterwards).  Lives in
 * sodium_malloc() memory; newest is the highest loaded version (it
 * encrypts).
 */
typedef struct PayymoKeyring
{
	int			nkeys;
	int			newest;
	bool		present[PAYYMO_KEY_VERSION_MAX + 1];
	unsigned char key[PAYYMO_KEY_VERSION_MAX + 1][PAYYMO_KEY_BYTES];
} PayymoKeyring;

typedef enum PayymoKeyfileError
{
	PAYYMO_KEYFILE_OK = 0,
	PAYYMO_KEYFILE_EMPTY,		/* no key lines at all */
	PAYYMO_KEYFILE_MALFORMED,	/* a line is not <version>:<hex> */
	PAYYMO_KEYFILE_BAD_VERSION, /* version not an integer in 1..255 */
	PAYYMO_KEYFILE_BAD_KEY,		/* key not exactly 64 hex characters */
	PAYYMO_KEYFILE_DUPLICATE,	/* a version appears twice */
} PayymoKeyfileError;

/*
 * Parse len bytes of key file text into *ring (which is cleared first).
 * Lines are "<version>:<64 hex characters>", optionally ending in "\r";
 * empty lines and lines starting with '#' are ignored.  On failure *line
 * is the 1-based number of the offending line (0 for EMPTY) and *ring may
 * hold partial key material: the caller wipes it.  Never reads past len.
 */
extern PayymoKeyfileError payymo_keyfile_parse(const char *text, size_t len,
											   PayymoKeyring *ring,
											   unsigned int *line);

/* A full sentence describing err, for errdetail(); no key material. */
extern const char *payymo_keyfile_error_detail(PayymoKeyfileError err);

#endif							/* PAYYMO_KEYFILE_H */
