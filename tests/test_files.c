/*
 * test_files.c -- the file store (include/sprig/files.h, src/files) on
 * every placement (placement.h: local, ws://, wss://): files of 0 bytes,
 * one chunk and many; reads at every chunk boundary; append, truncate,
 * rename, delete, metadata and listings with pagination; files larger
 * than a configured memory bound written and read through it (the heap
 * is counted by a replaced allocator); concurrent writers to different
 * files; and kill -9 during large appends (a child process appending
 * through sprig_open(), killed, then checked: the file has the old or
 * the new length, never a torn one).  Contents are a function of the
 * byte's position and a per-file salt, so any read can be checked.
 */
#include "placement.h"

#include "sprig/files.h"

#include "core/core.h" /* sprig__alloc_fail_after: the OOM seam */

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define CS 1000u      /* chunk size of the small-file tests */
#define TXN 8000u     /* txn_bytes of the small-file tests */
#define APPEND 20000u /* the kill test's appends: three transactions */

static const char *root;
static const char *kind;
static uint64_t seed;

/* ---- a counting allocator: live and peak heap bytes of Sprig --------- */

static atomic_size_t live_bytes, peak_bytes, alloc_calls;

static void
count_add(size_t n)
{
    atomic_fetch_add(&alloc_calls, 1);
    size_t now = atomic_fetch_add(&live_bytes, n) + n;
    size_t peak = atomic_load(&peak_bytes);
    while (now > peak &&
           !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
    }
}

static void *
c_malloc(size_t n)
{
    size_t *p = malloc(n + 16);
    if (!p) {
        return NULL;
    }
    *p = n;
    count_add(n);
    return (char *)p + 16;
}

static void
c_free(void *q)
{
    if (q) {
        size_t *p = (size_t *)((char *)q - 16);
        atomic_fetch_sub(&live_bytes, *p);
        free(p);
    }
}

static void *
c_realloc(void *q, size_t n)
{
    if (!q) {
        return c_malloc(n);
    }
    size_t *p = (size_t *)((char *)q - 16), old = *p;
    size_t *r = realloc(p, n + 16);
    if (!r) {
        return NULL;
    }
    *r = n;
    atomic_fetch_sub(&live_bytes, old);
    count_add(n);
    return (char *)r + 16;
}

static void *
c_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size - 16) {
        return NULL;
    }
    void *q = c_malloc(n * size);
    if (q) {
        memset(q, 0, n * size);
    }
    return q;
}

/* ---- contents ---------------------------------------------------------- */

static uint8_t
byte_at(uint64_t salt, uint64_t pos)
{
    uint64_t x = (pos + 1) * 0x9E3779B97F4A7C15ull ^ salt;
    return (uint8_t)(x >> 29);
}

static void
fill(uint8_t *p, uint64_t salt, uint64_t pos, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = byte_at(salt, pos + i);
    }
}

static void
check_bytes(const uint8_t *p, uint64_t salt, uint64_t pos, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != byte_at(salt, pos + i)) {
            fail_msg("byte %llu differs", (unsigned long long)(pos + i));
        }
    }
}

/* A source of `left` bytes of `salt` from position `pos`. */
typedef struct gen {
    uint64_t salt, pos, left;
    int fail_at; /* >0: fail on that call */
    int calls;
} gen;

static ssize_t
gen_read(void *udata, void *buf, size_t cap)
{
    gen *g = udata;
    if (g->fail_at && ++g->calls == g->fail_at) {
        return SPRIG_EIO;
    }
    size_t n = g->left < cap ? (size_t)g->left : cap;
    fill(buf, g->salt, g->pos, n);
    g->pos += n;
    g->left -= n;
    return (ssize_t)n;
}

typedef struct checker {
    uint64_t salt, pos;
} checker;

static int
check_sink(void *udata, const void *data, size_t len)
{
    checker *c = udata;
    for (size_t i = 0; i < len; i++) {
        if (((const uint8_t *)data)[i] != byte_at(c->salt, c->pos + i)) {
            return SPRIG_ECORRUPT;
        }
    }
    c->pos += len;
    return 0;
}

/* ---- fixture ----------------------------------------------------------- */

typedef struct fx {
    placement p;
    sprig_db *db;
    sprig_files *fs;
} fx;

static sprig_schema_def *schema;

static void
fx_files(fx *f, uint32_t cs, size_t txn)
{
    sprig_files_close(f->fs);
    sprig_files_options o;
    sprig_files_options_init(&o);
    o.chunk_size = cs;
    o.txn_bytes = txn;
    SPRIG_OK_(sprig_files_open(f->db, &o, &f->fs));
}

static int
setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    placement_open(&f->p, kind, root, schema);
    SPRIG_OK_(sprig_storage_create_database(f->p.st, "f", "fstest", false));
    SPRIG_OK_(sprig_storage_open_database(f->p.st, "f", &f->db));
    fx_files(f, CS, TXN);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fx *f = *state;
    sprig_files_close(f->fs);
    sprig_db_close(f->db);
    placement_close(&f->p);
    free(f);
    return 0;
}

