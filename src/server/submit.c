/*
 * submit.c -- writes the server submits to the engine as commands
 * (src/server): the handlers of the rows whose `where` is SUBMIT (db.apply,
 * kv.set, kv.increment, kv.delete).
 *
 * The handler takes over its decoded request (the request path then
 * frees an empty struct), builds a sprig__cmd that borrows from it, and
 * queues it with the database handle's `submit` op (src/core/cmd.h):
 * nobody waits for the commit, so one commit of the writer takes every
 * write queued at that moment.  When the command completes, `sub_done`
 * runs on the engine's thread: it turns the command's results into the
 * row's response, encodes the answer (sprig__request_answer: the same
 * encoder as every other row) into the request's job, and hands the job
 * back to the loop thread through the done queue.  The database handle is
 * held until then and let go on the loop thread (the job's on_loop hook):
 * `done` must never close a handle, as closing joins the writer thread it
 * runs on.
 *
 * On the loop thread a handler submits only with a cached handle; a miss
 * is SPRIG__EMISS and a worker opens the handle and submits from there.
 * Requests the server cannot turn into a command as they are -- a
 * relative expiry (it needs the storage's clock), anything the public
 * API would refuse (so that it refuses with its own words), a handle
 * without `submit` (remote placements) -- run the synchronous API on a
 * worker instead, as before.  The engine stamps the command's time and
 * persistence mode when it accepts it (now_ms left 0).
 *
 * Threads: handlers on the loop thread or a worker; sub_done on the
 * engine's writer thread; `srv->submits` under `srv->lock`.
 */
#include "core/cmd.h"
#include "server/server_int.h"

#include <math.h>

typedef struct sub sub;
/* Turn the completed command's results (outcome `rc`) into the row's
 * response. */
typedef void (*sub_fill)(sprig__cmd *cmd, int rc, void *resp);

/* One submitted request: its command, its request (taken over) and
 * response, and where the answer goes. */
struct sub {
    sprig__cmd cmd;
    sprig_server *srv;
    sprig__session *sess;
    const sprig__route *route;
    sprig__job *job;
    uint32_t id;
    sprig_db *db;
    sub_fill fill;
    void *req, *resp; /* in `room`, the row's structs */
    _Alignas(16) uint8_t room[];
};

/* ---- the submission ---------------------------------------------------- */

/* A submission for call `c` on `db`, taking over the request `rq` (left
 * zeroed).  NULL when out of memory (the request stays the caller's). */
static sub *
sub_new(sprig__call *c, sprig_db *db, void *rq, sub_fill fill)
{
    const sprig__api *api = &c->route->api;
    size_t rq_size = (api->req_size + 15) & ~(size_t)15;
    sub *s = sprig__calloc(1, sizeof *s + rq_size + api->resp_size);
    if (!s) {
        return NULL;
    }
    s->srv = c->srv;
    s->sess = c->sess;
    s->route = c->route;
    s->job = c->job;
    s->id = c->id;
    s->db = db;
    s->fill = fill;
    s->req = s->room;
    s->resp = s->room + rq_size;
    memcpy(s->req, rq, api->req_size);
    memset(rq, 0, api->req_size);
    return s;
}

/* Free what the submission holds but its handle and job. */
static void
sub_free(sub *s)
{
    const sprig__api *api = &s->route->api;
    sprig_txn_result_free(s->cmd.out.txn); /* not handed to a response */
    sprig__cmd_clear(&s->cmd);
    sprig__api_free(api->req, api->n_req, s->req);
    sprig__api_free(api->resp, api->n_resp, s->resp);
    sprig__free(s);
}

/* Loop thread (the job's on_loop hook): let go of the handle. */
static void
release_on_loop(sprig__job *job)
{
    sprig__db_release(job->sess->srv, job->attach, true);
    job->attach = NULL;
}

/* Count a submission out; wake teardown at the last. */
static void
count_out(sprig_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    if (--srv->submits == 0) {
        pthread_cond_broadcast(&srv->sub_cond);
    }
    pthread_mutex_unlock(&srv->lock);
}

