/*
 * http_upgrade.c -- the WebSocket upgrade handshake (RFC 6455, 4) without
 * I/O: parse a request (server) or response (client) with http-parser,
 * validate it, and build the answers.
 *
 * Design notes.  A parser goes MORE -> (UPGRADE | STATUS_PAGE | REFUSE)
 * exactly once; sprig__http_upgrade_feed() is the only function that moves
 * it.  The head is bounded (SPRIG__HTTP_HEAD_MAX, else 431); only the
 * headers the handshake needs are kept, each bounded, in the parser struct,
 * so parsing allocates nothing.  http-parser is told that every request
 * head is followed by "another protocol" (on_headers_complete returns 2),
 * so it stops right after the blank line and the caller's *used marks where
 * the WebSocket stream starts.  A client parsing a refusal keeps reading
 * the body (bounded) to report it as the reason.  Every string written
 * into an answer comes from here, never from the peer, except the text
 * body of a refusal, which only echoes the subprotocols offered (cut).
 */
#include "http_upgrade.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Body bytes of a refusal read before deciding anyway. */
#define BODY_READ_MAX 16384

/* ---- small string helpers ------------------------------------------------ */

/* Append at most what fits into dst[cap] (keeping a NUL); note overflow. */
static void
append_capped(char *dst, size_t *len, size_t cap, const char *src, size_t n,
              bool *overflow)
{
    size_t room = cap - 1 - *len;
    if (n > room) {
        n = room;
        *overflow = true;
    }
    memcpy(dst + *len, src, n);
    *len += n;
    dst[*len] = '\0';
}

/* Does the comma-separated token list `list` hold `tok` (case-blind)? */
static bool
token_list_has(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        const char *s = p;
        while (*p && *p != ',') {
            p++;
        }
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0) {
            return true;
        }
    }
    return false;
}

/* A Sec-WebSocket-Key: base64 of 16 bytes, i.e. 22 characters and "==". */
static bool
key_well_formed(const char *k)
{
    if (strlen(k) != 24 || k[22] != '=' || k[23] != '=') {
        return false;
    }
    for (int i = 0; i < 22; i++) {
        if (!isalnum((unsigned char)k[i]) && k[i] != '+' && k[i] != '/') {
            return false;
        }
    }
    return true;
}

/* Replace control characters with spaces and trim the ends, in place. */
static void
sanitize_text(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            s[i] = ' ';
        }
    }
    while (n > 0 && s[n - 1] == ' ') {
        s[--n] = '\0';
    }
    size_t lead = strspn(s, " ");
    memmove(s, s + lead, n - lead + 1);
}

static void refuse(sprig__http_upgrade *u, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Decide: refuse with `status` and a formatted reason. */
static void
refuse(sprig__http_upgrade *u, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->reason, sizeof u->reason, fmt, ap);
    va_end(ap);
    u->status = status;
    u->verdict = SPRIG__HTTP_REFUSE;
}

/* ---- headers ------------------------------------------------------------- */

/* Sec-Fetch-Site / -Mode / -Dest (lower case, empty when too long). */
static void
header_fetch(sprig__http_upgrade *u, const char *which, const char *v)
{
    char *dst = !strcasecmp(which, "site")   ? u->fetch_site
                : !strcasecmp(which, "mode") ? u->fetch_mode
                : !strcasecmp(which, "dest") ? u->fetch_dest
                                             : NULL;
    size_t n = strlen(v);
    if (!dst) {
        return;
    }
    dst[0] = '\0';
    if (n >= sizeof u->fetch_site) {
        return;
    }
    for (size_t i = 0; i <= n; i++) {
        dst[i] = (char)tolower((unsigned char)v[i]);
    }
}

