/*
 * test_cmd.c -- write commands (src/core/cmd.h): the codec round-trips
 * every kind (PUBLISH included) byte for byte; decoding rejects every
 * truncation, trailing bytes, and (randomly) corrupted input with
 * SPRIG_ECORRUPT or decodes it to a command that re-encodes to the same bytes,
 * never crashing; decoded commands apply through a database's writer like the
 * API's own.
 */
#include "testutil.h"

#include "core/cmd.h"
#include "local/local.h"

static uint64_t seed;

static const sprig_collection_def colls[] = {{"things", SPRIG_ID_U64},
                                             {"named", SPRIG_ID_NATURAL}};
static const sprig_schema_def schema = {"cmdtest", colls, 2};

/* A sample of each kind (borrowed static memory). */
static sprig__op ops[3];
static sprig__sweep_item items[2];

static void
sample(int kind, sprig__cmd *c)
{
    memset(c, 0, sizeof *c);
    c->now_ms = 1700000000123ull;
    switch (kind) {
    case 0:
        c->kind = SPRIG__CMD_TXN;
        ops[0] = (sprig__op){.kind = SPRIG__OP_INSERT,
                             .collection = "things",
                             .contents = sprig_str("{\"a\":1}")};
        ops[1] = (sprig__op){.kind = SPRIG__OP_UPDATE,
                             .collection = "named",
                             .has_id = true,
                             .id = sprig_str("k1"),
                             .contents = sprig_str("x"),
                             .has_expected = true,
                             .expected_rev = 7};
        memset(ops[1].expected_hash, 0xab, 16);
        ops[2] = (sprig__op){.kind = SPRIG__OP_DELETE,
                             .collection = "named",
                             .has_id = true,
                             .id = sprig_str("k2")};
        c->ops = ops;
        c->n_ops = 3;
        break;
    case 1:
        c->kind = SPRIG__CMD_KV;
        c->kv = SPRIG__KV_SET;
        c->ns = "ns";
        c->key = "key";
        c->value = sprig_value_of_bytes(sprig_str("value"));
        c->check = SPRIG_KV_ONLY_IF_VACANT;
        c->expire_at = 1700000005000ull;
        break;
    case 2:
        c->kind = SPRIG__CMD_KV;
        c->kv = SPRIG__KV_INCR;
        c->ns = "";
        c->key = "n";
        c->value = sprig_value_of_i64(-3);
        c->saturating = true;
        break;
    case 3:
        c->kind = SPRIG__CMD_KV;
        c->kv = SPRIG__KV_TAKE;
        c->ns = "a";
        c->key = "b";
        break;
    case 4:
        c->kind = SPRIG__CMD_SWEEP;
        items[0] = (sprig__sweep_item){5, {"ns\0k1", 5}};
        items[1] = (sprig__sweep_item){9, {"\0k2", 3}};
        c->items = items;
        c->n_items = 2;
        break;
    case 5:
        c->kind = SPRIG__CMD_CREATE_DB;
        c->name = "db1";
        c->schema_name = "cmdtest";
        break;
    case 6:
        c->kind = SPRIG__CMD_DELETE_DB;
        c->name = "db1";
        break;
    case 7: {
        static const sprig_bytes topics[] = {{"news", 4}, {"t\0x", 3}};
        c->kind = SPRIG__CMD_PUBLISH;
        c->topics = topics;
        c->n_topics = 2;
        c->payload = sprig_str("payload bytes");
        break;
    }
    default: {
        static sprig_buf enc;
        enc.len = 0;
        SPRIG_OK_(sprig__schema_encode(&schema, &enc));
        c->kind = SPRIG__CMD_SCHEMA;
        c->schema = sprig_buf_bytes(&enc);
        break;
    }
    }
}
#define N_KINDS 9

