/*
 * test_flips.c -- random byte flips in a storage's files (issue 17, item
 * 3).  Two templates are built once, each holding every kind of data: two
 * databases (registry and schema records in `_admin`), a plain collection
 * with an eager view (built-in sum), a lazy view (count, some documents
 * pending) and a C view with its own reduce, an encrypted collection with
 * a view (the vault), values compressed and not, key-value pairs with and
 * without expiry, the transaction log; one closed cleanly, one left by a
 * killed writer (its command log is replayed at open).  Ids and keys are
 * 16 hex characters from the seeded PRNG, as real users' are, so a
 * flipped late key byte mostly keeps the table's order.  The truth is what
 * an untouched copy reads.
 *
 * Each round (seeded: SPRIG_SEED; SPRIG_FLIP_ROUNDS rounds, default 24)
 * copies a template, XORs 1-4 random bytes at random offsets of random
 * files (one flip in three in the header of a random LMDB page, meta
 * pages included), and in a child process (so a crash is seen, and a hang: 60
 * s) opens the copy and reads everything: every document by listing, by the
 * listed ids and by the ids written (a lookup of a renamed id's old id),
 * every view's mappings, reduce and grouped reduce, every key-value pair, the
 * log, then runs the integrity check.  Each call's answer is compared with the
 * truth and classed: right; refused (SPRIG_ECORRUPT or SPRIG_EAUTH with a
 * message naming the database or file); wrong (an answer that differs,
 * presented as right); other (any other error).  The test fails on a wrong
 * answer (values carry a CRC-32C or a tag; LMDB's page structure, which has
 * no checksum, is verified at open: src/local/pagecheck.c), a crash, a
 * hang, an error of another kind, or a refusal whose message names
 * nothing; it prints the counts, and the rounds with wrong answers and what
 * they were.
 */
#include "lmdbpages.h"
#include "reltest.h"

#include <dirent.h>
#include <lmdb.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the schema --------------------------------------------------------- */

static int
c_map(const sprig_doc *doc, sprig_emitter *e, void *udata)
{
    (void)udata;
    uint8_t k[8];
    sprig_key_u64(doc->len % 4, k);
    return sprig_emit(e, (sprig_bytes){k, 8}, sprig_str("1"));
}

static int
c_reduce(const sprig_bytes *values, size_t n, bool rereduce, sprig_buf *out,
         void *udata)
{
    (void)udata;
    unsigned long total = 0;
    for (size_t i = 0; i < n; i++) {
        char t[24] = "";
        memcpy(t, values[i].data, values[i].len < 23 ? values[i].len : 23);
        total += rereduce ? strtoul(t, NULL, 10) : 1;
    }
    char t[32];
    snprintf(t, sizeof t, "%lu", total);
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
static const sprig_schema_def schema = {"fl", colls, 2};
static const struct {
    const char *coll, *view;
} views[] = {
    {"plain", "sum"}, {"plain", "lazy"}, {"plain", "c"}, {"secret", "max"}};

static int
fixed_key(void *udata, bool create, uint8_t key[32])
{
    (void)udata;
    (void)create;
    memset(key, 0x3c, 32);
    return SPRIG_OK;
}

static uint64_t
fixed_clock(void *udata)
{
    (void)udata;
    return 1700000000000ull;
}

static const sprig_keystore keystore = {fixed_key, NULL};

static int
open_st(const char *dir, sprig_storage **st)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.compress = true;
    o.compress_min = 32;
    o.keystore = &keystore;
    o.clock_ms = fixed_clock;
    int rc = sprig_storage_open(&o, st);
    if (rc == 0 && (rc = sprig_storage_register_schema(*st, &schema)) != 0) {
        sprig_storage_close(*st);
    }
    return rc;
}

/* ---- the data ----------------------------------------------------------- */

/* Ids as real users have them: 16 hex characters from the seeded PRNG
 * (name_ids), so a flipped late byte of a key mostly keeps the table's
 * order -- the rename a point lookup's miss must catch (src/local/miss.c).
 * Documents 0..26, key-value keys 0..11. */
#define N_IDS 27
#define N_KV 12
static char doc_id[N_IDS][20], kv_key[N_KV][20];

static void
name_ids(uint64_t seed)
{
    uint64_t s = (seed ^ 0x9e3779b97f4a7c15ull) | 1;
    for (int i = 0; i < N_IDS; i++) {
        snprintf(doc_id[i], sizeof doc_id[i], "%016llx",
                 (unsigned long long)tu_rand(&s));
    }
    for (int i = 0; i < N_KV; i++) {
        snprintf(kv_key[i], sizeof kv_key[i], "%016llx",
                 (unsigned long long)tu_rand(&s));
    }
}

static void
put_doc(sprig_db *db, const char *coll, int i, int gen)
{
    char body[256];
    const char *id = doc_id[i];
    snprintf(body, sizeof body, "{\"k\":\"g%d\",\"n\":%d,\"gen\":%d%s}", i % 5,
             i * 3 - 7, gen,
             i % 3 ? "" : ",\"pad\":\"the same words again, the same words\"");
    SPRIG_OK_(sprig_overwrite(db, coll, sprig_str(id), sprig_str(body), NULL));
}

