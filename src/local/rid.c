/*
 * rid.c -- the request-id table of a database (issue 18): what makes a
 * retried write apply once.  A replicated TXN or KV command that carries
 * the client's request id (cmd->has_rid, from the Raft entry) is looked
 * up in its database's meta table, inside the writer's LMDB transaction:
 * when the id is there, the command is not applied again and its outputs
 * are the first application's, as recorded; otherwise it is applied and,
 * when it succeeded, its outcome is recorded in the same transaction as
 * its effects (so exactly once with them, and on every node alike).
 *
 * Layout, in the database's meta table (the index big-endian):
 *   "rid/" + rid (16 bytes)  -> [Raft index u64][outcome]
 *   "rix/" + index (8 bytes) -> rid (16 bytes)
 * outcome, TXN: [1][txn id u64][log id u64][n u32] n x ([id: len u16,
 *   bytes][revision u64][hash 16]);  KV: [2][status u8][found u8][log id
 *   u64][value kind u8] then [len u32, bytes] (bytes) or [8 bytes].
 * Bounded by the Raft log: applying the entry at index i removes (at most
 * two per apply, so the table keeps up) the ids recorded at an index at or
 * below i - SPRIG__RID_WINDOW.  Deterministic: every node holds the same
 * table.  A refused command (a conflict) records nothing: its retry runs
 * again, against the state of then.
 */
#include "core/cmd.h"
#include "local.h"
#include "rid.h"

#define RID_KEY "rid/"
#define RIX_KEY "rix/"
#define PFX 4

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t
get16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

static MDB_val
key_of(uint8_t *kb, const char *pfx, const uint8_t *b, size_t len)
{
    memcpy(kb, pfx, PFX);
    memcpy(kb + PFX, b, len);
    return (MDB_val){PFX + len, kb};
}

/* ---- encoding the outcome ----------------------------------------------- */

static int
enc_txn(sprig_buf *b, const sprig__cmd_out *o)
{
    uint8_t h[21];
    const sprig_txn_result *r = o->txn;
    size_t n = r ? r->n : 0;
    h[0] = 1;
    sprig__put_u64be(h + 1, r ? r->id : 0);
    sprig__put_u64be(h + 9, o->log_id);
    sprig__put_u32be(h + 17, (uint32_t)n);
    int rc = sprig_buf_append(b, h, sizeof h);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const sprig_header_buf *hb = &r->headers[i];
        uint8_t e[2 + 8 + 16];
        put16(e, (uint16_t)hb->id_len);
        rc = sprig_buf_append(b, e, 2);
        rc = rc ? rc : sprig_buf_append(b, hb->id, hb->id_len);
        sprig__put_u64be(e, hb->revision);
        memcpy(e + 8, hb->hash, 16);
        rc = rc ? rc : sprig_buf_append(b, e, 24);
    }
    return rc;
}

static int
enc_kv(sprig_buf *b, const sprig__cmd_out *o)
{
    uint8_t h[20];
    const sprig_value *v = &o->value;
    h[0] = 2;
    h[1] = (uint8_t)o->status;
    h[2] = o->found ? 1 : 0;
    sprig__put_u64be(h + 3, o->log_id);
    h[11] = (uint8_t)v->kind;
    if (v->kind == SPRIG_VALUE_BYTES) {
        sprig__put_u32be(h + 12, (uint32_t)v->bytes.len);
        int rc = sprig_buf_append(b, h, 16);
        return rc ? rc : sprig_buf_append(b, v->bytes.data, v->bytes.len);
    }
    uint64_t bits = 0;
    memcpy(&bits, &v->num, sizeof bits);
    sprig__put_u64be(h + 12, bits);
    return sprig_buf_append(b, h, 20);
}

/* ---- decoding it (data from disk: checked, never asserted) -------------- */

static int
bad(void)
{
    return sprig__err(SPRIG_ECORRUPT, "a request-id record is malformed");
}

static int
dec_txn(const uint8_t *p, size_t len, sprig__cmd_out *o)
{
    if (len < 21) {
        return bad();
    }
    uint64_t id = sprig__get_u64be(p + 1);
    o->log_id = sprig__get_u64be(p + 9);
    size_t n = sprig__get_u32be(p + 17), off = 21;
    sprig_txn_result *r = o->txn;
    for (size_t i = 0; i < n; i++) {
        size_t il = off + 2 <= len ? get16(p + off) : SIZE_MAX;
        if (il > SPRIG_ID_MAX || len - off - 2 < il + 24) {
            return bad();
        }
        if (r && i < r->n) {
            sprig_header_buf *hb = &r->headers[i];
            memcpy(hb->id, p + off + 2, il);
            hb->id_len = (uint32_t)il;
            hb->revision = sprig__get_u64be(p + off + 2 + il);
            memcpy(hb->hash, p + off + 10 + il, 16);
        }
        off += 2 + il + 24;
    }
    if (r) {
        r->id = id;
        r->failed = -1;
        r->error = 0;
        r->has_conflict = false;
    }
    return off == len ? SPRIG_OK : bad();
}

