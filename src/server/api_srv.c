/*
 * api_srv.c -- custom APIs (src/server; issue 12): rows a server program
 * adds to its server's registry with sprig_server_register_api(), and the
 * context their handlers answer through.
 *
 * A custom row is a copy of the template sprig__api_custom (request and
 * response: one byte string in field "data") with the program's name,
 * action, access, place and resource, bound to custom_handler(): so it is
 * found, decoded, authorised and answered by the one request path like
 * every built-in row.  A worker row runs there as a WORKER job; a loop row
 * runs as a SUBMIT row does (a job is made first, the path runs on the
 * loop thread), which is what lets any row answer later.
 *
 * custom_handler() makes a sprig_api_ctx and calls the program's handler.
 * An answer given while the handler runs is kept in the context and
 * encoded by the path when the handler returns; once it has returned
 * without answering, the request is pending (SPRIG__EASYNC: no thread
 * waits for it) and sprig_api_reply()/sprig_api_fail() encode the answer
 * on their own thread and hand the job to the loop thread through the
 * done queue, as a submitted write's completion does.  `in_handler`,
 * under the context's lock, decides which of the two an answer takes.
 * Pending requests are counted in srv->submits, so teardown waits for
 * them (sprig__submit_drain).
 */
#include "server/server_int.h"

#include <stdarg.h>
#include <stdio.h>

/* A custom row's program side (the route's udata). */
typedef struct custom_row {
    struct custom_row *next;
    sprig_api_handler fn;
    void *udata;
    char resource[]; /* "=<name>" for a fixed resource, or "" */
} custom_row;

struct sprig_api_ctx {
    sprig_server *srv;
    sprig__session *sess;
    const sprig__route *route;
    sprig__job *job;
    uint32_t id;
    sprig_bytes req;
    sprig_buf req_copy; /* loop rows: the frame goes away */
    sprig_storage *narrowed;
    pthread_mutex_t lock;
    bool in_handler, claimed, answered;
    unsigned refs; /* the answer + key-value operations in flight */
    int rc;
    char msg[512];
    sprig_buf reply;
};

void
sprig_api_options_init(sprig_api_options *o)
{
    memset(o, 0, sizeof *o);
}

/* ---- validation ---------------------------------------------------------- */

static bool
name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

int
sprig__api_name_check(const char *name, const char *what)
{
    static const char *const reserved[] = {
        "storage", "db", "kv", "view", "pubsub", "auth", "sprig", "server"};
    size_t len = name ? strlen(name) : 0, parts = 1, run = 0;
    bool ok = len > 0 && len <= 64;
    for (size_t i = 0; ok && i < len; i++) {
        bool dot = name[i] == '.';
        ok = dot ? run > 0 : name_char(name[i]);
        parts += dot;
        run = dot ? 0 : run + 1;
    }
    if (!ok || run == 0 || parts < 2) {
        return sprig__err(SPRIG_EINVAL,
                          "%s '%.80s' is not authority.name (letters, "
                          "digits, '_' and '-' in two or more dot-separated "
                          "parts, at most 64 bytes)",
                          what, name ? name : "(null)");
    }
    size_t first = strcspn(name, ".");
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
        if (strlen(reserved[i]) == first &&
            memcmp(name, reserved[i], first) == 0) {
            return sprig__err(SPRIG_EINVAL,
                              "%s '%s': the authority '%s' is Sprig's own",
                              what, name, reserved[i]);
        }
    }
    return SPRIG_OK;
}

/* A printable, non-empty string of at most `max` bytes. */
static bool
printable(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) {
            return false;
        }
    }
    return n > 0 && n <= max;
}

/* ---- the handler of every custom row ------------------------------------- */

static void ctx_end(sprig_api_ctx *x);

void
sprig__api_ctx_hold(sprig_api_ctx *x)
{
    pthread_mutex_lock(&x->lock);
    x->refs++;
    pthread_mutex_unlock(&x->lock);
}

void
sprig__api_ctx_drop(sprig_api_ctx *x)
{
    pthread_mutex_lock(&x->lock);
    bool last = --x->refs == 0;
    pthread_mutex_unlock(&x->lock);
    if (last) {
        ctx_end(x);
    }
}

