/*-------------------------------------------------------------------------
 *
 * apikey.c
 *	  Setting the tenant context: payymo.set_tenant() with an API key,
 *	  payymo.assume_tenant() for trusted jobs, and issuing API keys; and
 *	  payymo._note_export(), which charges a tenant's data export.
 *
 * Format (81 characters, all lowercase RFC 4648 base32 after the prefix):
 *
 *	  pyk_<key id: 16>_<secret: 52><checksum: 8>
 *
 * The key id (80 random bits) is public and locates the key's row.  The
 * secret carries 256 bits from libsodium's CSPRNG.  The checksum is the
 * first 40 bits of a BLAKE2b hash of everything before it, so mistyped or
 * truncated keys are rejected before any table is read, and secret scanners
 * can recognise real keys.  Only BLAKE2b-256 of (key id, secret) is stored;
 * a fast hash is enough because the secret has full entropy, and it keeps
 * set_tenant() at microseconds rather than Argon2's ~100 ms.
 *
 * Verification reads the key's row through the primary-key index and
 * compares the hashes in constant time before anything else, so an unknown
 * key id and a known one with a wrong secret do the same work; only a key
 * whose secret matched leads to the tenant's row (status, rate limit), and
 * only such a key's refusal (revoked, expired, suspended tenant) is
 * attributed to its tenant.  Every failure -- malformed, unknown, wrong
 * secret, revoked, expired, suspended -- raises the same 28000 error and
 * hides the statement (it may hold the key).
 *
 * Both set_tenant() and assume_tenant() start with payymo_context_begin(),
 * so any failure at all, not only a bad key, clears the context (context.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "keyformat.h"
#include "payymo.h"

#define KEY_HINT_CHARS		4

/* payymo.key_use_interval: seconds between two writes of last_used_at. */
static int	key_use_interval = 3600;

PG_FUNCTION_INFO_V1(payymo_set_tenant);
PG_FUNCTION_INFO_V1(payymo_assume_tenant);
PG_FUNCTION_INFO_V1(payymo_act_for_tenant);
PG_FUNCTION_INFO_V1(payymo_issue_api_key);
PG_FUNCTION_INFO_V1(payymo_note_export);

static SPIPlanPtr touch_plan = NULL;

/*
 * The columns read here, by position in the tables the extension script
 * creates (upgrade scripts may only append columns).  Checked by name once
 * per backend, so a mismatch is an error, not a misread.
 */
enum
{
	STORE_KEY_ID = 1,
	STORE_TENANT_ID = 2,
	STORE_SECRET_HASH = 3,
	STORE_EXPIRES_AT = 7,
	STORE_REVOKED_AT = 8,
	STORE_LAST_USED_AT = 9,
};
enum
{
	TENANTS_ID = 1,
	TENANTS_STATUS = 4,
	TENANTS_RATE_LIMIT = 5,
};

void
payymo_check_column(Relation rel, AttrNumber attnum, const char *name)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (attnum > desc->natts ||
		strcmp(NameStr(TupleDescAttr(desc, attnum - 1)->attname), name) != 0)
		elog(ERROR, "payymo: column %d of \"%s\" is not \"%s\"",
			 attnum, RelationGetRelationName(rel), name);
}

/* Open a payymo table and the index of its primary key. */
Relation
payymo_open_table(const char *name, Oid *pkey)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid("payymo", false));
	Relation	rel;

	if (!OidIsValid(relid))
		elog(ERROR, "payymo: table payymo.%s is missing", name);
	rel = table_open(relid, AccessShareLock);
#if PG_VERSION_NUM >= 180000
	*pkey = RelationGetPrimaryKeyIndex(rel, false);
#else
	*pkey = RelationGetPrimaryKeyIndex(rel);
#endif
	return rel;
}

static Relation
open_key_store(Oid *pkey)
{
	static bool checked = false;
	Relation	rel = payymo_open_table("api_key_store", pkey);

	if (!checked)
	{
		payymo_check_column(rel, STORE_KEY_ID, "key_id");
		payymo_check_column(rel, STORE_TENANT_ID, "tenant_id");
		payymo_check_column(rel, STORE_SECRET_HASH, "secret_hash");
		payymo_check_column(rel, STORE_EXPIRES_AT, "expires_at");
		payymo_check_column(rel, STORE_REVOKED_AT, "revoked_at");
		payymo_check_column(rel, STORE_LAST_USED_AT, "last_used_at");
		checked = true;
	}
	return rel;
}

