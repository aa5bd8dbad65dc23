/*-------------------------------------------------------------------------
 *
 * keycache.c
 *	  A cache of verified API keys in shared memory, for set_tenant's hot
 *	  path.
 *
 * set_tenant reads the key's row and the tenant's row through their primary
 * keys on every call (apikey.c): two index descents and two heap pages,
 * which at 100,000 keys are mostly different pages for every call.  After a
 * key verified the full way, its id, stored hash, tenant, expiry and the
 * tenant's rate limit are kept here, in a table every backend shares, so
 * that the next call for that key from any backend -- a pooled connection
 * serving thousands of tenants, a new connection -- reads neither.
 *
 * The table is payymo.key_cache_size slots in buckets of four, placed by a
 * hash of the database, the key table's oid and the key id: a key cached
 * for one database (or an earlier copy of the extension) is never found for
 * another.  A bucket starts with its slots' fingerprints (more bits of the
 * same hash), so that a look-up reads that one cache line and then only the
 * slot whose fingerprint matches.  Readers take no lock: each slot carries
 * a change counter that a writer makes odd while it writes (a
 * compare-and-swap, so a second writer just skips), and a reader copies the
 * slot between two reads of the counter and ignores the copy unless both
 * were the same even number -- the protocol of PostgreSQL's own backend
 * status array.  The fingerprints are only hints: the copy's whole tag must
 * match.  A full bucket gives way to a stale slot, or else to each way in
 * turn.
 *
 * Invalidation is the whole point.  Row triggers on payymo.api_key_store
 * and payymo.tenants (ENABLE ALWAYS, so that a superuser's
 * session_replication_role = replica and logical replication's apply
 * workers fire them too; TRUNCATE by a statement trigger) mark the
 * transaction, and when it commits -- after its changes became visible to
 * other backends -- a generation counter in shared memory is incremented,
 * which makes every slot stale.  Changes that fire no trigger come with DDL
 * on the tables (ALTER TABLE ... DISABLE TRIGGER, dropping and creating
 * them), which invalidates their relcache entries: the relcache callback
 * increments the generation in every backend that sees the invalidation,
 * and in the backend that ran the DDL once more when its transaction
 * commits, after the rows it wrote with the trigger disabled became
 * visible.  (The tables are looked up before each utility statement, so
 * that the callback knows them in a session that never verified a key.)
 * Rows written with the trigger disabled by an earlier transaction than the
 * one that enables it again are seen from then on.  A hot standby replays
 * changes without running either, so nothing is cached during recovery.
 * verify reads the generation before it reads the rows it caches, so a slot
 * stamped with the current generation was read after the last committed
 * change to keys or tenants: revoking, expiring, deleting a key, suspending
 * or dropping a tenant, or changing its rate limit take effect at once in
 * every backend, as they did without the cache.  An expiry that simply
 * arrives is checked against the cached expires_at on every use.
 *
 * A transaction that changed keys or tenants neither uses nor fills the
 * cache until it ends: its own changes are visible to it before they are
 * counted.
 *
 * Only successes are served from the cache: a presented key whose secret
 * does not match a cached slot goes the full way, and a look-up compares a
 * slot whether or not the key id is cached, so a refusal takes the same
 * time either way (the key-probe property of apikey.c).  The slots hold
 * what the key table holds (hashes, never a key).  Without
 * shared_preload_libraries, or with payymo.key_cache_size = 0, nothing is
 * cached.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include <sodium.h>

#include "keyformat.h"
#include "payymo.h"

PG_FUNCTION_INFO_V1(payymo_key_registry_changed);

#define KEY_CACHE_WAYS 4
#define KEY_CACHE_SIZE_DEFAULT 10000
#define KEY_CACHE_SIZE_MAX 10000000

/* What a slot is found by. */
typedef struct KeyTag
{
	Oid			dbid;
	Oid			store;			/* payymo.api_key_store's oid */
	char		key_id[KEY_ID_CHARS];
} KeyTag;

