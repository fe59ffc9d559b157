/*
 * storage.c -- a local storage: a directory holding many databases.
 *
 * Layout of a storage directory:
 *   sprig.lock        flock()ed while a process has the storage open
 *   _admin/           LMDB env: `databases` (name -> schema, directory id),
 *                     `schemas` (name -> collections), `meta` (next dir id,
 *                     format version, codec defaults: storage_vault.c)
 *   vault, vault.key  the encrypted master keys, the default key file
 *                     (vault.c; only when something is encrypted)
 *   db/<name>.<id>/   LMDB env of one database
 *
 * Design notes.  Creating a database makes its directory first and records
 * it in the registry second; deleting removes it from the registry first and
 * its directory second (after its last handle closes).  A crash between the
 * two steps leaves a directory the registry does not name, which the next
 * open removes: the registry is the truth.  Directory ids never repeat, so
 * a deleted database still open through old handles never shares files with
 * a new one of the same name.
 *
 * Engines (sprig__ldb) stay open in `open` until the storage closes or the
 * database is deleted.  `handles` counts sprig_db handles: a closed storage
 * is destroyed when its last handle goes.  All of this is guarded by `lock`;
 * database work itself never takes it.
 */
#include "core/cmd.h"
#include "local.h"
#include "repl.h"

#include "core/view.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST(s) ((sprig__lstorage *)(s))

void
sprig_storage_options_init(sprig_storage_options *o)
{
    memset(o, 0, sizeof *o);
    o->durability = SPRIG_DURABILITY_FULL;
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int
sprig__rmdir_tree(const char *dir)
{
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT) {
        return sprig__err(SPRIG_EIO, "cannot remove '%s': %s", dir,
                          strerror(errno));
    }
    return SPRIG_OK;
}

static void
db_dir(const sprig__lstorage *st, const char *name, uint64_t id, char *out,
       size_t n)
{
    snprintf(out, n, "%s/db/%s.%llu", st->path, name, (unsigned long long)id);
}

/* ---- registry records --------------------------------------------------- */

typedef sprig__reg_entry reg_entry;

/* `name` is not in the registry: SPRIG_ENOTFOUND, but SPRIG_ECORRUPT when
 * an entry does not decode (its name may be `name`'s, damaged). */
static int
reg_absent(sprig__lstorage *st, MDB_txn *txn, const char *name)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int mrc = mdb_cursor_open(txn, st->reg_dbs, &cur);
    while (mrc == 0 && (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        reg_entry e;
        char other[SPRIG_NAME_MAX + 1];
        snprintf(other, sizeof other, "%.*s", (int)k.mv_size,
                 (const char *)k.mv_data);
        if (sprig__reg_decode(other, &v, &e) != 0) {
            char m[300];
            snprintf(m, sizeof m, "%s", sprig_errmsg());
            mdb_cursor_close(cur);
            return sprig__err(SPRIG_ECORRUPT,
                              "storage '%.200s': its registry (_admin) has no "
                              "entry for database '%s' and a damaged one: %s",
                              st->path, name, m);
        }
    }
    if (cur) {
        mdb_cursor_close(cur);
    }
    int rc = sprig__err_about(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DATABASE,
                              "no database named '%s'", name);
    sprig__errinfo_database(name);
    return rc;
}

/* Look `name` up in the registry: SPRIG_ENOTFOUND when absent. */
static int
reg_get(sprig__lstorage *st, const char *name, reg_entry *e)
{
    MDB_txn *txn;
    int rc = sprig__env_read_begin(st->admin, &txn);
    if (rc) {
        return rc;
    }
    MDB_val k = {strlen(name), (void *)name}, v;
    int mrc = mdb_get(txn, st->reg_dbs, &k, &v);
    if (mrc == MDB_NOTFOUND) {
        rc = reg_absent(st, txn, name);
    } else {
        rc = mrc ? sprig__mdb_err(mrc, "reading the registry")
                 : sprig__reg_decode(name, &v, e);
    }
    sprig__env_read_end(st->admin, txn);
    return rc;
}

/* The directory id the next CREATE_DB command will record: meta
 * "next_dir" + 1 (admin writes are serialised by st->lock). */
static int
next_dir_id(sprig__lstorage *st, uint64_t *out)
{
    MDB_txn *txn;
    int rc = sprig__env_read_begin(st->admin, &txn);
    if (rc) {
        return rc;
    }
    MDB_val k = {8, "next_dir"}, v;
    int mrc = mdb_get(txn, st->reg_meta, &k, &v);
    *out = (mrc == 0 && v.mv_size == 8 ? sprig__get_u64be(v.mv_data) : 0) + 1;
    rc = mrc && mrc != MDB_NOTFOUND ? sprig__mdb_err(mrc, "reading the "
                                                          "registry")
                                    : 0;
    sprig__env_read_end(st->admin, txn);
    return rc;
}

/* An admin command of `kind` accepted now. */
static sprig__cmd
admin_cmd(sprig__lstorage *st, sprig__cmd_kind kind)
{
    sprig__cmd c = {.kind = kind};
    c.now_ms = sprig__clock_now(&st->opts);
    return c;
}

/* ---- schemas ------------------------------------------------------------ */

static const sprig_schema_def *
find_schema(sprig__lstorage *st, const char *name)
{
    for (size_t i = 0; i < st->n_schemas; i++) {
        if (strcmp(st->schemas[i]->name, name) == 0) {
            return st->schemas[i];
        }
    }
    return NULL;
}

/* Make room for one more schema in the in-memory list. */
static int
reserve_schema(sprig__lstorage *st)
{
    sprig_schema_def **p =
        sprig__realloc(st->schemas, (st->n_schemas + 1) * sizeof *p);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory registering a schema");
    }
    st->schemas = p;
    return SPRIG_OK;
}

