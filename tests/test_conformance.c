/*
 * test_conformance.c -- one suite of behaviour tests, written once against
 * the public API (sprig.h), run against every placement (placement.h): a
 * local storage, and a server on loopback over ws:// and over wss://.  The same
 * assertions hold in both, which is architecture.md's promise: code written
 * against sprig_storage and sprig_db does not change when the database moves.
 */
#include "placement.h"
#include "schematest.h"

#include "core/view.h" /* sprig__codeless_map: a C view without code */

/* A declarative view: messages by category, counted. */
static const sprig_view_def msg_views[] = {
    {.name = "by_cat",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "cat",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def cols[] = {
    {"msgs", SPRIG_ID_U64, 0, msg_views, 1}, {"kv", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"conf", cols, 2};

static const char *root;
static const char *kind; /* the placement of the group running */

static int
setup(void **state)
{
    placement *p = calloc(1, sizeof *p);
    placement_open(p, kind, root, &schema);
    *state = p;
    return 0;
}

static int
teardown(void **state)
{
    placement_close(*state);
    free(*state);
    return 0;
}

static sprig_db *
fresh_db(placement *p, const char *name)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_create_database(p->st, name, "conf", false));
    SPRIG_OK_(sprig_storage_open_database(p->st, name, &db));
    return db;
}

static void
test_storage_admin(void **state)
{
    placement *p = *state;
    SPRIG_OK_(sprig_storage_create_database(p->st, "b", "conf", false));
    SPRIG_OK_(sprig_storage_create_database(p->st, "a", "conf", false));
    SPRIG_EXPECT(SPRIG_EEXIST,
                 sprig_storage_create_database(p->st, "a", "conf", false));
    SPRIG_OK_(sprig_storage_create_database(p->st, "a", "conf", true));
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_storage_create_database(p->st, "c", "nope", false));
    assert_non_null(strstr(sprig_errmsg(), "'nope' is not registered"));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_storage_create_database(p->st, "b/d", "conf", false));
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(p->st, &l));
    size_t at = 0; /* "_admin": the cluster's users live in its storage */
    while (at < sprig_database_list_count(l) &&
           strcmp(sprig_database_list_name(l, at), "_admin") == 0) {
        at++;
    }
    assert_int_equal(sprig_database_list_count(l) - at, 2);
    assert_int_equal(at, placement_is(p->name, "cluster") ? 1 : 0);
    assert_string_equal(sprig_database_list_name(l, at), "a");
    assert_string_equal(sprig_database_list_schema(l, at + 1), "conf");
    sprig_database_list_free(l);
    sprig_schema_list *sl;
    SPRIG_OK_(sprig_storage_list_schemas(p->st, &sl));
    at = st_find(sl, "_admin") ? 1 : 0; /* the cluster's, as above */
    assert_int_equal(sprig_schema_list_count(sl) - at, 1);
    const sprig_schema_def *s = st_find(sl, "conf");
    assert_non_null(s);
    assert_string_equal(s->name, "conf");
    assert_int_equal(s->n_collections, 2);
    assert_int_equal(s->collections[1].id_kind, SPRIG_ID_NATURAL);
    sprig_schema_list_free(sl);
    SPRIG_OK_(sprig_storage_delete_database(p->st, "a"));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_delete_database(p->st, "a"));
    sprig_db *db;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_storage_open_database(p->st, "a", &db));
    /* a new collection registered over the placement's storage */
    static const sprig_collection_def more[] = {
        {"msgs", SPRIG_ID_U64, 0, msg_views, 1}, /* views cannot be dropped */
        {"kv", SPRIG_ID_NATURAL, 0},
        {"extra", SPRIG_ID_U64, 0}};
    static const sprig_schema_def grown = {"conf", more, 3};
    SPRIG_OK_(sprig_storage_register_schema(p->st, &grown));
    SPRIG_OK_(sprig_storage_create_database(p->st, "g", "conf", false));
    SPRIG_OK_(sprig_storage_open_database(p->st, "g", &db));
    SPRIG_OK_(sprig_insert(db, "extra", NULL, sprig_str("x"), NULL));
    sprig_db_close(db);
}

