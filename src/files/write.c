/*
 * write.c -- the file store's writes (src/files): put, append, truncate,
 * rename, delete and metadata, each atomic.  A write that fits one
 * transaction (at most `txn_bytes` of chunks) is one transaction, retried
 * when the file changed under it.  A larger one writes its chunks in
 * guarded batches -- a put under a fresh version, recorded as pending 'W';
 * an append beyond the file's length, under a pending 'A' lock -- and the
 * last transaction flips the file document; see files_int.h.
 */
#include "files_int.h"

#include <stdio.h>

/* Bytes becoming chunks of one version: `carry` holds the start of the
 * chunk at `index` (less than a chunk), `length` the file's length so far. */
typedef struct fs_writer {
    sprig_files *fs;
    uint64_t version, index, length;
    uint32_t cs;
    sprig_buf carry;
} fs_writer;

static int
w_chunk(fs_writer *w, sprig_txn *t, uint64_t idx, const void *p, size_t n)
{
    uint8_t id[16];
    sprig__fs_chunk_id(w->version, idx, id);
    return sprig_txn_overwrite(t, w->fs->c_chunks, (sprig_bytes){id, 16},
                               (sprig_bytes){p, n});
}

/* Add `n` bytes: whole chunks go into `t`, the rest stays in carry. */
static int
w_add(fs_writer *w, sprig_txn *t, const uint8_t *p, size_t n)
{
    int rc = 0;
    w->length += n;
    if (w->carry.len && n) {
        size_t take = w->cs - w->carry.len;
        take = take < n ? take : n;
        rc = sprig_buf_append(&w->carry, p, take);
        p += take, n -= take;
        if (rc == 0 && w->carry.len == w->cs) {
            rc = w_chunk(w, t, w->index++, w->carry.data, w->cs);
            w->carry.len = 0;
        }
    }
    for (; rc == 0 && n >= w->cs; p += w->cs, n -= w->cs) {
        rc = w_chunk(w, t, w->index++, p, w->cs);
    }
    if (rc == 0 && n) {
        rc = sprig_buf_append(&w->carry, p, n);
    }
    return rc;
}

/* The last, partial chunk (adding it twice to two transactions is fine). */
static int
w_finish(fs_writer *w, sprig_txn *t)
{
    return w->carry.len ? w_chunk(w, t, w->index, w->carry.data, w->carry.len)
                        : 0;
}

/* A writer continuing file `f`: its last partial chunk read into carry. */
static int
w_continue(fs_writer *w, sprig_files *fs, const fs_file *f)
{
    *w =
        (fs_writer){fs,          f->m.version,    f->m.length / f->m.chunk_size,
                    f->m.length, f->m.chunk_size, {0}};
    size_t off = (size_t)(f->m.length % f->m.chunk_size);
    if (off == 0) {
        return 0;
    }
    uint8_t id[16];
    sprig_doc *d = NULL;
    sprig__fs_chunk_id(w->version, w->index, id);
    int rc = sprig_get(fs->db, fs->c_chunks, (sprig_bytes){id, 16}, &d);
    if (rc == SPRIG_ENOTFOUND || (rc == 0 && sprig_doc_contents(d).len < off)) {
        /* the file moved on since it was read (or is corrupt: retries
         * end in SPRIG_ECONFLICT) */
        rc = sprig__err(SPRIG_ECONFLICT, "a file's last chunk is missing");
    } else if (rc == 0) {
        rc = sprig_buf_append(&w->carry, sprig_doc_contents(d).data, off);
    }
    sprig_doc_free(d);
    return rc;
}

/* Fill `buf` from `src` until full or the stream ends (`*eof`). */
static int
fs_fill(sprig_files_source_fn src, void *udata, uint8_t *buf, size_t cap,
        size_t *n, bool *eof)
{
    *n = 0;
    *eof = false;
    while (*n < cap) {
        ssize_t r = src(udata, buf + *n, cap - *n);
        if (r < 0) {
            return (int)r;
        }
        if (r == 0 || (size_t)r > cap - *n) {
            *eof = true;
            return r == 0 ? 0
                          : sprig__err(SPRIG_EINVAL, "a file source returned "
                                                     "more than asked");
        }
        *n += (size_t)r;
    }
    return 0;
}

