/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Per-tenant statistics and rate limits in shared memory.
 *
 * Design (modelled on contrib/pg_stat_statements):
 *
 * One shared hash table maps (database, tenant id) to a TenantEntry -- tenant
 * ids are per database, as pg_stat_statements keys queries by dbid -- which
 * holds the tenant's counters (top-level statements, rows, execution time,
 * shared and temporary blocks and WAL as pg_stat_statements counts them,
 * denied and rate-limited attempts, last activity) and its token bucket.
 * The table lives in shared memory requested from shmem_request_hook, so it
 * exists only when payymo is in shared_preload_libraries; otherwise the SQL
 * functions raise 55000 and rate limits are not enforced (a WARNING says
 * so once per backend).  The table holds at most payymo.stats_max_tenants
 * entries; when it is full the least recently active 5% are evicted.
 * Nothing survives a restart, and nothing needs to.
 *
 * Locking, as in pg_stat_statements: the LWLock protects the hash table
 * itself.  Finding an entry and changing its counters needs the lock only
 * in shared mode, plus the entry's spinlock around the change, so backends
 * working for different tenants -- or the same one -- do not serialise on
 * an exclusive lock.  Creating, evicting and resetting entries take the
 * lock exclusively.  The token bucket is read, refilled and debited under
 * the entry's spinlock, so concurrent set_tenant() calls cannot lose an
 * update and a burst admits no more than the bucket holds.
 *
 * Statements are counted in the executor hooks, for the tenant whose
 * context is in force when the statement ends (so "SELECT set_tenant(...)"
 * counts for the tenant it sets).  Only top-level statements count: the
 * executor and utility hooks track the nesting level, so the SPI queries of
 * set_tenant() and the queries run inside functions, DO, CALL, COPY, CREATE
 * TABLE AS, EXPLAIN and SQL-level cursors do not add to the counts.
 * EXECUTE of a prepared statement counts like the statement itself.
 * Parallel workers do not count; their leader does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "access/xact.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "payymo.h"

#if PG_VERSION_NUM < 150000
#error "payymo needs PostgreSQL 15 or later (shmem_request_hook)"
#endif

#define STATS_SHMEM_NAME	"payymo tenant stats"
#define STATS_HASH_NAME		"payymo tenant stats hash"
#define STATS_TRANCHE_NAME	"payymo"

#define STATS_MAX_TENANTS_DEFAULT	10000
#define STATS_MAX_TENANTS_MIN		10
#define STATS_MAX_TENANTS_MAX		1000000

/* Percentage of entries evicted at once when the table is full. */
#define EVICT_PERCENT		5

/*
 * Columns of tenant_stats(): 0.1.0 had neither datid nor the buffer and WAL
 * counters, and showed one database.
 */
#define TENANT_STATS_COLS		16
#define TENANT_STATS_COLS_0_1	7

/* Hash key; zeroed before use, so the padding compares equal. */
typedef struct TenantKey
{
	PayymoTenantId tenant;
	Oid			dbid;
	uint32		pad;
} TenantKey;

/* One tenant's counters and token bucket. */
typedef struct TenantEntry
{
	TenantKey	key;			/* hash key; must be first */
	slock_t		mutex;			/* protects everything below */
	int64		statements;
	int64		rows;
	double		exec_time_ms;
	int64		shared_blks_hit;	/* buffer and WAL usage of the statements */
	int64		shared_blks_read;
	int64		shared_blks_dirtied;
	int64		shared_blks_written;
	int64		temp_blks_read;
	int64		temp_blks_written;
	int64		wal_records;
	uint64		wal_bytes;
	int64		denied;
	int64		rate_limited;
	TimestampTz last_activity;
	int32		bucket_rate;	/* rate the bucket is kept for; 0 = unused */
	double		tokens;
	TimestampTz refilled_at;
} TenantEntry;

typedef struct StatsSharedState
{
	LWLock	   *lock;			/* protects the hash table's structure */
	uint64		evictions;		/* entries removed so far; under lock */
} StatsSharedState;

/* Settings */
static int	stats_max_tenants = STATS_MAX_TENANTS_DEFAULT;
static bool track_stats = true;
static bool rate_limit_assume = false;