static void
del_doc(sprig_db *db, const char *coll, const char *id)
{
    sprig_doc *d;
    SPRIG_OK_(sprig_get(db, coll, sprig_str(id), &d));
    sprig_header h = sprig_doc_header(d);
    SPRIG_OK_(sprig_delete(db, coll, &h));
    sprig_doc_free(d);
}

static void
put_kv(sprig_db *db, int i)
{
    const char *key = kv_key[i];
    sprig_value v = i % 3 == 0 ? sprig_value_of_i64(i * 1001)
                    : i % 3 == 1
                        ? sprig_value_of_bytes(sprig_str("short"))
                        : sprig_value_of_bytes(sprig_str(
                              "a longer value, long enough to be compressed "
                              "because it repeats, it repeats, it repeats"));
    sprig_kv_set_opts so = {0};
    so.expire_in_ms = i % 2 ? 3600 * 1000 : 0;
    SPRIG_OK_(sprig_kv_set(db, "ns", key, &v, &so, NULL, NULL));
}

static void
populate(sprig_storage *st)
{
    sprig_db *db, *other;
    sprig_buf out = {0};
    sprig_view_query q;
    SPRIG_OK_(sprig_storage_create_database(st, "db", "fl", false));
    SPRIG_OK_(sprig_storage_create_database(st, "other", "fl", false));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    SPRIG_OK_(sprig_storage_open_database(st, "other", &other));
    for (int i = 0; i < 24; i++) {
        put_doc(db, "plain", i, 1);
    }
    for (int i = 0; i < 8; i++) {
        put_doc(db, "secret", i, 1);
        put_doc(other, "plain", i, 1);
    }
    for (int i = 0; i < 24; i += 5) {
        put_doc(db, "plain", i, 2);
    }
    del_doc(db, "plain", doc_id[7]);
    del_doc(db, "secret", doc_id[3]);
    sprig_view_query_init(&q, "plain", "lazy");
    SPRIG_OK_(sprig_view_reduce(db, &q, &out)); /* indexes the lazy view */
    sprig_buf_clear(&out);
    for (int i = 24; i < 27; i++) {
        put_doc(db, "plain", i, 1); /* pending in the lazy view */
    }
    for (int i = 0; i < 12; i++) {
        put_kv(db, i);
    }
    sprig_db_close(other);
    sprig_db_close(db);
}

/* Build a template in `dir`: closed cleanly, or (`crashed`) left by a
 * writer that exited without closing (its log is replayed at open). */
