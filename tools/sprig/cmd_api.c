/*
 * cmd_api.c -- `sprig --url URL apis` and `sprig --url URL call NAME
 * [JSON|-]` (issue 12): the APIs a running server serves to this
 * connection (server.apis), and calling one of its custom APIs.  A call's
 * request is JSON turned into MessagePack (the request's bytes), and the
 * answer's bytes are MessagePack printed as JSON; --raw sends the text as
 * it is and prints the answer as a JSON string.  Log in with --user as
 * for every command.  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char apis_usage[] =
    "usage: sprig --url URL [--user U] apis\n"
    "\n"
    "Print the APIs the server serves to this connection as a JSON array\n"
    "of {\"name\",\"action\",\"resource\",\"summary\",\"custom\",\"write\"}:\n"
    "every built-in one, and the custom APIs the caller may call\n"
    "(\"resource\": its pattern, {field} for a part the request gives).\n";

static const char call_usage[] =
    "usage: sprig --url URL [--user U] call NAME [JSON|-] [--raw]\n"
    "\n"
    "Call the server's custom API NAME with JSON (or stdin: -; none: an\n"
    "empty request) encoded as MessagePack, and print its answer "
    "(MessagePack)\n"
    "as JSON: null for an empty answer, a JSON string when the answer is\n"
    "not one MessagePack value.  --raw: send the text as it is and print the\n"
    "answer as a JSON string.  An error the handler answers exits 1 (an\n"
    "application code) or as its kind (2 usage, 3 not found, 6 access).\n";

/* Is --url a server (not a local storage spelled as a URL)? */
static bool
is_server(const cli *c)
{
    return c->url && strstr(c->url, "://") && strncmp(c->url, "file:", 5);
}

static int
open_server(cli *c, const char *usage)
{
    if (!is_server(c)) {
        return cli_usage(usage, "this command talks to a running server: "
                                "give --url ws://HOST:PORT (or wss, quic)");
    }
    return cli_open(c, false);
}

/* ---- apis ---------------------------------------------------------------- */

int
cli_cmd_apis(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, apis_usage, 0, 0, &a);
    rc = rc == CLI_CONTINUE ? open_server(c, apis_usage) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_api_info *l;
    size_t n;
    int src = sprig_client_apis(c->st, &l, &n);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_raw(&w, "[");
    for (size_t i = 0; i < n; i++) {
        jw_raw(&w, i ? ",{" : "{");
        jw_key(&w, "name");
        jw_cstr(&w, l[i].name);
        jw_raw(&w, ",");
        jw_key(&w, "action");
        jw_cstr(&w, l[i].action);
        jw_raw(&w, ",");
        jw_key(&w, "resource");
        jw_cstr(&w, l[i].resource);
        jw_raw(&w, ",");
        jw_key(&w, "summary");
        jw_cstr(&w, l[i].summary);
        jw_raw(&w, l[i].custom ? ",\"custom\":true" : ",\"custom\":false");
        jw_raw(&w, l[i].write ? ",\"write\":true}" : ",\"write\":false}");
    }
    jw_raw(&w, "]");
    sprig_api_info_free(l, n);
    return jw_print(&w);
}

/* ---- JSON -> MessagePack ------------------------------------------------- */

static void
mp_put(sprig_buf *b, const void *p, size_t n, bool *bad)
{
    *bad |= sprig_buf_append(b, p, n) != 0;
}

/* A MessagePack head: `fix` (fixed form when n < limit), else the 16/32-bit
 * forms `b16`/`b32`. */
static void
mp_head(sprig_buf *b, uint8_t fix, size_t limit, uint8_t b16, uint8_t b32,
        size_t n, bool *bad)
{
    uint8_t h[5];
    if (n < limit) {
        h[0] = (uint8_t)(fix | n);
        mp_put(b, h, 1, bad);
    } else if (n <= 0xffff) {
        h[0] = b16;
        h[1] = (uint8_t)(n >> 8);
        h[2] = (uint8_t)n;
        mp_put(b, h, 3, bad);
    } else {
        h[0] = b32;
        for (int i = 0; i < 4; i++) {
            h[1 + i] = (uint8_t)(n >> (24 - 8 * i));
        }
        mp_put(b, h, 5, bad);
    }
}

static void
mp_u64(sprig_buf *b, uint8_t tag, uint64_t v, bool *bad)
{
    uint8_t h[9] = {tag};
    for (int i = 0; i < 8; i++) {
        h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    }
    mp_put(b, h, 9, bad);
}

