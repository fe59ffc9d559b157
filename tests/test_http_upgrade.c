/*
 * test_http_upgrade.c -- the sans-I/O WebSocket handshake parser and the
 * frame guard of src/transport: good, bad and truncated inputs, fed whole
 * and byte by byte, plus a randomized mutation loop (seed printed; replay
 * with SPRIG_SEED=N).
 */
#include "testutil.h"

#include "transport/http_upgrade.h"
#include "transport/ws_int.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455, 1.3 */

static const char good_req[] = "GET /db?x=1 HTTP/1.1\r\n"
                               "Host: 127.0.0.1:8080\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: keep-alive, Upgrade\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Protocol: chat, sprig/1\r\n"
                               "\r\n";

static const char good_resp[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: " ACCEPT "\r\n"
                                "Sec-WebSocket-Protocol: sprig.v1\r\n"
                                "\r\n";

/* Feed `s` in chunks of `chunk` bytes (0: whole), then EOF if still
 * undecided.  Returns the verdict; *head is where the next protocol
 * starts. */
static int
feed(sprig__http_upgrade *u, const char *s, size_t n, size_t chunk,
     size_t *head)
{
    size_t off = 0;
    int v = SPRIG__HTTP_MORE;
    chunk = chunk ? chunk : n;
    while (off < n && v == SPRIG__HTTP_MORE) {
        size_t len = n - off < chunk ? n - off : chunk, used = 0;
        v = sprig__http_upgrade_feed(u, (const uint8_t *)s + off, len, &used);
        assert_true(used <= len);
        off += v == SPRIG__HTTP_MORE ? len : used;
    }
    if (v == SPRIG__HTTP_MORE) {
        size_t used;
        v = sprig__http_upgrade_feed(u, NULL, 0, &used);
    }
    *head = off;
    return v;
}

static int
server_parse(const char *req, size_t chunk, sprig__http_upgrade *u)
{
    size_t head;
    sprig__http_upgrade_init(u, false, SPRIG_SUBPROTOCOL, NULL);
    return feed(u, req, strlen(req), chunk, &head);
}

/* Parse `req`; expect a refusal with `status` whose reason has `word`. */
static void
expect_refusal(const char *req, int status, const char *word)
{
    sprig__http_upgrade u;
    for (size_t chunk = 0; chunk < 3; chunk++) {
        assert_int_equal(server_parse(req, chunk, &u), SPRIG__HTTP_REFUSE);
        assert_int_equal(u.status, status);
        if (!strstr(u.reason, word)) {
            print_message("reason \"%s\" lacks \"%s\"\n", u.reason, word);
            fail();
        }
        sprig_buf out = {0};
        SPRIG_OK_(sprig__http_answer(&u, "status", &out));
        char line[32];
        snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
        assert_memory_equal(out.data, line, strlen(line));
        sprig_buf_clear(&out);
    }
}

/* The server speaks "sprig.v1", the RFC 6455 token browsers and Node's ws
 * accept, and also the older spelling "sprig/1" (not a token: '/' is a
 * separator), answering with the form the client offered; anything else is
 * refused with a reason that names sprig.v1. */
static void
test_token_form(void **state)
{
    (void)state;
    const char *offers[] = {"sprig.v1", "chat, sprig.v1", "sprig/1"};
    const char *chosen[] = {"sprig.v1", "sprig.v1", "sprig/1"};
    for (int i = 0; i < 3; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: " KEY "\r\n"
                 "Sec-WebSocket-Protocol: %s\r\n\r\n",
                 offers[i]);
        sprig__http_upgrade u;
        size_t head;
        sprig__http_upgrade_init(&u, false, SPRIG_SUBPROTOCOL, NULL);
        assert_int_equal(feed(&u, req, strlen(req), 0, &head),
                         SPRIG__HTTP_UPGRADE);
        sprig_buf out = {0};
        char want[64];
        snprintf(want, sizeof want, "Sec-WebSocket-Protocol: %s\r\n",
                 chosen[i]);
        SPRIG_OK_(sprig__http_answer(&u, NULL, &out));
        SPRIG_OK_(sprig_buf_append(&out, "", 1));
        assert_non_null(strstr(out.data, want));
        sprig_buf_clear(&out);
    }
    expect_refusal("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: " KEY "\r\n"
                   "Sec-WebSocket-Protocol: sprig.v2\r\n\r\n",
                   400, "subprotocol sprig.v1 is required; offered: sprig.v2");
}

