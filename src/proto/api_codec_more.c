/*
 * api_codec_more.c -- the composite field types of the key-value, view and
 * PubSub rows: values, key lists, view queries, mapping lists and owned
 * buffers.  api_codec.c hands these types here; the layouts are in
 * docs/protocol.md ("Value shapes").
 */
#include "core/view.h"
#include "proto/api.h"

/* ---- values ------------------------------------------------------------- */

static void
enc_value(sprig__mp_wr *w, const sprig_value *v)
{
    sprig__mp_array(w, 2);
    sprig__mp_u64(w, v->kind);
    switch (v->kind) {
    case SPRIG_VALUE_BYTES: sprig__mp_bin(w, v->bytes); break;
    case SPRIG_VALUE_I64: sprig__mp_i64(w, v->num.i64); break;
    case SPRIG_VALUE_U64: sprig__mp_u64(w, v->num.u64); break;
    case SPRIG_VALUE_F64: sprig__mp_f64(w, v->num.f64); break;
    default: sprig__mp_nil(w); break;
    }
}

/* Decode a value; bytes are copied (the value owns them). */
static int
dec_value(sprig__mp_rd *r, sprig_value *v)
{
    uint32_t n;
    uint64_t kind;
    memset(v, 0, sizeof *v);
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 2) {
        rc = sprig__err(SPRIG_EPROTO, "a value has 2 elements");
    }
    rc = rc ? rc : sprig__mp_read_u64(r, &kind);
    if (rc == 0 && kind > SPRIG_VALUE_NONE) {
        rc = sprig__err(SPRIG_EPROTO, "value kind %llu is unknown",
                        (unsigned long long)kind);
    }
    if (rc) {
        return rc;
    }
    v->kind = (sprig_value_kind)kind;
    switch (v->kind) {
    case SPRIG_VALUE_I64: return sprig__mp_read_i64(r, &v->num.i64);
    case SPRIG_VALUE_U64: return sprig__mp_read_u64(r, &v->num.u64);
    case SPRIG_VALUE_F64: return sprig__mp_read_f64(r, &v->num.f64);
    case SPRIG_VALUE_NONE: return sprig__mp_read_nil(r);
    default: {
        sprig_bytes b;
        rc = sprig__mp_read_bin(r, &b);
        if (rc == 0) {
            v->owned_ = sprig__malloc(b.len ? b.len : 1);
            if (!v->owned_) {
                return sprig__err(SPRIG_ENOMEM, "out of memory");
            }
            memcpy(v->owned_, b.data, b.len);
            v->bytes = (sprig_bytes){v->owned_, b.len};
        }
        return rc;
    }
    }
}

/* ---- key lists ---------------------------------------------------------- */

static void
enc_kv_list(sprig__mp_wr *w, const sprig_kv_key_list *l)
{
    size_t n = sprig_kv_key_list_count(l);
    sprig__mp_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        sprig__mp_array(w, 3);
        sprig__mp_str(w, sprig_kv_key_list_key(l, i));
        enc_value(w, sprig_kv_key_list_value(l, i));
        sprig__mp_u64(w, sprig_kv_key_list_expire_at(l, i));
    }
}

static int
dec_kv_entry(sprig__mp_rd *r, sprig_kv_key_list *l)
{
    uint32_t n;
    sprig_bytes key;
    sprig_value v = {0}; /* cleared below even when never decoded */
    uint64_t exp;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 3) {
        rc = sprig__err(SPRIG_EPROTO, "a key entry has 3 elements");
    }
    rc = rc ? rc : sprig__mp_read_str(r, &key);
    if (rc == 0 && memchr(key.data, 0, key.len)) {
        rc = sprig__err(SPRIG_EPROTO, "a key holds a NUL byte");
    }
    rc = rc ? rc : dec_value(r, &v);
    rc = rc ? rc : sprig__mp_read_u64(r, &exp);
    rc = rc ? rc : sprig__kv_list_push(l, key, &v, exp);
    sprig_value_clear(&v);
    return rc;
}

static int
dec_kv_list(sprig__mp_rd *r, sprig_kv_key_list **out)
{
    uint32_t n;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0) {
        *out = sprig__calloc(1, sizeof **out);
        rc = *out ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = dec_kv_entry(r, *out);
    }
    return rc;
}