static void
mp_int(sprig_buf *b, json_int_t v, bool *bad)
{
    if (v >= 0 && v < 128) {
        uint8_t h = (uint8_t)v;
        mp_put(b, &h, 1, bad);
    } else if (v < 0 && v >= -32) {
        uint8_t h = (uint8_t)(int8_t)v;
        mp_put(b, &h, 1, bad);
    } else {
        mp_u64(b, v >= 0 ? 0xcf : 0xd3, (uint64_t)v, bad);
    }
}

static void
to_mp(sprig_buf *b, json_t *j, bool *bad)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        mp_head(b, 0x80, 16, 0xde, 0xdf, json_object_size(j), bad);
        json_object_foreach(j, k, v)
        {
            mp_head(b, 0xa0, 32, 0xda, 0xdb, strlen(k), bad);
            mp_put(b, k, strlen(k), bad);
            to_mp(b, v, bad);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        mp_head(b, 0x90, 16, 0xdc, 0xdd, json_array_size(j), bad);
        json_array_foreach(j, i, v)
        {
            to_mp(b, v, bad);
        }
        break;
    }
    case JSON_STRING:
        mp_head(b, 0xa0, 32, 0xda, 0xdb, json_string_length(j), bad);
        mp_put(b, json_string_value(j), json_string_length(j), bad);
        break;
    case JSON_INTEGER: mp_int(b, json_integer_value(j), bad); break;
    case JSON_REAL: {
        double d = json_real_value(j);
        uint64_t u;
        memcpy(&u, &d, 8);
        mp_u64(b, 0xcb, u, bad);
        break;
    }
    case JSON_TRUE: mp_put(b, "\xc3", 1, bad); break;
    case JSON_FALSE: mp_put(b, "\xc2", 1, bad); break;
    default: mp_put(b, "\xc0", 1, bad); break;
    }
}

/* ---- MessagePack -> JSON ------------------------------------------------- */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static bool
take(rd *r, size_t n, const uint8_t **out)
{
    if ((size_t)(r->end - r->p) < n) {
        return false;
    }
    *out = r->p;
    r->p += n;
    return true;
}

static bool
be(rd *r, size_t n, uint64_t *v)
{
    const uint8_t *q;
    if (!take(r, n, &q)) {
        return false;
    }
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        *v = *v << 8 | q[i];
    }
    return true;
}

static json_t *from_mp(rd *r, int depth);

