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

/* ==== the API platform (issue 12; docs/api.md "Custom APIs", docs/
 * protocol.md "Custom APIs and their pushes") ==============================
 * A server program adds its own operations (rows of the same registry as
 * the built-in ones: dispatched, permission-checked and listed alike),
 * pushes messages to clients, hears about connections through hooks, and
 * can hand the server a WebSocket connection its own HTTP code accepted. */

/** Application error codes: a handler may fail a request with one of
 *  these (or any SPRIG_E* code); the client gets it and the message as
 *  sent.  SPRIG_EAPI(n) for n in 0..9999: -30000 down to -39999.  Sprig
 *  itself never returns a code in this range. */
#define SPRIG_EAPI_FIRST (-30000)
#define SPRIG_EAPI_LAST (-39999)
#define SPRIG_EAPI(n) (-30000 - (n))

/** One request to a custom API, from its arrival to its answer.  Owned by
 *  the server; valid until the handler answers it (sprig_api_reply() or
 *  sprig_api_fail(), exactly once), after which it must not be used. */
typedef struct sprig_api_ctx sprig_api_ctx;

/**
 * A custom API's handler.  It reads the request (sprig_api_request()) and
 * answers exactly once, with sprig_api_reply() or sprig_api_fail(): before
 * it returns, or later from any thread (asynchronously: the handler
 * returns without answering and keeps `ctx`; no worker is held while it
 * waits).  Threads: a worker of the pool (the default) or the loop thread
 * (SPRIG_API_RUN_LOOP: the handler must not block).  Shutdown waits for
 * every request to be answered.
 */
typedef void (*sprig_api_handler)(sprig_api_ctx *ctx, void *udata);

/** Where a custom API's handler runs. */
typedef enum sprig_api_run {
    /** A worker of the pool: may use the databases, may block. */
    SPRIG_API_RUN_WORKER = 0,
    /** The network (loop) thread: no hand-off, the cheapest call, but the
     *  handler must never block (no database call that waits on the disk
     *  or a lock: answer later from another thread instead). */
    SPRIG_API_RUN_LOOP = 1
} sprig_api_run;

typedef struct sprig_api_options {
    /** Where the handler runs (default SPRIG_API_RUN_WORKER). */
    sprig_api_run run;
    /** The API changes state (default false): like the built-in writes,
     *  a connection's writes run in the order it sent them. */
    bool write;
    /** The resource the permission check names (copied): NULL (default)
     *  for "sprig.api.<name>", each dot-separated part of the name a
     *  segment; else a canonical resource name such as
     *  "sprig.db.app.keyvalue..counter" (docs/protocol.md, "Resource
     *  names"). */
    const char *resource;
    /** One line saying what it does (copied; NULL: none). */
    const char *summary;
} sprig_api_options;

/** Fill `o` with the defaults above. */
SPRIG_API void sprig_api_options_init(sprig_api_options *o);

/**
 * Add the custom API `name` ("authority.name": letters, digits, '_' and
 * '-' in at least two dot-separated parts, at most 64 bytes; the first
 * parts storage, db, kv, view, pubsub, auth, sprig and server are Sprig's)
 * guarded by permission `action` (e.g. "counter.write"; a refused caller
 * gets SPRIG_EPERM and the handler does not run).  Before or while the
 * server runs; a row cannot be removed.  `udata` is passed to `handler`.
 * `o` may be NULL (defaults).  Any thread.
 * Errors: SPRIG_EINVAL (a NULL argument, a malformed or reserved name, a
 * malformed action or resource), SPRIG_EEXIST (the name is taken),
 * SPRIG_ENOMEM.
 */
SPRIG_API int sprig_server_register_api(sprig_server *srv, const char *name,
                                        const char *action,
                                        sprig_api_handler handler, void *udata);
SPRIG_API int
sprig_server_register_api_with(sprig_server *srv, const char *name,
                               const char *action, sprig_api_handler handler,
                               void *udata, const sprig_api_options *o);

