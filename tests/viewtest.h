/*
 * viewtest.h -- helpers shared by the view tests (test_views.c,
 * test_json_views.c, test_views_random.c, test_views_crash.c): the
 * brute-force side of every check.  Expected mappings are computed from a
 * full scan of the collection -- by calling a C view's map function on
 * each document, or, for declarative views, by an independent reading of
 * the JSON with jansson -- then sorted the way queries return them (key,
 * source id, value) and compared with what the engine answers.
 */
#ifndef SPRIG_TESTS_VIEWTEST_H
#define SPRIG_TESTS_VIEWTEST_H

#include "testutil.h"

#include "core/view.h"

#include <jansson.h>
#include <math.h>

/* One expected mapping (owned copies). */
typedef struct vt_m {
    sprig_buf key, value, id;
    uint64_t rev;
} vt_m;

typedef struct vt_ms {
    vt_m *m;
    size_t n, cap;
} vt_ms;

static inline void
vt_ms_free(vt_ms *s)
{
    for (size_t i = 0; i < s->n; i++) {
        sprig_buf_clear(&s->m[i].key);
        sprig_buf_clear(&s->m[i].value);
        sprig_buf_clear(&s->m[i].id);
    }
    free(s->m);
    memset(s, 0, sizeof *s);
}

static inline void
vt_ms_push(vt_ms *s, sprig_bytes key, sprig_bytes value, sprig_bytes id,
           uint64_t rev)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->m = realloc(s->m, s->cap * sizeof *s->m);
        assert_non_null(s->m);
    }
    vt_m *m = &s->m[s->n++];
    memset(m, 0, sizeof *m);
    assert_int_equal(sprig_buf_append(&m->key, key.data, key.len), 0);
    assert_int_equal(sprig_buf_append(&m->value, value.data, value.len), 0);
    assert_int_equal(sprig_buf_append(&m->id, id.data, id.len), 0);
    m->rev = rev;
}

static inline int
vt_bcmp(const sprig_buf *a, const sprig_buf *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->data, b->data, n) : 0;
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static inline int
vt_m_cmp(const void *x, const void *y)
{
    const vt_m *a = x, *b = y;
    int c = vt_bcmp(&a->key, &b->key);
    c = c ? c : vt_bcmp(&a->id, &b->id);
    return c ? c : vt_bcmp(&a->value, &b->value);
}

static inline void
vt_ms_sort(vt_ms *s)
{
    if (s->n > 1) {
        qsort(s->m, s->n, sizeof *s->m, vt_m_cmp);
    }
}

/* Every document of `coll` (one snapshot). */
static inline sprig_doc_list *
vt_all_docs(sprig_db *db, const char *coll)
{
    sprig_doc_list *l = NULL;
    SPRIG_OK_(sprig_list(db, coll, NULL, SPRIG_ASC, 0, &l));
    return l;
}

/* Expected mappings of a C view: its map over every document. */
static inline void
vt_expect_c(const sprig_doc_list *docs, sprig_map_fn map, void *udata,
            vt_ms *out)
{
    for (size_t i = 0; i < sprig_doc_list_count(docs); i++) {
        const sprig_doc *d = sprig_doc_list_get(docs, i);
        sprig_emitter e = {0};
        sprig_buf list = {0};
        assert_int_equal(map(d, &e, udata), 0);
        assert_int_equal(sprig__emitter_sorted(&e, &list), 0);
        sprig__pairs it;
        sprig__pair p;
        assert_int_equal(sprig__pairs_init(&it, sprig_buf_bytes(&list)), 0);
        while (sprig__pairs_next(&it, &p) == 1) {
            sprig_header h = sprig_doc_header(d);
            vt_ms_push(out, p.key, p.value, h.id, h.revision);
        }
        sprig__emitter_free(&e);
        sprig_buf_clear(&list);
    }
    vt_ms_sort(out);
}

