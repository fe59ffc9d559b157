/*
 * test_bgverify.c -- the tables past the open verifier's budget, walked in
 * the background (src/local/bgverify.c; issue 17, item 3), on real LMDB
 * files.  A storage holds one database with two collections: `a` (a few
 * documents, one leaf) and `b` (hundreds: tens of pages); the open's
 * budget, lowered through the test seam, keeps `c.a` and leaves `c.b` to
 * the background walk.  Damage in a live leaf of `c.b` (its free-space
 * bound moved: the nodes no longer fill what it leaves, which LMDB does
 * not check) lets the open succeed; once the walk is done every read and
 * write of that database is SPRIG_ECORRUPT naming the file, the table and
 * the page, in a writable and a read-only open, and the integrity check
 * says so.  An undamaged storage's walk finishes clean and reads stay
 * right; a close during a (slowed) walk returns promptly; map growths
 * during a walk neither wait for it nor stop it finishing.
 */
#include "lmdbpages.h"
#include "reltest.h"

#include <dirent.h>
#include <fcntl.h>

static const sprig_collection_def colls[] = {
    {"a", SPRIG_ID_NATURAL, 0, NULL, 0},
    {"b", SPRIG_ID_NATURAL, 0, NULL, 0},
};
static const sprig_schema_def schema = {"bg", colls, 2};

#define SMALL_BUDGET (16u << 10) /* c.a (one leaf) in, c.b out */

/* The contents of document `i` of `coll`: ~`size` bytes, all its own. */
static size_t
body(char *out, size_t cap, const char *coll, int i, size_t size)
{
    int n = snprintf(out, cap, "{\"coll\":\"%s\",\"i\":%d,\"pad\":\"", coll, i);
    while ((size_t)n + 3 < size && (size_t)n + 3 < cap) {
        out[n] = (char)('a' + (i * 7 + n) % 26);
        n++;
    }
    n += snprintf(out + n, cap - (size_t)n, "\"}");
    return (size_t)n;
}

static void
id_of(char *id, size_t cap, int i)
{
    snprintf(id, cap, "d%06d", i);
}

/* `n` documents of `size` bytes into `coll`, 500 per transaction. */
static void
fill(sprig_db *db, const char *coll, int n, size_t size)
{
    char id[16], b[2048];
    for (int i = 0; i < n;) {
        sprig_txn *t;
        SPRIG_OK_(sprig_txn_new(&t));
        for (int k = 0; k < 500 && i < n; k++, i++) {
            id_of(id, sizeof id, i);
            size_t len = body(b, sizeof b, coll, i, size);
            SPRIG_OK_(sprig_txn_overwrite(t, coll, sprig_str(id),
                                          (sprig_bytes){b, len}));
        }
        SPRIG_OK_(sprig_txn_apply(db, t, NULL));
        sprig_txn_free(t);
    }
}

/* `map`: the initial map size (0: the default). */
static sprig_storage *
open_map(const char *dir, bool read_only, uint64_t map)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.read_only = read_only;
    o.initial_map_size = map;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    if (!read_only) {
        SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    }
    return st;
}

static sprig_storage *
open_st(const char *dir, bool read_only)
{
    return open_map(dir, read_only, 0);
}

/* A storage in `dir`: database "d", 3 documents in `a`, `nb` of `size`
 * bytes in `b`. */
static void
make_storage(const char *dir, int nb, size_t size)
{
    sprig_storage *st = open_st(dir, false);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_create_database(st, "d", "bg", false));
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    fill(db, "a", 3, 200);
    fill(db, "b", nb, size);
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* The directory of database "d" in the storage in `dir`. */
static void
db_dir(const char *dir, char *out, size_t cap)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/db", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *ent;
    out[0] = 0;
    while ((ent = readdir(d)) != NULL) {
        if (!strncmp(ent->d_name, "d.", 2)) {
            snprintf(out, cap, "%.1000s/%.200s", p, ent->d_name);
        }
    }
    closedir(d);
    assert_true(out[0] != 0);
}

/* Move the free-space bound of a live leaf of table `table` of database
 * "d" by two bytes (the nodes then fill more than it leaves); *pgno gets
 * the page. */