static void
header_request(sprig__http_upgrade *u, const char *name, const char *v)
{
    if (!strcasecmp(name, "host")) {
        u->flags |= SPRIG__HF_HOST;
        snprintf(u->host, sizeof u->host, "%.127s", v);
    } else if (!strcasecmp(name, "origin")) {
        u->origin_long = u->has_origin || strlen(v) >= sizeof u->origin;
        u->has_origin = true;
        snprintf(u->origin, sizeof u->origin, "%.127s", v);
    } else if (!strcasecmp(name, "sec-websocket-version")) {
        u->flags |= SPRIG__HF_VERSION;
        if (!strcmp(v, "13")) {
            u->flags |= SPRIG__HF_VERSION_13;
        }
    } else if (!strcasecmp(name, "sec-websocket-key")) {
        if ((u->flags & SPRIG__HF_KEY) || !key_well_formed(v)) {
            u->flags |= SPRIG__HF_KEY_BAD;
        } else {
            u->flags |= SPRIG__HF_KEY;
            snprintf(u->key, sizeof u->key, "%.31s", v);
        }
    } else if (!strcasecmp(name, "if-none-match")) {
        snprintf(u->if_none_match, sizeof u->if_none_match, "%s",
                 u->value_long || strlen(v) >= sizeof u->if_none_match ? ""
                                                                       : v);
    } else if (!strncasecmp(name, "sec-fetch-", 10)) {
        header_fetch(u, name + 10, v);
    } else if (!strcasecmp(name, "sec-websocket-protocol")) {
        u->flags |= SPRIG__HF_PROTO_SEEN;
        if (u->subprotocol && token_list_has(v, u->subprotocol)) {
            u->flags |= SPRIG__HF_PROTO_OK;
            u->chosen = u->subprotocol;
        } else if (u->token_form[0] && token_list_has(v, u->token_form)) {
            u->flags |= SPRIG__HF_PROTO_OK;
            u->chosen = u->token_form;
        }
        if (!u->offered[0]) {
            snprintf(u->offered, sizeof u->offered, "%.63s", v);
        }
    }
}

static void
header_response(sprig__http_upgrade *u, const char *name, const char *v)
{
    if (!strcasecmp(name, "sec-websocket-accept")) {
        if (!strcmp(v, u->want_accept)) {
            u->flags |= SPRIG__HF_ACCEPT_OK;
        }
    } else if (!strcasecmp(name, "sec-websocket-protocol")) {
        if (u->flags & SPRIG__HF_PROTO_SEEN) {
            u->flags |= SPRIG__HF_PROTO_BAD; /* chosen twice */
        }
        u->flags |= SPRIG__HF_PROTO_SEEN;
        if (u->subprotocol && !strcmp(v, u->subprotocol)) {
            u->flags |= SPRIG__HF_PROTO_OK;
        }
    }
}

/* One complete header (name in u->field, value in u->value). */
static void
header_done(sprig__http_upgrade *u)
{
    sanitize_text(u->value);
    const char *name = u->field;
    bool wanted =
        !strcasecmp(name, "upgrade") || !strcasecmp(name, "connection") ||
        !strcasecmp(name, "origin") || !strncasecmp(name, "sec-websocket-", 14);
    if (u->field_long) {
        return; /* longer than any header the handshake reads */
    }
    if (wanted && u->value_long) {
        u->flags |= SPRIG__HF_TOO_LONG;
        return;
    }
    if (!strcasecmp(name, "upgrade")) {
        u->flags |= SPRIG__HF_UPGRADE_ANY;
        if (token_list_has(u->value, "websocket")) {
            u->flags |= SPRIG__HF_UPGRADE_WS;
        }
    } else if (!strcasecmp(name, "connection")) {
        if (token_list_has(u->value, "upgrade")) {
            u->flags |= SPRIG__HF_CONN_UPGRADE;
        }
    } else if (u->response) {
        header_response(u, name, u->value);
    } else {
        header_request(u, name, u->value);
    }
}

/* ---- decisions ----------------------------------------------------------- */

static bool origin_allowed(const sprig__http_upgrade *u);

/* A page of another site loading this one other than by navigating to it
 * (a script, a fetch, a frame), without an Origin allowed to do so?
 * Browsers send Sec-Fetch-Site on every request; a no-cors load (a
 * <script src> of another site) sends no Origin, so only it tells. */
