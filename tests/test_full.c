/*
 * test_full.c -- a full storage fails cleanly and loses nothing.  (a) With
 * max_map_size at 1 MiB, writing until the limit gives SPRIG_EFULL with a
 * message; every document acknowledged before is intact, reads still work,
 * further writes (single and transactions) fail the same way and leave
 * nothing, and after close and reopen exactly the acknowledged documents
 * are there; at the limit, deleting documents must still work and make room
 * again (LMDB reuses freed pages).  (b) Map growth is invisible: from a
 * 64 KiB map with no limit, single inserts, batched transactions, a
 * document larger than the map and eight concurrent writers (beside
 * readers) all succeed and read back exactly.  (c) A real full disk, a
 * 4 MiB tmpfs mounted here (skipped when mounting is not permitted): filled
 * with 2000-byte documents; filled with documents of any size in the last
 * free bytes (where writes come up short); opened, or given a new database,
 * with 0 to 96 KiB free.  Every failure is SPRIG_EFULL -- not EIO, not a
 * crash: each scenario runs in a child process so a SIGBUS is reported, not
 * fatal --, earlier data stays intact, writes work again once documents are
 * deleted or the disk has room, and the storage reopens.
 */
#include "reltest.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#define KIB 1024u
#define MIB (1024u * 1024u)

static const sprig_collection_def full_colls[] = {
    {"docs", SPRIG_ID_NATURAL, 0},
};
static const sprig_schema_def full_schema = {"full", full_colls, 1};

/* ---- documents: contents derived from the index ------------------------ */

static sprig_bytes
fill_id(char *buf, size_t n, unsigned i)
{
    snprintf(buf, n, "f%07u", i);
    return sprig_str(buf);
}

/* `len` bytes that differ per document (so no page compresses away). */
static void
fill_body(uint8_t *buf, size_t len, unsigned i)
{
    uint64_t s = i * 0x9E3779B97F4A7C15ull + 1;
    for (size_t j = 0; j < len; j++) {
        buf[j] = (uint8_t)(tu_rand(&s) >> 56);
    }
}

/* The documents a test wrote: which exist and how long each is. */
typedef struct ledger {
    size_t *len; /* 0: absent */
    unsigned n, cap;
} ledger;

static void
ledger_set(ledger *l, unsigned i, size_t len)
{
    if (i >= l->cap) {
        unsigned cap = l->cap ? l->cap * 2 : 4096;
        while (cap <= i) {
            cap *= 2;
        }
        l->len = realloc(l->len, cap * sizeof *l->len);
        assert_non_null(l->len);
        memset(l->len + l->cap, 0, (cap - l->cap) * sizeof *l->len);
        l->cap = cap;
    }
    l->len[i] = len;
    l->n = i + 1 > l->n ? i + 1 : l->n;
}

static int
insert_doc(sprig_db *db, unsigned i, size_t len)
{
    char id[32];
    uint8_t *body = malloc(len ? len : 1);
    assert_non_null(body);
    fill_body(body, len, i);
    sprig_bytes b = fill_id(id, sizeof id, i);
    sprig__err(SPRIG_OK, "%s", ""); /* a failure must say why */
    int rc = sprig_insert(db, "docs", &b, (sprig_bytes){body, len}, NULL);
    free(body);
    return rc;
}

/* Insert documents of `len` bytes from index l->n on until one fails (or
 * `max` succeed); return that failure's code. */
static int
fill_until_error(sprig_db *db, ledger *l, size_t len, unsigned max)
{
    for (unsigned k = 0; k < max; k++) {
        unsigned i = l->n;
        int rc = insert_doc(db, i, len);
        if (rc) {
            return rc;
        }
        ledger_set(l, i, len);
    }
    return SPRIG_OK;
}

/* Exactly the ledger's documents exist, each with its exact contents. */
static void
assert_ledger(sprig_db *db, const ledger *l)
{
    uint64_t want = 0, n;
    for (unsigned i = 0; i < l->n; i++) {
        char id[32];
        if (!l->len[i]) {
            rt_assert_no_doc(db, "docs", fill_id(id, sizeof id, i));
            continue;
        }
        uint8_t *body = malloc(l->len[i]);
        assert_non_null(body);
        fill_body(body, l->len[i], i);
        rt_assert_doc(db, "docs", fill_id(id, sizeof id, i), body, l->len[i]);
        free(body);
        want++;
    }
    SPRIG_OK_(sprig_count(db, "docs", NULL, &n));
    assert_int_equal(n, want);
}

