/*
 * test_auth_matrix.c -- the permission matrix (issue 10): every row of the
 * API registry, called through the public API by identities that are and
 * are not granted its action, over four placements:
 *   local  a storage narrowed to the identity (sprig_storage_narrow);
 *   ws     a client logged in to a server over ws://;
 *   wss    the same over wss:// (TLS, pinned certificate);
 *   quic   the same over quic:// (the same certificate, pinned).
 * Identities (users of one permission engine shared by both servers):
 *   none   no group at all                               -> SPRIG_EPERM
 *   exact  a group granting the row's action on exactly the resource(s)
 *          the call names                                -> passes
 *   wild   a group granting the action's first segment ("document" for
 *          "document.get") on a wildcard pattern ("sprig.db.a*...")
 *                                                        -> passes
 *   role   a role whose group grants exactly the row     -> passes
 *   other  the action on another database, and other actions on the
 *          call's resource                               -> SPRIG_EPERM
 * db.apply has a row per operation kind (insert with an id, insert
 * without one, update, overwrite, delete, check), each granted its own
 * action on its document; test_insert_not_delete gives one identity
 * insert but not delete on one collection and has a transaction mixing
 * the two refused whole.
 * Every refused call must change nothing: the storage's fingerprint
 * (databases, schemas, documents with revisions, keys, the last
 * transaction id) is the same after it, and a refused publish reaches no
 * subscriber.  Granted calls succeed (the reduce rows: anything but
 * SPRIG_EPERM).  Grants change between rows while the sessions stay
 * logged in, so every row also proves that a change of the records
 * reaches live sessions on their next request.  A registry row that has
 * no case here fails the test; the auth.* rows (granted to everyone, or
 * auth.assume: tests/test_auth_server.c), pubsub.subscriber_free and
 * db.changes_unsubscribe (releasing one's own subscriber or feed: void in
 * the API; their refusal is in tests/test_server_path.c) are listed as
 * covered elsewhere.
 */
#include "testutil.h"

#include "proto/api.h"
#include "server/server_int.h"
#include "sprig/auth.h"
#include "sprig/client.h"
#include "sprig/server.h"

#include "placement.h"

static const sprig_view_def views[] = {{.name = "v",
                                        .version = 1,
                                        .json_key = "k",
                                        .builtin_reduce = SPRIG_REDUCE_COUNT}};
static const sprig_collection_def cols[] = {
    {"c", SPRIG_ID_NATURAL, 0, views, 1}, {"p", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"m", cols, 2};
static const sprig_collection_def other_cols[] = {{"o", SPRIG_ID_U64, 0}};
static const sprig_schema_def other_schema = {"other", other_cols, 1};

enum { NONE, EXACT, WILD, ROLE, OTHER, N_IDS };
static const char *const id_names[N_IDS] = {"none", "exact", "wild", "role",
                                            "other"};
static const char *const groups[N_IDS] = {NULL, "g_exact", "g_wild", "g_role",
                                          "g_other"};
enum { P_LOCAL, P_WS, P_WSS, P_QUIC, N_PLACES };
static const char *const place_names[N_PLACES] = {"local", "ws", "wss", "quic"};

static const char *root;
static sprig_storage *st;    /* the real storage */
static sprig_server *srv[3]; /* ws, wss and quic */
static sprig_auth *auth;
static sprig_storage *as[N_PLACES][N_IDS]; /* the identities' storages */
static sprig_client *clients[N_PLACES][N_IDS];
static sprig_identity *idents[N_IDS];
static char cert[1300], key[1300];

/* ---- the cases ------------------------------------------------------------
 */

typedef struct ctx {
    sprig_storage *st;
    sprig_db *db;        /* "app", opened with the base grant */
    sprig_identity *who; /* local placement: the identity (else NULL) */
} ctx;

typedef struct mcase {
    const char *api;
    const char *res[2]; /* the resource(s) the call names */
    bool any_ok;        /* granted: any answer but SPRIG_EPERM */
    bool needs_sub;     /* runs on a subscriber made beforehand */
    int (*run)(ctx *c, sprig_subscriber *sub);
    const char *action; /* checked for (NULL: the row's action) */
} mcase;

#define APP "sprig.db.app"
#define DOC APP ".collection.c.document."

static int
r_create(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return sprig_storage_create_database(c->st, "newdb", "m", false);
}
static int
r_delete(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return sprig_storage_delete_database(c->st, "victim");
}
static int
r_list_dbs(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_database_list *l = NULL;
    int rc = sprig_storage_list_databases(c->st, &l);
    sprig_database_list_free(l);
    return rc;
}
static int
r_open(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_db *db = NULL;
    int rc = sprig_storage_open_database(c->st, "app", &db);
    sprig_db_close(db);
    return rc;
}
/* A backup into a fresh directory (on the server's side for a server
 * placement: the same machine here). */
static int
r_maintain(ctx *c, sprig_subscriber *s)
{
    (void)s;
    static unsigned n;
    const char *tmp = getenv("SPRIG_TEST_TMP");
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/matrix-backup.%ld.%u",
             tmp && *tmp ? tmp : "/tmp/sprig-test", (long)getpid(), n++);
    int rc = sprig_storage_backup(c->st, dir, NULL, NULL);
    tu_rmtree(dir);
    return rc;
}
static int
r_register(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return sprig_storage_register_schema(c->st, &other_schema);
}
static int
r_list_schemas(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_schema_list *l = NULL;
    int rc = sprig_storage_list_schemas(c->st, &l);
    sprig_schema_list_free(l);
    return rc;
}
static int
r_apply(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_bytes id = sprig_str("new");
    return sprig_insert(c->db, "c", &id, sprig_str("{\"k\":9}"), NULL);
}
static int
r_push(ctx *c, sprig_subscriber *s) /* an insert without an id */
{
    (void)s;
    return sprig_insert(c->db, "p", NULL, sprig_str("{}"), NULL);
}
/* d1's current header, read with the real storage (the identity may not
 * read). */
