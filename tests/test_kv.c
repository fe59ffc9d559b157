/*
 * test_kv.c -- the key-value store (F6): argument checks and limits, every
 * set option and status, get (and delete), increments and decrements with
 * their type, overflow and saturation rules, delete, listing by prefix
 * with limits and continuation, expiry (on read everywhere, by the
 * background sweeper through the index, across a restart) driven by a
 * test clock, atomic increments from 8 threads, and a randomised run
 * checked against an in-memory model (seed printed; SPRIG_SEED=N replays).
 * Persistence modes and crashes are in test_kv_persist.c.
 */
#include "testutil.h"

#include "local/local.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"kvtest", cols, 1};

#define T0 1700000000000ull
static _Atomic uint64_t fake_now = T0;
static const char *root;
static uint64_t seed;

static uint64_t
fake_clock(void *udata)
{
    (void)udata;
    return atomic_load(&fake_now);
}

typedef struct fx {
    sprig_storage *st;
    sprig_db *db;
    char path[1200];
    sprig_kv_persistence_mode mode;
} fx;

static void
fx_open(fx *f)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = f->path;
    o.durability = SPRIG_DURABILITY_NONE; /* fsync is test_kv_persist's */
    o.kv_persistence.mode = f->mode;
    o.clock_ms = fake_clock;
    SPRIG_OK_(sprig_storage_open(&o, &f->st));
    SPRIG_OK_(sprig_storage_register_schema(f->st, &schema));
    SPRIG_OK_(sprig_storage_create_database(f->st, "db", "kvtest", true));
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
setup(void **state)
{
    static int n;
    fx *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/s%d", root, n++);
    atomic_store(&fake_now, T0);
    fx_open(f);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fx *f = *state;
    fx_close(f);
    free(f);
    return 0;
}

/* The index invariant holds; returns the number of stored records. */
static uint64_t
verify(sprig_db *db)
{
    uint64_t records, indexed;
    SPRIG_OK_(sprig__kv_verify(db, &records, &indexed));
    return records;
}

static sprig_value
str_value(const char *s)
{
    return sprig_value_of_bytes(sprig_str(s));
}

static void
expect_bytes(sprig_db *db, const char *ns, const char *key, const char *want)
{
    sprig_value v;
    SPRIG_OK_(sprig_kv_get(db, ns, key, false, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_BYTES);
    assert_true(tu_bytes_eq(v.bytes, want));
    sprig_value_clear(&v);
}

static void
expect_i64(sprig_db *db, const char *ns, const char *key, int64_t want)
{
    sprig_value v;
    SPRIG_OK_(sprig_kv_get(db, ns, key, false, &v));
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, want);
}

/* ---- names, limits, arguments ----------------------------------------- */

static void
test_arguments(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value v = str_value("x"), out;
    sprig_kv_status st;
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(NULL, NULL, "k", &v, NULL, NULL, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(db, NULL, NULL, &v, NULL, &st, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_set(db, NULL, "", &v, NULL, &st, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(db, NULL, "k", NULL, NULL, &st, NULL));
    sprig_value bad = v;
    bad.kind = (sprig_value_kind)7;
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(db, NULL, "k", &bad, NULL, &st, NULL));
    bad = sprig_value_of_bytes((sprig_bytes){NULL, 3});
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(db, NULL, "k", &bad, NULL, &st, NULL));
    sprig_kv_set_opts so = {.check = (sprig_kv_check)9};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_set(db, NULL, "k", &v, &so, &st, NULL));
    so = (sprig_kv_set_opts){.expire_at_ms = T0 + 5, .expire_in_ms = 5};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_set(db, NULL, "k", &v, &so, &st, NULL));
    so = (sprig_kv_set_opts){.return_previous = true};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_set(db, NULL, "k", &v, &so, &st, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_get(db, NULL, "", false, &out));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_kv_delete(db, NULL, NULL, &st));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_list_keys(db, NULL, NULL, NULL, 0, NULL));
    assert_int_equal(verify(db), 0);
    assert_string_equal(sprig_strerror(SPRIG_ERANGE), "out of range");
}

static void
test_key_limits(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    char ns[200], key[400];
    memset(ns, 'n', sizeof ns - 1);
    ns[sizeof ns - 1] = 0;
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = 0;
    key[SPRIG_KV_KEY_MAX - strlen(ns)] = 0; /* exactly at the limit */
    sprig_value v = str_value("fits"), one = sprig_value_of_i64(1);
    sprig_kv_status st;
    SPRIG_OK_(sprig_kv_set(db, ns, key, &v, NULL, &st, NULL));
    assert_int_equal(st, SPRIG_KV_INSERTED);
    expect_bytes(db, ns, key, "fits");
    sprig_kv_set_opts so = {.expire_at_ms = T0 + 10}; /* index key too */
    SPRIG_OK_(sprig_kv_set(db, ns, key, &v, &so, &st, NULL));
    key[strlen(key)] = 'k'; /* one byte over */
    key[SPRIG_KV_KEY_MAX - strlen(ns) + 1] = 0;
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_kv_set(db, ns, key, &v, NULL, &st, NULL));
    assert_non_null(strstr(sprig_errmsg(), "500"));
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_kv_get(db, ns, key, false, NULL));
    SPRIG_EXPECT(SPRIG_ETOOBIG,
                 sprig_kv_increment(db, ns, key, &one, false, NULL));
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_kv_delete(db, ns, key, &st));
    sprig_kv_key_list *l;
    SPRIG_EXPECT(SPRIG_ETOOBIG, sprig_kv_list_keys(db, ns, key, NULL, 0, &l));
    assert_int_equal(verify(db), 1);
}

