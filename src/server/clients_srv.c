/*
 * clients_srv.c -- the server.clients row (issue 15): the server's open
 * connections as sprig_server_connected_clients() lists them, with the
 * connection the request came on marked `yours`.  It runs on the loop
 * thread, which owns the session list, so the listing is direct; the
 * permission (`server.clients` on `sprig`) was checked by the request
 * path like any row's.  The console's Clients page and `sprig clients`
 * call it (docs/protocol.md, "Connected clients").
 */
#include "server/server_int.h"

/* One listed connection in its wire form. */
static void
wire_client(const sprig_server_client_info *i, uint64_t mine,
            sprig_connected_client *o)
{
    memset(o, 0, sizeof *o);
    o->id = i->id;
    snprintf(o->peer, sizeof o->peer, "%s", i->peer);
    snprintf(o->transport, sizeof o->transport, "%s", i->transport);
    o->connected_ms = i->connected_ms;
    snprintf(o->identity, sizeof o->identity, "%s", i->identity);
    o->sessions = i->sessions;
    o->requests = i->requests;
    o->yours = i->id == mine;
}

int
sprig__server_clients(sprig__call *c, void *req, void *resp)
{
    (void)req;
    sprig__clients_resp *r = resp;
    size_t n = 0;
    int rc = sprig_server_connected_clients(c->srv, NULL, 0, &n);
    sprig_server_client_info *info =
        rc == 0 && n ? sprig__calloc(n, sizeof *info) : NULL;
    if (rc == 0 && n && !info) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    rc = rc ? rc : sprig_server_connected_clients(c->srv, info, n, &n);
    r->clients.items =
        rc == 0 && n ? sprig__calloc(n, sizeof(sprig_connected_client)) : NULL;
    if (rc == 0 && n && !r->clients.items) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        wire_client(&info[i], c->sess->info.id, &r->clients.items[i]);
        r->clients.n++;
    }
    sprig__free(info);
    return rc;
}
