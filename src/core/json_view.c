/*
 * json_view.c -- declarative views over JSON documents, the key encoding of
 * JSON values, and the built-in reduces (count, sum, min, max).
 *
 * Writes do not use the tree: json_scan.c finds the declared paths in one
 * pass and emits the same bytes through the helpers shared in json_int.h.
 *
 * Design notes.  JSON is parsed with jansson, chosen because it keeps a
 * 64-bit integer exact (json_int_t is long long) where cJSON turns every
 * number into a double and loses 2^53 + 1; it is slower to parse (about
 * 3.6x cJSON in /work/shared/probes/ser), so the engine parses a written
 * document once for all the declarative views of its collection.
 *
 * Keys.  A declarative view's key is a tuple (sprig_key_builder's tagged
 * encoding) with one element per path -- one path gives a 1-tuple -- so
 * keys are self-describing and print back as JSON.  A JSON number becomes
 * a float element when it has an exact double (every integer up to 2^53,
 * every JSON real), else an integer element: numbers then sort by value
 * whether the JSON wrote 10 or 10.5, and 64-bit integers stay exact.
 * Strings, booleans and null use their own elements.  A path through an
 * object, or to an object or array, emits nothing -- except that a single
 * path ending at an array emits one mapping per scalar element.
 *
 * Values are the compact JSON text at the value path ("null" when the path
 * is missing or there is none).  Built-in reduces parse that text as a
 * number; a value that is not a number counts for COUNT and is skipped by
 * SUM, MIN and MAX.  Their state (sprig__bstate) is kept per key in binary
 * and turned into JSON text only for the answer: integer sums are exact in
 * 128 bits and print as integers while they fit 64.
 */
#include "json_int.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- paths -------------------------------------------------------------- */

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trim [*b, *e) of surrounding spaces. */
static void
trim(const char **b, const char **e)
{
    while (*b < *e && is_space(**b)) {
        ++*b;
    }
    while (*e > *b && is_space((*e)[-1])) {
        --*e;
    }
}

/* Check one dotted path [b, e). */
static int
check_path(const char *what, const char *b, const char *e)
{
    trim(&b, &e);
    if (b == e) {
        return sprig__err(SPRIG_EINVAL, "%s has an empty path", what);
    }
    const char *seg = b;
    for (const char *p = b; p <= e; p++) {
        if (p == e || *p == '.') {
            if (p == seg) {
                return sprig__err(SPRIG_EINVAL,
                                  "%s: path '%.*s' has an empty "
                                  "segment",
                                  what, (int)(e - b), b);
            }
            seg = p + 1;
        } else if ((unsigned char)*p < 0x20) {
            return sprig__err(SPRIG_EINVAL, "%s: path has a control character",
                              what);
        }
    }
    return SPRIG_OK;
}

int
sprig__json_paths_check(const char *what, const char *paths, bool many)
{
    if (!paths || !*paths) {
        return sprig__err(SPRIG_EINVAL, "%s is empty", what);
    }
    size_t n = strlen(paths);
    if (n > SPRIG__JSON_PATH_MAX) {
        return sprig__err(SPRIG_EINVAL, "%s is longer than %d bytes", what,
                          SPRIG__JSON_PATH_MAX);
    }
    const char *b = paths;
    for (const char *p = paths;; p++) {
        if (*p == 0 || (*p == ',' && many)) {
            int rc = check_path(what, b, p);
            if (rc || *p == 0) {
                return rc;
            }
            b = p + 1;
        } else if (*p == ',') {
            return sprig__err(SPRIG_EINVAL, "%s has a ',' (one path only)",
                              what);
        }
    }
}

