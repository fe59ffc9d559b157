/*
 * view_index.c -- keeping view indexes current: mapping documents and
 * applying the difference to the tables described in views.h.
 *
 * Design notes.  Everything here runs inside a write request of the
 * database's writer (possibly nested in a group commit, possibly re-run
 * after the map grew), writes only through the given MDB_txn, and keeps
 * nothing between calls but scratch memory.
 *
 * Re-mapping document X (remap):
 *   1. map X (nothing when deleted) into the sorted pair list `new`;
 *   2. read `old` = d[X] (copied: LMDB pointers die at the next write);
 *   3. equal lists: at most refresh X's revision in d[X], done;
 *   4. merge old and new by key: a key only in new gets (K, X) in e (for a
 *      unique view, after checking no other id has K), a key only in old
 *      loses it; keys whose values differ are remembered;
 *   5. write d[X] (or delete it when X emits nothing);
 *   6. for each remembered key, update r[K]: additions fold into the stored
 *      result (re-reduce), removals are undone when the built-in reduce
 *      can do that exactly (count; sum of integers; min/max unless the
 *      extreme goes), otherwise r[K] is recomputed from K's mappings.
 * Steps 1 and 2 read before anything is written, so the contents and
 * values the map and reduce functions see stay valid while they run.
 */
#include "views.h"

#include <math.h>
#include <stdio.h>

#define B(v) ((sprig_bytes){(v).mv_data, (v).mv_size})
#define V(b) ((MDB_val){(b).len, (void *)(b).data})

struct sprig__vgroup {
    size_t o, on, n, nn; /* old pairs [o, o+on), new pairs [n, n+nn) */
};

void
sprig__vscratch_free(sprig__vscratch *s)
{
    sprig__emitter_free(&s->em);
    sprig_buf_clear(&s->newrec);
    sprig_buf_clear(&s->oldrec);
    sprig_buf_clear(&s->tmp);
    sprig_buf_clear(&s->enc);
    sprig_buf_clear(&s->dec);
    sprig_buf_clear(&s->kvals);
    sprig_buf_clear(&s->docbuf);
    sprig__free(s->kofs);
    sprig__free(s->vals);
    sprig__free(s->pairs);
    sprig__free(s->groups);
    sprig__free(s->doc);
    memset(s, 0, sizeof *s);
}

/* Make room for one more element of an (array, n, cap) triple. */
static int
grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return SPRIG_OK;
    }
    size_t c = *cap ? *cap * 2 : 16;
    void *p = sprig__realloc(*arr, c * elem);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory indexing a view");
    }
    *arr = p;
    *cap = c;
    return SPRIG_OK;
}

static const char *
vname(const sprig__view *v)
{
    return v->def->name;
}

/* A short printable form of a key for messages. */
static void
key_text(sprig_bytes key, char *out, size_t n)
{
    sprig_buf b = {0};
    if (sprig_key_to_json(key, &b) == 0 && b.len < n) {
        snprintf(out, n, "%.*s", (int)b.len, (const char *)b.data);
    } else {
        size_t k = 0;
        const uint8_t *p = key.data;
        for (size_t i = 0; i < key.len && k + 3 < n; i++, k += 2) {
            snprintf(out + k, 3, "%02x", p[i]);
        }
        out[k] = 0;
    }
    sprig_buf_clear(&b);
}

/* A short printable form of a document id for messages: as it is when
 * printable, in hex otherwise. */
static void
id_text(sprig_bytes id, char *out, size_t n)
{
    const uint8_t *p = id.data;
    bool printable = id.len + 1 < n;
    for (size_t i = 0; printable && i < id.len; i++) {
        printable = p[i] >= 0x20 && p[i] < 0x7F;
    }
    if (printable) {
        snprintf(out, n, "'%.*s'", (int)id.len, (const char *)p);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < id.len && k + 3 < n; i++, k += 2) {
        snprintf(out + k, 3, "%02x", p[i]);
    }
    out[k] = 0;
}

int
sprig__view_entry_corrupt(const sprig__view *v, sprig_bytes key, sprig_bytes id)
{
    char kt[120], it[120];
    key_text(key, kt, sizeof kt);
    id_text(id, it, sizeof it);
    return sprig__err(SPRIG_ECORRUPT,
                      "view '%s' of collection '%s': the index entry (key "
                      "%s, document %s) is not among what the document "
                      "emitted (its CRC-checked record): the view's "
                      "entries table is damaged",
                      vname(v), v->coll->name, kt, it);
}

int
sprig__view_pairs_have(sprig_bytes pl, sprig_bytes key, bool *found)
{
    sprig__pairs it;
    sprig__pair p;
    int more = 0, rc = sprig__pairs_init(&it, pl);
    *found = false;
    while (rc == 0 && !*found && (more = sprig__pairs_next(&it, &p)) == 1) {
        *found = sprig__bytes_cmp(p.key, key) == 0;
    }
    return rc ? rc : more < 0 ? more : SPRIG_OK;
}

/* ---- stored values through the codec ---------------------------------------
 */

static sprig__vloc
vloc(const sprig__view *v, char kind, sprig_bytes id)
{
    return sprig__ldb_loc(v->ldb, kind, v->scope, id);
}

int
sprig__view_d_read(const sprig__view *v, sprig_bytes id, sprig_bytes stored,
                   uint64_t *rev, const uint8_t **hash, sprig_bytes *pairs,
                   sprig_buf *scratch)
{
    if (stored.len < 24) {
        return sprig__err(SPRIG_ECORRUPT, "a view record is truncated");
    }
    const uint8_t *p = stored.data;
    *rev = sprig__get_u64be(p) & SPRIG__REV_MASK;
    *hash = p + 8;
    *pairs = (sprig_bytes){p + 24, stored.len - 24};
    if (p[0] == 0 && !v->ldb->crc_all) {
        return SPRIG_OK;
    }
    sprig__vloc l = vloc(v, 'v', id);
    l.hdr = (sprig_bytes){p + 1, 23}; /* revision and hash */
    return sprig__codec_decode(v->ldb->vault, &l, p[0], *pairs, scratch, pairs);
}

int
sprig__view_d_put(MDB_txn *txn, sprig__view *v, sprig_bytes id, sprig_bytes rec,
                  sprig_buf *scratch)
{
    sprig_bytes body = {(const uint8_t *)rec.data + 24, rec.len - 24};
    uint8_t cf;
    sprig__vloc l = vloc(v, 'v', id);
    l.hdr = (sprig_bytes){(const uint8_t *)rec.data + 1, 23};
    int rc =
        sprig__codec_encode(&v->coll->codec, &l, body, scratch, &cf, &body);
    if (rc) {
        return rc;
    }
    MDB_val k = V(id), d = {24 + body.len, NULL};
    int mrc = mdb_put(txn, v->d, &k, &d, MDB_RESERVE);
    if (mrc) {
        return sprig__mdb_err(mrc, "writing a view");
    }
    uint8_t *p = d.mv_data;
    memcpy(p, rec.data, 24);
    p[0] = cf;
    memcpy(p + 24, body.data, body.len);
    return SPRIG_OK;
}

