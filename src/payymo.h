/*-------------------------------------------------------------------------
 *
 * payymo.h
 *	  Declarations shared by the modules of the payymo extension.
 *
 * Each module (context, apikey, ...) exposes one payymo_<module>_init()
 * that _PG_init() calls, plus the few functions other modules need.
 * "postgres.h" is included by every .c file before this header.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYYMO_H
#define PAYYMO_H

#include "fmgr.h"

/* A tenant id; 0 never names a tenant (ids come from an identity column). */
typedef int64 PayymoTenantId;

#define PAYYMO_NO_TENANT ((PayymoTenantId) 0)

/* context.c */
extern void payymo_context_init(void);
extern PayymoTenantId payymo_current_tenant_or_none(void);
extern PayymoTenantId payymo_require_tenant(void);
extern void payymo_context_set(PayymoTenantId tenant, bool is_local);
extern void payymo_context_fail_closed(void);

/* apikey.c: the key format's pure functions are declared in keyformat.h */

/* events.c */
typedef enum PayymoEvent
{
	PAYYMO_EVENT_BAD_KEY,
	PAYYMO_EVENT_FORGED_SETTING,
	PAYYMO_EVENT_CROSS_TENANT_WRITE,
	PAYYMO_EVENT_DECRYPT_FAILED,
} PayymoEvent;

extern void payymo_security_event(PayymoEvent event, PayymoTenantId tenant);

/* crypto.c */
extern void payymo_crypto_init(void);

/* stats.c: per-tenant statistics and rate limits in shared memory */
extern void payymo_stats_init(void);
extern void payymo_stats_count_denied(PayymoTenantId tenant);
extern void payymo_rate_limit_check(PayymoTenantId tenant, int32 rate_per_second,
									bool for_assume);

/* logctx.c: tenant and request id in the server log; forged settings */
extern void payymo_logctx_init(void);

#endif							/* PAYYMO_H */
