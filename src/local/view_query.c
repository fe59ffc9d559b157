/*
 * view_query.c -- answering view queries: mappings, reduce, grouped reduce.
 *
 * Design notes.  A query is a walk over one table in one snapshot: the
 * entries `e` (a (key, id) pair per step, DUPSORT) for mappings, the
 * per-key results `r` (a key per step) for reduces.  Every match kind is a
 * set of key ranges walked in order: ALL one unbounded range, KEY [K, K],
 * RANGE as given, PREFIX [P, successor of P), KEYS one [K, K] per distinct
 * key, sorted.  Pagination seeks past (after_key, after_id) before the
 * first step when the range starts earlier; the limit is checked before
 * each (key, id) group of mappings (or each key of a grouped reduce).
 *
 * Consistency (exec): the query takes a read snapshot.  If the view has
 * pending documents and the access is update-before, it gives that
 * snapshot up and runs as a write request instead: index the pending
 * documents, then answer from the same write transaction, so the answer
 * reflects every transaction committed before the call and the view and
 * the documents agree.  (Large backlogs are first drained a chunk per
 * transaction.)  Update-after answers from the snapshot and kicks the
 * background indexer.
 */
#include "views.h"

#include <stdio.h>
#include <stdlib.h>

#define B(v) ((sprig_bytes){(v).mv_data, (v).mv_size})
#define V(b) ((MDB_val){(b).len, (void *)(b).data})

/* ---- walking a table by key ranges ----------------------------------------
 */

typedef struct walk {
    MDB_cursor *cur;
    bool dup, asc;
    sprig_bound lo, hi; /* the range, in key order */
    const sprig_view_query *q;
    bool after; /* apply q's pagination */
    MDB_val k, v;
    int (*edge)(struct walk *w, void *arg); /* checks an entry just outside
                                               a range, or NULL */
    bool point;  /* the range is one key: edges only when it is empty */
    bool beyond; /* the walk stopped on the first entry past its far end */
} walk;

static int
get(walk *w, MDB_cursor_op op)
{
    return mdb_cursor_get(w->cur, &w->k, &w->v, op);
}

static int
kcmp(const walk *w, sprig_bytes key)
{
    return sprig__bytes_cmp(B(w->k), key);
}

/* First entry with key >= key (> when excl). */
static int
seek_ge(walk *w, sprig_bytes key, bool excl)
{
    w->k = V(key);
    int mrc = get(w, MDB_SET_RANGE);
    if (mrc == 0 && excl && kcmp(w, key) == 0) {
        mrc = get(w, w->dup ? MDB_NEXT_NODUP : MDB_NEXT);
    }
    return mrc;
}

/* Last entry with key <= key (< when excl). */
static int
seek_le(walk *w, sprig_bytes key, bool excl)
{
    w->k = V(key);
    int mrc = get(w, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND) {
        return get(w, MDB_LAST);
    }
    if (mrc) {
        return mrc;
    }
    if (kcmp(w, key) == 0 && !excl) {
        return w->dup ? get(w, MDB_LAST_DUP) : 0;
    }
    return get(w, MDB_PREV);
}

/* Is the current entry past the pagination point, in walk order? */
static bool
after_ok(const walk *w)
{
    int c = kcmp(w, w->q->after_key);
    if (c) {
        return w->asc ? c > 0 : c < 0;
    }
    if (!w->dup || w->q->after_id.len == 0) {
        return false;
    }
    c = sprig__bytes_cmp(B(w->v), w->q->after_id);
    return w->asc ? c > 0 : c < 0;
}

/* The first entry past the pagination point. */
static int
seek_after(walk *w)
{
    sprig_bytes ak = w->q->after_key, ai = w->q->after_id;
    if (!w->dup || ai.len == 0) {
        return w->asc ? seek_ge(w, ak, true) : seek_le(w, ak, true);
    }
    w->k = V(ak);
    w->v = V(ai);
    int mrc = get(w, MDB_GET_BOTH_RANGE); /* first id >= after_id */
    if (w->asc) {
        if (mrc == 0 && sprig__bytes_cmp(B(w->v), ai) == 0) {
            return get(w, MDB_NEXT);
        }
        return mrc == MDB_NOTFOUND ? seek_ge(w, ak, true) : mrc;
    }
    if (mrc == 0) {
        return get(w, MDB_PREV);
    }
    return mrc == MDB_NOTFOUND ? seek_le(w, ak, false) : mrc;
}

