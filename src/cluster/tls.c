/*
 * tls.c -- node-to-node TLS (tls.h): a raft_uv_transport over GnuTLS on
 * the node's libuv loop.
 *
 * Design notes.  A connection (conn) owns a TCP socket, a GnuTLS session,
 * a handshake timer and, once the session is up, one end ("mine") of a
 * socketpair whose other end ("theirs", allocated with raft_malloc as
 * raft_uv frees it) is handed to raft_uv.  Two pumps run on the loop:
 * TCP bytes -> the session (its pull function reads what the socket just
 * delivered; GnuTLS keeps partial records) -> plaintext written to mine;
 * and plaintext read from mine -> the session (corked: one push per read)
 * -> ciphertext written to TCP (the push function only queues a uv_write,
 * so GnuTLS never sees EAGAIN on a write).  Back-pressure: a pump stops
 * reading its source while the write queue of its destination holds more
 * than HIGH_WATER bytes and resumes below LOW_WATER, so a slow peer (or a
 * slow raft_uv) bounds the memory a connection holds.  Closing: when either
 * side ends (TCP EOF or error, TLS error, raft_uv closing its end: mine
 * reads EOF) the conn closes TCP and mine; raft_uv then sees EOF or EPIPE
 * on its end and closes it (SIGPIPE is ignored by the node, see
 * sprig__ctls_transport).  A conn is freed when its last handle closed.
 *
 * Connect: TCP connect, client handshake, verify, send the raft_uv_tcp
 * handshake (protocol 1, id, address) inside the session, then fire the
 * connect callback with theirs.  Accept: server handshake requiring the
 * client's certificate, verify, read that handshake, then fire the accept
 * callback with the id and address it names.  Until then a conn is on the
 * transport's "setup" list, which close() aborts (connects fire with
 * RAFT_CANCELED, as raft_uv_tcp does); the close callback fires once the
 * listener and every conn in setup are gone.
 */
#include "tls.h"

#include "core/core.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define HS_TIMEOUT_MS 10000
#define HIGH_WATER (1u << 20)
#define LOW_WATER (256u << 10)
#define RBUF 65536
#define PRE_LEN 24   /* protocol, id, address length: u64 each, LE */
#define ADDR_MAX 256 /* longest address accepted in that handshake */
#define TCP_PROTOCOL 1
#define LOG_MEMORY 8 /* recent failure lines not printed again for 30 s */

enum { C_CONNECT, C_HANDSHAKE, C_PREAMBLE, C_OPEN, C_CLOSING };

typedef struct conn conn;
struct conn {
    sprig__ctls *t;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_pipe_t mine;
    uv_pipe_t *theirs; /* raft_uv's end; NULL once raft_uv has it */
    uv_connect_t connect;
    uv_shutdown_t shut; /* a failed handshake's alert, flushed */
    bool tcp_closed;
    int handles; /* of tcp, timer, mine: open */
    bool mine_open, tcp_paused, mine_paused, server;
    int state;
    gnutls_session_t s;
    struct raft_uv_connect *req; /* connector, until its callback */
    char peer[64];
    int first_byte; /* of the peer's bytes, -1: none yet */
    const uint8_t *in;
    size_t in_len;
    uint8_t pre[PRE_LEN + ADDR_MAX];
    size_t pre_len;
    conn *next, *prev; /* the transport's setup list */
    uint8_t rbuf[RBUF], pbuf[RBUF];
};

typedef struct wreq {
    uv_write_t w;
    conn *c;
    uv_buf_t b;
} wreq;

struct sprig__ctls {
    uint64_t node;
    gnutls_certificate_credentials_t cred;
    struct raft_uv_transport *tr;
    uv_loop_t *loop;
    raft_id id;
    char address[ADDR_MAX];
    uv_tcp_t listener;
    bool listener_open, closing;
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    conn *setup;
    struct {
        char line[256];
        time_t at;
    } logged[LOG_MEMORY];
    unsigned log_next;
};

static void conn_close(conn *c);
static void feed(conn *c);
static void read_mine(conn *c);
static void read_tcp(conn *c);
static size_t queued(void *stream);

/* ---- credentials ---------------------------------------------------------
 */

