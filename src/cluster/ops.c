/*
 * ops.c -- cluster operations over the network (`sprig cluster status|
 * add|remove|transfer-leader`, docs/cluster.md "Operations"): four custom
 * APIs a node registers on its server (sprig_cluster_attach_server), the
 * server not seeing src/cluster.  A handler runs on a server worker; it
 * queues the request for the Raft thread (uv_async), which reads Raft's
 * state or starts the membership change and answers when libraft calls
 * back.  Requests and answers are JSON text (not MessagePack):
 *
 *   cluster.status    {}                          -> the node's view
 *   cluster.add       {"id":4,"raft":"H:P","url":"ws://H:P"} -> raft_add,
 *                     then raft_assign(RAFT_VOTER) once it caught up
 *   cluster.remove    {"id":1}                    -> raft_remove
 *   cluster.transfer  {"id":2} (0 or none: any)   -> raft_transfer
 *
 * Changes on a node that is not the leader fail with SPRIG_ENOTLEADER
 * naming the leader (the client follows it).  The client URL of every node
 * is known to every node: `add` first writes the node's record
 * {"raft","url"} under key "<id>" of namespace "nodes" in the key-value
 * store of database "_cluster" -- a replicated write, so every node and
 * every later snapshot holds it -- and ENOTLEADER details and `status` look
 * URLs up there when the cluster file did not name the node.
 */
#include "cluster_int.h"

#include <jansson.h>
#include <stdatomic.h>
#include "sprig/server.h"
#include <stdio.h>
#include <uv.h>

#define CLUSTER_DB "_cluster"
#define NODES_NS "nodes"
#define ASSIGN_TRIES 10

enum { OP_STATUS, OP_ADD, OP_REMOVE, OP_TRANSFER };

typedef struct op {
    int kind;
    sprig_api_ctx *ctx;
    struct sprig__ops *ops;
    uint64_t id;
    char raft[128];
    struct raft_change change, assign;
    struct raft_transfer transfer;
    raft_time t0;
    unsigned rounds; /* raft_assign attempts */
    struct op *next;
} op;

struct sprig__ops {
    sprig__cnode *node;
    struct raft *raft;
    uv_async_t async;
    uv_timer_t timer;    /* `joined` every 100 ms */
    _Atomic bool joined; /* a member, and applied what it knows */
    pthread_mutex_t lock;
    bool running;     /* (lock) the loop takes requests */
    op *queue, *tail; /* (lock) oldest first */
};

/* ---- node records in "_cluster" -------------------------------------------
 */

static const sprig_collection_def cluster_cols[] = {
    {"nodes", SPRIG_ID_NATURAL, 0},
};
static const sprig_schema_def cluster_schema = {CLUSTER_DB, cluster_cols, 1};

/* Record node `id`'s Raft address and URL (a replicated write: the
 * leader only).  Any thread but the Raft thread (it waits for the commit). */
static int
record_node(sprig_storage *st, uint64_t id, const char *raft, const char *url)
{
    sprig_db *db = NULL;
    char key[32];
    snprintf(key, sizeof key, "%llu", (unsigned long long)id);
    json_t *j = json_pack("{s:s,s:s}", "raft", raft, "url", url);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    int rc = text ? sprig_storage_register_schema(st, &cluster_schema)
                  : sprig__err(SPRIG_ENOMEM, "out of memory");
    rc = rc ? rc
            : sprig_storage_create_database(st, CLUSTER_DB, CLUSTER_DB, true);
    rc = rc ? rc : sprig_storage_open_database(st, CLUSTER_DB, &db);
    if (rc == 0) {
        sprig_value v = sprig_value_of_bytes((sprig_bytes){text, strlen(text)});
        rc = sprig_kv_set(db, NODES_NS, key, &v, NULL, NULL, NULL);
    }
    sprig_db_close(db);
    free(text);
    return rc;
}

int
sprig__ops_url_load(sprig_storage *st, uint64_t id, char *url, size_t cap)
{
    sprig_db *db = NULL;
    sprig_value v = {0};
    char key[32];
    snprintf(key, sizeof key, "%llu", (unsigned long long)id);
    int rc = sprig_storage_open_database(st, CLUSTER_DB, &db);
    rc = rc ? rc : sprig_kv_get(db, NODES_NS, key, false, &v);
    sprig_db_close(db);
    json_t *j = rc == 0 && v.kind == SPRIG_VALUE_BYTES
                    ? json_loadb(v.bytes.data, v.bytes.len, 0, NULL)
                    : NULL;
    const char *u = json_string_value(json_object_get(j, "url"));
    rc = u && strlen(u) < cap ? SPRIG_OK : SPRIG_ENOTFOUND;
    if (rc == 0) {
        memcpy(url, u, strlen(u) + 1);
    }
    json_decref(j);
    sprig_value_clear(&v);
    return rc;
}

