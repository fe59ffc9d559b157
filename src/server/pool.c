/*
 * pool.c -- the server's worker threads.  A plain queue under a mutex:
 * jobs are database calls that may wait on the disk (group commit makes
 * concurrent writers share fsyncs, so more threads mean bigger batches),
 * or tasks that must not run on the loop thread (closing a subscriber's
 * database handle).
 */
#include "server/server_int.h"

static void *
worker(void *arg)
{
    sprig__pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop) {
            pthread_cond_wait(&p->cond, &p->lock);
        }
        sprig__job *j = p->head;
        if (!j) {
            break; /* stopping and drained */
        }
        p->head = j->next;
        if (!p->head) {
            p->tail = NULL;
        }
        pthread_mutex_unlock(&p->lock);
        j->next = NULL;
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

void
sprig__pool_push(sprig__pool *p, sprig__job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail) {
        p->tail->next = job;
    } else {
        p->head = job;
    }
    p->tail = job;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
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