int
sprig__ctls_load(const char *ca, const char *cert, const char *key,
                 uint64_t node, sprig__ctls **out)
{
    sprig__ctls *t = sprig__calloc(1, sizeof *t);
    if (!t) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for TLS credentials");
    }
    t->node = node;
    int rc = SPRIG_OK, g = gnutls_certificate_allocate_credentials(&t->cred);
    if (g < 0) {
        rc = sprig__err(SPRIG_ENOMEM, "TLS: %s", gnutls_strerror(g));
    }
    g = rc ? 0
           : gnutls_certificate_set_x509_trust_file(t->cred, ca,
                                                    GNUTLS_X509_FMT_PEM);
    if (!rc && g <= 0) {
        rc = sprig__err(SPRIG_EINVAL, "cluster TLS: CA file %s: %s", ca,
                        g < 0 ? gnutls_strerror(g) : "no certificate in it");
    }
    g = rc ? 0
           : gnutls_certificate_set_x509_key_file(t->cred, cert, key,
                                                  GNUTLS_X509_FMT_PEM);
    if (!rc && g < 0) {
        rc =
            sprig__err(SPRIG_EINVAL, "cluster TLS: certificate %s / key %s: %s",
                       cert, key, gnutls_strerror(g));
    }
    if (rc) {
        sprig__ctls_free(t);
        return rc;
    }
    *out = t;
    return SPRIG_OK;
}

void
sprig__ctls_free(sprig__ctls *t)
{
    if (!t) {
        return;
    }
    if (t->cred) {
        gnutls_certificate_free_credentials(t->cred);
    }
    sprig__free(t);
}

/* ---- logging -------------------------------------------------------------
 */

/* Print one line about `c` to stderr, unless the same line was printed in
 * the last 30 s (raft_uv retries a refused peer every second). */
static void
say(conn *c, const char *why)
{
    sprig__ctls *t = c->t;
    char line[256];
    snprintf(line, sizeof line, "Raft TLS %s %s failed: %s",
             c->server ? "from" : "to", c->peer, why);
    time_t now = time(NULL);
    for (unsigned i = 0; i < LOG_MEMORY; i++) {
        if (strcmp(t->logged[i].line, line) == 0 &&
            now - t->logged[i].at < 30) {
            return;
        }
    }
    unsigned k = t->log_next++ % LOG_MEMORY;
    snprintf(t->logged[k].line, sizeof t->logged[k].line, "%s", line);
    t->logged[k].at = now;
    fprintf(stderr, "sprig: node %llu: %s\n", (unsigned long long)t->node,
            line);
}

static void
fail(conn *c, const char *why)
{
    if (c->state != C_CLOSING) {
        say(c, why);
        conn_close(c);
    }
}

/* ---- the setup list ------------------------------------------------------
 */

static void
setup_remove(conn *c)
{
    if (c->prev) {
        c->prev->next = c->next;
    } else if (c->t->setup == c) {
        c->t->setup = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->next = c->prev = NULL;
}

static void
maybe_closed(sprig__ctls *t)
{
    if (t->closing && !t->listener_open && !t->setup && t->close_cb) {
        raft_uv_transport_close_cb cb = t->close_cb;
        t->close_cb = NULL;
        cb(t->tr);
    }
}

/* ---- closing -------------------------------------------------------------
 */

static void
conn_free(conn *c)
{
    sprig__ctls *t = c->t;
    struct raft_uv_connect *req = c->req;
    setup_remove(c);
    if (c->s) {
        gnutls_deinit(c->s);
    }
    sprig__free(c);
    if (req) {
        req->cb(req, NULL, t->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
    }
    maybe_closed(t);
}

static void
on_handle_closed(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->handles == 0) {
        conn_free(c);
    }
}

static void
on_theirs_closed(uv_handle_t *h)
{
    raft_free(h);
}

static void
close_tcp(conn *c)
{
    if (!c->tcp_closed) {
        c->tcp_closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    }
}

static void
on_shut(uv_shutdown_t *r, int status)
{
    (void)status;
    close_tcp(r->data);
}

static void
on_linger(uv_timer_t *h)
{
    close_tcp(h->data);
}

/* Close every handle of `c`.  A conn still in setup first flushes what it
 * queued (a TLS alert telling the peer why), for at most 2 s. */
static void
conn_close(conn *c)
{
    if (c->state == C_CLOSING) {
        return;
    }
    bool setup = c->state < C_OPEN;
    c->state = C_CLOSING;
    c->shut.data = c;
    if (setup && !c->t->closing && queued(&c->tcp) > 0 &&
        uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shut) == 0) {
        uv_timer_start(&c->timer, on_linger, 2000, 0);
    } else {
        close_tcp(c);
    }
    if (c->mine_open) {
        uv_close((uv_handle_t *)&c->mine, on_handle_closed);
    }
    if (c->theirs) {
        uv_close((uv_handle_t *)c->theirs, on_theirs_closed);
        c->theirs = NULL;
    }
}

