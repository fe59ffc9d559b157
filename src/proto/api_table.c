/*
 * api_table.c -- the rows of the API table (see api.h).  Adding an
 * operation to the protocol is adding a row here, its structs in api.h, a
 * handler in the server's dispatch and a remote op in the client; the
 * codecs come from the row, and tests/test_protocol_doc checks that
 * docs/protocol.md describes every row.
 */
#include "proto/api.h"

#define F(S, f, T)                                                             \
    {                                                                          \
#f, T, (uint16_t)offsetof(S, f), 0, 0xffff                             \
    }
#define OPT(S, f, T, p)                                                        \
    {                                                                          \
#f, T, (uint16_t)offsetof(S, f), SPRIG__FIELD_OPTIONAL,                \
            (uint16_t)offsetof(S, p)                                           \
    }
#define N(a) (sizeof(a) / sizeof *(a))
/* RQF/RSF: FIELDS(array) or NONE (each expands to "pointer, count"). */
#define FIELDS(a) a, N(a)
/* A row: name, action, summary, request struct and fields, response
 * struct and fields, resp_on_error, then what the server's request path
 * needs: read or write, where it runs, and the resource spec (kind, parts). */
#define ROW(var, nm, act, sum, RQ, RQF, RS, RSF, on_err, acc, wh, ...)         \
    const sprig__api var = {                                                   \
        nm,           act,        sum,    RQF,          RSF,                   \
        sizeof(RQ),   sizeof(RS), on_err, SPRIG__##acc, SPRIG__RUN_##wh,       \
        {__VA_ARGS__}}
#define RES(kind, ...)                                                         \
    SPRIG__RES_##kind,                                                         \
    {                                                                          \
        __VA_ARGS__                                                            \
    }

static const sprig__field no_fields[1] = {{"", SPRIG__F_BOOL, 0, 0, 0}};
#define NONE no_fields, 0

/* ---- custom APIs (issue 12): a template, not a row of the table --------- */

static const sprig__field custom_req[] = {
    OPT(sprig__custom_req, data, SPRIG__F_BYTES, has_data),
};
static const sprig__field custom_resp[] = {
    F(sprig__custom_resp, data, SPRIG__F_BUF),
};
ROW(sprig__api_custom, "custom", "custom",
    "A custom API: request and response bytes in field data.",
    sprig__custom_req, FIELDS(custom_req), sprig__custom_resp,
    FIELDS(custom_resp), false, READ, WORKER, RES(API, "$name"));

/* server.apis (issue 12): every row the caller may call, custom ones
 * included; granted to every connection (docs/protocol.md). */
static const sprig__field apis_resp[] = {
    F(sprig__apis_resp, apis, SPRIG__F_API_LIST),
};
ROW(sprig__api_server_apis, "server.apis", "api.list",
    "List the APIs this connection may call: name, action, resource "
    "pattern, summary, custom, write.",
    sprig__empty, NONE, sprig__apis_resp, FIELDS(apis_resp), false, READ,
    WORKER, RES(SERVER, NULL));

/* ---- storage administration -------------------------------------------- */

static const sprig__field db_create_req[] = {
    F(sprig__db_create_req, name, SPRIG__F_STR),
    F(sprig__db_create_req, schema, SPRIG__F_STR),
    F(sprig__db_create_req, only_if_needed, SPRIG__F_BOOL),
};
static const sprig__field db_name_req[] = {
    F(sprig__db_name_req, name, SPRIG__F_STR),
};
static const sprig__field db_list_resp[] = {
    F(sprig__db_list_resp, list, SPRIG__F_DB_LIST),
};
static const sprig__field schema_register_req[] = {
    F(sprig__schema_register_req, schema, SPRIG__F_SCHEMA),
};
static const sprig__field schema_list_resp[] = {
    F(sprig__schema_list_resp, list, SPRIG__F_SCHEMA_LIST),
};

static const sprig__field maint_req[] = {
    F(sprig__maint_req, kind, SPRIG__F_U32),
    F(sprig__maint_req, arg, SPRIG__F_STR),
};
static const sprig__field maint_resp[] = {
    F(sprig__maint_resp, items, SPRIG__F_U64),
    F(sprig__maint_resp, items_total, SPRIG__F_U64),
    F(sprig__maint_resp, bytes, SPRIG__F_U64),
    F(sprig__maint_resp, bytes_total, SPRIG__F_U64),
};

