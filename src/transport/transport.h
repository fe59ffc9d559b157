/*
 * transport.h -- the transport interface: whole binary messages between two
 * peers, over whichever transport a URL scheme names.
 *
 * The transport layer sits under src/server and src/client and above
 * src/core: it moves whole binary messages and knows nothing of what they
 * mean.  Each transport (WebSockets: "ws" and "wss"; QUIC: "quic" and "sprig")
 * fills one operations table, sprig__tran_ops, and is found by URL scheme
 * in a table (sprig__tran_find()), as nng finds an nni_sp_tran.  The
 * functions below (sprig__conn_send(), sprig__conn_close(), ...) dispatch
 * through the connection's table, so the code above never learns which
 * transport carries a message.  Only src/transport names WebSockets
 * (ws_int.h); the close codes below are WebSocket's numbers because they
 * are the protocol's codes, and other transports carry them as their own
 * application error codes.
 *
 * Threads.  A listener and every connection belong to the libuv loop they
 * were created on, and every function here must be called on that loop's
 * thread unless its comment says otherwise.  Callbacks run on that thread.
 * Nothing here blocks.  To act on a connection from another thread (a
 * database worker answering a request), hand the work to the loop thread
 * with a uv_async_t (see docs/architecture.md, "Network transport").
 *
 * Batching.  Messages sent during one loop iteration leave together: a
 * send queues the message and the connection writes everything queued in
 * one write() before the loop next waits for I/O (a uv_prepare handle; a
 * burst past 256 KiB streams out at once), or at the
 * end of the read that produced the answers.
 *
 * Lifetime.  A server connection becomes visible with on_open and is gone
 * after on_close returns; a client connection is returned by
 * sprig__tran_connect() and gets exactly one on_close, whether or not it
 * ever opened.  After on_close returns the sprig__conn pointer is invalid.
 * Callbacks may call any function here, including sprig__conn_close() and
 * sprig__conn_send() on any connection of the same loop.
 *
 * Errors are negative SPRIG_E* codes with a sentence for sprig_errmsg().
 * Network input never asserts: every violation closes the one connection
 * that sent it, with a status or close code and a reason.
 */
#ifndef SPRIG_TRANSPORT_H
#define SPRIG_TRANSPORT_H

#include "sprig/sprig.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Close codes (RFC 6455, 7.4.1, used by every transport).  Codes
 * 3000-4999 are free for the layers above.  on_close also reports, on the
 * client, an HTTP status (100-599) when the server refused the upgrade. */
enum {
    SPRIG_CLOSE_NORMAL = 1000,      /* closed on purpose                    */
    SPRIG_CLOSE_GOING_AWAY = 1001,  /* shutting down, or idle timeout       */
    SPRIG_CLOSE_PROTOCOL = 1002,    /* a framing or handshake violation     */
    SPRIG_CLOSE_UNSUPPORTED = 1003, /* a text frame: Sprig speaks binary    */
    SPRIG_CLOSE_ABNORMAL = 1006,    /* no close frame: reset, EOF, timeout  */
    SPRIG_CLOSE_POLICY = 1008,      /* send queue over its bound            */
    SPRIG_CLOSE_TOO_BIG = 1009,     /* message over max_message             */
    SPRIG_CLOSE_INTERNAL = 1011,    /* out of memory or an internal failure */
    SPRIG_CLOSE_TLS = 1015 /* TLS failed (reported locally, never sent) */
};
/* A server program's connect hook refused the connection (issue 12;
 * docs/protocol.md, "Refused connections"). */
#define SPRIG__CLOSE_REFUSED 4001

/* Transitional: the names src/server used before the interface existed.
 * Remove once every caller says SPRIG_CLOSE_*. */
