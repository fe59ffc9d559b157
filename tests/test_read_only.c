/*
 * test_read_only.c -- the read-only open mode (issue 17, item 4: "a
 * storage on a read-only file system cannot be opened even to read").
 * A storage with documents, an eager and a lazy declarative view and
 * key-value pairs is written and closed; then:
 *  - on a read-only file system (a tmpfs remounted read-only here; the
 *    check is skipped when mounting is not permitted) a writable open
 *    fails and a read-only one reads everything: documents, the eager
 *    view, the lazy view without catching up, key-value pairs;
 *  - on a writable disk, a read-only session changes no byte of any file
 *    (every file is compared before and after), every write is refused
 *    with SPRIG_EPERM naming the reason, registering the schema unchanged
 *    is accepted, two read-only opens share the storage while a writable
 *    open excludes them (SPRIG_EBUSY both ways);
 *  - a database whose writer crashed (log not replayed) refuses a
 *    read-only open with SPRIG_EPERM until it is opened writable once.
 */
#include "reltest.h"

#include "core/view.h"

#include <dirent.h>
#include <sys/mount.h>
#include <sys/wait.h>

static const sprig_view_def ro_views[] = {
    {.name = "eager",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "k"},
    {.name = "lazy",
     .version = 1,
     .json_key = "k",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def ro_colls[] = {
    {"docs", SPRIG_ID_U64, 0, ro_views, 2},
};
static const sprig_schema_def ro_schema = {"ro", ro_colls, 1};

static int
open_st(const char *dir, bool ro, sprig_storage **st)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.read_only = ro;
    return sprig_storage_open(&o, st);
}

/* Write the storage: 20 documents, 5 key-value pairs; close cleanly. */
static void
populate(const char *dir)
{
    sprig_storage *st;
    sprig_db *db;
    SPRIG_OK_(open_st(dir, false, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &ro_schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "ro", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    for (int i = 0; i < 20; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"k\":%d}", i % 4);
        SPRIG_OK_(sprig_insert(db, "docs", NULL, sprig_str(body), NULL));
    }
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        sprig_value v = sprig_value_of_bytes(sprig_str("value"));
        SPRIG_OK_(sprig_kv_set(db, "ns", key, &v, NULL, NULL, NULL));
    }
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* Everything written by populate() reads back. */
static void
reads_all(sprig_db *db)
{
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "docs", NULL, &n));
    assert_int_equal(n, 20);
    uint8_t id[8];
    sprig_key_u64(3, id);
    rt_assert_doc(db, "docs", (sprig_bytes){id, 8}, "{\"k\":2}", 7);
    sprig_view_query q;
    sprig_mapping_list *l;
    sprig_view_query_init(&q, "docs", "eager");
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 20);
    sprig_mapping_list_free(l);
    sprig_view_query_init(&q, "docs", "lazy");
    q.access = SPRIG_NO_UPDATE;
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    sprig_mapping_list_free(l);
    sprig_value v = {0};
    SPRIG_OK_(sprig_kv_get(db, "ns", "k3", false, &v));
    assert_true(v.bytes.len == 5 && memcmp(v.bytes.data, "value", 5) == 0);
    sprig_value_clear(&v);
}

/* Every kind of write is refused with SPRIG_EPERM. */
static void
writes_refused(sprig_storage *st, sprig_db *db)
{
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_insert(db, "docs", NULL, sprig_str("{}"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "read-only"));
    sprig_value v = sprig_value_of_bytes(sprig_str("x"));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_kv_set(db, "ns", "new", &v, NULL, NULL, NULL));
    SPRIG_EXPECT(SPRIG_EPERM, sprig_kv_delete(db, "ns", "k1", NULL));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_storage_create_database(st, "db2", "ro", false));
    SPRIG_EXPECT(SPRIG_EPERM, sprig_storage_delete_database(st, "db"));
    static const sprig_collection_def more[] = {
        {"docs", SPRIG_ID_U64, 0, ro_views, 2},
        {"more", SPRIG_ID_U64, 0, NULL, 0},
    };
    static const sprig_schema_def changed = {"ro", more, 2};
    SPRIG_EXPECT(SPRIG_EPERM, sprig_storage_register_schema(st, &changed));
    SPRIG_OK_(sprig_storage_register_schema(st, &ro_schema)); /* unchanged */
    SPRIG_OK_(sprig_storage_create_database(st, "db", "ro", true));
}