static bool
past_end(const walk *w)
{
    const sprig_bound *b = w->asc ? &w->hi : &w->lo;
    if (b->kind == SPRIG_UNBOUNDED) {
        return false;
    }
    int c = kcmp(w, b->key);
    if (!w->asc) {
        c = -c;
    }
    return c > 0 || (c == 0 && b->kind == SPRIG_EXCLUDED);
}

static int
walk_start(walk *w)
{
    const sprig_bound *b = w->asc ? &w->lo : &w->hi;
    int mrc;
    if (b->kind == SPRIG_UNBOUNDED) {
        mrc = get(w, w->asc ? MDB_FIRST : MDB_LAST);
    } else if (w->asc) {
        mrc = seek_ge(w, b->key, b->kind == SPRIG_EXCLUDED);
    } else {
        mrc = seek_le(w, b->key, b->kind == SPRIG_EXCLUDED);
    }
    if (mrc == 0 && w->after && !after_ok(w)) {
        mrc = seek_after(w);
    }
    w->beyond = mrc == 0 && past_end(w);
    return w->beyond ? MDB_NOTFOUND : mrc;
}

static int
walk_next(walk *w)
{
    int mrc = get(w, w->asc ? MDB_NEXT : MDB_PREV);
    w->beyond = mrc == 0 && past_end(w);
    return w->beyond ? MDB_NOTFOUND : mrc;
}

/* Visit: 0 go on, 1 stop (limit reached), < 0 an error. */
typedef int (*visit_fn)(walk *w, void *arg);

/* The entries just outside the range [lo, hi] (the last below lo, the
 * first above hi) checked with w->edge: a key renamed in order (a flipped
 * byte) out of the range sits exactly there, so a range's answer missing
 * it would read as right (the check of miss.c, for key ranges).  SPRIG_OK,
 * the edge check's error, or LMDB's. */
static int
walk_edges(walk *w, void *arg)
{
    /* the far side: where the walk stopped (none when the table ended) */
    int rc = w->beyond ? w->edge(w, arg) : SPRIG_OK;
    const sprig_bound *near = w->asc ? &w->lo : &w->hi;
    if (rc || near->kind == SPRIG_UNBOUNDED) {
        return rc;
    }
    bool incl = near->kind == SPRIG_INCLUDED;
    int mrc =
        w->asc ? seek_le(w, near->key, incl) : seek_ge(w, near->key, incl);
    rc = mrc ? SPRIG_OK : w->edge(w, arg);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "walking a view");
    }
    return rc;
}

static int
walk_range(walk *w, visit_fn fn, void *arg)
{
    int mrc = walk_start(w);
    size_t seen = 0;
    while (mrc == 0) {
        int rc = fn(w, arg);
        if (rc) {
            return rc;
        }
        seen++;
        mrc = walk_next(w);
    }
    if (mrc != MDB_NOTFOUND) {
        return sprig__mdb_err(mrc, "walking a view");
    }
    return w->edge && !(w->point && seen) ? walk_edges(w, arg) : SPRIG_OK;
}

static int
cmp_keys(const void *a, const void *b)
{
    return sprig__bytes_cmp(*(const sprig_bytes *)a, *(const sprig_bytes *)b);
}

/* KEYS: one [K, K] range per distinct key, in walk order. */
static int
walk_keys(walk *w, visit_fn fn, void *arg)
{
    size_t n = w->q->match.n_keys;
    sprig_bytes *ks = sprig__malloc((n ? n : 1) * sizeof *ks);
    if (!ks) {
        return sprig__err(SPRIG_ENOMEM, "out of memory querying a view");
    }
    memcpy(ks, w->q->match.keys, n * sizeof *ks);
    qsort(ks, n, sizeof *ks, cmp_keys);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t j = w->asc ? i : n - 1 - i;
        if (i && cmp_keys(&ks[j], &ks[w->asc ? j - 1 : j + 1]) == 0) {
            continue;
        }
        w->lo = w->hi = (sprig_bound){SPRIG_INCLUDED, ks[j]};
        w->point = true;
        rc = walk_range(w, fn, arg);
    }
    sprig__free(ks);
    return rc;
}

/* The smallest key above every key starting with p: false if none. */
static bool
successor(sprig_bytes p, uint8_t *out, size_t *n)
{
    const uint8_t *b = p.data;
    for (size_t i = p.len; i > 0; i--) {
        if (b[i - 1] != 0xFF) {
            memcpy(out, b, i);
            out[i - 1]++;
            *n = i;
            return true;
        }
    }
    return false;
}

