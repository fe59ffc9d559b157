/*
 * test_cluster_fixture.c -- the cluster's state machine (src/cluster) on
 * libraft's deterministic fixture (raft/fixture.h: in-process servers, a
 * fake clock, in-memory Raft I/O) over real temporary storages.
 *
 * Writes go through the public synchronous API, called in a helper thread
 * on one node while the test thread drives the fixture: it hands the
 * node's queued proposals to raft and steps the fixture only while a
 * proposal is in flight, so raft sees the same events in the same order on
 * every run (the seed picks the workload).  At the end every node's
 * storage is closed and every LMDB table of every environment is compared
 * byte for byte (as test_cmd_replay does), the node-local "raft.floor"
 * key excepted.
 *
 * Covered: an election and writes of every kind replicated to all (with
 * ENOTLEADER from a follower, naming the leader's URL); a partition (the
 * isolated leader never commits and answers "outcome unknown" once it
 * steps down, the majority elects and continues, the healed node catches
 * up and drops its uncommitted entry); a restart (the node's storage
 * reopened and every entry of the log applied again: each is skipped, an
 * increment is not doubled); snapshots (a node that missed entries the
 * others compacted catches up by InstallSnapshot, its storage replaced by
 * the copy); a membership change (a spare added, made a voter, removed).
 */
#include "testutil.h"

#include "cluster/cluster_int.h"
#include "core/cmd.h"
#include "local/local.h"

#include <dirent.h>
#include <lmdb.h>
#include <pthread.h>
#include <raft/fixture.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t seed;

static const sprig_collection_def colls[] = {{"pushed", SPRIG_ID_U64},
                                             {"named", SPRIG_ID_NATURAL}};
static const sprig_schema_def schema = {"app", colls, 2};

/* ---- a cluster on the fixture ------------------------------------------- */

#define MAXN 5

typedef struct cl {
    struct raft_fixture f;
    sprig__cnode *node[MAXN];
    char base[1024];
    unsigned n;
} cl;

/* Nodes of encrypted storages (test_snapshot_encrypted): every node holds
 * a copy of node 1's vault, under one key file, as docs/cluster.md says to
 * provision them. */
static bool encrypted;

static void
copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char b[4096];
    size_t n;
    while ((n = fread(b, 1, sizeof b, in)) > 0) {
        assert_int_equal(fwrite(b, 1, n, out), n);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void
encrypted_options(cl *c, unsigned i, sprig_storage_options *o)
{
    static char key[1200];
    char from[1300], to[1300];
    snprintf(key, sizeof key, "%s/vault.key", c->base);
    o->encrypt = true;
    o->vault_key_file = key;
    if (i > 0) { /* node 1 made the vault; the others get copies */
        snprintf(from, sizeof from, "%s/node1/vault", c->base);
        snprintf(to, sizeof to, "%s/node%u", c->base, i + 1);
        assert_int_equal(mkdir(to, 0755), 0);
        snprintf(to, sizeof to, "%s/node%u/vault", c->base, i + 1);
        copy_file(from, to);
    }
}

static void
node_open(cl *c, unsigned i)
{
    char path[1200];
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    snprintf(path, sizeof path, "%s/node%u", c->base, i + 1);
    o.path = path;
    if (encrypted) {
        encrypted_options(c, i, &o);
    }
    SPRIG_OK_(sprig__cnode_open(&o, i + 1, &c->node[i]));
    for (unsigned j = 0; j < MAXN; j++) {
        char url[64];
        snprintf(url, sizeof url, "ws://127.0.0.1:%u", 5001 + j);
        SPRIG_OK_(sprig__cnode_set_url(c->node[i], j + 1, url));
    }
}

static void
cl_init(cl *c, unsigned n, const char *tag)
{
    memset(c, 0, sizeof *c);
    snprintf(c->base, sizeof c->base, "%s", tu_tmpdir(tag));
    c->n = n;
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < n; i++) {
        node_open(c, i);
        assert_int_equal(raft_fixture_grow(&c->f, sprig__cnode_fsm(c->node[i])),
                         0);
        sprig__cnode_attach(c->node[i], raft_fixture_get(&c->f, i));
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&c->f, n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c->f), 0);
    for (unsigned i = 0; i < n; i++) {
        /* a node cut off does not bump its term and depose the leader
         * when it comes back (real nodes run with it too) */
        raft_set_pre_vote(raft_fixture_get(&c->f, i), true);
    }
}

/* Close raft first (it may answer in-flight writes), then the nodes. */
static void
cl_close(cl *c)
{
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < c->n; i++) {
        sprig__cnode_close(c->node[i]);
        c->node[i] = NULL;
    }
}

static bool
busy(cl *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->node[i] && (c->node[i]->queue || c->node[i]->pending ||
                           c->node[i]->bars || c->node[i]->bars_issued)) {
            return true;
        }
    }
    return false;
}

static void
pump_all(cl *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->node[i]) {
            sprig__cnode_pump(c->node[i]);
        }
    }
}

/* ---- calling the API in a helper thread ------------------------------------
 */

typedef struct job {
    int (*fn)(struct job *);
    sprig_storage *st;
    const char *db;
    uint64_t *rs;
    int n, rc;
    char msg[512]; /* the failure's detail, from the job's thread */
    atomic_bool done;
    pthread_t thread;
} job;

static void *
job_main(void *arg)
{
    job *j = arg;
    j->rc = j->fn(j);
    snprintf(j->msg, sizeof j->msg, "%s", j->rc ? sprig_errmsg() : "");
    atomic_store(&j->done, true);
    return NULL;
}

/* Drive the fixture until job `j` is answered: hand queued proposals to
 * raft and step only while a proposal is queued or in flight (otherwise
 * the job's thread is working: wait for it), so raft sees the same events
 * on every run.  At most `max_ms` of fake time; false if still waiting. */
static bool
drive(cl *c, job *j, unsigned max_ms)
{
    raft_time end = c->f.time + max_ms;
    while (!atomic_load(&j->done) && c->f.time < end) {
        pump_all(c);
        if (busy(c)) {
            raft_fixture_step(&c->f);
        } else {
            usleep(50);
        }
    }
    return atomic_load(&j->done);
}

/* Run j->fn on node i's storage in a thread, driving the fixture. */
static bool
run_job(cl *c, unsigned i, job *j, unsigned max_ms)
{
    j->st = sprig__cnode_storage(c->node[i]);
    atomic_store(&j->done, false);
    assert_int_equal(pthread_create(&j->thread, NULL, job_main, j), 0);
    if (!drive(c, j, max_ms)) {
        return false; /* still waiting: the caller finishes it */
    }
    pthread_join(j->thread, NULL);
    return true;
}

/* Drive the fixture until the stuck job `j` answers (or fail). */
static void
finish_job(cl *c, job *j, unsigned max_ms)
{
    if (!drive(c, j, max_ms)) {
        for (unsigned i = 0; i < c->n; i++) {
            print_message("node %u: state %d\n", i + 1,
                          raft_state(raft_fixture_get(&c->f, i)));
        }
    }
    assert_true(atomic_load(&j->done));
    pthread_join(j->thread, NULL);
}

/* The workload: schema, database, documents, transactions, key-value. */
static int
job_setup(job *j)
{
    int rc = sprig_storage_register_schema(j->st, &schema);
    rc = rc ? rc : sprig_storage_create_database(j->st, j->db, "app", false);
    return rc;
}