static sprig_header
stored_d1(sprig_doc **keep)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    SPRIG_OK_(sprig_get(db, "c", sprig_str("d1"), keep));
    sprig_db_close(db);
    return sprig_doc_header(*keep);
}
static int
r_update(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_doc *d = NULL;
    sprig_header h = stored_d1(&d);
    int rc = sprig_update(c->db, "c", &h, sprig_str("{\"k\":2}"), NULL);
    sprig_doc_free(d);
    return rc;
}
static int
r_overwrite(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return sprig_overwrite(c->db, "c", sprig_str("d1"), sprig_str("{\"k\":3}"),
                           NULL);
}
static int
r_delete_doc(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_doc *d = NULL;
    sprig_header h = stored_d1(&d);
    int rc = sprig_delete(c->db, "c", &h);
    sprig_doc_free(d);
    return rc;
}
static int
r_check(ctx *c, sprig_subscriber *s) /* a transaction that only checks */
{
    (void)s;
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_check(t, "c", sprig_str("d1"), NULL));
    int rc = sprig_txn_apply(c->db, t, NULL);
    sprig_txn_free(t);
    return rc;
}
static int
r_get(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_doc *d = NULL;
    int rc = sprig_get(c->db, "c", sprig_str("d1"), &d);
    sprig_doc_free(d);
    return rc;
}
static int
r_get_multiple(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_bytes ids[2] = {sprig_str("d1"), sprig_str("d2")};
    sprig_doc_list *l = NULL;
    int rc = sprig_get_multiple(c->db, "c", ids, 2, &l);
    sprig_doc_list_free(l);
    return rc;
}
static int
r_list(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_doc_list *l = NULL;
    int rc = sprig_list(c->db, "c", NULL, SPRIG_ASC, 0, &l);
    sprig_doc_list_free(l);
    return rc;
}
static int
r_count(ctx *c, sprig_subscriber *s)
{
    (void)s;
    uint64_t n;
    return sprig_count(c->db, "c", NULL, &n);
}
static int
r_log(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_txn_log *l = NULL;
    int rc = sprig_list_executed_txns(c->db, 0, 10, &l);
    sprig_txn_log_free(l);
    return rc;
}
static int
r_last(ctx *c, sprig_subscriber *s)
{
    (void)s;
    uint64_t id;
    return sprig_last_txn_id(c->db, &id);
}
static int
r_kv_set(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_value v = sprig_value_of_i64(7);
    return sprig_kv_set(c->db, "n", "k1", &v, NULL, NULL, NULL);
}
static int
r_kv_get(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_value v = {0};
    int rc = sprig_kv_get(c->db, "n", "k1", false, &v);
    sprig_value_clear(&v);
    return rc;
}
static int
r_kv_incr(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_value v = {0}, one = sprig_value_of_i64(1);
    int rc = sprig_kv_increment(c->db, "n", "k1", &one, false, &v);
    sprig_value_clear(&v);
    return rc;
}
static int
r_kv_delete(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return sprig_kv_delete(c->db, "n", "k1", NULL);
}
static int
r_kv_list(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_kv_key_list *l = NULL;
    int rc = sprig_kv_list_keys(c->db, "n", "", NULL, 0, &l);
    sprig_kv_key_list_free(l);
    return rc;
}
static void
q_all(sprig_view_query *q)
{
    sprig_view_query_init(q, "c", "v");
}
static int
r_view_query(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_view_query q;
    q_all(&q);
    sprig_mapping_list *l = NULL;
    int rc = sprig_view_query_mappings(c->db, &q, &l);
    sprig_mapping_list_free(l);
    return rc;
}
static int
r_view_reduce(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_view_query q;
    q_all(&q);
    sprig_buf b = {0};
    int rc = sprig_view_reduce(c->db, &q, &b);
    sprig_buf_clear(&b);
    return rc;
}
static int
r_view_grouped(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_view_query q;
    q_all(&q);
    sprig_mapping_list *l = NULL;
    int rc = sprig_view_reduce_grouped(c->db, &q, &l);
    sprig_mapping_list_free(l);
    return rc;
}
static int
r_view_delete(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_view_query q;
    q_all(&q);
    uint64_t n;
    return sprig_view_delete_docs(c->db, &q, &n);
}
static int
r_publish(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_bytes topics[2] = {sprig_str("t1"), sprig_str("t2")};
    return sprig_publish_to_all(c->db, topics, 2, sprig_str("hello"));
}
static int
r_sub_new(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_subscriber *n = NULL;
    int rc = sprig_subscriber_new(c->db, &n);
    sprig_subscriber_free(n);
    return rc;
}
static int
r_subscribe(ctx *c, sprig_subscriber *s)
{
    (void)c;
    return sprig_subscribe(s, sprig_str("news"));
}
static int
r_unsubscribe(ctx *c, sprig_subscriber *s)
{
    (void)c;
    return sprig_unsubscribe(s, sprig_str("news"));
}

