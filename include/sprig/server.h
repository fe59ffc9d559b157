/*
 * server.h -- Sprig as a server (access model M3).
 *
 * A server serves the databases of a storage over WebSockets (ws:// and
 * wss://) with protocol sprig/1 (docs/protocol.md): a local storage it
 * opens itself (sprig_server_new), or any storage the program hands it
 * (sprig_server_new_for).  The program that runs it keeps direct access to
 * the same storage, with no networking, through sprig_server_storage().
 *
 * Every request passes one authorise step (the `authorize` option) with
 * the client's identity, the row's permission action and the resource
 * name the request touches (docs/protocol.md, "Resource names").
 *
 * Threads: one loop thread owns the sockets; database work runs on a pool
 * of worker threads; the calling thread only starts and stops the server.
 */
#ifndef SPRIG_SERVER_H
#define SPRIG_SERVER_H

#include "sprig/auth.h"
#include "sprig/sprig.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sprig_server sprig_server;

/** What the server knows of a client connection, for the authorise step.
 *  Borrowed for the call; fixed for the connection's life. */
typedef struct sprig_server_client {
    /** Unique per server (1, 2, ... in connection order). */
    uint64_t id;
    /** The peer's address, "127.0.0.1:54321" or "[::1]:54321". */
    const char *peer;
    /** "ws", "wss" (TLS) or "quic". */
    const char *transport;
} sprig_server_client;

/**
 * The authorise step of every request (built-in rows, PubSub, and rows
 * added later).  `action` is the row's permission action ("document.get"),
 * `resource` the canonical resource name ("sprig.db.app.collection.msgs.
 * document.%00%00%00%00%00%00%00%2A"): a request that names several
 * resources (db.get_multiple's ids, pubsub.publish's topics) is asked about
 * each.  Return 0 to allow; anything else refuses: the client gets an
 * error frame with that code (SPRIG_EPERM when it is not a negative
 * SPRIG_E* code) and a message naming the action and the resource, and
 * the request goes no further (no handler runs, nothing changes).
 * Threads: called on the server's loop thread and on its workers,
 * concurrently; it must be thread-safe and should not block (on the loop
 * thread it holds up every connection).
 */
typedef int (*sprig_server_authorize_fn)(void *udata,
                                         const sprig_server_client *client,
                                         const char *action,
                                         const char *resource);

typedef struct sprig_server_options {
    /** "host:port" for WebSockets (default "127.0.0.1:5646"); port 0
     *  picks a free one (see sprig_server_ws_port).  NULL: none. */
    const char *ws_listen;
    /** PEM certificate (chain) and private key: when both are set the
     *  WebSocket listener speaks TLS (wss://). */
    const char *tls_cert_file, *tls_key_file;
    /** Largest frame accepted, in bytes (default 16 MiB).  Larger frames
     *  close the connection with WebSocket code 1009. */
    size_t max_frame;
    /** Requests one connection may have in flight (default 256); past it a
     *  request is answered SPRIG_EBUSY. */
    uint32_t max_inflight;
    /** Connections at once (default 1024); past it: HTTP 503. */
    size_t max_connections;
    /** Bytes of answers and pushes a connection may have waiting to be
     *  written (default 16 MiB).  A client that stops reading past it is
     *  disconnected (WebSocket 1008), so it cannot make the server hold
     *  unbounded memory. */
    size_t max_send_queue;
    /** Keep-alive ping interval and idle timeout in ms (defaults 30 s and
     *  90 s; 0 disables). */
    unsigned ping_interval_ms, idle_timeout_ms;
    /** Database worker threads (default 16: writers wait on the disk, so
     *  more threads make bigger group commits). */
    unsigned workers;
    /** The authorise step (see sprig_server_authorize_fn) and its user
     *  pointer.  NULL (the default): the permission engine decides (below). */
    sprig_server_authorize_fn authorize;
    void *authorize_udata;
    /** "host:port" for QUIC (quic:// and sprig://, docs/protocol.md
     *  "QUIC"; port 0 picks a free one, see sprig_server_quic_port).
     *  NULL (the default): no QUIC listener.  `sprig serve` listens on
     *  127.0.0.1:5645. */
    const char *quic_listen;
    /** PEM certificate (chain) and key for QUIC.  NULL: tls_cert_file and
     *  tls_key_file (the same certificate serves wss://).  QUIC needs one
     *  or the other (sprig_cert_ensure() makes a self-signed pair). */
    const char *quic_cert_file, *quic_key_file;

    /* ---- access control (issue 10; docs/architecture.md, "Access") ----
     * Without an `authorize` callback, every request is checked against
     * the effective permissions of the identity of its session (the
     * auth.* rows authenticate one); an unauthenticated connection may
     * only authenticate. */
    /** The permission engine (borrowed; keep it until sprig_server_free).
     *  NULL (the default): the server opens one over its storage with
     *  `auth_options` (NULL: defaults), creating the "_admin" database. */
    sprig_auth *auth;
    const sprig_auth_options *auth_options;
    /** Let every request through unchecked, as servers did before issue
     *  10: for tests and benchmarks of other parts.  Never the default.
     *  The auth.* rows still work when `auth` is given. */
    bool open_access;
    /** Browser origins allowed to open a WebSocket (NULL-terminated,
     *  borrowed for the server's life; "*": any).  NULL (the default):
     *  only the server's own.  A cross-origin upgrade gets HTTP 403. */
    const char *const *allowed_origins;
    /** Connections at once from one client address (default 64; 0: no
     *  limit); past it the new connection is closed (1008) at once. */
    size_t max_connections_per_address;
    /** A connection that has not authenticated within this is closed
     *  (1008) (default 10000 ms; 0: never).  Not with open_access. */
    unsigned auth_timeout_ms;

    /* ---- the web console (issue 15; docs/architecture.md, "Web console")
     * The WebSocket listener answers plain HTTP GET and HEAD requests (no
     * upgrade) with pages: "/" the console (embedded in the library), its
     * files under "/console/", "/health" a JSON object (name, version,
     * protocol, uptime_s, connections); anything else 404.  Only to pages
     * of allowed origins (`allowed_origins`): another site's page gets
     * 403. */
    /** true: no console ("/" answers the server's status as text; "/health"
     *  stays).  `sprig serve --no-console`.  Default false. */
    bool no_console;
} sprig_server_options;