int
sprig__view_r_read(const sprig__view *v, sprig_bytes key, sprig_bytes stored,
                   sprig_buf *scratch, sprig_bytes *plain)
{
    if (stored.len < 1) {
        return sprig__err(SPRIG_ECORRUPT, "a reduce value is truncated");
    }
    const uint8_t *p = stored.data;
    *plain = (sprig_bytes){p + 1, stored.len - 1};
    if (p[0] == 0 && !v->ldb->crc_all) {
        return SPRIG_OK;
    }
    sprig__vloc l = vloc(v, 'r', key);
    return sprig__codec_decode(v->ldb->vault, &l, p[0], *plain, scratch, plain);
}

/* ---- mapping ------------------------------------------------------------ */

static int
map_failed(const sprig__view *v, int rc)
{
    if (rc > 0 || rc < SPRIG_ENOTLEADER) {
        rc = SPRIG_EINVAL;
    }
    return sprig__err(rc,
                      "view '%s' of collection '%s': the map function "
                      "failed (%s)",
                      vname(v), v->coll->name, sprig_strerror(rc));
}

/* An emit of the map failed.  A pair refused for what it is (an empty key,
 * a key or value over its limit) fails the same way every time: in a lazy
 * view, which cannot fail the write, the document is indexed with the pairs
 * accepted -- otherwise it would stay pending and fail every later query
 * of the view.  Other failures (out of memory) stand. */
static int
emit_failed(const sprig__view *v, const sprig__vscratch *vs)
{
    if (vs->em.refused && v->def->policy == SPRIG_VIEW_LAZY) {
        return SPRIG_OK;
    }
    return vs->em.rc;
}

/* Run the C map over document (id, rev, hash, contents). */
static int
map_c(sprig__view *v, sprig_bytes id, uint64_t rev, const uint8_t hash[16],
      sprig_bytes contents, sprig__vscratch *vs)
{
    if (!vs->doc) {
        vs->doc = sprig__malloc(sizeof(sprig_doc) + SPRIG_ID_MAX);
        if (!vs->doc) {
            return sprig__err(SPRIG_ENOMEM, "out of memory mapping");
        }
    }
    sprig_doc *d = vs->doc;
    d->revision = rev;
    memcpy(d->hash, hash, 16);
    d->id_len = (uint32_t)id.len;
    memcpy(d->data, id.data, id.len);
    d->len = contents.len;
    d->contents = (uint8_t *)contents.data;
    int rc = v->def->map(d, &vs->em, v->def->udata);
    if (vs->em.rc && (rc == 0 || rc == vs->em.rc)) {
        return emit_failed(v, vs); /* its detail stands */
    }
    return rc ? map_failed(v, rc) : SPRIG_OK;
}

/* A document as the declarative views read it: what the collection's
 * scanner found (one pass for all its views), or jansson's tree when the
 * collection has no scanner (over 64 distinct paths). */
typedef struct jdoc {
    const sprig__jscan *scan;
    const sprig__jnode *nodes;
    struct json_t *tree;
} jdoc;

/* Read `contents` for the views of v's collection. */
static int
jdoc_load(jdoc *jd, const sprig__view *v, sprig_bytes contents,
          sprig__vscratch *vs)
{
    *jd = (jdoc){v->scan, vs->nodes, NULL};
    if (v->scan) {
        sprig__jscan_run(v->scan, contents, vs->nodes); /* false: not JSON */
        return SPRIG_OK;
    }
    return sprig__json_parse(contents, &jd->tree);
}

/* Map the document into vs->newrec = [rev][hash][sorted pair list];
 * `contents` NULL (deleted) emits nothing. */
static int
map_doc(sprig__view *v, sprig_bytes id, uint64_t rev, const uint8_t hash[16],
        const sprig_bytes *contents, const jdoc *jd, sprig__vscratch *vs)
{
    vs->newrec.len = 0;
    sprig__emitter_reset(&vs->em);
    int rc = SPRIG_OK;
    if (contents && v->jv && jd->scan) {
        rc = sprig__jscan_map(jd->scan, v->scan_k, jd->nodes, &vs->em);
    } else if (contents && v->jv) {
        rc = sprig__jview_map(v->jv, jd->tree, &vs->em);
    } else if (contents) {
        rc = map_c(v, id, rev, hash, *contents, vs);
    }
    if (rc && v->jv && rc == vs->em.rc) {
        rc = emit_failed(v, vs); /* a declarative key over SPRIG_KEY_MAX */
    }
    rc = rc ? rc : sprig__buf_put_u64(&vs->newrec, rev);
    rc = rc ? rc : sprig_buf_append(&vs->newrec, hash, 16);
    return rc ? rc : sprig__emitter_sorted(&vs->em, &vs->newrec);
}

/* Load the pairs of a record [rev][hash][list] into vs->pairs. */
static int
load_pairs(sprig_bytes rec, sprig__vscratch *vs, size_t *n)
{
    sprig__pairs it;
    sprig__pair p;
    *n = 0;
    if (rec.len < 24) {
        return sprig__err(SPRIG_ECORRUPT, "a view record is truncated");
    }
    rec.data = (const uint8_t *)rec.data + 24;
    rec.len -= 24;
    int more = 0, rc = sprig__pairs_init(&it, rec);
    while (rc == 0 && (more = sprig__pairs_next(&it, &p)) == 1) {
        rc = grow((void **)&vs->pairs, &vs->cappairs, vs->npairs,
                  sizeof *vs->pairs);
        if (rc == 0) {
            vs->pairs[vs->npairs++] = p;
            ++*n;
        }
    }
    return rc ? rc : more;
}

/* ---- entries ------------------------------------------------------------ */

/* Record a unique violation: document `id` emits `key`, which the document
 * `holder` (its id) already emits; the detail carries the holder's header
 * as this transaction sees it. */
static int
unique_violation(MDB_txn *txn, sprig__view *v, sprig_bytes key, sprig_bytes id,
                 MDB_val *holder)
{
    sprig_header_buf hb = {0};
    MDB_val dv;
    uint64_t rev = 0;
    const uint8_t *hash = NULL;
    sprig_bytes contents;
    bool have = holder->mv_size <= SPRIG_ID_MAX &&
                mdb_get(txn, v->coll->dbi, holder, &dv) == 0 &&
                sprig__doc_parse(&dv, &rev, &hash, &contents) == 0;
    char kt[120];
    key_text(key, kt, sizeof kt);
    int rc = sprig__err_about(SPRIG_EUNIQUE, SPRIG_ERROR_KIND_VIEW,
                              "view '%s' of collection '%s' is unique and "
                              "another document already emits key %s",
                              vname(v), v->coll->name, kt);
    sprig__errinfo_view(vname(v));
    sprig__errinfo_collection(v->coll->name);
    sprig__errinfo_key(key);
    sprig__errinfo_id(id);
    if (have) {
        memcpy(hb.id, holder->mv_data, holder->mv_size);
        hb.id_len = (uint32_t)holder->mv_size;
        hb.revision = rev;
        memcpy(hb.hash, hash, 16);
        sprig__errinfo_header(&hb);
    }
    return rc;
}

