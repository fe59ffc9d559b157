/*
 * placement.h -- where a conformance test's storage lives.  The suite
 * (test_conformance.c) is written once against sprig.h and runs against
 * every placement: a local storage, and a real Sprig server on loopback
 * reached through a client over ws://.  Each placement registers the
 * suite's schema the way a real program would: the local one directly, the
 * server one through the server program's own storage handle.
 */
#ifndef SPRIG_PLACEMENT_H
#define SPRIG_PLACEMENT_H

#include "sprig/client.h"
#include "sprig/server.h"
#include "testutil.h"

typedef struct placement {
    const char *name;
    sprig_storage *st; /* what the tests use */
    sprig_storage *local;
    sprig_server *srv;
    sprig_client *client;
    char dir[1200];
} placement;

static inline void
placement_open(placement *p, const char *kind, const char *root,
               const sprig_schema_def *schema)
{
    static int n;
    memset(p, 0, sizeof *p);
    p->name = kind;
    snprintf(p->dir, sizeof p->dir, "%s/%s%d", root, kind, n++);
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = p->dir;
    so.durability = SPRIG_DURABILITY_NONE; /* behaviour, not crash safety */
    if (strcmp(kind, "local") == 0) {
        SPRIG_OK_(sprig_storage_open(&so, &p->local));
        SPRIG_OK_(sprig_storage_register_schema(p->local, schema));
        p->st = p->local;
        return;
    }
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = "127.0.0.1:0";
    o.workers = 4;
    SPRIG_OK_(sprig_server_new(&so, &o, &p->srv));
    SPRIG_OK_(
        sprig_storage_register_schema(sprig_server_storage(p->srv), schema));
    SPRIG_OK_(sprig_server_start(p->srv));
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d",
             sprig_server_ws_port(p->srv));
    SPRIG_OK_(sprig_client_connect(url, NULL, &p->client));
    p->st = sprig_client_storage(p->client);
}

static inline void
placement_close(placement *p)
{
    if (p->client) {
        sprig_client_close(p->client);
    }
    if (p->srv) {
        sprig_server_free(p->srv);
    }
    if (p->local) {
        sprig_storage_close(p->local);
    }
    memset(p, 0, sizeof *p);
}

#endif
