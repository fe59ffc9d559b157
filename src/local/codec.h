/*
 * codec.h -- the value codec of src/local and the vault behind it (private
 * to the engine).  Every stored document body, view record value, reduce
 * value and key-value value passes through sprig__codec_encode() on write
 * and sprig__codec_decode() on read; so does each command-log record of a
 * database with an encrypted scope (ckpt.c seals, db.c's replay opens).
 *
 *   codec.c  compression (LZ4, above a threshold, kept only when it saves
 *            bytes) then encryption (the vault's current key), and back
 *   vault.c  the storage's master keys, kept encrypted in <storage>/vault
 *            under a vault key from a key file, a passphrase (argon2id) or
 *            a caller's keystore; sealing and opening values
 *            (XChaCha20-Poly1305, a unique nonce: a random prefix per open
 *            and a counter, the location as associated
 *            data); rotation; the key of keyed revision hashes
 *
 * Layout.  A stored value is [payload] with its codec flags kept beside it
 * by the caller (the record types each have a spare field for them):
 *   - documents and view records `d`: the top byte of the revision
 *     (revisions stay below 2^56);
 *   - key-value records: the high nibble of the kind byte;
 *   - reduce values `r`: one leading byte;
 *   - command-log records: one leading byte.
 * Flags 0 is the plain value, byte for byte what format 1 stored, so a
 * format-1 storage reads unchanged (the upgrade at open only records the
 * new version; view indexes are rebuilt since their records changed).
 * SPRIG__CF_LZ4: [plain length u32 BE][LZ4 block].  SPRIG__CF_ENC: the
 * (compressed) payload sealed: [key id u32 BE][nonce 24][ciphertext][tag
 * 16], associated data = flags, location kind, database directory name,
 * scope and id (sprig__vloc): a value moved to another place, even inside
 * the same table, fails authentication.
 *
 * SPRIG__CF_CRC (format 3): the (compressed) payload followed by a CRC-32C
 * (u32 LE) over the flags, the location kind, scope and id, the header
 * bytes the record keeps beside the value (sprig__vloc.hdr: revision and
 * hash, kind and expiry) and the payload; checked by every decode, so a
 * flipped byte in a plaintext value, its header or its key (id, view key,
 * key-value key) is SPRIG_ECORRUPT instead of a changed answer.  Written
 * by scopes whose codec has `crc` and no vault.  With SPRIG__CF_ENC the
 * bit adds no CRC (Poly1305 already covers the payload): it says the
 * header (sprig__vloc.hdr) is in the associated data too, so a flipped
 * revision, hash or expiry of an encrypted value fails authentication as
 * well (the flags are in the associated data: the bit cannot be dropped).
 * The
 * database's directory name is not in it (unlike the associated data): the
 * CRC is against damage, not against a value copied on purpose.  Values
 * written before format 3 have no CRC bit and read as before.
 */
#ifndef SPRIG_LOCAL_CODEC_H
#define SPRIG_LOCAL_CODEC_H

#include "core/core.h"

#define SPRIG__CF_LZ4 0x01u
#define SPRIG__CF_ENC 0x02u
#define SPRIG__CF_CRC 0x04u
#define SPRIG__CF_ALL 0x07u

/* Bytes SPRIG__CF_CRC adds after the payload. */
#define SPRIG__CRC_BYTES 4

/* The storage format this build writes (recorded in `_admin` meta under
 * "format").  1: before the codec (no record).  2: values through the
 * codec (flags beside each value), view definition records version 2.
 * 3: plaintext values carry SPRIG__CF_CRC (formats 1 and 2 upgrade in
 * place: their values have no CRC bit and read unchanged; a format-3
 * storage is refused by builds that write 2, which would not know the
 * bit). */
#define SPRIG__FORMAT_VERSION 3u

/* Bytes sealing adds: key id, nonce, tag. */
#define SPRIG__SEAL_OVERHEAD (4 + 24 + 16)

typedef struct sprig__vault sprig__vault;

