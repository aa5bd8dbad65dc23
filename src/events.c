/*-------------------------------------------------------------------------
 *
 * events.c
 *	  Security events: one LOG line per refused attempt.
 *
 * Callers report what was refused and for which tenant (when known); the
 * line names the kind, the tenant, the role and the client address, and
 * never the secret or the statement that carried it.  An event for a known
 * tenant also counts in that tenant's "denied" (payymo.tenant_stats).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "payymo.h"

static const char *const event_names[] = {
	[PAYYMO_EVENT_BAD_KEY] = "bad_api_key",
	[PAYYMO_EVENT_FORGED_SETTING] = "forged_setting",
	[PAYYMO_EVENT_CROSS_TENANT_WRITE] = "cross_tenant_write",
	[PAYYMO_EVENT_DECRYPT_FAILED] = "decrypt_failed",
};

/* The client's address as text, or "local" for a Unix-socket client. */
static const char *
client_address(void)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		addr;

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	addr = inet_client_addr(fcinfo);
	if (fcinfo->isnull)
		return "local";
	return DatumGetCString(DirectFunctionCall1(inet_out, addr));
}

void
payymo_security_event(PayymoEvent event, PayymoTenantId tenant)
{
	char		tenant_text[32];

	if (tenant == PAYYMO_NO_TENANT)
		strlcpy(tenant_text, "none", sizeof(tenant_text));
	else
		snprintf(tenant_text, sizeof(tenant_text), INT64_FORMAT, tenant);

	ereport(LOG,
			(errmsg("payymo security event: %s", event_names[event]),
			 errdetail("tenant=%s role=%s client=%s",
					   tenant_text,
					   GetUserNameFromId(GetOuterUserId(), true),
					   client_address()),
			 errhidestmt(true),
			 errhidecontext(true)));
	payymo_stats_count_denied(tenant);
}
