/*
 * test_wal.c -- the command log (src/local/wal.c) and the durability scheme
 * built on it (src/local/ckpt.c), on their own: records are opaque bytes
 * and a test apply function writes them into a real LMDB environment.
 *
 * Log: records round-trip across reopen and segment rotation; a torn or
 * corrupt tail is cut at open and never read again, even when new records
 * of the same size land exactly where stale ones begin; a reverted append
 * leaves nothing; dropped segments are recycled.
 *
 * Scheme: one fdatasync per durable commit (counted by interposing it); in
 * `none` none on the commit path, every commit in a checkpoint within the
 * interval; modes switched across opens; and
 * crash recovery for real.  A child process commits numbered records --
 * each puts key i and rewrites one of 16 hot keys, so LMDB frees and reuses
 * pages all the time, with a checkpoint every few commits -- and reports
 * each acknowledged one on a pipe.  This program interposes pwrite, write,
 * writev, fdatasync, fsync and unlink, and in the child journals every
 * write to the database files with its data, every sync and every unlink.
 * The parent SIGKILLs the child at a random moment and rebuilds the files
 * as a disk could hold them: the files as they were before the child, then
 * every write a later sync of the same file covered, then, per 4 KiB block,
 * the unsynced writes up to a random point in time (a writeback of that
 * block then) -- or all of them in kill -9 rounds.  It reopens the rebuilt
 * copy (restore + replay) and checks that every acknowledged record is
 * there and the data is consistent: keys 0..count-1 exactly, each hot key
 * holding its last write, LMDB walking cleanly.  Seed printed; SPRIG_SEED
 * replays; SPRIG_WAL_ROUNDS sets the rounds (default 12);
 * SPRIG_TEST_SLOWDOWN multiplies the time the child runs before its kill.
 */
#include "reltest.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t seed;

/* ---- the interposer ------------------------------------------------------ */

static int shim_jfd = -1;     /* journal (child only) */
static char shim_dir[1300];   /* files below it are journaled */
static atomic_long log_syncs; /* fdatasync calls on wal/ segments */
static atomic_long all_syncs;

enum { J_WRITE = 'W', J_SYNC = 'S', J_UNLINK = 'U' };

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*sync_fn)(int);
typedef int (*unlink_fn)(const char *);

#define REAL(name, type)                                                       \
    static type real_##name;                                                   \
    if (!real_##name) {                                                        \
        real_##name = (type)dlsym(RTLD_NEXT, #name);                           \
    }

static bool
fd_path(int fd, char *out, size_t n)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, out, n - 1);
    if (k <= 0) {
        return false;
    }
    out[k] = 0;
    return true;
}

static bool
tracked(const char *path)
{
    size_t n = strlen(shim_dir);
    return shim_jfd >= 0 && strncmp(path, shim_dir, n) == 0 && path[n] == '/' &&
           !strstr(path, "lock.mdb");
}

static void
journal(char op, const char *path, uint64_t off, const void *p, size_t n)
{
    uint32_t pl = (uint32_t)strlen(path), len = (uint32_t)n;
    uint8_t h[17];
    h[0] = (uint8_t)op;
    memcpy(h + 1, &pl, 4);
    memcpy(h + 5, &off, 8);
    memcpy(h + 13, &len, 4);
    struct iovec iov[3] = {{h, sizeof h}, {(void *)path, pl}, {(void *)p, n}};
    syscall(SYS_writev, shim_jfd, iov, 3);
}

static void
journal_fd(char op, int fd, uint64_t off, const void *p, size_t n)
{
    char path[1100];
    if (shim_jfd >= 0 && fd_path(fd, path, sizeof path) && tracked(path)) {
        journal(op, path, off, p, n);
    }
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off);
ssize_t write(int fd, const void *p, size_t n);
ssize_t writev(int fd, const struct iovec *iov, int cnt);
int fdatasync(int fd);
int fsync(int fd);
int unlink(const char *path);

ssize_t
pwrite(int fd, const void *p, size_t n, off_t off)
{
    REAL(pwrite, pwrite_fn);
    ssize_t k = real_pwrite(fd, p, n, off);
    if (k > 0) {
        journal_fd(J_WRITE, fd, (uint64_t)off, p, (size_t)k);
    }
    return k;
}

