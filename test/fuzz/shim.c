/*
 * shim.c -- minimal stand-ins for the PostgreSQL backend functions that
 * src/crypto.c references, so its token parsing and decryption can run in
 * a libFuzzer process.
 *
 * Only palloc/pfree (plain malloc/free, so ASan and LeakSanitizer see every
 * allocation), the ereport machinery (ERROR longjmps back to the harness)
 * and payymo_security_event (counted) are real; printf and friends come
 * from PostgreSQL's own libpgport.a.  Everything else crypto.c
 * links against is only reached from code the harness never calls (the SQL
 * wrappers, key file loading, key_status): those definitions call abort(),
 * so reaching one is reported as a crash rather than silently faked.
 */
#include "postgres.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "payymo.h"
#include "shim.h"

jmp_buf		shim_error_jmp;
volatile int shim_error_armed = 0;
int			shim_sqlstate = 0;
int			shim_security_events = 0;

static int	pending_elevel = 0;

char	   *DataDir = NULL;

#define UNREACHABLE(name) \
	do { fprintf(stderr, "shim: %s must not be reached\n", name); abort(); } while (0)

void *
palloc(Size size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

void
pfree(void *pointer)
{
	free(pointer);
}

bool
errstart(int elevel, const char *domain)
{
	pending_elevel = elevel;
	shim_sqlstate = 0;
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (pending_elevel < ERROR)
		return;
	if (!shim_error_armed)
	{
		fprintf(stderr, "shim: unexpected ERROR at %s:%d (%s)\n", filename, lineno, funcname);
		abort();
	}
	longjmp(shim_error_jmp, 1);
}

int
errcode(int sqlerrcode)
{
	shim_sqlstate = sqlerrcode;
	return 0;
}

/* Message texts are not kept; the format string must still be well formed. */
#define SHIM_MESSAGE(name) \
int \
name(const char *fmt,...) \
{ \
	char		buf[1024]; \
	va_list		ap; \
	va_start(ap, fmt); \
	vsnprintf(buf, sizeof(buf), fmt, ap); \
	va_end(ap); \
	return 0; \
}

SHIM_MESSAGE(errmsg)
SHIM_MESSAGE(errmsg_internal)
SHIM_MESSAGE(errdetail)
SHIM_MESSAGE(errdetail_log)
SHIM_MESSAGE(errhint)

void
payymo_security_event(PayymoEvent event, PayymoTenantId tenant, const char *key_id)
{
	shim_security_events++;
}

/* Reached only from code the harness does not call. */
PayymoTenantId
payymo_require_tenant(void)
{
	UNREACHABLE("payymo_require_tenant");
}

struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	UNREACHABLE("pg_detoast_datum_packed");
}

text *
cstring_to_text(const char *s)
{
	UNREACHABLE("cstring_to_text");
}

char *
pstrdup(const char *in)
{
	UNREACHABLE("pstrdup");
}

int
OpenTransientFile(const char *fileName, int fileFlags)
{
	UNREACHABLE("OpenTransientFile");
}

int
CloseTransientFile(int fd)
{
	UNREACHABLE("CloseTransientFile");
}

bool
path_is_prefix_of_path(const char *path1, const char *path2)
{
	UNREACHABLE("path_is_prefix_of_path");
}

bool
pg_verifymbstr(const char *mbstr, int len, bool noError)
{
	UNREACHABLE("pg_verifymbstr");
}

void
DefineCustomStringVariable(const char *name, const char *short_desc,
						   const char *long_desc, char **valueAddr,
						   const char *bootValue, GucContext context, int flags,
						   GucStringCheckHook check_hook,
						   GucStringAssignHook assign_hook,
						   GucShowHook show_hook)
{
	UNREACHABLE("DefineCustomStringVariable");
}

void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	UNREACHABLE("InitMaterializedSRF");
}

void
tuplestore_putvalues(Tuplestorestate *state, TupleDesc tdesc,
					 Datum *values, bool *isnull)
{
	UNREACHABLE("tuplestore_putvalues");
}