/* ---- answers (Raft thread) ------------------------------------------------
 */

static void
reply_json(op *o, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text) {
        sprig_api_reply(o->ctx, text, strlen(text));
    } else {
        sprig_api_fail(o->ctx, SPRIG_ENOMEM, "out of memory");
    }
    free(text);
    json_decref(j);
    sprig__free(o);
}

static void
fail_op(op *o, int rc)
{
    sprig_api_fail(o->ctx, rc, "%s", sprig_errmsg());
    sprig__free(o);
}

static const char *
role_name(int role)
{
    return role == RAFT_VOTER     ? "voter"
           : role == RAFT_STANDBY ? "standby"
           : role == RAFT_SPARE   ? "spare"
                                  : "?";
}

static const char *
state_name(int state)
{
    static const char *names[] = {"unavailable", "follower", "candidate",
                                  "leader"};
    return state >= 0 && state <= 3 ? names[state] : "?";
}

/* One server of the configuration, with the leader's view of it. */
static json_t *
server_json(sprig__ops *s, unsigned i, raft_id leader)
{
    struct raft *r = s->raft;
    const struct raft_server *sv = &r->configuration.servers[i];
    const char *url = sprig__cnode_url(s->node, sv->id);
    json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:b}", "id", (json_int_t)sv->id,
                          "raft", sv->address, "url", url ? url : "", "role",
                          role_name(sv->role), "leader", sv->id == leader);
    if (j && raft_state(r) == RAFT_LEADER && sv->id != r->id &&
        r->leader_state.progress) {
        const struct raft_progress *p = &r->leader_state.progress[i];
        raft_time now = r->io->time(r->io);
        json_object_set_new(j, "match",
                            json_integer((json_int_t)p->match_index));
        json_object_set_new(j, "last_send_ms_ago",
                            json_integer((json_int_t)(now - p->last_send)));
        json_object_set_new(j, "recent_contact", json_boolean(p->recent_recv));
    } else if (j && sv->id == r->id) {
        json_object_set_new(j, "self", json_true());
    }
    return j;
}

static void
run_status(op *o)
{
    sprig__ops *s = o->ops;
    struct raft *r = s->raft;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(r, &leader, &addr);
    sprig__cnode_stats st;
    sprig__cnode_stats_get(s->node, &st);
    const char *lurl = leader ? sprig__cnode_url(s->node, leader) : NULL;
    json_t *nodes = json_array();
    for (unsigned i = 0; nodes && i < r->configuration.n; i++) {
        json_array_append_new(nodes, server_json(s, i, leader));
    }
    json_t *j = json_pack(
        "{s:I,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:o,s:{s:I,s:I,s:I,s:I}}", "id",
        (json_int_t)r->id, "state", state_name(raft_state(r)), "leader",
        (json_int_t)leader, "leader_url", lurl ? lurl : "", "term",
        (json_int_t)r->current_term, "commit", (json_int_t)r->commit_index,
        "applied", (json_int_t)raft_last_applied(r), "last_stored",
        (json_int_t)r->last_stored, "nodes", nodes, "stats", "applied",
        (json_int_t)st.applied, "skipped", (json_int_t)st.skipped, "snapshots",
        (json_int_t)st.snapshots, "restored", (json_int_t)st.restored);
    if (j && r->io->errmsg[0]) { /* raft_uv's last error, if any */
        json_object_set_new(j, "io_error", json_string(r->io->errmsg));
    }
    reply_json(o, j);
}

static void start_assign(op *o);