typedef struct KeySlot
{
	pg_atomic_uint32 changes;	/* odd while being written */
	KeyTag		tag;
	uint64		generation;		/* 0: empty */
	char		checksum[KEY_CHECKSUM_CHARS];	/* as verified */
	unsigned char hash[KEY_HASH_BYTES];
	PayymoCachedKey key;
} KeySlot;

typedef struct KeyBucket
{
	uint32		fingerprint[KEY_CACHE_WAYS];	/* of each slot's tag; hints */
	KeySlot		slots[KEY_CACHE_WAYS];
} KeyBucket;

typedef struct KeyCacheShared
{
	/* Read by every call: a cache line of its own, never written by slots. */
	union
	{
		pg_atomic_uint64 value;
		char		pad[PG_CACHE_LINE_SIZE];
	}			generation;
	KeyBucket	buckets[FLEXIBLE_ARRAY_MEMBER];
} KeyCacheShared;

static int	key_cache_size = KEY_CACHE_SIZE_DEFAULT;
static uint32 buckets = 0;
static KeyCacheShared *shared = NULL;

/* This transaction changed keys or tenants: bump the generation at commit. */
static bool changed_in_xact = false;

/* This transaction saw a relcache invalidation of them: bump at commit too. */
static bool invalidated_in_xact = false;

/* The way a full bucket gives next, in turn. */
static uint32 next_way = 0;

/* This database's key and tenant tables (InvalidOid: not looked up yet). */
static Oid	watched[2] = {InvalidOid, InvalidOid};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static Size
keycache_memsize(void)
{
	return add_size(offsetof(KeyCacheShared, buckets), mul_size(buckets, sizeof(KeyBucket)));
}

static void
keycache_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(keycache_memsize());
}

static void
keycache_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("payymo key cache", keycache_memsize(), &found);
	if (!found)
	{
		uint32		i;
		int			way;

		pg_atomic_init_u64(&shared->generation.value, 0);
		for (i = 0; i < buckets; i++)
			for (way = 0; way < KEY_CACHE_WAYS; way++)
			{
				shared->buckets[i].fingerprint[way] = 0;
				pg_atomic_init_u32(&shared->buckets[i].slots[way].changes, 0);
				shared->buckets[i].slots[way].generation = 0;
			}
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
bump_generation(void)
{
	pg_atomic_fetch_add_u64(&shared->generation.value, 1);
}

static void
keycache_xact_callback(XactEvent event, void *arg)
{
	bool		commit = event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT;

	/* COMMIT PREPARED runs elsewhere, without this backend's callback. */
	if (changed_in_xact && event == XACT_EVENT_PRE_PREPARE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot PREPARE a transaction that changed payymo's API keys or tenants")));
	if (commit && (changed_in_xact || invalidated_in_xact))
		bump_generation();
	if (commit || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		changed_in_xact = invalidated_in_xact = false;
}

/* This database's key and tenant tables, looked up if not known yet. */
static void
watch_tables(void)
{
	Oid			nsp;

	if (OidIsValid(watched[0]))
		return;
	nsp = get_namespace_oid("payymo", true);
	watched[1] = get_relname_relid("tenants", nsp);
	watched[0] = get_relname_relid("api_key_store", nsp);
}

/* A relcache invalidation of the key or tenant table: every slot is stale. */
static void
keycache_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(watched[0]))
		return;
	if (relid == InvalidOid || relid == watched[0] || relid == watched[1])
	{
		bump_generation();
		if (IsTransactionState())
			invalidated_in_xact = true;
		watched[0] = watched[1] = InvalidOid;
	}
}

/* Before DDL, know the tables, so that the callback recognises them. */
static void
keycache_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	if (IsTransactionState())
		watch_tables();
	payymo_next_ProcessUtility(prev_ProcessUtility, pstmt, queryString, readOnlyTree,
								   context, params, queryEnv, dest, qc);
}