static int
job_docs(job *j)
{
    sprig_db *db;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    for (int i = 0; rc == 0 && i < j->n; i++) {
        char body[64], id[16];
        snprintf(body, sizeof body, "{\"i\":%d,\"r\":%llu}", i,
                 (unsigned long long)(tu_rand(j->rs) % 1000));
        snprintf(id, sizeof id, "n%llu",
                 (unsigned long long)(tu_rand(j->rs) % 12));
        sprig_bytes nid = sprig_str(id);
        sprig_value one = sprig_value_of_i64(1);
        sprig_value v = sprig_value_of_u64(tu_rand(j->rs) % 100);
        sprig_kv_status status;
        switch (tu_rand(j->rs) % 5) {
        case 0:
            rc = sprig_insert(db, "pushed", NULL, sprig_str(body), NULL);
            break;
        case 1:
            rc = sprig_insert(db, "named", &nid, sprig_str(body), NULL);
            rc = rc == SPRIG_ECONFLICT ? 0 : rc; /* a deterministic refusal */
            break;
        case 2:
            rc = sprig_overwrite(db, "named", nid, sprig_str(body), NULL);
            break;
        case 3:
            rc = sprig_kv_increment(db, "ns", "counter", &one, false, NULL);
            break;
        default:
            rc = sprig_kv_set(db, "ns", id, &v, NULL, &status, NULL);
            break;
        }
    }
    sprig_db_close(db);
    return rc;
}

static int
job_one_insert(job *j)
{
    sprig_db *db;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    rc = rc ? rc
            : sprig_overwrite(db, "named", sprig_str("marker"),
                              sprig_str("{\"lost\":true}"), NULL);
    sprig_db_close(db);
    return rc;
}

static int
job_admin(job *j)
{
    int rc = sprig_storage_create_database(j->st, "scratch", "app", false);
    rc = rc ? rc : sprig_storage_delete_database(j->st, "scratch");
    return rc ? rc
              : sprig_storage_create_database(j->st, "scratch", "app", false);
}

static void
run_ok(cl *c, unsigned i, int (*fn)(job *), const char *db, int n)
{
    job j = {.fn = fn, .db = db, .n = n, .rs = &seed};
    assert_true(run_job(c, i, &j, 60000));
    if (j.rc) {
        print_message("job on node %u: %s\n", i + 1, j.msg);
    }
    assert_int_equal(j.rc, 0);
}

/* ---- comparing storages
 * ------------------------------------------------------ */

#include "storedump.h"

/* Node i's storage (closed); "raft.floor" and "wal.lsn" (the position of
 * the node's own command log) are node-local. */
static void
dump_node(const cl *c, unsigned i, sprig_buf *out)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/node%u", c->base, i + 1);
    sd_dump_storage(p, "raft.floor,wal.lsn", out);
}

/* After cl_close: nodes [0, n) hold byte-identical storages. */
static void
assert_identical(const cl *c, unsigned n)
{
    sprig_buf first = {0};
    dump_node(c, 0, &first);
    assert_true(first.len > 500);
    for (unsigned i = 1; i < n; i++) {
        sprig_buf other = {0};
        dump_node(c, i, &other);
        print_message("node %u: %zu bytes of tables, node 1: %zu\n", i + 1,
                      other.len, first.len);
        assert_int_equal(other.len, first.len);
        assert_memory_equal(other.data, first.data, first.len);
        sprig_buf_clear(&other);
    }
    sprig_buf_clear(&first);
}

static bool
member(struct raft *leader, raft_id id)
{
    for (unsigned k = 0; k < leader->configuration.n; k++) {
        if (leader->configuration.servers[k].id == id) {
            return true;
        }
    }
    return false;
}

/* Step until every live member applied the leader's last entry. */
static void
settle(cl *c)
{
    unsigned l = raft_fixture_leader_index(&c->f);
    assert_true(l < c->n);
    raft_index last = raft_last_index(raft_fixture_get(&c->f, l));
    for (unsigned i = 0; i < c->n; i++) {
        if (raft_fixture_alive(&c->f, i) &&
            member(raft_fixture_get(&c->f, l), i + 1) &&
            !raft_fixture_step_until_applied(&c->f, i, last, 10000)) {
            struct raft *r = raft_fixture_get(&c->f, i);
            print_message(
                "node %u: applied %llu of %llu (leader %u), "
                "commit %llu, last %llu, state %d, term %llu/%llu\n",
                i + 1, (unsigned long long)raft_last_applied(r),
                (unsigned long long)last, l + 1,
                (unsigned long long)r->commit_index,
                (unsigned long long)raft_last_index(r), raft_state(r),
                (unsigned long long)r->current_term,
                (unsigned long long)raft_fixture_get(&c->f, l)->current_term);
            fail();
        }
    }
}

/* ---- the tests
 * ----------------------------------------------------------------- */

static void
test_election_and_replication(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_repl");
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    run_ok(&c, 0, job_docs, "app", 120);
    run_ok(&c, 0, job_admin, "app", 0);

    /* a follower refuses, naming the leader and its URL */
    job j = {.fn = job_one_insert, .db = "app"};
    assert_true(run_job(&c, 1, &j, 1000));
    assert_int_equal(j.rc, SPRIG_ENOTLEADER);
    print_message("follower: %s\n", j.msg);
    assert_non_null(strstr(j.msg, "leader is node 1 at ws://127.0.0.1:5001"));
    settle(&c);
    sprig__cnode_stats s0, s1;
    sprig__cnode_stats_get(c.node[0], &s0);
    sprig__cnode_stats_get(c.node[1], &s1);
    assert_int_equal(s0.applied, s1.applied);
    assert_true(s0.proposed > 120 && s1.refused == 1);
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

static void
test_partition(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_partition");
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    run_ok(&c, 0, job_docs, "app", 30);
    /* isolate the leader: a minority of one */
    for (unsigned i = 1; i < 3; i++) {
        raft_fixture_disconnect(&c.f, 0, i);
        raft_fixture_disconnect(&c.f, i, 0);
    }
    job lost = {.fn = job_one_insert, .db = "app"};
    assert_false(run_job(&c, 0, &lost, 200)); /* never commits */
    /* the majority elects a leader of its own and goes on */
    assert_true(raft_fixture_step_until_has_no_leader(&c.f, 5000) ||
                raft_fixture_leader_index(&c.f) != 0);
    finish_job(&c, &lost, 10000); /* the old leader stepped down */
    print_message("isolated leader: %s\n", lost.msg);
    assert_int_equal(lost.rc, SPRIG_ETIMEDOUT);
    unsigned l = 0;
    for (raft_time end = c.f.time + 10000; l == 0 && c.f.time < end;) {
        raft_fixture_step(&c.f);
        for (unsigned i = 1; i < 3; i++) {
            if (raft_state(raft_fixture_get(&c.f, i)) == RAFT_LEADER) {
                l = i;
            }
        }
    }
    assert_true(l == 1 || l == 2);
    run_ok(&c, l, job_docs, "app", 30);
    /* heal: the old leader catches up and drops its uncommitted entry */
    for (unsigned i = 1; i < 3; i++) {
        raft_fixture_reconnect(&c.f, 0, i);
        raft_fixture_reconnect(&c.f, i, 0);
    }
    run_ok(&c, l, job_docs, "app", 5);
    settle(&c);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(sprig__cnode_storage(c.node[0]),
                                          "app", &db));
    sprig_doc *d = NULL;
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_get(db, "named", sprig_str("marker"), &d));
    sprig_db_close(db);
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

/* ---- restart: the log applied again to a reopened storage ---------------- */

/* PubSub (its block is below): 2 x PUBS publishes from two threads. */
#define PUBS 24
static int job_publish_two(job *j);

