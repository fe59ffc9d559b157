/*
 * procs.h -- the scaffolding shared by the two load tools of
 * tools/lincheck/ (`sprig-lin-record`, lin_record.c, and
 * `sprig-write-load`, write_load.c): opening a database of a placement
 * with retries, making its schema and database once, and running N
 * forked client processes that each write their events to a file of their
 * own (OUT.<tag><i>), merged into OUT when all have exited.
 *
 * Each tool is single-threaded; these functions are called from its main
 * thread (procs_run's function from each forked child).  Errors go to
 * stderr, prefixed with the tool's name.
 */
#ifndef SPRIG_LINCHECK_PROCS_H
#define SPRIG_LINCHECK_PROCS_H

#include "sprig/sprig.h"

/* Sleep `ms` milliseconds. */
void procs_pause_ms(unsigned ms);

/* Open `url` with options `o` and its database `db_name`, retried every
 * 100 ms for up to 30 s (reads are local: the node reached first may not
 * have applied the database's creation yet, or may be down or electing).
 * On success the caller owns *st and *db (sprig_db_close, then
 * sprig_storage_close); otherwise the last error (a SPRIG_E* code,
 * sprig_errmsg) and nothing to close. */
int procs_open_db(const char *url, const sprig_open_options *o,
                  const char *db_name, sprig_storage **st, sprig_db **db);

/* Register `schema` on `url` and create database `db_name` of it (both
 * kept when they exist).  0, or the error after printing it as
 * "TOOL: setup: ...". */
int procs_setup(const char *tool, const char *url, const sprig_open_options *o,
                const sprig_schema_def *schema, const char *db_name);

/* A client process: `index` in 0..n-1, its event file `path` (to create);
 * returns its exit status (0: ran to the end). */
typedef int (*procs_fn)(const void *cfg, int index, const char *path);

/* Fork `n` (1..256) processes, process i running fn(cfg, i,
 * "OUT.<tag><i>") then exiting with its result; wait for all; then merge
 * their files into `out` -- concatenated in process order and, when
 * `filter` is not NULL, piped through that shell command (e.g. a sort) --
 * and remove them.  `out` must not contain a single quote.  0 when every
 * process exited 0 and the merge worked, else 1 (said on stderr). */
int procs_run(const char *tool, const char *out, const char *tag, int n,
              procs_fn fn, const void *cfg, const char *filter);

#endif