/* Delete the older half of the documents, one transaction each, so whole
 * B-tree pages empty and go back to LMDB's free list; every delete must
 * succeed, even when the storage is full. */
static unsigned
delete_half(sprig_db *db, ledger *l)
{
    unsigned deleted = 0, n = l->n / 2;
    for (unsigned i = 0; i < n; i++) {
        char id[32];
        sprig_doc *d = NULL;
        if (!l->len[i]) {
            continue;
        }
        SPRIG_OK_(sprig_get(db, "docs", fill_id(id, sizeof id, i), &d));
        sprig_header h = sprig_doc_header(d);
        int rc = sprig_delete(db, "docs", &h);
        sprig_doc_free(d);
        if (rc) {
            fail_msg("delete %u of %u (document %u) on a full storage failed: "
                     "%s (%s)",
                     deleted + 1, n, i, sprig_strerror(rc), sprig_errmsg());
        }
        l->len[i] = 0;
        deleted++;
    }
    return deleted;
}

/* A transaction of three documents fails with `want` and leaves nothing. */
static void
assert_txn_fails(sprig_db *db, const ledger *l, size_t len, int want)
{
    uint64_t before, after;
    SPRIG_OK_(sprig_last_txn_id(db, &before));
    sprig_txn *t = NULL;
    SPRIG_OK_(sprig_txn_new(&t));
    uint8_t *body = malloc(len);
    assert_non_null(body);
    char ids[3][32];
    for (unsigned k = 0; k < 3; k++) {
        fill_body(body, len, l->n + k);
        sprig_bytes id = fill_id(ids[k], sizeof ids[k], l->n + k);
        SPRIG_OK_(sprig_txn_insert(t, "docs", &id, (sprig_bytes){body, len}));
    }
    SPRIG_EXPECT(want, sprig_txn_apply(db, t, NULL));
    for (unsigned k = 0; k < 3; k++) {
        rt_assert_no_doc(db, "docs", sprig_str(ids[k]));
    }
    SPRIG_OK_(sprig_last_txn_id(db, &after));
    assert_int_equal(after, before);
    sprig_txn_free(t);
    free(body);
}

/* A failed write must say SPRIG_EFULL and why. */
static void
assert_full(int rc)
{
    if (rc != SPRIG_EFULL) {
        fail_msg("wanted SPRIG_EFULL, got %d (%s: %s)", rc, sprig_strerror(rc),
                 sprig_errmsg());
    }
    assert_true(strlen(sprig_errmsg()) > 0);
}

/* ---- an open storage with one database --------------------------------- */

typedef struct fx {
    char dir[600];
    sprig_storage *st;
    sprig_db *db;
    sprig_durability durability;
    uint64_t initial, max;
    ledger l;
} fx;

/* A scratch directory and a ledger; the teardown closes and frees what a
 * failed test left. */
static int
fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    rt_scratch(f->dir, sizeof f->dir, "full");
    f->durability = SPRIG_DURABILITY_NONE;
    *state = f;
    return 0;
}

static void
fx_open(fx *f, bool create)
{
    SPRIG_OK_(
        rt_storage_open(f->dir, f->durability, f->initial, f->max, &f->st));
    if (create) {
        SPRIG_OK_(sprig_storage_register_schema(f->st, &full_schema));
        SPRIG_OK_(sprig_storage_create_database(f->st, "db", "full", false));
    }
    SPRIG_OK_(sprig_storage_open_database(f->st, "db", &f->db));
}

static void
fx_close(fx *f)
{
    sprig_db_close(f->db);
    sprig_storage_close(f->st);
    f->db = NULL;
    f->st = NULL;
}

