/*
 * http_upgrade.h -- the WebSocket upgrade handshake without I/O.
 *
 * Private to src/transport (and its tests and fuzzer).  A parser is fed the
 * bytes a socket delivered and says when the HTTP head is complete and what
 * to do with it; the builders write the requests and answers.  No sockets,
 * no clocks, no callbacks into the caller: it can be fuzzed alone.
 */
#ifndef SPRIG_HTTP_UPGRADE_H
#define SPRIG_HTTP_UPGRADE_H

#include "core/core.h"
#include "transport.h"

#include <http_parser.h>

/** Largest request or response head accepted (431 beyond). */
#define SPRIG__HTTP_HEAD_MAX 8192
/** Longest request path kept (414 beyond). */
#define SPRIG__HTTP_PATH_MAX 1024
/** Longest value kept of a header the handshake looks at. */
#define SPRIG__HTTP_VALUE_MAX 512
/** Longest refusal text kept (the reason body a client reports). */
#define SPRIG__HTTP_REASON_MAX 256

typedef enum sprig__http_verdict {
    SPRIG__HTTP_MORE = 0,    /* feed more bytes                           */
    SPRIG__HTTP_UPGRADE,     /* a valid upgrade (server) / accepted 101   */
    SPRIG__HTTP_STATUS_PAGE, /* server: GET or HEAD without an upgrade    */
    SPRIG__HTTP_REFUSE       /* `status` + `reason`: refuse / was refused */
} sprig__http_verdict;

/* Header flags collected while parsing. */
enum {
    SPRIG__HF_HOST = 1 << 0,
    SPRIG__HF_UPGRADE_ANY = 1 << 1, /* an Upgrade header at all     */
    SPRIG__HF_UPGRADE_WS = 1 << 2,  /* Upgrade names websocket       */
    SPRIG__HF_CONN_UPGRADE = 1 << 3,
    SPRIG__HF_VERSION = 1 << 4,    /* Sec-WebSocket-Version present */
    SPRIG__HF_VERSION_13 = 1 << 5, /* ... and it is 13              */
    SPRIG__HF_KEY = 1 << 6,        /* one well-formed key           */
    SPRIG__HF_KEY_BAD = 1 << 7,    /* malformed or repeated key     */
    SPRIG__HF_PROTO_SEEN = 1 << 8,
    SPRIG__HF_PROTO_OK = 1 << 9, /* our subprotocol offered/chosen */
    SPRIG__HF_PROTO_BAD = 1 << 10,
    SPRIG__HF_ACCEPT_OK = 1 << 11,
    SPRIG__HF_TOO_LONG = 1 << 12 /* a header we read was too long  */
};

/**
 * One handshake being parsed: a request on the server, a response on the
 * client.  Caller storage (about 3 KiB); no heap memory, nothing to free.
 */
typedef struct sprig__http_upgrade {
    http_parser parser;
    bool response; /* parsing a response (client side)  */
    bool head_done, msg_done;
    int verdict;             /* sprig__http_verdict once decided   */
    int status;              /* status to send / status received   */
    unsigned flags;          /* SPRIG__HF_*                        */
    size_t head_len;         /* bytes of the head consumed so far  */
    const char *subprotocol; /* borrowed; NULL: none wanted        */
    /* server: the other spelling of `subprotocol`, also accepted ("sprig.v1"
     * is the RFC 6455 token browsers and Node accept; "sprig/1" the older
     * spelling, not a token), and the one chosen */
    char token_form[40];
    const char *chosen;
    char want_accept[32]; /* client: the Sec-WebSocket-Accept due */
    char key[32];         /* server: Sec-WebSocket-Key          */
    char path[SPRIG__HTTP_PATH_MAX + 1];
    size_t path_len;
    bool path_long;
    char reason[SPRIG__HTTP_REASON_MAX]; /* refusal / body text   */
    size_t body_len;
    char offered[64]; /* server: the subprotocols offered, for the reason */
    /* the header being read */
    char field[32];
    size_t field_len;
    bool field_long;
    char value[SPRIG__HTTP_VALUE_MAX + 1];
    size_t value_len;
    bool value_long;
    int last; /* 0 nothing, 1 in a field name, 2 in a value */
    /* server: browser origins (issue 10).  `check_origin` set (by the
     * caller, after init): a request carrying Origin is refused (403)
     * unless it is the server's own ("http://" or "https://" + Host) or in
     * `allowed_origins` (NULL-terminated, borrowed; "*" allows any). */
    bool check_origin;
    const char *const *allowed_origins;
    char host[128];
    char origin[128];
    bool has_origin, origin_long;
    /* server, plain GET/HEAD (issue 15): If-None-Match (empty when absent
     * or too long) and the fetch metadata a browser sends (Sec-Fetch-Site,
     * -Mode, -Dest; empty when absent) */
    char if_none_match[256];
    char fetch_site[16], fetch_mode[16], fetch_dest[16];
} sprig__http_upgrade;

