/*
 * The thread pool. Workers are started on first use and then sleep on a
 * condition variable between jobs (between the passes of one call they
 * poll briefly first: sm_pool_run_then); a job is published by bumping a
 * generation counter. One job at a time: a second caller (another Python
 * thread, since the GIL is released) does not wait, it runs its job alone.
 *
 * Fork safety: pthread_atfork holds the pool across fork() (prepare waits
 * for a running job to end) and the child starts with an empty pool, whose
 * workers are created again on its first parallel call.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "threads.h"

typedef struct {
    pthread_mutex_t run_lock;   /* held by the caller for a whole job */
    pthread_mutex_t lock;       /* guards the fields below */
    pthread_cond_t wake;        /* workers wait here for a new generation */
    pthread_cond_t done;        /* the caller waits here for pending == 0 */
    int started;                /* workers alive */
    unsigned long generation;
    int pending;
    int linger;                 /* the job's workers wait awake for the next */
    sm_task_fn fn;
    void *arg;
    int nthreads;
} sm_pool;

static sm_pool pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                       PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
                       0, 0, 0, 0, NULL, NULL, 1};
static int num_threads = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
atfork_prepare(void)
{
    pthread_mutex_lock(&pool.run_lock);
}

static void
atfork_parent(void)
{
    pthread_mutex_unlock(&pool.run_lock);
}

static void
atfork_child(void)
{
    /* The workers do not exist in the child: forget them and their locks. */
    pthread_mutex_init(&pool.run_lock, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.started = 0;
    pool.pending = 0;
    pool.generation = 0;
}

static void
register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long
now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * The caller, its share done, polls for the workers' end for up to this
 * long before it sleeps on the condition variable. A sleeping caller is
 * woken through the kernel, and on a virtual machine whose idle CPU was
 * halted that took some 50 us, as long as a whole 2x65536 float32 softmax
 * on one thread. The poll is bounded and only runs while the job does, on
 * the caller's own core: nothing spins between jobs.
 */
#define SM_AWAIT_NS 200000LL

/* What a poll waits for: the next job's generation (a worker of a job that
 * another follows at once, sm_pool_run_then), or the workers' end (the
 * caller). */
static int
generation_moved(unsigned long seen)
{
    return __atomic_load_n(&pool.generation, __ATOMIC_ACQUIRE) != seen;
}

static int
workers_done(unsigned long unused)
{
    (void)unused;
    return __atomic_load_n(&pool.pending, __ATOMIC_ACQUIRE) == 0;
}

/* Polls until done(arg), for at most SM_AWAIT_NS; the caller then takes
 * the lock and sleeps if it must. */
static void
poll_for(int (*done)(unsigned long), unsigned long arg)
{
    const long long start = now_ns();
    for (int i = 1; !done(arg); i++) {
        cpu_relax();
        if (i % 64 == 0 && now_ns() - start > SM_AWAIT_NS) {
            return;
        }
    }
}

typedef struct {
    int tid;
    unsigned long seen;   /* the generation current when it was started */
} worker_arg;

static worker_arg worker_args[SM_MAX_THREADS];

static void *
worker_main(void *p)
{
    const int tid = ((worker_arg *)p)->tid;
    /* not pool.generation: a job published before this thread first runs
     * would otherwise be missed */
    unsigned long seen = ((worker_arg *)p)->seen;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen) {
            pthread_cond_wait(&pool.wake, &pool.lock);
        }
        seen = pool.generation;
        if (tid >= pool.nthreads) {
            continue;
        }
        sm_task_fn fn = pool.fn;
        void *arg = pool.arg;
        int n = pool.nthreads;
        const int linger = pool.linger;
        pthread_mutex_unlock(&pool.lock);
        fn(arg, tid, n);
        pthread_mutex_lock(&pool.lock);
        if (__atomic_sub_fetch(&pool.pending, 1, __ATOMIC_RELEASE) == 0) {
            pthread_cond_signal(&pool.done);
        }
        if (linger) {
            pthread_mutex_unlock(&pool.lock);
            poll_for(generation_moved, seen);
            pthread_mutex_lock(&pool.lock);
        }
    }
    return NULL;
}

/* Starts workers up to tid n-1; returns how many threads (with the caller)
 * are available. Called with run_lock held. */
static int
ensure_workers(int n)
{
    while (pool.started + 1 < n) {
        int tid = pool.started + 1;
        pthread_t th;
        pthread_attr_t attr;
        worker_args[tid].tid = tid;
        worker_args[tid].seen = pool.generation;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, worker_main, &worker_args[tid]);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            break;
        }
        /* count it only under the lock the workers read generation with */
        pthread_mutex_lock(&pool.lock);
        pool.started++;
        pthread_mutex_unlock(&pool.lock);
    }
    return pool.started + 1 < n ? pool.started + 1 : n;
}

static int
pool_run(sm_task_fn fn, void *arg, int nthreads, int linger)
{
    pthread_once(&atfork_once, register_atfork);
    if (nthreads > SM_MAX_THREADS) {
        nthreads = SM_MAX_THREADS;
    }
    if (nthreads <= 1 || pthread_mutex_trylock(&pool.run_lock) != 0) {
        fn(arg, 0, 1);
        return 1;
    }
    int n = ensure_workers(nthreads);
    if (n > 1) {
        pthread_mutex_lock(&pool.lock);
        pool.fn = fn;
        pool.arg = arg;
        pool.nthreads = n;
        pool.linger = linger;
        __atomic_store_n(&pool.pending, n - 1, __ATOMIC_RELAXED);
        __atomic_store_n(&pool.generation, pool.generation + 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    fn(arg, 0, n);
    if (n > 1) {
        poll_for(workers_done, 0);
        pthread_mutex_lock(&pool.lock);
        while (pool.pending > 0) {
            pthread_cond_wait(&pool.done, &pool.lock);
        }
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.run_lock);
    return n;
}

int
sm_pool_run(sm_task_fn fn, void *arg, int nthreads)
{
    return pool_run(fn, arg, nthreads, 0);
}

int
sm_pool_run_then(sm_task_fn fn, void *arg, int nthreads)
{
    return pool_run(fn, arg, nthreads, 1);
}

int
sm_get_num_threads(void)
{
    return num_threads;
}

void
sm_set_num_threads(int n)
{
    num_threads = n < 1 ? 1 : (n > SM_MAX_THREADS ? SM_MAX_THREADS : n);
}