/* ---- writes --------------------------------------------------------------
 */

static size_t
queued(void *stream)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)stream);
}

static void
on_tcp_written(uv_write_t *w, int status)
{
    wreq *r = (wreq *)w;
    conn *c = r->c;
    sprig__free(r);
    if (c->state == C_CLOSING) {
        return;
    }
    if (status < 0) {
        conn_close(c); /* the peer went away: raft_uv reconnects */
    } else if (c->mine_paused && queued(&c->tcp) < LOW_WATER) {
        c->mine_paused = false;
        read_mine(c);
    }
}

static void
on_mine_written(uv_write_t *w, int status)
{
    wreq *r = (wreq *)w;
    conn *c = r->c;
    sprig__free(r);
    if (c->state == C_CLOSING) {
        return;
    }
    if (status < 0) {
        conn_close(c);
    } else if (c->tcp_paused && queued(&c->mine) < LOW_WATER) {
        c->tcp_paused = false;
        read_tcp(c);
    }
}

/* Queue a copy of `n` bytes on `stream`. */
static int
write_copy(conn *c, void *stream, const void *p, size_t n, uv_write_cb cb)
{
    wreq *r = sprig__malloc(sizeof *r + n);
    if (!r) {
        return -1;
    }
    r->c = c;
    r->b = uv_buf_init((char *)(r + 1), (unsigned)n);
    memcpy(r + 1, p, n);
    if (uv_write(&r->w, (uv_stream_t *)stream, &r->b, 1, cb) != 0) {
        sprig__free(r);
        return -1;
    }
    return 0;
}

/* GnuTLS's push: queue the ciphertext on the socket. */
static ssize_t
push(gnutls_transport_ptr_t p, const void *data, size_t n)
{
    conn *c = p;
    if (c->state == C_CLOSING ||
        write_copy(c, &c->tcp, data, n, on_tcp_written) != 0) {
        gnutls_transport_set_errno(c->s, EPIPE);
        return -1;
    }
    return (ssize_t)n;
}

/* GnuTLS's pull: what the socket just delivered. */
static ssize_t
pull(gnutls_transport_ptr_t p, void *data, size_t n)
{
    conn *c = p;
    if (!c->in_len) {
        gnutls_transport_set_errno(c->s, EAGAIN);
        return -1;
    }
    size_t k = n < c->in_len ? n : c->in_len;
    memcpy(data, c->in, k);
    c->in += k;
    c->in_len -= k;
    return (ssize_t)k;
}

/* Encrypt `n` bytes of plaintext onto the socket (one push, corked). */
static void
send_plain(conn *c, const uint8_t *p, size_t n)
{
    gnutls_record_cork(c->s);
    while (n > 0) {
        ssize_t w = gnutls_record_send(c->s, p, n);
        if (w < 0) {
            gnutls_record_uncork(c->s, 0);
            fail(c, gnutls_strerror((int)w));
            return;
        }
        p += w;
        n -= (size_t)w;
    }
    int g = gnutls_record_uncork(c->s, 0);
    if (g < 0) {
        fail(c, gnutls_strerror(g));
    }
}

/* ---- the pumps -----------------------------------------------------------
 */

static void
alloc_tcp(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    conn *c = h->data;
    *b = uv_buf_init((char *)c->rbuf, RBUF);
}

static void
alloc_mine(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    conn *c = h->data;
    *b = uv_buf_init((char *)c->pbuf, RBUF);
}