static void
test_crud(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "crud");
    assert_string_equal(sprig_db_name(db), "crud");
    sprig_header_buf h, out;
    SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("one"), &h));
    uint8_t b[8];
    assert_memory_equal(h.id, sprig_id_u64(1, b).data, 8);
    assert_int_equal(h.revision, 1);
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "msgs", (sprig_bytes){h.id, 8}, &d));
    assert_true(tu_bytes_eq(sprig_doc_contents(d), "one"));
    assert_memory_equal(sprig_doc_header(d).hash, h.hash, 16);
    sprig_doc_free(d);
    sprig_header e = sprig_header_of(&h);
    SPRIG_OK_(sprig_update(db, "msgs", &e, sprig_str("two"), &out));
    assert_int_equal(out.revision, 2);
    SPRIG_EXPECT(SPRIG_ECONFLICT,
                 sprig_update(db, "msgs", &e, sprig_str("three"), &out));
    assert_int_equal(out.revision, 2); /* the stored header came back */
    assert_non_null(strstr(sprig_errmsg(), "revision"));
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_delete(db, "msgs", &e));
    SPRIG_OK_(sprig_overwrite(db, "kv", sprig_str("k"), sprig_str("v"), &out));
    SPRIG_OK_(sprig_overwrite(db, "kv", sprig_str("k"), sprig_str("v"), &out));
    assert_int_equal(out.revision, 1); /* identical: no new revision */
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_insert(db, "kv", &(sprig_bytes){"k", 1},
                                               sprig_str("w"), &out));
    assert_int_equal(out.revision, 1);
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_get(db, "kv", sprig_str("missing"), &d));
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_get(db, "nope", sprig_str("k"), &d));
    assert_non_null(strstr(sprig_errmsg(), "'nope' is not in schema"));
    uint8_t big[SPRIG_ID_MAX + 1] = {0};
    SPRIG_EXPECT(SPRIG_ETOOBIG,
                 sprig_insert(db, "kv", &(sprig_bytes){big, sizeof big},
                              sprig_str("v"), NULL));
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_insert(db, "kv", NULL, sprig_str("v"), NULL));
    e = sprig_header_of(&out);
    SPRIG_OK_(sprig_delete(db, "kv", &e));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_delete(db, "kv", &e));
    sprig_db_close(db);
}

static void
fill(sprig_db *db)
{
    for (char c = 'a'; c <= 'f'; c++) {
        char id[2] = {c, 0};
        SPRIG_OK_(
            sprig_insert(db, "kv", &(sprig_bytes){id, 1}, sprig_str(id), NULL));
    }
}

static void
test_reads(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "reads");
    fill(db);
    sprig_range r = {{SPRIG_EXCLUDED, {"b", 1}}, {SPRIG_INCLUDED, {"e", 1}}};
    sprig_doc_list *l;
    SPRIG_OK_(sprig_list(db, "kv", &r, SPRIG_DESC, 0, &l));
    assert_int_equal(sprig_doc_list_count(l), 3);
    assert_true(tu_bytes_eq(sprig_doc_contents(sprig_doc_list_get(l, 0)), "e"));
    sprig_doc_list_free(l);
    SPRIG_OK_(sprig_list(db, "kv", NULL, SPRIG_ASC, 2, &l));
    assert_int_equal(sprig_doc_list_count(l), 2);
    sprig_doc_list_free(l);
    sprig_header_list *hl;
    SPRIG_OK_(sprig_list_headers(db, "kv", &r, SPRIG_ASC, 0, &hl));
    assert_int_equal(sprig_header_list_count(hl), 3);
    assert_true(tu_bytes_eq(sprig_header_list_get(hl, 0).id, "c"));
    sprig_header_list_free(hl);
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "kv", NULL, &n));
    assert_int_equal(n, 6);
    SPRIG_OK_(sprig_count(db, "kv", &r, &n));
    assert_int_equal(n, 3);
    sprig_bytes ids[] = {sprig_str("f"), sprig_str("zz"), sprig_str("a")};
    SPRIG_OK_(sprig_get_multiple(db, "kv", ids, 3, &l));
    assert_int_equal(sprig_doc_list_count(l), 2);
    assert_true(tu_bytes_eq(sprig_doc_contents(sprig_doc_list_get(l, 1)), "a"));
    sprig_doc_list_free(l);
    sprig_db_close(db);
}

