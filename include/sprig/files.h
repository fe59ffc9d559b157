/*
 * files.h -- Sprig's file store (F16): files with paths in a directory
 * tree, kept as chunked documents of three collections of a database and
 * reached only through the public API of sprig.h, so it works the same on a
 * local storage and on a server (ws://, wss://).  Modelled on BonsaiDb's
 * bonsaidb-files.  The design (collections, versions, atomicity, garbage)
 * is in docs/architecture.md, "File store".
 *
 * Paths are absolute, '/'-separated: "/reports/2026/q3.pdf".  Components
 * are 1..255 bytes of UTF-8 without '/' or control characters and are not
 * "." or ".."; a path is at most SPRIG_FILES_PATH_MAX bytes.  Directories
 * exist implicitly while files are in them.
 *
 * Every write of one file (put, append, truncate, rename, delete,
 * metadata) is atomic: a reader sees the file before or after it, never
 * a mix, on every placement and across a crash of the writer.  Reads of
 * more than one transaction's worth check that the file did not change
 * between their pieces.
 */
#ifndef SPRIG_FILES_H
#define SPRIG_FILES_H

#include "sprig.h"

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest path, in bytes (the stored id adds one byte). */
#define SPRIG_FILES_PATH_MAX 250
/** Largest chunk size. */
#define SPRIG_FILES_CHUNK_MAX (4u * 1024u * 1024u)

/**
 * Add the file store's collections to a schema: a new heap schema named
 * `name` holding the collections of `base` (may be NULL) followed by
 * "<prefix>.files", "<prefix>.chunks" and "<prefix>.pending" (prefix NULL:
 * "files").  `base`'s view arrays are borrowed, so `base` must outlive the
 * result; everything else is copied.  Register the result with
 * sprig_storage_register_schema() and release it with
 * sprig_files_schema_free().  Errors: SPRIG_EINVAL (a bad prefix or name),
 * SPRIG_ENOMEM.  Any thread.
 */
SPRIG_API int sprig_files_schema_add(const sprig_schema_def *base,
                                     const char *name, const char *prefix,
                                     sprig_schema_def **out);
/** Free a schema from sprig_files_schema_add(); NULL is a no-op. */
SPRIG_API void sprig_files_schema_free(sprig_schema_def *s);

/** How a file store is opened. */
typedef struct sprig_files_options {
    /** The collections' prefix (default "files"). */
    const char *prefix;
    /** Bytes per chunk of new files (default 64 KiB, at most
     *  SPRIG_FILES_CHUNK_MAX).  Each file keeps the size it was created
     *  with. */
    uint32_t chunk_size;
    /** Most chunk bytes one transaction carries, and so the memory a
     *  stream uses (default 4 MiB; at least one chunk).  A remote
     *  placement's server must accept frames of this size (its default
     *  max_frame is 16 MiB). */
    size_t txn_bytes;
} sprig_files_options;

/** Fill `o` with the defaults. */
SPRIG_API void sprig_files_options_init(sprig_files_options *o);

typedef struct sprig_files sprig_files;

/**
 * A file store over database `db` (borrowed: it must stay open until
 * sprig_files_close()), whose schema must have the collections of
 * sprig_files_schema_add() for `o->prefix` (`o` NULL: the defaults).
 * Errors: SPRIG_EINVAL (bad options), SPRIG_ESCHEMA (the collections are
 * missing), SPRIG_ENOMEM, and those of sprig_count().  The handle may be
 * shared by any number of threads.
 */
SPRIG_API int sprig_files_open(sprig_db *db, const sprig_files_options *o,
                               sprig_files **out);
/** Release the handle (not the database).  NULL is a no-op. */
SPRIG_API void sprig_files_close(sprig_files *fs);

/** What a file is. */
typedef struct sprig_file_stat {
    uint64_t length;      /**< bytes */
    uint64_t created_ms;  /**< ms since the Unix epoch */
    uint64_t modified_ms; /**< last put, append, truncate or metadata */
    uint32_t chunk_size;
    uint64_t revision; /**< changes with every write of the file */
} sprig_file_stat;

