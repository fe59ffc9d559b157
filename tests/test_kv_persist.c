/*
 * test_kv_persist.c -- key-value persistence modes (F6, issue item 3):
 * exactly when a change reaches the disk, and what a crash loses.
 *
 * When: this program interposes fdatasync()/fsync() (liblmdb calls them
 * through the dynamic linker, so the definitions below win) and counts the
 * calls on the command log's segments -- the durable point of every write
 * (docs/architecture.md, "Durability"); LMDB's own data file is synced
 * only by checkpoints, in the background, and those are not counted.
 * Immediate mode must sync before a set returns, exactly once per set;
 * lazy mode must not sync per change, but after `lazy_changes` changes,
 * after `lazy_ms` ms, and at close; durability NONE never syncs its log
 * on the way of a write (only checkpoints, the background's, and close
 * sync there); documents stay durable in a lazy storage.
 * A sanity check first proves the interposer sees the log's syncs, so the
 * zero counts cannot pass vacuously.
 *
 * What a crash loses: for each mode, a child process writes keys and
 * increments a counter from four threads, acknowledging each pair on a
 * pipe, and is SIGKILLed at a random moment once it has acknowledged
 * something (seed printed; SPRIG_SEED=N replays).  The parent reopens the
 * storage and proves every acknowledged change is there (a process crash loses
 * nothing in either mode), at most the one unacknowledged step per thread went
 * further, and the expiry index matches the records.  Rounds continue on the
 * same storage (SPRIG_KV_CRASH_ROUNDS per mode, default 8).  An OS crash cannot
 * be simulated here; sprig.h documents what it may lose.
 */
#include "reltest.h"

#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"persist", cols, 1};
static uint64_t seed;

/* ---- counting syncs ----------------------------------------------------- */

static atomic_long n_syncs; /* on command log segments */
static atomic_long n_all;   /* on anything */

int fdatasync(int fd);
int fsync(int fd);

static void
count(int fd)
{
    char link[64], path[1200];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    atomic_fetch_add(&n_all, 1);
    if (strstr(path, "/wal/") && strstr(path, ".seg")) {
        atomic_fetch_add(&n_syncs, 1);
    }
}

int
fdatasync(int fd)
{
    static int (*real)(int);
    if (!real) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    count(fd);
    return real(fd);
}

int
fsync(int fd)
{
    static int (*real)(int);
    if (!real) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    count(fd);
    return real(fd);
}

typedef struct fx {
    char dir[1200];
    sprig_storage *st;
    sprig_db *db;
} fx;

static void
fx_open(fx *f, sprig_durability d, sprig_kv_persistence p)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = f->dir;
    o.durability = d;
    o.kv_persistence = p;
    SPRIG_OK_(sprig_storage_open(&o, &f->st));
    SPRIG_OK_(sprig_storage_register_schema(f->st, &schema));
    SPRIG_OK_(sprig_storage_create_database(f->st, "db", "persist", true));
    SPRIG_OK_(sprig_storage_open_database(f->st, "db", &f->db));
}

static void
fx_close(fx *f)
{
    sprig_db_close(f->db);
    sprig_storage_close(f->st);
}

static void
set_n(sprig_db *db, int from, int n)
{
    char key[32];
    for (int i = from; i < from + n; i++) {
        snprintf(key, sizeof key, "k%d", i);
        sprig_value v = sprig_value_of_i64(i);
        SPRIG_OK_(sprig_kv_set(db, NULL, key, &v, NULL, NULL, NULL));
    }
}

static sprig__kv_stats
stats(sprig_db *db)
{
    sprig__kv_stats s;
    sprig__kv_stats_get(db, &s);
    return s;
}

/* Poll (up to 10 s) until the database has made `n` lazy flushes. */
static bool
wait_flushes(sprig_db *db, uint64_t n)
{
    for (int i = 0; i < 1000 && stats(db).flushes < n; i++) {
        usleep(10000);
    }
    return stats(db).flushes >= n;
}

static const sprig_kv_persistence immediate = {SPRIG_KV_IMMEDIATE, 0, 0};

static void
test_immediate_syncs_each_change(void **state)
{
    fx f;
    rt_scratch(f.dir, sizeof f.dir, "kvp-imm");
    fx_open(&f, SPRIG_DURABILITY_FULL, immediate);
    for (int i = 0; i < 5; i++) {
        long before = atomic_load(&n_syncs);
        set_n(f.db, i, 1);
        /* durable on return, with one sync */
        assert_int_equal(atomic_load(&n_syncs), before + 1);
    }
    long before = atomic_load(&n_syncs);
    SPRIG_OK_(sprig_kv_get(f.db, NULL, "k0", false, NULL));
    assert_int_equal(atomic_load(&n_syncs), before);
    assert_int_equal(stats(f.db).unsynced, 0);
    fx_close(&f);
    tu_rmtree(f.dir);
}