/* ---- view queries --------------------------------------------------------
 * [collection, view, match_kind, key, keys, range, order, limit, access,
 *  after] where after is nil or [key, id].  key, keys and range may be nil
 * (empty key, no keys, the whole range) when the match kind ignores them. */

static void
enc_query(sprig__mp_wr *w, const sprig__query *sq)
{
    const sprig_view_query *q = &sq->q;
    sprig__mp_array(w, 10);
    sprig__mp_str(w, q->collection);
    sprig__mp_str(w, q->view);
    sprig__mp_u64(w, q->match.kind);
    sprig__mp_bin(w, q->match.key);
    size_t nk = q->match.kind == SPRIG_MATCH_KEYS ? q->match.n_keys : 0;
    sprig__mp_array(w, (uint32_t)nk);
    for (size_t i = 0; i < nk; i++) {
        sprig__mp_bin(w, q->match.keys[i]);
    }
    sprig__enc_range(w, &q->match.range);
    sprig__mp_u64(w, q->order);
    sprig__mp_u64(w, q->limit);
    sprig__mp_u64(w, q->access);
    if (q->has_after) {
        sprig__mp_array(w, 2);
        sprig__mp_bin(w, q->after_key);
        sprig__mp_bin(w, q->after_id);
    } else {
        sprig__mp_nil(w);
    }
}

static int
dec_name(sprig__mp_rd *r, char **out)
{
    sprig_bytes s;
    int rc = sprig__mp_read_str(r, &s);
    if (rc == 0 && (s.len > SPRIG_NAME_MAX || memchr(s.data, 0, s.len))) {
        rc = sprig__err(SPRIG_EPROTO, "a name is malformed or too long");
    }
    if (rc == 0 && !(*out = sprig__malloc(s.len + 1))) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        memcpy(*out, s.data, s.len);
        (*out)[s.len] = 0;
    }
    return rc;
}

/* `keys`; nil (what a match kind other than keys may send) is none. */
static int
dec_keys(sprig__mp_rd *r, sprig__query *sq)
{
    uint32_t n = 0;
    int rc = sprig__mp_peek(r) == SPRIG__MP_NIL ? sprig__mp_read_nil(r)
                                                : sprig__mp_read_array(r, &n);
    if (rc == 0 && n) {
        sq->keys = sprig__calloc(n, sizeof *sq->keys);
        rc = sq->keys ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = sprig__mp_read_bin(r, &sq->keys[i]);
    }
    sq->q.match.keys = sq->keys;
    sq->q.match.n_keys = n;
    return rc;
}

/* `key`; nil (what a match kind other than key or prefix may send) is
 * empty. */
static int
dec_opt_bin(sprig__mp_rd *r, sprig_bytes *out)
{
    if (sprig__mp_peek(r) == SPRIG__MP_NIL) {
        *out = (sprig_bytes){NULL, 0};
        return sprig__mp_read_nil(r);
    }
    return sprig__mp_read_bin(r, out);
}

/* Small unsigned enums of the query. */
static int
dec_small(sprig__mp_rd *r, uint64_t max, uint64_t *v)
{
    int rc = sprig__mp_read_u64(r, v);
    if (rc == 0 && *v > max) {
        rc = sprig__err(SPRIG_EPROTO, "query field out of range (%llu)",
                        (unsigned long long)*v);
    }
    return rc;
}

static int
dec_after(sprig__mp_rd *r, sprig_view_query *q)
{
    uint32_t n;
    if (sprig__mp_peek(r) == SPRIG__MP_NIL) {
        return sprig__mp_read_nil(r);
    }
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 2) {
        rc = sprig__err(SPRIG_EPROTO, "a query's after has 2 elements");
    }
    rc = rc ? rc : sprig__mp_read_bin(r, &q->after_key);
    rc = rc ? rc : sprig__mp_read_bin(r, &q->after_id);
    q->has_after = rc == 0;
    return rc;
}

