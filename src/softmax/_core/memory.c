/*
 * Blocks for large results, kept when their array is freed and reused by
 * the next result of (nearly) the same size.
 *
 * Why: a fresh large block comes from mmap, and every 4 KiB page of it
 * faults on first touch. On a VM that is 0.3-1 us a page: a 128 MiB result
 * spent ~10 ms in faults, as long as the softmax itself. A block that has
 * been written before costs none; onnxruntime's arena and PyTorch's caching
 * allocators keep their blocks for the same reason. Memory held is bounded
 * by a limit (softmax.set_memory_cache), and only freed results are kept.
 *
 * Each block carries a 64-byte header (its capacity) before the pointer
 * handed out, so a block's size never depends on what the caller says at
 * free time, and results are 64-byte aligned (a cache line, an AVX-512
 * vector). The kept list is a few slots guarded by a mutex (frees come from
 * any thread that drops an array); the child of a fork starts with a fresh
 * mutex and the parent's kept blocks, which are its own copies.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"

#define SM_HEADER 64
#define SM_SLOTS 8

typedef struct {
    size_t capacity; /* bytes usable after the header */
} sm_block_header;

static struct {
    pthread_mutex_t lock;
    void *base[SM_SLOTS];      /* kept blocks, oldest first */
    size_t capacity[SM_SLOTS];
    int count;
    size_t kept;               /* sum of capacity[] */
    size_t limit;
} cache = {PTHREAD_MUTEX_INITIALIZER, {NULL}, {0}, 0, 0, (size_t)256 << 20};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void
atfork_child(void)
{
    pthread_mutex_init(&cache.lock, NULL);
}

static void
register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

static void
lock(void)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&cache.lock);
}

static void
unlock(void)
{
    pthread_mutex_unlock(&cache.lock);
}

static size_t
capacity_of(void *ptr)
{
    sm_block_header h;
    memcpy(&h, (char *)ptr - SM_HEADER, sizeof h);
    return h.capacity;
}

/* a new block of the C library's (the header written, nothing else) */
static void *
fresh(size_t size)
{
    if (size > SIZE_MAX - 2 * SM_HEADER) {
        return NULL;
    }
    /* aligned_alloc wants a multiple of the alignment */
    const size_t capacity = (size + SM_HEADER - 1) / SM_HEADER * SM_HEADER;
    char *base = aligned_alloc(SM_HEADER, SM_HEADER + capacity);
    if (base == NULL) {
        return NULL;
    }
    const sm_block_header h = {capacity};
    memcpy(base, &h, sizeof h);
    return base + SM_HEADER;
}

/* drops slot i (the caller holds the lock); returns its base */
static void *
take_slot(int i)
{
    void *base = cache.base[i];
    cache.kept -= cache.capacity[i];
    for (int j = i + 1; j < cache.count; j++) {
        cache.base[j - 1] = cache.base[j];
        cache.capacity[j - 1] = cache.capacity[j];
    }
    cache.count--;
    return base;
}

void *
sm_block_malloc(size_t size)
{
    if (size >= SM_KEEP_MIN) {
        /* the smallest kept block that fits without wasting over a quarter */
        lock();
        int best = -1;
        for (int i = 0; i < cache.count; i++) {
            const size_t c = cache.capacity[i];
            if (c >= size && c - size <= size / 4 &&
                (best < 0 || c < cache.capacity[best])) {
                best = i;
            }
        }
        void *base = best < 0 ? NULL : take_slot(best);
        unlock();
        if (base != NULL) {
            return (char *)base + SM_HEADER;
        }
    }
    return fresh(size);
}

void *
sm_block_calloc(size_t nelem, size_t elsize)
{
    if (elsize != 0 && nelem > SIZE_MAX / elsize) {
        return NULL;
    }
    void *p = sm_block_malloc(nelem * elsize);
    if (p != NULL) {
        memset(p, 0, nelem * elsize);
    }
    return p;
}

void
sm_block_free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    char *base = (char *)ptr - SM_HEADER;
    const size_t c = capacity_of(ptr);
    void *drop[SM_SLOTS + 1];
    int ndrop = 0;
    if (c >= SM_KEEP_MIN) {
        lock();
        if (c <= cache.limit) {
            /* make room: the oldest go first */
            while (cache.count > 0 &&
                   (cache.count == SM_SLOTS || cache.kept + c > cache.limit)) {
                drop[ndrop++] = take_slot(0);
            }
            cache.base[cache.count] = base;
            cache.capacity[cache.count] = c;
            cache.count++;
            cache.kept += c;
            base = NULL;
        }
        unlock();
    }
    for (int i = 0; i < ndrop; i++) {
        free(drop[i]);
    }
    free(base);
}

void *
sm_block_realloc(void *ptr, size_t size)
{
    if (ptr == NULL) {
        return sm_block_malloc(size);
    }
    const size_t c = capacity_of(ptr);
    if (size <= c && (c < SM_KEEP_MIN || c - size <= size / 4)) {
        return ptr;
    }
    void *q = sm_block_malloc(size);
    if (q == NULL) {
        return NULL;
    }
    memcpy(q, ptr, size < c ? size : c);
    sm_block_free(ptr);
    return q;
}

void
sm_block_set_limit(size_t bytes)
{
    void *drop[SM_SLOTS];
    int ndrop = 0;
    lock();
    cache.limit = bytes;
    while (cache.count > 0 && cache.kept > cache.limit) {
        drop[ndrop++] = take_slot(0);
    }
    unlock();
    for (int i = 0; i < ndrop; i++) {
        free(drop[i]);
    }
}

size_t
sm_block_state(size_t *kept)
{
    lock();
    const size_t l = cache.limit;
    if (kept != NULL) {
        *kept = cache.kept;
    }
    unlock();
    return l;
}
