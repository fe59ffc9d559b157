/*
 * procs.c -- the client-process scaffolding of tools/lincheck/'s load
 * tools (procs.h): retried opens, the one-time schema and database, and
 * fork / wait / merge of per-process event files.
 */
#include "procs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void
procs_pause_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int
open_once(const char *url, const sprig_open_options *o, const char *db_name,
          sprig_storage **st, sprig_db **db)
{
    int rc = sprig_open(url, o, st);
    if (rc) {
        return rc;
    }
    rc = sprig_storage_open_database(*st, db_name, db);
    if (rc) {
        sprig_storage_close(*st);
    }
    return rc;
}

int
procs_open_db(const char *url, const sprig_open_options *o, const char *db_name,
              sprig_storage **st, sprig_db **db)
{
    int rc = SPRIG_OK;
    for (int t = 0; t < 300; t++) {
        rc = open_once(url, o, db_name, st, db);
        if (rc == 0) {
            break;
        }
        procs_pause_ms(100);
    }
    return rc;
}

int
procs_setup(const char *tool, const char *url, const sprig_open_options *o,
            const sprig_schema_def *schema, const char *db_name)
{
    sprig_storage *st;
    int rc = sprig_open(url, o, &st);
    if (rc == 0) {
        rc = sprig_storage_register_schema(st, schema);
        rc =
            rc ? rc
               : sprig_storage_create_database(st, db_name, schema->name, true);
        sprig_storage_close(st);
    }
    if (rc) {
        fprintf(stderr, "%s: setup: %s\n", tool, sprig_errmsg());
    }
    return rc;
}

/* The processes' files into `out` (through `filter` when not NULL). */
static int
merge(const char *tool, const char *out, const char *tag, const char *filter)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd,
                     "cat '%s'.%s* %s%s > '%s' && rm -f '%s'.%s*", out, tag,
                     filter ? "| " : "", filter ? filter : "", out, out, tag);
    if (n >= (int)sizeof cmd || strchr(out, '\'')) {
        fprintf(stderr, "%s: bad output path\n", tool);
        return 1;
    }
    return system(cmd) == 0 ? 0 : 1;
}

int
procs_run(const char *tool, const char *out, const char *tag, int n,
          procs_fn fn, const void *cfg, const char *filter)
{
    pid_t pids[256];
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s.%s%d", out, tag, i);
        pids[i] = fork();
        if (pids[i] == 0) {
            _exit(fn(cfg, i, path));
        }
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int status = 0;
        failed += pids[i] < 0 || waitpid(pids[i], &status, 0) < 0 ||
                  !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    if (failed) {
        fprintf(stderr, "%s: %d client process(es) failed\n", tool, failed);
    }
    return merge(tool, out, tag, filter) || failed ? 1 : 0;
}