/* NULL and "" are one namespace; namespaces never see each other's keys,
 * even when one name prefixes another. */
static void
test_namespaces(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value a = str_value("default"), b = str_value("in-a"),
                c = str_value("in-ab");
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &a, NULL, NULL, NULL));
    SPRIG_OK_(sprig_kv_set(db, "a", "k", &b, NULL, NULL, NULL));
    SPRIG_OK_(sprig_kv_set(db, "ab", "k", &c, NULL, NULL, NULL));
    SPRIG_OK_(sprig_kv_set(db, "a", "bk", &b, NULL, NULL, NULL));
    expect_bytes(db, "", "k", "default");
    expect_bytes(db, NULL, "k", "default");
    expect_bytes(db, "a", "k", "in-a");
    expect_bytes(db, "ab", "k", "in-ab");
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, "b", "k", false, NULL));
    sprig_kv_key_list *l;
    SPRIG_OK_(sprig_kv_list_keys(db, "a", NULL, NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 2);
    assert_string_equal(sprig_kv_key_list_key(l, 0), "bk");
    assert_string_equal(sprig_kv_key_list_key(l, 1), "k");
    assert_null(sprig_kv_key_list_key(l, 2));
    assert_null(sprig_kv_key_list_value(l, 2));
    sprig_kv_key_list_free(l);
    SPRIG_OK_(sprig_kv_list_keys(db, NULL, "", NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 1);
    sprig_kv_key_list_free(l);
}

/* ---- set, get, delete ------------------------------------------------- */

static void
test_set_statuses(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value v1 = str_value("one"), v2 = str_value("two"), prev;
    sprig_kv_status st;
    sprig_kv_set_opts vacant = {.check = SPRIG_KV_ONLY_IF_VACANT};
    sprig_kv_set_opts present = {.check = SPRIG_KV_ONLY_IF_PRESENT,
                                 .return_previous = true};
    SPRIG_OK_(sprig_kv_set(db, "n", "k", &v1, &present, &st, &prev));
    assert_int_equal(st, SPRIG_KV_NOT_CHANGED);
    assert_int_equal(prev.kind, SPRIG_VALUE_NONE); /* held nothing */
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, "n", "k", false, NULL));
    SPRIG_OK_(sprig_kv_set(db, "n", "k", &v1, &vacant, &st, &prev));
    assert_int_equal(st, SPRIG_KV_INSERTED);
    SPRIG_OK_(sprig_kv_set(db, "n", "k", &v2, &vacant, &st, &prev));
    assert_int_equal(st, SPRIG_KV_NOT_CHANGED);
    assert_true(tu_bytes_eq(prev.bytes, "one")); /* returned anyway */
    sprig_value_clear(&prev);
    expect_bytes(db, "n", "k", "one");
    SPRIG_OK_(sprig_kv_set(db, "n", "k", &v2, &present, &st, &prev));
    assert_int_equal(st, SPRIG_KV_UPDATED);
    assert_true(tu_bytes_eq(prev.bytes, "one"));
    sprig_value_clear(&prev);
    sprig_value_clear(&prev); /* twice is harmless */
    sprig_value n = sprig_value_of_f64(2.5);
    SPRIG_OK_(sprig_kv_set(db, "n", "k", &n, NULL, &st, &prev));
    assert_int_equal(st, SPRIG_KV_UPDATED);
    assert_true(tu_bytes_eq(prev.bytes, "two"));
    sprig_value_clear(&prev);
    sprig_value u = sprig_value_of_u64(UINT64_MAX);
    SPRIG_OK_(sprig_kv_set(db, "n", "k", &u, NULL, NULL, &prev));
    assert_int_equal(prev.kind, SPRIG_VALUE_F64);
    assert_true(prev.num.f64 == 2.5);
    SPRIG_OK_(sprig_kv_get(db, "n", "k", false, &prev));
    assert_int_equal(prev.kind, SPRIG_VALUE_U64);
    assert_true(prev.num.u64 == UINT64_MAX);
    assert_int_equal(verify(db), 1);
}

