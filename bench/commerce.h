/*
 * commerce.h -- the commerce benchmark (bench_commerce): BonsaiDb's
 * headline workload, a small shop, driven over the network from many
 * client threads against Sprig (`sprig serve`, public client API) and
 * PostgreSQL (libpq) with the same data, the same operation mix and the
 * same durability.  commerce.c holds the data set, the mix, the runner,
 * the statistics and the checks; each server side implements the
 * `cm_backend` operations below (commerce_sprig.c, commerce_pg.c).
 *
 * The shop: categories, products (each in one category), customers (an
 * order count and the money spent, kept up to date by every order),
 * orders, and ratings of products (1-5 stars).  Sprig indexes products by
 * category and ratings by product (declarative eager views, the ratings
 * with a sum and a count reduce; bench/commerce-schema.json); PostgreSQL
 * has the same tables with indexes on the same fields.
 */
#ifndef SPRIG_BENCH_COMMERCE_H
#define SPRIG_BENCH_COMMERCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the data set ------------------------------------------------------ */

/** Sizes of the initial data (all generated from the seed). */
typedef struct cm_sizes {
    uint64_t categories, products, customers, ratings;
} cm_sizes;

/** The generated shop: what every client knows (prices, categories) and
 *  what the checks compare against. */
typedef struct cm_data {
    cm_sizes n;
    uint64_t seed;
    uint32_t *category;      /* of product p (1-based), index p-1 */
    uint32_t *price;         /* cents, of product p */
    uint32_t *per_category;  /* products in category c (1-based), c-1 */
    uint32_t *init_ratings;  /* initial ratings of product p, p-1 */
    uint64_t *init_rating_p; /* the initial ratings: product of rating i */
    uint8_t *init_rating_s;  /* ... and its stars */
} cm_data;

/** Contents of a document into buf (at least CM_DOC_MAX bytes); the
 *  length.  Products, categories and customers are JSON of ~100-200
 *  bytes; a customer's counters are the values given. */
#define CM_DOC_MAX 512
size_t cm_product_doc(const cm_data *d, uint64_t p, char *buf);
size_t cm_category_doc(uint64_t c, char *buf);
size_t cm_customer_doc(uint64_t c, uint64_t orders, uint64_t spent, char *buf);
size_t cm_order_doc(uint64_t customer, uint64_t product, unsigned qty,
                    uint64_t total, char *buf);
size_t cm_rating_doc(uint64_t product, uint64_t customer, unsigned stars,
                     char *buf);
/** The customer of initial rating k (1-based). */
uint64_t cm_init_rating_customer(const cm_data *d, uint64_t k);
/** Read the counters of a customer document (as cm_customer_doc wrote
 *  them); -1 if they are not there. */
int cm_customer_counters(const char *doc, size_t len, uint64_t *orders,
                         uint64_t *spent);

/* ---- the server sides -------------------------------------------------- */

/** What the checks read from a database (untimed). */
typedef struct cm_totals {
    uint64_t orders;          /* documents / rows in orders */
    uint64_t customer_orders; /* sum of the customers' order counters */
    uint64_t customer_spent;  /* sum of the customers' money spent */
    uint64_t ratings;         /* documents / rows in ratings */
} cm_totals;

/**
 * One server side.  `connect` opens one client connection (one per
 * thread; `target` is a ws:// URL or a libpq conninfo); every other call
 * uses one connection from one thread at a time.  Calls return 0, or -1
 * after printing what failed (bench_fail); the operations also check
 * their answers against `d` and fail on a wrong one.
 */
typedef struct cm_backend {
    const char *name;
    int (*connect)(const char *target, const char *dbname, void **conn);
    void (*close)(void *conn);
    /** Ready a connection for the operations once the tables exist
     *  (PostgreSQL: prepare the statements); NULL: nothing to do. */
    int (*prepare)(void *conn);
    /** Create the tables (PostgreSQL) and load the initial data. */
    int (*load)(void *conn, const cm_data *d);
    /** Product `p` by id; its contents must be the generated ones. */
    int (*lookup)(void *conn, const cm_data *d, uint64_t p);
    /** The products of category `c` with their contents; the number found
     *  must be d->per_category[c-1]. */
    int (*category)(void *conn, const cm_data *d, uint64_t c);
    /** Ratings of product p: count and sum of stars (the average). */
    int (*rating)(void *conn, uint64_t p, uint64_t *count, uint64_t *sum);
    /** Place an order: insert it and update its customer's counters in
     *  one transaction.  *retries counts conflicts retried. */
    int (*order)(void *conn, uint64_t customer, uint64_t product, unsigned qty,
                 uint64_t total, uint64_t *retries);
    /** Rate product p. */
    int (*rate)(void *conn, uint64_t p, uint64_t customer, unsigned stars);
    int (*totals)(void *conn, cm_totals *out);
} cm_backend;

extern const cm_backend cm_sprig;
/** NULL when bench_commerce was built without libpq. */
extern const cm_backend *const cm_postgres;

#endif /* SPRIG_BENCH_COMMERCE_H */
