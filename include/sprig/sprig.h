/*
 * sprig.h -- the public C API of Sprig, a document database.
 *
 * This header is the whole contract for the embedded engine (access models
 * M1 and M2): errors, bytes and buffers, the order-preserving key encoding,
 * schema definitions, storages and databases, documents and transactions.
 * Every function taking a `sprig_db *` or `sprig_storage *` works the same
 * whether the handle is local or, later, remote: the handles dispatch through
 * an operations table (see docs/architecture.md).
 *
 * Conventions that hold for every function below unless its comment says
 * otherwise:
 *  - The return value is 0 (SPRIG_OK) or a negative SPRIG_E* code, and
 *    sprig_errmsg() then gives a sentence naming the problem.
 *  - Inputs are borrowed for the duration of the call and copied when kept.
 *  - Every object returned through an `out` parameter is owned by the caller
 *    and released with its matching `_free`/`_close`; `_free(NULL)` is a
 *    no-op.  On failure, `*out` is left NULL (or zeroed).
 *  - Handles (`sprig_storage`, `sprig_db`) may be used from any number of
 *    threads at once.  Result objects (lists, documents, transactions under
 *    construction) belong to one thread at a time.
 */
#ifndef SPRIG_SPRIG_H
#define SPRIG_SPRIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SPRIG_BUILDING) && defined(__GNUC__)
#define SPRIG_API __attribute__((visibility("default")))
#else
#define SPRIG_API
#endif

#define SPRIG_VERSION_MAJOR 0
#define SPRIG_VERSION_MINOR 1
#define SPRIG_VERSION_PATCH 0
#define SPRIG_VERSION_STRING "0.1.0"

/** The library's version string, e.g. "0.1.0". */
SPRIG_API const char *sprig_version(void);

/* ======================================================================
 * Errors
 * ====================================================================== */

/** Result codes.  0 is success; every failure is negative. */
enum {
    SPRIG_OK = 0,
    SPRIG_ENOTFOUND = -1,  /**< no such document, database, key, ...    */
    SPRIG_ECONFLICT = -2,  /**< a revision or existence check failed    */
    SPRIG_EEXIST = -3,     /**< the thing to create exists already      */
    SPRIG_EINVAL = -4,     /**< an argument is malformed                */
    SPRIG_ESCHEMA = -5,    /**< unknown schema/collection, or mismatch  */
    SPRIG_EUNIQUE = -6,    /**< a unique view saw a duplicate key       */
    SPRIG_ETOOBIG = -7,    /**< a key, id or value is over its limit    */
    SPRIG_ENOMEM = -8,     /**< out of memory                           */
    SPRIG_EIO = -9,        /**< the operating system refused I/O        */
    SPRIG_EFULL = -10,     /**< the disk or the size limit is full      */
    SPRIG_ECORRUPT = -11,  /**< stored or received data is malformed    */
    SPRIG_EPERM = -12,     /**< permission denied                       */
    SPRIG_EAUTH = -13,     /**< authentication failed                   */
    SPRIG_EPROTO = -14,    /**< protocol violation                      */
    SPRIG_ECLOSED = -15,   /**< the handle or connection was closed     */
    SPRIG_ETIMEDOUT = -16, /**< the deadline passed                     */
    SPRIG_ECONNECT = -17,  /**< could not connect                       */
    SPRIG_EBUSY = -18,     /**< in use by another process or handle     */
    SPRIG_ENOTLEADER = -19 /**< cluster: this node is not the leader    */
};

/** A short constant name for a code ("not found"); never NULL. */
SPRIG_API const char *sprig_strerror(int rc);

/**
 * The detail of the last failure on the calling thread, e.g.
 * "collection 'x' is not in schema 'y'".  Valid until the next Sprig call on
 * this thread; meaningful only right after a call returned a negative code.
 * Never NULL.
 */
SPRIG_API const char *sprig_errmsg(void);

/* ======================================================================
 * Memory
 * ====================================================================== */

/**
 * Replace the allocator used for every allocation Sprig makes.  Call before
 * any other Sprig function; not thread-safe.  All four must be given.
 * Returns SPRIG_EINVAL if one is NULL.
 */