/* ---- documents and transactions ----------------------------------------- */

static const sprig__field apply_req[] = {
    F(sprig__apply_req, db, SPRIG__F_STR),
    F(sprig__apply_req, txn, SPRIG__F_TXN),
};
static const sprig__field apply_resp[] = {
    F(sprig__apply_resp, result, SPRIG__F_TXN_RESULT),
};
static const sprig__field get_req[] = {
    F(sprig__get_req, db, SPRIG__F_STR),
    F(sprig__get_req, collection, SPRIG__F_STR),
    F(sprig__get_req, id, SPRIG__F_BYTES),
};
static const sprig__field get_resp[] = {
    F(sprig__get_resp, doc, SPRIG__F_DOC),
};
static const sprig__field get_multiple_req[] = {
    F(sprig__get_multiple_req, db, SPRIG__F_STR),
    F(sprig__get_multiple_req, collection, SPRIG__F_STR),
    F(sprig__get_multiple_req, ids, SPRIG__F_BYTES_LIST),
};
static const sprig__field docs_resp[] = {
    F(sprig__docs_resp, docs, SPRIG__F_DOC_LIST),
};
static const sprig__field list_req[] = {
    F(sprig__list_req, db, SPRIG__F_STR),
    F(sprig__list_req, collection, SPRIG__F_STR),
    OPT(sprig__list_req, range, SPRIG__F_RANGE, has_range),
    F(sprig__list_req, order, SPRIG__F_U32),
    F(sprig__list_req, limit, SPRIG__F_U32),
    F(sprig__list_req, headers_only, SPRIG__F_BOOL),
};
static const sprig__field count_req[] = {
    F(sprig__count_req, db, SPRIG__F_STR),
    F(sprig__count_req, collection, SPRIG__F_STR),
    OPT(sprig__count_req, range, SPRIG__F_RANGE, has_range),
};
static const sprig__field count_resp[] = {
    F(sprig__count_resp, count, SPRIG__F_U64),
};
static const sprig__field log_req[] = {
    F(sprig__log_req, db, SPRIG__F_STR),
    F(sprig__log_req, since, SPRIG__F_U64),
    F(sprig__log_req, limit, SPRIG__F_U32),
};
static const sprig__field log_resp[] = {
    F(sprig__log_resp, log, SPRIG__F_TXN_LOG),
};
static const sprig__field db_req[] = {
    F(sprig__db_req, db, SPRIG__F_STR),
};
static const sprig__field last_txn_resp[] = {
    F(sprig__last_txn_resp, id, SPRIG__F_U64),
};

ROW(sprig__api_db_create, "storage.create_database", "database.create",
    "Create a database with a registered schema.", sprig__db_create_req,
    FIELDS(db_create_req), sprig__empty, NONE, false, WRITE, WORKER,
    RES(DATABASE, "name"));
ROW(sprig__api_db_delete, "storage.delete_database", "database.delete",
    "Delete a database and all its data.", sprig__db_name_req,
    FIELDS(db_name_req), sprig__empty, NONE, false, WRITE, WORKER,
    RES(DATABASE, "name"));
ROW(sprig__api_db_list, "storage.list_databases", "database.list",
    "List databases and their schemas.", sprig__empty, NONE,
    sprig__db_list_resp, FIELDS(db_list_resp), false, READ, WORKER,
    RES(SERVER, NULL));
ROW(sprig__api_db_open, "storage.database", "database.open",
    "Check that a database exists (before handing out a handle).",
    sprig__db_name_req, FIELDS(db_name_req), sprig__empty, NONE, false, READ,
    WORKER, RES(DATABASE, "name"));
ROW(sprig__api_schema_register, "storage.register_schema", "schema.register",
    "Register (or extend) a schema.", sprig__schema_register_req,
    FIELDS(schema_register_req), sprig__empty, NONE, false, WRITE, WORKER,
    RES(SCHEMA, "schema.name"));
ROW(sprig__api_schema_list, "storage.list_schemas", "schema.list",
    "List registered schemas and their collections.", sprig__empty, NONE,
    sprig__schema_list_resp, FIELDS(schema_list_resp), false, READ, WORKER,
    RES(SERVER, NULL));
ROW(sprig__api_maintain, "storage.maintain", "storage.maintain",
    "Back up, restore, export, import (a directory on the server) or "
    "compact a database, on the server's storage.",
    sprig__maint_req, FIELDS(maint_req), sprig__maint_resp, FIELDS(maint_resp),
    false, WRITE, WORKER, RES(SERVER, NULL));
