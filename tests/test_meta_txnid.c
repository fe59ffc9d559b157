/*
 * test_meta_txnid.c -- a damaged LMDB meta page never opens an older
 * snapshot as if it were the newest (issue 17, item 3; env.c "the meta page
 * LMDB opens").  LMDB keeps two meta pages and opens the one with the
 * higher transaction id, so a flip that lowers the newest one's id (or
 * raises the older one's, or swaps them) would silently open the previous
 * commit's snapshot: sound in structure, with acknowledged writes gone.
 *
 * Each test writes a real storage, closes it cleanly, damages the meta
 * pages of a real data.mdb (a database's in `full` and `normal`
 * durability, and `_admin`'s, also after a crash), proves with LMDB itself that
 * the damaged file now opens an older snapshot that lacks the last write, then
 * opens the storage: read-only it is SPRIG_ECORRUPT naming the file; writable,
 * the copy of the meta page saved at the clean close is put back and every
 * write is there.  And the legitimate states a crash leaves (no clean
 * close, so no copy; `none` rolled back to its last synced state; lazy
 * key-value writes lost) still open.  `none` keeps no copy (it never
 * syncs, so no copy could be trusted): not covered.
 */
#include "reltest.h"

#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static const sprig_collection_def colls[] = {
    {"c", SPRIG_ID_NATURAL, 0, NULL, 0}};
static const sprig_schema_def schema = {"mt", colls, 1};

#define PSIZE 4096u

/* snprintf into an array, asserting it fitted. */
#define PATHF(buf, ...)                                                        \
    assert_true(snprintf(buf, sizeof buf, __VA_ARGS__) < (int)sizeof buf)

static sprig_storage *
open_st(const char *dir, sprig_durability dur, bool read_only, int *rc)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.durability = dur;
    o.read_only = read_only;
    o.kv_persistence.mode = SPRIG_KV_LAZY; /* crash_after's pair */
    o.kv_persistence.lazy_ms = 60000;
    sprig_storage *st = NULL;
    *rc = sprig_storage_open(&o, &st);
    if (*rc == 0 && !read_only) {
        SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    }
    return *rc ? NULL : st;
}

/* Write documents d<from>..d<to-1>, one commit each. */
static void
put_docs(sprig_storage *st, const char *dbn, int from, int to)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, dbn, &db));
    for (int i = from; i < to; i++) {
        char id[16], body[64];
        snprintf(id, sizeof id, "d%d", i);
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        SPRIG_OK_(
            sprig_overwrite(db, "c", sprig_str(id), sprig_str(body), NULL));
    }
    sprig_db_close(db);
}

/* A storage in `dir` with database `db` holding d0..d<n-1>, closed. */
static void
make_storage(const char *dir, sprig_durability dur, int n)
{
    int rc;
    sprig_storage *st = open_st(dir, dur, false, &rc);
    SPRIG_OK_(rc);
    SPRIG_OK_(sprig_storage_create_database(st, "db", "mt", false));
    put_docs(st, "db", 0, n);
    sprig_storage_close(st);
}

/* Every document d0..d<n-1> is there, and nothing else; the check is
 * clean. */
static void
assert_docs(sprig_storage *st, int n)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    for (int i = 0; i < n; i++) {
        char id[16], body[64];
        snprintf(id, sizeof id, "d%d", i);
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        rt_assert_doc(db, "c", sprig_str(id), body, strlen(body));
    }
    uint64_t count = 0;
    SPRIG_OK_(sprig_count(db, "c", NULL, &count));
    assert_int_equal(count, n);
    sprig_db_close(db);
    rt_assert_checked(st);
}

/* The directory of database `db` under `dir` (db/db.<id>). */
static void
db_dir(const char *dir, char *out, size_t n)
{
    char p[1200];
    PATHF(p, "%s/db", dir);
    DIR *d = opendir(p);
    struct dirent *e;
    assert_non_null(d);
    out[0] = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strncmp(e->d_name, "db.", 3)) {
            assert_true(snprintf(out, n, "%s/%s", p, e->d_name) < (int)n);
        }
    }
    closedir(d);
    assert_true(out[0] != 0);
}

/* ---- the meta pages of a data.mdb ---------------------------------------- */

static uint64_t
txnid_at(const uint8_t *pg)
{
    uint64_t v;
    memcpy(&v, pg + 144, 8);
    return v;
}