static void
test_transactions(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "txn");
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_insert(t, "msgs", NULL, sprig_str("m")));
    SPRIG_OK_(
        sprig_txn_insert(t, "kv", &(sprig_bytes){"x", 1}, sprig_str("1")));
    sprig_header x1 = {{"x", 1}, 1, {0}};
    SPRIG_OK_(sprig_txn_update(t, "kv", &x1, sprig_str("2")));
    sprig_txn_result *res;
    SPRIG_OK_(sprig_txn_apply(db, t, &res));
    assert_int_equal(sprig_txn_result_id(res), 1);
    assert_int_equal(sprig_txn_result_header(res, 2).revision, 2);
    sprig_txn_result_free(res);
    /* applying again fails at op 1 (x exists) and leaves nothing */
    SPRIG_EXPECT(SPRIG_ECONFLICT, sprig_txn_apply(db, t, &res));
    assert_int_equal(sprig_txn_result_failed(res), 1);
    sprig_header conflict;
    SPRIG_OK_(sprig_txn_result_conflict(res, &conflict));
    assert_int_equal(conflict.revision, 2);
    assert_true(tu_bytes_eq(conflict.id, "x"));
    sprig_txn_result_free(res);
    sprig_txn_free(t);
    uint64_t n, last;
    SPRIG_OK_(sprig_count(db, "msgs", NULL, &n));
    assert_int_equal(n, 1);
    SPRIG_OK_(sprig_last_txn_id(db, &last));
    assert_int_equal(last, 1);
    for (int i = 0; i < 5; i++) {
        SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str("more"), NULL));
    }
    sprig_txn_log *log;
    SPRIG_OK_(sprig_list_executed_txns(db, 2, 3, &log));
    assert_int_equal(sprig_txn_log_count(log), 3);
    assert_int_equal(sprig_txn_log_id(log, 0), 2);
    assert_int_equal(sprig_txn_log_id(log, 2), 4);
    sprig_change c;
    SPRIG_OK_(sprig_txn_log_change(log, 0, 0, &c));
    assert_string_equal(c.collection, "msgs");
    assert_int_equal(c.revision, 1);
    assert_false(c.deleted);
    sprig_txn_log_free(log);
    SPRIG_OK_(sprig_list_executed_txns(db, 1, 0, &log));
    assert_int_equal(sprig_txn_log_count(log), 6);
    assert_int_equal(sprig_txn_log_change_count(log, 0), 3);
    sprig_txn_log_free(log);
    sprig_db_close(db);
}

static void
test_large_values(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "large");
    size_t n = 4u << 20;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)(i * 7);
    }
    SPRIG_OK_(sprig_overwrite(db, "kv", sprig_str("big"), (sprig_bytes){buf, n},
                              NULL));
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, "kv", sprig_str("big"), &d));
    assert_int_equal(sprig_doc_contents(d).len, n);
    assert_memory_equal(sprig_doc_contents(d).data, buf, n);
    sprig_doc_free(d);
    free(buf);
    sprig_db_close(db);
}

