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
 * Credentials.  The same hook keeps payymo's credentials out of the server
 * log when a client passed them as literals, whatever error or setting
 * logs the text: it overwrites, in place, the secret part of API keys and
 * session tokens (the public id stays, to tell which was used) and all of a
 * JWT after its header, in the message, detail and context; and it hides
 * the STATEMENT line of any entry whose statement holds a credential or
 * mentions logins or passwords, whose values have no recognisable shape --
 * for those it also blanks log_statement's text and bind parameters.  (The
 * client gets the redacted message too.)  Bind parameters remain the way
 * to send secrets: they never reach the statement's text.
 *
 * The hook is installed whenever the library is loaded, which is always
 * the case in a backend that has a tenant context; it needs no shared
 * memory.  It never raises and allocates only with MCXT_ALLOC_NO_OOM.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "tcop/tcopprot.h"
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

static inline bool
is_base32(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

static inline bool
is_base64url(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * Where a credential starts in s at p, the first character to hide (after
 * an API key's or session token's public id, after a JWT's header), or NULL.
 */
static char *
credential_secret(const char *s, char *p)
{
	int			n = 0;

	if (strncmp(p, "pyk_", 4) == 0 || strncmp(p, "pys_", 4) == 0)
	{
		while (n < 16 && is_base32(p[4 + n]))
			n++;
		return n == 16 && p[20] == '_' ? p + 21 : NULL;
	}
	if (strncmp(p, "eyJ", 3) == 0 && (p == s || !is_base64url(p[-1])))
	{
		while (is_base64url(p[n]))
			n++;
		return p[n] == '.' ? p + n + 1 : NULL;
	}
	return NULL;
}

/* Overwrite the secrets of the credentials in s with '*', in place. */
static void
redact_credentials(char *s)
{
	char	   *p;
	char	   *secret;

	if (s == NULL)
		return;
	for (p = s; *p; p++)
		if ((secret = credential_secret(s, p)) != NULL)
		{
			for (p = secret; is_base64url(*p) || *p == '.'; p++)
				*p = '*';
			if (*p == '\0')
				break;
		}
}

static bool
contains_ci(const char *s, const char *word)
{
	size_t		n = strlen(word);

	for (; *s; s++)
		if (pg_strncasecmp(s, word, n) == 0)
			return true;
	return false;
}

/* Whether a statement's text may hold a password: no shape to find it by. */
static bool
mentions_password(const char *query)
{
	return query != NULL &&
		(contains_ci(query, "login") || contains_ci(query, "password") ||
		 contains_ci(query, "create_user"));
}

static bool
holds_credential(const char *query)
{
	char	   *p;

	if (query == NULL)
		return false;
	for (p = (char *) query; *p; p++)
		if (credential_secret(query, p) != NULL)
			return true;
	return false;
}

/* Blank s after its first ": ", in place (log_statement's text, parameters). */
static void
blank_after_colon(char *s)
{
	char	   *p = s ? strstr(s, ": ") : NULL;

	if (p != NULL)
		for (p += 2; *p; p++)
			*p = '*';
}

static void
keep_credentials_out(ErrorData *edata)
{
	redact_credentials(edata->message);
	redact_credentials(edata->detail);
	redact_credentials(edata->detail_log);
	redact_credentials(edata->context);
	if (holds_credential(debug_query_string))
		edata->hide_stmt = true;
	if (!mentions_password(debug_query_string))
		return;
	edata->hide_stmt = true;
	if (edata->message && (strncmp(edata->message, "statement: ", 11) == 0 ||
						   strncmp(edata->message, "execute ", 8) == 0 ||
						   strncmp(edata->message, "duration: ", 10) == 0))
		blank_after_colon(edata->message);
	if (edata->detail && strncmp(edata->detail, "parameters: ", 12) == 0)
		blank_after_colon(edata->detail);
}

/*
 * emit_log_hook.  Must never raise: no palloc that can fail, no ereport.
 */
static void
logctx_emit_log_hook(ErrorData *edata)
{
	PayymoTenantId tenant = payymo_tenant;

	if (!in_error_recursion_trouble())
		keep_credentials_out(edata);

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
