/*
 * transport.h -- message-oriented connections over WebSockets (ws://, wss://).
 *
 * The transport layer sits under src/server and src/client and above
 * src/core: it moves whole binary messages between two peers and knows
 * nothing of what they mean.  WebSockets is the first transport; QUIC will
 * implement the same small interface (a connection, a listener, whole
 * messages, a send queue with backpressure, one close callback), so the
 * protocol and server code above never learn which one carries them.
 *
 * Threads.  A listener and every connection belong to the libuv loop they
 * were created on, and every function here must be called on that loop's
 * thread unless its comment says otherwise.  Callbacks run on that thread.
 * Nothing here blocks.  To act on a connection from another thread (a
 * database worker answering a request), hand the work to the loop thread
 * with a uv_async_t (see docs/architecture.md, "Network transport").
 *
 * Lifetime.  A server connection becomes visible with on_open and is gone
 * after on_close returns; a client connection is returned by
 * sprig__ws_connect() and gets exactly one on_close, whether or not it ever
 * opened.  After on_close returns the sprig__conn pointer is invalid.
 * Callbacks may call any function here, including sprig__conn_close() and
 * sprig__conn_send() on any connection of the same loop.
 *
 * Errors are negative SPRIG_E* codes with a sentence for sprig_errmsg().
 * Network input never asserts: every violation closes the one connection
 * that sent it, with an HTTP status or a WebSocket close code and a reason.
 */
#ifndef SPRIG_TRANSPORT_H
#define SPRIG_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* WebSocket close codes the transport uses (RFC 6455, 7.4.1).  Codes
 * 3000-4999 are free for the layers above.  on_close also reports, on the
 * client, an HTTP status (100-599) when the server refused the upgrade. */
enum {
    SPRIG_WS_NORMAL = 1000,      /* closed on purpose                    */
    SPRIG_WS_GOING_AWAY = 1001,  /* shutting down, or idle timeout       */
    SPRIG_WS_PROTOCOL = 1002,    /* a framing or handshake violation     */
    SPRIG_WS_UNSUPPORTED = 1003, /* a text frame: Sprig speaks binary    */
    SPRIG_WS_ABNORMAL = 1006,    /* no close frame: reset, EOF, timeout  */
    SPRIG_WS_POLICY = 1008,      /* send queue over its bound            */
    SPRIG_WS_TOO_BIG = 1009,     /* message over max_message             */
    SPRIG_WS_INTERNAL = 1011,    /* out of memory or an internal failure */
    SPRIG_WS_TLS = 1015          /* TLS failed (reported locally, never sent) */
};

/** Subprotocol that names Sprig's wire protocol version. */
#define SPRIG_WS_SUBPROTOCOL "sprig/1"

typedef struct sprig__conn sprig__conn; /* one message-oriented connection */
typedef struct sprig__listener sprig__listener;

/** What a connection tells its owner.  All run on the loop thread; `udata`
 *  is the connection's current user pointer (sprig__conn_udata()). */
typedef struct sprig__conn_cbs {
    /** The upgrade handshake (and TLS) completed: messages may be sent. */
    void (*on_open)(sprig__conn *c, void *udata);
    /** One whole binary message (fragments already joined).  `data` is
     *  borrowed for the call; copy what must outlive it.  Messages sent
     *  from inside it are queued and written once the bytes that carried
     *  this one have been processed. */
    void (*on_message)(sprig__conn *c, const uint8_t *data, size_t len,
                       void *udata);
    /** Called once per connection.  `code` is the close code received
     *  from the peer, or the one this side sent, or 1006 when the
     *  connection ended without a close handshake; on a client whose
     *  upgrade was refused it is the HTTP status.  `reason` is a
     *  NUL-terminated sentence (never NULL), borrowed for the call.  The
     *  connection is freed after the callback returns. */
    void (*on_close)(sprig__conn *c, int code, const char *reason, void *udata);
    /** Optional.  The send queue, once above the low-water mark
     *  (max_send_queue / 4), drained to it: a good time to send more. */
    void (*on_writable)(sprig__conn *c, void *udata);
} sprig__conn_cbs;

/** Options of a listener or a client connection.  Initialise with
 *  sprig__ws_opts_init(), then change fields.  Strings are copied by the
 *  function that takes the options; files are read then. */
typedef struct sprig__ws_opts {
    /** Subprotocol both sides must speak (default "sprig/1").  The server
     *  refuses an upgrade that does not offer it with HTTP 400 and a reason
     *  body; the client refuses a 101 that does not select it.  NULL: no
     *  subprotocol is asked for or required. */
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
    /** After a close frame is sent, how long to wait for the peer's close
     *  frame, and how long to linger for the peer to read a refusal before
     *  the socket is closed regardless (default 5 s). */
    unsigned close_timeout_ms;
    /** Server: connections over this many get HTTP 503 (default 1024). */
    size_t max_connections;
    /** Server: PEM certificate (chain) and key; both set: wss:// (TLS). */
    const char *tls_cert_file, *tls_key_file;
    /** Client, wss://: PEM file of trusted CA certificates, or of the
     *  server's own (pinned) certificate, which is trusted whatever name
     *  it carries.  NULL: the system's trust store. */
    const char *tls_ca_file;
    /** Client: TCP connect + TLS + upgrade must finish in this time
     *  (default 10 s), else on_close(1006, "... timed out"). */
    unsigned connect_timeout_ms;
    /** Server: body of the 200 answer to a plain HTTP GET (no upgrade);
     *  other methods get 405.  NULL: a GET without upgrade gets 426. */
    const char *status_body;
} sprig__ws_opts;

