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

#include <time.h>

uint64_t
sprig__ldb_now(const sprig__ldb *ldb)
{
    const sprig_storage_options *o = &ldb->st->opts;
    if (o->clock_ms) {
        return o->clock_ms(o->clock_udata);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
sprig__cmd_apply(sprig__ldb *ldb, MDB_txn *txn, const sprig__cmd *cmd,
                 sprig__cmd_out *out)
{
    switch (cmd->kind) {
    case SPRIG__CMD_TXN: return sprig__docs_apply_cmd(txn, ldb, cmd, out);
    case SPRIG__CMD_KV: return sprig__kv_apply_cmd(txn, ldb->kv, cmd, out);
    case SPRIG__CMD_SWEEP: return sprig__kv_sweep_apply(txn, ldb->kv, cmd, out);
    case SPRIG__CMD_CREATE_DB:
    case SPRIG__CMD_DELETE_DB:
    case SPRIG__CMD_SCHEMA: break;
    }
    return sprig__err(SPRIG_EINVAL,
                      "command kind %d does not apply to a database",
                      (int)cmd->kind);
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

typedef struct run_arg {
    sprig__ldb *ldb;
    sprig__cmd *cmd;
} run_arg;

static int
run_apply(MDB_txn *txn, void *arg)
{
    run_arg *r = arg;
    return sprig__cmd_apply(r->ldb, txn, r->cmd, &r->cmd->out);
}

int
sprig__ldb_run(sprig__ldb *ldb, sprig__cmd *cmd)
{
    if (atomic_load(&ldb->dropped)) {
        return sprig__err(SPRIG_ENOTFOUND, "database '%s' was deleted",
                          ldb->name);
    }
    run_arg r = {ldb, cmd};
    sprig__wreq req = {.apply = run_apply, .arg = &r, .cmd = cmd};
    req.lazy = cmd->lazy;
    req.frees = cmd_frees(cmd);
    int rc = sprig__writer_submit(&ldb->writer, &req);
    if (rc == 0 && cmd->kind == SPRIG__CMD_KV) {
        sprig__kv_after_commit(ldb->kv, cmd);
    }
    return rc;
}
