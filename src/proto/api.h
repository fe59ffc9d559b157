/*
 * api.h -- the API table of protocol sprig/1: every operation a client can
 * ask for is one row (name, permission action, request fields, response
 * fields).  The codecs below are driven by the rows, so the client (which
 * encodes requests and decodes responses), the server (which decodes
 * requests, runs them, and encodes responses) and docs/protocol.md (checked
 * against the table by a test) cannot drift apart.
 *
 * A request or response payload is a MessagePack map from field names to
 * values.  Each field says its wire type and where it lives in the C
 * struct of that row (`offset`).  Unknown keys are ignored (forward
 * compatibility); a missing required key is SPRIG_EPROTO naming it.
 *
 * Decoded byte fields borrow from the frame; decoded strings and composite
 * values (document lists, transactions, ...) are allocated and released
 * with sprig__api_free().
 */
#ifndef SPRIG_PROTO_API_H
#define SPRIG_PROTO_API_H

#include "proto/mp.h"

#include <stddef.h>

typedef enum sprig__ftype {
    SPRIG__F_STR,        /* char *            MessagePack str          */
    SPRIG__F_BYTES,      /* sprig_bytes       bin                      */
    SPRIG__F_U64,        /* uint64_t          uint                     */
    SPRIG__F_U32,        /* uint32_t          uint                     */
    SPRIG__F_I64,        /* int64_t           int                      */
    SPRIG__F_BOOL,       /* bool              bool                     */
    SPRIG__F_HEADER,     /* sprig_header_buf  [id bin, rev uint, hash bin] */
    SPRIG__F_RANGE,      /* sprig_range       [[kind, key], [kind, key]]   */
    SPRIG__F_BYTES_LIST, /* sprig__bytes_list [bin, ...]               */
    SPRIG__F_DOC,        /* sprig_doc *       [id, rev, hash, contents] */
    SPRIG__F_DOC_LIST,   /* sprig_doc_list *  [doc, ...]               */
    SPRIG__F_TXN,        /* sprig_txn *       [[op, coll, id|nil, contents|nil,
                            rev|nil, hash|nil], ...] */
    SPRIG__F_TXN_RESULT, /* sprig_txn_result *  {id, headers, failed, error,
                            conflict} */
    SPRIG__F_TXN_LOG, /* sprig_txn_log *   [[id, ts, [[coll, id, rev, deleted],
                         ...]], ...] */
    SPRIG__F_DB_LIST, /* sprig_database_list * [[name, schema], ...] */
    SPRIG__F_SCHEMA,  /* sprig_schema_def * the stored schema form (bin) */
    SPRIG__F_SCHEMA_LIST, /* sprig_schema_list * [schema, ...]          */
    SPRIG__F_VALUE,       /* sprig_value       [kind, value]            */
    SPRIG__F_KV_LIST, /* sprig_kv_key_list *   [[key, value, expire_at], ...] */
    SPRIG__F_QUERY,   /* sprig__query      a view query (see docs)  */
    SPRIG__F_MAPPING_LIST, /* sprig_mapping_list * [[key, value, header|nil,
                              doc|nil], ...] */
    SPRIG__F_BUF,          /* sprig_buf (owned)  bin                     */
    SPRIG__F_API_LIST, /* sprig__apis_list *  [[name, action, resource, summary,
                          custom, write], ...] (issue 12: server.apis) */
    SPRIG__F_CLIENT_LIST /* sprig__client_list  [[id, peer, transport,
                            connected_ms, identity, sessions, requests,
                            yours], ...] */
} sprig__ftype;

#define SPRIG__FIELD_OPTIONAL 1u

typedef struct sprig__field {
    const char *name;
    sprig__ftype type;
    uint16_t offset;
    uint16_t flags;
    /* for optional fields: offset of a bool set when present (or 0xffff) */
    uint16_t present;
} sprig__field;

/** A list of borrowed byte strings (ids for get_multiple). */
typedef struct sprig__bytes_list {
    sprig_bytes *items;
    size_t n;
} sprig__bytes_list;

/** A decoded view query and the memory its pointers use. */
typedef struct sprig__query {
    sprig_view_query q;
    char *collection, *view; /* owned copies (decoded) */
    sprig_bytes *keys;       /* owned array (decoded) */
} sprig__query;

/* ---- what a row declares to the server's request path -------------------
 * (docs/architecture.md, "Server": decode -> authorise -> run -> answer) */

/** Does the row change stored state? */
typedef enum sprig__access { SPRIG__READ, SPRIG__WRITE } sprig__access;

/** Where a server runs the row's handler.  A new place is one more value
 *  here and one more case in the server's session.c. */