typedef struct tap_fsm {
    struct raft_fsm fsm; /* first: what raft sees */
    struct raft_fsm *inner;
    struct raft *raft;
    struct raft_buffer *entries;
    raft_index *index;
    size_t n;
} tap_fsm;

static int
tap_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    tap_fsm *t = (tap_fsm *)fsm;
    t->entries = realloc(t->entries, (t->n + 1) * sizeof *t->entries);
    t->index = realloc(t->index, (t->n + 1) * sizeof *t->index);
    t->index[t->n] = raft_last_applied(t->raft) + 1;
    t->entries[t->n].base = malloc(buf->len);
    memcpy(t->entries[t->n].base, buf->base, buf->len);
    t->entries[t->n++].len = buf->len;
    return t->inner->apply(t->inner, buf, result);
}

static uint64_t
counter_of(sprig_storage *st)
{
    sprig_db *db;
    int64_t v = 0;
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    int rc = sprig_kv_get_i64(db, "ns", "counter", &v);
    sprig_db_close(db);
    assert_true(rc == 0 || rc == SPRIG_ENOTFOUND);
    return (uint64_t)v;
}

static void
test_restart_applies_once(void **state)
{
    (void)state;
    cl c;
    memset(&c, 0, sizeof c);
    snprintf(c.base, sizeof c.base, "%s", tu_tmpdir("cluster_restart"));
    c.n = 3;
    tap_fsm taps[3];
    assert_int_equal(raft_fixture_initialize(&c.f), 0);
    for (unsigned i = 0; i < 3; i++) {
        node_open(&c, i);
        taps[i] = (tap_fsm){*sprig__cnode_fsm(c.node[i]),
                            sprig__cnode_fsm(c.node[i]),
                            NULL,
                            NULL,
                            NULL,
                            0};
        taps[i].fsm.apply = tap_apply;
        taps[i].fsm.data = c.node[i]->fsm.data;
        assert_int_equal(raft_fixture_grow(&c.f, &taps[i].fsm), 0);
        sprig__cnode_attach(c.node[i], raft_fixture_get(&c.f, i));
        taps[i].raft = raft_fixture_get(&c.f, i);
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&c.f, 3, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c.f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c.f), 0);
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    run_ok(&c, 0, job_docs, "app", 80);
    run_ok(&c, 0, job_publish_two, "app", 0);
    run_ok(&c, 0, job_admin, "app", 0);
    settle(&c);
    uint64_t counter = counter_of(sprig__cnode_storage(c.node[2]));

    /* node 3 restarts: its storage reopens; raft would apply the whole log
     * again (no snapshot yet): every entry must be skipped */
    raft_fixture_kill(&c.f, 2);
    sprig__cnode *old = c.node[2];
    c.node[2] = NULL;
    sprig__storage_replicate(sprig__cnode_storage(old), NULL);
    sprig_storage_close(old->st);
    old->st = NULL;
    node_open(&c, 2);
    struct raft fake;
    memset(&fake, 0, sizeof fake);
    sprig__cnode_attach(c.node[2], &fake);
    struct raft_fsm *fsm = sprig__cnode_fsm(c.node[2]);
    sprig__cnode_stats st;
    /* a subscriber of the restarted node gets none of the old messages */
    sprig_db *sdb;
    sprig_subscriber *sub;
    sprig_message *m;
    SPRIG_OK_(sprig_storage_open_database(sprig__cnode_storage(c.node[2]),
                                          "app", &sdb));
    SPRIG_OK_(sprig_subscriber_new(sdb, &sub));
    SPRIG_OK_(sprig_subscribe(sub, sprig_str("t")));
    for (size_t k = 0; k < taps[2].n; k++) {
        void *res;
        fake.last_applied = taps[2].index[k] - 1;
        assert_int_equal(fsm->apply(fsm, &taps[2].entries[k], &res), 0);
    }
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_subscriber_recv(sub, 0, &m));
    sprig_subscriber_free(sub);
    sprig_db_close(sdb);
    sprig__cnode_stats_get(c.node[2], &st);
    print_message("restart: %zu entries replayed, %llu skipped, %llu run "
                  "again (all refused: %llu), %llu old publishes\n",
                  taps[2].n, (unsigned long long)st.skipped,
                  (unsigned long long)st.applied, (unsigned long long)st.failed,
                  (unsigned long long)st.stale_publishes);
    /* only a tail of refused commands runs again (no later success on
     * their database recorded a higher index); it changes nothing */
    assert_int_equal(st.skipped + st.applied + st.stale_publishes, taps[2].n);
    assert_int_equal(st.stale_publishes, 2 * PUBS);
    assert_int_equal(st.applied, st.failed);
    assert_true(st.skipped > taps[2].n - 2 * PUBS - 5);
    assert_int_equal(counter_of(sprig__cnode_storage(c.node[2])), counter);
    /* the rest of the group is unaffected; close and compare */
    sprig__cnode_close(c.node[2]);
    c.node[2] = NULL;
    raft_fixture_close(&c.f);
    for (unsigned i = 0; i < 2; i++) {
        sprig__cnode_close(c.node[i]);
        c.node[i] = NULL;
    }
    sprig__cnode_close(old);
    assert_identical(&c, 3);
    for (unsigned i = 0; i < 3; i++) {
        for (size_t k = 0; k < taps[i].n; k++) {
            free(taps[i].entries[k].base);
        }
        free(taps[i].entries);
        free(taps[i].index);
    }
    tu_rmtree(c.base);
}

/* ---- request ids: a retried write is applied once ----------------------- */

static uint8_t rid_incr[16], rid_ins[16];
static int64_t got_incr;
static sprig_header_buf got_ins;

/* One increment of "hits" under request id rid_incr (the thread's current
 * request id, as the server sets it for a request's handler). */
static int
job_rid_incr(job *j)
{
    sprig_db *db;
    sprig_value one = sprig_value_of_i64(1), out = {0};
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    sprig__rid_set_current(rid_incr);
    rc = rc ? rc : sprig_kv_increment(db, "ns", "hits", &one, false, &out);
    sprig__rid_set_current(NULL);
    got_incr = rc ? -1 : out.num.i64;
    sprig_value_clear(&out);
    sprig_db_close(db);
    return rc;
}

/* One insert with a generated id under request id rid_ins. */
static int
job_rid_insert(job *j)
{
    sprig_db *db;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    sprig__rid_set_current(rid_ins);
    rc = rc ? rc
            : sprig_insert(db, "pushed", NULL, sprig_str("{\"once\":1}"),
                           &got_ins);
    sprig__rid_set_current(NULL);
    sprig_db_close(db);
    return rc;
}

static int64_t
hits_of(sprig_storage *st)
{
    sprig_db *db;
    int64_t v = 0;
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    SPRIG_OK_(sprig_kv_get_i64(db, "ns", "hits", &v));
    sprig_db_close(db);
    return v;
}

static uint64_t
pushed_of(sprig_storage *st)
{
    sprig_db *db;
    uint64_t n = 0;
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    SPRIG_OK_(sprig_count(db, "pushed", NULL, &n));
    sprig_db_close(db);
    return n;
}

/* Node i runs both writes again with the same ids: the first answers. */
static void
rid_again(cl *c, unsigned i, int64_t incr, const sprig_header_buf *ins)
{
    got_incr = 0;
    memset(&got_ins, 0, sizeof got_ins);
    run_ok(c, i, job_rid_incr, "app", 0);
    run_ok(c, i, job_rid_insert, "app", 0);
    assert_int_equal(got_incr, incr);
    assert_int_equal(got_ins.id_len, ins->id_len);
    assert_memory_equal(got_ins.id, ins->id, ins->id_len);
    assert_int_equal(got_ins.revision, ins->revision);
    assert_memory_equal(got_ins.hash, ins->hash, 16);
}