/* Encode `m` into an update of `f`, or an insert at `key` (f NULL). */
static int
fs_txn_file(sprig_files *fs, sprig_txn *t, const fs_file *f, sprig_bytes key,
            const fs_meta *m)
{
    sprig_buf b = {0};
    int rc = sprig__fs_meta_encode(m, &b);
    if (rc == 0 && f) {
        sprig_header h = sprig_header_of(&f->hdr);
        rc = sprig_txn_update(t, fs->c_files, &h, sprig_buf_bytes(&b));
    } else if (rc == 0) {
        rc = sprig_txn_insert(t, fs->c_files, &key, sprig_buf_bytes(&b));
    }
    sprig_buf_clear(&b);
    return rc;
}

/* Whether a failed attempt may be retried from the start. */
static bool
fs_retry(int rc, int attempt)
{
    return rc == SPRIG_ECONFLICT && attempt + 1 < FS_ATTEMPTS;
}

/* After a write that succeeded: collect the version it replaced.  Best
 * effort -- the write is done; what fails stays recorded for
 * sprig_files_gc(). */
static int
fs_collect_after(sprig_files *fs, uint64_t version)
{
    sprig__fs_collect(fs, version, NULL);
    return 0;
}

/* ---- put ---------------------------------------------------------------- */

typedef struct fs_put {
    sprig_files *fs;
    const char *path;
    uint8_t key[SPRIG_FILES_PATH_MAX];
    size_t klen;
    sprig_bytes user;
    unsigned flags;
} fs_put;

/* The file document and the 'G' record that end a put of `w`; `old` is the
 * file replaced (its doc NULL when there is none). */
static int
put_finish_ops(fs_put *p, const fs_writer *w, sprig_txn *t, const fs_file *old)
{
    bool exists = old->doc != NULL;
    if (exists && (p->flags & SPRIG_FILES_EXCLUSIVE)) {
        return sprig__err(SPRIG_EEXIST, "file '%s' exists", p->path);
    }
    uint64_t now = sprig__fs_now_ms();
    fs_meta m = {w->version, w->length, exists ? old->m.created_ms : now,
                 now,        w->cs,     p->user};
    int rc = fs_txn_file(p->fs, t, exists ? old : NULL,
                         (sprig_bytes){p->key, p->klen}, &m);
    if (rc == 0 && exists) {
        rc = sprig__fs_txn_pending(p->fs, t, 'G', old->m.version, p->path);
    }
    return rc;
}

/* Read the file a put replaces: `old->doc` NULL when there is none. */
static int
put_old(fs_put *p, fs_file *old)
{
    int rc =
        sprig__fs_file_get(p->fs, (sprig_bytes){p->key, p->klen}, p->path, old);
    return rc == SPRIG_ENOTFOUND ? 0 : rc;
}

/* One attempt at a put in one transaction; `*old_version` (0: none) is the
 * version replaced. */
static int
put_small_once(fs_put *p, const uint8_t *data, size_t n, uint64_t *old_version)
{
    fs_file old;
    fs_writer w = {p->fs, 0, 0, 0, p->fs->chunk_size, {0}};
    sprig_txn *t = NULL;
    int rc = put_old(p, &old);
    rc = rc ? rc : sprig__fs_new_version(&w.version);
    rc = rc ? rc : sprig_txn_new(&t);
    rc = rc ? rc : w_add(&w, t, data, n);
    rc = rc ? rc : w_finish(&w, t);
    rc = rc ? rc : put_finish_ops(p, &w, t, &old);
    rc = rc ? rc : sprig__fs_apply(p->fs, t);
    *old_version = old.doc ? old.m.version : 0;
    sprig_txn_free(t);
    sprig_buf_clear(&w.carry);
    sprig__fs_file_clear(&old);
    return rc;
}