static uint64_t
count(fx *f, const char *coll)
{
    uint64_t n;
    SPRIG_OK_(sprig_count(f->db, coll, NULL, &n));
    return n;
}

/* Put `n` bytes of `salt` at `path`. */
static void
put_gen(fx *f, const char *path, uint64_t salt, size_t n)
{
    uint8_t *b = malloc(n + 1);
    fill(b, salt, 0, n);
    SPRIG_OK_(sprig_files_put(f->fs, path, (sprig_bytes){b, n}, NULL, 0));
    free(b);
}

/* The file holds exactly `n` bytes of `salt`. */
static void
expect_file(fx *f, const char *path, uint64_t salt, uint64_t n)
{
    sprig_file_stat st;
    SPRIG_OK_(sprig_files_stat(f->fs, path, &st, NULL));
    assert_int_equal(st.length, n);
    sprig_buf b = {0};
    SPRIG_OK_(sprig_files_read(f->fs, path, 0, SIZE_MAX, &b));
    assert_int_equal(b.len, n);
    check_bytes(b.data, salt, 0, n);
    sprig_buf_clear(&b);
}

/* ---- tests ------------------------------------------------------------- */

static void
test_sizes(void **state)
{
    fx *f = *state;
    size_t sizes[] = {0, 1, CS - 1, CS, CS + 1, TXN, TXN + 1, 23 * CS + 7};
    char path[64];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        snprintf(path, sizeof path, "/sizes/f%zu", sizes[i]);
        put_gen(f, path, i, sizes[i]);
        expect_file(f, path, i, sizes[i]);
    }
    assert_int_equal(count(f, "files.files"), 8);
    /* 0 + 1 + 1 + 1 + 2 + 8 + 9 + 24 chunks */
    assert_int_equal(count(f, "files.chunks"), 46);
    assert_int_equal(count(f, "files.pending"), 0);
    /* replace: the old version's chunks are collected */
    put_gen(f, "/sizes/f1", 99, 3 * CS);
    expect_file(f, "/sizes/f1", 99, 3 * CS);
    put_gen(f, "/sizes/f23007", 98, 5);
    expect_file(f, "/sizes/f23007", 98, 5);
    assert_int_equal(count(f, "files.chunks"), 46 + 2 - 23);
    assert_int_equal(count(f, "files.pending"), 0);
    SPRIG_EXPECT(SPRIG_EEXIST,
                 sprig_files_put(f->fs, "/sizes/f0", sprig_str("x"), NULL,
                                 SPRIG_FILES_EXCLUSIVE));
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_files_stat(f->fs, "/nope", &(sprig_file_stat){0}, NULL));
    const char *bad[] = {"",      "x",      "/",       "/a/",
                         "/a//b", "/a/./b", "/a/../b", "/a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        SPRIG_EXPECT(SPRIG_EINVAL,
                     sprig_files_put(f->fs, bad[i], sprig_str("x"), NULL, 0));
    }
}

static void
test_metadata(void **state)
{
    fx *f = *state;
    sprig_bytes meta = sprig_str("{\"type\":\"text/plain\"}");
    SPRIG_OK_(sprig_files_put(f->fs, "/m", sprig_str("hello"), &meta, 0));
    sprig_file_stat st;
    sprig_buf b = {0};
    SPRIG_OK_(sprig_files_stat(f->fs, "/m", &st, &b));
    assert_true(tu_bytes_eq(sprig_buf_bytes(&b), "{\"type\":\"text/plain\"}"));
    assert_int_equal(st.length, 5);
    assert_int_equal(st.chunk_size, CS);
    assert_true(st.created_ms > 1700000000000ull);
    assert_true(st.modified_ms >= st.created_ms);
    sprig_bytes m2 = sprig_str("{\"v\":2}");
    SPRIG_OK_(sprig_files_set_metadata(f->fs, "/m", &m2));
    sprig_file_stat st2;
    SPRIG_OK_(sprig_files_stat(f->fs, "/m", &st2, &b));
    assert_true(tu_bytes_eq(sprig_buf_bytes(&b), "{\"v\":2}"));
    assert_int_equal(st2.created_ms, st.created_ms);
    assert_true(st2.revision > st.revision);
    SPRIG_OK_(sprig_files_set_metadata(f->fs, "/m", NULL));
    SPRIG_OK_(sprig_files_stat(f->fs, "/m", &st2, &b));
    assert_int_equal(b.len, 0);
    sprig_buf_clear(&b);
}