SPRIG_API int sprig_replace_allocator(void *(*malloc_fn)(size_t),
                                      void *(*realloc_fn)(void *, size_t),
                                      void *(*calloc_fn)(size_t, size_t),
                                      void (*free_fn)(void *));

/* ======================================================================
 * Bytes and buffers
 * ====================================================================== */

/** Borrowed bytes: the caller keeps ownership. */
typedef struct sprig_bytes {
    const void *data;
    size_t len;
} sprig_bytes;

/** An owned, growable buffer.  Initialise with {0}; release with
 *  sprig_buf_free(). */
typedef struct sprig_buf {
    void *data;
    size_t len, cap;
} sprig_buf;

/** The bytes of a NUL-terminated string (without the NUL). */
SPRIG_API sprig_bytes sprig_str(const char *s);
/** Borrowed view of a buffer's contents. */
SPRIG_API sprig_bytes sprig_buf_bytes(const sprig_buf *b);
/** Append bytes; SPRIG_ENOMEM on failure (the buffer is unchanged). */
SPRIG_API int sprig_buf_append(sprig_buf *b, const void *data, size_t len);
/** Release the memory and reset to {0}.  NULL is a no-op. */
SPRIG_API void sprig_buf_free(sprig_buf *b);

/* ======================================================================
 * Keys: an order-preserving encoding
 *
 * Document ids and (later) view keys are byte strings compared with
 * memcmp().  These encoders turn typed values into bytes whose memcmp order
 * is the natural order of the values.
 *
 * Scalar keys (untagged, fixed width for numbers):
 *   u64  8 bytes big-endian
 *   i64  8 bytes big-endian with the sign bit flipped (negatives first)
 *   f64  8 bytes: IEEE-754 bits, sign flipped for positives, all bits
 *        inverted for negatives (-inf < ... < -0 < +0 < ... < +inf; NaN
 *        sorts last)
 *   str, bytes  the raw bytes
 *
 * Tuple keys (self-describing: each element has a type tag, so a reader can
 * decode them without knowing the types).  Elements compare first by tag,
 * in this order: null < false < true < integers < floats < strings < bytes;
 * integers added as i64 or u64 compare by value with each other.  Strings
 * and bytes are escaped (0x00 -> 0x00 0xFF) and terminated by 0x00, so a
 * shorter element sorts before a longer one it prefixes.
 * ====================================================================== */

/** Longest encoded document id, in bytes. */
#define SPRIG_ID_MAX 255
/** Longest encoded view key, in bytes. */
#define SPRIG_KEY_MAX 400

/** Writes 8 bytes into out. */
SPRIG_API void sprig_key_u64(uint64_t v, uint8_t out[8]);
SPRIG_API void sprig_key_i64(int64_t v, uint8_t out[8]);
SPRIG_API void sprig_key_f64(double v, uint8_t out[8]);
/** Decoders: SPRIG_ECORRUPT unless `key` is exactly 8 bytes. */
SPRIG_API int sprig_key_decode_u64(sprig_bytes key, uint64_t *out);
SPRIG_API int sprig_key_decode_i64(sprig_bytes key, int64_t *out);
SPRIG_API int sprig_key_decode_f64(sprig_bytes key, double *out);

/**
 * The id the database gives the n-th pushed document: sprig_key_u64(n).
 * Returns borrowed bytes pointing into `storage`, which must outlive them.
 */
SPRIG_API sprig_bytes sprig_id_u64(uint64_t n, uint8_t storage[8]);

/** Kinds of tuple elements, in their sort order. */
typedef enum sprig_key_kind {
    SPRIG_KEY_NULL = 0x01,
    SPRIG_KEY_FALSE = 0x02,
    SPRIG_KEY_TRUE = 0x03,
    SPRIG_KEY_NEGINT = 0x10, /**< an integer < 0 (decoded as i64)  */
    SPRIG_KEY_POSINT = 0x11, /**< an integer >= 0 (decoded as u64) */
    SPRIG_KEY_FLOAT = 0x20,
    SPRIG_KEY_STRING = 0x30,
    SPRIG_KEY_BYTES = 0x31
} sprig_key_kind;

