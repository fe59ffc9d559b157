/*
 * quic_int.h -- private structures of the QUIC transport ("quic", "sprig").
 *
 * Three parts, so an ngtcp2 upgrade touches one file:
 *   quic_ng.c    the engine: everything that names ngtcp2 (one QUIC
 *                connection's state machine, packets in and out, Retry,
 *                version negotiation, stateless reset, the TLS session it
 *                drives through ngtcp2_crypto_gnutls).  Sans-I/O: it never
 *                touches a socket or a timer, it is handed datagrams and
 *                hands back datagrams through sprig__qng_io.
 *   quic_conn.c  a connection as transport.h sees it (sprig__conn): the
 *                message framing on the stream, the send queue kept until
 *                acknowledged, the timer, close and on_close.
 *   quic_ep.c    endpoints: the UDP socket on the libuv loop, the
 *                connection-id table of a listener, accepting (with Retry
 *                when the server is under a flood), the client's connect.
 *   quic_tran.c  the operations table; quic_cert.c certificates.
 * Nothing outside src/transport includes this header, except the
 * transport's tests and fuzz harness.
 *
 * Framing: the client's first bidirectional stream (id 0, "the message
 * stream") carries messages both ways, each a 4-byte big-endian length
 * and the bytes; a client may also put each request on a stream of its
 * own, answered on that stream (docs/protocol.md, "QUIC", says which is
 * the default and why).  Threads: the loop thread only, as in
 * transport.h.
 */
#ifndef SPRIG_QUIC_INT_H
#define SPRIG_QUIC_INT_H

#include "core/core.h"
#include "transport/transport.h"

#include <sys/socket.h>

typedef struct sprig__qng sprig__qng;         /* engine: one connection */
typedef struct sprig__qng_srv sprig__qng_srv; /* engine: listener state */
typedef struct sprig__quic_ep sprig__quic_ep; /* a UDP endpoint         */
typedef struct sprig__quic_conn sprig__quic_conn;
typedef struct sprig__tls_cfg sprig__tls_cfg; /* tls.c: credentials      */

/** The QUIC transport's operations (quic_tran.c): "quic" and "sprig". */
extern const sprig__tran_ops sprig__quic_tran;

/** Default port of quic:// and sprig:// URLs. */
#define SPRIG__QUIC_PORT 5645
/** Largest datagram written (and the buffer each read gets). */
#define SPRIG__QUIC_MAX_DGRAM 1452
/** Connection ids a connection registers at most (its own, and the
 *  client's original destination id). */
#define SPRIG__QUIC_MAX_CIDS 10
/** Server: handshakes in progress past which a new peer gets a Retry
 *  (address validation) before it costs the server a connection. */
#define SPRIG__QUIC_RETRY_AFTER 16

/** A connection id, as bytes. */
typedef struct sprig__qcid {
    uint8_t len;
    uint8_t data[20];
} sprig__qcid;

/** An address and its length (what a datagram came from or goes to). */
typedef struct sprig__qaddr {
    struct sockaddr_storage ss;
    socklen_t len;
} sprig__qaddr;

/* ---- the engine (quic_ng.c) ---------------------------------------------- */

/** The mapping a client uses unless its URL says otherwise
 *  (`?streams=request`: a stream per request; `?streams=one`: every
 *  message on the message stream). */
#define SPRIG__QUIC_PER_REQUEST false

/** Server: how long the ACK of a request whose answer is not ready in
 *  the loop turn it came (a worker's) waits for the answer to carry it
 *  before it leaves alone.  Well under the 25 ms maximum ACK delay both
 *  sides announce (the peer's probe timeout allows for it). */
#define SPRIG__QUIC_ACK_WAIT_MS 10

/** Bidirectional streams a client may have open besides the message
 *  stream (one request each); the server returns the credit as they
 *  close. */
#define SPRIG__QUIC_REQ_STREAMS 100

