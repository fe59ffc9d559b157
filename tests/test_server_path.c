/*
 * test_server_path.c -- the server's one request path, its registry and
 * its authorise step, over a real ws:// connection to a real server on
 * 127.0.0.1 (the raw client of rawws.h, so every row is sent as the frame
 * a client author would build).  It proves:
 *  - walking the server's registry, a sample request for every row
 *    (PubSub rows, and a row added while the server runs, included)
 *    reaches the authorise step exactly once per resource it names, with
 *    the row's action (db.apply: each operation's own, on its document;
 *    a pushed insert on the collection's "document"), the canonical
 *    resource name the row's spec forms
 *    from the request (binary ids, an empty namespace, '.', '*' and '/'
 *    encoded), and the connection's identity (id, peer, transport); a row
 *    without a sample here fails the test, so new rows get one;
 *  - with an authorise callback that refuses, every row is answered
 *    SPRIG_EPERM naming its action and resource, and no refused request
 *    reaches a handler: no database made or deleted, no schema
 *    registered, no document, key or message stored or sent, no
 *    subscriber dropped, and the run-time row's handler never called;
 *  - subscribers are opened and closed off the loop thread: over a
 *    wrapper storage (wrap_storage.h) that notes the thread of every
 *    database handle opened or closed, subscribers made, freed and
 *    dropped with their connection never open or close one on the
 *    server's loop thread;
 *  - a row added at run time is served by name; adding a taken name is
 *    SPRIG_EEXIST, and a row without a handler, or whose resource spec
 *    names no request field or session state off the loop, SPRIG_EINVAL;
 *    the registry stays sorted and holds every built-in row of the API
 *    table.
 */
#include "testutil.h"

#include "rawws.h"
#include "server/server_int.h"
#include "sprig/server.h"
#include "wrap_storage.h"

#include <pthread.h>
#include <stdatomic.h>

static const sprig_collection_def cols[] = {{"msgs", SPRIG_ID_U64, 0},
                                            {"kv", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"door", cols, 2};
static const sprig_collection_def other_cols[] = {{"c", SPRIG_ID_U64, 0}};
static const sprig_schema_def other = {"other", other_cols, 1};

static const char *root;

/* ---- the authorise callback: records what reaches it -------------------- */

typedef struct rec {
    uint64_t client;
    char peer[64], transport[8], action[64], resource[512];
} rec;

static struct {
    pthread_mutex_t lock;
    rec items[16];
    int n;
    int refuse; /* 0: allow; else the value returned */
} R = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0, 0};

static int
authorize(void *ud, const sprig_server_client *c, const char *action,
          const char *resource)
{
    assert_ptr_equal(ud, &R);
    pthread_mutex_lock(&R.lock);
    if (R.n < 16) {
        rec *r = &R.items[R.n++];
        r->client = c->id;
        snprintf(r->peer, sizeof r->peer, "%s", c->peer);
        snprintf(r->transport, sizeof r->transport, "%s", c->transport);
        snprintf(r->action, sizeof r->action, "%s", action);
        snprintf(r->resource, sizeof r->resource, "%s", resource);
    }
    int rc = R.refuse;
    pthread_mutex_unlock(&R.lock);
    return rc;
}

static void
records_clear(int refuse)
{
    pthread_mutex_lock(&R.lock);
    R.n = 0;
    R.refuse = refuse;
    pthread_mutex_unlock(&R.lock);
}

/* ---- a row added at run time -------------------------------------------- */

typedef struct echo_msg {
    char *text;
} echo_msg;
static const sprig__field echo_fields[] = {
    {"text", SPRIG__F_STR, (uint16_t)offsetof(echo_msg, text), 0, 0xffff}};
static const sprig__api echo_row = {"test.echo",
                                    "test.call",
                                    "Echo the text.",
                                    echo_fields,
                                    1,
                                    echo_fields,
                                    1,
                                    sizeof(echo_msg),
                                    sizeof(echo_msg),
                                    false,
                                    SPRIG__READ,
                                    SPRIG__RUN_WORKER,
                                    {SPRIG__RES_API, {"$name"}}};
static atomic_int echo_calls;