/** Flags of sprig_files_put() and sprig_files_rename(). */
enum {
    /** put: fail with SPRIG_EEXIST if the file exists; rename: fail with
     *  SPRIG_EEXIST if the target exists (rename's default replaces). */
    SPRIG_FILES_EXCLUSIVE = 1
};

/**
 * Read the next bytes of a stream into `buf` (up to `cap`): return how
 * many (0 at the end), or a negative SPRIG_E* code to abort the write.
 */
typedef ssize_t (*sprig_files_source_fn)(void *udata, void *buf, size_t cap);
/** Take the next `len` bytes of a file being read; return 0, or a negative
 *  code to stop the read (which returns it). */
typedef int (*sprig_files_sink_fn)(void *udata, const void *data, size_t len);

/*
 * The functions below share these rules: `fs` and `path` are borrowed for
 * the call; any thread; errors besides those listed: SPRIG_EINVAL (a NULL
 * argument, a malformed path), SPRIG_ETOOBIG (a path over
 * SPRIG_FILES_PATH_MAX), SPRIG_ECORRUPT (a stored file is malformed),
 * SPRIG_ENOMEM, and those of the database calls (SPRIG_EIO, SPRIG_EFULL,
 * SPRIG_ECLOSED, SPRIG_ECONNECT, ...).
 */

/**
 * Create or replace the file at `path` with `data`, and `metadata` (user
 * JSON text, or NULL / empty for none; at most 64 KiB; a replaced file's
 * metadata is replaced too).  Atomic: readers see the old file or the new
 * one.  Up to `txn_bytes` goes in one transaction; more in several, under
 * a fresh version flipped in by the last.  Errors: SPRIG_EEXIST (with
 * SPRIG_FILES_EXCLUSIVE), SPRIG_ECONFLICT (the file kept changing).
 */
SPRIG_API int sprig_files_put(sprig_files *fs, const char *path,
                              sprig_bytes data, const sprig_bytes *metadata,
                              unsigned flags);
/** As sprig_files_put(), the contents read from `src` through a buffer of
 *  `txn_bytes`.  Also returns what `src` returns. */
SPRIG_API int sprig_files_put_stream(sprig_files *fs, const char *path,
                                     sprig_files_source_fn src, void *udata,
                                     const sprig_bytes *metadata,
                                     unsigned flags);

/**
 * Append `data` to the file, atomically.  Errors: SPRIG_ENOTFOUND (no such
 * file), SPRIG_ECONFLICT (the file kept changing, or -- for an append
 * larger than `txn_bytes` -- it changed while the append was written),
 * SPRIG_EBUSY (another append larger than `txn_bytes` is being written to
 * it; the lock of a writer not heard of for a minute -- it died -- is
 * taken over), SPRIG_ETOOBIG (the file would pass 2^48 bytes).
 */
SPRIG_API int sprig_files_append(sprig_files *fs, const char *path,
                                 sprig_bytes data);
/** As sprig_files_append(), the bytes read from `src` through a buffer of
 *  `txn_bytes`. */
SPRIG_API int sprig_files_append_stream(sprig_files *fs, const char *path,
                                        sprig_files_source_fn src, void *udata);

/**
 * Read up to `len` bytes at `offset` into `out` (its contents replaced;
 * the caller owns it).  Past the end gives fewer bytes, or none.  The bytes
 * come from one revision of the file.  Errors: SPRIG_ENOTFOUND,
 * SPRIG_ECONFLICT (the file kept changing while read).
 */
SPRIG_API int sprig_files_read(sprig_files *fs, const char *path,
                               uint64_t offset, size_t len, sprig_buf *out);
/**
 * Stream up to `len` bytes (UINT64_MAX: to the end) from `offset` to
 * `sink`, through a buffer of `txn_bytes`.  Every byte comes from one
 * revision of the file: if it changes before the read finishes, the read
 * stops with SPRIG_ECONFLICT.  `st` (may be NULL) receives the file's stat
 * at the start.  Errors: SPRIG_ENOTFOUND, SPRIG_ECONFLICT, what `sink`
 * returns.
 */