/** What the engine calls back into (the connection); all on the loop
 *  thread, from inside sprig__qng_* calls.  Stream ids: -1 is the message
 *  stream, any other a request stream. */
typedef struct sprig__qng_io {
    void *ctx;
    /** Bytes of stream `sid`, in order; `fin`: the peer's last on it.
     *  Nonzero: a violation; the engine closes. */
    int (*data)(void *ctx, int64_t sid, const uint8_t *d, size_t n, bool fin);
    /** The peer acknowledged `n` more bytes of what stream `sid` sent. */
    void (*acked)(void *ctx, int64_t sid, uint64_t n);
    /** Request stream `sid` is closed both ways (or reset): forget it. */
    void (*stream_closed)(void *ctx, int64_t sid);
    /** Handshake complete (the client verified the server). */
    void (*ready)(void *ctx);
    /** A new id of this connection: route datagrams for it here.
     *  Nonzero: out of room. */
    int (*cid_add)(void *ctx, const sprig__qcid *cid);
    /** The peer retired one of this connection's ids. */
    void (*cid_remove)(void *ctx, const sprig__qcid *cid);
} sprig__qng_io;

/** How sprig__qng_read / sprig__qng_expire / sprig__qng_flush went. */
enum {
    SPRIG__QNG_OK = 0,
    SPRIG__QNG_CLOSED = 1, /* closed: sprig__qng_close_info() says why */
};

/** Why an engine closed: the close code reported to on_close and a
 *  sentence. */
typedef struct sprig__qng_why {
    int code;
    char reason[300];
} sprig__qng_why;

/** Listener state: the static secret (Retry tokens, stateless reset
 *  tokens; derived from the key so it survives a restart), server
 *  credentials and the ALPN token.  Errors: SPRIG_EINVAL (bad files),
 *  SPRIG_ENOMEM. */
int sprig__qng_srv_new(const char *cert_file, const char *key_file,
                       const char *alpn, sprig__qng_srv **out);
void sprig__qng_srv_free(sprig__qng_srv *s);

/** What a datagram for no known connection asks of the listener. */
typedef enum sprig__qng_verdict {
    SPRIG__QNG_DROP,   /* ignore it                                    */
    SPRIG__QNG_ACCEPT, /* a valid Initial: make a connection            */
    SPRIG__QNG_VN,     /* send `reply`: version negotiation             */
    SPRIG__QNG_RETRY,  /* send `reply`: Retry (prove your address)      */
    SPRIG__QNG_RESET,  /* send `reply`: stateless reset                 */
    SPRIG__QNG_REFUSE, /* send `reply`: CONNECTION_CLOSE (bad token)    */
} sprig__qng_verdict;

/** An Initial the listener may accept (sprig__qng_classify fills it;
 *  points into the datagram). */
typedef struct sprig__qng_hello {
    sprig__qcid dcid, scid, odcid;
    bool validated; /* came back with our Retry token: odcid is set */
    uint32_t version;
} sprig__qng_hello;

/** Route-less datagram `pkt` from `from`: parse the header and decide.
 *  `want_retry`: ask unvalidated peers to prove their address first.
 *  `reply` (at least SPRIG__QUIC_MAX_DGRAM bytes) receives what to send
 *  for the verdicts that answer, its length in *reply_len. */
sprig__qng_verdict sprig__qng_classify(sprig__qng_srv *s, const uint8_t *pkt,
                                       size_t n, const sprig__qaddr *from,
                                       bool want_retry, uint8_t *reply,
                                       size_t *reply_len,
                                       sprig__qng_hello *hello);

/** A stateless CONNECTION_CLOSE (CONNECTION_REFUSED) for hello `h`:
 *  the server is full.  Its length in *reply_len (0: none). */
void sprig__qng_refuse(const sprig__qng_hello *h, uint8_t *reply,
                       size_t *reply_len);

/** The destination connection id of a datagram (for routing), using
 *  `short_len` for short headers.  False when it is not QUIC. */