/**
 * Start parsing.  Server: `response` false, `client_key` NULL.  Client:
 * `response` true and `client_key` the Sec-WebSocket-Key it sent (the
 * expected accept value is derived from it).  `subprotocol` is borrowed
 * for the parser's life (NULL: none).
 */
void sprig__http_upgrade_init(sprig__http_upgrade *u, bool response,
                              const char *subprotocol, const char *client_key);

/**
 * Feed `len` bytes (0 means the peer closed its side).  Sets *used to the
 * bytes consumed: once the verdict is not SPRIG__HTTP_MORE, the bytes after
 * *used belong to the next protocol (the WebSocket stream).  Returns the
 * verdict; on SPRIG__HTTP_REFUSE `status` and `reason` say why (server:
 * the status to answer; client: the server's status and body, or 1002 for
 * a bad 101, or 1006 when the stream ended).  Feeding after a verdict
 * returns it again and consumes nothing.  Never fails otherwise.
 */
int sprig__http_upgrade_feed(sprig__http_upgrade *u, const uint8_t *data,
                             size_t len, size_t *used);

/**
 * Server: append to `out` the answer to a parsed request whose verdict is
 * not SPRIG__HTTP_MORE: the 101 for an upgrade, the status page (body
 * `status_body`; 426 when NULL) or the refusal.
 * Errors: SPRIG_ENOMEM, SPRIG_EINVAL (verdict still MORE).
 */
int sprig__http_answer(const sprig__http_upgrade *u, const char *status_body,
                       sprig_buf *out);

/**
 * Server: append the answer to a plain GET or HEAD (verdict
 * SPRIG__HTTP_STATUS_PAGE) that the owner described in `rep` (see
 * sprig__http_reply in transport.h): 200 with the body (none for HEAD),
 * 304 when the request's If-None-Match names rep->etag (or is "*"), or
 * 404 / 500 with a text body.  Every answer carries the security headers
 * and Connection: close.  Errors: SPRIG_ENOMEM.
 */
int sprig__http_reply_write(const sprig__http_upgrade *u,
                            const sprig__http_reply *rep, sprig_buf *out);

/** Does the If-None-Match list `inm` name `etag` (weak comparison: a W/
 *  prefix is ignored; "*" names any)?  False when either is empty. */
bool sprig__http_etag_match(const char *inm, const char *etag);

/** Append a complete refusal: status line, text body `reason` + "\n",
 *  Connection: close.  Errors: SPRIG_ENOMEM. */
int sprig__http_refusal(sprig_buf *out, int status, const char *reason);

/** Client: append the upgrade request for `path` on `host` (with the port
 *  when not the default).  Errors: SPRIG_ENOMEM. */
int sprig__http_request(sprig_buf *out, const char *host, const char *path,
                        const char *key, const char *subprotocol);

/** The Sec-WebSocket-Accept for `key`: base64(SHA-1(key + GUID)), 28
 *  characters.  Errors: SPRIG_EINVAL (key too long), SPRIG_ENOMEM. */
int sprig__ws_accept_key(const char *key, char out[32]);

/** A fresh random Sec-WebSocket-Key (24 characters).  Errors: SPRIG_EIO. */
int sprig__ws_new_key(char out[32]);

/** The reason phrase of an HTTP status ("Bad Request"). */
const char *sprig__http_status_text(int status);

#endif
