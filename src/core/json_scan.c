/*
 * json_scan.c -- the one-pass JSON scanner of declarative views: the
 * paths of all the declarative views of a collection, found in one strict
 * pass over a document's bytes, and the mappings emitted from what it
 * found, byte for byte what json_view.c emits from jansson's tree.
 */
#include "json_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- one-pass extraction ---------------------------------------------------
 *
 * The write path maps a document into every declarative view of its
 * collection.  Instead of building jansson's tree, sprig__jscan_run() walks
 * the bytes once, validating them exactly as json_loadb(JSON_ALLOW_NUL)
 * does (top level an object or array; strict grammar; strings of valid
 * UTF-8 without raw control characters; escapes, surrogate pairs; no
 * \u0000 in object keys; integers within 64 bits; reals that do not
 * overflow; nesting at most 2048 values deep; nothing but whitespace
 * after), and records where each declared path ends: a node (kind and
 * bytes) per distinct path.  Duplicate keys resolve as jansson's objects
 * do, the last one wins.  Emitting then follows sprig__jview_map() exactly,
 * on nodes instead of json_t: numbers and strings are converted here;
 * an object, array or string as the *value* goes through jansson (parse
 * the node's bytes, dump compact), so its text is jansson's own.
 * tests/test_json_scan.c compares both paths on random documents. */

#define JSCAN_MAX_PATHS 64
#define JSCAN_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

enum {
    JN_NONE,
    JN_STRING,
    JN_INT,
    JN_REAL,
    JN_TRUE,
    JN_FALSE,
    JN_NULL,
    JN_OBJECT,
    JN_ARRAY
};

typedef struct sseg {
    const char *name;
    size_t len;
    bool is_index;
    size_t index;
} sseg;

typedef struct spath {
    sseg *segs;
    size_t n;
} spath;

typedef struct sview {
    const sprig__jview *jv;
    size_t *keys; /* path index of each key path */
    long value;   /* path index of the value path, -1 for none */
} sview;

struct sprig__jscan {
    spath paths[JSCAN_MAX_PATHS];
    size_t n_paths;
    sview *views;
    size_t n_views;
    size_t *idx;  /* the views' key indexes */
    sseg *segs;   /* every path's segments */
    uint64_t top; /* paths with at least one segment: all */
};

static bool
same_path(const spath *a, const jpath *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->segs[i].name, b->segs[i].name) != 0) {
            return false;
        }
    }
    return true;
}

/* The index of path `p` in s, adding it; -1 past JSCAN_MAX_PATHS. */
static long
path_index(sprig__jscan *s, const jpath *p, sseg **next_seg)
{
    for (size_t i = 0; i < s->n_paths; i++) {
        if (same_path(&s->paths[i], p)) {
            return (long)i;
        }
    }
    if (s->n_paths == JSCAN_MAX_PATHS) {
        return -1;
    }
    spath *sp = &s->paths[s->n_paths];
    sp->segs = *next_seg;
    sp->n = p->n;
    for (size_t i = 0; i < p->n; i++) {
        sp->segs[i] = (sseg){p->segs[i].name, strlen(p->segs[i].name),
                             p->segs[i].is_index, p->segs[i].index};
    }
    *next_seg += p->n;
    s->top |= 1ull << s->n_paths;
    return (long)s->n_paths++;
}

void
sprig__jscan_free(sprig__jscan *s)
{
    if (s) {
        sprig__free(s->views);
        sprig__free(s->idx);
        sprig__free(s->segs);
        sprig__free(s);
    }
}