bool sprig__qng_dcid(const uint8_t *pkt, size_t n, size_t short_len,
                     sprig__qcid *out);

/** Options an engine takes from the transport options. */
typedef struct sprig__qng_cfg {
    unsigned idle_timeout_ms, ping_interval_ms, handshake_timeout_ms;
    const char *alpn; /* client: the token offered */
    const char *host; /* client: the name verified (and sent as SNI) */
    const sprig__tls_cfg *trust; /* client: what the server must match */
} sprig__qng_cfg;

/** A server connection for an accepted hello.  `local`/`remote`: the
 *  path.  Errors: SPRIG_ENOMEM, SPRIG_EPROTO. */
int sprig__qng_server_new(sprig__qng_srv *s, const sprig__qng_hello *h,
                          const sprig__qaddr *local, const sprig__qaddr *remote,
                          const sprig__qng_cfg *cfg, const sprig__qng_io *io,
                          sprig__qng **out);
/** A client connection (its first flight goes with sprig__qng_flush). */
int sprig__qng_client_new(const sprig__qaddr *local, const sprig__qaddr *remote,
                          const sprig__qng_cfg *cfg, const sprig__qng_io *io,
                          sprig__qng **out);
void sprig__qng_free(sprig__qng *q);

/** A datagram for this connection.  SPRIG__QNG_OK or SPRIG__QNG_CLOSED. */
int sprig__qng_read(sprig__qng *q, const sprig__qaddr *local,
                    const sprig__qaddr *remote, const uint8_t *pkt, size_t n);

/** Stream bytes offered to sprig__qng_flush: `n` bytes at `d` of stream
 *  `sid` (-1: the message stream), `fin` when the stream ends after them.
 *  The engine sets `taken` (bytes it took; it keeps none, the caller
 *  keeps them until `acked`) and `fin_sent`. */
typedef struct sprig__qng_chunk {
    int64_t sid;
    const uint8_t *d;
    size_t n, taken;
    bool fin, fin_sent;
} sprig__qng_chunk;

/** Write due datagrams through `send`: acks, retransmissions, and the
 *  stream bytes of `chunks` (`nchunks` of them), coalesced into as few
 *  packets as they fit. */
int sprig__qng_flush(sprig__qng *q, sprig__qng_chunk *chunks, size_t nchunks,
                     void (*send)(void *ctx, const uint8_t *d, size_t n),
                     void *ctx);
/** Client: open a request stream, its id into *sid.  SPRIG_EBUSY when
 *  the server allows no more now (SPRIG__QNG_CLOSED never: no I/O). */
int sprig__qng_open_stream(sprig__qng *q, int64_t *sid);
/** Client: request streams the server allows besides those open. */
uint64_t sprig__qng_streams_left(sprig__qng *q);

/** Milliseconds until the engine's next deadline (0: due now). */
uint64_t sprig__qng_timeout_ms(sprig__qng *q);
/** The deadline passed: retransmit, or close (idle, handshake). */
int sprig__qng_expire(sprig__qng *q);

/** Close with `code` (the application close code) and `reason`: one
 *  CONNECTION_CLOSE datagram through `send`. */
void sprig__qng_close(sprig__qng *q, int code, const char *reason,
                      void (*send)(void *ctx, const uint8_t *d, size_t n),
                      void *ctx);
/** What a closed engine's connection owes the peer (RFC 9000 §10.2). */
typedef enum sprig__qng_linger_kind {
    SPRIG__QNG_LINGER_NONE,     /* nothing: a silent close (idle timeout,
                                 * handshake timeout, dropped) */
    SPRIG__QNG_LINGER_CLOSING,  /* we closed: answer late packets with our
                                 * CONNECTION_CLOSE (`pkt`) */
    SPRIG__QNG_LINGER_DRAINING, /* the peer closed (or reset): stay quiet */
} sprig__qng_linger_kind;

/** After the engine closed: which period follows, the CONNECTION_CLOSE
 *  datagram to repeat in the closing period (points into the engine:
 *  copy it before sprig__qng_free), and the probe timeout in ms (the
 *  period lasts three of them). */
