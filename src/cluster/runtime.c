/*
 * runtime.c -- a real node (sprig.h "Cluster"): the cluster file, raft_uv
 * with its own durable log under <storage>/raft/, TCP or TLS between nodes,
 * all of Raft on a libuv loop of its own thread.
 *
 * Why its own thread and not the server's loop: the server's loop is
 * private to src/server (no seam hands it out), and the state machine's
 * apply waits for LMDB commits; on a thread of its own a slow apply never
 * stalls client sockets, and the node works the same under any server.
 *
 * The cluster file (JSON): {"id":1,"raft":"127.0.0.1:7001",
 * "url":"ws://127.0.0.1:5646","bootstrap":true,"peers":[{"id":2,
 * "raft":"127.0.0.1:7002","url":"ws://127.0.0.1:5647"},...]}.  With
 * "bootstrap" (on every node of a new cluster, the same peers) the first
 * start records the configuration of every node listed as voters; later
 * starts, and nodes without it, load what their Raft log holds.  With
 * "tls":{"ca":FILE,"cert":FILE,"key":FILE} (paths relative to the cluster
 * file's folder) node-to-node traffic is mutually authenticated TLS
 * (tls.h) instead of plain TCP; without it a warning line says so.
 */
#include "cluster_int.h"
#include "tls.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <raft/uv.h>
#include <stdio.h>
#include <sys/stat.h>
#include <uv.h>

#define MAX_PEERS 16

typedef struct peer {
    uint64_t id;
    char raft[128], url[256];
} peer;

struct sprig_cluster {
    sprig__cnode *node;
    peer self, peers[MAX_PEERS];
    size_t n_peers;
    bool bootstrap;
    unsigned snap_threshold, snap_trailing; /* the cluster file's */
    sprig__ops *ops;                        /* the cluster.* APIs (ops.c) */
    bool fresh; /* no bootstrap, nothing ever applied: a new node */
    char dir[4096];
    uv_loop_t loop;
    uv_async_t wake, stop;
    uv_timer_t tick; /* sprig__cnode_pump now and then (orphan writes) */
    struct raft_uv_transport transport;
    sprig__ctls *tls; /* node-to-node TLS (tls.h); NULL: plain TCP */
    struct raft_io io;
    struct raft raft;
    pthread_t thread;
    /* start-up handshake */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started;
    int start_rc;
    char start_err[512];
};

/* ---- the cluster file ------------------------------------------------------
 */

static int
get_peer(json_t *o, peer *p, const char *what)
{
    json_t *id = json_object_get(o, "id"), *raft = json_object_get(o, "raft");
    json_t *url = json_object_get(o, "url");
    if (!json_is_integer(id) || json_integer_value(id) <= 0 ||
        !json_is_string(raft) || (url && !json_is_string(url))) {
        return sprig__err(SPRIG_EINVAL,
                          "the cluster file's %s needs \"id\" "
                          "(> 0), \"raft\" (HOST:PORT) and \"url\"",
                          what);
    }
    p->id = (uint64_t)json_integer_value(id);
    snprintf(p->raft, sizeof p->raft, "%s", json_string_value(raft));
    snprintf(p->url, sizeof p->url, "%s", url ? json_string_value(url) : "");
    return SPRIG_OK;
}

/* `name` of the "tls" object, relative to the cluster file's folder. */
static int
tls_path(json_t *tls, const char *name, const char *file, char *out, size_t n)
{
    json_t *v = json_object_get(tls, name);
    if (!json_is_string(v)) {
        return sprig__err(SPRIG_EINVAL,
                          "the cluster file's \"tls\" needs \"ca\", "
                          "\"cert\" and \"key\" (PEM files)");
    }
    const char *p = json_string_value(v);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    if (p[0] == '/') {
        snprintf(out, n, "%s", p);
    } else {
        snprintf(out, n, "%s/%s", dirname(dir), p);
    }
    return SPRIG_OK;
}

/* "tls": {"ca":FILE,"cert":FILE,"key":FILE}: load them; absent: warn. */
static int
load_tls(sprig_cluster *c, json_t *tls, const char *file)
{
    if (!tls) {
        fprintf(stderr,
                "sprig: node %llu: warning: no \"tls\" in the "
                "cluster file: node-to-node (Raft) traffic is "
                "unencrypted and unauthenticated\n",
                (unsigned long long)c->self.id);
        return SPRIG_OK;
    }
    char ca[4096], cert[4096], key[4096];
    int rc = tls_path(tls, "ca", file, ca, sizeof ca);
    rc = rc ? rc : tls_path(tls, "cert", file, cert, sizeof cert);
    rc = rc ? rc : tls_path(tls, "key", file, key, sizeof key);
    return rc ? rc : sprig__ctls_load(ca, cert, key, c->self.id, &c->tls);
}