enum {
    SPRIG_WS_NORMAL = SPRIG_CLOSE_NORMAL,
    SPRIG_WS_GOING_AWAY = SPRIG_CLOSE_GOING_AWAY,
    SPRIG_WS_PROTOCOL = SPRIG_CLOSE_PROTOCOL,
    SPRIG_WS_UNSUPPORTED = SPRIG_CLOSE_UNSUPPORTED,
    SPRIG_WS_ABNORMAL = SPRIG_CLOSE_ABNORMAL,
    SPRIG_WS_POLICY = SPRIG_CLOSE_POLICY,
    SPRIG_WS_TOO_BIG = SPRIG_CLOSE_TOO_BIG,
    SPRIG_WS_INTERNAL = SPRIG_CLOSE_INTERNAL,
    SPRIG_WS_TLS = SPRIG_CLOSE_TLS
};

/** The protocol token clients send (WebSocket subprotocol, QUIC ALPN):
 *  an RFC 6455 token, which browsers and Node accept.  Servers accept it
 *  and the older spelling SPRIG_SUBPROTOCOL_OLD. */
#define SPRIG_SUBPROTOCOL "sprig.v1"
#define SPRIG_SUBPROTOCOL_OLD "sprig/1"

typedef struct sprig__conn sprig__conn; /* one message-oriented connection */
typedef struct sprig__listener sprig__listener;
typedef struct sprig__tran_ops sprig__tran_ops;

/** What a connection tells its owner.  All run on the loop thread; `udata`
 *  is the connection's current user pointer (sprig__conn_udata()). */
typedef struct sprig__conn_cbs {
    /** The handshake (and TLS) completed: messages may be sent. */
    void (*on_open)(sprig__conn *c, void *udata);
    /** One whole binary message.  `data` is borrowed for the call; copy
     *  what must outlive it.  Messages sent from inside it are queued and
     *  written once the bytes that carried this one have been processed. */
    void (*on_message)(sprig__conn *c, const uint8_t *data, size_t len,
                       void *udata);
    /** Called once per connection.  `code` is the close code received
     *  from the peer, or the one this side sent, or 1006 when the
     *  connection ended without a close handshake; on a client whose
     *  handshake was refused it is the HTTP status.  `reason` is a
     *  NUL-terminated sentence (never NULL), borrowed for the call.  The
     *  connection is freed after the callback returns. */
    void (*on_close)(sprig__conn *c, int code, const char *reason, void *udata);
    /** Optional.  The send queue, once above the low-water mark
     *  (max_send_queue / 4), drained to it: a good time to send more. */
    void (*on_writable)(sprig__conn *c, void *udata);
} sprig__conn_cbs;

/* ---- plain HTTP pages (issue 15: the web console) --------------------------
 * A server's WebSocket listener also answers plain HTTP GET and HEAD
 * requests (no Upgrade header): the transport parses and checks them
 * (origins, fetch metadata), asks the owner's `http_get` hook what to
 * serve, and writes the answer (headers, ETag and 304, HEAD). */

/** A plain GET or HEAD that passed the checks, for the `http_get` hook.
 *  Strings are borrowed for the call. */
typedef struct sprig__http_get_req {
    const char *path;  /* the request target up to '?' ("/console/a.js") */
    const char *query; /* after '?', or "" */
    bool head;         /* HEAD: the answer's body is not sent */
} sprig__http_get_req;

/** What to answer, filled by the `http_get` hook (which starts from a
 *  zeroed reply).  The transport adds Content-Length, Cache-Control,
 *  the security headers (nosniff, no framing, no referrer) and the
 *  Content-Security-Policy (`csp`, or "default-src 'none'" when NULL),
 *  answers 304 when the request's If-None-Match names `etag`, and omits
 *  the body for HEAD. */
typedef struct sprig__http_reply {
    int status;               /* 200 or 404 (0: 404)                   */
    const char *content_type; /* static; NULL: text/plain; charset=utf-8 */
    const uint8_t *body;      /* borrowed (static data), or NULL: `owned` */
    size_t len;
    sprig_buf owned;  /* a body made for this request; freed after   */
    const char *etag; /* a quoted strong tag ("\"ab12\""), or NULL */
    const char *csp;  /* Content-Security-Policy; NULL: none allowed */
} sprig__http_reply;