/* No thresholds: nothing synced until close, then all of it. */
static void
test_lazy_flushes_at_close(void **state)
{
    fx f;
    rt_scratch(f.dir, sizeof f.dir, "kvp-close");
    sprig_kv_persistence lazy = {SPRIG_KV_LAZY, 0, 0};
    fx_open(&f, SPRIG_DURABILITY_FULL, lazy);
    long before = atomic_load(&n_syncs);
    set_n(f.db, 0, 200);
    sprig_value one = sprig_value_of_u64(1);
    SPRIG_OK_(sprig_kv_increment(f.db, NULL, "n", &one, false, NULL));
    SPRIG_OK_(sprig_kv_delete(f.db, NULL, "k0", NULL));
    assert_int_equal(atomic_load(&n_syncs), before);
    assert_int_equal(stats(f.db).unsynced, 202);
    assert_int_equal(stats(f.db).flushes, 0);
    /* documents in the same database stay durable */
    SPRIG_OK_(sprig_insert(f.db, "docs", NULL, sprig_str("{}"), NULL));
    long after_doc = atomic_load(&n_syncs);
    assert_true(after_doc > before);
    /* that sync covered the lazy changes logged before it; one more lazy
     * change waits for the close */
    set_n(f.db, 200, 1);
    assert_int_equal(atomic_load(&n_syncs), after_doc);
    fx_close(&f);
    assert_true(atomic_load(&n_syncs) > after_doc); /* flushed on close */
    fx_open(&f, SPRIG_DURABILITY_FULL, lazy);
    sprig_value v;
    SPRIG_OK_(sprig_kv_get(f.db, NULL, "k199", false, &v));
    assert_int_equal(v.num.i64, 199);
    SPRIG_OK_(sprig_kv_get(f.db, NULL, "k200", false, &v));
    assert_int_equal(v.num.i64, 200);
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(f.db, NULL, "k0", false, &v));
    fx_close(&f);
    tu_rmtree(f.dir);
}

/* lazy_changes = 10: a flush once 10 changes wait, not before. */
static void
test_lazy_change_threshold(void **state)
{
    fx f;
    rt_scratch(f.dir, sizeof f.dir, "kvp-changes");
    sprig_kv_persistence lazy = {SPRIG_KV_LAZY, 10, 0};
    fx_open(&f, SPRIG_DURABILITY_FULL, lazy);
    long before = atomic_load(&n_syncs);
    set_n(f.db, 0, 9);
    usleep(50000);
    assert_int_equal(stats(f.db).flushes, 0);
    assert_int_equal(atomic_load(&n_syncs), before);
    set_n(f.db, 9, 1); /* the 10th */
    assert_true(wait_flushes(f.db, 1));
    assert_int_equal(stats(f.db).unsynced, 0);
    assert_true(atomic_load(&n_syncs) > before);
    set_n(f.db, 10, 9);
    usleep(50000);
    assert_int_equal(stats(f.db).flushes, 1);
    assert_int_equal(stats(f.db).unsynced, 9);
    set_n(f.db, 19, 1);
    assert_true(wait_flushes(f.db, 2));
    fx_close(&f);
    tu_rmtree(f.dir);
}

/* lazy_ms = 300: one flush about 300 ms after the first waiting change. */
static void
test_lazy_time_threshold(void **state)
{
    fx f;
    rt_scratch(f.dir, sizeof f.dir, "kvp-time");
    sprig_kv_persistence lazy = {SPRIG_KV_LAZY, 0, 300};
    fx_open(&f, SPRIG_DURABILITY_FULL, lazy);
    uint64_t t0 = rt_now_us();
    set_n(f.db, 0, 3);
    sprig__kv_stats s = stats(f.db);
    if (rt_now_us() - t0 < 250000) { /* unless this machine stalled */
        assert_int_equal(s.flushes, 0);
        assert_int_equal(s.unsynced, 3);
    }
    assert_true(wait_flushes(f.db, 1));
    assert_true(rt_now_us() - t0 >= 290000);
    assert_int_equal(stats(f.db).unsynced, 0);
    set_n(f.db, 3, 1); /* a new change arms a new deadline */
    assert_true(wait_flushes(f.db, 2));
    fx_close(&f);
    tu_rmtree(f.dir);
}

/* Durability NONE never syncs its log on the way of its writes, in either
 * mode (lazy is then immediate): only its checkpoints (data.mdb and
 * wal/meta, in the background) and its close sync. */