static void
read_metas(const char *file, uint8_t m[2][PSIZE])
{
    int fd = open(file, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, m[0], PSIZE, 0), PSIZE);
    assert_int_equal(pread(fd, m[1], PSIZE, PSIZE), PSIZE);
    close(fd);
}

static void
write_metas(const char *file, uint8_t m[2][PSIZE])
{
    int fd = open(file, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, m[0], PSIZE, 0), PSIZE);
    assert_int_equal(pwrite(fd, m[1], PSIZE, PSIZE), PSIZE);
    close(fd);
}

/* Lower the newest meta page's transaction id below the other's: LMDB
 * then picks the older one.  Returns the newest id it had. */
static uint64_t
lower_newest(const char *dir)
{
    char file[1300];
    uint8_t m[2][PSIZE];
    PATHF(file, "%s/data.mdb", dir);
    read_metas(file, m);
    int k = txnid_at(m[1]) > txnid_at(m[0]);
    uint64_t newest = txnid_at(m[k]), lowered = txnid_at(m[!k]) - 1;
    assert_true(txnid_at(m[!k]) >= 1);
    memcpy(m[k] + 144, &lowered, 8);
    write_metas(file, m);
    return newest;
}

/* Exchange the two meta pages' contents (page numbers kept). */
static void
swap_metas(const char *dir)
{
    char file[1300];
    uint8_t m[2][PSIZE], t[PSIZE];
    PATHF(file, "%s/data.mdb", dir);
    read_metas(file, m);
    memcpy(t, m[0] + 8, PSIZE - 8);
    memcpy(m[0] + 8, m[1] + 8, PSIZE - 8);
    memcpy(m[1] + 8, t, PSIZE - 8);
    write_metas(file, m);
}

/* What LMDB itself opens in `dir` (a copy, read-only): the snapshot's id
 * and the entries of table `table` (0 when it does not exist). */