static void
make_template(const char *dir, bool crashed)
{
    sprig_storage *st;
    if (!crashed) {
        SPRIG_OK_(open_st(dir, &st));
        populate(st);
        sprig_storage_close(st);
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (open_st(dir, &st)) {
            _exit(2);
        }
        populate(st);
        _exit(0); /* no close: no checkpoint, no clean marker */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- reading everything into lines "call TAB answer" -------------------- */

typedef struct dumper {
    FILE *f;
    sprig_buf t; /* the answer being built */
} dumper;

/* Bytes, printable and escaped: no tab, newline or backslash left. */
static void
esc(dumper *d, sprig_bytes b)
{
    const uint8_t *p = b.data;
    for (size_t i = 0; i < b.len; i++) {
        char x[8];
        int n = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\'
                    ? snprintf(x, sizeof x, "%c", p[i])
                    : snprintf(x, sizeof x, "\\x%02x", p[i]);
        sprig_buf_append(&d->t, x, (size_t)n);
    }
    sprig_buf_append(&d->t, " ", 1);
}

static void
num(dumper *d, uint64_t v)
{
    char x[32];
    int n = snprintf(x, sizeof x, "%llu ", (unsigned long long)v);
    sprig_buf_append(&d->t, x, (size_t)n);
}

/* One line: the call and its answer (d->t when rc is 0, else the error and
 * its message); d->t is emptied.  Returns rc. */
static int
line(dumper *d, const char *call, int rc)
{
    if (rc) {
        d->t.len = 0;
        sprig_bytes m = sprig_str(sprig_errmsg());
        fprintf(d->f, "%s\t!%d\t", call, rc);
        esc(d, m);
    } else {
        fprintf(d->f, "%s\t=", call);
    }
    fprintf(d->f, "%.*s\n", (int)d->t.len, (const char *)d->t.data);
    d->t.len = 0;
    return rc;
}

static void
dump_docs(dumper *d, sprig_db *db, const char *dbn, const char *coll)
{
    char call[600];
    sprig_doc_list *l = NULL;
    snprintf(call, sizeof call, "list %s/%s", dbn, coll);
    int rc = sprig_list(db, coll, NULL, SPRIG_ASC, 0, &l);
    for (size_t i = 0; rc == 0 && i < sprig_doc_list_count(l); i++) {
        const sprig_doc *doc = sprig_doc_list_get(l, i);
        esc(d, sprig_doc_header(doc).id);
        num(d, sprig_doc_header(doc).revision);
        esc(d, sprig_doc_contents(doc));
    }
    line(d, call, rc);
    for (size_t i = 0; rc == 0 && i < sprig_doc_list_count(l); i++) {
        sprig_bytes id = sprig_doc_header(sprig_doc_list_get(l, i)).id;
        sprig_doc *doc = NULL;
        esc(d, id);
        snprintf(call, sizeof call, "get %s/%s/%.*s", dbn, coll, (int)d->t.len,
                 (const char *)d->t.data);
        d->t.len = 0;
        int grc = sprig_get(db, coll, id, &doc);
        if (grc == 0) {
            num(d, sprig_doc_header(doc).revision);
            esc(d, sprig_doc_contents(doc));
        }
        line(d, call, grc);
        sprig_doc_free(doc);
    }
    sprig_doc_list_free(l);
    for (int i = 0; i < N_IDS; i++) { /* by the ids written, not listed */
        sprig_doc *doc = NULL;
        snprintf(call, sizeof call, "byid %s/%s/%s", dbn, coll, doc_id[i]);
        int grc = sprig_get(db, coll, sprig_str(doc_id[i]), &doc);
        if (grc == 0) {
            num(d, sprig_doc_header(doc).revision);
            esc(d, sprig_doc_contents(doc));
        }
        line(d, call, grc);
        sprig_doc_free(doc);
    }
}

static void
dump_view(dumper *d, sprig_db *db, const char *dbn, const char *coll,
          const char *view)
{
    char call[300];
    sprig_view_query q;
    sprig_mapping_list *l = NULL;
    sprig_view_query_init(&q, coll, view);
    int rc = sprig_view_query_with_docs(db, &q, &l);
    for (size_t i = 0; rc == 0 && i < sprig_mapping_list_count(l); i++) {
        esc(d, sprig_mapping_list_key(l, i));
        esc(d, sprig_mapping_list_value(l, i));
        esc(d, sprig_mapping_list_source(l, i).id);
        num(d, sprig_mapping_list_source(l, i).revision);
        esc(d, sprig_doc_contents(sprig_mapping_list_doc(l, i)));
    }
    snprintf(call, sizeof call, "query %s/%s/%s", dbn, coll, view);
    line(d, call, rc);
    sprig_mapping_list_free(l);
    l = NULL;
    rc = sprig_view_reduce(db, &q, &d->t);
    snprintf(call, sizeof call, "reduce %s/%s/%s", dbn, coll, view);
    line(d, call, rc);
    rc = sprig_view_reduce_grouped(db, &q, &l);
    for (size_t i = 0; rc == 0 && i < sprig_mapping_list_count(l); i++) {
        esc(d, sprig_mapping_list_key(l, i));
        esc(d, sprig_mapping_list_value(l, i));
    }
    snprintf(call, sizeof call, "grouped %s/%s/%s", dbn, coll, view);
    line(d, call, rc);
    sprig_mapping_list_free(l);
}

static void
dump_kv(dumper *d, sprig_db *db, const char *dbn)
{
    char call[600];
    sprig_kv_key_list *l = NULL;
    int rc = sprig_kv_list_keys(db, "ns", NULL, NULL, 0, &l);
    for (size_t i = 0; rc == 0 && i < sprig_kv_key_list_count(l); i++) {
        esc(d, sprig_str(sprig_kv_key_list_key(l, i)));
        num(d, sprig_kv_key_list_expire_at(l, i));
    }
    snprintf(call, sizeof call, "kv list %s", dbn);
    line(d, call, rc);
    for (size_t i = 0; rc == 0 && i < sprig_kv_key_list_count(l); i++) {
        const char *key = sprig_kv_key_list_key(l, i);
        sprig_value v;
        memset(&v, 0, sizeof v);
        esc(d, sprig_str(key));
        snprintf(call, sizeof call, "kv get %s/%.*s", dbn, (int)d->t.len,
                 (const char *)d->t.data);
        d->t.len = 0;
        int grc = sprig_kv_get(db, "ns", key, false, &v);
        if (grc == 0) {
            num(d, (uint64_t)v.kind);
            num(d, v.kind == SPRIG_VALUE_BYTES ? 0 : v.num.u64);
            esc(d, v.bytes);
        }
        line(d, call, grc);
        sprig_value_clear(&v);
    }
    sprig_kv_key_list_free(l);
    for (int i = 0; i < N_KV; i++) { /* by the keys written, not listed */
        sprig_value v;
        memset(&v, 0, sizeof v);
        snprintf(call, sizeof call, "kv byid %s/%s", dbn, kv_key[i]);
        int grc = sprig_kv_get(db, "ns", kv_key[i], false, &v);
        if (grc == 0) {
            num(d, (uint64_t)v.kind);
            num(d, v.kind == SPRIG_VALUE_BYTES ? 0 : v.num.u64);
            esc(d, v.bytes);
        }
        line(d, call, grc);
        sprig_value_clear(&v);
    }
}

static void
dump_log(dumper *d, sprig_db *db, const char *dbn)
{
    char call[300];
    int rc = 0;
    for (uint64_t since = 0; rc == 0;) {
        sprig_txn_log *l = NULL;
        rc = sprig_list_executed_txns(db, since, 500, &l);
        size_t n = rc ? 0 : sprig_txn_log_count(l);
        for (size_t i = 0; i < n; i++) {
            num(d, sprig_txn_log_id(l, i));
            num(d, sprig_txn_log_timestamp_ms(l, i));
            for (size_t j = 0; j < sprig_txn_log_change_count(l, i); j++) {
                sprig_change ch;
                if (sprig_txn_log_change(l, i, j, &ch) == 0) {
                    esc(d, sprig_str(ch.collection));
                    esc(d, ch.id);
                    num(d, ch.revision);
                    num(d, ch.deleted);
                }
            }
            since = sprig_txn_log_id(l, i) + 1;
        }
        sprig_txn_log_free(l);
        if (n < 500) {
            break;
        }
    }
    snprintf(call, sizeof call, "log %s", dbn);
    line(d, call, rc);
}

static void
dump_db(dumper *d, sprig_storage *st, const char *dbn)
{
    char call[300];
    sprig_db *db = NULL;
    snprintf(call, sizeof call, "open %s", dbn);
    if (line(d, call, sprig_storage_open_database(st, dbn, &db))) {
        return;
    }
    dump_docs(d, db, dbn, "plain");
    dump_docs(d, db, dbn, "secret");
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) {
        dump_view(d, db, dbn, views[i].coll, views[i].view);
    }
    dump_kv(d, db, dbn);
    dump_log(d, db, dbn);
    sprig_db_close(db);
}

/* Open the storage in `dir` and write everything it answers to `path`;
 * the integrity check's finding count last ("#check", not compared). */
static void
dump_all(const char *dir, const char *path)
{
    dumper d = {fopen(path, "w"), {0}};
    sprig_storage *st;
    sprig_database_list *l;
    assert_non_null(d.f);
    if (line(&d, "open", open_st(dir, &st)) == 0) {
        int rc = sprig_storage_list_databases(st, &l);
        for (size_t i = 0; rc == 0 && i < sprig_database_list_count(l); i++) {
            esc(&d, sprig_str(sprig_database_list_name(l, i)));
            esc(&d, sprig_str(sprig_database_list_schema(l, i)));
        }
        line(&d, "databases", rc);
        if (rc == 0) {
            sprig_database_list_free(l);
        }
        dump_db(&d, st, "db");
        dump_db(&d, st, "other");
        uint64_t n = 0;
        int crc = sprig_storage_check(st, &d.t, &n);
        fprintf(d.f, "#check\t%d %llu\n", crc, (unsigned long long)n);
        d.t.len = 0;
        sprig_storage_close(st);
    }
    sprig_buf_clear(&d.t);
    fclose(d.f);
}

/* ---- files -------------------------------------------------------------- */

static void
copy_tree(const char *from, const char *to)
{
    DIR *dir = opendir(from);
    struct dirent *e;
    assert_non_null(dir);
    assert_true(mkdir(to, 0700) == 0 || errno == EEXIST);
    while ((e = readdir(dir)) != NULL) {
        char a[1300], b[1300];
        struct stat s;
        if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.')) {
            continue;
        }
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        assert_int_equal(lstat(a, &s), 0);
        if (S_ISDIR(s.st_mode)) {
            copy_tree(a, b);
            continue;
        }
        int in = open(a, O_RDONLY);
        int out = open(b, O_WRONLY | O_CREAT | O_TRUNC, s.st_mode & 0777);
        assert_true(in >= 0 && out >= 0);
        char buf[1 << 16];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0) {
            assert_int_equal(write(out, buf, (size_t)n), n);
        }
        close(in);
        close(out);
    }
    closedir(dir);
}

