/*
 * cmd.h -- write commands: what reaches a database's writer (or the
 * storage's `_admin` writer), as a self-contained, serialisable value.
 *
 * Every write of the engine is one command: a transaction's operations, a
 * key-value change, an expiry sweep step, or an admin change (create or
 * delete a database, register a schema).  Everything that the command and
 * the state before it do not determine is decided once, when the command
 * is accepted, and carried in it: the wall-clock time (`now_ms`: the log
 * timestamp, the "now" of expiry decisions), relative expiries (turned into
 * absolute ones), and which keys a sweep step removes.  Ids derived from
 * the state (a push's next id, a database's directory id) stay derived
 * from it.  So applying the same sequence of commands to the same state
 * gives byte-identical LMDB contents on any machine, whatever its clock:
 * that is what the command log (durability) and the cluster (Raft)
 * replicate.
 *
 * Encoding (sprig__cmd_encode), all integers big-endian:
 *   [version u8 = 1][kind u8][now_ms u64] then by kind:
 *   TXN       [n u32] n x ( [op kind u8][flags u8: 1 has_id, 2 has_expected]
 *             [collection: len u8, bytes][id: len u16, bytes, if has_id]
 *             [contents: len u32, bytes, for insert/update/overwrite]
 *             [expected revision u64, hash 16 bytes, if has_expected] )
 *   KV        [kv kind u8][namespace: len u16, bytes][key: len u16, bytes]
 *             SET:  [value][check u8][keep_expiration u8][expire_at u64]
 *             INCR: [amount value][decrement u8][saturating u8]
 *             DEL, TAKE: nothing more
 *             a value is [kind u8] then [len u32, bytes] or [8 bytes]
 *   SWEEP     [n u32] n x ( [expire_at u64][encoded key: len u16, bytes] )
 *   CREATE_DB [name: len u8, bytes][schema: len u8, bytes]
 *   DELETE_DB [name: len u8, bytes]
 *   SCHEMA    [encoded schema (sprig__schema_encode): len u32, bytes]
 *   PUBLISH   [n u32] n x [topic: len u16, bytes][payload: len u32, bytes]
 * Decoding validates everything (version, kinds, names, limits, lengths,
 * no trailing bytes); anything else is SPRIG_ECORRUPT, never an assert.
 *
 * Threads: a command is a plain value; one thread at a time uses it.
 */
#ifndef SPRIG_CORE_CMD_H
#define SPRIG_CORE_CMD_H

#include "core.h"

#define SPRIG__CMD_VERSION 1

typedef enum sprig__cmd_kind {
    SPRIG__CMD_TXN = 1,       /* a transaction's operations */
    SPRIG__CMD_KV = 2,        /* one key-value change */
    SPRIG__CMD_SWEEP = 3,     /* one expiry sweep step */
    SPRIG__CMD_CREATE_DB = 4, /* admin: record a new database */
    SPRIG__CMD_DELETE_DB = 5, /* admin: forget a database */
    SPRIG__CMD_SCHEMA = 6,    /* admin: register (or extend) a schema */
    /* a PubSub message to a database's topics: changes no stored state;
     * only a replicated storage makes it a command (so Raft orders it),
     * and applying it hands it to the local hub (src/local/pubsub.c) */
    SPRIG__CMD_PUBLISH = 7
} sprig__cmd_kind;

typedef enum sprig__kv_cmd_kind {
    SPRIG__KV_SET = 1,
    SPRIG__KV_INCR = 2,
    SPRIG__KV_DEL = 3,
    SPRIG__KV_TAKE = 4 /* get and delete */
} sprig__kv_cmd_kind;

/** One key a sweep step removes: its index entry (expire_at, encoded key).
 *  The record goes too if it still carries that expiry when applied. */
typedef struct sprig__sweep_item {
    uint64_t at;
    sprig_bytes key; /* namespace, 0x00, key */
} sprig__sweep_item;

/** What applying a command produced (never encoded: every replica computes
 *  it).  Reset by each application (an apply may run more than once). */
typedef struct sprig__cmd_out {
    /* TXN: headers etc.; the submitter provides it with room for n_ops
     * headers (sprig__txn_result_new / _init). */
    sprig_txn_result *txn;
    /* KV */
    sprig_kv_status status;
    bool found;          /* a live value was there before */
    sprig_value value;   /* previous (SET, when wanted), taken (TAKE, when
                            wanted), result (INCR); bytes owned: move them
                            out or sprig_value_clear() */
    uint64_t stored_exp; /* an expiry the change stored (for the sweeper) */
    /* SWEEP */
    uint64_t removed;
    /* CREATE_DB: the directory id the registry recorded */
    uint64_t dir_id;
    /* every kind: the log entry written (0: none, nothing changed) */
    uint64_t log_id;
    /* request ids (issue 18): the command's request id was in the
     * database's table, so nothing was applied and the outputs above are
     * the first application's, as recorded (src/local/rid.c) */
    bool deduped;
} sprig__cmd_out;