/* Ciphertext from the peer. */
static void
on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (c->state == C_CLOSING || n == 0) {
        return;
    }
    if (n < 0) {
        if (c->state == C_OPEN) {
            conn_close(c); /* the peer closed: raft_uv reconnects */
        } else {
            char why[200];
            snprintf(why, sizeof why,
                     "the peer closed the connection (%s) %s the TLS "
                     "handshake: does it speak TLS, does it trust our "
                     "certificate?",
                     uv_strerror((int)n),
                     c->first_byte < 0 ? "without answering" : "during");
            fail(c, why);
        }
        return;
    }
    if (c->first_byte < 0) {
        c->first_byte = (uint8_t)b->base[0];
    }
    c->in = (const uint8_t *)b->base;
    c->in_len = (size_t)n;
    feed(c);
    c->in_len = 0;
}

/* Plaintext from raft_uv. */
static void
on_mine_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (c->state == C_CLOSING || n == 0) {
        return;
    }
    if (n < 0) {
        conn_close(c); /* raft_uv closed its end */
        return;
    }
    send_plain(c, (const uint8_t *)b->base, (size_t)n);
    if (c->state != C_CLOSING && queued(&c->tcp) > HIGH_WATER) {
        c->mine_paused = true;
        uv_read_stop((uv_stream_t *)&c->mine);
    }
}

static void
read_tcp(conn *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_tcp, on_tcp_read) != 0) {
        fail(c, "cannot read the socket");
    }
}

static void
read_mine(conn *c)
{
    if (uv_read_start((uv_stream_t *)&c->mine, alloc_mine, on_mine_read) != 0) {
        fail(c, "cannot read the socketpair");
    }
}

/* Plaintext to raft_uv. */
static void
to_raft(conn *c, const uint8_t *p, size_t n)
{
    if (write_copy(c, &c->mine, p, n, on_mine_written) != 0) {
        fail(c, "cannot write to the socketpair");
        return;
    }
    if (!c->tcp_paused && queued(&c->mine) > HIGH_WATER) {
        c->tcp_paused = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
}

/* ---- raft_uv's end -------------------------------------------------------
 */

/* The socketpair: mine (read by the pump), theirs (for raft_uv). */
static int
open_pair(conn *c)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        return -1;
    }
    c->theirs = raft_malloc(sizeof *c->theirs);
    if (!c->theirs) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    uv_pipe_init(c->t->loop, &c->mine, 0);
    uv_pipe_init(c->t->loop, c->theirs, 0);
    c->mine.data = c;
    c->mine_open = true;
    c->handles++;
    int e1 = uv_pipe_open(&c->mine, fds[0]);
    int e2 = uv_pipe_open(c->theirs, fds[1]);
    if (e1 || e2) {
        if (e1) {
            close(fds[0]);
        }
        if (e2) {
            close(fds[1]);
        }
        return -1; /* conn_close closes both handles */
    }
    read_mine(c);
    return c->state == C_CLOSING ? -1 : 0;
}

/* Hand the connection over: it is raft_uv's from now on. */
static uv_stream_t *
hand_over(conn *c)
{
    uv_stream_t *s = (uv_stream_t *)c->theirs;
    c->theirs = NULL;
    c->state = C_OPEN;
    uv_timer_stop(&c->timer);
    setup_remove(c);
    return s;
}

/* The connector's first plaintext: raft_uv_tcp's handshake. */
static void
send_preamble(conn *c)
{
    sprig__ctls *t = c->t;
    size_t alen = (strlen(t->address) + 1 + 7) / 8 * 8;
    uint8_t b[PRE_LEN + ADDR_MAX] = {0};
    uint64_t v[3] = {TCP_PROTOCOL, t->id, alen};
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 8; k++) {
            b[i * 8 + k] = (uint8_t)(v[i] >> (8 * k));
        }
    }
    memcpy(b + PRE_LEN, t->address, strlen(t->address));
    send_plain(c, b, PRE_LEN + alen);
}

static uint64_t
le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) {
        v = v << 8 | p[k];
    }
    return v;
}

