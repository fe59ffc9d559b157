/*
 * test_backup.c -- online backup and restore (issue 13 item 4): a backup
 * taken while writers commit across two databases restores to a
 * consistent prefix of the commits; restore checks the files against the
 * manifest, needs an empty storage, survives a reopen (the orphan sweep
 * keeps every restored directory) and leaves nothing registered when it
 * fails; compaction in place shrinks a database and keeps its data.
 *
 * The consistency check.  Each writer thread t runs iterations s = 1, 2,
 * ...: insert document (t, s) into database "a", set key "t<t>" = s in
 * "a"'s key-value store, insert document (t, s) into database "b" -- three
 * commits in that order.  A state that is a consistent prefix of the
 * commits has, per thread, documents 1..k in "a" (dense), the key at k or
 * k - 1, and documents 1..j in "b" with j == k or k - 1 when the key is at
 * k, and j == k - 1 when it is at k - 1.  Both databases hold preloaded bulk so
 * that each copy takes a while, during which the writers go on: a backup that
 * copied the databases at different moments breaks the relation.
 */
#include "placement.h"
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define WRITERS 3
#define BACKUPS 4
#define BULK 4000

static const sprig_collection_def cols[] = {{"t", SPRIG_ID_U64, 0},
                                            {"bulk", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"bk", cols, 2};

static const char *root;
static int seq;

static sprig_storage *
open_at(const char *p)
{
    sprig_storage_options o;
    sprig_storage *st;
    sprig_storage_options_init(&o);
    o.path = p;
    o.durability = SPRIG_DURABILITY_NORMAL; /* many commits per second */
    SPRIG_OK_(sprig_storage_open(&o, &st));
    return st;
}

static void
fresh(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "%s/%s%d", root, tag, seq++);
}

/* A document id of thread t, iteration s: t in the high bits. */
static uint64_t
doc_id(int t, uint64_t s)
{
    return ((uint64_t)t << 40) | s;
}

static sprig_bytes
id_bytes(uint64_t id, uint8_t b[8])
{
    for (int i = 7; i >= 0; i--, id >>= 8) {
        b[i] = (uint8_t)id;
    }
    return (sprig_bytes){b, 8};
}

static void
preload(sprig_storage *st, const char *name)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_create_database(st, name, "bk", false));
    SPRIG_OK_(sprig_storage_open_database(st, name, &db));
    char body[300];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = 0;
    for (int i = 0; i < BULK; i += 200) {
        sprig_txn *t;
        SPRIG_OK_(sprig_txn_new(&t));
        for (int j = 0; j < 200; j++) {
            SPRIG_OK_(sprig_txn_insert(t, "bulk", NULL, sprig_str(body)));
        }
        SPRIG_OK_(sprig_txn_apply(db, t, NULL));
        sprig_txn_free(t);
    }
    sprig_db_close(db);
}

typedef struct writer {
    sprig_storage *st;
    int t;
    atomic_bool *stop;
    uint64_t done;
    int rc;
} writer;

static void *
writer_main(void *arg)
{
    writer *w = arg;
    sprig_db *a, *b;
    w->rc = sprig_storage_open_database(w->st, "a", &a);
    w->rc = w->rc ? w->rc : sprig_storage_open_database(w->st, "b", &b);
    char key[16], val[32];
    snprintf(key, sizeof key, "t%d", w->t);
    for (uint64_t s = 1; w->rc == 0 && !atomic_load(w->stop); s++) {
        uint8_t ib[8];
        sprig_bytes id = id_bytes(doc_id(w->t, s), ib);
        snprintf(val, sizeof val, "{\"s\":%llu}", (unsigned long long)s);
        sprig_value v = sprig_value_of_u64(s);
        w->rc = sprig_insert(a, "t", &id, sprig_str(val), NULL);
        w->rc = w->rc ? w->rc : sprig_kv_set(a, "w", key, &v, NULL, NULL, NULL);
        w->rc = w->rc ? w->rc : sprig_insert(b, "t", &id, sprig_str(val), NULL);
        w->done = s;
    }
    sprig_db_close(a);
    sprig_db_close(b);
    return NULL;
}

/* Per thread: how many of its documents `name` holds, checking they are
 * exactly 1..k. */
