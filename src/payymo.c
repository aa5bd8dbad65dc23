/*-------------------------------------------------------------------------
 *
 * payymo.c
 *	  Module entry point of the payymo extension.
 *
 * _PG_init() only initialises libsodium and calls one payymo_<module>_init()
 * per module; each module defines its own settings and hooks.  Once all
 * settings exist the "payymo" prefix is reserved, so that nobody can create
 * a placeholder such as payymo.tenant_id before or after the library loads.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "payymo.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not initialize libsodium")));

	payymo_context_init();
	payymo_apikey_init();
	payymo_cursors_init();
	payymo_stats_init();
	payymo_logctx_init();
	payymo_crypto_init();
	payymo_throttle_init();
	payymo_users_init();
	payymo_keycache_init();
	payymo_registry_init();
	payymo_alerts_init();

	MarkGUCPrefixReserved("payymo");
}