static int
fx_teardown(void **state)
{
    fx *f = *state;
    fx_close(f);
    free(f->l.len);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

/* ======================================================================
 * (a) the size limit
 * ====================================================================== */

/* A database limited to 1 MiB, filled with documents of `len` bytes until
 * SPRIG_EFULL; the failure is clean and later writes fail the same way. */
static void
limit_fill(fx *f, size_t len)
{
    f->max = 1 * MIB;
    fx_open(f, true);
    assert_full(fill_until_error(f->db, &f->l, len, 100000));
    printf("limit: %u documents of %zu bytes fit in 1 MiB\n", f->l.n, len);
    assert_true(f->l.n * len > 256 * KIB && f->l.n * len < MIB);
    assert_ledger(f->db, &f->l);
    assert_full(insert_doc(f->db, f->l.n, len)); /* still full and clean */
    assert_txn_fails(f->db, &f->l, len, SPRIG_EFULL);
}

/* Close and reopen: exactly the acknowledged documents are there. */
static void
fx_reopen(fx *f)
{
    fx_close(f);
    fx_open(f, false);
    assert_ledger(f->db, &f->l);
}

static void
limit_scenario(fx *f)
{
    limit_fill(f, 1000);
    fx_reopen(f);
    assert_full(insert_doc(f->db, f->l.n, 1000)); /* the limit holds */
}

static void
test_limit(void **state)
{
    limit_scenario(*state); /* starts at the limit */
}

static void
test_limit_after_growth(void **state)
{
    fx *f = *state;
    f->initial = 64 * KIB; /* grows to the limit first */
    limit_scenario(f);
}

/* At the limit, deleting half the documents must succeed, and then new
 * documents (a quarter as many as were deleted) fit again. */
static void
limit_delete_scenario(fx *f, size_t len)
{
    limit_fill(f, len);
    unsigned filled = f->l.n, deleted = delete_half(f->db, &f->l);
    assert_int_equal(fill_until_error(f->db, &f->l, len, deleted / 4),
                     SPRIG_OK);
    assert_int_equal(f->l.n, filled + deleted / 4);
    assert_ledger(f->db, &f->l);
    fx_reopen(f);
}

static void
test_limit_delete_makes_room(void **state)
{
    limit_delete_scenario(*state, 1000);
}

static void
test_limit_delete_small_docs(void **state)
{
    limit_delete_scenario(*state, 100);
}

/* ======================================================================
 * (b) invisible growth
 * ====================================================================== */

#define GROW_THREADS 8
#define GROW_PER_THREAD 200
#define GROW_READERS 2

typedef struct grow_worker {
    pthread_t tid;
    sprig_db *db;
    unsigned first; /* documents first .. first + GROW_PER_THREAD - 1 */
    int rc;
    atomic_bool *stop;
    uint64_t reads;
} grow_worker;

static void *
grow_writer(void *arg)
{
    grow_worker *w = arg;
    for (unsigned i = 0; i < GROW_PER_THREAD && w->rc == 0; i++) {
        w->rc = insert_doc(w->db, w->first + i, 1000 + (i % 7) * 100);
    }
    return NULL;
}

static void *
grow_reader(void *arg)
{
    grow_worker *w = arg;
    while (!atomic_load(w->stop) && w->rc == 0) {
        sprig_doc_list *l = NULL;
        w->rc = sprig_list(w->db, "docs", NULL, SPRIG_DESC, 20, &l);
        sprig_doc_list_free(l);
        w->reads++;
    }
    return NULL;
}

static void
grow_threads(sprig_db *db, ledger *l)
{
    grow_worker ws[GROW_THREADS + GROW_READERS];
    atomic_bool stop = false;
    unsigned base = l->n;
    for (unsigned t = 0; t < GROW_THREADS + GROW_READERS; t++) {
        ws[t] = (grow_worker){
            .db = db, .first = base + t * GROW_PER_THREAD, .stop = &stop};
        bool writer = t < GROW_THREADS;
        assert_int_equal(pthread_create(&ws[t].tid, NULL,
                                        writer ? grow_writer : grow_reader,
                                        &ws[t]),
                         0);
    }
    for (unsigned t = 0; t < GROW_THREADS + GROW_READERS; t++) {
        if (t == GROW_THREADS) {
            atomic_store(&stop, true);
        }
        pthread_join(ws[t].tid, NULL);
        if (ws[t].rc) {
            fail_msg("thread %u: %s", t, sprig_strerror(ws[t].rc));
        }
    }
    for (unsigned t = 0; t < GROW_THREADS; t++) {
        for (unsigned i = 0; i < GROW_PER_THREAD; i++) {
            ledger_set(l, ws[t].first + i, 1000 + (i % 7) * 100);
        }
    }
}

/* Batched transactions of `per` documents of `len` bytes. */
static void
grow_batches(sprig_db *db, ledger *l, unsigned txns, unsigned per, size_t len)
{
    uint8_t *body = malloc(len);
    assert_non_null(body);
    for (unsigned k = 0; k < txns; k++) {
        sprig_txn *t = NULL;
        SPRIG_OK_(sprig_txn_new(&t));
        unsigned first = l->n;
        for (unsigned j = 0; j < per; j++) {
            char id[32];
            fill_body(body, len, first + j);
            sprig_bytes b = fill_id(id, sizeof id, first + j);
            SPRIG_OK_(
                sprig_txn_insert(t, "docs", &b, (sprig_bytes){body, len}));
        }
        SPRIG_OK_(sprig_txn_apply(db, t, NULL));
        sprig_txn_free(t);
        for (unsigned j = 0; j < per; j++) {
            ledger_set(l, first + j, len);
        }
    }
    free(body);
}

static void
test_growth(void **state)
{
    fx *f = *state;
    f->initial = 64 * KIB;
    fx_open(f, true);
    SPRIG_OK_(insert_doc(f->db, 0, 3 * MIB)); /* 48 times the first map */
    ledger_set(&f->l, 0, 3 * MIB);
    SPRIG_OK_(fill_until_error(f->db, &f->l, 1000, 1500));
    grow_batches(f->db, &f->l, 40, 50, 1000);
    grow_threads(f->db, &f->l);
    assert_ledger(f->db, &f->l);
    fx_reopen(f);
}

/* ======================================================================
 * (c) a real full disk: a 4 MiB tmpfs
 * ====================================================================== */

#define BALLAST (512 * KIB)

static void
write_ballast(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint8_t buf[4096];
    memset(buf, 0xAB, sizeof buf);
    for (unsigned i = 0; i < BALLAST / sizeof buf; i++) {
        assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    }
    close(fd);
}

/* Fill the disk with file `path`, then give back `leave` bytes. */
static void
fill_disk(const char *path, unsigned long leave)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint8_t buf[4096] = {0};
    off_t size = 0;
    for (ssize_t w; (w = write(fd, buf, sizeof buf)) > 0;) {
        size += w;
    }
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(
        ftruncate(fd, size > (off_t)leave ? size - (off_t)leave : 0), 0);
    close(fd);
}

