/*
 * core.h -- private interface of src/core, the bottom layer of Sprig.
 *
 * Everything here is shared by the layers above (src/local today; the
 * protocol, server and client later): error reporting, the allocation
 * gateway, name validation, schema copies, the value objects that cross the
 * public API (documents, lists, transactions, results, logs), and the
 * operations tables through which a `sprig_db` or `sprig_storage` handle
 * dispatches to its implementation (local engine, remote client, ...).
 * Nothing in this folder knows about LMDB or sockets.
 */
#ifndef SPRIG_CORE_H
#define SPRIG_CORE_H

#include "sprig/sprig.h"

#include <stdarg.h>
#include <string.h>

#define SPRIG_NAME_MAX 64

/* ---- errors ---------------------------------------------------------- */

/** Record `fmt` as this thread's error detail and return `rc`. */
int sprig__err(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** A failure of a call on database `db` whose detail says damaged data
 *  (SPRIG_ECORRUPT) gets the database's name in front of its sentence,
 *  unless the sentence names it already (issue 17: a corrupt file is
 *  reported with the database it is in).  Keeps the structured detail.
 *  Returns `rc`.  Any thread (its own error detail). */
int sprig__err_in_db(int rc, const char *db);

/* ---- structured error detail (error.c) ---------------------------------
 *
 * sprig__err() records the code and the sentence and clears the structured
 * detail (kind NONE); a failure about something named then fills it with
 * the sprig__errinfo_*() setters, right after sprig__err() on the same
 * thread.  The API layer (api.c) adds what it knows that the engine did not
 * (sprig__errinfo_context).  sprig__err_save()/_load() carry a failure to
 * another thread (the writer, a network answer). */

typedef struct sprig__errinfo {
    int code;
    int kind; /* sprig_error_kind */
    char database[SPRIG_NAME_MAX + 1], schema[SPRIG_NAME_MAX + 1];
    char collection[SPRIG_NAME_MAX + 1], view[SPRIG_NAME_MAX + 1];
    char ns[SPRIG_KV_KEY_MAX + 1];
    uint8_t key[SPRIG_KV_KEY_MAX];
    uint32_t key_len;
    uint8_t id[SPRIG_ID_MAX];
    uint32_t id_len;
    bool has_header;
    sprig_header_buf header;
} sprig__errinfo;

/** A failure carried between threads: its sentence and its detail. */
typedef struct sprig__errsave {
    char msg[512];
    sprig__errinfo info;
} sprig__errsave;

/** Record `fmt` as this thread's error detail, of kind `kind`, and return
 *  `rc`. */
int sprig__err_about(int rc, sprig_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** This thread's structured detail, to read or fill.  Never NULL. */
sprig__errinfo *sprig__errinfo_get(void);
/** Set fields of this thread's detail (strings truncated to their room;
 *  NULL leaves a field as it is). */
void sprig__errinfo_database(const char *name);
void sprig__errinfo_schema(const char *name);
void sprig__errinfo_collection(const char *name);
void sprig__errinfo_view(const char *name);
void sprig__errinfo_ns(const char *ns);
void sprig__errinfo_key(sprig_bytes key);
void sprig__errinfo_id(sprig_bytes id);
void sprig__errinfo_header(const sprig_header_buf *h);
/** When the detail has a kind, fill the fields it leaves empty that the
 *  kind involves from the call's context (any may be NULL). */
void sprig__errinfo_context(const char *database, const char *collection,
                            const sprig_bytes *id);
/** Copy this thread's failure into `s`, and make it this thread's again
 *  (returning `rc`, which becomes the recorded code). */
void sprig__err_save(sprig__errsave *s);
int sprig__err_load(int rc, const sprig__errsave *s);
/** Replace this thread's structured detail with `info` (message kept). */
void sprig__errinfo_set(const sprig__errinfo *info);

/* ---- allocation gateway ---------------------------------------------- */

void *sprig__malloc(size_t n);
void *sprig__calloc(size_t n, size_t size);
void *sprig__realloc(void *p, size_t n);
void sprig__free(void *p);
char *sprig__strdup(const char *s);
void *sprig__memdup(const void *p, size_t n);
/** Grow (or shrink) `p` to `n` bytes as sprig__realloc does, but never
 *  leave a copy behind: the first `used` bytes move to a new block and the
 *  old one is wiped before it is freed (buffers that may hold a password
 *  or a token secret; issue 10).  NULL (and `p` untouched) on ENOMEM. */
void *sprig__realloc_wiped(void *p, size_t used, size_t n);
/** Wipe the first `n` bytes of `p` (may be NULL), then free it. */
void sprig__free_wiped(void *p, size_t n);
/** Test seam: make the n-th allocation from now fail (0 = never). */
void sprig__alloc_fail_after(unsigned long n);
/** Number of live allocations made through the gateway. */
long sprig__alloc_live(void);

/* ---- byte helpers ---------------------------------------------------- */

static inline void
sprig__put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t
sprig__get_u64be(const uint8_t *p)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) &&                            \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v; /* one load and a byte swap (the loop below is not one) */
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
#else
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
#endif
}