static uint64_t
dense_count(sprig_db *db, int t)
{
    uint8_t lo[8], hi[8];
    sprig_range r = {{SPRIG_INCLUDED, id_bytes(doc_id(t, 1), lo)},
                     {SPRIG_EXCLUDED, id_bytes(doc_id(t + 1, 0), hi)}};
    sprig_header_list *l;
    SPRIG_OK_(sprig_list_headers(db, "t", &r, SPRIG_ASC, 0, &l));
    uint64_t n = sprig_header_list_count(l);
    for (uint64_t i = 0; i < n; i++) {
        sprig_header h = sprig_header_list_get(l, i);
        uint8_t want[8];
        id_bytes(doc_id(t, i + 1), want);
        assert_int_equal(h.id.len, 8);
        assert_memory_equal(h.id.data, want, 8); /* no gap */
    }
    sprig_header_list_free(l);
    return n;
}

/* The restored state is a consistent prefix of the writers' commits. */
static uint64_t
check_prefix(sprig_storage *st)
{
    sprig_db *a, *b;
    SPRIG_OK_(sprig_storage_open_database(st, "a", &a));
    SPRIG_OK_(sprig_storage_open_database(st, "b", &b));
    uint64_t total = 0;
    for (int t = 0; t < WRITERS; t++) {
        uint64_t k = dense_count(a, t), j = dense_count(b, t), kv = 0;
        char key[16];
        snprintf(key, sizeof key, "t%d", t);
        sprig_value v;
        int rc = sprig_kv_get(a, "w", key, false, &v);
        if (rc == 0) {
            kv = v.num.u64;
            sprig_value_clear(&v);
        } else {
            assert_int_equal(rc, SPRIG_ENOTFOUND);
        }
        /* after a's document: (s, s-1, s-1); after the key: (s, s, s-1);
         * after b's document: (s, s, s) */
        bool ok = kv == k ? j == k || j + 1 == k : kv + 1 == k && j + 1 == k;
        if (!ok) {
            print_message("thread %d: a has 1..%llu, key %llu, b has "
                          "1..%llu: not a prefix of the commits\n",
                          t, (unsigned long long)k, (unsigned long long)kv,
                          (unsigned long long)j);
            fail();
        }
        total += k;
    }
    assert_int_equal(dense_count(a, 99), 0);
    sprig_db_close(a);
    sprig_db_close(b);
    return total;
}

typedef struct tally {
    uint64_t calls, items, bytes;
    bool done;
} tally;

static void
on_progress(void *udata, const sprig_progress *p)
{
    tally *t = udata;
    assert_true(p->bytes >= t->bytes); /* never goes back */
    t->calls++;
    t->items = p->items;
    t->bytes = p->bytes;
    t->done = p->done;
}

static void
test_backup_under_load_restores_a_consistent_prefix(void **state)
{
    (void)state;
    char path[1100], bdir[1100], rdir[1100];
    fresh(path, sizeof path, "src");
    sprig_storage *st = open_at(path);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    preload(st, "a");
    preload(st, "b");
    atomic_bool stop = false;
    writer w[WRITERS];
    pthread_t th[WRITERS];
    for (int t = 0; t < WRITERS; t++) {
        w[t] = (writer){st, t, &stop, 0, 0};
        assert_int_equal(pthread_create(&th[t], NULL, writer_main, &w[t]), 0);
    }
    char bdirs[BACKUPS][1100];
    for (int i = 0; i < BACKUPS; i++) {
        usleep(30000);
        fresh(bdirs[i], sizeof bdirs[i], "backup");
        tally tl = {0};
        SPRIG_OK_(sprig_storage_backup(st, bdirs[i], on_progress, &tl));
        assert_true(tl.done);
        assert_int_equal(tl.items, 2);
        assert_true(tl.bytes > (uint64_t)BULK * 300);
    }
    atomic_store(&stop, true);
    uint64_t written = 0;
    for (int t = 0; t < WRITERS; t++) {
        pthread_join(th[t], NULL);
        SPRIG_OK_(w[t].rc);
        written += w[t].done;
    }
    sprig_storage_close(st);
    uint64_t last = 0;
    for (int i = 0; i < BACKUPS; i++) {
        fresh(rdir, sizeof rdir, "restored");
        sprig_storage *r = open_at(rdir);
        tally tl = {0};
        SPRIG_OK_(sprig_storage_restore(r, bdirs[i], on_progress, &tl));
        assert_true(tl.done);
        assert_int_equal(tl.items, 2);
        uint64_t got = check_prefix(r);
        print_message("backup %d: %llu of %llu iterations\n", i,
                      (unsigned long long)got, (unsigned long long)written);
        assert_true(got >= last); /* later backups hold more */
        last = got;
        sprig_storage_close(r);
    }
    (void)bdir;
}

