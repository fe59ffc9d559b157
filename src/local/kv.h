/*
 * kv.h -- private interface of the key-value store of src/local, shared by
 * kv.c (operations) and kv_expiry.c (expiry index, sweeper, lazy flusher).
 * The rest of the engine sees only the declarations in local.h.
 *
 * Tables, in the database's own LMDB environment:
 *   kv      encoded key -> record
 *   kv.exp  [expire_at u64 BE][encoded key] -> empty
 * An encoded key is the namespace's bytes, one 0x00, the key's bytes (a
 * namespace holds no NUL, so the encoding is unambiguous and keeps each
 * namespace's keys together in byte order).  A record is
 * [kind u8][expire_at u64 BE, 0 = never][payload: the bytes, or the number
 * as 8 bytes BE].  The kind byte's high nibble holds the payload's codec
 * flags (codec.h; 0: as written above); an encoded payload is decoded by
 * sprig__kv_rec_decode (location kind 'k', id = the encoded key).
 *
 * Invariant: kv.exp holds exactly one entry (t, k) for each record k whose
 * expire_at is t != 0, and nothing else; every write keeps it so in the same
 * LMDB transaction (sprig__kv_verify() checks it in tests).
 */
#ifndef SPRIG_LOCAL_KV_H
#define SPRIG_LOCAL_KV_H

#include "local.h"

#define SPRIG__KV_REC_HDR 9                      /* kind + expire_at */
#define SPRIG__KV_ENC_MAX (SPRIG_KV_KEY_MAX + 1) /* + the 0x00 */
#define SPRIG__KV_EXP_MAX (8 + SPRIG__KV_ENC_MAX)

struct sprig__kv {
    sprig__ldb *ldb;
    MDB_dbi data, exp;
    /* lazy: the storage asked for lazy persistence and its commits sync at
     * all (not durability NONE, not memory_only) */
    bool lazy;
    uint32_t lazy_changes, lazy_ms;
    uint64_t (*clock_ms)(void *udata);
    void *clock_udata;
    sprig_buf wenc, wdec; /* codec scratch of the writer's applies */

    /* The housekeeper thread (kv_expiry.c), started on first need.  Guarded
     * by `lock` unless atomic. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    pthread_t thread;
    bool running; /* started; joined by sprig__kv_close() */
    bool stop;
    uint64_t next_due;  /* earliest expiry the index may hold, or MAX */
    uint64_t noted_min; /* earliest expiry noted during a sweep */
    bool retry_soon;    /* the last sweep met the open's log replay */
    atomic_bool flush_pending;
    atomic_bool flush_now;
    uint64_t flush_deadline; /* monotonic ms; 0: none */
    atomic_ulong sweeps, swept, flushes, flush_errors;
};

/* An encoded (namespace, key). */
typedef struct sprig__kv_key {
    uint8_t b[SPRIG__KV_ENC_MAX];
    size_t len;
} sprig__kv_key;

/* A parsed record; `payload` borrows the map (valid until the next write in
 * the same transaction, or the end of a read). */
typedef struct sprig__kv_rec {
    sprig_value_kind kind;
    uint64_t expire_at;
    sprig_bytes payload; /* bytes values */
    uint64_t bits;       /* numbers: the 8 bytes of the union */
    uint8_t flags;       /* codec flags: payload still encoded until
                            sprig__kv_rec_decode */
} sprig__kv_rec;

/* ---- kv.c -------------------------------------------------------------- */

/** Parse a stored record's header (kind, expiry, flags) and its stored
 *  payload (a plain number is read into bits); SPRIG_ECORRUPT when
 *  malformed.  Enough for expiry decisions. */
int sprig__kv_rec_parse(const MDB_val *v, sprig__kv_rec *r);
/** Decode r's payload (stored under encoded key `k`) when it has codec
 *  flags: payload then points into `scratch`, bits is set for numbers.
 *  Errors: those of sprig__codec_decode (SPRIG_EAUTH), SPRIG_ECORRUPT. */
int sprig__kv_rec_decode(const sprig__kv *kv, const MDB_val *k,
                         sprig__kv_rec *r, sprig_buf *scratch);
/** The storage's clock, in ms since the epoch. */
uint64_t sprig__kv_now(const sprig__kv *kv);
/** The engine behind a local handle, or SPRIG_ENOTFOUND when deleted. */
int sprig__kv_of(sprig_db *db, sprig__kv **out);
/** Read `key` (`name` for messages) in a snapshot; SPRIG_ENOTFOUND when
 *  absent or expired.  `out` may be NULL. */
int sprig__kv_read(sprig__kv *kv, const sprig__kv_key *key, const char *name,
                   sprig_value *out);

struct sprig__cmd;
struct sprig__cmd_out;
/** Apply a KV command in the writer's transaction (resets `o` first). */
int sprig__kv_apply_cmd(MDB_txn *txn, sprig__kv *kv, const struct sprig__cmd *c,
                        struct sprig__cmd_out *o);
/** After a KV command committed: lazy flush and sweeper notes. */
void sprig__kv_after_commit(sprig__kv *kv, const struct sprig__cmd *c);

/* ---- kv_expiry.c ------------------------------------------------------- */

/** Apply a SWEEP command (resets `o` first): remove each named index entry
 *  still present, and its record if it still carries that expiry. */
int sprig__kv_sweep_apply(MDB_txn *txn, sprig__kv *kv,
                          const struct sprig__cmd *c, struct sprig__cmd_out *o);

/** Add / remove the index entry (at, key). */
int sprig__kv_exp_put(MDB_txn *txn, sprig__kv *kv, const MDB_val *key,
                      uint64_t at);
int sprig__kv_exp_del(MDB_txn *txn, sprig__kv *kv, const MDB_val *key,
                      uint64_t at);

/** Set up the housekeeper's state (no thread yet).  SPRIG_ENOMEM. */
int sprig__kv_housekeeper_init(sprig__kv *kv);
/** Stop and join the thread, then release the state. */
void sprig__kv_housekeeper_fini(sprig__kv *kv);
/** Look at the index: start the sweeper if anything may expire. */
void sprig__kv_expiry_scan(sprig__kv *kv);
/** A committed write stored expiry `at`: wake the sweeper if earlier. */
void sprig__kv_expiry_note(sprig__kv *kv, uint64_t at);
/** A lazy write committed: schedule (or start) a flush per thresholds. */
void sprig__kv_lazy_note(sprig__kv *kv);

#endif /* SPRIG_LOCAL_KV_H */
