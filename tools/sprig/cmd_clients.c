/*
 * cmd_clients.c -- `sprig --url URL clients`: the connections open on a
 * server (issue 15), through sprig_client_connected_clients(); the
 * connection of this command itself is marked "yours".  Part of
 * tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

static const char clients_usage[] =
    "usage: sprig --url URL clients\n"
    "\n"
    "Print the connections open on the server at URL, oldest first, as a\n"
    "JSON array of {\"id\",\"peer\",\"transport\",\"connected_ms\",\n"
    "\"identity\",\"sessions\",\"requests\",\"yours\"} (\"yours\": this\n"
    "command's own connection).  Needs the action server.clients on\n"
    "sprig.  A local storage (--path) has no clients: exit 2.\n";

static void
write_client(jw *w, const sprig_connected_client *cc)
{
    jw_raw(w, "{\"id\":");
    jw_u64(w, cc->id);
    jw_raw(w, ",\"peer\":");
    jw_cstr(w, cc->peer);
    jw_raw(w, ",\"transport\":");
    jw_cstr(w, cc->transport);
    jw_raw(w, ",\"connected_ms\":");
    jw_u64(w, cc->connected_ms);
    jw_raw(w, ",\"identity\":");
    jw_cstr(w, cc->identity);
    jw_raw(w, ",\"sessions\":");
    jw_u64(w, cc->sessions);
    jw_raw(w, ",\"requests\":");
    jw_u64(w, cc->requests);
    jw_raw(w, cc->yours ? ",\"yours\":true}" : ",\"yours\":false}");
}

/* The list, grown until it holds every client (more may connect between
 * the two calls). */
static int
fetch_clients(cli *c, sprig_connected_client **out, size_t *n)
{
    size_t cap = 16;
    for (;;) {
        sprig_connected_client *l = calloc(cap, sizeof *l);
        if (!l) {
            return SPRIG_ENOMEM;
        }
        int rc = sprig_client_connected_clients(c->st, l, cap, n);
        if (rc || *n <= cap) {
            *out = l;
            return rc;
        }
        free(l);
        cap = *n + 16;
    }
}

int
cli_cmd_clients(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, clients_usage, 0, 0, &a);
    if (rc == CLI_CONTINUE && !c->url) {
        return cli_usage(clients_usage, "clients needs --url (a server)");
    }
    rc = rc == CLI_CONTINUE ? cli_open(c, false) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_connected_client *l = NULL;
    size_t n = 0;
    int src = fetch_clients(c, &l, &n);
    if (src) {
        free(l);
        return cli_fail(src);
    }
    jw w = {0};
    jw_raw(&w, "[");
    for (size_t i = 0; i < n; i++) {
        jw_raw(&w, i ? "," : "");
        write_client(&w, &l[i]);
    }
    jw_raw(&w, "]");
    free(l);
    return jw_print(&w);
}
