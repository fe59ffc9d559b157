/*
 * test_views_crash.c -- the crash loop with views: a view index and its
 * collection agree after any SIGKILL.  A child process opens a storage whose
 * collection has eager, lazy and unique views (declarative and C) and
 * commits random transactions from three threads (so it dies inside
 * group-commit batches and nested transactions) until the parent SIGKILLs it
 * at a random moment.  The parent reopens the storage and proves that every
 * view equals a brute-force scan of the collection: eager and unique views
 * without bringing anything up to date (they must never lag), lazy views
 * after update-before; no unique key is held twice; each reduce equals the
 * brute force.  Every few rounds the child opens the database with a new
 * version of the eager views, so some rounds kill it in the middle of a
 * rebuild, which the next open must redo.  The seed is printed (SPRIG_SEED
 * replays it); SPRIG_VIEW_CRASH_ROUNDS sets the number of rounds (60).
 */
#include "viewtest.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define IDS 300
#define THREADS 3

static int
map_g(const sprig_doc *d, sprig_emitter *e, void *udata)
{
    sprig_bytes c = sprig_doc_contents(d);
    json_t *root = json_loadb(c.data, c.len, 0, NULL);
    json_t *g = root ? json_object_get(root, "g") : NULL;
    int rc = 0;
    if (json_is_string(g)) {
        sprig_key_builder kb = {0};
        rc = sprig_key_add_str(&kb, json_string_value(g));
        rc = rc ? rc : sprig_emit(e, sprig_key_bytes(&kb), sprig_str("1"));
        sprig_key_builder_clear(&kb);
    }
    json_decref(root);
    return rc;
}

static int
reduce_count(const sprig_bytes *vals, size_t n, bool rereduce, sprig_buf *out,
             void *udata)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        char t[32] = {0};
        memcpy(t, vals[i].data, vals[i].len < 31 ? vals[i].len : 31);
        sum += rereduce ? strtoull(t, NULL, 10) : 1;
    }
    char t[32];
    snprintf(t, sizeof t, "%llu", (unsigned long long)sum);
    return sprig_buf_append(out, t, strlen(t));
}

/* The schema of round `version`: the eager views' version changes. */
static void
make_schema(unsigned version, sprig_view_def v[5], sprig_collection_def *c,
            sprig_schema_def *s)
{
    v[0] = (sprig_view_def){.name = "eager",
                            .version = version,
                            .policy = SPRIG_VIEW_EAGER,
                            .json_key = "g",
                            .json_value = "v",
                            .builtin_reduce = SPRIG_REDUCE_SUM};
    v[1] = (sprig_view_def){.name = "lazy",
                            .version = 1,
                            .json_key = "g,n",
                            .builtin_reduce = SPRIG_REDUCE_COUNT};
    v[2] = (sprig_view_def){.name = "uniq",
                            .version = 1,
                            .policy = SPRIG_VIEW_UNIQUE,
                            .json_key = "u"};
    v[3] = (sprig_view_def){.name = "eager_c",
                            .version = version,
                            .policy = SPRIG_VIEW_EAGER,
                            .map = map_g,
                            .reduce = reduce_count};
    v[4] = (sprig_view_def){
        .name = "lazy_c", .version = 1, .map = map_g, .reduce = reduce_count};
    *c = (sprig_collection_def){"docs", SPRIG_ID_NATURAL, 0, v, 5};
    *s = (sprig_schema_def){"crashviews", c, 1};
}

static const char *view_names[] = {"eager", "lazy", "uniq", "eager_c",
                                   "lazy_c"};

/* ---- the child
 * ---------------------------------------------------------------- */

typedef struct child {
    sprig_db *db;
    uint64_t rng;
} child;

static void
child_fail(const char *what, int rc)
{
    fprintf(stderr, "view crash child: %s: %s (%s)\n", what, sprig_strerror(rc),
            sprig_errmsg());
    _exit(3);
}

static void *
child_writer(void *arg)
{
    child *c = arg;
    static const char *groups[] = {"a", "b", "c", "d"};
    for (;;) {
        sprig_txn *t;
        if (sprig_txn_new(&t)) {
            _exit(3);
        }
        int n = 1 + (int)(tu_rand(&c->rng) % 3);
        for (int i = 0; i < n; i++) {
            char id[16], body[128];
            snprintf(id, sizeof id, "d%03d", (int)(tu_rand(&c->rng) % IDS));
            snprintf(
                body, sizeof body, "{\"g\":\"%s\",\"v\":%d,\"n\":%d,\"u\":%d}",
                groups[tu_rand(&c->rng) % 4],
                (int)(tu_rand(&c->rng) % 100) - 50, (int)(tu_rand(&c->rng) % 3),
                (int)(tu_rand(&c->rng) % (IDS * 2)));
            sprig_bytes k = sprig_str(id);
            sprig_doc *d = NULL;
            int rc = 0;
            if (tu_rand(&c->rng) % 4 == 0 &&
                sprig_get(c->db, "docs", k, &d) == 0) {
                sprig_header h = sprig_doc_header(d);
                rc = sprig_txn_delete(t, "docs", &h);
            } else {
                rc = sprig_txn_overwrite(t, "docs", k, sprig_str(body));
            }
            sprig_doc_free(d);
            if (rc) {
                child_fail("building", rc);
            }
        }
        int rc = sprig_txn_apply(c->db, t, NULL);
        /* duplicates, and deletes racing other threads, fail whole */
        if (rc && rc != SPRIG_EUNIQUE && rc != SPRIG_ECONFLICT &&
            rc != SPRIG_ENOTFOUND) {
            child_fail("applying", rc);
        }
        sprig_txn_free(t);
    }
    return NULL;
}

