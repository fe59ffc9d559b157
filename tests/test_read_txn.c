/*
 * test_read_txn.c -- per-thread read transactions (src/local/env.c): a get
 * after a commit on the same thread sees it; nested reads on one thread
 * keep their own snapshots; readers on many threads while the map grows
 * (growth waits for readers, none deadlocks, every read is consistent);
 * a reused read (no map lock) holds growth off and may nest a read;
 * threads that exit give their transactions back; a database closed while
 * threads that read it live on, then reopened, reads correctly (slots match
 * environments by id, not by address).
 */
#include "testutil.h"

#include "local/local.h"

#include <pthread.h>
#include <time.h>

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"rt", cols, 1};

static const char *root;

static sprig_db *
open_at(const char *name, uint64_t map)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", root, name);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = p;
    o.durability = SPRIG_DURABILITY_NONE;
    o.initial_map_size = map;
    sprig_storage *st;
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "d", "rt", true));
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    sprig_storage_close(st); /* deferred to the handle's close */
    return db;
}

/* Contents of document n at version v: "n:v" padded to `len` bytes. */
static size_t
contents_of(uint64_t n, uint64_t v, size_t len, char *out)
{
    int k = snprintf(out, len + 1, "%llu:%llu:", (unsigned long long)n,
                     (unsigned long long)v);
    memset(out + k, 'x', len - (size_t)k);
    out[len] = 0;
    return len;
}

static void
test_get_sees_own_commit(void **state)
{
    (void)state;
    sprig_db *db = open_at("own", 0);
    uint8_t b[8];
    char want[64];
    for (uint64_t v = 1; v <= 500; v++) {
        contents_of(1, v, 40, want);
        SPRIG_OK_(sprig_overwrite(db, "docs", sprig_id_u64(1, b),
                                  sprig_str(want), NULL));
        sprig_doc *d;
        SPRIG_OK_(sprig_get(db, "docs", sprig_id_u64(1, b), &d));
        assert_true(tu_bytes_eq(sprig_doc_contents(d), want));
        sprig_doc_free(d);
    }
    sprig_db_close(db);
}

/* A document's contents in the snapshot `txn`. */
static void
expect_in(sprig__ldb *ldb, MDB_txn *txn, uint64_t n, const char *want)
{
    uint8_t b[8];
    sprig_bytes id = sprig_id_u64(n, b);
    MDB_val k = {id.len, (void *)id.data}, v;
    int mrc = mdb_get(txn, ldb->colls[0].dbi, &k, &v);
    if (!want) {
        assert_int_equal(mrc, MDB_NOTFOUND);
        return;
    }
    assert_int_equal(mrc, 0);
    size_t crc = ((uint8_t *)v.mv_data)[0] & SPRIG__CF_CRC ? SPRIG__CRC_BYTES
                                                           : 0; /* codec.h */
    assert_int_equal(v.mv_size - SPRIG__DOC_HDR - crc, strlen(want));
    assert_memory_equal((char *)v.mv_data + SPRIG__DOC_HDR, want, strlen(want));
}

static void
test_nested_snapshots(void **state)
{
    (void)state;
    sprig_db *db = open_at("nested", 0);
    sprig__ldb *ldb = sprig__db_ldb(db);
    uint8_t b[8];
    SPRIG_OK_(sprig_overwrite(db, "docs", sprig_id_u64(1, b), sprig_str("one"),
                              NULL));
    for (int round = 0; round < 3; round++) {
        MDB_txn *a, *c;
        SPRIG_OK_(sprig__env_read_begin(ldb->env, &a));
        expect_in(ldb, a, 1, "one");
        expect_in(ldb, a, 2, NULL);
        /* a write on this thread while the read is open */
        SPRIG_OK_(sprig_overwrite(db, "docs", sprig_id_u64(2, b),
                                  sprig_str("two"), NULL));
        SPRIG_OK_(sprig__env_read_begin(ldb->env, &c));
        assert_ptr_not_equal(a, c);
        expect_in(ldb, c, 2, "two");
        expect_in(ldb, a, 2, NULL); /* a keeps its snapshot */
        sprig__env_read_end(ldb->env, c);
        sprig__env_read_end(ldb->env, a);
        SPRIG_OK_(sprig_delete(db, "docs",
                               &(sprig_header){sprig_id_u64(2, b), 1, {0}}));
    }
    sprig_db_close(db);
}

typedef struct reader_arg {
    sprig_db *db;
    atomic_bool *stop;
    atomic_ullong *committed; /* documents 1..committed exist */
    uint64_t seed, reads;
    int failures;
} reader_arg;

