/*
 * local.h -- private interface of src/local, the embedded engine.
 *
 * The engine stores everything in LMDB: one environment per database plus
 * one for the storage's `_admin` registry.  Its pieces:
 *
 *   env.c      an LMDB environment: open with the durability mode, read
 *              transactions kept per thread, invisible map growth, error
 *              mapping
 *   hash.c     the content hash of documents and its per-database key
 *   writer.c   group commit: queued write requests of one database are
 *              applied by one leader (a synchronous submitter or the
 *              writer thread) in one LMDB transaction and answered after
 *              one durable commit; asynchronous submission
 *   wal.c      the command log: segments of checksummed records, one
 *              fdatasync per durable batch, torn tails cut at open
 *   ckpt.c     the durability scheme on top: LMDB without its own syncs,
 *              the LSN in each commit, checkpoints (a pinned snapshot and
 *              its saved meta page), restore and replay after a crash
 *   cmd_apply.c  write commands (src/core/cmd.h) on a database: dispatch,
 *              running one through the writer (sync or async), the log
 *   cmd_admin.c  admin commands on the `_admin` environment
 *   storage.c  the storage: directory lock, registry of databases and
 *              schemas, create/delete/list, crash clean-up, handle refs
 *   db.c       a database engine (sprig__ldb) and its handles: the
 *              sprig_db_ops table, reads (get, list, count, log)
 *   docs.c     applying a TXN command's operations
 *   kv.c       the key-value store: tables, records, operations (kv.h)
 *   kv_expiry.c  its expiry index, and a housekeeper thread per database
 *              that sweeps expired keys and flushes lazy commits
 *   pubsub.c   the in-memory PubSub hub of a database and its subscribers
 *   backup.c   online backup (every database at one moment), restore into
 *              an empty storage, compaction in place (backup.h)
 *   install.c  a storage copy (a Raft snapshot) installed into an open
 *              storage in place: handles stay valid (repl.h)
 *   export.c   logical export and import as JSON lines
 *
 * Invariants:
 *  - Every LMDB transaction runs under the env's map lock held shared, or
 *    is a thread's reused read transaction in a FAST slot (env.c), which
 *    growth waits out; growing the map takes the lock exclusively, with
 *    no transaction active.
 *  - Only the current writer leader of a database opens write transactions
 *    on its environment.
 *  - A document value is [revision u64 BE][16-byte hash][contents]; the
 *    hash is keyed SipHash-128 (hash.c; BLAKE2b-128 in older databases).
 */
#ifndef SPRIG_LOCAL_H
#define SPRIG_LOCAL_H

#include "codec.h"
#include "core/core.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

/* ---- env.c ----------------------------------------------------------- */

struct sprig__rslot;

typedef struct sprig__env {
    MDB_env *env;
    char *path;
    pthread_rwlock_t map_lock;
    size_t map_size, max_map_size;
    pthread_mutex_t pool_lock;
    MDB_txn **pool;
    size_t pool_n, pool_cap;
    /* per-thread read transactions (env.c): a unique id (the env's address
     * may be reused after close), and the slots threads keep for this env
     * (guarded by env.c's global slot lock) */
    uint64_t id;
    struct sprig__rslot *slots;
    struct sprig__env *next_open; /* in env.c's list of envs with slots */
    atomic_ulong tables_gen;      /* bumped when tables are opened */
    atomic_int growing;       /* growths under way: reads take the map lock */
    struct sprig__ckpt *ckpt; /* the command log's state (ckpt.c), or NULL */
    /* how command-log records are sealed (a database with an encrypted
     * scope): set by db.c before the first write; NULL vault: plain */
    sprig__codec log_codec;
    const char *log_db; /* the database's directory name (the AD) */
    /* the disk reserve (env.c): 0 none (memory only), 1 held, 2 wanted
     * back; touched by the writer's commit step and at open only */
    int reserve;
    bool read_only; /* opened MDB_RDONLY: no write transaction, ever */
    /* the copy of the meta page (env.c, `meta.copy`): `keep_copy` when this
     * env writes one after every commit LMDB synced (a writable env without
     * a command log in full or normal: `_admin`), `seal` when at its close
     * too (ckpt.c clears it), the copy's file descriptor or -1 */
    bool seal, keep_copy;
    int copy_fd;
    /* the background verification (bgverify.c): the tables the open left
     * out, or NULL; `failed` once it found damage (every read and write
     * batch then fails) */
    struct sprig__bgv *bgv;
    atomic_bool failed;
} sprig__env;

/** How a data.mdb newer than its copy is judged (sprig__env_meta_check). */
enum {
    /** one commit may follow the copy (a crash before the copy was
     *  written, a writer outside Sprig): its id exactly one more, in the
     *  other slot, the copy's slot intact; anything newer is refused */
    SPRIG__META_NEXT = 0,
    /** any newer file is believed (the copy may be an older one: a damaged
     *  slot of the checkpoint may have held a newer one) */
    SPRIG__META_NEWER = 1,
};

/** The meta page LMDB will open (env.c; issue 17 item 3).  `page` is a
 *  copy (`psize` bytes) of LMDB's meta page of the last snapshot known
 *  durable: the command log's checkpoint after a clean close (wal/meta) or
 *  `_admin`'s `meta.copy` (written after each commit and at close).  Reads
 *  data.mdb's two meta pages and the one LMDB would pick (the higher id;
 *  nothing is done when either is not a meta page: LMDB refuses the file
 *  itself, MDB_INVALID, as before).  When it is not the copy (header and
 *  MDB_meta bytes, in the slot of the copy's id) -- a lowered or raised
 *  transaction id, swapped slots, a changed root -- writes `page` back
 *  into both slots (synced), so LMDB opens exactly the copy's snapshot; a
 *  newer file is accepted as `policy` says, else refused (the copy cannot
 *  put it right).  Call before LMDB opens `dir`, with no other user of it.
 *  Errors: SPRIG_ECORRUPT when data.mdb is missing or short, when refused,
 *  or when `read_only` and the page would have to be put back (naming the
 *  file and both ids); SPRIG_EIO / SPRIG_EFULL when the put back fails. */
int sprig__env_meta_check(const char *dir, const uint8_t *page, unsigned psize,
                          int policy, bool read_only);

/** After a commit LMDB synced (the writer's commit step without a command
 *  log): an env that keeps a copy of its meta page after every commit
 *  (`_admin` in full and normal) writes it, synced.  Nothing otherwise. */
void sprig__env_durable_commit(sprig__env *e);

/** Test seam: meta pages put back by sprig__env_meta_check in this
 *  process (any thread). */
unsigned long sprig__env_meta_restores(void);

/** Map an LMDB error to a Sprig code, recording `what` in the detail. */
int sprig__mdb_err(int mrc, const char *what);

