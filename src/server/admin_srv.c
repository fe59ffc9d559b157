/*
 * admin_srv.c -- administration over the network (src/server): the
 * handler of the admin.* rows, which change users, roles, permission
 * groups and tokens (docs/protocol.md, "Administration").
 *
 * Each row has its own action on the record it changes (user.create on
 * sprig.user.<name>, group.grant on sprig.group.<name>, ...), checked by
 * the request path like any row; the handler, on a worker, turns the
 * decoded request into a sprig_admin_change and hands it to the
 * permission engine (src/auth), which checks the same action again for
 * the request's identity and bumps the records' generation: every other
 * session sees the change on its next request.  A password in the
 * request is wiped from the decoded copy and the raw frame once used.
 */
#include "server/server_int.h"

_Static_assert(SPRIG__ADMIN_ROWS == SPRIG_ADMIN_OPS,
               "one admin.* row per sprig_admin_op");

/* The op of the row `c` runs (-1: none). */
static int
op_of(const sprig__call *c)
{
    for (int i = 0; i < SPRIG__ADMIN_ROWS; i++) {
        if (strcmp(sprig__api_admin[i]->name, c->route->api.name) == 0) {
            return i;
        }
    }
    return -1;
}

/* The request as a change: each row's fields are a subset of the
 * request struct, so what a row lacks is NULL. */
static sprig_admin_change
change_of(int op, const sprig__admin_req *q)
{
    sprig_admin_change ch = {(sprig_admin_op)op,
                             q->name   ? q->name
                             : q->user ? q->user
                                       : q->id,
                             q->has_password ? q->password : NULL,
                             q->group ? q->group : q->role,
                             q->actions,
                             q->resource,
                             q->add};
    return ch;
}

/* Wipe the secrets of the request: its decoded password and raw frame. */
static void
wipe_request(sprig__call *c, sprig__admin_req *q)
{
    if (q->password) {
        explicit_bzero(q->password, strlen(q->password));
    }
    if (c->job) {
        explicit_bzero(c->job->in.data, c->job->in.len);
    }
}

int
sprig__admin_change(sprig__call *c, void *req, void *resp)
{
    sprig__admin_req *q = req;
    sprig__admin_resp *r = resp;
    const sprig_server_options *o = &c->srv->opts;
    int op = op_of(c);
    sprig_admin_token tok;
    int rc = c->srv->auth && op >= 0
                 ? SPRIG_OK
                 : sprig__err(SPRIG_EINVAL, "this server keeps no admin "
                                            "records (no permission engine)");
    sprig_admin_change ch = change_of(op, q);
    /* the path checked the row's action; the engine checks it again for
     * the request's identity (unchecked under open access or a callback) */
    sprig_identity *as = o->open_access || o->authorize ? NULL : c->who;
    rc = rc ? rc : sprig_auth_apply(c->srv->auth, as, &ch, &tok);
    wipe_request(c, q);
    if (rc == 0 && op == SPRIG_ADMIN_TOKEN_CREATE) {
        r->id = sprig__strdup(tok.id);
        r->secret = sprig__strdup(tok.secret);
        rc = r->id && r->secret ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    explicit_bzero(&tok, sizeof tok);
    return rc;
}
