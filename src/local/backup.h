/*
 * backup.h -- what backup.c (backup, restore, compaction) shares with
 * export.c (export, import): directory and manifest helpers, and the two
 * jobs export.c implements.  Private to those files.
 */
#ifndef SPRIG_LOCAL_BACKUP_H
#define SPRIG_LOCAL_BACKUP_H

#include "local.h"

#include <jansson.h>

/** Make directory `dir` for a job's output: it must not exist, or be
 *  empty.  *made: this call created it.  SPRIG_EEXIST, SPRIG_EIO. */
int sprig__bk_new_dir(const char *dir, bool *made);
/** Write `j` as `dir`/`name` durably (a temporary name, fsync, rename,
 *  directory sync).  `j` NULL: SPRIG_ENOMEM.  SPRIG_EIO, SPRIG_EFULL. */
int sprig__bk_write_json(const char *dir, const char *name, json_t *j);
/** A new JSON string: the base64 (standard alphabet) of `v`; NULL when out
 *  of memory. */
json_t *sprig__bk_b64(sprig_bytes v);
/** Decode base64 text `s` into a new allocation *out of *n bytes (free
 *  with sprig__free).  SPRIG_ECORRUPT (`what` names it), SPRIG_ENOMEM. */
int sprig__bk_unb64(const char *s, const char *what, uint8_t **out, size_t *n);

/** Register every schema of `ss` (a JSON array of {"record": base64 of
 *  the record `_admin` keeps}) by sprig__storage_put_schema; takes the
 *  storage lock.  SPRIG_ECORRUPT, SPRIG_ESCHEMA, storage errors. */
int sprig__bk_put_schemas(sprig__lstorage *st, json_t *ss);

/** The export and import jobs (export.c). */
int sprig__export(sprig__lstorage *st, const char *dir, sprig_progress_fn cb,
                  void *udata);
int sprig__import(sprig__lstorage *st, const char *dir, sprig_progress_fn cb,
                  void *udata);

#endif /* SPRIG_LOCAL_BACKUP_H */
