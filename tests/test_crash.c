/*
 * test_crash.c -- the crash loop: acknowledged commits survive SIGKILL and
 * no transaction is ever half-applied.  A child process opens a storage and
 * commits transactions in a loop; after each acknowledged sprig_txn_apply it
 * writes the transaction's id, lane and sequence number to a pipe.  Each
 * transaction touches five documents over two collections: it inserts
 * a/t<lane>.<seq>-0 and b/t<lane>.<seq>-2, overwrites (creating)
 * a/t<lane>.<seq>-1, updates b/counter.<lane> with the header the previous
 * transaction returned (a sprig_txn_update, so the counter moves in the same
 * transaction), and overwrites a/latest.<lane>.  The parent SIGKILLs the
 * child at a random moment (seed printed; SPRIG_SEED=N replays the same
 * delays and lanes, though not the OS's timing), reopens the storage and
 * proves: it opens cleanly; every acknowledged transaction is
 * there with its exact contents; every committed transaction is complete and
 * nothing past the counter exists (the collections hold exactly the counted
 * documents); each counter equals its number of committed transactions and
 * at most the one unacknowledged transaction in flight per lane committed;
 * the log's ids run 1, 2, 3, ... without gaps up to sprig_last_txn_id
 * (which is >= every acknowledged id), each entry naming exactly the
 * documents of its transaction with their revisions.  The next round
 * continues on the same storage.  Rounds alternate between durability FULL,
 * NORMAL and NONE, one storage each: a SIGKILL kills the process, not the
 * machine, so the OS page cache survives and every acknowledged commit must
 * be present in all three modes (NONE only risks commits on power loss).
 * Some rounds run eight writer threads, one lane each, so the child is
 * killed in the middle of group-commit batches.  SPRIG_CRASH_ROUNDS sets the
 * number of rounds (default 200; `make crash-long` runs 10,000).
 */
#include "reltest.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define LANES 8           /* independent writers; a thread each when threaded */
#define THREADED_EVERY 50 /* per mode, rounds 1, 51, 101, ... are threaded */
#define SEGMENT_ROUNDS 500 /* per mode: then verify all and start afresh */
#define KILL_WINDOW_US 30000
#define ACK_TIMEOUT_MS 60000

static const sprig_collection_def crash_colls[] = {
    {"a", SPRIG_ID_NATURAL, 0},
    {"b", SPRIG_ID_NATURAL, 0},
};
static const sprig_schema_def crash_schema = {"crash", crash_colls, 2};

/* ======================================================================
 * The documents of a transaction: derived from (lane, seq, round), so the
 * parent can rebuild every byte it expects.
 * ====================================================================== */

#define STEP_DOCS 3 /* t-0 in a, t-1 in a, t-2 in b */

static const char *
doc_coll(unsigned k)
{
    return k < 2 ? "a" : "b";
}

static sprig_bytes
doc_id(char *buf, size_t n, unsigned lane, uint64_t seq, unsigned k)
{
    snprintf(buf, n, "t%u.%" PRIu64 "-%u", lane, seq, k);
    return sprig_str(buf);
}

static sprig_bytes
lane_id(char *buf, size_t n, const char *what, unsigned lane)
{
    snprintf(buf, n, "%s.%u", what, lane);
    return sprig_str(buf);
}

/* Contents of document k: a marker then 40..199 bytes of pattern. */
static sprig_bytes
doc_contents(char *buf, size_t n, unsigned lane, uint64_t seq, unsigned k,
             unsigned round)
{
    int m = snprintf(buf, n, "lane=%u seq=%" PRIu64 " doc=%u round=%u|", lane,
                     seq, k, round);
    size_t len = (size_t)m + 40 + (size_t)((seq * 7 + k * 13) % 160);
    assert_true(len < n);
    for (size_t i = (size_t)m; i < len; i++) {
        buf[i] = (char)('a' + (i + seq + k) % 26);
    }
    return (sprig_bytes){buf, len};
}

static sprig_bytes
latest_contents(char *buf, size_t n, unsigned lane, uint64_t seq,
                unsigned round)
{
    if (seq == 0) {
        snprintf(buf, n, "none");
    } else {
        snprintf(buf, n, "lane=%u seq=%" PRIu64 " round=%u", lane, seq, round);
    }
    return sprig_str(buf);
}

