/*-------------------------------------------------------------------------
 *
 * users.c
 *	  Users inside tenants: Argon2id passwords, payymo.login() and
 *	  payymo.logout(), and payymo.set_session(), which sets the tenant and
 *	  the user as the context once a session token is verified.
 *
 * Passwords are stored as libsodium crypto_pwhash_str() strings (Argon2id,
 * with the parameters in the string), with the cost set by
 * payymo.password_opslimit and payymo.password_memlimit; a login whose
 * stored hash used other parameters rehashes the password
 * (crypto_pwhash_str_needs_rehash).
 *
 * login() hashes the presented password once whatever happens: against the
 * user's hash, or, for an unknown email, a user without a password or a
 * disabled user, against a dummy hash of the same parameters, so that the
 * result (one 28000 error) and the time taken are the same.  Failures are
 * throttled (throttle.c) per account and client, per account, and per
 * client, before any hashing; a success forgets the account's failures.
 *
 * Session tokens have the API key's shape with the prefix "pys_" (see
 * keyformat.h): a public session id and a 256-bit secret, of which only
 * the BLAKE2b-256 hash is stored.  set_session() verifies them as
 * set_tenant() verifies keys -- primary-key index reads with the latest
 * snapshot, the hash compared before anything else, one error for every
 * failure -- and checks the absolute expiry, the idle timeout (last use is
 * recorded at most once a minute, as for keys), the user's status and the
 * tenant's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "keyformat.h"
#include "payymo.h"

#define PASSWORD_MIN_BYTES	8
#define PASSWORD_MAX_BYTES	1024
#define TOUCH_GRANULARITY_SECS 60

/* Failed-login buckets: failures allowed at once, seconds to earn one. */
#define THROTTLE_ACCOUNT_CLIENT_CAPACITY 5
#define THROTTLE_ACCOUNT_CAPACITY	20
#define THROTTLE_ACCOUNT_REFILL_SECS 30
#define THROTTLE_CLIENT_CAPACITY	100
#define THROTTLE_CLIENT_REFILL_SECS 2

PG_FUNCTION_INFO_V1(payymo_hash_password);
PG_FUNCTION_INFO_V1(payymo_login);
PG_FUNCTION_INFO_V1(payymo_logout);
PG_FUNCTION_INFO_V1(payymo_set_session);

/* Columns by position, checked by name once per backend (as in apikey.c). */
enum
{
	SESSION_ID = 1,
	SESSION_USER_ID = 3,
	SESSION_SECRET_HASH = 4,
	SESSION_EXPIRES_AT = 6,
	SESSION_IDLE_TIMEOUT = 7,
	SESSION_LAST_SEEN_AT = 8,
	SESSION_REVOKED_AT = 9,
};
enum
{
	USERS_ID = 1,
	USERS_TENANT_ID = 2,
	USERS_ROLE = 4,
	USERS_STATUS = 5,
};

/* Settings */
static int	password_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
static int	password_memlimit_kb = crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024;
static int	session_lifetime_secs = 12 * 60 * 60;
static int	session_idle_secs = 30 * 60;

/* A hash of a random password with the current parameters, for login(). */
static char dummy_hash[crypto_pwhash_STRBYTES];
static int	dummy_opslimit = 0;
static int	dummy_memlimit_kb = 0;

static SPIPlanPtr lookup_plan = NULL;
static SPIPlanPtr touch_plan = NULL;

