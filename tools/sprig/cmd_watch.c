/*
 * cmd_watch.c -- watching a database from the command line: `sprig
 * pubsub subscribe|publish` (the database's PubSub hub: messages that are
 * not stored) and `sprig log` (the transaction log: executed transactions
 * and the documents they changed, --follow to keep printing new ones).
 * Streams print one JSON value a line (NDJSON) and flush each, so they
 * can be piped; SIGINT or SIGTERM ends them (exit 0).  `sprig watch`
 * follows the changes feed (sprig_changes_open/next, issue 15): a line
 * per document change.  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char pubsub_usage[] =
    "usage: sprig [--url URL] [--db NAME] pubsub COMMAND ...\n"
    "\n"
    "  pubsub subscribe TOPIC... [--count N] [--timeout MS]\n"
    "  pubsub publish TOPIC MESSAGE\n"
    "\n"
    "The database's PubSub hub: a message published to a topic reaches the\n"
    "subscribers of that topic at that moment; nothing is stored.  Useful\n"
    "with --url (a server), where publishers and subscribers are different\n"
    "processes.  Each command takes --help.\n";

static const char subscribe_usage[] =
    "usage: sprig [--url URL] [--db NAME] pubsub subscribe TOPIC...\n"
    "                 [--count N] [--timeout MS]\n"
    "\n"
    "Subscribe to the TOPICs and print each message as one line\n"
    "{\"topic\":..,\"message\":..} (the message as JSON when it is JSON, else\n"
    "as a string) until Ctrl-C, or until N messages came (--count), or MS\n"
    "milliseconds passed without one (--timeout; exit 0 either way).  Says\n"
    "on stderr when it is subscribed.\n";

static const char publish_usage[] =
    "usage: sprig [--url URL] [--db NAME] pubsub publish TOPIC MESSAGE\n"
    "\n"
    "Publish MESSAGE (its bytes as given; - reads stdin) to TOPIC.  Prints\n"
    "{\"topic\":..,\"published\":true}.\n";

static const char log_usage[] =
    "usage: sprig [--path DIR | --url URL] [--db NAME] log [--since ID]\n"
    "                 [--limit N] [--follow]\n"
    "\n"
    "The transaction log of the database: executed transactions with id\n"
    "--since ID or later (default 1), oldest first, at most N (default\n"
    "1000), as a JSON array of {\"transaction\":..,\"time\":..,\"changes\":\n"
    "[{\"collection\":..,\"id\":..,\"revision\":..,\"deleted\":..}]}.\n"
    "--follow prints them one a line instead and keeps printing new ones\n"
    "as they commit (polling every 200 ms) until Ctrl-C.\n"
    "\n"
    "`sprig watch` follows the changes feed instead: each change a line,\n"
    "with the contents if asked, woken by commits rather than polling.\n";

static const char watch_usage[] =
    "usage: sprig [--path DIR | --url URL] [--db NAME] watch [COLLECTION]\n"
    "                 [--from ID] [--limit N] [--contents] [--timeout MS]\n"
    "\n"
    "Follow the database's changes feed (of COLLECTION only, if given):\n"
    "print each document change of the transactions committed after\n"
    "transaction ID (default: the last one now, so only new changes) as\n"
    "one line {\"transaction\":..,\"time\":..,\"collection\":..,\"id\":..,\n"
    "\"revision\":..,\"deleted\":..} -- with --contents also \"contents\"\n"
    "(JSON when it is JSON; null when the document was deleted or changed\n"
    "again since) -- until Ctrl-C, N changes (--limit), or MS milliseconds\n"
    "without one (--timeout); exit 0 either way.  Resume after the last\n"
    "\"transaction\" printed with --from.  Says on stderr when it follows.\n";

/* ---- stopping on a signal ---------------------------------------------- */

static volatile sig_atomic_t stop_signal;
static struct sigaction old_int, old_term; /* given back when done */

static void
on_signal(int sig)
{
    stop_signal = sig;
}

/* SIGINT and SIGTERM set stop_signal (no restart: waits return). */
static void
catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    stop_signal = 0;
}

static void
restore_signals(void)
{
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
}

/* Print one line of JSON, flushed.  Returns false when stdout is gone. */
static bool
print_line(jw *w)
{
    bool ok = !w->failed;
    if (ok) {
        fwrite(w->buf.data, 1, w->buf.len, stdout);
        fputc('\n', stdout);
        ok = fflush(stdout) == 0 && !ferror(stdout);
    }
    jw_free(w);
    return ok;
}

/* ---- pubsub ------------------------------------------------------------ */

/* The database --db of the storage, opened. */
static int
open_db(cli *c)
{
    int rc = cli_open(c, false);
    if (rc != CLI_CONTINUE || c->db) {
        return rc;
    }
    int src = sprig_storage_open_database(c->st, c->dbname, &c->db);
    return src ? cli_fail(src) : CLI_CONTINUE;
}

