/*
 * wl_vault.c -- the codec workloads of bench_local (issue 13): Sprig with
 * encryption, compression, both and neither, in the same run, on the same
 * 1 KB JSON documents (about half of each is repetitive field text, so LZ4
 * has something to find, as in real documents).
 *
 *   local-codec-insert  single-document inserts (pushed ids), 1 thread,
 *                       durability NORMAL: every insert is its own commit
 *                       with its command-log record (sealed too when
 *                       encrypted) but no fsync, so the codec's CPU cost
 *                       shows instead of the disk's
 *   local-codec-get     random gets by id over those documents
 *
 * Each run makes a fresh storage per configuration, in a rotating order,
 * inserts, then gets; every get is checked against the document inserted.
 * The target (issue 13): encryption costs at most 25%, i.e. the encrypted
 * series runs at >= 0.75x the plain one.  Bytes stored per document (the
 * documents table's pages) are reported as extras.
 */
#include "bench.h"

#include "sprig/sprig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glob.h>
#include <lmdb.h>
#include <sys/stat.h>

#define N_CFG 4
#define DOC_LEN 1024

typedef struct vcfg {
    const char *name;
    bool encrypt, compress;
} vcfg;

/* series 0 is the one the ratios divide (bench.h) */
static const vcfg cfgs[N_CFG] = {{"encrypted", true, false},
                                 {"plain", false, false},
                                 {"lz4", false, true},
                                 {"encrypted+lz4", true, true}};

typedef struct vdocs {
    char (*doc)[DOC_LEN + 1];
    uint64_t n;
} vdocs;

static int
make_docs(vdocs *d, uint64_t n, uint64_t seed)
{
    static const char *const words[] = {"alpha", "bravo",   "charlie", "delta",
                                        "echo",  "foxtrot", "golf",    "hotel",
                                        "india", "juliet",  "kilo",    "lima"};
    d->doc = malloc(n * sizeof *d->doc);
    d->n = n;
    if (!d->doc) {
        return bench_fail("codec", "out of memory for documents");
    }
    uint64_t s = seed | 1;
    for (uint64_t k = 0; k < n; k++) {
        char *p = d->doc[k];
        int at = snprintf(p, DOC_LEN, "{\"id\":%llu,\"tags\":\"",
                          (unsigned long long)k);
        while (at < DOC_LEN / 2) { /* words: compressible */
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            at +=
                snprintf(p + at, (size_t)(DOC_LEN - at), "%s ", words[s % 12]);
        }
        at += snprintf(p + at, (size_t)(DOC_LEN - at), "\",\"blob\":\"");
        while (at < DOC_LEN - 2) { /* random hex: not */
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            p[at++] = "0123456789abcdef"[s & 15];
        }
        p[DOC_LEN - 2] = '"';
        p[DOC_LEN - 1] = '}';
        p[DOC_LEN] = 0;
    }
    return 0;
}

static const sprig_collection_def vcols[] = {{"docs", SPRIG_ID_U64, 0}};
static const sprig_schema_def vschema = {"codec", vcols, 1};

static int
open_cfg(const bench_plan *p, const vcfg *c, unsigned r, sprig_storage **st,
         sprig_db **db)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/codec-%s-%u", p->tmp, c->name, r);
    sprig_storage_options o;
    sprig_storage_options_init(&o);
    o.path = dir;
    o.durability = SPRIG_DURABILITY_NORMAL;
    o.encrypt = c->encrypt;
    o.compress = c->compress;
    int rc = sprig_storage_open(&o, st);
    rc = rc ? rc : sprig_storage_register_schema(*st, &vschema);
    rc = rc ? rc : sprig_storage_create_database(*st, "b", "codec", false);
    rc = rc ? rc : sprig_storage_open_database(*st, "b", db);
    return rc ? bench_fail("codec", "%s: %s", c->name, sprig_errmsg()) : 0;
}

static int
inserts(sprig_db *db, const vdocs *d, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++) {
        sprig_bytes c = {d->doc[k], DOC_LEN};
        int rc = sprig_insert(db, "docs", NULL, c, NULL);
        if (rc) {
            return bench_fail("codec", "insert: %s", sprig_errmsg());
        }
    }
    return 0;
}

static int
gets(sprig_db *db, const vdocs *d, uint64_t n, uint64_t ops, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (uint64_t i = 0; i < ops; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint64_t k = s % n;
        uint8_t id[8];
        sprig_doc *doc;
        int rc = sprig_get(db, "docs", sprig_id_u64(k + 1, id), &doc);
        if (rc) {
            return bench_fail("codec", "get: %s", sprig_errmsg());
        }
        sprig_bytes c = sprig_doc_contents(doc);
        bool ok = c.len == DOC_LEN && memcmp(c.data, d->doc[k], DOC_LEN) == 0;
        sprig_doc_free(doc);
        if (!ok) {
            return bench_fail("codec", "document %llu read back wrong",
                              (unsigned long long)k);
        }
    }
    return 0;
}

/* Bytes of the documents' table per document (its pages, read with LMDB
 * after the storage closed). */
