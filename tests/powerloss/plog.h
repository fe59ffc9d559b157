/*
 * plog.h -- the journal format shared by the power-loss recorder
 * (recorder.c, the LD_PRELOAD interposer) and the image builder
 * (images.c): one fixed header per record, then the path, a second path
 * (rename only) and, for writes and acknowledgements, `len` bytes of data.
 */
#ifndef SPRIG_TESTS_PLOG_H
#define SPRIG_TESTS_PLOG_H

#include <stdbool.h>
#include <stdint.h>

enum {
    PL_WRITE = 'W',   /* ino, off, len + data */
    PL_SYNC = 'S',    /* fsync / fdatasync of ino (a file or a directory) */
    PL_SYNCALL = 'Y', /* sync() / syncfs() */
    PL_RANGE = 'G',   /* sync_file_range: recorded, not a sync */
    PL_TRUNC = 'T',   /* ino's size set to len */
    PL_ALLOC = 'F',   /* ino at least off + len long */
    PL_CREATE = 'C',  /* a new file ino at path */
    PL_RENAME = 'R',  /* path -> path2 */
    PL_UNLINK = 'U',  /* path */
    PL_MKDIR = 'M',   /* path */
    PL_RMDIR = 'D',   /* path */
    PL_ACK = 'A'      /* the workload acknowledged: data is its line */
};

#define PL_F_SYNCED 1 /* a write through an O_SYNC / O_DSYNC descriptor */

typedef struct pl_hdr {
    uint8_t op, flags;
    uint16_t plen, p2len, pad;
    uint64_t dev, ino, off, len;
} pl_hdr;

_Static_assert(sizeof(pl_hdr) == 40, "journal header is 40 bytes");

#endif /* SPRIG_TESTS_PLOG_H */
