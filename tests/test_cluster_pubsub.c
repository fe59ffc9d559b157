/*
 * test_cluster_pubsub.c -- PubSub across the nodes of a real 3-process
 * cluster (issue 18 item 4; docs/cluster.md "PubSub across nodes"): the
 * "cluster" placement of placement.h (three `sprig serve --cluster`
 * processes on loopback) with a subscriber on every node -- a client of
 * that node alone, plus a `sprig pubsub subscribe` process on the last --
 * and two publishers at once, each a client of a different node (so at
 * least one starts on a follower: its publishes are refused there naming
 * the leader, and its client follows it).  Every subscriber gets every
 * message, in one order shared by all, each publisher's messages in the
 * order it sent them.
 */
#include "placement.h"

static const sprig_collection_def cols[] = {{"items", SPRIG_ID_NATURAL, 0}};
static const sprig_schema_def schema = {"ps", cols, 1};

#define PUBS 30 /* per publisher */

/* A client of node i alone, with database "ps" open once the node has
 * applied its creation (reads are local: a follower may lag). */
static sprig_client *
node_client(placement *p, int i, sprig_db **db)
{
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", p->ws_ports[i]);
    sprig_client *c = placement_cluster_client(url); /* the administrator */
    int rc = -1;
    for (int t = 0; t < 100 && rc != 0; t++) {
        rc = sprig_storage_open_database(sprig_client_storage(c), "ps", db);
        if (rc) {
            usleep(100000);
        }
    }
    SPRIG_OK_(rc);
    return c;
}

typedef struct pub {
    placement *p;
    int node, rc;
    char tag;
    pthread_t thread;
} pub;

static void *
pub_main(void *arg)
{
    pub *a = arg;
    sprig_db *db;
    sprig_client *c = node_client(a->p, a->node, &db);
    for (int i = 0; a->rc == 0 && i < PUBS; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "%c%02d", a->tag, i);
        a->rc = sprig_publish(db, sprig_str("t"), sprig_str(msg));
    }
    if (a->rc) {
        fprintf(stderr, "publisher %c: %s\n", a->tag, sprig_errmsg());
    }
    sprig_db_close(db);
    sprig_client_close(c);
    return NULL;
}

/* `sprig --url NODE --db ps pubsub subscribe t --count N`, its lines in
 * `out`; returns once it says it is subscribed. */
static pid_t
cli_subscriber(placement *p, int i, const char *out)
{
    char url[64], count[16], err[1400];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", p->ws_ports[i]);
    snprintf(count, sizeof count, "%d", 2 * PUBS);
    snprintf(err, sizeof err, "%s.err", out);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        setenv("CLUSTER_PUBSUB_PW", PLACEMENT_PASSWORD, 1);
        execl(getenv("SPRIG_BIN"), "sprig", "--url", url, "--user",
              PLACEMENT_USER, "--password-env", "CLUSTER_PUBSUB_PW", "--db",
              "ps", "pubsub", "subscribe", "t", "--count", count, "--timeout",
              "30000", (char *)NULL);
        _exit(127);
    }
    for (int t = 0; t < 300; t++) {
        char buf[512] = {0};
        FILE *f = fopen(err, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) {
            fclose(f);
        }
        if (n && strstr(buf, "subscribed")) {
            return pid;
        }
        usleep(100000);
    }
    fail_msg("the CLI subscriber did not subscribe");
    return pid;
}

/* Receive 2 x PUBS messages: their payloads, space-separated. */
static void
receive_all(sprig_subscriber *s, sprig_buf *out)
{
    for (int i = 0; i < 2 * PUBS; i++) {
        sprig_message *m;
        SPRIG_OK_(sprig_subscriber_recv(s, 20000, &m));
        sprig_bytes b = sprig_message_payload(m);
        SPRIG_OK_(sprig_buf_append(out, b.data, b.len));
        SPRIG_OK_(sprig_buf_append(out, " ", 1));
        sprig_message_free(m);
    }
    SPRIG_OK_(sprig_buf_append(out, "", 1));
    sprig_message *extra;
    SPRIG_EXPECT(SPRIG_ETIMEDOUT, sprig_subscriber_recv(s, 200, &extra));
}

/* The CLI's lines {"topic":"t","message":"A00"} as the same string. */
static void
cli_payloads(const char *path, sprig_buf *out)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        const char *m = strstr(line, "\"message\":\"");
        assert_non_null(m);
        SPRIG_OK_(sprig_buf_append(out, m + 11, 3));
        SPRIG_OK_(sprig_buf_append(out, " ", 1));
    }
    fclose(f);
    SPRIG_OK_(sprig_buf_append(out, "", 1));
}

static void
assert_publisher_order(const sprig_buf *b, char tag)
{
    const char *at = (const char *)b->data;
    for (int i = 0; i < PUBS; i++) {
        char want[8];
        snprintf(want, sizeof want, "%c%02d ", tag, i);
        const char *f = strstr(at, want);
        if (!f) {
            fail_msg("%s missing or out of order in: %s", want, b->data);
        }
        at = f + strlen(want);
    }
}

static void
test_pubsub_every_node(void **state)
{
    (void)state;
    placement p;
    placement_open(&p, "cluster", tu_tmpdir("cluster_pubsub"), &schema);
    SPRIG_OK_(sprig_storage_create_database(p.st, "ps", "ps", false));
    sprig_client *c[3];
    sprig_db *db[3];
    sprig_subscriber *s[3];
    for (int i = 0; i < 3; i++) {
        c[i] = node_client(&p, i, &db[i]);
        SPRIG_OK_(sprig_subscriber_new(db[i], &s[i]));
        SPRIG_OK_(sprig_subscribe(s[i], sprig_str("t")));
    }
    char cli_out[1300];
    snprintf(cli_out, sizeof cli_out, "%s/cli.out", p.dir);
    pid_t cli = cli_subscriber(&p, 2, cli_out);
    pub pubs[2] = {{&p, 0, 0, 'A', 0}, {&p, 1, 0, 'B', 0}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            pthread_create(&pubs[i].thread, NULL, pub_main, &pubs[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(pubs[i].thread, NULL);
        assert_int_equal(pubs[i].rc, 0);
    }
    sprig_buf got[4] = {{0}};
    for (int i = 0; i < 3; i++) {
        receive_all(s[i], &got[i]);
    }
    int status = 0;
    assert_int_equal(waitpid(cli, &status, 0), cli);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cli_payloads(cli_out, &got[3]);
    print_message("node 1 received: %.96s...\n", (const char *)got[0].data);
    assert_publisher_order(&got[0], 'A');
    assert_publisher_order(&got[0], 'B');
    for (int i = 1; i < 4; i++) { /* one order everywhere */
        assert_string_equal((const char *)got[i].data,
                            (const char *)got[0].data);
    }
    for (int i = 0; i < 4; i++) {
        sprig_buf_clear(&got[i]);
    }
    for (int i = 0; i < 3; i++) {
        sprig_subscriber_free(s[i]);
        sprig_db_close(db[i]);
        sprig_client_close(c[i]);
    }
    placement_close(&p);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], PLACEMENT_NODE_ARG) == 0) {
        return placement_node_main(argc, argv, NULL); /* a cluster node */
    }
    if (!getenv("SPRIG_BIN")) {
        printf("SPRIG_BIN is not set (ctest sets it): skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pubsub_every_node),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
