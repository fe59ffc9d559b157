/*
 * export.c -- logical export and import of a whole local storage
 * (sprig_storage_export, sprig_storage_import in sprig.h), for moving data
 * between versions and machines.
 *
 * An export directory holds `export.json` (format and version, the
 * schemas -- each the record `_admin` keeps, base64 -- and per database its
 * schema, collections and counts) and per database a directory with one
 * JSON-lines file per collection and `kv.jsonl`:
 *
 *   <db>/c/<collection>.jsonl {"id":7,"json":{...the document...}}
 *                             {"id":"natural id","base64":"..."}
 *   <db>/kv.jsonl             {"ns":"n","key":"k","type":"i64","value":3,
 *                              "expire_at_ms":0}
 *
 * A document whose contents are JSON (with no line break) is written
 * verbatim after "json": (byte for byte, so it reads back identical);
 * other contents as "base64".  An id is a number in a u64 collection, a
 * string when its bytes are UTF-8 without NUL, else "id_base64"; the same
 * for key-value namespaces, keys and byte values ("ns_base64",
 * "key_base64", "value_base64").  Each database is read from one LMDB
 * snapshot (its map lock held shared meanwhile: a write that must grow
 * that map waits); databases are exported one after another.
 *
 * Import registers the schemas (C views without their code, as an open
 * loads them), creates each database when missing, and writes documents
 * by overwrite transactions of up to 512 documents and key-value entries
 * by sets with their absolute expiry, through the normal write path (so
 * they are logged and indexed like any write).
 */
#include "core/cmd.h"
#include "backup.h"
#include "kv.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_JSON "export.json"
#define EXPORT_FORMAT "sprig-export"
#define EXPORT_VERSION 1
#define IMPORT_BATCH 512

static int
io_err(const char *what, const char *path, int err)
{
    return sprig__err(err == ENOSPC ? SPRIG_EFULL : SPRIG_EIO, "%s '%s': %s",
                      what, path, strerror(err));
}

/* Set `key` of `o` to the bytes as a string when they are UTF-8 without
 * NUL, else `key`_base64. */
static int
put_text(json_t *o, const char *key, sprig_bytes b)
{
    json_t *s = memchr(b.data, 0, b.len) ? NULL : json_stringn(b.data, b.len);
    char k[64];
    snprintf(k, sizeof k, "%s%s", key, s ? "" : "_base64");
    s = s ? s : sprig__bk_b64(b);
    return s && json_object_set_new(o, k, s) == 0
               ? 0
               : sprig__err(SPRIG_ENOMEM, "out of memory exporting");
}

/* ---- export -------------------------------------------------------------
 */

typedef struct ex {
    FILE *f;
    const char *path;
    sprig_progress *prog;
    sprig_progress_fn cb;
    void *udata;
    uint64_t told;
    uint64_t count;
    const sprig__ldb *ldb; /* the database being exported */
    sprig_buf plain;       /* a value decoded through the codec */
} ex;

static int
ex_line(ex *x, const char *text, size_t n)
{
    if (fwrite(text, 1, n, x->f) != n || fputc('\n', x->f) == EOF) {
        return io_err("cannot write", x->path, errno);
    }
    x->count++;
    x->prog->items++;
    x->prog->bytes += n + 1;
    if (x->prog->bytes - x->told >= (4u << 20)) {
        x->told = x->prog->bytes;
        if (x->cb) {
            x->cb(x->udata, x->prog);
        }
    }
    return SPRIG_OK;
}

/* Is `c` JSON that can go on one line verbatim? */
static bool
json_verbatim(sprig_bytes c)
{
    if (!c.len || memchr(c.data, '\n', c.len) || memchr(c.data, '\r', c.len)) {
        return false;
    }
    json_t *j = json_loadb(c.data, c.len, JSON_DECODE_ANY, NULL);
    json_decref(j);
    return j != NULL;
}

/* The id of a document as `"id":...` text (no braces). */
static char *
id_text(const sprig__coll *c, MDB_val *k)
{
    json_t *o = json_object();
    if (c->id_kind == SPRIG_ID_U64 && k->mv_size == 8 &&
        sprig__get_u64be(k->mv_data) <= (uint64_t)INT64_MAX) {
        json_object_set_new(
            o, "id", json_integer((json_int_t)sprig__get_u64be(k->mv_data)));
    } else if (put_text(o, "id", (sprig_bytes){k->mv_data, k->mv_size})) {
        json_decref(o);
        return NULL;
    }
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return t;
}

