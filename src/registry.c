/*-------------------------------------------------------------------------
 *
 * registry.c
 *	  Rows of tables under tenancy belong to a tenant of payymo.tenants.
 *
 * payymo 0.1.0 kept that with a foreign key from every table under tenancy
 * to payymo.tenants.  Its check runs per row -- a query and a row lock on
 * the tenant's row -- and cost a third of a 100-row insert, although the
 * row trigger already makes every row's tenant the verified context, which
 * exists only for a tenant that existed when it was set.  What is left to
 * guard is time: a session-scoped context outlives a drop_tenant, and
 * drop_tenant may run while a transaction writes.  So, per transaction and
 * tenant,
 *
 *	 - the first row the trigger stamps takes a share lock on the tenant's
 *	   lock bucket (an object lock: classid payymo.tenants, objid the tenant
 *	   id modulo TENANT_LOCK_BUCKETS; it shows in pg_locks as such), held to
 *	   the end of the top transaction, and reads the tenant's row, which
 *	   must exist; the rows after it cost one comparison;
 *	 - drop_tenant deletes the tenant's rows, then takes the bucket's lock
 *	   exclusively and deletes again: it waits for the transactions writing
 *	   for the tenant, and its second pass (READ COMMITTED: a snapshot per
 *	   statement) sees what they committed, while writers that come later
 *	   find the tenant gone.
 *
 * Buckets, not one lock per tenant, so that a transaction writing for many
 * tenants (an administrator's loop under assume_tenant) holds at most
 * TENANT_LOCK_BUCKETS locks, well inside the lock table; the price is that
 * drop_tenant's short second pass also waits for, and briefly holds up, the
 * writers of the tenants sharing its bucket (one in TENANT_LOCK_BUCKETS).
 *
 * Rows that arrive around the trigger -- a superuser's COPY with
 * session_replication_role = replica, or a restore by a role that bypasses
 * row level security -- may name a tenant that does not exist.  audit()
 * finds them with payymo._orphan_tenants(), which walks the index led by
 * the tenant column one tenant at a time (a loose index scan: one descent
 * per distinct tenant, not a read of every row).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "payymo.h"

PG_FUNCTION_INFO_V1(payymo_lock_tenant_for_drop);
PG_FUNCTION_INFO_V1(payymo_orphan_tenants);

#define TENANT_LOCK_BUCKETS 1024

/* The tenant this transaction last checked (and holds the bucket of). */
static LocalTransactionId locked_lxid = InvalidLocalTransactionId;
static PayymoTenantId locked_tenant = PAYYMO_NO_TENANT;

/*
 * Lock tenant's bucket in mode until the end of the top transaction: the
 * lock belongs to the top transaction's resource owner, so rolling back a
 * subtransaction does not release it under a cached check.
 */
static void
lock_tenant(PayymoTenantId tenant, LOCKMODE mode)
{
	Oid			tenants = get_relname_relid("tenants", get_namespace_oid("payymo", false));
	ResourceOwner save = CurrentResourceOwner;

	if (!OidIsValid(tenants))
		elog(ERROR, "payymo: table payymo.tenants is missing");
	CurrentResourceOwner = TopTransactionResourceOwner;
	PG_TRY();
	{
		LockDatabaseObject(tenants, (Oid) ((uint64) tenant % TENANT_LOCK_BUCKETS), 0, mode);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = save;
	}
	PG_END_TRY();
}

/*
 * Called by the row trigger for each row it lets through for tenant: the
 * first time in a transaction, lock the tenant and check that it exists.
 */
void
payymo_registry_check_write(PayymoTenantId tenant, Relation rel)
{
	PayymoTenantRow row;

	if (locked_lxid == PAYYMO_MY_LXID && locked_tenant == tenant)
		return;
	lock_tenant(tenant, AccessShareLock);
	if (!payymo_read_tenant(tenant, &row))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("cannot write rows of tenant " INT64_FORMAT " into table \"%s\"",
						tenant, RelationGetRelationName(rel)),
				 errdetail("The tenant does not exist: it was dropped after the context was set."),
				 errhint("Set the context again.")));
	locked_lxid = PAYYMO_MY_LXID;
	locked_tenant = tenant;
}

