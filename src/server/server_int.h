/*
 * server_int.h -- private interface of src/server.
 *
 *   server.c    lifecycle: options, the loop thread, the listener, shutdown
 *   registry.c  the server's API rows (built-in ones copied in at creation,
 *               more added at run time), found by name
 *   request.c   the one request path: decode by the row -> authorise
 *               (session, action, resource) -> the row's handler -> encode
 *               the answer or the error (the one builder of error frames)
 *   resource.c  a request's resource names, from the row's declared spec
 *   session.c   one session per connection: frames in, each request run
 *               where its row says (loop thread, worker pool, submitted),
 *               answers back; limits on in-flight requests
 *   dispatch.c  the built-in handlers (the public API on the storage) and
 *               the worker side of a job
 *   pubsub_srv.c  the subscriber handlers and pushes
 *   db_cache.c  open database handles shared by the loop and the workers
 *   pool.c      the worker threads that run database work
 *   submit.c    writes submitted to the engine as commands (no thread
 *               waits for their commit)
 *   http_srv.c  the pages of plain HTTP GETs on the WebSocket port: the
 *               web console (src/console's embedded files) and /health
 *   auth_srv.c  the auth.* rows (sessions of a connection: log in with a
 *               password or a token, assume an identity, log out) and
 *               connection admission (per-address limit, the timeout of
 *               connections that never authenticate)
 *
 * Threads.  Everything in a session but its `info`, and the session list,
 * belongs to the loop thread.  A request whose row runs on a worker
 * becomes a job: its payload is copied, and the worker runs the whole
 * request path and encodes the answer frame; the job then goes back to
 * the loop thread (a done queue and a uv_async_t) which sends it if the
 * connection is still open.  A session is freed when its connection has
 * closed and no job of it is in flight (`refs`).  Workers read only a
 * session's `info` (set before any request, never changed).
 */
#ifndef SPRIG_SERVER_INT_H
#define SPRIG_SERVER_INT_H

#include "core/core.h"
#include "proto/api.h"
#include "proto/envelope.h"
#include "sprig/server.h"
#include "transport/transport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

typedef struct sprig__session sprig__session;
typedef struct sprig__srv_sub sprig__srv_sub;
typedef struct sprig__call sprig__call;
typedef struct sprig__job sprig__job;

/** A row's handler: run the decoded request `req`, fill the zeroed
 *  response `resp`; 0 or a negative code with the detail recorded.  On
 *  the loop thread (call->on_loop) a handler that would have to wait
 *  returns SPRIG__EMISS and the request moves to a worker. */
typedef int (*sprig__handler)(sprig__call *call, void *req, void *resp);

/** One row of a server's registry: a copy of the wire row and how the
 *  server runs it.  Never moves or changes once added. */
typedef struct sprig__route {
    sprig__api api;
    sprig__handler handler;
    void *udata; /* the handler's, from sprig__registry_add */
} sprig__route;

/** The rows a server serves, sorted by name; `lock` lets rows be added
 *  while requests look them up (any thread). */
typedef struct sprig__registry {
    pthread_rwlock_t lock;
    sprig__route **rows;
    size_t n, cap;
} sprig__registry;

/** Copy in the built-in rows (dispatch.c's sprig__builtins).
 *  SPRIG_ENOMEM.  Free it with sprig__registry_free() either way. */
int sprig__registry_init(sprig__registry *r);
/** Add a row at run time.  Its strings are copied; its field arrays are
 *  borrowed for the server's life.  Any thread.  Errors: SPRIG_EINVAL (no
 *  name, action or handler, or a bad where/resource), SPRIG_EEXIST (the
 *  name is taken), SPRIG_ENOMEM. */
int sprig__registry_add(sprig__registry *r, const sprig__api *row,
                        sprig__handler handler, void *udata);
/** The row named `name`, or NULL.  Any thread; the row stays valid until
 *  sprig__registry_free(). */
const sprig__route *sprig__registry_find(sprig__registry *r, sprig_bytes name);
/** Rows in name order: the count, and row `i` (NULL past the end). */
size_t sprig__registry_count(sprig__registry *r);
const sprig__route *sprig__registry_at(sprig__registry *r, size_t i);
void sprig__registry_free(sprig__registry *r);