static void *
reader(void *p)
{
    reader_arg *r = p;
    char want[3000];
    while (!atomic_load(r->stop)) {
        uint64_t top = atomic_load(r->committed);
        if (top == 0) {
            continue;
        }
        uint64_t n = 1 + tu_rand(&r->seed) % top;
        uint8_t b[8];
        sprig_doc *d;
        if (sprig_get(r->db, "docs", sprig_id_u64(n, b), &d) != 0) {
            r->failures++;
            continue;
        }
        contents_of(n, 1, 2000, want);
        r->failures += !tu_bytes_eq(sprig_doc_contents(d), want);
        sprig_doc_free(d);
        r->reads++;
    }
    return NULL;
}

static void
test_readers_while_map_grows(void **state)
{
    (void)state;
    sprig_db *db = open_at("grow", 256 * 1024);
    sprig__ldb *ldb = sprig__db_ldb(db);
    size_t map0 = ldb->env->map_size;
    atomic_bool stop = false;
    atomic_ullong committed = 0;
    enum { R = 4 };
    pthread_t th[R];
    reader_arg ra[R];
    uint64_t seed = tu_seed();
    for (int i = 0; i < R; i++) {
        ra[i] = (reader_arg){db, &stop, &committed, seed + (uint64_t)i, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &ra[i]), 0);
    }
    char c[3000];
    for (uint64_t n = 1; n <= 3000; n++) {
        uint8_t b[8];
        contents_of(n, 1, 2000, c);
        SPRIG_OK_(sprig_overwrite(db, "docs", sprig_id_u64(n, b), sprig_str(c),
                                  NULL));
        atomic_store(&committed, n);
    }
    atomic_store(&stop, true);
    uint64_t reads = 0;
    for (int i = 0; i < R; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ra[i].failures, 0);
        reads += ra[i].reads;
    }
    assert_true(ldb->env->map_size >= 16 * map0); /* it grew, several times */
    assert_true(reads > 0);
    /* the readers exited: only this thread's slot is left */
    assert_true(sprig__env_read_slots(ldb->env) <= 1);
    sprig_db_close(db);
}

/* Writes documents 2..3000 of 2,000 bytes (the map must grow), counting. */
typedef struct grower {
    sprig_db *db;
    atomic_ullong written;
    atomic_bool done;
    int failures;
} grower;

static void *
grower_main(void *p)
{
    grower *g = p;
    char c[3000];
    for (uint64_t n = 2; n <= 3000; n++) {
        uint8_t b[8];
        contents_of(n, 1, 2000, c);
        g->failures += sprig_overwrite(g->db, "docs", sprig_id_u64(n, b),
                                       sprig_str(c), NULL) != 0;
        atomic_store(&g->written, n);
    }
    atomic_store(&g->done, true);
    return NULL;
}

/* The map size, read as growth writes it (under the map lock). */
static size_t
map_size_of(sprig__env *e)
{
    pthread_rwlock_rdlock(&e->map_lock);
    size_t n = e->map_size;
    pthread_rwlock_unlock(&e->map_lock);
    return n;
}

/* Wait until the grower finishes or makes no progress for 300 ms. */
static void
wait_stalled(grower *g)
{
    unsigned long long last = atomic_load(&g->written);
    for (int quiet = 0, i = 0; quiet < 30 && i < 3000; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        unsigned long long now = atomic_load(&g->written);
        quiet = now == last ? quiet + 1 : 0;
        last = now;
        if (atomic_load(&g->done)) {
            return;
        }
    }
}

/* A read that reuses this thread's idle transaction takes no map lock
 * (env.c, FAST): while one is open on this thread, a growth on another
 * waits for it (the map is never resized under it: its snapshot still
 * reads right), a nested read on this thread still runs (no deadlock),
 * and once it ends the growth goes on. */
static void
test_fast_read_holds_growth(void **state)
{
    (void)state;
    sprig_db *db = open_at("fastgrow", 256 * 1024);
    sprig__ldb *ldb = sprig__db_ldb(db);
    size_t map0 = map_size_of(ldb->env);
    uint8_t b[8];
    SPRIG_OK_(sprig_overwrite(db, "docs", sprig_id_u64(1, b), sprig_str("one"),
                              NULL));
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "docs", sprig_id_u64(1, b), &d)); /* the slot */
    sprig_doc_free(d);
    MDB_txn *a;
    SPRIG_OK_(sprig__env_read_begin(ldb->env, &a)); /* reused: FAST */
    grower g = {.db = db};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, grower_main, &g), 0);
    wait_stalled(&g);
    assert_false(atomic_load(&g.done));            /* held up by `a` */
    assert_int_equal(map_size_of(ldb->env), map0); /* not resized */
    SPRIG_OK_(sprig_get(db, "docs", sprig_id_u64(1, b), &d)); /* nested */
    assert_true(tu_bytes_eq(sprig_doc_contents(d), "one"));
    sprig_doc_free(d);
    expect_in(ldb, a, 1, "one");
    expect_in(ldb, a, 2, NULL); /* its snapshot, before the grower's */
    sprig__env_read_end(ldb->env, a);
    pthread_join(th, NULL);
    assert_int_equal(g.failures, 0);
    assert_true(atomic_load(&g.done));
    assert_true(map_size_of(ldb->env) >= 16 * map0);
    char want[3000];
    contents_of(3000, 1, 2000, want);
    SPRIG_OK_(sprig_get(db, "docs", sprig_id_u64(3000, b), &d));
    assert_true(tu_bytes_eq(sprig_doc_contents(d), want));
    sprig_doc_free(d);
    sprig_db_close(db);
}

