/*
 * cmd_apply.c -- the engine side of write commands (src/core/cmd.h):
 * dispatching a command to the code that applies it inside the writer's
 * LMDB transaction (docs.c, kv.c, kv_expiry.c; admin commands go to the
 * storage, storage.c), and running one through a database's writer.
 *
 * Applying reads no clock and nothing outside the LMDB transaction and the
 * command, so the same commands on the same state give the same bytes.
 */
#include "core/cmd.h"
#include "kv.h"
#include "local.h"
#include "repl.h"
#include "rid.h"

#include <time.h>

uint64_t
sprig__ldb_now(const sprig__ldb *ldb)
{
    return sprig__clock_now(&ldb->st->opts);
}

uint64_t
sprig__clock_now(const sprig_storage_options *o)
{
    if (o->clock_ms) {
        return o->clock_ms(o->clock_udata);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The id after the last key of log table `log` into *next. */
static int
log_next_id(MDB_txn *txn, MDB_dbi log, uint64_t *next)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, log, &cur);
    if (mrc == 0) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        mdb_cursor_close(cur);
    }
    if (mrc == 0 && k.mv_size != 8) {
        return sprig__err(SPRIG_ECORRUPT, "log key has %zu bytes", k.mv_size);
    }
    if (mrc && mrc != MDB_NOTFOUND) {
        return sprig__mdb_err(mrc, "reading the last log id");
    }
    MDB_stat s;
    *next = (mrc ? 0 : sprig__get_u64be(k.mv_data)) + 1;
    mrc = mdb_stat(txn, log, &s);
    if (mrc) {
        return sprig__mdb_err(mrc, "reading the log's size");
    }
    if (*next != s.ms_entries + 1) { /* ids are 1..N (db.c) */
        return sprig__err(SPRIG_ECORRUPT,
                          "the transaction log's last id is %llu, its size "
                          "%llu (a damaged key)",
                          (unsigned long long)(*next - 1),
                          (unsigned long long)s.ms_entries);
    }
    return SPRIG_OK;
}

int
sprig__log_write(MDB_txn *txn, MDB_dbi log, uint64_t ts, const sprig_change *c,
                 size_t n, sprig_buf *scratch, uint64_t *id)
{
    uint64_t next = 0;
    int rc = log_next_id(txn, log, &next);
    *id = 0;
    if (rc) {
        return rc;
    }
    scratch->len = 0;
    rc = sprig__log_record_encode(ts, c, n, scratch);
    if (rc) {
        return rc;
    }
    uint8_t kb[8];
    sprig__put_u64be(kb, next);
    MDB_val k = {8, kb}, v = {scratch->len, scratch->data};
    rc = sprig__mdb_err(mdb_put(txn, log, &k, &v, MDB_APPEND),
                        "writing the transaction log");
    *id = rc ? 0 : next;
    return rc;
}

/* One change: the bytes sprig__log_record_encode would make, written in
 * place (MDB_RESERVE), with no allocation. */