/** The built-in rows and their handlers (dispatch.c, pubsub_srv.c). */
typedef struct sprig__builtin {
    const sprig__api *api;
    sprig__handler handler;
} sprig__builtin;
extern const sprig__builtin sprig__builtins[];
extern const size_t sprig__builtins_n;

struct sprig__job {
    struct sprig__job *next;
    sprig__session *sess;
    const sprig__route *route;
    uint32_t id;
    bool authorised; /* the loop thread ran the authorise step already */
    bool lane;       /* a write holding its session's write lane */
    sprig_buf in;    /* the request payload (a copy) */
    sprig_buf out;   /* the answer frame */
    /* Set by a handler on a worker: run on the loop thread before the
     * answer is sent (it may replace job->out); `attach` is its data. */
    void (*on_loop)(sprig__job *job);
    void *attach;
    /* Set for a job that is not a request: the pool runs it instead, and
     * it frees the job itself (nothing goes back to the loop). */
    void (*task)(sprig__job *job);
    /* The identity the request runs as (a reference; NULL: none). */
    sprig_identity *who;
    /* The request writes to "_admin": the records change when it is done. */
    bool admin_write;
    uint64_t queued_ns; /* when it joined the pool's queue (pool.c) */
};

/** A request on its way through the path (request.c). */
struct sprig__call {
    sprig_server *srv;
    sprig__session *sess;
    const sprig__route *route;
    uint32_t id;
    bool on_loop;        /* running on the loop thread */
    sprig__job *job;     /* on a worker: the job (handlers may set on_loop) */
    sprig_identity *who; /* the session's identity (borrowed), or NULL */
    bool admin_write;    /* set by the authorise step */
};

/** Run the request path for `payload` (decode, authorise unless
 *  `authorised`, the handler, encode) and put the answer frame -- a
 *  response or an error -- in `out` (empty only when out of memory).
 *  Returns SPRIG__EMISS, with nothing answered, when a handler on the loop
 *  thread asks for a worker (the authorise step, if reached, was passed:
 *  *authorised says so); otherwise 0. */
int sprig__request_run(sprig__call *c, sprig_bytes payload, bool *authorised,
                       sprig_buf *out);
/** Encode the answer to `c`: its response `resp` when rc is 0, else the
 *  error with the detail recorded in this thread (for rows marked
 *  resp_on_error, `resp` as its detail).  Any thread. */
void sprig__request_answer(const sprig__call *c, int rc, const void *resp,
                           sprig_buf *out);
/** The one builder of error frames: frame [2, id, code, message, detail]
 *  into `out` (emptied first); `detail` a raw value or empty. */
void sprig__error_frame(sprig_buf *out, uint32_t id, int code, const char *msg,
                        sprig_bytes detail);

/** Resource names of a decoded request (resource.c): how many the row's
 *  spec forms for `req` (one, or one per element of a list part), and the
 *  canonical string of the i-th into `out` (emptied first).  Loop-only
 *  parts ("subscriber.db") need `sess` and the loop thread.
 *  Errors: SPRIG_ENOTFOUND (no such subscriber), SPRIG_EINVAL (a spec
 *  naming no field of the row), SPRIG_ENOMEM. */
int sprig__resource_count(const sprig__api *api, const void *req, size_t *n);
int sprig__resource_name(const sprig__api *api, const void *req,
                         sprig__session *sess, size_t i, sprig_buf *out);
/** The action the i-th resource is checked for: the row's action, but
 *  for a transaction's operation that operation's own
 *  ("document.insert", ...: sprig__op_action).  Borrowed, static. */
const char *sprig__resource_action(const sprig__api *api, const void *req,
                                   size_t i);
/** Check a row's spec: every part its form needs names a request field
 *  (or is "$name"); session-state parts only on loop rows.  SPRIG_EINVAL. */
int sprig__resource_check(const sprig__api *api);
/** Append one segment in canonical form ('.' first unless `first`). */
int sprig__resource_segment(sprig_buf *out, sprig_bytes seg, bool first);
/** The row's resource as a pattern, a C string in `out`: literal segments
 *  as they are, request parts as "{field}" ("sprig.db.{db}.keyvalue.{ns}.
 *  {key}"); a custom row's is its resource itself. */