static int
put_small(fs_put *p, const uint8_t *data, size_t n)
{
    uint64_t old = 0;
    int rc = SPRIG_ECONFLICT;
    for (int i = 0; rc && (i == 0 || fs_retry(rc, i - 1)); i++) {
        rc = put_small_once(p, data, n, &old);
    }
    return rc == 0 && old ? fs_collect_after(p->fs, old) : rc;
}

/* Apply `t` whose first `n_guards` operations guard a large write: their
 * failure means the file changed or the write was collected
 * (SPRIG_ECONFLICT, and `*guard` set).  `*r` (may be NULL) keeps the
 * result of a success. */
static int
fs_apply_guarded(sprig_files *fs, sprig_txn *t, long n_guards, const char *path,
                 bool *guard, sprig_txn_result **keep)
{
    sprig_txn_result *r = NULL;
    int rc = sprig_txn_apply(fs->db, t, &r);
    long failed = r ? sprig_txn_result_failed(r) : -1;
    *guard = (rc == SPRIG_ECONFLICT || rc == SPRIG_ENOTFOUND) && failed >= 0 &&
             failed < n_guards;
    if (*guard) {
        rc = sprig__err(SPRIG_ECONFLICT,
                        "file '%s' changed, or its unfinished write was "
                        "collected, while it was written",
                        path);
    }
    if (rc == 0 && keep) {
        *keep = r;
    } else {
        sprig_txn_result_free(r);
    }
    return rc;
}

/* One batch of a large write: its pending record `rec` refreshed (the
 * heartbeat that keeps sprig_files_gc() and other writers off it; `rec`
 * gets the new header), the file document `file` checked (if given),
 * then `n` bytes of chunks. */
static int
fs_batch(fs_writer *w, sprig_header_buf *rec, const sprig_header *file,
         const uint8_t *data, size_t n, const char *path)
{
    sprig_txn *t;
    sprig_txn_result *r = NULL;
    bool guard;
    uint8_t body[8 + SPRIG_FILES_PATH_MAX];
    sprig_header h = sprig_header_of(rec);
    int rc = sprig_txn_new(&t);
    rc = rc ? rc
            : sprig_txn_update(
                  t, w->fs->c_pending, &h,
                  (sprig_bytes){body, sprig__fs_pending_rec(path, body)});
    if (rc == 0 && file) {
        rc = sprig_txn_check(t, w->fs->c_files, file->id, file);
    }
    rc = rc ? rc : w_add(w, t, data, n);
    rc = rc ? rc : fs_apply_guarded(w->fs, t, file ? 2 : 1, path, &guard, &r);
    if (rc == 0) {
        sprig__fs_header_copy(sprig_txn_result_header(r, 0), rec);
    }
    sprig_txn_result_free(r);
    sprig_txn_free(t);
    return rc;
}

/* The flip of a large put: delete its 'W' record, write the last partial
 * chunk and the file document; retried while the file changes. */
static int
put_large_flip(fs_put *p, fs_writer *w, const sprig_header_buf *rec)
{
    sprig_header wrec_h = sprig_header_of(rec), *wrec = &wrec_h;
    int rc = SPRIG_ECONFLICT;
    uint64_t old_version = 0;
    bool guard = false;
    for (int i = 0; rc && !guard && (i == 0 || fs_retry(rc, i - 1)); i++) {
        fs_file old;
        sprig_txn *t = NULL;
        rc = put_old(p, &old);
        rc = rc ? rc : sprig_txn_new(&t);
        rc = rc ? rc : sprig_txn_delete(t, p->fs->c_pending, wrec);
        rc = rc ? rc : w_finish(w, t);
        rc = rc ? rc : put_finish_ops(p, w, t, &old);
        rc = rc ? rc : fs_apply_guarded(p->fs, t, 1, p->path, &guard, NULL);
        old_version = old.doc ? old.m.version : 0;
        sprig_txn_free(t);
        sprig__fs_file_clear(&old);
    }
    return rc == 0 && old_version ? fs_collect_after(p->fs, old_version) : rc;
}