/* Whether the index entry (key, holder) is backed by holder's d record
 * (CRC-checked): SPRIG_ECORRUPT naming the entry when it is not, so a
 * flipped entry is never reported as another document's key. */
static int
entry_backed(MDB_txn *txn, const sprig__view *v, sprig_bytes key,
             MDB_val *holder, sprig__vscratch *vs)
{
    MDB_val rec;
    uint64_t rev;
    const uint8_t *hash;
    sprig_bytes pl;
    bool found = false;
    if (holder->mv_size == 0 || holder->mv_size > SPRIG_ID_MAX) {
        return sprig__view_entry_corrupt(v, key, B(*holder));
    }
    int mrc = mdb_get(txn, v->d, holder, &rec);
    if (mrc == MDB_NOTFOUND) {
        return sprig__view_entry_corrupt(v, key, B(*holder));
    }
    int rc = sprig__mdb_err(mrc, "reading a view");
    rc = rc ? rc
            : sprig__view_d_read(v, B(*holder), B(rec), &rev, &hash, &pl,
                                 &vs->dec);
    rc = rc ? rc : sprig__view_pairs_have(pl, key, &found);
    return rc || found ? rc : sprig__view_entry_corrupt(v, key, B(*holder));
}

static int
add_entry(MDB_txn *txn, sprig__view *v, sprig_bytes key, sprig_bytes id,
          sprig__vscratch *vs)
{
    MDB_val k = V(key), d = V(id), cur;
    if (v->def->policy == SPRIG_VIEW_UNIQUE) {
        int mrc = mdb_get(txn, v->e, &k, &cur);
        if (mrc == 0) {
            int rc = entry_backed(txn, v, key, &cur, vs);
            return rc ? rc : unique_violation(txn, v, key, id, &cur);
        }
        if (mrc != MDB_NOTFOUND) {
            return sprig__mdb_err(mrc, "reading a view");
        }
    }
    int mrc = mdb_put(txn, v->e, &k, &d, MDB_NODUPDATA);
    return mrc == MDB_KEYEXIST ? 0 : sprig__mdb_err(mrc, "writing a view");
}

static int
del_entry(MDB_txn *txn, sprig__view *v, sprig_bytes key, sprig_bytes id)
{
    MDB_val k = V(key), d = V(id);
    int mrc = mdb_del(txn, v->e, &k, &d);
    return mrc == MDB_NOTFOUND ? 0 : sprig__mdb_err(mrc, "writing a view");
}

/* ---- per-key reduce ------------------------------------------------------ */

/* Decode the pair list of d record `rec` (of document `id`) and append it
 * to vs->kvals, remembering where. */
static int
keep_pairs(const sprig__view *v, sprig_bytes id, sprig_bytes rec,
           sprig__vscratch *vs)
{
    uint64_t rev;
    const uint8_t *hash;
    sprig_bytes pl;
    int rc = sprig__view_d_read(v, id, rec, &rev, &hash, &pl, &vs->dec);
    rc = rc ? rc
            : grow((void **)&vs->kofs, &vs->capkofs, vs->nkofs + 3,
                   sizeof *vs->kofs);
    if (rc == 0) {
        vs->kofs[vs->nkofs++] = vs->kvals.len;
        vs->kofs[vs->nkofs++] = pl.len;
        vs->kofs[vs->nkofs++] = id.len;
        rc = sprig_buf_append(&vs->kvals, pl.data, pl.len);
        rc = rc ? rc : sprig_buf_append(&vs->kvals, id.data, id.len);
    }
    return rc;
}

/* The values of pair list `pl` mapped to `key`, appended to vs->vals. */
static int
key_values_of(sprig_bytes pl, sprig_bytes key, sprig__vscratch *vs)
{
    sprig__pairs it;
    sprig__pair p;
    int more = 0, rc = sprig__pairs_init(&it, pl);
    while (rc == 0 && (more = sprig__pairs_next(&it, &p)) == 1) {
        if (sprig__bytes_cmp(p.key, key) == 0) {
            rc = grow((void **)&vs->vals, &vs->capvals, vs->nvals,
                      sizeof *vs->vals);
            if (rc == 0) {
                vs->vals[vs->nvals++] = p.value;
            }
        }
    }
    return rc ? rc : more;
}

/* Every value mapped to `key`, into vs->vals (borrowed from vs->kvals). */
static int
key_values(MDB_txn *txn, sprig__view *v, sprig_bytes key, sprig__vscratch *vs)
{
    MDB_cursor *cur;
    MDB_val k = V(key), id, rec;
    vs->nvals = 0;
    int mrc = mdb_cursor_open(txn, v->e, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    int rc = SPRIG_OK;
    vs->kvals.len = 0;
    vs->nkofs = 0;
    mrc = mdb_cursor_get(cur, &k, &id, MDB_SET_KEY);
    for (; mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cur, &k, &id, MDB_NEXT_DUP)) {
        if (id.mv_size == 0 || id.mv_size > SPRIG_ID_MAX) { /* from disk */
            rc = sprig__err(SPRIG_ECORRUPT,
                            "view '%s' of collection '%s': an index entry's "
                            "document id is malformed",
                            vname(v), v->coll->name);
            break;
        }
        int grc = mdb_get(txn, v->d, &id, &rec);
        rc = grc == MDB_NOTFOUND /* the index names a record not there */
                 ? sprig__err(SPRIG_ECORRUPT,
                              "view '%s' of collection '%s': an index entry "
                              "names a document with no record",
                              vname(v), v->coll->name)
                 : sprig__mdb_err(grc, "reading a view");
        rc = rc ? rc : keep_pairs(v, B(id), B(rec), vs);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "reading a view");
    }
    /* the pair lists are all in kvals now: its pointers hold still; each
     * entry (key, id) must find `key` in id's record (a flipped entry key
     * would otherwise drop out of the result unseen) */
    for (size_t r = 0; rc == 0 && r < vs->nkofs; r += 3) {
        const uint8_t *at = (const uint8_t *)vs->kvals.data + vs->kofs[r];
        sprig_bytes pl = {at, vs->kofs[r + 1]};
        size_t before = vs->nvals;
        rc = key_values_of(pl, key, vs);
        if (rc == 0 && vs->nvals == before) {
            rc = sprig__view_entry_corrupt(
                v, key, (sprig_bytes){at + pl.len, vs->kofs[r + 2]});
        }
    }
    return rc;
}

static int
reduce_failed(const sprig__view *v, int rc)
{
    if (rc > 0 || rc < SPRIG_ENOTLEADER) {
        rc = SPRIG_EINVAL;
    }
    return sprig__err(rc,
                      "view '%s' of collection '%s': the reduce "
                      "function failed (%s)",
                      vname(v), v->coll->name, sprig_strerror(rc));
}