/** The disk reserve: a file `reserve` of 256 KiB of allocated blocks
 *  beside data.mdb, made at open (if the disk has room).  On a full disk
 *  a batch that only removes data releases it and tries again, so a user
 *  can always free space by deleting; it is made again once the disk has
 *  room.  release: true when it was held (and is now given back).  make:
 *  best effort, only when wanted back.  Writer's commit step only. */
bool sprig__env_reserve_release(sprig__env *e);
void sprig__env_reserve_make(sprig__env *e);

/* ---- pagecheck.c: LMDB's page structure ------------------------------- */

/* What a verification walked. */
typedef struct sprig__verify_stats {
    uint64_t pages;      /* pages reached from the snapshot (metas too) */
    uint64_t tables;     /* named tables walked */
    uint64_t free_pages; /* pages the free list holds */
    uint64_t file_pages; /* the snapshot's last page + 1 */
    uint64_t skipped;    /* named tables left out (over the budget) */
} sprig__verify_stats;

/* At open, every environment is verified (sprig__env_open): its table
 * directory and free list whole, and its named tables whole while their
 * pages, in directory order, total at most this many bytes; a table that
 * would pass it is left to the integrity check (sprig_storage_check),
 * which verifies everything.  docs/reliability.md gives the cost. */
#define SPRIG__VERIFY_OPEN_BYTES (256ull << 20)

/** Verify LMDB's page structure of `e` as of read transaction `txn` (the
 *  caller's, kept open throughout): every page reached from its meta page
 *  -- the table directory, every named table with its duplicates, the
 *  free list -- checked (pagecheck.c lists what).  `max_bytes` 0: all;
 *  else named tables are walked while their recorded pages total at most
 *  that, the others skipped (counted in st->skipped; the free list is then
 *  not checked against the pages in use).  `st` (may be NULL) gets what
 *  was walked.  Reads the file through a map of its own.  Any thread.
 *  Errors: SPRIG_ECORRUPT naming the file, the table, the page and the
 *  damage (the first found), SPRIG_ENOMEM, SPRIG_EIO. */
int sprig__env_verify(sprig__env *e, MDB_txn *txn, uint64_t max_bytes,
                      sprig__verify_stats *st);

/* What sprig__env_verify_opts walks, beyond sprig__env_verify's budget. */
typedef struct sprig__verify_opts {
    uint64_t max_bytes; /* as sprig__env_verify's */
    /* non-NULL data: walk the table directory and this named table only
     * (not the free list; st->tables 0: no such table) */
    sprig_bytes only;
    /* asked every 256 pages walked (may be NULL): true stops the walk,
     * which then returns SPRIG__ESTOP (no message set).  Given, the walk
     * runs beside writers: when neither meta slot holds the transaction's
     * snapshot any more (two commits since it began), it returns
     * SPRIG__EMOVED (no message set) -- begin again -- not damage */
    bool (*stop)(void *arg);
    /* told each named table the budget leaves out (may be NULL) */
    void (*skipped)(void *arg, sprig_bytes name);
    void *arg;
} sprig__verify_opts;
#define SPRIG__ESTOP (-1010)
#define SPRIG__EMOVED (-1011)

/** sprig__env_verify() with options `o` (above); same errors, plus
 *  SPRIG__ESTOP when o->stop said so and SPRIG__EMOVED (above). */
int sprig__env_verify_opts(sprig__env *e, MDB_txn *txn,
                           const sprig__verify_opts *o,
                           sprig__verify_stats *st);

/* ---- bgverify.c: the tables past the open's budget ------------------- */

typedef struct sprig__bgv sprig__bgv;

/** The open's budget in bytes: SPRIG__VERIFY_OPEN_BYTES, or the
 *  environment variable SPRIG_VERIFY_OPEN_BYTES (read once per process;
 *  for tests and operators; 0 there: no named table at open). */
uint64_t sprig__verify_open_bytes(void);
/** Test seam: the open's budget from now on (0: no named table;
 *  UINT64_MAX: back to the default or the environment's). */
void sprig__verify_open_bytes_set(uint64_t bytes);
/** Test seam: sleep `ms` every 256 pages the background walks (0: no). */
void sprig__bgverify_slice_delay(unsigned ms);
/** Test seam: table walks a map growth interrupted (walked again), in
 *  this process. */
unsigned long sprig__bgverify_restarts(void);
/** The open's verification of `e` in snapshot `txn` (sprig__env_open):
 *  the budget's walk; the tables it leaves out are kept in e->bgv for
 *  sprig__env_bgverify_start.  Errors: those of sprig__env_verify. */
int sprig__env_verify_open(sprig__env *e, MDB_txn *txn);
/** Start walking the tables the open left out, in a thread of `e`'s own
 *  (nothing when none or started; NULL: nothing).  Call once the owner
 *  finished opening `e` (a failure found before would fail its open). */
void sprig__env_bgverify_start(sprig__env *e);
/** Stop the walk and join its thread (promptly: it asks every 256
 *  pages), freeing its state.  sprig__env_close's first step. */
void sprig__env_bgverify_stop(sprig__env *e);
/** SPRIG_ECORRUPT with the sentence of the damage that failed `e`. */
int sprig__env_failed_err(sprig__env *e);
/** The walk's result: 0 (clean, going on, or no walk), or its failure's
 *  code (SPRIG_ECORRUPT: damage; SPRIG_ENOMEM, SPRIG_EIO: not walked),
 *  its message set when `say`; *running whether it goes on.  Any
 *  thread, while `e` is open. */
int sprig__env_bgverify_result(sprig__env *e, bool *running, bool say);
/** Add the walk's progress to the counters (tables walked, tables left
 *  while it runs, pages walked). */
void sprig__env_bgverify_progress(sprig__env *e, uint64_t *tables,
                                  uint64_t *left, uint64_t *pages);

/** 0, or SPRIG_ECORRUPT when the background verification failed `e`
 *  (every read and write batch asks first; one relaxed load). */
static inline int
sprig__env_check(sprig__env *e)
{
    return atomic_load_explicit(&e->failed, memory_order_acquire)
               ? sprig__env_failed_err(e)
               : SPRIG_OK;
}

/** Open (creating) an environment in directory `dir`. */
int sprig__env_open(const char *dir, const sprig_storage_options *o,
                    unsigned maxdbs, sprig__env **out);
void sprig__env_close(sprig__env *e);

/** A read-only snapshot of the latest commit.  Holds the map lock shared
 *  until sprig__env_read_end().  Each thread keeps one transaction per
 *  environment, left open between reads and reused while no commit
 *  happened since (renewed otherwise); a second read on the same thread
 *  while the first is open, and reads ended on another thread, use the
 *  env's pool of reset transactions.  Errors: SPRIG_EBUSY (readers full),
 *  storage errors. */
int sprig__env_read_begin(sprig__env *e, MDB_txn **txn);
void sprig__env_read_end(sprig__env *e, MDB_txn *txn);
/** After a commit on `e`: reset the read transactions threads keep open
 *  between reads, so they pin no old snapshot (LMDB could not reuse the
 *  pages freed since).  Any thread; no lock of `e` needed. */