/* ---- admin.* rows: the admin records ---------------------------------------
 * Targets: user "tu" in no group, role "rx", group "gx" holding "kv" on
 * sprig.db.x, token TOKEN of tu (reset() puts them back). */

#define TOKEN "00000000000000aa"

/* One change: through the engine as the identity (local), or as the
 * request of a logged-in client. */
static int
admin(ctx *c, sprig_admin_change ch)
{
    sprig_admin_token tok;
    int rc = c->who ? sprig_auth_apply(auth, c->who, &ch, &tok)
                    : sprig_client_admin(c->st, &ch, &tok);
    explicit_bzero(&tok, sizeof tok);
    return rc;
}
static int
r_user_create(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){SPRIG_ADMIN_USER_CREATE, "nu", "pw"});
}
static int
r_user_password(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(
        c, (sprig_admin_change){SPRIG_ADMIN_USER_SET_PASSWORD, "tu", "new"});
}
static int
r_user_delete(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){SPRIG_ADMIN_USER_DELETE, "tu"});
}
static int
r_user_group(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){.op = SPRIG_ADMIN_USER_GROUP,
                                         .name = "tu",
                                         .other = "gx",
                                         .add = true});
}
static int
r_user_role(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){.op = SPRIG_ADMIN_USER_ROLE,
                                         .name = "tu",
                                         .other = "rx",
                                         .add = true});
}
static int
r_role_create(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){SPRIG_ADMIN_ROLE_CREATE, "nr"});
}
static int
r_role_group(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){.op = SPRIG_ADMIN_ROLE_GROUP,
                                         .name = "rx",
                                         .other = "gx",
                                         .add = true});
}
static int
r_group_create(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){SPRIG_ADMIN_GROUP_CREATE, "ng"});
}
static int
r_group_grant(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){.op = SPRIG_ADMIN_GROUP_GRANT,
                                         .name = "gx",
                                         .actions = "document",
                                         .resource = "sprig.db.x"});
}
static int
r_group_revoke(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){.op = SPRIG_ADMIN_GROUP_REVOKE,
                                         .name = "gx",
                                         .resource = "sprig.db.x"});
}
static int
r_token_create(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){SPRIG_ADMIN_TOKEN_CREATE, "tu"});
}
static int
r_token_delete(ctx *c, sprig_subscriber *s)
{
    (void)s;
    return admin(c, (sprig_admin_change){SPRIG_ADMIN_TOKEN_DELETE, TOKEN});
}
static int
r_changes(ctx *c, sprig_subscriber *s)
{
    (void)s;
    sprig_changes *f = NULL;
    int rc = sprig_changes_open(c->db, 0, NULL, 0, &f);
    sprig_changes_close(f);
    return rc;
}

/* server.clients (issue 15): over the network the row itself; locally
 * there is no server, so the check the row's path makes. */
static int
r_clients(ctx *c, sprig_subscriber *s)
{
    (void)s;
    size_t n = 0;
    return c->who ? sprig_identity_check(c->who, "server.clients", "sprig")
                  : sprig_client_connected_clients(c->st, NULL, 0, &n);
}

