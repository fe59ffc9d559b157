/*
 * test_storage.c -- storages and databases (M1, M2; F8): open, close and
 * reopen keep everything; one process at a time (EBUSY, also from another
 * process); create / delete / list with their errors; deleted databases
 * with open handles; clean-up of directories a crash left behind; schemas
 * persisted and replaced; memory-only storages; sprig_db_open_local.
 */
#include "testutil.h"

#include <sys/stat.h>
#include <sys/wait.h>

static const sprig_collection_def cols[] = {{"msgs", SPRIG_ID_U64, 0},
                                            {"app.users", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"app", cols, 2};
static const sprig_collection_def cols2[] = {{"other", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema2 = {"second", cols2, 1};

static const char *root;
static char path[1100];

static sprig_storage *
open_at(const char *p)
{
    sprig_storage_options o;
    sprig_storage *st;
    sprig_storage_options_init(&o);
    o.path = p;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    return st;
}

static int
setup(void **state)
{
    static int n;
    (void)state;
    snprintf(path, sizeof path, "%s/s%d", root, n++);
    return 0;
}

static void
put_msg(sprig_db *db, const char *text)
{
    SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str(text), NULL));
}

static void
test_reopen_keeps_everything(void **state)
{
    (void)state;
    sprig_storage *st = open_at(path);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema2));
    SPRIG_OK_(sprig_storage_create_database(st, "one", "app", false));
    SPRIG_OK_(sprig_storage_create_database(st, "two", "second", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "one", &db));
    put_msg(db, "hello");
    put_msg(db, "world");
    sprig_db_close(db);
    sprig_storage_close(st);

    st = open_at(path); /* no schema registered by code this time */
    sprig_database_list *dl;
    SPRIG_OK_(sprig_storage_list_databases(st, &dl));
    assert_int_equal(sprig_database_list_count(dl), 2);
    assert_string_equal(sprig_database_list_name(dl, 0), "one");
    assert_string_equal(sprig_database_list_schema(dl, 0), "app");
    assert_string_equal(sprig_database_list_name(dl, 1), "two");
    assert_null(sprig_database_list_name(dl, 2));
    sprig_database_list_free(dl);
    sprig_schema_list *sl;
    SPRIG_OK_(sprig_storage_list_schemas(st, &sl));
    assert_int_equal(sprig_schema_list_count(sl), 2);
    const sprig_schema_def *s0 = sprig_schema_list_get(sl, 0);
    assert_string_equal(s0->name, "app");
    assert_int_equal(s0->n_collections, 2);
    assert_string_equal(s0->collections[1].name, "app.users");
    assert_int_equal(s0->collections[1].id_kind, SPRIG_ID_NATURAL);
    sprig_schema_list_free(sl);
    SPRIG_OK_(sprig_storage_open_database(st, "one", &db));
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "msgs", NULL, &n));
    assert_int_equal(n, 2);
    uint8_t idb[8];
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "msgs", sprig_id_u64(2, idb), &d));
    assert_true(tu_bytes_eq(sprig_doc_contents(d), "world"));
    sprig_doc_free(d);
    sprig_db_close(db);
    sprig_storage_close(st);
}

