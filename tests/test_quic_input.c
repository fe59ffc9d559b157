/*
 * test_quic_input.c -- a QUIC server under bad input, on loopback: random,
 * truncated and replayed datagrams, datagrams for unknown connection ids
 * (stateless resets), a flood of valid Initial packets from many sources
 * (Retry engages, no state is kept for them), and an ALPN mismatch (the
 * client is refused with the reason).  Throughout, a real client keeps
 * getting answers, and the server's connection and id counts stay bounded.
 *
 * With SPRIG_QUIC_CORPUS=DIR set it also writes the datagrams it captured
 * (Initials, a whole handshake) as seed files for fuzz/fuzz_quic.c.
 * Randomness: SPRIG_SEED.
 */
#include "quictest.h"
#include "udp_proxy.h"

#include "transport/quic_int.h" /* the engine, to make valid Initials */

static const char *root;
static sprig_cert_info cert;
static uint64_t rng;
static sprig_server *srv;
static sprig_client *good; /* the client that must keep being served */
static int port;
static sprig__tls_cfg *trust; /* for make_initial: loaded once (slow) */

enum { NSOCK = 64 }; /* "sources": sockets on distinct ports */
static int socks[NSOCK];

static void
send_from(int i, const uint8_t *d, size_t n)
{
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    (void)!sendto(socks[i % NSOCK], d, n, 0, (struct sockaddr *)&a, sizeof a);
}

static void
stats(sprig__quic_stats *st)
{
    quictest_stats(srv, st);
}

/* The good client still gets answers. */
static void
still_serving(const char *tag)
{
    sprig_db *db;
    char key[32];
    snprintf(key, sizeof key, "k-%s", tag);
    sprig_value v = sprig_value_of_u64(7), got;
    SPRIG_OK_(
        sprig_storage_open_database(sprig_client_storage(good), "db", &db));
    SPRIG_OK_(sprig_kv_set(db, "ns", key, &v, NULL, NULL, NULL));
    SPRIG_OK_(sprig_kv_get(db, "ns", key, false, &got));
    assert_int_equal(got.num.u64, 7);
    sprig_db_close(db);
}

/* Connections and ids stay bounded (the good client's, handshakes that
 * may still be dying, the flood's allowance before Retry engages; closed
 * ones in their closing period hold no engine and are bounded apart). */
static void
bounded(void)
{
    sprig__quic_stats st;
    stats(&st);
    assert_true(st.conns - st.lingering <= 1 + SPRIG__QUIC_RETRY_AFTER);
    assert_true(st.lingering <= srv->opts.max_connections);
    assert_true(st.cids <= st.conns * SPRIG__QUIC_MAX_CIDS);
}

/* ---- making packets ------------------------------------------------------ */

typedef struct capture {
    uint8_t d[8][SPRIG__QUIC_MAX_DGRAM];
    size_t n[8];
    int count;
} capture;

static void
cap_send(void *ctx, const uint8_t *d, size_t n)
{
    capture *c = ctx;
    if (c->count < 8) {
        memcpy(c->d[c->count], d, n);
        c->n[c->count++] = n;
    }
}

static int
nop_data(void *ctx, int64_t sid, const uint8_t *d, size_t n, bool fin)
{
    (void)ctx, (void)sid, (void)d, (void)n, (void)fin;
    return 0;
}
static void
nop_acked(void *ctx, int64_t sid, uint64_t n)
{
    (void)ctx, (void)sid, (void)n;
}
static void
nop_closed(void *ctx, int64_t sid)
{
    (void)ctx, (void)sid;
}
static void
nop_ready(void *ctx)
{
    (void)ctx;
}
static int
nop_cid(void *ctx, const sprig__qcid *c)
{
    (void)ctx, (void)c;
    return 0;
}
static void
nop_cid_rm(void *ctx, const sprig__qcid *c)
{
    (void)ctx, (void)c;
}