static void
lmdb_sees(const char *dir, const char *table, uint64_t *txnid,
          uint64_t *entries)
{
    char copy[1300], cmd[6000];
    PATHF(copy, "%s.lmdb", dir);
    PATHF(cmd, "rm -rf '%s' && mkdir -p '%s' && cp '%s/data.mdb' '%s/'", copy,
          copy, dir, copy);
    assert_int_equal(system(cmd), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat s;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    assert_int_equal(mdb_env_open(env, copy, MDB_RDONLY | MDB_NOLOCK, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    *txnid = mdb_txn_id(txn);
    *entries = 0;
    if (mdb_dbi_open(txn, table, 0, &dbi) == 0 && mdb_stat(txn, dbi, &s) == 0) {
        *entries = s.ms_entries;
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    tu_rmtree(copy);
}

/* ---- a database's meta page -------------------------------------------- */

/* Damage `db`'s meta pages with `how` after a clean close in `dur`: the
 * damaged file opens an older snapshot in LMDB; read-only the storage
 * refuses it naming the file; writable it opens with every write. */
static void
damaged_db_meta(sprig_durability dur, bool swap)
{
    char dir[1200], dbd[1300];
    rt_scratch(dir, sizeof dir, "meta_txnid");
    make_storage(dir, dur, 6);
    db_dir(dir, dbd, sizeof dbd);
    uint64_t t0, n0, t1, n1;
    lmdb_sees(dbd, "c.c", &t0, &n0);
    assert_int_equal(n0, 6);
    if (swap) {
        swap_metas(dbd); /* LMDB: the same snapshot, from the wrong slot */
    } else {
        assert_int_equal(lower_newest(dbd), t0);
    }
    lmdb_sees(dbd, "c.c", &t1, &n1);
    if (!swap) {
        assert_true(t1 < t0); /* LMDB alone opens an older snapshot */
        assert_true(n1 < n0); /* without the last write */
        print_message("lowered: LMDB opens snapshot %llu (%llu documents) "
                      "instead of %llu (%llu)\n",
                      (unsigned long long)t1, (unsigned long long)n1,
                      (unsigned long long)t0, (unsigned long long)n0);
    }
    int rc;
    sprig_storage *st = open_st(dir, dur, true, &rc);
    sprig_db *db = NULL;
    rc = rc ? rc : sprig_storage_open_database(st, "db", &db);
    assert_int_equal(rc, SPRIG_ECORRUPT);
    assert_non_null(strstr(sprig_errmsg(), "data.mdb"));
    print_message("read-only: %s\n", sprig_errmsg());
    sprig_db_close(db);
    sprig_storage_close(st);
    unsigned long before = sprig__env_meta_restores();
    st = open_st(dir, dur, false, &rc);
    SPRIG_OK_(rc);
    assert_docs(st, 6);
    assert_true(sprig__env_meta_restores() > before);
    put_docs(st, "db", 6, 8); /* and it goes on committing */
    sprig_storage_close(st);
    st = open_st(dir, dur, false, &rc);
    SPRIG_OK_(rc);
    assert_docs(st, 8);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

static void
test_lowered_full(void **state)
{
    (void)state;
    damaged_db_meta(SPRIG_DURABILITY_FULL, false);
}

static void
test_lowered_normal(void **state)
{
    (void)state;
    damaged_db_meta(SPRIG_DURABILITY_NORMAL, false);
}

static void
test_swapped_full(void **state)
{
    (void)state;
    damaged_db_meta(SPRIG_DURABILITY_FULL, true);
}

/* ---- the registry ------------------------------------------------------- */

/* `_admin` keeps LMDB's own syncs and no log: its copy is `closed`.  The
 * last registry commit creates database "late"; a lowered meta page would
 * open the registry without it -- and the open's orphan sweep would remove
 * its directory. */
static void
test_lowered_admin(void **state)
{
    (void)state;
    char dir[1200], adm[1300];
    rt_scratch(dir, sizeof dir, "meta_admin");
    make_storage(dir, SPRIG_DURABILITY_FULL, 2);
    int rc;
    sprig_storage *st = open_st(dir, SPRIG_DURABILITY_FULL, false, &rc);
    SPRIG_OK_(rc);
    SPRIG_OK_(sprig_storage_create_database(st, "late", "mt", false));
    put_docs(st, "late", 0, 3);
    sprig_storage_close(st);
    PATHF(adm, "%s/_admin", dir);
    uint64_t t0, n0, t1, n1;
    lmdb_sees(adm, "databases", &t0, &n0);
    assert_int_equal(n0, 2);
    assert_int_equal(lower_newest(adm), t0);
    lmdb_sees(adm, "databases", &t1, &n1);
    assert_true(t1 < t0);
    assert_int_equal(n1, 1); /* LMDB alone: "late" is not registered */
    st = open_st(dir, SPRIG_DURABILITY_FULL, true, &rc);
    assert_int_equal(rc, SPRIG_ECORRUPT);
    assert_non_null(strstr(sprig_errmsg(), "_admin/data.mdb"));
    st = open_st(dir, SPRIG_DURABILITY_FULL, false, &rc);
    SPRIG_OK_(rc);
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(st, &l));
    assert_int_equal(sprig_database_list_count(l), 2);
    sprig_database_list_free(l);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "late", &db));
    rt_assert_doc(db, "c", sprig_str("d2"), "{\"n\":2}", 7);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* The same after a crash: `_admin` keeps its copy after every commit, so
 * a writer killed right after creating a database leaves a copy of that
 * commit's meta page. */
static void
test_lowered_admin_crashed(void **state)
{
    (void)state;
    char dir[1200], adm[1300];
    rt_scratch(dir, sizeof dir, "meta_admin_crash");
    make_storage(dir, SPRIG_DURABILITY_FULL, 2);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc;
        sprig_storage *st = open_st(dir, SPRIG_DURABILITY_FULL, false, &rc);
        if (rc || sprig_storage_create_database(st, "late", "mt", false)) {
            _exit(2);
        }
        kill(getpid(), SIGKILL);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    PATHF(adm, "%s/_admin", dir);
    uint64_t t0, n0, t1, n1;
    lmdb_sees(adm, "databases", &t0, &n0);
    assert_int_equal(n0, 2);
    assert_int_equal(lower_newest(adm), t0);
    lmdb_sees(adm, "databases", &t1, &n1);
    assert_int_equal(n1, 1); /* LMDB alone: "late" is not registered */
    int rc;
    sprig_storage *st = open_st(dir, SPRIG_DURABILITY_FULL, false, &rc);
    SPRIG_OK_(rc);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "late", &db));
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

/* ---- legitimate crash states still open -------------------------------- */

/* A child opens the storage, writes d<from>..d<to-1> (and a lazy key-value
 * pair) and exits without closing: no clean close, no copy. */
static void
crash_after(const char *dir, sprig_durability dur, int from, int to)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc;
        sprig_storage *st = open_st(dir, dur, false, &rc);
        if (rc) {
            _exit(2);
        }
        sprig_db *db;
        if (sprig_storage_open_database(st, "db", &db)) {
            _exit(3);
        }
        sprig_value v = sprig_value_of_i64(7);
        if (sprig_kv_set(db, "ns", "lazy", &v, NULL, NULL, NULL)) {
            _exit(4);
        }
        sprig_db_close(db);
        put_docs(st, "db", from, to);
        kill(getpid(), SIGKILL);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* `none` (logged like the others since issue 17, item 1, its log only
 * never synced on the commit path): a clean close, then a crashed
 * session: the open restores its checkpoint and replays the log, which
 * the page cache kept -- every write is back; its databases keep no
 * meta.copy (the checkpoint is theirs).  Then the logged modes after a
 * crash (restore and replay; a lazy pair lost).  A power loss of `none`
 * is tests/powerloss's. */
static void
test_crash_states_open(void **state)
{
    (void)state;
    char dir[1200], dbd[1300], cmd[3000];
    rt_scratch(dir, sizeof dir, "meta_crash");
    make_storage(dir, SPRIG_DURABILITY_NONE, 4);
    db_dir(dir, dbd, sizeof dbd);
    crash_after(dir, SPRIG_DURABILITY_NONE, 4, 9);
    PATHF(cmd, "test ! -e '%s/meta.copy' && test -e '%s/wal/meta'", dbd, dbd);
    assert_int_equal(system(cmd), 0); /* the checkpoint is its copy */
    int rc;
    sprig_storage *st = open_st(dir, SPRIG_DURABILITY_NONE, false, &rc);
    SPRIG_OK_(rc);
    assert_docs(st, 9);
    sprig_storage_close(st);
    /* the logged modes: the crashed session's writes are replayed, the
     * lazy pair may be missing; nothing is refused */
    for (int k = 0; k < 2; k++) {
        sprig_durability dur =
            k ? SPRIG_DURABILITY_NORMAL : SPRIG_DURABILITY_FULL;
        st = open_st(dir, dur, false, &rc); /* leaves wal/clean */
        SPRIG_OK_(rc);
        sprig_storage_close(st);
        crash_after(dir, dur, 4, 9);
        st = open_st(dir, dur, false, &rc);
        SPRIG_OK_(rc);
        assert_docs(st, 9);
        sprig_storage_close(st);
    }
    tu_rmtree(dir);
}

/* Switching a database between `none` and the other modes never compares
 * it with a stale copy: every mode keeps the checkpoint (`none` too), a
 * logged open spends `closed`. */
static void
test_mode_switch(void **state)
{
    (void)state;
    char dir[1200];
    rt_scratch(dir, sizeof dir, "meta_switch");
    make_storage(dir, SPRIG_DURABILITY_FULL, 2);
    static const sprig_durability seq[] = {
        SPRIG_DURABILITY_NONE, SPRIG_DURABILITY_FULL, SPRIG_DURABILITY_NONE,
        SPRIG_DURABILITY_NORMAL, SPRIG_DURABILITY_FULL};
    int n = 2;
    unsigned long before = sprig__env_meta_restores();
    for (size_t i = 0; i < sizeof seq / sizeof *seq; i++) {
        int rc;
        sprig_storage *st = open_st(dir, seq[i], false, &rc);
        SPRIG_OK_(rc);
        assert_docs(st, n);
        put_docs(st, "db", n, n + 2);
        n += 2;
        sprig_storage_close(st);
    }
    assert_int_equal(sprig__env_meta_restores(), before); /* none needed */
    tu_rmtree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lowered_full),
        cmocka_unit_test(test_lowered_normal),
        cmocka_unit_test(test_swapped_full),
        cmocka_unit_test(test_lowered_admin),
        cmocka_unit_test(test_lowered_admin_crashed),
        cmocka_unit_test(test_crash_states_open),
        cmocka_unit_test(test_mode_switch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
