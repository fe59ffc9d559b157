/*
 * test_schema_server.c -- the data-loss bug of issue 8 (item 7), over a
 * real server.  `sprig serve --schema examples/schemas/demo.json` serves
 * schema "demo", whose collection "messages" has the declarative view
 * "by-author".  A client listed the schemas and registered the listed one
 * again: the listing carried no views, the registration was accepted, and
 * it deleted the view on disk (every later open failed with "collection
 * 'messages' has no view 'by-author'").  Here a sprig_server is set up as
 * `sprig serve --schema` sets it up, on 127.0.0.1, and this test proves:
 *  - the schema list a client gets equals the server's own, views included;
 *  - registering the listed schema again over the network is accepted and
 *    keeps the view: it still answers over the network, and after the
 *    server stops, the storage reopened without the program (as a tool
 *    opens it) still lists the view and its index answers;
 *  - the old shape of the listing, ["demo",[["messages",0,0]]], sent as a
 *    raw frame, is refused with -5 (SCHEMA) naming the view, in an error
 *    frame carrying the request's id, and the connection keeps serving;
 *  - a C view of a client program, whose code cannot travel, is refused
 *    when the server has no C view of that name.
 */
#include "sockws.h"
#include "schematest.h"

#include "proto/envelope.h"
#include "sprig/client.h"
#include "sprig/server.h"

static const char *root;

static sprig_server *
serve_demo(const char *dir)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = "127.0.0.1:0";
    o.workers = 2;
    sprig_server *srv;
    SPRIG_OK_(sprig_server_new(&so, &o, &srv));
    sprig_schema_def *s;
    SPRIG_OK_(sprig_schema_load_json(
        SPRIG_SOURCE_DIR "/examples/schemas/demo.json", &s));
    sprig_storage *st = sprig_server_storage(srv);
    SPRIG_OK_(sprig_storage_register_schema(st, s));
    SPRIG_OK_(sprig_storage_create_database(st, "default", "demo", true));
    sprig_schema_free(s);
    SPRIG_OK_(sprig_server_start(srv));
    return srv;
}

/* by-author's reduce (a count) for author `who`, and its mapping count. */
static void
expect_by_author(sprig_db *db, const char *who, const char *count)
{
    sprig_view_query q;
    sprig_view_query_init(&q, "messages", "by-author");
    sprig_buf k = {0}, r = {0};
    SPRIG_OK_(sprig_key_from_json(who, strlen(who), &k));
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_buf_bytes(&k);
    SPRIG_OK_(sprig_view_reduce(db, &q, &r));
    if (!tu_bytes_eq(sprig_buf_bytes(&r), count)) {
        fail_msg("by-author %s: %.*s, wanted %s", who, (int)r.len,
                 (const char *)r.data, count);
    }
    sprig_mapping_list *l;
    SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
    assert_int_equal(sprig_mapping_list_count(l), strtoul(count, NULL, 10));
    sprig_mapping_list_free(l);
    sprig_buf_clear(&k);
    sprig_buf_clear(&r);
}

/* The remote list equals the server's own; returns the remote list. */
static sprig_schema_list *
lists_agree(sprig_server *srv, sprig_storage *remote)
{
    sprig_schema_list *here, *there;
    SPRIG_OK_(sprig_storage_list_schemas(sprig_server_storage(srv), &here));
    SPRIG_OK_(sprig_storage_list_schemas(remote, &there));
    assert_int_equal(sprig_schema_list_count(here), 1);
    assert_int_equal(sprig_schema_list_count(there), 1);
    st_same_schema(sprig_schema_list_get(here, 0),
                   sprig_schema_list_get(there, 0));
    const sprig_schema_def *d = st_find(there, "demo");
    assert_non_null(d);
    assert_int_equal(d->collections[0].n_views, 1);
    assert_string_equal(d->collections[0].views[0].name, "by-author");
    assert_string_equal(d->collections[0].views[0].json_key, "from");
    sprig_schema_list_free(here);
    return there;
}

/* Send storage.register_schema with the pre-views listing of "demo" as a
 * raw frame; expect -5 naming the view, with the request's id. */
