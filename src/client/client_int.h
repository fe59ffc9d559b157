/*
 * client_int.h -- private interface of src/client.
 *
 *   client.c  the connection: a private loop thread, the outbox of calls,
 *             the table of calls waiting for answers, reconnecting
 *   remote.c  the remote `sprig_storage` and `sprig_db` operations tables,
 *             each operation one call of an API row
 *   cluster_client.c  URL lists, following the leader named by
 *             SPRIG_ENOTLEADER, request ids on writes (issue 18)
 *
 * A call is made on the caller's thread: it encodes the request frame,
 * queues it, wakes the loop, and waits on its own condition variable until
 * the loop thread hands it the answer (or the connection fails, or the
 * request times out).  Decoding the answer happens back on the caller's
 * thread.  `lock` guards the outbox, the waiting calls and the connection
 * state; the transport connection itself is touched only on the loop.
 */
#ifndef SPRIG_CLIENT_INT_H
#define SPRIG_CLIENT_INT_H

#include "core/core.h"
#include "proto/api.h"
#include "proto/envelope.h"
#include "sprig/client.h"
#include "transport/transport.h"

#include <pthread.h>
#include <uv.h>

typedef struct sprig__call {
    struct sprig__call *next;
    uint32_t id;
    sprig_buf frame; /* the request, encoded */
    pthread_cond_t cond;
    bool done;
    int rc;
    sprig_buf answer; /* response payload, or error detail */
    char msg[512];
    /* Internal calls (re-authentication): run on the loop thread, lock
     * held, when the call ends, instead of waking a waiting thread. */
    void (*on_done)(struct sprig_client *c, struct sprig__call *call);
    struct sprig_client *owner;
} sprig__call;

typedef enum { CL_DOWN, CL_CONNECTING, CL_OPEN } cl_state;

typedef struct remote_storage {
    sprig_storage base;
    struct sprig_client *client;
} remote_storage;

struct sprig_client {
    char *url;   /* the node in use: urls[cur] (lock) */
    char **urls; /* the nodes (cluster_client.c; lock) */
    size_t n_urls, cur;
    size_t tries;          /* failed connection attempts since the last open */
    bool switching;        /* following a leader: close the connection once
                              its calls are answered (lock) */
    uint8_t rid_client[8]; /* request ids (cluster_client.c) */
    uint64_t rid_seq;
    sprig_client_options opts;
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t state_cond;
    cl_state state;
    bool closing;
    bool connected_once;
    int connect_rc;
    char connect_msg[512];
    sprig__conn *conn;    /* loop thread */
    sprig_conn_info info; /* of the open connection (lock) */
    sprig__call *outbox, *outbox_tail;
    sprig__call *waiting; /* sent, not answered */
    uint32_t next_id;
    uint64_t generation;          /* connections opened so far */
    struct remote_sub *subs;      /* subscribers (lock) */
    struct remote_watch *watches; /* changes feeds' wake-ups (lock) */
    remote_storage storage;
    /* authentication (auth_client.c; lock): the credentials of the last
     * successful login, replayed after each reconnect before the outbox
     * is sent (`authing` meanwhile) */
    int auth_kind; /* 0 none, 1 password, 2 token */
    char *auth_name, *auth_secret;
    bool authing;
    int auth_step; /* 1: the challenge is due, 2: the session */
    sprig__call auth_call;
    struct sprig__pushes *pushes; /* custom pushes (push_client.c) */
};

/* ---- clusters (cluster_client.c) ------------------------------------------
 */

/** Split a comma-separated URL list into `*urls` (owned strings, free with
 *  sprig__client_urls_free); an element without a scheme takes the first
 *  element's.  SPRIG_EINVAL (empty element, unknown scheme), SPRIG_ENOMEM. */
int sprig__client_urls_parse(const char *list, char ***urls, size_t *n);
void sprig__client_urls_free(char **urls, size_t n);
/** The URL named by an ENOTLEADER message ("... leader is node N at
 *  URL"), copied into `url`; false when the message names none usable. */
bool sprig__leader_hint(const char *msg, char *url, size_t cap);
/** Lock held: make `url` the client's node (added to the list when new)
 *  and close the current connection once its calls are answered.
 *  SPRIG_ENOMEM. */
int sprig__client_follow(struct sprig_client *c, const char *url);
/** Lock held: the next node of the list becomes the one in use. */
void sprig__client_next_node(struct sprig_client *c);
/** Draw the client's id; the next write's request id (locks itself). */
void sprig__client_rid_init(struct sprig_client *c);
void sprig__client_rid_next(struct sprig_client *c, uint8_t rid[16]);

/* ---- custom pushes (push_client.c) --------------------------------------- */

/** Make and free the client's push state (callbacks, queue, eventfd).
 *  SPRIG_ENOMEM, SPRIG_EIO. */