/* Receive until a signal, `count` messages (0: no bound) or `timeout_ms`
 * of silence (0: none). */
static int
receive(sprig_subscriber *s, uint64_t count, uint64_t timeout_ms)
{
    uint64_t got = 0, quiet_ms = 0;
    while (!stop_signal && (count == 0 || got < count)) {
        sprig_message *m = NULL;
        int src = sprig_subscriber_recv(s, 200, &m);
        if (src == SPRIG_ETIMEDOUT) {
            quiet_ms += 200;
            if (timeout_ms && quiet_ms >= timeout_ms) {
                break;
            }
            continue;
        }
        if (src) {
            return cli_fail(src);
        }
        quiet_ms = 0;
        got++;
        jw w = {0};
        jw_raw(&w, "{\"topic\":");
        jw_str(&w, sprig_message_topic(m));
        jw_raw(&w, ",\"message\":");
        jw_contents(&w, sprig_message_payload(m));
        jw_raw(&w, "}");
        sprig_message_free(m);
        if (!print_line(&w)) {
            return cli_err(SPRIG_EIO, "cannot write the output");
        }
    }
    return CLI_OK;
}

static int
pubsub_subscribe(cli *c, int argc, char **argv)
{
    cli_args a;
    const char *count_arg = NULL, *timeout_arg = NULL;
    uint64_t count = 0, timeout_ms = 0;
    const cli_opt opts[] = {{"--count", &count_arg, NULL},
                            {"--timeout", &timeout_arg, NULL},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, subscribe_usage, 1, CLI_MAX_POS, &a);
    if (rc == CLI_CONTINUE && count_arg &&
        !cli_parse_uint(count_arg, UINT64_MAX, &count)) {
        rc = cli_usage(subscribe_usage, "--count '%s' is not a number",
                       count_arg);
    }
    if (rc == CLI_CONTINUE && timeout_arg &&
        !cli_parse_uint(timeout_arg, UINT32_MAX, &timeout_ms)) {
        rc = cli_usage(subscribe_usage, "--timeout '%s' is not a number",
                       timeout_arg);
    }
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_subscriber *s = NULL;
    int src = sprig_subscriber_new(c->db, &s);
    for (int i = 0; src == 0 && i < a.n; i++) {
        src = sprig_subscribe(s, sprig_str(a.pos[i]));
    }
    if (src == 0) {
        fprintf(stderr,
                "sprig: subscribed to %d topic%s of database '%s' "
                "(Ctrl-C stops)\n",
                a.n, a.n == 1 ? "" : "s", c->dbname);
        catch_signals();
        rc = receive(s, count, timeout_ms);
        restore_signals();
    }
    sprig_subscriber_free(s);
    return src ? cli_fail(src) : rc;
}

static int
pubsub_publish(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, publish_usage, 2, 2, &a);
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    sprig_buf in = {0};
    sprig_bytes payload = sprig_str(a.pos[1]);
    if (strcmp(a.pos[1], "-") == 0) {
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
            if (sprig_buf_append(&in, chunk, n) != 0) {
                sprig_buf_clear(&in);
                return cli_fail(SPRIG_ENOMEM);
            }
        }
        payload = sprig_buf_bytes(&in);
    }
    int src = sprig_publish(c->db, sprig_str(a.pos[0]), payload);
    sprig_buf_clear(&in);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_raw(&w, "{\"topic\":");
    jw_cstr(&w, a.pos[0]);
    jw_raw(&w, ",\"published\":true}");
    return jw_print(&w);
}

static const cli_cmd pubsub_cmds[] = {
    {"subscribe", pubsub_subscribe},
    {"publish", pubsub_publish},
    {NULL, NULL},
};

int
cli_cmd_pubsub(cli *c, int argc, char **argv)
{
    return cli_dispatch(c, pubsub_cmds, argc - 1, argv + 1, pubsub_usage);
}

/* ---- log --------------------------------------------------------------- */

/* "2026-12-06T09:42:07.123Z" */
static void
jw_time(jw *w, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char b[40];
    gmtime_r(&t, &tm);
    size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + n, sizeof b - n, ".%03uZ", (unsigned)(ms % 1000));
    jw_cstr(w, b);
}

/* The id kinds of the collections of the database's schema, looked up
 * once (ids print as numbers in u64-id collections, strings otherwise). */
typedef struct kinds {
    size_t n;
    char name[64][128];
    sprig_id_kind kind[64];
} kinds;

static void
add_kinds(kinds *k, const sprig_schema_def *s)
{
    for (size_t j = 0; j < s->n_collections && k->n < 64; j++) {
        snprintf(k->name[k->n], sizeof k->name[0], "%s",
                 s->collections[j].name);
        k->kind[k->n++] = s->collections[j].id_kind;
    }
}