static void
test_chunk_boundaries(void **state)
{
    fx *f = *state;
    uint64_t n = 12 * CS + 345;
    put_gen(f, "/b", 7, n);
    sprig_buf b = {0};
    size_t lens[] = {1, 2, CS - 1, CS, CS + 1, 3 * CS, TXN + CS};
    for (uint64_t k = 0; k <= n / CS + 1; k++) {
        for (int d = -1; d <= 1; d++) {
            if (k == 0 && d < 0) {
                continue;
            }
            uint64_t off = k * CS + (uint64_t)(int64_t)d;
            for (size_t j = 0; j < sizeof lens / sizeof *lens; j++) {
                SPRIG_OK_(sprig_files_read(f->fs, "/b", off, lens[j], &b));
                uint64_t want = off >= n            ? 0
                                : n - off < lens[j] ? n - off
                                                    : lens[j];
                assert_int_equal(b.len, want);
                check_bytes(b.data, 7, off, b.len);
            }
        }
    }
    /* streamed from an offset, through the bounded buffer */
    checker c = {7, 1500};
    sprig_file_stat st;
    SPRIG_OK_(sprig_files_read_stream(f->fs, "/b", 1500, UINT64_MAX, check_sink,
                                      &c, &st));
    assert_int_equal(c.pos, n);
    assert_int_equal(st.length, n);
    sprig_buf_clear(&b);
}

/* A model of the file kept in memory next to the store. */
static void
model_check(fx *f, const char *path, const uint8_t *model, size_t n)
{
    sprig_buf b = {0};
    SPRIG_OK_(sprig_files_read(f->fs, path, 0, SIZE_MAX, &b));
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, model, n);
    sprig_buf_clear(&b);
}

static void
test_append_truncate(void **state)
{
    fx *f = *state;
    size_t cap = 200000, n = 0;
    uint8_t *model = calloc(1, cap);
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_files_append(f->fs, "/a", sprig_str("x")));
    SPRIG_OK_(sprig_files_put(f->fs, "/a", (sprig_bytes){0}, NULL, 0));
    size_t steps[] = {10, 990, 1, 2500, 3 * TXN + 17, 0, 999, TXN, 4};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        fill(model + n, i, n, steps[i]);
        SPRIG_OK_(sprig_files_append(f->fs, "/a",
                                     (sprig_bytes){model + n, steps[i]}));
        n += steps[i];
        model_check(f, "/a", model, n);
    }
    /* shrink into a chunk, then append over the stale tail */
    n = 5 * CS + 3;
    SPRIG_OK_(sprig_files_truncate(f->fs, "/a", n));
    model_check(f, "/a", model, n);
    assert_int_equal(count(f, "files.chunks"), 6);
    fill(model + n, 77, 0, 4 * CS);
    SPRIG_OK_(
        sprig_files_append(f->fs, "/a", (sprig_bytes){model + n, 4 * CS}));
    n += 4 * CS;
    model_check(f, "/a", model, n);
    /* grow: zeros, small and large */
    size_t grow[] = {n + 10, n + 10 + 3 * TXN};
    for (size_t i = 0; i < 2; i++) {
        memset(model + n, 0, grow[i] - n);
        SPRIG_OK_(sprig_files_truncate(f->fs, "/a", grow[i]));
        n = grow[i];
        model_check(f, "/a", model, n);
    }
    SPRIG_OK_(sprig_files_truncate(f->fs, "/a", 0));
    model_check(f, "/a", model, 0);
    assert_int_equal(count(f, "files.chunks"), 0);
    /* a streamed append of many buffers */
    gen g = {5, 0, 5 * TXN + 3, 0, 0};
    SPRIG_OK_(sprig_files_append_stream(f->fs, "/a", gen_read, &g));
    expect_file(f, "/a", 5, 5 * TXN + 3);
    assert_int_equal(count(f, "files.pending"), 0);
    free(model);
}