void
payymo_users_init(void)
{
	DefineCustomIntVariable("payymo.password_opslimit",
							"Argon2id passes for new password hashes.",
							"Logins rehash passwords stored with other parameters.",
							&password_opslimit,
							crypto_pwhash_OPSLIMIT_INTERACTIVE, 1, 16,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("payymo.password_memlimit",
							"Argon2id memory for new password hashes.",
							"Logins rehash passwords stored with other parameters.",
							&password_memlimit_kb,
							crypto_pwhash_MEMLIMIT_INTERACTIVE / 1024, 8, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("payymo.session_lifetime",
							"How long a session token lasts at most.",
							NULL,
							&session_lifetime_secs,
							12 * 60 * 60, 60, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("payymo.session_idle_timeout",
							"How long a session token lasts unused.",
							"Use is recorded at most once a minute, so a token may last up to a minute longer.",
							&session_idle_secs,
							30 * 60, 60, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
}

static size_t
memlimit_bytes(void)
{
	return (size_t) password_memlimit_kb * 1024;
}

/* The password argument, or NULL when it is not a possible password. */
static char *
password_arg(FunctionCallInfo fcinfo, int argno, size_t *len)
{
	text	   *arg;
	char	   *password;

	if (PG_ARGISNULL(argno))
		return NULL;
	arg = PG_GETARG_TEXT_PP(argno);
	*len = VARSIZE_ANY_EXHDR(arg);
	if (*len < PASSWORD_MIN_BYTES || *len > PASSWORD_MAX_BYTES)
	{
		payymo_wipe_arg_copy(fcinfo, argno, arg);
		*len = 0;
		return NULL;
	}
	password = palloc(*len + 1);
	memcpy(password, VARDATA_ANY(arg), *len);
	password[*len] = '\0';
	payymo_wipe_arg_copy(fcinfo, argno, arg);
	return password;
}

static void
wipe_password(char *password, size_t len)
{
	if (password)
	{
		sodium_memzero(password, len);
		pfree(password);
	}
}

static void
hash_password(const char *password, size_t len, char out[crypto_pwhash_STRBYTES])
{
	if (crypto_pwhash_str(out, password, len, password_opslimit, memlimit_bytes()) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not hash the password"),
				 errdetail("Argon2id needs %d kB (payymo.password_memlimit).",
						   password_memlimit_kb)));
}

/*
 * payymo._hash_password(password text) RETURNS text
 */
Datum
payymo_hash_password(PG_FUNCTION_ARGS)
{
	size_t		len = 0;
	char	   *password = password_arg(fcinfo, 0, &len);
	char		hash[crypto_pwhash_STRBYTES];

	if (password == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a password must be %d to %d bytes long",
						PASSWORD_MIN_BYTES, PASSWORD_MAX_BYTES),
				 errhidestmt(true)));
	hash_password(password, len, hash);
	wipe_password(password, len);
	PG_RETURN_TEXT_P(cstring_to_text(hash));
}

static void
ensure_dummy_hash(void)
{
	unsigned char random_password[32];

	if (dummy_opslimit == password_opslimit && dummy_memlimit_kb == password_memlimit_kb)
		return;
	randombytes_buf(random_password, sizeof(random_password));
	hash_password((const char *) random_password, sizeof(random_password), dummy_hash);
	sodium_memzero(random_password, sizeof(random_password));
	dummy_opslimit = password_opslimit;
	dummy_memlimit_kb = password_memlimit_kb;
}

/* What login() reads of the user: SPI, as the (SECURITY DEFINER) owner. */
typedef struct LoginUser
{
	bool		found;
	int64		user_id;
	PayymoTenantId tenant;
	char	   *hash;			/* NULL: signs in only through an IdP */
	bool		usable;			/* user and tenant active */
} LoginUser;

static void
lookup_user(text *tenant, text *email, LoginUser *user)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {PointerGetDatum(tenant), PointerGetDatum(email)};
	int			ret;

	if (lookup_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare("SELECT user_id, tenant_id, password_hash, usable"
									   " FROM payymo._login_lookup($1, $2)",
									   2, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		lookup_plan = plan;
	}
	ret = SPI_execute_plan(lookup_plan, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	memset(user, 0, sizeof(*user));
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		hash;

		user->found = true;
		user->user_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		user->tenant = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		hash = SPI_getbinval(tup, desc, 3, &isnull);
		if (!isnull)
			user->hash = text_to_cstring(DatumGetTextPP(hash));
		user->usable = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	}
}

static char *
lowered_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *s = PG_ARGISNULL(argno) ? pstrdup("") : text_to_cstring(PG_GETARG_TEXT_PP(argno));
	char	   *p;

	for (p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	return s;
}

PAYYMO_NORETURN static void
login_failed(PayymoTenantId tenant)
{
	payymo_security_event(PAYYMO_EVENT_BAD_LOGIN, tenant, NULL);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("invalid login"),
			 errhidestmt(true),
			 errhidecontext(true)));
}