/* Cut [b, e) of the view's text copy into path `out`'s segments. */
static size_t
cut_path(char *b, char *e, jseg *segs, jpath *out)
{
    const char *cb = b, *ce = e;
    trim(&cb, &ce);
    b = (char *)cb;
    *(char *)ce = 0;
    out->segs = segs;
    out->n = 0;
    for (char *p = b;; p++) {
        if (*p == '.' || *p == 0) {
            bool end = *p == 0;
            *p = 0;
            jseg *s = &segs[out->n++];
            char *stop;
            s->name = b;
            s->index = strtoul(b, &stop, 10);
            s->is_index = *b >= '0' && *b <= '9' && *stop == 0;
            if (end) {
                break;
            }
            b = p + 1;
        }
    }
    return out->n;
}

/* Number of paths and segments in the view's key and value text. */
static void
count_parts(const char *s, size_t *paths, size_t *segs)
{
    *paths = 1;
    for (; *s; s++) {
        *paths += *s == ',';
        *segs += *s == '.' || *s == ',';
    }
    *segs += 1;
}

static int
jview_cut(sprig__jview *v, const sprig_view_def *def)
{
    size_t ks = strlen(def->json_key);
    char *b = v->text;
    jseg *segs = v->segs;
    for (char *p = v->text;; p++) {
        if (*p == ',' || p == v->text + ks) {
            segs += cut_path(b, p, segs, &v->keys[v->n_keys++]);
            if (p == v->text + ks) {
                break;
            }
            b = p + 1;
        }
    }
    if (v->has_value) {
        char *vb = v->text + ks + 1;
        cut_path(vb, vb + strlen(vb), segs, &v->value);
    }
    return SPRIG_OK;
}

int
sprig__jview_new(const sprig_view_def *def, sprig__jview **out)
{
    *out = NULL;
    int rc = sprig__json_paths_check("json_key", def->json_key, true);
    if (rc == 0 && def->json_value) {
        rc = sprig__json_paths_check("json_value", def->json_value, false);
    }
    if (rc) {
        return rc;
    }
    size_t np = 0, ns = 0, vp = 0;
    count_parts(def->json_key, &np, &ns);
    if (def->json_value) {
        count_parts(def->json_value, &vp, &ns);
    }
    size_t ks = strlen(def->json_key);
    size_t vs = def->json_value ? strlen(def->json_value) : 0;
    sprig__jview *v = sprig__calloc(1, sizeof *v);
    if (v) {
        v->keys = sprig__calloc(np, sizeof *v->keys);
        v->segs = sprig__calloc(ns, sizeof *v->segs);
        v->text = sprig__malloc(ks + vs + 2);
    }
    if (!v || !v->keys || !v->segs || !v->text) {
        sprig__jview_free(v);
        return sprig__err(SPRIG_ENOMEM, "out of memory compiling a view");
    }
    memcpy(v->text, def->json_key, ks + 1);
    if (def->json_value) {
        memcpy(v->text + ks + 1, def->json_value, vs + 1);
        v->has_value = true;
    }
    jview_cut(v, def);
    *out = v;
    return SPRIG_OK;
}

void
sprig__jview_free(sprig__jview *v)
{
    if (v) {
        sprig__free(v->keys);
        sprig__free(v->segs);
        sprig__free(v->text);
        sprig__free(v);
    }
}

static json_t *
resolve(json_t *node, const jpath *p)
{
    for (size_t i = 0; node && i < p->n; i++) {
        const jseg *s = &p->segs[i];
        if (json_is_object(node)) {
            node = json_object_get(node, s->name);
        } else if (json_is_array(node) && s->is_index) {
            node = json_array_get(node, s->index);
        } else {
            node = NULL;
        }
    }
    return node;
}

/* ---- parsing documents -------------------------------------------------- */

int
sprig__json_parse(sprig_bytes contents, struct json_t **out)
{
    json_error_t err;
    *out = json_loadb(contents.data, contents.len, JSON_ALLOW_NUL, &err);
    if (!*out && json_error_code(&err) == json_error_out_of_memory) {
        return sprig__err(SPRIG_ENOMEM, "out of memory parsing JSON");
    }
    return SPRIG_OK;
}

