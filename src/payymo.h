/*-------------------------------------------------------------------------
 *
 * payymo.h
 *	  Declarations shared by the modules of the payymo extension.
 *
 * Each module (context, apikey, ...) exposes one payymo_<module>_init()
 * that _PG_init() calls, plus the few functions other modules need.  The
 * modules call each other in one direction only:
 *
 *	  apikey  -> context, cursors, stats, events
 *	  crypto, trigger -> context, events
 *	  context -> events -> stats
 *
 * and read the current tenant from payymo_tenant, which context.c owns.
 * "postgres.h" is included by every .c file before this header.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYYMO_H
#define PAYYMO_H

#include <sodium.h>

#include "access/genam.h"
#include "access/stratnum.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/rel.h"
#include "utils/snapshot.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* A tenant id; 0 never names a tenant (ids come from an identity column). */
typedef int64 PayymoTenantId;

#define PAYYMO_NO_TENANT ((PayymoTenantId) 0)

/* A user id (payymo.users.id); 0: a tenant-wide context, without a user. */
typedef int64 PayymoUserId;

#define PAYYMO_NO_USER ((PayymoUserId) 0)

/* A function that never returns (the marker's form changed in 18). */
#if PG_VERSION_NUM >= 180000
#define PAYYMO_NORETURN pg_noreturn
#else
#define PAYYMO_NORETURN pg_attribute_noreturn()
#endif

/* This backend's local transaction id (moved into vxid in PostgreSQL 17). */
#if PG_VERSION_NUM >= 170000
#define PAYYMO_MY_LXID (MyProc->vxid.lxid)
#else
#define PAYYMO_MY_LXID (MyProc->lxid)
#endif

/* The next ProcessUtility hook after a module's own: prev, or the standard one. */
static inline void
payymo_next_ProcessUtility(ProcessUtility_hook_type prev, PlannedStmt *pstmt,
						   const char *queryString, bool readOnlyTree,
						   ProcessUtilityContext context, ParamListInfo params,
						   QueryEnvironment *queryEnv, DestReceiver *dest,
						   QueryCompletion *qc)
{
	(prev ? prev : standard_ProcessUtility) (pstmt, queryString, readOnlyTree, context,
											 params, queryEnv, dest, qc);
}

/* context.c: the tenant context (written only by context.c) */
extern PayymoTenantId payymo_tenant;
extern bool payymo_tenant_is_local;
extern PayymoUserId payymo_user;
extern bool payymo_user_is_admin;

typedef struct PayymoContextAttempt
{
	uint64		saved_failure_epoch;
} PayymoContextAttempt;

extern void payymo_context_init(void);
extern PayymoTenantId payymo_require_tenant(void);
extern void payymo_context_begin(PayymoContextAttempt *attempt);
extern void payymo_context_set(PayymoContextAttempt *attempt,
							   PayymoTenantId tenant, PayymoUserId user,
							   bool user_is_admin, bool is_local);

/*
 * apikey.c: set_tenant, assume_tenant and API keys (format in keyformat.h),
 * and the helpers users.c shares for reading payymo's tables directly.
 */
typedef struct PayymoTenantRow
{
	bool		active;
	int32		rate_limit;		/* rate_limit_per_second; 0: none */
} PayymoTenantRow;

extern void payymo_apikey_init(void);
extern Relation payymo_open_table(const char *name, Oid *pkey);
extern void payymo_check_column(Relation rel, AttrNumber attnum, const char *name);
extern HeapTuple payymo_fetch_by_pkey(Relation rel, Oid pkey, StrategyNumber strategy,
									  RegProcedure proc, Oid collation, Datum value,
									  Snapshot snapshot, SysScanDesc *scan);
extern bool payymo_read_tenant(PayymoTenantId tenant, PayymoTenantRow *row);
extern bool payymo_touch_row(Oid owner, SPIPlanPtr *plan, const char *update, Datum id);
extern void payymo_hide_statement_push(ErrorContextCallback *cb);
extern void payymo_warn_if_statement_scoped(const char *function, bool is_local);
extern void payymo_require_not_null(FunctionCallInfo fcinfo, int argno, const char *name);

/* A call of set_tenant(), set_session() or set_tenant_jwt() (apikey.c). */
typedef struct PayymoCredentialCall
{
	PayymoContextAttempt attempt;
	ErrorContextCallback errcallback;
	bool		is_local;
} PayymoCredentialCall;