/* Walk table `dbi` over q's match; `after` applies q's pagination. */
static int
walk_match(MDB_txn *txn, MDB_dbi dbi, bool dup, const sprig_view_query *q,
           bool after, visit_fn fn, visit_fn edge, void *arg)
{
    uint8_t succ[SPRIG_KEY_MAX];
    size_t sn = 0;
    walk w = {NULL, dup, q->order != SPRIG_DESC, {0},
              {0},  q,   after && q->has_after,  {0},
              {0}};
    w.edge = edge;
    int mrc = mdb_cursor_open(txn, dbi, &w.cur);
    if (mrc) {
        return sprig__mdb_err(mrc, "opening a cursor");
    }
    int rc;
    const sprig_bytes key = q->match.key;
    switch (q->match.kind) {
    case SPRIG_MATCH_KEYS: rc = walk_keys(&w, fn, arg); break;
    case SPRIG_MATCH_KEY:
        w.lo = w.hi = (sprig_bound){SPRIG_INCLUDED, key};
        w.point = true;
        rc = walk_range(&w, fn, arg);
        break;
    case SPRIG_MATCH_RANGE:
        w.lo = q->match.range.start;
        w.hi = q->match.range.end;
        rc = walk_range(&w, fn, arg);
        break;
    case SPRIG_MATCH_PREFIX:
        if (key.len) {
            w.lo = (sprig_bound){SPRIG_INCLUDED, key};
        }
        if (key.len && successor(key, succ, &sn)) {
            w.hi = (sprig_bound){SPRIG_EXCLUDED, {succ, sn}};
        }
        rc = walk_range(&w, fn, arg);
        break;
    default: rc = walk_range(&w, fn, arg); break;
    }
    mdb_cursor_close(w.cur);
    return rc < 0 ? rc : SPRIG_OK;
}

/* ---- one query
 * ---------------------------------------------------------------- */

typedef enum { Q_MAPPINGS, Q_REDUCE, Q_GROUPED } qkind;

typedef struct vop {
    sprig__ldb *ldb;
    sprig__view *v;
    const sprig_view_query *q;
    qkind kind;
    bool docs;
    sprig_mapping_list *list; /* Q_MAPPINGS, Q_GROUPED */
    sprig_buf *out;           /* Q_REDUCE */
    sprig__pair *pairs;       /* scratch: one (key, id) group */
    size_t npairs, cappairs;
    sprig_bytes *states; /* scratch: C reduce results to combine */
    size_t nstates, capstates, nkeys;
    sprig_buf *sbufs; /* per state slot: its decoded bytes */
    size_t nsbufs, capsbufs;
    sprig_buf acc;
    bool has_acc;
    sprig__bstate bs;
    sprig__vscratch vs;
} vop;

static int
grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return SPRIG_OK;
    }
    size_t c = *cap ? *cap * 2 : 16;
    void *p = sprig__realloc(*arr, c * elem);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory querying a view");
    }
    *arr = p;
    *cap = c;
    return SPRIG_OK;
}

/* The (key, id) entry at w checked against its document's record d[id]
 * (CRC-checked): o->pairs gets the pairs of the record with w's key;
 * *rev and *hash the record's.  SPRIG_ECORRUPT when it has none. */
static int
entry_pairs(walk *w, vop *o, uint64_t *rev_out, const uint8_t **hash_out)
{
    MDB_val rec;
    uint64_t rev = 0;
    const uint8_t *hash = NULL;
    sprig_bytes pl;
    if (w->v.mv_size == 0 || w->v.mv_size > SPRIG_ID_MAX) { /* from disk */
        return sprig__err(SPRIG_ECORRUPT,
                          "view '%s' of collection '%s': an index entry's "
                          "document id is malformed",
                          o->v->def->name, o->v->coll->name);
    }
    int mrc = mdb_get(mdb_cursor_txn(w->cur), o->v->d, &w->v, &rec);
    int rc = mrc == MDB_NOTFOUND /* the index names a record not there */
                 ? sprig__err(SPRIG_ECORRUPT,
                              "view '%s' of collection '%s': an index entry "
                              "names a document with no record",
                              o->v->def->name, o->v->coll->name)
                 : sprig__mdb_err(mrc, "reading a view record");
    rc = rc ? rc
            : sprig__view_d_read(o->v, B(w->v), B(rec), &rev, &hash, &pl,
                                 &o->vs.dec);
    sprig__pairs it;
    sprig__pair p;
    int more = 0;
    rc = rc ? rc : sprig__pairs_init(&it, pl);
    o->npairs = 0;
    while (rc == 0 && (more = sprig__pairs_next(&it, &p)) == 1) {
        if (kcmp(w, p.key) == 0) {
            rc = grow((void **)&o->pairs, &o->cappairs, o->npairs,
                      sizeof *o->pairs);
            if (rc == 0) {
                o->pairs[o->npairs++] = p;
            }
        }
    }
    rc = rc ? rc : more;
    if (rc == 0 && o->npairs == 0) { /* the record does not back the entry */
        rc = sprig__view_entry_corrupt(o->v, B(w->k), B(w->v));
    }
    *rev_out = rev;
    *hash_out = hash;
    return rc;
}

