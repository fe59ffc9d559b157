/*
 * stored.c -- the storage the harnesses over stored records corrupt
 * (stored.h says what it holds and how an input is applied).  Built once
 * per process in a fresh directory on /dev/shm, then kept pristine as a
 * copy: entries of the database's own environment are changed live (in a
 * raw LMDB write transaction on the engine's environment, put back after
 * the reads), and entries read only at open (`_admin`, the database's
 * `meta`) are changed in a fresh copy of the pristine files, the storage
 * closed, then opened and read.
 */
#include "stored.h"

#include "local/local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fx_entry {
    char table[128];
    uint8_t *k, *v;
    size_t kn, vn;
    unsigned dbflags;
} fx_entry;

static char root[64], work[96], pristine[96];
static sprig_storage *st;
static sprig_db *db;
static fx_entry *ents[3];
static size_t n_ents[3];

static void die(const char *what, int rc) __attribute__((noreturn));

static void
die(const char *what, int rc)
{
    fprintf(stderr, "fuzz fixture: %s: %d %s\n", what, rc, sprig_errmsg());
    abort();
}

/* ---- the schema --------------------------------------------------------- */

static int
c_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    (void)udata;
    uint8_t k[8];
    sprig_key_u64(sprig_doc_contents(doc).len % 4, k);
    return sprig_emit(e, (sprig_bytes){k, 8}, sprig_str("1"));
}

static int
c_reduce(const sprig_bytes *values, size_t n, bool rereduce, sprig_buf *out,
         void *udata)
{
    (void)udata;
    long total = 0;
    for (size_t i = 0; i < n; i++) {
        char t[24] = "";
        size_t l = values[i].len < sizeof t - 1 ? values[i].len : sizeof t - 1;
        if (l) {
            memcpy(t, values[i].data, l);
        }
        total += rereduce ? strtol(t, NULL, 10) : 1;
    }
    char t[32];
    snprintf(t, sizeof t, "%ld", total);
    return sprig_buf_append(out, t, strlen(t));
}

static const sprig_view_def plain_views[] = {
    {.name = "sum",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "k",
     .json_value = "n",
     .builtin_reduce = SPRIG_REDUCE_SUM},
    {.name = "lazy",
     .version = 1,
     .json_key = "k",
     .builtin_reduce = SPRIG_REDUCE_COUNT},
    {.name = "c",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .map = c_map,
     .reduce = c_reduce},
};
static const sprig_view_def secret_views[] = {
    {.name = "max",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "k",
     .json_value = "n",
     .builtin_reduce = SPRIG_REDUCE_MAX},
};
static const sprig_collection_def colls[] = {
    {"plain", SPRIG_ID_NATURAL, 0, plain_views, 3},
    {"secret", SPRIG_ID_NATURAL, SPRIG_COLL_ENCRYPTED, secret_views, 1},
};
static const sprig_schema_def schema = {"fx", colls, 2};

static int
fixed_key(void *udata, bool create, uint8_t key[32])
{
    (void)udata;
    (void)create;
    memset(key, 0x5a, 32);
    return SPRIG_OK;
}

static uint64_t
fixed_clock(void *udata)
{
    (void)udata;
    return 1700000000000ull;
}

static const sprig_keystore keystore = {fixed_key, NULL};

/* ---- open, close, populate ---------------------------------------------- */

/* Open the storage at `work`; `lenient`: errors a corrupt file may give
 * are answers (returned), others abort. */
static int
fx_open(bool lenient)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = work;
    o.durability = SPRIG_DURABILITY_NONE;
    o.compress = true;
    o.compress_min = 16;
    o.keystore = &keystore;
    o.clock_ms = fixed_clock;
    int rc = sprig_storage_open(&o, &st);
    rc = rc ? rc : sprig_storage_register_schema(st, &schema);
    if (rc == 0 && !pristine[0]) { /* the first open: make the database */
        rc = sprig_storage_create_database(st, "db", "fx", false);
    }
    rc = rc ? rc : sprig_storage_open_database(st, "db", &db);
    if (rc && (!lenient || (rc != SPRIG_ECORRUPT && rc != SPRIG_EAUTH &&
                            rc != SPRIG_ENOTFOUND && rc != SPRIG_ESCHEMA))) {
        die("opening the storage", rc);
    }
    return rc;
}

static void
fx_close(void)
{
    sprig_db_close(db);
    sprig_storage_close(st);
    db = NULL;
    st = NULL;
}

