/*
 * files_int.h -- private header of src/files, the file store (F16): the
 * handle, the stored formats (file documents, chunk and pending ids) and
 * the helpers files.c, write.c and read.c share.  The design notes
 * (collections, versions, why every write is atomic) are in
 * docs/architecture.md, "File store"; in short:
 *
 *   <p>.files    natural id = the path's key (below) -> file document:
 *                "SPF1" version u64 length u64 created u64 modified u64
 *                chunk_size u32 (big-endian), then the user metadata
 *   <p>.chunks   natural id = version u64 BE, index u64 BE -> the bytes
 *                [index * chunk_size, +chunk_size) of that version
 *   <p>.pending  natural id = kind byte, version u64 BE -> last heard of
 *                (ms, refreshed by every batch) u64, path: 'W' a large put
 *                writing that version, 'A' a large append writing to it
 *                (its lock), 'G' a version to collect
 *
 * A path's key: each directory component followed by 0x01, then 0x00 and
 * the file's name ("/a/b/c" -> "a\1b\1\0c", as long as the path), so a
 * directory's files are one id range, its subdirectories' entries another,
 * and every subtree is contiguous.
 */
#ifndef SPRIG_FILES_INT_H
#define SPRIG_FILES_INT_H

#include "core/core.h"
#include "sprig/files.h"

#define FS_META_HEAD 40
#define FS_USER_META_MAX (64u * 1024u)
#define FS_LENGTH_MAX (1ull << 48)
#define FS_ATTEMPTS 32
#define FS_CHUNK_MIN 16u
/* A large write's pending record not refreshed for this long is stale:
 * its writer died (a batch refreshes it, every few seconds at worst). */
#define FS_STALE_MS 60000u

struct sprig_files {
    sprig_db *db;
    char c_files[SPRIG_NAME_MAX + 1];
    char c_chunks[SPRIG_NAME_MAX + 1];
    char c_pending[SPRIG_NAME_MAX + 1];
    uint32_t chunk_size;
    size_t txn_bytes; /* a multiple of chunk_size */
};

/* A decoded file document. */
typedef struct fs_meta {
    uint64_t version, length, created_ms, modified_ms;
    uint32_t chunk_size;
    sprig_bytes user; /* borrowed from the document */
} fs_meta;

/* A file document as read: its header, its decoded form, the document. */
typedef struct fs_file {
    sprig_header_buf hdr;
    fs_meta m;
    sprig_doc *doc;
} fs_file;

/* ---- files.c ----------------------------------------------------------- */

uint64_t sprig__fs_now_ms(void);
/* A fresh random version id (never 0). */
int sprig__fs_new_version(uint64_t *out);
/* The key of file `path` into `key` (room for SPRIG_FILES_PATH_MAX). */
int sprig__fs_path_key(const char *path, uint8_t *key, size_t *len);
/* The key prefix of directory `dir` ("/" -> empty). */
int sprig__fs_dir_key(const char *dir, uint8_t *key, size_t *len);
void sprig__fs_chunk_id(uint64_t version, uint64_t index, uint8_t id[16]);
void sprig__fs_pending_id(char kind, uint64_t version, uint8_t id[9]);
/* Encode a file document into `out` (replaced). */
int sprig__fs_meta_encode(const fs_meta *m, sprig_buf *out);
int sprig__fs_meta_decode(sprig_bytes b, fs_meta *m);
/* Read file `key`; SPRIG_ENOTFOUND (with `path` in the detail) if none.
 * Release with sprig__fs_file_clear(). */
int sprig__fs_file_get(sprig_files *fs, sprig_bytes key, const char *path,
                       fs_file *out);
void sprig__fs_file_clear(fs_file *f);
/* Add a pending record of `kind` for `version` to `t`. */
int sprig__fs_txn_pending(sprig_files *fs, sprig_txn *t, char kind,
                          uint64_t version, const char *path);
/* A pending record's contents for `path`, heard of now; returns its
 * length. */
size_t sprig__fs_pending_rec(const char *path,
                             uint8_t rec[8 + SPRIG_FILES_PATH_MAX]);
/* Whether the pending record (kind, version) is gone or was stale and is
 * now deleted (so it may be taken). */
bool sprig__fs_pending_stale(sprig_files *fs, char kind, uint64_t version);
void sprig__fs_header_copy(sprig_header h, sprig_header_buf *out);
/* Insert a pending record of `kind` for `version` now; `out` gets its
 * header.  SPRIG_ECONFLICT if it exists. */
int sprig__fs_pending_insert(sprig_files *fs, char kind, uint64_t version,
                             const char *path, sprig_header_buf *out);
/* Delete every chunk of `version` with index >= `from`; when `guard` is
 * given each transaction also checks that file document (and stops
 * quietly once it changed).  `*n` (may be NULL) counts the chunks. */
int sprig__fs_drop_chunks(sprig_files *fs, uint64_t version, uint64_t from,
                          const sprig_header *guard_hdr, uint64_t *n);
/* Drop the chunks of file `f` past its length, if the file is unchanged;
 * returns `rc` with the thread's error detail kept. */
int sprig__fs_drop_tail(sprig_files *fs, const fs_file *f, int rc);
/* Collect `version`: its chunks, then its 'G' record. */
int sprig__fs_collect(sprig_files *fs, uint64_t version, uint64_t *n);
/* Apply `t`; SPRIG_ENOTFOUND (a document it expected is gone) becomes
 * SPRIG_ECONFLICT: the file changed under the write, which may retry. */
int sprig__fs_apply(sprig_files *fs, const sprig_txn *t);

#endif