/* Where a value lives: its associated data.  kind: 'd' document, 'v' view
 * record, 'r' reduce value, 'k' key-value record, 'l' log record. */
typedef struct sprig__vloc {
    char kind;
    const char *db;    /* the database directory's name, "<name>.<id>" */
    const char *scope; /* collection, "collection/view", or "" */
    sprig_bytes id;    /* document id, view key, encoded key; or empty */
    sprig_bytes hdr;   /* header bytes kept beside the value, without the
                          flags, that its CRC covers too; or empty */
    bool crc_required; /* flags 0 (no CRC) is damage here: the database
                          was created when every value got one */
    const uint32_t *crc_start; /* or NULL: the CRC state after the fixed
                          start of a value of flags SPRIG__CF_CRC exactly
                          here (sprig__codec_crc_start), kept by the
                          caller; used for no other flags */
} sprig__vloc;

/* How one scope (a collection and its views, the key-value store, the
 * command log) encodes what it writes. */
typedef struct sprig__codec {
    sprig__vault *vault;   /* encrypt under its current key; NULL: not */
    uint32_t compress_min; /* compress values longer; UINT32_MAX: never */
    bool crc; /* append a CRC-32C to what is not encrypted (SPRIG__CF_CRC) */
} sprig__codec;

/** Encode `plain` for location `loc` under codec `c`: *flags gets the
 *  codec flags, *stored the bytes to store -- `plain` itself when *flags
 *  is 0 (nothing copied), else the contents of `out` (overwritten).  With
 *  SPRIG__CF_CRC the CRC covers loc->hdr: the caller stores exactly those
 *  header bytes beside the value.
 *  Any thread.  Errors: SPRIG_ENOMEM, SPRIG_ETOOBIG (over 2 GiB). */
int sprig__codec_encode(const sprig__codec *c, const sprig__vloc *loc,
                        sprig_bytes plain, sprig_buf *out, uint8_t *flags,
                        sprig_bytes *stored);

/** Decode `stored` (flags `flags`) for `loc`: *plain is `stored` itself
 *  (or, with flags SPRIG__CF_CRC alone, all of it but the CRC) when
 *  nothing is compressed or sealed, else bytes in `scratch` (overwritten;
 *  valid until it changes).  `v` may be NULL when the storage has no
 *  vault.  Any thread.  Errors: SPRIG_EAUTH (an encrypted value and no
 *  vault, a key the vault does not hold, or a value that fails
 *  authentication: altered, or moved from elsewhere), SPRIG_ECORRUPT
 *  (unknown flags, malformed framing, a CRC that does not match: the
 *  message says which value), SPRIG_ENOMEM. */
int sprig__codec_decode(sprig__vault *v, const sprig__vloc *loc, uint8_t flags,
                        sprig_bytes stored, sprig_buf *scratch,
                        sprig_bytes *plain);

/** Check and strip the CRC of a plain value whose flags are exactly
 *  SPRIG__CF_CRC (the common case of a read, without sprig__codec_decode's
 *  dispatch): *plain is `stored` without its 4 CRC bytes, pointing into
 *  `stored`.  When loc->hdr lies right before `stored` in memory (a stored
 *  document) the CRC is one pass over both.  Any thread.  Errors:
 *  SPRIG_ECORRUPT (too short, or a CRC that does not match: the message
 *  says which value). */
int sprig__codec_check(const sprig__vloc *loc, sprig_bytes stored,
                       sprig_bytes *plain);

/** Decode a value whose flags are exactly SPRIG__CF_ENC, or that and
 *  SPRIG__CF_CRC (`flags`), straight into `out` (room for stored.len -
 *  SPRIG__SEAL_OVERHEAD bytes, the plain length): no scratch, no copy.
 *  Errors as sprig__codec_decode. */
int sprig__codec_open_into(sprig__vault *v, const sprig__vloc *loc,
                           uint8_t flags, sprig_bytes stored, uint8_t *out);

