/*-------------------------------------------------------------------------
 *
 * jwt.c
 *	  payymo.set_tenant_jwt(): a JSON Web Token from an identity provider
 *	  sets the tenant (and user) once its signature and claims verify; and
 *	  payymo._jwk_key(), which turns a registered JWK into key material.
 *
 * Issuers are registered in the database (payymo.jwt_issuers, with one
 * algorithm each, the audience, the claims naming the tenant and the user,
 * and a leeway) with their keys (payymo.jwt_keys, by kid).  There is no
 * network access: keys are rotated by adding a kid.
 *
 * Verification, in this order; any failure is one 28000 error whose detail
 * names the rule, and a bad_jwt security event:
 *	  - at most PAYYMO_JWT_MAX_BYTES, compact form (three base64url parts,
 *		strict: no padding, no stray bits), header and payload JSON objects
 *		without NUL bytes or duplicate top-level names (a JSON parser that
 *		keeps the last duplicate and one that keeps the first would read two
 *		different tokens);
 *	  - header: "alg" is the issuer's algorithm ("none" never is), no "crit",
 *		a "kid" registered for the issuer;
 *	  - the signature, over the first two parts as sent: EdDSA (Ed25519) and
 *		HS256 with libsodium, RS256 and ES256 with OpenSSL's libcrypto;
 *	  - claims: "iss" registered, "exp" in the future and "nbf" in the past
 *		(with the issuer's leeway), "aud" (a string or an array) holding the
 *		issuer's audience, the tenant claim naming an active tenant (a number:
 *		its id; a string: its slug), and, when the issuer names a user claim,
 *		an active user of that tenant whose subject it is.
 *
 * The issuer's registration is looked up before the signature is checked
 * (it says which key and algorithm); nothing of the token is trusted before
 * the signature verifies except "iss", "kid" and "alg", which only select
 * what to verify with.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "payymo.h"

#define PAYYMO_JWT_MAX_BYTES 8192
#define RSA_MIN_BITS 2048

PG_FUNCTION_INFO_V1(payymo_set_tenant_jwt);
PG_FUNCTION_INFO_V1(payymo_jwk_key);

/* Semantic-action callbacks return an error code from PostgreSQL 16 on. */
#if PG_VERSION_NUM >= 160000
#define JSON_ACTION JsonParseErrorType
#define JSON_ACTION_DONE return JSON_SUCCESS
#else
#define JSON_ACTION void
#define JSON_ACTION_DONE return
#endif

typedef enum JwtAlg
{
	JWT_EDDSA,
	JWT_HS256,
	JWT_RS256,
	JWT_ES256,
} JwtAlg;

static const char *const alg_names[] = {
	[JWT_EDDSA] = "EdDSA",
	[JWT_HS256] = "HS256",
	[JWT_RS256] = "RS256",
	[JWT_ES256] = "ES256",
};

static bool
alg_from_name(const char *name, JwtAlg *alg)
{
	int			i;

	for (i = 0; i < lengthof(alg_names); i++)
		if (strcmp(name, alg_names[i]) == 0)
		{
			*alg = (JwtAlg) i;
			return true;
		}
	return false;
}

/* ------------------------------------------------------------------------
 * JSON objects: top-level members only, duplicates refused
 * ------------------------------------------------------------------------
 */
typedef struct Claim
{
	char	   *name;
	JsonTokenType type;			/* of a scalar; JSON_TOKEN_ARRAY_START for arrays */
	char	   *value;			/* a scalar's text */
	List	   *strings;		/* an array's string elements */
} Claim;

typedef struct ClaimsParse
{
	int			depth;
	bool		root_is_object;
	bool		duplicate;
	Claim	   *current;		/* the top-level member being read */
	List	   *claims;
} ClaimsParse;