ssize_t
write(int fd, const void *p, size_t n)
{
    REAL(write, write_fn);
    off_t off = shim_jfd >= 0 ? lseek(fd, 0, SEEK_CUR) : -1;
    ssize_t k = real_write(fd, p, n);
    if (k > 0 && off >= 0) {
        journal_fd(J_WRITE, fd, (uint64_t)off, p, (size_t)k);
    }
    return k;
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev, writev_fn);
    off_t off = shim_jfd >= 0 ? lseek(fd, 0, SEEK_CUR) : -1;
    ssize_t k = real_writev(fd, iov, cnt), left = k;
    for (int i = 0; left > 0 && off >= 0 && i < cnt; i++) {
        size_t n =
            iov[i].iov_len < (size_t)left ? iov[i].iov_len : (size_t)left;
        journal_fd(J_WRITE, fd, (uint64_t)off, iov[i].iov_base, n);
        off += (off_t)n;
        left -= (ssize_t)n;
    }
    return k;
}

static void
count_sync(int fd)
{
    char path[1100];
    atomic_fetch_add(&all_syncs, 1);
    if (fd_path(fd, path, sizeof path) && strstr(path, "/wal/") &&
        strstr(path, ".seg")) {
        atomic_fetch_add(&log_syncs, 1);
    }
    journal_fd(J_SYNC, fd, 0, NULL, 0);
}

int
fdatasync(int fd)
{
    REAL(fdatasync, sync_fn);
    count_sync(fd);
    return real_fdatasync(fd);
}

int
fsync(int fd)
{
    REAL(fsync, sync_fn);
    count_sync(fd);
    return real_fsync(fd);
}

int
unlink(const char *path)
{
    REAL(unlink, unlink_fn);
    char abs[1100];
    if (shim_jfd >= 0 && realpath(path, abs) && tracked(abs)) {
        journal(J_UNLINK, abs, 0, NULL, 0);
    }
    return real_unlink(path);
}

/* ---- log tests ------------------------------------------------------------
 */

/* Record i: 8-byte number, then a deterministic fill of 1..300 bytes. */
static size_t
make_rec(uint64_t i, uint8_t *out, size_t fixed)
{
    size_t n = fixed ? fixed : 9 + (i * 7919) % 300;
    memcpy(out, &i, 8);
    for (size_t k = 8; k < n; k++) {
        out[k] = (uint8_t)(i + k);
    }
    return n;
}

typedef struct seen {
    uint64_t n, first, last;
    bool bad;
    size_t fixed;
} seen;

static int
check_rec(void *arg, uint64_t lsn, const uint8_t *p, size_t n)
{
    seen *s = arg;
    uint8_t want[400];
    size_t wn = make_rec(lsn, want, s->fixed);
    s->bad = s->bad || wn != n || memcmp(want, p, n) != 0 ||
             (s->n && lsn != s->last + 1);
    s->first = s->n ? s->first : lsn;
    s->last = lsn;
    s->n++;
    return 0;
}

static void
append_n(sprig__wal *w, uint64_t from, uint64_t to, size_t fixed, size_t per)
{
    uint8_t buf[16][400];
    for (uint64_t i = from; i < to;) {
        sprig_bytes recs[16];
        size_t n = 0;
        for (; n < per && i < to; n++, i++) {
            recs[n] = (sprig_bytes){buf[n], make_rec(i, buf[n], fixed)};
        }
        uint64_t last;
        SPRIG_OK_(sprig__wal_append(w, recs, n, &last));
        assert_int_equal(last, i - 1);
    }
}

static seen
replay_all(const char *dir, uint64_t applied, size_t fixed)
{
    sprig__wal *w;
    seen s = {0, 0, 0, false, fixed};
    SPRIG_OK_(sprig__wal_open(dir, applied, 64 * 1024, &w));
    SPRIG_OK_(sprig__wal_replay(w, applied, check_rec, &s));
    sprig__wal_close(w);
    assert_false(s.bad);
    return s;
}

static void
log_roundtrip_and_rotation(void **state)
{
    (void)state;
    char dir[1100];
    rt_scratch(dir, sizeof dir, "wal-rt");
    sprig__wal *w;
    SPRIG_OK_(sprig__wal_open(dir, 0, 64 * 1024, &w));
    assert_int_equal(sprig__wal_next_lsn(w), 1);
    append_n(w, 1, 2001, 0, 7); /* about 320 KB: several segments */
    SPRIG_OK_(sprig__wal_sync(w));
    uint64_t syncs, appends;
    size_t segs;
    sprig__wal_stats(w, &syncs, &appends, &segs);
    assert_true(segs >= 4);
    sprig__wal_close(w);
    seen s = replay_all(dir, 0, 0);
    assert_int_equal(s.n, 2000);
    s = replay_all(dir, 1234, 0);
    assert_int_equal(s.n, 2000 - 1234);
    assert_int_equal(s.first, 1235);
    /* opened after 2000: the next LSN continues; drop and recycle */
    SPRIG_OK_(sprig__wal_open(dir, 1500, 64 * 1024, &w));
    assert_int_equal(sprig__wal_next_lsn(w), 2001);
    append_n(w, 2001, 2601, 0, 5);
    sprig__wal_drop(w, 2400);
    sprig__wal_stats(w, &syncs, &appends, &segs);
    sprig__wal_close(w);
    s = replay_all(dir, 2400, 0);
    assert_int_equal(s.n, 200);
    assert_int_equal(s.last, 2600);
    tu_rmtree(dir);
}