static void
test_request_ids(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_rid");
    for (int i = 0; i < 16; i++) {
        rid_incr[i] = (uint8_t)tu_rand(&seed);
        rid_ins[i] = (uint8_t)tu_rand(&seed);
    }
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    run_ok(&c, 0, job_docs, "app", 10);
    run_ok(&c, 0, job_rid_incr, "app", 0);
    run_ok(&c, 0, job_rid_insert, "app", 0);
    int64_t incr = got_incr;
    sprig_header_buf ins = got_ins;
    assert_int_equal(incr, 1);
    assert_int_equal(ins.revision, 1);
    uint64_t pushed = pushed_of(sprig__cnode_storage(c.node[0]));
    /* the same request ids again on the leader: nothing applied twice */
    rid_again(&c, 0, incr, &ins);
    settle(&c);
    /* on a new leader (a retry after failover) */
    raft_fixture_depose(&c.f);
    raft_fixture_elect(&c.f, 1);
    rid_again(&c, 1, incr, &ins);
    /* the leader's storage closed and reopened: the table is on disk */
    settle(&c);
    sprig__cnode_storage_close(c.node[1]);
    SPRIG_OK_(sprig__cnode_storage_open(c.node[1]));
    rid_again(&c, 1, incr, &ins);
    /* a fresh request id is applied: the table does not swallow writes */
    rid_incr[0] ^= 0xff;
    run_ok(&c, 1, job_rid_incr, "app", 0);
    assert_int_equal(got_incr, incr + 1);
    settle(&c);
    for (unsigned i = 0; i < 3; i++) {
        sprig_storage *st = sprig__cnode_storage(c.node[i]);
        assert_int_equal(hits_of(st), incr + 1);
        assert_int_equal(pushed_of(st), pushed);
    }
    sprig__cnode_stats s1;
    sprig__cnode_stats_get(c.node[1], &s1);
    print_message("request ids: 3 retries of 2 writes answered from the "
                  "table; node 2 applied %llu entries\n",
                  (unsigned long long)s1.applied);
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

/* ---- linearizable reads: a deposed leader never answers stale --------- */

static int64_t got_v;

static int
job_set_v(job *j)
{
    sprig_db *db;
    sprig_value v = sprig_value_of_i64(j->n);
    sprig_kv_status status;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    rc = rc ? rc : sprig_kv_set(db, "ns", "v", &v, NULL, &status, NULL);
    sprig_db_close(db);
    return rc;
}

/* Read "v"; j->n != 0: linearizably (the storage's read barrier first,
 * as the server does for a request with "lin": true). */
static int
job_read_v(job *j)
{
    sprig_db *db;
    got_v = -1;
    int rc = j->n ? sprig__storage_read_barrier(j->st) : 0;
    rc = rc ? rc : sprig_storage_open_database(j->st, j->db, &db);
    if (rc == 0) {
        rc = sprig_kv_get_i64(db, "ns", "v", &got_v);
        sprig_db_close(db);
    }
    return rc;
}

static int
read_v(cl *c, unsigned i, bool lin, int64_t *v)
{
    job j = {.fn = job_read_v, .db = "app", .n = lin};
    assert_true(run_job(c, i, &j, 10000));
    if (j.rc) {
        print_message("%s read on node %u: %s\n", lin ? "linearizable" : "a",
                      i + 1, j.msg);
    }
    *v = got_v;
    return j.rc;
}

static void
test_linearizable_reads(void **state)
{
    (void)state;
    cl c;
    int64_t v;
    cl_init(&c, 3, "cluster_lin");
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    run_ok(&c, 0, job_set_v, "app", 1);
    settle(&c);
    assert_int_equal(read_v(&c, 0, true, &v), 0); /* the leader confirms */
    assert_int_equal(v, 1);
    /* a follower refuses a linearizable read, naming the leader */
    assert_int_equal(read_v(&c, 1, true, &v), SPRIG_ENOTLEADER);
    /* cut the leader off: while it still believes it leads, it cannot
     * confirm a read, and once deposed it fails it */
    for (unsigned i = 1; i < 3; i++) {
        raft_fixture_disconnect(&c.f, 0, i);
        raft_fixture_disconnect(&c.f, i, 0);
    }
    job stuck = {.fn = job_read_v, .db = "app", .n = 1};
    assert_false(run_job(&c, 0, &stuck, 200));
    unsigned l = 0;
    for (raft_time end = c.f.time + 10000; l == 0 && c.f.time < end;) {
        raft_fixture_step(&c.f);
        for (unsigned i = 1; i < 3; i++) {
            if (raft_state(raft_fixture_get(&c.f, i)) == RAFT_LEADER) {
                l = i;
            }
        }
    }
    assert_true(l == 1 || l == 2);
    finish_job(&c, &stuck, 10000);
    print_message("the cut-off leader's read: %s\n", stuck.msg);
    assert_true(stuck.rc == SPRIG_ETIMEDOUT || stuck.rc == SPRIG_ENOTLEADER);
    /* the new leader writes; the old one, still cut off, has the old
     * value: a default read returns it (the test can tell), a
     * linearizable one refuses */
    run_ok(&c, l, job_set_v, "app", 2);
    assert_int_equal(read_v(&c, 0, false, &v), 0);
    assert_int_equal(v, 1);
    int rc = read_v(&c, 0, true, &v);
    assert_true(rc == SPRIG_ENOTLEADER || rc == SPRIG_ETIMEDOUT);
    assert_int_equal(read_v(&c, l, true, &v), 0);
    assert_int_equal(v, 2);
    for (unsigned i = 1; i < 3; i++) {
        raft_fixture_reconnect(&c.f, 0, i);
        raft_fixture_reconnect(&c.f, i, 0);
    }
    run_ok(&c, l, job_set_v, "app", 3);
    settle(&c);
    sprig__cnode_stats s;
    sprig__cnode_stats_get(c.node[l], &s);
    assert_true(s.barriers >= 1);
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

static int
job_scratch(job *j)
{
    return sprig_storage_create_database(j->st, "scratch", "app", false);
}

/* "scratch" deleted and created again (a new directory), a key that
 * expires in an hour (so the sweeper of every node has work to watch). */
static int
job_recreate(job *j)
{
    int rc = sprig_storage_delete_database(j->st, "scratch");
    return rc ? rc : job_scratch(j);
}

static int
job_ttl(job *j)
{
    sprig_db *db;
    sprig_value v = sprig_value_of_u64(7);
    sprig_kv_set_opts o = {.expire_in_ms = 3600 * 1000};
    sprig_kv_status status;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    rc = rc ? rc : sprig_kv_set(db, "ns", "ttl", &v, &o, &status, NULL);
    sprig_db_close(db);
    return rc;
}

/* Read every change of feed `f` now waiting; the count. */
static size_t
drain_feed(sprig_changes *f)
{
    sprig_change_event ev;
    size_t n = 0;
    int rc;
    while ((rc = sprig_changes_next(f, 0, &ev)) == 0) {
        n++;
    }
    assert_int_equal(rc, SPRIG_ETIMEDOUT);
    return n;
}

static uint64_t
count_of(sprig_db *db, const char *coll)
{
    uint64_t n = 0;
    SPRIG_OK_(sprig_count(db, coll, NULL, &n));
    return n;
}

/* Handles node 3 holds across its snapshot install. */
typedef struct held {
    sprig_db *app, *scratch;
    sprig_changes *feed;
    size_t seen; /* changes the feed delivered */
} held;

static void
hold(sprig_storage *st, held *h)
{
    SPRIG_OK_(sprig_storage_open_database(st, "app", &h->app));
    SPRIG_OK_(sprig_storage_open_database(st, "scratch", &h->scratch));
    SPRIG_OK_(sprig_changes_open(h->app, 0, NULL, 0, &h->feed));
    h->seen = drain_feed(h->feed);
    sprig__kv_stats ks;
    sprig__kv_stats_get(h->app, &ks);
    assert_true(h->seen > 0 && ks.housekeeper); /* the sweeper runs */
}

/* After the install: the same handles read the leader's data. */
static void
check_held(cl *c, held *h)
{
    sprig_db *lead;
    SPRIG_OK_(sprig_storage_open_database(sprig__cnode_storage(c->node[0]),
                                          "app", &lead));
    assert_int_equal(count_of(h->app, "pushed"), count_of(lead, "pushed"));
    assert_int_equal(count_of(h->app, "named"), count_of(lead, "named"));
    int64_t a = -1, b = -2;
    SPRIG_OK_(sprig_kv_get_i64(h->app, "ns", "counter", &a));
    SPRIG_OK_(sprig_kv_get_i64(lead, "ns", "counter", &b));
    assert_int_equal(a, b);
    /* the feed delivers what it missed, up to the leader's last change */
    sprig_changes *lf;
    SPRIG_OK_(sprig_changes_open(lead, 0, NULL, 0, &lf));
    size_t all = drain_feed(lf), more = drain_feed(h->feed);
    print_message("feed: %zu changes before the install, %zu after; "
                  "leader: %zu\n",
                  h->seen, more, all);
    assert_true(more > 0);
    assert_int_equal(sprig_changes_last(h->feed), sprig_changes_last(lf));
    sprig_changes_close(lf);
    sprig_db_close(lead);
    /* "scratch" was deleted and made anew: the old handle says so */
    uint64_t n = 0;
    assert_int_equal(sprig_count(h->scratch, "named", NULL, &n),
                     SPRIG_ENOTFOUND);
    assert_non_null(strstr(sprig_errmsg(), "database 'scratch' was deleted"));
    sprig_db *fresh;
    SPRIG_OK_(sprig_storage_open_database(sprig__cnode_storage(c->node[2]),
                                          "scratch", &fresh));
    assert_int_equal(count_of(fresh, "named"), 0);
    sprig_db_close(fresh);
    sprig_changes_close(h->feed);
    sprig_db_close(h->scratch);
    sprig_db_close(h->app);
}

static void
test_snapshot_catch_up(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_snapshot");
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c.f, i), 16);
        raft_set_snapshot_trailing(raft_fixture_get(&c.f, i), 4);
    }
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    run_ok(&c, 0, job_docs, "app", 10);
    run_ok(&c, 0, job_scratch, "app", 0);
    run_ok(&c, 0, job_ttl, "app", 0);
    settle(&c);
    /* node 3 holds handles, a changes feed and its sweeper runs, then
     * misses many entries; the others compact their logs */
    held h = {0};
    hold(sprig__cnode_storage(c.node[2]), &h);
    raft_fixture_kill(&c.f, 2);
    run_ok(&c, 0, job_docs, "app", 60);
    run_ok(&c, 0, job_recreate, "app", 0);
    sprig__cnode_stats s0, s2;
    sprig__cnode_stats_get(c.node[0], &s0);
    assert_true(s0.snapshots >= 2);
    raft_fixture_revive(&c.f, 2);
    run_ok(&c, 0, job_docs, "app", 3);
    settle(&c);
    sprig__cnode_stats_get(c.node[2], &s2);
    print_message("leader took %llu snapshots; node 3 restored %llu\n",
                  (unsigned long long)s0.snapshots,
                  (unsigned long long)s2.restored);
    assert_true(s2.restored >= 1);
    check_held(&c, &h);
    assert_int_equal(counter_of(sprig__cnode_storage(c.node[2])),
                     counter_of(sprig__cnode_storage(c.node[0])));
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

