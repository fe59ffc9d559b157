/*
 * request.c -- the one path every request takes through the server
 * (src/server), whatever its row and wherever the row runs it:
 *
 *   decode the payload with the row's request fields
 *   -> authorise: the server's authorise callback, given the client, the
 *      row's action and each resource name the row's spec forms -- or,
 *      without a callback, the effective permissions of the request's
 *      identity (src/auth; "authenticate" is granted to all)
 *   -> the row's handler
 *   -> encode the response with the row's response fields, or the error.
 *
 * session.c decides on which thread this runs (the row's `where`); it
 * runs entirely there -- but for a submitted write (row `where`
 * SUBMIT), whose handler queues a command and whose answer is encoded
 * when it completes (submit.c), through sprig__request_answer() too.
 * sprig__error_frame() is the one function that
 * builds error frames: for errors of the path, of handlers, and those
 * session.c finds before a row is known.
 */
#include "core/cmd.h"
#include "server/server_int.h"

#include <stdio.h>

void
sprig__error_frame(sprig_buf *out, uint32_t id, int code, const char *msg,
                   sprig_bytes detail)
{
    sprig__mp_wr w;
    out->len = 0;
    sprig__mp_wr_init(&w, out);
    sprig__frame_error(&w, id, code, msg ? msg : "", detail);
    if (sprig__mp_wr_status(&w) != 0) {
        out->len = 0;
    }
}

/* Ask the authorise callback -- or, without one, the permission engine
 * with the request's identity -- about one resource. */
static int
ask(sprig__call *c, const char *action, const char *resource)
{
    const sprig_server_options *o = &c->srv->opts;
    if (!o->authorize) {
        if (strcmp(action, "authenticate") == 0 ||
            strcmp(action, "api.list") == 0) {
            return SPRIG_OK; /* granted to every connection */
        }
        return sprig_identity_check(c->who, action, resource);
    }
    int rc = o->authorize(o->authorize_udata, &c->sess->info, action, resource);
    if (rc == 0) {
        return SPRIG_OK;
    }
    rc = rc < 0 && rc >= SPRIG_ERANGE ? rc : SPRIG_EPERM;
    return sprig__err(rc, "not allowed: action '%s' on resource '%s'", action,
                      resource);
}

int
sprig__request_allowed(sprig__call *c, const char *action, const char *resource)
{
    const sprig_server_options *o = &c->srv->opts;
    if (!o->authorize && o->open_access) {
        return SPRIG_OK;
    }
    return ask(c, action, resource);
}

/* Does `resource` lie in the admin records' database? */
static bool
in_admin_db(const char *resource)
{
    static const char pre[] = "sprig.db." SPRIG_AUTH_DB;
    size_t n = sizeof pre - 1;
    return strncmp(resource, pre, n) == 0 &&
           (resource[n] == 0 || resource[n] == '.');
}

/* A refused operation of a transaction: say which (the whole
 * transaction is refused, nothing of it done). */
static int
refused_op(int rc, size_t i, size_t n)
{
    char msg[600];
    snprintf(msg, sizeof msg, "%s", sprig_errmsg());
    return sprig__err(rc, "%s (operation %zu of the transaction's %zu)", msg,
                      i + 1, n);
}

/* The authorise step: every resource the request names must pass (a
 * transaction: each operation, for its own action).  A write to "_admin"
 * is noted: the records change when it is done. */
static int
authorise(sprig__call *c, const void *req)
{
    const sprig_server_options *o = &c->srv->opts;
    if (!o->authorize && o->open_access) {
        return SPRIG_OK; /* open access: everything is allowed */
    }
    const sprig__api *api = &c->route->api;
    size_t n;
    int rc = sprig__resource_count(api, req, &n);
    sprig_buf name = {0};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *action = sprig__resource_action(api, req, i);
        rc = sprig__resource_name(api, req, c->sess, i, &name);
        rc = rc ? rc : ask(c, action, (const char *)name.data);
        if (rc == SPRIG_EPERM && action != api->action && n > 1) {
            rc = refused_op(rc, i, n); /* an operation of a transaction */
        }
        if (rc == 0 && i == 0 && api->access == SPRIG__WRITE &&
            in_admin_db((const char *)name.data)) {
            c->admin_write = true;
            if (c->job) {
                c->job->admin_write = true;
            }
        }
    }
    sprig_buf_clear(&name);
    return rc;
}

/* Encode the answer to the request: its response, or the error with --
 * for rows marked resp_on_error -- the response as detail. */