/* The newest segment file (by name) of dir/wal. */
static void
newest_seg(const char *dir, char *out, size_t n)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s/wal/*.seg | sort | tail -1", dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, (int)n, f));
    out[strcspn(out, "\n")] = 0;
    pclose(f);
}

static void
log_torn_tail(void **state)
{
    (void)state;
    char dir[1100], seg[1200];
    rt_scratch(dir, sizeof dir, "wal-torn");
    const size_t fixed = 100, rec = 16 + fixed;
    for (int mode = 0; mode < 2; mode++) {
        char cmd[2400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
        assert_int_equal(system(cmd), 0);
        sprig__wal *w;
        SPRIG_OK_(sprig__wal_open(dir, 0, 0, &w));
        append_n(w, 1, 51, fixed, 1);
        sprig__wal_close(w);
        newest_seg(dir, seg, sizeof seg);
        int fd = open(seg, O_RDWR);
        assert_true(fd >= 0);
        off_t at = 1024 + 20 * (off_t)rec; /* record 21 */
        if (mode == 0) {                   /* a flipped byte in its data */
            uint8_t b;
            assert_int_equal(pread(fd, &b, 1, at + 40), 1);
            b ^= 0x55;
            assert_int_equal(pwrite(fd, &b, 1, at + 40), 1);
        } else { /* never written: zeros, later records intact */
            uint8_t z[116] = {0};
            assert_int_equal(pwrite(fd, z, rec, at), (ssize_t)rec);
        }
        close(fd);
        seen s = replay_all(dir, 0, fixed);
        assert_int_equal(s.n, 20);
        /* one new record of the same size: record 21 again; the old 22
         * behind it must never be read as its successor */
        SPRIG_OK_(sprig__wal_open(dir, 0, 0, &w));
        assert_int_equal(sprig__wal_next_lsn(w), 21);
        append_n(w, 21, 22, fixed, 1);
        sprig__wal_close(w);
        s = replay_all(dir, 0, fixed);
        assert_int_equal(s.n, 21);
        assert_int_equal(s.last, 21);
    }
    tu_rmtree(dir);
}