static Relation
open_tenants(Oid *pkey)
{
	static bool checked = false;
	Relation	rel = payymo_open_table("tenants", pkey);

	if (!checked)
	{
		payymo_check_column(rel, TENANTS_ID, "id");
		payymo_check_column(rel, TENANTS_STATUS, "status");
		payymo_check_column(rel, TENANTS_RATE_LIMIT, "rate_limit_per_second");
		checked = true;
	}
	return rel;
}

/*
 * The first tuple, in primary-key order, whose key compares with value as
 * strategy says (BTEqualStrategyNumber with procedure eqproc, ...), or NULL.
 */
HeapTuple
payymo_fetch_by_pkey(Relation rel, Oid pkey, StrategyNumber strategy, RegProcedure proc,
			  Oid collation, Datum value, Snapshot snapshot, SysScanDesc *scan)
{
	ScanKeyData skey;

	ScanKeyEntryInitialize(&skey, 0, 1, strategy, InvalidOid, collation, proc, value);
	*scan = systable_beginscan(rel, pkey, true, snapshot, 1, &skey);
	return systable_getnext(*scan);
}

/*
 * Read a tenant's row, or return false when it does not exist.  Reads with
 * the latest snapshot, so that a suspension takes effect for the next call
 * even in a REPEATABLE READ transaction that started before it.  Row level
 * security on payymo.tenants does not apply to this read.
 */