static void
test_busy(void **state)
{
    (void)state;
    sprig_storage *st = open_at(path);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = path;
    sprig_storage *st2 = (sprig_storage *)1;
    SPRIG_EXPECT(SPRIG_EBUSY, sprig_storage_open(&o, &st2));
    assert_null(st2);
    assert_non_null(strstr(sprig_errmsg(), "open in another"));
    pid_t pid = fork();
    if (pid == 0) {
        sprig_storage *c;
        _exit(sprig_storage_open(&o, &c) == SPRIG_EBUSY ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sprig_storage_close(st);
    st = open_at(path); /* released at close */
    sprig_storage_close(st);
}

static void
test_create_delete_errors(void **state)
{
    (void)state;
    sprig_storage *st = open_at(path);
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_storage_create_database(st, "x", "app", false));
    assert_non_null(strstr(sprig_errmsg(), "not registered"));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema2));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_storage_create_database(st, "bad/name", "app", false));
    assert_non_null(strstr(sprig_errmsg(), "bad/name"));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_storage_create_database(st, "", "app", false));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_storage_create_database(st, ".hidden", "app", false));
    SPRIG_OK_(sprig_storage_create_database(st, "x", "app", false));
    SPRIG_EXPECT(SPRIG_EEXIST,
                 sprig_storage_create_database(st, "x", "app", false));
    SPRIG_OK_(sprig_storage_create_database(st, "x", "app", true));
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_storage_create_database(st, "x", "second", true));
    assert_non_null(strstr(sprig_errmsg(), "exists with schema 'app'"));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_delete_database(st, "y"));
    sprig_db *db = (sprig_db *)1;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_open_database(st, "y", &db));
    assert_null(db);
    SPRIG_OK_(sprig_storage_delete_database(st, "x"));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_delete_database(st, "x"));
    sprig_database_list *dl;
    SPRIG_OK_(sprig_storage_list_databases(st, &dl));
    assert_int_equal(sprig_database_list_count(dl), 0);
    sprig_database_list_free(dl);
    sprig_storage_close(st);
    sprig_storage_close(NULL);
}

static int
count_db_dirs(void)
{
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "exit $(ls '%s/db' | wc -l)", path);
    int st = system(cmd);
    return WEXITSTATUS(st);
}

static void
test_delete_with_open_handle(void **state)
{
    (void)state;
    sprig_storage *st = open_at(path);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "x", "app", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "x", &db));
    put_msg(db, "old");
    SPRIG_OK_(sprig_storage_delete_database(st, "x"));
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_insert(db, "msgs", NULL, sprig_str("z"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "deleted"));
    uint64_t n;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_count(db, "msgs", NULL, &n));
    assert_int_equal(count_db_dirs(), 1); /* files stay while open */
    /* a new database of the same name is a different one */
    SPRIG_OK_(sprig_storage_create_database(st, "x", "app", false));
    sprig_db *db2;
    SPRIG_OK_(sprig_storage_open_database(st, "x", &db2));
    SPRIG_OK_(sprig_count(db2, "msgs", NULL, &n));
    assert_int_equal(n, 0);
    sprig_db_close(db);
    assert_int_equal(count_db_dirs(), 1); /* the old files are gone */
    sprig_db_close(db2);
    sprig_storage_close(st);
}

static void
test_orphans_swept(void **state)
{
    (void)state;
    sprig_storage *st = open_at(path);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "keep", "app", false));
    sprig_storage_close(st);
    /* what a crash between directory creation and registration leaves */
    char ghost[1300];
    snprintf(ghost, sizeof ghost, "%s/db/ghost.77", path);
    assert_int_equal(mkdir(ghost, 0755), 0);
    snprintf(ghost, sizeof ghost, "%s/db/keep.99", path);
    assert_int_equal(mkdir(ghost, 0755), 0);
    assert_int_equal(count_db_dirs(), 3);
    st = open_at(path);
    assert_int_equal(count_db_dirs(), 1);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "keep", &db));
    sprig_db_close(db);
    sprig_storage_close(st);
}

static void
test_schema_replaced(void **state)
{
    (void)state;
    sprig_storage *st = open_at(path);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema2));
    SPRIG_OK_(sprig_storage_create_database(st, "d", "second", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_insert(db, "added", NULL, sprig_str("a"), NULL));
    assert_non_null(strstr(sprig_errmsg(), "'added' is not in schema"));
    sprig_db_close(db);
    static const sprig_collection_def more[] = {{"other", SPRIG_ID_U64, 0},
                                                {"added", SPRIG_ID_U64, 0}};
    static const sprig_schema_def grown = {"second", more, 2};
    SPRIG_OK_(sprig_storage_register_schema(st, &grown));
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    SPRIG_OK_(sprig_insert(db, "added", NULL, sprig_str("a"), NULL));
    sprig_db_close(db);
    /* never drop a collection or change an id kind */
    static const sprig_collection_def fewer[] = {{"added", SPRIG_ID_U64, 0}};
    static const sprig_schema_def dropped = {"second", fewer, 1};
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_storage_register_schema(st, &dropped));
    assert_non_null(strstr(sprig_errmsg(), "drop collection 'other'"));
    static const sprig_collection_def kinds[] = {{"other", SPRIG_ID_NATURAL, 0},
                                                 {"added", SPRIG_ID_U64, 0}};
    static const sprig_schema_def changed = {"second", kinds, 2};
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_storage_register_schema(st, &changed));
    assert_non_null(strstr(sprig_errmsg(), "id kind"));
    static const sprig_collection_def badc[] = {{"a b", SPRIG_ID_U64, 0}};
    static const sprig_schema_def bad = {"bad", badc, 1};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_storage_register_schema(st, &bad));
    sprig_storage_close(st);
}

