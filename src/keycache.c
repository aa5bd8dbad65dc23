/*-------------------------------------------------------------------------
 *
 * keycache.c
 *	  A per-backend cache of verified API keys, for set_tenant's hot path.
 *
 * set_tenant reads the key's row and the tenant's row through their primary
 * keys on every call (apikey.c).  A backend that serves the same tenants
 * again and again -- every pooled connection -- can skip both reads: after
 * a key verified the full way, its id, stored hash, tenant, expiry and the
 * tenant's rate limit are kept here, stamped with a generation counter in
 * shared memory.
 *
 * Invalidation is the whole point.  Row triggers on payymo.api_key_store
 * and payymo.tenants (ENABLE ALWAYS, so that a superuser's
 * session_replication_role = replica and logical replication's apply
 * workers fire them too; TRUNCATE by a statement trigger) mark the
 * transaction, and when it commits -- after its changes became visible to
 * other backends -- the generation is incremented.  Changes that fire no
 * trigger -- the tables dropped and created again with the extension, a
 * restore, ALTER TABLE ... DISABLE TRIGGER -- invalidate the relations'
 * relcache entries, and a relcache callback empties this backend's cache.
 * A hot standby replays changes without running either, so nothing is
 * cached during recovery.  verify reads the
 * generation before it reads the rows it caches, so an entry stamped with
 * the current generation was read after the last committed change to keys
 * or tenants: revoking, expiring, deleting a key, suspending or dropping a
 * tenant, or changing its rate limit take effect at once in every backend,
 * as they did without the cache.  An expiry that simply arrives is checked
 * against the cached expires_at on every use.
 *
 * A transaction that changed keys or tenants neither uses nor fills the
 * cache until it ends: its own changes are visible to it before they are
 * counted.
 *
 * Only successes are served from the cache: a presented key whose secret
 * does not match a cached entry goes the full way, so a refusal takes the
 * same time whether or not its key id is cached (the key-probe property of
 * apikey.c).  Without shared_preload_libraries there is no generation, and
 * no cache.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include <sodium.h>

#include "keyformat.h"
#include "payymo.h"

PG_FUNCTION_INFO_V1(payymo_key_registry_changed);

#define KEY_CACHE_SLOTS 64

typedef struct KeyCacheShared
{
	pg_atomic_uint64 generation;
} KeyCacheShared;

typedef struct CachedKey
{
	bool		valid;
	uint64		generation;
	char		key_id[KEY_ID_CHARS];
	char		checksum[KEY_CHECKSUM_CHARS];	/* as verified */
	unsigned char hash[KEY_HASH_BYTES];
	PayymoCachedKey key;
} CachedKey;

static KeyCacheShared *shared = NULL;
static CachedKey cache[KEY_CACHE_SLOTS];

/* This transaction changed keys or tenants: bump the generation at commit. */
static bool changed_in_xact = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
keycache_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(KeyCacheShared)));
}

static void
keycache_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("payymo key cache", sizeof(KeyCacheShared), &found);
	if (!found)
		pg_atomic_init_u64(&shared->generation, 0);
	LWLockRelease(AddinShmemInitLock);
}

static void
keycache_xact_callback(XactEvent event, void *arg)
{
	if (!changed_in_xact)
		return;
	/* COMMIT PREPARED runs elsewhere, without this backend's callback. */
	if (event == XACT_EVENT_PRE_PREPARE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot PREPARE a transaction that changed payymo's API keys or tenants")));
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		pg_atomic_fetch_add_u64(&shared->generation, 1);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		changed_in_xact = false;
}

/* The relations entries were read from (InvalidOid: nothing cached). */
static Oid	watched[2] = {InvalidOid, InvalidOid};

/* A relcache invalidation of payymo's key or tenant table: forget all. */
static void
keycache_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(watched[0]))
		return;
	if (relid == InvalidOid || relid == watched[0] || relid == watched[1])
	{
		memset(cache, 0, sizeof(cache));
		watched[0] = watched[1] = InvalidOid;
	}
}

void
payymo_keycache_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	CacheRegisterRelcacheCallback(keycache_relcache_callback, (Datum) 0);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = keycache_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = keycache_shmem_startup;
	RegisterXactCallback(keycache_xact_callback, NULL);
}

static CachedKey *
slot_for(const char *key_id)
{
	uint32		h = 0;
	int			i;

	for (i = 0; i < KEY_ID_CHARS; i++)
		h = h * 31 + (unsigned char) key_id[i];
	return &cache[h % KEY_CACHE_SLOTS];
}

/*
 * The generation to stamp an entry with; read before the rows the entry is
 * made of.  0 without shared memory (nothing is cached then).
 */
uint64
payymo_keycache_generation(void)
{
	uint64		generation;

	if (shared == NULL)
		return 0;
	generation = pg_atomic_read_u64(&shared->generation);
	pg_read_barrier();
	return generation + 1;		/* never 0 */
}

/*
 * A cached verification of key (shaped; its checksum not checked yet) whose
 * hash is presented: true and *out filled only if the key's entry is of the
 * current generation, not expired at now, its stored hash equals presented
 * and its checksum characters are those of the key verified -- so the key
 * is exactly the one verified, checksum included.
 */
bool
payymo_keycache_lookup(const char *key, const unsigned char *presented,
					   TimestampTz now, PayymoCachedKey *out)
{
	CachedKey  *slot = slot_for(key + KEY_ID_OFFSET);

	/* This transaction's own changes are not counted yet: read them. */
	if (shared == NULL || changed_in_xact || RecoveryInProgress() || !slot->valid ||
		slot->generation != payymo_keycache_generation() ||
		memcmp(slot->key_id, key + KEY_ID_OFFSET, KEY_ID_CHARS) != 0 ||
		sodium_memcmp(slot->checksum, key + KEY_CHECKSUM_OFFSET, KEY_CHECKSUM_CHARS) != 0 ||
		sodium_memcmp(slot->hash, presented, KEY_HASH_BYTES) != 0 ||
		slot->key.expires_at <= now)
		return false;
	*out = slot->key;
	return true;
}

/*
 * Remember a key verified the full way, at generation (read before), from
 * the key table store_relid.
 */
void
payymo_keycache_store(const char *key, const unsigned char *hash, uint64 generation,
					  const PayymoCachedKey *entry, Oid store_relid)
{
	CachedKey  *slot = slot_for(key + KEY_ID_OFFSET);

	if (generation == 0 || changed_in_xact || RecoveryInProgress())
		return;
	if (watched[0] != store_relid)
	{
		memset(cache, 0, sizeof(cache));
		watched[0] = store_relid;
		watched[1] = get_relname_relid("tenants", get_rel_namespace(store_relid));
	}
	slot->valid = true;
	slot->generation = generation;
	memcpy(slot->key_id, key + KEY_ID_OFFSET, KEY_ID_CHARS);
	memcpy(slot->checksum, key + KEY_CHECKSUM_OFFSET, KEY_CHECKSUM_CHARS);
	memcpy(slot->hash, hash, KEY_HASH_BYTES);
	slot->key = *entry;
}

/* The key was touched: its last_used_at is now. */
void
payymo_keycache_touched(const char *key, TimestampTz now)
{
	CachedKey  *slot = slot_for(key + KEY_ID_OFFSET);

	if (slot->valid && memcmp(slot->key_id, key + KEY_ID_OFFSET, KEY_ID_CHARS) == 0)
		slot->key.last_used_at = now;
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