static const mcase cases[] = {
    {"storage.create_database", {"sprig.db.newdb"}, false, false, r_create},
    {"storage.delete_database", {"sprig.db.victim"}, false, false, r_delete},
    {"storage.list_databases", {"sprig"}, false, false, r_list_dbs},
    {"storage.database", {APP}, false, false, r_open},
    {"storage.register_schema",
     {"sprig.schema.other"},
     false,
     false,
     r_register},
    {"storage.list_schemas", {"sprig"}, false, false, r_list_schemas},
    {"storage.maintain", {"sprig"}, false, false, r_maintain},
    {"db.apply", {DOC "new"}, false, false, r_apply, "document.insert"},
    {"db.apply",
     {APP ".collection.p.document"},
     false,
     false,
     r_push,
     "document.insert"},
    {"db.apply", {DOC "d1"}, false, false, r_update, "document.update"},
    {"db.apply", {DOC "d1"}, false, false, r_overwrite, "document.overwrite"},
    {"db.apply", {DOC "d1"}, false, false, r_delete_doc, "document.delete"},
    {"db.apply", {DOC "d1"}, false, false, r_check, "document.get"},
    {"db.get", {DOC "d1"}, false, false, r_get},
    {"db.get_multiple", {DOC "d1", DOC "d2"}, false, false, r_get_multiple},
    {"db.list", {APP ".collection.c"}, false, false, r_list},
    {"db.count", {APP ".collection.c"}, false, false, r_count},
    {"db.list_executed_transactions", {APP}, false, false, r_log},
    {"db.last_transaction_id", {APP}, false, false, r_last},
    {"db.changes_subscribe", {APP}, false, false, r_changes},
    {"server.clients", {"sprig"}, false, false, r_clients},
    {"kv.set", {APP ".keyvalue.n.k1"}, false, false, r_kv_set},
    {"kv.get", {APP ".keyvalue.n.k1"}, true, false, r_kv_get},
    {"kv.increment", {APP ".keyvalue.n.k1"}, false, false, r_kv_incr},
    {"kv.delete", {APP ".keyvalue.n.k1"}, false, false, r_kv_delete},
    {"kv.list", {APP ".keyvalue.n"}, false, false, r_kv_list},
    {"view.query", {APP ".collection.c.view.v"}, false, false, r_view_query},
    {"view.reduce", {APP ".collection.c.view.v"}, true, false, r_view_reduce},
    {"view.reduce_grouped",
     {APP ".collection.c.view.v"},
     true,
     false,
     r_view_grouped},
    {"view.delete_docs",
     {APP ".collection.c.view.v"},
     false,
     false,
     r_view_delete},
    {"pubsub.publish",
     {APP ".pubsub.t1", APP ".pubsub.t2"},
     false,
     false,
     r_publish},
    {"pubsub.subscriber_new", {APP ".pubsub"}, false, false, r_sub_new},
    {"pubsub.subscribe", {APP ".pubsub.news"}, false, true, r_subscribe},
    {"pubsub.unsubscribe", {APP ".pubsub.news"}, false, true, r_unsubscribe},
    {"admin.user_create", {"sprig.user.nu"}, false, false, r_user_create},
    {"admin.user_set_password",
     {"sprig.user.tu"},
     false,
     false,
     r_user_password},
    {"admin.user_delete", {"sprig.user.tu"}, false, false, r_user_delete},
    {"admin.user_group", {"sprig.user.tu"}, false, false, r_user_group},
    {"admin.user_role", {"sprig.user.tu"}, false, false, r_user_role},
    {"admin.role_create", {"sprig.role.nr"}, false, false, r_role_create},
    {"admin.role_group", {"sprig.role.rx"}, false, false, r_role_group},
    {"admin.group_create", {"sprig.group.ng"}, false, false, r_group_create},
    {"admin.group_grant", {"sprig.group.gx"}, false, false, r_group_grant},
    {"admin.group_revoke", {"sprig.group.gx"}, false, false, r_group_revoke},
    {"admin.token_create", {"sprig.user.tu"}, false, false, r_token_create},
    {"admin.token_delete",
     {"sprig.token." TOKEN},
     false,
     false,
     r_token_delete},
};
static const char *const elsewhere[] = {
    "auth.password",
    "auth.challenge",
    "auth.token",
    "auth.assume",
    "auth.logout",
    "pubsub.subscriber_free",
    "db.changes_unsubscribe",
    "server.apis", /* granted to all; its filter: test_api_platform, cli_api */
};

/* ---- the state a refused call must not change --------------------------- */

static void
fp_add(sprig_buf *b, const char *s)
{
    SPRIG_OK_(sprig_buf_append(b, s, strlen(s)));
    SPRIG_OK_(sprig_buf_append(b, "|", 1));
}

/* The admin records: every record of the four collections, with its
 * contents (hashes, groups, statements). */
static void
fp_admin(sprig_buf *b)
{
    static const char *const colls[] = {"users", "roles", "groups", "tokens"};
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, SPRIG_AUTH_DB, &db));
    for (size_t c = 0; c < 4; c++) {
        sprig_doc_list *l;
        SPRIG_OK_(sprig_list(db, colls[c], NULL, SPRIG_ASC, 0, &l));
        for (size_t i = 0; i < sprig_doc_list_count(l); i++) {
            const sprig_doc *d = sprig_doc_list_get(l, i);
            sprig_bytes id = sprig_doc_header(d).id, v = sprig_doc_contents(d);
            SPRIG_OK_(sprig_buf_append(b, id.data, id.len));
            SPRIG_OK_(sprig_buf_append(b, v.data, v.len));
        }
        sprig_doc_list_free(l);
    }
    sprig_db_close(db);
}

