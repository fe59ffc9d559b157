/*
 * test_console_http.c -- the web console's pages on a real server's
 * WebSocket port (issue 15), through raw sockets: every embedded file at
 * its path with its content type and bytes, ETag and 304, HEAD, the
 * Content-Security-Policy and security headers, 404 for unknown paths and
 * every traversal spelling, /health, origins and fetch metadata (another
 * site's page is refused), and no_console.
 */
#include "rawws.h"

#include "console/console.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

typedef struct srvctx {
    const char *dir;
    sprig_server *srv;
    int port;
} srvctx;

static const char *const allowed[] = {"https://app.example", NULL};

static void
start(srvctx *s, bool no_console)
{
    sprig_storage_options so;
    sprig_server_options o;
    s->dir = tu_tmpdir("console_http");
    rawws_server_options(&so, &o, s->dir);
    o.no_console = no_console;
    o.allowed_origins = allowed;
    SPRIG_OK_(sprig_server_new(&so, &o, &s->srv));
    SPRIG_OK_(sprig_server_start(s->srv));
    s->port = sprig_server_ws_port(s->srv);
    assert_true(s->port > 0);
}

static void
stop(srvctx *s)
{
    sprig_server_free(s->srv);
    tu_rmtree(s->dir);
}

/* ---- one raw HTTP exchange ----------------------------------------------- */

typedef struct answer {
    int status;
    char head[8192]; /* status line and headers, NUL-terminated */
    uint8_t *body;   /* malloc'd (NUL-terminated), everything after */
    size_t body_len;
} answer;

/* Send `req` on a fresh connection and read until the server closes. */
static void
exchange(int port, const char *req, answer *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            buf = realloc(buf, (cap *= 2) + 1);
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        assert_true(n >= 0); /* not a timeout: the server closes */
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    uint8_t *end = (uint8_t *)strstr((char *)buf, "\r\n\r\n");
    assert_non_null(end);
    size_t hl = (size_t)(end - buf) + 4;
    assert_true(hl < sizeof a->head);
    memcpy(a->head, buf, hl);
    a->head[hl] = '\0';
    assert_int_equal(sscanf(a->head, "HTTP/1.1 %d ", &a->status), 1);
    a->body_len = len - hl;
    a->body = malloc(a->body_len + 1);
    memcpy(a->body, buf + hl, a->body_len + 1);
    free(buf);
}

/* GET (or `method`) `path` with extra header lines `hdrs` ("" for none). */
static void
request(int port, const char *method, const char *path, const char *hdrs,
        answer *a)
{
    char req[4096];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n",
             method, path, port, hdrs);
    exchange(port, req, a);
}

/* The value of header `name` (case-blind) into out, or false. */
static bool
header(const answer *a, const char *name, char *out, size_t n)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *p = strcasestr(a->head, pat);
    if (!p) {
        return false;
    }
    p += strlen(pat);
    size_t l = strcspn(p, "\r");
    snprintf(out, n, "%.*s", (int)l, p);
    return true;
}

static void
expect_header(const answer *a, const char *name, const char *want)
{
    char v[1024];
    if (!header(a, name, v, sizeof v) || strcmp(v, want)) {
        fail_msg("header %s is \"%s\", wanted \"%s\" in:\n%s", name,
                 header(a, name, v, sizeof v) ? v : "(none)", want, a->head);
    }
}

static void
done(answer *a)
{
    free(a->body);
    a->body = NULL;
}

/* The headers every page answer carries. */
static void
expect_security(const answer *a)
{
    expect_header(a, "X-Content-Type-Options", "nosniff");
    expect_header(a, "X-Frame-Options", "DENY");
    expect_header(a, "Referrer-Policy", "no-referrer");
    expect_header(a, "Connection", "close");
    char csp[1024];
    assert_true(header(a, "Content-Security-Policy", csp, sizeof csp));
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "frame-ancestors 'none'"));
}

/* ---- tests --------------------------------------------------------------- */