/** Fill `o` with the defaults above. */
SPRIG_API void sprig_server_options_init(sprig_server_options *o);

/**
 * Open the storage described by `so` and prepare a server for it.  Nothing
 * listens until sprig_server_start() or sprig_server_run().
 * Errors: those of sprig_storage_open(), SPRIG_EINVAL (bad listen address,
 * only one of the TLS files), SPRIG_ENOMEM.
 */
SPRIG_API int sprig_server_new(const sprig_storage_options *so,
                               const sprig_server_options *o,
                               sprig_server **out);

/**
 * Prepare a server for a storage the program already has -- a local one,
 * or any other implementation of sprig_storage (the server uses only its
 * public operations).  The server borrows `st`: the caller keeps owning
 * it, must not close it before sprig_server_free() returned, and may use
 * it meanwhile.  The server calls `st` and the database handles it opens
 * from its loop thread and its workers concurrently, so `st` must be safe
 * to use from several threads (every storage Sprig makes is).
 * Errors: SPRIG_EINVAL (`st` or `out` NULL, bad listen address, only one
 * of the TLS files), SPRIG_ENOMEM.
 */
SPRIG_API int sprig_server_new_for(sprig_storage *st,
                                   const sprig_server_options *o,
                                   sprig_server **out);

/** The server's storage, for direct use by the program (no networking).
 *  Owned by the server (sprig_server_new) or by the program
 *  (sprig_server_new_for); valid until sprig_server_free(). */
SPRIG_API sprig_storage *sprig_server_storage(sprig_server *srv);

/**
 * Start listening and serve on a background thread.  Returns once the
 * listener is bound.  Errors: SPRIG_EIO (cannot bind: the detail says
 * why), SPRIG_EBUSY (already running), SPRIG_EINVAL (bad TLS files).
 */
SPRIG_API int sprig_server_start(sprig_server *srv);

/** As sprig_server_start(), but serve on the calling thread until
 *  sprig_server_shutdown() is called (from another thread or a signal
 *  handler's thread). */
SPRIG_API int sprig_server_run(sprig_server *srv);

/** The server's permission engine (NULL with open_access and no `auth`
 *  option): to create users, groups and tokens from the program.
 *  Valid until sprig_server_free().  Any thread. */
SPRIG_API sprig_auth *sprig_server_auth(sprig_server *srv);

/** The bound WebSocket port (after start), or -1. */
SPRIG_API int sprig_server_ws_port(const sprig_server *srv);

/** The bound QUIC (UDP) port (after start), or -1 when none. */
SPRIG_API int sprig_server_quic_port(const sprig_server *srv);

/**
 * What carries each open connection of the listener (transport, TLS state,
 * version and cipher, peer, messages and writes so far): up to `cap`
 * entries into `out` (caller storage; may be NULL when `cap` is 0), and
 * in *n how many connections are open (may exceed `cap`).  None once the
 * server stops listening.  Any thread.
 * Errors: SPRIG_EINVAL (NULL srv or n, or NULL out with cap > 0).
 */
SPRIG_API int sprig_server_connections(sprig_server *srv, sprig_conn_info *out,
                                       size_t cap, size_t *n);

/**
 * Stop: close the listener and refuse new requests (SPRIG_ECLOSED), let
 * the requests in flight finish and send their answers -- for up to
 * `grace_ms`, after which answers still due are dropped (their work is
 * done or not, as the database decides) -- then tell every client it is
 * going away (close 1001) and stop the loop.  Returns at once; the loop
 * thread does the rest.  Safe from any thread, and more than once.
 * Returns SPRIG_OK.
 */
SPRIG_API int sprig_server_shutdown(sprig_server *srv, int grace_ms);

/** Shut down (if running, with a 1 s grace), wait for the loop thread,
 *  close the storage (unless it was borrowed: sprig_server_new_for) and
 *  free.  NULL is a no-op. */
SPRIG_API void sprig_server_free(sprig_server *srv);

#ifdef __cplusplus
}
#endif
#endif /* SPRIG_SERVER_H */
