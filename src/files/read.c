/*
 * read.c -- the file store's reads (src/files): stat, reads at an offset
 * (into a buffer or streamed out through a bounded one) and directory
 * listings with pagination.  A read fetches a batch of chunks, then checks
 * the file document's revision is the one it started from before handing
 * the bytes on, so every byte returned comes from one revision of the file
 * (writes change the document in the same transaction as the chunks).
 */
#include "files_int.h"

static void
fs_stat_of(const fs_file *f, sprig_file_stat *st)
{
    st->length = f->m.length;
    st->created_ms = f->m.created_ms;
    st->modified_ms = f->m.modified_ms;
    st->chunk_size = f->m.chunk_size;
    st->revision = f->hdr.revision;
}

static int
fs_get_path(sprig_files *fs, const char *path, fs_file *f)
{
    uint8_t key[SPRIG_FILES_PATH_MAX];
    size_t klen;
    if (!fs) {
        return sprig__err(SPRIG_EINVAL, "NULL file store");
    }
    int rc = sprig__fs_path_key(path, key, &klen);
    return rc ? rc : sprig__fs_file_get(fs, (sprig_bytes){key, klen}, path, f);
}

int
sprig_files_stat(sprig_files *fs, const char *path, sprig_file_stat *st,
                 sprig_buf *metadata)
{
    fs_file f;
    int rc =
        st ? fs_get_path(fs, path, &f) : sprig__err(SPRIG_EINVAL, "NULL stat");
    if (rc) {
        return rc;
    }
    fs_stat_of(&f, st);
    if (metadata) {
        metadata->len = 0;
        rc = sprig_buf_append(metadata, f.m.user.data, f.m.user.len);
    }
    sprig__fs_file_clear(&f);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct fs_reader {
    sprig_files *fs;
    const char *path;
    fs_file f;           /* the revision being read */
    uint64_t pos, end;   /* bytes [pos, end) are still to come */
    sprig_doc_list *got; /* the current batch */
    uint64_t first;      /* its first chunk's index */
    size_t n;            /* its chunks */
} fs_reader;

/* Fetch the chunks holding bytes [pos, end), at most a buffer's worth. */
static int
reader_fetch(fs_reader *r)
{
    uint32_t cs = r->f.m.chunk_size;
    uint64_t last = (r->end - 1) / cs;
    r->first = r->pos / cs;
    uint64_t max = r->fs->txn_bytes / cs ? r->fs->txn_bytes / cs : 1;
    r->n = (size_t)(last - r->first + 1 < max ? last - r->first + 1 : max);
    uint8_t *ids = sprig__malloc(r->n * 16);
    sprig_bytes *b = sprig__malloc(r->n * sizeof *b);
    int rc = ids && b ? 0 : sprig__err(SPRIG_ENOMEM, "out of memory reading");
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        sprig__fs_chunk_id(r->f.m.version, r->first + i, ids + 16 * i);
        b[i] = (sprig_bytes){ids + 16 * i, 16};
    }
    rc = rc ? rc
            : sprig_get_multiple(r->fs->db, r->fs->c_chunks, b, r->n, &r->got);
    sprig__free(ids);
    sprig__free(b);
    return rc;
}

/* Whether the file document still has the revision being read. */
static int
reader_unchanged(fs_reader *r)
{
    sprig_doc *d;
    sprig_bytes key = {r->f.hdr.id, r->f.hdr.id_len};
    int rc = sprig_get(r->fs->db, r->fs->c_files, key, &d);
    if (rc == 0 && sprig_doc_header(d).revision != r->f.hdr.revision) {
        rc = SPRIG_ENOTFOUND;
    }
    sprig_doc_free(d);
    return rc == SPRIG_ENOTFOUND
               ? sprig__err(SPRIG_ECONFLICT,
                            "file '%s' changed while it was read", r->path)
               : rc;
}

