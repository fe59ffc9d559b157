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
    SPRIG_ENOTFOUND = -1,   /**< no such document, database, key, ...    */
    SPRIG_ECONFLICT = -2,   /**< a revision or existence check failed    */
    SPRIG_EEXIST = -3,      /**< the thing to create exists already      */
    SPRIG_EINVAL = -4,      /**< an argument is malformed                */
    SPRIG_ESCHEMA = -5,     /**< unknown schema/collection, or mismatch  */
    SPRIG_EUNIQUE = -6,     /**< a unique view saw a duplicate key       */
    SPRIG_ETOOBIG = -7,     /**< a key, id or value is over its limit    */
    SPRIG_ENOMEM = -8,      /**< out of memory                           */
    SPRIG_EIO = -9,         /**< the operating system refused I/O        */
    SPRIG_EFULL = -10,      /**< the disk or the size limit is full      */
    SPRIG_ECORRUPT = -11,   /**< stored or received data is malformed    */
    SPRIG_EPERM = -12,      /**< permission denied                       */
    SPRIG_EAUTH = -13,      /**< authentication failed                   */
    SPRIG_EPROTO = -14,     /**< protocol violation                      */
    SPRIG_ECLOSED = -15,    /**< the handle or connection was closed     */
    SPRIG_ETIMEDOUT = -16,  /**< the deadline passed                     */
    SPRIG_ECONNECT = -17,   /**< could not connect                       */
    SPRIG_EBUSY = -18,      /**< in use by another process or handle     */
    SPRIG_ENOTLEADER = -19, /**< cluster: this node is not the leader   */
    SPRIG_ERANGE = -20      /**< a number would leave its type's range  */
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

/* The structured detail of a failure, sprig_error_info(), is declared
 * after the document header type, under "Documents". */

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
 *  sprig_buf_clear(). */
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
SPRIG_API void sprig_buf_clear(sprig_buf *b);

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
 *        sorts last: every NaN, whatever its sign and payload, is encoded
 *        as the one positive quiet NaN)
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
SPRIG_API void sprig_key_builder_clear(sprig_key_builder *kb);

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
SPRIG_API void sprig_key_reader_clear(sprig_key_reader *r);

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

/* ---- views (F4): map/reduce indexes declared with a collection ---------- */

typedef struct sprig_doc sprig_doc;
/** Where a map function sends its (key, value) pairs. */
typedef struct sprig_emitter sprig_emitter;

/**
 * Emit one pair from a map function.  Key and value are copied.  The key
 * should be an encoded key (sprig_key_*) so views sort by it; it is 1 to
 * SPRIG_KEY_MAX bytes.  View keys are never empty: for a "unit" key (one
 * group holding every document) emit a constant, such as the tuple key of
 * null (sprig_key_add_null()).
 * Errors: SPRIG_EINVAL (an empty or NULL key, a NULL value with a length),
 * SPRIG_ETOOBIG (key over SPRIG_KEY_MAX, value over SPRIG_CONTENTS_MAX),
 * SPRIG_ENOMEM.  A refused pair is not recorded, and the failure stands
 * even if the map function goes on and returns 0: for an eager or unique
 * view the write fails with it.  A lazy view cannot fail the write, and a
 * refused pair (EINVAL, ETOOBIG) would be refused again at every query:
 * there the document is indexed with the pairs that were accepted, so the
 * view stays queryable (only other failures, such as SPRIG_ENOMEM or the
 * map's own codes, fail the query and leave the document pending).
 */
SPRIG_API int sprig_emit(sprig_emitter *e, sprig_bytes key, sprig_bytes value);

/**
 * Map: emit zero or more pairs for `doc` (borrowed for the call; its
 * header and contents are those being written).  Runs inside the database's
 * write transaction -- on the writing thread for eager and unique views,
 * on whichever thread brings a lazy view up to date -- so it must be quick,
 * must not call Sprig functions on the same database (deadlock), and must
 * give the same pairs for the same document every time.  Return 0, or a
 * negative code to fail: for an eager or unique view the transaction that
 * wrote the document fails with it; for a lazy view the query that indexes
 * the document does (and the document stays pending).
 */
typedef int (*sprig_map_fn)(const sprig_doc *doc, sprig_emitter *e,
                            void *udata);
/**
 * Reduce `n` values into `out` (empty on entry; the function appends).
 * Without `rereduce`, `values` are the values mapped to one key, in source
 * id order; with it, they are earlier outputs of this function (per-key
 * results being combined over a range, or a stored result combined with
 * new values), so the function must be associative and commutative over
 * its outputs.  A reduce over no mappings at all calls it once with n = 0
 * and rereduce false.  Called inside write transactions (to keep per-key
 * results current) and read snapshots: same rules as sprig_map_fn.  Return
 * 0 or a negative code, which fails the write or query that called it.
 */
typedef int (*sprig_reduce_fn)(const sprig_bytes *values, size_t n,
                               bool rereduce, sprig_buf *out, void *udata);

typedef enum sprig_view_policy {
    SPRIG_VIEW_LAZY = 0, /**< indexed when next queried (the default) */
    SPRIG_VIEW_EAGER,    /**< indexed inside the writing transaction  */
    SPRIG_VIEW_UNIQUE    /**< eager; a duplicate key fails the write  */
} sprig_view_policy;

typedef enum sprig_builtin_reduce {
    SPRIG_REDUCE_NONE = 0,
    SPRIG_REDUCE_COUNT,
    SPRIG_REDUCE_SUM,
    SPRIG_REDUCE_MIN,
    SPRIG_REDUCE_MAX
} sprig_builtin_reduce;

/**
 * A view: an index of (key, value) pairs, the mappings, that each document
 * of its collection emits; queried by key (sprig_view_query_mappings())
 * and reduced (sprig_view_reduce()).  Either
 *  - a C view: `map`, optional `reduce` or `builtin_reduce`, `udata`; or
 *  - a declarative view over JSON documents: `json_key`, optional
 *    `json_value` and `builtin_reduce` (a sum, min or max needs a
 *    json_value).  No C code, so it can come from a schema file and work
 *    in the CLI and a server.
 *
 * Declarative keys and values.  `json_key` is a dotted path ("a.b.c";
 * a segment of digits also indexes an array) or several separated by
 * commas.  The key is a tuple key with one element per path (so a single
 * path gives a 1-tuple): JSON strings, true, false and null use their
 * elements, and a number is a float element when it has an exact double
 * (every integer up to 2^53 and every JSON real), else an integer element,
 * so numbers sort by value whether written 10 or 10.5 (integers beyond
 * +-2^53 without an exact double sort before all other numbers; equality
 * still finds them).  sprig_key_from_json() encodes a JSON query key the
 * same way and sprig_key_to_json() prints one.  A document that is not
 * JSON, or lacks a key path, or where a path reaches an object (or, for
 * a tuple, an array) emits nothing -- except that a single path ending at
 * an array emits one mapping per scalar element.  Integers beyond 64 bits
 * make a document unreadable as JSON (it emits nothing).  The value is the
 * compact JSON text at `json_value`, or "null" when it is missing or there
 * is no json_value.
 *
 * Built-in reduces (C or declarative views) read values as JSON numbers
 * and answer JSON text: COUNT the number of mappings; SUM the sum of the
 * numeric values (exact integer arithmetic while every value is an
 * integer and the sum fits 64 bits, else a double; "0" for none); MIN, MAX
 * the extreme numeric value or "null".  Values that are not numbers count
 * for COUNT and are skipped by the others.
 *
 * Policies.  LAZY: a write records the changed documents in the same
 * transaction; a query indexes them first (sprig_view_access).  EAGER: the
 * writing transaction indexes them.  UNIQUE: eager, and a transaction
 * making two documents emit the same key fails whole with SPRIG_EUNIQUE.
 *
 * Versions.  When a database is opened with a view whose version,
 * policy, reduce or (declarative) paths differ from what its index was
 * built with, the index is rebuilt from scratch before the open returns
 * (so queries never see a half-built index; a unique view over duplicate
 * data fails the open with SPRIG_EUNIQUE).  A schema read back from a
 * storage without the program (the CLI) has C views without code: their
 * queries fail with SPRIG_ESCHEMA; writes still record changed documents
 * for lazy and eager views, indexed when the program opens the database
 * again, and are refused (SPRIG_ESCHEMA) for collections with unique ones.
 */
typedef struct sprig_view_def {
    const char *name; /**< same rules as collection names */
    unsigned version;
    sprig_view_policy policy;
    sprig_map_fn map;
    sprig_reduce_fn reduce;
    void *udata;
    const char *json_key;   /**< dotted path(s); commas make a tuple key */
    const char *json_value; /**< dotted path, or NULL */
    sprig_builtin_reduce builtin_reduce;
} sprig_view_def;

typedef struct sprig_collection_def {
    /** "authority.name" or "name": [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 64
     *  bytes. */
    const char *name;
    sprig_id_kind id_kind;
    unsigned flags;              /**< SPRIG_COLL_ENCRYPTED, or 0 */
    const sprig_view_def *views; /**< names unique in the collection */
    size_t n_views;              /**< at most 32 */
} sprig_collection_def;

typedef struct sprig_schema_def {
    const char *name; /**< same rules as collection names */
    const sprig_collection_def *collections;
    size_t n_collections;
} sprig_schema_def;

/**
 * Read a schema file: collections, id kinds and declarative views as JSON,
 * so a database can be used without compiled schema code.  The format:
 *
 *   {"name": "shop",
 *    "collections": [
 *      {"name": "products", "id_kind": "u64" | "natural",  (default u64)
 *       "encrypted": true,             (SPRIG_COLL_ENCRYPTED; default false)
 *       "views": [
 *         {"name": "by-category",
 *          "version": 1,                                   (default 1)
 *          "policy": "lazy" | "eager" | "unique",          (default lazy)
 *          "json_key": "category"  or  ["category", "brand.name"],
 *          "json_value": "price",                          (optional)
 *          "reduce": "none" | "count" | "sum" | "min" | "max"}]}]}
 *
 * Unknown fields are errors.  On success `*out` is one heap object owned
 * by the caller (sprig_schema_free()); register it with
 * sprig_storage_register_schema().  Errors: SPRIG_ENOTFOUND (no such
 * file), SPRIG_EIO, SPRIG_ENOMEM, SPRIG_EINVAL for a bad file, with a
 * detail naming the line and column of a syntax error
 * ("shop.json:3:14: ...") or the JSON path of a bad field
 * ("shop.json: collections[1].views[0].json_key: expected a string or a
 * non-empty array of strings").  Any thread.
 */
