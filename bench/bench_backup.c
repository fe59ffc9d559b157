/*
 * bench_backup.c -- backup and restore MB/s beside a plain `cp` of the same
 * files, in one run (issue 13's benchmark; `make bench` runs it through
 * bench/run.sh).
 *
 * A storage of DBS databases is filled with 1 KiB JSON documents up to
 * --mb MiB in all, then, each measured --runs times (median and spread
 * printed):
 *   cp        `cp -r` of the databases' directories (the page cache is
 *             warm for everyone: the fill just wrote the files)
 *   cp+fsync  the same, then fsync of every copied file (a backup syncs
 *             what it wrote, so this is its fair peer)
 *   backup    sprig_storage_backup() (compacting copies, CRC-32C, fsync,
 *             the manifest)
 *   restore   sprig_storage_restore() into an empty storage (copy, CRC
 *             check, fsync, open and check each database)
 *   export / import   the logical forms, for scale
 * MB/s are of the databases' data.mdb bytes (what cp copies).  Writes JSON
 * with --out FILE.  --quick: 8 MiB, one run (the ctest smoke).
 */
#define _GNU_SOURCE
#include "sprig/sprig.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DBS 4
#define DOC 1024
#define MAX_RUNS 9

static const sprig_collection_def cols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def schema = {"bench", cols, 1};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, int rc)
{
    fprintf(stderr, "bench_backup: %s: %s: %s\n", what, sprig_strerror(rc),
            sprig_errmsg());
    exit(1);
}

static void
sh(const char *fmt, const char *a, const char *b)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_backup: failed: %s\n", cmd);
        exit(1);
    }
}

static sprig_storage *
open_at(const char *path)
{
    sprig_storage_options o;
    sprig_storage *st;
    sprig_storage_options_init(&o);
    o.path = path;
    int rc = sprig_storage_open(&o, &st);
    if (rc) {
        die("open", rc);
    }
    return st;
}

/* Fill DBS databases with `mb` MiB of documents in all. */
static void
fill(sprig_storage *st, unsigned mb, uint64_t seed)
{
    char body[DOC + 1];
    uint64_t per_db = (uint64_t)mb * 1024 / DBS; /* 1 KiB documents */
    int rc = sprig_storage_register_schema(st, &schema);
    for (int d = 0; rc == 0 && d < DBS; d++) {
        char name[16];
        sprig_db *db;
        snprintf(name, sizeof name, "db%d", d);
        rc = sprig_storage_create_database(st, name, "bench", false);
        rc = rc ? rc : sprig_storage_open_database(st, name, &db);
        for (uint64_t i = 0; rc == 0 && i < per_db; i += 500) {
            sprig_txn *t;
            rc = sprig_txn_new(&t);
            for (int j = 0; rc == 0 && j < 500; j++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                int n = snprintf(body, sizeof body, "{\"n\":%llu,\"pad\":\"",
                                 (unsigned long long)(seed >> 20));
                for (; n < DOC - 2; n++) {
                    body[n] = (char)('a' + (seed >> (n % 50)) % 26);
                }
                memcpy(body + n, "\"}", 3);
                rc = sprig_txn_insert(t, "docs", NULL, sprig_str(body));
            }
            rc = rc ? rc : sprig_txn_apply(db, t, NULL);
            sprig_txn_free(t);
        }
        if (rc == 0) {
            sprig_db_close(db);
        }
    }
    if (rc) {
        die("fill", rc);
    }
}

/* Sum of the sizes of the files named `name` below `dir`. */
static uint64_t
bytes_named(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t n = 0;
    while (d && (de = readdir(d))) {
        char p[4200];
        struct stat s;
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &s) != 0) {
            continue;
        }
        if (S_ISDIR(s.st_mode)) {
            n += bytes_named(p, name);
        } else if (!name || strcmp(de->d_name, name) == 0) {
            n += (uint64_t)s.st_size;
        }
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* fsync every file below `dir`. */
static void
fsync_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char p[4200];
        struct stat s;
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &s) == 0 && S_ISDIR(s.st_mode)) {
            fsync_tree(p);
        } else {
            int fd = open(p, O_RDONLY);
            if (fd >= 0) {
                fsync(fd);
                close(fd);
            }
        }
    }
    if (d) {
        closedir(d);
    }
}

typedef struct row {
    const char *name;
    double secs[MAX_RUNS];
    int n;
    uint64_t out_bytes; /* what it wrote (last run) */
} row;

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(row *r)
{
    qsort(r->secs, (size_t)r->n, sizeof *r->secs, cmp_d);
    return r->secs[r->n / 2];
}

