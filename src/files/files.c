/*
 * files.c -- the file store's handle, formats and garbage (src/files, the
 * layer above core that reaches a database only through sprig.h): options,
 * the schema helper that adds the store's collections to a schema, path
 * keys, the file document codec, pending records, and collecting the
 * chunks of versions no file uses any more.  Writes are in write.c, reads
 * and listings in read.c; the design is in files_int.h and
 * docs/architecture.md, "File store".
 */
#include "files_int.h"

#include <stdio.h>
#include <sys/random.h>
#include <time.h>

void
sprig_files_options_init(sprig_files_options *o)
{
    memset(o, 0, sizeof *o);
    o->prefix = "files";
    o->chunk_size = 64u * 1024u;
    o->txn_bytes = 4u * 1024u * 1024u;
}

static int
fs_coll_names(const char *prefix, char names[3][SPRIG_NAME_MAX + 1])
{
    static const char *const suffix[3] = {".files", ".chunks", ".pending"};
    int rc = sprig__check_coll_name("file store prefix", prefix);
    for (int i = 0; rc == 0 && i < 3; i++) {
        int n =
            snprintf(names[i], SPRIG_NAME_MAX + 1, "%s%s", prefix, suffix[i]);
        if (n > SPRIG_NAME_MAX) {
            rc = sprig__err(SPRIG_EINVAL,
                            "file store prefix '%s' is too long: its "
                            "collection names pass %d bytes",
                            prefix, SPRIG_NAME_MAX);
        }
    }
    return rc;
}

static int
fs_check_options(const sprig_files_options *o)
{
    if (o->chunk_size < FS_CHUNK_MIN || o->chunk_size > SPRIG_FILES_CHUNK_MAX) {
        return sprig__err(SPRIG_EINVAL, "chunk size %u is outside %u..%u bytes",
                          o->chunk_size, FS_CHUNK_MIN, SPRIG_FILES_CHUNK_MAX);
    }
    if (o->txn_bytes < o->chunk_size || o->txn_bytes > SPRIG_CONTENTS_MAX) {
        return sprig__err(SPRIG_EINVAL,
                          "txn_bytes %zu must hold a chunk (%u bytes) and "
                          "be at most %u",
                          o->txn_bytes, o->chunk_size, SPRIG_CONTENTS_MAX);
    }
    return 0;
}

int
sprig_files_open(sprig_db *db, const sprig_files_options *o, sprig_files **out)
{
    sprig_files_options def;
    if (!o) {
        sprig_files_options_init(&def);
        o = &def;
    }
    if (!db || !out || !o->prefix) {
        return sprig__err(SPRIG_EINVAL, "sprig_files_open: NULL argument");
    }
    *out = NULL;
    char names[3][SPRIG_NAME_MAX + 1];
    int rc = fs_check_options(o);
    rc = rc ? rc : fs_coll_names(o->prefix, names);
    for (int i = 0; rc == 0 && i < 3; i++) {
        uint64_t n;
        rc = sprig_count(db, names[i], NULL, &n);
    }
    if (rc) {
        return rc;
    }
    sprig_files *fs = sprig__calloc(1, sizeof *fs);
    if (!fs) {
        return sprig__err(SPRIG_ENOMEM, "out of memory opening a file store");
    }
    fs->db = db;
    memcpy(fs->c_files, names[0], sizeof names[0]);
    memcpy(fs->c_chunks, names[1], sizeof names[1]);
    memcpy(fs->c_pending, names[2], sizeof names[2]);
    fs->chunk_size = o->chunk_size;
    fs->txn_bytes = o->txn_bytes / o->chunk_size * o->chunk_size;
    *out = fs;
    return 0;
}

void
sprig_files_close(sprig_files *fs)
{
    sprig__free(fs);
}

/* ---- the schema helper ------------------------------------------------ */

/* One block: the schema, its collections, then their name strings. */
typedef struct fs_schema_block {
    sprig_schema_def s;
    char name[SPRIG_NAME_MAX + 1];
    char cnames[3][SPRIG_NAME_MAX + 1];
    sprig_collection_def cols[];
} fs_schema_block;