static void
assign_cb(struct raft_change *req, int status)
{
    op *o = req->data;
    struct raft *r = o->ops->raft;
    /* libraft gives up a promotion whose catch-up round outlasts
     * max_catch_up_round_duration (a snapshot to send and install on a
     * loaded machine): the node stays a spare, and a spare gets no log.
     * Try again from where it got to, a few times. */
    if (status == RAFT_NOCONNECTION && o->rounds < ASSIGN_TRIES &&
        raft_state(r) == RAFT_LEADER) {
        start_assign(o);
        return;
    }
    if (status != 0) {
        sprig_api_fail(o->ctx, SPRIG_EIO,
                       "node %llu was added as a spare but not made a voter: "
                       "%s (it may not have caught up; assign it again with "
                       "cluster add)",
                       (unsigned long long)o->id, raft_strerror(status));
        sprig__free(o);
        return;
    }
    json_t *j = json_pack("{s:I,s:s,s:s,s:I,s:I,s:I}", "added",
                          (json_int_t)o->id, "raft", o->raft, "role", "voter",
                          "caught_up_to", (json_int_t)r->commit_index,
                          "took_ms", (json_int_t)(r->io->time(r->io) - o->t0),
                          "attempts", (json_int_t)o->rounds);
    reply_json(o, j);
}

/* raft_assign(RAFT_VOTER): libraft first replicates the log (or a
 * snapshot) to the node in catch-up rounds, then commits the change. */
static void
start_assign(op *o)
{
    o->assign.data = o;
    o->rounds++;
    int rv =
        raft_assign(o->ops->raft, &o->assign, o->id, RAFT_VOTER, assign_cb);
    if (rv != 0) {
        fail_op(o,
                sprig__err(rv == RAFT_NOTLEADER ? SPRIG_ENOTLEADER : SPRIG_EIO,
                           "raft_assign of node %llu: %s",
                           (unsigned long long)o->id, raft_strerror(rv)));
    }
}

static void
add_cb(struct raft_change *req, int status)
{
    op *o = req->data;
    if (status != 0) {
        fail_op(o,
                sprig__err(SPRIG_EIO, "raft_add of node %llu: %s",
                           (unsigned long long)o->id, raft_strerror(status)));
        return;
    }
    start_assign(o);
}

/* The node `id` in the configuration, or NULL. */
static const struct raft_server *
find_server(struct raft *r, uint64_t id)
{
    for (unsigned i = 0; i < r->configuration.n; i++) {
        if (r->configuration.servers[i].id == id) {
            return &r->configuration.servers[i];
        }
    }
    return NULL;
}

static void
run_add(op *o)
{
    struct raft *r = o->ops->raft;
    const struct raft_server *sv = find_server(r, o->id);
    o->change.data = o;
    o->t0 = r->io->time(r->io);
    if (sv && sv->role == RAFT_VOTER) {
        fail_op(o, sprig__err(SPRIG_EEXIST, "node %llu is a voter already",
                              (unsigned long long)o->id));
        return;
    }
    if (sv) { /* added before (a spare): promote it */
        start_assign(o);
        return;
    }
    int rv = raft_add(r, &o->change, o->id, o->raft, add_cb);
    if (rv != 0) {
        fail_op(o, sprig__err(SPRIG_EIO, "raft_add of node %llu: %s",
                              (unsigned long long)o->id, raft_strerror(rv)));
    }
}

static void
remove_cb(struct raft_change *req, int status)
{
    op *o = req->data;
    if (status != 0) {
        fail_op(o,
                sprig__err(SPRIG_EIO, "raft_remove of node %llu: %s",
                           (unsigned long long)o->id, raft_strerror(status)));
        return;
    }
    reply_json(o, json_pack("{s:I}", "removed", (json_int_t)o->id));
}

static void
run_remove(op *o)
{
    struct raft *r = o->ops->raft;
    if (!find_server(r, o->id)) {
        fail_op(o, sprig__err(SPRIG_ENOTFOUND, "node %llu is not a member",
                              (unsigned long long)o->id));
        return;
    }
    o->change.data = o;
    int rv = raft_remove(r, &o->change, o->id, remove_cb);
    if (rv != 0) {
        fail_op(o, sprig__err(SPRIG_EIO, "raft_remove of node %llu: %s",
                              (unsigned long long)o->id, raft_strerror(rv)));
    }
}

static void
transfer_cb(struct raft_transfer *req)
{
    op *o = req->data;
    sprig__ops *s = o->ops;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(s->raft, &leader, &addr);
    if (leader == 0 || (o->id && leader != o->id) || leader == s->raft->id) {
        fail_op(o, sprig__err(SPRIG_ETIMEDOUT,
                              "leadership did not move to node %llu within "
                              "the election timeout (leader now: %llu)",
                              (unsigned long long)o->id,
                              (unsigned long long)leader));
        return;
    }
    const char *url = sprig__cnode_url(s->node, leader);
    reply_json(o, json_pack("{s:I,s:s}", "leader", (json_int_t)leader, "url",
                            url ? url : ""));
}