static bool
cross_site_load(const sprig__http_upgrade *u)
{
    const char *site = u->fetch_site;
    if (strcmp(site, "cross-site") && strcmp(site, "same-site")) {
        return false; /* same-origin, none (typed in), or not a browser */
    }
    if (!strcmp(u->fetch_mode, "navigate") &&
        (!strcmp(u->fetch_dest, "document") || !u->fetch_dest[0])) {
        return false; /* a link to the page, in its own window */
    }
    return !u->has_origin; /* an Origin present passed origin_allowed */
}

static void
decide_request_plain(sprig__http_upgrade *u)
{
    unsigned m = u->parser.method;
    if (m != HTTP_GET && m != HTTP_HEAD) {
        refuse(u, 405,
               "method %s not allowed: Sprig answers GET (its pages) and "
               "WebSocket upgrades",
               http_method_str((enum http_method)m));
    } else if (!origin_allowed(u)) {
        refuse(u, 403, "origin %.100s may not read this server's pages",
               u->origin);
    } else if (cross_site_load(u)) {
        refuse(u, 403,
               "another site's page may not load this server's pages "
               "(Sec-Fetch-Site %s, mode %.15s, destination %.15s)",
               u->fetch_site, u->fetch_mode[0] ? u->fetch_mode : "none",
               u->fetch_dest[0] ? u->fetch_dest : "none");
    } else {
        u->status = 200;
        u->verdict = SPRIG__HTTP_STATUS_PAGE;
    }
}

/* May a browser page of origin u->origin drive this server? */
static bool
origin_allowed(const sprig__http_upgrade *u)
{
    if (!u->check_origin || !u->has_origin) {
        return true; /* not a browser (browsers always send Origin) */
    }
    if (u->origin_long) {
        return false; /* twice, or longer than any origin allowed */
    }
    const char *o = u->origin;
    size_t skip = !strncmp(o, "http://", 7)    ? 7
                  : !strncmp(o, "https://", 8) ? 8
                                               : 0;
    if (skip && u->host[0] && !strcasecmp(o + skip, u->host)) {
        return true; /* the server's own origin */
    }
    for (const char *const *a = u->allowed_origins; a && *a; a++) {
        if (!strcmp(*a, "*") || !strcasecmp(*a, o)) {
            return true;
        }
    }
    return false;
}

static void
decide_request(sprig__http_upgrade *u)
{
    unsigned f = u->flags;
    if (f & SPRIG__HF_TOO_LONG) {
        refuse(u, 431, "a header is longer than %d bytes",
               SPRIG__HTTP_VALUE_MAX);
    } else if (u->path_long) {
        refuse(u, 414, "request path longer than %d bytes",
               SPRIG__HTTP_PATH_MAX);
    } else if (!(f & SPRIG__HF_UPGRADE_ANY)) {
        decide_request_plain(u);
    } else if (u->parser.method != HTTP_GET) {
        refuse(u, 405, "a WebSocket upgrade must use GET, not %s",
               http_method_str((enum http_method)u->parser.method));
    } else if (u->parser.http_major < 1 ||
               (u->parser.http_major == 1 && u->parser.http_minor < 1)) {
        refuse(u, 400, "a WebSocket upgrade needs HTTP/1.1");
    } else if (!(f & SPRIG__HF_UPGRADE_WS)) {
        refuse(u, 400, "the Upgrade header must name websocket");
    } else if (!(f & SPRIG__HF_CONN_UPGRADE)) {
        refuse(u, 400, "the Connection header must include Upgrade");
    } else if (!(f & SPRIG__HF_HOST)) {
        refuse(u, 400, "the Host header is missing");
    } else if (!(f & SPRIG__HF_VERSION_13)) {
        refuse(u, 426, "Sec-WebSocket-Version 13 is required");
    } else if (!(f & SPRIG__HF_KEY) || (f & SPRIG__HF_KEY_BAD)) {
        refuse(u, 400,
               "Sec-WebSocket-Key is missing or malformed "
               "(once, 24 base64 characters)");
    } else if (u->subprotocol && !(f & SPRIG__HF_PROTO_OK)) {
        refuse(u, 400, "subprotocol %s is required; offered: %s",
               u->subprotocol, u->offered[0] ? u->offered : "none");
    } else if (!origin_allowed(u)) {
        refuse(u, 403, "origin %.100s is not allowed", u->origin);
    } else {
        u->status = 101;
        u->verdict = SPRIG__HTTP_UPGRADE;
    }
}