static void
fingerprint(sprig_buf *b)
{
    b->len = 0;
    char line[256];
    sprig_database_list *dl;
    SPRIG_OK_(sprig_storage_list_databases(st, &dl));
    for (size_t i = 0; i < sprig_database_list_count(dl); i++) {
        fp_add(b, sprig_database_list_name(dl, i));
    }
    sprig_database_list_free(dl);
    sprig_schema_list *sl;
    SPRIG_OK_(sprig_storage_list_schemas(st, &sl));
    for (size_t i = 0; i < sprig_schema_list_count(sl); i++) {
        fp_add(b, sprig_schema_list_get(sl, i)->name);
    }
    sprig_schema_list_free(sl);
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    sprig_doc_list *l;
    SPRIG_OK_(sprig_list(db, "c", NULL, SPRIG_ASC, 0, &l));
    for (size_t i = 0; i < sprig_doc_list_count(l); i++) {
        sprig_header h = sprig_doc_header(sprig_doc_list_get(l, i));
        snprintf(line, sizeof line, "%.*s@%llu", (int)h.id.len,
                 (const char *)h.id.data, (unsigned long long)h.revision);
        fp_add(b, line);
    }
    sprig_doc_list_free(l);
    sprig_value v = {0};
    int rc = sprig_kv_get(db, "n", "k1", false, &v);
    snprintf(line, sizeof line, "k1:%d:%lld", rc,
             rc ? 0 : (long long)v.num.i64);
    fp_add(b, line);
    sprig_value_clear(&v);
    uint64_t last;
    SPRIG_OK_(sprig_last_txn_id(db, &last));
    snprintf(line, sizeof line, "txn:%llu", (unsigned long long)last);
    fp_add(b, line);
    sprig_db_close(db);
    fp_admin(b);
}

/* Delete record `name` of admin collection `coll` if it is there. */
static void
drop_record(sprig_db *db, const char *coll, const char *name)
{
    sprig_doc *d = NULL;
    if (sprig_get(db, coll, sprig_str(name), &d) == 0) {
        sprig_header h = sprig_doc_header(d);
        SPRIG_OK_(sprig_delete(db, coll, &h));
    }
    sprig_doc_free(d);
}

/* The admin.* rows' targets as their cases expect them. */
static void
reset_admin(void)
{
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, SPRIG_AUTH_DB, &db));
    drop_record(db, "users", "nu");
    drop_record(db, "roles", "nr");
    drop_record(db, "groups", "ng");
    SPRIG_OK_(sprig_overwrite(db, "users", sprig_str("tu"),
                              sprig_str("{\"password\":null,\"groups\":[],"
                                        "\"roles\":[]}"),
                              NULL));
    SPRIG_OK_(sprig_overwrite(db, "roles", sprig_str("rx"),
                              sprig_str("{\"groups\":[]}"), NULL));
    SPRIG_OK_(sprig_overwrite(db, "groups", sprig_str("gx"),
                              sprig_str("{\"statements\":[{\"actions\":\"kv\","
                                        "\"resource\":\"sprig.db.x\"}]}"),
                              NULL));
    sprig_doc_list *l;
    SPRIG_OK_(sprig_list(db, "tokens", NULL, SPRIG_ASC, 0, &l));
    for (size_t i = 0; i < sprig_doc_list_count(l); i++) {
        sprig_header h = sprig_doc_header(sprig_doc_list_get(l, i));
        SPRIG_OK_(sprig_delete(db, "tokens", &h));
    }
    sprig_doc_list_free(l);
    SPRIG_OK_(sprig_overwrite(db, "tokens", sprig_str(TOKEN),
                              sprig_str("{\"user\":\"tu\",\"key\":\""
                                        "0000000000000000000000000000000000000"
                                        "000000000000000000000000000\"}"),
                              NULL));
    sprig_db_close(db);
    sprig_auth_changed(auth);
}

/* Put the storage back as every case expects it. */
static void
reset(void)
{
    reset_admin();
    sprig_storage_delete_database(st, "newdb");
    SPRIG_OK_(sprig_storage_create_database(st, "victim", "m", true));
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    const char *ids[2] = {"d1", "d2"};
    for (int i = 0; i < 2; i++) {
        SPRIG_OK_(sprig_overwrite(db, "c", sprig_str(ids[i]),
                                  sprig_str("{\"k\":1}"), NULL));
    }
    sprig_doc *d = NULL;
    if (sprig_get(db, "c", sprig_str("new"), &d) == 0) {
        sprig_header h = sprig_doc_header(d);
        SPRIG_OK_(sprig_delete(db, "c", &h));
    }
    sprig_doc_free(d);
    sprig_value v = sprig_value_of_i64(1);
    SPRIG_OK_(sprig_kv_set(db, "n", "k1", &v, NULL, NULL, NULL));
    sprig_db_close(db);
}

/* ---- grants
 * ------------------------------------------------------------------ */

static char granted[N_IDS][2][256]; /* what each group holds now */

