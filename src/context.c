/*-------------------------------------------------------------------------
 *
 * context.c
 *	  The tenant context: the payymo.tenant_id setting and the functions that
 *	  read, clear and (for trusted jobs) assume it.
 *
 * The context lives in an ordinary GUC so that everything PostgreSQL does
 * with settings applies to it for free: SET LOCAL-style scope that ends with
 * the transaction, rollback to a savepoint, RESET ALL / DISCARD ALL, and
 * serialisation to parallel workers.  What a client must not do is set it.
 * The GUC is PGC_SUSET (so SET, set_config() and startup options are refused
 * for ordinary roles), and its check hook refuses every non-empty value that
 * does not come from this module, the parallel-worker restore, or nothing
 * else -- so superusers' SET, ALTER ROLE/DATABASE ... SET, postgresql.conf,
 * function SET clauses, GRANT SET ON PARAMETER and placeholders created
 * before the library loaded all fail or are ignored.
 *
 * The assign hook caches the parsed id in current_tenant, which is what
 * payymo.current_tenant() returns: it is always derived from the GUC, so a
 * parallel worker, which restores the leader's GUCs, sees the same tenant.
 *
 * A failed set_tenant() must leave no context behind, but the error aborts
 * the (sub)transaction and the abort restores the value the GUC had before.
 * payymo_context_fail_closed() therefore registers a callback on the
 * transaction's memory context; it runs when that context is deleted, which
 * is after the GUC stack has been unwound, and clears the value then.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "payymo.h"

#define TENANT_GUC "payymo.tenant_id"

/* Room for INT64_FORMAT of any int64, with sign and terminator. */
#define TENANT_ID_BUFSIZE 24

PG_FUNCTION_INFO_V1(payymo_current_tenant);
PG_FUNCTION_INFO_V1(payymo_clear_tenant);
PG_FUNCTION_INFO_V1(payymo_assume_tenant);

static char *tenant_guc_value = NULL;
static PayymoTenantId current_tenant = PAYYMO_NO_TENANT;

/* True only while set_context_value() is setting the GUC. */
static bool setting_from_payymo = false;

/* Bumped by every successful payymo_context_set(); see fail_closed. */
static uint64 context_generation = 0;

typedef struct FailClosedCallback
{
	MemoryContextCallback cb;
	uint64		generation;
} FailClosedCallback;

/*
 * Parse a setting value: "" means no tenant, otherwise a positive integer.
 */
static bool
parse_tenant_id(const char *value, PayymoTenantId *tenant)
{
	char	   *end;
	int64		id;

	if (value == NULL || value[0] == '\0')
	{
		*tenant = PAYYMO_NO_TENANT;
		return true;
	}
	errno = 0;
	id = strtoi64(value, &end, 10);
	if (errno != 0 || *end != '\0' || id <= 0)
		return false;
	*tenant = id;
	return true;
}

static bool
check_tenant_id(char **newval, void **extra, GucSource source)
{
	PayymoTenantId tenant;

	if (!parse_tenant_id(*newval, &tenant))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("A tenant id is a positive integer.");
		return false;
	}

	/* Clearing the context is always allowed. */
	if (tenant == PAYYMO_NO_TENANT)
		return true;

	if (setting_from_payymo || InitializingParallelWorker)
		return true;

	GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
	GUC_check_errmsg("parameter \"%s\" cannot be set directly", TENANT_GUC);
	GUC_check_errhint("Call payymo.set_tenant() with the tenant's API key.");
	return false;
}

static void
assign_tenant_id(const char *newval, void *extra)
{
	PayymoTenantId tenant;

	current_tenant = parse_tenant_id(newval, &tenant) ? tenant : PAYYMO_NO_TENANT;
}

void
payymo_context_init(void)
{
	DefineCustomStringVariable(TENANT_GUC,
							   "The current tenant (read-only for clients).",
							   "Set only by payymo.set_tenant() and payymo.assume_tenant().",
							   &tenant_guc_value,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_DISALLOW_IN_AUTO_FILE,
							   check_tenant_id,
							   assign_tenant_id,
							   NULL);
}

