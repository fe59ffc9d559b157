/*
 * schematest.h -- helpers of the schema tests (test_conformance.c's schema
 * test, test_schema_server.c): comparing two schema definitions by what
 * any placement can report of them (names, id kinds, flags, and each
 * view's name, version, policy, paths, reduce -- C views by whether they
 * have code to reduce with, since their code never travels), and finding
 * one schema in a list.
 */
#ifndef SPRIG_SCHEMATEST_H
#define SPRIG_SCHEMATEST_H

#include "testutil.h"

static inline bool
st_same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static inline void
st_same_view(const sprig_view_def *a, const sprig_view_def *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->policy, b->policy);
    assert_true(st_same_str(a->json_key, b->json_key));
    assert_true(st_same_str(a->json_value, b->json_value));
    assert_int_equal(a->builtin_reduce, b->builtin_reduce);
    assert_int_equal(a->map != NULL, b->map != NULL);
    assert_int_equal(a->reduce != NULL, b->reduce != NULL);
}

/* `a` and `b` describe the same schema. */
static inline void
st_same_schema(const sprig_schema_def *a, const sprig_schema_def *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->n_collections, b->n_collections);
    for (size_t i = 0; i < a->n_collections; i++) {
        const sprig_collection_def *x = &a->collections[i];
        const sprig_collection_def *y = &b->collections[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->id_kind, y->id_kind);
        assert_int_equal(x->flags, y->flags);
        assert_int_equal(x->n_views, y->n_views);
        for (size_t j = 0; j < x->n_views; j++) {
            st_same_view(&x->views[j], &y->views[j]);
        }
    }
}

/* Schema `name` of `l`, or NULL. */
static inline const sprig_schema_def *
st_find(const sprig_schema_list *l, const char *name)
{
    for (size_t i = 0; i < sprig_schema_list_count(l); i++) {
        if (strcmp(sprig_schema_list_get(l, i)->name, name) == 0) {
            return sprig_schema_list_get(l, i);
        }
    }
    return NULL;
}

#endif