static void
test_good_upgrade(void **state)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s\x82\x80rest", good_req);
    for (size_t chunk = 0; chunk < 40; chunk += 7) {
        sprig__http_upgrade u;
        size_t head;
        sprig__http_upgrade_init(&u, false, SPRIG_SUBPROTOCOL, NULL);
        assert_int_equal(feed(&u, buf, strlen(buf), chunk, &head),
                         SPRIG__HTTP_UPGRADE);
        assert_int_equal(head, strlen(good_req)); /* frames start here */
        assert_string_equal(u.path, "/db?x=1");
        assert_string_equal(u.key, KEY);
        sprig_buf out = {0};
        SPRIG_OK_(sprig__http_answer(&u, NULL, &out));
        SPRIG_OK_(sprig_buf_append(&out, "", 1));
        assert_non_null(strstr(out.data, "HTTP/1.1 101 "));
        assert_non_null(strstr(out.data, "Sec-WebSocket-Accept: " ACCEPT));
        assert_non_null(strstr(out.data, "Sec-WebSocket-Protocol: sprig/1"));
        sprig_buf_clear(&out);
    }
}

static void
test_refusals(void **state)
{
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   400, "sprig.v1 is required; offered: none");
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: sprig/2\r\n\r\n",
                   400, "offered: sprig/2");
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                   "Sec-WebSocket-Version: 8\r\n\r\n",
                   426, "Version 13");
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   400, "Key");
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   400, "Key");
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
                   "Sec-WebSocket-Key: " KEY "\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   400, "Key");
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: keep-alive\r\n\r\n",
                   400, "Connection");
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
                   "Connection: Upgrade\r\n\r\n",
                   400, "websocket");
    expect_refusal("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\n\r\n",
                   400, "Host");
    expect_refusal("GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\n\r\n",
                   400, "HTTP/1.1");
    expect_refusal("POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\n\r\n",
                   405, "GET");
    expect_refusal("DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n", 405, "DELETE");
    expect_refusal("GARBAGE\r\n\r\n", 400, "malformed");
    expect_refusal("\x16\x03\x01\x02\x00\x01", 400, "malformed"); /* TLS */
    expect_refusal("GET / HTTP/1.1\r\nHost: x\r\nUpgr", 400, "ended");
}

/* Browser origins (issue 10): a request carrying Origin passes only when
 * it is the server's own (http(s):// + Host) or listed; none: passes (not
 * a browser). */
static int
origin_parse(const char *origin, const char *const *allowed)
{
    char req[512];
    snprintf(req, sizeof req,
             "GET / HTTP/1.1\r\nHost: db.local:5646\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sprig.v1"
             "\r\n%s%s%s\r\n",
             origin ? "Origin: " : "", origin ? origin : "",
             origin ? "\r\n" : "");
    sprig__http_upgrade u;
    size_t head;
    sprig__http_upgrade_init(&u, false, SPRIG_SUBPROTOCOL, NULL);
    u.check_origin = true;
    u.allowed_origins = allowed;
    int v = feed(&u, req, strlen(req), 0, &head);
    if (v == SPRIG__HTTP_REFUSE) {
        assert_int_equal(u.status, 403);
        assert_non_null(strstr(u.reason, "origin"));
    }
    return v;
}

static void
test_origins(void **state)
{
    (void)state;
    static const char *const list[] = {"https://app.example", NULL};
    static const char *const any[] = {"*", NULL};
    assert_int_equal(origin_parse(NULL, NULL), SPRIG__HTTP_UPGRADE);
    assert_int_equal(origin_parse("http://db.local:5646", NULL),
                     SPRIG__HTTP_UPGRADE);
    assert_int_equal(origin_parse("https://db.local:5646", NULL),
                     SPRIG__HTTP_UPGRADE);
    assert_int_equal(origin_parse("http://evil.example", NULL),
                     SPRIG__HTTP_REFUSE);
    assert_int_equal(origin_parse("null", NULL), SPRIG__HTTP_REFUSE);
    assert_int_equal(origin_parse("http://db.local:5647", NULL),
                     SPRIG__HTTP_REFUSE);
    assert_int_equal(origin_parse("https://app.example", list),
                     SPRIG__HTTP_UPGRADE);
    assert_int_equal(origin_parse("http://evil.example", list),
                     SPRIG__HTTP_REFUSE);
    assert_int_equal(origin_parse("http://evil.example", any),
                     SPRIG__HTTP_UPGRADE);
}