int
sprig_files_schema_add(const sprig_schema_def *base, const char *name,
                       const char *prefix, sprig_schema_def **out)
{
    if (!out) {
        return sprig__err(SPRIG_EINVAL, "sprig_files_schema_add: NULL out");
    }
    *out = NULL;
    name = name ? name : base ? base->name : "files";
    char cn[3][SPRIG_NAME_MAX + 1];
    int rc = fs_coll_names(prefix ? prefix : "files", cn);
    rc = rc ? rc : sprig__check_coll_name("schema", name);
    if (rc) {
        return rc;
    }
    size_t nb = base ? base->n_collections : 0;
    fs_schema_block *b =
        sprig__calloc(1, sizeof *b + (nb + 3) * sizeof b->cols[0]);
    if (!b) {
        return sprig__err(SPRIG_ENOMEM, "out of memory building a schema");
    }
    snprintf(b->name, sizeof b->name, "%s", name);
    memcpy(b->cnames, cn, sizeof cn);
    for (size_t i = 0; i < nb; i++) {
        b->cols[i] = base->collections[i];
    }
    for (size_t i = 0; i < 3; i++) {
        b->cols[nb + i] =
            (sprig_collection_def){b->cnames[i], SPRIG_ID_NATURAL, 0, NULL, 0};
    }
    b->s = (sprig_schema_def){b->name, b->cols, nb + 3};
    *out = &b->s;
    return 0;
}

void
sprig_files_schema_free(sprig_schema_def *s)
{
    sprig__free(s); /* the block starts with it */
}

/* ---- small helpers ----------------------------------------------------- */

uint64_t
sprig__fs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
sprig__fs_new_version(uint64_t *out)
{
    uint64_t v = 0;
    while (v == 0) {
        if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
            return sprig__err(SPRIG_EIO, "getrandom failed");
        }
    }
    *out = v;
    return 0;
}

void
sprig__fs_chunk_id(uint64_t version, uint64_t index, uint8_t id[16])
{
    sprig__put_u64be(id, version);
    sprig__put_u64be(id + 8, index);
}

void
sprig__fs_pending_id(char kind, uint64_t version, uint8_t id[9])
{
    id[0] = (uint8_t)kind;
    sprig__put_u64be(id + 1, version);
}

/* ---- path keys --------------------------------------------------------- */

/* Check the component [s, s+n) of `path`. */
static int
fs_check_component(const char *path, const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.')) {
        return sprig__err(SPRIG_EINVAL,
                          "path '%s' has an empty, '.' or '..' component",
                          path);
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return sprig__err(SPRIG_EINVAL, "path '%s' has a control character",
                              path);
        }
    }
    return 0;
}

/* The key of `path`'s components; the last one is the file's name when
 * `file` (0x00 before it), else a directory (0x01 after it). */
static int
fs_key(const char *path, bool file, uint8_t *key, size_t *len)
{
    size_t n = path ? strlen(path) : 0;
    if (!path || path[0] != '/') {
        return sprig__err(SPRIG_EINVAL, "path '%s' does not start with '/'",
                          path ? path : "(null)");
    }
    if (n > SPRIG_FILES_PATH_MAX) {
        return sprig__err(SPRIG_ETOOBIG, "path '%.40s...' is over %d bytes",
                          path, SPRIG_FILES_PATH_MAX);
    }
    if (!file && path[n - 1] == '/') {
        n--; /* "/a/b/" names the directory "/a/b"; "/" the root */
    }
    size_t k = 0;
    const char *s = path + 1, *end = path + n;
    while (s < end || (file && s == end)) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *ce = slash ? slash : end;
        int rc = fs_check_component(path, s, (size_t)(ce - s));
        if (rc) {
            return rc;
        }
        bool leaf = file && !slash;
        if (leaf) {
            key[k++] = 0x00;
        }
        memcpy(key + k, s, (size_t)(ce - s));
        k += (size_t)(ce - s);
        if (!leaf) {
            key[k++] = 0x01;
        }
        s = ce + 1;
        if (leaf) {
            break;
        }
    }
    *len = k;
    return 0;
}

int
sprig__fs_path_key(const char *path, uint8_t *key, size_t *len)
{
    return fs_key(path, true, key, len);
}

int
sprig__fs_dir_key(const char *dir, uint8_t *key, size_t *len)
{
    return fs_key(dir, false, key, len);
}

/* ---- file documents ---------------------------------------------------- */

