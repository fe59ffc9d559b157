/*
 * api_kv.c -- asynchronous key-value operations for custom API handlers
 * (src/server; issue 12): sprig_api_kv_get/set/increment start an
 * operation on a database of the server's storage and return; the
 * handler's `done` callback gets the outcome later, and usually answers
 * the request from there.  No worker waits meanwhile.
 *
 * A set or an increment with a cached database handle (db_cache.c) is
 * queued as a command with the handle's `submit` op (src/core/cmd.h), as
 * the built-in kv.set and kv.increment rows do (submit.c): `done` runs on
 * the engine's writer thread when the command completes, and the handle
 * goes back to the cache on the loop thread (the operation is a job with
 * no session on the done queue, like a push).  A get with a cached handle
 * is a read: it runs at once, on the calling thread, and `done` is called
 * before sprig_api_kv_get() returns.  Anything else -- a handle still to
 * open, a storage without `submit`, arguments the command path does not
 * take as they are (so the public API refuses them with its own words) --
 * runs the synchronous call on a worker of the pool instead.
 *
 * Each operation holds a reference on the request's context
 * (sprig__api_ctx_hold), so the context outlives the answer while one is
 * in flight, and teardown (which waits for every context) waits for it.
 */
#include "core/cmd.h"
#include "server/server_int.h"

#include <math.h>

enum { KV_GET, KV_SET, KV_INCR };

typedef struct kvop {
    sprig__job job; /* the handle's release (loop), or the worker's task */
    sprig__cmd cmd;
    sprig_api_ctx *ctx;
    sprig_server *srv;
    sprig_api_kv_done done;
    void *udata;
    sprig_db *db;
    int kind;
    sprig_value value; /* set: the value; increment: the amount (borrowed
                          from `mem`) */
    const char *dbname, *ns, *key;
    char mem[]; /* dbname, ns, key, the value's bytes */
} kvop;

/* A new operation with copies of its arguments; NULL when out of memory. */
static kvop *
kvop_new(sprig_api_ctx *ctx, int kind, const char *db, const char *ns,
         const char *key, const sprig_value *v)
{
    size_t ld = strlen(db) + 1, ln = strlen(ns) + 1, lk = strlen(key) + 1;
    size_t lv = v && v->kind == SPRIG_VALUE_BYTES ? v->bytes.len : 0;
    kvop *k = sprig__calloc(1, sizeof *k + ld + ln + lk + lv);
    if (!k) {
        return NULL;
    }
    k->ctx = ctx;
    k->srv = sprig_api_server(ctx);
    k->kind = kind;
    memcpy(k->mem, db, ld);
    memcpy(k->mem + ld, ns, ln);
    memcpy(k->mem + ld + ln, key, lk);
    k->dbname = k->mem;
    k->ns = k->mem + ld;
    k->key = k->mem + ld + ln;
    if (v) {
        k->value = *v;
        k->value.owned_ = NULL;
        if (lv) {
            memcpy(k->mem + ld + ln + lk, v->bytes.data, lv);
            k->value.bytes.data = (uint8_t *)k->mem + ld + ln + lk;
        }
    }
    return k;
}

/* Can the command path take the arguments as they are? */
static bool
submittable(const kvop *k)
{
    const sprig_value *v = &k->value;
    bool num = v->kind == SPRIG_VALUE_I64 || v->kind == SPRIG_VALUE_U64 ||
               (v->kind == SPRIG_VALUE_F64 && isfinite(v->num.f64));
    bool bytes =
        v->kind == SPRIG_VALUE_BYTES && v->bytes.len <= SPRIG_KV_VALUE_MAX;
    return *k->key && strlen(k->ns) + strlen(k->key) <= SPRIG_KV_KEY_MAX &&
           (k->kind == KV_INCR ? num : num || bytes);
}

/* Tell the handler, then let go of the context (it may end here). */
static void
report(kvop *k, int rc, const sprig_value *v)
{
    sprig_api_ctx *ctx = k->ctx;
    k->done(ctx, rc, rc == 0 ? v : NULL, k->udata);
    sprig__api_ctx_drop(ctx);
}

/* ---- on a worker: the synchronous call ----------------------------------- */

static int
run_sync(kvop *k, sprig_db *db, sprig_value *out)
{
    switch (k->kind) {
    case KV_GET: return sprig_kv_get(db, k->ns, k->key, false, out);
    case KV_SET:
        return sprig_kv_set(db, k->ns, k->key, &k->value, NULL, NULL, NULL);
    default:
        return sprig_kv_increment(db, k->ns, k->key, &k->value, false, out);
    }
}

