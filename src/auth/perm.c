/*
 * perm.c -- the permission model's matching (src/auth): dotted names and
 * patterns, statements, canonical resource names.
 *
 * A name ("sprig.db.app.collection.msgs") and a pattern
 * ("sprig.db.*.collection") are segments joined by '.'.  A pattern
 * matches a name when each pattern segment matches the name's segment at
 * the same place, '*' in a segment matching any run of bytes within it:
 * a shorter pattern covers everything below it (a grant on a database
 * covers its collections, documents, keys and topics; the action "kv"
 * covers "kv.get").  Variable parts of resource names never hold a raw
 * '.', '*' or '%' (they are written %XX), so the matching is unambiguous.
 */
#include "auth/auth_int.h"

/* Glob match of one segment: '*' matches any run of bytes. */
static bool
seg_match(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pn && p[pi] == s[si]) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*') {
        pi++;
    }
    return pi == pn;
}

static size_t
seg_len(const char *s)
{
    const char *dot = strchr(s, '.');
    return dot ? (size_t)(dot - s) : strlen(s);
}

bool
sprig__pattern_match(const char *p, const char *name)
{
    for (;;) {
        size_t pn = seg_len(p), sn = seg_len(name);
        if (!seg_match(p, pn, name, sn)) {
            return false;
        }
        if (!p[pn]) {
            return true; /* the pattern covers the name (and below it) */
        }
        if (!name[sn]) {
            return false; /* the pattern is more specific than the name */
        }
        p += pn + 1;
        name += sn + 1;
    }
}

static bool
pattern_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '%' ||
           c == '*';
}

int
sprig__pattern_check(const char *p, const char *what)
{
    size_t seg = 0;
    if (!p || !*p || strlen(p) > 4096) {
        return sprig__err(SPRIG_EINVAL, "%s: an empty or over-long pattern",
                          what);
    }
    for (const char *c = p;; c++) {
        if (*c == '.' || !*c) {
            if (seg == 0) {
                return sprig__err(SPRIG_EINVAL, "%s '%s': an empty segment",
                                  what, p);
            }
            if (!*c) {
                return SPRIG_OK;
            }
            seg = 0;
        } else if (!pattern_byte(*c)) {
            return sprig__err(SPRIG_EINVAL,
                              "%s '%s': byte 0x%02x is not allowed (write "
                              "it %%XX)",
                              what, p, (unsigned char)*c);
        } else {
            seg++;
        }
    }
}

int
sprig__stmts_add(sprig__stmts *s, const char *actions, const char *resource)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        sprig__stmt *n = sprig__realloc(s->items, cap * sizeof *n);
        if (!n) {
            return sprig__err(SPRIG_ENOMEM, "out of memory");
        }
        s->items = n;
        s->cap = cap;
    }
    sprig__stmt *st = &s->items[s->n];
    st->actions = sprig__strdup(actions);
    st->resource = sprig__strdup(resource);
    if (!st->actions || !st->resource) {
        sprig__free(st->actions);
        sprig__free(st->resource);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    s->n++;
    return SPRIG_OK;
}

void
sprig__stmts_free(sprig__stmts *s)
{
    for (size_t i = 0; i < s->n; i++) {
        sprig__free(s->items[i].actions);
        sprig__free(s->items[i].resource);
    }
    sprig__free(s->items);
    memset(s, 0, sizeof *s);
}

/* Does one of the comma-separated patterns of `list` match `action`? */
static bool
actions_allow(const char *list, const char *action)
{
    char one[256];
    while (*list) {
        const char *comma = strchr(list, ',');
        size_t n = comma ? (size_t)(comma - list) : strlen(list);
        if (n < sizeof one) {
            memcpy(one, list, n);
            one[n] = 0;
            if (sprig__pattern_match(one, action)) {
                return true;
            }
        }
        list += n + (comma ? 1 : 0);
    }
    return false;
}

bool
sprig__stmts_allow(const sprig__stmts *s, const char *action,
                   const char *resource)
{
    for (size_t i = 0; i < s->n; i++) {
        if (sprig__pattern_match(s->items[i].resource, resource) &&
            actions_allow(s->items[i].actions, action)) {
            return true;
        }
    }
    return false;
}

int
sprig__auth_segment(sprig_buf *out, sprig_bytes seg, bool first)
{
    return sprig__name_segment(out, seg, first);
}

int
sprig__auth_res(sprig_buf *out, const char *kind, const char *name)
{
    out->len = 0;
    int rc = sprig__auth_segment(out, sprig_str("sprig"), true);
    rc = rc ? rc : sprig__auth_segment(out, sprig_str(kind), false);
    return rc ? rc : sprig__auth_segment(out, sprig_str(name), false);
}