/* One document line: {"id":..,"json":<contents>} or {"id":..,"base64":..} */
static int
ex_doc(ex *x, const sprig__coll *c, MDB_val *k, MDB_val *v, sprig_buf *line)
{
    uint64_t rev;
    const uint8_t *hash;
    sprig_bytes contents;
    int rc = sprig__doc_read(x->ldb, c, (sprig_bytes){k->mv_data, k->mv_size},
                             v, &rev, &hash, &contents, &x->plain);
    char *id = rc ? NULL : id_text(c, k);
    if (rc || !id) {
        return rc ? rc : sprig__err(SPRIG_ENOMEM, "out of memory exporting");
    }
    line->len = 0;
    size_t idn = strlen(id) - 1; /* without its closing brace */
    rc = sprig_buf_append(line, id, idn);
    free(id);
    if (json_verbatim(contents)) {
        rc = rc ? rc : sprig_buf_append(line, ",\"json\":", 8);
        rc = rc ? rc : sprig_buf_append(line, contents.data, contents.len);
    } else {
        json_t *b = sprig__bk_b64(contents);
        char *t = b ? json_dumps(b, JSON_ENCODE_ANY) : NULL;
        rc = rc ? rc : t ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory");
        rc = rc ? rc : sprig_buf_append(line, ",\"base64\":", 10);
        rc = rc ? rc : sprig_buf_append(line, t, strlen(t));
        free(t);
        json_decref(b);
    }
    rc = rc ? rc : sprig_buf_append(line, "}", 1);
    return rc ? rc : ex_line(x, (const char *)line->data, line->len);
}

static int
ex_open(ex *x, const char *path)
{
    x->path = path;
    x->count = 0;
    x->f = fopen(path, "wx");
    return x->f ? 0 : io_err("cannot create", path, errno);
}

static int
ex_close(ex *x, int rc)
{
    bool bad = fflush(x->f) != 0 || fsync(fileno(x->f)) != 0;
    rc = rc ? rc : bad ? io_err("cannot write", x->path, errno) : 0;
    fclose(x->f);
    x->f = NULL;
    return rc;
}

/* Every entry of table `dbi` through `fn`. */
static int
ex_table(ex *x, MDB_txn *txn, MDB_dbi dbi,
         int (*fn)(ex *, const void *, MDB_val *, MDB_val *, sprig_buf *),
         const void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    sprig_buf line = {0};
    int mrc = mdb_cursor_open(txn, dbi, &cur);
    int rc = mrc ? sprig__mdb_err(mrc, "exporting") : 0;
    mrc = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0 && mrc == 0) {
        rc = fn(x, arg, &k, &v, &line);
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != MDB_NOTFOUND) {
        rc = sprig__mdb_err(mrc, "exporting");
    }
    if (cur && mrc != MDB_NOTFOUND) {
        mdb_cursor_close(cur);
    } else if (cur) {
        mdb_cursor_close(cur);
    }
    sprig_buf_clear(&line);
    return rc;
}

static int
ex_doc_fn(ex *x, const void *arg, MDB_val *k, MDB_val *v, sprig_buf *line)
{
    return ex_doc(x, arg, k, v, line);
}

/* A key-value value into `o`. */
static int
put_value(json_t *o, const sprig__kv_rec *r)
{
    static const char *const kinds[] = {"bytes", "i64", "u64", "f64"};
    json_object_set_new(o, "type", json_string(kinds[r->kind]));
    union {
        uint64_t u;
        int64_t i;
        double d;
    } n = {.u = r->bits};
    switch (r->kind) {
    case SPRIG_VALUE_I64:
        return json_object_set_new(o, "value", json_integer(n.i));
    case SPRIG_VALUE_U64: /* beyond INT64_MAX: as text */
        if (n.u > (uint64_t)INT64_MAX) {
            char t[24];
            snprintf(t, sizeof t, "%llu", (unsigned long long)n.u);
            return json_object_set_new(o, "value", json_string(t));
        }
        return json_object_set_new(o, "value", json_integer((json_int_t)n.u));
    case SPRIG_VALUE_F64:
        return json_object_set_new(o, "value", json_real(n.d));
    default: return put_text(o, "value", r->payload);
    }
}