/* A write on a nearly full disk: SPRIG_OK or SPRIG_EFULL, nothing else. */
static bool
ok_or_full(int rc, const char *what)
{
    if (rc != SPRIG_OK && rc != SPRIG_EFULL) {
        fail_msg("%s on a full disk: wanted SPRIG_EFULL, got %d (%s: %s)", what,
                 rc, sprig_strerror(rc), sprig_errmsg());
    }
    return rc == SPRIG_OK;
}

typedef struct disk_state {
    char mnt[512], storage[600], filler[600];
    bool mounted;
    uint64_t seed;
    unsigned long leave; /* the sweep: bytes left free */
    bool exists;         /* the sweep: the storage exists before */
} disk_state;

static bool
disk_mount(disk_state *d)
{
    d->mounted = mount("tmpfs", d->mnt, "tmpfs", 0, "size=4m") == 0;
    return d->mounted;
}

static void
disk_unmount(disk_state *d)
{
    if (d->mounted && umount(d->mnt) != 0) {
        umount2(d->mnt, MNT_DETACH); /* a failed test left files open */
    }
    d->mounted = false;
}

/* Run `fn` in a child process: a crash there (say SIGBUS from a mapped
 * file on a full disk) fails this test instead of ending the run.  Returns
 * whether it passed; the child's cmocka output says why not. */
static bool
isolated_ok(const char *name, CMUnitTestFunction fn, void *state)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const struct CMUnitTest t[] = {{name, fn, NULL, NULL, state}};
        _exit(cmocka_run_group_tests_name("isolated", t, NULL, NULL) ? 1 : 0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
        print_message("%s: the process crashed with signal %d (%s)\n", name,
                      WTERMSIG(status), strsignal(WTERMSIG(status)));
        return false;
    }
    return WEXITSTATUS(status) == 0;
}

static void
isolate(const char *name, CMUnitTestFunction fn, void *state)
{
    if (!isolated_ok(name, fn, state)) {
        fail_msg("%s failed (see above)", name);
    }
}