/* Put `copy` in the in-memory list (room reserved), replacing one of the
 * same name. */
static void
remember_schema(sprig__lstorage *st, sprig_schema_def *copy)
{
    for (size_t i = 0; i < st->n_schemas; i++) {
        if (strcmp(st->schemas[i]->name, copy->name) == 0) {
            sprig__free(st->schemas[i]);
            st->schemas[i] = copy;
            return;
        }
    }
    st->schemas[st->n_schemas++] = copy;
}

/* A stored schema failed to decode: name the storage and its registry. */
static int
schema_corrupt(const sprig__lstorage *st)
{
    char m[400];
    snprintf(m, sizeof m, "%s", sprig_errmsg());
    return sprig__err(SPRIG_ECORRUPT,
                      "storage '%.200s': its registry (_admin): %s", st->path,
                      m);
}

static int
load_schemas(sprig__lstorage *st)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = sprig__env_read_begin(st->admin, &txn);
    if (rc) {
        return rc;
    }
    int mrc = mdb_cursor_open(txn, st->reg_schemas, &cur);
    if (mrc == 0) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0 && rc == 0) {
            sprig_schema_def *s;
            rc = reserve_schema(st);
            rc = rc ? rc
                    : sprig__schema_decode((sprig_bytes){v.mv_data, v.mv_size},
                                           &s);
            if (rc == 0 && (k.mv_size != strlen(s->name) ||
                            memcmp(k.mv_data, s->name, k.mv_size))) {
                rc = sprig__err(
                    SPRIG_ECORRUPT, "a schema stored as '%.*s' is named '%s'",
                    (int)k.mv_size, (const char *)k.mv_data, s->name);
                sprig__free(s); /* one allocation (sprig__schema_copy) */
            }
            if (rc == 0) {
                remember_schema(st, s);
            } else if (rc == SPRIG_ECORRUPT) {
                rc = schema_corrupt(st);
            }
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    sprig__env_read_end(st->admin, txn);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "reading schemas");
    }
    return rc;
}

/* Drop cached engines of schema `name` that no handle uses, so the next
 * handle opens them with the new definition. */
static void
forget_idle_engines(sprig__lstorage *st, const char *name)
{
    size_t j = 0;
    for (size_t i = 0; i < st->n_open; i++) {
        sprig__ldb *l = st->open[i];
        if (l->refs == 0 && strcmp(l->schema->name, name) == 0) {
            sprig__ldb_free(l);
        } else {
            st->open[j++] = l;
        }
    }
    st->n_open = j;
}

/* ---- re-registration: what a new definition may change -----------------
 * A new definition of a known schema may add collections and views and
 * change views (their indexes are rebuilt), never drop a collection or a
 * view, nor change a collection's id kind: stored data would become
 * unreachable or misread, and an index would vanish with its definition
 * (a remote client that listed a schema without its views once deleted
 * them this way).  A C view without its code -- from a schema a tool read
 * back, or one registered over the network -- keeps the storage's own C
 * view of that name, code included, and must describe it exactly. */

static const sprig_view_def *
find_view(const sprig_collection_def *c, const char *name)
{
    for (size_t i = 0; c && i < c->n_views; i++) {
        if (strcmp(c->views[i].name, name) == 0) {
            return &c->views[i];
        }
    }
    return NULL;
}

/* Give the codeless C view `v` of the new definition the code of the
 * storage's view `o` of the same name, which must be the same C view. */
static int
keep_c_view(const char *schema, const char *coll, sprig_view_def *v,
            const sprig_view_def *o)
{
    if (!o || o->json_key || o->version != v->version ||
        o->policy != v->policy || o->builtin_reduce != v->builtin_reduce ||
        (o->reduce != NULL) != (v->reduce != NULL)) {
        return sprig__err(SPRIG_ESCHEMA,
                          "schema '%s': view '%s' of collection '%s' is a C "
                          "view without its code (its code cannot travel "
                          "over the network or in a schema file), and the "
                          "storage has %s; only the program that defines it "
                          "can register it",
                          schema, v->name, coll,
                          o ? "a different view of that name"
                            : "no C view of that name to keep");
    }
    v->map = o->map;
    v->reduce = o->reduce;
    v->udata = o->udata;
    return SPRIG_OK;
}

/* Check (and complete) the views of collection `n` against its old
 * definition `o` (NULL for a new collection).  `from_log`: the definition
 * comes from a replicated SCHEMA command (decoded: its C views have no
 * code), which every node must take alike -- a C view this node has no
 * code for stays codeless until the node's program registers it. */
static int
check_views(const char *schema, const sprig_collection_def *o,
            sprig_collection_def *n, bool from_log)
{
    for (size_t i = 0; o && i < o->n_views; i++) {
        if (!find_view(n, o->views[i].name)) {
            return sprig__err(SPRIG_ESCHEMA,
                              "schema '%s' would drop view '%s' of "
                              "collection '%s' (views cannot be removed)",
                              schema, o->views[i].name, o->name);
        }
    }
    sprig_view_def *views = (sprig_view_def *)n->views; /* our copy */
    for (size_t i = 0; i < n->n_views; i++) {
        if (views[i].map == sprig__codeless_map) {
            int rc = keep_c_view(schema, n->name, &views[i],
                                 find_view(o, views[i].name));
            if (rc && !from_log) {
                return rc;
            }
        }
    }
    return SPRIG_OK;
}

