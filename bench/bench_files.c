/*
 * bench_files.c -- the file store's benchmark (`make bench` runs it from
 * bench/run.sh): writes a file of SIZE bytes through sprig_files_put_stream()
 * into a local storage and reads it back with sprig_files_read_stream(),
 * beside writing the same bytes to a plain file on the same disk (write()
 * in buffers of the same size, then fsync) and reading them back (read()),
 * in one run, each the median of RUNS.  The store runs with durability
 * FULL (an acknowledged write survives power loss, like the fsync) and
 * NONE.  Prints a table and writes JSON (--out FILE).  --quick: a small
 * file, one run (the ctest smoke).
 */
#include <sprig/files.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUF (4u * 1024u * 1024u)

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct src {
    uint64_t left;
} src;

static ssize_t
gen(void *udata, void *buf, size_t cap)
{
    src *s = udata;
    size_t n = s->left < cap ? (size_t)s->left : cap;
    memset(buf, 0x5a, n);
    s->left -= n;
    return (ssize_t)n;
}

static int
sink(void *udata, const void *data, size_t len)
{
    *(uint64_t *)udata += len + (((const uint8_t *)data)[0] != 0x5a);
    return 0;
}

static void
die(const char *what, int rc)
{
    fprintf(stderr, "bench_files: %s: %s: %s\n", what, sprig_strerror(rc),
            sprig_errmsg());
    exit(1);
}

/* Write and read `size` bytes through the file store; seconds in w, r. */
static void
run_store(const char *dir, sprig_durability d, uint64_t size, double *w,
          double *r)
{
    sprig_storage_options so;
    sprig_storage_options_init(&so);
    so.path = dir;
    so.durability = d;
    sprig_storage *st;
    sprig_db *db;
    sprig_files *fs;
    sprig_schema_def *schema;
    int rc = sprig_storage_open(&so, &st);
    rc = rc ? rc : sprig_files_schema_add(NULL, "bench", NULL, &schema);
    rc = rc ? rc : sprig_storage_register_schema(st, schema);
    rc = rc ? rc : sprig_storage_create_database(st, "b", "bench", true);
    rc = rc ? rc : sprig_storage_open_database(st, "b", &db);
    rc = rc ? rc : sprig_files_open(db, NULL, &fs);
    if (rc) {
        die("open", rc);
    }
    src s = {size};
    double t0 = now_s();
    rc = sprig_files_put_stream(fs, "/bench.bin", gen, &s, NULL, 0);
    double t1 = now_s();
    uint64_t got = 0;
    rc = rc ? rc
            : sprig_files_read_stream(fs, "/bench.bin", 0, UINT64_MAX, sink,
                                      &got, NULL);
    double t2 = now_s();
    if (rc || got != size) {
        die("put/read", rc ? rc : SPRIG_ECORRUPT);
    }
    *w = t1 - t0, *r = t2 - t1;
    sprig_files_delete(fs, "/bench.bin");
    sprig_files_close(fs);
    sprig_db_close(db);
    sprig_files_schema_free(schema);
    sprig_storage_close(st);
}

/* The same bytes to a plain file: write + fsync, then read. */
static void
run_plain(const char *path, uint64_t size, double *w, double *r)
{
    static uint8_t buf[BUF];
    memset(buf, 0x5a, sizeof buf);
    double t0 = now_s();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (uint64_t left = size; fd >= 0 && left;) {
        size_t n = left < BUF ? (size_t)left : BUF;
        if (write(fd, buf, n) != (ssize_t)n) {
            die("write", SPRIG_EIO);
        }
        left -= n;
    }
    if (fd < 0 || fsync(fd) != 0 || close(fd) != 0) {
        die("plain file", SPRIG_EIO);
    }
    double t1 = now_s();
    fd = open(path, O_RDONLY);
    uint64_t got = 0;
    for (ssize_t n = 1; fd >= 0 && n > 0; got += (uint64_t)(n > 0 ? n : 0)) {
        n = read(fd, buf, BUF);
    }
    close(fd);
    *w = t1 - t0, *r = now_s() - t1;
    if (got != size) {
        die("read", SPRIG_EIO);
    }
    unlink(path);
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

int
main(int argc, char **argv)
{
    const char *out = NULL;
    uint64_t size = 128ull << 20;
    int runs = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            size = 8ull << 20, runs = 1;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--size-mb") == 0 && i + 1 < argc) {
            size = strtoull(argv[++i], NULL, 10) << 20;
        }
    }
    char dir[] = BENCH_TMP_DIR "/files.XXXXXX", path[600];
    if (system("mkdir -p " BENCH_TMP_DIR) != 0 || !mkdtemp(dir)) {
        die("temporary directory", SPRIG_EIO);
    }
    const char *names[3] = {"sprig files (durability full)",
                            "sprig files (durability none)",
                            "plain file (write+fsync, read)"};
    double w[3][9], r[3][9];
    for (int k = 0; k < runs; k++) {
        for (int e = 0; e < 2; e++) {
            snprintf(path, sizeof path, "%s/s%d.%d", dir, e, k);
            run_store(path, e ? SPRIG_DURABILITY_NONE : SPRIG_DURABILITY_FULL,
                      size, &w[e][k], &r[e][k]);
        }
        snprintf(path, sizeof path, "%s/plain.bin", dir);
        run_plain(path, size, &w[2][k], &r[2][k]);
    }
    FILE *f = out ? fopen(out, "w") : NULL;
    double mb = (double)size / (1024.0 * 1024.0), load[3] = {0};
    if (getloadavg(load, 3) != 3) {
        load[0] = -1;
    }
    printf("file of %.0f MiB, median of %d runs, load average %.1f\n", mb, runs,
           load[0]);
    if (f) {
        fprintf(f,
                "{\"size_bytes\":%llu,\"runs\":%d,\"loadavg\":%.2f,"
                "\"cpus\":%ld,\"rows\":[",
                (unsigned long long)size, runs, load[0],
                sysconf(_SC_NPROCESSORS_ONLN));
    }
    for (int e = 0; e < 3; e++) {
        double wm = mb / median(w[e], runs), rm = mb / median(r[e], runs);
        printf("  %-32s write %8.1f MiB/s  read %8.1f MiB/s\n", names[e], wm,
               rm);
        if (f) {
            fprintf(f,
                    "%s{\"name\":\"%s\",\"write_mib_s\":%.1f,"
                    "\"read_mib_s\":%.1f}",
                    e ? "," : "", names[e], wm, rm);
        }
    }
    if (f) {
        fprintf(f, "]}\n");
        fclose(f);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    return system(path) == 0 ? 0 : 1;
}
