/*-------------------------------------------------------------------------
 *
 * events.c
 *	  Security events: one LOG line per refused attempt, and per tenant
 *	  data export.
 *
 * Callers report what was refused, for which tenant (only when the caller
 * has proved to act for it: a context in force, or an API key whose secret
 * matched) and, for API keys, the public key id.  The line names the kind,
 * the tenant, the key id, the role and the client address, and never a
 * secret or the statement that carried it.  A refusal attributed to a
 * tenant also counts in that tenant's "denied" (payymo.tenant_stats); an
 * unattributed one, such as a probe with a wrong secret, counts nowhere,
 * so probing cannot create, inflate or evict a tenant's statistics.  A data
 * export is not a refusal and counts nowhere either.
 *
 * Events may be raised from the setting's check hook, at times when the
 * catalog must not be read (outside a transaction): the role is then given
 * by OID.  Parallel workers, which have no connection of their own, give
 * the client as "unknown".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "payymo.h"

static const char *const event_names[] = {
	[PAYYMO_EVENT_BAD_KEY] = "bad_api_key",
	[PAYYMO_EVENT_FORGED_SETTING] = "forged_setting",
	[PAYYMO_EVENT_CROSS_TENANT_WRITE] = "cross_tenant_write",
	[PAYYMO_EVENT_DECRYPT_FAILED] = "decrypt_failed",
	[PAYYMO_EVENT_DATA_EXPORT] = "data_export",
	[PAYYMO_EVENT_BAD_LOGIN] = "bad_login",
	[PAYYMO_EVENT_BAD_SESSION] = "bad_session",
	[PAYYMO_EVENT_BAD_JWT] = "bad_jwt",
};

/*
 * The client's address, "local" for a Unix-socket client, or "unknown" in a
 * parallel worker, which has no connection of its own.
 */
const char *
payymo_client_address(void)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		addr;

	if (IsParallelWorker())
		return "unknown";
	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	addr = inet_client_addr(fcinfo);
	if (fcinfo->isnull)
		return "local";
	return DatumGetCString(DirectFunctionCall1(inet_out, addr));
}

void
payymo_security_event(PayymoEvent event, PayymoTenantId tenant, const char *key_id)
{
	char		tenant_text[32];
	char		role_text[NAMEDATALEN + 16];
	const char *role = NULL;
	Oid			roleid = GetOuterUserId();

	if (tenant == PAYYMO_NO_TENANT)
		strlcpy(tenant_text, "none", sizeof(tenant_text));
	else
		snprintf(tenant_text, sizeof(tenant_text), INT64_FORMAT, tenant);

	if (IsTransactionState() && OidIsValid(roleid))
		role = GetUserNameFromId(roleid, true);
	if (role == NULL)
	{
		snprintf(role_text, sizeof(role_text), "oid:%u", roleid);
		role = role_text;
	}

	ereport(LOG,
			(errmsg("payymo security event: %s", event_names[event]),
			 errdetail("tenant=%s key_id=%s role=%s client=%s",
					   tenant_text, key_id ? key_id : "none", role,
					   payymo_client_address()),
			 errhidestmt(true),
			 errhidecontext(true)));
	if (event != PAYYMO_EVENT_DATA_EXPORT)
		payymo_stats_count_denied(tenant);
}
