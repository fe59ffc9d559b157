/*
 * rid.h -- private to src/local: the request-id table of a database
 * (rid.c; issue 18), used by cmd_apply.c inside the writer's transaction.
 */
#ifndef SPRIG_LOCAL_RID_H
#define SPRIG_LOCAL_RID_H

#include "core/cmd.h"
#include "local.h"

/** A request id is remembered until this many Raft entries were
 *  committed after the one that recorded it. */
#define SPRIG__RID_WINDOW 65536u

/** Is `cmd->rid` in `ldb`'s table?  When it is, *found is true and `out`
 *  holds the recorded outcome (out->deduped set; out->txn's headers filled
 *  when it has room; out->value owned).  SPRIG_ECORRUPT (a bad record),
 *  SPRIG_EINVAL (the id names a write of another kind), LMDB errors. */
int sprig__rid_lookup(sprig__ldb *ldb, MDB_txn *txn, const sprig__cmd *cmd,
                      sprig__cmd_out *out, bool *found);

/** Record the successful outcome `out` of `cmd` (has_rid, raft_index set)
 *  and prune the ids older than the window.  SPRIG_ENOMEM, LMDB errors. */
int sprig__rid_record(sprig__ldb *ldb, MDB_txn *txn, const sprig__cmd *cmd,
                      const sprig__cmd_out *out);

#endif /* SPRIG_LOCAL_RID_H */