static Claim *
find_claim(List *claims, const char *name)
{
	ListCell   *lc;

	foreach(lc, claims)
	{
		Claim	   *c = lfirst(lc);

		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

static JSON_ACTION
claims_object_start(void *state)
{
	ClaimsParse *p = state;

	if (p->depth == 0)
		p->root_is_object = true;
	p->depth++;
	JSON_ACTION_DONE;
}

static JSON_ACTION
claims_struct_end(void *state)
{
	((ClaimsParse *) state)->depth--;
	JSON_ACTION_DONE;
}

static JSON_ACTION
claims_array_start(void *state)
{
	ClaimsParse *p = state;

	if (p->depth == 1 && p->current)
		p->current->type = JSON_TOKEN_ARRAY_START;
	p->depth++;
	JSON_ACTION_DONE;
}

static JSON_ACTION
claims_field_start(void *state, char *fname, bool isnull)
{
	ClaimsParse *p = state;

	if (p->depth == 1)
	{
		Claim	   *c;

		if (find_claim(p->claims, fname))
			p->duplicate = true;
		c = palloc0(sizeof(Claim));
		c->name = fname;
		c->type = JSON_TOKEN_OBJECT_START;	/* until a scalar or array says */
		p->claims = lappend(p->claims, c);
		p->current = c;
	}
	JSON_ACTION_DONE;
}

static JSON_ACTION
claims_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ClaimsParse *p = state;

	if (p->depth == 1 && p->current)
	{
		p->current->type = tokentype;
		p->current->value = token;
	}
	else if (p->depth == 2 && p->current &&
			 p->current->type == JSON_TOKEN_ARRAY_START && tokentype == JSON_TOKEN_STRING)
		p->current->strings = lappend(p->current->strings, token);
	JSON_ACTION_DONE;
}

/* Parse a JSON object of len bytes; NULL when it is not one, or not valid. */
static List *
parse_claims(char *json, size_t len, bool *ok)
{
	JsonLexContext *lex;
	JsonSemAction sem = {0};
	ClaimsParse p = {0};

	*ok = false;
	if (memchr(json, '\0', len) != NULL ||
		pg_verify_mbstr(PG_UTF8, json, (int) len, true) == false)
		return NIL;
#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(NULL, json, len, PG_UTF8, true);
#else
	lex = makeJsonLexContextCstringLen(json, (int) len, PG_UTF8, true);
#endif
	sem.semstate = &p;
	sem.object_start = claims_object_start;
	sem.object_end = claims_struct_end;
	sem.array_start = claims_array_start;
	sem.array_end = claims_struct_end;
	sem.object_field_start = claims_field_start;
	sem.scalar = claims_scalar;
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS || !p.root_is_object || p.duplicate)
		return NIL;
	*ok = true;
	return p.claims;
}

static const char *
string_claim(List *claims, const char *name)
{
	Claim	   *c = find_claim(claims, name);

	return c && c->type == JSON_TOKEN_STRING ? c->value : NULL;
}

/* A NumericDate claim (seconds since the epoch); false when absent or bad. */
static bool
time_claim(List *claims, const char *name, double *secs, bool *present)
{
	Claim	   *c = find_claim(claims, name);
	char	   *end;

	*present = c != NULL;
	if (c == NULL)
		return false;
	if (c->type != JSON_TOKEN_NUMBER)
		return false;
	errno = 0;
	*secs = strtod(c->value, &end);
	return errno == 0 && *end == '\0' && isfinite(*secs);
}

/* ------------------------------------------------------------------------
 * base64url and keys
 * ------------------------------------------------------------------------
 */

/* Strict base64url without padding; NULL when s is not. */
static unsigned char *
b64url_decode(const char *s, size_t len, size_t *out_len)
{
	unsigned char *out = palloc(len * 3 / 4 + 1);

	if (len == 0 ||
		sodium_base642bin(out, len * 3 / 4 + 1, s, len, NULL, out_len, NULL,
						  sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return NULL;
	return out;
}

PAYYMO_NORETURN static void
openssl_failed(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("OpenSSL could not %s", what)));
}

/* DER SubjectPublicKeyInfo of an EVP_PKEY, freeing it. */
static bytea *
pkey_to_der(EVP_PKEY *pkey)
{
	int			len = i2d_PUBKEY(pkey, NULL);
	bytea	   *der;
	unsigned char *p;

	if (len <= 0)
	{
		EVP_PKEY_free(pkey);
		openssl_failed("encode a public key");
	}
	der = palloc(VARHDRSZ + len);
	SET_VARSIZE(der, VARHDRSZ + len);
	p = (unsigned char *) VARDATA(der);
	(void) i2d_PUBKEY(pkey, &p);
	EVP_PKEY_free(pkey);
	return der;
}