static int
check_compatible(const sprig_schema_def *old, sprig_schema_def *def,
                 bool from_log)
{
    for (size_t i = 0; old && i < old->n_collections; i++) {
        const sprig_collection_def *o = &old->collections[i];
        const sprig_collection_def *n = sprig__schema_find(def, o->name);
        if (!n) {
            return sprig__err(SPRIG_ESCHEMA,
                              "schema '%s' would drop "
                              "collection '%s'",
                              def->name, o->name);
        }
        if (n->id_kind != o->id_kind) {
            return sprig__err(SPRIG_ESCHEMA,
                              "schema '%s' would change the "
                              "id kind of collection '%s'",
                              def->name, o->name);
        }
    }
    for (size_t i = 0; i < def->n_collections; i++) {
        sprig_collection_def *n = (sprig_collection_def *)&def->collections[i];
        const sprig_collection_def *o =
            old ? sprig__schema_find(old, n->name) : NULL;
        int rc = check_views(def->name, o, n, from_log);
        if (rc) {
            return rc;
        }
    }
    return SPRIG_OK;
}

/* Is `old` stored exactly as `enc`?  Then registering it again writes
 * nothing (so it works on a full disk or a read-only storage); the code
 * of its C views, never stored, is still taken. */
static bool
same_stored(const sprig_schema_def *old, sprig_bytes enc)
{
    sprig_buf b = {0};
    bool same = old && sprig__schema_encode(old, &b) == 0 && b.len == enc.len &&
                memcmp(b.data, enc.data, b.len) == 0;
    sprig_buf_clear(&b);
    return same;
}

/* Register `def` by SCHEMA command `c` (whose bytes encode it);
 * `from_log`: as check_views says. */
static int
register_with(sprig__lstorage *st, const sprig_schema_def *def, sprig__cmd *c,
              bool from_log)
{
    sprig_schema_def *copy;
    int rc = sprig__schema_copy(def, &copy);
    if (rc) {
        return rc;
    }
    pthread_mutex_lock(&st->lock);
    const sprig_schema_def *old = find_schema(st, def->name);
    rc = check_compatible(old, copy, from_log);
    rc = rc ? rc : reserve_schema(st); /* so remembering cannot fail */
    if (rc == 0 && !same_stored(old, c->schema)) {
        rc = sprig__admin_run(st, c);
    }
    if (rc == 0) {
        remember_schema(st, copy);
        copy = NULL;
        forget_idle_engines(st, def->name);
    }
    pthread_mutex_unlock(&st->lock);
    sprig__free(copy);
    return rc;
}

int
sprig__storage_put_schema(sprig__lstorage *st, sprig_bytes rec)
{
    sprig_schema_def *def;
    int rc = sprig__schema_decode(rec, &def);
    if (rc) {
        return rc;
    }
    const sprig_schema_def *old = find_schema(st, def->name);
    sprig__cmd c = admin_cmd(st, SPRIG__CMD_SCHEMA);
    c.schema = rec;
    rc = old ? check_compatible(old, def, true) : 0;
    rc = rc ? rc : reserve_schema(st);
    rc = rc ? rc : sprig__admin_run(st, &c);
    if (rc == 0) {
        remember_schema(st, def);
        def = NULL;
    }
    sprig__free(def);
    return rc;
}

/* Is schema `name` registered with exactly the stored record `rec`? */
static bool
schema_stored(sprig__lstorage *st, const char *name, sprig_bytes rec)
{
    pthread_mutex_lock(&st->lock);
    bool same = same_stored(find_schema(st, name), rec);
    pthread_mutex_unlock(&st->lock);
    return same;
}

/* Would `def` be taken here, as a registration of this node's program or
 * client (not from the log)?  Checked before a replicated SCHEMA command
 * is proposed: the log's apply takes a C view without code (a node
 * without the program's code must take what the group took), so a
 * registration naming a C view this storage does not have -- refused on
 * a single storage -- is refused by the node proposing it, before it can
 * make the view codeless on every node (cconf). */
static int
precheck_schema(sprig__lstorage *st, const sprig_schema_def *def)
{
    sprig_schema_def *copy;
    int rc = sprig__schema_copy(def, &copy);
    if (rc) {
        return rc;
    }
    pthread_mutex_lock(&st->lock);
    rc = check_compatible(find_schema(st, def->name), copy, false);
    pthread_mutex_unlock(&st->lock);
    sprig__free(copy);
    return rc;
}

static int
l_register_schema(sprig_storage *s, const sprig_schema_def *def)
{
    sprig__lstorage *st = ST(s);
    sprig_buf enc = {0};
    sprig__cmd c = admin_cmd(st, SPRIG__CMD_SCHEMA);
    int rc = sprig__schema_encode(def, &enc);
    c.schema = sprig_buf_bytes(&enc);
    const sprig__repl *repl = sprig__storage_repl(st, &c);
    if (rc == 0 && repl && !schema_stored(st, def->name, c.schema)) {
        /* through the group; then locally again, which records nothing
         * more but keeps the code of C views the decoded copy lacks */
        rc = precheck_schema(st, def);
        rc = rc ? rc : sprig__repl_run(repl, "", &c);
    }
    rc = rc ? rc : register_with(st, def, &c, false);
    sprig_buf_clear(&enc);
    return rc;
}

static int
l_list_schemas(sprig_storage *s, sprig_schema_list **out)
{
    sprig__lstorage *st = ST(s);
    sprig_schema_list *l = sprig__calloc(1, sizeof *l);
    int rc = l ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory listing");
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; rc == 0 && i < st->n_schemas; i++) {
        sprig_schema_def *c;
        rc = sprig__schema_copy(st->schemas[i], &c);
        rc = rc ? rc : sprig__schema_list_push(l, c);
    }
    pthread_mutex_unlock(&st->lock);
    if (rc) {
        sprig_schema_list_free(l);
        return rc;
    }
    *out = l;
    return SPRIG_OK;
}

/* ---- databases ---------------------------------------------------------- */

