/*
 * json_int.h -- what json_view.c (declarative views over a jansson tree,
 * key encoding, built-in reduces) shares with json_scan.c (the one-pass
 * scanner): compiled paths, the fixed key buffer and the helpers that
 * write key elements and value texts, so both paths emit the same bytes.
 * Private to those two files.
 */
#ifndef SPRIG_CORE_JSON_INT_H
#define SPRIG_CORE_JSON_INT_H

#include "view.h"

#include <jansson.h>

typedef struct jseg {
    const char *name;
    bool is_index;
    size_t index;
} jseg;

typedef struct jpath {
    jseg *segs;
    size_t n;
} jpath;

struct sprig__jview {
    jpath *keys;
    size_t n_keys;
    bool has_value;
    jpath value;
    char *text; /* the paths' text, cut into segment names */
    jseg *segs;
};

/* A tuple key being written into fixed storage. */
typedef struct kbuf {
    uint8_t b[SPRIG_KEY_MAX];
    size_t n;
    bool over;
} kbuf;

/* Append bytes to a key; past SPRIG_KEY_MAX it is marked over. */
void sprig__kput(kbuf *k, const void *p, size_t n);
/* A number element: tag and 8 bytes. */
void sprig__kput_num(kbuf *k, uint8_t tag, const uint8_t v8[8]);
/* The element of a JSON integer: a float when the double is exact. */
void sprig__kput_int(kbuf *k, int64_t v);
/* A string element of n bytes (NUL escaped). */
void sprig__kput_str(kbuf *k, const char *s, size_t n);
/* The shortest text that reads back as `d`. */
void sprig__json_fmt_double(double d, char out[40]);
/* The value text of node `v` (NULL: null) appended to `out`.  Errors:
 * SPRIG_ENOMEM. */
int sprig__json_value_text(json_t *v, sprig_buf *out);
/* Emit (key, value); SPRIG_ETOOBIG when the key went over. */
int sprig__json_emit_key(sprig_emitter *e, const kbuf *k, const sprig_buf *val);

#endif /* SPRIG_CORE_JSON_INT_H */