/** A tuple key under construction; append elements, then take the bytes.
 *  Initialise with {0}.  Every add returns SPRIG_ENOMEM on failure. */
typedef struct sprig_key_builder {
    sprig_buf buf;
} sprig_key_builder;

SPRIG_API int sprig_key_add_null(sprig_key_builder *kb);
SPRIG_API int sprig_key_add_bool(sprig_key_builder *kb, bool v);
SPRIG_API int sprig_key_add_u64(sprig_key_builder *kb, uint64_t v);
SPRIG_API int sprig_key_add_i64(sprig_key_builder *kb, int64_t v);
SPRIG_API int sprig_key_add_f64(sprig_key_builder *kb, double v);
SPRIG_API int sprig_key_add_str(sprig_key_builder *kb, const char *s);
SPRIG_API int sprig_key_add_bytes(sprig_key_builder *kb, sprig_bytes v);
/** The encoded tuple so far (borrowed from the builder). */
SPRIG_API sprig_bytes sprig_key_bytes(const sprig_key_builder *kb);
/** Release the builder's memory. */
SPRIG_API void sprig_key_builder_free(sprig_key_builder *kb);

/** One decoded tuple element.  `bytes` points into the reader's scratch
 *  buffer and is valid until the next sprig_key_next() or _free. */
typedef struct sprig_key_elem {
    sprig_key_kind kind;
    union {
        uint64_t u64; /* POSINT */
        int64_t i64;  /* NEGINT */
        double f64;   /* FLOAT */
    } num;
    sprig_bytes bytes; /* STRING, BYTES (unescaped) */
} sprig_key_elem;

typedef struct sprig_key_reader {
    sprig_bytes key;
    size_t pos;
    sprig_buf scratch;
} sprig_key_reader;

/** Start reading a tuple key (borrowed: must outlive the reader). */
SPRIG_API void sprig_key_reader_init(sprig_key_reader *r, sprig_bytes key);
/**
 * Decode the next element.  Returns 1 when an element was read, 0 at the
 * end of the key, SPRIG_ECORRUPT for malformed bytes, SPRIG_ENOMEM.
 */
SPRIG_API int sprig_key_next(sprig_key_reader *r, sprig_key_elem *out);
SPRIG_API void sprig_key_reader_free(sprig_key_reader *r);

/* ======================================================================
 * Schemas
 *
 * A schema is a named set of collections, declared as static const structs
 * and registered with a storage.  Registration copies the definition and
 * records its collections in the storage, so tools (the `sprig` CLI) can
 * open a database without the program's code.
 * ====================================================================== */

/** How a collection's ids are made. */
typedef enum sprig_id_kind {
    SPRIG_ID_U64 = 0,    /**< sprig_insert(NULL id) pushes the next u64 id */
    SPRIG_ID_NATURAL = 1 /**< the caller always names the id             */
} sprig_id_kind;

typedef struct sprig_collection_def {
    /** "authority.name" or "name": [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 64
     *  bytes. */
    const char *name;
    sprig_id_kind id_kind;
    unsigned flags; /**< reserved, 0 */
} sprig_collection_def;

typedef struct sprig_schema_def {
    const char *name; /**< same rules as collection names */
    const sprig_collection_def *collections;
    size_t n_collections;
} sprig_schema_def;

/* ======================================================================
 * Storages and databases (M1, M2)
 * ====================================================================== */

typedef struct sprig_storage sprig_storage;
typedef struct sprig_db sprig_db;

/** How much a commit waits for the disk. */
typedef enum sprig_durability {
    /** fsync data and meta on every commit: an acknowledged write survives
     *  a crash or power loss.  The default. */
    SPRIG_DURABILITY_FULL = 0,
    /** one fsync per commit: a crash may lose the last commit, never
     *  corrupts. */
    SPRIG_DURABILITY_NORMAL = 1,
    /** no fsync: the OS writes back when it likes; a process crash loses
     *  nothing, a power loss may lose recent commits. */
    SPRIG_DURABILITY_NONE = 2
} sprig_durability;