static void
load_kinds(cli *c, kinds *k)
{
    sprig_database_list *dl = NULL;
    sprig_schema_list *sl = NULL;
    const char *schema = NULL;
    k->n = 0;
    if (sprig_storage_list_databases(c->st, &dl) != 0 ||
        sprig_storage_list_schemas(c->st, &sl) != 0) {
        sprig_database_list_free(dl);
        return;
    }
    for (size_t i = 0; i < sprig_database_list_count(dl); i++) {
        if (strcmp(sprig_database_list_name(dl, i), c->dbname) == 0) {
            schema = sprig_database_list_schema(dl, i);
        }
    }
    for (size_t i = 0; schema && i < sprig_schema_list_count(sl); i++) {
        const sprig_schema_def *s = sprig_schema_list_get(sl, i);
        if (strcmp(s->name, schema) == 0) {
            add_kinds(k, s);
        }
    }
    sprig_schema_list_free(sl);
    sprig_database_list_free(dl);
}

static sprig_id_kind
kind_of(const kinds *k, const char *coll)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->name[i], coll) == 0) {
            return k->kind[i];
        }
    }
    return SPRIG_ID_NATURAL;
}

/* Entry i of `l` as one JSON object. */
static void
write_entry(jw *w, const kinds *k, const sprig_txn_log *l, size_t i)
{
    jw_raw(w, "{\"transaction\":");
    jw_u64(w, sprig_txn_log_id(l, i));
    jw_raw(w, ",\"time\":");
    jw_time(w, sprig_txn_log_timestamp_ms(l, i));
    jw_raw(w, ",\"changes\":[");
    for (size_t j = 0; j < sprig_txn_log_change_count(l, i); j++) {
        sprig_change ch;
        if (sprig_txn_log_change(l, i, j, &ch) != 0) {
            continue;
        }
        sprig_id_kind kind = kind_of(k, ch.collection);
        jw_raw(w, j ? ",{\"collection\":" : "{\"collection\":");
        jw_cstr(w, ch.collection);
        jw_raw(w, ",\"id\":");
        jw_id(w, kind, ch.id);
        jw_raw(w, ",\"revision\":");
        jw_u64(w, ch.revision);
        jw_raw(w, ch.deleted ? ",\"deleted\":true}" : ",\"deleted\":false}");
    }
    jw_raw(w, "]}");
}

/* Follow the log from `since`: print new entries a line each. */
static int
follow(cli *c, const kinds *k, uint64_t since)
{
    catch_signals();
    int rc = CLI_OK;
    while (!stop_signal && rc == CLI_OK) {
        sprig_txn_log *l = NULL;
        int src = sprig_list_executed_txns(c->db, since, 0, &l);
        if (src) {
            rc = cli_fail(src);
            break;
        }
        size_t n = sprig_txn_log_count(l);
        for (size_t i = 0; i < n && rc == CLI_OK; i++) {
            jw w = {0};
            write_entry(&w, k, l, i);
            since = sprig_txn_log_id(l, i) + 1;
            rc = print_line(&w) ? CLI_OK
                                : cli_err(SPRIG_EIO, "cannot write the output");
        }
        sprig_txn_log_free(l);
        if (n == 0) {
            usleep(200 * 1000);
        }
    }
    restore_signals();
    return rc;
}

/* The entries from `since` as one JSON array. */
static int
print_log(cli *c, const kinds *k, uint64_t since, uint32_t limit)
{
    sprig_txn_log *l = NULL;
    int src = sprig_list_executed_txns(c->db, since, limit, &l);
    if (src) {
        return cli_fail(src);
    }
    jw w = {0};
    jw_raw(&w, "[");
    for (size_t i = 0; i < sprig_txn_log_count(l); i++) {
        jw_raw(&w, i ? "," : "");
        write_entry(&w, k, l, i);
    }
    jw_raw(&w, "]");
    sprig_txn_log_free(l);
    return jw_print(&w);
}

int
cli_cmd_log(cli *c, int argc, char **argv)
{
    cli_args a;
    const char *since_arg = NULL, *limit_arg = NULL;
    bool follow_flag = false;
    uint64_t since = 1, limit = 1000;
    const cli_opt opts[] = {{"--since", &since_arg, NULL},
                            {"--limit", &limit_arg, NULL},
                            {"--follow", NULL, &follow_flag},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, log_usage, 0, 0, &a);
    if (rc == CLI_CONTINUE && since_arg &&
        !cli_parse_uint(since_arg, UINT64_MAX, &since)) {
        rc = cli_usage(log_usage, "--since '%s' is not a number", since_arg);
    }
    if (rc == CLI_CONTINUE && limit_arg &&
        (!cli_parse_uint(limit_arg, 1000, &limit) || limit == 0)) {
        rc = cli_usage(log_usage,
                       "--limit '%s' is not a number from 1 to "
                       "1000",
                       limit_arg);
    }
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    static kinds k; /* large: not on the stack */
    load_kinds(c, &k);
    return follow_flag ? follow(c, &k, since)
                       : print_log(c, &k, since, (uint32_t)limit);
}

