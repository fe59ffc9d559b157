/*
 * client.h -- connecting to a Sprig server (access model M3).
 *
 * A client gives a `sprig_storage` whose databases are `sprig_db` handles
 * like local ones: every function of sprig.h works on them unchanged, over
 * the network.  Calls block the calling thread; any number of threads may
 * share one client, and their requests are pipelined on one connection.
 *
 * Connection loss: requests in flight fail with SPRIG_ECLOSED; the next
 * request reconnects (unless options.reconnect is false).  A server that
 * cannot be reached gives SPRIG_ECONNECT with the reason.
 */
#ifndef SPRIG_CLIENT_H
#define SPRIG_CLIENT_H

#include "sprig/sprig.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sprig_client sprig_client;

typedef struct sprig_client_options {
    /** wss://: a PEM file with the server's certificate (pinned) or the CA
     *  that signed it.  NULL: the system's trust store. */
    const char *pinned_cert_path;
    /** Connecting (TCP, TLS, upgrade) must finish in this time (default
     *  5000 ms). */
    unsigned connect_timeout_ms;
    /** A request must be answered in this time (default 30000 ms; 0: no
     *  limit), else SPRIG_ETIMEDOUT. */
    unsigned request_timeout_ms;
    /** After the connection drops, reconnect on the next request (default
     *  true). */
    bool reconnect;
    /** Largest frame accepted from the server (default 64 MiB). */
    size_t max_frame;
    /** wss://, quic://, sprig://: the server certificate's SHA-256
     *  fingerprint (64 hex digits, colons allowed; `sprig certificate
     *  show` prints it), pinned: the only certificate trusted, and a
     *  mismatch is SPRIG_ECONNECT naming both.  NULL: pinned_cert_path,
     *  or the system's trusted CAs. */
    const char *pinned_cert_sha256;
    /** Pushes with no callback kept for sprig_client_push_next() (default
     *  4096); past it the oldest is dropped and counted.  0: the
     *  default. */
    size_t max_pushes;
    /* ---- clusters (issue 18; docs/cluster.md) ---- */
    /** Do not follow SPRIG_ENOTLEADER to the leader it names (default
     *  false; SPRIG_NO_FOLLOW=1 in the environment does the same). */
    bool no_follow;
    /** Every read request carries "lin": true, which a cluster node
     *  answers only after confirming it leads (linearizable reads; a
     *  follower answers SPRIG_ENOTLEADER, followed unless no_follow).
     *  Default false. */
    bool linearizable_reads;
} sprig_client_options;

/** Fill `o` with the defaults above. */
SPRIG_API void sprig_client_options_init(sprig_client_options *o);

/**
 * Connect to `url` ("ws://host:port", "wss://host:port", or over QUIC
 * "quic://host:port" / "sprig://host:port", port 5645 by default: the
 * scheme picks the transport) and wait until the connection is open.  `url`
 * may list several nodes of a cluster, comma-separated ("ws://a:5646,
 * b:5646,quic://c:5645"; an element without a scheme takes the first's):
 * the first that answers is used, a dropped connection moves on to the
 * next, and a call refused with SPRIG_ENOTLEADER naming the leader is sent
 * once more to it (docs/api.md, "Over the network").  `o` may
 * be NULL (defaults). Errors: SPRIG_EINVAL (malformed URL, or a scheme that
 * names no transport: the detail names it), SPRIG_ECONNECT (refused,
 * unreachable, timed out, TLS or upgrade refused: the detail says which),
 * SPRIG_ENOMEM.
 */
SPRIG_API int sprig_client_connect(const char *url,
                                   const sprig_client_options *o,
                                   sprig_client **out);

/**
 * The server's storage, as a `sprig_storage` handle owned by the client:
 * valid until sprig_client_close().  sprig_storage_close() on it does
 * nothing (close the client instead).
 */
SPRIG_API sprig_storage *sprig_client_storage(sprig_client *c);

/**
 * The server's storage, as sprig_client_storage(), but from now on the
 * handle owns the client: sprig_storage_close() on it closes the client
 * and its connection, and the caller must not call sprig_client_close()
 * itself.  For programs that keep only the storage (sprig_open() returns
 * this).  NULL for a NULL client.  Call it before sharing the handle.
 */
SPRIG_API sprig_storage *sprig_client_storage_owning(sprig_client *c);