void sprig__env_committed(sprig__env *e);
/** After tables were opened on `e` (a commit that may have changed
 *  nothing): reads kept open must renew to use their handles.  Call with
 *  the map lock held (shared). */
void sprig__env_tables_opened(sprig__env *e);
/** Test seam: how many threads keep a read transaction for `e`. */
size_t sprig__env_read_slots(sprig__env *e);

/** Double the map (bounded by max_map_size).  Call with no transaction
 *  of this thread active.  SPRIG_EFULL at the bound. */
int sprig__env_grow(sprig__env *e, size_t seen_size, bool reserve);
/** EIO from a short write on a full disk becomes ENOSPC. */
int sprig__env_io_err(const char *dir, int mrc);

/** sprig__env_dbi_open's "error already set" result (SPRIG_ECORRUPT). */
#define SPRIG__MRC_REPORTED (-31999)
/** Open table `name` in write transaction `txn` of `e` (LMDB flags; with
 *  MDB_CREATE it is created if it was never created).  Each table created
 *  is recorded in the environment's `meta` table ("table:<name>"), in
 *  `txn`; a table missing from LMDB's table directory while its record
 *  exists (a flipped table name) sets SPRIG_ECORRUPT naming `e`'s path
 *  and the table and returns SPRIG__MRC_REPORTED.  Otherwise an LMDB code
 *  (MDB_NOTFOUND without MDB_CREATE).  A table found without a record
 *  gets one.  Open `meta` before other tables of a new environment. */
int sprig__env_dbi_open(sprig__env *e, MDB_txn *txn, const char *name,
                        unsigned flags, MDB_dbi *out);
/** Whether `meta` of `txn`'s environment records table `name` as created
 *  (so its absence is damage).  Any transaction; no error set. */
bool sprig__env_table_recorded(MDB_txn *txn, const char *name);
/** Open or create named databases in one write transaction (each through
 *  sprig__env_dbi_open; `meta` first; `meta` missing while the directory
 *  holds other tables is SPRIG_ECORRUPT). */
int sprig__env_open_dbis(sprig__env *e, const char *const *names, size_t n,
                         MDB_dbi *out);

/* ---- wal.c: the command log ------------------------------------------ */

/* Segment size where appends move to the next segment. */
#define SPRIG__WAL_SEG_BYTES (16u << 20)

typedef struct sprig__wal sprig__wal;

/** Called for each logged record during replay, in LSN order; `p` is
 *  borrowed until it returns.  A negative return stops the replay. */
typedef int (*sprig__wal_fn)(void *arg, uint64_t lsn, const uint8_t *p,
                             size_t n);

/** CRC-32C (Castagnoli) of `n` bytes. */
uint32_t sprig__crc32c(const void *data, size_t n);
/** Continue a CRC-32C: sprig__crc32c_update(0, all) equals
 *  sprig__crc32c(all), and it can be fed in pieces. */
uint32_t sprig__crc32c_update(uint32_t crc, const void *data, size_t n);

/** Open (creating) the log in `<dbdir>/wal` for a state that has applied
 *  every LSN up to `applied`: scans the segments, keeps the chain of valid
 *  records from `applied + 1`, recycles or unlinks the rest.  A torn or
 *  corrupt tail ends the chain (never an error).  `seg_bytes` 0: default.
 *  Errors: SPRIG_EIO, SPRIG_EFULL, SPRIG_ENOMEM.  Free with _close. */
int sprig__wal_open(const char *dbdir, uint64_t applied, size_t seg_bytes,
                    sprig__wal **out);
void sprig__wal_close(sprig__wal *w);
/** Call `fn` for each record of the chain with an LSN above `applied`.
 *  Before any append.  SPRIG_ECORRUPT if the files change meanwhile. */
int sprig__wal_replay(sprig__wal *w, uint64_t applied, sprig__wal_fn fn,
                      void *arg);
/** The LSN the next appended record gets. */
uint64_t sprig__wal_next_lsn(sprig__wal *w);
/** Append `n` records (each 1 byte to 2 GiB) with one write; *last_lsn is
 *  the last LSN given.  Not synced.  Writer thread only.  On error nothing
 *  of the batch stays in the log.  SPRIG_EIO, SPRIG_EFULL, SPRIG_ENOMEM. */
int sprig__wal_append(sprig__wal *w, const sprig_bytes *recs, size_t n,
                      uint64_t *last_lsn);
/** Undo the last append (whose first LSN is `first_lsn`): its records are
 *  zeroed (and synced if they were) and the LSNs handed out again.  For a
 *  commit that failed after its append.  Writer thread only. */
int sprig__wal_revert(sprig__wal *w, uint64_t first_lsn);
/** Make every appended record durable (one fdatasync; none when nothing
 *  is pending).  Any thread.  SPRIG_EIO. */
int sprig__wal_sync(sprig__wal *w);
/** Whether appended records await a sync. */
bool sprig__wal_unsynced(sprig__wal *w);
/** Retire the segments whose records are all at or below `upto` (kept as
 *  spares for reuse, or unlinked).  Checkpointer only. */
void sprig__wal_drop(sprig__wal *w, uint64_t upto);
/** Have a spare segment ready, so the first append need not create (and
 *  sync) a file.  Checkpointer or open.  SPRIG_EIO, SPRIG_EFULL. */
int sprig__wal_prepare(sprig__wal *w);
/** Forget every record: only when a checkpoint covers all of them (the
 *  commit step does it when the disk is full).  The current segment starts
 *  again at the next LSN (or waits as the one spare); every other segment
 *  and spare is unlinked, so their space returns.  Writer thread, commit lock
 * held.  SPRIG_EIO. */
int sprig__wal_reset(sprig__wal *w);
/** Test seam: syncs and appends so far, segments in the chain. */
void sprig__wal_stats(sprig__wal *w, uint64_t *syncs, uint64_t *appends,
                      size_t *segments);
/** fsync the directory `dir`, so that the names last created, renamed or
 *  removed in it are durable; 0 or an errno value.  Any thread (wal.c and
 *  ckpt.c both use it). */
int sprig__sync_dir(const char *dir);

/* ---- ckpt.c: the durability scheme ------------------------------------ */

typedef struct sprig__ckpt sprig__ckpt;

/* A sealed command-log record: this byte (never a command encoding's
 * version), the codec flags, then the sealed command (codec.h; location
 * kind 'l', the database's directory name). */
#define SPRIG__LOG_SEALED 0xC5u
/* A command-log record of a command applied from a Raft entry (cluster):
 * this byte, the entry's index (u64 big-endian), then the command.  Replay
 * records the index with the effects, as the first apply did, so Raft
 * does not apply the entry again after a crash (src/local/repl.h).  Inside
 * the sealed bytes when the record is sealed. */