static void
group_set(int who, const char *actions, const char *r0, const char *r1)
{
    for (int i = 0; i < 2; i++) {
        if (granted[who][i][0]) {
            SPRIG_OK_(sprig_auth_group_revoke(auth, NULL, groups[who],
                                              granted[who][i]));
            granted[who][i][0] = 0;
        }
    }
    const char *rs[2] = {r0, r1};
    for (int i = 0; i < 2; i++) {
        if (rs[i]) {
            SPRIG_OK_(sprig_auth_group_grant(auth, NULL, groups[who], actions,
                                             rs[i]));
            snprintf(granted[who][i], sizeof granted[who][i], "%s", rs[i]);
        }
    }
}

/* "sprig.db.app.x" -> "sprig.db.a*.x"; "sprig" -> "*". */
static void
wild_of(const char *res, char *out, size_t n)
{
    if (strncmp(res, "sprig.db.", 9) != 0 &&
        strncmp(res, "sprig.schema.", 13)) {
        snprintf(out, n, "*");
        return;
    }
    const char *third = strchr(res + 6, '.') + 1;
    const char *rest = strchr(third, '.');
    snprintf(out, n, "%.*s%c*%s", (int)(third - res), res, third[0],
             rest ? rest : "");
}

static void
grant_for(const mcase *mc, const char *action)
{
    const char *r1 = mc->res[1];
    group_set(EXACT, action, mc->res[0], r1);
    group_set(ROLE, action, mc->res[0], r1);
    char wild[256], wild1[256], first[64];
    wild_of(mc->res[0], wild, sizeof wild);
    if (r1) {
        wild_of(r1, wild1, sizeof wild1);
    }
    snprintf(first, sizeof first, "%.*s", (int)strcspn(action, "."), action);
    group_set(WILD, first, wild, r1 ? wild1 : NULL);
    /* other: the action elsewhere, and every other action here */
    char others[128];
    snprintf(others, sizeof others, "x%s,%s.nothing", first, action);
    bool server = strcmp(mc->res[0], "sprig") == 0;
    group_set(OTHER, server ? others : action,
              server ? "sprig" : "sprig.db.elsewhere", NULL);
    if (!server) {
        SPRIG_OK_(sprig_auth_group_grant(auth, NULL, groups[OTHER], others,
                                         mc->res[0]));
        snprintf(granted[OTHER][1], sizeof granted[OTHER][1], "%s", mc->res[0]);
    }
}

/* ---- placements
 * -------------------------------------------------------------- */

static void
start_servers(void)
{
    placement_cert(root, cert, key, sizeof cert);
    for (int i = 0; i < 3; i++) {
        sprig_server_options o;
        sprig_server_options_init(&o);
        o.ws_listen = i == 2 ? NULL : "127.0.0.1:0";
        o.quic_listen = i == 2 ? "127.0.0.1:0" : NULL;
        o.workers = 2;
        o.auth = auth;
        o.max_connections_per_address = 0;
        if (i >= 1) {
            o.tls_cert_file = cert; /* wss, and QUIC's certificate */
            o.tls_key_file = key;
        }
        SPRIG_OK_(sprig_server_new_for(st, &o, &srv[i]));
        SPRIG_OK_(sprig_server_start(srv[i]));
    }
}

/* A client of placement p (ws, wss or quic) logged in as `user`. */
static sprig_client *
connect_as(int p, const char *user)
{
    char url[64];
    sprig_server *s = srv[p - P_WS];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", place_names[p],
             p == P_QUIC ? sprig_server_quic_port(s) : sprig_server_ws_port(s));
    sprig_client_options co;
    sprig_client_options_init(&co);
    co.pinned_cert_path = p == P_WS ? NULL : cert;
    sprig_client *cl;
    SPRIG_OK_(sprig_client_connect(url, &co, &cl));
    SPRIG_OK_(sprig_client_authenticate_password(cl, user, "pw"));
    return cl;
}

static void
log_in_everyone(void)
{
    for (int who = 0; who < N_IDS; who++) {
        char user[16];
        snprintf(user, sizeof user, "u_%s", id_names[who]);
        SPRIG_OK_(sprig_auth_login_password(auth, user, "pw", &idents[who]));
        SPRIG_OK_(
            sprig_storage_narrow(st, auth, idents[who], &as[P_LOCAL][who]));
        for (int p = P_WS; p < N_PLACES; p++) {
            clients[p][who] = connect_as(p, user);
            as[p][who] = sprig_client_storage(clients[p][who]);
        }
    }
}