/* XOR 0x55 into byte `at` of `path`. */
static void
flip_at(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x55;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* The oldest segment file (by name) of dir/wal. */
static void
oldest_seg(const char *dir, char *out, size_t n)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls %s/wal/*.seg | sort | head -1", dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, (int)n, f));
    out[strcspn(out, "\n")] = 0;
    pclose(f);
}

/* A damaged record below what was synced is corruption, not a torn tail:
 * the open refuses (SPRIG_ECORRUPT naming the segment and the LSN) instead
 * of cutting the log there.  One in the synced segment (its synced mark),
 * one in an older segment (a later segment exists); a record after the
 * last sync that is damaged is still a torn tail, dropped at open. */
static void
log_corrupt_vs_torn(void **state)
{
    (void)state;
    char dir[1100], seg[1200], cmd[2400];
    rt_scratch(dir, sizeof dir, "wal-corrupt");
    const size_t fixed = 100, rec = 16 + fixed;
    sprig__wal *w;
    /* 1: synced through 50, record 21 flipped */
    SPRIG_OK_(sprig__wal_open(dir, 0, 0, &w));
    append_n(w, 1, 51, fixed, 1);
    SPRIG_OK_(sprig__wal_sync(w));
    sprig__wal_close(w);
    newest_seg(dir, seg, sizeof seg);
    flip_at(seg, 1024 + 20 * (off_t)rec + 40);
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig__wal_open(dir, 0, 0, &w));
    print_message("middle: %s\n", sprig_errmsg());
    assert_non_null(strstr(sprig_errmsg(), seg));
    assert_non_null(strstr(sprig_errmsg(), "record LSN 21 is damaged"));
    assert_non_null(strstr(sprig_errmsg(), "synced through LSN 50"));
    /* ... unless the checkpoint holds it: applied 50, nothing is lost */
    SPRIG_OK_(sprig__wal_open(dir, 50, 0, &w));
    sprig__wal_close(w);
    /* 1b: its FIRST record flipped: the segment then holds no LSN the
     * open asks for (it was left out of the chain, the log read as empty:
     * test_flips seed 1796564234, byte-flip round 51) */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
    SPRIG_OK_(sprig__wal_open(dir, 0, 0, &w));
    append_n(w, 1, 9, fixed, 1);
    SPRIG_OK_(sprig__wal_sync(w));
    sprig__wal_close(w);
    newest_seg(dir, seg, sizeof seg);
    flip_at(seg, 1024 + 40);
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig__wal_open(dir, 0, 0, &w));
    print_message("first: %s\n", sprig_errmsg());
    assert_non_null(strstr(sprig_errmsg(), seg));
    assert_non_null(strstr(sprig_errmsg(), "record LSN 1 is damaged"));
    assert_non_null(strstr(sprig_errmsg(), "synced through LSN 8"));
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig__wal_open(dir, 3, 0, &w));
    SPRIG_OK_(sprig__wal_open(dir, 8, 0, &w)); /* the checkpoint holds all */
    sprig__wal_close(w);
    /* 2: synced through 50, 51-60 not; record 55 torn: dropped at open */
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
    SPRIG_OK_(sprig__wal_open(dir, 0, 0, &w));
    append_n(w, 1, 51, fixed, 1);
    SPRIG_OK_(sprig__wal_sync(w));
    append_n(w, 51, 61, fixed, 1);
    sprig__wal_close(w);
    newest_seg(dir, seg, sizeof seg);
    flip_at(seg, 1024 + 54 * (off_t)rec + 40);
    seen s = replay_all(dir, 0, fixed);
    assert_int_equal(s.n, 54);
    /* 3: several segments, all synced; a record of the oldest flipped */
    assert_int_equal(system(cmd), 0);
    SPRIG_OK_(sprig__wal_open(dir, 0, 64 * 1024, &w));
    append_n(w, 1, 2001, fixed, 7);
    SPRIG_OK_(sprig__wal_sync(w));
    sprig__wal_close(w);
    oldest_seg(dir, seg, sizeof seg);
    flip_at(seg, 1024 + 4 * (off_t)rec + 40); /* record 5 */
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig__wal_open(dir, 0, 64 * 1024, &w));
    print_message("older segment: %s\n", sprig_errmsg());
    assert_non_null(strstr(sprig_errmsg(), seg));
    assert_non_null(strstr(sprig_errmsg(), "record LSN 5 is damaged"));
    /* the files were left as they were: the refusal repeats */
    SPRIG_EXPECT(SPRIG_ECORRUPT, sprig__wal_open(dir, 0, 64 * 1024, &w));
    tu_rmtree(dir);
}

static void
log_revert(void **state)
{
    (void)state;
    char dir[1100];
    rt_scratch(dir, sizeof dir, "wal-revert");
    sprig__wal *w;
    SPRIG_OK_(sprig__wal_open(dir, 0, 0, &w));
    append_n(w, 1, 11, 0, 10);
    SPRIG_OK_(sprig__wal_sync(w));
    uint8_t junk[50];
    memset(junk, 0xee, sizeof junk);
    sprig_bytes bad[2] = {{junk, 50}, {junk, 20}};
    uint64_t last;
    SPRIG_OK_(sprig__wal_append(w, bad, 2, &last));
    assert_int_equal(last, 12);
    SPRIG_OK_(sprig__wal_sync(w));
    SPRIG_OK_(sprig__wal_revert(w, 11));
    assert_int_equal(sprig__wal_next_lsn(w), 11);
    append_n(w, 11, 13, 0, 2);
    sprig__wal_close(w);
    seen s = replay_all(dir, 0, 0);
    assert_int_equal(s.n, 12);
    tu_rmtree(dir);
}

/* ---- the scheme ------------------------------------------------------------
 */

#define HOT 16
#define HOT_BASE 1000000000ull

static MDB_dbi data_dbi;

static size_t
val_of(uint64_t i, uint8_t *out)
{
    size_t n = 200 + (i * 2654435761u) % 800;
    for (size_t k = 0; k < n; k++) {
        out[k] = (uint8_t)(i * 31 + k);
    }
    memcpy(out, &i, 8);
    return n;
}

static int
put_u64(MDB_txn *txn, uint64_t key, const uint8_t *v, size_t n)
{
    uint8_t k[8];
    sprig__put_u64be(k, key);
    MDB_val mk = {8, k}, mv = {n, (void *)v};
    int mrc = mdb_put(txn, data_dbi, &mk, &mv, 0);
    return mrc ? sprig__mdb_err(mrc, "test put") : 0;
}