sprig__qng_linger_kind sprig__qng_linger(const sprig__qng *q,
                                         const uint8_t **pkt, size_t *len,
                                         uint64_t *pto_ms);
/** Why the engine closed (after SPRIG__QNG_CLOSED). */
void sprig__qng_close_info(const sprig__qng *q, sprig__qng_why *out);
/** True once stream data can be written (the stream exists). */
bool sprig__qng_stream_ready(const sprig__qng *q);
/** TLS version and cipher, into caller storage. */
void sprig__qng_describe(const sprig__qng *q, char *ver, size_t vn,
                         char *cipher, size_t cn);
/** Length of the connection ids this implementation issues. */
size_t sprig__qng_cid_len(void);

/* ---- TLS helpers (tls.c) used by QUIC ------------------------------------ */

/** The GnuTLS credentials of `cfg` (a gnutls_certificate_credentials_t). */
void *sprig__tls_cfg_cred(const sprig__tls_cfg *cfg);
/** Client: is the server of `session` (a gnutls_session_t) trusted by
 *  `cfg` for `host`?  SPRIG_EAUTH with the reason when not. */
int sprig__tls_cfg_verify(const sprig__tls_cfg *cfg, void *session,
                          const char *host);
/** Client trust, pins and fingerprint (tls.c; see ws_int.h). */
int sprig__tls_cfg_client(const char *ca_file, sprig__tls_cfg **out);
int sprig__tls_cfg_pin_sha256(sprig__tls_cfg *t, const char *hex);
/** Client credentials that trust only the certificate with this SHA-256
 *  fingerprint (no trust store is loaded).  SPRIG_EINVAL, SPRIG_ENOMEM. */
int sprig__tls_cfg_pinned(const char *hex, sprig__tls_cfg **out);
void sprig__tls_cfg_free(sprig__tls_cfg *t);

/* ---- connections (quic_conn.c) ------------------------------------------- */

/* The life of a connection; see quic_conn.c's opening notes. */
typedef enum sprig__qstate {
    SPRIG__QS_HANDSHAKE, /* QUIC + TLS handshake                    */
    SPRIG__QS_OPEN,      /* messages flow                            */
    SPRIG__QS_CLOSING,   /* close asked: queued messages go out first */
    SPRIG__QS_FINISHING, /* on_close due on the next loop turn        */
    SPRIG__QS_LINGER,    /* server, after on_close: the closing or
                          * draining period (ids kept, engine freed)  */
    SPRIG__QS_DEAD       /* timer closing; freed when it is closed    */
} sprig__qstate;

/* Bytes of the stream not yet acknowledged: [head, len) of `data`, the
 * first `sent` of them handed to the engine. */
typedef struct sprig__qbuf {
    uint8_t *data;
    size_t head, len, cap, sent;
} sprig__qbuf;

/* A message being received: `len` bytes of `buf` (`cap` allocated). */
typedef struct sprig__qin {
    uint8_t *buf;
    size_t len, cap;
} sprig__qin;

/* A request stream: one request (length-prefixed, then FIN) and, on the
 * server, its answer.  The message is kept until acknowledged; the
 * stream goes when the engine reports it closed. */
typedef struct sprig__qstream {
    struct sprig__qstream *next;
    int64_t sid; /* -1: a client's, not yet opened */
    uint32_t id; /* server: the id of the request it carried */
    bool has_id, answered;
    sprig__qin in;
    uint8_t *out;
    size_t out_len, out_sent, out_acked;
} sprig__qstream;

