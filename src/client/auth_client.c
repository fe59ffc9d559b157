/*
 * auth_client.c -- logging in from a client (src/client): password and
 * token logins (docs/protocol.md, "Authentication and sessions"), and
 * logging in again by itself after a reconnect.
 *
 * A successful login keeps its credentials (the password, or the token's
 * id and secret) in the client, wiped when replaced or at close.  When a
 * dropped connection is opened again, the loop thread sends the same
 * login before anything else: the outbox waits (`authing`) until the
 * answer; a refusal fails the queued calls with its reason.  The token
 * secret never crosses the wire: only a MAC over the server's challenge.
 */
#include "client/client_int.h"

#include "sprig/auth.h"

#include <stdio.h>
#include <time.h>

static uint64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        sprig__free(s);
    }
}

void
sprig__wipe_buf(sprig_buf *b)
{
    if (b->data) {
        explicit_bzero(b->data, b->cap);
    }
    sprig_buf_clear(b);
}

bool
sprig__api_secret(const sprig__api *api)
{
    return api == &sprig__api_auth_password ||
           api == &sprig__api_admin_user_create ||
           api == &sprig__api_admin_user_password ||
           api == &sprig__api_admin_token_create;
}

void
sprig__client_auth_free(sprig_client *c)
{
    wipe_free(c->auth_name);
    wipe_free(c->auth_secret);
    c->auth_name = c->auth_secret = NULL;
    c->auth_kind = 0;
    sprig__wipe_buf(&c->auth_call.frame); /* a password login's */
    sprig__wipe_buf(&c->auth_call.answer);
}

/* Keep the credentials of a successful login (lock taken here). */
static int
keep(sprig_client *c, int kind, const char *name, const char *secret)
{
    char *n = sprig__strdup(name), *s = sprig__strdup(secret);
    if (!n || !s) {
        wipe_free(n);
        wipe_free(s);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&c->lock);
    wipe_free(c->auth_name);
    wipe_free(c->auth_secret);
    c->auth_kind = kind;
    c->auth_name = n;
    c->auth_secret = s;
    pthread_mutex_unlock(&c->lock);
    return SPRIG_OK;
}

static void
drop_answer(const sprig__api *api, void *resp)
{
    sprig__api_free(api->resp, api->n_resp, resp);
}

int
sprig_client_authenticate_password(sprig_client *c, const char *user,
                                   const char *password)
{
    if (!c || !user || !password) {
        return sprig__err(SPRIG_EINVAL, "client, user and password are "
                                        "needed");
    }
    sprig__auth_password_req q = {(char *)user, (char *)password};
    sprig__auth_session_resp r = {0};
    int rc = sprig__client_call(c, &sprig__api_auth_password, &q, &r);
    drop_answer(&sprig__api_auth_password, &r);
    return rc ? rc : keep(c, 1, user, password);
}

/* The auth.token request answering challenge `ch` (mac in `mac`). */
static int
token_request(const char *id, const char *secret,
              const sprig__auth_challenge_resp *ch, uint8_t mac[32],
              sprig__auth_token_req *q)
{
    if (ch->nonce.len != 32) {
        return sprig__err(SPRIG_EPROTO, "a challenge nonce is 32 bytes");
    }
    q->token = (char *)id;
    q->nonce = sprig_buf_bytes(&ch->nonce);
    q->server_ms = ch->server_ms;
    q->client_ms = wall_ms();
    q->mac = (sprig_bytes){mac, 32};
    return sprig_auth_token_response(id, secret, ch->nonce.data, ch->server_ms,
                                     q->client_ms, mac);
}

int
sprig_client_authenticate_token(sprig_client *c, const char *id,
                                const char *secret)
{
    if (!c || !id || !secret) {
        return sprig__err(SPRIG_EINVAL, "client, token id and secret are "
                                        "needed");
    }
    sprig__empty e = {0};
    sprig__auth_challenge_resp ch = {0};
    sprig__auth_token_req q = {0};
    sprig__auth_session_resp r = {0};
    uint8_t mac[32];
    int rc = sprig__client_call(c, &sprig__api_auth_challenge, &e, &ch);
    rc = rc ? rc : token_request(id, secret, &ch, mac, &q);
    rc = rc ? rc : sprig__client_call(c, &sprig__api_auth_token, &q, &r);
    drop_answer(&sprig__api_auth_challenge, &ch);
    drop_answer(&sprig__api_auth_token, &r);
    return rc ? rc : keep(c, 2, id, secret);
}