static void
test_get_delete(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value v = str_value("payload"), empty = str_value(""), out;
    sprig_kv_status st;
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &v, NULL, NULL, NULL));
    SPRIG_OK_(sprig_kv_get(db, NULL, "k", false, NULL)); /* exists */
    SPRIG_OK_(sprig_kv_get(db, NULL, "k", true, &out));
    assert_true(tu_bytes_eq(out.bytes, "payload"));
    sprig_value_clear(&out);
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, NULL, "k", true, &out));
    assert_int_equal(out.kind, SPRIG_VALUE_NONE);
    assert_null(out.owned_);
    sprig_value none = out; /* not an input */
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_set(db, NULL, "k", &none, NULL, NULL, NULL));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, NULL, "k", false, &out));
    SPRIG_OK_(sprig_kv_set(db, NULL, "e", &empty, NULL, &st, NULL));
    SPRIG_OK_(sprig_kv_get(db, NULL, "e", false, &out));
    assert_int_equal(out.bytes.len, 0);
    sprig_value_clear(&out);
    SPRIG_OK_(sprig_kv_delete(db, NULL, "e", &st));
    assert_int_equal(st, SPRIG_KV_DELETED);
    SPRIG_OK_(sprig_kv_delete(db, NULL, "e", &st));
    assert_int_equal(st, SPRIG_KV_NOT_CHANGED);
    SPRIG_OK_(sprig_kv_delete(db, NULL, "e", NULL));
    /* a large value */
    size_t big = 3u << 20;
    uint8_t *p = malloc(big);
    for (size_t i = 0; i < big; i++) {
        p[i] = (uint8_t)(i * 7);
    }
    v = sprig_value_of_bytes((sprig_bytes){p, big});
    SPRIG_OK_(sprig_kv_set(db, NULL, "big", &v, NULL, NULL, NULL));
    SPRIG_OK_(sprig_kv_get(db, NULL, "big", true, &out));
    assert_int_equal(out.bytes.len, big);
    assert_memory_equal(out.bytes.data, p, big);
    sprig_value_clear(&out);
    free(p);
    assert_int_equal(verify(db), 0);
}

/* ---- increments ------------------------------------------------------- */

static void
step_ok(sprig_db *db, const char *key, sprig_value amt, bool dec, bool sat,
        sprig_value *out)
{
    if (dec) {
        SPRIG_OK_(sprig_kv_decrement(db, "c", key, &amt, sat, out));
    } else {
        SPRIG_OK_(sprig_kv_increment(db, "c", key, &amt, sat, out));
    }
}

static void
test_increment_integers(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value out;
    step_ok(db, "i", sprig_value_of_i64(5), false, false, &out);
    assert_int_equal(out.kind, SPRIG_VALUE_I64);
    assert_int_equal(out.num.i64, 5);
    step_ok(db, "i", sprig_value_of_u64(10), true, false, &out); /* mixed */
    assert_int_equal(out.kind, SPRIG_VALUE_I64);
    assert_int_equal(out.num.i64, -5);
    step_ok(db, "d", sprig_value_of_i64(3), true, false, &out); /* missing */
    assert_int_equal(out.num.i64, -3);
    sprig_value big = sprig_value_of_i64(INT64_MAX - 1);
    SPRIG_OK_(sprig_kv_set(db, "c", "i", &big, NULL, NULL, NULL));
    sprig_value two = sprig_value_of_u64(2);
    SPRIG_EXPECT(SPRIG_ERANGE,
                 sprig_kv_increment(db, "c", "i", &two, false, &out));
    expect_i64(db, "c", "i", INT64_MAX - 1); /* unchanged */
    step_ok(db, "i", two, false, true, &out);
    assert_true(out.num.i64 == INT64_MAX);
    step_ok(db, "i", sprig_value_of_u64(UINT64_MAX), true, true, &out);
    assert_true(out.num.i64 == INT64_MIN); /* clamped below */
    step_ok(db, "i", sprig_value_of_i64(-1), true, false, &out);
    assert_true(out.num.i64 == INT64_MIN + 1);
    /* u64 */
    step_ok(db, "u", sprig_value_of_u64(1), false, false, &out);
    assert_int_equal(out.kind, SPRIG_VALUE_U64);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_decrement(db, "c", "u", &(sprig_value){0}, false,
                                    NULL)); /* bytes amount */
    sprig_value neg = sprig_value_of_i64(-2);
    SPRIG_EXPECT(SPRIG_ERANGE,
                 sprig_kv_increment(db, "c", "u", &neg, false, &out));
    step_ok(db, "u", neg, false, true, &out);
    assert_true(out.kind == SPRIG_VALUE_U64 && out.num.u64 == 0);
    step_ok(db, "u", sprig_value_of_i64(-7), true, false, &out);
    assert_true(out.num.u64 == 7);
    sprig_value one = sprig_value_of_u64(1);
    SPRIG_EXPECT(SPRIG_ERANGE,
                 sprig_kv_decrement(db, "c", "nu", &one, false, &out));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, "c", "nu", false, NULL));
    step_ok(db, "nu", one, true, true, &out);
    assert_true(out.kind == SPRIG_VALUE_U64 && out.num.u64 == 0);
    sprig_value max = sprig_value_of_u64(UINT64_MAX);
    step_ok(db, "nu", max, false, false, &out);
    SPRIG_EXPECT(SPRIG_ERANGE,
                 sprig_kv_increment(db, "c", "nu", &one, false, &out));
    step_ok(db, "nu", one, false, true, &out);
    assert_true(out.num.u64 == UINT64_MAX);
    step_ok(db, "nu", sprig_value_of_i64(0), false, false, NULL);
    assert_int_equal(verify(db), 4);
}