static int
dec_query(sprig__mp_rd *r, sprig__query *sq)
{
    uint32_t n;
    uint64_t kind = 0, order = 0, limit = 0, access = 0;
    sprig_view_query *q = &sq->q;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 10) {
        rc = sprig__err(SPRIG_EPROTO, "a view query has 10 elements");
    }
    rc = rc ? rc : dec_name(r, &sq->collection);
    rc = rc ? rc : dec_name(r, &sq->view);
    rc = rc ? rc : dec_small(r, SPRIG_MATCH_PREFIX, &kind);
    rc = rc ? rc : dec_opt_bin(r, &q->match.key);
    rc = rc ? rc : dec_keys(r, sq);
    rc = rc ? rc : sprig__dec_range(r, &q->match.range);
    rc = rc ? rc : dec_small(r, SPRIG_DESC, &order);
    rc = rc ? rc : dec_small(r, UINT32_MAX, &limit);
    rc = rc ? rc : dec_small(r, SPRIG_NO_UPDATE, &access);
    rc = rc ? rc : dec_after(r, q);
    q->collection = sq->collection;
    q->view = sq->view;
    q->match.kind = (sprig_match_kind)kind;
    q->order = (sprig_order)order;
    q->limit = (uint32_t)limit;
    q->access = (sprig_view_access)access;
    return rc;
}

/* ---- mapping lists ------------------------------------------------------ */

static void
enc_mappings(sprig__mp_wr *w, const sprig_mapping_list *l)
{
    size_t n = sprig_mapping_list_count(l);
    sprig__mp_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        sprig_header src = sprig_mapping_list_source(l, i);
        const sprig_doc *d = sprig_mapping_list_doc(l, i);
        sprig__mp_array(w, 4);
        sprig__mp_bin(w, sprig_mapping_list_key(l, i));
        sprig__mp_bin(w, sprig_mapping_list_value(l, i));
        if (src.id.len) {
            sprig__enc_header(w, src);
        } else {
            sprig__mp_nil(w);
        }
        if (d) {
            sprig__enc_doc(w, d);
        } else {
            sprig__mp_nil(w);
        }
    }
}

/* A header or nil. */
static int
dec_source(sprig__mp_rd *r, sprig_header_buf *h, bool *has)
{
    *has = sprig__mp_peek(r) != SPRIG__MP_NIL;
    return *has ? sprig__dec_header(r, h) : sprig__mp_read_nil(r);
}

/* A document or nil. */
static int
dec_mapping_doc(sprig__mp_rd *r, sprig_doc **d)
{
    *d = NULL;
    return sprig__mp_peek(r) == SPRIG__MP_NIL ? sprig__mp_read_nil(r)
                                              : sprig__dec_doc(r, d);
}

static int
dec_mapping(sprig__mp_rd *r, sprig_mapping_list *l)
{
    uint32_t n;
    sprig_bytes key, value;
    sprig_header_buf src = {0};
    bool has_src = false;
    sprig_doc *d = NULL;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 4) {
        rc = sprig__err(SPRIG_EPROTO, "a mapping has 4 elements");
    }
    rc = rc ? rc : sprig__mp_read_bin(r, &key);
    rc = rc ? rc : sprig__mp_read_bin(r, &value);
    rc = rc ? rc : dec_source(r, &src, &has_src);
    rc = rc ? rc : dec_mapping_doc(r, &d);
    sprig_header h = sprig_header_of(&src);
    rc = rc ? rc : sprig__mapping_list_push(l, key, value, has_src ? &h : NULL);
    if (rc == 0 && d) {
        sprig__mapping_list_set_doc(l, l->n - 1, d);
    } else {
        sprig_doc_free(d);
    }
    return rc;
}

static int
dec_mappings(sprig__mp_rd *r, sprig_mapping_list **out)
{
    uint32_t n;
    int rc = sprig__mp_read_array(r, &n);
    rc = rc ? rc : sprig__mapping_list_new(out);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = dec_mapping(r, *out);
    }
    return rc;
}

/* ---- connected clients (server.clients) ---------------------------------- */

static void
enc_clients(sprig__mp_wr *w, const sprig__client_list *l)
{
    sprig__mp_array(w, (uint32_t)l->n);
    for (size_t i = 0; i < l->n; i++) {
        const sprig_connected_client *c = &l->items[i];
        sprig__mp_array(w, 8);
        sprig__mp_u64(w, c->id);
        sprig__mp_str(w, c->peer);
        sprig__mp_str(w, c->transport);
        sprig__mp_u64(w, c->connected_ms);
        sprig__mp_str(w, c->identity);
        sprig__mp_u64(w, c->sessions);
        sprig__mp_u64(w, c->requests);
        sprig__mp_bool(w, c->yours);
    }
}