SPRIG_API int sprig_schema_load_json(const char *path, sprig_schema_def **out);
/** As sprig_schema_load_json(), from `len` bytes of JSON text (messages
 *  name "schema" instead of a file). */
SPRIG_API int sprig_schema_parse_json(const char *text, size_t len,
                                      sprig_schema_def **out);
/** Free a schema from sprig_schema_load_json(); NULL is a no-op. */
SPRIG_API void sprig_schema_free(sprig_schema_def *s);

/* ======================================================================
 * Storages and databases (M1, M2)
 * ====================================================================== */

typedef struct sprig_storage sprig_storage;
typedef struct sprig_db sprig_db;

/** How much a commit waits for the disk. */
typedef enum sprig_durability {
    /** one fsync per durable commit (of the database's command log, before
     *  the commit is answered): an acknowledged write survives a crash or
     *  power loss.  The default. */
    SPRIG_DURABILITY_FULL = 0,
    /** commits are logged but the log is synced every 10 ms, not per
     *  commit: a power loss may lose the last ~10 ms of acknowledged
     *  writes, never corrupts; a process crash loses nothing. */
    SPRIG_DURABILITY_NORMAL = 1,
    /** no fsync on the way of a write: commits are logged like the
     *  others, but the log is made durable only by the checkpoints (about
     *  every second, or every 2,048 commits) and at close.  A process
     *  crash loses nothing; a power loss loses the writes since the last
     *  checkpoint -- always a suffix of them, never half of one, and the
     *  files never corrupt (tests/powerloss).  The storage's registry
     *  (`_admin`, rare writes) still syncs as in NORMAL. */
    SPRIG_DURABILITY_NONE = 2
} sprig_durability;

/** When an acknowledged key-value change reaches the disk. */
typedef enum sprig_kv_persistence_mode {
    /** Each change is as durable as the storage's durability says when
     *  its call returns.  The default. */
    SPRIG_KV_IMMEDIATE = 0,
    /** Changes are committed without waiting for the disk, which is
     *  flushed after `lazy_changes` changes or `lazy_ms` milliseconds,
     *  whichever comes first, and at close. */
    SPRIG_KV_LAZY = 1
} sprig_kv_persistence_mode;

typedef struct sprig_kv_persistence {
    sprig_kv_persistence_mode mode;
    uint32_t lazy_changes; /**< 0: no change-count threshold */
    uint32_t lazy_ms;      /**< 0: no time threshold */
} sprig_kv_persistence;

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
    /** How the key-value store persists (see sprig_kv_persistence). */
    sprig_kv_persistence kv_persistence;
    /** The clock for key-value expiry, in ms since the Unix epoch (NULL:
     *  the system's real-time clock).  For tests and simulations. */
    uint64_t (*clock_ms)(void *udata);
    void *clock_udata;

    /* ---- encryption and compression at rest (the vault; issue 13) ----
     * Values (document contents, view entries, key-value values) and the
     * command log of encrypted scopes are sealed with XChaCha20-Poly1305
     * under the storage's master key, which is kept in <path>/vault,
     * itself encrypted under a vault key from `keystore`, else from
     * `vault_passphrase` (argon2id), else from the key file
     * `vault_key_file` (default <path>/vault.key, made mode 0600 when the
     * vault is made; keep it outside the data directory in production).
     * A storage with a vault opens only with its key: SPRIG_EAUTH names
     * what is missing or wrong.  Ids, view keys and key-value keys are not
     * encrypted (they order the tables).  Once on, `encrypt` and
     * `compress` are recorded in the storage and stay on. */
    /** Encrypt every collection, view and key-value store (storage-wide);
     *  without it, only collections flagged SPRIG_COLL_ENCRYPTED are. */
    bool encrypt;
    /** LZ4-compress values longer than compress_min bytes (kept only when
     *  smaller), before encrypting. */
    bool compress;
    uint32_t compress_min;        /**< 0: 128 bytes */
    const char *vault_key_file;   /**< NULL: <path>/vault.key */
    const char *vault_passphrase; /**< NUL-terminated; copied at open */
    /** Pluggable key storage (NULL: none); must outlive the storage. */
    const struct sprig_keystore *keystore;
    /** Open an existing storage read-only (issue 17): nothing is written,
     *  so it works on a read-only file system or a copy that must not
     *  change.  Other processes may read it too (shared lock); a writer
     *  has it exclusively, so the two exclude each other (SPRIG_EBUSY).
     *  Every write -- documents, key-value, databases, a schema that is
     *  not registered unchanged, catching up a lazy view's pending
     *  documents (query with SPRIG_NO_UPDATE instead), rebuilding a
     *  changed view -- fails with SPRIG_EPERM.  A database whose log
     *  was not closed cleanly (a crash) must be opened writable once to
     *  replay it: until then it refuses to open (SPRIG_EPERM).  Key-value
     *  expiry is not swept.  Not with memory_only. */
    bool read_only;
} sprig_storage_options;

/** Pluggable key storage for the vault key (sprig_storage_options). */
typedef struct sprig_keystore {
    /** Fill `key` with the vault key; `create` is true when the storage has
     *  no vault yet (a new key may be made and kept).  Return 0, or a
     *  negative SPRIG_E* code (the open fails with it).  Called during
     *  sprig_storage_open() and sprig_storage_vault_rotate(), in the
     *  caller's thread. */
    int (*vault_key)(void *udata, bool create, uint8_t key[32]);
    void *udata;
} sprig_keystore;

/** A collection flag (sprig_collection_def.flags): its documents and view
 *  entries are encrypted even when the storage-wide default is off, and
 *  its revision hashes are keyed by a secret of the vault. */
#define SPRIG_COLL_ENCRYPTED 0x1u

/** Progress of sprig_storage_vault_rotate(): values re-encrypted so far,
 *  and the database being worked on. */
typedef void (*sprig_rotate_progress)(void *udata, const char *db,
                                      uint64_t values);

/**
 * Rotate the master key, online: a new random master key becomes current
 * (new writes use it at once), every value sealed under an older key is
 * re-encrypted in small write transactions that interleave with other
 * writers, each database is checkpointed so its command log needs no old
 * key, and the old keys are then dropped from the vault.  Writes made
 * meanwhile are never lost.  A crash part-way leaves both keys in the
 * vault: everything still opens, and the next rotation finishes the job
 * (under the key that interrupted one made current).
 * `progress` (may be NULL) is called from the calling thread.  Local
 * storages only.  Errors: SPRIG_EINVAL (no vault: nothing is encrypted),
 * SPRIG_EIO, SPRIG_EFULL, SPRIG_ENOMEM, storage errors.
 */
SPRIG_API int sprig_storage_vault_rotate(sprig_storage *st,
                                         sprig_rotate_progress progress,
                                         void *udata);

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

/* ---- the integrity check (issue 17) ---------------------------------------
 */

/**
 * Verify a local storage and report what is wrong: every table of each
 * database's LMDB file reads entry by entry (LMDB's own consistency);
 * every document parses and matches its content hash; the last change
 * the transaction log records for each document is its current state;
 * every view agrees with its collection (documents not pending map to
 * exactly their stored pairs, no records of documents that are gone, the
 * entries table holds exactly the records' pairs; every stored reduce
 * value, built-in or C, equals a recomputation from the key's mappings --
 * skipped for a lazy view with pending documents, and a C view needs its
 * code registered); values are decoded (decompressed, decrypted) before
 * they are hashed or compared; the key-value expiry
 * index holds one entry per record with an expiry and nothing else; every
 * database of the registry opens.  One line per finding is appended to
 * `report` (may be NULL), each naming the database; *findings counts
 * them.  Check a storage no one is writing (the log is read in a snapshot
 * of its own).  Works on a read-only open.  Threads: any.  Errors (the
 * check could not run; findings are not errors): SPRIG_EINVAL (NULL, or
 * not a local storage), SPRIG_ENOMEM, SPRIG_EIO.
 */
SPRIG_API int sprig_storage_check(sprig_storage *st, sprig_buf *report,
                                  uint64_t *findings);

/* ---- background verification (issue 17, item 3; bgverify) ----------------
 */

/** How far the background verification got (sprig_storage_verify_wait).
 *  A plain value. */
typedef struct sprig_verify_progress {
    uint64_t tables_done; /**< tables walked whole, clean */
    uint64_t tables_left; /**< tables still to walk (0 once finished) */
    uint64_t pages;       /**< pages those tables held */
} sprig_verify_progress;

/**
 * Wait for the background verification of a local storage's open
 * environments (its registry and every database opened so far) and say
 * its result.  Opening an environment verifies LMDB's page structure of
 * its named tables while they total at most 256 MiB (the environment
 * variable SPRIG_VERIFY_OPEN_BYTES, read once per process, changes that
 * for tests and operators; 0: none); the tables past it are walked after
 * the open in a low-priority thread, one table per read snapshot.  On the
 * first damage that environment fails: every later read and write of its
 * database returns SPRIG_ECORRUPT with the verifier's sentence (naming the
 * file, the table and the page), which stderr and sprig_storage_check()
 * repeat.  Closing the database or the storage stops the walk.
 *
 * `timeout_ms` < 0 waits as long as it takes; 0 only looks.  `progress`
 * (may be NULL) gets how far the walks got.  Threads: any.  Returns 0
 * when every walk finished clean (or none was needed).  Errors:
 * SPRIG_ECORRUPT (damage found: the sentence names it), SPRIG_ETIMEDOUT
 * (still walking), SPRIG_EIO / SPRIG_ENOMEM (a walk could not run: not
 * verified, nothing failed), SPRIG_EINVAL (NULL, or not a local storage).
 */
SPRIG_API int sprig_storage_verify_wait(sprig_storage *st, int timeout_ms,
                                        sprig_verify_progress *progress);