static void
run_transfer(op *o)
{
    o->transfer.data = o;
    int rv = raft_transfer(o->ops->raft, &o->transfer, o->id, transfer_cb);
    if (rv != 0) {
        fail_op(o, sprig__err(rv == RAFT_NOTLEADER ? SPRIG_ENOTLEADER
                              : rv == RAFT_BADID   ? SPRIG_EINVAL
                                                   : SPRIG_EIO,
                              "raft_transfer to node %llu: %s",
                              (unsigned long long)o->id, raft_strerror(rv)));
    }
}

static void
run_op(op *o)
{
    if (o->kind != OP_STATUS && raft_state(o->ops->raft) != RAFT_LEADER) {
        fail_op(o, sprig__cnode_not_leader(o->ops->node));
        return;
    }
    switch (o->kind) {
    case OP_STATUS: run_status(o); break;
    case OP_ADD: run_add(o); break;
    case OP_REMOVE: run_remove(o); break;
    default: run_transfer(o); break;
    }
}

static void
on_ops(uv_async_t *h)
{
    sprig__ops *s = h->data;
    pthread_mutex_lock(&s->lock);
    op *q = s->queue;
    s->queue = s->tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (q) {
        op *next = q->next;
        run_op(q);
        q = next;
    }
}

/* ---- the handlers (server workers) ----------------------------------------
 */

static void
enqueue(sprig__ops *s, op *o)
{
    pthread_mutex_lock(&s->lock);
    bool ok = s->running;
    if (ok) {
        if (s->tail) {
            s->tail->next = o;
        } else {
            s->queue = o;
        }
        s->tail = o;
    }
    pthread_mutex_unlock(&s->lock);
    if (!ok) {
        sprig_api_fail(o->ctx, SPRIG_ECLOSED, "the cluster node is stopping");
        sprig__free(o);
        return;
    }
    uv_async_send(&s->async);
}

