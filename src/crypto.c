/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  Token encryption: the payymo.key_file setting, the key ring and the
 *	  encrypt/decrypt functions.
 *
 * Ciphertext format (all of it is a bytea; see README "Token encryption"):
 *
 *	  offset  size  field
 *	  0		  1		format byte, TOKEN_FORMAT (0xB1)
 *	  1		  1		root key version, 1..255
 *	  2		  24	random nonce (randombytes_buf)
 *	  26	  n		XChaCha20 ciphertext of the n plaintext bytes
 *	  26+n	  16	Poly1305 tag
 *
 * The AEAD is XChaCha20-Poly1305 (IETF).  The key is a per-tenant subkey,
 * crypto_kdf_derive_from_key(32, subkey id = tenant id, "payymotk", root
 * key of that version).  The associated data is format byte || version ||
 * tenant id (8 bytes, little-endian) || context bytes, so a ciphertext only
 * opens for the tenant and context it was written for, and any changed
 * byte -- header included -- fails the tag check.
 *
 * Keys: payymo.key_file is PGC_SIGHUP.  Its assign hook (which must not
 * throw) only marks the key ring stale; the file is read, checked and
 * parsed on the next use of a crypto function in each backend, so the key
 * never enters the postmaster, the library need not be preloaded, and a
 * reload picks up new versions.  A bad file raises 55000 at use.  The ring
 * lives in sodium_malloc() memory (guard pages, mlock, read-only between
 * loads); the file text and every derived subkey are wiped after use, as
 * is every detoasted copy of a plaintext.  Messages name line numbers and
 * reasons, never key bytes; the file's path goes to the server log only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "keyfile.h"
#include "payymo.h"

#define KEY_FILE_GUC		"payymo.key_file"

#define TOKEN_FORMAT		0xB1
#define TOKEN_FORMAT_OFFSET 0
#define TOKEN_VERSION_OFFSET 1
#define TOKEN_NONCE_OFFSET	2
#define TOKEN_NONCE_BYTES	crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TOKEN_BODY_OFFSET	(TOKEN_NONCE_OFFSET + TOKEN_NONCE_BYTES)
#define TOKEN_TAG_BYTES		crypto_aead_xchacha20poly1305_ietf_ABYTES
#define TOKEN_OVERHEAD		(TOKEN_BODY_OFFSET + TOKEN_TAG_BYTES)

/* Associated data: format, version, tenant id (LE64), then the context. */
#define AD_TENANT_OFFSET	2
#define AD_FIXED_BYTES		(AD_TENANT_OFFSET + 8)

/* crypto_kdf context: exactly crypto_kdf_CONTEXTBYTES (8) characters. */
static const char kdf_context[crypto_kdf_CONTEXTBYTES] = {'p', 'a', 'y', 'y', 'm', 'o', 't', 'k'};

/* key_status(): first 8 bytes of BLAKE2b keyed by the root key over this. */
#define FINGERPRINT_LABEL	"payymo key fingerprint"
#define FINGERPRINT_BYTES	8

#define KEY_FILE_HINT \
	"Point payymo.key_file at a file outside the data directory, owned by the server's operating system user, with mode 0600 and lines <version>:<64 hexadecimal characters>, then reload the server."

PG_FUNCTION_INFO_V1(payymo_encrypt_token);
PG_FUNCTION_INFO_V1(payymo_decrypt_token);
PG_FUNCTION_INFO_V1(payymo_reencrypt_token);
PG_FUNCTION_INFO_V1(payymo_token_key_version);
PG_FUNCTION_INFO_V1(payymo_is_token);
PG_FUNCTION_INFO_V1(payymo_key_status);

static char *key_file_path = NULL;

/* The loaded keys, or NULL; read-only (sodium_mprotect) between loads. */
static PayymoKeyring *keyring = NULL;

/* Set by the assign hook: reload before the next use. */
static bool keyring_stale = true;

static void
assign_key_file(const char *newval, void *extra)
{
	keyring_stale = true;
}

void
payymo_crypto_init(void)
{
	DefineCustomStringVariable(KEY_FILE_GUC,
							   "File holding the root keys for token encryption.",
							   "Lines <version>:<64 hex characters>; the highest version encrypts.",
							   &key_file_path,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL,
							   assign_key_file,
							   NULL);
}

static void
forget_keyring(void)
{
	if (keyring != NULL)
	{
		/* sodium_free() makes the pages writable and zeroes them. */
		sodium_free(keyring);
		keyring = NULL;
	}
}

