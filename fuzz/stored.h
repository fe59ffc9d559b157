/*
 * stored.h -- a real storage to corrupt, shared by the harnesses over data
 * read back from disk (fuzz_doc_record, fuzz_log_record, fuzz_kv_record,
 * fuzz_view_record, fuzz_admin_record).  Once per process, stored.c builds
 * a storage on /dev/shm holding every kind of record: a plain collection
 * with an eager view (built-in sum), a lazy view (count) and a C view with
 * its own reduce; an encrypted collection (the vault, keyed by a fixed
 * keystore) with a view; compressed values; key-value pairs with and
 * without expiry; the transaction log; the registry and schema records.
 *
 * Each input replaces one stored entry (a value, a key, or bytes flipped
 * in it) directly in LMDB, then everything is read back through the public
 * API and the integrity check; then the entry is put back.  Every read
 * must return success or one of the errors a corrupt file may give
 * (SPRIG_ECORRUPT, SPRIG_EAUTH, SPRIG_ENOTFOUND); anything else, a crash,
 * a sanitizer report or a leaked allocation aborts.
 *
 * Input layout: [entry u16 BE][mode u8][arg u8][bytes...].  The entry is
 * taken modulo the number of entries of the harness's tables; the mode:
 * 0 the value becomes `bytes`, 1 `bytes` are XORed into the value from
 * offset `arg`, 2 the key becomes `bytes` (value kept), 3 the value is
 * cut to `arg` bytes.
 */
#ifndef SPRIG_FUZZ_STORED_H
#define SPRIG_FUZZ_STORED_H

#include <stddef.h>
#include <stdint.h>

/* Which environment an entry lives in. */
#define FX_DB 0     /* the database's LMDB environment, changed live */
#define FX_ADMIN 1  /* `_admin`: changed with the storage closed */
#define FX_DBMETA 2 /* the database's `meta` table, storage closed */

/** Run one input over the entries of the tables whose names start with
 *  one of `prefixes` (NULL-ended) in environment `where`.  Builds the
 *  storage on first use; aborts on any failure of the fixture itself.
 *  With SPRIG_FUZZ_SEEDS=DIR set, the first call writes one seed input
 *  per entry into DIR (for fuzz/corpus/NAME). */
void fx_run(int where, const char *const *prefixes, const uint8_t *data,
            size_t size);

#endif