/* ======================================================================
 * The child: commits until killed, acknowledging each commit on `fd`.
 * It never calls cmocka; any failure prints and exits with status 3.
 * ====================================================================== */

typedef struct child_lane {
    sprig_db *db;
    unsigned lane, round;
    int fd;
} child_lane;

static void
child_fail(const char *what, int rc)
{
    fprintf(stderr, "crash child: %s: %s (%s)\n", what, sprig_strerror(rc),
            sprig_errmsg());
    _exit(3);
}

static void child_ack(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One line per write(): pipes make writes under PIPE_BUF atomic. */
static void
child_ack(int fd, const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (write(fd, line, (size_t)n) != n) {
        _exit(4);
    }
}

/* Apply `t` (freeing it), keep the counter's new header (operation
 * `counter_op`) and return the transaction id. */
static uint64_t
child_commit(child_lane *cl, sprig_txn *t, size_t counter_op,
             sprig_header_buf *counter)
{
    sprig_txn_result *res = NULL;
    int rc = sprig_txn_apply(cl->db, t, &res);
    if (rc) {
        child_fail("applying a transaction", rc);
    }
    uint64_t id = sprig_txn_result_id(res);
    sprig_header h = sprig_txn_result_header(res, counter_op);
    sprig__header_set(counter, &h);
    sprig_txn_result_free(res);
    sprig_txn_free(t);
    return id;
}

/* Create the lane's counter and latest documents. */
static void
child_lane_init(child_lane *cl, sprig_header_buf *counter)
{
    char cid[32], lid[32], lc[64];
    sprig_bytes counter_id = lane_id(cid, sizeof cid, "counter", cl->lane);
    sprig_bytes latest_id = lane_id(lid, sizeof lid, "latest", cl->lane);
    sprig_txn *t = NULL;
    int rc = sprig_txn_new(&t);
    rc = rc ? rc : sprig_txn_insert(t, "b", &counter_id, sprig_str("0"));
    rc = rc ? rc
            : sprig_txn_insert(t, "a", &latest_id,
                               latest_contents(lc, sizeof lc, 0, 0, 0));
    if (rc) {
        child_fail("building the lane's first transaction", rc);
    }
    uint64_t id = child_commit(cl, t, 0, counter);
    child_ack(cl->fd, "I %" PRIu64 " %u\n", id, cl->lane);
}

/* The lane's committed count, and its counter's header in `counter`. */
static uint64_t
child_lane_start(child_lane *cl, sprig_header_buf *counter)
{
    char cid[32];
    sprig_doc *d = NULL;
    int rc = sprig_get(cl->db, "b",
                       lane_id(cid, sizeof cid, "counter", cl->lane), &d);
    if (rc == SPRIG_ENOTFOUND) {
        child_lane_init(cl, counter);
        return 0;
    }
    if (rc) {
        child_fail("reading the counter", rc);
    }
    sprig_bytes c = sprig_doc_contents(d);
    char num[32] = {0};
    memcpy(num, c.data, c.len < 31 ? c.len : 31);
    sprig_header h = sprig_doc_header(d);
    sprig__header_set(counter, &h);
    sprig_doc_free(d);
    return strtoull(num, NULL, 10);
}

static void
child_step(child_lane *cl, uint64_t seq, sprig_header_buf *counter)
{
    char ids[STEP_DOCS][48], bodies[STEP_DOCS][256], lid[32], lc[96], cc[32];
    sprig_txn *t = NULL;
    int rc = sprig_txn_new(&t);
    for (unsigned k = 0; rc == 0 && k < STEP_DOCS; k++) {
        sprig_bytes id = doc_id(ids[k], sizeof ids[k], cl->lane, seq, k);
        sprig_bytes body = doc_contents(bodies[k], sizeof bodies[k], cl->lane,
                                        seq, k, cl->round);
        rc = k == 1 ? sprig_txn_overwrite(t, doc_coll(k), id, body)
                    : sprig_txn_insert(t, doc_coll(k), &id, body);
    }
    snprintf(cc, sizeof cc, "%" PRIu64, seq);
    sprig_header expected = sprig_header_of(counter);
    rc = rc ? rc : sprig_txn_update(t, "b", &expected, sprig_str(cc));
    rc = rc ? rc
            : sprig_txn_overwrite(
                  t, "a", lane_id(lid, sizeof lid, "latest", cl->lane),
                  latest_contents(lc, sizeof lc, cl->lane, seq, cl->round));
    if (rc) {
        child_fail("building a transaction", rc);
    }
    uint64_t id = child_commit(cl, t, 3, counter);
    child_ack(cl->fd, "T %" PRIu64 " %u %" PRIu64 "\n", id, cl->lane, seq);
}

static void *
child_lane_loop(void *arg)
{
    child_lane *cl = arg;
    sprig_header_buf counter;
    uint64_t seq = child_lane_start(cl, &counter);
    for (;;) {
        child_step(cl, ++seq, &counter);
    }
    return NULL;
}

static void
child_main(const char *dir, sprig_durability mode, unsigned round,
           unsigned first_lane, unsigned threads, int fd)
{
    sprig_storage *st = NULL;
    sprig_db *db = NULL;
    int rc = rt_storage_open(dir, mode, 0, 0, &st);
    rc = rc ? rc : sprig_storage_register_schema(st, &crash_schema);
    rc = rc ? rc : sprig_storage_create_database(st, "db", "crash", true);
    rc = rc ? rc : sprig_storage_open_database(st, "db", &db);
    if (rc) {
        child_fail("opening the storage", rc);
    }
    child_lane lanes[LANES];
    pthread_t tids[LANES];
    for (unsigned i = 0; i < threads; i++) {
        lanes[i] = (child_lane){db, first_lane + i, round, fd};
    }
    if (threads == 1) {
        child_lane_loop(&lanes[0]);
    }
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&tids[i], NULL, child_lane_loop, &lanes[i])) {
            child_fail("starting a thread", SPRIG_ENOMEM);
        }
    }
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
    }
    _exit(5); /* the lanes never return */
}