/* Client, after a 101 head. */
static void
decide_101(sprig__http_upgrade *u)
{
    unsigned f = u->flags;
    if (!(f & SPRIG__HF_UPGRADE_WS)) {
        refuse(u, 1002, "the server's 101 lacks Upgrade: websocket");
    } else if (!(f & SPRIG__HF_CONN_UPGRADE)) {
        refuse(u, 1002, "the server's 101 lacks Connection: Upgrade");
    } else if (!(f & SPRIG__HF_ACCEPT_OK)) {
        refuse(u, 1002,
               "the server's Sec-WebSocket-Accept does not match "
               "the key sent");
    } else if (f & SPRIG__HF_PROTO_BAD) {
        refuse(u, 1002, "the server chose more than one subprotocol");
    } else if (u->subprotocol && !(f & SPRIG__HF_PROTO_OK)) {
        refuse(u, 1002, "the server did not choose subprotocol %s",
               u->subprotocol);
    } else if (!u->subprotocol && (f & SPRIG__HF_PROTO_SEEN)) {
        refuse(u, 1002, "the server chose a subprotocol none was offered");
    } else {
        u->status = 101;
        u->verdict = SPRIG__HTTP_UPGRADE;
    }
}

/* Client, after a refusal's body (or as much of it as was read). */
static void
decide_refused(sprig__http_upgrade *u)
{
    int st = u->parser.status_code;
    sanitize_text(u->reason);
    if (!u->reason[0]) {
        snprintf(u->reason, sizeof u->reason, "HTTP %d %s", st,
                 sprig__http_status_text(st));
    }
    u->status = st;
    u->verdict = SPRIG__HTTP_REFUSE;
}

/* ---- http-parser callbacks ----------------------------------------------- */