static void
test_kv(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "kvs");
    sprig_value v = sprig_value_of_bytes(sprig_str("hello")), out, prev;
    sprig_kv_status st;
    sprig_kv_set_opts o = {0};
    SPRIG_OK_(sprig_kv_set(db, "ns", "greeting", &v, NULL, &st, NULL));
    assert_int_equal(st, SPRIG_KV_INSERTED);
    v = sprig_value_of_bytes(sprig_str("hi"));
    SPRIG_OK_(sprig_kv_set(db, "ns", "greeting", &v, NULL, &st, &prev));
    assert_int_equal(st, SPRIG_KV_UPDATED);
    assert_int_equal(prev.kind, SPRIG_VALUE_BYTES);
    assert_true(tu_bytes_eq(prev.bytes, "hello"));
    sprig_value_clear(&prev);
    o.check = SPRIG_KV_ONLY_IF_VACANT;
    SPRIG_OK_(sprig_kv_set(db, "ns", "greeting", &v, &o, &st, NULL));
    assert_int_equal(st, SPRIG_KV_NOT_CHANGED);
    SPRIG_OK_(sprig_kv_get(db, "ns", "greeting", true, &out));
    assert_true(tu_bytes_eq(out.bytes, "hi"));
    sprig_value_clear(&out);
    SPRIG_EXPECT(SPRIG_ENOTFOUND,
                 sprig_kv_get(db, "ns", "greeting", false, &out));
    sprig_value one = sprig_value_of_i64(5);
    SPRIG_OK_(sprig_kv_increment(db, NULL, "n", &one, false, &out));
    SPRIG_OK_(sprig_kv_decrement(db, NULL, "n", &one, false, &out));
    SPRIG_OK_(sprig_kv_decrement(db, NULL, "n", &one, false, &out));
    assert_int_equal(out.kind, SPRIG_VALUE_I64);
    assert_int_equal(out.num.i64, -5);
    sprig_value big = sprig_value_of_i64(INT64_MAX);
    SPRIG_OK_(sprig_kv_increment(db, NULL, "m", &big, false, &out));
    SPRIG_EXPECT(SPRIG_ERANGE,
                 sprig_kv_increment(db, NULL, "m", &big, false, &out));
    SPRIG_OK_(sprig_kv_increment(db, NULL, "m", &big, true, &out));
    assert_true(out.num.i64 == INT64_MAX);
    sprig_value f = sprig_value_of_f64(0.5);
    SPRIG_EXPECT(SPRIG_EINVAL,
                 sprig_kv_increment(db, NULL, "m", &f, false, &out));
    o.check = SPRIG_KV_ANY;
    o.expire_at_ms = 1; /* long past: the key goes */
    SPRIG_OK_(sprig_kv_set(db, NULL, "old", &v, &o, &st, NULL));
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, NULL, "old", false, &out));
    for (int i = 0; i < 5; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        SPRIG_OK_(sprig_kv_set(db, "list", k, &v, NULL, &st, NULL));
    }
    sprig_kv_key_list *l;
    SPRIG_OK_(sprig_kv_list_keys(db, "list", "k", "k1", 2, &l));
    assert_int_equal(sprig_kv_key_list_count(l), 2);
    assert_string_equal(sprig_kv_key_list_key(l, 0), "k2");
    assert_true(tu_bytes_eq(sprig_kv_key_list_value(l, 1)->bytes, "hi"));
    sprig_kv_key_list_free(l);
    SPRIG_OK_(sprig_kv_delete(db, "list", "k0", &st));
    assert_int_equal(st, SPRIG_KV_DELETED);
    SPRIG_OK_(sprig_kv_delete(db, "list", "k0", &st));
    assert_int_equal(st, SPRIG_KV_NOT_CHANGED);
    sprig_db_close(db);
}

static void
query_key(sprig_view_query *q, const char *json, sprig_buf *kb)
{
    SPRIG_OK_(sprig_key_from_json(json, strlen(json), kb));
    q->match.kind = SPRIG_MATCH_KEY;
    q->match.key = sprig_buf_bytes(kb);
}

static void
test_views(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "views");
    const char *docs[] = {"{\"cat\":\"a\"}", "{\"cat\":\"b\"}",
                          "{\"cat\":\"a\"}", "not json"};
    for (int i = 0; i < 4; i++) {
        SPRIG_OK_(sprig_insert(db, "msgs", NULL, sprig_str(docs[i]), NULL));
    }
    sprig_view_query q;
    sprig_view_query_init(&q, "msgs", "by_cat");
    sprig_mapping_list *l;
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 3);
    assert_null(sprig_mapping_list_doc(l, 0));
    sprig_mapping_list_free(l);
    sprig_buf kb = {0}, r = {0};
    query_key(&q, "\"a\"", &kb);
    SPRIG_OK_(sprig_view_query_with_docs(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 2);
    assert_true(
        tu_bytes_eq(sprig_doc_contents(sprig_mapping_list_doc(l, 1)), docs[2]));
    assert_int_equal(sprig_mapping_list_source(l, 0).revision, 1);
    sprig_mapping_list_free(l);
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    assert_true(tu_bytes_eq(sprig_buf_bytes(&r), "2"));
    sprig_view_query_init(&q, "msgs", "by_cat");
    SPRIG_OK_(sprig_view_reduce_grouped(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), 2);
    assert_true(tu_bytes_eq(sprig_mapping_list_value(l, 1), "1"));
    sprig_mapping_list_free(l);
    query_key(&q, "\"b\"", &kb);
    uint64_t deleted;
    SPRIG_OK_(sprig_view_delete_docs(db, &q, &deleted));
    assert_int_equal(deleted, 1);
    uint64_t n;
    SPRIG_OK_(sprig_count(db, "msgs", NULL, &n));
    assert_int_equal(n, 3);
    sprig_view_query_init(&q, "msgs", "nope");
    SPRIG_EXPECT(SPRIG_ESCHEMA, sprig_view_query_mappings(db, &q, &l));
    sprig_buf_clear(&kb);
    sprig_buf_clear(&r);
    sprig_db_close(db);
}