/* ---- one URL opens any placement ----------------------------------------- */

/** What carries a network connection (sprig_client_info(),
 *  sprig_server_connections()).  A plain value: no pointers. */
typedef struct sprig_conn_info {
    char transport[16];     /**< the URL scheme: "ws", "wss" */
    bool tls;               /**< encrypted (TLS) */
    char tls_version[16];   /**< "TLS1.3"; "" when not encrypted */
    char tls_cipher[48];    /**< "AES-256-GCM"; "" when not encrypted */
    char peer[96];          /**< the other side, "127.0.0.1:5646" */
    uint64_t messages_sent; /**< whole messages sent so far */
    uint64_t writes;        /**< write calls made to the socket so far */
} sprig_conn_info;

/** Options of sprig_open().  Fill with sprig_open_options_init(). */
typedef struct sprig_open_options {
    /** For file: and mem: URLs (the URL sets path / memory_only). */
    sprig_storage_options storage;
    /** For ws:// and wss:// URLs: a PEM file with the server's
     *  certificate (pinned) or its CA; NULL: the system's trust store. */
    const char *pinned_cert_path;
    /** ws/wss: connect and request time limits in ms (0: the client's
     *  defaults, 5 s and 30 s). */
    unsigned connect_timeout_ms, request_timeout_ms;
    /** wss://, quic://, sprig://: the server certificate's SHA-256
     *  fingerprint (64 hex digits; colons allowed), pinned: the only
     *  certificate trusted.  NULL: pinned_cert_path or the system's CAs. */
    const char *pinned_cert_sha256;
    /* ---- auth (issue 10): log in after connecting (ws/wss); the client
     * logs in again by itself after a reconnect (client.h). */
    /** A user and its password (`password` NULL: ""); or, when `user` is
     *  NULL, the token of `token_file` (one line "ID:SECRET"); neither:
     *  no login (the connection may only authenticate). */
    const char *user, *password;
    const char *token_file;
    /* ---- clusters (issue 18; docs/cluster.md "Guarantees") ---- */
    /** Do not follow SPRIG_ENOTLEADER: a write refused by a follower fails
     *  with it (the detail names the leader) instead of being sent once
     *  more to the leader.  A diagnostic (which node leads?); default
     *  false.  The environment variable SPRIG_NO_FOLLOW=1 does the same. */
    bool no_follow;
    /** Every read of this storage handle is linearizable: it sees every
     *  write acknowledged before it started, on any node.  The server
     *  confirms that it leads (a Raft barrier) before reading; a follower
     *  answers SPRIG_ENOTLEADER and the client follows the leader (so
     *  reads go to the leader, at the cost of a round to a majority
     *  each).  A server that is no cluster node ignores it.  Default
     *  false: reads are served by the node connected to, possibly stale
     *  (docs/cluster.md states the bound). */
    bool linearizable_reads;
} sprig_open_options;

/** Fill `o` with defaults (storage defaults; client defaults). */
SPRIG_API void sprig_open_options_init(sprig_open_options *o);

/**
 * Open the storage a URL names, wherever it is:
 *   - "file:PATH", "file://PATH" or a plain path: the local storage in
 *     that directory (sprig_storage_open());
 *   - "mem:" (anything after the colon is ignored): a new memory-only
 *     local storage, gone when closed;
 *   - "ws://host:port", "wss://host:port": a Sprig server, through a
 *     client that this call connects (sprig_client_connect()).
 * `o` may be NULL (defaults).  On success *out is owned by the caller:
 * sprig_storage_close() closes it and whatever it opened (the client and
 * its connection).  Any thread.
 * Errors: SPRIG_EINVAL (NULL url or out, empty path, or an unknown scheme:
 * the detail names it and lists the known ones), and those of
 * sprig_storage_open() or sprig_client_connect().
 */
SPRIG_API int sprig_open(const char *url, const sprig_open_options *o,
                         sprig_storage **out);

/**
 * Register a schema so databases can be created with it.  The definition is
 * copied.  Registering a name again replaces the definition: it may add
 * collections and views and change views, never drop a collection or a
 * view or change a collection's id kind.  A C view whose code is not
 * loaded (from sprig_storage_list_schemas() of a tool or over the network:
 * C views' code never travels) keeps the storage's C view of that name,
 * code included, and must match its version, policy and reduces.
 * Errors: SPRIG_EINVAL (bad names, duplicate collections), SPRIG_ESCHEMA
 * (drops a collection or a view, changes an id kind, or names a C view
 * without code that the storage does not have), SPRIG_EIO.
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
SPRIG_API int sprig_storage_open_database(sprig_storage *st, const char *name,
                                          sprig_db **out);
SPRIG_API int sprig_storage_open_database(sprig_storage *st, const char *name,
                                          sprig_db **out);

/* ======================================================================
 * Backup and restore, export and import, compaction (F15; issue 13)
 *
 * All five run where the storage lives: on a local storage, in the calling
 * process; on a client of a server, in the server, with `dir` a directory
 * on the server's machine (the request waits for the whole job; progress
 * is then reported once, at the end).  A running storage keeps serving
 * reads and writes meanwhile (see each function).
 * ====================================================================== */

/** Where a long job stands: passed to a sprig_progress_fn. */
typedef struct sprig_progress {
    const char *what;     /**< "backup", "restore", "export", "import",
                               "compact" */
    const char *item;     /**< the database (or file) at hand, or NULL */
    uint64_t items;       /**< databases (backup, restore, compact) or
                               records (export, import) done so far */
    uint64_t items_total; /**< 0: not known */
    uint64_t bytes;       /**< bytes written (backup, restore, export,
                               compact) or read (import) so far */
    uint64_t bytes_total; /**< 0: not known; an estimate for a backup
                               (a compacting copy is smaller) */
    bool done;            /**< the last call: the totals */
} sprig_progress;

/** Told of progress, in the thread that called the job, now and then and
 *  once at the end (`done`).  `p` is borrowed for the call. */
typedef void (*sprig_progress_fn)(void *udata, const sprig_progress *p);

/**
 * Online backup of every database of `st` into directory `dir` (created;
 * it must not exist or be empty): one compacting LMDB copy per database
 * (`<name>.mdb`) and `manifest.json` (format version, the schemas as
 * registered, each database's schema, file size, CRC-32C and last
 * transaction id), written last -- a directory without it is no backup.
 * Every database is copied as of one moment: commits on all of them are
 * held (queued, not refused) while each copy opens its snapshot, then go on
 * while the copies are written.  A write that must grow a database's map
 * waits until that database's copy ends.  `cb` may be NULL.  Threads: any.
 * Errors: SPRIG_EINVAL (bad arguments), SPRIG_EEXIST (`dir` is not
 * empty), SPRIG_EIO, SPRIG_EFULL, SPRIG_ENOMEM; nothing half-written is
 * left as a backup.
 */
SPRIG_API int sprig_storage_backup(sprig_storage *st, const char *dir,
                                   sprig_progress_fn cb, void *udata);

/**
 * Restore the backup in `dir` into `st`, which must hold no database (its
 * schemas may be registered already: then the backup's must be acceptable
 * re-registrations).  Each file is checked against the manifest (size,
 * CRC-32C) while it is copied, each database registered only once its
 * files are complete, and its last transaction id checked; a database not
 * yet registered when a crash hits is removed at the next open, so the
 * restore can simply be run again.  Errors: SPRIG_EEXIST (`st` has
 * databases), SPRIG_ECORRUPT (a file or the manifest does not match),
 * SPRIG_ENOTFOUND (no manifest), SPRIG_ESCHEMA, SPRIG_EIO, SPRIG_EFULL.
 */
SPRIG_API int sprig_storage_restore(sprig_storage *st, const char *dir,
                                    sprig_progress_fn cb, void *udata);

/**
 * Logical export of every database into directory `dir` (created; must
 * not exist or be empty), for moving data between versions and machines:
 * `export.json` (the schemas, the databases), and per database
 * `<db>/c/<collection>.jsonl` (one document a line) and `<db>/kv.jsonl`
 * (one key-value entry a line, with its expiry).  docs/api.md gives the
 * line formats.  Each database is read from one snapshot.  Errors:
 * SPRIG_EEXIST, SPRIG_EIO, SPRIG_EFULL, SPRIG_ENOMEM.
 */
SPRIG_API int sprig_storage_export(sprig_storage *st, const char *dir,
                                   sprig_progress_fn cb, void *udata);

/**
 * Import an export (sprig_storage_export) into `st`: registers its schemas
 * (C views come without their code: register the program's schema first
 * if it has any), creates each database if needed and writes every
 * document (at its id) and every key-value entry (with its expiry; those
 * already expired are skipped).  Documents overwrite ones with the same id.
 * Errors: SPRIG_ENOTFOUND (no export.json), SPRIG_ECORRUPT (a malformed
 * line: its file and line number in the detail), SPRIG_ESCHEMA, storage
 * errors.
 */
SPRIG_API int sprig_storage_import(sprig_storage *st, const char *dir,
                                   sprig_progress_fn cb, void *udata);

/**
 * Compact database `name` in place: a compacting copy of its LMDB file
 * (free pages dropped, pages in order) replaces the file.  The database
 * must have no open handle (SPRIG_EBUSY otherwise); it is closed, copied,
 * swapped (crash-safe: the old file or the new one, both complete) and
 * opened again on next use.  Errors: SPRIG_ENOTFOUND, SPRIG_EBUSY,
 * SPRIG_EIO, SPRIG_EFULL.
 */
SPRIG_API int sprig_storage_compact(sprig_storage *st, const char *name,
                                    sprig_progress_fn cb, void *udata);

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
 * and a 16-byte hash of the contents (keyed SipHash-128, the key per
 * database; BLAKE2b-128 in documents written before).  Writing contents
 * identical to the stored ones (byte for byte) makes no new revision.
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

/* ---- structured error detail (sprig_error_info) ------------------------ */