typedef struct files {
    char path[64][1300];
    uint64_t size[64];
    size_t n;
} files;

/* Every regular file under `dir` with bytes (not sprig.lock, which holds
 * none: it is only flock()ed). */
static void
list_files(const char *dir, files *fs)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL && fs->n < 64) {
        char p[1300];
        struct stat s;
        if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.')) {
            continue;
        }
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        assert_int_equal(lstat(p, &s), 0);
        if (S_ISDIR(s.st_mode)) {
            list_files(p, fs);
        } else if (s.st_size > 0 && strcmp(e->d_name, "sprig.lock") != 0) {
            snprintf(fs->path[fs->n], sizeof fs->path[0], "%s", p);
            fs->size[fs->n++] = (uint64_t)s.st_size;
        }
    }
    closedir(d);
}

/* XOR 1-4 random bytes (random files, offsets and masks) into the storage
 * in `dir`; what was flipped goes to `what`. */
static void
flip_bytes(const char *dir, uint64_t *rng, char *what, size_t cap)
{
    static files fs;
    fs.n = 0;
    list_files(dir, &fs);
    assert_true(fs.n > 0);
    size_t used = 0, flips = 1 + rt_below(rng, 4), skip = strlen(dir) + 1;
    for (size_t i = 0; i < flips; i++) {
        size_t f = rt_below(rng, fs.n);
        uint64_t off = rt_below(rng, fs.size[f]);
        /* one flip in three hits LMDB's own structure: the 16-byte header
         * of a page (page number, flags, free-space bounds) of a data.mdb,
         * the meta pages included; one in four of those, a meta page's
         * transaction id instead (LMDB opens the meta page with the
         * higher one: a lowered newest id opens the previous snapshot) */
        if (rt_below(rng, 3) == 0) {
            size_t g = rt_below(rng, fs.n);
            bool txnid = rt_below(rng, 4) == 0;
            for (size_t j = 0; j < fs.n; j++, g = (g + 1) % fs.n) {
                const char *b = strrchr(fs.path[g], '/');
                if (b && !strcmp(b, "/data.mdb")) {
                    f = g;
                    off = txnid
                              ? rt_below(rng, 2) * 4096 + 144 + rt_below(rng, 8)
                              : rt_below(rng, fs.size[f] / 4096) * 4096 +
                                    rt_below(rng, 16);
                    break;
                }
            }
        }
        uint8_t mask = (uint8_t)(1 + rt_below(rng, 255)), b;
        int fd = open(fs.path[f], O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
        b ^= mask;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
        close(fd);
        used +=
            (size_t)snprintf(what + used, cap - used, "%s@%llu^%02x ",
                             fs.path[f] + skip, (unsigned long long)off, mask);
        used = used < cap ? used : cap - 1;
    }
}

/* ---- rounds ------------------------------------------------------------- */

typedef struct tally {
    unsigned long rounds, right, refused, wrong, unnamed, other, crash, hang;
    unsigned long wrong_rounds, refused_open;
} tally;

typedef struct lines {
    char **v;
    size_t n;
} lines;

static void
load_lines(const char *path, lines *l)
{
    FILE *f = fopen(path, "r");
    char *s = NULL;
    size_t cap = 0;
    ssize_t got;
    assert_non_null(f);
    l->v = NULL;
    l->n = 0;
    while ((got = getline(&s, &cap, f)) > 0) {
        s[got - 1] = s[got - 1] == '\n' ? 0 : s[got - 1];
        l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
        assert_non_null(l->v);
        l->v[l->n++] = strdup(s);
    }
    free(s);
    fclose(f);
}

static void
free_lines(lines *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
}

/* The answer of `call` in `l` (after the tab), or NULL. */
static const char *
answer(const lines *l, const char *call, size_t clen)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!strncmp(l->v[i], call, clen) && l->v[i][clen] == '\t') {
            return l->v[i] + clen + 1;
        }
    }
    return NULL;
}