static int
echo(sprig__call *c, void *rq, void *rs)
{
    assert_ptr_equal(c->route->udata, &echo_calls);
    atomic_fetch_add(&echo_calls, 1);
    ((echo_msg *)rs)->text = sprig__strdup(((echo_msg *)rq)->text);
    return ((echo_msg *)rs)->text ? SPRIG_OK : SPRIG_ENOMEM;
}

/* ---- sample requests, one per row --------------------------------------- */

typedef union anyreq {
    sprig__db_create_req db_create;
    sprig__db_name_req db_name;
    sprig__schema_register_req schema;
    sprig__apply_req apply;
    sprig__get_req get;
    sprig__get_multiple_req get_multiple;
    sprig__list_req list;
    sprig__count_req count;
    sprig__log_req log;
    sprig__db_req db;
    sprig__kv_set_req kv_set;
    sprig__kv_get_req kv_get;
    sprig__kv_incr_req kv_incr;
    sprig__kv_key_req kv_key;
    sprig__kv_list_req kv_list;
    sprig__view_req view;
    sprig__publish_req publish;
    sprig__topic_req topic;
    sprig__subscriber_req sub;
    echo_msg echo;
    sprig__auth_password_req password;
    sprig__auth_token_req token;
    sprig__auth_assume_req assume;
    sprig__auth_logout_req logout;
    sprig__maint_req maint;
    sprig__admin_req admin;
    sprig__changes_sub_req changes;
    sprig__feed_req feed;
} anyreq;

#define MAIN ((char *)"main")
static const uint8_t id42[8] = {0, 0, 0, 0, 0, 0, 0, 42};
static sprig_bytes multi_ids[2];
static sprig_bytes topics[2];
static sprig_txn *txn;
static uint64_t sub_keep, sub_free; /* two subscribers made in setup */

static void
f_db_create(anyreq *r)
{
    r->db_create =
        (sprig__db_create_req){(char *)"newdb", (char *)"door", true};
}
static void
f_db_delete(anyreq *r)
{
    r->db_name.name = (char *)"gone";
}
static void
f_nothing(anyreq *r)
{
    (void)r;
}
static void
f_db_open(anyreq *r)
{
    r->db_name.name = MAIN;
}
static void
f_schema(anyreq *r)
{
    r->schema.schema = (sprig_schema_def *)&other;
}
static void
f_apply(anyreq *r)
{
    r->apply = (sprig__apply_req){MAIN, txn};
}
static void
f_get(anyreq *r)
{
    r->get = (sprig__get_req){MAIN, (char *)"msgs", {id42, 8}};
}
static void
f_get_multiple(anyreq *r)
{
    r->get_multiple.db = MAIN;
    r->get_multiple.collection = (char *)"kv";
    r->get_multiple.ids = (sprig__bytes_list){multi_ids, 2};
}
static void
f_list(anyreq *r)
{
    r->list.db = MAIN;
    r->list.collection = (char *)"msgs";
}
static void
f_count(anyreq *r)
{
    r->count.db = MAIN;
    r->count.collection = (char *)"msgs";
}
static void
f_db(anyreq *r)
{
    r->db.db = MAIN; /* also log's first field */
}
static void
f_kv_set(anyreq *r)
{
    r->kv_set.db = MAIN;
    r->kv_set.ns = (char *)"";
    r->kv_set.key = (char *)"k 1";
    r->kv_set.value = sprig_value_of_i64(5);
}
static void
f_kv_key(anyreq *r)
{
    r->kv_key = (sprig__kv_key_req){MAIN, (char *)"", (char *)"k 1"};
}
static void
f_kv_incr(anyreq *r)
{
    f_kv_key(r);
    r->kv_incr.amount = sprig_value_of_i64(1);
}
static void
f_kv_list(anyreq *r)
{
    r->kv_list.db = MAIN;
    r->kv_list.ns = (char *)"n";
    r->kv_list.prefix = (char *)"";
}
static void
f_view(anyreq *r)
{
    r->view.db = MAIN;
    r->view.query.q.collection = "msgs";
    r->view.query.q.view = "by-cat";
}
static void
f_publish(anyreq *r)
{
    r->publish.db = MAIN;
    r->publish.topics = (sprig__bytes_list){topics, 2};
    r->publish.payload = sprig_str("hello");
}
static void
f_subscribe(anyreq *r)
{
    r->topic = (sprig__topic_req){sub_keep, sprig_str("news")};
}
static void
f_sub_free(anyreq *r)
{
    r->sub.subscriber = sub_free;
}
static void
f_changes(anyreq *r)
{
    r->changes = (sprig__changes_sub_req){MAIN, (char *)"", 0, false};
}
static void
f_feed(anyreq *r)
{
    r->feed = (sprig__feed_req){MAIN, 999};
}
static void
f_maint(anyreq *r) /* compacting no database: allowed, it changes nothing */
{
    r->maint = (sprig__maint_req){SPRIG__MAINT_COMPACT, (char *)"nosuch"};
}
static void
f_echo(anyreq *r)
{
    r->echo.text = (char *)"hi";
}

