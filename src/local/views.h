/*
 * views.h -- private interface of the local engine's views (F4).
 *
 *   views.c       a database's views: tables, the stored version record,
 *                 rebuilding an index whose definition changed (at open),
 *                 the background thread behind SPRIG_UPDATE_AFTER
 *   view_index.c  mapping documents and keeping an index current: the hook
 *                 every document write calls (docs.c), pending documents of
 *                 lazy views, per-key reduce results
 *   view_query.c  the sprig_db_ops view entries: walking an index by key,
 *                 reduce, grouped reduce
 *
 * Tables of view V of collection C, in the database's environment:
 *   v.C.V.e  entries: view key -> source id (MDB_DUPSORT, ids sorted), so a
 *            hot key holds its ids in a sub-tree instead of one big value
 *   v.C.V.d  documents: source id -> [revision u64][hash 16][pair list]
 *            (what the document emitted, view.h's encoded pair list): the
 *            values live here, once per document, and a re-map diffs the
 *            old list against the new one
 *   v.C.V.r  reduce: view key -> the reduced value of the key's mappings
 *            (a sprig__bstate for built-in reduces, the C reduce's bytes
 *            otherwise); only for views that reduce
 *   v.C.V.i  invalidated: source id -> CRC-32C of (kind 'i', "C/V", id)
 *            (u32 LE; checked on every read) for documents changed since
 *            a lazy view was last brought up to date
 * and in `meta`, "view:C/V" -> the definition the index was built with.
 * Keys (<= SPRIG_KEY_MAX 400) and ids (<= SPRIG_ID_MAX 255) each fit
 * LMDB's 511-byte key limit on their own, which a composite (key, id) key
 * would not: hence DUPSORT for entries.
 *
 * Invariants (after every committed transaction):
 *  - For an eager or unique view, and for a lazy view with an empty `i`:
 *    (K, X) is in `e` iff document X exists and emitted key K; `d[X]`
 *    holds exactly what X emitted, sorted; `r[K]` is the reduce of every
 *    value mapped to K, and exists iff K has a mapping.
 *  - For a lazy view, every document whose mappings may differ from the
 *    index is in `i`; everything else is as above.
 *  - A unique view has at most one id per key.
 */
#ifndef SPRIG_LOCAL_VIEWS_H
#define SPRIG_LOCAL_VIEWS_H

#include "core/view.h"
#include "local.h"

typedef struct sprig__view {
    const sprig_view_def *def; /* in ldb->schema */
    sprig__coll *coll;
    sprig__ldb *ldb;
    char scope[2 * SPRIG_NAME_MAX + 2]; /* "coll/view": values' location */
    MDB_dbi e, d, r, i;
    bool codeless;            /* a C view whose code is not loaded */
    bool reduces;             /* has a C reduce or a built-in one */
    sprig__jview *jv;         /* declarative views */
    const sprig__jscan *scan; /* its collection's (views.scans) */
    size_t scan_k;            /* its index in that scanner */
    atomic_bool bg_pending;
} sprig__view;

