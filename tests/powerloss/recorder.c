/*
 * recorder.c -- libsprig_powerloss.so, the LD_PRELOAD interposer of the
 * power-loss harness (issue 17, item 1; docs/reliability.md).  Loaded into a
 * workload process, it journals every operation that can change what a disk
 * holds under the directory SPRIG_PL_DIR names: opens that create or
 * truncate, write/pwrite/writev/pwritev (with their data; a write through
 * an O_SYNC/O_DSYNC descriptor is marked synced), fsync/fdatasync (of files
 * and directories), sync/syncfs, msync of a shared writable mapping (the
 * mapped bytes are journaled as a write, then a sync: writes through a map
 * are invisible to an interposer otherwise), sync_file_range (recorded, not
 * a sync: it flushes no disk cache and no metadata), ftruncate, fallocate,
 * posix_fallocate, rename, unlink, remove, mkdir, rmdir.  Writes to the file
 * SPRIG_PL_ACK names (the workload's acknowledgement log, outside the
 * storage) are journaled as acknowledgements, in the same order as the
 * rest, so the checker knows which acknowledgements precede any cut.
 * lock.mdb is not journaled (LMDB rebuilds it; it is written through a map).
 *
 * The journal (SPRIG_PL_LOG) is a sequence of records: a 40-byte header
 * (op, flags, path lengths, dev, inode, offset, length), the path, a second
 * path (rename), and for writes and acknowledgements the data.  Each record
 * is appended with one writev system call while a mutex is held across the
 * real operation and its record, so the journal's order is the order the
 * operations took effect.  A sync is journaled before it runs: a cut just
 * before it stands for every moment while it ran.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "plog.h"

static int log_fd = -1;
static char dir[1024], ack[1024];
static size_t dir_len;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void
pl_init(void)
{
    const char *d = getenv("SPRIG_PL_DIR"), *l = getenv("SPRIG_PL_LOG");
    const char *a = getenv("SPRIG_PL_ACK");
    if (!d || !l) {
        return;
    }
    snprintf(dir, sizeof dir, "%s", d);
    dir_len = strlen(dir);
    snprintf(ack, sizeof ack, "%s", a ? a : "");
    log_fd = (int)syscall(SYS_openat, AT_FDCWD, l,
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

#define REAL(name, type)                                                       \
    static type real_##name;                                                   \
    if (!real_##name) {                                                        \
        real_##name = (type)dlsym(RTLD_NEXT, #name);                           \
    }

static bool
under_dir(const char *p)
{
    return log_fd >= 0 && strncmp(p, dir, dir_len) == 0 &&
           (p[dir_len] == '/' || p[dir_len] == 0) && !strstr(p, "lock.mdb");
}

/* An absolute form of `p` (relative paths against the working directory;
 * no symlink resolution: the workload names its storage canonically). */
static void
abs_path(const char *p, char *out, size_t n)
{
    char cwd[1024];
    if (p[0] == '/' || !getcwd(cwd, sizeof cwd)) {
        snprintf(out, n, "%s", p);
    } else if (snprintf(out, n, "%s/%s", cwd, p) >= (int)n) {
        out[0] = 0; /* too long: never under the directory */
    }
}

static void
emit(const pl_hdr *h, const char *p1, const char *p2, const void *data)
{
    struct iovec iov[4] = {{(void *)h, sizeof *h},
                           {(void *)p1, h->plen},
                           {(void *)p2, h->p2len},
                           {(void *)data, h->op == PL_WRITE || h->op == PL_ACK
                                              ? (size_t)h->len
                                              : 0}};
    syscall(SYS_writev, log_fd, iov, 4);
}

static void
emit_path(uint8_t op, const char *p1, const char *p2, uint64_t ino,
          uint64_t dev)
{
    pl_hdr h = {0};
    h.op = op;
    h.plen = (uint16_t)strlen(p1);
    h.p2len = (uint16_t)(p2 ? strlen(p2) : 0);
    h.ino = ino;
    h.dev = dev;
    emit(&h, p1, p2 ? p2 : "", NULL);
}