static int
on_url(http_parser *p, const char *at, size_t len)
{
    sprig__http_upgrade *u = p->data;
    append_capped(u->path, &u->path_len, sizeof u->path, at, len,
                  &u->path_long);
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    sprig__http_upgrade *u = p->data;
    if (u->last == 2) {
        header_done(u);
    }
    if (u->last != 1) {
        u->field_len = 0;
        u->field[0] = '\0';
        u->field_long = false;
    }
    append_capped(u->field, &u->field_len, sizeof u->field, at, len,
                  &u->field_long);
    u->last = 1;
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    sprig__http_upgrade *u = p->data;
    if (u->last != 2) {
        u->value_len = 0;
        u->value[0] = '\0';
        u->value_long = false;
    }
    append_capped(u->value, &u->value_len, sizeof u->value, at, len,
                  &u->value_long);
    u->last = 2;
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    sprig__http_upgrade *u = p->data;
    if (u->last == 2) {
        header_done(u);
    }
    u->last = 0;
    u->head_done = true;
    if (!u->response) {
        decide_request(u);
        return 2; /* whatever follows is not HTTP to this parser */
    }
    if (p->status_code == 101) {
        decide_101(u);
        return 2;
    }
    return 0; /* read the refusal's body as the reason */
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    sprig__http_upgrade *u = p->data;
    bool full = false;
    append_capped(u->reason, &u->body_len, sizeof u->reason, at, len, &full);
    (void)full;
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    sprig__http_upgrade *u = p->data;
    u->msg_done = true;
    if (u->response && u->verdict == SPRIG__HTTP_MORE) {
        decide_refused(u);
        http_parser_pause(p, 1); /* stop at the end of the refusal */
    }
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- feeding ------------------------------------------------------------- */

/* The other spelling of a subprotocol: "sprig/1" <-> "sprig.v1" (each
 * '/' written ".v", or each ".v" written '/'); empty when `s` has neither
 * or the result does not fit. */
static void
token_form(const char *s, char *out, size_t n)
{
    size_t j = 0;
    out[0] = '\0';
    if (!s || (!strchr(s, '/') && !strstr(s, ".v"))) {
        return;
    }
    bool to_token = strchr(s, '/') != NULL;
    for (; *s && j + 3 < n; s++) {
        if (to_token && *s == '/') {
            out[j++] = '.';
            out[j++] = 'v';
        } else if (!to_token && s[0] == '.' && s[1] == 'v') {
            out[j++] = '/';
            s++;
        } else {
            out[j++] = *s;
        }
    }
    out[*s ? 0 : j] = '\0';
}

void
sprig__http_upgrade_init(sprig__http_upgrade *u, bool response,
                         const char *subprotocol, const char *client_key)
{
    memset(u, 0, sizeof *u);
    http_parser_init(&u->parser, response ? HTTP_RESPONSE : HTTP_REQUEST);
    u->parser.data = u;
    u->response = response;
    u->subprotocol = subprotocol;
    token_form(subprotocol, u->token_form, sizeof u->token_form);
    if (response && client_key &&
        sprig__ws_accept_key(client_key, u->want_accept) != SPRIG_OK) {
        u->want_accept[0] = '\0'; /* nothing will match */
    }
}

/* The peer closed its side with the verdict still open. */
static int
feed_eof(sprig__http_upgrade *u)
{
    if (u->response && u->head_done) {
        /* a body delimited by the end of the stream */
        http_parser_execute(&u->parser, &parser_settings, NULL, 0);
        if (u->verdict == SPRIG__HTTP_MORE) {
            decide_refused(u);
        }
    } else if (u->response) {
        refuse(u, 1006,
               "the connection closed during the upgrade "
               "handshake");
    } else {
        refuse(u, 400, "the request ended before its head was complete");
    }
    return u->verdict;
}

/* An error http-parser reported for these bytes. */
static void
feed_error(sprig__http_upgrade *u, enum http_errno e)
{
    if (u->response) {
        refuse(u, 1002, "malformed HTTP response from the server: %s",
               http_errno_description(e));
    } else {
        refuse(u, 400, "malformed HTTP request: %s", http_errno_description(e));
    }
}

int
sprig__http_upgrade_feed(sprig__http_upgrade *u, const uint8_t *data,
                         size_t len, size_t *used)
{
    *used = 0;
    if (u->verdict != SPRIG__HTTP_MORE) {
        return u->verdict;
    }
    if (len == 0) {
        return feed_eof(u);
    }
    size_t n = len;
    if (!u->head_done && n > SPRIG__HTTP_HEAD_MAX - u->head_len) {
        n = SPRIG__HTTP_HEAD_MAX - u->head_len;
    }
    size_t got = http_parser_execute(&u->parser, &parser_settings,
                                     (const char *)data, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&u->parser);
    if (!u->head_done) {
        u->head_len += got;
    } else if (u->response && u->verdict == SPRIG__HTTP_MORE) {
        u->head_len += got; /* the refusal's body counts too */
    }
    *used = got;
    if (u->verdict != SPRIG__HTTP_MORE) {
        return u->verdict;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        feed_error(u, e);
    } else if (!u->head_done && u->head_len >= SPRIG__HTTP_HEAD_MAX) {
        refuse(u, u->response ? 1002 : 431, "%s head over %d bytes",
               u->response ? "response" : "request", SPRIG__HTTP_HEAD_MAX);
    } else if (u->head_done && u->head_len >= BODY_READ_MAX) {
        decide_refused(u);
    }
    return u->verdict;
}

/* ---- builders ------------------------------------------------------------ */

static int buf_printf(sprig_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
buf_printf(sprig_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return sprig__err(SPRIG_EINVAL, "cannot format an HTTP line");
    }
    int rc = sprig__buf_reserve(b, (size_t)n + 1);
    if (rc) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SPRIG_OK;
}

const char *
sprig__http_status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 304: return "Not Modified";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* Headers that go with some refusals. */
static const char *
refusal_extra(int status)
{
    switch (status) {
    case 405: return "Allow: GET, HEAD\r\n";
    case 426: return "Sec-WebSocket-Version: 13\r\n";
    case 503: return "Retry-After: 1\r\n";
    default: return "";
    }
}

int
sprig__http_refusal(sprig_buf *out, int status, const char *reason)
{
    return buf_printf(out,
                      "HTTP/1.1 %d %s\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: %zu\r\n"
                      "Connection: close\r\n"
                      "%s\r\n%s\n",
                      status, sprig__http_status_text(status),
                      strlen(reason) + 1, refusal_extra(status), reason);
}

static int
answer_upgrade(const sprig__http_upgrade *u, sprig_buf *out)
{
    char accept[32];
    int rc = sprig__ws_accept_key(u->key, accept);
    if (rc) {
        return rc;
    }
    rc = buf_printf(out,
                    "HTTP/1.1 101 Switching Protocols\r\n"
                    "Upgrade: websocket\r\n"
                    "Connection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n",
                    accept);
    if (!rc && u->subprotocol) {
        rc = buf_printf(out, "Sec-WebSocket-Protocol: %s\r\n",
                        u->chosen ? u->chosen : u->subprotocol);
    }
    return rc ? rc : buf_printf(out, "\r\n");
}

static int
answer_status_page(const sprig__http_upgrade *u, const char *body,
                   sprig_buf *out)
{
    if (!body) {
        return sprig__http_refusal(out, 426,
                                   "this is a Sprig WebSocket endpoint: "
                                   "connect with a WebSocket client");
    }
    bool head = u->parser.method == HTTP_HEAD;
    return buf_printf(out,
                      "HTTP/1.1 200 OK\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: %zu\r\n"
                      "Cache-Control: no-store\r\n"
                      "Connection: close\r\n\r\n%s",
                      strlen(body), head ? "" : body);
}

/* ---- plain pages (issue 15) ---------------------------------------------- */

/* The next entity tag of an If-None-Match list, without W/ and quotes
 * kept: *s advances past it; false at the end. */
static bool
next_etag(const char **s, const char **tag, size_t *n)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t' || *p == ',') {
        p++;
    }
    if (!*p) {
        return false;
    }
    if (!strncmp(p, "W/", 2)) {
        p += 2;
    }
    const char *start = p;
    if (*p == '"') {
        const char *q = strchr(p + 1, '"');
        p = q ? q + 1 : p + strlen(p);
    } else {
        p += strcspn(p, ", \t");
    }
    *tag = start;
    *n = (size_t)(p - start);
    *s = p;
    return true;
}