typedef struct sprig_storage_options {
    /** Directory of the storage; created if missing.  Ignored when
     *  memory_only. */
    const char *path;
    /** Keep everything in memory (a private temporary directory on tmpfs,
     *  removed at close).  For tests and caches. */
    bool memory_only;
    sprig_durability durability;
    /** First map size of each database file in bytes (0: 64 MiB).  The map
     *  grows by doubling when full, invisibly to callers. */
    uint64_t initial_map_size;
    /** Largest size a database file may grow to (0: no limit but the
     *  disk's).  Past it, writes fail with SPRIG_EFULL. */
    uint64_t max_map_size;
} sprig_storage_options;

/** Fill `o` with defaults: no path, on disk, full durability. */
SPRIG_API void sprig_storage_options_init(sprig_storage_options *o);

/**
 * Open (creating if needed) the storage in `o->path`.  One process at a
 * time may have a storage open: a second open, from this process or
 * another, fails with SPRIG_EBUSY.  Directories of databases whose creation
 * or deletion a crash interrupted are cleaned up here.
 *
 * Errors: SPRIG_EINVAL (no path), SPRIG_EBUSY, SPRIG_EIO, SPRIG_ECORRUPT,
 * SPRIG_ENOMEM.
 */
SPRIG_API int sprig_storage_open(const sprig_storage_options *o,
                                 sprig_storage **out);

/**
 * Close a storage.  Database handles taken from it must be closed first;
 * remaining ones are closed here and must not be used afterwards.
 * NULL is a no-op.
 */
SPRIG_API void sprig_storage_close(sprig_storage *st);

/**
 * Register a schema so databases can be created with it.  The definition is
 * copied.  Registering a name again replaces the definition; collections
 * may be added, never removed from existing data.
 * Errors: SPRIG_EINVAL (bad names, duplicate collections), SPRIG_EIO.
 */
SPRIG_API int sprig_storage_register_schema(sprig_storage *st,
                                            const sprig_schema_def *schema);

/**
 * Create database `name` with registered schema `schema`.  Names match
 * [A-Za-z0-9_][A-Za-z0-9._-]* and are at most 64 bytes.
 * Errors: SPRIG_EINVAL (bad name), SPRIG_ESCHEMA (schema not registered, or
 * with only_if_needed an existing database of another schema), SPRIG_EEXIST
 * (exists and !only_if_needed), SPRIG_EIO, SPRIG_EFULL.
 */
SPRIG_API int sprig_storage_create_database(sprig_storage *st, const char *name,
                                            const char *schema,
                                            bool only_if_needed);

/**
 * Delete database `name` and all its data.  Open handles to it fail with
 * SPRIG_ENOTFOUND from then on; its files are removed once the last handle
 * is closed.  Errors: SPRIG_ENOTFOUND, SPRIG_EINVAL, SPRIG_EIO.
 */
SPRIG_API int sprig_storage_delete_database(sprig_storage *st,
                                            const char *name);

/** A list of databases: names and schema names, sorted by name. */
typedef struct sprig_database_list sprig_database_list;
SPRIG_API int sprig_storage_list_databases(sprig_storage *st,
                                           sprig_database_list **out);
SPRIG_API size_t sprig_database_list_count(const sprig_database_list *l);
/** Name and schema of entry i (borrowed from the list; NULL past the end). */
SPRIG_API const char *sprig_database_list_name(const sprig_database_list *l,
                                               size_t i);
SPRIG_API const char *sprig_database_list_schema(const sprig_database_list *l,
                                                 size_t i);
SPRIG_API void sprig_database_list_free(sprig_database_list *l);

/** A list of known schemas and their collections, sorted by name. */
typedef struct sprig_schema_list sprig_schema_list;
SPRIG_API int sprig_storage_list_schemas(sprig_storage *st,
                                         sprig_schema_list **out);
SPRIG_API size_t sprig_schema_list_count(const sprig_schema_list *l);
/** Schema i (borrowed from the list, valid until it is freed). */
SPRIG_API const sprig_schema_def *
sprig_schema_list_get(const sprig_schema_list *l, size_t i);
SPRIG_API void sprig_schema_list_free(sprig_schema_list *l);