int
sprig__log_write1(MDB_txn *txn, MDB_dbi log, uint64_t ts, const char *what,
                  sprig_bytes id, uint64_t revision, bool deleted,
                  uint64_t *out)
{
    uint64_t next = 0;
    int rc = log_next_id(txn, log, &next);
    *out = 0;
    if (rc) {
        return rc;
    }
    size_t cl = strlen(what);
    uint8_t kb[8];
    sprig__put_u64be(kb, next);
    MDB_val k = {8, kb}, v = {13 + 17 + cl + id.len, NULL};
    int mrc = mdb_put(txn, log, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (mrc) {
        return sprig__mdb_err(mrc, "writing the transaction log");
    }
    uint8_t *p = v.mv_data;
    p[0] = 1; /* the record format */
    sprig__put_u64be(p + 1, ts);
    sprig__put_u32be(p + 9, 1);
    p[13] = deleted ? 1 : 0;
    sprig__put_u64be(p + 14, revision);
    sprig__put_u32be(p + 22, (uint32_t)cl);
    memcpy(p + 26, what, cl);
    sprig__put_u32be(p + 26 + cl, (uint32_t)id.len);
    memcpy(p + 30 + cl, id.data, id.len);
    *out = next;
    return SPRIG_OK;
}

#define RAFT_APPLIED_KEY "raft.applied"

int
sprig__raft_put_applied(MDB_txn *txn, MDB_dbi meta, uint64_t idx)
{
    uint8_t vb[8];
    sprig__put_u64be(vb, idx);
    MDB_val k = {sizeof RAFT_APPLIED_KEY - 1, RAFT_APPLIED_KEY};
    MDB_val v = {8, vb};
    return sprig__mdb_err(mdb_put(txn, meta, &k, &v, 0),
                          "recording the applied Raft index");
}

static int
cmd_apply_kind(sprig__ldb *ldb, MDB_txn *txn, const sprig__cmd *cmd,
               sprig__cmd_out *out)
{
    switch (cmd->kind) {
    case SPRIG__CMD_TXN: return sprig__docs_apply_cmd(txn, ldb, cmd, out);
    case SPRIG__CMD_KV: return sprig__kv_apply_cmd(txn, ldb->kv, cmd, out);
    case SPRIG__CMD_SWEEP: return sprig__kv_sweep_apply(txn, ldb->kv, cmd, out);
    case SPRIG__CMD_CREATE_DB:
    case SPRIG__CMD_DELETE_DB:
    case SPRIG__CMD_SCHEMA:
    case SPRIG__CMD_PUBLISH: break;
    }
    return sprig__err(SPRIG_EINVAL,
                      "command kind %d does not apply to a database",
                      (int)cmd->kind);
}

/* A replicated command with a request id (rid.c): answered from the
 * table when its id is there, else applied and recorded.  A TXN's result
 * is recorded whether or not the submitter wants it (every node records
 * the same). */
static int
cmd_apply_rid(sprig__ldb *ldb, MDB_txn *txn, const sprig__cmd *cmd,
              sprig__cmd_out *out)
{
    bool found = false;
    out->deduped = false;
    sprig_txn_result *own = NULL;
    if (cmd->kind == SPRIG__CMD_TXN && !out->txn) {
        own = out->txn = sprig__txn_result_new(cmd->n_ops);
        if (!own) {
            return sprig__err(SPRIG_ENOMEM, "out of memory applying");
        }
    }
    int rc = sprig__rid_lookup(ldb, txn, cmd, out, &found);
    if (rc == 0 && !found) {
        rc = cmd_apply_kind(ldb, txn, cmd, out);
        rc = rc ? rc : sprig__rid_record(ldb, txn, cmd, out);
    }
    if (own) {
        out->txn = NULL;
        sprig_txn_result_free(own);
    }
    return rc;
}

int
sprig__cmd_apply(sprig__ldb *ldb, MDB_txn *txn, const sprig__cmd *cmd,
                 sprig__cmd_out *out)
{
    bool rid = cmd->has_rid && cmd->raft_index &&
               (cmd->kind == SPRIG__CMD_TXN || cmd->kind == SPRIG__CMD_KV);
    int rc = rid ? cmd_apply_rid(ldb, txn, cmd, out)
                 : cmd_apply_kind(ldb, txn, cmd, out);
    if (rc == 0 && cmd->raft_index) {
        rc = sprig__raft_put_applied(txn, ldb->meta, cmd->raft_index);
    }
    return rc;
}

/* Does the command only remove data (so it may use the map's reserve)? */
static bool
cmd_frees(const sprig__cmd *c)
{
    switch (c->kind) {
    case SPRIG__CMD_TXN:
        for (size_t i = 0; i < c->n_ops; i++) {
            if (c->ops[i].kind != SPRIG__OP_DELETE &&
                c->ops[i].kind != SPRIG__OP_CHECK) {
                return false;
            }
        }
        return true;
    case SPRIG__CMD_KV:
        return c->kv == SPRIG__KV_DEL || c->kv == SPRIG__KV_TAKE;
    case SPRIG__CMD_SWEEP:
    case SPRIG__CMD_DELETE_DB: return true;
    default: return false;
    }
}

/* A command on its way through the writer. */
typedef struct run_arg {
    sprig__wreq req;
    sprig__ldb *ldb;
    sprig__cmd *cmd;
    sprig__cmd_done done; /* asynchronous: the submitter's callback */
    void *udata;
} run_arg;

static int
run_apply(MDB_txn *txn, void *arg)
{
    run_arg *r = arg;
    if (atomic_load(&r->ldb->dropped)) {
        return sprig__ldb_gone(r->ldb);
    }
    return sprig__cmd_apply(r->ldb, txn, r->cmd, &r->cmd->out);
}

static void
run_init(run_arg *r, sprig__ldb *ldb, sprig__cmd *cmd)
{
    memset(r, 0, sizeof *r);
    r->ldb = ldb;
    r->cmd = cmd;
    r->req.apply = run_apply;
    r->req.arg = r;
    r->req.cmd = cmd;
    r->req.lazy = cmd->lazy;
    /* transactions too: most succeed, and one that fails (a conflict)
     * costs a re-run of its batch with children (writer.c) */
    r->req.direct = cmd->kind == SPRIG__CMD_KV ||
                    cmd->kind == SPRIG__CMD_SWEEP ||
                    cmd->kind == SPRIG__CMD_TXN;
    r->req.frees = cmd_frees(cmd);
}

/* A command about to be replicated takes the thread's current request id
 * (cmd.h), unless it has one; sweeps never do. */
static void
take_rid(sprig__cmd *cmd)
{
    if (!cmd->has_rid &&
        (cmd->kind == SPRIG__CMD_TXN || cmd->kind == SPRIG__CMD_KV)) {
        cmd->has_rid = sprig__rid_take_current(cmd->rid);
    }
}

static void
after_commit(sprig__ldb *ldb, const sprig__cmd *cmd, int rc)
{
    if (rc == 0 && cmd->kind == SPRIG__CMD_KV) {
        sprig__kv_after_commit(ldb->kv, cmd);
    }
}

int
sprig__ldb_run(sprig__ldb *ldb, sprig__cmd *cmd)
{
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    const sprig__repl *repl = sprig__storage_repl(ldb->st, cmd);
    if (repl) {
        take_rid(cmd);
        return sprig__repl_run(repl, ldb->name, cmd);
    }
    run_arg r;
    run_init(&r, ldb, cmd);
    int rc = sprig__writer_submit(&ldb->writer, &r.req);
    after_commit(ldb, cmd, rc);
    return rc;
}

int
sprig__ldb_run_many(sprig__ldb *ldb, sprig__cmd **cmds, size_t n, int *rcs,
                    sprig__errsave *errs)
{
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    run_arg *rs = sprig__malloc(n * sizeof *rs); /* run_init zeroes each */
    sprig__wreq **reqs = rs ? sprig__malloc(n * sizeof *reqs) : NULL;
    if (!reqs) {
        sprig__free(rs);
        return sprig__err(SPRIG_ENOMEM, "out of memory applying a batch");
    }
    for (size_t i = 0; i < n; i++) {
        run_init(&rs[i], ldb, cmds[i]);
        reqs[i] = &rs[i].req;
    }
    sprig__writer_submit_many(&ldb->writer, reqs, n);
    for (size_t i = 0; i < n; i++) {
        rcs[i] = rs[i].req.rc;
        if (errs && rcs[i]) { /* a few KB: copied only for a failure */
            errs[i] = rs[i].req.err;
        }
        after_commit(ldb, cmds[i], rcs[i]);
    }
    sprig__free(reqs);
    sprig__free(rs);
    return SPRIG_OK;
}

/* The writer answered an asynchronous command. */
static void
run_done(sprig__wreq *req)
{
    run_arg *r = (run_arg *)req; /* req is the first member */
    int rc = req->rc;
    after_commit(r->ldb, r->cmd, rc);
    sprig__cmd_done done = r->done;
    void *udata = r->udata;
    sprig__cmd *cmd = r->cmd;
    sprig__free(r);
    done(udata, rc, cmd);
}

int
sprig__ldb_submit(sprig__ldb *ldb, sprig__cmd *cmd, sprig__cmd_done done,
                  void *udata)
{
    if (cmd->kind != SPRIG__CMD_TXN && cmd->kind != SPRIG__CMD_KV &&
        cmd->kind != SPRIG__CMD_SWEEP) {
        return sprig__err(SPRIG_EINVAL,
                          "command kind %d does not apply to "
                          "a database",
                          (int)cmd->kind);
    }
    if (cmd->kind == SPRIG__CMD_KV && cmd->now_ms == 0) {
        /* accepted now: the storage's clock and persistence mode (for a
         * submitter, like the server, that sees neither) */
        cmd->now_ms = sprig__kv_now(ldb->kv);
        cmd->lazy = ldb->kv->lazy;
    } else if (cmd->kind == SPRIG__CMD_TXN && cmd->now_ms == 0) {
        cmd->now_ms = sprig__ldb_now(ldb);
    }
    const sprig__repl *repl = sprig__storage_repl(ldb->st, cmd);
    if (repl) {
        take_rid(cmd);
        int rc = sprig__cmd_hash(ldb, cmd);
        return rc ? rc : repl->submit(repl->udata, ldb->name, cmd, done, udata);
    }
    run_arg *r = sprig__malloc(sizeof *r);
    int rc = r ? sprig__cmd_hash(ldb, cmd)
               : sprig__err(SPRIG_ENOMEM, "out of memory submitting");
    if (rc == 0) {
        run_init(r, ldb, cmd);
        r->done = done;
        r->udata = udata;
        r->req.done = run_done;
        rc = sprig__writer_submit_async(&ldb->writer, &r->req);
    }
    if (rc) {
        sprig__free(r);
    }
    return rc;
}

typedef struct mark_arg {
    sprig__ldb *ldb;
    uint64_t idx;
} mark_arg;

static int
mark_apply(MDB_txn *txn, void *arg)
{
    mark_arg *m = arg;
    return sprig__raft_put_applied(txn, m->ldb->meta, m->idx);
}

int
sprig__ldb_mark_applied(sprig__ldb *ldb, uint64_t idx)
{
    mark_arg m = {ldb, idx};
    sprig__wreq req = {.apply = mark_apply, .arg = &m};
    return sprig__writer_submit(&ldb->writer, &req);
}
