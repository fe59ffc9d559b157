/*
 * node.c -- a node's replication seam (cluster.h): the replicator the
 * local storage calls for every write, the queue the driver thread drains
 * into raft_apply, the answers after the local apply, and ENOTLEADER.
 */
#include "cluster_int.h"

#include <stddef.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

/* ---- answering ------------------------------------------------------------
 */

/* Call the submitter's done with `rc` (the detail recorded in p->err when
 * failed) and free the proposal. */
static void
prop_finish(sprig__prop *p, int rc)
{
    if (rc) {
        sprig__err_load(rc, &p->err);
    }
    sprig__cmd_done done = p->done;
    void *udata = p->udata;
    sprig__cmd *cmd = p->cmd;
    sprig__free(p);
    done(udata, rc, cmd);
}

void
sprig__prop_answer(sprig__prop *p)
{
    sprig__prop_find(p->node, p->seq, true);
    prop_finish(p, p->rc);
}

static void
prop_fail(sprig__prop *p, int rc)
{
    sprig__err_save(&p->err);
    prop_finish(p, rc);
}

sprig__prop *
sprig__prop_find(sprig__cnode *n, uint64_t seq, bool take)
{
    for (sprig__prop **pp = &n->pending; *pp; pp = &(*pp)->next) {
        sprig__prop *p = *pp;
        if (p->seq == seq) {
            if (take) {
                *pp = p->next;
            }
            return p;
        }
    }
    return NULL;
}

/* ---- the replicator (any thread) ------------------------------------------
 */

static int
repl_submit(void *udata, const char *db, sprig__cmd *cmd, sprig__cmd_done done,
            void *done_udata)
{
    sprig__cnode *n = udata;
    sprig__prop *p = sprig__malloc(sizeof *p);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory replicating a write");
    }
    memset(p, 0, offsetof(sprig__prop, err)); /* err: only on failure */
    p->err.msg[0] = 0;
    size_t dl = strnlen(db, SPRIG_NAME_MAX);
    memcpy(p->db, db, dl);
    p->db[dl] = 0;
    p->node = n;
    p->cmd = cmd;
    p->done = done;
    p->udata = done_udata;
    pthread_mutex_lock(&n->lock);
    p->seq = ++n->next_seq;
    if (n->queue_tail) {
        n->queue_tail->next = p;
    } else {
        n->queue = p;
    }
    n->queue_tail = p;
    pthread_mutex_unlock(&n->lock);
    if (n->wake) {
        n->wake(n->wake_udata);
    }
    return SPRIG_OK;
}

/* ---- the driver thread ------------------------------------------------------
 */

static const char *
url_of(sprig__cnode *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_urls; i++) {
        if (n->urls[i].id == id) {
            return n->urls[i].url;
        }
    }
    /* a node `cluster add` added: its replicated record (ops.c) */
    char u[256];
    if (n->st && sprig__ops_url_load(n->st, id, u, sizeof u) == SPRIG_OK &&
        sprig__cnode_set_url(n, id, u) == SPRIG_OK) {
        return n->urls[n->n_urls - 1].url;
    }
    return NULL;
}

const char *
sprig__cnode_url(sprig__cnode *n, uint64_t id)
{
    return url_of(n, id);
}

/* Record "not the leader" with the leader's id and URL. */
static int
not_leader(sprig__cnode *n)
{
    raft_id id = 0;
    const char *addr = NULL;
    if (n->raft) {
        raft_leader(n->raft, &id, &addr);
    }
    const char *url = id ? url_of(n, id) : NULL;
    if (id && url) {
        return sprig__err(SPRIG_ENOTLEADER,
                          "not the leader; leader is node "
                          "%llu at %s",
                          (unsigned long long)id, url);
    }
    if (id) {
        return sprig__err(SPRIG_ENOTLEADER,
                          "not the leader; leader is node "
                          "%llu (raft address %s, no client URL known)",
                          (unsigned long long)id, addr ? addr : "?");
    }
    return sprig__err(SPRIG_ENOTLEADER, "not the leader; no leader is known");
}

int
sprig__cnode_not_leader(sprig__cnode *n)
{
    return not_leader(n);
}