/** The hook: fill `rep` for `req`.  Runs on the loop thread; must not
 *  block.  A nonzero return (SPRIG_ENOMEM) answers 500. */
typedef int (*sprig__http_get_fn)(void *udata, const sprig__http_get_req *req,
                                  sprig__http_reply *rep);

/** Options of a listener or a client connection.  Initialise with
 *  sprig__tran_opts_init(), then change fields.  Strings are copied by the
 *  function that takes the options; files are read then.  A transport
 *  ignores what it has no use for. */
typedef struct sprig__tran_opts {
    /** Protocol token both sides must speak (default SPRIG_SUBPROTOCOL).
     *  The server refuses a peer that does not offer it (or its other
     *  spelling, "sprig/1" for "sprig.v1") with HTTP 400 and a reason
     *  naming it; the client refuses an answer that does not select it.
     *  NULL: no token is asked for or required. */
    const char *subprotocol;
    /** Largest message accepted (default 16 MiB); larger: close 1009. */
    size_t max_message;
    /** Bound on bytes waiting to be written to the peer (default 64 MiB).
     *  A send past it closes the connection with 1008 and fails. */
    size_t max_send_queue;
    /** Keep-alive: send a ping after this long (0 = never; default 30 s). */
    unsigned ping_interval_ms;
    /** Close (1001) when nothing, pongs included, arrived for this long
     *  (0 = never; default 90 s). */
    unsigned idle_timeout_ms;
    /** Server: TLS handshake and request head must be complete in this
     *  time (slowloris), else HTTP 408 and close (default 10 s). */
    unsigned handshake_timeout_ms;
    /** After a close is sent, how long to wait for the peer's, and how
     *  long to linger for the peer to read a refusal before the socket is
     *  closed regardless (default 5 s). */
    unsigned close_timeout_ms;
    /** Server: connections over this many get HTTP 503 (default 1024). */
    size_t max_connections;
    /** Server: PEM certificate (chain) and key: required by the TLS
     *  schemes (wss), refused by the plain ones (ws). */
    const char *tls_cert_file, *tls_key_file;
    /** Client, TLS schemes: PEM file of trusted CA certificates, or of the
     *  server's own (pinned) certificate, which is trusted whatever name
     *  it carries.  NULL: the system's trust store. */
    const char *tls_ca_file;
    /** Client, TLS schemes: the SHA-256 fingerprint (64 hex digits,
     *  colons allowed) of the server's certificate.  When set, it is the
     *  only certificate trusted (tls_ca_file is not consulted), and a
     *  mismatch fails the connection naming both fingerprints. */
    const char *tls_pin_sha256;
    /** Client: connect + TLS + handshake must finish in this time
     *  (default 10 s), else on_close(1006, "... timed out"). */
    unsigned connect_timeout_ms;
    /** Server: body of the 200 answer to a plain HTTP GET (no upgrade);
     *  other methods get 405.  NULL: a GET without upgrade gets 426. */
    const char *status_body;
    /** Server, WebSocket: browser origins allowed to upgrade (issue 10):
     *  a NULL-terminated list, borrowed for the listener's life ("*":
     *  any).  A request whose Origin header is neither the server's own
     *  (http(s):// + its Host) nor listed gets HTTP 403; one without Origin
     *  (not a browser) passes.  NULL: only the server's own origin. */
    const char *const *allowed_origins;
    /** Server, WebSocket: the pages of plain GET and HEAD requests (see
     *  sprig__http_get_fn), with its user pointer; replaces `status_body`.
     *  Such a request is refused (403) when its Origin is not allowed (as
     *  for an upgrade) or when it comes from another site's page other
     *  than as a navigation to a document (Sec-Fetch-Site cross-site or
     *  same-site without an allowed Origin).  NULL: `status_body`. */
    sprig__http_get_fn http_get;
    void *http_udata;
} sprig__tran_opts;

/** Fill `o` with the defaults above. */
void sprig__tran_opts_init(sprig__tran_opts *o);

