/*
 * push_client.c -- custom APIs on the client (src/client; issue 12):
 * sprig_client_call(), and the pushes that are not PubSub's.
 *
 * A push arrives on the client's loop thread (client.c's on_message, the
 * client lock not held).  Its payload is {"data": bin}.  It goes to the
 * callback registered for its api name, else to the catch-all callback,
 * else into a bounded queue that sprig_client_push_next() reads and whose
 * eventfd is readable while it holds anything.  Nothing is dropped
 * without being counted: a full queue drops its oldest push (`dropped`),
 * a malformed payload is counted (`malformed`).  Callbacks run with
 * `cb_lock` held, so removing one waits for a call in progress; the queue
 * and the table of callbacks are under `lock`.
 */
#include "client/client_int.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct handler {
    struct handler *next;
    sprig_client_push_fn cb;
    void *udata;
    char api[]; /* "" with catch_all */
} handler;

typedef struct queued {
    struct queued *next;
    sprig_client_push push;
} queued;

typedef struct sprig__pushes {
    pthread_mutex_t lock, cb_lock;
    pthread_cond_t cond;
    handler *handlers;
    handler *catch_all;
    queued *head, *tail;
    size_t n, max;
    int efd;
    sprig_client_push_counts st;
} sprig__pushes;

int
sprig__client_pushes_new(sprig_client *c)
{
    sprig__pushes *p = sprig__calloc(1, sizeof *p);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        sprig__free(p);
        return sprig__err(SPRIG_EIO, "eventfd: %s", strerror(errno));
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->cb_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    p->max = c->opts.max_pushes ? c->opts.max_pushes : 4096;
    c->pushes = p;
    return SPRIG_OK;
}

void
sprig_client_push_free(sprig_client_push *p)
{
    if (p) {
        sprig__free(p->api);
        sprig_buf_clear(&p->data);
        sprig__free(p);
    }
}

void
sprig__client_pushes_free(sprig_client *c)
{
    sprig__pushes *p = c->pushes;
    if (!p) {
        return;
    }
    for (handler *h = p->handlers, *n; h; h = n) {
        n = h->next;
        sprig__free(h);
    }
    sprig__free(p->catch_all);
    for (queued *q = p->head, *n; q; q = n) {
        n = q->next;
        sprig__free(q->push.api);
        sprig_buf_clear(&q->push.data);
        sprig__free(q);
    }
    close(p->efd);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->cb_lock);
    pthread_cond_destroy(&p->cond);
    sprig__free(p);
    c->pushes = NULL;
}

/* ---- arrival (loop thread) ----------------------------------------------- */

/* The callback for `api` (lock held): its own, else the catch-all. */
static handler *
handler_of(sprig__pushes *p, sprig_bytes api)
{
    for (handler *h = p->handlers; h; h = h->next) {
        if (strlen(h->api) == api.len &&
            memcmp(h->api, api.data, api.len) == 0) {
            return h;
        }
    }
    return p->catch_all;
}

static void
efd_signal(sprig__pushes *p)
{
    uint64_t one = 1;
    ssize_t w = write(p->efd, &one, sizeof one);
    (void)w; /* a full counter is still readable */
}

/* Queue a push (lock held), dropping the oldest when full. */
static void
enqueue(sprig__pushes *p, queued *q)
{
    if (p->n >= p->max && p->head) {
        queued *old = p->head;
        p->head = old->next;
        p->tail = p->head ? p->tail : NULL;
        p->n--;
        p->st.dropped++;
        sprig__free(old->push.api);
        sprig_buf_clear(&old->push.data);
        sprig__free(old);
    }
    if (p->tail) {
        p->tail->next = q;
    } else {
        p->head = q;
    }
    p->tail = q;
    p->n++;
    p->st.queued++;
    efd_signal(p);
    pthread_cond_signal(&p->cond);
}

/* A queued copy of the push; NULL when out of memory. */
static queued *
copy_push(sprig_bytes api, sprig_bytes data)
{
    queued *q = sprig__calloc(1, sizeof *q);
    char *name = q ? sprig__malloc(api.len + 1) : NULL;
    if (!name || sprig_buf_append(&q->push.data, data.data, data.len)) {
        sprig__free(name);
        sprig__free(q);
        return NULL;
    }
    memcpy(name, api.data, api.len);
    name[api.len] = 0;
    q->push.api = name;
    return q;
}