SPRIG_API int sprig_files_read_stream(sprig_files *fs, const char *path,
                                      uint64_t offset, uint64_t len,
                                      sprig_files_sink_fn sink, void *udata,
                                      sprig_file_stat *st);

/**
 * Set the file's length: shorter drops the tail, longer adds zero bytes.
 * Errors: SPRIG_ENOTFOUND, SPRIG_ECONFLICT, SPRIG_EBUSY (as append).
 */
SPRIG_API int sprig_files_truncate(sprig_files *fs, const char *path,
                                   uint64_t length);

/**
 * Move the file at `from` to `to` (the same path is a no-op), replacing a
 * file there unless SPRIG_FILES_EXCLUSIVE.  One transaction whatever the
 * size: the chunks stay where they are.  Errors: SPRIG_ENOTFOUND,
 * SPRIG_EEXIST, SPRIG_ECONFLICT.
 */
SPRIG_API int sprig_files_rename(sprig_files *fs, const char *from,
                                 const char *to, unsigned flags);

/** Delete the file (its chunks are collected after).  Errors:
 *  SPRIG_ENOTFOUND, SPRIG_ECONFLICT. */
SPRIG_API int sprig_files_delete(sprig_files *fs, const char *path);

/** The file's stat, and (when `metadata` is not NULL) its user metadata
 *  into `metadata` (contents replaced; empty if none).  Errors:
 *  SPRIG_ENOTFOUND. */
SPRIG_API int sprig_files_stat(sprig_files *fs, const char *path,
                               sprig_file_stat *st, sprig_buf *metadata);

/** Replace the file's user metadata (JSON text; NULL or empty: none).
 *  Errors: SPRIG_ENOTFOUND, SPRIG_ECONFLICT, SPRIG_ETOOBIG. */
SPRIG_API int sprig_files_set_metadata(sprig_files *fs, const char *path,
                                       const sprig_bytes *metadata);

/** A page of a directory listing. */
typedef struct sprig_file_list sprig_file_list;

/**
 * List directory `dir` ("/" for the root): its files, by name, then its
 * subdirectories, by name, each subdirectory named with a trailing '/'.
 * At most `limit` entries (0: 1000), after the entry named `after` (NULL:
 * from the start; pass the last name of the previous page to continue).
 * A directory with no files under it is an empty list, not an error.
 * `*out` is the caller's (sprig_file_list_free()).
 */
SPRIG_API int sprig_files_list(sprig_files *fs, const char *dir,
                               const char *after, uint32_t limit,
                               sprig_file_list **out);
SPRIG_API size_t sprig_file_list_count(const sprig_file_list *l);
/** Entry i's name (borrowed from the list; NULL past the end). */
SPRIG_API const char *sprig_file_list_name(const sprig_file_list *l, size_t i);
/** Whether entry i is a directory. */
SPRIG_API bool sprig_file_list_is_dir(const sprig_file_list *l, size_t i);
/** Entry i's stat (all zero for directories and past the end). */
SPRIG_API sprig_file_stat sprig_file_list_stat(const sprig_file_list *l,
                                               size_t i);
SPRIG_API void sprig_file_list_free(sprig_file_list *l);

/**
 * Collect garbage: chunks of replaced and deleted files a writer did not
 * get to remove (it crashed or lost its connection), and of large writes
 * not heard of for `min_age_ms` (each batch of a large write refreshes
 * its record; a writer still going when collected fails with
 * SPRIG_ECONFLICT), with what they wrote.  Writers collect
 * their own garbage, so this is needed only after failures.  `*collected`
 * (may be NULL) receives the number of chunks deleted.
 */
SPRIG_API int sprig_files_gc(sprig_files *fs, uint64_t min_age_ms,
                             uint64_t *collected);

#ifdef __cplusplus
}
#endif

#endif /* SPRIG_FILES_H */