static inline void
sprig__put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t
sprig__get_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

/** Compare two byte strings as memcmp order (shorter prefix first). */
int sprig__bytes_cmp(sprig_bytes a, sprig_bytes b);

/** Reserve room for `extra` more bytes; SPRIG_ENOMEM on failure. */
int sprig__buf_reserve(sprig_buf *b, size_t extra);
/** Append one part of a resource name to `out` (after a '.' unless
 *  `first`): bytes outside [A-Za-z0-9_-] written %XX (uppercase hex), so
 *  '.', '%' and '*' never appear raw; out stays NUL-terminated (not
 *  counted).  The server's resource names and the permission engine's
 *  patterns are spelled by this one function.  SPRIG_ENOMEM. */
int sprig__name_segment(sprig_buf *out, sprig_bytes seg, bool first);
/** Append a big-endian u64 / u32 / one byte. */
int sprig__buf_put_u64(sprig_buf *b, uint64_t v);
int sprig__buf_put_u32(sprig_buf *b, uint32_t v);
int sprig__buf_put_u8(sprig_buf *b, uint8_t v);

/** A bounds-checked reader over borrowed bytes; every get returns
 *  SPRIG_ECORRUPT when the input runs out. */
typedef struct sprig__rd {
    const uint8_t *p;
    size_t left;
} sprig__rd;
int sprig__rd_u64(sprig__rd *r, uint64_t *v);
int sprig__rd_u32(sprig__rd *r, uint32_t *v);
int sprig__rd_u8(sprig__rd *r, uint8_t *v);
int sprig__rd_bytes(sprig__rd *r, size_t n, const uint8_t **p);

/* ---- names and schemas ----------------------------------------------- */

/** Check a database name; SPRIG_EINVAL with a detail naming `what`. */
int sprig__check_db_name(const char *name);
/** Check a collection or schema name. */
int sprig__check_coll_name(const char *what, const char *name);

/** A heap copy of a schema definition (one allocation). */
int sprig__schema_copy(const sprig_schema_def *src, sprig_schema_def **out);
/** Validate a definition's names and uniqueness. */
int sprig__schema_check(const sprig_schema_def *s);
/** The collection named `name`, or NULL. */
const sprig_collection_def *sprig__schema_find(const sprig_schema_def *s,
                                               const char *name);
/** Serialise / parse a schema description (names + id kinds). */
int sprig__schema_encode(const sprig_schema_def *s, sprig_buf *out);
int sprig__schema_decode(sprig_bytes in, sprig_schema_def **out);

/* ---- value objects --------------------------------------------------- */

struct sprig_doc {
    uint64_t revision;
    uint8_t hash[16];
    uint32_t id_len;
    size_t len;
    uint8_t *contents; /* points into data[] after the id */
    uint8_t data[];    /* id, then contents */
};

/** One allocation holding a copy of id and contents. */
sprig_doc *sprig__doc_new(sprig_bytes id, uint64_t revision,
                          const uint8_t hash[16], sprig_bytes contents);

struct sprig_doc_list {
    size_t n, cap;
    sprig_doc **docs;
};
int sprig__doc_list_push(sprig_doc_list *l, sprig_doc *d);

struct sprig_header_list {
    size_t n, cap;
    sprig_header_buf *items;
};
int sprig__header_list_push(sprig_header_list *l, const sprig_header_buf *h);

/** Fill a header_buf from a header (id truncated to SPRIG_ID_MAX). */
void sprig__header_set(sprig_header_buf *hb, const sprig_header *h);

typedef enum sprig__op_kind {
    SPRIG__OP_INSERT,
    SPRIG__OP_UPDATE,
    SPRIG__OP_OVERWRITE,
    SPRIG__OP_DELETE,
    SPRIG__OP_CHECK
} sprig__op_kind;

/** One operation of a transaction.  Bytes are borrowed from the
 *  transaction's arena (or, for the single-operation calls, from the
 *  caller). */