/* A refusal's message names where: the database, a file or the storage. */
static bool
names_place(const char *msg)
{
    static const char *const places[] = {
        "'db'",  "'other'", "db.", "other.",   "_admin",
        "vault", "storage", "wal", "data.mdb", "registry"};
    for (size_t i = 0; i < sizeof places / sizeof *places; i++) {
        if (strstr(msg, places[i])) {
            return true;
        }
    }
    return false;
}

/* Class one answer against the truth. */
static void
judge(tally *t, const lines *truth, const char *ln, const char *round)
{
    const char *tab = strchr(ln, '\t');
    if (!tab || ln[0] == '#') {
        return;
    }
    const char *want = answer(truth, ln, (size_t)(tab - ln)), *got = tab + 1;
    if (want && !strcmp(want, got)) {
        t->right++;
        return;
    }
    int code = got[0] == '!' ? atoi(got + 1) : 0;
    if (code == SPRIG_ECORRUPT || code == SPRIG_EAUTH) {
        bool named = names_place(got);
        t->refused += named;
        t->unnamed += !named;
        t->refused_open += !strncmp(ln, "open", 4);
        if (!named) {
            printf("  %s: a refusal naming nothing: %.300s\n", round, ln);
        }
    } else if (code == 0 || code == SPRIG_ENOTFOUND) {
        t->wrong++;
        printf("  %s: WRONG: %.200s\n      truth: %.200s\n", round, ln,
               want ? want : "(no such call)");
    } else {
        t->other++;
        printf("  %s: another error: %.300s\n", round, ln);
    }
}

/* Read the storage in `dir` in a child; judge what it answered. */
static void
one_round(tally *t, const lines *truth, const char *dir, const char *out,
          const char *round)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60);
        dump_all(dir, out);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    t->rounds++;
    if (WIFSIGNALED(status)) {
        bool hang = WTERMSIG(status) == SIGALRM;
        t->hang += hang;
        t->crash += !hang;
        printf("  %s: the reader %s (signal %d)\n", round,
               hang ? "hung" : "CRASHED", WTERMSIG(status));
        return;
    }
    lines got;
    load_lines(out, &got);
    unsigned long before = t->wrong;
    for (size_t i = 0; i < got.n; i++) {
        judge(t, truth, got.v[i], round);
    }
    t->wrong_rounds += t->wrong > before;
    free_lines(&got);
}

