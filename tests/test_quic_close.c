/*
 * test_quic_close.c -- the closing and draining periods of a QUIC server
 * connection (RFC 9000 §10.2), on loopback with a real server and client:
 *
 *   - closing: the server closes a connection (a message over its
 *     max_frame: close code 1009); a late datagram for that connection,
 *     replayed from a raw socket, gets the server's CONNECTION_CLOSE again
 *     (not a stateless reset, not nothing), rate-limited: the 1st, 2nd,
 *     4th, 8th ... datagram after the close is answered, so 64 late ones
 *     get at least 1 and at most 7 answers (the client's own packets in
 *     flight at the close count too);
 *   - draining: the client closes; late datagrams get nothing;
 *   - both: after the period the connection's memory is gone (the listener
 *     counts no lingering connection) and the same datagram now gets a
 *     stateless reset, as for any connection the server does not know.
 *
 * The late datagram is one the client really sent (recorded by the relay
 * of udp_proxy.h), so it carries one of the connection's ids.
 */
#include "quictest.h"
#include "udp_proxy.h"

#include <poll.h>

static const char *root;
static sprig_cert_info cert;
static uint64_t seed;
static sprig_server *srv;
static int raw = -1; /* the test's own UDP socket: late datagrams */

static void
stats(sprig__quic_stats *st)
{
    quictest_stats(srv, st);
}

/* Wait (10 s at most) until the listener counts `lingering` connections
 * in a closing or draining period (at least / exactly). */
static void
wait_lingering(size_t want, bool at_least)
{
    sprig__quic_stats st;
    for (int i = 0; i < 1000; i++) {
        stats(&st);
        if (at_least ? st.lingering >= want : st.lingering == want) {
            return;
        }
        usleep(10000);
    }
    fail_msg("lingering connections: %zu, wanted %s%zu", st.lingering,
             at_least ? ">= " : "", want);
}

static sprig_client *
client_via(udp_proxy *px)
{
    return quictest_client(px->port, "", &cert);
}

/* A few calls, so the relay records short-header datagrams. */
static void
some_calls(sprig_client *c)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(sprig_client_storage(c), "db", &db));
    for (int i = 0; i < 6; i++) {
        sprig_value v = sprig_value_of_u64((uint64_t)i), got;
        SPRIG_OK_(sprig_kv_set(db, "ns", "k", &v, NULL, NULL, NULL));
        SPRIG_OK_(sprig_kv_get(db, "ns", "k", false, &got));
        assert_int_equal(got.num.u64, (uint64_t)i);
    }
    sprig_db_close(db);
}

/* The last 1-RTT (short header) datagram the client sent, big enough to
 * earn a stateless reset later. */
static size_t
late_datagram(const udp_proxy *px, uint8_t *out)
{
    size_t n = 0;
    for (int i = 0; i < px->nrec; i++) {
        if ((px->rec[i][0] & 0x80) == 0 && px->rec_len[i] >= 60) {
            n = px->rec_len[i];
            memcpy(out, px->rec[i], n);
        }
    }
    assert_true(n > 0);
    return n;
}

static void
send_raw(const uint8_t *d, size_t n)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)sprig_server_quic_port(srv));
    assert_int_equal(sendto(raw, d, n, 0, (struct sockaddr *)&a, sizeof a),
                     (ssize_t)n);
}

/* Datagrams that come to the raw socket until none for `ms`; the length
 * of the last in *got. */
static int
answers(int ms, size_t *got)
{
    uint8_t buf[2048];
    struct pollfd p = {raw, POLLIN, 0};
    int k = 0;
    while (poll(&p, 1, ms) > 0) {
        ssize_t r = recv(raw, buf, sizeof buf, 0);
        if (r > 0) {
            *got = (size_t)r;
            k++;
        }
    }
    return k;
}

/* Send `count` copies of the late datagram at once: how many answers. */
static int
send_late(const uint8_t *d, size_t n, int count, size_t *got)
{
    for (int i = 0; i < count; i++) {
        send_raw(d, n);
    }
    return answers(count ? 300 : 0, got);
}