/** What a failure is about: which fields of sprig_error_detail name it. */
typedef enum sprig_error_kind {
    SPRIG_ERROR_KIND_NONE = 0,   /**< no structured detail (sprig_errmsg()) */
    SPRIG_ERROR_KIND_DOCUMENT,   /**< database, collection, id; header for
                                      a conflict (the stored document)     */
    SPRIG_ERROR_KIND_DATABASE,   /**< database (and schema when known)     */
    SPRIG_ERROR_KIND_COLLECTION, /**< database, collection, schema: the
                                      collection is not in the schema     */
    SPRIG_ERROR_KIND_VIEW,       /**< database, collection, view; for a
                                      unique violation also key (the view
                                      key), id (the document written) and
                                      header (the one already holding key) */
    SPRIG_ERROR_KIND_SCHEMA,     /**< schema                               */
    SPRIG_ERROR_KIND_KEY         /**< database, ns, key (key-value store)  */
} sprig_error_kind;

/**
 * The structured detail of the last failure on the calling thread, the same
 * whichever placement (local, ws://, wss://) answered.  Strings are "" and
 * bytes empty when they are not involved.  (The type cannot be named after
 * the function: C gives both one name space.)
 */
typedef struct sprig_error_detail {
    int code;              /**< the failure's code (0: none recorded) */
    sprig_error_kind kind; /**< what it is about */
    const char *database, *schema, *collection, *view;
    const char *ns;      /**< key-value namespace ("" is also the default) */
    sprig_bytes key;     /**< KEY: the key-value key; VIEW: the view key */
    sprig_bytes id;      /**< DOCUMENT, VIEW: the id of the document written
                              or asked for */
    bool has_header;     /**< `header` holds an existing document's header */
    sprig_header header; /**< conflict: the stored header; unique violation:
                              the document already emitting `key` */
} sprig_error_detail;

/**
 * The structured detail of the last failure on the calling thread (never
 * NULL).  Like sprig_errmsg(): thread-local, meaningful only right after a
 * call returned a negative code (compare `code` with it), and valid (with
 * everything it points at) until the next Sprig call on this thread.  Copy
 * the header with sprig_header_copy() to keep it.  Example:
 *
 *   if (sprig_get(db, "users", id, &doc) == SPRIG_ENOTFOUND) {
 *       const sprig_error_detail *e = sprig_error_info();
 *       if (e->kind == SPRIG_ERROR_KIND_DATABASE) ...  // the database went
 *       else ...                                       // the document
 *   }
 */
SPRIG_API const sprig_error_detail *sprig_error_info(void);

/** The name of an error kind ("document", "database", ...; "none"). */
SPRIG_API const char *sprig_error_kind_name(sprig_error_kind kind);

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

/** Largest page of sprig_list_executed_txns(), in entries. */
#define SPRIG_TXN_LOG_PAGE_MAX 10000
/** The page size that `limit` 0 asks for. */
#define SPRIG_TXN_LOG_PAGE_DEFAULT 1000

/**
 * Executed transactions with ids >= `since`, oldest first, at most `limit`
 * of them: 0 means SPRIG_TXN_LOG_PAGE_DEFAULT (1000), and a limit over
 * SPRIG_TXN_LOG_PAGE_MAX (10000) is refused -- locally and from a remote
 * caller alike -- so one call's answer stays bounded.  A page shorter than
 * its limit is the last; continue from the last id + 1.  `*out` is owned
 * by the caller (sprig_txn_log_free()).  Threads: any.  Errors:
 * SPRIG_ETOOBIG (limit over the cap), SPRIG_EINVAL (NULL db or out),
 * SPRIG_ENOTFOUND (the database was deleted), SPRIG_EIO, SPRIG_ENOMEM.
 */
SPRIG_API int sprig_list_executed_txns(sprig_db *db, uint64_t since,
                                       uint32_t limit, sprig_txn_log **out);
SPRIG_API size_t sprig_txn_log_count(const sprig_txn_log *l);
/** Id and commit time (ms since the Unix epoch) of entry i. */
SPRIG_API uint64_t sprig_txn_log_id(const sprig_txn_log *l, size_t i);
SPRIG_API uint64_t sprig_txn_log_timestamp_ms(const sprig_txn_log *l, size_t i);
/** Number of documents entry i changed. */
SPRIG_API size_t sprig_txn_log_change_count(const sprig_txn_log *l, size_t i);

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
SPRIG_API int sprig_last_txn_id(sprig_db *db, uint64_t *out);

/* ---- Changes feed (issue 15): follow committed changes ----------------
 *
 * A feed delivers every document change of the transactions committed
 * after `since`, oldest first: first the backlog read from the
 * transaction log, then, as transactions commit, the new ones -- the feed
 * always reads the log, so there is no gap and no duplicate across the
 * switch.  To resume after a restart or a reconnect, open a new feed with
 * `since` = the last transaction id whose changes were all processed
 * (sprig_changes_last()).  A slow reader costs the storage nothing: it
 * reads the log at its own pace.  Local databases wake a feed on each
 * commit; a remote one is woken by the server's `db.changes` pushes.
 * docs/protocol.md, "Changes feed". */

/** A changes feed on one database handle. */
typedef struct sprig_changes sprig_changes;

/** sprig_changes_open() flag: each change carries the document's contents
 *  (when it still has that revision; see sprig_change_event). */
#define SPRIG_CHANGES_CONTENTS 1u

/** One change, borrowed from the feed until its next call. */
typedef struct sprig_change_event {
    uint64_t txn_id;       /**< the transaction that made it */
    uint64_t timestamp_ms; /**< its commit time */
    const char *collection;
    sprig_bytes id;
    uint64_t revision; /**< the new revision, or the deleted one */
    bool deleted;
    /** SPRIG_CHANGES_CONTENTS: true and `contents` set when the document
     *  still has `revision`; false when deleted or changed again since (a
     *  later change of it follows in the feed). */
    bool has_contents;
    sprig_bytes contents;
} sprig_change_event;

/**
 * Open a feed of the changes committed after transaction `since` (0: from
 * the first), of `collection` only or of every collection (NULL or "");
 * `flags` 0 or SPRIG_CHANGES_CONTENTS.  The handle `db` must stay open
 * until sprig_changes_close().  Threads: one thread uses a feed at a time.
 * Errors: SPRIG_EINVAL, SPRIG_ENOTFOUND (database deleted), SPRIG_EIO,
 * SPRIG_ENOMEM; remote: SPRIG_EPERM, SPRIG_ECONNECT.
 */
SPRIG_API int sprig_changes_open(sprig_db *db, uint64_t since,
                                 const char *collection, unsigned flags,
                                 sprig_changes **out);
/**
 * The next change, waiting up to `timeout_ms` (-1: for ever, 0: poll) for
 * one to commit.  `*out` is borrowed until the next call or the close.
 * Errors: SPRIG_ETIMEDOUT (none yet), SPRIG_EINVAL, SPRIG_ENOTFOUND
 * (database deleted), SPRIG_EIO, SPRIG_ENOMEM; remote: SPRIG_ECONNECT.
 */
SPRIG_API int sprig_changes_next(sprig_changes *c, int timeout_ms,
                                 sprig_change_event *out);
/**
 * A file descriptor that becomes readable when changes may be waiting:
 * then call sprig_changes_next(c, 0, ...) until SPRIG_ETIMEDOUT.  Owned by
 * the feed.  -1 for a NULL feed.
 */
SPRIG_API int sprig_changes_fd(sprig_changes *c);
/** The id of the last transaction whose changes were all delivered (the
 *  `since` to resume from); `since` before any. */
SPRIG_API uint64_t sprig_changes_last(const sprig_changes *c);
/** Close the feed (NULL is a no-op). */
SPRIG_API void sprig_changes_close(sprig_changes *c);

/* ======================================================================
 * View queries (F4)
 * ====================================================================== */

typedef enum sprig_match_kind {
    SPRIG_MATCH_ALL = 0, /**< every key                               */
    SPRIG_MATCH_KEY,     /**< keys equal to match.key                 */
    SPRIG_MATCH_KEYS,    /**< keys in match.keys[0 .. n_keys)         */
    SPRIG_MATCH_RANGE,   /**< keys in match.range                     */
    SPRIG_MATCH_PREFIX   /**< keys starting with the bytes match.key  */
} sprig_match_kind;

/** Whether a query brings a lazy view up to date first. */
typedef enum sprig_view_access {
    SPRIG_UPDATE_BEFORE = 0, /**< index pending changes, then answer    */
    SPRIG_UPDATE_AFTER,      /**< answer now, index in the background   */
    SPRIG_NO_UPDATE          /**< answer from the index as it stands    */
} sprig_view_access;

typedef struct sprig_view_query {
    const char *collection;
    const char *view;
    struct {
        sprig_match_kind kind;
        sprig_bytes key;
        const sprig_bytes *keys;
        size_t n_keys;
        sprig_range range;
    } match;
    sprig_order order;
    uint32_t limit; /**< 0: no limit */
    sprig_view_access access;
    /** Pagination: continue after the mapping (after_key, after_id), the
     *  last one of the previous page (its key and source id), in the
     *  query's order.  An empty after_id continues after every mapping of
     *  after_key (what grouped reduces page with). */
    bool has_after;
    sprig_bytes after_key;
    sprig_bytes after_id;
} sprig_view_query;

/** Defaults: all keys, ascending, no limit, update before.  `collection`
 *  and `view` are borrowed by the query. */
SPRIG_API void sprig_view_query_init(sprig_view_query *q,
                                     const char *collection, const char *view);

/**
 * Mappings a query returned, ordered by key, then source id, then value
 * (descending queries reverse all three): key, value, the source
 * document's header, and (with sprig_view_query_with_docs) the document.
 * One list type serves both (api.md named a separate
 * sprig_mapping_doc_list): sprig_mapping_list_doc() is NULL when documents
 * were not asked for.  Grouped reduces return the same type with one entry
 * per key, the reduced value, and an empty source header.  Everything
 * returned by the accessors is borrowed from the list until it is freed;
 * out-of-range indexes give empty bytes, a zero header or NULL.
 */
typedef struct sprig_mapping_list sprig_mapping_list;
SPRIG_API size_t sprig_mapping_list_count(const sprig_mapping_list *l);
SPRIG_API sprig_bytes sprig_mapping_list_key(const sprig_mapping_list *l,
                                             size_t i);