void
sprig__request_answer(const sprig__call *c, int rc, const void *resp,
                      sprig_buf *out)
{
    const sprig__api *api = &c->route->api;
    if (rc == 0 && (c->admin_write || (c->job && c->job->admin_write))) {
        sprig_auth_changed(c->srv->auth); /* permissions may have changed */
    }
    if (rc == 0) {
        sprig__mp_wr w;
        sprig__mp_wr_init(&w, out);
        sprig__frame_response(&w, c->id);
        if (sprig__api_encode(&w, api->resp, api->n_resp, resp) == 0 &&
            sprig__mp_wr_status(&w) == 0) {
            return;
        }
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", sprig_errmsg());
    sprig__errinfo info = *sprig__errinfo_get();
    sprig_buf resp_map = {0}, detail = {0};
    if (api->resp_on_error && resp) {
        sprig__mp_wr dw;
        sprig__mp_wr_init(&dw, &resp_map);
        sprig__api_encode(&dw, api->resp, api->n_resp, resp);
    }
    if (sprig__detail_build(&detail, sprig_buf_bytes(&resp_map), &info)) {
        detail.len = 0; /* out of memory: the code and message still go */
    }
    sprig__error_frame(out, c->id, rc, msg, sprig_buf_bytes(&detail));
    sprig_buf_clear(&resp_map);
    sprig_buf_clear(&detail);
}

/* The request and response structs of a row, on the stack when small. */
typedef struct structs {
    void *req, *resp;
    _Alignas(16) uint8_t room[2][256];
} structs;

static int
structs_init(structs *s, const sprig__api *api)
{
    bool small = api->req_size <= sizeof s->room[0] &&
                 api->resp_size <= sizeof s->room[1];
    s->req = small ? s->room[0] : sprig__calloc(1, api->req_size);
    s->resp = small ? s->room[1] : sprig__calloc(1, api->resp_size);
    if (small) {
        memset(s->room, 0, sizeof s->room);
    }
    return s->req && s->resp ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
}

static void
structs_free(structs *s, const sprig__api *api)
{
    if (s->req) {
        sprig__api_free(api->req, api->n_req, s->req);
    }
    if (s->resp) {
        sprig__api_free(api->resp, api->n_resp, s->resp);
    }
    if (s->req != s->room[0]) {
        sprig__free(s->req);
        sprig__free(s->resp);
    }
}

/* The row's handler.  A write runs with the request's id ("rid", issue
 * 18) as its thread's current request id: the command it submits to a
 * replicated storage carries it (src/core/cmd.h), so a retried request is
 * applied once. */
static int
run_handler(sprig__call *c, sprig_bytes payload, void *req, void *resp)
{
    uint8_t rid[SPRIG__RID_LEN];
    bool has_rid = c->route->api.access == SPRIG__WRITE &&
                   sprig__api_request_rid(payload, rid) == 1;
    if (has_rid) {
        sprig__rid_set_current(rid);
    }
    int rc = c->route->handler(c, req, resp);
    if (has_rid) {
        sprig__rid_set_current(NULL);
    }
    return rc;
}

/* A linearizable read ("lin": true, issue 18) on a storage that has a
 * read barrier (a cluster node's): the barrier runs first, on a worker.
 * Logging in is answered by any node. */
static bool
wants_barrier(const sprig__call *c, sprig_bytes payload)
{
    const sprig__api *api = &c->route->api;
    return api->access == SPRIG__READ && c->srv->st->ops->read_barrier &&
           !(api->action && strcmp(api->action, "authenticate") == 0) &&
           sprig__api_request_lin(payload);
}

int
sprig__request_run(sprig__call *c, sprig_bytes payload, bool *authorised,
                   sprig_buf *out)
{
    const sprig__api *api = &c->route->api;
    structs s;
    int rc = structs_init(&s, api);
    rc = rc ? rc : sprig__api_decode(payload, api->req, api->n_req, s.req);
    if (rc == 0 && !*authorised) {
        rc = authorise(c, s.req);
        *authorised = rc == 0;
    }
    if (rc == 0 && wants_barrier(c, payload)) {
        if (c->on_loop) { /* it waits for a round of the Raft group */
            structs_free(&s, api);
            return SPRIG__EMISS;
        }
        rc = c->srv->st->ops->read_barrier(c->srv->st);
    }
    rc = rc ? rc : run_handler(c, payload, s.req, s.resp);
    if (rc == SPRIG__EMISS || rc == SPRIG__EASYNC) {
        structs_free(&s, api);
        return rc; /* a worker runs it, or the engine answers it */
    }
    sprig__request_answer(c, rc, s.resp, out);
    structs_free(&s, api);
    return SPRIG_OK;
}
