/*
 * wal.c -- the command log of a database: the durable point of its writes
 * when LMDB runs without its own syncs (ckpt.c has the rest of the scheme).
 *
 * Design notes.  The log lives in `<db dir>/wal/` as segment files
 * (`NNNNNNNN.seg`; the name is only unique, the order comes from headers).
 * A segment starts with a 32-byte header: "SPRIGWL2", its first LSN (u64
 * LE), a CRC-32C of those 16 bytes, then at byte 20 the salt (u64 LE) and
 * at 28 its CRC-32C.  At byte 512, in a sector of its own, the synced
 * mark: [LSN u64 LE][CRC-32C of salt and LSN u32 LE].  Records follow
 * back to back from byte 1024 ("SPRIGWL1" segments, before the mark: from
 * byte 32): [len u32 LE][crc32c u32 LE][lsn u64 LE][len bytes], the CRC
 * covering len, lsn and the bytes.  LSNs are consecutive across the log.
 *
 * Corrupt or torn.  A record whose CRC fails is a torn tail only if it
 * was never synced.  After each fdatasync of a segment the log writes the
 * synced LSN into that segment's mark (not synced itself: the next sync
 * carries it), so a mark on disk never claims more than was durable when
 * it was written.  At open, a segment of the chain that ends below its
 * mark, or a valid segment that starts past the chain's end (a segment
 * starts only once every record before it is synced), proves that a
 * synced record is damaged: SPRIG_ECORRUPT naming the segment and the LSN,
 * instead of silently cutting the log there.  Both ignore LSNs the
 * checkpoint already holds.  The open syncs the chain's last segment
 * before anything is appended, so the records it read count as synced.
 *
 * States.  At open every segment is scanned up to its first record that is
 * torn, corrupt, zero or out of sequence; the chain is the run of segments
 * starting with the one holding `applied + 1` (or ending at `applied`),
 * each beginning right after the last valid record of the one before.
 * Everything else is garbage from an older life and is unlinked when it
 * holds valid records of LSNs that will be handed out again, or kept as a
 * spare to be recycled otherwise.  Appends never go to a segment that
 * existed at open: the open takes a spare or a new file, whose header
 * gets a new random salt, and every record's CRC covers the salt of its
 * segment's use, so stale records in a recycled file never check out.  A
 * torn tail is never written after, and never misread.
 *
 * Segments are zero-filled ahead of the write position in 1 MiB steps and
 * recycled, so most fdatasync() calls flush data blocks only, not the file
 * size.  Rotation (at `seg_bytes`) syncs the full segment first, so a sync
 * of the newest segment covers every record before it.
 *
 * Threads: append, revert and sync are called by the database's writer
 * (one at a time); sync also from the checkpointer, drop only from it.  A
 * mutex guards the segment lists and positions; fdatasync runs outside it.
 */
#include "crc_hw.h"
#include "local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define HDR_BYTES 32
#define MARK_AT 512  /* the synced mark, in a sector of its own */
#define DATA_AT 1024 /* where a "SPRIGWL2" segment's records start */
#define REC_HDR 16
#define CHUNK (1u << 20)        /* the largest growth step */
#define FIRST_BYTES (64u << 10) /* a new segment's first size */
#define MAX_SPARES 2

static const char magic[8] = {'S', 'P', 'R', 'I', 'G', 'W', 'L', '2'};
static const char magic1[8] = {'S', 'P', 'R', 'I', 'G', 'W', 'L', '1'};

typedef struct wal_seg {
    char *path;
    int fd;
    uint64_t first; /* first LSN (0: a spare) */
    uint64_t salt;  /* this use of the file: in every record's CRC */
    uint64_t last;  /* last valid LSN (first - 1 when empty) */
    uint64_t pos;   /* end of the valid records */
    uint64_t size;  /* file size */
    uint64_t data;  /* where records start (HDR_BYTES or DATA_AT) */
    uint64_t mark;  /* synced mark: every record up to it was synced */
} wal_seg;

struct sprig__wal {
    char *dir;
    pthread_mutex_t lock;
    wal_seg *chain; /* in LSN order; appends go to the last one */
    size_t n_chain, cap_chain;
    wal_seg *spares;
    size_t n_spares, cap_spares;
    bool fresh_needed; /* no segment taken for appends yet */
    uint64_t seg_bytes;
    uint64_t next_lsn;   /* the next LSN to hand out */
    uint64_t synced_lsn; /* every LSN below it is on disk */
    uint64_t counter;    /* the next segment file number */
    uint8_t *buf;        /* append buffer */
    size_t buf_cap;
    uint64_t batch_pos; /* where the last batch began (revert) */
    atomic_ulong syncs, appends;
};