static const uint8_t zeros32[32];
static void
f_password(anyreq *r)
{
    r->password = (sprig__auth_password_req){(char *)"u", (char *)"p"};
}
static void
f_token(anyreq *r)
{
    r->token.token = (char *)"0123456789abcdef";
    r->token.nonce = (sprig_bytes){zeros32, 32};
    r->token.mac = (sprig_bytes){zeros32, 32};
}
static void
f_assume(anyreq *r)
{
    r->assume = (sprig__auth_assume_req){(char *)"user", (char *)"bob"};
}
static void
f_logout(anyreq *r)
{
    r->logout.session = 0;
}

static void
f_admin(anyreq *r) /* every admin.* field: each row encodes its own */
{
    r->admin = (sprig__admin_req){.name = (char *)"a.b",
                                  .password = (char *)"pw",
                                  .group = (char *)"g",
                                  .role = (char *)"r",
                                  .user = (char *)"bob",
                                  .id = (char *)"0123456789abcdef",
                                  .actions = (char *)"*",
                                  .resource = (char *)"sprig",
                                  .add = true,
                                  .has_password = true};
}

typedef struct sample {
    const char *api;
    void (*fill)(anyreq *r);
    const char *res[3];     /* the resources, in order */
    const char *actions[3]; /* their actions (NULL: the row's) */
    const char *suffix;     /* after a refusal's message (or NULL) */
} sample;

#define DOC "sprig.db.main.collection."
static const sample samples[] = {
    {"storage.create_database", f_db_create, {"sprig.db.newdb"}},
    {"storage.delete_database", f_db_delete, {"sprig.db.gone"}},
    {"storage.list_databases", f_nothing, {"sprig"}},
    {"storage.database", f_db_open, {"sprig.db.main"}},
    {"storage.register_schema", f_schema, {"sprig.schema.other"}},
    {"storage.list_schemas", f_nothing, {"sprig"}},
    {"storage.maintain", f_maint, {"sprig"}},
    {"server.clients", f_nothing, {"sprig"}},
    {"db.apply",
     f_apply,
     {DOC "msgs.document", DOC "kv.document.a%2Ab"},
     {"document.insert", "document.overwrite"},
     " (operation 1 of the transaction's 2)"},
    {"db.get", f_get, {DOC "msgs.document.%00%00%00%00%00%00%00%2A"}},
    {"db.get_multiple",
     f_get_multiple,
     {DOC "kv.document.a%2Eb", DOC "kv.document.c%2A"}},
    {"db.list", f_list, {DOC "msgs"}},
    {"db.count", f_count, {DOC "msgs"}},
    {"db.list_executed_transactions", f_db, {"sprig.db.main"}},
    {"db.last_transaction_id", f_db, {"sprig.db.main"}},
    {"db.changes_subscribe", f_changes, {"sprig.db.main"}},
    {"db.changes_unsubscribe", f_feed, {"sprig.db.main"}},
    {"kv.set", f_kv_set, {"sprig.db.main.keyvalue..k%201"}},
    {"kv.get", f_kv_key, {"sprig.db.main.keyvalue..k%201"}},
    {"kv.increment", f_kv_incr, {"sprig.db.main.keyvalue..k%201"}},
    {"kv.delete", f_kv_key, {"sprig.db.main.keyvalue..k%201"}},
    {"kv.list", f_kv_list, {"sprig.db.main.keyvalue.n"}},
    {"view.query", f_view, {DOC "msgs.view.by-cat"}},
    {"view.reduce", f_view, {DOC "msgs.view.by-cat"}},
    {"view.reduce_grouped", f_view, {DOC "msgs.view.by-cat"}},
    {"view.delete_docs", f_view, {DOC "msgs.view.by-cat"}},
    {"pubsub.publish",
     f_publish,
     {"sprig.db.main.pubsub.t1", "sprig.db.main.pubsub.t%2F2"}},
    {"pubsub.subscriber_new", f_db, {"sprig.db.main.pubsub"}},
    {"pubsub.subscribe", f_subscribe, {"sprig.db.main.pubsub.news"}},
    {"pubsub.unsubscribe", f_subscribe, {"sprig.db.main.pubsub.news"}},
    {"pubsub.subscriber_free", f_sub_free, {"sprig.db.main.pubsub"}},
    {"test.echo", f_echo, {"sprig.api.test.echo"}},
    {"auth.password", f_password, {"sprig"}},
    {"auth.challenge", f_nothing, {"sprig"}},
    {"auth.token", f_token, {"sprig"}},
    {"auth.assume", f_assume, {"sprig.user.bob"}},
    {"auth.logout", f_logout, {"sprig"}},
    {"server.apis", f_nothing, {"sprig"}},
    {"admin.user_create", f_admin, {"sprig.user.a%2Eb"}},
    {"admin.user_set_password", f_admin, {"sprig.user.a%2Eb"}},
    {"admin.user_delete", f_admin, {"sprig.user.a%2Eb"}},
    {"admin.user_group", f_admin, {"sprig.user.a%2Eb"}},
    {"admin.user_role", f_admin, {"sprig.user.a%2Eb"}},
    {"admin.role_create", f_admin, {"sprig.role.a%2Eb"}},
    {"admin.role_group", f_admin, {"sprig.role.a%2Eb"}},
    {"admin.group_create", f_admin, {"sprig.group.a%2Eb"}},
    {"admin.group_grant", f_admin, {"sprig.group.a%2Eb"}},
    {"admin.group_revoke", f_admin, {"sprig.group.a%2Eb"}},
    {"admin.token_create", f_admin, {"sprig.user.bob"}},
    {"admin.token_delete", f_admin, {"sprig.token.0123456789abcdef"}},
};