typedef struct sprig__op {
    sprig__op_kind kind;
    const char *collection;
    bool has_id; /* false: push */
    sprig_bytes id;
    sprig_bytes contents; /* insert, update, overwrite */
    bool has_expected;    /* update, delete, check */
    uint64_t expected_rev;
    uint8_t expected_hash[16]; /* all zero: compare the revision only */
    void *mem;                 /* the copies, when the transaction owns them */
} sprig__op;

/** The permission action an operation is checked for (issue 10):
 *  "document.insert", "document.update", "document.overwrite",
 *  "document.delete"; a check reads the document: "document.get". */
const char *sprig__op_action(sprig__op_kind k);

/** Make `op` expect header `expected` (id, revision, hash);
 *  SPRIG_EINVAL when it is NULL. */
int sprig__op_expect(sprig__op *op, const sprig_header *expected);

struct sprig_txn {
    size_t n, cap;
    sprig__op *ops;
};

struct sprig_txn_result {
    uint64_t id;
    size_t n;
    sprig_header_buf *headers;
    long failed;
    int error;
    bool has_conflict;
    sprig_header_buf conflict;
    bool heap; /* allocated by sprig__txn_result_new */
};

/** A result with room for n headers on the heap. */
sprig_txn_result *sprig__txn_result_new(size_t n);
/** Reset a result to "nothing done" over caller storage. */
void sprig__txn_result_init(sprig_txn_result *r, sprig_header_buf *headers,
                            size_t n);

/** A transaction log being built by an implementation. */
typedef struct sprig__log_entry {
    uint64_t id;
    uint64_t timestamp_ms;
    size_t n;
    sprig_change *changes; /* collection/id point into `mem` */
    void *mem;
} sprig__log_entry;

struct sprig_txn_log {
    size_t n, cap;
    sprig__log_entry *entries;
};

/** Encode the changes of one transaction (a log record value). */
int sprig__log_record_encode(uint64_t timestamp_ms, const sprig_change *c,
                             size_t n, sprig_buf *out);
/** Decode a record and append it to the log as entry `id`. */
int sprig__txn_log_append(sprig_txn_log *l, uint64_t id, sprig_bytes record);

/* ---- operations tables ----------------------------------------------- */

struct sprig__cmd; /* cmd.h */

