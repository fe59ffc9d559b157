/*
 * commerce_sprig.c -- the Sprig side of the commerce benchmark: a client
 * of `sprig serve` through the public client API (sprig/client.h), one
 * `sprig_client` per thread, the database of bench/commerce-schema.json
 * (registered by `sprig serve --schema`).  Lookups are sprig_get; category
 * queries sprig_view_query_with_docs on the eager view products/by-category;
 * the average rating is two sprig_view_reduce calls on ratings/rating-sum
 * and ratings/rating-count; an order reads its customer, then applies one
 * transaction inserting the order and updating the customer at the
 * revision read (a conflict with another client's order re-reads and
 * retries); a rating is sprig_insert.
 */
#include "bench.h"
#include "commerce.h"

#include "sprig/client.h"
#include "sprig/sprig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_PER_TXN 500
#define MAX_RETRIES 100

typedef struct sconn {
    sprig_client *client;
    sprig_db *db;
} sconn;

static int
sp_fail(const char *what, int rc)
{
    return bench_fail("sprig", "%s: %s (%s)", what, sprig_strerror(rc),
                      sprig_errmsg());
}

static void
s_close(void *conn)
{
    sconn *s = conn;
    if (s) {
        sprig_db_close(s->db);
        sprig_client_close(s->client);
        free(s);
    }
}