/**
 * What carries the client's connection: the transport (URL scheme), whether
 * it is encrypted, the TLS version and cipher (GnuTLS's names), the
 * server's address, and the messages and writes so far (as of when the
 * connection opened).  Any thread.
 * Errors: SPRIG_EINVAL (NULL argument), SPRIG_ECLOSED (not connected now).
 */
SPRIG_API int sprig_client_info(sprig_client *c, sprig_conn_info *out);

/* ---- authentication (issue 10; docs/protocol.md, "Authentication and
 * sessions") ---------------------------------------------------------------
 * A successful login becomes the connection's default session: every call
 * through the client then runs as that identity.  The client keeps the
 * credentials (in memory, wiped at close) and logs in again by itself
 * after a reconnect, before sending anything else; if that login is
 * refused, the calls waiting fail with its reason.  Any thread. */

/** Log in as `user` with `password` (argon2id on the server).
 *  Errors: SPRIG_EPERM ("authentication failed", the same for unknown
 *  users and wrong passwords), SPRIG_EBUSY (the server is hashing too
 *  many passwords at once: retry), and those of any call. */
SPRIG_API int sprig_client_authenticate_password(sprig_client *c,
                                                 const char *user,
                                                 const char *password);
/** Log in with token `id` and its `secret` (hex) by challenge-response:
 *  the secret never leaves the process.  Errors: SPRIG_EPERM (unknown or
 *  deleted token, wrong secret, clocks more than 60 s apart),
 *  SPRIG_EINVAL (a malformed secret), and those of any call. */
SPRIG_API int sprig_client_authenticate_token(sprig_client *c, const char *id,
                                              const char *secret);
/** sprig_client_authenticate_token() with the token of a file holding
 *  one line "ID:SECRET" (what `sprig admin token create` writes).
 *  Errors: SPRIG_EIO (unreadable), SPRIG_EINVAL (malformed), and those of
 *  sprig_client_authenticate_token(). */
SPRIG_API int sprig_client_authenticate_token_file(sprig_client *c,
                                                   const char *path);
/** Read a token file (one line "ID:SECRET") into caller buffers.
 *  Errors: SPRIG_EIO, SPRIG_EINVAL. */
SPRIG_API int sprig_token_file_read(const char *path, char id[17],
                                    char secret[65]);

/* ==== custom APIs and pushes (issue 12; docs/api.md "Custom APIs",
 * docs/protocol.md "Custom APIs and their pushes") ======================= */

/**
 * Call the server's custom API `api` ("counter.increment") with `len`
 * bytes of `data` (NULL with 0: none) and wait for its answer: the bytes
 * the handler replied are appended to `out` (the caller's buffer; free
 * it with sprig_buf_clear()).  As the connection's default session (the
 * last login).  Any thread; pipelined with every other call.
 * Errors: what the handler failed with (a SPRIG_E* code, or an
 * application code -30000..-39999), its message in sprig_errmsg();
 * SPRIG_EPROTO "unknown API '...'" for a name the server does not serve;
 * SPRIG_EPERM (the caller lacks the API's action); SPRIG_EINVAL (NULL
 * argument); those of any call (SPRIG_ECLOSED, SPRIG_ECONNECT,
 * SPRIG_ETIMEDOUT).
 */
SPRIG_API int sprig_client_call(sprig_client *c, const char *api,
                                const void *data, size_t len, sprig_buf *out);

/**
 * sprig_client_call() on the connection behind `server` -- a storage from
 * sprig_client_storage() or sprig_open() of a server's URL (what the CLI
 * has).  Same answer and errors; SPRIG_EINVAL when `server` is not a
 * server's storage.  Any thread.
 */
SPRIG_API int sprig_client_call_on(sprig_storage *server, const char *api,
                                   const void *data, size_t len,
                                   sprig_buf *out);

/** One API the server serves (server.apis; docs/protocol.md). */
typedef struct sprig_api_info {
    char *name;     /**< "db.get", "counter.increment" */
    char *action;   /**< the permission action that guards it */
    char *resource; /**< its resource pattern: "{field}" for a part the
                       request gives ("sprig.db.{db}.keyvalue.{ns}.{key}");
                       a custom API's fixed resource */
    char *summary;  /**< one line; may be "" */
    bool custom;    /**< registered by the server program */
    bool write;     /**< changes state */
} sprig_api_info;

/**
 * The APIs the server behind `server` (as sprig_client_call_on()) serves
 * to this connection, in name order: every built-in row, and the custom
 * APIs the caller may call (the others are left out).  *out is an array
 * of *n entries owned by the caller (sprig_api_info_free()).  Granted to
 * every connection, logged in or not (action "api.list").  Any thread.
 * Errors: SPRIG_EINVAL (NULL argument, not a server's storage), those of
 * any call; *out is NULL and *n 0 on failure.
 */