/* ---- CRC-32C ------------------------------------------------------------ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        }
        crc_table[i] = c;
    }
}

static uint32_t
crc_update(uint32_t c, const void *data, size_t n)
{
    const uint8_t *p = data;
#if defined(SPRIG__CRC_HW)
    if (sprig__crc_hw_ok()) {
        return sprig__crc_hw(c, p, n);
    }
#endif
    pthread_once(&crc_once, crc_init);
    for (; n; n--) {
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    }
    return c;
}

uint32_t
sprig__crc32c(const void *data, size_t n)
{
    return ~crc_update(~0u, data, n);
}

uint32_t
sprig__crc32c_update(uint32_t crc, const void *data, size_t n)
{
    return ~crc_update(~crc, data, n);
}

static void put_u64le(uint8_t *p, uint64_t v);

/* The CRC of a record: its segment's salt (so records left in a recycled
 * segment from an earlier use never check out), its length, LSN and
 * bytes. */
static uint32_t
rec_crc(uint64_t salt, const uint8_t *hdr, const void *bytes, size_t n)
{
    uint8_t f[8];
    put_u64le(f, salt);
    uint32_t c = crc_update(~0u, f, 8);
    c = crc_update(c, hdr, 4);
    c = crc_update(c, hdr + 8, 8);
    return ~crc_update(c, bytes, n);
}

/* The CRC of a synced mark: the segment's salt and the LSN. */
static uint32_t
mark_crc(uint64_t salt, uint64_t lsn)
{
    uint8_t f[16];
    put_u64le(f, salt);
    put_u64le(f + 8, lsn);
    return sprig__crc32c(f, 16);
}

static void
put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static void
put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8) {
        p[i] = (uint8_t)v;
    }
}

static uint32_t
get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t
get_u64le(const uint8_t *p)
{
    return (uint64_t)get_u32le(p) | (uint64_t)get_u32le(p + 4) << 32;
}

/* ---- file helpers ------------------------------------------------------- */

static int
io_err(const char *what, const char *path, int err)
{
    int rc = err == ENOSPC || err == EDQUOT ? SPRIG_EFULL : SPRIG_EIO;
    return sprig__err(rc, "command log: %s '%s': %s", what, path,
                      strerror(err));
}

/* Write all n bytes of wp, or (wp NULL) read n bytes into rp, at `off`,
 * past short transfers and EINTR; 0 or an errno value (EIO at an early end
 * of file). */
static int
pio_all(int fd, const uint8_t *wp, uint8_t *rp, size_t n, uint64_t off)
{
    while (n) {
        ssize_t k =
            wp ? pwrite(fd, wp, n, (off_t)off) : pread(fd, rp, n, (off_t)off);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return k < 0 ? errno : EIO;
        }
        if (wp) {
            wp += k;
        } else {
            rp += k;
        }
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

static int
pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
    return pio_all(fd, p, NULL, n, off);
}

static int
pread_all(int fd, void *p, size_t n, uint64_t off)
{
    return pio_all(fd, NULL, p, n, off);
}

/* Write zeros over [off, off + n). */
static int
zero_fill(int fd, uint64_t off, uint64_t n)
{
    static const uint8_t zeros[64 * 1024];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        int r = pwrite_all(fd, zeros, k, off);
        if (r) {
            return r;
        }
        off += k;
        n -= k;
    }
    return 0;
}

int
sprig__sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    int r = fsync(fd) ? errno : 0;
    close(fd);
    return r;
}

static void
seg_close(wal_seg *s)
{
    if (s->fd >= 0) {
        close(s->fd);
    }
    sprig__free(s->path);
    s->path = NULL;
    s->fd = -1;
}

static int
seg_push(wal_seg **arr, size_t *n, size_t *cap, const wal_seg *s)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        wal_seg *a = sprig__realloc(*arr, c * sizeof *a);
        if (!a) {
            return sprig__err(SPRIG_ENOMEM, "out of memory (command log)");
        }
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = *s;
    return SPRIG_OK;
}