static void
test_failed_writes(void **state)
{
    fx *f = *state;
    put_gen(f, "/keep", 3, 2 * CS);
    uint64_t chunks = count(f, "files.chunks");
    /* a large put whose source fails midway leaves nothing behind */
    gen g = {4, 0, 10 * TXN, 3, 0};
    SPRIG_EXPECT(SPRIG_EIO,
                 sprig_files_put_stream(f->fs, "/keep", gen_read, &g, NULL, 0));
    expect_file(f, "/keep", 3, 2 * CS);
    assert_int_equal(count(f, "files.chunks"), chunks);
    assert_int_equal(count(f, "files.pending"), 0);
    /* an exclusive large put of an existing file writes nothing */
    gen x = {4, 0, 3 * TXN, 0, 0};
    SPRIG_EXPECT(SPRIG_EEXIST,
                 sprig_files_put_stream(f->fs, "/keep", gen_read, &x, NULL,
                                        SPRIG_FILES_EXCLUSIVE));
    assert_int_equal(x.left, 2 * TXN); /* one buffer read, then refused */
    assert_int_equal(count(f, "files.chunks"), chunks);
    /* a large append likewise keeps the old length */
    gen h = {3, 2 * CS, 10 * TXN, 3, 0};
    SPRIG_EXPECT(SPRIG_EIO,
                 sprig_files_append_stream(f->fs, "/keep", gen_read, &h));
    expect_file(f, "/keep", 3, 2 * CS);
    assert_int_equal(count(f, "files.pending"), 0);
    /* an unfinished large put of a crashed writer: a 'W' record and a
     * chunk, collected by sprig_files_gc() once old enough */
    uint8_t id[9] = {'W', 0, 0, 0, 0, 0, 0, 0, 42}, rec[8] = {0};
    uint8_t cid[16] = {0, 0, 0, 0, 0, 0, 0, 42, 0};
    SPRIG_OK_(sprig_insert(f->db, "files.pending", &(sprig_bytes){id, 9},
                           (sprig_bytes){rec, 8}, NULL));
    SPRIG_OK_(sprig_insert(f->db, "files.chunks", &(sprig_bytes){cid, 16},
                           sprig_str("orphan"), NULL));
    uint64_t n = 9;
    SPRIG_OK_(sprig_files_gc(f->fs, 1000, &n));
    assert_int_equal(n, 1);
    assert_int_equal(count(f, "files.chunks"), chunks);
    assert_int_equal(count(f, "files.pending"), 0);
    expect_file(f, "/keep", 3, 2 * CS);
    /* a large append's lock: a live one makes another wait (SPRIG_EBUSY);
     * one not refreshed for a minute (its writer died) is taken over */
    sprig_doc *d;
    SPRIG_OK_(sprig_get(f->db, "files.files", (sprig_bytes){"\0keep", 5}, &d));
    uint8_t lock[9] = {'A'};
    memcpy(lock + 1, (const uint8_t *)sprig_doc_contents(d).data + 4, 8);
    sprig_doc_free(d);
    uint8_t now[8];
    sprig_key_u64((uint64_t)time(NULL) * 1000u, now); /* big-endian */
    sprig_header_buf lh;
    SPRIG_OK_(sprig_insert(f->db, "files.pending", &(sprig_bytes){lock, 9},
                           (sprig_bytes){now, 8}, &lh));
    gen a1 = {3, 2 * CS, 2 * TXN, 0, 0};
    SPRIG_EXPECT(SPRIG_EBUSY,
                 sprig_files_append_stream(f->fs, "/keep", gen_read, &a1));
    sprig_header lhh = sprig_header_of(&lh);
    SPRIG_OK_(sprig_update(f->db, "files.pending", &lhh, (sprig_bytes){rec, 8},
                           NULL));
    a1 = (gen){3, 2 * CS, 2 * TXN, 0, 0};
    SPRIG_OK_(sprig_files_append_stream(f->fs, "/keep", gen_read, &a1));
    expect_file(f, "/keep", 3, 2 * CS + 2 * TXN);
    assert_int_equal(count(f, "files.pending"), 0);
}

static void
list_expect(fx *f, const char *dir, uint32_t limit, const char *want)
{
    char got[512] = "", *after = NULL;
    for (int page = 0; page < 100; page++) {
        sprig_file_list *l;
        SPRIG_OK_(sprig_files_list(f->fs, dir, after, limit, &l));
        size_t k = sprig_file_list_count(l);
        for (size_t i = 0; i < k; i++) {
            const char *name = sprig_file_list_name(l, i);
            assert_int_equal(sprig_file_list_is_dir(l, i),
                             name[strlen(name) - 1] == '/');
            strcat(got, name);
            strcat(got, " ");
        }
        free(after);
        after = k ? strdup(sprig_file_list_name(l, k - 1)) : NULL;
        sprig_file_list_free(l);
        if (k < (limit ? limit : 1000)) {
            break;
        }
    }
    free(after);
    assert_string_equal(got, want);
}

static void
test_tree(void **state)
{
    fx *f = *state;
    const char *paths[] = {"/a/x",   "/a/b/y",         "/a/b/z", "/c",
                           "/a-1/q", "/a/b/deep/er/f", "/a/w",   "/b"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        put_gen(f, paths[i], i, 1500);
    }
    for (uint32_t limit = 0; limit <= 3; limit++) {
        list_expect(f, "/", limit, "b c a/ a-1/ ");
        list_expect(f, "/a", limit, "w x b/ ");
        list_expect(f, "/a/b/", limit, "y z deep/ ");
    }
    list_expect(f, "/nothing/here", 0, "");
    sprig_file_list *l;
    SPRIG_OK_(sprig_files_list(f->fs, "/a", NULL, 0, &l));
    assert_int_equal(sprig_file_list_stat(l, 0).length, 1500);
    assert_int_equal(sprig_file_list_stat(l, 2).length, 0);
    sprig_file_list_free(l);
    /* rename: the chunks stay; onto a file replaces it unless exclusive */
    uint64_t chunks = count(f, "files.chunks");
    SPRIG_OK_(sprig_files_rename(f->fs, "/a/x", "/a/b/deep/x", 0));
    expect_file(f, "/a/b/deep/x", 0, 1500);
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_files_read(f->fs, "/a/x", 0, 1, &(sprig_buf){0}));
    assert_int_equal(count(f, "files.chunks"), chunks);
    SPRIG_EXPECT(SPRIG_EEXIST, sprig_files_rename(f->fs, "/a/w", "/c",
                                                  SPRIG_FILES_EXCLUSIVE));
    SPRIG_OK_(sprig_files_rename(f->fs, "/a/w", "/c", 0));
    expect_file(f, "/c", 6, 1500);
    assert_int_equal(count(f, "files.chunks"), chunks - 2);
    list_expect(f, "/a", 0, "b/ ");
    SPRIG_OK_(sprig_files_rename(f->fs, "/c", "/c", 0));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_files_rename(f->fs, "/zz", "/y", 0));
    /* delete everything: no chunk or record is left */
    const char *left[] = {"/a/b/deep/x", "/a/b/y",         "/a/b/z", "/c",
                          "/a-1/q",      "/a/b/deep/er/f", "/b"};
    for (size_t i = 0; i < sizeof left / sizeof *left; i++) {
        SPRIG_OK_(sprig_files_delete(f->fs, left[i]));
        SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_files_delete(f->fs, left[i]));
    }
    list_expect(f, "/", 0, "");
    assert_int_equal(count(f, "files.chunks"), 0);
    assert_int_equal(count(f, "files.pending"), 0);
}