/* Undo a large write that failed: its record, then (for a put) the chunks
 * of its version.  Keeps the thread's error detail. */
static int
fs_abandon(sprig_files *fs, const sprig_header *rec, uint64_t version,
           bool chunks, int rc)
{
    char why[256];
    snprintf(why, sizeof why, "%s", sprig_errmsg());
    if (sprig_delete(fs->db, fs->c_pending, rec) == 0 && chunks) {
        sprig__fs_drop_chunks(fs, version, 0, NULL, NULL);
    }
    return sprig__err(rc, "%s", why);
}

/* A put of more than one buffer: `buf` (`cap` bytes) holds the first `n`. */
static int
put_large(fs_put *p, sprig_files_source_fn src, void *udata, uint8_t *buf,
          size_t n)
{
    fs_writer w = {p->fs, 0, 0, 0, p->fs->chunk_size, {0}};
    sprig_header_buf rec;
    fs_file old;
    int rc = p->flags & SPRIG_FILES_EXCLUSIVE ? put_old(p, &old) : 0;
    if (rc == 0 && (p->flags & SPRIG_FILES_EXCLUSIVE) && old.doc) {
        rc = sprig__err(SPRIG_EEXIST, "file '%s' exists", p->path);
        sprig__fs_file_clear(&old); /* checked again at the flip */
    }
    rc = rc ? rc : sprig__fs_new_version(&w.version);
    rc = rc ? rc
            : sprig__fs_pending_insert(p->fs, 'W', w.version, p->path, &rec);
    if (rc) {
        return rc;
    }
    for (bool eof = false; rc == 0 && n;) {
        rc = fs_batch(&w, &rec, NULL, buf, n, p->path);
        n = 0;
        if (rc == 0 && !eof) {
            rc = fs_fill(src, udata, buf, p->fs->txn_bytes, &n, &eof);
        }
    }
    rc = rc ? rc : put_large_flip(p, &w, &rec);
    if (rc) {
        sprig_header g = sprig_header_of(&rec);
        rc = fs_abandon(p->fs, &g, w.version, true, rc);
    }
    sprig_buf_clear(&w.carry);
    return rc;
}

static int
put_init(fs_put *p, sprig_files *fs, const char *path,
         const sprig_bytes *metadata, unsigned flags)
{
    if (!fs) {
        return sprig__err(SPRIG_EINVAL, "NULL file store");
    }
    *p = (fs_put){fs, path, {0}, 0, {0}, flags};
    if (metadata && metadata->len > FS_USER_META_MAX) {
        return sprig__err(SPRIG_ETOOBIG, "file metadata is over %u bytes",
                          FS_USER_META_MAX);
    }
    if (metadata) {
        p->user = *metadata;
    }
    return sprig__fs_path_key(path, p->key, &p->klen);
}

/* A put from a stream: one transaction if it ends within a buffer. */
static int
put_stream(fs_put *p, sprig_files_source_fn src, void *udata)
{
    size_t n;
    bool eof;
    uint8_t *buf = sprig__malloc(p->fs->txn_bytes);
    if (!buf) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a file buffer");
    }
    int rc = fs_fill(src, udata, buf, p->fs->txn_bytes, &n, &eof);
    if (rc == 0) {
        rc = eof ? put_small(p, buf, n) : put_large(p, src, udata, buf, n);
    }
    sprig__free(buf);
    return rc;
}

/* A source over bytes in memory (`udata` is a sprig_bytes it consumes). */
static ssize_t
fs_bytes_source(void *udata, void *buf, size_t cap)
{
    sprig_bytes *b = udata;
    size_t n = b->len < cap ? b->len : cap;
    memcpy(buf, b->data, n);
    b->data = (const uint8_t *)b->data + n;
    b->len -= n;
    return (ssize_t)n;
}