/* Three documents and a key in a fresh storage's database "a". */
static sprig_storage *
small_storage(char *path, size_t n)
{
    fresh(path, n, "small");
    sprig_storage *st = open_at(path);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "a", "bk", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "a", &db));
    for (int i = 0; i < 3; i++) {
        SPRIG_OK_(sprig_insert(db, "t", NULL, sprig_str("{\"x\":1}"), NULL));
    }
    sprig_value v = sprig_value_of_i64(-5);
    SPRIG_OK_(sprig_kv_set(db, "n", "k", &v, NULL, NULL, NULL));
    sprig_db_close(db);
    return st;
}

static size_t
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        n += de->d_name[0] != '.';
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void
flip_byte(const char *file, off_t at)
{
    int fd = open(file, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static void
test_restore_checks_and_refuses(void **state)
{
    (void)state;
    char path[1100], bdir[1100], rdir[1100], f[1200];
    sprig_storage *st = small_storage(path, sizeof path);
    fresh(bdir, sizeof bdir, "backup");
    SPRIG_OK_(sprig_storage_backup(st, bdir, NULL, NULL));
    /* a backup never goes into a directory that holds something */
    SPRIG_EXPECT(SPRIG_EEXIST, sprig_storage_backup(st, bdir, NULL, NULL));
    /* nor is restored into a storage that has a database */
    SPRIG_EXPECT(SPRIG_EEXIST, sprig_storage_restore(st, bdir, NULL, NULL));
    sprig_storage_close(st);
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_storage_restore(st = open_at(path), root, NULL, NULL));
    sprig_storage_close(st);

    /* a damaged file: refused, nothing registered, no directory left */
    snprintf(f, sizeof f, "%s/a.mdb", bdir);
    flip_byte(f, 5000);
    fresh(rdir, sizeof rdir, "restored");
    st = open_at(rdir);
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_restore(st, bdir, NULL, NULL));
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(st, &l));
    assert_int_equal(sprig_database_list_count(l), 0);
    sprig_database_list_free(l);
    snprintf(f, sizeof f, "%s/db", rdir);
    assert_int_equal(count_entries(f), 0);
    /* repaired, the same storage takes it */
    snprintf(f, sizeof f, "%s/a.mdb", bdir);
    flip_byte(f, 5000);
    SPRIG_OK_(sprig_storage_restore(st, bdir, NULL, NULL));
    sprig_storage_close(st);

    /* reopened: the orphan sweep keeps the restored directory, the data is
     * there and the database takes writes (its log starts over) */
    st = open_at(rdir);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "a", &db));
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "t", NULL, &n));
    assert_int_equal(n, 3);
    SPRIG_OK_(sprig_insert(db, "t", NULL, sprig_str("{}"), NULL));
    sprig_value v;
    SPRIG_OK_(sprig_kv_get(db, "n", "k", false, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, -5);
    sprig_db_close(db);
    sprig_storage_close(st);
    st = open_at(rdir);
    SPRIG_OK_(sprig_storage_open_database(st, "a", &db));
    SPRIG_OK_(sprig_count(db, "t", NULL, &n));
    assert_int_equal(n, 4);
    sprig_db_close(db);
    sprig_storage_close(st);

    /* a manifest of another version is refused with both versions named */
    snprintf(f, sizeof f, "%s/manifest.json", bdir);
    FILE *m = fopen(f, "w");
    fputs("{\"format\":\"sprig-backup\",\"version\":9,\"schemas\":[],"
          "\"databases\":[]}",
          m);
    fclose(m);
    fresh(rdir, sizeof rdir, "restored");
    st = open_at(rdir);
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_restore(st, bdir, NULL, NULL));
    assert_non_null(strstr(sprig_errmsg(), "version 9"));
    sprig_storage_close(st);
}

/* Restore `bdir` after `edit` changed its manifest (restored after):
 * SPRIG_ECORRUPT with `says` in the message, and nothing registered. */