/* Mount a 4 MiB tmpfs; the teardown unmounts it even if the test fails. */
static int
disk_setup(void **state)
{
    disk_state *d = calloc(1, sizeof *d);
    assert_non_null(d);
    rt_scratch(d->mnt, sizeof d->mnt, "full-disk");
    snprintf(d->storage, sizeof d->storage, "%s/storage", d->mnt);
    snprintf(d->filler, sizeof d->filler, "%s/filler", d->mnt);
    if (!disk_mount(d)) {
        print_message("skipped: cannot mount tmpfs (%s)\n", strerror(errno));
    }
    d->seed = tu_seed();
    *state = d;
    return 0;
}

static int
disk_teardown(void **state)
{
    disk_state *d = *state;
    disk_unmount(d);
    tu_rmtree(d->mnt);
    free(d);
    return 0;
}

/* Fill with 2000-byte documents; delete to make room; free the disk. */
static void
disk_main(void **state)
{
    disk_state *d = *state;
    fx f = {.durability = SPRIG_DURABILITY_FULL};
    snprintf(f.dir, sizeof f.dir, "%s", d->storage);
    write_ballast(d->filler);
    fx_open(&f, true);
    assert_full(fill_until_error(f.db, &f.l, 2000, 100000));
    unsigned filled = f.l.n;
    printf("disk full: %u documents of 2000 bytes fit\n", filled);
    assert_true(filled > 100);
    assert_ledger(f.db, &f.l);
    assert_full(insert_doc(f.db, f.l.n, 2000));
    assert_txn_fails(f.db, &f.l, 2000, SPRIG_EFULL);
    fx_reopen(&f); /* a full disk still opens and reads */
    unsigned deleted = delete_half(f.db, &f.l); /* deleting makes room */
    assert_int_equal(fill_until_error(f.db, &f.l, 2000, deleted / 4), SPRIG_OK);
    assert_full(fill_until_error(f.db, &f.l, 2000, 100000));
    assert_int_equal(unlink(d->filler), 0); /* the disk has room again */
    assert_int_equal(fill_until_error(f.db, &f.l, 2000, 100), SPRIG_OK);
    assert_ledger(f.db, &f.l);
    fx_close(&f);
    fx_open(&f, false);
    assert_ledger(f.db, &f.l);
    fx_close(&f);
    free(f.l.len);
}

static void
test_disk_full(void **state)
{
    disk_state *d = *state;
    if (!d->mounted) {
        skip();
    }
    isolate("disk full", disk_main, d);
}

/* Insert documents of 1 byte to 4 kB or to 300 kB (runs of overflow pages)
 * until three have failed; each failure must be SPRIG_EFULL.  Returns how
 * many were acknowledged. */
static unsigned
disk_sizes_round(fx *f, uint64_t *rng)
{
    unsigned ok = 0;
    for (unsigned failed = 0; failed < 3;) {
        unsigned i = f->l.n;
        size_t max = rt_below(rng, 2) ? 4000 : 300000; /* pages, runs */
        size_t len = 1 + (size_t)rt_below(rng, max);
        bool fit = ok_or_full(insert_doc(f->db, i, len), "an insert");
        ledger_set(&f->l, i, fit ? len : 0);
        ok += fit;
        failed += !fit;
    }
    return ok;
}

/* Documents of any size written into the last free bytes of the disk,
 * over rounds that each leave a random 0..256 KiB free: every failure is
 * SPRIG_EFULL, and exactly the acknowledged documents are there, before
 * and after reopening. */
static void
disk_sizes(void **state)
{
    disk_state *d = *state;
    fx f = {.durability = SPRIG_DURABILITY_FULL};
    uint64_t rng = d->seed;
    unsigned ok = 0;
    snprintf(f.dir, sizeof f.dir, "%s", d->storage);
    fx_open(&f, true);
    for (int round = 0; round < 8; round++) {
        fill_disk(d->filler, (unsigned long)rt_below(&rng, 256 * KIB));
        ok += disk_sizes_round(&f, &rng);
        assert_int_equal(unlink(d->filler), 0);
    }
    printf("disk full: %u of %u inserts of 1..300000 bytes fit\n", ok, f.l.n);
    assert_ledger(f.db, &f.l);
    fx_close(&f);
    fx_open(&f, false);
    assert_ledger(f.db, &f.l);
    fx_close(&f);
    free(f.l.len);
}