ROW(sprig__api_apply, "db.apply", "transaction.apply",
    "Apply a transaction atomically (every single-document write is one).",
    sprig__apply_req, FIELDS(apply_req), sprig__apply_resp, FIELDS(apply_resp),
    true, WRITE, SUBMIT, RES(TXN_OPS, "db", "txn.collection", "txn.id"));
ROW(sprig__api_get, "db.get", "document.get", "Read one document.",
    sprig__get_req, FIELDS(get_req), sprig__get_resp, FIELDS(get_resp), false,
    READ, CACHED_READ, RES(DOCUMENT, "db", "collection", "id"));
ROW(sprig__api_get_multiple, "db.get_multiple", "document.get",
    "Read several documents in one snapshot.", sprig__get_multiple_req,
    FIELDS(get_multiple_req), sprig__docs_resp, FIELDS(docs_resp), false, READ,
    WORKER, RES(DOCUMENT, "db", "collection", "ids"));
ROW(sprig__api_list, "db.list", "document.list",
    "Documents (or headers) in an id range.", sprig__list_req, FIELDS(list_req),
    sprig__docs_resp, FIELDS(docs_resp), false, READ, WORKER,
    RES(COLLECTION, "db", "collection"));
ROW(sprig__api_doc_count, "db.count", "document.count",
    "Count documents in an id range.", sprig__count_req, FIELDS(count_req),
    sprig__count_resp, FIELDS(count_resp), false, READ, WORKER,
    RES(COLLECTION, "db", "collection"));
ROW(sprig__api_log, "db.list_executed_transactions", "transaction.log",
    "Executed transactions from an id on.", sprig__log_req, FIELDS(log_req),
    sprig__log_resp, FIELDS(log_resp), false, READ, WORKER,
    RES(DATABASE, "db"));
ROW(sprig__api_last_txn, "db.last_transaction_id", "transaction.log",
    "The last executed transaction's id.", sprig__db_req, FIELDS(db_req),
    sprig__last_txn_resp, FIELDS(last_txn_resp), false, READ, WORKER,
    RES(DATABASE, "db"));

/* ---- key-value ------------------------------------------------------------
 */

static const sprig__field kv_set_req[] = {
    F(sprig__kv_set_req, db, SPRIG__F_STR),
    F(sprig__kv_set_req, ns, SPRIG__F_STR),
    F(sprig__kv_set_req, key, SPRIG__F_STR),
    F(sprig__kv_set_req, value, SPRIG__F_VALUE),
    F(sprig__kv_set_req, expire_at_ms, SPRIG__F_U64),
    F(sprig__kv_set_req, expire_in_ms, SPRIG__F_U64),
    F(sprig__kv_set_req, keep_expiration, SPRIG__F_BOOL),
    F(sprig__kv_set_req, check, SPRIG__F_U32),
    F(sprig__kv_set_req, return_previous, SPRIG__F_BOOL),
};
static const sprig__field kv_set_resp[] = {
    F(sprig__kv_set_resp, status, SPRIG__F_U32),
    F(sprig__kv_set_resp, previous, SPRIG__F_VALUE),
};
static const sprig__field kv_get_req[] = {
    F(sprig__kv_get_req, db, SPRIG__F_STR),
    F(sprig__kv_get_req, ns, SPRIG__F_STR),
    F(sprig__kv_get_req, key, SPRIG__F_STR),
    F(sprig__kv_get_req, and_delete, SPRIG__F_BOOL),
};
static const sprig__field kv_value_resp[] = {
    F(sprig__kv_value_resp, value, SPRIG__F_VALUE),
};
static const sprig__field kv_incr_req[] = {
    F(sprig__kv_incr_req, db, SPRIG__F_STR),
    F(sprig__kv_incr_req, ns, SPRIG__F_STR),
    F(sprig__kv_incr_req, key, SPRIG__F_STR),
    F(sprig__kv_incr_req, amount, SPRIG__F_VALUE),
    F(sprig__kv_incr_req, decrement, SPRIG__F_BOOL),
    F(sprig__kv_incr_req, saturating, SPRIG__F_BOOL),
};
static const sprig__field kv_key_req[] = {
    F(sprig__kv_key_req, db, SPRIG__F_STR),
    F(sprig__kv_key_req, ns, SPRIG__F_STR),
    F(sprig__kv_key_req, key, SPRIG__F_STR),
};
static const sprig__field kv_status_resp[] = {
    F(sprig__kv_status_resp, status, SPRIG__F_U32),
};
static const sprig__field kv_list_req[] = {
    F(sprig__kv_list_req, db, SPRIG__F_STR),
    F(sprig__kv_list_req, ns, SPRIG__F_STR),
    F(sprig__kv_list_req, prefix, SPRIG__F_STR),
    OPT(sprig__kv_list_req, after, SPRIG__F_STR, has_after),
    F(sprig__kv_list_req, limit, SPRIG__F_U32),
};
static const sprig__field kv_list_resp[] = {
    F(sprig__kv_list_resp, list, SPRIG__F_KV_LIST),
};

