/*
 * custom-api-client.c -- a client of custom-api.c's counter API (issue 12).
 *
 * It connects, logs in as "counter-demo", reads the counter, increments it
 * three times (by 1, 2 and 3), shows that a malformed amount comes back as
 * the server's own application error, and then reads the pushes the
 * server sent to every client for each increment ("counter.changed") --
 * from the client's push queue, which keeps every push no callback took.
 *
 * Usage: custom-api-client URL   (what custom-api printed)
 */
#include <sprig/client.h>
#include <sprig/server.h> /* SPRIG_EAPI() */
#include <sprig/sprig.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
check(int rc, const char *what)
{
    if (rc != SPRIG_OK) {
        fprintf(stderr, "custom-api-client: %s: %s: %s\n", what,
                sprig_strerror(rc), sprig_errmsg());
        exit(1);
    }
}

/* Call `api` with text; return its answer as a number. */
static long long
call(sprig_client *c, const char *api, const char *arg)
{
    sprig_buf out = {0};
    check(sprig_client_call(c, api, arg, strlen(arg), &out), api);
    char text[32] = "";
    memcpy(text, out.data, out.len < 31 ? out.len : 31);
    sprig_buf_clear(&out);
    return strtoll(text, NULL, 10);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: custom-api-client URL\n");
        return 2;
    }
    sprig_client *c;
    check(sprig_client_connect(argv[1], NULL, &c), "connect");
    check(sprig_client_authenticate_password(c, "counter-demo",
                                             "counter password"),
          "log in");
    long long start = call(c, "counter.get", "");
    printf("The counter starts at %lld\n", start);
    for (int by = 1; by <= 3; by++) {
        char amount[8];
        snprintf(amount, sizeof amount, "%d", by);
        printf("Incremented by %d: %lld\n", by,
               call(c, "counter.increment", amount));
    }
    sprig_buf out = {0};
    int rc = sprig_client_call(c, "counter.increment", "lots", 4, &out);
    printf("Incrementing by 'lots': %s (application error %d): %s\n",
           rc == SPRIG_EAPI(1) ? "refused" : "unexpected",
           SPRIG_EAPI_FIRST - rc, sprig_errmsg());
    sprig_buf_clear(&out);
    for (int i = 0; i < 3; i++) {
        sprig_client_push *p;
        check(sprig_client_push_next(c, 5000, &p), "push");
        printf("Push %s: %.*s\n", p->api, (int)p->data.len,
               (const char *)p->data.data);
        sprig_client_push_free(p);
    }
    printf("The counter is now %lld (%+lld)\n", call(c, "counter.get", ""),
           call(c, "counter.get", "") - start);
    sprig_client_close(c);
    return 0;
}