static int
setup(void **state)
{
    (void)state;
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = root;
    so.durability = SPRIG_DURABILITY_NONE;
    SPRIG_OK_(sprig_storage_open(&so, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &schema));
    SPRIG_OK_(sprig_storage_create_database(st, "app", "m", false));
    sprig_auth_options ao;
    sprig_auth_options_min(&ao);
    SPRIG_OK_(sprig_auth_open(st, &ao, &auth));
    SPRIG_OK_(sprig_auth_group_create(auth, NULL, "base"));
    for (int who = 0; who < N_IDS; who++) {
        char user[16];
        snprintf(user, sizeof user, "u_%s", id_names[who]);
        SPRIG_OK_(sprig_auth_user_create(auth, NULL, user, "pw"));
        SPRIG_OK_(sprig_auth_user_group(auth, NULL, user, "base", true));
        if (groups[who]) {
            SPRIG_OK_(sprig_auth_group_create(auth, NULL, groups[who]));
        }
        if (who == ROLE) {
            SPRIG_OK_(sprig_auth_role_create(auth, NULL, "r"));
            SPRIG_OK_(
                sprig_auth_role_group(auth, NULL, "r", groups[who], true));
            SPRIG_OK_(sprig_auth_user_role(auth, NULL, user, "r", true));
        } else if (groups[who]) {
            SPRIG_OK_(
                sprig_auth_user_group(auth, NULL, user, groups[who], true));
        }
    }
    start_servers();
    log_in_everyone();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    for (int who = 0; who < N_IDS; who++) {
        sprig_storage_close(as[P_LOCAL][who]);
        for (int p = P_WS; p < N_PLACES; p++) {
            sprig_client_close(clients[p][who]);
        }
        sprig_identity_release(idents[who]);
    }
    for (int i = 0; i < 3; i++) {
        sprig_server_free(srv[i]);
    }
    sprig_auth_free(auth);
    sprig_storage_close(st);
    return 0;
}

/* ---- running
 * ------------------------------------------------------------------ */

/* The base grant (database.open on app; for subscriber rows, making a
 * subscriber) on, or off. */
static void
base(const char *actions)
{
    sprig_auth_group_revoke(auth, NULL, "base", APP);
    sprig_auth_group_revoke(auth, NULL, "base", APP ".pubsub");
    if (actions) {
        SPRIG_OK_(sprig_auth_group_grant(
            auth, NULL, "base", actions,
            strchr(actions, 'p') == actions ? APP ".pubsub" : APP));
    }
}

/* A local subscriber on t1 and t2: a refused publish reaches nobody. */
static bool
nothing_published(sprig_subscriber *watch)
{
    sprig_message *m = NULL;
    int rc = sprig_subscriber_recv(watch, 50, &m);
    sprig_message_free(m);
    return rc == SPRIG_ETIMEDOUT;
}

static void
run_case(const mcase *mc, int p, int who, sprig_subscriber *watch,
         sprig_buf *fp0, sprig_buf *fp1)
{
    bool want_ok = who == EXACT || who == WILD || who == ROLE;
    ctx c = {as[p][who], NULL, p == P_LOCAL ? idents[who] : NULL};
    sprig_subscriber *sub = NULL;
    bool open_row = strcmp(mc->api, "storage.database") == 0;
    base(open_row ? NULL : "database.open");
    if (!strncmp(mc->api, "db.", 3) || !strncmp(mc->api, "kv.", 3) ||
        !strncmp(mc->api, "view.", 5) || !strncmp(mc->api, "pubsub.", 7)) {
        SPRIG_OK_(sprig_storage_open_database(c.st, "app", &c.db));
    }
    if (mc->needs_sub) {
        base("pubsub.subscribe");
        SPRIG_OK_(sprig_subscriber_new(c.db, &sub));
        base(NULL); /* the row's own grant decides now */
    }
    fingerprint(fp0);
    int rc = mc->run(&c, sub);
    fingerprint(fp1);
    bool ok = want_ok ? (mc->any_ok ? rc != SPRIG_EPERM : rc == 0)
                      : rc == SPRIG_EPERM;
    if (!ok) {
        fail_msg("%s (%s) over %s as %s: %d (%s)", mc->api,
                 mc->action ? mc->action : "", place_names[p], id_names[who],
                 rc, sprig_errmsg());
    }
    if (!want_ok &&
        (fp0->len != fp1->len || memcmp(fp0->data, fp1->data, fp0->len) != 0)) {
        fail_msg("%s (%s) over %s as %s: refused, yet the state changed",
                 mc->api, mc->action ? mc->action : "", place_names[p],
                 id_names[who]);
    }
    if (!want_ok && strcmp(mc->api, "pubsub.publish") == 0) {
        assert_true(nothing_published(watch));
    }
    sprig_subscriber_free(sub);
    sprig_db_close(c.db);
    if (want_ok) {
        reset();
    }
    while (strcmp(mc->api, "pubsub.publish") == 0 && want_ok &&
           !nothing_published(watch)) {
    } /* drain what the granted publish sent */
}

static void
test_every_row_covered(void **state)
{
    (void)state;
    size_t n = sprig__registry_count(&srv[0]->reg);
    for (size_t i = 0; i < n; i++) {
        const char *name = sprig__registry_at(&srv[0]->reg, i)->api.name;
        bool found = false;
        for (size_t j = 0; j < sizeof cases / sizeof *cases; j++) {
            found |= strcmp(cases[j].api, name) == 0;
        }
        for (size_t j = 0; j < sizeof elsewhere / sizeof *elsewhere; j++) {
            found |= strcmp(elsewhere[j], name) == 0;
        }
        if (!found) {
            fail_msg("row %s has no case in the permission matrix", name);
        }
    }
}