static void
refused_manifest(const char *bdir, void (*edit)(json_t *db, json_t *dbs),
                 const char *says)
{
    char f[1200], rdir[1100];
    snprintf(f, sizeof f, "%s/manifest.json", bdir);
    json_t *m = json_load_file(f, 0, NULL);
    assert_non_null(m);
    json_t *dbs = json_object_get(m, "databases");
    json_t *copy = json_deep_copy(m);
    edit(json_array_get(dbs, 0), dbs);
    assert_int_equal(json_dump_file(m, f, 0), 0);
    fresh(rdir, sizeof rdir, "manifest");
    sprig_storage *st = open_at(rdir);
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig_storage_restore(st, bdir, NULL, NULL));
    if (!strstr(sprig_errmsg(), says)) {
        fail_msg("'%s' does not say '%s'", sprig_errmsg(), says);
    }
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(st, &l));
    assert_int_equal(sprig_database_list_count(l), 0);
    sprig_database_list_free(l);
    sprig_storage_close(st);
    assert_int_equal(json_dump_file(copy, f, 0), 0);
    json_decref(copy);
    json_decref(m);
}

static void
file_dotdot(json_t *db, json_t *dbs)
{
    (void)dbs;
    json_object_set_new(db, "file", json_string(".."));
}

static void
file_empty(json_t *db, json_t *dbs)
{
    (void)dbs;
    json_object_set_new(db, "file", json_string(""));
}

static void
file_missing(json_t *db, json_t *dbs)
{
    (void)dbs;
    json_object_set_new(db, "file", json_string("b.mdb"));
}

static void
crc_wide(json_t *db, json_t *dbs)
{
    (void)dbs;
    json_int_t crc = json_integer_value(json_object_get(db, "crc32c"));
    json_object_set_new(db, "crc32c", json_integer(crc + (1ll << 32)));
}

static void
listed_twice(json_t *db, json_t *dbs)
{
    json_array_append_new(dbs, json_deep_copy(db));
}

/* Damaged manifests found by fuzz_manifest: a file name "" or ".." (a
 * directory) and a file missing from the backup were SPRIG_EIO naming the
 * destination; a CRC over 32 bits was taken; a database listed twice was
 * restored "successfully", its second entry re-registering the name over
 * the first copy.  Each is SPRIG_ECORRUPT now, before anything is
 * registered; the untouched manifest still restores. */
static void
test_restore_refuses_damaged_manifests(void **state)
{
    (void)state;
    char path[1100], bdir[1100], rdir[1100];
    sprig_storage *st = small_storage(path, sizeof path);
    fresh(bdir, sizeof bdir, "backup-mf");
    SPRIG_OK_(sprig_storage_backup(st, bdir, NULL, NULL));
    sprig_storage_close(st);
    refused_manifest(bdir, file_dotdot, "malformed");
    refused_manifest(bdir, file_empty, "malformed");
    refused_manifest(bdir, file_missing,
                     "b.mdb', named by the backup's "
                     "manifest, is missing");
    refused_manifest(bdir, crc_wide, "malformed");
    refused_manifest(bdir, listed_twice, "database 'a' is listed twice");
    fresh(rdir, sizeof rdir, "manifest-ok");
    st = open_at(rdir);
    SPRIG_OK_(sprig_storage_restore(st, bdir, NULL, NULL));
    sprig_storage_close(st);
}

static uint64_t
file_size(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 ? (uint64_t)s.st_size : 0;
}

/* The size of database `name`'s data.mdb (the one directory of it). */
static uint64_t
db_file_size(const char *path, const char *name)
{
    char d[1200], f[1600];
    snprintf(d, sizeof d, "%s/db", path);
    DIR *dir = opendir(d);
    struct dirent *de;
    uint64_t size = 0;
    while (dir && (de = readdir(dir))) {
        if (strncmp(de->d_name, name, strlen(name)) == 0 &&
            de->d_name[strlen(name)] == '.') {
            snprintf(f, sizeof f, "%s/%s/data.mdb", d, de->d_name);
            size = file_size(f);
        }
    }
    if (dir) {
        closedir(dir);
    }
    return size;
}

