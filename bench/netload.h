/*
 * netload.h -- the client-side load loop shared by the network benches
 * (bench/api_bench.c, bench/auth_bench.c): N threads, each calling one
 * function in a loop from a common start until a common stop, counted;
 * and the median of a few rounds.  The benches keep their own clients,
 * servers and workloads; only the loop is here.
 */
#ifndef SPRIG_BENCH_NETLOAD_H
#define SPRIG_BENCH_NETLOAD_H

#include <stddef.h>

/** One call of a client thread's workload, with its own argument. */
typedef void (*netload_fn)(void *arg);

/**
 * Run `n` threads for `secs` seconds, thread i calling fn(arg_i) in a loop
 * (arg_i = (char *)args + i * arg_size), all released at once; returns
 * the calls per second of all threads together (calls / the wall time
 * from the release to the stop, the calls in flight at the stop finishing
 * inside it).  Exits the process when a thread cannot start.
 */
double netload_phase(int n, netload_fn fn, void *args, size_t arg_size,
                     double secs);

/** Sort `v` (n > 0 values) and return its median. */
double netload_median(double *v, int n);

/** CLOCK_MONOTONIC in seconds. */
double netload_now(void);

#endif