/* The engine completed the command (its writer thread): answer. */
static void
sub_done(void *udata, int rc, sprig__cmd *cmd)
{
    sub *s = udata;
    sprig_server *srv = s->srv;
    sprig__job *job = s->job;
    s->fill(cmd, rc, s->resp);
    sprig__call c = {srv, s->sess, s->route, s->id, false, job};
    sprig__request_answer(&c, rc, s->resp, &job->out);
    job->on_loop = release_on_loop;
    job->attach = s->db;
    sub_free(s);
    sprig__job_finish(srv, job);
    count_out(srv); /* srv may be gone after this */
}

/* Queue the command; on failure everything is let go of and the error
 * returned (the path answers it). */
static int
sub_submit(sub *s, sprig__call *c)
{
    pthread_mutex_lock(&s->srv->lock);
    s->srv->submits++;
    pthread_mutex_unlock(&s->srv->lock);
    sprig_db *db = s->db;
    int rc = db->ops->submit(db, &s->cmd, sub_done, s);
    if (rc == 0) {
        return SPRIG__EASYNC;
    }
    sub_free(s);
    sprig__db_release(c->srv, db, c->on_loop);
    count_out(c->srv);
    return rc;
}

void
sprig__submit_drain(sprig_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    while (srv->submits) {
        pthread_cond_wait(&srv->sub_cond, &srv->lock);
    }
    pthread_mutex_unlock(&srv->lock);
}

/* A handle of `name` for submitting: 0 with *db set, or SPRIG__EMISS
 * (*db NULL) when the request must move to a worker, which then runs the
 * synchronous API (*db NULL: `submit` not offered) or submits.  Other
 * errors as sprig__db_acquire. */
static int
submit_handle(sprig__call *c, const char *name, sprig_db **db)
{
    *db = NULL;
    int rc = sprig__db_acquire(c->srv, name, !c->on_loop, db);
    if (rc) {
        return rc;
    }
    if (!(*db)->ops->submit) {
        sprig__db_release(c->srv, *db, c->on_loop);
        *db = NULL;
        return c->on_loop ? SPRIG__EMISS : SPRIG_OK;
    }
    return SPRIG_OK;
}

/* ---- what can be submitted as it is ------------------------------------- */

static bool
key_ok(const char *ns, const char *key)
{
    return key && *key &&
           (ns ? strlen(ns) : 0) + strlen(key) <= SPRIG_KV_KEY_MAX;
}

static bool
value_ok(const sprig_value *v)
{
    switch (v->kind) {
    case SPRIG_VALUE_BYTES:
        return (v->bytes.data || !v->bytes.len) &&
               v->bytes.len <= SPRIG_KV_VALUE_MAX;
    case SPRIG_VALUE_I64:
    case SPRIG_VALUE_U64: return true;
    case SPRIG_VALUE_F64: return !isnan(v->num.f64);
    default: return false;
    }
}

static bool
set_ok(const sprig__kv_set_req *r)
{
    return key_ok(r->ns, r->key) && value_ok(&r->value) && !r->expire_in_ms &&
           (r->check == SPRIG_KV_ANY || r->check == SPRIG_KV_ONLY_IF_VACANT ||
            r->check == SPRIG_KV_ONLY_IF_PRESENT);
}

static bool
incr_ok(const sprig__kv_incr_req *r)
{
    const sprig_value *a = &r->amount;
    return key_ok(r->ns, r->key) && value_ok(a) &&
           a->kind != SPRIG_VALUE_BYTES &&
           (a->kind != SPRIG_VALUE_F64 || isfinite(a->num.f64));
}

/* A KV command of `kind` on the request's (ns, key), accepted by the
 * engine when submitted (now_ms 0). */
static void
kv_cmd(sprig__cmd *c, sprig__kv_cmd_kind kind, const char *ns, const char *key)
{
    memset(c, 0, sizeof *c);
    c->kind = SPRIG__CMD_KV;
    c->kv = kind;
    c->ns = ns ? ns : "";
    c->key = key;
}