/* Chunk i of the batch must be there with the bytes the file says. */
static int
reader_chunk(fs_reader *r, size_t i, sprig_bytes *out)
{
    uint32_t cs = r->f.m.chunk_size;
    uint64_t idx = r->first + i, start = idx * cs;
    uint64_t want = r->f.m.length - start < cs ? r->f.m.length - start : cs;
    const sprig_doc *d = sprig_doc_list_get(r->got, i);
    sprig_header h = d ? sprig_doc_header(d) : (sprig_header){0};
    *out = d ? sprig_doc_contents(d) : (sprig_bytes){0};
    if (!d || h.id.len != 16 || sprig__get_u64be(h.id.data) != r->f.m.version ||
        sprig__get_u64be((const uint8_t *)h.id.data + 8) != idx ||
        out->len < want) {
        int rc = reader_unchanged(r); /* a conflict, or real damage */
        return rc ? rc
                  : sprig__err(SPRIG_ECORRUPT,
                               "file '%s' lacks the bytes of chunk %llu",
                               r->path, (unsigned long long)idx);
    }
    out->len = (size_t)want;
    return 0;
}

/* Hand the batch's bytes in [pos, end) to the sink. */
static int
reader_emit(fs_reader *r, sprig_files_sink_fn sink, void *udata)
{
    uint32_t cs = r->f.m.chunk_size;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->n && r->pos < r->end; i++) {
        sprig_bytes c;
        rc = reader_chunk(r, i, &c);
        uint64_t off = r->pos - (r->first + i) * cs;
        uint64_t n =
            c.len - off < r->end - r->pos ? c.len - off : r->end - r->pos;
        if (rc == 0 && n) {
            rc = sink(udata, (const uint8_t *)c.data + off, (size_t)n);
        }
        r->pos += n;
    }
    return rc;
}

/* One pass over the file; `*emitted` says whether bytes went out. */
static int
read_once(fs_reader *r, sprig_files_sink_fn sink, void *udata, bool *emitted)
{
    int rc = 0;
    while (rc == 0 && r->pos < r->end) {
        rc = reader_fetch(r);
        rc = rc ? rc : reader_unchanged(r);
        for (size_t i = 0; rc == 0 && i < r->n; i++) {
            sprig_bytes c;
            rc = reader_chunk(r, i, &c); /* check all before emitting */
        }
        if (rc == 0) {
            *emitted = true;
            rc = reader_emit(r, sink, udata);
        }
        sprig_doc_list_free(r->got);
        r->got = NULL;
    }
    return rc;
}

static int
read_attempt(sprig_files *fs, const char *path, uint64_t offset, uint64_t len,
             sprig_files_sink_fn sink, void *udata, sprig_file_stat *st,
             bool *emitted)
{
    fs_reader r;
    memset(&r, 0, sizeof r);
    r.fs = fs;
    r.path = path;
    int rc = fs_get_path(fs, path, &r.f);
    if (rc) {
        return rc;
    }
    if (st) {
        fs_stat_of(&r.f, st);
    }
    r.pos = offset < r.f.m.length ? offset : r.f.m.length;
    r.end = len < r.f.m.length - r.pos ? r.pos + len : r.f.m.length;
    rc = read_once(&r, sink, udata, emitted);
    sprig__fs_file_clear(&r.f);
    return rc;
}

int
sprig_files_read_stream(sprig_files *fs, const char *path, uint64_t offset,
                        uint64_t len, sprig_files_sink_fn sink, void *udata,
                        sprig_file_stat *st)
{
    if (!sink) {
        return sprig__err(SPRIG_EINVAL, "NULL sink");
    }
    int rc = SPRIG_ECONFLICT;
    bool emitted = false;
    for (int i = 0; rc == SPRIG_ECONFLICT && !emitted && i < FS_ATTEMPTS; i++) {
        rc = read_attempt(fs, path, offset, len, sink, udata, st, &emitted);
    }
    return rc;
}

static int
fs_buf_sink(void *udata, const void *data, size_t len)
{
    return sprig_buf_append(udata, data, len);
}