/* A damaged row just outside a query's range: the query is refused. */
static int
edge_refused(const vop *o, int rc)
{
    if (rc != SPRIG_ECORRUPT && rc != SPRIG_EAUTH) {
        return rc;
    }
    char why[400];
    snprintf(why, sizeof why, "%s", sprig_errmsg());
    return sprig__err(SPRIG_ECORRUPT,
                      "database '%s', view '%s' of collection '%s': a query "
                      "cannot be answered: the row next to its key range is "
                      "damaged and may be one of its keys, renamed (%s)",
                      o->ldb->name, o->v->def->name, o->v->coll->name, why);
}

/* An entry just outside a query's range (walk_edges). */
static int
edge_mapping(walk *w, void *arg)
{
    uint64_t rev;
    const uint8_t *hash;
    return edge_refused(arg, entry_pairs(w, arg, &rev, &hash));
}

/* A reduce value just outside a query's range: its CRC covers its key. */
static int
edge_reduce(walk *w, void *arg)
{
    vop *o = arg;
    sprig_bytes val;
    return edge_refused(
        o, sprig__view_r_read(o->v, B(w->k), B(w->v), &o->vs.dec, &val));
}

/* The mappings of one (key, id) entry. */
static int
visit_mapping(walk *w, void *arg)
{
    vop *o = arg;
    if (o->q->limit && o->list->n >= o->q->limit) {
        return 1;
    }
    uint64_t rev = 0;
    const uint8_t *hash = NULL;
    int rc = entry_pairs(w, o, &rev, &hash);
    if (rc) {
        return rc;
    }
    sprig_header h = {B(w->v), rev, {0}};
    memcpy(h.hash, hash, 16);
    for (size_t i = 0; rc == 0 && i < o->npairs; i++) {
        const sprig__pair *q = &o->pairs[w->asc ? i : o->npairs - 1 - i];
        rc = sprig__mapping_list_push(o->list, B(w->k), q->value, &h);
    }
    return rc;
}

/* Attach each mapping's document; drop mappings whose document is gone
 * (possible only when a lazy view was not brought up to date). */
static int
attach_docs(MDB_txn *txn, vop *o)
{
    sprig_mapping_list *l = o->list;
    size_t j = 0;
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        MDB_val k = V(l->items[i].source.id), v;
        int mrc = mdb_get(txn, o->v->coll->dbi, &k, &v);
        if (mrc == MDB_NOTFOUND) { /* confirmed by the neighbours */
            rc = sprig__miss_doc_confirm(txn, o->ldb, o->v->coll, &k);
            continue;
        }
        uint64_t rev;
        const uint8_t *hash = NULL;
        sprig_bytes contents;
        rc = sprig__mdb_err(mrc, "reading a document");
        rc = rc ? rc
                : sprig__doc_read(o->ldb, o->v->coll, l->items[i].source.id, &v,
                                  &rev, &hash, &contents, &o->vs.docbuf);
        sprig_doc *d =
            rc ? NULL
               : sprig__doc_new(l->items[i].source.id, rev, hash, contents);
        if (rc == 0 && !d) {
            rc = SPRIG_ENOMEM;
        }
        l->items[j++] = l->items[i];
        l->items[j - 1].doc = d;
    }
    l->n = rc ? l->n : j;
    return rc;
}

/* Fold the collected C results (and the accumulator) into the
 * accumulator with one re-reduce. */