static void
test_byte_flips(void **state)
{
    char base[1200], tmpl[2][1300], truth_path[2][1300], work[1300], out[1300];
    uint64_t seed = tu_seed(), rng = seed ? seed : 1;
    name_ids(seed);
    unsigned long rounds = rt_env_ulong("SPRIG_FLIP_ROUNDS", 24);
    tally t = {0};
    lines truth[2];
    rt_scratch(base, sizeof base, "flips");
    for (int k = 0; k < 2; k++) {
        snprintf(tmpl[k], sizeof tmpl[k], "%s/template%d", base, k);
        snprintf(truth_path[k], sizeof truth_path[k], "%s/truth%d", base, k);
        make_template(tmpl[k], k == 1);
        snprintf(work, sizeof work, "%s/pristine", base);
        copy_tree(tmpl[k], work); /* the truth: an untouched copy's answers */
        dump_all(work, truth_path[k]);
        tu_rmtree(work);
        load_lines(truth_path[k], &truth[k]);
        assert_true(truth[k].n > 80);
        assert_non_null(answer(&truth[k], "kv list db", 10));
        assert_string_equal(answer(&truth[k], "#check", 6), "0 0");
    }
    snprintf(out, sizeof out, "%s/answers", base);
    uint64_t t0 = rt_now_us();
    for (unsigned long r = 0; r < rounds; r++) {
        char what[600], round[700];
        int k = (int)(r % 2);
        snprintf(work, sizeof work, "%s/r", base);
        copy_tree(tmpl[k], work);
        flip_bytes(work, &rng, what, sizeof what);
        snprintf(round, sizeof round, "round %lu (%s) %s", r,
                 k ? "crashed" : "clean", what);
        one_round(&t, &truth[k], work, out, round);
        tu_rmtree(work);
    }
    printf("byte flips: %lu rounds in %.1f s (seed %llu): %lu answers right, "
           "%lu refused with a message naming the place (%lu at open), %lu "
           "WRONG presented as right (in %lu rounds), %lu refusals naming "
           "nothing, %lu other errors, %lu crashes, %lu hangs\n",
           t.rounds, (double)(rt_now_us() - t0) / 1e6, (unsigned long long)seed,
           t.right, t.refused, t.refused_open, t.wrong, t.wrong_rounds,
           t.unnamed, t.other, t.crash, t.hang);
    for (int k = 0; k < 2; k++) {
        free_lines(&truth[k]);
    }
    tu_rmtree(base);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.crash, 0);
    assert_int_equal(t.hang, 0);
    assert_int_equal(t.other, 0);
    assert_int_equal(t.unnamed, 0);
}

/* ---- flips in stored values only ----------------------------------------
 */

typedef struct vspan {
    char file[2048];
    uint64_t off, len;
    char table[64];
} vspan;

typedef struct vspans {
    vspan *v;
    size_t n, cap;
} vspans;

/* Whether table `name` holds values that carry a CRC or a tag: documents,
 * key-value records, view `d` records and reduce values. */
static bool
valued_table(const char *name, size_t n)
{
    if (n >= 2 && !strncmp(name, "c.", 2)) {
        return true;
    }
    if (n == 2 && !strncmp(name, "kv", 2)) {
        return true;
    }
    return n > 4 && !strncmp(name, "v/", 2) &&
           (!strncmp(name + n - 2, "/d", 2) || !strncmp(name + n - 2, "/r", 2));
}

/* Add where every value of table `name` sits in the file (map offsets). */
static void
spans_of_table(vspans *sp, MDB_txn *txn, const char *file, const char *name,
               unsigned psize)
{
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;
    assert_int_equal(mdb_dbi_open(txn, name, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    for (int r = mdb_cursor_get(c, &k, &v, MDB_FIRST); r == 0;
         r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (sp->n == sp->cap) {
            sp->cap = sp->cap ? sp->cap * 2 : 64;
            sp->v = realloc(sp->v, sp->cap * sizeof *sp->v);
            assert_non_null(sp->v);
        }
        vspan *s = &sp->v[sp->n++];
        snprintf(s->file, sizeof s->file, "%s", file);
        snprintf(s->table, sizeof s->table, "%.63s", name);
        /* the map is page-aligned: the page holding the value's first
         * byte starts with its page number */
        uintptr_t a = (uintptr_t)v.mv_data, pg = a & ~(uintptr_t)(psize - 1);
        uint64_t pgno;
        memcpy(&pgno, (const void *)pg, 8);
        s->off = pgno * psize + (uint64_t)(a - pg);
        s->len = v.mv_size;
    }
    mdb_cursor_close(c);
}

/* Every stored value of a valued table in database directory `dir`. */
static void
spans_of_db(vspans *sp, const char *dir, const char *skip)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_stat est;
    MDB_cursor *c;
    MDB_val k, v;
    char file[2048], names[64][64];
    size_t nn = 0;
    snprintf(file, sizeof file, "%.1900s/data.mdb", dir);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0644), 0);
    assert_int_equal(mdb_env_stat(env, &est), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    MDB_dbi main_dbi; /* the main table: the tables' names */
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &main_dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, main_dbi, &c), 0);
    for (int r = mdb_cursor_get(c, &k, &v, MDB_FIRST); r == 0 && nn < 64;
         r = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 63 && valued_table(k.mv_data, k.mv_size)) {
            memcpy(names[nn], k.mv_data, k.mv_size);
            names[nn++][k.mv_size] = 0;
        }
    }
    mdb_cursor_close(c);
    for (size_t i = 0; i < nn; i++) {
        spans_of_table(sp, txn, file + strlen(skip) + 1, names[i],
                       est.ms_psize);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* Every stored value of every database of the storage in `dir`. */
static void
value_spans(const char *dir, vspans *sp)
{
    char dbs[1500];
    snprintf(dbs, sizeof dbs, "%.1200s/db", dir);
    DIR *d = opendir(dbs);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char p[1800];
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%.255s", dbs, e->d_name);
            spans_of_db(sp, p, dir);
        }
    }
    closedir(d);
}