/* A thread that reads once, then waits to be told to read again. */
typedef struct lingerer {
    sprig_db *db;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int step; /* 0 read, 1 done reading, 2 read again, 3 done, 4 exit */
    int failures;
} lingerer;

static void
linger_read(lingerer *l)
{
    uint8_t b[8];
    sprig_doc *d;
    int rc = sprig_get(l->db, "docs", sprig_id_u64(1, b), &d);
    l->failures += rc != 0;
    if (rc == 0) {
        l->failures += !tu_bytes_eq(sprig_doc_contents(d), "v");
        sprig_doc_free(d);
    }
}

static void
linger_wait(lingerer *l, int step)
{
    pthread_mutex_lock(&l->lock);
    while (l->step != step) {
        pthread_cond_wait(&l->cond, &l->lock);
    }
    pthread_mutex_unlock(&l->lock);
}

static void
linger_set(lingerer *l, int step)
{
    pthread_mutex_lock(&l->lock);
    l->step = step;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static void *
linger_main(void *p)
{
    lingerer *l = p;
    linger_read(l);
    linger_set(l, 1);
    linger_wait(l, 2);
    linger_read(l); /* a new env, maybe at the old one's address */
    linger_set(l, 3);
    linger_wait(l, 4);
    return NULL;
}

static void
test_close_while_threads_live(void **state)
{
    (void)state;
    lingerer l = {.db = open_at("close", 0)};
    pthread_mutex_init(&l.lock, NULL);
    pthread_cond_init(&l.cond, NULL);
    uint8_t b[8];
    SPRIG_OK_(sprig_overwrite(l.db, "docs", sprig_id_u64(1, b), sprig_str("v"),
                              NULL));
    size_t mine = sprig__env_read_slots(sprig__db_ldb(l.db)->env);
    assert_true(mine <= 1); /* this thread's, from the open */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, linger_main, &l), 0);
    linger_wait(&l, 1);
    assert_int_equal(sprig__env_read_slots(sprig__db_ldb(l.db)->env), mine + 1);
    sprig_db_close(l.db);         /* the thread's slot loses its transaction */
    for (int i = 0; i < 3; i++) { /* envs come and go at reused addresses */
        l.db = open_at("close", 0);
        linger_read(&l);
        sprig_db_close(l.db);
    }
    l.db = open_at("close", 0);
    mine = sprig__env_read_slots(sprig__db_ldb(l.db)->env);
    linger_set(&l, 2);
    linger_wait(&l, 3);
    assert_int_equal(l.failures, 0);
    assert_int_equal(sprig__env_read_slots(sprig__db_ldb(l.db)->env), mine + 1);
    linger_set(&l, 4);
    pthread_join(th, NULL); /* its exit frees its slots */
    assert_int_equal(sprig__env_read_slots(sprig__db_ldb(l.db)->env), mine);
    linger_read(&l);
    assert_int_equal(l.failures, 0);
    sprig_db_close(l.db);
    pthread_mutex_destroy(&l.lock);
    pthread_cond_destroy(&l.cond);
}

static void *
short_lived(void *p)
{
    lingerer *l = p;
    linger_read(l);
    return NULL;
}

static void
test_exited_threads_return_slots(void **state)
{
    (void)state;
    lingerer l = {.db = open_at("exit", 0)};
    uint8_t b[8];
    SPRIG_OK_(sprig_overwrite(l.db, "docs", sprig_id_u64(1, b), sprig_str("v"),
                              NULL));
    linger_read(&l);
    size_t mine = sprig__env_read_slots(sprig__db_ldb(l.db)->env);
    assert_int_equal(mine, 1);
    for (int i = 0; i < 100; i++) {
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, short_lived, &l), 0);
        pthread_join(th, NULL);
    }
    assert_int_equal(l.failures, 0);
    assert_int_equal(sprig__env_read_slots(sprig__db_ldb(l.db)->env), mine);
    sprig_db_close(l.db);
}

int
main(void)
{
    root = tu_tmpdir("read_txn");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_sees_own_commit),
        cmocka_unit_test(test_nested_snapshots),
        cmocka_unit_test(test_readers_while_map_grows),
        cmocka_unit_test(test_fast_read_holds_growth),
        cmocka_unit_test(test_close_while_threads_live),
        cmocka_unit_test(test_exited_threads_return_slots),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(root);
    return rc;
}