struct sprig__quic_conn {
    sprig__conn base; /* first: ops, udata, client */
    sprig__quic_ep *ep;
    sprig__qng *q;
    uv_timer_t timer;
    sprig__qstate state;
    bool opened, dirty, listed, want_writable, timer_closed;
    sprig__quic_conn *dnext;         /* the endpoint's dirty list    */
    sprig__quic_conn *lprev, *lnext; /* the endpoint's connections   */
    sprig__qaddr remote;
    sprig__qcid cids[SPRIG__QUIC_MAX_CIDS];
    int ncids;
    sprig__qbuf out; /* the message stream's */
    sprig__qin in;   /* the message stream's */
    /* request streams (quic_conn.c, "Request streams"): a client that
     * puts each request on its own stream (`per_request`), a server that
     * answers on the stream each came on; `sq_bytes` queued in them */
    sprig__qstream *streams;
    size_t nstreams, sq_bytes;
    bool per_request, s0_used;
    bool defer_ack; /* a request came: its ACK may wait for the answer */
    uint64_t ack_wait_until; /* loop ms: an ACK waiting for its answer */
    int violation;           /* a close code the peer earned while reading */
    char violation_reason[120];
    uint64_t close_deadline; /* loop ms: CLOSING gives up waiting */
    int close_code;          /* what on_close reports */
    char close_reason[300];
    int send_code; /* what the CONNECTION_CLOSE carries */
    char peer[96];
    char scheme[8];
    char path[256];
    char tls_version[16], tls_cipher[48];
    uint64_t messages_sent, writes; /* atomic: listings read them */
    /* LINGER: the CONNECTION_CLOSE to repeat (NULL: draining, quiet) and
     * the datagrams received since */
    uint8_t *close_pkt;
    size_t close_len;
    uint64_t linger_rx;
    bool lingering;
};

/** Make a connection object of endpoint `ep` (not yet with an engine). */
int sprig__quic_conn_new(sprig__quic_ep *ep, sprig__quic_conn **out);
/** The engine of `c` (set once). */
void sprig__quic_conn_attach(sprig__quic_conn *c, sprig__qng *q);
/** The engine's io table for `c`. */
void sprig__quic_conn_io(sprig__quic_conn *c, sprig__qng_io *io);
/** A datagram routed to `c`. */
void sprig__quic_conn_recv(sprig__quic_conn *c, const uint8_t *pkt, size_t n,
                           const sprig__qaddr *from);