static void
test_increment_floats_and_errors(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value out;
    step_ok(db, "f", sprig_value_of_f64(0.5), false, false, &out);
    assert_int_equal(out.kind, SPRIG_VALUE_F64);
    step_ok(db, "f", sprig_value_of_i64(2), false, false, &out);
    assert_true(out.num.f64 == 2.5);
    step_ok(db, "f", sprig_value_of_u64(1), true, false, &out);
    assert_true(out.num.f64 == 1.5);
    sprig_value huge = sprig_value_of_f64(DBL_MAX);
    SPRIG_OK_(sprig_kv_set(db, "c", "f", &huge, NULL, NULL, NULL));
    SPRIG_EXPECT(SPRIG_ERANGE,
                 sprig_kv_increment(db, "c", "f", &huge, false, &out));
    step_ok(db, "f", huge, false, true, &out);
    assert_true(out.num.f64 == DBL_MAX);
    step_ok(db, "f", sprig_value_of_f64(-DBL_MAX), false, false, &out);
    assert_true(out.num.f64 == 0.0);
    /* errors change nothing */
    sprig_value nan = sprig_value_of_f64(NAN),
                inf = sprig_value_of_f64(INFINITY);
    sprig_value bytes = str_value("1"), half = sprig_value_of_f64(0.5);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_increment(db, "c", "f", &nan, false, &out));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_increment(db, "c", "f", &inf, true, &out));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_increment(db, "c", "f", &bytes, false, &out));
    SPRIG_OK_(sprig_kv_set(db, "c", "s", &bytes, NULL, NULL, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_increment(db, "c", "s", &half, false, &out));
    assert_non_null(strstr(sprig_errmsg(), "bytes"));
    expect_bytes(db, "c", "s", "1");
    sprig_value i = sprig_value_of_i64(1);
    SPRIG_OK_(sprig_kv_set(db, "c", "i", &i, NULL, NULL, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_increment(db, "c", "i", &half, false, &out));
    expect_i64(db, "c", "i", 1);
    assert_int_equal(verify(db), 3);
}

/* ---- expiry ----------------------------------------------------------- */

static void
test_expiry_on_read(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value v = str_value("v"), w = str_value("w"), out;
    sprig_kv_status st;
    sprig_kv_set_opts so = {.expire_at_ms = T0 + 100};
    SPRIG_OK_(sprig_kv_set(db, NULL, "a", &v, &so, &st, NULL));
    so.expire_in_ms = 100;
    so.expire_at_ms = 0;
    SPRIG_OK_(sprig_kv_set(db, NULL, "b", &v, &so, &st, NULL));
    SPRIG_OK_(sprig_kv_set(db, NULL, "c", &v, &so, &st, NULL));
    SPRIG_OK_(sprig_kv_set(db, NULL, "d", &v, &so, &st, NULL));
    SPRIG_OK_(sprig_kv_set(db, NULL, "e", &v, &so, &st, NULL));
    sprig_kv_key_list *l;
    SPRIG_OK_(sprig_kv_list_keys(db, NULL, NULL, NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 5);
    assert_true(sprig_kv_key_list_expire_at(l, 0) == T0 + 100);
    assert_true(sprig_kv_key_list_expire_at(l, 1) == T0 + 100);
    sprig_kv_key_list_free(l);
    atomic_store(&fake_now, T0 + 99);
    expect_bytes(db, NULL, "a", "v");
    atomic_store(&fake_now, T0 + 100); /* due: gone for every operation */
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, NULL, "a", false, &out));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, NULL, "a", true, &out));
    SPRIG_OK_(sprig_kv_list_keys(db, NULL, NULL, NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 0);
    sprig_kv_key_list_free(l);
    sprig_kv_set_opts present = {.check = SPRIG_KV_ONLY_IF_PRESENT};
    SPRIG_OK_(sprig_kv_set(db, NULL, "b", &w, &present, &st, NULL));
    assert_int_equal(st, SPRIG_KV_NOT_CHANGED);
    sprig_kv_set_opts vacant = {.check = SPRIG_KV_ONLY_IF_VACANT};
    SPRIG_OK_(sprig_kv_set(db, NULL, "b", &w, &vacant, &st, NULL));
    assert_int_equal(st, SPRIG_KV_INSERTED);
    sprig_value one = sprig_value_of_i64(1);
    SPRIG_OK_(sprig_kv_increment(db, NULL, "c", &one, false, &out));
    assert_int_equal(out.num.i64, 1); /* from 0, not from the bytes */
    SPRIG_OK_(sprig_kv_delete(db, NULL, "d", &st));
    assert_int_equal(st, SPRIG_KV_NOT_CHANGED);
    SPRIG_OK_(sprig_kv_set(db, NULL, "e", &w, NULL, &st, NULL));
    assert_int_equal(st, SPRIG_KV_INSERTED);
    /* b, c and e live on without an expiry; the get-and-delete of a and
     * the delete of d removed the expired records they met */
    SPRIG_OK_(sprig_kv_list_keys(db, NULL, NULL, NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 3);
    assert_true(sprig_kv_key_list_expire_at(l, 0) == 0);
    sprig_kv_key_list_free(l);
    assert_int_equal(verify(db), 3);
}

static void
test_expiry_options(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value v = str_value("v"), prev;
    sprig_kv_status st;
    sprig_kv_set_opts at = {.expire_at_ms = T0 + 50};
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &v, &at, &st, NULL));
    sprig_kv_set_opts keep = {.expire_at_ms = T0 + 500,
                              .keep_expiration = true};
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &v, &keep, &st, NULL));
    assert_int_equal(st, SPRIG_KV_UPDATED);
    SPRIG_OK_(sprig_kv_set(db, NULL, "new", &v, &keep, &st, NULL));
    sprig_kv_key_list *l;
    SPRIG_OK_(sprig_kv_list_keys(db, NULL, NULL, NULL, 0, &l));
    assert_string_equal(sprig_kv_key_list_key(l, 0), "k");
    assert_true(sprig_kv_key_list_expire_at(l, 0) == T0 + 50);  /* kept */
    assert_true(sprig_kv_key_list_expire_at(l, 1) == T0 + 500); /* new key */
    sprig_kv_key_list_free(l);
    /* a plain set drops the expiry; keep on a key without one keeps none */
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &v, NULL, &st, NULL));
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &v, &keep, &st, NULL));
    /* an increment keeps the expiry */
    sprig_value one = sprig_value_of_u64(1);
    SPRIG_OK_(sprig_kv_set(db, NULL, "n", &one, &at, &st, NULL));
    SPRIG_OK_(sprig_kv_increment(db, NULL, "n", &one, false, NULL));
    SPRIG_OK_(sprig_kv_list_keys(db, NULL, NULL, NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 3);
    assert_true(sprig_kv_key_list_expire_at(l, 0) == 0);
    assert_true(sprig_kv_key_list_expire_at(l, 1) == T0 + 50);
    assert_true(sprig_kv_key_list_value(l, 1)->num.u64 == 2);
    sprig_kv_key_list_free(l);
    /* an expiry already reached deletes, as SET EXAT does */
    sprig_kv_set_opts past = {.expire_at_ms = T0, .return_previous = true};
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &v, &past, &st, &prev));
    assert_int_equal(st, SPRIG_KV_DELETED);
    assert_true(tu_bytes_eq(prev.bytes, "v"));
    sprig_value_clear(&prev);
    SPRIG_OK_(sprig_kv_set(db, NULL, "k", &v, &past, &st, &prev));
    assert_int_equal(st, SPRIG_KV_NOT_CHANGED);
    assert_int_equal(prev.kind, SPRIG_VALUE_NONE);
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, NULL, "k", false, NULL));
    assert_int_equal(verify(db), 2);
}