/* ---- encrypted storages ------------------------------------------------ */

/* Append the decrypted contents of node i's database "app" to `out`:
 * every document (id, revision, hash, contents) of both collections and
 * every key-value pair. */
static void
plain_dump(cl *c, unsigned i, sprig_buf *out)
{
    char path[1200], key[1200];
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    snprintf(path, sizeof path, "%s/node%u", c->base, i + 1);
    snprintf(key, sizeof key, "%s/vault.key", c->base);
    o.path = path;
    o.vault_key_file = key;
    sprig_storage *st;
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    for (size_t k = 0; k < 2; k++) {
        sprig_doc_list *l;
        SPRIG_OK_(sprig_list(db, colls[k].name, NULL, SPRIG_ASC, 0, &l));
        for (size_t d = 0; d < sprig_doc_list_count(l); d++) {
            const sprig_doc *doc = sprig_doc_list_get(l, d);
            sprig_header h = sprig_doc_header(doc);
            sprig_bytes b = sprig_doc_contents(doc);
            SPRIG_OK_(sprig_buf_append(out, h.id.data, h.id.len));
            SPRIG_OK_(sprig_buf_append(out, &h.revision, 8));
            SPRIG_OK_(sprig_buf_append(out, h.hash, 16));
            SPRIG_OK_(sprig_buf_append(out, b.data, b.len));
        }
        sprig_doc_list_free(l);
    }
    sprig_kv_key_list *kl;
    SPRIG_OK_(sprig_kv_list_keys(db, "ns", NULL, NULL, 0, &kl));
    for (size_t k = 0; k < sprig_kv_key_list_count(kl); k++) {
        const char *name = sprig_kv_key_list_key(kl, k);
        const sprig_value *v = sprig_kv_key_list_value(kl, k);
        SPRIG_OK_(sprig_buf_append(out, name, strlen(name) + 1));
        SPRIG_OK_(sprig_buf_append(out, &v->num, sizeof v->num));
        SPRIG_OK_(sprig_buf_append(out, v->bytes.data, v->bytes.len));
    }
    sprig_kv_key_list_free(kl);
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* Whether any file below `dir` contains `needle`. */
static bool
tree_has(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    bool found = false;
    while (!found && (de = readdir(d))) {
        char p[2400];
        struct stat sb;
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        assert_int_equal(stat(p, &sb), 0);
        if (S_ISDIR(sb.st_mode)) {
            found = tree_has(p, needle);
            continue;
        }
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        char *b = malloc((size_t)sb.st_size + 1);
        size_t n = fread(b, 1, (size_t)sb.st_size, f);
        fclose(f);
        found = memmem(b, n, needle, strlen(needle)) != NULL;
        free(b);
    }
    closedir(d);
    return found;
}

/* Encrypted nodes (copies of one vault) catch up by snapshot: the copy
 * carries sealed values and the vault's fingerprint; the nodes hold the
 * same decrypted data, their raw bytes differ (every node seals with its
 * own random nonces), and no plaintext reaches any node's files. */
static void
test_snapshot_encrypted(void **state)
{
    (void)state;
    cl c;
    encrypted = true;
    cl_init(&c, 3, "cluster_snapshot_enc");
    encrypted = false;
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c.f, i), 16);
        raft_set_snapshot_trailing(raft_fixture_get(&c.f, i), 4);
    }
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    run_ok(&c, 0, job_docs, "app", 10);
    settle(&c);
    raft_fixture_kill(&c.f, 2);
    run_ok(&c, 0, job_docs, "app", 60);
    raft_fixture_revive(&c.f, 2);
    run_ok(&c, 0, job_docs, "app", 3);
    settle(&c);
    sprig__cnode_stats s2;
    sprig__cnode_stats_get(c.node[2], &s2);
    assert_true(s2.restored >= 1);
    cl_close(&c);
    sprig_buf plain[3] = {{0}}, raw1 = {0}, raw3 = {0};
    for (unsigned i = 0; i < 3; i++) {
        plain_dump(&c, i, &plain[i]);
    }
    print_message("encrypted: %zu bytes of decrypted data per node\n",
                  plain[0].len);
    assert_true(plain[0].len > 200);
    for (unsigned i = 1; i < 3; i++) {
        assert_int_equal(plain[i].len, plain[0].len);
        assert_memory_equal(plain[i].data, plain[0].data, plain[0].len);
    }
    dump_node(&c, 0, &raw1);
    dump_node(&c, 2, &raw3);
    assert_true(raw1.len != raw3.len ||
                memcmp(raw1.data, raw3.data, raw1.len) != 0);
    for (unsigned i = 0; i < 3; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/node%u", c.base, i + 1);
        assert_false(tree_has(p, "\"r\":")); /* every body has one */
        sprig_buf_clear(&plain[i]);
    }
    sprig_buf_clear(&raw1);
    sprig_buf_clear(&raw3);
    tu_rmtree(c.base);
}