static int
ex_kv_fn(ex *x, const void *arg, MDB_val *k, MDB_val *v, sprig_buf *line)
{
    (void)line;
    const uint64_t *now = arg;
    sprig__kv_rec r;
    int rc = sprig__kv_rec_parse(v, &r);
    rc = rc ? rc : sprig__kv_rec_decode(x->ldb->kv, k, &r, &x->plain);
    const uint8_t *p = k->mv_data, *z = memchr(p, 0, k->mv_size);
    if (rc || !z) {
        return rc ? rc
                  : sprig__err(SPRIG_ECORRUPT, "a stored key has no "
                                               "namespace separator");
    }
    if (r.expire_at && r.expire_at <= *now) {
        return SPRIG_OK; /* expired: absent to every reader */
    }
    json_t *o = json_object();
    rc = put_text(o, "ns", (sprig_bytes){p, (size_t)(z - p)});
    rc = rc ? rc
            : put_text(o, "key",
                       (sprig_bytes){z + 1, k->mv_size - (size_t)(z - p) - 1});
    rc = rc ? rc : put_value(o, &r) ? sprig__err(SPRIG_ENOMEM, "no memory") : 0;
    json_object_set_new(o, "expire_at_ms",
                        json_integer((json_int_t)r.expire_at));
    char *t = rc ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    rc = rc  ? rc
         : t ? ex_line(x, t, strlen(t))
             : sprig__err(SPRIG_ENOMEM, "out of memory");
    free(t);
    return rc;
}

/* Export the collections and key-value entries of `ldb` from snapshot
 * `txn` into directory `ddir`; `info` gets their counts. */
static int
ex_db_txn(ex *x, sprig__ldb *ldb, MDB_txn *txn, const char *ddir, json_t *info)
{
    char path[4400];
    json_t *cs = json_array();
    json_object_set_new(info, "collections", cs);
    x->ldb = ldb; /* values are decoded (decrypted, decompressed) */
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < ldb->n_colls; i++) {
        const sprig__coll *c = &ldb->colls[i];
        snprintf(path, sizeof path, "%s/c/%s.jsonl", ddir, c->name);
        rc = ex_open(x, path);
        if (rc == 0) {
            rc = ex_close(x, ex_table(x, txn, c->dbi, ex_doc_fn, c));
            json_array_append_new(cs,
                                  json_pack("{s:s,s:I}", "name", c->name,
                                            "documents", (json_int_t)x->count));
        }
    }
    uint64_t now = sprig__ldb_now(ldb);
    snprintf(path, sizeof path, "%s/kv.jsonl", ddir);
    rc = rc ? rc : ex_open(x, path);
    if (rc == 0) {
        rc = ex_close(x, ex_table(x, txn, ldb->kv->data, ex_kv_fn, &now));
        json_object_set_new(info, "kv_entries",
                            json_integer((json_int_t)x->count));
    }
    sprig_buf_clear(&x->plain);
    return rc;
}

static int
ex_db(ex *x, sprig_storage *s, const char *dir, const char *name, json_t *info)
{
    char ddir[4300];
    snprintf(ddir, sizeof ddir, "%s/%s", dir, name);
    char cdir[4400]; /* collections apart: one may be named "kv" */
    snprintf(cdir, sizeof cdir, "%s/c", ddir);
    if (mkdir(ddir, 0755) != 0 || mkdir(cdir, 0755) != 0) {
        return io_err("cannot create", cdir, errno);
    }
    sprig_db *h;
    MDB_txn *txn;
    int rc = sprig_storage_open_database(s, name, &h);
    if (rc) {
        return rc;
    }
    sprig__ldb *ldb = sprig__db_ldb(h);
    rc = sprig__env_read_begin(ldb->env, &txn);
    if (rc == 0) {
        rc = ex_db_txn(x, ldb, txn, ddir, info);
        sprig__env_read_end(ldb->env, txn);
    }
    sprig_db_close(h);
    return rc;
}

static json_t *
ex_schemas(sprig_storage *s, int *rc)
{
    sprig_schema_list *l = NULL;
    json_t *a = json_array();
    *rc = sprig_storage_list_schemas(s, &l);
    for (size_t i = 0; *rc == 0 && i < sprig_schema_list_count(l); i++) {
        const sprig_schema_def *d = sprig_schema_list_get(l, i);
        sprig_buf enc = {0};
        *rc = sprig__schema_encode(d, &enc);
        if (*rc == 0) {
            json_array_append_new(
                a, json_pack("{s:s,s:o}", "name", d->name, "record",
                             sprig__bk_b64(sprig_buf_bytes(&enc))));
        }
        sprig_buf_clear(&enc);
    }
    sprig_schema_list_free(l);
    return a;
}