static const sample *
sample_of(const char *api)
{
    for (size_t i = 0; i < sizeof samples / sizeof *samples; i++) {
        if (strcmp(samples[i].api, api) == 0) {
            return &samples[i];
        }
    }
    fail_msg("row '%s' has no sample request in this test", api);
    return NULL;
}

/* ---- a server with the callback, and a raw client ------------------------ */

typedef struct fixture {
    sprig_server *srv;
    uv_loop_t loop;
    rawc k;
    uint32_t next_id;
} fixture;

/* Send `api` with `r` and return its answer frame (message to free). */
static rawmsg *
call(fixture *f, const sprig__api *api, const anyreq *r, sprig__frame *out)
{
    uint32_t id = ++f->next_id;
    rawc_request(&f->k, api, id, r);
    return rawc_answer(&f->k, id, out);
}

static uint64_t
new_subscriber(fixture *f)
{
    anyreq r;
    memset(&r, 0, sizeof r);
    f_db(&r);
    sprig__frame fr;
    rawmsg *m = call(f, &sprig__api_subscriber_new, &r, &fr);
    assert_int_equal(fr.kind, SPRIG__FRAME_RESPONSE);
    sprig__subscriber_resp resp = {0};
    SPRIG_OK_(sprig__api_decode(fr.payload, sprig__api_subscriber_new.resp,
                                sprig__api_subscriber_new.n_resp, &resp));
    free(m);
    assert_true(resp.subscriber > 0);
    return resp.subscriber;
}

static int
setup(void **state)
{
    static int n;
    fixture *f = calloc(1, sizeof *f);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/s%d", root, n++);
    sprig_storage_options so;
    sprig_server_options o;
    rawws_server_options(&so, &o, dir);
    o.authorize = authorize;
    o.authorize_udata = &R;
    records_clear(0);
    SPRIG_OK_(sprig_server_new(&so, &o, &f->srv));
    sprig_storage *st = sprig_server_storage(f->srv);
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "main", "door", false));
    SPRIG_OK_(sprig_storage_create_database(st, "gone", "door", false));
    SPRIG_OK_(sprig_server_start(f->srv));
    uv_loop_init(&f->loop);
    rawc_open(&f->k, &f->loop, sprig_server_ws_port(f->srv));
    sub_keep = new_subscriber(f);
    sub_free = new_subscriber(f);
    atomic_store(&echo_calls, 0);
    /* a row added while the server runs */
    SPRIG_OK_(sprig__registry_add(&f->srv->reg, &echo_row, echo, &echo_calls));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    rawc_close(&f->k);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    sprig_server_free(f->srv);
    free(f);
    return 0;
}