static bool
wait_for(bool (*cond)(sprig_db *, uint64_t), sprig_db *db, uint64_t arg)
{
    for (int i = 0; i < 1000; i++) { /* up to 10 s */
        if (cond(db, arg)) {
            return true;
        }
        sprig__kv_wake(db);
        usleep(10000);
    }
    return cond(db, arg);
}

static bool
records_are(sprig_db *db, uint64_t n)
{
    return verify(db) == n;
}

static bool
next_due_is(sprig_db *db, uint64_t at)
{
    sprig__kv_stats ks;
    sprig__kv_stats_get(db, &ks);
    return ks.next_due == at;
}

/* Due keys are swept, in expiry order, without touching the others; the
 * background thread does it by itself once the clock passes. */
static void
test_sweeper(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    sprig_value v = str_value("v");
    char key[32];
    for (int i = 0; i < 2500; i++) { /* more than one sweep batch */
        snprintf(key, sizeof key, "k%04d", i);
        sprig_kv_set_opts so = {.expire_at_ms = T0 + 1000 + (uint64_t)i};
        SPRIG_OK_(
            sprig_kv_set(db, "x", key, &v, i % 5 ? &so : NULL, NULL, NULL));
    }
    assert_int_equal(verify(db), 2500);
    sprig__kv_stats ks;
    sprig__kv_stats_get(db, &ks);
    assert_true(ks.housekeeper);
    assert_true(ks.next_due == T0 + 1001);
    uint64_t removed;
    SPRIG_OK_(sprig__kv_sweep_now(db, &removed));
    assert_int_equal(removed, 0);
    atomic_store(&fake_now, T0 + 1000 + 1999);    /* keys 0..1999 are due */
    SPRIG_OK_(sprig__kv_sweep_now(db, &removed)); /* the thread may help */
    assert_true(removed <= 1600);
    assert_int_equal(verify(db), 900);
    sprig__kv_stats_get(db, &ks);
    assert_int_equal(ks.swept, 1600); /* 4 of each 5 had an expiry */
    assert_true(wait_for(next_due_is, db, T0 + 3001)); /* first not due */
    expect_bytes(db, "x", "k2001", "v");
    expect_bytes(db, "x", "k0005", "v"); /* never expires */
    atomic_store(&fake_now, T0 + 10000); /* the thread sweeps the rest */
    assert_true(wait_for(records_are, db, 500));
    /* the thread notes what is due next after its deletes committed */
    assert_true(wait_for(next_due_is, db, UINT64_MAX));
    sprig__kv_stats_get(db, &ks);
    assert_true(ks.swept >= 2000);
}