/* The test's command: [i u64] -> key i, hot key i % HOT, count i + 1. */
static int
apply_cmd(void *arg, MDB_txn *txn, const uint8_t *p, size_t n)
{
    (void)arg;
    if (n != 8) {
        return SPRIG_ECORRUPT;
    }
    uint64_t i;
    memcpy(&i, p, 8);
    uint8_t v[1000], c[8];
    size_t vn = val_of(i, v);
    sprig__put_u64be(c, i + 1);
    int rc = put_u64(txn, i, v, vn);
    rc = rc ? rc : put_u64(txn, HOT_BASE + i % HOT, v, vn);
    return rc ? rc : put_u64(txn, UINT64_MAX, c, 8);
}

static sprig__env *
scheme_open(const char *dir, sprig_durability d, uint64_t *replayed)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.durability = d;
    sprig__env *e;
    SPRIG_OK_(sprig__ckpt_env_open(dir, &o, 8, &e));
    const char *names[] = {"data"};
    SPRIG_OK_(sprig__env_open_dbis(e, names, 1, &data_dbi));
    SPRIG_OK_(sprig__ckpt_recover(e, apply_cmd, NULL, replayed));
    return e;
}

static int
scheme_commit(sprig__env *e, uint64_t i, bool durable)
{
    for (;;) {
        size_t seen_size = e->map_size;
        pthread_rwlock_rdlock(&e->map_lock);
        MDB_txn *txn;
        int mrc = mdb_txn_begin(e->env, NULL, 0, &txn);
        int rc = mrc ? sprig__mdb_err(mrc, "begin") : 0;
        uint8_t cmd[8];
        memcpy(cmd, &i, 8);
        sprig_bytes rec = {cmd, 8};
        if (rc == 0 && (rc = apply_cmd(NULL, txn, cmd, 8)) != 0) {
            mdb_txn_abort(txn);
        } else if (rc == 0) {
            rc = sprig__ckpt_commit(e, txn, &rec, 1, durable, false);
        }
        pthread_rwlock_unlock(&e->map_lock);
        if (rc != SPRIG__EMAPFULL) {
            return rc;
        }
        SPRIG_OK_(sprig__env_grow(e, seen_size, false));
    }
}

/* Check the data: keys 0..count-1 exactly, hot keys at their last write,
 * every acknowledged record present.  Returns count. */
static uint64_t
verify(sprig__env *e, uint64_t acked)
{
    MDB_txn *txn;
    SPRIG_OK_(sprig__env_read_begin(e, &txn));
    MDB_cursor *cur;
    assert_int_equal(mdb_cursor_open(txn, data_dbi, &cur), 0);
    MDB_val k, v;
    uint64_t next = 0, count = 0, hot = 0;
    uint8_t want[1000];
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (mrc == 0) {
        assert_int_equal(v.mv_size, 8);
        count = sprig__get_u64be(v.mv_data);
    }
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t key = sprig__get_u64be(k.mv_data);
        if (key == UINT64_MAX) {
            continue;
        }
        uint64_t i = key;
        if (key >= HOT_BASE) { /* the last i < count with this residue */
            uint64_t h = key - HOT_BASE;
            assert_true(count > h);
            i = h + (count - 1 - h) / HOT * HOT;
            hot++;
        } else {
            assert_int_equal(key, next++);
        }
        size_t n = val_of(i, want);
        assert_int_equal(v.mv_size, n);
        assert_memory_equal(v.mv_data, want, n);
    }
    assert_int_equal(mrc, MDB_NOTFOUND);
    assert_int_equal(next, count);
    assert_int_equal(hot, count < HOT ? count : HOT);
    if (count < acked) {
        fprintf(stderr, "LOST: count %llu < acked %llu\n",
                (unsigned long long)count, (unsigned long long)acked);
        if (getenv("SPRIG_WAL_KEEP")) {
            abort();
        }
    }
    assert_true(count >= acked);
    mdb_cursor_close(cur);
    sprig__env_read_end(e, txn);
    return count;
}

