/*
 * cmd_cluster.c -- `sprig --url URL cluster status|add|remove|
 * transfer-leader` (issue 18; docs/cluster.md "Operations"): the cluster
 * APIs a node serves (src/cluster/ops.c), called with a JSON request;
 * their JSON answer is printed.  Any node's URL will do: a change sent to
 * a follower is refused naming the leader and the client follows it.
 * Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char cluster_usage[] =
    "usage: sprig --url URL [--user ADMIN] cluster COMMAND ...\n"
    "\n"
    "Operate the Raft cluster that the node at URL belongs to (any node:\n"
    "changes go to the leader, which the client follows).  Administrators\n"
    "only (actions cluster.read and cluster.admin on\n"
    "sprig.api.cluster.*).\n"
    "\n"
    "  cluster status      every node: id, raft address, url, role\n"
    "                      (voter, standby, spare), the leader, and this\n"
    "                      node's term, commit and applied index; asked\n"
    "                      of the leader, each node's match index and last\n"
    "                      contact as the leader sees it.  --format table:\n"
    "                      the nodes as rows\n"
    "  cluster add ID RAFT-ADDR URL\n"
    "                      add node ID (listening for Raft on RAFT-ADDR,\n"
    "                      for clients on URL; started with a cluster file\n"
    "                      without \"bootstrap\"): it is added as a spare,\n"
    "                      catches up (log or snapshot) and becomes a\n"
    "                      voter; prints when it did\n"
    "  cluster remove ID   remove node ID from the configuration\n"
    "  cluster transfer-leader [ID]\n"
    "                      hand the leadership to node ID (none: any\n"
    "                      voter that is up to date)\n";

/* Call cluster.<api> with the JSON `req`; print the answer (its "nodes"
 * as rows with --format table or csv, when `nodes`). */
static int
call(cli *c, const char *api, const char *req, bool nodes)
{
    if (!c->url || !strstr(c->url, "://") || !strncmp(c->url, "file:", 5)) {
        return cli_usage(cluster_usage, "cluster talks to a running node: "
                                        "give --url ws://HOST:PORT");
    }
    int rc = cli_open(c, false);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_buf ans = {0};
    int src = sprig_client_call_on(c->st, api, req, strlen(req), &ans);
    if (src) {
        sprig_buf_clear(&ans);
        return cli_fail(src);
    }
    cli_format f = CLI_FORMAT_JSON;
    rc = cli_output_format(&f);
    jw w = {0};
    const char *d = ans.data, *key = "\"nodes\":[", *end = "],\"stats\"";
    /* the answer is not NUL-terminated: memmem, within ans.len */
    const char *p = d && nodes && f != CLI_FORMAT_JSON
                        ? memmem(d, ans.len, key, strlen(key))
                        : NULL;
    const char *e =
        p ? memmem(p, ans.len - (size_t)(p - d), end, strlen(end)) : NULL;
    if (rc == CLI_CONTINUE && p && e) {
        /* the array runs to the "]" before ",\"stats\"" (ops.c's order) */
        p += strlen(key) - 1;
        jw_json(&w, (sprig_bytes){p, (size_t)(e - p) + 1});
    } else {
        jw_json(&w, sprig_buf_bytes(&ans));
    }
    sprig_buf_clear(&ans);
    return rc == CLI_CONTINUE ? jw_print(&w) : rc;
}

static int
cluster_status(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, cluster_usage, 0, 0, &a);
    return rc == CLI_CONTINUE ? call(c, "cluster.status", "{}", true) : rc;
}

/* A node id argument: a number above 0. */
static int
node_id(const char *s, uint64_t *id)
{
    if (!cli_parse_uint(s, UINT64_MAX, id) || *id == 0) {
        return cli_usage(cluster_usage,
                         "'%s' is not a node id (a number "
                         "above 0)",
                         s);
    }
    return CLI_CONTINUE;
}

static int
cluster_add(cli *c, int argc, char **argv)
{
    cli_args a;
    uint64_t id = 0;
    int rc = cli_parse(argc, argv, NULL, cluster_usage, 3, 3, &a);
    rc = rc == CLI_CONTINUE ? node_id(a.pos[0], &id) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    jw w = {0};
    jw_raw(&w, "{\"id\":");
    jw_u64(&w, id);
    jw_raw(&w, ",\"raft\":");
    jw_cstr(&w, a.pos[1]);
    jw_raw(&w, ",\"url\":");
    jw_cstr(&w, a.pos[2]);
    jw_raw(&w, "}");
    char *req = strndup(w.buf.data, w.buf.len);
    jw_free(&w);
    if (!req) {
        return cli_fail(SPRIG_ENOMEM);
    }
    rc = call(c, "cluster.add", req, false);
    free(req);
    return rc;
}

/* remove ID, transfer-leader [ID]: {"id":ID} or {}. */
static int
cluster_id_op(cli *c, int argc, char **argv, const char *api, int min)
{
    cli_args a;
    uint64_t id = 0;
    int rc = cli_parse(argc, argv, NULL, cluster_usage, min, 1, &a);
    if (rc == CLI_CONTINUE && a.n) {
        rc = node_id(a.pos[0], &id);
    }
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    char req[64] = "{}";
    if (id) {
        snprintf(req, sizeof req, "{\"id\":%llu}", (unsigned long long)id);
    }
    return call(c, api, req, false);
}

static int
cluster_remove(cli *c, int argc, char **argv)
{
    return cluster_id_op(c, argc, argv, "cluster.remove", 1);
}

static int
cluster_transfer(cli *c, int argc, char **argv)
{
    return cluster_id_op(c, argc, argv, "cluster.transfer", 0);
}

static const cli_cmd cluster_cmds[] = {
    {"status", cluster_status},
    {"add", cluster_add},
    {"remove", cluster_remove},
    {"transfer-leader", cluster_transfer},
    {NULL, NULL},
};

int
cli_cmd_cluster(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, cluster_cmds, argc - 1, argv + 1, cluster_usage);
}