/* Expirations are stored: after a restart, due keys are invisible and the
 * sweeper started at open removes them; others keep their expiry. */
static void
test_expiry_restart(void **state)
{
    fx *f = *state;
    sprig_value v = str_value("v");
    sprig_kv_set_opts soon = {.expire_at_ms = T0 + 100};
    sprig_kv_set_opts later = {.expire_at_ms = T0 + 100000};
    SPRIG_OK_(sprig_kv_set(f->db, NULL, "soon", &v, &soon, NULL, NULL));
    SPRIG_OK_(sprig_kv_set(f->db, NULL, "later", &v, &later, NULL, NULL));
    SPRIG_OK_(sprig_kv_set(f->db, NULL, "never", &v, NULL, NULL, NULL));
    fx_close(f);
    atomic_store(&fake_now, T0 + 200);
    fx_open(f);
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_kv_get(f->db, NULL, "soon", false, NULL));
    assert_true(wait_for(records_are, f->db, 2));
    sprig_kv_key_list *l;
    SPRIG_OK_(sprig_kv_list_keys(f->db, NULL, NULL, NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 2);
    assert_string_equal(sprig_kv_key_list_key(l, 0), "later");
    assert_true(sprig_kv_key_list_expire_at(l, 0) == T0 + 100000);
    assert_true(sprig_kv_key_list_expire_at(l, 1) == 0);
    sprig_kv_key_list_free(l);
}

/* ---- listing ---------------------------------------------------------- */