/*
 * payymo._lock_tenant_for_drop(tenant_id bigint) RETURNS void
 *
 * Before drop_tenant's second pass (it runs at READ COMMITTED only: under a
 * transaction snapshot, the pass would miss what the writers it waited for
 * committed).
 */
Datum
payymo_lock_tenant_for_drop(PG_FUNCTION_ARGS)
{
	lock_tenant(PG_GETARG_INT64(0), AccessExclusiveLock);
	locked_lxid = InvalidLocalTransactionId;
	PG_RETURN_VOID();
}

/*
 * A valid, non-partial btree index of rel whose first key column is attnum
 * with the built-in integer operators (what the scan keys below compare
 * with), or NULL.
 */
static Relation
open_index_led_by(Relation rel, AttrNumber attnum)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);

		if (index->rd_rel->relam == BTREE_AM_OID &&
			index->rd_index->indkey.values[0] == attnum &&
			index->rd_opfamily[0] == INTEGER_BTREE_FAM_OID &&
			index->rd_index->indisvalid &&
			heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL))
		{
			list_free(indexes);
			return index;
		}
		index_close(index, AccessShareLock);
	}
	list_free(indexes);
	return NULL;
}

/*
 * payymo._orphan_tenants(tbl regclass, tenant_column name)
 * RETURNS SETOF bigint
 *
 * The tenant ids in tbl (a table with storage) that payymo.tenants does not
 * hold.  It reads every tenant's rows, so it answers only superusers and
 * members of payymo_admin (an empty set for anyone else: audit() calls it
 * for everybody), and reads the index directly, outside row level security.
 */
Datum
payymo_orphan_tenants(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid = PG_GETARG_OID(0);
	Oid			admin = get_role_oid("payymo_admin", true);
	Relation	rel;
	Relation	index;
	AttrNumber	attnum;
	Oid			typid;
	Snapshot	snapshot;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key;
	Datum		last = (Datum) 0;
	bool		started = false;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (!superuser() && !(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin)))
		PG_RETURN_VOID();

	rel = table_open(relid, AccessShareLock);
	attnum = get_attnum(relid, NameStr(*PG_GETARG_NAME(1)));
	typid = attnum > 0 ? get_atttype(relid, attnum) : InvalidOid;
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		(typid != INT4OID && typid != INT8OID) ||
		(index = open_index_led_by(rel, attnum)) == NULL)
	{
		/* Not a table with storage, or audit() reports the missing index. */
		table_close(rel, AccessShareLock);
		PG_RETURN_VOID();
	}

	snapshot = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
#if PG_VERSION_NUM >= 180000
	scan = index_beginscan(rel, index, snapshot, NULL, 1, 0);
#else
	scan = index_beginscan(rel, index, snapshot, 1, 0);
#endif
	for (;;)
	{
		PayymoTenantRow row;
		bool		isnull;
		Datum		value;
		PayymoTenantId tenant;

		/* The first entry after the last tenant seen: the next tenant. */
		if (typid == INT8OID)
			ScanKeyInit(&key, 1, started ? BTGreaterStrategyNumber : BTGreaterEqualStrategyNumber,
						started ? F_INT8GT : F_INT8GE, started ? last : Int64GetDatum(PG_INT64_MIN));
		else
			ScanKeyInit(&key, 1, started ? BTGreaterStrategyNumber : BTGreaterEqualStrategyNumber,
						started ? F_INT4GT : F_INT4GE, started ? last : Int32GetDatum(PG_INT32_MIN));
		index_rescan(scan, &key, 1, NULL, 0);
		if (!index_getnext_slot(scan, ForwardScanDirection, slot))
			break;
		value = slot_getattr(slot, attnum, &isnull);
		if (isnull)
			break;				/* NULLs sort last; the column is NOT NULL */
		tenant = typid == INT8OID ? DatumGetInt64(value) : DatumGetInt32(value);
		if (!payymo_read_tenant(tenant, &row))
		{
			Datum		out = Int64GetDatum(tenant);
			bool		nulls = false;

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &out, &nulls);
		}
		last = value;
		started = true;
		CHECK_FOR_INTERRUPTS();
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}