/** A write command.  Pointers are either borrowed (the submitter keeps the
 *  memory alive until the command completes) or, after sprig__cmd_decode,
 *  owned through `mem_`/`ops_mem_` and released by sprig__cmd_clear. */
typedef struct sprig__cmd {
    sprig__cmd_kind kind;
    uint64_t now_ms; /* the storage's clock when accepted */
    /* TXN */
    const sprig__op *ops;
    size_t n_ops;
    /* KV */
    sprig__kv_cmd_kind kv;
    const char *ns, *key;       /* NUL-terminated; ns "" is the default */
    sprig_value value;          /* SET: the value; INCR: the amount */
    sprig_kv_check check;       /* SET */
    bool keep_expiration;       /* SET */
    uint64_t expire_at;         /* SET: absolute, 0 never (relative resolved) */
    bool decrement, saturating; /* INCR */
    /* SWEEP */
    const sprig__sweep_item *items;
    size_t n_items;
    /* admin: database name, schema name (CREATE_DB) */
    const char *name, *schema_name;
    sprig_bytes schema; /* SCHEMA: sprig__schema_encode bytes */
    /* PUBLISH: the topics (each 1..SPRIG_TOPIC_MAX bytes) and the payload
     * (at most SPRIG_PAYLOAD_MAX bytes) */
    const sprig_bytes *topics;
    size_t n_topics;
    sprig_bytes payload;

    /* ---- local, not encoded ---- */
    bool want_value;       /* KV SET / TAKE: capture the old value in out */
    bool lazy;             /* KV in lazy persistence: may commit without sync */
    uint8_t (*hashes)[16]; /* TXN: per op, or NULL (src/local's
                              sprig__cmd_hash) */
    /* replication (src/local/repl.h): applying a committed Raft entry
     * (or a node-local change): bypass the storage's replicator; and the
     * entry's index, recorded with the effects when not 0 */
    bool replicated;
    uint64_t raft_index;
    /* request id (issue 18): the client's id for the request this command
     * serves; a replicated TXN or KV command whose id is in its database's
     * table is not applied again (src/local/rid.c).  Carried in the Raft
     * entry's header, not in this encoding. */
    bool has_rid;
    uint8_t rid[16];
    sprig__cmd_out out;
    void *mem_, *ops_mem_, *hash_mem_; /* owned memory */
} sprig__cmd;

/** How an asynchronous submission completes (sprig_db_ops.submit): called
 *  exactly once, never inside the submit call, from the database's writer
 *  thread or another thread committing through the same writer, with the
 *  error detail of a failure recorded in that thread (sprig_errmsg).  `rc`
 *  is the command's outcome (0: committed per the durability); its results
 *  are in cmd->out.  From this call on the command is the submitter's
 *  again: the engine never touches it afterwards, so the callback may
 *  clear or free it.  Keep it short: it runs between batches.  It may
 *  submit again, but must not close the database's last handle (closing
 *  joins the writer thread it may be running on). */
typedef void (*sprig__cmd_done)(void *udata, int rc, sprig__cmd *cmd);

/** Append the encoding of `c` to `out`.  SPRIG_ENOMEM; SPRIG_EINVAL for a
 *  command that cannot be encoded (unknown kind, a field over its limit).
 *  On failure `out` may hold a partial encoding past its old length. */
int sprig__cmd_encode(const sprig__cmd *c, sprig_buf *out);

/** Decode `in` into `*c` (overwritten; clear it with sprig__cmd_clear even
 *  on failure).  The command owns copies of everything it points at; its
 *  content hashes are not computed (the engine's sprig__cmd_hash does it,
 *  or apply hashes as it goes).  SPRIG_ECORRUPT (with a detail) for any
 *  malformed input, SPRIG_ENOMEM. */
int sprig__cmd_decode(sprig_bytes in, sprig__cmd *c);

/** Release what `c` owns (decoded copies, hashes, out.value) and zero it.
 *  Borrowed memory is untouched.  NULL is a no-op. */
void sprig__cmd_clear(sprig__cmd *c);

/* ---- the current request id (issue 18) --------------------------------
 * The server runs a write request's handler with the request's id set as
 * its thread's "current request id"; the first database command (TXN or
 * KV) that a replicated storage accepts on that thread takes it (and
 * clears it), whether the handler submits asynchronously or calls the
 * synchronous API.  So one request's id goes to one command only. */

/** Set this thread's current request id (NULL clears it). */
void sprig__rid_set_current(const uint8_t rid[16]);
/** Take this thread's current request id into `rid` and clear it: true
 *  when there was one. */
bool sprig__rid_take_current(uint8_t rid[16]);

#endif /* SPRIG_CORE_CMD_H */
