/*
 * demo.c -- `sprig demo`, what `make run` starts: a guided tour of the
 * embedded engine on the storage at --path.  It registers schema "demo"
 * (collection "messages", u64 ids), creates the database (--db, "default")
 * if needed, and narrates inserts, a get, a list, an update, a refused stale
 * update, a multi-document transaction, the transaction log and counts.
 * Data accumulates across runs.  Part of tools/sprig/; see cli.h.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char demo_usage[] =
    "usage: sprig [--path DIR] [--db NAME] demo\n"
    "\n"
    "A guided tour on the storage at --path (default ./sprig-data): register\n"
    "schema \"demo\" (collection \"messages\", u64 ids), create the database\n"
    "(default \"default\") if needed, then insert, get, list, update, meet a\n"
    "conflict, apply a transaction and read the transaction log, narrating\n"
    "each step.  Run it again: the data accumulates.\n";

static const char *const COLL = "messages";

static const sprig_collection_def demo_colls[] = {
    {.name = "messages", .id_kind = SPRIG_ID_U64},
};
static const sprig_schema_def demo_schema = {
    .name = "demo", .collections = demo_colls, .n_collections = 1};

static const char *const greetings[3][2] = {
    {"ada", "Hello from Sprig!"},
    {"grace", "Contents are bytes; these happen to be JSON."},
    {"linus", "Every change adds one to the revision."},
};

/* The state of the tour. */
typedef struct demo {
    cli *c;
    sprig_db *db;
    sprig_header_buf msg[3]; /* the three messages inserted this run */
    char json[256];
} demo;

/* The u64 of an id (0 if it is not one). */
static uint64_t
id_num(sprig_bytes id)
{
    uint64_t n = 0;
    sprig_key_decode_u64(id, &n);
    return n;
}

static sprig_bytes
message(demo *d, const char *from, const char *text)
{
    snprintf(d->json, sizeof d->json, "{\"from\":\"%s\",\"text\":\"%s\"}", from,
             text);
    return sprig_str(d->json);
}

/* Is schema "demo" already registered with "messages" as u64? */
static bool
schema_fits(sprig_storage *st)
{
    sprig_schema_list *l;
    bool fits = false;
    if (sprig_storage_list_schemas(st, &l) != 0) {
        return false;
    }
    for (size_t i = 0; i < sprig_schema_list_count(l); i++) {
        const sprig_schema_def *s = sprig_schema_list_get(l, i);
        for (size_t j = 0;
             strcmp(s->name, demo_schema.name) == 0 && j < s->n_collections;
             j++) {
            fits = fits || (strcmp(s->collections[j].name, COLL) == 0 &&
                            s->collections[j].id_kind == SPRIG_ID_U64);
        }
    }
    sprig_schema_list_free(l);
    return fits;
}

static int
step_setup(demo *d)
{
    cli *c = d->c;
    int rc = cli_open(c, true);
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    bool fits = schema_fits(c->st);
    int src = fits ? 0 : sprig_storage_register_schema(c->st, &demo_schema);
    src = src ? src
              : sprig_storage_create_database(c->st, c->dbname, "demo", true);
    src = src ? src : sprig_storage_open_database(c->st, c->dbname, &c->db);
    uint64_t n = 0;
    src = src ? src : sprig_count(c->db, COLL, NULL, &n);
    if (src) {
        return cli_fail(src);
    }
    d->db = c->db;
    printf("Sprig %s demo -- storage '%s', database '%s'\n\n", sprig_version(),
           c->path, c->dbname);
    printf("1. Schema \"demo\" %s: collection \"%s\", u64 ids.\n"
           "   Database \"%s\" is open; it holds %llu message%s so far.\n\n",
           fits ? "was registered already" : "registered", COLL, c->dbname,
           (unsigned long long)n, n == 1 ? "" : "s");
    return CLI_CONTINUE;
}

static int
step_insert(demo *d)
{
    printf("2. Insert three messages (the database picks the ids):\n");
    for (int i = 0; i < 3; i++) {
        sprig_bytes body = message(d, greetings[i][0], greetings[i][1]);
        int src = sprig_insert(d->db, COLL, NULL, body, &d->msg[i]);
        if (src) {
            return cli_fail(src);
        }
        printf("   id %llu, revision %llu: %s\n",
               (unsigned long long)id_num(sprig_header_of(&d->msg[i]).id),
               (unsigned long long)d->msg[i].revision, d->json);
    }
    printf("\n");
    return CLI_CONTINUE;
}