static int
fold_states(vop *o)
{
    const sprig_view_def *d = o->v->def;
    if (o->has_acc) {
        int rc = grow((void **)&o->states, &o->capstates, o->nstates,
                      sizeof *o->states);
        if (rc) {
            return rc;
        }
        memmove(o->states + 1, o->states, o->nstates * sizeof *o->states);
        o->states[0] = sprig_buf_bytes(&o->acc);
        o->nstates++;
    }
    sprig_buf next = {0};
    int rc = d->reduce(o->states, o->nstates, true, &next, d->udata);
    sprig_buf_clear(&o->acc);
    o->acc = next;
    o->has_acc = true;
    o->nstates = 0;
    return rc ? sprig__err(rc > 0 || rc < SPRIG_ENOTLEADER ? SPRIG_EINVAL : rc,
                           "view '%s': the reduce function failed", d->name)
              : SPRIG_OK;
}

#define FOLD_EVERY 1024

static int
visit_reduce(walk *w, void *arg)
{
    vop *o = arg;
    o->nkeys++;
    sprig_bytes val;
    if (!o->v->def->reduce) {
        sprig__bstate s;
        int rc = sprig__view_r_read(o->v, B(w->k), B(w->v), &o->vs.dec, &val);
        rc = rc ? rc : sprig__bstate_decode(val, &s);
        if (rc == 0) {
            sprig__bstate_merge(&o->bs, &s);
        }
        return rc;
    }
    int rc =
        grow((void **)&o->states, &o->capstates, o->nstates, sizeof *o->states);
    rc = rc ? rc
            : grow((void **)&o->sbufs, &o->capsbufs, o->nstates,
                   sizeof *o->sbufs);
    if (rc == 0 && o->nstates >= o->nsbufs) { /* new slots start empty */
        memset(o->sbufs + o->nsbufs, 0,
               (o->capsbufs - o->nsbufs) * sizeof *o->sbufs);
        o->nsbufs = o->capsbufs;
    }
    /* a decoded state lives in its slot's own buffer until the fold */
    rc = rc ? rc
            : sprig__view_r_read(o->v, B(w->k), B(w->v), &o->sbufs[o->nstates],
                                 &val);
    if (rc == 0) {
        o->states[o->nstates++] = val;
    }
    return rc == 0 && o->nstates >= FOLD_EVERY ? fold_states(o) : rc;
}

static int
finish_reduce(vop *o)
{
    const sprig_view_def *d = o->v->def;
    if (!d->reduce) {
        return sprig__bstate_result(&o->bs, d->builtin_reduce, o->out);
    }
    if (o->nkeys == 0) {
        int rc = d->reduce(NULL, 0, false, o->out, d->udata);
        return rc ? sprig__err(rc > 0 || rc < SPRIG_ENOTLEADER ? SPRIG_EINVAL
                                                               : rc,
                               "view '%s': the reduce function failed", d->name)
                  : SPRIG_OK;
    }
    if (o->nkeys == 1) { /* one key: its stored result */
        return sprig_buf_append(o->out, o->states[0].data, o->states[0].len);
    }
    int rc = o->nstates ? fold_states(o) : 0;
    return rc ? rc : sprig_buf_append(o->out, o->acc.data, o->acc.len);
}

static int
visit_grouped(walk *w, void *arg)
{
    vop *o = arg;
    if (o->q->limit && o->list->n >= o->q->limit) {
        return 1;
    }
    sprig_bytes val;
    int rc = sprig__view_r_read(o->v, B(w->k), B(w->v), &o->vs.dec, &val);
    if (rc || o->v->def->reduce) {
        return rc ? rc : sprig__mapping_list_push(o->list, B(w->k), val, NULL);
    }
    sprig__bstate s;
    o->vs.tmp.len = 0;
    rc = sprig__bstate_decode(val, &s);
    rc = rc ? rc
            : sprig__bstate_result(&s, o->v->def->builtin_reduce, &o->vs.tmp);
    return rc ? rc
              : sprig__mapping_list_push(o->list, B(w->k),
                                         sprig_buf_bytes(&o->vs.tmp), NULL);
}

/* Answer the query in `txn`; resets its outputs first (a write request may
 * run more than once). */
static int
run(MDB_txn *txn, vop *o)
{
    sprig__view *v = o->v;
    o->nstates = o->nkeys = 0;
    o->has_acc = false;
    sprig__bstate_init(&o->bs);
    if (o->list) {
        sprig__mapping_list_clear(o->list);
    }
    if (o->out) {
        o->out->len = 0;
    }
    switch (o->kind) {
    case Q_MAPPINGS: {
        int rc = walk_match(txn, v->e, true, o->q, true, visit_mapping,
                            edge_mapping, o);
        return rc || !o->docs ? rc : attach_docs(txn, o);
    }
    case Q_REDUCE: {
        int rc = walk_match(txn, v->r, false, o->q, false, visit_reduce,
                            edge_reduce, o);
        return rc ? rc : finish_reduce(o);
    }
    case Q_GROUPED:
        return walk_match(txn, v->r, false, o->q, true, visit_grouped,
                          edge_reduce, o);
    }
    return SPRIG_EINVAL;
}