/** Fill `o` with the defaults above. */
void sprig__ws_opts_init(sprig__ws_opts *o);

/**
 * Make writes to a socket whose peer has gone away fail with EPIPE instead
 * of killing the process: sets SIGPIPE to SIG_IGN, but only when the
 * program left it at SIG_DFL (a program's own handler is kept).  Called by
 * every listen and connect; idempotent and thread-safe.
 */
void sprig__ignore_sigpipe(void);

/**
 * Listen for WebSocket connections on `host`:`port` (port 0: an ephemeral
 * port; see sprig__listener_port()).  `host` NULL creates a listener
 * without a socket that only adopts connections (sprig__ws_adopt()).
 * `opts` may be NULL (defaults); it is copied, and the TLS files are loaded
 * now.  `cbs` is copied; `udata` is every new connection's first user
 * pointer.  On success *out is the listener, owned by the caller until
 * sprig__listener_close().
 * Errors: SPRIG_EINVAL (bad host, options, or TLS files: the detail says
 * which), SPRIG_EIO (bind/listen failed, e.g. the port is taken),
 * SPRIG_ENOMEM.
 */
int sprig__ws_listen(uv_loop_t *loop, const char *host, int port,
                     const sprig__ws_opts *opts, const sprig__conn_cbs *cbs,
                     void *udata, sprig__listener **out);

/** The bound port (0 for an adopt-only listener). */
int sprig__listener_port(const sprig__listener *l);

/**
 * Stop accepting and release the listener.  Connections that have not
 * opened yet (handshake under way) are dropped; open ones stay, with their
 * callbacks and options, until they close.  NULL is a no-op.
 */
void sprig__listener_close(sprig__listener *l);

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

/**
 * Open a client connection to `url` ("ws://host:port/path" or
 * "wss://..."; the port defaults to 80/443).  Asynchronous: on success
 * *out is the connection at once, and on_open or on_close follows from the
 * loop (never from inside this call); a refused upgrade reports the HTTP
 * status and the server's reason, a bad certificate 1015 and why.
 * `opts` may be NULL (defaults); `cbs` is copied.
 * Errors (nothing started, no callback follows): SPRIG_EINVAL (bad URL or
 * options, unreadable CA file), SPRIG_ENOMEM.
 */
int sprig__ws_connect(uv_loop_t *loop, const char *url,
                      const sprig__ws_opts *opts, const sprig__conn_cbs *cbs,
                      void *udata, sprig__conn **out);

/**
 * Queue one binary message (copied; `len` may be 0).  Valid between on_open
 * and the start of closing.
 * Errors: SPRIG_EINVAL (`data` NULL with `len` > 0), SPRIG_ECLOSED (not
 * open, or closing), SPRIG_ETOOBIG (over this
 * side's max_message; nothing is sent, the connection stays open),
 * SPRIG_EBUSY (the queue would pass max_send_queue: the connection is
 * closing with 1008 and on_close follows), SPRIG_ENOMEM.
 */
int sprig__conn_send(sprig__conn *c, const uint8_t *data, size_t len);

/** Bytes waiting to be written to the socket (messages not yet sent and
 *  TLS/socket buffers not yet taken by the kernel). */
size_t sprig__conn_queued(const sprig__conn *c);

/**
 * Start the close handshake with `code` (1000, or 3000-4999 for the layers
 * above; a code peers refuse, such as 1005/1006/1015, is reported to
 * on_close but sent as 1011) and `reason` (NULL or a string; cut at 123
 * bytes).  Messages
 * already queued are sent first; no more are delivered to on_message.
 * on_close(code, reason) follows once the peer answered or close_timeout
 * passed.  Calling it again, or on a connection not yet open (which is
 * then dropped), is allowed.
 */
void sprig__conn_close(sprig__conn *c, int code, const char *reason);

/** Change / read the user pointer passed to the callbacks. */
void sprig__conn_set_udata(sprig__conn *c, void *udata);
void *sprig__conn_udata(const sprig__conn *c);

/** The peer's address, "127.0.0.1:54321" or "[::1]:54321"; borrowed for
 *  the connection's life. */
const char *sprig__conn_peer(const sprig__conn *c);

/** The request path of the upgrade ("/" when none), borrowed for the
 *  connection's life; the client's own path on a client connection. */
const char *sprig__conn_path(const sprig__conn *c);

/** True for a connection made by sprig__ws_connect(). */
bool sprig__conn_is_client(const sprig__conn *c);

#endif