static void
expect_message(sprig_subscriber *s, const char *topic, const char *payload)
{
    sprig_message *m;
    SPRIG_OK_(sprig_subscriber_recv(s, 5000, &m));
    assert_true(tu_bytes_eq(sprig_message_topic(m), topic));
    assert_true(tu_bytes_eq(sprig_message_payload(m), payload));
    sprig_message_free(m);
}

static void
test_pubsub(void **state)
{
    placement *p = *state;
    sprig_db *db = fresh_db(p, "ps");
    sprig_subscriber *a, *b;
    SPRIG_OK_(sprig_subscriber_new(db, &a));
    SPRIG_OK_(sprig_subscriber_new(db, &b));
    SPRIG_OK_(sprig_subscribe(a, sprig_str("news")));
    SPRIG_OK_(sprig_subscribe(b, sprig_str("news")));
    SPRIG_OK_(sprig_subscribe(b, sprig_str("sport")));
    SPRIG_OK_(sprig_publish(db, sprig_str("news"), sprig_str("n1")));
    SPRIG_OK_(sprig_publish(db, sprig_str("sport"), sprig_str("s1")));
    expect_message(a, "news", "n1");
    expect_message(b, "news", "n1");
    expect_message(b, "sport", "s1");
    sprig_message *m;
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_subscriber_recv(a, 50, &m));
    SPRIG_OK_(sprig_unsubscribe(a, sprig_str("news")));
    sprig_bytes topics[] = {sprig_str("news"), sprig_str("sport")};
    SPRIG_OK_(sprig_publish_to_all(db, topics, 2, sprig_str("both")));
    expect_message(b, "news", "both");
    expect_message(b, "sport", "both");
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_subscriber_recv(a, 50, &m));
    /* overflow drops the oldest and counts it */
    SPRIG_OK_(sprig_subscriber_set_limits(b, 2, 1u << 20));
    for (int i = 0; i < 5; i++) {
        char msg[8];
        snprintf(msg, sizeof msg, "m%d", i);
        SPRIG_OK_(sprig_publish(db, sprig_str("sport"), sprig_str(msg)));
    }
    for (int i = 0; i < 50 && sprig_subscriber_dropped(b) < 3; i++) {
        usleep(10000); /* the messages travel (ws) */
    }
    assert_int_equal(sprig_subscriber_dropped(b), 3);
    expect_message(b, "sport", "m3");
    expect_message(b, "sport", "m4");
    sprig_subscriber_free(a);
    sprig_subscriber_free(b);
    sprig_db_close(db);
}

/* ---- permissions, on the plain server placements and the cluster ---------
 * A user granted reads of one database may read it and nothing else, and
 * may write nothing; once the grant is revoked it may not read it either,
 * in the session it has open.  On the cluster the user is made and the
 * grant revoked through the leader (replicated `_admin` writes), and the
 * user is checked on each node by a client of that node alone (it does
 * not follow the leader) -- reads are answered, and so checked, by the
 * node itself: two followers and the leader. */

#define READER "reader"
#define READER_PASSWORD "reader-pw-123"

/* A client of the placement's node `i` (the cluster) or its only server,
 * logged in as READER (on a follower, once the user reached it). */
static sprig_client *
reader_client(placement *p, int i)
{
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d",
             p->srv ? sprig_server_ws_port(p->srv) : p->ws_ports[i]);
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.no_follow = true; /* the node itself answers, never the leader */
    sprig_client *c = NULL;
    int rc = -1;
    for (int t = 0; t < 300 && rc != 0; t++) { /* a node still starting */
        rc = sprig_client_connect(url, &co, &c);
        if (rc != 0) {
            usleep(100000);
        }
    }
    SPRIG_OK_(rc);
    rc = -1;
    for (int t = 0; t < 100 && rc != 0; t++) { /* 10 s: replication */
        rc = sprig_client_authenticate_password(c, READER, READER_PASSWORD);
        if (rc != 0) {
            usleep(100000);
        }
    }
    SPRIG_OK_(rc);
    return c;
}