/* A valid client Initial (a fresh connection, random ids) into `out`. */
static size_t
make_initial(uint8_t *out)
{
    sprig__qaddr local = {0}, remote = {0};
    sprig__qng_io io = {NULL,      nop_data, nop_acked, nop_closed,
                        nop_ready, nop_cid,  nop_cid_rm};
    sprig__qng_cfg cfg = {0};
    sprig__qng *q;
    capture cap = {0};
    uv_ip4_addr("127.0.0.1", 40000, (struct sockaddr_in *)&local.ss);
    uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)&remote.ss);
    local.len = remote.len = sizeof(struct sockaddr_in);
    if (!trust) {
        SPRIG_OK_(sprig__tls_cfg_client(NULL, &trust));
    }
    cfg.alpn = "sprig/1";
    cfg.host = "127.0.0.1";
    cfg.trust = trust;
    cfg.handshake_timeout_ms = 1000;
    SPRIG_OK_(sprig__qng_client_new(&local, &remote, &cfg, &io, &q));
    sprig__qng_flush(q, NULL, 0, cap_send, &cap);
    sprig__qng_free(q);
    assert_true(cap.count >= 1 && cap.n[0] >= 1200);
    memcpy(out, cap.d[0], cap.n[0]);
    return cap.n[0];
}

static void
corpus_file(const char *name, const uint8_t *d, size_t n)
{
    const char *dir = getenv("SPRIG_QUIC_CORPUS");
    char path[1200];
    if (!dir) {
        return;
    }
    /* the harness's format: 2-byte length, a source byte, the datagram */
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        uint8_t h[3] = {(uint8_t)(n >> 8), (uint8_t)n, 1};
        fwrite(h, 1, 3, f);
        fwrite(d, 1, n, f);
        fclose(f);
    }
}

/* ---- the tests ----------------------------------------------------------- */

static void
test_random_datagrams(void **state)
{
    (void)state;
    uint8_t d[1500];
    for (int i = 0; i < 3000; i++) {
        size_t n = 1 + tu_rand(&rng) % sizeof d;
        for (size_t j = 0; j < n; j++) {
            d[j] = (uint8_t)tu_rand(&rng);
        }
        if (i % 3 == 0) { /* some look like long headers */
            d[0] |= 0xc0;
        }
        send_from(i, d, n);
    }
    usleep(200000);
    still_serving("random");
    bounded();
}

static void
test_truncated_initials(void **state)
{
    (void)state;
    uint8_t ini[SPRIG__QUIC_MAX_DGRAM];
    size_t n = make_initial(ini);
    corpus_file("seed-initial", ini, n);
    for (size_t cut = 0; cut < n; cut += 7) {
        send_from((int)cut, ini, cut);
    }
    for (int i = 0; i < 200; i++) { /* flipped bits, whole length */
        uint8_t bad[SPRIG__QUIC_MAX_DGRAM];
        memcpy(bad, ini, n);
        bad[tu_rand(&rng) % n] ^= (uint8_t)(1u << (tu_rand(&rng) % 8));
        send_from(i, bad, n);
    }
    usleep(300000);
    still_serving("truncated");
    bounded();
}

static void
test_replayed_handshake(void **state)
{
    (void)state;
    /* a real client's datagrams, captured by a relay, then replayed */
    udp_proxy px;
    udp_proxy_start(&px, port, 0, 0, rng);
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.pinned_cert_sha256 = cert.sha256;
    char url[64];
    snprintf(url, sizeof url, "quic://127.0.0.1:%d", px.port);
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(url, &co, &c));
    still_serving("replay-before");
    sprig_client_close(c);
    udp_proxy_stop(&px);
    assert_true(px.nrec >= 2);
    for (int r = 0; r < 20; r++) { /* the whole conversation, again */
        for (int i = 0; i < px.nrec; i++) {
            send_from(r, px.rec[i], px.rec_len[i]);
        }
    }
    for (int i = 0; i < px.nrec && i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "seed-replay-%d", i);
        corpus_file(name, px.rec[i], px.rec_len[i]);
    }
    /* and one Initial many times, from many sources */
    uint8_t ini[SPRIG__QUIC_MAX_DGRAM];
    size_t n = make_initial(ini);
    for (int i = 0; i < 500; i++) {
        send_from(i, ini, n);
    }
    usleep(300000);
    still_serving("replay");
    bounded();
}