static json_t *
mp_seq(rd *r, uint64_t n, bool map, int depth)
{
    json_t *out = map ? json_object() : json_array();
    for (uint64_t i = 0; out && i < n; i++) {
        json_t *k = map ? from_mp(r, depth + 1) : NULL;
        json_t *v = (!map || k) ? from_mp(r, depth + 1) : NULL;
        bool ok = v && (!map || json_is_string(k));
        ok = ok && (map ? json_object_set_new(out, json_string_value(k), v)
                        : json_array_append_new(out, v)) == 0;
        json_decref(k);
        if (!ok) {
            json_decref(ok ? NULL : v);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *
mp_text(rd *r, uint64_t n)
{
    const uint8_t *q;
    return take(r, n, &q) ? json_stringn((const char *)q, n) : NULL;
}

/* The length of a str/bin/array/map of tag `t` (0: not one), then read. */
static json_t *
mp_sized(rd *r, uint8_t t, int depth)
{
    uint64_t n;
    static const struct {
        uint8_t tag, bytes, kind; /* kind 0 text, 1 array, 2 map */
    } forms[] = {{0xd9, 1, 0}, {0xda, 2, 0}, {0xdb, 4, 0}, {0xc4, 1, 0},
                 {0xc5, 2, 0}, {0xc6, 4, 0}, {0xdc, 2, 1}, {0xdd, 4, 1},
                 {0xde, 2, 2}, {0xdf, 4, 2}};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        if (forms[i].tag == t) {
            if (!be(r, forms[i].bytes, &n)) {
                return NULL;
            }
            return forms[i].kind == 0 ? mp_text(r, n)
                                      : mp_seq(r, n, forms[i].kind == 2, depth);
        }
    }
    return NULL;
}

static json_t *
from_mp(rd *r, int depth)
{
    const uint8_t *q;
    uint64_t v;
    if (depth > 64 || !take(r, 1, &q)) {
        return NULL;
    }
    uint8_t t = *q;
    if (t < 0x80 || t >= 0xe0) {
        return json_integer((int8_t)t);
    }
    if (t >= 0xa0 && t < 0xc0) {
        return mp_text(r, t & 31);
    }
    if (t >= 0x80 && t < 0xa0) {
        return mp_seq(r, t & 15, t < 0x90, depth);
    }
    switch (t) {
    case 0xc0: return json_null();
    case 0xc2: return json_false();
    case 0xc3: return json_true();
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (!be(r, (size_t)1 << (t - 0xcc), &v)) {
            return NULL;
        }
        return v > INT64_MAX ? json_real((double)v)
                             : json_integer((json_int_t)v);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        size_t n = (size_t)1 << (t - 0xd0);
        if (!be(r, n, &v)) {
            return NULL;
        }
        int64_t s = n == 8 ? (int64_t)v
                           : (int64_t)(v ^ (1ull << (8 * n - 1))) -
                                 (int64_t)(1ull << (8 * n - 1));
        return json_integer((json_int_t)s);
    }
    case 0xca:
    case 0xcb: {
        if (!be(r, t == 0xca ? 4 : 8, &v)) {
            return NULL;
        }
        float f;
        double d;
        uint32_t u = (uint32_t)v;
        memcpy(&f, &u, 4);
        memcpy(&d, &v, 8);
        return json_real(t == 0xca ? (double)f : d);
    }
    default: return mp_sized(r, t, depth);
    }
}

/* ---- call ---------------------------------------------------------------- */

/* The request's text: the argument, stdin ("-"), or none. */
static int
request_text(const cli_args *a, sprig_buf *out)
{
    if (a->n < 2) {
        return CLI_CONTINUE;
    }
    if (strcmp(a->pos[1], "-") != 0) {
        return sprig_buf_append(out, a->pos[1], strlen(a->pos[1]))
                   ? cli_fail(SPRIG_ENOMEM)
                   : CLI_CONTINUE;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (sprig_buf_append(out, chunk, n)) {
            return cli_fail(SPRIG_ENOMEM);
        }
    }
    return ferror(stdin) ? cli_err(SPRIG_EIO, "cannot read stdin")
                         : CLI_CONTINUE;
}

/* JSON text -> MessagePack in `out`; a usage error for bad JSON. */
static int
encode_request(sprig_bytes text, sprig_buf *out)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)text.data, text.len,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j) {
        return cli_usage(call_usage,
                         "the request is not JSON: %s (line %d, "
                         "column %d)",
                         e.text, e.line, e.column);
    }
    bool bad = false;
    to_mp(out, j, &bad);
    json_decref(j);
    return bad ? cli_fail(SPRIG_ENOMEM) : CLI_CONTINUE;
}

/* Print the answer: one MessagePack value as JSON, else a JSON string. */
static int
print_answer(sprig_bytes ans, bool raw)
{
    jw w = {0};
    rd r = {ans.data, ans.data + ans.len};
    json_t *j = raw || !ans.len ? NULL : from_mp(&r, 0);
    if (j && r.p == r.end) {
        char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        jw_raw(&w, s ? s : "null");
        free(s);
    } else if (!ans.len && !raw) {
        jw_raw(&w, "null");
    } else {
        jw_str(&w, ans);
    }
    json_decref(j);
    return jw_print(&w);
}

int
cli_cmd_call(cli *c, int argc, char **argv)
{
    cli_args a;
    bool raw = false;
    const cli_opt opts[] = {{"--raw", NULL, &raw}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, call_usage, 1, 2, &a);
    sprig_buf text = {0}, req = {0}, ans = {0};
    rc = rc == CLI_CONTINUE ? request_text(&a, &text) : rc;
    if (rc == CLI_CONTINUE && text.len && !raw) {
        rc = encode_request(sprig_buf_bytes(&text), &req);
    } else if (rc == CLI_CONTINUE && text.len) {
        req = text;
        memset(&text, 0, sizeof text);
    }
    rc = rc == CLI_CONTINUE ? open_server(c, call_usage) : rc;
    if (rc == CLI_CONTINUE) {
        int src =
            sprig_client_call_on(c->st, a.pos[0], req.data, req.len, &ans);
        rc = src ? cli_fail(src) : print_answer(sprig_buf_bytes(&ans), raw);
    }
    sprig_buf_clear(&text);
    sprig_buf_clear(&req);
    sprig_buf_clear(&ans);
    return rc;
}