/** One row of the server's API listing. */
typedef struct sprig_server_api_info {
    const char *name;   /**< "db.get", "counter.increment" */
    const char *action; /**< the permission action that guards it */
    bool custom;        /**< added with sprig_server_register_api() */
    bool write;         /**< changes state */
} sprig_server_api_info;

/**
 * The APIs the server serves, built-in and custom, in name order: up to
 * `cap` into `out` (may be NULL when `cap` is 0), their number in *n.
 * The strings are the server's, valid until sprig_server_free().  Any
 * thread.  Errors: SPRIG_EINVAL (NULL srv or n, NULL out with cap > 0).
 */
SPRIG_API int sprig_server_apis(sprig_server *srv, sprig_server_api_info *out,
                                size_t cap, size_t *n);

/* ---- inside a handler (any thread, until the answer) ---- */

/** The request's bytes (field "data"; empty when absent), valid until the
 *  answer. */
SPRIG_API sprig_bytes sprig_api_request(const sprig_api_ctx *ctx);
/** The API's name. */
SPRIG_API const char *sprig_api_name(const sprig_api_ctx *ctx);
/** The calling connection (id, peer, transport), valid until the answer. */
SPRIG_API const sprig_server_client *sprig_api_client(const sprig_api_ctx *ctx);
/** The identity the request runs as (borrowed until the answer; take a
 *  reference with sprig_identity_ref() to keep it), or NULL when the
 *  connection has not authenticated (open access). */
SPRIG_API sprig_identity *sprig_api_identity(const sprig_api_ctx *ctx);
/** The caller's identity's name ("alice"), or "" without one. */
SPRIG_API const char *sprig_api_identity_name(const sprig_api_ctx *ctx);
/**
 * The server's storage narrowed to the caller's permissions
 * (sprig_storage_narrow(): every call checked as the caller's own request
 * would be), made on first use and owned by `ctx` until the answer.  With
 * open access, or an `authorize` callback and no identity, it is the
 * unrestricted storage.  Errors: those of sprig_storage_narrow().
 */
SPRIG_API int sprig_api_storage(sprig_api_ctx *ctx, sprig_storage **out);
/** The server's storage, unrestricted (what sprig_server_storage() gives). */
SPRIG_API sprig_storage *
sprig_api_storage_unrestricted(const sprig_api_ctx *ctx);
/** The server. */
SPRIG_API sprig_server *sprig_api_server(const sprig_api_ctx *ctx);
/** The calling connection's user data (set by the connected hook; NULL
 *  without one). */
SPRIG_API void *sprig_api_client_data(const sprig_api_ctx *ctx);

/**
 * Answer the request with `len` bytes of `data` (copied; NULL with 0:
 * empty).  Ends `ctx`.  Any thread.  Errors: SPRIG_EINVAL (NULL ctx),
 * SPRIG_ENOMEM (the client then gets SPRIG_ENOMEM); either way the
 * request is answered and `ctx` is gone.
 */
SPRIG_API int sprig_api_reply(sprig_api_ctx *ctx, const void *data, size_t len);
/**
 * Answer the request with error `code` -- a SPRIG_E* code or an
 * application code SPRIG_EAPI(n) -- and a message (printf format, at most
 * 511 bytes sent) that the client reads as sprig_errmsg().  Ends `ctx`.
 * Any thread.  Returns `code`, or SPRIG_EINVAL for a code in neither range
 * (the client then gets SPRIG_EINVAL naming the bad code).
 */
