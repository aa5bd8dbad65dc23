/*-------------------------------------------------------------------------
 *
 * logctx.c
 *	  Log context: the tenant and request id on every server log entry.
 *
 * Log context.  While a tenant context is set and payymo.log_context is
 * on, emit_log_hook puts "[payymo tenant=<id> request=<id>]" in front of
 * the entry's DETAIL for the server log only: it sets edata->detail_log,
 * which PostgreSQL writes to the server log (stderr, csvlog, jsonlog,
 * syslog) in place of the detail, and never sends to the client.  The
 * client therefore sees its messages unchanged.  The request part appears
 * only when the application set payymo.request_id, whose check hook
 * accepts at most REQUEST_ID_MAXLEN characters from [A-Za-z0-9._:/+=@-],
 * so it cannot inject newlines or quotes into the log.
 *
 * The hook is installed whenever the library is loaded, which is always
 * the case in a backend that has a tenant context; it needs no shared
 * memory.  It never raises and allocates only with MCXT_ALLOC_NO_OOM.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "payymo.h"

#define REQUEST_ID_MAXLEN	128

/* "[payymo tenant=<int64> request=<id>] " plus terminator */
#define LOG_CONTEXT_BUFSIZE (64 + REQUEST_ID_MAXLEN)

static bool log_context = true;
static char *request_id = NULL;

static emit_log_hook_type prev_emit_log_hook = NULL;

static inline bool
request_id_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || strchr("._:/+=@-", c) != NULL;
}

static bool
check_request_id(char **newval, void **extra, GucSource source)
{
	const char *p;

	if (*newval == NULL)
		return true;
	if (strlen(*newval) > REQUEST_ID_MAXLEN)
	{
		GUC_check_errdetail("A request id has at most %d characters.", REQUEST_ID_MAXLEN);
		return false;
	}
	for (p = *newval; *p; p++)
		if (!request_id_char_ok(*p))
		{
			GUC_check_errdetail("A request id may contain only letters, digits and . _ : / + = @ -");
			return false;
		}
	return true;
}

/*
 * emit_log_hook.  Must never raise: no palloc that can fail, no ereport.
 */
static void
logctx_emit_log_hook(ErrorData *edata)
{
	PayymoTenantId tenant = payymo_tenant;

	if (log_context && tenant != PAYYMO_NO_TENANT && !in_error_recursion_trouble())
	{
		char		prefix[LOG_CONTEXT_BUFSIZE];
		const char *detail = edata->detail_log ? edata->detail_log : edata->detail;
		Size		len;
		char	   *buf;

		if (request_id != NULL && request_id[0] != '\0')
			snprintf(prefix, sizeof(prefix), "[payymo tenant=" INT64_FORMAT " request=%s]",
					 tenant, request_id);
		else
			snprintf(prefix, sizeof(prefix), "[payymo tenant=" INT64_FORMAT "]", tenant);

		len = strlen(prefix) + (detail ? 1 + strlen(detail) : 0) + 1;
		buf = MemoryContextAllocExtended(ErrorContext, len, MCXT_ALLOC_NO_OOM);
		if (buf != NULL)
		{
			if (detail)
				snprintf(buf, len, "%s %s", prefix, detail);
			else
				strlcpy(buf, prefix, len);
			edata->detail_log = buf;
		}
	}

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
payymo_logctx_init(void)
{
	DefineCustomBoolVariable("payymo.log_context",
							 "Adds the tenant and request id to server log entries.",
							 "While a tenant context is set; the server log only, not messages sent to the client.",
							 &log_context,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("payymo.request_id",
							   "The application's request id, shown in server log entries.",
							   "At most 128 characters from letters, digits and . _ : / + = @ -",
							   &request_id,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   check_request_id,
							   NULL, NULL);

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = logctx_emit_log_hook;
}