/* The acceptor: take the preamble's bytes from `*p`; once whole, hand the
 * stream to raft_uv.  Returns false when the conn failed. */
static bool
take_preamble(conn *c, const uint8_t **p, size_t *n)
{
    size_t need = PRE_LEN;
    if (c->pre_len >= PRE_LEN) {
        need += le64(c->pre + 16);
    }
    size_t k = need - c->pre_len < *n ? need - c->pre_len : *n;
    memcpy(c->pre + c->pre_len, *p, k);
    c->pre_len += k;
    *p += k;
    *n -= k;
    if (c->pre_len == PRE_LEN) {
        uint64_t alen = le64(c->pre + 16);
        if (le64(c->pre) != TCP_PROTOCOL || alen == 0 || alen > ADDR_MAX) {
            fail(c, "the peer's Raft handshake is malformed");
            return false;
        }
        return *n ? take_preamble(c, p, n) : true;
    }
    if (c->pre_len < PRE_LEN || c->pre_len < need) {
        return true;
    }
    char addr[ADDR_MAX + 1];
    memcpy(addr, c->pre + PRE_LEN, c->pre_len - PRE_LEN);
    addr[c->pre_len - PRE_LEN] = '\0';
    if (open_pair(c) != 0) {
        fail(c, "cannot make a socketpair");
        return false;
    }
    c->t->accept_cb(c->t->tr, le64(c->pre + 8), addr, hand_over(c));
    return true;
}

/* Decrypted bytes from the peer. */
static void
deliver(conn *c, const uint8_t *p, size_t n)
{
    if (c->state == C_PREAMBLE && !take_preamble(c, &p, &n)) {
        return;
    }
    if (n > 0 && c->state == C_OPEN) {
        to_raft(c, p, n);
    }
}

/* ---- the session ---------------------------------------------------------
 */

static void
handshake_failed(conn *c, int g)
{
    char why[200];
    if (g == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        gnutls_datum_t d = {NULL, 0};
        unsigned st = gnutls_session_get_verify_cert_status(c->s);
        gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509, &d,
                                                     0);
        snprintf(why, sizeof why,
                 "the peer's certificate does not verify against the "
                 "cluster CA: %s",
                 d.data ? (char *)d.data : "?");
        gnutls_free(d.data);
    } else if (g == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        snprintf(why, sizeof why,
                 "the peer refused the TLS handshake (TLS alert: %s): "
                 "our certificate is not from its cluster CA?",
                 gnutls_alert_get_name(gnutls_alert_get(c->s)));
    } else if (c->server && c->first_byte >= 0 && c->first_byte != 0x16) {
        snprintf(why, sizeof why,
                 "the peer does not speak TLS (%s): a node without \"tls\" "
                 "in its cluster file?",
                 gnutls_strerror(g));
    } else {
        snprintf(why, sizeof why, "TLS handshake: %s", gnutls_strerror(g));
    }
    if (g != GNUTLS_E_FATAL_ALERT_RECEIVED) {
        gnutls_alert_send_appropriate(c->s, g); /* tell the peer why */
    }
    fail(c, why);
}

/* Belt and braces after the handshake: a peer certificate was presented
 * and verifies (GnuTLS checked it during the handshake already). */