/** The CRC-32C that SPRIG__CF_CRC stores (u32 LE) after `payload` for a
 *  value at `loc` with codec flags `flags` (the whole flags byte).  Any
 *  thread; no errors.  For the integrity check's tests and the fuzz
 *  harnesses, which make damage that keeps its CRC valid. */
uint32_t sprig__codec_crc(const sprig__vloc *loc, uint8_t flags,
                          sprig_bytes payload);

/** The CRC state after the fixed start of the CRC of a value at `loc`
 *  with flags `flags`: flags, kind, id length (loc->id.len; its bytes are
 *  not read) and scope.  Opaque; a caller keeps it per scope and id
 *  length in loc->crc_start so a value's CRC skips that part.  Any
 *  thread; no errors. */
uint32_t sprig__codec_crc_start(const sprig__vloc *loc, uint8_t flags);

/** The key id an encrypted payload was sealed with (0 if too short). */
uint32_t sprig__codec_key_id(uint8_t flags, sprig_bytes stored);

/* ---- vault.c ------------------------------------------------------------ */

/** Open the vault of the storage in directory `dir` (<dir>/vault), taking
 *  the vault key from `o` (keystore, passphrase, or key file: o's or
 *  <dir>/vault.key).  With `create`, a storage without a vault gets one: a
 *  random master key, and a new key file (mode 0600) when the key comes
 *  from a file that does not exist.  Without `create` and no vault:
 *  SPRIG_ENOTFOUND (no detail needed).  Errors: SPRIG_EAUTH (no key, or a
 *  key that does not open the vault), SPRIG_EPERM (a key file others can
 *  read), SPRIG_EIO, SPRIG_ECORRUPT, SPRIG_ENOMEM.  Free with _free. */
int sprig__vault_open(const char *dir, const sprig_storage_options *o,
                      bool create, sprig__vault **out);
/** Wipe the keys and free; NULL is a no-op. */
void sprig__vault_free(sprig__vault *v);
/** Whether a vault file exists in storage directory `dir`. */
bool sprig__vault_exists(const char *dir);

/** Seal `m` (n bytes) under the current key into `out` (room for n +
 *  SPRIG__SEAL_OVERHEAD) with associated data `ad`.  Any thread. */
void sprig__vault_seal(sprig__vault *v, const uint8_t *ad, size_t adlen,
                       const uint8_t *m, size_t n, uint8_t *out);
/** Open sealed bytes `c` (n bytes) into `out` (room for n -
 *  SPRIG__SEAL_OVERHEAD).  SPRIG_EAUTH, SPRIG_ECORRUPT (too short). */
int sprig__vault_unseal(sprig__vault *v, const uint8_t *ad, size_t adlen,
                        const uint8_t *c, size_t n, uint8_t *out);

/** The key of keyed revision hashes of encrypted collections in the
 *  database living in directory `dir_name`: derived from the vault's hash
 *  secret (made with the vault, kept across rotations so stored hashes and
 *  the headers clients hold stay valid). */
void sprig__vault_hash_key(sprig__vault *v, const char *dir_name,
                           uint8_t out[16]);

/** A fingerprint of the vault's secrets (its hash secret and every master
 *  key): equal on two storages exactly when they hold copies of the same
 *  vault, so each opens what the other sealed (a Raft snapshot of an
 *  encrypted storage, repl.h).  Reveals nothing of the keys (a keyed
 *  BLAKE2b).  Any thread. */
void sprig__vault_fingerprint(sprig__vault *v, uint8_t out[16]);

/** The current key's id. */
uint32_t sprig__vault_current(sprig__vault *v);
/** Rotation, step 1: a new random master key becomes current (the old ones
 *  still open what they sealed); the vault file is rewritten durably.
 *  SPRIG_EIO, SPRIG_ENOMEM. */
int sprig__vault_add_key(sprig__vault *v);
/** Rotation, last step: forget every key but the current one, durably. */
int sprig__vault_drop_old(sprig__vault *v);
/** How many master keys the vault holds. */
size_t sprig__vault_keys(sprig__vault *v);

#endif /* SPRIG_LOCAL_CODEC_H */