typedef struct fdinfo {
    char path[1024];
    struct stat st;
    bool tracked, is_ack, sync;
} fdinfo;

static bool
fd_info(int fd, fdinfo *fi)
{
    char link[64];
    fi->tracked = fi->is_ack = fi->sync = false;
    memset(&fi->st, 0, sizeof fi->st);
    if (log_fd < 0) {
        return false;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, fi->path, sizeof fi->path - 1);
    if (k <= 0) {
        return false;
    }
    fi->path[k] = 0;
    fi->is_ack = ack[0] && strcmp(fi->path, ack) == 0;
    fi->tracked = under_dir(fi->path) && fstat(fd, &fi->st) == 0;
    int fl = fi->tracked ? fcntl(fd, F_GETFL) : 0;
    fi->sync = fl >= 0 && (fl & (O_SYNC | O_DSYNC)) != 0;
    return fi->tracked || fi->is_ack;
}

static void
emit_fd(uint8_t op, const fdinfo *fi, uint64_t off, uint64_t len,
        const void *data)
{
    pl_hdr h = {0};
    h.op = fi->is_ack && op == PL_WRITE ? PL_ACK : op;
    h.flags = fi->sync && op == PL_WRITE ? PL_F_SYNCED : 0;
    h.plen = (uint16_t)strlen(fi->path);
    h.ino = (uint64_t)fi->st.st_ino;
    h.dev = (uint64_t)fi->st.st_dev;
    h.off = off;
    h.len = len;
    emit(&h, fi->path, "", data);
}

/* Journal `k` bytes written from `iov` at `off`, one record per piece. */
static void
emit_iov(const fdinfo *fi, const struct iovec *iov, int cnt, off_t off,
         ssize_t k)
{
    for (int i = 0; k > 0 && i < cnt; i++) {
        size_t n = iov[i].iov_len < (size_t)k ? iov[i].iov_len : (size_t)k;
        if (n) {
            emit_fd(PL_WRITE, fi, (uint64_t)off, n, iov[i].iov_base);
        }
        off += (off_t)n;
        k -= (ssize_t)n;
    }
}

/* ---- writes ---- */

typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);

/* Every write funnels here: off < 0 means at the file position. */
static ssize_t
do_writev(int fd, const struct iovec *iov, int cnt, off_t off, bool pos)
{
    REAL(pwritev, pwritev_fn);
    REAL(writev, writev_fn);
    fdinfo fi;
    if (!fd_info(fd, &fi)) {
        return pos ? real_pwritev(fd, iov, cnt, off)
                   : real_writev(fd, iov, cnt);
    }
    pthread_mutex_lock(&mu);
    off_t at = pos ? off : lseek(fd, 0, SEEK_CUR);
    if (!pos && (fcntl(fd, F_GETFL) & O_APPEND)) {
        at = lseek(fd, 0, SEEK_END);
    }
    ssize_t k =
        pos ? real_pwritev(fd, iov, cnt, off) : real_writev(fd, iov, cnt);
    if (k > 0 && at >= 0) {
        emit_iov(&fi, iov, cnt, at, k);
    }
    pthread_mutex_unlock(&mu);
    return k;
}

ssize_t
write(int fd, const void *p, size_t n)
{
    struct iovec v = {(void *)p, n};
    return do_writev(fd, &v, 1, -1, false);
}

ssize_t
pwrite(int fd, const void *p, size_t n, off_t off)
{
    struct iovec v = {(void *)p, n};
    return do_writev(fd, &v, 1, off, true);
}