int
sprig__export(sprig__lstorage *st, const char *dir, sprig_progress_fn cb,
              void *udata)
{
    sprig_progress prog = {.what = "export"};
    ex x = {.prog = &prog, .cb = cb, .udata = udata};
    bool made;
    sprig_database_list *l = NULL;
    int rc = sprig__bk_new_dir(dir, &made);
    rc = rc ? rc : sprig_storage_list_databases(&st->base, &l);
    json_t *m = json_object(), *ds = json_array();
    json_object_set_new(m, "format", json_string(EXPORT_FORMAT));
    json_object_set_new(m, "version", json_integer(EXPORT_VERSION));
    json_object_set_new(m, "created_ms",
                        json_integer((json_int_t)sprig__clock_now(&st->opts)));
    json_object_set_new(m, "databases", ds);
    json_object_set_new(m, "schemas",
                        rc ? json_array() : ex_schemas(&st->base, &rc));
    for (size_t i = 0; rc == 0 && i < sprig_database_list_count(l); i++) {
        const char *name = sprig_database_list_name(l, i);
        json_t *info = json_pack("{s:s,s:s}", "name", name, "schema",
                                 sprig_database_list_schema(l, i));
        json_array_append_new(ds, info);
        prog.item = name;
        rc = ex_db(&x, &st->base, dir, name, info);
    }
    rc = rc ? rc : sprig__bk_write_json(dir, EXPORT_JSON, m);
    json_decref(m);
    sprig_database_list_free(l);
    if (rc == 0 && cb) {
        prog.done = true;
        cb(udata, &prog);
    }
    return rc;
}

/* ---- import -------------------------------------------------------------
 */

typedef struct im {
    sprig_db *db;
    const char *path;
    size_t lineno;
    sprig_progress *prog;
    sprig_progress_fn cb;
    void *udata;
    uint64_t told;
} im;

static int
bad_line(const im *x, const char *why)
{
    return sprig__err(SPRIG_ECORRUPT, "%s:%zu: %s", x->path, x->lineno, why);
}

/* The bytes of base64 text `t` into `out`. */
static int
unb64(const im *x, const char *t, sprig_buf *out)
{
    size_t n = t ? strlen(t) : 0, got = 0;
    out->len = 0;
    int rc =
        t ? sprig__buf_reserve(out, n + 1) : bad_line(x, "a field is missing");
    if (rc == 0 && sodium_base642bin(out->data, n + 1, t, n, NULL, &got, NULL,
                                     sodium_base64_VARIANT_ORIGINAL) != 0) {
        rc = bad_line(x, "bad base64");
    }
    out->len = rc ? 0 : got;
    return rc;
}

/* Bytes of field `key` (a string) or `key`_base64 of `o`, into `out`. */
static int
get_text(const im *x, json_t *o, const char *key, sprig_buf *out)
{
    char k[64];
    json_t *s = json_object_get(o, key);
    out->len = 0;
    if (json_is_string(s)) {
        return sprig_buf_append(out, json_string_value(s),
                                json_string_length(s));
    }
    snprintf(k, sizeof k, "%s_base64", key);
    return unb64(x, json_string_value(json_object_get(o, k)), out);
}

/* The contents of a document line: verbatim after "json": (the line as
 * export writes it), re-encoded when the line was written otherwise. */
static int
doc_contents(const im *x, json_t *o, const char *line, size_t n, sprig_buf *out)
{
    json_t *j = json_object_get(o, "json");
    if (!j) {
        return unb64(x, json_string_value(json_object_get(o, "base64")), out);
    }
    json_t *idonly = json_deep_copy(o);
    json_object_del(idonly, "json");
    char *pre = json_dumps(idonly, JSON_COMPACT);
    json_decref(idonly);
    size_t pn = pre ? strlen(pre) - 1 : 0;
    out->len = 0;
    int rc;
    if (pre && n > pn + 9 && memcmp(line, pre, pn) == 0 &&
        memcmp(line + pn, ",\"json\":", 8) == 0 && line[n - 1] == '}') {
        rc = sprig_buf_append(out, line + pn + 8, n - pn - 9);
    } else {
        char *t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        rc = t ? sprig_buf_append(out, t, strlen(t))
               : sprig__err(SPRIG_ENOMEM, "out of memory");
        free(t);
    }
    free(pre);
    return rc;
}