/* Raise the 55000 error that every key file problem shares. */
static void
key_file_error(const char *message, const char *detail, const char *reason)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s", message),
			 detail ? errdetail("%s", detail) : 0,
			 errdetail_log("Key file \"%s\": %s", key_file_path, reason),
			 errhint(KEY_FILE_HINT)));
}

/*
 * The key file must be outside the data directory, so that backups of the
 * data directory never hold the keys.  Paths are compared after resolving
 * symbolic links and "..", so a link into the data directory is refused.
 */
static void
check_key_file_location(void)
{
	char	   *resolved;
	char	   *datadir;
	bool		inside;

	if (!is_absolute_path(key_file_path))
		key_file_error("token key file must be an absolute path outside the data directory",
					   "Backups of the data directory must not contain the keys.",
					   "not an absolute path");
	resolved = realpath(key_file_path, NULL);
	if (resolved == NULL)
	{
		if (errno == ENOENT)
			key_file_error("token key file does not exist", NULL, "does not exist");
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not resolve the path of the token key file: %m"),
				 errdetail_log("Key file \"%s\".", key_file_path),
				 errhint(KEY_FILE_HINT)));
	}
	datadir = realpath(DataDir, NULL);
	inside = datadir == NULL || path_is_prefix_of_path(datadir, resolved);
	free(resolved);
	free(datadir);
	if (inside)
		key_file_error("token key file must be an absolute path outside the data directory",
					   "Backups of the data directory must not contain the keys.",
					   "inside the data directory");
}

/*
 * Read, check and parse the key file into a new key ring.  Everything that
 * can fail is checked before the file is read; the text is held in
 * sodium_malloc() memory and freed (zeroed) before any error is raised.
 */
static void
load_keyring(void)
{
	int			fd;
	struct stat st;
	char	   *text;
	ssize_t		nread;
	PayymoKeyring *ring;
	PayymoKeyfileError perr;
	unsigned int line;
	char		detail[128];
	const char *message = NULL;
	const char *detail_text = NULL;
	const char *reason = NULL;

	forget_keyring();

	if (key_file_path == NULL || key_file_path[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payymo.key_file is not set"),
				 errdetail("Token encryption needs a key file."),
				 errhint(KEY_FILE_HINT)));

	check_key_file_location();

	fd = OpenTransientFile(key_file_path, O_RDONLY | PG_BINARY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
	{
		int			save_errno = errno;

		if (save_errno == ENOENT)
			key_file_error("token key file does not exist", NULL, "does not exist");
		if (save_errno == ELOOP)
			key_file_error("token key file is a symbolic link",
						   "Point payymo.key_file at the file itself.", "symbolic link");
		errno = save_errno;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not open token key file: %m"),
				 errdetail_log("Key file \"%s\".", key_file_path),
				 errhint(KEY_FILE_HINT)));
	}

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		reason = "not a regular file";
		message = "token key file is not a regular file";
	}
	else if (st.st_uid != geteuid())
	{
		reason = "wrong owner";
		message = "token key file is not owned by the server's operating system user";
	}
	else if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		reason = "group or other permissions";
		message = "token key file is accessible by group or others";
		detail_text = "The key file's mode must not grant any permission to group or others (use 0600 or 0400).";
	}
	else if (st.st_size > PAYYMO_KEYFILE_MAX_BYTES)
	{
		reason = "too large";
		message = "token key file is too large";
		detail_text = "A key file holds at most 255 short lines.";
	}
	if (message != NULL)
	{
		CloseTransientFile(fd);
		key_file_error(message, detail_text, reason);
	}

	text = sodium_malloc((size_t) st.st_size + 1);
	ring = sodium_malloc(sizeof(PayymoKeyring));
	if (text == NULL || ring == NULL)
	{
		CloseTransientFile(fd);
		if (text)
			sodium_free(text);
		if (ring)
			sodium_free(ring);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate secure memory for token keys"),
				 errhint("Raise the server's locked-memory limit (ulimit -l).")));
	}

	nread = read(fd, text, (size_t) st.st_size + 1);
	CloseTransientFile(fd);
	if (nread < 0 || nread > st.st_size)
	{
		sodium_free(text);
		sodium_free(ring);
		key_file_error("could not read token key file",
					   "The file could not be read completely, or changed while it was read.",
					   "read failed");
	}

	perr = payymo_keyfile_parse(text, (size_t) nread, ring, &line);
	sodium_free(text);
	if (perr != PAYYMO_KEYFILE_OK)
	{
		sodium_free(ring);
		if (perr == PAYYMO_KEYFILE_EMPTY)
			key_file_error("token key file is empty",
						   payymo_keyfile_error_detail(perr), "no keys");
		snprintf(detail, sizeof(detail), "Line %u: %s", line,
				 payymo_keyfile_error_detail(perr));
		key_file_error(perr == PAYYMO_KEYFILE_DUPLICATE
					   ? "token key file has a duplicate key version"
					   : "token key file has an invalid line",
					   detail, detail);
	}

	sodium_mprotect_readonly(ring);
	keyring = ring;
	keyring_stale = false;
}