/* An EVP_PKEY from OSSL_PARAMs; NULL when they do not make a valid key. */
static EVP_PKEY *
pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY_CTX *check = NULL;
	EVP_PKEY   *pkey = NULL;

	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
		EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	if (pkey != NULL)
	{
		check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		if (check == NULL || EVP_PKEY_public_check(check) <= 0)
		{
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

PAYYMO_NORETURN static void
bad_jwk(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid JWK"),
			 errdetail_internal("%s", detail)));
}

static unsigned char *
jwk_field(FunctionCallInfo fcinfo, int argno, const char *name, size_t *len)
{
	char	   *s;
	unsigned char *bin;

	if (PG_ARGISNULL(argno))
		bad_jwk(psprintf("The member \"%s\" is missing.", name));
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	bin = b64url_decode(s, strlen(s), len);
	if (bin == NULL)
		bad_jwk(psprintf("The member \"%s\" is not base64url.", name));
	return bin;
}

/*
 * payymo._jwk_key(algorithm text, a text, b text) RETURNS bytea
 *
 * The key material payymo verifies with, from a JWK's base64url members:
 * EdDSA x (the raw 32-byte public key), HS256 k (the secret, at least 32
 * bytes), RS256 n and e, ES256 x and y (both as DER SubjectPublicKeyInfo,
 * an RSA modulus of at least 2048 bits, a point on P-256).
 */
Datum
payymo_jwk_key(PG_FUNCTION_ARGS)
{
	char	   *alg_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	JwtAlg		alg;
	size_t		alen;
	size_t		blen;
	unsigned char *a;
	unsigned char *b;
	bytea	   *result;
	OSSL_PARAM_BLD *bld;
	EVP_PKEY   *pkey;

	if (!alg_from_name(alg_name, &alg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported JWT algorithm \"%s\"", alg_name),
				 errhint("Use EdDSA, HS256, RS256 or ES256.")));
	switch (alg)
	{
		case JWT_EDDSA:
		case JWT_HS256:
			a = jwk_field(fcinfo, 1, alg == JWT_EDDSA ? "x" : "k", &alen);
			if (alg == JWT_EDDSA && alen != crypto_sign_PUBLICKEYBYTES)
				bad_jwk("An Ed25519 public key is 32 bytes.");
			if (alg == JWT_HS256 && alen < crypto_auth_hmacsha256_KEYBYTES)
				bad_jwk("An HS256 secret is at least 32 bytes (RFC 7518, 3.2).");
			result = palloc(VARHDRSZ + alen);
			SET_VARSIZE(result, VARHDRSZ + alen);
			memcpy(VARDATA(result), a, alen);
			sodium_memzero(a, alen);
			PG_RETURN_BYTEA_P(result);
		case JWT_RS256:
			{
				BIGNUM	   *n;
				BIGNUM	   *e;

				a = jwk_field(fcinfo, 1, "n", &alen);
				b = jwk_field(fcinfo, 2, "e", &blen);
				n = BN_bin2bn(a, (int) alen, NULL);
				e = BN_bin2bn(b, (int) blen, NULL);
				if (n == NULL || e == NULL)
					openssl_failed("read an RSA key");
				if (BN_num_bits(n) < RSA_MIN_BITS)
				{
					BN_free(n);
					BN_free(e);
					bad_jwk("An RSA modulus has at least 2048 bits.");
				}
				bld = OSSL_PARAM_BLD_new();
				if (bld == NULL ||
					!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
					!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
					openssl_failed("build an RSA key");
				pkey = pkey_from_params("RSA", bld);
				OSSL_PARAM_BLD_free(bld);
				BN_free(n);
				BN_free(e);
				break;
			}
		case JWT_ES256:
			{
				unsigned char point[65];

				a = jwk_field(fcinfo, 1, "x", &alen);
				b = jwk_field(fcinfo, 2, "y", &blen);
				if (alen != 32 || blen != 32)
					bad_jwk("P-256 coordinates are 32 bytes each.");
				point[0] = 0x04;
				memcpy(point + 1, a, 32);
				memcpy(point + 33, b, 32);
				bld = OSSL_PARAM_BLD_new();
				if (bld == NULL ||
					!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
					!OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)))
					openssl_failed("build an EC key");
				pkey = pkey_from_params("EC", bld);
				OSSL_PARAM_BLD_free(bld);
				break;
			}
		default:
			pg_unreachable();
	}
	if (pkey == NULL)
		bad_jwk("The key is not a valid public key.");
	PG_RETURN_BYTEA_P(pkey_to_der(pkey));
}

