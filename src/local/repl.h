/*
 * repl.h -- the replication seam of the local engine: what src/cluster
 * (Raft, issue 18) needs from a local storage, and nothing else of it.
 *
 * A storage with a replicator installed (sprig__storage_replicate) hands
 * every write command it accepts -- from the synchronous API, from
 * asynchronous submission (the server), from the key-value sweeper, the
 * admin changes (create and delete a database, register a schema), and
 * PubSub publishes (SPRIG__CMD_PUBLISH: ordered by Raft, stored nowhere) --
 * to the replicator instead of its writers.  The replicator proposes it
 * (raft_apply) and, once the entry is committed, applies it on every node
 * through sprig__storage_apply with `cmd->replicated` set (which bypasses
 * the seam) and `cmd->raft_index` set (which records the entry's index in
 * the same LMDB transaction as the command's effects).  The submitter's
 * done() fires after that local apply.
 *
 * Applied indexes: every environment (each database, and `_admin` for the
 * admin kinds) keeps in its meta table the index of the last entry applied
 * to it (key "raft.applied"); a database created by an entry starts at
 * that entry's index.  A restarted node skips an entry at or below the
 * index of the environment it targets: exactly once, per environment.
 * The "floor" (`_admin` meta "raft.floor", local to the node, never
 * replicated) is an index at or below which every entry is reflected in
 * the storage and durable: it is written when the node takes a snapshot
 * and after it restores one.
 *
 * Threads: all functions are safe from any thread unless said otherwise.
 */
#ifndef SPRIG_LOCAL_REPL_H
#define SPRIG_LOCAL_REPL_H

#include "core/cmd.h"

/** A replicator.  `submit` takes `cmd` (for database `db`; "" for the
 *  admin kinds), returns at once, and calls done(done_udata, rc, cmd)
 *  exactly once, never inside the call, after the command was committed
 *  by the group and applied locally (results in cmd->out) or failed (the
 *  detail recorded in the calling thread).  A negative return: refused
 *  now, done never called.  The command and what it points at stay the
 *  submitter's, alive until done. */
typedef struct sprig__repl {
    int (*submit)(void *udata, const char *db, struct sprig__cmd *cmd,
                  sprig__cmd_done done, void *done_udata);
    void *udata;
    /** A read barrier (linearizable reads; NULL: none): calls
     *  done(done_udata, rc) exactly once, never inside the call, when
     *  every write committed before the call is applied locally and this
     *  node confirmed it still leads (rc 0) -- or failed (SPRIG_ENOTLEADER
     *  on a follower, SPRIG_ETIMEDOUT when leadership was lost meanwhile,
     *  SPRIG_ECLOSED; the detail recorded in the calling thread).  A
     *  negative return: refused now, done never called. */
    int (*barrier)(void *udata, void (*done)(void *done_udata, int rc),
                   void *done_udata);
} sprig__repl;

/** The storage op read_barrier (core.h) of a local storage: the
 *  replicator's barrier, waited for; 0 at once without a replicator (or
 *  one without a barrier).  Never on the driver thread. */
int sprig__storage_read_barrier(sprig_storage *st);

/** Install `r` on local storage `st` (NULL removes it).  `r` must stay
 *  valid until removed.  Install before writes start; remove after they
 *  stopped (a write racing the change may take either path). */
void sprig__storage_replicate(sprig_storage *st, const sprig__repl *r);

/** Submit `cmd` through `r` and wait for its done (the synchronous path of
 *  the seam).  Never call it on the thread that drives the replicator. */
int sprig__repl_run(const sprig__repl *r, const char *db,
                    struct sprig__cmd *cmd);

/** Apply a (decoded) command to the storage: admin kinds through the admin
 *  writer, exactly as the API's own (the command's time, not the clock);
 *  PUBLISH to the subscribers of database `db` on this node (nothing is
 *  stored); the others to database `db` (opened as needed).  Waits.
 *  (Also declared in local.h for tests.) */
int sprig__storage_apply(sprig_storage *st, const char *db,
                         struct sprig__cmd *cmd);