/* Call the C reduce into vs->tmp. */
static int
c_reduce(sprig__view *v, const sprig_bytes *vals, size_t n, bool re,
         sprig__vscratch *vs)
{
    vs->tmp.len = 0;
    int rc = v->def->reduce(vals, n, re, &vs->tmp, v->def->udata);
    return rc ? reduce_failed(v, rc) : SPRIG_OK;
}

static int
put_r(MDB_txn *txn, sprig__view *v, sprig_bytes key, sprig_bytes val,
      sprig_buf *scratch)
{
    uint8_t cf;
    sprig__vloc l = vloc(v, 'r', key);
    int rc = sprig__codec_encode(&v->coll->codec, &l, val, scratch, &cf, &val);
    if (rc) {
        return rc;
    }
    MDB_val k = V(key), d = {1 + val.len, NULL};
    int mrc = mdb_put(txn, v->r, &k, &d, MDB_RESERVE);
    if (mrc) {
        return sprig__mdb_err(mrc, "writing a view");
    }
    ((uint8_t *)d.mv_data)[0] = cf;
    memcpy((uint8_t *)d.mv_data + 1, val.data, val.len);
    return SPRIG_OK;
}

static int
del_r(MDB_txn *txn, sprig__view *v, sprig_bytes key)
{
    MDB_val k = V(key);
    int mrc = mdb_del(txn, v->r, &k, NULL);
    return mrc == MDB_NOTFOUND ? 0 : sprig__mdb_err(mrc, "writing a view");
}

/* A recomputed built-in state `s` of `key` counts other than `want`
 * values, what its CRC-checked stored state said less the values removed
 * plus those added: an entry of the index went missing (a flipped key). */
static int
count_differs(const sprig__view *v, sprig_bytes key, uint64_t want,
              sprig__bstate s)
{
    char kt[120];
    key_text(key, kt, sizeof kt);
    return sprig__err(SPRIG_ECORRUPT,
                      "view '%s' of collection '%s': key %s has %llu "
                      "values in the index but its reduced value counts "
                      "%llu: the view's entries table is damaged",
                      vname(v), v->coll->name, kt, (unsigned long long)s.count,
                      (unsigned long long)want);
}

/* r[K] of a built-in reduce, after removing the old values of group g and
 * adding the new ones. */
static int
update_builtin(MDB_txn *txn, sprig__view *v, const sprig__vgroup *g,
               sprig__vscratch *vs)
{
    sprig__pair *P = vs->pairs;
    sprig_bytes key = g->on ? P[g->o].key : P[g->n].key;
    sprig__bstate s;
    MDB_val k = V(key), cur;
    sprig__bstate_init(&s);
    int mrc = mdb_get(txn, v->r, &k, &cur);
    int rc = mrc == MDB_NOTFOUND ? 0 : sprig__mdb_err(mrc, "reading a view");
    bool exact = rc == 0 && (mrc == 0 || g->on == 0);
    sprig_bytes cv;
    if (rc == 0 && mrc == 0) {
        rc = sprig__view_r_read(v, key, B(cur), &vs->dec, &cv);
        rc = rc ? rc : sprig__bstate_decode(cv, &s);
    }
    uint64_t want = s.count - g->on + g->nn; /* when r[K] was there */
    for (size_t i = 0; rc == 0 && exact && i < g->on; i++) {
        exact =
            sprig__bstate_remove(&s, v->def->builtin_reduce, P[g->o + i].value);
    }
    for (size_t i = 0; rc == 0 && exact && i < g->nn; i++) {
        sprig__bstate_add(&s, P[g->n + i].value);
    }
    if (rc == 0 && !exact) { /* recompute from the key's mappings */
        rc = key_values(txn, v, key, vs);
        sprig__bstate_init(&s);
        for (size_t i = 0; rc == 0 && i < vs->nvals; i++) {
            sprig__bstate_add(&s, vs->vals[i]);
        }
        rc = rc || mrc || s.count == want ? rc : count_differs(v, key, want, s);
    }
    if (rc || s.count == 0) {
        return rc ? rc : del_r(txn, v, key);
    }
    uint8_t enc[SPRIG__BSTATE_LEN];
    sprig__bstate_encode(&s, enc);
    return put_r(txn, v, key, (sprig_bytes){enc, sizeof enc}, &vs->enc);
}

/* r[K] of a C reduce: re-reduce additions into it, recompute otherwise. */
static int
update_c(MDB_txn *txn, sprig__view *v, const sprig__vgroup *g,
         sprig__vscratch *vs)
{
    sprig__pair *P = vs->pairs;
    sprig_bytes key = g->on ? P[g->o].key : P[g->n].key;
    MDB_val k = V(key), cur;
    int rc = SPRIG_OK;
    int mrc = g->on ? MDB_NOTFOUND : mdb_get(txn, v->r, &k, &cur);
    if (mrc && mrc != MDB_NOTFOUND) {
        return sprig__mdb_err(mrc, "reading a view");
    }
    if (g->on == 0) { /* additions only */
        vs->nvals = 0;
        for (size_t i = 0; rc == 0 && i < g->nn; i++) {
            rc = grow((void **)&vs->vals, &vs->capvals, vs->nvals,
                      sizeof *vs->vals);
            if (rc == 0) {
                vs->vals[vs->nvals++] = P[g->n + i].value;
            }
        }
    } else {
        rc = key_values(txn, v, key, vs);
    }
    if (rc || vs->nvals == 0) {
        return rc ? rc : del_r(txn, v, key);
    }
    rc = c_reduce(v, vs->vals, vs->nvals, false, vs);
    sprig_bytes cv = {0};
    if (rc == 0 && mrc == 0) {
        rc = sprig__view_r_read(v, key, B(cur), &vs->dec, &cv);
    }
    if (rc == 0 && mrc == 0) { /* fold into the stored result */
        sprig_buf fresh = vs->tmp;
        sprig_bytes two[2] = {cv, sprig_buf_bytes(&fresh)};
        vs->tmp = (sprig_buf){0};
        rc = c_reduce(v, two, 2, true, vs);
        sprig_buf_clear(&fresh);
    }
    return rc ? rc : put_r(txn, v, key, sprig_buf_bytes(&vs->tmp), &vs->enc);
}

/* ---- re-mapping a document ------------------------------------------------
 */

static bool
same_values(const sprig__pair *P, const sprig__vgroup *g)
{
    if (g->on != g->nn) {
        return false;
    }
    for (size_t i = 0; i < g->on; i++) {
        if (sprig__bytes_cmp(P[g->o + i].value, P[g->n + i].value)) {
            return false;
        }
    }
    return true;
}