/* Room for the views' paths: key indexes and segments. */
static int
jscan_alloc(sprig__jscan *s, const sprig__jview *const *views, size_t n)
{
    size_t nk = 0, ns = 0;
    for (size_t k = 0; k < n; k++) {
        nk += views[k]->n_keys;
        for (size_t j = 0; j < views[k]->n_keys; j++) {
            ns += views[k]->keys[j].n;
        }
        ns += views[k]->has_value ? views[k]->value.n : 0;
    }
    s->views = sprig__calloc(n ? n : 1, sizeof *s->views);
    s->idx = sprig__calloc(nk ? nk : 1, sizeof *s->idx);
    s->segs = sprig__calloc(ns ? ns : 1, sizeof *s->segs);
    return s->views && s->idx && s->segs ? SPRIG_OK : SPRIG_ENOMEM;
}

int
sprig__jscan_new(const sprig__jview *const *views, size_t n, sprig__jscan **out)
{
    *out = NULL;
    sprig__jscan *s = sprig__calloc(1, sizeof *s);
    if (!s || jscan_alloc(s, views, n)) {
        sprig__jscan_free(s);
        return sprig__err(SPRIG_ENOMEM, "out of memory compiling views");
    }
    sseg *seg = s->segs;
    size_t *idx = s->idx;
    bool fits = true;
    for (size_t k = 0; k < n && fits; k++) {
        sview *v = &s->views[s->n_views++];
        v->jv = views[k];
        v->keys = idx;
        for (size_t j = 0; j < views[k]->n_keys && fits; j++) {
            long i = path_index(s, &views[k]->keys[j], &seg);
            fits = i >= 0;
            *idx++ = (size_t)i;
        }
        v->value =
            views[k]->has_value ? path_index(s, &views[k]->value, &seg) : -1;
        fits = fits && (!views[k]->has_value || v->value >= 0);
    }
    if (!fits) { /* too many distinct paths: the caller keeps the tree */
        sprig__jscan_free(s);
        return SPRIG_OK;
    }
    *out = s;
    return SPRIG_OK;
}

size_t
sprig__jscan_paths(const sprig__jscan *s)
{
    return s->n_paths;
}

/* ---- the scanner ---- */

typedef struct scan {
    const uint8_t *p, *end;
    const sprig__jscan *js;
    sprig__jnode *nodes;
    uint8_t key[6 * SPRIG__JSON_PATH_MAX]; /* a decoded key being matched */
} scan;

static void
skip_ws(scan *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) {
        s->p++;
    }
}

static int
hexval(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Four hex digits at p (p + 4 <= end): the value, or -1. */
static long
hex4(const uint8_t *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

/* A \u escape at p (after the backslash, p[0] == 'u'): the code point,
 * consuming a surrogate pair whole; -1 when invalid.  *len: bytes used. */
static long
unicode_escape(const uint8_t *p, const uint8_t *end, size_t *len)
{
    if (end - p < 5) {
        return -1;
    }
    long v = hex4(p + 1);
    *len = 5;
    if (v >= 0xDC00 && v <= 0xDFFF) {
        return -1;
    }
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (end - p < 11 || p[5] != '\\' || p[6] != 'u') {
            return -1;
        }
        long v2 = hex4(p + 7);
        if (v2 < 0xDC00 || v2 > 0xDFFF) {
            return -1;
        }
        *len = 11;
        v = ((v - 0xD800) << 10) + (v2 - 0xDC00) + 0x10000;
    }
    return v;
}

/* A UTF-8 sequence starting at p (first byte >= 0x80): its length, 0 when
 * jansson would refuse it. */
static size_t
utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t u = p[0];
    size_t n = u >= 0xC2 && u <= 0xDF   ? 2
               : u >= 0xE0 && u <= 0xEF ? 3
               : u >= 0xF0 && u <= 0xF4 ? 4
                                        : 0;
    if (n == 0 || (size_t)(end - p) < n) {
        return 0;
    }
    uint32_t v = u & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000)) {
        return 0;
    }
    return n;
}

/* Scan a string (s->p at its opening quote) to past its closing quote.
 * *escaped: it has escapes; *nul: one of them is \u0000.  False when
 * invalid. */
