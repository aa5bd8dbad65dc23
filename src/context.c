/*-------------------------------------------------------------------------
 *
 * context.c
 *	  The tenant context: the payymo.tenant_id setting, who may set it, and
 *	  the rule that a failed attempt leaves no context behind.
 *
 * The context lives in an ordinary GUC so that everything PostgreSQL does
 * with settings applies to it for free: SET LOCAL-style scope that ends
 * with the transaction, rollback to a savepoint, RESET ALL / DISCARD ALL,
 * and serialisation to parallel workers.  What a client must not do is set
 * it.  The GUC is PGC_USERSET on purpose, so that every attempt to set it
 * -- SET, SET LOCAL, set_config(), ALTER ROLE/DATABASE ... SET, a function's
 * SET clause, startup options, a placeholder created before the library
 * loaded -- reaches its check hook, whoever makes it, superusers included.
 * The hook accepts a value only while payymo_context_set() is setting it,
 * in the parallel-worker restore, or when it clears the context; anything
 * else is refused with 42501 and reported as a forged_setting security
 * event, from the hook itself (not by reading error messages).
 *
 * Each accepted value carries, as GUC "extra", the tenant it names, its
 * scope and a sequence number ("epoch").  The assign hook copies them into
 * payymo_tenant (declared in payymo.h), which is what current_tenant()
 * returns, so parallel workers, which restore the leader's GUCs, see the
 * same tenant.
 *
 * Failing closed.  A call of set_tenant() or assume_tenant() that fails in
 * any way -- a bad key, a NULL argument, the rate limit, a statement
 * timeout, a cancel -- must leave no context behind, neither the one of the
 * (sub)transaction nor one set earlier in the session.  The error aborts
 * the (sub)transaction, and the abort restores whatever value the GUC had
 * before, so the clearing has to happen after that.  An attempt therefore
 * starts with payymo_context_begin(), which makes every value set so far
 * void (failure_epoch moves past their epochs), and a successful call takes
 * the voiding back in payymo_context_set().  Callbacks on memory contexts,
 * which are deleted after the GUC stack has been unwound -- the
 * transaction's, and that of every subtransaction that aborts once some
 * attempt has failed -- clear any void value still in force, however it
 * came back (rollback to a savepoint, the end of the transaction): a value
 * set before a failure can never return.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "payymo.h"

#define TENANT_GUC "payymo.tenant_id"

/* GUC "extra" is freed by the GUC machinery: malloc'd before 16, then its own. */
#if PG_VERSION_NUM >= 160000
#define GUC_EXTRA_ALLOC(size) guc_malloc(LOG, (size))
#else
#define GUC_EXTRA_ALLOC(size) malloc(size)
#endif

/* Room for "<tenant>/<user>/member": two INT64_FORMATs, a role, separators. */
#define CONTEXT_VALUE_BUFSIZE 64

PG_FUNCTION_INFO_V1(payymo_current_tenant);
PG_FUNCTION_INFO_V1(payymo_clear_tenant);
PG_FUNCTION_INFO_V1(payymo_current_user_id);
PG_FUNCTION_INFO_V1(payymo_current_user_role);
PG_FUNCTION_INFO_V1(payymo_owner_visible);

/* What an accepted value of the setting means; the GUC's "extra". */
typedef struct TenantValue
{
	PayymoTenantId tenant;
	PayymoUserId user;			/* PAYYMO_NO_USER: a tenant-wide context */
	bool		user_is_admin;
	bool		is_local;		/* set for the transaction only */
	uint64		epoch;			/* when it was set; see failure_epoch */
} TenantValue;

PayymoTenantId payymo_tenant = PAYYMO_NO_TENANT;
bool		payymo_tenant_is_local = false;
PayymoUserId payymo_user = PAYYMO_NO_USER;
bool		payymo_user_is_admin = false;

static char *tenant_guc_value = NULL;
static uint64 tenant_epoch = 0;

/* Numbers the values set in this backend, and the attempts to set one. */
static uint64 epoch_counter = 0;

/* Values set before this epoch are void: a failed attempt came after them. */
static uint64 failure_epoch = 0;

/* While payymo_context_set() or a cleanup is setting the GUC, and how. */
static bool setting_from_payymo = false;
static bool setting_local = false;