/* Shared memory, attached in shmem_startup; NULL without preload. */
static StatsSharedState *stats_shared = NULL;
static HTAB *stats_hash = NULL;

/*
 * The entry this backend used last: still the tenant's as long as no entry
 * was removed since (entries never move), which saves a look-up for the
 * statements after the first of a transaction.
 */
static TenantEntry *last_entry = NULL;
static PayymoTenantId last_tenant = PAYYMO_NO_TENANT;
static uint64 last_evictions = 0;

/* Nesting depth of executor and utility calls in this backend. */
static int	nesting_level = 0;

/* Whether this backend has warned that rate limits are not enforced. */
static bool warned_no_rate_limit = false;

/* Saved hook values */
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

PG_FUNCTION_INFO_V1(payymo_tenant_stats);
PG_FUNCTION_INFO_V1(payymo_tenant_stats_reset);

static Size
stats_memsize(void)
{
	return add_size(MAXALIGN(sizeof(StatsSharedState)),
					hash_estimate_size(stats_max_tenants, sizeof(TenantEntry)));
}

static void
stats_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(stats_memsize());
	RequestNamedLWLockTranche(STATS_TRANCHE_NAME, 1);
}

static void
stats_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	stats_shared = NULL;
	stats_hash = NULL;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	stats_shared = ShmemInitStruct(STATS_SHMEM_NAME, sizeof(StatsSharedState), &found);
	if (!found)
	{
		stats_shared->lock = &(GetNamedLWLockTranche(STATS_TRANCHE_NAME))->lock;
		stats_shared->evictions = 0;
	}

	info.keysize = sizeof(TenantKey);
	info.entrysize = sizeof(TenantEntry);
	stats_hash = ShmemInitHash(STATS_HASH_NAME, stats_max_tenants, stats_max_tenants,
							   &info, HASH_ELEM | HASH_BLOBS);

	LWLockRelease(AddinShmemInitLock);
}

static inline bool
stats_available(void)
{
	return stats_shared != NULL && stats_hash != NULL;
}

/* Count this statement?  Top level only, in the leader, when enabled. */
static inline bool
stats_enabled(int level)
{
	return level == 0 && track_stats && stats_available() && !IsParallelWorker();
}

static void
require_stats(void)
{
	if (!stats_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payymo must be loaded via \"shared_preload_libraries\" for tenant statistics"),
				 errhint("Add payymo to shared_preload_libraries in postgresql.conf and restart the server.")));
}

static int
entry_cmp_activity(const void *a, const void *b)
{
	TimestampTz ta = (*(TenantEntry *const *) a)->last_activity;
	TimestampTz tb = (*(TenantEntry *const *) b)->last_activity;

	return (ta > tb) - (ta < tb);
}

/*
 * Evict the least recently active entries.  Caller holds the lock
 * exclusively.  A bucket idle for a second or more is full again, so
 * evicting it loses nothing unless every entry was active that recently.
 */
static void
evict_least_active(void)
{
	HASH_SEQ_STATUS hash_seq;
	TenantEntry **entries;
	TenantEntry *entry;
	long		n = hash_get_num_entries(stats_hash);
	long		i = 0;
	long		nvictims;

	entries = palloc(n * sizeof(TenantEntry *));
	hash_seq_init(&hash_seq, stats_hash);
	while ((entry = hash_seq_search(&hash_seq)) != NULL)
		entries[i++] = entry;
	qsort(entries, i, sizeof(TenantEntry *), entry_cmp_activity);

	nvictims = Max(1, i * EVICT_PERCENT / 100);
	nvictims = Min(nvictims, i);
	while (nvictims-- > 0)
		hash_search(stats_hash, &entries[nvictims]->key, HASH_REMOVE, NULL);
	stats_shared->evictions++;
	pfree(entries);
}

/* Zero the counters (not the bucket or last activity); caller holds mutex. */
static inline void
zero_counters(TenantEntry *entry)
{
	entry->statements = 0;
	entry->rows = 0;
	entry->exec_time_ms = 0.0;
	entry->shared_blks_hit = 0;
	entry->shared_blks_read = 0;
	entry->shared_blks_dirtied = 0;
	entry->shared_blks_written = 0;
	entry->temp_blks_read = 0;
	entry->temp_blks_written = 0;
	entry->wal_records = 0;
	entry->wal_bytes = 0;
	entry->denied = 0;
	entry->rate_limited = 0;
}