int
sprig_client_authenticate_token_file(sprig_client *c, const char *path)
{
    char id[SPRIG_TOKEN_ID_LEN + 1], secret[SPRIG_TOKEN_SECRET_LEN + 1];
    int rc = sprig_token_file_read(path, id, secret);
    rc = rc ? rc : sprig_client_authenticate_token(c, id, secret);
    explicit_bzero(secret, sizeof secret);
    return rc;
}

int
sprig_token_file_read(const char *path, char id[SPRIG_TOKEN_ID_LEN + 1],
                      char secret[SPRIG_TOKEN_SECRET_LEN + 1])
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) {
        return sprig__err(SPRIG_EIO, "cannot read token file %s",
                          path ? path : "(null)");
    }
    char line[256] = "";
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *colon = got ? strchr(line, ':') : NULL;
    size_t idn = colon ? (size_t)(colon - line) : 0;
    size_t sn = colon ? strcspn(colon + 1, "\r\n") : 0;
    int rc = SPRIG_OK;
    if (idn != SPRIG_TOKEN_ID_LEN || sn != SPRIG_TOKEN_SECRET_LEN) {
        rc = sprig__err(SPRIG_EINVAL,
                        "token file %s: want one line "
                        "ID:SECRET (16 and 64 hex digits)",
                        path);
    } else {
        memcpy(id, line, idn);
        id[idn] = 0;
        memcpy(secret, colon + 1, sn);
        secret[sn] = 0;
    }
    explicit_bzero(line, sizeof line);
    return rc;
}

/* ---- logging in again after a reconnect (loop thread, lock held) -----------
 */

static void reauth_step(sprig_client *c, sprig__call *call);

/* Send an internal request of `api` (the outbox waits).  `req` may
 * borrow from the previous answer: it is encoded before that goes. */
static int
send_internal(sprig_client *c, const sprig__api *api, const void *req)
{
    sprig__call *call = &c->auth_call;
    uint32_t id = c->next_id++;
    c->next_id += c->next_id == 0;
    sprig_buf frame = {0};
    sprig__mp_wr w;
    sprig__mp_wr_init(&w, &frame);
    sprig__frame_request(&w, id, NULL, api->name);
    int rc = sprig__api_encode(&w, api->req, api->n_req, req);
    sprig__wipe_buf(&call->frame); /* the last login's: a password */
    sprig__wipe_buf(&call->answer);
    call->frame = frame;
    call->rc = 0;
    call->done = false;
    call->msg[0] = 0;
    call->on_done = reauth_step;
    call->owner = c;
    call->id = id;
    if (rc == 0) {
        call->next = c->waiting;
        c->waiting = call;
        rc = sprig__conn_send(c->conn, call->frame.data, call->frame.len);
    }
    return rc; /* a failed send closes the connection: on_close ends it */
}

/* The login ended: send the outbox, or fail it with the refusal. */
static void
reauth_end(sprig_client *c, int rc, const char *msg)
{
    c->authing = false;
    if (rc == SPRIG_ECLOSED || rc == SPRIG_ECONNECT) {
        return; /* the connection went: the next one tries again */
    }
    if (rc) {
        char m[600];
        snprintf(m, sizeof m, "logging in again after a reconnect failed: %s",
                 msg);
        sprig__client_fail_list(&c->outbox, rc, m);
        c->outbox_tail = NULL;
        return;
    }
    if (c->conn) {
        sprig__client_flush(c);
    }
}

/* The challenge came: answer it. */
static int
answer_challenge(sprig_client *c, sprig__call *call)
{
    sprig__auth_challenge_resp ch = {0};
    sprig__auth_token_req q = {0};
    uint8_t mac[32];
    int rc = sprig__api_decode(sprig_buf_bytes(&call->answer),
                               sprig__api_auth_challenge.resp,
                               sprig__api_auth_challenge.n_resp, &ch);
    rc = rc ? rc : token_request(c->auth_name, c->auth_secret, &ch, mac, &q);
    /* the request is encoded before the answer it borrows from goes */
    rc = rc ? rc : send_internal(c, &sprig__api_auth_token, &q);
    drop_answer(&sprig__api_auth_challenge, &ch);
    return rc;
}