/* XOR one byte of value `s` (a random byte, a random mask) in the copy of
 * the storage in `dir`. */
static void
flip_value(const char *dir, const vspan *s, uint64_t *rng, char *what,
           size_t cap)
{
    char p[3500];
    uint64_t off = s->off + rt_below(rng, s->len);
    uint8_t mask = (uint8_t)(1 + rt_below(rng, 255)), b;
    snprintf(p, sizeof p, "%s/%s", dir, s->file);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
    snprintf(what, cap, "%.300s (%s, value byte %llu of %llu)@%llu^%02x",
             s->file, s->table, (unsigned long long)(off - s->off),
             (unsigned long long)s->len, (unsigned long long)off, mask);
}

/* A flipped byte anywhere in a stored value -- a document (header and
 * contents), a key-value record, a view record, a reduce value; plain,
 * compressed or encrypted -- is refused (SPRIG_ECORRUPT: its CRC-32C;
 * SPRIG_EAUTH: its tag) or, where no read meets it, changes nothing: never
 * a changed answer presented as right.  Each round flips one byte of a
 * live value of the clean template, found through LMDB (so no flip is
 * wasted on free pages).  SPRIG_VALUE_FLIP_ROUNDS rounds (default 40). */
static void
test_value_flips(void **state)
{
    char base[1200], tmpl[1300], truth_path[1300], work[1300], out[1300];
    uint64_t seed = tu_seed(), rng = seed ? seed : 1;
    name_ids(seed);
    unsigned long rounds = rt_env_ulong("SPRIG_VALUE_FLIP_ROUNDS", 40);
    tally t = {0};
    lines truth;
    vspans sp = {0};
    rt_scratch(base, sizeof base, "vflips");
    snprintf(tmpl, sizeof tmpl, "%s/template", base);
    snprintf(truth_path, sizeof truth_path, "%s/truth", base);
    make_template(tmpl, false);
    snprintf(work, sizeof work, "%s/pristine", base);
    copy_tree(tmpl, work);
    dump_all(work, truth_path);
    tu_rmtree(work);
    load_lines(truth_path, &truth);
    assert_string_equal(answer(&truth, "#check", 6), "0 0");
    value_spans(tmpl, &sp);
    assert_true(sp.n > 100); /* documents, kv, view records, reduces */
    snprintf(out, sizeof out, "%s/answers", base);
    uint64_t t0 = rt_now_us();
    for (unsigned long r = 0; r < rounds; r++) {
        char what[1500], round[1600];
        snprintf(work, sizeof work, "%s/r", base);
        copy_tree(tmpl, work);
        flip_value(work, &sp.v[rt_below(&rng, sp.n)], &rng, what, sizeof what);
        snprintf(round, sizeof round, "value round %lu %s", r, what);
        one_round(&t, &truth, work, out, round);
        tu_rmtree(work);
    }
    printf("value flips: %lu rounds over %zu stored values in %.1f s (seed "
           "%llu): %lu answers right, %lu refused, %lu WRONG, %lu refusals "
           "naming nothing, %lu other errors, %lu crashes, %lu hangs\n",
           t.rounds, sp.n, (double)(rt_now_us() - t0) / 1e6,
           (unsigned long long)seed, t.right, t.refused, t.wrong, t.unnamed,
           t.other, t.crash, t.hang);
    free(sp.v);
    free_lines(&truth);
    tu_rmtree(base);
    assert_int_equal(t.wrong, 0);
    assert_true(t.refused > 0); /* the flips did meet values */
    assert_int_equal(t.crash, 0);
    assert_int_equal(t.hang, 0);
    assert_int_equal(t.other, 0);
    assert_int_equal(t.unnamed, 0);
}

/* ---- flips in LMDB's page structure ---------------------------------- */

/* The live leaf pages of every environment of the storage in `dir` (the
 * templates' tables are small: their trees are single leaves). */
static void
struct_pages(const char *dir, bpage **v, size_t *n)
{
    static files fs;
    fs.n = 0;
    list_files(dir, &fs);
    for (size_t f = 0; f < fs.n; f++) {
        char *b = strrchr(fs.path[f], '/');
        if (b && !strcmp(b, "/data.mdb")) {
            *b = 0;
            char file[1300];
            snprintf(file, sizeof file, "%s/data.mdb",
                     fs.path[f] + strlen(dir));
            env_leaves(fs.path[f], file, v, n);
        }
    }
}

/* XOR one byte of page `p`'s structure in the copy in `dir`: its bounds, a
 * node offset, a node's header (sizes, flags, child page) or one of the
 * first 24 bytes of a node's key. */