/* Step 4: merge old pairs [0, no) and new pairs [no, npairs) by key. */
static int
apply_diff(MDB_txn *txn, sprig__view *v, sprig_bytes id, size_t no,
           sprig__vscratch *vs)
{
    size_t i = 0, j = no, end = vs->npairs;
    int rc = SPRIG_OK;
    vs->ngroups = 0;
    while (rc == 0 && (i < no || j < end)) {
        sprig__pair *P = vs->pairs;
        int c = i == no    ? 1
                : j == end ? -1
                           : sprig__bytes_cmp(P[i].key, P[j].key);
        sprig_bytes key = c <= 0 ? P[i].key : P[j].key;
        sprig__vgroup g = {i, 0, j, 0};
        while (c <= 0 && i < no && sprig__bytes_cmp(P[i].key, key) == 0) {
            i++, g.on++;
        }
        while (c >= 0 && j < end && sprig__bytes_cmp(P[j].key, key) == 0) {
            j++, g.nn++;
        }
        if (g.on == 0) {
            rc = add_entry(txn, v, key, id, vs);
        } else if (g.nn == 0) {
            rc = del_entry(txn, v, key, id);
        }
        if (rc == 0 && v->reduces && !same_values(P, &g)) {
            rc = grow((void **)&vs->groups, &vs->capgroups, vs->ngroups,
                      sizeof *vs->groups);
            if (rc == 0) {
                vs->groups[vs->ngroups++] = g;
            }
        }
    }
    return rc;
}

/* Steps 5 and 6. */
static int
store(MDB_txn *txn, sprig__view *v, sprig_bytes id, uint32_t nnew,
      sprig__vscratch *vs)
{
    MDB_val k = V(id);
    int rc = SPRIG_OK;
    if (nnew) {
        rc = sprig__view_d_put(txn, v, id, sprig_buf_bytes(&vs->newrec),
                               &vs->enc);
    } else {
        int mrc = mdb_del(txn, v->d, &k, 0);
        rc = mrc == MDB_NOTFOUND ? 0 : sprig__mdb_err(mrc, "writing a view");
    }
    for (size_t i = 0; rc == 0 && i < vs->ngroups; i++) {
        rc = v->def->reduce ? update_c(txn, v, &vs->groups[i], vs)
                            : update_builtin(txn, v, &vs->groups[i], vs);
    }
    return rc;
}

/* Copy the stored d record of `id`, decoded, into vs->oldrec: the plain
 * [rev][hash][pairs] a new record is compared with. */
static int
old_record(const sprig__view *v, sprig_bytes id, sprig_bytes stored,
           sprig__vscratch *vs)
{
    uint64_t rev;
    const uint8_t *hash;
    sprig_bytes pl;
    int rc = sprig__view_d_read(v, id, stored, &rev, &hash, &pl, &vs->dec);
    rc = rc ? rc : sprig__buf_put_u64(&vs->oldrec, rev);
    rc = rc ? rc : sprig_buf_append(&vs->oldrec, hash, 16);
    return rc ? rc : sprig_buf_append(&vs->oldrec, pl.data, pl.len);
}

/* Re-map document `id` (contents NULL: deleted) into view v. */
static int
remap(MDB_txn *txn, sprig__view *v, sprig_bytes id, uint64_t rev,
      const uint8_t hash[16], const sprig_bytes *contents, const jdoc *jd,
      bool fresh, sprig__vscratch *vs)
{
    MDB_val k = V(id), old;
    int rc = map_doc(v, id, rev, hash, contents, jd, vs);
    if (rc) {
        return rc;
    }
    /* a document this write created has no record (the invariant: d[X]
     * exists only while X does): no need to look */
    int mrc = fresh ? MDB_NOTFOUND : mdb_get(txn, v->d, &k, &old);
    if (mrc && mrc != MDB_NOTFOUND) {
        return sprig__mdb_err(mrc, "reading a view");
    }
    uint32_t nnew = vs->em.n;
    vs->oldrec.len = 0;
    if (mrc == 0) {
        rc = old_record(v, id, B(old), vs);
    } else if (nnew == 0) {
        return SPRIG_OK; /* emitted nothing before or now */
    }
    const uint8_t *o = vs->oldrec.data, *n = vs->newrec.data;
    if (rc == 0 && mrc == 0 && vs->oldrec.len == vs->newrec.len &&
        memcmp(o + 24, n + 24, vs->newrec.len - 24) == 0) {
        if (nnew == 0 || memcmp(o, n, 24) == 0) {
            return SPRIG_OK; /* same mappings, same revision */
        }
        return sprig__view_d_put(txn, v, id, sprig_buf_bytes(&vs->newrec),
                                 &vs->enc);
    }
    size_t no = 0, nn = 0;
    vs->npairs = 0;
    if (rc == 0 && mrc == 0) {
        rc = load_pairs(sprig_buf_bytes(&vs->oldrec), vs, &no);
    }
    rc = rc ? rc : load_pairs(sprig_buf_bytes(&vs->newrec), vs, &nn);
    rc = rc ? rc : apply_diff(txn, v, id, no, vs);
    return rc ? rc : store(txn, v, id, nnew, vs);
}

/* ---- the write hook and pending documents -------------------------------- */

/* The value of pending row `id` of v: the CRC-32C of its location (kind
 * 'i', the view, the id), u32 LE, so a flipped id that keeps the table's
 * order is refused instead of leaving a document unindexed. */
static void
pending_crc(const sprig__view *v, sprig_bytes id, uint8_t out[4])
{
    sprig__vloc l = vloc(v, 'i', id);
    uint32_t c = sprig__codec_crc(&l, 0, (sprig_bytes){NULL, 0});
    for (int i = 0; i < 4; i++, c >>= 8) {
        out[i] = (uint8_t)c;
    }
}

int
sprig__view_pending_ok(const sprig__view *v, sprig_bytes id, sprig_bytes value)
{
    uint8_t want[4];
    char it[120];
    pending_crc(v, id, want);
    if (id.len && id.len <= SPRIG_ID_MAX && value.len == 4 &&
        memcmp(value.data, want, 4) == 0) {
        return SPRIG_OK;
    }
    id_text(id, it, sizeof it);
    return sprig__err(SPRIG_ECORRUPT,
                      "view '%s' of collection '%s': the pending entry of "
                      "document %s fails its CRC: the view's pending table "
                      "is damaged",
                      vname(v), v->coll->name, it);
}

static int
invalidate(MDB_txn *txn, sprig__view *v, sprig_bytes id)
{
    uint8_t crc[4];
    pending_crc(v, id, crc);
    MDB_val k = V(id), d = {4, crc};
    return sprig__mdb_err(mdb_put(txn, v->i, &k, &d, 0), "writing a view");
}

/* A lazy declarative view maps at query time, so a document whose key is
 * over SPRIG_KEY_MAX would fail every update-before query and reduce of
 * the view while it exists: refuse the write now (SPRIG_ETOOBIG), as an
 * eager view does.  Small documents cannot have such a key: not mapped. */
