/*
 * custom-api.c -- a Sprig server with an API of its own (issue 12), in the
 * spirit of BonsaiDb's custom-api-server example: a counter.
 *
 * The program defines two custom APIs on its Sprig server:
 *   counter.increment  request: the amount as decimal text (empty: 1);
 *                      answer: the new value as decimal text.  The new
 *                      value is also pushed to every connected client as
 *                      "counter.changed".
 *   counter.get        answer: the value as decimal text.
 *   counter.echo       answer: the request's bytes as they are (a check
 *                      that a client's encoding survives the trip; the
 *                      tests call it with `sprig call`).
 * The counter lives in the key-value store of database "counter" (key
 * "value"), which the handlers reach through the server's unrestricted
 * storage (the increment asynchronously: no worker waits for its
 * commit): clients are granted the counter's actions only, so the custom
 * APIs are their only way to it.  A malformed amount is refused with an
 * application error code (SPRIG_EAPI(1)) that the client receives as is.
 *
 * Every request is checked like a built-in one: the user "counter-demo"
 * (made on the first run) is granted "counter.read" and "counter.write"
 * on "sprig.api.counter".  custom-api-client.c is a client of it.
 *
 * Usage: custom-api [STORAGE_DIR]   (default: custom-api.sprig)
 * It prints the URL it listens on (127.0.0.1, a free port) and serves
 * until SIGINT or SIGTERM.
 */
#include <sprig/server.h>
#include <sprig/sprig.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sprig_schema_def schema = {.name = "counter"};

static void
check(int rc, const char *what)
{
    if (rc != SPRIG_OK) {
        fprintf(stderr, "custom-api: %s: %s: %s\n", what, sprig_strerror(rc),
                sprig_errmsg());
        exit(1);
    }
}

/* The counter's database, opened once by main (a handle serves every
 * thread). */
static sprig_db *counter_db;

/* The increment was committed: push the new value to everyone, answer
 * it.  Runs on the storage's writer thread (or a worker): short. */
static void
incremented(sprig_api_ctx *ctx, int rc, const sprig_value *now, void *udata)
{
    (void)udata;
    if (rc) {
        sprig_api_fail(ctx, rc, "%s", sprig_errmsg());
        return;
    }
    char out[24];
    int n = snprintf(out, sizeof out, "%lld", (long long)now->num.i64);
    sprig_push_target everyone = {.to = SPRIG_PUSH_ALL};
    sprig_server_push(sprig_api_server(ctx), &everyone, "counter.changed", out,
                      (size_t)n); /* before the answer, so it arrives first */
    sprig_api_reply(ctx, out, (size_t)n);
}

/* counter.increment: check the amount and start the increment; no thread
 * waits for its commit (sprig_api_kv_increment), the answer comes from
 * `incremented`. */
static void
increment(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_bytes req = sprig_api_request(ctx);
    char text[24] = "1", *end;
    if (req.len >= sizeof text) {
        sprig_api_fail(ctx, SPRIG_EAPI(1), "the amount is too long");
        return;
    }
    if (req.len) {
        memcpy(text, req.data, req.len);
        text[req.len] = 0;
    }
    long long amount = strtoll(text, &end, 10);
    if (*end || end == text) {
        sprig_api_fail(ctx, SPRIG_EAPI(1), "amount '%s' is not a number", text);
        return;
    }
    sprig_value by = sprig_value_of_i64(amount);
    int rc = sprig_api_kv_increment(ctx, "counter", NULL, "value", &by,
                                    incremented, NULL);
    if (rc) {
        sprig_api_fail(ctx, rc, "%s", sprig_errmsg());
    }
}

/* counter.get: the value (0 before the first increment). */
static void
get(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    int64_t v = 0;
    int rc = sprig_kv_get_i64(counter_db, "", "value", &v);
    if (rc && rc != SPRIG_ENOTFOUND) {
        sprig_api_fail(ctx, rc, "%s", sprig_errmsg());
        return;
    }
    char out[24];
    int n = snprintf(out, sizeof out, "%lld", (long long)v);
    sprig_api_reply(ctx, out, (size_t)n);
}

/* counter.echo: the request, answered as it is (from the loop thread: it
 * never blocks). */
static void
echo(sprig_api_ctx *ctx, void *udata)
{
    (void)udata;
    sprig_bytes req = sprig_api_request(ctx);
    sprig_api_reply(ctx, req.data, req.len);
}

/* The user the client logs in as (made once; a real program takes the
 * password from its configuration). */
static void
make_user(sprig_server *srv)
{
    sprig_auth *auth = sprig_server_auth(srv);
    int rc =
        sprig_auth_user_create(auth, NULL, "counter-demo", "counter password");
    if (rc == SPRIG_EEXIST) {
        return;
    }
    check(rc, "create user");
    check(sprig_auth_group_create(auth, NULL, "counter-users"), "group");
    check(sprig_auth_group_grant(auth, NULL, "counter-users",
                                 "counter.read,counter.write",
                                 "sprig.api.counter"),
          "grant");
    check(sprig_auth_user_group(auth, NULL, "counter-demo", "counter-users",
                                true),
          "add to group");
}

int
main(int argc, char **argv)
{
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* every thread inherits it */

    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = argc > 1 ? argv[1] : "custom-api.sprig";
    sprig_storage *st; /* the program's; the server borrows it */
    check(sprig_storage_open(&so, &st), "open storage");
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = "127.0.0.1:0";
    sprig_server *srv;
    check(sprig_server_new_for(st, &o, &srv), "server");
    check(sprig_storage_register_schema(st, &schema), "schema");
    check(sprig_storage_create_database(st, "counter", "counter", true),
          "database");
    check(sprig_storage_open_database(st, "counter", &counter_db), "open");

    sprig_api_options writes;
    sprig_api_options_init(&writes);
    writes.write = true;
    writes.summary = "Add an amount to the counter; push the new value.";
    check(sprig_server_register_api_with(srv, "counter.increment",
                                         "counter.write", increment, NULL,
                                         &writes),
          "register counter.increment");
    check(sprig_server_register_api(srv, "counter.get", "counter.read", get,
                                    NULL),
          "register counter.get");
    sprig_api_options loop;
    sprig_api_options_init(&loop);
    loop.run = SPRIG_API_RUN_LOOP;
    loop.summary = "Answer the request as it is.";
    check(sprig_server_register_api_with(srv, "counter.echo", "counter.read",
                                         echo, NULL, &loop),
          "register counter.echo");
    check(sprig_server_start(srv), "start");
    make_user(srv);
    printf("Counter server on ws://127.0.0.1:%d\n", sprig_server_ws_port(srv));
    fflush(stdout);

    int sig;
    sigwait(&stop, &sig);
    sprig_server_free(srv); /* answers what is in flight, then stops */
    int64_t v = 0;
    sprig_kv_get_i64(counter_db, "", "value", &v);
    printf("Server stopped; the counter is %lld\n", (long long)v);
    sprig_db_close(counter_db);
    sprig_storage_close(st);
    return 0;
}