int sprig__client_pushes_new(struct sprig_client *c);
void sprig__client_pushes_free(struct sprig_client *c);
/** Loop thread, client lock NOT held: a push that is not PubSub's. */
void sprig__client_push_custom(struct sprig_client *c, sprig_bytes api,
                               sprig_bytes payload);

/* ---- authentication (auth_client.c) -------------------------------------- */

/** Loop thread, lock held, the connection just opened: start logging in
 *  again with the stored credentials.  true: started (the outbox waits
 *  for it); false: nothing to do. */
bool sprig__client_reauth_begin(struct sprig_client *c);
/** Free the stored credentials (wiped first). */
void sprig__client_auth_free(struct sprig_client *c);
/** Send the outbox (lock held, connection open). */
void sprig__client_flush(struct sprig_client *c);
/** Fail every call of a list (lock held). */
void sprig__client_fail_list(sprig__call **list, int rc, const char *msg);

/* ---- remote subscribers (subscriber.c) ----------------------------------- */

typedef struct remote_sub remote_sub;

/** A "pubsub.message" push arrived (loop thread, client lock held). */
void sprig__client_push_message(struct sprig_client *c, sprig_bytes payload);
/** The connection of generation `gen` closed (client lock held): its
 *  subscribers can receive nothing more. */
void sprig__client_subs_closed(struct sprig_client *c);

/* ---- changes feeds (changes_remote.c) ------------------------------------ */

typedef struct remote_watch remote_watch;
/** A "db.changes" push arrived (loop thread, client lock held). */
void sprig__client_push_changes(struct sprig_client *c, sprig_bytes payload);
/** The connection closed (client lock held): wake every watch once. */
void sprig__client_watches_closed(struct sprig_client *c);
/** The db ops `watch` / `unwatch` of a remote handle (core.h). */
int sprig__r_watch(sprig_db *db, int *fd, void **token);
void sprig__r_unwatch(sprig_db *db, void *token);

/* ---- remote operations beyond documents (remote_more.c, subscriber.c) --- */

/** The database name and client behind a remote handle. */
typedef struct remote_db {
    sprig_db base;
    struct sprig_client *client;
    char name[SPRIG_NAME_MAX + 1];
} remote_db;

int sprig__r_kv_set(sprig_db *db, const char *ns, const char *key,
                    const sprig_value *v, const sprig_kv_set_opts *so,
                    sprig_kv_status *status, sprig_value *previous);
int sprig__r_kv_get(sprig_db *db, const char *ns, const char *key,
                    bool and_delete, sprig_value *out);
int sprig__r_kv_incr(sprig_db *db, const char *ns, const char *key,
                     const sprig_value *amount, bool decrement, bool saturating,
                     sprig_value *out);
int sprig__r_kv_delete(sprig_db *db, const char *ns, const char *key,
                       sprig_kv_status *status);
int sprig__r_kv_list(sprig_db *db, const char *ns, const char *prefix,
                     const char *after, uint32_t limit,
                     sprig_kv_key_list **out);
int sprig__r_view_query(sprig_db *db, const sprig_view_query *q, bool with_docs,
                        sprig_mapping_list **out);
int sprig__r_view_reduce(sprig_db *db, const sprig_view_query *q,
                         sprig_buf *out);
int sprig__r_view_reduce_grouped(sprig_db *db, const sprig_view_query *q,
                                 sprig_mapping_list **out);
int sprig__r_view_delete_docs(sprig_db *db, const sprig_view_query *q,
                              uint64_t *deleted);
int sprig__r_publish(sprig_db *db, const sprig_bytes *topics, size_t n,
                     sprig_bytes payload);
int sprig__r_subscriber_new(sprig_db *db, sprig_subscriber **out);

/** Does row `api` carry a secret (a password in the request, a token
 *  secret in the answer)?  Its buffers are wiped (sprig__wipe_buf). */
bool sprig__api_secret(const sprig__api *api);
/** Zero the whole of `b`'s memory, then free it. */
void sprig__wipe_buf(sprig_buf *b);
/** The client behind a server's storage (sprig_client_storage(), or one
 *  that owns its client), or NULL for any other storage. */
struct sprig_client *sprig__client_of(sprig_storage *st);
/**
 * Run one request of row `api`: encode `req`, send, wait, decode the
 * answer into `resp` (zeroed by the caller; release it with
 * sprig__api_free either way).  Errors: the server's code and detail,
 * SPRIG_ECLOSED, SPRIG_ECONNECT, SPRIG_ETIMEDOUT, SPRIG_EPROTO.
 */
int sprig__client_call(struct sprig_client *c, const sprig__api *api,
                       const void *req, void *resp);

/** remote.c: the operations tables. */
extern const sprig_storage_ops sprig__remote_storage_ops;

#endif