/* A proposal of a group whose raft_apply finished with `status`: answer
 * it when its entry's outcome is known, leave it to whoever settles its
 * entry (fsm.c), or fail it when raft gave up on it. */
static void
group_settle(sprig__prop *p, int status)
{
    if (p->applied && !p->deferred) {
        sprig__prop_answer(p);
    } else if (status == 0 || p->deferred) {
        p->raft_done = true; /* its apply (or the flush) answers it */
    } else {
        sprig__prop_find(p->node, p->seq, true);
        prop_fail(p, status == RAFT_SHUTDOWN
                         ? sprig__err(SPRIG_ECLOSED,
                                      "the node is shutting down; the "
                                      "write's outcome is unknown")
                         : sprig__err(SPRIG_ETIMEDOUT,
                                      "leadership was lost before the write "
                                      "committed (%s): its outcome is unknown",
                                      raft_strerror(status)));
    }
}

/* libraft calls this once the group's FIRST entry is applied (or when it
 * gives up on the group): the later entries are usually applied in the
 * same round, else settled one by one as they are. */
static void
group_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    sprig__pgroup *g = req->data;
    for (size_t i = 0; i < g->n; i++) {
        group_settle(g->props[i], status);
    }
    sprig__free(g);
}

/* Version 3's request-id part: [flags][rid, when the command has one].
 * The previous value's being wanted travels too, so that every node's
 * request-id table records the same outcome (src/local/rid.c). */
static int
encode_rid_part(sprig_buf *b, const sprig__cmd *cmd)
{
    uint8_t f = (cmd->has_rid ? SPRIG__ENTRY_RID : 0) |
                (cmd->want_value ? SPRIG__ENTRY_WANT : 0);
    int rc = sprig_buf_append(b, &f, 1);
    return rc || !cmd->has_rid ? rc : sprig_buf_append(b, cmd->rid, 16);
}

/* The entry of `p`: header, request-id part, database name, the encoded
 * command, padding. */
static int
encode_entry(sprig__cnode *n, sprig__prop *p, struct raft_buffer *out)
{
    sprig_buf b = n->enc; /* kept between entries: no growth each time */
    b.len = 0;
    uint8_t hdr[SPRIG__ENTRY_HDR + 1];
    size_t dl = strlen(p->db);
    hdr[0] = SPRIG__ENTRY_MAGIC;
    hdr[1] = SPRIG__ENTRY_VERSION;
    sprig__put_u64be(hdr + 2, n->id);
    sprig__put_u64be(hdr + 10, p->seq);
    hdr[18] = (uint8_t)dl;
    int rc = sprig_buf_append(&b, hdr, SPRIG__ENTRY_HDR);
    rc = rc ? rc : encode_rid_part(&b, p->cmd);
    rc = rc ? rc : sprig_buf_append(&b, hdr + SPRIG__ENTRY_HDR, 1);
    rc = rc ? rc : sprig_buf_append(&b, p->db, dl);
    rc = rc ? rc : sprig__cmd_encode(p->cmd, &b);
    /* raft_uv needs every entry's length a multiple of 8 (its segment
     * and message encoders pad each entry to 8 bytes but copy only
     * buf.len: an odd length misaligns the next batch, and a closed
     * segment no longer loads).  Pad with 1..8 bytes, the last of which
     * holds the padding's length. */
    uint8_t pad[8] = {0};
    size_t np = 8 - b.len % 8;
    pad[np - 1] = (uint8_t)np;
    rc = rc ? rc : sprig_buf_append(&b, pad, np);
    out->base = rc ? NULL : raft_malloc(b.len);
    out->len = b.len;
    if (rc == 0 && !out->base) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory encoding an entry");
    }
    if (rc == 0) {
        memcpy(out->base, b.data, b.len);
    }
    n->enc = b;
    if (b.cap > (1u << 20)) { /* a big one: not kept */
        sprig_buf_clear(&n->enc);
    }
    return rc;
}

/* The most writes, and bytes, handed to raft in one raft_apply. */
#define GROUP_MAX 256
#define GROUP_BYTES (1u << 20)

/* Fail every proposal of `g` with `rc` (recorded), free their entries
 * and the group. */