#define SPRIG__LOG_RAFT 0xC6u
/* The same for a command with a request id (src/local/rid.c): this byte,
 * the index, the 16-byte request id, then the command.  Replay records the
 * id in the database's table as the first apply did; without it a node
 * recovering after kill -9 lost the ids applied since its last checkpoint
 * (its table no longer matched the other nodes', nor deduplicated a retry
 * of those requests). */
#define SPRIG__LOG_RAFT_RID 0xC7u

/** Apply one logged record inside `txn` during replay: 0, SPRIG__EMAPFULL
 *  (the map grows, it runs again) or another negative code, which stops
 *  the replay and fails the open (only commands that succeeded are logged,
 *  so one failing now means the state diverged: SPRIG_ECORRUPT). */
typedef int (*sprig__ckpt_apply_fn)(void *arg, MDB_txn *txn, const uint8_t *p,
                                    size_t n);

/** Open a database environment in `dir`.  With durability full or normal
 *  (not memory-only) LMDB runs with MDB_NOSYNC behind the command log:
 *  after an unclean shutdown the last checkpoint's meta page is restored
 *  first, and e->ckpt is set.  Otherwise the same as sprig__env_open().
 *  Then open the tables and call sprig__ckpt_recover() before writing. */
int sprig__ckpt_env_open(const char *dir, const sprig_storage_options *o,
                         unsigned maxdbs, sprig__env **out);
/** Replay the log past the LSN in LMDB through `fn` (one LMDB transaction
 *  per record), take the first checkpoint and start the checkpointer
 *  thread.  *replayed (may be NULL): records applied.  No-op without a
 *  log.  Errors: SPRIG_EIO, SPRIG_EFULL, SPRIG_ECORRUPT, SPRIG_ENOMEM. */
int sprig__ckpt_recover(sprig__env *e, sprig__ckpt_apply_fn fn, void *arg,
                        uint64_t *replayed);
/** The commit step of a write batch (writer thread): records the batch's
 *  last LSN in `meta` inside `txn`, appends `recs` (n may be 0: nothing
 *  logged) to the log, syncs it when `durable` (full mode; normal mode
 *  syncs on a 10 ms timer), then commits `txn`.  Always consumes `txn`.
 *  On any error nothing of the batch stays in the log or in LMDB.  Without
 *  a log: mdb_txn_commit.  Returns 0, SPRIG__EMAPFULL (grow and retry),
 *  SPRIG__ERETRY (a full disk, room made: apply and commit again; once
 *  by a checkpoint, and once more by the disk reserve when `frees`: the
 *  batch only removes data), SPRIG_EIO, SPRIG_EFULL, SPRIG_ENOMEM. */
int sprig__ckpt_commit(sprig__env *e, MDB_txn *txn, const sprig_bytes *recs,
                       size_t n, bool durable, bool frees);
/** The commit step of the writer's batch `batch` in `txn`: the encoded
 *  commands of its successful requests (rc 0, cmd set) go through
 *  sprig__ckpt_commit, durable unless every one of them is lazy.  Same
 *  contract and errors.  Writer leader only. */
struct sprig__wreq;
int sprig__ckpt_commit_batch(sprig__env *e, MDB_txn *txn,
                             struct sprig__wreq *batch);
/** Make everything committed so far durable: a log sync (or, without a
 *  log, mdb_env_sync).  For lazy flushes.  Any thread. */
int sprig__ckpt_flush(sprig__env *e);
/** A checkpoint now (tests; the writer at the map's size limit, to move
 *  the pin).  Any thread. */
int sprig__ckpt_now(sprig__env *e);
/** Whether `e` has a command log that is never synced on the way of a
 *  write (`none` durability): lazy commits leave nothing to flush there.
 *  False without a log.  Any thread. */
bool sprig__ckpt_never_syncs(const sprig__env *e);
/** Stop the checkpointer, take a last checkpoint and mark the shutdown
 *  clean (sprig__env_close calls it).  No writer may be active. */
void sprig__ckpt_close(sprig__env *e);

typedef struct sprig__ckpt_stats_t {
    uint64_t log_syncs, log_appends, checkpoints, ckpt_lsn;
    size_t segments;
} sprig__ckpt_stats_t;
/** Test seam: counters of the scheme (all 0 without a log). */
void sprig__ckpt_stats(sprig__env *e, sprig__ckpt_stats_t *out);

/* ---- writer.c -------------------------------------------------------- */

/** A write request.  `apply` runs inside an LMDB write transaction and may
 *  run more than once (after the map grows, or when its batch is re-run
 *  with nested children): it must only write through `txn` and overwrite
 *  its outputs each time.  Return 0 to keep its changes, a negative code to
 *  discard them (and fail the request). */
typedef struct sprig__wreq {
    int (*apply)(MDB_txn *txn, void *arg);
    void *arg;
    /* the command `apply` applies, logged when the batch commits (ckpt.c);
     * NULL for maintenance writes of derived data (view indexes), which
     * are not logged and are redone after a crash */
    const struct sprig__cmd *cmd;
    /* lazy: need not be on disk when answered.  A batch made only of lazy
     * requests commits without fsync (counted in writer.unsynced); zero
     * initialisation keeps every other request durable. */
    bool lazy;
    /* direct: in a batch, apply straight into the shared transaction (no
     * nested child).  If one fails, the batch is aborted and re-run with a
     * child per request, so a failure still discards only its own changes.
     * For rarely failing changes: key-value commands, sweeps, document
     * transactions. */
    bool direct;
    bool frees; /* only deletes: may use the reserve past the limit */
    /* asynchronous requests (sprig__writer_submit_async): called once
     * after the batch committed or failed, in the thread that led it (the
     * writer thread or a synchronous submitter), without the writer's lock;
     * the writer never touches the request after calling it. */
    void (*done)(struct sprig__wreq *req);
    int rc;
    bool finished; /* synchronous requests: answered */
    struct sprig__wreq *next;
    pthread_t thread;   /* who asked (for gathering) */
    sprig__errsave err; /* the failure detail, carried to the caller's
                           thread */
} sprig__wreq;

/** Internal code: LMDB's map is full; the writer grows it and retries. */
#define SPRIG__EMAPFULL (-1000)
/** Internal code: a direct request failed; re-run the batch with children. */
#define SPRIG__ESAFE (-1001)
/** Internal code: the commit step (ckpt.c) found the disk full and made
 *  room (a checkpoint moved the pinned snapshot, the log started over):
 *  the writer applies the batch once more. */
#define SPRIG__ERETRY (-1002)

#define SPRIG__GATHER_MAX 64

/** A test seam: told of every committed command, in commit order, by the
 *  thread that committed it (before the next batch of the same writer can
 *  commit).  `db` is the database's name, or "_admin". */
typedef void (*sprig__cmd_tap)(void *udata, const char *db,
                               const struct sprig__cmd *cmd);

