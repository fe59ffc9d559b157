/*
 * cmd_vault.c -- `sprig vault rotate`: re-encrypt a local storage under a
 * new master key, online (sprig_storage_vault_rotate(), issue 13), with a
 * progress line per database on stderr.  The key options that open an
 * encrypted storage (--vault-key, SPRIG_PASSPHRASE, --ask-passphrase) are
 * global: cli.c passes them to every open.  Part of tools/sprig/; see
 * cli.h.
 */
#include "cli.h"
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char vault_usage[] =
    "usage: sprig [--path DIR] [--vault-key FILE] vault COMMAND ...\n"
    "\n"
    "The vault of an encrypted storage (its master keys, kept encrypted\n"
    "under the vault key: the key file DIR/vault.key by default, or\n"
    "--vault-key FILE, or a passphrase from $SPRIG_PASSPHRASE or\n"
    "--ask-passphrase).\n"
    "\n"
    "  vault rotate\n"
    "      re-encrypt every value under a new master key, while the\n"
    "      storage stays usable; then drop the old key.\n";

static const char rotate_usage[] =
    "usage: sprig [--path DIR] [--vault-key FILE] vault rotate\n"
    "\n"
    "Make a new master key current, re-encrypt every value sealed under an\n"
    "older one (database by database, in small transactions), checkpoint,\n"
    "and drop the old key from the vault.  Interrupted, it leaves both keys\n"
    "(everything still opens); run it again to finish.  A local storage\n"
    "only (--path, or --url file:DIR).  Progress goes to stderr (a bar on\n"
    "a terminal: values re-encrypted, rate, time; plain lines otherwise);\n"
    "stdout gets {\"databases\":N,\"values\":N,\"ms\":N}.\n"
    "Exit 2 if the storage has no vault (nothing is encrypted), 6 if the\n"
    "key is wrong or missing.\n";

typedef struct progress {
    uint64_t values, dbs;
    cli_progress bar; /* values re-encrypted (progress.h) */
} progress;

static void
on_progress(void *udata, const char *db, uint64_t n)
{
    (void)db;
    progress *p = udata;
    p->values += n;
    p->dbs++;
    cli_progress_add(&p->bar, n, 0);
}

static int
vault_rotate(cli *c, int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(argc, argv, NULL, rotate_usage, 0, 0, &a);
    rc = rc == CLI_CONTINUE ? cli_open(c, false) : rc;
    if (rc != CLI_CONTINUE) {
        return rc;
    }
    progress p = {0};
    cli_progress_opts o;
    cli_progress_opts_init(&o);
    o.label = "vault rotate";
    o.unit = "values";
    cli_progress_start(&p.bar, &o);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int src = sprig_storage_vault_rotate(c->st, on_progress, &p);
    if (src) {
        cli_progress_clear(&p.bar);
        return cli_fail(src);
    }
    cli_progress_finish(&p.bar);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t ms = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000 +
                  (uint64_t)(t1.tv_nsec - t0.tv_nsec) / 1000000;
    jw w = {0};
    jw_raw(&w, "{");
    jw_key(&w, "databases");
    jw_u64(&w, p.dbs);
    jw_raw(&w, ",");
    jw_key(&w, "values");
    jw_u64(&w, p.values);
    jw_raw(&w, ",");
    jw_key(&w, "ms");
    jw_u64(&w, ms);
    jw_raw(&w, "}");
    return jw_print(&w);
}

int
cli_cmd_vault(cli *c, int argc, char **argv)
{
    static const cli_cmd cmds[] = {{"rotate", vault_rotate}, {NULL, NULL}};
    return cli_dispatch(c, cmds, argc - 1, argv + 1, vault_usage);
}