static void
scheme_one_sync_per_commit(void **state)
{
    (void)state;
    char dir[1100];
    rt_scratch(dir, sizeof dir, "wal-syncs");
    sprig__env *e = scheme_open(dir, SPRIG_DURABILITY_FULL, NULL);
    sprig__ckpt_stats_t st0, st1;
    sprig__ckpt_stats(e, &st0);
    long l0 = atomic_load(&log_syncs), a0 = atomic_load(&all_syncs);
    for (uint64_t i = 0; i < 200; i++) {
        SPRIG_OK_(scheme_commit(e, i, true));
    }
    long l1 = atomic_load(&log_syncs), a1 = atomic_load(&all_syncs);
    sprig__ckpt_stats(e, &st1);
    uint64_t ckpts = st1.checkpoints - st0.checkpoints;
    /* exactly one log sync per durable commit; besides, only the
     * checkpointer's two syncs (data.mdb, wal/meta) per checkpoint */
    assert_int_equal(l1 - l0, 200);
    assert_true(a1 - a0 <= 200 + 2 * (long)ckpts + 2);
    /* lazy commits: no sync until the flush, then one */
    for (uint64_t i = 200; i < 300; i++) {
        SPRIG_OK_(scheme_commit(e, i, false));
    }
    assert_int_equal(atomic_load(&log_syncs), l1);
    SPRIG_OK_(sprig__ckpt_flush(e));
    assert_int_equal(atomic_load(&log_syncs), l1 + 1);
    sprig__env_close(e);
    uint64_t replayed;
    e = scheme_open(dir, SPRIG_DURABILITY_FULL, &replayed);
    assert_int_equal(replayed, 0); /* clean close: nothing to replay */
    assert_int_equal(verify(e, 300), 300);
    sprig__env_close(e);
    tu_rmtree(dir);
}

/* `none`: the log is written (a kill -9 loses nothing) but never synced on
 * the commit path -- no per-commit fdatasync, no 10 ms timer; the
 * checkpoints are its durable points, so the checkpoint interval (1 s, or
 * CKPT_COMMITS commits) bounds what a power loss takes: within it every
 * acknowledged commit is in a checkpoint (data.mdb and wal/meta synced),
 * still without one sync of the log. */
static void
scheme_none_checkpoints_bound_the_loss(void **state)
{
    (void)state;
    char dir[1100];
    rt_scratch(dir, sizeof dir, "wal-none");
    sprig__env *e = scheme_open(dir, SPRIG_DURABILITY_NONE, NULL);
    assert_non_null(e->ckpt); /* logged, like `normal` */
    sprig__ckpt_stats_t st0, st1;
    sprig__ckpt_stats(e, &st0);
    long l0 = atomic_load(&log_syncs);
    for (uint64_t i = 0; i < 300; i++) {
        SPRIG_OK_(scheme_commit(e, i, true));
    }
    sprig__ckpt_stats(e, &st1);
    assert_int_equal(st1.log_appends - st0.log_appends, 300);
    assert_int_equal(atomic_load(&log_syncs), l0);
    /* every record is in a durable checkpoint within the interval */
    uint64_t t0 = rt_now_us();
    while (st1.ckpt_lsn < 300 && rt_now_us() - t0 < 5000000) {
        usleep(20000);
        sprig__ckpt_stats(e, &st1);
    }
    uint64_t waited = rt_now_us() - t0;
    printf("none: all 300 commits in a checkpoint after %llu ms, %llu "
           "checkpoints, %ld log syncs\n",
           (unsigned long long)(waited / 1000),
           (unsigned long long)(st1.checkpoints - st0.checkpoints),
           atomic_load(&log_syncs) - l0);
    assert_true(st1.ckpt_lsn >= 300);
    assert_true(st1.checkpoints > st0.checkpoints);
    assert_int_equal(atomic_load(&log_syncs), l0);
    sprig__env_close(e);
    uint64_t replayed;
    e = scheme_open(dir, SPRIG_DURABILITY_NONE, &replayed);
    assert_int_equal(replayed, 0);
    assert_int_equal(verify(e, 300), 300);
    sprig__env_close(e);
    tu_rmtree(dir);
}

/* Across opens a storage switches modes freely: none -> full -> none, and
 * a `none` database made before `none` had a log (no wal/) opens. */
static void
scheme_none_switches_modes(void **state)
{
    (void)state;
    char dir[1100], wal[1200];
    rt_scratch(dir, sizeof dir, "wal-none-switch");
    snprintf(wal, sizeof wal, "%s/wal", dir);
    static const sprig_durability modes[] = {
        SPRIG_DURABILITY_NONE, SPRIG_DURABILITY_FULL, SPRIG_DURABILITY_NONE,
        SPRIG_DURABILITY_NORMAL, SPRIG_DURABILITY_NONE};
    uint64_t n = 0;
    for (size_t m = 0; m < 5; m++) {
        if (m == 4) {
            tu_rmtree(wal); /* as an older `none` left it: no log */
        }
        uint64_t replayed;
        sprig__env *e = scheme_open(dir, modes[m], &replayed);
        assert_int_equal(replayed, 0);
        assert_int_equal(verify(e, n), n);
        for (uint64_t i = n; i < n + 50; i++) {
            SPRIG_OK_(scheme_commit(e, i, true));
        }
        n += 50;
        sprig__env_close(e);
    }
    sprig__env *e = scheme_open(dir, SPRIG_DURABILITY_FULL, NULL);
    assert_int_equal(verify(e, n), n);
    sprig__env_close(e);
    tu_rmtree(dir);
}