/* Read document 1 of "perm" through `st`: its contents into `b`. */
static int
reader_get(sprig_storage *st, sprig_buf *b)
{
    sprig_db *db;
    uint8_t id[8];
    int rc = sprig_storage_open_database(st, "perm", &db);
    if (rc == 0) {
        sprig_doc *d;
        rc = sprig_get(db, "msgs", sprig_id_u64(1, id), &d);
        b->len = 0;
        if (rc == 0) {
            sprig_bytes c = sprig_doc_contents(d);
            rc = sprig_buf_append(b, c.data, c.len);
            sprig_doc_free(d);
        }
        sprig_db_close(db);
    }
    return rc;
}

/* What READER may do through `c`: read "perm" when `granted`, nothing
 * else ever.  The read is retried for 10 s (a follower applying the
 * revocation). */
static void
reader_checks(sprig_client *c, bool granted)
{
    sprig_storage *st = sprig_client_storage(c);
    sprig_buf b = {0};
    int rc = -1;
    for (int t = 0; t < 100; t++) {
        rc = reader_get(st, &b);
        if ((rc == 0) == granted) {
            break;
        }
        usleep(100000);
    }
    if (granted) {
        SPRIG_OK_(rc);
        assert_true(tu_bytes_eq(sprig_buf_bytes(&b), "{\"cat\":\"a\"}"));
    } else {
        SPRIG_EXPECT(SPRIG_EPERM, rc);
    }
    sprig_buf_clear(&b);
    sprig_db *db;
    SPRIG_EXPECT(SPRIG_EPERM, sprig_storage_open_database(st, "other", &db));
    SPRIG_EXPECT(SPRIG_EPERM,
                 sprig_storage_create_database(st, "mine", "conf", false));
}

/* A write as READER through `c` is refused and changes nothing. */
static void
reader_write_refused(placement *p, sprig_client *c)
{
    sprig_db *db, *mine;
    SPRIG_OK_(
        sprig_storage_open_database(sprig_client_storage(c), "perm", &db));
    SPRIG_EXPECT(SPRIG_EPERM, sprig_insert(db, "msgs", NULL,
                                           sprig_str("{\"cat\":\"b\"}"), NULL));
    if (!strstr(sprig_errmsg(), "document.insert")) {
        fail_msg("refused, but: %s", sprig_errmsg());
    }
    sprig_db_close(db);
    uint64_t n = 0;
    SPRIG_OK_(sprig_storage_open_database(p->st, "perm", &mine));
    SPRIG_OK_(sprig_count(mine, "msgs", NULL, &n));
    assert_int_equal(n, 1);
    sprig_db_close(mine);
}

/* One admin change through the placement's administrator client. */
static int
admin(placement *p, sprig_admin_op op, const char *name, const char *other,
      const char *actions, const char *resource)
{
    sprig_admin_change ch = {.op = op,
                             .name = name,
                             .password = other,
                             .other = other,
                             .actions = actions,
                             .resource = resource,
                             .add = true};
    return sprig_client_admin(p->st, &ch, NULL);
}

static void
test_permissions(void **state)
{
    placement *p = *state;
    if (!p->client || (p->srv && sprig_server_ws_port(p->srv) <= 0) ||
        placement_is(p->name, "wss")) {
        skip(); /* local (nothing checks); quic, wss: test_auth_* */
    }
    sprig_db *db = fresh_db(p, "perm");
    SPRIG_OK_(
        sprig_insert(db, "msgs", NULL, sprig_str("{\"cat\":\"a\"}"), NULL));
    sprig_db_close(db);
    SPRIG_OK_(sprig_storage_create_database(p->st, "other", "conf", false));
    SPRIG_OK_(
        admin(p, SPRIG_ADMIN_USER_CREATE, READER, READER_PASSWORD, NULL, NULL));
    SPRIG_OK_(admin(p, SPRIG_ADMIN_GROUP_CREATE, "readers", NULL, NULL, NULL));
    SPRIG_OK_(admin(p, SPRIG_ADMIN_GROUP_GRANT, "readers", NULL,
                    "database.open,document.get", "sprig.db.perm"));
    SPRIG_OK_(admin(p, SPRIG_ADMIN_USER_GROUP, READER, "readers", NULL, NULL));
    int nodes = p->pids[0] > 0 ? 3 : 1;
    sprig_client *c[3];
    for (int i = 0; i < nodes; i++) {
        c[i] = reader_client(p, i);
        reader_checks(c[i], true);
        reader_write_refused(p, c[i]);
    }
    SPRIG_OK_(admin(p, SPRIG_ADMIN_GROUP_REVOKE, "readers", NULL, NULL,
                    "sprig.db.perm"));
    for (int i = 0; i < nodes; i++) {
        reader_checks(c[i], false); /* the same session, now refused */
        sprig_client_close(c[i]);
    }
}