static int
lazy_key_check(sprig__view *v, const sprig_bytes *contents, jdoc *jd,
               bool *parsed, sprig__vscratch *vs)
{
    static const uint8_t zero[16];
    if (!contents || !v->jv ||
        sprig__jview_key_bound(v->jv, contents->len) <= SPRIG_KEY_MAX) {
        return SPRIG_OK;
    }
    int rc = *parsed ? SPRIG_OK : jdoc_load(jd, v, *contents, vs);
    *parsed = true;
    rc =
        rc ? rc : map_doc(v, (sprig_bytes){NULL, 0}, 0, zero, contents, jd, vs);
    if (rc == SPRIG_ETOOBIG) {
        rc = sprig__err(SPRIG_ETOOBIG,
                        "view '%s' of collection '%s': the document's key is "
                        "longer than SPRIG_KEY_MAX (%d) bytes",
                        vname(v), v->coll->name, SPRIG_KEY_MAX);
    }
    return rc;
}

int
sprig__views_changed(MDB_txn *txn, sprig__ldb *ldb, sprig__coll *c,
                     sprig_bytes id, uint64_t rev, const uint8_t hash[16],
                     const sprig_bytes *contents, sprig__vscratch *vs)
{
    struct sprig__views *vw = ldb->views;
    size_t ci = (size_t)(c - ldb->colls);
    if (!vw || vw->count[ci] == 0) {
        return SPRIG_OK;
    }
    sprig__view *views = vw->v + vw->first[ci];
    jdoc jd = {NULL, NULL, NULL};
    bool parsed = false;
    int rc = SPRIG_OK;
    for (size_t k = 0; rc == 0 && k < vw->count[ci]; k++) {
        sprig__view *v = &views[k];
        if (v->codeless && v->def->policy == SPRIG_VIEW_UNIQUE) {
            rc = sprig__err_about(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_VIEW,
                                  "collection '%s' has unique view '%s', whose "
                                  "code is not loaded: writes are refused",
                                  c->name, vname(v));
            sprig__errinfo_view(vname(v));
            sprig__errinfo_collection(c->name);
        } else if (v->codeless || v->def->policy == SPRIG_VIEW_LAZY) {
            rc = v->codeless ? SPRIG_OK
                             : lazy_key_check(v, contents, &jd, &parsed, vs);
            rc = rc ? rc : invalidate(txn, v, id);
        } else {
            if (v->jv && contents && !parsed) {
                rc = jdoc_load(&jd, v, *contents, vs);
                parsed = true;
            }
            /* revision 1: the document did not exist before this write */
            bool fresh = contents && rev == 1;
            rc = rc ? rc
                    : remap(txn, v, id, rev, hash, contents, &jd, fresh, vs);
        }
    }
    sprig__json_free(jd.tree);
    return rc;
}

/* Re-map the stored document `id` (which may be gone). */
static int
remap_stored(MDB_txn *txn, sprig__view *v, sprig_bytes id, sprig__vscratch *vs)
{
    static const uint8_t zero[16];
    MDB_val k = V(id), val;
    int mrc = mdb_get(txn, v->coll->dbi, &k, &val);
    jdoc jd = {NULL, NULL, NULL};
    if (mrc == MDB_NOTFOUND) { /* gone, confirmed by the neighbours */
        int rc = sprig__miss_doc_confirm(txn, v->ldb, v->coll, &k);
        return rc ? rc : remap(txn, v, id, 0, zero, NULL, &jd, false, vs);
    }
    if (mrc) {
        return sprig__mdb_err(mrc, "reading a document");
    }
    uint64_t rev;
    const uint8_t *hash = NULL;
    sprig_bytes contents;
    int rc = sprig__doc_read(v->ldb, v->coll, id, &val, &rev, &hash, &contents,
                             &vs->docbuf);
    if (rc == 0 && v->jv) {
        rc = jdoc_load(&jd, v, contents, vs);
    }
    uint8_t h[16];
    if (rc == 0) {
        memcpy(h, hash, 16); /* the page may move once we write */
        rc = remap(txn, v, id, rev, h, &contents, &jd, false, vs);
    }
    if (rc == SPRIG_ETOOBIG && v->jv) {
        /* a key over the limit, stored before writes were checked or
         * before this view was defined: not indexed, so the view still
         * serves; sprig_storage_check() lists such documents */
        rc = remap(txn, v, id, rev, h, NULL, &jd, false, vs);
    }
    sprig__json_free(jd.tree);
    return rc;
}

int
sprig__view_index_pending(MDB_txn *txn, sprig__view *v, size_t max, bool *left,
                          sprig__vscratch *vs)
{
    MDB_cursor *cur;
    MDB_val k, d;
    uint8_t id[SPRIG_ID_MAX];
    int mrc = mdb_cursor_open(txn, v->i, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    int rc = SPRIG_OK;
    size_t n = 0;
    while (rc == 0 && (max == 0 || n < max) &&
           (mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST)) == 0) {
        rc = sprig__view_pending_ok(v, B(k), B(d));
        if (rc) {
            break;
        }
        size_t len = k.mv_size;
        memcpy(id, k.mv_data, len);
        rc = remap_stored(txn, v, (sprig_bytes){id, len}, vs);
        MDB_val key = {len, id};
        rc = rc ? rc
                : sprig__mdb_err(mdb_del(txn, v->i, &key, NULL),
                                 "writing a view");
        n++;
    }
    if (rc == 0 && mrc == 0 && max) {
        mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "reading a view");
    }
    *left = rc == 0 && mrc == 0;
    return rc;
}

int
sprig__view_pending(MDB_txn *txn, sprig__view *v, size_t *out)
{
    MDB_stat st;
    int mrc = mdb_stat(txn, v->i, &st);
    *out = mrc == 0 ? st.ms_entries : 0;
    return sprig__mdb_err(mrc, "reading a view");
}

int
sprig__view_clear(MDB_txn *txn, sprig__view *v)
{
    int mrc = mdb_drop(txn, v->e, 0);
    mrc = mrc ? mrc : mdb_drop(txn, v->d, 0);
    mrc = mrc ? mrc : mdb_drop(txn, v->i, 0);
    if (mrc == 0 && v->reduces) {
        mrc = mdb_drop(txn, v->r, 0);
    }
    return sprig__mdb_err(mrc, "clearing a view");
}

int
sprig__view_index_docs(MDB_txn *txn, sprig__view *v, uint8_t *after,
                       size_t *after_len, size_t max, bool *done,
                       sprig__vscratch *vs)
{
    MDB_cursor *cur;
    MDB_val k = {*after_len, after}, d;
    int mrc = mdb_cursor_open(txn, v->coll->dbi, &cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    int rc = SPRIG_OK;
    mrc = *after_len ? mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE)
                     : mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    if (mrc == 0 && *after_len &&
        sprig__bytes_cmp(B(k), (sprig_bytes){after, *after_len}) == 0) {
        mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    for (size_t n = 0; rc == 0 && mrc == 0 && n < max; n++) {
        if (k.mv_size == 0 || k.mv_size > SPRIG_ID_MAX) {
            rc = sprig__err(SPRIG_ECORRUPT, "a document id is malformed");
            break;
        }
        memcpy(after, k.mv_data, k.mv_size);
        *after_len = k.mv_size;
        rc = remap_stored(txn, v, (sprig_bytes){after, *after_len}, vs);
        k = (MDB_val){*after_len, after};
        mrc = rc ? 0 : mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
        mrc = rc || mrc ? mrc : mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "reading a collection");
    }
    *done = rc == 0 && mrc == MDB_NOTFOUND;
    return rc;
}