static int
step_get(demo *d)
{
    sprig_header h = sprig_header_of(&d->msg[0]);
    sprig_doc *doc;
    int src = sprig_get(d->db, COLL, h.id, &doc);
    if (src) {
        return cli_fail(src);
    }
    sprig_bytes body = sprig_doc_contents(doc);
    printf("3. Read message %llu back with sprig_get: revision %llu, "
           "%.*s\n\n",
           (unsigned long long)id_num(h.id),
           (unsigned long long)sprig_doc_header(doc).revision, (int)body.len,
           (const char *)body.data);
    sprig_doc_free(doc);
    return CLI_CONTINUE;
}

static int
step_list(demo *d)
{
    enum { SHOWN = 8 };
    sprig_doc_list *l;
    int src = sprig_list(d->db, COLL, NULL, SPRIG_ASC, 0, &l);
    if (src) {
        return cli_fail(src);
    }
    size_t n = sprig_doc_list_count(l), first = n > SHOWN ? n - SHOWN : 0;
    printf("4. List every message with sprig_list: %zu in all%s\n", n,
           first ? " (the last few shown)" : "");
    for (size_t i = first; i < n; i++) {
        const sprig_doc *doc = sprig_doc_list_get(l, i);
        sprig_header h = sprig_doc_header(doc);
        sprig_bytes body = sprig_doc_contents(doc);
        printf("   %4llu  rev %llu  %.*s\n", (unsigned long long)id_num(h.id),
               (unsigned long long)h.revision, (int)body.len,
               (const char *)body.data);
    }
    printf("\n");
    sprig_doc_list_free(l);
    return CLI_CONTINUE;
}

static int
step_update(demo *d, sprig_header_buf *stale)
{
    *stale = d->msg[1];
    sprig_header old = sprig_header_of(stale);
    sprig_bytes body = message(d, "grace", "Edited: revisions go up by one.");
    int src = sprig_update(d->db, COLL, &old, body, &d->msg[1]);
    if (src) {
        return cli_fail(src);
    }
    printf("5. Update message %llu with sprig_update, naming the revision we "
           "read:\n   revision %llu -> %llu: %s\n\n",
           (unsigned long long)id_num(old.id), (unsigned long long)old.revision,
           (unsigned long long)d->msg[1].revision, d->json);
    return CLI_CONTINUE;
}

static int
step_conflict(demo *d, const sprig_header_buf *stale)
{
    sprig_header old = sprig_header_of(stale);
    sprig_header_buf stored;
    sprig_bytes body = message(d, "mallory", "A write based on old news.");
    int src = sprig_update(d->db, COLL, &old, body, &stored);
    if (src != SPRIG_ECONFLICT) {
        return src ? cli_fail(src)
                   : cli_err(SPRIG_EIO, "a stale update was accepted");
    }
    printf("6. Update message %llu again from the stale revision %llu:\n"
           "   refused with SPRIG_ECONFLICT (\"%s\"); the stored revision is "
           "%llu.\n   Re-read, then retry: no write is lost.\n\n",
           (unsigned long long)id_num(old.id), (unsigned long long)old.revision,
           sprig_strerror(src), (unsigned long long)stored.revision);
    return CLI_CONTINUE;
}

/* Build the transaction: push a reply, update message 3, check message 1. */
static int
build_txn(demo *d, sprig_txn *t)
{
    sprig_header h2 = sprig_header_of(&d->msg[2]);
    sprig_header h0 = sprig_header_of(&d->msg[0]);
    int src = sprig_txn_insert(t, COLL, NULL,
                               message(d, "ada", "A reply, in a transaction."));
    src = src ? src
              : sprig_txn_update(t, COLL, &h2,
                                 message(d, "linus",
                                         "Edited in the same "
                                         "transaction."));
    src = src ? src : sprig_txn_check(t, COLL, h0.id, &h0);
    return src ? cli_fail(src) : CLI_CONTINUE;
}

