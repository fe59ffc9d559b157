/*
 * server_int.h -- private interface of src/server.
 *
 *   server.c    lifecycle: options, the loop thread, the listener, shutdown
 *   pool.c      the worker threads that run database work
 *   session.c   one session per connection: frames in, jobs out, answers
 *               back; limits on in-flight requests
 *   dispatch.c  one handler per API row, calling the public API on the
 *               server's own local storage
 *
 * Threads.  Everything in a session, and the session list, belongs to the
 * loop thread.  A request becomes a job: its payload is copied, a worker
 * decodes it, runs the handler against the local storage and encodes the
 * answer frame; the job then goes back to the loop thread (a done queue and
 * a uv_async_t) which sends it if the connection is still open.  A session
 * is freed when its connection has closed and no job of it is in flight
 * (`refs`).  Workers never touch a session's fields.
 */
#ifndef SPRIG_SERVER_INT_H
#define SPRIG_SERVER_INT_H

#include "core/core.h"
#include "proto/api.h"
#include "proto/envelope.h"
#include "sprig/server.h"
#include "transport/transport.h"

#include <pthread.h>
#include <uv.h>

typedef struct sprig__session sprig__session;
typedef struct sprig__srv_sub sprig__srv_sub;

typedef struct sprig__job {
    struct sprig__job *next;
    sprig__session *sess;
    const sprig__api *api;
    uint32_t id;
    sprig_buf in;  /* the request payload (a copy) */
    sprig_buf out; /* the answer frame */
} sprig__job;

typedef struct sprig__pool {
    pthread_t *threads;
    unsigned n;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sprig__job *head, *tail;
    bool stop;
    void (*run)(sprig__job *job, void *udata);
    void *udata;
} sprig__pool;

int sprig__pool_start(sprig__pool *p, unsigned n,
                      void (*run)(sprig__job *, void *), void *udata);
void sprig__pool_push(sprig__pool *p, sprig__job *job);
/** Finish queued jobs, then join the threads. */
void sprig__pool_stop(sprig__pool *p);

/* The first member of a session and of the server: a connection's user
 * pointer is the server until on_open gives it a session. */
#define SPRIG__TAG_SESSION 0x53455353u
#define SPRIG__TAG_SERVER 0x53525652u

struct sprig__session {
    uint32_t tag;
    sprig_server *srv;
    sprig__conn *conn; /* NULL once the connection closed */
    uint32_t inflight;
    int refs;             /* the connection + one per job in flight */
    sprig__srv_sub *subs; /* remote subscribers (pubsub_srv.c) */
    uint64_t next_sub_id;
    sprig__session *prev, *next;
};

typedef enum { SRV_NEW, SRV_RUNNING, SRV_STOPPING, SRV_STOPPED } srv_state;

/* Open database handles, shared by the workers and the loop thread: the
 * loop answers reads only from handles found here, so it never waits on
 * the storage lock (held while a database is created, or opened and its
 * changed view indexes rebuilt).  `lock` is never held during I/O. */
#define SPRIG__DB_CACHE 16
#define SPRIG__EMISS (-1001) /* internal: not in the cache */
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
void sprig__db_release(sprig_server *srv, sprig_db *db);
/** Close every cached handle (before the storage closes). */
void sprig__db_cache_clear(sprig_server *srv);

struct sprig_server {
    uint32_t tag;
    sprig_storage *st;
    sprig__db_cache dbs;
    sprig_server_options opts;
    char *ws_host;
    int ws_port;
    uv_loop_t loop;
    bool loop_ready;
    uv_async_t done_async, stop_async;
    uv_timer_t grace_timer;
    bool sessions_closed; /* shutdown told every client (loop thread) */
    sprig__listener *ws;
    sprig__pool pool;
    /* Key-value writes that commit without waiting for the disk (lazy
     * persistence, durability none, memory only) go to a lane of their
     * own, one thread: they only take turns at the database's writer, and
     * a crowd of workers doing so on few cores costs more in wake-ups and
     * lock hand-offs than the writes themselves.  Writes that wait for the
     * disk keep the many workers, whose waits group commit shares. */
    sprig__pool lane;
    bool kv_lane;
    pthread_t thread;
    bool threaded;
    pthread_mutex_t lock; /* guards state, done queue, grace_ms */
    pthread_cond_t cond;
    srv_state state;
    int start_rc;
    char start_msg[256];
    int grace_ms;
    sprig__job *done_head, *done_tail;
    sprig__session *sessions;
    unsigned jobs_in_flight; /* loop thread */
};

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

/* pubsub_srv.c (loop thread) */
/** Is `api` a subscriber request, answered on the loop thread? */
bool sprig__pubsub_handles(const sprig__api *api);
/** Decode, run and answer a subscriber request. */
void sprig__pubsub_request(sprig__session *s, const sprig__api *api,
                           uint32_t id, sprig_bytes payload);
/** The connection can take more: resume paused subscribers. */
void sprig__pubsub_resume(sprig__session *s);
/** The connection closed: drop every subscriber of the session. */
void sprig__pubsub_close_all(sprig__session *s);
void sprig__session_on_writable(sprig__conn *c, void *udata);

/* dispatch.c (worker threads) */
/** Decode, run and encode one request into job->out. */
void sprig__dispatch(sprig__job *job, void *udata);
/** Loop thread: if `api` is a read answered without a worker (db.get, and
 *  kv.get without and_delete), decode, run and encode the answer to
 *  request `id` into `out` and return true; else false (nothing done). */
bool sprig__dispatch_inline(sprig_server *srv, const sprig__api *api,
                            uint32_t id, sprig_bytes payload, sprig_buf *out);

#endif