int
sprig__fs_meta_encode(const fs_meta *m, sprig_buf *out)
{
    uint8_t h[FS_META_HEAD];
    memcpy(h, "SPF1", 4);
    sprig__put_u64be(h + 4, m->version);
    sprig__put_u64be(h + 12, m->length);
    sprig__put_u64be(h + 20, m->created_ms);
    sprig__put_u64be(h + 28, m->modified_ms);
    h[36] = (uint8_t)(m->chunk_size >> 24);
    h[37] = (uint8_t)(m->chunk_size >> 16);
    h[38] = (uint8_t)(m->chunk_size >> 8);
    h[39] = (uint8_t)m->chunk_size;
    out->len = 0;
    int rc = sprig_buf_append(out, h, sizeof h);
    if (rc == 0 && m->user.len) {
        rc = sprig_buf_append(out, m->user.data, m->user.len);
    }
    return rc ? sprig__err(rc, "out of memory encoding a file") : 0;
}

int
sprig__fs_meta_decode(sprig_bytes b, fs_meta *m)
{
    const uint8_t *p = b.data;
    if (b.len < FS_META_HEAD || memcmp(p, "SPF1", 4) != 0) {
        return sprig__err(SPRIG_ECORRUPT, "a file document is malformed");
    }
    m->version = sprig__get_u64be(p + 4);
    m->length = sprig__get_u64be(p + 12);
    m->created_ms = sprig__get_u64be(p + 20);
    m->modified_ms = sprig__get_u64be(p + 28);
    m->chunk_size = (uint32_t)p[36] << 24 | (uint32_t)p[37] << 16 |
                    (uint32_t)p[38] << 8 | p[39];
    m->user = (sprig_bytes){p + FS_META_HEAD, b.len - FS_META_HEAD};
    if (m->chunk_size < FS_CHUNK_MIN || m->chunk_size > SPRIG_FILES_CHUNK_MAX ||
        m->length > FS_LENGTH_MAX) {
        return sprig__err(SPRIG_ECORRUPT,
                          "a file document has chunk size %u, length %llu",
                          m->chunk_size, (unsigned long long)m->length);
    }
    return 0;
}

void
sprig__fs_header_copy(sprig_header h, sprig_header_buf *out)
{
    memset(out, 0, sizeof *out);
    out->id_len = (uint32_t)(h.id.len <= SPRIG_ID_MAX ? h.id.len : 0);
    memcpy(out->id, h.id.data, out->id_len);
    out->revision = h.revision;
    memcpy(out->hash, h.hash, 16);
}

int
sprig__fs_file_get(sprig_files *fs, sprig_bytes key, const char *path,
                   fs_file *out)
{
    memset(out, 0, sizeof *out);
    int rc = sprig_get(fs->db, fs->c_files, key, &out->doc);
    if (rc == SPRIG_ENOTFOUND) {
        return sprig__err(rc, "no file '%s'", path);
    }
    if (rc == 0) {
        sprig__fs_header_copy(sprig_doc_header(out->doc), &out->hdr);
        rc = sprig__fs_meta_decode(sprig_doc_contents(out->doc), &out->m);
    }
    if (rc) {
        sprig__fs_file_clear(out);
    }
    return rc;
}

void
sprig__fs_file_clear(fs_file *f)
{
    sprig_doc_free(f->doc);
    memset(f, 0, sizeof *f);
}

size_t
sprig__fs_pending_rec(const char *path, uint8_t rec[8 + SPRIG_FILES_PATH_MAX])
{
    size_t n = strlen(path);
    n = n > SPRIG_FILES_PATH_MAX ? SPRIG_FILES_PATH_MAX : n;
    sprig__put_u64be(rec, sprig__fs_now_ms());
    memcpy(rec + 8, path, n);
    return 8 + n;
}

int
sprig__fs_txn_pending(sprig_files *fs, sprig_txn *t, char kind,
                      uint64_t version, const char *path)
{
    uint8_t id[9], rec[8 + SPRIG_FILES_PATH_MAX];
    size_t n = sprig__fs_pending_rec(path, rec);
    sprig__fs_pending_id(kind, version, id);
    sprig_bytes bid = {id, sizeof id};
    return sprig_txn_insert(t, fs->c_pending, &bid, (sprig_bytes){rec, n});
}

int
sprig__fs_pending_insert(sprig_files *fs, char kind, uint64_t version,
                         const char *path, sprig_header_buf *out)
{
    uint8_t id[9], rec[8 + SPRIG_FILES_PATH_MAX];
    size_t n = sprig__fs_pending_rec(path, rec);
    sprig__fs_pending_id(kind, version, id);
    sprig_bytes bid = {id, sizeof id};
    return sprig_insert(fs->db, fs->c_pending, &bid, (sprig_bytes){rec, n},
                        out);
}