/* ---- views ----------------------------------------------------------------
 */

static const sprig__field view_req[] = {
    F(sprig__view_req, db, SPRIG__F_STR),
    F(sprig__view_req, query, SPRIG__F_QUERY),
    F(sprig__view_req, with_docs, SPRIG__F_BOOL),
};
static const sprig__field mappings_resp[] = {
    F(sprig__mappings_resp, mappings, SPRIG__F_MAPPING_LIST),
};
static const sprig__field reduce_resp[] = {
    F(sprig__reduce_resp, value, SPRIG__F_BUF),
};
static const sprig__field deleted_resp[] = {
    F(sprig__deleted_resp, deleted, SPRIG__F_U64),
};

/* ---- PubSub ---------------------------------------------------------------
 */

static const sprig__field publish_req[] = {
    F(sprig__publish_req, db, SPRIG__F_STR),
    F(sprig__publish_req, topics, SPRIG__F_BYTES_LIST),
    F(sprig__publish_req, payload, SPRIG__F_BYTES),
};
static const sprig__field subscriber_resp[] = {
    F(sprig__subscriber_resp, subscriber, SPRIG__F_U64),
};
static const sprig__field topic_req[] = {
    F(sprig__topic_req, subscriber, SPRIG__F_U64),
    F(sprig__topic_req, topic, SPRIG__F_BYTES),
};
static const sprig__field subscriber_req[] = {
    F(sprig__subscriber_req, subscriber, SPRIG__F_U64),
};
const sprig__field sprig__message_push_fields[] = {
    F(sprig__message_push, subscriber, SPRIG__F_U64),
    F(sprig__message_push, topic, SPRIG__F_BYTES),
    F(sprig__message_push, payload, SPRIG__F_BYTES),
};
const size_t sprig__message_push_n = N(sprig__message_push_fields);

ROW(sprig__api_kv_set, "kv.set", "kv.set",
    "Set a key (options: expiry, check, previous value).", sprig__kv_set_req,
    FIELDS(kv_set_req), sprig__kv_set_resp, FIELDS(kv_set_resp), false, WRITE,
    SUBMIT, RES(KV_KEY, "db", "ns", "key"));
ROW(sprig__api_kv_get, "kv.get", "kv.get",
    "Read a key, optionally deleting it.", sprig__kv_get_req,
    FIELDS(kv_get_req), sprig__kv_value_resp, FIELDS(kv_value_resp), false,
    READ, CACHED_READ, RES(KV_KEY, "db", "ns", "key"));
ROW(sprig__api_kv_incr, "kv.increment", "kv.set",
    "Add to (or subtract from) a number atomically.", sprig__kv_incr_req,
    FIELDS(kv_incr_req), sprig__kv_value_resp, FIELDS(kv_value_resp), false,
    WRITE, SUBMIT, RES(KV_KEY, "db", "ns", "key"));
ROW(sprig__api_kv_delete, "kv.delete", "kv.delete", "Delete a key.",
    sprig__kv_key_req, FIELDS(kv_key_req), sprig__kv_status_resp,
    FIELDS(kv_status_resp), false, WRITE, SUBMIT,
    RES(KV_KEY, "db", "ns", "key"));
ROW(sprig__api_kv_list, "kv.list", "kv.list",
    "Keys of a namespace by prefix, after a key, with a limit.",
    sprig__kv_list_req, FIELDS(kv_list_req), sprig__kv_list_resp,
    FIELDS(kv_list_resp), false, READ, WORKER, RES(KV_NS, "db", "ns"));
ROW(sprig__api_view_query, "view.query", "view.query",
    "Mappings of a view (optionally with their documents).", sprig__view_req,
    FIELDS(view_req), sprig__mappings_resp, FIELDS(mappings_resp), false, READ,
    WORKER, RES(VIEW, "db", "query.collection", "query.view"));