/* A context for call `c` with request `r`; NULL when out of memory. */
static sprig_api_ctx *
ctx_new(sprig__call *c, const sprig__custom_req *r)
{
    sprig_api_ctx *x = sprig__calloc(1, sizeof *x);
    if (!x) {
        return NULL;
    }
    x->srv = c->srv;
    x->sess = c->sess;
    x->route = c->route;
    x->job = c->job;
    x->id = c->id;
    x->req = r->has_data ? r->data : (sprig_bytes){NULL, 0};
    if (c->on_loop && x->req.len) { /* the frame is the transport's */
        if (sprig_buf_append(&x->req_copy, x->req.data, x->req.len)) {
            sprig__free(x);
            return NULL;
        }
        x->req = sprig_buf_bytes(&x->req_copy);
    }
    pthread_mutex_init(&x->lock, NULL);
    x->in_handler = true;
    x->refs = 1;
    pthread_mutex_lock(&c->srv->lock);
    c->srv->submits++; /* teardown waits for every answer */
    pthread_mutex_unlock(&c->srv->lock);
    return x;
}

/* The row's handler (custom APIs): call the program's, then hand the path
 * the answer it gave, or SPRIG__EASYNC when it is still to come. */
static int
custom_handler(sprig__call *c, void *rq, void *rs)
{
    const custom_row *cr = c->route->udata;
    if (!c->job) {
        return sprig__err(SPRIG_EINVAL, "custom API without a job");
    }
    sprig_api_ctx *x = ctx_new(c, rq);
    if (!x) {
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    cr->fn(x, cr->udata);
    pthread_mutex_lock(&x->lock);
    x->in_handler = false;
    bool answered = x->answered;
    pthread_mutex_unlock(&x->lock);
    if (!answered) {
        return SPRIG__EASYNC; /* sprig_api_reply/fail will finish the job */
    }
    int rc = x->rc;
    if (rc == 0) {
        ((sprig__custom_resp *)rs)->data = x->reply; /* the path frees it */
        memset(&x->reply, 0, sizeof x->reply);
    } else {
        sprig__err(rc, "%s", x->msg);
    }
    sprig__api_ctx_drop(x);
    return rc;
}

/* Free the context and count it out (teardown may be waiting). */
static void
ctx_end(sprig_api_ctx *x)
{
    sprig_server *srv = x->srv;
    if (x->narrowed) {
        sprig_storage_close(x->narrowed);
    }
    sprig_buf_clear(&x->req_copy);
    sprig_buf_clear(&x->reply);
    pthread_mutex_destroy(&x->lock);
    sprig__free(x);
    pthread_mutex_lock(&srv->lock);
    if (--srv->submits == 0) {
        pthread_cond_broadcast(&srv->sub_cond);
    }
    pthread_mutex_unlock(&srv->lock);
}

/* The handler returned earlier: encode the answer here and hand the job
 * to the loop thread. */
static void
finish_later(sprig_api_ctx *x)
{
    sprig__job *job = x->job;
    sprig__call c = {x->srv, x->sess, x->route, x->id, false, job};
    c.who = job->who;
    sprig__custom_resp resp = {0};
    if (x->rc == 0) {
        resp.data = x->reply;
        memset(&x->reply, 0, sizeof x->reply);
    } else {
        sprig__err(x->rc, "%s", x->msg);
    }
    sprig__request_answer(&c, x->rc, &resp, &job->out);
    sprig_buf_clear(&resp.data);
    sprig__job_finish(x->srv, job);
    sprig__api_ctx_drop(x); /* after the job is queued: teardown finds it */
}

/* Record the answer; finish now unless the handler is still running.
 * SPRIG_EINVAL when the request was answered already. */
static int
answer(sprig_api_ctx *x, int rc, const char *msg, const void *data, size_t len)
{
    pthread_mutex_lock(&x->lock);
    bool twice = x->claimed;
    x->claimed = true;
    pthread_mutex_unlock(&x->lock);
    if (twice) {
        return sprig__err(SPRIG_EINVAL,
                          "the request to '%s' was answered "
                          "already",
                          x->route->api.name);
    }
    x->rc = rc;
    snprintf(x->msg, sizeof x->msg, "%s", msg ? msg : "");
    if (rc == 0 && len && sprig_buf_append(&x->reply, data, len)) {
        x->rc = SPRIG_ENOMEM;
        snprintf(x->msg, sizeof x->msg, "out of memory for the answer");
    }
    pthread_mutex_lock(&x->lock);
    x->answered = true;
    bool later = !x->in_handler;
    pthread_mutex_unlock(&x->lock);
    if (later) {
        finish_later(x);
    }
    return SPRIG_OK;
}

int
sprig_api_reply(sprig_api_ctx *ctx, const void *data, size_t len)
{
    if (!ctx) {
        return sprig__err(SPRIG_EINVAL, "sprig_api_reply: ctx is NULL");
    }
    return answer(ctx, SPRIG_OK, NULL, data, data ? len : 0);
}

static bool
code_ok(int code)
{
    return (code <= SPRIG_ENOTFOUND && code >= SPRIG_ERANGE) ||
           (code <= SPRIG_EAPI_FIRST && code >= SPRIG_EAPI_LAST);
}

int
sprig_api_fail(sprig_api_ctx *ctx, int code, const char *fmt, ...)
{
    if (!ctx) {
        return sprig__err(SPRIG_EINVAL, "sprig_api_fail: ctx is NULL");
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    va_end(ap);
    if (!code_ok(code)) {
        char bad[512];
        int k = snprintf(bad, sizeof bad,
                         "the handler of '%s' failed with code %d, which is "
                         "neither a SPRIG_E* code nor -30000..-39999: ",
                         ctx->route->api.name, code);
        size_t at = k > 0 && (size_t)k < sizeof bad ? (size_t)k : 0;
        memcpy(bad + at, msg, strnlen(msg, sizeof bad - at - 1));
        bad[at + strnlen(msg, sizeof bad - at - 1)] = 0;
        int rc = answer(ctx, SPRIG_EINVAL, bad, NULL, 0);
        return rc ? rc : SPRIG_EINVAL;
    }
    int rc = answer(ctx, code, msg, NULL, 0);
    return rc ? rc : code;
}

/* ---- what a handler reads ------------------------------------------------ */

sprig_bytes
sprig_api_request(const sprig_api_ctx *ctx)
{
    return ctx ? ctx->req : (sprig_bytes){NULL, 0};
}

const char *
sprig_api_name(const sprig_api_ctx *ctx)
{
    return ctx ? ctx->route->api.name : "";
}

const sprig_server_client *
sprig_api_client(const sprig_api_ctx *ctx)
{
    return ctx ? &ctx->sess->info : NULL;
}

sprig_identity *
sprig_api_identity(const sprig_api_ctx *ctx)
{
    return ctx ? ctx->job->who : NULL;
}

const char *
sprig_api_identity_name(const sprig_api_ctx *ctx)
{
    sprig_identity *who = sprig_api_identity(ctx);
    return who ? sprig_identity_name(who) : "";
}

sprig_storage *
sprig_api_storage_unrestricted(const sprig_api_ctx *ctx)
{
    return ctx ? ctx->srv->st : NULL;
}

sprig_server *
sprig_api_server(const sprig_api_ctx *ctx)
{
    return ctx ? ctx->srv : NULL;
}

void *
sprig_api_client_data(const sprig_api_ctx *ctx)
{
    return ctx ? ctx->sess->user_data : NULL;
}

int
sprig_api_storage(sprig_api_ctx *ctx, sprig_storage **out)
{
    if (!ctx || !out) {
        return sprig__err(SPRIG_EINVAL, "sprig_api_storage: NULL argument");
    }
    const sprig_server_options *o = &ctx->srv->opts;
    sprig_identity *who = ctx->job->who;
    if (o->open_access || !ctx->srv->auth || (o->authorize && !who)) {
        *out = ctx->srv->st; /* nothing is checked on this server */
        return SPRIG_OK;
    }
    if (!who) {
        return sprig__err(SPRIG_EPERM, "the caller has not authenticated");
    }
    int rc = ctx->narrowed ? SPRIG_OK
                           : sprig_storage_narrow(ctx->srv->st, ctx->srv->auth,
                                                  who, &ctx->narrowed);
    *out = rc ? NULL : ctx->narrowed;
    return rc;
}

/* ---- registration and listing -------------------------------------------- */

static int
check_args(sprig_server *srv, const char *name, const char *action,
           sprig_api_handler handler, const sprig_api_options *o)
{
    if (!srv || !handler) {
        return sprig__err(SPRIG_EINVAL, "register_api: NULL server or "
                                        "handler");
    }
    int rc = sprig__api_name_check(name, "custom API name");
    if (rc == 0 && !printable(action, 64)) {
        rc = sprig__err(SPRIG_EINVAL,
                        "custom API '%s': the action must be 1-64 "
                        "printable bytes",
                        name);
    }
    if (rc == 0 && o->resource && !printable(o->resource, 1000)) {
        rc = sprig__err(SPRIG_EINVAL,
                        "custom API '%s': the resource must be 1-1000 "
                        "printable bytes",
                        name);
    }
    return rc;
}

/* The program side of a new row, kept by the server until it is freed. */
static custom_row *
row_keep(sprig_server *srv, sprig_api_handler fn, void *udata,
         const char *resource)
{
    size_t n = resource ? strlen(resource) + 2 : 1;
    custom_row *cr = sprig__calloc(1, sizeof *cr + n);
    if (!cr) {
        return NULL;
    }
    cr->fn = fn;
    cr->udata = udata;
    if (resource) {
        snprintf(cr->resource, n, "=%s", resource);
    }
    pthread_mutex_lock(&srv->lock);
    cr->next = srv->custom_rows;
    srv->custom_rows = cr;
    pthread_mutex_unlock(&srv->lock);
    return cr;
}

int
sprig_server_register_api_with(sprig_server *srv, const char *name,
                               const char *action, sprig_api_handler handler,
                               void *udata, const sprig_api_options *o)
{
    sprig_api_options defaults;
    if (!o) {
        sprig_api_options_init(&defaults);
        o = &defaults;
    }
    int rc = check_args(srv, name, action, handler, o);
    custom_row *cr = rc ? NULL : row_keep(srv, handler, udata, o->resource);
    if (rc || !cr) {
        return rc ? rc : sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    sprig__api row = sprig__api_custom;
    row.name = name;
    row.action = action;
    row.summary = o->summary ? o->summary : "";
    row.access = o->write ? SPRIG__WRITE : SPRIG__READ;
    row.where =
        o->run == SPRIG_API_RUN_LOOP ? SPRIG__RUN_SUBMIT : SPRIG__RUN_WORKER;
    if (o->resource) {
        row.resource.parts[0] = cr->resource; /* "=<resource>" */
    }
    return sprig__registry_add(&srv->reg, &row, custom_handler, cr);
}

int
sprig_server_register_api(sprig_server *srv, const char *name,
                          const char *action, sprig_api_handler handler,
                          void *udata)
{
    return sprig_server_register_api_with(srv, name, action, handler, udata,
                                          NULL);
}

int
sprig_server_apis(sprig_server *srv, sprig_server_api_info *out, size_t cap,
                  size_t *n)
{
    if (!srv || !n || (cap && !out)) {
        return sprig__err(SPRIG_EINVAL, "server, n (and out when cap > 0) "
                                        "are needed");
    }
    *n = sprig__registry_count(&srv->reg);
    for (size_t i = 0; i < cap && i < *n; i++) {
        const sprig__route *rt = sprig__registry_at(&srv->reg, i);
        if (!rt) {
            *n = i; /* cannot shrink, but be safe */
            break;
        }
        out[i].name = rt->api.name;
        out[i].action = rt->api.action;
        out[i].custom = rt->handler == custom_handler;
        out[i].write = rt->api.access == SPRIG__WRITE;
    }
    return SPRIG_OK;
}

/* ---- server.apis: the listing over the wire ------------------------------ */

/* Copy row `rt` into entry `e` (its resource pattern in `pat`). */
static int
entry_fill(sprig__api_entry *e, const sprig__route *rt, const char *pat)
{
    e->name = sprig__strdup(rt->api.name);
    e->action = sprig__strdup(rt->api.action);
    e->resource = sprig__strdup(pat);
    e->summary = sprig__strdup(rt->api.summary ? rt->api.summary : "");
    e->custom = rt->handler == custom_handler;
    e->write = rt->api.access == SPRIG__WRITE;
    bool ok = e->name && e->action && e->resource && e->summary;
    return ok ? SPRIG_OK : sprig__err(SPRIG_ENOMEM, "out of memory");
}

/* Is row `rt` listed for the caller?  Built-in rows always (the protocol
 * is public; their resources depend on the request); a custom row when
 * the caller may call it (its resource is fixed: `pat`). */
static bool
listed(sprig__call *c, const sprig__route *rt, const char *pat)
{
    if (rt->handler != custom_handler) {
        return true;
    }
    bool ok = sprig__request_allowed(c, rt->api.action, pat) == 0;
    return ok;
}

int
sprig__server_apis(sprig__call *c, void *rq, void *rs)
{
    (void)rq;
    sprig__registry *reg = &c->srv->reg;
    size_t n = sprig__registry_count(reg);
    sprig__apis_list *l = sprig__calloc(1, sizeof *l);
    if (!l || !(l->items = sprig__calloc(n ? n : 1, sizeof *l->items))) {
        sprig__free(l);
        return sprig__err(SPRIG_ENOMEM, "out of memory");
    }
    ((sprig__apis_resp *)rs)->apis = l; /* the path frees it */
    sprig_buf pat = {0};
    int rc = SPRIG_OK;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const sprig__route *rt = sprig__registry_at(reg, i);
        rc = rt ? sprig__resource_pattern(&rt->api, &pat) : SPRIG_OK;
        if (rc == 0 && rt && listed(c, rt, (const char *)pat.data)) {
            rc = entry_fill(&l->items[l->n++], rt, (const char *)pat.data);
        }
    }
    sprig_buf_clear(&pat);
    return rc;
}

void
sprig__api_rows_free(sprig_server *srv)
{
    for (custom_row *cr = srv->custom_rows, *next; cr; cr = next) {
        next = cr->next;
        sprig__free(cr);
    }
    srv->custom_rows = NULL;
}