static void
damage_leaf(const char *dir, const char *table, uint64_t *pgno)
{
    char env[1400], path[1500];
    bpage *v = NULL;
    size_t n = 0, mine = 0, pick = SIZE_MAX;
    db_dir(dir, env, sizeof env);
    env_leaves(env, "/data.mdb", &v, &n);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(v[i].table, table) && mine++ == 2) {
            pick = i; /* the third leaf of the table: inside it */
        }
    }
    assert_true(pick != SIZE_MAX);
    snprintf(path, sizeof path, "%s/data.mdb", env);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint16_t upper = (uint16_t)(v[pick].upper + 2);
    uint8_t b[2] = {(uint8_t)upper, (uint8_t)(upper >> 8)};
    assert_int_equal(pwrite(fd, b, 2, (off_t)v[pick].off + 14), 2);
    assert_int_equal(fsync(fd), 0);
    close(fd);
    *pgno = v[pick].off / 4096;
    print_message("damaged %s: table %s, page %llu, upper %u -> %u\n", path,
                  table, (unsigned long long)*pgno, v[pick].upper, upper);
    free(v);
}

/* The thread's last error sentence names the damage of page `pgno` of
 * `c.b` in database "d"'s file. */
static void
assert_names_damage(uint64_t pgno)
{
    char page[32];
    snprintf(page, sizeof page, "page %llu", (unsigned long long)pgno);
    const char *m = sprig_errmsg();
    if (!strstr(m, "data.mdb") || !strstr(m, "table 'c.b'") ||
        !strstr(m, page)) {
        fail_msg("the error does not name the file, c.b and %s: %s", page, m);
    }
}

static void
assert_get(sprig_db *db, const char *coll, int i, int want)
{
    char id[16];
    sprig_doc *d = NULL;
    id_of(id, sizeof id, i);
    SPRIG_EXPECT(want, sprig_get(db, coll, sprig_str(id), &d));
    sprig_doc_free(d);
}

/* Every read of "d" (either collection, a listing) and a write fail as
 * SPRIG_ECORRUPT naming the damage; the check reports it too. */
static void
assert_failed(sprig_storage *st, sprig_db *db, uint64_t pgno, bool writable)
{
    assert_get(db, "a", 0, SPRIG_ECORRUPT);
    assert_names_damage(pgno);
    assert_get(db, "b", 5, SPRIG_ECORRUPT);
    assert_names_damage(pgno);
    sprig_doc *d = NULL;
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_get(db, "a", sprig_str("none"), &d));
    if (writable) {
        SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_overwrite(db, "a", sprig_str("new"),
                                                     sprig_str("{}"), NULL));
        assert_names_damage(pgno);
    }
    sprig_buf rep = {0};
    uint64_t findings = 0;
    SPRIG_OK_(sprig_storage_check(st, &rep, &findings));
    assert_true(findings > 0);
    sprig_buf_append(&rep, "", 1);
    if (!strstr((const char *)rep.data, "background verification failed")) {
        fail_msg("the check does not say so:\n%s", (const char *)rep.data);
    }
    sprig_buf_clear(&rep);
}

/* Damage in a table the open left out: the open succeeds, the walk fails
 * the database (writable, then read-only). */
static void
test_damage_found(void **state)
{
    (void)state;
    char dir[1200];
    uint64_t pgno;
    rt_scratch(dir, sizeof dir, "bgv_damage");
    make_storage(dir, 400, 600);
    damage_leaf(dir, "c.b", &pgno);
    sprig__verify_open_bytes_set(SMALL_BUDGET);
    for (int ro = 0; ro < 2; ro++) {
        sprig_storage *st = open_st(dir, ro);
        sprig_db *db;
        SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
        sprig_verify_progress p;
        SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_verify_wait(st, 60000, &p));
        assert_names_damage(pgno);
        assert_int_equal(p.tables_left, 0);
        assert_failed(st, db, pgno, !ro);
        sprig_db_close(db);
        sprig_storage_close(st);
    }
    sprig__verify_open_bytes_set(UINT64_MAX);
    tu_rmtree(dir);
}