static int
s_connect(const char *target, const char *dbname, void **out)
{
    sconn *s = calloc(1, sizeof *s);
    if (!s) {
        return bench_fail("sprig", "out of memory");
    }
    int rc = sprig_client_connect(target, NULL, &s->client);
    rc = rc ? rc
            : sprig_storage_open_database(sprig_client_storage(s->client),
                                          dbname, &s->db);
    if (rc) {
        sp_fail("connect", rc);
        s_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---- loading ------------------------------------------------------------ */

typedef size_t (*doc_fn)(const cm_data *d, uint64_t k, char *buf);

static size_t
category_of(const cm_data *d, uint64_t k, char *buf)
{
    (void)d;
    return cm_category_doc(k, buf);
}

static size_t
customer_of(const cm_data *d, uint64_t k, char *buf)
{
    (void)d;
    return cm_customer_doc(k, 0, 0, buf);
}

static size_t
rating_of(const cm_data *d, uint64_t k, char *buf)
{
    return cm_rating_doc(d->init_rating_p[k - 1], cm_init_rating_customer(d, k),
                         d->init_rating_s[k - 1], buf);
}

/* Insert documents 1..n of `coll`, LOAD_PER_TXN per transaction, under ids
 * 1..n (pushed ids when `push`: they come out 1..n on an empty
 * collection as well). */
static int
load_coll(sconn *s, const cm_data *d, const char *coll, uint64_t n, doc_fn fn,
          bool push)
{
    char buf[CM_DOC_MAX];
    for (uint64_t k = 1; k <= n;) {
        sprig_txn *t;
        int rc = sprig_txn_new(&t);
        for (unsigned i = 0; rc == 0 && i < LOAD_PER_TXN && k <= n; i++, k++) {
            uint8_t kb[8];
            sprig_bytes id = sprig_id_u64(k, kb);
            size_t len = fn(d, k, buf);
            rc = sprig_txn_insert(t, coll, push ? NULL : &id,
                                  (sprig_bytes){buf, len});
        }
        rc = rc ? rc : sprig_txn_apply(s->db, t, NULL);
        sprig_txn_free(t);
        if (rc) {
            return sp_fail(coll, rc);
        }
    }
    return 0;
}

static int
s_load(void *conn, const cm_data *d)
{
    sconn *s = conn;
    if (load_coll(s, d, "categories", d->n.categories, category_of, false) ||
        load_coll(s, d, "products", d->n.products, cm_product_doc, false) ||
        load_coll(s, d, "customers", d->n.customers, customer_of, false) ||
        load_coll(s, d, "ratings", d->n.ratings, rating_of, true)) {
        return -1;
    }
    return 0;
}

/* ---- the operations ----------------------------------------------------- */

static int
s_lookup(void *conn, const cm_data *d, uint64_t p)
{
    sconn *s = conn;
    uint8_t kb[8];
    char want[CM_DOC_MAX];
    size_t len = cm_product_doc(d, p, want);
    sprig_doc *doc;
    int rc = sprig_get(s->db, "products", sprig_id_u64(p, kb), &doc);
    if (rc) {
        return sp_fail("lookup", rc);
    }
    sprig_bytes c = sprig_doc_contents(doc);
    bool ok = c.len == len && memcmp(c.data, want, len) == 0;
    sprig_doc_free(doc);
    return ok ? 0
              : bench_fail("sprig", "product %llu: wrong contents",
                           (unsigned long long)p);
}

/* The view key of the JSON number v (a declarative view's 1-tuple). */
static int
number_key(uint64_t v, sprig_buf *key)
{
    char txt[24];
    int n = snprintf(txt, sizeof txt, "%llu", (unsigned long long)v);
    int rc = sprig_key_from_json(txt, (size_t)n, key);
    return rc ? sp_fail("key", rc) : 0;
}

static int
s_category(void *conn, const cm_data *d, uint64_t c)
{
    sconn *s = conn;
    sprig_buf key = {0};
    sprig_view_query q;
    sprig_mapping_list *l = NULL;
    if (number_key(c, &key)) {
        return -1;
    }
    sprig_view_query_init(&q, "products", "by-category");
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = sprig_buf_bytes(&key);
    int rc = sprig_view_query_with_docs(s->db, &q, &l);
    size_t n = rc ? 0 : sprig_mapping_list_count(l);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = sprig_mapping_list_doc(l, i) ? 0 : SPRIG_EINVAL;
    }
    sprig_mapping_list_free(l);
    sprig_buf_clear(&key);
    if (rc) {
        return sp_fail("category query", rc);
    }
    return n == d->per_category[c - 1]
               ? 0
               : bench_fail("sprig", "category %llu: %zu products, not %u",
                            (unsigned long long)c, n, d->per_category[c - 1]);
}

/* The reduce of view `view` over key `key`, as an integer. */
static int
reduce_u64(sconn *s, const char *view, sprig_bytes key, sprig_buf *out,
           uint64_t *v)
{
    sprig_view_query q;
    sprig_view_query_init(&q, "ratings", view);
    q.match.kind = SPRIG_MATCH_KEY;
    q.match.key = key;
    int rc = sprig_view_reduce(s->db, &q, out);
    if (rc) {
        return sp_fail(view, rc);
    }
    char txt[32];
    size_t n = out->len < sizeof txt - 1 ? out->len : sizeof txt - 1;
    memcpy(txt, out->data, n);
    txt[n] = 0;
    char *end;
    *v = strtoull(txt, &end, 10);
    return *end == 0 && n > 0
               ? 0
               : bench_fail("sprig", "%s: answer '%s'", view, txt);
}

static int
s_rating(void *conn, uint64_t p, uint64_t *count, uint64_t *sum)
{
    sconn *s = conn;
    sprig_buf key = {0}, out = {0};
    int rc = number_key(p, &key);
    rc =
        rc ? rc : reduce_u64(s, "rating-sum", sprig_buf_bytes(&key), &out, sum);
    rc = rc ? rc
            : reduce_u64(s, "rating-count", sprig_buf_bytes(&key), &out, count);
    sprig_buf_clear(&key);
    sprig_buf_clear(&out);
    return rc;
}

/* One attempt at an order: read the customer, then insert the order and
 * update the customer at the revision read, in one transaction. */
static int
order_once(sconn *s, uint64_t customer, const char *order, size_t olen,
           uint64_t total)
{
    uint8_t kb[8];
    char buf[CM_DOC_MAX];
    sprig_doc *doc;
    uint64_t orders, spent;
    int rc = sprig_get(s->db, "customers", sprig_id_u64(customer, kb), &doc);
    if (rc) {
        return rc;
    }
    sprig_bytes c = sprig_doc_contents(doc);
    if (cm_customer_counters(c.data, c.len, &orders, &spent)) {
        sprig_doc_free(doc);
        return SPRIG_EINVAL;
    }
    size_t len = cm_customer_doc(customer, orders + 1, spent + total, buf);
    sprig_header h = sprig_doc_header(doc);
    sprig_txn *t;
    rc = sprig_txn_new(&t);
    rc = rc ? rc
            : sprig_txn_insert(t, "orders", NULL, (sprig_bytes){order, olen});
    rc =
        rc ? rc : sprig_txn_update(t, "customers", &h, (sprig_bytes){buf, len});
    rc = rc ? rc : sprig_txn_apply(s->db, t, NULL);
    sprig_txn_free(t);
    sprig_doc_free(doc);
    return rc;
}

static int
s_order(void *conn, uint64_t customer, uint64_t product, unsigned qty,
        uint64_t total, uint64_t *retries)
{
    char order[CM_DOC_MAX];
    size_t olen = cm_order_doc(customer, product, qty, total, order);
    for (unsigned i = 0; i < MAX_RETRIES; i++) {
        int rc = order_once(conn, customer, order, olen, total);
        if (rc != SPRIG_ECONFLICT) {
            return rc ? sp_fail("order", rc) : 0;
        }
        ++*retries;
    }
    return bench_fail("sprig", "order: %d conflicts in a row", MAX_RETRIES);
}

static int
s_rate(void *conn, uint64_t p, uint64_t customer, unsigned stars)
{
    sconn *s = conn;
    char buf[CM_DOC_MAX];
    size_t len = cm_rating_doc(p, customer, stars, buf);
    int rc =
        sprig_insert(s->db, "ratings", NULL, (sprig_bytes){buf, len}, NULL);
    return rc ? sp_fail("rate", rc) : 0;
}

/* The sums of the customers' counters, 1,000 documents a page. */
static int
customer_sums(sconn *s, cm_totals *out)
{
    uint8_t kb[8];
    uint64_t next = 1;
    for (;;) {
        sprig_range r = {{SPRIG_INCLUDED, sprig_id_u64(next, kb)}, {0}};
        sprig_doc_list *l;
        int rc = sprig_list(s->db, "customers", &r, SPRIG_ASC, 1000, &l);
        if (rc) {
            return sp_fail("list customers", rc);
        }
        size_t n = sprig_doc_list_count(l);
        for (size_t i = 0; i < n && rc == 0; i++) {
            const sprig_doc *doc = sprig_doc_list_get(l, i);
            sprig_bytes c = sprig_doc_contents(doc);
            uint64_t o, sp;
            rc = cm_customer_counters(c.data, c.len, &o, &sp);
            out->customer_orders += o;
            out->customer_spent += sp;
            sprig_key_decode_u64(sprig_doc_header(doc).id, &next);
        }
        sprig_doc_list_free(l);
        if (rc) {
            return bench_fail("sprig", "a customer without counters");
        }
        if (n < 1000) {
            return 0;
        }
        next++;
    }
}

static int
s_totals(void *conn, cm_totals *out)
{
    sconn *s = conn;
    *out = (cm_totals){0};
    int rc = sprig_count(s->db, "orders", NULL, &out->orders);
    rc = rc ? rc : sprig_count(s->db, "ratings", NULL, &out->ratings);
    if (rc) {
        return sp_fail("count", rc);
    }
    return customer_sums(s, out);
}

const cm_backend cm_sprig = {
    .name = "sprig",
    .connect = s_connect,
    .close = s_close,
    .load = s_load,
    .lookup = s_lookup,
    .category = s_category,
    .rating = s_rating,
    .order = s_order,
    .rate = s_rate,
    .totals = s_totals,
};
