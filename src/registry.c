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
 * TENANT_LOCK_BUCKETS locks, a few of which fit the lock table's default
 * 64 per connection; the price is that drop_tenant's short second pass
 * also waits for, and briefly holds up, the writers of the tenants sharing
 * its bucket (one in TENANT_LOCK_BUCKETS).  Once drop_tenant holds the
 * lock, its own transaction may write no row for the tenant either (the
 * tables' own triggers, fired by its deletes, would leave rows behind).
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
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "payymo.h"

PG_FUNCTION_INFO_V1(payymo_check_tenant_for_write);
PG_FUNCTION_INFO_V1(payymo_lock_tenant_for_drop);
PG_FUNCTION_INFO_V1(payymo_orphan_tenants);
PG_FUNCTION_INFO_V1(payymo_tenant_storage);

#define TENANT_LOCK_BUCKETS 256

/* The tenant this transaction last checked (and holds the bucket of). */
static LocalTransactionId locked_lxid = InvalidLocalTransactionId;
static PayymoTenantId locked_tenant = PAYYMO_NO_TENANT;

/* The tenant this transaction is dropping: no row may be written for it. */
static LocalTransactionId dropping_lxid = InvalidLocalTransactionId;
static PayymoTenantId dropping_tenant = PAYYMO_NO_TENANT;

/* Forget both at the end of every transaction (lxids repeat, eventually). */
static void
registry_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		locked_lxid = dropping_lxid = InvalidLocalTransactionId;
}

void
payymo_registry_init(void)
{
	RegisterXactCallback(registry_xact_callback, NULL);
}

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
payymo_registry_check_write(PayymoTenantId tenant, const char *relname)
{
	PayymoTenantRow row;

	if (locked_lxid == PAYYMO_MY_LXID && locked_tenant == tenant)
		return;
	if (dropping_lxid == PAYYMO_MY_LXID && dropping_tenant == tenant)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("cannot write rows of tenant " INT64_FORMAT " into table \"%s\"",
						tenant, relname),
				 errdetail("The tenant is being dropped in this transaction."),
				 errhint("A trigger that writes rows for the tenant whose rows are deleted must skip it while payymo.drop_tenant() runs.")));
	lock_tenant(tenant, AccessShareLock);
	if (!payymo_read_tenant(tenant, &row))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("cannot write rows of tenant " INT64_FORMAT " into table \"%s\"",
						tenant, relname),
				 errdetail("The tenant does not exist: it was dropped after the context was set."),
				 errhint("Set the context again.")));
	locked_lxid = PAYYMO_MY_LXID;
	locked_tenant = tenant;
}

/*
 * payymo._check_tenant_for_write(tenant_id bigint, tbl regclass) RETURNS void
 *
 * The row trigger's check, for enable_tenancy's back-fill of a new tenant
 * column (the table has no trigger yet).
 */
Datum
payymo_check_tenant_for_write(PG_FUNCTION_ARGS)
{
	payymo_registry_check_write(PG_GETARG_INT64(0), get_rel_name(PG_GETARG_OID(1)));
	PG_RETURN_VOID();
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
	dropping_lxid = PAYYMO_MY_LXID;
	dropping_tenant = PG_GETARG_INT64(0);
	PG_RETURN_VOID();
}

/*
 * A valid, non-partial, ascending btree index of rel whose first key column
 * is attnum with the built-in integer operators (what the scan keys below
 * compare with), or NULL.
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
			(index->rd_indoption[0] & INDOPTION_DESC) == 0 &&
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

/* Whether (relid, column) is a table under tenancy and its tenant column. */
static bool
is_registered(Oid relid, const char *column)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(column)};
	bool		found;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT FROM payymo.tenant_tables"
							  " WHERE relid OPERATOR(pg_catalog.=) $1"
							  " AND tenant_column::pg_catalog.text OPERATOR(pg_catalog.=) $2",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/* One entry of the set of tenant ids seen. */
typedef struct SeenTenant
{
	PayymoTenantId tenant;
} SeenTenant;

/*
 * The orphans of a table with no index led by its tenant column: every row
 * read, each tenant looked up once.
 */
static void
orphans_by_heap_scan(Relation rel, AttrNumber attnum, Oid typid, Snapshot snapshot,
					 ReturnSetInfo *rsinfo)
{
	HASHCTL		ctl = {0};
	HTAB	   *seen;
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	ctl.keysize = sizeof(PayymoTenantId);
	ctl.entrysize = sizeof(SeenTenant);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("payymo orphan scan", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		bool		found;
		Datum		value = slot_getattr(slot, attnum, &isnull);
		PayymoTenantId tenant;
		PayymoTenantRow row;

		if (isnull)
			continue;
		tenant = typid == INT8OID ? DatumGetInt64(value) : DatumGetInt32(value);
		(void) hash_search(seen, &tenant, HASH_ENTER, &found);
		if (!found && !payymo_read_tenant(tenant, &row))
		{
			Datum		out = Int64GetDatum(tenant);
			bool		nulls = false;

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &out, &nulls);
		}
		CHECK_FOR_INTERRUPTS();
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	hash_destroy(seen);
}