static void
test_matrix(void **state)
{
    (void)state;
    sprig_db *db;
    SPRIG_OK_(sprig_storage_open_database(st, "app", &db));
    sprig_subscriber *watch;
    SPRIG_OK_(sprig_subscriber_new(db, &watch));
    SPRIG_OK_(sprig_subscribe(watch, sprig_str("t1")));
    SPRIG_OK_(sprig_subscribe(watch, sprig_str("t2")));
    reset();
    sprig_buf fp0 = {0}, fp1 = {0};
    size_t calls = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const mcase *mc = &cases[i];
        const sprig__api *api = sprig__api_find(sprig_str(mc->api));
        assert_non_null(api);
        grant_for(mc, mc->action ? mc->action : api->action);
        for (int p = 0; p < N_PLACES; p++) {
            for (int who = 0; who < N_IDS; who++) {
                run_case(mc, p, who, watch, &fp0, &fp1);
                calls++;
            }
        }
    }
    print_message("permission matrix: %zu calls (%zu rows x %d placements x "
                  "%d identities)\n",
                  calls, sizeof cases / sizeof *cases, N_PLACES, N_IDS);
    sprig_buf_clear(&fp0);
    sprig_buf_clear(&fp1);
    sprig_subscriber_free(watch);
    sprig_db_close(db);
}

/* One placement's part of test_insert_not_delete: `c` acts as u_writer. */
static void
insert_not_delete(ctx *c, int p, sprig_buf *fp0, sprig_buf *fp1)
{
    char id[16];
    snprintf(id, sizeof id, "w%d", p);
    sprig_bytes wid = sprig_str(id), mid = sprig_str("mixed");
    SPRIG_OK_(sprig_insert(c->db, "c", &wid, sprig_str("{}"), NULL));
    assert_int_equal(r_delete_doc(c, NULL), SPRIG_EPERM);
    assert_int_equal(r_push(c, NULL), SPRIG_EPERM); /* not on "p" */
    sprig_doc *d = NULL;
    sprig_header h = stored_d1(&d);
    sprig_txn *t;
    SPRIG_OK_(sprig_txn_new(&t));
    SPRIG_OK_(sprig_txn_insert(t, "c", &mid, sprig_str("{}")));
    SPRIG_OK_(sprig_txn_delete(t, "c", &h));
    fingerprint(fp0);
    int rc = sprig_txn_apply(c->db, t, NULL);
    fingerprint(fp1);
    const char *msg = sprig_errmsg();
    if (rc != SPRIG_EPERM || !strstr(msg, "'document.delete'") ||
        !strstr(msg, DOC "d1'") ||
        !strstr(msg, "operation 2 of the transaction's 2")) {
        fail_msg("mixed transaction over %s: %d (%s)", place_names[p], rc, msg);
    }
    assert_int_equal(fp0->len, fp1->len); /* nothing of it was written */
    assert_memory_equal(fp0->data, fp1->data, fp0->len);
    sprig_txn_free(t);
    sprig_doc_free(d);
}

/* An identity granted insert (and get) but not delete on one collection:
 * its inserts pass, its deletes and inserts elsewhere are refused, and a
 * transaction mixing an insert and a delete is refused whole -- naming
 * the delete -- with nothing written, over every placement. */
static void
test_insert_not_delete(void **state)
{
    (void)state;
    SPRIG_OK_(sprig_auth_user_create(auth, NULL, "u_writer", "pw"));
    SPRIG_OK_(sprig_auth_group_create(auth, NULL, "g_writer"));
    SPRIG_OK_(
        sprig_auth_group_grant(auth, NULL, "g_writer", "database.open", APP));
    SPRIG_OK_(sprig_auth_group_grant(auth, NULL, "g_writer",
                                     "document.insert,document.get",
                                     APP ".collection.c"));
    SPRIG_OK_(sprig_auth_user_group(auth, NULL, "u_writer", "g_writer", true));
    reset();
    sprig_buf fp0 = {0}, fp1 = {0};
    sprig_identity *who;
    SPRIG_OK_(sprig_auth_login_password(auth, "u_writer", "pw", &who));
    for (int p = 0; p < N_PLACES; p++) {
        sprig_client *cl = p == P_LOCAL ? NULL : connect_as(p, "u_writer");
        ctx c = {cl ? sprig_client_storage(cl) : NULL, NULL};
        if (!cl) {
            SPRIG_OK_(sprig_storage_narrow(st, auth, who, &c.st));
        }
        SPRIG_OK_(sprig_storage_open_database(c.st, "app", &c.db));
        insert_not_delete(&c, p, &fp0, &fp1);
        sprig_db_close(c.db);
        if (cl) {
            sprig_client_close(cl);
        } else {
            sprig_storage_close(c.st);
        }
    }
    sprig_identity_release(who);
    sprig_buf_clear(&fp0);
    sprig_buf_clear(&fp1);
}

int
main(void)
{
    root = tu_tmpdir("auth_matrix");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_covered),
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_insert_not_delete),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    tu_rmtree(root);
    return rc;
}