static void
group_fail(sprig__cnode *n, sprig__pgroup *g, struct raft_buffer *bufs, int rc)
{
    sprig__errsave why;
    sprig__err_save(&why);
    for (size_t i = 0; i < g->n; i++) {
        raft_free(bufs[i].base);
        sprig__prop_find(n, g->props[i]->seq, true);
        sprig__err_load(rc, &why);
        prop_fail(g->props[i], rc);
    }
    sprig__free(g);
}

/* Hand the group `g` (proposals on the pending list, entries in `bufs`)
 * to raft in one raft_apply, or fail them all. */
static void
group_apply(sprig__cnode *n, sprig__pgroup *g, struct raft_buffer *bufs)
{
    if (g->n == 0) {
        sprig__free(g);
        return;
    }
    int rv = raft_apply(n->raft, &g->req, bufs, (unsigned)g->n, group_cb);
    if (rv != 0) {
        int rc = rv == RAFT_NOTLEADER ? not_leader(n)
                                      : sprig__err(SPRIG_EIO, "raft_apply: %s",
                                                   raft_strerror(rv));
        group_fail(n, g, bufs, rc);
        return;
    }
    n->stats.proposed += g->n;
    n->stats.groups++;
}

/* Take from `*q` the writes of the next group (at most GROUP_MAX, about
 * GROUP_BYTES of entries) into a new group, their entries into `bufs`,
 * each put on the pending list; one whose entry cannot be made fails. */
static sprig__pgroup *
group_take(sprig__cnode *n, sprig__prop **q, struct raft_buffer *bufs)
{
    sprig__pgroup *g =
        sprig__malloc(sizeof *g + GROUP_MAX * sizeof(sprig__prop *));
    if (!g) {
        return NULL;
    }
    g->node = n;
    g->n = 0;
    g->req.data = g;
    size_t bytes = 0;
    while (*q && g->n < GROUP_MAX && bytes < GROUP_BYTES) {
        sprig__prop *p = *q;
        *q = p->next;
        p->next = NULL;
        int rc = encode_entry(n, p, &bufs[g->n]);
        if (rc) {
            prop_fail(p, rc);
            continue;
        }
        bytes += bufs[g->n].len;
        p->term = n->raft->current_term;
        p->next = n->pending;
        n->pending = p;
        g->props[g->n++] = p;
    }
    return g;
}

/* Propose the queued writes `q`: fail them, or leave them pending on
 * raft, in groups. */
static void
propose_all(sprig__cnode *n, sprig__prop *q)
{
    struct raft_buffer bufs[GROUP_MAX];
    while (q) {
        if (!n->raft || raft_state(n->raft) != RAFT_LEADER) {
            sprig__prop *next = q->next;
            n->stats.refused++;
            prop_fail(q, not_leader(n));
            q = next;
            continue;
        }
        sprig__pgroup *g = group_take(n, &q, bufs);
        if (!g) {
            sprig__prop *next = q->next;
            prop_fail(q, sprig__err(SPRIG_ENOMEM, "out of memory proposing"));
            q = next;
            continue;
        }
        group_apply(n, g, bufs);
    }
}

/* Proposals whose group's callback ran but whose entry was never applied
 * while this node led in the term it proposed them in: when it no longer
 * leads in that term, the entry may never be applied here, so the write
 * fails with its outcome unknown (it may still commit: a client retries
 * with its request id). */
static void
sweep_orphans(sprig__cnode *n)
{
    bool leads = n->raft && raft_state(n->raft) == RAFT_LEADER;
    uint64_t term = n->raft ? n->raft->current_term : 0;
    sprig__prop **pp = &n->pending;
    while (*pp) {
        sprig__prop *p = *pp;
        if (p->raft_done && !p->applied && !p->deferred &&
            (!leads || p->term != term)) {
            *pp = p->next;
            prop_fail(p, sprig__err(SPRIG_ETIMEDOUT,
                                    "leadership was lost before the write "
                                    "was applied: its outcome is unknown"));
        } else {
            pp = &p->next;
        }
    }
}

/* ---- read barriers (linearizable reads) ----------------------------------
 */