/** Write what is due (the endpoint's prepare handle calls it). */
void sprig__quic_conn_flush(sprig__quic_conn *c);
/** Fail a connection at once: on_close(code, reason) on the next turn. */
void sprig__quic_conn_fail(sprig__quic_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Drop the connection with no callback (listener closing). */
void sprig__quic_conn_drop(sprig__quic_conn *c);
bool sprig__quic_conn_opened(const sprig__quic_conn *c);
bool sprig__quic_conn_handshaking(const sprig__quic_conn *c);

int sprig__quic_send(sprig__conn *c, const uint8_t *data, size_t len);
size_t sprig__quic_queued(const sprig__conn *c);
void sprig__quic_close(sprig__conn *c, int code, const char *reason);
void sprig__quic_info(const sprig__conn *c, sprig_conn_info *out);
const char *sprig__quic_path(const sprig__conn *c);
const char *sprig__quic_peer(const sprig__conn *c);

/* ---- endpoints (quic_ep.c) ----------------------------------------------- */

/** What a connection needs of its endpoint. */
uv_loop_t *sprig__quic_ep_loop(sprig__quic_ep *ep);
const sprig__tran_opts *sprig__quic_ep_opts(const sprig__quic_ep *ep);
const sprig__conn_cbs *sprig__quic_ep_cbs(const sprig__quic_ep *ep,
                                          void **udata);
bool sprig__quic_ep_is_server(const sprig__quic_ep *ep);
const sprig__qaddr *sprig__quic_ep_local(const sprig__quic_ep *ep);
/** Send one datagram to `to` (dropped when the socket is full: QUIC
 *  retransmits). */
void sprig__quic_ep_send(sprig__quic_ep *ep, const sprig__qaddr *to,
                         const uint8_t *d, size_t n);
/** Route `cid` to `c` / stop.  Errors: SPRIG_ENOMEM, SPRIG_EEXIST. */
int sprig__quic_ep_cid_add(sprig__quic_ep *ep, const sprig__qcid *cid,
                           sprig__quic_conn *c);
void sprig__quic_ep_cid_remove(sprig__quic_ep *ep, const sprig__qcid *cid);
/** `c` wants its flush before the loop next waits. */
void sprig__quic_ep_dirty(sprig__quic_ep *ep, sprig__quic_conn *c);
/** `c` opened (listing) / is being freed (forget it everywhere). */
void sprig__quic_ep_opened(sprig__quic_ep *ep, sprig__quic_conn *c);
void sprig__quic_ep_forget(sprig__quic_ep *ep, sprig__quic_conn *c);

/** Feed one datagram to a listener as if it arrived from `from` (the
 *  fuzz harness and tests use it; the socket path calls it too). */
void sprig__quic_ep_datagram(sprig__quic_ep *ep, const uint8_t *d, size_t n,
                             const sprig__qaddr *from);
/** Counters of a listener, for tests: connections (all states), those
 *  still in the handshake, ids routed, Retry packets and stateless resets
 *  sent, datagrams the socket refused; datagrams handed to the socket,
 *  sendmmsg calls made, and connection timers that fired (loss recovery,
 *  keep-alive: none on a quiet request/answer path).  Any thread. */
typedef struct sprig__quic_stats {
    size_t conns, handshaking, cids;
    uint64_t retries, resets, dropped;
    uint64_t sent, send_calls, timers;
    size_t lingering;       /* connections in the closing/draining period */
    uint64_t closes_resent; /* CONNECTION_CLOSEs repeated in it */
    uint64_t req_streams;   /* request streams clients opened */
    uint64_t ack_waits;     /* ACKs that waited for a later answer */
} sprig__quic_stats;
/** A connection met a request stream / let an ACK wait (stats). */
void sprig__quic_ep_count(sprig__quic_ep *ep, uint64_t *counter);
/** The endpoint's counters, for sprig__quic_ep_count. */
sprig__quic_stats *sprig__quic_ep_stats(sprig__quic_ep *ep);
/** A connection's timer fired (counted in its endpoint's stats). */
void sprig__quic_ep_timer_fired(sprig__quic_ep *ep);
/** May `c`, just closed, linger (closing or draining period)?  Server
 *  endpoints that are not closed, up to max_connections lingering.  True:
 *  it is now counted as lingering (not listed, not admitted against). */
bool sprig__quic_ep_linger(sprig__quic_ep *ep, sprig__quic_conn *c);
/** A lingering connection repeated its CONNECTION_CLOSE (stats). */
void sprig__quic_ep_close_resent(sprig__quic_ep *ep);
/** Milliseconds a closing or draining period lasts at least (3 x PTO is
 *  the RFC's minimum; late packets of a loaded machine come later). */
#define SPRIG__QUIC_LINGER_MIN_MS 1000
#define SPRIG__QUIC_LINGER_MAX_MS 3000
void sprig__quic_listener_stats(sprig__listener *l, sprig__quic_stats *out);
/** The listener of the endpoint of a QUIC listener handle. */
sprig__quic_ep *sprig__quic_listener_ep(sprig__listener *l);

int sprig__quic_listen(uv_loop_t *loop, bool tls, const char *host, int port,
                       const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                       void *udata, sprig__listener **out);
int sprig__quic_listener_port(const sprig__listener *l);
void sprig__quic_listener_close(sprig__listener *l);
size_t sprig__quic_listener_conns(sprig__listener *l, sprig_conn_info *out,
                                  size_t cap);
int sprig__quic_connect(uv_loop_t *loop, const char *url,
                        const sprig__tran_opts *opts,
                        const sprig__conn_cbs *cbs, void *udata,
                        sprig__conn **out);

/** The ALPN token for a subprotocol token ("sprig.v1" -> "sprig/1"). */
const char *sprig__quic_alpn(const char *subprotocol);

#endif