/* ---- schemas with views, on every placement ------------------------------
 * A schema lists the same on every placement, views included (declarative
 * ones whole, C ones by description); registering a listed schema again
 * changes nothing -- a C view keeps the code the program gave it, even
 * when the listing travelled over the network -- and a registration that
 * would drop a view or describes a C view the storage does not have is
 * refused, naming the view. */

/* A C view: each note's length, as an 8-byte key. */
static int
len_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    uint8_t k[8];
    sprig_key_u64(sprig_doc_contents(doc).len, k);
    return sprig_emit(e, (sprig_bytes){k, 8}, sprig_str("1"));
}

static const sprig_view_def note_views[] = {
    {.name = "by_tag",
     .version = 2,
     .json_key = "tag",
     .json_value = "n",
     .builtin_reduce = SPRIG_REDUCE_SUM},
    {.name = "by_len",
     .version = 3,
     .policy = SPRIG_VIEW_EAGER,
     .map = len_map,
     .builtin_reduce = SPRIG_REDUCE_COUNT},
};
static const sprig_collection_def note_cols[] = {
    {"notes", SPRIG_ID_U64, 0, note_views, 2}};
static const sprig_schema_def notes_schema = {"notes", note_cols, 1};

/* The storage of the program that runs the placement (where C views get
 * their code); NULL for the cluster, whose nodes are programs of their
 * own. */
static sprig_storage *
program_storage(placement *p)
{
    return p->srv ? sprig_server_storage(p->srv) : p->local;
}

/* The node program's schemas (the "cluster" placement's nodes are this
 * program in its node mode: placement_node_main): "notes", with the code
 * of its C view, when the setup asked for it. */
static int
node_schemas(sprig_storage *st, const char *views)
{
    if (strcmp(views, "notes") != 0) {
        return SPRIG_OK;
    }
    return sprig_storage_register_schema(st, &notes_schema);
}

/* The listed "notes" and "conf" describe what was registered. */
static void
expect_listed(placement *p, const sprig_view_def *extra)
{
    sprig_schema_list *l;
    SPRIG_OK_(sprig_storage_list_schemas(p->st, &l));
    st_same_schema(st_find(l, "conf"), &schema);
    const sprig_schema_def *s = st_find(l, "notes");
    assert_non_null(s);
    sprig_view_def v[3] = {note_views[0], note_views[1]};
    if (extra) {
        v[2] = *extra;
    }
    sprig_collection_def c = {"notes", SPRIG_ID_U64, 0, v, extra ? 3 : 2};
    st_same_schema(s, &(sprig_schema_def){"notes", &c, 1});
    sprig_schema_list_free(l);
}

/* Register "notes" with collection `c` through the placement. */
static int
register_notes(placement *p, const sprig_view_def *views, size_t n)
{
    sprig_collection_def c = {"notes", SPRIG_ID_U64, 0, views, n};
    return sprig_storage_register_schema(p->st,
                                         &(sprig_schema_def){"notes", &c, 1});
}

static void
expect_refused(placement *p, const sprig_view_def *views, size_t n,
               const char *want)
{
    SPRIG_EXPECT(SPRIG_ESCHEMA, register_notes(p, views, n));
    if (!strstr(sprig_errmsg(), want)) {
        fail_msg("wanted \"%s\" in \"%s\"", want, sprig_errmsg());
    }
}

