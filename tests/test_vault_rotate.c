/*
 * test_vault_rotate.c -- online key rotation (src/local/rotate.c) under
 * concurrent writes: writer threads insert documents, overwrite hot ones
 * and increment key-value counters while sprig_storage_vault_rotate()
 * runs.  Afterwards the vault holds one key, a new one; every write that
 * was acknowledged is there with its contents (so nothing was lost or
 * overwritten by a stale copy); everything reads -- which proves it was
 * re-encrypted, since the old key is gone -- the view too; and after a
 * reopen (replaying the command log, sealed under the new key) the same
 * holds.  Seeded (SPRIG_SEED).
 */
#include "testutil.h"

#include "local/local.h"

#include <pthread.h>
#include <stdatomic.h>

#define WRITERS 4

static const sprig_view_def views[] = {
    {.name = "by-w",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "w",
     .json_value = "n",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def cols[] = {
    {"docs", SPRIG_ID_NATURAL, 0, views, 1},
};
static const sprig_schema_def schema = {"rot", cols, 1};

static const char *root;
static uint64_t seed;

typedef struct writer {
    sprig_db *db;
    int w;
    atomic_bool *stop;
    uint64_t seed;
    int inserted;    /* acknowledged inserts: d<w>-0 .. */
    int hot[8];      /* last acknowledged value of hot document h<w>-k */
    int64_t counter; /* acknowledged increments of kv c<w> */
} writer;

static void
contents(char *out, size_t n, int w, int i)
{
    snprintf(out, n, "{\"w\":%d,\"n\":%d,\"pad\":\"%0128d\"}", w, i, i);
}

static void *
write_loop(void *arg)
{
    writer *wr = arg;
    char id[32], c[256], key[16];
    snprintf(key, sizeof key, "c%d", wr->w);
    sprig_value one = sprig_value_of_i64(1);
    while (!atomic_load(wr->stop)) {
        uint64_t r = tu_rand(&wr->seed) % 3;
        int rc;
        if (r == 0) {
            snprintf(id, sizeof id, "d%d-%d", wr->w, wr->inserted);
            contents(c, sizeof c, wr->w, wr->inserted);
            sprig_bytes b = sprig_str(id);
            rc = sprig_insert(wr->db, "docs", &b, sprig_str(c), NULL);
            wr->inserted += rc == 0;
        } else if (r == 1) {
            int k = (int)(tu_rand(&wr->seed) % 8);
            snprintf(id, sizeof id, "h%d-%d", wr->w, k);
            contents(c, sizeof c, wr->w, wr->hot[k] + 1);
            rc = sprig_overwrite(wr->db, "docs", sprig_str(id), sprig_str(c),
                                 NULL);
            wr->hot[k] += rc == 0;
        } else {
            rc = sprig_kv_increment(wr->db, "", key, &one, false, NULL);
            wr->counter += rc == 0;
        }
        if (rc) {
            print_message("writer %d: %s\n", wr->w, sprig_errmsg());
            return (void *)1;
        }
    }
    return NULL;
}

static void
expect_doc(sprig_db *db, const char *id, int w, int i)
{
    char c[256];
    sprig_doc *d;
    contents(c, sizeof c, w, i);
    SPRIG_OK_(sprig_get(db, "docs", sprig_str(id), &d));
    assert_true(tu_bytes_eq(sprig_doc_contents(d), c));
    sprig_doc_free(d);
}

/* Every acknowledged write of every writer is there. */
static void
check_all(sprig_db *db, const writer *wr)
{
    char id[32], key[16];
    size_t docs = 0;
    for (int w = 0; w < WRITERS; w++) {
        for (int i = 0; i < wr[w].inserted; i++) {
            snprintf(id, sizeof id, "d%d-%d", w, i);
            expect_doc(db, id, w, i);
        }
        docs += (size_t)wr[w].inserted;
        for (int k = 0; k < 8; k++) {
            snprintf(id, sizeof id, "h%d-%d", w, k);
            if (wr[w].hot[k]) {
                expect_doc(db, id, w, wr[w].hot[k]);
                docs++;
            }
        }
        snprintf(key, sizeof key, "c%d", w);
        sprig_value v = {0};
        if (wr[w].counter) {
            SPRIG_OK_(sprig_kv_get(db, "", key, false, &v));
            assert_int_equal(v.num.i64, wr[w].counter);
        }
    }
    sprig_view_query q;
    sprig_view_query_init(&q, "docs", "by-w");
    sprig_buf out = {0};
    SPRIG_OK_(sprig_view_reduce(db, &q, &out));
    sprig_mapping_list *l;
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), docs);
    sprig_mapping_list_free(l);
    sprig_buf_clear(&out);
}