/*
 * Store a new session of the user and write its token into token (KEY_LEN + 1
 * bytes of the caller's).  Runs inside SPI: anything palloc'd here is freed by
 * SPI_finish(), so the token text is built by the caller afterwards.
 */
static void
start_session(int64 user_id, PayymoTenantId tenant, char *token)
{
	unsigned char hash[KEY_HASH_BYTES];
	bytea	   *hash_datum = palloc(VARHDRSZ + KEY_HASH_BYTES);
	Oid			argtypes[6] = {TEXTOID, INT8OID, BYTEAOID, INT4OID, INT4OID, INT8OID};
	Datum		values[6];
	int			ret;

	payymo_token_generate(SESSION_PREFIX, token, hash);
	SET_VARSIZE(hash_datum, VARHDRSZ + KEY_HASH_BYTES);
	memcpy(VARDATA(hash_datum), hash, KEY_HASH_BYTES);
	values[0] = PointerGetDatum(cstring_to_text_with_len(token + KEY_ID_OFFSET, KEY_ID_CHARS));
	values[1] = Int64GetDatum(user_id);
	values[2] = PointerGetDatum(hash_datum);
	values[3] = Int32GetDatum(session_lifetime_secs);
	values[4] = Int32GetDatum(session_idle_secs);
	values[5] = Int64GetDatum(tenant);
	ret = SPI_execute_with_args("INSERT INTO payymo.session_store"
								" (session_id, tenant_id, user_id, secret_hash, expires_at,"
								"  idle_timeout_secs)"
								" VALUES ($1, $6, $2, $3, pg_catalog.now() OPERATOR(pg_catalog.+)"
								"         pg_catalog.make_interval(secs => $4), $5)",
								6, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	sodium_memzero(hash, sizeof(hash));
}

static void
rehash_if_needed(const LoginUser *user, const char *password, size_t len)
{
	char		hash[crypto_pwhash_STRBYTES];
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	int			ret;

	if (crypto_pwhash_str_needs_rehash(user->hash, password_opslimit, memlimit_bytes()) == 0)
		return;
	hash_password(password, len, hash);
	values[0] = Int64GetDatum(user->user_id);
	values[1] = PointerGetDatum(cstring_to_text(hash));
	ret = SPI_execute_with_args("UPDATE payymo.users SET password_hash = $2,"
								" updated_at = pg_catalog.now()"
								" WHERE id OPERATOR(pg_catalog.=) $1",
								2, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
}

/*
 * payymo.login(tenant text, email text, password text, client text)
 * RETURNS text
 *
 * SECURITY DEFINER: it reads password hashes, which clients may not.
 */
Datum
payymo_login(PG_FUNCTION_ARGS)
{
	char	   *tenant_name = lowered_arg(fcinfo, 0);
	char	   *email = lowered_arg(fcinfo, 1);
	const char *client = PG_ARGISNULL(3) ? payymo_client_address() :
		text_to_cstring(PG_GETARG_TEXT_PP(3));
	PayymoThrottle buckets[3];
	size_t		len = 0;
	char	   *password;
	LoginUser	user;
	bool		verified;
	int			wait;
	char		token[KEY_LEN + 1];
	text	   *result;
	ErrorContextCallback errcallback;

	payymo_hide_statement_push(&errcallback);
	payymo_throttle_require();
	{
		const char *const account_client[] = {tenant_name, email, client, NULL};
		const char *const account[] = {tenant_name, email, NULL};
		const char *const client_only[] = {client, NULL};

		/* The account's buckets first: a success forgets those two. */
		payymo_throttle_key(&buckets[0], "account+client", account_client,
							THROTTLE_ACCOUNT_CLIENT_CAPACITY, THROTTLE_ACCOUNT_REFILL_SECS);
		payymo_throttle_key(&buckets[1], "account", account,
							THROTTLE_ACCOUNT_CAPACITY, THROTTLE_ACCOUNT_REFILL_SECS);
		payymo_throttle_key(&buckets[2], "client", client_only,
							THROTTLE_CLIENT_CAPACITY, THROTTLE_CLIENT_REFILL_SECS);
	}
	wait = payymo_throttle_wait(buckets, 3);
	if (wait > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many failed logins"),
				 errdetail("Try again in %d seconds.", wait),
				 errhidestmt(true)));

	password = password_arg(fcinfo, 2, &len);
	ensure_dummy_hash();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	lookup_user(cstring_to_text(tenant_name), cstring_to_text(email), &user);

	/* One Argon2id verification whatever was found. */
	verified = crypto_pwhash_str_verify(user.hash ? user.hash : dummy_hash,
										password ? password : "", password ? len : 0) == 0 &&
		password != NULL && user.hash != NULL;

	if (!verified || !user.usable)
	{
		wipe_password(password, len);
		payymo_throttle_fail(buckets, 3);
		login_failed(verified ? user.tenant : PAYYMO_NO_TENANT);
	}

	payymo_throttle_forget(buckets, 2);
	rehash_if_needed(&user, password, len);
	wipe_password(password, len);
	start_session(user.user_id, user.tenant, token);
	SPI_finish();
	result = cstring_to_text_with_len(token, KEY_LEN);
	sodium_memzero(token, sizeof(token));
	error_context_stack = errcallback.previous;
	PG_RETURN_TEXT_P(result);
}

/* What verification reads of a session and its user. */
typedef struct SessionCheck
{
	char		session_id[KEY_ID_CHARS + 1];
	bool		matched;		/* the secret matched a stored session */
	bool		usable;			/* ... and it may be used */
	bool		stale;			/* last_seen_at is due for an update */
	PayymoTenantId tenant;
	PayymoUserId user;
	bool		is_admin;
	int32		rate_limit;
	Oid			store_owner;
} SessionCheck;

static Relation
open_checked(const char *name, Oid *pkey, bool *checked, const AttrNumber *attnums,
			 const char *const *names, int n)
{
	Relation	rel = payymo_open_table(name, pkey);
	int			i;

	if (!*checked)
	{
		for (i = 0; i < n; i++)
			payymo_check_column(rel, attnums[i], names[i]);
		*checked = true;
	}
	return rel;
}

static bool
text_equals(Datum d, const char *s)
{
	text	   *t = DatumGetTextPP(d);

	return VARSIZE_ANY_EXHDR(t) == strlen(s) && memcmp(VARDATA_ANY(t), s, strlen(s)) == 0;
}

/* The user's row: its tenant, whether it is active, and its role. */
static bool
read_user(PayymoUserId user, Snapshot snapshot, PayymoTenantId *tenant, bool *is_admin)
{
	static bool checked = false;
	static const AttrNumber attnums[] = {USERS_ID, USERS_TENANT_ID, USERS_ROLE, USERS_STATUS};
	static const char *const names[] = {"id", "tenant_id", "role", "status"};
	Oid			pkey;
	Relation	rel = open_checked("users", &pkey, &checked, attnums, names, 4);
	SysScanDesc scan;
	HeapTuple	tup;
	bool		active = false;

	tup = payymo_fetch_by_pkey(rel, pkey, BTEqualStrategyNumber, F_INT8EQ, InvalidOid,
							   Int64GetDatum(user), snapshot, &scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;

		*tenant = DatumGetInt64(heap_getattr(tup, USERS_TENANT_ID, desc, &isnull));
		*is_admin = text_equals(heap_getattr(tup, USERS_ROLE, desc, &isnull), "admin");
		active = text_equals(heap_getattr(tup, USERS_STATUS, desc, &isnull), "active");
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return active;
}

/*
 * Verify a session token (text of any length).  check->matched says whether
 * its secret matched a stored session, check->usable whether it may be used
 * now: not revoked, neither expired nor idle too long, its user and tenant
 * active.
 */
static void
verify_session(text *arg, FunctionCallInfo fcinfo, int argno, SessionCheck *check)
{
	static bool checked = false;
	static const AttrNumber attnums[] = {SESSION_ID, SESSION_USER_ID, SESSION_SECRET_HASH,
		SESSION_EXPIRES_AT, SESSION_IDLE_TIMEOUT, SESSION_LAST_SEEN_AT, SESSION_REVOKED_AT};
	static const char *const names[] = {"session_id", "user_id", "secret_hash",
		"expires_at", "idle_timeout_secs", "last_seen_at", "revoked_at"};
	char		token[KEY_LEN + 1];
	unsigned char presented[KEY_HASH_BYTES];
	unsigned char stored[KEY_HASH_BYTES] = {0};
	TimestampTz now = GetCurrentTimestamp();
	bool		well_formed;
	bool		id_matches = false;
	bool		usable = false;
	PayymoUserId user = PAYYMO_NO_USER;
	Oid			pkey;
	Relation	store;
	Snapshot	snapshot;
	SysScanDesc scan;
	HeapTuple	tup;
	PayymoTenantRow tenant_row = {0};

	memset(check, 0, sizeof(*check));
	well_formed = arg != NULL && VARSIZE_ANY_EXHDR(arg) == KEY_LEN;
	if (well_formed)
	{
		memcpy(token, VARDATA_ANY(arg), KEY_LEN);
		token[KEY_LEN] = '\0';
	}
	if (arg != NULL)
		payymo_wipe_arg_copy(fcinfo, argno, arg);
	if (!well_formed || !payymo_token_well_formed(token, KEY_LEN, SESSION_PREFIX))
	{
		if (well_formed)
			sodium_memzero(token, sizeof(token));
		return;
	}
	memcpy(check->session_id, token + KEY_ID_OFFSET, KEY_ID_CHARS);
	payymo_apikey_hash(token, presented);
	sodium_memzero(token, sizeof(token));

	store = open_checked("session_store", &pkey, &checked, attnums, names, 7);
	check->store_owner = store->rd_rel->relowner;
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	/* As in apikey.c: the next row for an unknown id, so the work is the same. */
	tup = payymo_fetch_by_pkey(store, pkey, BTGreaterEqualStrategyNumber, F_TEXT_GE,
							   DEFAULT_COLLATION_OID,
							   PointerGetDatum(cstring_to_text(check->session_id)),
							   snapshot, &scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(store);
		bool		isnull;
		bytea	   *hash = DatumGetByteaPP(heap_getattr(tup, SESSION_SECRET_HASH, desc, &isnull));
		TimestampTz last_seen;
		int32		idle;

		id_matches = text_equals(heap_getattr(tup, SESSION_ID, desc, &isnull), check->session_id);
		if (VARSIZE_ANY_EXHDR(hash) == KEY_HASH_BYTES)
			memcpy(stored, VARDATA_ANY(hash), KEY_HASH_BYTES);
		user = DatumGetInt64(heap_getattr(tup, SESSION_USER_ID, desc, &isnull));
		(void) heap_getattr(tup, SESSION_REVOKED_AT, desc, &isnull);
		usable = isnull;
		usable &= DatumGetTimestampTz(heap_getattr(tup, SESSION_EXPIRES_AT, desc, &isnull)) > now;
		last_seen = DatumGetTimestampTz(heap_getattr(tup, SESSION_LAST_SEEN_AT, desc, &isnull));
		idle = DatumGetInt32(heap_getattr(tup, SESSION_IDLE_TIMEOUT, desc, &isnull));
		usable &= last_seen + (int64) idle * USECS_PER_SEC > now;
		check->stale = last_seen < now - TOUCH_GRANULARITY_SECS * USECS_PER_SEC;
	}
	systable_endscan(scan);
	table_close(store, AccessShareLock);
	if (!id_matches)
		memset(stored, 0, sizeof(stored));

	/* The secret decides first; an unknown id compares with zeros. */
	check->matched = sodium_memcmp(presented, stored, KEY_HASH_BYTES) == 0 && id_matches;
	sodium_memzero(presented, sizeof(presented));
	sodium_memzero(stored, sizeof(stored));
	if (check->matched)
	{
		check->user = user;
		usable &= read_user(user, snapshot, &check->tenant, &check->is_admin);
		usable &= payymo_read_tenant(check->tenant, &tenant_row) && tenant_row.active;
		check->rate_limit = tenant_row.rate_limit;
		check->usable = usable;
	}
	UnregisterSnapshot(snapshot);
}

PAYYMO_NORETURN static void
session_failed(const SessionCheck *check)
{
	payymo_security_event(PAYYMO_EVENT_BAD_SESSION,
						  check->matched ? check->tenant : PAYYMO_NO_TENANT,
						  check->session_id[0] ? check->session_id : NULL);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("invalid session token"),
			 errhidestmt(true),
			 errhidecontext(true)));
}