void
sprig__json_free(struct json_t *doc)
{
    json_decref(doc);
}

/* ---- key encoding of JSON values --------------------------------------- */

void
sprig__kput(kbuf *k, const void *p, size_t n)
{
    if (k->over || n > SPRIG_KEY_MAX - k->n) {
        k->over = true;
        return;
    }
    memcpy(k->b + k->n, p, n);
    k->n += n;
}

void
sprig__kput_num(kbuf *k, uint8_t tag, const uint8_t v8[8])
{
    sprig__kput(k, &tag, 1);
    sprig__kput(k, v8, 8);
}

/* The element of a JSON integer: a float when the double is exact. */
void
sprig__kput_int(kbuf *k, int64_t v)
{
    uint8_t b[8];
    bool exact = v >= -(1ll << 53) && v <= (1ll << 53);
    double d = (double)v;
    if (!exact && d < 9223372036854775808.0 && d >= -9223372036854775808.0) {
        exact = (int64_t)d == v;
    }
    if (exact) {
        sprig_key_f64(d, b);
        sprig__kput_num(k, SPRIG_KEY_FLOAT, b);
    } else {
        sprig__put_u64be(b, (uint64_t)v);
        sprig__kput_num(k, v < 0 ? SPRIG_KEY_NEGINT : SPRIG_KEY_POSINT, b);
    }
}

void
sprig__kput_str(kbuf *k, const char *s, size_t n)
{
    static const uint8_t tag = SPRIG_KEY_STRING, zero = 0, esc[2] = {0, 0xFF};
    sprig__kput(k, &tag, 1);
    for (size_t i = 0; i < n;) {
        const char *nul = memchr(s + i, 0, n - i);
        size_t run = nul ? (size_t)(nul - (s + i)) : n - i;
        sprig__kput(k, s + i, run); /* the bytes up to the next NUL, at once */
        i += run;
        if (nul) {
            sprig__kput(k, esc, 2);
            i++;
        }
    }
    sprig__kput(k, &zero, 1);
}

/* Append the element of scalar `v`; false if `v` is not a scalar. */
static bool
kput_json(kbuf *k, json_t *v)
{
    uint8_t b[8], tag;
    switch (json_typeof(v)) {
    case JSON_STRING:
        sprig__kput_str(k, json_string_value(v), json_string_length(v));
        return true;
    case JSON_INTEGER: sprig__kput_int(k, json_integer_value(v)); return true;
    case JSON_REAL: {
        double d = json_real_value(v);
        sprig_key_f64(d == 0 ? 0.0 : d, b);
        sprig__kput_num(k, SPRIG_KEY_FLOAT, b);
        return true;
    }
    case JSON_TRUE: tag = SPRIG_KEY_TRUE; break;
    case JSON_FALSE: tag = SPRIG_KEY_FALSE; break;
    case JSON_NULL: tag = SPRIG_KEY_NULL; break;
    default: return false;
    }
    sprig__kput(k, &tag, 1);
    return true;
}

static int
key_too_big(void)
{
    return sprig__err(SPRIG_ETOOBIG,
                      "a view key is longer than SPRIG_KEY_MAX (%d) bytes",
                      SPRIG_KEY_MAX);
}

int
sprig_key_from_json(const char *json, size_t len, sprig_buf *out)
{
    if (!json || !out) {
        return sprig__err(SPRIG_EINVAL, "JSON text or output is NULL");
    }
    json_error_t err;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v) {
        return sprig__err(SPRIG_EINVAL, "key is not JSON: %s (column %d)",
                          err.text, err.column);
    }
    kbuf k = {.n = 0};
    bool ok = true;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            ok = ok && kput_json(&k, e);
        }
        ok = ok && json_array_size(v) > 0;
    } else {
        ok = kput_json(&k, v);
    }
    json_decref(v);
    if (!ok) {
        return sprig__err(SPRIG_EINVAL, "a view key is a JSON scalar or a "
                                        "non-empty array of scalars");
    }
    if (k.over) {
        return key_too_big();
    }
    out->len = 0;
    return sprig_buf_append(out, k.b, k.n);
}