/* ======================================================================
 * The parent: what it knows was committed, and the acknowledgements.
 * ====================================================================== */

typedef struct lane_state {
    bool init;
    uint64_t committed; /* the lane's counter */
    uint32_t *rounds;   /* rounds[s - 1]: the round that committed seq s */
    size_t cap;
} lane_state;

typedef struct mode_state {
    sprig_durability mode;
    const char *name;
    char dir[600];
    lane_state lanes[LANES];
    uint64_t txns;         /* log entries verified: the last transaction id */
    unsigned rounds;       /* rounds of this segment */
    uint64_t earlier_txns; /* of the segments before */
} mode_state;

typedef struct ack {
    char kind; /* 'I' lane init, 'T' step */
    uint64_t txid;
    unsigned lane;
    uint64_t seq;
} ack;

typedef struct ack_list {
    ack *v;
    size_t n, cap;
    char part[256]; /* an incomplete line */
    size_t part_len;
} ack_list;

static void
ack_parse_line(ack_list *a, const char *line)
{
    ack k = {0};
    unsigned long long txid, seq = 0;
    int n = sscanf(line, "%c %llu %u %llu", &k.kind, &txid, &k.lane, &seq);
    assert_true((k.kind == 'I' && n == 3) || (k.kind == 'T' && n == 4));
    assert_true(k.lane < LANES);
    k.txid = txid;
    k.seq = seq;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        assert_non_null(a->v);
    }
    a->v[a->n++] = k;
}

static void
ack_feed(ack_list *a, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            assert_true(a->part_len + 1 < sizeof a->part);
            a->part[a->part_len++] = buf[i];
            continue;
        }
        a->part[a->part_len] = 0;
        ack_parse_line(a, a->part);
        a->part_len = 0;
    }
}

/* Read what the pipe has within `timeout_ms`; false at end of file. */
static bool
ack_read(ack_list *a, int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
    if (r <= 0) {
        assert_true(r == 0 || errno == EINTR);
        return true;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
        return true;
    }
    assert_true(n >= 0);
    ack_feed(a, buf, (size_t)n);
    return n > 0;
}

/* ======================================================================
 * Verification after a crash.
 * ====================================================================== */

static void
lane_record_round(lane_state *ls, uint64_t seq, unsigned round)
{
    if (seq > ls->cap) {
        ls->cap = ls->cap ? ls->cap * 2 : 1024;
        if (ls->cap < seq) {
            ls->cap = seq;
        }
        ls->rounds = realloc(ls->rounds, ls->cap * sizeof *ls->rounds);
        assert_non_null(ls->rounds);
    }
    ls->rounds[seq - 1] = round;
}

