/*
 * cmd_backup.c -- `sprig backup DIR`, `sprig restore DIR`, `sprig export
 * DIR`, `sprig import DIR` and `sprig compact [NAME...]`: the storage's
 * maintenance jobs (sprig_storage_backup, _restore, _export, _import,
 * _compact), with a progress bar on a terminal (plain lines otherwise;
 * none with --json) and a summary on stdout: a sentence, or with --json
 * one JSON object.  Against --path or --url; with --url the job runs in
 * the server and DIR is a directory on the server's machine.  Part of
 * tools/sprig/ (see cli.h); the progress reporter is progress.c.
 */
#include "cli.h"
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One job of this file. */
typedef struct job {
    const char *name;  /* the command */
    const char *unit;  /* what its items are */
    const char *usage; /* its --help */
    int (*run)(sprig_storage *st, const char *arg, sprig_progress_fn cb,
               void *udata);
    bool create; /* the storage may be new (restore, import) */
} job;

static const char backup_usage[] =
    "usage: sprig [--path DIR | --url URL] backup DIR [--json]\n"
    "\n"
    "Back up every database of the storage into directory DIR (created; it\n"
    "must not exist or be empty): a compacting copy of each database, all\n"
    "as of one moment, and manifest.json (schemas, databases, sizes,\n"
    "checksums).  The storage keeps serving meanwhile.  With --url the\n"
    "server does it and DIR is on the server's machine.\n"
    "  --json   no progress; print {\"command\",\"dir\",\"items\",\"bytes\",\n"
    "           \"seconds\"} on stdout\n"
    "Exit 4 if DIR is not empty.\n";

static const char restore_usage[] =
    "usage: sprig [--path DIR | --url URL] restore DIR [--json]\n"
    "\n"
    "Restore the backup in DIR into the storage, which must hold no\n"
    "database (a new --path is created).  Every file is checked against\n"
    "the manifest; a damaged backup is refused and leaves nothing behind.\n"
    "Exit 4 if the storage has databases, 3 if DIR holds no backup, 1 if\n"
    "the backup is damaged.\n";

static const char export_usage[] =
    "usage: sprig [--path DIR | --url URL] export DIR [--json]\n"
    "\n"
    "Export every database into directory DIR (created; must not exist or\n"
    "be empty) as JSON lines: DIR/export.json (schemas, databases),\n"
    "DIR/<db>/c/<collection>.jsonl (one document a line) and\n"
    "DIR/<db>/kv.jsonl (one key-value entry a line, with its expiry).\n"
    "For moving data between versions and machines.  Exit 4 if DIR is not\n"
    "empty.\n";

static const char import_usage[] =
    "usage: sprig [--path DIR | --url URL] import DIR [--json]\n"
    "\n"
    "Import an export (sprig export) into the storage: its schemas, its\n"
    "databases (created when missing), every document (overwriting one of\n"
    "the same id) and key-value entry.  Exit 3 if DIR holds no export, 1\n"
    "if a line is malformed (its file and line are named).\n";

static const char compact_usage[] =
    "usage: sprig [--path DIR | --url URL] compact [NAME...] [--all] "
    "[--json]\n"
    "\n"
    "Compact databases in place: a compacting copy replaces each file, so\n"
    "the space of deleted data returns to the disk.  NAME... (default: the\n"
    "--db database), or --all for every database.  A database must have no\n"
    "open handle (exit 5: a server holding it open).\n";

/* ---- progress -------------------------------------------------------------
 */

typedef struct run {
    cli_progress bar;
    sprig_progress last;   /* the totals of the last call */
    uint64_t items, bytes; /* accumulated over several jobs (compact) */
    uint64_t base_items, base_bytes;
} run;