int
sprig__fs_apply(sprig_files *fs, const sprig_txn *t)
{
    int rc = sprig_txn_apply(fs->db, t, NULL);
    return rc == SPRIG_ENOTFOUND
               ? sprig__err(SPRIG_ECONFLICT, "the file changed while written")
               : rc;
}

/* ---- garbage ----------------------------------------------------------- */

/* Delete the chunks listed in `l`, guarded by `guard` (may be NULL). */
static int
fs_drop_listed(sprig_files *fs, const sprig_header_list *l,
               const sprig_header *guard)
{
    sprig_txn *t;
    int rc = sprig_txn_new(&t);
    if (rc == 0 && guard) {
        rc = sprig_txn_check(t, fs->c_files, guard->id, guard);
    }
    for (size_t i = 0; rc == 0 && i < sprig_header_list_count(l); i++) {
        sprig_header h = sprig_header_list_get(l, i);
        rc = sprig_txn_delete(t, fs->c_chunks, &h);
    }
    rc = rc ? rc : sprig__fs_apply(fs, t);
    sprig_txn_free(t);
    return rc;
}

int
sprig__fs_drop_chunks(sprig_files *fs, uint64_t version, uint64_t from,
                      const sprig_header *guard, uint64_t *n)
{
    uint8_t lo[16], hi[16];
    sprig__fs_chunk_id(version, from, lo);
    sprig__fs_chunk_id(version, UINT64_MAX, hi);
    sprig_range r = {{SPRIG_INCLUDED, {lo, 16}}, {SPRIG_INCLUDED, {hi, 16}}};
    for (int busy = 0;;) {
        sprig_header_list *l;
        int rc =
            sprig_list_headers(fs->db, fs->c_chunks, &r, SPRIG_ASC, 256, &l);
        if (rc) {
            return rc;
        }
        size_t k = sprig_header_list_count(l);
        rc = k ? fs_drop_listed(fs, l, guard) : 0;
        sprig_header_list_free(l);
        if (k == 0 ||
            (guard && (rc == SPRIG_ECONFLICT || rc == SPRIG_ENOTFOUND))) {
            return 0; /* done, or the file moved on: the rest is its */
        }
        if (rc == SPRIG_ECONFLICT && ++busy < FS_ATTEMPTS) {
            continue; /* another collector took some */
        }
        if (rc) {
            return rc;
        }
        if (n) {
            *n += k;
        }
    }
}

int
sprig__fs_drop_tail(sprig_files *fs, const fs_file *f, int rc)
{
    char why[256];
    snprintf(why, sizeof why, "%s", sprig_errmsg());
    uint32_t cs = f->m.chunk_size;
    uint64_t from = f->m.length / cs + (f->m.length % cs != 0);
    sprig_header h = sprig_header_of(&f->hdr);
    sprig__fs_drop_chunks(fs, f->m.version, from, &h, NULL);
    return rc ? sprig__err(rc, "%s", why) : 0;
}

/* After a large append to the file at `path` (its record's contents) died
 * writing `version`: drop what it wrote past the file's length. */
static int
fs_gc_append(sprig_files *fs, sprig_bytes rec, uint64_t version)
{
    char path[SPRIG_FILES_PATH_MAX + 1];
    uint8_t key[SPRIG_FILES_PATH_MAX];
    size_t klen, n = rec.len - 8 < SPRIG_FILES_PATH_MAX ? rec.len - 8
                                                        : SPRIG_FILES_PATH_MAX;
    memcpy(path, (const uint8_t *)rec.data + 8, n);
    path[n] = '\0';
    fs_file f;
    if (sprig__fs_path_key(path, key, &klen) ||
        sprig__fs_file_get(fs, (sprig_bytes){key, klen}, path, &f)) {
        return 0; /* renamed or deleted since: its chunks went with it */
    }
    int rc = f.m.version == version ? sprig__fs_drop_tail(fs, &f, 0) : 0;
    sprig__fs_file_clear(&f);
    return rc;
}