static void
test_list_pages(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    char key[32];
    int n = 0;
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "%s%03d", i % 3 ? "user:" : "item:", i);
        sprig_value v = sprig_value_of_i64(i);
        SPRIG_OK_(sprig_kv_set(db, "ns", key, &v, NULL, NULL, NULL));
        n += i % 3 != 0;
    }
    sprig_value z = sprig_value_of_i64(-1);
    SPRIG_OK_(sprig_kv_set(db, "ns", "user", &z, NULL, NULL, NULL));
    SPRIG_OK_(sprig_kv_set(db, "ns", "users\xff", &z, NULL, NULL, NULL));
    SPRIG_OK_(sprig_kv_set(db, "ns2", "user:000", &z, NULL, NULL, NULL));
    /* pages of 7 over prefix "user:" visit each key once, in order */
    char after[64] = "";
    int seen = 0;
    for (;;) {
        sprig_kv_key_list *l;
        SPRIG_OK_(
            sprig_kv_list_keys(db, "ns", "user:", seen ? after : NULL, 7, &l));
        size_t c = sprig_kv_key_list_count(l);
        for (size_t i = 0; i < c; i++) {
            const char *k = sprig_kv_key_list_key(l, i);
            assert_true(strncmp(k, "user:", 5) == 0);
            assert_true(seen == 0 || strcmp(k, after) > 0);
            assert_int_equal(sprig_kv_key_list_value(l, i)->num.i64,
                             atoi(k + 5));
            snprintf(after, sizeof after, "%s", k);
            seen++;
        }
        sprig_kv_key_list_free(l);
        if (c < 7) {
            break;
        }
    }
    assert_int_equal(seen, n);
    sprig_kv_key_list *l;
    SPRIG_OK_(sprig_kv_list_keys(db, "ns", "user", NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), n + 2);
    assert_string_equal(sprig_kv_key_list_key(l, 0), "user");
    assert_string_equal(sprig_kv_key_list_key(l, n + 1), "users\xff");
    sprig_kv_key_list_free(l);
    /* `after` before the prefix starts at the prefix; past it, nothing */
    SPRIG_OK_(sprig_kv_list_keys(db, "ns", "user:", "a", 1, &l));
    assert_string_equal(sprig_kv_key_list_key(l, 0), "user:001");
    sprig_kv_key_list_free(l);
    SPRIG_OK_(sprig_kv_list_keys(db, "ns", "user:", "user:~", 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 0);
    sprig_kv_key_list_free(l);
    SPRIG_OK_(sprig_kv_list_keys(db, "ns", NULL, "user:299", 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 1); /* "users\xff" */
    sprig_kv_key_list_free(l);
    SPRIG_OK_(sprig_kv_list_keys(db, "nothing", NULL, NULL, 0, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 0);
    sprig_kv_key_list_free(l);
}

/* ---- threads ---------------------------------------------------------- */

#define THREADS 8

typedef struct incr_arg {
    sprig_db *db;
    int n, id;
} incr_arg;

static void *
incr_thread(void *p)
{
    incr_arg *a = p;
    sprig_value one = sprig_value_of_i64(1), u = sprig_value_of_u64(2);
    char own[16];
    snprintf(own, sizeof own, "t%d", a->id);
    for (int i = 0; i < a->n; i++) {
        if (sprig_kv_increment(a->db, "ctr", "shared", &one, false, NULL) ||
            sprig_kv_increment(a->db, "ctr", own, &u, false, NULL) ||
            (i % 16 == 0 &&
             sprig_kv_get(a->db, "ctr", "shared", false, NULL))) {
            fprintf(stderr, "thread %d: %s\n", a->id, sprig_errmsg());
            return (void *)1;
        }
    }
    return NULL;
}

static void
run_threads(sprig_db *db, int per_thread)
{
    pthread_t t[THREADS];
    incr_arg a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (incr_arg){db, per_thread, i};
        assert_int_equal(pthread_create(&t[i], NULL, incr_thread, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    expect_i64(db, "ctr", "shared", (int64_t)THREADS * per_thread);
    for (int i = 0; i < THREADS; i++) {
        char own[16];
        sprig_value v;
        snprintf(own, sizeof own, "t%d", i);
        SPRIG_OK_(sprig_kv_get(db, "ctr", own, false, &v));
        assert_true(v.kind == SPRIG_VALUE_U64 &&
                    v.num.u64 == 2u * (unsigned)per_thread);
    }
}

static void
test_threads_increment(void **state)
{
    fx *f = *state;
    run_threads(f->db, 1500);
    uint64_t batches, requests;
    sprig__db_writer_stats(f->db, &batches, &requests);
    print_message("8 threads: %llu requests in %llu batches\n",
                  (unsigned long long)requests, (unsigned long long)batches);
    /* the same in lazy mode, on a fresh storage */
    fx_close(f);
    snprintf(f->path + strlen(f->path), 16, "-lazy");
    f->mode = SPRIG_KV_LAZY;
    fx_open(f);
    run_threads(f->db, 1500);
}

/* ---- a randomised run against a model --------------------------------- */

#define MKEYS 12

typedef struct model_key {
    bool live;
    sprig_value_kind kind;
    int64_t i; /* numbers are kept as i64 in this model */
    char s[16];
    uint64_t exp;
} model_key;

static bool
m_live(model_key *m, uint64_t now)
{
    if (m->live && m->exp && m->exp <= now) {
        m->live = false;
    }
    return m->live;
}

static void
check_model_key(sprig_db *db, const char *ns, const char *key, model_key *m)
{
    sprig_value v;
    if (!m_live(m, atomic_load(&fake_now))) {
        SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, ns, key, false, &v));
        return;
    }
    SPRIG_OK_(sprig_kv_get(db, ns, key, false, &v));
    assert_int_equal(v.kind, m->kind);
    if (m->kind == SPRIG_VALUE_BYTES) {
        assert_true(tu_bytes_eq(v.bytes, m->s));
    } else {
        assert_int_equal(v.num.i64, m->i);
    }
    sprig_value_clear(&v);
}

static void
random_step(sprig_db *db, uint64_t *rs, model_key *model)
{
    int k = (int)(tu_rand(rs) % MKEYS);
    model_key *m = &model[k];
    char key[8], s[16];
    snprintf(key, sizeof key, "k%d", k % (MKEYS / 2));
    const char *ns = k < MKEYS / 2 ? "a" : "b";
    uint64_t now = atomic_load(&fake_now);
    bool live = m_live(m, now);
    sprig_kv_status st;
    switch (tu_rand(rs) % 6) {
    case 0: { /* set with a random check and expiry */
        snprintf(s, sizeof s, "v%llu", (unsigned long long)(tu_rand(rs) % 999));
        sprig_value v = str_value(s);
        sprig_kv_set_opts so = {.check = (sprig_kv_check)(tu_rand(rs) % 3)};
        so.expire_in_ms = tu_rand(rs) % 2 ? 1 + tu_rand(rs) % 50 : 0;
        SPRIG_OK_(sprig_kv_set(db, ns, key, &v, &so, &st, NULL));
        bool go = !(so.check == SPRIG_KV_ONLY_IF_VACANT && live) &&
                  !(so.check == SPRIG_KV_ONLY_IF_PRESENT && !live);
        assert_int_equal(st, !go    ? SPRIG_KV_NOT_CHANGED
                             : live ? SPRIG_KV_UPDATED
                                    : SPRIG_KV_INSERTED);
        if (go) {
            *m = (model_key){true, SPRIG_VALUE_BYTES, 0, "",
                             so.expire_in_ms ? now + so.expire_in_ms : 0};
            snprintf(m->s, sizeof m->s, "%s", s);
        }
        break;
    }
    case 1:
    case 2: { /* increment by a small i64 */
        int64_t d = (int64_t)(tu_rand(rs) % 21) - 10;
        sprig_value amt = sprig_value_of_i64(d), out;
        int rc = sprig_kv_increment(db, ns, key, &amt, false, &out);
        if (live && m->kind == SPRIG_VALUE_BYTES) {
            assert_int_equal(rc, SPRIG_EINVAL);
            break;
        }
        SPRIG_OK_(rc);
        if (!live) {
            *m = (model_key){true, SPRIG_VALUE_I64, 0, "", 0};
        }
        m->i += d;
        assert_int_equal(out.num.i64, m->i);
        break;
    }
    case 3:
        SPRIG_OK_(sprig_kv_delete(db, ns, key, &st));
        assert_int_equal(st, live ? SPRIG_KV_DELETED : SPRIG_KV_NOT_CHANGED);
        m->live = false;
        break;
    case 4: check_model_key(db, ns, key, m); break;
    case 5: atomic_fetch_add(&fake_now, tu_rand(rs) % 20); break;
    }
}

static void
test_random_model(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    uint64_t rs = seed;
    model_key model[MKEYS] = {0};
    for (int step = 0; step < 4000; step++) {
        random_step(db, &rs, model);
        if (step % 500 == 0) {
            SPRIG_OK_(sprig__kv_sweep_now(db, NULL));
            verify(db);
        }
    }
    int live = 0;
    uint64_t now = atomic_load(&fake_now);
    for (int k = 0; k < MKEYS; k++) {
        live += m_live(&model[k], now);
    }
    sprig_kv_key_list *la, *lb;
    SPRIG_OK_(sprig_kv_list_keys(db, "a", NULL, NULL, 0, &la));
    SPRIG_OK_(sprig_kv_list_keys(db, "b", NULL, NULL, 0, &lb));
    assert_int_equal(sprig_kv_key_list_count(la) + sprig_kv_key_list_count(lb),
                     live);
    sprig_kv_key_list_free(la);
    sprig_kv_key_list_free(lb);
    SPRIG_OK_(sprig__kv_sweep_now(db, NULL));
    assert_int_equal(verify(db), live);
}

/* ---- out of memory ------------------------------------------------------ */

typedef int (*kv_op_fn)(sprig_db *db);

static int
op_set_prev(sprig_db *db)
{
    sprig_value v = str_value("a longer value"), prev;
    sprig_kv_set_opts so = {.expire_in_ms = 1000};
    int rc = sprig_kv_set(db, "o", "k", &v, &so, NULL, &prev);
    sprig_value_clear(&prev);
    return rc;
}

static int
op_get(sprig_db *db)
{
    sprig_value v;
    int rc = sprig_kv_get(db, "o", "k", false, &v);
    sprig_value_clear(&v);
    return rc;
}

static int
op_take(sprig_db *db)
{
    sprig_value v;
    int rc = sprig_kv_get(db, "o", "k", true, &v);
    sprig_value_clear(&v);
    return rc == SPRIG_ENOTFOUND ? SPRIG_OK : rc;
}

static int
op_incr(sprig_db *db)
{
    sprig_value one = sprig_value_of_u64(1);
    return sprig_kv_increment(db, "o", "n", &one, false, NULL);
}

static int
op_list(sprig_db *db)
{
    sprig_kv_key_list *l = NULL;
    int rc = sprig_kv_list_keys(db, "o", NULL, NULL, 0, &l);
    sprig_kv_key_list_free(l);
    return rc;
}

/* Each operation, with its n-th allocation failing for n = 1, 2, ... until
 * it needs fewer: it fails with SPRIG_ENOMEM or succeeds, never crashes
 * or leaks (ASan), and the store stays consistent. */
static void
test_out_of_memory(void **state)
{
    sprig_db *db = ((fx *)*state)->db;
    kv_op_fn ops[] = {op_set_prev, op_get,  op_take,
                      op_set_prev, op_incr, op_list};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        int rc = SPRIG_ENOMEM;
        for (unsigned long n = 1; rc == SPRIG_ENOMEM && n < 1000; n++) {
            sprig__alloc_fail_after(n);
            rc = ops[i](db);
            sprig__alloc_fail_after(0);
            assert_true(rc == SPRIG_OK || rc == SPRIG_ENOMEM);
            verify(db);
        }
        SPRIG_OK_(rc);
    }
}

int
main(void)
{
    root = tu_tmpdir("kv");
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_namespaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_increment_integers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_increment_floats_and_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expiry_on_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweeper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_increment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_random_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