int
main(int argc, char **argv)
{
    unsigned mb = 256, runs = 3;
    const char *out = NULL, *tmp = getenv("TMPDIR");
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            mb = 8;
            runs = 1;
        } else if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc) {
            mb = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--tmp") == 0 && i + 1 < argc) {
            tmp = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_backup [--quick] [--mb N] "
                            "[--runs N] [--seed N] [--tmp DIR] [--out FILE]\n");
            return 2;
        }
    }
    runs = runs < 1 ? 1 : runs > MAX_RUNS ? MAX_RUNS : runs;
    char root[1024], src[1100], dst[1200], srcdb[1200];
    snprintf(root, sizeof root, "%s/sprig-bench-backup.%d", tmp ? tmp : "/tmp",
             (int)getpid());
    snprintf(src, sizeof src, "%s/src", root);
    snprintf(srcdb, sizeof srcdb, "%s/db", src);
    sh("rm -rf '%s' && mkdir -p '%s'", root, root);
    sprig_storage *st = open_at(src);
    double t0 = now_s();
    fill(st, mb, seed);
    printf("bench_backup: %u MiB in %d databases filled in %.1f s (seed "
           "%llu)\n",
           mb, DBS, now_s() - t0, (unsigned long long)seed);
    uint64_t data = bytes_named(srcdb, "data.mdb");

    row rows[] = {{"cp", {0}, 0, 0},     {"cp+fsync", {0}, 0, 0},
                  {"backup", {0}, 0, 0}, {"restore", {0}, 0, 0},
                  {"export", {0}, 0, 0}, {"import", {0}, 0, 0}};
    for (unsigned r = 0; r < runs; r++) {
        char bdir[1300], rdir[1300], edir[1300], idir[1300];
        snprintf(dst, sizeof dst, "%s/cp%u", root, r);
        snprintf(bdir, sizeof bdir, "%s/backup%u", root, r);
        snprintf(rdir, sizeof rdir, "%s/restored%u", root, r);
        snprintf(edir, sizeof edir, "%s/export%u", root, r);
        snprintf(idir, sizeof idir, "%s/imported%u", root, r);

        t0 = now_s();
        sh("cp -r '%s' '%s'", srcdb, dst);
        rows[0].secs[rows[0].n++] = now_s() - t0;
        rows[0].out_bytes = bytes_named(dst, "data.mdb");
        sh("rm -rf '%s'%s", dst, "");
        t0 = now_s();
        sh("cp -r '%s' '%s'", srcdb, dst);
        fsync_tree(dst);
        rows[1].secs[rows[1].n++] = now_s() - t0;
        rows[1].out_bytes = rows[0].out_bytes;
        sh("rm -rf '%s'%s", dst, "");

        t0 = now_s();
        int rc = sprig_storage_backup(st, bdir, NULL, NULL);
        rows[2].secs[rows[2].n++] = now_s() - t0;
        if (rc) {
            die("backup", rc);
        }
        rows[2].out_bytes = bytes_named(bdir, NULL);
        sprig_storage *rs = open_at(rdir);
        t0 = now_s();
        rc = sprig_storage_restore(rs, bdir, NULL, NULL);
        rows[3].secs[rows[3].n++] = now_s() - t0;
        if (rc) {
            die("restore", rc);
        }
        sprig_storage_close(rs);
        rows[3].out_bytes = bytes_named(rdir, "data.mdb");

        t0 = now_s();
        rc = sprig_storage_export(st, edir, NULL, NULL);
        rows[4].secs[rows[4].n++] = now_s() - t0;
        if (rc) {
            die("export", rc);
        }
        rows[4].out_bytes = bytes_named(edir, NULL);
        rs = open_at(idir);
        t0 = now_s();
        rc = sprig_storage_import(rs, edir, NULL, NULL);
        rows[5].secs[rows[5].n++] = now_s() - t0;
        if (rc) {
            die("import", rc);
        }
        sprig_storage_close(rs);
        rows[5].out_bytes = bytes_named(idir, "data.mdb");
        sh("rm -rf '%s' '%s'", bdir, rdir);
        sh("rm -rf '%s' '%s'", edir, idir);
    }
    sprig_storage_close(st);

    FILE *j = out ? fopen(out, "w") : NULL;
    if (j) {
        fprintf(j,
                "{\"bench\":\"backup\",\"mb\":%u,\"databases\":%d,"
                "\"data_bytes\":%llu,\"runs\":%u,\"rows\":[",
                mb, DBS, (unsigned long long)data, runs);
    }
    printf("%-9s %10s %10s %10s %12s  (%u runs; MB/s of %.1f MiB of "
           "data.mdb)\n",
           "job", "median s", "min s", "max s", "MB/s", runs,
           (double)data / 1048576.0);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        row *r = &rows[i];
        double med = median(r), mbs = (double)data / 1e6 / med;
        printf("%-9s %10.3f %10.3f %10.3f %12.1f  wrote %.1f MiB\n", r->name,
               med, r->secs[0], r->secs[r->n - 1], mbs,
               (double)r->out_bytes / 1048576.0);
        if (j) {
            fprintf(j,
                    "%s{\"job\":\"%s\",\"median_s\":%.4f,\"min_s\":%.4f,"
                    "\"max_s\":%.4f,\"mb_per_s\":%.1f,\"wrote_bytes\":%llu}",
                    i ? "," : "", r->name, med, r->secs[0], r->secs[r->n - 1],
                    mbs, (unsigned long long)r->out_bytes);
        }
    }
    if (j) {
        fprintf(j, "]}\n");
        fclose(j);
    }
    sh("rm -rf '%s'%s", root, "");
    return 0;
}