struct sprig__views {
    sprig__view *v;
    size_t n;
    size_t *first, *count; /* per collection: its views v[first ..) */
    /* per collection: the paths of its declarative views, found in one
     * pass per document (NULL: none, or too many paths -- jansson's tree
     * then) */
    sprig__jscan **scans;
    /* the background indexer (SPRIG_UPDATE_AFTER) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool started, wake;
    atomic_bool stop;
};

/* ---- views.c ----------------------------------------------------------- */

/** Tables the views of `schema` need (for the environment's maxdbs). */
unsigned sprig__views_tables(const sprig_schema_def *schema);
/** Set up the views of `ldb` (its tables and writer exist): open their
 *  tables, and rebuild each index whose definition changed. */
int sprig__views_open(sprig__ldb *ldb);
/** Stop the background indexer and free; NULL-safe. */
void sprig__views_close(sprig__ldb *ldb);
/** View `name` of collection `coll`: SPRIG_ESCHEMA when there is none. */
int sprig__views_find(sprig__ldb *ldb, const char *coll, const char *name,
                      sprig__view **out);
/** Ask the background indexer to bring `v` up to date. */
void sprig__views_kick(sprig__ldb *ldb, sprig__view *v);
/** Index the pending documents of `v` through the writer, a chunk per
 *  write transaction, until none are left (or `*stop` turns true). */
int sprig__views_drain(sprig__ldb *ldb, sprig__view *v,
                       const atomic_bool *stop);

/* Documents indexed per write transaction when catching up. */
#define SPRIG__VIEW_CHUNK 2000

/* The version of a view's definition record (meta "view:C/V"): an index
 * whose record has another version is rebuilt at open.  3: pending rows
 * carry their CRC (issue 17); 2: values through the codec. */
#define SPRIG__VIEW_RECORD_VERSION 3

/* ---- view_index.c ------------------------------------------------------- */

/** Scratch memory of one write request, reused across its documents. */
typedef struct sprig__vgroup sprig__vgroup;
typedef struct sprig__vscratch {
    sprig_emitter em;
    sprig__jnode nodes[64]; /* what a scan found (sprig__jscan_run) */
    sprig_buf newrec, oldrec, tmp;
    sprig_buf enc, dec, kvals; /* codec scratch; a key's decoded records */
    sprig_buf docbuf;          /* a stored document's decoded contents */
    size_t *kofs;              /* [start, len] of each record in kvals */
    size_t nkofs, capkofs;
    sprig_bytes *vals; /* values being reduced */
    size_t nvals, capvals;
    sprig__pair *pairs; /* old then new pairs of the document */
    size_t npairs, cappairs;
    sprig__vgroup *groups; /* keys whose values changed */
    size_t ngroups, capgroups;
    sprig_doc *doc; /* the document handed to a C map */
} sprig__vscratch;

void sprig__vscratch_free(sprig__vscratch *s);

/**
 * The write hook: document `id` of collection `c` was just written with
 * `contents` (NULL: deleted) as revision `rev` with `hash`, inside `txn`.
 * Eager and unique views re-map it; lazy ones record it as pending.
 * Errors: SPRIG_EUNIQUE, the map's own, storage errors.
 */
int sprig__views_changed(MDB_txn *txn, sprig__ldb *ldb, sprig__coll *c,
                         sprig_bytes id, uint64_t rev, const uint8_t hash[16],
                         const sprig_bytes *contents, sprig__vscratch *vs);

/* Values of views go through the codec (codec.h) with the view's
 * collection's codec: a `d` record is [revision | flags << 56][hash 16]
 * [encoded pair list] (location 'v', id = the document id); an `r` value
 * is [flags u8][encoded value] (location 'r', id = the view key). */

/** Decode the `d` record `stored` of document `id`: its revision, hash
 *  (in `stored`) and pair list (in `stored` or `scratch`).
 *  SPRIG_ECORRUPT, SPRIG_EAUTH. */
int sprig__view_d_read(const sprig__view *v, sprig_bytes id, sprig_bytes stored,
                       uint64_t *rev, const uint8_t **hash, sprig_bytes *pairs,
                       sprig_buf *scratch);
/** Write d[id] from the plain record `rec` ([rev][hash][pairs]). */
int sprig__view_d_put(MDB_txn *txn, sprig__view *v, sprig_bytes id,
                      sprig_bytes rec, sprig_buf *scratch);
/** Decode the `r` value `stored` of view key `key` into *plain (in
 *  `stored` or `scratch`).  SPRIG_ECORRUPT, SPRIG_EAUTH. */
int sprig__view_r_read(const sprig__view *v, sprig_bytes key,
                       sprig_bytes stored, sprig_buf *scratch,
                       sprig_bytes *plain);

/* Entries are protected through the records (issue 17): an entry (K, X)
 * of `e` is right only if X's CRC-checked d record holds a pair with key
 * K, and every read of an entry checks that (query, reduce recompute,
 * the unique check, sprig_storage_check); the query and the recompute
 * read d[X] for its values anyway, so the check costs no lookup. */

/** SPRIG_ECORRUPT (detail: the view, collection, key and id, "the view's
 *  entries table is damaged") for entry (key, id) of `v`, which its
 *  document's record does not back.  Returns the code. */
int sprig__view_entry_corrupt(const sprig__view *v, sprig_bytes key,
                              sprig_bytes id);
/** Whether decoded pair list `pl` holds a pair with key `key` (*found).
 *  SPRIG_ECORRUPT when the list is malformed. */
int sprig__view_pairs_have(sprig_bytes pl, sprig_bytes key, bool *found);

/** Whether row (id, value) of v's pending table `i` is intact (its value
 *  is the CRC of its location): SPRIG_OK or SPRIG_ECORRUPT naming the view
 *  and the id. */
int sprig__view_pending_ok(const sprig__view *v, sprig_bytes id,
                           sprig_bytes value);

/** Re-map up to `max` (0: all) pending documents of `v`; *left tells
 *  whether some remain. */
int sprig__view_index_pending(MDB_txn *txn, sprig__view *v, size_t max,
                              bool *left, sprig__vscratch *vs);

/** How many pending documents `v` has in `txn`'s snapshot. */
int sprig__view_pending(MDB_txn *txn, sprig__view *v, size_t *out);

/** A finding of sprig__view_check: what is wrong, and the document. */
typedef void (*sprig__view_bad_fn)(void *arg, const sprig__view *v,
                                   const char *what, sprig_bytes id);

/** Check view v against its collection in read transaction `txn` (issue
 *  17, sprig_storage_check): every document not pending maps to exactly
 *  the pairs its record holds, at its revision; no record is left for a
 *  document that is gone (an orphan); the entries table holds exactly the
 *  records' pairs, and each entry (K, X) is backed by X's record.  `bad` is
 * called per finding.  Codeless views are skipped (no code to map with).
 * Errors: storage errors only. */
int sprig__view_check(MDB_txn *txn, sprig__view *v, sprig__vscratch *vs,
                      sprig__view_bad_fn bad, void *arg);

/** Empty all the tables of `v`. */
int sprig__view_clear(MDB_txn *txn, sprig__view *v);

/** Map up to `max` documents of the collection with ids after `*after`
 *  (empty: from the first), advancing `*after` (an SPRIG_ID_MAX buffer,
 *  length in *after_len); *done when the collection is exhausted. */
int sprig__view_index_docs(MDB_txn *txn, sprig__view *v, uint8_t *after,
                           size_t *after_len, size_t max, bool *done,
                           sprig__vscratch *vs);

/* ---- view_query.c (the view entries of the local sprig_db_ops) ---------- */

int sprig__lview_op_query(sprig_db *db, const sprig_view_query *q,
                          bool with_docs, sprig_mapping_list **out);
int sprig__lview_op_reduce(sprig_db *db, const sprig_view_query *q,
                           sprig_buf *out);
int sprig__lview_op_reduce_grouped(sprig_db *db, const sprig_view_query *q,
                                   sprig_mapping_list **out);

#endif /* SPRIG_LOCAL_VIEWS_H */