SPRIG_API sprig_bytes sprig_mapping_list_value(const sprig_mapping_list *l,
                                               size_t i);
/** The source document's header (id, revision and hash when the mapping
 *  was indexed: usable as the expected header of an update or delete). */
SPRIG_API sprig_header sprig_mapping_list_source(const sprig_mapping_list *l,
                                                 size_t i);
/** The source document, or NULL when the query did not ask for it. */
SPRIG_API const sprig_doc *sprig_mapping_list_doc(const sprig_mapping_list *l,
                                                  size_t i);
SPRIG_API void sprig_mapping_list_free(sprig_mapping_list *l);

/*
 * The view functions below share these rules.
 *  - `q` is borrowed for the call; `q->view` names a view of
 *    `q->collection`.
 *  - Consistency: the answer comes from one snapshot in which the view and
 *    the documents agree, reflecting every transaction committed before
 *    the call (with SPRIG_UPDATE_BEFORE, the default: a lazy view with
 *    pending changes is brought up to date and queried in the same write
 *    transaction).  SPRIG_UPDATE_AFTER answers from the index as it stands
 *    and has a background thread of the database index pending changes;
 *    SPRIG_NO_UPDATE answers from the index as it stands.  Eager and unique
 *    views never have pending changes.  Documents fetched with
 *    sprig_view_query_with_docs() come from the same snapshot.
 *  - Any thread, concurrently with writers.
 *  - Errors, besides those listed per function: SPRIG_EINVAL (a NULL or
 *    malformed argument, an unknown match kind, order or access),
 *    SPRIG_ETOOBIG (a key over SPRIG_KEY_MAX, an id over SPRIG_ID_MAX),
 *    SPRIG_ESCHEMA (no such collection or view, or a C view whose code is
 *    not loaded), SPRIG_ENOTFOUND (the database was deleted), errors
 *    returned by the view's map or reduce functions while indexing pending
 *    documents, SPRIG_ECORRUPT, SPRIG_EIO, SPRIG_EFULL, SPRIG_ENOMEM.
 */

/**
 * The mappings matched by `q`, in `q->order`, at most `q->limit` (0: all),
 * after `q->after_key`/`after_id` when `q->has_after`.  `*out` is owned by
 * the caller (sprig_mapping_list_free()).  (api.md called this
 * sprig_view_query(), which C cannot have next to the type of that name.)
 */
SPRIG_API int sprig_view_query_mappings(sprig_db *db, const sprig_view_query *q,
                                        sprig_mapping_list **out);

/** As sprig_view_query_mappings(), each mapping with its source
 *  document. */
SPRIG_API int sprig_view_query_with_docs(sprig_db *db,
                                         const sprig_view_query *q,
                                         sprig_mapping_list **out);

/**
 * One reduced value over every mapping `q` matches (order, limit and
 * pagination are ignored), replacing the contents of `out` (a buffer the
 * caller owns; release it with sprig_buf_clear()).  Built-in reduces answer
 * JSON text (see sprig_view_def).  Over no mappings: "0" for COUNT and SUM,
 * "null" for MIN and MAX, and a C reduce's output for n = 0.  The answer is
 * combined from per-key results kept in the index, so it costs one step
 * per distinct key matched, not per mapping.  Errors: SPRIG_EINVAL also
 * when the view has no reduce.
 */
SPRIG_API int sprig_view_reduce(sprig_db *db, const sprig_view_query *q,
                                sprig_buf *out);

/**
 * One entry per distinct key `q` matches: the key and the reduced value of
 * its mappings (empty source header, no document), in `q->order`, at most
 * `q->limit` keys, after `q->after_key` when `q->has_after` (`after_id` is
 * ignored).  Errors: SPRIG_EINVAL also when the view has no reduce.
 */
SPRIG_API int sprig_view_reduce_grouped(sprig_db *db, const sprig_view_query *q,
                                        sprig_mapping_list **out);

/**
 * Delete, in one transaction, every document with a mapping `q` matches
 * (limit and pagination apply to the mappings; `q->access` is always
 * update-before).  If a matched document changes before the delete
 * commits, the query runs again.  `*deleted` (may be NULL) receives the
 * number of documents deleted.  Errors: SPRIG_ECONFLICT when the matched
 * documents kept changing through 32 attempts, and those of
 * sprig_txn_apply().
 */
SPRIG_API int sprig_view_delete_docs(sprig_db *db, const sprig_view_query *q,
                                     uint64_t *deleted);

/**
 * Encode a JSON key the way declarative views encode theirs: a scalar
 * gives a 1-tuple, a non-empty array of scalars a tuple (see
 * sprig_view_def).  `out`'s contents are replaced.  Errors: SPRIG_EINVAL
 * (not JSON, or not a scalar or array of scalars), SPRIG_ETOOBIG (over
 * SPRIG_KEY_MAX), SPRIG_ENOMEM.  Any thread.
 */
SPRIG_API int sprig_key_from_json(const char *json, size_t len, sprig_buf *out);

/**
 * Append the JSON text of tuple key `key` to `out`: a 1-tuple as its
 * element, a longer one as an array.  Integer and float elements print as
 * JSON numbers (non-finite floats as null), bytes elements as
 * {"$bytes":"<hex>"}; strings that are not UTF-8 get U+FFFD.  Errors:
 * SPRIG_EINVAL (not a tuple key; `out` is unchanged), SPRIG_ENOMEM.
 */
SPRIG_API int sprig_key_to_json(sprig_bytes key, sprig_buf *out);

/* ======================================================================
 * Key-value store (F6)
 *
 * Every database holds a key-value store beside its collections.  Keys are
 * strings grouped in namespaces; values are bytes or numbers (i64, u64,
 * f64).  Each operation is atomic: a write is one request through the
 * database's group commit, so concurrent increments never lose an update,
 * and a read sees one consistent snapshot.
 *
 * Names.  Namespaces and keys are NUL-terminated strings of any other
 * bytes.  A NULL namespace and "" are the same, default, namespace.  Keys
 * are never empty.  A namespace and a key together are at most
 * SPRIG_KV_KEY_MAX bytes (LMDB's 511-byte key limit, less the room Sprig's
 * expiry index needs); longer ones fail with SPRIG_ETOOBIG.
 *
 * Expiry.  A key may carry an expiration time in ms since the Unix epoch,
 * by the storage's clock (sprig_storage_options.clock_ms, or the real-time
 * clock).  From the moment that time is reached, the key is absent for
 * every operation (get, list, sprig_kv_set's checks, increments, delete);
 * a background sweeper then removes it, finding due keys through an index
 * ordered by expiration time (it never scans all keys).  Expirations are
 * stored with the keys and survive a restart.
 *
 * Persistence (sprig_storage_options.kv_persistence):
 *  - SPRIG_KV_IMMEDIATE: a change is committed with the storage's
 *    durability before its call returns.  With SPRIG_DURABILITY_FULL an
 *    acknowledged change survives a process crash, an OS crash and a power
 *    loss.
 *  - SPRIG_KV_LAZY: a change is committed (and appended to the database's
 *    command log) before its call returns, without waiting for the disk
 *    (no fsync).  The log is flushed (one fsync) once `lazy_changes` changes
 * are waiting or `lazy_ms` ms after the first waiting change, whichever comes
 * first, at close, and by any durable write to the same database (a document
 *    transaction).  With both thresholds 0 only those flush it.
 * What a crash can lose:
 *  - A process crash (SIGKILL, abort) loses no acknowledged change in
 *    either mode: the OS keeps the written pages.
 *  - An OS crash or power loss, in lazy mode, loses the changes
 *    acknowledged since the last flush started: about `lazy_changes`
 *    changes or `lazy_ms` ms of them (the flush runs in the background, so
 *    changes made while it runs wait for the next one).  The database is
 *    never damaged: recovery restores the last checkpoint and replays the
 *    log (docs/architecture.md, "Durability").  Immediate mode loses what
 *    the storage's durability allows (nothing with FULL).
 *  - With SPRIG_DURABILITY_NONE or memory_only nothing syncs on the way
 *    of any write (NONE: only its checkpoints do), as for documents: both
 *    modes behave alike.
 * Removals by the expiry sweeper are always lazy: losing one in a crash
 * only means an expired (so invisible) key is swept again.
 * ====================================================================== */

/** Longest namespace + key, in bytes together. */
#define SPRIG_KV_KEY_MAX 500
/** Longest bytes value. */
#define SPRIG_KV_VALUE_MAX SPRIG_CONTENTS_MAX

typedef enum sprig_value_kind {
    SPRIG_VALUE_BYTES = 0,
    SPRIG_VALUE_I64,
    SPRIG_VALUE_U64,
    SPRIG_VALUE_F64,
    /** Output only: no value (the key held none).  Never valid as input. */
    SPRIG_VALUE_NONE
} sprig_value_kind;

/** A key-value value.  As input its bytes are borrowed; as output they
 *  are owned by the value until sprig_value_clear().  An output's
 *  bytes.data may be NULL when bytes.len is 0. */
typedef struct sprig_value {
    sprig_value_kind kind;
    union {
        int64_t i64;
        uint64_t u64;
        double f64;
    } num;
    sprig_bytes bytes;
    void *owned_; /**< internal: what sprig_value_clear() frees */
} sprig_value;

/** Values for input: the bytes are borrowed, nothing to clear. */
SPRIG_API sprig_value sprig_value_of_bytes(sprig_bytes b);
SPRIG_API sprig_value sprig_value_of_i64(int64_t v);
SPRIG_API sprig_value sprig_value_of_u64(uint64_t v);
SPRIG_API sprig_value sprig_value_of_f64(double v);
/** Release an output value's memory and reset it to empty bytes.  NULL is
 *  a no-op, as is a value from the sprig_value_of_*() helpers. */
SPRIG_API void sprig_value_clear(sprig_value *v);

typedef enum sprig_kv_check {
    SPRIG_KV_ANY = 0,        /**< set whether or not the key exists */
    SPRIG_KV_ONLY_IF_VACANT, /**< set only if the key is absent     */
    SPRIG_KV_ONLY_IF_PRESENT /**< set only if the key exists        */
} sprig_kv_check;

