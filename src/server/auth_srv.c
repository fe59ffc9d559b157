/*
 * auth_srv.c -- authentication on the server (src/server): the auth.*
 * rows and connection admission.
 *
 * A connection holds up to SPRIG__IDENTS sessions, each an identity of
 * the permission engine (src/auth) under a number unique in the server.
 * A request frame names its session, or none (nil): the connection's
 * default session, if any -- so a client that logs in once sends nil
 * ever after.  auth.password and auth.token make a new session and the
 * default; auth.assume makes one the client names explicitly; auth.logout
 * ends one.  The identity of a request is taken (a reference) on the loop
 * thread when its frame arrives, so a logout does not pull it from under
 * a request in flight.  The handlers that hash or read the records run on
 * workers; their new session is installed on the loop thread before the
 * answer leaves (job->on_loop).
 *
 * Admission (any transport): a connection whose address already has
 * max_connections_per_address open is closed at once (1008), so one
 * address cannot take every slot; one that has not authenticated within
 * auth_timeout_ms is closed (1008) by a timer.
 */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

static int
no_engine(void)
{
    return sprig__err(SPRIG_EINVAL, "this server does not authenticate "
                                    "(open access, no permission engine)");
}

/* ---- sessions of a connection (loop thread) ---------------------------------
 */

static sprig__ident *
slot_of(sprig__session *s, uint64_t id)
{
    for (size_t i = 0; id && i < SPRIG__IDENTS; i++) {
        if (s->idents[i].id == id) {
            return &s->idents[i];
        }
    }
    return NULL;
}

bool
sprig__auth_who(sprig__session *s, bool has, uint64_t id, sprig_identity **who)
{
    sprig__ident *slot = slot_of(s, has ? id : s->default_ident);
    *who = slot ? slot->who : NULL;
    return slot || !has;
}

void
sprig__auth_session_closed(sprig__session *s)
{
    for (size_t i = 0; i < SPRIG__IDENTS; i++) {
        sprig_identity_release(s->idents[i].who);
        s->idents[i].who = NULL;
        s->idents[i].id = 0;
    }
    s->default_ident = 0;
}

typedef struct new_ident {
    sprig_identity *who;
    uint64_t id;
    bool make_default;
} new_ident;

/* Loop thread, before the answer leaves: install the new session. */
static void
install(sprig__job *j)
{
    new_ident *n = j->attach;
    sprig__session *s = j->sess;
    j->attach = NULL;
    sprig__ident *slot = s->conn ? slot_of(s, 0) : NULL;
    for (size_t i = 0; s->conn && !slot && i < SPRIG__IDENTS; i++) {
        slot = s->idents[i].id == 0 ? &s->idents[i] : NULL;
    }
    if (!slot) {
        sprig_identity_release(n->who);
        sprig__error_frame(&j->out, j->id, SPRIG_EBUSY,
                           "too many sessions on this connection (log one "
                           "out first)",
                           (sprig_bytes){NULL, 0});
    } else {
        slot->id = n->id;
        slot->who = n->who;
        s->authenticated = true;
        if (n->make_default) {
            s->default_ident = n->id;
        }
        sprig__plat_authenticated(s, n->id, n->who); /* the hook */
    }
    sprig__free(n);
}