/* ---- the integrity check (sprig_storage_check) ----------------------------
 */

/* Document (k, val) against its record in v: mapped again, the pairs and
 * revision must be what the record holds.  Pending documents are skipped
 * (their record may be stale by design). */
static int
check_doc(MDB_txn *txn, sprig__view *v, MDB_val *k, MDB_val *val,
          sprig__vscratch *vs, sprig__view_bad_fn bad, void *arg)
{
    MDB_val rec, pend;
    sprig_bytes id = {k->mv_data, k->mv_size}, contents;
    uint64_t rev;
    const uint8_t *hash;
    jdoc jd = {NULL, NULL, NULL};
    if (mdb_get(txn, v->i, k, &pend) == 0) {
        return SPRIG_OK;
    }
    int rc = sprig__doc_read(v->ldb, v->coll, id, val, &rev, &hash, &contents,
                             &vs->docbuf);
    rc = rc || !v->jv ? rc : jdoc_load(&jd, v, contents, vs);
    rc = rc ? rc : map_doc(v, id, rev, hash, &contents, &jd, vs);
    sprig__json_free(jd.tree);
    if (rc == SPRIG_ETOOBIG && v->jv) {
        bad(arg, v, "its key is over SPRIG_KEY_MAX: not indexed", id);
        return SPRIG_OK;
    }
    if (rc) {
        bad(arg, v, sprig_errmsg(), id);
        return SPRIG_OK;
    }
    int mrc = mdb_get(txn, v->d, k, &rec);
    if (mrc && mrc != MDB_NOTFOUND) {
        return sprig__mdb_err(mrc, "reading a view");
    }
    if (mrc == MDB_NOTFOUND) {
        if (vs->em.n) {
            bad(arg, v, "the document's mappings are missing", id);
        }
        return SPRIG_OK;
    }
    const uint8_t *n = vs->newrec.data, *rhash;
    sprig_bytes pl;
    uint64_t rrev;
    if (sprig__view_d_read(v, id, B(rec), &rrev, &rhash, &pl, &vs->dec)) {
        bad(arg, v, sprig_errmsg(), id);
    } else if (pl.len != vs->newrec.len - 24 ||
               memcmp(pl.data, n + 24, pl.len)) {
        bad(arg, v, "the stored mappings differ from the document's", id);
    } else if (rrev != rev) {
        bad(arg, v, "the mappings are of another revision", id);
    }
    return SPRIG_OK;
}

/* Walk the collection through check_doc. */
static int
check_docs(MDB_txn *txn, sprig__view *v, sprig__vscratch *vs,
           sprig__view_bad_fn bad, void *arg)
{
    MDB_cursor *cur;
    MDB_val k, d;
    int mrc = mdb_cursor_open(txn, v->coll->dbi, &cur);
    bool opened = mrc == 0;
    int rc = SPRIG_OK;
    while (rc == 0 && mrc == 0 &&
           (mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) == 0) {
        rc = check_doc(txn, v, &k, &d, vs, bad, arg);
    }
    if (opened) {
        mdb_cursor_close(cur);
    }
    return rc ? rc
              : sprig__mdb_err(mrc == MDB_NOTFOUND ? 0 : mrc,
                               "reading a collection");
}

/* How many pairs d record `rec` of document `id` holds (decoded); < 0
 * when it is malformed. */
static int
count_pairs(const sprig__view *v, sprig_bytes id, sprig_bytes rec,
            sprig__vscratch *vs, size_t *n)
{
    uint64_t rev;
    const uint8_t *hash;
    sprig_bytes pl;
    sprig__pairs it;
    sprig__pair p;
    int more = 0,
        rc = sprig__view_d_read(v, id, rec, &rev, &hash, &pl, &vs->dec);
    *n = 0;
    rc = rc ? rc : sprig__pairs_init(&it, pl);
    while (rc == 0 && (more = sprig__pairs_next(&it, &p)) == 1) {
        ++*n;
    }
    return rc ? rc : more;
}

/* Records of documents that are gone; the records' pairs against the
 * entries table. */
static int
check_records(MDB_txn *txn, sprig__view *v, sprig__vscratch *vs,
              sprig__view_bad_fn bad, void *arg)
{
    MDB_cursor *cur;
    MDB_val k, d, doc;
    MDB_stat st;
    size_t pairs = 0, n;
    int mrc = mdb_cursor_open(txn, v->d, &cur);
    bool opened = mrc == 0;
    int rc = SPRIG_OK;
    while (rc == 0 && mrc == 0 &&
           (mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) == 0) {
        sprig_bytes id = {k.mv_data, k.mv_size};
        if (mdb_get(txn, v->coll->dbi, &k, &doc) == MDB_NOTFOUND &&
            mdb_get(txn, v->i, &k, &doc) == MDB_NOTFOUND) {
            bad(arg, v, "a record is left for a document that is gone", id);
        }
        if (count_pairs(v, id, B(d), vs, &n) < 0) {
            bad(arg, v, "a record is malformed", id);
        }
        pairs += n;
    }
    if (opened) {
        mdb_cursor_close(cur);
    }
    rc = rc ? rc
            : sprig__mdb_err(mrc == MDB_NOTFOUND ? 0 : mrc, "reading a view");
    if (rc == 0 && (mrc = mdb_stat(txn, v->e, &st)) == 0 &&
        st.ms_entries != pairs) {
        bad(arg, v, "the entries table does not hold the records' pairs",
            (sprig_bytes){NULL, 0});
    }
    return rc ? rc : sprig__mdb_err(mrc, "reading a view");
}

/* Every entry (K, X) of `e` against X's record: the record must exist
 * and hold a pair with key K (issue 17: a flipped entry key or id that
 * keeps the table's order is caught here, not by the structure). */
static int
check_entries(MDB_txn *txn, sprig__view *v, sprig__vscratch *vs,
              sprig__view_bad_fn bad, void *arg)
{
    MDB_cursor *cur;
    MDB_val k, x;
    int mrc = mdb_cursor_open(txn, v->e, &cur);
    bool opened = mrc == 0;
    int rc = SPRIG_OK;
    while (rc == 0 && mrc == 0 &&
           (mrc = mdb_cursor_get(cur, &k, &x, MDB_NEXT)) == 0) {
        rc = entry_backed(txn, v, B(k), &x, vs);
        if (rc == SPRIG_ECORRUPT || rc == SPRIG_EAUTH) {
            bad(arg, v, sprig_errmsg(), B(x));
            rc = SPRIG_OK;
        }
    }
    if (opened) {
        mdb_cursor_close(cur);
    }
    return rc ? rc
              : sprig__mdb_err(mrc == MDB_NOTFOUND ? 0 : mrc, "reading a view");
}