/* The records of one request: one per resource of its sample. */
static void
expect_records(const sample *s, const char *row_action, uint64_t client)
{
    size_t want = 0;
    while (want < 3 && s->res[want]) {
        want++;
    }
    pthread_mutex_lock(&R.lock);
    int n = R.n;
    pthread_mutex_unlock(&R.lock);
    if ((size_t)n != want) {
        fail_msg("%s: %d authorise calls, wanted %zu", s->api, n, want);
    }
    for (size_t i = 0; i < want; i++) {
        const rec *r = &R.items[i];
        const char *action = s->actions[i] ? s->actions[i] : row_action;
        if (strcmp(r->action, action) || strcmp(r->resource, s->res[i])) {
            fail_msg("%s: authorised (%s, %s), wanted (%s, %s)", s->api,
                     r->action, r->resource, action, s->res[i]);
        }
        assert_int_equal(r->client, client);
        assert_string_equal(r->transport, "ws");
        assert_memory_equal(r->peer, "127.0.0.1:", 10);
    }
}

/* What the samples change when they are allowed (the control for the
 * refusal test's "nothing changed"). */
static void
expect_samples_applied(sprig_storage *st, sprig_db *db, sprig_subscriber *sub)
{
    sprig_database_list *dl;
    SPRIG_OK_(sprig_storage_list_databases(st, &dl));
    assert_int_equal(sprig_database_list_count(dl), 2); /* main, newdb */
    assert_string_equal(sprig_database_list_name(dl, 1), "newdb");
    sprig_database_list_free(dl);
    sprig_schema_list *sl;
    SPRIG_OK_(sprig_storage_list_schemas(st, &sl));
    assert_int_equal(sprig_schema_list_count(sl), 2);
    sprig_schema_list_free(sl);
    uint64_t count = 0;
    SPRIG_OK_(sprig_count(db, "msgs", NULL, &count));
    assert_int_equal(count, 1);
    sprig_value v;
    SPRIG_OK_(sprig_kv_get(db, "", "k 1", false, &v)); /* kv.set came last */
    assert_int_equal(v.kind, SPRIG_VALUE_I64);
    assert_int_equal(v.num.i64, 5);
    sprig_message *m;
    SPRIG_OK_(sprig_subscriber_recv(sub, 2000, &m));
    assert_true(tu_bytes_eq(sprig_message_payload(m), "hello"));
    sprig_message_free(m);
}

/* The database "main" and a local subscriber of "t1" on it (the caller
 * frees both). */
static void
open_main(sprig_storage *st, sprig_db **db, sprig_subscriber **local)
{
    SPRIG_OK_(sprig_storage_open_database(st, "main", db));
    SPRIG_OK_(sprig_subscriber_new(*db, local));
    SPRIG_OK_(sprig_subscribe(*local, sprig_str("t1")));
}

/* Send route `rt`'s sample request (*s: the sample) and return its answer
 * frame (message to free). */
static rawmsg *
call_sample(fixture *f, const sprig__route *rt, const sample **s,
            sprig__frame *out)
{
    *s = sample_of(rt->api.name);
    anyreq r;
    memset(&r, 0, sizeof r);
    (*s)->fill(&r);
    return call(f, &rt->api, &r, out);
}

static void
test_every_row_reaches_authorise(void **state)
{
    fixture *f = *state;
    sprig_storage *st = sprig_server_storage(f->srv);
    sprig_db *db;
    sprig_subscriber *local;
    open_main(st, &db, &local);
    size_t n = sprig__registry_count(&f->srv->reg);
    assert_int_equal(n, sprig__api_count + 1); /* + test.echo */
    uint64_t client = R.items[0].client;       /* setup's subscriber_new */
    assert_true(client > 0);
    for (size_t i = 0; i < n; i++) {
        const sprig__route *rt = sprig__registry_at(&f->srv->reg, i);
        records_clear(0);
        sprig__frame fr;
        const sample *s;
        free(call_sample(f, rt, &s, &fr));
        expect_records(s, rt->api.action, client);
    }
    expect_samples_applied(st, db, local);
    sprig_subscriber_free(local);
    sprig_db_close(db);
}