/* A node whose vault is not the snapshot's refuses to install it. */
static void
test_snapshot_other_vault(void **state)
{
    (void)state;
    char src[1200], dst[1300], key[1300];
    snprintf(src, sizeof src, "%s", tu_tmpdir("cluster_vault_other"));
    snprintf(key, sizeof key, "%s/k1", src);
    snprintf(dst, sizeof dst, "%s/snap", src);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    char p1[1300], p2[1300];
    snprintf(p1, sizeof p1, "%s/a", src);
    snprintf(p2, sizeof p2, "%s/b", src);
    o.encrypt = true;
    o.vault_key_file = key;
    o.path = p1;
    sprig_storage *a, *b;
    SPRIG_OK_(sprig_storage_open(&o, &a));
    o.path = p2; /* its own vault, under the same key */
    SPRIG_OK_(sprig_storage_open(&o, &b));
    SPRIG_OK_(sprig_storage_register_schema(a, &schema));
    SPRIG_OK_(sprig__storage_snapshot(a, dst));
    assert_int_equal(sprig__storage_install(b, dst), SPRIG_EAUTH);
    print_message("other vault: %s\n", sprig_errmsg());
    assert_non_null(strstr(sprig_errmsg(), "needs the same vault"));
    sprig_schema_list *l;
    SPRIG_OK_(sprig_storage_list_schemas(b, &l));
    assert_int_equal(sprig_schema_list_count(l), 0); /* untouched */
    sprig_schema_list_free(l);
    sprig_storage_close(a);
    sprig_storage_close(b);
    tu_rmtree(src);
}

/* ---- C views after an install ------------------------------------------ */

static int
len_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    (void)udata;
    uint8_t k[8];
    sprig_key_u64(sprig_doc_contents(doc).len % 3, k);
    return sprig_emit(e, (sprig_bytes){k, 8}, sprig_str("1"));
}

/* An eager C view: every node maps inside apply, so every node needs its
 * code (the program registers the schema on each). */
static const sprig_view_def vviews[] = {{.name = "by_len",
                                         .version = 1,
                                         .policy = SPRIG_VIEW_EAGER,
                                         .map = len_map}};
static const sprig_collection_def vcolls[] = {
    {"items", SPRIG_ID_NATURAL, 0, vviews, 1}};
static const sprig_schema_def vschema = {"vs", vcolls, 1};

static int
job_vsetup(job *j)
{
    int rc = sprig_storage_register_schema(j->st, &vschema);
    return rc ? rc : sprig_storage_create_database(j->st, j->db, "vs", false);
}

static int
job_vdocs(job *j)
{
    static unsigned next;
    sprig_db *db;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    for (int i = 0; rc == 0 && i < j->n; i++) {
        char id[32], body[64];
        snprintf(id, sizeof id, "d%u", next++);
        snprintf(body, sizeof body, "{\"pad\":\"%.*s\"}", (int)(next % 7),
                 "xxxxxxx");
        rc = sprig_insert(db, "items",
                          &(sprig_bytes){(const uint8_t *)id, strlen(id)},
                          sprig_str(body), NULL);
    }
    sprig_db_close(db);
    return rc;
}

/* The mappings of view by_len through handle `db`. */
static size_t
mappings(sprig_db *db)
{
    sprig_view_query q;
    sprig_mapping_list *l;
    sprig_view_query_init(&q, "items", "by_len");
    int rc = sprig_view_query_mappings(db, &q, &l);
    if (rc) {
        print_message("view query: %s\n", sprig_errmsg());
    }
    SPRIG_OK_(rc);
    size_t n = sprig_mapping_list_count(l);
    sprig_mapping_list_free(l);
    return n;
}

static size_t
mappings_of(sprig_storage *st, const char *name)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, name, &db));
    size_t n = mappings(db);
    sprig_db_close(db);
    return n;
}

/* Node 3 catches up by snapshot while it holds a handle on "v1"; "v2"
 * appears meanwhile.  Its C view keeps working through the old handle and
 * on the new database (the program's registration survives the install:
 * the schema read back from `_admin` has no code), and writes after the
 * install map on node 3 as on the others (byte-identical at the end). */
static void
test_snapshot_c_views(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_snapshot_views");
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c.f, i), 16);
        raft_set_snapshot_trailing(raft_fixture_get(&c.f, i), 4);
    }
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_vsetup, "v1", 0);
    settle(&c);
    for (unsigned i = 1; i < 3; i++) { /* each node's program registers */
        SPRIG_OK_(sprig_storage_register_schema(sprig__cnode_storage(c.node[i]),
                                                &vschema));
    }
    run_ok(&c, 0, job_vdocs, "v1", 5);
    settle(&c);
    sprig_storage *s3 = sprig__cnode_storage(c.node[2]);
    sprig_db *h;
    SPRIG_OK_(sprig_storage_open_database(s3, "v1", &h));
    assert_int_equal(mappings(h), 5);
    raft_fixture_kill(&c.f, 2);
    run_ok(&c, 0, job_vdocs, "v1", 40);
    run_ok(&c, 0, job_vsetup, "v2", 0); /* registered already: no change */
    run_ok(&c, 0, job_vdocs, "v2", 20);
    raft_fixture_revive(&c.f, 2);
    run_ok(&c, 0, job_vdocs, "v1", 3); /* after the install: mapped on */
    run_ok(&c, 0, job_vdocs, "v2", 3); /* node 3 by the program's code */
    settle(&c);
    sprig__cnode_stats s2;
    sprig__cnode_stats_get(c.node[2], &s2);
    assert_true(s2.restored >= 1);
    sprig_storage *s1 = sprig__cnode_storage(c.node[0]);
    print_message("C view on node 3: v1 %zu mappings (held handle), v2 %zu; "
                  "leader: %zu, %zu\n",
                  mappings(h), mappings_of(s3, "v2"), mappings_of(s1, "v1"),
                  mappings_of(s1, "v2"));
    assert_int_equal(mappings(h), 48);
    assert_int_equal(mappings_of(s3, "v2"), 23);
    assert_int_equal(mappings_of(s1, "v2"), 23);
    sprig_db_close(h);
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

/* ---- membership
 * ---------------------------------------------------------------- */

static bool change_done;
static int change_status;

static void
change_cb(struct raft_change *req, int status)
{
    (void)req;
    change_status = status;
    change_done = true;
}