bool
sprig__http_etag_match(const char *inm, const char *etag)
{
    const char *tag;
    size_t n, el = etag ? strlen(etag) : 0;
    if (!inm || !el) {
        return false;
    }
    while (next_etag(&inm, &tag, &n)) {
        if ((n == 1 && *tag == '*') || (n == el && !memcmp(tag, etag, n))) {
            return true;
        }
    }
    return false;
}

/* Headers every page answer carries. */
static int
page_headers(sprig_buf *out, const char *csp)
{
    return buf_printf(out,
                      "Content-Security-Policy: %s\r\n"
                      "X-Content-Type-Options: nosniff\r\n"
                      "X-Frame-Options: DENY\r\n"
                      "Referrer-Policy: no-referrer\r\n"
                      "Cross-Origin-Resource-Policy: same-origin\r\n"
                      "Cross-Origin-Opener-Policy: same-origin\r\n"
                      "Connection: close\r\n\r\n",
                      csp ? csp : "default-src 'none'; frame-ancestors 'none'");
}

int
sprig__http_reply_write(const sprig__http_upgrade *u,
                        const sprig__http_reply *rep, sprig_buf *out)
{
    static const char not_found[] = "no such page on this Sprig server\n",
                      failed[] = "this page could not be made: see the "
                                 "server's log\n";
    bool head = u->parser.method == HTTP_HEAD;
    int st = rep->status ? rep->status : 404;
    const uint8_t *body = rep->body ? rep->body : rep->owned.data;
    size_t len = rep->body ? rep->len : rep->owned.len;
    const char *type =
        rep->content_type ? rep->content_type : "text/plain; charset=utf-8";
    if (st != 200) {
        st = st == 404 ? 404 : 500;
        body = (const uint8_t *)(st == 404 ? not_found : failed);
        len = strlen((const char *)body);
        type = "text/plain; charset=utf-8";
    } else if (sprig__http_etag_match(u->if_none_match, rep->etag)) {
        st = 304;
    }
    int rc =
        buf_printf(out, "HTTP/1.1 %d %s\r\n", st, sprig__http_status_text(st));
    if (!rc && st != 304) {
        rc = buf_printf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                        type, len);
    }
    if (!rc && rep->etag && st != 404 && st != 500) {
        rc = buf_printf(out, "ETag: %s\r\nCache-Control: no-cache\r\n",
                        rep->etag);
    } else if (!rc) {
        rc = buf_printf(out, "Cache-Control: no-store\r\n");
    }
    rc = rc ? rc : page_headers(out, st == 200 || st == 304 ? rep->csp : NULL);
    if (!rc && !head && st != 304 && len) {
        rc = sprig_buf_append(out, body, len);
    }
    return rc;
}