int
sprig_files_read(sprig_files *fs, const char *path, uint64_t offset, size_t len,
                 sprig_buf *out)
{
    if (!out) {
        return sprig__err(SPRIG_EINVAL, "NULL buffer");
    }
    int rc = SPRIG_ECONFLICT;
    for (int i = 0; rc == SPRIG_ECONFLICT && i < FS_ATTEMPTS; i++) {
        out->len = 0;
        rc = sprig_files_read_stream(fs, path, offset, len, fs_buf_sink, out,
                                     NULL);
    }
    return rc;
}

/* ---- listing ------------------------------------------------------------ */

typedef struct fs_entry {
    char *name;
    bool dir;
    sprig_file_stat st;
} fs_entry;

struct sprig_file_list {
    fs_entry *e;
    size_t n, cap;
};

static int
list_push(sprig_file_list *l, const void *name, size_t len, bool dir,
          const sprig_file_stat *st)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        fs_entry *e = sprig__realloc(l->e, cap * sizeof *e);
        if (!e) {
            return sprig__err(SPRIG_ENOMEM, "out of memory listing files");
        }
        l->e = e, l->cap = cap;
    }
    char *s = sprig__malloc(len + 2);
    if (!s) {
        return sprig__err(SPRIG_ENOMEM, "out of memory listing files");
    }
    memcpy(s, name, len);
    s[len] = '/';
    s[len + dir] = '\0';
    l->e[l->n++] = (fs_entry){s, dir, st ? *st : (sprig_file_stat){0}};
    return 0;
}

/* A listing under way: the directory's key, the page being filled. */
typedef struct fs_lister {
    sprig_files *fs;
    uint8_t dk[SPRIG_FILES_PATH_MAX + 2];
    size_t dlen;
    uint32_t limit;
    sprig_file_list *l;
} fs_lister;

/* The directory's files, by name, after `after` (NULL: all). */
static int
list_files(fs_lister *ls, const char *after)
{
    uint8_t lo[2 * SPRIG_FILES_PATH_MAX + 4], hi[SPRIG_FILES_PATH_MAX + 2];
    size_t an = after ? strlen(after) : 0;
    if (an > SPRIG_FILES_PATH_MAX) {
        return sprig__err(SPRIG_EINVAL, "'after' is too long");
    }
    memcpy(lo, ls->dk, ls->dlen);
    lo[ls->dlen] = 0x00;
    memcpy(lo + ls->dlen + 1, after ? after : "", an);
    memcpy(hi, ls->dk, ls->dlen);
    hi[ls->dlen] = 0x01;
    sprig_range r = {
        {after ? SPRIG_EXCLUDED : SPRIG_INCLUDED, {lo, ls->dlen + 1 + an}},
        {SPRIG_EXCLUDED, {hi, ls->dlen + 1}}};
    sprig_doc_list *dl;
    int rc =
        sprig_list(ls->fs->db, ls->fs->c_files, &r, SPRIG_ASC, ls->limit, &dl);
    if (rc) {
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < sprig_doc_list_count(dl); i++) {
        const sprig_doc *d = sprig_doc_list_get(dl, i);
        sprig_bytes id = sprig_doc_header(d).id;
        fs_file f = {{{0}}, {0}, NULL};
        f.hdr.revision = sprig_doc_header(d).revision;
        rc = sprig__fs_meta_decode(sprig_doc_contents(d), &f.m);
        sprig_file_stat st;
        fs_stat_of(&f, &st);
        rc = rc ? rc
                : list_push(ls->l, (const uint8_t *)id.data + ls->dlen + 1,
                            id.len - ls->dlen - 1, false, &st);
    }
    sprig_doc_list_free(dl);
    return rc;
}

