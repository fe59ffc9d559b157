/*
 * ws_int.h -- private structures of the WebSocket transport.
 *
 * Shared by ws_conn.c (a connection's I/O, framing, timers and close),
 * ws_cfg.c (options), ws_server.c (listeners, accept, adopt), ws_client.c
 * (connect), ws_tran.c (the operations table, sprig__ws_tran) and the
 * sans-I/O pieces: ws_frame.c (the frame guard) and tls.c (the TLS layer).
 * Nothing outside src/transport includes it, except the transport's tests.
 * A WebSocket connection (sprig__ws_conn) and listener (sprig__ws_listener)
 * embed the generic sprig__conn / sprig__listener of transport.h first, so
 * a pointer to one is a pointer to the other.
 */
#ifndef SPRIG_WS_INT_H
#define SPRIG_WS_INT_H

#include "core/core.h"
#include "transport/http_upgrade.h"
#include "transport/transport.h"

#include <wslay/wslay.h>

typedef struct sprig__ws_conn sprig__ws_conn;
typedef struct sprig__ws_listener sprig__ws_listener;

/** The WebSocket transport's operations (ws_tran.c), for "ws" and "wss". */
extern const sprig__tran_ops sprig__ws_tran;

/** The default subprotocol token of the options (SPRIG_SUBPROTOCOL). */
#define SPRIG_WS_SUBPROTOCOL SPRIG_SUBPROTOCOL

/* Bytes handed to the socket (or TLS) but not yet written, past which the
 * transport leaves further messages in wslay's queue. */
#define SPRIG__WS_WINDOW (256u * 1024u)
/* Longest close reason on the wire (125 - 2 bytes of code). */
#define SPRIG__WS_REASON_MAX 123

/* ---- frame guard (ws_frame.c): sans-I/O checks ahead of wslay ------------ */

/**
 * Reads frame headers on the incoming byte stream before wslay does, so
 * every violation gets a close code *and* a reason: reserved bits, unknown
 * opcodes, bad control frames, masking, text frames (1003), continuation
 * order, non-minimal lengths and messages over the limit (1009, refused at
 * the header, before any payload is buffered).  Caller storage.
 */
typedef struct sprig__ws_guard {
    bool server;
    uint64_t max_message;
    uint8_t hdr[14];
    unsigned hdr_len, hdr_need;
    uint64_t payload_left;
    bool in_message;
    uint64_t msg_len;
    int code; /* 0 while all is well; else the close code */
    char reason[SPRIG__WS_REASON_MAX + 1];
} sprig__ws_guard;

void sprig__ws_guard_init(sprig__ws_guard *g, bool server,
                          uint64_t max_message);
/** Scan `len` bytes; returns how many of them may be passed on.  Fewer
 *  than `len` means g->code / g->reason say what the next frame broke. */
size_t sprig__ws_guard_scan(sprig__ws_guard *g, const uint8_t *data,
                            size_t len);

/* ---- TLS layer (tls.c) --------------------------------------------------- */

typedef struct sprig__tls_cfg sprig__tls_cfg; /* credentials, shared */
typedef struct sprig__tls sprig__tls;         /* one session */

/** What a TLS session calls back into (the connection). */
typedef struct sprig__tls_io {
    void *ctx;
    /** Ciphertext to write to the socket; nonzero on ENOMEM. */
    int (*wire)(void *ctx, const uint8_t *data, size_t len);
    /** Decrypted bytes; return nonzero to stop feeding (closed). */
    int (*plain)(void *ctx, const uint8_t *data, size_t len);
    /** Handshake complete (and, on a client, verified); nonzero: stop. */
    int (*ready)(void *ctx);
} sprig__tls_io;

/** Server credentials from PEM files.  Errors: SPRIG_EINVAL, ENOMEM. */
int sprig__tls_cfg_server(const char *cert_file, const char *key_file,
                          sprig__tls_cfg **out);
/** Client trust: `ca_file` (CAs or a pinned certificate) or, when NULL,
 *  the system's store.  Errors: SPRIG_EINVAL, SPRIG_ENOMEM. */
int sprig__tls_cfg_client(const char *ca_file, sprig__tls_cfg **out);
void sprig__tls_cfg_free(sprig__tls_cfg *t);
/** Client: trust only a server whose leaf certificate has this SHA-256
 *  fingerprint (64 hex digits; colons and case ignored).  SPRIG_EINVAL. */
int sprig__tls_cfg_pin_sha256(sprig__tls_cfg *t, const char *hex);
/** Client credentials that trust only the certificate with this SHA-256
 *  fingerprint (no trust store is loaded).  SPRIG_EINVAL, SPRIG_ENOMEM. */
int sprig__tls_cfg_pinned(const char *hex, sprig__tls_cfg **out);
/** The GnuTLS credentials of `cfg` (a gnutls_certificate_credentials_t). */
void *sprig__tls_cfg_cred(const sprig__tls_cfg *cfg);
/** Client: is the server of `session` (a gnutls_session_t) trusted by
 *  `cfg` for `host` (fingerprint, pinned certificate, or a chain to a
 *  trusted CA)?  SPRIG_EAUTH with the reason when not. */