static const PayymoKeyring *
get_keyring(void)
{
	if (keyring_stale || keyring == NULL)
		load_keyring();
	return keyring;
}

/* The subkey of root key `version` for `tenant`; the caller wipes it. */
static void
derive_subkey(unsigned char *subkey, const PayymoKeyring *ring, int version,
			  PayymoTenantId tenant)
{
	if (crypto_kdf_derive_from_key(subkey, crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
								   (uint64) tenant, kdf_context,
								   ring->key[version]) != 0)
		elog(ERROR, "crypto_kdf_derive_from_key failed");
}

/*
 * Derive a 32-byte subkey of root key `version` for (id, context), for the
 * other modules' keyed hashes; raises 22023 when that version is not loaded.
 * The caller wipes the subkey.
 */
void
payymo_crypto_derive(unsigned char *subkey, int version, uint64 id,
					 const char context[crypto_kdf_CONTEXTBYTES])
{
	const PayymoKeyring *ring = get_keyring();

	if (version < PAYYMO_KEY_VERSION_MIN || version > PAYYMO_KEY_VERSION_MAX ||
		!ring->present[version])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("root key version %d is not loaded", version),
				 errhint("See payymo.key_status() for the versions payymo.key_file holds.")));
	if (crypto_kdf_derive_from_key(subkey, PAYYMO_SUBKEY_BYTES, id, context,
								   ring->key[version]) != 0)
		elog(ERROR, "crypto_kdf_derive_from_key failed");
}

/* Build the associated data for (version, tenant, context) in palloc'd memory. */
static unsigned char *
build_ad(int version, PayymoTenantId tenant, const text *context, size_t *adlen)
{
	size_t		clen = VARSIZE_ANY_EXHDR(context);
	unsigned char *ad = palloc(AD_FIXED_BYTES + clen);
	uint64		t = (uint64) tenant;
	int			i;

	ad[TOKEN_FORMAT_OFFSET] = TOKEN_FORMAT;
	ad[TOKEN_VERSION_OFFSET] = (unsigned char) version;
	for (i = 0; i < 8; i++)
		ad[AD_TENANT_OFFSET + i] = (unsigned char) (t >> (8 * i));
	memcpy(ad + AD_FIXED_BYTES, VARDATA_ANY(context), clen);
	*adlen = AD_FIXED_BYTES + clen;
	return ad;
}

static void
require_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name),
				 errhint("Store NULL instead of encrypting or decrypting it.")));
}

/* Encrypt len bytes for (tenant, context) under the newest root key. */
static bytea *
encrypt_bytes(const char *plain, size_t len, PayymoTenantId tenant,
			  const text *context)
{
	const PayymoKeyring *ring = get_keyring();
	int			version = ring->newest;
	unsigned char subkey[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned char *ad;
	size_t		adlen;
	bytea	   *result;
	unsigned char *out;
	unsigned long long clen;
	int			rc;

	if (len > MaxAllocSize - VARHDRSZ - TOKEN_OVERHEAD)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("plaintext is too long to encrypt")));

	result = palloc(VARHDRSZ + TOKEN_OVERHEAD + len);
	SET_VARSIZE(result, VARHDRSZ + TOKEN_OVERHEAD + len);
	out = (unsigned char *) VARDATA(result);
	out[TOKEN_FORMAT_OFFSET] = TOKEN_FORMAT;
	out[TOKEN_VERSION_OFFSET] = (unsigned char) version;
	randombytes_buf(out + TOKEN_NONCE_OFFSET, TOKEN_NONCE_BYTES);

	ad = build_ad(version, tenant, context, &adlen);
	derive_subkey(subkey, ring, version, tenant);
	rc = crypto_aead_xchacha20poly1305_ietf_encrypt(out + TOKEN_BODY_OFFSET, &clen,
													(const unsigned char *) plain, len,
													ad, adlen, NULL,
													out + TOKEN_NONCE_OFFSET,
													subkey);
	sodium_memzero(subkey, sizeof(subkey));
	pfree(ad);
	if (rc != 0 || clen != len + TOKEN_TAG_BYTES)
		elog(ERROR, "crypto_aead_xchacha20poly1305_ietf_encrypt failed");
	return result;
}