int
sprig__http_answer(const sprig__http_upgrade *u, const char *status_body,
                   sprig_buf *out)
{
    switch (u->verdict) {
    case SPRIG__HTTP_UPGRADE: return answer_upgrade(u, out);
    case SPRIG__HTTP_STATUS_PAGE:
        return answer_status_page(u, status_body, out);
    case SPRIG__HTTP_REFUSE:
        return sprig__http_refusal(out, u->status, u->reason);
    default: return sprig__err(SPRIG_EINVAL, "the request is not parsed yet");
    }
}

int
sprig__http_request(sprig_buf *out, const char *host, const char *path,
                    const char *key, const char *subprotocol)
{
    int rc = buf_printf(out,
                        "GET %s HTTP/1.1\r\n"
                        "Host: %s\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n",
                        path && *path ? path : "/", host, key);
    if (!rc && subprotocol) {
        rc = buf_printf(out, "Sec-WebSocket-Protocol: %s\r\n", subprotocol);
    }
    return rc ? rc : buf_printf(out, "\r\n");
}

/* ---- keys ---------------------------------------------------------------- */

static int
base64(const uint8_t *data, unsigned n, char out[32])
{
    gnutls_datum_t in = {(unsigned char *)data, n}, b64 = {NULL, 0};
    int g = gnutls_base64_encode2(&in, &b64);
    if (g < 0) {
        return sprig__err(SPRIG_ENOMEM, "base64: %s", gnutls_strerror(g));
    }
    if (b64.size >= 32) {
        gnutls_free(b64.data);
        return sprig__err(SPRIG_EINVAL, "base64 result too long");
    }
    memcpy(out, b64.data, b64.size);
    out[b64.size] = '\0';
    gnutls_free(b64.data);
    return SPRIG_OK;
}

int
sprig__ws_accept_key(const char *key, char out[32])
{
    char buf[96];
    uint8_t sha[20];
    int n = snprintf(buf, sizeof buf, "%s%s", key, ws_guid);
    if (n < 0 || (size_t)n >= sizeof buf) {
        return sprig__err(SPRIG_EINVAL, "Sec-WebSocket-Key too long");
    }
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, buf, (size_t)n, sha) < 0) {
        return sprig__err(SPRIG_EINVAL, "SHA-1 unavailable");
    }
    return base64(sha, sizeof sha, out);
}

int
sprig__ws_new_key(char out[32])
{
    uint8_t nonce[16];
    if (gnutls_rnd(GNUTLS_RND_NONCE, nonce, sizeof nonce) < 0) {
        return sprig__err(SPRIG_EIO, "no random bytes for a WebSocket key");
    }
    return base64(nonce, sizeof nonce, out);
}
