/*
 * pagecheck.c -- a verifier of LMDB's own page structure (issue 17, item
 * 3): LMDB 0.9 checks a page's number range and its branch/leaf flag when
 * a cursor loads it, but not its free-space bounds, its node offsets and
 * sizes, its key order or its counts, so a flipped byte there can make a
 * cursor skip entries (a registry read as empty) -- a wrong answer
 * presented as right.  This walks an environment's snapshot page by page
 * from the map, read-only, and says SPRIG_ECORRUPT naming the file, the
 * table, the page and what is wrong at the first damage found.
 *
 * What it checks, per page reached from the snapshot's meta page (the free
 * list, the table directory and every named table, their duplicate
 * sub-pages and sub-trees, overflow runs): the page number inside the file
 * and equal to the one in its header, reached once; its flags; the bounds
 * 16 <= lower <= upper <= page size; every node inside the page above
 * `upper`, 2-aligned, its key and data inside the page, and the nodes
 * filling exactly the space above `upper` (LMDB packs them); keys strictly
 * increasing and inside the range the parent's separators give; branch
 * children at the right depth; overflow runs inside the file with room for
 * their data; per table, the leaf entries summing to md_entries and the
 * pages to md_branch_pages/md_leaf_pages/md_overflow_pages; the free
 * list's pages disjoint from the pages in use, and in-use plus free pages
 * accounting for every page below the meta's last page.
 *
 * Design notes.  The format is LMDB's on-disk version 1 (liblmdb 0.9,
 * mdb.c: MDB_page, MDB_node, MDB_db, MDB_meta), read here by offsets; only
 * what Sprig creates is accepted (tables with no flags or MDB_DUPSORT, and
 * default byte-wise key order), anything else is reported.  Reads stay
 * inside the pages the file holds (fstat; a map of its own, since LMDB
 * does not give its map's address), never past its end, so damage cannot
 * fault the verifier.  The caller's read transaction pins the
 * snapshot; its meta page is the one whose transaction id equals the
 * transaction's (copied, then the id read again: a writer may reuse the
 * slot).  A bitmap of the pages (one bit each) tells a page reached twice.
 * Recursion is bounded by the tree depth (at most 32, LMDB's cursor stack).
 * The tables a budget leaves out are told to a callback, and a walk can
 * take one named table only (with the directory), asking a stop callback
 * every 256 pages: the background walk's (bgverify.c).
 */
#include "local.h"

#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PV_HDR                                                                 \
    16            /* page header: pgno u64, pad u16, flags u16, lower, upper   \
                   */
#define PV_NODE 8 /* node header: lo u16, hi u16, flags u16, ksize u16 */
#define PV_DB 48  /* MDB_db */
#define PV_MAXDEPTH 32

#define P_BRANCH 0x01
#define P_LEAF 0x02
#define P_OVERFLOW 0x04
#define P_META 0x08
#define P_DIRTY 0x10
#define P_LEAF2 0x20
#define P_SUBP 0x40
#define F_BIGDATA 0x01
#define F_SUBDATA 0x02
#define F_DUPDATA 0x04

/* An MDB_db record, decoded. */
typedef struct pv_db {
    uint16_t flags, depth;
    uint64_t branch, leaf, overflow, entries, root;
} pv_db;

typedef struct pv_count {
    uint64_t branch, leaf, overflow, entries;
} pv_count;

/* What a tree holds: 'f' the free list (u64 keys, page lists), 'm' the
 * table directory, 't' a table, 'd' a duplicate sub-tree. */
typedef struct pv_tree {
    char kind;
    bool dupsort;
    char name[96]; /* for messages */
} pv_tree;

typedef struct pv {
    const uint8_t *map;
    const char *path;
    uint64_t psize, in_file, last; /* pages the file holds; last_pg + 1 */
    uint8_t *seen;
    uint64_t used, freed; /* pages in use (metas too), pages listed free */
    const pv_tree *tree;
    sprig__verify_stats *st;
    uint64_t budget; /* pages left for named tables; UINT64_MAX: all */
    const sprig__verify_opts *o; /* `only`, `stop`, `skipped` */
    uint64_t tick;               /* pages since `stop` was last asked */
} pv;