/* Bytes a string may hold as they are: printable ASCII but '"', '\\'. */
static const uint8_t plain_byte[256] = {
    ['\x20' ... '\x21'] = 1, ['\x23' ... '\x5b'] = 1, ['\x5d' ... '\x7f'] = 1};

static bool
scan_string(scan *s, bool *escaped, bool *nul)
{
    const uint8_t *p = s->p + 1, *end = s->end;
    *escaped = *nul = false;
    for (;;) {
        while (p + 4 <= end && plain_byte[p[0]] && plain_byte[p[1]] &&
               plain_byte[p[2]] && plain_byte[p[3]]) {
            p += 4;
        }
        while (p < end && plain_byte[*p]) {
            p++;
        }
        if (p >= end) {
            return false;
        }
        uint8_t c = *p;
        if (c == '"') {
            s->p = p + 1;
            return true;
        }
        if (c < 0x20) {
            return false;
        }
        if (c == '\\') {
            *escaped = true;
            if (p + 1 >= end) {
                return false;
            }
            c = p[1];
            if (c == 'u') {
                size_t len;
                long v = unicode_escape(p + 1, end, &len);
                if (v < 0) {
                    return false;
                }
                *nul = *nul || v == 0;
                p += 1 + len;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' ||
                       c == 'f' || c == 'n' || c == 'r' || c == 't') {
                p += 2;
            } else {
                return false;
            }
        } else if (c >= 0x80) {
            size_t n = utf8_len(p, end);
            if (n == 0) {
                return false;
            }
            p += n;
        } else {
            p++;
        }
    }
}