/* Raise the error for a ciphertext that is not a token at all. */
static void
not_a_token(PayymoTenantId tenant, bool report)
{
	if (report)
		payymo_security_event(PAYYMO_EVENT_DECRYPT_FAILED, tenant, NULL);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("value is not a payymo token"),
			 errdetail("A token starts with format byte 0xB1 and a key version from 1 to 255, and is at least %d bytes long.",
					   TOKEN_OVERHEAD)));
}

static bool
looks_like_token(const bytea *ct)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(ct);

	return VARSIZE_ANY_EXHDR(ct) >= TOKEN_OVERHEAD &&
		p[TOKEN_FORMAT_OFFSET] == TOKEN_FORMAT &&
		p[TOKEN_VERSION_OFFSET] >= PAYYMO_KEY_VERSION_MIN;
}

/*
 * Decrypt a token for (tenant, context).  Returns a palloc'd text holding
 * the plaintext; every failure reports a security event and raises 22P03
 * (or 22023 for a key version that is not loaded), returning nothing.
 */
static text *
decrypt_bytes(const bytea *ct, PayymoTenantId tenant, const text *context)
{
	const PayymoKeyring *ring = get_keyring();
	const unsigned char *in = (const unsigned char *) VARDATA_ANY(ct);
	size_t		inlen = VARSIZE_ANY_EXHDR(ct);
	int			version;
	size_t		plen;
	unsigned char subkey[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	unsigned char *ad;
	size_t		adlen;
	text	   *result;
	unsigned long long mlen;
	int			rc;

	if (!looks_like_token(ct))
		not_a_token(tenant, true);

	version = in[TOKEN_VERSION_OFFSET];
	if (!ring->present[version])
	{
		payymo_security_event(PAYYMO_EVENT_DECRYPT_FAILED, tenant, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("token key version %d is not loaded", version),
				 errdetail("The token was encrypted with a root key version that is not in payymo.key_file, or it was changed."),
				 errhint("Restore that key version in the key file and reload the server; see payymo.key_status().")));
	}

	plen = inlen - TOKEN_OVERHEAD;
	result = palloc(VARHDRSZ + plen);
	SET_VARSIZE(result, VARHDRSZ + plen);

	ad = build_ad(version, tenant, context, &adlen);
	derive_subkey(subkey, ring, version, tenant);
	rc = crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *) VARDATA(result), &mlen,
													NULL,
													in + TOKEN_BODY_OFFSET,
													inlen - TOKEN_BODY_OFFSET,
													ad, adlen,
													in + TOKEN_NONCE_OFFSET,
													subkey);
	sodium_memzero(subkey, sizeof(subkey));
	pfree(ad);
	if (rc != 0 || mlen != plen)
	{
		sodium_memzero(VARDATA(result), plen);
		pfree(result);
		payymo_security_event(PAYYMO_EVENT_DECRYPT_FAILED, tenant, NULL);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("payymo token could not be decrypted"),
				 errdetail("The token was written for another tenant or context, or it was changed."),
				 errhint("Decrypt a token under the tenant context and with the context string it was encrypted with.  If another server wrote it, compare payymo.key_status() fingerprints: the same key version must have the same fingerprint on both.")));
	}
	return result;
}

/* The plaintext of a decrypted token must be valid in the database encoding. */
static void
check_plaintext_encoding(text *plain)
{
	if (!pg_verifymbstr(VARDATA(plain), VARSIZE(plain) - VARHDRSZ, true))
	{
		sodium_memzero(VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("decrypted token is not valid in the database encoding")));
	}
}

/*
 * payymo.encrypt_token(plaintext text, context text DEFAULT '') RETURNS bytea
 */