static void
step_until_changed(cl *c)
{
    raft_time end = c->f.time + 20000;
    while (!change_done && c->f.time < end) {
        raft_fixture_step(&c->f);
    }
    assert_true(change_done);
    assert_int_equal(change_status, 0);
    change_done = false;
}

static void
test_membership(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_membership");
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    run_ok(&c, 0, job_docs, "app", 20);
    /* a fourth node joins as a spare, catches up, becomes a voter */
    node_open(&c, 3);
    assert_int_equal(raft_fixture_grow(&c.f, sprig__cnode_fsm(c.node[3])), 0);
    c.n = 4;
    struct raft *r4 = raft_fixture_get(&c.f, 3);
    sprig__cnode_attach(c.node[3], r4);
    assert_int_equal(raft_start(r4), 0);
    for (unsigned j = 0; j < 3; j++) {
        raft_fixture_reconnect(&c.f, 3, j);
        raft_fixture_reconnect(&c.f, j, 3);
    }
    struct raft *leader = raft_fixture_get(&c.f, 0);
    struct raft_change req;
    assert_int_equal(raft_add(leader, &req, 4, r4->address, change_cb), 0);
    step_until_changed(&c);
    assert_int_equal(raft_assign(leader, &req, 4, RAFT_VOTER, change_cb), 0);
    step_until_changed(&c);
    run_ok(&c, 0, job_docs, "app", 20);
    settle(&c);
    assert_int_equal(counter_of(sprig__cnode_storage(c.node[3])),
                     counter_of(sprig__cnode_storage(c.node[0])));
    /* it leaves; later writes do not reach it */
    assert_int_equal(raft_remove(leader, &req, 4, change_cb), 0);
    step_until_changed(&c);
    sprig__cnode_stats before, after;
    sprig__cnode_stats_get(c.node[3], &before);
    run_ok(&c, 0, job_docs, "app", 10);
    settle(&c);
    sprig__cnode_stats_get(c.node[3], &after);
    assert_int_equal(after.applied, before.applied);
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

/* ---- PubSub across nodes ------------------------------------------------
 * A publish is an entry of the log (SPRIG__CMD_PUBLISH): every node's
 * apply hands it to its own subscribers, so all of them see every message
 * in the one order of the log, whichever thread published it. */

typedef struct pub_arg {
    sprig_db *db;
    char tag;
    int rc;
} pub_arg;

static void *
pub_main(void *arg)
{
    pub_arg *a = arg;
    for (int i = 0; a->rc == 0 && i < PUBS; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "%c%02d", a->tag, i);
        if (i % 6 == 5) { /* one message to two topics */
            sprig_bytes t[] = {sprig_str("t"), sprig_str("u")};
            a->rc = sprig_publish_to_all(a->db, t, 2, sprig_str(msg));
        } else {
            a->rc = sprig_publish(a->db, sprig_str("t"), sprig_str(msg));
        }
    }
    return NULL;
}