static void
progress(void *udata, const char *db, uint64_t n)
{
    *(uint64_t *)udata += n;
    print_message("rotated %s: %llu values\n", db, (unsigned long long)n);
}

static sprig_storage *
open_st(const char *dir)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.encrypt = true;
    o.compress = true;
    o.durability = SPRIG_DURABILITY_NORMAL;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    return st;
}

static void
test_rotate_under_writes(void **state)
{
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/rot", root);
    sprig_storage *st = open_st(dir);
    SPRIG_OK_(sprig_storage_create_database(st, "main", "rot", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "main", &db));
    sprig__vault *v = sprig__db_ldb(db)->vault;
    uint32_t k1 = sprig__vault_current(v);
    atomic_bool stop = false;
    writer wr[WRITERS] = {{0}};
    pthread_t th[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        wr[w] = (writer){db, w, &stop, seed + (uint64_t)w * 7919, 0, {0}, 0};
        assert_int_equal(pthread_create(&th[w], NULL, write_loop, &wr[w]), 0);
    }
    usleep(300 * 1000); /* values under the first key */
    uint64_t n = 0;
    SPRIG_OK_(sprig_storage_vault_rotate(st, progress, &n));
    usleep(100 * 1000); /* and some after */
    atomic_store(&stop, true);
    for (int w = 0; w < WRITERS; w++) {
        void *r;
        pthread_join(th[w], &r);
        assert_null(r);
    }
    assert_true(n > 0);
    assert_int_equal(sprig__vault_keys(v), 1);
    assert_int_not_equal(sprig__vault_current(v), k1);
    check_all(db, wr); /* only the new key exists: all was re-encrypted */
    sprig_db_close(db);
    sprig_storage_close(st);

    st = open_st(dir); /* replays the log: sealed under the new key */
    SPRIG_OK_(sprig_storage_open_database(st, "main", &db));
    check_all(db, wr);
    /* a second rotation with nothing old left still works */
    SPRIG_OK_(sprig_storage_vault_rotate(st, NULL, NULL));
    check_all(db, wr);
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* A rotation interrupted after its new key was made (the state a crash
 * leaves): every value still opens; the next rotation finishes under that
 * key instead of making another. */
static void
test_rotate_interrupted(void **state)
{
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/interrupted", root);
    sprig_storage *st = open_st(dir);
    SPRIG_OK_(sprig_storage_create_database(st, "main", "rot", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "main", &db));
    writer wr[WRITERS] = {{0}};
    char id[32], c[256];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "d0-%d", i);
        contents(c, sizeof c, 0, i);
        sprig_bytes b = sprig_str(id);
        SPRIG_OK_(sprig_insert(db, "docs", &b, sprig_str(c), NULL));
    }
    wr[0].inserted = 50;
    sprig__vault *v = sprig__db_ldb(db)->vault;
    uint32_t k1 = sprig__vault_current(v);
    SPRIG_OK_(sprig__vault_add_key(v)); /* step 1, then "the crash" */
    sprig_db_close(db);
    sprig_storage_close(st);

    st = open_st(dir);
    SPRIG_OK_(sprig_storage_open_database(st, "main", &db));
    v = sprig__db_ldb(db)->vault;
    assert_int_equal(sprig__vault_keys(v), 2);
    check_all(db, wr); /* under the old key, still held */
    SPRIG_OK_(sprig_storage_vault_rotate(st, NULL, NULL));
    assert_int_equal(sprig__vault_keys(v), 1);
    assert_int_equal(sprig__vault_current(v), k1 + 1);
    check_all(db, wr);
    sprig_db_close(db);
    sprig_storage_close(st);
}

static void
test_rotate_without_vault(void **state)
{
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/novault", root);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_storage_vault_rotate(st, NULL, NULL));
    sprig_storage_close(st);
}

int
main(void)
{
    root = tu_tmpdir("vault_rotate");
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotate_under_writes),
        cmocka_unit_test(test_rotate_interrupted),
        cmocka_unit_test(test_rotate_without_vault),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