ROW(sprig__api_view_reduce, "view.reduce", "view.query",
    "One reduced value over the matched keys.", sprig__view_req,
    FIELDS(view_req), sprig__reduce_resp, FIELDS(reduce_resp), false, READ,
    WORKER, RES(VIEW, "db", "query.collection", "query.view"));
ROW(sprig__api_view_reduce_grouped, "view.reduce_grouped", "view.query",
    "A reduced value per matched key.", sprig__view_req, FIELDS(view_req),
    sprig__mappings_resp, FIELDS(mappings_resp), false, READ, WORKER,
    RES(VIEW, "db", "query.collection", "query.view"));
ROW(sprig__api_view_delete_docs, "view.delete_docs", "view.delete_docs",
    "Delete the documents the query matches.", sprig__view_req,
    FIELDS(view_req), sprig__deleted_resp, FIELDS(deleted_resp), false, WRITE,
    WORKER, RES(VIEW, "db", "query.collection", "query.view"));
ROW(sprig__api_publish, "pubsub.publish", "pubsub.publish",
    "Publish a payload to one or more topics.", sprig__publish_req,
    FIELDS(publish_req), sprig__empty, NONE, false, WRITE, CACHED_READ,
    RES(TOPIC, "db", "topics"));
ROW(sprig__api_subscriber_new, "pubsub.subscriber_new", "pubsub.subscribe",
    "Create a subscriber on this connection; messages come as pushes.",
    sprig__db_req, FIELDS(db_req), sprig__subscriber_resp,
    FIELDS(subscriber_resp), false, READ, WORKER, RES(PUBSUB, "db"));
ROW(sprig__api_subscribe, "pubsub.subscribe", "pubsub.subscribe",
    "Subscribe a subscriber to a topic.", sprig__topic_req, FIELDS(topic_req),
    sprig__empty, NONE, false, READ, LOOP,
    RES(TOPIC, "subscriber.db", "topic"));
ROW(sprig__api_unsubscribe, "pubsub.unsubscribe", "pubsub.subscribe",
    "Unsubscribe a subscriber from a topic.", sprig__topic_req,
    FIELDS(topic_req), sprig__empty, NONE, false, READ, LOOP,
    RES(TOPIC, "subscriber.db", "topic"));
ROW(sprig__api_subscriber_free, "pubsub.subscriber_free", "pubsub.subscribe",
    "Drop a subscriber.", sprig__subscriber_req, FIELDS(subscriber_req),
    sprig__empty, NONE, false, READ, LOOP, RES(PUBSUB, "subscriber.db"));

/* ---- changes feed (issue 15): pushes "db.changes" ----------------------- */

static const sprig__field changes_sub_req[] = {
    F(sprig__changes_sub_req, db, SPRIG__F_STR),
    F(sprig__changes_sub_req, collection, SPRIG__F_STR),
    F(sprig__changes_sub_req, since, SPRIG__F_U64),
    F(sprig__changes_sub_req, contents, SPRIG__F_BOOL),
};
static const sprig__field feed_resp[] = {
    F(sprig__feed_resp, feed, SPRIG__F_U64),
};
static const sprig__field feed_req[] = {
    F(sprig__feed_req, db, SPRIG__F_STR),
    F(sprig__feed_req, feed, SPRIG__F_U64),
};
ROW(sprig__api_changes_subscribe, "db.changes_subscribe", "transaction.changes",
    "Follow the changes committed after a transaction id (of one collection "
    "or all): the backlog, then live, as db.changes pushes.",
    sprig__changes_sub_req, FIELDS(changes_sub_req), sprig__feed_resp,
    FIELDS(feed_resp), false, READ, WORKER, RES(DATABASE, "db"));
ROW(sprig__api_changes_unsubscribe, "db.changes_unsubscribe",
    "transaction.changes", "Stop a changes feed of this connection.",
    sprig__feed_req, FIELDS(feed_req), sprig__empty, NONE, false, READ, LOOP,
    RES(DATABASE, "db"));

/* ---- connected clients (issue 15): the server's open connections ------- */

static const sprig__field clients_resp[] = {
    F(sprig__clients_resp, clients, SPRIG__F_CLIENT_LIST),
};
ROW(sprig__api_server_clients, "server.clients", "server.clients",
    "The server's open connections, oldest first (the caller's marked).",
    sprig__empty, NONE, sprig__clients_resp, FIELDS(clients_resp), false, READ,
    LOOP, RES(SERVER, NULL));