int sprig__resource_pattern(const sprig__api *api, sprig_buf *out);
/** May the request's caller run `action` on `resource` (the authorise
 *  step's question: the authorise callback, or the identity's
 *  permissions; open access allows all)?  0 or the refusal. */
int sprig__request_allowed(sprig__call *c, const char *action,
                           const char *resource);
/** The handler of server.apis (api_srv.c). */
int sprig__server_apis(sprig__call *c, void *req, void *resp);

typedef struct sprig__pool {
    pthread_t *threads;
    unsigned n;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sprig__job *head, *tail;
    bool stop;
    unsigned idle;      /* workers waiting for a job */
    unsigned signalled; /* of them, woken and not running yet */
    unsigned spread;    /* awake workers a request wakes up to: the CPUs */
    void (*run)(sprig__job *job, void *udata);
    void *udata;
} sprig__pool;

/* A queued job older than this wakes another worker (pool.c). */
#define SPRIG__POOL_LATE_NS 1000000u
/* The rescue timer's period, in ms (server.c). */
#define SPRIG__POOL_RESCUE_MS 1

int sprig__pool_start(sprig__pool *p, unsigned n,
                      void (*run)(sprig__job *, void *), void *udata);
/** Queue a task (any thread): a sleeping worker is woken if there is one. */
void sprig__pool_push(sprig__pool *p, sprig__job *job);
/** Queue a request job (the loop thread): a worker is woken only while
 *  fewer than `spread` are awake, or when the queue's head is late.
 *  Returns true when sleeping workers were left: the caller then keeps
 *  the rescue timer running (sprig__pool_rescue). */
bool sprig__pool_push_request(sprig__pool *p, sprig__job *job);
/** The rescue timer's check: wake a worker when the queue's head is late;
 *  true while jobs wait and sleeping workers are left (run it again). */
bool sprig__pool_rescue(sprig__pool *p);
/** A reference on a custom request's context (api_srv.c): it ends once
 *  answered and every reference is dropped.  Any thread. */
void sprig__api_ctx_hold(sprig_api_ctx *ctx);
void sprig__api_ctx_drop(sprig_api_ctx *ctx);
/** Keep the rescue timer running (the loop thread; server.c). */
void sprig__pool_watch(sprig_server *srv);
/** CLOCK_MONOTONIC in nanoseconds. */
uint64_t sprig__pool_now_ns(void);
/** Finish queued jobs, then join the threads. */
void sprig__pool_stop(sprig__pool *p);

/* The first member of a session and of the server: a connection's user
 * pointer is the server until on_open gives it a session. */
#define SPRIG__TAG_SESSION 0x53455353u
#define SPRIG__TAG_SERVER 0x53525652u

/* Sessions (identities) one connection may have at once. */
#define SPRIG__IDENTS 8
typedef struct sprig__ident {
    uint64_t id; /* 0: a free slot */
    sprig_identity *who;
} sprig__ident;

struct sprig__session {
    uint32_t tag;
    sprig_server *srv;
    sprig_server_client info; /* set at open, then read-only (any thread) */
    char peer[64];
    char transport[16]; /* the connection's scheme, from the transport */
    sprig__conn *conn;  /* NULL once the connection closed */
    uint32_t inflight;
    int refs;                      /* the connection + one per job in flight */
    sprig__srv_sub *subs;          /* remote subscribers (pubsub_srv.c) */
    struct sprig__srv_feed *feeds; /* changes feeds (changes_srv.c) */
    /* The write lane (session.c): while a write of this session runs on a
     * worker, its later writes wait here, in order, as received. */
    bool lane_busy;
    uint32_t n_parked;
    struct sprig__parked *parked, *parked_tail;
    sprig__session *prev, *next;
    /* authentication (auth_srv.c; loop thread) */
    sprig__ident idents[SPRIG__IDENTS];
    uint64_t default_ident; /* the session of requests naming none; 0 */
    bool authenticated;     /* ever: the auth timeout no longer applies */
    uint64_t opened_ms;     /* uv_now at open */
    char addr[64];          /* the peer's address without its port */
    /* the API platform (plat_srv.c; loop thread) */
    bool accepted;    /* the connected hook let it in */
    uint64_t wall_ms; /* when it opened, ms since 1970 */
    void *user_data;  /* set by the connected hook, then read-only */
    /* requests received (loop thread; server.clients, issue 15) */
    uint64_t requests;
};