/* entry_acquire's result, remembered; the caller holds the lock. */
static TenantEntry *
remember_entry(PayymoTenantId tenant, TenantEntry *entry)
{
	last_entry = entry;
	last_tenant = tenant;
	last_evictions = stats_shared->evictions;
	return entry;
}

/*
 * Find the entry of the tenant of this database, creating it if needed, and
 * return it with the hash lock held (shared or exclusive).  The caller
 * changes the entry under its spinlock and then releases the hash lock.
 */
static TenantEntry *
entry_acquire(PayymoTenantId tenant)
{
	TenantKey	key = {0};
	TenantEntry *entry;
	bool		found;

	key.tenant = tenant;
	key.dbid = MyDatabaseId;

	LWLockAcquire(stats_shared->lock, LW_SHARED);
	if (last_entry != NULL && last_tenant == tenant &&
		last_evictions == stats_shared->evictions)
		return last_entry;
	entry = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (entry != NULL)
		return remember_entry(tenant, entry);

	LWLockRelease(stats_shared->lock);
	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	entry = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (entry != NULL)
		return remember_entry(tenant, entry);

	while (hash_get_num_entries(stats_hash) >= stats_max_tenants)
		evict_least_active();
	entry = hash_search(stats_hash, &key, HASH_ENTER, &found);
	if (!found)
	{
		SpinLockInit(&entry->mutex);
		zero_counters(entry);
		entry->last_activity = GetCurrentTimestamp();
		entry->bucket_rate = 0;
		entry->tokens = 0.0;
		entry->refilled_at = 0;
	}
	return remember_entry(tenant, entry);
}

static void
count_statement(PayymoTenantId tenant, const Instrumentation *total, uint64 rows)
{
	TenantEntry *entry = entry_acquire(tenant);

	/* The statement's start time: no clock read on this path. */
	TimestampTz now = GetCurrentStatementStartTimestamp();

	SpinLockAcquire(&entry->mutex);
	entry->statements++;
	entry->rows += rows;
	entry->exec_time_ms += total->total * 1000.0;
	entry->shared_blks_hit += total->bufusage.shared_blks_hit;
	entry->shared_blks_read += total->bufusage.shared_blks_read;
	entry->shared_blks_dirtied += total->bufusage.shared_blks_dirtied;
	entry->shared_blks_written += total->bufusage.shared_blks_written;
	entry->temp_blks_read += total->bufusage.temp_blks_read;
	entry->temp_blks_written += total->bufusage.temp_blks_written;
	entry->wal_records += total->walusage.wal_records;
	entry->wal_bytes += total->walusage.wal_bytes;
	entry->last_activity = now;
	SpinLockRelease(&entry->mutex);

	LWLockRelease(stats_shared->lock);
}

/*
 * Count a refused attempt (a security event) attributed to a tenant.
 */
void
payymo_stats_count_denied(PayymoTenantId tenant)
{
	TenantEntry *entry;
	TimestampTz now;

	if (tenant == PAYYMO_NO_TENANT || !track_stats || !stats_available())
		return;

	entry = entry_acquire(tenant);
	now = GetCurrentTimestamp();
	SpinLockAcquire(&entry->mutex);
	entry->denied++;
	entry->last_activity = now;
	SpinLockRelease(&entry->mutex);
	LWLockRelease(stats_shared->lock);
}

/*
 * Take one token from the tenant's bucket, or raise 53400.  The bucket holds
 * at most rate_per_second tokens and refills continuously at that rate; a
 * rate <= 0 means unlimited.  for_assume: the call comes from assume_tenant(),
 * which is limited only when payymo.rate_limit_assume is on.
 */