/* Give the push to callback `h` (cb_lock held by the caller). */
static void
call_handler(sprig__pushes *p, sprig_client_push_fn cb, void *udata,
             sprig_bytes api, sprig_bytes data)
{
    char name[72];
    size_t n = api.len < sizeof name - 1 ? api.len : sizeof name - 1;
    memcpy(name, api.data, n);
    name[n] = 0;
    cb(udata, name, data);
    pthread_mutex_lock(&p->lock);
    p->st.delivered++;
    pthread_mutex_unlock(&p->lock);
}

void
sprig__client_push_custom(sprig_client *c, sprig_bytes api, sprig_bytes payload)
{
    sprig__pushes *p = c->pushes;
    sprig__custom_req r = {0};
    int rc = sprig__api_decode(payload, sprig__api_custom.req,
                               sprig__api_custom.n_req, &r);
    sprig_bytes data = r.has_data ? r.data : (sprig_bytes){NULL, 0};
    pthread_mutex_lock(&p->cb_lock);
    pthread_mutex_lock(&p->lock);
    p->st.received++;
    p->st.malformed += rc != 0;
    handler *h = rc ? NULL : handler_of(p, api);
    sprig_client_push_fn cb = h ? h->cb : NULL;
    void *udata = h ? h->udata : NULL;
    if (rc == 0 && !cb) {
        queued *q = copy_push(api, data);
        if (q) {
            enqueue(p, q);
        } else {
            p->st.dropped++; /* out of memory: counted */
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (cb) {
        call_handler(p, cb, udata, api, data);
    }
    pthread_mutex_unlock(&p->cb_lock);
    sprig__api_free(sprig__api_custom.req, sprig__api_custom.n_req, &r);
}

/* ---- the program's side (any thread) ------------------------------------- */

/* Set, replace or (cb NULL) remove the handler of `api` (lock held). */
static int
set_handler(sprig__pushes *p, const char *api, sprig_client_push_fn cb,
            void *udata)
{
    handler **at = &p->catch_all;
    if (api) {
        for (at = &p->handlers; *at && strcmp((*at)->api, api) != 0;
             at = &(*at)->next) {
        }
    }
    if (!cb) {
        handler *h = *at;
        if (h) {
            *at = api ? h->next : NULL;
            sprig__free(h);
        }
        return SPRIG_OK;
    }
    if (!*at) {
        size_t n = api ? strlen(api) + 1 : 1;
        *at = sprig__calloc(1, sizeof **at + n);
        if (!*at) {
            return sprig__err(SPRIG_ENOMEM, "out of memory");
        }
        memcpy((*at)->api, api ? api : "", n);
    }
    (*at)->cb = cb;
    (*at)->udata = udata;
    return SPRIG_OK;
}

int
sprig_client_on_push(sprig_client *c, const char *api, sprig_client_push_fn cb,
                     void *udata)
{
    if (!c) {
        return sprig__err(SPRIG_EINVAL, "on_push: client is NULL");
    }
    sprig__pushes *p = c->pushes;
    pthread_mutex_lock(&p->cb_lock); /* no callback runs meanwhile */
    pthread_mutex_lock(&p->lock);
    int rc = set_handler(p, api, cb, udata);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->cb_lock);
    return rc;
}

static void
deadline_in(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Take the oldest queued push (lock held, queue not empty). */
static sprig_client_push *
dequeue(sprig__pushes *p)
{
    queued *q = p->head;
    p->head = q->next;
    if (!p->head) {
        p->tail = NULL;
        uint64_t v;
        ssize_t r = read(p->efd, &v, sizeof v); /* not readable any more */
        (void)r;
    }
    p->n--;
    sprig_client_push *out = sprig__calloc(1, sizeof *out);
    if (out) {
        *out = q->push;
    } else {
        sprig__free(q->push.api);
        sprig_buf_clear(&q->push.data);
        p->st.dropped++;
    }
    sprig__free(q);
    return out;
}

int
sprig_client_push_next(sprig_client *c, unsigned timeout_ms,
                       sprig_client_push **out)
{
    if (!c || !out) {
        return sprig__err(SPRIG_EINVAL, "push_next: NULL argument");
    }
    *out = NULL;
    sprig__pushes *p = c->pushes;
    struct timespec ts;
    deadline_in(&ts, timeout_ms);
    pthread_mutex_lock(&p->lock);
    while (!p->head && timeout_ms &&
           pthread_cond_timedwait(&p->cond, &p->lock, &ts) != ETIMEDOUT) {
    }
    *out = p->head ? dequeue(p) : NULL;
    pthread_mutex_unlock(&p->lock);
    return *out ? SPRIG_OK
                : sprig__err(SPRIG_ETIMEDOUT, "no push within %u ms",
                             timeout_ms);
}

int
sprig_client_push_fd(sprig_client *c)
{
    return c ? c->pushes->efd : -1;
}

int
sprig_client_push_stats(sprig_client *c, sprig_client_push_counts *out)
{
    if (!c || !out) {
        return sprig__err(SPRIG_EINVAL, "push_stats: NULL argument");
    }
    pthread_mutex_lock(&c->pushes->lock);
    *out = c->pushes->st;
    out->waiting = c->pushes->n;
    pthread_mutex_unlock(&c->pushes->lock);
    return SPRIG_OK;
}

/* ---- calls --------------------------------------------------------------- */

int
sprig_client_call(sprig_client *c, const char *api, const void *data,
                  size_t len, sprig_buf *out)
{
    if (!c || !api || !out || (len && !data)) {
        return sprig__err(SPRIG_EINVAL, "sprig_client_call: NULL argument");
    }
    sprig__api row = sprig__api_custom;
    row.name = api;
    sprig__custom_req req = {{data, len}, true};
    sprig__custom_resp resp = {0};
    int rc = sprig__client_call(c, &row, &req, &resp);
    if (rc == 0 && resp.data.len &&
        sprig_buf_append(out, resp.data.data, resp.data.len)) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    sprig_buf_clear(&resp.data);
    return rc;
}

int
sprig_client_call_on(sprig_storage *server, const char *api, const void *data,
                     size_t len, sprig_buf *out)
{
    sprig_client *c = server ? sprig__client_of(server) : NULL;
    if (!c) {
        return sprig__err(SPRIG_EINVAL, "sprig_client_call_on: not a "
                                        "server's storage");
    }
    return sprig_client_call(c, api, data, len, out);
}

void
sprig_api_info_free(sprig_api_info *apis, size_t n)
{
    for (size_t i = 0; apis && i < n; i++) {
        sprig__free(apis[i].name);
        sprig__free(apis[i].action);
        sprig__free(apis[i].resource);
        sprig__free(apis[i].summary);
    }
    sprig__free(apis);
}

int
sprig_client_apis(sprig_storage *server, sprig_api_info **out, size_t *n)
{
    sprig_client *c = server ? sprig__client_of(server) : NULL;
    if (!c || !out || !n) {
        return sprig__err(SPRIG_EINVAL, "sprig_client_apis: a server's "
                                        "storage, out and n are needed");
    }
    *out = NULL;
    *n = 0;
    sprig__empty req = {0};
    sprig__apis_resp resp = {0};
    int rc = sprig__client_call(c, &sprig__api_server_apis, &req, &resp);
    sprig__apis_list *l = resp.apis;
    if (rc == 0 && l && l->n) {
        *out = sprig__calloc(l->n, sizeof **out);
        rc = *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && l && i < l->n; i++) {
        sprig__api_entry *e = &l->items[i];
        (*out)[i] = (sprig_api_info){e->name,    e->action, e->resource,
                                     e->summary, e->custom, e->write};
        memset(e, 0, sizeof *e); /* the strings move */
    }
    *n = rc == 0 && l ? l->n : 0;
    sprig__api_free(sprig__api_server_apis.resp, sprig__api_server_apis.n_resp,
                    &resp);
    return rc;
}