static int
write_apply(MDB_txn *txn, void *arg)
{
    vop *o = arg;
    bool left;
    int rc = sprig__view_index_pending(txn, o->v, 0, &left, &o->vs);
    return rc ? rc : run(txn, o);
}

static int
resolve(vop *o)
{
    sprig__ldb *ldb = o->ldb;
    if (atomic_load(&ldb->dropped)) {
        return sprig__ldb_gone(ldb);
    }
    int rc = sprig__views_find(ldb, o->q->collection, o->q->view, &o->v);
    if (rc == 0 && o->v->codeless) {
        rc = sprig__err_about(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_VIEW,
                              "view '%s' of collection '%s' is a C view whose "
                              "code is not loaded in this program",
                              o->q->view, o->q->collection);
        sprig__errinfo_view(o->q->view);
        sprig__errinfo_collection(o->q->collection);
    }
    if (rc == 0 && o->kind != Q_MAPPINGS && !o->v->reduces) {
        rc = sprig__err(SPRIG_EINVAL,
                        "view '%s' of collection '%s' has no "
                        "reduce",
                        o->q->view, o->q->collection);
    }
    return rc;
}

static int
exec(vop *o)
{
    MDB_txn *txn;
    size_t pending = 0;
    int rc = resolve(o);
    rc = rc ? rc : sprig__env_read_begin(o->ldb->env, &txn);
    if (rc) {
        return rc;
    }
    if (o->v->def->policy == SPRIG_VIEW_LAZY) { /* others never lag */
        rc = sprig__view_pending(txn, o->v, &pending);
    }
    if (rc == 0 && pending && o->q->access == SPRIG_UPDATE_BEFORE) {
        sprig__env_read_end(o->ldb->env, txn);
        if (pending > SPRIG__VIEW_CHUNK) {
            rc = sprig__views_drain(o->ldb, o->v, NULL);
        }
        sprig__wreq req = {.apply = write_apply, .arg = o};
        return rc ? rc : sprig__writer_submit(&o->ldb->writer, &req);
    }
    rc = rc ? rc : run(txn, o);
    sprig__env_read_end(o->ldb->env, txn);
    if (rc == 0 && pending && o->q->access == SPRIG_UPDATE_AFTER) {
        sprig__views_kick(o->ldb, o->v);
    }
    return rc;
}

static void
vop_free(vop *o)
{
    sprig__free(o->pairs);
    sprig__free(o->states);
    for (size_t i = 0; i < o->nsbufs; i++) {
        sprig_buf_clear(&o->sbufs[i]);
    }
    sprig__free(o->sbufs);
    sprig_buf_clear(&o->acc);
    sprig__vscratch_free(&o->vs);
}

static int
list_op(sprig__ldb *ldb, const sprig_view_query *q, qkind kind, bool docs,
        sprig_mapping_list **out)
{
    vop o = {.ldb = ldb, .q = q, .kind = kind, .docs = docs};
    int rc = sprig__mapping_list_new(&o.list);
    rc = rc ? rc : exec(&o);
    vop_free(&o);
    if (rc) {
        sprig_mapping_list_free(o.list);
        return rc;
    }
    *out = o.list;
    return SPRIG_OK;
}

int
sprig__lview_op_query(sprig_db *db, const sprig_view_query *q, bool with_docs,
                      sprig_mapping_list **out)
{
    return list_op(sprig__db_ldb(db), q, Q_MAPPINGS, with_docs, out);
}

int
sprig__lview_op_reduce_grouped(sprig_db *db, const sprig_view_query *q,
                               sprig_mapping_list **out)
{
    return list_op(sprig__db_ldb(db), q, Q_GROUPED, false, out);
}

int
sprig__lview_op_reduce(sprig_db *db, const sprig_view_query *q, sprig_buf *out)
{
    vop o = {.ldb = sprig__db_ldb(db), .q = q, .kind = Q_REDUCE, .out = out};
    int rc = exec(&o);
    vop_free(&o);
    if (rc) {
        out->len = 0;
    }
    return rc;
}
