/*
 * cmd_admin.c -- admin commands (src/core/cmd.h: create and delete a
 * database, register a schema) applied to the storage's `_admin`
 * environment through its writer, and the registry record they write.
 * storage.c decides when to run them and does what lies outside LMDB
 * (directories, open engines); everything written to `_admin` is here, so
 * the same commands on the same registry give the same bytes.
 *
 * `_admin` tables: `databases` (name -> registry record), `schemas` (name
 * -> sprig__schema_encode bytes), `meta` ("next_dir" -> the last directory
 * id handed out, u64 BE) and `log` (the admin changes, local.h's
 * sprig__log_write).  A registry record is [2][schema name: len u32,
 * bytes][directory id u64 BE][CRC-32C u32 BE of the database's name (the
 * key) and the bytes before]: no CRC covers LMDB's keys, so a flipped
 * byte of a name that keeps the table's order is caught here.  Version 1
 * (the same without the CRC, written before) still reads.
 */
#include "core/cmd.h"
#include "local.h"

#include <stdio.h>

/* The CRC of registry record `rec` (its first `n` bytes) of `name`. */
static uint32_t
reg_crc(const char *name, const uint8_t *rec, size_t n)
{
    return sprig__crc32c_update(sprig__crc32c(name, strlen(name)), rec, n);
}

int
sprig__reg_decode(const char *name, const MDB_val *v, sprig__reg_entry *e)
{
    sprig__rd r = {v->mv_data, v->mv_size};
    uint8_t ver;
    uint32_t n, crc = 0;
    const uint8_t *p;
    int rc = sprig__rd_u8(&r, &ver);
    rc = rc ? rc : sprig__rd_u32(&r, &n);
    if (rc == 0 && ((ver != 1 && ver != 2) || n > SPRIG_NAME_MAX)) {
        rc = SPRIG_ECORRUPT;
    }
    rc = rc ? rc : sprig__rd_bytes(&r, n, &p);
    rc = rc ? rc : sprig__rd_u64(&r, &e->dir_id);
    size_t covered = v->mv_size - r.left;
    rc = rc || ver == 1 ? rc : sprig__rd_u32(&r, &crc);
    if (rc || r.left) {
        return sprig__err(SPRIG_ECORRUPT,
                          "registry entry of database '%s' is malformed", name);
    }
    if (ver == 2 && crc != reg_crc(name, v->mv_data, covered)) {
        return sprig__err(SPRIG_ECORRUPT,
                          "registry entry of database '%s' fails its CRC "
                          "(the name or the record is damaged)",
                          name);
    }
    memcpy(e->schema, p, n);
    e->schema[n] = 0;
    return SPRIG_OK;
}

static int
put(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *v, size_t n)
{
    MDB_val k = {strlen(key), (void *)key}, d = {n, (void *)v};
    return sprig__mdb_err(mdb_put(txn, dbi, &k, &d, 0), "writing the registry");
}

/* meta "next_dir" + 1, stored and returned. */
static int
bump_dir(MDB_txn *txn, sprig__lstorage *st, uint64_t *out)
{
    MDB_val k = {8, "next_dir"}, v;
    int mrc = mdb_get(txn, st->reg_meta, &k, &v);
    if (mrc && mrc != MDB_NOTFOUND) {
        return sprig__mdb_err(mrc, "reading the registry");
    }
    if (mrc == 0 && v.mv_size != 8) {
        return sprig__err(SPRIG_ECORRUPT, "registry next_dir is malformed");
    }
    uint64_t n = mrc ? 0 : sprig__get_u64be(v.mv_data);
    uint8_t b[8];
    sprig__put_u64be(b, ++n);
    *out = n;
    return put(txn, st->reg_meta, "next_dir", b, 8);
}

static int
create_db(MDB_txn *txn, sprig__lstorage *st, const sprig__cmd *c,
          sprig__cmd_out *o)
{
    sprig_buf rec = {0};
    size_t sl = strlen(c->schema_name);
    int rc = bump_dir(txn, st, &o->dir_id);
    rc = rc ? rc : sprig__buf_put_u8(&rec, 2);
    rc = rc ? rc : sprig__buf_put_u32(&rec, (uint32_t)sl);
    rc = rc ? rc : sprig_buf_append(&rec, c->schema_name, sl);
    rc = rc ? rc : sprig__buf_put_u64(&rec, o->dir_id);
    rc =
        rc ? rc : sprig__buf_put_u32(&rec, reg_crc(c->name, rec.data, rec.len));
    rc = rc ? rc : put(txn, st->reg_dbs, c->name, rec.data, rec.len);
    sprig_buf_clear(&rec);
    return rc ? rc
              : sprig__log_write1(txn, st->reg_log, c->now_ms,
                                  SPRIG__LOG_DATABASE, sprig_str(c->name),
                                  o->dir_id, false, &o->log_id);
}

