/*
 * pool.c -- the server's worker threads.  A plain queue under a mutex:
 * jobs are database calls that may wait on the disk (group commit makes
 * concurrent writers share fsyncs, so more threads mean bigger batches),
 * custom API handlers, or tasks that must not run on the loop thread
 * (closing a subscriber's database handle).
 *
 * Waking.  A worker that finishes a job takes the next queued one without
 * sleeping, so a few awake workers drain a burst of short jobs.  Requests
 * (sprig__pool_push_request, from the loop thread) wake a sleeping worker
 * only while fewer workers than CPUs are awake (`spread`): waking all
 * sixteen for fifty one-microsecond handlers costs more in context
 * switches than the handlers do (issue 12: an empty custom call cost 1.45x
 * a get with a wake per job, 1.1x like this).  A job that waits longer
 * than SPRIG__POOL_LATE_NS because the awake workers are busy in long
 * handlers wakes one more: the worker that takes a job checks the queue's
 * head, and the loop thread's rescue timer (server.c) checks it while
 * jobs wait, so a blocking handler never starves the ones behind it.
 * Tasks (sprig__pool_push) wake a sleeping worker whenever there is one.
 */
#include "server/server_int.h"

#include <time.h>
#include <unistd.h>

uint64_t
sprig__pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wake one sleeping worker that nobody woke yet (under the lock). */
static bool
wake_one(sprig__pool *p)
{
    if (p->idle <= p->signalled) {
        return false;
    }
    p->signalled++;
    pthread_cond_signal(&p->cond);
    return true;
}

/* Is the oldest queued job late, with a sleeping worker to take it?
 * (under the lock) */
static bool
head_late(const sprig__pool *p, uint64_t now)
{
    return p->head && p->idle > p->signalled &&
           now - p->head->queued_ns >= SPRIG__POOL_LATE_NS;
}

/* Take the queue's head (under the lock; the queue is not empty). */
static sprig__job *
take(sprig__pool *p)
{
    sprig__job *j = p->head;
    p->head = j->next;
    if (!p->head) {
        p->tail = NULL;
    }
    if (p->head && head_late(p, sprig__pool_now_ns())) {
        wake_one(p); /* the awake workers are behind */
    }
    j->next = NULL;
    return j;
}

static void *
worker(void *arg)
{
    sprig__pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->cond, &p->lock);
            p->idle--;
            p->signalled -= p->signalled > 0;
        }
        if (!p->head) {
            break; /* stopping and drained */
        }
        sprig__job *j = take(p);
        pthread_mutex_unlock(&p->lock);
        if (j->task) {
            j->task(j); /* not a request: frees itself */
        } else {
            p->run(j, p->udata);
        }
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int
sprig__pool_start(sprig__pool *p, unsigned n, void (*run)(sprig__job *, void *),
                  void *udata)
{
    memset(p, 0, sizeof *p);
    p->run = run;
    p->udata = udata;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->spread = cpus > 0 ? (unsigned)cpus : 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->threads = sprig__calloc(n, sizeof *p->threads);
    if (!p->threads) {
        return sprig__err(SPRIG_ENOMEM, "out of memory for workers");
    }
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            sprig__pool_stop(p);
            return sprig__err(SPRIG_ENOMEM, "cannot start worker threads");
        }
        p->n++;
    }
    return SPRIG_OK;
}

/* Append `job` to the queue (under the lock). */
static void
append(sprig__pool *p, sprig__job *job)
{
    job->next = NULL;
    job->queued_ns = sprig__pool_now_ns();
    if (p->tail) {
        p->tail->next = job;
    } else {
        p->head = job;
    }
    p->tail = job;
}

void
sprig__pool_push(sprig__pool *p, sprig__job *job)
{
    pthread_mutex_lock(&p->lock);
    append(p, job);
    wake_one(p);
    pthread_mutex_unlock(&p->lock);
}

bool
sprig__pool_push_request(sprig__pool *p, sprig__job *job)
{
    pthread_mutex_lock(&p->lock);
    append(p, job);
    unsigned awake = p->n - p->idle + p->signalled;
    if (awake < p->spread || head_late(p, job->queued_ns)) {
        wake_one(p);
    }
    bool watch = p->idle > p->signalled; /* jobs may wait for the awake */
    pthread_mutex_unlock(&p->lock);
    return watch;
}

bool
sprig__pool_rescue(sprig__pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (head_late(p, sprig__pool_now_ns())) {
        wake_one(p);
    }
    bool watch = p->head && p->idle > p->signalled;
    pthread_mutex_unlock(&p->lock);
    return watch;
}

void
sprig__pool_stop(sprig__pool *p)
{
    if (!p->threads) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->n; i++) {
        pthread_join(p->threads[i], NULL);
    }
    sprig__free(p->threads);
    p->threads = NULL;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
}