static int
doc_id(const im *x, json_t *o, sprig_buf *id)
{
    json_t *j = json_object_get(o, "id");
    if (json_is_integer(j) && json_integer_value(j) >= 0) {
        id->len = 0;
        int rc = sprig__buf_reserve(id, 8);
        if (rc == 0) {
            sprig__put_u64be(id->data, (uint64_t)json_integer_value(j));
            id->len = 8;
        }
        return rc;
    }
    return get_text(x, o, "id", id);
}

static int
im_flush(im *x, sprig_txn **t)
{
    if (!*t || sprig_txn_count(*t) == 0) {
        return SPRIG_OK;
    }
    sprig_txn_result *r = NULL;
    int rc = sprig_txn_apply(x->db, *t, &r);
    sprig_txn_result_free(r);
    sprig_txn_free(*t);
    *t = NULL;
    return rc;
}

static void
im_count(im *x, size_t n)
{
    x->prog->items++;
    x->prog->bytes += n + 1;
    if (x->cb && x->prog->bytes - x->told >= (4u << 20)) {
        x->told = x->prog->bytes;
        x->cb(x->udata, x->prog);
    }
}

static int
im_doc(im *x, const char *coll, const char *line, size_t n, sprig_txn **t,
       sprig_buf *id, sprig_buf *c)
{
    json_t *o = json_loadb(line, n, JSON_ALLOW_NUL, NULL);
    int rc = json_is_object(o) ? 0 : bad_line(x, "not a JSON object");
    rc = rc ? rc : doc_id(x, o, id);
    rc = rc ? rc : doc_contents(x, o, line, n, c);
    json_decref(o);
    rc = rc || *t ? rc : sprig_txn_new(t);
    rc = rc ? rc
            : sprig_txn_overwrite(*t, coll, sprig_buf_bytes(id),
                                  sprig_buf_bytes(c));
    if (rc == 0 && sprig_txn_count(*t) >= IMPORT_BATCH) {
        rc = im_flush(x, t);
    }
    return rc;
}

static int
kv_value(const im *x, json_t *o, sprig_buf *b, sprig_value *v)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    json_t *j = json_object_get(o, "value");
    if (!type) {
        return bad_line(x, "no type");
    }
    if (strcmp(type, "bytes") == 0) {
        int rc = get_text(x, o, "value", b);
        *v = sprig_value_of_bytes(sprig_buf_bytes(b));
        return rc;
    }
    if (strcmp(type, "i64") == 0 && json_is_integer(j)) {
        *v = sprig_value_of_i64(json_integer_value(j));
    } else if (strcmp(type, "u64") == 0 && json_is_integer(j)) {
        *v = sprig_value_of_u64((uint64_t)json_integer_value(j));
    } else if (strcmp(type, "u64") == 0 && json_is_string(j)) {
        *v = sprig_value_of_u64(strtoull(json_string_value(j), NULL, 10));
    } else if (strcmp(type, "f64") == 0 && json_is_number(j)) {
        *v = sprig_value_of_f64(json_number_value(j));
    } else {
        return bad_line(x, "bad value for its type");
    }
    return SPRIG_OK;
}

static int
im_kv(im *x, const char *line, size_t n, sprig_buf *ns, sprig_buf *key,
      sprig_buf *val)
{
    json_t *o = json_loadb(line, n, JSON_ALLOW_NUL, NULL);
    sprig_value v;
    sprig_kv_set_opts so = {0};
    int rc = json_is_object(o) ? 0 : bad_line(x, "not a JSON object");
    rc = rc ? rc : get_text(x, o, "ns", ns);
    rc = rc ? rc : get_text(x, o, "key", key);
    rc = rc ? rc : kv_value(x, o, val, &v);
    json_t *e = json_object_get(o, "expire_at_ms");
    so.expire_at_ms = json_is_integer(e) ? (uint64_t)json_integer_value(e) : 0;
    json_decref(o);
    rc = rc ? rc : sprig_buf_append(ns, "", 1);
    rc = rc ? rc : sprig_buf_append(key, "", 1);
    if (rc == 0 && (strlen((char *)ns->data) + 1 != ns->len ||
                    strlen((char *)key->data) + 1 != key->len)) {
        rc = bad_line(x, "a namespace or key holds a NUL byte");
    }
    if (rc == 0 && so.expire_at_ms &&
        so.expire_at_ms <= sprig__ldb_now(sprig__db_ldb(x->db))) {
        return SPRIG_OK; /* expired meanwhile */
    }
    return rc ? rc
              : sprig_kv_set(x->db, (char *)ns->data, (char *)key->data, &v,
                             &so, NULL, NULL);
}