/* After the period: no lingering connection, and the datagram earns a
 * stateless reset like any for an unknown connection. */
static void
after_period(const uint8_t *late, size_t n)
{
    sprig__quic_stats a, b;
    size_t got = 0;
    wait_lingering(0, false);
    stats(&a);
    assert_int_equal(send_late(late, n, 1, &got), 1);
    stats(&b);
    assert_int_equal(b.resets - a.resets, 1);
    assert_true(got < n); /* a reset is smaller than what provoked it */
    assert_int_equal(b.closes_resent, a.closes_resent);
}

static void
test_closing_period(void **state)
{
    (void)state;
    udp_proxy px;
    uint8_t late[1500];
    udp_proxy_start(&px, sprig_server_quic_port(srv), 0, 0, seed);
    sprig_client *c = client_via(&px);
    some_calls(c);
    size_t n = late_datagram(&px, late);
    sprig__quic_stats a, b;
    stats(&a);
    /* over the server's max_frame: it closes the connection (1009) */
    size_t big = 200 * 1024;
    uint8_t *v = calloc(1, big);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(sprig_client_storage(c), "db", &db));
    sprig_value in = sprig_value_of_bytes((sprig_bytes){v, big});
    assert_int_not_equal(sprig_kv_set(db, "ns", "big", &in, NULL, NULL, NULL),
                         SPRIG_OK);
    sprig_db_close(db);
    free(v);
    wait_lingering(1, true);
    size_t got = 0;
    int answered = send_late(late, n, 64, &got);
    stats(&b);
    print_message("closing period: 64 late datagrams, %d answers, %llu "
                  "CONNECTION_CLOSE repeated, %llu stateless resets\n",
                  answered,
                  (unsigned long long)(b.closes_resent - a.closes_resent),
                  (unsigned long long)(b.resets - a.resets));
    assert_true(answered >= 1 && answered <= 7);
    assert_true(b.closes_resent - a.closes_resent >= (uint64_t)answered);
    assert_int_equal(b.resets, a.resets);
    sprig_client_close(c); /* its reconnection, if any, drains too */
    udp_proxy_stop(&px);
    after_period(late, n);
}

static void
test_draining_period(void **state)
{
    (void)state;
    udp_proxy px;
    uint8_t late[1500];
    udp_proxy_start(&px, sprig_server_quic_port(srv), 0, 0, seed);
    sprig_client *c = client_via(&px);
    some_calls(c);
    size_t n = late_datagram(&px, late);
    sprig__quic_stats a, b;
    stats(&a);
    sprig_client_close(c); /* the server drains */
    wait_lingering(1, true);
    udp_proxy_stop(&px);
    size_t got = 0;
    int answered = send_late(late, n, 4, &got);
    stats(&b);
    print_message("draining period: 4 late datagrams, %d answers\n", answered);
    assert_int_equal(answered, 0);
    assert_int_equal(b.closes_resent, a.closes_resent);
    assert_int_equal(b.resets, a.resets);
    after_period(late, n);
}

static int
setup(void **state)
{
    char dir[1200];
    static int k;
    sprig_server_options o;
    (void)state;
    snprintf(dir, sizeof dir, "%s/db%d", root, k++);
    quictest_options(&o, &cert);
    o.max_connections_per_address = 0;
    o.max_frame = 64 * 1024;
    srv = quictest_server(dir, &o);
    SPRIG_OK_(sprig_server_start(srv));
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sprig_server_free(srv);
    srv = NULL;
    return 0;
}

int
main(void)
{
    seed = tu_seed();
    root = tu_tmpdir("quic-close");
    if (quictest_cert(root, &cert)) {
        return 1;
    }
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    raw = socket(AF_INET, SOCK_DGRAM, 0);
    if (raw < 0 || bind(raw, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("socket");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_closing_period, setup, teardown),
        cmocka_unit_test_setup_teardown(test_draining_period, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    close(raw);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