static void
flip_structure(const char *dir, const bpage *p, uint64_t *rng, char *what,
               size_t cap)
{
    char path[2700];
    static const char *const fields[] = {"bounds", "node offset", "node header",
                                         "key"};
    unsigned nk = p->lower > 16 ? (unsigned)(p->lower - 16) / 2 : 0;
    unsigned field = (unsigned)rt_below(rng, nk ? 4 : 1);
    unsigned i = nk ? (unsigned)rt_below(rng, nk) : 0;
    snprintf(path, sizeof path, "%s%s", dir, p->file);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t pg[4096];
    assert_int_equal(pread(fd, pg, 4096, (off_t)p->off), 4096);
    unsigned node = (unsigned)(pg[16 + 2 * i] | pg[17 + 2 * i] << 8) & 4095;
    /* a key byte anywhere in its first 24 (a late one mostly keeps the
     * order: the in-order rename of src/local/miss.c) */
    unsigned ks =
        node < 4088 ? (unsigned)(pg[node + 6] | pg[node + 7] << 8) : 0;
    unsigned kn = ks == 0 ? 4 : ks < 24 ? ks : 24;
    unsigned at = field == 0   ? 12 + (unsigned)rt_below(rng, 4)
                  : field == 1 ? 16 + 2 * i + (unsigned)rt_below(rng, 2)
                  : field == 2 ? node + (unsigned)rt_below(rng, 8)
                               : node + 8 + (unsigned)rt_below(rng, kn);
    at &= 4095;
    uint8_t mask = (uint8_t)(1 + rt_below(rng, 255));
    pg[at] ^= mask;
    assert_int_equal(pwrite(fd, pg + at, 1, (off_t)(p->off + at)), 1);
    close(fd);
    snprintf(what, cap, "%.300s page %llu (%s, %s of node %u) byte %u ^%02x",
             p->file, (unsigned long long)(p->off / 4096),
             p->leaf ? "leaf" : "branch", fields[field], i, at, mask);
}

/* A flipped byte of LMDB's page structure -- a branch or leaf page's
 * free-space bounds, a node offset, a node header (data size, flags, child
 * page number, key size), a key -- of either template is refused
 * (SPRIG_ECORRUPT naming the file: the page verifier at open; naming the
 * view: a view entry's key or id flipped in order, which its document's
 * CRC-checked record does not back) or changes no answer: never a wrong
 * answer presented as right (every wrong answer fails the test).  This is the
 * damage LMDB itself does not check (it checks a page's number range and kind).
 * SPRIG_STRUCT_FLIP_ROUNDS rounds (default 24). */
static void
test_structure_flips(void **state)
{
    char base[1200], tmpl[2][1300], truth_path[2][1300], work[1300], out[1300];
    uint64_t seed = tu_seed(), rng = seed ? seed : 1;
    name_ids(seed);
    unsigned long rounds = rt_env_ulong("SPRIG_STRUCT_FLIP_ROUNDS", 24);
    tally t = {0};
    lines truth[2];
    bpage *pages[2] = {NULL, NULL};
    size_t npages[2] = {0, 0};
    rt_scratch(base, sizeof base, "sflips");
    for (int k = 0; k < 2; k++) {
        snprintf(tmpl[k], sizeof tmpl[k], "%s/template%d", base, k);
        snprintf(truth_path[k], sizeof truth_path[k], "%s/truth%d", base, k);
        make_template(tmpl[k], k == 1);
        snprintf(work, sizeof work, "%s/pristine", base);
        copy_tree(tmpl[k], work);
        dump_all(work, truth_path[k]);
        tu_rmtree(work);
        load_lines(truth_path[k], &truth[k]);
        struct_pages(tmpl[k], &pages[k], &npages[k]);
        assert_true(npages[k] > 10);
    }
    snprintf(out, sizeof out, "%s/answers", base);
    uint64_t t0 = rt_now_us();
    for (unsigned long r = 0; r < rounds; r++) {
        char what[600], round[700];
        int k = (int)(r % 2);
        snprintf(work, sizeof work, "%s/r", base);
        copy_tree(tmpl[k], work);
        const bpage *pg = &pages[k][rt_below(&rng, npages[k])];
        flip_structure(work, pg, &rng, what, sizeof what);
        snprintf(round, sizeof round, "structure round %lu (%s) %s", r,
                 k ? "crashed" : "clean", what);
        one_round(&t, &truth[k], work, out, round);
        tu_rmtree(work);
    }
    printf("structure flips: %lu rounds over %zu+%zu pages in %.1f s (seed "
           "%llu): %lu answers right, %lu refused (%lu at open), %lu WRONG "
           "(in %lu rounds), %lu refusals naming nothing, %lu other errors, "
           "%lu crashes, %lu hangs\n",
           t.rounds, npages[0], npages[1], (double)(rt_now_us() - t0) / 1e6,
           (unsigned long long)seed, t.right, t.refused, t.refused_open,
           t.wrong, t.wrong_rounds, t.unnamed, t.other, t.crash, t.hang);
    for (int k = 0; k < 2; k++) {
        free_lines(&truth[k]);
        free(pages[k]);
    }
    tu_rmtree(base);
    assert_int_equal(t.wrong, 0);
    assert_true(t.refused > 0); /* the flips did meet live pages */
    assert_int_equal(t.crash, 0);
    assert_int_equal(t.hang, 0);
    assert_int_equal(t.other, 0);
    assert_int_equal(t.unnamed, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_flips),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_structure_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