typedef struct sprig__writer {
    sprig__env *env;
    sprig__cmd_tap tap; /* set before the first request, or NULL */
    void *tap_udata;
    const char *tap_name;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* synchronous submitters: a batch was answered */
    pthread_cond_t wake; /* the writer thread: requests wait, no leader */
    bool leader_active;
    sprig__wreq *head, *tail;
    atomic_ulong batches, requests; /* statistics */
    /* lazy requests committed without fsync since the flusher's last
     * sync (a durable commit syncs them too, but does not count); stays 0
     * in an env that never syncs */
    atomic_ulong unsynced;
    bool env_nosync; /* the env never syncs (durability NONE, memory) */
    /* gathering (writer.c): the threads of the last batch, how long its
     * commit took, and a condition a gathering leader waits on */
    pthread_t last_threads[SPRIG__GATHER_MAX];
    size_t n_last_threads;
    uint64_t last_commit_ns;
    pthread_cond_t gather;
    bool gathering;
    /* the writer thread, started by the first asynchronous request */
    pthread_t thread;
    bool thread_running, stop;
    /* changes feeds waiting for commits (changes.c) */
    pthread_mutex_t watch_lock;
    struct sprig__watch *watchers;
} sprig__writer;

/* ---- changes.c: wake-ups of changes feeds ------------------------------ */

/** Write 1 to the eventfd of every feed watching `w` (after a commit). */
void sprig__writer_notify(sprig__writer *w);
/** The db ops `watch` / `unwatch` of a local handle (core.h). */
int sprig__changes_watch(sprig_db *db, int *fd, void **token);
void sprig__changes_unwatch(sprig_db *db, void *token);

int sprig__writer_init(sprig__writer *w, sprig__env *env);
/** Stop the writer thread after it answered every queued request (a no-op
 *  when none was started); idempotent.  Call before the env goes. */
void sprig__writer_stop(sprig__writer *w);
/** Stop (sprig__writer_stop) and release. */
void sprig__writer_destroy(sprig__writer *w);
/** Apply `req` durably (per the env's durability); blocks until done: the
 *  calling thread waits, or leads the batch itself when no one else does
 *  (a lone writer pays no hand-off).  Returns req->rc, with the detail
 *  recorded in the calling thread. */
int sprig__writer_submit(sprig__writer *w, sprig__wreq *req);
/** Apply the `n` requests `reqs` as sprig__writer_submit does, queued
 *  together so that they commit in one batch (one LMDB transaction) when
 *  no one else leads; blocks until all are answered.  Each request's rc
 *  and err are set; nothing is recorded in the calling thread (the Raft
 *  state machine's batched applies, src/cluster/fsm.c). */
void sprig__writer_submit_many(sprig__writer *w, sprig__wreq **reqs, size_t n);
/** Queue `req` (req->done set) and return at once; req->done is called
 *  exactly once, later, from another thread (see sprig__wreq).  The
 *  request must stay valid until then.  SPRIG_ENOMEM when the writer
 *  thread cannot be started (then `done` is never called). */
int sprig__writer_submit_async(sprig__writer *w, sprig__wreq *req);
/** Hold the writer: wait until the batch being led (if any) is answered,
 *  then let no one lead -- requests queue -- until sprig__writer_resume().
 *  While held nothing commits on the writer's environment, so snapshots
 *  taken then on several databases belong to one moment (backup.c).  The
 *  caller must not itself submit to `w` meanwhile.  Any thread. */
void sprig__writer_pause(sprig__writer *w);
/** Let the writer lead again; queued requests are led at once. */
void sprig__writer_resume(sprig__writer *w);

/* ---- db.c: a database engine ----------------------------------------- */

typedef struct sprig__coll {
    char *name;
    sprig_id_kind id_kind;
    MDB_dbi dbi;
    sprig__codec codec;      /* its documents and view values (codec.h) */
    const uint8_t *hash_key; /* its revision hash key: the database's, or
                                the keyed one of an encrypted collection */
    uint32_t crc_start8;     /* sprig__codec_crc_start of its documents with
                                8-byte ids and flags SPRIG__CF_CRC (vloc) */
} sprig__coll;

typedef struct sprig__lstorage sprig__lstorage;

typedef struct sprig__ldb {
    char *name;
    char *dir;
    sprig_schema_def *schema; /* copy */
    sprig__env *env;
    MDB_dbi meta, log;
    sprig__coll *colls;
    size_t n_colls;
    sprig__writer writer;
    int refs;            /* handles; guarded by the storage lock */
    atomic_bool dropped; /* deleted: ops fail, files go at last close */
    sprig__lstorage *st;
    struct sprig__kv *kv;        /* key-value store (kv.c) */
    struct sprig__hub *hub;      /* PubSub hub (pubsub.c) */
    struct sprig__views *views;  /* views (views.c); NULL when none */
    uint8_t hash_key[16];        /* content hash key (hash.c) */
    uint8_t secret_hash_key[16]; /* encrypted collections' (vault.c) */
    const char *dir_name;        /* "<name>.<id>": values' location */
    sprig__vault *vault;         /* the storage's, or NULL */
    sprig__codec kv_codec;       /* key-value values */
    bool crc_all; /* created under format 3: every plaintext value has a
                     CRC, so flags 0 is damage (meta "crc", hash.c) */
} sprig__ldb;

/** The location of a value of `ldb` (codec.h). */
static inline sprig__vloc
sprig__ldb_loc(const sprig__ldb *ldb, char kind, const char *scope,
               sprig_bytes id)
{
    sprig__vloc l = {kind, ldb->dir_name, scope, id};
    l.crc_required = ldb->crc_all;
    return l;
}

/** Test seam: call `tap` for every command committed from now on, in every
 *  database opened from now on and the admin environment (set it right
 *  after opening the storage).  NULL stops. */
void sprig__storage_tap(sprig_storage *st, sprig__cmd_tap tap, void *udata);
/** Apply a (decoded) command to the storage: admin kinds through the admin
 *  writer, exactly as the API's own (the command's time, not the clock);
 *  the others to database `db` (opened as needed).  Waits. */
int sprig__storage_apply(sprig_storage *st, const char *db,
                         struct sprig__cmd *cmd);

/** Is `st` a local storage (this module's)? */
bool sprig__storage_is_local(const sprig_storage *st);

/** Open the engine of a database living in `dir` with `schema`. */
int sprig__ldb_open(sprig__lstorage *st, const char *name, const char *dir,
                    const sprig_schema_def *schema, sprig__ldb **out);
/** Close the environment and free; removes the files when dropped. */
void sprig__ldb_free(sprig__ldb *ldb);
/** The collection named `name`, or SPRIG_ESCHEMA. */
int sprig__ldb_coll(sprig__ldb *ldb, const char *name, sprig__coll **out);
/** Record "database deleted" (SPRIG_ENOTFOUND, kind DATABASE) and return
 *  the code. */
