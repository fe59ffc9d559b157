/*
 * basic-server.c -- Sprig as a server (model M3), in one program.
 *
 * The same program
 *   1. opens a storage and runs a server on it (sprig_server), with its
 *      schema registered directly -- the server program keeps direct
 *      access to its storage, with no networking;
 *   2. lets a user in: the server checks every request against the
 *      permissions of the user the connection logged in as, so the program
 *      creates one (once), in a group granted what the client needs;
 *   3. connects a client to that server over WebSockets on 127.0.0.1, logs
 *      in, and works with documents through the very same sprig.h calls a
 *      local database takes: sprig_insert, sprig_get, sprig_list.
 *
 * Code written against sprig_storage / sprig_db does not change when the
 * database moves to a server: only how the handle was obtained does.
 *
 * Usage: basic-server [STORAGE_DIR]   (default: basic-server.sprig)
 */
#include <sprig/client.h>
#include <sprig/server.h>
#include <sprig/sprig.h>

#include <stdio.h>
#include <stdlib.h>

static const sprig_collection_def collections[] = {
    {.name = "messages", .id_kind = SPRIG_ID_U64},
};
static const sprig_schema_def schema = {"chat", collections, 1};

/* Print a failure with Sprig's detail and leave. */
static void
check(int rc, const char *what)
{
    if (rc != SPRIG_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, sprig_strerror(rc),
                sprig_errmsg());
        exit(1);
    }
}

/* The part that would be the same for a local database. */
static void
use_database(sprig_storage *st)
{
    check(sprig_storage_create_database(st, "chat", "chat", true),
          "create database");
    sprig_db *db;
    check(sprig_storage_open_database(st, "chat", &db), "open database");

    sprig_header_buf h;
    check(sprig_insert(db, "messages", NULL,
                       sprig_str("{\"text\":\"Hello from a client!\"}"), &h),
          "insert");
    uint64_t id;
    check(sprig_key_decode_u64((sprig_bytes){h.id, h.id_len}, &id), "id");
    printf("Inserted message %llu over the network (revision %llu).\n",
           (unsigned long long)id, (unsigned long long)h.revision);

    sprig_doc *doc;
    check(sprig_get(db, "messages", (sprig_bytes){h.id, h.id_len}, &doc),
          "get");
    sprig_bytes c = sprig_doc_contents(doc);
    printf("Read it back: %.*s\n", (int)c.len, (const char *)c.data);
    sprig_doc_free(doc);

    sprig_doc_list *all;
    check(sprig_list(db, "messages", NULL, SPRIG_ASC, 0, &all), "list");
    printf("The server holds %zu message(s).\n", sprig_doc_list_count(all));
    sprig_doc_list_free(all);
    sprig_db_close(db);
}

int
main(int argc, char **argv)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = argc > 1 ? argv[1] : "basic-server.sprig";

    /* 1. The server: port 0 picks a free port on 127.0.0.1. */
    sprig_server_options o;
    sprig_server_options_init(&o);
    o.ws_listen = "127.0.0.1:0";
    sprig_server *srv;
    check(sprig_server_new(&so, &o, &srv), "server");
    check(sprig_storage_register_schema(sprig_server_storage(srv), &schema),
          "register schema");
    check(sprig_server_start(srv), "start");

    /* 2. A user "app" (made on the first run; a real program takes the
     * password from its configuration, never from its source). */
    sprig_auth *auth = sprig_server_auth(srv);
    int rc = sprig_auth_user_create(auth, NULL, "app", "example password");
    if (rc != SPRIG_EEXIST) {
        check(rc, "create user");
        check(sprig_auth_group_create(auth, NULL, "chat-writers"), "group");
        check(sprig_auth_group_grant(auth, NULL, "chat-writers",
                                     "database,document,transaction",
                                     "sprig.db.chat"),
              "grant");
        check(sprig_auth_user_group(auth, NULL, "app", "chat-writers", true),
              "add to group");
    }
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", sprig_server_ws_port(srv));
    printf("Server listening on %s\n", url);

    /* 3. A client in the same program, over the network. */
    sprig_client *client;
    check(sprig_client_connect(url, NULL, &client), "connect");
    check(sprig_client_authenticate_password(client, "app", "example password"),
          "log in");
    use_database(sprig_client_storage(client));
    sprig_client_close(client);

    sprig_server_free(srv); /* shuts down gracefully */
    printf("Server stopped.\n");
    return 0;
}