static void
assert_step_docs(sprig_db *db, unsigned lane, uint64_t seq, unsigned round)
{
    char id[48], body[256];
    for (unsigned k = 0; k < STEP_DOCS; k++) {
        sprig_bytes want = doc_contents(body, sizeof body, lane, seq, k, round);
        rt_assert_doc(db, doc_coll(k), doc_id(id, sizeof id, lane, seq, k),
                      want.data, want.len);
    }
}

static void
assert_no_step_docs(sprig_db *db, unsigned lane, uint64_t seq)
{
    char id[48];
    for (unsigned k = 0; k < STEP_DOCS; k++) {
        rt_assert_no_doc(db, doc_coll(k), doc_id(id, sizeof id, lane, seq, k));
    }
}

/* The highest acknowledged seq of `lane` (0: none); *init: init acked. */
static uint64_t
acked_seq(const ack_list *a, unsigned lane, bool *init)
{
    uint64_t top = 0;
    *init = false;
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].lane != lane) {
            continue;
        }
        if (a->v[i].kind == 'I') {
            *init = true;
        } else {
            *init = true; /* a step implies the lane exists */
            top = a->v[i].seq > top ? a->v[i].seq : top;
        }
    }
    return top;
}

/* Read the lane's counter: SPRIG_ENOTFOUND when the lane does not exist. */
static int
read_counter(sprig_db *db, unsigned lane, uint64_t *value, uint64_t *rev)
{
    char cid[32], num[32] = {0};
    sprig_doc *d = NULL;
    int rc = sprig_get(db, "b", lane_id(cid, sizeof cid, "counter", lane), &d);
    if (rc) {
        return rc;
    }
    sprig_bytes c = sprig_doc_contents(d);
    assert_true(c.len > 0 && c.len < sizeof num);
    memcpy(num, c.data, c.len);
    *value = strtoull(num, NULL, 10);
    *rev = sprig_doc_header(d).revision;
    sprig_doc_free(d);
    return SPRIG_OK;
}

static void
verify_lane(sprig_db *db, lane_state *ls, unsigned lane, unsigned round,
            const ack_list *a)
{
    bool init_acked;
    uint64_t top = acked_seq(a, lane, &init_acked), c = 0, rev = 0;
    char lid[32], lc[96];
    int rc = read_counter(db, lane, &c, &rev);
    if (rc == SPRIG_ENOTFOUND) {
        assert_false(ls->init);
        assert_false(init_acked);
        rt_assert_no_doc(db, "a", lane_id(lid, sizeof lid, "latest", lane));
        return;
    }
    SPRIG_OK_(rc);
    if (!ls->init && !init_acked) { /* made, unacknowledged: no step yet */
        assert_int_equal(c, 0);
    }
    ls->init = true;
    /* nothing lost, every ack present, at most one more in flight */
    uint64_t known = top > ls->committed ? top : ls->committed;
    assert_true(c >= known);
    assert_true(c <= known + 1);
    assert_int_equal(rev, c + 1);
    for (uint64_t s = ls->committed + 1; s <= c; s++) {
        assert_step_docs(db, lane, s, round);
        lane_record_round(ls, s, round);
    }
    assert_no_step_docs(db, lane, c + 1);
    ls->committed = c;
    sprig_bytes want =
        latest_contents(lc, sizeof lc, lane, c, c ? ls->rounds[c - 1] : 0);
    rt_assert_doc(db, "a", lane_id(lid, sizeof lid, "latest", lane), want.data,
                  want.len);
}

/* Exactly the counted documents exist; the last id is the total. */
static void
verify_counts(sprig_db *db, const mode_state *m, uint64_t *total)
{
    uint64_t na = 0, nb = 0, ca, cb, last;
    *total = 0;
    for (unsigned l = 0; l < LANES; l++) {
        if (m->lanes[l].init) {
            na += 1 + 2 * m->lanes[l].committed;
            nb += 1 + m->lanes[l].committed;
            *total += 1 + m->lanes[l].committed;
        }
    }
    SPRIG_OK_(sprig_count(db, "a", NULL, &ca));
    SPRIG_OK_(sprig_count(db, "b", NULL, &cb));
    assert_int_equal(ca, na);
    assert_int_equal(cb, nb);
    SPRIG_OK_(sprig_last_txn_id(db, &last));
    assert_int_equal(last, *total);
}