static void
old_shape_refused(int port)
{
    int fd = rw_open(port);
    sprig_buf b = {0}, in = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__frame_request(&w, 77, NULL, "storage.register_schema");
    sprig__mp_map(&w, 1);
    sprig__mp_str(&w, "schema");
    sprig__mp_array(&w, 2); /* ["demo",[["messages",0,0]]] */
    sprig__mp_str(&w, "demo");
    sprig__mp_array(&w, 1);
    sprig__mp_array(&w, 3);
    sprig__mp_str(&w, "messages");
    sprig__mp_u64(&w, 0);
    sprig__mp_u64(&w, 0);
    SPRIG_OK_(sprig__mp_wr_status(&w));
    rw_send(fd, sprig_buf_bytes(&b));
    assert_true(rw_recv(fd, &in));
    sprig__frame f;
    SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&in), &f));
    assert_int_equal(f.kind, SPRIG__FRAME_ERROR);
    assert_int_equal(f.id, 77);
    assert_int_equal(f.code, SPRIG_ESCHEMA);
    char msg[300];
    snprintf(msg, sizeof msg, "%.*s", (int)f.message.len,
             (const char *)f.message.data);
    if (!strstr(msg, "would drop view 'by-author' of collection 'messages'")) {
        fail_msg("refusal: %s", msg);
    }
    /* the connection still serves */
    b.len = 0;
    sprig__mp_wr_init(&w, &b);
    sprig__frame_request(&w, 78, NULL, "storage.list_schemas");
    sprig__mp_map(&w, 0);
    rw_send(fd, sprig_buf_bytes(&b));
    assert_true(rw_recv(fd, &in));
    SPRIG_OK_(sprig__frame_decode(sprig_buf_bytes(&in), &f));
    assert_int_equal(f.kind, SPRIG__FRAME_RESPONSE);
    assert_int_equal(f.id, 78);
    sprig_buf_clear(&b);
    sprig_buf_clear(&in);
    close(fd);
}

static int
no_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    return SPRIG_OK;
}

static void
test_relist_reregister_reopen(void **state)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/demo", root);
    sprig_server *srv = serve_demo(dir);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", sprig_server_ws_port(srv));
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(url, NULL, &c));
    sprig_storage *remote = sprig_client_storage(c);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(remote, "default", &db));
    const char *docs[] = {"{\"from\":\"ann\",\"text\":\"hi\"}",
                          "{\"from\":\"bob\",\"text\":\"yo\"}",
                          "{\"from\":\"ann\",\"text\":\"again\"}"};
    for (int i = 0; i < 3; i++) {
        SPRIG_OK_(sprig_insert(db, "messages", NULL, sprig_str(docs[i]), NULL));
    }
    expect_by_author(db, "\"ann\"", "2");
    /* list -> register the listed schema again -> views still there */
    sprig_schema_list *l = lists_agree(srv, remote);
    SPRIG_OK_(
        sprig_storage_register_schema(remote, sprig_schema_list_get(l, 0)));
    sprig_schema_list_free(l);
    sprig_schema_list_free(lists_agree(srv, remote));
    sprig_db_close(db);
    SPRIG_OK_(sprig_storage_open_database(remote, "default", &db));
    expect_by_author(db, "\"ann\"", "2");
    expect_by_author(db, "\"bob\"", "1");
    old_shape_refused(sprig_server_ws_port(srv));
    /* a client's C view cannot travel: refused, nothing changes */
    sprig_view_def v[2] = {{.name = "by-author",
                            .version = 1,
                            .policy = SPRIG_VIEW_EAGER,
                            .json_key = "from",
                            .builtin_reduce = SPRIG_REDUCE_COUNT},
                           {.name = "mine", .version = 1, .map = no_map}};
    sprig_collection_def cd = {"messages", SPRIG_ID_U64, 0, v, 2};
    SPRIG_EXPECT(SPRIG_ESCHEMA,
                 sprig_storage_register_schema(
                     remote, &(sprig_schema_def){"demo", &cd, 1}));
    assert_non_null(strstr(sprig_errmsg(), "view 'mine' of collection "
                                           "'messages' is a C view"));
    sprig_schema_list_free(lists_agree(srv, remote));
    sprig_db_close(db);
    sprig_client_close(c);
    sprig_server_free(srv);
    /* reopen, as a tool does: the view is there and its index answers */
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    sprig_storage *st;
    SPRIG_OK_(sprig_storage_open(&so, &st));
    SPRIG_OK_(sprig_storage_list_schemas(st, &l));
    assert_int_equal(st_find(l, "demo")->collections[0].n_views, 1);
    sprig_schema_list_free(l);
    SPRIG_OK_(sprig_storage_open_database(st, "default", &db));
    expect_by_author(db, "\"ann\"", "2");
    sprig_db_close(db);
    sprig_storage_close(st);
}

int
main(void)
{
    root = tu_tmpdir("schema_server");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relist_reregister_reopen),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed ? 1 : 0;
}