/* A read-only storage refuses changes before anything is touched. */
static int
refuse_read_only(const sprig__lstorage *st)
{
    return st->opts.read_only ? sprig__err(SPRIG_EPERM,
                                           "storage '%s' is open read-only: "
                                           "writes are refused",
                                           st->path)
                              : SPRIG_OK;
}

/* Is `name` absent, or present as asked?  *done when nothing more is to
 * be done.  Lock held. */
static int
check_new(sprig__lstorage *st, const char *name, const char *schema,
          bool only_if_needed, bool *done)
{
    reg_entry e;
    int rc = reg_get(st, name, &e);
    *done = rc == 0;
    if (rc == SPRIG_ENOTFOUND) {
        return SPRIG_OK;
    }
    if (rc == 0 && !only_if_needed) {
        rc = sprig__err_about(SPRIG_EEXIST, SPRIG_ERROR_KIND_DATABASE,
                              "database '%s' exists", name);
    } else if (rc == 0 && strcmp(e.schema, schema) != 0) {
        rc = sprig__err_about(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_DATABASE,
                              "database '%s' exists with schema '%s', not '%s'",
                              name, e.schema, schema);
        sprig__errinfo_schema(e.schema);
    }
    if (rc) {
        sprig__errinfo_database(name);
    }
    return rc;
}

/* Create by CREATE_DB command `c`: the directory and engine first (at the
 * id the command will record), the registry record second.  Lock held. */
static int
create_with(sprig__lstorage *st, sprig__cmd *c)
{
    return sprig__storage_create_at(st, c, NULL, NULL);
}

int
sprig__storage_create_at(sprig__lstorage *st, sprig__cmd *c,
                         int (*fill)(const char *dir, void *arg), void *arg)
{
    const sprig_schema_def *def = find_schema(st, c->schema_name);
    uint64_t dir_id = 0;
    int rc =
        def ? next_dir_id(st, &dir_id)
            : sprig__err_about(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_SCHEMA,
                               "schema '%s' is not registered", c->schema_name);
    if (!def) {
        sprig__errinfo_schema(c->schema_name);
    }
    char dir[4096];
    sprig__ldb *ldb = NULL;
    db_dir(st, c->name, dir_id, dir, sizeof dir);
    rc = rc || !fill ? rc : fill(dir, arg);
    rc = rc ? rc : sprig__ldb_open(st, c->name, dir, def, &ldb);
    if (rc == 0 && c->raft_index && !fill) {
        /* entries before this one never apply to the new database */
        rc = sprig__ldb_mark_applied(ldb, c->raft_index);
    }
    rc = rc ? rc : sprig__admin_run(st, c);
    if (rc == 0 && c->out.dir_id != dir_id) {
        rc = sprig__err(SPRIG_ECORRUPT, "the registry moved under a create");
    }
    sprig__ldb **p = NULL;
    if (rc == 0) {
        p = sprig__realloc(st->open, (st->n_open + 1) * sizeof *p);
    }
    if (p) {
        st->open = p;
        st->open[st->n_open++] = ldb;
    } else if (ldb) {
        /* registered but not cached: it reopens on first use (or, after a
         * failure, is an orphan the next open removes) */
        sprig__ldb_free(ldb);
    }
    return rc;
}

static int
l_create_database(sprig_storage *s, const char *name, const char *schema,
                  bool only_if_needed)
{
    sprig__lstorage *st = ST(s);
    sprig__cmd c = admin_cmd(st, SPRIG__CMD_CREATE_DB);
    c.name = name;
    c.schema_name = schema;
    bool done;
    const sprig__repl *repl = sprig__storage_repl(st, &c);
    pthread_mutex_lock(&st->lock);
    int rc = check_new(st, name, schema, only_if_needed, &done);
    rc = rc || done ? rc : refuse_read_only(st);
    rc = rc || done || repl ? rc : create_with(st, &c);
    pthread_mutex_unlock(&st->lock);
    return rc || done || !repl ? rc : sprig__repl_run(repl, "", &c);
}

/* Delete by DELETE_DB command `c`: the registry record first, made
 * durable whatever the durability mode (in `normal` the record would reach
 * the disk up to 10 ms later, and a power loss in between left a registry
 * naming a directory already removed: found by tests/powerloss), then the
 * files, when the last handle goes.  Lock held. */
static int
delete_with(sprig__lstorage *st, sprig__cmd *c)
{
    int rc = sprig__admin_run(st, c);
    rc = rc ? rc : sprig__ckpt_flush(st->admin);
    if (rc) {
        return rc;
    }
    sprig__ldb *ldb = NULL;
    for (size_t i = 0; i < st->n_open; i++) {
        if (strcmp(st->open[i]->name, c->name) == 0) {
            ldb = st->open[i];
            st->open[i] = st->open[--st->n_open];
            break;
        }
    }
    if (ldb) {
        atomic_store(&ldb->dropped, true);
        if (ldb->refs == 0) {
            sprig__ldb_free(ldb);
        }
        return SPRIG_OK;
    }
    char dir[4096];
    db_dir(st, c->name, c->out.dir_id, dir, sizeof dir);
    return sprig__rmdir_tree(dir);
}