/* The request's JSON object ({} when empty), or NULL after answering. */
static json_t *
request_json(sprig_api_ctx *ctx)
{
    sprig_bytes b = sprig_api_request(ctx);
    json_error_t je;
    json_t *j = b.len ? json_loadb(b.data, b.len, 0, &je) : json_object();
    if (!json_is_object(j)) {
        sprig_api_fail(ctx, SPRIG_EINVAL,
                       "a cluster request is a JSON object (%s)",
                       j ? "not an object" : je.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* "id" of the request: > 0, or 0 when absent and `optional`. */
static int
get_id(sprig_api_ctx *ctx, json_t *j, bool optional, uint64_t *id)
{
    json_t *v = json_object_get(j, "id");
    if ((!v && optional) || (json_is_integer(v) && json_integer_value(v) > 0)) {
        *id = v ? (uint64_t)json_integer_value(v) : 0;
        return SPRIG_OK;
    }
    return sprig_api_fail(ctx, SPRIG_EINVAL,
                          "the request needs \"id\", a node id above 0");
}

static op *
new_op(sprig_api_ctx *ctx, void *udata, int kind)
{
    op *o = sprig__calloc(1, sizeof *o);
    if (!o) {
        sprig_api_fail(ctx, SPRIG_ENOMEM, "out of memory");
        return NULL;
    }
    o->kind = kind;
    o->ctx = ctx;
    o->ops = udata;
    return o;
}

static void
h_status(sprig_api_ctx *ctx, void *udata)
{
    op *o = new_op(ctx, udata, OP_STATUS);
    if (o) {
        enqueue(udata, o);
    }
}

/* id, then (add) "raft" and "url" strings; the op, or NULL answered. */
static op *
parse_change(sprig_api_ctx *ctx, void *udata, int kind, const char **url,
             json_t **keep)
{
    json_t *j = request_json(ctx);
    uint64_t id = 0;
    if (!j || get_id(ctx, j, kind == OP_TRANSFER, &id) != SPRIG_OK) {
        json_decref(j);
        return NULL;
    }
    const char *raft = json_string_value(json_object_get(j, "raft"));
    *url = json_string_value(json_object_get(j, "url"));
    if (kind == OP_ADD && (!raft || !*url || !raft[0] || strlen(raft) >= 128 ||
                           strlen(*url) >= 256)) {
        sprig_api_fail(ctx, SPRIG_EINVAL,
                       "cluster add needs \"raft\" (HOST:PORT) and \"url\" "
                       "(the node's client URL)");
        json_decref(j);
        return NULL;
    }
    op *o = new_op(ctx, udata, kind);
    if (o) {
        o->id = id;
        snprintf(o->raft, sizeof o->raft, "%s", raft ? raft : "");
    }
    *keep = j;
    return o;
}

static void
h_add(sprig_api_ctx *ctx, void *udata)
{
    const char *url = NULL;
    json_t *j = NULL;
    op *o = parse_change(ctx, udata, OP_ADD, &url, &j);
    /* the record first: it fails with ENOTLEADER on a follower */
    int rc = o ? record_node(sprig_api_storage_unrestricted(ctx), o->id,
                             o->raft, url)
               : SPRIG_OK;
    json_decref(j);
    if (o && rc) {
        fail_op(o, rc);
    } else if (o) {
        enqueue(udata, o);
    }
}

static void
h_remove(sprig_api_ctx *ctx, void *udata)
{
    const char *url = NULL;
    json_t *j = NULL;
    op *o = parse_change(ctx, udata, OP_REMOVE, &url, &j);
    json_decref(j);
    if (o) {
        enqueue(udata, o);
    }
}

static void
h_transfer(sprig_api_ctx *ctx, void *udata)
{
    const char *url = NULL;
    json_t *j = NULL;
    op *o = parse_change(ctx, udata, OP_TRANSFER, &url, &j);
    json_decref(j);
    if (o) {
        enqueue(udata, o);
    }
}

/* ---- life ---------------------------------------------------------------
 */

int
sprig__ops_new(sprig__cnode *node, sprig__ops **out)
{
    sprig__ops *s = sprig__calloc(1, sizeof *s);
    if (!s) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    s->node = node;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return SPRIG_OK;
}

/* Is this node in the configuration, with every entry it knows committed
 * applied?  (A new node: added, and past the snapshot it got.) */
static void
on_timer(uv_timer_t *t)
{
    sprig__ops *s = t->data;
    struct raft *r = s->raft;
    bool j = find_server(r, r->id) && r->commit_index > 0 &&
             raft_last_applied(r) >= r->commit_index;
    atomic_store(&s->joined, j);
    if (j) {
        uv_timer_stop(t);
    }
}

bool
sprig__ops_joined(sprig__ops *s)
{
    return atomic_load(&s->joined);
}

void
sprig__ops_start(sprig__ops *s, uv_loop_t *loop, struct raft *r)
{
    s->raft = r;
    s->async.data = s->timer.data = s;
    uv_async_init(loop, &s->async, on_ops);
    uv_timer_init(loop, &s->timer);
    uv_timer_start(&s->timer, on_timer, 0, 100);
    pthread_mutex_lock(&s->lock);
    s->running = true;
    pthread_mutex_unlock(&s->lock);
}

void
sprig__ops_stop(sprig__ops *s)
{
    pthread_mutex_lock(&s->lock);
    bool was = s->running;
    s->running = false;
    op *q = s->queue;
    s->queue = s->tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (q) {
        op *next = q->next;
        sprig_api_fail(q->ctx, SPRIG_ECLOSED, "the cluster node is stopping");
        sprig__free(q);
        q = next;
    }
    if (was) {
        uv_close((uv_handle_t *)&s->async, NULL);
        uv_close((uv_handle_t *)&s->timer, NULL);
    }
}

void
sprig__ops_free(sprig__ops *s)
{
    if (s) {
        pthread_mutex_destroy(&s->lock);
        sprig__free(s);
    }
}

int
sprig__ops_register(sprig__ops *s, sprig_server *srv)
{
    static const struct {
        const char *name, *action, *summary;
        sprig_api_handler h;
        bool write;
    } rows[] = {
        {"cluster.status", "cluster.read",
         "the cluster as this node sees it (JSON)", h_status, false},
        {"cluster.add", "cluster.admin",
         "add a node and make it a voter once it caught up (JSON)", h_add,
         true},
        {"cluster.remove", "cluster.admin", "remove a node (JSON)", h_remove,
         true},
        {"cluster.transfer", "cluster.admin",
         "move the leadership to a node (JSON)", h_transfer, true},
    };
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < sizeof rows / sizeof rows[0]; i++) {
        sprig_api_options o;
        sprig_api_options_init(&o);
        o.write = rows[i].write;
        o.summary = rows[i].summary;
        rc = sprig_server_register_api_with(srv, rows[i].name, rows[i].action,
                                            rows[i].h, s, &o);
    }
    return rc;
}