/*
 * payymo._orphan_tenants(tbl regclass, tenant_column name)
 * RETURNS SETOF bigint
 *
 * The tenant ids in tbl (a table with storage under tenancy, and its tenant
 * column) that payymo.tenants does not hold.  It reads every tenant's rows,
 * so it answers only superusers and members of payymo_admin (an empty set
 * for anyone else, and for tables not under tenancy: audit() calls it for
 * everybody), and reads the index -- or, without a usable one, the table --
 * directly, outside row level security.
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
	if ((!superuser() && !(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin))) ||
		!is_registered(relid, NameStr(*PG_GETARG_NAME(1))))
		PG_RETURN_VOID();

	rel = table_open(relid, AccessShareLock);
	attnum = get_attnum(relid, NameStr(*PG_GETARG_NAME(1)));
	typid = attnum > 0 ? get_atttype(relid, attnum) : InvalidOid;
	if (rel->rd_rel->relkind != RELKIND_RELATION || (typid != INT4OID && typid != INT8OID))
	{
		table_close(rel, AccessShareLock);
		PG_RETURN_VOID();
	}
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	if ((index = open_index_led_by(rel, attnum)) == NULL)
	{
		/* No index to walk: read the whole table. */
		orphans_by_heap_scan(rel, attnum, typid, snapshot, rsinfo);
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
		PG_RETURN_VOID();
	}

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

/* One registered table with storage, for tenant_storage(). */
typedef struct StorageTable
{
	Oid			relid;
	char	   *tenant_column;
} StorageTable;

/*
 * payymo.tenant_storage(sample_percent double precision DEFAULT 100)
 * RETURNS TABLE (tenant_id bigint, tbl regclass, rows bigint,
 *				  rows_stderr bigint, bytes bigint)
 *
 * Per registered table with storage: each tenant's rows (counted, or
 * scaled up from a TABLESAMPLE SYSTEM sample of the pages, with the
 * standard error rows * sqrt((1 - q) / k) for the fraction q and the k
 * sampled pages that hold the tenant's rows) and its share of the table's
 * size with indexes and TOAST.  Each table's query runs as the table's
 * owner, exempt from FORCE (it must count every tenant's rows), in a
 * security-restricted operation: planning it evaluates the owner's index
 * expressions and predicates, which must not run with the caller's rights.
 * SECURITY DEFINER (it reads payymo's registry), for payymo_admin.
 */
Datum
payymo_tenant_storage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	double		percent = PG_ARGISNULL(0) ? -1 : PG_GETARG_FLOAT8(0);
	double		q = percent / 100.0;
	List	   *tables = NIL;
	ListCell   *lc;
	MemoryContext outer = CurrentMemoryContext;
	uint64		i;

	if (!(percent > 0 && percent <= 100))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample_percent must be greater than 0 and at most 100")));
	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT r.relid, r.tenant_column::pg_catalog.text FROM payymo.tenant_tables r"
					" JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relid"
					" WHERE c.relkind OPERATOR(pg_catalog.=) 'r' ORDER BY r.relid",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed");
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext spi = MemoryContextSwitchTo(outer);
		StorageTable *t = palloc(sizeof(StorageTable));
		bool		isnull;

		t->relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 1, &isnull));
		t->tenant_column = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		t->tenant_column = pstrdup(t->tenant_column);
		tables = lappend(tables, t);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();

	foreach(lc, tables)
	{
		StorageTable *t = lfirst(lc);
		PayymoOwnerScope scope;
		Oid			argtypes[1] = {FLOAT8OID};
		Datum		args[1] = {Float8GetDatum(q)};
		char		sample[64] = "";
		char	   *query;

		if (q < 1)
			snprintf(sample, sizeof(sample), "TABLESAMPLE SYSTEM (%.6f)", percent);
		query = psprintf("SELECT s.tenant::pg_catalog.int8,"
						 " pg_catalog.round(s.n OPERATOR(pg_catalog./) $1)::pg_catalog.int8,"
						 " pg_catalog.round(s.n OPERATOR(pg_catalog./) $1 OPERATOR(pg_catalog.*)"
						 "   pg_catalog.sqrt((1 OPERATOR(pg_catalog.-) $1) OPERATOR(pg_catalog./) s.pages))::pg_catalog.int8,"
						 " pg_catalog.round(s.n OPERATOR(pg_catalog./) pg_catalog.sum(s.n) OVER ()"
						 "   OPERATOR(pg_catalog.*) pg_catalog.pg_total_relation_size(%u::pg_catalog.oid))::pg_catalog.int8"
						 " FROM (SELECT %s AS tenant, pg_catalog.count(*)::pg_catalog.float8 AS n,"
						 "  pg_catalog.count(DISTINCT (ctid::pg_catalog.text::pg_catalog.point)[0])::pg_catalog.float8 AS pages"
						 "  FROM ONLY %s %s GROUP BY 1) s",
						 t->relid, quote_identifier(t->tenant_column),
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(t->relid)),
													get_rel_name(t->relid)),
						 sample);

		payymo_owner_enter(&scope, t->relid, true);
		PG_TRY();
		{
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (SPI_execute_with_args(query, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "SPI_execute_with_args failed");
			for (i = 0; i < SPI_processed; i++)
			{
				Datum		values[5];
				bool		nulls[5] = {false};
				bool		isnull;

				values[0] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
				values[1] = ObjectIdGetDatum(t->relid);
				values[2] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &nulls[2]);
				values[3] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &nulls[3]);
				values[4] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4, &nulls[4]);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			SPI_finish();
			payymo_owner_restore_settings(&scope);
		}
		PG_FINALLY();
		{
			payymo_owner_leave(&scope);
		}
		PG_END_TRY();
		pfree(query);
	}
	PG_RETURN_VOID();
}