static bool
peer_verified(conn *c)
{
    unsigned n = 0, st = 0;
    const gnutls_datum_t *crts = gnutls_certificate_get_peers(c->s, &n);
    if (!crts || n == 0) {
        gnutls_alert_send(c->s, GNUTLS_AL_FATAL, GNUTLS_A_CERTIFICATE_REQUIRED);
        fail(c, "the peer presented no certificate");
        return false;
    }
    if (gnutls_certificate_verify_peers2(c->s, &st) < 0 || st != 0) {
        gnutls_alert_send(c->s, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
        fail(c, "the peer's certificate does not verify against the "
                "cluster CA");
        return false;
    }
    return true;
}

static void
handshake_done(conn *c)
{
    if (!peer_verified(c)) {
        return;
    }
    if (c->server) {
        c->state = C_PREAMBLE;
        return;
    }
    if (open_pair(c) != 0) {
        fail(c, "cannot make a socketpair");
        return;
    }
    send_preamble(c);
    if (c->state == C_CLOSING) {
        return;
    }
    struct raft_uv_connect *req = c->req;
    c->req = NULL;
    uv_stream_t *s = hand_over(c);
    req->cb(req, s, 0);
}

/* Drive the session with what the socket delivered (c->in). */
static void
feed(conn *c)
{
    while (c->state == C_HANDSHAKE) {
        int g = gnutls_handshake(c->s);
        if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED) {
            return;
        }
        if (g < 0 && gnutls_error_is_fatal(g)) {
            handshake_failed(c, g);
            return;
        }
        if (g == 0) {
            handshake_done(c);
        }
    }
    uint8_t buf[16384];
    while (c->state == C_PREAMBLE || c->state == C_OPEN) {
        ssize_t n = gnutls_record_recv(c->s, buf, sizeof buf);
        if (n > 0) {
            deliver(c, buf, (size_t)n);
        } else if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            return;
        } else if (n == GNUTLS_E_FATAL_ALERT_RECEIVED) {
            /* TLS 1.3: a server checks the client's certificate after the
             * client finished its handshake, so a refusal arrives here */
            char why[200];
            snprintf(why, sizeof why,
                     "the peer refused the session (TLS alert: %s): our "
                     "certificate is not from its cluster CA?",
                     gnutls_alert_get_name(gnutls_alert_get(c->s)));
            fail(c, why);
        } else if (n == 0 || c->state == C_OPEN) {
            conn_close(c); /* closed (or broken) after the handshake */
        } else if (gnutls_error_is_fatal((int)n)) {
            fail(c, gnutls_strerror((int)n));
        }
    }
}

static int
session(conn *c)
{
    unsigned flags =
        (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK;
    int g = gnutls_init(&c->s, flags);
    g = g < 0 ? g : gnutls_set_default_priority(c->s);
    g = g < 0
            ? g
            : gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, c->t->cred);
    if (g < 0) {
        return g;
    }
    if (c->server) {
        gnutls_certificate_server_set_request(c->s, GNUTLS_CERT_REQUIRE);
        /* no CA names in the request: a client whose certificate is from
         * another CA sends it anyway, and the log says why it is refused */
        gnutls_certificate_send_x509_rdn_sequence(c->s, 1);
    }
    gnutls_session_set_verify_cert(c->s, NULL, 0); /* the CA, no names */
    gnutls_handshake_set_timeout(c->s, 0);         /* our timer */
    gnutls_transport_set_ptr(c->s, c);
    gnutls_transport_set_push_function(c->s, push);
    gnutls_transport_set_pull_function(c->s, pull);
    return 0;
}

/* Start the handshake on a connected socket. */
static void
start_tls(conn *c)
{
    int g = session(c);
    if (g < 0) {
        fail(c, gnutls_strerror(g));
        return;
    }
    c->state = C_HANDSHAKE;
    read_tcp(c);
    if (c->state == C_HANDSHAKE) {
        feed(c); /* a client sends its hello now */
    }
}

/* ---- connections ---------------------------------------------------------
 */

static void
on_timeout(uv_timer_t *h)
{
    fail(h->data, "no TLS handshake within 10 s");
}