void
payymo_keycache_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("payymo.key_cache_size",
							"Number of verified API keys cached in shared memory.",
							"0 caches none.",
							&key_cache_size,
							KEY_CACHE_SIZE_DEFAULT,
							0,
							KEY_CACHE_SIZE_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	buckets = (key_cache_size + KEY_CACHE_WAYS - 1) / KEY_CACHE_WAYS;
	if (buckets == 0)
		return;

	CacheRegisterRelcacheCallback(keycache_relcache_callback, (Datum) 0);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = keycache_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = keycache_shmem_startup;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = keycache_ProcessUtility;
	RegisterXactCallback(keycache_xact_callback, NULL);
}

/*
 * The generation to stamp a slot with; read before the rows the slot is
 * made of.  0 without shared memory (nothing is cached then).
 */
uint64
payymo_keycache_generation(void)
{
	uint64		generation;

	if (shared == NULL)
		return 0;
	generation = pg_atomic_read_u64(&shared->generation.value);
	pg_read_barrier();
	return generation + 1;		/* never 0 */
}

/*
 * Key's bucket, with *tag and *fingerprint filled; NULL when nothing may be
 * cached or read from the cache now.  Looks up this database's key table
 * once per backend (again after a relcache invalidation of it).
 */
static KeyBucket *
bucket_for(const char *key, KeyTag *tag, uint32 *fingerprint)
{
	uint64		hash;

	/* This transaction's own changes are not counted yet: read them. */
	if (shared == NULL || changed_in_xact || RecoveryInProgress())
		return NULL;
	watch_tables();
	if (!OidIsValid(watched[0]))
		return NULL;
	memset(tag, 0, sizeof(*tag));
	tag->dbid = MyDatabaseId;
	tag->store = watched[0];
	memcpy(tag->key_id, key + KEY_ID_OFFSET, KEY_ID_CHARS);
	hash = hash_bytes_extended((const unsigned char *) tag, sizeof(*tag), 0);
	*fingerprint = (uint32) (hash >> 32) | 1;	/* 0: an empty slot */
	return &shared->buckets[(uint32) hash % buckets];
}

/* A consistent copy of slot into *copy, or false if it was being written. */
static bool
read_slot(KeySlot *slot, KeySlot *copy)
{
	uint32		before = pg_atomic_read_u32(&slot->changes);

	if (before & 1)
		return false;
	pg_read_barrier();
	memcpy(&copy->tag, &slot->tag, sizeof(KeySlot) - offsetof(KeySlot, tag));
	pg_read_barrier();
	return pg_atomic_read_u32(&slot->changes) == before;
}

/* Start writing slot: false if another backend is writing it. */
static bool
begin_write(KeySlot *slot)
{
	uint32		changes = pg_atomic_read_u32(&slot->changes);

	if ((changes & 1) ||
		!pg_atomic_compare_exchange_u32(&slot->changes, &changes, changes + 1))
		return false;
	pg_write_barrier();
	return true;
}

static void
end_write(KeySlot *slot)
{
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&slot->changes, 1);
}

/*
 * The way of bucket holding tag, or -1.  *copy is its consistent copy.
 */
static int
find_way(KeyBucket *bucket, const KeyTag *tag, uint32 fingerprint, KeySlot *copy)
{
	int			way;

	for (way = 0; way < KEY_CACHE_WAYS; way++)
		if (bucket->fingerprint[way] == fingerprint &&
			read_slot(&bucket->slots[way], copy) &&
			memcmp(&copy->tag, tag, sizeof(*tag)) == 0)
			return way;
	return -1;
}

/*
 * A cached verification of key (shaped; its checksum not checked yet) whose
 * hash is presented: true and *out filled only if the key's slot is of
 * generation (the current one, payymo_keycache_generation()), not expired
 * at now, its stored hash equals presented
 * and its checksum characters are those of the key verified -- so the key
 * is exactly the one verified, checksum included.
 */