/* ------------------------------------------------------------------------
 * Signatures
 * ------------------------------------------------------------------------
 */

/*
 * Parsed OpenSSL keys, by their DER bytes: parsing a key costs OpenSSL 3
 * several times what verifying with it does.  The DER comes from the
 * registry on every call, so a removed or replaced key is never used.
 */
#define PKEY_CACHE_SIZE 16

typedef struct PkeyCacheEntry
{
	unsigned char *der;			/* malloc'd; NULL: free slot */
	size_t		der_len;
	EVP_PKEY   *pkey;
} PkeyCacheEntry;

static PkeyCacheEntry pkey_cache[PKEY_CACHE_SIZE];
static int	pkey_cache_next = 0;

static EVP_PKEY *
cached_pkey(const unsigned char *der, size_t der_len)
{
	PkeyCacheEntry *e;
	const unsigned char *p = der;
	EVP_PKEY   *pkey;
	int			i;

	for (i = 0; i < PKEY_CACHE_SIZE; i++)
		if (pkey_cache[i].der && pkey_cache[i].der_len == der_len &&
			memcmp(pkey_cache[i].der, der, der_len) == 0)
			return pkey_cache[i].pkey;
	pkey = d2i_PUBKEY(NULL, &p, (long) der_len);
	if (pkey == NULL)
		return NULL;
	e = &pkey_cache[pkey_cache_next];
	pkey_cache_next = (pkey_cache_next + 1) % PKEY_CACHE_SIZE;
	if (e->der)
	{
		free(e->der);
		EVP_PKEY_free(e->pkey);
		e->der = NULL;
	}
	e->der = malloc(der_len);
	if (e->der == NULL)
	{
		EVP_PKEY_free(pkey);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	memcpy(e->der, der, der_len);
	e->der_len = der_len;
	e->pkey = pkey;
	return pkey;
}

/* Verify with OpenSSL: SHA-256 and the DER public key. */
static bool
openssl_verify(const unsigned char *der, size_t der_len, const unsigned char *sig,
			   size_t sig_len, const char *msg, size_t msg_len)
{
	static EVP_MD *sha256 = NULL;
	EVP_PKEY   *pkey = cached_pkey(der, der_len);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool		ok;

	if (sha256 == NULL && (sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		openssl_failed("fetch SHA-256");
	ok = pkey != NULL && md != NULL &&
		EVP_DigestVerifyInit(md, NULL, sha256, NULL, pkey) == 1 &&
		EVP_DigestVerify(md, sig, sig_len, (const unsigned char *) msg, msg_len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* JWS ES256 signatures are r || s; OpenSSL verifies DER ECDSA-Sig-Value. */
static bool
es256_verify(const unsigned char *der, size_t der_len, const unsigned char *sig,
			 size_t sig_len, const char *msg, size_t msg_len)
{
	ECDSA_SIG  *esig;
	BIGNUM	   *r;
	BIGNUM	   *s;
	unsigned char *buf = NULL;
	int			len;
	bool		ok;

	if (sig_len != 64)
		return false;
	esig = ECDSA_SIG_new();
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	if (esig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(esig, r, s))
	{
		ECDSA_SIG_free(esig);
		BN_free(r);
		BN_free(s);
		openssl_failed("read an ECDSA signature");
	}
	len = i2d_ECDSA_SIG(esig, &buf);
	ECDSA_SIG_free(esig);
	if (len <= 0)
		openssl_failed("encode an ECDSA signature");
	ok = openssl_verify(der, der_len, buf, (size_t) len, msg, msg_len);
	OPENSSL_free(buf);
	return ok;
}

static bool
signature_verifies(JwtAlg alg, const unsigned char *key, size_t key_len,
				   const unsigned char *sig, size_t sig_len,
				   const char *msg, size_t msg_len)
{
	switch (alg)
	{
		case JWT_EDDSA:
			return key_len == crypto_sign_PUBLICKEYBYTES &&
				sig_len == crypto_sign_BYTES &&
				crypto_sign_verify_detached(sig, (const unsigned char *) msg, msg_len, key) == 0;
		case JWT_HS256:
			{
				crypto_auth_hmacsha256_state st;
				unsigned char mac[crypto_auth_hmacsha256_BYTES];
				bool		ok;

				crypto_auth_hmacsha256_init(&st, key, key_len);
				crypto_auth_hmacsha256_update(&st, (const unsigned char *) msg, msg_len);
				crypto_auth_hmacsha256_final(&st, mac);
				ok = sig_len == sizeof(mac) && sodium_memcmp(mac, sig, sizeof(mac)) == 0;
				sodium_memzero(&st, sizeof(st));
				sodium_memzero(mac, sizeof(mac));
				return ok;
			}
		case JWT_RS256:
			return openssl_verify(key, key_len, sig, sig_len, msg, msg_len);
		case JWT_ES256:
			return es256_verify(key, key_len, sig, sig_len, msg, msg_len);
	}
	return false;
}

/* ------------------------------------------------------------------------
 * set_tenant_jwt
 * ------------------------------------------------------------------------
 */

/* What the registry says of an issuer and one of its keys. */
typedef struct IssuerKey
{
	JwtAlg		alg;
	char	   *audience;
	char	   *tenant_claim;
	char	   *user_claim;		/* NULL: tenant-wide tokens */
	int32		leeway_secs;
	bytea	   *key;
} IssuerKey;

/*
 * The registry, the users and the tenants are read through their indexes
 * directly, as set_tenant() reads keys: no SPI, no privilege checks (the
 * client may read none of the registry), with the latest snapshot, so that
 * a removed key or a disabled user takes effect at the next call.
 */
enum
{
	ISSUERS_ISSUER = 1,
	ISSUERS_AUDIENCE = 2,
	ISSUERS_ALGORITHM = 3,
	ISSUERS_TENANT_CLAIM = 4,
	ISSUERS_USER_CLAIM = 5,
	ISSUERS_LEEWAY = 6,
};
enum
{
	KEYS_ISSUER = 1,
	KEYS_KID = 2,
	KEYS_KEY = 4,
};
enum
{
	USERS_ID = 1,
	USERS_TENANT_ID = 2,
	USERS_ROLE = 4,
	USERS_STATUS = 5,
	USERS_SUBJECT = 7,
};
enum
{
	TENANTS_ID = 1,
	TENANTS_SLUG = 2,
};

/*
 * The one row of payymo.<table> whose index (by name) matches the text or
 * int8 values in the table's columns key_attnums, copied, or NULL.  The
 * columns are checked by name once.
 */
static HeapTuple
fetch_row(const char *table, const char *index, int nkeys, const AttrNumber *key_attnums,
		  const Datum *values, const Oid *types, const AttrNumber *check_attnums,
		  const char *const *check_names, int ncheck, bool *checked, TupleDesc *desc)
{
	Oid			pkey;
	Relation	rel = payymo_open_table(table, &pkey);
	Oid			indexoid = get_relname_relid(index, RelationGetNamespace(rel));
	ScanKeyData keys[2];
	Snapshot	snapshot;
	SysScanDesc scan;
	HeapTuple	tup;
	int			i;

	if (!OidIsValid(indexoid))
		elog(ERROR, "payymo: index payymo.%s is missing", index);
	if (!*checked)
	{
		for (i = 0; i < ncheck; i++)
			payymo_check_column(rel, check_attnums[i], check_names[i]);
		*checked = true;
	}
	for (i = 0; i < nkeys; i++)
		ScanKeyEntryInitialize(&keys[i], 0, key_attnums[i], BTEqualStrategyNumber, InvalidOid,
							   types[i] == TEXTOID ? DEFAULT_COLLATION_OID : InvalidOid,
							   types[i] == TEXTOID ? F_TEXTEQ : F_INT8EQ, values[i]);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, indexoid, true, snapshot, nkeys, keys);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		tup = heap_copytuple(tup);
	*desc = CreateTupleDescCopy(RelationGetDescr(rel));
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return tup;
}

static char *
text_attr(HeapTuple tup, TupleDesc desc, AttrNumber attnum)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, desc, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static bool
lookup_issuer_key(const char *issuer, const char *kid, IssuerKey *ik)
{
	static bool keys_checked = false;
	static bool issuers_checked = false;
	static const AttrNumber key_attnums[] = {KEYS_ISSUER, KEYS_KID, KEYS_KEY};
	static const char *const key_names[] = {"issuer", "kid", "key"};
	static const AttrNumber issuer_attnums[] = {ISSUERS_ISSUER, ISSUERS_AUDIENCE, ISSUERS_ALGORITHM,
		ISSUERS_TENANT_CLAIM, ISSUERS_USER_CLAIM, ISSUERS_LEEWAY};
	static const char *const issuer_names[] = {"issuer", "audience", "algorithm",
		"tenant_claim", "user_claim", "leeway_secs"};
	Datum		values[2] = {CStringGetTextDatum(issuer), CStringGetTextDatum(kid)};
	Oid			types[2] = {TEXTOID, TEXTOID};
	TupleDesc	desc;
	HeapTuple	tup;
	bool		isnull;

	tup = fetch_row("jwt_keys", "jwt_keys_pkey", 2, key_attnums, values, types,
					key_attnums, key_names, 3, &keys_checked, &desc);
	if (tup == NULL)
		return false;
	ik->key = DatumGetByteaPCopy(heap_getattr(tup, KEYS_KEY, desc, &isnull));
	tup = fetch_row("jwt_issuers", "jwt_issuers_pkey", 1, issuer_attnums, values, types,
					issuer_attnums, issuer_names, 6, &issuers_checked, &desc);
	if (tup == NULL || !alg_from_name(text_attr(tup, desc, ISSUERS_ALGORITHM), &ik->alg))
		return false;
	ik->audience = text_attr(tup, desc, ISSUERS_AUDIENCE);
	ik->tenant_claim = text_attr(tup, desc, ISSUERS_TENANT_CLAIM);
	ik->user_claim = text_attr(tup, desc, ISSUERS_USER_CLAIM);
	ik->leeway_secs = DatumGetInt32(heap_getattr(tup, ISSUERS_LEEWAY, desc, &isnull));
	return true;
}

/* The active user of the tenant with this subject, or PAYYMO_NO_USER. */
static PayymoUserId
lookup_subject(PayymoTenantId tenant, const char *subject, bool *is_admin)
{
	static bool checked = false;
	static const AttrNumber attnums[] = {USERS_ID, USERS_ROLE, USERS_STATUS, USERS_SUBJECT};
	static const char *const names[] = {"id", "role", "status", "subject"};
	static const AttrNumber key_attnums[] = {USERS_TENANT_ID, USERS_SUBJECT};
	Datum		values[2] = {Int64GetDatum(tenant), CStringGetTextDatum(subject)};
	Oid			types[2] = {INT8OID, TEXTOID};
	TupleDesc	desc;
	HeapTuple	tup;
	bool		isnull;
	char	   *status;

	tup = fetch_row("users", "users_tenant_subject_key", 2, key_attnums, values, types,
					attnums, names, 4, &checked, &desc);
	if (tup == NULL)
		return PAYYMO_NO_USER;
	status = text_attr(tup, desc, USERS_STATUS);
	if (status == NULL || strcmp(status, "active") != 0)
		return PAYYMO_NO_USER;
	*is_admin = strcmp(text_attr(tup, desc, USERS_ROLE), "admin") == 0;
	return DatumGetInt64(heap_getattr(tup, USERS_ID, desc, &isnull));
}

/* A tenant id from its slug, or PAYYMO_NO_TENANT. */
static PayymoTenantId
tenant_by_slug(const char *slug)
{
	static bool checked = false;
	static const AttrNumber attnums[] = {TENANTS_ID, TENANTS_SLUG};
	static const char *const names[] = {"id", "slug"};
	static const AttrNumber key_attnums[] = {TENANTS_SLUG};
	Datum		values[1] = {CStringGetTextDatum(slug)};
	Oid			types[1] = {TEXTOID};
	TupleDesc	desc;
	HeapTuple	tup;
	bool		isnull;

	tup = fetch_row("tenants", "tenants_slug_key", 1, key_attnums, values, types,
					attnums, names, 2, &checked, &desc);
	return tup == NULL ? PAYYMO_NO_TENANT :
		DatumGetInt64(heap_getattr(tup, TENANTS_ID, desc, &isnull));
}

/* The refusal: one error, the rule in the detail, and a security event. */
PAYYMO_NORETURN static void
jwt_refused(const char *kid, PayymoTenantId tenant, const char *rule)
{
	payymo_security_event(PAYYMO_EVENT_BAD_JWT, tenant, kid);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("invalid token"),
			 errdetail_internal("%s", rule),
			 errhidestmt(true),
			 errhidecontext(true)));
}

static bool
audience_matches(List *claims, const char *audience)
{
	Claim	   *c = find_claim(claims, "aud");
	ListCell   *lc;

	if (c == NULL)
		return false;
	if (c->type == JSON_TOKEN_STRING)
		return strcmp(c->value, audience) == 0;
	if (c->type == JSON_TOKEN_ARRAY_START)
		foreach(lc, c->strings)
			if (strcmp(lfirst(lc), audience) == 0)
				return true;
	return false;
}

/* The tenant a claim names: a number is an id, a string a slug. */
static PayymoTenantId
tenant_from_claim(List *claims, const char *name)
{
	Claim	   *c = find_claim(claims, name);
	char	   *end;
	int64		id;

	if (c == NULL)
		return PAYYMO_NO_TENANT;
	if (c->type == JSON_TOKEN_STRING)
		return tenant_by_slug(c->value);
	if (c->type != JSON_TOKEN_NUMBER)
		return PAYYMO_NO_TENANT;
	errno = 0;
	id = strtoi64(c->value, &end, 10);
	return errno == 0 && *end == '\0' && id > 0 ? id : PAYYMO_NO_TENANT;
}

/*
 * payymo.set_tenant_jwt(token text, is_local boolean) RETURNS bigint
 */
Datum
payymo_set_tenant_jwt(PG_FUNCTION_ARGS)
{
	PayymoCredentialCall call;
	text	   *arg;
	char	   *token;
	size_t		len;
	char	   *dot1;
	char	   *dot2;
	unsigned char *header_json;
	unsigned char *payload_json;
	unsigned char *sig;
	size_t		header_len;
	size_t		payload_len;
	size_t		sig_len;
	List	   *header;
	List	   *claims;
	bool		ok;
	const char *alg_name;
	const char *kid;
	const char *issuer;
	JwtAlg		alg;
	IssuerKey	ik;
	double		exp;
	double		nbf;
	bool		present;
	double		now;
	PayymoTenantId tenant;
	PayymoTenantRow tenant_row;
	PayymoUserId user = PAYYMO_NO_USER;
	bool		is_admin = false;

	payymo_credential_begin(fcinfo, &call);
	if (PG_ARGISNULL(0))
		jwt_refused(NULL, PAYYMO_NO_TENANT, "The token is null.");
	arg = PG_GETARG_TEXT_PP(0);
	len = VARSIZE_ANY_EXHDR(arg);
	if (len > PAYYMO_JWT_MAX_BYTES)
		jwt_refused(NULL, PAYYMO_NO_TENANT, "The token is longer than 8192 bytes.");
	token = text_to_cstring(arg);

	/* Compact form: header.payload.signature */
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (dot2 + 1 - token)) != NULL)
		jwt_refused(NULL, PAYYMO_NO_TENANT, "The token is not a compact JWS (three base64url parts).");
	header_json = b64url_decode(token, dot1 - token, &header_len);
	payload_json = b64url_decode(dot1 + 1, dot2 - dot1 - 1, &payload_len);
	sig = b64url_decode(dot2 + 1, len - (dot2 + 1 - token), &sig_len);
	if (header_json == NULL || payload_json == NULL || sig == NULL)
		jwt_refused(NULL, PAYYMO_NO_TENANT, "A part of the token is not strict base64url.");
	header = parse_claims((char *) header_json, header_len, &ok);
	if (!ok)
		jwt_refused(NULL, PAYYMO_NO_TENANT, "The header is not a JSON object with unique names.");
	claims = parse_claims((char *) payload_json, payload_len, &ok);
	if (!ok)
		jwt_refused(NULL, PAYYMO_NO_TENANT, "The payload is not a JSON object with unique names.");

	/* Header: what to verify with. */
	alg_name = string_claim(header, "alg");
	kid = string_claim(header, "kid");
	if (alg_name == NULL || !alg_from_name(alg_name, &alg))
		jwt_refused(kid, PAYYMO_NO_TENANT, "The algorithm is missing, \"none\" or not supported.");
	if (find_claim(header, "crit") != NULL)
		jwt_refused(kid, PAYYMO_NO_TENANT, "The header has \"crit\" extensions, which payymo does not support.");
	if (kid == NULL)
		jwt_refused(NULL, PAYYMO_NO_TENANT, "The header has no \"kid\".");
	issuer = string_claim(claims, "iss");
	if (issuer == NULL)
		jwt_refused(kid, PAYYMO_NO_TENANT, "The token has no \"iss\".");

	if (!lookup_issuer_key(issuer, kid, &ik))
		jwt_refused(kid, PAYYMO_NO_TENANT, "The issuer or its key id is not registered.");
	if (alg != ik.alg)
		jwt_refused(kid, PAYYMO_NO_TENANT, "The algorithm is not the issuer's.");
	if (!signature_verifies(alg, (unsigned char *) VARDATA_ANY(ik.key), VARSIZE_ANY_EXHDR(ik.key),
							sig, sig_len, token, dot2 - token))
		jwt_refused(kid, PAYYMO_NO_TENANT, "The signature does not verify.");

	/* Claims, now that they are the issuer's. */
	now = (double) (GetCurrentTimestamp() - SetEpochTimestamp()) / USECS_PER_SEC;
	if (!time_claim(claims, "exp", &exp, &present))
		jwt_refused(kid, PAYYMO_NO_TENANT, "The token has no numeric \"exp\".");
	if (now >= exp + ik.leeway_secs)
		jwt_refused(kid, PAYYMO_NO_TENANT, "The token has expired.");
	if (!time_claim(claims, "nbf", &nbf, &present) && present)
		jwt_refused(kid, PAYYMO_NO_TENANT, "The \"nbf\" claim is not a number.");
	if (present && now < nbf - ik.leeway_secs)
		jwt_refused(kid, PAYYMO_NO_TENANT, "The token is not valid yet.");
	if (!audience_matches(claims, ik.audience))
		jwt_refused(kid, PAYYMO_NO_TENANT, "The audience is not the issuer's registered audience.");
	tenant = tenant_from_claim(claims, ik.tenant_claim);
	if (tenant == PAYYMO_NO_TENANT || !payymo_read_tenant(tenant, &tenant_row) || !tenant_row.active)
		jwt_refused(kid, PAYYMO_NO_TENANT, "The tenant claim names no active tenant.");
	if (ik.user_claim != NULL)
	{
		const char *subject = string_claim(claims, ik.user_claim);

		if (subject != NULL)
			user = lookup_subject(tenant, subject, &is_admin);
		if (user == PAYYMO_NO_USER)
			jwt_refused(kid, tenant, "The user claim names no active user of the tenant.");
	}

	payymo_credential_end(&call, "payymo.set_tenant_jwt()", tenant, user, is_admin,
						  tenant_row.rate_limit);
	PG_RETURN_INT64(tenant);
}