void
payymo_rate_limit_check(PayymoTenantId tenant, int32 rate_per_second, bool for_assume)
{
	TenantEntry *entry;
	TimestampTz now;
	bool		admitted;

	if (rate_per_second <= 0 || (for_assume && !rate_limit_assume))
		return;

	if (!stats_available())
	{
		if (!warned_no_rate_limit)
		{
			warned_no_rate_limit = true;
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("payymo rate limits are not enforced"),
					 errdetail("payymo is not loaded via \"shared_preload_libraries\"."),
					 errhint("Add payymo to shared_preload_libraries in postgresql.conf and restart the server.")));
		}
		return;
	}

	entry = entry_acquire(tenant);
	now = GetCurrentTimestamp();

	SpinLockAcquire(&entry->mutex);
	if (entry->bucket_rate == 0)
		entry->tokens = rate_per_second;
	else if (now > entry->refilled_at)
		entry->tokens += (double) (now - entry->refilled_at) * rate_per_second / USECS_PER_SEC;
	entry->tokens = Min(entry->tokens, (double) rate_per_second);
	entry->bucket_rate = rate_per_second;
	entry->refilled_at = Max(now, entry->refilled_at);
	admitted = entry->tokens >= 1.0;
	if (admitted)
		entry->tokens -= 1.0;
	else if (track_stats)
		entry->rate_limited++;
	entry->last_activity = now;
	SpinLockRelease(&entry->mutex);

	LWLockRelease(stats_shared->lock);

	if (!admitted)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("rate limit exceeded for tenant " INT64_FORMAT, tenant),
				 errhint("The tenant may set a context at most %d times per second (payymo.tenants.rate_limit_per_second); retry later.",
						 rate_per_second),
				 errhidestmt(true)));
}

/*
 * Executor hooks: track the nesting level; time and count top-level
 * statements.
 */
static void
stats_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if (stats_enabled(nesting_level) && queryDesc->totaltime == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);

		queryDesc->totaltime = InstrAlloc(1, INSTRUMENT_TIMER | INSTRUMENT_BUFFERS |
										  INSTRUMENT_WAL, false);
		MemoryContextSwitchTo(oldcxt);
	}
}

/* PostgreSQL 18 dropped ExecutorRun's execute_once argument. */
#if PG_VERSION_NUM >= 180000
#define EXECUTOR_RUN_ARGS queryDesc, direction, count
static void
stats_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count)
#else
#define EXECUTOR_RUN_ARGS queryDesc, direction, count, execute_once
static void
stats_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
				  bool execute_once)
#endif
{
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(EXECUTOR_RUN_ARGS);
		else
			standard_ExecutorRun(EXECUTOR_RUN_ARGS);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
}

static void
stats_ExecutorFinish(QueryDesc *queryDesc)
{
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		nesting_level--;
	}
	PG_END_TRY();
}