/* Documents indexed by an eager and a lazy declarative view, and
 * key-value pairs, fill the disk in one sitting (no reopen, as a server
 * would meet it); then deleting documents one by one must work -- a user
 * frees space by deleting (found from outside: with an index, 1 of 40
 * deletes worked) -- and so must deleting key-value pairs; afterwards
 * small writes fit again and everything reopens. */
static const sprig_view_def idx_views[] = {
    {.name = "by_k", .version = 1, .policy = SPRIG_VIEW_EAGER, .json_key = "k"},
    {.name = "lazy_k",
     .version = 1,
     .json_key = "k",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def idx_colls[] = {
    {"docs", SPRIG_ID_U64, 0, idx_views, 2},
};
static const sprig_schema_def idx_schema = {"idx", idx_colls, 1};

static unsigned
idx_fill(sprig_db *db)
{
    char body[400];
    unsigned n = 0;
    for (int rc = 0; rc == 0;) {
        snprintf(body, sizeof body, "{\"k\":\"k%06u%0300u\"}", n, n);
        rc = sprig_insert(db, "docs", NULL, sprig_str(body), NULL);
        bool stored = rc == 0; /* counted even if the set below fails */
        if (rc == 0 && n % 4 == 0) {
            char key[32];
            sprig_value v = {.kind = SPRIG_VALUE_BYTES,
                             .bytes = sprig_str(body)};
            snprintf(key, sizeof key, "kv%u", n);
            rc = sprig_kv_set(db, "ns", key, &v, NULL, NULL, NULL);
        }
        assert_true(rc == 0 || rc == SPRIG_EFULL);
        n += stored;
    }
    return n;
}

static void
idx_delete(sprig_db *db, unsigned from, unsigned n)
{
    for (unsigned i = from; i < from + n; i++) {
        uint8_t id[8];
        sprig_doc *d = NULL;
        sprig_key_u64(i + 1, id);
        SPRIG_OK_(sprig_get(db, "docs", (sprig_bytes){id, 8}, &d));
        sprig_header h = sprig_doc_header(d);
        int rc = sprig_delete(db, "docs", &h);
        sprig_doc_free(d);
        if (rc) {
            fail_msg("delete %u of %u on a full disk failed: %s (%s)",
                     i - from + 1, n, sprig_strerror(rc), sprig_errmsg());
        }
    }
}

static void
disk_views(void **state)
{
    disk_state *d = *state;
    sprig_storage *st;
    sprig_db *db;
    SPRIG_OK_(rt_storage_open(d->storage, SPRIG_DURABILITY_FULL, 0, 0, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &idx_schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "idx", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    unsigned n = idx_fill(db);
    printf("disk full: %u indexed documents fit\n", n);
    assert_true(n > 200);
    idx_delete(db, 0, 40);
    for (unsigned i = 0; i < 40; i += 4) {
        char key[32];
        snprintf(key, sizeof key, "kv%u", i);
        SPRIG_OK_(sprig_kv_delete(db, "ns", key, NULL));
    }
    idx_delete(db, 40, n / 2 - 40); /* half of it: room for more */
    SPRIG_OK_(
        sprig_insert(db, "docs", NULL, sprig_str("{\"k\":\"again\"}"), NULL));
    uint64_t count;
    SPRIG_OK_(sprig_count(db, "docs", NULL, &count));
    assert_int_equal(count, n - n / 2 + 1);
    sprig_db_close(db);
    sprig_storage_close(st);
    SPRIG_OK_(rt_storage_open(d->storage, SPRIG_DURABILITY_FULL, 0, 0, &st));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    SPRIG_OK_(sprig_count(db, "docs", NULL, &count));
    assert_int_equal(count, n - n / 2 + 1);
    sprig_db_close(db);
    sprig_storage_close(st);
}

static void
test_disk_full_indexed_deletes(void **state)
{
    disk_state *d = *state;
    if (!d->mounted) {
        skip();
    }
    isolate("disk full, indexed deletes", disk_views, d);
}

/* `sprig --schema FILE serve` on a full disk, the schema registered
 * unchanged before: registering it again and creating its database "if
 * needed" write nothing, so they succeed (found from outside: the server
 * refused to start); a changed schema still needs room. */
static void
disk_reregister(void **state)
{
    disk_state *d = *state;
    sprig_storage *st;
    sprig_db *db;
    SPRIG_OK_(rt_storage_open(d->storage, SPRIG_DURABILITY_FULL, 0, 0, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &idx_schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "idx", false));
    sprig_storage_close(st);
    fill_disk(d->filler, 0);
    SPRIG_OK_(rt_storage_open(d->storage, SPRIG_DURABILITY_FULL, 0, 0, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &idx_schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "idx", true));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "docs", NULL, &n));
    assert_int_equal(n, 0);
    sprig_db_close(db);
    static const sprig_collection_def more[] = {
        {"docs", SPRIG_ID_U64, 0, idx_views, 2},
        {"more", SPRIG_ID_U64, 0, NULL, 0},
    };
    static const sprig_schema_def changed = {"idx", more, 2};
    fill_disk(d->filler, 0);
    assert_full(sprig_storage_register_schema(st, &changed));
    sprig_storage_close(st);
}

static void
test_disk_full_reregister(void **state)
{
    disk_state *d = *state;
    if (!d->mounted) {
        skip();
    }
    isolate("disk full, schema registered again", disk_reregister, d);
}

static void
test_disk_full_any_size(void **state)
{
    disk_state *d = *state;
    if (!d->mounted) {
        skip();
    }
    isolate("disk full, any size", disk_sizes, d);
}

/* Open (or, if `exists`, create a database in) a storage on a disk with
 * only `leave` bytes free: SPRIG_OK or SPRIG_EFULL, never a crash; once the
 * disk has room everything works and persists. */
static void
disk_sweep_one(void **state)
{
    disk_state *d = *state;
    sprig_storage *st = NULL;
    sprig_db *db = NULL;
    sprig_bytes id = sprig_str("x");
    if (d->exists) {
        SPRIG_OK_(rt_storage_open(d->storage, 0, 0, 0, &st));
        SPRIG_OK_(sprig_storage_register_schema(st, &full_schema));
    }
    fill_disk(d->filler, d->leave);
    bool ok = st || ok_or_full(rt_storage_open(d->storage, 0, 0, 0, &st),
                               "opening a storage");
    ok = ok && ok_or_full(sprig_storage_register_schema(st, &full_schema),
                          "registering a schema");
    ok = ok && ok_or_full(sprig_storage_create_database(st, "db", "full", true),
                          "creating a database");
    ok = ok && ok_or_full(sprig_storage_open_database(st, "db", &db),
                          "opening a database");
    ok = ok && ok_or_full(sprig_insert(db, "docs", &id, sprig_str("y"), NULL),
                          "an insert");
    sprig_db_close(db);
    sprig_storage_close(st);
    assert_int_equal(unlink(d->filler), 0); /* room again: all works */
    SPRIG_OK_(rt_storage_open(d->storage, 0, 0, 0, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &full_schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "full", true));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    SPRIG_OK_(sprig_overwrite(db, "docs", id, sprig_str("y"), NULL));
    rt_assert_doc(db, "docs", id, "y", 1);
    sprig_db_close(db);
    sprig_storage_close(st);
}

static void
test_disk_full_open(void **state)
{
    disk_state *d = *state;
    if (!d->mounted) {
        skip();
    }
    unsigned runs = 0, failed = 0;
    disk_unmount(d);
    for (int exists = 0; exists < 2; exists++) {
        for (unsigned long leave = 0; leave <= 96 * KIB; leave += 8 * KIB) {
            char name[96];
            snprintf(name, sizeof name, "%s with %lu KiB free",
                     exists ? "creating a database" : "opening a storage",
                     leave / KIB);
            assert_true(disk_mount(d));
            d->leave = leave;
            d->exists = exists;
            failed += !isolated_ok(name, disk_sweep_one, d);
            runs++;
            disk_unmount(d);
        }
    }
    if (failed) {
        fail_msg("%u of %u full-disk opens failed (see above)", failed, runs);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_limit, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_limit_after_growth, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_limit_delete_makes_room, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_limit_delete_small_docs, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_growth, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, disk_setup,
                                        disk_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_indexed_deletes,
                                        disk_setup, disk_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_reregister, disk_setup,
                                        disk_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_any_size, disk_setup,
                                        disk_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_open, disk_setup,
                                        disk_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