/* ---- authentication (issue 10): open to every connection ("authenticate"
 * is granted to all), but auth.assume, gated by its own action ---------- */

static const sprig__field auth_password_req[] = {
    F(sprig__auth_password_req, user, SPRIG__F_STR),
    F(sprig__auth_password_req, password, SPRIG__F_STR),
};
static const sprig__field auth_session_resp[] = {
    F(sprig__auth_session_resp, session, SPRIG__F_U64),
    F(sprig__auth_session_resp, identity, SPRIG__F_STR),
};
static const sprig__field auth_challenge_resp[] = {
    F(sprig__auth_challenge_resp, nonce, SPRIG__F_BUF),
    F(sprig__auth_challenge_resp, server_ms, SPRIG__F_U64),
};
static const sprig__field auth_token_req[] = {
    F(sprig__auth_token_req, token, SPRIG__F_STR),
    F(sprig__auth_token_req, nonce, SPRIG__F_BYTES),
    F(sprig__auth_token_req, server_ms, SPRIG__F_U64),
    F(sprig__auth_token_req, client_ms, SPRIG__F_U64),
    F(sprig__auth_token_req, mac, SPRIG__F_BYTES),
};
static const sprig__field auth_assume_req[] = {
    F(sprig__auth_assume_req, kind, SPRIG__F_STR),
    F(sprig__auth_assume_req, name, SPRIG__F_STR),
};
static const sprig__field auth_logout_req[] = {
    F(sprig__auth_logout_req, session, SPRIG__F_U64),
};

ROW(sprig__api_auth_password, "auth.password", "authenticate",
    "Log in with a user's password (argon2id): a new session, the "
    "connection's default.",
    sprig__auth_password_req, FIELDS(auth_password_req),
    sprig__auth_session_resp, FIELDS(auth_session_resp), false, READ, WORKER,
    RES(SERVER, NULL));
ROW(sprig__api_auth_challenge, "auth.challenge", "authenticate",
    "A token challenge: a nonce and the server's time.", sprig__empty, NONE,
    sprig__auth_challenge_resp, FIELDS(auth_challenge_resp), false, READ, LOOP,
    RES(SERVER, NULL));
ROW(sprig__api_auth_token, "auth.token", "authenticate",
    "Log in with a token's response to a challenge: a new session, the "
    "connection's default.",
    sprig__auth_token_req, FIELDS(auth_token_req), sprig__auth_session_resp,
    FIELDS(auth_session_resp), false, READ, WORKER, RES(SERVER, NULL));
ROW(sprig__api_auth_assume, "auth.assume", "identity.assume",
    "Open a new session as another user or role (not made the default).",
    sprig__auth_assume_req, FIELDS(auth_assume_req), sprig__auth_session_resp,
    FIELDS(auth_session_resp), false, READ, WORKER,
    RES(IDENTITY, "kind", "name"));
ROW(sprig__api_auth_logout, "auth.logout", "authenticate",
    "End a session of this connection (0: the default).",
    sprig__auth_logout_req, FIELDS(auth_logout_req), sprig__empty, NONE, false,
    READ, LOOP, RES(SERVER, NULL));

/* ---- administration over the network (issue 10): each row its own action
 * on the record it changes; run on a worker (hashing, record reads) ---- */

#define AR(f) F(sprig__admin_req, f, SPRIG__F_STR)
static const sprig__field adm_name[] = {AR(name)};
static const sprig__field adm_password[] = {
    AR(name), OPT(sprig__admin_req, password, SPRIG__F_STR, has_password)};
static const sprig__field adm_user_group[] = {
    AR(name), AR(group), F(sprig__admin_req, add, SPRIG__F_BOOL)};
static const sprig__field adm_user_role[] = {
    AR(name), AR(role), F(sprig__admin_req, add, SPRIG__F_BOOL)};