/* What a log entry was: its lane and seq (0 for the lane's init). */
typedef struct log_rec {
    unsigned lane;
    uint64_t seq;
} log_rec;

typedef struct want_change {
    const char *coll;
    char id[48];
    uint64_t rev;
} want_change;

/* The changes' ids must be exactly `want` (any order), none deleted. */
static void
assert_changes(const sprig_txn_log *l, size_t i, const want_change *want,
               size_t n)
{
    assert_int_equal(sprig_txn_log_change_count(l, i), n);
    for (size_t w = 0; w < n; w++) {
        size_t hits = 0;
        for (size_t j = 0; j < n; j++) {
            sprig_change ch;
            SPRIG_OK_(sprig_txn_log_change(l, i, j, &ch));
            assert_false(ch.deleted);
            if (strcmp(ch.collection, want[w].coll) == 0 &&
                ch.id.len == strlen(want[w].id) &&
                memcmp(ch.id.data, want[w].id, ch.id.len) == 0) {
                assert_int_equal(ch.revision, want[w].rev);
                hits++;
            }
        }
        assert_int_equal(hits, 1);
    }
}

/* Identify entry i by its counter change, then check all its changes. */
static log_rec
check_log_entry(const sprig_txn_log *l, size_t i)
{
    log_rec r = {LANES, 0};
    for (size_t j = 0; j < sprig_txn_log_change_count(l, i); j++) {
        sprig_change ch;
        SPRIG_OK_(sprig_txn_log_change(l, i, j, &ch));
        char id[48] = {0};
        memcpy(id, ch.id.data, ch.id.len < 47 ? ch.id.len : 47);
        if (strcmp(ch.collection, "b") == 0 &&
            sscanf(id, "counter.%u", &r.lane) == 1) {
            r.seq = ch.revision - 1;
        }
    }
    assert_true(r.lane < LANES);
    want_change w[5] = {{"b", "", r.seq + 1}, {"a", "", r.seq + 1}};
    lane_id(w[0].id, sizeof w[0].id, "counter", r.lane);
    lane_id(w[1].id, sizeof w[1].id, "latest", r.lane);
    if (r.seq == 0) {
        assert_changes(l, i, w, 2);
        return r;
    }
    for (unsigned k = 0; k < STEP_DOCS; k++) {
        w[2 + k].coll = doc_coll(k);
        w[2 + k].rev = 1;
        doc_id(w[2 + k].id, sizeof w[2 + k].id, r.lane, r.seq, k);
    }
    assert_changes(l, i, w, 5);
    return r;
}

/* Walk the log from id `from`: consecutive ids, each lane's entries in
 * order from `cursor` (the lanes' committed counts before, or -1 for a
 * lane not yet made) up to `to`; recs[id - from] gets each entry. */
static void
walk_log(sprig_db *db, uint64_t from, uint64_t to, int64_t cursor[LANES],
         log_rec *recs)
{
    uint64_t next = from;
    for (;;) {
        sprig_txn_log *l = NULL;
        SPRIG_OK_(sprig_list_executed_txns(db, next, 1000, &l));
        size_t n = sprig_txn_log_count(l);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(sprig_txn_log_id(l, i), next);
            log_rec r = check_log_entry(l, i);
            assert_int_equal(cursor[r.lane] + 1, (int64_t)r.seq);
            cursor[r.lane] = (int64_t)r.seq;
            if (recs) {
                recs[next - from] = r;
            }
            next++;
        }
        sprig_txn_log_free(l);
        if (n == 0) {
            break;
        }
    }
    assert_int_equal(next - 1, to);
}

static void
verify_log(sprig_db *db, mode_state *m, const int64_t before[LANES],
           uint64_t total, const ack_list *a)
{
    int64_t cursor[LANES];
    memcpy(cursor, before, sizeof cursor);
    uint64_t from = m->txns + 1;
    log_rec *recs = calloc(total - m->txns + 1, sizeof *recs);
    assert_non_null(recs);
    walk_log(db, from, total, cursor, recs);
    for (unsigned l = 0; l < LANES; l++) {
        int64_t want = m->lanes[l].init ? (int64_t)m->lanes[l].committed : -1;
        assert_int_equal(cursor[l], want);
    }
    for (size_t i = 0; i < a->n; i++) {
        const ack *k = &a->v[i];
        assert_true(k->txid >= from && k->txid <= total);
        const log_rec *r = &recs[k->txid - from];
        assert_int_equal(r->lane, k->lane);
        assert_int_equal(r->seq, k->kind == 'I' ? 0 : k->seq);
    }
    free(recs);
    m->txns = total;
}