/**
 * One transport, as a table of operations (nng's nni_sp_tran).  The
 * functions below check arguments common to all transports and call
 * these; each entry's contract is that of its dispatcher below.
 */
struct sprig__tran_ops {
    const char *name; /* "websocket" */
    int (*listen)(uv_loop_t *loop, bool tls, const char *host, int port,
                  const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                  void *udata, sprig__listener **out);
    int (*listener_port)(const sprig__listener *l);
    void (*listener_close)(sprig__listener *l);
    size_t (*listener_conns)(sprig__listener *l, sprig_conn_info *out,
                             size_t cap);
    int (*connect)(uv_loop_t *loop, const char *url,
                   const sprig__tran_opts *opts, const sprig__conn_cbs *cbs,
                   void *udata, sprig__conn **out);
    int (*send)(sprig__conn *c, const uint8_t *data, size_t len);
    size_t (*queued)(const sprig__conn *c);
    void (*close)(sprig__conn *c, int code, const char *reason);
    void (*info)(const sprig__conn *c, sprig_conn_info *out);
    const char *(*path)(const sprig__conn *c);
    const char *(*peer)(const sprig__conn *c);
};

/** What every connection and listener starts with (a transport's own
 *  struct embeds it first).  Transport-private: the layers above use the
 *  functions below. */
struct sprig__conn {
    const sprig__tran_ops *ops;
    void *udata;
    bool client;
};
struct sprig__listener {
    const sprig__tran_ops *ops;
};

/** One row of the scheme table. */
typedef struct sprig__tran_scheme {
    const char *scheme; /* "ws", "wss" */
    bool tls;
    const sprig__tran_ops *ops;
} sprig__tran_scheme;

/**
 * The row for `scheme` (case-insensitive; without "://"), or NULL.  The
 * table is constant: any thread.
 */
const sprig__tran_scheme *sprig__tran_find(const char *scheme);

/**
 * The row for the scheme of `url` ("ws://...": "ws"), or NULL with
 * SPRIG_EINVAL in sprig_errmsg(), naming the scheme and the ones known.
 * Any thread.
 */
const sprig__tran_scheme *sprig__tran_for_url(const char *url);

/**
 * Make writes to a socket whose peer has gone away fail with EPIPE instead
 * of killing the process: sets SIGPIPE to SIG_IGN, but only when the
 * program left it at SIG_DFL (a program's own handler is kept).  Called by
 * every listen and connect; idempotent and thread-safe.
 */
void sprig__ignore_sigpipe(void);

/**
 * Listen on `host`:`port` with the transport of `scheme` ("ws", "wss";
 * port 0: an ephemeral port, see sprig__listener_port()).  `opts` may be
 * NULL (defaults); it is copied, and TLS files are loaded now.  `cbs` is
 * copied; `udata` is every new connection's first user pointer.  On
 * success *out is the listener, owned by the caller until
 * sprig__listener_close().
 * Errors: SPRIG_EINVAL (unknown scheme, bad host or options, TLS files
 * missing for a TLS scheme or present for a plain one, unreadable: the
 * detail says which), SPRIG_EIO (bind/listen failed, e.g. the port is
 * taken), SPRIG_ENOMEM.
 */
int sprig__tran_listen(uv_loop_t *loop, const char *scheme, const char *host,
                       int port, const sprig__tran_opts *opts,
                       const sprig__conn_cbs *cbs, void *udata,
                       sprig__listener **out);

/** The bound port (0 for a listener without a socket). */
int sprig__listener_port(const sprig__listener *l);

/**
 * Stop accepting and release the listener.  Connections that have not
 * opened yet (handshake under way) are dropped; open ones stay, with their
 * callbacks and options, until they close.  NULL is a no-op.
 */
void sprig__listener_close(sprig__listener *l);

/**
 * What carries each open connection of the listener: up to `cap` entries
 * into `out` (caller storage); returns how many connections are open,
 * which may be more than `cap`.  Any thread, as long as the listener is
 * not being closed concurrently (the caller's lock sees to that).
 */