/* ---- db.apply -------------------------------------------------------------
 */

static int
apply_sync(sprig__call *c, const sprig__apply_req *r, sprig_txn_result **out)
{
    sprig_db *db;
    int rc = sprig__db_acquire(c->srv, r->db, true, &db);
    if (rc == 0) {
        rc = sprig_txn_apply(db, r->txn, out);
        sprig__db_release(c->srv, db, false);
    }
    return rc;
}

/* The result goes into the response when the transaction committed or
 * failed at an operation (its detail); else it is freed. */
static void
apply_fill(sprig__cmd *cmd, int rc, void *resp)
{
    sprig_txn_result *res = cmd->out.txn;
    cmd->out.txn = NULL;
    if (rc == 0 || res->failed >= 0) {
        ((sprig__apply_resp *)resp)->result = res;
    } else {
        sprig_txn_result_free(res);
    }
}

int
sprig__submit_apply(sprig__call *c, void *rq, void *rs)
{
    sprig__apply_req *r = rq;
    sprig_db *db = NULL;
    int rc = r->txn && r->txn->n ? submit_handle(c, r->db, &db)
                                 : (c->on_loop ? SPRIG__EMISS : SPRIG_OK);
    if (rc || !db) {
        return rc ? rc : apply_sync(c, r, &((sprig__apply_resp *)rs)->result);
    }
    sprig_txn_result *res = sprig__txn_result_new(r->txn->n);
    sub *s = res ? sub_new(c, db, rq, apply_fill) : NULL;
    if (!s) {
        sprig_txn_result_free(res);
        sprig__db_release(c->srv, db, c->on_loop);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    r = s->req;
    s->cmd.kind = SPRIG__CMD_TXN;
    s->cmd.ops = r->txn->ops;
    s->cmd.n_ops = r->txn->n;
    s->cmd.out.txn = res;
    return sub_submit(s, c);
}

/* ---- kv.set ---------------------------------------------------------------
 */

static int
set_sync(sprig__call *c, const sprig__kv_set_req *r, sprig__kv_set_resp *out)
{
    sprig_kv_set_opts o = {.expire_at_ms = r->expire_at_ms,
                           .keep_expiration = r->keep_expiration,
                           .check = (sprig_kv_check)r->check,
                           .return_previous = r->return_previous,
                           .expire_in_ms = r->expire_in_ms};
    sprig_kv_status st = 0;
    sprig_db *db;
    int rc = sprig__db_acquire(c->srv, r->db, true, &db);
    if (rc == 0) {
        rc = sprig_kv_set(db, r->ns, r->key, &r->value, &o, &st,
                          r->return_previous ? &out->previous : NULL);
        sprig__db_release(c->srv, db, false);
    }
    out->status = (uint32_t)st;
    return rc;
}

static void
set_fill(sprig__cmd *cmd, int rc, void *resp)
{
    if (rc) {
        return;
    }
    sprig__kv_set_resp *out = resp;
    out->status = (uint32_t)cmd->out.status;
    if (cmd->want_value && cmd->out.found) {
        out->previous = cmd->out.value; /* the bytes move */
        memset(&cmd->out.value, 0, sizeof cmd->out.value);
    }
}

int
sprig__submit_kv_set(sprig__call *c, void *rq, void *rs)
{
    sprig__kv_set_req *r = rq;
    ((sprig__kv_set_resp *)rs)->previous.kind = SPRIG_VALUE_NONE;
    sprig_db *db = NULL;
    int rc = set_ok(r) ? submit_handle(c, r->db, &db)
                       : (c->on_loop ? SPRIG__EMISS : SPRIG_OK);
    if (rc || !db) {
        return rc ? rc : set_sync(c, r, rs);
    }
    sub *s = sub_new(c, db, rq, set_fill);
    if (!s) {
        sprig__db_release(c->srv, db, c->on_loop);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    r = s->req;
    ((sprig__kv_set_resp *)s->resp)->previous.kind = SPRIG_VALUE_NONE;
    kv_cmd(&s->cmd, SPRIG__KV_SET, r->ns, r->key);
    s->cmd.value = r->value;
    s->cmd.value.owned_ = NULL;
    s->cmd.check = (sprig_kv_check)r->check;
    s->cmd.keep_expiration = r->keep_expiration;
    s->cmd.expire_at = r->expire_at_ms;
    s->cmd.want_value = r->return_previous;
    return sub_submit(s, c);
}

/* ---- kv.increment ---------------------------------------------------------
 */

static int
incr_sync(sprig__call *c, const sprig__kv_incr_req *r, sprig_value *out)
{
    sprig_db *db;
    int rc = sprig__db_acquire(c->srv, r->db, true, &db);
    if (rc == 0) {
        rc = r->decrement ? sprig_kv_decrement(db, r->ns, r->key, &r->amount,
                                               r->saturating, out)
                          : sprig_kv_increment(db, r->ns, r->key, &r->amount,
                                               r->saturating, out);
        sprig__db_release(c->srv, db, false);
    }
    return rc;
}

static void
incr_fill(sprig__cmd *cmd, int rc, void *resp)
{
    if (rc) {
        return;
    }
    ((sprig__kv_value_resp *)resp)->value = cmd->out.value; /* moves */
    memset(&cmd->out.value, 0, sizeof cmd->out.value);
}

int
sprig__submit_kv_incr(sprig__call *c, void *rq, void *rs)
{
    sprig__kv_incr_req *r = rq;
    sprig_db *db = NULL;
    int rc = incr_ok(r) ? submit_handle(c, r->db, &db)
                        : (c->on_loop ? SPRIG__EMISS : SPRIG_OK);
    if (rc || !db) {
        return rc ? rc : incr_sync(c, r, &((sprig__kv_value_resp *)rs)->value);
    }
    sub *s = sub_new(c, db, rq, incr_fill);
    if (!s) {
        sprig__db_release(c->srv, db, c->on_loop);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    r = s->req;
    kv_cmd(&s->cmd, SPRIG__KV_INCR, r->ns, r->key);
    s->cmd.value = r->amount;
    s->cmd.value.owned_ = NULL;
    s->cmd.decrement = r->decrement;
    s->cmd.saturating = r->saturating;
    return sub_submit(s, c);
}

/* ---- kv.delete ------------------------------------------------------------
 */

static int
delete_sync(sprig__call *c, const sprig__kv_key_req *r, uint32_t *status)
{
    sprig_kv_status st = 0;
    sprig_db *db;
    int rc = sprig__db_acquire(c->srv, r->db, true, &db);
    if (rc == 0) {
        rc = sprig_kv_delete(db, r->ns, r->key, &st);
        sprig__db_release(c->srv, db, false);
    }
    *status = (uint32_t)st;
    return rc;
}

static void
delete_fill(sprig__cmd *cmd, int rc, void *resp)
{
    if (rc) {
        return;
    }
    ((sprig__kv_status_resp *)resp)->status = (uint32_t)cmd->out.status;
}

int
sprig__submit_kv_delete(sprig__call *c, void *rq, void *rs)
{
    sprig__kv_key_req *r = rq;
    sprig_db *db = NULL;
    int rc = key_ok(r->ns, r->key) ? submit_handle(c, r->db, &db)
                                   : (c->on_loop ? SPRIG__EMISS : SPRIG_OK);
    if (rc || !db) {
        return rc ? rc
                  : delete_sync(c, r, &((sprig__kv_status_resp *)rs)->status);
    }
    sub *s = sub_new(c, db, rq, delete_fill);
    if (!s) {
        sprig__db_release(c->srv, db, c->on_loop);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    r = s->req;
    kv_cmd(&s->cmd, SPRIG__KV_DEL, r->ns, r->key);
    return sub_submit(s, c);
}