bool
payymo_read_tenant(PayymoTenantId tenant, PayymoTenantRow *row)
{
	Oid			pkey;
	Relation	rel = open_tenants(&pkey);
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found;

	tup = payymo_fetch_by_pkey(rel, pkey, BTEqualStrategyNumber, F_INT8EQ, InvalidOid,
						Int64GetDatum(tenant), snapshot, &scan);
	found = HeapTupleIsValid(tup);
	if (found)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		text	   *status = DatumGetTextPP(heap_getattr(tup, TENANTS_STATUS, desc, &isnull));
		Datum		limit = heap_getattr(tup, TENANTS_RATE_LIMIT, desc, &isnull);

		row->active = VARSIZE_ANY_EXHDR(status) == strlen("active") &&
			memcmp(VARDATA_ANY(status), "active", strlen("active")) == 0;
		row->rate_limit = isnull ? 0 : DatumGetInt32(limit);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Record that a key or session was used, at most once a minute (callers
 * check), by running update -- with its one parameter id -- as the table's
 * owner (the client may not write it); update skips a row someone else has
 * locked.  Never where the write could fail a valid call: in a read-only
 * transaction, on a standby, or under REPEATABLE READ or SERIALIZABLE,
 * where a row another session touched after the snapshot would raise a
 * serialization failure.  Whether a row was written.
 */
bool
payymo_touch_row(Oid owner, SPIPlanPtr *plan, const char *update, Datum id)
{
	Oid			argtypes[1] = {TEXTOID};
	Oid			save_userid;
	int			save_sec_context;
	int			ret;
	bool		written;

	if (XactReadOnly || RecoveryInProgress() || IsolationUsesXactSnapshot())
		return false;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (*plan == NULL)
	{
		SPIPlanPtr	new_plan = SPI_prepare(update, 1, argtypes);

		if (new_plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(new_plan);
		*plan = new_plan;
	}
	ret = SPI_execute_plan(*plan, &id, NULL, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
	written = SPI_processed > 0;
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return written;
}

/* What verification reads of a key's row. */
typedef struct KeyRow
{
	bool		key_id_matches; /* the row is the presented key id's */
	unsigned char hash[KEY_HASH_BYTES];
	bool		revoked;
	PayymoCachedKey key;		/* tenant, expiry, last use */
} KeyRow;

static void
read_key_row(HeapTuple tup, TupleDesc desc, const char *key_id, KeyRow *row)
{
	bool		isnull;
	text	   *id = DatumGetTextPP(heap_getattr(tup, STORE_KEY_ID, desc, &isnull));
	bytea	   *hash;
	Datum		value;

	row->key_id_matches = VARSIZE_ANY_EXHDR(id) == KEY_ID_CHARS &&
		memcmp(VARDATA_ANY(id), key_id, KEY_ID_CHARS) == 0;
	row->key.tenant = DatumGetInt64(heap_getattr(tup, STORE_TENANT_ID, desc, &isnull));
	hash = DatumGetByteaPP(heap_getattr(tup, STORE_SECRET_HASH, desc, &isnull));
	if (VARSIZE_ANY_EXHDR(hash) == KEY_HASH_BYTES)
		memcpy(row->hash, VARDATA_ANY(hash), KEY_HASH_BYTES);
	(void) heap_getattr(tup, STORE_REVOKED_AT, desc, &isnull);
	row->revoked = !isnull;
	value = heap_getattr(tup, STORE_EXPIRES_AT, desc, &isnull);
	row->key.expires_at = isnull ? DT_NOEND : DatumGetTimestampTz(value);
	value = heap_getattr(tup, STORE_LAST_USED_AT, desc, &isnull);
	row->key.last_used_at = isnull ? DT_NOBEGIN : DatumGetTimestampTz(value);
}

/* Whether a key's last_used_at is due (never with an interval of 0). */
static bool
key_use_due(TimestampTz last_used_at, TimestampTz now)
{
	return key_use_interval > 0 &&
		last_used_at < now - (TimestampTz) key_use_interval * USECS_PER_SEC;
}

/* Record the use of a key whose last_used_at is due. */
static void
touch_if_due(const char *key, Oid store_owner, TimestampTz last_used_at, TimestampTz now)
{
	if (!key_use_due(last_used_at, now))
		return;
	if (payymo_touch_row(store_owner, &touch_plan,
						 "UPDATE payymo.api_key_store SET last_used_at = pg_catalog.now()"
						 " WHERE key_id OPERATOR(pg_catalog.=) ("
						 "   SELECT key_id FROM payymo.api_key_store"
						 "    WHERE key_id OPERATOR(pg_catalog.=) $1"
						 "    FOR UPDATE SKIP LOCKED)",
						 PointerGetDatum(cstring_to_text_with_len(key + KEY_ID_OFFSET,
																  KEY_ID_CHARS))))
		payymo_keycache_touched(key, now);
}

/*
 * Verify a well-formed key.  Returns its tenant, or PAYYMO_NO_TENANT when
 * the key must be refused; then *owner is the key's tenant if the secret
 * matched (a revoked or expired key, a suspended tenant), and
 * PAYYMO_NO_TENANT otherwise.  *rate_limit is the tenant's limit.
 *
 * It reads with the latest snapshot and the current time, so that a
 * revocation, suspension or expiry takes effect for the next call even in a
 * REPEATABLE READ transaction that started before it.  This is the hot path
 * of every request, so it reads the primary-key indexes directly instead of
 * planning a query through SPI; that also means set_tenant() needs no
 * SECURITY DEFINER to read tables the client may not.  A key verified (by
 * any backend) since the last change to keys or tenants is not read again
 * (keycache.c).
 */
static PayymoTenantId
verify_key(const char *key, PayymoTenantId *owner, int32 *rate_limit, bool *well_formed)
{
	unsigned char presented[KEY_HASH_BYTES];
	KeyRow		row = {0};
	PayymoTenantId tenant;
	TimestampTz now = GetCurrentTimestamp();
	uint64		generation = payymo_keycache_generation();
	Datum		key_id;
	Oid			pkey;
	Relation	store;
	Snapshot	snapshot;
	SysScanDesc scan;
	HeapTuple	tup;
	PayymoTenantRow tenant_row = {0};

	/*
	 * A key verified before, presented again with the same checksum
	 * characters, needs no checksum computed: the cache compares them.
	 */
	payymo_apikey_hash(key, presented);
	*well_formed = true;
	if (payymo_keycache_lookup(key, presented, now, generation, &row.key))
	{
		sodium_memzero(presented, sizeof(presented));
		*owner = row.key.tenant;
		*rate_limit = row.key.rate_limit;
		if (key_use_due(row.key.last_used_at, now))
		{
			store = open_key_store(&pkey);
			touch_if_due(key, store->rd_rel->relowner, row.key.last_used_at, now);
			table_close(store, AccessShareLock);
		}
		return row.key.tenant;
	}

	if (!payymo_token_checksum_ok(key))
	{
		sodium_memzero(presented, sizeof(presented));
		*well_formed = false;
		return PAYYMO_NO_TENANT;
	}

	/*
	 * The first row whose key id is not below the presented one: the key's
	 * own row, or for an unknown key id the next one, which is read all the
	 * same and then ignored -- one index descent and one row read either
	 * way, so the time taken does not tell whether a key id exists.
	 */
	key_id = PointerGetDatum(cstring_to_text_with_len(key + KEY_ID_OFFSET, KEY_ID_CHARS));
	store = open_key_store(&pkey);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	tup = payymo_fetch_by_pkey(store, pkey, BTGreaterEqualStrategyNumber, F_TEXT_GE,
						DEFAULT_COLLATION_OID, key_id, snapshot, &scan);
	if (HeapTupleIsValid(tup))
		read_key_row(tup, RelationGetDescr(store), key + KEY_ID_OFFSET, &row);
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	if (!row.key_id_matches)
		memset(&row, 0, sizeof(row));

	/* The secret decides first; an unknown key id compares with zeros. */
	tenant = sodium_memcmp(presented, row.hash, KEY_HASH_BYTES) == 0 ?
		row.key.tenant : PAYYMO_NO_TENANT;
	*owner = tenant;

	if (tenant != PAYYMO_NO_TENANT)
	{
		if (!payymo_read_tenant(tenant, &tenant_row))
			tenant_row.active = false;
		*rate_limit = row.key.rate_limit = tenant_row.rate_limit;
		if (row.revoked || row.key.expires_at <= now || !tenant_row.active)
			tenant = PAYYMO_NO_TENANT;
		else
		{
			payymo_keycache_store(key, presented, generation, &row.key,
								  RelationGetRelid(store));
			touch_if_due(key, store->rd_rel->relowner, row.key.last_used_at, now);
		}
	}
	sodium_memzero(presented, sizeof(presented));
	sodium_memzero(row.hash, sizeof(row.hash));

	table_close(store, AccessShareLock);
	return tenant;
}

/*
 * Raise the one authentication error.  The event names the key's tenant
 * only when the secret matched, and the key id when the key was well
 * formed (it is public, and tells an administrator which key was probed).
 */
PAYYMO_NORETURN static void
authentication_failed(PayymoTenantId owner, const char *key_id)
{
	payymo_security_event(PAYYMO_EVENT_BAD_KEY, owner, key_id);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("invalid API key"),
			 errhidestmt(true),
			 errhidecontext(true)));
}

/*
 * Error context callback of the functions that take a credential: whatever
 * error is raised while they run -- ours, SPI's, the rate limiter's, a
 * cancel -- the statement, which may hold the credential, stays out of the
 * server log.
 */
static void
hide_statement(void *arg)
{
	errhidestmt(true);
}

/* Push hide_statement; the caller pops it (error_context_stack = cb->previous). */
void
payymo_hide_statement_push(ErrorContextCallback *cb)
{
	cb->callback = hide_statement;
	cb->arg = NULL;
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

/*
 * A transaction-scoped context set outside a transaction block ends with
 * the statement: warn, as SET LOCAL does.
 */
void
payymo_warn_if_statement_scoped(const char *function, bool is_local)
{
	if (is_local && !IsTransactionBlock())
		ereport(WARNING,
				(errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s outside a transaction block sets the tenant for this statement only", function),
				 errhint("Call it after BEGIN, in the transaction it is meant for, or pass is_local => false for the session.")));
}

void
payymo_require_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/*
 * The start and the successful end of set_tenant(), set_session() and
 * set_tenant_jwt() (credential, is_local): the statement hidden from any
 * error, the attempt begun before anything can fail (so that any failure
 * clears the context), is_local read; then the tenant's rate limit, the
 * held-cursor check, the warning for a statement-scoped context, and the
 * context set.
 */
void
payymo_credential_begin(FunctionCallInfo fcinfo, PayymoCredentialCall *call)
{
	payymo_hide_statement_push(&call->errcallback);
	payymo_context_begin(&call->attempt);
	payymo_require_not_null(fcinfo, 1, "is_local");
	call->is_local = PG_GETARG_BOOL(1);
}

void
payymo_credential_end(PayymoCredentialCall *call, const char *function, PayymoTenantId tenant,
					  PayymoUserId user, bool user_is_admin, int32 rate_limit)
{
	payymo_rate_limit_check(tenant, rate_limit, false);
	payymo_cursors_check_switch(tenant);
	payymo_warn_if_statement_scoped(function, call->is_local);
	payymo_context_set(&call->attempt, tenant, user, user_is_admin, call->is_local);
	error_context_stack = call->errcallback.previous;
}

/*
 * payymo.set_tenant(api_key text, is_local boolean) RETURNS bigint
 */
Datum
payymo_set_tenant(PG_FUNCTION_ARGS)
{
	PayymoCredentialCall call;
	text	   *arg;
	char		key[KEY_LEN + 1];
	char		key_id[KEY_ID_CHARS + 1];
	bool		well_formed;
	PayymoTenantId tenant;
	PayymoTenantId owner = PAYYMO_NO_TENANT;
	int32		rate_limit = 0;

	payymo_credential_begin(fcinfo, &call);
	if (PG_ARGISNULL(0))
		authentication_failed(PAYYMO_NO_TENANT, NULL);

	arg = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(arg) != KEY_LEN)
	{
		payymo_wipe_arg_copy(fcinfo, 0, arg);
		authentication_failed(PAYYMO_NO_TENANT, NULL);
	}
	memcpy(key, VARDATA_ANY(arg), KEY_LEN);
	key[KEY_LEN] = '\0';
	payymo_wipe_arg_copy(fcinfo, 0, arg);

	well_formed = payymo_token_shaped(key, KEY_LEN, KEY_PREFIX);
	memcpy(key_id, key + KEY_ID_OFFSET, KEY_ID_CHARS);
	key_id[KEY_ID_CHARS] = '\0';
	tenant = well_formed ? verify_key(key, &owner, &rate_limit, &well_formed) : PAYYMO_NO_TENANT;
	sodium_memzero(key, sizeof(key));
	if (tenant == PAYYMO_NO_TENANT)
		authentication_failed(owner, well_formed ? key_id : NULL);

	payymo_credential_end(&call, "payymo.set_tenant()", tenant, PAYYMO_NO_USER, false, rate_limit);
	PG_RETURN_INT64(tenant);
}

/*
 * Act for a tenant without its key: for payymo.assume_tenant() (jobs and
 * support tools; not executable by PUBLIC) and payymo._act_for_tenant()
 * (payymo's own SECURITY DEFINER functions, whose context ends with them:
 * no warning for a statement-scoped call).  Every use is logged.
 */
static void
assume_tenant(FunctionCallInfo fcinfo, bool internal)
{
	PayymoContextAttempt attempt;
	PayymoTenantId tenant;
	bool		is_local = true;
	PayymoTenantRow	row;

	payymo_context_begin(&attempt);
	payymo_require_not_null(fcinfo, 0, "tenant_id");
	tenant = PG_GETARG_INT64(0);
	if (!internal)
	{
		payymo_require_not_null(fcinfo, 1, "is_local");
		is_local = PG_GETARG_BOOL(1);
	}

	if (!payymo_read_tenant(tenant, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant " INT64_FORMAT " does not exist", tenant)));

	/* Limited only when payymo.rate_limit_assume is on. */
	payymo_rate_limit_check(tenant, row.rate_limit, true);
	payymo_cursors_check_switch(tenant);
	if (!internal)
		payymo_warn_if_statement_scoped("payymo.assume_tenant()", is_local);
	payymo_context_set(&attempt, tenant, PAYYMO_NO_USER, false, is_local);
	ereport(LOG,
			(errmsg("payymo: role \"%s\" assumed tenant " INT64_FORMAT,
					GetUserNameFromId(GetOuterUserId(), false), tenant),
			 errdetail("Session user \"%s\", scope %s.",
					   GetUserNameFromId(GetSessionUserId(), false),
					   is_local ? "transaction" : "session")));
}

/*
 * payymo.assume_tenant(tenant_id bigint, is_local boolean) RETURNS void
 */
Datum
payymo_assume_tenant(PG_FUNCTION_ARGS)
{
	assume_tenant(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * payymo._act_for_tenant(tenant_id bigint) RETURNS void
 */
Datum
payymo_act_for_tenant(PG_FUNCTION_ARGS)
{
	assume_tenant(fcinfo, true);
	PG_RETURN_VOID();
}

/*
 * payymo.issue_api_key(tenant_id bigint, label text, expires_at timestamptz)
 * RETURNS text
 *
 * Returns the plaintext key once; stores its hash and a short hint.
 */
Datum
payymo_issue_api_key(PG_FUNCTION_ARGS)
{
	unsigned char hash[KEY_HASH_BYTES];
	char		key[KEY_LEN + 1];
	char		hint[KEY_PREFIX_LEN + KEY_ID_CHARS + 4 + KEY_HINT_CHARS + 1];
	Oid			argtypes[6] = {TEXTOID, INT8OID, BYTEAOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	bytea	   *hash_datum;
	text	   *result;
	int			ret;

	payymo_require_not_null(fcinfo, 0, "tenant_id");
	if (!PG_ARGISNULL(2) &&
		PG_GETARG_TIMESTAMPTZ(2) <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expires_at must be in the future")));

	payymo_token_generate(KEY_PREFIX, key, hash);

	/* The hint shows the public id and the last checksum characters only. */
	snprintf(hint, sizeof(hint), "%.*s_...%s", KEY_SEP_OFFSET, key,
			 key + KEY_LEN - KEY_HINT_CHARS);

	hash_datum = (bytea *) palloc(VARHDRSZ + KEY_HASH_BYTES);
	SET_VARSIZE(hash_datum, VARHDRSZ + KEY_HASH_BYTES);
	memcpy(VARDATA(hash_datum), hash, KEY_HASH_BYTES);

	values[0] = PointerGetDatum(cstring_to_text_with_len(key + KEY_ID_OFFSET, KEY_ID_CHARS));
	values[1] = PG_GETARG_DATUM(0);
	values[2] = PointerGetDatum(hash_datum);
	values[3] = PointerGetDatum(cstring_to_text(hint));
	if (PG_ARGISNULL(1))
		nulls[4] = 'n';
	else
		values[4] = PG_GETARG_DATUM(1);
	if (PG_ARGISNULL(2))
		nulls[5] = 'n';
	else
		values[5] = PG_GETARG_DATUM(2);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args("SELECT 1 FROM payymo.tenants"
								" WHERE id OPERATOR(pg_catalog.=) $1",
								1, &argtypes[1], &values[1], NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant " INT64_FORMAT " does not exist", PG_GETARG_INT64(0))));
	ret = SPI_execute_with_args("INSERT INTO payymo.api_key_store"
								" (key_id, tenant_id, secret_hash, hint, label, expires_at)"
								" VALUES ($1, $2, $3, $4, $5, $6)",
								6, argtypes, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	SPI_finish();

	result = cstring_to_text_with_len(key, KEY_LEN);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hash, sizeof(hash));
	PG_RETURN_TEXT_P(result);
}

/*
 * payymo._note_export() RETURNS bigint
 *
 * For payymo.export_my_data(): refuses without a tenant context, charges
 * the export to the tenant's rate limit as a set_tenant() call is charged,
 * logs a data_export security event, and returns the tenant.
 */
Datum
payymo_note_export(PG_FUNCTION_ARGS)
{
	PayymoTenantId tenant = payymo_require_tenant();
	PayymoTenantRow	row;

	if (!payymo_read_tenant(tenant, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant " INT64_FORMAT " does not exist", tenant)));
	payymo_rate_limit_check(tenant, row.rate_limit, false);
	payymo_security_event(PAYYMO_EVENT_DATA_EXPORT, tenant, NULL);
	PG_RETURN_INT64(tenant);
}

void
payymo_apikey_init(void)
{
	DefineCustomIntVariable("payymo.key_use_interval",
							"Seconds between two writes of an API key's last_used_at.",
							"0: last_used_at is not written.  Each write is a small write "
							"transaction inside a request that uses the key.",
							&key_use_interval,
							3600, 0, 86400 * 7,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}
