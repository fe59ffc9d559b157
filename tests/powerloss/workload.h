/*
 * workload.h -- what the power-loss harness runs and how an image of it is
 * judged (workload.c).  The workload is deterministic in its step number:
 * step i does one thing decided by i % 10, so the checker knows every
 * write that was ever issued and what it wrote, and only needs the
 * acknowledgements (journaled by the recorder) to know which ones were
 * promised.
 */
#ifndef SPRIG_TESTS_PL_WORKLOAD_H
#define SPRIG_TESTS_PL_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sprig/sprig.h"

typedef struct pl_opts {
    sprig_durability durability;
    bool kv_lazy;
    unsigned steps;
} pl_opts;

/** One acknowledgement: a kind letter ('T' transaction, 'K' key-value set,
 *  'D' key-value delete, 'U' user and group, 'C' database created with a
 *  document, 'X' database deleted) and the step it names. */
typedef struct pl_ack {
    char kind;
    unsigned step;
} pl_ack;

/** Run the workload on the storage at `path` (must not exist), writing one
 *  line per acknowledged call to `ack_fd` and fsyncing it.  Returns 0, or
 *  1 with a message on stderr. */
int pl_work(const char *path, const pl_opts *o, int ack_fd);

/** Parse one acknowledgement line ("T 12\n"); false if malformed. */
bool pl_ack_parse(const uint8_t *p, size_t n, pl_ack *out);

/** Judge the image at `path` given the acknowledgements made before the
 *  cut: opens it, runs sprig_storage_check, and checks every promise.
 *  Returns 0 (all kept), 2 (the open failed with SPRIG_ECORRUPT), 3 (the
 *  open failed otherwise), 4 (the check found something), 5 (a promise
 *  or the all-or-nothing rule was broken); prints why on stderr. */
int pl_verify(const char *path, const pl_opts *o, const pl_ack *acks,
              size_t n_acks);

#endif /* SPRIG_TESTS_PL_WORKLOAD_H */
