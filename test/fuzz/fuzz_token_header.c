/*
 * fuzz_token_header.c -- libFuzzer harness for the token (ciphertext)
 * format: looks_like_token() and decrypt_bytes() in src/crypto.c, which
 * parse the header (format byte, key version), find the key and open the
 * XChaCha20-Poly1305 box.
 *
 * crypto.c is included whole so its static functions can be called; the
 * backend services it needs come from shim.c (palloc = malloc, ereport
 * ERROR = longjmp back here).  A fixed key ring with versions 1, 2 and 7
 * (newest 7) is installed directly, so no key file is read.
 *
 * Every input is used twice:
 *   A. as a ciphertext: looks_like_token() agrees with the documented
 *      header rule; decrypting either succeeds (only for a genuine token of
 *      a loaded version, with plaintext length = input length - overhead)
 *      or raises exactly the documented SQLSTATE -- 22P03 for a non-token
 *      or a failed tag, 22023 for a version that is not loaded -- and
 *      reports exactly one security event, leaking nothing (LeakSanitizer);
 *   B. as a plaintext: it encrypts to a token of the right length and
 *      header that decrypts to the same bytes, and fails to decrypt
 *      (22P03/22023) for another tenant, another context, with one bit
 *      flipped anywhere, or truncated by one byte.
 */
#include "crypto.c"

#include <stdio.h>
#include <stdlib.h>

#include "shim.h"

#define CHECK(cond) \
	do { if (!(cond)) { fprintf(stderr, "property failed: %s (%s:%d)\n", \
								#cond, __FILE__, __LINE__); abort(); } } while (0)

#define FUZZ_TENANT		((PayymoTenantId) 42)
#define NEWEST_VERSION	7

static PayymoKeyring test_ring;

static struct varlena *
make_varlena(const void *data, size_t len)
{
	struct varlena *v = palloc(VARHDRSZ + len);

	SET_VARSIZE(v, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(v), data, len);
	return v;
}

/* Decrypt; returns 0 and sets *out, or the SQLSTATE of the error raised. */
static int
try_decrypt(const bytea *ct, PayymoTenantId tenant, const text *ctx, text **out)
{
	*out = NULL;
	shim_error_armed = 1;
	if (setjmp(shim_error_jmp) == 0)
	{
		*out = decrypt_bytes(ct, tenant, ctx);
		shim_error_armed = 0;
		return 0;
	}
	shim_error_armed = 0;
	CHECK(shim_sqlstate != 0);
	return shim_sqlstate;
}

/* Decrypting must fail with one of the documented codes and one event. */
static void
expect_refused(const bytea *ct, PayymoTenantId tenant, const text *ctx)
{
	int			events = shim_security_events;
	text	   *plain;
	int			rc = try_decrypt(ct, tenant, ctx, &plain);

	CHECK(rc == ERRCODE_INVALID_BINARY_REPRESENTATION ||
		  rc == ERRCODE_INVALID_PARAMETER_VALUE);
	CHECK(plain == NULL);
	CHECK(shim_security_events == events + 1);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const int versions[] = {1, 2, NEWEST_VERSION};
	size_t		i;
	int			b;

	(void) argc;
	(void) argv;
	if (sodium_init() < 0)
		abort();
	memset(&test_ring, 0, sizeof(test_ring));
	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
	{
		for (b = 0; b < PAYYMO_KEY_BYTES; b++)
			test_ring.key[versions[i]][b] = (unsigned char) (versions[i] * 31 + b);
		test_ring.present[versions[i]] = true;
		test_ring.nkeys++;
	}
	test_ring.newest = NEWEST_VERSION;
	keyring = &test_ring;
	keyring_stale = false;
	return 0;
}

static void
as_ciphertext(const uint8_t *data, size_t size)
{
	bytea	   *ct = (bytea *) make_varlena(data, size);
	text	   *ctx = (text *) make_varlena("", 0);
	int			header_ok = size >= TOKEN_OVERHEAD && data[0] == 0xB1 && data[1] >= 1;
	int			events = shim_security_events;
	text	   *plain;
	int			rc;

	CHECK(TOKEN_OVERHEAD == 42);
	CHECK(looks_like_token(ct) == header_ok);

	rc = try_decrypt(ct, FUZZ_TENANT, ctx, &plain);
	if (rc == 0)
	{
		CHECK(header_ok && test_ring.present[data[1]]);
		CHECK(VARSIZE(plain) - VARHDRSZ == size - TOKEN_OVERHEAD);
		CHECK(shim_security_events == events);
		pfree(plain);
	}
	else
	{
		CHECK(plain == NULL);
		CHECK(shim_security_events == events + 1);
		if (header_ok && !test_ring.present[data[1]])
			CHECK(rc == ERRCODE_INVALID_PARAMETER_VALUE);
		else
			CHECK(rc == ERRCODE_INVALID_BINARY_REPRESENTATION);
	}
	pfree(ct);
	pfree(ctx);
}

static void
as_plaintext(const uint8_t *data, size_t size)
{
	text	   *ctx = (text *) make_varlena("col", 3);
	text	   *other_ctx = (text *) make_varlena("co", 2);
	bytea	   *tok;
	bytea	   *bad;
	const unsigned char *p;
	size_t		toklen;
	size_t		pos;
	text	   *plain;

	tok = encrypt_bytes((const char *) data, size, FUZZ_TENANT, ctx);
	toklen = VARSIZE(tok) - VARHDRSZ;
	p = (const unsigned char *) VARDATA(tok);
	CHECK(toklen == size + TOKEN_OVERHEAD);
	CHECK(p[0] == 0xB1 && p[1] == NEWEST_VERSION);
	CHECK(looks_like_token(tok));

	CHECK(try_decrypt(tok, FUZZ_TENANT, ctx, &plain) == 0);
	CHECK(VARSIZE(plain) - VARHDRSZ == size);
	CHECK(size == 0 || memcmp(VARDATA(plain), data, size) == 0);
	pfree(plain);

	expect_refused(tok, FUZZ_TENANT + 1, ctx);
	expect_refused(tok, FUZZ_TENANT, other_ctx);

	/* One bit flipped at an input-chosen position. */
	pos = (size > 0 ? (size_t) data[0] * 131 + data[size - 1] : 0) % toklen;
	bad = (bytea *) make_varlena(p, toklen);
	((unsigned char *) VARDATA(bad))[pos] ^= (unsigned char) (1 << (size % 8));
	expect_refused(bad, FUZZ_TENANT, ctx);
	pfree(bad);

	/* Truncated by one byte. */
	bad = (bytea *) make_varlena(p, toklen - 1);
	expect_refused(bad, FUZZ_TENANT, ctx);
	pfree(bad);

	pfree(tok);
	pfree(ctx);
	pfree(other_ctx);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Stay far below MaxAllocSize; libFuzzer's -max_len bounds it anyway. */
	if (size > 1024 * 1024)
		return 0;
	as_ciphertext(data, size);
	as_plaintext(data, size);
	return 0;
}