/* Every embedded file: 200, its type, its bytes, its ETag; the page's CSP. */
static void
test_every_file(void **state)
{
    srvctx s;
    start(&s, false);
    size_t n = 0;
    for (const sprig__asset *f = sprig__console_assets; f->path; f++, n++) {
        answer a;
        request(s.port, "GET", f->path, "", &a);
        assert_int_equal(a.status, 200);
        expect_header(&a, "Content-Type", f->type);
        expect_header(&a, "ETag", f->etag);
        expect_header(&a, "Cache-Control", "no-cache");
        expect_security(&a);
        assert_int_equal(a.body_len, f->len);
        assert_memory_equal(a.body, f->data, f->len);
        const char *dot = strrchr(f->path, '.');
        if (dot && (!strcmp(dot, ".js") || !strcmp(dot, ".mjs"))) {
            assert_string_equal(f->type, "text/javascript; charset=utf-8");
        }
        done(&a);
    }
    assert_true(n >= 1);
    answer a;
    request(s.port, "GET", "/", "", &a);
    expect_header(&a, "Content-Type", "text/html; charset=utf-8");
    assert_memory_equal(a.body, "<!doctype html>", 15);
    char csp[1024];
    assert_true(header(&a, "Content-Security-Policy", csp, sizeof csp));
    assert_string_equal(csp, sprig__console_csp());
    assert_non_null(strstr(csp, "script-src 'self'"));
    assert_non_null(strstr(csp, "connect-src 'self'"));
    assert_null(strstr(csp, "unsafe")); /* no 'unsafe-inline' / -eval */
    done(&a);
    stop(&s);
}

/* If-None-Match with the ETag (strong, weak, in a list, "*"): 304 and no
 * body; another tag: 200. */
static void
test_etag_304(void **state)
{
    srvctx s;
    start(&s, false);
    const sprig__asset *page = sprig__console_find("/");
    assert_non_null(page);
    char hdr[4][256];
    snprintf(hdr[0], sizeof hdr[0], "If-None-Match: %s\r\n", page->etag);
    snprintf(hdr[1], sizeof hdr[1], "If-None-Match: W/%s\r\n", page->etag);
    snprintf(hdr[2], sizeof hdr[2], "If-None-Match: \"zz\", %s\r\n",
             page->etag);
    snprintf(hdr[3], sizeof hdr[3], "If-None-Match: *\r\n");
    for (int i = 0; i < 4; i++) {
        answer a;
        request(s.port, "GET", "/", hdr[i], &a);
        assert_int_equal(a.status, 304);
        assert_int_equal(a.body_len, 0);
        expect_header(&a, "ETag", page->etag);
        char v[64];
        assert_false(header(&a, "Content-Length", v, sizeof v));
        done(&a);
    }
    answer a;
    request(s.port, "GET", "/", "If-None-Match: \"0000000000000000\"\r\n", &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body_len, page->len);
    done(&a);
    stop(&s);
}

/* HEAD: the GET's headers (Content-Length included), no body. */
static void
test_head(void **state)
{
    srvctx s;
    start(&s, false);
    const sprig__asset *page = sprig__console_find("/");
    answer a;
    request(s.port, "HEAD", "/", "", &a);
    assert_int_equal(a.status, 200);
    char len[32];
    snprintf(len, sizeof len, "%zu", page->len);
    expect_header(&a, "Content-Length", len);
    expect_header(&a, "ETag", page->etag);
    assert_int_equal(a.body_len, 0);
    done(&a);
    request(s.port, "HEAD", "/health", "", &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body_len, 0);
    done(&a);
    request(s.port, "POST", "/", "Content-Length: 0\r\n", &a);
    assert_int_equal(a.status, 405);
    expect_header(&a, "Allow", "GET, HEAD");
    done(&a);
    stop(&s);
}

/* Unknown paths and every spelling of a way out: 404, nothing read. */
static void
test_not_found_and_traversal(void **state)
{
    srvctx s;
    start(&s, false);
    static const char *const paths[] = {
        "/nope",
        "/console/",
        "/console",
        "/index.html",
        "/console/../../../../etc/passwd",
        "/../../../../etc/passwd",
        "/console/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/console/..%2f..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/console//index.html",
        "/./",
        "/console/./app.js/.",
        "/console/%00",
        "/CONSOLE/app.js",
        "/console/lib/../../../CMakeLists.txt",
        "http://127.0.0.1/../etc/passwd",
        "*",
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        answer a;
        request(s.port, "GET", paths[i], "", &a);
        if (a.status != 404 && a.status != 400) {
            fail_msg("%s: status %d", paths[i], a.status);
        }
        assert_null(strstr((char *)a.body, "root:"));
        assert_null(strstr((char *)a.body, "cmake_minimum_required"));
        if (a.status == 404) {
            expect_header(&a, "Content-Type", "text/plain; charset=utf-8");
            expect_header(&a, "Cache-Control", "no-store");
            expect_security(&a);
            assert_non_null(strstr((char *)a.body, "no such page"));
        }
        done(&a);
    }
    stop(&s);
}