/* Every row refused: EPERM naming action and resource, for each. */
static void
refuse_every_row(fixture *f)
{
    size_t n = sprig__registry_count(&f->srv->reg);
    for (size_t i = 0; i < n; i++) {
        const sprig__route *rt = sprig__registry_at(&f->srv->reg, i);
        records_clear(i % 2 ? SPRIG_EPERM : 1); /* 1: any refusal is EPERM */
        sprig__frame fr;
        const sample *s;
        rawmsg *m = call_sample(f, rt, &s, &fr);
        char want[700], got[700];
        snprintf(want, sizeof want,
                 "not allowed: action '%s' on resource '%s'%s",
                 s->actions[0] ? s->actions[0] : rt->api.action, s->res[0],
                 s->suffix ? s->suffix : "");
        snprintf(got, sizeof got, "%.*s", (int)fr.message.len,
                 (const char *)fr.message.data);
        if (fr.kind != SPRIG__FRAME_ERROR || fr.code != SPRIG_EPERM ||
            strcmp(got, want) != 0) {
            fail_msg("%s: got kind %d code %d \"%s\"", rt->api.name,
                     (int)fr.kind, fr.code, got);
        }
        free(m);
    }
}

static void
test_refused_rows_reach_no_handler(void **state)
{
    fixture *f = *state;
    sprig_storage *st = sprig_server_storage(f->srv);
    sprig_db *db;
    sprig_subscriber *local;
    open_main(st, &db, &local);
    refuse_every_row(f);
    records_clear(0);
    /* nothing happened */
    sprig_database_list *dl;
    SPRIG_OK_(sprig_storage_list_databases(st, &dl));
    assert_int_equal(sprig_database_list_count(dl), 2); /* gone, main */
    assert_string_equal(sprig_database_list_name(dl, 0), "gone");
    sprig_database_list_free(dl);
    sprig_schema_list *sl;
    SPRIG_OK_(sprig_storage_list_schemas(st, &sl));
    assert_int_equal(sprig_schema_list_count(sl), 1);
    sprig_schema_list_free(sl);
    uint64_t count = 1, last = 1;
    SPRIG_OK_(sprig_count(db, "msgs", NULL, &count));
    assert_int_equal(count, 0);
    SPRIG_OK_(sprig_last_txn_id(db, &last));
    assert_int_equal(last, 0);
    sprig_value v;
    SPRIG_EXPECT(SPRIG_ENOTFOUND, sprig_kv_get(db, "", "k 1", false, &v));
    sprig_message *msg;
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_subscriber_recv(local, 100, &msg));
    assert_int_equal(atomic_load(&echo_calls), 0);
    /* the subscriber whose free was refused still exists */
    anyreq r;
    memset(&r, 0, sizeof r);
    r.topic = (sprig__topic_req){sub_free, sprig_str("x")};
    sprig__frame fr;
    rawmsg *m = call(f, &sprig__api_subscribe, &r, &fr);
    assert_int_equal(fr.kind, SPRIG__FRAME_RESPONSE);
    free(m);
    sprig_subscriber_free(local);
    sprig_db_close(db);
}

