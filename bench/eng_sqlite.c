/*
 * eng_sqlite.c -- the SQLite peer: one file in WAL mode with
 * synchronous=FULL (every commit fsyncs the WAL: the durability of Sprig's
 * FULL), table docs(id INTEGER PRIMARY KEY, doc BLOB), prepared statements
 * throughout, other settings at SQLite's defaults.  Batches are
 * BEGIN / n INSERTs / COMMIT; single inserts are autocommit statements.
 * Concurrent writers each open their own connection (multi-thread mode,
 * busy_timeout 10 s); a statement that still returns SQLITE_BUSY is retried
 * and counted.
 */
#include "bench.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 10000

typedef struct sdb {
    char path[4096];
    sqlite3 *db;
    sqlite3_stmt *ins, *sel;
} sdb;

static int
sql_fail(sqlite3 *db, const char *what)
{
    return bench_fail("sqlite", "%s: %s", what,
                      db ? sqlite3_errmsg(db) : "out of memory");
}

int
bench_sqlite_connect(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                     NULL, NULL, NULL) != SQLITE_OK) {
        sql_fail(db, "open");
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

/* Open a connection with the benchmark's settings and the docs table. */
static int
s_connect(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    if (bench_sqlite_connect(path, &db)) {
        return -1;
    }
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS docs"
                     "(id INTEGER PRIMARY KEY, doc BLOB);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        sql_fail(db, "open");
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

static int
prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        return sql_fail(db, sql);
    }
    return 0;
}

#define INSERT_SQL "INSERT INTO docs(id, doc) VALUES(?, ?)"
#define SELECT_SQL "SELECT doc FROM docs WHERE id = ?"

static void
s_close(void *db)
{
    sdb *s = db;
    sqlite3_finalize(s->ins);
    sqlite3_finalize(s->sel);
    sqlite3_close(s->db);
    free(s);
}

static int
s_open(const char *dir, void **out)
{
    sdb *s = calloc(1, sizeof *s);
    if (!s) {
        return bench_fail("sqlite", "out of memory");
    }
    snprintf(s->path, sizeof s->path, "%s/bench.sqlite", dir);
    if (s_connect(s->path, &s->db) || prepare(s->db, INSERT_SQL, &s->ins) ||
        prepare(s->db, SELECT_SQL, &s->sel)) {
        s_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* Run the insert statement for document k; SQLITE_DONE on success. */
static int
insert_doc(sqlite3_stmt *ins, const bench_docs *d, uint64_t k)
{
    size_t len;
    const char *doc = bench_doc(d, k, &len);
    sqlite3_bind_int64(ins, 1, (sqlite3_int64)k);
    sqlite3_bind_blob(ins, 2, doc, (int)len, SQLITE_STATIC);
    int src = sqlite3_step(ins);
    sqlite3_reset(ins);
    return src;
}

static int
s_insert_batch(void *db, const bench_docs *d, uint64_t first, uint64_t n,
               unsigned per_txn, uint64_t *ids)
{
    sdb *s = db;
    for (uint64_t done = 0; done < n;) {
        if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
            return sql_fail(s->db, "begin");
        }
        uint64_t end = done + per_txn < n ? done + per_txn : n;
        for (; done < end; done++) {
            if (insert_doc(s->ins, d, first + done) != SQLITE_DONE) {
                sql_fail(s->db, "insert");
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                return -1;
            }
            if (ids) {
                ids[done] = first + done;
            }
        }
        if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            return sql_fail(s->db, "commit");
        }
    }
    return 0;
}

typedef struct worker {
    const char *path;
    const bench_docs *d;
    uint64_t first, n;
    uint64_t *ids;
    uint64_t retries;
} worker;

/* Insert the worker's documents, one autocommit statement each. */
static int
insert_all(sqlite3 *db, sqlite3_stmt *ins, worker *w)
{
    for (uint64_t i = 0; i < w->n; i++) {
        int src;
        while ((src = insert_doc(ins, w->d, w->first + i)) == SQLITE_BUSY) {
            w->retries++;
        }
        if (src != SQLITE_DONE) {
            return sql_fail(db, "insert");
        }
        w->ids[i] = w->first + i;
    }
    return 0;
}

static int
insert_worker(void *arg, bench_start *st)
{
    worker *w = arg;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    int rc = s_connect(w->path, &db);
    rc = rc ? rc : prepare(db, INSERT_SQL, &ins);
    bench_ready(st);
    rc = rc ? rc : insert_all(db, ins, w);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return rc;
}

static int
s_insert_threads(void *db, const bench_docs *d, uint64_t first,
                 unsigned threads, uint64_t per_thread, uint64_t *ids,
                 bench_conc *out)
{
    sdb *s = db;
    worker *w = calloc(threads, sizeof *w);
    if (!w) {
        return bench_fail("sqlite", "out of memory");
    }
    for (unsigned t = 0; t < threads; t++) {
        w[t] = (worker){s->path,
                        d,
                        first + t * per_thread,
                        per_thread,
                        ids + t * per_thread,
                        0};
    }
    memset(out, 0, sizeof *out);
    int rc = bench_threads(threads, insert_worker, w, sizeof *w, &out->seconds);
    for (unsigned t = 0; t < threads; t++) {
        out->retries += w[t].retries;
    }
    free(w);
    return rc;
}

/* Select document id into buf (a missing id fails). */
static int
select_doc(sdb *s, uint64_t id, char *buf, size_t cap, size_t *len)
{
    sqlite3_bind_int64(s->sel, 1, (sqlite3_int64)id);
    int src = sqlite3_step(s->sel);
    if (src == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(s->sel, 0);
        size_t n = (size_t)sqlite3_column_bytes(s->sel, 0);
        memcpy(buf, p, n < cap ? n : cap);
        *len = n;
    }
    sqlite3_reset(s->sel);
    if (src != SQLITE_ROW) {
        return src == SQLITE_DONE ? bench_fail("sqlite", "id %llu missing",
                                               (unsigned long long)id)
                                  : sql_fail(s->db, "select");
    }
    return 0;
}

static int
s_get_random(void *db, const uint64_t *ids, size_t n, const uint16_t *lens,
             uint64_t *bad)
{
    char buf[BENCH_DOC_MAX];
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        if (select_doc(db, ids[i], buf, sizeof buf, &len)) {
            return -1;
        }
        *bad += len != lens[ids[i]];
    }
    return 0;
}

static int
s_read(void *db, uint64_t id, char *buf, size_t cap, size_t *len)
{
    return select_doc(db, id, buf, cap, len);
}

static int
s_count(void *db, uint64_t *n)
{
    sdb *s = db;
    sqlite3_stmt *st;
    *n = 0;
    if (prepare(s->db, "SELECT count(*) FROM docs", &st)) {
        return -1;
    }
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return src == SQLITE_ROW ? 0 : sql_fail(s->db, "count");
}

const bench_engine bench_sqlite = {
    .name = "sqlite",
    .open = s_open,
    .close = s_close,
    .insert_batch = s_insert_batch,
    .insert_threads = s_insert_threads,
    .get_random = s_get_random,
    .read = s_read,
    .count = s_count,
};