/* Every pending row against its CRC. */
static int
check_pending(MDB_txn *txn, sprig__view *v, sprig__view_bad_fn bad, void *arg)
{
    MDB_cursor *cur;
    MDB_val k, x;
    int mrc = mdb_cursor_open(txn, v->i, &cur);
    bool opened = mrc == 0;
    while (mrc == 0 && (mrc = mdb_cursor_get(cur, &k, &x, MDB_NEXT)) == 0) {
        if (sprig__view_pending_ok(v, B(k), B(x))) {
            bad(arg, v, sprig_errmsg(), B(k));
        }
    }
    if (opened) {
        mdb_cursor_close(cur);
    }
    return sprig__mdb_err(mrc == MDB_NOTFOUND ? 0 : mrc, "reading a view");
}

/* Whether stored reduce value `got` is what recomputing gave, `want`: a
 * built-in state field by field (the float sum within rounding: adding
 * and removing in another order may round differently), a C reduce's
 * bytes exactly. */
static bool
same_reduce(const sprig__view *v, sprig_bytes got, sprig_bytes want)
{
    if (v->def->reduce || got.len != SPRIG__BSTATE_LEN ||
        want.len != SPRIG__BSTATE_LEN) {
        return got.len == want.len && memcmp(got.data, want.data, got.len) == 0;
    }
    sprig__bstate a, b;
    if (sprig__bstate_decode(got, &a) || sprig__bstate_decode(want, &b)) {
        return false;
    }
    double d = a.rsum - b.rsum,
           m = fabs(a.rsum) > fabs(b.rsum) ? a.rsum : b.rsum;
    bool close = a.rsum == b.rsum || fabs(d) <= 1e-9 * (fabs(m) + 1.0);
    return close && memcmp(got.data, want.data, 41) == 0 &&
           memcmp((const uint8_t *)got.data + 49,
                  (const uint8_t *)want.data + 49, SPRIG__BSTATE_LEN - 49) == 0;
}

/* Reduce key `key` from its mappings in the index into *out (vs->tmp, or
 * `enc` for a built-in). */
static int
recompute(MDB_txn *txn, sprig__view *v, sprig_bytes key, sprig__vscratch *vs,
          uint8_t enc[SPRIG__BSTATE_LEN], sprig_bytes *out)
{
    int rc = key_values(txn, v, key, vs);
    if (rc || v->def->reduce) {
        rc = rc ? rc : c_reduce(v, vs->vals, vs->nvals, false, vs);
        *out = sprig_buf_bytes(&vs->tmp);
        return rc;
    }
    sprig__bstate s;
    sprig__bstate_init(&s);
    for (size_t i = 0; i < vs->nvals; i++) {
        sprig__bstate_add(&s, vs->vals[i]);
    }
    sprig__bstate_encode(&s, enc);
    *out = (sprig_bytes){enc, SPRIG__BSTATE_LEN};
    return SPRIG_OK;
}

/* One distinct key of `e` against its stored reduce value. */
static int
check_key_reduce(MDB_txn *txn, sprig__view *v, sprig_bytes key,
                 sprig__vscratch *vs, sprig__view_bad_fn bad, void *arg)
{
    uint8_t enc[SPRIG__BSTATE_LEN];
    char kt[96], what[256];
    sprig_bytes want, got;
    MDB_val k = V(key), cur;
    int rc = recompute(txn, v, key, vs, enc, &want);
    if (rc) {
        bad(arg, v, sprig_errmsg(), (sprig_bytes){NULL, 0});
        return rc == SPRIG_ENOMEM ? rc : SPRIG_OK;
    }
    int mrc = mdb_get(txn, v->r, &k, &cur);
    key_text(key, kt, sizeof kt);
    if (mrc == MDB_NOTFOUND) {
        snprintf(what, sizeof what, "key %s has mappings but no reduced value",
                 kt);
    } else if (mrc) {
        return sprig__mdb_err(mrc, "reading a view");
    } else if (sprig__view_r_read(v, key, B(cur), &vs->dec, &got)) {
        snprintf(what, sizeof what, "the reduced value of key %s: %s", kt,
                 sprig_errmsg());
    } else if (!same_reduce(v, got, want)) {
        snprintf(what, sizeof what,
                 "the reduced value of key %s differs from its mappings' "
                 "(recomputed)",
                 kt);
    } else {
        return SPRIG_OK;
    }
    bad(arg, v, what, (sprig_bytes){NULL, 0});
    return SPRIG_OK;
}

/* Reduce values against a recomputation from the index (issue 17): every
 * distinct key of `e`, then keys of `r` with no mappings.  A lazy view
 * with pending documents is skipped (its values may lag by design). */
static int
check_reduces(MDB_txn *txn, sprig__view *v, sprig__vscratch *vs,
              sprig__view_bad_fn bad, void *arg)
{
    size_t pending = 0;
    MDB_cursor *cur;
    MDB_val k, d;
    bool has = v->def->reduce || v->def->builtin_reduce != SPRIG_REDUCE_NONE;
    int rc = has ? sprig__view_pending(txn, v, &pending) : SPRIG_OK;
    if (rc || !has || pending) {
        return rc;
    }
    int mrc = mdb_cursor_open(txn, v->e, &cur);
    while (rc == 0 && mrc == 0 &&
           (mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_NODUP)) == 0) {
        rc = check_key_reduce(txn, v, B(k), vs, bad, arg);
    }
    if (mrc == 0 || mrc == MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        mrc = mdb_cursor_open(txn, v->r, &cur);
    }
    while (rc == 0 && mrc == 0 &&
           (mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) == 0) {
        MDB_val x;
        char kt[96], what[256];
        if (mdb_get(txn, v->e, &k, &x) == MDB_NOTFOUND) {
            key_text(B(k), kt, sizeof kt);
            snprintf(what, sizeof what,
                     "a reduced value is left for key %s, which has no "
                     "mappings",
                     kt);
            bad(arg, v, what, (sprig_bytes){NULL, 0});
        }
    }
    if (mrc == 0 || mrc == MDB_NOTFOUND) {
        mdb_cursor_close(cur);
    }
    return rc ? rc
              : sprig__mdb_err(mrc == MDB_NOTFOUND ? 0 : mrc, "reading a view");
}

int
sprig__view_check(MDB_txn *txn, sprig__view *v, sprig__vscratch *vs,
                  sprig__view_bad_fn bad, void *arg)
{
    if (v->codeless) {
        return SPRIG_OK;
    }
    int rc = check_docs(txn, v, vs, bad, arg);
    rc = rc ? rc : check_records(txn, v, vs, bad, arg);
    rc = rc ? rc : check_entries(txn, v, vs, bad, arg);
    rc = rc ? rc : check_pending(txn, v, bad, arg);
    return rc ? rc : check_reduces(txn, v, vs, bad, arg);
}