/** Options of sprig_kv_set(); all zero (or a NULL pointer) is a plain set
 *  of a key that never expires. */
typedef struct sprig_kv_set_opts {
    /** Absolute expiration, ms since the Unix epoch by the storage's
     *  clock; 0: never expires.  A time already reached deletes the key
     *  (as Redis's SET EXAT does). */
    uint64_t expire_at_ms;
    bool keep_expiration; /**< a key that exists keeps its expiration
                               (or lack of one); the expiration given
                               here applies only to a new key */
    sprig_kv_check check;
    bool return_previous; /**< fill `previous` with the old value; implied
                               by a non-NULL `previous` */
    /** Relative expiration: this many ms after the write, by the storage's
     *  clock (0: unused).  Set at most one of expire_at_ms and this. */
    uint64_t expire_in_ms;
} sprig_kv_set_opts;

typedef enum sprig_kv_status {
    SPRIG_KV_INSERTED = 1,
    SPRIG_KV_UPDATED,
    SPRIG_KV_DELETED,
    SPRIG_KV_NOT_CHANGED
} sprig_kv_status;

/**
 * Store `v` under (ns, key).
 *
 * `so` (NULL: defaults) sets the expiration and the check.  `*status`
 * (may be NULL) tells what happened: SPRIG_KV_INSERTED (the key was
 * absent), SPRIG_KV_UPDATED (it held a value, now replaced),
 * SPRIG_KV_NOT_CHANGED (the check failed: nothing was written), or
 * SPRIG_KV_DELETED (the expiration was already reached, so the key was
 * removed).  A failed check is not an error.
 *
 * `previous` (may be NULL) receives the value the key held before the
 * call, owned by the caller (sprig_value_clear()), whether or not the set
 * happened; its kind is SPRIG_VALUE_NONE when the key held none (or had
 * expired).
 *
 * Threads: any.  Errors: SPRIG_EINVAL (NULL or empty key, NULL value, an
 * f64 value that is NaN -- refused on every placement, as increments refuse
 * one; infinities are stored --, an unknown kind or check, both
 * expirations set, return_previous without `previous`), SPRIG_ETOOBIG
 * (namespace + key over SPRIG_KV_KEY_MAX, bytes over SPRIG_KV_VALUE_MAX),
 * SPRIG_ENOTFOUND (the database was deleted), SPRIG_EFULL, SPRIG_EIO,
 * SPRIG_ENOMEM, SPRIG_ECORRUPT.
 */
SPRIG_API int sprig_kv_set(sprig_db *db, const char *ns, const char *key,
                           const sprig_value *v, const sprig_kv_set_opts *so,
                           sprig_kv_status *status, sprig_value *previous);

/**
 * Read the value of (ns, key) into `out` (may be NULL: only test that the
 * key exists), owned by the caller (sprig_value_clear()).  With
 * `and_delete` the key is removed in the same atomic step.  On any failure
 * `out` holds no value (kind SPRIG_VALUE_NONE).
 * Threads: any.  Errors: SPRIG_ENOTFOUND (no such key, or it expired),
 * SPRIG_EINVAL, SPRIG_ETOOBIG (as sprig_kv_set()),
 * SPRIG_EIO, SPRIG_ENOMEM, SPRIG_ECORRUPT; with `and_delete` also
 * SPRIG_EFULL.
 */
SPRIG_API int sprig_kv_get(sprig_db *db, const char *ns, const char *key,
                           bool and_delete, sprig_value *out);

/**
 * Add `amount` to the number under (ns, key) atomically; `out` (may be
 * NULL) receives the new value.  The key keeps its expiration.
 *
 * Type rules:
 *  - a missing (or expired) key starts at 0 of the amount's kind, so an
 *    increment stores the amount, and a decrement its negation (for u64,
 *    a decrement of a missing key by more than 0 is out of range);
 *  - a stored number keeps its kind: an i64 stays i64 whatever the
 *    amount's kind;
 *  - integer amounts on integer values (i64 or u64, mixed freely) are
 *    computed exactly; a result outside the stored kind's range fails with
 *    SPRIG_ERANGE and changes nothing, or with `saturating` is clamped to
 *    the kind's minimum or maximum (0 and UINT64_MAX for u64);
 *  - an f64 value takes any numeric amount (integers converted to double);
 *    a finite value overflowing to infinity fails with SPRIG_ERANGE or,
 *    with `saturating`, becomes -DBL_MAX or DBL_MAX;
 *  - SPRIG_EINVAL: a bytes amount, a NaN or infinite amount, an f64 amount
 *    on an integer value (it would drop the fraction), or a key holding
 *    bytes (nothing is changed).
 *
 * Threads: any.  Errors: as above, SPRIG_ETOOBIG, SPRIG_ENOTFOUND (the
 * database was deleted), SPRIG_EFULL, SPRIG_EIO, SPRIG_ENOMEM,
 * SPRIG_ECORRUPT.
 */
SPRIG_API int sprig_kv_increment(sprig_db *db, const char *ns, const char *key,
                                 const sprig_value *amount, bool saturating,
                                 sprig_value *out);

/** Subtract `amount`: sprig_kv_increment() with the opposite sign, same
 *  rules and errors. */
SPRIG_API int sprig_kv_decrement(sprig_db *db, const char *ns, const char *key,
                                 const sprig_value *amount, bool saturating,
                                 sprig_value *out);

/**
 * Remove (ns, key).  `*status` (may be NULL): SPRIG_KV_DELETED, or
 * SPRIG_KV_NOT_CHANGED when there was no such key (or it had expired).
 * Threads: any.  Errors: SPRIG_EINVAL, SPRIG_ETOOBIG, SPRIG_ENOTFOUND (the
 * database was deleted), SPRIG_EFULL, SPRIG_EIO, SPRIG_ENOMEM.
 */
SPRIG_API int sprig_kv_delete(sprig_db *db, const char *ns, const char *key,
                              sprig_kv_status *status);

/** Keys of a namespace with their values and expirations, as
 *  sprig_kv_list_keys() lists them. */
typedef struct sprig_kv_key_list sprig_kv_key_list;

/**
 * List the keys of namespace `ns` that start with `prefix` (NULL or "": all),
 * in byte order, with their values and expirations, at most `limit` of
 * them (0: no limit).  Expired keys are left out.  Pagination: pass the
 * last key of a page as `after` to get the keys that follow it (NULL:
 * from the start); a page shorter than `limit` is the last one.  The list
 * is one consistent snapshot.
 * Threads: any.  Errors: SPRIG_EINVAL (NULL db or out), SPRIG_ETOOBIG
 * (namespace + prefix or + after over SPRIG_KV_KEY_MAX), SPRIG_ENOTFOUND
 * (the database was deleted), SPRIG_EIO, SPRIG_ENOMEM, SPRIG_ECORRUPT.
 */
SPRIG_API int sprig_kv_list_keys(sprig_db *db, const char *ns,
                                 const char *prefix, const char *after,
                                 uint32_t limit, sprig_kv_key_list **out);
SPRIG_API size_t sprig_kv_key_list_count(const sprig_kv_key_list *l);
/** Key i without its namespace (borrowed from the list); NULL past the
 *  end. */
SPRIG_API const char *sprig_kv_key_list_key(const sprig_kv_key_list *l,
                                            size_t i);
/** Value i (borrowed from the list: do not clear it); NULL past the end. */
SPRIG_API const sprig_value *sprig_kv_key_list_value(const sprig_kv_key_list *l,
                                                     size_t i);
/** Expiration of key i in ms since the epoch; 0: none (or past the end). */
SPRIG_API uint64_t sprig_kv_key_list_expire_at(const sprig_kv_key_list *l,
                                               size_t i);
SPRIG_API void sprig_kv_key_list_free(sprig_kv_key_list *l);

/* ======================================================================
 * Conveniences (issue 14 part 2)
 *
 * Everyday helpers over the functions above, each working the same on
 * every placement (they are written over the public API): a
 * read-modify-write loop, a lookup by the key of a unique view, typed
 * key-value reads and reduce results, u64 ids without scratch arrays,
 * header copies and bulk inserts.  docs/api.md shows each in use.
 * ====================================================================== */

/**
 * The bytes of u64 id `n` (sprig_key_u64), in a compound literal that
 * lives until the end of the enclosing block: pass it straight to a call,
 * no scratch array needed.  C only (C++ has no compound literals).
 *   sprig_get(db, "msgs", SPRIG_ID_U64(7), &doc);
 */
#define SPRIG_ID_U64(n) sprig_id_u64((n), (uint8_t[8]){0})

/** The u64 id of a header / document (the inverse of SPRIG_ID_U64).
 *  Errors: SPRIG_EINVAL (NULL, or an id that is not 8 bytes). */
SPRIG_API int sprig_header_id_u64(const sprig_header *h, uint64_t *out);
SPRIG_API int sprig_doc_id_u64(const sprig_doc *doc, uint64_t *out);

/**
 * Copy a borrowed header (from a document, a list, a result) into the
 * caller's owned `out`, so it outlives what it was borrowed from.
 * Errors: SPRIG_EINVAL (NULL), SPRIG_ETOOBIG (id over SPRIG_ID_MAX).
 */
SPRIG_API int sprig_header_copy(const sprig_header *h, sprig_header_buf *out);

/**
 * What sprig_modify() calls: `current` is the document as stored (borrowed
 * for the call), `contents` an empty buffer owned by sprig_modify() into
 * which the function writes the new contents.  Return 0 to write them,
 * a positive number to leave the document as it is (sprig_modify() then
 * succeeds without writing), or a negative code to stop: sprig_modify()
 * returns it.  The function may be called several times (once per
 * attempt), each time with the document as it is then, so it must not
 * have effects that cannot be repeated.  It runs on the calling thread
 * and may call Sprig (no lock is held).
 */
typedef int (*sprig_modify_fn)(const sprig_doc *current, sprig_buf *contents,
                               void *udata);