Datum
payymo_encrypt_token(PG_FUNCTION_ARGS)
{
	PayymoTenantId tenant;
	text	   *plain;
	text	   *context;
	bytea	   *result;

	require_not_null(fcinfo, 0, "plaintext");
	require_not_null(fcinfo, 1, "context");
	tenant = payymo_require_tenant();

	plain = PG_GETARG_TEXT_PP(0);
	context = PG_GETARG_TEXT_PP(1);
	result = encrypt_bytes(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain),
						   tenant, context);
	payymo_wipe_arg_copy(fcinfo, 0, plain);
	PG_FREE_IF_COPY(context, 1);
	PG_RETURN_BYTEA_P(result);
}

/*
 * payymo.decrypt_token(ciphertext bytea, context text DEFAULT '') RETURNS text
 */
Datum
payymo_decrypt_token(PG_FUNCTION_ARGS)
{
	PayymoTenantId tenant;
	bytea	   *ct;
	text	   *context;
	text	   *plain;

	require_not_null(fcinfo, 0, "ciphertext");
	require_not_null(fcinfo, 1, "context");
	tenant = payymo_require_tenant();

	ct = PG_GETARG_BYTEA_PP(0);
	context = PG_GETARG_TEXT_PP(1);
	plain = decrypt_bytes(ct, tenant, context);
	check_plaintext_encoding(plain);
	PG_FREE_IF_COPY(ct, 0);
	PG_FREE_IF_COPY(context, 1);
	PG_RETURN_TEXT_P(plain);
}

/*
 * payymo.reencrypt_token(ciphertext bytea, context text DEFAULT '') RETURNS bytea
 */
Datum
payymo_reencrypt_token(PG_FUNCTION_ARGS)
{
	PayymoTenantId tenant;
	bytea	   *ct;
	text	   *context;
	text	   *plain;
	bytea	   *result;

	require_not_null(fcinfo, 0, "ciphertext");
	require_not_null(fcinfo, 1, "context");
	tenant = payymo_require_tenant();

	ct = PG_GETARG_BYTEA_PP(0);
	context = PG_GETARG_TEXT_PP(1);

	/* Decrypt, encrypt again under the newest key, wipe the plaintext. */
	plain = decrypt_bytes(ct, tenant, context);
	result = encrypt_bytes(VARDATA(plain), VARSIZE(plain) - VARHDRSZ, tenant, context);
	sodium_memzero(VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
	pfree(plain);
	PG_FREE_IF_COPY(ct, 0);
	PG_FREE_IF_COPY(context, 1);
	PG_RETURN_BYTEA_P(result);
}

/*
 * payymo.token_key_version(ciphertext bytea) RETURNS integer
 */
Datum
payymo_token_key_version(PG_FUNCTION_ARGS)
{
	bytea	   *ct = PG_GETARG_BYTEA_PP(0);
	int			version;

	if (!looks_like_token(ct))
		not_a_token(PAYYMO_NO_TENANT, false);
	version = ((const unsigned char *) VARDATA_ANY(ct))[TOKEN_VERSION_OFFSET];
	PG_FREE_IF_COPY(ct, 0);
	PG_RETURN_INT32(version);
}

/*
 * payymo.is_token(bytea) RETURNS boolean
 */
Datum
payymo_is_token(PG_FUNCTION_ARGS)
{
	bytea	   *ct = PG_GETARG_BYTEA_PP(0);
	bool		result = looks_like_token(ct);

	PG_FREE_IF_COPY(ct, 0);
	PG_RETURN_BOOL(result);
}

/*
 * payymo.key_status() RETURNS TABLE (version integer, active boolean,
 *									  fingerprint text)
 *
 * One row per loaded version, newest first; active marks the version that
 * encrypts.  The fingerprint is a keyed hash, useless for recovering a key.
 */
Datum
payymo_key_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const PayymoKeyring *ring;
	int			version;

	InitMaterializedSRF(fcinfo, 0);
	ring = get_keyring();

	for (version = PAYYMO_KEY_VERSION_MAX; version >= PAYYMO_KEY_VERSION_MIN; version--)
	{
		unsigned char fp[FINGERPRINT_BYTES];
		char		hex[2 * FINGERPRINT_BYTES + 1];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (!ring->present[version])
			continue;
		crypto_generichash(fp, sizeof(fp),
						   (const unsigned char *) FINGERPRINT_LABEL,
						   strlen(FINGERPRINT_LABEL),
						   ring->key[version], PAYYMO_KEY_BYTES);
		sodium_bin2hex(hex, sizeof(hex), fp, sizeof(fp));
		values[0] = Int32GetDatum(version);
		values[1] = BoolGetDatum(version == ring->newest);
		values[2] = CStringGetTextDatum(hex);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
