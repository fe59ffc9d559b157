/*
 * ws_int.h -- private structures of the WebSocket transport.
 *
 * Shared by ws_conn.c (a connection's I/O, framing, timers and close),
 * ws_cfg.c (options), ws_server.c (listeners, accept, adopt), ws_client.c
 * (connect) and the
 * sans-I/O pieces: ws_frame.c (the frame guard) and tls.c (the TLS layer).
 * Nothing outside src/transport includes it, except the transport's tests.
 */
#ifndef SPRIG_WS_INT_H
#define SPRIG_WS_INT_H

#include "core/core.h"
#include "transport/http_upgrade.h"
#include "transport/transport.h"

#include <wslay/wslay.h>

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
    sprig__ws_opts opts; /* strings point into copies below */
    char *subprotocol, *status_body;
    sprig__conn_cbs cbs;
    void *udata;
    sprig__tls_cfg *tls; /* NULL: plain TCP */
} sprig__ws_cfg;

int sprig__ws_cfg_new(const sprig__ws_opts *o, const sprig__conn_cbs *cbs,
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

struct sprig__conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shut;
    uv_loop_t *loop;
    sprig__ws_cfg *cfg;
    void *udata;
    sprig__conn_state state;
    bool client, opened, graceful, eof, reset, in_recv, want_writable;
    bool resolving, shutting;
    int busy; /* open handles and requests; freed at 0 */
    /* server */
    sprig__listener *listener;
    sprig__conn *lprev, *lnext;
    bool refuse_full, adopt_upgraded;
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
};

/** A connection in CONNECTING (client) or, for the server, just made:
 *  the TCP handle and the timer are initialised; nothing else.  Takes a
 *  reference on `cfg`.  Errors: SPRIG_ENOMEM, SPRIG_EIO. */
int sprig__conn_new(uv_loop_t *loop, sprig__ws_cfg *cfg, sprig__conn **out);
/** Read from the socket and, for a server, start TLS or the HTTP head. */
int sprig__conn_start_server(sprig__conn *c);
/** Client: the TCP connection is up; start TLS or send the request. */
void sprig__conn_start_client(sprig__conn *c);
/** Adopted socket: begin (deferred to the loop). */
void sprig__conn_start_adopt(sprig__conn *c);
/** End the connection: on_close(code, reason) on the next loop turn (for
 *  a connection its owner knows), then linger (graceful) or close now.
 *  Later calls are ignored. */
void sprig__conn_finish(sprig__conn *c, int code, bool graceful,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Close the handles at once; the memory goes when they are closed. */
void sprig__conn_destroy(sprig__conn *c);
/** (Re)start the connection's timer: its state says what expiry means. */
void sprig__conn_arm_timer(sprig__conn *c, unsigned ms);
/** A request that kept the connection alive completed (getaddrinfo). */
void sprig__conn_unbusy(sprig__conn *c);

/** Listener bookkeeping when a connection goes (ws_server.c). */
void sprig__listener_forget(sprig__listener *l, sprig__conn *c);

#endif
