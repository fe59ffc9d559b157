/*
 * view.h -- private interface of the placement-independent half of views
 * (F4): what src/core provides to any implementation of the view ops.
 *
 *   mapping.c     the emitter behind sprig_emit() and the encoded pair lists
 *                 it produces; sprig_mapping_list, the result object
 *   json_view.c   declarative views over JSON (key/value paths, the key
 *                 encoding of JSON scalars) and the built-in reduces
 *   json_scan.c   the one-pass scanner that finds the views' paths in a
 *                 document without building a tree (the write path)
 *   schema_json.c schema files
 *   view_api.c    the public view functions: argument checks, then the
 *                 handle's ops table
 *
 * An encoded pair list is what one document emitted into one view:
 *   [u32 n] then n times [u16 key length][key][u32 value length][value],
 * sorted by (key, value) in memcmp order, so equal lists mean equal
 * mappings and two lists diff with one merge.
 */
#ifndef SPRIG_CORE_VIEW_H
#define SPRIG_CORE_VIEW_H

#include "core.h"

struct json_t; /* jansson's; only json_view.c looks inside */

/* ---- emitter and pair lists (mapping.c) ------------------------------ */

struct sprig_emitter {
    sprig_buf buf; /* pairs in emit order, without the count */
    uint32_t n;
    int rc;       /* the first failure of sprig_emit, returned by the map */
    bool refused; /* sprig_emit refused a pair that can never be stored
                     (an empty key, a key or value over its limit): the
                     failure is the same every time, not a passing one */
};

/** Forget the pairs, keep the memory. */
void sprig__emitter_reset(sprig_emitter *e);
void sprig__emitter_free(sprig_emitter *e);
/** Append the emitted pairs, sorted, as an encoded pair list to `out`. */
int sprig__emitter_sorted(const sprig_emitter *e, sprig_buf *out);

typedef struct sprig__pair {
    sprig_bytes key, value;
} sprig__pair;

/** Reading an encoded pair list (borrowed bytes). */
typedef struct sprig__pairs {
    sprig__rd rd;
    uint32_t left;
} sprig__pairs;

/** Start reading; SPRIG_ECORRUPT when the count is unreadable. */
int sprig__pairs_init(sprig__pairs *p, sprig_bytes list);
/** 1 and the next pair, 0 at the end, SPRIG_ECORRUPT. */
int sprig__pairs_next(sprig__pairs *p, sprig__pair *out);

/* ---- mapping lists (mapping.c) --------------------------------------- */

typedef struct sprig__mapping {
    sprig_bytes key, value;
    sprig_header source; /* id in the arena; all zero for grouped reduce */
    sprig_doc *doc;      /* owned; NULL unless asked for */
} sprig__mapping;

typedef struct sprig__chunk sprig__chunk;

struct sprig_mapping_list {
    size_t n, cap;
    sprig__mapping *items;
    sprig__chunk *chunks; /* arena of the bytes the items point at */
};

/** A new empty list.  Errors: SPRIG_ENOMEM. */
int sprig__mapping_list_new(sprig_mapping_list **out);
/** Append a mapping, copying key, value and the source's id (`source`
 *  NULL: none). */
int sprig__mapping_list_push(sprig_mapping_list *l, sprig_bytes key,
                             sprig_bytes value, const sprig_header *source);
/** Give mapping i its document (owned by the list from then on). */
void sprig__mapping_list_set_doc(sprig_mapping_list *l, size_t i,
                                 sprig_doc *doc);
/** Empty the list (for a request that is re-run). */
void sprig__mapping_list_clear(sprig_mapping_list *l);

/* ---- views in schemas (schema.c) ------------------------------------- */

/** Stand-ins for the functions of a C view in a schema read back from a
 *  storage (the program's code is not there).  Both fail with
 *  SPRIG_ESCHEMA; an engine never calls them. */
int sprig__codeless_map(const sprig_doc *doc, sprig_emitter *e, void *udata);
int sprig__codeless_reduce(const sprig_bytes *values, size_t n, bool rereduce,
                           sprig_buf *out, void *udata);

/** Most views one collection may declare. */
#define SPRIG__VIEWS_MAX 32

/** Longest json_key / json_value text of a declarative view. */
#define SPRIG__JSON_PATH_MAX 1024

/* ---- declarative views (json_view.c) --------------------------------- */

/** Check the path syntax of a declarative view; SPRIG_EINVAL with a detail
 *  naming `what` ("view 'x' json_key"). */
int sprig__json_paths_check(const char *what, const char *paths, bool many);

typedef struct sprig__jview sprig__jview;

/** The compiled paths of declarative view `def`.  Errors: SPRIG_EINVAL,
 *  SPRIG_ENOMEM. */
int sprig__jview_new(const sprig_view_def *def, sprig__jview **out);
void sprig__jview_free(sprig__jview *v);

