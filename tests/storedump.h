/*
 * storedump.h -- a storage's LMDB contents as one byte string, for tests
 * that prove two storages byte-identical (test_cmd_replay: the same
 * commands replayed on two storages; test_cluster_fixture: every node of a
 * Raft group).  The dump is `_admin`, then each database directory in name
 * order; per environment each non-empty table's name, then every key and
 * value (each as a u32 length and the bytes).  Empty tables are left out:
 * a table is created lazily by the first write that needs it, which is
 * local (test_cmd_replay's comment says why).  `skip`, when not NULL, is a
 * comma-separated list of keys left out of every table (node-local state
 * such as "raft.floor", or "wal.lsn": the position in a node's own command
 * log, which differs after a snapshot install).  `meta`'s "table:"
 * records (env.c: the tables this environment created) are local too.
 * Header-only, static: include it once per test program, after cmocka.
 */
#ifndef SPRIG_TEST_STOREDUMP_H
#define SPRIG_TEST_STOREDUMP_H

#include <dirent.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
sd_put_val(sprig_buf *out, const MDB_val *v)
{
    uint32_t n = (uint32_t)v->mv_size;
    SPRIG_OK_(sprig_buf_append(out, &n, 4));
    SPRIG_OK_(sprig_buf_append(out, v->mv_data, v->mv_size));
}

/* Is `k` one of the comma-separated keys of `skip`? */
static bool
sd_skipped(const char *skip, const MDB_val *k)
{
    for (const char *p = skip; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (k->mv_size == n && memcmp(k->mv_data, p, n) == 0) {
            return true;
        }
        p = e ? e + 1 : p + n;
    }
    return false;
}

/* One table of `txn`, named `name`, unless it is empty. */
static void
sd_dump_table(MDB_txn *txn, const MDB_val *name, const char *skip,
              sprig_buf *out)
{
    char nm[256];
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat ms;
    snprintf(nm, sizeof nm, "%.*s", (int)name->mv_size, (char *)name->mv_data);
    assert_int_equal(mdb_dbi_open(txn, nm, 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
    if (ms.ms_entries == 0) {
        return;
    }
    sd_put_val(out, name);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        if (sd_skipped(skip, &k) || (!strcmp(nm, "meta") && k.mv_size > 6 &&
                                     !memcmp(k.mv_data, "table:", 6))) {
            continue; /* which tables this environment created: local */
        }
        sd_put_val(out, &k);
        sd_put_val(out, &v);
    }
    mdb_cursor_close(cur);
}

/* Every table of the environment in `dir` (closed by its owner). */
static void
sd_dump_env(const char *dir, const char *skip, sprig_buf *out)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_dbi main_dbi;
    MDB_val k, v;
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 256);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &main_dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, main_dbi, &cur), 0);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        sd_dump_table(txn, &k, skip, out);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

static int
sd_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The whole storage in `dir` (closed): _admin, then each database
 * directory by name (the name, then its environment). */
static void
sd_dump_storage(const char *dir, const char *skip, sprig_buf *out)
{
    char p[4096]; /* `dir` is at most 2048 bytes in the tests */
    snprintf(p, sizeof p, "%s/_admin", dir);
    sd_dump_env(p, skip, out);
    snprintf(p, sizeof p, "%s/db", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    char *names[64];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 64) {
        if (de->d_name[0] != '.') {
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, sd_cmp_names);
    for (size_t i = 0; i < n; i++) {
        SPRIG_OK_(sprig_buf_append(out, names[i], strlen(names[i]) + 1));
        snprintf(p, sizeof p, "%s/db/%s", dir, names[i]);
        sd_dump_env(p, skip, out);
        free(names[i]);
    }
}

#endif