static void
child_run(const char *dir, unsigned version, sprig_durability dur,
          uint64_t seed)
{
    sprig_view_def v[5];
    sprig_collection_def c;
    sprig_schema_def s;
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    make_schema(version, v, &c, &s);
    sprig_storage_options_init(&o);
    o.path = dir;
    o.durability = dur;
    int rc = sprig_storage_open(&o, &st);
    rc = rc ? rc : sprig_storage_register_schema(st, &s);
    rc = rc ? rc : sprig_storage_create_database(st, "db", s.name, true);
    rc = rc ? rc : sprig_storage_open_database(st, "db", &db);
    if (rc) {
        child_fail("opening", rc);
    }
    child ch[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ch[i] = (child){db, seed * 31 + (uint64_t)i + 1};
        if (pthread_create(&th[i], NULL, child_writer, &ch[i])) {
            _exit(3);
        }
    }
    for (;;) {
        pause();
    }
}

/* ---- the parent
 * --------------------------------------------------------------- */

static size_t
check_db(const char *dir, unsigned version)
{
    sprig_view_def v[5];
    sprig_collection_def c;
    sprig_schema_def s;
    sprig_storage_options o;
    sprig_storage *st;
    sprig_db *db;
    make_schema(version, v, &c, &s);
    sprig_storage_options_init(&o);
    o.path = dir;
    SPRIG_OK_(sprig_storage_open(&o, &st));
    SPRIG_OK_(sprig_storage_register_schema(st, &s));
    SPRIG_OK_(sprig_storage_create_database(st, "db", s.name, true));
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    sprig_doc_list *docs = vt_all_docs(db, "docs");
    for (int i = 0; i < 5; i++) {
        vt_ms want = {0};
        if (v[i].map) {
            vt_expect_c(docs, v[i].map, NULL, &want);
        } else {
            vt_expect_json(docs, v[i].json_key, v[i].json_value, &want);
        }
        sprig_view_query q;
        sprig_mapping_list *l;
        sprig_view_query_init(&q, "docs", view_names[i]);
        if (v[i].policy != SPRIG_VIEW_LAZY) {
            q.access = SPRIG_NO_UPDATE; /* must never lag */
        }
        SPRIG_OK_(sprig_view_query_mappings(db, &q, &l));
        vt_check_all(l, &want, view_names[i]);
        sprig_mapping_list_free(l);
        for (size_t j = 1; v[i].policy == SPRIG_VIEW_UNIQUE && j < want.n;
             j++) {
            assert_true(vt_bcmp(&want.m[j].key, &want.m[j - 1].key) != 0);
        }
        if (i == 1 || i == 3 || i == 4) { /* counts: one per mapping */
            sprig_buf r = {0};
            char t[32];
            SPRIG_OK_(sprig_view_reduce(db, &q, &r));
            snprintf(t, sizeof t, "%zu", want.n);
            assert_true(tu_bytes_eq(sprig_buf_bytes(&r), t));
            sprig_buf_clear(&r);
        }
        vt_ms_free(&want);
    }
    size_t n = sprig_doc_list_count(docs);
    sprig_doc_list_free(docs);
    sprig_db_close(db);
    sprig_storage_close(st);
    return n;
}

static void
test_views_crash_loop(void **state)
{
    uint64_t seed = tu_seed(), rng = seed ? seed : 1;
    const char *env = getenv("SPRIG_VIEW_CRASH_ROUNDS");
    unsigned rounds = env ? (unsigned)atoi(env) : 60;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("views-crash"));
    unsigned version = 1;
    for (unsigned round = 0; round < rounds; round++) {
        if (round % 4 == 3) {
            version++; /* the child rebuilds the eager views at open */
        }
        sprig_durability dur =
            round % 2 ? SPRIG_DURABILITY_NONE : SPRIG_DURABILITY_FULL;
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_run(dir, version, dur, seed + round);
        }
        unsigned ms = round == 0 ? 400 : 1 + (unsigned)(tu_rand(&rng) % 60);
        usleep(ms * 1000);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status)) {
            print_message("round %u: the child exited with %d\n", round,
                          WEXITSTATUS(status));
            fail();
        }
        size_t n = check_db(dir, version);
        assert_true(round < 3 || n > 0); /* the child got work done */
        if (round + 1 == rounds) {
            printf("%u rounds; %zu documents at the end\n", rounds, n);
        }
    }
    tu_rmtree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views_crash_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