size_t sprig__listener_conns(sprig__listener *l, sprig_conn_info *out,
                             size_t cap);

/**
 * Open a client connection to `url`, with the transport its scheme names
 * ("ws://host:port/path", "wss://...").  Asynchronous: on success *out is
 * the connection at once, and on_open or on_close follows from the loop
 * (never from inside this call); a refused handshake reports the HTTP
 * status and the server's reason, a bad certificate 1015 and why.
 * `opts` may be NULL (defaults); `cbs` is copied.
 * Errors (nothing started, no callback follows): SPRIG_EINVAL (unknown
 * scheme, bad URL or options, unreadable CA file), SPRIG_ENOMEM.
 */
int sprig__tran_connect(uv_loop_t *loop, const char *url,
                        const sprig__tran_opts *opts,
                        const sprig__conn_cbs *cbs, void *udata,
                        sprig__conn **out);

/**
 * Queue one binary message (copied; `len` may be 0).  Valid between on_open
 * and the start of closing.  The message is written at the end of the
 * loop iteration, with every other message queued by then.
 * Errors: SPRIG_EINVAL (`data` NULL with `len` > 0), SPRIG_ECLOSED (not
 * open, or closing), SPRIG_ETOOBIG (over this side's max_message; nothing
 * is sent, the connection stays open), SPRIG_EBUSY (the queue would pass
 * max_send_queue: the connection is closing with 1008 and on_close
 * follows), SPRIG_ENOMEM.
 */
int sprig__conn_send(sprig__conn *c, const uint8_t *data, size_t len);

/** Bytes waiting to be written to the peer (messages not yet sent and
 *  TLS/socket buffers not yet taken by the kernel). */
size_t sprig__conn_queued(const sprig__conn *c);

/**
 * Start the close handshake with `code` (1000, or 3000-4999 for the layers
 * above; a code peers refuse, such as 1005/1006/1015, is reported to
 * on_close but sent as 1011) and `reason` (NULL or a string; cut at 123
 * bytes).  Messages already queued are sent first; no more are delivered
 * to on_message.  on_close(code, reason) follows once the peer answered
 * or close_timeout passed.  Calling it again, or on a connection not yet
 * open (which is then dropped), is allowed.
 */
void sprig__conn_close(sprig__conn *c, int code, const char *reason);

/** What carries the connection: scheme, TLS version and cipher, peer,
 *  messages and writes so far.  `out` is caller storage. */
void sprig__conn_info(const sprig__conn *c, sprig_conn_info *out);

/** Change / read the user pointer passed to the callbacks. */
void sprig__conn_set_udata(sprig__conn *c, void *udata);
void *sprig__conn_udata(const sprig__conn *c);

/** The peer's address, "127.0.0.1:54321" or "[::1]:54321"; borrowed for
 *  the connection's life. */
const char *sprig__conn_peer(const sprig__conn *c);

/** The request path of the handshake ("/" when none), borrowed for the
 *  connection's life; the client's own path on a client connection. */
const char *sprig__conn_path(const sprig__conn *c);

/** True for a connection made by sprig__tran_connect(). */
bool sprig__conn_is_client(const sprig__conn *c);

/**
 * HTTP hand-over (issue 12): serve a TCP socket that the program's own
 * HTTP code accepted as a connection of the plain WebSocket listener `l`
 * (ws_int.h, sprig__ws_adopt(): `already_read` is the request as read,
 * or with `upgraded` the start of the WebSocket stream after the
 * program's own 101).  Loop thread.  Owns `fd` from now on (closed on
 * error).  Errors: SPRIG_EINVAL (not a plain WebSocket listener, bad
 * arguments), SPRIG_EBUSY (over max_connections), SPRIG_EIO, SPRIG_ENOMEM.
 */
int sprig__tran_adopt(sprig__listener *l, int fd, const uint8_t *already_read,
                      size_t n, bool upgraded);

#endif