ssize_t
pwrite64(int fd, const void *p, size_t n, off_t off)
{
    return pwrite(fd, p, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
    return do_writev(fd, iov, cnt, -1, false);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    return do_writev(fd, iov, cnt, off, true);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    return do_writev(fd, iov, cnt, off, true);
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    (void)flags; /* RWF_DSYNC and friends: recorded as plain writes */
    return off < 0 ? do_writev(fd, iov, cnt, -1, false)
                   : do_writev(fd, iov, cnt, off, true);
}

/* ---- syncs ---- */

typedef int (*int_fn)(int);

static void
note_sync(int fd)
{
    fdinfo fi;
    if (fd_info(fd, &fi) && fi.tracked) {
        pthread_mutex_lock(&mu);
        emit_fd(PL_SYNC, &fi, 0, 0, NULL);
        pthread_mutex_unlock(&mu);
    }
}

int
fsync(int fd)
{
    REAL(fsync, int_fn);
    note_sync(fd);
    return real_fsync(fd);
}

int
fdatasync(int fd)
{
    REAL(fdatasync, int_fn);
    note_sync(fd);
    return real_fdatasync(fd);
}

int
syncfs(int fd)
{
    REAL(syncfs, int_fn);
    if (log_fd >= 0) {
        pthread_mutex_lock(&mu);
        emit_path(PL_SYNCALL, "", NULL, 0, 0);
        pthread_mutex_unlock(&mu);
    }
    return real_syncfs(fd);
}

void
sync(void)
{
    typedef void (*void_fn)(void);
    REAL(sync, void_fn);
    if (log_fd >= 0) {
        pthread_mutex_lock(&mu);
        emit_path(PL_SYNCALL, "", NULL, 0, 0);
        pthread_mutex_unlock(&mu);
    }
    real_sync();
}

int
sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    typedef int (*sfr_fn)(int, off_t, off_t, unsigned int);
    REAL(sync_file_range, sfr_fn);
    fdinfo fi;
    if (fd_info(fd, &fi) && fi.tracked) {
        pthread_mutex_lock(&mu);
        emit_fd(PL_RANGE, &fi, (uint64_t)off, (uint64_t)n, NULL);
        pthread_mutex_unlock(&mu);
    }
    return real_sync_file_range(fd, off, n, flags);
}

/* ---- shared writable maps (msync) ---- */

typedef struct pl_map {
    void *addr;
    size_t len;
    off_t off;
    fdinfo fi;
} pl_map;

static pl_map maps[64];

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    REAL(mmap, mmap_fn);
    void *p = real_mmap(addr, len, prot, flags, fd, off);
    fdinfo fi;
    if (p != MAP_FAILED && (flags & MAP_SHARED) && (prot & PROT_WRITE) &&
        fd >= 0 && fd_info(fd, &fi) && fi.tracked) {
        pthread_mutex_lock(&mu);
        for (size_t i = 0; i < 64; i++) {
            if (!maps[i].addr) {
                maps[i] = (pl_map){p, len, off, fi};
                break;
            }
        }
        pthread_mutex_unlock(&mu);
    }
    return p;
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

int
munmap(void *addr, size_t len)
{
    typedef int (*munmap_fn)(void *, size_t);
    REAL(munmap, munmap_fn);
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < 64; i++) {
        if (maps[i].addr == addr) {
            maps[i].addr = NULL;
        }
    }
    pthread_mutex_unlock(&mu);
    return real_munmap(addr, len);
}

int
msync(void *addr, size_t len, int flags)
{
    typedef int (*msync_fn)(void *, size_t, int);
    REAL(msync, msync_fn);
    pthread_mutex_lock(&mu);
    for (size_t i = 0; log_fd >= 0 && i < 64; i++) {
        pl_map *m = &maps[i];
        char *b = m->addr, *e = b ? b + m->len : NULL, *p = addr;
        if (b && p >= b && p < e) {
            size_t n = p + len <= e ? len : (size_t)(e - p);
            emit_fd(PL_WRITE, &m->fi, (uint64_t)(m->off + (p - b)), n, p);
            if (flags & MS_SYNC) {
                emit_fd(PL_SYNC, &m->fi, 0, 0, NULL);
            }
        }
    }
    pthread_mutex_unlock(&mu);
    return real_msync(addr, len, flags);
}

