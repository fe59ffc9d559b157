/*
 * client_int.h -- private interface of src/client.
 *
 *   client.c  the connection: a private loop thread, the outbox of calls,
 *             the table of calls waiting for answers, reconnecting
 *   remote.c  the remote `sprig_storage` and `sprig_db` operations tables,
 *             each operation one call of an API row
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
} sprig__call;

typedef enum { CL_DOWN, CL_CONNECTING, CL_OPEN } cl_state;

typedef struct remote_storage {
    sprig_storage base;
    struct sprig_client *client;
} remote_storage;

struct sprig_client {
    char *url;
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
    sprig__conn *conn; /* loop thread */
    sprig__call *outbox, *outbox_tail;
    sprig__call *waiting; /* sent, not answered */
    uint32_t next_id;
    remote_storage storage;
};

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