typedef enum sprig__where {
    /* the loop thread: the handler touches session state only (in-memory,
     * never waits on the storage lock or the disk) */
    SPRIG__RUN_LOOP,
    /* the loop thread when the database handle is cached (one read that
     * never waits); otherwise -- or when the handler says so -- a worker */
    SPRIG__RUN_CACHED_READ,
    /* the worker pool (may wait on the storage lock and the disk) */
    SPRIG__RUN_WORKER,
    /* a write submitted to the database's writer as a command (the
     * handle's asynchronous `submit`): from the loop thread when the
     * handle is cached, else from a worker that opens it; nobody waits for
     * the commit, the answer is encoded on the engine's thread.  Where a
     * handle has no `submit` (remote placements) or the handler needs
     * more, the handler runs synchronously on a worker instead. */
    SPRIG__RUN_SUBMIT
} sprig__where;

/** The form of a row's resource name: constant segments with variable
 *  parts taken from the request (docs/protocol.md, "Resource names").
 *  `{N}` is the row's parts[N]. */
typedef enum sprig__res_kind {
    SPRIG__RES_SERVER,     /* sprig                                  */
    SPRIG__RES_SCHEMA,     /* sprig.schema.{0}                       */
    SPRIG__RES_DATABASE,   /* sprig.db.{0}                           */
    SPRIG__RES_COLLECTION, /* sprig.db.{0}.collection.{1}            */
    SPRIG__RES_DOCUMENT,   /* sprig.db.{0}.collection.{1}.document.{2} */
    SPRIG__RES_VIEW,       /* sprig.db.{0}.collection.{1}.view.{2}   */
    SPRIG__RES_KV_NS,      /* sprig.db.{0}.keyvalue.{1}              */
    SPRIG__RES_KV_KEY,     /* sprig.db.{0}.keyvalue.{1}.{2}          */
    SPRIG__RES_PUBSUB,     /* sprig.db.{0}.pubsub                    */
    SPRIG__RES_TOPIC,      /* sprig.db.{0}.pubsub.{1}                */
    SPRIG__RES_API,        /* sprig.api.{0} (custom APIs, later)     */
    SPRIG__RES_IDENTITY,   /* sprig.{0}.{1} (user or role, name)     */
    /* sprig.db.{0}.collection.{1}.document.{2}, once per operation of the
     * transaction in part 1 ("txn.collection", "txn.id"), each checked for
     * its operation's own action (sprig__op_action); an insert without an
     * id ends before its id: sprig.db.{0}.collection.{1}.document; an
     * empty transaction names sprig.db.{0} for the row's action. */
    SPRIG__RES_TXN_OPS,
    SPRIG__RES_USER,  /* sprig.user.{0}  (admin.*: the admin records) */
    SPRIG__RES_ROLE,  /* sprig.role.{0}                              */
    SPRIG__RES_GROUP, /* sprig.group.{0}                             */
    SPRIG__RES_TOKEN  /* sprig.token.{0}                             */
} sprig__res_kind;

/** A declared resource spec.  Each part names a request field, or a field
 *  and what to take from it: "db" (a str), "id" (bin), "topics" (a list:
 *  one resource per element), "schema.name", "query.collection",
 *  "query.view", "subscriber.db" (the database the connection's
 *  subscriber of that number was made on).  A part of kind API is the
 *  row's own name when it is "$name". */
typedef struct sprig__res_spec {
    sprig__res_kind kind;
    const char *parts[3];
} sprig__res_spec;

typedef struct sprig__api {
    const char *name;    /* "doc.get" */
    const char *action;  /* the permission action that guards it */
    const char *summary; /* one line for docs/protocol.md */
    const sprig__field *req;
    size_t n_req;
    const sprig__field *resp;
    size_t n_resp;
    size_t req_size, resp_size;
    /* A failure still carries the response (conflict headers, failed
     * transaction results): it travels as the error frame's detail. */
    bool resp_on_error;
    sprig__access access;
    sprig__where where;
    sprig__res_spec resource;
} sprig__api;

/** Number of segments of resource kind `k`'s form, and segment `i`:
 *  a constant (e.g. "db"), or NULL for a variable part, whose part index
 *  is then *part. */
size_t sprig__res_segments(sprig__res_kind k);
const char *sprig__res_segment(sprig__res_kind k, size_t i, size_t *part);