int
sprig_files_put(sprig_files *fs, const char *path, sprig_bytes data,
                const sprig_bytes *metadata, unsigned flags)
{
    fs_put p;
    int rc = put_init(&p, fs, path, metadata, flags);
    if (rc == 0 && !data.data && data.len) {
        rc = sprig__err(SPRIG_EINVAL, "NULL data");
    }
    if (rc == 0 && data.len > FS_LENGTH_MAX) {
        rc = sprig__err(SPRIG_ETOOBIG, "a file is at most 2^48 bytes");
    }
    if (rc || data.len <= fs->txn_bytes) {
        return rc ? rc : put_small(&p, data.data, data.len);
    }
    return put_stream(&p, fs_bytes_source, &data);
}

int
sprig_files_put_stream(sprig_files *fs, const char *path,
                       sprig_files_source_fn src, void *udata,
                       const sprig_bytes *metadata, unsigned flags)
{
    fs_put p;
    int rc = put_init(&p, fs, path, metadata, flags);
    if (rc == 0 && !src) {
        rc = sprig__err(SPRIG_EINVAL, "NULL source");
    }
    return rc ? rc : put_stream(&p, src, udata);
}

/* ---- append ------------------------------------------------------------- */

typedef struct fs_app {
    sprig_files *fs;
    const char *path;
    uint8_t key[SPRIG_FILES_PATH_MAX];
    size_t klen;
    bool has_expect; /* truncate: the length the file must have */
    uint64_t expect;
} fs_app;

static int
app_get(fs_app *a, fs_file *f)
{
    int rc =
        sprig__fs_file_get(a->fs, (sprig_bytes){a->key, a->klen}, a->path, f);
    if (rc == 0 && a->has_expect && f->m.length != a->expect) {
        sprig__fs_file_clear(f);
        rc = sprig__err(SPRIG_ECONFLICT, "file '%s' changed", a->path);
    }
    return rc;
}

/* The file document of `f` with length `length`, modified now. */
static int
fs_txn_length(fs_app *a, sprig_txn *t, const fs_file *f, uint64_t length)
{
    fs_meta m = f->m;
    m.length = length;
    m.modified_ms = sprig__fs_now_ms();
    return fs_txn_file(a->fs, t, f, (sprig_bytes){a->key, a->klen}, &m);
}

static int
fs_check_length(fs_app *a, uint64_t have, uint64_t add)
{
    if (add > FS_LENGTH_MAX || have > FS_LENGTH_MAX - add) {
        return sprig__err(SPRIG_ETOOBIG, "file '%s' would pass 2^48 bytes",
                          a->path);
    }
    return 0;
}

static int
append_small_once(fs_app *a, const uint8_t *data, size_t n)
{
    fs_file f;
    fs_writer w = {0};
    sprig_txn *t = NULL;
    int rc = app_get(a, &f);
    if (rc) {
        return rc;
    }
    rc = fs_check_length(a, f.m.length, n);
    rc = rc ? rc : w_continue(&w, a->fs, &f);
    rc = rc ? rc : sprig_txn_new(&t);
    rc = rc ? rc : w_add(&w, t, data, n);
    rc = rc ? rc : w_finish(&w, t);
    rc = rc ? rc : fs_txn_length(a, t, &f, w.length);
    rc = rc ? rc : sprig__fs_apply(a->fs, t);
    sprig_txn_free(t);
    sprig_buf_clear(&w.carry);
    sprig__fs_file_clear(&f);
    return rc;
}

static int
append_small(fs_app *a, const uint8_t *data, size_t n)
{
    int rc = SPRIG_ECONFLICT;
    for (int i = 0; rc && (i == 0 || fs_retry(rc, i - 1)); i++) {
        rc = append_small_once(a, data, n);
    }
    return rc;
}

/* The last step of a large append: the file's new length (guarded by its
 * header), the lock's release and the last partial chunk. */