static void
put_doc(const char *coll, int i, bool pad)
{
    char id[16], body[256];
    snprintf(id, sizeof id, "d%02d", i);
    snprintf(body, sizeof body, "{\"k\":\"g%d\",\"n\":%d%s}", i % 4, i,
             pad ? ",\"pad\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""
                 : "");
    int rc = sprig_overwrite(db, coll, sprig_str(id), sprig_str(body), NULL);
    if (rc) {
        die("writing a document", rc);
    }
}

static void
put_kv(int i)
{
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    sprig_value v = i % 3 == 0   ? sprig_value_of_i64(i * 1000)
                    : i % 3 == 1 ? sprig_value_of_bytes(sprig_str("short"))
                                 : sprig_value_of_bytes(sprig_str(
                                       "a longer value, long enough, long "
                                       "enough to compress"));
    sprig_kv_set_opts so = {0};
    so.expire_in_ms = i % 2 ? 3600 * 1000 : 0;
    int rc = sprig_kv_set(db, "ns", key, &v, &so, NULL, NULL);
    if (rc) {
        die("setting a key", rc);
    }
}

static void
populate(void)
{
    for (int i = 0; i < 10; i++) {
        put_doc("plain", i, i % 3 == 0);
    }
    for (int i = 0; i < 5; i++) {
        put_doc("secret", i, i % 2 == 0);
    }
    sprig_doc *d;
    int rc = sprig_get(db, "plain", sprig_str("d04"), &d);
    sprig_header h = rc ? (sprig_header){0} : sprig_doc_header(d);
    rc = rc ? rc : sprig_delete(db, "plain", &h);
    if (rc) {
        die("deleting a document", rc);
    }
    sprig_doc_free(d);
    sprig_buf out = {0};
    sprig_view_query q;
    sprig_view_query_init(&q, "plain", "lazy");
    if ((rc = sprig_view_reduce(db, &q, &out)) != 0) { /* indexes it */
        die("reducing the lazy view", rc);
    }
    sprig_buf_clear(&out);
    put_doc("plain", 10, false); /* left pending in the lazy view */
    for (int i = 0; i < 6; i++) {
        put_kv(i);
    }
}

/* ---- files: a recursive copy -------------------------------------------- */

static void
copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = -1;
    struct stat s;
    if (in < 0 || fstat(in, &s) ||
        (out = open(to, O_WRONLY | O_CREAT | O_TRUNC, s.st_mode & 0777)) < 0) {
        die(from, -errno);
    }
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            die("copying", -errno);
        }
    }
    close(in);
    close(out);
}

static void
copy_tree(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *e;
    if (!d || (mkdir(to, 0700) && errno != EEXIST)) {
        die(from, -errno);
    }
    while ((e = readdir(d)) != NULL) {
        char a[512], b[512];
        struct stat s;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        if (lstat(a, &s) == 0 && S_ISDIR(s.st_mode)) {
            copy_tree(a, b);
        } else if (S_ISREG(s.st_mode) && strcmp(e->d_name, "sprig.lock")) {
            copy_file(a, b);
        }
    }
    closedir(d);
}

static void
cleanup(void)
{
    if (st) {
        fx_close();
    }
    sprig__rmdir_tree(root);
}

/* ---- entries ------------------------------------------------------------ */

static bool
wanted(const char *name, const char *const *prefixes)
{
    for (size_t i = 0; prefixes[i]; i++) {
        if (!strncmp(name, prefixes[i], strlen(prefixes[i]))) {
            return true;
        }
    }
    return false;
}

static void
add_entry(int where, const char *table, unsigned flags, const MDB_val *k,
          const MDB_val *v)
{
    fx_entry *a = realloc(ents[where], (n_ents[where] + 1) * sizeof *a);
    if (!a) {
        abort();
    }
    ents[where] = a;
    fx_entry *e = &a[n_ents[where]++];
    snprintf(e->table, sizeof e->table, "%s", table);
    e->kn = k->mv_size;
    e->vn = v->mv_size;
    e->k = malloc(e->kn + 1);
    e->v = malloc(e->vn + 1);
    memcpy(e->k, k->mv_data, e->kn);
    memcpy(e->v, v->mv_data, e->vn);
    e->dbflags = flags;
}