/* ---- scanning ------------------------------------------------------------ */

/* Read the header of `s` (first = 0 when it is not a valid one). */
static uint32_t mark_crc(uint64_t salt, uint64_t lsn);

static void
read_header(wal_seg *s)
{
    uint8_t h[HDR_BYTES], m[12];
    s->first = s->mark = 0;
    if (s->size < HDR_BYTES || pread_all(s->fd, h, HDR_BYTES, 0) != 0 ||
        get_u32le(h + 16) != sprig__crc32c(h, 16)) {
        return;
    }
    bool v2 = memcmp(h, magic, 8) == 0;
    if (!v2 && memcmp(h, magic1, 8) != 0) {
        return;
    }
    s->first = get_u64le(h + 8);
    s->salt = get_u64le(h + 20);
    s->data = v2 ? DATA_AT : HDR_BYTES;
    if (v2 && s->size >= DATA_AT && pread_all(s->fd, m, 12, MARK_AT) == 0 &&
        get_u32le(m + 8) == mark_crc(s->salt, get_u64le(m))) {
        s->mark = get_u64le(m);
    }
}

/* Scan the records of `s`: its last valid LSN and where they end. */
static int
scan_seg(wal_seg *s, uint8_t **buf, size_t *cap)
{
    s->pos = s->first ? s->data : HDR_BYTES;
    s->last = s->first ? s->first - 1 : 0;
    uint8_t h[REC_HDR];
    while (s->first && s->pos + REC_HDR <= s->size &&
           pread_all(s->fd, h, REC_HDR, s->pos) == 0) {
        uint32_t len = get_u32le(h);
        if (len == 0 || len > s->size - s->pos - REC_HDR ||
            get_u64le(h + 8) != s->last + 1) {
            break;
        }
        if (len > *cap) {
            uint8_t *b = sprig__realloc(*buf, len);
            if (!b) {
                return sprig__err(SPRIG_ENOMEM, "out of memory (log scan)");
            }
            *buf = b;
            *cap = len;
        }
        if (pread_all(s->fd, *buf, len, s->pos + REC_HDR) ||
            rec_crc(s->salt, h, *buf, len) != get_u32le(h + 4)) {
            break;
        }
        s->last++;
        s->pos += REC_HDR + len;
    }
    return SPRIG_OK;
}

static int
seg_open_file(const char *dir, const char *name, wal_seg *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    size_t n = strlen(dir) + strlen(name) + 2;
    s->path = sprig__malloc(n);
    if (!s->path) {
        return sprig__err(SPRIG_ENOMEM, "out of memory (command log)");
    }
    snprintf(s->path, n, "%s/%s", dir, name);
    s->fd = open(s->path, O_RDWR | O_CLOEXEC);
    struct stat sb;
    if (s->fd < 0 || fstat(s->fd, &sb) != 0) {
        int rc = io_err("cannot open", s->path, errno);
        seg_close(s);
        return rc;
    }
    s->size = (uint64_t)sb.st_size;
    return SPRIG_OK;
}

static int
cmp_first(const void *a, const void *b)
{
    const wal_seg *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Read every segment of the directory into `all` (scanned). */
static int
load_all(sprig__wal *w, wal_seg **all, size_t *n, size_t *cap)
{
    DIR *d = opendir(w->dir);
    if (!d) {
        return io_err("cannot list", w->dir, errno);
    }
    int rc = SPRIG_OK;
    uint8_t *buf = NULL;
    size_t bcap = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        unsigned long long num;
        char tail[8];
        if (sscanf(de->d_name, "%llu.%7s", &num, tail) != 2 ||
            strcmp(tail, "seg") != 0) {
            continue;
        }
        w->counter = num + 1 > w->counter ? num + 1 : w->counter;
        wal_seg s;
        rc = seg_open_file(w->dir, de->d_name, &s);
        if (rc == 0) {
            read_header(&s);
            rc = scan_seg(&s, &buf, &bcap);
            rc = rc ? rc : seg_push(all, n, cap, &s);
            if (rc) {
                seg_close(&s);
            }
        }
    }
    closedir(d);
    sprig__free(buf);
    if (*n > 1) {
        qsort(*all, *n, sizeof **all, cmp_first);
    }
    return rc;
}

/* The segment of `all` holding record `lsn` that reaches furthest, not
 * taken yet; n when none does. */