SPRIG_API int sprig_client_apis(sprig_storage *server, sprig_api_info **out,
                                size_t *n);
/** Free a listing of sprig_client_apis() (NULL: nothing). */
SPRIG_API void sprig_api_info_free(sprig_api_info *apis, size_t n);

/** A push callback: `api` and `data` are borrowed for the call.  It runs
 *  on the client's network thread: it must not block, nor call the client
 *  (hand the work to another thread). */
typedef void (*sprig_client_push_fn)(void *udata, const char *api,
                                     sprig_bytes data);

/**
 * Deliver pushes named `api` to `cb` from now on (replacing an earlier
 * callback for it); `api` NULL: every push that has no callback of its
 * own.  `cb` NULL removes the callback (pushes for `api` are queued
 * again); once this returns, the removed callback is not running.  Not
 * from inside a callback.  Pushes with no callback are queued (see
 * sprig_client_push_next()).  PubSub's own pushes go to their
 * subscribers, never here.  Any thread.
 * Errors: SPRIG_EINVAL (NULL client), SPRIG_ENOMEM.
 */
SPRIG_API int sprig_client_on_push(sprig_client *c, const char *api,
                                   sprig_client_push_fn cb, void *udata);

/** A queued push (sprig_client_push_next()); free it with
 *  sprig_client_push_free(). */
typedef struct sprig_client_push {
    char *api;
    sprig_buf data;
} sprig_client_push;

/**
 * The oldest queued push (one no callback took), waiting up to
 * `timeout_ms` for one (0: do not wait).  *out is the caller's
 * (sprig_client_push_free()).  Any thread.
 * Errors: SPRIG_ETIMEDOUT (none came), SPRIG_EINVAL (NULL argument).
 */
SPRIG_API int sprig_client_push_next(sprig_client *c, unsigned timeout_ms,
                                     sprig_client_push **out);
/** Free a push from sprig_client_push_next() (NULL: no-op). */
SPRIG_API void sprig_client_push_free(sprig_client_push *p);
/** A file descriptor readable (poll/epoll) while pushes are queued.
 *  Owned by the client: never close it.  -1 for a NULL client. */
SPRIG_API int sprig_client_push_fd(sprig_client *c);

/** Pushes so far: received (custom pushes; PubSub's are counted by their
 *  subscribers), given to callbacks, queued, dropped from the full queue
 *  (oldest first), malformed (not {"data": bin}: counted, not kept), and
 *  waiting in the queue now. */
typedef struct sprig_client_push_counts {
    uint64_t received, delivered, queued, dropped, malformed;
    size_t waiting;
} sprig_client_push_counts;
/** Fill `out`.  Any thread.  Errors: SPRIG_EINVAL (NULL argument). */
SPRIG_API int sprig_client_push_stats(sprig_client *c,
                                      sprig_client_push_counts *out);

/* ---- administration over the network (issue 10; docs/protocol.md,
 * "Administration") -------------------------------------------------------- */

/**
 * Make change `ch` (sprig/auth.h: create a user, add it to a group, grant a
 * group, make a token, ...) on the server behind `server` -- a storage
 * from sprig_client_storage() or sprig_open() of a server's URL -- as the
 * connection's identity, which needs the op's action on the record
 * (sprig_admin_action(); e.g. "user.create" on "sprig.user.<name>").
 * Other sessions see the change on their next request.  `tok` receives a
 * created token (NULL for other ops); a password or secret the call held
 * is wiped from the client's buffers when it returns.
 * Errors: SPRIG_EINVAL (`server` is not a server's storage, a bad
 * change), SPRIG_EPERM (not granted), SPRIG_EEXIST, SPRIG_ENOTFOUND, and
 * those of any call.  Any thread.
 */
struct sprig_admin_change; /* sprig/auth.h */
struct sprig_admin_token;
SPRIG_API int sprig_client_admin(sprig_storage *server,
                                 const struct sprig_admin_change *ch,
                                 struct sprig_admin_token *tok);

/**
 * Close the connection and free the client.  Database handles taken from
 * its storage must be closed first.  Requests still waiting in other
 * threads fail with SPRIG_ECLOSED.  NULL is a no-op.
 */
SPRIG_API void sprig_client_close(sprig_client *c);

#ifdef __cplusplus
}
#endif
#endif /* SPRIG_CLIENT_H */
