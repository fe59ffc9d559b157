/*
 * netload.c -- the client-side load loop of the network benches (see
 * netload.h): threads released together by an atomic flag, stopped
 * together by another, each counting its calls.
 */
#include "netload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct loader {
    netload_fn fn;
    void *arg;
    atomic_bool *go, *stop;
    unsigned long long done;
} loader;

double
netload_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
run(void *p)
{
    loader *l = p;
    while (!atomic_load(l->go)) {
        usleep(100);
    }
    while (!atomic_load(l->stop)) {
        l->fn(l->arg);
        l->done++;
    }
    return NULL;
}

double
netload_phase(int n, netload_fn fn, void *args, size_t arg_size, double secs)
{
    loader *l = calloc((size_t)n, sizeof *l);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    if (!l || !th) {
        fprintf(stderr, "netload: out of memory\n");
        exit(1);
    }
    atomic_bool go = false, stop = false;
    for (int i = 0; i < n; i++) {
        l[i] = (loader){fn, (char *)args + (size_t)i * arg_size, &go, &stop, 0};
        if (pthread_create(&th[i], NULL, run, &l[i]) != 0) {
            fprintf(stderr, "netload: cannot start thread %d\n", i);
            exit(1);
        }
    }
    atomic_store(&go, true);
    double t0 = netload_now();
    usleep((useconds_t)(secs * 1e6));
    atomic_store(&stop, true);
    unsigned long long total = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += l[i].done;
    }
    double rate = (double)total / (netload_now() - t0);
    free(l);
    free(th);
    return rate;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double
netload_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