/* A string into a fixed field, cut to fit. */
static int
dec_fixed_str(sprig__mp_rd *r, char *out, size_t cap)
{
    sprig_bytes v;
    int rc = sprig__mp_read_str(r, &v);
    if (rc == 0) {
        size_t n = v.len < cap - 1 ? v.len : cap - 1;
        memcpy(out, v.data, n);
        out[n] = 0;
    }
    return rc;
}

static int
dec_client(sprig__mp_rd *r, sprig_connected_client *c)
{
    uint32_t n;
    uint64_t sessions = 0;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n < 8) {
        rc = sprig__err(SPRIG_EPROTO, "a client entry has %u items, not 8",
                        (unsigned)n);
    }
    rc = rc ? rc : sprig__mp_read_u64(r, &c->id);
    rc = rc ? rc : dec_fixed_str(r, c->peer, sizeof c->peer);
    rc = rc ? rc : dec_fixed_str(r, c->transport, sizeof c->transport);
    rc = rc ? rc : sprig__mp_read_u64(r, &c->connected_ms);
    rc = rc ? rc : dec_fixed_str(r, c->identity, sizeof c->identity);
    rc = rc ? rc : sprig__mp_read_u64(r, &sessions);
    rc = rc ? rc : sprig__mp_read_u64(r, &c->requests);
    rc = rc ? rc : sprig__mp_read_bool(r, &c->yours);
    c->sessions = sessions > UINT32_MAX ? UINT32_MAX : (uint32_t)sessions;
    for (uint32_t i = 8; rc == 0 && i < n; i++) {
        rc = sprig__mp_skip(r); /* later items: ignored */
    }
    return rc;
}

static int
dec_clients(sprig__mp_rd *r, sprig__client_list *l)
{
    uint32_t n;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n > r->left / 9) { /* an entry takes 9 bytes or more */
        rc = sprig__err(SPRIG_EPROTO, "%u clients in %zu bytes", (unsigned)n,
                        r->left);
    }
    if (rc == 0 && n) {
        l->items = sprig__calloc(n, sizeof *l->items);
        rc = l->items ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = dec_client(r, &l->items[i]);
        l->n += rc == 0;
    }
    return rc;
}

/* ---- dispatch from api_codec.c ------------------------------------------ */

/* ---- the API listing (server.apis) ------------------------------------- */

void
sprig__apis_list_free(sprig__apis_list *l)
{
    for (size_t i = 0; l && i < l->n; i++) {
        sprig__free(l->items[i].name);
        sprig__free(l->items[i].action);
        sprig__free(l->items[i].resource);
        sprig__free(l->items[i].summary);
    }
    if (l) {
        sprig__free(l->items);
        sprig__free(l);
    }
}

static void
enc_api_list(sprig__mp_wr *w, const sprig__apis_list *l)
{
    sprig__mp_array(w, (uint32_t)l->n);
    for (size_t i = 0; i < l->n; i++) {
        const sprig__api_entry *e = &l->items[i];
        sprig__mp_array(w, 6);
        sprig__mp_str(w, e->name ? e->name : "");
        sprig__mp_str(w, e->action ? e->action : "");
        sprig__mp_str(w, e->resource ? e->resource : "");
        sprig__mp_str(w, e->summary ? e->summary : "");
        sprig__mp_bool(w, e->custom);
        sprig__mp_bool(w, e->write);
    }
}

/* A string of the listing, copied. */
static int
dec_api_str(sprig__mp_rd *r, char **out)
{
    sprig_bytes v;
    int rc = sprig__mp_read_str(r, &v);
    if (rc == 0 && memchr(v.data, 0, v.len)) {
        rc = sprig__err(SPRIG_EPROTO, "a string holds a NUL byte");
    }
    if (rc == 0 && !(*out = sprig__malloc(v.len + 1))) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        memcpy(*out, v.data, v.len);
        (*out)[v.len] = 0;
    }
    return rc;
}

static int
dec_api_entry(sprig__mp_rd *r, sprig__api_entry *e)
{
    uint32_t n;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n != 6) {
        rc = sprig__err(SPRIG_EPROTO, "an API entry has 6 elements, not %u", n);
    }
    rc = rc ? rc : dec_api_str(r, &e->name);
    rc = rc ? rc : dec_api_str(r, &e->action);
    rc = rc ? rc : dec_api_str(r, &e->resource);
    rc = rc ? rc : dec_api_str(r, &e->summary);
    rc = rc ? rc : sprig__mp_read_bool(r, &e->custom);
    return rc ? rc : sprig__mp_read_bool(r, &e->write);
}

