/*
 * cluster_int.h -- private to src/cluster: the node's state, shared by
 * node.c (proposals, the replicator) and fsm.c (the state machine).
 */
#ifndef SPRIG_CLUSTER_INT_H
#define SPRIG_CLUSTER_INT_H

#include "cluster.h"
#include "core/cmd.h"
#include "core/core.h"
#include "local/repl.h"

#include <pthread.h>

#define SPRIG__ENTRY_MAGIC 0x53u
/* version 1 entries were unpadded, version 2 had no request-id part: read,
 * never written */
#define SPRIG__ENTRY_VERSION 3u
#define SPRIG__ENTRY_HDR 18u /* magic, version, origin, seq */
/* version 3: after the header [flags u8][request id 16 bytes, if flagged] */
#define SPRIG__ENTRY_RID 0x01u  /* the command carries a request id */
#define SPRIG__ENTRY_WANT 0x02u /* KV: the previous value is wanted */

/* A write on its way through the group. */
typedef struct sprig__prop {
    struct sprig__cnode *node;
    char db[SPRIG_NAME_MAX + 1];
    sprig__cmd *cmd;
    sprig__cmd_done done;
    void *udata;
    uint64_t seq;
    int rc; /* the local apply's outcome */
    bool applied;
    bool deferred;  /* in the apply batch, not committed yet (fsm.c) */
    bool raft_done; /* its group's raft_apply callback ran before the
                       entry's outcome was known: whoever settles the
                       entry answers it (fsm.c), or the orphan sweep
                       fails it (node.c) */
    uint64_t term;  /* the leader's term when proposed */
    struct sprig__prop *next;
    /* last and not zeroed (a few KB): set only when the write failed */
    sprig__errsave err;
} sprig__prop;

/* Several proposals handed to raft in one raft_apply (node.c): one
 * AppendEntries and one log write for all of them.  libraft calls the
 * request's callback once the FIRST entry is applied; each proposal is
 * answered when its own entry is applied. */
typedef struct sprig__pgroup {
    struct raft_apply req; /* req.data: this */
    struct sprig__cnode *node;
    size_t n;
    sprig__prop *props[];
} sprig__pgroup;

/* A read barrier's waiter (linearizable reads; node.c). */
typedef struct sprig__bar {
    void (*done)(void *udata, int rc);
    void *udata;
    struct sprig__bar *next;
} sprig__bar;

/* One raft_barrier, for every waiter queued when it was issued. */
typedef struct sprig__bargroup {
    struct raft_barrier req; /* req.data: this */
    struct sprig__cnode *node;
    sprig__bar *waiters;
} sprig__bargroup;

typedef struct sprig__url {
    uint64_t id;
    char *url;
} sprig__url;

struct sprig__cnode {
    uint64_t id;
    sprig_storage_options opts;
    char *path;
    sprig_storage *st;
    struct raft_fsm fsm;
    struct raft *raft;
    sprig__repl repl;
    void (*wake)(void *);
    void *wake_udata;
    /* writes queued by submitters, not yet handed to raft (lock) */
    pthread_mutex_t lock;
    sprig__prop *queue, *queue_tail;
    sprig__bar *bars;     /* read barriers queued (lock) */
    unsigned bars_issued; /* barriers handed to raft (driver thread) */
    uint64_t next_seq;
    /* the encoding buffer of entries (driver thread only, node.c) */
    sprig_buf enc;
    /* handed to raft, awaiting apply (driver thread only) */
    sprig__prop *pending;
    /* entries at or below this may have been applied before (repl.h) */
    uint64_t recovered_max;
    /* PubSub: a PUBLISH entry at or below this index was in the node's
     * storage or Raft log when it started, so it is old news: never
     * delivered (fsm.c; docs/cluster.md "PubSub across nodes") */
    uint64_t publish_floor;
    sprig__url *urls;
    size_t n_urls;
    sprig__cnode_stats stats;
    /* the apply batch (driver thread, fsm.c): consecutive command entries
     * of one database, committed in one writer batch at the end of the
     * apply round; props[i] is the proposal of cmds[i], or NULL when
     * cmds[i] was decoded (then owned here) */
    char batch_db[SPRIG_NAME_MAX + 1];
    sprig__cmd **batch_cmds;
    sprig__prop **batch_props;
    int *batch_rcs;
    sprig__errsave *batch_errs;
    size_t batch_n, batch_cap;
    bool wedged; /* a batch failed on this node: it applies nothing more */
};

/** Set up n->fsm (fsm.c). */
void sprig__fsm_init(sprig__cnode *n);
/** The pending write of this node with proposal number `seq`, or NULL;
 *  unlinked when `take`. */
sprig__prop *sprig__prop_find(sprig__cnode *n, uint64_t seq, bool take);
/** Answer a proposal whose entry was applied (p->rc, p->err): unlink it
 *  from the pending list and free it (node.c).  Driver thread. */
void sprig__prop_answer(sprig__prop *p);
/** Commit the apply batch (fsm.c): every entry of it applied, proposals
 *  answered.  0, or a RAFT_* error (the node is then wedged).  Driver
 *  thread. */
int sprig__fsm_flush(sprig__cnode *n);
/** Free the batch's arrays (after a flush). */
void sprig__fsm_fini(sprig__cnode *n);
/** Open n->st from n->opts and install the replicator (node.c). */
int sprig__cnode_storage_open(sprig__cnode *n);
/** Remove the replicator and close n->st. */
void sprig__cnode_storage_close(sprig__cnode *n);

/* ---- cluster operations (ops.c; cops) ---- */

/** The client URL of node `id`: the cluster file's, else the replicated
 *  record of `cluster add` (ops.c), cached; NULL when unknown.  Driver
 *  thread (node.c). */
const char *sprig__cnode_url(sprig__cnode *n, uint64_t id);
/** Record SPRIG_ENOTLEADER naming the leader (the words of cluster.h) and
 *  return it.  Driver thread (node.c). */
int sprig__cnode_not_leader(sprig__cnode *n);
/** The URL `cluster add` recorded for node `id` in database "_cluster"
 *  of `st` into `url`: SPRIG_OK, else SPRIG_ENOTFOUND.  Any thread. */
int sprig__ops_url_load(sprig_storage *st, uint64_t id, char *url, size_t cap);

/* The operations of a real node (runtime.c): the cluster.* APIs. */
typedef struct sprig__ops sprig__ops;
struct uv_loop_s;
struct sprig_server;
/** Make the operations of `node`.  SPRIG_ENOMEM.  Any thread. */
int sprig__ops_new(sprig__cnode *node, sprig__ops **out);
/** Take requests on `loop` (Raft's thread, before the loop runs). */
void sprig__ops_start(sprig__ops *s, struct uv_loop_s *loop, struct raft *r);
/** Fail queued requests (SPRIG_ECLOSED), take no more, close the async
 *  handle.  Raft's thread, before raft_close. */
void sprig__ops_stop(sprig__ops *s);
/** Is the node a member of its configuration, with what it knows applied
 *  (checked every 100 ms until it is)?  Any thread. */
bool sprig__ops_joined(sprig__ops *s);
/** Free (after the loop ended).  NULL: no-op. */
void sprig__ops_free(sprig__ops *s);
/** Register cluster.status, .add, .remove and .transfer on `srv`.  Errors:
 *  those of sprig_server_register_api_with().  Any thread. */
int sprig__ops_register(sprig__ops *s, struct sprig_server *srv);

#endif /* SPRIG_CLUSTER_INT_H */