/* Import file `path` line by line: documents of `coll`, or key-value
 * entries when `coll` is NULL.  A missing file is an empty one. */
static int
im_file(im *x, const char *path, const char *coll)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return errno == ENOENT ? 0 : io_err("cannot open", path, errno);
    }
    x->path = path;
    x->lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    sprig_buf a = {0}, b = {0}, c = {0};
    sprig_txn *t = NULL;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        x->lineno++;
        size_t len = (size_t)n - (line[n - 1] == '\n');
        if (len == 0) {
            continue;
        }
        rc = coll ? im_doc(x, coll, line, len, &t, &a, &b)
                  : im_kv(x, line, len, &a, &b, &c);
        im_count(x, len);
    }
    rc = rc ? rc : im_flush(x, &t);
    sprig_txn_free(t);
    free(line);
    fclose(f);
    sprig_buf_clear(&a);
    sprig_buf_clear(&b);
    sprig_buf_clear(&c);
    return rc;
}

static int
im_db(im *x, sprig_storage *s, const char *dir, json_t *d)
{
    const char *name = NULL, *schema = NULL;
    json_t *cs = NULL;
    if (json_unpack(d, "{s:s,s:s,s:o}", "name", &name, "schema", &schema,
                    "collections", &cs) != 0 ||
        sprig__check_db_name(name) != 0) {
        return sprig__err(SPRIG_ECORRUPT,
                          "'%s/%s': a database entry is "
                          "malformed",
                          dir, EXPORT_JSON);
    }
    int rc = sprig_storage_create_database(s, name, schema, true);
    rc = rc ? rc : sprig_storage_open_database(s, name, &x->db);
    x->prog->item = name;
    char path[4400];
    for (size_t i = 0; rc == 0 && i < json_array_size(cs); i++) {
        const char *coll =
            json_string_value(json_object_get(json_array_get(cs, i), "name"));
        if (!coll || strchr(coll, '/')) {
            rc = sprig__err(SPRIG_ECORRUPT,
                            "a collection entry of '%s' is "
                            "malformed",
                            name);
            break;
        }
        snprintf(path, sizeof path, "%s/%s/c/%s.jsonl", dir, name, coll);
        rc = im_file(x, path, coll);
    }
    snprintf(path, sizeof path, "%s/%s/kv.jsonl", dir, name);
    rc = rc ? rc : im_file(x, path, NULL);
    sprig_db_close(x->db);
    x->db = NULL;
    return rc;
}

int
sprig__import(sprig__lstorage *st, const char *dir, sprig_progress_fn cb,
              void *udata)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, EXPORT_JSON);
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je), *ss = NULL, *ds = NULL;
    const char *fmt = "";
    json_int_t ver = 0;
    if (!m) {
        return access(path, F_OK) != 0
                   ? sprig__err(SPRIG_ENOTFOUND, "'%s' holds no export (no %s)",
                                dir, EXPORT_JSON)
                   : sprig__err(SPRIG_ECORRUPT, "'%s': %s (line %d)", path,
                                je.text, je.line);
    }
    int rc =
        json_unpack(m, "{s:s,s:I,s:o,s:o}", "format", &fmt, "version", &ver,
                    "schemas", &ss, "databases", &ds) != 0 ||
                strcmp(fmt, EXPORT_FORMAT) != 0
            ? sprig__err(SPRIG_ECORRUPT, "'%s' is not a Sprig export", path)
        : ver != EXPORT_VERSION
            ? sprig__err(SPRIG_ECORRUPT,
                         "'%s' is an export of format version %lld; this "
                         "version of Sprig reads version %d",
                         path, (long long)ver, EXPORT_VERSION)
            : 0;
    sprig_progress prog = {.what = "import"};
    im x = {.prog = &prog, .cb = cb, .udata = udata};
    rc = rc ? rc : sprig__bk_put_schemas(st, ss);
    for (size_t i = 0; rc == 0 && i < json_array_size(ds); i++) {
        rc = im_db(&x, &st->base, dir, json_array_get(ds, i));
    }
    json_decref(m);
    if (rc == 0 && cb) {
        prog.done = true;
        cb(udata, &prog);
    }
    return rc;
}