static void
test_compact_in_place(void **state)
{
    (void)state;
    char path[1100];
    fresh(path, sizeof path, "compact");
    sprig_storage *st = open_at(path);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    preload(st, "a");
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "a", &db));
    sprig_header_list *l;
    SPRIG_OK_(sprig_list_headers(db, "bulk", NULL, SPRIG_ASC, 0, &l));
    for (size_t i = 0; i + 10 < sprig_header_list_count(l); i++) {
        sprig_header h = sprig_header_list_get(l, i);
        SPRIG_OK_(sprig_delete(db, "bulk", &h));
    }
    sprig_header_list_free(l);
    /* an open handle: refused */
    SPRIG_EXPECT(SPRIG_EBUSY, sprig_storage_compact(st, "a", NULL, NULL));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_compact(st, "zz", NULL, NULL));
    sprig_db_close(db);
    uint64_t before = db_file_size(path, "a");
    tally tl = {0};
    SPRIG_OK_(sprig_storage_compact(st, "a", on_progress, &tl));
    assert_true(tl.done);
    uint64_t after = db_file_size(path, "a");
    print_message("compacted %llu -> %llu bytes\n", (unsigned long long)before,
                  (unsigned long long)after);
    assert_true(after * 4 < before);
    assert_int_equal(tl.bytes, after);
    SPRIG_OK_(sprig_storage_open_database(st, "a", &db));
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "bulk", NULL, &n));
    assert_int_equal(n, 10);
    SPRIG_OK_(sprig_insert(db, "bulk", NULL, sprig_str("after"), NULL));
    sprig_db_close(db);
    sprig_storage_close(st);
    st = open_at(path); /* reopens after a clean close */
    SPRIG_OK_(sprig_storage_open_database(st, "a", &db));
    SPRIG_OK_(sprig_count(db, "bulk", NULL, &n));
    assert_int_equal(n, 11);
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* Over the network: the jobs run in the server, on its storage and its
 * directories, through a client (ws) and through a server over a storage
 * that is not the local type (the public ops only). */
static void
over_the_network(const char *kind)
{
    placement p;
    placement_open(&p, kind, root, &schema);
    SPRIG_OK_(sprig_storage_create_database(p.st, "a", "bk", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(p.st, "a", &db));
    for (int i = 0; i < 5; i++) {
        SPRIG_OK_(sprig_insert(db, "t", NULL, sprig_str("{}"), NULL));
    }
    sprig_db_close(db);
    char bdir[1100], edir[1100], rdir[1100];
    fresh(bdir, sizeof bdir, "netbackup");
    fresh(edir, sizeof edir, "netexport");
    tally tl = {0};
    SPRIG_OK_(sprig_storage_backup(p.st, bdir, on_progress, &tl));
    assert_true(tl.done);
    assert_int_equal(tl.items, 1);
    SPRIG_OK_(sprig_storage_export(p.st, edir, NULL, NULL));
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_storage_compact(p.st, "nosuch", NULL, NULL));
    SPRIG_EXPECT(SPRIG_EEXIST, sprig_storage_backup(p.st, bdir, NULL, NULL));
    placement_close(&p);
    /* the server wrote them: restore and import them here */
    fresh(rdir, sizeof rdir, "netrestored");
    sprig_storage *r = open_at(rdir);
    SPRIG_OK_(sprig_storage_restore(r, bdir, NULL, NULL));
    SPRIG_OK_(sprig_storage_open_database(r, "a", &db));
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "t", NULL, &n));
    assert_int_equal(n, 5);
    sprig_db_close(db);
    sprig_storage_close(r);
    fresh(rdir, sizeof rdir, "netimported");
    r = open_at(rdir);
    SPRIG_OK_(sprig_storage_import(r, edir, NULL, NULL));
    SPRIG_OK_(sprig_storage_open_database(r, "a", &db));
    SPRIG_OK_(sprig_count(db, "t", NULL, &n));
    assert_int_equal(n, 5);
    sprig_db_close(db);
    sprig_storage_close(r);
}

static void
test_jobs_over_the_network(void **state)
{
    (void)state;
    over_the_network("ws");
    over_the_network("wrapped");
}

int
main(void)
{
    root = tu_tmpdir("backup");
    tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backup_under_load_restores_a_consistent_prefix),
        cmocka_unit_test(test_restore_checks_and_refuses),
        cmocka_unit_test(test_restore_refuses_damaged_manifests),
        cmocka_unit_test(test_compact_in_place),
        cmocka_unit_test(test_jobs_over_the_network),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        tu_rmtree(root);
    }
    return rc;
}