static void
on_progress(void *udata, const sprig_progress *p)
{
    run *r = udata;
    uint64_t items = r->base_items + p->items;
    uint64_t bytes = r->base_bytes + p->bytes;
    if (p->done) { /* the totals are known now (a backup's were estimated) */
        cli_progress_set_total(&r->bar, r->base_items + p->items,
                               r->base_bytes + p->bytes);
    } else if (p->items_total || p->bytes_total) {
        cli_progress_set_total(&r->bar, r->base_items + p->items_total,
                               r->base_bytes + p->bytes_total);
    }
    cli_progress_add(&r->bar, items - r->items, bytes - r->bytes);
    r->items = items;
    r->bytes = bytes;
    r->last = *p;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The summary on stdout: a sentence, or JSON. */
static int
summary(const job *j, const char *what, const run *r, double secs, bool json)
{
    if (json) {
        jw w = {0};
        jw_raw(&w, "{");
        jw_key(&w, "command");
        jw_cstr(&w, j->name);
        jw_raw(&w, ",");
        jw_key(&w, strcmp(j->name, "compact") == 0 ? "databases" : "dir");
        jw_cstr(&w, what);
        jw_raw(&w, ",");
        jw_key(&w, "items");
        jw_u64(&w, r->items);
        jw_raw(&w, ",");
        jw_key(&w, "bytes");
        jw_u64(&w, r->bytes);
        char s[64];
        snprintf(s, sizeof s, ",\"seconds\":%.3f}", secs);
        jw_raw(&w, s);
        return jw_print(&w);
    }
    printf("%s: %llu %s, %.1f MiB in %.2f s (%.1f MiB/s): %s\n", j->name,
           (unsigned long long)r->items, j->unit, (double)r->bytes / 1048576.0,
           secs, secs > 0 ? (double)r->bytes / 1048576.0 / secs : 0.0, what);
    return CLI_OK;
}

static void
start_bar(run *r, const job *j, bool json)
{
    cli_progress_opts o;
    cli_progress_opts_init(&o);
    o.label = j->name;
    o.unit = j->unit;
    o.quiet = json;
    memset(r, 0, sizeof *r);
    cli_progress_start(&r->bar, &o);
}

/* ---- the commands ---------------------------------------------------------
 */

static int
run_dir_job(cli *c, const job *j, int argc, char **argv)
{
    cli_args a;
    bool json = false;
    const cli_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, j->usage, 1, 1, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, j->create) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    run r;
    start_bar(&r, j, json);
    double t0 = now_s();
    int src = j->run(c->st, a.pos[0], on_progress, &r);
    double secs = now_s() - t0;
    if (src) { /* no totals line: the error says what happened */
        cli_progress_clear(&r.bar);
        return cli_fail(src);
    }
    cli_progress_finish(&r.bar);
    return summary(j, a.pos[0], &r, secs, json);
}

static const job jobs[] = {
    {"backup", "databases", backup_usage, sprig_storage_backup, false},
    {"restore", "databases", restore_usage, sprig_storage_restore, true},
    {"export", "records", export_usage, sprig_storage_export, false},
    {"import", "records", import_usage, sprig_storage_import, true},
};

static int
run_named(cli *c, const char *name, int argc, char **argv)
{
    for (size_t i = 0; i < sizeof jobs / sizeof *jobs; i++) {
        if (strcmp(jobs[i].name, name) == 0) {
            return run_dir_job(c, &jobs[i], argc, argv);
        }
    }
    return cli_usage(backup_usage, "unknown command '%s'", name);
}

int
cli_cmd_backup(cli *c, int argc, char **argv)
{
    return run_named(c, "backup", argc, argv);
}

int
cli_cmd_restore(cli *c, int argc, char **argv)
{
    return run_named(c, "restore", argc, argv);
}

int
cli_cmd_export(cli *c, int argc, char **argv)
{
    return run_named(c, "export", argc, argv);
}

int
cli_cmd_import(cli *c, int argc, char **argv)
{
    return run_named(c, "import", argc, argv);
}

/* Compact each of `names` (n of them), one after another. */
static int
compact_each(cli *c, const job *j, const char *const *names, size_t n,
             bool json, const char *what)
{
    run r;
    start_bar(&r, j, json);
    cli_progress_set_total(&r.bar, n, 0);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        r.base_items = r.items;
        r.base_bytes = r.bytes;
        int src = sprig_storage_compact(c->st, names[i], on_progress, &r);
        if (src) {
            cli_progress_clear(&r.bar);
            return cli_fail(src);
        }
    }
    cli_progress_finish(&r.bar);
    return summary(j, what, &r, now_s() - t0, json);
}

int
cli_cmd_compact(cli *c, int argc, char **argv)
{
    static const job j = {"compact", "databases", compact_usage, NULL, false};
    cli_args a;
    bool json = false, all = false;
    const cli_opt opts[] = {
        {"--json", NULL, &json}, {"--all", NULL, &all}, {NULL, NULL, NULL}};
    int rc = cli_parse(argc, argv, opts, compact_usage, 0, CLI_MAX_POS, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, false) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    if (all && a.n) {
        return cli_usage(compact_usage, "give database names or --all");
    }
    if (!all) {
        const char *one = c->dbname;
        return a.n ? compact_each(c, &j, (const char *const *)a.pos,
                                  (size_t)a.n, json,
                                  a.n == 1 ? a.pos[0] : "(several)")
                   : compact_each(c, &j, &one, 1, json, one);
    }
    sprig_database_list *l;
    int src = sprig_storage_list_databases(c->st, &l);
    if (src) {
        return cli_fail(src);
    }
    size_t n = sprig_database_list_count(l);
    const char **names = calloc(n + 1, sizeof *names);
    for (size_t i = 0; names && i < n; i++) {
        names[i] = sprig_database_list_name(l, i);
    }
    rc = names ? compact_each(c, &j, names, n, json, "(all)")
               : cli_err(SPRIG_ENOMEM, "out of memory");
    free(names);
    sprig_database_list_free(l);
    return rc;
}
