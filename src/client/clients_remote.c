/*
 * clients_remote.c -- sprig_client_connected_clients() (issue 15): the
 * server.clients row over a client's connection, its answer copied into
 * the caller's array (docs/protocol.md, "Connected clients").
 */
#include "client/client_int.h"

int
sprig_client_connected_clients(sprig_storage *server,
                               sprig_connected_client *out, size_t cap,
                               size_t *n)
{
    sprig_client *c = sprig__client_of(server);
    if (!c || !n || (cap && !out)) {
        return sprig__err(SPRIG_EINVAL, "sprig_client_connected_clients: a "
                                        "server's storage and n (and out "
                                        "when cap > 0) are needed");
    }
    const sprig__api *api = &sprig__api_server_clients;
    sprig__empty q = {0};
    sprig__clients_resp r = {0};
    int rc = sprig__client_call(c, api, &q, &r);
    *n = rc == 0 ? r.clients.n : 0;
    for (size_t i = 0; rc == 0 && i < r.clients.n && i < cap; i++) {
        out[i] = r.clients.items[i];
    }
    sprig__api_free(api->resp, api->n_resp, &r);
    return rc;
}