static void
test_rows_added_at_run_time(void **state)
{
    fixture *f = *state;
    sprig__registry *reg = &f->srv->reg;
    SPRIG_EXPECT(SPRIG_EEXIST, sprig__registry_add(reg, &echo_row, echo, NULL));
    SPRIG_EXPECT(SPRIG_EEXIST,
                 sprig__registry_add(reg, &sprig__api_get, echo, NULL));
    sprig__api nameless = echo_row;
    nameless.name = "test.other";
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__registry_add(reg, &nameless, NULL, NULL));
    sprig__api bad_spec = nameless; /* a part naming no request field */
    bad_spec.resource = (sprig__res_spec){SPRIG__RES_DATABASE, {"db"}};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__registry_add(reg, &bad_spec, echo, NULL));
    bad_spec.resource = (sprig__res_spec){SPRIG__RES_PUBSUB, {"text.db"}};
    SPRIG_EXPECT(SPRIG_EINVAL, sprig__registry_add(reg, &bad_spec, echo, NULL));
    /* sorted, and every built-in row of the API table is there */
    size_t n = sprig__registry_count(reg);
    for (size_t i = 1; i < n; i++) {
        assert_true(strcmp(sprig__registry_at(reg, i - 1)->api.name,
                           sprig__registry_at(reg, i)->api.name) < 0);
    }
    for (size_t i = 0; i < sprig__api_count; i++) {
        const sprig__route *rt =
            sprig__registry_find(reg, sprig_str(sprig__api_table[i]->name));
        assert_non_null(rt);
        assert_string_equal(rt->api.action, sprig__api_table[i]->action);
    }
    assert_null(sprig__registry_find(reg, sprig_str("test.echoo")));
    /* the run-time row answers by name */
    anyreq r;
    memset(&r, 0, sizeof r);
    r.echo.text = (char *)"over the wire";
    sprig__frame fr;
    rawmsg *m = call(f, &echo_row, &r, &fr);
    assert_int_equal(fr.kind, SPRIG__FRAME_RESPONSE);
    echo_msg out = {0};
    SPRIG_OK_(sprig__api_decode(fr.payload, echo_fields, 1, &out));
    assert_string_equal(out.text, "over the wire");
    sprig__api_free(echo_fields, 1, &out);
    free(m);
    assert_int_equal(atomic_load(&echo_calls), 1);
}

static bool
all_closed(wrap_storage *w, long want)
{
    for (int i = 0; i < 500 && atomic_load(&w->closed) < want; i++) {
        usleep(10 * 1000);
    }
    return atomic_load(&w->closed) >= want;
}

static void
test_subscribers_off_loop(void **state)
{
    (void)state;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/off_loop", root);
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    so.durability = SPRIG_DURABILITY_NONE;
    sprig_storage *in;
    SPRIG_OK_(sprig_storage_open(&so, &in));
    SPRIG_OK_(sprig_storage_register_schema(in, &schema));
    SPRIG_OK_(sprig_storage_create_database(in, "main", "door", false));
    wrap_storage *w = (wrap_storage *)wrap_storage_new(in);
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.open_access = true; /* tests of other parts: no authentication */
    o.ws_listen = "127.0.0.1:0";
    o.workers = 2;
    o.ping_interval_ms = o.idle_timeout_ms = 0;
    fixture f;
    memset(&f, 0, sizeof f);
    SPRIG_OK_(sprig_server_new_for(&w->base, &o, &f.srv));
    SPRIG_OK_(sprig_server_start(f.srv));
    w->watch = f.srv->thread; /* the loop thread */
    atomic_store(&w->watching, true);
    uv_loop_init(&f.loop);
    rawc_open(&f.k, &f.loop, sprig_server_ws_port(f.srv));
    uint64_t subs[6];
    for (int i = 0; i < 6; i++) {
        subs[i] = new_subscriber(&f);
    }
    for (int i = 0; i < 3; i++) { /* freed by request */
        anyreq r;
        memset(&r, 0, sizeof r);
        r.sub.subscriber = subs[i];
        sprig__frame fr;
        rawmsg *m = call(&f, &sprig__api_subscriber_free, &r, &fr);
        assert_int_equal(fr.kind, SPRIG__FRAME_RESPONSE);
        free(m);
    }
    assert_true(all_closed(w, 3));
    rawc_close(&f.k); /* the other three go with the connection */
    assert_true(all_closed(w, 6));
    assert_true(atomic_load(&w->opened) >= 6);
    assert_int_equal(atomic_load(&w->on_watch), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    uv_loop_close(&f.loop);
    sprig_server_free(f.srv);
    sprig_storage_close(&w->base); /* borrowed by the server: ours */
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(void)
{
    root = tu_tmpdir("server_path");
    multi_ids[0] = sprig_str("a.b");
    multi_ids[1] = sprig_str("c*");
    topics[0] = sprig_str("t1");
    topics[1] = sprig_str("t/2");
    if (sprig_txn_new(&txn) != 0 ||
        sprig_txn_insert(txn, "msgs", NULL, sprig_str("x")) != 0 ||
        sprig_txn_overwrite(txn, "kv", sprig_str("a*b"), sprig_str("y")) != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(test_every_row_reaches_authorise),
        T(test_refused_rows_reach_no_handler),
        T(test_rows_added_at_run_time),
        cmocka_unit_test(test_subscribers_off_loop),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    sprig_txn_free(txn);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