/* No damage: the walk finishes clean and every document reads right. */
static void
test_clean_walk(void **state)
{
    (void)state;
    char dir[1200], id[16], want[2048];
    rt_scratch(dir, sizeof dir, "bgv_clean");
    make_storage(dir, 400, 600);
    sprig__verify_open_bytes_set(SMALL_BUDGET);
    sprig_storage *st = open_st(dir, false);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    sprig_verify_progress p;
    SPRIG_OK_(sprig_storage_verify_wait(st, 60000, &p));
    print_message("clean walk: %llu tables, %llu pages\n",
                  (unsigned long long)p.tables_done,
                  (unsigned long long)p.pages);
    assert_true(p.tables_done >= 1); /* c.b at least */
    assert_true(p.pages >= 40);
    assert_int_equal(p.tables_left, 0);
    for (int i = 0; i < 400; i++) {
        id_of(id, sizeof id, i);
        size_t len = body(want, sizeof want, "b", i, 600);
        rt_assert_doc(db, "b", sprig_str(id), want, len);
    }
    SPRIG_OK_(
        sprig_overwrite(db, "a", sprig_str("new"), sprig_str("{}"), NULL));
    sprig_db_close(db);
    rt_assert_checked(st);
    sprig_storage_close(st);
    sprig__verify_open_bytes_set(UINT64_MAX);
    tu_rmtree(dir);
}

/* A close while the walk goes on (slowed: 300 ms every 256 pages, so
 * c.b's ~2,000 pages would take > 2 s more) returns within a slice or
 * two, and the next open walks again, clean. */
static void
test_close_during_walk(void **state)
{
    (void)state;
    char dir[1200];
    rt_scratch(dir, sizeof dir, "bgv_close");
    make_storage(dir, 6000, 1000); /* ~6 MB: ~2,000 pages of c.b */
    sprig__verify_open_bytes_set(0);
    sprig__bgverify_slice_delay(300);
    sprig_storage *st = open_st(dir, false);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    usleep(100000);
    sprig_verify_progress p;
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_storage_verify_wait(st, 0, &p));
    assert_true(p.tables_left > 0);
    uint64_t t0 = rt_now_us();
    sprig_db_close(db);
    sprig_storage_close(st);
    uint64_t took = rt_now_us() - t0;
    print_message("close during the walk: %llu us\n", (unsigned long long)took);
    assert_true(took < 1500000); /* the walk had > 2 s to go */
    sprig__bgverify_slice_delay(0);
    st = open_st(dir, false);
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    SPRIG_OK_(sprig_storage_verify_wait(st, 60000, &p));
    assert_true(p.pages >= 1500);
    sprig_db_close(db);
    sprig_storage_close(st);
    sprig__verify_open_bytes_set(UINT64_MAX);
    tu_rmtree(dir);
}

/* Writes that grow the map while the walk goes on: they wait for it at
 * most a slice (the walk lets go of its snapshot and walks the table
 * again), and commits racing its snapshots are not taken for damage. */
static void
test_growth_during_walk(void **state)
{
    (void)state;
    char dir[1200];
    rt_scratch(dir, sizeof dir, "bgv_grow");
    make_storage(dir, 3000, 1000);
    sprig__verify_open_bytes_set(0);
    sprig__bgverify_slice_delay(500); /* c.b's ~1,000 pages: > 1.5 s */
    sprig_storage *st = open_map(dir, false, 4u << 20);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    unsigned long restarts = sprig__bgverify_restarts();
    usleep(300000); /* the walk is inside c.b (c.a is one page) */
    uint64_t t0 = rt_now_us();
    fill(db, "a", 20000, 1000); /* ~20 MB: past the first map size */
    uint64_t took = rt_now_us() - t0;
    sprig_verify_progress p;
    SPRIG_OK_(sprig_storage_verify_wait(st, 120000, &p));
    restarts = sprig__bgverify_restarts() - restarts;
    print_message("20,000 writes during the walk: %llu ms; walk %llu pages, "
                  "%lu walks a growth interrupted\n",
                  (unsigned long long)(took / 1000),
                  (unsigned long long)p.pages, restarts);
    assert_true(restarts > 0); /* a growth came during a table's walk */
    sprig__bgverify_slice_delay(0);
    sprig_db_close(db);
    rt_assert_checked(st);
    sprig_storage_close(st);
    sprig__verify_open_bytes_set(UINT64_MAX);
    tu_rmtree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_damage_found),
        cmocka_unit_test(test_clean_walk),
        cmocka_unit_test(test_close_during_walk),
        cmocka_unit_test(test_growth_during_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