int sprig__ldb_gone(const sprig__ldb *ldb);
/** Whether the database behind a local handle was deleted (its handle can
 *  do nothing more).  For caches of handles, such as the server's. */
bool sprig__db_dropped(const sprig_db *db);
/** Test seam: group-commit statistics of the database behind a local
 *  handle (batches committed, requests answered). */
void sprig__db_writer_stats(sprig_db *db, uint64_t *batches,
                            uint64_t *requests);
/** A new handle on `ldb` (the caller already took a reference). */
int sprig__ldb_handle(sprig__ldb *ldb, bool owns_storage, sprig_db **out);
/** The engine behind a local handle. */
sprig__ldb *sprig__db_ldb(sprig_db *db);

/* meta keys: the push sequence of a collection, written only when its
 * largest id is deleted (the transaction id is the log's last key) */
#define SPRIG__META_SEQ "seq:" /* + collection name */

/** The id of the last logged transaction in `txn`'s snapshot (0: none):
 *  the log's last key. */
int sprig__last_txn_id(MDB_txn *txn, sprig__ldb *ldb, uint64_t *out);

/* ---- cmd_apply.c: commands (src/core/cmd.h) on a database ------------- */

struct sprig__cmd;
struct sprig__cmd_out;

/** The storage's clock (sprig_storage_options.clock_ms, or real time), in
 *  ms since the epoch: what a command accepted now carries. */
uint64_t sprig__ldb_now(const sprig__ldb *ldb);
/** The same, from a storage's options. */
uint64_t sprig__clock_now(const sprig_storage_options *o);

/** Append one log record (changes c[0..n), stamped `ts`) to log table
 *  `log` under the id after its last key, returned in *id.  `scratch`
 *  holds the encoding.  What a record says per kind:
 *   - documents: collection, id, revision, deleted (as always);
 *   - key-value changes (SPRIG__LOG_KV, the empty collection, which no
 *     collection can have): id = namespace, 0x00, key; revision 0;
 *     deleted when the change removed the key (delete, get-and-delete, a
 *     set with a past expiry, a sweep step: one record, a change per key);
 *   - admin changes, in the `_admin` environment's own log:
 *     collection SPRIG__LOG_DATABASE ("$database"), id = its name,
 *     revision = its directory id, deleted on delete; or
 *     SPRIG__LOG_SCHEMA ("$schema"), id = its name, revision 0.
 *  The record's bytes and the wire form of sprig_list_executed are the
 *  same as before: the collection field carries the kind. */
int sprig__log_write(MDB_txn *txn, MDB_dbi log, uint64_t ts,
                     const sprig_change *c, size_t n, sprig_buf *scratch,
                     uint64_t *id);
/** sprig__log_write of one change. */
int sprig__log_write1(MDB_txn *txn, MDB_dbi log, uint64_t ts, const char *what,
                      sprig_bytes id, uint64_t revision, bool deleted,
                      uint64_t *out);
#define SPRIG__LOG_KV ""
#define SPRIG__LOG_DATABASE "$database"
#define SPRIG__LOG_SCHEMA "$schema"

/** Apply one TXN, KV or SWEEP command inside write transaction `txn` of
 *  `ldb`'s environment (the writer's thread).  May run more than once for
 *  one command (after a map growth): it resets `out` first.  Reads no clock.
 *  Errors: the command's own (SPRIG_ECONFLICT, SPRIG_ENOTFOUND, ...),
 *  SPRIG__EMAPFULL, SPRIG_EINVAL for an admin command (those go to the
 *  storage: sprig__admin_apply). */
int sprig__cmd_apply(sprig__ldb *ldb, MDB_txn *txn,
                     const struct sprig__cmd *cmd, struct sprig__cmd_out *out);

/** Run `cmd` through `ldb`'s writer and wait until it is committed (per the
 *  durability) or failed; results in cmd->out.  The caller owns `cmd` and
 *  what it points at.  SPRIG_ENOTFOUND when the database was deleted. */
int sprig__ldb_run(sprig__ldb *ldb, struct sprig__cmd *cmd);
/** Run the `n` commands `cmds` through `ldb`'s writer in one batch (see
 *  sprig__writer_submit_many) and wait: rcs[i] and errs[i] (when errs is
 *  not NULL) get each one's outcome.  Returns SPRIG_ENOMEM (nothing run) or
 *  SPRIG_ENOTFOUND when the database was deleted, else SPRIG_OK. */
int sprig__ldb_run_many(sprig__ldb *ldb, struct sprig__cmd **cmds, size_t n,
                        int *rcs, sprig__errsave *errs);

/** The asynchronous form (sprig_db_ops.submit, whose comment in core.h
 *  gives the contract): queue `cmd` on `ldb`'s writer and return; `done`
 *  gets the outcome from another thread. */
int sprig__ldb_submit(sprig__ldb *ldb, struct sprig__cmd *cmd,
                      void (*done)(void *udata, int rc, struct sprig__cmd *c),
                      void *udata);

/** Record Raft index `idx` as applied in `ldb`'s environment (a database
 *  created by a replicated entry starts there).  Waits.  Storage errors. */
int sprig__ldb_mark_applied(sprig__ldb *ldb, uint64_t idx);

/** Compute the content hash of each writing op of a TXN command into
 *  cmd->hashes (allocated and owned by the command unless the caller set
 *  cmd->hashes to room for n_ops), in the calling thread.  SPRIG_ENOMEM. */
int sprig__cmd_hash(const sprig__ldb *ldb, struct sprig__cmd *cmd);

/* ---- docs.c ---------------------------------------------------------- */

#define SPRIG__DOC_HDR 24 /* revision + hash before the contents */

/** Apply transaction `t` to `ldb` through its writer (a TXN command). */
int sprig__docs_apply(sprig__ldb *ldb, const sprig_txn *t,
                      sprig_txn_result *res);
/** Apply a TXN command (sprig__cmd_apply does the dispatch).  A NULL
 *  out->txn means no result is wanted. */
int sprig__docs_apply_cmd(MDB_txn *txn, sprig__ldb *ldb,
                          const struct sprig__cmd *cmd,
                          struct sprig__cmd_out *out);
/** Parse a stored document value (or a view's `d` record, laid out the
 *  same way): the revision, hash, codec flags (the revision's top byte)
 *  and the stored payload, still encoded. */
int sprig__doc_parse(MDB_val *v, uint64_t *rev, const uint8_t **hash,
                     sprig_bytes *contents);
/** The codec flags of a stored document value (0 if malformed).  Inline:
 *  every read asks it. */
static inline uint8_t
sprig__doc_flags(const MDB_val *v)
{
    return v->mv_size >= SPRIG__DOC_HDR ? ((const uint8_t *)v->mv_data)[0] : 0;
}
/** Parse and decode the stored document of collection `c` with id `id`:
 *  *contents is in the map (plain) or in `scratch`.  Errors: those of
 *  sprig__doc_parse and sprig__codec_decode (SPRIG_EAUTH). */
