/*
 * fuzz_manifest.c -- libFuzzer harness over a backup's manifest
 * (src/local/backup.c: <backup>/manifest.json, the JSON a restore trusts
 * to name the databases, their schemas, files, sizes, CRCs and last
 * transactions).  Once per process a storage on /dev/shm (a schema with a
 * view, two databases with documents and key-value pairs) is backed up;
 * each input replaces the backup's manifest.json, and a fresh empty
 * storage restores it through sprig_storage_restore.
 *
 * Checks: never a crash or a hang; the restore succeeds, or fails with an
 * error a damaged backup may give -- SPRIG_ECORRUPT, SPRIG_ESCHEMA -- and
 * a detail message (found: a file name "" or "." or "..", or one naming no
 * file, failed as SPRIG_EIO; a database named twice failed as SPRIG_EEXIST
 * after the first copy was restored, and a CRC over 32 bits was taken
 * instead of refused); after either, the storage passes the integrity
 * check, and a success restored exactly the manifest's databases.  No
 * allocation left live.
 */
#define _XOPEN_SOURCE 700
#include "core/core.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64], bk[96], dst[96], manifest[128];

static void die(const char *what, int rc) __attribute__((noreturn));

static void
die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_manifest: %s: %d %s\n", what, rc, sprig_errmsg());
    abort();
}

static const sprig_view_def views[] = {
    {.name = "by-k",
     .version = 1,
     .policy = SPRIG_VIEW_EAGER,
     .json_key = "k",
     .json_value = "n"},
};
static const sprig_collection_def cols[] = {
    {"c", SPRIG_ID_NATURAL, 0, views, 1},
};
static const sprig_schema_def schema = {"mf", cols, 1};

/* A fixed clock: the backup's files, hence its CRCs, are the same in
 * every process, so the corpus's manifests match them. */
static uint64_t
fixed_clock(void *udata)
{
    (void)udata;
    return 1790000000000ull;
}

static sprig_storage *
open_at(const char *path)
{
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = path;
    o.clock_ms = fixed_clock;
    o.durability = SPRIG_DURABILITY_NONE;
    sprig_storage *st = NULL;
    int rc = sprig_storage_open(&o, &st);
    if (rc) {
        die("open", rc);
    }
    return st;
}

static void
fill(sprig_storage *st, const char *name, int docs)
{
    sprig_db *db;
    int rc = sprig_storage_create_database(st, name, "mf", false);
    rc = rc ? rc : sprig_storage_open_database(st, name, &db);
    for (int i = 0; rc == 0 && i < docs; i++) {
        char id[16], json[64];
        snprintf(id, sizeof id, "d%d", i);
        snprintf(json, sizeof json, "{\"k\":\"k%d\",\"n\":%d}", i % 5, i);
        sprig_value v = sprig_value_of_i64(i);
        rc = sprig_overwrite(db, "c", sprig_str(id), sprig_str(json), NULL);
        rc = rc ? rc : sprig_kv_set(db, "", id, &v, NULL, NULL, NULL);
    }
    if (rc) {
        die("fill", rc);
    }
    sprig_db_close(db);
}

static int rm_one(const char *p, const struct stat *s, int flag, struct FTW *f);

static void
cleanup(void)
{
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
setup(void)
{
    snprintf(root, sizeof root, "/dev/shm/sprig-fuzz-manifest-XXXXXX");
    if (!mkdtemp(root)) {
        abort();
    }
    char src[128];
    snprintf(src, sizeof src, "%s/src", root);
    snprintf(bk, sizeof bk, "%s/bk", root);
    snprintf(dst, sizeof dst, "%s/dst", root);
    snprintf(manifest, sizeof manifest, "%s/manifest.json", bk);
    sprig_storage *st = open_at(src);
    int rc = sprig_storage_register_schema(st, &schema);
    if (rc) {
        die("register", rc);
    }
    fill(st, "one", 20);
    fill(st, "two", 3);
    rc = sprig_storage_backup(st, bk, NULL, NULL);
    if (rc) {
        die("backup", rc);
    }
    sprig_storage_close(st);
    const char *seeds = getenv("SPRIG_FUZZ_SEEDS");
    if (seeds) { /* the real manifest, for the corpus */
        char cmd[512];
        snprintf(cmd, sizeof cmd, "cp %s %s/real", manifest, seeds);
        if (system(cmd) != 0) {
            die("writing the seed", -1);
        }
    }
    atexit(cleanup);
}

static int
rm_one(const char *p, const struct stat *s, int flag, struct FTW *f)
{
    (void)s;
    (void)flag;
    (void)f;
    return remove(p);
}

static void
put_manifest(const uint8_t *b, size_t n)
{
    FILE *f = fopen(manifest, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        abort();
    }
}

/* After a restore: the integrity check finds nothing; a success holds
 * databases, each openable. */
static void
judge(sprig_storage *st, int rc)
{
    uint64_t findings = 0;
    sprig_buf rep = {0};
    int crc = sprig_storage_check(st, &rep, &findings);
    if (crc || findings) {
        fprintf(stderr, "%.*s", (int)rep.len, (const char *)rep.data);
        die("the check after the restore", crc ? crc : (int)findings);
    }
    sprig_buf_clear(&rep);
    sprig_database_list *l = NULL;
    if (sprig_storage_list_databases(st, &l)) {
        die("list", -1);
    }
    for (size_t i = 0; rc == 0 && i < sprig_database_list_count(l); i++) {
        sprig_db *db = NULL;
        int orc = sprig_storage_open_database(
            st, sprig_database_list_name(l, i), &db);
        if (orc) {
            die("open a restored database", orc);
        }
        sprig_db_close(db);
    }
    sprig_database_list_free(l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        setup();
        once = true;
    }
    put_manifest(data, size);
    nftw(dst, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    long live = sprig__alloc_live();
    sprig_storage *st = open_at(dst);
    int rc = sprig_storage_restore(st, bk, NULL, NULL);
    if (getenv("SPRIG_FUZZ_VERBOSE")) {
        fprintf(stderr, "restore: %d %s\n", rc, rc ? sprig_errmsg() : "");
    }
    if (rc &&
        ((rc != SPRIG_ECORRUPT && rc != SPRIG_ESCHEMA) || !sprig_errmsg()[0])) {
        die("the restore failed with another error", rc);
    }
    judge(st, rc);
    sprig_storage_close(st);
    if (sprig__alloc_live() != live) {
        die("allocations left live", (int)(sprig__alloc_live() - live));
    }
    return 0;
}