/* A file 24 times the memory bound, written and read through it: Sprig's
 * heap (both ends, in-process) stays under 16 buffers' worth. */
static void
test_larger_than_memory(void **state)
{
    fx *f = *state;
    const size_t txn = 256 * 1024, bound = 16 * txn;
    const uint64_t n = 24 * txn + 12345;
    fx_files(f, 64 * 1024, txn);
    atomic_store(&peak_bytes, atomic_load(&live_bytes));
    size_t base = atomic_load(&live_bytes);
    gen g = {11, 0, n, 0, 0};
    SPRIG_OK_(sprig_files_put_stream(f->fs, "/big", gen_read, &g, NULL, 0));
    size_t put_peak = atomic_load(&peak_bytes) - base;
    atomic_store(&peak_bytes, atomic_load(&live_bytes));
    checker c = {11, 0};
    SPRIG_OK_(sprig_files_read_stream(f->fs, "/big", 0, UINT64_MAX, check_sink,
                                      &c, NULL));
    size_t get_peak = atomic_load(&peak_bytes) - base;
    assert_int_equal(c.pos, n);
    print_message("%s: %llu-byte file, buffer %zu: heap peak %zu (put), "
                  "%zu (read), bound %zu\n",
                  kind, (unsigned long long)n, txn, put_peak, get_peak, bound);
    assert_true(put_peak < bound);
    assert_true(get_peak < bound);
    gen h = {11, n, 3 * txn, 0, 0};
    SPRIG_OK_(sprig_files_append_stream(f->fs, "/big", gen_read, &h));
    c = (checker){11, n - 10};
    SPRIG_OK_(sprig_files_read_stream(f->fs, "/big", n - 10, UINT64_MAX,
                                      check_sink, &c, NULL));
    assert_int_equal(c.pos, n + 3 * txn);
}

/* ---- concurrent writers ------------------------------------------------ */

typedef struct writer_arg {
    fx *f;
    int id;
    uint64_t length;
    int rc;
} writer_arg;

static void *
writer_main(void *p)
{
    writer_arg *a = p;
    char path[32];
    uint64_t r = seed + (uint64_t)a->id;
    snprintf(path, sizeof path, "/w/%d", a->id);
    gen g0 = {(uint64_t)a->id, 0, tu_rand(&r) % (3 * TXN), 0, 0};
    a->length = g0.left;
    a->rc = sprig_files_put_stream(a->f->fs, path, gen_read, &g0, NULL, 0);
    for (int i = 0; a->rc == 0 && i < 12; i++) {
        uint64_t k = tu_rand(&r) % 4 == 0 ? TXN + tu_rand(&r) % (2 * TXN)
                                          : tu_rand(&r) % (2 * CS);
        gen g = {(uint64_t)a->id, a->length, k, 0, 0};
        a->rc = sprig_files_append_stream(a->f->fs, path, gen_read, &g);
        a->length += k;
    }
    return NULL;
}

static void
test_concurrent_writers(void **state)
{
    fx *f = *state;
    enum { N = 4 };
    pthread_t th[N];
    writer_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (writer_arg){f, i, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < N; i++) {
        char path[32];
        snprintf(path, sizeof path, "/w/%d", i);
        SPRIG_OK_(a[i].rc);
        expect_file(f, path, (uint64_t)i, a[i].length);
    }
    assert_int_equal(count(f, "files.pending"), 0);
}

/* ---- reads while the file is rewritten ------------------------------- */

typedef struct rewriter {
    fx *f;
    atomic_bool stop;
    int puts, rc;
} rewriter;

/* Rewrite /r again and again, by put (a new version) or by truncate and
 * append (the same version's chunks rewritten): every state of the file
 * is one repeated byte, its length varying around a few transactions. */
static void *
rewriter_main(void *p)
{
    rewriter *w = p;
    uint8_t *b = malloc(4 * TXN);
    uint64_t r = seed ^ 0x5eed;
    for (int v = 1; w->rc == 0 && !atomic_load(&w->stop); v++) {
        size_t n = TXN / 2 + tu_rand(&r) % (3 * TXN);
        memset(b, v & 0xff, n);
        if (v % 2) { /* in place: the same version's chunks rewritten */
            w->rc = sprig_files_truncate(w->f->fs, "/r", 0);
            w->rc =
                w->rc ? w->rc
                      : sprig_files_append(w->f->fs, "/r", (sprig_bytes){b, n});
        } else {
            w->rc =
                sprig_files_put(w->f->fs, "/r", (sprig_bytes){b, n}, NULL, 0);
        }
        w->puts++;
    }
    free(b);
    return NULL;
}