static int
l_delete_database(sprig_storage *s, const char *name)
{
    sprig__lstorage *st = ST(s);
    sprig__cmd c = admin_cmd(st, SPRIG__CMD_DELETE_DB);
    c.name = name;
    const sprig__repl *repl = sprig__storage_repl(st, &c);
    int rc = refuse_read_only(st);
    if (rc == 0 && repl) {
        return sprig__repl_run(repl, "", &c);
    }
    pthread_mutex_lock(&st->lock);
    rc = rc ? rc : delete_with(st, &c);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int
l_list_databases(sprig_storage *s, sprig_database_list **out)
{
    sprig__lstorage *st = ST(s);
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    sprig_database_list *l = sprig__calloc(1, sizeof *l);
    if (!l) {
        return sprig__err(SPRIG_ENOMEM, "out of memory listing");
    }
    int rc = sprig__env_read_begin(st->admin, &txn);
    if (rc) {
        sprig__free(l);
        return rc;
    }
    int mrc = mdb_cursor_open(txn, st->reg_dbs, &cur);
    if (mrc == 0) {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (mrc == 0 && rc == 0) {
            char name[SPRIG_NAME_MAX + 1];
            reg_entry e;
            size_t n = k.mv_size > SPRIG_NAME_MAX ? SPRIG_NAME_MAX : k.mv_size;
            memcpy(name, k.mv_data, n);
            name[n] = 0;
            rc = sprig__reg_decode(name, &v, &e);
            rc = rc ? rc : sprig__database_list_push(l, name, e.schema);
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    sprig__env_read_end(st->admin, txn);
    if (rc == 0 && mrc && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "listing databases");
    }
    if (rc) {
        sprig_database_list_free(l);
        return rc;
    }
    *out = l;
    return SPRIG_OK;
}

static int
engine(sprig__lstorage *st, const char *name, sprig__ldb **out)
{
    return sprig__storage_engine(st, name, out);
}

int
sprig__storage_engine(sprig__lstorage *st, const char *name, sprig__ldb **out)
{
    for (size_t i = 0; i < st->n_open; i++) {
        if (strcmp(st->open[i]->name, name) == 0) {
            *out = st->open[i];
            return SPRIG_OK;
        }
    }
    reg_entry e;
    int rc = reg_get(st, name, &e);
    if (rc) {
        return rc;
    }
    const sprig_schema_def *def = find_schema(st, e.schema);
    if (!def) {
        rc = sprig__err_about(SPRIG_ESCHEMA, SPRIG_ERROR_KIND_SCHEMA,
                              "database '%s' uses schema '%s', "
                              "which is not registered",
                              name, e.schema);
        sprig__errinfo_schema(e.schema);
        sprig__errinfo_database(name);
        return rc;
    }
    sprig__ldb **p = sprig__realloc(st->open, (st->n_open + 1) * sizeof *p);
    if (!p) {
        return sprig__err(SPRIG_ENOMEM, "out of memory opening '%s'", name);
    }
    st->open = p;
    char dir[4096];
    struct stat sb;
    db_dir(st, name, e.dir_id, dir, sizeof dir);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) { /* never made anew */
        return sprig__err(SPRIG_ECORRUPT,
                          "database '%s': its directory '%s' is missing "
                          "(the registry or the files are damaged)",
                          name, dir);
    }
    rc = sprig__ldb_open(st, name, dir, def, out);
    if (rc == 0) {
        st->open[st->n_open++] = *out;
    }
    return rc;
}

static int
open_handle(sprig__lstorage *st, const char *name, bool owns, sprig_db **out)
{
    sprig__ldb *ldb;
    pthread_mutex_lock(&st->lock);
    int rc = st->closing ? sprig__err(SPRIG_ECLOSED, "storage is closed")
                         : engine(st, name, &ldb);
    rc = rc ? rc : sprig__ldb_handle(ldb, owns, out);
    if (rc == 0) {
        ldb->refs++;
        st->handles++;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static int
l_database(sprig_storage *s, const char *name, sprig_db **out)
{
    return open_handle(ST(s), name, false, out);
}

/* ---- commands from elsewhere (tests, later the cluster) ----------------- */

static const sprig_storage_ops local_storage_ops;

bool
sprig__storage_is_local(const sprig_storage *s)
{
    return s && s->ops == &local_storage_ops;
}

void
sprig__storage_tap(sprig_storage *s, sprig__cmd_tap tap, void *udata)
{
    sprig__lstorage *st = ST(s);
    pthread_mutex_lock(&st->lock);
    st->tap = tap;
    st->tap_udata = udata;
    st->admin_w.tap_udata = udata;
    st->admin_w.tap = tap;
    pthread_mutex_unlock(&st->lock);
}

/* An admin command from elsewhere, as the API's own would run. */
static int
admin_apply_cmd(sprig__lstorage *st, sprig__cmd *c)
{
    sprig_schema_def *def = NULL;
    int rc = c->kind == SPRIG__CMD_SCHEMA
                 ? sprig__schema_decode(c->schema, &def)
                 : 0;
    bool done = false;
    pthread_mutex_lock(&st->lock);
    if (rc == 0 && c->kind == SPRIG__CMD_CREATE_DB) {
        rc = check_new(st, c->name, c->schema_name, false, &done);
        rc = rc ? rc : create_with(st, c);
    } else if (rc == 0 && c->kind == SPRIG__CMD_DELETE_DB) {
        rc = delete_with(st, c);
    }
    pthread_mutex_unlock(&st->lock);
    if (rc == 0 && def) {
        rc = register_with(st, def, c, true);
    }
    sprig__free(def);
    return rc;
}

int
sprig__storage_apply(sprig_storage *s, const char *db, sprig__cmd *cmd)
{
    cmd->replicated = true;
    if (cmd->kind >= SPRIG__CMD_CREATE_DB && cmd->kind != SPRIG__CMD_PUBLISH) {
        return admin_apply_cmd(ST(s), cmd);
    }
    sprig_db *h;
    int rc = sprig_storage_open_database(s, db, &h);
    if (rc == 0 && cmd->kind == SPRIG__CMD_PUBLISH) {
        rc = sprig__pubsub_apply(sprig__db_ldb(h), cmd); /* nothing stored */
        sprig_db_close(h);
    } else if (rc == 0) {
        rc = sprig__ldb_run(sprig__db_ldb(h), cmd);
        sprig_db_close(h);
    }
    return rc;
}

int
sprig__storage_apply_many(sprig_storage *s, const char *db, sprig__cmd **cmds,
                          size_t n, int *rcs, sprig__errsave *errs)
{
    sprig_db *h;
    for (size_t i = 0; i < n; i++) {
        cmds[i]->replicated = true;
    }
    int rc = sprig_storage_open_database(s, db, &h);
    if (rc == 0) {
        rc = sprig__ldb_run_many(sprig__db_ldb(h), cmds, n, rcs, errs);
        sprig_db_close(h);
    }
    return rc;
}

/* ---- after an install in place (install.c) ------------------------------ */

/* Give the codeless C views of `def` (read back from `_admin`) the code
 * of the program's registration `old`, where it has the same C view. */
static void
keep_code(const sprig_schema_def *old, sprig_schema_def *def)
{
    for (size_t i = 0; old && i < def->n_collections; i++) {
        sprig_collection_def *n = (sprig_collection_def *)&def->collections[i];
        const sprig_collection_def *o = sprig__schema_find(old, n->name);
        sprig_view_def *views = (sprig_view_def *)n->views; /* our copy */
        for (size_t j = 0; o && j < n->n_views; j++) {
            const sprig_view_def *ov = find_view(o, views[j].name);
            if (views[j].map == sprig__codeless_map && ov &&
                ov->map != sprig__codeless_map) {
                /* a different view of that name stays codeless */
                (void)keep_c_view(def->name, n->name, &views[j], ov);
            }
        }
    }
}

/* Load the schemas from `_admin` again, C view code kept. */
static int
reload_schemas(sprig__lstorage *st)
{
    sprig_schema_def **old = st->schemas;
    size_t n_old = st->n_schemas;
    st->schemas = NULL;
    st->n_schemas = 0;
    int rc = load_schemas(st);
    sprig_schema_def **drop = rc ? st->schemas : old;
    size_t n_drop = rc ? st->n_schemas : n_old;
    if (rc) {
        st->schemas = old;
        st->n_schemas = n_old;
    }
    for (size_t i = 0; rc == 0 && i < st->n_schemas; i++) {
        for (size_t j = 0; j < n_old; j++) {
            if (strcmp(old[j]->name, st->schemas[i]->name) == 0) {
                keep_code(old[j], st->schemas[i]);
            }
        }
    }
    for (size_t i = 0; i < n_drop; i++) {
        sprig__free(drop[i]);
    }
    sprig__free(drop);
    return rc;
}

/* Is engine `l` still the database the registry names, with the same
 * schema?  *gone: the registry no longer has it at l's directory. */
static bool
engine_current(sprig__lstorage *st, sprig__ldb *l, bool *gone)
{
    reg_entry e;
    char dir[SPRIG_NAME_MAX + 32];
    int rc = reg_get(st, l->name, &e);
    snprintf(dir, sizeof dir, "%s.%llu", l->name,
             (unsigned long long)(rc ? 0 : e.dir_id));
    *gone = rc == SPRIG_ENOTFOUND || (rc == 0 && strcmp(dir, l->dir_name));
    if (rc || *gone) {
        return rc != 0 && !*gone; /* a registry error: keep it as it is */
    }
    const sprig_schema_def *def = find_schema(st, e.schema);
    sprig_buf enc = {0};
    bool same = def && sprig__schema_encode(def, &enc) == 0 &&
                same_stored(l->schema, sprig_buf_bytes(&enc));
    sprig_buf_clear(&enc);
    return same;
}

int
sprig__storage_reload(sprig__lstorage *st)
{
    int rc = reload_schemas(st);
    size_t j = 0;
    for (size_t i = 0; rc == 0 && i < st->n_open; i++) {
        sprig__ldb *l = st->open[i];
        bool gone = false;
        if (engine_current(st, l, &gone) || (!gone && l->refs > 0)) {
            st->open[j++] = l; /* a changed schema: as after a register */
            continue;
        }
        atomic_store(&l->dropped, gone);
        if (l->refs == 0) {
            sprig__ldb_free(l); /* reopens on demand when not gone */
        }
    }
    st->n_open = rc ? st->n_open : j;
    return rc;
}

/* ---- open and close ----------------------------------------------------- */

static void
destroy(sprig__lstorage *st)
{
    for (size_t i = 0; i < st->n_open; i++) {
        sprig__ldb_free(st->open[i]);
    }
    sprig__free(st->open);
    for (size_t i = 0; i < st->n_schemas; i++) {
        sprig__free(st->schemas[i]);
    }
    sprig__free(st->schemas);
    if (st->admin_w_ready) {
        sprig__writer_destroy(&st->admin_w);
    }
    sprig__env_close(st->admin);
    sprig__storage_format_close(st);
    if (st->temp_dir && st->path) {
        sprig__rmdir_tree(st->path);
    }
    if (st->lock_fd >= 0) {
        close(st->lock_fd);
    }
    pthread_mutex_destroy(&st->lock);
    sprig__free(st->path);
    sprig__free(st);
}

void
sprig__storage_retain(sprig__lstorage *st, sprig__ldb *ldb)
{
    pthread_mutex_lock(&st->lock);
    ldb->refs++;
    st->handles++;
    pthread_mutex_unlock(&st->lock);
}

void
sprig__storage_release(sprig__lstorage *st, sprig__ldb *ldb, bool owns_storage)
{
    pthread_mutex_lock(&st->lock);
    ldb->refs--;
    st->handles--;
    if (ldb->refs == 0 && atomic_load(&ldb->dropped)) {
        sprig__ldb_free(ldb);
    }
    if (owns_storage) {
        st->closing = true;
    }
    bool last = st->closing && st->handles == 0;
    pthread_mutex_unlock(&st->lock);
    if (last) {
        destroy(st);
    }
}

static void
l_close(sprig_storage *s)
{
    sprig__lstorage *st = ST(s);
    pthread_mutex_lock(&st->lock);
    st->closing = true;
    bool last = st->handles == 0;
    pthread_mutex_unlock(&st->lock);
    if (last) {
        destroy(st);
    }
}

/* Whether some registry entry records directory id `id`; *doubt is set
 * when an entry does not decode or the registry does not read (then
 * nothing is removed: a corrupt registry must not delete data). */
static bool
id_registered(sprig__lstorage *st, uint64_t id, bool *doubt)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    bool found = false;
    if (sprig__env_read_begin(st->admin, &txn)) {
        *doubt = true;
        return false;
    }
    int mrc = mdb_cursor_open(txn, st->reg_dbs, &cur);
    while (mrc == 0 && !found &&
           (mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        reg_entry e;
        char name[SPRIG_NAME_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)k.mv_size,
                 (const char *)k.mv_data);
        if (sprig__reg_decode(name, &v, &e)) {
            *doubt = true;
        } else {
            found = e.dir_id == id;
        }
    }
    if (mrc != MDB_NOTFOUND && !found) {
        *doubt = true;
    }
    mdb_cursor_close(cur);
    sprig__env_read_end(st->admin, txn);
    return found;
}

/* Whether directory "<name>.<id>" (`dir`, under `dbs`) is what a crash
 * left between the two steps of a create or a delete: no registry entry
 * records its id, and its name is free or registered with another
 * directory that exists.  Anything else is damage (a flipped byte in the
 * registry): the directory is kept for repair. */
static bool
is_orphan(sprig__lstorage *st, const char *dbs, const char *dir)
{
    char name[256], other[4400];
    snprintf(name, sizeof name, "%s", dir);
    char *dot = strrchr(name, '.'), *end = NULL;
    if (!dot) {
        return false;
    }
    *dot = 0;
    uint64_t id = strtoull(dot + 1, &end, 10);
    bool doubt = !*(dot + 1) || *end;
    reg_entry e;
    if (doubt || id_registered(st, id, &doubt) || doubt) {
        return false;
    }
    int rc = reg_get(st, name, &e);
    if (rc && rc != SPRIG_ENOTFOUND) {
        return false;
    }
    if (rc == SPRIG_ENOTFOUND) {
        return true;
    }
    snprintf(other, sizeof other, "%s/%s.%llu", dbs, name,
             (unsigned long long)e.dir_id);
    return access(other, F_OK) == 0;
}

/* Remove database directories the registry does not name (is_orphan). */
static void
sweep_orphans(sprig__lstorage *st)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/db", st->path);
    DIR *d = opendir(p);
    if (!d) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        if (is_orphan(st, p, de->d_name)) {
            char q[4400];
            snprintf(q, sizeof q, "%s/%s", p, de->d_name);
            sprig__rmdir_tree(q);
        }
    }
    closedir(d);
}

