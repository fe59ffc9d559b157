/*
 * maint_api.c -- the public functions of backup and restore, export and
 * import, compaction (sprig.h): they check their arguments and call the
 * storage's `maintain` operation, which does the work where the storage
 * lives (src/local/backup.c and export.c; a request in src/client).
 */
#include "core.h"

static int
maintain(sprig_storage *st, sprig__maint_kind kind, const char *arg,
         sprig_progress_fn cb, void *udata)
{
    if (!st) {
        return sprig__err(SPRIG_EINVAL, "storage is NULL");
    }
    if (!arg || !*arg) {
        return sprig__err(SPRIG_EINVAL, kind == SPRIG__MAINT_COMPACT
                                            ? "no database name"
                                            : "no directory");
    }
    if (kind == SPRIG__MAINT_COMPACT) {
        int rc = sprig__check_db_name(arg);
        if (rc) {
            return rc;
        }
    }
    if (!st->ops->maintain) {
        return sprig__err(SPRIG_EINVAL, "this storage cannot be backed up, "
                                        "restored, exported, imported or "
                                        "compacted");
    }
    return st->ops->maintain(st, kind, arg, cb, udata);
}

int
sprig_storage_backup(sprig_storage *st, const char *dir, sprig_progress_fn cb,
                     void *udata)
{
    return maintain(st, SPRIG__MAINT_BACKUP, dir, cb, udata);
}

int
sprig_storage_restore(sprig_storage *st, const char *dir, sprig_progress_fn cb,
                      void *udata)
{
    return maintain(st, SPRIG__MAINT_RESTORE, dir, cb, udata);
}

int
sprig_storage_export(sprig_storage *st, const char *dir, sprig_progress_fn cb,
                     void *udata)
{
    return maintain(st, SPRIG__MAINT_EXPORT, dir, cb, udata);
}

int
sprig_storage_import(sprig_storage *st, const char *dir, sprig_progress_fn cb,
                     void *udata)
{
    return maintain(st, SPRIG__MAINT_IMPORT, dir, cb, udata);
}

int
sprig_storage_compact(sprig_storage *st, const char *name, sprig_progress_fn cb,
                      void *udata)
{
    return maintain(st, SPRIG__MAINT_COMPACT, name, cb, udata);
}