/* /health: a JSON object whose connections count the open sessions. */
static void
test_health(void **state)
{
    srvctx s;
    start(&s, false);
    uv_loop_t loop;
    uv_loop_init(&loop);
    rawc k[2];
    for (int round = 0; round < 3; round++) {
        answer a;
        request(s.port, "GET", round == 2 ? "/health?x=1" : "/health", "", &a);
        assert_int_equal(a.status, 200);
        expect_header(&a, "Content-Type", "application/json");
        expect_header(&a, "Cache-Control", "no-store");
        json_error_t err;
        json_t *j = json_loadb((char *)a.body, a.body_len, 0, &err);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "name")),
                            "sprig");
        assert_string_equal(json_string_value(json_object_get(j, "version")),
                            sprig_version());
        assert_string_equal(json_string_value(json_object_get(j, "protocol")),
                            "sprig.v1");
        assert_true(json_is_integer(json_object_get(j, "uptime_s")));
        assert_true(json_is_true(json_object_get(j, "console")));
        json_int_t conns =
            json_integer_value(json_object_get(j, "connections"));
        assert_int_equal(conns, round == 0 ? 0 : 2);
        json_decref(j);
        done(&a);
        if (round == 0) {
            rawc_open(&k[0], &loop, s.port);
            rawc_open(&k[1], &loop, s.port);
        }
    }
    rawc_close(&k[0]);
    rawc_close(&k[1]);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    stop(&s);
}

/* Origins and fetch metadata: the server's own origin, a listed one and
 * no Origin (not a browser) pass; another origin, and another site's page
 * loading a file other than by navigation, get 403. */
static void
test_origins(void **state)
{
    srvctx s;
    start(&s, false);
    char own[128];
    snprintf(own, sizeof own, "Origin: http://127.0.0.1:%d\r\n", s.port);
    struct {
        const char *hdrs;
        int status;
    } cases[] = {
        {"", 200},
        {own, 200},
        {"Origin: https://app.example\r\n", 200},
        {"Origin: http://evil.example\r\n", 403},
        {"Origin: null\r\n", 403},
        {"Origin: http://127.0.0.1:1\r\n", 403},
        {"Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\n"
         "Sec-Fetch-Dest: script\r\n",
         200},
        {"Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\n"
         "Sec-Fetch-Dest: document\r\n",
         200},
        {"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate\r\n"
         "Sec-Fetch-Dest: document\r\n",
         200},
        {"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n"
         "Sec-Fetch-Dest: script\r\n",
         403},
        {"Sec-Fetch-Site: same-site\r\nSec-Fetch-Mode: no-cors\r\n"
         "Sec-Fetch-Dest: image\r\n",
         403},
        {"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate\r\n"
         "Sec-Fetch-Dest: iframe\r\n",
         403},
        {"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: cors\r\n"
         "Sec-Fetch-Dest: empty\r\nOrigin: http://evil.example\r\n",
         403},
        {"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: cors\r\n"
         "Sec-Fetch-Dest: empty\r\nOrigin: https://app.example\r\n",
         200},
    };
    static const char *const paths[] = {"/", "/health"};
    for (size_t p = 0; p < 2; p++) {
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            answer a;
            request(s.port, "GET", paths[p], cases[i].hdrs, &a);
            if (a.status != cases[i].status) {
                fail_msg("GET %s with\n%s: %d, wanted %d", paths[p],
                         cases[i].hdrs, a.status, cases[i].status);
            }
            if (a.status == 403) {
                assert_null(strstr((char *)a.body, "<!doctype"));
                assert_null(strstr((char *)a.body, "uptime"));
            }
            done(&a);
        }
    }
    stop(&s);
}

/* no_console: "/" is the status text, the files are gone, /health stays. */
static void
test_no_console(void **state)
{
    srvctx s;
    start(&s, true);
    answer a;
    request(s.port, "GET", "/", "", &a);
    assert_int_equal(a.status, 200);
    expect_header(&a, "Content-Type", "text/plain; charset=utf-8");
    assert_non_null(strstr((char *)a.body, "Sprig "));
    assert_null(strstr((char *)a.body, "<!doctype"));
    done(&a);
    for (const sprig__asset *f = sprig__console_assets; f->path; f++) {
        if (strcmp(f->path, "/")) {
            request(s.port, "GET", f->path, "", &a);
            assert_int_equal(a.status, 404);
            done(&a);
        }
    }
    request(s.port, "GET", "/health", "", &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr((char *)a.body, "\"console\":false"));
    done(&a);
    stop(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_file),
        cmocka_unit_test(test_etag_304),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_not_found_and_traversal),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_no_console),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
