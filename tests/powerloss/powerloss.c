/*
 * powerloss.c -- the power-loss harness's driver (issue 17, item 1;
 * docs/reliability.md).  `sprig_powerloss --preload LIB --root DIR`:
 *  1. runs the workload (workload.c) in a child process under the
 *     recorder (LD_PRELOAD=LIB, recorder.c), on a fresh storage
 *     DIR/live, journaling every write and sync to DIR/journal;
 *  2. proves the journal complete: the image with every write applied
 *     (cut = the end) must equal DIR/live byte for byte, file for file;
 *  3. builds crash images (images.c) at many cut points -- just after an
 *     acknowledgement, just before a sync, or anywhere -- in three
 *     variants (no unsynced write, all of them, a random per-block
 *     subset drawn from a printed seed), and judges each in a child
 *     process (so a crash is caught and reported): it must open (or fail
 *     with SPRIG_ECORRUPT), pass sprig_storage_check, and keep every
 *     promise the acknowledgements before the cut made (workload.c).
 * Options: --mode full|normal|none, --kv immediate|lazy, --steps N,
 * --images N, --keep (keep failing images), --report-only (count failures
 * but exit 0: a look at a mode that promises nothing), --selftest (every
 * image from a disk that ignores syncs, cut just after an
 * acknowledgement: at least half must fail, or the judge is blind).  SPRIG_SEED
 * replays.  Exit 0 when every image passed, 1 otherwise, 77 when the run cannot
 * be made (LD_PRELOAD not honoured).  `sprig_powerloss work PATH ACKFILE ...`
 * is the workload itself (run by step 1).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "images.h"
#include "workload.h"

typedef struct run {
    pl_opts o;
    const char *mode, *kv, *preload;
    char root[1024], live[1100], journal[1100], acks[1100], img[1100];
    unsigned images;
    uint64_t seed;
    bool keep, selftest, report_only;
    pl_journal j;
    pl_ack *ack;    /* ack[k]: the k-th acknowledgement */
    size_t *ack_at; /* its journal index */
    size_t n_ack;
    unsigned passed, failed, corrupt, crashed, findings;
    uint64_t dropped;
} run;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int
sh(const char *fmt, const char *a, const char *b)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}

static bool
parse_mode(const char *m, sprig_durability *d)
{
    *d = !strcmp(m, "full")     ? SPRIG_DURABILITY_FULL
         : !strcmp(m, "normal") ? SPRIG_DURABILITY_NORMAL
                                : SPRIG_DURABILITY_NONE;
    return !strcmp(m, "full") || !strcmp(m, "normal") || !strcmp(m, "none");
}

/* ---- 1. the recorded run ---- */

static int
record(run *r, const char *self)
{
    char steps[16];
    snprintf(steps, sizeof steps, "%u", r->o.steps);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SPRIG_PL_DIR", r->live, 1);
        setenv("SPRIG_PL_LOG", r->journal, 1);
        setenv("SPRIG_PL_ACK", r->acks, 1);
        setenv("LD_PRELOAD", r->preload, 1);
        /* an ASan build: the recorder is not the first library loaded */
        const char *ao = getenv("ASAN_OPTIONS");
        char buf[1024];
        snprintf(buf, sizeof buf, "%s%sverify_asan_link_order=0", ao ? ao : "",
                 ao && *ao ? ":" : "");
        setenv("ASAN_OPTIONS", buf, 1);
        execl(self, self, "work", r->live, r->acks, r->mode, r->kv, steps,
              (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "powerloss: the workload failed (status %d)\n", status);
        return 1;
    }
    return 0;
}

static int
load(run *r)
{
    if (pl_journal_load(r->journal, &r->j) != 0) {
        return 1;
    }
    r->ack = calloc(r->j.n + 1, sizeof *r->ack);
    r->ack_at = calloc(r->j.n + 1, sizeof *r->ack_at);
    for (size_t i = 0; i < r->j.n; i++) {
        const pl_rec *x = &r->j.recs[i];
        if (x->h->op == PL_ACK &&
            pl_ack_parse(x->data, x->h->len, &r->ack[r->n_ack])) {
            r->ack_at[r->n_ack++] = i;
        }
    }
    if (r->j.n == 0 || r->n_ack == 0) {
        fprintf(stderr, "powerloss: the journal is empty: was %s preloaded?\n",
                r->preload);
        return 77;
    }
    return 0;
}

