/*
 * test_open.c -- sprig_open(): one URL opens every placement.  A plain path
 * and file:PATH open the same directory; mem: a fresh memory-only storage;
 * ws:// and wss:// a real server on loopback (wss with its self-signed
 * certificate pinned), and closing that storage closes the client's
 * connection, which the server's connection listing shows.  Unknown
 * schemes are refused with an error that names them.
 */
#include "placement.h"

static const sprig_collection_def cols[] = {{"c", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"s", cols, 1};
static const char *root;

static size_t
db_count(sprig_storage *st)
{
    sprig_database_list *l;
    SPRIG_OK_(sprig_storage_list_databases(st, &l));
    size_t n = sprig_database_list_count(l);
    sprig_database_list_free(l);
    return n;
}

/* Register, create database "d", and see it listed. */
static void
use(sprig_storage *st)
{
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "d", "s", true));
    assert_int_equal(db_count(st), 1);
}

static void
test_file_and_path(void **state)
{
    char dir[1100], url[1200];
    snprintf(dir, sizeof dir, "%s/files", root);
    snprintf(url, sizeof url, "file:%s", dir);
    sprig_storage *st;
    SPRIG_OK_(sprig_open(url, NULL, &st));
    use(st);
    sprig_storage_close(st);
    SPRIG_OK_(sprig_open(dir, NULL, &st)); /* a plain path: the same */
    assert_int_equal(db_count(st), 1);
    sprig_storage_close(st);
    snprintf(url, sizeof url, "file://%s", dir);
    SPRIG_OK_(sprig_open(url, NULL, &st));
    assert_int_equal(db_count(st), 1);
    sprig_storage_close(st);
}

static void
test_mem(void **state)
{
    sprig_storage *st, *st2;
    SPRIG_OK_(sprig_open("mem:", NULL, &st));
    use(st);
    SPRIG_OK_(sprig_open("mem:", NULL, &st2)); /* another, empty */
    assert_int_equal(db_count(st2), 0);
    sprig_storage_close(st2);
    sprig_storage_close(st);
}

static size_t
server_conns(sprig_server *srv)
{
    size_t n;
    SPRIG_OK_(sprig_server_connections(srv, NULL, 0, &n));
    return n;
}

/* Through a server: the storage works, and closing it ends the client's
 * connection (the server lists none afterwards). */
static void
remote(bool tls)
{
    placement p;
    placement_open(&p, tls ? "wss" : "ws", root, &schema);
    char url[64], cert[1300], key[1300];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", tls ? "wss" : "ws",
             sprig_server_ws_port(p.srv));
    sprig_open_options o;
    sprig_open_options_init(&o);
    o.user = PLACEMENT_USER; /* sprig_open logs in after connecting */
    o.password = PLACEMENT_PASSWORD;
    if (tls) {
        placement_cert(root, cert, key, sizeof cert);
        o.pinned_cert_path = cert;
    }
    sprig_storage *st;
    SPRIG_OK_(sprig_open(url, &o, &st));
    SPRIG_OK_(sprig_storage_create_database(st, "d", "s", true));
    assert_int_equal(db_count(sprig_server_storage(p.srv)), 1);
    assert_int_equal(server_conns(p.srv), 2); /* the placement's and ours */
    sprig_storage_close(st);
    size_t n = 2;
    for (int i = 0; i < 400 && (n = server_conns(p.srv)) != 1; i++) {
        usleep(5000);
    }
    assert_int_equal(n, 1);
    placement_close(&p);
}

static void
test_ws(void **state)
{
    remote(false);
}

static void
test_wss(void **state)
{
    remote(true);
}

static void
test_refusals(void **state)
{
    sprig_storage *st = (sprig_storage *)1;
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_open(NULL, NULL, &st));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_open("mem:", NULL, NULL));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_open("foo:bar", NULL, &st));
    assert_non_null(strstr(sprig_errmsg(), "'foo'"));
    assert_null(st);
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_open("gopher://127.0.0.1:1", NULL, &st));
    assert_non_null(strstr(sprig_errmsg(), "'gopher'"));
    SPRIG_EXPECT(SPRIG_EINVAL, sprig_open("file:", NULL, &st));
    /* a scheme the transport table knows, but nothing listens */
    SPRIG_EXPECT(SPRIG_ECONNECT, sprig_open("ws://127.0.0.1:1", NULL, &st));
    /* QUIC: UDP, so "refused" is the ICMP port-unreachable, at once */
    SPRIG_EXPECT(SPRIG_ECONNECT, sprig_open("quic://127.0.0.1:1", NULL, &st));
    assert_non_null(strstr(sprig_errmsg(), "refused"));
}

int
main(void)
{
    root = tu_tmpdir("open");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_and_path),
        cmocka_unit_test(test_mem),
        cmocka_unit_test(test_ws),
        cmocka_unit_test(test_wss),
        cmocka_unit_test(test_refusals),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(root);
    return rc;
}