/* ---- sizes ---- */

int
ftruncate(int fd, off_t len)
{
    typedef int (*ft_fn)(int, off_t);
    REAL(ftruncate, ft_fn);
    fdinfo fi;
    if (!fd_info(fd, &fi) || !fi.tracked) {
        return real_ftruncate(fd, len);
    }
    pthread_mutex_lock(&mu);
    int r = real_ftruncate(fd, len);
    if (r == 0) {
        emit_fd(PL_TRUNC, &fi, 0, (uint64_t)len, NULL);
    }
    pthread_mutex_unlock(&mu);
    return r;
}

int
ftruncate64(int fd, off_t len)
{
    return ftruncate(fd, len);
}

/* fallocate and posix_fallocate: the file is at least off + len long. */
static int
do_alloc(int fd, int mode, off_t off, off_t len, bool posix)
{
    typedef int (*fa_fn)(int, int, off_t, off_t);
    typedef int (*pfa_fn)(int, off_t, off_t);
    REAL(fallocate, fa_fn);
    REAL(posix_fallocate, pfa_fn);
    fdinfo fi;
    bool t = fd_info(fd, &fi) && fi.tracked;
    if (t) {
        pthread_mutex_lock(&mu);
    }
    int r = posix ? real_posix_fallocate(fd, off, len)
                  : real_fallocate(fd, mode, off, len);
    if (t && r == 0 && (posix || !(mode & FALLOC_FL_KEEP_SIZE))) {
        emit_fd(PL_ALLOC, &fi, (uint64_t)off, (uint64_t)len, NULL);
    }
    if (t) {
        pthread_mutex_unlock(&mu);
    }
    return r;
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
    return do_alloc(fd, mode, off, len, false);
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
    return do_alloc(fd, mode, off, len, false);
}

int
posix_fallocate(int fd, off_t off, off_t len)
{
    return do_alloc(fd, 0, off, len, true);
}

int
posix_fallocate64(int fd, off_t off, off_t len)
{
    return do_alloc(fd, 0, off, len, true);
}

/* ---- names: open, create, rename, unlink, mkdir, rmdir ---- */

typedef int (*openat_fn)(int, const char *, int, ...);

/* The absolute path of `p` relative to directory fd `at`. */
static bool
at_path(int at, const char *p, char *out, size_t n)
{
    if (log_fd < 0) {
        return false;
    }
    if (p[0] == '/' || at == AT_FDCWD) {
        abs_path(p, out, n);
    } else {
        char link[64], d[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%d", at);
        ssize_t k = readlink(link, d, sizeof d - 1);
        if (k <= 0) {
            return false;
        }
        d[k] = 0;
        if (snprintf(out, n, "%s/%s", d, p) >= (int)n) {
            out[0] = 0;
        }
    }
    return under_dir(out);
}

static int
do_openat(int at, const char *p, int flags, mode_t mode)
{
    REAL(openat, openat_fn);
    char ap[1024];
    struct stat sb;
    if (!(flags & (O_CREAT | O_TRUNC)) || !at_path(at, p, ap, sizeof ap)) {
        return real_openat(at, p, flags, mode);
    }
    pthread_mutex_lock(&mu);
    bool existed = stat(ap, &sb) == 0;
    int fd = real_openat(at, p, flags, mode);
    if (fd >= 0 && fstat(fd, &sb) == 0) {
        if (!existed) {
            emit_path(PL_CREATE, ap, NULL, sb.st_ino, sb.st_dev);
        } else if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
            fdinfo fi;
            if (fd_info(fd, &fi) && fi.tracked) {
                emit_fd(PL_TRUNC, &fi, 0, 0, NULL);
            }
        }
    }
    pthread_mutex_unlock(&mu);
    return fd;
}

static mode_t
mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *p, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, p, flags, m);
}

int
open64(const char *p, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, p, flags, m);
}

int
openat(int at, const char *p, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_openat(at, p, flags, m);
}