static void
test_unknown_cids(void **state)
{
    (void)state;
    sprig__quic_stats before, after;
    stats(&before);
    uint8_t d[100];
    for (int i = 0; i < 300; i++) {
        for (size_t j = 0; j < sizeof d; j++) {
            d[j] = (uint8_t)tu_rand(&rng);
        }
        d[0] = (uint8_t)((d[0] & 0x3f) | 0x40); /* short header, fixed bit */
        send_from(i, d, sizeof d);
    }
    corpus_file("seed-short", d, sizeof d);
    usleep(300000);
    stats(&after);
    print_message("stateless resets sent: %llu\n",
                  (unsigned long long)(after.resets - before.resets));
    /* most of them (a loaded machine's socket buffer may drop some) */
    assert_true(after.resets - before.resets >= 150);
    still_serving("cids");
    bounded();
}

static void
test_initial_flood(void **state)
{
    (void)state;
    sprig__quic_stats before, after;
    stats(&before);
    for (int i = 0; i < 600; i++) { /* each a new connection, new source */
        uint8_t ini[SPRIG__QUIC_MAX_DGRAM];
        size_t n = make_initial(ini);
        send_from(i, ini, n);
        if (i % 50 == 0) {
            bounded();
        }
    }
    usleep(300000);
    stats(&after);
    print_message("flood: %llu Retry packets, %zu connections\n",
                  (unsigned long long)(after.retries - before.retries),
                  after.conns);
    assert_true(after.retries - before.retries >= 300); /* as above */
    bounded();
    still_serving("flood");
    /* a new real client gets through (after a Retry if the flood's
     * handshakes are still pending) */
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.pinned_cert_sha256 = cert.sha256;
    char url[64];
    snprintf(url, sizeof url, "quic://127.0.0.1:%d", port);
    sprig_client *c;
    SPRIG_OK_(sprig_client_connect(url, &co, &c));
    sprig_client_close(c);
}

/* ---- ALPN ---------------------------------------------------------------- */

typedef struct alpn_result {
    bool opened, closed;
    int code;
    char reason[400];
} alpn_result;

static void
alpn_open(sprig__conn *c, void *u)
{
    (void)c;
    ((alpn_result *)u)->opened = true;
}

static void
alpn_close(sprig__conn *c, int code, const char *reason, void *u)
{
    alpn_result *r = u;
    (void)c;
    r->closed = true;
    r->code = code;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
}

static void
test_alpn_mismatch(void **state)
{
    (void)state;
    uv_loop_t loop;
    sprig__conn *conn;
    alpn_result r = {0};
    sprig__conn_cbs cbs = {.on_open = alpn_open, .on_close = alpn_close};
    sprig__tran_opts o;
    char url[64];
    snprintf(url, sizeof url, "quic://127.0.0.1:%d", port);
    uv_loop_init(&loop);
    sprig__tran_opts_init(&o);
    o.subprotocol = "sprig/9";
    o.tls_pin_sha256 = cert.sha256;
    SPRIG_OK_(sprig__tran_connect(&loop, url, &o, &cbs, &r, &conn));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    print_message("refused: %d %s\n", r.code, r.reason);
    assert_true(r.closed);
    assert_false(r.opened);
    assert_int_equal(r.code, SPRIG_CLOSE_TLS);
    assert_non_null(strstr(r.reason, "ALPN"));
    assert_non_null(strstr(r.reason, "sprig/1"));
    still_serving("alpn");
}

/* ---- setup --------------------------------------------------------------- */

static int
setup(void **state)
{
    (void)state;
    sprig_server_options o;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/st", root);
    quictest_options(&o, &cert);
    srv = quictest_server(dir, &o);
    SPRIG_OK_(sprig_server_start(srv));
    port = sprig_server_quic_port(srv);
    good = quictest_client(port, "", &cert);
    for (int i = 0; i < NSOCK; i++) {
        socks[i] = socket(AF_INET, SOCK_DGRAM, 0);
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NSOCK; i++) {
        close(socks[i]);
    }
    sprig_client_close(good);
    sprig_server_free(srv);
    sprig__tls_cfg_free(trust);
    return 0;
}

int
main(void)
{
    rng = tu_seed() | 1;
    root = tu_tmpdir("quic-input");
    if (quictest_cert(root, &cert)) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alpn_mismatch),
        cmocka_unit_test(test_random_datagrams),
        cmocka_unit_test(test_truncated_initials),
        cmocka_unit_test(test_replayed_handshake),
        cmocka_unit_test(test_unknown_cids),
        cmocka_unit_test(test_initial_flood),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    if (!failed) {
        tu_rmtree(root);
    }
    return failed;
}