typedef struct sprig_db_ops {
    void (*close)(sprig_db *db);
    const char *(*name)(const sprig_db *db);
    /* Apply a transaction; `res` has room for t->n headers. */
    int (*apply)(sprig_db *db, const sprig_txn *t, sprig_txn_result *res);
    int (*get)(sprig_db *db, const char *coll, sprig_bytes id, sprig_doc **out);
    int (*get_multiple)(sprig_db *db, const char *coll, const sprig_bytes *ids,
                        size_t n, sprig_doc_list **out);
    /* headers_only: docs carry no contents. */
    int (*list)(sprig_db *db, const char *coll, const sprig_range *r,
                sprig_order order, uint32_t limit, bool headers_only,
                sprig_doc_list **out);
    int (*count)(sprig_db *db, const char *coll, const sprig_range *r,
                 uint64_t *out);
    int (*list_executed)(sprig_db *db, uint64_t since, uint32_t limit,
                         sprig_txn_log **out);
    int (*last_txn_id)(sprig_db *db, uint64_t *out);
    /* Views (view_api.c checks the arguments first; src/core/view.h has
     * the shared helpers).  `out` arrives NULL / emptied. */
    int (*view_query)(sprig_db *db, const sprig_view_query *q, bool with_docs,
                      sprig_mapping_list **out);
    int (*view_reduce)(sprig_db *db, const sprig_view_query *q, sprig_buf *out);
    int (*view_reduce_grouped)(sprig_db *db, const sprig_view_query *q,
                               sprig_mapping_list **out);
    int (*view_delete_docs)(sprig_db *db, const sprig_view_query *q,
                            uint64_t *deleted);
    /* Key-value store (kv_api.c checks the arguments first).  `ns` is never
     * NULL ("" is the default namespace), `key` never empty, `so` and
     * `status` never NULL; `previous` and `out` may be NULL (not wanted).
     * Outputs arrive cleared. */
    int (*kv_set)(sprig_db *db, const char *ns, const char *key,
                  const sprig_value *v, const sprig_kv_set_opts *so,
                  sprig_kv_status *status, sprig_value *previous);
    int (*kv_get)(sprig_db *db, const char *ns, const char *key,
                  bool and_delete, sprig_value *out);
    int (*kv_incr)(sprig_db *db, const char *ns, const char *key,
                   const sprig_value *amount, bool decrement, bool saturating,
                   sprig_value *out);
    int (*kv_delete)(sprig_db *db, const char *ns, const char *key,
                     sprig_kv_status *status);
    /* `prefix` is never NULL (""), `after` may be NULL. */
    int (*kv_list)(sprig_db *db, const char *ns, const char *prefix,
                   const char *after, uint32_t limit, sprig_kv_key_list **out);
    /* PubSub (pubsub_api.c checks the arguments first). */
    int (*subscriber_new)(sprig_db *db, sprig_subscriber **out);
    int (*publish)(sprig_db *db, const sprig_bytes *topics, size_t n,
                   sprig_bytes payload);
    /* Was this handle's database deleted since the handle was opened (its
     * operations fail; a new handle finds any database made since under
     * the name)?  Any thread, never blocks.  NULL: never. */
    bool (*dropped)(const sprig_db *db);
    /* Asynchronous write (src/core/cmd.h; NULL where a placement has none):
     * queue a TXN, KV or SWEEP command and return at once.  0: `done` will
     * be called exactly once, later, from another thread (see
     * sprig__cmd_done); a negative code (SPRIG_EINVAL for an admin
     * command, SPRIG_ENOMEM): nothing was queued and `done` is never
     * called.  The submitter owns `cmd` and everything it points at, and
     * keeps them valid and untouched until `done`; the engine may set
     * cmd->hashes (owned by the command: sprig__cmd_clear frees them).
     * The command's fields are not re-checked: build it from validated
     * input, or from sprig__cmd_decode.  A KV or TXN command submitted
     * with now_ms 0 is accepted at the call: the engine stamps now_ms (the
     * storage's clock), and for KV `lazy` (its persistence mode); so a
     * submitter that sees neither can leave them (it then resolves no
     * relative expiry itself).  A handle must not be closed while
     * it has submissions in flight. */
    int (*submit)(sprig_db *db, struct sprig__cmd *cmd,
                  void (*done)(void *udata, int rc, struct sprig__cmd *cmd),
                  void *udata);
    /* Changes feed wake-ups (changes_api.c; NULL: the feed polls the log
     * every SPRIG__CHANGES_POLL_MS).  `watch` gives a non-blocking
     * eventfd, owned by the placement, that is written after every commit
     * of this database from now on (the feed reads it back to zero before
     * it reads the log), and a token for `unwatch`, which stops that and
     * closes the fd.  Any thread. */
    int (*watch)(sprig_db *db, int *fd, void **token);
    void (*unwatch)(sprig_db *db, void *token);
    /* Is the handle's storage replicated (a cluster node's, issue 18), so
     * that every write -- a publish included -- waits for a Raft commit?
     * A server moves such a publish off its loop thread.  Any thread,
     * never blocks.  NULL: never. */
    bool (*replicated)(const sprig_db *db);
} sprig_db_ops;

/** How often a feed without wake-ups (`watch` NULL) re-reads the log. */
#define SPRIG__CHANGES_POLL_MS 50

/** Every database handle starts with this. */
struct sprig_db {
    const sprig_db_ops *ops;
};

/* ---- key-value values (kv_api.c) -------------------------------------- */

/** An output value holding a copy of `payload` for bytes kinds (numbers
 *  from `num`).  SPRIG_ENOMEM. */
int sprig__value_set(sprig_value *out, sprig_value_kind kind,
                     sprig_bytes payload, uint64_t num_bits);

typedef struct sprig__kv_entry {
    char *key;         /* NUL-terminated, in `mem` */
    sprig_value value; /* bytes in `mem`; owned_ NULL */
    uint64_t expire_at;
    void *mem;
} sprig__kv_entry;

struct sprig_kv_key_list {
    size_t n, cap;
    sprig__kv_entry *items;
};
/** Append a copy of (key, value, expire_at).  SPRIG_ENOMEM. */
int sprig__kv_list_push(sprig_kv_key_list *l, sprig_bytes key,
                        const sprig_value *v, uint64_t expire_at);

/* ---- PubSub subscribers and messages (pubsub_api.c) -------------------- */

/** What a subscriber handle does; a local hub and (later) a remote client
 *  each implement it.  Arguments are checked by pubsub_api.c. */
typedef struct sprig_subscriber_ops {
    int (*subscribe)(sprig_subscriber *s, sprig_bytes topic);
    int (*unsubscribe)(sprig_subscriber *s, sprig_bytes topic);
    /* timeout_ms: -1 for ever, 0 poll; SPRIG_ETIMEDOUT */
    int (*recv)(sprig_subscriber *s, int timeout_ms, sprig_message **out);
    int (*fd)(sprig_subscriber *s);
    uint64_t (*dropped)(const sprig_subscriber *s);
    int (*set_limits)(sprig_subscriber *s, size_t max_messages,
                      size_t max_bytes);
    void (*free)(sprig_subscriber *s);
} sprig_subscriber_ops;

