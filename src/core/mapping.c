/*
 * mapping.c -- the two value objects of views: the emitter a map function
 * writes into (sprig_emit) with the encoded pair lists it produces, and
 * sprig_mapping_list, what a view query returns.
 *
 * Design notes.  An emitter collects pairs in emit order; the engine asks
 * for them sorted by (key, value) so that what a document emitted has one
 * canonical byte form (see view.h), which makes "did this document's
 * mappings change?" a memcmp.  A mapping list keeps its items in an array
 * and the bytes they point at in an arena of chunks that never move, so a
 * query returning many small mappings costs a few allocations, not three
 * per mapping.  Lists are plain memory: a remote client fills them the
 * same way as the local engine.
 */
#include "view.h"

#include <stdlib.h>

/* ---- emitter ----------------------------------------------------------- */

int
sprig_emit(sprig_emitter *e, sprig_bytes key, sprig_bytes value)
{
    if (!e) {
        return sprig__err(SPRIG_EINVAL, "emitter is NULL");
    }
    int rc = SPRIG_OK;
    if (!key.len || (!key.data) || (value.len && !value.data)) {
        rc = sprig__err(SPRIG_EINVAL,
                        "an emitted key is empty or NULL (view keys are "
                        "never empty: emit a constant key, such as the tuple "
                        "key of null, for one group)");
    } else if (key.len > SPRIG_KEY_MAX) {
        rc = sprig__err(SPRIG_ETOOBIG,
                        "an emitted key has %zu bytes; the limit is "
                        "SPRIG_KEY_MAX (%d)",
                        key.len, SPRIG_KEY_MAX);
    } else if (value.len > SPRIG_CONTENTS_MAX) {
        rc = sprig__err(SPRIG_ETOOBIG,
                        "an emitted value has %zu bytes; the limit is %u",
                        value.len, SPRIG_CONTENTS_MAX);
    } else if (e->n == UINT32_MAX) {
        rc = sprig__err(SPRIG_ETOOBIG, "too many emitted pairs");
    }
    if (rc == 0) {
        size_t before = e->buf.len;
        uint8_t kl[2] = {(uint8_t)(key.len >> 8), (uint8_t)key.len};
        rc = sprig__buf_reserve(&e->buf, 6 + key.len + value.len);
        rc = rc ? rc : sprig_buf_append(&e->buf, kl, 2);
        rc = rc ? rc : sprig_buf_append(&e->buf, key.data, key.len);
        rc = rc ? rc : sprig__buf_put_u32(&e->buf, (uint32_t)value.len);
        rc = rc ? rc : sprig_buf_append(&e->buf, value.data, value.len);
        if (rc) {
            e->buf.len = before;
        } else {
            e->n++;
        }
    }
    if (rc && !e->rc) {
        e->rc = rc;
        e->refused = rc != SPRIG_ENOMEM;
    }
    return rc;
}

void
sprig__emitter_reset(sprig_emitter *e)
{
    e->buf.len = 0;
    e->n = 0;
    e->rc = 0;
    e->refused = false;
}

void
sprig__emitter_free(sprig_emitter *e)
{
    sprig_buf_clear(&e->buf);
    e->n = 0;
    e->rc = 0;
}

/* Read one pair of a list body (no count). */
static int
read_pair(sprig__rd *r, sprig__pair *out)
{
    const uint8_t *p = NULL;
    uint32_t vl = 0;
    int rc = sprig__rd_bytes(r, 2, &p);
    size_t kl = rc ? 0 : ((size_t)p[0] << 8) | p[1];
    rc = rc ? rc : sprig__rd_bytes(r, kl, &p);
    out->key = (sprig_bytes){p, kl};
    rc = rc ? rc : sprig__rd_u32(r, &vl);
    rc = rc ? rc : sprig__rd_bytes(r, vl, &p);
    out->value = (sprig_bytes){p, vl};
    if (rc == 0 && kl == 0) {
        rc = SPRIG_ECORRUPT;
    }
    return rc ? sprig__err(SPRIG_ECORRUPT, "a stored view mapping is "
                                           "malformed")
              : SPRIG_OK;
}

static int
pair_cmp(const void *a, const void *b)
{
    const sprig__pair *x = a, *y = b;
    int c = sprig__bytes_cmp(x->key, y->key);
    return c ? c : sprig__bytes_cmp(x->value, y->value);
}

static int
put_pair(sprig_buf *out, const sprig__pair *p)
{
    uint8_t kl[2] = {(uint8_t)(p->key.len >> 8), (uint8_t)p->key.len};
    int rc = sprig_buf_append(out, kl, 2);
    rc = rc ? rc : sprig_buf_append(out, p->key.data, p->key.len);
    rc = rc ? rc : sprig__buf_put_u32(out, (uint32_t)p->value.len);
    return rc ? rc : sprig_buf_append(out, p->value.data, p->value.len);
}