/**
 * A handle on database `name`.  Handles are cheap and thread-safe; close
 * each with sprig_db_close().  Errors: SPRIG_ENOTFOUND, SPRIG_EINVAL,
 * SPRIG_ESCHEMA (its schema is no longer registered), SPRIG_EIO.
 */
SPRIG_API int sprig_storage_database(sprig_storage *st, const char *name,
                                     sprig_db **out);

/**
 * Model M1: open a single-database storage at directory `path`, register
 * `schema`, create its database "default" if needed, and return a handle to
 * it.  Closing the handle closes the storage.  Errors: as
 * sprig_storage_open(), plus SPRIG_ESCHEMA if the directory holds a database
 * of another schema.
 */
SPRIG_API int sprig_db_open_local(const char *path,
                                  const sprig_schema_def *schema,
                                  sprig_db **out);

/** Close a database handle.  NULL is a no-op. */
SPRIG_API void sprig_db_close(sprig_db *db);

/** The database's name (borrowed, valid while the handle is open). */
SPRIG_API const char *sprig_db_name(const sprig_db *db);

/* ======================================================================
 * Documents (F2, F3)
 *
 * A document has a header (id + revision) and contents (opaque bytes).  The
 * revision has a number, starting at 1 and increasing by one per change,
 * and a 16-byte BLAKE2b hash of the contents.  Writing contents identical to
 * the stored ones makes no new revision.
 * ====================================================================== */

/** A document header (borrowed id). */
typedef struct sprig_header {
    sprig_bytes id;
    uint64_t revision;
    uint8_t hash[16];
} sprig_header;

/** An owned header, for out-parameters: no allocation needed. */
typedef struct sprig_header_buf {
    uint8_t id[SPRIG_ID_MAX];
    uint32_t id_len;
    uint64_t revision;
    uint8_t hash[16];
} sprig_header_buf;

/** A header viewing `hb` (borrowed from it). */
SPRIG_API sprig_header sprig_header_of(const sprig_header_buf *hb);

typedef struct sprig_doc sprig_doc;
/** The document's header, borrowed from the document. */
SPRIG_API sprig_header sprig_doc_header(const sprig_doc *doc);
/** The document's contents, borrowed from the document. */
SPRIG_API sprig_bytes sprig_doc_contents(const sprig_doc *doc);
SPRIG_API void sprig_doc_free(sprig_doc *doc);

typedef struct sprig_doc_list sprig_doc_list;
SPRIG_API size_t sprig_doc_list_count(const sprig_doc_list *l);
/** Document i, borrowed from the list; NULL past the end. */
SPRIG_API const sprig_doc *sprig_doc_list_get(const sprig_doc_list *l,
                                              size_t i);
SPRIG_API void sprig_doc_list_free(sprig_doc_list *l);

typedef struct sprig_header_list sprig_header_list;
SPRIG_API size_t sprig_header_list_count(const sprig_header_list *l);
/** Header i, borrowed from the list; an all-zero header past the end. */
SPRIG_API sprig_header sprig_header_list_get(const sprig_header_list *l,
                                             size_t i);
SPRIG_API void sprig_header_list_free(sprig_header_list *l);

/** Largest document contents, in bytes. */
#define SPRIG_CONTENTS_MAX (256u * 1024u * 1024u)

/**
 * Insert a new document.  `id` NULL pushes: the database assigns the next
 * u64 id (collections of SPRIG_ID_U64 only).  `out` (may be NULL) receives
 * the new header.
 * Errors: SPRIG_ESCHEMA (unknown collection), SPRIG_EINVAL (push into a
 * natural-id collection, empty id), SPRIG_ETOOBIG (id over SPRIG_ID_MAX,
 * contents over SPRIG_CONTENTS_MAX), SPRIG_ECONFLICT (the id exists; `out`
 * then holds the stored header), SPRIG_EFULL, SPRIG_EIO.
 */
SPRIG_API int sprig_insert(sprig_db *db, const char *collection,
                           const sprig_bytes *id, sprig_bytes contents,
                           sprig_header_buf *out);