/** Every subscriber handle starts with this. */
struct sprig_subscriber {
    const sprig_subscriber_ops *ops;
};

/** A message: immutable once made, shared by every subscriber it reaches
 *  (reference-counted; sprig_message_free() drops one reference). */
struct sprig_message {
    long refs; /* atomic (__atomic builtins) */
    size_t topic_len, payload_len;
    uint8_t *payload; /* in data[], after the topic */
    uint8_t data[];
};

/** A new message with one reference, copying topic and payload; NULL
 *  (with the detail recorded) when out of memory. */
sprig_message *sprig__message_new(sprig_bytes topic, sprig_bytes payload);
/** Take one more reference. */
sprig_message *sprig__message_ref(sprig_message *m);
/** Bytes the message accounts for in a queue (topic + payload). */
size_t sprig__message_size(const sprig_message *m);

/** What a storage tells a server that serves it (storage ops `status`). */
typedef struct sprig__storage_status {
    /* Key-value writes commit without waiting for the disk (lazy
     * persistence, durability none, memory only): a server gives them a
     * write lane of their own. */
    bool kv_writes_lazy;
} sprig__storage_status;

/** The jobs of sprig_storage_ops.maintain (values travel on the wire). */
typedef enum sprig__maint_kind {
    SPRIG__MAINT_BACKUP = 1,
    SPRIG__MAINT_RESTORE = 2,
    SPRIG__MAINT_EXPORT = 3,
    SPRIG__MAINT_IMPORT = 4,
    SPRIG__MAINT_COMPACT = 5
} sprig__maint_kind;

typedef struct sprig_storage_ops {
    void (*close)(sprig_storage *st);
    int (*register_schema)(sprig_storage *st, const sprig_schema_def *s);
    int (*create_database)(sprig_storage *st, const char *name,
                           const char *schema, bool only_if_needed);
    int (*delete_database)(sprig_storage *st, const char *name);
    int (*list_databases)(sprig_storage *st, sprig_database_list **out);
    int (*list_schemas)(sprig_storage *st, sprig_schema_list **out);
    int (*database)(sprig_storage *st, const char *name, sprig_db **out);
    /* Fill `out` (arrives zeroed); any thread, never blocks.  NULL: the
     * defaults (all false). */
    void (*status)(sprig_storage *st, sprig__storage_status *out);
    /* Backup, restore, export, import or compaction (the public functions
     * in sprig.h give each contract; `arg` is the directory, or the
     * database for a compaction).  Runs where the storage lives: local
     * (src/local/backup.c, export.c) or in the server (a client's op is a
     * request).  NULL: SPRIG_EINVAL, "not supported". */
    int (*maintain)(sprig_storage *st, sprig__maint_kind kind, const char *arg,
                    sprig_progress_fn cb, void *udata);
    /* Linearizable reads (issue 18): wait until a read started now sees
     * every write acknowledged before it anywhere (on a cluster node: it
     * confirms it leads and has applied what was committed).  Blocks the
     * calling thread (never the driver's).  SPRIG_ENOTLEADER (a follower:
     * the detail names the leader), SPRIG_ETIMEDOUT (leadership lost
     * meanwhile), SPRIG_ECLOSED.  NULL, as for any storage that is not
     * replicated: nothing to wait for. */
    int (*read_barrier)(sprig_storage *st);
} sprig_storage_ops;

/** Every storage handle starts with this. */
struct sprig_storage {
    const sprig_storage_ops *ops;
};

/** The status of `st` (all false when its ops have none).  Any thread. */
static inline void
sprig__storage_status_of(sprig_storage *st, sprig__storage_status *out)
{
    memset(out, 0, sizeof *out);
    if (st->ops->status) {
        st->ops->status(st, out);
    }
}

/** Was `db`'s database deleted under it (db ops `dropped`)?  Any thread. */
static inline bool
sprig__db_was_dropped(const sprig_db *db)
{
    return db->ops->dropped && db->ops->dropped(db);
}

struct sprig_database_list {
    size_t n, cap;
    char **names;
    char **schemas;
};
int sprig__database_list_push(sprig_database_list *l, const char *name,
                              const char *schema);
void sprig__database_list_sort(sprig_database_list *l);

struct sprig_schema_list {
    size_t n, cap;
    sprig_schema_def **items;
};
/** Takes ownership of `s` (even on failure). */
int sprig__schema_list_push(sprig_schema_list *l, sprig_schema_def *s);

#endif /* SPRIG_CORE_H */