/* The rows, for the server's dispatch and the client's calls. */
extern const sprig__api sprig__api_db_create, sprig__api_db_delete,
    sprig__api_db_list, sprig__api_db_open, sprig__api_schema_register,
    sprig__api_schema_list, sprig__api_apply, sprig__api_get,
    sprig__api_get_multiple, sprig__api_list, sprig__api_doc_count,
    sprig__api_log, sprig__api_last_txn, sprig__api_auth_password,
    sprig__api_auth_challenge, sprig__api_auth_token, sprig__api_auth_assume,
    sprig__api_auth_logout, sprig__api_maintain;

/** The whole table, and a lookup by name (NULL when unknown). */
extern const sprig__api *const sprig__api_table[];
extern const size_t sprig__api_count;
const sprig__api *sprig__api_find(sprig_bytes name);

/** Encode the struct `s` as the map described by `fields`. */
int sprig__api_encode(sprig__mp_wr *w, const sprig__field *fields, size_t n,
                      const void *s);
/* ---- request ids of writes (issue 18; src/client/cluster_client.c) ----
 * A write request's payload may carry "rid": bin 16, the client's id (8
 * bytes) and its write sequence number (u64 big-endian); a retry resends
 * the same rid.  Servers that do not read it ignore it. */
#define SPRIG__RID_FIELD "rid"
#define SPRIG__RID_LEN 16
/** sprig__api_encode() with the field "rid" = `rid` (bin 16) added. */
int sprig__api_encode_rid(sprig__mp_wr *w, const sprig__field *fields, size_t n,
                          const void *s, const uint8_t rid[16]);
/** The "rid" of a request payload: 1 and `rid` filled when it has one of
 *  16 bytes, 0 when it has none (or one of another size), SPRIG_EPROTO when
 *  the payload is no map. */
int sprig__api_request_rid(sprig_bytes payload, uint8_t rid[16]);
/* ---- linearizable reads (issue 18; docs/protocol.md) ----
 * A read request's payload may carry "lin": true: a cluster node answers
 * it only after confirming that it leads (a Raft barrier), else
 * SPRIG_ENOTLEADER.  Servers that are no cluster node ignore it. */
#define SPRIG__LIN_FIELD "lin"
/** sprig__api_encode() with the field "lin" = true added. */
int sprig__api_encode_lin(sprig__mp_wr *w, const sprig__field *fields, size_t n,
                          const void *s);
/** Does a request payload carry "lin": true?  (false for anything
 *  else, a malformed payload included.) */
bool sprig__api_request_lin(sprig_bytes payload);

/** Decode a map into the zeroed struct `s`.  On failure the struct may be
 *  partly filled: release it with sprig__api_free() either way. */
int sprig__api_decode(sprig_bytes payload, const sprig__field *fields, size_t n,
                      void *s);
/** Release what decoding (or a handler) allocated in `s`. */
void sprig__api_free(const sprig__field *fields, size_t n, void *s);

/* ---- the request and response structs of each row ----------------------
 * Named sprig__<api>_req / _resp; `db` names the database. */

typedef struct {
    char *name, *schema;
    bool only_if_needed;
} sprig__db_create_req;
typedef struct {
    char *name;
} sprig__db_name_req;
typedef struct {
    int unused;
} sprig__empty;
typedef struct {
    sprig_database_list *list;
} sprig__db_list_resp;
typedef struct {
    sprig_schema_def *schema;
} sprig__schema_register_req;
/* storage.maintain: a backup, restore, export, import or compaction, run
 * by the server on its storage (`kind`: sprig__maint_kind; `arg`: a
 * directory on the server's machine, or the database to compact) */
typedef struct {
    uint32_t kind;
    char *arg;
} sprig__maint_req;
typedef struct {
    uint64_t items, items_total, bytes, bytes_total;
} sprig__maint_resp;
typedef struct {
    sprig_schema_list *list;
} sprig__schema_list_resp;

/* ---- authentication (issue 10) ---- */
typedef struct {
    char *user, *password;
} sprig__auth_password_req;
typedef struct {
    uint64_t session;
    char *identity;
} sprig__auth_session_resp;
typedef struct {
    sprig_buf nonce; /* owned: a client's decoded answer outlives its frame */
    uint64_t server_ms;
} sprig__auth_challenge_resp;
typedef struct {
    char *token;
    sprig_bytes nonce;
    uint64_t server_ms, client_ms;
    sprig_bytes mac;
} sprig__auth_token_req;
typedef struct {
    char *kind, *name;
} sprig__auth_assume_req;
typedef struct {
    uint64_t session;
} sprig__auth_logout_req;

/* ---- administration over the network (issue 10): the admin.* rows, one
 * per sprig_admin_op of auth.h and in its order (sprig__api_admin).  One
 * request struct for all: each row's fields are a subset of it. */