/**
 * Read-modify-write document `id` of `collection`: read it, let `fn` make
 * its new contents, and update it if its revision is still the one read;
 * when another writer changed it in between (SPRIG_ECONFLICT), start over
 * with the new revision, at most `max_attempts` times in all (0: 16).
 * `out` (may be NULL) receives the header written (or, when `fn` left the
 * document as it is, the header read).
 * Threads: any.  Errors: SPRIG_ECONFLICT when every attempt conflicted
 * (sprig_error_info() names the document and its last stored header),
 * SPRIG_EINVAL (NULL fn), a negative code returned by `fn`, and those of
 * sprig_get() and sprig_update() (SPRIG_ENOTFOUND when the document is
 * missing or is deleted meanwhile).
 */
SPRIG_API int sprig_modify(sprig_db *db, const char *collection, sprig_bytes id,
                           unsigned max_attempts, sprig_modify_fn fn,
                           void *udata, sprig_header_buf *out);

/**
 * The named-collection lookup: the document of `collection` whose view
 * `view` emits `key` (an encoded view key), in one call (one round trip
 * remotely), as a copy owned by the caller (sprig_doc_free()).  Meant for
 * unique views, where at most one document emits a key; for other views it
 * answers the first in id order.  The view is brought up to date first.
 * Errors: SPRIG_ENOTFOUND (no document emits the key; sprig_error_info()
 * is of kind VIEW with the key), and those of sprig_view_query_with_docs().
 */
SPRIG_API int sprig_get_by_key(sprig_db *db, const char *collection,
                               const char *view, sprig_bytes key,
                               sprig_doc **out);

/** As sprig_get_by_key(), the key given as JSON and encoded as a
 *  declarative view's (sprig_key_from_json()): e.g. "\"ann@x.org\"". */
SPRIG_API int sprig_get_by_json_key(sprig_db *db, const char *collection,
                                    const char *view, const char *json_key,
                                    sprig_doc **out);

/**
 * Bulk insert: `n` documents (contents[i]) into `collection` in one
 * transaction -- all or none.  `ids` NULL pushes u64 ids for every one;
 * otherwise ids[i] names document i, and an empty entry ({NULL, 0}) pushes
 * an id for it.  `*out` (may be NULL) receives the n new headers in order,
 * owned by the caller (sprig_header_list_free()).
 * Errors: SPRIG_EINVAL (n 0, NULL contents), and those of sprig_insert()
 * and sprig_txn_apply() (sprig_error_info() names the failed document).
 */
SPRIG_API int sprig_insert_many(sprig_db *db, const char *collection,
                                const sprig_bytes *ids,
                                const sprig_bytes *contents, size_t n,
                                sprig_header_list **out);

/**
 * Typed key-value reads: the number under (ns, key).  The integer readers
 * take an i64 or a u64 value alike when it fits (else SPRIG_ERANGE); the
 * f64 reader takes only f64 values; the bytes reader replaces `out`'s
 * contents.  A value of another kind fails with SPRIG_EINVAL, whose detail
 * names the stored kind ("key 'hits' holds bytes, not an integer") and
 * whose sprig_error_info() is of kind KEY.  On failure `*out` is 0 (the
 * buffer empty).  Errors: those of sprig_kv_get().
 */
SPRIG_API int sprig_kv_get_i64(sprig_db *db, const char *ns, const char *key,
                               int64_t *out);
SPRIG_API int sprig_kv_get_u64(sprig_db *db, const char *ns, const char *key,
                               uint64_t *out);
SPRIG_API int sprig_kv_get_f64(sprig_db *db, const char *ns, const char *key,
                               double *out);
SPRIG_API int sprig_kv_get_bytes(sprig_db *db, const char *ns, const char *key,
                                 sprig_buf *out);

/**
 * A typed value from the JSON text of a built-in reduce ("42", "-1.5",
 * "null"): an integer gives SPRIG_VALUE_I64 (SPRIG_VALUE_U64 above
 * INT64_MAX), a number with a fraction or exponent SPRIG_VALUE_F64, null
 * SPRIG_VALUE_NONE.  Use it on the values of sprig_view_reduce_grouped().
 * Nothing to clear.  Errors: SPRIG_EINVAL (anything else), SPRIG_ERANGE.
 */
SPRIG_API int sprig_value_from_json(sprig_bytes json, sprig_value *out);

/**
 * sprig_view_reduce() of a view with a built-in reduce, as a typed value
 * (sprig_value_from_json()): COUNT a non-negative I64, SUM an I64 (exact
 * integers) or an F64, MIN and MAX the extreme number or, over no numbers,
 * SPRIG_VALUE_NONE.  Nothing to clear.  Errors: those of
 * sprig_view_reduce(), SPRIG_EINVAL for a C reduce whose output is not a
 * JSON number.
 */
SPRIG_API int sprig_view_reduce_value(sprig_db *db, const sprig_view_query *q,
                                      sprig_value *out);

/* ======================================================================
 * PubSub (F7)
 *
 * A database carries a publish/subscribe hub: messages are published to
 * topics (any non-empty bytes) and delivered to every subscriber of that
 * topic in the same database at that moment.  Nothing is stored: a
 * subscriber sees what is published while it is subscribed.
 *
 * Delivery: each message once per subscriber of its topic; the messages of
 * one publishing thread arrive in the order it published them (messages
 * from different threads interleave in no promised order).
 *
 * Slow subscribers: publishing never waits for a subscriber.  Each
 * subscriber has a bounded queue (by default SPRIG_SUBSCRIBER_QUEUE_MAX
 * messages and SPRIG_SUBSCRIBER_QUEUE_BYTES bytes of topics and payloads;
 * see sprig_subscriber_set_limits()).  When a new message does not fit,
 * the OLDEST waiting messages are dropped to make room -- a subscriber
 * that falls behind keeps the most recent messages -- and each drop is
 * counted in sprig_subscriber_dropped().  One message larger than the byte
 * bound is still queued when the queue is otherwise empty.
 * ====================================================================== */

/** Longest topic, in bytes. */
#define SPRIG_TOPIC_MAX 1024
/** Largest payload, in bytes. */
#define SPRIG_PAYLOAD_MAX (64u * 1024u * 1024u)
/** Default bound of a subscriber's queue, in messages. */
#define SPRIG_SUBSCRIBER_QUEUE_MAX 4096
/** Default bound of a subscriber's queue, in bytes (topics + payloads). */
#define SPRIG_SUBSCRIBER_QUEUE_BYTES (64u * 1024u * 1024u)

typedef struct sprig_subscriber sprig_subscriber;
typedef struct sprig_message sprig_message;

/**
 * A new subscriber of database `db`'s hub, subscribed to nothing.  It
 * keeps the database open, like a handle, until sprig_subscriber_free()
 * (so a storage closed meanwhile finishes closing then).
 * Threads: a subscriber may be used from several threads at once, except
 * sprig_subscriber_free(), which must be the last call.
 * Errors: SPRIG_EINVAL, SPRIG_ENOTFOUND (the database was deleted),
 * SPRIG_ENOMEM, SPRIG_EIO (no file descriptor for the wake-up fd).
 */
SPRIG_API int sprig_subscriber_new(sprig_db *db, sprig_subscriber **out);

/** Receive messages published to `topic` (copied) from now on.
 *  Subscribing again to a topic is a no-op.  Errors: SPRIG_EINVAL (empty
 *  topic), SPRIG_ETOOBIG (over SPRIG_TOPIC_MAX), SPRIG_ENOMEM. */
SPRIG_API int sprig_subscribe(sprig_subscriber *s, sprig_bytes topic);

/** Stop receiving `topic` (a no-op when not subscribed).  Messages
 *  already queued stay queued.  Errors: SPRIG_EINVAL, SPRIG_ETOOBIG. */
SPRIG_API int sprig_unsubscribe(sprig_subscriber *s, sprig_bytes topic);

/**
 * Deliver `payload` (copied) to every current subscriber of `topic` in
 * database `db`.  Never blocks on subscribers (see the overflow rule
 * above).  Threads: any.  Errors: SPRIG_EINVAL (empty topic),
 * SPRIG_ETOOBIG (topic over SPRIG_TOPIC_MAX, payload over
 * SPRIG_PAYLOAD_MAX), SPRIG_ENOTFOUND (the database was deleted),
 * SPRIG_ENOMEM (nobody received it).
 */
SPRIG_API int sprig_publish(sprig_db *db, sprig_bytes topic,
                            sprig_bytes payload);

/**
 * Publish `payload` to each of `topics[0 .. n)` in turn, as n calls of
 * sprig_publish() would (as BonsaiDb does): a subscriber of several of the
 * topics receives one message per topic, each naming its topic.  n == 0
 * is a no-op.  Errors: as sprig_publish(), checked for every topic before
 * any is published; SPRIG_ENOMEM may leave the later topics unpublished.
 */
SPRIG_API int sprig_publish_to_all(sprig_db *db, const sprig_bytes *topics,
                                   size_t n, sprig_bytes payload);

/**
 * Take the oldest waiting message into `*out` (owned by the caller:
 * sprig_message_free()).  `timeout_ms`: -1 waits for ever, 0 only looks,
 * n > 0 waits at most n ms.  Errors: SPRIG_ETIMEDOUT (nothing came;
 * `*out` is NULL), SPRIG_EINVAL.
 */
SPRIG_API int sprig_subscriber_recv(sprig_subscriber *s, int timeout_ms,
                                    sprig_message **out);

/**
 * A file descriptor that polls readable (POLLIN, EPOLLIN) exactly while
 * messages wait in the queue, for poll/epoll/libuv loops: when it is
 * readable, call sprig_subscriber_recv(s, 0, ...) until SPRIG_ETIMEDOUT.
 * Owned by the subscriber (do not read or close it); valid until
 * sprig_subscriber_free().  Returns -1 for a NULL subscriber.
 */
SPRIG_API int sprig_subscriber_fd(sprig_subscriber *s);

/** How many messages this subscriber's queue has dropped so far because
 *  it was full (0 for NULL). */
SPRIG_API uint64_t sprig_subscriber_dropped(const sprig_subscriber *s);

/**
 * Bound the queue to `max_messages` messages (at least 1) and `max_bytes`
 * bytes of topics and payloads (0: no byte bound).  Lowering the bounds
 * drops the oldest waiting messages that no longer fit (counted).
 * Errors: SPRIG_EINVAL (NULL subscriber, max_messages 0).
 */
