/*
 * miss.c -- a point lookup's "not found" confirmed by its neighbours
 * (issue 17, item 3).
 *
 * Every stored value's CRC-32C (or an encrypted value's tag) covers its
 * key, so a flipped key byte makes that record's own read SPRIG_ECORRUPT,
 * and the page verifier at open refuses keys out of order.  A flipped byte
 * that keeps the order -- id "user-4f1c" become "user-4f1d" between its
 * neighbours -- would still make a lookup of the OLD key answer "not
 * found", a wrong answer presented as right.  A renamed key k -> k' stays
 * in order, so k' is the immediate successor or predecessor of where k
 * would be: when a lookup misses, sprig__miss_confirm() positions a
 * cursor there (MDB_SET_RANGE, then MDB_PREV; MDB_LAST past the end) and
 * has the caller check both neighbours' records against their own keys.
 * A neighbour that fails is SPRIG_ECORRUPT naming the place, the
 * neighbour's key and the asked one; values that carry no CRC (formats
 * 1-2) pass the caller's check, and the miss stands as before.
 *
 * Only the miss path runs this: a hit never opens the cursor.
 */
#include "local.h"

#include <stdio.h>

/* `b` printable (at most 48 bytes, the rest "..."): bytes outside
 * printable ASCII and quotes as \xNN. */
static void
key_show(const MDB_val *b, char *out, size_t cap)
{
    const uint8_t *p = b->mv_data;
    size_t o = 0, n = b->mv_size > 48 ? 48 : b->mv_size;
    out[0] = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        bool plain =
            p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'' && p[i] != '\\';
        int w = plain ? snprintf(out + o, cap - o, "%c", p[i])
                      : snprintf(out + o, cap - o, "\\x%02x", p[i]);
        o += (size_t)w;
    }
    if (n < b->mv_size && o + 4 < cap) {
        snprintf(out + o, cap - o, "...");
    }
}

/* Check the neighbour (nk, nv): SPRIG_OK, or SPRIG_ECORRUPT naming it. */
static int
check_one(const sprig__miss_site *s, const MDB_val *k, MDB_val *nk, MDB_val *nv,
          sprig_buf *scratch)
{
    int rc = s->check(s->arg, nk, nv, scratch);
    if (rc != SPRIG_ECORRUPT && rc != SPRIG_EAUTH) {
        return rc;
    }
    char why[300], asked[200], near[200];
    snprintf(why, sizeof why, "%s", sprig_errmsg());
    key_show(k, asked, sizeof asked);
    key_show(nk, near, sizeof near);
    return sprig__err(SPRIG_ECORRUPT,
                      "%s: a lookup of %s '%s' cannot be answered: its "
                      "neighbour '%s' does not match its own key (%s); that "
                      "record may be the one asked for, its key damaged",
                      s->where, s->key_kind, asked, near, why);
}

int
sprig__miss_confirm(MDB_txn *txn, MDB_dbi dbi, const MDB_val *k,
                    const sprig__miss_site *s)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    sprig_buf scratch = {0};
    MDB_val nk = *k, nv;
    int rc = SPRIG_OK;
    mrc = mdb_cursor_get(cur, &nk, &nv, MDB_SET_RANGE);
    if (mrc == 0) { /* the successor, then the predecessor */
        rc = check_one(s, k, &nk, &nv, &scratch);
        mrc = rc ? 0 : mdb_cursor_get(cur, &nk, &nv, MDB_PREV);
    } else if (mrc == MDB_NOTFOUND) { /* past the end: the last one */
        mrc = mdb_cursor_get(cur, &nk, &nv, MDB_LAST);
    }
    if (rc == 0 && mrc == 0) {
        rc = check_one(s, k, &nk, &nv, &scratch);
    }
    mdb_cursor_close(cur);
    sprig_buf_clear(&scratch);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "checking a lookup's neighbours");
    }
    return rc;
}

/* ---- documents ----------------------------------------------------------- */

/* A stored document checked against its key (id): parse, then decode
 * (CRC or tag).  arg: the sprig__miss_doc. */
static int
doc_check(void *arg, const MDB_val *k, MDB_val *v, sprig_buf *scratch)
{
    const sprig__miss_doc *d = arg;
    uint64_t rev;
    const uint8_t *hash;
    sprig_bytes contents, id = {k->mv_data, k->mv_size};
    return sprig__doc_read(d->ldb, d->c, id, v, &rev, &hash, &contents,
                           scratch);
}

int
sprig__miss_doc_confirm(MDB_txn *txn, const sprig__ldb *ldb,
                        const sprig__coll *c, const MDB_val *k)
{
    char where[400];
    sprig__miss_doc d = {ldb, c};
    snprintf(where, sizeof where, "database '%s', collection '%s'", ldb->name,
             c->name);
    sprig__miss_site s = {doc_check, &d, where, "document id"};
    return sprig__miss_confirm(txn, c->dbi, k, &s);
}