/* Two threads publishing at once on the job's node. */
static int
job_publish_two(job *j)
{
    sprig_db *db;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    if (rc) {
        return rc;
    }
    pub_arg a[2] = {{db, 'A', 0}, {db, 'B', 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, pub_main, &a[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    sprig_db_close(db);
    return a[0].rc ? a[0].rc : a[1].rc;
}

static int
job_publish_one(job *j)
{
    sprig_db *db;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    rc = rc ? rc : sprig_publish(db, sprig_str("t"), sprig_str("lost"));
    sprig_db_close(db);
    return rc;
}

/* Writes from several threads at once on the leader: the proposals
 * queued together commit in one round, and the state machine applies the
 * round's entries in one writer batch (fsm.c).  Every write is answered
 * only after its commit (each thread reads its own write back at once),
 * two inserts of one id in a batch leave exactly one (the other refused,
 * alike on every node), the counter holds every increment, and the nodes
 * stay byte-identical. */
#define BATCH_THREADS 8
#define BATCH_WRITES 12

static atomic_int dup_ok, dup_refused;

static int
job_batch(job *j)
{
    sprig_db *db;
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    sprig_value one = sprig_value_of_i64(1);
    for (int i = 0; rc == 0 && i < BATCH_WRITES; i++) {
        char id[32];
        snprintf(id, sizeof id, "t%d-%d", j->n, i);
        sprig_bytes bid = sprig_str(id);
        rc = sprig_kv_increment(db, "ns", "total", &one, false, NULL);
        rc = rc ? rc
                : sprig_insert(db, "named", &bid, sprig_str("{\"b\":1}"), NULL);
        sprig_doc *d = NULL;
        rc = rc ? rc : sprig_get(db, "named", sprig_str(id), &d);
        sprig_doc_free(d); /* read back at once: answered after commit */
    }
    sprig_bytes dup = sprig_str("dup");
    int drc =
        rc ? 0 : sprig_insert(db, "named", &dup, sprig_str("{\"d\":1}"), NULL);
    atomic_fetch_add(drc == 0 ? &dup_ok : &dup_refused, 1);
    rc = rc ? rc : (drc == SPRIG_ECONFLICT ? 0 : drc);
    sprig_db_close(db);
    return rc;
}

typedef struct node_sub {
    sprig_db *db;
    sprig_subscriber *s;
} node_sub;

static void
node_sub_open(cl *c, unsigned i, node_sub *ns)
{
    SPRIG_OK_(sprig_storage_open_database(sprig__cnode_storage(c->node[i]),
                                          "app", &ns->db));
    SPRIG_OK_(sprig_subscriber_new(ns->db, &ns->s));
    SPRIG_OK_(sprig_subscribe(ns->s, sprig_str("t")));
    SPRIG_OK_(sprig_subscribe(ns->s, sprig_str("u")));
}

static void
node_sub_close(node_sub *ns)
{
    sprig_subscriber_free(ns->s);
    sprig_db_close(ns->db);
}

/* Every message waiting, as "topic:payload " in arrival order. */
static void
drain(sprig_subscriber *s, sprig_buf *out)
{
    sprig_message *m;
    while (sprig_subscriber_recv(s, 0, &m) == 0) {
        sprig_bytes t = sprig_message_topic(m), p = sprig_message_payload(m);
        SPRIG_OK_(sprig_buf_append(out, t.data, t.len));
        SPRIG_OK_(sprig_buf_append(out, ":", 1));
        SPRIG_OK_(sprig_buf_append(out, p.data, p.len));
        SPRIG_OK_(sprig_buf_append(out, " ", 1));
        sprig_message_free(m);
    }
}

/* Each publisher's messages appear in its own order. */
static void
assert_publisher_order(const sprig_buf *log, char tag)
{
    char want[32];
    const char *at = (const char *)log->data;
    for (int i = 0; i < PUBS; i++) {
        snprintf(want, sizeof want, "t:%c%02d ", tag, i);
        const char *f = strstr(at, want);
        assert_non_null(f);
        at = f + strlen(want);
    }
}

static void
test_pubsub_across_nodes(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_pubsub");
    raft_fixture_elect(&c.f, 1); /* node 2 leads */
    run_ok(&c, 1, job_setup, "app", 0);
    settle(&c);
    node_sub subs[3];
    for (unsigned i = 0; i < 3; i++) {
        node_sub_open(&c, i, &subs[i]);
    }
    /* a follower's publish is refused, naming the leader (a client follows
     * it there); nothing is delivered anywhere */
    job j = {.fn = job_publish_one, .db = "app"};
    assert_true(run_job(&c, 2, &j, 1000));
    assert_int_equal(j.rc, SPRIG_ENOTLEADER);
    assert_non_null(strstr(j.msg, "leader is node 2 at ws://127.0.0.1:5002"));
    /* two publishers at once on node 2, and writes around them */
    run_ok(&c, 1, job_docs, "app", 5);
    run_ok(&c, 1, job_publish_two, "app", 0);
    run_ok(&c, 1, job_docs, "app", 5);
    settle(&c);
    sprig_buf got[3] = {{0}};
    for (unsigned i = 0; i < 3; i++) {
        drain(subs[i].s, &got[i]);
        SPRIG_OK_(sprig_buf_append(&got[i], "", 1)); /* NUL: strstr */
        assert_int_equal(sprig_subscriber_dropped(subs[i].s), 0);
    }
    print_message("node 1 received: %.120s...\n", (const char *)got[0].data);
    /* 2 x 24 messages, 2 x 4 of them also to "u" */
    size_t n = 0;
    for (const char *p = (const char *)got[0].data; (p = strchr(p, ' ')); p++) {
        n++;
    }
    assert_int_equal(n, 2 * PUBS + 2 * (PUBS / 6));
    assert_null(strstr((const char *)got[0].data, "lost"));
    assert_publisher_order(&got[0], 'A');
    assert_publisher_order(&got[0], 'B');
    for (unsigned i = 1; i < 3; i++) { /* one order on every node */
        assert_int_equal(got[i].len, got[0].len);
        assert_memory_equal(got[i].data, got[0].data, got[0].len);
    }
    sprig__cnode_stats st;
    sprig__cnode_stats_get(c.node[0], &st);
    assert_int_equal(st.stale_publishes, 0);
    for (unsigned i = 0; i < 3; i++) {
        sprig_buf_clear(&got[i]);
        node_sub_close(&subs[i]);
    }
    cl_close(&c);
    assert_identical(&c, 3); /* publishes stored nothing anywhere */
    tu_rmtree(c.base);
}

static void
test_batched_apply(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_batch");
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    job js[BATCH_THREADS];
    for (int t = 0; t < BATCH_THREADS; t++) {
        js[t] = (job){.fn = job_batch, .db = "app", .n = t, .rs = &seed};
        js[t].st = sprig__cnode_storage(c.node[0]);
        assert_int_equal(pthread_create(&js[t].thread, NULL, job_main, &js[t]),
                         0);
    }
    for (int t = 0; t < BATCH_THREADS; t++) {
        finish_job(&c, &js[t], 120000);
        if (js[t].rc) {
            print_message("thread %d: %s\n", t, js[t].msg);
        }
        assert_int_equal(js[t].rc, 0);
    }
    settle(&c);
    assert_int_equal(atomic_load(&dup_ok), 1);
    assert_int_equal(atomic_load(&dup_refused), BATCH_THREADS - 1);
    for (unsigned i = 0; i < 3; i++) {
        sprig_db *db;
        int64_t total = 0;
        SPRIG_OK_(sprig_storage_open_database(sprig__cnode_storage(c.node[i]),
                                              "app", &db));
        SPRIG_OK_(sprig_kv_get_i64(db, "ns", "total", &total));
        assert_int_equal(total, BATCH_THREADS * BATCH_WRITES);
        sprig_db_close(db);
        sprig__cnode_stats s;
        sprig__cnode_stats_get(c.node[i], &s);
        print_message(
            "node %u: %llu entries applied, %llu in %llu batches "
            "(at most %llu in one)\n",
            i + 1, (unsigned long long)s.applied, (unsigned long long)s.batched,
            (unsigned long long)s.batches, (unsigned long long)s.batch_max);
        assert_true(s.batch_max > 1); /* some round had several entries */
    }
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

/* ---- grouped proposals ---------------------------------------------------
 */

#define GROUP_THREADS 6

/* One insert, read back at once on the same node: answered only after its
 * own entry was applied there. */
static int
job_group_one(job *j)
{
    sprig_db *db;
    char id[32];
    snprintf(id, sizeof id, "g%d", j->n);
    sprig_bytes bid = sprig_str(id);
    int rc = sprig_storage_open_database(j->st, j->db, &db);
    rc =
        rc ? rc : sprig_insert(db, "named", &bid, sprig_str("{\"g\":1}"), NULL);
    sprig_doc *d = NULL;
    rc = rc ? rc : sprig_get(db, "named", bid, &d);
    sprig_doc_free(d);
    sprig_db_close(db);
    return rc;
}

static size_t
queued(sprig__cnode *n)
{
    size_t k = 0;
    pthread_mutex_lock(&n->lock);
    for (sprig__prop *p = n->queue; p; p = p->next) {
        k++;
    }
    pthread_mutex_unlock(&n->lock);
    return k;
}

/* Writes queued together on the leader go to raft in one raft_apply
 * (node.c), whose callback libraft calls after the group's first entry;
 * each write is still answered only once its own entry is applied (its
 * writer reads it back at once), and every node holds them all. */
static void
test_grouped_proposals(void **state)
{
    (void)state;
    cl c;
    cl_init(&c, 3, "cluster_group");
    raft_fixture_elect(&c.f, 0);
    run_ok(&c, 0, job_setup, "app", 0);
    settle(&c);
    sprig__cnode_stats before, after;
    sprig__cnode_stats_get(c.node[0], &before);
    job js[GROUP_THREADS];
    for (int t = 0; t < GROUP_THREADS; t++) {
        js[t] = (job){.fn = job_group_one, .db = "app", .n = t};
        js[t].st = sprig__cnode_storage(c.node[0]);
        atomic_store(&js[t].done, false);
        assert_int_equal(pthread_create(&js[t].thread, NULL, job_main, &js[t]),
                         0);
    }
    for (int w = 0; w < 20000 && queued(c.node[0]) < GROUP_THREADS; w++) {
        usleep(500); /* all queued before the first pump */
    }
    assert_int_equal(queued(c.node[0]), GROUP_THREADS);
    for (int t = 0; t < GROUP_THREADS; t++) {
        finish_job(&c, &js[t], 60000);
        if (js[t].rc) {
            print_message("thread %d: %s\n", t, js[t].msg);
        }
        assert_int_equal(js[t].rc, 0);
    }
    sprig__cnode_stats_get(c.node[0], &after);
    print_message("%llu writes proposed in %llu raft_apply calls\n",
                  (unsigned long long)(after.proposed - before.proposed),
                  (unsigned long long)(after.groups - before.groups));
    assert_int_equal(after.proposed - before.proposed, GROUP_THREADS);
    assert_int_equal(after.groups - before.groups, 1);
    settle(&c);
    for (unsigned i = 0; i < 3; i++) {
        sprig_db *db;
        uint64_t n = 0;
        SPRIG_OK_(sprig_storage_open_database(sprig__cnode_storage(c.node[i]),
                                              "app", &db));
        SPRIG_OK_(sprig_count(db, "named", NULL, &n));
        assert_int_equal(n, GROUP_THREADS);
        sprig_db_close(db);
    }
    cl_close(&c);
    assert_identical(&c, 3);
    tu_rmtree(c.base);
}

int
main(void)
{
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_election_and_replication),
        cmocka_unit_test(test_partition),
        cmocka_unit_test(test_restart_applies_once),
        cmocka_unit_test(test_snapshot_catch_up),
        cmocka_unit_test(test_snapshot_encrypted),
        cmocka_unit_test(test_snapshot_other_vault),
        cmocka_unit_test(test_snapshot_c_views),
        cmocka_unit_test(test_membership),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_linearizable_reads),
        cmocka_unit_test(test_pubsub_across_nodes),
        cmocka_unit_test(test_batched_apply),
        cmocka_unit_test(test_grouped_proposals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