/*
 * payymo.set_session(token text, is_local boolean) RETURNS bigint
 */
Datum
payymo_set_session(PG_FUNCTION_ARGS)
{
	PayymoCredentialCall call;
	SessionCheck check;

	payymo_credential_begin(fcinfo, &call);
	verify_session(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), fcinfo, 0, &check);
	if (!check.usable)
		session_failed(&check);

	if (check.stale)
		payymo_touch_row(check.store_owner, &touch_plan,
						 "UPDATE payymo.session_store SET last_seen_at = pg_catalog.now()"
						 " WHERE session_id OPERATOR(pg_catalog.=) ("
						 "   SELECT session_id FROM payymo.session_store"
						 "    WHERE session_id OPERATOR(pg_catalog.=) $1"
						 "    FOR UPDATE SKIP LOCKED)",
						 PointerGetDatum(cstring_to_text(check.session_id)));
	payymo_credential_end(&call, "payymo.set_session()", check.tenant, check.user,
						  check.is_admin, check.rate_limit);
	PG_RETURN_INT64(check.tenant);
}

/*
 * payymo.logout(token text) RETURNS boolean
 *
 * Revokes the session whose token this is; false when the token is not a
 * session's or was revoked already.  SECURITY DEFINER, to write the store.
 */
Datum
payymo_logout(PG_FUNCTION_ARGS)
{
	SessionCheck check;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			ret;
	bool		revoked;
	ErrorContextCallback errcallback;

	payymo_hide_statement_push(&errcallback);
	verify_session(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), fcinfo, 0, &check);
	if (!check.matched)
	{
		error_context_stack = errcallback.previous;
		PG_RETURN_BOOL(false);
	}
	values[0] = PointerGetDatum(cstring_to_text(check.session_id));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args("UPDATE payymo.session_store SET revoked_at = pg_catalog.now()"
								" WHERE session_id OPERATOR(pg_catalog.=) $1"
								" AND revoked_at IS NULL",
								1, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	revoked = SPI_processed > 0;
	SPI_finish();
	error_context_stack = errcallback.previous;
	PG_RETURN_BOOL(revoked);
}