/* "snapshot_threshold" (entries between snapshots) and
 * "snapshot_trailing" (entries kept behind one), optional. */
static int
snapshot_settings(sprig_cluster *c, json_t *j)
{
    json_t *th = json_object_get(j, "snapshot_threshold"),
           *tr = json_object_get(j, "snapshot_trailing");
    if ((th && (!json_is_integer(th) || json_integer_value(th) < 1 ||
                json_integer_value(th) > UINT32_MAX)) ||
        (tr && (!json_is_integer(tr) || json_integer_value(tr) < 0 ||
                json_integer_value(tr) > UINT32_MAX))) {
        return sprig__err(SPRIG_EINVAL,
                          "the cluster file's \"snapshot_threshold\" (>= 1) "
                          "and \"snapshot_trailing\" (>= 0) are entry counts");
    }
    c->snap_threshold = th ? (unsigned)json_integer_value(th) : 1u << 16;
    c->snap_trailing = tr ? (unsigned)json_integer_value(tr) : 1u << 15;
    return SPRIG_OK;
}

static int
load_config(sprig_cluster *c, const char *file)
{
    json_error_t je;
    json_t *j = json_load_file(file, 0, &je);
    if (!j) {
        return sprig__err(SPRIG_EINVAL, "cluster file '%s': %s (line %d)", file,
                          je.text, je.line);
    }
    int rc = get_peer(j, &c->self, "top level");
    json_t *b = json_object_get(j, "bootstrap"),
           *ps = json_object_get(j, "peers");
    c->bootstrap = json_is_true(b);
    if (rc == 0) {
        rc = snapshot_settings(c, j);
    }
    if (rc == 0 && ps &&
        (!json_is_array(ps) || json_array_size(ps) > MAX_PEERS)) {
        rc = sprig__err(SPRIG_EINVAL,
                        "the cluster file's \"peers\" must be "
                        "an array of at most %d nodes",
                        MAX_PEERS);
    }
    for (size_t i = 0; rc == 0 && ps && i < json_array_size(ps); i++) {
        rc = get_peer(json_array_get(ps, i), &c->peers[i], "peer");
        c->n_peers = i + 1;
    }
    rc = rc ? rc : load_tls(c, json_object_get(j, "tls"), file);
    json_decref(j);
    return rc;
}

/* ---- the loop thread
 * --------------------------------------------------------- */

static void
on_wake(uv_async_t *h)
{
    sprig_cluster *c = h->data;
    sprig__cnode_pump(c->node);
}

static void
on_tick(uv_timer_t *h)
{
    sprig_cluster *c = h->data;
    sprig__cnode_pump(c->node);
}

static void
wake_fn(void *udata)
{
    uv_async_send(&((sprig_cluster *)udata)->wake);
}

static void
on_raft_closed(struct raft *r)
{
    sprig_cluster *c = r->data;
    raft_uv_close(&c->io); /* as dqlite does: in raft's close callback */
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->stop, NULL);
    uv_close((uv_handle_t *)&c->tick, NULL);
}

static void
on_stop(uv_async_t *h)
{
    sprig_cluster *c = h->data;
    sprig__ops_stop(c->ops);
    raft_close(&c->raft, on_raft_closed);
}

static int
bootstrap(sprig_cluster *c)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv =
        raft_configuration_add(&conf, c->self.id, c->self.raft, RAFT_VOTER);
    for (size_t i = 0; rv == 0 && i < c->n_peers; i++) {
        rv = raft_configuration_add(&conf, c->peers[i].id, c->peers[i].raft,
                                    RAFT_VOTER);
    }
    rv = rv ? rv : raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    return rv == RAFT_CANTBOOTSTRAP ? 0 : rv; /* it has state: a restart */
}

static void
tune(sprig_cluster *c)
{
    struct raft *r = &c->raft;
    raft_set_pre_vote(r, true);
    raft_set_heartbeat_timeout(r, 100);
    raft_set_election_timeout(r, 1000);
    /* snapshots rare (each copies the whole storage into memory); a long
     * tail for laggards; the cluster file may say otherwise */
    raft_set_snapshot_threshold(r, c->snap_threshold);
    raft_set_snapshot_trailing(r, c->snap_trailing);
}