/* Any thread: queue a waiter; the driver issues the barrier. */
static int
repl_barrier(void *udata, void (*done)(void *, int), void *done_udata)
{
    sprig__cnode *n = udata;
    sprig__bar *b = sprig__calloc(1, sizeof *b);
    if (!b) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a read barrier");
    }
    b->done = done;
    b->udata = done_udata;
    pthread_mutex_lock(&n->lock);
    b->next = n->bars;
    n->bars = b;
    pthread_mutex_unlock(&n->lock);
    if (n->wake) {
        n->wake(n->wake_udata);
    }
    return SPRIG_OK;
}

/* Answer every waiter of a list with `rc` (the detail recorded in this
 * thread, for each) and free them. */
static void
bars_finish(sprig__bar *b, int rc)
{
    sprig__errsave err;
    if (rc) {
        sprig__err_save(&err);
    }
    while (b) {
        sprig__bar *next = b->next;
        if (rc) {
            sprig__err_load(rc, &err);
        }
        b->done(b->udata, rc);
        sprig__free(b);
        b = next;
    }
}

static void
barrier_cb(struct raft_barrier *req, int status)
{
    sprig__bargroup *g = req->data;
    int rc = 0;
    if (status == RAFT_SHUTDOWN) {
        rc = sprig__err(SPRIG_ECLOSED, "the node is shutting down");
    } else if (status != 0) {
        rc = sprig__err(SPRIG_ETIMEDOUT,
                        "leadership was lost before the read "
                        "could be confirmed (%s)",
                        raft_strerror(status));
    }
    g->node->stats.barriers += rc == 0;
    g->node->bars_issued--;
    bars_finish(g->waiters, rc);
    sprig__free(g);
}

/* Issue one barrier for the waiters `b`: a barrier entry, committed in
 * this leader's term and applied after every entry before it, proves
 * that this node still leads and has applied all that was committed when
 * the reads arrived.  Not the leader: ENOTLEADER naming the leader. */
static void
barrier_issue(sprig__cnode *n, sprig__bar *b)
{
    if (!n->raft || raft_state(n->raft) != RAFT_LEADER) {
        bars_finish(b, not_leader(n));
        return;
    }
    sprig__bargroup *g = sprig__calloc(1, sizeof *g);
    if (!g) {
        bars_finish(b, sprig__err(SPRIG_ENOMEM, "out of memory"));
        return;
    }
    g->node = n;
    g->waiters = b;
    g->req.data = g;
    int rv = raft_barrier(n->raft, &g->req, barrier_cb);
    n->bars_issued += rv == 0;
    if (rv != 0) {
        sprig__free(g);
        bars_finish(b, rv == RAFT_NOTLEADER
                           ? not_leader(n)
                           : sprig__err(SPRIG_EIO, "raft_barrier: %s",
                                        raft_strerror(rv)));
    }
}

static void
barriers_pump(sprig__cnode *n)
{
    pthread_mutex_lock(&n->lock);
    sprig__bar *b = n->bars;
    n->bars = NULL;
    pthread_mutex_unlock(&n->lock);
    if (b) {
        barrier_issue(n, b);
    }
}

void
sprig__cnode_pump(sprig__cnode *n)
{
    barriers_pump(n);
    pthread_mutex_lock(&n->lock);
    sprig__prop *q = n->queue;
    n->queue = n->queue_tail = NULL;
    pthread_mutex_unlock(&n->lock);
    propose_all(n, q);
    sweep_orphans(n);
}

/* ---- life -------------------------------------------------------------------
 */

int
sprig__cnode_storage_open(sprig__cnode *n)
{
    int rc = sprig_storage_open(&n->opts, &n->st);
    rc = rc ? rc : sprig__storage_raft_applied_max(n->st, &n->recovered_max);
    if (n->recovered_max > n->publish_floor) {
        n->publish_floor = n->recovered_max;
    }
    if (rc == 0) {
        sprig__storage_replicate(n->st, &n->repl);
    }
    return rc;
}

void
sprig__cnode_storage_close(sprig__cnode *n)
{
    if (n->st) {
        sprig__storage_replicate(n->st, NULL);
        sprig_storage_close(n->st);
        n->st = NULL;
    }
}

