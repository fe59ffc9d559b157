/*
 * kv.c -- the key-value store of a local database (F6): opening its tables,
 * the record format, and the operations behind the sprig_db_ops kv_*
 * entries.  Layout and invariants are in kv.h; the expiry index, sweeper
 * and lazy flusher in kv_expiry.c.
 *
 * Design notes.  Every change is one KV command (src/core/cmd.h) through
 * the database's writer, so it is applied by the group-commit leader inside
 * an LMDB write transaction (straight into the batch's shared transaction):
 * a read-modify-write such as an increment sees no concurrent change, and
 * concurrent increments never lose an update.  The command carries its
 * time (`now_ms`, from the storage's clock when accepted) and an absolute
 * expiry, so applying it reads no clock.  Commands in lazy mode are marked
 * `lazy`, which lets the writer commit a batch made only of them without
 * fsync (writer.c).  Plain reads (get,
 * list) run in a pooled read snapshot and never wait for writers.
 *
 * Expiry is checked wherever a record is read, against one clock reading
 * per operation (a write: its command's time): an expired record is absent.  A
 * write that meets one removes it (record and index entry) in its own
 * transaction before going on as if the key were vacant, so what a write
 * reports never depends on whether the sweeper has been by.
 *
 * A write request may be applied more than once (when the map grows), so
 * each apply function resets its outputs first.
 */
#include "kv.h"
#include "core/cmd.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

/* ---- opening and closing ---------------------------------------------- */

int
sprig__kv_open(sprig__ldb *ldb)
{
    sprig__kv *kv = sprig__calloc(1, sizeof *kv);
    if (!kv) {
        return sprig__err(SPRIG_ENOMEM, "out of memory opening a database");
    }
    const sprig_storage_options *o = &ldb->st->opts;
    /* `none` syncs nothing per write (its checkpoints do, for all writes
     * alike): a lazy flush would only add syncs, so lazy means immediate
     * there, and the log keeps the suffix rule for both */
    bool syncs = !o->memory_only && o->durability != SPRIG_DURABILITY_NONE;
    kv->ldb = ldb;
    kv->lazy = syncs && o->kv_persistence.mode == SPRIG_KV_LAZY;
    kv->lazy_changes = o->kv_persistence.lazy_changes;
    kv->lazy_ms = o->kv_persistence.lazy_ms;
    kv->clock_ms = o->clock_ms;
    kv->clock_udata = o->clock_udata;
    const char *names[2] = {"kv", "kv.exp"};
    MDB_dbi dbis[2];
    int rc = sprig__env_open_dbis(ldb->env, names, 2, dbis);
    if (rc == 0) {
        kv->data = dbis[0];
        kv->exp = dbis[1];
        rc = sprig__kv_housekeeper_init(kv);
        kv->stop = o->read_only; /* read-only: expiry is not swept */
    }
    if (rc) {
        sprig__free(kv);
        return rc;
    }
    ldb->kv = kv;
    sprig__kv_expiry_scan(kv);
    return SPRIG_OK;
}

void
sprig__kv_close(sprig__ldb *ldb)
{
    sprig__kv *kv = ldb->kv;
    if (!kv) {
        return;
    }
    sprig__kv_housekeeper_fini(kv);
    /* "flushed on close": whatever lazy commits are waiting reach the disk
     * before the environment closes. */
    if (atomic_exchange(&ldb->writer.unsynced, 0) != 0) {
        sprig__ckpt_flush(ldb->env); /* the log, or LMDB */
    }
    sprig_buf_clear(&kv->wenc);
    sprig_buf_clear(&kv->wdec);
    sprig__free(kv);
    ldb->kv = NULL;
}