static size_t
holder(const wal_seg *all, const bool *taken, size_t n, uint64_t lsn)
{
    size_t best = n;
    for (size_t i = 0; i < n; i++) {
        const wal_seg *s = &all[i];
        if (!taken[i] && s->first && s->first <= lsn && s->last >= lsn &&
            (best == n || s->last > all[best].last)) {
            best = i;
        }
    }
    return best;
}

/* ECORRUPT: segment `s` ends (its record s->last + 1 damaged) below its
 * synced mark; records `from` to the mark are lost. */
static int
synced_lost(const wal_seg *s, uint64_t from)
{
    return sprig__err(SPRIG_ECORRUPT,
                      "command log '%s': record LSN %llu is damaged (its CRC "
                      "fails, or its header is malformed), but the segment "
                      "was synced through LSN %llu: not a torn write; "
                      "records %llu to %llu are lost",
                      s->path, (unsigned long long)s->last + 1,
                      (unsigned long long)s->mark, (unsigned long long)from,
                      (unsigned long long)s->mark);
}

/* Whether the chain (w->chain, ending before w->next_lsn) ends below
 * what was synced: a segment (in the chain or not) that ends below its
 * synced mark, or a valid segment (not taken) that starts past the chain's
 * end.  Records up
 * to `applied` do not count (the checkpoint holds them).  ECORRUPT naming
 * the segment and the first LSN lost. */
static int
check_breaks(sprig__wal *w, const wal_seg *all, size_t n, const bool *taken,
             uint64_t applied)
{
    for (size_t i = 0; i < w->n_chain; i++) {
        const wal_seg *s = &w->chain[i];
        if (s->mark > s->last && s->mark > applied) {
            return synced_lost(s, s->last + 1);
        }
    }
    for (size_t i = 0; i < n; i++) {
        /* a segment whose damage is before `want` (its first record, say)
         * holds no LSN the chain asked for, so it is not in the chain: its
         * synced mark past the chain's end still says records were lost */
        const wal_seg *s = &all[i];
        if (!taken[i] && s->first && s->first <= w->next_lsn &&
            s->last < w->next_lsn && s->mark >= w->next_lsn &&
            s->mark > applied) {
            return synced_lost(s, w->next_lsn);
        }
    }
    const char *end = w->n_chain ? w->chain[w->n_chain - 1].path : w->dir;
    for (size_t i = 0; i < n; i++) {
        const wal_seg *s = &all[i];
        if (!taken[i] && s->first > w->next_lsn && s->first - 1 > applied) {
            return sprig__err(SPRIG_ECORRUPT,
                              "command log '%s': record LSN %llu is damaged or "
                              "missing, but segment '%s' starts at LSN %llu "
                              "(a segment starts only after every record "
                              "before it was synced): records %llu to %llu "
                              "are lost",
                              end, (unsigned long long)w->next_lsn, s->path,
                              (unsigned long long)s->first,
                              (unsigned long long)w->next_lsn,
                              (unsigned long long)s->first - 1);
        }
    }
    return SPRIG_OK;
}

/* Pick the chain out of `all` (sorted): from the segment holding `want`,
 * each next one holding the record after the last.  Segments left out
 * become spares when every LSN they may hold is below the next one handed
 * out (so a recycled one never gets its old first LSN back), else they
 * are unlinked (*unlinked set). */
static int
build_chain(sprig__wal *w, wal_seg *all, size_t n, uint64_t want,
            bool *unlinked)
{
    bool *taken = sprig__calloc(n ? n : 1, sizeof *taken);
    if (!taken) {
        for (size_t i = 0; i < n; i++) {
            seg_close(&all[i]);
        }
        return sprig__err(SPRIG_ENOMEM, "out of memory (command log)");
    }
    int rc = SPRIG_OK;
    uint64_t expect = want;
    for (size_t i; (i = holder(all, taken, n, expect)) < n;) {
        taken[i] = true;
        expect = all[i].last + 1;
        rc = rc ? rc : seg_push(&w->chain, &w->n_chain, &w->cap_chain, &all[i]);
        if (rc) {
            seg_close(&all[i]);
        }
    }
    w->next_lsn = expect;
    rc = rc ? rc : check_breaks(w, all, n, taken, want - 1);
    for (size_t i = 0; i < n; i++) {
        wal_seg *s = &all[i];
        if (taken[i]) {
            continue;
        }
        if (rc == SPRIG_ECORRUPT) { /* keep everything for a look */
            seg_close(s);
            continue;
        }
        if (rc == 0 && s->last < expect && w->n_spares < MAX_SPARES &&
            seg_push(&w->spares, &w->n_spares, &w->cap_spares, s) == 0) {
            continue;
        }
        unlink(s->path);
        seg_close(s);
        *unlinked = true;
    }
    sprig__free(taken);
    return rc;
}