static int
make_dirs(sprig__lstorage *st, const sprig_storage_options *o)
{
    if (o->memory_only) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        char tmpl[256];
        snprintf(tmpl, sizeof tmpl, "%s/sprig-mem-XXXXXX", base);
        if (!mkdtemp(tmpl)) {
            return sprig__err(SPRIG_EIO, "cannot make a memory directory: %s",
                              strerror(errno));
        }
        st->temp_dir = true;
        st->path = sprig__strdup(tmpl);
    } else {
        st->path = sprig__strdup(o->path);
    }
    if (!st->path) {
        return sprig__err(SPRIG_ENOMEM, "out of memory opening a storage");
    }
    struct stat sb;
    if (o->read_only) {
        return stat(st->path, &sb) == 0 && S_ISDIR(sb.st_mode)
                   ? SPRIG_OK
                   : sprig__err(SPRIG_ENOTFOUND, "no storage at '%s'",
                                st->path);
    }
    if (mkdir(st->path, 0755) != 0 && errno != EEXIST) {
        return sprig__err(errno == ENOSPC ? SPRIG_EFULL : SPRIG_EIO,
                          "cannot create storage directory '%s': %s", st->path,
                          strerror(errno));
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/db", st->path);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        return sprig__err(SPRIG_EIO, "cannot create '%s': %s", p,
                          strerror(errno));
    }
    return SPRIG_OK;
}