typedef enum { SRV_NEW, SRV_RUNNING, SRV_STOPPING, SRV_STOPPED } srv_state;

/* Open database handles, shared by the workers and the loop thread: the
 * loop answers reads only from handles found here, so it never waits on
 * the storage lock (held while a database is created, or opened and its
 * changed view indexes rebuilt).  `lock` is never held during I/O. */
#define SPRIG__DB_CACHE 16
#define SPRIG__EMISS (-1001) /* internal: not in the cache */
/* internal: a handler submitted its request's command; the answer is
 * encoded when the command completes (submit.c), not by the path */
#define SPRIG__EASYNC (-1100) /* apart from the engine's internal codes */
typedef struct sprig__cached_db {
    char name[SPRIG_NAME_MAX + 1];
    sprig_db *db;
    int refs; /* requests using it now */
} sprig__cached_db;
typedef struct sprig__db_cache {
    pthread_mutex_t lock;
    size_t n, n_zombies;
    sprig__cached_db items[SPRIG__DB_CACHE];
    /* handles of deleted databases taken out while still in use: closed
     * by their last release */
    sprig__cached_db zombies[SPRIG__DB_CACHE];
} sprig__db_cache;

/** A handle on database `name` for one request.  From the cache when it
 *  is there; otherwise, with `may_open`, opened (and cached when there is
 *  room): release it with sprig__db_release().  Without `may_open`, a
 *  miss is SPRIG__EMISS (the caller hands the request to a worker).  A
 *  cached handle of a deleted database is dropped and reopened. */
int sprig__db_acquire(sprig_server *srv, const char *name, bool may_open,
                      sprig_db **out);
/** Let go of a handle from sprig__db_acquire(); `on_loop` says the caller
 *  is the loop thread (a close it would cause runs on a worker). */
void sprig__db_release(sprig_server *srv, sprig_db *db, bool on_loop);
/** Close every cached handle (before the storage closes). */
void sprig__db_cache_clear(sprig_server *srv);

struct sprig_server {
    uint32_t tag;
    sprig_storage *st;
    bool owns_st; /* sprig_server_new opened it; new_for borrows it */
    sprig__registry reg;
    uint64_t next_session_id;     /* loop thread */
    _Atomic uint64_t next_sub_id; /* subscriber numbers (any thread) */
    atomic_ulong pubsub_pauses;   /* pushes paused on a full connection */
    sprig__db_cache dbs;
    sprig_server_options opts;
    char *ws_host;
    int ws_port;
    char *quic_host; /* QUIC listener (issue 11); NULL: none */
    int quic_port;
    uv_loop_t loop;
    bool loop_ready;
    uv_async_t done_async, stop_async;
    uv_timer_t grace_timer;
    uv_timer_t rescue_timer; /* late pool jobs wake workers (pool.c) */
    bool sessions_closed;    /* shutdown told every client (loop thread) */
    sprig__listener *ws;
    sprig__listener *quic; /* under `lock`, like ws */
    sprig__pool pool;
    pthread_t thread;
    bool threaded;
    pthread_mutex_t lock; /* guards state, done queue, grace_ms */
    pthread_cond_t cond;
    srv_state state;
    int start_rc;
    char start_msg[256];
    int grace_ms;
    sprig__job *done_head, *done_tail;
    /* commands submitted and not completed yet (submit.c); `sub_cond`
     * (with `lock`) tells teardown when the last one completed, and
     * `done_closed` that done_async is closed (teardown answers them) */
    unsigned submits;
    pthread_cond_t sub_cond;
    bool done_closed;
    sprig__session *sessions;
    unsigned jobs_in_flight; /* loop thread */
    /* access control (auth_srv.c) */
    sprig_auth *auth;
    bool owns_auth;
    _Atomic uint64_t next_ident; /* session numbers (any thread) */
    uv_timer_t auth_timer;       /* closes connections that never log in */
    bool auth_timer_on;
    /* the API platform (issue 12: api_srv.c, plat_srv.c) */
    struct custom_row *custom_rows; /* custom rows' program side (lock) */
    sprig_server_hooks hooks;
    pthread_t loop_tid; /* the loop thread, once set up */
    bool loop_tid_set;
    _Atomic uint64_t push_queued, push_sent, push_unmatched;
    uint64_t started_ns; /* uv_hrtime() at setup, for /health's uptime */
};