static conn *
conn_new(sprig__ctls *t, bool server)
{
    conn *c = sprig__calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    c->t = t;
    c->server = server;
    c->first_byte = -1;
    c->state = C_CONNECT;
    uv_tcp_init(t->loop, &c->tcp);
    uv_timer_init(t->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    uv_timer_start(&c->timer, on_timeout, HS_TIMEOUT_MS, 0);
    c->next = t->setup;
    if (t->setup) {
        t->setup->prev = c;
    }
    t->setup = c;
    return c;
}

static void
on_connection(uv_stream_t *l, int status)
{
    sprig__ctls *t = l->data;
    conn *c = status == 0 && !t->closing ? conn_new(t, true) : NULL;
    if (!c) {
        return;
    }
    snprintf(c->peer, sizeof c->peer, "an unknown peer");
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    start_tls(c);
}

static void
on_connected(uv_connect_t *r, int status)
{
    conn *c = r->data;
    if (c->state == C_CLOSING) {
        return;
    }
    if (status < 0) {
        conn_close(c); /* raft_uv retries; a refused TCP connect is common */
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    start_tls(c);
}

/* "HOST:PORT" (IPv4, as raft_uv_tcp 0.15 takes it). */
static int
parse_addr(const char *a, struct sockaddr_in *out)
{
    char host[ADDR_MAX];
    const char *colon = strrchr(a, ':');
    size_t n = colon ? (size_t)(colon - a) : strlen(a);
    if (n >= sizeof host) {
        return -1;
    }
    memcpy(host, a, n);
    host[n] = '\0';
    return uv_ip4_addr(host, colon ? atoi(colon + 1) : 8080, out);
}

/* ---- the transport -------------------------------------------------------
 */

static int
tr_init(struct raft_uv_transport *tr, raft_id id, const char *address)
{
    sprig__ctls *t = tr->impl;
    t->id = id;
    if (strlen(address) >= sizeof t->address) {
        snprintf(tr->errmsg, sizeof tr->errmsg, "address too long");
        return RAFT_INVALID;
    }
    snprintf(t->address, sizeof t->address, "%s", address);
    uv_tcp_init(t->loop, &t->listener);
    t->listener.data = t;
    t->listener_open = true;
    return 0;
}

static int
tr_listen(struct raft_uv_transport *tr, raft_uv_accept_cb cb)
{
    sprig__ctls *t = tr->impl;
    struct sockaddr_in a;
    t->accept_cb = cb;
    int e = parse_addr(t->address, &a);
    e = e ? e : uv_tcp_bind(&t->listener, (struct sockaddr *)&a, 0);
    e = e ? e : uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
    if (e) {
        snprintf(tr->errmsg, sizeof tr->errmsg, "listen on %.100s: %s",
                 t->address, uv_strerror(e));
        return RAFT_IOERR;
    }
    return 0;
}

static int
tr_connect(struct raft_uv_transport *tr, struct raft_uv_connect *req,
           raft_id id, const char *address, raft_uv_connect_cb cb)
{
    (void)id;
    sprig__ctls *t = tr->impl;
    struct sockaddr_in a;
    if (parse_addr(address, &a) != 0) {
        snprintf(tr->errmsg, sizeof tr->errmsg, "bad address %.100s", address);
        return RAFT_NOCONNECTION;
    }
    conn *c = conn_new(t, false);
    if (!c) {
        return RAFT_NOMEM;
    }
    snprintf(c->peer, sizeof c->peer, "%s", address);
    c->connect.data = c;
    int e = uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&a,
                           on_connected);
    if (e) {
        conn_close(c); /* no callback: the error is returned */
        snprintf(tr->errmsg, sizeof tr->errmsg, "connect to %.100s: %s",
                 address, uv_strerror(e));
        return RAFT_NOCONNECTION;
    }
    req->cb = cb;
    c->req = req;
    return 0;
}

static void
on_listener_closed(uv_handle_t *h)
{
    sprig__ctls *t = h->data;
    t->listener_open = false;
    maybe_closed(t);
}

static void
tr_close(struct raft_uv_transport *tr, raft_uv_transport_close_cb cb)
{
    sprig__ctls *t = tr->impl;
    t->closing = true;
    t->close_cb = cb;
    if (t->listener_open) {
        uv_close((uv_handle_t *)&t->listener, on_listener_closed);
    }
    for (conn *c = t->setup; c; c = c->next) {
        conn_close(c); /* freed (and removed) in a later close callback */
    }
    maybe_closed(t);
}

int
sprig__ctls_transport(sprig__ctls *t, struct raft_uv_transport *tr,
                      uv_loop_t *loop)
{
    void *data = tr->data;
    memset(tr, 0, sizeof *tr);
    tr->data = data;
    tr->impl = t;
    tr->init = tr_init;
    tr->listen = tr_listen;
    tr->connect = tr_connect;
    tr->close = tr_close;
    t->tr = tr;
    t->loop = loop;
    /* a write to a socketpair or socket whose peer closed fails (EPIPE)
     * instead of killing the node, as the server's transports arrange */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
        !(sa.sa_flags & SA_SIGINFO)) {
        signal(SIGPIPE, SIG_IGN);
    }
    return 0;
}