static uint16_t
u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static uint64_t
u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int bad(pv *v, uint64_t pgno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
bad(pv *v, uint64_t pgno, const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sprig__err(SPRIG_ECORRUPT,
                      "database file '%s/data.mdb' is damaged: %s, page "
                      "%llu: %s",
                      v->path, v->tree ? v->tree->name : "the meta page",
                      (unsigned long long)pgno, what);
}

static void
db_decode(const uint8_t *p, pv_db *d)
{
    d->flags = u16(p + 4);
    d->depth = u16(p + 6);
    d->branch = u64(p + 8);
    d->leaf = u64(p + 16);
    d->overflow = u64(p + 24);
    d->entries = u64(p + 32);
    d->root = u64(p + 40);
}

/* Mark `n` pages from `pgno` as reached (once each, inside the file). */
static int
reach(pv *v, uint64_t pgno, uint64_t n)
{
    if (pgno < 2 || n > v->last || pgno > v->last - n) {
        return bad(v, pgno, "a page number outside the file's %llu pages",
                   (unsigned long long)v->last);
    }
    if (pgno + n > v->in_file) {
        return bad(v, pgno, "a page past the end of the file (%llu pages)",
                   (unsigned long long)v->in_file);
    }
    for (uint64_t i = pgno; i < pgno + n; i++) {
        if (v->seen[i >> 3] & (1u << (i & 7))) {
            return bad(v, i, "reached twice (a page in two places)");
        }
        v->seen[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    v->used += n;
    v->st->pages += n;
    v->tick += n;
    if (v->o->stop && v->tick >= 256) { /* ~1 MiB: a prompt answer */
        v->tick = 0;
        if (v->o->stop(v->o->arg)) {
            return SPRIG__ESTOP;
        }
    }
    return SPRIG_OK;
}

/* Byte-wise key order (LMDB's default, mdb_cmp_memn); the free list's
 * keys are native u64 (MDB_INTEGERKEY). */
static int
cmp(const pv *v, sprig_bytes a, sprig_bytes b)
{
    if (v->tree->kind == 'f' && a.len == 8 && b.len == 8) {
        uint64_t x = u64(a.data), y = u64(b.data);
        return x < y ? -1 : x > y;
    }
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* One node's place: inside the page, above `upper`, its size (as LMDB
 * packs it, even) in *size. */
static int
node_fits(pv *v, uint64_t pgno, const uint8_t *p, size_t psz, unsigned i,
          bool leaf, size_t *size)
{
    unsigned upper = u16(p + 14), off = u16(p + PV_HDR + 2 * i);
    if (off < upper || (off & 1) || off + PV_NODE > psz) {
        return bad(v, pgno, "node %u at offset %u (free space ends at %u)", i,
                   off, upper);
    }
    const uint8_t *n = p + off;
    size_t sz = PV_NODE + u16(n + 6);
    if (leaf) {
        sz += (u16(n + 4) & F_BIGDATA)
                  ? 8
                  : ((size_t)u16(n) | (size_t)u16(n + 2) << 16);
    }
    if (off + sz > psz) {
        return bad(v, pgno, "node %u at offset %u runs %zu bytes past the page",
                   i, off, off + sz - psz);
    }
    *size = (sz + 1) & ~(size_t)1;
    return SPRIG_OK;
}

/* The page's bounds and nodes (a page of `psz` bytes: a whole page, or a
 * duplicate sub-page): *nkeys nodes, each inside it, filling what is above
 * `upper` exactly. */
static int
page_nodes(pv *v, uint64_t pgno, const uint8_t *p, size_t psz, bool leaf,
           unsigned *nkeys)
{
    unsigned lower = u16(p + 12), upper = u16(p + 14);
    if (lower < PV_HDR || lower > upper || upper > psz || (lower & 1)) {
        return bad(v, pgno, "free-space bounds %u..%u in a page of %zu bytes",
                   lower, upper, psz);
    }
    *nkeys = (lower - PV_HDR) / 2;
    size_t used = 0, sz = 0;
    for (unsigned i = 0; i < *nkeys; i++) {
        int rc = node_fits(v, pgno, p, psz, i, leaf, &sz);
        if (rc) {
            return rc;
        }
        used += sz;
    }
    if (used != psz - upper) {
        return bad(v, pgno,
                   "its %u nodes take %zu bytes, its free-space bound leaves "
                   "%zu",
                   *nkeys, used, psz - upper);
    }
    return SPRIG_OK;
}

static sprig_bytes
node_key(const uint8_t *p, unsigned i)
{
    const uint8_t *n = p + u16(p + PV_HDR + 2 * i);
    return (sprig_bytes){n + PV_NODE, u16(n + 6)};
}

/* Keys from node `from` on strictly increasing, inside [lo, hi) (NULL
 * data: unbounded). */
static int
keys_ordered(pv *v, uint64_t pgno, const uint8_t *p, unsigned nkeys,
             unsigned from, sprig_bytes lo, sprig_bytes hi)
{
    for (unsigned i = from; i < nkeys; i++) {
        sprig_bytes k = node_key(p, i);
        if (i > from && cmp(v, node_key(p, i - 1), k) >= 0) {
            return bad(v, pgno, "key %u is not above key %u", i, i - 1);
        }
        if ((lo.data && cmp(v, k, lo) < 0) || (hi.data && cmp(v, k, hi) >= 0)) {
            return bad(v, pgno,
                       "key %u lies outside the range its parent gives", i);
        }
    }
    return SPRIG_OK;
}

static int walk(pv *v, uint64_t pgno, unsigned level, sprig_bytes lo,
                sprig_bytes hi, pv_count *n);

/* A tree from its MDB_db record: walked, its counts as recorded. */
static int
tree(pv *v, const pv_tree *t, const pv_db *d, uint64_t at)
{
    const pv_tree *outer = v->tree;
    pv_count n = {0};
    int rc = SPRIG_OK;
    v->tree = t;
    if (d->root == UINT64_MAX) { /* P_INVALID: empty */
        if (d->depth || d->branch || d->leaf || d->overflow || d->entries) {
            rc = bad(v, at, "an empty tree with depth %u and %llu entries",
                     d->depth, (unsigned long long)d->entries);
        }
    } else if (d->depth == 0 || d->depth > PV_MAXDEPTH) {
        rc = bad(v, at, "a tree of depth %u", d->depth);
    } else {
        sprig_bytes none = {NULL, 0};
        rc = walk(v, d->root, d->depth, none, none, &n);
    }
    if (rc == 0 && (n.entries != d->entries || n.branch != d->branch ||
                    n.leaf != d->leaf || n.overflow != d->overflow)) {
        rc = bad(v, d->root,
                 "the tree holds %llu entries in %llu branch, %llu leaf and "
                 "%llu overflow pages; its record says %llu in %llu, %llu "
                 "and %llu",
                 (unsigned long long)n.entries, (unsigned long long)n.branch,
                 (unsigned long long)n.leaf, (unsigned long long)n.overflow,
                 (unsigned long long)d->entries, (unsigned long long)d->branch,
                 (unsigned long long)d->leaf, (unsigned long long)d->overflow);
    }
    v->tree = outer;
    v->st->tables += rc == 0 && t->kind == 't';
    return rc;
}

/* An overflow run holding `size` bytes from `pgno`; *out its data. */
static int
overflow(pv *v, uint64_t pgno, size_t size, pv_count *n, const uint8_t **out)
{
    if (pgno < 2 || pgno >= v->in_file) {
        return reach(v, pgno, 1); /* says what is wrong */
    }
    const uint8_t *p = v->map + pgno * v->psize;
    uint32_t pages;
    memcpy(&pages, p + 12, 4);
    if ((u16(p + 10) & ~P_DIRTY) != P_OVERFLOW || u64(p) != pgno) {
        return bad(v, pgno,
                   "an overflow run's first page has flags %#x and "
                   "number %llu",
                   u16(p + 10), (unsigned long long)u64(p));
    }
    int rc = reach(v, pgno, pages ? pages : 1);
    if (rc == 0 && (pages == 0 || size > pages * v->psize - PV_HDR)) {
        rc = bad(v, pgno, "an overflow run of %u pages holding %zu bytes",
                 pages, size);
    }
    n->overflow += pages;
    *out = p + PV_HDR;
    return rc;
}

/* The free list's value: [count u64][count page numbers]; each page is
 * below the last and not in use (checked after every tree: free() last). */
static int
free_ids(pv *v, uint64_t pgno, const uint8_t *d, size_t size)
{
    uint64_t cnt = size >= 8 ? u64(d) : 0;
    if (size < 8 || size % 8 || cnt != size / 8 - 1) {
        return bad(v, pgno, "a free-page list of %zu bytes", size);
    }
    for (uint64_t i = 1; i <= cnt; i++) {
        uint64_t f = u64(d + 8 * i);
        bool dup = !v->st->skipped && (v->seen[f >> 3] & (1u << (f & 7)));
        if (f < 2 || f >= v->last || dup) {
            return bad(v, pgno, "free page %llu is %s", (unsigned long long)f,
                       f < 2 || f >= v->last ? "outside the file"
                                             : "also in use");
        }
        v->seen[f >> 3] |= (uint8_t)(1u << (f & 7));
        v->freed++;
    }
    return SPRIG_OK;
}

/* A duplicate sub-page (`size` bytes inside a leaf node): its values. */
static int
subpage(pv *v, uint64_t pgno, const uint8_t *p, size_t size, pv_count *n)
{
    unsigned nk;
    sprig_bytes none = {NULL, 0};
    if (size < PV_HDR || (u16(p + 10) & ~P_DIRTY) != (P_LEAF | P_SUBP)) {
        return bad(v, pgno, "a duplicate sub-page of %zu bytes, flags %#x",
                   size, size >= PV_HDR ? u16(p + 10) : 0);
    }
    int rc = page_nodes(v, pgno, p, size, true, &nk);
    rc = rc ? rc : keys_ordered(v, pgno, p, nk, 0, none, none);
    if (rc == 0 && nk == 0) {
        rc = bad(v, pgno, "an empty duplicate sub-page");
    }
    n->entries += nk;
    return rc;
}

/* A named table's record in the table directory, walked as a table. */
static int
named(pv *v, uint64_t pgno, sprig_bytes key, const uint8_t *d, size_t size)
{
    pv_tree t = {'t', false, ""};
    pv_db db;
    size_t o = (size_t)snprintf(t.name, sizeof t.name, "table '");
    for (size_t i = 0; i < key.len && o + 6 < sizeof t.name; i++) {
        uint8_t c = ((const uint8_t *)key.data)[i];
        o += (size_t)snprintf(t.name + o, sizeof t.name - o,
                              c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
    }
    snprintf(t.name + o, sizeof t.name - o, "'");
    if (size != PV_DB) {
        return bad(v, pgno, "%s has a record of %zu bytes", t.name, size);
    }
    db_decode(d, &db);
    if (db.flags & ~MDB_DUPSORT) {
        return bad(v, pgno, "%s has flags %#x", t.name, db.flags);
    }
    t.dupsort = db.flags & MDB_DUPSORT;
    if (v->o->only.data) { /* that table alone */
        bool it = key.len == v->o->only.len &&
                  memcmp(key.data, v->o->only.data, key.len) == 0;
        return it ? tree(v, &t, &db, pgno) : SPRIG_OK;
    }
    uint64_t pages = db.branch + db.leaf + db.overflow;
    if (v->budget != UINT64_MAX && pages > v->budget) {
        v->st->skipped++; /* too large for this pass: the check's */
        if (v->o->skipped) {
            v->o->skipped(v->o->arg, key);
        }
        return SPRIG_OK;
    }
    v->budget -= v->budget != UINT64_MAX ? pages : 0;
    return tree(v, &t, &db, pgno);
}

/* One leaf node's data: a value, an overflow run, duplicates, a table. */
static int
leaf_data(pv *v, uint64_t pgno, const uint8_t *p, unsigned i, pv_count *n)
{
    const uint8_t *nd = p + u16(p + PV_HDR + 2 * i);
    unsigned fl = u16(nd + 4);
    size_t size = (size_t)u16(nd) | (size_t)u16(nd + 2) << 16;
    const uint8_t *d = nd + PV_NODE + u16(nd + 6);
    char k = v->tree->kind;
    int rc = SPRIG_OK;
    if ((fl & ~(F_BIGDATA | F_SUBDATA | F_DUPDATA)) ||
        ((fl & F_DUPDATA) && !v->tree->dupsort) ||
        ((fl & F_SUBDATA) && !(fl & F_DUPDATA) && k != 'm') ||
        ((fl & F_BIGDATA) && (fl & (F_SUBDATA | F_DUPDATA)))) {
        return bad(v, pgno, "node %u has flags %#x", i, fl);
    }
    if (fl & F_BIGDATA) {
        rc = overflow(v, u64(d), size, n, &d);
    }
    if (rc == 0 && k == 'f') {
        rc = free_ids(v, pgno, d, size);
    }
    if (rc || (fl & (F_SUBDATA | F_DUPDATA)) == 0) {
        n->entries++;
        return rc;
    }
    if (fl == F_SUBDATA) {
        n->entries++;
        return named(v, pgno, node_key(p, i), d, size);
    }
    if (fl == F_DUPDATA) {
        return subpage(v, pgno, d, size, n);
    }
    pv_tree t = {'d', false, ""};
    pv_db db;
    snprintf(t.name, sizeof t.name, "%.80s (duplicates)", v->tree->name);
    if (size != PV_DB) {
        return bad(v, pgno, "node %u holds a sub-tree record of %zu bytes", i,
                   size);
    }
    db_decode(d, &db);
    n->entries += db.entries;
    return db.flags ? bad(v, pgno, "a sub-tree with flags %#x", db.flags)
                    : tree(v, &t, &db, pgno);
}

/* A branch page's children, each one level down inside its separators. */
static int
children(pv *v, uint64_t pgno, const uint8_t *p, unsigned nk, unsigned level,
         sprig_bytes lo, sprig_bytes hi, pv_count *n)
{
    for (unsigned i = 0; i < nk; i++) {
        const uint8_t *nd = p + u16(p + PV_HDR + 2 * i);
        uint64_t child = (uint64_t)u16(nd) | (uint64_t)u16(nd + 2) << 16 |
                         (uint64_t)u16(nd + 4) << 32;
        sprig_bytes clo = i ? node_key(p, i) : lo;
        sprig_bytes chi = i + 1 < nk ? node_key(p, i + 1) : hi;
        int rc = walk(v, child, level - 1, clo, chi, n);
        if (rc) {
            return rc;
        }
    }
    return SPRIG_OK;
}

/* The subtree from page `pgno`, `level` levels high (1: a leaf), its keys
 * in [lo, hi); counts into *n. */
static int
walk(pv *v, uint64_t pgno, unsigned level, sprig_bytes lo, sprig_bytes hi,
     pv_count *n)
{
    int rc = reach(v, pgno, 1);
    if (rc) {
        return rc;
    }
    const uint8_t *p = v->map + pgno * v->psize;
    unsigned fl = u16(p + 10) & ~P_DIRTY, nk;
    bool leaf = level == 1;
    if (u64(p) != pgno) {
        return bad(v, pgno, "its header says page %llu",
                   (unsigned long long)u64(p));
    }
    if (fl != (leaf ? P_LEAF : P_BRANCH)) {
        return bad(v, pgno, "flags %#x where a %s page belongs", fl,
                   leaf ? "leaf" : "branch");
    }
    rc = page_nodes(v, pgno, p, v->psize, leaf, &nk);
    if (rc == 0 && nk < (leaf ? 1u : 2u)) {
        rc = bad(v, pgno, "a %s page with %u nodes", leaf ? "leaf" : "branch",
                 nk);
    }
    rc = rc ? rc : keys_ordered(v, pgno, p, nk, leaf ? 0 : 1, lo, hi);
    if (rc || !leaf) {
        n->branch += !leaf;
        return rc ? rc : children(v, pgno, p, nk, level, lo, hi, n);
    }
    n->leaf++;
    for (unsigned i = 0; rc == 0 && i < nk; i++) {
        rc = leaf_data(v, pgno, p, i, n);
    }
    return rc;
}

/* The snapshot's meta page (the one of `txnid`): its free list and table
 * directory records and last page, copied. */
static int
pick_meta(pv *v, uint64_t txnid, uint8_t meta[PV_DB * 2 + 16])
{
    for (int m = 0; m < 2; m++) {
        const uint8_t *p = v->map + (size_t)m * v->psize + PV_HDR;
        uint32_t magic, version;
        memcpy(&magic, p, 4);
        memcpy(&version, p + 4, 4);
        if (magic != 0xBEEFC0DEu || version != 1 || u64(p + 128) != txnid) {
            continue;
        }
        memcpy(meta, p + 24, PV_DB * 2 + 8);
        if (u64(p + 128) == txnid) { /* not rewritten while copied */
            return SPRIG_OK;
        }
    }
    return bad(v, 0, "no meta page holds transaction %llu",
               (unsigned long long)txnid);
}

/* The snapshot's trees: the table directory (and through it every named
 * table), then the free list, then the page count. */
static int
walk_all(pv *v, const uint8_t *meta)
{
    pv_db fdb, mdb;
    db_decode(meta, &fdb);
    db_decode(meta + PV_DB, &mdb);
    const pv_tree dir = {'m', false, "the table directory"};
    const pv_tree fl = {'f', false, "the free-page list"};
    if (mdb.flags) {
        return bad(v, 0, "the table directory has flags %#x", mdb.flags);
    }
    bool whole = !v->o->only.data;
    int rc = tree(v, &dir, &mdb, 0);
    rc = rc || !whole ? rc : tree(v, &fl, &fdb, 0);
    if (rc == 0 && whole && !v->st->skipped && v->used + v->freed != v->last) {
        v->tree = NULL;
        rc = bad(v, v->last - 1,
                 "%llu pages in use and %llu free, but the file's last page "
                 "is %llu",
                 (unsigned long long)v->used, (unsigned long long)v->freed,
                 (unsigned long long)(v->last - 1));
    }
    return rc;
}

/* The walk over the map `v->map` of the file (v->in_file pages). */
static int
verify_map(pv *v, MDB_txn *txn)
{
    uint8_t meta[PV_DB * 2 + 16];
    int rc = pick_meta(v, mdb_txn_id(txn), meta);
    if (rc && v->o->stop) {
        /* walking beside a writer (bgverify.c): two commits since the
         * transaction began rewrote both slots -- not damage */
        return SPRIG__EMOVED;
    }
    if (rc) {
        return rc;
    }
    v->last = u64(meta + PV_DB * 2) + 1;
    if (v->last < 2 || v->last > (1ull << 40)) {
        return bad(v, 0, "last page %llu", (unsigned long long)(v->last - 1));
    }
    v->seen = sprig__calloc(1, (size_t)(v->last + 7) / 8);
    if (!v->seen) {
        return sprig__err(SPRIG_ENOMEM, "out of memory verifying '%s'",
                          v->path);
    }
    v->seen[0] = 3; /* the meta pages */
    rc = walk_all(v, meta);
    v->st->free_pages = v->freed;
    v->st->file_pages = v->last;
    sprig__free(v->seen);
    return rc;
}

int
sprig__env_verify(sprig__env *e, MDB_txn *txn, uint64_t max_bytes,
                  sprig__verify_stats *st)
{
    sprig__verify_opts o = {.max_bytes = max_bytes};
    return sprig__env_verify_opts(e, txn, &o, st);
}

int
sprig__env_verify_opts(sprig__env *e, MDB_txn *txn, const sprig__verify_opts *o,
                       sprig__verify_stats *st)
{
    sprig__verify_stats local = {0};
    MDB_stat est;
    struct stat sb;
    int fd;
    uint64_t max_bytes = o->max_bytes;
    pv v = {.path = e->path, .st = st ? st : &local, .used = 2, .o = o};
    *v.st = (sprig__verify_stats){0};
    if (mdb_env_stat(e->env, &est) || mdb_env_get_fd(e->env, &fd) ||
        fstat(fd, &sb) != 0) {
        return sprig__err(SPRIG_EIO, "'%s': cannot read its file's size",
                          e->path);
    }
    v.psize = est.ms_psize;
    v.budget = max_bytes ? max_bytes / v.psize : UINT64_MAX;
    v.in_file = (uint64_t)sb.st_size / v.psize;
    if (v.in_file < 2) {
        return bad(&v, 0, "a file of %lld bytes", (long long)sb.st_size);
    }
    /* a map of our own, of exactly the pages the file holds: no read can
     * go past its end, whatever a damaged page says */
    size_t len = (size_t)(v.in_file * v.psize);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        return sprig__err(SPRIG_EIO, "'%s': cannot map its file: %s", e->path,
                          strerror(errno));
    }
    v.map = m;
    int rc = verify_map(&v, txn);
    munmap(m, len);
    return rc;
}
