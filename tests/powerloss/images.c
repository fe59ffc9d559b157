/*
 * images.c -- builds crash images from the recorder's journal (the model is
 * described in images.h).  An image is built from nothing: the recorded
 * run starts on an empty directory, so the journal holds every byte the
 * storage's files ever received.  Files are tracked by inode (device and
 * inode number from the recorder; a create starts a new one), names by a
 * small namespace table, so a rename or unlink that did not reach the disk
 * leaves the data where the disk would.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "images.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 4096u

/* ---- the journal ---- */

static char *
dup_n(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) {
        abort();
    }
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

int
pl_journal_load(const char *path, pl_journal *j)
{
    memset(j, 0, sizeof *j);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "powerloss: cannot open journal %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    j->base = malloc(sz > 0 ? (size_t)sz : 1);
    j->size = sz > 0 ? (size_t)sz : 0;
    bool ok = j->base && fread(j->base, 1, j->size, f) == j->size;
    fclose(f);
    size_t cap = 0;
    for (size_t at = 0; ok && at + sizeof(pl_hdr) <= j->size;) {
        pl_hdr hb; /* records are unaligned in the journal */
        const pl_hdr *h = &hb;
        memcpy(&hb, j->base + at, sizeof hb);
        size_t dlen = h->op == PL_WRITE || h->op == PL_ACK ? h->len : 0;
        size_t need = sizeof *h + h->plen + h->p2len + dlen;
        if (at + need > j->size) {
            break; /* torn: it never happened */
        }
        if (j->n == cap) {
            cap = cap ? cap * 2 : 4096;
            j->recs = realloc(j->recs, cap * sizeof *j->recs);
        }
        const uint8_t *p = j->base + at + sizeof *h;
        j->recs[j->n++] =
            (pl_rec){hb, NULL, dup_n(p, h->plen), dup_n(p + h->plen, h->p2len),
                     p + h->plen + h->p2len};
        at += need;
    }
    for (size_t i = 0; i < j->n; i++) {
        j->recs[i].h = &j->recs[i].hdr;
    }
    return ok ? 0 : -1;
}

void
pl_journal_free(pl_journal *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->recs[i].path);
        free(j->recs[i].path2);
    }
    free(j->recs);
    free(j->base);
    memset(j, 0, sizeof *j);
}

/* ---- inodes, names, per-block stops ---- */

typedef struct inode {
    uint64_t dev, ino;
    uint8_t *buf;
    size_t size, cap;
    long last_sync; /* index of its last sync before the cut, or -1 */
    bool live;      /* still the file with this (dev, ino) */
} inode;

typedef struct name {
    char *path;
    long inode; /* -1: a directory */
} name;

typedef struct stop {
    uint64_t key, at;
} stop;

typedef struct builder {
    const pl_journal *j;
    size_t cut, meta_limit, meta_durable;
    long sync_all;
    pl_variant v;
    uint64_t rng;
    inode *ino;
    size_t n_ino, cap_ino;
    name *names;
    size_t n_names, cap_names;
    stop *stops; /* open addressing, key 0 = empty */
    size_t cap_stops;
    long dropped;
} builder;

static uint64_t
next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static long
find_inode(builder *b, uint64_t dev, uint64_t ino)
{
    for (size_t i = b->n_ino; i-- > 0;) {
        if (b->ino[i].live && b->ino[i].dev == dev && b->ino[i].ino == ino) {
            return (long)i;
        }
    }
    return -1;
}

static long
new_inode(builder *b, uint64_t dev, uint64_t ino)
{
    long old = find_inode(b, dev, ino);
    if (old >= 0) {
        b->ino[old].live = false; /* the number was reused */
    }
    if (b->n_ino == b->cap_ino) {
        b->cap_ino = b->cap_ino ? b->cap_ino * 2 : 64;
        b->ino = realloc(b->ino, b->cap_ino * sizeof *b->ino);
    }
    b->ino[b->n_ino] = (inode){dev, ino, NULL, 0, 0, -1, true};
    return (long)b->n_ino++;
}