static void
reauth_step(sprig_client *c, sprig__call *call)
{
    int rc = call->rc;
    if (rc == 0 && c->auth_step == 1) {
        c->auth_step = 2;
        rc = answer_challenge(c, call);
        if (rc == 0) {
            return; /* the token's answer comes next */
        }
    }
    reauth_end(c, rc, rc == call->rc ? call->msg : sprig_errmsg());
}

bool
sprig__client_reauth_begin(sprig_client *c)
{
    if (!c->auth_kind || c->authing) {
        return false;
    }
    c->authing = true;
    int rc;
    if (c->auth_kind == 1) {
        sprig__auth_password_req q = {c->auth_name, c->auth_secret};
        c->auth_step = 2;
        rc = send_internal(c, &sprig__api_auth_password, &q);
    } else {
        sprig__empty e = {0};
        c->auth_step = 1;
        rc = send_internal(c, &sprig__api_auth_challenge, &e);
    }
    if (rc) {
        c->authing = false; /* the connection closes: the calls fail there */
    }
    return true;
}

/* ---- administration over the network ---------------------------------------
 */

/* The admin.* request of change `ch`: its name goes in the field its row
 * names ("name", "user" or "id"), `other` in "group" or "role". */
static void
admin_request(const sprig_admin_change *ch, sprig__admin_req *q)
{
    char *name = (char *)ch->name, *other = (char *)ch->other;
    bool token_op = ch->op == SPRIG_ADMIN_TOKEN_CREATE ||
                    ch->op == SPRIG_ADMIN_TOKEN_DELETE;
    q->name = token_op ? NULL : name;
    q->user = ch->op == SPRIG_ADMIN_TOKEN_CREATE ? name : NULL;
    q->id = ch->op == SPRIG_ADMIN_TOKEN_DELETE ? name : NULL;
    q->role = ch->op == SPRIG_ADMIN_USER_ROLE ? other : NULL;
    q->group = ch->op == SPRIG_ADMIN_USER_ROLE ? NULL : other;
    q->password = (char *)ch->password;
    q->has_password = ch->password != NULL;
    q->actions = (char *)ch->actions;
    q->resource = (char *)ch->resource;
    q->add = ch->add;
}

/* Copy a created token out of the answer. */
static int
token_out(const sprig__admin_resp *r, sprig_admin_token *tok)
{
    if (!r->id || !r->secret || strlen(r->id) != SPRIG_TOKEN_ID_LEN ||
        strlen(r->secret) != SPRIG_TOKEN_SECRET_LEN) {
        return sprig__err(SPRIG_EPROTO, "the server's token is malformed");
    }
    memcpy(tok->id, r->id, sizeof tok->id);
    memcpy(tok->secret, r->secret, sizeof tok->secret);
    return SPRIG_OK;
}

int
sprig_client_admin(sprig_storage *server, const sprig_admin_change *ch,
                   sprig_admin_token *tok)
{
    sprig_client *c = sprig__client_of(server);
    if (!c || !ch || (unsigned)ch->op >= SPRIG_ADMIN_OPS) {
        return sprig__err(SPRIG_EINVAL, "sprig_client_admin: a server's "
                                        "storage and a known change are "
                                        "needed");
    }
    if (ch->op == SPRIG_ADMIN_TOKEN_CREATE && !tok) {
        return sprig__err(SPRIG_EINVAL, "creating a token needs somewhere "
                                        "to put it");
    }
    const sprig__api *api = sprig__api_admin[ch->op];
    sprig__admin_req q = {0};
    sprig__admin_resp r = {0};
    admin_request(ch, &q);
    int rc = sprig__client_call(c, api, &q, &r);
    if (rc == 0 && ch->op == SPRIG_ADMIN_TOKEN_CREATE) {
        rc = token_out(&r, tok);
    }
    if (r.secret) {
        explicit_bzero(r.secret, strlen(r.secret));
    }
    drop_answer(api, &r);
    return rc;
}