/* ---- 2. the journal is complete ---- */

static int
complete(run *r)
{
    sh("rm -rf '%s'%s", r->img, "");
    if (pl_image_build(&r->j, r->j.n, PL_ALL, 0, r->live, r->img) < 0) {
        return 1;
    }
    /* lock files are not journaled: LMDB and the storage remake them */
    int rc = sh("diff -r -x lock.mdb '%s' '%s' >&2", r->live, r->img);
    if (rc != 0) {
        fprintf(stderr, "powerloss: the journal misses writes: the image of "
                        "its end differs from the files\n");
        return 1;
    }
    printf("journal: %zu records, %zu acknowledgements; its end rebuilds "
           "the storage byte for byte\n",
           r->j.n, r->n_ack);
    return 0;
}

/* ---- 3. images ---- */

/* A cut point: after an acknowledgement, before a sync, or anywhere. */
static size_t
pick_cut(run *r, uint64_t *s)
{
    uint64_t x = mix(++*s);
    switch (r->selftest ? 0 : x % 3) {
    case 0: return r->ack_at[(x >> 8) % r->n_ack] + 1;
    case 1:
        for (size_t tries = 0; tries < 64; tries++) {
            size_t at = (size_t)(mix(++*s) % r->j.n);
            if (r->j.recs[at].h->op == PL_SYNC) {
                return at;
            }
        }
        /* fall through */
    default: return (size_t)((x >> 8) % (r->j.n + 1));
    }
}

static int
judge_child(run *r, size_t cut)
{
    size_t n = 0;
    while (n < r->n_ack && r->ack_at[n] < cut) {
        n++;
    }
    pid_t pid = fork();
    if (pid == 0) {
        _exit(pl_verify(r->img, &r->o, r->ack, n));
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *
variant_name(pl_variant v)
{
    return v == PL_NONE   ? "none"
           : v == PL_ALL  ? "all"
           : v == PL_LIAR ? "liar (self-test)"
                          : "random";
}

static void
one_image(run *r, unsigned k, uint64_t *s)
{
    size_t cut = pick_cut(r, s);
    pl_variant v = r->selftest ? PL_LIAR : (pl_variant)(k % 3);
    uint64_t iseed = mix(r->seed ^ (k * 0x100000001b3ull));
    sh("rm -rf '%s'%s", r->img, "");
    long dropped = pl_image_build(&r->j, cut, v, iseed, r->live, r->img);
    int rc = dropped < 0 ? 1 : judge_child(r, cut);
    r->dropped += dropped > 0 ? (uint64_t)dropped : 0;
    if (rc == 0) {
        r->passed++;
        return;
    }
    r->failed++;
    r->corrupt += rc == 2;
    r->crashed += rc >= 128;
    r->findings += rc == 4;
    if (r->selftest) {
        return; /* expected: the disk lied */
    }
    printf("FAIL image %u: cut %zu of %zu, variant %s, image seed %" PRIu64
           ": %s\n",
           k, cut, r->j.n, variant_name(v), iseed,
           rc >= 128 ? "the open crashed (signal)"
           : rc == 2 ? "SPRIG_ECORRUPT"
           : rc == 4 ? "integrity check findings"
                     : "a promise was broken");
    if (r->keep) {
        char dst[1200];
        snprintf(dst, sizeof dst, "%s/fail-%u", r->root, k);
        sh("cp -a '%s' '%s'", r->img, dst);
    }
}

static int
images(run *r)
{
    uint64_t s = r->seed;
    double t0 = now_s();
    for (unsigned k = 0; k < r->images; k++) {
        one_image(r, k, &s);
        if ((k + 1) % 50 == 0 && k + 1 < r->images) {
            printf("... %u images, %u failed, %.0f s\n", k + 1, r->failed,
                   now_s() - t0);
        }
    }
    printf("powerloss %s/%s%s: %u images (%u passed, %u failed: %u "
           "SPRIG_ECORRUPT, %u crashed, %u with check findings), %u steps, "
           "%zu journal records, %" PRIu64
           " unsynced write pieces dropped, %.1f s\n",
           r->mode, r->kv, r->selftest ? " self-test" : "", r->images,
           r->passed, r->failed, r->corrupt, r->crashed, r->findings,
           r->o.steps, r->j.n, r->dropped, now_s() - t0);
    if (r->selftest) { /* a disk ignoring syncs must be caught */
        bool caught = r->failed * 2 >= r->images;
        printf("self-test: %s\n", caught ? "the judge caught the lying disk"
                                         : "LYING DISK NOT CAUGHT");
        return caught ? 0 : 1;
    }
    return r->failed && !r->report_only ? 1 : 0;
}

/* ---- main ---- */

static int
work_main(int argc, char **argv)
{
    pl_opts o = {0};
    if (argc != 7 || !parse_mode(argv[4], &o.durability)) {
        fprintf(stderr, "usage: work PATH ACKS MODE KV STEPS\n");
        return 2;
    }
    o.kv_lazy = !strcmp(argv[5], "lazy");
    o.steps = (unsigned)strtoul(argv[6], NULL, 10);
    int fd = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return fd < 0 ? 1 : pl_work(argv[2], &o, fd);
}

static int
parse_args(run *r, int argc, char **argv)
{
    r->mode = "full";
    r->kv = "immediate";
    r->o.steps = 200;
    r->images = 100;
    const char *root = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep") || !strcmp(a, "--selftest") ||
            !strcmp(a, "--report-only")) {
            r->keep = r->keep || !strcmp(a, "--keep");
            r->selftest = r->selftest || !strcmp(a, "--selftest");
            r->report_only = r->report_only || !strcmp(a, "--report-only");
            continue;
        }
        if (!v) {
            return 2;
        }
        i++;
        if (!strcmp(a, "--mode"))
            r->mode = v;
        else if (!strcmp(a, "--kv"))
            r->kv = v;
        else if (!strcmp(a, "--steps"))
            r->o.steps = (unsigned)atoi(v);
        else if (!strcmp(a, "--images"))
            r->images = (unsigned)atoi(v);
        else if (!strcmp(a, "--preload"))
            r->preload = v;
        else if (!strcmp(a, "--root"))
            root = v;
        else
            return 2;
    }
    if (!root || !r->preload || !parse_mode(r->mode, &r->o.durability)) {
        return 2;
    }
    r->o.kv_lazy = !strcmp(r->kv, "lazy");
    sh("rm -rf '%s' && mkdir -p '%s'", root, root);
    if (!realpath(root, r->root)) {
        return 2;
    }
    snprintf(r->live, sizeof r->live, "%s/live", r->root);
    snprintf(r->journal, sizeof r->journal, "%s/journal", r->root);
    snprintf(r->acks, sizeof r->acks, "%s/acks", r->root);
    snprintf(r->img, sizeof r->img, "%s/image", r->root);
    return 0;
}