/* A registry record checked against its key, the database's name. */
static int
reg_check(void *arg, const MDB_val *k, MDB_val *v, sprig_buf *scratch)
{
    (void)arg;
    (void)scratch;
    char name[SPRIG_NAME_MAX + 1];
    sprig__reg_entry e;
    if (k->mv_size > SPRIG_NAME_MAX) {
        return sprig__err(SPRIG_ECORRUPT, "a registry name of %zu bytes",
                          k->mv_size);
    }
    memcpy(name, k->mv_data, k->mv_size);
    name[k->mv_size] = 0;
    return sprig__reg_decode(name, v, &e);
}

int
sprig__reg_miss_confirm(sprig__lstorage *st, MDB_txn *txn, const MDB_val *k)
{
    char where[300];
    snprintf(where, sizeof where, "storage '%.200s', registry (_admin)",
             st->path);
    sprig__miss_site s = {reg_check, NULL, where, "database"};
    return sprig__miss_confirm(txn, st->reg_dbs, k, &s);
}

static int
delete_db(MDB_txn *txn, sprig__lstorage *st, const sprig__cmd *c,
          sprig__cmd_out *o)
{
    MDB_val k = {strlen(c->name), (void *)c->name}, v;
    sprig__reg_entry e;
    int mrc = mdb_get(txn, st->reg_dbs, &k, &v);
    if (mrc == MDB_NOTFOUND) { /* confirmed by the neighbours (miss.c) */
        int rc = sprig__reg_miss_confirm(st, txn, &k);
        if (rc) {
            return rc;
        }
        rc = sprig__err_about(SPRIG_ENOTFOUND, SPRIG_ERROR_KIND_DATABASE,
                              "no database named '%s'", c->name);
        sprig__errinfo_database(c->name);
        return rc;
    }
    int rc = mrc ? sprig__mdb_err(mrc, "reading the registry")
                 : sprig__reg_decode(c->name, &v, &e);
    rc = rc ? rc
            : sprig__mdb_err(mdb_del(txn, st->reg_dbs, &k, NULL),
                             "writing the registry");
    o->dir_id = rc ? 0 : e.dir_id;
    return rc ? rc
              : sprig__log_write1(txn, st->reg_log, c->now_ms,
                                  SPRIG__LOG_DATABASE, sprig_str(c->name),
                                  e.dir_id, true, &o->log_id);
}

static int
register_schema(MDB_txn *txn, sprig__lstorage *st, const sprig__cmd *c,
                sprig__cmd_out *o)
{
    sprig_schema_def *s = NULL;
    int rc = sprig__schema_decode(c->schema, &s);
    rc = rc ? rc
            : put(txn, st->reg_schemas, s->name, c->schema.data, c->schema.len);
    rc = rc ? rc
            : sprig__log_write1(txn, st->reg_log, c->now_ms, SPRIG__LOG_SCHEMA,
                                sprig_str(s->name), 0, false, &o->log_id);
    sprig__free(s);
    return rc;
}

int
sprig__admin_apply(sprig__lstorage *st, MDB_txn *txn, const sprig__cmd *c,
                   sprig__cmd_out *o)
{
    o->dir_id = 0;
    o->log_id = 0;
    int rc;
    switch (c->kind) {
    case SPRIG__CMD_CREATE_DB: rc = create_db(txn, st, c, o); break;
    case SPRIG__CMD_DELETE_DB: rc = delete_db(txn, st, c, o); break;
    case SPRIG__CMD_SCHEMA: rc = register_schema(txn, st, c, o); break;
    default:
        return sprig__err(SPRIG_EINVAL,
                          "command kind %d is not an admin change",
                          (int)c->kind);
    }
    if (rc == 0 && c->raft_index) {
        rc = sprig__raft_put_applied(txn, st->reg_meta, c->raft_index);
    }
    return rc;
}

typedef struct admin_arg {
    sprig__lstorage *st;
    sprig__cmd *cmd;
} admin_arg;

static int
admin_req_apply(MDB_txn *txn, void *arg)
{
    admin_arg *a = arg;
    return sprig__admin_apply(a->st, txn, a->cmd, &a->cmd->out);
}

int
sprig__admin_run(sprig__lstorage *st, sprig__cmd *cmd)
{
    admin_arg a = {st, cmd};
    sprig__wreq req = {.apply = admin_req_apply, .arg = &a, .cmd = cmd};
    req.frees = cmd->kind == SPRIG__CMD_DELETE_DB;
    return sprig__writer_submit(&st->admin_w, &req);
}