static void
test_durability_none(void **state)
{
    fx f;
    rt_scratch(f.dir, sizeof f.dir, "kvp-none");
    sprig_kv_persistence lazy = {SPRIG_KV_LAZY, 1, 1};
    fx_open(&f, SPRIG_DURABILITY_NONE, lazy);
    long before = atomic_load(&n_syncs);
    set_n(f.db, 0, 20);
    sprig_value v = sprig_value_of_i64(0);
    sprig_kv_set_opts so = {.expire_in_ms = 1};
    SPRIG_OK_(sprig_kv_set(f.db, NULL, "brief", &v, &so, NULL, NULL));
    usleep(20000);
    uint64_t removed;
    SPRIG_OK_(sprig__kv_sweep_now(f.db, &removed)); /* a lazy request */
    assert_int_equal(stats(f.db).unsynced, 0);
    assert_int_equal(atomic_load(&n_syncs), before);
    fx_close(&f);
    tu_rmtree(f.dir);
}

/* ---- SIGKILL ------------------------------------------------------------ */

#define LANES 4

typedef struct lane {
    sprig_db *db;
    int lane, fd;
} lane;

static void
child_fail(const char *what)
{
    fprintf(stderr, "kv crash child: %s: %s\n", what, sprig_errmsg());
    _exit(3);
}

/* Step i of a lane: set lane<l>/k<i> = i (every other one expiring far
 * ahead, to exercise the index), then increment ctr/lane<l>; ack "l i". */
static void *
lane_main(void *p)
{
    lane *l = p;
    char ns[16], key[32], line[64];
    snprintf(ns, sizeof ns, "lane%d", l->lane);
    sprig_value c;
    int rc = sprig_kv_get(l->db, "ctr", ns, false, &c);
    int64_t i = rc == SPRIG_ENOTFOUND ? 0 : c.num.i64;
    if (rc && rc != SPRIG_ENOTFOUND) {
        child_fail("reading a counter");
    }
    sprig_value one = sprig_value_of_i64(1);
    for (;; i++) {
        snprintf(key, sizeof key, "k%lld", (long long)i);
        sprig_value v = sprig_value_of_i64(i);
        sprig_kv_set_opts so = {.expire_at_ms = i % 2 ? UINT64_MAX / 2 : 0};
        if (sprig_kv_set(l->db, ns, key, &v, &so, NULL, NULL) ||
            sprig_kv_increment(l->db, "ctr", ns, &one, false, NULL)) {
            child_fail("writing");
        }
        int n = snprintf(line, sizeof line, "%d %lld\n", l->lane, (long long)i);
        if (write(l->fd, line, (size_t)n) != n) {
            _exit(4);
        }
    }
    return NULL;
}

static void
child_run(const char *dir, sprig_kv_persistence p, int fd)
{
    fx f;
    snprintf(f.dir, sizeof f.dir, "%s", dir);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = f.dir;
    o.kv_persistence = p;
    if (sprig_storage_open(&o, &f.st) ||
        sprig_storage_register_schema(f.st, &schema) ||
        sprig_storage_create_database(f.st, "db", "persist", true) ||
        sprig_storage_open_database(f.st, "db", &f.db)) {
        child_fail("opening");
    }
    pthread_t t[LANES];
    lane l[LANES];
    for (int i = 0; i < LANES; i++) {
        l[i] = (lane){f.db, i, fd};
        pthread_create(&t[i], NULL, lane_main, &l[i]);
    }
    pthread_join(t[0], NULL); /* never returns: the parent kills us */
    _exit(5);
}

/* Read acks until the pipe is empty (and, if `until_us`, until then). */
static void
read_acks(int fd, int64_t acked[LANES], uint64_t until_us)
{
    char buf[4096];
    static char part[64];
    static size_t plen;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        uint64_t now = rt_now_us();
        int wait = until_us > now ? (int)((until_us - now) / 1000) + 1 : 0;
        if (poll(&pfd, 1, wait) <= 0) {
            if (rt_now_us() >= until_us) {
                return;
            }
            continue;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                part[plen++ % sizeof part] = buf[i];
                continue;
            }
            part[plen % sizeof part] = 0;
            int l;
            long long s;
            assert_int_equal(sscanf(part, "%d %lld", &l, &s), 2);
            assert_true(l >= 0 && l < LANES && s == acked[l]);
            acked[l] = s + 1;
            plen = 0;
        }
    }
}

/* Every acknowledged step is stored; at most one step per lane more.  The
 * stored counters become the baseline of the next round. */
