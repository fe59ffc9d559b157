/*
 * sockws.h -- a minimal WebSocket client over a plain blocking socket, for
 * tests that must send frames no well-behaved sprig_client sends (a request
 * id of 0, a session, a schema in an old shape).  It speaks just enough of
 * RFC 6455 for a Sprig server on loopback: the upgrade with subprotocol
 * sprig/1, masked binary messages out, unmasked messages in (pings are
 * skipped).  It shares nothing with src/transport, so it also checks the
 * server against the RFC rather than against our own client.  Every read
 * has a timeout (5 s): a missing answer fails the test instead of hanging.
 */
#ifndef SPRIG_SOCKWS_H
#define SPRIG_SOCKWS_H

#include "testutil.h"

#include "proto/api.h"
#include "proto/envelope.h"
#include "proto/mp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

/* Read exactly n bytes; false on timeout, error or EOF. */
static inline bool
rw_read(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = recv(fd, (char *)p + got, n - got, 0);
        if (r <= 0) {
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

/* A connected, upgraded socket to 127.0.0.1:port. */
static inline int
rw_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Protocol: sprig/1\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    char head[2048];
    size_t n = 0;
    while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        assert_true(n < sizeof head - 1 && rw_read(fd, head + n, 1));
        n++;
    }
    head[n] = 0;
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        fail_msg("upgrade refused: %s", head);
    }
    return fd;
}

/* Send one masked binary message. */
static inline void
rw_send(int fd, sprig_bytes m)
{
    uint8_t h[14] = {0x82};
    size_t hn = 2;
    if (m.len < 126) {
        h[1] = 0x80 | (uint8_t)m.len;
    } else if (m.len < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(m.len >> 8);
        h[3] = (uint8_t)m.len;
        hn = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++) {
            h[2 + i] = (uint8_t)((uint64_t)m.len >> (56 - 8 * i));
        }
        hn = 10;
    }
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(h + hn, mask, 4);
    hn += 4;
    uint8_t *out = malloc(hn + m.len);
    assert_non_null(out);
    memcpy(out, h, hn);
    for (size_t i = 0; i < m.len; i++) {
        out[hn + i] = ((const uint8_t *)m.data)[i] ^ mask[i % 4];
    }
    assert_int_equal(send(fd, out, hn + m.len, 0), (ssize_t)(hn + m.len));
    free(out);
}

/* The next binary message (caller frees *out); false if the connection
 * closed or nothing came in time. */
static inline bool
rw_recv(int fd, sprig_buf *out)
{
    for (;;) {
        uint8_t h[2];
        uint64_t len;
        if (!rw_read(fd, h, 2)) {
            return false;
        }
        len = h[1] & 0x7f;
        if (len >= 126) {
            uint8_t e[8];
            size_t en = len == 126 ? 2 : 8;
            if (!rw_read(fd, e, en)) {
                return false;
            }
            len = 0;
            for (size_t i = 0; i < en; i++) {
                len = len << 8 | e[i];
            }
        }
        uint8_t *p = malloc(len ? (size_t)len : 1);
        bool ok = p && rw_read(fd, p, (size_t)len);
        out->len = 0;
        ok = ok && sprig_buf_append(out, p, (size_t)len) == 0;
        free(p);
        if (!ok) {
            return false;
        }
        if ((h[0] & 0x0f) == 0x8) {
            return false; /* close */
        }
        if ((h[0] & 0x0f) == 0x2) {
            return true;
        }
    }
}

/* Send request `id` of row `api` with the request struct `req`. */
static inline void
rw_send_req(int fd, const sprig__api *api, uint32_t id, const void *req)
{
    sprig_buf b = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &b);
    sprig__frame_request(&w, id, NULL, api->name);
    SPRIG_OK_(sprig__api_encode(&w, api->req, api->n_req, req));
    SPRIG_OK_(sprig__mp_wr_status(&w));
    rw_send(fd, sprig_buf_bytes(&b));
    sprig_buf_clear(&b);
}

#endif