static void
test_round_trip(void **state)
{
    (void)state;
    for (int k = 0; k < N_KINDS; k++) {
        sprig__cmd c, d;
        sprig_buf a = {0}, b = {0};
        sample(k, &c);
        SPRIG_OK_(sprig__cmd_encode(&c, &a));
        SPRIG_OK_(sprig__cmd_decode(sprig_buf_bytes(&a), &d));
        assert_int_equal(d.kind, c.kind);
        assert_int_equal(d.now_ms, c.now_ms);
        SPRIG_OK_(sprig__cmd_encode(&d, &b));
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        if (k == 0) {
            assert_int_equal(d.n_ops, 3);
            assert_string_equal(d.ops[1].collection, "named");
            assert_int_equal(d.ops[1].expected_rev, 7);
            assert_false(d.ops[0].has_id);
        }
        if (k == 1) {
            assert_string_equal(d.key, "key");
            assert_int_equal(d.expire_at, c.expire_at);
            assert_true(tu_bytes_eq(d.value.bytes, "value"));
        }
        if (k == 7) {
            assert_int_equal(d.n_topics, 2);
            assert_true(tu_bytes_eq(d.topics[0], "news"));
            assert_int_equal(d.topics[1].len, 3);
            assert_memory_equal(d.topics[1].data, "t\0x", 3);
            assert_true(tu_bytes_eq(d.payload, "payload bytes"));
        }
        sprig__cmd_clear(&d);
        sprig_buf_clear(&a);
        sprig_buf_clear(&b);
    }
}

/* Decode `in`: either SPRIG_ECORRUPT, or a command re-encoding to `in`. */
static void
decode_or_reject(const uint8_t *p, size_t n)
{
    sprig__cmd d;
    int rc = sprig__cmd_decode((sprig_bytes){p, n}, &d);
    if (rc == 0) {
        sprig_buf b = {0};
        SPRIG_OK_(sprig__cmd_encode(&d, &b));
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, p, n);
        sprig_buf_clear(&b);
    } else {
        assert_int_equal(rc, SPRIG_ECORRUPT);
    }
    sprig__cmd_clear(&d);
}

static void
test_malformed(void **state)
{
    (void)state;
    uint64_t rs = seed;
    for (int k = 0; k < N_KINDS; k++) {
        sprig__cmd c, d;
        sprig_buf a = {0};
        sample(k, &c);
        SPRIG_OK_(sprig__cmd_encode(&c, &a));
        for (size_t n = 0; n < a.len; n++) { /* every truncation */
            SPRIG_EXPECT(SPRIG_ECORRUPT,
                         sprig__cmd_decode((sprig_bytes){a.data, n}, &d));
            sprig__cmd_clear(&d);
        }
        SPRIG_OK_(sprig_buf_append(&a, "", 1)); /* a trailing byte */
        SPRIG_EXPECT(SPRIG_ECORRUPT,
                     sprig__cmd_decode(sprig_buf_bytes(&a), &d));
        sprig__cmd_clear(&d);
        a.len--;
        uint8_t *copy = malloc(a.len);
        for (int i = 0; i < 2000; i++) { /* random corruption */
            memcpy(copy, a.data, a.len);
            for (int f = 0; f < 1 + (int)(tu_rand(&rs) % 3); f++) {
                copy[tu_rand(&rs) % a.len] = (uint8_t)tu_rand(&rs);
            }
            decode_or_reject(copy, a.len);
        }
        free(copy);
        sprig_buf_clear(&a);
    }
    uint8_t bad_version[10] = {9, 1};
    sprig__cmd d;
    SPRIG_EXPECT(SPRIG_ECORRUPT,
                 sprig__cmd_decode((sprig_bytes){bad_version, 10}, &d));
    sprig__cmd_clear(&d);
}

/* Encode, decode and run a command on `db`; results in *out_cmd (clear). */
static int
run_decoded(sprig_db *db, const sprig__cmd *c, sprig__cmd *d)
{
    sprig_buf a = {0};
    SPRIG_OK_(sprig__cmd_encode(c, &a));
    SPRIG_OK_(sprig__cmd_decode(sprig_buf_bytes(&a), d));
    sprig_buf_clear(&a);
    return sprig__ldb_run(sprig__db_ldb(db), d);
}