/* ---- crash rounds ------------------------------------------------------- */

/* The child: commit from `from` on, acknowledging each on `ack`. */
static void
child_run(const char *dir, const char *journal_path, uint64_t from, int ack)
{
    snprintf(shim_dir, sizeof shim_dir, "%s", dir);
    shim_jfd = open(journal_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    sprig__env *e = scheme_open(dir, SPRIG_DURABILITY_FULL, NULL);
    for (uint64_t i = from;; i++) {
        if (scheme_commit(e, i, true) != 0) {
            fprintf(stderr, "child: %s\n", sprig_errmsg());
            _exit(3);
        }
        if (i % 7 == 0) {
            sprig__ckpt_now(e);
        }
        if (write(ack, &i, 8) != 8) {
            _exit(4);
        }
    }
}

typedef struct block_stop {
    uint32_t path; /* index in the path table */
    uint64_t block, stop;
} block_stop;

typedef struct rebuild {
    char paths[64][1100];
    long last_sync[64];
    size_t n_paths;
    block_stop *stops;
    size_t n_stops, cap_stops;
} rebuild;

static uint32_t
path_id(rebuild *r, const char *p)
{
    for (size_t i = 0; i < r->n_paths; i++) {
        if (strcmp(r->paths[i], p) == 0) {
            return (uint32_t)i;
        }
    }
    assert_true(r->n_paths < 64);
    snprintf(r->paths[r->n_paths], 1100, "%s", p);
    r->last_sync[r->n_paths] = -1;
    return (uint32_t)r->n_paths++;
}

/* The journal index up to which unsynced writes of a block reach the disk
 * (drawn once per block: a writeback of that block at some moment). */
static uint64_t
block_stop_at(rebuild *r, uint32_t path, uint64_t block, uint64_t idx,
              uint64_t n_recs, uint64_t *rng)
{
    for (size_t i = 0; i < r->n_stops; i++) {
        if (r->stops[i].path == path && r->stops[i].block == block) {
            return r->stops[i].stop;
        }
    }
    if (r->n_stops == r->cap_stops) {
        r->cap_stops = r->cap_stops ? r->cap_stops * 2 : 256;
        r->stops = realloc(r->stops, r->cap_stops * sizeof *r->stops);
        assert_non_null(r->stops);
    }
    uint64_t stop = idx + rt_below(rng, n_recs - idx + 1);
    r->stops[r->n_stops++] = (block_stop){path, block, stop};
    return stop;
}

typedef struct jrec {
    char op;
    char path[1100];
    uint64_t off;
    uint32_t len;
    uint8_t *data;
} jrec;

static bool
jread(FILE *f, jrec *j)
{
    uint8_t h[17];
    uint32_t pl;
    if (fread(h, 1, sizeof h, f) != sizeof h) {
        return false;
    }
    j->op = (char)h[0];
    memcpy(&pl, h + 1, 4);
    memcpy(&j->off, h + 5, 8);
    memcpy(&j->len, h + 13, 4);
    /* the child may die halfway through its last record: it never
     * happened (a write not journaled yet was not synced either) */
    if (pl >= sizeof j->path || fread(j->path, 1, pl, f) != pl) {
        return false;
    }
    j->path[pl] = 0;
    j->data = j->len ? malloc(j->len) : NULL;
    if (j->len && fread(j->data, 1, j->len, f) != j->len) {
        free(j->data);
        return false;
    }
    return true;
}

/* The same path below `to` instead of `from`. */
static void
moved(const char *p, const char *from, const char *to, char *out, size_t n)
{
    snprintf(out, n, "%s%s", to, p + strlen(from));
}

static void
apply_piece(const char *path, uint64_t off, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

/* Apply journal record `idx` to the copy in `out` as the disk keeps it. */
static void
rebuild_one(rebuild *r, const jrec *j, uint64_t idx, uint64_t n_recs,
            const char *dir, const char *out, bool power, uint64_t *rng)
{
    char p[1200];
    moved(j->path, dir, out, p, sizeof p);
    uint32_t id = path_id(r, j->path);
    if (j->op == J_UNLINK) {
        unlink(p);
        return;
    }
    if (j->op != J_WRITE) {
        return;
    }
    bool synced = (long)idx < r->last_sync[id];
    for (uint64_t off = j->off; off < j->off + j->len;) {
        uint64_t end = (off / 4096 + 1) * 4096;
        end = end < j->off + j->len ? end : j->off + j->len;
        bool keep = synced || !power ||
                    idx < block_stop_at(r, id, off / 4096, idx, n_recs, rng);
        if (keep) {
            apply_piece(p, off, j->data + (off - j->off), end - off);
        }
        off = end;
    }
}

static void
rebuild_files(const char *journal_path, const char *dir, const char *out,
              bool power, uint64_t *rng)
{
    rebuild r = {0};
    FILE *f = fopen(journal_path, "rb");
    assert_non_null(f);
    jrec j;
    uint64_t n = 0;
    while (jread(f, &j)) { /* pass 1: each file's last sync */
        uint32_t id = path_id(&r, j.path);
        if (j.op == J_SYNC) {
            r.last_sync[id] = (long)n;
        }
        free(j.data);
        n++;
    }
    rewind(f);
    for (uint64_t i = 0; i < n && jread(f, &j); i++) {
        rebuild_one(&r, &j, i, n, dir, out, power, rng);
        free(j.data);
    }
    fclose(f);
    free(r.stops);
}

/* Make `to` a copy of directory `from`. */
static void
copy_dir(const char *from, const char *to)
{
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* One round: the child writes on `live` (whose files are `base` now) and
 * dies; `live` becomes the rebuilt disk.  Returns the count after it. */
static uint64_t
crash_round(const char *live, const char *base, const char *jpath,
            uint64_t from, bool power, uint64_t *rng)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    /* an empty journal: a child killed before it opened its own (a loaded
     * machine, valgrind) wrote nothing (it failed the rebuild's open) */
    int jfd = open(jpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(jfd >= 0);
    close(jfd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_run(live, jpath, from, fds[1]);
    }
    close(fds[1]);
    /* SPRIG_TEST_SLOWDOWN (valgrind.sh: 20): under valgrind the child had
     * not opened its journal, or acknowledged nothing, when the kill came;
     * slowed down, the kill waits for its first acknowledgement too */
    unsigned long slow = rt_env_ulong("SPRIG_TEST_SLOWDOWN", 1);
    uint64_t i, acked = from;
    if (slow > 1 && read(fds[0], &i, 8) == 8) {
        acked = i + 1;
    }
    usleep((useconds_t)((20000 + rt_below(rng, 250000)) * slow));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status)) {
        fprintf(stderr, "child status %d\n", status);
    }
    assert_true(WIFSIGNALED(status)); /* it was still writing */
    while (read(fds[0], &i, 8) == 8) {
        acked = i + 1;
    }
    close(fds[0]);
    /* the disk: the files before the child, then the journal */
    copy_dir(base, live);
    rebuild_files(jpath, live, live, power, rng);
    uint64_t replayed;
    sprig__env *e = scheme_open(live, SPRIG_DURABILITY_FULL, &replayed);
    uint64_t count = verify(e, acked);
    printf("round: %s, %llu acknowledged, %llu after recovery "
           "(%llu replayed)\n",
           power ? "power loss" : "kill -9", (unsigned long long)acked,
           (unsigned long long)count, (unsigned long long)replayed);
    sprig__env_close(e);
    return count;
}

static void
scheme_crash_and_power_loss(void **state)
{
    (void)state;
    char root[1100], live[1200], base[1200], jpath[1200];
    rt_scratch(root, sizeof root, "wal-crash");
    char canon[1100];
    assert_non_null(realpath(root, canon)); /* as /proc/self/fd shows it */
    snprintf(root, sizeof root, "%s", canon);
    snprintf(live, sizeof live, "%s/db", root);
    snprintf(base, sizeof base, "%s/base", root);
    snprintf(jpath, sizeof jpath, "%s/journal", root);
    sprig__env *e = scheme_open(live, SPRIG_DURABILITY_FULL, NULL);
    sprig__env_close(e);
    uint64_t rng = seed, count = 0;
    unsigned long rounds = rt_env_ulong("SPRIG_WAL_ROUNDS", 12);
    for (unsigned long r = 0; r < rounds; r++) {
        copy_dir(live, base);
        count = crash_round(live, base, jpath, count, r % 3 != 0, &rng);
    }
    tu_rmtree(root);
}

int
main(void)
{
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_roundtrip_and_rotation),
        cmocka_unit_test(log_torn_tail),
        cmocka_unit_test(log_corrupt_vs_torn),
        cmocka_unit_test(log_revert),
        cmocka_unit_test(scheme_one_sync_per_commit),
        cmocka_unit_test(scheme_none_checkpoints_bound_the_loss),
        cmocka_unit_test(scheme_none_switches_modes),
        cmocka_unit_test(scheme_crash_and_power_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