/* A worker made identity `who` (taken over): answer with its session. */
static int
new_session(sprig__call *c, sprig_identity *who, bool make_default,
            sprig__auth_session_resp *r)
{
    new_ident *n = c->job ? sprig__calloc(1, sizeof *n) : NULL;
    r->identity = n ? sprig__strdup(sprig_identity_name(who)) : NULL;
    if (!n || !r->identity) {
        sprig__free(n);
        sprig_identity_release(who);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    n->who = who;
    n->id = atomic_fetch_add(&c->srv->next_ident, 1) + 1;
    n->make_default = make_default;
    r->session = n->id;
    c->job->on_loop = install;
    c->job->attach = n;
    return SPRIG_OK;
}

/* ---- the rows
 * ----------------------------------------------------------------- */

int
sprig__auth_password(sprig__call *c, void *req, void *resp)
{
    sprig__auth_password_req *q = req;
    sprig_identity *who = NULL;
    int rc = c->srv->auth ? sprig_auth_login_password(c->srv->auth, q->user,
                                                      q->password, &who)
                          : no_engine();
    explicit_bzero(q->password, strlen(q->password));
    if (c->job) {
        explicit_bzero(c->job->in.data, c->job->in.len); /* the raw frame */
    }
    return rc ? rc : new_session(c, who, true, resp);
}

int
sprig__auth_challenge(sprig__call *c, void *req, void *resp)
{
    (void)req;
    sprig__auth_challenge_resp *r = resp;
    if (!c->srv->auth) {
        return no_engine();
    }
    uint8_t nonce[32];
    int rc = sprig_auth_token_challenge(c->srv->auth, nonce, &r->server_ms);
    if (rc == 0 && sprig_buf_append(&r->nonce, nonce, sizeof nonce) != 0) {
        rc = sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    return rc;
}

int
sprig__auth_token(sprig__call *c, void *req, void *resp)
{
    sprig__auth_token_req *q = req;
    if (!c->srv->auth) {
        return no_engine();
    }
    if (q->nonce.len != 32 || q->mac.len != 32) {
        return sprig__err(SPRIG_EINVAL, "nonce and mac are 32 bytes each");
    }
    sprig_identity *who = NULL;
    int rc =
        sprig_auth_login_token(c->srv->auth, q->token, q->nonce.data,
                               q->server_ms, q->client_ms, q->mac.data, &who);
    return rc ? rc : new_session(c, who, true, resp);
}

int
sprig__auth_assume(sprig__call *c, void *req, void *resp)
{
    sprig__auth_assume_req *q = req;
    sprig_identity *who = NULL;
    /* the request path checked "identity.assume" on sprig.<kind>.<name> */
    int rc = c->srv->auth
                 ? sprig_auth_assume(c->srv->auth, NULL, q->kind, q->name, &who)
                 : no_engine();
    return rc ? rc : new_session(c, who, false, resp);
}

int
sprig__auth_logout(sprig__call *c, void *req, void *resp)
{
    (void)resp;
    sprig__session *s = c->sess;
    uint64_t id = ((sprig__auth_logout_req *)req)->session;
    id = id ? id : s->default_ident;
    sprig__ident *slot = slot_of(s, id);
    if (!slot) {
        return sprig__err(SPRIG_ENOTFOUND,
                          "no session %llu on this "
                          "connection",
                          (unsigned long long)id);
    }
    sprig__plat_session_ended(s, id, slot->who); /* the hook */
    sprig_identity_release(slot->who); /* requests in flight hold theirs */
    slot->who = NULL;
    slot->id = 0;
    if (s->default_ident == id) {
        s->default_ident = 0;
    }
    return SPRIG_OK;
}

/* ---- admission
 * ------------------------------------------------------------------- */

static bool
enforced(const sprig_server *srv)
{
    return srv->auth && !srv->opts.open_access && !srv->opts.authorize;
}

bool
sprig__auth_admit(sprig__session *s)
{
    snprintf(s->addr, sizeof s->addr, "%s", s->peer);
    char *colon = strrchr(s->addr, ':');
    if (colon && colon != s->addr) {
        *colon = 0; /* "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "[::1]" */
    }
    size_t limit = s->srv->opts.max_connections_per_address, n = 0;
    for (sprig__session *o = s->srv->sessions; limit && o; o = o->next) {
        n += o != s && o->conn && strcmp(o->addr, s->addr) == 0;
    }
    if (limit && n >= limit) {
        char why[96];
        snprintf(why, sizeof why,
                 "too many connections from this address (limit %zu)", limit);
        sprig__conn_close(s->conn, SPRIG_CLOSE_POLICY, why);
        return false;
    }
    return true;
}

static void
on_auth_timer(uv_timer_t *t)
{
    sprig_server *srv = t->data;
    uint64_t now = uv_now(&srv->loop), limit = srv->opts.auth_timeout_ms;
    for (sprig__session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        if (s->conn && !s->authenticated && now - s->opened_ms >= limit) {
            char why[96];
            snprintf(why, sizeof why, "not authenticated within %llu ms",
                     (unsigned long long)limit);
            sprig__conn_close(s->conn, SPRIG_CLOSE_POLICY, why);
        }
    }
}

void
sprig__auth_timer_start(sprig_server *srv)
{
    unsigned ms = srv->opts.auth_timeout_ms;
    if (!enforced(srv) || ms == 0) {
        return;
    }
    uint64_t every = ms / 4 ? ms / 4 : 1;
    uv_timer_init(&srv->loop, &srv->auth_timer);
    srv->auth_timer.data = srv;
    uv_timer_start(&srv->auth_timer, on_auth_timer, every, every);
    srv->auth_timer_on = true;
}

static void
timer_closed(uv_handle_t *h)
{
    (void)h;
}

void
sprig__auth_timer_close(sprig_server *srv)
{
    if (srv->auth_timer_on) {
        srv->auth_timer_on = false;
        uv_timer_stop(&srv->auth_timer);
        uv_close((uv_handle_t *)&srv->auth_timer, timer_closed);
    }
}

int
sprig__auth_server_open(sprig_server *srv)
{
    if (srv->opts.auth) {
        srv->auth = srv->opts.auth;
        return SPRIG_OK;
    }
    if (srv->opts.open_access || srv->opts.authorize) {
        return SPRIG_OK; /* nothing to check with */
    }
    srv->owns_auth = true;
    return sprig_auth_open(srv->st, srv->opts.auth_options, &srv->auth);
}

void
sprig__auth_server_free(sprig_server *srv)
{
    if (srv->owns_auth) {
        sprig_auth_free(srv->auth);
    }
    srv->auth = NULL;
}

sprig_auth *
sprig_server_auth(sprig_server *srv)
{
    return srv ? srv->auth : NULL;
}