int
sprig__emitter_sorted(const sprig_emitter *e, sprig_buf *out)
{
    int rc = sprig__buf_reserve(out, 4 + e->buf.len);
    rc = rc ? rc : sprig__buf_put_u32(out, e->n);
    if (rc || e->n <= 1) {
        return rc ? rc : sprig_buf_append(out, e->buf.data, e->buf.len);
    }
    sprig__pair *v = sprig__malloc(e->n * sizeof *v);
    if (!v) {
        return sprig__err(SPRIG_ENOMEM, "out of memory sorting mappings");
    }
    sprig__rd r = {e->buf.data, e->buf.len};
    for (uint32_t i = 0; rc == 0 && i < e->n; i++) {
        rc = read_pair(&r, &v[i]);
    }
    if (rc == 0) {
        qsort(v, e->n, sizeof *v, pair_cmp);
    }
    for (uint32_t i = 0; rc == 0 && i < e->n; i++) {
        rc = put_pair(out, &v[i]);
    }
    sprig__free(v);
    return rc;
}

int
sprig__pairs_init(sprig__pairs *p, sprig_bytes list)
{
    p->rd = (sprig__rd){list.data, list.len};
    int rc = sprig__rd_u32(&p->rd, &p->left);
    if (rc == 0 && p->left > p->rd.left / 7) {
        rc = SPRIG_ECORRUPT;
    }
    return rc ? sprig__err(SPRIG_ECORRUPT, "a stored view mapping list is "
                                           "malformed")
              : SPRIG_OK;
}

int
sprig__pairs_next(sprig__pairs *p, sprig__pair *out)
{
    if (p->left == 0) {
        return 0;
    }
    p->left--;
    int rc = read_pair(&p->rd, out);
    return rc ? rc : 1;
}

/* ---- mapping lists ------------------------------------------------------ */

struct sprig__chunk {
    sprig__chunk *next;
    size_t used, cap;
    uint8_t data[];
};

#define CHUNK_FIRST 480 /* a point query fits the first chunk */

/* Room for n bytes in the arena; NULL when out of memory. */
static uint8_t *
arena_take(sprig_mapping_list *l, size_t n)
{
    sprig__chunk *c = l->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = CHUNK_FIRST;
        if (c && c->cap < (1u << 20)) {
            cap = c->cap * 2; /* grow chunks for big results */
        }
        if (cap < n) {
            cap = n;
        }
        c = sprig__malloc(sizeof *c + cap);
        if (!c) {
            return NULL;
        }
        c->next = l->chunks;
        c->used = 0;
        c->cap = cap;
        l->chunks = c;
    }
    uint8_t *p = c->data + c->used;
    c->used += n;
    return p;
}

int
sprig__mapping_list_new(sprig_mapping_list **out)
{
    *out = sprig__calloc(1, sizeof **out);
    return *out ? SPRIG_OK
                : sprig__err(SPRIG_ENOMEM, "out of memory for mappings");
}

int
sprig__mapping_list_push(sprig_mapping_list *l, sprig_bytes key,
                         sprig_bytes value, const sprig_header *source)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        sprig__mapping *p = sprig__realloc(l->items, cap * sizeof *p);
        if (!p) {
            return sprig__err(SPRIG_ENOMEM, "out of memory for mappings");
        }
        l->items = p;
        l->cap = cap;
    }
    size_t idn = source ? source->id.len : 0;
    uint8_t *mem = arena_take(l, key.len + value.len + idn + 1);
    if (!mem) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for mappings");
    }
    sprig__mapping *m = &l->items[l->n];
    memset(m, 0, sizeof *m);
    memcpy(mem, key.data, key.len);
    m->key = (sprig_bytes){mem, key.len};
    mem += key.len;
    if (value.len) {
        memcpy(mem, value.data, value.len);
    }
    m->value = (sprig_bytes){mem, value.len};
    mem += value.len;
    if (source) {
        m->source = *source;
        if (idn) {
            memcpy(mem, source->id.data, idn);
        }
        m->source.id.data = mem;
    }
    l->n++;
    return SPRIG_OK;
}

void
sprig__mapping_list_set_doc(sprig_mapping_list *l, size_t i, sprig_doc *doc)
{
    sprig_doc_free(l->items[i].doc);
    l->items[i].doc = doc;
}

void
sprig__mapping_list_clear(sprig_mapping_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        sprig_doc_free(l->items[i].doc);
    }
    l->n = 0;
    while (l->chunks) {
        sprig__chunk *next = l->chunks->next;
        sprig__free(l->chunks);
        l->chunks = next;
    }
}

size_t
sprig_mapping_list_count(const sprig_mapping_list *l)
{
    return l ? l->n : 0;
}

sprig_bytes
sprig_mapping_list_key(const sprig_mapping_list *l, size_t i)
{
    return l && i < l->n ? l->items[i].key : (sprig_bytes){NULL, 0};
}

sprig_bytes
sprig_mapping_list_value(const sprig_mapping_list *l, size_t i)
{
    return l && i < l->n ? l->items[i].value : (sprig_bytes){NULL, 0};
}

sprig_header
sprig_mapping_list_source(const sprig_mapping_list *l, size_t i)
{
    sprig_header h;
    if (l && i < l->n) {
        return l->items[i].source;
    }
    memset(&h, 0, sizeof h);
    return h;
}

const sprig_doc *
sprig_mapping_list_doc(const sprig_mapping_list *l, size_t i)
{
    return l && i < l->n ? l->items[i].doc : NULL;
}

void
sprig_mapping_list_free(sprig_mapping_list *l)
{
    if (!l) {
        return;
    }
    sprig__mapping_list_clear(l);
    sprig__free(l->items);
    sprig__free(l);
}