/* A sink that takes its time, so writes land between a read's batches. */
static int
slow_sink(void *udata, const void *data, size_t len)
{
    usleep(300);
    return sprig_buf_append(udata, data, len);
}

/* Every read returns bytes of one revision: all equal (fetching chunks
 * without checking the file's revision after mixes them). */
static void
test_read_while_rewritten(void **state)
{
    fx *f = *state;
    SPRIG_OK_(sprig_files_put(f->fs, "/r", sprig_str("x"), NULL, 0));
    rewriter w = {f, false, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, rewriter_main, &w), 0);
    sprig_buf b = {0};
    int ok = 0, conflicts = 0;
    time_t t0 = time(NULL);
    for (int i = 0;
         w.rc == 0 && (i < 20 || w.puts < 40) && time(NULL) - t0 < 20; i++) {
        b.len = 0;
        int rc = i % 2 ? sprig_files_read(f->fs, "/r", 0, SIZE_MAX, &b)
                       : sprig_files_read_stream(f->fs, "/r", 0, UINT64_MAX,
                                                 slow_sink, &b, NULL);
        if (rc == SPRIG_ECONFLICT) {
            conflicts++;
            continue;
        }
        SPRIG_OK_(rc);
        for (size_t j = 1; j < b.len; j++) {
            if (((uint8_t *)b.data)[j] != ((uint8_t *)b.data)[0]) {
                fail_msg("a read mixes versions at byte %zu", j);
            }
        }
        ok++;
    }
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    SPRIG_OK_(w.rc);
    print_message("%d reads whole, %d gave up (conflicts), %d puts\n", ok,
                  conflicts, w.puts);
    assert_true(ok > 0);
    sprig_buf_clear(&b);
    assert_int_equal(count(f, "files.pending"), 0);
}

/* ---- the schema helper ----------------------------------------------------
 */

static const sprig_view_def note_views[] = {
    {.name = "by_tag", .version = 1, .json_key = "tag"}};
static const sprig_collection_def app_cols[] = {
    {"notes", SPRIG_ID_U64, 0, note_views, 1}};
static const sprig_schema_def app_schema = {"app", app_cols, 1};

/* sprig_files_schema_add() keeps the base's collections and views and adds
 * the store's three under the prefix; a store opens only on its prefix. */
static void
test_schema_add(void **state)
{
    (void)state;
    sprig_schema_def *s;
    SPRIG_OK_(sprig_files_schema_add(&app_schema, NULL, "media", &s));
    assert_string_equal(s->name, "app");
    assert_int_equal(s->n_collections, 4);
    assert_string_equal(s->collections[0].name, "notes");
    assert_ptr_equal(s->collections[0].views, note_views);
    assert_string_equal(s->collections[1].name, "media.files");
    assert_string_equal(s->collections[2].name, "media.chunks");
    assert_string_equal(s->collections[3].name, "media.pending");
    assert_int_equal(s->collections[3].id_kind, SPRIG_ID_NATURAL);
    sprig_storage *st;
    sprig_db *db;
    sprig_files *fs;
    SPRIG_OK_(sprig_open("mem:", NULL, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, s));
    SPRIG_OK_(sprig_storage_create_database(st, "d", "app", false));
    SPRIG_OK_(sprig_storage_open_database(st, "d", &db));
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_files_open(db, NULL, &fs));
    sprig_files_options o;
    sprig_files_options_init(&o);
    o.prefix = "media";
    SPRIG_OK_(sprig_files_open(db, &o, &fs));
    SPRIG_OK_(sprig_files_put(fs, "/a", sprig_str("x"), NULL, 0));
    SPRIG_OK_(sprig_insert(db, "notes", NULL, sprig_str("{\"tag\":1}"), NULL));
    sprig_files_close(fs);
    o.chunk_size = 8; /* under the minimum */
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_files_open(db, &o, &fs));
    sprig_db_close(db);
    sprig_storage_close(st);
    sprig_files_schema_free(s);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_files_schema_add(NULL, NULL, "", &s));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_files_schema_add(NULL, NULL, "a/b", &s));
    char longp[80];
    memset(longp, 'p', sizeof longp - 1);
    longp[60] = '\0'; /* a valid name, but "<60 bytes>.pending" is not */
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_files_schema_add(NULL, NULL, longp, &s));
}

/* ---- out of memory ------------------------------------------------------ */

/* One write of the OOM sweep: the file /o always holds byte_at(1, pos). */
static int
oom_op(fx *f, int which, uint64_t len)
{
    gen g = {1, which ? 0 : len, which ? 3 * TXN / 2 : 5 * TXN / 2, 0, 0};
    return which ? sprig_files_put_stream(f->fs, "/o", gen_read, &g, NULL, 0)
                 : sprig_files_append_stream(f->fs, "/o", gen_read, &g);
}

