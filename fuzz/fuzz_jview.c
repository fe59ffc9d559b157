/*
 * fuzz_jview.c -- libFuzzer harness over declarative-view extraction, the
 * map every declarative view runs over stored documents.  Input: a line
 * of key paths ("a.b" or "a,b.0"), a line with the value path (may be
 * empty), then the document.  The same extraction is done twice, by the
 * jansson tree (sprig__jview_map) and by the one-pass scanner
 * (sprig__jscan_map), which must emit exactly the same sorted pairs and
 * fail alike.  Checks too: no emitted key over SPRIG_KEY_MAX; SPRIG_ETOOBIG
 * only when sprig__jview_key_bound() allows it (the engine skips mapping
 * documents under that bound when it checks lazy views at write time).
 */
#include "core/view.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Cut the next line out of [*p, end) into buf (NUL-terminated). */
static bool
line(const uint8_t **p, const uint8_t *end, char *buf, size_t cap)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : 0;
    if (!nl || n >= cap || memchr(*p, 0, n)) {
        return false;
    }
    memcpy(buf, *p, n);
    buf[n] = 0;
    *p = nl + 1;
    return true;
}

static int
by_tree(const sprig__jview *jv, sprig_bytes doc, sprig_buf *out)
{
    struct json_t *tree = NULL;
    sprig_emitter e = {{0}};
    int rc = sprig__json_parse(doc, &tree);
    rc = rc ? rc : sprig__jview_map(jv, tree, &e);
    rc = rc ? rc : sprig__emitter_sorted(&e, out);
    sprig__json_free(tree);
    sprig__emitter_free(&e);
    return rc;
}

static int
by_scan(const sprig__jview *jv, sprig_bytes doc, sprig_buf *out)
{
    sprig__jscan *s = NULL;
    sprig_emitter e = {{0}};
    int rc = sprig__jscan_new(&jv, 1, &s);
    if (rc || !s) {
        return -1000; /* no scanner for these paths: nothing to compare */
    }
    sprig__jnode *nodes = calloc(sprig__jscan_paths(s) + 1, sizeof *nodes);
    sprig__jscan_run(s, doc, nodes);
    rc = sprig__jscan_map(s, 0, nodes, &e);
    rc = rc ? rc : sprig__emitter_sorted(&e, out);
    free(nodes);
    sprig__emitter_free(&e);
    sprig__jscan_free(s);
    return rc;
}

static void
check(const sprig__jview *jv, sprig_bytes doc)
{
    sprig_buf a = {0}, b = {0};
    int ra = by_tree(jv, doc, &a), rb = by_scan(jv, doc, &b);
    if (rb != -1000 &&
        (ra != rb ||
         (ra == 0 && (a.len != b.len || memcmp(a.data, b.data, a.len))))) {
        abort();
    }
    if (ra == SPRIG_ETOOBIG &&
        sprig__jview_key_bound(jv, doc.len) <= SPRIG_KEY_MAX) {
        abort();
    }
    sprig_buf_clear(&a);
    sprig_buf_clear(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char key[256], value[256];
    const uint8_t *p = data, *end = data + size;
    if (!line(&p, end, key, sizeof key) ||
        !line(&p, end, value, sizeof value)) {
        return 0;
    }
    sprig_view_def def = {.name = "v",
                          .version = 1,
                          .json_key = key,
                          .json_value = *value ? value : NULL};
    sprig__jview *jv = NULL;
    if (sprig__json_paths_check("k", key, true) ||
        (*value && sprig__json_paths_check("v", value, false)) ||
        sprig__jview_new(&def, &jv)) {
        return 0;
    }
    check(jv, (sprig_bytes){p, (size_t)(end - p)});
    sprig__jview_free(jv);
    return 0;
}