/*
 * Set the GUC from this module.  elevel is ERROR, except in cleanup
 * callbacks, which must not throw.
 */
static void
set_context_value(const char *value, GucAction action, int elevel)
{
	bool		save = setting_from_payymo;

	setting_from_payymo = true;
	PG_TRY();
	{
		(void) set_config_option(TENANT_GUC, value, PGC_SUSET, PGC_S_SESSION,
								 action, true, elevel, false);
	}
	PG_FINALLY();
	{
		setting_from_payymo = save;
	}
	PG_END_TRY();
}

PayymoTenantId
payymo_current_tenant_or_none(void)
{
	return current_tenant;
}

PayymoTenantId
payymo_require_tenant(void)
{
	if (current_tenant == PAYYMO_NO_TENANT)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context set"),
				 errhint("Call payymo.set_tenant() with the tenant's API key first.")));
	return current_tenant;
}

void
payymo_context_set(PayymoTenantId tenant, bool is_local)
{
	char		buf[TENANT_ID_BUFSIZE];

	snprintf(buf, sizeof(buf), INT64_FORMAT, tenant);
	set_context_value(buf, is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET, ERROR);
	context_generation++;
}

static void
fail_closed_callback(void *arg)
{
	FailClosedCallback *fc = (FailClosedCallback *) arg;

	/* Unless a context was set successfully since the failure, clear it. */
	if (fc->generation == context_generation &&
		current_tenant != PAYYMO_NO_TENANT)
		set_context_value("", GUC_ACTION_SET, WARNING);
}

static void
clear_when_deleted(MemoryContext cxt)
{
	FailClosedCallback *fc = MemoryContextAlloc(cxt, sizeof(FailClosedCallback));

	fc->generation = context_generation;
	fc->cb.func = fail_closed_callback;
	fc->cb.arg = fc;
	MemoryContextRegisterResetCallback(cxt, &fc->cb);
}

/*
 * Called just before raising an authentication error: make sure that no
 * context survives the abort, neither the (sub)transaction's nor the one
 * that was in force before it.
 */
void
payymo_context_fail_closed(void)
{
	clear_when_deleted(TopTransactionContext);
	if (CurTransactionContext != TopTransactionContext)
		clear_when_deleted(CurTransactionContext);
}

/*
 * payymo.current_tenant() RETURNS bigint
 */
Datum
payymo_current_tenant(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(payymo_require_tenant());
}

/*
 * payymo.clear_tenant() RETURNS void
 */
Datum
payymo_clear_tenant(PG_FUNCTION_ARGS)
{
	set_context_value("", GUC_ACTION_SET, ERROR);
	context_generation++;
	PG_RETURN_VOID();
}

/*
 * payymo.assume_tenant(tenant_id bigint, is_local boolean) RETURNS void
 *
 * SECURITY DEFINER and not executable by PUBLIC: for jobs and support tools
 * that act for a tenant without its key.  Every use is logged.
 */
Datum
payymo_assume_tenant(PG_FUNCTION_ARGS)
{
	PayymoTenantId tenant;
	bool		is_local;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	int			ret;
	bool		isnull;
	int32		rate_limit;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant_id and is_local must not be null")));
	tenant = PG_GETARG_INT64(0);
	is_local = PG_GETARG_BOOL(1);
	values[0] = Int64GetDatum(tenant);

	SPI_connect();
	ret = SPI_execute_with_args("SELECT rate_limit_per_second FROM payymo.tenants"
								" WHERE id OPERATOR(pg_catalog.=) $1",
								1, argtypes, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant " INT64_FORMAT " does not exist", tenant)));
	rate_limit = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	/* Limited only when payymo.rate_limit_assume is on. */
	payymo_rate_limit_check(tenant, isnull ? 0 : rate_limit, true);
	payymo_context_set(tenant, is_local);
	ereport(LOG,
			(errmsg("payymo: role \"%s\" assumed tenant " INT64_FORMAT,
					GetUserNameFromId(GetOuterUserId(), false), tenant),
			 errdetail("Session user \"%s\", scope %s.",
					   GetUserNameFromId(GetSessionUserId(), false),
					   is_local ? "transaction" : "session")));
	PG_RETURN_VOID();
}