static double
stored_per_doc(const bench_plan *p, const vcfg *c, unsigned r, uint64_t n)
{
    char pat[4200];
    snprintf(pat, sizeof pat, "%s/codec-%s-%u/db/b.*", p->tmp, c->name, r);
    glob_t g;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_stat st = {0};
    bool ok = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc == 1 &&
              mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 64) == 0 &&
              mdb_env_open(env, g.gl_pathv[0], MDB_RDONLY, 0644) == 0 &&
              mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 &&
              mdb_dbi_open(txn, "c.docs", 0, &dbi) == 0 &&
              mdb_stat(txn, dbi, &st) == 0;
    if (txn) {
        mdb_txn_abort(txn);
    }
    if (env) {
        mdb_env_close(env);
    }
    globfree(&g);
    size_t pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    return ok && n ? (double)pages * st.ms_psize / (double)n : 0;
}

/* One configuration's part of run r: insert n, then `ops` gets. */
static int
one(const bench_plan *p, const vcfg *c, unsigned r, const vdocs *d,
    uint64_t ops, bench_series *ins, bench_series *get, double *bytes)
{
    sprig_storage *st = NULL;
    sprig_db *db = NULL;
    int rc = open_cfg(p, c, r, &st, &db);
    double t0 = bench_now(), c0 = bench_cpu();
    rc = rc ? rc : inserts(db, d, d->n);
    double t1 = bench_now(), c1 = bench_cpu();
    rc = rc ? rc : gets(db, d, d->n, ops, p->seed + r);
    double t2 = bench_now(), c2 = bench_cpu();
    if (rc == 0) {
        bench_push(ins, (double)d->n, t1 - t0, c1 - c0);
        bench_push(get, (double)ops, t2 - t1, c2 - c1);
    }
    sprig_db_close(db);
    sprig_storage_close(st);
    *bytes = stored_per_doc(p, c, r, d->n);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/codec-%s-%u", p->tmp, c->name, r);
    bench_rmtree(dir);
    return rc;
}

static void
name_results(bench_result *res, uint64_t n, uint64_t ops)
{
    static char w[2][160];
    char a[32], b[32];
    snprintf(w[0], sizeof w[0],
             "1 thread × %s single-document inserts of "
             "1 KB JSON",
             bench_thousands(n, a, sizeof a));
    snprintf(w[1], sizeof w[1],
             "1 thread × %s random gets over %s 1 KB "
             "documents",
             bench_thousands(ops, b, sizeof b),
             bench_thousands(n, a, sizeof a));
    const char *dur = "normal: Sprig NORMAL (command log synced every 10 "
                      "ms), the same for every series";
    res[0] = (bench_result){.name = "local-codec-insert",
                            .unit = "docs/s",
                            .group = "codec",
                            .durability = dur,
                            .workload = w[0]};
    res[1] = (bench_result){.name = "local-codec-get",
                            .unit = "gets/s",
                            .group = "codec",
                            .durability = "reads",
                            .workload = w[1]};
    for (int i = 0; i < 2; i++) {
        for (unsigned k = 0; k < N_CFG; k++) {
            bench_add_series(&res[i], k, cfgs[k].name);
        }
        bench_add_ratio(&res[i], 1, 0.75); /* encryption costs <= 25% */
    }
}

static void
report(bench_result *res, const double bytes[N_CFG])
{
    static const char *const keys[N_CFG] = {
        "bytes_per_doc_encrypted", "bytes_per_doc_plain", "bytes_per_doc_lz4",
        "bytes_per_doc_encrypted_lz4"};
    for (unsigned k = 0; k < N_CFG; k++) {
        bench_extra_add(&res[0], keys[k], bytes[k]);
    }
    for (int i = 0; i < 2; i++) {
        double plain = bench_median(&res[i].s[1]);
        printf("  %s: encryption %+.1f%%, lz4 %+.1f%%, both %+.1f%% "
               "(throughput vs plain; target: encryption >= -25%%)\n",
               res[i].name, (bench_median(&res[i].s[0]) / plain - 1) * 100,
               (bench_median(&res[i].s[2]) / plain - 1) * 100,
               (bench_median(&res[i].s[3]) / plain - 1) * 100);
    }
    printf("  stored bytes per 1 KB document: encrypted %.0f, plain %.0f, "
           "lz4 %.0f, both %.0f\n",
           bytes[0], bytes[1], bytes[2], bytes[3]);
}

size_t
bench_wl_vault(const bench_plan *p, bench_result *res, size_t cap)
{
    uint64_t n = p->quick ? 300 : 20000, ops = p->quick ? 1000 : 200000;
    vdocs d = {0};
    if (cap < 2) {
        return 0;
    }
    name_results(res, n, ops);
    printf("\n-- %s, %s: %s\n", res[0].name, res[1].name, res[0].workload);
    if (make_docs(&d, n, p->seed)) {
        res[0].failed = res[1].failed = true;
        return 2;
    }
    double bytes[N_CFG] = {0}, t0 = bench_now();
    int rc = 0;
    for (unsigned r = 0;
         rc == 0 && bench_another_run(p->budget, r, p->runs, t0); r++) {
        for (unsigned j = 0; rc == 0 && j < N_CFG; j++) {
            unsigned k = (r + j) % N_CFG; /* a rotating order */
            rc = one(p, &cfgs[k], r, &d, ops, &res[0].s[k], &res[1].s[k],
                     &bytes[k]);
        }
        printf("  run %u done\n", r);
        fflush(stdout);
    }
    res[0].failed = res[1].failed = rc != 0;
    if (rc == 0) {
        report(res, bytes);
    }
    free(d.doc);
    return 2;
}