/* After a write failed or not: the old or the new length, every byte
 * right, and once gc ran nothing left over. */
static uint64_t
oom_check(fx *f, int which, uint64_t before)
{
    sprig_file_stat st;
    SPRIG_OK_(sprig_files_gc(f->fs, 0, NULL));
    SPRIG_OK_(sprig_files_stat(f->fs, "/o", &st, NULL));
    uint64_t after = which ? 3 * TXN / 2 : before + 5 * TXN / 2;
    assert_true(st.length == before || st.length == after);
    checker c = {1, 0};
    SPRIG_OK_(sprig_files_read_stream(f->fs, "/o", 0, UINT64_MAX, check_sink,
                                      &c, NULL));
    assert_int_equal(c.pos, st.length);
    assert_int_equal(count(f, "files.chunks"), (st.length + CS - 1) / CS);
    assert_int_equal(count(f, "files.pending"), 0);
    return st.length;
}

/* Large appends and puts with their N-th allocation failing, for every
 * N until one runs without reaching it: SPRIG_OK or SPRIG_ENOMEM, never
 * a torn file (local only: a server's threads would fail too). */
static void
test_out_of_memory(void **state)
{
    fx *f = *state;
    if (strcmp(kind, "local") != 0) {
        skip();
    }
    SPRIG_OK_(sprig_files_put(f->fs, "/o", (sprig_bytes){0}, NULL, 0));
    uint64_t len = 0;
    for (int which = 0; which < 2; which++) {
        int failures = 0;
        for (unsigned long n = 1; n < 20000; n++) {
            size_t calls = atomic_load(&alloc_calls);
            sprig__alloc_fail_after(n);
            int rc = oom_op(f, which, len);
            sprig__alloc_fail_after(0);
            /* the failing allocation never reaches the allocator */
            bool reached = rc != 0 || atomic_load(&alloc_calls) - calls >= n;
            if (rc != SPRIG_OK && rc != SPRIG_ENOMEM) {
                fail_msg("allocation %lu: %s (%s)", n, sprig_strerror(rc),
                         sprig_errmsg());
            }
            failures += rc != 0;
            len = oom_check(f, which, len);
            if (!reached) {
                break;
            }
        }
        print_message("%s: %d failed with ENOMEM\n",
                      which ? "large puts" : "large appends", failures);
        assert_true(failures > 0);
    }
}

/* ---- kill -9 during appends -------------------------------------------- */

/* The child: append APPEND bytes at a time to /k through `url`, writing a
 * byte to fd 1 after each. */
static int
child_main(const char *url, const char *cert)
{
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.pinned_cert_path = *cert ? cert : NULL;
    if (strncmp(url, "ws", 2) == 0) { /* a server placement: log in */
        o.user = PLACEMENT_USER;
        o.password = PLACEMENT_PASSWORD;
    }
    sprig_storage *st;
    sprig_db *db;
    sprig_files *fs;
    sprig_files_options fo;
    sprig_files_options_init(&fo);
    fo.chunk_size = CS;
    fo.txn_bytes = TXN;
    if (sprig_open(url, &o, &st) || sprig_storage_open_database(st, "f", &db) ||
        sprig_files_open(db, &fo, &fs)) {
        fprintf(stderr, "child: %s\n", sprig_errmsg());
        return 1;
    }
    sprig_file_stat s;
    if (sprig_files_stat(fs, "/k", &s, NULL)) {
        return 1;
    }
    for (uint64_t len = s.length;; len += APPEND) {
        gen g = {1, len, APPEND, 0, 0};
        int rc = sprig_files_append_stream(fs, "/k", gen_read, &g);
        if (rc) {
            fprintf(stderr, "child: append: %s\n", sprig_errmsg());
            return 1;
        }
        if (write(1, "+", 1) != 1) {
            return 1;
        }
    }
}

/* Run the child, let it finish `done` appends, kill it within a few ms. */
static void
kill_child(const char *url, const char *cert, int done, uint64_t *r)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl("/proc/self/exe", "test_files", "--child", url, cert,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char c;
    for (int i = 0; i < done; i++) {
        assert_int_equal(read(fds[0], &c, 1), 1);
    }
    usleep((useconds_t)(tu_rand(r) % 8000));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    close(fds[0]);
}

/* After a kill: a whole number of appends, every byte right, and (once
 * the dead writer's lock is collected) appends go on. */
/* The file once nothing changes it any more: over a server, a write the
 * killed child had sent may still be applied after the kill (the server
 * runs what it received), so wait until the revision holds for 200 ms. */
static void
settled_stat(sprig_files *fs, sprig_file_stat *st)
{
    sprig_file_stat again;
    SPRIG_OK_(sprig_files_stat(fs, "/k", st, NULL));
    for (int i = 0; i < 100; i++) {
        usleep(200000);
        SPRIG_OK_(sprig_files_stat(fs, "/k", &again, NULL));
        if (again.revision == st->revision) {
            return;
        }
        *st = again;
    }
    fail_msg("the file kept changing after its writer was killed");
}