static int
dec_api_list(sprig__mp_rd *r, sprig__apis_list **out)
{
    uint32_t n;
    int rc = sprig__mp_read_array(r, &n);
    if (rc == 0 && n > 100000) {
        rc = sprig__err(SPRIG_EPROTO, "%u APIs listed: too many", n);
    }
    sprig__apis_list *l = rc ? NULL : sprig__calloc(1, sizeof *l);
    if (rc == 0 &&
        (!l || (n && !(l->items = sprig__calloc(n, sizeof *l->items))))) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        l->n = i + 1;
        rc = dec_api_entry(r, &l->items[i]);
    }
    sprig__apis_list_free(*out);
    *out = l;
    return rc;
}

void
sprig__enc_more(sprig__mp_wr *w, sprig__ftype t, const void *p)
{
    switch (t) {
    case SPRIG__F_VALUE: enc_value(w, p); break;
    case SPRIG__F_KV_LIST:
        enc_kv_list(w, *(sprig_kv_key_list *const *)p);
        break;
    case SPRIG__F_QUERY: enc_query(w, p); break;
    case SPRIG__F_MAPPING_LIST:
        enc_mappings(w, *(sprig_mapping_list *const *)p);
        break;
    case SPRIG__F_BUF: sprig__mp_bin(w, sprig_buf_bytes(p)); break;
    case SPRIG__F_API_LIST:
        enc_api_list(w, *(sprig__apis_list *const *)p);
        break;
    case SPRIG__F_CLIENT_LIST: enc_clients(w, p); break;
    default: sprig__mp_nil(w); break;
    }
}

int
sprig__dec_more(sprig__mp_rd *r, sprig__ftype t, void *p)
{
    switch (t) {
    case SPRIG__F_VALUE: return dec_value(r, p);
    case SPRIG__F_KV_LIST: return dec_kv_list(r, p);
    case SPRIG__F_QUERY: return dec_query(r, p);
    case SPRIG__F_MAPPING_LIST: return dec_mappings(r, p);
    case SPRIG__F_API_LIST: return dec_api_list(r, p);
    case SPRIG__F_BUF: {
        sprig_bytes b;
        int rc = sprig__mp_read_bin(r, &b);
        return rc ? rc : sprig_buf_append(p, b.data, b.len);
    }
    case SPRIG__F_CLIENT_LIST: return dec_clients(r, p);
    default: return sprig__err(SPRIG_EPROTO, "unknown field type");
    }
}

void
sprig__free_more(sprig__ftype t, void *p)
{
    switch (t) {
    case SPRIG__F_VALUE: sprig_value_clear(p); break;
    case SPRIG__F_KV_LIST:
        sprig_kv_key_list_free(*(sprig_kv_key_list **)p);
        *(sprig_kv_key_list **)p = NULL;
        break;
    case SPRIG__F_QUERY: {
        sprig__query *sq = p;
        sprig__free(sq->collection);
        sprig__free(sq->view);
        sprig__free(sq->keys);
        sq->collection = sq->view = NULL;
        sq->keys = NULL;
        break;
    }
    case SPRIG__F_MAPPING_LIST:
        sprig_mapping_list_free(*(sprig_mapping_list **)p);
        *(sprig_mapping_list **)p = NULL;
        break;
    case SPRIG__F_BUF: sprig_buf_clear(p); break;
    case SPRIG__F_API_LIST:
        sprig__apis_list_free(*(sprig__apis_list **)p);
        *(sprig__apis_list **)p = NULL;
        break;
    case SPRIG__F_CLIENT_LIST: {
        sprig__client_list *l = p;
        sprig__free(l->items);
        l->items = NULL;
        l->n = 0;
        break;
    }
    default: break;
    }
}

bool
sprig__present_more(sprig__ftype t, const void *p)
{
    switch (t) {
    case SPRIG__F_KV_LIST:
    case SPRIG__F_API_LIST:
    case SPRIG__F_MAPPING_LIST: return *(void *const *)p != NULL;
    default: return true;
    }
}