static int
append_large_flip(fs_app *a, fs_writer *w, const fs_file *f,
                  const sprig_header_buf *rec)
{
    sprig_txn *t;
    bool guard;
    sprig_header lock = sprig_header_of(rec);
    int rc = sprig_txn_new(&t);
    rc = rc ? rc : fs_txn_length(a, t, f, w->length);
    rc = rc ? rc : sprig_txn_delete(t, a->fs->c_pending, &lock);
    rc = rc ? rc : w_finish(w, t);
    rc = rc ? rc : fs_apply_guarded(a->fs, t, 2, a->path, &guard, NULL);
    sprig_txn_free(t);
    return rc;
}

/* Batches of chunks past the file's length, each checking that the file
 * and the lock are unchanged, then the flip. */
static int
append_batches(fs_app *a, fs_writer *w, const fs_file *f,
               sprig_header_buf *lock, sprig_files_source_fn src, void *udata,
               uint8_t *buf, size_t n)
{
    sprig_header fh = sprig_header_of(&f->hdr);
    int rc = 0;
    for (bool eof = false; rc == 0 && n;) {
        rc = fs_check_length(a, w->length, n);
        rc = rc ? rc : fs_batch(w, lock, &fh, buf, n, a->path);
        n = 0;
        if (rc == 0 && !eof) {
            rc = fs_fill(src, udata, buf, a->fs->txn_bytes, &n, &eof);
        }
    }
    return rc ? rc : append_large_flip(a, w, f, lock);
}

/* Take the large-append lock of `f`'s version; a lock whose writer has
 * not been heard of for FS_STALE_MS is taken over. */
static int
append_lock(fs_app *a, const fs_file *f, sprig_header_buf *rec)
{
    int rc = sprig__fs_pending_insert(a->fs, 'A', f->m.version, a->path, rec);
    if (rc == SPRIG_ECONFLICT &&
        sprig__fs_pending_stale(a->fs, 'A', f->m.version)) {
        rc = sprig__fs_pending_insert(a->fs, 'A', f->m.version, a->path, rec);
    }
    if (rc == SPRIG_ECONFLICT) {
        rc = sprig__err(SPRIG_EBUSY,
                        "another large append to '%s' is in progress", a->path);
    }
    return rc;
}

static int
append_large(fs_app *a, sprig_files_source_fn src, void *udata, uint8_t *buf,
             size_t n)
{
    fs_file f;
    fs_writer w = {0};
    sprig_header_buf rec;
    int rc = app_get(a, &f);
    rc = rc ? rc : w_continue(&w, a->fs, &f);
    rc = rc ? rc : append_lock(a, &f, &rec);
    if (rc == 0) {
        rc = append_batches(a, &w, &f, &rec, src, udata, buf, n);
        sprig_header lock = sprig_header_of(&rec);
        rc = rc ? fs_abandon(a->fs, &lock, 0, false, rc) : 0;
        if (rc) { /* drop what it wrote past the length, if unchanged */
            rc = sprig__fs_drop_tail(a->fs, &f, rc);
        }
    }
    sprig_buf_clear(&w.carry);
    if (f.doc) {
        sprig__fs_file_clear(&f);
    }
    return rc;
}

static int
append_stream(fs_app *a, sprig_files_source_fn src, void *udata)
{
    size_t n;
    bool eof;
    uint8_t *buf = sprig__malloc(a->fs->txn_bytes);
    if (!buf) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for a file buffer");
    }
    int rc = fs_fill(src, udata, buf, a->fs->txn_bytes, &n, &eof);
    if (rc == 0) {
        rc =
            eof ? append_small(a, buf, n) : append_large(a, src, udata, buf, n);
    }
    sprig__free(buf);
    return rc;
}

static int
app_init(fs_app *a, sprig_files *fs, const char *path)
{
    if (!fs) {
        return sprig__err(SPRIG_EINVAL, "NULL file store");
    }
    *a = (fs_app){fs, path, {0}, 0, false, 0};
    return sprig__fs_path_key(path, a->key, &a->klen);
}

