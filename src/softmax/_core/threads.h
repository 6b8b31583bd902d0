/* A small pthread pool: the caller is worker 0, the pool supplies the rest. */
#ifndef SOFTMAX_THREADS_H
#define SOFTMAX_THREADS_H

#include <stddef.h>

#define SM_MAX_THREADS 256

typedef void (*sm_task_fn)(void *arg, int tid, int nthreads);

/* Runs fn(arg, tid, n) for tid = 0..n-1, tid 0 on the calling thread, and
 * returns when all are done. Runs fewer (down to 1, serially) when threads
 * cannot be started or the pool is busy with another caller; fn must not
 * assume a particular n. Returns the n actually used. */
int sm_pool_run(sm_task_fn fn, void *arg, int nthreads);
/* The same, for a job that another follows at once (the passes of one
 * call): its workers then poll for the next job for a short while before
 * they sleep, instead of being woken through the kernel for it. The last
 * job of a chain is run with sm_pool_run, so nothing polls after a call. */
int sm_pool_run_then(sm_task_fn fn, void *arg, int nthreads);

/* The bounds of part p of n items cut into `parts`: [bound(p), bound(p + 1)),
 * the same cut as n * p / parts without its overflow. */
static inline ptrdiff_t
sm_part_bound(ptrdiff_t n, int p, int parts)
{
    return n / parts * p + n % parts * p / parts;
}

/* The thread count that calls ask for (set from Python); always >= 1. */
int sm_get_num_threads(void);
void sm_set_num_threads(int n);

#endif