int sprig__tls_cfg_verify(const sprig__tls_cfg *cfg, void *session,
                          const char *host);

/** A session over `cfg` (which must outlive it); `host` is the name the
 *  client verifies (and sends as SNI unless it is an address).
 *  Errors: SPRIG_ENOMEM, SPRIG_EINVAL. */
int sprig__tls_new(const sprig__tls_cfg *cfg, const char *host,
                   const sprig__tls_io *io, sprig__tls **out);
/** Ciphertext arrived (NULL/0 starts a client's handshake).  Returns 0, or
 *  SPRIG_EPROTO (TLS failure) / SPRIG_EAUTH (certificate not trusted) /
 *  SPRIG_ECLOSED (close_notify) with the detail in sprig_errmsg(). */
int sprig__tls_feed(sprig__tls *t, const uint8_t *data, size_t len);
/** Encrypt and pass to io->wire.  Errors: SPRIG_EIO, SPRIG_ENOMEM. */
int sprig__tls_send(sprig__tls *t, const uint8_t *data, size_t len);
/** The negotiated protocol version ("TLS1.3") and cipher ("AES-256-GCM")
 *  of a session whose handshake completed, into caller storage. */
void sprig__tls_describe(const sprig__tls *t, char *version, size_t vn,
                         char *cipher, size_t cn);
/** Queue a close_notify (best effort). */
void sprig__tls_bye(sprig__tls *t);
void sprig__tls_free(sprig__tls *t);

/* ---- shared configuration ------------------------------------------------ */

/** Options, callbacks and credentials shared (reference-counted, loop
 *  thread only) by a listener and its connections, or owned by one client
 *  connection. */
typedef struct sprig__ws_cfg {
    int refs;
    bool server;
    sprig__tran_opts opts; /* strings point into copies below */
    char *subprotocol, *status_body;
    sprig__conn_cbs cbs;
    void *udata;
    sprig__tls_cfg *tls; /* NULL: plain TCP */
} sprig__ws_cfg;

int sprig__ws_cfg_new(const sprig__tran_opts *o, const sprig__conn_cbs *cbs,
                      void *udata, bool server, sprig__ws_cfg **out);
void sprig__ws_cfg_unref(sprig__ws_cfg *cfg);

/* ---- connections --------------------------------------------------------- */

/* The life of a connection; see ws_conn.c's opening notes. */
typedef enum sprig__conn_state {
    SPRIG__CS_ADOPT,      /* server: adopted socket, start pending     */
    SPRIG__CS_CONNECTING, /* client: resolving, TCP connect            */
    SPRIG__CS_TLS,        /* TLS handshake                             */
    SPRIG__CS_HTTP,       /* upgrade request / response head           */
    SPRIG__CS_OPEN,       /* messages flow                             */
    SPRIG__CS_CLOSING,    /* a close frame is queued or received       */
    SPRIG__CS_FINISHING,  /* on_close due on the next loop turn         */
    SPRIG__CS_LINGER,     /* written out, FIN sent, reading until EOF   */
    SPRIG__CS_DEAD        /* handles closing; freed when all are closed */
} sprig__conn_state;

struct sprig__ws_conn {
    sprig__conn base; /* first: ops, udata, client */
    uv_tcp_t tcp;
    uv_prepare_t flush_prep; /* before the loop next waits: write it all */
    uv_timer_t timer;
    uv_shutdown_t shut;
    uv_loop_t *loop;
    sprig__ws_cfg *cfg;
    sprig__conn_state state;
    bool opened, flush_due, tls_on, graceful, eof, reset, in_recv,
        want_writable;
    bool resolving, shutting;
    int busy; /* open handles and requests; freed at 0 */
    /* server */
    sprig__ws_listener *listener;
    sprig__ws_conn *lprev, *lnext;
    bool refuse_full, adopt_upgraded, listed;
    uint8_t *adopt_bytes;
    size_t adopt_len;
    /* client */
    uv_getaddrinfo_t gai;
    uv_connect_t connect_req;
    char *host, *host_header;
    int port;
    char key[32];
    /* layers */
    sprig__tls *tls;
    sprig__http_upgrade *http;
    wslay_event_context_ptr ws;
    sprig__ws_guard guard;
    /* the message being received, assembled here (wslay buffers nothing
     * of data frames) so that it can be wiped once delivered */
    uint8_t *msg;
    size_t msg_len, msg_cap;
    bool frame_data;   /* the frame being received is a data frame */
    bool msg_oom;      /* no room for it: the connection fails */
    const uint8_t *in; /* bytes offered to wslay's recv callback */
    size_t in_len;
    sprig_buf plain; /* TLS: plaintext waiting to be encrypted */
    sprig_buf wire;  /* bytes waiting for the next uv_write */
    size_t inflight; /* bytes in uv_write requests */
    uint64_t last_rx, last_ping;
    /* what on_close reports */
    int close_code;
    char close_reason[SPRIG__HTTP_REASON_MAX];
    char peer[96];
    char *path;
    char scheme[8];                       /* "ws" or "wss" */
    char tls_version[16], tls_cipher[48]; /* set when TLS is ready */
    uint64_t messages_sent, writes;       /* atomic: listings read them */
};