bool
payymo_keycache_lookup(const char *key, const unsigned char *presented,
					   TimestampTz now, uint64 generation, PayymoCachedKey *out)
{
	KeyTag		tag;
	uint32		fingerprint;
	KeyBucket  *bucket = bucket_for(key, &tag, &fingerprint);
	KeySlot		copy;
	bool		found;
	bool		hit;

	if (bucket == NULL)
		return false;

	/*
	 * A key id not cached compares a slot all the same, so that a refusal
	 * does not tell which key ids some backend verified.
	 */
	found = find_way(bucket, &tag, fingerprint, &copy) >= 0;
	if (!found && !read_slot(&bucket->slots[0], &copy))
		memset(&copy, 0, sizeof(copy));
	hit = found &
		(copy.generation == generation) &
		(sodium_memcmp(copy.checksum, key + KEY_CHECKSUM_OFFSET, KEY_CHECKSUM_CHARS) == 0) &
		(sodium_memcmp(copy.hash, presented, KEY_HASH_BYTES) == 0) &
		(copy.key.expires_at > now);
	if (hit)
		*out = copy.key;
	sodium_memzero(copy.hash, sizeof(copy.hash));
	return hit;
}

/*
 * Remember a key verified the full way, at generation (read before), from
 * the key table store_relid.  Its own slot if it has one, else an empty or
 * stale one, else one the clock picks.
 */
void
payymo_keycache_store(const char *key, const unsigned char *hash, uint64 generation,
					  const PayymoCachedKey *entry, Oid store_relid)
{
	KeyTag		tag;
	uint32		fingerprint;
	KeyBucket  *bucket = bucket_for(key, &tag, &fingerprint);
	KeySlot    *slot;
	KeySlot		copy;
	uint64		current = payymo_keycache_generation();
	int			way;
	int			i;

	if (bucket == NULL || generation == 0 || tag.store != store_relid)
		return;
	way = find_way(bucket, &tag, fingerprint, &copy);
	sodium_memzero(copy.hash, sizeof(copy.hash));
	if (way >= 0 && copy.generation >= generation)
		return;					/* as new as this verification already */
	for (i = 0; way < 0 && i < KEY_CACHE_WAYS; i++)
		if (bucket->slots[i].generation != current)	/* a hint, read unlocked */
			way = i;
	if (way < 0)
		way = next_way++ % KEY_CACHE_WAYS;
	slot = &bucket->slots[way];
	if (!begin_write(slot))
		return;
	bucket->fingerprint[way] = fingerprint;
	slot->tag = tag;
	slot->generation = generation;
	memcpy(slot->checksum, key + KEY_CHECKSUM_OFFSET, KEY_CHECKSUM_CHARS);
	memcpy(slot->hash, hash, KEY_HASH_BYTES);
	slot->key = *entry;
	end_write(slot);
}

/* The key was touched: its last_used_at is now. */
void
payymo_keycache_touched(const char *key, TimestampTz now)
{
	KeyTag		tag;
	uint32		fingerprint;
	KeyBucket  *bucket = bucket_for(key, &tag, &fingerprint);
	KeySlot		copy;
	KeySlot    *slot;
	int			way;

	if (bucket == NULL || (way = find_way(bucket, &tag, fingerprint, &copy)) < 0)
		return;
	sodium_memzero(copy.hash, sizeof(copy.hash));
	slot = &bucket->slots[way];
	if (!begin_write(slot))
		return;
	if (memcmp(&slot->tag, &tag, sizeof(tag)) == 0)
		slot->key.last_used_at = now;
	end_write(slot);
}

/*
 * payymo._key_registry_changed() RETURNS trigger
 *
 * BEFORE UPDATE OF ... OR DELETE FOR EACH ROW, and BEFORE TRUNCATE FOR EACH
 * STATEMENT, on payymo.api_key_store and payymo.tenants: the cached keys of
 * every backend are invalidated when this transaction commits.
 */
Datum
payymo_key_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "payymo._key_registry_changed: not called by trigger manager");
	if (shared != NULL)
		changed_in_xact = true;
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
						   trigdata->tg_newtuple : trigdata->tg_trigtuple);
}