static void
verify_lanes(sprig_db *db, int64_t acked[LANES])
{
    char ns[16], key[32];
    for (int l = 0; l < LANES; l++) {
        snprintf(ns, sizeof ns, "lane%d", l);
        sprig_value c = {0};
        int rc = sprig_kv_get(db, "ctr", ns, false, &c);
        int64_t ctr = rc == SPRIG_ENOTFOUND ? 0 : c.num.i64;
        assert_true(rc == 0 || (rc == SPRIG_ENOTFOUND && acked[l] == 0));
        assert_true(ctr == acked[l] || ctr == acked[l] + 1);
        sprig_kv_key_list *kl;
        SPRIG_OK_(sprig_kv_list_keys(db, ns, NULL, NULL, 0, &kl));
        size_t n = sprig_kv_key_list_count(kl);
        assert_true((int64_t)n == ctr || (int64_t)n == ctr + 1);
        sprig_kv_key_list_free(kl);
        for (int64_t i = 0; i < ctr; i++) {
            snprintf(key, sizeof key, "k%lld", (long long)i);
            sprig_value v;
            SPRIG_OK_(sprig_kv_get(db, ns, key, false, &v));
            assert_int_equal(v.num.i64, i);
        }
        acked[l] = ctr;
    }
    uint64_t records, indexed;
    SPRIG_OK_(sprig__kv_verify(db, &records, &indexed));
}

static void
crash_rounds(const char *name, sprig_kv_persistence p)
{
    char dir[1200];
    rt_scratch(dir, sizeof dir, name);
    uint64_t rs = seed ^ (uint64_t)p.mode;
    int64_t acked[LANES] = {0};
    unsigned long rounds = rt_env_ulong("SPRIG_KV_CRASH_ROUNDS", 8);
    for (unsigned long r = 0; r < rounds; r++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_run(dir, p, fds[1]);
        }
        close(fds[1]);
        /* the open costs a few syncs: wait for a first ack (up to 10 s) */
        int64_t sum0 = acked[0] + acked[1] + acked[2] + acked[3];
        uint64_t give_up = rt_now_us() + 10000000;
        while (acked[0] + acked[1] + acked[2] + acked[3] == sum0 &&
               rt_now_us() < give_up) {
            read_acks(fds[0], acked, rt_now_us() + 5000);
        }
        read_acks(fds[0], acked, rt_now_us() + 20000 + rt_below(&rs, 80000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status)); /* not a child failure */
        read_acks(fds[0], acked, 0);      /* acks written before the kill */
        close(fds[0]);
        fx f;
        snprintf(f.dir, sizeof f.dir, "%s", dir);
        fx_open(&f, SPRIG_DURABILITY_FULL, p);
        verify_lanes(f.db, acked);
        fx_close(&f);
    }
    print_message("%s: %lu rounds, acked %lld %lld %lld %lld\n", name, rounds,
                  (long long)acked[0], (long long)acked[1], (long long)acked[2],
                  (long long)acked[3]);
    assert_true(acked[0] + acked[1] + acked[2] + acked[3] > 0);
    tu_rmtree(dir);
}

static void
test_sigkill_immediate(void **state)
{
    crash_rounds("kvp-kill-imm", immediate);
}

static void
test_sigkill_lazy(void **state)
{
    /* never flushed before the kill: everything rides on the page cache */
    sprig_kv_persistence lazy = {SPRIG_KV_LAZY, 0, 0};
    crash_rounds("kvp-kill-lazy", lazy);
}

/* The interposer sees LMDB's syncs (else the zero counts prove nothing). */
static int
sanity(void **state)
{
    fx f;
    rt_scratch(f.dir, sizeof f.dir, "kvp-sanity");
    fx_open(&f, SPRIG_DURABILITY_FULL, immediate);
    long before = atomic_load(&n_syncs);
    SPRIG_OK_(sprig_insert(f.db, "docs", NULL, sprig_str("{}"), NULL));
    fx_close(&f);
    tu_rmtree(f.dir);
    if (atomic_load(&n_syncs) == before) {
        fprintf(stderr, "fdatasync/fsync are not interposed\n");
        return -1;
    }
    return 0;
}

int
main(void)
{
    seed = tu_seed();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_immediate_syncs_each_change),
        cmocka_unit_test(test_lazy_flushes_at_close),
        cmocka_unit_test(test_lazy_change_threshold),
        cmocka_unit_test(test_lazy_time_threshold),
        cmocka_unit_test(test_durability_none),
        cmocka_unit_test(test_sigkill_immediate),
        cmocka_unit_test(test_sigkill_lazy),
    };
    return cmocka_run_group_tests(tests, sanity, NULL);
}