static void
scan_table(int where, MDB_txn *txn, const char *name)
{
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;
    unsigned flags;
    if (mdb_dbi_open(txn, name, 0, &dbi) || mdb_dbi_flags(txn, dbi, &flags) ||
        mdb_cursor_open(txn, dbi, &c)) {
        die("opening a table", 0);
    }
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        add_entry(where, name, flags, &k, &v);
    }
    mdb_cursor_close(c);
}

/* Every entry of the wanted tables of the environment `txn` reads. */
static void
scan_env(int where, MDB_txn *txn, const char *const *prefixes)
{
    MDB_dbi main;
    MDB_cursor *c;
    MDB_val k, v;
    if (mdb_dbi_open(txn, NULL, 0, &main) || mdb_cursor_open(txn, main, &c)) {
        die("opening the table directory", 0);
    }
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        char name[128];
        if (k.mv_size >= sizeof name) {
            continue;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        if (wanted(name, prefixes)) {
            scan_table(where, txn, name);
        }
    }
    mdb_cursor_close(c);
}

/* ---- raw LMDB ----------------------------------------------------------- */

/* The directory of environment `where` in `base` (a storage directory). */
static void
env_dir(int where, const char *base, char *out, size_t n)
{
    if (where == FX_ADMIN) {
        snprintf(out, n, "%s/_admin", base);
        return;
    }
    char dbs[256];
    snprintf(dbs, sizeof dbs, "%s/db", base);
    DIR *d = opendir(dbs);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            snprintf(out, n, "%s/%s", dbs, e->d_name);
            break;
        }
    }
    if (d) {
        closedir(d);
    }
}

static MDB_env *
raw_env(int where, const char *base)
{
    char p[512] = "";
    MDB_env *env;
    env_dir(where, base, p, sizeof p);
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 256) ||
        mdb_env_open(env, p, MDB_NOSYNC, 0644)) {
        die("opening an environment with LMDB", 0);
    }
    return env;
}

/* Apply `data` to entry `e` in `txn`: *k, *v get what now stands there.
 * False when LMDB refuses the change (a key too long, say). */
static bool
corrupt(MDB_txn *txn, const fx_entry *e, const uint8_t *data, size_t size,
        uint8_t *buf, MDB_val *k, MDB_val *v)
{
    MDB_dbi dbi;
    MDB_val ok = {e->kn, e->k}, ov = {e->vn, e->v};
    uint8_t mode = size > 2 ? data[2] % 4 : 0, arg = size > 3 ? data[3] : 0;
    const uint8_t *b = size > 4 ? data + 4 : data;
    size_t bn = size > 4 ? size - 4 : 0;
    *k = ok;
    *v = ov;
    memcpy(buf, e->v, e->vn);
    if (mode == 0) {
        *v = (MDB_val){bn, (void *)b};
    } else if (mode == 1) {
        for (size_t i = 0; e->vn && i < bn; i++) {
            buf[(arg + i) % e->vn] ^= b[i];
        }
        v->mv_data = buf;
    } else if (mode == 2) {
        *k = (MDB_val){bn, (void *)b};
    } else {
        *v = (MDB_val){arg < e->vn ? arg : e->vn, buf};
    }
    int mrc = mdb_dbi_open(txn, e->table, 0, &dbi);
    mrc = mrc ? mrc : mdb_del(txn, dbi, &ok, &ov);
    if (mrc == MDB_NOTFOUND) { /* an earlier input's reads removed it (an
                                  expiry sweep): put it back, read that */
        *k = ok;
        *v = ov;
        return mdb_put(txn, dbi, &ok, &ov, 0) == 0;
    }
    if (mrc) {
        die("removing the entry to corrupt", mrc);
    }
    /* never over another entry: restoring could not bring it back */
    unsigned f = e->dbflags & MDB_DUPSORT ? MDB_NODUPDATA : MDB_NOOVERWRITE;
    return mdb_put(txn, dbi, k, v, f) == 0;
}

static void
restore(MDB_txn *txn, const fx_entry *e, MDB_val *k, MDB_val *v)
{
    MDB_dbi dbi;
    MDB_val ok = {e->kn, e->k}, ov = {e->vn, e->v};
    int mrc = mdb_dbi_open(txn, e->table, 0, &dbi);
    mrc = mrc ? mrc : mdb_del(txn, dbi, k, v);
    mrc = mrc == MDB_NOTFOUND ? 0 : mrc;
    mrc = mrc ? mrc : mdb_put(txn, dbi, &ok, &ov, 0);
    if (mrc) {
        die("restoring a corrupted entry", mrc);
    }
}