static int start_seg(sprig__wal *w);

int
sprig__wal_open(const char *dbdir, uint64_t applied, size_t seg_bytes,
                sprig__wal **out)
{
    *out = NULL;
    sprig__wal *w = sprig__calloc(1, sizeof *w);
    size_t n = strlen(dbdir) + 8;
    if (!w || !(w->dir = sprig__malloc(n))) {
        sprig__free(w);
        return sprig__err(SPRIG_ENOMEM, "out of memory (command log)");
    }
    snprintf(w->dir, n, "%s/wal", dbdir);
    pthread_mutex_init(&w->lock, NULL);
    w->seg_bytes = seg_bytes ? seg_bytes : SPRIG__WAL_SEG_BYTES;
    w->fresh_needed = true;
    if (mkdir(w->dir, 0755) != 0 && errno != EEXIST) {
        int rc = io_err("cannot create", w->dir, errno);
        sprig__wal_close(w);
        return rc;
    }
    wal_seg *all = NULL;
    size_t n_all = 0, cap = 0;
    bool unlinked = false;
    int rc = load_all(w, &all, &n_all, &cap);
    if (rc == 0) {
        rc = build_chain(w, all, n_all, applied + 1, &unlinked);
    } else {
        for (size_t i = 0; i < n_all; i++) {
            seg_close(&all[i]);
        }
    }
    sprig__free(all);
    int r = rc == 0 && unlinked ? sprig__sync_dir(w->dir) : 0;
    rc = rc ? rc : r ? io_err("cannot sync", w->dir, r) : 0;
    /* what was read counts as synced from now on (check_breaks) */
    wal_seg *tail = w->n_chain ? &w->chain[w->n_chain - 1] : NULL;
    if (rc == 0 && tail && tail->last >= tail->first &&
        fdatasync(tail->fd) != 0) {
        rc = io_err("cannot sync", tail->path, errno);
    }
    if (rc) {
        sprig__wal_close(w);
        return rc;
    }
    w->synced_lsn = w->next_lsn;
    *out = w;
    return SPRIG_OK;
}

void
sprig__wal_close(sprig__wal *w)
{
    if (!w) {
        return;
    }
    for (size_t i = 0; i < w->n_chain; i++) {
        seg_close(&w->chain[i]);
    }
    for (size_t i = 0; i < w->n_spares; i++) {
        seg_close(&w->spares[i]);
    }
    sprig__free(w->chain);
    sprig__free(w->spares);
    sprig__free(w->buf);
    pthread_mutex_destroy(&w->lock);
    sprig__free(w->dir);
    sprig__free(w);
}

uint64_t
sprig__wal_next_lsn(sprig__wal *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t v = w->next_lsn;
    pthread_mutex_unlock(&w->lock);
    return v;
}

/* ---- replay -------------------------------------------------------------- */

int
sprig__wal_replay(sprig__wal *w, uint64_t applied, sprig__wal_fn fn, void *arg)
{
    int rc = SPRIG_OK;
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i < w->n_chain; i++) {
        wal_seg *s = &w->chain[i];
        uint64_t off = s->data;
        uint8_t h[REC_HDR];
        for (uint64_t lsn = s->first; rc == 0 && lsn <= s->last; lsn++) {
            int r = pread_all(s->fd, h, REC_HDR, off);
            uint32_t len = r ? 0 : get_u32le(h);
            if (len > cap) {
                uint8_t *b = sprig__realloc(buf, len);
                if (!b) {
                    rc = sprig__err(SPRIG_ENOMEM, "out of memory (replay)");
                    break;
                }
                buf = b;
                cap = len;
            }
            r = r ? r : pread_all(s->fd, buf, len, off + REC_HDR);
            if (r || rec_crc(s->salt, h, buf, len) != get_u32le(h + 4)) {
                rc = sprig__err(SPRIG_ECORRUPT,
                                "command log '%s' changed while replaying",
                                s->path);
                break;
            }
            off += REC_HDR + len;
            rc = lsn > applied ? fn(arg, lsn, buf, len) : 0;
        }
    }
    sprig__free(buf);
    return rc;
}