/* The first proposal number of this node's life: random, so it never
 * restarts at numbers an earlier life of the node used.  An entry is
 * matched to the pending write it came from by (origin, number): after a
 * restart, an older entry of this node still in the log (committed by the
 * next leader while it was down) must not be taken for a new proposal
 * with the same number, which would apply the new command in its place.
 * Below 2^62: no wrap in practice. */
static uint64_t
first_seq(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts; /* no entropy source: the clock moves on */
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    return r >> 2;
}

int
sprig__cnode_open(const sprig_storage_options *o, uint64_t id,
                  sprig__cnode **out)
{
    if (!o || !o->path || o->memory_only || id == 0) {
        return sprig__err(SPRIG_EINVAL, "a cluster node needs an on-disk "
                                        "storage and an id above 0");
    }
    sprig__cnode *n = sprig__calloc(1, sizeof *n);
    char *path = sprig__strdup(o->path);
    if (!n || !path) {
        sprig__free(n);
        sprig__free(path);
        return sprig__err(SPRIG_ENOMEM, "out of memory opening a node");
    }
    n->id = id;
    n->next_seq = first_seq();
    n->opts = *o;
    n->path = path;
    n->opts.path = path;
    n->repl.submit = repl_submit;
    n->repl.barrier = repl_barrier;
    n->repl.udata = n;
    pthread_mutex_init(&n->lock, NULL);
    sprig__fsm_init(n);
    int rc = sprig__cnode_storage_open(n);
    if (rc) {
        sprig__cnode_close(n);
        return rc;
    }
    *out = n;
    return SPRIG_OK;
}

void
sprig__cnode_started(sprig__cnode *n)
{
    uint64_t last = n->raft ? raft_last_index(n->raft) : 0;
    if (last > n->publish_floor) {
        n->publish_floor = last;
    }
}

struct raft_fsm *
sprig__cnode_fsm(sprig__cnode *n)
{
    return &n->fsm;
}

void
sprig__cnode_attach(sprig__cnode *n, struct raft *r)
{
    n->raft = r;
}

void
sprig__cnode_set_wake(sprig__cnode *n, void (*wake)(void *), void *udata)
{
    n->wake = wake;
    n->wake_udata = udata;
}

int
sprig__cnode_set_url(sprig__cnode *n, uint64_t id, const char *url)
{
    char *u = sprig__strdup(url);
    sprig__url *a =
        u ? sprig__realloc(n->urls, (n->n_urls + 1) * sizeof *a) : NULL;
    if (!a) {
        sprig__free(u);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    n->urls = a;
    n->urls[n->n_urls++] = (sprig__url){id, u};
    return SPRIG_OK;
}

sprig_storage *
sprig__cnode_storage(sprig__cnode *n)
{
    return n->st;
}

void
sprig__cnode_stats_get(sprig__cnode *n, sprig__cnode_stats *out)
{
    *out = n->stats;
}

uint64_t
sprig__cnode_id(const sprig__cnode *n)
{
    return n->id;
}

static void
fail_all(sprig__prop *p)
{
    while (p) {
        sprig__prop *next = p->next;
        prop_fail(p, sprig__err(SPRIG_ECLOSED, "the cluster node closed"));
        p = next;
    }
}

void
sprig__cnode_close(sprig__cnode *n)
{
    if (!n) {
        return;
    }
    if (n->st) {
        sprig__storage_replicate(n->st, NULL);
    }
    pthread_mutex_lock(&n->lock);
    sprig__prop *q = n->queue;
    sprig__bar *bars = n->bars;
    n->queue = n->queue_tail = NULL;
    n->bars = NULL;
    pthread_mutex_unlock(&n->lock);
    fail_all(q);
    if (bars) {
        bars_finish(bars, sprig__err(SPRIG_ECLOSED, "the cluster node closed"));
    }
    sprig__fsm_flush(n); /* empty between apply rounds: defensive */
    sprig__fsm_fini(n);
    sprig_buf_clear(&n->enc);
    fail_all(n->pending);
    n->pending = NULL;
    sprig__cnode_storage_close(n);
    for (size_t i = 0; i < n->n_urls; i++) {
        sprig__free(n->urls[i].url);
    }
    sprig__free(n->urls);
    pthread_mutex_destroy(&n->lock);
    sprig__free(n->path);
    sprig__free(n);
}