static void
test_limits(void **state)
{
    char *big = malloc(20000);
    assert_non_null(big);
    /* a head over 8 KiB */
    int n = snprintf(big, 20000, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + n, 'a', 10000);
    strcpy(big + n + 10000, "\r\n\r\n");
    expect_refusal(big, 431, "over 8192");
    /* a path over 1 KiB */
    n = snprintf(big, 20000, "GET /");
    memset(big + n, 'p', 2000);
    strcpy(big + n + 2000, " HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_refusal(big, 414, "path");
    /* a handshake header over 512 bytes */
    n = snprintf(big, 20000,
                 "GET / HTTP/1.1\r\nHost: x\r\n"
                 "Sec-WebSocket-Protocol: ");
    memset(big + n, 'q', 600);
    strcpy(big + n + 600, "\r\n\r\n");
    expect_refusal(big, 431, "header");
    /* a long header the handshake does not read is fine */
    n = snprintf(big, 20000,
                 "GET / HTTP/1.1\r\nHost: x\r\nX-Long-Header-"
                 "Name-That-Is-Quite-Long-Indeed: ");
    memset(big + n, 'v', 3000);
    strcpy(big + n + 3000, "\r\n\r\n");
    sprig__http_upgrade u;
    assert_int_equal(server_parse(big, 0, &u), SPRIG__HTTP_STATUS_PAGE);
    free(big);
}

static void
test_status_page(void **state)
{
    sprig__http_upgrade u;
    sprig_buf out = {0};
    assert_int_equal(
        server_parse("GET /status HTTP/1.1\r\nHost: x\r\n\r\n", 0, &u),
        SPRIG__HTTP_STATUS_PAGE);
    SPRIG_OK_(sprig__http_answer(&u, "sprig 0.1 ok\n", &out));
    SPRIG_OK_(sprig_buf_append(&out, "", 1));
    assert_non_null(strstr(out.data, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out.data, "\r\n\r\nsprig 0.1 ok\n"));
    out.len = 0;
    assert_int_equal(server_parse("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 0, &u),
                     SPRIG__HTTP_STATUS_PAGE);
    SPRIG_OK_(sprig__http_answer(&u, "body", &out));
    SPRIG_OK_(sprig_buf_append(&out, "", 1));
    assert_non_null(strstr(out.data, "Content-Length: 4\r\n"));
    assert_null(strstr(out.data, "body"));
    out.len = 0;
    SPRIG_OK_(sprig__http_answer(&u, NULL, &out)); /* no status page: 426 */
    SPRIG_OK_(sprig_buf_append(&out, "", 1));
    assert_non_null(strstr(out.data, "HTTP/1.1 426 "));
    sprig_buf_clear(&out);
}

/* Plain pages (issue 15): If-None-Match matching, the fetch metadata kept,
 * and the answers sprig__http_reply_write builds. */
static void
test_pages(void **state)
{
    assert_true(sprig__http_etag_match("\"a1\"", "\"a1\""));
    assert_true(sprig__http_etag_match("W/\"a1\"", "\"a1\""));
    assert_true(sprig__http_etag_match("\"x\" ,W/\"y\",\t\"a1\"", "\"a1\""));
    assert_true(sprig__http_etag_match("*", "\"a1\""));
    assert_false(sprig__http_etag_match("\"a12\"", "\"a1\""));
    assert_false(sprig__http_etag_match("\"a\"", "\"a1\""));
    assert_false(sprig__http_etag_match("", "\"a1\""));
    assert_false(sprig__http_etag_match("\"a1\"", NULL));
    assert_false(sprig__http_etag_match("\"a1", "\"a1\""));

    sprig__http_upgrade u;
    assert_int_equal(
        server_parse("GET /p?q HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"e\"\r\n"
                     "sec-fetch-SITE: Same-Origin\r\nSec-Fetch-Mode: cors\r\n"
                     "Sec-Fetch-Dest: a-destination-name-too-long\r\n\r\n",
                     1, &u),
        SPRIG__HTTP_STATUS_PAGE);
    assert_string_equal(u.if_none_match, "\"e\"");
    assert_string_equal(u.fetch_site, "same-origin");
    assert_string_equal(u.fetch_mode, "cors");
    assert_string_equal(u.fetch_dest, "");
    assert_string_equal(u.path, "/p?q");

    sprig_buf out = {0};
    static const uint8_t body[] = "hello";
    sprig__http_reply rep = {.status = 200,
                             .content_type = "text/x-test",
                             .body = body,
                             .len = 5,
                             .etag = "\"e\"",
                             .csp = "default-src 'self'"};
    SPRIG_OK_(sprig__http_reply_write(&u, &rep, &out)); /* If-None-Match */
    SPRIG_OK_(sprig_buf_append(&out, "", 1));
    assert_non_null(strstr(out.data, "HTTP/1.1 304 Not Modified\r\n"));
    assert_non_null(strstr(out.data, "Content-Security-Policy: default-src "
                                     "'self'\r\n"));
    assert_null(strstr(out.data, "hello"));
    out.len = 0;
    rep.etag = "\"f\"";
    SPRIG_OK_(sprig__http_reply_write(&u, &rep, &out));
    SPRIG_OK_(sprig_buf_append(&out, "", 1));
    assert_non_null(strstr(out.data, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out.data, "Content-Type: text/x-test\r\n"));
    assert_non_null(strstr(out.data, "Content-Length: 5\r\n"));
    assert_non_null(strstr(out.data, "ETag: \"f\"\r\n"));
    assert_non_null(strstr(out.data, "\r\n\r\nhello"));
    out.len = 0;
    rep.status = 500; /* the owner failed: a text 500, no CSP of the page */
    SPRIG_OK_(sprig__http_reply_write(&u, &rep, &out));
    SPRIG_OK_(sprig_buf_append(&out, "", 1));
    assert_non_null(strstr(out.data, "HTTP/1.1 500 "));
    assert_null(strstr(out.data, "default-src 'self'"));
    assert_null(strstr(out.data, "hello"));
    out.len = 0;
    rep = (sprig__http_reply){0}; /* nothing: 404 */
    SPRIG_OK_(sprig__http_reply_write(&u, &rep, &out));
    SPRIG_OK_(sprig_buf_append(&out, "", 1));
    assert_non_null(strstr(out.data, "HTTP/1.1 404 Not Found\r\n"));
    sprig_buf_clear(&out);

    /* another site's page: a script load refused, a navigation passes */
    assert_int_equal(
        server_parse("GET / HTTP/1.1\r\nHost: x\r\nSec-Fetch-Site: cross-site"
                     "\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: script"
                     "\r\n\r\n",
                     0, &u),
        SPRIG__HTTP_REFUSE);
    assert_int_equal(u.status, 403);
    assert_non_null(strstr(u.reason, "another site's page"));
    assert_int_equal(
        server_parse("GET / HTTP/1.1\r\nHost: x\r\nSec-Fetch-Site: cross-site"
                     "\r\nSec-Fetch-Mode: navigate\r\n\r\n",
                     0, &u),
        SPRIG__HTTP_STATUS_PAGE);
}

static int
client_parse(const char *resp, size_t chunk, const char *proto,
             sprig__http_upgrade *u, size_t *head)
{
    sprig__http_upgrade_init(u, true, proto, KEY);
    return feed(u, resp, strlen(resp), chunk, head);
}

static void
test_client_side(void **state)
{
    sprig__http_upgrade u;
    size_t head;
    char buf[512];
    snprintf(buf, sizeof buf, "%s\x82\x01x", good_resp);
    for (size_t chunk = 0; chunk < 30; chunk += 3) {
        assert_int_equal(client_parse(buf, chunk, SPRIG_SUBPROTOCOL, &u, &head),
                         SPRIG__HTTP_UPGRADE);
        assert_int_equal(head, strlen(good_resp));
    }
    /* the server chose nothing, or something else, or a wrong accept */
    assert_int_equal(client_parse(good_resp, 0, "sprig/2", &u, &head),
                     SPRIG__HTTP_REFUSE);
    assert_int_equal(u.status, 1002);
    assert_non_null(strstr(u.reason, "sprig/2"));
    sprig__http_upgrade_init(&u, true, SPRIG_SUBPROTOCOL,
                             "AAAAAAAAAAAAAAAAAAAAAA==");
    assert_int_equal(feed(&u, good_resp, strlen(good_resp), 0, &head),
                     SPRIG__HTTP_REFUSE);
    assert_non_null(strstr(u.reason, "Accept"));
    /* a refusal's body is the reason, with or without Content-Length */
    assert_int_equal(
        client_parse("HTTP/1.1 400 Bad Request\r\nContent-Length: 21\r\n"
                     "\r\nsubprotocol required\nTRAILING",
                     0, SPRIG_SUBPROTOCOL, &u, &head),
        SPRIG__HTTP_REFUSE);
    assert_int_equal(u.status, 400);
    assert_string_equal(u.reason, "subprotocol required");
    assert_int_equal(client_parse("HTTP/1.1 503 Busy\r\nConnection: close\r\n"
                                  "\r\ntoo many connections\n",
                                  4, SPRIG_SUBPROTOCOL, &u, &head),
                     SPRIG__HTTP_REFUSE);
    assert_int_equal(u.status, 503);
    assert_string_equal(u.reason, "too many connections");
    /* the stream ended early, or was not HTTP */
    assert_int_equal(
        client_parse("HTTP/1.1 101 Swi", 0, SPRIG_SUBPROTOCOL, &u, &head),
        SPRIG__HTTP_REFUSE);
    assert_int_equal(u.status, 1006);
    assert_int_equal(
        client_parse("SSH-2.0-OpenSSH\r\n", 0, SPRIG_SUBPROTOCOL, &u, &head),
        SPRIG__HTTP_REFUSE);
    assert_int_equal(u.status, 1002);
}

static void
test_request_round_trip(void **state)
{
    char key[32], accept[32];
    sprig_buf req = {0};
    SPRIG_OK_(sprig__ws_accept_key(KEY, accept));
    assert_string_equal(accept, ACCEPT);
    SPRIG_OK_(sprig__ws_new_key(key));
    assert_int_equal(strlen(key), 24);
    SPRIG_OK_(
        sprig__http_request(&req, "localhost:9", "/p", key, SPRIG_SUBPROTOCOL));
    SPRIG_OK_(sprig_buf_append(&req, "", 1));
    sprig__http_upgrade u;
    assert_int_equal(server_parse(req.data, 0, &u), SPRIG__HTTP_UPGRADE);
    assert_string_equal(u.key, key);
    assert_string_equal(u.path, "/p");
    sprig_buf_clear(&req);
}

/* ---- the frame guard ----------------------------------------------------- */

/* Scan `n` bytes in chunks; returns bytes let through in total. */
static size_t
guard(bool server, uint64_t max, const uint8_t *p, size_t n, size_t chunk,
      sprig__ws_guard *g)
{
    size_t through = 0;
    sprig__ws_guard_init(g, server, max);
    for (size_t off = 0; off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        size_t ok = sprig__ws_guard_scan(g, p + off, len);
        through += ok;
        if (ok < len) {
            break;
        }
    }
    return through;
}

static void
expect_guard(bool server, const char *bytes, size_t n, size_t through, int code,
             const char *word)
{
    for (size_t chunk = 1; chunk <= n; chunk++) {
        sprig__ws_guard g;
        size_t t = guard(server, 100, (const uint8_t *)bytes, n, chunk, &g);
        assert_int_equal(g.code, code);
        if (code) {
            assert_non_null(strstr(g.reason, word));
            /* never the whole bad header: at most its first bytes, passed
             * on in earlier chunks before it could be judged */
            assert_true(t <= through + 13 && t < n);
        } else {
            assert_int_equal(t, n);
        }
    }
}

static void
test_guard(void **state)
{
    /* masked binary "ab", fragmented with a ping inside: fine */
    expect_guard(true, "\x02\x82\0\0\0\0ab\x89\x80\0\0\0\0\x80\x81\0\0\0\0c",
                 21, 21, 0, NULL);
    /* a server's frames are unmasked */
    expect_guard(false,
                 "\x82\x02"
                 "ab\x8a\x00",
                 6, 6, 0, NULL);
    expect_guard(true,
                 "\x82\x02"
                 "ab",
                 4, 0, SPRIG_WS_PROTOCOL, "unmasked");
    expect_guard(false, "\x82\x80\0\0\0\0", 6, 0, SPRIG_WS_PROTOCOL, "masked");
    expect_guard(true, "\x82\x80\0\0\0\0\x81\x80\0\0\0\0", 12, 6,
                 SPRIG_WS_UNSUPPORTED, "binary only");
    expect_guard(true, "\x80\x80\0\0\0\0", 6, 0, SPRIG_WS_PROTOCOL,
                 "continuation");
    expect_guard(true, "\x02\x80\0\0\0\0\x82\x80\0\0\0\0", 12, 6,
                 SPRIG_WS_PROTOCOL, "inside");
    expect_guard(true, "\x09\x80\0\0\0\0", 6, 0, SPRIG_WS_PROTOCOL, "control");
    expect_guard(true, "\xc2\x80\0\0\0\0", 6, 0, SPRIG_WS_PROTOCOL, "reserved");
    expect_guard(true, "\x83\x80\0\0\0\0", 6, 0, SPRIG_WS_PROTOCOL, "opcode");
    expect_guard(true, "\x82\xfe\x00\x10\0\0\0\0", 8, 0, SPRIG_WS_PROTOCOL,
                 "minimal");
    /* over the limit of 100: refused at the header, before the payload */
    expect_guard(true, "\x82\xfe\x01\x00\0\0\0\0", 8, 0, SPRIG_WS_TOO_BIG,
                 "limit of 100");
    /* two fragments of 60 bytes: over the limit at the second header */
    char frag[132] = {0};
    frag[0] = 0x02;
    frag[1] = (char)(0x80 | 60);
    frag[66] = (char)0x80;
    frag[67] = (char)(0x80 | 60);
    expect_guard(true, frag, sizeof frag, 66, SPRIG_WS_TOO_BIG, "limit");
}

/* ---- randomized mutation ------------------------------------------------- */

static void
mutate(uint64_t *seed, uint8_t *buf, size_t *n, size_t cap)
{
    int edits = 1 + (int)(tu_rand(seed) % 4);
    for (int i = 0; i<edits && * n> 0; i++) {
        size_t at = tu_rand(seed) % *n;
        switch (tu_rand(seed) % 4) {
        case 0: buf[at] = (uint8_t)tu_rand(seed); break;
        case 1: *n = at; break; /* truncate */
        case 2:                 /* delete one byte */
            memmove(buf + at, buf + at + 1, *n - at - 1);
            (*n)--;
            break;
        default: /* duplicate a run */
            if (*n + 16 < cap) {
                memmove(buf + at + 16, buf + at, *n - at);
                *n += 16;
            }
        }
    }
}

static void
test_mutations(void **state)
{
    uint64_t seed = tu_seed();
    const char *bases[] = {good_req, good_resp,
                           "GET / HTTP/1.1\r\nHost: x\r\n\r\n"};
    long live = sprig__alloc_live();
    uint8_t buf[1024];
    for (int round = 0; round < 20000; round++) {
        const char *base = bases[round % 3];
        size_t n = strlen(base);
        memcpy(buf, base, n);
        mutate(&seed, buf, &n, sizeof buf);
        size_t chunk = 1 + tu_rand(&seed) % 50, head;
        sprig__http_upgrade u;
        sprig__http_upgrade_init(&u, round % 3 == 1, SPRIG_SUBPROTOCOL, KEY);
        int v = feed(&u, (const char *)buf, n, chunk, &head);
        assert_true(v != SPRIG__HTTP_MORE && head <= n);
        if (round % 3 != 1) {
            sprig_buf out = {0};
            SPRIG_OK_(sprig__http_answer(&u, "ok", &out));
            sprig_buf_clear(&out);
        }
        sprig__ws_guard g;
        assert_true(guard(true, 64, buf, n, chunk, &g) <= n);
    }
    assert_int_equal(sprig__alloc_live(), live);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_upgrade),
        cmocka_unit_test(test_token_form),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_status_page),
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_client_side),
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_guard),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