/* The storage's clock: before every expiry below, so its sweeper never
 * races the test. */
static uint64_t
clock_1200(void *udata)
{
    (void)udata;
    return 1200;
}

static void
test_apply_decoded(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("cmd_apply");
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.clock_ms = clock_1200;
    sprig_storage *st;
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "db", "cmdtest", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    sprig__cmd c = {.kind = SPRIG__CMD_TXN, .now_ms = 42}, d;
    sprig__op op = {.kind = SPRIG__OP_INSERT,
                    .collection = "named",
                    .has_id = true,
                    .id = sprig_str("doc"),
                    .contents = sprig_str("hello")};
    c.ops = &op;
    c.n_ops = 1;
    SPRIG_OK_(run_decoded(db, &c, &d));
    assert_int_equal(d.out.log_id, 1);
    sprig__cmd_clear(&d);
    sprig_doc *doc;
    SPRIG_OK_(sprig_get(db, "named", sprig_str("doc"), &doc));
    assert_true(tu_bytes_eq(sprig_doc_contents(doc), "hello"));
    sprig_doc_free(doc);
    sprig_txn_log *log;
    SPRIG_OK_(sprig_list_executed_txns(db, 0, 0, &log));
    assert_int_equal(sprig_txn_log_count(log), 1);
    assert_int_equal(sprig_txn_log_timestamp_ms(log, 0),
                     42); /* the command's */
    sprig_txn_log_free(log);
    /* the same insert again conflicts */
    SPRIG_EXPECT(SPRIG_ECONFLICT, run_decoded(db, &c, &d));
    sprig__cmd_clear(&d);

    /* a set whose expiry is decided by the command's time, not the clock */
    sprig__cmd k = {.kind = SPRIG__CMD_KV,
                    .kv = SPRIG__KV_SET,
                    .ns = "",
                    .key = "k",
                    .now_ms = 1000,
                    .expire_at = 2000};
    k.value = sprig_value_of_u64(5);
    SPRIG_OK_(run_decoded(db, &k, &d));
    assert_int_equal(d.out.status, SPRIG_KV_INSERTED);
    sprig__cmd_clear(&d);
    k.kv = SPRIG__KV_INCR;
    k.now_ms = 1500; /* an increment accepted at 1500 finds it */
    k.value = sprig_value_of_u64(2);
    SPRIG_OK_(run_decoded(db, &k, &d));
    assert_int_equal(d.out.status, SPRIG_KV_UPDATED);
    assert_int_equal(d.out.value.num.u64, 7);
    sprig__cmd_clear(&d);
    /* key-value changes are in the log: collection "", id ns 0x00 key */
    SPRIG_OK_(sprig_list_executed_txns(db, 0, 0, &log));
    assert_int_equal(sprig_txn_log_count(log), 3);
    assert_int_equal(sprig_txn_log_timestamp_ms(log, 2), 1500);
    sprig_change ch;
    SPRIG_OK_(sprig_txn_log_change(log, 1, 0, &ch));
    assert_string_equal(ch.collection, "");
    assert_int_equal(ch.id.len, 2);
    assert_memory_equal(ch.id.data, "\0k", 2);
    assert_false(ch.deleted);
    sprig_txn_log_free(log);
    k.now_ms = 2000; /* accepted at its expiry: the key is gone, a new one */
    SPRIG_OK_(run_decoded(db, &k, &d));
    assert_int_equal(d.out.status, SPRIG_KV_INSERTED);
    assert_int_equal(d.out.value.num.u64, 2);
    sprig__cmd_clear(&d);
    sprig_db_close(db);
    sprig_storage_close(st);
    tu_rmtree(dir);
}

int
main(void)
{
    seed = tu_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_apply_decoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