/* ---- mapping ------------------------------------------------------------ */

/* The shortest text that reads back as `d` (integers without exponent). */
void
sprig__json_fmt_double(double d, char out[40])
{
    if (!isfinite(d)) {
        snprintf(out, 40, "null");
        return;
    }
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
        d == (double)(long long)d) {
        snprintf(out, 40, "%.0f", d == 0 ? 0.0 : d);
        return;
    }
    for (int p = 15; p <= 17; p++) {
        snprintf(out, 40, "%.*g", p, d);
        if (strtod(out, NULL) == d) {
            return;
        }
    }
}

/* The value text of node `v` (NULL: null) appended to `out`. */
int
sprig__json_value_text(json_t *v, sprig_buf *out)
{
    char num[40];
    if (!v) {
        return sprig_buf_append(out, "null", 4);
    }
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        return sprig_buf_append(out, num, strlen(num));
    }
    if (json_is_real(v)) {
        sprig__json_fmt_double(json_real_value(v), num);
        return sprig_buf_append(out, num, strlen(num));
    }
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc = n ? sprig__buf_reserve(out, n)
               : sprig__err(SPRIG_ENOMEM, "out of memory writing JSON");
    if (rc == 0) {
        json_dumpb(v, (char *)out->data + out->len, n,
                   JSON_COMPACT | JSON_ENCODE_ANY);
        out->len += n;
    }
    return rc;
}

int
sprig__json_emit_key(sprig_emitter *e, const kbuf *k, const sprig_buf *val)
{
    if (k->over) {
        return key_too_big();
    }
    return sprig_emit(e, (sprig_bytes){k->b, k->n},
                      (sprig_bytes){val->data, val->len});
}

int
sprig__jview_map(const sprig__jview *v, struct json_t *doc, sprig_emitter *e)
{
    if (!doc) {
        return SPRIG_OK;
    }
    kbuf k = {.n = 0};
    json_t *single = v->n_keys == 1 ? resolve(doc, &v->keys[0]) : NULL;
    for (size_t i = 0; i < v->n_keys && v->n_keys > 1; i++) {
        json_t *node = resolve(doc, &v->keys[i]);
        if (!node || !kput_json(&k, node)) {
            return SPRIG_OK;
        }
    }
    if (v->n_keys == 1 && !single) {
        return SPRIG_OK;
    }
    sprig_buf val = {0};
    int rc = sprig__json_value_text(
        v->has_value ? resolve(doc, &v->value) : NULL, &val);
    if (rc == 0 && single && json_is_array(single)) {
        size_t i;
        json_t *el;
        json_array_foreach(single, i, el)
        {
            kbuf ek = {.n = 0};
            if (rc == 0 && kput_json(&ek, el)) {
                rc = sprig__json_emit_key(e, &ek, &val);
            }
        }
    } else if (rc == 0 && (!single || kput_json(&k, single))) {
        rc = sprig__json_emit_key(e, &k, &val);
    }
    sprig_buf_clear(&val);
    return rc;
}

/* ---- keys back to JSON --------------------------------------------------- */