bool
sprig__fs_pending_stale(sprig_files *fs, char kind, uint64_t version)
{
    uint8_t id[9];
    sprig_doc *d;
    sprig__fs_pending_id(kind, version, id);
    if (sprig_get(fs->db, fs->c_pending, (sprig_bytes){id, 9}, &d) != 0) {
        return true; /* gone since: try again */
    }
    sprig_bytes c = sprig_doc_contents(d);
    uint64_t now = sprig__fs_now_ms();
    uint64_t seen = c.len >= 8 ? sprig__get_u64be(c.data) : 0;
    bool stale = now > seen && now - seen >= FS_STALE_MS;
    sprig_header h = sprig_doc_header(d);
    stale = stale && sprig_delete(fs->db, fs->c_pending, &h) == 0;
    sprig_doc_free(d);
    return stale;
}

/* Delete pending record `id` if it still has header `h`. */
static int
fs_pending_delete(sprig_files *fs, const sprig_header *h)
{
    int rc = sprig_delete(fs->db, fs->c_pending, h);
    return rc == SPRIG_ENOTFOUND || rc == SPRIG_ECONFLICT ? 0 : rc;
}

int
sprig__fs_collect(sprig_files *fs, uint64_t version, uint64_t *n)
{
    int rc = sprig__fs_drop_chunks(fs, version, 0, NULL, n);
    if (rc) {
        return rc;
    }
    uint8_t id[9];
    sprig__fs_pending_id('G', version, id);
    sprig_doc *d;
    rc = sprig_get(fs->db, fs->c_pending, (sprig_bytes){id, 9}, &d);
    if (rc == SPRIG_ENOTFOUND) {
        return 0;
    }
    if (rc == 0) {
        sprig_header h = sprig_doc_header(d);
        rc = fs_pending_delete(fs, &h);
        sprig_doc_free(d);
    }
    return rc;
}

/* Collect what pending record `d` stands for, if it is due. */
static int
fs_gc_one(sprig_files *fs, const sprig_doc *d, uint64_t min_age_ms,
          uint64_t now, uint64_t *n)
{
    sprig_header h = sprig_doc_header(d);
    sprig_bytes c = sprig_doc_contents(d);
    const uint8_t *id = h.id.data;
    if (h.id.len != 9 || c.len < 8) {
        return sprig__err(SPRIG_ECORRUPT, "a pending file record is "
                                          "malformed");
    }
    uint64_t version = sprig__get_u64be(id + 1);
    uint64_t started = sprig__get_u64be(c.data);
    if (id[0] == 'G') {
        return sprig__fs_collect(fs, version, n);
    }
    if (now < started || now - started < min_age_ms) {
        return 0;
    }
    /* Deleting the record makes the writer's next step fail; if it is
     * gone already, the writer finished (or another collector has it). */
    int rc = sprig_delete(fs->db, fs->c_pending, &h);
    if (rc == SPRIG_ENOTFOUND || rc == SPRIG_ECONFLICT) {
        return 0;
    }
    if (rc == 0 && id[0] == 'W') {
        rc = sprig__fs_drop_chunks(fs, version, 0, NULL, n);
    } else if (rc == 0 && id[0] == 'A') {
        rc = fs_gc_append(fs, c, version);
    }
    return rc;
}

int
sprig_files_gc(sprig_files *fs, uint64_t min_age_ms, uint64_t *collected)
{
    uint64_t n = 0, now = sprig__fs_now_ms();
    if (!fs) {
        return sprig__err(SPRIG_EINVAL, "sprig_files_gc: NULL file store");
    }
    uint8_t after[9];
    sprig_range r = {{SPRIG_UNBOUNDED, {0}}, {SPRIG_UNBOUNDED, {0}}};
    int rc = 0;
    for (size_t k = 1; rc == 0 && k > 0;) {
        sprig_doc_list *l;
        rc = sprig_list(fs->db, fs->c_pending, &r, SPRIG_ASC, 64, &l);
        if (rc) {
            break;
        }
        k = sprig_doc_list_count(l);
        for (size_t i = 0; rc == 0 && i < k; i++) {
            rc = fs_gc_one(fs, sprig_doc_list_get(l, i), min_age_ms, now, &n);
        }
        if (k) {
            sprig_header last = sprig_doc_header(sprig_doc_list_get(l, k - 1));
            memcpy(after, last.id.data, last.id.len == 9 ? 9 : 0);
            r.start = (sprig_bound){SPRIG_EXCLUDED, {after, 9}};
        }
        sprig_doc_list_free(l);
    }
    if (collected) {
        *collected = n;
    }
    return rc;
}