int sprig__doc_read(const sprig__ldb *ldb, const sprig__coll *c, sprig_bytes id,
                    MDB_val *v, uint64_t *rev, const uint8_t **hash,
                    sprig_bytes *contents, sprig_buf *scratch);
/** Revisions stay below 2^56: the top byte of a stored one holds codec
 *  flags. */
#define SPRIG__REV_MASK 0x00ffffffffffffffull

/* ---- miss.c: a lookup's miss confirmed by its neighbours --------------- */

/** Check one record (key k, value v) against its own key: SPRIG_OK when it
 *  holds or cannot be checked (no CRC), SPRIG_ECORRUPT or SPRIG_EAUTH when
 *  it does not.  `scratch` is the caller's to use. */
typedef int (*sprig__miss_check_fn)(void *arg, const MDB_val *k, MDB_val *v,
                                    sprig_buf *scratch);

/** Where a lookup missed, for sprig__miss_confirm(). */
typedef struct sprig__miss_site {
    sprig__miss_check_fn check;
    void *arg;
    const char *where;    /* "database 'x', collection 'c'" */
    const char *key_kind; /* "document id", "key" ... */
} sprig__miss_site;

/** A lookup of key `k` in table `dbi` (not MDB_DUPSORT) found nothing:
 *  check the records just after and just before where k would be with
 *  s->check.  A key renamed in order (a flipped byte) sits exactly there,
 *  and its record then fails against its new key.  SPRIG_OK: the miss
 *  stands.  SPRIG_ECORRUPT naming s->where, the neighbour's key and `k`;
 *  other errors of s->check (SPRIG_ENOMEM) or LMDB's.  Any thread, in any
 *  transaction of `dbi`'s environment. */
int sprig__miss_confirm(MDB_txn *txn, MDB_dbi dbi, const MDB_val *k,
                        const sprig__miss_site *s);

typedef struct sprig__miss_doc {
    const sprig__ldb *ldb;
    const sprig__coll *c;
} sprig__miss_doc;

/** sprig__miss_confirm() for a document id `k` of collection `c`. */
int sprig__miss_doc_confirm(MDB_txn *txn, const sprig__ldb *ldb,
                            const sprig__coll *c, const MDB_val *k);

/* ---- hash.c ---------------------------------------------------------- */

#define SPRIG__HASH_KEY_LEN 16

/** The content hash of a document: keyed SipHash-128 (key: the database's
 *  ldb->hash_key).  Any thread; no errors. */
void sprig__doc_hash(const uint8_t key[SPRIG__HASH_KEY_LEN],
                     sprig_bytes contents, uint8_t out[16]);
/** Load the database's hash key into ldb->hash_key, creating it when the
 *  database has none: `want` (SPRIG__HASH_KEY_LEN bytes, e.g. carried by a
 *  replayed create-database command) or random bytes when NULL.  Call at
 *  open, before any write.  Errors: storage errors, SPRIG_ECORRUPT (a
 *  stored key of the wrong size), SPRIG_EFULL. */
int sprig__hash_key_load(sprig__ldb *ldb, const uint8_t *want);
/** The hash key of the database living in directory `dir`: a function of
 *  the directory's name alone, so every replay of its commands agrees. */
void sprig__hash_key_derive(const char *dir, uint8_t out[SPRIG__HASH_KEY_LEN]);

/* ---- storage.c ------------------------------------------------------- */

struct sprig__lstorage {
    sprig_storage base;
    sprig_storage_options opts;
    char *path;
    bool temp_dir; /* memory_only: remove the directory at close */
    int lock_fd;
    sprig__env *admin;
    sprig__writer admin_w; /* admin commands (cmd_admin.c) */
    bool admin_w_ready;
    MDB_dbi reg_dbs, reg_schemas, reg_meta, reg_log;
    /* test seam (sprig__storage_tap): every committed command */
    sprig__cmd_tap tap;
    void *tap_udata;
    /* the replicator (repl.h), or NULL: every write command goes to it */
    _Atomic(const struct sprig__repl *) repl;
    pthread_mutex_t lock;
    sprig_schema_def **schemas;
    size_t n_schemas;
    sprig__ldb **open;
    size_t n_open;
    int handles;  /* open sprig_db handles */
    bool closing; /* sprig_storage_close was called */
    /* the vault (vault.c) and the codec defaults, recorded in `_admin`
     * meta "codec" once on (storage.c) */
    sprig__vault *vault;
    bool encrypt_all;
    uint32_t compress_min; /* UINT32_MAX: no compression */
    char *passphrase;      /* copies of the options, for a late vault */
    char *key_file;
};

/** At open (storage_vault.c): check the storage format version (upgrade
 *  format 1, refuse a newer one: SPRIG_ESCHEMA naming both), merge the
 *  codec defaults, open the vault if there is one or encryption is on.
 *  Errors: SPRIG_ESCHEMA, SPRIG_EAUTH, SPRIG_EPERM, storage errors. */
int sprig__storage_format_open(sprig__lstorage *st,
                               const sprig_storage_options *o);
/** Release what sprig__storage_format_open() made (half-made too). */
void sprig__storage_format_close(sprig__lstorage *st);

/** The vault of `st`, made now (default key sources, from the options
 *  given at open) if it has none.  Storage lock held.  Errors: those of
 *  sprig__vault_open. */
int sprig__storage_vault(sprig__lstorage *st, sprig__vault **out);
/** Rotation (rotate.c): re-encrypt every value of database engine `ldb`
 *  sealed under a key other than the current one; *n counts them. */
int sprig__rotate_ldb(sprig__ldb *ldb, uint64_t *n);
/** The engine of database `name`, opened if needed (no reference taken).
 *  Call with st->lock held.  SPRIG_ENOTFOUND, SPRIG_ESCHEMA, storage
 *  errors. */
int sprig__storage_engine(sprig__lstorage *st, const char *name,
                          sprig__ldb **out);
/** Create a database by CREATE_DB command `c` as sprig_storage_create_
 *  database does, but call `fill(dir, arg)` first (when not NULL) to put
 *  files in its new directory before the engine opens it (a restore).
 *  st->lock held; the name must be free.  A failure after `fill` leaves a
 *  directory the registry does not name (removed at the next open). */
int sprig__storage_create_at(sprig__lstorage *st, struct sprig__cmd *c,
                             int (*fill)(const char *dir, void *arg),
                             void *arg);
/** Register the schema whose encoded record is `rec` (as `_admin` stores
 *  it) by a SCHEMA command.  A schema of that name already registered must
 *  accept it as a re-registration; a new one is taken as it is, C views
 *  without their code included (as an open loads it).  st->lock held.
 *  SPRIG_ECORRUPT, SPRIG_ESCHEMA, storage errors. */
int sprig__storage_put_schema(sprig__lstorage *st, sprig_bytes rec);