static int
step_txn(demo *d)
{
    static const char *const what[] = {"insert", "update", "check"};
    sprig_txn *t;
    sprig_txn_result *res = NULL;
    int src = sprig_txn_new(&t);
    int rc = src ? cli_fail(src) : build_txn(d, t);
    if (rc == CLI_CONTINUE && (src = sprig_txn_apply(d->db, t, &res)) != 0) {
        rc = cli_fail(src);
    }
    if (rc == CLI_CONTINUE) {
        printf("7. Apply a transaction of %zu operations, all or nothing: "
               "transaction %llu\n",
               sprig_txn_count(t),
               (unsigned long long)sprig_txn_result_id(res));
        for (size_t i = 0; i < sprig_txn_result_count(res); i++) {
            sprig_header h = sprig_txn_result_header(res, i);
            printf("   %-6s message %llu -> revision %llu\n", what[i],
                   (unsigned long long)id_num(h.id),
                   (unsigned long long)h.revision);
        }
        printf("\n");
    }
    sprig_txn_result_free(res);
    sprig_txn_free(t);
    return rc;
}

static void
print_log_entry(const sprig_txn_log *l, size_t i)
{
    uint64_t ms = sprig_txn_log_timestamp_ms(l, i);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char when[32] = "";
    if (gmtime_r(&secs, &tm)) {
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    }
    printf("   #%-4llu %s.%03u UTC", (unsigned long long)sprig_txn_log_id(l, i),
           when, (unsigned)(ms % 1000));
    for (size_t j = 0; j < sprig_txn_log_change_count(l, i); j++) {
        sprig_change ch;
        if (sprig_txn_log_change(l, i, j, &ch) == 0) {
            printf(" %s/%llu@%llu%s", ch.collection,
                   (unsigned long long)id_num(ch.id),
                   (unsigned long long)ch.revision,
                   ch.deleted ? " (deleted)" : "");
        }
    }
    printf("\n");
}

static int
step_log(demo *d)
{
    enum { SHOWN = 5 };
    uint64_t last;
    sprig_txn_log *l;
    int src = sprig_last_txn_id(d->db, &last);
    uint64_t since = last > SHOWN ? last - SHOWN + 1 : 1;
    src = src ? src : sprig_list_executed_txns(d->db, since, SHOWN, &l);
    if (src) {
        return cli_fail(src);
    }
    printf("8. The transaction log, last %zu entries (id, time, changed "
           "collection/id@revision):\n",
           sprig_txn_log_count(l));
    for (size_t i = 0; i < sprig_txn_log_count(l); i++) {
        print_log_entry(l, i);
    }
    printf("\n");
    sprig_txn_log_free(l);
    return CLI_CONTINUE;
}

static int
step_counts(demo *d)
{
    uint64_t n, last;
    int src = sprig_count(d->db, COLL, NULL, &n);
    src = src ? src : sprig_last_txn_id(d->db, &last);
    if (src) {
        return cli_fail(src);
    }
    cli *c = d->c;
    printf("9. Counts: %llu messages, %llu transactions so far.\n\n"
           "Look at the data with:\n",
           (unsigned long long)n, (unsigned long long)last);
    const char *db = strcmp(c->dbname, "default") == 0 ? "" : c->dbname;
    printf("   %s --path %s%s%s doc list messages\n", c->prog, c->path,
           *db ? " --db " : "", db);
    printf("   %s --path %s%s%s doc get messages %llu\n", c->prog, c->path,
           *db ? " --db " : "", db,
           (unsigned long long)id_num(sprig_header_of(&d->msg[0]).id));
    return CLI_CONTINUE;
}

int
cli_cmd_demo(cli *c, int argc, char **argv)
{
    cli_args a;
    demo d = {.c = c};
    sprig_header_buf stale;
    int rc = cli_parse(argc, argv, NULL, demo_usage, 0, 0, &a);
    rc = rc == CLI_CONTINUE ? step_setup(&d) : rc;
    rc = rc == CLI_CONTINUE ? step_insert(&d) : rc;
    rc = rc == CLI_CONTINUE ? step_get(&d) : rc;
    rc = rc == CLI_CONTINUE ? step_list(&d) : rc;
    rc = rc == CLI_CONTINUE ? step_update(&d, &stale) : rc;
    rc = rc == CLI_CONTINUE ? step_conflict(&d, &stale) : rc;
    rc = rc == CLI_CONTINUE ? step_txn(&d) : rc;
    rc = rc == CLI_CONTINUE ? step_log(&d) : rc;
    rc = rc == CLI_CONTINUE ? step_counts(&d) : rc;
    fflush(stdout);
    return rc == CLI_CONTINUE ? CLI_OK : rc;
}