static void
lane_cursors(const mode_state *m, int64_t cursor[LANES])
{
    for (unsigned l = 0; l < LANES; l++) {
        cursor[l] = m->lanes[l].init ? (int64_t)m->lanes[l].committed : -1;
    }
}

static void
verify_round(mode_state *m, unsigned round, const ack_list *a)
{
    sprig_storage *st = NULL;
    sprig_db *db = NULL;
    SPRIG_OK_(rt_storage_open(m->dir, m->mode, 0, 0, &st));
    int rc = sprig_storage_open_database(st, "db", &db);
    if (rc == SPRIG_ENOTFOUND) { /* killed before the database was made */
        assert_int_equal(a->n, 0);
        assert_int_equal(m->txns, 0);
        sprig_storage_close(st);
        return;
    }
    SPRIG_OK_(rc);
    int64_t before[LANES];
    lane_cursors(m, before);
    for (unsigned l = 0; l < LANES; l++) {
        verify_lane(db, &m->lanes[l], l, round, a);
    }
    uint64_t total;
    verify_counts(db, m, &total);
    for (size_t i = 0; i < a->n; i++) {
        assert_true(a->v[i].txid <= total);
    }
    verify_log(db, m, before, total, a);
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* Every document in `coll` belongs to a committed transaction. */
static void
assert_no_strays(sprig_db *db, const mode_state *m, const char *coll)
{
    sprig_header_list *hl = NULL;
    SPRIG_OK_(sprig_list_headers(db, coll, NULL, SPRIG_ASC, 0, &hl));
    for (size_t i = 0; i < sprig_header_list_count(hl); i++) {
        sprig_header h = sprig_header_list_get(hl, i);
        char id[64] = {0};
        unsigned lane, k;
        uint64_t seq;
        memcpy(id, h.id.data, h.id.len < 63 ? h.id.len : 63);
        if (sscanf(id, "t%u.%" SCNu64 "-%u", &lane, &seq, &k) == 3) {
            assert_true(lane < LANES && m->lanes[lane].init);
            assert_true(seq >= 1 && seq <= m->lanes[lane].committed);
            assert_true(k < STEP_DOCS && strcmp(doc_coll(k), coll) == 0);
        } else {
            assert_true(sscanf(id, "%*[a-z].%u", &lane) == 1);
            assert_true(lane < LANES && m->lanes[lane].init);
        }
    }
    sprig_header_list_free(hl);
}

/* Everything of the segment, from the first transaction. */
static void
verify_all(mode_state *m)
{
    sprig_storage *st = NULL;
    sprig_db *db = NULL;
    SPRIG_OK_(rt_storage_open(m->dir, m->mode, 0, 0, &st));
    if (m->txns == 0) {
        sprig_storage_close(st);
        return;
    }
    SPRIG_OK_(sprig_storage_open_database(st, "db", &db));
    for (unsigned l = 0; l < LANES; l++) {
        for (uint64_t s = 1; s <= m->lanes[l].committed; s++) {
            assert_step_docs(db, l, s, m->lanes[l].rounds[s - 1]);
        }
    }
    assert_no_strays(db, m, "a");
    assert_no_strays(db, m, "b");
    int64_t cursor[LANES];
    for (unsigned l = 0; l < LANES; l++) {
        cursor[l] = -1;
    }
    walk_log(db, 1, m->txns, cursor, NULL);
    sprig_db_close(db);
    sprig_storage_close(st);
}

/* ======================================================================
 * Rounds.
 * ====================================================================== */

typedef struct crash_run {
    uint64_t rng;
    char root[512];
    mode_state modes[3];
    uint64_t rounds_done, kills_before_ack, threaded_rounds;
} crash_run;

static pid_t
spawn_child(mode_state *m, unsigned round, unsigned first_lane,
            unsigned threads, int *rfd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_main(m->dir, m->mode, round, first_lane, threads, p[1]);
        _exit(6);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

/* Collect acknowledgements until the kill moment, kill, drain, reap. */
static void
kill_at_random(crash_run *r, pid_t pid, int fd, unsigned threads, ack_list *a)
{
    bool from_start = threads == 1 && rt_below(&r->rng, 4) == 0;
    size_t min_acks = threads > 1 ? 16 * threads : 1;
    uint64_t delay = rt_below(&r->rng, KILL_WINDOW_US + 1);
    uint64_t start = rt_now_us(), deadline = from_start ? start + delay : 0;
    bool open = true;
    while (open) {
        uint64_t now = rt_now_us();
        if (!deadline && a->n >= min_acks) {
            deadline = now + delay;
        }
        if (deadline && now >= deadline) {
            break;
        }
        assert_true(now - start < (uint64_t)ACK_TIMEOUT_MS * 1000);
        int wait_ms = deadline ? (int)((deadline - now + 999) / 1000) : 100;
        open = ack_read(a, fd, wait_ms);
    }
    r->kills_before_ack += a->n == 0;
    kill(pid, SIGKILL);
    while (ack_read(a, fd, 10000)) {
    }
    assert_int_equal(a->part_len, 0);
    close(fd);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fail_msg("the child was not killed but ended with status %d", status);
    }
}

static void
run_round(crash_run *r, mode_state *m)
{
    unsigned round = m->rounds++;
    bool threaded = round % THREADED_EVERY == 1;
    unsigned threads = threaded ? LANES : 1;
    unsigned first_lane = threaded ? 0 : (unsigned)rt_below(&r->rng, LANES);
    ack_list a = {0};
    int fd;
    pid_t pid = spawn_child(m, round, first_lane, threads, &fd);
    kill_at_random(r, pid, fd, threads, &a);
    if (threaded) {
        unsigned seen = 0;
        for (unsigned l = 0; l < LANES; l++) {
            bool init;
            acked_seq(&a, l, &init);
            seen += init;
        }
        assert_true(seen >= 2); /* the lanes really ran together */
        r->threaded_rounds++;
    }
    verify_round(m, round, &a);
    free(a.v);
}

static void
mode_reset(mode_state *m)
{
    for (unsigned l = 0; l < LANES; l++) {
        free(m->lanes[l].rounds);
    }
    memset(m->lanes, 0, sizeof m->lanes);
    m->earlier_txns += m->txns;
    m->txns = 0;
    m->rounds = 0;
    tu_rmtree(m->dir);
}

static void
crash_setup(crash_run *r)
{
    static const struct {
        sprig_durability mode;
        const char *name;
    } modes[3] = {{SPRIG_DURABILITY_FULL, "full"},
                  {SPRIG_DURABILITY_NORMAL, "normal"},
                  {SPRIG_DURABILITY_NONE, "none"}};
    r->rng = tu_seed();
    rt_scratch(r->root, sizeof r->root, "crash");
    for (int i = 0; i < 3; i++) {
        r->modes[i].mode = modes[i].mode;
        r->modes[i].name = modes[i].name;
        snprintf(r->modes[i].dir, sizeof r->modes[i].dir, "%s/%s", r->root,
                 modes[i].name);
    }
}

static void
report_progress(const crash_run *r, unsigned long total)
{
    printf("crash: %" PRIu64 "/%lu rounds", r->rounds_done, total);
    for (int i = 0; i < 3; i++) {
        printf(", %s %" PRIu64 " txns", r->modes[i].name,
               r->modes[i].earlier_txns + r->modes[i].txns);
    }
    printf(" (%" PRIu64 " threaded, %" PRIu64 " killed before any ack)\n",
           r->threaded_rounds, r->kills_before_ack);
    fflush(stdout);
}

static void
test_crash_loop(void **state)
{
    (void)state;
    /* 200 rounds take ~5 s here, ~8 s under ASan: no smaller default */
    unsigned long total = rt_env_ulong("SPRIG_CRASH_ROUNDS", 200);
    crash_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    crash_setup(r);
    for (unsigned long i = 0; i < total; i++) {
        mode_state *m = &r->modes[i % 3];
        run_round(r, m);
        r->rounds_done++;
        if (m->rounds == SEGMENT_ROUNDS) { /* bound the disk a long run uses */
            verify_all(m);
            mode_reset(m);
        }
        if (r->rounds_done % 500 == 0) {
            report_progress(r, total);
        }
    }
    report_progress(r, total);
    for (int i = 0; i < 3; i++) {
        verify_all(&r->modes[i]);
        mode_reset(&r->modes[i]);
    }
    tu_rmtree(r->root);
    free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