/** A connection in CONNECTING (client) or, for the server, just made:
 *  the TCP handle and the timer are initialised; nothing else.  Takes a
 *  reference on `cfg`.  Errors: SPRIG_ENOMEM, SPRIG_EIO. */
int sprig__ws_conn_new(uv_loop_t *loop, sprig__ws_cfg *cfg,
                       sprig__ws_conn **out);
/** Read from the socket and, for a server, start TLS or the HTTP head. */
int sprig__ws_conn_start_server(sprig__ws_conn *c);
/** Client: the TCP connection is up; start TLS or send the request. */
void sprig__ws_conn_start_client(sprig__ws_conn *c);
/** Adopted socket: begin (deferred to the loop). */
void sprig__ws_conn_start_adopt(sprig__ws_conn *c);
/** End the connection: on_close(code, reason) on the next loop turn (for
 *  a connection its owner knows), then linger (graceful) or close now.
 *  Later calls are ignored. */
void sprig__ws_conn_finish(sprig__ws_conn *c, int code, bool graceful,
                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Close the handles at once; the memory goes when they are closed. */
void sprig__ws_conn_destroy(sprig__ws_conn *c);
/** (Re)start the connection's timer: its state says what expiry means. */
void sprig__ws_conn_arm_timer(sprig__ws_conn *c, unsigned ms);
/** A request that kept the connection alive completed (getaddrinfo). */
void sprig__ws_conn_unbusy(sprig__ws_conn *c);

/** Write what is queued now, not at the end of the loop iteration. */
void sprig__ws_conn_flush(sprig__ws_conn *c);

/* ---- listeners (ws_server.c) --------------------------------------------- */

/** Listener bookkeeping when a connection goes. */
void sprig__listener_forget(sprig__ws_listener *l, sprig__ws_conn *c);
/** A connection opened: its information joins the listing (under the
 *  listener's lock). */
void sprig__ws_listener_opened(sprig__ws_listener *l, sprig__ws_conn *c);

/**
 * Listen for WebSocket connections, as sprig__tran_listen() with the
 * scheme "ws" (no TLS files) or "wss" (both).  `host` NULL creates a
 * listener without a socket that only adopts connections
 * (sprig__ws_adopt()).
 */
int sprig__ws_listen(uv_loop_t *loop, const char *host, int port,
                     const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                     void *udata, sprig__listener **out);
int sprig__ws_listener_port(const sprig__listener *l);
void sprig__ws_listener_close(sprig__listener *l);
size_t sprig__ws_listener_conns(sprig__listener *l, sprig_conn_info *out,
                                size_t cap);

/**
 * Hand Sprig a connected TCP socket that the caller's own HTTP server
 * accepted (F12).  Sprig takes ownership of `fd` (it is closed with the
 * connection, or on failure).  `already_read` (`n` bytes, copied) is what
 * the caller read from the socket so far:
 *   - upgraded false: the start of the HTTP request (its head, complete or
 *     not, and perhaps bytes after it); Sprig validates the upgrade and
 *     answers it (101, or a refusal) as if it had accepted the socket;
 *   - upgraded true: the caller already answered 101 (with the
 *     subprotocol); the bytes are the start of the WebSocket stream.
 * The connection takes its options and callbacks from `l` (which may be an
 * adopt-only listener) and counts against its max_connections.  Plain TCP
 * only: a caller that terminated TLS itself cannot hand over the session.
 * on_open follows later from the loop, never from inside this call.  A libuv
 * caller gets `fd` with uv_fileno() + dup(), then closes its own handle.
 * Errors: SPRIG_EINVAL, SPRIG_EBUSY (over max_connections), SPRIG_EIO,
 * SPRIG_ENOMEM; `fd` is closed on every error.
 */
int sprig__ws_adopt(sprig__listener *l, uv_os_sock_t fd,
                    const uint8_t *already_read, size_t n, bool upgraded,
                    sprig__conn **out);

/* ---- clients (ws_client.c) and the owner's calls (ws_conn.c) ------------- */

/** Connect, as sprig__tran_connect() for a ws:// or wss:// URL. */
int sprig__ws_connect(uv_loop_t *loop, const char *url,
                      const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                      void *udata, sprig__conn **out);
int sprig__ws_send(sprig__conn *c, const uint8_t *data, size_t len);
size_t sprig__ws_queued(const sprig__conn *c);
void sprig__ws_close(sprig__conn *c, int code, const char *reason);
void sprig__ws_info(const sprig__conn *c, sprig_conn_info *out);
const char *sprig__ws_path(const sprig__conn *c);
const char *sprig__ws_peer(const sprig__conn *c);

#endif