/** Insert or replace the document `id` whatever its revision (upsert).
 *  Errors: as sprig_insert() but never SPRIG_ECONFLICT. */
SPRIG_API int sprig_overwrite(sprig_db *db, const char *collection,
                              sprig_bytes id, sprig_bytes contents,
                              sprig_header_buf *out);

/**
 * Replace a document if its stored revision is `expected->revision`.
 * Errors: SPRIG_ENOTFOUND, SPRIG_ECONFLICT (stored revision differs; `out`
 * then holds the stored header), and those of sprig_insert().
 */
SPRIG_API int sprig_update(sprig_db *db, const char *collection,
                           const sprig_header *expected, sprig_bytes contents,
                           sprig_header_buf *out);

/** Delete a document if its stored revision is `expected->revision`.
 *  Errors: SPRIG_ENOTFOUND, SPRIG_ECONFLICT, SPRIG_ESCHEMA, SPRIG_EIO. */
SPRIG_API int sprig_delete(sprig_db *db, const char *collection,
                           const sprig_header *expected);

/** Read one document.  Errors: SPRIG_ENOTFOUND, SPRIG_ESCHEMA, SPRIG_EIO. */
SPRIG_API int sprig_get(sprig_db *db, const char *collection, sprig_bytes id,
                        sprig_doc **out);

/** Read several documents in one consistent snapshot; missing ids are
 *  skipped, the others come in the order asked. */
SPRIG_API int sprig_get_multiple(sprig_db *db, const char *collection,
                                 const sprig_bytes *ids, size_t n,
                                 sprig_doc_list **out);

/** One end of a key range. */
typedef enum sprig_bound_kind {
    SPRIG_UNBOUNDED = 0,
    SPRIG_INCLUDED = 1,
    SPRIG_EXCLUDED = 2
} sprig_bound_kind;

typedef struct sprig_bound {
    sprig_bound_kind kind;
    sprig_bytes key;
} sprig_bound;

/** A range of keys; all zero (or a NULL pointer) means everything. */
typedef struct sprig_range {
    sprig_bound start, end;
} sprig_range;

typedef enum sprig_order { SPRIG_ASC = 0, SPRIG_DESC = 1 } sprig_order;

/**
 * Documents whose ids are in range `r` (NULL: all), in id order, at most
 * `limit` of them (0: no limit).
 */
SPRIG_API int sprig_list(sprig_db *db, const char *collection,
                         const sprig_range *r, sprig_order order,
                         uint32_t limit, sprig_doc_list **out);

/** As sprig_list(), headers only. */
SPRIG_API int sprig_list_headers(sprig_db *db, const char *collection,
                                 const sprig_range *r, sprig_order order,
                                 uint32_t limit, sprig_header_list **out);

/** How many documents have ids in range `r` (NULL: all). */
SPRIG_API int sprig_count(sprig_db *db, const char *collection,
                          const sprig_range *r, uint64_t *out);

/* ======================================================================
 * Transactions (F5)
 *
 * A transaction is a list of operations over any collections of one
 * database, applied all or nothing.  Each successful transaction gets an
 * id (1, 2, 3, ...) and a log record naming the documents it changed.
 * ====================================================================== */

typedef struct sprig_txn sprig_txn;

/** A new, empty transaction.  Errors: SPRIG_ENOMEM. */
SPRIG_API int sprig_txn_new(sprig_txn **out);
SPRIG_API void sprig_txn_free(sprig_txn *t);
/** Number of operations added so far. */
SPRIG_API size_t sprig_txn_count(const sprig_txn *t);

/* Adding operations copies every argument.  Errors: SPRIG_EINVAL (NULL or
 * empty collection), SPRIG_ETOOBIG (id or contents over the limit),
 * SPRIG_ENOMEM.  Collections are checked against the schema at apply. */

/** Insert; `id` NULL pushes a u64 id. */
SPRIG_API int sprig_txn_insert(sprig_txn *t, const char *collection,
                               const sprig_bytes *id, sprig_bytes contents);
/** Update if the stored revision is `expected->revision`. */
SPRIG_API int sprig_txn_update(sprig_txn *t, const char *collection,
                               const sprig_header *expected,
                               sprig_bytes contents);