/* ---- every file's bytes ------------------------------------------------ */

/* FNV-1a over every file under `dir`, names and contents, in order. */
static uint64_t
tree_hash(const char *dir, uint64_t h)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char p[2048];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, name);
        if (name[0] != '.' && stat(p, &sb) == 0) {
            for (const char *c = name; *c; c++) {
                h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
            }
            if (S_ISDIR(sb.st_mode)) {
                h = tree_hash(p, h);
            } else {
                FILE *f = fopen(p, "rb");
                assert_non_null(f);
                for (int c; (c = fgetc(f)) != EOF;) {
                    h = (h ^ (uint8_t)c) * 0x100000001b3ull;
                }
                fclose(f);
            }
        }
        free(ents[i]);
    }
    free(ents);
    return h;
}

static void
test_read_only_changes_nothing(void **state)
{
    char dir[1200];
    rt_scratch(dir, sizeof dir, "ro-nothing");
    populate(dir);
    uint64_t before = tree_hash(dir, 0xcbf29ce484222325ull);
    sprig_storage *st, *st2, *w;
    sprig_db *db;
    SPRIG_OK_(open_st(dir, true, &st));
    SPRIG_OK_(open_st(dir, true, &st2)); /* readers share */
    SPRIG_EXPECT(SPRIG_EBUSY, open_st(dir, false, &w));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    reads_all(db);
    writes_refused(st, db);
    sprig_db_close(db);
    sprig_storage_close(st2);
    sprig_storage_close(st);
    assert_true(tree_hash(dir, 0xcbf29ce484222325ull) == before);
    SPRIG_OK_(open_st(dir, false, &w)); /* a writer excludes readers */
    SPRIG_EXPECT(SPRIG_EBUSY, open_st(dir, true, &st));
    sprig_storage_close(w);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.memory_only = o.read_only = true;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_storage_open(&o, &st));
    tu_rmtree(dir);
}

static void
test_read_only_file_system(void **state)
{
    char dir[1200];
    rt_scratch(dir, sizeof dir, "ro-fs");
    if (mount("tmpfs", dir, "tmpfs", 0, "size=8m") != 0) {
        print_message("skipped: cannot mount tmpfs (%s)\n", strerror(errno));
        skip();
    }
    char st_dir[1300];
    snprintf(st_dir, sizeof st_dir, "%s/storage", dir);
    populate(st_dir);
    assert_int_equal(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
    sprig_storage *st;
    sprig_db *db;
    int rc = open_st(st_dir, false, &st);
    assert_int_not_equal(rc, SPRIG_OK); /* what was found from outside */
    SPRIG_OK_(open_st(st_dir, true, &st));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    reads_all(db);
    writes_refused(st, db);
    sprig_db_close(db);
    sprig_storage_close(st);
    assert_int_equal(umount(dir), 0);
    tu_rmtree(dir);
}

/* A writer killed with its log not replayed: read-only refuses until a
 * writable open replays it. */
static void
test_read_only_after_crash(void **state)
{
    char dir[1200];
    rt_scratch(dir, sizeof dir, "ro-crash");
    populate(dir);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sprig_storage *st;
        sprig_db *db;
        if (open_st(dir, false, &st) ||
            sprig_storage_open_database(st, "db", &db) ||
            sprig_insert(db, "docs", NULL, sprig_str("{\"k\":9}"), NULL)) {
            _exit(1);
        }
        _exit(0); /* no close: as a crash leaves it */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sprig_storage *st;
    sprig_db *db;
    SPRIG_OK_(open_st(dir, true, &st));
    SPRIG_EXPECT(SPRIG_EPERM, sprig_storage_open_database(st, "db", &db));
    assert_non_null(strstr(sprig_errmsg(), "not closed cleanly"));
    sprig_storage_close(st);
    SPRIG_OK_(open_st(dir, false, &st)); /* replays */
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    sprig_db_close(db);
    sprig_storage_close(st);
    SPRIG_OK_(open_st(dir, true, &st));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "docs", NULL, &n));
    assert_int_equal(n, 21);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_only_changes_nothing),
        cmocka_unit_test(test_read_only_file_system),
        cmocka_unit_test(test_read_only_after_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