static size_t
utf8_put(long v, uint8_t *out)
{
    if (v < 0x80) {
        out[0] = (uint8_t)v;
        return 1;
    }
    if (v < 0x800) {
        out[0] = (uint8_t)(0xC0 | (v >> 6));
        out[1] = (uint8_t)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (v >> 12));
        out[1] = (uint8_t)(0x80 | ((v >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (v & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (v >> 18));
    out[1] = (uint8_t)(0x80 | ((v >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((v >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (v & 0x3F));
    return 4;
}

/* Decode a scanned (valid) string's body [b, e) into out, which has room
 * for e - b bytes (decoding never grows); the decoded length. */
static size_t
decode_string(const uint8_t *b, const uint8_t *e, uint8_t *out)
{
    size_t n = 0;
    while (b < e) {
        if (*b != '\\') {
            out[n++] = *b++;
            continue;
        }
        uint8_t c = b[1];
        if (c == 'u') {
            size_t len = 0;
            long v = unicode_escape(b + 1, e, &len);
            n += utf8_put(v, out + n);
            b += 1 + len;
            continue;
        }
        out[n++] = c == 'b'   ? '\b'
                   : c == 'f' ? '\f'
                   : c == 'n' ? '\n'
                   : c == 'r' ? '\r'
                   : c == 't' ? '\t'
                              : c;
        b += 2;
    }
    return n;
}

/* Whether real token [b, e) overflows a double (jansson refuses it). */
static bool
real_overflows(const uint8_t *b, const uint8_t *e)
{
    const uint8_t *p = b + (*b == '-');
    long ip = 0; /* digits before the point (no leading zeros in JSON) */
    while (p < e && *p >= '0' && *p <= '9') {
        ip++, p++;
    }
    while (p < e && *p != 'e' && *p != 'E') {
        p++;
    }
    long ex = 0;
    if (p < e) {
        p++;
        bool neg = *p == '-';
        p += *p == '-' || *p == '+';
        while (p < e && ex < 100000) {
            ex = ex * 10 + (*p++ - '0');
        }
        ex = neg ? -ex : ex;
    }
    if (ip + ex <= 307) { /* below 10^307 */
        return false;
    }
    char buf[64], *big = NULL, *t = buf;
    size_t n = (size_t)(e - b);
    if (n >= sizeof buf) {
        t = big = sprig__malloc(n + 1);
        if (!big) {
            return false; /* cannot tell; strtod at use time decides */
        }
    }
    memcpy(t, b, n);
    t[n] = 0;
    errno = 0;
    double d = strtod(t, NULL);
    sprig__free(big);
    return (d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE;
}

/* Whether integer token [b, e) fits 64 bits (jansson's strtoll). */
static bool
int_fits(const uint8_t *b, const uint8_t *e)
{
    size_t digits = (size_t)(e - b) - (*b == '-');
    if (digits < 19) {
        return true;
    }
    if (digits > 19) {
        return false;
    }
    char buf[24];
    memcpy(buf, b, (size_t)(e - b));
    buf[e - b] = 0;
    errno = 0;
    (void)strtoll(buf, NULL, 10);
    return errno != ERANGE;
}

/* Scan a number at s->p: JN_INT, JN_REAL, or JN_NONE when invalid. */
static int
scan_number(scan *s)
{
    const uint8_t *b = s->p, *p = b, *end = s->end;
    p += p < end && *p == '-';
    if (p >= end || *p < '0' || *p > '9') {
        return JN_NONE;
    }
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9') {
            return JN_NONE;
        }
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    bool real = false;
    if (p < end && *p == '.') {
        p++, real = true;
        if (p >= end || *p < '0' || *p > '9') {
            return JN_NONE;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++, real = true;
        p += p < end && (*p == '+' || *p == '-');
        if (p >= end || *p < '0' || *p > '9') {
            return JN_NONE;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    s->p = p;
    if (real) {
        return real_overflows(b, p) ? JN_NONE : JN_REAL;
    }
    return int_fits(b, p) ? JN_INT : JN_NONE;
}

/* true / false / null at s->p (jansson reads a whole run of letters). */
static int
scan_word(scan *s)
{
    const uint8_t *b = s->p, *p = b;
    while (p < s->end &&
           ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
        p++;
    }
    size_t n = (size_t)(p - b);
    s->p = p;
    if (n == 4 && memcmp(b, "true", 4) == 0) {
        return JN_TRUE;
    }
    if (n == 5 && memcmp(b, "false", 5) == 0) {
        return JN_FALSE;
    }
    return n == 4 && memcmp(b, "null", 4) == 0 ? JN_NULL : JN_NONE;
}

static bool scan_value(scan *s, uint64_t live, size_t level, unsigned depth,
                       sprig__jnode *out);

/* The live paths whose segment `level` names object key [b, e) (raw,
 * `escaped` if it has escapes). */
static uint64_t
match_key(scan *s, uint64_t live, size_t level, const uint8_t *b,
          const uint8_t *e, bool escaped)
{
    const uint8_t *k = b;
    size_t n = (size_t)(e - b);
    if (escaped) {
        if (n > sizeof s->key) {
            return 0; /* decodes to more than any segment */
        }
        n = decode_string(b, e, s->key);
        k = s->key;
    }
    uint64_t m = 0;
    for (uint64_t l = live; l; l &= l - 1) {
        int t = __builtin_ctzll(l);
        const sseg *g = &s->js->paths[t].segs[level];
        if (g->len == n && memcmp(g->name, k, n) == 0) {
            m |= 1ull << t;
        }
    }
    return m;
}

/* The live paths whose segment `level` is array index i. */
static uint64_t
match_index(const scan *s, uint64_t live, size_t level, size_t i)
{
    uint64_t m = 0;
    for (uint64_t l = live; l; l &= l - 1) {
        int t = __builtin_ctzll(l);
        const sseg *g = &s->js->paths[t].segs[level];
        if (g->is_index && g->index == i) {
            m |= 1ull << t;
        }
    }
    return m;
}

/* A member's value: paths in `m` matched its key or index at `level`;
 * they forget what an earlier duplicate gave them, the ones ending here
 * take the node, the others look inside. */
static bool
scan_member(scan *s, uint64_t m, size_t level, unsigned depth)
{
    uint64_t deeper = 0, here = 0;
    for (uint64_t l = m; l; l &= l - 1) {
        int t = __builtin_ctzll(l);
        s->nodes[t].kind = JN_NONE;
        if (s->js->paths[t].n > level + 1) {
            deeper |= 1ull << t;
        } else {
            here |= 1ull << t;
        }
    }
    sprig__jnode node;
    if (!scan_value(s, deeper, level + 1, depth, &node)) {
        return false;
    }
    for (uint64_t l = here; l; l &= l - 1) {
        s->nodes[__builtin_ctzll(l)] = node;
    }
    return true;
}

/* Past the byte `c` when s->p is at one (true); else false. */
static bool
scan_eat(scan *s, uint8_t c)
{
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* Past the '{' or '[' at s->p and the whitespace after it; true when the
 * container is empty (`close` follows, and is skipped too). */
static bool
scan_open(scan *s, uint8_t close)
{
    s->p++;
    skip_ws(s);
    return scan_eat(s, close);
}

/* After a member of an object or array closed by `close`: 1 past a ',' and
 * the whitespace after it (a member follows), 0 past `close` (the end), -1
 * at anything else (not JSON). */
static int
scan_next(scan *s, uint8_t close)
{
    skip_ws(s);
    if (scan_eat(s, ',')) {
        skip_ws(s);
        return 1;
    }
    return scan_eat(s, close) ? 0 : -1;
}

static bool
scan_object(scan *s, uint64_t live, size_t level, unsigned depth)
{
    if (scan_open(s, '}')) {
        return true;
    }
    for (;;) {
        bool escaped, nul;
        const uint8_t *kb = s->p + 1;
        if (s->p >= s->end || *s->p != '"' || !scan_string(s, &escaped, &nul) ||
            nul) {
            return false;
        }
        uint64_t m =
            live ? match_key(s, live, level, kb, s->p - 1, escaped) : 0;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') {
            return false;
        }
        s->p++;
        skip_ws(s);
        if (!scan_member(s, m, level, depth)) {
            return false;
        }
        int more = scan_next(s, '}');
        if (more <= 0) {
            return more == 0;
        }
    }
}

static bool
scan_array(scan *s, uint64_t live, size_t level, unsigned depth)
{
    if (scan_open(s, ']')) {
        return true;
    }
    for (size_t i = 0;; i++) {
        uint64_t m = live ? match_index(s, live, level, i) : 0;
        if (!scan_member(s, m, level, depth)) {
            return false;
        }
        int more = scan_next(s, ']');
        if (more <= 0) {
            return more == 0;
        }
    }
}

/* Scan one value at s->p (whitespace skipped) whose nesting depth, counted
 * as jansson does, is depth + 1; paths in `live` continue inside it at
 * segment `level`.  *out: its node. */
static bool
scan_value(scan *s, uint64_t live, size_t level, unsigned depth,
           sprig__jnode *out)
{
    if (++depth > JSCAN_MAX_DEPTH || s->p >= s->end) {
        return false;
    }
    const uint8_t *b = s->p;
    bool escaped, nul, ok = true;
    int kind;
    switch (*b) {
    case '{':
        kind = JN_OBJECT;
        ok = scan_object(s, live, level, depth);
        break;
    case '[':
        kind = JN_ARRAY;
        ok = scan_array(s, live, level, depth);
        break;
    case '"':
        kind = JN_STRING;
        ok = scan_string(s, &escaped, &nul);
        break;
    default:
        kind = *b == '-' || (*b >= '0' && *b <= '9') ? scan_number(s)
                                                     : scan_word(s);
        ok = kind != JN_NONE;
        *out = (sprig__jnode){(uint8_t)kind, b, (size_t)(s->p - b)};
        /* jansson's lexer puts back the byte after a number or a word; a
         * NUL byte put back reads as "buffer empty" and is skipped */
        s->p += ok && s->p < s->end && *s->p == 0;
        return ok;
    }
    *out = (sprig__jnode){(uint8_t)kind, b, (size_t)(s->p - b)};
    return ok;
}

bool
sprig__jscan_run(const sprig__jscan *js, sprig_bytes contents,
                 sprig__jnode *nodes)
{
    scan s; /* not zero-filled: key[] is scratch */
    s.p = contents.data;
    s.end = (const uint8_t *)contents.data + contents.len;
    s.js = js;
    s.nodes = nodes;
    for (size_t i = 0; i < js->n_paths; i++) {
        nodes[i].kind = JN_NONE;
    }
    skip_ws(&s);
    if (s.p >= s.end || (*s.p != '{' && *s.p != '[')) {
        return false;
    }
    sprig__jnode root;
    bool ok = scan_value(&s, js->top, 0, 0, &root);
    skip_ws(&s);
    if (!ok || s.p != s.end) {
        for (size_t i = 0; i < js->n_paths; i++) {
            nodes[i].kind = JN_NONE;
        }
        return false;
    }
    return true;
}

/* ---- emitting from nodes ---- */

/* The token of a number node as a C string in buf (64 bytes) or *big. */
static const char *
node_text(const sprig__jnode *n, char *buf, char **big)
{
    char *t = buf;
    *big = NULL;
    if (n->len >= 64) {
        t = *big = sprig__malloc(n->len + 1);
        if (!t) {
            return NULL;
        }
    }
    memcpy(t, n->bytes, n->len);
    t[n->len] = 0;
    return t;
}

static bool
node_int(const sprig__jnode *n, int64_t *out)
{
    size_t neg = n->bytes[0] == '-';
    if (n->len - neg <= 18) { /* fits: no strtoll */
        int64_t v = 0;
        for (size_t i = neg; i < n->len; i++) {
            v = v * 10 + (n->bytes[i] - '0');
        }
        *out = neg ? -v : v;
        return true;
    }
    char buf[64], *big;
    const char *t = node_text(n, buf, &big);
    *out = t ? strtoll(t, NULL, 10) : 0;
    sprig__free(big);
    return t != NULL;
}

static bool
node_real(const sprig__jnode *n, double *out)
{
    char buf[64], *big;
    const char *t = node_text(n, buf, &big);
    *out = t ? strtod(t, NULL) : 0;
    sprig__free(big);
    return t != NULL;
}

/* Append the key element of scalar node `n`; false if it is not a scalar
 * (or memory ran out: *nomem). */
static bool
kput_node(kbuf *k, const sprig__jnode *n, bool *nomem)
{
    uint8_t b[8], tag;
    int64_t i;
    double d;
    switch (n->kind) {
    case JN_STRING: {
        size_t raw = n->len - 2;
        uint8_t small[256], *big = NULL, *t = small;
        if (raw > sizeof small && !(t = big = sprig__malloc(raw))) {
            *nomem = true;
            return false;
        }
        size_t len = decode_string(n->bytes + 1, n->bytes + n->len - 1, t);
        sprig__kput_str(k, (const char *)t, len);
        sprig__free(big);
        return true;
    }
    case JN_INT:
        if (!node_int(n, &i)) {
            *nomem = true;
            return false;
        }
        sprig__kput_int(k, i);
        return true;
    case JN_REAL:
        if (!node_real(n, &d)) {
            *nomem = true;
            return false;
        }
        sprig_key_f64(d == 0 ? 0.0 : d, b);
        sprig__kput_num(k, SPRIG_KEY_FLOAT, b);
        return true;
    case JN_TRUE: tag = SPRIG_KEY_TRUE; break;
    case JN_FALSE: tag = SPRIG_KEY_FALSE; break;
    case JN_NULL: tag = SPRIG_KEY_NULL; break;
    default: return false;
    }
    sprig__kput(k, &tag, 1);
    return true;
}

/* The value text of node `n` (JN_NONE: null), as sprig__json_value_text() gives
 * it. */
static int
node_value_text(const sprig__jnode *n, sprig_buf *out)
{
    char num[40];
    int64_t i;
    double d;
    switch (n->kind) {
    case JN_NONE:
    case JN_NULL: return sprig_buf_append(out, "null", 4);
    case JN_TRUE: return sprig_buf_append(out, "true", 4);
    case JN_FALSE: return sprig_buf_append(out, "false", 5);
    case JN_INT: /* "%lld" of the value is the token, but for -0 */
        if (n->len == 2 && n->bytes[0] == '-' && n->bytes[1] == '0') {
            return sprig_buf_append(out, "0", 1);
        }
        (void)i;
        return sprig_buf_append(out, n->bytes, n->len);
    case JN_REAL:
        if (!node_real(n, &d)) {
            break;
        }
        sprig__json_fmt_double(d, num);
        return sprig_buf_append(out, num, strlen(num));
    default: { /* string, object, array: jansson's own text */
        json_error_t err;
        json_t *v = json_loadb((const char *)n->bytes, n->len,
                               JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        int rc = v ? sprig__json_value_text(v, out) : SPRIG_ENOMEM;
        json_decref(v);
        return rc == SPRIG_ENOMEM && !v
                   ? sprig__err(SPRIG_ENOMEM, "out of memory writing JSON")
                   : rc;
    }
    }
    return sprig__err(SPRIG_ENOMEM, "out of memory reading a number");
}

/* Emit one mapping per scalar element of array node `arr`. */
static int
emit_elements(const sprig__jnode *arr, const sprig_buf *val, sprig_emitter *e)
{
    scan s; /* not zero-filled: key[] is scratch */
    s.p = arr->bytes + 1;
    s.end = arr->bytes + arr->len;
    s.js = NULL;
    s.nodes = NULL;
    int rc = SPRIG_OK;
    skip_ws(&s);
    while (rc == 0 && s.p < s.end && *s.p != ']') {
        sprig__jnode el;
        kbuf ek = {.n = 0};
        bool nomem = false;
        scan_value(&s, 0, 0, 0, &el); /* valid: scanned before */
        if (kput_node(&ek, &el, &nomem)) {
            rc = sprig__json_emit_key(e, &ek, val);
        } else if (nomem) {
            rc = sprig__err(SPRIG_ENOMEM, "out of memory mapping");
        }
        skip_ws(&s);
        s.p += s.p < s.end && *s.p == ',';
        skip_ws(&s);
    }
    return rc;
}

int
sprig__jscan_map(const sprig__jscan *js, size_t k, const sprig__jnode *nodes,
                 sprig_emitter *e)
{
    const sview *v = &js->views[k];
    size_t nk = v->jv->n_keys;
    kbuf key = {.n = 0};
    bool nomem = false;
    const sprig__jnode *single = nk == 1 ? &nodes[v->keys[0]] : NULL;
    for (size_t i = 0; i < nk && nk > 1; i++) {
        if (!kput_node(&key, &nodes[v->keys[i]], &nomem)) {
            return nomem ? sprig__err(SPRIG_ENOMEM, "out of memory mapping")
                         : SPRIG_OK;
        }
    }
    if (single && single->kind == JN_NONE) {
        return SPRIG_OK;
    }
    static const sprig__jnode none = {JN_NONE, NULL, 0};
    sprig_buf val = {0};
    int rc = node_value_text(v->value >= 0 ? &nodes[v->value] : &none, &val);
    if (rc == 0 && single && single->kind == JN_ARRAY) {
        rc = emit_elements(single, &val, e);
    } else if (rc == 0 && (!single || kput_node(&key, single, &nomem))) {
        rc = sprig__json_emit_key(e, &key, &val);
    } else if (rc == 0 && nomem) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory mapping");
    }
    sprig_buf_clear(&val);
    return rc;
}