extern void payymo_credential_begin(FunctionCallInfo fcinfo, PayymoCredentialCall *call);
extern void payymo_credential_end(PayymoCredentialCall *call, const char *function,
								  PayymoTenantId tenant, PayymoUserId user,
								  bool user_is_admin, int32 rate_limit);

/* keycache.c: verified API keys, cached in shared memory */
typedef struct PayymoCachedKey
{
	PayymoTenantId tenant;
	TimestampTz expires_at;		/* DT_NOEND: never */
	TimestampTz last_used_at;
	int32		rate_limit;
} PayymoCachedKey;

extern void payymo_keycache_init(void);
extern uint64 payymo_keycache_generation(void);
extern bool payymo_keycache_lookup(const char *key, const unsigned char *presented,
								   TimestampTz now, uint64 generation,
								   PayymoCachedKey *out);
extern void payymo_keycache_store(const char *key, const unsigned char *hash,
								  uint64 generation, const PayymoCachedKey *entry,
								  Oid store_relid);
extern void payymo_keycache_touched(const char *key, TimestampTz now);

/* registry.c: rows under tenancy belong to a tenant that exists */
extern void payymo_registry_init(void);
extern void payymo_registry_check_write(PayymoTenantId tenant, const char *relname);

/* alerts.c */
extern void payymo_alerts_init(void);

/* cursors.c: WITH HOLD cursors must not outlive their tenant context */
extern void payymo_cursors_init(void);
extern void payymo_cursors_check_switch(PayymoTenantId tenant);

/* events.c */
typedef enum PayymoEvent
{
	PAYYMO_EVENT_BAD_KEY,
	PAYYMO_EVENT_FORGED_SETTING,
	PAYYMO_EVENT_CROSS_TENANT_WRITE,
	PAYYMO_EVENT_DECRYPT_FAILED,
	PAYYMO_EVENT_DATA_EXPORT,	/* not a refusal: counts nowhere */
	PAYYMO_EVENT_BAD_LOGIN,
	PAYYMO_EVENT_BAD_SESSION,
	PAYYMO_EVENT_BAD_JWT,
} PayymoEvent;

extern void payymo_security_event(PayymoEvent event, PayymoTenantId tenant,
								  const char *key_id);
extern const char *payymo_client_address(void);

/* crypto.c */
#define PAYYMO_SUBKEY_BYTES 32
extern void payymo_crypto_init(void);
extern void payymo_crypto_derive(unsigned char *subkey, int version, uint64 id,
								 const char context[crypto_kdf_CONTEXTBYTES]);

/* stats.c: per-tenant statistics and rate limits in shared memory */
extern void payymo_stats_init(void);
extern void payymo_stats_count_denied(PayymoTenantId tenant);
extern void payymo_rate_limit_check(PayymoTenantId tenant, int32 rate_per_second,
									bool for_assume);

/* tenancy.c: running statements as a table's owner */
typedef struct PayymoOwnerScope
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} PayymoOwnerScope;

extern void payymo_owner_enter(PayymoOwnerScope *scope, Oid relid, bool bypass_force_rls);
extern void payymo_owner_restore_settings(PayymoOwnerScope *scope);
extern void payymo_owner_leave(PayymoOwnerScope *scope);

/* users.c: logins and sessions */
extern void payymo_users_init(void);

/* throttle.c: token buckets of failed logins in shared memory */
typedef struct PayymoThrottle
{
	unsigned char digest[16];
	int			capacity;		/* failures allowed at once */
	int			refill_secs;	/* seconds to earn one more */
} PayymoThrottle;

extern void payymo_throttle_init(void);
extern void payymo_throttle_require(void);
extern void payymo_throttle_key(PayymoThrottle *bucket, const char *what,
								const char *const *parts, int capacity, int refill_secs);
extern int	payymo_throttle_wait(const PayymoThrottle *buckets, int n);
extern void payymo_throttle_fail(const PayymoThrottle *buckets, int n);
extern void payymo_throttle_forget(const PayymoThrottle *buckets, int n);

/* logctx.c: tenant and request id in the server log */
extern void payymo_logctx_init(void);

/*
 * Wipe and free a detoasted copy of argument argno that may hold a secret
 * (PG_GETARG_*_PP may return the caller's datum itself, which is left
 * alone).
 */
static inline void
payymo_wipe_arg_copy(FunctionCallInfo fcinfo, int argno, void *ptr)
{
	if (ptr != DatumGetPointer(PG_GETARG_DATUM(argno)))
	{
		sodium_memzero(ptr, VARSIZE_ANY(ptr));
		pfree(ptr);
	}
}

#endif							/* PAYYMO_H */
