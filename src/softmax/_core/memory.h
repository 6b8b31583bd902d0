/* Large result arrays from blocks kept for reuse (pure C; module.c wraps
 * these as NumPy's memory handler for the arrays it makes). */
#ifndef SOFTMAX_MEMORY_H
#define SOFTMAX_MEMORY_H

#include <stddef.h>

/* blocks of at least this many bytes are kept when freed; smaller ones are
 * handed back at once (the C library reuses them without new page faults) */
#define SM_KEEP_MIN ((size_t)1 << 20)

void *sm_block_malloc(size_t size);
void *sm_block_calloc(size_t nelem, size_t elsize);
void *sm_block_realloc(void *ptr, size_t size);
void sm_block_free(void *ptr);

/* the most bytes kept (0: keep none, and hand back what is kept) */
void sm_block_set_limit(size_t bytes);
/* the limit, and the bytes kept now waiting for reuse (kept may be NULL) */
size_t sm_block_state(size_t *kept);

#endif
