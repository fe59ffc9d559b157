/*
 * images.h -- the crash-image builder of the power-loss harness: it reads
 * the journal recorder.c wrote and builds, for a cut point (a position in
 * the journal), a directory holding what a disk could hold had the power
 * failed there.  Test code only (tests/powerloss).
 *
 * The model.  Data: a write is on disk when an fsync/fdatasync of its file
 * (or sync/syncfs) was issued after it and before the cut, or when it went
 * through an O_SYNC/O_DSYNC descriptor; any other write before the cut
 * reached the disk or not, per 4 KiB block: a block holds its writes up to
 * some moment (the moment it was written back), drawn per block -- so the
 * blocks of one write, and the writes of different blocks, land in any
 * combination and order.  Metadata (creates, renames, unlinks, mkdir,
 * rmdir, truncations, allocations) is journaled in order, as ext4 and XFS
 * do: everything up to the last sync of any file or directory before the
 * cut is on disk, and of the later operations a prefix.  Variants: NONE
 * (nothing unsynced reached the disk), ALL (everything did: the image a
 * kill -9 leaves) and RANDOM (per block and for the metadata prefix, drawn
 * from a seed).  The recorded run starts on an empty directory.
 */
#ifndef SPRIG_TESTS_PL_IMAGES_H
#define SPRIG_TESTS_PL_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "plog.h"

typedef struct pl_rec {
    pl_hdr hdr;         /* copied out of the journal (aligned) */
    const pl_hdr *h;    /* &hdr */
    char *path, *path2; /* NUL-terminated copies */
    const uint8_t *data;
} pl_rec;

typedef struct pl_journal {
    uint8_t *base; /* the whole file, read into memory */
    size_t size;
    pl_rec *recs;
    size_t n;
} pl_journal;

/* PL_LIAR is the harness's self-test: a disk that ignores the syncs of
 * the command log's segments (wal/NNNNNNNN.seg) and keeps none of their
 * writes, otherwise as NONE.  Acknowledged writes must then be found
 * missing. */
typedef enum pl_variant {
    PL_NONE = 0,
    PL_ALL = 1,
    PL_RANDOM = 2,
    PL_LIAR = 3
} pl_variant;

/** Read the journal at `path` (a torn last record is ignored).  0, or -1
 *  with a message on stderr. */
int pl_journal_load(const char *path, pl_journal *j);
void pl_journal_free(pl_journal *j);

/** Build in `to` (created; must not exist) the image at cut `cut` (records
 *  [0, cut) happened) of the files the journal names below `from`.
 *  `seed` draws RANDOM's choices.  Returns the number of unsynced write
 *  pieces that were dropped (>= 0), or -1 on an I/O error. */
long pl_image_build(const pl_journal *j, size_t cut, pl_variant v,
                    uint64_t seed, const char *from, const char *to);

#endif /* SPRIG_TESTS_PL_IMAGES_H */