/** Parse document contents.  Contents that are not JSON give *out = NULL
 *  and SPRIG_OK; only running out of memory fails (SPRIG_ENOMEM). */
int sprig__json_parse(sprig_bytes contents, struct json_t **out);
void sprig__json_free(struct json_t *doc);

/** An upper bound of the bytes of any key view `v` emits for a document of
 *  `doc_len` bytes: a document under SPRIG_KEY_MAX by this bound cannot
 *  make the view's map fail with SPRIG_ETOOBIG, so need not be mapped to
 *  find out. */
size_t sprig__jview_key_bound(const sprig__jview *v, size_t doc_len);

/** Emit the mappings of a parsed document (NULL: emits nothing). */
int sprig__jview_map(const sprig__jview *v, struct json_t *doc,
                     sprig_emitter *e);

/* ---- one-pass extraction (json_scan.c) ------------------------------- */

/** Where a declared path ended in a document: its kind (0: not found) and
 *  its bytes (borrowed from the contents). */
typedef struct sprig__jnode {
    uint8_t kind;
    const uint8_t *bytes;
    size_t len;
} sprig__jnode;

/** The paths of all the declarative views of a collection, compiled to be
 *  found in one pass over a document.  Read-only once built: any number of
 *  threads may scan with it, each with its own nodes. */
typedef struct sprig__jscan sprig__jscan;

/** Compile views[0..n-1].  *out stays NULL (and SPRIG_OK) when they have
 *  more than 64 distinct paths: use the tree (sprig__jview_map) then.
 *  Errors: SPRIG_ENOMEM. */
int sprig__jscan_new(const sprig__jview *const *views, size_t n,
                     sprig__jscan **out);
void sprig__jscan_free(sprig__jscan *s);
/** Nodes a scan fills (one per distinct path). */
size_t sprig__jscan_paths(const sprig__jscan *s);
/** Scan `contents` once into nodes[0 .. sprig__jscan_paths).  False when
 *  it is not JSON that json_loadb(JSON_ALLOW_NUL) accepts (every node is
 *  then empty, so views emit nothing, as with the tree).  No allocation
 *  but for numbers over 64 characters; never fails otherwise. */
bool sprig__jscan_run(const sprig__jscan *s, sprig_bytes contents,
                      sprig__jnode *nodes);
/** Emit view k's mappings (k: its position in sprig__jscan_new's views)
 *  from a scan's nodes: exactly what sprig__jview_map emits for the same
 *  document.  Errors: SPRIG_ETOOBIG, SPRIG_ENOMEM. */
int sprig__jscan_map(const sprig__jscan *s, size_t k, const sprig__jnode *nodes,
                     sprig_emitter *e);

/* ---- built-in reduces (json_view.c) ---------------------------------- */

/** A JSON number: an exact 64-bit integer or a double. */
typedef struct sprig__num {
    bool is_int;
    int64_t i;
    double d;
} sprig__num;

/** The state of a built-in reduce over some values.  The same state serves
 *  every kind; the kind only picks the result and which removals are
 *  exact.  Stored per key in a fixed binary form. */
typedef struct sprig__bstate {
    uint64_t count; /* values */
    uint64_t nnum;  /* numeric values */
    uint64_t nreal; /* numeric values that are not integers */
    __int128 isum;  /* sum of the integers: exact */
    double rsum;    /* sum of the others */
    sprig__num min, max;
} sprig__bstate;

#define SPRIG__BSTATE_LEN 75

/** Parse a value's JSON text as a number; false if it is not one. */
bool sprig__json_number(sprig_bytes text, sprig__num *out);
void sprig__bstate_init(sprig__bstate *s);
void sprig__bstate_add(sprig__bstate *s, sprig_bytes value);
void sprig__bstate_merge(sprig__bstate *s, const sprig__bstate *o);
/** Take `value` out; false when `kind` cannot do that exactly (the caller
 *  then recomputes the state from the remaining values). */
bool sprig__bstate_remove(sprig__bstate *s, sprig_builtin_reduce kind,
                          sprig_bytes value);
void sprig__bstate_encode(const sprig__bstate *s,
                          uint8_t out[SPRIG__BSTATE_LEN]);
/** SPRIG_ECORRUPT unless `in` is a stored state. */
int sprig__bstate_decode(sprig_bytes in, sprig__bstate *s);
/** The result of `kind` as JSON text, appended to `out`. */
int sprig__bstate_result(const sprig__bstate *s, sprig_builtin_reduce kind,
                         sprig_buf *out);

/* ---- the generic half of the view ops (view_api.c) ------------------- */

/** sprig_view_delete_docs() for any placement: query the matched mappings
 *  (update-before), delete their documents in one transaction expecting
 *  the revisions seen, and start over when one changed meanwhile. */
int sprig__view_delete_docs_generic(sprig_db *db, const sprig_view_query *q,
                                    uint64_t *deleted);

#endif /* SPRIG_CORE_VIEW_H */