/* api_srv.c, plat_srv.c: the API platform (issue 12) */
/** A custom API or push name is authority.name, not Sprig's own
 *  (SPRIG_EINVAL naming `what`). */
int sprig__api_name_check(const char *name, const char *what);
/** Free the custom rows' program side (sprig_server_free). */
void sprig__api_rows_free(sprig_server *srv);
/** Loop thread: a session opened and was admitted: the connected hook;
 *  false when it refused (the connection is being closed). */
bool sprig__plat_connected(sprig__session *s);
/** Loop thread: a session's connection closed: session_ended for each
 *  session still open, then disconnected. */
void sprig__plat_disconnected(sprig__session *s);
/** Loop thread: session `id` of `who` was made / ended on `s`. */
void sprig__plat_authenticated(sprig__session *s, uint64_t id,
                               sprig_identity *who);
void sprig__plat_session_ended(sprig__session *s, uint64_t id,
                               sprig_identity *who);
/** A job of the done queue with no session (a push, a listing, an
 *  adoption): run it on the loop thread (or in teardown); it frees
 *  itself. */
void sprig__plat_loop_job(sprig__job *job);
/** Teardown, before the workers are joined: answer the listings still
 *  queued (a worker may be waiting for one). */
void sprig__plat_teardown(sprig_server *srv);

/* pubsub_srv.c: the queued bytes past which a connection's pushes
 * (PubSub messages, changes feeds) pause -- 8 MiB, or half the
 * connection's send-queue bound if lower, so a paused stream never gets
 * its client disconnected.  Loop thread. */
size_t sprig__push_high_water(const sprig__session *sess);

/* session.c (loop thread) */
void sprig__session_on_open(sprig__conn *c, void *udata);
void sprig__session_on_message(sprig__conn *c, const uint8_t *data, size_t len,
                               void *udata);
void sprig__session_on_close(sprig__conn *c, int code, const char *reason,
                             void *udata);
/** A job came back from a worker: answer and release it. */
void sprig__session_job_done(sprig__job *job);
/** Close every session's connection (1001). */
void sprig__session_close_all(sprig_server *srv);

/* http_srv.c: the pages of plain HTTP GETs (the web console, /health);
 * a sprig__http_get_fn with the server as `udata` (loop thread). */
int sprig__server_http_get(void *udata, const sprig__http_get_req *req,
                           sprig__http_reply *rep);

/* auth_srv.c */
/** The handlers of the auth.* rows. */
int sprig__auth_password(sprig__call *c, void *req, void *resp);
int sprig__auth_challenge(sprig__call *c, void *req, void *resp);
int sprig__auth_token(sprig__call *c, void *req, void *resp);
int sprig__auth_assume(sprig__call *c, void *req, void *resp);
int sprig__auth_logout(sprig__call *c, void *req, void *resp);
/* admin_srv.c */
/** The handler of every admin.* row (a worker): the change its row and
 *  fields name, made by the permission engine. */
int sprig__admin_change(sprig__call *c, void *req, void *resp);

/** Loop thread: admit a new session (per-address limit); false: its
 *  connection was closed. */
bool sprig__auth_admit(sprig__session *s);
/** Loop thread: the identity a request of frame session `id` (has: the
 *  frame named one) runs as; false (nothing set) when the connection has
 *  no such session. */
bool sprig__auth_who(sprig__session *s, bool has, uint64_t id,
                     sprig_identity **who);
/** Loop thread: release every identity of a closed session. */
void sprig__auth_session_closed(sprig__session *s);
/** Server set-up (loop thread) and free: the permission engine and the
 *  timer of unauthenticated connections. */
int sprig__auth_server_open(sprig_server *srv);
void sprig__auth_timer_start(sprig_server *srv);
void sprig__auth_timer_close(sprig_server *srv);
void sprig__auth_server_free(sprig_server *srv);

/* pubsub_srv.c */
/** Loop thread: the connection may have drained (the transport said so,
 *  or the session sent something): resume paused subscribers once its
 *  queue is down to half the high-water mark.  Cheap without any. */
