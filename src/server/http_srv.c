/*
 * http_srv.c -- what the server answers to plain HTTP GET and HEAD
 * requests on its WebSocket port (issue 15): the web console's embedded
 * files (src/console), "/health", and 404 for anything else.
 *
 * The transport has already refused what it must (other methods, origins
 * not allowed, another site's page loading these), and writes the answer
 * (headers, ETag/304, HEAD) from the sprig__http_reply filled here.  Runs
 * on the loop thread, for every such request; nothing here blocks.
 */
#include "server_int.h"

#include "console/console.h"

#include <inttypes.h>
#include <stdio.h>

/* "/health": who answers, since when, for how many connections. */
static int
health(sprig_server *srv, sprig__http_reply *rep)
{
    size_t conns = 0;
    sprig_server_connections(srv, NULL, 0, &conns);
    uint64_t up = (uv_hrtime() - srv->started_ns) / 1000000000u;
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"name\":\"sprig\",\"version\":\"%s\","
                     "\"protocol\":\"%s\",\"uptime_s\":%" PRIu64 ","
                     "\"connections\":%zu,\"console\":%s}\n",
                     SPRIG_VERSION_STRING, SPRIG_SUBPROTOCOL, up, conns,
                     srv->opts.no_console ? "false" : "true");
    int rc = sprig_buf_append(&rep->owned, body, (size_t)n);
    rep->status = 200;
    rep->content_type = "application/json";
    return rc;
}

/* "/" without the console: the status text plain GETs got before it. */
static void
status_text(sprig__http_reply *rep)
{
    static const char text[] =
        "Sprig " SPRIG_VERSION_STRING ": ok\nprotocol " SPRIG_SUBPROTOCOL "\n";
    rep->status = 200;
    rep->body = (const uint8_t *)text;
    rep->len = sizeof text - 1;
}

int
sprig__server_http_get(void *udata, const sprig__http_get_req *req,
                       sprig__http_reply *rep)
{
    sprig_server *srv = udata;
    if (!strcmp(req->path, "/health")) {
        return health(srv, rep);
    }
    if (srv->opts.no_console) {
        if (!strcmp(req->path, "/")) {
            status_text(rep);
        }
        return SPRIG_OK; /* 404 */
    }
    const sprig__asset *a = sprig__console_find(req->path);
    if (a) {
        rep->status = 200;
        rep->content_type = a->type;
        rep->body = a->data;
        rep->len = a->len;
        rep->etag = a->etag;
        rep->csp = !strcmp(a->path, "/") ? sprig__console_csp() : NULL;
    }
    return SPRIG_OK;
}