/** Insert or replace. */
SPRIG_API int sprig_txn_overwrite(sprig_txn *t, const char *collection,
                                  sprig_bytes id, sprig_bytes contents);
/** Delete if the stored revision is `expected->revision`. */
SPRIG_API int sprig_txn_delete(sprig_txn *t, const char *collection,
                               const sprig_header *expected);
/** Fail the transaction unless document `id` exists and, when `expected`
 *  is given, has revision `expected->revision`.  Changes nothing. */
SPRIG_API int sprig_txn_check(sprig_txn *t, const char *collection,
                              sprig_bytes id, const sprig_header *expected);

/** What an applied (or refused) transaction did. */
typedef struct sprig_txn_result sprig_txn_result;

/**
 * Apply `t` atomically.  On success every operation took effect and
 * `*out` (if `out` is not NULL) tells the transaction id and each
 * operation's resulting header.  On SPRIG_ECONFLICT, SPRIG_ENOTFOUND,
 * SPRIG_ESCHEMA, SPRIG_EINVAL or SPRIG_ETOOBIG nothing took effect and, if
 * `out` is not NULL, `*out` names the failed operation (and for conflicts
 * the stored header).  `t` is not consumed and may be applied again.
 * Other errors: SPRIG_EFULL, SPRIG_EIO, SPRIG_ENOMEM (then `*out` is NULL).
 */
SPRIG_API int sprig_txn_apply(sprig_db *db, const sprig_txn *t,
                              sprig_txn_result **out);

/** The transaction id (0 if the transaction failed). */
SPRIG_API uint64_t sprig_txn_result_id(const sprig_txn_result *r);
/** Number of operations. */
SPRIG_API size_t sprig_txn_result_count(const sprig_txn_result *r);
/** Header of operation i after the transaction (for deletes: the deleted
 *  revision; for checks: the stored one). */
SPRIG_API sprig_header sprig_txn_result_header(const sprig_txn_result *r,
                                               size_t i);
/** Index of the operation that failed, or -1. */
SPRIG_API long sprig_txn_result_failed(const sprig_txn_result *r);
/** Error code of the failed operation (0 if none). */
SPRIG_API int sprig_txn_result_error(const sprig_txn_result *r);
/** For a conflict: the stored header the failed operation met. */
SPRIG_API int sprig_txn_result_conflict(const sprig_txn_result *r,
                                        sprig_header *out);
SPRIG_API void sprig_txn_result_free(sprig_txn_result *r);

/** The log: executed transactions with the documents they changed. */
typedef struct sprig_txn_log sprig_txn_log;

/**
 * Executed transactions with ids >= `since`, oldest first, at most `limit`
 * (0: up to 1000).
 */
SPRIG_API int sprig_list_executed_transactions(sprig_db *db, uint64_t since,
                                               uint32_t limit,
                                               sprig_txn_log **out);
SPRIG_API size_t sprig_txn_log_count(const sprig_txn_log *l);
/** Id and commit time (ms since the Unix epoch) of entry i. */
SPRIG_API uint64_t sprig_txn_log_id(const sprig_txn_log *l, size_t i);
SPRIG_API uint64_t sprig_txn_log_timestamp_ms(const sprig_txn_log *l, size_t i);
/** Number of documents entry i changed. */
SPRIG_API size_t sprig_txn_log_changes(const sprig_txn_log *l, size_t i);

/** One changed document, borrowed from the log. */
typedef struct sprig_change {
    const char *collection;
    sprig_bytes id;
    uint64_t revision; /**< the new revision, or the deleted one */
    bool deleted;
} sprig_change;

/** Change j of entry i; SPRIG_EINVAL out of range. */
SPRIG_API int sprig_txn_log_change(const sprig_txn_log *l, size_t i, size_t j,
                                   sprig_change *out);
SPRIG_API void sprig_txn_log_free(sprig_txn_log *l);

/** Id of the last executed transaction, 0 when there is none. */
SPRIG_API int sprig_last_transaction_id(sprig_db *db, uint64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* SPRIG_SPRIG_H */