static void context_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									 SubTransactionId parentSubid, void *arg);

/* The transaction whose TopTransactionContext already has the callback. */
static LocalTransactionId armed_lxid = InvalidLocalTransactionId;

static bool
parse_id(const char *value, char **end, int64 *id)
{
	errno = 0;
	*id = strtoi64(value, end, 10);
	return errno == 0 && *end != value && *id > 0;
}

/*
 * Parse a setting value: "" means no context; "<tenant>" a tenant-wide one
 * (an API key, assume_tenant); "<tenant>/<user>/<admin|member>" a user's
 * (a session, a JWT).
 */
static bool
parse_context(const char *value, TenantValue *parsed)
{
	char	   *end;

	memset(parsed, 0, sizeof(*parsed));
	if (value == NULL || value[0] == '\0')
		return true;
	if (!parse_id(value, &end, &parsed->tenant))
		return false;
	if (*end == '\0')
		return true;
	if (*end != '/' || !parse_id(end + 1, &end, &parsed->user) || *end != '/')
		return false;
	if (strcmp(end + 1, "admin") == 0)
		parsed->user_is_admin = true;
	else if (strcmp(end + 1, "member") != 0)
		return false;
	return true;
}

/*
 * Whether a refused value is somebody's attempt to set the context, worth a
 * security event: made in a backend, by a session (SET, set_config, startup
 * options, stored role and database settings, function SET clauses), not
 * the postmaster or a configuration file reload.
 */
static inline bool
is_session_attempt(GucSource source)
{
	return IsUnderPostmaster && MyProc != NULL && source >= PGC_S_GLOBAL;
}

static bool
check_tenant_id(char **newval, void **extra, GucSource source)
{
	TenantValue parsed;
	TenantValue *value;

	if (!parse_context(*newval, &parsed))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("A tenant id is a positive integer.");
		return false;
	}

	/* Clearing the context is always allowed. */
	if (parsed.tenant != PAYYMO_NO_TENANT &&
		!setting_from_payymo && !InitializingParallelWorker)
	{
		if (is_session_attempt(source))
			payymo_security_event(PAYYMO_EVENT_FORGED_SETTING, payymo_tenant, NULL);
		GUC_check_errcode(ERRCODE_INSUFFICIENT_PRIVILEGE);
		GUC_check_errmsg("parameter \"%s\" cannot be set directly", TENANT_GUC);
		GUC_check_errhint("Call payymo.set_tenant() with the tenant's API key.");
		return false;
	}

	value = (TenantValue *) GUC_EXTRA_ALLOC(sizeof(TenantValue));
	if (value == NULL)
		return false;
	*value = parsed;
	value->is_local = setting_from_payymo && setting_local;
	value->epoch = ++epoch_counter;
	*extra = value;
	return true;
}

static void
assign_tenant_id(const char *newval, void *extra)
{
	const TenantValue *value = (const TenantValue *) extra;

	payymo_tenant = value ? value->tenant : PAYYMO_NO_TENANT;
	payymo_user = value ? value->user : PAYYMO_NO_USER;
	payymo_user_is_admin = value ? value->user_is_admin : false;
	payymo_tenant_is_local = value ? value->is_local : false;
	tenant_epoch = value ? value->epoch : 0;
}

void
payymo_context_init(void)
{
	DefineCustomStringVariable(TENANT_GUC,
							   "The current tenant (read-only for clients).",
							   "Set only by payymo.set_tenant() and payymo.assume_tenant().",
							   &tenant_guc_value,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_DISALLOW_IN_AUTO_FILE,
							   check_tenant_id,
							   assign_tenant_id,
							   NULL);
	RegisterSubXactCallback(context_subxact_callback, NULL);
}

/*
 * Set the GUC from this module.  elevel is ERROR, except in cleanup
 * callbacks, which must not throw.
 */
static void
set_context_value(const char *value, GucAction action, int elevel)
{
	bool		save = setting_from_payymo;
	bool		save_local = setting_local;

	setting_from_payymo = true;
	setting_local = (action == GUC_ACTION_LOCAL);
	PG_TRY();
	{
		(void) set_config_option(TENANT_GUC, value, PGC_USERSET, PGC_S_SESSION,
								 action, true, elevel, false);
	}
	PG_FINALLY();
	{
		setting_from_payymo = save;
		setting_local = save_local;
	}
	PG_END_TRY();
}

