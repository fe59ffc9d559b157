/*
 * basic-local.c -- the first Sprig example: one database in a local
 * directory (access model M1, the way SQLite is used), the counterpart of
 * BonsaiDb's basic-local example.  It declares a schema with a collection of
 * messages whose ids the database assigns, opens the database with
 * sprig_db_open_local(), inserts two messages, reads one back by its id,
 * lists them all and closes.  Everything it uses is in <sprig/sprig.h>.
 *
 * Build (outside the Sprig tree, after `make install`):
 *     cc basic-local.c $(pkg-config --cflags --libs sprig) -o basic-local
 * Run:
 *     ./basic-local [DIRECTORY]        (default: basic-local.sprig)
 * Run it twice: the messages of the first run are still there.
 */
#include <sprig/sprig.h>

#include <stdio.h>
#include <time.h>

/*
 * The schema.  A schema is a named set of collections, declared as plain
 * static data.  "Message" keeps its documents under u64 ids: inserting
 * without an id pushes the next one (1, 2, 3, ...).  A collection could
 * instead use natural ids (SPRIG_ID_NATURAL), chosen by the writer, such as
 * a user name.
 */
static const sprig_collection_def collections[] = {
    {.name = "Message", .id_kind = SPRIG_ID_U64},
};
static const sprig_schema_def schema = {
    .name = "basic-local",
    .collections = collections,
    .n_collections = 1,
};

/* Every Sprig function returns 0 or a negative SPRIG_E* code; on failure
 * sprig_strerror() names the code and sprig_errmsg() tells the detail. */
static int
report(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "basic-local: %s: %s: %s\n", what, sprig_strerror(rc),
                sprig_errmsg());
    }
    return rc;
}

/* Insert one message.  Contents are opaque bytes to Sprig; we store JSON
 * (like BonsaiDb's Message: a timestamp and some text).  Passing NULL as
 * the id asks the database to assign one; `out` receives the new header:
 * the id and revision 1. */
static int
insert_message(sprig_db *db, const char *text, uint64_t *id)
{
    char json[256];
    snprintf(json, sizeof json, "{\"timestamp\":%lld,\"contents\":\"%s\"}",
             (long long)time(NULL), text);
    sprig_header_buf hb;
    int rc = sprig_insert(db, "Message", NULL, sprig_str(json), &hb);
    if (report(rc, "inserting a message")) {
        return rc;
    }
    /* A u64 id is stored as 8 order-preserving bytes: decode it back. */
    sprig_key_decode_u64(sprig_header_of(&hb).id, id);
    printf("Inserted message %llu (revision %llu)\n", (unsigned long long)*id,
           (unsigned long long)hb.revision);
    return 0;
}

/* Read one message by id.  The document (header + contents) is ours to
 * free with sprig_doc_free(). */
static int
print_message(sprig_db *db, uint64_t id)
{
    uint8_t key[8];
    sprig_doc *doc;
    int rc = sprig_get(db, "Message", sprig_id_u64(id, key), &doc);
    if (report(rc, "getting a message")) {
        return rc;
    }
    sprig_bytes body = sprig_doc_contents(doc);
    printf("Message %llu: %.*s\n", (unsigned long long)id, (int)body.len,
           (const char *)body.data);
    sprig_doc_free(doc);
    return 0;
}

/* List every message in id order: a NULL range means all ids, limit 0
 * means no limit.  Documents in the list are borrowed from it. */
static int
print_all_messages(sprig_db *db)
{
    sprig_doc_list *list;
    int rc = sprig_list(db, "Message", NULL, SPRIG_ASC, 0, &list);
    if (report(rc, "listing messages")) {
        return rc;
    }
    printf("All messages (%zu):\n", sprig_doc_list_count(list));
    for (size_t i = 0; i < sprig_doc_list_count(list); i++) {
        const sprig_doc *doc = sprig_doc_list_get(list, i);
        uint64_t id = 0;
        sprig_key_decode_u64(sprig_doc_header(doc).id, &id);
        sprig_bytes body = sprig_doc_contents(doc);
        printf("  %llu: %.*s\n", (unsigned long long)id, (int)body.len,
               (const char *)body.data);
    }
    sprig_doc_list_free(list);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "basic-local.sprig";

    /* Open (creating if needed) the directory, register the schema and
     * get a handle on its one database.  Closing the handle closes it. */
    sprig_db *db;
    if (report(sprig_db_open_local(path, &schema, &db), "opening")) {
        return 1;
    }

    uint64_t first, second;
    int rc = insert_message(db, "Hello, World!", &first);
    rc = rc ? rc : insert_message(db, "Another message", &second);
    rc = rc ? rc : print_message(db, first);
    rc = rc ? rc : print_all_messages(db);

    sprig_db_close(db);
    return rc ? 1 : 0;
}