/** After `_admin` was replaced in place (install.c, st->lock held): load
 *  the schemas again, keeping the code of the C views the program had
 *  registered (a codeless view read back takes the code of the program's
 *  view of the same name when they match); drop the open engines whose
 *  database the registry no longer names at their directory (deleted, or
 *  deleted and created again: handles answer SPRIG_ENOTFOUND "database
 *  'x' was deleted", the next open finds the new one); close idle engines
 *  whose schema changed (they reopen with it).  Storage errors. */
int sprig__storage_reload(sprig__lstorage *st);

/** Drop one handle's reference on `ldb` (and on the storage). */
void sprig__storage_release(sprig__lstorage *st, sprig__ldb *ldb,
                            bool owns_storage);

/** Remove a directory and everything below it. */
int sprig__rmdir_tree(const char *dir);

/** Take one more reference on `ldb` (and on the storage), as a handle does;
 *  released by sprig__storage_release(st, ldb, false).  For objects that
 *  keep a database open, like PubSub subscribers. */
void sprig__storage_retain(sprig__lstorage *st, sprig__ldb *ldb);

/* ---- backup.c, export.c: backup, restore, export, import, compaction -- */

/** sprig_storage_ops.maintain of a local storage (sprig.h gives each
 *  job's contract). */
int sprig__storage_maintain(sprig_storage *s, sprig__maint_kind kind,
                            const char *arg, sprig_progress_fn cb, void *udata);

/* ---- cmd_admin.c: admin commands on `_admin` -------------------------- */

typedef struct sprig__reg_entry {
    char schema[SPRIG_NAME_MAX + 1];
    uint64_t dir_id;
} sprig__reg_entry;

/** A registry lookup of name `k` missed in `txn` (of `_admin`): SPRIG_OK
 *  when the neighbouring records hold against their names, else
 *  SPRIG_ECORRUPT naming the storage and both names (miss.c). */
int sprig__reg_miss_confirm(sprig__lstorage *st, MDB_txn *txn,
                            const MDB_val *k);
/** Parse the registry record of database `name`; SPRIG_ECORRUPT. */
int sprig__reg_decode(const char *name, const MDB_val *v, sprig__reg_entry *e);
/** Apply a CREATE_DB, DELETE_DB or SCHEMA command in a write transaction of
 *  the `_admin` environment (resets out's dir_id and log_id).  Errors:
 *  SPRIG_ENOTFOUND (deleting an unknown database), SPRIG_ECORRUPT,
 *  SPRIG__EMAPFULL, SPRIG_EINVAL for another kind. */
int sprig__admin_apply(sprig__lstorage *st, MDB_txn *txn,
                       const struct sprig__cmd *c, struct sprig__cmd_out *o);
/** Record Raft index `idx` as the last applied to the environment whose
 *  meta table is `meta`, inside `txn` (repl.h).  Storage errors. */
int sprig__raft_put_applied(MDB_txn *txn, MDB_dbi meta, uint64_t idx);
/** The replicator of `st`, or NULL when `cmd` bypasses it (or none). */
const struct sprig__repl *sprig__storage_repl(sprig__lstorage *st,
                                              const struct sprig__cmd *cmd);
/** Run an admin command through the storage's admin writer and wait. */
int sprig__admin_run(sprig__lstorage *st, struct sprig__cmd *cmd);

/* ---- kv.c, kv_expiry.c: the key-value store (private header kv.h) ---- */

typedef struct sprig__kv sprig__kv;

/** Open the store's tables and state into ldb->kv (called by
 *  sprig__ldb_open once the environment is open). */
int sprig__kv_open(sprig__ldb *ldb);
/** Stop its housekeeper thread and flush lazy commits; before the writer
 *  and the environment go.  Tolerates a store never opened. */
void sprig__kv_close(sprig__ldb *ldb);

/* sprig_db_ops entries (see core.h) */
int sprig__kv_op_set(sprig_db *db, const char *ns, const char *key,
                     const sprig_value *v, const sprig_kv_set_opts *so,
                     sprig_kv_status *status, sprig_value *previous);
int sprig__kv_op_get(sprig_db *db, const char *ns, const char *key,
                     bool and_delete, sprig_value *out);
int sprig__kv_op_incr(sprig_db *db, const char *ns, const char *key,
                      const sprig_value *amount, bool decrement,
                      bool saturating, sprig_value *out);
int sprig__kv_op_delete(sprig_db *db, const char *ns, const char *key,
                        sprig_kv_status *status);
int sprig__kv_op_list(sprig_db *db, const char *ns, const char *prefix,
                      const char *after, uint32_t limit,
                      sprig_kv_key_list **out);

/* Test seams. */
typedef struct sprig__kv_stats {
    uint64_t sweeps, swept;         /* sweep requests, keys removed */
    uint64_t flushes, flush_errors; /* lazy-mode syncs */
    uint64_t unsynced;              /* lazy requests not yet synced */
    uint64_t next_due;              /* the sweeper's next deadline */
    bool housekeeper;               /* its thread was started */
} sprig__kv_stats;
void sprig__kv_stats_get(sprig_db *db, sprig__kv_stats *out);
/** Sweep every due key now, in the calling thread. */
int sprig__kv_sweep_now(sprig_db *db, uint64_t *removed);
/** Make the housekeeper look at the clock now (after a test clock jump). */
void sprig__kv_wake(sprig_db *db);
/** Check the expiry index against the records (SPRIG_ECORRUPT) and count
 *  both tables, expired records included. */
int sprig__kv_verify(sprig_db *db, uint64_t *records, uint64_t *indexed);

/* ---- pubsub.c: the PubSub hub ----------------------------------------- */

typedef struct sprig__hub sprig__hub;
int sprig__hub_new(sprig__hub **out);
/** Free an empty hub (no subscriber left).  NULL is a no-op. */
void sprig__hub_free(sprig__hub *h);
/* sprig_db_ops entries */
int sprig__pubsub_subscriber_new(sprig_db *db, sprig_subscriber **out);
int sprig__pubsub_publish(sprig_db *db, const sprig_bytes *topics, size_t n,
                          sprig_bytes payload);
/** Deliver a committed PUBLISH command to this node's subscribers of
 *  database `ldb` (the apply side of a replicated publish; no stored
 *  state changes).  SPRIG_ENOTFOUND (the database was deleted),
 *  SPRIG_ENOMEM.  Any thread. */
int sprig__pubsub_apply(sprig__ldb *ldb, const struct sprig__cmd *cmd);
/** sprig_db_ops.replicated: does the handle's storage have a replicator
 *  (its writes, publishes included, wait for a Raft commit)? */
bool sprig__pubsub_replicated(const sprig_db *db);
/** Test seam: topics with subscribers, and live subscribers. */
void sprig__hub_counts(sprig_db *db, size_t *topics, size_t *subscribers);

#endif /* SPRIG_LOCAL_H */
