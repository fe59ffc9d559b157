/*
 * commerce_pg.c -- the PostgreSQL side of the commerce benchmark: libpq,
 * one connection per thread, prepared statements, the shop as tables with
 * the same documents as Sprig's (a `doc` text column) and, as columns,
 * the fields the queries use, indexed like Sprig's views: products by
 * category, ratings by product.  An order is one statement (an INSERT
 * into orders whose RETURNING feeds the UPDATE of the customer's
 * counters: atomic in autocommit, the idiomatic single round trip); the
 * average rating is one SELECT count(*), sum(stars).  Durability is the
 * server's (bench/commerce.py starts it with fsync and
 * synchronous_commit on).
 */
#include "bench.h"
#include "commerce.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const schema_sql =
    "DROP TABLE IF EXISTS categories, products, customers, orders, ratings;"
    "CREATE TABLE categories (id bigint PRIMARY KEY, doc text NOT NULL);"
    "CREATE TABLE products (id bigint PRIMARY KEY, category bigint NOT NULL,"
    " doc text NOT NULL);"
    "CREATE INDEX products_category ON products (category);"
    "CREATE TABLE customers (id bigint PRIMARY KEY, orders bigint NOT NULL,"
    " spent bigint NOT NULL, doc text NOT NULL);"
    "CREATE TABLE orders (id bigserial PRIMARY KEY, customer bigint NOT "
    "NULL, product bigint NOT NULL, qty int NOT NULL, total bigint NOT "
    "NULL, doc text NOT NULL);"
    "CREATE TABLE ratings (id bigserial PRIMARY KEY, product bigint NOT "
    "NULL, customer bigint NOT NULL, stars int NOT NULL, doc text NOT "
    "NULL);"
    "CREATE INDEX ratings_product ON ratings (product);";

/* The prepared statements: name, SQL, number of parameters. */
static const struct {
    const char *name, *sql;
    int n;
} stmts[] = {
    {"lookup", "SELECT doc FROM products WHERE id = $1", 1},
    {"category", "SELECT id, doc FROM products WHERE category = $1", 1},
    {"rating",
     "SELECT count(*), coalesce(sum(stars), 0) FROM ratings "
     "WHERE product = $1",
     1},
    {"order",
     "WITH o AS (INSERT INTO orders (customer, product, qty, total, doc) "
     "VALUES ($1, $2, $3, $4, $5) RETURNING customer, total) "
     "UPDATE customers SET orders = orders + 1, spent = spent + o.total "
     "FROM o WHERE customers.id = o.customer",
     5},
    {"rate",
     "INSERT INTO ratings (product, customer, stars, doc) "
     "VALUES ($1, $2, $3, $4)",
     4},
    {"ins_category", "INSERT INTO categories (id, doc) VALUES ($1, $2)", 2},
    {"ins_product",
     "INSERT INTO products (id, category, doc) VALUES ($1, $2, $3)", 3},
    {"ins_customer",
     "INSERT INTO customers (id, orders, spent, doc) VALUES ($1, 0, 0, $2)", 2},
};

#define N_STMTS (sizeof stmts / sizeof stmts[0])

static int
pg_fail(PGconn *c, const char *what)
{
    return bench_fail("postgres", "%s: %s", what,
                      c ? PQerrorMessage(c) : "out of memory");
}

static void
pg_close(void *conn)
{
    PQfinish(conn);
}

/* Run `sql` (no parameters, no rows wanted). */
static int
pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? 0 : pg_fail(c, sql);
}

static int
prepare_all(PGconn *c)
{
    for (size_t i = 0; i < N_STMTS; i++) {
        PGresult *r =
            PQprepare(c, stmts[i].name, stmts[i].sql, stmts[i].n, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            return pg_fail(c, stmts[i].sql);
        }
    }
    return 0;
}

/* Prepare the statements on a connection (the tables must exist). */
static int
prepare_all_conn(void *conn)
{
    return prepare_all(conn);
}