/* ---- declarative views, read independently ------------------------------- */

/* Follow dotted path `path` (no spaces) from `node`. */
static inline json_t *
vt_json_path(json_t *node, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *seg = strtok_r(buf, ".", &save); seg && node;
         seg = strtok_r(NULL, ".", &save)) {
        if (json_is_object(node)) {
            node = json_object_get(node, seg);
        } else if (json_is_array(node) && seg[0] >= '0' && seg[0] <= '9') {
            node = json_array_get(node, strtoul(seg, NULL, 10));
        } else {
            node = NULL;
        }
    }
    return node;
}

static inline bool
vt_json_scalar(json_t *v)
{
    return v && !json_is_object(v) && !json_is_array(v);
}

/* The key of scalars v[0..n) through the public JSON key encoder. */
static inline void
vt_json_key(json_t **v, size_t n, sprig_buf *out)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append(arr, v[i]);
    }
    char *text =
        json_dumps(n == 1 ? v[0] : arr, JSON_ENCODE_ANY | JSON_COMPACT);
    assert_non_null(text);
    out->len = 0;
    SPRIG_OK_(sprig_key_from_json(text, strlen(text), out));
    free(text);
    json_decref(arr);
}

/* The value text the engine should store for node `v` (NULL: null). */
static inline void
vt_json_value(json_t *v, sprig_buf *out)
{
    char t[64];
    out->len = 0;
    if (!v) {
        sprig_buf_append(out, "null", 4);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
            d == (double)(long long)d) {
            snprintf(t, sizeof t, "%.0f", d == 0 ? 0.0 : d);
        } else {
            for (int p = 15; p <= 17; p++) {
                snprintf(t, sizeof t, "%.*g", p, d);
                if (strtod(t, NULL) == d) {
                    break;
                }
            }
        }
        sprig_buf_append(out, t, strlen(t));
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        sprig_buf_append(out, s, strlen(s));
        free(s);
    }
}

/* Expected mappings of a declarative view (`paths` comma-separated, no
 * spaces; `value_path` may be NULL). */
static inline void
vt_expect_json(const sprig_doc_list *docs, const char *paths,
               const char *value_path, vt_ms *out)
{
    char buf[256], *save = NULL, *pv[8];
    size_t np = 0;
    snprintf(buf, sizeof buf, "%s", paths);
    for (char *p = strtok_r(buf, ",", &save); p && np < 8;
         p = strtok_r(NULL, ",", &save)) {
        pv[np++] = p;
    }
    sprig_buf key = {0}, val = {0};
    for (size_t i = 0; i < sprig_doc_list_count(docs); i++) {
        const sprig_doc *d = sprig_doc_list_get(docs, i);
        sprig_bytes c = sprig_doc_contents(d);
        sprig_header h = sprig_doc_header(d);
        json_t *root = json_loadb(c.data, c.len, JSON_ALLOW_NUL, NULL);
        json_t *k[8];
        bool ok = root != NULL;
        for (size_t j = 0; ok && j < np; j++) {
            k[j] = vt_json_path(root, pv[j]);
            ok = k[j] &&
                 (vt_json_scalar(k[j]) || (np == 1 && json_is_array(k[j])));
        }
        if (ok) {
            vt_json_value(value_path ? vt_json_path(root, value_path) : NULL,
                          &val);
        }
        if (ok && np == 1 && json_is_array(k[0])) {
            size_t j;
            json_t *e;
            json_array_foreach(k[0], j, e)
            {
                if (vt_json_scalar(e)) {
                    vt_json_key(&e, 1, &key);
                    vt_ms_push(out, sprig_buf_bytes(&key),
                               sprig_buf_bytes(&val), h.id, h.revision);
                }
            }
        } else if (ok) {
            vt_json_key(k, np, &key);
            vt_ms_push(out, sprig_buf_bytes(&key), sprig_buf_bytes(&val), h.id,
                       h.revision);
        }
        json_decref(root);
    }
    sprig_buf_clear(&key);
    sprig_buf_clear(&val);
    vt_ms_sort(out);
}