/** Apply the `n` decoded TXN, KV or SWEEP commands `cmds`, in order, to
 *  database `db` in one batch of its writer (one LMDB transaction unless
 *  one of them fails: writer.c), and wait.  rcs[i] gets each command's
 *  outcome, errs[i] its detail (errs may be NULL).  Returns an error
 *  (SPRIG_ENOTFOUND, SPRIG_ENOMEM, storage errors) only when none of them
 *  ran; then rcs is not set.  (The batched applies of src/cluster/fsm.c.) */
int sprig__storage_apply_many(sprig_storage *st, const char *db,
                              struct sprig__cmd **cmds, size_t n, int *rcs,
                              sprig__errsave *errs);

/** The index of the last Raft entry applied to database `db` ("": the
 *  `_admin` environment); 0 when none, or the database does not exist.
 *  Storage errors. */
int sprig__storage_raft_applied(sprig_storage *st, const char *db,
                                uint64_t *out);

/** The largest applied index over `_admin` and every database. */
int sprig__storage_raft_applied_max(sprig_storage *st, uint64_t *out);

/** Read the node's floor (0: none). */
int sprig__storage_raft_floor(sprig_storage *st, uint64_t *out);
/** Make everything committed durable (every open database's log or LMDB
 *  flushed), then record `floor` in `_admin` durably.  Storage errors. */
int sprig__storage_raft_set_floor(sprig_storage *st, uint64_t floor);

/** A compacted copy of the storage in directory `dest` (created; must not
 *  exist): `_admin/data.mdb` and `db/<name>.<id>/data.mdb` for every
 *  registered database, directory names kept (a database's hash key lives
 *  in its environment; later directory ids derive from the registry, so
 *  they stay the same on every node).  Copies each environment at its last
 *  commit: the caller makes sure no replicated command commits meanwhile.
 *  An encrypted storage's copy holds its values sealed as they are, and a
 *  file `vault.id` with its vault's fingerprint (codec.h): only a storage
 *  holding the same vault can install it (sprig__storage_vault_check).
 *  The vault itself is never part of the copy.  SPRIG_EIO, storage
 *  errors. */
int sprig__storage_snapshot(sprig_storage *st, const char *dest);

/** Install the storage copy in directory `src` (laid out as
 *  sprig__storage_snapshot makes it: a Raft snapshot unpacked) into the
 *  open storage `st`, in place: `st`, every sprig_db handle, open changes
 *  feed, watch, subscriber and the key-value sweeper stay valid and see the
 *  copy's data from then on.  The rules:
 *   - a database open here whose directory the copy has (the same
 *     database: directory ids never repeat) gets the copy's contents in
 *     one write transaction of its own writer -- a read in flight keeps
 *     its snapshot, the next one sees the copy; no reader is waited for;
 *   - a database not open here gets the copy's directory moved in;
 *   - `_admin` goes last (its registry decides what exists); then a
 *     database open here that the copy does not have (deleted, or deleted
 *     and created again) is dropped: its handles answer SPRIG_ENOTFOUND
 *     "database 'x' was deleted" and its files go at their last close; a
 *     database only the copy has opens on demand; schemas are read again,
 *     the code of the program's C views kept (see sprig__storage_reload);
 *   - node-local meta keys stay: "wal.lsn" (the command log's position)
 *     and "raft.floor"; the copy's writes are not logged, a checkpoint of
 *     each environment makes them durable before this returns.
 *  The caller makes sure no replicated command applies meanwhile (the
 *  driver thread, between two applies); `src` is consumed (directories
 *  moved out of it).  Never on a thread a writer of `st` waits for.
 *  SPRIG_EIO, SPRIG_ENOMEM, storage errors (then the storage holds a mix
 *  of old and new databases: the caller must not go on applying). */
int sprig__storage_install(sprig_storage *st, const char *src);

/** Whether `st` can open what the copy in `src` sealed: the copy names no
 *  vault (unencrypted), or the same vault as `st`'s.  SPRIG_EAUTH naming
 *  both fingerprints otherwise (every node of an encrypted cluster needs
 *  copies of one vault: docs/cluster.md).  sprig__storage_install checks
 *  it first. */
int sprig__storage_vault_check(sprig_storage *st, const char *src);

/** Remove directory `dir` and everything below it (absent: nothing to
 *  do).  SPRIG_EIO. */
int sprig__repl_rmtree(const char *dir);

#endif /* SPRIG_LOCAL_REPL_H */