static int
take_lock(sprig__lstorage *st)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/sprig.lock", st->path);
    bool ro = st->opts.read_only; /* readers share, a writer excludes */
    st->lock_fd = ro ? open(p, O_RDONLY | O_CLOEXEC)
                     : open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        return sprig__err(ro && errno == ENOENT ? SPRIG_ENOTFOUND : SPRIG_EIO,
                          "cannot open '%s': %s", p, strerror(errno));
    }
    if (flock(st->lock_fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        return sprig__err(SPRIG_EBUSY,
                          "storage '%s' is open in another "
                          "process or handle",
                          st->path);
    }
    return SPRIG_OK;
}

static int
open_admin(sprig__lstorage *st)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/_admin", st->path);
    sprig_storage_options ao = st->opts;
    ao.initial_map_size = 8u << 20;
    ao.max_map_size = 0;
    /* `none`: the registry's (rare) commits are synced as in `normal` --
     * LMDB without syncs tears its tree on a power loss, and `_admin` has
     * no command log to put it back (docs/reliability.md) */
    if (ao.durability == SPRIG_DURABILITY_NONE) {
        ao.durability = SPRIG_DURABILITY_NORMAL;
    }
    int rc = sprig__env_open(p, &ao, 8, &st->admin);
    const char *names[4] = {"databases", "schemas", "meta", "log"};
    MDB_dbi dbis[4];
    rc = rc ? rc : sprig__env_open_dbis(st->admin, names, 4, dbis);
    if (rc == 0) {
        st->reg_dbs = dbis[0];
        st->reg_schemas = dbis[1];
        st->reg_meta = dbis[2];
        st->reg_log = dbis[3];
        rc = sprig__writer_init(&st->admin_w, st->admin);
        st->admin_w_ready = rc == 0;
        st->admin_w.tap_name = "_admin";
    }
    if (rc == SPRIG_ECORRUPT && !strstr(sprig_errmsg(), "_admin")) {
        char m[400];
        snprintf(m, sizeof m, "%s", sprig_errmsg());
        rc = sprig__err(rc, "storage '%.200s': its registry (_admin): %s",
                        st->path, m);
    }
    return rc;
}

