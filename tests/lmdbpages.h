/*
 * lmdbpages.h -- the live pages of an LMDB file, found through LMDB itself,
 * for tests that damage a page's structure in the file (test_flips.c: a
 * flip of any table's leaf; test_bgverify.c: a leaf of one table).  The
 * page of every key a cursor reads is the leaf holding it; the files have
 * LMDB's default page size, 4096.  Everything is static inline.
 */
#ifndef SPRIG_TESTS_LMDBPAGES_H
#define SPRIG_TESTS_LMDBPAGES_H

#include "testutil.h"

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bpage {
    char file[1300];
    uint64_t off;          /* the page's offset in its file */
    uint16_t lower, upper; /* its free-space bounds */
    bool leaf;
    char table[64]; /* the table of its first key found */
} bpage;

/* Add the leaf page holding `ptr` (a key in a map of page size 4096). */
static inline void
add_leaf(bpage **v, size_t *n, const char *file, const char *table,
         const void *ptr)
{
    const uint8_t *pg = (const uint8_t *)((uintptr_t)ptr & ~(uintptr_t)4095);
    uint64_t no;
    memcpy(&no, pg, 8);
    for (size_t i = 0; i < *n; i++) {
        if ((*v)[i].off == no * 4096 && !strcmp((*v)[i].file, file)) {
            return;
        }
    }
    *v = realloc(*v, (*n + 1) * sizeof **v);
    assert_non_null(*v);
    bpage *p = &(*v)[(*n)++];
    snprintf(p->file, sizeof p->file, "%s", file);
    p->off = no * 4096;
    p->lower = (uint16_t)(pg[12] | pg[13] << 8);
    p->upper = (uint16_t)(pg[14] | pg[15] << 8);
    p->leaf = true;
    snprintf(p->table, sizeof p->table, "%.63s", table);
}

/* The live leaf pages of every table (the table directory too) of the
 * environment in `dir`, found through LMDB: the page of every key. */
static inline void
env_leaves(const char *dir, const char *file, bpage **v, size_t *n)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, d;
    MDB_dbi dbi;
    char names[64][64];
    size_t nn = 0;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 64), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    for (int r = mdb_cursor_get(c, &k, &d, MDB_FIRST); r == 0 && nn < 64;
         r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        add_leaf(v, n, file, "", k.mv_data);
        if (k.mv_size < 63) {
            memcpy(names[nn], k.mv_data, k.mv_size);
            names[nn++][k.mv_size] = 0;
        }
    }
    mdb_cursor_close(c);
    for (size_t i = 0; i < nn; i++) {
        assert_int_equal(mdb_dbi_open(txn, names[i], 0, &dbi), 0);
        assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
        for (int r = mdb_cursor_get(c, &k, &d, MDB_FIRST); r == 0;
             r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
            add_leaf(v, n, file, names[i], k.mv_data);
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

#endif /* SPRIG_TESTS_LMDBPAGES_H */