uint64_t
sprig__kv_now(const sprig__kv *kv)
{
    if (kv->clock_ms) {
        return kv->clock_ms(kv->clock_udata);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
sprig__kv_of(sprig_db *db, sprig__kv **out)
{
    sprig__ldb *ldb = sprig__db_ldb(db);
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    *out = ldb->kv;
    return SPRIG_OK;
}

/* ---- keys and records ------------------------------------------------- */

static void
key_make(sprig__kv_key *k, const char *ns, const char *name)
{
    size_t a = strlen(ns), b = strlen(name); /* checked by kv_api.c */
    memcpy(k->b, ns, a);
    k->b[a] = 0;
    memcpy(k->b + a + 1, name, b);
    k->len = a + 1 + b;
}

static uint64_t
value_bits(const sprig_value *v)
{
    uint64_t b;
    memcpy(&b, &v->num, sizeof b);
    return b;
}

int
sprig__kv_rec_parse(const MDB_val *v, sprig__kv_rec *r)
{
    const uint8_t *p = v->mv_data;
    uint8_t kind = v->mv_size ? p[0] & 0x0f : 0;
    uint8_t flags = v->mv_size ? p[0] >> 4 : 0;
    if (v->mv_size < SPRIG__KV_REC_HDR || kind > SPRIG_VALUE_F64 ||
        (flags & ~SPRIG__CF_ALL) ||
        (!flags && kind != SPRIG_VALUE_BYTES &&
         v->mv_size != SPRIG__KV_REC_HDR + 8)) {
        return sprig__err(SPRIG_ECORRUPT,
                          "stored key-value record is malformed (%zu bytes, "
                          "kind %d)",
                          v->mv_size, v->mv_size ? p[0] : -1);
    }
    r->kind = (sprig_value_kind)kind;
    r->flags = flags;
    r->expire_at = sprig__get_u64be(p + 1);
    r->payload.data = p + SPRIG__KV_REC_HDR;
    r->payload.len = v->mv_size - SPRIG__KV_REC_HDR;
    r->bits = r->kind == SPRIG_VALUE_BYTES || flags
                  ? 0
                  : sprig__get_u64be(p + SPRIG__KV_REC_HDR);
    return SPRIG_OK;
}

int
sprig__kv_rec_decode(const sprig__kv *kv, const MDB_val *k, sprig__kv_rec *r,
                     sprig_buf *scratch)
{
    if (!r->flags && !kv->ldb->crc_all) {
        return SPRIG_OK;
    }
    uint8_t h[SPRIG__KV_REC_HDR] = {(uint8_t)r->kind};
    sprig__put_u64be(h + 1, r->expire_at);
    sprig__vloc l =
        sprig__ldb_loc(kv->ldb, 'k', "", (sprig_bytes){k->mv_data, k->mv_size});
    l.hdr = (sprig_bytes){h, sizeof h}; /* kind and expiry, without flags */
    int rc = sprig__codec_decode(kv->ldb->vault, &l, r->flags, r->payload,
                                 scratch, &r->payload);
    if (rc == 0 && r->kind != SPRIG_VALUE_BYTES) {
        if (r->payload.len != 8) {
            return sprig__err(SPRIG_ECORRUPT, "a stored number has %zu bytes",
                              r->payload.len);
        }
        r->bits = sprig__get_u64be(r->payload.data);
    }
    r->flags = 0;
    return rc;
}

/* Write record k = (kind, payload or bits, exp) and move its index entry
 * from old_exp (when `had` a record) to exp. */
static int
rec_put(MDB_txn *txn, sprig__kv *kv, MDB_val *k, sprig_value_kind kind,
        sprig_bytes payload, uint64_t bits, uint64_t exp, bool had,
        uint64_t old_exp)
{
    uint8_t num[8], cf = 0, h[SPRIG__KV_REC_HDR] = {(uint8_t)kind};
    if (kind != SPRIG_VALUE_BYTES) {
        sprig__put_u64be(num, bits);
        payload = (sprig_bytes){num, 8};
    }
    sprig__put_u64be(h + 1, exp);
    sprig__vloc l =
        sprig__ldb_loc(kv->ldb, 'k', "", (sprig_bytes){k->mv_data, k->mv_size});
    l.hdr = (sprig_bytes){h, sizeof h}; /* kind and expiry, without flags */
    int rc = sprig__codec_encode(&kv->ldb->kv_codec, &l, payload, &kv->wenc,
                                 &cf, &payload);
    if (rc) {
        return rc;
    }
    MDB_val d = {SPRIG__KV_REC_HDR + payload.len, NULL};
    int mrc = mdb_put(txn, kv->data, k, &d, MDB_RESERVE);
    if (mrc) {
        return sprig__mdb_err(mrc, "writing a key-value record");
    }
    uint8_t *p = d.mv_data;
    p[0] = (uint8_t)(kind | cf << 4);
    sprig__put_u64be(p + 1, exp);
    if (payload.len) {
        memcpy(p + SPRIG__KV_REC_HDR, payload.data, payload.len);
    }
    if (had && old_exp == exp) {
        return SPRIG_OK;
    }
    rc = had && old_exp ? sprig__kv_exp_del(txn, kv, k, old_exp) : 0;
    return rc ? rc : exp ? sprig__kv_exp_put(txn, kv, k, exp) : 0;
}

/* Remove record k (whose expiry is `exp`) and its index entry. */
static int
rec_del(MDB_txn *txn, sprig__kv *kv, MDB_val *k, uint64_t exp)
{
    int rc = sprig__mdb_err(mdb_del(txn, kv->data, k, NULL),
                            "deleting a key-value record");
    return rc ? rc : exp ? sprig__kv_exp_del(txn, kv, k, exp) : 0;
}

/* A stored record checked against its encoded key (miss.c). */
static int
rec_check(void *arg, const MDB_val *k, MDB_val *v, sprig_buf *scratch)
{
    sprig__kv_rec r;
    int rc = sprig__kv_rec_parse(v, &r);
    return rc ? rc : sprig__kv_rec_decode(arg, k, &r, scratch);
}

/* A lookup of k missed: SPRIG_OK when its neighbours confirm it (a key
 * renamed in order would sit there, failing its CRC), else
 * SPRIG_ECORRUPT. */
static int
miss_confirm(MDB_txn *txn, sprig__kv *kv, const MDB_val *k)
{
    char where[300];
    snprintf(where, sizeof where, "database '%s', key-value store",
             kv->ldb->name);
    sprig__miss_site s = {rec_check, kv, where, "key"};
    return sprig__miss_confirm(txn, kv->data, k, &s);
}

/* Find the live record of k in a write: an expired one is removed and
 * counts as absent.  A miss is confirmed by the neighbours when `confirm`
 * (a delete, a get-and-delete: their "not found" is an answer); a set's
 * or an increment's creates the key, as a document insert does (not
 * checked: the cost, docs/reliability.md). */
static int
load_live(MDB_txn *txn, sprig__kv *kv, MDB_val *k, uint64_t now, bool confirm,
          sprig__kv_rec *r, bool *found)
{
    MDB_val v;
    *found = false;
    memset(r, 0, sizeof *r);
    int mrc = mdb_get(txn, kv->data, k, &v);
    if (mrc == MDB_NOTFOUND) {
        return confirm ? miss_confirm(txn, kv, k) : SPRIG_OK;
    }
    if (mrc) {
        return sprig__mdb_err(mrc, "reading a key-value record");
    }
    int rc = sprig__kv_rec_parse(&v, r);
    rc = rc ? rc : sprig__kv_rec_decode(kv, k, r, &kv->wdec);
    if (rc) {
        return rc;
    }
    if (r->expire_at && r->expire_at <= now) {
        uint64_t exp = r->expire_at;
        memset(r, 0, sizeof *r); /* absent: no value, no expiry */
        return rec_del(txn, kv, k, exp);
    }
    *found = true;
    return SPRIG_OK;
}

/* ---- numbers ---------------------------------------------------------- */

static int
out_of_range(const sprig_value *cur, bool up)
{
    static const char *const names[] = {"bytes", "i64", "u64", "f64"};
    return sprig__err(SPRIG_ERANGE,
                      "the result would be %s the range of %s (ask for a "
                      "saturating step to clamp it)",
                      up ? "above" : "below", names[cur->kind]);
}

static int
f64_step(sprig_value *cur, const sprig_value *amt, bool sub, bool sat)
{
    double a = amt->kind == SPRIG_VALUE_F64   ? amt->num.f64
               : amt->kind == SPRIG_VALUE_I64 ? (double)amt->num.i64
                                              : (double)amt->num.u64;
    double r = sub ? cur->num.f64 - a : cur->num.f64 + a;
    if (isinf(r) && isfinite(cur->num.f64)) {
        if (!sat) {
            return out_of_range(cur, r > 0);
        }
        r = r > 0 ? DBL_MAX : -DBL_MAX;
    }
    cur->num.f64 = r;
    return SPRIG_OK;
}

/* cur (i64 or u64) +/- amt (i64 or u64), exactly, clamped when `sat`. */
static int
int_step(sprig_value *cur, const sprig_value *amt, bool sub, bool sat)
{
    bool neg = amt->kind == SPRIG_VALUE_I64 && amt->num.i64 < 0;
    bool up = sub ? neg : !neg; /* where an overflow would go */
    bool ovf;
    if (cur->kind == SPRIG_VALUE_I64) {
        int64_t r, c = cur->num.i64;
        if (amt->kind == SPRIG_VALUE_I64) {
            ovf = sub ? __builtin_sub_overflow(c, amt->num.i64, &r)
                      : __builtin_add_overflow(c, amt->num.i64, &r);
        } else {
            ovf = sub ? __builtin_sub_overflow(c, amt->num.u64, &r)
                      : __builtin_add_overflow(c, amt->num.u64, &r);
        }
        if (ovf && !sat) {
            return out_of_range(cur, up);
        }
        cur->num.i64 = ovf ? (up ? INT64_MAX : INT64_MIN) : r;
        return SPRIG_OK;
    }
    uint64_t r, c = cur->num.u64;
    if (amt->kind == SPRIG_VALUE_I64) {
        ovf = sub ? __builtin_sub_overflow(c, amt->num.i64, &r)
                  : __builtin_add_overflow(c, amt->num.i64, &r);
    } else {
        ovf = sub ? __builtin_sub_overflow(c, amt->num.u64, &r)
                  : __builtin_add_overflow(c, amt->num.u64, &r);
    }
    if (ovf && !sat) {
        return out_of_range(cur, up);
    }
    cur->num.u64 = ovf ? (up ? UINT64_MAX : 0) : r;
    return SPRIG_OK;
}

/* The type rules of sprig_kv_increment() (see sprig.h). */
static int
num_step(sprig_value *cur, const sprig_value *amt, bool sub, bool sat)
{
    if (cur->kind == SPRIG_VALUE_F64) {
        return f64_step(cur, amt, sub, sat);
    }
    if (amt->kind == SPRIG_VALUE_F64) {
        return sprig__err(SPRIG_EINVAL,
                          "an f64 amount cannot change an integer value (it "
                          "would drop the fraction); use an i64 or u64 "
                          "amount");
    }
    return int_step(cur, amt, sub, sat);
}

/* ---- applying KV commands ------------------------------------------ */

/* Copy record r into the command's output value. */
static int
capture(sprig__cmd_out *o, const sprig__kv_rec *r)
{
    sprig_value_clear(&o->value);
    return sprig__value_set(&o->value, r->kind, r->payload, r->bits);
}

static int
apply_set(MDB_txn *txn, sprig__kv *kv, const sprig__cmd *c, sprig__cmd_out *o,
          MDB_val *k)
{
    sprig__kv_rec old;
    uint64_t now = c->now_ms;
    int rc = load_live(txn, kv, k, now, false, &old, &o->found);
    if (rc == 0 && o->found && c->want_value) {
        rc = capture(o, &old);
    }
    if (rc) {
        return rc;
    }
    if ((c->check == SPRIG_KV_ONLY_IF_VACANT && o->found) ||
        (c->check == SPRIG_KV_ONLY_IF_PRESENT && !o->found)) {
        o->status = SPRIG_KV_NOT_CHANGED;
        return SPRIG_OK;
    }
    uint64_t exp =
        c->keep_expiration && o->found ? old.expire_at : c->expire_at;
    if (exp && exp <= now) { /* already expired: as Redis's SET EXAT */
        o->status = o->found ? SPRIG_KV_DELETED : SPRIG_KV_NOT_CHANGED;
        return o->found ? rec_del(txn, kv, k, old.expire_at) : SPRIG_OK;
    }
    o->status = o->found ? SPRIG_KV_UPDATED : SPRIG_KV_INSERTED;
    o->stored_exp = exp;
    return rec_put(txn, kv, k, c->value.kind, c->value.bytes,
                   value_bits(&c->value), exp, o->found, old.expire_at);
}

/* get-and-delete and delete */
static int
apply_remove(MDB_txn *txn, sprig__kv *kv, const sprig__cmd *c,
             sprig__cmd_out *o, MDB_val *k)
{
    sprig__kv_rec old;
    int rc = load_live(txn, kv, k, c->now_ms, true, &old, &o->found);
    if (rc || !o->found) {
        o->status = SPRIG_KV_NOT_CHANGED;
        return rc;
    }
    rc = c->want_value ? capture(o, &old) : 0;
    o->status = SPRIG_KV_DELETED;
    return rc ? rc : rec_del(txn, kv, k, old.expire_at);
}

static int
apply_incr(MDB_txn *txn, sprig__kv *kv, const sprig__cmd *c, sprig__cmd_out *o,
           MDB_val *k)
{
    sprig__kv_rec old;
    int rc = load_live(txn, kv, k, c->now_ms, false, &old, &o->found);
    if (rc) {
        return rc;
    }
    sprig_value cur = {0};
    cur.kind = o->found ? old.kind : c->value.kind;
    if (o->found) {
        memcpy(&cur.num, &old.bits, sizeof old.bits);
    }
    if (cur.kind == SPRIG_VALUE_BYTES) {
        return sprig__err(SPRIG_EINVAL,
                          "key '%s' holds bytes, which cannot be "
                          "incremented",
                          c->key);
    }
    rc = num_step(&cur, &c->value, c->decrement, c->saturating);
    if (rc) {
        return rc;
    }
    o->status = o->found ? SPRIG_KV_UPDATED : SPRIG_KV_INSERTED;
    sprig_value_clear(&o->value);
    o->value = cur;
    return rec_put(txn, kv, k, cur.kind, (sprig_bytes){0}, value_bits(&cur),
                   old.expire_at, o->found, old.expire_at);
}

int
sprig__kv_apply_cmd(MDB_txn *txn, sprig__kv *kv, const sprig__cmd *c,
                    sprig__cmd_out *o)
{
    o->status = 0;
    o->found = false;
    o->stored_exp = 0;
    o->log_id = 0;
    sprig_value_clear(&o->value);
    o->value.kind = SPRIG_VALUE_NONE;
    sprig__kv_key key;
    key_make(&key, c->ns, c->key);
    MDB_val k = {key.len, key.b};
    int rc;
    switch (c->kv) {
    case SPRIG__KV_SET: rc = apply_set(txn, kv, c, o, &k); break;
    case SPRIG__KV_TAKE:
    case SPRIG__KV_DEL: rc = apply_remove(txn, kv, c, o, &k); break;
    case SPRIG__KV_INCR: rc = apply_incr(txn, kv, c, o, &k); break;
    default: return sprig__err(SPRIG_EINVAL, "unknown key-value change");
    }
    if (rc || o->status == SPRIG_KV_NOT_CHANGED) {
        return rc;
    }
    return sprig__log_write1(txn, kv->ldb->log, c->now_ms, SPRIG__LOG_KV,
                             (sprig_bytes){key.b, key.len}, 0,
                             o->status == SPRIG_KV_DELETED, &o->log_id);
}

/* After a committed change: tell the housekeeper what it needs to know. */
void
sprig__kv_after_commit(sprig__kv *kv, const sprig__cmd *c)
{
    if (kv->lazy) {
        sprig__kv_lazy_note(kv);
    }
    if (c->out.stored_exp) {
        sprig__kv_expiry_note(kv, c->out.stored_exp);
    }
}

/* Start KV command `c` of `kind` on (ns, key), accepted now. */
static int
prepare(sprig_db *db, sprig__cmd *c, sprig__kv_cmd_kind kind, const char *ns,
        const char *key)
{
    memset(c, 0, sizeof *c);
    sprig__kv *kv = NULL;
    int rc = sprig__kv_of(db, &kv);
    if (rc) {
        return rc;
    }
    c->kind = SPRIG__CMD_KV;
    c->kv = kind;
    c->ns = ns;
    c->key = key;
    c->now_ms = sprig__kv_now(kv);
    c->lazy = kv->lazy;
    return SPRIG_OK;
}

/* Hand the command's output value to `out` (the bytes move, no copy). */
static void
give_value(sprig__cmd *c, sprig_value *out)
{
    *out = c->out.value;
    memset(&c->out.value, 0, sizeof c->out.value);
}

/* The absolute expiry of a set accepted at `now`. */
static uint64_t
set_expiry(const sprig_kv_set_opts *so, uint64_t now)
{
    uint64_t at;
    if (!so->expire_in_ms) {
        return so->expire_at_ms;
    }
    return __builtin_add_overflow(now, so->expire_in_ms, &at) ? UINT64_MAX : at;
}

/* ---- sprig_db_ops entries ---------------------------------------------- */

int
sprig__kv_op_set(sprig_db *db, const char *ns, const char *key,
                 const sprig_value *v, const sprig_kv_set_opts *so,
                 sprig_kv_status *status, sprig_value *previous)
{
    sprig__cmd c;
    int rc = prepare(db, &c, SPRIG__KV_SET, ns, key);
    if (rc) {
        return rc;
    }
    c.value = *v;
    c.value.owned_ = NULL;
    c.check = so->check;
    c.keep_expiration = so->keep_expiration;
    c.expire_at = set_expiry(so, c.now_ms);
    c.want_value = previous != NULL;
    rc = sprig__ldb_run(sprig__db_ldb(db), &c);
    if (rc == 0) {
        *status = c.out.status;
        if (previous && c.out.found) {
            give_value(&c, previous);
        }
    }
    sprig__cmd_clear(&c);
    return rc;
}

int
sprig__kv_op_get(sprig_db *db, const char *ns, const char *key, bool and_delete,
                 sprig_value *out)
{
    sprig__cmd c;
    int rc = prepare(db, &c, SPRIG__KV_TAKE, ns, key);
    if (rc) {
        return rc;
    }
    if (!and_delete) {
        sprig__kv_key k;
        key_make(&k, ns, key);
        return sprig__kv_read(sprig__db_ldb(db)->kv, &k, key, out);
    }
    c.want_value = out != NULL;
    rc = sprig__ldb_run(sprig__db_ldb(db), &c);
    if (rc == 0 && !c.out.found) {
        rc = sprig__err_about(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_KEY,
                              "no key '%s' in namespace '%s'", key, ns);
        sprig__errinfo_ns(ns);
        sprig__errinfo_key(sprig_str(key));
    }
    if (rc == 0 && out) {
        give_value(&c, out);
    }
    sprig__cmd_clear(&c);
    return rc;
}

int
sprig__kv_op_incr(sprig_db *db, const char *ns, const char *key,
                  const sprig_value *amount, bool decrement, bool saturating,
                  sprig_value *out)
{
    sprig__cmd c;
    int rc = prepare(db, &c, SPRIG__KV_INCR, ns, key);
    if (rc) {
        return rc;
    }
    c.value = *amount;
    c.value.owned_ = NULL;
    c.decrement = decrement;
    c.saturating = saturating;
    rc = sprig__ldb_run(sprig__db_ldb(db), &c);
    if (rc == 0 && out) {
        give_value(&c, out);
    }
    sprig__cmd_clear(&c);
    return rc;
}

int
sprig__kv_op_delete(sprig_db *db, const char *ns, const char *key,
                    sprig_kv_status *status)
{
    sprig__cmd c;
    int rc = prepare(db, &c, SPRIG__KV_DEL, ns, key);
    rc = rc ? rc : sprig__ldb_run(sprig__db_ldb(db), &c);
    if (rc == 0) {
        *status = c.out.status;
    }
    sprig__cmd_clear(&c);
    return rc;
}

/* ---- reads ------------------------------------------------------------ */

int
sprig__kv_read(sprig__kv *kv, const sprig__kv_key *key, const char *name,
               sprig_value *out)
{
    MDB_txn *txn;
    int rc = sprig__env_read_begin(kv->ldb->env, &txn);
    if (rc) {
        return rc;
    }
    uint64_t now = sprig__kv_now(kv);
    MDB_val k = {key->len, (void *)key->b}, v;
    sprig__kv_rec r;
    int mrc = mdb_get(txn, kv->data, &k, &v);
    if (mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "reading a key-value record");
    } else if (mrc) { /* confirmed by the neighbours */
        rc = miss_confirm(txn, kv, &k);
        rc = rc ? rc : SPRIG_ENOTFOUND;
    } else {
        rc = sprig__kv_rec_parse(&v, &r);
    }
    sprig_buf scratch = {0};
    /* decoded first: its CRC (or tag) covers the expiry judged next */
    rc = rc ? rc : sprig__kv_rec_decode(kv, &k, &r, &scratch);
    if (rc == 0 && r.expire_at && r.expire_at <= now) {
        rc = SPRIG_ENOTFOUND;
    }
    if (rc == SPRIG_ENOTFOUND) {
        rc = sprig__err_about(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_KEY,
                              "no key '%s' in namespace '%s'", name,
                              (const char *)key->b);
        sprig__errinfo_ns((const char *)key->b);
        sprig__errinfo_key(sprig_str(name));
    } else if (rc == 0 && out) {
        rc = sprig__value_set(out, r.kind, r.payload, r.bits);
    }
    sprig_buf_clear(&scratch);
    sprig__env_read_end(kv->ldb->env, txn);
    return rc;
}

/* Does the encoded key k start with the encoded prefix p? */
static bool
has_prefix(const MDB_val *k, const sprig__kv_key *p)
{
    return k->mv_size >= p->len && memcmp(k->mv_data, p->b, p->len) == 0;
}

/* Position the cursor on the first candidate of a listing. */
static int
list_first(MDB_cursor *cur, const char *ns, const char *prefix,
           const char *after, MDB_val *k, MDB_val *v)
{
    sprig__kv_key start;
    bool skip_equal = after && strcmp(after, prefix) >= 0;
    key_make(&start, ns, skip_equal ? after : prefix);
    k->mv_size = start.len;
    k->mv_data = start.b;
    int mrc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (mrc == 0 && skip_equal && k->mv_size == start.len &&
        memcmp(k->mv_data, start.b, start.len) == 0) {
        mrc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    }
    return mrc;
}

static int
list_walk(sprig__kv *kv, MDB_txn *txn, const char *ns, const char *prefix,
          const char *after, uint32_t limit, sprig_kv_key_list *l)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, kv->data, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    sprig__kv_key lo;
    key_make(&lo, ns, prefix);
    size_t ns_len = strlen(ns) + 1;
    uint64_t now = sprig__kv_now(kv);
    int rc = SPRIG_OK;
    sprig_buf scratch = {0};
    mrc = list_first(cur, ns, prefix, after, &k, &v);
    while (mrc == 0 && rc == 0 && (limit == 0 || l->n < limit) &&
           has_prefix(&k, &lo)) {
        sprig__kv_rec r;
        rc = sprig__kv_rec_parse(&v, &r);
        /* decoded first: its CRC (or tag) covers the expiry */
        rc = rc ? rc : sprig__kv_rec_decode(kv, &k, &r, &scratch);
        bool live = rc == 0 && !(r.expire_at && r.expire_at <= now);
        if (live && rc == 0) {
            sprig_value val = {0};
            val.kind = r.kind;
            val.bytes = r.payload;
            memcpy(&val.num, &r.bits, sizeof r.bits);
            sprig_bytes name = {(uint8_t *)k.mv_data + ns_len,
                                k.mv_size - ns_len};
            rc = sprig__kv_list_push(l, name, &val, r.expire_at);
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    sprig_buf_clear(&scratch);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "listing keys");
    }
    return rc;
}

int
sprig__kv_op_list(sprig_db *db, const char *ns, const char *prefix,
                  const char *after, uint32_t limit, sprig_kv_key_list **out)
{
    sprig__kv *kv = NULL;
    MDB_txn *txn;
    int rc = sprig__kv_of(db, &kv);
    if (rc || (rc = sprig__env_read_begin(kv->ldb->env, &txn))) {
        return rc;
    }
    sprig_kv_key_list *l = sprig__calloc(1, sizeof *l);
    rc = l ? list_walk(kv, txn, ns, prefix, after, limit, l)
           : sprig__err(SPRIG_ENOMEM, "out of memory listing keys");
    sprig__env_read_end(kv->ldb->env, txn);
    if (rc) {
        sprig_kv_key_list_free(l);
        return rc;
    }
    *out = l;
    return SPRIG_OK;
}