/* ---- reading everything ------------------------------------------------- */

static void
ok(int rc, const char *what)
{
    if (rc && rc != SPRIG_ECORRUPT && rc != SPRIG_EAUTH &&
        rc != SPRIG_ENOTFOUND) {
        fprintf(stderr, "fuzz: %s: %d (%s): not what a corrupt file may give\n",
                what, rc, sprig_errmsg());
        abort();
    }
}

static void
read_docs(const char *coll)
{
    sprig_doc_list *l = NULL;
    uint64_t n;
    ok(sprig_count(db, coll, NULL, &n), "count");
    int rc = sprig_list(db, coll, NULL, SPRIG_ASC, 0, &l);
    ok(rc, "list");
    for (size_t i = 0; rc == 0 && i < sprig_doc_list_count(l); i++) {
        sprig_doc *d = NULL;
        sprig_header h = sprig_doc_header(sprig_doc_list_get(l, i));
        ok(sprig_get(db, coll, h.id, &d), "get");
        sprig_doc_free(d);
    }
    sprig_doc_list_free(l);
}

static void
read_view(const char *coll, const char *view, bool reduce)
{
    sprig_view_query q;
    sprig_mapping_list *l = NULL;
    sprig_buf out = {0};
    sprig_view_query_init(&q, coll, view);
    q.access = SPRIG_NO_UPDATE;
    ok(sprig_view_query_with_docs(db, &q, &l), "query");
    sprig_mapping_list_free(l);
    l = NULL;
    if (reduce) {
        ok(sprig_view_reduce(db, &q, &out), "reduce");
        ok(sprig_view_reduce_grouped(db, &q, &l), "grouped reduce");
        sprig_mapping_list_free(l);
    }
    sprig_buf_clear(&out);
}

static void
read_kv(void)
{
    sprig_kv_key_list *l = NULL;
    int rc = sprig_kv_list_keys(db, "ns", NULL, NULL, 0, &l);
    ok(rc, "kv list");
    for (size_t i = 0; rc == 0 && i < sprig_kv_key_list_count(l); i++) {
        sprig_value v;
        memset(&v, 0, sizeof v);
        ok(sprig_kv_get(db, "ns", sprig_kv_key_list_key(l, i), false, &v),
           "kv get");
        sprig_value_clear(&v);
    }
    sprig_kv_key_list_free(l);
}

static void
read_log(void)
{
    for (uint64_t since = 0;;) {
        sprig_txn_log *l = NULL;
        int rc = sprig_list_executed_txns(db, since, 100, &l);
        ok(rc, "log");
        size_t n = rc ? 0 : sprig_txn_log_count(l);
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < sprig_txn_log_change_count(l, i); j++) {
                sprig_change ch;
                ok(sprig_txn_log_change(l, i, j, &ch), "log change");
            }
            since = sprig_txn_log_id(l, i) + 1;
        }
        sprig_txn_log_free(l);
        if (n < 100) {
            return;
        }
    }
}

static void
read_all(void)
{
    read_docs("plain");
    read_docs("secret");
    read_view("plain", "sum", true);
    read_view("plain", "lazy", true);
    read_view("plain", "c", true);
    read_view("secret", "max", true);
    read_kv();
    read_log();
    sprig_buf rep = {0};
    uint64_t n;
    int rc = sprig_storage_check(st, &rep, &n);
    if (rc) {
        die("the check did not run", rc);
    }
    if (getenv("SPRIG_FUZZ_VERBOSE")) { /* what the check found */
        fprintf(stderr, "%.*s", (int)rep.len, (const char *)rep.data);
    }
    sprig_buf_clear(&rep);
}

/* ---- the run ------------------------------------------------------------ */

static void
setup(void)
{
    snprintf(root, sizeof root, "/dev/shm/sprig-fuzz-XXXXXX");
    if (!mkdtemp(root)) {
        die("mkdtemp", -errno);
    }
    snprintf(work, sizeof work, "%s/w", root);
    atexit(cleanup);
    fx_open(false);
    populate();
    sprig_buf rep = {0};
    uint64_t n = 0;
    if (sprig_storage_check(st, &rep, &n) || n) { /* healthy: no findings */
        fprintf(stderr, "%.*s", (int)rep.len, (const char *)rep.data);
        die("the healthy storage has findings", (int)n);
    }
    sprig_buf_clear(&rep);
    fx_close();
    snprintf(pristine, sizeof pristine, "%s/p", root);
    copy_tree(work, pristine);
}