static void
stats_ExecutorEnd(QueryDesc *queryDesc)
{
	PayymoTenantId tenant = payymo_tenant;

	if (tenant != PAYYMO_NO_TENANT && queryDesc->totaltime != NULL &&
		stats_enabled(nesting_level))
	{
		InstrEndLoop(queryDesc->totaltime);
		count_statement(tenant, queryDesc->totaltime, queryDesc->estate->es_processed);
	}

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * Utility statements raise the nesting level, so that what they run (DO,
 * CALL, COPY, CREATE TABLE AS, ...) is not counted as top-level statements;
 * EXECUTE does not, so a prepared statement counts like a plain one.
 */
static void
stats_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	bool		nest = !IsA(pstmt->utilityStmt, ExecuteStmt);

	if (nest)
		nesting_level++;
	PG_TRY();
	{
		payymo_next_ProcessUtility(prev_ProcessUtility, pstmt, queryString, readOnlyTree,
									   context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		if (nest)
			nesting_level--;
	}
	PG_END_TRY();
}

void
payymo_stats_init(void)
{
	DefineCustomBoolVariable("payymo.track_stats",
							 "Counts statements, rows and time per tenant in payymo.tenant_stats.",
							 "Needs payymo in shared_preload_libraries.",
							 &track_stats,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("payymo.rate_limit_assume",
							 "Applies tenants' rate limits to payymo.assume_tenant() too.",
							 NULL,
							 &rate_limit_assume,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("payymo.stats_max_tenants",
							"Maximum number of tenants tracked in shared memory.",
							"The least recently active tenants are evicted when the table is full.",
							&stats_max_tenants,
							STATS_MAX_TENANTS_DEFAULT,
							STATS_MAX_TENANTS_MIN,
							STATS_MAX_TENANTS_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = stats_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = stats_shmem_startup;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = stats_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = stats_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = stats_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = stats_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = stats_ProcessUtility;
}

/*
 * payymo.tenant_stats() RETURNS SETOF record
 *	 (datid, tenant_id, statements, rows, total_exec_time,
 *	  shared_blks_hit, shared_blks_read, shared_blks_dirtied,
 *	  shared_blks_written, temp_blks_read, temp_blks_written, wal_records,
 *	  wal_bytes, denied, rate_limited, last_activity)
 *
 * Every database's entries; the view payymo.tenant_stats shows the current
 * database's.  Installed as 0.1.0 declared it (seven columns: no datid, no
 * buffer or WAL counters), it returns the current database's entries only.
 */
Datum
payymo_tenant_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS hash_seq;
	TenantEntry *entry;
	bool		with_datid;

	require_stats();
	InitMaterializedSRF(fcinfo, 0);
	with_datid = rsinfo->setDesc->natts == TENANT_STATS_COLS;
	if (!with_datid && rsinfo->setDesc->natts != TENANT_STATS_COLS_0_1)
		elog(ERROR, "payymo.tenant_stats() returns an unexpected number of columns");

	LWLockAcquire(stats_shared->lock, LW_SHARED);
	hash_seq_init(&hash_seq, stats_hash);
	while ((entry = hash_seq_search(&hash_seq)) != NULL)
	{
		Datum		values[TENANT_STATS_COLS];
		bool		nulls[TENANT_STATS_COLS] = {0};
		TenantEntry copy;
		int			i = 0;

		if (!with_datid && entry->key.dbid != MyDatabaseId)
			continue;
		SpinLockAcquire(&entry->mutex);
		copy = *entry;
		SpinLockRelease(&entry->mutex);

		if (with_datid)
			values[i++] = ObjectIdGetDatum(copy.key.dbid);
		values[i++] = Int64GetDatum(copy.key.tenant);
		values[i++] = Int64GetDatum(copy.statements);
		values[i++] = Int64GetDatum(copy.rows);
		values[i++] = Float8GetDatum(copy.exec_time_ms);
		if (with_datid)
		{
			char		wal_bytes[32];

			values[i++] = Int64GetDatum(copy.shared_blks_hit);
			values[i++] = Int64GetDatum(copy.shared_blks_read);
			values[i++] = Int64GetDatum(copy.shared_blks_dirtied);
			values[i++] = Int64GetDatum(copy.shared_blks_written);
			values[i++] = Int64GetDatum(copy.temp_blks_read);
			values[i++] = Int64GetDatum(copy.temp_blks_written);
			values[i++] = Int64GetDatum(copy.wal_records);
			snprintf(wal_bytes, sizeof(wal_bytes), UINT64_FORMAT, copy.wal_bytes);
			values[i++] = DirectFunctionCall3(numeric_in, CStringGetDatum(wal_bytes),
											  ObjectIdGetDatum(0), Int32GetDatum(-1));
		}
		values[i++] = Int64GetDatum(copy.denied);
		values[i++] = Int64GetDatum(copy.rate_limited);
		values[i++] = TimestampTzGetDatum(copy.last_activity);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(stats_shared->lock);

	return (Datum) 0;
}

/*
 * payymo.tenant_stats_reset(tenant_id bigint DEFAULT NULL) RETURNS void
 *
 * Zeroes the counters of one tenant of the current database, or of all of
 * its tenants when tenant_id is NULL.  Entries, last activity and token
 * buckets are kept, so a reset never refills a rate-limited tenant's bucket.
 */
Datum
payymo_tenant_stats_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS hash_seq;
	TenantEntry *entry;
	bool		all = PG_ARGISNULL(0);
	PayymoTenantId tenant = all ? PAYYMO_NO_TENANT : PG_GETARG_INT64(0);

	require_stats();

	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&hash_seq, stats_hash);
	while ((entry = hash_seq_search(&hash_seq)) != NULL)
	{
		if (entry->key.dbid != MyDatabaseId || (!all && entry->key.tenant != tenant))
			continue;
		SpinLockAcquire(&entry->mutex);
		zero_counters(entry);
		SpinLockRelease(&entry->mutex);
	}
	LWLockRelease(stats_shared->lock);

	PG_RETURN_VOID();
}