/* Append `s` as a JSON string; bytes that are not UTF-8 become U+FFFD. */
static int
put_jstr(sprig_buf *out, sprig_bytes s)
{
    const uint8_t *p = s.data;
    int rc = sprig__buf_put_u8(out, '"');
    for (size_t i = 0; rc == 0 && i < s.len;) {
        uint8_t c = p[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            snprintf(esc, sizeof esc, "\\%c", c);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
        } else if (c < 0x80) {
            rc = sprig__buf_put_u8(out, c);
            i++;
            continue;
        } else {
            int n = c >= 0xF0 && c < 0xF5 ? 4
                    : c >= 0xE0           ? 3
                    : c >= 0xC2           ? 2
                                          : 0;
            bool ok = n && i + (size_t)n <= s.len;
            for (int j = 1; ok && j < n; j++) {
                ok = (p[i + j] & 0xC0) == 0x80;
            }
            if (ok) {
                rc = sprig_buf_append(out, p + i, (size_t)n);
                i += (size_t)n;
                continue;
            }
            snprintf(esc, sizeof esc, "\xEF\xBF\xBD");
        }
        rc = sprig_buf_append(out, esc, strlen(esc));
        i++;
    }
    return rc ? rc : sprig__buf_put_u8(out, '"');
}

static int
put_elem(sprig_buf *out, const sprig_key_elem *el)
{
    char num[40];
    static const char hex[] = "0123456789abcdef";
    switch (el->kind) {
    case SPRIG_KEY_NULL: return sprig_buf_append(out, "null", 4);
    case SPRIG_KEY_FALSE: return sprig_buf_append(out, "false", 5);
    case SPRIG_KEY_TRUE: return sprig_buf_append(out, "true", 4);
    case SPRIG_KEY_POSINT:
        snprintf(num, sizeof num, "%llu", (unsigned long long)el->num.u64);
        break;
    case SPRIG_KEY_NEGINT:
        snprintf(num, sizeof num, "%lld", (long long)el->num.i64);
        break;
    case SPRIG_KEY_FLOAT: sprig__json_fmt_double(el->num.f64, num); break;
    case SPRIG_KEY_STRING: return put_jstr(out, el->bytes);
    case SPRIG_KEY_BYTES: {
        int rc = sprig_buf_append(out, "{\"$bytes\":\"", 11);
        const uint8_t *p = el->bytes.data;
        for (size_t i = 0; rc == 0 && i < el->bytes.len; i++) {
            char h[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
            rc = sprig_buf_append(out, h, 2);
        }
        return rc ? rc : sprig_buf_append(out, "\"}", 2);
    }
    }
    return sprig_buf_append(out, num, strlen(num));
}

int
sprig_key_to_json(sprig_bytes key, sprig_buf *out)
{
    if (!out || (key.len && !key.data)) {
        return sprig__err(SPRIG_EINVAL, "key or output is NULL");
    }
    sprig_key_reader r;
    sprig_key_elem el;
    size_t n = 0, start = out->len;
    int rc = sprig__buf_put_u8(out, '[');
    sprig_key_reader_init(&r, key);
    while (rc == 0 && (rc = sprig_key_next(&r, &el)) == 1) {
        rc = n++ ? sprig__buf_put_u8(out, ',') : 0;
        rc = rc ? rc : put_elem(out, &el);
    }
    sprig_key_reader_clear(&r);
    rc = rc ? rc : sprig__buf_put_u8(out, ']');
    if (rc == 0 && n == 1) { /* a 1-tuple prints as its element */
        memmove((char *)out->data + start, (char *)out->data + start + 1,
                out->len - start - 2);
        out->len -= 2;
    }
    if (rc == 0 && n == 0) {
        rc = SPRIG_ECORRUPT;
    }
    if (rc) {
        out->len = start;
        return rc == SPRIG_ENOMEM
                   ? rc
                   : sprig__err(SPRIG_EINVAL, "key is not a tuple key");
    }
    return SPRIG_OK;
}

/* ---- built-in reduces -----------------------------------------------------
 */

bool
sprig__json_number(sprig_bytes text, sprig__num *out)
{
    char buf[64];
    if (text.len == 0 || text.len >= sizeof buf) {
        return false;
    }
    memcpy(buf, text.data, text.len);
    buf[text.len] = 0;
    const char *p = buf + (buf[0] == '-');
    if (*p < '0' || *p > '9') {
        return false;
    }
    bool digits = true;
    for (const char *q = p; *q; q++) {
        digits = digits && *q >= '0' && *q <= '9';
    }
    char *end;
    if (digits) {
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (errno == 0 && *end == 0) {
            *out = (sprig__num){true, v, (double)v};
            return true;
        }
    }
    double d = strtod(buf, &end);
    if (*end != 0 || !isfinite(d)) {
        return false;
    }
    *out = (sprig__num){false, 0, d};
    return true;
}

/* Exact comparison of two JSON numbers. */
static int
num_cmp(const sprig__num *a, const sprig__num *b)
{
    if (a->is_int && b->is_int) {
        return (a->i > b->i) - (a->i < b->i);
    }
    if (!a->is_int && !b->is_int) {
        return (a->d > b->d) - (a->d < b->d);
    }
    const sprig__num *in = a->is_int ? a : b, *fl = a->is_int ? b : a;
    int c; /* in vs fl */
    double d = fl->d;
    if (d >= 9223372036854775808.0) {
        c = -1;
    } else if (d < -9223372036854775808.0) {
        c = 1;
    } else {
        int64_t t = (int64_t)d;
        double frac = d - (double)t;
        c = in->i < t ? -1 : in->i > t ? 1 : frac > 0 ? -1 : frac < 0 ? 1 : 0;
    }
    return a->is_int ? c : -c;
}

void
sprig__bstate_init(sprig__bstate *s)
{
    memset(s, 0, sizeof *s);
}

static void
add_num(sprig__bstate *s, const sprig__num *v)
{
    if (s->nnum == 0 || num_cmp(v, &s->min) < 0) {
        s->min = *v;
    }
    if (s->nnum == 0 || num_cmp(v, &s->max) > 0) {
        s->max = *v;
    }
    s->nnum++;
    if (v->is_int) {
        s->isum += v->i;
    } else {
        s->nreal++;
        s->rsum += v->d;
    }
}

void
sprig__bstate_add(sprig__bstate *s, sprig_bytes value)
{
    sprig__num v;
    s->count++;
    if (sprig__json_number(value, &v)) {
        add_num(s, &v);
    }
}

void
sprig__bstate_merge(sprig__bstate *s, const sprig__bstate *o)
{
    if (o->nnum) {
        if (s->nnum == 0 || num_cmp(&o->min, &s->min) < 0) {
            s->min = o->min;
        }
        if (s->nnum == 0 || num_cmp(&o->max, &s->max) > 0) {
            s->max = o->max;
        }
    }
    s->count += o->count;
    s->nnum += o->nnum;
    s->nreal += o->nreal;
    s->isum += o->isum;
    s->rsum += o->rsum;
}

bool
sprig__bstate_remove(sprig__bstate *s, sprig_builtin_reduce kind,
                     sprig_bytes value)
{
    sprig__num v;
    if (s->count == 0) {
        return false;
    }
    s->count--;
    if (!sprig__json_number(value, &v)) {
        return true;
    }
    if (s->nnum == 0 || (!v.is_int && s->nreal == 0)) {
        return false;
    }
    bool exact = true;
    s->nnum--;
    if (v.is_int) {
        s->isum -= v.i;
    } else if (--s->nreal == 0) {
        s->rsum = 0;
    } else {
        s->rsum -= v.d;
        exact = kind != SPRIG_REDUCE_SUM; /* float drift */
    }
    if (kind == SPRIG_REDUCE_MIN && num_cmp(&v, &s->min) == 0) {
        exact = false;
    }
    if (kind == SPRIG_REDUCE_MAX && num_cmp(&v, &s->max) == 0) {
        exact = false;
    }
    return exact || s->nnum == 0;
}

static void
put_num(uint8_t *p, const sprig__num *n)
{
    p[0] = n->is_int;
    if (n->is_int) {
        sprig__put_u64be(p + 1, (uint64_t)n->i);
    } else {
        uint64_t bits;
        memcpy(&bits, &n->d, 8);
        sprig__put_u64be(p + 1, bits);
    }
}

static int
get_num(const uint8_t *p, sprig__num *n)
{
    uint64_t v = sprig__get_u64be(p + 1);
    if (p[0] > 1) {
        return SPRIG_ECORRUPT;
    }
    n->is_int = p[0];
    n->i = n->is_int ? (int64_t)v : 0;
    if (n->is_int) {
        n->d = (double)n->i;
    } else {
        memcpy(&n->d, &v, 8);
    }
    return SPRIG_OK;
}

void
sprig__bstate_encode(const sprig__bstate *s, uint8_t out[SPRIG__BSTATE_LEN])
{
    uint64_t bits;
    unsigned __int128 u = (unsigned __int128)s->isum;
    out[0] = 1;
    sprig__put_u64be(out + 1, s->count);
    sprig__put_u64be(out + 9, s->nnum);
    sprig__put_u64be(out + 17, s->nreal);
    sprig__put_u64be(out + 25, (uint64_t)(u >> 64));
    sprig__put_u64be(out + 33, (uint64_t)u);
    memcpy(&bits, &s->rsum, 8);
    sprig__put_u64be(out + 41, bits);
    put_num(out + 49, &s->min);
    put_num(out + 58, &s->max);
}

int
sprig__bstate_decode(sprig_bytes in, sprig__bstate *s)
{
    const uint8_t *p = in.data;
    int rc = in.len == SPRIG__BSTATE_LEN && p[0] == 1 ? 0 : SPRIG_ECORRUPT;
    if (rc == 0) {
        uint64_t bits = sprig__get_u64be(p + 41);
        s->count = sprig__get_u64be(p + 1);
        s->nnum = sprig__get_u64be(p + 9);
        s->nreal = sprig__get_u64be(p + 17);
        unsigned __int128 u = (unsigned __int128)sprig__get_u64be(p + 25) << 64;
        u |= sprig__get_u64be(p + 33);
        s->isum = (__int128)u;
        memcpy(&s->rsum, &bits, 8);
        rc = get_num(p + 49, &s->min);
        rc = rc ? rc : get_num(p + 58, &s->max);
    }
    return rc ? sprig__err(SPRIG_ECORRUPT, "a stored reduce state is "
                                           "malformed")
              : SPRIG_OK;
}

static int
put_text_num(sprig_buf *out, const sprig__num *n)
{
    char t[40];
    if (n->is_int) {
        snprintf(t, sizeof t, "%lld", (long long)n->i);
    } else {
        sprig__json_fmt_double(n->d, t);
    }
    return sprig_buf_append(out, t, strlen(t));
}

int
sprig__bstate_result(const sprig__bstate *s, sprig_builtin_reduce kind,
                     sprig_buf *out)
{
    char t[48];
    switch (kind) {
    case SPRIG_REDUCE_COUNT:
        snprintf(t, sizeof t, "%llu", (unsigned long long)s->count);
        break;
    case SPRIG_REDUCE_SUM:
        if (s->nreal == 0 && s->isum >= INT64_MIN && s->isum <= INT64_MAX) {
            snprintf(t, sizeof t, "%lld", (long long)s->isum);
        } else {
            sprig__json_fmt_double((double)s->isum + s->rsum, t);
        }
        break;
    case SPRIG_REDUCE_MIN:
    case SPRIG_REDUCE_MAX:
        if (s->nnum == 0) {
            snprintf(t, sizeof t, "null");
            break;
        }
        return put_text_num(out, kind == SPRIG_REDUCE_MIN ? &s->min : &s->max);
    default:
        return sprig__err(SPRIG_EINVAL, "unknown built-in reduce %d",
                          (int)kind);
    }
    return sprig_buf_append(out, t, strlen(t));
}