static void
test_memory_only(void **state)
{
    (void)state;
    sprig_storage_options o;
    sprig_storage *st;
    sprig_storage_options_init(&o);
    o.memory_only = true;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "m", "app", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "m", &db));
    put_msg(db, "in memory");
    sprig_doc_list *l;
    SPRIG_OK_(sprig_list(db, "msgs", NULL, SPRIG_ASC, 0, &l));
    assert_int_equal(sprig_doc_list_count(l), 1);
    sprig_doc_list_free(l);
    sprig_db_close(db);
    sprig_storage_close(st);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_storage_open(NULL, &st));
    sprig_storage_options_init(&o);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_storage_open(&o, &st));
}

static void
test_open_local(void **state)
{
    (void)state;
    sprig_db *db;
    SPRIG_OK_(sprig_db_open_local(path, &schema, &db));
    assert_string_equal(sprig_db_name(db), "default");
    put_msg(db, "m1");
    /* the handle holds the storage: a second open is busy */
    sprig_db *db2 = NULL;
    SPRIG_EXPECT(SPRIG_EBUSY, sprig_db_open_local(path, &schema, &db2));
    sprig_db_close(db);
    SPRIG_OK_(sprig_db_open_local(path, &schema, &db));
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "msgs", NULL, &n));
    assert_int_equal(n, 1);
    sprig_db_close(db);
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_db_open_local(path, &schema2, &db));
    assert_null(db);
    sprig_db_close(NULL);
}

static void
test_close_with_open_handles(void **state)
{
    (void)state;
    sprig_storage *st = open_at(path);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "d", "app", false));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    sprig_storage_close(st);
    put_msg(db, "still works"); /* the handle keeps the storage alive */
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = path;
    SPRIG_EXPECT(SPRIG_EBUSY, sprig_storage_open(&o, &st));
    sprig_db_close(db);
    st = open_at(path);
    sprig_storage_close(st);
}

static void
test_durability_modes(void **state)
{
    (void)state;
    sprig_durability modes[] = {SPRIG_DURABILITY_FULL, SPRIG_DURABILITY_NORMAL,
                                SPRIG_DURABILITY_NONE};
    for (int i = 0; i < 3; i++) {
        sprig_storage_options o;
        sprig_storage *st;
        sprig_storage_options_init(&o);
        o.path = path;
        o.durability = modes[i];
        SPRIG_OK_(sprig_storage_open(&o, &st));
        SPRIG_OK_(sprig_storage_register_schema(st, &schema));
        SPRIG_OK_(sprig_storage_create_database(st, "d", "app", true));
        sprig_db *db;
        SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
        put_msg(db, "m");
        uint64_t n;
        SPRIG_OK_(sprig_count(db, "msgs", NULL, &n));
        assert_int_equal(n, (uint64_t)i + 1);
        sprig_db_close(db);
        sprig_storage_close(st);
    }
}

int
main(void)
{
    root = tu_tmpdir("storage");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reopen_keeps_everything, setup),
        cmocka_unit_test_setup(test_busy, setup),
        cmocka_unit_test_setup(test_create_delete_errors, setup),
        cmocka_unit_test_setup(test_delete_with_open_handle, setup),
        cmocka_unit_test_setup(test_orphans_swept, setup),
        cmocka_unit_test_setup(test_schema_replaced, setup),
        cmocka_unit_test_setup(test_memory_only, setup),
        cmocka_unit_test_setup(test_open_local, setup),
        cmocka_unit_test_setup(test_close_with_open_handles, setup),
        cmocka_unit_test_setup(test_durability_modes, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        tu_rmtree(root);
    }
    return rc;
}
