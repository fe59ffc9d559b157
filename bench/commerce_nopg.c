/*
 * commerce_nopg.c -- the commerce benchmark built without libpq: no
 * PostgreSQL side (bench_commerce --pg says so).  scripts/deps.sh --bench
 * installs libpq-dev.
 */
#include "commerce.h"

const cm_backend *const cm_postgres = NULL;