static void
write_seed(const char *dir, size_t i, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/seed-%03zu", dir, i);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        die(path, -errno);
    }
    fclose(f);
}

/* Seeds: per entry (at most 40, spread), a byte flipped in the middle of
 * the value, the value cut in half, the key's last byte changed. */
static void
write_seeds(int where, const char *dir)
{
    size_t n = n_ents[where], step = n > 40 ? n / 40 + 1 : 1, s = 0;
    for (size_t i = 0; i < n; i += step) {
        const fx_entry *e = &ents[where][i];
        uint8_t b[520] = {(uint8_t)(i >> 8), (uint8_t)i, 1,
                          (uint8_t)(e->vn / 2), 0x04};
        write_seed(dir, s++, b, 5);
        b[2] = 3;
        write_seed(dir, s++, b, 4);
        if (e->kn && e->kn < 500) {
            b[2] = 2;
            memcpy(b + 4, e->k, e->kn);
            b[4 + e->kn - 1] ^= 0x01;
            write_seed(dir, s++, b, 4 + e->kn);
        }
    }
}

static void
enumerate(int where, const char *const *prefixes)
{
    MDB_env *env = raw_env(where == FX_ADMIN ? FX_ADMIN : FX_DB, pristine);
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
        die("reading the pristine copy", 0);
    }
    scan_env(where, txn, prefixes);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    if (n_ents[where] == 0) {
        die("no entries to corrupt", 0);
    }
    const char *seeds = getenv("SPRIG_FUZZ_SEEDS");
    if (seeds) {
        write_seeds(where, seeds);
    }
}

static void
run_live(const fx_entry *e, const uint8_t *data, size_t size, uint8_t *buf)
{
    sprig__env *env = sprig__db_ldb(db)->env;
    MDB_txn *txn;
    MDB_val k, v;
    pthread_rwlock_rdlock(&env->map_lock);
    if (mdb_txn_begin(env->env, NULL, 0, &txn)) {
        die("a raw write transaction", 0);
    }
    if (!corrupt(txn, e, data, size, buf, &k, &v)) {
        mdb_txn_abort(txn);
        pthread_rwlock_unlock(&env->map_lock);
        return;
    }
    if (mdb_txn_commit(txn)) {
        die("committing the corruption", 0);
    }
    pthread_rwlock_unlock(&env->map_lock);
    sprig__env_committed(env);
    read_all();
    pthread_rwlock_rdlock(&env->map_lock);
    if (mdb_txn_begin(env->env, NULL, 0, &txn)) {
        die("a raw write transaction", 0);
    }
    restore(txn, e, &k, &v);
    if (mdb_txn_commit(txn)) {
        die("committing the restore", 0);
    }
    pthread_rwlock_unlock(&env->map_lock);
    sprig__env_committed(env);
}

static void
run_closed(int where, const fx_entry *e, const uint8_t *data, size_t size,
           uint8_t *buf)
{
    sprig__rmdir_tree(work);
    copy_tree(pristine, work);
    MDB_env *env = raw_env(where == FX_ADMIN ? FX_ADMIN : FX_DB, work);
    MDB_txn *txn;
    MDB_val k, v;
    if (mdb_txn_begin(env, NULL, 0, &txn)) {
        die("a raw write transaction", 0);
    }
    bool changed = corrupt(txn, e, data, size, buf, &k, &v);
    if (changed ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), 0)) {
        die("committing the corruption", 0);
    }
    mdb_env_close(env);
    if (changed && fx_open(true) == 0) {
        read_all();
    }
    if (db) {
        sprig_db_close(db);
        db = NULL;
    }
    if (st) {
        sprig_storage_close(st);
        st = NULL;
    }
}

void
fx_run(int where, const char *const *prefixes, const uint8_t *data, size_t size)
{
    if (!root[0]) {
        setup();
    }
    if (!ents[where]) {
        enumerate(where, prefixes);
    }
    if (where == FX_DB && !st) {
        fx_open(false);
    }
    size_t i = size >= 2 ? (size_t)data[0] << 8 | data[1] : 0;
    const fx_entry *e = &ents[where][i % n_ents[where]];
    uint8_t *buf = malloc(e->vn + 1);
    if (!buf) {
        abort();
    }
    if (where == FX_DB) {
        run_live(e, data, size, buf);
    } else {
        run_closed(where, e, data, size, buf);
    }
    free(buf);
}