typedef struct {
    char *name, *password, *group, *role, *user, *id, *actions, *resource;
    bool add, has_password;
} sprig__admin_req;
typedef struct {
    char *id, *secret; /* admin.token_create */
} sprig__admin_resp;
#define SPRIG__ADMIN_ROWS 12
extern const sprig__api *const sprig__api_admin[SPRIG__ADMIN_ROWS];
extern const sprig__api sprig__api_admin_user_create,
    sprig__api_admin_user_password, sprig__api_admin_user_delete,
    sprig__api_admin_user_group, sprig__api_admin_user_role,
    sprig__api_admin_role_create, sprig__api_admin_role_group,
    sprig__api_admin_group_create, sprig__api_admin_group_grant,
    sprig__api_admin_group_revoke, sprig__api_admin_token_create,
    sprig__api_admin_token_delete;

typedef struct {
    char *db;
    sprig_txn *txn;
} sprig__apply_req;
typedef struct {
    sprig_txn_result *result;
} sprig__apply_resp;

typedef struct {
    char *db, *collection;
    sprig_bytes id;
} sprig__get_req;
typedef struct {
    sprig_doc *doc;
} sprig__get_resp;
typedef struct {
    char *db, *collection;
    sprig__bytes_list ids;
} sprig__get_multiple_req;
typedef struct {
    sprig_doc_list *docs;
} sprig__docs_resp;
typedef struct {
    char *db, *collection;
    sprig_range range;
    bool has_range;
    uint32_t order, limit;
    bool headers_only;
} sprig__list_req;
typedef struct {
    char *db, *collection;
    sprig_range range;
    bool has_range;
} sprig__count_req;
typedef struct {
    uint64_t count;
} sprig__count_resp;
typedef struct {
    char *db;
    uint64_t since;
    uint32_t limit;
} sprig__log_req;
typedef struct {
    sprig_txn_log *log;
} sprig__log_resp;
typedef struct {
    char *db;
} sprig__db_req;
typedef struct {
    uint64_t id;
} sprig__last_txn_resp;

/* ---- key-value ----------------------------------------------------------- */
typedef struct {
    char *db, *ns, *key;
    sprig_value value;
    uint64_t expire_at_ms, expire_in_ms;
    bool keep_expiration;
    uint32_t check;
    bool return_previous;
} sprig__kv_set_req;
typedef struct {
    uint32_t status;
    sprig_value previous;
} sprig__kv_set_resp;
typedef struct {
    char *db, *ns, *key;
    bool and_delete;
} sprig__kv_get_req;
typedef struct {
    sprig_value value;
} sprig__kv_value_resp;
typedef struct {
    char *db, *ns, *key;
    sprig_value amount;
    bool decrement, saturating;
} sprig__kv_incr_req;
typedef struct {
    char *db, *ns, *key;
} sprig__kv_key_req;
typedef struct {
    uint32_t status;
} sprig__kv_status_resp;
typedef struct {
    char *db, *ns, *prefix, *after;
    bool has_after;
    uint32_t limit;
} sprig__kv_list_req;
typedef struct {
    sprig_kv_key_list *list;
} sprig__kv_list_resp;

/* ---- views ----------------------------------------------------------------
 */
typedef struct {
    char *db;
    sprig__query query;
    bool with_docs;
} sprig__view_req;
typedef struct {
    sprig_mapping_list *mappings;
} sprig__mappings_resp;
typedef struct {
    sprig_buf value;
} sprig__reduce_resp;
typedef struct {
    uint64_t deleted;
} sprig__deleted_resp;

/* ---- PubSub ---------------------------------------------------------------
 */
typedef struct {
    char *db;
    sprig__bytes_list topics;
    sprig_bytes payload;
} sprig__publish_req;
typedef struct {
    uint64_t subscriber;
} sprig__subscriber_resp;
typedef struct {
    uint64_t subscriber;
    sprig_bytes topic;
} sprig__topic_req;
typedef struct {
    uint64_t subscriber;
} sprig__subscriber_req;
/** The payload of the "pubsub.message" push. */
typedef struct {
    uint64_t subscriber;
    sprig_bytes topic, payload;
} sprig__message_push;

extern const sprig__api sprig__api_kv_set, sprig__api_kv_get,
    sprig__api_kv_incr, sprig__api_kv_delete, sprig__api_kv_list,
    sprig__api_view_query, sprig__api_view_reduce,
    sprig__api_view_reduce_grouped, sprig__api_view_delete_docs,
    sprig__api_publish, sprig__api_subscriber_new, sprig__api_subscribe,
    sprig__api_unsubscribe, sprig__api_subscriber_free;