int
openat64(int at, const char *p, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_openat(at, p, flags, m);
}

int
__open_2(const char *p, int flags)
{
    return do_openat(AT_FDCWD, p, flags, 0);
}

int
__open64_2(const char *p, int flags)
{
    return do_openat(AT_FDCWD, p, flags, 0);
}

int
creat(const char *p, mode_t m)
{
    return do_openat(AT_FDCWD, p, O_WRONLY | O_CREAT | O_TRUNC, m);
}

int
creat64(const char *p, mode_t m)
{
    return creat(p, m);
}

/* A name operation: `real` runs under the mutex, and on success the
 * record is journaled. */
static int
name_op(uint8_t op, int at1, const char *p1, int at2, const char *p2,
        int (*real)(void *), void *arg)
{
    char a1[1024], a2[1024];
    bool t1 = at_path(at1, p1, a1, sizeof a1);
    bool t2 = p2 && at_path(at2, p2, a2, sizeof a2);
    if (!t1 && !t2) {
        return real(arg);
    }
    pthread_mutex_lock(&mu);
    int r = real(arg);
    if (r == 0) {
        emit_path(op, t1 ? a1 : "", p2 ? (t2 ? a2 : "") : NULL, 0, 0);
    }
    pthread_mutex_unlock(&mu);
    return r;
}

typedef struct name_args {
    int at1, at2, flags;
    const char *p1, *p2;
    mode_t mode;
} name_args;

static int
real_renameat2_(void *v)
{
    typedef int (*fn)(int, const char *, int, const char *, unsigned);
    REAL(renameat2, fn);
    name_args *a = v;
    if (a->flags == 0) {
        typedef int (*rfn)(int, const char *, int, const char *);
        REAL(renameat, rfn);
        return real_renameat(a->at1, a->p1, a->at2, a->p2);
    }
    return real_renameat2(a->at1, a->p1, a->at2, a->p2, (unsigned)a->flags);
}

int
renameat2(int at1, const char *p1, int at2, const char *p2, unsigned flags)
{
    name_args a = {at1, at2, (int)flags, p1, p2, 0};
    return name_op(PL_RENAME, at1, p1, at2, p2, real_renameat2_, &a);
}

int
renameat(int at1, const char *p1, int at2, const char *p2)
{
    return renameat2(at1, p1, at2, p2, 0);
}

int
rename(const char *p1, const char *p2)
{
    return renameat2(AT_FDCWD, p1, AT_FDCWD, p2, 0);
}

static int
real_unlinkat_(void *v)
{
    typedef int (*fn)(int, const char *, int);
    REAL(unlinkat, fn);
    name_args *a = v;
    return real_unlinkat(a->at1, a->p1, a->flags);
}

int
unlinkat(int at, const char *p, int flags)
{
    name_args a = {at, 0, flags, p, NULL, 0};
    uint8_t op = (flags & AT_REMOVEDIR) ? PL_RMDIR : PL_UNLINK;
    return name_op(op, at, p, 0, NULL, real_unlinkat_, &a);
}

int
unlink(const char *p)
{
    return unlinkat(AT_FDCWD, p, 0);
}

int
rmdir(const char *p)
{
    return unlinkat(AT_FDCWD, p, AT_REMOVEDIR);
}

int
remove(const char *p)
{
    struct stat sb;
    if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        return rmdir(p);
    }
    return unlink(p);
}

static int
real_mkdirat_(void *v)
{
    typedef int (*fn)(int, const char *, mode_t);
    REAL(mkdirat, fn);
    name_args *a = v;
    return real_mkdirat(a->at1, a->p1, a->mode);
}

int
mkdirat(int at, const char *p, mode_t mode)
{
    name_args a = {at, 0, 0, p, NULL, mode};
    return name_op(PL_MKDIR, at, p, 0, NULL, real_mkdirat_, &a);
}

int
mkdir(const char *p, mode_t mode)
{
    return mkdirat(AT_FDCWD, p, mode);
}