static const sprig__field adm_grant[] = {AR(name), AR(actions), AR(resource)};
static const sprig__field adm_revoke[] = {AR(name), AR(resource)};
static const sprig__field adm_user[] = {AR(user)};
static const sprig__field adm_id[] = {AR(id)};
static const sprig__field adm_token_resp[] = {
    F(sprig__admin_resp, id, SPRIG__F_STR),
    F(sprig__admin_resp, secret, SPRIG__F_STR),
};
/* An admin.* row with an empty response: the request fields `rq`. */
#define ADMIN_ROW(var, nm, act, sum, rq, kind, part)                           \
    const sprig__api var = {nm,                                                \
                            act,                                               \
                            sum,                                               \
                            rq,                                                \
                            N(rq),                                             \
                            NONE,                                              \
                            sizeof(sprig__admin_req),                          \
                            sizeof(sprig__admin_resp),                         \
                            false,                                             \
                            SPRIG__WRITE,                                      \
                            SPRIG__RUN_WORKER,                                 \
                            {SPRIG__RES_##kind, {part}}}

ADMIN_ROW(sprig__api_admin_user_create, "admin.user_create", "user.create",
          "Create a user (no password: token-only).", adm_password, USER,
          "name");
ADMIN_ROW(sprig__api_admin_user_password, "admin.user_set_password",
          "user.set_password", "Set (or, without one, remove) a password.",
          adm_password, USER, "name");
ADMIN_ROW(sprig__api_admin_user_delete, "admin.user_delete", "user.delete",
          "Delete a user (its tokens stop working).", adm_name, USER, "name");
ADMIN_ROW(sprig__api_admin_user_group, "admin.user_group", "user.change_groups",
          "Add a user to a group, or remove it.", adm_user_group, USER, "name");
ADMIN_ROW(sprig__api_admin_user_role, "admin.user_role", "user.change_roles",
          "Give a user a role, or take it away.", adm_user_role, USER, "name");
ADMIN_ROW(sprig__api_admin_role_create, "admin.role_create", "role.create",
          "Create a role.", adm_name, ROLE, "name");
ADMIN_ROW(sprig__api_admin_role_group, "admin.role_group", "role.change_groups",
          "Add a group to a role, or remove it.", adm_user_group, ROLE, "name");
ADMIN_ROW(sprig__api_admin_group_create, "admin.group_create", "group.create",
          "Create a permission group.", adm_name, GROUP, "name");
ADMIN_ROW(sprig__api_admin_group_grant, "admin.group_grant", "group.grant",
          "Grant a group actions on a resource pattern.", adm_grant, GROUP,
          "name");
ADMIN_ROW(sprig__api_admin_group_revoke, "admin.group_revoke", "group.grant",
          "Remove a group's statements on exactly a resource pattern.",
          adm_revoke, GROUP, "name");
ROW(sprig__api_admin_token_create, "admin.token_create", "token.create",
    "Create a token acting as a user: its id and secret, shown once.",
    sprig__admin_req, FIELDS(adm_user), sprig__admin_resp,
    FIELDS(adm_token_resp), false, WRITE, WORKER, RES(USER, "user"));
ADMIN_ROW(sprig__api_admin_token_delete, "admin.token_delete", "token.delete",
          "Delete a token.", adm_id, TOKEN, "id");

const sprig__api *const sprig__api_admin[SPRIG__ADMIN_ROWS] = {
    &sprig__api_admin_user_create,  &sprig__api_admin_user_password,
    &sprig__api_admin_user_delete,  &sprig__api_admin_user_group,
    &sprig__api_admin_user_role,    &sprig__api_admin_role_create,
    &sprig__api_admin_role_group,   &sprig__api_admin_group_create,
    &sprig__api_admin_group_grant,  &sprig__api_admin_group_revoke,
    &sprig__api_admin_token_create, &sprig__api_admin_token_delete,
};

const sprig__api *const sprig__api_table[] = {
    &sprig__api_db_create,
    &sprig__api_db_delete,
    &sprig__api_db_list,
    &sprig__api_db_open,
    &sprig__api_schema_register,
    &sprig__api_schema_list,
    &sprig__api_maintain,
    &sprig__api_apply,
    &sprig__api_get,
    &sprig__api_get_multiple,
    &sprig__api_list,
    &sprig__api_doc_count,
    &sprig__api_log,
    &sprig__api_kv_set,
    &sprig__api_kv_get,
    &sprig__api_kv_incr,
    &sprig__api_kv_delete,
    &sprig__api_kv_list,
    &sprig__api_view_query,
    &sprig__api_view_reduce,
    &sprig__api_view_reduce_grouped,
    &sprig__api_view_delete_docs,
    &sprig__api_publish,
    &sprig__api_subscriber_new,
    &sprig__api_subscribe,
    &sprig__api_unsubscribe,
    &sprig__api_subscriber_free,
    &sprig__api_last_txn,
    &sprig__api_changes_subscribe,
    &sprig__api_changes_unsubscribe,
    &sprig__api_server_clients,
    &sprig__api_auth_password,
    &sprig__api_auth_challenge,
    &sprig__api_auth_token,
    &sprig__api_auth_assume,
    &sprig__api_auth_logout,
    &sprig__api_admin_user_create,
    &sprig__api_admin_user_password,
    &sprig__api_admin_user_delete,
    &sprig__api_admin_user_group,
    &sprig__api_admin_user_role,
    &sprig__api_admin_role_create,
    &sprig__api_admin_role_group,
    &sprig__api_admin_group_create,
    &sprig__api_admin_group_grant,
    &sprig__api_admin_group_revoke,
    &sprig__api_admin_token_create,
    &sprig__api_admin_token_delete,
    &sprig__api_server_apis,
};
const size_t sprig__api_count = N(sprig__api_table);

/* The constant segments of each resource form (NULL: a variable part). */
static const char *const res_forms[][8] = {
    [SPRIG__RES_SERVER] = {"sprig"},
    [SPRIG__RES_SCHEMA] = {"sprig", "schema", NULL},
    [SPRIG__RES_DATABASE] = {"sprig", "db", NULL},
    [SPRIG__RES_COLLECTION] = {"sprig", "db", NULL, "collection", NULL},
    [SPRIG__RES_DOCUMENT] = {"sprig", "db", NULL, "collection", NULL,
                             "document", NULL},
    [SPRIG__RES_VIEW] = {"sprig", "db", NULL, "collection", NULL, "view", NULL},
    [SPRIG__RES_KV_NS] = {"sprig", "db", NULL, "keyvalue", NULL},
    [SPRIG__RES_KV_KEY] = {"sprig", "db", NULL, "keyvalue", NULL, NULL},
    [SPRIG__RES_PUBSUB] = {"sprig", "db", NULL, "pubsub"},
    [SPRIG__RES_TOPIC] = {"sprig", "db", NULL, "pubsub", NULL},
    [SPRIG__RES_API] = {"sprig", "api", NULL},
    [SPRIG__RES_IDENTITY] = {"sprig", NULL, NULL},
    [SPRIG__RES_TXN_OPS] = {"sprig", "db", NULL, "collection", NULL, "document",
                            NULL},
    [SPRIG__RES_USER] = {"sprig", "user", NULL},
    [SPRIG__RES_ROLE] = {"sprig", "role", NULL},
    [SPRIG__RES_GROUP] = {"sprig", "group", NULL},
    [SPRIG__RES_TOKEN] = {"sprig", "token", NULL},
};
static const unsigned char res_lens[] = {
    [SPRIG__RES_SERVER] = 1,   [SPRIG__RES_SCHEMA] = 3,
    [SPRIG__RES_DATABASE] = 3, [SPRIG__RES_COLLECTION] = 5,
    [SPRIG__RES_DOCUMENT] = 7, [SPRIG__RES_VIEW] = 7,
    [SPRIG__RES_KV_NS] = 5,    [SPRIG__RES_KV_KEY] = 6,
    [SPRIG__RES_PUBSUB] = 4,   [SPRIG__RES_TOPIC] = 5,
    [SPRIG__RES_API] = 3,      [SPRIG__RES_IDENTITY] = 3,
    [SPRIG__RES_TXN_OPS] = 7,  [SPRIG__RES_USER] = 3,
    [SPRIG__RES_ROLE] = 3,     [SPRIG__RES_GROUP] = 3,
    [SPRIG__RES_TOKEN] = 3,
};

size_t
sprig__res_segments(sprig__res_kind k)
{
    return (size_t)k < N(res_lens) ? res_lens[k] : 0;
}

const char *
sprig__res_segment(sprig__res_kind k, size_t i, size_t *part)
{
    size_t p = 0;
    for (size_t j = 0; j < i; j++) {
        p += res_forms[k][j] == NULL;
    }
    *part = p;
    return res_forms[k][i];
}

const sprig__api *
sprig__api_find(sprig_bytes name)
{
    for (size_t i = 0; i < sprig__api_count; i++) {
        const char *n = sprig__api_table[i]->name;
        if (strlen(n) == name.len && memcmp(n, name.data, name.len) == 0) {
            return sprig__api_table[i];
        }
    }
    return NULL;
}