/* ---- appending ----------------------------------------------------------- */

/* A new segment file with a valid header and one zeroed chunk. */
static int
create_seg(sprig__wal *w, wal_seg *s)
{
    char name[32];
    snprintf(name, sizeof name, "%08llu.seg", (unsigned long long)w->counter++);
    memset(s, 0, sizeof *s);
    size_t n = strlen(w->dir) + sizeof name + 2;
    s->path = sprig__malloc(n);
    if (!s->path) {
        return sprig__err(SPRIG_ENOMEM, "out of memory (command log)");
    }
    snprintf(s->path, n, "%s/%s", w->dir, name);
    s->fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int r = s->fd < 0 ? errno : zero_fill(s->fd, 0, FIRST_BYTES);
    r = r ? r : fdatasync(s->fd) ? errno : 0;
    r = r ? r : sprig__sync_dir(w->dir);
    if (r) {
        int rc = io_err("cannot create", s->path, r);
        if (s->fd >= 0) {
            unlink(s->path);
        }
        seg_close(s);
        return rc;
    }
    s->size = FIRST_BYTES;
    return SPRIG_OK;
}

static uint64_t
new_salt(sprig__wal *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)w ^ w->next_lsn;
    x ^= x >> 33; /* a mix, so nearby inputs differ everywhere */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x ? x : 1;
}

/* Write segment `s`'s header: first LSN next_lsn, a new salt, no synced
 * mark (zeros up to where the records start). */
static int
write_header(sprig__wal *w, wal_seg *s)
{
    uint8_t h[DATA_AT] = {0};
    s->salt = new_salt(w);
    memcpy(h, magic, 8);
    put_u64le(h + 8, w->next_lsn);
    put_u32le(h + 16, sprig__crc32c(h, 16));
    put_u64le(h + 20, s->salt);
    put_u32le(h + 28, sprig__crc32c(h + 20, 8));
    int r = pwrite_all(s->fd, h, DATA_AT, 0);
    s->first = w->next_lsn;
    s->last = s->first - 1;
    s->pos = s->data = DATA_AT;
    s->mark = 0;
    return r ? io_err("cannot write", s->path, r) : SPRIG_OK;
}

/* Take a spare (or a new file) as the segment starting at next_lsn. */
static int
start_seg(sprig__wal *w)
{
    wal_seg s;
    if (w->n_spares) {
        s = w->spares[--w->n_spares];
    } else {
        int rc = create_seg(w, &s);
        if (rc) {
            return rc;
        }
    }
    int rc = write_header(w, &s);
    rc = rc ? rc : seg_push(&w->chain, &w->n_chain, &w->cap_chain, &s);
    if (rc) {
        seg_close(&s);
        return rc;
    }
    w->fresh_needed = false;
    return SPRIG_OK;
}

/* Make room for `need` bytes in the current segment (lock held). */
static int
room(sprig__wal *w, uint64_t need)
{
    wal_seg *c = w->fresh_needed ? NULL : &w->chain[w->n_chain - 1];
    if (c && c->pos + need > w->seg_bytes && c->last >= c->first) {
        if (w->synced_lsn < w->next_lsn && fdatasync(c->fd) != 0) {
            return io_err("cannot sync", c->path, errno);
        }
        w->synced_lsn = w->next_lsn;
        atomic_fetch_add(&w->syncs, 1);
        c = NULL;
    }
    if (!c) {
        int rc = start_seg(w);
        if (rc) {
            return rc;
        }
        c = &w->chain[w->n_chain - 1];
    }
    if (c->pos + need > c->size) { /* double, up to CHUNK at a time */
        uint64_t step = c->size < CHUNK ? c->size : CHUNK;
        uint64_t want = c->pos + need - c->size;
        uint64_t grow = want > step ? want + step : step;
        struct statvfs sv; /* nearly full: take no more than needed, and
                              leave the rest to LMDB */
        if (fstatvfs(c->fd, &sv) == 0 &&
            (uint64_t)sv.f_bavail * sv.f_frsize < 16 * grow) {
            grow = (want + 4095) / 4096 * 4096;
        }
        int r = zero_fill(c->fd, c->size, grow);
        if (r == ENOSPC || r == EDQUOT) { /* the disk is nearly full */
            grow = (want + 4095) / 4096 * 4096;
            r = zero_fill(c->fd, c->size, grow);
        }
        if (r) {
            return io_err("cannot grow", c->path, r);
        }
        c->size += grow;
    }
    return SPRIG_OK;
}