/* The first subdirectory at or after key `lo` (`*found` false: none). */
static int
list_next_dir(fs_lister *ls, const uint8_t *lo, size_t lo_len, bool *found)
{
    uint8_t hi[SPRIG_FILES_PATH_MAX + 2];
    memcpy(hi, ls->dk, ls->dlen);
    sprig_range r = {{SPRIG_INCLUDED, {lo, lo_len}}, {SPRIG_UNBOUNDED, {0}}};
    if (ls->dlen) { /* below the directory: its key with 0x01 -> 0x02 */
        hi[ls->dlen - 1] = 0x02;
        r.end = (sprig_bound){SPRIG_EXCLUDED, {hi, ls->dlen}};
    }
    sprig_header_list *hl;
    int rc =
        sprig_list_headers(ls->fs->db, ls->fs->c_files, &r, SPRIG_ASC, 1, &hl);
    if (rc) {
        return rc;
    }
    *found = sprig_header_list_count(hl) > 0;
    if (*found) {
        sprig_bytes id = sprig_header_list_get(hl, 0).id;
        const uint8_t *s = (const uint8_t *)id.data + ls->dlen;
        const uint8_t *e = memchr(s, 0x01, id.len - ls->dlen);
        rc = e ? list_push(ls->l, s, (size_t)(e - s), true, NULL)
               : sprig__err(SPRIG_ECORRUPT, "a file id is malformed");
    }
    sprig_header_list_free(hl);
    return rc;
}

/* The directory's subdirectories, by name, after `after` ("x/") or all. */
static int
list_dirs(fs_lister *ls, const char *after)
{
    uint8_t lo[2 * SPRIG_FILES_PATH_MAX + 4];
    size_t an = after ? strlen(after) - 1 : 0; /* without its '/' */
    if (an > SPRIG_FILES_PATH_MAX) {
        return sprig__err(SPRIG_EINVAL, "'after' is too long");
    }
    memcpy(lo, ls->dk, ls->dlen);
    memcpy(lo + ls->dlen, after ? after : "", an);
    size_t lo_len = ls->dlen + an;
    lo[lo_len++] = 0x02; /* past "<after>\1...", or past the files */
    bool found = true;
    int rc = 0;
    while (rc == 0 && found && ls->l->n < ls->limit) {
        rc = list_next_dir(ls, lo, lo_len, &found);
        if (rc == 0 && found) {
            const char *name = ls->l->e[ls->l->n - 1].name;
            an = strlen(name) - 1;
            memcpy(lo + ls->dlen, name, an);
            lo_len = ls->dlen + an;
            lo[lo_len++] = 0x02;
        }
    }
    return rc;
}

int
sprig_files_list(sprig_files *fs, const char *dir, const char *after,
                 uint32_t limit, sprig_file_list **out)
{
    if (!fs || !out) {
        return sprig__err(SPRIG_EINVAL, "sprig_files_list: NULL argument");
    }
    *out = NULL;
    fs_lister ls = {fs, {0}, 0, limit ? limit : 1000, NULL};
    int rc = sprig__fs_dir_key(dir, ls.dk, &ls.dlen);
    if (rc) {
        return rc;
    }
    ls.l = sprig__calloc(1, sizeof *ls.l);
    if (!ls.l) {
        return sprig__err(SPRIG_ENOMEM, "out of memory listing files");
    }
    bool after_dir = after && *after && after[strlen(after) - 1] == '/';
    after = after && *after ? after : NULL;
    if (!after_dir) {
        rc = list_files(&ls, after);
    }
    if (rc == 0 && ls.l->n < ls.limit) {
        rc = list_dirs(&ls, after_dir ? after : NULL);
    }
    if (rc) {
        sprig_file_list_free(ls.l);
        return rc;
    }
    *out = ls.l;
    return 0;
}

size_t
sprig_file_list_count(const sprig_file_list *l)
{
    return l ? l->n : 0;
}

const char *
sprig_file_list_name(const sprig_file_list *l, size_t i)
{
    return l && i < l->n ? l->e[i].name : NULL;
}

bool
sprig_file_list_is_dir(const sprig_file_list *l, size_t i)
{
    return l && i < l->n && l->e[i].dir;
}

sprig_file_stat
sprig_file_list_stat(const sprig_file_list *l, size_t i)
{
    return l && i < l->n ? l->e[i].st : (sprig_file_stat){0};
}

void
sprig_file_list_free(sprig_file_list *l)
{
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        sprig__free(l->e[i].name);
    }
    sprig__free(l->e);
    sprig__free(l);
}