static long
find_name(builder *b, const char *p)
{
    for (size_t i = 0; i < b->n_names; i++) {
        if (b->names[i].path && strcmp(b->names[i].path, p) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static void
set_name(builder *b, const char *p, long ino)
{
    long i = find_name(b, p);
    if (i >= 0) {
        b->names[i].inode = ino;
        return;
    }
    if (b->n_names == b->cap_names) {
        b->cap_names = b->cap_names ? b->cap_names * 2 : 64;
        b->names = realloc(b->names, b->cap_names * sizeof *b->names);
    }
    b->names[b->n_names++] = (name){strdup(p), ino};
}

static void
drop_name(builder *b, const char *p)
{
    long i = find_name(b, p);
    if (i >= 0) {
        free(b->names[i].path);
        b->names[i].path = NULL;
    }
}

/* Rename p1 to p2, and everything below p1 when it is a directory. */
static void
rename_name(builder *b, const char *p1, const char *p2)
{
    size_t n1 = strlen(p1);
    long i = find_name(b, p1);
    if (i >= 0) {
        long ino = b->names[i].inode;
        drop_name(b, p1);
        set_name(b, p2, ino);
    }
    for (size_t k = 0; k < b->n_names; k++) {
        char *p = b->names[k].path;
        if (p && strncmp(p, p1, n1) == 0 && p[n1] == '/') {
            char *q = malloc(strlen(p2) + strlen(p + n1) + 1);
            sprintf(q, "%s%s", p2, p + n1);
            free(p);
            b->names[k].path = q;
        }
    }
}

/* The moment up to which the unsynced writes of (inode, block) reached the
 * disk: drawn once per block in [idx, cut]. */
static uint64_t
block_stop(builder *b, long ino, uint64_t block, size_t idx)
{
    uint64_t key = ((uint64_t)(ino + 1) << 40) ^ block;
    size_t at = (size_t)(key * 0x9e3779b97f4a7c15ull) & (b->cap_stops - 1);
    while (b->stops[at].key && b->stops[at].key != key) {
        at = (at + 1) & (b->cap_stops - 1);
    }
    if (!b->stops[at].key) {
        b->stops[at].key = key;
        b->stops[at].at = idx + next_rand(&b->rng) % (b->cut - idx + 1);
    }
    return b->stops[at].at;
}

/* ---- applying records ---- */

static void
resize(inode *n, size_t size)
{
    if (size > n->cap) {
        size_t cap = n->cap ? n->cap : 4096;
        while (cap < size) {
            cap *= 2;
        }
        n->buf = realloc(n->buf, cap);
        n->cap = cap;
    }
    if (size > n->size) {
        memset(n->buf + n->size, 0, size - n->size);
    }
    n->size = size;
}

static void
put(inode *n, uint64_t off, const uint8_t *p, size_t len)
{
    if (off + len > n->size) {
        resize(n, off + len);
    }
    memcpy(n->buf + off, p, len);
}

static long
inode_of(builder *b, const pl_rec *r)
{
    long i = find_inode(b, r->h->dev, r->h->ino);
    if (i < 0) { /* opened before the journal began: should not happen */
        i = new_inode(b, r->h->dev, r->h->ino);
        if (find_name(b, r->path) < 0) {
            set_name(b, r->path, i);
        }
    }
    return i;
}

static void
apply_write(builder *b, const pl_rec *r, size_t idx)
{
    long i = inode_of(b, r);
    inode *n = &b->ino[i];
    bool liar =
        b->v == PL_LIAR && strstr(r->path, "/wal/") && strstr(r->path, ".seg");
    bool synced =
        !liar && ((r->h->flags & PL_F_SYNCED) || (long)idx < n->last_sync ||
                  (long)idx < b->sync_all);
    for (uint64_t off = r->h->off; off < r->h->off + r->h->len;) {
        uint64_t end = (off / BLOCK + 1) * BLOCK;
        end = end < r->h->off + r->h->len ? end : r->h->off + r->h->len;
        bool keep =
            synced || b->v == PL_ALL ||
            (b->v == PL_RANDOM && idx < block_stop(b, i, off / BLOCK, idx));
        if (keep) {
            put(n, off, r->data + (off - r->h->off), (size_t)(end - off));
        } else {
            b->dropped++;
        }
        off = end;
    }
}

static bool
is_meta(uint8_t op)
{
    return op == PL_CREATE || op == PL_RENAME || op == PL_UNLINK ||
           op == PL_MKDIR || op == PL_RMDIR || op == PL_TRUNC || op == PL_ALLOC;
}

static void
apply_meta(builder *b, const pl_rec *r, size_t idx)
{
    bool on_disk = idx < b->meta_limit;
    switch (r->h->op) {
    case PL_CREATE: {
        long i = new_inode(b, r->h->dev, r->h->ino);
        if (on_disk) {
            set_name(b, r->path, i);
        }
        break;
    }
    case PL_TRUNC:
        if (on_disk) {
            resize(&b->ino[inode_of(b, r)], r->h->len);
        }
        break;
    case PL_ALLOC: {
        inode *n = &b->ino[inode_of(b, r)];
        if (on_disk && r->h->off + r->h->len > n->size) {
            resize(n, r->h->off + r->h->len);
        }
        break;
    }
    case PL_RENAME:
        if (on_disk && r->path[0] && r->path2[0]) {
            rename_name(b, r->path, r->path2);
        }
        break;
    case PL_UNLINK:
    case PL_RMDIR:
        if (on_disk) {
            drop_name(b, r->path);
        }
        break;
    case PL_MKDIR:
        if (on_disk) {
            set_name(b, r->path, -1);
        }
        break;
    }
}

/* Pass 1: each inode's last sync, the last sync of all, and how far the
 * metadata reached the disk. */
static void
plan(builder *b)
{
    const pl_journal *j = b->j;
    size_t meta_after = 0, last_any_sync = 0;
    for (size_t i = 0; i < b->cut; i++) {
        const pl_rec *r = &j->recs[i];
        if (r->h->op == PL_SYNC || r->h->op == PL_SYNCALL) {
            last_any_sync = i + 1;
        }
        if (r->h->op == PL_SYNCALL) {
            b->sync_all = (long)i;
        }
    }
    for (size_t i = last_any_sync; i < b->cut; i++) {
        meta_after += is_meta(j->recs[i].h->op);
    }
    b->meta_durable = last_any_sync;
    size_t keep = b->v == PL_ALL      ? meta_after
                  : b->v == PL_RANDOM ? next_rand(&b->rng) % (meta_after + 1)
                                      : 0;
    b->meta_limit = last_any_sync;
    for (size_t i = last_any_sync; i < b->cut && keep > 0; i++) {
        if (is_meta(j->recs[i].h->op) && --keep == 0) {
            b->meta_limit = i + 1;
        }
    }
    if (b->v == PL_ALL) {
        b->meta_limit = b->cut;
    }
}

/* Syncs are per inode: found as the records are applied (an inode's
 * identity is only known in order), so a first pass notes, per record
 * index, the last sync of the same (dev, ino) before the cut. */
static long *
sync_marks(builder *b)
{
    const pl_journal *j = b->j;
    long *last = malloc((b->cut + 1) * sizeof *last);
    /* walk backwards: the latest sync seen so far per (dev, ino) */
    typedef struct seen {
        uint64_t dev, ino;
        long at;
    } seen;
    seen *s = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = b->cut; i-- > 0;) {
        const pl_hdr *h = j->recs[i].h;
        long found = -1;
        for (size_t k = 0; k < n; k++) {
            if (s[k].dev == h->dev && s[k].ino == h->ino) {
                found = (long)k;
            }
        }
        if (h->op == PL_SYNC && found < 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                s = realloc(s, cap * sizeof *s);
            }
            s[n++] = (seen){h->dev, h->ino, (long)i};
        }
        last[i] = found >= 0 ? s[found].at : -1;
        if (h->op == PL_CREATE && found >= 0) { /* before: another file */
            s[found] = s[--n];
        }
    }
    free(s);
    return last;
}

/* ---- writing the image out ---- */

static int
mkdirs(char *p)
{
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            int r = mkdir(p, 0755);
            *s = '/';
            if (r != 0 && errno != EEXIST) {
                return -1;
            }
        }
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int
write_out(builder *b, const char *from, const char *to)
{
    size_t fl = strlen(from);
    char p[2048];
    if (mkdirs(strcpy(p, to)) != 0) {
        return -1;
    }
    for (size_t i = 0; i < b->n_names; i++) {
        const name *nm = &b->names[i];
        if (!nm->path || strncmp(nm->path, from, fl) != 0 ||
            nm->path[fl] != '/') {
            continue;
        }
        snprintf(p, sizeof p, "%s%s", to, nm->path + fl);
        char *slash = strrchr(p, '/');
        *slash = 0;
        int r = mkdirs(p);
        *slash = '/';
        if (r == 0 && nm->inode < 0) {
            r = mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
        } else if (r == 0) {
            const inode *n = &b->ino[nm->inode];
            int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            r = fd < 0 || (n->size &&
                           write(fd, n->buf, n->size) != (ssize_t)n->size)
                    ? -1
                    : 0;
            r = fd >= 0 && close(fd) != 0 ? -1 : r;
        }
        if (r != 0) {
            fprintf(stderr, "powerloss: writing %s: %s\n", p, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void
builder_free(builder *b)
{
    for (size_t i = 0; i < b->n_ino; i++) {
        free(b->ino[i].buf);
    }
    for (size_t i = 0; i < b->n_names; i++) {
        free(b->names[i].path);
    }
    free(b->ino);
    free(b->names);
    free(b->stops);
}

long
pl_image_build(const pl_journal *j, size_t cut, pl_variant v, uint64_t seed,
               const char *from, const char *to)
{
    builder b = {0};
    b.j = j;
    b.cut = cut < j->n ? cut : j->n;
    b.v = v;
    b.rng = seed;
    b.sync_all = -1;
    size_t blocks = 0;
    for (size_t i = 0; i < b.cut; i++) {
        const pl_hdr *h = j->recs[i].h;
        blocks += h->op == PL_WRITE ? h->len / BLOCK + 2 : 0;
    }
    for (b.cap_stops = 1024; b.cap_stops < 2 * blocks;) {
        b.cap_stops *= 2;
    }
    b.stops = calloc(b.cap_stops, sizeof *b.stops);
    plan(&b);
    long *last = sync_marks(&b);
    for (size_t i = 0; i < b.cut; i++) {
        const pl_rec *r = &j->recs[i];
        if (r->h->op == PL_WRITE) {
            long k = inode_of(&b, r);
            b.ino[k].last_sync = last[i];
            apply_write(&b, r, i);
        } else if (is_meta(r->h->op)) {
            apply_meta(&b, r, i);
        }
    }
    free(last);
    long rc = write_out(&b, from, to) == 0 ? b.dropped : -1;
    builder_free(&b);
    return rc;
}
