/*-------------------------------------------------------------------------
 *
 * tenancy.c
 *	  C support for payymo.enable_tenancy() and payymo.disable_tenancy().
 *
 * The work is SECURITY DEFINER (it registers tables in payymo's catalogue,
 * which only its owner may write, and validates references that row level
 * security would hide from the table's owner), so inside it
 * current_user is the extension's owner.  The public functions are
 * therefore SECURITY INVOKER wrappers: they call
 * payymo._issue_ticket(), which checks that current_user -- the real
 * caller, or the owner of a SECURITY DEFINER function that calls them --
 * may do the work, and records a ticket for the table(s); the SECURITY
 * DEFINER worker starts with payymo._take_ticket(), which consumes the
 * ticket and refuses without one.  A ticket is good for one call in the
 * same transaction, for the same tables and the same kind of work.
 *
 * Who may do what.  Putting a table under tenancy, and adding references
 * between such tables, strengthens them: the owner may, and so may any
 * member of the owning role, as for every ALTER TABLE.  Taking a table out
 * of tenancy ("weakening") is for superusers and members of payymo_admin
 * only: the owner is often a role that application or migration logins
 * are members of, and those must not be able to switch isolation off.
 *
 * Inside the worker, every statement on the caller's table goes through
 * payymo._as_table_owner(), which runs it as the table's owner in a
 * security-restricted operation, as REFRESH MATERIALIZED VIEW and index
 * builds do: the table's triggers, CHECK constraints, index expressions
 * and rules then run with the owner's rights, never the superuser's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "payymo.h"

PG_FUNCTION_INFO_V1(payymo_issue_ticket);
PG_FUNCTION_INFO_V1(payymo_take_ticket);
PG_FUNCTION_INFO_V1(payymo_as_table_owner);

#define TICKET_RELS 2

#define ADMIN_ROLE "payymo_admin"


/* The tables the ticket is for, its kind, and its transaction. */
static Oid	ticket_rels[TICKET_RELS];
static bool ticket_weakens = false;
static LocalTransactionId ticket_lxid = InvalidLocalTransactionId;

static Oid
table_owner(Oid relid)
{
	HeapTuple	tuple;
	Oid			owner;

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

static void
require_owner(Oid relid)
{
	Oid			owner = table_owner(relid);

	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(relid)),
				 errdetail("Role \"%s\" does not own the table.",
						   GetUserNameFromId(GetUserId(), false))));
}

/* The table and, for a partitioned table, every partition. */
static void
require_owner_of_tree(Oid relid)
{
	ListCell   *lc;

	require_owner(relid);
	foreach(lc, find_all_inheritors(relid, NoLock, NULL))
		require_owner(lfirst_oid(lc));
}

/* Superusers and members of payymo_admin may take tables out of tenancy. */
static void
require_tenancy_admin(void)
{
	Oid			admin = get_role_oid(ADMIN_ROLE, true);

	if (!superuser() && !(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to take a table out of tenancy"),
				 errdetail("Only superusers and members of role \"%s\" may weaken tenant isolation; owning the table is not enough.",
						   ADMIN_ROLE),
				 errhint("Ask an administrator, or GRANT %s to the role that maintains the schema.",
						 ADMIN_ROLE)));
}

/* The weakens argument; 0.1.0 declared the ticket functions without it. */
static bool
weakens_arg(FunctionCallInfo fcinfo)
{
	return PG_NARGS() > TICKET_RELS && !PG_ARGISNULL(TICKET_RELS) &&
		PG_GETARG_BOOL(TICKET_RELS);
}

/*
 * payymo._issue_ticket(tbl regclass, tbl2 regclass, weakens boolean)
 * RETURNS void
 */
Datum
payymo_issue_ticket(PG_FUNCTION_ARGS)
{
	int			i;

	ticket_weakens = weakens_arg(fcinfo);
	if (ticket_weakens)
		require_tenancy_admin();
	for (i = 0; i < TICKET_RELS; i++)
	{
		ticket_rels[i] = PG_ARGISNULL(i) ? InvalidOid : PG_GETARG_OID(i);
		if (OidIsValid(ticket_rels[i]) && !ticket_weakens)
			require_owner_of_tree(ticket_rels[i]);
	}
	ticket_lxid = PAYYMO_MY_LXID;
	PG_RETURN_VOID();
}