int
sprig_files_append(sprig_files *fs, const char *path, sprig_bytes data)
{
    fs_app a;
    int rc = app_init(&a, fs, path);
    if (rc == 0 && !data.data && data.len) {
        rc = sprig__err(SPRIG_EINVAL, "NULL data");
    }
    if (rc) {
        return rc;
    }
    return data.len <= fs->txn_bytes
               ? append_small(&a, data.data, data.len)
               : append_stream(&a, fs_bytes_source, &data);
}

int
sprig_files_append_stream(sprig_files *fs, const char *path,
                          sprig_files_source_fn src, void *udata)
{
    fs_app a;
    int rc = app_init(&a, fs, path);
    if (rc == 0 && !src) {
        rc = sprig__err(SPRIG_EINVAL, "NULL source");
    }
    return rc ? rc : append_stream(&a, src, udata);
}

/* ---- truncate ----------------------------------------------------------- */

static ssize_t
fs_zero_source(void *udata, void *buf, size_t cap)
{
    uint64_t *left = udata;
    size_t n = *left < cap ? (size_t)*left : cap;
    memset(buf, 0, n);
    *left -= n;
    return (ssize_t)n;
}

/* Shorten `f` to `length`, then drop the chunks past it. */
static int
truncate_shrink(fs_app *a, const fs_file *f, uint64_t length)
{
    fs_meta m = f->m;
    m.length = length;
    m.modified_ms = sprig__fs_now_ms();
    sprig_buf b = {0};
    sprig_header_buf out;
    sprig_header h = sprig_header_of(&f->hdr);
    int rc = sprig__fs_meta_encode(&m, &b);
    rc = rc ? rc
            : sprig_update(a->fs->db, a->fs->c_files, &h, sprig_buf_bytes(&b),
                           &out);
    sprig_buf_clear(&b);
    if (rc == SPRIG_ENOTFOUND) {
        rc = sprig__err(SPRIG_ECONFLICT, "file '%s' changed", a->path);
    }
    if (rc) {
        return rc;
    }
    uint64_t from = length / m.chunk_size + (length % m.chunk_size != 0);
    sprig_header nh = sprig_header_of(&out);
    return sprig__fs_drop_chunks(a->fs, m.version, from, &nh, NULL);
}

static int
truncate_once(fs_app *a, uint64_t length)
{
    fs_file f;
    int rc = app_get(a, &f);
    if (rc) {
        return rc;
    }
    if (length < f.m.length) {
        rc = truncate_shrink(a, &f, length);
    } else if (length > f.m.length) {
        uint64_t left = length - f.m.length;
        a->has_expect = true;
        a->expect = f.m.length;
        rc = fs_check_length(a, f.m.length, left);
        rc = rc ? rc : append_stream(a, fs_zero_source, &left);
        a->has_expect = false;
    }
    sprig__fs_file_clear(&f);
    return rc;
}

int
sprig_files_truncate(sprig_files *fs, const char *path, uint64_t length)
{
    fs_app a;
    int rc = app_init(&a, fs, path);
    if (rc) {
        return rc;
    }
    rc = SPRIG_ECONFLICT;
    for (int i = 0; rc && (i == 0 || fs_retry(rc, i - 1)); i++) {
        rc = truncate_once(&a, length);
    }
    return rc;
}

/* ---- rename, delete, metadata ------------------------------------------- */

/* One attempt at moving `src` to `to`; `*gone` the version replaced. */
static int
rename_once(sprig_files *fs, fs_app *from, fs_app *to, unsigned flags,
            uint64_t *gone)
{
    fs_file f, old = {0};
    sprig_txn *t = NULL;
    int rc = app_get(from, &f);
    if (rc) {
        return rc;
    }
    rc = app_get(to, &old);
    rc = rc == SPRIG_ENOTFOUND ? 0 : rc;
    if (rc == 0 && old.doc && (flags & SPRIG_FILES_EXCLUSIVE)) {
        rc = sprig__err(SPRIG_EEXIST, "file '%s' exists", to->path);
    }
    sprig_header fh = sprig_header_of(&f.hdr);
    rc = rc ? rc : sprig_txn_new(&t);
    rc = rc ? rc : sprig_txn_delete(t, fs->c_files, &fh);
    rc = rc ? rc
            : fs_txn_file(fs, t, old.doc ? &old : NULL,
                          (sprig_bytes){to->key, to->klen}, &f.m);
    if (rc == 0 && old.doc) {
        rc = sprig__fs_txn_pending(fs, t, 'G', old.m.version, to->path);
    }
    rc = rc ? rc : sprig__fs_apply(fs, t);
    *gone = old.doc ? old.m.version : 0;
    sprig_txn_free(t);
    sprig__fs_file_clear(&old);
    sprig__fs_file_clear(&f);
    return rc;
}

