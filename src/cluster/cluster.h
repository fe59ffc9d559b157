/*
 * cluster.h -- a Sprig node of a Raft group (issue 18): the state machine
 * (struct raft_fsm) whose entries are the engine's write commands
 * (src/core/cmd.h), and the replication seam that sends every command a
 * storage accepts through raft_apply.  libraft 0.15 does consensus; this
 * module only gives it entries and applies what it commits.
 *
 * A node owns its local storage (opened from a path, so that restoring a
 * snapshot can replace it).  Once opened it installs itself as the
 * storage's replicator (src/local/repl.h): a write from any thread is
 * queued, handed to raft_apply by the thread that drives Raft (the
 * "driver": the libuv loop of raft_uv, or the test stepping raft_fixture),
 * and answered after the entry was committed by a majority and applied
 * locally.  On a node that is not the leader a write fails with
 * SPRIG_ENOTLEADER, detail "not the leader; leader is node N at URL" (URL:
 * the leader's client URL, sprig__cnode_set_url), or "not the leader; no
 * leader is known".  A write whose leader lost leadership before it
 * committed fails with SPRIG_ETIMEDOUT ("outcome unknown": it may still be
 * applied by the next leader).
 *
 * Entries: [0x53][version 2][origin node u64][proposal seq u64][db: len u8,
 * bytes][sprig__cmd_encode bytes][padding: 1..8 bytes, the last holding its
 * length], big-endian, a multiple of 8 bytes long as raft_uv requires.
 * On the origin node the submitter's own command is applied (its outputs
 * are wanted); elsewhere the decoded copy.  Apply stores the entry's index
 * with the effects (repl.h) and skips an entry at or below the index of the
 * environment it targets, so a restart applies each entry exactly once.
 *
 * Snapshots (fsm version 2): snapshot() is a compacted copy of every
 * environment of the storage (sprig__storage_snapshot) packed into one
 * buffer ([magic "SPRIGSN1"][last applied index u64] then per file
 * [path: len u16, bytes][size u64][bytes]); it also records the node's
 * floor.  restore() keeps the storage when its floor is at or past the
 * snapshot's index (a restart), else unpacks the copy beside the storage
 * and swaps it in (closing and reopening the storage: handles taken from
 * the old one are invalid afterwards).
 *
 * Threads: sprig__cnode_open/close from any one thread; submissions (the
 * storage's writes) from any thread; everything else, and every raft
 * callback, from the driver thread only.
 */
#ifndef SPRIG_CLUSTER_H
#define SPRIG_CLUSTER_H

#include "sprig/sprig.h"

#include <raft.h>

typedef struct sprig__cnode sprig__cnode;

/** Counters of a node (test seams and `cluster status`). */
typedef struct sprig__cnode_stats {
    uint64_t applied;         /* entries run through the storage */
    uint64_t failed;          /* of those, refused by the command's own
                                 outcome (a conflict...): no effect, and run
                                 again after a restart, refused again */
    uint64_t skipped;         /* entries at or below an applied index */
    uint64_t snapshots;       /* snapshots taken */
    uint64_t restored;        /* snapshots swapped in */
    uint64_t restore_kept;    /* snapshots whose index the floor covered */
    uint64_t proposed;        /* entries this node handed to raft_apply */
    uint64_t groups;          /* raft_apply calls for them (node.c: the
                                 writes queued together go in one) */
    uint64_t refused;         /* writes refused: not the leader */
    uint64_t barriers;        /* read barriers confirmed (linearizable
                                 reads) */
    uint64_t stale_publishes; /* PUBLISH entries from before the node
                                 started: not delivered (PubSub) */
    uint64_t batches;         /* apply batches committed (fsm.c), each one
                                 writer batch for several entries */
    uint64_t batched;         /* entries applied through them */
    uint64_t batch_max;       /* the most entries in one */
} sprig__cnode_stats;

/** Open the storage `o` describes (on disk; its options are copied) as
 *  node `id` (> 0) and install the replicator.  Errors: those of
 *  sprig_storage_open, SPRIG_EINVAL, SPRIG_ENOMEM.  Free with _close. */
int sprig__cnode_open(const sprig_storage_options *o, uint64_t id,
                      sprig__cnode **out);
/** The node's state machine, for raft_init (or raft_fixture_grow). */
struct raft_fsm *sprig__cnode_fsm(sprig__cnode *n);
/** The Raft instance driving the node (after raft_init, before it
 *  starts).  Driver thread. */
void sprig__cnode_attach(sprig__cnode *n, struct raft *r);
/** Called (from any thread) when a write was queued, to wake the driver
 *  (e.g. uv_async_send); NULL: the driver calls sprig__cnode_pump on its
 *  own.  Set before writes start. */
void sprig__cnode_set_wake(sprig__cnode *n, void (*wake)(void *), void *udata);
/** The client URL of node `id`, named by ENOTLEADER details.  Copied.
 *  SPRIG_ENOMEM.  Driver thread (or before the driver starts). */
int sprig__cnode_set_url(sprig__cnode *n, uint64_t id, const char *url);
/** Raft started (raft_start returned, its log loaded): a PUBLISH entry at
 *  or below the log's last index was written before this start and is
 *  not delivered to this node's subscribers when applied (PubSub
 *  delivers only messages committed while the node runs).  Driver
 *  thread. */
void sprig__cnode_started(sprig__cnode *n);
/** Hand queued writes to raft_apply (those queued together in one call),
 *  or fail them when this node is not the leader; fail the writes raft
 *  gave up on whose entry a lost leadership leaves unapplied (outcome
 *  unknown).  Call it on wake-ups and now and then (a timer).  Driver
 *  thread. */
void sprig__cnode_pump(sprig__cnode *n);
/** The storage (changes after a snapshot is swapped in).  Driver thread,
 *  or any thread while no snapshot can be restored. */
sprig_storage *sprig__cnode_storage(sprig__cnode *n);
/** Counters.  Driver thread. */
void sprig__cnode_stats_get(sprig__cnode *n, sprig__cnode_stats *out);
/** The node's id. */
uint64_t sprig__cnode_id(const sprig__cnode *n);
/** Fail every queued and in-flight write (SPRIG_ECLOSED), remove the
 *  replicator, close the storage and free.  Call after raft_close's
 *  callback fired (no raft callback may follow).  NULL is a no-op. */
void sprig__cnode_close(sprig__cnode *n);

#endif /* SPRIG_CLUSTER_H */