static int
raft_setup(sprig_cluster *c)
{
    int rv = uv_loop_init(&c->loop);
    rv = rv       ? rv
         : c->tls ? sprig__ctls_transport(c->tls, &c->transport, &c->loop)
                  : raft_uv_tcp_init(&c->transport, &c->loop);
    rv = rv ? rv : raft_uv_init(&c->io, &c->loop, c->dir, &c->transport);
    rv = rv ? rv
            : raft_init(&c->raft, &c->io, sprig__cnode_fsm(c->node), c->self.id,
                        c->self.raft);
    if (rv) {
        snprintf(c->start_err, sizeof c->start_err, "%s",
                 rv > 0 ? raft_strerror(rv) : uv_strerror(rv));
        return rv;
    }
    c->raft.data = c;
    tune(c);
    sprig__cnode_attach(c->node, &c->raft);
    c->wake.data = c->stop.data = c;
    uv_async_init(&c->loop, &c->wake, on_wake);
    uv_async_init(&c->loop, &c->stop, on_stop);
    c->tick.data = c;
    uv_timer_init(&c->loop, &c->tick);
    uv_timer_start(&c->tick, on_tick, 200, 200);
    rv = c->bootstrap ? bootstrap(c) : 0;
    rv = rv ? rv : raft_start(&c->raft);
    if (rv == 0) {
        sprig__cnode_started(c->node); /* PubSub: older publishes are old */
    }
    if (rv) {
        snprintf(c->start_err, sizeof c->start_err, "%s (%s)",
                 raft_strerror(rv), raft_errmsg(&c->raft));
    } else {
        sprig__ops_start(c->ops, &c->loop, &c->raft);
    }
    return rv;
}

static void
started(sprig_cluster *c, int rc)
{
    pthread_mutex_lock(&c->lock);
    c->started = true;
    c->start_rc = rc;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *
loop_main(void *arg)
{
    sprig_cluster *c = arg;
    int rv = raft_setup(c);
    if (rv) {
        started(c, rv);
        return NULL; /* the opener cleans up */
    }
    started(c, 0);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    if (!c->tls) {
        raft_uv_tcp_close(&c->transport);
    }
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    return NULL;
}

/* ---- the public face
 * ------------------------------------------------------------ */

static int
start(sprig_cluster *c)
{
    if (pthread_create(&c->thread, NULL, loop_main, c) != 0) {
        return sprig__err(SPRIG_ENOMEM, "cannot start the Raft thread");
    }
    pthread_mutex_lock(&c->lock);
    while (!c->started) {
        pthread_cond_wait(&c->cond, &c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    if (c->start_rc) {
        pthread_join(c->thread, NULL);
        return sprig__err(SPRIG_EIO, "Raft did not start in '%s': %s", c->dir,
                          c->start_err);
    }
    return SPRIG_OK;
}

static int
set_urls(sprig_cluster *c)
{
    int rc = sprig__cnode_set_url(c->node, c->self.id, c->self.url);
    for (size_t i = 0; rc == 0 && i < c->n_peers; i++) {
        rc = sprig__cnode_set_url(c->node, c->peers[i].id, c->peers[i].url);
    }
    return rc;
}

int
sprig_cluster_open(const sprig_storage_options *so, const char *file,
                   sprig_cluster **out)
{
    if (!so || !so->path || !file || !out) {
        return sprig__err(SPRIG_EINVAL, "sprig_cluster_open needs storage "
                                        "options with a path, a file, out");
    }
    sprig_cluster *c = sprig__calloc(1, sizeof *c);
    if (!c) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    int rc = load_config(c, file);
    rc = rc ? rc : sprig__cnode_open(so, c->self.id, &c->node);
    rc = rc ? rc : sprig__ops_new(c->node, &c->ops);
    c->fresh = rc == 0 && !c->bootstrap && c->node->recovered_max == 0;
    rc = rc ? rc : set_urls(c);
    snprintf(c->dir, sizeof c->dir, "%s/raft", so->path);
    if (rc == 0 && mkdir(c->dir, 0755) != 0 && errno != EEXIST) {
        rc = sprig__err(SPRIG_EIO, "cannot create '%s': %s", c->dir,
                        strerror(errno));
    }
    if (rc == 0) {
        sprig__cnode_set_wake(c->node, wake_fn, c);
        rc = start(c);
    }
    if (rc) {
        sprig__cnode_close(c->node);
        sprig__ops_free(c->ops);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        sprig__ctls_free(c->tls);
        sprig__free(c);
        return rc;
    }
    *out = c;
    return SPRIG_OK;
}

sprig_storage *
sprig_cluster_storage(sprig_cluster *c)
{
    return c ? sprig__cnode_storage(c->node) : NULL;
}

void
sprig_cluster_close(sprig_cluster *c)
{
    if (!c) {
        return;
    }
    uv_async_send(&c->stop);
    pthread_join(c->thread, NULL);
    sprig__cnode_close(c->node);
    sprig__ops_free(c->ops);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    sprig__ctls_free(c->tls);
    sprig__free(c);
}

int
sprig_cluster_attach_server(sprig_cluster *c, sprig_server *srv)
{
    if (!c || !srv) {
        return sprig__err(SPRIG_EINVAL, "sprig_cluster_attach_server: NULL");
    }
    return sprig__ops_register(c->ops, srv);
}

bool
sprig_cluster_joining(sprig_cluster *c)
{
    return c && c->fresh && !sprig__ops_joined(c->ops);
}