/* ---- comparing --------------------------------------------------------------
 */

static inline void
vt_print_key(const char *what, sprig_bytes k)
{
    sprig_buf b = {0};
    if (sprig_key_to_json(k, &b) == 0) {
        print_message("%s %.*s\n", what, (int)b.len, (char *)b.data);
    } else {
        print_message("%s (%zu raw bytes)\n", what, k.len);
    }
    sprig_buf_clear(&b);
}

/* The list equals want[from .. from+n) (reversed when desc), with the
 * revisions of the sources. */
static inline void
vt_check_range(const sprig_mapping_list *l, const vt_ms *want, size_t from,
               size_t n, bool desc, const char *what)
{
    if (sprig_mapping_list_count(l) != n) {
        print_message("%s: %zu mappings, wanted %zu\n", what,
                      sprig_mapping_list_count(l), n);
        fail();
    }
    for (size_t i = 0; i < n; i++) {
        const vt_m *m = &want->m[desc ? from + n - 1 - i : from + i];
        sprig_header h = sprig_mapping_list_source(l, i);
        sprig_bytes k = sprig_mapping_list_key(l, i);
        sprig_bytes v = sprig_mapping_list_value(l, i);
        bool ok = k.len == m->key.len && !memcmp(k.data, m->key.data, k.len) &&
                  v.len == m->value.len &&
                  (!v.len || !memcmp(v.data, m->value.data, v.len)) &&
                  h.id.len == m->id.len &&
                  !memcmp(h.id.data, m->id.data, h.id.len) &&
                  h.revision == m->rev;
        if (!ok) {
            print_message("%s: mapping %zu differs\n", what, i);
            vt_print_key("  got key", k);
            vt_print_key("  want key", sprig_buf_bytes(&m->key));
            print_message("  got value %.*s, want %.*s; rev %llu want %llu\n",
                          (int)v.len, (const char *)v.data, (int)m->value.len,
                          (const char *)m->value.data,
                          (unsigned long long)h.revision,
                          (unsigned long long)m->rev);
            fail();
        }
    }
}

static inline void
vt_check_all(const sprig_mapping_list *l, const vt_ms *want, const char *what)
{
    vt_check_range(l, want, 0, want->n, false, what);
}

/* Whether bytes `k` is inside range r (brute force). */
static inline bool
vt_in_range(sprig_bytes k, const sprig_range *r)
{
    if (r->start.kind != SPRIG_UNBOUNDED) {
        int c = sprig__bytes_cmp(k, r->start.key);
        if (c < 0 || (c == 0 && r->start.kind == SPRIG_EXCLUDED)) {
            return false;
        }
    }
    if (r->end.kind != SPRIG_UNBOUNDED) {
        int c = sprig__bytes_cmp(k, r->end.key);
        if (c > 0 || (c == 0 && r->end.kind == SPRIG_EXCLUDED)) {
            return false;
        }
    }
    return true;
}

/* Mappings in the page starting `seen` mappings into the walk: whole
 * (key, source) groups until `page` are reached (pages never split the
 * mappings one document emitted under one key). */
static inline size_t
vt_page_len(const vt_ms *w, size_t seen, size_t page, bool desc)
{
    size_t n = 0;
    while (seen + n < w->n && n < page) {
        size_t i = desc ? w->n - 1 - (seen + n) : seen + n;
        const vt_m *g = &w->m[i];
        do {
            n++;
            i = desc ? i - 1 : i + 1;
        } while (seen + n < w->n && !vt_bcmp(&w->m[i].key, &g->key) &&
                 !vt_bcmp(&w->m[i].id, &g->id));
    }
    return n;
}

#endif /* SPRIG_TESTS_VIEWTEST_H */
