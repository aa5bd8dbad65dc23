/*-------------------------------------------------------------------------
 *
 * throttle.c
 *	  Throttling failed logins: token buckets in shared memory.
 *
 * A failed payymo.login() raises an error, which rolls its transaction
 * back, so the count of failures cannot live in a table: it lives here, in
 * a fixed-size hash in shared memory requested at preload.  Each bucket is
 * keyed by (database, a BLAKE2b-128 digest of what it limits) -- the digest
 * keeps emails out of shared memory and gives fixed-size keys -- and holds
 * up to "capacity" failures' worth of tokens, refilled at one token per
 * "refill_secs" seconds.  A failure takes a token; a login whose bucket is
 * empty is refused before any password is hashed.  Only failures take
 * tokens, so a user who types the password right is never charged.
 *
 * When the table is full, the bucket that has refilled the most (the least
 * recently failed) is evicted: a full bucket has no state worth keeping.
 * Locking is one LWLock in exclusive mode: logins are rare.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "payymo.h"

#define THROTTLE_HASH_NAME	"payymo login throttle"
#define THROTTLE_LOCK_NAME	"payymo_login_throttle"
#define THROTTLE_ENTRIES	10000
#define THROTTLE_DIGEST_BYTES 16

typedef struct ThrottleKey
{
	Oid			dbid;
	unsigned char digest[THROTTLE_DIGEST_BYTES];
} ThrottleKey;

typedef struct ThrottleEntry
{
	ThrottleKey key;
	double		tokens;
	TimestampTz refilled_at;
	int			capacity;
	int			refill_secs;
} ThrottleEntry;

static HTAB *throttle_hash = NULL;
static LWLock *throttle_lock = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
throttle_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(hash_estimate_size(THROTTLE_ENTRIES, sizeof(ThrottleEntry)));
	RequestNamedLWLockTranche(THROTTLE_LOCK_NAME, 1);
}

static void
throttle_shmem_startup(void)
{
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	info.keysize = sizeof(ThrottleKey);
	info.entrysize = sizeof(ThrottleEntry);
	throttle_hash = ShmemInitHash(THROTTLE_HASH_NAME, THROTTLE_ENTRIES, THROTTLE_ENTRIES,
								  &info, HASH_ELEM | HASH_BLOBS);
	throttle_lock = &(GetNamedLWLockTranche(THROTTLE_LOCK_NAME))->lock;
	LWLockRelease(AddinShmemInitLock);
}

void
payymo_throttle_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = throttle_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = throttle_shmem_startup;
}

/* Without preload there is no throttle, and so no login. */
void
payymo_throttle_require(void)
{
	if (throttle_hash == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payymo.login() needs payymo in shared_preload_libraries"),
				 errdetail("Failed logins are throttled in shared memory.")));
}

/*
 * A bucket for what (a kind of bucket) over parts (NULL-terminated; strings
 * cannot hold NUL, so NUL-separated parts are unambiguous).
 */
void
payymo_throttle_key(PayymoThrottle *bucket, const char *what, const char *const *parts,
					int capacity, int refill_secs)
{
	crypto_generichash_blake2b_state state;

	crypto_generichash_blake2b_init(&state, NULL, 0, THROTTLE_DIGEST_BYTES);
	crypto_generichash_blake2b_update(&state, (const unsigned char *) what, strlen(what) + 1);
	for (; *parts; parts++)
		crypto_generichash_blake2b_update(&state, (const unsigned char *) *parts,
										  strlen(*parts) + 1);
	crypto_generichash_blake2b_final(&state, bucket->digest, THROTTLE_DIGEST_BYTES);
	bucket->capacity = capacity;
	bucket->refill_secs = refill_secs;
}

/* The share of its capacity an entry holds now, after refilling. */
static double
refilled_share(const ThrottleEntry *entry, TimestampTz now)
{
	double		tokens = entry->tokens + (double) (now - entry->refilled_at) /
		((double) entry->refill_secs * USECS_PER_SEC);

	return Min(tokens / entry->capacity, 1.0);
}

/* Evict the entry that has refilled the most; called with the lock held. */
static void
evict_one(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	ThrottleEntry *entry;
	ThrottleKey victim;
	double		best = -1;

	hash_seq_init(&seq, throttle_hash);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		double		share = refilled_share(entry, now);

		if (share > best)
		{
			best = share;
			victim = entry->key;
		}
	}
	if (best >= 0)
		hash_search(throttle_hash, &victim, HASH_REMOVE, NULL);
}

/*
 * The bucket's tokens now, after refilling; with take, one token is taken
 * (a failure; the bucket is created if it was not there).  Without take a
 * missing bucket is full.  Called with the lock held.
 */
static double
bucket_tokens(const PayymoThrottle *bucket, TimestampTz now, bool take)
{
	ThrottleKey key;
	ThrottleEntry *entry;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	memcpy(key.digest, bucket->digest, THROTTLE_DIGEST_BYTES);
	entry = hash_search(throttle_hash, &key, take ? HASH_ENTER_NULL : HASH_FIND, &found);
	if (entry == NULL && take)
	{
		evict_one(now);
		entry = hash_search(throttle_hash, &key, HASH_ENTER_NULL, &found);
	}
	if (entry == NULL)
		return bucket->capacity;
	if (!found)
	{
		entry->tokens = bucket->capacity;
		entry->refilled_at = now;
	}
	entry->capacity = bucket->capacity;
	entry->refill_secs = bucket->refill_secs;
	entry->tokens = refilled_share(entry, now) * entry->capacity;
	entry->refilled_at = now;
	if (take)
		entry->tokens = Max(entry->tokens - 1.0, 0.0);
	return entry->tokens;
}

/*
 * Seconds until every bucket has a token again, or 0 when a failure is
 * still allowed now.
 */
int
payymo_throttle_wait(const PayymoThrottle *buckets, int n)
{
	TimestampTz now = GetCurrentTimestamp();
	double		wait = 0;
	int			i;

	LWLockAcquire(throttle_lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		double		tokens = bucket_tokens(&buckets[i], now, false);

		if (tokens < 1.0)
			wait = Max(wait, (1.0 - tokens) * buckets[i].refill_secs);
	}
	LWLockRelease(throttle_lock);
	return (int) ceil(wait);
}

/* A failure: take a token from every bucket. */
void
payymo_throttle_fail(const PayymoThrottle *buckets, int n)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	LWLockAcquire(throttle_lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
		(void) bucket_tokens(&buckets[i], now, true);
	LWLockRelease(throttle_lock);
}

/* A success: forget the failures counted in these buckets. */
void
payymo_throttle_forget(const PayymoThrottle *buckets, int n)
{
	ThrottleKey key;
	int			i;

	LWLockAcquire(throttle_lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
	{
		memset(&key, 0, sizeof(key));
		key.dbid = MyDatabaseId;
		memcpy(key.digest, buckets[i].digest, THROTTLE_DIGEST_BYTES);
		hash_search(throttle_hash, &key, HASH_REMOVE, NULL);
	}
	LWLockRelease(throttle_lock);
}
