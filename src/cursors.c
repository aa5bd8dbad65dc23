/*-------------------------------------------------------------------------
 *
 * cursors.c
 *	  Cursors declared WITH HOLD must not outlive their tenant context.
 *
 * A holdable cursor survives COMMIT with the rows it read, and any later
 * transaction on the same connection can FETCH them -- behind a pooler,
 * another tenant's client.  Row level security is not checked again at
 * FETCH.  So:
 *
 *	 - DECLARE ... WITH HOLD is refused while a transaction-scoped context
 *	   is in force: the cursor would outlive the context it read under.
 *	 - Every holdable cursor is recorded with the context it was declared
 *	   under (possibly none), and set_tenant()/assume_tenant() refuse to set
 *	   another tenant while such a cursor is still open.
 *
 * Cursors declared before the library was loaded in the session had no
 * context (only payymo sets one).  A ProcessUtility hook sees every
 * DECLARE, including those run through SPI; it is installed whenever the
 * library is loaded, with or without shared_preload_libraries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/portal.h"

#include "payymo.h"

typedef struct HeldCursor
{
	char	   *name;
	PayymoTenantId tenant;		/* the context it was declared under */
} HeldCursor;

/* HeldCursor entries, in TopMemoryContext; closed cursors are pruned lazily. */
static List *held_cursors = NIL;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static void
forget_cursor(const char *name)
{
	ListCell   *lc;

	foreach(lc, held_cursors)
	{
		HeldCursor *hc = (HeldCursor *) lfirst(lc);

		if (strcmp(hc->name, name) == 0)
		{
			held_cursors = foreach_delete_current(held_cursors, lc);
			pfree(hc->name);
			pfree(hc);
		}
	}
}

static void
remember_cursor(const char *name, PayymoTenantId tenant)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	HeldCursor *hc = palloc(sizeof(HeldCursor));

	forget_cursor(name);
	hc->name = pstrdup(name);
	hc->tenant = tenant;
	held_cursors = lappend(held_cursors, hc);
	MemoryContextSwitchTo(oldcxt);
}

static void
cursors_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	DeclareCursorStmt *declare = NULL;

	if (IsA(pstmt->utilityStmt, DeclareCursorStmt) &&
		(((DeclareCursorStmt *) pstmt->utilityStmt)->options & CURSOR_OPT_HOLD))
	{
		declare = (DeclareCursorStmt *) pstmt->utilityStmt;
		if (payymo_tenant != PAYYMO_NO_TENANT && payymo_tenant_is_local)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot declare a WITH HOLD cursor under a transaction-scoped tenant context"),
					 errdetail("The cursor would keep rows read for the tenant after its context ends."),
					 errhint("Declare the cursor without WITH HOLD, or set the tenant for the session with is_local => false.")));
	}

	payymo_next_ProcessUtility(prev_ProcessUtility, pstmt, queryString, readOnlyTree,
								   context, params, queryEnv, dest, qc);

	if (declare != NULL)
		remember_cursor(declare->portalname, payymo_tenant);
}

/*
 * Raise an error if a holdable cursor declared under another context than
 * the one about to be set is still open.
 */
void
payymo_cursors_check_switch(PayymoTenantId tenant)
{
	ListCell   *lc;

	foreach(lc, held_cursors)
	{
		HeldCursor *hc = (HeldCursor *) lfirst(lc);
		Portal		portal = GetPortalByName(hc->name);

		if (!PortalIsValid(portal) || (portal->cursorOptions & CURSOR_OPT_HOLD) == 0)
		{
			held_cursors = foreach_delete_current(held_cursors, lc);
			pfree(hc->name);
			pfree(hc);
			continue;
		}
		if (hc->tenant != tenant)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_CURSOR_STATE),
					 errmsg("cursor \"%s\" was declared WITH HOLD under another tenant context", hc->name),
					 errdetail("A holdable cursor keeps the rows it read, whatever context is set later."),
					 errhint("Close it (CLOSE, or DISCARD ALL) before setting another tenant.")));
	}
}

void
payymo_cursors_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = cursors_ProcessUtility;
}