PayymoTenantId
payymo_require_tenant(void)
{
	if (payymo_tenant == PAYYMO_NO_TENANT)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no tenant context set"),
				 errhint("Call payymo.set_tenant() with the tenant's API key first.")));
	return payymo_tenant;
}

/* Clear a context that a failed attempt made void. */
static void
fail_closed_callback(void *arg)
{
	if (payymo_tenant != PAYYMO_NO_TENANT && tenant_epoch < failure_epoch)
		set_context_value("", GUC_ACTION_SET, WARNING);
}

static void
clear_when_deleted(MemoryContext cxt)
{
	MemoryContextCallback *cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));

	cb->func = fail_closed_callback;
	cb->arg = NULL;
	MemoryContextRegisterResetCallback(cxt, cb);
}

/*
 * Start an attempt to set the context: until payymo_context_set() succeeds,
 * every value set so far is void, and the end of the transaction clears it.
 * Call it before anything that can fail.
 */
void
payymo_context_begin(PayymoContextAttempt *attempt)
{
	attempt->saved_failure_epoch = failure_epoch;
	failure_epoch = ++epoch_counter;

	if (armed_lxid != PAYYMO_MY_LXID)
	{
		clear_when_deleted(TopTransactionContext);
		armed_lxid = PAYYMO_MY_LXID;
	}
}

/*
 * A subtransaction aborts: once any attempt has failed in this backend, the
 * value its abort restores may be void, so check after the GUC stack is
 * unwound, when its memory context is deleted.  (Registering only here, and
 * not at every attempt, keeps committed subtransactions' contexts empty.)
 */
static void
context_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && failure_epoch > 0)
		clear_when_deleted(CurTransactionContext);
}

/*
 * End an attempt successfully: set the context -- the tenant, and the user
 * unless PAYYMO_NO_USER -- for the transaction (is_local) or the session,
 * and take back the voiding of earlier values.
 */
void
payymo_context_set(PayymoContextAttempt *attempt, PayymoTenantId tenant,
				   PayymoUserId user, bool user_is_admin, bool is_local)
{
	char		buf[CONTEXT_VALUE_BUFSIZE];

	if (user == PAYYMO_NO_USER)
		snprintf(buf, sizeof(buf), INT64_FORMAT, tenant);
	else
		snprintf(buf, sizeof(buf), INT64_FORMAT "/" INT64_FORMAT "/%s",
				 tenant, user, user_is_admin ? "admin" : "member");
	set_context_value(buf, is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET, ERROR);
	failure_epoch = attempt->saved_failure_epoch;
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
	PG_RETURN_VOID();
}

static void
require_user(void)
{
	if (payymo_user == PAYYMO_NO_USER)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no user context set"),
				 errhint("Call payymo.set_session() with a session token, or payymo.set_tenant_jwt() with a token of the user.")));
}

/*
 * payymo.current_user_id() RETURNS bigint
 */
Datum
payymo_current_user_id(PG_FUNCTION_ARGS)
{
	require_user();
	PG_RETURN_INT64(payymo_user);
}

/*
 * payymo.current_user_role() RETURNS text
 */
Datum
payymo_current_user_role(PG_FUNCTION_ARGS)
{
	require_user();
	PG_RETURN_TEXT_P(cstring_to_text(payymo_user_is_admin ? "admin" : "member"));
}

/*
 * payymo.owner_visible(owner bigint) RETURNS boolean: the per-user policy.
 * A tenant-wide context (an API key, assume_tenant) and a tenant's admin see
 * every row of the tenant; a member sees the rows it owns.  Without any
 * context it raises 42501, as current_tenant() does.
 */
Datum
payymo_owner_visible(PG_FUNCTION_ARGS)
{
	(void) payymo_require_tenant();
	if (payymo_user == PAYYMO_NO_USER || payymo_user_is_admin)
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(!PG_ARGISNULL(0) && PG_GETARG_INT64(0) == payymo_user);
}