/* What a server needs to know of this storage. */
static void
l_status(sprig_storage *base, sprig__storage_status *out)
{
    const sprig_storage_options *o = &((sprig__lstorage *)base)->opts;
    out->kv_writes_lazy = o->kv_persistence.mode == SPRIG_KV_LAZY ||
                          o->durability == SPRIG_DURABILITY_NONE ||
                          o->memory_only;
}

static const sprig_storage_ops local_storage_ops = {
    .close = l_close,
    .register_schema = l_register_schema,
    .create_database = l_create_database,
    .delete_database = l_delete_database,
    .list_databases = l_list_databases,
    .list_schemas = l_list_schemas,
    .database = l_database,
    .status = l_status,
    .maintain = sprig__storage_maintain,
    .read_barrier = sprig__storage_read_barrier,
};

int
sprig_storage_open(const sprig_storage_options *o, sprig_storage **out)
{
    if (!out) {
        return sprig__err(SPRIG_EINVAL, "out is NULL");
    }
    *out = NULL;
    if (!o || (!o->memory_only && (!o->path || !*o->path))) {
        return sprig__err(SPRIG_EINVAL, "storage options need a path");
    }
    if (o->memory_only && o->read_only) {
        return sprig__err(SPRIG_EINVAL, "a memory-only storage cannot be "
                                        "read-only: it starts empty");
    }
    if (sodium_init() < 0) {
        return sprig__err(SPRIG_EIO, "libsodium failed to initialise");
    }
    sprig__lstorage *st = sprig__calloc(1, sizeof *st);
    if (!st) {
        return sprig__err(SPRIG_ENOMEM, "out of memory opening a storage");
    }
    st->base.ops = &local_storage_ops;
    st->opts = *o;
    st->opts.path = NULL;
    st->lock_fd = -1;
    pthread_mutex_init(&st->lock, NULL);
    int rc = make_dirs(st, o);
    rc = rc ? rc : take_lock(st);
    rc = rc ? rc : open_admin(st);
    rc = rc ? rc : sprig__storage_format_open(st, o);
    rc = rc ? rc : load_schemas(st);
    if (rc) {
        destroy(st);
        return rc;
    }
    if (!o->read_only) {
        sweep_orphans(st);
    }
    sprig__env_bgverify_start(st->admin); /* the tables its open left */
    *out = &st->base;
    return SPRIG_OK;
}

int
sprig_db_open_local(const char *path, const sprig_schema_def *schema,
                    sprig_db **out)
{
    if (!out) {
        return sprig__err(SPRIG_EINVAL, "out is NULL");
    }
    *out = NULL;
    int rc = sprig__schema_check(schema);
    if (rc) {
        return rc;
    }
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = path;
    sprig_storage *s;
    rc = sprig_storage_open(&o, &s);
    if (rc) {
        return rc;
    }
    rc = sprig_storage_register_schema(s, schema);
    rc = rc ? rc
            : sprig_storage_create_database(s, "default", schema->name, true);
    rc = rc ? rc : open_handle(ST(s), "default", true, out);
    if (rc) {
        sprig_storage_close(s);
    }
    return rc;
}

/* ---- key rotation (rotate.c does the databases) -------------------------- */

static int
rotate_db(sprig_storage *s, const char *name, sprig_rotate_progress progress,
          void *udata)
{
    sprig_db *h = NULL;
    uint64_t n = 0;
    int rc = sprig_storage_open_database(s, name, &h);
    rc = rc ? rc : sprig__rotate_ldb(sprig__db_ldb(h), &n);
    if (h) {
        sprig_db_close(h);
    }
    if (rc == 0 && progress) {
        progress(udata, name, n);
    }
    return rc == SPRIG_ENOTFOUND ? SPRIG_OK : rc; /* deleted meanwhile */
}

int
sprig_storage_vault_rotate(sprig_storage *s, sprig_rotate_progress progress,
                           void *udata)
{
    if (!s || s->ops != &local_storage_ops) {
        return sprig__err(SPRIG_EINVAL, "key rotation needs a local storage "
                                        "(open it by path)");
    }
    sprig__lstorage *st = ST(s);
    pthread_mutex_lock(&st->lock);
    sprig__vault *v = st->vault;
    pthread_mutex_unlock(&st->lock);
    if (!v) {
        return sprig__err(SPRIG_EINVAL,
                          "storage '%s' has no vault: nothing "
                          "in it is encrypted",
                          st->path);
    }
    sprig_database_list *l = NULL;
    /* several keys: an interrupted rotation, finished under its new key */
    int rc = sprig__vault_keys(v) > 1 ? 0 : sprig__vault_add_key(v);
    rc = rc ? rc : sprig_storage_list_databases(s, &l);
    for (size_t i = 0; rc == 0 && i < sprig_database_list_count(l); i++) {
        rc = rotate_db(s, sprig_database_list_name(l, i), progress, udata);
    }
    sprig_database_list_free(l);
    return rc ? rc : sprig__vault_drop_old(v);
}