int
sprig_files_rename(sprig_files *fs, const char *from, const char *to,
                   unsigned flags)
{
    fs_app a, b;
    int rc = app_init(&a, fs, from);
    rc = rc ? rc : app_init(&b, fs, to);
    if (rc == 0 && a.klen == b.klen && memcmp(a.key, b.key, a.klen) == 0) {
        fs_file f;
        rc = app_get(&a, &f); /* the same path: it must exist */
        sprig__fs_file_clear(&f);
        return rc;
    }
    uint64_t gone = 0;
    for (int i = 0; rc == 0 || (i > 0 && fs_retry(rc, i - 1)); i++) {
        rc = rename_once(fs, &a, &b, flags, &gone);
        if (rc == 0) {
            break;
        }
    }
    return rc == 0 && gone ? fs_collect_after(fs, gone) : rc;
}

static int
delete_once(fs_app *a, uint64_t *gone)
{
    fs_file f;
    sprig_txn *t = NULL;
    int rc = app_get(a, &f);
    if (rc) {
        return rc;
    }
    sprig_header h = sprig_header_of(&f.hdr);
    rc = sprig_txn_new(&t);
    rc = rc ? rc : sprig_txn_delete(t, a->fs->c_files, &h);
    rc = rc ? rc : sprig__fs_txn_pending(a->fs, t, 'G', f.m.version, a->path);
    rc = rc ? rc : sprig__fs_apply(a->fs, t);
    *gone = f.m.version;
    sprig_txn_free(t);
    sprig__fs_file_clear(&f);
    return rc;
}

int
sprig_files_delete(sprig_files *fs, const char *path)
{
    fs_app a;
    uint64_t gone = 0;
    int rc = app_init(&a, fs, path);
    for (int i = 0; rc == 0 || (i > 0 && fs_retry(rc, i - 1)); i++) {
        rc = delete_once(&a, &gone);
        if (rc == 0) {
            break;
        }
    }
    return rc ? rc : fs_collect_after(fs, gone);
}

static int
set_metadata_once(fs_app *a, sprig_bytes user)
{
    fs_file f;
    sprig_txn *t = NULL;
    int rc = app_get(a, &f);
    if (rc) {
        return rc;
    }
    fs_meta m = f.m;
    m.user = user;
    m.modified_ms = sprig__fs_now_ms();
    rc = sprig_txn_new(&t);
    rc = rc ? rc : fs_txn_file(a->fs, t, &f, (sprig_bytes){0}, &m);
    rc = rc ? rc : sprig__fs_apply(a->fs, t);
    sprig_txn_free(t);
    sprig__fs_file_clear(&f);
    return rc;
}

int
sprig_files_set_metadata(sprig_files *fs, const char *path,
                         const sprig_bytes *metadata)
{
    fs_app a;
    sprig_bytes user = metadata ? *metadata : (sprig_bytes){0};
    int rc = app_init(&a, fs, path);
    if (rc == 0 && user.len > FS_USER_META_MAX) {
        rc = sprig__err(SPRIG_ETOOBIG, "file metadata is over %u bytes",
                        FS_USER_META_MAX);
    }
    for (int i = 0; rc == 0 || (i > 0 && fs_retry(rc, i - 1)); i++) {
        rc = set_metadata_once(&a, user);
        if (rc == 0) {
            break;
        }
    }
    return rc;
}