void sprig__pubsub_resume(sprig__session *s);
/** Loop thread: the connection closed: drop every subscriber of the
 *  session (closed on a worker). */
void sprig__pubsub_close_all(sprig__session *s);
/** Loop thread: the database name subscriber `id` of `s` was made on, or
 *  NULL (SPRIG_ENOTFOUND recorded). */
const char *sprig__pubsub_sub_db(sprig__session *s, uint64_t id);
void sprig__session_on_writable(sprig__conn *c, void *udata);
/* the handlers of the subscriber rows */
/* changes_srv.c: the changes feeds of remote clients (issue 15) */
/** Loop thread: as sprig__pubsub_resume, for paused feeds. */
void sprig__changes_resume(sprig__session *s);
/** Loop thread: the connection closed: drop the session's feeds. */
void sprig__changes_close_all(sprig__session *s);
int sprig__changes_subscribe(sprig__call *c, void *req, void *resp);
int sprig__changes_unsubscribe(sprig__call *c, void *req, void *resp);
/* clients_srv.c: the server.clients row (loop thread). */
int sprig__server_clients(sprig__call *c, void *req, void *resp);

int sprig__pubsub_new(sprig__call *c, void *req, void *resp);
int sprig__pubsub_free(sprig__call *c, void *req, void *resp);
int sprig__pubsub_subscribe(sprig__call *c, void *req, void *resp);
int sprig__pubsub_unsubscribe(sprig__call *c, void *req, void *resp);

/* submit.c: the handlers of the SUBMIT rows (db.apply, kv.set,
 * kv.increment, kv.delete).  Each builds a command from the request it takes
 * over and submits it with the handle's `submit` op (SPRIG__EASYNC: the answer
 * comes from the engine's thread through sprig__job_finish); on the loop
 * thread without a cached handle, SPRIG__EMISS (a worker opens it and
 * submits).  Where the handle has no `submit`, or the request needs what
 * the server cannot put in a command (a relative expiry: the storage's
 * clock), it runs the synchronous API on a worker. */
int sprig__submit_apply(sprig__call *c, void *req, void *resp);
int sprig__submit_kv_set(sprig__call *c, void *req, void *resp);
int sprig__submit_kv_incr(sprig__call *c, void *req, void *resp);
int sprig__submit_kv_delete(sprig__call *c, void *req, void *resp);
/** Teardown: wait until every submitted command has completed. */
void sprig__submit_drain(sprig_server *srv);

/* dispatch.c (worker threads) */
/** Run one request job's path into job->out and hand it back. */
void sprig__dispatch(sprig__job *job, void *udata);
/** Hand a finished request job back to the loop thread (the done queue
 *  and done_async; once done_async is closed, teardown answers it).  Any
 *  thread. */
void sprig__job_finish(sprig_server *srv, sprig__job *job);
/** Queue a task job (job->task set) on the workers; when the pool is
 *  stopped already (shutdown), run it on the calling thread. */
void sprig__run_task(sprig_server *srv, sprig__job *job);

/* ---- objects a session owns and a worker closes (dispatch.c) ----------
 * A remote client's PubSub subscriber (pubsub_srv.c) and changes feed
 * (changes_srv.c) each hold a database handle, whose close may wait on
 * the storage lock: the loop thread never closes them itself.  Each
 * starts with this header, made with its release job up front so that
 * letting go of it cannot fail. */
typedef struct sprig__owned {
    sprig_server *srv;
    sprig__job *release;      /* the task that closes it */
    void (*close)(void *obj); /* close everything and free `obj` */
} sprig__owned;

/** A zeroed object of `size` bytes (>= sizeof sprig__owned) that starts
 *  with a sprig__owned for server `srv`, closed by `close`, and its
 *  release job; NULL when out of memory (SPRIG_ENOMEM recorded).  Any
 *  thread. */
void *sprig__owned_new(size_t size, sprig_server *srv,
                       void (*close)(void *obj));
/** Loop thread: hand `o` to a worker that runs o->close (which frees it);
 *  during shutdown it runs here (sprig__run_task). */
void sprig__owned_release(sprig__owned *o);
/** An object never handed to the loop (its handler failed): o->close
 *  here, and its release job freed.  Any thread. */
void sprig__owned_discard(sprig__owned *o);

#endif