/* Encode the batch into w->buf for a segment with `salt`. */
static int
encode_batch(sprig__wal *w, const sprig_bytes *recs, size_t n, size_t total,
             uint64_t salt)
{
    if (total > w->buf_cap) {
        uint8_t *b = sprig__realloc(w->buf, total);
        if (!b) {
            return sprig__err(SPRIG_ENOMEM, "out of memory (command log)");
        }
        w->buf = b;
        w->buf_cap = total;
    }
    uint8_t *p = w->buf;
    for (size_t i = 0; i < n; i++) {
        put_u32le(p, (uint32_t)recs[i].len);
        put_u32le(p + 4, 0);
        put_u64le(p + 8, w->next_lsn + i);
        memcpy(p + REC_HDR, recs[i].data, recs[i].len);
        put_u32le(p + 4, rec_crc(salt, p, p + REC_HDR, recs[i].len));
        p += REC_HDR + recs[i].len;
    }
    return SPRIG_OK;
}

/* Write the encoded batch at the end of the current segment (lock held). */
static int
write_batch(sprig__wal *w, const sprig_bytes *recs, size_t n, size_t total)
{
    int rc = room(w, total);
    wal_seg *c = rc ? NULL : &w->chain[w->n_chain - 1];
    rc = rc ? rc : encode_batch(w, recs, n, total, c->salt);
    if (rc) {
        return rc;
    }
    int r = pwrite_all(c->fd, w->buf, total, c->pos);
    if (r) {
        zero_fill(c->fd, c->pos, total); /* no torn batch left behind */
        return io_err("cannot write", c->path, r);
    }
    w->batch_pos = c->pos;
    c->pos += total;
    c->last += n;
    w->next_lsn += n;
    atomic_fetch_add(&w->appends, 1);
    return SPRIG_OK;
}

int
sprig__wal_append(sprig__wal *w, const sprig_bytes *recs, size_t n,
                  uint64_t *last_lsn)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].len == 0 || recs[i].len > UINT32_MAX / 2) {
            return sprig__err(SPRIG_EINVAL, "command log: record of %zu bytes",
                              recs[i].len);
        }
        total += REC_HDR + recs[i].len;
    }
    pthread_mutex_lock(&w->lock);
    int rc = n ? write_batch(w, recs, n, total) : SPRIG_OK;
    *last_lsn = w->next_lsn - 1;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* Write `lsn` as segment s's synced mark (lock held); 0 or errno. */
static int
write_mark(wal_seg *s, uint64_t lsn)
{
    uint8_t m[12];
    put_u64le(m, lsn);
    put_u32le(m + 8, mark_crc(s->salt, lsn));
    int r = s->data == DATA_AT ? pwrite_all(s->fd, m, 12, MARK_AT) : 0;
    s->mark = r ? s->mark : lsn;
    return r;
}