/*
 * payymo._take_ticket(tbl regclass, tbl2 regclass, weakens boolean)
 * RETURNS void
 */
Datum
payymo_take_ticket(PG_FUNCTION_ARGS)
{
	bool		valid = (ticket_lxid == PAYYMO_MY_LXID);
	int			i;

	for (i = 0; i < TICKET_RELS; i++)
	{
		Oid			relid = PG_ARGISNULL(i) ? InvalidOid : PG_GETARG_OID(i);

		if (relid != ticket_rels[i])
			valid = false;
	}
	if (weakens_arg(fcinfo) != ticket_weakens)
		valid = false;
	ticket_lxid = InvalidLocalTransactionId;
	if (!valid)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("payymo's internal tenancy functions cannot be called directly"),
				 errhint("Call payymo.enable_tenancy(), payymo.disable_tenancy() or payymo.add_tenant_reference().")));
	PG_RETURN_VOID();
}

/*
 * Become the owner of relid, in a security-restricted operation (no SET
 * ROLE, no temporary objects, ...), optionally exempt from FORCE ROW LEVEL
 * SECURITY as PostgreSQL's own foreign-key checks are (SECURITY_NOFORCE_RLS),
 * in a new GUC nest level: the settings the table's own code changes are
 * undone on the way out, as index builds do.  Callers run their statements
 * in PG_TRY, call payymo_owner_restore_settings() after success and
 * payymo_owner_leave() in PG_FINALLY.
 */
void
payymo_owner_enter(PayymoOwnerScope *scope, Oid relid, bool bypass_force_rls)
{
	Oid			owner = table_owner(relid);

	GetUserIdAndSecContext(&scope->save_userid, &scope->save_sec_context);
	SetUserIdAndSecContext(owner,
						   scope->save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION |
						   (bypass_force_rls ? SECURITY_NOFORCE_RLS : 0));
	scope->save_nestlevel = NewGUCNestLevel();
}

/* After success: undo the settings.  On error the abort undoes them. */
void
payymo_owner_restore_settings(PayymoOwnerScope *scope)
{
	AtEOXact_GUC(false, scope->save_nestlevel);
}

/* Always, in PG_FINALLY: back to the caller's user id. */
void
payymo_owner_leave(PayymoOwnerScope *scope)
{
	SetUserIdAndSecContext(scope->save_userid, scope->save_sec_context);
}

static void
require_args(FunctionCallInfo fcinfo, int nargs, const char *names)
{
	int			i;

	for (i = 0; i < nargs; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", names)));
}

/*
 * payymo._as_table_owner(tbl regclass, command text,
 *						   bypass_force_rls boolean) RETURNS bigint
 *
 * Runs command as the owner of tbl (see payymo_owner_enter) and returns the
 * number of rows it processed.  The user id is restored on the way out;
 * on error, the (sub)transaction abort restores it too.  bypass_force_rls
 * is for validating keys, and for statements that name the tenant
 * themselves.
 */
Datum
payymo_as_table_owner(PG_FUNCTION_ARGS)
{
	char	   *command;
	PayymoOwnerScope scope;
	uint64		processed = 0;

	require_args(fcinfo, 3, "tbl, command and bypass_force_rls");
	command = text_to_cstring(PG_GETARG_TEXT_PP(1));

	payymo_owner_enter(&scope, PG_GETARG_OID(0), PG_GETARG_BOOL(2));
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(command, false, 0) < 0)
			elog(ERROR, "SPI_execute failed: %s", command);
		processed = SPI_processed;
		SPI_finish();
		payymo_owner_restore_settings(&scope);
	}
	PG_FINALLY();
	{
		payymo_owner_leave(&scope);
	}
	PG_END_TRY();

	pfree(command);
	PG_RETURN_INT64((int64) processed);
}