/** The fields of the "pubsub.message" push payload. */
extern const sprig__field sprig__message_push_fields[];
extern const size_t sprig__message_push_n;
#define SPRIG__PUSH_MESSAGE "pubsub.message"

/* ---- custom APIs (issue 12; docs/protocol.md "Custom APIs") ---------------
 * A custom row's request is {"data": bin} (optional: absent is empty), its
 * response {"data": bin}; a custom push's payload is {"data": bin} too. */
typedef struct {
    sprig_bytes data;
    bool has_data;
} sprig__custom_req;
typedef struct {
    sprig_buf data; /* owned */
} sprig__custom_resp;
/** The template of every custom row (name, action, access, where and
 *  resource are the registration's); its request fields are also the
 *  fields of a custom push's payload. */
extern const sprig__api sprig__api_custom;

/* server.apis (issue 12): the listing of the rows a caller may call. */
typedef struct sprig__api_entry {
    char *name, *action, *resource, *summary; /* owned */
    bool custom, write;
} sprig__api_entry;
typedef struct sprig__apis_list {
    sprig__api_entry *items;
    size_t n;
} sprig__apis_list;
typedef struct {
    sprig__apis_list *apis;
} sprig__apis_resp;
/** Free a listing (NULL: nothing). */
void sprig__apis_list_free(sprig__apis_list *l);
extern const sprig__api sprig__api_server_apis;

/* ---- changes feed (issue 15) ----------------------------------------------
 */
typedef struct {
    char *db, *collection; /* collection "": every collection */
    uint64_t since;
    bool contents;
} sprig__changes_sub_req;
typedef struct {
    uint64_t feed;
} sprig__feed_resp;
typedef struct {
    char *db;
    uint64_t feed;
} sprig__feed_req;
extern const sprig__api sprig__api_changes_subscribe,
    sprig__api_changes_unsubscribe;
/** The push of a changes feed: `feed` uint, `entries` array of
 *  [txn_id, timestamp_ms, [[collection, id, revision, deleted, contents
 *  or nil], ...]] (whole transactions, oldest first). */
#define SPRIG__PUSH_CHANGES "db.changes"

/* ---- connected clients (issue 15; docs/protocol.md "Connected clients")
 * server.clients: an empty request; the response's `clients` lists the
 * server's open connections, oldest first. */
typedef struct {
    size_t n;
    sprig_connected_client *items; /* owned (sprig__free) */
} sprig__client_list;
typedef struct {
    sprig__client_list clients;
} sprig__clients_resp;
extern const sprig__api sprig__api_server_clients;

/* api_codec.c: shapes shared by several composite types. */
void sprig__enc_header(sprig__mp_wr *w, sprig_header h);
int sprig__dec_header(sprig__mp_rd *r, sprig_header_buf *h);
void sprig__enc_range(sprig__mp_wr *w, const sprig_range *r);
int sprig__dec_range(sprig__mp_rd *r, sprig_range *out);
void sprig__enc_doc(sprig__mp_wr *w, const sprig_doc *d);
int sprig__dec_doc(sprig__mp_rd *r, sprig_doc **out);

/* api_codec_more.c: the composite types added with KV, views, PubSub. */
void sprig__enc_more(sprig__mp_wr *w, sprig__ftype t, const void *p);
int sprig__dec_more(sprig__mp_rd *r, sprig__ftype t, void *p);
void sprig__free_more(sprig__ftype t, void *p);
bool sprig__present_more(sprig__ftype t, const void *p);

/* errinfo.c: the structured detail of a failure in an error frame's
 * detail map (field "error_info"; docs/protocol.md). */
/** Write `e` as an error_info array. */
void sprig__errinfo_encode(sprig__mp_wr *w, const sprig__errinfo *e);
/** Read an error_info array into `e` (zeroed first).  SPRIG_EPROTO. */
int sprig__errinfo_decode(sprig__mp_rd *r, sprig__errinfo *e);
/** Build an error frame's detail into `out` (emptied): the map
 *  `resp_map` (a response map, or empty bytes for none) plus the field
 *  error_info when `e` has a kind; empty (nil) when there is neither.
 *  SPRIG_ENOMEM, SPRIG_EPROTO (resp_map is not a map). */
int sprig__detail_build(sprig_buf *out, sprig_bytes resp_map,
                        const sprig__errinfo *e);
/** Read an error frame's detail: `*e` gets its error_info (kind NONE when
 *  there is none) and `*has_resp` says whether other fields (a response)
 *  are there.  SPRIG_EPROTO for a malformed map. */
int sprig__detail_errinfo(sprig_bytes detail, sprig__errinfo *e,
                          bool *has_resp);

#endif