static uint64_t
check_after_kill(sprig_db *db, sprig_files *fs, uint64_t before, int *inside)
{
    sprig_file_stat st;
    settled_stat(fs, &st);
    uint64_t locks;
    SPRIG_OK_(sprig_count(db, "files.pending", NULL, &locks));
    *inside += locks > 0;
    print_message("length %llu after the kill (was %llu)%s\n",
                  (unsigned long long)st.length, (unsigned long long)before,
                  locks ? ", killed inside an append (its lock is left)" : "");
    assert_int_equal(st.length % APPEND, 0);
    assert_true(st.length >= before);
    checker c = {1, 0};
    SPRIG_OK_(
        sprig_files_read_stream(fs, "/k", 0, UINT64_MAX, check_sink, &c, NULL));
    assert_int_equal(c.pos, st.length);
    /* the dead writer's lock and the chunks it wrote past the length go */
    SPRIG_OK_(sprig_files_gc(fs, 0, NULL));
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "files.pending", NULL, &n));
    assert_int_equal(n, 0);
    SPRIG_OK_(sprig_count(db, "files.chunks", NULL, &n));
    assert_int_equal(n, (st.length + CS - 1) / CS);
    return st.length;
}

static void
test_kill_during_append(void **state)
{
    (void)state;
    placement p = {0};
    char url[1300], cert[1300] = "";
    uint64_t r = seed, len = 0;
    bool local = strcmp(kind, "local") == 0;
    placement_open(&p, kind, root, schema);
    SPRIG_OK_(sprig_storage_create_database(p.st, "f", "fstest", false));
    sprig_db *db;
    sprig_files *fs;
    sprig_files_options fo;
    sprig_files_options_init(&fo);
    fo.chunk_size = CS;
    fo.txn_bytes = TXN;
    SPRIG_OK_(sprig_storage_open_database(p.st, "f", &db));
    SPRIG_OK_(sprig_files_open(db, &fo, &fs));
    SPRIG_OK_(sprig_files_put(fs, "/k", (sprig_bytes){0}, NULL, 0));
    if (local) {
        snprintf(url, sizeof url, "%s", p.dir);
        sprig_files_close(fs);
        sprig_db_close(db);
        placement_close(&p); /* the child takes the storage's lock */
    } else {
        snprintf(url, sizeof url, "%s://127.0.0.1:%d",
                 strcmp(kind, "wss") == 0 ? "wss" : "ws",
                 sprig_server_ws_port(p.srv));
        if (strcmp(kind, "wss") == 0) {
            snprintf(cert, sizeof cert, "%s/cert.pem", root);
        }
    }
    /* at least four rounds, until two kills landed inside an append */
    int inside = 0, round;
    for (round = 0; round < 4 || (inside < 2 && round < 16); round++) {
        kill_child(url, cert, 1 + (int)(tu_rand(&r) % 3), &r);
        sprig_storage *st = NULL;
        if (local) {
            SPRIG_OK_(sprig_open(url, NULL, &st));
            SPRIG_OK_(sprig_storage_open_database(st, "f", &db));
            SPRIG_OK_(sprig_files_open(db, &fo, &fs));
        }
        len = check_after_kill(db, fs, len, &inside);
        if (local) {
            sprig_files_close(fs);
            sprig_db_close(db);
            sprig_storage_close(st);
        }
    }
    print_message("%d rounds, %d killed inside an append\n", round, inside);
    assert_true(inside > 0);
    if (!local) {
        sprig_files_close(fs);
        sprig_db_close(db);
        placement_close(&p);
    }
}

#define FILE_TEST(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(int argc, char **argv)
{
    SPRIG_OK_(sprig_replace_allocator(c_malloc, c_realloc, c_calloc, c_free));
    if (argc == 4 && strcmp(argv[1], "--child") == 0) {
        return child_main(argv[2], argv[3]);
    }
    seed = tu_seed();
    root = tu_tmpdir("files");
    SPRIG_OK_(sprig_files_schema_add(NULL, "fstest", NULL, &schema));
    const struct CMUnitTest tests[] = {
        FILE_TEST(test_sizes),
        FILE_TEST(test_metadata),
        FILE_TEST(test_chunk_boundaries),
        FILE_TEST(test_append_truncate),
        FILE_TEST(test_failed_writes),
        FILE_TEST(test_tree),
        FILE_TEST(test_larger_than_memory),
        FILE_TEST(test_concurrent_writers),
        FILE_TEST(test_read_while_rewritten),
        FILE_TEST(test_out_of_memory),
        cmocka_unit_test(test_schema_add),
        cmocka_unit_test(test_kill_during_append),
    };
    const char *kinds[] = {"local", "ws", "wss"};
    int failed = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        kind = kinds[i];
        printf("== placement: %s\n", kind);
        failed += cmocka_run_group_tests_name(kind, tests, NULL, NULL);
    }
    sprig_files_schema_free(schema);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed ? 1 : 0;
}