static void
test_schema_views(void **state)
{
    placement *p = *state;
    if (program_storage(p)) {
        SPRIG_OK_(
            sprig_storage_register_schema(program_storage(p), &notes_schema));
    } /* else the cluster: each node's program did (node_schemas) */
    expect_listed(p, NULL);
    /* the listed schema, registered again through the placement */
    sprig_schema_list *l;
    SPRIG_OK_(sprig_storage_list_schemas(p->st, &l));
    SPRIG_OK_(sprig_storage_register_schema(p->st, st_find(l, "notes")));
    sprig_schema_list_free(l);
    expect_listed(p, NULL);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_create_database(p->st, "n", "notes", false));
    SPRIG_OK_(sprig_storage_open_database(p->st, "n", &db));
    SPRIG_OK_(sprig_insert(db, "notes", NULL,
                           sprig_str("{\"tag\":\"x\",\"n\":2}"), NULL));
    SPRIG_OK_(sprig_insert(db, "notes", NULL,
                           sprig_str("{\"tag\":\"x\",\"n\":40}"), NULL));
    sprig_view_query q;
    sprig_view_query_init(&q, "notes", "by_len"); /* the C view's code */
    sprig_buf r = {0};
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    assert_true(tu_bytes_eq(sprig_buf_bytes(&r), "2"));
    sprig_view_query_init(&q, "notes", "by_tag");
    r.len = 0;
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    assert_true(tu_bytes_eq(sprig_buf_bytes(&r), "42"));
    /* dropping a view, or every view (the shape of a schema listed before
     * views travelled), is refused and changes nothing */
    expect_refused(p, note_views, 1,
                   "would drop view 'by_len' of collection 'notes'");
    expect_refused(p, NULL, 0,
                   "would drop view 'by_tag' of collection 'notes'");
    /* a C view without its code must be the storage's own */
    sprig_view_def v[3] = {note_views[0], note_views[1]};
    v[1].map = sprig__codeless_map;
    v[1].version = 4;
    expect_refused(p, v, 2, "view 'by_len' of collection 'notes' is a C view");
    v[1] = note_views[1];
    v[2] = (sprig_view_def){.name = "ghost", .map = sprig__codeless_map};
    expect_refused(p, v, 3, "view 'ghost' of collection 'notes' is a C view");
    expect_listed(p, NULL);
    /* a declarative view may be added through any placement */
    v[2] = (sprig_view_def){.name = "by_n", .version = 1, .json_key = "n"};
    SPRIG_OK_(register_notes(p, v, 3));
    expect_listed(p, &v[2]);
    sprig_db_close(db);
    SPRIG_OK_(sprig_storage_open_database(p->st, "n", &db));
    sprig_view_query_init(&q, "notes", "by_len"); /* still has its code */
    r.len = 0;
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    assert_true(tu_bytes_eq(sprig_buf_bytes(&r), "2"));
    sprig_buf_clear(&r);
    sprig_db_close(db);
}

/* test_schema_views's setup: the cluster's node programs register
 * "notes" with its C view's code at their start. */
static int
setup_notes(void **state)
{
    placement_node_views = "notes";
    setup(state);
    placement_node_views = "";
    return 0;
}

#define SUITE(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], PLACEMENT_NODE_ARG) == 0) {
        return placement_node_main(argc, argv, node_schemas);
    }
    root = tu_tmpdir("conformance");
    const struct CMUnitTest tests[] = {
        SUITE(test_storage_admin),
        SUITE(test_crud),
        SUITE(test_reads),
        SUITE(test_transactions),
        SUITE(test_large_values),
        SUITE(test_kv),
        SUITE(test_views),
        SUITE(test_pubsub),
        SUITE(test_permissions),
        cmocka_unit_test_setup_teardown(test_schema_views, setup_notes,
                                        teardown),
    };
    const char *kinds[] = {"local",        "ws",      "wss",   "quic",
                           "quic-streams", "wrapped", "vault", "cluster"};
    int failed = 0;
    const char *only = getenv("SPRIG_PLACEMENT"); /* one placement, by hand */
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        kind = kinds[i];
        if (only && strcmp(only, kind) != 0) {
            continue;
        }
        printf("== placement: %s\n", kind);
        failed += cmocka_run_group_tests_name(kind, tests, NULL, NULL);
    }
    if (!failed) {
        tu_rmtree(root);
    }
    return failed ? 1 : 0;
}