static int
dec_kv(const uint8_t *p, size_t len, sprig__cmd_out *o)
{
    if (len < 20 || p[11] > SPRIG_VALUE_NONE) {
        return bad();
    }
    o->status = (sprig_kv_status)p[1];
    o->found = p[2] != 0;
    o->log_id = sprig__get_u64be(p + 3);
    sprig_value_kind k = (sprig_value_kind)p[11];
    sprig_value_clear(&o->value);
    if (k == SPRIG_VALUE_BYTES) {
        size_t vl = sprig__get_u32be(p + 12);
        if (vl != len - 16) {
            return bad();
        }
        return sprig__value_set(&o->value, k, (sprig_bytes){p + 16, vl}, 0);
    }
    return len == 20 ? sprig__value_set(&o->value, k, (sprig_bytes){0},
                                        sprig__get_u64be(p + 12))
                     : bad();
}

/* ---- the table -------------------------------------------------------------
 */

int
sprig__rid_lookup(sprig__ldb *ldb, MDB_txn *txn, const sprig__cmd *cmd,
                  sprig__cmd_out *out, bool *found)
{
    uint8_t kb[PFX + 16];
    MDB_val k = key_of(kb, RID_KEY, cmd->rid, 16), v;
    *found = false;
    int mrc = mdb_get(txn, ldb->meta, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        return SPRIG_OK;
    }
    if (mrc) {
        return sprig__mdb_err(mrc, "reading the request-id table");
    }
    const uint8_t *p = v.mv_data;
    if (v.mv_size < 9 || p[8] != (cmd->kind == SPRIG__CMD_TXN ? 1 : 2)) {
        return sprig__err(SPRIG_EINVAL,
                          "request id reused for another kind of write");
    }
    int rc = p[8] == 1 ? dec_txn(p + 8, v.mv_size - 8, out)
                       : dec_kv(p + 8, v.mv_size - 8, out);
    *found = rc == 0;
    out->deduped = rc == 0;
    out->stored_exp = 0;
    return rc;
}

/* Remove up to two ids recorded at an index at or below `below`. */
static int
prune(sprig__ldb *ldb, MDB_txn *txn, uint64_t below)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, ldb->meta, &cur);
    uint8_t kb[PFX + 8];
    MDB_val k = key_of(kb, RIX_KEY, (const uint8_t *)"\0\0\0\0\0\0\0\0", 8);
    MDB_val v;
    for (int i = 0; mrc == 0 && i < 2; i++) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (mrc || k.mv_size != PFX + 8 || memcmp(k.mv_data, RIX_KEY, PFX) ||
            sprig__get_u64be((const uint8_t *)k.mv_data + PFX) > below ||
            v.mv_size != 16) {
            mrc = mrc == MDB_NOTFOUND ? 0 : mrc;
            break;
        }
        uint8_t rb[PFX + 16];
        MDB_val rk = key_of(rb, RID_KEY, v.mv_data, 16);
        mrc = mdb_cursor_del(cur, 0);
        mrc = mrc ? mrc : mdb_del(txn, ldb->meta, &rk, NULL);
        mrc = mrc == MDB_NOTFOUND ? 0 : mrc;
        k = key_of(kb, RIX_KEY, (const uint8_t *)"\0\0\0\0\0\0\0\0", 8);
    }
    mdb_cursor_close(cur);
    return mrc ? sprig__mdb_err(mrc, "pruning the request-id table") : 0;
}

int
sprig__rid_record(sprig__ldb *ldb, MDB_txn *txn, const sprig__cmd *cmd,
                  const sprig__cmd_out *out)
{
    sprig_buf b = {0};
    uint8_t ib[8];
    sprig__put_u64be(ib, cmd->raft_index);
    int rc = sprig_buf_append(&b, ib, 8);
    rc = rc                            ? rc
         : cmd->kind == SPRIG__CMD_TXN ? enc_txn(&b, out)
                                       : enc_kv(&b, out);
    uint8_t kb[PFX + 16], xb[PFX + 8];
    MDB_val k = key_of(kb, RID_KEY, cmd->rid, 16), v = {b.len, b.data};
    MDB_val xk = key_of(xb, RIX_KEY, ib, 8), xv = {16, (void *)cmd->rid};
    int mrc = rc ? 0 : mdb_put(txn, ldb->meta, &k, &v, 0);
    mrc = rc || mrc ? mrc : mdb_put(txn, ldb->meta, &xk, &xv, 0);
    sprig_buf_clear(&b);
    if (rc || mrc) {
        return rc ? rc : sprig__mdb_err(mrc, "recording a request id");
    }
    return cmd->raft_index > SPRIG__RID_WINDOW
               ? prune(ldb, txn, cmd->raft_index - SPRIG__RID_WINDOW)
               : SPRIG_OK;
}
