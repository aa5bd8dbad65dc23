/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  The row trigger and the TRUNCATE guard of tables under tenancy.
 *
 * payymo.enable_tenancy() installs, on every table it puts under tenancy,
 *
 *	 payymo_stamp_tenant BEFORE INSERT OR UPDATE FOR EACH ROW
 *		 EXECUTE FUNCTION payymo.stamp_tenant('<tenant column>')
 *	 payymo_refuse_truncate BEFORE TRUNCATE FOR EACH STATEMENT
 *		 EXECUTE FUNCTION payymo.refuse_truncate()
 *
 * stamp_tenant() follows contrib/spi/moddatetime.c: it looks the column up
 * by name in the trigger's tuple descriptor (SPI_fnumber is a cheap linear
 * scan, so nothing is cached across calls and ALTER TABLE cannot leave a
 * stale cache behind) and replaces it with heap_modify_tuple_by_cols().
 *
 * It stamps the current tenant into an INSERT whose column is NULL, and
 * refuses an INSERT with another tenant's id and an UPDATE that changes the
 * column.  Row level security's WITH CHECK refuses the same rows for roles
 * subject to it; the trigger also covers roles that are not (COPY FROM by a
 * superuser, a trigger of the owner that runs earlier), and gives a clear
 * error instead of a policy violation.  Errors name the table and column,
 * never a row value or the other tenant's id.
 *
 * The first row a transaction writes for a tenant also locks the tenant and
 * checks that it still exists (registry.c): what a foreign key to
 * payymo.tenants did per row.
 *
 * With no tenant context the trigger fails closed with 42501, except for a
 * role that row level security does not apply to (superusers, BYPASSRLS)
 * writing a row whose tenant is already given: that is what pg_restore and
 * administrative data fixes do, and such roles are outside the threat model.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "payymo.h"

PG_FUNCTION_INFO_V1(payymo_stamp_tenant);
PG_FUNCTION_INFO_V1(payymo_refuse_truncate);

/* Read an integer or bigint tenant column as a tenant id. */
static inline PayymoTenantId
tenant_from_datum(Datum value, Oid typid)
{
	if (typid == INT4OID)
		return (PayymoTenantId) DatumGetInt32(value);
	return DatumGetInt64(value);
}

/* The current tenant as a Datum of the column's type. */
static Datum
tenant_to_datum(PayymoTenantId tenant, Oid typid, Relation rel,
				const char *colname)
{
	if (typid == INT8OID)
		return Int64GetDatum(tenant);
	if (tenant > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the current tenant id does not fit column \"%s\" of table \"%s\"",
						colname, RelationGetRelationName(rel)),
				 errhint("Change the column to bigint.")));
	return Int32GetDatum((int32) tenant);
}

static void
refuse_cross_tenant(Relation rel, const char *colname, PayymoTenantId tenant,
					bool is_update)
{
	payymo_security_event(PAYYMO_EVENT_CROSS_TENANT_WRITE, tenant, NULL);
	if (is_update)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot change column \"%s\" of table \"%s\"",
						colname, RelationGetRelationName(rel)),
				 errdetail("A row cannot move to another tenant.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot write another tenant's row into table \"%s\"",
					RelationGetRelationName(rel)),
			 errdetail("Column \"%s\" must be NULL or the current tenant.",
					   colname)));
}

/*
 * payymo.stamp_tenant() RETURNS trigger
 */
Datum
payymo_stamp_tenant(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	const char *colname;
	int			attnum;
	Oid			typid;
	Datum		newval;
	bool		newnull;
	bool		is_update;
	PayymoTenantId tenant;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "payymo.stamp_tenant: not called by trigger manager");
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		elog(ERROR, "payymo.stamp_tenant: must be fired before, for each row");

	trigger = trigdata->tg_trigger;
	rel = trigdata->tg_relation;
	tupdesc = rel->rd_att;

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtuple = trigdata->tg_trigtuple;
		is_update = false;
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtuple = trigdata->tg_newtuple;
		is_update = true;
	}
	else
		elog(ERROR, "payymo.stamp_tenant: must be fired for INSERT or UPDATE");

	if (trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("payymo.stamp_tenant() takes the tenant column's name as its only argument"),
				 errhint("Call payymo.enable_tenancy() to create the trigger.")));
	colname = trigger->tgargs[0];

	attnum = SPI_fnumber(tupdesc, colname);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no column \"%s\"",
						RelationGetRelationName(rel), colname),
				 errhint("Call payymo.enable_tenancy() again to repair the table.")));
	typid = SPI_gettypeid(tupdesc, attnum);
	if (typid != INT4OID && typid != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table \"%s\" must be integer or bigint",
						colname, RelationGetRelationName(rel))));

	newval = SPI_getbinval(newtuple, tupdesc, attnum, &newnull);

	if (is_update)
	{
		bool		oldnull;
		Datum		oldval = SPI_getbinval(trigdata->tg_trigtuple, tupdesc,
										   attnum, &oldnull);

		/* An unchanged column is the common case and needs no context. */
		if (oldnull == newnull &&
			(newnull || tenant_from_datum(oldval, typid) ==
			 tenant_from_datum(newval, typid)))
		{
			if (payymo_tenant == PAYYMO_NO_TENANT &&
				check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED)
				(void) payymo_require_tenant();
			return PointerGetDatum(newtuple);
		}
		refuse_cross_tenant(rel, colname, payymo_tenant, true);
	}

	tenant = payymo_tenant;
	if (tenant == PAYYMO_NO_TENANT)
	{
		/* See the header comment: restores by roles that bypass RLS. */
		if (!newnull &&
			check_enable_rls(RelationGetRelid(rel), InvalidOid, true) != RLS_ENABLED)
			return PointerGetDatum(newtuple);
		tenant = payymo_require_tenant();
	}

	if (newnull)
	{
		int			cols[1] = {attnum};
		Datum		vals[1];
		bool		nulls[1] = {false};

		vals[0] = tenant_to_datum(tenant, typid, rel, colname);
		newtuple = heap_modify_tuple_by_cols(newtuple, tupdesc, 1,
											 cols, vals, nulls);
	}
	else if (tenant_from_datum(newval, typid) != tenant)
		refuse_cross_tenant(rel, colname, tenant, false);

	payymo_registry_check_write(tenant, RelationGetRelationName(rel));
	return PointerGetDatum(newtuple);
}

/*
 * payymo.refuse_truncate() RETURNS trigger
 *
 * TRUNCATE ignores row level security and would empty every tenant's rows.
 */
Datum
payymo_refuse_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		elog(ERROR, "payymo.refuse_truncate: must be fired by TRUNCATE");

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot truncate table \"%s\" because it is under tenancy",
					RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("TRUNCATE ignores row level security and would remove every tenant's rows."),
			 errhint("Use DELETE, which removes only the current tenant's rows.")));
	PG_RETURN_NULL();
}