/* `verify PATH MODE KV STEPS`: judge a kept image (no promises). */
static int
verify_main(int argc, char **argv)
{
    pl_opts o = {0};
    if (argc != 6 || !parse_mode(argv[3], &o.durability)) {
        fprintf(stderr, "usage: verify PATH MODE KV STEPS\n");
        return 2;
    }
    o.kv_lazy = !strcmp(argv[4], "lazy");
    o.steps = (unsigned)strtoul(argv[5], NULL, 10);
    return pl_verify(argv[2], &o, NULL, 0);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "work")) {
        return work_main(argc, argv);
    }
    if (argc > 1 && !strcmp(argv[1], "verify")) {
        return verify_main(argc, argv);
    }
    static run r;
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress in logs, nothing forked */
    if (parse_args(&r, argc, argv) != 0) {
        fprintf(stderr,
                "usage: %s --preload LIB --root DIR [--mode "
                "full|normal|none] [--kv immediate|lazy] [--steps N] "
                "[--images N] [--keep] [--report-only] [--selftest]\n",
                argv[0]);
        return 2;
    }
    const char *s = getenv("SPRIG_SEED");
    r.seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);
    printf("seed=%" PRIu64 " (replay with SPRIG_SEED=%" PRIu64 ")\n", r.seed,
           r.seed);
    fflush(stdout);
    int rc = record(&r, "/proc/self/exe");
    rc = rc ? rc : load(&r);
    rc = rc ? rc : complete(&r);
    rc = rc ? rc : images(&r);
    if (rc == 0 && !r.keep) {
        sh("rm -rf '%s'%s", r.root, "");
    }
    pl_journal_free(&r.j);
    free(r.ack);
    free(r.ack_at);
    return rc;
}