static int
pg_connect(const char *target, const char *dbname, void **out)
{
    (void)dbname; /* the conninfo names the database */
    PGconn *c = PQconnectdb(target);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        pg_fail(c, "connect");
        PQfinish(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* Run prepared statement `name` with text parameters; the result is
 * returned when its status is `want`, else NULL after printing why. */
static PGresult *
run(PGconn *c, const char *name, int n, const char *const *params,
    ExecStatusType want)
{
    PGresult *r = PQexecPrepared(c, name, n, params, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        pg_fail(c, name);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Run a statement that changes rows; 0 if it succeeded. */
static int
run_cmd(PGconn *c, const char *name, int n, const char *const *params)
{
    PGresult *r = run(c, name, n, params, PGRES_COMMAND_OK);
    PQclear(r);
    return r ? 0 : -1;
}

/* ---- loading ------------------------------------------------------------ */

static int
load_categories(PGconn *c, const cm_data *d)
{
    char id[24], doc[CM_DOC_MAX];
    const char *p[2] = {id, doc};
    for (uint64_t k = 1; k <= d->n.categories; k++) {
        snprintf(id, sizeof id, "%llu", (unsigned long long)k);
        doc[cm_category_doc(k, doc)] = 0;
        if (run_cmd(c, "ins_category", 2, p)) {
            return -1;
        }
    }
    return 0;
}

static int
load_products(PGconn *c, const cm_data *d)
{
    char id[24], cat[24], doc[CM_DOC_MAX];
    const char *p[3] = {id, cat, doc};
    for (uint64_t k = 1; k <= d->n.products; k++) {
        snprintf(id, sizeof id, "%llu", (unsigned long long)k);
        snprintf(cat, sizeof cat, "%u", d->category[k - 1]);
        doc[cm_product_doc(d, k, doc)] = 0;
        if (run_cmd(c, "ins_product", 3, p)) {
            return -1;
        }
    }
    return 0;
}

static int
load_customers(PGconn *c, const cm_data *d)
{
    char id[24], doc[CM_DOC_MAX];
    const char *p[2] = {id, doc};
    for (uint64_t k = 1; k <= d->n.customers; k++) {
        snprintf(id, sizeof id, "%llu", (unsigned long long)k);
        doc[cm_customer_doc(k, 0, 0, doc)] = 0;
        if (run_cmd(c, "ins_customer", 2, p)) {
            return -1;
        }
    }
    return 0;
}

static int pg_rate(void *conn, uint64_t p, uint64_t customer, unsigned stars);

static int
load_ratings(PGconn *c, const cm_data *d)
{
    for (uint64_t k = 1; k <= d->n.ratings; k++) {
        if (pg_rate(c, d->init_rating_p[k - 1], cm_init_rating_customer(d, k),
                    d->init_rating_s[k - 1])) {
            return -1;
        }
    }
    return 0;
}

/* The tables, then the data in one transaction. */
static int
pg_load(void *conn, const cm_data *d)
{
    PGconn *c = conn;
    if (pg_exec(c, schema_sql) || prepare_all(c) || pg_exec(c, "BEGIN")) {
        return -1;
    }
    if (load_categories(c, d) || load_products(c, d) || load_customers(c, d) ||
        load_ratings(c, d)) {
        pg_exec(c, "ROLLBACK");
        return -1;
    }
    return pg_exec(c, "COMMIT") || pg_exec(c, "ANALYZE");
}

/* ---- the operations ----------------------------------------------------- */

static int
pg_lookup(void *conn, const cm_data *d, uint64_t p)
{
    char id[24], want[CM_DOC_MAX];
    const char *params[1] = {id};
    size_t len = cm_product_doc(d, p, want);
    snprintf(id, sizeof id, "%llu", (unsigned long long)p);
    PGresult *r = run(conn, "lookup", 1, params, PGRES_TUPLES_OK);
    if (!r) {
        return -1;
    }
    bool ok = PQntuples(r) == 1 && (size_t)PQgetlength(r, 0, 0) == len &&
              memcmp(PQgetvalue(r, 0, 0), want, len) == 0;
    PQclear(r);
    return ok ? 0
              : bench_fail("postgres", "product %llu: wrong contents",
                           (unsigned long long)p);
}

static int
pg_category(void *conn, const cm_data *d, uint64_t cat)
{
    char id[24];
    const char *params[1] = {id};
    snprintf(id, sizeof id, "%llu", (unsigned long long)cat);
    PGresult *r = run(conn, "category", 1, params, PGRES_TUPLES_OK);
    if (!r) {
        return -1;
    }
    int n = PQntuples(r);
    PQclear(r);
    return (unsigned)n == d->per_category[cat - 1]
               ? 0
               : bench_fail("postgres", "category %llu: %d products, not %u",
                            (unsigned long long)cat, n,
                            d->per_category[cat - 1]);
}

static int
pg_rating(void *conn, uint64_t p, uint64_t *count, uint64_t *sum)
{
    char id[24];
    const char *params[1] = {id};
    snprintf(id, sizeof id, "%llu", (unsigned long long)p);
    PGresult *r = run(conn, "rating", 1, params, PGRES_TUPLES_OK);
    if (!r) {
        return -1;
    }
    bool ok = PQntuples(r) == 1;
    if (ok) {
        *count = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        *sum = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    return ok ? 0 : bench_fail("postgres", "rating: no row");
}

static int
pg_order(void *conn, uint64_t customer, uint64_t product, unsigned qty,
         uint64_t total, uint64_t *retries)
{
    (void)retries; /* the UPDATE waits for the row lock: no conflicts */
    char cu[24], pr[24], q[16], tot[24], doc[CM_DOC_MAX];
    const char *params[5] = {cu, pr, q, tot, doc};
    snprintf(cu, sizeof cu, "%llu", (unsigned long long)customer);
    snprintf(pr, sizeof pr, "%llu", (unsigned long long)product);
    snprintf(q, sizeof q, "%u", qty);
    snprintf(tot, sizeof tot, "%llu", (unsigned long long)total);
    doc[cm_order_doc(customer, product, qty, total, doc)] = 0;
    PGresult *r = run(conn, "order", 5, params, PGRES_COMMAND_OK);
    if (!r) {
        return -1;
    }
    bool ok = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return ok ? 0
              : bench_fail("postgres", "order: customer %llu not updated",
                           (unsigned long long)customer);
}

static int
pg_rate(void *conn, uint64_t p, uint64_t customer, unsigned stars)
{
    char pr[24], cu[24], st[8], doc[CM_DOC_MAX];
    const char *params[4] = {pr, cu, st, doc};
    snprintf(pr, sizeof pr, "%llu", (unsigned long long)p);
    snprintf(cu, sizeof cu, "%llu", (unsigned long long)customer);
    snprintf(st, sizeof st, "%u", stars);
    doc[cm_rating_doc(p, customer, stars, doc)] = 0;
    return run_cmd(conn, "rate", 4, params);
}

/* One row of integers from `sql`. */
static int
query_u64s(PGconn *c, const char *sql, uint64_t *out, int n)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              PQnfields(r) == n;
    for (int i = 0; ok && i < n; i++) {
        out[i] = strtoull(PQgetvalue(r, 0, i), NULL, 10);
    }
    PQclear(r);
    return ok ? 0 : pg_fail(c, sql);
}

static int
pg_totals(void *conn, cm_totals *out)
{
    uint64_t v[4];
    int rc = query_u64s(conn,
                        "SELECT (SELECT count(*) FROM orders), "
                        "(SELECT coalesce(sum(orders), 0) FROM customers), "
                        "(SELECT coalesce(sum(spent), 0) FROM customers), "
                        "(SELECT count(*) FROM ratings)",
                        v, 4);
    *out = (cm_totals){v[0], v[1], v[2], v[3]};
    return rc;
}

static const cm_backend pg_backend = {
    .name = "postgres",
    .connect = pg_connect,
    .prepare = prepare_all_conn,
    .close = pg_close,
    .load = pg_load,
    .lookup = pg_lookup,
    .category = pg_category,
    .rating = pg_rating,
    .order = pg_order,
    .rate = pg_rate,
    .totals = pg_totals,
};

const cm_backend *const cm_postgres = &pg_backend;