int
sprig__wal_revert(sprig__wal *w, uint64_t first_lsn)
{
    pthread_mutex_lock(&w->lock);
    int rc = SPRIG_OK;
    wal_seg *c = w->n_chain ? &w->chain[w->n_chain - 1] : NULL;
    if (c && first_lsn < w->next_lsn && first_lsn >= c->first) {
        uint64_t n = c->pos - w->batch_pos;
        int r = 0;
        if (c->mark >= first_lsn) { /* the mark must not outlive them */
            r = write_mark(c, first_lsn - 1);
            r = r ? r : fdatasync(c->fd) ? errno : 0;
        }
        r = r ? r : zero_fill(c->fd, w->batch_pos, n);
        bool synced = w->synced_lsn > first_lsn;
        r = r ? r : synced && fdatasync(c->fd) ? errno : 0;
        rc = r ? io_err("cannot revert", c->path, r) : 0;
        c->pos = w->batch_pos;
        c->last = first_lsn - 1;
        w->next_lsn = first_lsn;
        w->synced_lsn = synced ? first_lsn : w->synced_lsn;
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int
sprig__wal_sync(sprig__wal *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t target = w->next_lsn;
    bool need = w->synced_lsn < target && w->n_chain && !w->fresh_needed;
    int fd = need ? w->chain[w->n_chain - 1].fd : -1;
    pthread_mutex_unlock(&w->lock);
    if (!need) {
        return SPRIG_OK;
    }
    if (fdatasync(fd) != 0) {
        return io_err("cannot sync", w->dir, errno);
    }
    atomic_fetch_add(&w->syncs, 1);
    pthread_mutex_lock(&w->lock);
    w->synced_lsn = target > w->synced_lsn ? target : w->synced_lsn;
    int r = 0;
    for (size_t i = 0; i < w->n_chain; i++) { /* the segment synced */
        wal_seg *s = &w->chain[i];
        uint64_t upto = target - 1 < s->last ? target - 1 : s->last;
        if (s->fd == fd && upto > s->mark && upto >= s->first) {
            r = write_mark(s, upto); /* durable with the next sync */
        }
    }
    pthread_mutex_unlock(&w->lock);
    return r ? io_err("cannot write the synced mark of", w->dir, r) : SPRIG_OK;
}

bool
sprig__wal_unsynced(sprig__wal *w)
{
    pthread_mutex_lock(&w->lock);
    bool v = w->synced_lsn < w->next_lsn;
    pthread_mutex_unlock(&w->lock);
    return v;
}

void
sprig__wal_drop(sprig__wal *w, uint64_t upto)
{
    pthread_mutex_lock(&w->lock);
    size_t keep = 0;
    /* never the segment appends go to (the last one, unless none is) */
    size_t limit = w->fresh_needed ? w->n_chain : w->n_chain - 1;
    for (size_t i = 0; i < w->n_chain; i++) {
        wal_seg *s = &w->chain[i];
        if (i < limit && s->last <= upto && keep == 0) {
            if (w->n_spares >= MAX_SPARES ||
                seg_push(&w->spares, &w->n_spares, &w->cap_spares, s)) {
                unlink(s->path);
                seg_close(s);
            }
            continue;
        }
        w->chain[keep++] = *s;
    }
    w->n_chain = keep;
    pthread_mutex_unlock(&w->lock);
}

void
sprig__wal_stats(sprig__wal *w, uint64_t *syncs, uint64_t *appends,
                 size_t *segments)
{
    *syncs = atomic_load(&w->syncs);
    *appends = atomic_load(&w->appends);
    pthread_mutex_lock(&w->lock);
    *segments = w->n_chain;
    pthread_mutex_unlock(&w->lock);
}

int
sprig__wal_prepare(sprig__wal *w)
{
    pthread_mutex_lock(&w->lock);
    int rc = SPRIG_OK;
    if (w->fresh_needed && w->n_spares == 0) {
        wal_seg s;
        rc = create_seg(w, &s);
        if (rc == 0 &&
            (rc = seg_push(&w->spares, &w->n_spares, &w->cap_spares, &s))) {
            seg_close(&s);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int
sprig__wal_reset(sprig__wal *w)
{
    pthread_mutex_lock(&w->lock);
    /* keep one file: the current segment, else any */
    wal_seg keep = {.fd = -1};
    if (w->n_chain && !w->fresh_needed) {
        keep = w->chain[--w->n_chain];
    } else if (w->n_spares) {
        keep = w->spares[--w->n_spares];
    } else if (w->n_chain) {
        keep = w->chain[--w->n_chain];
    }
    for (size_t i = 0; i < w->n_chain; i++) {
        unlink(w->chain[i].path);
        seg_close(&w->chain[i]);
    }
    for (size_t i = 0; i < w->n_spares; i++) {
        unlink(w->spares[i].path);
        seg_close(&w->spares[i]);
    }
    w->n_chain = w->n_spares = 0;
    int rc = SPRIG_OK;
    if (keep.fd >= 0 && !w->fresh_needed) {
        rc = write_header(w, &keep);
        rc = rc ? rc : seg_push(&w->chain, &w->n_chain, &w->cap_chain, &keep);
    } else if (keep.fd >= 0) {
        rc = seg_push(&w->spares, &w->n_spares, &w->cap_spares, &keep);
    }
    if (rc && keep.fd >= 0) {
        seg_close(&keep);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}