/* ---- watch: the changes feed -------------------------------------------- */

/* One change as one JSON line. */
static bool
print_change(const kinds *k, const sprig_change_event *e, bool contents)
{
    jw w = {0};
    jw_raw(&w, "{\"transaction\":");
    jw_u64(&w, e->txn_id);
    jw_raw(&w, ",\"time\":");
    jw_time(&w, e->timestamp_ms);
    jw_raw(&w, ",\"collection\":");
    jw_cstr(&w, e->collection);
    jw_raw(&w, ",\"id\":");
    jw_id(&w, kind_of(k, e->collection), e->id);
    jw_raw(&w, ",\"revision\":");
    jw_u64(&w, e->revision);
    jw_raw(&w, e->deleted ? ",\"deleted\":true" : ",\"deleted\":false");
    if (contents) {
        jw_raw(&w, ",\"contents\":");
        if (e->has_contents) {
            jw_contents(&w, e->contents);
        } else {
            jw_raw(&w, "null");
        }
    }
    jw_raw(&w, "}");
    return print_line(&w);
}

/* Print changes of `f` until a signal, `limit` of them (0: no bound) or
 * `timeout_ms` (-1: none) without one. */
static int
watch_loop(sprig_changes *f, const kinds *k, uint64_t limit, long timeout_ms,
           bool contents)
{
    uint64_t n = 0;
    long quiet = 0;
    while (!stop_signal && (limit == 0 || n < limit)) {
        sprig_change_event e;
        int src = sprig_changes_next(f, 200, &e);
        if (src == SPRIG_ETIMEDOUT) {
            quiet += 200;
            if (timeout_ms >= 0 && quiet >= timeout_ms) {
                break;
            }
            continue;
        }
        if (src) {
            return cli_fail(src);
        }
        quiet = 0;
        n++;
        if (!print_change(k, &e, contents)) {
            return cli_err(SPRIG_EIO, "cannot write the output");
        }
    }
    return CLI_OK;
}

/* Parse watch's numeric options; CLI_CONTINUE when they are good. */
static int
watch_numbers(const char *from_arg, const char *limit_arg,
              const char *timeout_arg, uint64_t *from, uint64_t *limit,
              long *timeout_ms)
{
    uint64_t t = 0;
    if (from_arg && !cli_parse_uint(from_arg, UINT64_MAX - 1, from)) {
        return cli_usage(watch_usage, "--from '%s' is not a number", from_arg);
    }
    if (limit_arg && !cli_parse_uint(limit_arg, UINT64_MAX, limit)) {
        return cli_usage(watch_usage, "--limit '%s' is not a number",
                         limit_arg);
    }
    if (timeout_arg && !cli_parse_uint(timeout_arg, 86400000, &t)) {
        return cli_usage(watch_usage,
                         "--timeout '%s' is not a number of ms "
                         "(up to a day)",
                         timeout_arg);
    }
    *timeout_ms = timeout_arg ? (long)t : -1;
    return CLI_CONTINUE;
}

int
cli_cmd_watch(cli *c, int argc, char **argv)
{
    cli_args a;
    const char *from_arg = NULL, *limit_arg = NULL, *timeout_arg = NULL;
    bool contents = false;
    uint64_t from = 0, limit = 0;
    long timeout_ms = -1;
    const cli_opt opts[] = {{"--from", &from_arg, NULL},
                            {"--limit", &limit_arg, NULL},
                            {"--timeout", &timeout_arg, NULL},
                            {"--contents", NULL, &contents},
                            {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, watch_usage, 0, 1, &a);
    rc = rc == CLI_CONTINUE ? watch_numbers(from_arg, limit_arg, timeout_arg,
                                            &from, &limit, &timeout_ms)
                            : rc;
    rc = rc == CLI_CONTINUE ? open_db(c) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    int src = from_arg ? 0 : sprig_last_txn_id(c->db, &from);
    sprig_changes *f = NULL;
    src = src ? src
              : sprig_changes_open(c->db, from, a.n ? a.pos[0] : NULL,
                                   contents ? SPRIG_CHANGES_CONTENTS : 0, &f);
    if (src) {
        return cli_fail(src);
    }
    static kinds k; /* large: not on the stack */
    load_kinds(c, &k);
    fprintf(stderr, "watching %s after transaction %llu\n", c->dbname,
            (unsigned long long)from);
    catch_signals();
    rc = watch_loop(f, &k, limit, timeout_ms, contents);
    restore_signals();
    sprig_changes_close(f);
    return rc;
}