static void
sync_task(sprig__job *job)
{
    kvop *k = (kvop *)job;
    sprig_db *db = NULL;
    sprig_value out = {.kind = SPRIG_VALUE_NONE};
    int rc = sprig__db_acquire(k->srv, k->dbname, true, &db);
    rc = rc ? rc : run_sync(k, db, &out);
    if (db) {
        sprig__db_release(k->srv, db, false);
    }
    report(k, rc, &out);
    sprig_value_clear(&out);
    sprig__free(k);
}

/* ---- submitted: completes on the writer thread ----------------------------
 */

/* The loop thread: the handle goes back to the cache. */
static void
release_on_loop(sprig__job *job)
{
    kvop *k = (kvop *)job;
    sprig__db_release(k->srv, k->db, true);
    sprig__free(k);
}

static void
cmd_done(void *udata, int rc, sprig__cmd *cmd)
{
    kvop *k = udata;
    sprig_api_ctx *ctx = k->ctx;
    k->done(ctx, rc, rc == 0 && k->kind == KV_INCR ? &cmd->out.value : NULL,
            k->udata);
    sprig__cmd_clear(cmd);
    k->job.on_loop = release_on_loop;
    sprig__job_finish(k->srv, &k->job); /* before the context may end */
    sprig__api_ctx_drop(ctx);
}

/* Submit the command; false when it was not queued (`db` let go of). */
static bool
submit(kvop *k, sprig_db *db)
{
    memset(&k->cmd, 0, sizeof k->cmd);
    k->cmd.kind = SPRIG__CMD_KV;
    k->cmd.kv = k->kind == KV_SET ? SPRIG__KV_SET : SPRIG__KV_INCR;
    k->cmd.ns = k->ns;
    k->cmd.key = k->key;
    k->cmd.value = k->value;
    k->db = db;
    if (db->ops->submit(db, &k->cmd, cmd_done, k) == 0) {
        return true;
    }
    sprig__cmd_clear(&k->cmd);
    sprig__db_release(k->srv, db, true);
    return false;
}

/* ---- starting one -------------------------------------------------------- */

static int
start(sprig_api_ctx *ctx, int kind, const char *db, const char *ns,
      const char *key, const sprig_value *v, sprig_api_kv_done done,
      void *udata)
{
    if (!ctx || !db || !key || !done || (kind != KV_GET && !v)) {
        return sprig__err(SPRIG_EINVAL, "sprig_api_kv_*: NULL argument");
    }
    kvop *k = kvop_new(ctx, kind, db, ns ? ns : "", key, v);
    if (!k) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    k->done = done;
    k->udata = udata;
    sprig__api_ctx_hold(ctx);
    sprig_db *h = NULL;
    bool cached = sprig__db_acquire(k->srv, k->dbname, false, &h) == 0;
    if (cached && kind == KV_GET) {
        sprig_value out = {.kind = SPRIG_VALUE_NONE};
        int rc = sprig_kv_get(h, k->ns, k->key, false, &out);
        sprig__db_release(k->srv, h, true);
        report(k, rc, &out);
        sprig_value_clear(&out);
        sprig__free(k);
        return SPRIG_OK;
    }
    if (cached && h->ops->submit && submittable(k)) {
        if (submit(k, h)) {
            return SPRIG_OK;
        }
    } else if (cached) {
        sprig__db_release(k->srv, h, true);
    }
    k->job.task = sync_task;
    sprig__run_task(k->srv, &k->job);
    return SPRIG_OK;
}

int
sprig_api_kv_get(sprig_api_ctx *ctx, const char *db, const char *ns,
                 const char *key, sprig_api_kv_done done, void *udata)
{
    return start(ctx, KV_GET, db, ns, key, NULL, done, udata);
}

int
sprig_api_kv_set(sprig_api_ctx *ctx, const char *db, const char *ns,
                 const char *key, const sprig_value *value,
                 sprig_api_kv_done done, void *udata)
{
    return start(ctx, KV_SET, db, ns, key, value, done, udata);
}

int
sprig_api_kv_increment(sprig_api_ctx *ctx, const char *db, const char *ns,
                       const char *key, const sprig_value *amount,
                       sprig_api_kv_done done, void *udata)
{
    return start(ctx, KV_INCR, db, ns, key, amount, done, udata);
}