SPRIG_API int sprig_subscriber_set_limits(sprig_subscriber *s,
                                          size_t max_messages,
                                          size_t max_bytes);

/** Unsubscribe from everything, discard waiting messages and release the
 *  subscriber's hold on its database.  NULL is a no-op. */
SPRIG_API void sprig_subscriber_free(sprig_subscriber *s);

/** The topic a message was published to (borrowed from the message). */
SPRIG_API sprig_bytes sprig_message_topic(const sprig_message *m);
/** The message's payload (borrowed from the message). */
SPRIG_API sprig_bytes sprig_message_payload(const sprig_message *m);
/** Release a message; NULL is a no-op.  Threads: any. */
SPRIG_API void sprig_message_free(sprig_message *m);

/* ---- certificates (QUIC and wss://; issue 11) -----------------------------
 * A server's TLS certificate and key live in its storage directory as
 * SPRIG_CERT_FILE and SPRIG_CERT_KEY_FILE (the key readable by its owner
 * only).  `sprig serve` makes a self-signed pair there on its first start
 * with QUIC and no certificate configured; `sprig certificate` manages
 * them.  Clients pin the certificate (its file, or its SHA-256 fingerprint
 * as printed here) or trust the system's CAs.  Threads: any; these touch
 * only files. */
#define SPRIG_CERT_FILE "certificate.pem"
#define SPRIG_CERT_KEY_FILE "private-key.pem"

/** What a certificate in a storage directory is. */
typedef struct sprig_cert_info {
    char cert_path[1024]; /**< DIR/certificate.pem (the chain, leaf first) */
    char key_path[1024];  /**< DIR/private-key.pem */
    char sha256[65];      /**< lowercase hex SHA-256 of the leaf's DER */
    char subject[256];    /**< the leaf's distinguished name */
    int64_t not_after;    /**< expiry, Unix seconds */
    bool self_signed;     /**< issuer == subject */
    bool created;         /**< made by this call */
} sprig_cert_info;

/**
 * Make a self-signed certificate (ECDSA P-256, SHA-256, ten years; names
 * localhost, 127.0.0.1, ::1 and this host's name) and its key in `dir`
 * (which must exist).  Refuses to replace an existing pair unless
 * `overwrite`.  `out` (may be NULL) describes the new certificate.
 * Errors: SPRIG_EEXIST (a certificate is there), SPRIG_EIO, SPRIG_ENOMEM.
 */
SPRIG_API int sprig_cert_install_self_signed(const char *dir, bool overwrite,
                                             sprig_cert_info *out);

/**
 * Install the key `key_pem` and the certificate chain `chain_pem` (PEM
 * files; leaf first) into `dir`, replacing what is there, after checking
 * that they parse and that the key belongs to the leaf.
 * Errors: SPRIG_EINVAL (unreadable, malformed, or key and certificate do
 * not match: the detail says which), SPRIG_EIO.
 */
SPRIG_API int sprig_cert_install(const char *dir, const char *key_pem,
                                 const char *chain_pem, sprig_cert_info *out);

/** Describe the certificate in `dir`.  Errors: SPRIG_ENOTFOUND (none),
 *  SPRIG_EINVAL (unreadable or malformed). */
SPRIG_API int sprig_cert_show(const char *dir, sprig_cert_info *out);

/** The certificate in `dir`, made (self-signed) when there is none: what
 *  `sprig serve` calls; out->created says which.  Errors: as above. */
SPRIG_API int sprig_cert_ensure(const char *dir, sprig_cert_info *out);

/** SHA-256 fingerprint (64 lowercase hex digits and a NUL) of the first
 *  certificate in the PEM file `pem_path`.  Errors: SPRIG_EINVAL. */
SPRIG_API int sprig_cert_fingerprint(const char *pem_path, char out[65]);

/* ======================================================================
 * Cluster (issue 18; docs/cluster.md): a local storage as a node of a
 * Raft group (libraft).  Every write the storage accepts becomes one Raft
 * entry, answered once committed by a majority and applied on this node;
 * on a node that is not the leader a write fails with SPRIG_ENOTLEADER,
 * detail "not the leader; leader is node N at URL".  Reads are local.
 * ====================================================================== */

typedef struct sprig_cluster sprig_cluster;

/**
 * Open the local storage `so` describes (on disk) as a node of the group
 * described by the JSON cluster file `file`:
 *   {"id":1,"raft":"127.0.0.1:7001","url":"ws://127.0.0.1:5646",
 *    "bootstrap":true,"peers":[{"id":2,"raft":"127.0.0.1:7002",
 *    "url":"ws://127.0.0.1:5647"},...]}
 * (`raft`: where this node listens for its peers; `url`: the client URL
 * ENOTLEADER names; `bootstrap` on every node of a new cluster: the first
 * start records every listed node as a voter).  With
 * "tls":{"ca":FILE,"cert":FILE,"key":FILE} (PEM; relative paths from the
 * cluster file's folder) node-to-node traffic is TLS, both ends presenting
 * their certificate and refusing a peer whose certificate does not verify
 * against the CA file; without it plain TCP, and a warning line on stderr.
 * Raft
 * runs on a thread of its own with its durable log in <path>/raft/.
 * Returns once Raft started (not once a leader is known).  Errors:
 * SPRIG_EINVAL (the file), those of sprig_storage_open(), SPRIG_EIO
 * (Raft did not start: the detail says why), SPRIG_ENOMEM.
 */
SPRIG_API int sprig_cluster_open(const sprig_storage_options *so,
                                 const char *file, sprig_cluster **out);
/** The node's storage (owned by the cluster handle): serve it, or use it
 *  directly; writes through it are replicated.  Valid until close. */
SPRIG_API sprig_storage *sprig_cluster_storage(sprig_cluster *c);
/** Leave: stop Raft (in-flight writes fail with SPRIG_ECLOSED), close the
 *  storage and free.  Stop serving the storage first.  NULL: no-op. */
SPRIG_API void sprig_cluster_close(sprig_cluster *c);

/* -- cluster operations (cops; docs/cluster.md "Operations") -- */
typedef struct sprig_server sprig_server;
/**
 * Serve the cluster operations on `srv` (a server of this node's storage):
 * registers the APIs cluster.status (action "cluster.read"), cluster.add,
 * cluster.remove and cluster.transfer (action "cluster.admin"), resource
 * "sprig.api.cluster.<op>", so an administrator (granted '*' on "sprig")
 * may call them and other users may not.  Requests and answers are JSON
 * text; each is handled on the node's Raft thread and answered when
 * libraft is done (an add: once the node caught up and is a voter).
 * Changes sent to a follower fail with SPRIG_ENOTLEADER naming the leader.
 * Call before or after sprig_server_start(), once; close the server before
 * the cluster.  Any thread.  Errors: SPRIG_EINVAL, those of
 * sprig_server_register_api_with() (SPRIG_EEXIST when called twice).
 */
SPRIG_API int sprig_cluster_attach_server(sprig_cluster *c, sprig_server *srv);
/**
 * True while a new node -- a cluster file without "bootstrap", a storage
 * that never applied an entry -- is not yet a member that applied what it
 * knows (it waits for `cluster add` and the snapshot or log it then
 * gets).  Serve its storage only once this is false: installing a
 * snapshot swaps the storage under any handle taken before.  Any thread.
 */
SPRIG_API bool sprig_cluster_joining(sprig_cluster *c);

/* -- the first administrator of a new cluster (cconf; docs/cluster.md
 *    "Start a cluster") -- */
typedef struct sprig_auth sprig_auth;
/**
 * Make `user` (password `password`) the first administrator of the
 * cluster, through the Raft log: when the records of `a` -- the permission
 * engine over this node's storage, e.g. sprig_server_auth() of the node's
 * server -- hold no user (or only `user`, without its rights: a bootstrap
 * cut short), the leader writes group "admins" granted '*' on "sprig",
 * the user, and the user in the group, each a replicated `_admin`
 * transaction, so every node and every node added later has them.
 * Returns 0 once `user` is an administrator on this node (applied here),
 * or when the records hold other users (nothing is done: the cluster is
 * not new).  SPRIG_ENOTLEADER: this node is not the leader and has not
 * applied the leader's bootstrap yet, SPRIG_ETIMEDOUT: leadership was lost
 * half-way -- call again after a pause (every node may call it, with the
 * same user and password).  Blocks while a write commits; not on the
 * node's Raft thread.  Other errors: SPRIG_EINVAL (NULL or empty
 * arguments), those of the permission engine and the storage.
 */
SPRIG_API int sprig_cluster_bootstrap_admin(sprig_cluster *c, sprig_auth *a,
                                            const char *user,
                                            const char *password);

/* ---- connected clients over the wire (issue 15, js2) ------------------- */

/** One open connection of a server, as sprig_client_connected_clients()
 *  reports it (the `server.clients` row).  A plain value: no pointers. */
typedef struct sprig_connected_client {
    uint64_t id;           /**< the server's connection id */
    char peer[64];         /**< "127.0.0.1:54321" */
    char transport[16];    /**< "ws", "wss", "quic" */
    uint64_t connected_ms; /**< when it opened, ms since 1970 */
    char identity[128];    /**< its default session's identity, or "" */
    uint32_t sessions;     /**< sessions (logins) open on it */
    uint64_t requests;     /**< requests it sent so far */
    bool yours;            /**< the connection this call came on */
} sprig_connected_client;

/**
 * The open connections of the server behind `server` (a storage from
 * sprig_client_storage() or sprig_open() of a server's URL), oldest
 * first: up to `cap` into `out` (may be NULL when `cap` is 0), their
 * number in *n; the caller's own connection has `yours` set.  Needs the
 * action `server.clients` on `sprig`.  Any thread.
 * Errors: SPRIG_EINVAL (NULL n, NULL out with cap > 0, or `server` is not
 * a server's storage), SPRIG_EPERM, and those of any call.
 */
SPRIG_API int sprig_client_connected_clients(sprig_storage *server,
                                             sprig_connected_client *out,
                                             size_t cap, size_t *n);

#ifdef __cplusplus
}
#endif
#endif /* SPRIG_SPRIG_H */