SPRIG_API int sprig_api_fail(sprig_api_ctx *ctx, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- asynchronous key-value operations (inside a handler) ---- */

/**
 * The outcome of a handler's key-value operation: `rc` 0 or a negative
 * code (the detail in sprig_errmsg() on this thread); `value` borrowed for
 * the call: the value read (get) or the new value (increment); NULL for a
 * set or a failure.  Usually answers the request (sprig_api_reply() /
 * sprig_api_fail()) or starts the next operation.  Threads: any -- the
 * storage's writer thread for a submitted write, the calling thread for a
 * get of a cached database (before sprig_api_kv_get() returns), or a
 * worker; keep it short (a writer thread runs it between commits).
 */
typedef void (*sprig_api_kv_done)(sprig_api_ctx *ctx, int rc,
                                  const sprig_value *value, void *udata);

/**
 * Start a key-value operation on database `db` of the server's
 * (unrestricted) storage and return: no worker waits for it.  The API's
 * own action is the permission check; a handler that must check the
 * caller further uses sprig_api_storage() instead.  `ns` may be NULL (the
 * default namespace); strings and bytes are copied.  A write with the
 * database's handle open in the server is queued as a command (the same
 * path as the built-in kv.set / kv.increment rows) and `done` runs when it
 * is committed per the storage's durability; otherwise a worker runs the
 * synchronous call.  Returns 0: `done` is called exactly once (it may be
 * before this returns), and `ctx` stays valid until then even if the
 * request is answered meanwhile (answer after the operations you wait
 * for: the request is answered once).  Errors: SPRIG_EINVAL (NULL ctx,
 * db, key, done, or value / amount), SPRIG_ENOMEM; `done` is then never
 * called.  The operation's own errors (SPRIG_ENOTFOUND for a missing key,
 * those of sprig_kv_set() / sprig_kv_increment()) reach `done`.  Any
 * thread, from the handler until its answer (a done callback included).
 */
SPRIG_API int sprig_api_kv_get(sprig_api_ctx *ctx, const char *db,
                               const char *ns, const char *key,
                               sprig_api_kv_done done, void *udata);
/** Set (ns, key) to `value` (a plain set: no check, no expiry). */
SPRIG_API int sprig_api_kv_set(sprig_api_ctx *ctx, const char *db,
                               const char *ns, const char *key,
                               const sprig_value *value, sprig_api_kv_done done,
                               void *udata);
/** Add `amount` to the number under (ns, key) (sprig_kv_increment()'s
 *  rules, not saturating); `done` gets the new value. */
SPRIG_API int sprig_api_kv_increment(sprig_api_ctx *ctx, const char *db,
                                     const char *ns, const char *key,
                                     const sprig_value *amount,
                                     sprig_api_kv_done done, void *udata);

/* ---- pushes ---- */

/** Who a push goes to. */
typedef enum sprig_push_to {
    SPRIG_PUSH_CLIENT = 0,   /**< the connection with id `client_id` */
    SPRIG_PUSH_IDENTITY = 1, /**< every connection with a session of
                                  identity `identity` */
    SPRIG_PUSH_ALL = 2       /**< every open connection */
} sprig_push_to;

typedef struct sprig_push_target {
    sprig_push_to to;
    uint64_t client_id;   /**< SPRIG_PUSH_CLIENT: sprig_server_client.id */
    const char *identity; /**< SPRIG_PUSH_IDENTITY: a user or role name */
} sprig_push_target;

/**
 * Push `len` bytes of `data` (copied) to the target's connections as the
 * frame [3, api, {"data": bin}] (docs/protocol.md).  `api` is the push's
 * name, conventionally the custom API's (not a reserved first part, at
 * most 64 bytes).  Returns once queued: the loop thread sends it, after
 * anything a handler on the same thread answered or pushed before it
 * (from a handler, a push precedes that handler's answer).  A target that
 * matches no open connection receives nothing (sprig_server_push_stats()
 * counts it).  Any thread.
 * Errors: SPRIG_EINVAL (NULL or malformed argument, reserved api),
 * SPRIG_ECLOSED (the server is not running), SPRIG_ENOMEM.
 */
SPRIG_API int sprig_server_push(sprig_server *srv, const sprig_push_target *t,
                                const char *api, const void *data, size_t len);

/** Pushes so far: queued by sprig_server_push, frames sent (one per
 *  receiving connection), and pushes whose target matched no open
 *  connection. */
typedef struct sprig_push_stats {
    uint64_t queued, sent, unmatched;
} sprig_push_stats;
/** Fill `out` (any thread).  Errors: SPRIG_EINVAL (NULL argument). */
SPRIG_API int sprig_server_push_stats(sprig_server *srv, sprig_push_stats *out);

/* ---- backend hooks and connected clients ---- */

/**
 * What the server tells the program about connections.  Every callback is
 * optional and runs on the server's loop thread: it must not block, and
 * must not wait for the server.  `client` is borrowed for the call.
 * Order for one connection: connected, then authenticated / session_ended
 * for each session, then disconnected (which first ends every session
 * still open: session_ended for each).
 */
typedef struct sprig_server_hooks {
    /** A connection opened (after its upgrade / handshake).  Return 0 to
     *  accept it, anything else to refuse: the connection is closed with
     *  code 4001 and `reason` (fill it: NUL-terminated, up to
     *  `reason_cap` bytes; empty: "refused"), which the client sees.
     *  `*client_data` (NULL at first) may be set: handlers read it
     *  (sprig_api_client_data()), the other hooks get it.  A refused
     *  connection gets no other hook. */
    int (*connected)(void *udata, const sprig_server_client *client,
                     void **client_data, char *reason, size_t reason_cap);
    /** A login made session `session` for `identity` on the connection. */
    void (*authenticated)(void *udata, const sprig_server_client *client,
                          void *client_data, uint64_t session,
                          const char *identity);
    /** Session `session` ended: logged out, or its connection closed. */
    void (*session_ended)(void *udata, const sprig_server_client *client,
                          void *client_data, uint64_t session,
                          const char *identity);
    /** The connection closed (free `client_data` here). */
    void (*disconnected)(void *udata, const sprig_server_client *client,
                         void *client_data);
    void *udata;
} sprig_server_hooks;

/** Set the hooks (copied) before sprig_server_start()/run().
 *  Errors: SPRIG_EINVAL (NULL), SPRIG_EBUSY (already started). */
SPRIG_API int sprig_server_set_hooks(sprig_server *srv,
                                     const sprig_server_hooks *h);

/** One open connection, for sprig_server_connected_clients(). */
typedef struct sprig_server_client_info {
    uint64_t id;           /**< sprig_server_client.id */
    char peer[64];         /**< "127.0.0.1:54321" */
    char transport[16];    /**< "ws", "wss", "quic" */
    uint64_t connected_ms; /**< when it opened, ms since 1970 */
    char identity[128];    /**< the default session's identity, or "" */
    uint32_t sessions;     /**< sessions (logins) open on it */
    uint64_t requests;     /**< requests received on it so far */
} sprig_server_client_info;

/**
 * The server's open connections (accepted by the connected hook), oldest
 * first: up to `cap` into `out` (may be NULL when `cap` is 0), their
 * number in *n.  Any thread but the loop thread's hooks and loop handlers
 * may call it (it asks the loop thread and waits); from the loop thread
 * it answers directly.  None when the server is not running.
 * Errors: SPRIG_EINVAL (NULL srv or n, NULL out with cap > 0).
 */
SPRIG_API int sprig_server_connected_clients(sprig_server *srv,
                                             sprig_server_client_info *out,
                                             size_t cap, size_t *n);

/**
 * HTTP hand-over: a program whose own HTTP server accepted a connection
 * and read an upgrade request hands the socket to the server, which
 * serves it as any client of its WebSocket listener (options, limits,
 * hooks, permissions).  The server owns `fd` from now on (closed with the
 * connection, or on error).  `already_read` (`n` bytes, copied) is what
 * the program read so far: with `upgraded` false, the request as
 * received (its head, perhaps partial) -- the server checks it and
 * answers the upgrade itself; with `upgraded` true, the program already
 * answered 101 (with the subprotocol) and the bytes are the start of the
 * WebSocket stream.  Plain TCP (ws://) only.  Any thread; the connection
 * opens later on the loop thread.
 * Errors: SPRIG_EINVAL (bad arguments, no plain WebSocket listener),
 * SPRIG_ECLOSED (not running), SPRIG_ENOMEM; `fd` is closed on every error
 * (one found on the loop thread -- over max_connections -- closes it
 * there).
 */
SPRIG_API int sprig_server_adopt_ws(sprig_server *srv, int fd,
                                    const void *already_read, size_t n,
                                    bool upgraded);

#ifdef __cplusplus
}
#endif
#endif /* SPRIG_SERVER_H */
